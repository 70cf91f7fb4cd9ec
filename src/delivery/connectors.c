/*
 * connectors.c -- the connector table: one worker thread each, in this
 * order.  Adding a connector is adding its file and a line here.
 */
#include <stdio.h>
#include <string.h>

#include "delivery/delivery_int.h"
#include "util/fwtime.h"

const struct connector *const delivery__connectors[] = {
    &delivery__email, &delivery__sms,     &delivery__push,  &delivery__slack,
    &delivery__zendesk, &delivery__webhook, &delivery__inapp, &delivery__chatbot,
    NULL,
};

const char *const *delivery_connector_channels(const char *name)
{
    for (const struct connector *const *c = delivery__connectors; *c; c++)
        if (!strcmp((*c)->name, name))
            return (*c)->channels;
    return NULL;
}

int delivery_channel_active(const struct delivery_config *cfg, const char *channel)
{
    for (const struct connector *const *c = delivery__connectors; *c; c++)
        for (size_t i = 0; (*c)->channels[i]; i++)
            if (!strcmp((*c)->channels[i], channel))
                return (*c)->delivered_by_storing || !(*c)->configured ||
                       (*c)->configured(cfg);
    return 0;
}

/* ---- one attempt outside the dispatcher (delivery.h, delivery_attempt) ---- */

enum delivery_outcome delivery_attempt(const struct delivery_config *cfg, void **curl,
                                       const struct outbox_msg *m, char *err, size_t n)
{
    const struct connector *c = NULL;
    for (const struct connector *const *k = delivery__connectors; *k && !c; k++)
        for (size_t i = 0; (*k)->channels[i]; i++)
            if (!strcmp((*k)->channels[i], m->channel))
                c = *k;
    err[0] = '\0';
    if (!c || (c->configured && !c->configured(cfg)))
        return c && c->delivered_by_storing ? DELIVERY_OUT_SENT : DELIVERY_OUT_STORED;
    if (!c->send)
        return DELIVERY_OUT_SENT; /* delivered by storing it */
    if (!*curl)
        *curl = curl_easy_init();
    if (!*curl) {
        snprintf(err, n, "cannot make an HTTP handle");
        return DELIVERY_OUT_RETRY;
    }
    struct dattempt a = {.cfg = cfg, .curl = *curl, .wall_now = fw_wall_now()};
    enum dresult r = c->send(&a, m);
    if (r == DRESULT_OK)
        return DELIVERY_OUT_SENT;
    snprintf(err, n, "%s", a.err[0] ? a.err : "delivery failed");
    return r == DRESULT_PERMANENT ? DELIVERY_OUT_PERMANENT : DELIVERY_OUT_RETRY;
}

void delivery_curl_free(void *curl)
{
    if (curl)
        curl_easy_cleanup(curl);
}

int64_t delivery_retry_at(const struct delivery_config *cfg, int attempts, int64_t first,
                          int64_t now)
{
    uint64_t rnd = (uint64_t)now * 0x9e3779b97f4a7c15ULL ^ (uint64_t)attempts;
    return delivery__retry_at(cfg, attempts, first, now, rnd);
}
