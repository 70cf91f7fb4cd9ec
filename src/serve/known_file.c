/*
 * known_file.c -- known issues and maintenance from a YAML file, applied by
 * `serve` at start-up (docs/known-issues.md, "The file form").
 *
 * The file is a second way into the same registry as POST
 * /v1/known-issues: each entry becomes the `known_issue.changed` event the
 * API would have journaled (a declaration for a new id, an update of what
 * differs for a known one), so recovery and replay see no difference.
 * Invariant: all or nothing.  Every entry is checked against the registry
 * as it stands before the first one is journaled, and ids are unique in
 * the file, so no entry's check depends on another's being applied.
 */
#include "serve/known_file.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "ingest/ingest.h"
#include "rules/rules.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"
#include "util/yaml.h"

#define KNOWN_FILE_MAX (1 << 20) /* bytes: like a config file */

/* One entry that passed its checks: the event to journal, or nothing to do. */
struct entry {
    json_t *event; /* the known_issue.changed event, or NULL when unchanged */
    int declare;
};

/* Start of 0-based line `line` in the source, or NULL past its end. */
static const char *line_at(const struct ydoc *d, size_t line)
{
    const char *p = d->text, *end = d->text + d->len;
    while (line && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return NULL;
        p = nl + 1;
        line--;
    }
    return p < end ? p : NULL;
}

/*
 * The file position of a segment's own line:col (1-based, as the rule
 * language reports them) inside its YAML scalar: plain and quoted scalars
 * start at their mark; a block scalar's text starts on the next line,
 * folded (`>`) joining its lines with one space, literal (`|`) keeping them.
 */
static void segment_pos(const struct ydoc *d, const yaml_node_t *v, unsigned sl, unsigned sc,
                        size_t *line, size_t *col)
{
    yaml_scalar_style_t st = v->data.scalar.style;
    *line = v->start_mark.line;
    *col = v->start_mark.column;
    if (st != YAML_LITERAL_SCALAR_STYLE && st != YAML_FOLDED_SCALAR_STYLE) {
        /* A quoted scalar's text starts after its quote; its later lines are not traced. */
        *col += (st == YAML_PLAIN_SCALAR_STYLE ? 0 : 1) + (sc ? sc - 1 : 0);
        return;
    }
    size_t off = sc ? sc - 1 : 0, l = v->start_mark.line + 1;
    if (st == YAML_LITERAL_SCALAR_STYLE)
        l += sl ? sl - 1 : 0;
    for (const char *p; (p = line_at(d, l)); l++) {
        size_t ind = 0, len = 0;
        while (p + ind < d->text + d->len && p[ind] == ' ')
            ind++;
        while (p + ind + len < d->text + d->len && p[ind + len] != '\n')
            len++;
        if (st == YAML_LITERAL_SCALAR_STYLE || off <= len) {
            *line = l;
            *col = ind + off;
            return;
        }
        off -= len + 1; /* folded: this line and the space that joined it to the next */
    }
}

/*
 * A checker's reason ("status: must be one of ...", "segment: 1:18: ...")
 * at the value of the field it names, and inside a segment at the spot;
 * at the entry itself when it names no field of the entry.
 */
static void locate(struct ydoc *d, struct buf *diag, yaml_node_t *item, const char *why)
{
    char field[64];
    size_t fl = strcspn(why, ":");
    yaml_node_t *v = NULL;
    if (why[fl] == ':' && fl < sizeof field) {
        memcpy(field, why, fl);
        field[fl] = '\0';
        v = ymap_get(d, item, field);
    }
    if (!v) {
        ydiag(d, diag, item, "%s", why);
        return;
    }
    unsigned sl, sc;
    int used = 0;
    if (!strcmp(field, "segment") && v->type == YAML_SCALAR_NODE &&
        sscanf(why + fl + 1, " %u:%u: %n", &sl, &sc, &used) == 2 && used > 0) {
        size_t line, col;
        segment_pos(d, v, sl, sc, &line, &col);
        ydiag_at(diag, d->name, d->text, d->len, line, col, "segment: %s", why + fl + 1 + used);
        return;
    }
    ydiag(d, diag, v, "%s", why);
}

