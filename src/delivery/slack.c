/*
 * slack.c -- Slack incoming webhooks with Block Kit: a header block with
 * the subject, the body as mrkdwn sections, a context line with the time
 * of the decision and the signals, and `text` as the notification
 * fallback.  Slack caps a header at 150 characters and a section's text
 * at 3000, so long text is cut between characters (header) or split into
 * several sections at line breaks (body).
 *
 * Incoming webhooks have no idempotency key; the message id is in the
 * context line so a duplicate after a crash can at least be recognised.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/delivery_int.h"
#include "util/json.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/util.h"

#define HEADER_MAX 150
#define SECTION_MAX 3000
#define SECTIONS_MAX 40 /* of Slack's 50 blocks per message */

static int configured(const struct delivery_config *c)
{
    return c->slack.webhook_url != NULL;
}

/* Bytes of at most `chars` characters of s (UTF-8), never splitting one. */
static size_t prefix_chars(const char *s, size_t len, size_t chars)
{
    size_t i = 0, n = 0;
    while (i < len && n < chars) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80)
            i++;
        n++;
    }
    return i;
}

static json_t *text_obj(const char *type, const char *s, size_t len)
{
    char *t = xstrndup(s, len);
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "text", delivery__jstr(t));
    free(t);
    return o;
}

/* The body as sections of at most SECTION_MAX characters, cut at a line break when one is near. */
static void add_sections(json_t *blocks, const char *body)
{
    size_t len = strlen(body), off = 0;
    for (int n = 0; off < len && n < SECTIONS_MAX; n++) {
        size_t take = prefix_chars(body + off, len - off, SECTION_MAX);
        if (off + take < len) {
            size_t nl = take;
            while (nl > take / 2 && body[off + nl - 1] != '\n')
                nl--;
            if (nl > take / 2)
                take = nl;
        }
        json_t *sec = json_object();
        json_object_set_new(sec, "type", json_string("section"));
        json_object_set_new(sec, "text", text_obj("mrkdwn", body + off, take));
        json_array_append_new(blocks, sec);
        off += take;
    }
}

static enum dresult send_slack(struct dattempt *a, const struct outbox_msg *m)
{
    const char *subject = m->subject && *m->subject ? m->subject : NULL;
    const char *body = m->body ? m->body : "";
    json_t *blocks = json_array();
    if (subject) {
        json_t *hb = json_object();
        json_object_set_new(hb, "type", json_string("header"));
        json_object_set_new(
            hb, "text",
            text_obj("plain_text", subject, prefix_chars(subject, strlen(subject), HEADER_MAX)));
        json_array_append_new(blocks, hb);
    }
    if (*body)
        add_sections(blocks, body);

    char when[FW_TIME_MAXLEN];
    fw_time_format(m->created_at ? m->created_at : a->wall_now, when);
    struct buf ctx;
    buf_init(&ctx, 0);
    buf_printf(&ctx, "forewarn · %s", when);
    json_t *signals = delivery__jparse(m->signals);
    size_t i;
    json_t *v;
    json_array_foreach(signals, i, v) {
        if (json_is_string(v))
            buf_printf(&ctx, "%s%s", i ? ", " : " · ", json_string_value(v));
    }
    json_decref(signals);
    buf_printf(&ctx, " · %s", m->id);
    json_t *cb = json_object(), *elems = json_array();
    json_array_append_new(elems, text_obj("mrkdwn", ctx.data, ctx.len));
    json_object_set_new(cb, "type", json_string("context"));
    json_object_set_new(cb, "elements", elems);
    json_array_append_new(blocks, cb);
    buf_cleanup(&ctx);

    /* The fallback Slack shows in notifications and where blocks cannot be shown. */
    struct buf fb;
    buf_init(&fb, 0);
    if (subject)
        buf_printf(&fb, "%s\n", subject);
    buf_puts(&fb, body);
    json_t *payload = json_object();
    json_object_set_new(payload, "text", delivery__jstr(fb.data ? fb.data : ""));
    json_object_set_new(payload, "blocks", blocks);
    buf_cleanup(&fb);

    char *json = fw_json_dumps(payload);
    json_decref(payload);
    if (!json) {
        snprintf(a->err, sizeof a->err, "cannot encode the Slack message");
        return DRESULT_PERMANENT;
    }
    struct dhttp_req r = {.method = "POST",
                          .url = a->cfg->slack.webhook_url,
                          .content_type = "application/json",
                          .body = json,
                          .len = strlen(json)};
    enum dresult res = delivery__http(a, &r);
    free(json);
    return res;
}

/* Is the receiver there?  HEAD of the configured URL (delivery__http_probe). */
static enum dresult probe_slack(struct dattempt *a)
{
    return delivery__http_probe(a, a->cfg->slack.webhook_url);
}

const struct connector delivery__slack = {
    .name = "slack",
    .channels = {"slack", NULL},
    .configured = configured,
    .send = send_slack,
    .probe = probe_slack,
};
