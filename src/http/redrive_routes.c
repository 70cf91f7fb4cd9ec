/*
 * redrive_routes.c -- dead letters in bulk: POST /v1/dead-letters/redrive
 * puts every dead message that matches a filter (connector or channel, and
 * when it died) back to `retrying`, with its idempotency key unchanged, so
 * a receiver that did get one drops the repeat.  The one-by-one form is
 * POST /v1/messages/{id}/retry (routes.c); the dispatcher re-drives the
 * letters that expired on their own when their connector delivers again.
 *
 * The change runs on the engine thread in its own transaction
 * (pipeline_run), like every person's action, which also wakes the
 * dispatcher's workers.  Leads and admins only; audited.
 */
#include <stdio.h>
#include <string.h>

#include "delivery/delivery.h"
#include "http/http_int.h"
#include "pipeline/pipeline.h"
#include "store/messages.h"
#include "util/fwtime.h"

struct redrive_call {
    struct redrive_filter f;
    const char *one[2]; /* a single channel, NULL-terminated */
    int n;              /* out: how many were re-driven */
};

static int run_redrive(void *ctx, struct store *db, int64_t engine_now)
{
    (void)engine_now;
    struct redrive_call *c = ctx;
    int n = store_outbox_redrive(db, &c->f, fw_wall_now());
    if (n < 0)
        return n;
    c->n = n;
    return 0;
}

/* An RFC 3339 time field of the body into *out (0 when absent); 0 or an answered 400. */
static int body_time(struct req *r, json_t *j, const char *name, int64_t *out)
{
    json_t *v = json_object_get(j, name);
    *out = 0;
    if (!v)
        return 0;
    if (!json_is_string(v) || fw_time_parse(json_string_value(v), json_string_length(v), out)) {
        http_error(r, 400, "%s: expected an RFC 3339 time with offset", name);
        return -1;
    }
    return 0;
}

static void post_redrive(struct req *r)
{
    struct redrive_call c;
    memset(&c, 0, sizeof c);
    json_t *j = NULL;
    if (r->body_len) {
        json_error_t jerr;
        j = json_loadb(r->body, r->body_len, 0, &jerr);
        if (!json_is_object(j)) {
            http_error(r, 400, "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column,
                       j ? "expected an object" : jerr.text);
            goto out;
        }
    } else {
        j = json_object();
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        if (strcmp(k, "connector") && strcmp(k, "channel") && strcmp(k, "since") &&
            strcmp(k, "until")) {
            http_error(r, 400, "unknown field '%s' (known: connector, channel, since, until)", k);
            goto out;
        }
    }
    json_t *conn = json_object_get(j, "connector"), *chan = json_object_get(j, "channel");
    if ((conn && !json_is_string(conn)) || (chan && !json_is_string(chan))) {
        http_error(r, 400, "%s must be a string", conn && !json_is_string(conn) ? "connector"
                                                                                 : "channel");
        goto out;
    }
    if (conn && chan) {
        http_error(r, 400, "give connector or channel, not both");
        goto out;
    }
    if (conn) {
        c.f.channels = delivery_connector_channels(json_string_value(conn));
        if (!c.f.channels) {
            http_error(r, 400, "connector: unknown connector '%s' (known: email, sms, push, "
                               "slack, zendesk, webhook, in_app, chatbot)",
                       json_string_value(conn));
            goto out;
        }
    } else if (chan) {
        c.one[0] = json_string_value(chan);
        c.f.channels = c.one;
    }
    if (body_time(r, j, "since", &c.f.since) || body_time(r, j, "until", &c.f.until))
        goto out;
    if (c.f.since && c.f.until && c.f.until <= c.f.since) {
        http_error(r, 400, "until: must be after since");
        goto out;
    }
    snprintf(r->audit_id, sizeof r->audit_id, "%s",
             conn ? json_string_value(conn) : chan ? json_string_value(chan) : "*");
    int rc = pipeline_run(r->env->pipeline, run_redrive, &c);
    if (rc) {
        http_error(r, 503, "the dead letters could not be re-driven; nothing changed");
        goto out;
    }
    buf_reset(&r->out);
    buf_printf(&r->out, "{\"redriven\":%d}", c.n);
    http_reply_json(r, 200, &r->out);
out:
    json_decref(j);
}

const struct route http_redrive_routes[] = {
    {.method = "POST", .path = "/v1/dead-letters/redrive", .roles = ROLES_LEAD,
     .audit = "message", .handler = post_redrive},
    {0},
};
