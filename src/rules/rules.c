/*
 * rules.c -- loading and validating rule packs.
 *
 * Invariant: after rules_finish() returns 0 every signal has a compiled
 * condition, every class/entity/type name used anywhere has an id, and the
 * per-type table says which classes and entity roles each type has.  Until
 * then errors accumulate in r->diag and nothing is half-compiled: a failed
 * finish leaves conditions that did compile, freed by rules_cleanup.
 */
#include "rules/rules.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/yaml.h"
#include "util/fwtime.h"
#include "util/util.h"

/* A pack's source text, kept until cleanup so late (compile) errors can quote it. */
struct pack_src {
    char *name;
    char *text;
    size_t len;
};

/* Where a condition's text starts in its pack, for mapping expr offsets back. */
struct cond_loc {
    size_t pack;       /* index into the pack list */
    size_t start;      /* byte index of the first content character */
    size_t end;        /* byte index just past the scalar */
    size_t line, col;  /* 0-based position of `start` */
    yaml_scalar_style_t style;
};

/*
 * Loader state: the pack texts and where each condition starts, kept until
 * rules_cleanup so that compile errors found in rules_finish can quote them.
 */
struct rules_load {
    struct pack_src *packs;
    size_t npacks, cap;
    struct cond_loc *locs; /* parallel to r->signals */
    size_t locs_cap;
};

const char *severity_name(enum severity s)
{
    static const char *names[] = {
#define RULES__SEVSTR(name, str) str,
        SEVERITY_MAP(RULES__SEVSTR)
#undef RULES__SEVSTR
    };
    return (unsigned)s < ARRAY_SIZE(names) ? names[s] : NULL;
}

int severity_parse(const char *s)
{
    for (int i = 0; severity_name((enum severity)i); i++)
        if (!strcmp(s, severity_name((enum severity)i)))
            return i;
    return -1;
}

/* The loader state, behind the opaque r->_load. */
static struct rules_load *loader(struct rules *r)
{
    return (struct rules_load *)r->_load;
}

void rules_init(struct rules *r)
{
    memset(r, 0, sizeof *r);
    intern_init(&r->keys);
    intern_init(&r->globals);
    intern_init(&r->types);
    intern_init(&r->classes);
    intern_init(&r->entities);
    intern_init(&r->metrics);
    intern_init(&r->features);
    intern_init(&r->steps);
    r->horizon_days = 90;
    buf_init(&r->diag, 1 << 20);
    r->_load = xcalloc(1, sizeof(struct rules_load));
}

static void signal_cleanup(struct rule_signal *s)
{
    free(s->id);
    free(s->name);
    free(s->description);
    free(s->team);
    free(s->root_cause);
    free(s->action);
    free(s->condition);
    free(s->factors);
    free(s->file);
    for (size_t i = 0; i < s->nexplains; i++)
        free(s->explains[i]);
    free(s->explains);
    expr_free(s->cond);
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void context_cleanup(struct rule_context *c)
{
    free(c->var);
    strv_free(c->keys, c->nkeys);
    free(c->last);
    strv_free(c->latest_types, c->nlatest);
    strv_free(c->latest_words, c->nlatest);
    free(c->otherwise);
}

void rules_cleanup(struct rules *r)
{
    struct rules_load *L = loader(r);
    for (size_t i = 0; i < r->nsignals; i++)
        signal_cleanup(&r->signals[i]);
    free(r->signals);
    for (size_t i = 0; i < r->ncontext; i++)
        context_cleanup(&r->context[i]);
    free(r->context);
    for (size_t i = 0; i < r->nteams; i++) {
        free(r->teams[i].team);
        free(r->teams[i].name);
    }
    free(r->teams);
    for (size_t i = 0; i < intern_count(&r->types); i++) {
        free(r->type_info[i].classes);
    }
    free(r->type_info);
    free(r->class_window);
    for (size_t i = 0; i < intern_count(&r->entities); i++)
        free(r->entity_info[i].id_field);
    free(r->entity_info);
    free(r->default_factors);
    intern_cleanup(&r->keys);
    intern_cleanup(&r->globals);
    intern_cleanup(&r->types);
    intern_cleanup(&r->classes);
    intern_cleanup(&r->entities);
    intern_cleanup(&r->metrics);
    intern_cleanup(&r->features);
    intern_cleanup(&r->steps);
    strmap_cleanup(&r->global_types);
    buf_cleanup(&r->diag);
    if (L) {
        for (size_t i = 0; i < L->npacks; i++) {
            free(L->packs[i].name);
            free(L->packs[i].text);
        }
        free(L->packs);
        free(L->locs);
        free(L);
    }
    memset(r, 0, sizeof *r);
}

uint32_t rules_type_id(struct rules *r, const char *type, size_t len)
{
    size_t before = intern_count(&r->types);
    uint32_t id = intern_id(&r->types, type, len);
    if (intern_count(&r->types) != before) {
        r->type_info = xgrow(r->type_info, &r->type_info_cap, id + 1, sizeof *r->type_info);
        memset(&r->type_info[id], 0, sizeof r->type_info[id]);
        r->type_info[id].opens = r->type_info[id].closes = -1;
    }
    return id;
}

const struct rule_type *rules_type(const struct rules *r, uint32_t id)
{
    return &r->type_info[id];
}

/*
 * HTTP threads ask this while the engine thread may intern new types into
 * r->types, so it reads a set frozen at rules_finish, never r->types.
 */
int rules_is_global(void *ctx, const char *type)
{
    struct rules *r = ctx;
    return strmap_find(&r->global_types, type, strlen(type)) != NULL;
}

int rules_declared(void *ctx, const char *what, const char *name)
{
    const struct rules *r = ctx;
    const struct intern *t = !strcmp(what, "metric") ? &r->metrics
                             : !strcmp(what, "step")  ? &r->steps
                                                      : NULL;
    if (!t || !intern_count(t))
        return -1;
    return intern_lookup(t, name, strlen(name)) >= 0;
}

const struct rule_signal *rules_signal(const struct rules *r, const char *id)
{
    for (size_t i = 0; i < r->nsignals; i++)
        if (!strcmp(r->signals[i].id, id))
            return &r->signals[i];
    return NULL;
}

/* ---- pack parsing ---- */

#define ERR(node, ...)                                                                             \
    do {                                                                                           \
        ydiag(d, &r->diag, (node), __VA_ARGS__);                                                   \
        r->nerrors++;                                                                              \
        rc = FW_EPARSE;                                                                            \
    } while (0)

/* Check that every key of a mapping is one of `allowed` (NULL-terminated). */
static int check_keys(struct rules *r, struct ydoc *d, yaml_node_t *m, const char *what,
                      const char *const *allowed)
{
    int rc = 0;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key);
        const char *k = yscalar(kn);
        int ok = 0;
        for (size_t i = 0; k && allowed[i]; i++)
            ok |= !strcmp(k, allowed[i]);
        if (!ok)
            ERR(kn, "unknown field '%s' in %s", k ? k : "?", what);
    }
    return rc;
}

