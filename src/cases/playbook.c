/*
 * playbook.c -- loading playbook files and choosing a case's playbook (see
 * playbook.h and docs/guidance.md).
 *
 * Everything a playbook says is checked when it loads, with the place of
 * the mistake: unknown keys, action types, durations, conditions (the rule
 * language, compiled here against the case's fields), signal ids (against
 * the rule pack), and scripts (message templates for the customer's
 * audience, so a script cannot name an internal variable).  A file that
 * loads is never refused later.
 */
#include "cases/playbook.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comms/comms.h"
#include "expr/expr.h"
#include "rules/rules.h"
#include "util/fwtime.h"
#include "util/map.h"
#include "util/util.h"
#include "util/yaml.h"

extern const char playbooks_builtin_telecom[];
extern const size_t playbooks_builtin_telecom_len;

/* The template path whose variables a script may use: the customer's audience. */
#define SCRIPT_PATH "customer/sms/playbook.tmpl"

static const char *const action_names[] = {
#define PB__NAME(n) #n,
    PB_ACTIONS(PB__NAME)
#undef PB__NAME
};

const char *pb_action_name(int a) { return a >= 0 && a < PB_NACTIONS ? action_names[a] : NULL; }

static int action_parse(const char *s)
{
    for (int i = 0; s && i < PB_NACTIONS; i++)
        if (!strcmp(s, action_names[i]))
            return i;
    return -1;
}

/* Names a condition may read without a dot; dotted names are customer state keys. */
static const char *const case_fields[] = {
    "severity",        "signal",  "signals",     "customer", "tier", "value", "sentiment",
    "sentiment_trend", "intents", "tenure_days", "contacts", "text", NULL};

void playbooks_init(struct playbooks *p)
{
    memset(p, 0, sizeof *p);
    buf_init(&p->diag, 0);
    struct intern *names = xcalloc(1, sizeof *names);
    intern_init(names);
    p->_names = names;
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void pb_free(struct playbook *b)
{
    free(b->id);
    free(b->name);
    free(b->description);
    free(b->where);
    free(b->when_src);
    expr_free(b->when);
    free_strs(b->signals, b->nsignals);
    free_strs(b->keywords, b->nkeywords);
    free(b->urgency);
    free(b->reason);
    comms_tmpl_free(b->opening);
    comms_tmpl_free(b->closing);
    for (size_t i = 0; i < b->npoints; i++)
        comms_tmpl_free(b->points[i]);
    free(b->points);
    free_strs(b->avoid, b->navoid);
    free(b->win);
    for (size_t i = 0; i < b->nsteps; i++) {
        free(b->steps[i].description);
        free(b->steps[i].script_src);
        comms_tmpl_free(b->steps[i].script);
    }
    free(b->steps);
}

void playbooks_cleanup(struct playbooks *p)
{
    for (size_t i = 0; i < p->nesc; i++) {
        struct pb_escalation *e = &p->esc[i];
        free(e->id);
        free(e->reason);
        free(e->where);
        free(e->when_src);
        expr_free(e->when);
        free(e->playbook);
        free(e->notify);
    }
    free(p->esc);
    for (size_t i = 0; i < p->n; i++)
        pb_free(&p->pb[i]);
    free(p->pb);
    buf_cleanup(&p->diag);
    if (p->_names) {
        intern_cleanup(p->_names);
        free(p->_names);
    }
    memset(p, 0, sizeof *p);
}

const struct playbook *playbooks_find(const struct playbooks *p, const char *id, size_t *index)
{
    for (size_t i = 0; id && i < p->n; i++)
        if (!strcmp(p->pb[i].id, id)) {
            if (index)
                *index = i;
            return &p->pb[i];
        }
    return NULL;
}

/* ---- loading ---- */

struct ld {
    struct playbooks *p;
    struct ydoc *d;
    const struct rules *rules;
    int rc;
};

#define ERR(L, node, ...)                                                                          \
    do {                                                                                           \
        ydiag((L)->d, &(L)->p->diag, (node), __VA_ARGS__);                                         \
        (L)->p->nerrors++;                                                                         \
        (L)->rc = FW_EPARSE;                                                                       \
    } while (0)

/* Where a scalar's text starts (0-based): after a quote; on the next line for a block scalar. */
static void scalar_origin(struct ydoc *d, const yaml_node_t *n, size_t *line, size_t *col)
{
    *line = n->start_mark.line;
    *col = n->start_mark.column;
    yaml_scalar_style_t st = n->data.scalar.style;
    if (st == YAML_SINGLE_QUOTED_SCALAR_STYLE || st == YAML_DOUBLE_QUOTED_SCALAR_STYLE) {
        (*col)++;
    } else if (st == YAML_LITERAL_SCALAR_STYLE || st == YAML_FOLDED_SCALAR_STYLE) {
        size_t i = n->start_mark.index;
        while (i < d->len && d->text[i] != '\n')
            i++;
        size_t c = 0;
        for (i++; i + c < d->len && d->text[i + c] == ' '; c++)
            ;
        (*line)++;
        *col = c;
    }
}

static void unknown_keys(struct ld *L, yaml_node_t *m, const char *const *allowed, const char *what)
{
    if (!m || m->type != YAML_MAPPING_NODE)
        return;
    for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < m->data.mapping.pairs.top; q++) {
        yaml_node_t *kn = ydoc_node(L->d, q->key);
        const char *k = yscalar(kn);
        int ok = 0;
        for (size_t i = 0; k && allowed[i]; i++)
            ok |= !strcmp(k, allowed[i]);
        if (!ok) {
            size_t len = 0;
            char list[256] = "";
            for (size_t i = 0; allowed[i]; i++)
                len += (size_t)snprintf(list + len, len < sizeof list ? sizeof list - len : 0,
                                        "%s%s", i ? ", " : "", allowed[i]);
            ERR(L, kn, "unknown field '%s' in %s (expected %s)", k ? k : "?", what, list);
        }
    }
}

