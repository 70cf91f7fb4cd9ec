/*
 * zendesk.c -- Zendesk Tickets API v2 for the three ticket channels:
 *
 *   ticket         POST {base}/api/v2/tickets.json: the L1 alert ticket,
 *                  with subject, a private first comment, priority, tags
 *                  (the group name joins them) and the requester;
 *   internal_note  PUT {base}/api/v2/tickets/{id}.json with a private comment;
 *   ticket_reply   the same with a public comment (the customer sees it).
 *
 * The ticket id comes from meta.ticket_id, else the recipient.  Auth is
 * basic "{email}/token:{api_token}"; a hash of the idempotency key
 * (delivery__wire_id) goes in the Idempotency-Key header, which Zendesk
 * honours on ticket creation.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/delivery_int.h"
#include "util/json.h"
#include "util/buf.h"
#include "util/util.h"

static int configured(const struct delivery_config *c)
{
    return c->zendesk.base_url && c->zendesk.email && c->zendesk.api_token;
}

/* Zendesk tags are single words: lower case, spaces as underscores. */
static json_t *tag(const char *s)
{
    char *t = xstrdup(s);
    for (char *p = t; *p; p++)
        *p = isspace((unsigned char)*p) ? '_' : (char)tolower((unsigned char)*p);
    json_t *j = delivery__jstr(t);
    free(t);
    return j;
}

static int has_tag(json_t *tags, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(tags, i, v) {
        if (json_is_string(v) && !strcmp(json_string_value(v), s))
            return 1;
    }
    return 0;
}

/* The requester of a new ticket: meta.requester {email, name}, else the customer's address. */
static json_t *requester(json_t *meta, const struct outbox_msg *m)
{
    json_t *r = json_object_get(meta, "requester");
    const char *email = json_string_value(json_object_get(r, "email"));
    const char *name = json_string_value(json_object_get(r, "name"));
    if (!email)
        email = delivery__meta_str(meta, "customer_email");
    if (!email && m->recipient && strchr(m->recipient, '@'))
        email = m->recipient;
    if (!email && m->customer && strchr(m->customer, '@'))
        email = m->customer;
    if (!name)
        name = delivery__meta_str(meta, "customer_name");
    if (!email)
        return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "email", delivery__jstr(email));
    if (name)
        json_object_set_new(o, "name", delivery__jstr(name));
    return o;
}

static json_t *new_ticket(const struct outbox_msg *m, json_t *meta)
{
    json_t *t = json_object(), *comment = json_object(), *tags = json_array();
    json_object_set_new(t, "subject", delivery__jstr(m->subject ? m->subject : ""));
    json_object_set_new(comment, "body", delivery__jstr(m->body ? m->body : ""));
    json_object_set_new(comment, "public", json_false());
    json_object_set_new(t, "comment", comment);
    const char *prio = delivery__meta_str(meta, "priority");
    if (prio)
        json_object_set_new(t, "priority", json_string(prio));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(meta, "tags"), i, v) {
        if (json_is_string(v) && *json_string_value(v))
            json_array_append_new(tags, tag(json_string_value(v)));
    }
    /* A group by name is a tag (routing rules pick it up); a numeric group_id is Zendesk's own. */
    const char *group = delivery__meta_str(meta, "group");
    if (group) {
        json_t *g = tag(group);
        if (!has_tag(tags, json_string_value(g)))
            json_array_append(tags, g);
        json_decref(g);
    }
    json_t *gid = json_object_get(meta, "group_id");
    if (json_is_integer(gid))
        json_object_set(t, "group_id", gid);
    json_object_set_new(t, "tags", tags);
    json_t *req = requester(meta, m);
    if (req)
        json_object_set_new(t, "requester", req);
    return t;
}

static json_t *comment_only(const struct outbox_msg *m, int public)
{
    json_t *t = json_object(), *comment = json_object();
    json_object_set_new(comment, "body", delivery__jstr(m->body ? m->body : ""));
    json_object_set_new(comment, "public", json_boolean(public));
    json_object_set_new(t, "comment", comment);
    return t;
}

/* The ticket to update: meta.ticket_id (number or text), else the recipient; digits only. */
static int ticket_id(json_t *meta, const struct outbox_msg *m, char out[32])
{
    json_t *v = json_object_get(meta, "ticket_id");
    const char *s = NULL;
    if (json_is_integer(v)) {
        snprintf(out, 32, "%lld", (long long)json_integer_value(v));
        return 0;
    }
    s = json_string_value(v);
    if (!s || !*s)
        s = m->recipient;
    if (!s || !*s || strlen(s) > 20 || strspn(s, "0123456789") != strlen(s))
        return FW_EINVAL;
    snprintf(out, 32, "%s", s);
    return 0;
}

static enum dresult send_zendesk(struct dattempt *a, const struct outbox_msg *m)
{
    const struct delivery_config *c = a->cfg;
    json_t *meta = delivery__jparse(m->meta), *ticket;
    char id[32], *url, user[512], hdr[600];
    enum dresult res = DRESULT_PERMANENT;
    const char *method;
    if (!strcmp(m->channel, "ticket")) {
        method = "POST";
        url = delivery__url(c->zendesk.base_url, "/api/v2/tickets.json");
        ticket = new_ticket(m, meta);
    } else {
        if (ticket_id(meta, m, id)) {
            snprintf(a->err, sizeof a->err,
                     "no ticket to add the %s to (meta.ticket_id or the recipient names it)",
                     m->channel);
            goto out_meta;
        }
        char path[64];
        snprintf(path, sizeof path, "/api/v2/tickets/%s.json", id);
        method = "PUT";
        url = delivery__url(c->zendesk.base_url, path);
        ticket = comment_only(m, !strcmp(m->channel, "ticket_reply"));
    }
    json_t *payload = json_object();
    json_object_set_new(payload, "ticket", ticket);
    char *body = fw_json_dumps(payload);
    json_decref(payload);
    snprintf(user, sizeof user, "%s/token", c->zendesk.email);
    char wid[DELIVERY_WIRE_ID_LEN];
    delivery__wire_id(m->key, wid);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", wid);
    struct curl_slist *hdrs = curl_slist_append(NULL, hdr);
    struct dhttp_req r = {.method = method,
                          .url = url,
                          .content_type = "application/json",
                          .body = body,
                          .len = body ? strlen(body) : 0,
                          .username = user,
                          .password = c->zendesk.api_token,
                          .headers = hdrs};
    res = delivery__http(a, &r);
    curl_slist_free_all(hdrs);
    free(body);
    free(url);
out_meta:
    json_decref(meta);
    return res;
}

/* Is the receiver there?  HEAD of the configured URL (delivery__http_probe). */
static enum dresult probe_zendesk(struct dattempt *a)
{
    return delivery__http_probe(a, a->cfg->zendesk.base_url);
}

const struct connector delivery__zendesk = {
    .name = "zendesk",
    .channels = {"ticket", "internal_note", "ticket_reply", NULL},
    .configured = configured,
    .send = send_zendesk,
    .probe = probe_zendesk,
};
