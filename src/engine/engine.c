/*
 * engine.c -- apply events to customer state, evaluate signals, keep
 * detection episodes, and wake up exactly when a condition can change.
 *
 * Invariants:
 *  - a customer's timer is armed iff some signal reported a finite next
 *    change time at its last evaluation, and then at the earliest of them
 *    (or earlier: an early wake-up only costs an evaluation);
 *  - signal s's fired_at (struct sigtimes; stored only when not the usual
 *    times) != FW_TIME_NONE iff s is firing for the customer, so an
 *    episode fires once and resolves once;
 *  - its next_at and stable_at are the next change time and the time
 *    until which the result and next_at hold (expr_test_stable) from signal
 *    s's last evaluation for the customer; the times are absolute, so a
 *    signal none of whose inputs changed since and whose stable_at is still
 *    ahead would evaluate the same: it is not evaluated (see evaluate());
 *  - every output is emitted at the engine's current time, which only grows.
 */
#include "engine/engine.h"

#include <stdlib.h>
#include <string.h>

#include "engine/engage.h"
#include "engine/engine_int.h"
#include "engine/incident.h"
#include "engine/state.h"
#include "engine/tw.h"
#include "util/json.h"
#include "util/fwtime.h"
#include "util/map.h"
#include "util/slab.h"
#include "util/util.h"

/* What a signal's condition reads, beyond what type_affects() records. */
enum {
    SIG_READS_EVENT = 1, /* event fields: they differ on every evaluation */
    SIG_COUNTS = 2,      /* count(): gives no next change for class times after now */
    SIG_HEALTH = 4,      /* reads health, which reads everything: evaluated on every pass */
    SIG_CHURN = 8,       /* reads churn_risk, which may read anything: evaluated on every pass
                            (the score itself is cached: see churn_of) */
};

/* What a condition evaluation can see: one customer and, maybe, the event that triggered it. */
struct evalctx {
    struct engine *e;
    struct customer *c;
    const struct event *ev;
};

/* ---- a customer's per-signal times (state.h: only the unusual ones are stored) ---- */

static inline struct sigtimes sigt(const struct customer *c, size_t s)
{
    if (!c->nsigt) /* the usual case: nothing stored */
        return (struct sigtimes){.sig = (uint32_t)s, .fired_at = FW_TIME_NONE,
                                 .next_at = FW_TIME_MAX, .stable_at = FW_TIME_MAX};
    return sigt__get(c->sigt, c->nsigt, (uint32_t)s);
}

/* Store a signal's times (sigt__put), skipping the call when there is nothing to do. */
static inline void sigt_put(struct engine *e, struct customer *c, const struct sigtimes *t)
{
    if (c->nsigt || !sigt__usual(t))
        sigt__put(&e->slab, &c->sigt, &c->nsigt, t);
}

static int64_t fired_at_of(const struct customer *c, size_t s)
{
    return sigt(c, s).fired_at;
}

static void set_fired_at(struct engine *e, struct customer *c, size_t s, int64_t t)
{
    struct sigtimes x = sigt(c, s);
    x.fired_at = t;
    sigt_put(e, c, &x);
}

/* Make the signal's last evaluation stale: the next pass judges it again. */
static void set_unstable(struct engine *e, struct customer *c, size_t s)
{
    struct sigtimes x = sigt(c, s);
    x.stable_at = FW_TIME_NONE;
    sigt_put(e, c, &x);
}

/* ---- expr_env callbacks ---- */

static void env_state(void *ctx, uint32_t id, struct value *out, int64_t *since)
{
    struct evalctx *x = ctx;
    kvset__get(&x->c->state, id, out, since);
}

/*
 * The global state as of t: the current one, except while a customer is
 * judged as of an earlier time (a late event), when it is the state the
 * global events dated up to t left.
 */
static const struct kvset *global_at(const struct engine *e, int64_t t)
{
    static const struct kvset empty;
    if (!e->collecting || !e->nghist || e->ghist[e->nghist - 1].at <= t)
        return &e->global;
    for (size_t i = e->nghist; i-- > 0;)
        if (e->ghist[i].at <= t)
            return &e->ghist[i].state;
    return e->ghist_dropped ? &e->ghist[0].state : &empty;
}

static void env_global(void *ctx, uint32_t id, struct value *out, int64_t *since)
{
    struct evalctx *x = ctx;
    kvset__get(global_at(x->e, x->e->now), id, out, since);
}

static int64_t env_last(void *ctx, uint32_t type)
{
    struct evalctx *x = ctx;
    return kvset__last(&x->c->state, type);
}

static int64_t env_count(void *ctx, uint32_t cls, int64_t after, int64_t *oldest)
{
    struct evalctx *x = ctx;
    *oldest = FW_TIME_MAX;
    for (uint32_t i = 0; x->c->win && i < x->c->win->n; i++) {
        struct window *w = &x->c->win->w[i];
        if (w->cls != cls)
            continue;
        /* Times are ascending: skip those at or before `after`, count those up to now. */
        uint32_t lo = 0;
        while (lo < w->n && w->times[lo] <= after)
            lo++;
        uint32_t hi = lo;
        while (hi < w->n && w->times[hi] <= x->e->now)
            hi++;
        if (hi > lo)
            *oldest = w->times[lo];
        return hi - lo;
    }
    return 0;
}

static int64_t env_open_count(void *ctx, uint32_t entity)
{
    struct evalctx *x = ctx;
    int64_t n = 0;
    for (uint32_t i = 0; i < x->c->nopen; i++)
        n += x->c->open[i].entity == entity;
    return n;
}

static void env_event_field(void *ctx, const char *path, size_t len, struct value *out)
{
    struct evalctx *x = ctx;
    out->type = VAL_NULL;
    if (!x->ev)
        return;
    const struct event *ev = x->ev;
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(path, lit, len) == 0)
    const char *s = NULL;
    if (IS("id"))
        s = ev->id;
    else if (IS("type"))
        s = ev->type;
    else if (IS("subject"))
        s = ev->subject;
    else if (IS("source"))
        s = ev->source;
    else if (IS("time")) {
        out->type = VAL_TIME;
        out->u.ms = ev->time;
        return;
    }
#undef IS
    if (s) {
        out->type = VAL_STR;
        out->u.str.ptr = s;
        out->u.str.len = strlen(s);
        return;
    }
    if (len < 5 || memcmp(path, "data.", 5) != 0)
        return;
    json_t *j = ev->data;
    const char *p = path + 5, *end = path + len;
    while (j && p < end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = dot ? (size_t)(dot - p) : (size_t)(end - p);
        j = json_is_object(j) ? json_object_getn(j, p, n) : NULL;
        p += n + (dot ? 1 : 0);
        if (!dot)
            break;
    }
    if (j)
        value__from_json(j, out);
}

/* How far back the health score looks at contacts, failed payments and feature use. */
#define HEALTH_WINDOW (30 * FW_DAY)

/*
 * Gather the health score's inputs for a customer at now, and the earliest
 * time one of them changes with no new input (a contact or a failed
 * payment leaving the 30-day window, a feature use growing stale, a day
 * boundary for the usage trend).
 */
static void health_inputs(struct engine *e, struct customer *c, struct health_inputs *in,
                          int64_t *next)
{
    struct evalctx x = {.e = e, .c = c};
    int64_t now = e->now, since, oldest;
    *next = FW_TIME_MAX;
    memset(in, 0, sizeof *in);
    if (e->health_metric >= 0 && c->eng) {
        in->have_decline = engage__decline(c->eng, e->rules, (uint32_t)e->health_metric, 7, 28,
                                           now, &in->decline) == 0;
        for (uint32_t i = 0; i < c->eng->nmetrics; i++)
            if (c->eng->metrics[i]->metric == e->health_metric)
                *next = (now / FW_DAY + 1) * FW_DAY;
    }
    for (uint32_t i = 0; c->eng && i < c->eng->nfeatures; i++) {
        const struct eng_feature *f = &c->eng->features[i];
        if (!f->purchased)
            continue;
        in->purchased++;
        if (f->last_used != FW_TIME_NONE && f->last_used > now - HEALTH_WINDOW) {
            in->used++;
            if (f->last_used + HEALTH_WINDOW < *next)
                *next = f->last_used + HEALTH_WINDOW;
        }
    }
    if (e->health_class >= 0) {
        in->contacts = (int)env_count(&x, (uint32_t)e->health_class, now - HEALTH_WINDOW, &oldest);
        if (in->contacts && oldest + HEALTH_WINDOW < *next)
            *next = oldest + HEALTH_WINDOW;
    }
    if (e->health_sentiment >= 0) {
        struct value v;
        env_state(&x, (uint32_t)e->health_sentiment, &v, &since);
        if (v.type == VAL_NUM) {
            in->have_sentiment = 1;
            in->sentiment = v.u.num;
        }
    }
    if (e->health_payfail >= 0) {
        int64_t t = env_last(&x, (uint32_t)e->health_payfail);
        if (t != FW_TIME_NONE && t > now - HEALTH_WINDOW) {
            in->payment_failures = 1;
            if (t + HEALTH_WINDOW < *next)
                *next = t + HEALTH_WINDOW;
        }
    }
    /* Other signals: those that read health are left out, so the score never feeds itself
       (nor through churn_risk, when a churn feature reads health). */
    uint8_t self = SIG_HEALTH | (e->churn.reads_health ? SIG_CHURN : 0);
    for (size_t s = 0; s < e->nsignals; s++)
        in->detections += fired_at_of(c, s) != FW_TIME_NONE && !(e->sig_flags[s] & self);
}

