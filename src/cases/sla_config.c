/*
 * sla_config.c -- the `sla:` configuration section: calendars (zone, weekly
 * hours, holidays) and case policies.
 *
 * The section is parsed into a scratch sla_config and moved into place only
 * when it has no error, so a bad file never leaves half a section applied.
 * Calendars are built first whatever their place in the mapping, so a
 * policy may name a calendar defined after it.
 */
#include "cases/sla_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fwtime.h"
#include "util/util.h"

#define CERR(node, ...)                                                                            \
    do {                                                                                           \
        ydiag(d, diag, (node), __VA_ARGS__);                                                       \
        rc = FW_EPARSE;                                                                            \
    } while (0)

static const char *const weekdays[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
static const char *const target_keys[SLA_NTARGETS] = {"first_response", "customer_contact",
                                                      "resolution"};

void sla_config_init(struct sla_config *s)
{
    memset(s, 0, sizeof *s);
    s->warn_before = 30 * FW_MINUTE;
}

void sla_config_cleanup(struct sla_config *s)
{
    for (size_t i = 0; i < s->ncalendars; i++)
        calendar_free(s->calendars[i]);
    free(s->calendars);
    for (size_t i = 0; i < s->npolicies; i++) {
        free(s->policies[i].match);
        free(s->policies[i].where);
    }
    free(s->policies);
    sla_config_init(s);
}

const struct calendar *sla_calendar_find(const struct sla_config *s, const char *name)
{
    for (size_t i = 0; name && i < s->ncalendars; i++)
        if (!strcmp(calendar_name(s->calendars[i]), name))
            return s->calendars[i];
    return NULL;
}

/*
 * A duration: the config's usual "30m", "8h", "3d", "1h30m", plus "0" when
 * zero is allowed.  Negative values get their own message.
 */
static int parse_duration(struct ydoc *d, struct buf *diag, yaml_node_t *v, const char *what,
                          int allow_zero, int64_t *out)
{
    int rc = 0;
    int64_t ms = 0;
    const char *s = yscalar(v);
    if (s && s[0] == '-')
        CERR(v, "%s must not be negative", what);
    else if (s && !strcmp(s, "0"))
        ms = 0;
    else if (!s || fw_duration_parse(s, strlen(s), &ms))
        CERR(v, "bad duration '%s' for %s (expected e.g. 30m, 8h, 3d)", s ? s : "?", what);
    if (!rc && ms == 0 && !allow_zero)
        CERR(v, "%s must be more than 0", what);
    if (!rc)
        *out = ms;
    return rc;
}

/* "HH:MM" at *p (spaces skipped around it); end-of-day 24:00 allowed when is_end. */
static int parse_hhmm(const char **p, int is_end, int *minutes)
{
    const char *s = *p;
    int h = 0, m = 0, nd = 0;
    while (*s == ' ')
        s++;
    while (*s >= '0' && *s <= '9' && nd < 2)
        h = h * 10 + (*s++ - '0'), nd++;
    if (!nd || *s++ != ':' || s[0] < '0' || s[0] > '5' || s[1] < '0' || s[1] > '9')
        return -1;
    m = (s[0] - '0') * 10 + (s[1] - '0');
    s += 2;
    while (*s == ' ')
        s++;
    if (h > 24 || (h == 24 && (m || !is_end)))
        return -1;
    *minutes = h * 60 + m;
    *p = s;
    return 0;
}

/* Add the ranges of one string ("09:00-17:00" or "09:00-12:00, 13:00-17:00") to day wday. */
static int parse_ranges(struct calendar *c, int wday, struct ydoc *d, struct buf *diag,
                        yaml_node_t *v)
{
    int rc = 0;
    const char *s = yscalar(v);
    if (!s) {
        CERR(v, "hours for %s must be a range such as \"09:00-17:00\" or a list of them",
             weekdays[wday]);
        return rc;
    }
    for (const char *p = s;;) {
        while (*p == ' ')
            p++;
        const char *item = p;
        size_t ilen = strcspn(item, ",");
        int start, end;
        if (parse_hhmm(&p, 0, &start) || *p++ != '-' || parse_hhmm(&p, 1, &end) ||
            (*p && *p != ',')) {
            CERR(v, "malformed range '%.*s' (expected HH:MM-HH:MM, e.g. 09:00-17:00)", (int)ilen,
                 item);
            return rc;
        }
        int e = calendar_add_hours(c, wday, start, end);
        if (e == FW_EINVAL)
            CERR(v, "range '%.*s' ends before it starts", (int)ilen, item);
        else if (e == FW_EEXISTS)
            CERR(v, "range '%.*s' overlaps another range on %s", (int)ilen, item, weekdays[wday]);
        if (!*p)
            break;
        p++; /* the comma */
    }
    return rc;
}

static int parse_hours(struct calendar *c, struct ydoc *d, struct buf *diag, yaml_node_t *n)
{
    int rc = 0;
    unsigned seen = 0;
    if (n->type != YAML_MAPPING_NODE) {
        CERR(n, "hours must be a mapping of weekday to ranges, e.g. {mon: \"09:00-17:00\"}");
        return rc;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *k = yscalar(kn);
        int wday = 0;
        while (wday < 7 && (!k || strcmp(k, weekdays[wday])))
            wday++;
        if (wday == 7) {
            CERR(kn, "unknown weekday '%s' (expected mon, tue, wed, thu, fri, sat or sun)",
                 k ? k : "?");
            continue;
        }
        if (seen & (1u << wday)) {
            CERR(kn, "hours for %s are given twice", k);
            continue;
        }
        seen |= 1u << wday;
        if (v->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++)
                if (parse_ranges(c, wday, d, diag, ydoc_node(d, *it)))
                    rc = FW_EPARSE;
        } else if (parse_ranges(c, wday, d, diag, v)) {
            rc = FW_EPARSE;
        }
    }
    return rc;
}

