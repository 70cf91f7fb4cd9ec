/*
 * parts.c -- replay on several engine partitions, merged back into one
 * engine's order (DESIGN.md section 5, "Partitions").
 *
 * Threads: a reader fills a ring of event blocks; each partition applies
 * every block (its own customers' events and every global event; the other
 * events only move its clock, so its wake-ups fire at the same points of
 * the input as one engine's would) and writes what it did as records, one
 * buffer per partition and block; the calling thread merges a block's
 * buffers once every partition is done with it, then hands the block back
 * to the reader.
 *
 * The order.  One engine works in steps: before the event numbered seq, the
 * wake-ups due before its time, by due time and then in the order their
 * timers were armed; then the event's own pass (for a global event, one pass
 * per customer, first seen first).  A partition starts a record group at
 * each step that reports something, keyed (seq, 0, due, customer) for a
 * wake-up and (seq, 1, rank) for an event's pass, rank being the customer's
 * first event for a global event's pass.  The merger takes groups in key
 * order; two wake-ups due at the same millisecond compare by when their
 * timers were armed, which the merger knows because it numbers every "armed"
 * record as it merges it -- always before the wake-up it armed, since a
 * partition's records are in step order.  Nothing depends on thread timing.
 *
 * The merger keeps the only incidents: partitions report systemic firings,
 * resolutions, new customers and moves of factor values (engine_trace), and
 * the merger feeds them to one struct incidents in that order.
 *
 * With messages, each partition's orchestrator decides for its customers
 * and its decisions travel as printed lines.  Its holds and ladder steps
 * are engine timers, traced like wake-ups (keyed by their address); its
 * decisions after a global event are keyed (seq, 2, rank) by
 * orch_sink.turn.  The merger sends the incident alerts, from the member
 * views partitions report (at a systemic firing, then whenever a later
 * event changes one), and at the end of the input runs the rounds that let
 * the last merge windows close.
 */
#include "replay/parts.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/incident.h"
#include "util/fwtime.h"
#include "util/map.h"
#include "util/util.h"

#define RING 8 /* blocks between the reader and the merger */
#define OWNER_ALL 0xff /* a global event: every partition applies it */

enum { R_STEP, R_ARMED, R_ADDED, R_DET, R_FIRED, R_RESOLVED, R_FACTOR, R_MSG, R_VIEW, R_CASE };

/*
 * What a wake-up belongs to: a customer (its index in its partition) or a
 * downstream timer (an orchestrator's hold or ladder step: its address,
 * tagged with the top bit; addresses are below 2^63).
 */
#define WHO_TIMER ((uint64_t)1 << 63)

/* One record; which fields mean what depends on the kind. */
struct prec {
    uint8_t kind;
    uint8_t flag;         /* R_STEP: 0 a wake-up, 1 an event's pass, 2 a global event's turn;
                             R_DET: firing */
    uint64_t who;         /* R_STEP wake-up, R_ARMED: the customer or timer (WHO_TIMER) */
    uint64_t seq;         /* R_STEP: the event the step comes before (0) or belongs to (1, 2) */
    int64_t t;            /* R_STEP wake-up: due; R_DET: at; R_FIRED, R_RESOLVED: now */
    uint64_t rank;        /* R_STEP pass or turn: the customer's first event (global), else 0 */
    int64_t fired_at;     /* R_DET */
    size_t idx;           /* R_DET, R_FIRED, R_RESOLVED: signal; R_FACTOR: factor key;
                             R_MSG, R_CASE: the line's length */
    const char *customer; /* R_DET, R_FIRED, R_RESOLVED, R_VIEW: the partition's key (stable) */
    char *was, *now;      /* R_FACTOR (owned); R_MSG, R_CASE: now is the line (owned) */
    char **values;        /* R_FIRED (owned) */
    struct orch_view *view; /* R_VIEW (owned) */
};

struct recs {
    struct prec *r;
    size_t n, cap;
};

struct parts;

struct part {
    struct parts *ps;
    size_t p;
    struct rules *rules;
    struct engine *e;
    struct orch *orch;   /* with messages: this partition's customers' decisions */
    struct cases *cases; /* with cases: this partition's customers' cases */
    struct cases_config ccfg; /* the shared config with this partition's playbooks */
    int views_on;        /* incident alerts are printed: the merger needs member views */
    struct strmap views; /* with views_on: customers that fired a systemic signal -> their
                            latest view sent to the merger (struct orch_view *) */
    struct buf line;
    struct recs out[RING]; /* per ring slot */
    struct recs tail;      /* the advance to --until */
    struct recs *cur;      /* where records go now */
    /* The current step's key; header: its R_STEP record is written. */
    uint64_t seq, rank, who;
    int64_t due;
    uint8_t phase;
    int header;
    uint64_t *first; /* per customer index: the seq of its first event */
    size_t nfirst, capfirst;
    uint64_t events, globals;
    int64_t last; /* the latest event time seen */
    double cpu_s; /* the thread's CPU time, at its end */
    pthread_t thread;
};