/* A required or optional non-empty string. */
static char *str_field(struct ld *L, yaml_node_t *m, const char *key, int required,
                       const char *what)
{
    yaml_node_t *v = ymap_get(L->d, m, key);
    if (!v) {
        if (required)
            ERR(L, m, "%s needs '%s'", what, key);
        return NULL;
    }
    const char *s = yscalar(v);
    if (!s || !*s) {
        ERR(L, v, "%s must be a non-empty string", key);
        return NULL;
    }
    return xstrdup(s);
}

static char **str_list(struct ld *L, yaml_node_t *m, const char *key, size_t *n, int lower)
{
    yaml_node_t *v = ymap_get(L->d, m, key);
    *n = 0;
    if (!v)
        return NULL;
    if (v->type != YAML_SEQUENCE_NODE) {
        ERR(L, v, "%s must be a list of strings", key);
        return NULL;
    }
    size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    char **out = xcalloc(cnt ? cnt : 1, sizeof *out);
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *x = ydoc_node(L->d, *it);
        const char *s = yscalar(x);
        if (!s || !*s) {
            ERR(L, x, "each entry of %s must be a non-empty string", key);
            continue;
        }
        char *c = xstrdup(s);
        if (lower)
            for (char *q = c; *q; q++)
                *q = (char)tolower((unsigned char)*q);
        out[(*n)++] = c;
    }
    return out;
}

/*
 * Compile a script as a message template for the customer.  On a mistake
 * the template is compiled once more, padded so that its lines and columns
 * are the YAML file's, and that diagnostic is what the user sees.
 */
static struct comms_tmpl *script(struct ld *L, yaml_node_t *v, const char *what)
{
    const char *s = yscalar(v);
    if (!s || !*s) {
        ERR(L, v, "%s must be a non-empty string (a template)", what);
        return NULL;
    }
    struct comms_tmpl *t = NULL;
    struct buf scratch;
    buf_init(&scratch, 0);
    int rc = comms_tmpl_compile(L->d->name, SCRIPT_PATH, s, strlen(s), &t, &scratch);
    buf_cleanup(&scratch);
    if (!rc)
        return t;
    size_t line, col;
    scalar_origin(L->d, v, &line, &col);
    struct buf padded;
    buf_init(&padded, 0);
    for (size_t i = 0; i < line; i++)
        buf_putc(&padded, '\n');
    /* The YAML line up to the script, braces blanked, so the caret line reads as the file. */
    size_t i = 0, l = 0;
    while (i < L->d->len && l < line)
        if (L->d->text[i++] == '\n')
            l++;
    for (size_t c = 0; c < col; c++) {
        char ch = i + c < L->d->len ? L->d->text[i + c] : ' ';
        buf_putc(&padded, ch == '{' || ch == '}' || ch == '\n' ? ' ' : ch);
    }
    buf_puts(&padded, s);
    size_t before = L->p->diag.len;
    if (!comms_tmpl_compile(L->d->name, SCRIPT_PATH, padded.data, padded.len, &t, &L->p->diag)) {
        comms_tmpl_free(t); /* cannot happen: the same text failed above */
        t = NULL;
    }
    if (L->p->diag.len == before)
        ERR(L, v, "%s is not a valid template", what);
    else
        for (const char *e = L->p->diag.data + before; (e = strstr(e, ": error: ")); e++)
            L->p->nerrors++;
    L->rc = FW_EPARSE;
    buf_cleanup(&padded);
    return NULL;
}

