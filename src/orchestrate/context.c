/*
 * context.c -- what templates may say: the customer as the engine sees them
 * now (profile, journey state, contacts, tone, our own outreach), and the
 * signal being decided.  Only rendering and explanations read a context; no
 * decision does, so a quiet orchestrator builds an empty one.
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"
#include "util/tz.h"
#include "util/util.h"

/* ---- time in words, in the customer's zone ---- */

const struct tz *orch__zone(struct orch *o, const char *name)
{
    if (!name || !*name || !strcmp(name, "UTC") || !strcmp(name, "Etc/UTC"))
        return NULL;
    int created;
    struct strmap_entry *me = strmap_upsert(&o->zones, name, strlen(name), &created);
    if (created) {
        char err[160];
        me->value = tz_load(name, err, sizeof err); /* NULL (UTC) for an unknown zone */
        if (!me->value)
            log_warn("customer time zone: %s; using UTC", err);
    }
    return me->value;
}

/* Wall-clock fields of t in zone z (NULL: UTC). */
static void local_fields(const struct tz *z, int64_t t, int64_t *y, unsigned *mo, unsigned *d,
                         int *minute)
{
    int64_t local = t + (z ? (int64_t)tz_offset(z, t) * 1000 : 0);
    int64_t days = local >= 0 ? local / FW_DAY : -((-local + FW_DAY - 1) / FW_DAY);
    fw_civil_from_days(days, y, mo, d);
    *minute = (int)((local - days * FW_DAY) / FW_MINUTE);
}

/*
 * Appending to a fixed buffer of n bytes, truncating as snprintf would:
 * the words for times are built once per message or more, and printf's
 * format parsing was most of their cost.
 */
struct words {
    char *out;
    size_t n, k;
};

static void words_put(struct words *w, const char *s)
{
    while (*s && w->k + 1 < w->n)
        w->out[w->k++] = *s++;
    w->out[w->k] = '\0';
}

/* A decimal integer, at least `width` digits (zero-padded). */
static void words_int(struct words *w, long long v, int width)
{
    char tmp[24], *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    *--p = '\0';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u || (tmp + sizeof tmp - 1 - p) < width);
    if (v < 0)
        *--p = '-';
    words_put(w, p);
}

/* "New York time" for America/New_York; "UTC" without a zone. */
static void zone_label(const struct tz *z, struct words *w)
{
    if (!z) {
        words_put(w, "UTC");
        return;
    }
    const char *name = tz_name(z), *slash = strrchr(name, '/');
    size_t from = w->k;
    words_put(w, slash ? slash + 1 : name);
    for (size_t i = from; i < w->k; i++)
        if (w->out[i] == '_')
            w->out[i] = ' ';
    words_put(w, " time");
}

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* "Mar 2, 2026" */
static void words_date(struct words *w, int64_t y, unsigned mo, unsigned d)
{
    words_put(w, months[(mo - 1) % 12]);
    words_put(w, " ");
    words_int(w, d, 1);
    words_put(w, ", ");
    words_int(w, y, 1);
}

void orch__human_time(struct orch *o, const char *zone, int64_t t, char *out, size_t n)
{
    const struct tz *z = orch__zone(o, zone);
    int64_t y;
    unsigned mo, d;
    int m;
    local_fields(z, t, &y, &mo, &d, &m);
    int h = m / 60 % 12;
    struct words w = {out, n, 0};
    if (!n)
        return;
    out[0] = '\0';
    /* "Mar 2, 2026 at 9:14 AM (New York time)"; the label as a 64-byte buffer held it. */
    words_date(&w, y, mo, d);
    words_put(&w, " at ");
    words_int(&w, h ? h : 12, 1);
    words_put(&w, ":");
    words_int(&w, m % 60, 2);
    words_put(&w, m < 720 ? " AM (" : " PM (");
    char label[64];
    struct words lw = {label, sizeof label, 0};
    label[0] = '\0';
    zone_label(z, &lw);
    words_put(&w, label);
    words_put(&w, ")");
}