/* A non-empty scalar string, or an error. */
static const char *want_str(struct rules *r, struct ydoc *d, yaml_node_t *n, const char *what,
                            int *rcp)
{
    int rc = 0;
    const char *s = yscalar(n);
    if (!s || !*s) {
        ERR(n, "%s must be a non-empty string", what);
        *rcp = rc;
        return NULL;
    }
    return s;
}

/* Each scalar of a sequence (or a single scalar) as an event type id. */
static int type_list(struct rules *r, struct ydoc *d, yaml_node_t *n, const char *what,
                     uint32_t **out, size_t *nout)
{
    int rc = 0;
    size_t cap = 0;
    if (n && n->type == YAML_SCALAR_NODE && n->data.scalar.length) {
        *out = xgrow(*out, &cap, *nout + 1, sizeof **out);
        (*out)[(*nout)++] = rules_type_id(r, yscalar(n), n->data.scalar.length);
        return 0;
    }
    if (!n || n->type != YAML_SEQUENCE_NODE) {
        ERR(n, "%s must be a list of event types", what);
        return rc;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = ydoc_node(d, *it);
        const char *s = yscalar(e);
        if (!s || !*s) {
            ERR(e, "%s: each entry must be an event type", what);
            continue;
        }
        *out = xgrow(*out, &cap, *nout + 1, sizeof **out);
        (*out)[(*nout)++] = rules_type_id(r, s, strlen(s));
    }
    return rc;
}

static int key_list(struct rules *r, struct ydoc *d, yaml_node_t *n, const char *what,
                    uint32_t **out, size_t *nout)
{
    int rc = 0;
    size_t cap = 0;
    if (!n || n->type != YAML_SEQUENCE_NODE) {
        ERR(n, "%s must be a list of state keys", what);
        return rc;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = ydoc_node(d, *it);
        const char *s = yscalar(e);
        if (!s || !strchr(s, '.')) {
            ERR(e, "%s: each entry must be a state key such as customer.zip", what);
            continue;
        }
        *out = xgrow(*out, &cap, *nout + 1, sizeof **out);
        (*out)[(*nout)++] = intern_id(&r->keys, s, strlen(s));
    }
    return rc;
}

static int parse_duration_node(struct rules *r, struct ydoc *d, yaml_node_t *n, int64_t *out)
{
    int rc = 0;
    const char *s = yscalar(n);
    if (!s || fw_duration_parse(s, strlen(s), out) || *out <= 0)
        ERR(n, "bad duration '%s' (expected e.g. 90s, 15m, 48h, 7d)", s ? s : "?");
    return rc;
}

static int parse_classes(struct rules *r, struct ydoc *d, yaml_node_t *m)
{
    int rc = 0;
    if (m->type != YAML_MAPPING_NODE) {
        ERR(m, "classes must be a mapping of class name to event types");
        return rc;
    }
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key);
        const char *name = yscalar(kn);
        if (!name || !*name) {
            ERR(kn, "a class name must be a non-empty string");
            continue;
        }
        if (intern_lookup(&r->classes, name, strlen(name)) >= 0) {
            ERR(kn, "duplicate class '%s'", name);
            continue;
        }
        uint32_t cid = intern_id(&r->classes, name, strlen(name));
        uint32_t *types = NULL;
        size_t ntypes = 0;
        if (type_list(r, d, ydoc_node(d, p->value), "class", &types, &ntypes))
            rc = FW_EPARSE;
        for (size_t i = 0; i < ntypes; i++) {
            struct rule_type *t = &r->type_info[types[i]];
            /* A type listed twice is in the class once: each event is counted once. */
            if (t->nclasses && t->classes[t->nclasses - 1] == cid)
                continue;
            size_t cap = t->nclasses;
            t->classes = xgrow(t->classes, &cap, t->nclasses + 1, sizeof *t->classes);
            t->classes[t->nclasses++] = cid;
        }
        free(types);
    }
    return rc;
}

