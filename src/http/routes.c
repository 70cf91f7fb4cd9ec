/*
 * routes.c -- the API's handlers and its route table (see docs/openapi.yaml).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "http/http_int.h"
#include "ingest/ingest.h"
#include "comms/comms.h"
#include "delivery/delivery.h"
#include "store/messages.h"
#include "util/json.h"
#include "util/fwtime.h"
#include "util/map.h"
#include "util/log.h"
#include "util/util.h"

/* ---- read-only connection pool ---- */

void http__readers_init(struct readers *rd, const char *path)
{
    memset(rd, 0, sizeof *rd);
    pthread_mutex_init(&rd->mu, NULL);
    pthread_cond_init(&rd->cv, NULL);
    rd->path = xstrdup(path);
}

void http__readers_cleanup(struct readers *rd)
{
    for (size_t i = 0; i < rd->nidle; i++)
        store_close(rd->idle[i]);
    free(rd->path);
    pthread_mutex_destroy(&rd->mu);
    pthread_cond_destroy(&rd->cv);
}

struct store *http__reader_acquire(struct readers *rd)
{
    pthread_mutex_lock(&rd->mu);
    while (!rd->nidle && rd->open >= HTTP_READERS)
        pthread_cond_wait(&rd->cv, &rd->mu);
    if (rd->nidle) {
        struct store *s = rd->idle[--rd->nidle];
        pthread_mutex_unlock(&rd->mu);
        return s;
    }
    rd->open++;
    pthread_mutex_unlock(&rd->mu);
    struct store *s = NULL;
    char err[256];
    if (store_open(rd->path, 1, &s, err, sizeof err)) {
        log_error("read connection: %s", err);
        pthread_mutex_lock(&rd->mu);
        rd->open--;
        pthread_cond_signal(&rd->cv);
        pthread_mutex_unlock(&rd->mu);
        return NULL;
    }
    return s;
}

void http__reader_release(struct readers *rd, struct store *s)
{
    pthread_mutex_lock(&rd->mu);
    rd->idle[rd->nidle++] = s;
    pthread_cond_signal(&rd->cv);
    pthread_mutex_unlock(&rd->mu);
}

/* ---- helpers ---- */

/* Parse an optional RFC 3339 query parameter; 400 and -1 when malformed. */
static int query_time(struct req *r, const char *name, int64_t *out)
{
    const char *v = http_query(r, name);
    *out = FW_TIME_NONE;
    if (!v)
        return 0;
    if (fw_time_parse(v, strlen(v), out)) {
        http_error(r, 400, "query parameter %s: '%s' is not an RFC 3339 time with offset", name, v);
        return -1;
    }
    return 0;
}

static int query_int(struct req *r, const char *name, long lo, long hi, long dflt, long *out)
{
    const char *v = http_query(r, name);
    *out = dflt;
    if (!v)
        return 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi) {
        http_error(r, 400, "query parameter %s must be an integer from %ld to %ld", name, lo, hi);
        return -1;
    }
    *out = n;
    return 0;
}

static int query_enum(struct req *r, const char *name, const char *const *allowed,
                      const char **out)
{
    const char *v = http_query(r, name);
    *out = v;
    if (!v)
        return 0;
    for (size_t i = 0; allowed[i]; i++)
        if (!strcmp(v, allowed[i]))
            return 0;
    http_error(r, 400, "query parameter %s: unknown value '%s'", name, v);
    return -1;
}

int http__query_time(struct req *r, const char *name, int64_t *out)
{
    return query_time(r, name, out);
}

int http__query_int(struct req *r, const char *name, long lo, long hi, long dflt, long *out)
{
    return query_int(r, name, lo, hi, dflt, out);
}

/* ---- POST /v1/events ---- */

/* 409: ids used before with another payload, each named (the ingest errors' shape). */
static void conflict_reply(struct req *r, const struct ingest_batch *batch,
                           const enum ingest_outcome *outcomes)
{
    struct buf *o = &r->out;
    size_t n = 0;
    buf_reset(o);
    buf_puts(o, "{\"error\":\"an event id was used before with a different payload; nothing "
                "was stored\",\"status\":409,\"errors\":[");
    for (size_t i = 0; i < batch->n; i++) {
        if (outcomes[i] != OUTCOME_CONFLICT || n >= INGEST_MAX_ERRORS)
            continue;
        char where[32], msg[160];
        const char *id = batch->events[i].id;
        snprintf(where, sizeof where, "index %zu", i);
        snprintf(msg, sizeof msg, "%.60s%s was stored before with a different payload; send the "
                 "same event again, or a new id", id, strlen(id) > 60 ? "..." : "");
        buf_puts(o, n++ ? ",{\"where\":" : "{\"where\":");
        buf_json_str(o, where, strlen(where));
        buf_puts(o, ",\"field\":\"id\",\"message\":");
        buf_json_str(o, msg, strlen(msg));
        buf_putc(o, '}');
    }
    buf_puts(o, "]}");
    http_reply_json(r, 409, o);
    pipeline_note_rejected(r->env->pipeline, n);
}

