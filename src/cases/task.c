/*
 * task.c -- follow-up tasks after proactive outreach (seed 001: "create
 * follow-up tasks, due +3d"; seed 004: after a resolved ticket).
 *
 * A customer message the orchestrator decided and that goes out (status
 * `scheduled` when decided, or `message.sent` for one that waited for a
 * person's approval) creates one task per outreach, however many channels
 * it took: due `followup_task` after the message goes out, for the case's
 * owner, or the signal's team when nobody has the case.  The task closes
 * by itself when the customer answers (message.replied, or an event of the
 * rule pack's `contact` class) or when every detection it followed up has
 * resolved; a person completes or cancels it (`case.task_completed`,
 * `case.task_cancelled`, journaled like every case action).  When it falls
 * due still open, its timer fires at the exact instant: a reminder line,
 * and a Slack notice to the assignee or the team.
 *
 * Invariant: everything here is derived from the orchestrator's decisions
 * and the journal's events, in order, so replay and recovery rebuild the
 * same tasks with the same ids and timers.  An open task is in `tasks`
 * and in its customer's list in `ctasks`, and its timer is armed; a closed
 * one is freed and its id maps to CLOSED_TASK.
 */
#include <stdlib.h>
#include <string.h>

#include "cases/cases_int.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"
#include "util/wire.h"

char cases__closed_task_marker;

/* A reminder found later than this after its due time is recorded, but nobody is paged. */
#define TASK_NOTICE_LATE_MS (60 * 1000LL)

enum { TASK_OPEN, TASK_DONE, TASK_CANCELLED };
static const char *const state_names[] = {"open", "done", "cancelled"};

struct ftask {
    struct engine_timer t; /* first: the timer hands back this pointer */
    struct cases *cs;
    struct ftask *next;    /* the customer's open tasks */
    char id[24];           /* "t_" + 16 hex digits of a hash of the outreach it follows */
    char *customer;
    char case_id[24];      /* "" when the customer had no open case */
    char *assignee;        /* the case's owner, or NULL: the team's */
    char *team;            /* the lead signal's team, or NULL */
    char *kind;            /* the outreach's kind: alert, outage, followup, known_issue */
    char *issue;           /* known_issue: the issue's id, or NULL */
    int severity;
    uint32_t *sigs;        /* the signals it follows up */
    unsigned char *sig_resolved;
    size_t nsigs;
    char **msgs;           /* the outreach's messages, one per channel */
    size_t nmsgs, capmsgs;
    int64_t created_at, sent_at, due, reminded_at;
    int state, armed;
};

/* An outreach waiting for approval: the task it will get when it is sent. */
struct held {
    char task[24];
    char *kind;
    char *issue; /* a known issue's id, or NULL */
    char *signals; /* JSON array text */
};

/*
 * The outreach kinds that are proactive messages to the customer (emit.c's
 * draft kinds).  A known issue's alert is one; its updates and resolution
 * follow it on the same thread, like the ladder's follow-ups, and a
 * maintenance notice announces planned work with nothing to check back on
 * (docs/tasks.md).
 */
static int proactive_kind(const char *kind)
{
    return !strcmp(kind, "alert") || !strcmp(kind, "outage") || !strcmp(kind, "followup") ||
           !strcmp(kind, "known_issue");
}

/* The key's extra field (kind|customer|signals|audience|channel|extra|at), for a known issue's id. */
static char *key_extra(const char *key)
{
    const char *p = key;
    for (int i = 0; i < 5 && p; i++)
        if ((p = strchr(p, '|')))
            p++;
    const char *end = p ? strchr(p, '|') : NULL;
    return end && end > p ? xstrndup(p, (size_t)(end - p)) : NULL;
}

static void task_free(struct ftask *t)
{
    if (!t)
        return;
    free(t->customer);
    free(t->assignee);
    free(t->team);
    free(t->kind);
    free(t->issue);
    free(t->sigs);
    free(t->sig_resolved);
    for (size_t i = 0; i < t->nmsgs; i++)
        free(t->msgs[i]);
    free(t->msgs);
    free(t);
}

static struct ftask *find_open(const struct cases *cs, const char *id)
{
    struct strmap_entry *me = strmap_find(&cs->tasks, id, strlen(id));
    return me && me->value != CLOSED_TASK ? me->value : NULL;
}

static void add_msg(struct ftask *t, const char *id)
{
    for (size_t i = 0; i < t->nmsgs; i++)
        if (!strcmp(t->msgs[i], id))
            return;
    t->msgs = xgrow(t->msgs, &t->capmsgs, t->nmsgs + 1, sizeof *t->msgs);
    t->msgs[t->nmsgs++] = xstrdup(id);
}