static int64_t resolve(void *ctx, enum expr_ref kind, const char *name, size_t len)
{
    struct intern *names = ctx;
    if (kind != EXPR_REF_STATE)
        return -1; /* no events, classes or entities: a playbook reads the case */
    if (!memchr(name, '.', len)) {
        int ok = 0;
        for (size_t i = 0; case_fields[i]; i++)
            ok |= strlen(case_fields[i]) == len && !memcmp(case_fields[i], name, len);
        if (!ok)
            return -1;
    }
    return intern_id(names, name, len);
}

static void condition(struct ld *L, struct playbook *b, yaml_node_t *v)
{
    const char *src = yscalar(v);
    if (!src || !*src) {
        ERR(L, v, "when must be a condition in the rule language");
        return;
    }
    b->when_src = xstrdup(src);
    struct expr_resolver r = {.ctx = L->p->_names, .resolve = resolve};
    struct expr_error err;
    if (expr_compile(src, strlen(src), &r, &b->when, &err)) {
        size_t line, col;
        scalar_origin(L->d, v, &line, &col);
        line += err.line - 1;
        col = err.line == 1 ? col + err.col - 1 : err.col - 1;
        const char *hint = strstr(err.msg, "unknown")
                               ? " (a playbook reads severity, signal, signals, customer, tier, "
                                 "value, sentiment, sentiment_trend, intents, tenure_days, "
                                 "contacts, text, and dotted "
                                 "state keys such as customer.plan)"
                               : "";
        ydiag_at(&L->p->diag, L->d->name, L->d->text, L->d->len, line, col, "when: %s%s", err.msg,
                 hint);
        L->p->nerrors++;
        L->rc = FW_EPARSE;
        return;
    }
    /* A regex search stopped by a limit at run time is logged with its place. */
    size_t line, col;
    scalar_origin(L->d, v, &line, &col);
    expr_regex_place(b->when, src, L->d->name, (unsigned)line + 1, (unsigned)col + 1,
                     "playbook when");
}

static void load_step(struct ld *L, struct pb_step *st, yaml_node_t *n, size_t index)
{
    static const char *const keys[] = {"action_type",          "description", "script", "minutes",
                                       "skip_requires_reason", "follow_up",   NULL};
    char what[32];
    snprintf(what, sizeof what, "step %zu", index + 1);
    if (n->type != YAML_MAPPING_NODE) {
        ERR(L, n, "%s must be a mapping (action_type, description, ...)", what);
        return;
    }
    unknown_keys(L, n, keys, what);
    yaml_node_t *a = ymap_get(L->d, n, "action_type");
    st->action = action_parse(yscalar(a));
    if (st->action < 0)
        ERR(L, a ? a : n,
            "%s: action_type %s%s%s is not one of call, email, sms, offer, credit, "
            "follow_up, internal",
            what, a ? "'" : "", a && yscalar(a) ? yscalar(a) : "missing", a ? "'" : "");
    st->description = str_field(L, n, "description", 1, what);
    yaml_node_t *sc = ymap_get(L->d, n, "script");
    if (sc) {
        st->script = script(L, sc, "script");
        if (yscalar(sc))
            st->script_src = xstrdup(yscalar(sc));
    }
    yaml_node_t *m = ymap_get(L->d, n, "minutes");
    if (m) {
        char *end;
        const char *s = yscalar(m);
        long v = s ? strtol(s, &end, 10) : -1;
        if (!s || *end || v < 1 || v > 10080)
            ERR(L, m, "minutes must be a whole number of minutes from 1 to 10080");
        else
            st->minutes = (int)v;
    }
    yaml_node_t *k = ymap_get(L->d, n, "skip_requires_reason");
    if (k) {
        const char *s = yscalar(k);
        if (s && !strcmp(s, "true"))
            st->skip_needs_reason = 1;
        else if (!s || strcmp(s, "false"))
            ERR(L, k, "skip_requires_reason must be true or false");
    }
    yaml_node_t *f = ymap_get(L->d, n, "follow_up");
    if (f) {
        const char *s = yscalar(f);
        int64_t ms;
        if (!s || fw_duration_parse(s, strlen(s), &ms) || ms <= 0)
            ERR(L, f, "follow_up must be a duration such as 24h or 7d");
        else
            st->follow_up = ms;
    }
}