static void health_of(struct engine *e, struct customer *c, struct health_result *h,
                      int64_t *next)
{
    struct health_inputs in;
    health_inputs(e, c, &in, next);
    engage__health(&e->health, &in, h);
}

static void env_init(struct expr_env *env, struct evalctx *x);

static int64_t next_midnight(int64_t now)
{
    int64_t day = now >= 0 ? now / FW_DAY : -((-now + FW_DAY - 1) / FW_DAY);
    return (day + 1) * FW_DAY;
}

/*
 * The customer's churn score at now: the cached one while it holds (the
 * same customer and global versions, now within [at, until)), else the
 * model's on the features evaluated now.  A feature whose value moves
 * with the clock (age(), now()) would change at every instant; it is
 * taken to change at the next UTC midnight, so a score is recomputed at
 * most daily without new input.  *next: until when the score holds.
 * 0, FW_ENOTFOUND (no model) or FW_EIO (the model could not score).
 */
static int churn_of(struct engine *e, struct customer *c, double *score, int64_t *next,
                    const char **cells)
{
    *next = FW_TIME_MAX;
    if (!e->churn.score)
        return FW_ENOTFOUND;
    struct churn_cache *k = c->churn;
    if (k && k->ver == c->ver && k->gver == e->gver && e->now >= k->at && e->now < k->until) {
        *next = k->until;
        *score = k->score;
        if (cells)
            *cells = k->cells;
        return k->ok ? 0 : FW_EIO;
    }
    if (!k)
        k = c->churn = xcalloc(1, sizeof *k);
    struct evalctx x = {.e = e, .c = c};
    struct expr_env env;
    env_init(&env, &x);
    int64_t until = FW_TIME_MAX;
    for (size_t i = 0; i < e->churn.n; i++) {
        struct value v;
        int64_t nx = FW_TIME_MAX;
        buf_reset(&e->churn_scratch);
        if (expr_eval(e->churn.exprs[i], &env, &v, &nx, &e->churn_scratch) || v.type == VAL_LIST)
            v.type = VAL_NULL; /* a string beyond the scratch cap, or a list: missing */
        value__copy(&e->churn_vals[i], &v); /* strings outlive the next evaluation's scratch */
        if (nx <= e->now + 1)
            nx = next_midnight(e->now); /* moving with the clock: daily */
        if (nx < until)
            until = nx;
    }
    double sc = 0;
    buf_reset(&e->churn_cells);
    k->ok = e->churn.score(e->churn.ctx, e->churn_vals, e->churn.n, &sc, &e->churn_cells) == 0;
    free(k->cells);
    k->cells = xmalloc(e->churn_cells.len + 1);
    if (e->churn_cells.len)
        memcpy(k->cells, e->churn_cells.data, e->churn_cells.len);
    for (size_t i = 0; i < e->churn.n; i++)
        value__free(&e->churn_vals[i]);
    e->stats.churn_scores++;
    k->score = k->ok ? sc : 0;
    k->ver = c->ver;
    k->gver = e->gver;
    k->at = e->now;
    k->until = until;
    *next = until;
    *score = k->score;
    if (cells)
        *cells = k->cells;
    return k->ok ? 0 : FW_EIO;
}

static void env_engage(void *ctx, int fn, uint32_t id, int a, int b, struct value *out,
                       int64_t *next)
{
    struct evalctx *x = ctx;
    if (fn == EXPR_ENG_CHURN) {
        double sc;
        out->type = VAL_NULL;
        if (!churn_of(x->e, x->c, &sc, next, NULL)) {
            out->type = VAL_NUM;
            out->u.num = sc;
        }
        return;
    }
    if (fn == EXPR_ENG_HEALTH) {
        struct health_result h;
        health_of(x->e, x->c, &h, next);
        out->type = VAL_NUM;
        out->u.num = h.score;
        return;
    }
    engage__figure(x->c->eng, x->e->rules, fn, id, a, b, x->e->now, out, next);
}

static void env_init(struct expr_env *env, struct evalctx *x)
{
    env->ctx = x;
    env->now = x->e->now;
    env->state = env_state;
    env->global = env_global;
    env->last = env_last;
    env->count = env_count;
    env->open_count = env_open_count;
    env->event_field = env_event_field;
    env->engage = env_engage;
}

/* ---- customers ---- */

static struct customer *customer_get(struct engine *e, const char *key)
{
    int created;
    struct strmap_entry *me = strmap_upsert(&e->customers, key, strlen(key), &created);
    if (!created)
        return me->value;
    struct customer *c = slab_zalloc(&e->slab, sizeof *c);
    tw_entry_init(&c->timer);
    c->key = me->key; /* the map owns the string */
    /* Not firing; never evaluated.  The first pass judges every signal, and most become usual
       (not stored) then. */
    c->sigt = e->nsignals ? slab_alloc(&e->slab, e->nsignals * sizeof *c->sigt) : NULL;
    c->nsigt = (uint32_t)e->nsignals;
    for (size_t i = 0; i < e->nsignals; i++)
        c->sigt[i] = (struct sigtimes){.sig = (uint32_t)i, .fired_at = FW_TIME_NONE,
                                       .next_at = FW_TIME_NONE, .stable_at = FW_TIME_NONE};
    c->floor = FW_TIME_NONE;
    me->value = c;
    if (e->trace.begin)
        e->trace.added(e->trace.ctx, (uint32_t)(e->customers.len - 1));
    else
        incidents_customer_added(&e->incidents);
    return c;
}

/*
 * A customer's place in the customers map, for a partition's trace only: it
 * is looked up rather than kept, so that a customer stays 120 bytes.
 */
static uint32_t customer_index(const struct engine *e, const struct customer *c)
{
    const struct strmap_entry *me = strmap_find(&e->customers, c->key, strlen(c->key));
    return (uint32_t)(me - e->customers.entries);
}

/* Bytes of a customer's winset with n windows (what its block was allocated with). */
static size_t win_size(uint32_t n)
{
    return sizeof(struct winset) + n * sizeof(struct window);
}

static void customer_free(struct engine *e, struct customer *c)
{
    tw_cancel(e->wheel, &c->timer);
    struct slab *sl = &e->slab;
    kvset__cleanup(&c->state, sl);
    for (uint32_t i = 0; c->win && i < c->win->n; i++)
        slab_free(sl, c->win->w[i].times, c->win->w[i].cap * sizeof *c->win->w[i].times);
    if (c->win)
        slab_free(sl, c->win, win_size(c->win->n));
    for (uint32_t i = 0; i < c->nopen; i++)
        slab_free(sl, c->open[i].id, strlen(c->open[i].id) + 1);
    slab_free(sl, c->open, c->nopen * sizeof *c->open);
    slab_free(sl, c->sigt, c->nsigt * sizeof *c->sigt);
    slab_free(sl, c->proj, proj__cap(c->nproj) * sizeof *c->proj);
    engage__free(c->eng);
    if (c->churn)
        free(c->churn->cells);
    free(c->churn);
    slab_free(sl, c, sizeof *c);
}

/* ---- evaluation ---- */

static void emit_detection(struct engine *e, struct customer *c, size_t s, int firing,
                           int64_t at, int64_t fired_at)
{
    struct detection d = {
        .signal = &e->rules->signals[s],
        .customer = c->key,
        .firing = firing,
        .at = at,
        .fired_at = fired_at,
    };
    if (firing)
        e->stats.fired[s]++;
    else
        e->stats.resolved[s]++;
    if (e->sink.detection)
        e->sink.detection(e->sink.ctx, &d);
}

/* Append to a customer's proj, whose room is proj__cap(nproj): full at 0 and powers of two. */
static void proj_push(struct engine *e, struct customer *c, const struct trans *t)
{
    if (proj__cap(c->nproj) == c->nproj)
        c->proj = slab_realloc(&e->slab, c->proj, c->nproj * sizeof *c->proj,
                               (c->nproj ? 2 * c->nproj : 1) * sizeof *c->proj);
    c->proj[c->nproj++] = *t;
}

/* A customer's proj emptied: its memory goes too (most customers have none most of the time). */
static void proj_clear(struct engine *e, struct customer *c)
{
    slab_free(&e->slab, c->proj, proj__cap(c->nproj) * sizeof *c->proj);
    c->proj = NULL;
    c->nproj = 0;
}

/* A systemic signal fired or resolved for c: to the incidents, or to the trace (a partition). */
static void systemic(struct engine *e, struct customer *c, size_t s, int firing)
{
    const struct rule_signal *sig = &e->rules->signals[s];
    if (e->trace.begin && firing)
        e->trace.fired(e->trace.ctx, s, c->key, incidents_signal_values(sig, &c->state), e->now);
    else if (e->trace.begin)
        e->trace.resolved(e->trace.ctx, s, c->key, e->now);
    else if (firing)
        incidents_fired(&e->incidents, &e->sink, sig, s, c->key, &c->state, e->now);
    else
        incidents_resolved(&e->incidents, &e->sink, sig, s, c->key, e->now);
}