struct parts {
    struct rules *const *rules;
    size_t n;
    const struct parts_source *src;
    int skip_invalid;
    int64_t until;
    const struct parts_msgs *msgs; /* NULL: detections and incidents only */
    const struct engine_health *health; /* the engines' health weights (NULL: the defaults) */
    struct part_block blocks[RING];
    uint8_t owner[RING][PART_BLOCK_EVENTS]; /* per event: its partition, or OWNER_ALL */
    struct part *part;
    pthread_mutex_t mu;
    pthread_cond_t filled_cv, done_cv, room_cv;
    size_t filled;    /* blocks filled */
    int end;          /* the source has no more: filled is final */
    size_t *done;     /* per partition: blocks applied */
    size_t nfinished; /* partitions whose tail is written */
    size_t merged;    /* blocks merged */
    /* Settling (messages, no --until): rounds of "when does your last merge window close?" */
    int64_t *settle;  /* per partition: its answer this round (FW_TIME_NONE: none open) */
    size_t nsettled;  /* answers this round */
    size_t round;     /* rounds decided */
    int64_t target;   /* the last round's decision: advance to it (FW_TIME_NONE: stop) */
    /* The merger's (the calling thread's) own. */
    struct incidents inc;
    struct engine_sink isink; /* incidents print through out */
    const struct engine_sink *out;
    uint64_t **ord; /* per partition, per customer: when its timer was last armed (merge order) */
    size_t *nord;
    struct strmap *tord; /* per partition, per downstream timer (its address): the same */
    uint64_t ordinal;
    struct orch *orch;   /* with printed messages: sends the incident alerts */
    struct strmap mcases; /* with cases: customer -> their open case as its lines say
                             (struct mcase *), for attaching incidents */
    struct strmap views; /* with messages: each member's latest view (struct orch_view *) */
    struct orch_view *vbuf;
    size_t capv;
    double reader_cpu_s;
};

/* CPU time of the calling thread, in seconds. */
static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

size_t parts_of(const char *subject, size_t nparts)
{
    return (size_t)(fw_hash(subject, strlen(subject)) % nparts);
}

/* ---- a partition ---- */

static struct prec *rec(struct part *pt, int kind)
{
    struct recs *o = pt->cur;
    if (!pt->header) {
        pt->header = 1;
        o->r = xgrow(o->r, &o->cap, o->n + 1, sizeof *o->r);
        o->r[o->n++] = (struct prec){.kind = R_STEP,
                                     .flag = pt->phase,
                                     .who = pt->who,
                                     .seq = pt->seq,
                                     .t = pt->due,
                                     .rank = pt->rank};
    }
    o->r = xgrow(o->r, &o->cap, o->n + 1, sizeof *o->r);
    struct prec *r = &o->r[o->n++];
    *r = (struct prec){.kind = (uint8_t)kind};
    return r;
}

static void tr_begin(void *ctx, uint32_t cust, int64_t due)
{
    struct part *pt = ctx;
    pt->who = cust;
    pt->header = 0;
    if (due == FW_TIME_NONE) { /* a customer's turn in a global event's pass */
        pt->phase = 1;
        pt->due = 0;
        pt->rank = cust < pt->nfirst ? pt->first[cust] : 0;
    } else {
        pt->phase = 0;
        pt->due = due;
        pt->rank = 0;
    }
}

static void tr_armed(void *ctx, uint32_t cust) { rec(ctx, R_ARMED)->who = cust; }

static uint64_t timer_who(const struct engine_timer *t) { return (uint64_t)(uintptr_t)t | WHO_TIMER; }

static void tr_timer_armed(void *ctx, const struct engine_timer *t)
{
    rec(ctx, R_ARMED)->who = timer_who(t);
}

static void tr_timer_begin(void *ctx, const struct engine_timer *t, int64_t due)
{
    struct part *pt = ctx;
    pt->who = timer_who(t);
    pt->header = 0;
    pt->phase = 0;
    pt->due = due;
    pt->rank = 0;
}

