/*
 * chatbot.c -- the chatbot context.  The bot pulls the current proactive
 * context from the API (GET /v1/customers/{id}/context), so storing it is
 * the delivery; when chatbot.url is configured the context is also pushed
 * there as a Standard Webhooks message (signed when chatbot.secret is set):
 * {"type":"forewarn.chatbot_context","timestamp":...,"data":{"customer",
 * "message_id","context"}}, the context being the message body (the
 * proactive_context JSON; text when it is not JSON).
 */
#include <stdio.h>

#include "delivery/delivery_int.h"

static int configured(const struct delivery_config *c)
{
    return c->chatbot.url != NULL;
}

static enum dresult send_chatbot(struct dattempt *a, const struct outbox_msg *m)
{
    char wid[DELIVERY_WIRE_ID_LEN];
    delivery__wire_id(m->key, wid);
    json_t *data = json_object(), *ctx = delivery__jparse(m->body);
    json_object_set_new(data, "customer", delivery__jstr(m->customer));
    json_object_set_new(data, "message_id", delivery__jstr(m->id));
    json_object_set_new(data, "context", ctx ? ctx : delivery__jstr(m->body));
    return delivery__webhook_post(a, a->cfg->chatbot.url, a->cfg->chatbot.secret,
                                  "forewarn.chatbot_context", wid, data);
}

/* Is the receiver there?  HEAD of the configured URL (delivery__http_probe). */
static enum dresult probe_chatbot(struct dattempt *a)
{
    return delivery__http_probe(a, a->cfg->chatbot.url);
}

const struct connector delivery__chatbot = {
    .name = "chatbot",
    .channels = {"chatbot", NULL},
    .configured = configured,
    .send = send_chatbot,
    .probe = probe_chatbot,
    .delivered_by_storing = 1,
};
