/*
 * case_routes.c -- cases and the queue (docs/cases.md, docs/openapi.yaml).
 *
 *   GET  /v1/queue                 open cases for the caller, by priority, with counts
 *   POST /v1/queue/next            guided mode: take the case to work now
 *   GET  /v1/cases                 every case (filters, pages), from the store
 *   GET  /v1/cases/{id}            one case: document, clocks now, timeline
 *   POST /v1/cases/{id}/{action}   assign, respond, status, note, skip, resolve
 *   GET  /v1/tasks                 follow-up tasks, ladder steps and reminders, by due time
 *   GET  /v1/tasks/{id}            one task
 *   POST /v1/tasks/{id}/{action}   complete, cancel (a follow-up task after outreach)
 *
 * Every action becomes a `case.*` event with the caller as its agent,
 * checked against the live cases and journaled on the engine thread
 * (pipeline_act), so replaying the journal gives the same case.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cases/cases.h"
#include "http/http_int.h"
#include "store/cases.h"
#include "store/messages.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/util.h"

/* Agents see their cases and the unassigned ones; everyone else with read access sees all. */
static int sees_all(const struct req *r)
{
    return r->who.role != ROLE_AGENT;
}

/* ---- GET /v1/queue ---- */

struct queue_read {
    struct queue_query q;
    int64_t now;
    struct buf *out;
    const char *next; /* POST /v1/queue/next: the case to take */
    char next_id[24];
    char next_customer[512];
    int next_assigned; /* already the caller's */
};

static void read_queue(void *ctx, const struct cases *cs, const struct engine *e)
{
    struct queue_read *qr = ctx;
    (void)e;
    cases_queue_json(cs, &qr->q, qr->now, qr->out);
}

static void get_queue(struct req *r)
{
    static const char *const filters[] = {"mine", "unassigned", "breaching_soon", "breached", NULL};
    long limit;
    if (http__query_int(r, "limit", 1, 500, 50, &limit))
        return;
    struct queue_read qr = {.q = {.user = r->who.name, .all = sees_all(r), .limit = (int)limit},
                            .out = &r->out};
    qr.q.filter = http_query(r, "filter");
    qr.q.severity = http_query(r, "severity");
    if (qr.q.filter) {
        int ok = 0;
        for (size_t i = 0; filters[i]; i++)
            ok |= !strcmp(qr.q.filter, filters[i]);
        if (!ok) {
            http_error(r, 400, "query parameter filter: '%s' is not one of mine, unassigned, "
                               "breaching_soon, breached", qr.q.filter);
            return;
        }
    }
    if (qr.q.severity && severity_parse(qr.q.severity) < 0) {
        http_error(r, 400, "query parameter severity: '%s' is not one of CRITICAL, HIGH, MEDIUM, LOW",
                   qr.q.severity);
        return;
    }
    qr.now = pipeline_now(r->env->pipeline);
    qr.q.virtual_clock = pipeline_virtual(r->env->pipeline);
    buf_reset(&r->out);
    pipeline_with_cases(r->env->pipeline, read_queue, &qr);
    snprintf(r->audit_id, sizeof r->audit_id, "queue");
    http_reply_json(r, 200, &r->out);
}

/* ---- actions ---- */

/* The case's stored document (reader): customer, state, assignee.  Replies 404/503 itself. */
static json_t *load_case(struct req *r, const char *id)
{
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        http_error(r, 503, "database unavailable");
        return NULL;
    }
    struct buf b;
    buf_init(&b, 0);
    int rc = store_case_get(s, id, &b);
    http__reader_release(&r->env->readers, s);
    json_t *doc = rc ? NULL : fw_json_loadb(b.data, b.len, 0, NULL);
    buf_cleanup(&b);
    if (rc == FW_ENOTFOUND)
        http_error(r, 404, "no case %s", id);
    else if (!doc)
        http_error(r, 500, "could not read case %s", id);
    return doc;
}

struct live_read {
    const char *id;
    int64_t now;
    struct buf *out;
    int rc;
};