/* ---- output: the contract line and the stored row ---- */

/* The task as a JSON object: the fields its lines and its stored document share. */
static json_t *task_json(const struct cases *cs, const struct ftask *t)
{
    json_t *j = json_object();
    json_object_set_new(j, "task", json_string(t->id));
    json_object_set_new(j, "customer", json_string(t->customer));
    json_object_set_new(j, "case", t->case_id[0] ? json_string(t->case_id) : json_null());
    json_object_set_new(j, "state", json_string(state_names[t->state]));
    json_object_set_new(j, "assignee", t->assignee ? json_string(t->assignee) : json_null());
    json_object_set_new(j, "team", t->team ? json_string(t->team) : json_null());
    json_object_set_new(j, "due", cases__jtime(t->due));
    json_object_set_new(j, "outreach", json_string(t->kind));
    if (t->issue)
        json_object_set_new(j, "issue", json_string(t->issue));
    json_object_set_new(j, "severity", json_string(severity_name((enum severity)t->severity)));
    json_t *sigs = json_array(), *msgs = json_array();
    for (size_t i = 0; i < t->nsigs; i++)
        json_array_append_new(sigs, json_string(cs->rules->signals[t->sigs[i]].id));
    for (size_t i = 0; i < t->nmsgs; i++)
        json_array_append_new(msgs, json_string(t->msgs[i]));
    json_object_set_new(j, "signals", sigs);
    json_object_set_new(j, "messages", msgs);
    return j;
}

/*
 * ,"key":"v" appended to a line being written; nothing when v is NULL or
 * not valid UTF-8 (json_object_set_new of a refused json_string set no key).
 */
static void line_str(struct buf *b, const char *key, const char *v)
{
    size_t mark = b->len;
    if (!v)
        return;
    buf_puts(b, ",\"");
    buf_puts(b, key);
    buf_puts(b, "\":");
    if (fw_json_str(b, v)) {
        b->len = mark;
        b->data[mark] = '\0';
    }
}

/* ,"key":"v" or ,"key":null (a NULL v). */
static void line_str_or_null(struct buf *b, const char *key, const char *v)
{
    if (v) {
        line_str(b, key, v);
        return;
    }
    buf_puts(b, ",\"");
    buf_puts(b, key);
    buf_puts(b, "\":null");
}

/* ,"key":time as cases__jtime gives it (null for none). */
static void line_time(struct buf *b, const char *key, int64_t t)
{
    char s[FW_TIME_MAXLEN];
    if (t != FW_TIME_NONE)
        fw_time_format(t, s);
    line_str_or_null(b, key, t == FW_TIME_NONE ? NULL : s);
}

/* ,"key":[...] of strings, those json_string would refuse left out. */
static void line_list(struct buf *b, const char *key, const char *const *v, size_t n)
{
    buf_puts(b, ",\"");
    buf_puts(b, key);
    buf_puts(b, "\":[");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        size_t mark = b->len;
        if (!first)
            buf_putc(b, ',');
        if (v[i] && !fw_json_str(b, v[i])) {
            first = 0;
            continue;
        }
        b->len = mark;
        b->data[mark] = '\0';
    }
    buf_putc(b, ']');
}

/*
 * A task's line as text, the members in the order the tree it replaces had
 * them: kind, event, task_json's, then the change's reason, by and note
 * (all of them or, when json_pack would have refused them, none), then at.
 * A line costs no tree, no update of one tree by another and no dump.
 */
