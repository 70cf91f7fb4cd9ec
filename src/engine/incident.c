/*
 * incident.c -- systemic incident detection and common-factor naming.
 *
 * Invariant: sig[s].members != NULL iff signal s has an open incident, and
 * nactive counts its members whose detection has not resolved; the incident
 * resolves when nactive reaches 0.
 *
 * The common factor is the (key, value) among the signal's factor keys that
 * the largest share of affected customers have; ties go to the value most
 * over-represented against all customers (share / baseline share), then to
 * the earlier factor key and the smaller value, so output is deterministic.
 * A value held by fewer than two affected customers, or not more common
 * among them than among all customers, is not a factor.
 */
#include "engine/incident.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "util/wire.h"

#define COUNT_NAME_MAX 4096 /* bytes of a counts key, with its NUL */

/* A stored value as text for counting and display; NULL for null. Caller frees. */
static char *value_text(const struct value *v)
{
    struct buf b;
    switch (v->type) {
    case VAL_NULL:
        return NULL;
    case VAL_STR:
        return xstrndup(v->u.str.ptr, v->u.str.len);
    default:
        buf_init(&b, 0);
        value__json(v, &b);
        return buf_steal(&b);
    }
}

static char *state_text(const struct kvset *s, uint32_t key)
{
    struct value v;
    return kvset__get(s, key, &v, NULL) ? value_text(&v) : NULL;
}

/*
 * The counts' map key "<key id>=<value>" in name (as snprintf "%u=%s" would
 * write it; this runs for every tally entry of every incident update).
 * Returns its length, or -1 when it does not fit.
 */
static int count_name(char name[COUNT_NAME_MAX], uint32_t key, const char *val)
{
    char digits[10];
    int nd = 0;
    do
        digits[nd++] = (char)('0' + key % 10);
    while ((key /= 10) != 0);
    size_t vlen = strlen(val);
    if ((size_t)nd + 1 + vlen >= COUNT_NAME_MAX)
        return -1; /* absurdly long values are not factors */
    for (int i = 0; i < nd; i++)
        name[i] = digits[nd - 1 - i];
    name[nd] = '=';
    memcpy(name + nd + 1, val, vlen + 1);
    return nd + 1 + (int)vlen;
}

static void count_add(struct incidents *inc, uint32_t key, const char *val, long delta)
{
    if (!val)
        return;
    char name[COUNT_NAME_MAX];
    int n = count_name(name, key, val);
    if (n < 0)
        return;
    struct strmap_entry *me = strmap_upsert(&inc->counts, name, (size_t)n, NULL);
    me->value = (void *)(uintptr_t)((long)(uintptr_t)me->value + delta);
}

/*
 * Where the count of customers with key=val lives: its index + 1 in
 * counts, made (at zero) when absent, so an open incident's tally can read
 * the baseline without building the name again.  0 when it cannot exist.
 */
static size_t count_index(struct incidents *inc, uint32_t key, const char *val)
{
    char name[COUNT_NAME_MAX];
    int n = count_name(name, key, val);
    if (n < 0)
        return 0;
    struct strmap_entry *me = strmap_upsert(&inc->counts, name, (size_t)n, NULL);
    return (size_t)(me - inc->counts.entries) + 1;
}

void incidents_init(struct incidents *inc, const struct rules *r)
{
    memset(inc, 0, sizeof *inc);
    inc->rules = r;
    inc->sig = xcalloc(r->nsignals + 1, sizeof *inc->sig);
    strmap_init(&inc->counts);
    strmap_init(&inc->texts);
    size_t cap = 0;
    for (size_t s = 0; s < r->nsignals; s++) {
        const struct rule_signal *sig = &r->signals[s];
        for (size_t f = 0; sig->systemic && f < sig->nfactors; f++) {
            size_t k = 0;
            while (k < inc->nfactor_keys && inc->factor_keys[k] != sig->factors[f])
                k++;
            if (k == inc->nfactor_keys) {
                inc->factor_keys = xgrow(inc->factor_keys, &cap, k + 1, sizeof *inc->factor_keys);
                inc->factor_keys[inc->nfactor_keys++] = sig->factors[f];
            }
        }
    }
    inc->snapshot = xcalloc(inc->nfactor_keys + 1, sizeof *inc->snapshot);
    /* Only events of these namespaces can move a factor's baseline counts. */
    inc->namespaces = xcalloc(inc->nfactor_keys + 1, sizeof *inc->namespaces);
    for (size_t k = 0; k < inc->nfactor_keys; k++) {
        const char *key = intern_str(&r->keys, inc->factor_keys[k]);
        size_t n = strcspn(key, ".");
        size_t j = 0;
        while (j < inc->nnamespaces && !(strlen(inc->namespaces[j]) == n &&
                                         !strncmp(inc->namespaces[j], key, n)))
            j++;
        if (j == inc->nnamespaces)
            inc->namespaces[inc->nnamespaces++] = xstrndup(key, n);
    }
}

