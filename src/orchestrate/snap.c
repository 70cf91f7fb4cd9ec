/*
 * snap.c -- the orchestrator's state in the snapshot encoding (util/wire.h)
 * and back: what a quiet replay of the journal up to the snapshot's row
 * would rebuild, so that start-up can load it and replay only the rows
 * after (pipeline.c).
 *
 * The section holds, per customer record in the order the records were
 * made: the outreach history (de-duplication, the frequency cap, tone),
 * the signals waiting in a merge window or held while history is caught
 * up, the decision timer, the ladder steps and reminders with their task
 * rows' keys and details, what went out per signal (facts), the outage
 * state, and the known-issue wake-up; then every connector's failure state
 * (failures.c) and the known-issue registry (known.c).  Timers are written
 * with engine_timer_write, so they are armed again in their original
 * order.  Borrowed strings (root causes, channel names) are written as
 * text and found again in the rules or the static tables.
 *
 * Not written: what is derived or cached (time zones, the compiled segment
 * of a known issue, which is compiled again from its record), and what
 * configuration gives (templates, the channel matrix).
 *
 * Invariant: orch_restore(orch_snapshot(o)) gives an orchestrator whose
 * snapshot is the same bytes (tests/unit), and that decides as o would.
 */
#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/util.h"
#include "util/wire.h"

#define SNAP_ORCH_MAGIC 0x4f435231u /* "1RCO": the orchestrator's section, version 1 */
#define NOSIG32 0xffffffffu

static void put_sig(struct buf *out, size_t sig)
{
    wire_put_u32(out, sig == NOSIG ? NOSIG32 : (uint32_t)sig);
}

/* A signal index (NOSIG allowed when nosig); out of range sets err. */
static size_t get_sig(const struct orch *o, struct wire_rd *in, int nosig)
{
    uint32_t v = wire_get_u32(in);
    if (v == NOSIG32 && nosig)
        return NOSIG;
    if (v >= o->rules->nsignals) {
        in->err = 1;
        return 0;
    }
    return v;
}

/* The rules' own string for a root cause (a signal's root_cause, or its id). */
static const char *root_of(const struct rules *r, const char *s)
{
    for (size_t i = 0; i < r->nsignals; i++)
        if (r->signals[i].root_cause && !strcmp(r->signals[i].root_cause, s))
            return r->signals[i].root_cause;
    for (size_t i = 0; i < r->nsignals; i++)
        if (!strcmp(r->signals[i].id, s))
            return r->signals[i].id;
    return NULL;
}

/* Whether a record holds nothing (made by a step and never used): written as its key only. */
static int blank(const struct ocust *c)
{
    return !c->nhist && !c->npending && !c->nheld && !c->held_new && !c->tasks && !c->sent &&
           !c->noheld && !c->kwake && c->merge_close == FW_TIME_NONE &&
           c->outage_told == FW_TIME_NONE && c->first_outreach == FW_TIME_NONE &&
           c->last_outreach == FW_TIME_NONE && !tw_armed(&c->hold.t._tw);
}

