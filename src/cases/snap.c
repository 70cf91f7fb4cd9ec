/*
 * snap.c -- the cases module's state in the snapshot encoding
 * (util/wire.h) and back: what a quiet replay of the journal up to the
 * snapshot's row would rebuild, so that start-up can load it and replay
 * only the rows after (pipeline.c).
 *
 * The section holds the case ids ever made (open or resolved), the open
 * cases with everything they carry (detections, incidents, messages,
 * skips, counts, the policy, the three SLA clocks, the customer's profile
 * as last read, the playbook and its steps and reminders), the customers'
 * values (for the value percentile), their recent words (guide.c), the
 * history of resolved cases (measured success, similar cases), the
 * counters, and the follow-up tasks with the outreach held for approval
 * (task.c).  Maps are written in insertion order and read back in it, so
 * everything iterated in that order (the queue, sweeps) stays in it.
 * Timers go through engine_timer_write, so they are armed again in their
 * original order.
 *
 * Not written: compiled policies and playbooks (configuration), the sorted
 * values (rebuilt on demand), and scratch buffers.  Calendars are found
 * again from the policy index.
 *
 * Invariant: cases_restore(cases_snapshot(cs)) gives a module whose
 * snapshot is the same bytes (tests/unit), and that acts as cs would.
 */
#include <stdlib.h>
#include <string.h>

#include "cases/cases_int.h"
#include "util/fwtime.h"
#include "util/util.h"
#include "util/wire.h"

#define SNAP_CASES_MAGIC 0x53414331u /* "1CAS": the cases module's section, version 1 */

