/*
 * cluster.h -- forewarn on NATS JetStream and PostgreSQL (`forewarn serve
 * --cluster CONFIG`, docs/operations.md "Cluster", DESIGN.md section 8).
 *
 * Events are published to one JetStream stream, one subject per partition
 * (the same fw_hash of the subject as replay's partitions; a global event
 * goes to every partition), with the event id as Nats-Msg-Id so that the
 * stream's duplicate window replaces the local dedup table.  Each node
 * owns some partitions (PostgreSQL advisory locks, fenced by an epoch per
 * partition) and runs one engine and one orchestrator per partition,
 * consuming its subject; what a group of events decides (detections,
 * messages) is committed to PostgreSQL with the stream position it covers,
 * and only then acknowledged.  Engine checkpoints live in PostgreSQL too,
 * so a partition moves to another node with its state: the new owner loads
 * the checkpoint and replays the stream after it quietly (what it decides
 * again is already stored), then goes on live.  Any node delivers: workers
 * claim outbox rows with FOR UPDATE SKIP LOCKED.
 */
#ifndef FW_CLUSTER_H
#define FW_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "util/buf.h"

struct ydoc;
struct config;
struct rules;

struct cluster_config {
    int on;             /* a cluster: section was read */
    char *nats;         /* NATS server URL(s), comma-separated (nats://127.0.0.1:4222) */
    char *postgres;     /* libpq connection string */
    char *node;         /* this node's name (default: host name and process id) */
    unsigned partitions; /* partitions of the stream (8); every node must say the same */
    char *stream;       /* JetStream stream name (FOREWARN) */
    char *subject;      /* subject prefix: <subject>.<partition> (forewarn.events) */
    int64_t dedup_window;     /* the stream's duplicate window, ms (24h) */
    int64_t checkpoint_every; /* ms between a partition's checkpoints (30s) */
    int64_t ownership_every;  /* ms between looks at who owns what (250ms) */
};

void cluster_config_init(struct cluster_config *c);
void cluster_config_cleanup(struct cluster_config *c);
/* The `cluster:` mapping of the config file: errors with file:line:col in diag, FW_EPARSE. */
int cluster_config_parse(struct cluster_config *c, struct ydoc *d, yaml_node_t *n,
                         struct buf *diag);

/* Subject and partition of an event's subject (NULL: a global event, every partition). */
unsigned cluster_partition_of(const char *subject, unsigned partitions);

/*
 * Run a node until SIGINT/SIGTERM: `cfg` is the server config (with its
 * cluster section), `rules` the finished rule pack, and `rule_files` how to
 * build one more copy per owned partition (an engine interns into its own).
 * Returns a process exit status.
 */
int cluster_serve(const struct config *cfg, const char *const *rule_files, size_t nrule_files);

#endif