static void read_live(void *ctx, const struct cases *cs, const struct engine *e)
{
    struct live_read *lr = ctx;
    (void)e;
    lr->rc = cases_live_json(cs, lr->id, lr->now, lr->out);
}

/* Reply with the case as it is now: its document, and the live view while it is open. */
static void reply_case(struct req *r, const char *id, unsigned status, int timeline);

/*
 * Write one action on case `id` for the caller.  data (stolen) holds the
 * action's fields; agent is set here.  Replies itself.
 */
static void act(struct req *r, const char *id, const char *type, json_t *data)
{
    json_t *doc = load_case(r, id);
    if (!doc) {
        json_decref(data);
        return;
    }
    const char *customer = json_string_value(json_object_get(doc, "customer"));
    const char *state = json_string_value(json_object_get(doc, "state"));
    const char *assignee = json_string_value(json_object_get(doc, "assignee"));
    if (state && !strcmp(state, "resolved")) {
        http_error(r, 409, "case %s is resolved; nothing was changed", id);
        goto out;
    }
    /* An agent works their own cases and unassigned ones; notes may be left on any. */
    if (r->who.role == ROLE_AGENT && assignee && strcmp(assignee, r->who.name) &&
        strcmp(type, "case.note_added")) {
        http_error(r, 403, "case %s is assigned to %s; an agent may act only on their own or "
                           "unassigned cases (a lead may reassign it)", id, assignee);
        goto out;
    }
    if (!json_object_get(data, "agent"))
        json_object_set_new(data, "agent", json_string(r->who.name));
    json_object_set_new(data, "case", json_string(id));
    char eid[40];
    http__event_id("act_", eid);
    if (!http__act(r, eid, type, customer, data, NULL, "action", NULL))
        reply_case(r, id, 200, 0);
out:
    json_decref(data);
    json_decref(doc);
}

/* The request body as a JSON object (empty body: {}).  Replies 400 itself. */
static json_t *body_object(struct req *r)
{
    if (!r->body_len)
        return json_object();
    json_error_t err;
    json_t *j = fw_json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(j)) {
        if (j)
            http_error(r, 400, "the body must be a JSON object");
        else
            http_error(r, 400, "body: malformed JSON at line %d column %d: %s", err.line,
                       err.column, err.text);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Copy body[name] (a string, required or not) into data; 400 and -1 on a wrong type. */
static int take_str(struct req *r, json_t *body, json_t *data, const char *name, int required)
{
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v)) {
        if (required) {
            http_error(r, 400, "body: %s is required", name);
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v) || !json_string_length(v)) {
        http_error(r, 400, "body: %s must be a non-empty string", name);
        return -1;
    }
    json_object_set(data, name, v);
    return 0;
}

/*
 * The fields each action takes; any other is refused (400), so a client
 * that thinks it can set a field (who acted, when, the case's owner) learns
 * that it cannot, rather than having it dropped in silence.
 */
static const struct {
    const char *action, *fields[3];
} action_fields[] = {
    {"assign", {"agent"}},   {"respond", {"channel"}}, {"status", {"status"}},
    {"note", {"text"}},      {"skip", {"reason"}},     {"playbook", {"playbook"}},
    {"resolve", {"outcome", "csat"}}, {"steps/", {"reason"}},
};

/* 0, or 400 naming the first unknown field of body for action. */
static int only_known_fields(struct req *r, json_t *body, const char *action)
{
    for (size_t i = 0; i < ARRAY_SIZE(action_fields); i++) {
        size_t n = strlen(action_fields[i].action);
        if (action_fields[i].action[n - 1] == '/' ? strncmp(action, action_fields[i].action, n)
                                                  : strcmp(action, action_fields[i].action))
            continue;
        const char *k;
        json_t *v;
        json_object_foreach (body, k, v) {
            int ok = 0;
            for (int f = 0; f < 3 && action_fields[i].fields[f] && !ok; f++)
                ok = !strcmp(k, action_fields[i].fields[f]);
            if (!ok) {
                http_error(r, 400, "body: unknown field '%s' for %s (known: %s%s%s); nothing "
                                   "was changed", k, action_fields[i].action,
                           action_fields[i].fields[0], action_fields[i].fields[1] ? ", " : "",
                           action_fields[i].fields[1] ? action_fields[i].fields[1] : "");
                return -1;
            }
        }
        return 0;
    }
    return 0; /* an unknown action: post_action says so */
}