/*
 * Signal s of customer c changed at the engine's now.  While a late event
 * is applied the change is collected (engine_apply reports the difference
 * afterwards); otherwise it is reported, and a wake-up's change after the
 * customer's floor is kept so that a late event can undo it.
 */
static void transition(struct engine *e, struct customer *c, size_t s, int firing,
                       int64_t fired_at)
{
    struct trans t = {.sig = (uint32_t)s, .firing = firing, .waking = e->waking, .at = e->now,
                      .fired_at = fired_at};
    if (e->collecting) {
        e->col = xgrow(e->col, &e->capcol, e->ncol + 1, sizeof *e->col);
        e->col[e->ncol++] = t;
        return;
    }
    if (e->waking && e->now >= c->floor) {
        if (c->nproj == PROJ_MAX) {
            proj_clear(e, c); /* too much to undo: nothing before now can be re-judged */
            c->floor = e->now;
        }
        proj_push(e, c, &t);
    }
    emit_detection(e, c, s, firing, e->now, fired_at);
    if (e->rules->signals[s].systemic)
        systemic(e, c, s, firing);
}

/* Evaluate one signal for a customer; notes and returns its next change time. */
static int64_t eval_signal(struct engine *e, struct customer *c, const struct expr_env *env,
                           size_t s)
{
    int64_t next = FW_TIME_MAX;
    const struct rule_signal *sig = &e->rules->signals[s];
    struct sigtimes t = sigt(c, s);
    int on = expr_test_stable(sig->cond, env, &next, &t.stable_at);
    t.next_at = next;
    e->stats.evaluations++;
    if (on && t.fired_at == FW_TIME_NONE) {
        t.fired_at = e->now;
        sigt_put(e, c, &t);
        c->ver++; /* health reads the detections, and a churn feature may read health */
        transition(e, c, s, 1, e->now);
    } else if (!on && t.fired_at != FW_TIME_NONE) {
        int64_t fired_at = t.fired_at;
        t.fired_at = FW_TIME_NONE;
        sigt_put(e, c, &t);
        c->ver++;
        transition(e, c, s, 0, fired_at);
    } else {
        sigt_put(e, c, &t);
    }
    return next;
}

static void rearm(struct engine *e, struct customer *c, int64_t next, int merge)
{
    if (merge && tw_armed(&c->timer) && c->timer.due < next)
        return; /* an earlier wake-up is already pending; it re-evaluates everything */
    if (next == FW_TIME_MAX) {
        tw_cancel(e->wheel, &c->timer);
    } else {
        tw_arm(e->wheel, &c->timer, next);
        if (e->trace.begin)
            e->trace.armed(e->trace.ctx, customer_index(e, c));
    }
}

/* Whether the customer holds event times of a class later than now (events from the future). */
static int has_future_times(const struct engine *e, const struct customer *c)
{
    for (uint32_t i = 0; c->win && i < c->win->n; i++) {
        const struct window *w = &c->win->w[i];
        if (w->n && w->times[w->n - 1] > e->now)
            return 1;
    }
    return 0;
}

/*
 * Evaluate the signals of a customer whose result may have changed, and
 * re-arm its wake-up at the earliest next change of all its signals.  A
 * signal is evaluated when `affects` (the row of the event's type; NULL
 * for a wake-up) says the event changed something it reads; when its last
 * evaluation is no longer stable (some part of it may have changed, such
 * as a count, even if the result did not); when it reads the triggering
 * event; or when it counts events and the customer was given some dated
 * after the clock (count() gives no next change time for those, so every
 * pass evaluates it until the clock has passed them all).  Any other
 * signal would evaluate to the same result and next change time, so it
 * keeps them: the output and the wake-ups are those of evaluating every
 * signal on every pass.
 */
static void evaluate(struct engine *e, struct customer *c, const struct event *ev,
                     const uint8_t *affects)
{
    struct evalctx x = {.e = e, .c = c, .ev = ev};
    struct expr_env env;
    env_init(&env, &x);
    int64_t next = FW_TIME_MAX;
    int future = c->win && c->win->future;
    uint8_t force = SIG_READS_EVENT | SIG_HEALTH | SIG_CHURN | (future ? SIG_COUNTS : 0);
    for (size_t s = 0; s < e->nsignals; s++) {
        /* A next change time already reached is judged again too: a pass at now must leave
           every next_at after now, or a wake-up re-arms at once, forever.  Evaluation keeps
           stable_at <= next_at, so only a restored snapshot could disagree (fuzz_snapshot). */
        struct sigtimes t = sigt(c, s);
        if ((affects && affects[s]) || t.stable_at <= e->now || t.next_at <= e->now ||
            (e->sig_flags[s] & force))
            t.next_at = eval_signal(e, c, &env, s);
        if (t.next_at < next)
            next = t.next_at;
    }
    if (future && !has_future_times(e, c))
        c->win->future = 0; /* this pass counted them all */
    rearm(e, c, next, 0);
}

/* ---- applying events ---- */

/* Length of the namespace: the part of the type before the first dot. */
static size_t ns_len(const char *type)
{
    const char *dot = strchr(type, '.');
    return dot ? (size_t)(dot - type) : strlen(type);
}

/* Is state key `id` in the namespace of `type` (its first nl bytes)? */
static int same_ns_key(struct intern *names, uint32_t id, const char *type, size_t nl)
{
    const char *kname = intern_str(names, id);
    return strncmp(kname, type, nl) == 0 && kname[nl] == '.';
}

/*
 * A table indexed by a dense id (key, type), grown so that idx fits: to the
 * next power of two, the new entries' bytes set to `fill`.  Returns it.
 */
static void *table_room(void *p, size_t *n, size_t idx, size_t elem, int fill)
{
    if (idx < *n)
        return p;
    size_t m = *n ? *n : 16;
    while (m <= idx)
        m *= 2;
    p = xrealloc(p, m * elem);
    memset((char *)p + *n * elem, fill, (m - *n) * elem);
    *n = m;
    return p;
}

#define NS_UNKNOWN UINT32_MAX    /* table_room's 0xff bytes: not computed yet */
#define NS_NONE (UINT32_MAX - 1) /* a key with no dot: in no namespace */

/* The namespace id (in e->nsnames) of customer state key `id`, computed once per key. */
static uint32_t key_ns(struct engine *e, uint32_t id)
{
    e->keyns = table_room(e->keyns, &e->nkeyns, id, sizeof *e->keyns, 0xff);
    if (e->keyns[id] == NS_UNKNOWN) {
        const char *k = intern_str(&e->rules->keys, id);
        const char *dot = strchr(k, '.');
        e->keyns[id] = dot ? intern_id(&e->nsnames, k, (size_t)(dot - k)) : NS_NONE;
    }
    return e->keyns[id];
}

/* The namespace id of event type `type` (named `name`, namespace nl bytes), once per type. */
static uint32_t type_ns(struct engine *e, uint32_t type, const char *name, size_t nl)
{
    e->typens = table_room(e->typens, &e->ntypens, type, sizeof *e->typens, 0xff);
    if (e->typens[type] == NS_UNKNOWN)
        e->typens[type] = intern_id(&e->nsnames, name, nl);
    return e->typens[type];
}

/*
 * Collect ns.<path> for every scalar (or list of scalars) in obj, recursing
 * into nested objects with dotted names.  Keys are interned into `names`;
 * nothing is written to state here (map_state merges the list in one pass).
 */
static void set_fields(struct buf *name, struct intern *names, json_t *obj, struct keylist *touched)
{
    const char *k;
    json_t *v;
    size_t base = name->len;
    json_object_foreach(obj, k, v)
    {
        name->len = base;
        if (buf_putc(name, '.') || buf_puts(name, k)) {
            name->len = base; /* a key longer than the name cap is not state */
            continue;
        }
        if (json_is_object(v)) {
            set_fields(name, names, v, touched);
            continue;
        }
        touched->items =
            xgrow(touched->items, &touched->cap, touched->n + 1, sizeof *touched->items);
        touched->items[touched->n] = (struct keyset_item){
            .id = intern_id(names, name->data, name->len), .seq = (uint32_t)touched->n, .v = v};
        touched->n++;
    }
    name->len = base;
    if (name->data)
        name->data[base] = '\0';
}

/*
 * set_fields for the top level of a customer event's data, remembering per
 * event type the names of its fields in order and their key ids: producers
 * send one shape per type, so a field is usually known by one strcmp with
 * the name at its place last time, instead of building "ns.field" and
 * hashing it into the interner (callgrind: 3% of a replay's instructions).
 * A field that is an object, or a shape that changed, takes set_fields.
 */