/* What an incident alert would say of customer now, to the merger if it changed. */
static void send_view(struct part *pt, const char *customer, int fired)
{
    int created;
    struct strmap_entry *me;
    if (fired) {
        me = strmap_upsert(&pt->views, customer, strlen(customer), &created);
    } else {
        me = strmap_find(&pt->views, customer, strlen(customer));
        if (!me)
            return; /* never a member of an incident: nothing reads its view */
        created = 0;
    }
    struct orch_view v;
    orch_member_view(pt->orch, customer, &v);
    struct orch_view *last = me->value;
    if (!created && last->has_order == v.has_order && last->has_status == v.has_status &&
        !strcmp(last->order, v.order) && !strcmp(last->status, v.status))
        return;
    if (created)
        me->value = last = xmalloc(sizeof *last);
    *last = v;
    struct prec *r = rec(pt, R_VIEW);
    r->customer = customer;
    r->view = xmalloc(sizeof *r->view);
    *r->view = v;
}

static void tr_added(void *ctx, uint32_t cust)
{
    struct part *pt = ctx;
    pt->first = xgrow(pt->first, &pt->capfirst, (size_t)cust + 1, sizeof *pt->first);
    while (pt->nfirst <= cust)
        pt->first[pt->nfirst++] = pt->seq;
    rec(pt, R_ADDED);
}

static void tr_fired(void *ctx, size_t s, const char *customer, char **values, int64_t now)
{
    struct part *pt = ctx;
    if (pt->views_on)
        send_view(pt, customer, 1); /* this firing may open an incident */
    struct prec *r = rec(ctx, R_FIRED);
    r->idx = s;
    r->customer = customer;
    r->values = values;
    r->t = now;
}

static void tr_resolved(void *ctx, size_t s, const char *customer, int64_t now)
{
    struct prec *r = rec(ctx, R_RESOLVED);
    r->idx = s;
    r->customer = customer;
    r->t = now;
}

static void tr_factor(void *ctx, size_t k, char *was, char *now)
{
    struct prec *r = rec(ctx, R_FACTOR);
    r->idx = k;
    r->was = was;
    r->now = now;
}

static void tr_detection(void *ctx, const struct detection *d)
{
    struct part *pt = ctx;
    struct prec *r = rec(pt, R_DET);
    r->idx = (size_t)(d->signal - pt->rules->signals);
    r->customer = d->customer;
    r->flag = (uint8_t)d->firing;
    r->t = d->at;
    r->fired_at = d->fired_at;
}

/* orch_sink.message: the decision's line, printed by the merger in its place. */
static void pm_message(void *ctx, const struct outbox_msg *m)
{
    struct part *pt = ctx;
    if (pt->ps->msgs->quiet)
        return; /* decided for the cases, not printed */
    buf_reset(&pt->line);
    orch_message_json(m, &pt->line);
    struct prec *r = rec(pt, R_MSG);
    r->now = xstrndup(pt->line.data, pt->line.len);
    r->idx = pt->line.len;
}

/* case_sink.line: a case (or SLA, or task) line, printed by the merger in its place. */
static void pc_line(void *ctx, const char *case_id, int64_t at, const char *event, const char *json,
                    size_t len)
{
    (void)case_id, (void)at, (void)event;
    struct prec *r = rec(ctx, R_CASE);
    r->now = xstrndup(json, len);
    r->idx = len;
}

/* orch_sink.turn: a customer's decision after a global event, keyed by its first event. */
static void pm_turn(void *ctx, const char *customer)
{
    struct part *pt = ctx;
    size_t i = engine_customer_index(pt->e, customer);
    pt->phase = 2;
    pt->rank = i < pt->nfirst ? pt->first[i] : 0;
    pt->who = 0;
    pt->due = 0;
    pt->header = 0;
}

/* engine_sink.step: after a customer's event, the view the merger holds follows it. */
static void pm_step(void *ctx, const struct event *ev, const char *customer)
{
    struct part *pt = ctx;
    if (ev && customer)
        send_view(pt, customer, 0);
}

static void part_start(struct part *pt, int64_t now)
{
    struct engine_sink sink = {.ctx = pt, .detection = tr_detection};
    struct engine_trace tr = {.ctx = pt,
                              .begin = tr_begin,
                              .armed = tr_armed,
                              .added = tr_added,
                              .fired = tr_fired,
                              .resolved = tr_resolved,
                              .factor = tr_factor,
                              .timer_armed = tr_timer_armed,
                              .timer_begin = tr_timer_begin};
    const struct parts_msgs *m = pt->ps->msgs;
    if (m) {
        struct orch_sink os = {.ctx = pt, .message = pm_message, .turn = pm_turn};
        pt->views_on = !m->quiet;
        if (pt->views_on)
            sink.step = pm_step;
        if (m->cases) {
            /* The chain of one engine's replay: engine -> orchestrator -> cases -> here. */
            cases_require(pt->rules); /* contacts kept as long as cases read them */
            pt->ccfg = *m->cases;
            pt->ccfg.playbooks = m->playbooks ? m->playbooks[pt->p] : NULL;
            struct case_sink cks = {.ctx = pt, .line = pc_line,
                                    .notice = m->quiet ? NULL : pm_message};
            struct buf diag;
            buf_init(&diag, 0);
            pt->cases = cases_new(&pt->ccfg, &cks, &diag); /* replay_run compiled them once */
            buf_cleanup(&diag);
            if (!pt->cases)
                abort();
            sink = cases_engine_sink(pt->cases, &sink);
            os = cases_orch_sink(pt->cases, &os);
        }
        pt->orch = orch_new(m->cfg, m->templates, &os);
        if (m->quiet)
            orch_set_bare(pt->orch);
        orch_set_text_only(pt->orch);
        sink = orch_engine_sink(pt->orch, &sink);
    }
    pt->e = engine_new(pt->rules, now, &sink);
    if (pt->ps->health)
        engine_set_health(pt->e, pt->ps->health);
    engine_set_trace(pt->e, &tr);
    if (pt->orch)
        orch_bind(pt->orch, pt->e);
    if (pt->cases)
        cases_bind(pt->cases, pt->e);
}

