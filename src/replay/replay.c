/*
 * replay.c -- the backtest: NDJSON events in, detection and incident lines out.
 */
#include "replay/replay.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"
#include "cases/cases.h"
#include "comms/comms.h"
#include "ingest/ingest.h"
#include "orchestrate/orchestrate.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/util.h"
#include "analytics/stats.h"
#include "replay/parts.h"
#include "replay/report.h"

struct printer {
    FILE *out;
    struct buf line;
    size_t detections, incidents, messages, case_lines;
    int messages_on; /* print messages (--messages); with --cases alone they are decided only */
    /* --stats: what the outcomes are computed from, as serve keeps it (NULL: not asked). */
    json_t *docs;     /* case id -> latest document */
    json_t *outreach; /* proactive customer messages that went out: [{customer, at}] */
    json_t *contacts; /* tickets customers opened: [{customer, at}] */
    json_t *answers;  /* --report: replies and tickets, [{customer, type, at}] */
};

/* A proactive customer message that went out (an alert or an outage message, not held back). */
static void note_outreach(struct printer *p, const struct outbox_msg *m)
{
    if (!p->outreach || !m->customer || strcmp(m->audience, "customer") ||
        !strcmp(m->status, "suppressed") ||
        (strncmp(m->key, "alert|", 6) && strncmp(m->key, "outage|", 7)))
        return;
    size_t n = json_array_size(p->outreach);
    json_t *last = n ? json_array_get(p->outreach, n - 1) : NULL;
    if (last && json_integer_value(json_object_get(last, "at")) == m->created_at &&
        !strcmp(json_string_value(json_object_get(last, "customer")), m->customer))
        return; /* one decision, several channels: one outreach */
    json_array_append_new(p->outreach, json_pack("{s:s, s:I}", "customer", m->customer, "at",
                                                 (json_int_t)m->created_at));
}

static void print_message(void *ctx, const struct outbox_msg *m)
{
    struct printer *p = ctx;
    note_outreach(p, m);
    if (!p->messages_on)
        return;
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

/* parts_msgs.line: a message decided on a partition. */
static void print_message_line(void *ctx, const char *json, size_t n)
{
    struct printer *p = ctx;
    fwrite(json, 1, n, p->out);
    fputc('\n', p->out);
    p->messages++;
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

static void print_case_line(void *ctx, const char *id, int64_t at, const char *event,
                            const char *json, size_t len)
{
    struct printer *p = ctx;
    (void)id, (void)at, (void)event;
    fwrite(json, 1, len, p->out);
    fputc('\n', p->out);
    p->case_lines++;
}

/* parts_msgs.case_line: a case line from a partition, or the merger's incident attachment. */
static void print_case_json(void *ctx, const char *json, size_t n)
{
    print_case_line(ctx, NULL, 0, NULL, json, n);
}

/*
 * Cases on partitions (parts.h): one engine's output, except where an SLA
 * policy condition could read the time the merger attached an incident to
 * a case (the partition's case does not see it; the policy's clock is the
 * case's last update): with systemic signals and a policy condition, one
 * engine runs.
 */
static int cases_on_parts(const struct replay_opts *o, const struct rules *rules)
{
    int conds = 0, systemic = 0;
    for (size_t i = 0; o->sla && i < o->sla->npolicies; i++)
        conds |= o->sla->policies[i].match != NULL;
    for (size_t s = 0; s < rules->nsignals; s++)
        systemic |= rules->signals[s].systemic != 0;
    return !(conds && systemic) && o->part_playbooks;
}

static void keep_case(void *ctx, const char *id, const char *customer, int open, const char *doc)
{
    struct printer *p = ctx;
    (void)customer, (void)open;
    json_t *d = json_loads(doc, 0, NULL);
    if (d)
        json_object_set_new(p->docs, id, d);
}

static void forget_case(void *ctx, const char *id)
{
    struct printer *p = ctx;
    json_object_del(p->docs, id);
}

/* The closing {"kind":"stats"} line: the figures the stats API gives for this journal. */
static void print_stats(struct printer *p)
{
    json_t *cases = json_array();
    const char *id;
    json_t *doc;
    json_object_foreach(p->docs, id, doc) json_array_append(cases, doc);
    struct stats_input in = {.cases = cases, .outreach = p->outreach, .contacts = p->contacts,
                             .from = INT64_MIN, .to = INT64_MAX,
                             .prevention_window = 7 * FW_DAY};
    json_t *board = stats_leaderboard(&in);
    json_t *line = json_pack("{s:s, s:o, s:O}", "kind", "stats", "outcomes", stats_outcomes(&in),
                             "leaderboard", json_object_get(board, "leaderboard"));
    json_decref(board);
    char *txt = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
    fprintf(p->out, "%s\n", txt);
    free(txt);
    json_decref(line);
    json_decref(cases);
}

/*
 * The whole input, mapped: a regular file as it is, anything else (a pipe)
 * copied first into an unlinked temporary file, so that the pages already
 * read can be given back (input_release) and a piped input does not sit in
 * memory (it did: 131 MB more at the peak for 100k customers' 172 MB).  Read
 * into memory only when neither can be mapped.
 */
struct input {
    char *data;
    size_t len;
    int mapped;
};

static int input_map(FILE *f, struct input *inp)
{
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size <= 0)
        return -1;
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fileno(f), 0);
    if (m == MAP_FAILED)
        return -1;
    madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
    inp->data = m;
    inp->len = (size_t)st.st_size;
    inp->mapped = 1;
    return 0;
}