static void set_fields_cached(struct engine *e, struct intern *names, json_t *obj, uint32_t type,
                              struct keylist *touched)
{
    e->shapes = table_room(e->shapes, &e->nshapes, type, sizeof *e->shapes, 0);
    struct shape *sh = &e->shapes[type];
    struct buf *name = &e->name;
    size_t base = name->len, i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (json_is_object(v)) {
            name->len = base;
            if (!buf_putc(name, '.') && !buf_puts(name, k))
                set_fields(name, names, v, touched);
            name->len = base;
            i++;
            continue;
        }
        uint32_t id;
        if (i < sh->n && sh->f[i].name && !strcmp(sh->f[i].name, k)) {
            id = sh->f[i].id;
        } else {
            name->len = base;
            if (buf_putc(name, '.') || buf_puts(name, k)) {
                name->len = base; /* a key longer than the name cap is not state */
                i++;
                continue;
            }
            id = intern_id(names, name->data, name->len);
            if (i >= sh->n) {
                sh->f = xgrow(sh->f, &sh->cap, i + 1, sizeof *sh->f);
                for (; sh->n <= i; sh->n++)
                    sh->f[sh->n] = (struct shape_field){0};
            }
            free(sh->f[i].name);
            sh->f[i] = (struct shape_field){.name = xstrdup(k), .id = id};
        }
        touched->items =
            xgrow(touched->items, &touched->cap, touched->n + 1, sizeof *touched->items);
        touched->items[touched->n] =
            (struct keyset_item){.id = id, .seq = (uint32_t)touched->n, .v = v};
        touched->n++;
        i++;
    }
    name->len = base;
    if (name->data)
        name->data[base] = '\0';
}

static int keyset_item_cmp(const void *a, const void *b)
{
    const struct keyset_item *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * The value an event gives a key: 1 with *out set (a list's items are a new
 * array the caller frees), 0 for null (the key is removed), -1 when it is no
 * state value (a list holding objects or lists: the key is left as absent).
 */
static int event_value(json_t *v, struct value *out)
{
    if (!json_is_array(v))
        return value__from_json(v, out) == 0 && out->type != VAL_NULL ? 1 : 0;
    size_t n = json_array_size(v);
    struct value *items = xmalloc((n ? n : 1) * sizeof *items);
    for (size_t i = 0; i < n; i++) {
        if (value__from_json(json_array_get(v, i), &items[i])) {
            free(items);
            return -1;
        }
    }
    out->type = VAL_LIST;
    out->u.list.items = items;
    out->u.list.n = n;
    return 1;
}

/*
 * Apply the default mapping to a state set: data fields become ns.<field>.
 * The customer namespace merges (customer.updated carries partial updates);
 * any other namespace is replaced by the event's data, so a field absent
 * from the latest event of that namespace is no longer current.
 *
 * Cost: the event's keys are sorted by id and merged with the (sorted) set
 * in one pass, O(k log k + n) for k keys in the event and n in the set.
 * Setting them one by one into the sorted array was quadratic (a 100,000-key
 * event took 1.7 s; issue 18).  A key keeps its `since` when its value is
 * unchanged.
 */
static void map_state(struct engine *e, struct kvset *set, struct intern *names,
                      const struct event *ev, int merge, uint32_t last_type)
{
    struct buf *name = &e->name;
    struct keylist *touched = &e->touched;
    buf_reset(name);
    touched->n = 0;
    size_t nl = ns_len(ev->type);
    buf_append(name, ev->type, nl);
    /* Customer keys know their namespace by id; the event's is looked up once. */
    int by_id = names == &e->rules->keys && last_type != UINT32_MAX;
    uint32_t tns = by_id ? type_ns(e, last_type, ev->type, nl) : NS_NONE;
    if (by_id)
        set_fields_cached(e, names, ev->data, last_type, touched);
    else
        set_fields(name, names, ev->data, touched);
    if (touched->n > 16) {
        qsort(touched->items, touched->n, sizeof *touched->items, keyset_item_cmp);
    } else {
        /* An event has a handful of fields: insertion sort, no calls (the order is total) */
        struct keyset_item *it = touched->items;
        for (size_t a = 1; a < touched->n; a++) {
            struct keyset_item x = it[a];
            size_t b = a;
            while (b > 0 &&
                   (it[b - 1].id > x.id || (it[b - 1].id == x.id && it[b - 1].seq > x.seq))) {
                it[b] = it[b - 1];
                b--;
            }
            it[b] = x;
        }
    }

    struct kvbuild *out = &e->build;
    uint32_t i = 0, nset = kvset__count(set);
    size_t t = 0;
    uint32_t okey = 0;
    /* Kept entries are copied in runs ([run, i) so far): one copy of their records. */
    uint32_t run = 0;
#define FLUSH() (kvbuild__keep_range(out, set, run, i), run = i)
    while (i < nset || t < touched->n) {
        int have_old = i < nset;
        if (have_old)
            okey = kvset__key(set, i); /* kept entries are copied as they are, undecoded */
        if (t < touched->n && (!have_old || touched->items[t].id <= okey)) {
            /* The event sets this key: the last of its names wins. */
            uint32_t id = touched->items[t].id;
            while (t + 1 < touched->n && touched->items[t + 1].id == id)
                t++;
            struct value val;
            int has = event_value(touched->items[t].v, &val);
            t++;
            int existed = have_old && okey == id;
            struct value ov;
            if (existed)
                kvset__at(set, i, &okey, &ov, NULL);
            int in_ns = by_id ? key_ns(e, id) == tns : same_ns_key(names, id, ev->type, nl);
            int keep = existed && ((has < 0 && (merge || !in_ns)) || /* not state, and not this
                                                                        namespace's to drop */
                                   (has > 0 && value__equal(&ov, &val))); /* same value: `since`
                                       keeps the time it was first taken */
            if (!keep) {
                FLUSH();
                if (has > 0)
                    kvbuild__add(out, id, &val, ev->time);
                /* else: null, or not state in a namespace the event replaces: dropped */
            }
            if (has > 0 && val.type == VAL_LIST)
                free((void *)val.u.list.items);
            if (existed)
                i++;
            if (!keep)
                run = i;
            continue;
        }
        /* A key the event does not name: replaced namespaces drop it. */
        if (!(merge || !(by_id ? key_ns(e, okey) == tns : same_ns_key(names, okey, ev->type, nl)))) {
            FLUSH();
            run = i + 1;
        }
        i++;
    }
    FLUSH();
#undef FLUSH
    kvbuild__copy_last(out, set, last_type, ev->time); /* last_type UINT32_MAX: none */
    kvbuild__finish(out, set);
}

static void note_class(struct engine *e, struct customer *c, uint32_t cls, int64_t at)
{
    int64_t keep = e->rules->class_window[cls];
    if (keep <= 0)
        return; /* no condition counts this class */
    struct window *w = NULL;
    uint32_t nw = c->win ? c->win->n : 0;
    for (uint32_t i = 0; i < nw; i++)
        if (c->win->w[i].cls == cls)
            w = &c->win->w[i];
    if (!w) {
        int future = c->win && c->win->future;
        c->win = slab_realloc(&e->slab, c->win, c->win ? win_size(nw) : 0, win_size(nw + 1));
        c->win->n = nw + 1;
        c->win->future = (uint8_t)future;
        w = &c->win->w[nw];
        memset(w, 0, sizeof *w);
        w->cls = cls;
    }
    /* Drop times that can no longer be inside any window. */
    int64_t horizon = (e->now > at ? e->now : at) - keep;
    uint32_t drop = 0;
    while (drop < w->n && w->times[drop] <= horizon)
        drop++;
    if (drop) {
        memmove(w->times, w->times + drop, (w->n - drop) * sizeof *w->times);
        w->n -= drop;
    }
    if (at <= horizon)
        return;
    if (w->n == w->cap) {
        uint32_t cap = w->cap ? w->cap * 2 : 4;
        w->times = slab_realloc(&e->slab, w->times, w->cap * sizeof *w->times, cap * sizeof *w->times);
        w->cap = cap;
    }
    if (at > e->now)
        c->win->future = 1; /* count() will not foresee it: see evaluate() */
    /* Insert in order; events almost always arrive in time order, so this is an append. */
    uint32_t i = w->n;
    while (i > 0 && w->times[i - 1] > at) {
        w->times[i] = w->times[i - 1];
        i--;
    }
    w->times[i] = at;
    w->n++;
}

static void note_entity(struct engine *e, struct customer *c, const struct rule_type *ti,
                        const struct event *ev)
{
    int32_t ent = ti->opens >= 0 ? ti->opens : ti->closes;
    const char *field = e->rules->entity_info[ent].id_field;
    json_t *idj = json_object_get(ev->data, field);
    char num[32];
    const char *id = json_string_value(idj);
    if (!id && json_is_integer(idj)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(idj));
        id = num;
    }
    if (!id)
        return;
    for (uint32_t i = 0; i < c->nopen; i++) {
        if (c->open[i].entity == (uint32_t)ent && !strcmp(c->open[i].id, id)) {
            if (ti->closes >= 0) {
                slab_free(&e->slab, c->open[i].id, strlen(c->open[i].id) + 1);
                c->open[i] = c->open[--c->nopen];
                c->open = slab_realloc(&e->slab, c->open, (c->nopen + 1) * sizeof *c->open,
                                       c->nopen * sizeof *c->open);
            }
            return;
        }
    }
    if (ti->opens < 0)
        return;
    c->open = slab_realloc(&e->slab, c->open, c->nopen * sizeof *c->open,
                           (c->nopen + 1) * sizeof *c->open);
    c->open[c->nopen].entity = (uint32_t)ent;
    c->open[c->nopen++].id = slab_strdup(&e->slab, id);
}

