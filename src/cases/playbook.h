/*
 * playbook.h -- playbooks: what to do for a kind of case, step by step,
 * loaded from YAML files beside the rule packs (docs/guidance.md).
 *
 * A playbook has an id, a name, a trigger (`when:` in the rule language over
 * the case's fields, plus optional `signals:` and `keywords:` lists), a
 * priority, what to recommend (action, urgency, reason), a script (opening,
 * key points, closing: message templates for the customer's audience), what
 * not to do, a win condition, and ordered steps.  A case gets the matching
 * playbook of highest priority, the first in file order among equals.
 *
 * Measured success: the outcomes of resolved cases (struct pb_record) give
 * each playbook its success rate, median resolution time and mean CSAT,
 * each with the number of cases behind it, or "not enough history" below a
 * threshold.  Nothing here holds a figure of its own.
 *
 * Ownership: a loaded set (playbooks_new ... playbooks_finish) is read-only
 * afterwards and may be shared by any number of readers; playbooks_free
 * releases it and its compiled conditions and templates.
 */
#ifndef FW_CASES_PLAYBOOK_H
#define FW_CASES_PLAYBOOK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/buf.h"

struct rules;
struct expr;
struct comms_tmpl;

#define PB_ACTIONS(X) X(call) X(email) X(sms) X(offer) X(credit) X(follow_up) X(internal)
enum pb_action {
#define PB__ACT(n) PB_ACT_##n,
    PB_ACTIONS(PB__ACT)
#undef PB__ACT
        PB_NACTIONS
};
const char *pb_action_name(int a);

struct pb_step {
    int action; /* enum pb_action */
    char *description;
    char *script_src;          /* NULL: no script */
    struct comms_tmpl *script; /* compiled script_src, or NULL */
    int minutes;               /* time estimate; 0 when not given */
    int skip_needs_reason;
    int64_t follow_up; /* ms after completion a reminder is due; 0: none */
};

struct playbook {
    char *id, *name, *description;
    char *where; /* "file:line" of its entry, for explanations */
    int priority;
    char *when_src; /* NULL: no condition */
    struct expr *when;
    char **signals; /* any of these (empty: any signal) */
    size_t nsignals;
    char **keywords; /* lower-cased; any of them in the customer's words */
    size_t nkeywords;
    int rec_action; /* recommended action: enum pb_action */
    char *urgency;  /* immediate, today, this_week */
    char *reason;
    struct comms_tmpl *opening, *closing;
    struct comms_tmpl **points;
    size_t npoints;
    char **avoid;
    size_t navoid;
    char *win;
    struct pb_step *steps;
    size_t nsteps;
};

/*
 * An escalation rule (seed 002's alert table, as data): when its condition
 * holds for an open case, once per case, the case is raised to at least
 * `severity`, given `playbook` (pinned), and `notify` hears the reason.
 */
struct pb_escalation {
    char *id, *reason, *where;
    char *when_src;
    struct expr *when;
    int severity;   /* enum severity the case is raised to at least; -1: unchanged */
    char *playbook; /* the playbook it switches to; NULL: unchanged */
    char *notify;   /* "lead", "assignee" or "team"; NULL: nobody */
};
#define PB_MAX_ESCALATIONS 64 /* fired escalations are a bit each on the case */

struct playbooks {
    struct playbook *pb;
    size_t n, cap;
    struct pb_escalation *esc;
    size_t nesc, capesc;
    struct buf diag; /* every error, file:line:col with the line and a caret */
    unsigned nerrors;
    void *_names; /* names conditions read (struct intern) */
};

void playbooks_init(struct playbooks *p);
void playbooks_cleanup(struct playbooks *p);

/*
 * Add a file's playbooks (text is copied where needed; name is used in
 * messages).  rules (may be NULL) checks `signals:` ids.  Errors go to
 * p->diag; returns 0 or FW_EPARSE / FW_EIO.  A playbook id given twice, in
 * one file or two, is an error.
 */