/* Append what is left of f to the in-memory input. */
static int input_read(FILE *f, struct input *inp, size_t *cap)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        inp->data = xgrow(inp->data, cap, inp->len + n, 1);
        memcpy(inp->data + inp->len, chunk, n);
        inp->len += n;
    }
    return ferror(f) ? FW_EIO : 0;
}

static int input_load(FILE *in, struct input *inp)
{
    memset(inp, 0, sizeof *inp);
    if (ftello(in) == 0 && !input_map(in, inp))
        return 0;
    FILE *spool = tmpfile();
    size_t cap = 0, written = 0;
    int rc = 0;
    if (spool) {
        char chunk[65536];
        size_t n = 0, done = 0;
        int fd = fileno(spool), failed = 0;
        while (!failed && (n = fread(chunk, 1, sizeof chunk, in)) > 0) {
            for (done = 0; done < n;) {
                ssize_t w = write(fd, chunk + done, n - done);
                if (w <= 0)
                    break;
                done += (size_t)w;
            }
            written += done;
            failed = done < n;
        }
        if (!failed)
            n = done = 0; /* no chunk is left over */
        if (!ferror(in) && !failed && !input_map(spool, inp)) {
            fclose(spool); /* the mapping outlives the file */
            return 0;
        }
        /*
         * Empty, or the spool failed (a full disk): the bytes it took come
         * back into memory, then the rest of the chunk that failed.
         */
        if (ferror(in))
            rc = FW_EIO;
        inp->data = xgrow(inp->data, &cap, written + (n - done) + 1, 1);
        for (size_t got = 0; !rc && got < written;) {
            ssize_t r = pread(fd, inp->data + got, written - got, (off_t)got);
            if (r <= 0)
                rc = FW_EIO;
            else
                got += (size_t)r;
        }
        memcpy(inp->data + written, chunk + done, n - done);
        inp->len = written + (n - done);
        fclose(spool);
    }
    if (!rc)
        rc = input_read(in, inp, &cap);
    if (rc) {
        free(inp->data);
        memset(inp, 0, sizeof *inp);
    }
    return rc;
}

/*
 * A mapped file's pages before pos are not needed again unless the input
 * turns out not to be in time order, and then the kernel reads them back:
 * drop them every 8 MB so replay's memory is the engine's, not the file's
 * (64 MB held 31 MB more at the peak on 100k customers' 172 MB).
 */
static void input_release(const struct input *inp, size_t pos, size_t *released)
{
    const size_t step = (size_t)8 << 20;
    if (!inp->mapped || pos < *released + step)
        return;
    size_t upto = pos & ~(step - 1);
    madvise(inp->data + *released, upto - *released, MADV_DONTNEED);
    *released = upto;
}

static void input_cleanup(struct input *inp)
{
    if (inp->mapped)
        munmap(inp->data, inp->len);
    else
        free(inp->data);
}

/*
 * The next line of the input after *pos: its bytes without "\n" or "\r\n".
 * Returns 0 at the end.  A last line without a newline counts.
 */
static int next_line(const struct input *inp, size_t *pos, const char **s, size_t *n)
{
    if (*pos >= inp->len)
        return 0;
    const char *p = inp->data + *pos, *nl = memchr(p, '\n', inp->len - *pos);
    *s = p;
    *n = nl ? (size_t)(nl - p) : inp->len - *pos;
    *pos += *n + (nl != NULL);
    if (*n && p[*n - 1] == '\r')
        (*n)--;
    return 1;
}