void orch__human_date(struct orch *o, const char *zone, int64_t t, char *out, size_t n)
{
    int64_t y;
    unsigned mo, d;
    int m;
    local_fields(orch__zone(o, zone), t, &y, &mo, &d, &m);
    struct words w = {out, n, 0};
    if (!n)
        return;
    out[0] = '\0';
    words_date(&w, y, mo, d);
}

void orch__human_duration(int64_t ms, char *out, size_t n)
{
    if (ms >= 2 * FW_DAY)
        snprintf(out, n, "%lld days", (long long)(ms / FW_DAY));
    else if (ms >= FW_DAY)
        snprintf(out, n, "1 day");
    else if (ms >= 2 * FW_HOUR)
        snprintf(out, n, "%lld hours", (long long)(ms / FW_HOUR));
    else if (ms >= FW_HOUR)
        snprintf(out, n, "1 hour");
    else
        snprintf(out, n, "%lld minutes", (long long)(ms / FW_MINUTE));
}

/* A state value from a customer snapshot ({"state": {"k": v}}, engine_customer_view), or NULL. */
json_t *orch__sv(json_t *snap, const char *key)
{
    return json_object_get(json_object_get(snap, "state"), key);
}

const char *orch__svs(json_t *snap, const char *key)
{
    return json_string_value(orch__sv(snap, key));
}

int64_t orch__last_at(json_t *snap, const char *type)
{
    json_t *t = json_object_get(json_object_get(snap, "last_event"), type);
    return json_is_integer(t) ? (int64_t)json_integer_value(t) : FW_TIME_NONE;
}

json_t *orch__snapshot(struct orch *o, const char *customer)
{
    json_t *j = engine_customer_view(o->engine, customer);
    return j ? j : json_object();
}

const char *orch__open_ticket(json_t *snap)
{
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(snap, "open"), i, e) {
        if (!strcmp(json_string_value(json_object_get(e, "entity")) ?: "", "ticket"))
            return json_string_value(json_object_get(e, "id"));
    }
    return NULL;
}

int orch__opted_out(json_t *snap, const char *channel)
{
    json_t *list = orch__sv(snap, "customer.opt_out");
    size_t i;
    json_t *v;
    if (json_is_string(list))
        return !strcmp(json_string_value(list), channel);
    json_array_foreach (list, i, v) {
        if (json_is_string(v) && !strcmp(json_string_value(v), channel))
            return 1;
    }
    return 0;
}
const char *orch__priority_of(enum severity s)
{
    static const char *p[] = {"low", "normal", "high", "urgent"};
    return p[s];
}

static const char *respond_within(enum severity s)
{
    static const char *p[] = {"best effort", "8 hours", "2 hours", "30 minutes"};
    return p[s];
}

static const char *followup_within(enum severity s)
{
    static const char *p[] = {"best effort", "48 hours", "24 hours", "2 hours"};
    return p[s];
}

static const char *customer_within(enum severity s)
{
    static const char *p[] = {"a few days", "24 hours", "4 hours", "1 hour"};
    return p[s];
}

void orch__lower_copy(const char *s, char *out, size_t n)
{
    size_t i = 0;
    for (; s[i] && i + 1 < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

/* ---- template contexts ---- */

/* Scalar state value as text ("" when absent). */
const char *orch__sv_text(json_t *snap, const char *key, char *tmp, size_t n)
{
    json_t *v = orch__sv(snap, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        struct words w = {tmp, n, 0};
        words_int(&w, (long long)json_integer_value(v), 1);
        return tmp;
    }
    if (json_is_real(v)) {
        snprintf(tmp, n, "%g", json_real_value(v));
        return tmp;
    }
    return NULL;
}

/* A scalar as text (NULL when absent or not a scalar). */
static const char *value_text(json_t *v, char *tmp, size_t n)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        struct words w = {tmp, n, 0};
        words_int(&w, (long long)json_integer_value(v), 1);
        return tmp;
    }
    if (json_is_real(v)) {
        snprintf(tmp, n, "%g", json_real_value(v));
        return tmp;
    }
    return NULL;
}