static void load_one(struct ld *L, yaml_node_t *n)
{
    static const char *const keys[] = {
        "id",        "name",   "description",    "priority",      "when",  "signals", "keywords",
        "recommend", "script", "what_not_to_do", "win_condition", "steps", NULL};
    if (n->type != YAML_MAPPING_NODE) {
        ERR(L, n, "a playbook must be a mapping (id, name, when, steps, ...)");
        return;
    }
    struct playbooks *p = L->p;
    p->pb = xgrow(p->pb, &p->cap, p->n + 1, sizeof *p->pb);
    struct playbook *b = &p->pb[p->n++];
    memset(b, 0, sizeof *b);
    unknown_keys(L, n, keys, "a playbook");
    b->id = str_field(L, n, "id", 1, "a playbook");
    if (!b->id)
        b->id = xstrdup("?");
    for (const char *c = b->id; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '?') {
            ERR(L, ymap_get(L->d, n, "id"), "id '%s': use letters, digits, '-' and '_'", b->id);
            break;
        }
    for (size_t i = 0; i + 1 < p->n; i++)
        if (!strcmp(p->pb[i].id, b->id))
            ERR(L, ymap_get(L->d, n, "id"), "playbook '%s' is defined twice (first at %s)", b->id,
                p->pb[i].where);
    char where[512];
    snprintf(where, sizeof where, "%s:%zu", L->d->name, n->start_mark.line + 1);
    b->where = xstrdup(where);
    b->name = str_field(L, n, "name", 1, "a playbook");
    b->description = str_field(L, n, "description", 0, "a playbook");
    yaml_node_t *pr = ymap_get(L->d, n, "priority");
    if (pr) {
        char *end;
        const char *s = yscalar(pr);
        long v = s ? strtol(s, &end, 10) : 0;
        if (!s || *end || v < 0 || v > 1000)
            ERR(L, pr, "priority must be a whole number from 0 to 1000");
        b->priority = (int)v;
    }
    yaml_node_t *w = ymap_get(L->d, n, "when");
    if (w)
        condition(L, b, w);
    b->signals = str_list(L, n, "signals", &b->nsignals, 0);
    for (size_t i = 0; L->rules && i < b->nsignals; i++)
        if (!rules_signal(L->rules, b->signals[i])) {
            yaml_node_t *sv = ymap_get(L->d, n, "signals");
            ERR(L, ydoc_node(L->d, sv->data.sequence.items.start[i]),
                "unknown signal '%s' (not in the rule pack)", b->signals[i]);
        }
    b->keywords = str_list(L, n, "keywords", &b->nkeywords, 1);
    if (!w && !b->nsignals && !b->nkeywords)
        ERR(L, n, "playbook '%s' needs a trigger: when, signals or keywords", b->id);

    static const char *const rec_keys[] = {"action_type", "urgency", "reason", NULL};
    static const char *const urgencies[] = {"immediate", "today", "this_week", NULL};
    yaml_node_t *rec = ymap_get(L->d, n, "recommend");
    if (!rec || rec->type != YAML_MAPPING_NODE) {
        ERR(L, rec ? rec : n, "recommend must be a mapping: {action_type, urgency, reason}");
    } else {
        unknown_keys(L, rec, rec_keys, "recommend");
        yaml_node_t *a = ymap_get(L->d, rec, "action_type");
        b->rec_action = action_parse(yscalar(a));
        if (b->rec_action < 0)
            ERR(L, a ? a : rec,
                "recommend.action_type must be one of call, email, sms, offer, "
                "credit, follow_up, internal");
        b->urgency = str_field(L, rec, "urgency", 1, "recommend");
        int ok = 0;
        for (size_t i = 0; b->urgency && urgencies[i]; i++)
            ok |= !strcmp(b->urgency, urgencies[i]);
        if (b->urgency && !ok)
            ERR(L, ymap_get(L->d, rec, "urgency"),
                "urgency '%s' is not one of immediate, today, this_week", b->urgency);
        b->reason = str_field(L, rec, "reason", 1, "recommend");
    }

    static const char *const sc_keys[] = {"opening", "key_points", "closing", NULL};
    yaml_node_t *sc = ymap_get(L->d, n, "script");
    if (!sc || sc->type != YAML_MAPPING_NODE) {
        ERR(L, sc ? sc : n, "script must be a mapping: {opening, key_points, closing}");
    } else {
        unknown_keys(L, sc, sc_keys, "script");
        yaml_node_t *o = ymap_get(L->d, sc, "opening"), *c = ymap_get(L->d, sc, "closing"),
                    *kp = ymap_get(L->d, sc, "key_points");
        if (!o || !c)
            ERR(L, sc, "script needs an opening and a closing");
        if (o)
            b->opening = script(L, o, "script.opening");
        if (c)
            b->closing = script(L, c, "script.closing");
        if (kp && kp->type == YAML_SEQUENCE_NODE) {
            size_t cnt = (size_t)(kp->data.sequence.items.top - kp->data.sequence.items.start);
            b->points = xcalloc(cnt ? cnt : 1, sizeof *b->points);
            for (yaml_node_item_t *it = kp->data.sequence.items.start;
                 it < kp->data.sequence.items.top; it++) {
                struct comms_tmpl *t = script(L, ydoc_node(L->d, *it), "a key point");
                if (t)
                    b->points[b->npoints++] = t;
            }
        } else if (kp) {
            ERR(L, kp, "key_points must be a list of templates");
        }
    }
    b->avoid = str_list(L, n, "what_not_to_do", &b->navoid, 0);
    b->win = str_field(L, n, "win_condition", 1, "a playbook");

    yaml_node_t *steps = ymap_get(L->d, n, "steps");
    if (!steps || steps->type != YAML_SEQUENCE_NODE ||
        steps->data.sequence.items.top == steps->data.sequence.items.start) {
        ERR(L, steps ? steps : n, "steps must be a non-empty list");
        return;
    }
    size_t cnt = (size_t)(steps->data.sequence.items.top - steps->data.sequence.items.start);
    b->steps = xcalloc(cnt, sizeof *b->steps);
    for (yaml_node_item_t *it = steps->data.sequence.items.start;
         it < steps->data.sequence.items.top; it++)
        load_step(L, &b->steps[b->nsteps], ydoc_node(L->d, *it), b->nsteps), b->nsteps++;
}

