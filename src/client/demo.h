/*
 * demo.h -- `forewarn demo`: a realistic, deterministic journal of
 * history and live cases to try forewarn on (docs/guidance.md, "Demo").
 */
#ifndef FW_CLIENT_DEMO_H
#define FW_CLIENT_DEMO_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct demo_opts {
    uint64_t seed;  /* the same seed and now give the same journal */
    int64_t now;    /* the live cases are open at this time (rounded down to the hour) */
    unsigned cases; /* resolved cases of history (60 .. 100,000) */
};

/* The journal as CloudEvents NDJSON appended to out; FW_EINVAL for bad options. */
int demo_write(const struct demo_opts *o, struct buf *out, size_t *nevents);

#endif