static void post_events(struct req *r)
{
    const char *ct = http_header(r, "Content-Type");
    static const char *const types[] = {"application/json", "application/cloudevents+json",
                                        "application/cloudevents-batch+json",
                                        "application/x-ndjson", "application/ndjson", NULL};
    if (ct) {
        int ok = 0;
        for (size_t i = 0; types[i] && !ok; i++)
            ok = strncmp(ct, types[i], strlen(types[i])) == 0;
        if (!ok) {
            http_error(r, 415, "Content-Type %s is not accepted; send application/json, "
                               "application/cloudevents+json or application/x-ndjson", ct);
            return;
        }
    }
    struct ingest_limits lim = ingest_default_limits;
    lim.max_body = r->env->opt.max_body;
    lim.max_events = r->env->opt.max_events;
    lim.max_members = r->env->opt.max_event_members;
    lim.max_data = r->env->opt.max_event_data;
    lim.time_min = r->env->opt.event_time_min;
    /* Not dated after the server's clock plus the skew: the wall clock, or the virtual clock
       when it is ahead (tests and demonstrations move it with events). */
    int64_t now = fw_wall_now(), engine = pipeline_now(r->env->pipeline);
    lim.time_max = (engine > now ? engine : now) + r->env->opt.event_time_skew;
    if (lim.time_max >= INGEST_TIME_CEILING)
        lim.time_max = INGEST_TIME_CEILING - 1;
    lim.time_max_why = "the server clock plus event_time_skew";
    struct ingest_globals globals = {.ctx = (void *)pipeline_rules(r->env->pipeline),
                                     .is_global = rules_is_global,
                                     .declared = rules_declared};
    struct ingest_batch batch;
    memset(&batch, 0, sizeof batch);
    int rc = ingest_parse(r->body, r->body_len, &lim, &globals, &batch);
    if (rc) {
        pipeline_note_rejected(r->env->pipeline, batch.nerrors ? batch.nerrors : 1);
        struct buf *o = &r->out;
        buf_reset(o);
        buf_printf(o, "{\"error\":\"%s\",\"status\":%d,\"errors\":[",
                   rc == FW_ETOOBIG ? "request too large" : "invalid events; nothing was stored",
                   rc == FW_ETOOBIG ? 413 : 400);
        for (size_t i = 0; i < batch.nerrors; i++) {
            const struct ingest_error *e = &batch.errors[i];
            buf_puts(o, i ? ",{\"where\":" : "{\"where\":");
            buf_json_str(o, e->where, strlen(e->where));
            buf_puts(o, ",\"field\":");
            buf_json_str(o, e->field, strlen(e->field));
            buf_puts(o, ",\"message\":");
            buf_json_str(o, e->msg, strlen(e->msg));
            buf_putc(o, '}');
        }
        buf_puts(o, "]}");
        http_reply_json(r, rc == FW_ETOOBIG ? 413 : 400, o);
        ingest_batch_cleanup(&batch);
        return;
    }
    for (size_t i = 0; i < batch.n; i++) {
        if (!strncmp(batch.events[i].type, "forewarn.", 9)) {
            pipeline_note_rejected(r->env->pipeline, 1);
            http_error(r, 400, "event %zu: type '%s': the forewarn. prefix is reserved; nothing "
                               "was stored", i, batch.events[i].type);
            ingest_batch_cleanup(&batch);
            return;
        }
    }
    /* A person's action names its agent; with authentication on, only the case API (where the
       agent is the caller) or an admin (importing history) may write one. */
    for (size_t i = 0; i < batch.n && r->who.authenticated && r->who.role != ROLE_ADMIN; i++) {
        if (!strcmp(batch.events[i].type, RULES_KNOWN_ISSUE_TYPE)) {
            http_error(r, 403, "event %zu: type '%s': known issues are written through "
                               "/v1/known-issues (checked and audited); nothing was stored",
                       i, batch.events[i].type);
            ingest_batch_cleanup(&batch);
            return;
        }
        if (!strncmp(batch.events[i].type, "case.", 5)) {
            http_error(r, 403, "event %zu: type '%s': case actions are written through "
                               "/v1/cases/{id}/... (the agent is the caller); nothing was stored",
                       i, batch.events[i].type);
            ingest_batch_cleanup(&batch);
            return;
        }
    }
    enum ingest_outcome *outcomes = xcalloc(batch.n + 1, sizeof *outcomes);
    /* One id twice in the batch: the same event again is a duplicate, another is a conflict. */
    struct strmap ids;
    strmap_init(&ids);
    int conflict = 0;
    for (size_t i = 0; i < batch.n; i++) {
        int created;
        struct strmap_entry *e =
            strmap_upsert(&ids, batch.events[i].id, strlen(batch.events[i].id), &created);
        if (created)
            e->value = &batch.events[i];
        else if (!json_equal(((struct event *)e->value)->json, batch.events[i].json))
            outcomes[i] = OUTCOME_CONFLICT, conflict = 1;
    }
    strmap_cleanup(&ids);
    if (conflict) {
        conflict_reply(r, &batch, outcomes);
        free(outcomes);
        ingest_batch_cleanup(&batch);
        return;
    }
    /* Serialized here, on this request's thread, not on the engine thread that journals them. */
    char **bodies = xcalloc(batch.n + 1, sizeof *bodies);
    for (size_t i = 0; i < batch.n; i++)
        bodies[i] = fw_json_dumps(batch.events[i].json);
    rc = pipeline_ingest(r->env->pipeline, &batch, bodies, outcomes);
    for (size_t i = 0; i < batch.n; i++)
        free(bodies[i]);
    free(bodies);
    if (rc == FW_EEXISTS) {
        conflict_reply(r, &batch, outcomes);
    } else if (rc) {
        http_error(r, 503, "the events could not be stored; nothing was kept, retry later");
    } else {
        size_t acc = 0, dup = 0;
        for (size_t i = 0; i < batch.n; i++)
            outcomes[i] == OUTCOME_DUPLICATE ? dup++ : acc++;
        struct buf *o = &r->out;
        buf_reset(o);
        buf_printf(o, "{\"accepted\":%zu,\"duplicates\":%zu,\"results\":[", acc, dup);
        for (size_t i = 0; i < batch.n; i++) {
            buf_puts(o, i ? ",{\"id\":" : "{\"id\":");
            buf_json_str(o, batch.events[i].id, strlen(batch.events[i].id));
            buf_printf(o, ",\"status\":\"%s\"}",
                       outcomes[i] == OUTCOME_DUPLICATE ? "duplicate" : "accepted");
        }
        buf_puts(o, "]}");
        http_reply_json(r, 200, o);
    }
    free(outcomes);
    ingest_batch_cleanup(&batch);
}