/* The key of the next step: wake-ups before event seq, or the event's own pass. */
static void part_step(struct part *pt, uint64_t seq, uint8_t phase)
{
    pt->seq = seq;
    pt->phase = phase;
    pt->due = 0;
    pt->rank = 0;
    pt->who = 0;
    pt->header = 0;
}

static void part_block_apply(struct part *pt, const struct part_block *b, size_t k)
{
    struct parts *ps = pt->ps;
    for (size_t i = 0; i < b->n; i++) {
        if (b->bad[i] && !ps->skip_invalid)
            continue;
        const struct event *ev = &b->ev[i];
        uint64_t seq = (uint64_t)k * PART_BLOCK_EVENTS + i + 1; /* 0: no customer event */
        uint8_t owner = ps->owner[k % RING][i];
        if (!pt->e)
            part_start(pt, ev->time);
        if (ev->time > pt->last) {
            part_step(pt, seq, 0); /* the wake-ups due before this event */
            engine_prepare(pt->e, ev->time);
            pt->last = ev->time;
        }
        if (owner != OWNER_ALL && owner != pt->p)
            continue;
        part_step(pt, seq, 1);
        engine_apply(pt->e, ev);
        pt->events++;
        pt->globals += owner == OWNER_ALL;
    }
}

static void *part_main(void *arg)
{
    struct part *pt = arg;
    struct parts *ps = pt->ps;
    pt->last = INT64_MIN;
    for (size_t k = 0;; k++) {
        pthread_mutex_lock(&ps->mu);
        while (ps->filled <= k && !ps->end)
            pthread_cond_wait(&ps->filled_cv, &ps->mu);
        int have = ps->filled > k;
        pthread_mutex_unlock(&ps->mu);
        if (!have)
            break;
        pt->cur = &pt->out[k % RING]; /* emptied by the merger */
        part_block_apply(pt, &ps->blocks[k % RING], k);
        pthread_mutex_lock(&ps->mu);
        ps->done[pt->p] = k + 1;
        pthread_cond_broadcast(&ps->done_cv);
        pthread_mutex_unlock(&ps->mu);
    }
    pt->cur = &pt->tail;
    if (ps->until != FW_TIME_NONE) {
        part_step(pt, UINT64_MAX, 0);
        if (pt->e)
            engine_advance(pt->e, ps->until);
    } else if (ps->msgs) {
        /*
         * The merge windows the last events opened close before the replay
         * ends, as one engine lets them: in rounds, every partition saying
         * when its last one closes and all advancing to the latest.
         */
        for (size_t round = 0;; round++) {
            int64_t open = pt->orch ? orch_open_until(pt->orch) : FW_TIME_NONE;
            if (open != FW_TIME_NONE && open <= engine_now(pt->e))
                open = FW_TIME_NONE;
            pthread_mutex_lock(&ps->mu);
            ps->settle[pt->p] = open;
            ps->nsettled++;
            pthread_cond_broadcast(&ps->done_cv);
            while (ps->round <= round)
                pthread_cond_wait(&ps->filled_cv, &ps->mu);
            int64_t target = ps->target;
            pthread_mutex_unlock(&ps->mu);
            if (target == FW_TIME_NONE)
                break;
            part_step(pt, UINT64_MAX, 0);
            engine_advance(pt->e, target);
        }
    }
    pt->cpu_s = thread_cpu_s();
    pthread_mutex_lock(&ps->mu);
    ps->nfinished++;
    pthread_cond_broadcast(&ps->done_cv);
    pthread_mutex_unlock(&ps->mu);
    return NULL;
}

/* ---- the reader ---- */