/* A time as the variable asks for it: a date, a time, whole days since; NULL for text. */
static const char *time_as(struct orch *o, enum rule_context_as as, const char *zone, int64_t t,
                           int64_t now, char *out, size_t n)
{
    if (as == RCTX_DATE)
        orch__human_date(o, zone, t, out, n);
    else if (as == RCTX_TIME)
        orch__human_time(o, zone, t, out, n);
    else if (as == RCTX_DAYS_SINCE)
        snprintf(out, n, "%lld", (long long)((now - t) / FW_DAY));
    else
        return NULL;
    return out;
}

/*
 * The rule pack's template variables (`context:` in the pack, docs/rules.md):
 * the first state key that has a value, the time of the customer's last
 * event of a type, or the word for whichever of some event types came last.
 * The domain's words live in the pack; this file knows none of them.
 */
/* The snapshot's parts pack_value reads, looked up once per context instead of per value. */
struct snap_parts {
    json_t *state, *last_event;
};

static struct snap_parts snap_parts(json_t *snap)
{
    return (struct snap_parts){json_object_get(snap, "state"), json_object_get(snap, "last_event")};
}

/* orch__last_at on the parts. */
static int64_t last_at(const struct snap_parts *sp, const char *type)
{
    json_t *t = json_object_get(sp->last_event, type);
    return json_is_integer(t) ? (int64_t)json_integer_value(t) : FW_TIME_NONE;
}

static const char *pack_value(struct orch *o, const struct rule_context *rc,
                              const struct snap_parts *sp, json_t *glob, const char *zone,
                              int64_t now, char *buf, size_t n)
{
    const char *out = NULL;
    if (rc->nlatest) {
        int64_t best = FW_TIME_NONE;
        for (size_t k = 0; k < rc->nlatest; k++) {
            int64_t t = last_at(sp, rc->latest_types[k]);
            if (t != FW_TIME_NONE && (best == FW_TIME_NONE || t > best)) {
                best = t;
                out = rc->latest_words[k];
            }
        }
        return out ? out : rc->otherwise;
    }
    if (rc->last) {
        int64_t t = last_at(sp, rc->last);
        return t == FW_TIME_NONE ? NULL : time_as(o, rc->as, zone, t, now, buf, n);
    }
    for (size_t k = 0; k < rc->nkeys && !out; k++) {
        const char *key = rc->keys[k];
        json_t *v = !strncmp(key, "global.", 7) ? json_object_get(glob, key + 7)
                                                 : json_object_get(sp->state, key);
        out = value_text(v, buf, n);
    }
    int64_t t;
    if (out && rc->as != RCTX_TEXT) /* parsed before buf is written again */
        return fw_time_parse(out, strlen(out), &t) ? NULL
                                                   : time_as(o, rc->as, zone, t, now, buf, n);
    return out;
}

/*
 * The pack's variables that templates can name (vars.h); the others
 * (journey.status) are read by orch__pack_var alone.
 */
static void pack_context(struct orch *o, struct comms_ctx *x, json_t *snap, json_t *glob,
                         const char *zone, int64_t now)
{
    struct snap_parts sp = snap_parts(snap);
    for (size_t i = 0; i < o->rules->ncontext; i++) {
        char buf[128];
        const struct rule_context *rc = &o->rules->context[i];
        if (o->pack_var[i] >= 0)
            comms_ctx_set_str(x, o->pack_var[i],
                              pack_value(o, rc, &sp, glob, zone, now, buf, sizeof buf));
    }
}

const char *orch__pack_var(struct orch *o, json_t *snap, const char *var, char *buf, size_t n)
{
    for (size_t i = 0; i < o->rules->ncontext; i++)
        if (!strcmp(o->rules->context[i].var, var)) {
            json_t *glob = engine_global_object(o->engine);
            struct snap_parts sp = snap_parts(snap);
            const char *v =
                pack_value(o, &o->rules->context[i], &sp, glob,
                           orch__svs(snap, "customer.timezone"), engine_now(o->engine), buf, n);
            if (v && v != buf) {
                snprintf(buf, n, "%s", v);
                v = buf;
            }
            json_decref(glob);
            return v;
        }
    return NULL;
}