/* A scalar or a list of scalars, copied; each must be a non-empty string. */
static int str_list(struct rules *r, struct ydoc *d, yaml_node_t *n, const char *what,
                    char ***out, size_t *nout)
{
    int rc = 0;
    size_t cap = 0;
    if (n && n->type == YAML_SCALAR_NODE && n->data.scalar.length) {
        *out = xgrow(*out, &cap, *nout + 1, sizeof **out);
        (*out)[(*nout)++] = xstrdup(yscalar(n));
        return 0;
    }
    if (!n || n->type != YAML_SEQUENCE_NODE) {
        ERR(n, "%s must be a name or a list of names", what);
        return rc;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = ydoc_node(d, *it);
        const char *v = yscalar(e);
        if (!v || !*v) {
            ERR(e, "%s: each entry must be a non-empty name", what);
            continue;
        }
        *out = xgrow(*out, &cap, *nout + 1, sizeof **out);
        (*out)[(*nout)++] = xstrdup(v);
    }
    return rc;
}

/* teams: {team: name people know it by} */
static int parse_teams(struct rules *r, struct ydoc *d, yaml_node_t *m)
{
    int rc = 0;
    if (m->type != YAML_MAPPING_NODE) {
        ERR(m, "teams must be a mapping of team to the name people know it by");
        return rc;
    }
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *vn = ydoc_node(d, p->value);
        const char *k = yscalar(kn), *v = yscalar(vn);
        if (!k || !*k || !v || !*v) {
            ERR(!k || !*k ? kn : vn, "each team needs a name: team: \"Name people know\"");
            continue;
        }
        size_t cap = r->nteams;
        r->teams = xgrow(r->teams, &cap, r->nteams + 1, sizeof *r->teams);
        r->teams[r->nteams].team = xstrdup(k);
        r->teams[r->nteams++].name = xstrdup(v);
    }
    return rc;
}

/* One `context:` entry: a state key, a list of them, or {state|last|latest, as, otherwise}. */
static int parse_context_entry(struct rules *r, struct ydoc *d, yaml_node_t *vn,
                               struct rule_context *c)
{
    static const char *const allowed[] = {"state", "last", "latest", "as", "otherwise", NULL};
    int rc = 0;
    if (vn->type != YAML_MAPPING_NODE)
        return str_list(r, d, vn, "a context variable's state keys", &c->keys, &c->nkeys);
    if (check_keys(r, d, vn, "a context variable", allowed))
        rc = FW_EPARSE;
    yaml_node_t *st = ymap_get(d, vn, "state"), *la = ymap_get(d, vn, "last"),
                *lt = ymap_get(d, vn, "latest"), *as = ymap_get(d, vn, "as"),
                *ow = ymap_get(d, vn, "otherwise");
    if (!!st + !!la + !!lt != 1) {
        ERR(vn, "a context variable needs exactly one of state, last or latest");
        return rc;
    }
    if (st && str_list(r, d, st, "state", &c->keys, &c->nkeys))
        rc = FW_EPARSE;
    if (la && !(c->last = xstrdup(want_str(r, d, la, "last (an event type)", &rc) ?: "")))
        rc = FW_EPARSE;
    if (lt && lt->type != YAML_MAPPING_NODE)
        ERR(lt, "latest must be a mapping of event type to the word for it");
    for (yaml_node_pair_t *p = lt ? lt->data.mapping.pairs.start : NULL;
         lt && lt->type == YAML_MAPPING_NODE && p < lt->data.mapping.pairs.top; p++) {
        const char *t = yscalar(ydoc_node(d, p->key)), *w = yscalar(ydoc_node(d, p->value));
        if (!t || !w) {
            ERR(ydoc_node(d, p->key), "latest: each entry is an event type and a word");
            continue;
        }
        size_t cap = c->nlatest;
        c->latest_types = xgrow(c->latest_types, &cap, c->nlatest + 1, sizeof *c->latest_types);
        cap = c->nlatest;
        c->latest_words = xgrow(c->latest_words, &cap, c->nlatest + 1, sizeof *c->latest_words);
        c->latest_types[c->nlatest] = xstrdup(t);
        c->latest_words[c->nlatest++] = xstrdup(w);
    }
    if (ow && !(c->otherwise = xstrdup(want_str(r, d, ow, "otherwise", &rc) ?: "")))
        rc = FW_EPARSE;
    const char *a = as ? yscalar(as) : NULL;
    if (as && (!a || (strcmp(a, "text") && strcmp(a, "date") && strcmp(a, "time") &&
                      strcmp(a, "days_since"))))
        ERR(as, "as must be text, date, time or days_since");
    else if (a)
        c->as = !strcmp(a, "date") ? RCTX_DATE : !strcmp(a, "time") ? RCTX_TIME
               : !strcmp(a, "days_since") ? RCTX_DAYS_SINCE : RCTX_TEXT;
    if (lt && a && strcmp(a, "text"))
        ERR(as, "a latest variable is a word: as must be text");
    return rc;
}