static void strs_write(struct buf *out, char *const *v, size_t n)
{
    wire_put_u32(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        wire_put_str(out, v[i]);
}

static char **strs_read(struct wire_rd *in, size_t *n, size_t *cap)
{
    uint32_t k = wire_get_count(in, 5);
    char **v = xcalloc(k + 1, sizeof *v);
    *cap = k + 1;
    *n = 0;
    for (uint32_t i = 0; i < k && !in->err; i++) {
        char *s = wire_get_str(in);
        if (!s) {
            in->err = 1;
            break;
        }
        v[(*n)++] = s;
    }
    return v;
}

static void case_write(const struct cases *cs, const struct kase *k, struct buf *out)
{
    wire_put_str(out, k->id);
    wire_put_u32(out, (uint32_t)k->severity);
    wire_put_u32(out, (uint32_t)k->status);
    wire_put_u8(out, (uint8_t)k->closing);
    wire_put_str(out, k->assignee);
    wire_put_str(out, k->resolved_by);
    wire_put_i64(out, k->acted_at);
    wire_put_i64(out, k->opened_at);
    wire_put_i64(out, k->updated_at);
    wire_put_u32(out, (uint32_t)k->ndets);
    for (size_t i = 0; i < k->ndets; i++) {
        wire_put_u32(out, k->dets[i].sig);
        wire_put_i64(out, k->dets[i].fired_at);
        wire_put_i64(out, k->dets[i].resolved_at);
    }
    wire_put_u32(out, (uint32_t)k->ninc);
    for (size_t i = 0; i < k->ninc; i++)
        wire_put_u64(out, k->inc[i]);
    strs_write(out, k->msgs, k->nmsgs);
    strs_write(out, k->skipped, k->nskipped);
    wire_put_u64(out, k->nnotes);
    wire_put_u64(out, k->nactions);
    wire_put_u32(out, (uint32_t)(k->policy + 1));
    for (int m = 0; m < CASE_NMETRICS; m++) {
        const struct clock *c = &k->clk[m];
        wire_put_i64(out, c->target);
        wire_put_i64(out, c->consumed);
        wire_put_i64(out, c->since);
        wire_put_i64(out, c->due);
        wire_put_i64(out, c->met_at);
        wire_put_i64(out, c->breached_at);
        wire_put_u8(out, (uint8_t)c->warned);
        wire_put_u8(out, (uint8_t)c->done);
        engine_timer_write(cs->e, &c->t, out);
    }
    wire_put_str(out, k->name);
    wire_put_str(out, k->tier);
    wire_put_f64(out, k->value);
    wire_put_i64(out, k->signup);
    wire_put_u32(out, (uint32_t)(k->pb + 1));
    wire_put_str(out, k->pb_by);
    wire_put_str(out, k->pb_why);
    wire_put_u8(out, (uint8_t)k->pb_pinned);
    wire_put_u64(out, k->esc_fired);
    wire_put_u32(out, (uint32_t)k->nsteps);
    for (size_t i = 0; i < k->nsteps; i++) {
        wire_put_u8(out, k->steps[i]);
        wire_put_i64(out, k->rem[i].due);
        engine_timer_write(cs->e, &k->rem[i].t, out);
    }
}

/* Fields of an open case (already in cs->open, so freed with it whatever happens). */
static void case_read(struct cases *cs, struct kase *k, struct wire_rd *in)
{
    uint32_t v = wire_get_u32(in);
    k->severity = (int)v;
    if (v > SEV_CRITICAL)
        in->err = 1;
    v = wire_get_u32(in);
    k->status = (int)v;
    if (v > CST_ON_HOLD)
        in->err = 1;
    k->closing = wire_get_u8(in);
    k->assignee = wire_get_str(in);
    k->resolved_by = wire_get_str(in);
    k->acted_at = wire_get_time(in);
    k->opened_at = wire_get_time(in);
    k->updated_at = wire_get_time(in);
    uint32_t n = wire_get_count(in, 20);
    k->dets = xcalloc(n + 1, sizeof *k->dets);
    k->capdets = n + 1;
    for (uint32_t i = 0; i < n && !in->err; i++) {
        struct kdet *d = &k->dets[k->ndets++];
        d->sig = wire_get_u32(in);
        d->fired_at = wire_get_time(in);
        d->resolved_at = wire_get_time(in);
        if (d->sig >= cs->rules->nsignals)
            in->err = 1;
    }
    n = wire_get_count(in, 8);
    k->inc = xcalloc(n + 1, sizeof *k->inc);
    k->capinc = n + 1;
    for (uint32_t i = 0; i < n && !in->err; i++)
        k->inc[k->ninc++] = wire_get_u64(in);
    k->msgs = strs_read(in, &k->nmsgs, &k->capmsgs);
    k->skipped = strs_read(in, &k->nskipped, &k->capskipped);
    k->nnotes = (size_t)wire_get_u64(in);
    k->nactions = (size_t)wire_get_u64(in);
    v = wire_get_u32(in);
    if (v > cs->npolicies) {
        in->err = 1; /* a policy these settings do not have (checked before it is an int) */
        k->policy = -1;
    } else {
        k->policy = (int)v - 1;
        k->cal = k->policy >= 0 ? cs->cfg->sla->policies[k->policy].calendar : NULL;
    }
    for (int m = 0; m < CASE_NMETRICS && !in->err; m++) {
        struct clock *c = &k->clk[m];
        c->target = wire_get_time(in);
        c->consumed = wire_get_time(in);
        c->since = wire_get_time(in);
        c->due = wire_get_time(in);
        c->met_at = wire_get_time(in);
        c->breached_at = wire_get_time(in);
        c->warned = wire_get_u8(in);
        c->done = wire_get_u8(in);
        if (!in->err)
            c->armed = engine_timer_read(cs->e, &c->t, in) != FW_TIME_NONE;
    }
    k->name = wire_get_str(in);
    k->tier = wire_get_str(in);
    k->value = wire_get_f64(in);
    k->signup = wire_get_time(in);
    v = wire_get_u32(in);
    size_t npb = cs->cfg->playbooks ? cs->cfg->playbooks->n : 0;
    if (v > npb)
        in->err = 1; /* a playbook these settings do not have */
    k->pb = in->err ? -1 : (int)v - 1;
    k->pb_by = wire_get_str(in);
    k->pb_why = wire_get_str(in);
    k->pb_pinned = wire_get_u8(in);
    k->esc_fired = wire_get_u64(in);
    n = wire_get_count(in, 9);
    if (!in->err && n != (k->pb >= 0 ? cs->cfg->playbooks->pb[k->pb].nsteps : 0))
        in->err = 1; /* steps of another playbook */
    if (in->err || !n)
        return;
    cases__pb_steps_init(k, n);
    for (uint32_t i = 0; i < n && !in->err; i++) {
        k->steps[i] = wire_get_u8(in);
        k->rem[i].due = wire_get_time(in);
        if (k->steps[i] > STEP_SKIPPED)
            in->err = 1;
        if (!in->err)
            k->rem[i].armed = engine_timer_read(cs->e, &k->rem[i].t, in) != FW_TIME_NONE;
    }
}

static void hist_write(const struct cases *cs, struct buf *out)
{
    wire_put_u32(out, (uint32_t)cs->nhist);
    for (size_t i = 0; i < cs->nhist; i++) {
        const struct pb_record *r = &cs->hist[i];
        wire_put_str(out, r->case_id);
        wire_put_u32(out, (uint32_t)(r->playbook + 1));
        wire_put_str(out, r->outcome);
        wire_put_i64(out, r->open_ms);
        wire_put_u32(out, (uint32_t)r->csat);
        wire_put_u32(out, (uint32_t)r->severity);
        wire_put_u32(out, (uint32_t)r->nsignals);
        for (size_t j = 0; j < r->nsignals; j++)
            wire_put_str(out, r->signals[j]);
        wire_put_f64(out, r->value);
        wire_put_f64(out, r->tenure_days);
        wire_put_f64(out, r->sentiment);
        wire_put_u32(out, (uint32_t)r->steps_done);
        wire_put_u32(out, (uint32_t)r->steps_total);
    }
}

/* A string into a fixed field: too long or absent sets err. */
static void get_fixed(struct wire_rd *in, char *dst, size_t size)
{
    char *s = wire_get_str(in);
    if (!s || strlen(s) >= size)
        in->err = 1;
    else
        memcpy(dst, s, strlen(s) + 1);
    free(s);
}

static void hist_read(struct cases *cs, struct wire_rd *in)
{
    uint32_t n = wire_get_count(in, 60);
    cs->hist = xcalloc(n + 1, sizeof *cs->hist);
    cs->caphist = n + 1;
    size_t npb = cs->cfg->playbooks ? cs->cfg->playbooks->n : 0;
    for (uint32_t i = 0; i < n && !in->err; i++) {
        struct pb_record *r = &cs->hist[cs->nhist++];
        get_fixed(in, r->case_id, sizeof r->case_id);
        uint32_t pb = wire_get_u32(in);
        if (pb > npb)
            in->err = 1;
        r->playbook = pb > npb ? -1 : (int)pb - 1;
        get_fixed(in, r->outcome, sizeof r->outcome);
        r->open_ms = wire_get_time(in);
        r->csat = (int)wire_get_u32(in);
        r->severity = (int)wire_get_u32(in);
        uint32_t ns = wire_get_u32(in);
        if (ns > PB_MAX_SIGNALS)
            in->err = 1;
        for (uint32_t j = 0; j < ns && !in->err; j++) {
            char *id = wire_get_str(in);
            const struct rule_signal *s = id ? rules_signal(cs->rules, id) : NULL;
            free(id);
            if (!s)
                in->err = 1; /* a signal these rules do not have */
            else
                r->signals[r->nsignals++] = s->id;
        }
        r->value = wire_get_f64(in);
        r->tenure_days = wire_get_f64(in);
        r->sentiment = wire_get_f64(in);
        r->steps_done = (int)wire_get_u32(in);
        r->steps_total = (int)wire_get_u32(in);
    }
}

void cases_snapshot(const struct cases *cs, struct buf *out)
{
    wire_put_u32(out, SNAP_CASES_MAGIC);
    wire_put_u32(out, (uint32_t)cs->rules->nsignals);
    /* Every case id ever made, in order: open (1) or resolved (0). */
    wire_put_u64(out, cs->ids.len);
    for (size_t i = 0; i < cs->ids.len; i++) {
        wire_put_str(out, cs->ids.entries[i].key);
        wire_put_u8(out, cs->ids.entries[i].value != RESOLVED_CASE);
    }
    /* Customers who had a case, in order, and their open case if any. */
    wire_put_u64(out, cs->open.len);
    for (size_t i = 0; i < cs->open.len; i++) {
        const struct kase *k = cs->open.entries[i].value;
        wire_put_str(out, cs->open.entries[i].key);
        wire_put_u8(out, k != NULL);
        if (k)
            case_write(cs, k, out);
    }
    wire_put_u64(out, cs->values.len);
    for (size_t i = 0; i < cs->values.len; i++) {
        wire_put_str(out, cs->values.entries[i].key);
        wire_put_f64(out, cases__value_of(cs->values.entries[i].value));
    }
    cases__words_write(cs, out);
    hist_write(cs, out);
    const struct cases_stats *st = &cs->stats;
    wire_put_u64(out, st->opened);
    wire_put_u64(out, st->resolved);
    wire_put_u64(out, st->auto_resolved);
    wire_put_u64(out, st->warnings);
    wire_put_u64(out, st->breaches);
    wire_put_u64(out, st->ignored);
    wire_put_u64(out, st->open);
    cases__tasks_write(cs, out);
}

int cases_restore(struct cases *cs, struct wire_rd *in, char *why, size_t n)
{
    snprintf(why, n, "the cases' state is malformed");
    if (!cs->e || !cases_idle(cs)) {
        snprintf(why, n, "the cases module is not fresh");
        return FW_ESTATE;
    }
    if (wire_get_u32(in) != SNAP_CASES_MAGIC) {
        if (!in->err)
            snprintf(why, n, "not a cases section, or of another version");
        return FW_EPARSE;
    }
    if (wire_get_u32(in) != cs->rules->nsignals) {
        if (!in->err)
            snprintf(why, n, "the cases section has another number of signals");
        return FW_EPARSE;
    }
    uint64_t cnt = wire_get_u64(in);
    if (cnt > in->n - in->off)
        in->err = 1;
    size_t nopen = 0;
    for (uint64_t i = 0; i < cnt && !in->err; i++) {
        char *id = wire_get_str(in);
        int created = 0;
        if (id && strlen(id) < sizeof ((struct kase *)0)->id)
            strmap_upsert(&cs->ids, id, strlen(id), &created)->value =
                wire_get_u8(in) ? NULL : RESOLVED_CASE; /* NULL: its open case follows */
        if (!created)
            in->err = 1;
        free(id);
    }
    cnt = wire_get_u64(in);
    if (cnt > in->n - in->off)
        in->err = 1;
    for (uint64_t i = 0; i < cnt && !in->err; i++) {
        char *customer = wire_get_str(in);
        int created = 0;
        struct strmap_entry *me =
            customer ? strmap_upsert(&cs->open, customer, strlen(customer), &created) : NULL;
        if (!created || !wire_get_u8(in) || in->err) {
            if (!created)
                in->err = 1;
            free(customer);
            continue;
        }
        struct kase *k = xcalloc(1, sizeof *k);
        k->owner = cs;
        k->customer = customer;
        for (int m = 0; m < CASE_NMETRICS; m++)
            cases__clock_bind(k, m);
        me->value = k; /* freed by cases_free from here on */
        cs->stats.open++; /* as cases_idle sees it; the counters are read below */
        get_fixed(in, k->id, sizeof k->id);
        struct strmap_entry *ie = in->err ? NULL : strmap_find(&cs->ids, k->id, strlen(k->id));
        if (!ie || ie->value) {
            in->err = 1; /* an open case whose id is not listed as open, or listed twice */
            continue;
        }
        ie->value = k;
        nopen++;
        case_read(cs, k, in);
    }
    for (size_t i = 0; i < cs->ids.len && !in->err; i++)
        if (!cs->ids.entries[i].value)
            in->err = 1; /* listed as open, but no open case has it */
    cnt = wire_get_u64(in);
    if (cnt > in->n - in->off)
        in->err = 1;
    for (uint64_t i = 0; i < cnt && !in->err; i++) {
        char *customer = wire_get_str(in);
        double v = wire_get_f64(in);
        int created = 0;
        if (customer) {
            struct strmap_entry *me = strmap_upsert(&cs->values, customer, strlen(customer),
                                                    &created);
            if (created)
                me->value = cases__value_box(v);
        }
        if (!created)
            in->err = 1;
        free(customer);
    }
    cs->values_dirty = 1;
    if (!in->err)
        cases__words_read(cs, in);
    if (!in->err)
        hist_read(cs, in);
    struct cases_stats *st = &cs->stats;
    st->opened = wire_get_u64(in);
    st->resolved = wire_get_u64(in);
    st->auto_resolved = wire_get_u64(in);
    st->warnings = wire_get_u64(in);
    st->breaches = wire_get_u64(in);
    st->ignored = wire_get_u64(in);
    st->open = (size_t)wire_get_u64(in);
    if (!in->err && st->open != nopen)
        in->err = 1;
    if (!in->err)
        cases__tasks_read(cs, in);
    return in->err ? FW_EPARSE : 0;
}