static void post_action(struct req *r, const char *id, const char *action)
{
    json_t *body = body_object(r);
    if (!body)
        return;
    if (only_known_fields(r, body, action)) {
        json_decref(body);
        return;
    }
    json_t *data = json_object();
    const char *type = NULL;
    int bad = 0;
    if (!strcmp(action, "assign")) {
        type = "case.assigned";
        json_t *agent = json_object_get(body, "agent");
        if (agent && !json_is_string(agent)) {
            http_error(r, 400, "body: agent must be a user name");
            bad = 1;
        } else if (agent && strcmp(json_string_value(agent), r->who.name)) {
            if (!(r->who.role & ROLES_LEAD)) {
                http_error(r, 403, "assigning a case to someone else needs the lead or admin "
                                   "role; you are %s", role_name(r->who.role));
                bad = 1;
            } else {
                json_object_set(data, "agent", agent);
            }
        }
        json_object_set_new(data, "by", json_string(r->who.name));
    } else if (!strcmp(action, "respond")) {
        type = "case.responded";
        bad = take_str(r, body, data, "channel", 1);
    } else if (!strcmp(action, "status")) {
        type = "case.status_changed";
        bad = take_str(r, body, data, "status", 1);
    } else if (!strcmp(action, "note")) {
        type = "case.note_added";
        bad = take_str(r, body, data, "text", 1);
    } else if (!strcmp(action, "skip")) {
        type = "case.skipped";
        bad = take_str(r, body, data, "reason", 1);
    } else if (!strcmp(action, "playbook")) {
        type = "case.playbook_set";
        bad = take_str(r, body, data, "playbook", 1);
    } else if (!strncmp(action, "steps/", 6)) {
        /* steps/{n}/complete, steps/{n}/skip */
        char *end;
        long n = strtol(action + 6, &end, 10);
        if (end == action + 6 || n < 1 || n > 1000 ||
            (strcmp(end, "/complete") && strcmp(end, "/skip"))) {
            http_error(r, 404, "no such step action: %s (steps/{n}/complete, steps/{n}/skip)",
                       action);
            bad = 1;
        } else {
            type = !strcmp(end, "/complete") ? "case.step_completed" : "case.step_skipped";
            json_object_set_new(data, "step", json_integer(n));
            if (!strcmp(end, "/skip"))
                bad = take_str(r, body, data, "reason", 0);
        }
    } else if (!strcmp(action, "resolve")) {
        type = "case.resolved";
        bad = take_str(r, body, data, "outcome", 1);
        json_t *csat = json_object_get(body, "csat");
        if (!bad && csat && !json_is_null(csat))
            json_object_set(data, "csat", csat);
    } else {
        http_error(r, 404, "no such case action: %s (assign, respond, status, note, skip, resolve, "
                           "playbook, steps/{n}/complete, steps/{n}/skip)", action);
        bad = 1;
    }
    json_decref(body);
    if (bad) {
        json_decref(data);
        return;
    }
    r->audit_action = type;
    act(r, id, type, data);
}

/* ---- POST /v1/queue/next ---- */

static void read_next(void *ctx, const struct cases *cs, const struct engine *e)
{
    struct queue_read *qr = ctx;
    (void)e;
    const char *id = cases_next_for(cs, qr->q.user, qr->now);
    if (id) {
        snprintf(qr->next_id, sizeof qr->next_id, "%s", id);
        qr->next = qr->next_id;
    }
}