/* context: {template variable: how the pack's state says it} (docs/rules.md). */
static int parse_context(struct rules *r, struct ydoc *d, yaml_node_t *m)
{
    int rc = 0;
    if (m->type != YAML_MAPPING_NODE) {
        ERR(m, "context must be a mapping of template variable to state key");
        return rc;
    }
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *vn = ydoc_node(d, p->value);
        const char *k = yscalar(kn);
        if (!k || !*k) {
            ERR(kn, "a context variable needs a name");
            continue;
        }
        struct rule_context c = {.var = xstrdup(k)};
        if (parse_context_entry(r, d, vn, &c)) {
            context_cleanup(&c);
            rc = FW_EPARSE;
            continue;
        }
        size_t cap = r->ncontext;
        r->context = xgrow(r->context, &cap, r->ncontext + 1, sizeof *r->context);
        r->context[r->ncontext++] = c;
    }
    return rc;
}

static int parse_entities(struct rules *r, struct ydoc *d, yaml_node_t *m)
{
    static const char *const allowed[] = {"id", "open", "close", NULL};
    int rc = 0;
    if (m->type != YAML_MAPPING_NODE) {
        ERR(m, "entities must be a mapping of entity name to {id, open, close}");
        return rc;
    }
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *name = yscalar(kn);
        if (!name || !*name) {
            ERR(kn, "an entity name must be a non-empty string");
            continue;
        }
        if (intern_lookup(&r->entities, name, strlen(name)) >= 0) {
            ERR(kn, "duplicate entity '%s'", name);
            continue;
        }
        if (v->type != YAML_MAPPING_NODE) {
            ERR(v, "entity '%s' must be a mapping with id, open and close", name);
            continue;
        }
        if (check_keys(r, d, v, "an entity", allowed))
            rc = FW_EPARSE;
        uint32_t eid = intern_id(&r->entities, name, strlen(name));
        size_t cap = eid;
        r->entity_info = xgrow(r->entity_info, &cap, eid + 1, sizeof *r->entity_info);
        r->entity_info[eid].name = (char *)intern_str(&r->entities, eid);
        /* A missing id is reported at the entity, like a missing open or close. */
        yaml_node_t *idn = ymap_get(d, v, "id");
        const char *idf = NULL;
        if (!idn)
            ERR(v, "entity '%s' needs 'id'", name);
        else
            idf = want_str(r, d, idn, "entity id field", &rc);
        r->entity_info[eid].id_field = idf ? xstrdup(idf) : NULL;
        for (int role = 0; role < 2; role++) {
            uint32_t *types = NULL;
            size_t ntypes = 0;
            yaml_node_t *ln = ymap_get(d, v, role ? "close" : "open");
            if (!ln) {
                ERR(v, "entity '%s' needs '%s'", name, role ? "close" : "open");
                continue;
            }
            if (type_list(r, d, ln, role ? "close" : "open", &types, &ntypes))
                rc = FW_EPARSE;
            for (size_t i = 0; i < ntypes; i++) {
                if (role)
                    r->type_info[types[i]].closes = (int32_t)eid;
                else
                    r->type_info[types[i]].opens = (int32_t)eid;
            }
            free(types);
        }
    }
    return rc;
}

/* A UTF-8 continuation byte: columns count characters, as libyaml's marks do. */
static int utf8_cont(char c)
{
    return ((unsigned char)c & 0xC0) == 0x80;
}

/*
 * The byte index of a libyaml mark.  The mark's own index counts
 * characters, not bytes, so it is off after any non-ASCII text (a comment
 * with an em dash); its line and column are walked instead.
 */
static size_t mark_byte(const struct ydoc *d, const yaml_mark_t *m)
{
    size_t i = 0, line = 0;
    while (i < d->len && line < m->line)
        if (d->text[i++] == '\n')
            line++;
    for (size_t c = 0; c < m->column && i < d->len; c++) {
        i++;
        while (i < d->len && utf8_cont(d->text[i]))
            i++;
    }
    return i;
}

/* A signal's `outreach:` and `explains:` (docs/rules.md). */
static int parse_outreach_fields(struct rules *r, struct ydoc *d, yaml_node_t *s,
                                 struct rule_signal *sig)
{
    int rc = 0;
    yaml_node_t *on = ymap_get(d, s, "outreach"), *en = ymap_get(d, s, "explains");
    if (on) {
        const char *v = yscalar(on);
        if (!v || (strcmp(v, "outage") && strcmp(v, "normal")))
            ERR(on, "outreach must be 'normal' or 'outage'");
        else
            sig->outage = !strcmp(v, "outage");
    }
    if (en && !sig->outage)
        ERR(en, "explains is only for a signal with outreach: outage");
    else if (en && str_list(r, d, en, "explains", &sig->explains, &sig->nexplains))
        rc = FW_EPARSE;
    return rc;
}

/* Names into an intern table, each once, at most `max` in all. */
static int name_set(struct rules *r, struct ydoc *d, yaml_node_t *n, const char *what,
                    struct intern *set, size_t max)
{
    int rc = 0;
    if (!n || n->type != YAML_SEQUENCE_NODE) {
        ERR(n, "%s must be a list of names", what);
        return rc;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = ydoc_node(d, *it);
        const char *v = yscalar(e);
        if (!v || !*v)
            ERR(e, "%s: each entry must be a non-empty name", what);
        else if (intern_lookup(set, v, strlen(v)) >= 0)
            ERR(e, "%s: '%s' is listed twice", what, v);
        else if (intern_count(set) == max)
            ERR(e, "%s: at most %zu", what, max);
        else
            intern_id(set, v, strlen(v));
    }
    return rc;
}

