/*
 * sms.c -- the SMS connector in the shape of Twilio's Messages API:
 * POST {base_url}/2010-04-01/Accounts/{sid}/Messages.json with To, From
 * and Body form-encoded, HTTP basic auth sid:token, and a hash of the
 * idempotency key (delivery__wire_id) as I-Twilio-Idempotency-Token.  Twilio answers 201 Created; a 4xx
 * (bad number, unverified sender) is permanent, 429 and 5xx are retried.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/delivery_int.h"
#include "util/buf.h"
#include "util/util.h"

static int configured(const struct delivery_config *c)
{
    return c->sms.base_url && c->sms.account_sid && c->sms.auth_token && c->sms.from;
}

static void form_field(struct buf *b, CURL *h, const char *name, const char *value)
{
    char *enc = curl_easy_escape(h, value, 0);
    buf_printf(b, "%s%s=%s", b->len ? "&" : "", name, enc ? enc : "");
    curl_free(enc);
}

static enum dresult send_sms(struct dattempt *a, const struct outbox_msg *m)
{
    const struct delivery_config *c = a->cfg;
    if (!m->recipient || !*m->recipient) {
        snprintf(a->err, sizeof a->err, "no phone number to send the SMS to");
        return DRESULT_PERMANENT;
    }
    char *sid = curl_easy_escape(a->curl, c->sms.account_sid, 0);
    struct buf path, body, hdr;
    buf_init(&path, 0);
    buf_init(&body, 0);
    buf_init(&hdr, 0);
    buf_printf(&path, "/2010-04-01/Accounts/%s/Messages.json", sid ? sid : "");
    curl_free(sid);
    char *url = delivery__url(c->sms.base_url, path.data);
    form_field(&body, a->curl, "To", m->recipient);
    form_field(&body, a->curl, "From", c->sms.from);
    form_field(&body, a->curl, "Body", m->body ? m->body : "");
    char wid[DELIVERY_WIRE_ID_LEN];
    delivery__wire_id(m->key, wid);
    buf_printf(&hdr, "I-Twilio-Idempotency-Token: %s", wid);
    struct curl_slist *hdrs = curl_slist_append(NULL, hdr.data);
    struct dhttp_req r = {.method = "POST",
                          .url = url,
                          .content_type = "application/x-www-form-urlencoded",
                          .body = body.data,
                          .len = body.len,
                          .username = c->sms.account_sid,
                          .password = c->sms.auth_token,
                          .headers = hdrs};
    enum dresult res = delivery__http(a, &r);
    curl_slist_free_all(hdrs);
    free(url);
    buf_cleanup(&path);
    buf_cleanup(&body);
    buf_cleanup(&hdr);
    return res;
}

/* Is the receiver there?  HEAD of the configured URL (delivery__http_probe). */
static enum dresult probe_sms(struct dattempt *a)
{
    return delivery__http_probe(a, a->cfg->sms.base_url);
}

const struct connector delivery__sms = {
    .name = "sms",
    .channels = {"sms", NULL},
    .configured = configured,
    .send = send_sms,
    .probe = probe_sms,
};
