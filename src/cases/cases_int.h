/*
 * cases_int.h -- private to the cases module: the case record, its clocks,
 * and the functions its files share (cases.c: life cycle and actions;
 * clock.c: SLA policies and clocks; queue.c: priority and the queue).
 */
#ifndef FW_CASES_INT_H
#define FW_CASES_INT_H

#include <string.h>
#include <math.h>

#include "cases/cases.h"
#include "cases/playbook.h"
#include "expr/expr.h"
#include "rules/rules.h"
#include "util/map.h"

/* How far back recent contacts count for churn risk. */
#define CASES_CONTACT_WINDOW (7 * 24 * 3600 * 1000LL)

enum case_status { CST_OPEN, CST_PENDING, CST_ON_HOLD };

struct kase;

/*
 * One SLA clock.  Running: `since` and `due` are set; paused: both
 * FW_TIME_NONE, `consumed` holds the calendar time used so far.  The timer
 * is armed for the warning, then for the breach.
 */
struct clock {
    struct engine_timer t; /* first: the timer hands back this pointer */
    struct kase *k;
    int metric;
    int64_t target;      /* calendar ms */
    int64_t consumed;    /* calendar ms used before `since` */
    int64_t since;       /* running since, or FW_TIME_NONE (paused) */
    int64_t due;         /* the breach instant while running, else FW_TIME_NONE */
    int64_t met_at;      /* FW_TIME_NONE until met */
    int64_t breached_at; /* FW_TIME_NONE unless breached */
    int warned, done, armed;
};

struct kdet {
    uint32_t sig;
    int64_t fired_at, resolved_at; /* resolved_at FW_TIME_NONE while firing */
};

/* A follow-up reminder of a completed playbook step (guide.c). */
struct reminder {
    struct engine_timer t; /* first: the timer hands back this pointer */
    struct kase *k;
    int step;              /* 0-based */
    int armed;
    int64_t due;
};

/* What a playbook step is at: pending, done, or skipped with a reason. */
enum { STEP_PENDING, STEP_DONE, STEP_SKIPPED };

struct kase {
    char id[24];
    struct cases *owner;
    char *customer;
    int severity;
    int status;
    int closing; /* being resolved: lines and the document say so */
    char *assignee; /* NULL: unassigned */
    char *resolved_by; /* who resolved it (NULL: open, or resolved by itself) */
    int64_t acted_at;  /* when the last person's action happened (opening time before any) */
    int64_t opened_at, updated_at;
    struct kdet *dets;
    size_t ndets, capdets;
    uint64_t *inc;
    size_t ninc, capinc;
    char **msgs;
    size_t nmsgs, capmsgs;
    char **skipped; /* agents who skipped it: guided mode does not offer it to them again */
    size_t nskipped, capskipped;
    size_t nnotes, nactions;
    int policy; /* index into the SLA policies, -1: severity defaults */
    const struct calendar *cal;
    struct clock clk[CASE_NMETRICS];
    /* From the customer's state at the last change (for cards and priority). */
    char *name, *tier;
    double value;   /* NAN when none */
    int64_t signup; /* FW_TIME_NONE when unknown */
    /* The playbook (guide.c): chosen by matching until a person picks one or works a step. */
    int pb;             /* index into cfg->playbooks, -1: none */
    char *pb_by;        /* the agent who chose it, NULL: matched */
    char *pb_why;       /* why this one, in words */
    int pb_pinned;      /* no longer re-matched */
    uint64_t esc_fired; /* escalations that fired for this case (a bit each, pb_escalation index) */
    unsigned char *steps; /* per step: STEP_* */
    struct reminder *rem; /* per step */
    size_t nsteps;
};

/* A compiled policy condition. */
struct policy {
    struct expr *cond; /* NULL: every case */
};

struct cases {
    const struct cases_config *cfg;
    struct case_sink sink;
    struct engine_sink next;
    struct orch_sink onext;
    struct engine *e;
    const struct rules *rules;
    int quiet;
    struct strmap open;    /* customer -> struct kase * (NULL once resolved) */
    struct strmap ids;     /* case id -> struct kase * while open, RESOLVED_CASE after */
    struct strmap values;  /* customer -> value (boxed double), for the value percentile */
    double *sorted;        /* the values, sorted, rebuilt when dirty */
    size_t nsorted;
    int values_dirty;
    struct policy *policies;
    size_t npolicies;
    struct intern names;   /* names policy conditions read */
    struct cases_stats stats;
    struct strmap words;   /* customer -> struct words: their recent texts, for playbook keywords */
    struct pb_record *hist; /* resolved cases, in order: measured success and similar cases */
    size_t nhist, caphist;
    struct buf line;
    struct strmap tasks;   /* task id -> struct ftask * while open, CLOSED_TASK after */
    struct strmap ctasks;  /* customer -> their open tasks (struct ftask *, linked by next) */
    struct strmap held;    /* message id -> task id (a string): outreach waiting for approval */
    /* The case being matched against a policy (expr_env callbacks). */
    const struct kase *matching;
    json_t *matching_snap;
};

/* A customer's value in cs->values: the double's bits in the entry's pointer (no block of its own). */
_Static_assert(sizeof(void *) == sizeof(double), "a value is kept in a pointer's bits");
static inline void *cases__value_box(double v)
{
    void *p;
    memcpy(&p, &v, sizeof p);
    return p;
}
static inline double cases__value_of(const void *p)
{
    double v;
    memcpy(&v, &p, sizeof v);
    return v;
}

