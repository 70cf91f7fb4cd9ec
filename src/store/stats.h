/*
 * store/stats.h -- the inputs of the outcome figures (analytics/stats.h),
 * read from the store.
 */
#ifndef FW_STORE_STATS_H
#define FW_STORE_STATS_H

#include <jansson.h>

#include "store/store.h"

/*
 * Every case document, the proactive customer messages that went out
 * ([{customer, at}], one per decision) and the tickets customers opened
 * ([{customer, at}]).  The caller owns the three arrays (also on error).
 * 0 or FW_EDB.
 */
int store_stats_input(struct store *s, json_t **cases, json_t **outreach, json_t **contacts);

#endif
