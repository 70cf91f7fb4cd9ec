/*
 * bus.h -- the cluster's event log: one NATS JetStream stream, subjects
 * <subject>.<partition>, the event id as Nats-Msg-Id (the stream's
 * duplicate window drops a resent event), and one durable pull consumer
 * per partition, made afresh by each new owner from the stream position
 * its checkpoint covers.
 */
#ifndef FW_CLUSTER_BUS_H
#define FW_CLUSTER_BUS_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/cluster.h"

struct bus;
struct bus_sub;

/* Connect and make sure the stream exists with our subjects: NULL with why. */
struct bus *bus_open(const struct cluster_config *cc, char *why, size_t n);
void bus_close(struct bus *b);

/*
 * Publish one event (its JSON text) to partition p under msg_id and wait
 * for the stream's acknowledgement: 0 with *dup (the stream already had
 * this id) and *seq, or -1 with why.
 */
int bus_publish(struct bus *b, unsigned p, const char *msg_id, const char *json, size_t len,
                int *dup, uint64_t *seq, char *why, size_t n);

/* One message of a batch (bus_publish_batch). */
struct bus_msg {
    unsigned p;          /* its partition */
    const char *msg_id;  /* Nats-Msg-Id */
    const char *json;
    size_t len;
    int dup;             /* out: the stream had this id already */
};

/*
 * Publish n messages without waiting for each one's acknowledgement, then
 * wait for them all (JetStream's asynchronous publish, on a JetStream
 * context of the call's own, so that concurrent batches do not wait for
 * each other): they are sent in order on the node's one connection, so the
 * stream keeps them in that order.  0 with every dup set when each was
 * acknowledged (stored, or a duplicate); -1 with why when one was refused
 * or not acknowledged within the wait (those before it may be stored:
 * resending the batch is safe, the ids make it so).
 */
int bus_publish_batch(struct bus *b, struct bus_msg *m, size_t n, char *why, size_t nwhy);

/* The last sequence of the stream (0: empty), or -1 when it cannot be read. */
int64_t bus_last_seq(struct bus *b);

/* Partition p's consumer, delivering from stream sequence `from` on: NULL with why. */
struct bus_sub *bus_subscribe(struct bus *b, unsigned p, uint64_t from, char *why, size_t n);
/*
 * Up to max messages, waiting up to timeout_ms: 0 (list->Count may be 0), or
 * -1 when the subscription is broken.  Destroy the list with natsMsgList_Destroy.
 */
int bus_fetch(struct bus_sub *s, natsMsgList *list, int max, int64_t timeout_ms);
/* Acknowledge msg and every message before it (the consumer acks all). */
int bus_ack(natsMsg *msg);
/* A message's stream sequence, and its stored time (ms); 0 when it carries none. */
uint64_t bus_msg_seq(natsMsg *msg, int64_t *stored_ms);
void bus_unsubscribe(struct bus_sub *s);

#endif