/*
 * Insert the global event ev, effective from `at`, at position pos of the
 * history (its state is left empty for the caller to fill).  Returns the
 * position it took: one less when the oldest entry had to go.
 */
static size_t ghist_push(struct engine *e, int64_t at, const struct event *ev, size_t pos)
{
    if (e->nghist == GHIST_MAX) {
        struct gsnap *g = &e->ghist[0];
        free(g->type);
        json_decref(g->data);
        kvset__cleanup(&g->state, &e->slab);
        memmove(e->ghist, e->ghist + 1, (e->nghist - 1) * sizeof *e->ghist);
        e->nghist--;
        e->ghist_dropped = 1;
        pos = pos ? pos - 1 : 0;
    }
    e->ghist = xgrow(e->ghist, &e->capghist, e->nghist + 1, sizeof *e->ghist);
    memmove(e->ghist + pos + 1, e->ghist + pos, (e->nghist - pos) * sizeof *e->ghist);
    e->nghist++;
    struct gsnap *g = &e->ghist[pos];
    g->at = at;
    g->type = xstrdup(ev->type);
    g->time = ev->time;
    /* A copy, not a reference: the event may belong to another thread (replay's reader, or
       every partition at once), and reference counts are not to be shared across threads. */
    g->data = ev->data ? json_deep_copy(ev->data) : NULL;
    memset(&g->state, 0, sizeof g->state);
    return pos;
}

/* Fold the history again from pos on: each snapshot is the one before it plus its event. */
static void ghist_refold(struct engine *e, size_t pos)
{
    for (size_t i = pos; i < e->nghist; i++) {
        struct gsnap *g = &e->ghist[i];
        kvset__cleanup(&g->state, &e->slab);
        if (i)
            kvset__copy(&g->state, &e->ghist[i - 1].state, &e->slab);
        else
            memset(&g->state, 0, sizeof g->state); /* before it: unknown, taken as empty */
        struct event gev = {.type = g->type, .time = g->time, .data = g->data};
        map_state(e, &g->state, &e->rules->globals, &gev, 0, UINT32_MAX);
    }
    kvset__cleanup(&e->global, &e->slab);
    kvset__copy(&e->global, &e->ghist[e->nghist - 1].state, &e->slab);
}

/* A global event at the clock: every customer's signals that read global state, in insertion order. */
static void apply_global(struct engine *e, const struct event *ev)
{
    map_state(e, &e->global, &e->rules->globals, ev, 0, UINT32_MAX);
    e->gver++;
    size_t pos = ghist_push(e, e->now, ev, e->nghist);
    kvset__copy(&e->ghist[pos].state, &e->global, &e->slab);
    if (!e->nglobal_signals)
        return;
    struct expr_env env;
    e->waking = 1; /* not the customer's own event: a later one dated before it undoes it */
    for (size_t i = 0; i < e->customers.len; i++) {
        struct customer *c = e->customers.entries[i].value;
        if (e->trace.begin)
            e->trace.begin(e->trace.ctx, (uint32_t)i, FW_TIME_NONE);
        struct evalctx x = {.e = e, .c = c, .ev = ev};
        env_init(&env, &x);
        int64_t next = FW_TIME_MAX;
        for (size_t k = 0; k < e->nglobal_signals; k++) {
            int64_t n = eval_signal(e, c, &env, e->global_signals[k]);
            if (n < next)
                next = n;
        }
        rearm(e, c, next, 1);
    }
    e->waking = 0;
}

/*
 * Which signals an event of a type can change, as a row of nsignals bytes
 * (1: re-evaluate), built when the type is first applied.  An event
 * changes only the state keys of its namespace, the last time of its type,
 * the counts of its classes and the entities it opens or closes.
 */
static const uint8_t *type_affects(struct engine *e, uint32_t type, const char *name,
                                   const struct rule_type *ti)
{
    if (type >= e->naffects) {
        size_t n = e->naffects ? e->naffects : 16;
        while (n <= type)
            n *= 2;
        e->affects = xrealloc(e->affects, n * (e->nsignals ? e->nsignals : 1));
        e->affects_known = xrealloc(e->affects_known, n);
        memset(e->affects_known + e->naffects, 0, n - e->naffects);
        e->naffects = n;
    }
    uint8_t *row = e->affects + (size_t)type * e->nsignals;
    if (e->affects_known[type])
        return row;
    size_t nl = ns_len(name);
    for (size_t s = 0; s < e->nsignals; s++) {
        size_t ndeps;
        const struct expr_dep *d = expr_deps(e->rules->signals[s].cond, &ndeps);
        row[s] = 0;
        for (size_t k = 0; k < ndeps && !row[s]; k++) {
            const char *key;
            switch (d[k].kind) {
            case EXPR_REF_STATE:
                key = intern_str(&e->rules->keys, d[k].id);
                row[s] = !strncmp(key, name, nl) && key[nl] == '.';
                break;
            case EXPR_REF_TYPE: row[s] = d[k].id == type; break;
            case EXPR_REF_CLASS:
                for (size_t i = 0; i < ti->nclasses; i++)
                    row[s] |= ti->classes[i] == d[k].id;
                break;
            case EXPR_REF_ENTITY:
                row[s] = (ti->opens >= 0 && (uint32_t)ti->opens == d[k].id) ||
                         (ti->closes >= 0 && (uint32_t)ti->closes == d[k].id);
                break;
            case EXPR_REF_GLOBAL: break; /* only global events change it: apply_global */
            case EXPR_REF_METRIC:
            case EXPR_REF_FEATURE:
            case EXPR_REF_ENGAGE: row[s] = engage__type(name); break;
            }
        }
    }
    e->affects_known[type] = 1;
    return row;
}

/*
 * Events about our own work rather than the customer's journey: delivery
 * outcomes and a person's case actions.  They happen now, whatever history
 * is still arriving, so they never move the customer's floor.
 */
static int is_outcome(const char *type)
{
    return (!strncmp(type, "message.", 8) &&
            (!strcmp(type + 8, "sent") || !strcmp(type + 8, "failed"))) ||
           !strncmp(type, "case.", 5);
}

/* State, last times, windows and entities take the event; then its pass of evaluations. */
static void apply_customer(struct engine *e, struct customer *c, const struct event *ev,
                           uint32_t type, const struct rule_type *ti)
{
    int is_customer_ns = ns_len(ev->type) == 8 && !strncmp(ev->type, "customer", 8);
    c->ver++; /* whatever it changes, a cached churn score is stale */
    int watched = incidents_watches(&e->incidents, ev->type);
    if (watched)
        incidents_before_change(&e->incidents, e->rules, &c->state);
    /* Our own events (delivery outcomes, a person's case actions) say what happened on our
       side, nothing about the journey: they count for last() and classes, and leave the
       customer's state alone. */
    /* The event's time is noted in last-seen by the same rebuild of the state block. */
    if (!is_outcome(ev->type))
        map_state(e, &c->state, &e->rules->keys, ev, is_customer_ns, type);
    else
        kvset__note_last(&c->state, &e->build, type, ev->time);
    if (watched && e->trace.begin) /* a partition: the moves go to the merger */
        incidents_moved(&e->incidents, &c->state, e->trace.factor, e->trace.ctx);
    else if (watched)
        incidents_after_change(&e->incidents, e->rules, &c->state);
    for (size_t i = 0; i < ti->nclasses; i++)
        note_class(e, c, ti->classes[i], ev->time);
    if (ti->opens >= 0 || ti->closes >= 0)
        note_entity(e, c, ti, ev);
    if (e->rules->engage && engage__type(ev->type))
        engage__apply(&c->eng, e->rules, ev);
    evaluate(e, c, ev, type_affects(e, type, ev->type, ti));
}

static int trans_eq(const struct trans *a, const struct trans *b)
{
    return a->sig == b->sig && a->firing == b->firing && a->at == b->at &&
           a->fired_at == b->fired_at;
}

/*
 * Report the difference between what a customer's catch-up found (e->col)
 * and what it had reported after the catch-up's start (old[0..nold)): the
 * transitions found again are left as they are, the others are retracted
 * (latest first) or reported (in time order).  Incidents hear the net
 * change of each systemic signal, at the clock: they judge what is true
 * now, and a pattern that came and went in the past pages nobody.
 * Returns whether anything was reported.
 */
static int report_difference(struct engine *e, struct customer *c, const struct trans *old,
                             size_t nold)
{
    int any = 0;
    /* Nothing to undo (the usual case: a live event a few ms late): everything found is new. */
    uint8_t *seen_new = nold && e->ncol ? xcalloc(e->ncol, 1) : NULL;
    uint8_t *seen_old = seen_new ? xcalloc(nold, 1) : NULL;
    for (size_t i = 0; i < nold && seen_new; i++)
        for (size_t j = 0; j < e->ncol; j++)
            if (!seen_new[j] && trans_eq(&old[i], &e->col[j])) {
                seen_old[i] = seen_new[j] = 1;
                break;
            }
    for (size_t i = nold; i-- > 0;) {
        if (seen_new && seen_old[i])
            continue;
        struct detection d = {.signal = &e->rules->signals[old[i].sig], .customer = c->key,
                              .firing = old[i].firing, .at = old[i].at,
                              .fired_at = old[i].fired_at};
        e->stats.retracted++;
        any = 1;
        if (e->sink.retract)
            e->sink.retract(e->sink.ctx, &d);
    }
    for (size_t j = 0; j < e->ncol; j++)
        if (!seen_new || !seen_new[j]) {
            emit_detection(e, c, e->col[j].sig, e->col[j].firing, e->col[j].at,
                           e->col[j].fired_at);
            any = 1;
        }
    for (size_t s = 0; s < e->nsignals; s++) {
        const struct rule_signal *sig = &e->rules->signals[s];
        int was = e->before[s] != FW_TIME_NONE, is = fired_at_of(c, s) != FW_TIME_NONE;
        if (sig->systemic && was != is)
            systemic(e, c, s, is);
    }
    free(seen_old);
    free(seen_new);
    return any;
}