static void post_next(struct req *r)
{
    struct queue_read qr = {.q = {.user = r->who.name}, .now = pipeline_now(r->env->pipeline)};
    pipeline_with_cases(r->env->pipeline, read_next, &qr);
    if (!qr.next) {
        buf_reset(&r->out);
        buf_puts(&r->out, "{\"case\":null,\"reason\":\"nothing in the queue for you: no "
                          "unassigned case you have not skipped\"}");
        http_reply_json(r, 200, &r->out);
        return;
    }
    snprintf(r->audit_id, sizeof r->audit_id, "%s", qr.next);
    r->audit_action = "queue.next";
    json_t *doc = load_case(r, qr.next);
    if (!doc)
        return;
    const char *assignee = json_string_value(json_object_get(doc, "assignee"));
    int mine = assignee && !strcmp(assignee, r->who.name);
    json_decref(doc);
    if (mine) {
        reply_case(r, qr.next, 200, 0);
        return;
    }
    json_t *data = json_object();
    json_object_set_new(data, "by", json_string(r->who.name));
    json_object_set_new(data, "guided", json_true());
    act(r, qr.next, "case.assigned", data);
}

/* ---- GET /v1/cases, GET /v1/cases/{id} ---- */

static void get_cases(struct req *r)
{
    static const char *const states[] = {"open", "resolved", NULL};
    long limit, after;
    if (http__query_int(r, "limit", 1, 500, 50, &limit) ||
        http__query_int(r, "cursor", 0, 0x7fffffffffffffffL, 0, &after))
        return;
    struct case_query q = {.state = http_query(r, "state"), .customer = http_query(r, "customer"),
                           .severity = http_query(r, "severity"),
                           .assignee = http_query(r, "assignee"), .after = after,
                           .limit = (int)limit};
    if (q.state && strcmp(q.state, states[0]) && strcmp(q.state, states[1])) {
        http_error(r, 400, "query parameter state: '%s' is not open or resolved", q.state);
        return;
    }
    if (q.severity && severity_parse(q.severity) < 0) {
        http_error(r, 400, "query parameter severity: '%s' is not one of CRITICAL, HIGH, MEDIUM, LOW",
                   q.severity);
        return;
    }
    /* Agents may list every case (read access); the queue is where their view narrows. */
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        http_error(r, 503, "database unavailable");
        return;
    }
    buf_reset(&r->out);
    int rc = store_cases_json(s, &q, &r->out);
    http__reader_release(&r->env->readers, s);
    snprintf(r->audit_id, sizeof r->audit_id, "list");
    if (rc)
        http_error(r, 500, "could not read cases");
    else
        http_reply_json(r, 200, &r->out);
}

/* One timeline entry per history line, message, and customer event, by time. */
static int by_at(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int64_t p = FW_TIME_NONE, q = FW_TIME_NONE;
    const char *ps = json_string_value(json_object_get(x, "at")),
               *qs = json_string_value(json_object_get(y, "at"));
    if (ps)
        fw_time_parse(ps, strlen(ps), &p);
    if (qs)
        fw_time_parse(qs, strlen(qs), &q);
    if (p != q)
        return p < q ? -1 : 1;
    /* At one instant, the order they were gathered in (history first, as it happened). */
    json_int_t i = json_integer_value(json_object_get(x, "_n")),
               j = json_integer_value(json_object_get(y, "_n"));
    return (i > j) - (i < j);
}