/* "ticket — Mar 2, 2026 at 9:14 AM (UTC) — help": the customer's latest contact. */
static void last_contact(struct orch *o, struct comms_ctx *x, json_t *snap, const char *zone)
{
    const char *type, *kind = NULL;
    json_t *t;
    int64_t seen = FW_TIME_NONE;
    json_object_foreach (json_object_get(snap, "last_event"), type, t) {
        if (!json_is_integer(t) || !rules_type_in_class(o->rules, type, "contact"))
            continue;
        int64_t at = (int64_t)json_integer_value(t);
        if (seen == FW_TIME_NONE || at > seen || (at == seen && strcmp(type, kind) > 0)) {
            seen = at;
            kind = type;
        }
    }
    if (!kind)
        return;
    char ns[64], when[96], key[96], line[320];
    snprintf(ns, sizeof ns, "%.*s", (int)strcspn(kind, "."), kind);
    orch__human_time(o, zone, seen, when, sizeof when);
    snprintf(key, sizeof key, "%s.subject", ns);
    const char *topic = orch__svs(snap, key);
    snprintf(key, sizeof key, "%s.topic", ns);
    if (!topic)
        topic = orch__svs(snap, key);
    snprintf(line, sizeof line, "%s — %s%s%s", ns, when, topic ? " — " : "", topic ? topic : "");
    comms_ctx_set_str(x, COMMS_V_last_contact, line);
}

/*
 * Everything templates may need about a customer, now.  Only rendering and
 * explanations read it (no decision does), so a quiet orchestrator skips it.
 */
struct comms_ctx *orch__customer_context(struct orch *o, struct ocust *c, json_t *snap, int64_t now)
{
    const struct orch_config *cfg = o->cfg;
    struct comms_ctx *x = comms_ctx_new();
    if (o->quiet)
        return x;
    char tmp[256];
    const char *zone = orch__svs(snap, "customer.timezone");
    comms_ctx_set_str(x, COMMS_V_brand_name, cfg->brand.name);
    comms_ctx_set_str(x, COMMS_V_brand_sender_name, cfg->brand.sender_name);
    comms_ctx_set_str(x, COMMS_V_brand_support_url, cfg->brand.support_url);
    comms_ctx_set_str(x, COMMS_V_brand_app_name, cfg->brand.app_name);
    comms_ctx_set_str(x, COMMS_V_customer_id, c->key);
    const char *name = orch__svs(snap, "customer.name");
    const char *email = orch__svs(snap, "customer.email");
    if (!email && strchr(c->key, '@'))
        email = c->key;
    comms_ctx_set_str(x, COMMS_V_customer_name, name ? name : (email ? email : c->key));
    char first[128] = "there";
    if (name && *name) {
        snprintf(first, sizeof first, "%s", name);
        first[strcspn(first, " ")] = '\0';
    }
    comms_ctx_set_str(x, COMMS_V_customer_first_name, first);
    comms_ctx_set_str(x, COMMS_V_customer_email, email);
    const char *phone = orch__sv_text(snap, "customer.phone", tmp, sizeof tmp);
    if (phone) {
        comms_ctx_set_str(x, COMMS_V_customer_phone, phone);
        char masked[128];
        orch__mask_phone(phone, masked, sizeof masked);
        comms_ctx_set_str(x, COMMS_V_customer_phone_masked, masked);
    }
    comms_ctx_set_str(x, COMMS_V_customer_zip,
                      orch__sv_text(snap, "customer.zip", tmp, sizeof tmp));
    comms_ctx_set_str(x, COMMS_V_customer_plan, orch__svs(snap, "customer.plan"));
    comms_ctx_set_str(x, COMMS_V_customer_tier, orch__svs(snap, "customer.tier"));
    comms_ctx_set_str(x, COMMS_V_customer_value,
                      orch__sv_text(snap, "customer.value", tmp, sizeof tmp));
    comms_ctx_set_str(x, COMMS_V_customer_timezone, zone);
    json_t *glob = engine_global_object(o->engine);
    pack_context(o, x, snap, glob, zone, now);
    json_decref(glob);
    int64_t contacts = engine_count(o->engine, c->key, "contact", 7 * FW_DAY);
    comms_ctx_set_int(x, COMMS_V_contacts, contacts);
    last_contact(o, x, snap, zone);
    const char *tid = orch__open_ticket(snap);
    comms_ctx_set_bool(x, COMMS_V_has_open_ticket, tid != NULL);
    comms_ctx_set_str(x, COMMS_V_open_ticket_id, tid);
    int level = contacts < 1 ? 1 : contacts > 4 ? 4 : (int)contacts;
    comms_ctx_set_int(x, COMMS_V_tone_level, level);
    comms_ctx_set_bool(x, COMMS_V_tone_helpful, level == 1);
    comms_ctx_set_bool(x, COMMS_V_tone_empathetic, level == 2);
    comms_ctx_set_bool(x, COMMS_V_tone_apologetic, level == 3);
    comms_ctx_set_bool(x, COMMS_V_tone_urgent, level == 4);
    int reached =
        c->last_outreach != FW_TIME_NONE && now - c->last_outreach <= cfg->reached_out_window;
    comms_ctx_set_bool(x, COMMS_V_already_reached_out, reached);
    if (reached) {
        orch__human_time(o, zone, c->last_outreach, tmp, sizeof tmp);
        comms_ctx_set_str(x, COMMS_V_reached_out_at, tmp);
    }
    orch__human_time(o, zone, now, tmp, sizeof tmp);
    comms_ctx_set_str(x, COMMS_V_detected_at, tmp);
    return x;
}

