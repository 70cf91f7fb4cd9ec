/*
 * replay.h -- drive the engine from recorded events on a virtual clock:
 * the `forewarn replay` backtest and the `forewarn rules test` runner.
 *
 * The clock follows event time: before an event is applied, every wake-up
 * due at or before its time fires (at its own due time); the event is then
 * applied at its own time.  Events are taken in time order (a stable sort,
 * so equal times keep input order), which makes the output a pure function
 * of the input.
 *
 * Input in time order, as producers write it, is applied in one pass as it
 * is read, holding one event at a time; input that goes back in time is
 * validated, sorted by (time, line) and parsed again in that order.  The
 * output waits in a temporary file until the whole input is known to be
 * valid.
 */
#ifndef FW_REPLAY_H
#define FW_REPLAY_H

#include <stdint.h>
#include <stdio.h>

#include "cases/cases.h"
#include "orchestrate/orchestrate.h"
#include "rules/rules.h"

struct report_opts;

struct replay_opts {
    int64_t until;     /* advance the clock to here at the end; FW_TIME_NONE: don't */
    int skip_invalid;  /* report invalid lines on stderr and go on, instead of refusing the input */
    int serial;        /* parse and apply on one thread (default: a reader thread parses ahead
                          when the machine has more than one CPU; the output is the same) */
    /*
     * Engine partitions (DESIGN.md section 5): 0 or 1 one engine; more,
     * that many engines on threads of their own, customers split by a hash
     * of their key, merged into the same output (replay/parts.h).
     * Not with --stats or --report (one engine runs).  part_rules holds 1 +
     * partitions finished rule sets built alike: [0] the merger's (it may be
     * the one passed to replay_run), then one per partition; with cases,
     * part_playbooks[p] are the playbooks compiled against part_rules[1 + p].
     */
    size_t partitions;
    struct rules *const *part_rules;
    const struct playbooks *const *part_playbooks;
    int messages;      /* also decide and print messages (the orchestrator) */
    const char *templates; /* template directory overriding the built-ins, or NULL */
    int cases;         /* also follow cases and SLA clocks and print their changes */
    int stats;         /* with cases: print one {"kind":"stats"} line at the end (analytics/stats.h) */
    const struct sentiment *sentiment; /* with cases: scores the customers' words (NULL: none) */
    const struct orch_config *orch; /* outreach config (a serve config file), or NULL: defaults */
    const struct sla_config *sla;   /* SLA policies and calendars, or NULL: the defaults */
    const struct case_weights *weights; /* priority weights, or NULL: the defaults */
    const struct engine_health *health; /* health score weights, or NULL: the defaults */
    const struct engine_churn *churn;   /* the churn model (churn_model:), or NULL: none */
    const struct playbooks *playbooks;  /* playbooks for cases, or NULL: none */
    size_t min_history; /* resolved cases a success figure needs; 0: the default (5) */
    /*
     * The outreach report (replay/report.h) instead of the lines: with
     * messages and cases on, what the replay decided is read back at the
     * end together with the engine's and the orchestrator's final state.
     */
    const struct report_opts *report;
    /*
     * What one event may be, as serve's POST /v1/events has it from the
     * same config file (max_body per line, max_event_members,
     * max_event_data, event_time_min, and event_time_skew past the wall
     * clock); an event past them is an invalid line.  NULL:
     * ingest_default_limits (no bound in the future but the ceiling).
     */
    const struct ingest_limits *limits;
};

/*
 * Replay NDJSON from `in` against finished rules, writing one JSON line
 * per detection/incident to `out` and a summary plus any errors (with line
 * numbers) to `err`.  Returns 0; FW_EPARSE when the input had invalid lines
 * (and skip_invalid was off: nothing is written to `out` then).
 */
int replay_run(struct rules *rules, FILE *in, FILE *out, FILE *err, const struct replay_opts *o);

/*
 * Run a rule-test file (YAML).  Prints one line per test and a closing
 * "N passed, N failed" to `out`, details of failures and load errors to
 * `err`.  Returns 0 when all pass.
 */
int ruletest_run(const char *path, FILE *out, FILE *err);

#endif