static json_t *timeline(struct store *s, json_t *doc, json_t *history)
{
    size_t n = 0, cap = 0, i;
    json_t **items = NULL, *v;
    json_array_foreach(history, i, v)
    {
        json_t *e = json_pack("{s:O, s:s, s:O, s:O}", "at", json_object_get(v, "at"), "kind",
                              json_string_value(json_object_get(v, "kind")), "what",
                              json_object_get(v, "event"), "detail", v);
        items = xgrow(items, &cap, n + 1, sizeof *items);
        items[n++] = e;
    }
    json_array_foreach(json_object_get(doc, "detections"), i, v)
    {
        items = xgrow(items, &cap, n + 2, sizeof *items);
        items[n++] = json_pack("{s:O, s:s, s:s, s:O}", "at", json_object_get(v, "fired_at"),
                               "kind", "detection", "what", "fired", "detail", v);
        if (json_is_string(json_object_get(v, "resolved_at")))
            items[n++] = json_pack("{s:O, s:s, s:s, s:O}", "at", json_object_get(v, "resolved_at"),
                                   "kind", "detection", "what", "resolved", "detail", v);
    }
    json_array_foreach(json_object_get(doc, "messages"), i, v)
    {
        struct outbox_msg m;
        if (store_message_get(s, json_string_value(v), &m))
            continue;
        char at[FW_TIME_MAXLEN];
        fw_time_format(m.created_at, at);
        items = xgrow(items, &cap, n + 1, sizeof *items);
        items[n++] = json_pack("{s:s, s:s, s:s, s:{s:s, s:s?, s:s?, s:s?, s:s?, s:s?}}", "at", at,
                               "kind", "message", "what", m.status, "detail", "id", m.id,
                               "audience", m.audience, "channel", m.channel, "status", m.status,
                               "subject", m.subject, "reason", m.reason);
        outbox_msg_cleanup(&m);
    }
    /* The customer's events around the case (the journey leading to it and since). */
    struct buf b;
    buf_init(&b, 0);
    const char *customer = json_string_value(json_object_get(doc, "customer"));
    if (customer && !store_timeline_json(s, customer, 100, &b)) {
        json_t *evs = fw_json_loadb(b.data, b.len, 0, NULL);
        json_array_foreach(evs, i, v)
        {
            items = xgrow(items, &cap, n + 1, sizeof *items);
            items[n++] = json_pack("{s:O, s:s, s:O, s:O}", "at", json_object_get(v, "time"),
                                   "kind", "event", "what", json_object_get(v, "type"), "detail",
                                   v);
        }
        json_decref(evs);
    }
    buf_cleanup(&b);
    for (size_t k = 0; k < n; k++)
        json_object_set_new(items[k], "_n", json_integer((json_int_t)k));
    qsort(items, n, sizeof *items, by_at);
    json_t *out = json_array();
    for (size_t k = 0; k < n; k++) {
        json_object_del(items[k], "_n");
        json_array_append_new(out, items[k]);
    }
    free(items);
    return out;
}

static void reply_case(struct req *r, const char *id, unsigned status, int with_timeline)
{
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        http_error(r, 503, "database unavailable");
        return;
    }
    struct buf b, h;
    buf_init(&b, 0);
    buf_init(&h, 0);
    int rc = store_case_get(s, id, &b);
    if (!rc)
        rc = store_case_history_json(s, id, &h);
    json_t *doc = rc ? NULL : fw_json_loadb(b.data, b.len, 0, NULL);
    json_t *history = rc ? NULL : fw_json_loadb(h.data, h.len, 0, NULL);
    if (doc && history) {
        json_object_set(doc, "history", history);
        if (with_timeline)
            json_object_set_new(doc, "timeline", timeline(s, doc, history));
        /* Its follow-up tasks, open and closed, as GET /v1/tasks shows them. */
        struct buf t;
        buf_init(&t, 0);
        struct task_query tq = {.case_id = id, .due_before = FW_TIME_NONE, .limit = 100,
                                .now = pipeline_now(r->env->pipeline)};
        json_t *tj = store_tasks_json(s, &tq, &t) ? NULL : fw_json_loadb(t.data, t.len, 0, NULL);
        json_object_set(doc, "tasks", json_is_array(json_object_get(tj, "tasks"))
                                          ? json_object_get(tj, "tasks")
                                          : json_array());
        json_decref(tj);
        buf_cleanup(&t);
    }
    http__reader_release(&r->env->readers, s);
    buf_cleanup(&b);
    buf_cleanup(&h);
    json_decref(history);
    if (rc == FW_ENOTFOUND) {
        http_error(r, 404, "no case %s", id);
        return;
    }
    if (!doc) {
        http_error(r, 500, "could not read case %s", id);
        return;
    }
    /* While it is open: clocks and priority as of now. */
    struct buf live;
    buf_init(&live, 0);
    struct live_read lr = {.id = id, .now = pipeline_now(r->env->pipeline), .out = &live};
    pipeline_with_cases(r->env->pipeline, read_live, &lr);
    json_t *lj = lr.rc ? NULL : fw_json_loadb(live.data, live.len, 0, NULL);
    buf_cleanup(&live);
    json_object_set_new(doc, "live", lj ? lj : json_null());
    char *text = fw_json_dumps(doc);
    json_decref(doc);
    buf_reset(&r->out);
    buf_puts(&r->out, text ? text : "{}");
    free(text);
    http_reply_json(r, status, &r->out);
}