/*
 * engagement: {horizon_days: 90, metrics: [...], onboarding_steps: [...],
 * features: [...]} -- what the engine keeps per customer for the usage and
 * adoption figures (docs/engagement.md).  Several packs add to the same sets.
 */
static int parse_engagement(struct rules *r, struct ydoc *d, yaml_node_t *m)
{
    static const char *const allowed[] = {"horizon_days", "metrics", "onboarding_steps",
                                          "features", NULL};
    int rc = 0;
    if (m->type != YAML_MAPPING_NODE) {
        ERR(m, "engagement must be a mapping (horizon_days, metrics, onboarding_steps, features)");
        return rc;
    }
    if (check_keys(r, d, m, "engagement", allowed))
        rc = FW_EPARSE;
    r->engage = 1;
    yaml_node_t *n;
    if ((n = ymap_get(d, m, "horizon_days"))) {
        const char *v = yscalar(n);
        char *end = NULL;
        long days = v ? strtol(v, &end, 10) : 0;
        if (!v || !*v || *end || days < 7 || days > 366)
            ERR(n, "horizon_days must be a whole number of days from 7 to 366");
        else
            r->horizon_days = (int)days;
    }
    if ((n = ymap_get(d, m, "metrics")) &&
        name_set(r, d, n, "engagement metrics", &r->metrics, RULES_MAX_METRICS))
        rc = FW_EPARSE;
    if ((n = ymap_get(d, m, "onboarding_steps")) &&
        name_set(r, d, n, "onboarding_steps", &r->steps, RULES_MAX_STEPS))
        rc = FW_EPARSE;
    if ((n = ymap_get(d, m, "features")) &&
        name_set(r, d, n, "engagement features", &r->features, 1024))
        rc = FW_EPARSE;
    return rc;
}

static int parse_signal(struct rules *r, struct ydoc *d, yaml_node_t *s, size_t pack)
{
    static const char *const allowed[] = {"id",        "name",       "description", "severity",
                                          "team",      "root_cause", "condition",   "systemic",
                                          "action",    "outreach",   "explains",    NULL};
    static const char *const sys_allowed[] = {"min_customers", "window", "factors", NULL};
    int rc = 0;
    if (s->type != YAML_MAPPING_NODE) {
        ERR(s, "each signal must be a mapping");
        return rc;
    }
    if (check_keys(r, d, s, "a signal", allowed))
        rc = FW_EPARSE;
    struct rule_signal sig = {0};
    struct cond_loc loc = {0};
    sig.min_customers = 3;
    sig.window = 24 * FW_HOUR;
    yaml_node_t *idn = ymap_get(d, s, "id");
    const char *id = want_str(r, d, idn ? idn : s, "signal id", &rc);
    const char *name = want_str(r, d, ymap_get(d, s, "name") ? ymap_get(d, s, "name") : s,
                                "signal name", &rc);
    yaml_node_t *sevn = ymap_get(d, s, "severity");
    const char *sev = want_str(r, d, sevn ? sevn : s, "severity", &rc);
    yaml_node_t *cn = ymap_get(d, s, "condition");
    const char *cond = want_str(r, d, cn ? cn : s, "condition", &rc);
    if (id && rules_signal(r, id))
        ERR(idn, "duplicate signal id '%s'", id);
    if (sev && severity_parse(sev) < 0)
        ERR(sevn, "unknown severity '%s' (expected CRITICAL, HIGH, MEDIUM or LOW)", sev);
    yaml_node_t *sys = ymap_get(d, s, "systemic");
    if (sys) {
        const char *b = yscalar(sys);
        if (b && (!strcmp(b, "false") || !strcmp(b, "true"))) {
            sig.systemic = !strcmp(b, "true");
        } else if (sys->type == YAML_MAPPING_NODE) {
            sig.systemic = 1;
            if (check_keys(r, d, sys, "systemic", sys_allowed))
                rc = FW_EPARSE;
            yaml_node_t *mc = ymap_get(d, sys, "min_customers");
            if (mc) {
                const char *v = yscalar(mc);
                char *end = NULL;
                long n = v ? strtol(v, &end, 10) : 0;
                if (!v || *end || n < 2 || n > 1000000)
                    ERR(mc, "min_customers must be an integer from 2 to 1000000");
                else
                    sig.min_customers = (unsigned)n;
            }
            yaml_node_t *w = ymap_get(d, sys, "window");
            if (w && parse_duration_node(r, d, w, &sig.window))
                rc = FW_EPARSE;
            else if (w && sig.window > RULES_MAX_SYSTEMIC_WINDOW)
                ERR(w, "systemic window over the limit of %lldd",
                    (long long)(RULES_MAX_SYSTEMIC_WINDOW / FW_DAY));
            yaml_node_t *f = ymap_get(d, sys, "factors");
            if (f && key_list(r, d, f, "factors", &sig.factors, &sig.nfactors))
                rc = FW_EPARSE;
        } else {
            ERR(sys, "systemic must be true, false or a mapping");
        }
    }
    if (rc || !id || !name || !sev || !cond) {
        free(sig.factors);
        return FW_EPARSE;
    }
    sig.id = xstrdup(id);
    sig.name = xstrdup(name);
    sig.severity = (enum severity)severity_parse(sev);
    sig.condition = xstrdup(cond);
    const char *v;
    if ((v = yscalar(ymap_get(d, s, "description"))))
        sig.description = xstrdup(v);
    if ((v = yscalar(ymap_get(d, s, "team"))))
        sig.team = xstrdup(v);
    if ((v = yscalar(ymap_get(d, s, "root_cause"))))
        sig.root_cause = xstrdup(v);
    if ((v = yscalar(ymap_get(d, s, "action"))))
        sig.action = xstrdup(v);
    if (parse_outreach_fields(r, d, s, &sig)) {
        signal_cleanup(&sig);
        return FW_EPARSE;
    }
    sig.file = xstrdup(d->name);
    sig.line = (unsigned)idn->start_mark.line + 1;
    sig.col = (unsigned)idn->start_mark.column + 1;

    /* Find where the condition's content begins in the file. */
    loc.pack = pack;
    loc.start = mark_byte(d, &cn->start_mark);
    loc.end = mark_byte(d, &cn->end_mark);
    loc.style = cn->data.scalar.style;
    switch (cn->data.scalar.style) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        loc.start++;
        break;
    case YAML_LITERAL_SCALAR_STYLE:
    case YAML_FOLDED_SCALAR_STYLE:
        /* The content starts on the line after the header (>-, | and a comment). */
        while (loc.start < d->len && d->text[loc.start] != '\n')
            loc.start++;
        loc.start += loc.start < d->len;
        break;
    default:
        break;
    }
    loc.line = loc.col = 0;
    for (size_t i = 0; i < loc.start; i++) {
        if (d->text[i] == '\n') {
            loc.line++;
            loc.col = 0;
        } else {
            loc.col += !utf8_cont(d->text[i]);
        }
    }
    size_t cap = r->nsignals;
    r->signals = xgrow(r->signals, &cap, r->nsignals + 1, sizeof *r->signals);
    struct rules_load *L = loader(r);
    cap = r->nsignals;
    L->locs = xgrow(L->locs, &cap, r->nsignals + 1, sizeof *L->locs);
    L->locs[r->nsignals] = loc;
    r->signals[r->nsignals++] = sig;
    return 0;
}

