/*
 * cluster_int.h -- private to the cluster module: the node every part
 * shares, and a partition's worker (part.c).
 */
#ifndef FW_CLUSTER_INT_H
#define FW_CLUSTER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cluster/bus.h"
#include "cluster/cluster.h"
#include "comms/comms.h"
#include "serve/config.h"

/* What every thread of a node reads (set up before the first thread starts, then fixed). */
struct cnode {
    const struct config *cfg;
    const struct cluster_config *cc;
    const char *const *rule_files;
    size_t nrule_files;
    const struct comms *templates; /* NULL: messages are off (detections only) */
    struct bus *bus;
    uint64_t fingerprint; /* of the config and rules: a checkpoint under others is not used */
};

/* A partition this node owns: its own thread, PostgreSQL connection, engine and orchestrator. */
struct cpart;

struct cpart_stats {
    unsigned p;
    int64_t epoch;
    int live;              /* replayed what the former owner had committed: deciding for real */
    uint64_t applied_seq;  /* the stream position its committed work covers */
    uint64_t events;       /* events applied since it was taken */
    uint64_t replayed;     /* of them, replayed quietly at takeover */
    size_t customers;
    int64_t clock;         /* the engine's clock */
    double takeover_s;     /* from the lock to live */
};

/* Take partition p (its advisory lock is held by the caller): a thread loads and runs it. */
struct cpart *cpart_start(struct cnode *nd, unsigned p);
/* Whether its thread still runs (0: it stopped by itself, e.g. another node fenced it out). */
int cpart_running(struct cpart *c);
/* Stop it: a checkpoint if it is live and still the owner, then free. */
void cpart_stop(struct cpart *c);
void cpart_stats(struct cpart *c, struct cpart_stats *out);

/*
 * The global role (global.c): one node at a time keeps the incidents, which
 * span partitions; every node runs this thread, which takes the role when
 * nobody holds it.
 */
struct cglobal;
struct cglobal *cglobal_start(struct cnode *nd);
int cglobal_held(struct cglobal *g);
void cglobal_stop(struct cglobal *g);

#endif