/* ---- GET /v1/customers/{id} ---- */

struct customer_view {
    const char *id;
    struct buf *out;
    int rc;
};

static void customer_view(void *ctx, const struct engine *e)
{
    struct customer_view *v = ctx;
    v->rc = engine_customer_json(e, v->id, v->out);
}

static void get_customer_context(struct req *r, const char *id);
static void get_customer_inapp(struct req *r, const char *id);

static void get_customer(struct req *r)
{
    const char *id = r->tail;
    const char *slash = strchr(id, '/');
    if (slash && slash != id) {
        char *cid = xstrndup(id, (size_t)(slash - id));
        if (!strcmp(slash, "/context"))
            get_customer_context(r, cid);
        else if (!strcmp(slash, "/inapp"))
            get_customer_inapp(r, cid);
        else
            http_error(r, 404, "no such endpoint: %s", r->path);
        free(cid);
        return;
    }
    if (!*id || slash) {
        http_error(r, 404, "no such endpoint: %s", r->path);
        return;
    }
    struct buf view;
    buf_init(&view, 0);
    struct customer_view v = {.id = id, .out = &view};
    pipeline_with_engine(r->env->pipeline, customer_view, &v);
    if (v.rc) {
        buf_cleanup(&view);
        http_error(r, 404, "unknown customer '%s'", id);
        return;
    }
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        buf_cleanup(&view);
        http_error(r, 503, "database unavailable");
        return;
    }
    /* Splice the timeline into the engine's object: drop its closing brace. */
    view.data[--view.len] = '\0';
    buf_puts(&view, ",\"timeline\":");
    int rc = store_timeline_json(s, id, 50, &view);
    http__reader_release(&r->env->readers, s);
    buf_putc(&view, '}');
    if (rc)
        http_error(r, 500, "could not read the timeline");
    else
        http_reply_json(r, 200, &view);
    buf_cleanup(&view);
}

/* ---- GET /v1/detections, /v1/incidents ---- */

