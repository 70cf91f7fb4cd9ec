/*
 * webhook.c -- generic webhooks per the Standard Webhooks specification:
 * the message as {"type":"forewarn.message","timestamp":...,"data":{...}},
 * with webhook-id (the idempotency key, so a receiver drops a repeat),
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
    if (!delivery__header_safe(m->key)) {
        snprintf(a->err, sizeof a->err, "the idempotency key is not usable in a header");
        return DRESULT_PERMANENT;
    }
    return delivery__webhook_post(a, a->cfg->webhook.url, a->cfg->webhook.secret,
                                  "forewarn.message", m->key, delivery__message_json(m));
}

const struct connector delivery__webhook = {
    .name = "webhook",
    .channels = {"webhook", NULL},
    .configured = configured,
    .send = send_webhook,
};
