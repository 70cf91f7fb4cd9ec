/*
 * load.c -- a template set: the built-ins, overridden file by file from a
 * directory, compiled together and indexed by (audience, channel, name).
 *
 * Loading is all or nothing: sources are gathered first (a directory file
 * replaces the built-in with the same relative path), then every source is
 * compiled and every error reported; a set is returned only when all of
 * them compiled.  After that the set never changes, so lookups and
 * rendering need no locks.
 *
 * Partials (partials/<name>.tmpl) are sources like the others, overridden
 * the same way, but not templates: each template that includes one has it
 * inlined when it compiles, against the gathered sources, so a directory's
 * partial is what the built-in templates include too.  A partial nobody
 * includes is still compiled on its own, so its mistakes are reported.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "comms/comms_int.h"
#include "util/buf.h"
#include "util/map.h"
#include "util/util.h"

/* Directory levels below the root that are searched; templates sit two levels down. */
#define WALK_MAX_DEPTH 8

struct comms {
    struct comms_tmpl **v; /* owned, in load order */
    size_t n, cap;
    struct strmap index; /* "audience/channel/name" -> template */
};

/* One source before compiling. */
struct source {
    char *file;       /* for diagnostics and comms_tmpl_path */
    const char *text; /* a built-in's text, or `owned` */
    size_t len;
    char *owned;
    int used; /* a partial some template included */
};

struct sources {
    struct strmap byrel; /* relative path -> index + 1 into v (as a pointer) */
    struct source *v;
    size_t n, cap;
};

static void add_source(struct sources *s, const char *rel, char *file, const char *text, size_t len,
                       char *owned)
{
    struct strmap_entry *e = strmap_upsert(&s->byrel, rel, strlen(rel), NULL);
    struct source *src;
    if (e->value) {
        src = &s->v[(size_t)(uintptr_t)e->value - 1];
        free(src->file);
        free(src->owned);
    } else {
        s->v = xgrow(s->v, &s->cap, s->n + 1, sizeof *s->v);
        src = &s->v[s->n++];
        e->value = (void *)(uintptr_t)s->n;
    }
    *src = (struct source){file, text, len, owned, 0};
}

static int is_partial(const char *rel) { return !strncmp(rel, "partials/", 9); }