static void get_detections(struct req *r)
{
    static const char *const states[] = {"firing", "resolved", NULL};
    static const char *const sevs[] = {"CRITICAL", "HIGH", "MEDIUM", "LOW", NULL};
    struct detection_query q = {0};
    long limit, after;
    if (query_enum(r, "state", states, &q.state) || query_enum(r, "severity", sevs, &q.severity) ||
        query_time(r, "from", &q.from) || query_time(r, "to", &q.to) ||
        query_int(r, "limit", 1, 1000, 100, &limit) ||
        query_int(r, "cursor", 0, 0x7fffffffffffffffL, 0, &after))
        return;
    q.signal = http_query(r, "signal");
    q.customer = http_query(r, "customer");
    if (q.signal && !rules_signal(pipeline_rules(r->env->pipeline), q.signal)) {
        http_error(r, 400, "query parameter signal: unknown signal '%s'", q.signal);
        return;
    }
    q.limit = (int)limit;
    q.after = after;
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        http_error(r, 503, "database unavailable");
        return;
    }
    buf_reset(&r->out);
    int rc = store_detections_json(s, &q, &r->out);
    http__reader_release(&r->env->readers, s);
    if (rc)
        http_error(r, 500, "could not read detections");
    else
        http_reply_json(r, 200, &r->out);
}

static void get_incidents(struct req *r)
{
    static const char *const states[] = {"open", "resolved", NULL};
    const char *state;
    long limit, after;
    if (query_enum(r, "state", states, &state) || query_int(r, "limit", 1, 1000, 100, &limit) ||
        query_int(r, "cursor", 0, 0x7fffffffffffffffL, 0, &after))
        return;
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        http_error(r, 503, "database unavailable");
        return;
    }
    buf_reset(&r->out);
    int rc = store_incidents_json(s, state, after, (int)limit, &r->out);
    http__reader_release(&r->env->readers, s);
    if (rc)
        http_error(r, 500, "could not read incidents");
    else
        http_reply_json(r, 200, &r->out);
}

/* ---- messages, contexts, in-app (tasks: case_routes.c) ---- */

static void get_messages(struct req *r)
{
    static const char *const statuses[] = {"scheduled", "awaiting_approval", "suppressed",
                                           "sending",   "sent",              "stored",
                                           "retrying",  "dead",              "rejected", NULL};
    static const char *const channels[] = {"email", "sms", "push", "in_app", "ticket_reply",
                                           "internal_note", "ticket", "slack", "chatbot",
                                           "webhook", NULL};
    static const char *const audiences[] = {"customer", "l1", "l2", "chatbot", "engineering", "agent", NULL};
    struct message_query q = {0};
    long limit, after;
    if (query_enum(r, "status", statuses, &q.status) ||
        query_enum(r, "channel", channels, &q.channel) ||
        query_enum(r, "audience", audiences, &q.audience) ||
        query_int(r, "limit", 1, 1000, 100, &limit) ||
        query_int(r, "cursor", 0, 0x7fffffffffffffffL, 0, &after))
        return;
    q.customer = http_query(r, "customer");
    q.limit = (int)limit;
    q.after = after;
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        http_error(r, 503, "database unavailable");
        return;
    }
    buf_reset(&r->out);
    int rc = store_messages_json(s, &q, &r->out);
    http__reader_release(&r->env->readers, s);
    if (rc)
        http_error(r, 500, "could not read messages");
    else
        http_reply_json(r, 200, &r->out);
}

static void get_one_message(struct req *r, const char *id)
{
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        http_error(r, 503, "database unavailable");
        return;
    }
    struct outbox_msg m;
    int rc = store_message_get(s, id, &m);
    http__reader_release(&r->env->readers, s);
    if (rc == FW_ENOTFOUND) {
        http_error(r, 404, "unknown message '%s'", id);
        return;
    }
    if (rc) {
        http_error(r, 500, "could not read the message");
        return;
    }
    buf_reset(&r->out);
    store_message_json(&m, &r->out);
    outbox_msg_cleanup(&m);
    http_reply_json(r, 200, &r->out);
}

/* A person's action on a message, run on the engine thread in its own transaction. */
struct msg_action {
    const char *id, *action;
    const char *subject, *body, *reason;
    struct buf *out; /* the message as the action left it (JSON) */
};

static int apply_action(struct msg_action *a, struct store *db, int64_t engine_now, int64_t wall)
{
    if (!strcmp(a->action, "approve"))
        return store_message_approve(db, a->id, engine_now, wall);
    if (!strcmp(a->action, "reject"))
        return store_message_reject(db, a->id, a->reason ? a->reason : "rejected by a person",
                                    wall);
    if (!strcmp(a->action, "edit")) {
        /* The HTML part is rebuilt from the edited text, so both parts say the same. */
        char *html = NULL;
        if (a->body && comms_text_to_html(a->subject ? a->subject : "", a->body, &html))
            return FW_ETOOBIG;
        int rc = store_message_edit(db, a->id, a->subject, a->body, html, wall);
        free(html);
        return rc;
    }
    return store_message_retry(db, a->id, wall);
}

