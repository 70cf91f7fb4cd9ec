/*
 * inapp.c -- in-app messages: nothing leaves the machine.  The row in the
 * outbox is the delivery; the API lists it for the customer and marks it
 * read.  Sending is marking it `sent`, so the outcome event still flows.
 */
#include "delivery/delivery_int.h"

const struct connector delivery__inapp = {
    .name = "in_app",
    .channels = {"in_app", NULL},
    .configured = NULL,
    .send = NULL,
    .delivered_by_storing = 1,
};
