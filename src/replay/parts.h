/*
 * parts.h -- replay on several engine partitions (DESIGN.md section 5,
 * "Partitions"): customers are split by a stable hash of their key, each
 * partition an engine on its own thread, and one merger puts what they
 * report back into the order one engine would have printed it, keeping
 * the incidents (which span customers) itself.  The output is byte for
 * byte that of one engine.
 */
#ifndef FW_REPLAY_PARTS_H
#define FW_REPLAY_PARTS_H

#include <stddef.h>
#include <stdint.h>

#include "cases/cases.h"
#include "comms/comms.h"
#include "engine/engine.h"
#include "ingest/ingest.h"
#include "orchestrate/orchestrate.h"
#include "rules/rules.h"

/* Events handed over in blocks; a block's events belong to its filler (freed when refilled). */
#define PART_BLOCK_EVENTS 256

struct part_block {
    struct event ev[PART_BLOCK_EVENTS];
    size_t bad[PART_BLOCK_EVENTS]; /* invalid lines before this event (none: it may be applied) */
    size_t n;
};

struct parts_source {
    void *ctx;
    /* Refill b with the next events (freeing those it held): 0 once no more will come. */
    int (*fill)(void *ctx, struct part_block *b);
};

struct parts_result {
    uint64_t events;  /* events applied */
    size_t customers; /* customers, all partitions */
    size_t pending;   /* pending wake-ups, all partitions */
    /* CPU time of each thread (seconds): the longest bounds the wall time on enough cores. */
    double reader_cpu_s, merger_cpu_s, part_cpu_s[64];
};

/*
 * Messages (and cases) on partitions: each partition decides for its own
 * customers with an orchestrator of its own (cfg and templates are shared,
 * read only), the merger sends the incident alerts; every decision's line
 * (orch_message_json, no newline) goes to `line` in one engine's order,
 * unless `quiet` (cases without --messages: decided, not printed).  Only for
 * input that one engine would decide customer by customer: no
 * known_issue.changed, message.sent or message.failed events, and member
 * views that orch_views_local allows (replay.c checks).
 *
 * With `cases`, each partition also keeps its customers' cases (its copy of
 * the config with playbooks[p], compiled against the partition's rules) and
 * every case line goes to `case_line` in one engine's order.  The merger
 * attaches incidents to the open cases of their members (the one thing a
 * case takes from other customers in replay's output) from a mirror of the
 * open cases it builds from those lines.  Not for case documents (--stats,
 * --report), and not when an SLA policy condition could see the time an
 * incident was attached (replay.c checks).
 */
struct parts_msgs {
    const struct orch_config *cfg;
    const struct comms *templates;
    void *ctx;
    void (*line)(void *ctx, const char *json, size_t n);
    int quiet; /* decided, not printed (orch_set_bare) */
    const struct cases_config *cases;              /* NULL: no cases */
    const struct playbooks *const *playbooks;      /* per partition p: playbooks[p] (NULL: none) */
    void (*case_line)(void *ctx, const char *json, size_t n);
};

/* The partition of a customer: its key's fw_hash modulo the number of partitions. */
size_t parts_of(const char *subject, size_t nparts);

/*
 * Read src to its end on a thread of its own, apply its events on nparts
 * engines (nparts >= 2; rules[1 + p] is partition p's copy of the rules,
 * health its health weights or NULL for the defaults,
 * built from the same files as rules[0], which the merger reads), advance
 * them to `until` when it is not FW_TIME_NONE, and send detections and
 * incidents to out (its detection and incident callbacks) and, with msgs,
 * message lines to msgs->line, in one engine's order (without --until, the
 * merge windows the last events opened are let close first, as one
 * engine's replay does).  An event with bad lines before it is applied only with
 * skip_invalid.  Returns 0, with the figures in *res.
 */
int parts_run(struct rules *const *rules, size_t nparts, const struct parts_source *src,
              int skip_invalid, int64_t until, const struct engine_health *health,
              const struct engine_sink *out, const struct parts_msgs *msgs,
              struct parts_result *res);

#endif
