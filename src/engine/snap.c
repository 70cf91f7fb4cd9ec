/*
 * snap.c -- the engine's whole state in the snapshot encoding (util/wire.h),
 * and back: what recovery would rebuild by replaying the journal up to the
 * snapshot's row, so start-up can load it and replay only the rows after.
 *
 * Invariant: engine_restore(engine_snapshot(e)) gives an engine that
 * evaluates, fires and answers exactly as e; the bytes written from the
 * restored engine are the bytes it was restored from (tests/unit).  Ids
 * interned into the rules at run time (state keys, event types, features)
 * are written as the names of every interned table, in id order; loading
 * interns the ones the fresh rules lack in that order, so every id in the
 * snapshot means what it meant.  Wake-ups are written as their due times
 * and armed again; caches (which signals a type affects) are rebuilt on
 * demand, and the incidents' baseline counts from the customers' state.
 *
 * Every wake-up is written with its place in the wheel's pop order (a
 * rank), and so are the timers other components write with
 * engine_timer_write: a restore arms them all again in that order, so
 * timers due at the same millisecond pop in the order they would have in
 * the original process.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engage.h"
#include "engine/engine_int.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/util.h"
#include "util/wire.h"

/* "3GNE": the engine's section (2: engagement day slots of 8, 12 or 16 bits; 3: wake-ups with
   their place in pop order) */
#define SNAP_ENGINE_MAGIC 0x454e4733u

/* ---- timers: due time and place in pop order ---- */

/* Each armed timer's rank (1-based) in pop order: an open-addressing table keyed by address. */
struct snap_ranks {
    struct rank_slot {
        const struct tw_entry *e;
        uint32_t rank;
    } * t;
    size_t mask;
};

/* A timer a restore armed, and its rank: re-armed in rank order at the end. */
struct snap_rearm {
    struct tw_entry *e;
    uint32_t rank;
    size_t seq; /* read order: breaks ties between timers of a snapshot without ranks */
};

struct visit {
    int64_t due;
    size_t seq;
    const struct tw_entry *e;
};

struct visits {
    struct visit *v;
    size_t n, cap;
};

static void visit_one(void *ctx, struct tw_entry *e)
{
    struct visits *vs = ctx;
    vs->v = xgrow(vs->v, &vs->cap, vs->n + 1, sizeof *vs->v);
    vs->v[vs->n] = (struct visit){.due = e->due, .seq = vs->n, .e = e};
    vs->n++;
}

