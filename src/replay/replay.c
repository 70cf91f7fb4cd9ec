/*
 * replay.c -- the backtest: NDJSON events in, detection and incident lines out.
 */
#include "replay/replay.h"

#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "comms/comms.h"
#include "ingest/ingest.h"
#include "orchestrate/orchestrate.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/jsonload.h"
#include "util/map.h"
#include "util/util.h"

struct pending {
    struct event ev;
    size_t line;
};

static int by_time(const void *a, const void *b)
{
    const struct pending *x = a, *y = b;
    if (x->ev.time != y->ev.time)
        return x->ev.time < y->ev.time ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line; /* stable */
}

struct printer {
    FILE *out;
    struct buf line;
    size_t detections, incidents, messages;
};

static void print_message(void *ctx, const struct outbox_msg *m)
{
    struct printer *p = ctx;
    buf_reset(&p->line);
    orch_message_json(m, &p->line);
    buf_putc(&p->line, '\n');
    fwrite(p->line.data, 1, p->line.len, p->out);
    p->messages++;
}

static void print_detection(void *ctx, const struct detection *d)
{
    struct printer *p = ctx;
    buf_reset(&p->line);
    detection_json(d, &p->line);
    buf_putc(&p->line, '\n');
    fwrite(p->line.data, 1, p->line.len, p->out);
    p->detections++;
}

static void print_incident(void *ctx, const struct incident *i)
{
    struct printer *p = ctx;
    buf_reset(&p->line);
    incident_json(i, 0, &p->line);
    buf_putc(&p->line, '\n');
    fwrite(p->line.data, 1, p->line.len, p->out);
    p->incidents++;
}

/*
 * Read one line (without its newline) into b, in chunks; a line longer
 * than b's cap is consumed and flagged, never buffered whole.  Returns 0 at EOF.
 */
static int read_line(FILE *in, struct buf *b, int *toobig)
{
    char chunk[65536];
    int any = 0;
    buf_reset(b);
    *toobig = 0;
    while (fgets(chunk, sizeof chunk, in)) {
        size_t n = strlen(chunk);
        int eol = n && chunk[n - 1] == '\n';
        any = 1;
        if (!*toobig && buf_append(b, chunk, n - (size_t)eol))
            *toobig = 1;
        if (eol)
            break;
    }
    if (b->len && b->data[b->len - 1] == '\r')
        b->data[--b->len] = '\0';
    return any;
}

int replay_run(struct rules *rules, FILE *in, FILE *out, FILE *err, const struct replay_opts *o)
{
    struct ingest_globals globals = {.ctx = rules, .is_global = rules_is_global};
    struct ingest_limits lim = ingest_default_limits;
    struct pending *evs = NULL;
    size_t n = 0, cap = 0, lineno = 0, bad = 0, dups = 0;
    struct strmap seen;
    struct buf line;
    int rc = 0, toobig;
    strmap_init(&seen);
    buf_init(&line, lim.max_body);
    while (read_line(in, &line, &toobig)) {
        lineno++;
        if (toobig) {
            fprintf(err, "line %zu: event larger than %zu bytes\n", lineno, lim.max_body);
            bad++;
            continue;
        }
        size_t i = 0;
        while (i < line.len && (line.data[i] == ' ' || line.data[i] == '\t'))
            i++;
        if (i == line.len)
            continue;
        json_error_t jerr;
        json_t *j = fw_json_loadb(line.data, line.len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j) {
            fprintf(err, "line %zu: malformed JSON at column %d: %s\n", lineno, jerr.column,
                    jerr.text);
            bad++;
            continue;
        }
        struct event ev;
        struct ingest_error ierr;
        int vrc = ingest_validate(j, &lim, &globals, &ev, &ierr);
        json_decref(j); /* ingest_validate took its own reference on success */
        if (vrc) {
            fprintf(err, "line %zu: %s%s%s\n", lineno, ierr.field,
                    ierr.field[0] ? ": " : "", ierr.msg);
            bad++;
            continue;
        }
        int created;
        strmap_upsert(&seen, ev.id, strlen(ev.id), &created);
        if (!created) {
            dups++;
            event_cleanup(&ev);
            continue;
        }
        evs = xgrow(evs, &cap, n + 1, sizeof *evs);
        evs[n].ev = ev;
        evs[n++].line = lineno;
    }
    buf_cleanup(&line);
    if (bad && !o->skip_invalid) {
        fprintf(err, "replay: %zu invalid line(s); nothing replayed (use --skip-invalid to "
                     "replay the valid ones)\n",
                bad);
        rc = FW_EPARSE;
        goto out;
    }
    qsort(evs, n, sizeof *evs, by_time);

    struct printer p = {.out = out};
    buf_init(&p.line, 0);
    struct engine_sink sink = {.ctx = &p, .detection = print_detection, .incident = print_incident};
    struct comms *templates = NULL;
    struct orch_config ocfg;
    struct orch *orch = NULL;
    orch_config_init(&ocfg);
    if (o->messages) {
        struct buf diag;
        buf_init(&diag, 0);
        if (comms_load(o->templates, &templates, &diag)) {
            fputs(diag.data ? diag.data : "templates failed to load\n", err);
            buf_cleanup(&diag);
            buf_cleanup(&p.line);
            orch_config_cleanup(&ocfg);
            rc = FW_EPARSE;
            goto out;
        }
        buf_cleanup(&diag);
        struct orch_sink os = {.ctx = &p, .message = print_message};
        orch = orch_new(&ocfg, templates, &os);
        sink = orch_engine_sink(orch, &sink);
    }
    struct engine *e = engine_new(rules, n ? evs[0].ev.time : (o->until != FW_TIME_NONE ? o->until : 0), &sink);
    if (orch)
        orch_bind(orch, e);
    for (size_t i = 0; i < n; i++) {
        engine_prepare(e, evs[i].ev.time);
        engine_apply(e, &evs[i].ev);
        event_cleanup(&evs[i].ev);
    }
    n = 0;
    if (o->until != FW_TIME_NONE)
        engine_advance(e, o->until);
    fprintf(err, "replay: %zu events, %zu duplicate(s), %zu invalid, %zu customers, %zu detection "
                 "transitions, %zu incident updates, %zu messages, %zu pending wake-ups\n",
            (size_t)engine_stats(e)->events, dups, bad, engine_customer_count(e), p.detections,
            p.incidents, p.messages, engine_pending_timers(e));
    orch_free(orch); /* cancels its timers: before the engine goes */
    engine_free(e);
    comms_free(templates);
    orch_config_cleanup(&ocfg);
    buf_cleanup(&p.line);
out:
    for (size_t i = 0; i < n; i++)
        event_cleanup(&evs[i].ev);
    free(evs);
    strmap_cleanup(&seen);
    fflush(out);
    return rc;
}
