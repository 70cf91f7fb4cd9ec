/*
 * push.c -- push notifications through a configurable HTTP endpoint (the
 * team's own push service): POST {customer, title, body, message_id} as
 * JSON with a Bearer token and a hash of the idempotency key
 * (delivery__wire_id) as Idempotency-Key.
 * The title is meta.title when the orchestrator set one, else the subject.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/delivery_int.h"
#include "util/json.h"

static int configured(const struct delivery_config *c)
{
    return c->push.url != NULL;
}

static enum dresult send_push(struct dattempt *a, const struct outbox_msg *m)
{
    json_t *meta = delivery__jparse(m->meta);
    const char *title = delivery__meta_str(meta, "title");
    json_t *o = json_object();
    json_object_set_new(o, "customer", delivery__jstr(m->customer));
    json_object_set_new(o, "title", delivery__jstr(title ? title : m->subject ? m->subject : ""));
    json_object_set_new(o, "body", delivery__jstr(m->body ? m->body : ""));
    json_object_set_new(o, "message_id", delivery__jstr(m->id));
    json_decref(meta);
    char *body = fw_json_dumps(o);
    json_decref(o);
    char hdr[80], wid[DELIVERY_WIRE_ID_LEN];
    delivery__wire_id(m->key, wid);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", wid);
    struct curl_slist *hdrs = curl_slist_append(NULL, hdr);
    struct dhttp_req r = {.method = "POST",
                          .url = a->cfg->push.url,
                          .content_type = "application/json",
                          .body = body,
                          .len = body ? strlen(body) : 0,
                          .bearer = a->cfg->push.token,
                          .headers = hdrs};
    enum dresult res = delivery__http(a, &r);
    curl_slist_free_all(hdrs);
    free(body);
    return res;
}

/* Is the receiver there?  HEAD of the configured URL (delivery__http_probe). */
static enum dresult probe_push(struct dattempt *a)
{
    return delivery__http_probe(a, a->cfg->push.url);
}

const struct connector delivery__push = {
    .name = "push",
    .channels = {"push", NULL},
    .configured = configured,
    .send = send_push,
    .probe = probe_push,
};
