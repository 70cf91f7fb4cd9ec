/*
 * known_routes.c -- known issues and scheduled maintenance over HTTP
 * (docs/known-issues.md): GET /v1/known-issues, POST /v1/known-issues
 * (declare) and POST /v1/known-issues/{id} (update: status, ETA, ...).
 *
 * A declaration or an update is a global `known_issue.changed` event,
 * checked on the engine thread against the registry as it is at that
 * moment (pipeline_act -> orch_known_check), then journaled and applied
 * like any event, so recovery and replay reproduce every message it
 * causes.  Refused input changes nothing and is not journaled.
 */
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/util.h"

/* The registry's record for id (a new reference), or NULL. */
static json_t *find_issue(struct req *r, const char *id)
{
    json_t *list = pipeline_known_json(r->env->pipeline), *k, *hit = NULL;
    size_t i;
    json_array_foreach (list, i, k)
        if (!strcmp(json_string_value(json_object_get(k, "id")) ?: "", id))
            hit = json_incref(k);
    json_decref(list);
    return hit;
}

static void reply_issue(struct req *r, unsigned status, const char *id)
{
    json_t *k = find_issue(r, id);
    char *txt = fw_json_dumps(k ? k : json_null());
    buf_reset(&r->out);
    buf_puts(&r->out, txt);
    http_reply_json(r, status, &r->out);
    free(txt);
    json_decref(k);
}

static void get_known(struct req *r)
{
    json_t *list = pipeline_known_json(r->env->pipeline);
    json_t *out = json_pack("{s:o}", "known_issues", list);
    char *txt = fw_json_dumps(out);
    buf_reset(&r->out);
    buf_puts(&r->out, txt);
    http_reply_json(r, 200, &r->out);
    free(txt);
    json_decref(out);
}

/* Journal one change (data: the body, with id) through the engine thread's check. */
static void change(struct req *r, json_t *data, int declare)
{
    const char *id = json_string_value(json_object_get(data, "id"));
    json_t *cur = id ? find_issue(r, id) : NULL;
    if (declare && cur) {
        http_error(r, 409, "id: known issue %s exists; update it with POST /v1/known-issues/%s; "
                           "nothing was changed", id, id);
        goto out;
    }
    if (!declare && !cur) {
        http_error(r, 404, "unknown known issue '%s'; nothing was changed", id ? id : "");
        goto out;
    }
    char eid[40];
    http__event_id("ki_", eid);
    const struct rules *rules = pipeline_rules(r->env->pipeline);
    struct ingest_globals g = {
        .ctx = (void *)rules, .is_global = rules_is_global, .declared = rules_declared};
    if (!http__act(r, eid, RULES_KNOWN_ISSUE_TYPE, NULL, data, &g, "change", NULL))
        reply_issue(r, declare ? 201 : 200, id);
out:
    json_decref(cur);
}

static json_t *body_object(struct req *r)
{
    json_error_t err;
    json_t *j = r->body_len ? fw_json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &err)
                            : NULL;
    if (!json_is_object(j)) {
        if (j || !r->body_len)
            http_error(r, 400, "body: must be a JSON object; nothing was changed");
        else
            http_error(r, 400, "body: malformed JSON at line %d column %d: %s", err.line,
                       err.column, err.text);
        json_decref(j);
        return NULL;
    }
    return j;
}

static void post_known(struct req *r)
{
    json_t *data = body_object(r);
    if (!data)
        return;
    if (!json_is_string(json_object_get(data, "id"))) {
        http_error(r, 400, "id: required, a string; nothing was changed");
    } else {
        snprintf(r->audit_id, sizeof r->audit_id, "%s",
                 json_string_value(json_object_get(data, "id")));
        change(r, data, 1);
    }
    json_decref(data);
}

static void post_known_update(struct req *r)
{
    const char *id = r->tail;
    if (!*id || strchr(id, '/')) {
        http_error(r, 404, "no such endpoint: %s", r->path);
        return;
    }
    json_t *data = body_object(r);
    if (!data)
        return;
    json_t *given = json_object_get(data, "id");
    if (given && !(json_is_string(given) && !strcmp(json_string_value(given), id))) {
        http_error(r, 400, "id: the body names another issue than the path; nothing was changed");
    } else {
        json_object_set_new(data, "id", json_string(id));
        change(r, data, 0);
    }
    json_decref(data);
}

const struct route http_known_routes[] = {
    {.method = "GET", .path = "/v1/known-issues", .roles = ROLES_READ, .handler = get_known},
    {.method = "POST", .path = "/v1/known-issues", .roles = ROLES_LEAD, .audit = "known_issue",
     .handler = post_known},
    {.method = "POST", .path = "/v1/known-issues/", .prefix = 1, .roles = ROLES_LEAD,
     .audit = "known_issue", .handler = post_known_update},
    {0},
};