/* One `escalations:` entry: id, reason, when, and what it does (severity, playbook, notify). */
static void load_escalation(struct ld *L, yaml_node_t *n)
{
    static const char *const keys[] = {"id",       "reason", "when", "severity",
                                       "playbook", "notify", NULL};
    if (n->type != YAML_MAPPING_NODE) {
        ERR(L, n, "an escalation must be a mapping (id, reason, when, severity, playbook, notify)");
        return;
    }
    struct playbooks *p = L->p;
    if (p->nesc == PB_MAX_ESCALATIONS) {
        ERR(L, n, "at most %d escalations", PB_MAX_ESCALATIONS);
        return;
    }
    unknown_keys(L, n, keys, "an escalation");
    p->esc = xgrow(p->esc, &p->capesc, p->nesc + 1, sizeof *p->esc);
    struct pb_escalation *e = &p->esc[p->nesc++];
    memset(e, 0, sizeof *e);
    e->severity = -1;
    e->id = str_field(L, n, "id", 1, "an escalation");
    if (!e->id)
        e->id = xstrdup("?");
    for (size_t i = 0; i + 1 < p->nesc; i++)
        if (!strcmp(p->esc[i].id, e->id))
            ERR(L, ymap_get(L->d, n, "id"), "escalation '%s' is defined twice", e->id);
    char where[512];
    snprintf(where, sizeof where, "%s:%zu", L->d->name, n->start_mark.line + 1);
    e->where = xstrdup(where);
    e->reason = str_field(L, n, "reason", 1, "an escalation");
    yaml_node_t *w = ymap_get(L->d, n, "when");
    if (!w) {
        ERR(L, n, "an escalation needs when: (a condition over the case)");
    } else {
        struct playbook tmp = {0}; /* condition() compiles into a playbook's fields */
        condition(L, &tmp, w);
        e->when_src = tmp.when_src;
        e->when = tmp.when;
    }
    yaml_node_t *sv = ymap_get(L->d, n, "severity");
    if (sv) {
        const char *v = yscalar(sv);
        e->severity = v ? severity_parse(v) : -1;
        if (e->severity < 0)
            ERR(L, sv, "severity must be CRITICAL, HIGH, MEDIUM or LOW");
    }
    e->playbook = str_field(L, n, "playbook", 0, "an escalation");
    yaml_node_t *nt = ymap_get(L->d, n, "notify");
    if (nt) {
        const char *v = yscalar(nt);
        if (!v || (strcmp(v, "lead") && strcmp(v, "assignee") && strcmp(v, "team")))
            ERR(L, nt, "notify must be lead, assignee or team");
        else
            e->notify = xstrdup(v);
    }
    if (e->playbook && !playbooks_find(p, e->playbook, NULL))
        ERR(L, ymap_get(L->d, n, "playbook"),
            "escalation '%s': no playbook '%s' (define it before, or in the same file)", e->id,
            e->playbook);
}