static int visit_cmp(const void *a, const void *b)
{
    const struct visit *x = a, *y = b;
    if (x->due != y->due)
        return x->due < y->due ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static size_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static void ranks_build(struct engine *e)
{
    engine_snapshot_end(e);
    struct visits vs = {0};
    tw_walk(e->wheel, visit_one, &vs);
    if (vs.n)
        qsort(vs.v, vs.n, sizeof *vs.v, visit_cmp); /* stable by due: the pop order */
    struct snap_ranks *r = xcalloc(1, sizeof *r);
    size_t cap = 16;
    while (cap < 2 * vs.n)
        cap *= 2;
    r->t = xcalloc(cap, sizeof *r->t);
    r->mask = cap - 1;
    for (size_t i = 0; i < vs.n; i++) {
        size_t h = ptr_hash(vs.v[i].e) & r->mask;
        while (r->t[h].e)
            h = (h + 1) & r->mask;
        r->t[h].e = vs.v[i].e;
        r->t[h].rank = (uint32_t)(i + 1);
    }
    free(vs.v);
    e->ranks = r;
}

static uint32_t rank_of(const struct engine *e, const struct tw_entry *t)
{
    const struct snap_ranks *r = e->ranks;
    if (!r)
        return 0; /* written outside engine_snapshot: restored in reading order */
    for (size_t h = ptr_hash(t) & r->mask; r->t[h].e; h = (h + 1) & r->mask)
        if (r->t[h].e == t)
            return r->t[h].rank;
    return 0;
}

static void entry_write(const struct engine *e, const struct tw_entry *t, struct buf *out)
{
    if (!tw_armed(t)) {
        wire_put_i64(out, FW_TIME_NONE);
        return;
    }
    wire_put_i64(out, t->due);
    wire_put_u32(out, rank_of(e, t));
}

/* Arm t as the snapshot says and remember it for engine_restore_end; the due time read. */
static int64_t entry_read(struct engine *e, struct tw_entry *t, struct wire_rd *in)
{
    int64_t due = wire_get_time(in);
    if (due == FW_TIME_NONE || in->err)
        return FW_TIME_NONE;
    uint32_t rank = wire_get_u32(in);
    if (in->err)
        return FW_TIME_NONE;
    e->rearm = xgrow(e->rearm, &e->caprearm, e->nrearm + 1, sizeof *e->rearm);
    e->rearm[e->nrearm] = (struct snap_rearm){.e = t, .rank = rank, .seq = e->nrearm};
    e->nrearm++;
    tw_arm(e->wheel, t, due);
    return due;
}

static int rearm_cmp(const void *a, const void *b)
{
    const struct snap_rearm *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Arm again, in the original pop order: ties then pop as they would have. */
static void rearm_all(struct engine *e)
{
    if (e->nrearm)
        qsort(e->rearm, e->nrearm, sizeof *e->rearm, rearm_cmp);
    for (size_t i = 0; i < e->nrearm; i++)
        tw_arm(e->wheel, e->rearm[i].e, e->rearm[i].e->due);
}

void engine_snapshot_end(struct engine *e)
{
    if (e->ranks) {
        free(e->ranks->t);
        free(e->ranks);
        e->ranks = NULL;
    }
}

void engine_timer_write(const struct engine *e, const struct engine_timer *t, struct buf *out)
{
    entry_write(e, &t->_tw, out);
}

int64_t engine_timer_read(struct engine *e, struct engine_timer *t, struct wire_rd *in)
{
    return entry_read(e, &t->_tw, in);
}

void engine_restore_end(struct engine *e, int ok)
{
    if (ok)
        rearm_all(e);
    free(e->rearm);
    e->rearm = NULL;
    e->nrearm = e->caprearm = 0;
}

void engine__snap_cleanup(struct engine *e)
{
    engine_snapshot_end(e);
    free(e->rearm);
}

/* ---- values and state ---- */

static void value_write(const struct value *v, struct buf *out)
{
    wire_put_u8(out, (uint8_t)v->type);
    switch (v->type) {
    case VAL_NULL:
        break;
    case VAL_BOOL:
        wire_put_u8(out, v->u.b != 0);
        break;
    case VAL_NUM:
        wire_put_f64(out, v->u.num);
        break;
    case VAL_STR:
        wire_put_bytes(out, v->u.str.ptr, v->u.str.len);
        break;
    case VAL_TIME:
    case VAL_DUR:
        wire_put_i64(out, v->u.ms);
        break;
    case VAL_LIST:
        wire_put_u32(out, (uint32_t)v->u.list.n);
        for (size_t i = 0; i < v->u.list.n; i++)
            value_write(&v->u.list.items[i], out);
        break;
    }
}

/* Read a value (owned, as value__copy makes them; with `borrow`, a string at the top instead
   points into the input); depth bounds nested lists. */
static void value_read(struct value *v, struct wire_rd *in, int depth, int borrow)
{
    v->type = VAL_NULL;
    uint8_t t = wire_get_u8(in);
    size_t n;
    const char *p;
    switch (t) {
    case VAL_NULL:
        break;
    case VAL_BOOL:
        v->type = VAL_BOOL;
        v->u.b = wire_get_u8(in) != 0;
        break;
    case VAL_NUM:
        v->type = VAL_NUM;
        v->u.num = wire_get_f64(in);
        break;
    case VAL_STR:
        if ((p = wire_get_bytes(in, &n))) {
            v->type = VAL_STR;
            v->u.str.ptr = borrow && !depth ? p : xstrndup(p, n);
            v->u.str.len = n;
        }
        break;
    case VAL_TIME:
    case VAL_DUR:
        v->type = (enum value_type)t;
        v->u.ms = wire_get_time(in);
        break;
    case VAL_LIST: {
        uint32_t k = wire_get_count(in, 1);
        if (in->err || depth > 4) {
            in->err = 1;
            break;
        }
        struct value *items = xcalloc(k + 1, sizeof *items);
        v->type = VAL_LIST;
        v->u.list.items = items;
        v->u.list.n = 0;
        for (uint32_t i = 0; i < k && !in->err; i++) {
            value_read(&items[i], in, depth + 1, 0);
            v->u.list.n++;
        }
        break;
    }
    default:
        in->err = 1;
    }
}

static void kvset_write(const struct kvset *s, struct buf *out)
{
    wire_put_u32(out, kvset__count(s));
    for (uint32_t i = 0; i < kvset__count(s); i++) {
        uint32_t key;
        struct value v;
        int64_t since;
        kvset__at(s, i, &key, &v, &since);
        wire_put_u32(out, key);
        wire_put_i64(out, since);
        value_write(&v, out);
    }
}

/* A set's keys into b (not finished: a customer's last-seen times follow); keys must be below
   nkeys and ascending (the set's invariant). */
static void kvset_read_into(struct kvbuild *b, size_t nkeys, struct wire_rd *in)
{
    uint32_t n = wire_get_count(in, 13);
    uint32_t last = 0;
    for (uint32_t i = 0; i < n && !in->err; i++) {
        uint32_t key = wire_get_u32(in);
        int64_t since = wire_get_time(in);
        struct value v;
        value_read(&v, in, 0, 1); /* a string is copied into the block: borrowed till then */
        if (!in->err && (key >= nkeys || (i && key <= last)))
            in->err = 1;
        if (!in->err)
            kvbuild__add(b, key, &v, since);
        if (v.type != VAL_STR)
            value__free(&v);
        last = key;
    }
}

/* Into an empty set, its block from the engine's slab and layouts. */
static void kvset_read(struct engine *e, struct kvset *s, size_t nkeys, struct wire_rd *in)
{
    struct kvbuild b;
    kvbuild__init(&b, &e->slab, &e->layouts);
    kvset_read_into(&b, nkeys, in);
    kvbuild__finish(&b, s);
    kvbuild__cleanup(&b);
}

/* ---- the interned names ---- */

enum { T_KEYS, T_GLOBALS, T_TYPES, T_CLASSES, T_ENTITIES, T_METRICS, T_FEATURES, T_STEPS, T_N };

static struct intern *table(struct rules *r, int t)
{
    switch (t) {
    case T_KEYS: return &r->keys;
    case T_GLOBALS: return &r->globals;
    case T_TYPES: return &r->types;
    case T_CLASSES: return &r->classes;
    case T_ENTITIES: return &r->entities;
    case T_METRICS: return &r->metrics;
    case T_FEATURES: return &r->features;
    default: return &r->steps;
    }
}

static void names_write(struct rules *r, struct buf *out)
{
    for (int t = 0; t < T_N; t++) {
        const struct intern *in = table(r, t);
        wire_put_u32(out, (uint32_t)intern_count(in));
        for (size_t i = 0; i < intern_count(in); i++)
            wire_put_str(out, intern_str(in, (uint32_t)i));
    }
}

/*
 * The snapshot's names over the rules': the rules' must be a prefix of the
 * snapshot's (the same pack interned them in the same order), and the rest
 * is interned now, in order.  Only state keys, global keys, event types and
 * features grow at run time.
 */
static int names_read(struct rules *r, struct wire_rd *in, char *why, size_t n)
{
    static const char *const what[T_N] = {"state key", "global key", "event type", "class",
                                          "entity", "metric", "feature", "onboarding step"};
    for (int t = 0; t < T_N && !in->err; t++) {
        struct intern *tab = table(r, t);
        uint32_t count = wire_get_count(in, 1);
        for (uint32_t i = 0; i < count && !in->err; i++) {
            char *s = wire_get_str(in);
            if (!s) {
                in->err = 1;
                break;
            }
            int ok = 1;
            if (i < intern_count(tab))
                ok = !strcmp(intern_str(tab, i), s);
            else if (t == T_TYPES)
                ok = rules_type_id(r, s, strlen(s)) == i;
            else if (t == T_KEYS || t == T_GLOBALS || t == T_FEATURES)
                ok = intern_id(tab, s, strlen(s)) == i;
            else
                ok = 0;
            if (!ok)
                snprintf(why, n, "%s %u is \"%s\" in the snapshot, not what these rules have",
                         what[t], i, s);
            free(s);
            if (!ok)
                return -1;
        }
    }
    return 0;
}

/* ---- customers ---- */

static void customer_write(const struct engine *e, const struct customer *c, struct buf *out)
{
    wire_put_str(out, c->key);
    kvset_write(&c->state, out);
    wire_put_u32(out, kvset__nlast(&c->state));
    for (uint32_t i = 0; i < kvset__nlast(&c->state); i++) { /* first seen first */
        uint32_t type;
        int64_t at;
        kvset__last_at(&c->state, i, &type, &at);
        wire_put_u32(out, type);
        wire_put_i64(out, at);
    }
    uint32_t nw = c->win ? c->win->n : 0;
    wire_put_u32(out, nw);
    for (uint32_t i = 0; i < nw; i++) {
        const struct window *w = &c->win->w[i];
        wire_put_u32(out, w->cls);
        wire_put_u32(out, w->n);
        for (uint32_t k = 0; k < w->n; k++)
            wire_put_i64(out, w->times[k]);
    }
    wire_put_u8(out, (uint8_t)(c->win && c->win->future));
    wire_put_u32(out, c->nopen);
    for (uint32_t i = 0; i < c->nopen; i++) {
        wire_put_u32(out, c->open[i].entity);
        wire_put_str(out, c->open[i].id);
    }
    /* Every signal's fired_at, then next_at, then stable_at (the layout of the arrays the
       customer held before it kept only the unusual ones). */
    for (int k = 0; k < 3; k++)
        for (size_t s = 0; s < e->nsignals; s++) {
            struct sigtimes t = sigt__get(c->sigt, c->nsigt, (uint32_t)s);
            wire_put_i64(out, k == 0 ? t.fired_at : k == 1 ? t.next_at : t.stable_at);
        }
    wire_put_i64(out, c->floor);
    wire_put_u32(out, c->nproj);
    for (uint32_t i = 0; i < c->nproj; i++) {
        const struct trans *t = &c->proj[i];
        wire_put_u32(out, t->sig);
        wire_put_u8(out, (uint8_t)t->firing);
        wire_put_u8(out, (uint8_t)t->waking);
        wire_put_i64(out, t->at);
        wire_put_i64(out, t->fired_at);
    }
    engage__write(c->eng, e->rules, out);
    entry_write(e, &c->timer, out);
}

/* One customer into the (fresh) engine, its wake-up armed. */
static void customer_read(struct engine *e, struct wire_rd *in)
{
    const struct rules *r = e->rules;
    char *key = wire_get_str(in);
    if (!key) {
        in->err = 1;
        return;
    }
    int created;
    struct strmap_entry *me = strmap_upsert(&e->customers, key, strlen(key), &created);
    free(key);
    if (!created) {
        in->err = 1; /* the same customer twice */
        return;
    }
    struct slab *sl = &e->slab;
    struct customer *c = slab_zalloc(sl, sizeof *c);
    me->value = c;
    tw_entry_init(&c->timer);
    c->key = me->key;
    incidents_customer_added(&e->incidents);
    /* The state block is built once: its keys, then its last-seen times. */
    struct kvbuild *b = &e->build;
    kvset_read_into(b, intern_count(&r->keys), in);
    uint32_t n = wire_get_count(in, 12);
    if (n && !in->err) {
        uint32_t *types = xmalloc(n * sizeof *types);
        int64_t *ats = xmalloc(n * sizeof *ats);
        for (uint32_t i = 0; i < n; i++) {
            types[i] = wire_get_u32(in);
            ats[i] = wire_get_time(in);
            if (types[i] >= intern_count(&r->types))
                in->err = 1;
        }
        if (!in->err && kvbuild__add_lasts(b, types, ats, n))
            in->err = 1; /* a type twice */
        free(types);
        free(ats);
    }
    kvbuild__finish(b, &c->state);
    n = wire_get_count(in, 8);
    if (n && !in->err) {
        /* Sized for n: the count stays n (a window read in part is empty) so that it is freed
           at the size it has. */
        c->win = slab_zalloc(sl, sizeof *c->win + n * sizeof *c->win->w);
        c->win->n = n;
    }
    for (uint32_t i = 0; i < n && !in->err; i++) {
        struct window *w = &c->win->w[i];
        w->cls = wire_get_u32(in);
        uint32_t k = wire_get_count(in, 8);
        w->times = slab_alloc(sl, (k + 1) * sizeof *w->times);
        w->cap = k + 1;
        for (uint32_t j = 0; j < k && !in->err; j++)
            w->times[w->n++] = wire_get_time(in);
        if (w->cls >= intern_count(&r->classes))
            in->err = 1;
    }
    if (wire_get_u8(in) && !in->err) {
        if (!c->win)
            c->win = slab_zalloc(sl, sizeof *c->win); /* as written, though no window holds a time */
        c->win->future = 1;
    }
    n = wire_get_count(in, 5);
    c->open = n ? slab_alloc(sl, n * sizeof *c->open) : NULL;
    for (uint32_t i = 0; i < n && !in->err; i++) {
        uint32_t ent = wire_get_u32(in);
        char *id = wire_get_str(in);
        if (!id || ent >= intern_count(&r->entities)) {
            free(id);
            in->err = 1;
            break;
        }
        c->open[c->nopen].entity = ent;
        c->open[c->nopen++].id = slab_strdup(sl, id);
        free(id);
    }
    if (c->nopen < n) /* read in part: sized to what it holds */
        c->open = slab_realloc(sl, c->open, n * sizeof *c->open, c->nopen * sizeof *c->open);
    int64_t small[3 * 32]; /* a pack's signals fit, usually: no allocation per customer */
    int64_t *times = 3 * e->nsignals <= 3 * 32 ? small : xmalloc(3 * e->nsignals * sizeof *times);
    for (size_t s = 0; s < 3 * e->nsignals; s++)
        times[s] = wire_get_time(in);
    for (size_t s = 0; s < e->nsignals && !in->err; s++) {
        struct sigtimes t = {.sig = (uint32_t)s, .fired_at = times[s],
                             .next_at = times[e->nsignals + s],
                             .stable_at = times[2 * e->nsignals + s]};
        sigt__put(sl, &c->sigt, &c->nsigt, &t);
    }
    if (times != small)
        free(times);
    c->floor = wire_get_time(in);
    n = wire_get_count(in, 22);
    if (n > PROJ_MAX)
        in->err = 1;
    c->proj = n && !in->err ? slab_zalloc(sl, proj__cap(n) * sizeof *c->proj) : NULL;
    for (uint32_t i = 0; c->proj && i < n && !in->err; i++) {
        struct trans *t = &c->proj[c->nproj++];
        t->sig = wire_get_u32(in);
        t->firing = wire_get_u8(in);
        t->waking = wire_get_u8(in);
        t->at = wire_get_time(in);
        t->fired_at = wire_get_time(in);
        if (t->sig >= e->nsignals)
            in->err = 1;
    }
    if (c->proj && c->nproj < n) /* read in part: the room proj__cap says */
        c->proj = slab_realloc(sl, c->proj, proj__cap(n) * sizeof *c->proj,
                               proj__cap(c->nproj) * sizeof *c->proj);
    if (!in->err && engage__read(&c->eng, r, in))
        in->err = 1;
    if (!in->err)
        entry_read(e, &c->timer, in);
    if (!in->err)
        incidents_count_customer(&e->incidents, &c->state);
}

/* ---- the engine ---- */

void engine_snapshot(struct engine *e, struct buf *out)
{
    ranks_build(e);
    wire_put_u32(out, SNAP_ENGINE_MAGIC);
    names_write(e->rules, out);
    wire_put_u32(out, (uint32_t)e->nsignals);
    wire_put_i64(out, e->now);
    /* Counters, as /metrics shows them. */
    wire_put_u64(out, e->stats.events);
    wire_put_u64(out, e->stats.evaluations);
    wire_put_u64(out, e->stats.wakeups);
    for (size_t s = 0; s < e->nsignals; s++) {
        wire_put_u64(out, e->stats.fired[s]);
        wire_put_u64(out, e->stats.resolved[s]);
    }
    wire_put_u64(out, e->stats.incidents);
    wire_put_u64(out, e->stats.late);
    wire_put_u64(out, e->stats.retracted);
    /* The global state and its recent history. */
    kvset_write(&e->global, out);
    wire_put_u32(out, (uint32_t)e->nghist);
    for (size_t i = 0; i < e->nghist; i++) {
        const struct gsnap *g = &e->ghist[i];
        wire_put_i64(out, g->at);
        wire_put_str(out, g->type);
        wire_put_i64(out, g->time);
        char *data = g->data ? json_dumps(g->data, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        wire_put_str(out, data);
        free(data);
        kvset_write(&g->state, out);
    }
    wire_put_u8(out, (uint8_t)e->ghist_dropped);
    /* Customers, first seen first (the order engine_customer_key lists them in). */
    wire_put_u64(out, e->customers.len);
    for (size_t i = 0; i < e->customers.len; i++)
        customer_write(e, e->customers.entries[i].value, out);
    incidents_write(&e->incidents, out);
}

int engine_restore(struct engine *e, struct wire_rd *in, char *why, size_t n)
{
    snprintf(why, n, "the engine's state is malformed");
    if (e->customers.len || tw_count(e->wheel) || wire_get_u32(in) != SNAP_ENGINE_MAGIC) {
        if (!in->err)
            snprintf(why, n, "not an engine snapshot, or the engine is not fresh");
        return FW_EPARSE;
    }
    if (names_read(e->rules, in, why, n))
        return FW_EPARSE;
    if (wire_get_u32(in) != e->nsignals) {
        if (!in->err)
            snprintf(why, n, "the snapshot has another number of signals than these rules");
        return FW_EPARSE;
    }
    int64_t now = wire_get_time(in);
    if (in->err)
        return FW_EPARSE;
    /* A wheel whose clock is the snapshot's, so every wake-up is armed as it was. */
    tw_free(e->wheel);
    e->wheel = tw_new(now);
    e->now = now;
    e->stats.events = wire_get_u64(in);
    e->stats.evaluations = wire_get_u64(in);
    e->stats.wakeups = wire_get_u64(in);
    for (size_t s = 0; s < e->nsignals; s++) {
        e->stats.fired[s] = wire_get_u64(in);
        e->stats.resolved[s] = wire_get_u64(in);
    }
    e->stats.incidents = wire_get_u64(in);
    e->stats.late = wire_get_u64(in);
    e->stats.retracted = wire_get_u64(in);
    size_t nglobals = intern_count(&e->rules->globals);
    kvset_read(e, &e->global, nglobals, in);
    uint32_t ng = wire_get_count(in, 30);
    if (ng > GHIST_MAX)
        in->err = 1;
    e->ghist = xcalloc(ng + 1, sizeof *e->ghist);
    e->capghist = ng + 1;
    for (uint32_t i = 0; i < ng && !in->err; i++) {
        struct gsnap *g = &e->ghist[e->nghist++];
        g->at = wire_get_time(in);
        g->type = wire_get_str(in);
        g->time = wire_get_time(in);
        char *data = wire_get_str(in);
        if (data) {
            json_error_t jerr;
            g->data = json_loads(data, 0, &jerr);
            if (!g->data)
                in->err = 1;
            free(data);
        }
        kvset_read(e, &g->state, nglobals, in);
        if (!g->type)
            in->err = 1;
    }
    e->ghist_dropped = wire_get_u8(in) != 0;
    uint64_t nc = wire_get_u64(in);
    if (nc > in->n - in->off)
        in->err = 1; /* each customer takes more than a byte */
    for (uint64_t i = 0; i < nc && !in->err; i++)
        customer_read(e, in);
    if (!in->err && incidents_read(&e->incidents, in))
        in->err = 1;
    if (!in->err)
        rearm_all(e); /* the engine's own in pop order; engine_restore_end again with the rest */
    return in->err ? FW_EPARSE : 0;
}