/* ---- GET /v1/cases/{id}/guidance, GET /v1/playbooks ---- */

static void read_guidance(void *ctx, const struct cases *cs, const struct engine *e)
{
    struct live_read *lr = ctx;
    (void)e;
    lr->rc = cases_guidance_json(cs, lr->id, lr->now, lr->out);
}

static void get_guidance(struct req *r, const char *id)
{
    struct buf g;
    buf_init(&g, 0);
    struct live_read lr = {.id = id, .now = pipeline_now(r->env->pipeline), .out = &g};
    pipeline_with_cases(r->env->pipeline, read_guidance, &lr);
    if (lr.rc) {
        buf_cleanup(&g);
        /* Not open: resolved (the document exists) or unknown. */
        json_t *doc = load_case(r, id);
        if (doc)
            http_error(r, 409, "case %s is resolved; guidance is for open cases", id);
        json_decref(doc);
        return;
    }
    buf_reset(&r->out);
    buf_append(&r->out, g.data, g.len);
    buf_cleanup(&g);
    http_reply_json(r, 200, &r->out);
}

static void read_playbooks(void *ctx, const struct cases *cs, const struct engine *e)
{
    (void)e;
    cases_playbooks_json(cs, ctx);
}

static void get_playbooks(struct req *r)
{
    buf_reset(&r->out);
    pipeline_with_cases(r->env->pipeline, read_playbooks, &r->out);
    snprintf(r->audit_id, sizeof r->audit_id, "playbooks");
    http_reply_json(r, 200, &r->out);
}

/* ---- follow-up tasks: GET /v1/tasks, GET /v1/tasks/{id}, POST .../complete|cancel ---- */

static void get_tasks(struct req *r)
{
    static const char *const states[] = {"open", "done", "cancelled", NULL};
    static const char *const statuses[] = {"pending", "open", "done", "cancelled", NULL};
    long limit;
    struct task_query q = {.customer = http_query(r, "customer"),
                           .status = http_query(r, "status"),
                           .kind = http_query(r, "kind"),
                           .assignee = http_query(r, "assignee"),
                           .team = http_query(r, "team"),
                           .case_id = http_query(r, "case"),
                           .now = pipeline_now(r->env->pipeline)};
    const char *state = http_query(r, "state"), *mine = http_query(r, "mine");
    const char *cursor = http_query(r, "cursor");
    if (http__query_int(r, "limit", 1, 1000, 100, &limit) ||
        http__query_time(r, "due_before", &q.due_before))
        return;
    q.limit = (int)limit;
    int ok = !state;
    for (size_t i = 0; state && states[i]; i++)
        ok |= !strcmp(state, states[i]);
    if (!ok) {
        http_error(r, 400, "query parameter state: '%s' is not one of open, done, cancelled", state);
        return;
    }
    ok = !q.status;
    for (size_t i = 0; q.status && statuses[i]; i++)
        ok |= !strcmp(q.status, statuses[i]);
    if (!ok) {
        http_error(r, 400, "query parameter status: '%s' is not one of pending, open, done, "
                           "cancelled", q.status);
        return;
    }
    if (state && !strcmp(state, "open"))
        q.open = 1; /* a follow-up task (open) or a ladder step still to run (pending) */
    else if (state && q.status && strcmp(state, q.status)) {
        http_error(r, 400, "query parameters state and status disagree ('%s', '%s')", state,
                   q.status);
        return;
    } else if (state)
        q.status = state;
    if (mine && strcmp(mine, "true") && strcmp(mine, "false")) {
        http_error(r, 400, "query parameter mine: '%s' is not true or false", mine);
        return;
    }
    if (mine && !strcmp(mine, "true")) {
        if (q.assignee && strcmp(q.assignee, r->who.name)) {
            http_error(r, 400, "query parameters mine and assignee disagree (you are %s)",
                       r->who.name);
            return;
        }
        q.assignee = r->who.name;
    }
    if (cursor) {
        /* next_cursor of the previous page: "<due ms>.<seq>" */
        char *end;
        q.after_due = strtoll(cursor, &end, 10);
        if (*end == '.')
            q.after_seq = strtoll(end + 1, &end, 10);
        if (*end || q.after_seq <= 0) {
            http_error(r, 400, "query parameter cursor: '%s' is not a next_cursor of this list",
                       cursor);
            return;
        }
    }
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        http_error(r, 503, "database unavailable");
        return;
    }
    buf_reset(&r->out);
    int rc = store_tasks_json(s, &q, &r->out);
    http__reader_release(&r->env->readers, s);
    snprintf(r->audit_id, sizeof r->audit_id, "list");
    if (rc)
        http_error(r, 500, "could not read tasks");
    else
        http_reply_json(r, 200, &r->out);
}