static void *reader_main(void *arg)
{
    struct parts *ps = arg;
    for (;;) {
        pthread_mutex_lock(&ps->mu);
        while (ps->filled - ps->merged == RING)
            pthread_cond_wait(&ps->room_cv, &ps->mu);
        pthread_mutex_unlock(&ps->mu);
        struct part_block *b = &ps->blocks[ps->filled % RING];
        int more = ps->src->fill(ps->src->ctx, b);
        /* Whose each event is, decided once here rather than by every partition. */
        for (size_t i = 0; i < b->n; i++) {
            const struct event *ev = &b->ev[i];
            ps->owner[ps->filled % RING][i] =
                !ev->subject || rules_is_global(ps->rules[0], ev->type)
                    ? OWNER_ALL
                    : (uint8_t)parts_of(ev->subject, ps->n);
        }
        pthread_mutex_lock(&ps->mu);
        ps->filled++;
        ps->end = !more;
        pthread_cond_broadcast(&ps->filled_cv);
        pthread_mutex_unlock(&ps->mu);
        if (!more) {
            ps->reader_cpu_s = thread_cpu_s(); /* read after the join */
            return NULL;
        }
    }
}

/* ---- the merger ---- */

/* When partition p's customer or downstream timer had its timer armed, in merge order (0: never). */
static uint64_t ord_of(const struct parts *ps, size_t p, uint64_t who)
{
    if (who & WHO_TIMER) {
        const struct strmap_entry *me = strmap_find(&ps->tord[p], (const char *)&who, sizeof who);
        return me ? (uint64_t)(uintptr_t)me->value : 0;
    }
    return who < ps->nord[p] ? ps->ord[p][who] : 0;
}

/* Whether step header a (of partition pa) comes before b (of pb) in one engine's order. */
static int step_before(const struct parts *ps, const struct prec *a, size_t pa,
                       const struct prec *b, size_t pb)
{
    if (a->seq != b->seq)
        return a->seq < b->seq;
    if (a->flag != b->flag)
        return a->flag < b->flag; /* wake-ups before the event */
    if (a->flag)
        return a->rank < b->rank;
    if (a->t != b->t)
        return a->t < b->t;
    return ord_of(ps, pa, a->who) < ord_of(ps, pb, b->who);
}

/* ---- the merger's mirror of open cases ---- */

/*
 * What attaching an incident to a customer's open case prints needs: the
 * case's id, its customer as the line quotes it, and the fields every case
 * line carries as its latest line had them (severity, signals, status,
 * assignee: cases.c line_common), and which incidents it has.
 */
struct mcase {
    char *id, *customer; /* as quoted in the lines */
    char *common;        /* ,"severity":...,"assignee":... */
    uint64_t *inc;
    size_t ninc, capinc;
};

static void mcase_free(struct mcase *c)
{
    if (!c)
        return;
    free(c->id);
    free(c->customer);
    free(c->common);
    free(c->inc);
    free(c);
}