/*
 * The reply is read in the action's own transaction: once it commits, a
 * dispatcher may claim and send the message at once, and the answer to
 * "retry" must still say what the retry did, not what happened next.
 */
static int run_action(void *ctx, struct store *db, int64_t engine_now)
{
    struct msg_action *a = ctx;
    int rc = apply_action(a, db, engine_now, fw_wall_now());
    if (rc)
        return rc;
    struct outbox_msg m;
    if ((rc = store_message_get(db, a->id, &m)))
        return rc;
    buf_reset(a->out);
    store_message_json(&m, a->out);
    outbox_msg_cleanup(&m);
    return 0;
}

static void post_message_action(struct req *r, const char *id, const char *action)
{
    struct msg_action a = {.id = id, .action = action, .out = &r->out};
    json_t *j = NULL;
    if (r->body_len) {
        json_error_t jerr;
        j = json_loadb(r->body, r->body_len, 0, &jerr);
        if (!json_is_object(j)) {
            http_error(r, 400, "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column,
                       j ? "expected an object" : jerr.text);
            json_decref(j);
            return;
        }
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            int ok = (!strcmp(action, "edit") && (!strcmp(k, "subject") || !strcmp(k, "body"))) ||
                     (!strcmp(action, "reject") && !strcmp(k, "reason"));
            if (!ok || !json_is_string(v)) {
                http_error(r, 400, ok ? "%s must be a string" : "unknown field '%s' for %s", k,
                           action);
                json_decref(j);
                return;
            }
        }
        a.subject = json_string_value(json_object_get(j, "subject"));
        a.body = json_string_value(json_object_get(j, "body"));
        a.reason = json_string_value(json_object_get(j, "reason"));
    }
    if (!strcmp(action, "edit") && !a.subject && !a.body) {
        http_error(r, 400, "edit needs subject and/or body");
        json_decref(j);
        return;
    }
    int rc = pipeline_run(r->env->pipeline, run_action, &a);
    json_decref(j);
    if (rc == FW_ENOTFOUND)
        http_error(r, 404, "unknown message '%s'", id);
    else if (rc == FW_ESTATE)
        http_error(r, 409, "message '%s' cannot be %s in its current status", id,
                   !strcmp(action, "approve")  ? "approved"
                   : !strcmp(action, "reject") ? "rejected"
                   : !strcmp(action, "edit")   ? "edited"
                                               : "retried (only dead letters can)");
    else if (rc)
        http_error(r, 503, "the change could not be stored");
    else
        http_reply_json(r, 200, &r->out);
}

static void message_route(struct req *r)
{
    const char *tail = r->tail;
    const char *slash = strchr(tail, '/');
    if (!slash) {
        if (strcmp(r->method, "GET")) {
            http_error(r, 405, "method %s not allowed on %s", r->method, r->path);
            return;
        }
        get_one_message(r, tail);
        return;
    }
    char *id = xstrndup(tail, (size_t)(slash - tail));
    const char *action = slash + 1;
    if (strcmp(r->method, "POST"))
        http_error(r, 405, "method %s not allowed on %s", r->method, r->path);
    else if (!strcmp(action, "approve") || !strcmp(action, "reject") || !strcmp(action, "edit") ||
             !strcmp(action, "retry"))
        post_message_action(r, id, action);
    else
        http_error(r, 404, "no such endpoint: %s", r->path);
    free(id);
}

static void get_customer_context(struct req *r, const char *id)
{
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        http_error(r, 503, "database unavailable");
        return;
    }
    buf_reset(&r->out);
    int rc = store_context_get(s, id, &r->out);
    http__reader_release(&r->env->readers, s);
    if (rc == FW_ENOTFOUND)
        http_error(r, 404, "no proactive context for customer '%s'", id);
    else if (rc)
        http_error(r, 500, "could not read the context");
    else
        http_reply_json(r, 200, &r->out);
}

static void get_customer_inapp(struct req *r, const char *id)
{
    struct message_query q = {.customer = id, .channel = "in_app", .status = "sent", .limit = 100};
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        http_error(r, 503, "database unavailable");
        return;
    }
    buf_reset(&r->out);
    int rc = store_messages_json(s, &q, &r->out);
    http__reader_release(&r->env->readers, s);
    if (rc)
        http_error(r, 500, "could not read in-app messages");
    else
        http_reply_json(r, 200, &r->out);
}