int playbooks_add_text(struct playbooks *p, const char *name, const char *text, size_t len,
                       const struct rules *rules);
int playbooks_add_file(struct playbooks *p, const char *path, const struct rules *rules);
/* The built-in telecom playbooks (playbooks/telecom.yaml, embedded). */
int playbooks_add_builtin(struct playbooks *p, const struct rules *rules);

/* The playbook with this id, or NULL; its index in *index (may be NULL). */
const struct playbook *playbooks_find(const struct playbooks *p, const char *id, size_t *index);

/*
 * What a trigger is evaluated against: the case's fields (docs/guidance.md).
 * Strings are borrowed; value, sentiment and tenure_days are NAN when
 * unknown, which conditions read as null.  text is the customer's recent
 * words, lower-cased, one per line.  state (may be NULL) answers dotted
 * state keys (an engine customer object: {"state": {key: {"value": v}}}).
 */
struct pb_facts {
    const char *severity;
    const char *signal;
    const char *const *signals;
    size_t nsignals;
    const char *customer;
    const char *tier;
    double value;
    double sentiment;           /* the latest text's score; NAN: none */
    double sentiment_trend;     /* the latest against two texts before; NAN: too few */
    const char *const *intents; /* cancel, competitor, legal: in the last three texts */
    size_t nintents;
    double tenure_days;
    int contacts;
    const char *text;
    json_t *state;
};

/*
 * The best playbook for these facts: the index of the matching playbook of
 * highest priority, the first in load order among equals, or -1.  why
 * (may be NULL) receives one sentence saying what matched.
 */
int playbooks_match(const struct playbooks *p, const struct pb_facts *f, int64_t now, char *why,
                    size_t n);

/*
 * The escalations whose conditions hold for these facts, as indexes into
 * p->esc (at most max); returns how many.
 */
size_t playbooks_escalations(const struct playbooks *p, const struct pb_facts *f, int64_t now,
                             size_t *out, size_t max);

/* ---- measured success and similar cases ---- */

#define PB_MAX_SIGNALS 8

/* One resolved case, as history for stats and similar cases. */
struct pb_record {
    char case_id[24];
    int playbook;                        /* index, or -1: none */
    char outcome[16];                    /* saved, resolved, churned, no_action */
    int64_t open_ms;                     /* opened to resolved */
    int csat;                            /* 1-5, 0: none */
    int severity;                        /* enum severity */
    const char *signals[PB_MAX_SIGNALS]; /* borrowed: ids that live as long as the history */
    size_t nsignals;
    double value, tenure_days, sentiment; /* NAN: unknown */
    int steps_done, steps_total;
};

/* Success, resolution time and CSAT of one playbook over the history. */
struct pb_stats {
    size_t n;              /* resolved cases that used the playbook */
    size_t successes;      /* outcome saved or resolved */
    size_t n_csat;         /* of them, with a CSAT score */
    double success_rate;   /* successes / n */
    double median_minutes; /* median open_ms, in minutes */
    double mean_csat;
    int enough; /* n >= the threshold */
};

void pb_stats_compute(const struct pb_record *r, size_t n, int playbook, size_t min_history,
                      struct pb_stats *out);
/* {"n":..,"success_rate":..,...} or {"n":3,"status":"not enough history","needed":5}. */
json_t *pb_stats_json(const struct pb_stats *s, size_t min_history);

/*
 * The k nearest resolved cases to these facts, nearest first (ties: the
 * earlier record): signals by Jaccard distance, severity, value (log
 * scale), tenure and sentiment when both sides know them.  Writes up to k
 * indexes to idx and their similarity (0-1) to score; returns how many.
 */
size_t pb_similar(const struct pb_record *r, size_t n, const struct pb_facts *f, int severity,
                  size_t k, size_t *idx, double *score);

/*
 * `forewarn playbooks test FILE`: run a playbook test file (docs/guidance.md).
 * Prints one line per test; returns 0 when all pass.
 */
int playbooks_test_run(const char *path, FILE *out, FILE *err);

#endif
