/*
 * connectors.c -- the connector table: one worker thread each, in this
 * order.  Adding a connector is adding its file and a line here.
 */
#include <string.h>

#include "delivery/delivery_int.h"

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
