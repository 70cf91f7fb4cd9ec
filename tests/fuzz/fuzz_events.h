/*
 * fuzz_events.h -- what the snapshot harnesses share: applying one event
 * to an engine at its own time, and writing a seed file.
 */
#ifndef FW_FUZZ_EVENTS_H
#define FW_FUZZ_EVENTS_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/engine.h"
#include "ingest/ingest.h"
#include "rules/rules.h"
#include "util/buf.h"
#include "util/fwtime.h"

/* One event, applied with the clock at its time; silently skipped when invalid. */
static void fz_apply(struct engine *e, struct rules *r, const char *subject, const char *type,
                     int64_t t, const char *data)
{
    char ts[FW_TIME_MAXLEN], id[48];
    static unsigned seq;
    fw_time_format(t, ts);
    snprintf(id, sizeof id, "fz%u", ++seq);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id", id, "type",
                          type, "time", ts, "data", json_loads(data, 0, NULL));
    if (subject)
        json_object_set_new(j, "subject", json_string(subject));
    struct ingest_globals g = {.ctx = r, .is_global = rules_is_global};
    struct event ev;
    struct ingest_error err;
    if (j && ingest_validate(j, NULL, &g, &ev, &err) == 0) {
        engine_prepare(e, t);
        engine_apply(e, &ev);
        event_cleanup(&ev);
    }
    json_decref(j);
}

/* b's bytes as the file dir/name; aborts when it cannot (seeds are made by hand). */
static void fz_write_file(const char *dir, const char *name, const struct buf *b)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f))
        abort();
}

#endif