int rules_add_text(struct rules *r, const char *name, const char *text, size_t len)
{
    static const char *const allowed[] = {"pack",     "description",    "version", "global_events",
                                          "classes",  "entities",       "common_factors",
                                          "signals",  "context",        "teams",   "engagement",
                                          NULL};
    struct rules_load *L = loader(r);
    struct ydoc doc, *d = &doc;
    int rc;
    if (r->finished)
        return FW_ESTATE;
    L->packs = xgrow(L->packs, &L->cap, L->npacks + 1, sizeof *L->packs);
    struct pack_src *ps = &L->packs[L->npacks];
    ps->name = xstrdup(name);
    ps->text = xstrndup(text, len);
    ps->len = len;
    size_t pack = L->npacks++;
    rc = ydoc_load(d, ps->name, ps->text, ps->len, &r->diag);
    if (rc) {
        r->nerrors++;
        goto out;
    }
    yaml_node_t *root = ydoc_root(d);
    if (root->type != YAML_MAPPING_NODE) {
        ERR(root, "a rule pack must be a mapping with 'signals'");
        goto out;
    }
    rc = check_keys(r, d, root, "the pack", allowed);
    yaml_node_t *n;
    if ((n = ymap_get(d, root, "global_events"))) {
        uint32_t *types = NULL;
        size_t ntypes = 0;
        if (type_list(r, d, n, "global_events", &types, &ntypes))
            rc = FW_EPARSE;
        for (size_t i = 0; i < ntypes; i++)
            r->type_info[types[i]].global = 1;
        free(types);
    }
    if ((n = ymap_get(d, root, "classes")) && parse_classes(r, d, n))
        rc = FW_EPARSE;
    if ((n = ymap_get(d, root, "entities")) && parse_entities(r, d, n))
        rc = FW_EPARSE;
    if ((n = ymap_get(d, root, "context")) && parse_context(r, d, n))
        rc = FW_EPARSE;
    if ((n = ymap_get(d, root, "teams")) && parse_teams(r, d, n))
        rc = FW_EPARSE;
    if ((n = ymap_get(d, root, "engagement")) && parse_engagement(r, d, n))
        rc = FW_EPARSE;
    if ((n = ymap_get(d, root, "common_factors")) &&
        key_list(r, d, n, "common_factors", &r->default_factors, &r->ndefault_factors))
        rc = FW_EPARSE;
    n = ymap_get(d, root, "signals");
    if (!n || n->type != YAML_SEQUENCE_NODE) {
        ERR(n ? n : root, "a rule pack needs 'signals', a list");
        goto out;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++)
        if (parse_signal(r, d, ydoc_node(d, *it), pack))
            rc = FW_EPARSE;
out:
    ydoc_cleanup(d);
    return rc;
}

int rules_add_file(struct rules *r, const char *path)
{
    struct buf b;
    buf_init(&b, 4 << 20);
    int rc = buf_read_file(&b, path);
    if (rc == FW_EIO) {
        buf_printf(&r->diag, "%s: error: cannot read: %s\n", path, strerror(errno));
        r->nerrors++;
    } else if (rc) {
        buf_printf(&r->diag, "%s: error: rule file larger than 4 MiB\n", path);
        r->nerrors++;
    } else {
        rc = rules_add_text(r, path, b.data ? b.data : "", b.len);
    }
    buf_cleanup(&b);
    return rc;
}