struct read_action {
    const char *customer, *id;
};

static int run_read(void *ctx, struct store *db, int64_t engine_now)
{
    struct read_action *a = ctx;
    (void)engine_now;
    return store_inapp_read(db, a->customer, a->id, fw_wall_now());
}

/* POST /v1/customers/{id}/inapp/{message}/read */
static void post_customer(struct req *r)
{
    const char *t = r->tail;
    const char *a = strstr(t, "/inapp/");
    const char *end = a ? strstr(a + 7, "/read") : NULL;
    if (!a || a == t || !end || end[5] || end == a + 7) {
        http_error(r, 404, "no such endpoint: %s", r->path);
        return;
    }
    char *cid = xstrndup(t, (size_t)(a - t));
    char *mid = xstrndup(a + 7, (size_t)(end - (a + 7)));
    snprintf(r->audit_id, sizeof r->audit_id, "%s", mid); /* the message it changes */
    struct read_action ra = {.customer = cid, .id = mid};
    int rc = pipeline_run(r->env->pipeline, run_read, &ra);
    if (rc == FW_ENOTFOUND)
        http_error(r, 404, "unknown in-app message '%s' for customer '%s'", mid, cid);
    else if (rc == FW_ESTATE)
        http_error(r, 409, "message '%s' is not a delivered in-app message of this customer", mid);
    else if (rc)
        http_error(r, 503, "the change could not be stored");
    else
        get_one_message(r, mid);
    free(cid);
    free(mid);
}

/* ---- the clock ---- */

struct clock_view {
    int64_t now;
    size_t pending;
};

static void clock_read(void *ctx, const struct engine *e)
{
    struct clock_view *v = ctx;
    v->now = engine_now(e);
    v->pending = engine_pending_timers(e);
}

static void reply_clock(struct req *r)
{
    struct clock_view v;
    pipeline_with_engine(r->env->pipeline, clock_read, &v);
    buf_reset(&r->out);
    buf_printf(&r->out, "{\"virtual\":%s,\"now\":", pipeline_virtual(r->env->pipeline) ? "true" : "false");
    buf_json_time(&r->out, v.now);
    buf_printf(&r->out, ",\"pending_wakeups\":%zu}", v.pending);
    http_reply_json(r, 200, &r->out);
}

static void post_clock(struct req *r)
{
    if (!pipeline_virtual(r->env->pipeline)) {
        http_error(r, 409, "the clock can only be set when the server runs with --virtual-clock");
        return;
    }
    json_error_t jerr;
    json_t *j = json_loadb(r->body, r->body_len, 0, &jerr);
    if (!j) {
        http_error(r, 400, "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column,
                   jerr.text);
        return;
    }
    json_t *nowj = json_object_get(j, "now");
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        if (strcmp(k, "now")) {
            http_error(r, 400, "unknown field '%s' (expected only \"now\")", k);
            json_decref(j);
            return;
        }
    }
    int64_t t;
    if (!json_is_string(nowj) ||
        fw_time_parse(json_string_value(nowj), json_string_length(nowj), &t)) {
        http_error(r, 400, "now: expected an RFC 3339 time with offset");
        json_decref(j);
        return;
    }
    json_decref(j);
    int rc = pipeline_set_clock(r->env->pipeline, t);
    if (rc == FW_EINVAL)
        http_error(r, 409, "the clock cannot move backwards");
    else if (rc)
        http_error(r, 503, "the clock change could not be stored");
    else
        reply_clock(r);
}

/* ---- health and metrics ---- */