int playbooks_add_text(struct playbooks *p, const char *name, const char *text, size_t len,
                       const struct rules *rules)
{
    struct ydoc d;
    struct ld L = {.p = p, .d = &d, .rules = rules};
    if (ydoc_load(&d, name, text, len, &p->diag)) {
        p->nerrors++;
        ydoc_cleanup(&d);
        return FW_EPARSE;
    }
    yaml_node_t *root = ydoc_root(&d);
    static const char *const top[] = {"playbooks", "escalations", NULL};
    unknown_keys(&L, root, top, "a playbook file");
    yaml_node_t *list = ymap_get(&d, root, "playbooks");
    if (!list || list->type != YAML_SEQUENCE_NODE) {
        ERR(&L, list ? list : root, "a playbook file has a list 'playbooks:'");
    } else {
        for (yaml_node_item_t *it = list->data.sequence.items.start;
             it < list->data.sequence.items.top; it++)
            load_one(&L, ydoc_node(&d, *it));
    }
    yaml_node_t *esc = ymap_get(&d, root, "escalations");
    if (esc && esc->type != YAML_SEQUENCE_NODE)
        ERR(&L, esc, "escalations must be a list");
    else if (esc)
        for (yaml_node_item_t *it = esc->data.sequence.items.start;
             it < esc->data.sequence.items.top; it++)
            load_escalation(&L, ydoc_node(&d, *it));
    ydoc_cleanup(&d);
    return L.rc;
}

int playbooks_add_file(struct playbooks *p, const char *path, const struct rules *rules)
{
    struct buf b;
    buf_init(&b, 4 << 20);
    int rc = buf_read_file(&b, path);
    if (rc == FW_EIO) {
        buf_printf(&p->diag, "%s: error: cannot read: %s\n", path, strerror(errno));
        p->nerrors++;
    } else if (rc) {
        buf_printf(&p->diag, "%s: error: playbook file larger than 4 MiB\n", path);
        p->nerrors++;
    } else {
        rc = playbooks_add_text(p, path, b.data ? b.data : "", b.len, rules);
    }
    buf_cleanup(&b);
    return rc;
}

int playbooks_add_builtin(struct playbooks *p, const struct rules *rules)
{
    return playbooks_add_text(p, "<builtin:playbooks/telecom.yaml>", playbooks_builtin_telecom,
                              playbooks_builtin_telecom_len, rules);
}

/* ---- matching ---- */

struct evalctx {
    const struct intern *names;
    const struct pb_facts *f;
    struct value list[PB_MAX_SIGNALS * 4];
};

static void num_or_null(double v, struct value *out)
{
    if (!isnan(v))
        *out = (struct value){.type = VAL_NUM, .u.num = v};
}

static void str_or_null(const char *s, struct value *out)
{
    if (s)
        *out = (struct value){.type = VAL_STR, .u.str = {s, strlen(s)}};
}