/* comms__partial_fn over the gathered sources: partials/<name>.tmpl. */
static int find_partial(void *arg, const char *name, size_t n, struct comms__partial *out)
{
    struct sources *s = arg;
    char rel[128];
    if (n > sizeof rel - sizeof "partials/.tmpl")
        return -1;
    int k = snprintf(rel, sizeof rel, "partials/%.*s.tmpl", (int)n, name);
    struct strmap_entry *e = strmap_find(&s->byrel, rel, (size_t)k);
    if (!e)
        return -1;
    struct source *src = &s->v[(size_t)(uintptr_t)e->value - 1];
    src->used = 1;
    *out = (struct comms__partial){src->file, src->text, src->len};
    return 0;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

static int read_source(const char *path, char **text, size_t *len, struct buf *diag)
{
    struct buf b;
    buf_init(&b, COMMS__SOURCE_MAX);
    int rc = buf_read_file(&b, path);
    if (rc == FW_EIO) {
        buf_printf(diag, "%s: error: cannot read: %s\n", path, strerror(errno));
    } else if (rc) {
        buf_printf(diag, "%s: error: template larger than %d KiB\n", path,
                   COMMS__SOURCE_MAX / 1024);
        rc = FW_EPARSE;
    }
    if (rc) {
        buf_cleanup(&b);
        return rc;
    }
    *len = b.len;
    *text = buf_steal(&b);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Gather root/rel/... recursively: *.tmpl files become sources keyed by
 * their path relative to root; other files and dot-entries are ignored.
 * Entries are visited in name order, so loading is deterministic.
 */
static int walk(const char *root, const char *rel, int depth, struct sources *s, struct buf *diag)
{
    char *dir = rel ? NULL : xstrdup(root);
    if (rel) {
        dir = xmalloc(strlen(root) + strlen(rel) + 2);
        sprintf(dir, "%s/%s", root, rel);
    }
    DIR *d = opendir(dir);
    if (!d) {
        buf_printf(diag, "%s: error: cannot open the template directory: %s\n", dir,
                   strerror(errno));
        free(dir);
        return FW_EIO;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        names = xgrow(names, &cap, n + 1, sizeof *names);
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char *crel = xmalloc((rel ? strlen(rel) + 1 : 0) + strlen(names[i]) + 1);
        sprintf(crel, "%s%s%s", rel ? rel : "", rel ? "/" : "", names[i]);
        char *full = xmalloc(strlen(root) + strlen(crel) + 2);
        sprintf(full, "%s/%s", root, crel);
        struct stat st;
        int r = 0;
        if (stat(full, &st) != 0) {
            buf_printf(diag, "%s: error: cannot read: %s\n", full, strerror(errno));
            r = FW_EIO;
        } else if (S_ISDIR(st.st_mode)) {
            if (depth < WALK_MAX_DEPTH)
                r = walk(root, crel, depth + 1, s, diag);
        } else if (S_ISREG(st.st_mode) && has_suffix(names[i], ".tmpl")) {
            char *text;
            size_t len;
            if ((r = read_source(full, &text, &len, diag)) == 0) {
                add_source(s, crel, full, text, len, text);
                full = NULL; /* the source owns it now */
            }
        }
        if (r && (!rc || r == FW_EIO))
            rc = r;
        free(full);
        free(crel);
        free(names[i]);
    }
    free(names);
    free(dir);
    return rc;
}

void comms_free(struct comms *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        comms_tmpl_free(c->v[i]);
    free(c->v);
    strmap_cleanup(&c->index);
    free(c);
}

int comms_load(const char *dir, struct comms **out, struct buf *diag)
{
    struct sources s = {0};
    struct comms *c = xcalloc(1, sizeof *c);
    int rc = 0;
    *out = NULL;
    strmap_init(&s.byrel);
    strmap_init(&c->index);
    for (const struct comms_builtin *b = comms_builtins; b->path; b++) {
        char *file = xmalloc(strlen(b->path) + sizeof "templates/");
        sprintf(file, "templates/%s", b->path);
        add_source(&s, b->path, file, b->text, strlen(b->text), NULL);
    }
    if (dir) {
        char *root = xstrdup(dir);
        size_t n = strlen(root);
        while (n > 1 && root[n - 1] == '/')
            root[--n] = '\0';
        rc = walk(root, NULL, 0, &s, diag);
        free(root);
    }
    for (size_t i = 0; i < s.n; i++) {
        const char *rel = s.byrel.entries[i].key; /* entries and sources share an order */
        struct comms_tmpl *t;
        if (is_partial(rel))
            continue;
        int r =
            comms__compile(s.v[i].file, rel, s.v[i].text, s.v[i].len, find_partial, &s, &t, diag);
        if (r) {
            if (!rc)
                rc = r;
            continue;
        }
        c->v = xgrow(c->v, &c->cap, c->n + 1, sizeof *c->v);
        c->v[c->n++] = t;
        strmap_upsert(&c->index, t->key, strlen(t->key), NULL)->value = t;
    }
    for (size_t i = 0; i < s.n; i++) {
        const char *rel = s.byrel.entries[i].key;
        struct comms_tmpl *t;
        if (!is_partial(rel) || s.v[i].used)
            continue;
        int r =
            comms__compile(s.v[i].file, rel, s.v[i].text, s.v[i].len, find_partial, &s, &t, diag);
        comms_tmpl_free(t);
        if (r && !rc)
            rc = r;
    }
    for (size_t i = 0; i < s.n; i++) {
        free(s.v[i].file);
        free(s.v[i].owned);
    }
    free(s.v);
    strmap_cleanup(&s.byrel);
    if (rc) {
        comms_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

const struct comms_tmpl *comms_find(const struct comms *c, const char *audience,
                                    const char *channel, const char *name)
{
    char key[256];
    for (int pass = 0; pass < 2; pass++) {
        const char *nm = pass ? "default" : name;
        if (!nm)
            continue;
        /* "audience/channel/name", joined by hand: found once or more per message. */
        size_t la = strlen(audience), lc = strlen(channel), ln = strlen(nm);
        size_t n = la + lc + ln + 2;
        if (n >= sizeof key)
            continue;
        memcpy(key, audience, la);
        key[la] = '/';
        memcpy(key + la + 1, channel, lc);
        key[la + 1 + lc] = '/';
        memcpy(key + la + lc + 2, nm, ln);
        struct strmap_entry *e = strmap_find(&c->index, key, n);
        if (e)
            return e->value;
    }
    return NULL;
}

const struct comms_tmpl *comms_tmpl_at(const struct comms *c, size_t i)
{
    return i < c->n ? c->v[i] : NULL;
}

const char *comms_tmpl_path(const struct comms_tmpl *t) { return t->path; }

const char *comms_tmpl_audience(const struct comms_tmpl *t)
{
    return comms__audience_name(t->audience);
}

const char *comms_tmpl_channel(const struct comms_tmpl *t)
{
    return comms__channel_name(t->channel);
}

const char *comms_tmpl_name(const struct comms_tmpl *t) { return t->name; }