static int parse_holidays(struct calendar *c, struct ydoc *d, struct buf *diag, yaml_node_t *n)
{
    int rc = 0;
    if (n->type != YAML_SEQUENCE_NODE) {
        CERR(n, "holidays must be a list of dates, e.g. [\"2026-12-25\"]");
        return rc;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *v = ydoc_node(d, *it);
        const char *s = yscalar(v);
        int y, m, dd, len = 0;
        if (!s || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &dd, &len) != 3 ||
            len != 10 || s[4] != '-' || s[7] != '-' || strspn(s, "0123456789-") != 10) {
            CERR(v, "malformed holiday date '%s' (expected YYYY-MM-DD)", s ? s : "?");
            continue;
        }
        int e = calendar_add_holiday(c, y, m, dd);
        if (e == FW_EINVAL)
            CERR(v, "malformed holiday date '%s' (no such day)", s);
        else if (e == FW_EEXISTS)
            CERR(v, "holiday %s is listed twice", s);
    }
    return rc;
}

/* One calendar: {timezone: ..., hours: {...}, holidays: [...]}; *out set only on success. */
static int parse_calendar(struct ydoc *d, struct buf *diag, yaml_node_t *kn, yaml_node_t *n,
                          struct calendar **out)
{
    int rc = 0;
    const char *name = yscalar(kn);
    if (n->type != YAML_MAPPING_NODE) {
        CERR(n, "calendar '%s' must be a mapping with timezone, hours and holidays", name);
        return rc;
    }
    yaml_node_t *zn = ymap_get(d, n, "timezone");
    const char *zname = yscalar(zn);
    struct tz *z = NULL;
    char err[256];
    if (!zn)
        CERR(kn, "calendar '%s' needs a timezone, e.g. timezone: America/New_York", name);
    else if (!zname)
        CERR(zn, "timezone must be a zone name such as America/New_York");
    else if (!(z = tz_load(zname, err, sizeof err)))
        CERR(zn, "%s", err);
    /* Without a zone the rest is still checked, against UTC, so one run shows every error. */
    struct calendar *c = calendar_new(name, z ? z : tz_load("UTC", NULL, 0));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *ks = yscalar(k);
        if (ks && !strcmp(ks, "timezone"))
            continue;
        if (ks && !strcmp(ks, "hours")) {
            if (parse_hours(c, d, diag, v))
                rc = FW_EPARSE;
        } else if (ks && !strcmp(ks, "holidays")) {
            if (parse_holidays(c, d, diag, v))
                rc = FW_EPARSE;
        } else {
            CERR(k, "unknown calendar setting '%s' (expected timezone, hours, holidays)",
                 ks ? ks : "?");
        }
    }
    if (!rc && !calendar_week_minutes(c))
        CERR(kn, "calendar '%s' has no working hours at all", name);
    if (rc)
        calendar_free(c);
    else
        *out = c;
    return rc;
}

static int parse_calendars(struct sla_config *s, struct ydoc *d, struct buf *diag, yaml_node_t *n)
{
    int rc = 0;
    if (n->type != YAML_MAPPING_NODE) {
        CERR(n, "calendars must be a mapping of name to calendar");
        return rc;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *name = yscalar(kn);
        struct calendar *c = NULL;
        if (!name || !*name) {
            CERR(kn, "calendar names must be plain names");
            continue;
        }
        if (sla_calendar_find(s, name)) {
            CERR(kn, "calendar '%s' is defined twice", name);
            continue;
        }
        if (parse_calendar(d, diag, kn, v, &c)) {
            rc = FW_EPARSE;
            continue;
        }
        s->calendars = xrealloc(s->calendars, (s->ncalendars + 1) * sizeof *s->calendars);
        s->calendars[s->ncalendars++] = c;
    }
    return rc;
}

