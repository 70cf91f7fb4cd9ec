/*
 * draft_routes.c -- POST /v1/cases/{id}/draft: a reply draft for the
 * agent, from the drafting model when one is configured and answers in
 * time, else the template draft forewarn decided for the case
 * (guidance/draft.h).  Reading the case is audited like any case read.
 */
#include <stdlib.h>
#include <string.h>

#include "guidance/draft.h"
#include "http/http_int.h"
#include "store/cases.h"
#include "store/messages.h"
#include "util/json.h"
#include "util/util.h"

/* The case's latest customer message (prefer email): {"subject", "body", "channel"}, or NULL. */
static json_t *template_draft(struct store *s, json_t *doc)
{
    json_t *best = NULL;
    json_t *ids = json_object_get(doc, "messages");
    for (size_t i = json_array_size(ids); i-- > 0;) {
        struct outbox_msg m = {0};
        const char *id = json_string_value(json_array_get(ids, i));
        if (!id || store_message_get(s, id, &m))
            continue;
        int ok = m.audience && !strcmp(m.audience, "customer") && m.body;
        int email = ok && !strcmp(m.channel, "email");
        if (ok && (!best || email)) {
            json_decref(best);
            best = json_pack("{s:s?, s:s, s:s}", "subject", m.subject, "body", m.body, "channel",
                             m.channel);
        }
        outbox_msg_cleanup(&m);
        if (email)
            break;
    }
    return best;
}

void http__case_draft(struct req *r, const char *id)
{
    const char *instructions = NULL;
    json_t *in = NULL;
    if (r->body && r->body_len) {
        json_error_t e;
        in = json_loadb(r->body, r->body_len, 0, &e);
        if (!json_is_object(in) || (json_object_get(in, "instructions") &&
                                    !json_is_string(json_object_get(in, "instructions")))) {
            json_decref(in);
            http_error(r, 400, "body: expected {\"instructions\": \"...\"} or nothing");
            return;
        }
        instructions = json_string_value(json_object_get(in, "instructions"));
    }
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        json_decref(in);
        http_error(r, 503, "database unavailable");
        return;
    }
    struct buf docb;
    buf_init(&docb, 0);
    int rc = store_case_get(s, id, &docb);
    json_t *doc = rc ? NULL : json_loadb(docb.data, docb.len, 0, NULL);
    json_t *tmpl = doc ? template_draft(s, doc) : NULL;
    http__reader_release(&r->env->readers, s);
    buf_cleanup(&docb);
    if (!doc) {
        json_decref(in);
        http_error(r, rc == FW_ENOTFOUND ? 404 : 500,
                   rc == FW_ENOTFOUND ? "no such case: %s" : "could not read case %s", id);
        return;
    }
    /* The model is asked outside every lock: a slow model holds up only this request. */
    json_t *out = draft_reply(r->env->opt.drafting, doc, tmpl, instructions);
    json_object_set_new(out, "case", json_string(id));
    char *txt = fw_json_dumps(out);
    buf_reset(&r->out);
    buf_puts(&r->out, txt);
    http_reply_json(r, 200, &r->out);
    free(txt);
    json_decref(out);
    json_decref(tmpl);
    json_decref(doc);
    json_decref(in);
}