int incidents_watches(const struct incidents *inc, const char *type)
{
    size_t n = strcspn(type, ".");
    for (size_t j = 0; j < inc->nnamespaces; j++)
        if (strlen(inc->namespaces[j]) == n && !strncmp(inc->namespaces[j], type, n))
            return 1;
    return 0;
}

/*
 * A factor value as the incidents keep it: one copy per distinct text in
 * inc->texts (a carrier, a plan, a zip: few values, many members), so a
 * member's values are borrowed, not owned.  Takes (frees) `owned`.
 */
static char *text_of(struct incidents *inc, char *owned)
{
    if (!owned)
        return NULL;
    char *t = strmap_upsert(&inc->texts, owned, strlen(owned), NULL)->key;
    free(owned);
    return t;
}

static void member_free(struct inc_member *m, size_t nvalues)
{
    (void)nvalues; /* the values are inc->texts' */
    free(m->customer);
    free(m->values);
}

static void close_incident(struct inc_signal *is, size_t nf)
{
    for (size_t i = 0; i < is->nmembers; i++)
        member_free(&is->members[i], nf);
    free(is->members);
    is->members = NULL;
    is->nmembers = is->capmembers = 0;
    strmap_cleanup(&is->index);
    for (size_t f = 0; is->tally && f < nf; f++) {
        strmap_cleanup(&is->tally[f]);
        free(is->tally_count[f]);
    }
    free(is->tally);
    free(is->tally_count);
    free(is->tally_cap);
    free(is->names);
    is->tally = NULL;
    is->tally_count = NULL;
    is->tally_cap = NULL;
    is->names = NULL;
    is->capnames = 0;
}

void incidents_cleanup(struct incidents *inc)
{
    for (size_t s = 0; s < inc->rules->nsignals; s++) {
        size_t nf = inc->rules->signals[s].nfactors;
        for (size_t i = 0; i < inc->sig[s].nrecent; i++)
            member_free(&inc->sig[s].recent[i], nf);
        close_incident(&inc->sig[s], nf);
        free(inc->sig[s].recent);
    }
    free(inc->sig);
    free(inc->factor_keys);
    for (size_t k = 0; k < inc->nfactor_keys; k++)
        free(inc->snapshot[k]);
    free(inc->snapshot);
    for (size_t j = 0; j < inc->nnamespaces; j++)
        free(inc->namespaces[j]);
    free(inc->namespaces);
    strmap_cleanup(&inc->counts);
    strmap_cleanup(&inc->texts);
}

void incidents_customer_added(struct incidents *inc)
{
    inc->ncustomers++;
}

void incidents_count_change(struct incidents *inc, size_t k, const char *was, const char *now)
{
    count_add(inc, inc->factor_keys[k], was, -1);
    count_add(inc, inc->factor_keys[k], now, +1);
}

void incidents_before_change(struct incidents *inc, const struct rules *r, const struct kvset *s)
{
    (void)r;
    for (size_t k = 0; k < inc->nfactor_keys; k++)
        inc->snapshot[k] = state_text(s, inc->factor_keys[k]);
}

void incidents_moved(struct incidents *inc, const struct kvset *s,
                     void (*moved)(void *ctx, size_t k, char *was, char *now), void *ctx)
{
    for (size_t k = 0; k < inc->nfactor_keys; k++) {
        char *now = state_text(s, inc->factor_keys[k]);
        char *was = inc->snapshot[k];
        inc->snapshot[k] = NULL;
        if (now == was || (now && was && !strcmp(now, was))) {
            free(now);
            free(was);
        } else {
            moved(ctx, k, was, now);
        }
    }
}

/* incidents_moved's callback for one engine: the baseline counts follow. */
static void count_moved(void *ctx, size_t k, char *was, char *now)
{
    incidents_count_change(ctx, k, was, now);
    free(was);
    free(now);
}