static void list_write(struct buf *out, const size_t *v, size_t n)
{
    wire_put_u32(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        put_sig(out, v[i]);
}

static size_t *list_read(const struct orch *o, struct wire_rd *in, size_t *n, size_t *cap)
{
    uint32_t k = wire_get_count(in, 4);
    size_t *v = xcalloc(k + 1, sizeof *v);
    *cap = k + 1;
    *n = 0;
    for (uint32_t i = 0; i < k && !in->err; i++)
        v[(*n)++] = get_sig(o, in, 0);
    return v;
}

static void cust_write(const struct orch *o, const struct ocust *c, struct buf *out)
{
    wire_put_str(out, c->key);
    if (blank(c)) {
        wire_put_u8(out, 0);
        return;
    }
    wire_put_u8(out, 1);
    wire_put_u32(out, (uint32_t)c->nhist);
    for (size_t i = 0; i < c->nhist; i++) {
        wire_put_str(out, c->hist[i].root_cause);
        wire_put_i64(out, c->hist[i].at);
        wire_put_u8(out, (uint8_t)c->hist[i].notice);
    }
    wire_put_u32(out, (uint32_t)c->npending);
    for (size_t i = 0; i < c->npending; i++) {
        put_sig(out, c->pending[i].sig);
        wire_put_i64(out, c->pending[i].at);
    }
    wire_put_i64(out, c->merge_close);
    list_write(out, c->held, c->nheld);
    wire_put_u8(out, (uint8_t)c->held_new);
    engine_timer_write(o->engine, &c->hold.t, out);
    size_t ntasks = 0;
    for (const struct ladder *l = c->tasks; l; l = l->next)
        ntasks++;
    wire_put_u32(out, (uint32_t)ntasks);
    for (const struct ladder *l = c->tasks; l; l = l->next) {
        put_sig(out, l->sig);
        wire_put_i64(out, l->fired_at);
        wire_put_u8(out, (uint8_t)l->kind);
        wire_put_str(out, l->key);
        wire_put_str(out, l->detail);
        wire_put_i64(out, l->created_at);
        wire_put_i64(out, l->origin);
        engine_timer_write(o->engine, &l->t, out);
    }
    wire_put_i64(out, c->first_outreach);
    wire_put_i64(out, c->last_outreach);
    wire_put_u8(out, c->sent != NULL);
    for (size_t s = 0; c->sent && s < o->rules->nsignals; s++) {
        wire_put_i64(out, c->sent[s].at);
        wire_put_str(out, c->sent[s].channel);
    }
    wire_put_i64(out, c->outage_told);
    list_write(out, c->oheld, c->noheld);
    orch__kwake_write(o, c, out);
}

static void cust_read(struct orch *o, struct wire_rd *in)
{
    char *key = wire_get_str(in);
    if (!key) {
        in->err = 1;
        return;
    }
    if (strmap_find(&o->customers, key, strlen(key))) {
        free(key);
        in->err = 1; /* the same customer twice */
        return;
    }
    struct ocust *c = orch__cust(o, key);
    free(key);
    if (!wire_get_u8(in))
        return;
    uint32_t n = wire_get_count(in, 6);
    c->hist = xcalloc(n + 1, sizeof *c->hist);
    c->caphist = n + 1;
    for (uint32_t i = 0; i < n && !in->err; i++) {
        char *root = wire_get_str(in);
        struct outreach *h = &c->hist[c->nhist++];
        h->root_cause = root ? root_of(o->rules, root) : NULL;
        if (root && !h->root_cause)
            in->err = 1; /* a root cause these rules do not have */
        free(root);
        h->at = wire_get_time(in);
        h->notice = wire_get_u8(in);
    }
    n = wire_get_count(in, 12);
    c->pending = xcalloc(n + 1, sizeof *c->pending);
    c->cappending = n + 1;
    for (uint32_t i = 0; i < n && !in->err; i++) {
        struct pend *p = &c->pending[c->npending++];
        p->sig = get_sig(o, in, 0);
        p->at = wire_get_time(in);
    }
    c->merge_close = wire_get_time(in);
    c->held = list_read(o, in, &c->nheld, &c->capheld);
    c->held_new = wire_get_u8(in);
    if (!in->err)
        engine_timer_read(o->engine, &c->hold.t, in);
    n = wire_get_count(in, 40);
    struct ladder **tail = &c->tasks;
    for (uint32_t i = 0; i < n && !in->err; i++) {
        struct ladder *l = xcalloc(1, sizeof *l);
        l->o = o;
        l->c = c;
        tw_entry_init(&l->t._tw);
        l->t.fire = orch__fire;
        *tail = l; /* linked first: freed with the customer whatever follows */
        tail = &l->next;
        l->sig = get_sig(o, in, 1);
        l->fired_at = wire_get_time(in);
        uint8_t kind = wire_get_u8(in);
        if (kind > STEP_OUTAGE_FOLLOWUP)
            in->err = 1;
        /* Only a reminder and an outage follow-up may be of no signal (ladder.c, outage.c). */
        if (l->sig == NOSIG && kind != STEP_FOLLOWUP_REMINDER && kind != STEP_OUTAGE_FOLLOWUP)
            in->err = 1;
        l->kind = (enum step_kind)kind;
        l->key = wire_get_str(in);
        l->detail = wire_get_str(in);
        l->created_at = wire_get_time(in);
        l->origin = wire_get_time(in);
        if (!l->key || !l->detail)
            in->err = 1;
        if (!in->err)
            engine_timer_read(o->engine, &l->t, in);
    }
    c->first_outreach = wire_get_time(in);
    c->last_outreach = wire_get_time(in);
    if (wire_get_u8(in) && !in->err) {
        c->sent = xcalloc(o->rules->nsignals + 1, sizeof *c->sent);
        for (size_t s = 0; s < o->rules->nsignals && !in->err; s++) {
            c->sent[s].at = wire_get_time(in);
            char *ch = wire_get_str(in);
            c->sent[s].channel = ch ? orch__channel_static(ch) : NULL;
            free(ch);
            if (c->sent[s].at != FW_TIME_NONE && !c->sent[s].channel)
                in->err = 1; /* a message that went out went out on a channel (facts.c) */
        }
    }
    c->outage_told = wire_get_time(in);
    free(c->oheld);
    c->oheld = list_read(o, in, &c->noheld, &c->capoheld);
    if (!in->err)
        orch__kwake_read(o, c, in);
}

void orch_snapshot(const struct orch *o, struct buf *out)
{
    wire_put_u32(out, SNAP_ORCH_MAGIC);
    wire_put_u32(out, (uint32_t)o->rules->nsignals);
    wire_put_u64(out, o->customers.len);
    for (size_t i = 0; i < o->customers.len; i++)
        cust_write(o, o->customers.entries[i].value, out);
    orch__failures_write(o, out);
    orch__known_write(o, out);
}

int orch_restore(struct orch *o, struct wire_rd *in, char *why, size_t n)
{
    snprintf(why, n, "the orchestrator's state is malformed");
    if (!o->engine || o->customers.len || o->failures.n || o->known.n) {
        snprintf(why, n, "the orchestrator is not fresh");
        return FW_ESTATE;
    }
    if (wire_get_u32(in) != SNAP_ORCH_MAGIC) {
        if (!in->err)
            snprintf(why, n, "not an orchestrator section, or of another version");
        return FW_EPARSE;
    }
    if (wire_get_u32(in) != o->rules->nsignals) {
        if (!in->err)
            snprintf(why, n, "the orchestrator's section has another number of signals");
        return FW_EPARSE;
    }
    uint64_t nc = wire_get_u64(in);
    if (nc > in->n - in->off)
        in->err = 1; /* each record takes more than a byte */
    for (uint64_t i = 0; i < nc && !in->err; i++)
        cust_read(o, in);
    if (!in->err)
        orch__failures_read(o, in);
    if (!in->err)
        orch__known_read(o, in);
    return in->err ? FW_EPARSE : 0;
}