extern char cases__resolved_marker;
extern char cases__closed_task_marker;
#define CLOSED_TASK ((void *)&cases__closed_task_marker)
#define RESOLVED_CASE ((void *)&cases__resolved_marker)

int64_t cases__default_target(int metric, int severity);

/* clock.c */
int cases__compile_policies(struct cases *cs, struct buf *diag);
void cases__free_policies(struct cases *cs);
/* Choose the policy for k (its current severity and customer state) and set targets. */
void cases__match_policy(struct cases *cs, struct kase *k, json_t *snap);
void cases__clocks_start(struct cases *cs, struct kase *k, int64_t at);
/* Clocks of a case opened from history whose due time is already past: breached, now. */
void cases__clocks_overdue(struct cases *cs, struct kase *k);
/* The stricter targets of a new severity: never due before `at`. */
void cases__clocks_raise(struct cases *cs, struct kase *k, json_t *snap, int64_t at);
void cases__clock_met(struct cases *cs, struct clock *c, int64_t at);
void cases__clock_pause(struct cases *cs, struct clock *c, int64_t at);
void cases__clock_resume(struct cases *cs, struct clock *c, int64_t at);
void cases__clocks_stop(struct cases *cs, struct kase *k);
/* The running clock due first, or NULL. */
const struct clock *cases__tightest(const struct kase *k);
void cases__clocks_json(const struct kase *k, int64_t now, json_t *into);

/* cases.c */
void cases__emit(struct cases *cs, const struct kase *k, int64_t at);
void cases__notice(struct cases *cs, const struct kase *k, const struct clock *c, const char *kind);
/*
 * A Slack notice about a case, keyed by `key` (its id is derived from it):
 * to the assignee when to_assignee and there is one, else to the team (l1).
 * Nothing while quiet.
 */
void cases__slack_notice(struct cases *cs, const struct kase *k, const char *key, int to_assignee,
                         const char *subject, const char *body, const char *signals,
                         const char *explain, const char *meta, int64_t at);
/* The same for a customer with or without a case: to `assignee`, or the team when NULL. */
void cases__slack_notice_to(struct cases *cs, const char *customer, const char *assignee,
                            const char *key, const char *subject, const char *body,
                            const char *signals, const char *explain, const char *meta,
                            int64_t at);
const struct rule_signal *cases__lead_signal(const struct cases *cs, const struct kase *k);

/* A time as an RFC 3339 JSON string, or null for FW_TIME_NONE (cases.c). */
json_t *cases__jtime(int64_t t);

/* cases.c, for guide.c */
void cases__line(struct cases *cs, const struct kase *k, const char *event, const char *extra,
                 int64_t at);
void cases__resave(struct cases *cs, struct kase *k);
json_t *cases__snapshot(const struct cases *cs, const char *customer);

/* guide.c: playbooks on cases, measured success, guidance */
/* Note the customer's words an event carries; 1 when they changed. */
int cases__words_note(struct cases *cs, const struct event *ev);
void cases__words_free(struct cases *cs);
/* Choose k's playbook again unless a person has; a change is a playbook_set line. */
void cases__pb_match(struct cases *cs, struct kase *k, json_t *snap, int64_t at);
/* Would this playbook action apply to k?  0, FW_EINVAL or FW_ESTATE with the reason. */
int cases__pb_check(const struct cases *cs, const struct kase *k, const struct event *ev,
                    char *why, size_t n);
void cases__pb_action(struct cases *cs, struct kase *k, const struct event *ev, int64_t at);
/* k resolves: its outcome joins the history; reminders are cancelled. */
void cases__pb_close(struct cases *cs, struct kase *k, const char *outcome, int csat, int64_t at);
void cases__pb_free(struct cases *cs, struct kase *k);
void cases__pb_doc(const struct cases *cs, const struct kase *k, json_t *d);

/* task.c: follow-up tasks after outreach */
/* A message the orchestrator decided: a proactive outreach that goes out gets its task. */
void cases__task_message(struct cases *cs, const struct outbox_msg *m);
/* Every event of a customer: answers close tasks, message.sent of a held outreach opens one. */
void cases__task_event(struct cases *cs, const struct event *ev, const char *customer);
/* A detection of the customer fired or resolved. */
void cases__task_detection(struct cases *cs, const struct detection *d);
/* k's owner changed: its open tasks follow. */
void cases__task_case_assigned(struct cases *cs, const struct kase *k, int64_t at);
/* case.task_completed / case.task_cancelled: check (0 or FW_E* with why) and apply. */
int cases__task_check(const struct cases *cs, const struct event *ev, char *why, size_t n);
void cases__task_action(struct cases *cs, const struct event *ev);
void cases__task_free_all(struct cases *cs);

/* Snapshots (snap.c and the files whose private state it writes). */
struct wire_rd;
/* clock.c: a clock not running, its timer's fire set (for a restored case). */
void cases__clock_bind(struct kase *k, int metric);
/* guide.c: a restored case's playbook steps, pending, reminders not armed; the words. */
void cases__pb_steps_init(struct kase *k, size_t nsteps);
void cases__words_write(const struct cases *cs, struct buf *out);
void cases__words_read(struct cases *cs, struct wire_rd *in);
/* task.c: follow-up tasks, customers' lists, outreach held for approval. */
void cases__tasks_write(const struct cases *cs, struct buf *out);
void cases__tasks_read(struct cases *cs, struct wire_rd *in);

/* queue.c */
json_t *cases__card(const struct cases *cs, const struct kase *k, int64_t now);

#endif