void incidents_after_change(struct incidents *inc, const struct rules *r, const struct kvset *s)
{
    (void)r;
    incidents_moved(inc, s, count_moved, inc);
}

/* Add a member to the open incident: index it and count its factor values. */
static void member_join(struct incidents *inc, const struct rule_signal *sig,
                        struct inc_signal *is, const struct inc_member *m)
{
    strmap_upsert(&is->index, m->customer, strlen(m->customer), NULL)->value =
        (void *)(uintptr_t)is->nmembers;
    is->names = xgrow(is->names, &is->capnames, is->nmembers + 1, sizeof *is->names);
    is->names[is->nmembers] = m->customer;
    for (size_t f = 0; f < sig->nfactors; f++) {
        if (!m->values[f])
            continue;
        int created;
        struct strmap_entry *e =
            strmap_upsert(&is->tally[f], m->values[f], strlen(m->values[f]), &created);
        e->value = (void *)((uintptr_t)e->value + 1);
        if (created) {
            size_t k = is->tally[f].len - 1;
            is->tally_count[f] =
                xgrow(is->tally_count[f], &is->tally_cap[f], k + 1, sizeof *is->tally_count[f]);
            is->tally_count[f][k] = count_index(inc, sig->factors[f], m->values[f]);
        }
    }
}

/* The open incident's member for a customer, or NULL. */
static struct inc_member *member_find(struct inc_signal *is, const char *customer)
{
    struct strmap_entry *e = strmap_find(&is->index, customer, strlen(customer));
    return e ? &is->members[(uintptr_t)e->value] : NULL;
}

static void member_copy(struct inc_member *dst, const struct inc_member *src, size_t nf)
{
    dst->customer = xstrdup(src->customer);
    dst->at = src->at;
    dst->resolved = 0;
    dst->values = xcalloc(nf + 1, sizeof *dst->values);
    for (size_t f = 0; f < nf; f++)
        dst->values[f] = src->values[f]; /* inc->texts' */
}

static void emit(struct incidents *inc, const struct engine_sink *sink,
                 const struct rule_signal *sig, size_t s, const char *update, const char *added,
                 int64_t now)
{
    struct inc_signal *is = &inc->sig[s];
    const struct rules *r = inc->rules;
    struct incident out = {
        .id = is->id,
        .signal = sig,
        .update = update,
        .ncustomers = is->nmembers,
        .opened_at = is->opened_at,
        .at = now,
        .added = added,
    };
    out.customers = is->names;

    /* Name the common factor from the per-factor tallies kept as members join. */
    double best_share = 0, best_lift = 0;
    for (size_t f = 0; is->tally && f < sig->nfactors; f++) {
        const struct strmap *t = &is->tally[f];
        for (size_t k = 0; k < t->len; k++) {
            const char *v = t->entries[k].key;
            size_t have = (size_t)(uintptr_t)t->entries[k].value;
            if (have < 2)
                continue;
            double share = (double)have / (double)is->nmembers;
            size_t ix = is->tally_count[f][k];
            size_t all = ix ? (size_t)(uintptr_t)inc->counts.entries[ix - 1].value : 0;
            double baseline = inc->ncustomers ? (double)all / (double)inc->ncustomers : 1.0;
            double lift = baseline > 0 ? share / baseline : 0;
            if (have < 2 || lift <= 1.0)
                continue;
            int same_key = out.factor_key && !strcmp(out.factor_key, intern_str(&r->keys, sig->factors[f]));
            int better = share > best_share || (share == best_share && lift > best_lift) ||
                         (share == best_share && lift == best_lift && same_key &&
                          strcmp(v, out.factor_value) < 0);
            if (better) {
                best_share = share;
                best_lift = lift;
                out.factor_key = intern_str(&r->keys, sig->factors[f]);
                out.factor_value = v;
                out.factor_share = share;
                out.factor_baseline = baseline;
            }
        }
    }
    if (sink->incident)
        sink->incident(sink->ctx, &out);
}

char **incidents_signal_values(const struct rule_signal *sig, const struct kvset *state)
{
    char **v = xcalloc(sig->nfactors + 1, sizeof *v);
    for (size_t f = 0; f < sig->nfactors; f++)
        v[f] = state_text(state, sig->factors[f]);
    return v;
}

void incidents_fired(struct incidents *inc, const struct engine_sink *sink,
                     const struct rule_signal *sig, size_t s, const char *customer,
                     const struct kvset *state, int64_t now)
{
    incidents_fired_values(inc, sink, sig, s, customer, incidents_signal_values(sig, state), now);
}