/* The first global change after t, or FW_TIME_MAX. */
static int64_t next_global_change(const struct engine *e, int64_t t)
{
    for (size_t i = 0; i < e->nghist; i++)
        if (e->ghist[i].at > t)
            return e->ghist[i].at;
    return FW_TIME_MAX;
}

static void force_global(struct engine *e, struct customer *c)
{
    for (size_t k = 0; k < e->nglobal_signals; k++)
        set_unstable(e, c, e->global_signals[k]);
}

/*
 * Judge a customer again from time t (before now), as replay would have:
 * undo its transitions at or after t that did not come from its own
 * events, apply ev as of t (NULL: a global event dated t changed what its
 * signals read), then fire its wake-ups and the global changes due up to
 * now at their instants, and report what changed.  Wake-ups due at exactly
 * t came after any event at t (engine_prepare), so they are undone too;
 * those due at exactly now stay armed for the clock.  Returns whether
 * anything was reported.
 */
static int catch_up(struct engine *e, struct customer *c, int64_t t, const struct event *ev,
                    uint32_t type, const struct rule_type *ti)
{
    int64_t now = e->now;
    for (size_t s = 0; s < e->nsignals; s++)
        e->before[s] = fired_at_of(c, s);
    uint32_t k = 0;
    while (k < c->nproj && c->proj[k].at < t)
        k++;
    struct trans *keep = c->proj, *old = c->proj ? c->proj + k : NULL; /* none kept: NULL */
    size_t nold = c->nproj - k, keep_bytes = proj__cap(c->nproj) * sizeof *c->proj;
    for (size_t i = nold; i-- > 0;)
        set_fired_at(e, c, old[i].sig, old[i].firing ? FW_TIME_NONE : old[i].fired_at);
    c->ver++;
    if (nold)
        for (size_t s = 0; s < e->nsignals; s++)
            set_unstable(e, c, s); /* evaluated at later times: judge again */
    c->proj = NULL;
    c->nproj = 0;
    if (ev)
        c->floor = t; /* an event: what came before it stands */
    else
        for (uint32_t i = 0; i < k; i++)
            proj_push(e, c, &keep[i]);

    e->collecting = 1;
    e->ncol = 0;
    e->now = t;
    if (ev) {
        apply_customer(e, c, ev, type, ti);
    } else {
        force_global(e, c);
        e->waking = 1;
        evaluate(e, c, NULL, NULL);
        e->waking = 0;
    }
    for (;;) {
        /* Wake-ups due before now (at now they wait for the clock); global changes up to now. */
        int64_t due = tw_armed(&c->timer) ? c->timer.due : FW_TIME_MAX;
        int64_t g = next_global_change(e, e->now);
        if (due <= e->now || due >= now)
            due = FW_TIME_MAX;
        if (g > now)
            g = FW_TIME_MAX;
        if (due == FW_TIME_MAX && g == FW_TIME_MAX)
            break;
        if (g <= due) {
            e->now = g;
            force_global(e, c);
        } else {
            e->now = due;
            e->stats.wakeups++;
        }
        e->waking = 1;
        evaluate(e, c, NULL, NULL);
        e->waking = 0;
    }
    e->now = now;
    e->collecting = 0;
    if (tw_armed(&c->timer) && c->timer.due < now)
        tw_arm(e->wheel, &c->timer, now); /* cannot happen: an evaluation never looks back */
    for (size_t j = 0; j < e->ncol; j++)
        if (e->col[j].waking)
            proj_push(e, c, &e->col[j]);
    if (c->nproj > PROJ_MAX) {
        /* Too much to undo: the oldest become final, and nothing before them is judged again. */
        uint32_t drop = c->nproj - PROJ_MAX;
        if (c->proj[drop - 1].at + 1 > c->floor)
            c->floor = c->proj[drop - 1].at + 1;
        memmove(c->proj, c->proj + drop, PROJ_MAX * sizeof *c->proj);
        c->proj = slab_realloc(&e->slab, c->proj, proj__cap(c->nproj) * sizeof *c->proj,
                               proj__cap(PROJ_MAX) * sizeof *c->proj);
        c->nproj = PROJ_MAX;
    }
    int any = report_difference(e, c, old, nold);
    slab_free(&e->slab, keep, keep_bytes);
    return any;
}

/*
 * A global event dated before the clock: it takes its place in the global
 * history, and every customer whose signals read global state is judged
 * again from its time (from the customer's latest event, when that is
 * later: what came before stands).
 */
static void apply_global_late(struct engine *e, const struct event *ev)
{
    size_t pos = e->nghist;
    while (pos > 0 && e->ghist[pos - 1].at > ev->time)
        pos--;
    ghist_refold(e, ghist_push(e, ev->time, ev, pos));
    e->gver++;
    if (!e->nglobal_signals)
        return;
    for (size_t i = 0; i < e->customers.len; i++) {
        struct customer *c = e->customers.entries[i].value;
        if (e->trace.begin)
            e->trace.begin(e->trace.ctx, (uint32_t)i, FW_TIME_NONE);
        int64_t t = ev->time > c->floor ? ev->time : c->floor;
        if (t >= e->now) {
            /* Its latest event is at the clock or later: judged now, as at the clock. */
            force_global(e, c);
            e->waking = 1;
            evaluate(e, c, NULL, NULL);
            e->waking = 0;
        } else if (catch_up(e, c, t, NULL, 0, NULL) && e->sink.step) {
            e->sink.step(e->sink.ctx, NULL, c->key);
        }
    }
}

/*
 * Outcomes forewarn reports about its own messages (message.sent,
 * message.failed: dated when they happen) say nothing about the journey, so
 * they are applied at the clock and leave the customer's floor alone: a
 * customer's history still arriving (a backfill) is not made out of order
 * by our own delivery report in the middle of it.
 */
void engine_apply(struct engine *e, const struct event *ev)
{
    uint32_t type = rules_type_id(e->rules, ev->type, strlen(ev->type));
    const struct rule_type *ti = rules_type(e->rules, type);
    e->stats.events++;
    if (!ev->subject || ti->global) {
        if (ev->time < e->now) {
            e->stats.late++;
            apply_global_late(e, ev);
        } else {
            apply_global(e, ev);
        }
        e->stats.incidents = e->incidents.opened;
        if (e->sink.step)
            e->sink.step(e->sink.ctx, ev, NULL);
        return;
    }
    struct customer *c = customer_get(e, ev->subject);
    if (is_outcome(ev->type)) {
        apply_customer(e, c, ev, type, ti); /* at the clock, and the floor stays */
    } else if (ev->time < e->now && ev->time >= c->floor) {
        e->stats.late++;
        catch_up(e, c, ev->time, ev, type, ti);
    } else {
        apply_customer(e, c, ev, type, ti);
        c->floor = e->now; /* applied now: nothing before now is judged again */
        proj_clear(e, c);
    }
    e->stats.incidents = e->incidents.opened;
    if (e->sink.step)
        e->sink.step(e->sink.ctx, ev, c->key);
}

void engine_timer_arm(struct engine *e, struct engine_timer *t, int64_t due)
{
    tw_arm(e->wheel, &t->_tw, due);
    if (e->trace.timer_armed)
        e->trace.timer_armed(e->trace.ctx, t);
}

void engine_timer_cancel(struct engine *e, struct engine_timer *t)
{
    tw_cancel(e->wheel, &t->_tw);
}

int64_t engine_count(const struct engine *e, const char *customer, const char *cls, int64_t window)
{
    struct strmap_entry *me = strmap_find(&e->customers, customer, strlen(customer));
    int64_t id = intern_lookup(&e->rules->classes, cls, strlen(cls));
    if (!me || id < 0)
        return 0;
    struct evalctx x = {.e = (struct engine *)e, .c = me->value};
    int64_t oldest;
    return env_count(&x, (uint32_t)id, e->now - window, &oldest);
}

int engine_health(const struct engine *e, const char *customer, double *score,
                  const char **weakest)
{
    struct strmap_entry *me = strmap_find(&e->customers, customer, strlen(customer));
    if (!me || !e->rules->engage)
        return FW_ENOTFOUND;
    struct health_result h;
    int64_t next;
    health_of((struct engine *)e, me->value, &h, &next);
    *score = h.score;
    *weakest = NULL;
    double lost = 0;
    for (int i = 0; i < HEALTH_N; i++) {
        double l = h.parts[i].weight - h.parts[i].contribution; /* weight: points of 100 */
        if (l > lost + 1e-9) {
            lost = l;
            *weakest = h.parts[i].name;
        }
    }
    return 0;
}