static void env_state(void *ctx, uint32_t id, struct value *out, int64_t *since)
{
    struct evalctx *c = ctx;
    const struct pb_facts *f = c->f;
    const char *name = intern_str(c->names, id);
    out->type = VAL_NULL;
    *since = FW_TIME_NONE;
    if (!strcmp(name, "severity"))
        str_or_null(f->severity, out);
    else if (!strcmp(name, "signal"))
        str_or_null(f->signal, out);
    else if (!strcmp(name, "customer"))
        str_or_null(f->customer, out);
    else if (!strcmp(name, "tier"))
        str_or_null(f->tier, out);
    else if (!strcmp(name, "text"))
        str_or_null(f->text ? f->text : "", out);
    else if (!strcmp(name, "value"))
        num_or_null(f->value, out);
    else if (!strcmp(name, "sentiment"))
        num_or_null(f->sentiment, out);
    else if (!strcmp(name, "sentiment_trend"))
        num_or_null(f->sentiment_trend, out);
    else if (!strcmp(name, "intents")) {
        size_t base = PB_MAX_SIGNALS * 2, n = f->nintents;
        for (size_t i = 0; i < n; i++)
            c->list[base + i] =
                (struct value){.type = VAL_STR, .u.str = {f->intents[i], strlen(f->intents[i])}};
        *out = (struct value){.type = VAL_LIST, .u.list = {c->list + base, n}};
    } else if (!strcmp(name, "tenure_days"))
        num_or_null(f->tenure_days, out);
    else if (!strcmp(name, "contacts"))
        *out = (struct value){.type = VAL_NUM, .u.num = f->contacts};
    else if (!strcmp(name, "signals")) {
        size_t n = f->nsignals < ARRAY_SIZE(c->list) ? f->nsignals : ARRAY_SIZE(c->list);
        for (size_t i = 0; i < n; i++)
            c->list[i] =
                (struct value){.type = VAL_STR, .u.str = {f->signals[i], strlen(f->signals[i])}};
        *out = (struct value){.type = VAL_LIST, .u.list = {c->list, n}};
    } else {
        json_t *v =
            json_object_get(json_object_get(json_object_get(f->state, "state"), name), "value");
        if (json_is_string(v))
            *out = (struct value){.type = VAL_STR,
                                  .u.str = {json_string_value(v), json_string_length(v)}};
        else if (json_is_number(v))
            *out = (struct value){.type = VAL_NUM, .u.num = json_number_value(v)};
        else if (json_is_boolean(v))
            *out = (struct value){.type = VAL_BOOL, .u.b = json_is_true(v)};
    }
}

/* The first keyword found in the customer's words, or NULL. */
static const char *keyword_in(const struct playbook *b, const char *text)
{
    for (size_t i = 0; text && i < b->nkeywords; i++)
        if (strstr(text, b->keywords[i]))
            return b->keywords[i];
    return NULL;
}

static const char *signal_in(const struct playbook *b, const struct pb_facts *f)
{
    for (size_t i = 0; i < b->nsignals; i++)
        for (size_t j = 0; j < f->nsignals; j++)
            if (!strcmp(b->signals[i], f->signals[j]))
                return b->signals[i];
    return NULL;
}

size_t playbooks_escalations(const struct playbooks *p, const struct pb_facts *f, int64_t now,
                             size_t *out, size_t max)
{
    struct evalctx c = {.names = p ? p->_names : NULL, .f = f};
    struct expr_env env = expr_env_state_only(&c, now, env_state);
    size_t n = 0;
    for (size_t i = 0; p && i < p->nesc && n < max; i++)
        if (p->esc[i].when && expr_test(p->esc[i].when, &env, NULL))
            out[n++] = i;
    return n;
}

int playbooks_match(const struct playbooks *p, const struct pb_facts *f, int64_t now, char *why,
                    size_t n)
{
    struct evalctx c = {.names = p->_names, .f = f};
    struct expr_env env = expr_env_state_only(&c, now, env_state);
    int best = -1;
    const char *best_kw = NULL, *best_sig = NULL;
    for (size_t i = 0; p && i < p->n; i++) {
        const struct playbook *b = &p->pb[i];
        if (best >= 0 && b->priority <= p->pb[best].priority)
            continue; /* file order breaks ties: the first one stays */
        const char *sig = NULL, *kw = NULL;
        if (b->nsignals && !(sig = signal_in(b, f)))
            continue;
        if (b->nkeywords && !(kw = keyword_in(b, f->text)))
            continue;
        if (b->when && !expr_test(b->when, &env, NULL))
            continue;
        best = (int)i;
        best_kw = kw;
        best_sig = sig;
    }
    if (why && n) {
        if (best < 0) {
            snprintf(why, n, "no playbook's trigger holds for this case");
        } else {
            const struct playbook *b = &p->pb[best];
            struct buf w;
            buf_init(&w, 0);
            buf_printf(&w, "priority %d:", b->priority);
            if (best_sig)
                buf_printf(&w, " signal %s", best_sig);
            if (best_kw)
                buf_printf(&w, "%s the customer wrote \"%s\"", best_sig ? ";" : "", best_kw);
            if (b->when_src)
                buf_printf(&w, "%s %s", best_sig || best_kw ? "; and" : "", b->when_src);
            snprintf(why, n, "%s", w.data);
            buf_cleanup(&w);
        }
    }
    return best;
}