int rules_add_builtin(struct rules *r)
{
    return rules_add_text(r, "<builtin:telecom.yaml>", rules_builtin_telecom,
                          rules_builtin_telecom_len);
}

/* ---- compilation ---- */

static int64_t resolve(void *ctx, enum expr_ref kind, const char *name, size_t len)
{
    struct rules *r = ctx;
    switch (kind) {
    case EXPR_REF_STATE:
        return intern_id(&r->keys, name, len);
    case EXPR_REF_GLOBAL:
        return intern_id(&r->globals, name, len);
    case EXPR_REF_TYPE:
        return rules_type_id(r, name, len);
    case EXPR_REF_CLASS:
        return intern_lookup(&r->classes, name, len);
    case EXPR_REF_ENTITY:
        return intern_lookup(&r->entities, name, len);
    case EXPR_REF_METRIC:
        return intern_lookup(&r->metrics, name, len);
    case EXPR_REF_FEATURE:
        return intern_id(&r->features, name, len);
    case EXPR_REF_ENGAGE:
        return 0;
    }
    return -1;
}

int rules_compile(struct rules *r, const char *src, size_t len, struct expr **out,
                  struct expr_error *err)
{
    struct expr_resolver res = {.ctx = r, .resolve = resolve};
    return expr_compile(src, len, &res, out, err);
}

int rules_compile_value(struct rules *r, const char *src, size_t len, struct expr **out,
                        struct expr_error *err)
{
    struct expr_resolver res = {.ctx = r, .resolve = resolve};
    return expr_compile_value(src, len, &res, out, err);
}

/* Names as rules_compile would take them, without interning anything new. */
static int64_t resolve_probe(void *ctx, enum expr_ref kind, const char *name, size_t len)
{
    const struct rules *r = ctx;
    switch (kind) {
    case EXPR_REF_CLASS:
        return intern_lookup(&r->classes, name, len);
    case EXPR_REF_ENTITY:
        return intern_lookup(&r->entities, name, len);
    case EXPR_REF_METRIC:
        return intern_lookup(&r->metrics, name, len);
    default:
        return 0; /* state keys, globals, types and features: any name is taken */
    }
}

int rules_compile_probe(const struct rules *r, const char *src, size_t len,
                        struct expr_error *err)
{
    struct expr_resolver res = {.ctx = (void *)r, .resolve = resolve_probe};
    struct expr *x = NULL;
    int rc = expr_compile(src, len, &res, &x, err);
    expr_free(x);
    return rc;
}

/*
 * A double-quoted escape at p (a backslash): returns how many bytes of
 * content it stands for and sets *srclen to its length in the source.
 */
static size_t dq_escape(const char *p, size_t avail, size_t *srclen)
{
    *srclen = avail < 2 ? avail : 2;
    if (avail < 2)
        return 0;
    size_t digits = p[1] == 'x' ? 2 : p[1] == 'u' ? 4 : p[1] == 'U' ? 8 : 0;
    if (digits) {
        unsigned long cp = 0;
        for (size_t i = 0; i < digits && 2 + i < avail; i++) {
            char c = p[2 + i];
            cp = cp * 16 + (unsigned long)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
            (*srclen)++;
        }
        return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    }
    switch (p[1]) {
    case '\r': /* an escaped line break joins the lines */
        *srclen += avail > 2 && p[2] == '\n';
        return 0;
    case '\n':
        return 0;
    case 'N': /* U+0085 */
    case '_': /* U+00A0 */
        return 2;
    case 'L': /* U+2028 */
    case 'P': /* U+2029 */
        return 3;
    default:
        return 1;
    }
}

/*
 * Map a byte offset into a condition's content back to its 0-based file
 * line and column.  The content is what libyaml made of the source: quotes
 * and escapes resolved, line breaks folded into spaces, blank lines into
 * line breaks, indentation and CRs dropped.  So the source is walked
 * beside the content: escapes as units, a source byte that equals the next
 * content byte (or a line break where the content has a folded space)
 * produces it, and anything else was dropped.  The result is the source
 * character that produced content[offset], or the position just after
 * the content when offset is its length.
 */
static void cond_pos(const struct pack_src *ps, const struct cond_loc *loc, const char *content,
                     size_t offset, size_t *line, size_t *col)
{
    const char *t = ps->text;
    size_t clen = strlen(content), i = loc->start, k = 0;
    size_t end = loc->end < ps->len ? loc->end : ps->len;
    *line = loc->line;
    *col = loc->col;
    if (offset > clen)
        offset = clen;
    while (i < end && !(k == offset && offset == clen)) {
        size_t src = 1, made;
        if (loc->style == YAML_DOUBLE_QUOTED_SCALAR_STYLE && t[i] == '\\') {
            made = dq_escape(t + i, end - i, &src);
        } else if (loc->style == YAML_SINGLE_QUOTED_SCALAR_STYLE && t[i] == '\'' && i + 1 < end &&
                   t[i + 1] == '\'') {
            made = 1, src = 2; /* '' is one quote */
        } else {
            made = k < clen && (t[i] == content[k] || (t[i] == '\n' && content[k] == ' '));
        }
        if (k + made > offset)
            return; /* this source character produced the one asked for */
        k += made;
        for (size_t n = 0; n < src; n++, i++) {
            if (t[i] == '\n') {
                (*line)++;
                *col = 0;
            } else {
                *col += !utf8_cont(t[i]);
            }
        }
    }
}