static void task_line(const struct cases *cs, const struct ftask *t, const char *event,
                      const char *reason, const char *by, const char *note, int64_t at,
                      struct buf *b)
{
    buf_reserve(b, 512);
    buf_puts(b, "{\"kind\":\"task\"");
    line_str(b, "event", event);
    line_str(b, "task", t->id);
    line_str(b, "customer", t->customer);
    line_str_or_null(b, "case", t->case_id[0] ? t->case_id : NULL);
    line_str(b, "state", state_names[t->state]);
    line_str_or_null(b, "assignee", t->assignee);
    line_str_or_null(b, "team", t->team);
    line_time(b, "due", t->due);
    line_str(b, "outreach", t->kind);
    if (t->issue)
        line_str(b, "issue", t->issue);
    line_str(b, "severity", severity_name((enum severity)t->severity));
    const char *sig[64];
    size_t ns = t->nsigs < ARRAY_SIZE(sig) ? t->nsigs : ARRAY_SIZE(sig);
    for (size_t i = 0; i < ns; i++)
        sig[i] = cs->rules->signals[t->sigs[i]].id;
    if (ns == t->nsigs) {
        line_list(b, "signals", sig, ns);
    } else { /* more signals than the array holds: the tree's way */
        json_t *a = json_array();
        for (size_t i = 0; i < t->nsigs; i++)
            json_array_append_new(a, json_string(cs->rules->signals[t->sigs[i]].id));
        char *txt = fw_json_dumps(a);
        buf_puts(b, ",\"signals\":");
        buf_puts(b, txt ? txt : "[]");
        free(txt);
        json_decref(a);
    }
    line_list(b, "messages", (const char *const *)t->msgs, t->nmsgs);
    if (reason) {
        /* json_pack("{s:s, s:s?, s:s?}") is all or nothing; "s?" writes null for NULL. */
        size_t mark = b->len, before;
        line_str(b, "reason", reason);
        before = b->len;
        line_str_or_null(b, "by", by);
        int ok = before > mark && b->len > before;
        before = b->len;
        line_str_or_null(b, "note", note);
        ok = ok && b->len > before;
        if (!ok) {
            b->len = mark;
            b->data[mark] = '\0';
        }
    }
    line_time(b, "at", at);
    buf_putc(b, '}');
}

/*
 * One change of a task: its line (reason, by and note are the change's own
 * fields, for a closed task; no line when event is NULL) and its stored
 * row.  Nothing while quiet.
 */
static void task_out(struct cases *cs, const struct ftask *t, const char *event,
                     const char *reason, const char *by, const char *note, int64_t at)
{
    if (cs->quiet)
        return;
    if (event && cs->sink.line) {
        struct buf text;
        buf_init(&text, 0);
        task_line(cs, t, event, reason, by, note, at, &text);
        cs->sink.line(cs->sink.ctx, t->case_id[0] ? t->case_id : NULL, at, event, text.data,
                      text.len);
        buf_cleanup(&text);
    }
    if (cs->sink.task) {
        json_t *body = task_json(cs, t);
        json_t *extra =
            reason ? json_pack("{s:s, s:s?, s:s?}", "reason", reason, "by", by, "note", note)
                   : NULL;
        /* The stored document: the task as it stands, with when it was made and closed. */
        json_object_set_new(body, "id", json_string(t->id));
        json_object_set_new(body, "created_at", cases__jtime(t->created_at));
        json_object_set_new(body, "sent_at", cases__jtime(t->sent_at));
        json_object_set_new(body, "reminded_at", cases__jtime(t->reminded_at));
        int closed = t->state != TASK_OPEN;
        json_object_set_new(body, "closed_at", closed ? cases__jtime(at) : json_null());
        json_t *none = json_null();
        json_t *why = extra && closed ? json_object_get(extra, "reason") : NULL;
        json_t *who = extra && closed ? json_object_get(extra, "by") : NULL;
        json_t *said = extra && closed ? json_object_get(extra, "note") : NULL;
        json_object_set(body, "reason", why ? why : none);
        json_object_set(body, "closed_by", who ? who : none);
        json_object_set(body, "note", said ? said : none);
        json_decref(none);
        char *doc = fw_json_dumps(body);
        struct task_row row = {.key = t->id,
                               .customer = t->customer,
                               .kind = "outreach_followup",
                               .status = state_names[t->state],
                               .detail = doc,
                               .assignee = t->assignee,
                               .case_id = t->case_id[0] ? t->case_id : NULL,
                               .due_at = t->due,
                               .created_at = t->created_at};
        cs->sink.task(cs->sink.ctx, &row);
        free(doc);
        json_decref(extra);
        json_decref(body);
    }
}

/* ---- life cycle ---- */

static void on_due(struct engine_timer *et, int64_t due);

static struct ftask **list_of(struct cases *cs, const char *customer)
{
    return (struct ftask **)&strmap_upsert(&cs->ctasks, customer, strlen(customer), NULL)->value;
}