/*
 * Event ids seen so far, for duplicates: an open-addressing table of 8-byte
 * slots, sized once from the number of lines (it never grows) to be 3/4
 * full at most.  A slot holds the top 24 bits of the id's hash and the
 * offset + 1 of the line it came from (40 bits: inputs up to 1 TiB); its
 * place comes from the hash's low 32 bits.  A slot whose bits match is told
 * apart by reading the earlier line's id again (the input is all mapped).
 * 8 bytes an event at most 3/4 full: 11 MB for 100k customers' 776k
 * events, where 24-byte slots at most half full took 50 MB (75 MB while
 * growing), more than a quarter of replay's peak memory.
 */
#define ID_OFF_BITS 40

struct idset {
    uint64_t *slots; /* 0: empty; else hash >> ID_OFF_BITS << ID_OFF_BITS | (offset + 1) */
    size_t n, cap;
};

static void idset_cleanup(struct idset *set)
{
    free(set->slots);
    memset(set, 0, sizeof *set);
}

/* Forget every id, keeping the room (the input is read again from the start). */
static void idset_clear(struct idset *set)
{
    memset(set->slots, 0, set->cap * sizeof *set->slots);
    set->n = 0;
}

/* Room for `lines` ids; -1 when the input is past what a slot can point at. */
static int idset_init(struct idset *set, const struct input *inp)
{
    memset(set, 0, sizeof *set);
    if (inp->len >= ((uint64_t)1 << ID_OFF_BITS) - 1)
        return -1;
    size_t lines = 1;
    const size_t step = (size_t)8 << 20;
    for (size_t pos = 0; pos < inp->len; pos += step) {
        size_t end = pos + step < inp->len ? pos + step : inp->len;
        for (const char *p = inp->data + pos, *e = inp->data + end;
             (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
            lines++;
        if (inp->mapped && end - pos == step) /* counted: give the pages back (input_release) */
            madvise(inp->data + pos, step, MADV_DONTNEED);
    }
    set->cap = lines + lines / 3 + 1;
    if (set->cap >= (uint64_t)1 << 32)
        return -1;
    set->slots = xcalloc(set->cap, sizeof *set->slots);
    return 0;
}

/* Is the event on the line at off the one with this id? */
static int line_has_id(const struct input *inp, size_t off, const char *id)
{
    const char *s = inp->data + off, *nl = memchr(s, '\n', inp->len - off);
    size_t len = nl ? (size_t)(nl - s) : inp->len - off;
    json_t *j = fw_json_loadb(s, len && s[len - 1] == '\r' ? len - 1 : len, 0, NULL);
    const char *other = json_string_value(json_object_get(j, "id"));
    int same = other && !strcmp(other, id);
    json_decref(j);
    return same;
}

/* Add the id of the event on the line at off; 0 when it was there already. */
static int idset_add(struct idset *set, const struct input *inp, const char *id, size_t off)
{
    uint64_t h = fw_hash(id, strlen(id));
    h ^= h >> 33; /* FNV-1a's low bits are weak: mix them (murmur3's finaliser) */
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    const uint64_t tag = h >> ID_OFF_BITS << ID_OFF_BITS;
    size_t k = (size_t)(((uint64_t)(uint32_t)h * set->cap) >> 32);
    for (uint64_t v; (v = set->slots[k]) != 0; k = k + 1 == set->cap ? 0 : k + 1)
        if ((v >> ID_OFF_BITS << ID_OFF_BITS) == tag &&
            line_has_id(inp, (size_t)(v & (((uint64_t)1 << ID_OFF_BITS) - 1)) - 1, id))
            return 0;
    set->slots[k] = tag | (uint64_t)(off + 1);
    set->n++;
    return 1;
}

/* One pass over the input: what it has seen and whether it reports errors. */
struct pass {
    const struct input *inp;
    struct rules *rules;
    const struct ingest_limits *lim; /* what an event may be (replay_opts.limits) */
    FILE *err;
    size_t quiet_upto; /* lines up to here were reported by an earlier pass */
    size_t bad, dups;
    int dedup;          /* skip repeated ids (not when the lines are known to be first ones) */
    struct idset seen;  /* event ids, for duplicates: the first in input order wins */
};

enum { LINE_EVENT, LINE_BLANK, LINE_BAD, LINE_DUP };

/* Parse and validate one line into *ev (LINE_EVENT: the caller cleans it up). */
static int take_line(struct pass *ps, const char *s, size_t n, size_t lineno, struct event *ev)
{
    struct ingest_globals globals = {
        .ctx = ps->rules, .is_global = rules_is_global, .declared = rules_declared};
    const struct ingest_limits *lim = ps->lim;
    int say = lineno > ps->quiet_upto;
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i == n)
        return LINE_BLANK;
    if (n > lim->max_body) {
        if (say)
            fprintf(ps->err, "line %zu: event larger than %zu bytes\n", lineno, lim->max_body);
        ps->bad++;
        return LINE_BAD;
    }
    json_error_t jerr;
    json_t *j = fw_json_loadb(s, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        if (say)
            fprintf(ps->err, "line %zu: malformed JSON at column %d: %s\n", lineno, jerr.column,
                    jerr.text);
        ps->bad++;
        return LINE_BAD;
    }
    struct ingest_error ierr;
    int vrc = ingest_validate(j, lim, &globals, ev, &ierr);
    json_decref(j); /* ingest_validate took its own reference on success */
    if (vrc) {
        if (say)
            fprintf(ps->err, "line %zu: %s%s%s\n", lineno, ierr.field, ierr.field[0] ? ": " : "",
                    ierr.msg);
        ps->bad++;
        return LINE_BAD;
    }
    if (ps->dedup && !idset_add(&ps->seen, ps->inp, ev->id, (size_t)(s - ps->inp->data))) {
        ps->dups++;
        event_cleanup(ev);
        return LINE_DUP;
    }
    return LINE_EVENT;
}

/* The engine and, with --messages, the orchestrator, printing to a spool. */
struct run {
    struct rules *rules;
    const struct replay_opts *o;
    struct comms *templates;
    struct orch_config ocfg;
    struct orch *orch;
    struct cases_config ccfg;
    struct cases *cases;
    struct engine *e;
    struct printer p;
};

/*
 * The chain: engine -> orchestrator -> cases -> printer.  With --cases the
 * orchestrator runs too (its messages to the customer meet the contact
 * clock), printing them only with --messages.
 */
static void run_start(struct run *r, int64_t now)
{
    struct engine_sink sink = {.ctx = &r->p, .detection = print_detection,
                               .incident = print_incident};
    struct orch_sink os = {.ctx = &r->p, .message = print_message};
    if (r->o->cases) {
        cases_require(r->rules);
        struct case_sink cks = {.ctx = &r->p, .line = print_case_line,
                                .notice = r->o->messages ? print_message : NULL,
                                .save = r->p.docs ? keep_case : NULL,
                                .withdraw = r->p.docs ? forget_case : NULL};
        struct buf diag;
        buf_init(&diag, 0);
        r->cases = cases_new(&r->ccfg, &cks, &diag); /* policies were checked in replay_run */
        buf_cleanup(&diag);
        sink = cases_engine_sink(r->cases, &sink);
        os = cases_orch_sink(r->cases, &os);
    }
    if (r->o->messages || r->o->cases) {
        r->orch = orch_new(r->o->orch ? r->o->orch : &r->ocfg, r->templates, &os);
        if (!r->o->messages)
            orch_set_bare(r->orch); /* decided, not rendered: nothing of them is printed */
        orch_set_text_only(r->orch); /* message lines print no HTML */
        sink = orch_engine_sink(r->orch, &sink);
    }
    r->e = engine_new(r->rules, now, &sink);
    if (r->o->health)
        engine_set_health(r->e, r->o->health);
    engine_set_churn(r->e, r->o->churn);
    if (r->orch)
        orch_bind(r->orch, r->e);
    if (r->cases)
        cases_bind(r->cases, r->e);
}

static void run_apply(struct run *r, const struct event *ev)
{
    if (!r->e)
        run_start(r, ev->time);
    engine_prepare(r->e, ev->time);
    engine_apply(r->e, ev);
    if (r->p.answers && ev->subject &&
        (!strcmp(ev->type, "ticket.created") || !strcmp(ev->type, "message.replied")))
        json_array_append_new(r->p.answers, json_pack("{s:s, s:s, s:I}", "customer", ev->subject,
                                                      "type", ev->type, "at",
                                                      (json_int_t)ev->time));
    if (r->p.contacts && ev->subject && !strcmp(ev->type, "ticket.created"))
        json_array_append_new(r->p.contacts, json_pack("{s:s, s:I}", "customer", ev->subject, "at",
                                                       (json_int_t)ev->time));
}

/* Forget everything applied and printed: the input was not in time order. */
static int run_reset(struct run *r)
{
    orch_free(r->orch); /* cancels its timers: before the engine goes */
    cases_free(r->cases);
    engine_free(r->e);
    r->orch = NULL;
    r->cases = NULL;
    r->e = NULL;
    r->p.detections = r->p.incidents = r->p.messages = r->p.case_lines = 0;
    if (r->p.docs) {
        json_object_clear(r->p.docs);
        json_array_clear(r->p.outreach);
        json_array_clear(r->p.contacts);
    }
    if (r->p.answers)
        json_array_clear(r->p.answers);
    fflush(r->p.out);
    rewind(r->p.out);
    return ftruncate(fileno(r->p.out), 0) ? FW_EIO : 0;
}

/* Where a line is, once the input turned out not to be in time order. */
struct slot {
    int64_t time;
    size_t off;
    uint32_t len;  /* a line is far below 4 GiB (max_body) */
    uint32_t line; /* for messages only (none in the second pass): the order is by offset */
};

static int by_time(const void *a, const void *b)
{
    const struct slot *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off; /* stable: the input's order */
}


/*
 * The first pass, in blocks: a reader parses and validates lines into a
 * block of events while the engine applies the block before it.  With two
 * CPUs the reader runs on its own thread (parsing is about half of a
 * detection-only replay), so the two halves overlap; the order of events,
 * the lines reported and everything printed are the same as on one thread
 * (--serial), because the engine still takes the events one by one in
 * input order.  The reader frees each block's events when it refills it, so
 * an event's tree is allocated and freed on the same thread.
 */
#define BLOCK_EVENTS PART_BLOCK_EVENTS /* 16 to 1024 measured: 256 by 4 was the fastest
                                          (bench/README.md) */
#define BLOCKS 4

/* Blocks are parts.h's struct part_block: the same blocks feed partitions. */

struct reader {
    struct pass *ps;
    const struct input *inp; /* ps->inp, whose pages read lines are given back */
    size_t pos, lineno, released;
    /* replay_sorted: the lines to read, in this order (NULL: the input's), and from each on the
       smallest offset still to be read */
    const struct slot *slots;
    size_t nslots, si;
    const size_t *upto;
    int64_t last;       /* the latest event time so far */
    int sorted;         /* 0: an event went back in time, or one_engine saw an event it
                           names; reading stopped there (replayed sorted on one engine) */
    int one_engine;     /* partitions deciding messages: stop at an event whose decisions
                           span customers (only one engine makes them) */
    int end;            /* no more lines, or stopped */
    struct part_block blocks[BLOCKS];
    /* threaded: the fields above are the reader's until it is joined; these are under mu */
    pthread_mutex_t mu;
    pthread_cond_t ready, room;
    size_t filled, applied; /* blocks filled and blocks applied, counted from the start */
    int done;               /* the reader filled its last block */
    int unsorted;           /* ... and it stopped at an event that went back in time */
};

/*
 * Events whose decisions read or change what several customers share: the
 * known-issue registry and the connectors' failure state (orchestrate/
 * known.c, failures.c).  Partitions do not decide them yet.
 */
static int spans_customers(const char *type)
{
    return !strcmp(type, RULES_KNOWN_ISSUE_TYPE) || !strcmp(type, "message.sent") ||
           !strcmp(type, "message.failed");
}

/* Refill b with the next events, freeing what it held; rd->end when there are no more. */
static void read_block(struct reader *rd, struct part_block *b)
{
    struct pass *ps = rd->ps;
    for (size_t i = 0; i < b->n; i++)
        event_cleanup(&b->ev[i]);
    b->n = 0;
    const char *s;
    size_t len;
    while (b->n < BLOCK_EVENTS) {
        if (rd->slots) {
            if (rd->si == rd->nslots) {
                rd->end = 1;
                return;
            }
            const struct slot *sl = &rd->slots[rd->si++];
            s = ps->inp->data + sl->off;
            len = sl->len;
            rd->lineno = sl->line;
            input_release(rd->inp, rd->upto[rd->si], &rd->released);
        } else {
            if (!next_line(ps->inp, &rd->pos, &s, &len)) {
                rd->end = 1;
                return;
            }
            rd->lineno++;
            input_release(rd->inp, rd->pos, &rd->released);
        }
        struct event *ev = &b->ev[b->n];
        if (take_line(ps, s, len, rd->lineno, ev) != LINE_EVENT)
            continue;
        if (ev->time < rd->last || (rd->one_engine && spans_customers(ev->type))) {
            event_cleanup(ev);
            rd->sorted = 0;
            rd->end = 1;
            return;
        }
        rd->last = ev->time;
        b->bad[b->n++] = ps->bad;
    }
}

/* parts_source.fill: the reader's next block for the partitions. */
static int fill_block(void *ctx, struct part_block *b)
{
    struct reader *rd = ctx;
    read_block(rd, b);
    return !rd->end;
}

static void apply_block(struct run *r, const struct part_block *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (!b->bad[i] || r->o->skip_invalid)
            run_apply(r, &b->ev[i]);
}

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    for (;;) {
        pthread_mutex_lock(&rd->mu);
        while (rd->filled - rd->applied == BLOCKS)
            pthread_cond_wait(&rd->room, &rd->mu);
        pthread_mutex_unlock(&rd->mu);
        read_block(rd, &rd->blocks[rd->filled % BLOCKS]);
        int end = rd->end;
        pthread_mutex_lock(&rd->mu);
        rd->filled++;
        rd->done = end;
        rd->unsorted = !rd->sorted;
        pthread_cond_signal(&rd->ready);
        pthread_mutex_unlock(&rd->mu);
        if (end)
            return NULL;
    }
}