void orch__signal_context(struct orch *o, struct comms_ctx *x, const struct rule_signal *s)
{
    comms_ctx_set_str(x, COMMS_V_signal_id, s->id);
    comms_ctx_set_str(x, COMMS_V_signal_name, s->name);
    comms_ctx_set_str(x, COMMS_V_signal_severity, severity_name(s->severity));
    comms_ctx_set_str(x, COMMS_V_signal_team, s->team);
    comms_ctx_set_str(x, COMMS_V_signal_root_cause, s->root_cause);
    comms_ctx_set_str(x, COMMS_V_signal_description, s->description);
    comms_ctx_set_str(x, COMMS_V_priority, orch__priority_of(s->severity));
    comms_ctx_set_str(x, COMMS_V_group, orch__group_of(o, s->team));
    comms_ctx_set_str(x, COMMS_V_sla_respond_within, respond_within(s->severity));
    comms_ctx_set_str(x, COMMS_V_sla_followup_within, followup_within(s->severity));
    comms_ctx_set_str(x, COMMS_V_response_within, customer_within(s->severity));
}

/* ---- the decision for one pass ---- */

json_t *orch__signals_array(struct orch *o, const size_t *idx, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(o->rules->signals[idx[i]].id));
    return a;
}

/*
 * Customer-facing one-liner per signal: the subject of its own email
 * template, rendered before the list is set (as the JSON context had no
 * issues yet when each headline was rendered).
 */
void orch__issues_list(struct orch *o, struct comms_ctx *x, const size_t *idx, size_t n)
{
    char **headlines = xcalloc(n ? n : 1, sizeof *headlines);
    for (size_t i = 0; i < n; i++) {
        const struct rule_signal *s = &o->rules->signals[idx[i]];
        const struct comms_tmpl *t = comms_find(o->tmpl, "customer", "email", s->id);
        if (t && !o->quiet && comms_render_headline_ctx(t, x, &headlines[i]) != 0)
            headlines[i] = NULL;
    }
    comms_ctx_set_list(x, COMMS_V_issues, n);
    for (size_t i = 0; i < n; i++) {
        const struct rule_signal *s = &o->rules->signals[idx[i]];
        comms_ctx_item_str(x, COMMS_V_issues_signal, i, s->id);
        comms_ctx_item_str(x, COMMS_V_issues_name, i, s->name);
        comms_ctx_item_str(x, COMMS_V_issues_severity, i, severity_name(s->severity));
        comms_ctx_item_str(x, COMMS_V_issues_headline, i, headlines[i] ? headlines[i] : s->name);
        free(headlines[i]);
    }
    free(headlines);
}