/* 1-based line and column of the first character of a scalar's text (past a quote or a
   block header), so errors found when the expression is compiled can add their offset. */
static void text_pos(struct ydoc *d, const yaml_node_t *v, int *line, int *col)
{
    size_t l = v->start_mark.line, c = v->start_mark.column;
    switch (v->data.scalar.style) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        c++;
        break;
    case YAML_LITERAL_SCALAR_STYLE:
    case YAML_FOLDED_SCALAR_STYLE: {
        size_t i = 0, at = 0;
        l++;
        while (i < d->len && at < l)
            at += d->text[i++] == '\n';
        c = 0;
        while (i + c < d->len && d->text[i + c] == ' ')
            c++;
        break;
    }
    default:
        break;
    }
    *line = (int)l + 1;
    *col = (int)c + 1;
}

static int parse_policy(struct sla_config *s, struct ydoc *d, struct buf *diag, yaml_node_t *cals,
                        yaml_node_t *n, struct sla_policy *pol)
{
    int rc = 0;
    memset(pol, 0, sizeof *pol);
    for (int i = 0; i < SLA_NTARGETS; i++)
        pol->target[i] = -1;
    if (n->type != YAML_MAPPING_NODE) {
        CERR(n, "each policy must be a mapping: match, calendar, first_response, "
                "customer_contact, resolution");
        return rc;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *k = yscalar(kn), *val = yscalar(v);
        int t = 0;
        while (t < SLA_NTARGETS && (!k || strcmp(k, target_keys[t])))
            t++;
        if (t < SLA_NTARGETS) {
            if (parse_duration(d, diag, v, k, t == SLA_CUSTOMER_CONTACT, &pol->target[t]))
                rc = FW_EPARSE;
        } else if (k && !strcmp(k, "match")) {
            if (!val || !*val) {
                CERR(v, "match must be a condition, e.g. \"severity == 'HIGH'\"");
                continue;
            }
            free(pol->match);
            free(pol->where);
            pol->match = xstrdup(val);
            text_pos(d, v, &pol->line, &pol->col);
            char where[512];
            snprintf(where, sizeof where, "%s:%d:%d", d->name, pol->line, pol->col);
            pol->where = xstrdup(where);
        } else if (k && !strcmp(k, "calendar")) {
            if (val && !(pol->calendar = sla_calendar_find(s, val)) && ymap_get(d, cals, val))
                rc = FW_EPARSE; /* defined but bad: its errors are reported already */
            else if (!val || !pol->calendar)
                CERR(v, "unknown calendar '%s'%s", val ? val : "?",
                     s->ncalendars ? "" : " (sla.calendars defines none)");
        } else {
            CERR(kn,
                 "unknown policy setting '%s' (expected match, calendar, first_response, "
                 "customer_contact, resolution)",
                 k ? k : "?");
        }
    }
    return rc;
}

static int parse_policies(struct sla_config *s, struct ydoc *d, struct buf *diag, yaml_node_t *cals,
                          yaml_node_t *n)
{
    int rc = 0;
    if (n->type != YAML_SEQUENCE_NODE) {
        CERR(n, "policies must be a list");
        return rc;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        s->policies = xrealloc(s->policies, (s->npolicies + 1) * sizeof *s->policies);
        /* Kept even when bad, so cleanup frees what it holds. */
        if (parse_policy(s, d, diag, cals, ydoc_node(d, *it), &s->policies[s->npolicies++]))
            rc = FW_EPARSE;
    }
    return rc;
}

int sla_config_parse(struct sla_config *out, struct ydoc *d, yaml_node_t *n, struct buf *diag)
{
    int rc = 0, have_policies = 0;
    struct sla_config tmp, *s = &tmp;
    sla_config_init(s);
    if (!n || n->type != YAML_MAPPING_NODE) {
        CERR(n, "sla must be a mapping: warn_before, calendars, policies");
        return rc;
    }
    yaml_node_t *cals = ymap_get(d, n, "calendars");
    if (cals && parse_calendars(s, d, diag, cals))
        rc = FW_EPARSE;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *k = yscalar(kn);
        if (k && !strcmp(k, "calendars")) {
            if (v != cals)
                CERR(kn, "sla.calendars is given twice");
        } else if (k && !strcmp(k, "warn_before")) {
            if (parse_duration(d, diag, v, "warn_before", 1, &s->warn_before))
                rc = FW_EPARSE;
        } else if (k && !strcmp(k, "policies")) {
            if (have_policies++)
                CERR(kn, "sla.policies is given twice");
            else if (parse_policies(s, d, diag, cals, v))
                rc = FW_EPARSE;
        } else {
            CERR(kn, "unknown sla setting '%s' (expected warn_before, calendars, policies)",
                 k ? k : "?");
        }
    }
    if (rc) {
        sla_config_cleanup(s);
        return rc;
    }
    sla_config_cleanup(out);
    *out = tmp;
    return 0;
}