static json_t *time_str(int64_t t)
{
    char s[FW_TIME_MAXLEN];
    fw_time_format(t, s);
    return json_string(s);
}

json_t *engine_customer_object(const struct engine *e, const char *key)
{
    struct strmap_entry *me = strmap_find(&e->customers, key, strlen(key));
    if (!me)
        return NULL;
    const struct customer *c = me->value;
    const struct rules *r = e->rules;
    json_t *o = json_object(), *state = json_object(), *last = json_object();
    json_t *open = json_array(), *active = json_array();
    json_object_set_new(o, "id", json_string(c->key));
    for (uint32_t i = 0; i < kvset__count(&c->state); i++) {
        uint32_t id;
        struct value v;
        int64_t since;
        kvset__at(&c->state, i, &id, &v, &since);
        json_object_set_new(state, intern_str(&r->keys, id),
                            json_pack("{s:o, s:o}", "value", value__to_jansson(&v), "since",
                                      time_str(since)));
    }
    for (uint32_t i = 0; i < kvset__nlast(&c->state); i++) {
        uint32_t type;
        int64_t at;
        kvset__last_at(&c->state, i, &type, &at);
        json_object_set_new(last, intern_str(&r->types, type), time_str(at));
    }
    for (uint32_t i = 0; i < c->nopen; i++)
        json_array_append_new(open, json_pack("{s:s, s:s}", "entity",
                                              intern_str(&r->entities, c->open[i].entity), "id",
                                              c->open[i].id));
    for (size_t s = 0; s < e->nsignals; s++)
        if (fired_at_of(c, s) != FW_TIME_NONE)
            json_array_append_new(active, json_pack("{s:s, s:s, s:s, s:o}", "signal",
                                                    r->signals[s].id, "name", r->signals[s].name,
                                                    "severity",
                                                    severity_name(r->signals[s].severity),
                                                    "fired_at", time_str(fired_at_of(c, s))));
    json_object_set_new(o, "state", state);
    json_object_set_new(o, "last_event", last);
    json_object_set_new(o, "open", open);
    json_object_set_new(o, "active_detections", active);
    if (r->engage) {
        struct health_result h;
        int64_t next;
        health_of((struct engine *)e, (struct customer *)c, &h, &next);
        json_object_set_new(o, "engagement", engage__json(c->eng, r, e->now));
        json_object_set_new(o, "health", engage__health_json(&h));
    }
    return o;
}

json_t *engine_customer_view(const struct engine *e, const char *key)
{
    struct strmap_entry *me = strmap_find(&e->customers, key, strlen(key));
    if (!me)
        return NULL;
    const struct customer *c = me->value;
    const struct rules *r = e->rules;
    /* Keys are interned rule names and values came through the JSON parser:
       valid UTF-8 already, so the setters skip jansson's check. */
    json_t *o = json_object(), *state = json_object(), *last = json_object();
    json_t *open = json_array(), *active = json_array();
    for (uint32_t i = 0; i < kvset__count(&c->state); i++) {
        uint32_t id;
        struct value v;
        kvset__at(&c->state, i, &id, &v, NULL);
        json_object_set_new_nocheck(state, intern_str(&r->keys, id), value__to_jansson(&v));
    }
    for (uint32_t i = 0; i < kvset__nlast(&c->state); i++) {
        uint32_t type;
        int64_t at;
        kvset__last_at(&c->state, i, &type, &at);
        json_object_set_new_nocheck(last, intern_str(&r->types, type), json_integer(at));
    }
    for (uint32_t i = 0; i < c->nopen; i++) {
        json_t *x = json_object();
        json_object_set_new_nocheck(x, "entity",
                                    json_string_nocheck(intern_str(&r->entities, c->open[i].entity)));
        json_object_set_new_nocheck(x, "id", json_string_nocheck(c->open[i].id));
        json_array_append_new(open, x);
    }
    for (size_t s = 0; s < e->nsignals; s++)
        if (fired_at_of(c, s) != FW_TIME_NONE) {
            json_t *x = json_object();
            json_object_set_new_nocheck(x, "signal", json_string_nocheck(r->signals[s].id));
            json_array_append_new(active, x);
        }
    json_object_set_new_nocheck(o, "state", state);
    json_object_set_new_nocheck(o, "last_event", last);
    json_object_set_new_nocheck(o, "open", open);
    json_object_set_new_nocheck(o, "active_detections", active);
    return o;
}

json_t *engine_global_object(const struct engine *e)
{
    json_t *o = json_object();
    for (uint32_t i = 0; i < kvset__count(&e->global); i++) {
        uint32_t key;
        struct value v;
        kvset__at(&e->global, i, &key, &v, NULL);
        json_object_set_new(o, intern_str(&e->rules->globals, key), value__to_jansson(&v));
    }
    return o;
}

int engine_global_json(const struct engine *e, struct buf *out)
{
    buf_putc(out, '{');
    for (uint32_t i = 0; i < kvset__count(&e->global); i++) {
        uint32_t key;
        struct value v;
        kvset__at(&e->global, i, &key, &v, NULL);
        const char *name = intern_str(&e->rules->globals, key);
        if (i)
            buf_putc(out, ',');
        buf_json_str(out, name, strlen(name));
        buf_putc(out, ':');
        value__json(&v, out);
    }
    buf_putc(out, '}');
    return 0;
}

const struct rules *engine_rules(const struct engine *e)
{
    return e->rules;
}

int engine_compile(struct engine *e, const char *src, size_t len, struct expr **out,
                   struct expr_error *err)
{
    return rules_compile(e->rules, src, len, out, err);
}

int engine_test(struct engine *e, const char *customer, const struct expr *x, int64_t *next)
{
    struct strmap_entry *me = strmap_find(&e->customers, customer, strlen(customer));
    if (next)
        *next = FW_TIME_MAX;
    if (!me)
        return 0;
    struct evalctx ec = {.e = e, .c = me->value};
    struct expr_env env;
    env_init(&env, &ec);
    return expr_test(x, &env, next);
}

size_t engine_customer_index(const struct engine *e, const char *customer)
{
    const struct strmap_entry *me = strmap_find(&e->customers, customer, strlen(customer));
    return me ? (size_t)(me - e->customers.entries) : SIZE_MAX;
}

const char *engine_customer_key(const struct engine *e, size_t i)
{
    return i < e->customers.len ? e->customers.entries[i].key : NULL;
}

void engine_prepare(struct engine *e, int64_t t)
{
    if (t > e->now) {
        engine_advance(e, t - 1);
        e->now = t;
    }
}

void engine_advance(struct engine *e, int64_t t)
{
    struct tw_entry *te;
    while ((te = tw_pop(e->wheel, t))) {
        if (te->due > e->now)
            e->now = te->due;
        struct engine_timer *et = (struct engine_timer *)te;
        if (et->fire) {
            if (e->trace.timer_begin)
                e->trace.timer_begin(e->trace.ctx, et, te->due);
            et->fire(et, te->due);
            continue;
        }
        struct customer *c = (struct customer *)te;
        if (e->trace.begin)
            e->trace.begin(e->trace.ctx, customer_index(e, c), te->due);
        e->stats.wakeups++;
        e->waking = 1;
        evaluate(e, c, NULL, NULL);
        e->waking = 0;
        if (e->sink.step)
            e->sink.step(e->sink.ctx, NULL, c->key);
    }
    if (t > e->now)
        e->now = t;
    e->stats.incidents = e->incidents.opened;
}

/* ---- lifecycle and queries ---- */

struct engine *engine_new(struct rules *rules, int64_t now, const struct engine_sink *sink)
{
    struct engine *e = xcalloc(1, sizeof *e);
    e->rules = rules;
    if (sink)
        e->sink = *sink;
    e->now = now;
    slab_init(&e->slab);
    kvbuild__init(&e->build, &e->slab, &e->layouts);
    e->wheel = tw_new(now);
    e->nsignals = rules->nsignals;
    strmap_init(&e->customers);
    intern_init(&e->nsnames);
    e->stats.fired = xcalloc(e->nsignals + 1, sizeof *e->stats.fired);
    e->stats.resolved = xcalloc(e->nsignals + 1, sizeof *e->stats.resolved);
    e->global_signals = xcalloc(e->nsignals + 1, sizeof *e->global_signals);
    e->sig_flags = xcalloc(e->nsignals + 1, sizeof *e->sig_flags);
    for (size_t s = 0; s < e->nsignals; s++) {
        const struct expr *cond = rules->signals[s].cond;
        size_t ndeps;
        const struct expr_dep *d = expr_deps(cond, &ndeps);
        if (rules->signals[s].uses_global)
            e->global_signals[e->nglobal_signals++] = s;
        if (expr_reads_event(cond))
            e->sig_flags[s] |= SIG_READS_EVENT;
        for (size_t k = 0; k < ndeps; k++) {
            if (d[k].kind == EXPR_REF_CLASS)
                e->sig_flags[s] |= SIG_COUNTS;
            if (d[k].kind == EXPR_REF_ENGAGE && d[k].id == 1)
                e->sig_flags[s] |= SIG_HEALTH;
            if (d[k].kind == EXPR_REF_ENGAGE && d[k].id == 2)
                e->sig_flags[s] |= SIG_CHURN;
        }
    }
    engine_set_health(e, &engine_health_default);
    incidents_init(&e->incidents, rules);
    e->before = xcalloc(e->nsignals + 1, sizeof *e->before);
    buf_init(&e->name, 1024); /* a longer key name is not state */
    buf_init(&e->churn_scratch, 64 << 10); /* a longer string feature is missing */
    buf_init(&e->churn_cells, 0);
    return e;
}