/*
 * Read the whole input once, applying events as they come until one goes
 * back in time (rd->sorted 0: what was applied is to be thrown away).
 */
static void first_pass(struct run *r, struct reader *rd, int threaded)
{
    pthread_t t;
    if (threaded) {
        pthread_mutex_init(&rd->mu, NULL);
        pthread_cond_init(&rd->ready, NULL);
        pthread_cond_init(&rd->room, NULL);
        if (pthread_create(&t, NULL, reader_main, rd)) {
            pthread_cond_destroy(&rd->room);
            pthread_cond_destroy(&rd->ready);
            pthread_mutex_destroy(&rd->mu);
            threaded = 0;
        }
    }
    if (!threaded) {
        while (!rd->end) {
            read_block(rd, &rd->blocks[0]);
            if (rd->sorted)
                apply_block(r, &rd->blocks[0]);
        }
        return;
    }
    for (;;) {
        pthread_mutex_lock(&rd->mu);
        while (rd->applied == rd->filled && !rd->done)
            pthread_cond_wait(&rd->ready, &rd->mu);
        int done = rd->applied == rd->filled; /* and the reader is done */
        int sorted = !rd->unsorted;
        pthread_mutex_unlock(&rd->mu);
        if (done)
            break;
        if (sorted) /* once it is not, the replay starts again sorted: skip the work */
            apply_block(r, &rd->blocks[rd->applied % BLOCKS]);
        pthread_mutex_lock(&rd->mu);
        rd->applied++;
        pthread_cond_signal(&rd->room);
        pthread_mutex_unlock(&rd->mu);
    }
    pthread_join(t, NULL);
    pthread_cond_destroy(&rd->room);
    pthread_cond_destroy(&rd->ready);
    pthread_mutex_destroy(&rd->mu);
}