int rules_finish(struct rules *r)
{
    struct rules_load *L = loader(r);
    struct expr_resolver res = {.ctx = r, .resolve = resolve};
    if (r->finished)
        return 0;
    int rc = r->nerrors ? FW_EPARSE : 0;
    for (size_t i = 0; i < r->nsignals; i++) {
        struct rule_signal *s = &r->signals[i];
        struct expr_error err;
        if (s->cond)
            continue;
        if (expr_compile(s->condition, strlen(s->condition), &res, &s->cond, &err)) {
            const struct pack_src *ps = &L->packs[L->locs[i].pack];
            size_t line, col;
            cond_pos(ps, &L->locs[i], s->condition, err.offset, &line, &col);
            ydiag_at(&r->diag, ps->name, ps->text, ps->len, line, col, "%s: %s", s->id, err.msg);
            r->nerrors++;
            rc = FW_EPARSE;
            continue;
        }
        /* Run-time messages about a pattern (a search stopped by a limit) name its place. */
        for (size_t k = 0; k < expr_regex_count(s->cond); k++) {
            const struct pack_src *ps = &L->packs[L->locs[i].pack];
            size_t line, col;
            char where[512];
            cond_pos(ps, &L->locs[i], s->condition, expr_regex_offset(s->cond, k), &line, &col);
            snprintf(where, sizeof where, "%s:%zu:%zu (%s)", ps->name, line + 1, col + 1, s->id);
            expr_regex_set_origin(s->cond, k, where);
        }
        size_t ndeps;
        const struct expr_dep *deps = expr_deps(s->cond, &ndeps);
        for (size_t k = 0; k < ndeps; k++)
            if (deps[k].kind == EXPR_REF_GLOBAL)
                s->uses_global = 1;
        int days = expr_max_days(s->cond);
        if (days > r->horizon_days) {
            buf_printf(&r->diag,
                       "%s:%u:%u: error: %s reads %d days of usage history; the horizon "
                       "(engagement: horizon_days) keeps %d\n",
                       s->file, s->line, s->col, s->id, days, r->horizon_days);
            r->nerrors++;
            rc = FW_EPARSE;
        }
        for (size_t k = 0; k < s->nexplains; k++)
            if (!rules_signal(r, s->explains[k])) {
                buf_printf(&r->diag, "%s:%u:%u: error: %s explains unknown signal '%s'\n", s->file,
                           s->line, s->col, s->id, s->explains[k]);
                r->nerrors++;
                rc = FW_EPARSE;
            }
        if (s->systemic && !s->nfactors && r->ndefault_factors) {
            s->factors = xmalloc(r->ndefault_factors * sizeof *s->factors);
            memcpy(s->factors, r->default_factors, r->ndefault_factors * sizeof *s->factors);
            s->nfactors = r->ndefault_factors;
        }
    }
    /* The longest window each class is counted over bounds what the engine keeps. */
    size_t nclasses = intern_count(&r->classes);
    free(r->class_window); /* from an earlier, failed finish */
    r->class_window = xcalloc(nclasses ? nclasses : 1, sizeof *r->class_window);
    for (size_t i = 0; i < r->nsignals; i++) {
        if (!r->signals[i].cond)
            continue;
        size_t ndeps;
        const struct expr_dep *deps = expr_deps(r->signals[i].cond, &ndeps);
        for (size_t k = 0; k < ndeps; k++)
            if (deps[k].kind == EXPR_REF_CLASS) {
                int64_t w = expr_max_window(r->signals[i].cond, deps[k].id);
                if (w > r->class_window[deps[k].id])
                    r->class_window[deps[k].id] = w;
            }
    }
    if (!r->nsignals && !rc) {
        buf_puts(&r->diag, "error: no signals loaded\n");
        r->nerrors++;
        rc = FW_EPARSE;
    }
    if (rc == 0) {
        /* Known issues and maintenance are declared for everyone (docs/known-issues.md). */
        uint32_t ki = rules_type_id(r, RULES_KNOWN_ISSUE_TYPE, strlen(RULES_KNOWN_ISSUE_TYPE));
        r->type_info[ki].global = 1;
        strmap_cleanup(&r->global_types);
        strmap_init(&r->global_types);
        for (size_t t = 0; t < intern_count(&r->types); t++)
            if (r->type_info[t].global) {
                const char *name = intern_str(&r->types, (uint32_t)t);
                strmap_upsert(&r->global_types, name, strlen(name), NULL);
            }
    }
    r->finished = rc == 0;
    return rc;
}

int rules_type_in_class(const struct rules *r, const char *type, const char *cls)
{
    int64_t c = intern_lookup(&r->classes, cls, strlen(cls));
    int64_t tid = intern_lookup(&r->types, type, strlen(type));
    if (c < 0 || tid < 0)
        return 0;
    const struct rule_type *t = rules_type(r, (uint32_t)tid);
    for (size_t i = 0; i < t->nclasses; i++)
        if (t->classes[i] == (uint32_t)c)
            return 1;
    return 0;
}
