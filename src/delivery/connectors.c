/*
 * connectors.c -- the connector table: one worker thread each, in this
 * order.  Adding a connector is adding its file and a line here.
 */
#include "delivery/delivery_int.h"

const struct connector *const delivery__connectors[] = {
    &delivery__email, &delivery__sms,     &delivery__push,  &delivery__slack,
    &delivery__zendesk, &delivery__webhook, &delivery__inapp, &delivery__chatbot,
    NULL,
};
