/*
 * known.c -- known issues and scheduled maintenance (seed 001 "Issue
 * Alert" and "Maintenance", docs/known-issues.md).
 *
 * Each is declared and changed by a global `known_issue.changed` event
 * (from POST /v1/known-issues, or a file of them), so the journal holds
 * every change and replay reproduces every message.  The registry here is
 * derived from those events only.  An issue alerts the customers who are
 * *verified* affected: its segment condition holds for them and, when it
 * names a feature, they used that feature within `recent_use` (14 days by
 * default).  Each customer is told once per issue, when the issue is
 * declared, at their first event that makes them affected while it is
 * open, or at the instant time alone makes them affected; status updates
 * and the resolution go to exactly the customers who were told.
 * Maintenance is told `notice_before` its start (48h by default) on an
 * engine timer, with an optional reminder.
 *
 * Time: a segment can come true with no event (`age(signup()) > 30d`, a
 * usage figure at midnight).  Whenever a customer not yet told is checked,
 * the condition's next change time (expr_test) is kept, and the customer
 * holds one engine timer (struct kwake) at the earliest such time over all
 * open issues; it re-checks that customer alone.  So nothing scans every
 * customer except a declaration or segment change, and a customer costs a
 * timer only while some open issue can come true for them by time alone.
 *
 * Invariant: internal_notes is kept in the registry and never copied into
 * a template context; the template variables (comms/vars.h) have no name
 * for it, so no template can print it.
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"
#include "util/wire.h"

#define TOLD ((void *)1)    /* a customer message about the issue went (or waits) */
#define JUDGED ((void *)2)  /* affected, but every message was suppressed (opt-out, no address) */

static const char *const issue_status[] = {"investigating", "identified", "monitoring", "resolved",
                                           NULL};
static const char *const maint_status[] = {"scheduled", "completed", "cancelled", NULL};
static const char *const fields[] = {
    "id",          "kind",          "title",           "severity",   "status",
    "segment",     "description",   "workaround",      "eta",        "internal_notes",
    "feature",     "recent_use",    "starts_at",       "ends_at",    "notice_before",
    "reminder_before", NULL};

struct kissue;

struct ktimer {
    struct engine_timer t; /* first: the engine hands it back */
    struct kissue *k;
    int reminder;
};

struct kissue {
    char *id;
    int maintenance;
    json_t *rec;           /* the merged record, internal notes included */
    struct expr *verified; /* segment, and the recent use of the feature */
    int closed;            /* resolved, completed or cancelled: nobody new is told */
    int noticed, reminded; /* maintenance: the notice (the reminder) went */
    struct strmap told;    /* customer -> TOLD or JUDGED */
    struct ktimer notice, reminder;
    struct orch *o;
};

/* A severity in any case ("high", "HIGH") as enum severity; -1 when unknown. */
static int severity_parse_any(const char *s)
{
    char up[16];
    size_t i = 0;
    for (; s && s[i] && i + 1 < sizeof up; i++)
        up[i] = (char)toupper((unsigned char)s[i]);
    up[i] = 0;
    return s && !s[i] ? severity_parse(up) : -1;
}

static int in_list(const char *v, const char *const *list)
{
    for (size_t i = 0; v && list[i]; i++)
        if (!strcmp(v, list[i]))
            return 1;
    return 0;
}

static struct kissue *find(struct orch *o, const char *id)
{
    for (size_t i = 0; id && i < o->known.n; i++)
        if (!strcmp(o->known.v[i]->id, id))
            return o->known.v[i];
    return NULL;
}

static const char *rs(json_t *rec, const char *k)
{
    return json_string_value(json_object_get(rec, k));
}

static int64_t rtime(json_t *rec, const char *k)
{
    const char *s = rs(rec, k);
    int64_t t;
    return s && !fw_time_parse(s, strlen(s), &t) ? t : FW_TIME_NONE;
}

static int64_t rdur(json_t *rec, const char *k, int64_t dflt)
{
    const char *s = rs(rec, k);
    int64_t d;
    return s && !fw_duration_parse(s, strlen(s), &d) ? d : dflt;
}

/* A field that must be a string (or null where allowed); why names it. */
static int want_str(json_t *d, const char *k, int nullable, char *why, size_t n)
{
    json_t *v = json_object_get(d, k);
    if (!v || json_is_string(v) || (nullable && json_is_null(v)))
        return 0;
    snprintf(why, n, "%s: must be a string%s", k, nullable ? " or null" : "");
    return FW_EINVAL;
}