/* The task's row as JSON, or NULL after replying 404/500/503. */
static json_t *load_task(struct req *r, const char *id)
{
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        http_error(r, 503, "database unavailable");
        return NULL;
    }
    struct buf b;
    buf_init(&b, 0);
    int rc = store_task_get(s, id, pipeline_now(r->env->pipeline), &b);
    http__reader_release(&r->env->readers, s);
    json_t *row = rc ? NULL : fw_json_loadb(b.data, b.len, 0, NULL);
    buf_cleanup(&b);
    if (rc == FW_ENOTFOUND)
        http_error(r, 404, "no task %s", id);
    else if (!row)
        http_error(r, 500, "could not read task %s", id);
    return row;
}

static void reply_task(struct req *r, const char *id)
{
    json_t *row = load_task(r, id);
    if (!row)
        return;
    char *text = fw_json_dumps(row);
    json_decref(row);
    buf_reset(&r->out);
    buf_puts(&r->out, text ? text : "{}");
    free(text);
    http_reply_json(r, 200, &r->out);
}

/* complete or cancel: a `case.task_*` event with the caller as agent, journaled on the engine thread. */
static void post_task_action(struct req *r, const char *id, const char *action)
{
    const char *type = !strcmp(action, "complete") ? "case.task_completed"
                       : !strcmp(action, "cancel") ? "case.task_cancelled"
                                                   : NULL;
    if (!type) {
        http_error(r, 404, "no such task action: %s (complete, cancel)", action);
        return;
    }
    r->audit_action = type;
    json_t *body = body_object(r);
    if (!body)
        return;
    json_t *data = json_object();
    json_t *row = NULL;
    if (take_str(r, body, data, "note", !strcmp(action, "cancel")))
        goto out;
    if (!(row = load_task(r, id)))
        goto out;
    const char *kind = json_string_value(json_object_get(row, "kind"));
    const char *status = json_string_value(json_object_get(row, "status"));
    const char *assignee = json_string_value(json_object_get(row, "assignee"));
    const char *customer = json_string_value(json_object_get(row, "customer"));
    if (!kind || strcmp(kind, "outreach_followup")) {
        http_error(r, 409, "task %s is a %s step the orchestrator runs itself; only follow-up "
                           "tasks (outreach_followup) are completed or cancelled by people",
                   id, kind ? kind : "?");
        goto out;
    }
    if (status && strcmp(status, "open")) {
        http_error(r, 409, "task %s is %s; nothing was changed", id, status);
        goto out;
    }
    /* An agent works their own tasks and the team's (unassigned); a lead any. */
    if (r->who.role == ROLE_AGENT && assignee && strcmp(assignee, r->who.name)) {
        http_error(r, 403, "task %s is assigned to %s; an agent may close only their own or "
                           "unassigned tasks", id, assignee);
        goto out;
    }
    json_object_set_new(data, "task", json_string(id));
    json_object_set_new(data, "agent", json_string(r->who.name));
    char eid[40];
    http__event_id("act_", eid);
    if (!http__act(r, eid, type, customer, data, NULL, "action", NULL))
        reply_task(r, id);
out:
    json_decref(row);
    json_decref(body);
    json_decref(data);
}

