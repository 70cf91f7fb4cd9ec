/*
 * stats.h -- outcomes measured from the journal's cases: SLA compliance,
 * resolution times, CSAT, first-contact resolution, customers saved, the
 * tickets proactive outreach prevented, and each agent's scoreboard
 * (streak, achievements).
 *
 * Pure functions over what serve keeps (case documents, decided messages,
 * journaled events) and replay prints, so the two give the same figures for
 * the same journal.  Every figure carries the count it rests on; a rate over
 * nothing is null, never a guess.
 */
#ifndef FW_STATS_H
#define FW_STATS_H

#include <jansson.h>
#include <stdint.h>

/* What the figures are computed from (borrowed). */
struct stats_input {
    json_t *cases;    /* case documents (GET /v1/cases/{id}), open and resolved */
    json_t *outreach; /* [{"customer": id, "at": ms}]: proactive customer messages that went out */
    json_t *contacts; /* [{"customer": id, "at": ms}]: tickets the customers opened */
    int64_t from, to; /* the period (resolved_at / outreach at in [from, to)); INT64_MIN/MAX: all */
    int64_t prevention_window; /* an outreach prevented a ticket if none came within this (7d) */
};

/*
 * {"period":{...}, "team":{figures}, "agents":{name:{figures}},
 *  "severities":{...}, "playbooks":{...}} (docs/guidance.md, "Outcomes").
 */
json_t *stats_outcomes(const struct stats_input *in);

/*
 * One agent's scoreboard: figures, current streak (consecutive cases
 * resolved within their resolution target, newest first) and achievements.
 */
json_t *stats_agent(const struct stats_input *in, const char *agent);

/* Every agent who resolved a case in the period, best first: {"leaderboard":[...]}. */
json_t *stats_leaderboard(const struct stats_input *in);

#endif