/* The task is over: out of its customer's list and the timer wheel, its id known as closed. */
static void close_task(struct cases *cs, struct ftask *t, int state, const char *reason,
                       const char *by, const char *note, int64_t at)
{
    t->state = state;
    if (t->armed) {
        engine_timer_cancel(cs->e, &t->t);
        t->armed = 0;
    }
    for (struct ftask **pp = list_of(cs, t->customer); *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    task_out(cs, t, state == TASK_DONE ? "done" : "cancelled", reason, by, note, at);
    strmap_find(&cs->tasks, t->id, strlen(t->id))->value = CLOSED_TASK;
    task_free(t);
}

/* Which signals a message is about (its JSON array of ids), as rule indices. */
static size_t parse_signals(const struct cases *cs, const char *text, uint32_t **out, int *sev)
{
    json_t *a = text ? fw_json_loadb(text, strlen(text), 0, NULL) : NULL;
    size_t n = 0, i;
    json_t *v;
    *out = NULL;
    *sev = SEV_LOW;
    if (json_is_array(a) && json_array_size(a)) {
        *out = xcalloc(json_array_size(a), sizeof **out);
        json_array_foreach(a, i, v)
        {
            const struct rule_signal *s =
                json_is_string(v) ? rules_signal(cs->rules, json_string_value(v)) : NULL;
            if (!s)
                continue;
            (*out)[n++] = (uint32_t)(s - cs->rules->signals);
            if ((int)s->severity > *sev)
                *sev = (int)s->severity;
        }
    }
    json_decref(a);
    return n;
}

/*
 * The task id of an outreach: the message key without its audience and
 * channel (kind|customer|signals|audience|channel|extra|at), so every
 * channel of one decision makes one task.
 */
static void task_id_of(const char *key, char out[24])
{
    const char *bar[6];
    size_t n = 0;
    for (const char *p = key; *p && n < 6; p++)
        if (*p == '|')
            bar[n++] = p;
    struct buf b;
    buf_init(&b, 0);
    if (n == 6) {
        buf_append(&b, key, (size_t)(bar[2] - key)); /* kind|customer|signals */
        buf_puts(&b, bar[4]);                        /* |extra|at */
    } else {
        buf_puts(&b, key);
    }
    snprintf(out, 24, "t_%016llx", (unsigned long long)fw_hash(b.data, b.len));
    buf_cleanup(&b);
}

static struct kase *open_case(const struct cases *cs, const char *customer)
{
    struct strmap_entry *me = strmap_find(&cs->open, customer, strlen(customer));
    return me ? me->value : NULL;
}

/* A new open task for an outreach that went out at `sent`; NULL when tasks are off for it. */
static struct ftask *create(struct cases *cs, const char *id, const char *customer,
                            const char *kind, const char *issue, const char *signals,
                            int64_t sent, int64_t now)
{
    uint32_t *sigs;
    int sev;
    size_t nsigs = parse_signals(cs, signals, &sigs, &sev);
    int64_t after = cs->cfg->followup_task[sev];
    if (after <= 0) {
        free(sigs);
        return NULL;
    }
    struct ftask *t = xcalloc(1, sizeof *t);
    t->cs = cs;
    snprintf(t->id, sizeof t->id, "%s", id);
    t->customer = xstrdup(customer);
    t->kind = xstrdup(kind);
    t->issue = issue ? xstrdup(issue) : NULL;
    t->severity = sev;
    t->sigs = sigs;
    t->nsigs = nsigs;
    t->sig_resolved = xcalloc(nsigs ? nsigs : 1, 1);
    t->created_at = now;
    t->sent_at = sent > now ? sent : now;
    t->due = t->sent_at + after;
    t->reminded_at = FW_TIME_NONE;
    struct kase *k = open_case(cs, customer);
    const struct rule_signal *lead = NULL;
    if (k) {
        snprintf(t->case_id, sizeof t->case_id, "%s", k->id);
        if (k->assignee)
            t->assignee = xstrdup(k->assignee);
        lead = cases__lead_signal(cs, k);
    }
    if (!lead) /* no case: the most severe signal the outreach was about */
        for (size_t i = 0; i < nsigs; i++)
            if (!lead || cs->rules->signals[sigs[i]].severity > lead->severity)
                lead = &cs->rules->signals[sigs[i]];
    if (lead && lead->team)
        t->team = xstrdup(lead->team);
    t->t.fire = on_due;
    strmap_upsert(&cs->tasks, t->id, strlen(t->id), NULL)->value = t;
    struct ftask **head = list_of(cs, customer);
    t->next = *head;
    *head = t;
    engine_timer_arm(cs->e, &t->t, t->due);
    t->armed = 1;
    return t;
}

void cases__task_message(struct cases *cs, const struct outbox_msg *m)
{
    if (!m->customer || !m->audience || strcmp(m->audience, "customer") || !m->key || !m->status)
        return;
    const char *bar = strchr(m->key, '|');
    char kind[32];
    snprintf(kind, sizeof kind, "%.*s", bar ? (int)(bar - m->key) : 0, m->key);
    if (!strcmp(kind, "known_issue_resolved")) {
        /* The issue is fixed and the customer is told: its alert's task is done. */
        char *issue = key_extra(m->key);
        struct strmap_entry *ce = strmap_find(&cs->ctasks, m->customer, strlen(m->customer));
        for (struct ftask *t = ce ? ce->value : NULL, *next; t && issue; t = next) {
            next = t->next;
            if (t->issue && !strcmp(t->issue, issue)) {
                char reason[160];
                snprintf(reason, sizeof reason, "issue_resolved: %s", issue);
                close_task(cs, t, TASK_DONE, reason, NULL, NULL, m->created_at);
            }
        }
        free(issue);
        return;
    }
    if (!proactive_kind(kind))
        return;
    char id[24];
    task_id_of(m->key, id);
    struct strmap_entry *me = strmap_find(&cs->tasks, id, strlen(id));
    if (me) { /* another channel of the same outreach */
        if (me->value != CLOSED_TASK && !strcmp(m->status, "scheduled")) {
            add_msg(me->value, m->id);
            task_out(cs, me->value, NULL, NULL, NULL, NULL, m->created_at);
        }
        return;
    }
    if (!strcmp(m->status, "awaiting_approval")) {
        /* It gets its task when it is sent (message.sent, after a person approved it). */
        struct held *h = xcalloc(1, sizeof *h);
        snprintf(h->task, sizeof h->task, "%s", id);
        h->kind = xstrdup(kind);
        h->issue = !strcmp(kind, "known_issue") ? key_extra(m->key) : NULL;
        h->signals = xstrdup(m->signals ? m->signals : "[]");
        struct strmap_entry *he = strmap_upsert(&cs->held, m->id, strlen(m->id), NULL);
        if (he->value) {
            free(((struct held *)he->value)->kind);
            free(((struct held *)he->value)->issue);
            free(((struct held *)he->value)->signals);
            free(he->value);
        }
        he->value = h;
        return;
    }
    if (strcmp(m->status, "scheduled"))
        return; /* suppressed, or anything else that does not go out: no task */
    char *issue = !strcmp(kind, "known_issue") ? key_extra(m->key) : NULL;
    struct ftask *t =
        create(cs, id, m->customer, kind, issue, m->signals, m->send_at, m->created_at);
    free(issue);
    if (!t)
        return;
    add_msg(t, m->id);
    task_out(cs, t, "created", NULL, NULL, NULL, m->created_at);
}

/* A held outreach was sent: its task starts now. */
static void on_sent(struct cases *cs, const struct event *ev, const char *customer)
{
    const char *mid = json_string_value(json_object_get(ev->data, "message_id"));
    struct strmap_entry *he = mid ? strmap_find(&cs->held, mid, strlen(mid)) : NULL;
    if (!he || !he->value)
        return;
    struct held *h = he->value;
    int64_t now = engine_now(cs->e);
    struct strmap_entry *me = strmap_find(&cs->tasks, h->task, strlen(h->task));
    if (!me) {
        struct ftask *t = create(cs, h->task, customer, h->kind, h->issue, h->signals, now, now);
        if (t) {
            add_msg(t, mid);
            task_out(cs, t, "created", NULL, NULL, NULL, now);
        }
    } else if (me->value != CLOSED_TASK) {
        add_msg(me->value, mid);
        task_out(cs, me->value, NULL, NULL, NULL, NULL, now);
    }
    free(h->kind);
    free(h->issue);
    free(h->signals);
    free(h);
    he->value = NULL;
}

void cases__task_event(struct cases *cs, const struct event *ev, const char *customer)
{
    if (!strcmp(ev->type, "message.sent")) {
        on_sent(cs, ev, customer);
        return;
    }
    int replied = !strcmp(ev->type, "message.replied");
    if (!replied && !rules_type_in_class(cs->rules, ev->type, "contact"))
        return;
    struct strmap_entry *me = strmap_find(&cs->ctasks, customer, strlen(customer));
    if (!me || !me->value)
        return;
    int64_t now = engine_now(cs->e);
    char reason[160];
    snprintf(reason, sizeof reason, "%s: %s", replied ? "customer_replied" : "customer_contact",
             ev->type);
    while (me->value) /* close_task unlinks the head */
        close_task(cs, me->value, TASK_DONE, reason, NULL, NULL, now);
}

void cases__task_detection(struct cases *cs, const struct detection *d)
{
    struct strmap_entry *me = strmap_find(&cs->ctasks, d->customer, strlen(d->customer));
    if (!me || !me->value)
        return;
    uint32_t sig = (uint32_t)(d->signal - cs->rules->signals);
    for (struct ftask *t = me->value, *next; t; t = next) {
        next = t->next;
        int about = 0, all = t->nsigs > 0;
        for (size_t i = 0; i < t->nsigs; i++) {
            if (t->sigs[i] == sig) {
                t->sig_resolved[i] = !d->firing; /* firing again: the problem is back */
                about = 1;
            }
            all &= t->sig_resolved[i];
        }
        if (about && all && !d->firing) {
            char reason[160];
            snprintf(reason, sizeof reason, "detection_resolved: %s", d->signal->id);
            close_task(cs, t, TASK_DONE, reason, NULL, NULL, d->at);
        }
    }
}

void cases__task_case_assigned(struct cases *cs, const struct kase *k, int64_t at)
{
    struct strmap_entry *me = strmap_find(&cs->ctasks, k->customer, strlen(k->customer));
    for (struct ftask *t = me ? me->value : NULL; t; t = t->next) {
        if (strcmp(t->case_id, k->id))
            continue;
        if ((!t->assignee && !k->assignee) ||
            (t->assignee && k->assignee && !strcmp(t->assignee, k->assignee)))
            continue;
        free(t->assignee);
        t->assignee = k->assignee ? xstrdup(k->assignee) : NULL;
        task_out(cs, t, "assigned", NULL, NULL, NULL, at);
    }
}

/* The reminder: the task is due and still open. */
static void on_due(struct engine_timer *et, int64_t due)
{
    struct ftask *t = (struct ftask *)et;
    struct cases *cs = t->cs;
    t->armed = 0;
    t->reminded_at = due;
    task_out(cs, t, "reminder", NULL, NULL, NULL, due);
    if (cs->quiet || engine_now(cs->e) - due > TASK_NOTICE_LATE_MS)
        return; /* a due time that passed before forewarn heard of it: shown, nobody paged */
    char key[96], sent[FW_TIME_MAXLEN];
    snprintf(key, sizeof key, "task:%s:due:%lld", t->id, (long long)t->due);
    fw_time_format(t->sent_at, sent);
    struct kase *k = open_case(cs, t->customer);
    const char *name = k && k->name ? k->name : t->customer;
    struct buf subject, body, about;
    buf_init(&subject, 0);
    buf_init(&body, 0);
    buf_init(&about, 0);
    for (size_t i = 0; i < t->nsigs; i++)
        buf_printf(&about, "%s%s", i ? "; " : "", cs->rules->signals[t->sigs[i]].name);
    if (t->issue)
        buf_printf(&about, "%s%s", about.len ? "; " : "", t->issue);
    buf_printf(&subject, "Follow-up due: check back with %s", name);
    buf_printf(&body,
               "%s\nWe reached out to %s on %s (%s%s%s) and have not heard back.\n"
               "Task %s%s%s. Complete it with a note once you have checked in, or cancel it: "
               "POST /v1/tasks/%s/complete or /cancel.\n",
               subject.data, name, sent, t->kind, about.len ? ": " : "",
               about.len ? about.data : "", t->id, t->case_id[0] ? ", case " : "", t->case_id,
               t->id);
    char explain[160], meta[160], signals[160] = "[]";
    if (t->nsigs)
        snprintf(signals, sizeof signals, "[\"%s\"]", cs->rules->signals[t->sigs[0]].id);
    snprintf(explain, sizeof explain, "{\"task\":{\"id\":\"%s\",\"event\":\"due\"}}", t->id);
    snprintf(meta, sizeof meta, "{\"task\":\"%s\",\"case\":\"%s\",\"priority\":\"normal\"}", t->id,
             t->case_id);
    cases__slack_notice_to(cs, t->customer, t->assignee, key, subject.data, body.data, signals,
                           explain, meta, due);
    buf_cleanup(&subject);
    buf_cleanup(&body);
    buf_cleanup(&about);
}

/* ---- a person's actions ---- */

int cases__task_check(const struct cases *cs, const struct event *ev, char *why, size_t n)
{
    const char *id = json_string_value(json_object_get(ev->data, "task"));
    struct strmap_entry *me = id ? strmap_find(&cs->tasks, id, strlen(id)) : NULL;
    if (!me) {
        snprintf(why, n, "no task %s", id ? id : "(none named)");
        return FW_ENOTFOUND;
    }
    if (me->value == CLOSED_TASK) {
        snprintf(why, n, "task %s is closed", id);
        return FW_ESTATE;
    }
    const struct ftask *t = me->value;
    if (!ev->subject || strcmp(ev->subject, t->customer)) {
        snprintf(why, n, "task %s is about %s, not %s", id, t->customer,
                 ev->subject ? ev->subject : "(no subject)");
        return FW_ESTATE;
    }
    return 0;
}

void cases__task_action(struct cases *cs, const struct event *ev)
{
    char why[256];
    if (cases__task_check(cs, ev, why, sizeof why)) {
        cs->stats.ignored++;
        log_warn("event %s (%s) ignored: %s", ev->id, ev->type, why);
        return;
    }
    struct ftask *t = find_open(cs, json_string_value(json_object_get(ev->data, "task")));
    const char *agent = json_string_value(json_object_get(ev->data, "agent"));
    const char *note = json_string_value(json_object_get(ev->data, "note"));
    /* Now, or a loaded history's own time when that is not before the task was made. */
    int64_t now = engine_now(cs->e);
    int64_t at = ev->time < now && ev->time >= t->created_at ? ev->time : now;
    int done = !strcmp(ev->type, "case.task_completed");
    close_task(cs, t, done ? TASK_DONE : TASK_CANCELLED, done ? "completed" : "cancelled", agent,
               note, at);
}

void cases__task_free_all(struct cases *cs)
{
    for (size_t i = 0; i < cs->tasks.len; i++) {
        struct ftask *t = cs->tasks.entries[i].value;
        if (t && t != CLOSED_TASK) {
            if (t->armed && cs->e)
                engine_timer_cancel(cs->e, &t->t);
            task_free(t);
        }
    }
    for (size_t i = 0; i < cs->held.len; i++) {
        struct held *h = cs->held.entries[i].value;
        if (h) {
            free(h->kind);
            free(h->issue);
            free(h->signals);
            free(h);
        }
    }
    strmap_cleanup(&cs->tasks);
    strmap_cleanup(&cs->ctasks);
    strmap_cleanup(&cs->held);
}

/* ---- snapshots (snap.c) ---- */

void cases__tasks_write(const struct cases *cs, struct buf *out)
{
    /* Every task id ever made, in order, with the open ones whole. */
    wire_put_u64(out, cs->tasks.len);
    for (size_t i = 0; i < cs->tasks.len; i++) {
        const struct ftask *t = cs->tasks.entries[i].value;
        wire_put_str(out, cs->tasks.entries[i].key);
        wire_put_u8(out, t != CLOSED_TASK);
        if (t == CLOSED_TASK)
            continue;
        wire_put_str(out, t->customer);
        wire_put_str(out, t->case_id);
        wire_put_str(out, t->assignee);
        wire_put_str(out, t->team);
        wire_put_str(out, t->kind);
        wire_put_str(out, t->issue);
        wire_put_u32(out, (uint32_t)t->severity);
        wire_put_u32(out, (uint32_t)t->nsigs);
        for (size_t j = 0; j < t->nsigs; j++) {
            wire_put_u32(out, t->sigs[j]);
            wire_put_u8(out, t->sig_resolved[j]);
        }
        wire_put_u32(out, (uint32_t)t->nmsgs);
        for (size_t j = 0; j < t->nmsgs; j++)
            wire_put_str(out, t->msgs[j]);
        wire_put_i64(out, t->created_at);
        wire_put_i64(out, t->sent_at);
        wire_put_i64(out, t->due);
        wire_put_i64(out, t->reminded_at);
        engine_timer_write(cs->e, &t->t, out);
    }
    /* Each customer's open tasks, in list order (newest first). */
    wire_put_u64(out, cs->ctasks.len);
    for (size_t i = 0; i < cs->ctasks.len; i++) {
        wire_put_str(out, cs->ctasks.entries[i].key);
        size_t n = 0;
        for (const struct ftask *t = cs->ctasks.entries[i].value; t; t = t->next)
            n++;
        wire_put_u32(out, (uint32_t)n);
        for (const struct ftask *t = cs->ctasks.entries[i].value; t; t = t->next)
            wire_put_str(out, t->id);
    }
    /* Outreach held for approval, by message id (NULL once it went or was dropped). */
    wire_put_u64(out, cs->held.len);
    for (size_t i = 0; i < cs->held.len; i++) {
        const struct held *h = cs->held.entries[i].value;
        wire_put_str(out, cs->held.entries[i].key);
        wire_put_u8(out, h != NULL);
        if (!h)
            continue;
        wire_put_str(out, h->task);
        wire_put_str(out, h->kind);
        wire_put_str(out, h->issue);
        wire_put_str(out, h->signals);
    }
}

/* A string into a fixed field: too long or absent sets err. */
static void get_fixed(struct wire_rd *in, char *dst, size_t size)
{
    char *s = wire_get_str(in);
    if (!s || strlen(s) >= size)
        in->err = 1;
    else
        memcpy(dst, s, strlen(s) + 1);
    free(s);
}

void cases__tasks_read(struct cases *cs, struct wire_rd *in)
{
    uint64_t n = wire_get_u64(in);
    if (n > in->n - in->off)
        in->err = 1;
    for (uint64_t i = 0; i < n && !in->err; i++) {
        char *id = wire_get_str(in);
        int created = 0;
        struct strmap_entry *me =
            id && strlen(id) < 24 ? strmap_upsert(&cs->tasks, id, strlen(id), &created) : NULL;
        free(id);
        if (!created) {
            in->err = 1;
            break;
        }
        me->value = CLOSED_TASK;
        if (!wire_get_u8(in))
            continue;
        struct ftask *t = xcalloc(1, sizeof *t);
        t->cs = cs;
        tw_entry_init(&t->t._tw);
        t->t.fire = on_due;
        snprintf(t->id, sizeof t->id, "%s", me->key);
        me->value = t; /* freed by cases_free from here on */
        t->customer = wire_get_str(in);
        get_fixed(in, t->case_id, sizeof t->case_id);
        t->assignee = wire_get_str(in);
        t->team = wire_get_str(in);
        t->kind = wire_get_str(in);
        t->issue = wire_get_str(in);
        t->severity = (int)wire_get_u32(in);
        if (!t->customer || !t->kind || t->severity < 0 || t->severity > SEV_CRITICAL)
            in->err = 1;
        uint32_t ns = wire_get_count(in, 5);
        t->sigs = xcalloc(ns + 1, sizeof *t->sigs);
        t->sig_resolved = xcalloc(ns + 1, 1);
        for (uint32_t j = 0; j < ns && !in->err; j++) {
            t->sigs[j] = wire_get_u32(in);
            t->sig_resolved[j] = wire_get_u8(in);
            t->nsigs++;
            if (t->sigs[j] >= cs->rules->nsignals)
                in->err = 1;
        }
        uint32_t nm = wire_get_count(in, 5);
        for (uint32_t j = 0; j < nm && !in->err; j++) {
            char *m = wire_get_str(in);
            if (!m) {
                in->err = 1;
                break;
            }
            t->msgs = xgrow(t->msgs, &t->capmsgs, t->nmsgs + 1, sizeof *t->msgs);
            t->msgs[t->nmsgs++] = m;
        }
        t->created_at = wire_get_time(in);
        t->sent_at = wire_get_time(in);
        t->due = wire_get_time(in);
        t->reminded_at = wire_get_time(in);
        t->state = TASK_OPEN;
        if (!in->err)
            t->armed = engine_timer_read(cs->e, &t->t, in) != FW_TIME_NONE;
    }
    /* Every open task is in exactly one list: its customer's. */
    size_t listed = 0, open = 0;
    n = wire_get_u64(in);
    if (n > in->n - in->off)
        in->err = 1;
    for (uint64_t i = 0; i < n && !in->err; i++) {
        char *key = wire_get_str(in);
        int created = 0;
        struct strmap_entry *me = key ? strmap_upsert(&cs->ctasks, key, strlen(key), &created)
                                      : NULL;
        uint32_t k = wire_get_count(in, 5);
        struct ftask **tail = me ? (struct ftask **)&me->value : NULL;
        for (uint32_t j = 0; created && j < k && !in->err; j++) {
            char *id = wire_get_str(in);
            struct ftask *t = id ? find_open(cs, id) : NULL;
            free(id);
            if (!t || t->next || *tail == t || strcmp(t->customer, key)) {
                in->err = 1;
                break;
            }
            *tail = t;
            tail = &t->next;
            listed++;
        }
        if (!created)
            in->err = 1;
        free(key);
    }
    for (size_t i = 0; i < cs->tasks.len; i++)
        open += cs->tasks.entries[i].value != CLOSED_TASK;
    if (!in->err && listed != open)
        in->err = 1;
    n = wire_get_u64(in);
    if (n > in->n - in->off)
        in->err = 1;
    for (uint64_t i = 0; i < n && !in->err; i++) {
        char *key = wire_get_str(in);
        int created = 0;
        struct strmap_entry *me = key ? strmap_upsert(&cs->held, key, strlen(key), &created)
                                      : NULL;
        free(key);
        if (!created) {
            in->err = 1;
            break;
        }
        if (!wire_get_u8(in))
            continue;
        struct held *h = me->value = xcalloc(1, sizeof *h);
        get_fixed(in, h->task, sizeof h->task);
        h->kind = wire_get_str(in);
        h->issue = wire_get_str(in);
        h->signals = wire_get_str(in);
        if (!h->kind)
            in->err = 1;
    }
}