/* /v1/tasks/{id} and /v1/tasks/{id}/{action} */
static void task_route(struct req *r)
{
    char id[64];
    const char *slash = strchr(r->tail, '/');
    size_t n = slash ? (size_t)(slash - r->tail) : strlen(r->tail);
    if (!n || n >= sizeof id) {
        http_error(r, 404, "no such task");
        return;
    }
    memcpy(id, r->tail, n);
    id[n] = 0;
    snprintf(r->audit_id, sizeof r->audit_id, "%s", id);
    if (!strcmp(r->method, "GET")) {
        if (slash)
            http_error(r, 404, "no such endpoint: %s", r->path);
        else
            reply_task(r, id);
        return;
    }
    if (!slash || !slash[1]) {
        http_error(r, 405, "POST needs an action: /v1/tasks/%s/{complete|cancel}", id);
        return;
    }
    post_task_action(r, id, slash + 1);
}

/* /v1/cases/{id} and /v1/cases/{id}/{action} */
static void case_route(struct req *r)
{
    char id[64];
    const char *slash = strchr(r->tail, '/');
    size_t n = slash ? (size_t)(slash - r->tail) : strlen(r->tail);
    if (!n || n >= sizeof id) {
        http_error(r, 404, "no such case");
        return;
    }
    memcpy(id, r->tail, n);
    id[n] = 0;
    snprintf(r->audit_id, sizeof r->audit_id, "%s", id);
    if (!strcmp(r->method, "GET")) {
        if (slash && !strcmp(slash, "/guidance")) {
            get_guidance(r, id);
            return;
        }
        if (slash) {
            http_error(r, 404, "no such endpoint: %s", r->path);
            return;
        }
        reply_case(r, id, 200, 1);
        return;
    }
    if (!slash || !slash[1]) {
        http_error(r, 405, "POST needs an action: /v1/cases/%s/{assign|respond|status|note|skip|"
                           "resolve}", id);
        return;
    }
    if (!(r->who.role & ROLES_WORK)) {
        http_error(r, 403, "working a case needs the agent, lead or admin role; you are %s",
                   role_name(r->who.role));
        return;
    }
    if (!strcmp(slash + 1, "draft")) {
        http__case_draft(r, id);
        return;
    }
    post_action(r, id, slash + 1);
}

const struct route http_case_routes[] = {
    {.method = "GET", .path = "/v1/queue", .roles = ROLES_READ, .audit = "case",
     .handler = get_queue},
    {.method = "POST", .path = "/v1/queue/next", .roles = ROLES_WORK, .audit = "case",
     .handler = post_next},
    {.method = "GET", .path = "/v1/cases", .roles = ROLES_READ, .audit = "case",
     .handler = get_cases},
    {.method = "GET", .path = "/v1/playbooks", .roles = ROLES_READ, .audit = "case",
     .handler = get_playbooks},
    {.method = "GET", .path = "/v1/cases/", .prefix = 1, .roles = ROLES_READ, .audit = "case",
     .handler = case_route},
    {.method = "POST", .path = "/v1/cases/", .prefix = 1, .roles = ROLES_WORK, .audit = "case",
     .handler = case_route},
    {.method = "GET", .path = "/v1/tasks", .roles = ROLES_READ, .audit = "task",
     .handler = get_tasks},
    {.method = "GET", .path = "/v1/tasks/", .prefix = 1, .roles = ROLES_READ, .audit = "task",
     .handler = task_route},
    {.method = "POST", .path = "/v1/tasks/", .prefix = 1, .roles = ROLES_WORK, .audit = "task",
     .handler = task_route},
    {0},
};
