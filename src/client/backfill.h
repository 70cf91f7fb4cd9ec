/*
 * backfill.h -- `forewarn ingest --backfill FILE`: load a history of events
 * into a running server, for a first installation or after a producer's
 * outage.
 *
 * The file is validated whole before anything is sent (a bad event refuses
 * the file with its line and nothing reaches the server), sorted by event
 * time, and posted in batches to POST /v1/events; each batch is atomic on
 * the server, and ids already stored count as duplicates, so an
 * interrupted backfill is resumed by running it again.  What the history
 * means is the server's business: it judges every event as of its own time
 * and decides once, per customer, what is still firing at the end
 * (docs/events.md, "Event time").
 */
#ifndef FW_CLIENT_BACKFILL_H
#define FW_CLIENT_BACKFILL_H

#include <stddef.h>

#include "rules/rules.h"

struct backfill_opts {
    const char *file;  /* NDJSON, a JSON array or one object; "-" for stdin */
    const char *url;   /* the server's base URL, e.g. http://127.0.0.1:8080 */
    const char *token; /* bearer token, or NULL */
    size_t batch;      /* events per POST (1 .. 10,000) */
    const struct rules *rules; /* which types are global (subject-less) */
};

/*
 * Run the backfill; progress and errors go to stderr, a summary line
 * "backfill: N events, N accepted, N duplicate(s) in N batches" to stdout.
 * Returns 0, FW_EPARSE (the file was refused: nothing sent), or FW_EIO (a
 * batch failed: the batches before it are stored, the rest are not).
 */
int backfill_run(const struct backfill_opts *o);

#endif