/* Past the JSON string at p (its opening quote), or NULL. */
static const char *skip_str(const char *p, const char *end)
{
    if (!p || p >= end || *p != '"')
        return NULL;
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* Past the literal lit at p, or NULL. */
static const char *skip_lit(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return p && (size_t)(end - p) >= n && !memcmp(p, lit, n) ? p + n : NULL;
}

/* Past the common fields at p (line_common's output), or NULL. */
static const char *skip_common(const char *p, const char *end)
{
    p = skip_str(skip_lit(p, end, ",\"severity\":"), end);
    p = skip_lit(p, end, ",\"signals\":[");
    while (p && p < end && *p != ']') {
        p = skip_str(p, end);
        if (p && p < end && *p == ',')
            p++;
    }
    p = skip_lit(p, end, "]");
    p = skip_str(skip_lit(p, end, ",\"status\":"), end);
    p = skip_lit(p, end, ",\"assignee\":");
    if (p && p < end && *p == 'n')
        return skip_lit(p, end, "null");
    return skip_str(p, end);
}

static char *dup_range(const char *a, const char *b) { return xstrndup(a, (size_t)(b - a)); }

/* A case line printed: the mirror follows the customer's open case. */
static void mirror_line(struct parts *ps, const char *s, size_t n)
{
    const char *end = s + n, *p = skip_lit(s, end, "{\"kind\":\"case\",\"event\":");
    const char *ev = p, *ev_end = skip_str(p, end);
    const char *id = skip_lit(ev_end, end, ",\"case\":"), *id_end = skip_str(id, end);
    const char *cu = skip_lit(id_end, end, ",\"customer\":"), *cu_end = skip_str(cu, end);
    const char *co_end = skip_common(cu_end, end);
    if (!co_end)
        return; /* not a case line (an SLA or task line) */
    /* The map is keyed by the customer as quoted: incidents' members are quoted the same way. */
    struct buf key;
    buf_init(&key, 0);
    buf_append(&key, cu, (size_t)(cu_end - cu));
    int created;
    struct strmap_entry *me = strmap_upsert(&ps->mcases, key.data, key.len, &created);
    buf_cleanup(&key);
    struct mcase *c = me->value;
    size_t evn = (size_t)(ev_end - ev);
    if (evn == 8 && !memcmp(ev, "\"opened\"", 8)) {
        mcase_free(c);
        c = me->value = xcalloc(1, sizeof *c);
        c->id = dup_range(id, id_end);
        c->customer = dup_range(cu, cu_end);
    } else if (!c || (size_t)(id_end - id) != strlen(c->id) || memcmp(id, c->id, strlen(c->id))) {
        return; /* not the open case */
    } else if ((evn == 10 && !memcmp(ev, "\"resolved\"", 10)) ||
               (evn == 11 && !memcmp(ev, "\"withdrawn\"", 11))) {
        mcase_free(c);
        me->value = NULL;
        return;
    }
    free(c->common);
    c->common = dup_range(cu_end, co_end);
}

/* cases.c on_incident, from the mirror: each member's open case learns of the incident. */
static void mirror_incident(struct parts *ps, const struct incident *i)
{
    if (!strcmp(i->update, "resolved"))
        return;
    struct buf b;
    buf_init(&b, 0);
    for (size_t k = 0; k < i->ncustomers; k++) {
        const char *who = i->added ? i->added : i->customers[k];
        buf_reset(&b);
        buf_json_str(&b, who, strlen(who));
        const struct strmap_entry *me = strmap_find(&ps->mcases, b.data, b.len);
        struct mcase *c = me ? me->value : NULL;
        int known = 0;
        for (size_t j = 0; c && j < c->ninc; j++)
            known |= c->inc[j] == i->id;
        if (c && !known) {
            c->inc = xgrow(c->inc, &c->capinc, c->ninc + 1, sizeof *c->inc);
            c->inc[c->ninc++] = i->id;
            buf_reset(&b);
            buf_printf(&b, "{\"kind\":\"case\",\"event\":\"updated\",\"case\":%s,\"customer\":%s%s"
                           ",\"change\":\"incident\",\"incident\":%llu,\"at\":",
                       c->id, c->customer, c->common ? c->common : "",
                       (unsigned long long)i->id);
            buf_json_time(&b, i->at);
            buf_putc(&b, '}');
            ps->msgs->case_line(ps->msgs->ctx, b.data, b.len);
        }
        if (i->added)
            break;
    }
    buf_cleanup(&b);
}

static void merge_one(struct parts *ps, size_t p, struct prec *r)
{
    const struct rules *R = ps->rules[0];
    switch (r->kind) {
    case R_ARMED:
        if (r->who & WHO_TIMER) {
            strmap_upsert(&ps->tord[p], (const char *)&r->who, sizeof r->who, NULL)->value =
                (void *)(uintptr_t)++ps->ordinal;
            break;
        }
        if (r->who >= ps->nord[p]) {
            size_t n = ps->nord[p] ? ps->nord[p] : 1024;
            while (n <= r->who)
                n *= 2;
            ps->ord[p] = xrealloc(ps->ord[p], n * sizeof *ps->ord[p]);
            memset(ps->ord[p] + ps->nord[p], 0, (n - ps->nord[p]) * sizeof *ps->ord[p]);
            ps->nord[p] = n;
        }
        ps->ord[p][r->who] = ++ps->ordinal;
        break;
    case R_MSG:
        ps->msgs->line(ps->msgs->ctx, r->now, r->idx);
        free(r->now);
        r->now = NULL;
        break;
    case R_CASE:
        ps->msgs->case_line(ps->msgs->ctx, r->now, r->idx);
        mirror_line(ps, r->now, r->idx);
        free(r->now);
        r->now = NULL;
        break;
    case R_VIEW: {
        int created;
        struct strmap_entry *me =
            strmap_upsert(&ps->views, r->customer, strlen(r->customer), &created);
        free(me->value);
        me->value = r->view;
        r->view = NULL;
        break;
    }
    case R_ADDED:
        incidents_customer_added(&ps->inc);
        break;
    case R_DET: {
        struct detection d = {.signal = &R->signals[r->idx],
                              .customer = r->customer,
                              .firing = r->flag,
                              .at = r->t,
                              .fired_at = r->fired_at};
        if (ps->out->detection)
            ps->out->detection(ps->out->ctx, &d);
        break;
    }
    case R_FIRED:
        incidents_fired_values(&ps->inc, &ps->isink, &R->signals[r->idx], r->idx, r->customer,
                               r->values, r->t);
        r->values = NULL;
        break;
    case R_RESOLVED:
        incidents_resolved(&ps->inc, &ps->isink, &R->signals[r->idx], r->idx, r->customer, r->t);
        break;
    case R_FACTOR:
        incidents_count_change(&ps->inc, r->idx, r->was, r->now);
        free(r->was);
        free(r->now);
        r->was = r->now = NULL;
        break;
    }
}

/* Merge one buffer per partition (bufs[p * stride]) into one engine's order, emptying them. */
static void merge(struct parts *ps, struct recs *const *bufs)
{
    size_t pos[64] = {0};
    for (;;) {
        size_t best = SIZE_MAX;
        for (size_t p = 0; p < ps->n; p++)
            if (pos[p] < bufs[p]->n &&
                (best == SIZE_MAX ||
                 step_before(ps, &bufs[p]->r[pos[p]], p, &bufs[best]->r[pos[best]], best)))
                best = p;
        if (best == SIZE_MAX)
            break;
        const struct recs *b = bufs[best];
        size_t i = pos[best] + 1; /* past the step's header */
        while (i < b->n && b->r[i].kind != R_STEP)
            merge_one(ps, best, &b->r[i++]);
        pos[best] = i;
    }
    for (size_t p = 0; p < ps->n; p++)
        bufs[p]->n = 0;
}

static void free_views(struct strmap *m)
{
    for (size_t i = 0; i < m->len; i++)
        free(m->entries[i].value);
    strmap_cleanup(m);
}

static size_t min_done(const struct parts *ps)
{
    size_t m = SIZE_MAX;
    for (size_t p = 0; p < ps->n; p++)
        if (ps->done[p] < m)
            m = ps->done[p];
    return m;
}

/* The merger's incident sink: printed, and with messages the alert when one opens. */
static void m_incident(void *ctx, const struct incident *i)
{
    struct parts *ps = ctx;
    if (ps->out->incident)
        ps->out->incident(ps->out->ctx, i);
    if (ps->msgs && ps->msgs->cases)
        mirror_incident(ps, i); /* as one engine's chain: the incident, its cases, its alert */
    if (!ps->orch || strcmp(i->update, "opened"))
        return;
    ps->vbuf = xgrow(ps->vbuf, &ps->capv, i->ncustomers + 1, sizeof *ps->vbuf);
    for (size_t k = 0; k < i->ncustomers; k++) {
        const struct strmap_entry *me =
            strmap_find(&ps->views, i->customers[k], strlen(i->customers[k]));
        if (me)
            ps->vbuf[k] = *(const struct orch_view *)me->value;
        else
            memset(&ps->vbuf[k], 0, sizeof ps->vbuf[k]); /* a member that never fired: none */
    }
    orch_incident_alert(ps->orch, i, ps->vbuf);
}

/* orch_sink.message of the merger's orchestrator: an incident alert's line. */
static void m_message(void *ctx, const struct outbox_msg *m)
{
    struct parts *ps = ctx;
    struct buf line;
    buf_init(&line, 0);
    orch_message_json(m, &line);
    ps->msgs->line(ps->msgs->ctx, line.data, line.len);
    buf_cleanup(&line);
}

/* Settle rounds (messages, no --until): decide each until no merge window is left open. */
static void settle(struct parts *ps)
{
    pthread_mutex_lock(&ps->mu);
    for (;;) {
        while (ps->nsettled < ps->n)
            pthread_cond_wait(&ps->done_cv, &ps->mu);
        int64_t target = FW_TIME_NONE;
        for (size_t p = 0; p < ps->n; p++)
            if (ps->settle[p] != FW_TIME_NONE && (target == FW_TIME_NONE || ps->settle[p] > target))
                target = ps->settle[p];
        ps->nsettled = 0;
        ps->target = target;
        ps->round++;
        pthread_cond_broadcast(&ps->filled_cv);
        if (target == FW_TIME_NONE)
            break;
    }
    pthread_mutex_unlock(&ps->mu);
}

static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    if (pthread_create(t, NULL, fn, arg)) {
        fputs("replay: cannot start a partition thread\n", stderr);
        abort();
    }
}

