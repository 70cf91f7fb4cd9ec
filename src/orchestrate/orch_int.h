/*
 * orch_int.h -- private to the orchestrate module.
 */
#ifndef FW_ORCH_INT_H
#define FW_ORCH_INT_H

#include <stdint.h>
#include <stdio.h>

#include "util/fwtime.h"

/* Minutes after local midnight at t in zone tz. FW_ENOTFOUND for an unknown zone. */
int orch__local_minutes(int64_t t, const char *tz, int *minutes);
/*
 * When t falls inside the quiet window [start, end) (minutes, may wrap
 * midnight) in zone tz: the time the window ends.  Otherwise FW_TIME_NONE.
 */
int64_t orch__quiet_until(int64_t t, const char *tz, int start, int end);

#endif
