/*
 * pgx.h -- the cluster's PostgreSQL: connections, the schema, and the few
 * statements every part of a node runs (libpq; text parameters except for
 * checkpoints, which travel as binary bytea).
 *
 * Tables (created if missing, under an advisory lock so that nodes
 * starting together do not race):
 *   fw_meta(k, v)                       partitions, so every node agrees on them
 *   fw_partitions(p, epoch, owner, applied_seq, clock, checkpoint_seq, checkpoint)
 *                                       one row per partition: who owns it (the epoch
 *                                       fences a former owner's writes), the stream
 *                                       position its committed work covers, its checkpoint
 *   fw_groups(p, last_seq, applied_at)  with the wall clock: when each group was applied
 *   fw_detections(signal, customer, state, at, ...)  transitions, once each
 *   fw_outbox(id, key, ...)             decided messages; delivery claims them
 *   fw_systemic(p, pseq, at, kind, ...) what feeds incidents, per partition (global.c)
 *   fw_first(customer, at, p, pseq)     where each customer was first seen
 *   fw_global, fw_views, fw_incidents   the global role's position and state, the
 *                                       members' views, the incident lines
 */
#ifndef FW_CLUSTER_PGX_H
#define FW_CLUSTER_PGX_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* Advisory lock classes: (class, partition) for partitions, (class, hash) for live nodes. */
#define PGX_LOCK_PARTITION 0x46570001
#define PGX_LOCK_NODE 0x46570002
#define PGX_LOCK_SCHEMA 0x46570003
#define PGX_LOCK_GLOBAL 0x46570004 /* the node that keeps the incidents (global.c) */

/* Connect (NULL with the reason logged). */
PGconn *pgx_connect(const char *conninfo);
/* Run a statement with text parameters (NULL entries are SQL NULL); the result, or NULL after
   logging the error (the caller PQclear()s a result). ok: PGRES_COMMAND_OK or TUPLES_OK. */
PGresult *pgx_exec(PGconn *c, const char *sql, int n, const char *const *params);
/* The same for statements whose result is not read: 0 or -1. */
int pgx_run(PGconn *c, const char *sql, int n, const char *const *params);
/*
 * Store a decided message in fw_outbox (unless its id is there: a decision
 * made again), from partition p (-1: the global role) by node: `stored`
 * with the reason when no connector serves its channel, as serve records
 * it.  0 with *scheduled (may be NULL) set when it waits for delivery, or -1.
 */
struct outbox_msg;
struct delivery_config;
int pgx_outbox_insert(PGconn *c, const struct delivery_config *dc, const struct outbox_msg *m,
                      int p, const char *node, int *scheduled);

/* Create the schema and check (or record) the partition count: 0, or -1 with why. */
int pgx_schema(PGconn *c, unsigned partitions, char *why, size_t n);

#endif