/* The CPUs this process may run on (its affinity mask: a container may allow fewer than exist). */
static int cpus_usable(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void reader_cleanup(struct reader *rd)
{
    for (size_t k = 0; k < BLOCKS; k++)
        for (size_t i = 0; i < rd->blocks[k].n; i++)
            event_cleanup(&rd->blocks[k].ev[i]);
}

/*
 * The input goes back in time somewhere: validate every line again (only
 * lines after `quiet_upto` report errors; the first pass already reported
 * the rest), sort the valid ones by time and apply them in that order,
 * parsing each a second time rather than holding every document, with the
 * same reader (on its own thread when it may) as the first pass, reading in
 * the sorted order.  The mapped input's pages are given back behind both
 * passes (input_release): behind the reading, then behind the smallest
 * offset the sorted order still has to read (a page given back too early is
 * only read again from the file).  They were not, and an input with one
 * event out of order peaked at 280 MB for 100k customers where the same
 * input in order takes 99 MB.
 */
static void replay_sorted(struct run *r, struct pass *ps)
{
    struct slot *slots = NULL;
    size_t n = 0, cap = 0, pos = 0, lineno = 0, len, released = 0;
    const char *s;
    struct event ev;
    while (next_line(ps->inp, &pos, &s, &len)) {
        lineno++;
        input_release(ps->inp, pos, &released);
        if (take_line(ps, s, len, lineno, &ev) != LINE_EVENT)
            continue;
        slots = xgrow(slots, &cap, n + 1, sizeof *slots);
        slots[n++] = (struct slot){.time = ev.time, .line = (uint32_t)lineno,
                                   .off = (size_t)(s - ps->inp->data), .len = (uint32_t)len};
        event_cleanup(&ev);
    }
    if (!ps->bad || r->o->skip_invalid) {
        qsort(slots, n, sizeof *slots, by_time);
        /* From each slot on, the smallest offset still to be read. */
        size_t *upto = xmalloc((n + 1) * sizeof *upto);
        upto[n] = ps->inp->len;
        for (size_t i = n; i-- > 0;)
            upto[i] = slots[i].off < upto[i + 1] ? slots[i].off : upto[i + 1];
        /* Only first occurrences made it into slots: no duplicates to look for. */
        struct pass again = {.inp = ps->inp, .rules = ps->rules, .lim = ps->lim,
                             .err = ps->err, .quiet_upto = SIZE_MAX};
        struct reader *rd = xcalloc(1, sizeof *rd);
        rd->ps = &again;
        rd->inp = ps->inp;
        rd->last = INT64_MIN;
        rd->sorted = 1;
        rd->slots = slots;
        rd->nslots = n;
        rd->upto = upto;
        first_pass(r, rd, !r->o->serial && cpus_usable() > 1);
        reader_cleanup(rd);
        free(rd);
        free(upto);
    }
    free(slots);
}

int replay_run(struct rules *rules, FILE *in, FILE *out, FILE *err, const struct replay_opts *o)
{
    struct run r = {.rules = rules, .o = o};
    struct input inp;
    char *spoolbuf = NULL;
    int rc = 0;
    orch_config_init(&r.ocfg);
    cases_config_init(&r.ccfg);
    r.ccfg.sla = o->sla;
    r.ccfg.lean = !o->stats; /* replay prints lines; documents only for --stats */
    r.ccfg.playbooks = o->playbooks;
    r.ccfg.sentiment = o->sentiment;
    if (o->min_history)
        r.ccfg.min_history = o->min_history;
    if (o->weights)
        r.ccfg.weights = *o->weights;
    memcpy(r.ccfg.followup_task, (o->orch ? o->orch : &r.ocfg)->followup_task,
           sizeof r.ccfg.followup_task);
    buf_init(&r.p.line, 0);
    r.p.messages_on = o->messages;
    if (o->report)
        r.p.answers = json_array();
    if (o->stats) {
        r.p.docs = json_object();
        r.p.outreach = json_array();
        r.p.contacts = json_array();
    }
    if (o->cases) {
        /* Policies compile against the case fields: refuse a bad one before reading input. */
        struct buf diag;
        buf_init(&diag, 0);
        struct cases *probe = cases_new(&r.ccfg, NULL, &diag);
        if (!probe)
            fputs(diag.data ? diag.data : "SLA policies failed to compile\n", err);
        cases_free(probe);
        buf_cleanup(&diag);
        if (!probe) {
            rc = FW_EPARSE;
            goto out_templates;
        }
    }
    if (o->messages || o->cases) {
        struct buf diag;
        buf_init(&diag, 0);
        rc = comms_load(o->templates, &r.templates, &diag);
        if (rc)
            fputs(diag.data ? diag.data : "templates failed to load\n", err);
        buf_cleanup(&diag);
        if (rc) {
            rc = FW_EPARSE;
            goto out_templates;
        }
    }
    if (input_load(in, &inp)) {
        fprintf(err, "replay: cannot read the input\n");
        rc = FW_EIO;
        goto out_input;
    }
    /* Output waits in a spool until the input is known to be valid (all or nothing). */
    r.p.out = tmpfile();
    if (!r.p.out) {
        fprintf(err, "replay: cannot create a temporary file for the output\n");
        rc = FW_EIO;
        goto out_spool;
    }
    /* Not one write(2) per 4 KB of lines (glibc takes the size only with a buffer). */
    spoolbuf = xmalloc((size_t)1 << 20);
    setvbuf(r.p.out, spoolbuf, _IOFBF, (size_t)1 << 20);
    struct pass ps = {.inp = &inp, .rules = rules, .err = err, .dedup = 1,
                      .lim = o->limits ? o->limits : &ingest_default_limits};
    if (idset_init(&ps.seen, &inp)) {
        fprintf(err, "replay: the input is larger than replay can index (1 TiB)\n");
        rc = FW_EIO;
        goto out;
    }
    /*
     * One pass, applying each event as it is read: producers write events
     * in time order, so holding or sorting them is the exception.  An event
     * earlier than the one before switches to replay_sorted.
     */
    struct reader *rd = xcalloc(1, sizeof *rd);
    rd->ps = &ps;
    rd->inp = &inp;
    rd->last = INT64_MIN;
    rd->sorted = 1;
    /*
     * With partitions (detections, or messages without cases), they take
     * the first pass; an unsorted input, or one with events whose decisions
     * span customers, is replayed sorted on one engine below, with the same
     * output.  So is everything when an incident alert's member views could
     * move with the clock or global state (orch_views_local).
     */
    int parted = 0;
    struct parts_result pr = {0};
    if (o->partitions > 1 && !o->stats && !o->report &&
        (!o->messages || orch_views_local(rules)) && (!o->cases || cases_on_parts(o, rules))) {
        struct parts_source src = {.ctx = rd, .fill = fill_block};
        struct engine_sink sink = {.ctx = &r.p, .detection = print_detection,
                                   .incident = print_incident};
        struct parts_msgs pm = {.cfg = o->orch ? o->orch : &r.ocfg, .templates = r.templates,
                                .ctx = &r.p, .line = print_message_line, .quiet = !o->messages,
                                .cases = o->cases ? &r.ccfg : NULL,
                                .playbooks = o->part_playbooks, .case_line = print_case_json};
        rd->one_engine = o->messages || o->cases;
        parts_run(o->part_rules, o->partitions, &src, o->skip_invalid, o->until, o->health, &sink,
                  o->messages || o->cases ? &pm : NULL, &pr);
        parted = rd->sorted;
    } else {
        first_pass(&r, rd, !o->serial && cpus_usable() > 1);
    }
    size_t lineno = rd->lineno;
    int sorted = rd->sorted;
    reader_cleanup(rd);
    free(rd);
    if (!sorted) {
        if (run_reset(&r)) {
            fprintf(err, "replay: cannot truncate the output's temporary file\n");
            rc = FW_EIO;
            goto out;
        }
        idset_clear(&ps.seen);
        ps.quiet_upto = lineno;
        ps.bad = ps.dups = 0;
        replay_sorted(&r, &ps);
    }
    if (ps.bad && !o->skip_invalid) {
        fprintf(err, "replay: %zu invalid line(s); nothing replayed (use --skip-invalid to "
                     "replay the valid ones)\n",
                ps.bad);
        rc = FW_EPARSE;
        goto out;
    }
    if (!r.e && !parted)
        run_start(&r, o->until != FW_TIME_NONE ? o->until : 0);
    if (parted) {
        /* the partitions advanced to --until themselves */
    } else if (o->until != FW_TIME_NONE) {
        engine_advance(r.e, o->until);
    } else if (r.orch) {
        /*
         * Without --until the replay ends with the input, except that a merge
         * window the last events opened is let close: what they fired is
         * decided (docs/messages.md, "Merge window").
         */
        int64_t settle;
        while ((settle = orch_open_until(r.orch)) != FW_TIME_NONE && settle > engine_now(r.e))
            engine_advance(r.e, settle);
    }
    fprintf(err, "replay: %zu events, %zu duplicate(s), %zu invalid, %zu customers, %zu detection "
                 "transitions, %zu incident updates, %zu messages, %zu case and clock changes, "
                 "%zu pending wake-ups\n",
            parted ? (size_t)pr.events : (size_t)engine_stats(r.e)->events, ps.dups, ps.bad,
            parted ? pr.customers : engine_customer_count(r.e), r.p.detections, r.p.incidents,
            r.p.messages, r.p.case_lines, parted ? pr.pending : engine_pending_timers(r.e));
    if (parted) {
        fprintf(err, "replay: CPU time per thread: reader %.2f s, partitions", pr.reader_cpu_s);
        for (size_t p = 0; p < o->partitions; p++)
            fprintf(err, " %.2f", pr.part_cpu_s[p]);
        fprintf(err, " s, merger %.2f s\n", pr.merger_cpu_s);
    }
    if (r.p.docs)
        print_stats(&r.p);
    fflush(r.p.out);
    rewind(r.p.out);
    if (o->report) {
        /* On the virtual clock, nothing to go by is no date at all, not 1970. */
        int64_t asof = o->until == FW_TIME_NONE && !engine_stats(r.e)->events ? FW_TIME_NONE
                                                                               : engine_now(r.e);
        rc = report_outreach(o->report, asof, r.p.out, r.e, r.orch, r.p.answers, out, err);
        goto out;
    }
    /* Copy the spool out. */
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, r.p.out)) > 0)
        fwrite(chunk, 1, got, out);
out:
    orch_free(r.orch); /* cancels its timers: before the engine goes */
    cases_free(r.cases);
    engine_free(r.e);
    idset_cleanup(&ps.seen);
    fclose(r.p.out);
    free(spoolbuf);
out_spool:
    input_cleanup(&inp);
out_input:
out_templates:
    comms_free(r.templates);
    orch_config_cleanup(&r.ocfg);
    buf_cleanup(&r.p.line);
    json_decref(r.p.docs);
    json_decref(r.p.outreach);
    json_decref(r.p.contacts);
    json_decref(r.p.answers);
    fflush(out);
    return rc;
}