void incidents_fired_values(struct incidents *inc, const struct engine_sink *sink,
                            const struct rule_signal *sig, size_t s, const char *customer,
                            char **values, int64_t now)
{
    struct inc_signal *is = &inc->sig[s];
    size_t nf = sig->nfactors;
    for (size_t f = 0; f < nf; f++)
        values[f] = text_of(inc, values[f]);
    struct inc_member m = {.customer = xstrdup(customer), .at = now, .values = values};

    if (is->members) {
        /* An open incident: a new customer joins it; a returning one is active again. */
        struct inc_member *old = member_find(is, customer);
        if (old) {
            if (old->resolved) {
                old->resolved = 0;
                is->nactive++;
            }
            member_free(&m, nf);
            return;
        }
        is->members = xgrow(is->members, &is->capmembers, is->nmembers + 1, sizeof *is->members);
        is->members[is->nmembers] = m;
        member_join(inc, sig, is, &is->members[is->nmembers]);
        is->nmembers++;
        is->nactive++;
        emit(inc, sink, sig, s, "customer_added", customer, now);
        return;
    }

    /* Keep the firings inside the window, one per customer (the latest). */
    size_t keep = 0;
    for (size_t i = 0; i < is->nrecent; i++) {
        struct inc_member *r = &is->recent[i];
        if (r->at <= now - sig->window || !strcmp(r->customer, customer))
            member_free(r, nf);
        else
            is->recent[keep++] = *r;
    }
    is->nrecent = keep;
    is->recent = xgrow(is->recent, &is->caprecent, is->nrecent + 1, sizeof *is->recent);
    is->recent[is->nrecent++] = m;
    if (is->nrecent < sig->min_customers)
        return;

    /* Enough customers: open the incident with every recent firing as a member. */
    is->id = ++inc->opened;
    is->opened_at = now;
    is->nmembers = 0;
    is->members = xgrow(is->members, &is->capmembers, is->nrecent, sizeof *is->members);
    strmap_init(&is->index);
    is->tally = xcalloc(nf + 1, sizeof *is->tally);
    is->tally_count = xcalloc(nf + 1, sizeof *is->tally_count);
    is->tally_cap = xcalloc(nf + 1, sizeof *is->tally_cap);
    for (size_t f = 0; f < nf; f++)
        strmap_init(&is->tally[f]);
    for (size_t i = 0; i < is->nrecent; i++) {
        member_copy(&is->members[is->nmembers], &is->recent[i], nf);
        member_join(inc, sig, is, &is->members[is->nmembers]);
        is->nmembers++;
        member_free(&is->recent[i], nf);
    }
    is->nrecent = 0;
    is->nactive = is->nmembers;
    emit(inc, sink, sig, s, "opened", NULL, now);
}

void incidents_resolved(struct incidents *inc, const struct engine_sink *sink,
                        const struct rule_signal *sig, size_t s, const char *customer,
                        int64_t now)
{
    struct inc_signal *is = &inc->sig[s];
    size_t nf = sig->nfactors;
    /* A customer that recovers no longer counts toward opening an incident. */
    for (size_t i = 0; i < is->nrecent; i++) {
        if (!strcmp(is->recent[i].customer, customer)) {
            member_free(&is->recent[i], nf);
            memmove(&is->recent[i], &is->recent[i + 1], (is->nrecent - i - 1) * sizeof *is->recent);
            is->nrecent--;
            break;
        }
    }
    if (!is->members)
        return;
    struct inc_member *mb = member_find(is, customer);
    if (mb && !mb->resolved) {
        mb->resolved = 1;
        is->nactive--;
    }
    if (is->nactive)
        return;
    emit(inc, sink, sig, s, "resolved", NULL, now);
    close_incident(is, nf);
}

/* ---- snapshots (snap.c) ---- */

static void member_write(const struct inc_member *m, size_t nf, struct buf *out)
{
    wire_put_str(out, m->customer);
    wire_put_i64(out, m->at);
    for (size_t f = 0; f < nf; f++)
        wire_put_str(out, m->values[f]);
    wire_put_u8(out, (uint8_t)m->resolved);
}