int orch__known_validate(const struct orch *o, const struct rules *rules, json_t *d, char *why,
                         size_t n)
{
    if (!json_is_object(d)) {
        snprintf(why, n, "data: must be an object");
        return FW_EINVAL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(d, k, v) if (!in_list(k, fields))
    {
        snprintf(why, n, "%s: unknown field (known: id, kind, title, severity, status, segment, "
                         "description, workaround, eta, internal_notes, feature, recent_use, "
                         "starts_at, ends_at, notice_before, reminder_before)", k);
        return FW_EINVAL;
    }
    for (size_t i = 0; fields[i]; i++)
        if (want_str(d, fields[i], strcmp(fields[i], "id") && strcmp(fields[i], "kind"), why, n))
            return FW_EINVAL;
    const char *id = rs(d, "id");
    if (!id || !*id || strlen(id) > 64 || strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                                                     "QRSTUVWXYZ0123456789_.-") != strlen(id)) {
        snprintf(why, n, "id: required, 1 to 64 letters, digits, '_', '.' or '-'");
        return FW_EINVAL;
    }
    struct kissue *cur = find((struct orch *)o, id);
    const char *kind = rs(d, "kind");
    if (kind && strcmp(kind, "issue") && strcmp(kind, "maintenance")) {
        snprintf(why, n, "kind: must be \"issue\" or \"maintenance\", got \"%s\"", kind);
        return FW_EINVAL;
    }
    int maint = cur ? cur->maintenance : kind && !strcmp(kind, "maintenance");
    if (cur && kind && maint != !strcmp(kind, "maintenance")) {
        snprintf(why, n, "kind: known issue %s is %s; its kind cannot change", id,
                 maint ? "maintenance" : "an issue");
        return FW_EINVAL;
    }
    if (cur && cur->closed) {
        snprintf(why, n, "status: known issue %s is %s; it cannot change any more", id,
                 rs(cur->rec, "status"));
        return FW_ESTATE;
    }
    if (!cur) {
        static const char *const req[] = {"title", "severity", "segment", "description", NULL};
        for (size_t i = 0; req[i]; i++)
            if (!rs(d, req[i]) || !*rs(d, req[i])) {
                snprintf(why, n, "%s: required when known issue %s is declared", req[i], id);
                return FW_EINVAL;
            }
        if (maint && (!rs(d, "starts_at") || !rs(d, "ends_at"))) {
            snprintf(why, n, "%s: required for maintenance", rs(d, "starts_at") ? "ends_at"
                                                                               : "starts_at");
            return FW_EINVAL;
        }
    }
    const char *sev = rs(d, "severity");
    if (json_object_get(d, "severity") && (!sev || severity_parse_any(sev) < 0)) {
        snprintf(why, n, "severity: must be critical, high, medium or low");
        return FW_EINVAL;
    }
    const char *st = rs(d, "status");
    if (json_object_get(d, "status") && !in_list(st, maint ? maint_status : issue_status)) {
        snprintf(why, n, "status: must be one of %s",
                 maint ? "scheduled, completed, cancelled"
                       : "investigating, identified, monitoring, resolved");
        return FW_EINVAL;
    }
    static const char *const times[] = {"eta", "starts_at", "ends_at", NULL};
    for (size_t i = 0; times[i]; i++) {
        const char *s = rs(d, times[i]);
        int64_t t;
        if (s && fw_time_parse(s, strlen(s), &t)) {
            snprintf(why, n, "%s: \"%s\" is not an RFC 3339 time with offset", times[i], s);
            return FW_EINVAL;
        }
    }
    static const char *const durs[] = {"recent_use", "notice_before", "reminder_before", NULL};
    for (size_t i = 0; durs[i]; i++) {
        const char *s = rs(d, durs[i]);
        int64_t t;
        if (s && (fw_duration_parse(s, strlen(s), &t) || t <= 0)) {
            snprintf(why, n, "%s: \"%s\" is not a positive duration such as 14d or 48h", durs[i],
                     s);
            return FW_EINVAL;
        }
    }
    json_t *merged = cur ? json_deep_copy(cur->rec) : json_object();
    json_object_update(merged, d);
    int64_t s0 = rtime(merged, "starts_at"), s1 = rtime(merged, "ends_at");
    json_decref(merged);
    if (maint && s0 != FW_TIME_NONE && s1 != FW_TIME_NONE && s1 <= s0) {
        snprintf(why, n, "ends_at: must be after starts_at");
        return FW_EINVAL;
    }
    const char *f = rs(d, "feature");
    if (f && (!*f || strspn(f, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(f))) {
        snprintf(why, n, "feature: must be a feature name (lower-case letters, digits, '_')");
        return FW_EINVAL;
    }
    const char *seg = rs(d, "segment");
    if (seg) {
        struct expr_error err;
        if (rules_compile_probe(rules, seg, strlen(seg), &err)) {
            snprintf(why, n, "segment: %u:%u: %s", err.line, err.col, err.msg);
            return FW_EINVAL;
        }
    }
    return 0;
}

/* The verified-affected condition: the segment, and a recent use of the feature if one is named. */
static int compile_verified(struct orch *o, struct kissue *k)
{
    const char *seg = rs(k->rec, "segment"), *f = rs(k->rec, "feature");
    struct buf src;
    buf_init(&src, 0);
    buf_printf(&src, "(%s)", seg ? seg : "false");
    if (f) {
        char d[FW_TIME_MAXLEN];
        fw_duration_format(rdur(k->rec, "recent_use", 14 * FW_DAY), d);
        buf_printf(&src, " and feature_last_used(\"%s\") is not null and "
                         "age(feature_last_used(\"%s\")) <= %s", f, f, d);
    }
    struct expr *x = NULL;
    struct expr_error err;
    int rc = engine_compile(o->engine, src.data, src.len, &x, &err);
    if (rc)
        log_warn("known issue %s: segment does not compile: %s", k->id, err.msg);
    buf_cleanup(&src);
    expr_free(k->verified);
    k->verified = rc ? NULL : x;
    return rc;
}

/* What templates may say: never internal_notes (comms/vars.h has no name for it). */
static void issue_context(struct orch *o, struct kissue *k, struct comms_ctx *ctx, json_t *snap)
{
    const char *zone = orch__svs(snap, "customer.timezone");
    char tmp[128];
    /* The record's fields and their variables: known_issue.* for an issue, maintenance.* for a
       maintenance (-1: the kind has no such variable). */
    static const char *const copy[] = {"title", "description", "workaround", "feature"};
    static const int copy_var[2][4] = {
        {COMMS_V_known_issue_title, COMMS_V_known_issue_description, COMMS_V_known_issue_workaround,
         COMMS_V_known_issue_feature},
        {COMMS_V_maintenance_title, COMMS_V_maintenance_description, COMMS_V_maintenance_workaround,
         COMMS_V_maintenance_feature}};
    static const char *const times[] = {"eta", "starts_at", "ends_at"};
    static const int time_var[2][3] = {
        {COMMS_V_known_issue_eta, -1, -1},
        {-1, COMMS_V_maintenance_starts_at, COMMS_V_maintenance_ends_at}};
    int m = k->maintenance != 0;
    for (size_t i = 0; i < ARRAY_SIZE(copy); i++)
        comms_ctx_set_str(ctx, copy_var[m][i], rs(k->rec, copy[i]));
    const char *st = rs(k->rec, "status");
    if (!k->maintenance)
        comms_ctx_set_str(ctx, COMMS_V_known_issue_status,
                          !strcmp(st, "investigating") ? "We're investigating the cause."
                          : !strcmp(st, "identified")  ? "We've found the cause and are fixing it."
                          : !strcmp(st, "monitoring")  ? "A fix is in place and we're watching it."
                                                       : "It's fixed.");
    for (size_t i = 0; i < ARRAY_SIZE(times); i++) {
        int64_t t = rtime(k->rec, times[i]);
        if (t == FW_TIME_NONE || time_var[m][i] < 0)
            continue;
        orch__human_time(o, zone, t, tmp, sizeof tmp);
        comms_ctx_set_str(ctx, time_var[m][i], tmp);
    }
}

/* One message about the issue to one customer (email); 1 when it counts as told. */
static int tell(struct orch *o, struct kissue *k, const char *customer, const char *tmpl,
                const char *line)
{
    int64_t now = engine_now(o->engine);
    struct ocust *c = orch__cust(o, customer);
    json_t *snap = orch__snapshot(o, customer);
    struct comms_ctx *ctx = orch__customer_context(o, c, snap, now);
    if (!o->quiet)
        issue_context(o, k, ctx, snap);
    int sev = severity_parse_any(rs(k->rec, "severity"));
    json_t *sigs = json_array();
    json_t *explain = json_pack("{s:{s:s, s:s, s:s, s:s}, s:[s]}", "known_issue", "id", k->id,
                                "kind", k->maintenance ? "maintenance" : "issue", "status",
                                rs(k->rec, "status"), "severity", rs(k->rec, "severity"),
                                "decided_by", line);
    struct buf guards;
    buf_init(&guards, 0);
    struct verdict v = orch__outreach_verdict(o, c, snap, sev < 0 ? SEV_LOW : (enum severity)sev,
                                              NULL, 0, now, &guards, OUT_NOTICE, FW_TIME_NONE);
    static const char *const chans[] = {"email"};
    struct draft d = {.audience = "customer", .customer = c->key, .kind = tmpl,
                      .tmpl_name = tmpl, .ctx = ctx, .signals = sigs, .explain = explain,
                      .at = now, .key_extra = k->id};
    int sent = orch__customer_messages(o, c, snap, chans, 1, &d, &v, &guards, NULL);
    if (sent)
        orch__note_outreach(c, NULL, 0, now, 1); /* a notice: the weekly cap does not count it */
    buf_cleanup(&guards);
    json_decref(explain);
    json_decref(sigs);
    comms_ctx_free(ctx);
    json_decref(snap);
    return sent;
}

/* The first message to a customer found affected: told or judged, never again. */
static void first_tell(struct orch *o, struct kissue *k, const char *customer)
{
    int sent = tell(o, k, customer, k->maintenance ? "maintenance" : "known_issue",
                    k->maintenance
                        ? "maintenance: the customer is in the segment; told ahead of the window"
                        : "known_issue: the segment holds and the affected feature was used "
                          "recently; told once");
    int created;
    struct strmap_entry *me = strmap_upsert(&k->told, customer, strlen(customer), &created);
    me->value = sent ? TOLD : JUDGED;
}

/* One customer's known-issue wake-up: allocated while armed, freed once nothing is due. */
struct kwake {
    struct engine_timer t; /* first: the engine hands it back */
    struct orch *o;
    struct ocust *c;
};

static void kwake_fire(struct engine_timer *t, int64_t due)
{
    struct kwake *w = (struct kwake *)t;
    (void)due;
    /* The engine no longer touches t once fire is called: the check may free it. */
    orch__known_customer(w->o, w->c->key);
}

/*
 * Wake customer `key` at `at` (FW_TIME_MAX: not at all).  only_earlier: an
 * issue's sweep knows its own next time only, so it may move the wake-up
 * earlier and never later (the early check then finds the right time).
 */
static void kwake_arm(struct orch *o, const char *key, int64_t at, int only_earlier)
{
    struct strmap_entry *me = strmap_find(&o->customers, key, strlen(key));
    struct ocust *c = me ? me->value : NULL;
    struct kwake *w = c ? c->kwake : NULL;
    if (at == FW_TIME_MAX) {
        if (!only_earlier)
            orch__known_forget(o, c);
        return;
    }
    if (!w) {
        c = c ? c : orch__cust(o, key);
        w = c->kwake = xcalloc(1, sizeof *w);
        tw_entry_init(&w->t._tw);
        w->t.fire = kwake_fire;
        w->o = o;
        w->c = c;
    } else if (tw_armed(&w->t._tw) && (w->t._tw.due == at || (only_earlier && w->t._tw.due < at))) {
        return;
    }
    engine_timer_arm(o->engine, &w->t, at);
}

void orch__known_forget(struct orch *o, struct ocust *c)
{
    if (!c || !c->kwake)
        return;
    if (o->engine)
        engine_timer_cancel(o->engine, &c->kwake->t);
    free(c->kwake);
    c->kwake = NULL;
}

/*
 * Whether issue k may still tell customer `key` something new, and until
 * when: FW_TIME_MAX for an issue, the window's start for maintenance;
 * FW_TIME_NONE when it may not.
 */
static int64_t open_for(struct orch *o, struct kissue *k, const char *key)
{
    if (!k->verified || k->closed || (k->maintenance && !k->noticed) ||
        strmap_find(&k->told, key, strlen(key)))
        return FW_TIME_NONE;
    if (!k->maintenance)
        return FW_TIME_MAX;
    int64_t start = rtime(k->rec, "starts_at");
    /* Once the window began, a notice "ahead of time" is no longer one. */
    return start != FW_TIME_NONE && engine_now(o->engine) < start ? start : FW_TIME_NONE;
}

/*
 * Everyone the issue verifiably affects who has not heard of it yet; the
 * others are woken when time alone can make it affect them.
 */
static void sweep(struct orch *o, struct kissue *k)
{
    if (!k->verified || k->closed || (k->maintenance && !k->noticed))
        return;
    for (size_t i = 0, n = engine_customer_count(o->engine); i < n; i++) {
        const char *key = engine_customer_key(o->engine, i);
        int64_t until = open_for(o, k, key), next;
        if (until == FW_TIME_NONE)
            continue;
        if (engine_test(o->engine, key, k->verified, &next))
            first_tell(o, k, key);
        else if (next < until)
            kwake_arm(o, key, next, 1);
    }
}

/* An update, the resolution, a reminder: to the customers told, and only them. */
static void tell_told(struct orch *o, struct kissue *k, const char *tmpl, const char *line)
{
    for (size_t i = 0; i < k->told.len; i++)
        if (k->told.entries[i].value == TOLD)
            tell(o, k, k->told.entries[i].key, tmpl, line);
}

static void ktimer_fire(struct engine_timer *t, int64_t due)
{
    struct ktimer *kt = (struct ktimer *)t;
    struct kissue *k = kt->k;
    (void)due;
    if (k->closed)
        return;
    if (!kt->reminder) {
        k->noticed = 1;
        sweep(k->o, k);
    } else if (k->noticed && !k->reminded) {
        k->reminded = 1;
        tell_told(k->o, k, "maintenance_reminder",
                  "maintenance_reminder: reminder_before the window, to those told");
    }
}

/* (Re)arm a maintenance's notice and reminder for its current window. */
static void arm(struct orch *o, struct kissue *k)
{
    int64_t now = engine_now(o->engine), start = rtime(k->rec, "starts_at");
    engine_timer_cancel(o->engine, &k->notice.t);
    engine_timer_cancel(o->engine, &k->reminder.t);
    if (k->closed || start == FW_TIME_NONE)
        return;
    int64_t at = start - rdur(k->rec, "notice_before", 48 * FW_HOUR);
    if (!k->noticed && at > now)
        engine_timer_arm(o->engine, &k->notice.t, at);
    else
        k->noticed = 1; /* declared inside its notice period: told now (sweep) */
    if (rs(k->rec, "reminder_before") && !k->reminded) {
        int64_t r = start - rdur(k->rec, "reminder_before", 0);
        if (r > at && r >= now)
            engine_timer_arm(o->engine, &k->reminder.t, r);
    }
}

void orch__known_event(struct orch *o, const struct event *ev)
{
    char why[320];
    if (orch__known_validate(o, o->rules, ev->data, why, sizeof why)) {
        log_warn("%s %s ignored: %s", ev->type, ev->id ? ev->id : "", why);
        return;
    }
    const char *id = rs(ev->data, "id");
    struct kissue *k = find(o, id);
    int fresh = !k;
    json_t *old = NULL;
    if (fresh) {
        k = xcalloc(1, sizeof *k);
        k->id = xstrdup(id);
        k->o = o;
        k->maintenance = rs(ev->data, "kind") && !strcmp(rs(ev->data, "kind"), "maintenance");
        k->rec = json_pack("{s:s, s:s}", "kind", k->maintenance ? "maintenance" : "issue",
                           "status", k->maintenance ? "scheduled" : "investigating");
        strmap_init(&k->told);
        k->notice = (struct ktimer){.t.fire = ktimer_fire, .k = k};
        k->reminder = (struct ktimer){.t.fire = ktimer_fire, .k = k, .reminder = 1};
        tw_entry_init(&k->notice.t._tw);
        tw_entry_init(&k->reminder.t._tw);
        o->known.v = xgrow(o->known.v, &o->known.cap, o->known.n + 1, sizeof *o->known.v);
        o->known.v[o->known.n++] = k;
    } else {
        old = json_deep_copy(k->rec);
    }
    json_object_update(k->rec, ev->data);
    json_t *sev = json_object_get(k->rec, "severity");
    char up[16];
    orch__lower_copy(json_string_value(sev), up, sizeof up);
    json_object_set_new(k->rec, "severity", json_string(up));
    int64_t now = engine_now(o->engine);
    if (fresh)
        json_object_set_new(k->rec, "declared_at", json_integer(now));
    json_object_set_new(k->rec, "updated_at", json_integer(now));
    if (fresh || json_object_get(ev->data, "segment") || json_object_get(ev->data, "feature") ||
        json_object_get(ev->data, "recent_use"))
        compile_verified(o, k);
    const char *st = rs(k->rec, "status");
    int closing = !strcmp(st, "resolved") || !strcmp(st, "completed") || !strcmp(st, "cancelled");
    /* What a customer already told hears about: status, ETA, workaround, window. */
    int news = 0;
    static const char *const watched[] = {"status", "eta", "workaround", "starts_at", "ends_at",
                                          "description", NULL};
    for (size_t i = 0; old && watched[i]; i++)
        news |= !json_equal(json_object_get(old, watched[i]), json_object_get(k->rec, watched[i]));
    json_decref(old);
    if (closing) {
        k->closed = 1;
        if (k->maintenance) {
            engine_timer_cancel(o->engine, &k->notice.t);
            engine_timer_cancel(o->engine, &k->reminder.t);
            if (!strcmp(st, "cancelled") && k->noticed)
                tell_told(o, k, "maintenance_cancelled",
                          "maintenance_cancelled: to the customers told of it");
        } else {
            tell_told(o, k, "known_issue_resolved",
                      "known_issue_resolved: to the customers told of it, and only them");
        }
        return;
    }
    if (k->maintenance) {
        if (news && k->noticed)
            tell_told(o, k, "maintenance_update",
                      "maintenance_update: the window changed; to the customers told of it");
        arm(o, k);
        sweep(o, k);
        return;
    }
    if (news)
        tell_told(o, k, "known_issue_update",
                  "known_issue_update: status or ETA changed; to the customers told of it");
    sweep(o, k);
}

void orch__known_customer(struct orch *o, const char *customer)
{
    int64_t wake = FW_TIME_MAX;
    for (size_t i = 0; i < o->known.n; i++) {
        struct kissue *k = o->known.v[i];
        int64_t until = open_for(o, k, customer), next;
        if (until == FW_TIME_NONE)
            continue;
        if (engine_test(o->engine, customer, k->verified, &next))
            first_tell(o, k, customer);
        else if (next < until && next < wake)
            wake = next;
    }
    kwake_arm(o, customer, wake, 0);
}

int orch_known_check(struct orch *o, const struct event *ev, char *why, size_t n)
{
    return orch__known_validate(o, o->rules, ev->data, why, n);
}

json_t *orch_known_json(const struct orch *o)
{
    json_t *list = json_array();
    for (size_t i = 0; o && i < o->known.n; i++) {
        const struct kissue *k = o->known.v[i];
        json_t *r = json_deep_copy(k->rec);
        char t[FW_TIME_MAXLEN];
        static const char *const ts[] = {"declared_at", "updated_at", NULL};
        for (size_t j = 0; ts[j]; j++) {
            fw_time_format(json_integer_value(json_object_get(r, ts[j])), t);
            json_object_set_new(r, ts[j], json_string(t));
        }
        size_t told = 0, judged = 0;
        json_t *who = json_array(), *all = json_array();
        for (size_t j = 0; j < k->told.len; j++) {
            told += k->told.entries[j].value == TOLD;
            judged += k->told.entries[j].value == JUDGED;
            if (k->told.entries[j].value == TOLD)
                json_array_append_new(who, json_string(k->told.entries[j].key));
            json_array_append_new(all, json_string(k->told.entries[j].key));
        }
        json_object_set_new(r, "affected_customers", all);
        json_object_set_new(r, "affected", json_integer((json_int_t)(told + judged)));
        json_object_set_new(r, "told", json_integer((json_int_t)told));
        json_object_set_new(r, "told_customers", who);
        json_array_append_new(list, r);
    }
    return list;
}

void orch__known_cleanup(struct orch *o)
{
    for (size_t i = 0; i < o->known.n; i++) {
        struct kissue *k = o->known.v[i];
        if (o->engine) {
            engine_timer_cancel(o->engine, &k->notice.t);
            engine_timer_cancel(o->engine, &k->reminder.t);
        }
        expr_free(k->verified);
        json_decref(k->rec);
        strmap_cleanup(&k->told);
        free(k->id);
        free(k);
    }
    free(o->known.v);
}

/* ---- snapshots (snap.c) ---- */

void orch__kwake_write(const struct orch *o, const struct ocust *c, struct buf *out)
{
    wire_put_u8(out, c->kwake != NULL);
    if (c->kwake)
        engine_timer_write(o->engine, &c->kwake->t, out);
}

void orch__kwake_read(struct orch *o, struct ocust *c, struct wire_rd *in)
{
    if (!wire_get_u8(in) || in->err)
        return;
    struct kwake *w = c->kwake = xcalloc(1, sizeof *w);
    tw_entry_init(&w->t._tw);
    w->t.fire = kwake_fire;
    w->o = o;
    w->c = c;
    engine_timer_read(o->engine, &w->t, in);
}

void orch__known_write(const struct orch *o, struct buf *out)
{
    wire_put_u32(out, (uint32_t)o->known.n);
    for (size_t i = 0; i < o->known.n; i++) {
        const struct kissue *k = o->known.v[i];
        wire_put_str(out, k->id);
        wire_put_u8(out, (uint8_t)k->maintenance);
        char *rec = json_dumps(k->rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
        wire_put_str(out, rec);
        free(rec);
        wire_put_u8(out, (uint8_t)k->closed);
        wire_put_u8(out, (uint8_t)k->noticed);
        wire_put_u8(out, (uint8_t)k->reminded);
        wire_put_u32(out, (uint32_t)k->told.len);
        for (size_t j = 0; j < k->told.len; j++) {
            wire_put_str(out, k->told.entries[j].key);
            wire_put_u8(out, k->told.entries[j].value == TOLD);
        }
        engine_timer_write(o->engine, &k->notice.t, out);
        engine_timer_write(o->engine, &k->reminder.t, out);
    }
}

void orch__known_read(struct orch *o, struct wire_rd *in)
{
    uint32_t n = wire_get_count(in, 20);
    for (uint32_t i = 0; i < n && !in->err; i++) {
        char *id = wire_get_str(in);
        if (!id || find(o, id)) {
            free(id);
            in->err = 1;
            return;
        }
        struct kissue *k = xcalloc(1, sizeof *k);
        k->id = id;
        k->o = o;
        strmap_init(&k->told);
        k->notice = (struct ktimer){.t.fire = ktimer_fire, .k = k};
        k->reminder = (struct ktimer){.t.fire = ktimer_fire, .k = k, .reminder = 1};
        tw_entry_init(&k->notice.t._tw);
        tw_entry_init(&k->reminder.t._tw);
        o->known.v = xgrow(o->known.v, &o->known.cap, o->known.n + 1, sizeof *o->known.v);
        o->known.v[o->known.n++] = k; /* freed with the registry whatever follows */
        k->maintenance = wire_get_u8(in);
        char *rec = wire_get_str(in);
        json_error_t jerr;
        k->rec = rec ? json_loads(rec, 0, &jerr) : NULL;
        free(rec);
        if (!json_is_object(k->rec)) {
            in->err = 1;
            return;
        }
        k->closed = wire_get_u8(in);
        k->noticed = wire_get_u8(in);
        k->reminded = wire_get_u8(in);
        uint32_t nt = wire_get_count(in, 2);
        for (uint32_t j = 0; j < nt && !in->err; j++) {
            char *who = wire_get_str(in);
            if (!who) {
                in->err = 1;
                break;
            }
            int created;
            struct strmap_entry *me = strmap_upsert(&k->told, who, strlen(who), &created);
            me->value = wire_get_u8(in) ? TOLD : JUDGED;
            free(who);
            if (!created)
                in->err = 1;
        }
        if (!in->err)
            engine_timer_read(o->engine, &k->notice.t, in);
        if (!in->err)
            engine_timer_read(o->engine, &k->reminder.t, in);
        if (!in->err)
            compile_verified(o, k); /* from the record, as its declaration did */
    }
}