int parts_run(struct rules *const *rules, size_t nparts, const struct parts_source *src,
              int skip_invalid, int64_t until, const struct engine_health *health,
              const struct engine_sink *out, const struct parts_msgs *msgs,
              struct parts_result *res)
{
    if (nparts < 2 || nparts > 64)
        return FW_EINVAL;
    double cpu0 = thread_cpu_s();
    struct parts *ps = xcalloc(1, sizeof *ps);
    ps->rules = rules;
    ps->n = nparts;
    ps->src = src;
    ps->skip_invalid = skip_invalid;
    ps->until = until;
    ps->health = health;
    ps->out = out;
    ps->msgs = msgs;
    ps->isink = (struct engine_sink){.ctx = ps, .incident = m_incident};
    strmap_init(&ps->views);
    strmap_init(&ps->mcases);
    if (msgs && !msgs->quiet) {
        struct orch_sink os = {.ctx = ps, .message = m_message};
        ps->orch = orch_new(msgs->cfg, msgs->templates, &os);
        orch_set_text_only(ps->orch);
        orch_bind_rules(ps->orch, rules[0]);
    }
    incidents_init(&ps->inc, rules[0]);
    ps->done = xcalloc(nparts, sizeof *ps->done);
    ps->ord = xcalloc(nparts, sizeof *ps->ord);
    ps->nord = xcalloc(nparts, sizeof *ps->nord);
    ps->tord = xcalloc(nparts, sizeof *ps->tord);
    ps->settle = xcalloc(nparts, sizeof *ps->settle);
    ps->part = xcalloc(nparts, sizeof *ps->part);
    pthread_mutex_init(&ps->mu, NULL);
    pthread_cond_init(&ps->filled_cv, NULL);
    pthread_cond_init(&ps->done_cv, NULL);
    pthread_cond_init(&ps->room_cv, NULL);
    pthread_t reader;
    start_thread(&reader, reader_main, ps);
    for (size_t p = 0; p < nparts; p++) {
        ps->part[p] = (struct part){.ps = ps, .p = p, .rules = rules[1 + p]};
        strmap_init(&ps->part[p].views);
        buf_init(&ps->part[p].line, 0);
        strmap_init(&ps->tord[p]);
        start_thread(&ps->part[p].thread, part_main, &ps->part[p]);
    }
    struct recs *bufs[64];
    for (size_t k = 0;; k++) {
        pthread_mutex_lock(&ps->mu);
        while (min_done(ps) <= k && !(ps->end && ps->filled <= k))
            pthread_cond_wait(&ps->done_cv, &ps->mu);
        int have = min_done(ps) > k;
        pthread_mutex_unlock(&ps->mu);
        if (!have)
            break;
        for (size_t p = 0; p < nparts; p++)
            bufs[p] = &ps->part[p].out[k % RING];
        merge(ps, bufs);
        pthread_mutex_lock(&ps->mu);
        ps->merged = k + 1;
        pthread_cond_broadcast(&ps->room_cv);
        pthread_mutex_unlock(&ps->mu);
    }
    if (msgs && until == FW_TIME_NONE)
        settle(ps);
    pthread_mutex_lock(&ps->mu);
    while (ps->nfinished < nparts)
        pthread_cond_wait(&ps->done_cv, &ps->mu);
    pthread_mutex_unlock(&ps->mu);
    for (size_t p = 0; p < nparts; p++)
        bufs[p] = &ps->part[p].tail;
    merge(ps, bufs);
    pthread_join(reader, NULL);
    *res = (struct parts_result){0};
    for (size_t p = 0; p < nparts; p++) {
        struct part *pt = &ps->part[p];
        pthread_join(pt->thread, NULL);
        res->part_cpu_s[p] = pt->cpu_s;
        res->events += pt->events - (p ? pt->globals : 0); /* global events: every partition */
        if (pt->e) {
            res->customers += engine_customer_count(pt->e);
            res->pending += engine_pending_timers(pt->e);
        }
        orch_free(pt->orch); /* cancels its timers: before the engine goes */
        cases_free(pt->cases);
        engine_free(pt->e);
        for (size_t k = 0; k < RING; k++)
            free(pt->out[k].r);
        free(pt->tail.r);
        free(pt->first);
        free(ps->ord[p]);
        strmap_cleanup(&ps->tord[p]);
        free_views(&pt->views);
        buf_cleanup(&pt->line);
    }
    free_views(&ps->views);
    for (size_t i = 0; i < ps->mcases.len; i++)
        mcase_free(ps->mcases.entries[i].value);
    strmap_cleanup(&ps->mcases);
    orch_free(ps->orch);
    free(ps->vbuf);
    for (size_t k = 0; k < RING; k++)
        for (size_t i = 0; i < ps->blocks[k].n; i++)
            event_cleanup(&ps->blocks[k].ev[i]);
    incidents_cleanup(&ps->inc);
    res->reader_cpu_s = ps->reader_cpu_s;
    res->merger_cpu_s = thread_cpu_s() - cpu0;
    pthread_cond_destroy(&ps->room_cv);
    pthread_cond_destroy(&ps->done_cv);
    pthread_cond_destroy(&ps->filled_cv);
    pthread_mutex_destroy(&ps->mu);
    free(ps->part);
    free(ps->settle);
    free(ps->tord);
    free(ps->nord);
    free(ps->ord);
    free(ps->done);
    free(ps);
    return 0;
}