/* A fresh event id, like the API's (the journal de-duplicates by id). */
static void event_id(char out[40])
{
    unsigned char b[12];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    snprintf(out, 40, "kif_");
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(out + 4 + 2 * i, 3, "%02x", b[i]);
}

/* The registry's record for id (borrowed from list), or NULL. */
static json_t *registry_find(json_t *list, const char *id)
{
    size_t i;
    json_t *k;
    json_array_foreach (list, i, k)
        if (!strcmp(json_string_value(json_object_get(k, "id")) ?: "", id))
            return k;
    return NULL;
}

/* Equal as the registry keeps them (it keeps severity in lower case). */
static int same_value(const char *key, json_t *file, json_t *reg)
{
    if (!strcmp(key, "severity") && json_is_string(file) && json_is_string(reg)) {
        const char *a = json_string_value(file), *b = json_string_value(reg);
        while (*a && tolower((unsigned char)*a) == *b)
            a++, b++;
        return !*a && !*b;
    }
    return reg && json_equal(file, reg);
}

/*
 * Check one entry and build its event: 0 (e->event NULL when it changes
 * nothing), or FW_EPARSE with the diagnostic in diag.
 */
static int check_entry(struct pipeline *p, struct ydoc *d, yaml_node_t *item, json_t *registry,
                       struct entry *e, struct buf *diag)
{
    char why[512];
    if (item->type != YAML_MAPPING_NODE) {
        ydiag(d, diag, item, "each known issue must be a mapping of its fields (id, title, ...)");
        return FW_EPARSE;
    }
    json_t *data = yaml_to_json(d, item);
    const char *id = json_string_value(json_object_get(data, "id"));
    json_t *cur = id ? registry_find(registry, id) : NULL;
    const char *st = cur ? json_string_value(json_object_get(cur, "status")) ?: "" : "";
    if (cur && (!strcmp(st, "resolved") || !strcmp(st, "completed") || !strcmp(st, "cancelled"))) {
        log_warn("%s:%zu: known issue %s is %s in the store; its entry is left as the store "
                 "has it",
                 d->name, (size_t)item->start_mark.line + 1, id, st);
        json_decref(data);
        return 0;
    }
    if (cur) {
        /* An update of what differs; nothing at all when nothing does. */
        json_t *diff = json_pack("{s:s}", "id", id);
        const char *k;
        json_t *v;
        json_object_foreach (data, k, v)
            if (strcmp(k, "id") && !same_value(k, v, json_object_get(cur, k)))
                json_object_set(diff, k, v);
        json_decref(data);
        data = diff;
        if (json_object_size(data) == 1) {
            json_decref(data);
            return 0;
        }
    }
    char eid[40], ts[FW_TIME_MAXLEN];
    event_id(eid);
    fw_time_format(pipeline_now(p), ts);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "specversion", "1.0", "id", eid,
                          "type", RULES_KNOWN_ISSUE_TYPE, "source", "forewarn/known-issues-file",
                          "time", ts, "data", data);
    struct event ev;
    struct ingest_error ierr;
    struct ingest_globals g = {.ctx = (void *)pipeline_rules(p), .is_global = rules_is_global};
    int rc = 0;
    if (ingest_validate(j, &ingest_own_limits, &g, &ev, &ierr)) {
        snprintf(why, sizeof why, "%s%s%s", ierr.field, ierr.field[0] ? ": " : "", ierr.msg);
        locate(d, diag, item, why);
        rc = FW_EPARSE;
    } else {
        if (pipeline_known_check(p, &ev, why, sizeof why)) {
            locate(d, diag, item, why);
            rc = FW_EPARSE;
        }
        event_cleanup(&ev);
    }
    if (rc) {
        json_decref(j);
        return rc;
    }
    e->event = j;
    e->declare = cur == NULL;
    return 0;
}

