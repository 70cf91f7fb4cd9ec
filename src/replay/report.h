/*
 * report.h -- seed 001's "Proactive Outreach Report" over a replay: the
 * sections in the seed's order, computed from what the replay decided and
 * from the engine's and the orchestrator's state at its end
 * (docs/known-issues.md, "The outreach report").
 */
#ifndef FW_REPORT_H
#define FW_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "engine/engine.h"
#include "orchestrate/orchestrate.h"

struct report_opts {
    const char *format;  /* "md" (default), "json" or "html" */
    const char *segment; /* a rule-language condition customers must meet, or NULL: everyone */
    int64_t from, to;    /* actions and history in [from, to); FW_TIME_NONE: open */
};

/*
 * Render the report to out.  asof: the instant the report is as of (the
 * replay's end), or FW_TIME_NONE when there is none (a virtual clock that
 * no event or --until has moved): the report then says "no events yet"
 * instead of a date.  lines: the replay's spool (NDJSON of detections,
 * messages, tasks), read from its current position; answers: [{customer,
 * type, at}] replies and tickets seen.  Returns 0, or FW_EPARSE with the
 * reason on err (a segment that does not compile).
 */
int report_outreach(const struct report_opts *o, int64_t asof, FILE *lines, struct engine *e,
                    const struct orch *orch, json_t *answers, FILE *out, FILE *err);

#endif