void engine_set_churn(struct engine *e, const struct engine_churn *c)
{
    free(e->churn_vals);
    memset(&e->churn, 0, sizeof e->churn);
    e->churn_vals = NULL;
    if (!c || !c->score)
        return;
    e->churn = *c;
    e->churn_vals = xcalloc(c->n + 1, sizeof *e->churn_vals);
}

int engine_churn(const struct engine *e, const char *customer, double *score,
                 const struct engine_churn **model, const char **cells)
{
    if (model)
        *model = e->churn.score ? &e->churn : NULL;
    struct strmap_entry *me = strmap_find(&e->customers, customer, strlen(customer));
    if (!me || !e->churn.score)
        return FW_ENOTFOUND;
    int64_t next;
    /* The cache is the engine's: callers hold the engine's lock, as for engine_health. */
    return churn_of((struct engine *)e, me->value, score, &next, cells);
}

void engine_set_trace(struct engine *e, const struct engine_trace *t)
{
    e->trace = *t;
}

void engine_set_health(struct engine *e, const struct engine_health *h)
{
    struct rules *r = e->rules;
    e->health = *h;
    const char *cls = h->contact_class ? h->contact_class : "touch";
    const char *key = h->sentiment_key ? h->sentiment_key : "sentiment.score";
    e->health_metric = h->metric ? intern_lookup(&r->metrics, h->metric, strlen(h->metric))
                       : intern_count(&r->metrics) ? 0
                                                   : -1;
    e->health_class = intern_lookup(&r->classes, cls, strlen(cls));
    e->health_sentiment = intern_id(&r->keys, key, strlen(key));
    e->health_payfail = rules_type_id(r, "payment.failed", 14);
    /* The score counts contacts over 30 days: keep that much of the class. */
    if (r->engage && e->health_class >= 0 && r->class_window[e->health_class] < HEALTH_WINDOW)
        r->class_window[e->health_class] = HEALTH_WINDOW;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->customers.len; i++)
        customer_free(e, e->customers.entries[i].value);
    strmap_cleanup(&e->customers);
    kvset__cleanup(&e->global, &e->slab);
    kvbuild__cleanup(&e->build);
    incidents_cleanup(&e->incidents);
    tw_free(e->wheel);
    free(e->stats.fired);
    free(e->stats.resolved);
    free(e->global_signals);
    free(e->sig_flags);
    free(e->affects);
    free(e->affects_known);
    for (size_t t = 0; t < e->nshapes; t++) {
        for (size_t i = 0; i < e->shapes[t].n; i++)
            free(e->shapes[t].f[i].name);
        free(e->shapes[t].f);
    }
    free(e->shapes);
    free(e->keyns);
    free(e->typens);
    intern_cleanup(&e->nsnames);
    buf_cleanup(&e->name);
    buf_cleanup(&e->churn_scratch);
    buf_cleanup(&e->churn_cells);
    free(e->churn_vals);
    free(e->touched.items);
    free(e->col);
    free(e->before);
    for (size_t i = 0; i < e->nghist; i++) {
        free(e->ghist[i].type);
        json_decref(e->ghist[i].data);
        kvset__cleanup(&e->ghist[i].state, &e->slab);
    }
    free(e->ghist);
    engine__snap_cleanup(e);
    kvlayouts__cleanup(&e->layouts); /* after every block that points at one */
    slab_cleanup(&e->slab);
    free(e);
}

int64_t engine_now(const struct engine *e)
{
    return e->now;
}

int64_t engine_next_wakeup(const struct engine *e)
{
    return tw_next(e->wheel);
}

size_t engine_pending_timers(const struct engine *e)
{
    return tw_count(e->wheel);
}

size_t engine_customer_count(const struct engine *e)
{
    return e->customers.len;
}

const struct engine_stats *engine_stats(const struct engine *e)
{
    return &e->stats;
}

size_t engine_state_bytes(const struct engine *e)
{
    size_t bytes = e->customers.cap * sizeof(struct strmap_entry) +
                   e->customers.nslots * sizeof(uint64_t) + e->layouts.bytes +
                   e->layouts.nslots * sizeof *e->layouts.slots;
    for (size_t i = 0; i < e->customers.len; i++) {
        const struct customer *c = e->customers.entries[i].value;
        bytes += sizeof *c + e->customers.entries[i].klen + 1 + c->nsigt * sizeof *c->sigt;
        bytes += kvset__bytes(&c->state); /* its keys and last-seen times */
        if (c->win) {
            bytes += sizeof *c->win + c->win->n * sizeof *c->win->w;
            for (uint32_t w = 0; w < c->win->n; w++)
                bytes += c->win->w[w].cap * sizeof(int64_t);
        }
        bytes += c->nopen * sizeof(struct open_entity) + proj__cap(c->nproj) * sizeof(struct trans);
        bytes += engage__bytes(c->eng, e->rules);
    }
    return bytes;
}

void engine_memory(const struct engine *e, struct engine_memory *out)
{
    out->slab_used = e->slab.used;
    out->slab_free = e->slab.free_bytes;
    out->slab_chunks = e->slab.chunk_bytes;
    out->map = e->customers.cap * sizeof(struct strmap_entry) +
               e->customers.nslots * sizeof(uint64_t);
    for (size_t i = 0; i < e->customers.len; i++)
        out->map += e->customers.entries[i].klen + 1; /* the subjects, in its key arena */
}

int engine_customer_json(const struct engine *e, const char *key, struct buf *out)
{
    json_t *o = engine_customer_object(e, key);
    if (!o)
        return FW_ENOTFOUND;
    const struct customer *c = strmap_find(&e->customers, key, strlen(key))->value;
    if (tw_armed(&c->timer)) {
        char t[FW_TIME_MAXLEN];
        fw_time_format(c->timer.due, t);
        json_object_set_new(o, "next_wakeup", json_string(t));
    } else {
        json_object_set_new(o, "next_wakeup", json_null());
    }
    char *text = fw_json_dumps(o);
    buf_puts(out, text);
    free(text);
    json_decref(o);
    return 0;
}

void detection_json(const struct detection *d, struct buf *out)
{
    const struct rule_signal *s = d->signal;
    /* Pieces rather than buf_printf: this runs for every transition. */
    buf_puts(out, d->firing ? "{\"kind\":\"detection\",\"state\":\"firing\",\"signal\":"
                            : "{\"kind\":\"detection\",\"state\":\"resolved\",\"signal\":");
    buf_json_str(out, s->id, strlen(s->id));
    buf_puts(out, ",\"customer\":");
    buf_json_str(out, d->customer, strlen(d->customer));
    buf_puts(out, ",\"severity\":\"");
    buf_puts(out, severity_name(s->severity));
    buf_puts(out, "\",\"at\":");
    buf_json_time(out, d->at);
    buf_puts(out, ",\"fired_at\":");
    buf_json_time(out, d->fired_at);
    buf_puts(out, ",\"name\":");
    buf_json_str(out, s->name, strlen(s->name));
    if (s->team) {
        buf_puts(out, ",\"team\":");
        buf_json_str(out, s->team, strlen(s->team));
    }
    if (s->root_cause) {
        buf_puts(out, ",\"root_cause\":");
        buf_json_str(out, s->root_cause, strlen(s->root_cause));
    }
    buf_putc(out, '}');
}

void incident_json(const struct incident *i, int full, struct buf *out)
{
    const struct rule_signal *s = i->signal;
    buf_printf(out, "{\"kind\":\"incident\",\"id\":%llu,\"update\":\"%s\",\"state\":\"%s\",\"signal\":",
               (unsigned long long)i->id, i->update,
               strcmp(i->update, "resolved") ? "open" : "resolved");
    buf_json_str(out, s->id, strlen(s->id));
    buf_printf(out, ",\"severity\":\"%s\",\"customers\":[", severity_name(s->severity));
    if (i->added && !full) {
        buf_json_str(out, i->added, strlen(i->added));
    } else {
        for (size_t k = 0; k < i->ncustomers; k++) {
            if (k)
                buf_putc(out, ',');
            buf_json_str(out, i->customers[k], strlen(i->customers[k]));
        }
    }
    buf_printf(out, "],\"customer_count\":%zu,\"at\":", i->ncustomers);
    buf_json_time(out, i->at);
    buf_puts(out, ",\"opened_at\":");
    buf_json_time(out, i->opened_at);
    buf_puts(out, ",\"common_factor\":");
    if (i->factor_key) {
        buf_puts(out, "{\"key\":");
        buf_json_str(out, i->factor_key, strlen(i->factor_key));
        buf_puts(out, ",\"value\":");
        buf_json_str(out, i->factor_value, strlen(i->factor_value));
        buf_printf(out, ",\"share\":%.4g,\"baseline\":%.4g}", i->factor_share,
                   i->factor_baseline);
    } else {
        buf_puts(out, "null");
    }
    buf_putc(out, '}');
}
