/*
 * webhook.c -- generic webhooks per the Standard Webhooks specification:
 * the message as {"type":"forewarn.message","timestamp":...,"data":{...}},
 * with webhook-id (a hash of the idempotency key, delivery__wire_id, so a
 * receiver drops a repeat),
 * webhook-timestamp and the HMAC-SHA256 webhook-signature.
 */
#include "delivery/delivery_int.h"

#include <stdio.h>

static int configured(const struct delivery_config *c)
{
    return c->webhook.url && c->webhook.secret;
}

static enum dresult send_webhook(struct dattempt *a, const struct outbox_msg *m)
{
    char wid[DELIVERY_WIRE_ID_LEN];
    delivery__wire_id(m->key, wid);
    return delivery__webhook_post(a, a->cfg->webhook.url, a->cfg->webhook.secret,
                                  "forewarn.message", wid, delivery__message_json(m));
}

/* Is the receiver there?  HEAD of the configured URL (delivery__http_probe). */
static enum dresult probe_webhook(struct dattempt *a)
{
    return delivery__http_probe(a, a->cfg->webhook.url);
}

const struct connector delivery__webhook = {
    .name = "webhook",
    .channels = {"webhook", NULL},
    .configured = configured,
    .send = send_webhook,
    .probe = probe_webhook,
};