static void member_read(struct incidents *inc, struct inc_member *m, size_t nf,
                        struct wire_rd *in)
{
    m->customer = wire_get_str(in);
    m->at = wire_get_time(in);
    m->values = xcalloc(nf + 1, sizeof *m->values);
    for (size_t f = 0; f < nf; f++)
        m->values[f] = text_of(inc, wire_get_str(in));
    m->resolved = wire_get_u8(in) != 0;
    if (!m->customer)
        in->err = 1;
    if (in->err && !m->customer)
        m->customer = xstrdup(""); /* member_free and the index want a string */
}

void incidents_write(const struct incidents *inc, struct buf *out)
{
    wire_put_u64(out, inc->opened);
    for (size_t s = 0; s < inc->rules->nsignals; s++) {
        const struct inc_signal *is = &inc->sig[s];
        size_t nf = inc->rules->signals[s].nfactors;
        wire_put_u32(out, (uint32_t)is->nrecent);
        for (size_t i = 0; i < is->nrecent; i++)
            member_write(&is->recent[i], nf, out);
        wire_put_u8(out, is->members != NULL);
        if (!is->members)
            continue;
        wire_put_u64(out, is->id);
        wire_put_i64(out, is->opened_at);
        wire_put_u64(out, is->nactive);
        wire_put_u32(out, (uint32_t)is->nmembers);
        for (size_t i = 0; i < is->nmembers; i++)
            member_write(&is->members[i], nf, out);
    }
}

int incidents_read(struct incidents *inc, struct wire_rd *in)
{
    inc->opened = wire_get_u64(in);
    for (size_t s = 0; s < inc->rules->nsignals && !in->err; s++) {
        struct inc_signal *is = &inc->sig[s];
        const struct rule_signal *sig = &inc->rules->signals[s];
        size_t nf = sig->nfactors;
        uint32_t n = wire_get_count(in, 10);
        is->recent = xgrow(is->recent, &is->caprecent, n + 1, sizeof *is->recent);
        for (uint32_t i = 0; i < n && !in->err; i++)
            member_read(inc, &is->recent[is->nrecent++], nf, in);
        if (!wire_get_u8(in) || in->err)
            continue;
        is->id = wire_get_u64(in);
        is->opened_at = wire_get_time(in);
        is->nactive = wire_get_u64(in);
        n = wire_get_count(in, 10);
        /* Open as incidents_fired does, then join each member: index, names and tallies. */
        is->members = xgrow(is->members, &is->capmembers, n + 1, sizeof *is->members);
        strmap_init(&is->index);
        is->tally = xcalloc(nf + 1, sizeof *is->tally);
        is->tally_count = xcalloc(nf + 1, sizeof *is->tally_count);
        is->tally_cap = xcalloc(nf + 1, sizeof *is->tally_cap);
        for (size_t f = 0; f < nf; f++)
            strmap_init(&is->tally[f]);
        for (uint32_t i = 0; i < n && !in->err; i++) {
            member_read(inc, &is->members[is->nmembers], nf, in);
            member_join(inc, sig, is, &is->members[is->nmembers]);
            is->nmembers++;
        }
        if (is->nactive > is->nmembers)
            in->err = 1;
    }
    return in->err ? -1 : 0;
}

void incidents_count_customer(struct incidents *inc, const struct kvset *s)
{
    for (size_t k = 0; k < inc->nfactor_keys; k++) {
        char *v = state_text(s, inc->factor_keys[k]);
        count_add(inc, inc->factor_keys[k], v, +1);
        free(v);
    }
}

void incidents_write_counts(const struct incidents *inc, struct buf *out)
{
    wire_put_u64(out, inc->ncustomers);
    wire_put_u64(out, inc->counts.len);
    for (size_t i = 0; i < inc->counts.len; i++) {
        wire_put_str(out, inc->counts.entries[i].key);
        wire_put_u64(out, (uint64_t)(uintptr_t)inc->counts.entries[i].value);
    }
}

int incidents_read_counts(struct incidents *inc, struct wire_rd *in)
{
    inc->ncustomers = (size_t)wire_get_u64(in);
    uint64_t n = wire_get_u64(in);
    for (uint64_t i = 0; i < n && !in->err; i++) {
        char *name = wire_get_str(in);
        uint64_t v = wire_get_u64(in);
        if (!name) {
            in->err = 1;
            break;
        }
        strmap_upsert(&inc->counts, name, strlen(name), NULL)->value = (void *)(uintptr_t)v;
        free(name);
    }
    return in->err ? FW_EPARSE : 0;
}