static void get_healthz(struct req *r)
{
    http_reply(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

static void get_readyz(struct req *r)
{
    if (__atomic_load_n(&r->env->ready, __ATOMIC_ACQUIRE))
        http_reply(r, 200, "application/json", "{\"status\":\"ready\"}", 18);
    else
        http_error(r, 503, "recovering");
}

struct metrics_view {
    struct buf *out;
    const struct rules *rules;
};

static void metrics_engine(void *ctx, const struct engine *e)
{
    struct buf *o = ((struct metrics_view *)ctx)->out;
    const struct rules *r = ((struct metrics_view *)ctx)->rules;
    const struct engine_stats *st = engine_stats(e);
    buf_puts(o, "# HELP forewarn_detections_total Detection episodes by signal, severity and transition.\n"
                "# TYPE forewarn_detections_total counter\n");
    for (size_t s = 0; r && s < r->nsignals; s++) {
        const char *sev = severity_name(r->signals[s].severity);
        buf_printf(o,
                   "forewarn_detections_total{signal=\"%s\",severity=\"%s\",state=\"firing\"} %llu\n"
                   "forewarn_detections_total{signal=\"%s\",severity=\"%s\",state=\"resolved\"} %llu\n",
                   r->signals[s].id, sev, (unsigned long long)st->fired[s], r->signals[s].id, sev,
                   (unsigned long long)st->resolved[s]);
    }
    buf_printf(o,
               "# HELP forewarn_pending_timers Armed wake-ups.\n"
               "# TYPE forewarn_pending_timers gauge\nforewarn_pending_timers %zu\n"
               "# HELP forewarn_customers Customers with state.\n"
               "# TYPE forewarn_customers gauge\nforewarn_customers %zu\n"
               "# HELP forewarn_incidents_total Incidents opened.\n"
               "# TYPE forewarn_incidents_total counter\nforewarn_incidents_total %llu\n"
               "# HELP forewarn_evaluations_total Condition evaluations.\n"
               "# TYPE forewarn_evaluations_total counter\nforewarn_evaluations_total %llu\n"
               "# HELP forewarn_wakeups_total Timer wake-ups processed.\n"
               "# TYPE forewarn_wakeups_total counter\nforewarn_wakeups_total %llu\n"
               "# HELP forewarn_events_late_total Events applied as of their own time, before "
               "the clock.\n"
               "# TYPE forewarn_events_late_total counter\nforewarn_events_late_total %llu\n"
               "# HELP forewarn_detections_withdrawn_total Transitions withdrawn because an "
               "event dated before them arrived.\n"
               "# TYPE forewarn_detections_withdrawn_total counter\n"
               "forewarn_detections_withdrawn_total %llu\n"
               "# HELP forewarn_churn_scores_total Customers scored by the churn model (cached "
               "scores not counted).\n"
               "# TYPE forewarn_churn_scores_total counter\nforewarn_churn_scores_total %llu\n",
               engine_pending_timers(e), engine_customer_count(e),
               (unsigned long long)st->incidents, (unsigned long long)st->evaluations,
               (unsigned long long)st->wakeups, (unsigned long long)st->late,
               (unsigned long long)st->retracted, (unsigned long long)st->churn_scores);
}

static void metrics_cases(void *ctx, const struct cases *cs, const struct engine *e)
{
    struct buf *o = ctx;
    struct cases_stats st;
    (void)e;
    cases_stats(cs, &st);
    buf_printf(o,
               "# HELP forewarn_cases_open Cases open now.\n"
               "# TYPE forewarn_cases_open gauge\nforewarn_cases_open %zu\n"
               "# HELP forewarn_cases_opened_total Cases opened.\n"
               "# TYPE forewarn_cases_opened_total counter\nforewarn_cases_opened_total %llu\n"
               "# HELP forewarn_cases_resolved_total Cases resolved, by a person or by themselves.\n"
               "# TYPE forewarn_cases_resolved_total counter\n"
               "forewarn_cases_resolved_total{by=\"person\"} %llu\n"
               "forewarn_cases_resolved_total{by=\"auto\"} %llu\n"
               "# HELP forewarn_sla_warnings_total SLA clocks that reached their warning.\n"
               "# TYPE forewarn_sla_warnings_total counter\nforewarn_sla_warnings_total %llu\n"
               "# HELP forewarn_sla_breaches_total SLA clocks that ran out.\n"
               "# TYPE forewarn_sla_breaches_total counter\nforewarn_sla_breaches_total %llu\n"
               "# HELP forewarn_case_actions_ignored_total Case actions that applied to no open "
               "case.\n"
               "# TYPE forewarn_case_actions_ignored_total counter\n"
               "forewarn_case_actions_ignored_total %llu\n",
               st.open, (unsigned long long)st.opened,
               (unsigned long long)(st.resolved - st.auto_resolved),
               (unsigned long long)st.auto_resolved, (unsigned long long)st.warnings,
               (unsigned long long)st.breaches, (unsigned long long)st.ignored);
}

static void get_metrics(struct req *r)
{
    struct pipeline_metrics m;
    pipeline_metrics(r->env->pipeline, &m);
    struct buf *o = &r->out;
    buf_reset(o);
    buf_printf(o,
               "# HELP forewarn_events_accepted_total Producers' events stored and applied.\n"
               "# TYPE forewarn_events_accepted_total counter\nforewarn_events_accepted_total %llu\n"
               "# HELP forewarn_delivery_outcomes_total Delivery reports (message.sent, "
               "message.failed) journaled and applied.\n"
               "# TYPE forewarn_delivery_outcomes_total counter\n"
               "forewarn_delivery_outcomes_total %llu\n"
               "# HELP forewarn_events_duplicate_total Events ignored because their id was seen.\n"
               "# TYPE forewarn_events_duplicate_total counter\nforewarn_events_duplicate_total %llu\n"
               "# HELP forewarn_events_rejected_total Events refused by validation.\n"
               "# TYPE forewarn_events_rejected_total counter\nforewarn_events_rejected_total %llu\n"
               "# HELP forewarn_commits_total Group commits.\n"
               "# TYPE forewarn_commits_total counter\nforewarn_commits_total %llu\n"
               "# HELP forewarn_commit_failures_total Failed group commits.\n"
               "# TYPE forewarn_commit_failures_total counter\nforewarn_commit_failures_total %llu\n",
               (unsigned long long)m.accepted, (unsigned long long)m.outcomes,
               (unsigned long long)m.duplicates,
               (unsigned long long)m.rejected, (unsigned long long)m.commits,
               (unsigned long long)m.commit_failures);
    buf_puts(o, "# HELP forewarn_evaluation_seconds Time to apply one event and evaluate its signals.\n"
                "# TYPE forewarn_evaluation_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t b = 0; b < PIPELINE_LAT_BUCKETS; b++) {
        cum += m.lat_count[b];
        buf_printf(o, "forewarn_evaluation_seconds_bucket{le=\"%g\"} %llu\n", pipeline_lat_bounds[b],
                   (unsigned long long)cum);
    }
    cum += m.lat_count[PIPELINE_LAT_BUCKETS];
    buf_printf(o,
               "forewarn_evaluation_seconds_bucket{le=\"+Inf\"} %llu\n"
               "forewarn_evaluation_seconds_sum %.9f\nforewarn_evaluation_seconds_count %llu\n",
               (unsigned long long)cum, m.lat_sum, (unsigned long long)m.lat_n);
    buf_printf(o,
               "# HELP forewarn_http_deadline_closed_total Connections closed for not delivering "
               "a whole request within request_deadline.\n"
               "# TYPE forewarn_http_deadline_closed_total counter\n"
               "forewarn_http_deadline_closed_total %llu\n"
               "# HELP forewarn_http_rate_limited_total Requests refused 429 (rate_limit).\n"
               "# TYPE forewarn_http_rate_limited_total counter\n"
               "forewarn_http_rate_limited_total %llu\n",
               (unsigned long long)__atomic_load_n(&r->env->deadline_closed, __ATOMIC_RELAXED),
               (unsigned long long)__atomic_load_n(&r->env->rate_limited, __ATOMIC_RELAXED));
    struct metrics_view v = {.out = o, .rules = pipeline_rules(r->env->pipeline)};
    pipeline_with_engine(r->env->pipeline, metrics_engine, &v);
    pipeline_with_cases(r->env->pipeline, metrics_cases, o);
    delivery_metrics_print(o);
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4";
}

/*
 * Who may call what (docs/security.md has the table): reads for every
 * reading role, events for producer systems, people's actions on messages
 * for leads, the clock for admins.  Calls that read or change a message or
 * a customer are audited.
 */
const struct route http_routes[] = {
    {.method = "POST", .path = "/v1/events", .roles = ROLES_INGEST, .handler = post_events},
    {.method = "GET", .path = "/v1/customers/", .prefix = 1, .roles = ROLES_READ,
     .audit = "customer", .handler = get_customer},
    {.method = "POST", .path = "/v1/customers/", .prefix = 1, .roles = ROLES_WORK,
     .audit = "message", .handler = post_customer},
    {.method = "GET", .path = "/v1/detections", .roles = ROLES_READ, .handler = get_detections},
    {.method = "GET", .path = "/v1/messages", .roles = ROLES_READ, .audit = "message",
     .handler = get_messages},
    {.method = "GET", .path = "/v1/messages/", .prefix = 1, .roles = ROLES_READ,
     .audit = "message", .handler = message_route},
    {.method = "POST", .path = "/v1/messages/", .prefix = 1, .roles = ROLES_LEAD,
     .audit = "message", .handler = message_route},
    {.method = "GET", .path = "/v1/incidents", .roles = ROLES_READ, .handler = get_incidents},
    {.method = "GET", .path = "/v1/admin/clock", .roles = ROLES_ADMIN, .handler = reply_clock},
    {.method = "POST", .path = "/v1/admin/clock", .roles = ROLES_ADMIN, .handler = post_clock},
    {.method = "GET", .path = "/healthz", .public = ROUTE_PUBLIC, .handler = get_healthz},
    {.method = "GET", .path = "/readyz", .public = ROUTE_PUBLIC, .handler = get_readyz},
    {.method = "GET", .path = "/metrics", .public = ROUTE_PUBLIC_METRICS, .roles = ROLES_READ,
     .handler = get_metrics},
    {0},
};