/* ---- measured success ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int success(const char *outcome)
{
    return !strcmp(outcome, "saved") || !strcmp(outcome, "resolved");
}

void pb_stats_compute(const struct pb_record *r, size_t n, int playbook, size_t min_history,
                      struct pb_stats *out)
{
    memset(out, 0, sizeof *out);
    int64_t *times = xmalloc((n ? n : 1) * sizeof *times);
    double csat = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].playbook != playbook)
            continue;
        times[out->n++] = r[i].open_ms;
        out->successes += (size_t)success(r[i].outcome);
        if (r[i].csat) {
            out->n_csat++;
            csat += r[i].csat;
        }
    }
    if (out->n) {
        qsort(times, out->n, sizeof *times, cmp_i64);
        double med = out->n % 2 ? (double)times[out->n / 2]
                                : ((double)times[out->n / 2 - 1] + (double)times[out->n / 2]) / 2;
        out->median_minutes = med / 60000.0;
        out->success_rate = (double)out->successes / (double)out->n;
    }
    out->mean_csat = out->n_csat ? csat / (double)out->n_csat : NAN;
    out->enough = out->n >= min_history && out->n > 0;
    free(times);
}

static double round2(double v) { return round(v * 100.0) / 100.0; }

json_t *pb_stats_json(const struct pb_stats *s, size_t min_history)
{
    if (!s->enough)
        return json_pack("{s:I, s:s, s:I}", "n", (json_int_t)s->n, "status", "not enough history",
                         "needed", (json_int_t)min_history);
    json_t *o = json_pack("{s:I, s:I, s:f, s:f}", "n", (json_int_t)s->n, "successes",
                          (json_int_t)s->successes, "success_rate", round2(s->success_rate),
                          "median_resolution_minutes", round2(s->median_minutes));
    if (s->n_csat)
        json_object_set_new(
            o, "csat",
            json_pack("{s:f, s:I}", "mean", round2(s->mean_csat), "n", (json_int_t)s->n_csat));
    else
        json_object_set_new(o, "csat", json_pack("{s:n, s:I}", "mean", "n", (json_int_t)0));
    return o;
}

/* ---- similar cases ---- */

static double jaccard(const struct pb_record *r, const struct pb_facts *f)
{
    size_t inter = 0, uni = r->nsignals;
    for (size_t j = 0; j < f->nsignals; j++) {
        int found = 0;
        for (size_t i = 0; i < r->nsignals; i++)
            found |= !strcmp(r->signals[i], f->signals[j]);
        inter += (size_t)found;
        uni += (size_t)!found;
    }
    return uni ? (double)inter / (double)uni : 1.0;
}

/* Distance 0 (same) .. 1 (nothing alike) over the features both sides know. */
static double distance(const struct pb_record *r, const struct pb_facts *f, int severity)
{
    double d = 0, w = 0;
    d += 3 * (1 - jaccard(r, f)); /* signals weigh most: they say what went wrong */
    w += 3;
    d += fabs((double)(r->severity - severity)) / 3.0;
    w += 1;
    if (!isnan(r->value) && !isnan(f->value)) {
        double a = log10(1 + fmax(r->value, 0)), b = log10(1 + fmax(f->value, 0));
        d += fmin(fabs(a - b) / 2.0, 1.0); /* a factor of 100 is as far as it gets */
        w += 1;
    }
    if (!isnan(r->tenure_days) && !isnan(f->tenure_days)) {
        d += fmin(fabs(r->tenure_days - f->tenure_days) / 1825.0, 1.0); /* 5 years */
        w += 1;
    }
    if (!isnan(r->sentiment) && !isnan(f->sentiment)) {
        d += fmin(fabs(r->sentiment - f->sentiment) / 2.0, 1.0); /* scores run -1..1 */
        w += 1;
    }
    return d / w;
}

size_t pb_similar(const struct pb_record *r, size_t n, const struct pb_facts *f, int severity,
                  size_t k, size_t *idx, double *score)
{
    size_t got = 0;
    for (size_t i = 0; i < n; i++) {
        double s = 1 - distance(&r[i], f, severity);
        /* Insert in order; an equal score keeps the earlier record first. */
        size_t pos = got;
        while (pos > 0 && score[pos - 1] < s)
            pos--;
        if (pos >= k)
            continue;
        size_t last = got < k ? got : k - 1;
        for (size_t j = last; j > pos; j--) {
            idx[j] = idx[j - 1];
            score[j] = score[j - 1];
        }
        idx[pos] = i;
        score[pos] = s;
        if (got < k)
            got++;
    }
    return got;
}