int known_file_apply(struct pipeline *p, const char *path, struct buf *diag)
{
    struct ydoc doc, *d = &doc;
    struct buf text;
    struct entry *es = NULL;
    size_t n = 0;
    json_t *registry = NULL;
    int rc;
    memset(&doc, 0, sizeof doc);
    buf_init(&text, KNOWN_FILE_MAX);
    if ((rc = buf_read_file(&text, path)) == FW_EIO) {
        buf_printf(diag, "%s: error: cannot read: %s\n", path, strerror(errno));
        goto out;
    }
    if (rc) {
        buf_printf(diag, "%s: error: known issues file larger than 1 MiB\n", path);
        rc = FW_EPARSE;
        goto out;
    }
    if ((rc = ydoc_load(d, path, text.data ? text.data : "", text.len, diag)))
        goto out;
    rc = FW_EPARSE;
    yaml_node_t *root = ydoc_root(d), *list = NULL;
    if (!root || root->type != YAML_MAPPING_NODE) {
        if (root)
            ydiag(d, diag, root, "the file must be a mapping with a known_issues: list");
        else
            buf_printf(diag, "%s: error: empty; the file must hold a known_issues: list\n", path);
        goto out;
    }
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = ydoc_node(d, pr->key);
        if (strcmp(yscalar(kn) ?: "", "known_issues")) {
            ydiag(d, diag, kn, "unknown key '%s'; the file holds one list, known_issues:",
                  yscalar(kn) ?: "");
            goto out;
        }
        list = ydoc_node(d, pr->value);
    }
    if (!list || list->type != YAML_SEQUENCE_NODE) {
        ydiag(d, diag, list ? list : root, "known_issues must be a list of known issues");
        goto out;
    }
    n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    es = xcalloc(n ? n : 1, sizeof *es);
    registry = pipeline_known_json(p);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ydoc_node(d, list->data.sequence.items.start[i]);
        /* One entry per id: two would be checked against the same registry, not each other. */
        yaml_node_t *idn = ymap_get(d, item, "id");
        int dup = 0;
        for (size_t k = 0; idn && yscalar(idn) && k < i && !dup; k++) {
            yaml_node_t *prev = ymap_get(d, ydoc_node(d, list->data.sequence.items.start[k]), "id");
            if (prev && yscalar(prev) && !strcmp(yscalar(prev), yscalar(idn))) {
                ydiag(d, diag, idn, "id: %s is already in this file (line %zu); one entry per id",
                      yscalar(idn), (size_t)prev->start_mark.line + 1);
                dup = 1;
            }
        }
        if (dup || check_entry(p, d, item, registry, &es[i], diag))
            bad = 1;
    }
    if (bad)
        goto out;
    /* Every entry passed: journal each, as the API would have. */
    size_t declared = 0, updated = 0;
    for (size_t i = 0; i < n; i++) {
        if (!es[i].event)
            continue;
        struct event ev;
        struct ingest_error ierr;
        struct ingest_globals g = {.ctx = (void *)pipeline_rules(p), .is_global = rules_is_global};
        char why[512], case_id[24];
        if (ingest_validate(es[i].event, &ingest_own_limits, &g, &ev, &ierr)) {
            rc = FW_EPARSE; /* checked above: cannot happen */
            goto out;
        }
        char *body = fw_json_dumps(es[i].event);
        int arc = pipeline_act(p, &ev, body, why, sizeof why, case_id);
        free(body);
        event_cleanup(&ev);
        if (arc) {
            buf_printf(diag, "%s: error: %s\n", path,
                       arc == FW_EINVAL || arc == FW_ESTATE ? why
                                                            : "the change could not be stored");
            rc = arc == FW_EINVAL || arc == FW_ESTATE ? FW_EPARSE : FW_EDB;
            goto out;
        }
        *(es[i].declare ? &declared : &updated) += 1;
    }
    log_info("known issues from %s: %zu declared, %zu updated, %zu unchanged", path, declared,
             updated, n - declared - updated);
    rc = 0;
out:
    for (size_t i = 0; es && i < n; i++)
        json_decref(es[i].event);
    free(es);
    json_decref(registry);
    ydoc_cleanup(d);
    buf_cleanup(&text);
    return rc;
}
