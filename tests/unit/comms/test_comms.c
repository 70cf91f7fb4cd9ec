/*
 * test_comms.c -- templates: the engine through the spec cases of
 * tests/cases/comms/ (render.test, errors.test), the variable table, loading
 * a directory over the built-ins, every shipped template against the sample
 * context at every tone, and docs/templates.md (its variable table and every
 * example in it).
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../test.h"
#include "comms/comms.h"
#include "comms/comms_int.h"
#include "comms/vars.h"
#include "util/buf.h"
#include "util/util.h"

#define ERRORS_FILE "../cases/comms/errors.test"
#define RENDER_FILE "../cases/comms/render.test"
#define DOC_FILE "../../docs/templates.md"

/* ---- helpers ---- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct buf b;
    buf_init(&b, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    if (len)
        *len = b.len;
    return buf_steal(&b);
}

static struct comms_tmpl *compile(const char *path, const char *text, struct buf *diag)
{
    struct comms_tmpl *t = NULL;
    comms_tmpl_compile(NULL, path, text, strlen(text), &t, diag);
    return t;
}

/* Render text with a JSON context given as text (NULL: none); returns the text or NULL. */
static char *render_text(const char *path, const char *tmpl, const char *ctxjson)
{
    struct buf diag;
    buf_init(&diag, 0);
    struct comms_tmpl *t = compile(path, tmpl, &diag);
    char *out = NULL;
    if (!t) {
        fprintf(stderr, "    compile %s failed:\n%s", path, diag.data ? diag.data : "");
    } else {
        json_t *ctx = ctxjson ? json_loads(ctxjson, 0, NULL) : NULL;
        struct comms_rendered r;
        if (comms_render(t, ctx, &r) == 0) {
            out = r.text;
            r.text = NULL;
            comms_rendered_cleanup(&r);
        }
        json_decref(ctx);
    }
    comms_tmpl_free(t);
    buf_cleanup(&diag);
    return out;
}

/* The <body> contents of an HTML document (a copy), or NULL. */
static char *html_body(const char *html)
{
    const char *a = html ? strstr(html, "<body>\n") : NULL, *b = a ? strstr(a, "\n</body>") : NULL;
    return a && b ? xstrndup(a + 7, (size_t)(b > a + 7 ? b - a - 7 : 0)) : NULL;
}

/* ---- case files: === title, --- name blocks ---- */

struct block {
    char name[256];
    struct buf text;
    int line; /* line of the `--- name` line */
};

struct tcase {
    char title[256];
    int line;
    struct block b[16];
    int nb;
};

static const struct block *find_block(const struct tcase *c, const char *name)
{
    for (int i = 0; i < c->nb; i++)
        if (!strcmp(c->b[i].name, name))
            return &c->b[i];
    return NULL;
}

/* Drop blank lines at the end; a template keeps the newline of its last line. */
static void trim_block(struct block *b)
{
    int keep = strchr(b->name, '/') != NULL;
    while (b->text.len && b->text.data[b->text.len - 1] == '\n' &&
           (!keep || b->text.len == 1 || b->text.data[b->text.len - 2] == '\n'))
        b->text.data[--b->text.len] = '\0';
}

static void reset_case(struct tcase *c)
{
    for (int i = 0; i < c->nb; i++)
        buf_cleanup(&c->b[i].text);
    c->nb = 0;
    c->title[0] = '\0';
}

/*
 * Read a case file and call fn for each case; returns the number of cases
 * or -1 when the file cannot be read.  A `#` line is a comment except
 * inside a template block (one whose name has a '/').
 */
static int each_case(const char *path, int (*fn)(struct tcase *, void *), void *arg, int *nfail)
{
    char *s = slurp(path, NULL);
    if (!s)
        return -1;
    struct tcase c = {0};
    int ncases = 0, lineno = 0;
    char *p = s;
    while (*p) {
        char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        lineno++;
        struct block *cur = c.nb ? &c.b[c.nb - 1] : NULL;
        if (n >= 3 && !strncmp(p, "===", 3)) {
            if (c.title[0]) {
                for (int i = 0; i < c.nb; i++)
                    trim_block(&c.b[i]);
                *nfail += fn(&c, arg) != 0;
                ncases++;
            }
            reset_case(&c);
            snprintf(c.title, sizeof c.title, "%.*s", (int)(n > 4 ? n - 4 : 0), p + 4);
            c.line = lineno;
        } else if (n > 4 && !strncmp(p, "--- ", 4) && c.title[0] && c.nb < 16) {
            cur = &c.b[c.nb++];
            snprintf(cur->name, sizeof cur->name, "%.*s", (int)(n - 4), p + 4);
            buf_init(&cur->text, 0);
            cur->line = lineno;
        } else if (p[0] == '#' && !(cur && strchr(cur->name, '/'))) {
            /* a comment */
        } else if (cur) {
            buf_append(&cur->text, p, n);
            buf_putc(&cur->text, '\n');
        }
        p = e ? e + 1 : p + n;
    }
    if (c.title[0]) {
        for (int i = 0; i < c.nb; i++)
            trim_block(&c.b[i]);
        *nfail += fn(&c, arg) != 0;
        ncases++;
    }
    reset_case(&c);
    free(s);
    return ncases;
}

/*
 * Compare a diagnostic with the expected `file:line:col: error: ...` lines:
 * the same error lines in order, each with a line number followed by the
 * source line and a caret under the column.  0 when it holds.
 */
static int check_diag(const char *diag, const char *expected, const char *where)
{
    char *d = xstrdup(diag ? diag : ""), *x = xstrdup(expected ? expected : "");
    int fails = 0;
    char *dsave = NULL, *xsave = NULL;
    char *dl = strtok_r(d, "\n", &dsave), *xl = strtok_r(x, "\n", &xsave);
    while (dl || xl) {
        if (!dl || !xl || strcmp(dl, xl)) {
            fprintf(stderr, "    %s:\n      got      %s\n      expected %s\n", where,
                    dl ? dl : "(nothing)", xl ? xl : "(nothing)");
            fails++;
            break;
        }
        /* "file:L:C: error:" has a source line and a caret; "file: error:" does not. */
        char *err = strstr(dl, ": error: ");
        unsigned line = 0, col = 0;
        char *c2 = NULL;
        if (err) {
            *err = '\0';
            c2 = strrchr(dl, ':');
        }
        if (c2 && c2 > dl) {
            char *c1 = c2 - 1;
            while (c1 > dl && *c1 != ':')
                c1--;
            if (*c1 == ':' && sscanf(c1 + 1, "%u", &line) == 1 && sscanf(c2 + 1, "%u", &col) == 1) {
                char *src = strtok_r(NULL, "\n", &dsave), *caret = strtok_r(NULL, "\n", &dsave);
                size_t pad = 0;
                if (caret && !strncmp(caret, "    ", 4)) {
                    for (const char *q = caret + 4; *q == ' ' || *q == '\t'; q++)
                        pad++;
                }
                if (!src || strncmp(src, "    ", 4) || !caret || caret[4 + pad] != '^' ||
                    pad + 1 != col) {
                    fprintf(stderr, "    %s: no source line and caret at column %u after %s\n",
                            where, col, xl);
                    fails++;
                    break;
                }
            }
        }
        dl = strtok_r(NULL, "\n", &dsave);
        xl = strtok_r(NULL, "\n", &xsave);
    }
    free(d);
    free(x);
    return fails;
}

/* ---- the spec cases ---- */

static int is_partial_block(const struct block *b) { return !strncmp(b->name, "partials/", 9); }

/* A case's `--- partials/<name>.tmpl` blocks are its partials; else the built-in ones. */
static int case_partial(void *arg, const char *name, size_t n, struct comms__partial *out)
{
    const struct tcase *c = arg;
    for (int i = 0; i < c->nb; i++) {
        const char *bn = c->b[i].name;
        if (is_partial_block(&c->b[i]) && strlen(bn) == n + 14 && !strncmp(bn + 9, name, n) &&
            !strcmp(bn + 9 + n, ".tmpl")) {
            *out = (struct comms__partial){bn, c->b[i].text.data ? c->b[i].text.data : "",
                                           c->b[i].text.len};
            return 0;
        }
    }
    return comms__builtin_partial(NULL, name, n, out);
}

static int error_case(struct tcase *c, void *arg)
{
    (void)arg;
    struct buf diag;
    char where[400];
    int fails = 0;
    buf_init(&diag, 0);
    snprintf(where, sizeof where, "%s:%d (%s)", ERRORS_FILE, c->line, c->title);
    const struct block *want = find_block(c, "errors");
    if (!want) {
        fprintf(stderr, "    %s: no errors block\n", where);
        return 1;
    }
    for (int i = 0; i < c->nb; i++) {
        if (&c->b[i] == want || is_partial_block(&c->b[i]))
            continue;
        struct comms_tmpl *t = NULL;
        int rc = comms__compile(NULL, c->b[i].name, c->b[i].text.data ? c->b[i].text.data : "",
                                c->b[i].text.len, case_partial, c, &t, &diag);
        if (rc != FW_EPARSE || t) {
            fprintf(stderr, "    %s: %s compiled (rc %d)\n", where, c->b[i].name, rc);
            fails++;
        }
        comms_tmpl_free(t);
    }
    fails += check_diag(diag.data, want->text.data, where);
    buf_cleanup(&diag);
    return fails;
}

static void error_cases(void)
{
    int nfail = 0;
    int n = each_case(ERRORS_FILE, error_case, NULL, &nfail);
    ASSERT(n >= 35); /* the file really was read */
    ASSERT_EQ(nfail, 0);
}

static int cmp_part(const char *where, const char *part, const char *got, const struct block *b)
{
    if (!b)
        return 0;
    const char *want = b->text.data ? b->text.data : "";
    if (got && !strcmp(got, want))
        return 0;
    fprintf(stderr, "    %s: %s\n--- got\n%s\n--- expected\n%s\n---\n", where, part,
            got ? got : "(null)", want);
    return 1;
}

/* Both NULL, or the same text: 0; else 1 with both printed. */
static int same_part(const char *where, const char *part, const char *json, const char *typed)
{
    if ((json == NULL) == (typed == NULL) && (!json || !strcmp(json, typed)))
        return 0;
    fprintf(stderr, "    %s: %s differs\n--- JSON context\n%s\n--- typed context\n%s\n---\n", where,
            part, json ? json : "(null)", typed ? typed : "(null)");
    return 1;
}

/* A JSON context's rendering against the typed context with the same values. */
static int same_rendering(const char *where, const struct comms_rendered *j,
                          const struct comms_rendered *t)
{
    return same_part(where, "subject", j->subject, t->subject) +
           same_part(where, "title", j->title, t->title) +
           same_part(where, "headline", j->headline, t->headline) +
           same_part(where, "text", j->text, t->text) + same_part(where, "html", j->html, t->html);
}

/* Cases whose context a typed context can hold, and so were rendered both ways. */
static int typed_cases;

static int render_case(struct tcase *c, void *arg)
{
    (void)arg;
    char where[400];
    int fails = 0;
    snprintf(where, sizeof where, "%s:%d (%s)", RENDER_FILE, c->line, c->title);
    const struct block *tb = NULL;
    for (int i = 0; i < c->nb && !tb; i++)
        if (strchr(c->b[i].name, '/') && !is_partial_block(&c->b[i]))
            tb = &c->b[i];
    if (!tb) {
        fprintf(stderr, "    %s: no template\n", where);
        return 1;
    }
    /* The crlf case is written with \n here and compiled with \r\n. */
    struct buf src;
    buf_init(&src, 0);
    for (const char *p = tb->text.data ? tb->text.data : ""; *p; p++) {
        if (*p == '\n' && strstr(tb->name, "crlf"))
            buf_putc(&src, '\r');
        buf_putc(&src, *p);
    }
    struct buf diag;
    buf_init(&diag, 0);
    struct comms_tmpl *t = NULL;
    json_t *ctx = NULL;
    struct comms_rendered r = {0};
    if (comms__compile(NULL, tb->name, src.data ? src.data : "", src.len, case_partial, c, &t,
                       &diag)) {
        fprintf(stderr, "    %s: does not compile:\n%s", where, diag.data);
        fails++;
        goto out;
    }
    const struct block *cb = find_block(c, "context"), *sb = find_block(c, "sample");
    json_error_t jerr;
    if (sb) {
        ctx = comms_sample_context();
        if (sb->text.len) {
            json_t *over = json_loads(sb->text.data, 0, &jerr);
            if (over)
                json_object_update_recursive(ctx, over);
            json_decref(over);
        }
    } else if (cb) {
        ctx = json_loads(cb->text.data ? cb->text.data : "", 0, &jerr);
        if (!ctx) {
            fprintf(stderr, "    %s: context: %s\n", where, jerr.text);
            fails++;
            goto out;
        }
    }
    int rc = comms_render(t, ctx, &r);
    if (rc) {
        fprintf(stderr, "    %s: render failed: %d\n", where, rc);
        fails++;
        goto out;
    }
    fails += cmp_part(where, "subject", r.subject, find_block(c, "subject"));
    fails += cmp_part(where, "title", r.title, find_block(c, "title"));
    fails += cmp_part(where, "text", r.text, find_block(c, "text"));
    if (find_block(c, "html")) {
        char *body = html_body(r.html);
        fails += cmp_part(where, "html", body, find_block(c, "html"));
        free(body);
    }
    /* The typed context renders the same, whenever it can hold the case's values. */
    struct comms_ctx *typed;
    if (comms__ctx_from_json(ctx, &typed) == 0) {
        struct comms_rendered tr = {0};
        typed_cases++;
        if ((rc = comms_render_ctx(t, typed, &tr)))
            fprintf(stderr, "    %s: typed render failed: %d\n", where, rc);
        fails += rc ? 1 : same_rendering(where, &r, &tr);
        comms_rendered_cleanup(&tr);
        comms_ctx_free(typed);
    }
out:
    comms_rendered_cleanup(&r);
    json_decref(ctx);
    comms_tmpl_free(t);
    buf_cleanup(&diag);
    buf_cleanup(&src);
    return fails;
}

static void render_cases(void)
{
    int nfail = 0;
    typed_cases = 0;
    int n = each_case(RENDER_FILE, render_case, NULL, &nfail);
    ASSERT(n >= 30);
    ASSERT(typed_cases >= n / 2);
    ASSERT_EQ(nfail, 0);
}

/* ---- the engine, beyond the cases ---- */

/* The whole HTML document: doctype, charset, the subject as an escaped title. */
static void html_document(void)
{
    struct buf diag;
    buf_init(&diag, 0);
    struct comms_tmpl *t =
        compile("customer/email/x.tmpl", "subject: Fish & <chips>\n---\nHello\n", &diag);
    ASSERT(t != NULL);
    struct comms_rendered r;
    ASSERT_EQ(comms_render(t, NULL, &r), 0);
    ASSERT_STREQ(r.html, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                         "<meta name=\"viewport\" content=\"width=device-width, "
                         "initial-scale=1\">\n<title>Fish &amp; &lt;chips&gt;</title>\n</head>\n"
                         "<body>\n<p>Hello</p>\n</body>\n</html>\n");
    comms_rendered_cleanup(&r);
    comms_tmpl_free(t);

    /* Other channels get no HTML; a document without a title gets a neutral one. */
    t = compile("customer/sms/x.tmpl", "Hello\n", &diag);
    ASSERT(t != NULL);
    ASSERT_EQ(comms_render(t, NULL, &r), 0);
    ASSERT(r.html == NULL && r.subject == NULL && r.title == NULL);
    ASSERT_STREQ(r.text, "Hello");
    comms_rendered_cleanup(&r);
    comms_tmpl_free(t);
    char *html;
    ASSERT_EQ(comms_text_to_html(NULL, "a\n\n\nb", &html), 0);
    ASSERT(strstr(html, "<title>Message</title>") != NULL);
    ASSERT(strstr(html, "<body>\n<p>a</p>\n<p>b</p>\n</body>") != NULL);
    free(html);
    ASSERT(diag.len == 0);
    buf_cleanup(&diag);
}

/* Every part is capped at 64 KiB: a long list or value fails with FW_ETOOBIG and leaves nothing. */
static void render_cap(void)
{
    struct buf diag;
    buf_init(&diag, 0);
    struct comms_tmpl *t = compile("customer/email/x.tmpl",
                                   "subject: Hi\n---\n{{#issues}}{{headline}}\n{{/issues}}", &diag);
    ASSERT(t != NULL);
    json_t *list = json_array();
    for (int i = 0; i < 700; i++)
        json_array_append_new(list, json_pack("{s:s}", "headline",
                                              "a headline of about a hundred characters, "
                                              "repeated until the rendered text passes the cap"));
    json_t *ctx = json_pack("{s:o}", "issues", list);
    struct comms_rendered r;
    ASSERT_EQ(comms_render(t, ctx, &r), 0); /* 700 x 90 bytes: under the cap */
    ASSERT(strlen(r.text) > 60000 && strlen(r.text) <= COMMS_RENDER_MAX);
    comms_rendered_cleanup(&r);
    for (int i = 0; i < 100; i++)
        json_array_append(list, json_array_get(list, 0));
    ASSERT_EQ(comms_render(t, ctx, &r), FW_ETOOBIG);
    ASSERT(r.subject == NULL && r.text == NULL && r.html == NULL);
    comms_tmpl_free(t);

    /* The subject has its own cap. */
    t = compile("customer/email/x.tmpl", "subject: {{customer.name}}\n---\nBody\n", &diag);
    ASSERT(t != NULL);
    char *big = xmalloc(COMMS_RENDER_MAX + 2);
    memset(big, 'x', COMMS_RENDER_MAX + 1);
    big[COMMS_RENDER_MAX + 1] = '\0';
    json_object_set_new(ctx, "customer", json_pack("{s:s}", "name", big));
    ASSERT_EQ(comms_render(t, ctx, &r), FW_ETOOBIG);
    ASSERT(r.subject == NULL);
    big[COMMS_RENDER_MAX] = '\0';
    json_object_set_new(ctx, "customer", json_pack("{s:s}", "name", big));
    ASSERT_EQ(comms_render(t, ctx, &r), 0);
    ASSERT_EQ(strlen(r.subject), COMMS_RENDER_MAX);
    comms_rendered_cleanup(&r);
    ASSERT_EQ(comms_text_to_html("t", big, &r.html), 0);
    free(r.html);
    big[COMMS_RENDER_MAX] = 'x';
    ASSERT_EQ(comms_text_to_html("t", big, &r.html), FW_ETOOBIG);
    free(big);
    comms_tmpl_free(t);
    json_decref(ctx);
    buf_cleanup(&diag);
}

/* Sections nest up to 16 deep; the 17th is refused at load. */
/*
 * Parts are rendered into one preallocated buffer and tidied in place of
 * a growing one: sizes around and past that allocation come out whole, and
 * tidying still drops, collapses and trims as before.
 */
static void tidy_sizes(void)
{
    static const size_t sizes[] = {0, 1, 239, 240, 241, 3998, 3999, 4000, 4001, 10000};
    for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
        size_t n = sizes[k];
        char *body = xmalloc(n + 64), *tmpl = xmalloc(n + 128);
        for (size_t i = 0; i < n; i++)
            body[i] = (char)('a' + i % 26);
        body[n] = '\0';
        /* Blank lines before, between and after; trailing blanks on a line. */
        snprintf(tmpl, n + 128, "subject:  x \t y \n---\n\n \n%s  \n\n\n\t\nend\n\n", body);
        char *out = render_text("customer/email/T.tmpl", tmpl, NULL);
        ASSERT(out != NULL);
        snprintf(tmpl, n + 128, "%s%send", body, n ? "\n\n" : "");
        ASSERT_STREQ(out, tmpl);
        free(out);
        free(body);
        free(tmpl);
    }
    char *out = render_text("customer/email/T.tmpl",
                            "subject: s\n---\n \n{{#merged}}x{{/merged}}\t\n\n", NULL);
    ASSERT(out != NULL);
    ASSERT_STREQ(out, "");
    free(out);
}

static void nesting_limit(void)
{
    struct buf src, diag;
    buf_init(&src, 0);
    buf_init(&diag, 0);
    for (int i = 0; i < 16; i++)
        buf_puts(&src, "{{#merged}}");
    buf_puts(&src, "deep");
    for (int i = 0; i < 16; i++)
        buf_puts(&src, "{{/merged}}");
    char *out = render_text("customer/sms/x.tmpl", src.data, "{\"merged\": true}");
    ASSERT_STREQ(out, "deep");
    free(out);
    buf_reset(&src);
    for (int i = 0; i < 17; i++)
        buf_puts(&src, "{{^merged}}");
    struct comms_tmpl *t = compile("customer/sms/x.tmpl", src.data, &diag);
    ASSERT(t == NULL);
    ASSERT_CONTAINS(diag.data, "x.tmpl:1:177: error: sections nested more than 16 deep");
    buf_cleanup(&src);
    buf_cleanup(&diag);
}

/* A template's identity comes from its path. */
static void template_identity(void)
{
    struct buf diag;
    buf_init(&diag, 0);
    struct comms_tmpl *t = NULL;
    ASSERT_EQ(comms_tmpl_compile("/etc/fw/l2/slack/escalation.tmpl", "l2/slack/escalation.tmpl",
                                 "x\n", 2, &t, &diag),
              0);
    ASSERT_STREQ(comms_tmpl_path(t), "/etc/fw/l2/slack/escalation.tmpl");
    ASSERT_STREQ(comms_tmpl_audience(t), "l2");
    ASSERT_STREQ(comms_tmpl_channel(t), "slack");
    ASSERT_STREQ(comms_tmpl_name(t), "escalation");
    comms_tmpl_free(t);
    comms_tmpl_free(NULL);
    /* A byte-order mark from an editor is not part of the header key. */
    char *out = render_text("customer/push/x.tmpl", "\xEF\xBB\xBFtitle: T\n---\nBody\n", NULL);
    ASSERT_STREQ(out, "Body");
    free(out);
    buf_cleanup(&diag);
}

/* ---- the variable table ---- */

static int in_list(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (!strcmp(*list, name))
            return 1;
    return 0;
}

static void variables(void)
{
    const char *const *cust = comms_variables("customer");
    const char *const *l1 = comms_variables("l1");
    ASSERT(cust != NULL && l1 != NULL);
    ASSERT(comms_variables("engineering") == l1);
    ASSERT(comms_variables("chatbot") == l1);
    ASSERT(comms_variables("nobody") == NULL);
    ASSERT(comms_variables(NULL) == NULL);
    size_t nvars = 0, ncust = 0;
    for (const struct comms_var *v = comms_vars; v->name; v++) {
        nvars++;
        ASSERT(in_list(l1, v->name));
        ASSERT_EQ(in_list(cust, v->name), v->audiences == COMMS_VAR_CUST);
        ncust += v->audiences == COMMS_VAR_CUST;
        ASSERT(comms_var_find(v->name) == v);
        ASSERT(v->description && *v->description);
        /* The hashed answer agrees with the definition: some variable is "<name>.<field>". */
        size_t ln = strlen(v->name);
        int has_field = 0;
        for (const struct comms_var *f = comms_vars; f->name; f++)
            has_field |= !strncmp(f->name, v->name, ln) && f->name[ln] == '.';
        ASSERT_EQ(comms_var_is_list(v->name), has_field);
    }
    ASSERT(comms_var_find("") == NULL);
    ASSERT(comms_var_find("issues.") == NULL);
    ASSERT(!comms_var_is_list("issue"));
    size_t n = 0;
    while (cust[n])
        n++;
    ASSERT_EQ(n, ncust);
    ASSERT(nvars > 80);
    ASSERT(comms_var_find("customer") == NULL);
    ASSERT(comms_var_is_list("issues"));
    ASSERT(comms_var_is_list("incident.customers"));
    ASSERT(!comms_var_is_list("issues.headline"));
    ASSERT(!comms_var_is_list("incident.id"));
    ASSERT(!comms_var_is_list("customer"));
    /* The internal ones the guardrail is about. */
    ASSERT(!in_list(cust, "signal.team"));
    ASSERT(!in_list(cust, "portin.response"));
    ASSERT(!in_list(cust, "esim.individual_id"));
    ASSERT(in_list(cust, "customer.first_name"));
}

/* A JSON value for a variable in ctx; for a list's field, the field of the list's first element. */
static json_t *var_value(json_t *ctx, const char *name)
{
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s", name);
    char *dot = strrchr(tmp, '.');
    if (dot) {
        *dot = '\0';
        if (comms_var_is_list(tmp)) {
            json_t *list = var_value(ctx, tmp);
            return json_object_get(json_array_get(list, 0), dot + 1);
        }
        *dot = '.';
    }
    json_t *v = ctx;
    char *save = NULL;
    for (char *part = strtok_r(tmp, ".", &save); part && v; part = strtok_r(NULL, ".", &save))
        v = json_object_get(v, part);
    return v;
}

/* The sample sets every variable, and every element of a sample list has every field. */
static void sample_context(void)
{
    json_t *ctx = comms_sample_context();
    for (const struct comms_var *v = comms_vars; v->name; v++) {
        json_t *val = var_value(ctx, v->name);
        if (!val || json_is_null(val))
            TEST__FAIL("the sample context has no value for '%s'", v->name);
    }
    for (const struct comms_var *v = comms_vars; v->name; v++) {
        if (!comms_var_is_list(v->name))
            continue;
        json_t *list = var_value(ctx, v->name), *el;
        size_t i, n = strlen(v->name);
        ASSERT(json_array_size(list) >= 2);
        json_array_foreach (list, i, el) {
            for (const struct comms_var *f = comms_vars; f->name; f++)
                if (!strncmp(f->name, v->name, n) && f->name[n] == '.')
                    ASSERT(json_object_get(el, f->name + n + 1) != NULL);
        }
    }
    /* The tone helper sets exactly one flag. */
    for (int level = 0; level <= 5; level++) {
        comms_context_set_tone(ctx, level);
        int want = level < 1 ? 1 : level > 4 ? 4 : level;
        ASSERT_EQ(json_integer_value(var_value(ctx, "tone.level")), want);
        ASSERT_EQ(json_is_true(var_value(ctx, "tone.helpful")), want == 1);
        ASSERT_EQ(json_is_true(var_value(ctx, "tone.empathetic")), want == 2);
        ASSERT_EQ(json_is_true(var_value(ctx, "tone.apologetic")), want == 3);
        ASSERT_EQ(json_is_true(var_value(ctx, "tone.urgent")), want == 4);
    }
    json_t *empty = json_object();
    comms_context_set_tone(empty, 2);
    ASSERT(json_is_true(var_value(empty, "tone.empathetic")));
    json_decref(empty);
    json_decref(ctx);
}

/* ---- loading: built-ins and a directory over them ---- */

/* Built-in templates, partials not counted (they are not templates of the set). */
static size_t count_builtins(void)
{
    size_t n = 0;
    for (size_t i = 0; comms_builtins[i].path; i++)
        n += strncmp(comms_builtins[i].path, "partials/", 9) != 0;
    return n;
}

static size_t count_loaded(const struct comms *c)
{
    size_t n = 0;
    while (comms_tmpl_at(c, n))
        n++;
    return n;
}

/*
 * Damaged templates: every shipped template with random bytes deleted,
 * duplicated or replaced by template punctuation, a few thousand times.
 * Each must compile or fail with a diagnostic, and render when it
 * compiles; the sanitizer build is what makes this test worth having.
 */
static void compile_mutations(void)
{
    static const char alphabet[] = "{}#^/!.\n -:x";
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    json_t *ctx = comms_sample_context();
    struct buf diag, src;
    buf_init(&diag, 0);
    buf_init(&src, 0);
    int compiled = 0, refused = 0;
    for (int round = 0; round < 4000; round++) {
        size_t nall = 0;
        while (comms_builtins[nall].path)
            nall++;
        const struct comms_builtin *b = &comms_builtins[round % nall]; /* partials too */
        buf_reset(&src);
        buf_puts(&src, b->text);
        for (int k = 0; k < 1 + round % 4; k++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            size_t at = src.len ? (size_t)(seed % src.len) : 0;
            char ch = alphabet[(seed >> 32) % (sizeof alphabet - 1)];
            switch ((seed >> 40) % 3) {
            case 0: /* delete a byte */
                if (src.len)
                    memmove(src.data + at, src.data + at + 1, src.len - at), src.len--;
                break;
            case 1: /* duplicate a run of up to 8 bytes */
                for (size_t i = 0; i < (seed >> 48) % 8 && at + i < src.len; i++)
                    buf_putc(&src, src.data[at + i]);
                break;
            default: /* replace a byte */
                if (src.len)
                    src.data[at] = ch;
            }
        }
        struct comms_tmpl *t = NULL;
        buf_reset(&diag);
        if (comms_tmpl_compile(NULL, b->path, src.data, src.len, &t, &diag) == 0) {
            struct comms_rendered r;
            ASSERT_EQ(comms_render(t, ctx, &r), 0);
            comms_rendered_cleanup(&r);
            compiled++;
        } else {
            ASSERT(diag.len > 0 && strstr(diag.data, ": error: "));
            refused++;
        }
        comms_tmpl_free(t);
    }
    ASSERT(compiled > 100 && refused > 100); /* both paths were exercised */
    buf_cleanup(&src);
    buf_cleanup(&diag);
    json_decref(ctx);
}

/* ---- typed contexts ---- */

/* Setting, reading, refusing: slots by id, strings copied and UTF-8 checked, lists by element. */
static void typed_context(void)
{
    for (int id = 0; id < COMMS_NVARS; id++)
        ASSERT_EQ(comms_var_id(comms_vars[id].name, strlen(comms_vars[id].name)), id);
    ASSERT_EQ(comms_var_id("customer.first_name", 8), -1); /* "customer" is no variable */
    ASSERT_EQ(comms_var_id("journey.status", 14), -1);
    ASSERT_EQ(COMMS_V_customer_first_name, comms_var_id("customer.first_name", 19));

    struct comms_ctx *c = comms_ctx_new();
    char name[] = "Jodi";
    comms_ctx_set_str(c, COMMS_V_customer_first_name, name);
    name[0] = 'X'; /* copied */
    ASSERT_STREQ(comms_ctx_str(c, COMMS_V_customer_first_name), "Jodi");
    comms_ctx_set_str(c, COMMS_V_customer_first_name, "bad \xff byte"); /* refused: kept */
    ASSERT_STREQ(comms_ctx_str(c, COMMS_V_customer_first_name), "Jodi");
    comms_ctx_set_str(c, COMMS_V_customer_first_name, NULL); /* sets nothing */
    ASSERT_STREQ(comms_ctx_str(c, COMMS_V_customer_first_name), "Jodi");
    comms_ctx_set_int(c, COMMS_V_contacts, 3);
    ASSERT_EQ(comms_ctx_int(c, COMMS_V_contacts), 3);
    ASSERT(comms_ctx_str(c, COMMS_V_contacts) == NULL);
    comms_ctx_unset(c, COMMS_V_contacts);
    ASSERT_EQ(comms_ctx_int(c, COMMS_V_contacts), 0);
    comms_ctx_set_str(c, -1, "x"); /* out of range: ignored */
    comms_ctx_set_str(c, COMMS_NVARS, "x");
    comms_ctx_set_str(c, COMMS_V_issues_headline, "x"); /* a field: set per element only */
    ASSERT(comms_ctx_str(c, COMMS_V_issues_headline) == NULL);
    comms_ctx_item_str(c, COMMS_V_issues_headline, 0, "x"); /* no list yet */
    ASSERT(comms_ctx_item(c, COMMS_V_issues_headline, 0) == NULL);
    comms_ctx_set_list(c, COMMS_V_issues, 2);
    comms_ctx_item_str(c, COMMS_V_issues_headline, 1, "Your eSIM is stuck");
    comms_ctx_item_str(c, COMMS_V_issues_headline, 2, "past the end");
    ASSERT(comms_ctx_item(c, COMMS_V_issues_headline, 0) == NULL);
    ASSERT_STREQ(comms_ctx_item(c, COMMS_V_issues_headline, 1), "Your eSIM is stuck");
    ASSERT(comms_ctx_item(c, COMMS_V_issues_headline, 2) == NULL);
    /* Many strings: the context grows past its first block. */
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 20; i++)
        comms_ctx_set_str(c, COMMS_V_draft_text, big);
    ASSERT_EQ(strlen(comms_ctx_str(c, COMMS_V_draft_text)), sizeof big - 1);

    struct buf diag;
    buf_init(&diag, 0);
    struct comms_tmpl *t =
        compile("l1/ticket/x.tmpl",
                "subject: {{customer.first_name}} ({{contacts}})\n---\n"
                "{{#issues}}[{{headline}}{{^headline}}none{{/headline}}]"
                "{{/issues}}{{#merged}}merged{{/merged}}{{^merged}}one{{/merged}}",
                &diag);
    ASSERT(t != NULL);
    comms_ctx_set_int(c, COMMS_V_contacts, 0);
    comms_ctx_set_bool(c, COMMS_V_merged, 0);
    struct comms_rendered r;
    ASSERT_EQ(comms_render_ctx(t, c, &r), 0);
    ASSERT_STREQ(r.subject, "Jodi (0)");
    ASSERT_STREQ(r.text, "[none][Your eSIM is stuck]one");
    comms_rendered_cleanup(&r);
    char *h = NULL;
    ASSERT_EQ(comms_render_headline_ctx(t, c, &h), 0);
    ASSERT_STREQ(h, "Jodi (0)");
    free(h);
    comms_tmpl_free(t);
    comms_ctx_free(c);
    comms_ctx_free(NULL);
    buf_cleanup(&diag);
}

/* What a typed context cannot hold is refused, not rendered differently. */
static void typed_from_json(void)
{
    static const char *const refused[] = {
        "{\"contacts\": 2.5}",
        "{\"order\": {\"id\": {\"x\": 1}}}",
        "{\"order\": {\"id\": [1, 2]}}",
        "{\"issues\": [{\"headline\": 1}]}",
        "{\"issues\": [{\"headline\": null}]}",
        "{\"issues\": [{\"merged\": true}]}",
        "{\"issues\": [\"a\"]}",
        "{\"issues.headline\": \"at the root\"}",
        "[]",
    };
    for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
        json_t *j = json_loads(refused[i], 0, NULL);
        struct comms_ctx *c = (struct comms_ctx *)1;
        ASSERT(j != NULL);
        if (comms__ctx_from_json(j, &c) != FW_EINVAL)
            TEST__FAIL("accepted %s", refused[i]);
        ASSERT(c == NULL);
        json_decref(j);
    }
    struct comms_ctx *c;
    ASSERT_EQ(comms__ctx_from_json(NULL, &c), 0);
    comms_ctx_free(c);
    json_t *j = json_loads("{\"customer.first_name\": \"Flat\", \"tone\": {\"level\": 2},"
                           " \"merged\": false, \"issues\": [{\"name\": \"n\"}]}",
                           0, NULL);
    ASSERT_EQ(comms__ctx_from_json(j, &c), 0);
    ASSERT_STREQ(comms_ctx_str(c, COMMS_V_customer_first_name), "Flat");
    ASSERT_EQ(comms_ctx_int(c, COMMS_V_tone_level), 2);
    ASSERT_STREQ(comms_ctx_item(c, COMMS_V_issues_name, 0), "n");
    comms_ctx_free(c);
    json_decref(j);
}

/* Every shipped template renders the same from the sample context as JSON and typed. */
static void typed_sample_templates(void)
{
    struct buf diag;
    buf_init(&diag, 0);
    struct comms *set = NULL;
    ASSERT_EQ(comms_load(NULL, &set, &diag), 0);
    json_t *ctx = comms_sample_context();
    struct comms_ctx *typed;
    ASSERT_EQ(comms__ctx_from_json(ctx, &typed), 0);
    int fails = 0, n = 0;
    for (size_t i = 0; comms_tmpl_at(set, i); i++, n++) {
        const struct comms_tmpl *t = comms_tmpl_at(set, i);
        struct comms_rendered a, b;
        ASSERT_EQ(comms_render(t, ctx, &a), 0);
        ASSERT_EQ(comms_render_ctx(t, typed, &b), 0);
        fails += same_rendering(comms_tmpl_path(t), &a, &b);
        comms_rendered_cleanup(&a);
        comms_rendered_cleanup(&b);
        char *ha = NULL, *hb = NULL;
        ASSERT_EQ(comms_render_headline(t, ctx, &ha), 0);
        ASSERT_EQ(comms_render_headline_ctx(t, typed, &hb), 0);
        fails += same_part(comms_tmpl_path(t), "headline()", ha, hb);
        free(ha);
        free(hb);
    }
    ASSERT(n >= 40);
    ASSERT_EQ(fails, 0);
    comms_ctx_free(typed);
    json_decref(ctx);
    comms_free(set);
    buf_cleanup(&diag);
}

static void builtins_load(void)
{
    struct buf diag;
    buf_init(&diag, 0);
    struct comms *c = NULL;
    int rc = comms_load(NULL, &c, &diag);
    if (rc)
        TEST__FAIL("built-in templates do not load:\n%s", diag.data);
    ASSERT(diag.len == 0);
    ASSERT_EQ(count_loaded(c), count_builtins());
    for (size_t i = 0, k = 0; comms_builtins[i].path; i++) {
        if (!strncmp(comms_builtins[i].path, "partials/", 9))
            continue;
        const struct comms_tmpl *t = comms_tmpl_at(c, k++);
        char want[256];
        snprintf(want, sizeof want, "templates/%s", comms_builtins[i].path);
        ASSERT_STREQ(comms_tmpl_path(t), want);
    }
    /* Lookup: exact, then the channel's default, else nothing. */
    const struct comms_tmpl *t = comms_find(c, "customer", "email", "SIG-002");
    ASSERT(t != NULL);
    ASSERT_STREQ(comms_tmpl_name(t), "SIG-002");
    t = comms_find(c, "customer", "email", "SIG-999");
    ASSERT(t != NULL);
    ASSERT_STREQ(comms_tmpl_path(t), "templates/customer/email/default.tmpl");
    t = comms_find(c, "customer", "sms", NULL);
    ASSERT(t != NULL);
    ASSERT_STREQ(comms_tmpl_name(t), "default");
    ASSERT(comms_find(c, "customer", "webhook", "SIG-002") == NULL);
    ASSERT(comms_find(c, "nobody", "email", "SIG-002") == NULL);
    comms_free(c);
    comms_free(NULL);
    buf_cleanup(&diag);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void write_file(const char *dir, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *p = strchr(path + strlen(dir) + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void load_directory(void)
{
    char dir[] = "/tmp/fw-comms-XXXXXX";
    ASSERT(mkdtemp(dir) != NULL);
    struct buf diag;
    buf_init(&diag, 0);
    struct comms *c = NULL;
    write_file(dir, "customer/email/SIG-001.tmpl",
               "subject: Overridden for {{customer.first_name}}\n---\nOur own words.\n");
    write_file(dir, "customer/email/welcome.tmpl", "subject: Welcome\n---\nHello.\n");
    write_file(dir, "customer/email/notes.txt", "not a template {{nope}}\n");
    write_file(dir, "customer/email/SIG-002.tmpl.orig", "a backup {{nope}}\n");
    write_file(dir, ".git/customer/email/x.tmpl", "hidden {{nope}}\n");
    write_file(dir, "README.md", "docs\n");
    char slash[600];
    snprintf(slash, sizeof slash, "%s/", dir); /* a trailing slash is fine */
    int rc = comms_load(slash, &c, &diag);
    if (rc)
        TEST__FAIL("load failed:\n%s", diag.data);
    ASSERT(diag.len == 0);
    ASSERT_EQ(count_loaded(c), count_builtins() + 1);
    const struct comms_tmpl *t = comms_find(c, "customer", "email", "SIG-001");
    char want[600];
    snprintf(want, sizeof want, "%s/customer/email/SIG-001.tmpl", dir);
    ASSERT_STREQ(comms_tmpl_path(t), want);
    struct comms_rendered r;
    json_t *ctx = comms_sample_context();
    ASSERT_EQ(comms_render(t, ctx, &r), 0);
    ASSERT_STREQ(r.subject, "Overridden for Jodi");
    comms_rendered_cleanup(&r);
    t = comms_find(c, "customer", "email", "welcome");
    ASSERT(t != NULL);
    ASSERT_STREQ(comms_tmpl_name(t), "welcome");
    t = comms_find(c, "customer", "email", "SIG-002");
    ASSERT_STREQ(comms_tmpl_path(t), "templates/customer/email/SIG-002.tmpl");
    comms_free(c);

    /* Broken files: every one is reported with its full path, and nothing loads. */
    write_file(dir, "customer/fax/default.tmpl", "Hi\n");
    write_file(dir, "customer/email/SIG-003.tmpl",
               "subject: Payment\n---\nHi {{customer.frist_name}}\n");
    write_file(dir, "l1/ticket/SIG-003.tmpl", "subject: x\n---\n{{#merged}}\n");
    buf_reset(&diag);
    c = (struct comms *)1;
    ASSERT_EQ(comms_load(dir, &c, &diag), FW_EPARSE);
    ASSERT(c == NULL);
    snprintf(want, sizeof want,
             "%s/customer/email/SIG-003.tmpl:3:6: error: unknown variable 'customer.frist_name'",
             dir);
    ASSERT_CONTAINS(diag.data, want);
    snprintf(want, sizeof want, "%s/customer/fax/default.tmpl: error: unknown channel 'fax'", dir);
    ASSERT_CONTAINS(diag.data, want);
    snprintf(want, sizeof want, "%s/l1/ticket/SIG-003.tmpl:3:1: error: unclosed section", dir);
    ASSERT_CONTAINS(diag.data, want);

    /* A directory that is not there. */
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    buf_reset(&diag);
    ASSERT_EQ(comms_load(dir, &c, &diag), FW_EIO);
    ASSERT(c == NULL);
    ASSERT_CONTAINS(diag.data, ": error: cannot open the template directory: No such file");
    json_decref(ctx);
    buf_cleanup(&diag);
}

/*
 * Partials from a directory: one overriding a built-in is what the built-in
 * templates include, and a partial no template includes is still checked.
 */
static void load_partials(void)
{
    char dir[] = "/tmp/fw-comms-XXXXXX";
    ASSERT(mkdtemp(dir) != NULL);
    struct buf diag;
    buf_init(&diag, 0);
    struct comms *c = NULL;
    write_file(dir, "partials/signature.tmpl", "Cheers,\n{{brand.sender_name}} and the crew\n");
    write_file(dir, "partials/spare.tmpl", "Spare words for {{customer.first_name}}.\n");
    if (comms_load(dir, &c, &diag))
        TEST__FAIL("load failed:\n%s", diag.data);
    ASSERT_EQ(count_loaded(c), count_builtins());
    json_t *ctx = comms_sample_context();
    struct comms_rendered r;
    ASSERT_EQ(comms_render(comms_find(c, "customer", "email", "SIG-001"), ctx, &r), 0);
    ASSERT_CONTAINS(r.text, "\nCheers,\nSam from Meow Mobile and the crew\n");
    comms_rendered_cleanup(&r);
    comms_free(c);

    write_file(dir, "partials/spare.tmpl", "Spare words for {{customer.frist_name}}.\n");
    write_file(dir, "customer/sms/x.tmpl", "Hi. {{> nowhere}}\n");
    buf_reset(&diag);
    ASSERT_EQ(comms_load(dir, &c, &diag), FW_EPARSE);
    ASSERT(c == NULL);
    char want[600];
    snprintf(want, sizeof want,
             "%s/partials/spare.tmpl:1:19: error: unknown variable 'customer.frist_name'", dir);
    ASSERT_CONTAINS(diag.data, want);
    snprintf(want, sizeof want,
             "%s/customer/sms/x.tmpl:1:5: error: unknown partial 'nowhere' (no file "
             "partials/nowhere.tmpl)",
             dir);
    ASSERT_CONTAINS(diag.data, want);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    json_decref(ctx);
    buf_cleanup(&diag);
}

/* ---- the shipped templates ---- */

static const char *const required[] = {
    "customer/email/SIG-001",
    "customer/email/SIG-002",
    "customer/email/SIG-003",
    "customer/email/SIG-004",
    "customer/email/SIG-005",
    "customer/email/SIG-006",
    "customer/email/SIG-007",
    "customer/email/SIG-008",
    "customer/email/SIG-009",
    "customer/email/SIG-010",
    "customer/email/merged",
    "customer/email/default",
    "customer/email/issue_alert",
    "customer/email/adoption_help",
    "customer/email/check_in",
    "customer/email/followup_acknowledgment",
    "customer/email/followup_satisfaction_check",
    "customer/email/followup_relationship_repair",
    "customer/email/followup_no_response",
    "customer/sms/default",
    "customer/sms/SIG-002",
    "customer/sms/SIG-010",
    "customer/sms/followup_no_response",
    "customer/push/default",
    "customer/in_app/default",
    "customer/ticket_reply/default",
    "customer/ticket_reply/SIG-002",
    "customer/ticket_reply/SIG-008",
    "customer/ticket_reply/SIG-010",
    "l1/ticket/default",
    "l1/ticket/SIG-001",
    "l1/ticket/SIG-002",
    "l1/ticket/SIG-003",
    "l1/ticket/SIG-004",
    "l1/ticket/SIG-005",
    "l1/ticket/SIG-006",
    "l1/ticket/SIG-007",
    "l1/ticket/SIG-008",
    "l1/ticket/SIG-009",
    "l1/ticket/SIG-010",
    "l1/internal_note/default",
    "l1/internal_note/already_reached_out",
    "l2/slack/default",
    "l2/slack/escalation",
    "engineering/slack/incident",
    "engineering/slack/page",
    "chatbot/chatbot/default",
    "l2/webhook/default",
};

static const struct comms_tmpl *find_exact(const struct comms *c, const char *key)
{
    char a[64], ch[64], n[128];
    if (sscanf(key, "%63[^/]/%63[^/]/%127s", a, ch, n) != 3)
        return NULL;
    const struct comms_tmpl *t = comms_find(c, a, ch, n);
    return t && !strcmp(comms_tmpl_name(t), n) ? t : NULL;
}

static void required_templates(void)
{
    struct buf diag;
    buf_init(&diag, 0);
    struct comms *c = NULL;
    ASSERT_EQ(comms_load(NULL, &c, &diag), 0);
    for (size_t i = 0; i < ARRAY_SIZE(required); i++)
        if (!find_exact(c, required[i]))
            TEST__FAIL("no template %s.tmpl", required[i]);
    comms_free(c);
    buf_cleanup(&diag);
}

/* Every string in a JSON value, into out. */
static void strings_of(json_t *v, const char **out, size_t max, size_t *n)
{
    size_t i;
    const char *k;
    json_t *x;
    if (json_is_string(v) && *n < max)
        out[(*n)++] = json_string_value(v);
    else if (json_is_array(v))
        json_array_foreach (v, i, x)
            strings_of(x, out, max, n);
    else if (json_is_object(v))
        json_object_foreach (v, k, x)
            strings_of(x, out, max, n);
}

/*
 * Sample values of internal variables that must never show in customer
 * text: the distinctive ones, i.e. not plain lowercase words ("urgent") and
 * not also the value of a customer variable (an incident row's order id is
 * the customer's own order.id).
 */
static void internal_values(json_t *ctx, const char **out, size_t max, size_t *n)
{
    const char *cust[256];
    size_t ncust = 0;
    *n = 0;
    for (const struct comms_var *v = comms_vars; v->name; v++)
        if (v->audiences == COMMS_VAR_CUST)
            strings_of(var_value(ctx, v->name), cust, ARRAY_SIZE(cust), &ncust);
    for (const struct comms_var *v = comms_vars; v->name; v++) {
        const char *all[64];
        size_t nall = 0;
        if (v->audiences == COMMS_VAR_CUST || comms_var_is_list(v->name))
            continue;
        strings_of(var_value(ctx, v->name), all, ARRAY_SIZE(all), &nall);
        for (size_t i = 0; i < nall && *n < max; i++) {
            const char *s = all[i];
            int word = 1, shared = 0;
            for (const char *q = s; *q; q++)
                word &= (*q >= 'a' && *q <= 'z') || *q == ' ';
            for (size_t j = 0; j < ncust; j++)
                shared |= strstr(cust[j], s) != NULL;
            if (strlen(s) >= 4 && !word && !shared)
                out[(*n)++] = s;
        }
    }
}

/* Set while a template has already shown enough failures. */
static int quiet;

/* What a rendered customer message must never contain: leftovers of templates, gaps, internals. */
static int check_customer_text(const char *where, const char *what, const char *s,
                               const char **internal, size_t ninternal)
{
    static const char *const bad[] = {"{{", "}}", "SIG-", "Hi ,", "Hi,",  " ,",
                                      " .", "()", "  ",   "\n ,", "null", ":\n\n"};
    if (!s || !*s) {
        if (!quiet)
            fprintf(stderr, "    %s: empty %s\n", where, what);
        return 1;
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        const char *p = strstr(s, bad[i]);
        /* Two spaces are fine as indentation at the start of a line. */
        while (p && !strcmp(bad[i], "  ") && (p == s || p[-1] == '\n' || p[-1] == ' '))
            p = strstr(p + 1, bad[i]);
        if (p) {
            if (!quiet)
                fprintf(stderr, "    %s: %s contains \"%s\" at: %.40s\n", where, what, bad[i],
                        p > s + 20 ? p - 20 : s);
            return 1;
        }
    }
    for (size_t i = 0; i < ninternal; i++) {
        if (strstr(s, internal[i])) {
            if (!quiet)
                fprintf(stderr, "    %s: %s shows the internal value \"%s\"\n", where, what,
                        internal[i]);
            return 1;
        }
    }
    return 0;
}

static void customer_templates(void)
{
    struct buf diag;
    buf_init(&diag, 0);
    struct comms *c = NULL;
    ASSERT_EQ(comms_load(NULL, &c, &diag), 0);
    json_t *ctx = comms_sample_context();
    json_t *last_message = json_incref(json_object_get(ctx, "last_message"));
    const char *internal[64];
    size_t ninternal;
    internal_values(ctx, internal, ARRAY_SIZE(internal), &ninternal);
    ASSERT(ninternal > 20);
    int ncust = 0, nrender = 0, nfail = 0;
    const struct comms_tmpl *t;
    for (size_t i = 0; (t = comms_tmpl_at(c, i)); i++) {
        if (strcmp(comms_tmpl_audience(t), "customer"))
            continue;
        ncust++;
        const char *chan = comms_tmpl_channel(t);
        char *tone_text[4] = {0};
        int tfail = 0;
        quiet = 0;
        for (int merged = 0; merged < 2; merged++) {
            for (int reached = 0; reached < 2; reached++) {
                for (int tone = 1; tone <= 4; tone++) {
                    char where[300];
                    snprintf(where, sizeof where, "%s (tone %d%s%s)", comms_tmpl_path(t), tone,
                             merged ? ", merged" : "", reached ? ", reached out before" : "");
                    comms_context_set_tone(ctx, tone);
                    json_object_set_new(ctx, "merged", json_boolean(merged));
                    json_object_set_new(ctx, "already_reached_out", json_boolean(reached));
                    if (reached)
                        json_object_set(ctx, "last_message", last_message);
                    else
                        json_object_del(ctx, "last_message");
                    struct comms_rendered r;
                    if (comms_render(t, ctx, &r)) {
                        fprintf(stderr, "    %s: render failed\n", where);
                        nfail++;
                        continue;
                    }
                    nrender++;
                    int f = check_customer_text(where, "text", r.text, internal, ninternal);
                    if (!strcmp(chan, "email"))
                        f += check_customer_text(where, "subject", r.subject, internal, ninternal);
                    if (!strcmp(chan, "push"))
                        f += check_customer_text(where, "title", r.title, internal, ninternal);
                    if (!strcmp(chan, "email") && !strncmp(comms_tmpl_name(t), "SIG-", 4))
                        f +=
                            check_customer_text(where, "headline", r.headline, internal, ninternal);
                    if (!strcmp(chan, "sms")) {
                        /* Plain GSM-friendly ASCII within two SMS segments. */
                        size_t n = strlen(r.text);
                        int ascii = 1;
                        for (size_t k = 0; k < n; k++)
                            ascii &= (unsigned char)r.text[k] < 0x80;
                        if (n > 320 || !ascii) {
                            if (!quiet)
                                fprintf(stderr, "    %s: SMS of %zu bytes%s\n", where, n,
                                        ascii ? "" : " with non-ASCII text");
                            f++;
                        }
                    }
                    if (!strcmp(chan, "email") && (!r.html || !strstr(r.html, "<p>Hi Jodi,</p>"))) {
                        if (!quiet)
                            fprintf(stderr, "    %s: the email does not greet Jodi\n", where);
                        f++;
                    }
                    if (!merged && !reached)
                        tone_text[tone - 1] = xstrdup(r.text);
                    if (f && ++tfail == 3) {
                        fprintf(stderr, "    %s: (more failures not shown)\n", where);
                        quiet = 1;
                    }
                    nfail += f != 0;
                    comms_rendered_cleanup(&r);
                }
            }
        }
        /* Each tone reads differently. */
        for (int a = 0; a < 4; a++)
            for (int b = a + 1; b < 4; b++)
                if (tone_text[a] && tone_text[b] && !strcmp(tone_text[a], tone_text[b])) {
                    fprintf(stderr, "    %s: tones %d and %d render the same text\n",
                            comms_tmpl_path(t), a + 1, b + 1);
                    nfail++;
                }
        for (int a = 0; a < 4; a++)
            free(tone_text[a]);
    }
    ASSERT(ncust >= 29);
    ASSERT_EQ(nrender, ncust * 16);
    ASSERT_EQ(nfail, 0);
    json_decref(last_message);
    json_decref(ctx);
    comms_free(c);
    buf_cleanup(&diag);
}

/*
 * Variables the orchestrator always sets.  Every other one may be missing
 * (no port-in, no chat, an outage without an estimate), and customer text
 * must still read well without it.
 */
static const char *const always_set[] = {
    "brand.name",
    "brand.sender_name",
    "brand.support_url",
    "brand.app_name",
    "customer.id",
    "customer.name",
    "customer.first_name",
    "customer.email",
    "contacts",
    "issues",
    "merged",
    "detected_at",
    "response_within",
    "already_reached_out",
    "tone.level",
    "tone.helpful",
    "tone.empathetic",
    "tone.apologetic",
    "tone.urgent",
    "signal.id",
    "signal.name",
    "signal.severity",
    "signal.team",
    "signal.root_cause",
    "signal.description",
    "priority",
    "group",
    "sla.respond_within",
    "sla.followup_within",
    "has_open_ticket",
};

/* Remove a dotted variable from ctx (nested objects). */
static void del_var(json_t *ctx, const char *name)
{
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s", name);
    char *dot = strrchr(tmp, '.');
    json_t *parent = ctx;
    if (dot) {
        *dot = '\0';
        parent = var_value(ctx, tmp);
    }
    json_object_del(parent, dot ? dot + 1 : tmp);
}

/* Customer templates (and the chatbot's sentence) with only the variables that are always set. */
static void customer_templates_minimal(void)
{
    struct buf diag;
    buf_init(&diag, 0);
    struct comms *c = NULL;
    ASSERT_EQ(comms_load(NULL, &c, &diag), 0);
    json_t *ctx = comms_sample_context();
    for (const struct comms_var *v = comms_vars; v->name; v++) {
        int keep = 0;
        for (size_t i = 0; i < ARRAY_SIZE(always_set); i++)
            keep |= !strcmp(always_set[i], v->name);
        char *dot = strrchr(v->name, '.');
        if (dot) {
            char parent[128];
            snprintf(parent, sizeof parent, "%.*s", (int)(dot - v->name), v->name);
            keep |= comms_var_is_list(parent); /* list fields stay with their list */
        }
        if (!keep)
            del_var(ctx, v->name);
    }
    ASSERT(var_value(ctx, "order.id") == NULL);
    ASSERT(var_value(ctx, "customer.first_name") != NULL);
    int nfail = 0, n = 0;
    const struct comms_tmpl *t;
    for (size_t i = 0; (t = comms_tmpl_at(c, i)); i++) {
        if (strcmp(comms_tmpl_audience(t), "customer") && strcmp(comms_tmpl_audience(t), "chatbot"))
            continue;
        quiet = 0;
        for (int merged = 0; merged < 2; merged++) {
            for (int tone = 1; tone <= 4; tone++) {
                char where[300];
                snprintf(where, sizeof where, "%s (tone %d%s, minimal context)", comms_tmpl_path(t),
                         tone, merged ? ", merged" : "");
                comms_context_set_tone(ctx, tone);
                json_object_set_new(ctx, "merged", json_boolean(merged));
                struct comms_rendered r;
                ASSERT_EQ(comms_render(t, ctx, &r), 0);
                n++;
                int f = check_customer_text(where, "text", r.text, NULL, 0);
                if (r.subject)
                    f += check_customer_text(where, "subject", r.subject, NULL, 0);
                if (r.title)
                    f += check_customer_text(where, "title", r.title, NULL, 0);
                if (r.headline)
                    f += check_customer_text(where, "headline", r.headline, NULL, 0);
                if (f)
                    quiet = 1;
                nfail += f != 0;
                comms_rendered_cleanup(&r);
            }
        }
    }
    ASSERT(n >= 30 * 8);
    ASSERT_EQ(nfail, 0);
    json_decref(ctx);
    comms_free(c);
    buf_cleanup(&diag);
}

/*
 * Internal templates with only the always-set variables, and the note for a
 * customer who wrote in after our outreach with the customer's variables
 * alone (the orchestrator knows no signal at that point): no gaps, no
 * leftovers.
 */
static const char *tmpl_key(const struct comms_tmpl *t)
{
    static char key[256];
    snprintf(key, sizeof key, "%s/%s/%s", comms_tmpl_audience(t), comms_tmpl_channel(t),
             comms_tmpl_name(t));
    return key;
}

static void internal_templates_minimal(void)
{
    static const char *const bad[] = {"{{", "}}", "()", "( ", " ,", " .", "  ", "— —", ": \n"};
    struct buf diag;
    buf_init(&diag, 0);
    struct comms *c = NULL;
    ASSERT_EQ(comms_load(NULL, &c, &diag), 0);
    json_t *ctx = comms_sample_context();
    for (const struct comms_var *v = comms_vars; v->name; v++) {
        int keep = 0;
        for (size_t i = 0; i < ARRAY_SIZE(always_set); i++)
            keep |= !strcmp(always_set[i], v->name);
        if (!keep && strncmp(v->name, "incident.", 9))
            del_var(ctx, v->name); /* an incident's alert always has the incident */
    }
    json_t *bare = json_deep_copy(ctx); /* the customer alone */
    static const char *const signal_vars[] = {"issues", "merged", "signal",         "priority",
                                              "group",  "sla",    "response_within"};
    for (size_t i = 0; i < ARRAY_SIZE(signal_vars); i++)
        json_object_del(bare, signal_vars[i]);
    int nfail = 0, n = 0;
    const struct comms_tmpl *t;
    for (size_t i = 0; (t = comms_tmpl_at(c, i)); i++) {
        if (!strcmp(comms_tmpl_audience(t), "customer"))
            continue;
        int passes = !strcmp(tmpl_key(t), "l1/internal_note/already_reached_out") ? 2 : 1;
        for (int pass = 0; pass < passes; pass++) {
            struct comms_rendered r;
            ASSERT_EQ(comms_render(t, pass ? bare : ctx, &r), 0);
            n++;
            for (size_t k = 0; k < ARRAY_SIZE(bad) && r.text; k++) {
                const char *p = strstr(r.text, bad[k]);
                /* Two spaces are fine as indentation at the start of a line. */
                while (p && !strcmp(bad[k], "  ") && (p == r.text || p[-1] == '\n' || p[-1] == ' '))
                    p = strstr(p + 1, bad[k]);
                if (p) {
                    fprintf(stderr, "    %s (%s): \"%s\" at: %.50s\n", comms_tmpl_path(t),
                            pass ? "customer only" : "always-set variables", bad[k],
                            p > r.text + 25 ? p - 25 : r.text);
                    nfail++;
                    break;
                }
            }
            comms_rendered_cleanup(&r);
        }
    }
    ASSERT(n >= 19);
    ASSERT_EQ(nfail, 0);
    json_decref(bare);
    json_decref(ctx);
    comms_free(c);
    buf_cleanup(&diag);
}

/* Render one built-in with the sample (plus overrides); NULL when it does not render. */
static int render_builtin(const struct comms *c, const char *key, const char *over,
                          struct comms_rendered *r)
{
    const struct comms_tmpl *t = find_exact(c, key);
    if (!t)
        return -1;
    json_t *ctx = comms_sample_context();
    if (over) {
        json_t *o = json_loads(over, 0, NULL);
        json_object_update_recursive(ctx, o);
        json_decref(o);
    }
    int rc = comms_render(t, ctx, r);
    json_decref(ctx);
    return rc;
}

/* Merged, reached-out and follow-up wording show where they should. */
static void template_wording(void)
{
    struct buf diag;
    buf_init(&diag, 0);
    struct comms *c = NULL;
    ASSERT_EQ(comms_load(NULL, &c, &diag), 0);
    struct comms_rendered r;

    /* The merged email addresses both problems of the sample (SIG-002 + SIG-008). */
    ASSERT_EQ(render_builtin(c, "customer/email/merged", NULL, &r), 0);
    ASSERT_CONTAINS(r.text, "- Your eSIM activation failed on our side\n");
    ASSERT_CONTAINS(r.text, "- You've had to contact us several times about it\n");
    ASSERT_CONTAINS(r.html, "<ul>\n<li>");
    comms_rendered_cleanup(&r);

    /* A reply on the customer's ticket after our outreach says that we wrote first. */
    static const char *const replies[] = {
        "customer/ticket_reply/default", "customer/ticket_reply/SIG-002",
        "customer/ticket_reply/SIG-008", "customer/ticket_reply/SIG-010",
        "chatbot/chatbot/default",       "l1/ticket/SIG-002"};
    for (size_t i = 0; i < ARRAY_SIZE(replies); i++) {
        struct comms_rendered a, b;
        ASSERT_EQ(render_builtin(c, replies[i], "{\"last_message\": null}", &a), 0);
        ASSERT_EQ(render_builtin(c, replies[i], NULL, &b), 0);
        if (!strcmp(a.text, b.text))
            TEST__FAIL("%s: no last_message wording", replies[i]);
        ASSERT_CONTAINS(b.text, "Mar 5, 2025 at 10:02 AM (Chicago time)");
        if (strstr(a.text, "Mar 5, 2025"))
            TEST__FAIL("%s: says when we wrote without last_message:\n%s", replies[i], a.text);
        comms_rendered_cleanup(&a);
        comms_rendered_cleanup(&b);
    }

    /* Follow-ups after a ticket name the ticket, its subject, resolution and duration. */
    static const char *const followups[] = {"customer/email/followup_acknowledgment",
                                            "customer/email/followup_satisfaction_check",
                                            "customer/email/followup_relationship_repair"};
    for (size_t i = 0; i < ARRAY_SIZE(followups); i++) {
        ASSERT_EQ(render_builtin(c, followups[i], NULL, &r), 0);
        ASSERT_CONTAINS(r.text, "48213");
        ASSERT_CONTAINS(r.text, "eSIM will not activate");
        ASSERT_CONTAINS(r.text, "we issued a new eSIM profile and it activated");
        ASSERT_CONTAINS(r.text, "4 days");
        comms_rendered_cleanup(&r);
    }

    /* The outage email works with and without an estimate. */
    ASSERT_EQ(render_builtin(c, "customer/email/SIG-010", NULL, &r), 0);
    ASSERT_CONTAINS(r.text, "around 3 PM CT");
    comms_rendered_cleanup(&r);
    ASSERT_EQ(render_builtin(c, "customer/email/SIG-010", "{\"outage\": {\"eta\": \"\"}}", &r), 0);
    ASSERT(strstr(r.text, "around 3 PM CT") == NULL);
    comms_rendered_cleanup(&r);

    /* Brand names come from the context, never from the template. */
    ASSERT_EQ(render_builtin(c, "customer/email/SIG-001",
                             "{\"brand\": {\"name\": \"Acme\", \"sender_name\": \"Kim at Acme\","
                             " \"app_name\": \"the Acme app\"}}",
                             &r),
              0);
    ASSERT(strstr(r.text, "Meow") == NULL);
    ASSERT_CONTAINS(r.text, "Kim at Acme");
    comms_rendered_cleanup(&r);
    for (size_t i = 0; comms_builtins[i].path; i++)
        if (strstr(comms_builtins[i].text, "Meow") || strstr(comms_builtins[i].text, "Mochi"))
            TEST__FAIL("templates/%s names the brand or the bot itself", comms_builtins[i].path);
    comms_free(c);
    buf_cleanup(&diag);
}

/* The internal formats: the L1 ticket subject exactly, Slack, the chatbot sentence. */
static void internal_templates(void)
{
    struct buf diag;
    buf_init(&diag, 0);
    struct comms *c = NULL;
    ASSERT_EQ(comms_load(NULL, &c, &diag), 0);
    json_t *ctx = comms_sample_context();
    const struct comms_tmpl *t;
    int n = 0;
    for (size_t i = 0; (t = comms_tmpl_at(c, i)); i++) {
        if (!strcmp(comms_tmpl_audience(t), "customer"))
            continue;
        n++;
        struct comms_rendered r;
        ASSERT_EQ(comms_render(t, ctx, &r), 0);
        if (!r.text || !*r.text || strstr(r.text, "{{") || strstr(r.text, "}}") ||
            (r.subject && (strstr(r.subject, "{{") || strstr(r.subject, "}}"))))
            TEST__FAIL("%s renders badly:\n%s", comms_tmpl_path(t), r.text ? r.text : "");
        /* (The connector alert, failures.c, is a ticket about forewarn itself, not a customer.) */
        if (!strcmp(comms_tmpl_channel(t), "ticket") && strcmp(comms_tmpl_name(t), "connector")) {
            ASSERT_STREQ(r.subject,
                         "[PROACTIVE] eSIM provisioning FAILED — Jodi Example (jodi@example.com)");
            ASSERT_CONTAINS(r.text, "IND-774120");
            ASSERT_CONTAINS(r.text, "ORD-20931");
            ASSERT_CONTAINS(r.text,
                            "We spotted a problem with your eSIM activation"); /* the draft */
        }
        comms_rendered_cleanup(&r);
    }
    ASSERT(n >= 18);

    /* The chatbot sentence: customer-safe, short, one paragraph. */
    struct comms_rendered r;
    for (int tone = 1; tone <= 4; tone++) {
        for (int reached = 0; reached < 2; reached++) {
            comms_context_set_tone(ctx, tone);
            json_object_set_new(ctx, "already_reached_out", json_boolean(reached));
            ASSERT_EQ(comms_render(comms_find(c, "chatbot", "chatbot", "SIG-002"), ctx, &r), 0);
            const char *internal[64];
            size_t ninternal;
            internal_values(ctx, internal, ARRAY_SIZE(internal), &ninternal);
            ASSERT_EQ(check_customer_text("chatbot", "text", r.text, internal, ninternal), 0);
            ASSERT(strlen(r.text) <= 400);
            ASSERT(strchr(r.text, '\n') == NULL);
            comms_rendered_cleanup(&r);
        }
    }

    /* The systemic alert has a row per affected customer and the common factor. */
    ASSERT_EQ(comms_render(comms_find(c, "engineering", "slack", "incident"), ctx, &r), 0);
    ASSERT_CONTAINS(r.text, "jodi@example.com");
    ASSERT_CONTAINS(r.text, "ana@example.com");
    ASSERT_CONTAINS(r.text, "lee@example.com");
    ASSERT_CONTAINS(r.text, "Verizon");
    comms_rendered_cleanup(&r);
    json_decref(ctx);
    comms_free(c);
    buf_cleanup(&diag);
}

/* ---- every shipped template, with and without a brand; SMS and push lengths ---- */

/* A realistic context: the sample with long real-world values, the brand given or absent. */
static json_t *real_context(int brand, int merged)
{
    json_t *ctx = comms_sample_context();
    static const char *const when = "Dec 28, 2026 at 11:45 PM (Los Angeles time)";
    json_t *o = json_pack(
        "{s:{s:s,s:s,s:s}, s:{s:s,s:s}, s:{s:s}, s:{s:s}, s:{s:s,s:s}, s:{s:s,s:s}, s:{s:s},"
        " s:{s:s,s:s,s:s,s:s,s:s}}",
        "brand", "sender_name", "The support team", "app_name", "the app", "support_url",
        "https://support.example.com", "customer", "first_name", "Maximiliana", "zip", "94110",
        "order", "id", "ORD-2026-0000123456", "portin", "carrier", "T-Mobile US", "last_message",
        "at", when, "channel_name", "text message", "contacted_since", "at", when, "kind", "chat",
        "next_update", "within", "24 hours", "outage", "area", "94110", "impact",
        "calls and mobile data", "eta", when, "started_at", when, "resolved_at", when);
    json_object_update_recursive(ctx, o);
    json_decref(o);
    json_t *b = json_object_get(ctx, "brand");
    if (brand)
        json_object_set_new(b, "name", json_string("Nimbus Mobile"));
    else
        json_object_del(b, "name");
    json_object_set_new(ctx, "merged", json_boolean(merged));
    if (!merged) {
        json_t *issues = json_object_get(ctx, "issues");
        while (json_array_size(issues) > 1)
            json_array_remove(issues, 1);
    }
    return ctx;
}

/* Case-insensitive strstr for ASCII needles. */
static const char *find_nocase(const char *s, const char *needle)
{
    size_t n = strlen(needle);
    for (; s && *s; s++) {
        size_t i = 0;
        while (i < n && s[i] && (s[i] | 0x20) == (needle[i] | 0x20))
            i++;
        if (i == n)
            return s;
    }
    return NULL;
}

/* Artefacts of a missing value in one rendered part; prints the first and returns 1. */
static int check_artefacts(const char *where, const char *what, const char *s, int customer)
{
    static const char *const bad[] = {"{{", "}}", " .", " ,", "()", "( )", "  "};
    if (!s)
        return 0;
    if (customer && find_nocase(s, "forewarn")) {
        fprintf(stderr, "    %s: %s names the product: %.60s\n", where, what,
                find_nocase(s, "forewarn"));
        return 1;
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        const char *p = strstr(s, bad[i]);
        /* Two spaces are fine as indentation at the start of a line. */
        while (p && !strcmp(bad[i], "  ") && (p == s || p[-1] == '\n' || p[-1] == ' '))
            p = strstr(p + 1, bad[i]);
        if (p) {
            fprintf(stderr, "    %s: %s contains \"%s\" at: %.50s\n", where, what, bad[i],
                    p > s + 25 ? p - 25 : s);
            return 1;
        }
    }
    return 0;
}

/*
 * Every shipped template (every audience, channel and name), with a
 * realistic context, without a brand and with "Nimbus Mobile", in all four
 * tones, with one problem and with merged ones: no product name in what a
 * customer reads, no gap a missing value leaves, and the brand wherever a
 * customer template speaks of the customer's account or service.
 */
static void every_template_brand_and_tone(void)
{
    struct buf diag;
    buf_init(&diag, 0);
    struct comms *c = NULL;
    ASSERT_EQ(comms_load(NULL, &c, &diag), 0);
    int nfail = 0, n = 0;
    const struct comms_tmpl *t;
    for (size_t i = 0; (t = comms_tmpl_at(c, i)); i++) {
        const char *aud = comms_tmpl_audience(t), *chan = comms_tmpl_channel(t);
        int customer = !strcmp(aud, "customer") || !strcmp(aud, "chatbot");
        int tfail = 0;
        for (int brand = 0; brand < 2; brand++) {
            int seen_brand = 0;
            for (int merged = 0; merged < 2; merged++) {
                for (int tone = 1; tone <= 4; tone++) {
                    char where[300];
                    snprintf(where, sizeof where, "%s (tone %d, %s, %s)", comms_tmpl_path(t), tone,
                             brand ? "brand Nimbus Mobile" : "no brand",
                             merged ? "merged" : "one problem");
                    json_t *ctx = real_context(brand, merged);
                    comms_context_set_tone(ctx, tone);
                    struct comms_rendered r;
                    ASSERT_EQ(comms_render(t, ctx, &r), 0);
                    n++;
                    int f = check_artefacts(where, "text", r.text, customer) +
                            check_artefacts(where, "subject", r.subject, customer) +
                            check_artefacts(where, "title", r.title, customer) +
                            check_artefacts(where, "headline", r.headline, customer);
                    if (!brand && customer && (strstr(r.text, "Nimbus") || strstr(r.text, "Meow")))
                        f += fprintf(stderr, "    %s: a brand without one\n", where) > 0;
                    seen_brand |= (r.text && strstr(r.text, "Nimbus Mobile")) ||
                                  (r.subject && strstr(r.subject, "Nimbus Mobile")) ||
                                  (r.title && strstr(r.title, "Nimbus Mobile"));
                    comms_rendered_cleanup(&r);
                    json_decref(ctx);
                    if (f && tfail++ < 3)
                        nfail++;
                }
            }
            /* The brand shows when set: every email (the footer), SMS and the push default. */
            int wants = !strcmp(aud, "customer") &&
                        (!strcmp(chan, "email") || !strcmp(chan, "sms") ||
                         (!strcmp(chan, "push") && !strcmp(comms_tmpl_name(t), "default")));
            if (brand && wants && !seen_brand) {
                fprintf(stderr, "    %s: never names the brand Nimbus Mobile\n",
                        comms_tmpl_path(t));
                nfail++;
            }
        }
    }
    ASSERT(n >= 60 * 16);
    ASSERT_EQ(nfail, 0);
    comms_free(c);
    buf_cleanup(&diag);
}

/*
 * Length of an SMS in GSM-7 septets (the extension characters count two),
 * or, when a character is outside GSM-7, in UCS-2 units with *ucs2 set.
 */
static size_t sms_length(const char *s, int *ucs2)
{
    static const char basic[] = "@$\n\r _!\"#%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "abcdefghijklmnopqrstuvwxyz";
    static const char *const basic_utf8[] = {"£", "¥", "è", "é", "ù", "ì", "ò", "Ç", "Ø", "ø",
                                             "Å", "å", "Δ", "Φ", "Γ", "Λ", "Ω", "Π", "Ψ", "Σ",
                                             "Θ", "Ξ", "Æ", "æ", "ß", "É", "¤", "¡", "Ä", "Ö",
                                             "Ñ", "Ü", "§", "¿", "ä", "ö", "ñ", "ü", "à"};
    size_t septets = 0, units = 0;
    *ucs2 = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t len = *p < 0x80 ? 1 : *p < 0xE0 ? 2 : *p < 0xF0 ? 3 : 4;
        units += len == 4 ? 2 : 1;
        if (len == 1 && strchr(basic, *p)) {
            septets++;
        } else if (len == 1 && strchr("^{}\\[~]|", *p)) {
            septets += 2;
        } else if (len == 3 && !memcmp(p, "€", 3)) {
            septets += 2;
        } else {
            int found = 0;
            for (size_t i = 0; i < ARRAY_SIZE(basic_utf8) && !found; i++)
                found =
                    !strncmp((const char *)p, basic_utf8[i], len) && strlen(basic_utf8[i]) == len;
            if (found)
                septets++;
            else
                *ucs2 = 1;
        }
        for (size_t i = 0; i < len && *p; i++)
            p++;
    }
    return *ucs2 ? units : septets;
}

/* Characters (code points) of UTF-8 text. */
static size_t chars(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/*
 * Every SMS fits one segment and every push the lock screen, in every tone,
 * with long real values, with and without a brand, with every optional fact
 * present or absent.  Each failure names the template, the case and how far
 * over the limit it is.
 */
static void sms_and_push_lengths(void)
{
    struct buf diag;
    buf_init(&diag, 0);
    struct comms *c = NULL;
    ASSERT_EQ(comms_load(NULL, &c, &diag), 0);
    /* Optional facts taken away one at a time: each changes which words are said. */
    static const char *const drop[] = {NULL,         "last_message", "next_update",
                                       "outage.eta", "outage.area",  "contacted_since"};
    int nfail = 0, nsms = 0, npush = 0;
    const struct comms_tmpl *t;
    for (size_t i = 0; (t = comms_tmpl_at(c, i)); i++) {
        const char *chan = comms_tmpl_channel(t);
        int sms = !strcmp(chan, "sms"), push = !strcmp(chan, "push");
        if (strcmp(comms_tmpl_audience(t), "customer") || (!sms && !push))
            continue;
        for (int brand = 0; brand < 2; brand++)
            for (int merged = 0; merged < 2; merged++)
                for (size_t d = 0; d < ARRAY_SIZE(drop); d++)
                    for (int tone = 1; tone <= 4; tone++) {
                        json_t *ctx = real_context(brand, merged);
                        if (drop[d])
                            del_var(ctx, drop[d]);
                        comms_context_set_tone(ctx, tone);
                        struct comms_rendered r;
                        ASSERT_EQ(comms_render(t, ctx, &r), 0);
                        char where[300];
                        snprintf(where, sizeof where, "%s (tone %d, %s%s%s%s)", comms_tmpl_path(t),
                                 tone, brand ? "brand" : "no brand", merged ? ", merged" : "",
                                 drop[d] ? ", without " : "", drop[d] ? drop[d] : "");
                        if (sms) {
                            int ucs2;
                            size_t n = sms_length(r.text, &ucs2), max = ucs2 ? 70 : 160;
                            nsms++;
                            if (n > max) {
                                fprintf(stderr,
                                        "    %s: %zu %s characters, %zu over one segment of %zu:"
                                        "\n      %s\n",
                                        where, n, ucs2 ? "UCS-2" : "GSM-7", n - max, max, r.text);
                                nfail++;
                            }
                        } else {
                            size_t nt = chars(r.title), nb = chars(r.text);
                            npush++;
                            if (nt > 50 || nb > 178) {
                                fprintf(stderr,
                                        "    %s: title %zu characters (%s%zd over 50), body %zu "
                                        "(%zd over 178):\n      %s\n      %s\n",
                                        where, nt, "", (ssize_t)nt - 50, nb, (ssize_t)nb - 178,
                                        r.title ? r.title : "", r.text);
                                nfail++;
                            }
                        }
                        comms_rendered_cleanup(&r);
                        json_decref(ctx);
                    }
    }
    ASSERT(nsms >= 6 * 96 && npush >= 3 * 96);
    ASSERT_EQ(nfail, 0);
    /* The counter itself: extension characters count two, a curly quote means UCS-2. */
    int ucs2;
    ASSERT_EQ(sms_length("a{b}€", &ucs2), 8); /* 1 + 2 + 1 + 2 + 2 */
    ASSERT_EQ(ucs2, 0);
    ASSERT_EQ(sms_length("it\xE2\x80\x99s", &ucs2), 4);
    ASSERT_EQ(ucs2, 1);
    ASSERT_EQ(sms_length("é£", &ucs2), 2);
    ASSERT_EQ(ucs2, 0);
    comms_free(c);
    buf_cleanup(&diag);
}

/* ---- docs/templates.md ---- */

/* Every variable has its row, generated from vars.h: | `name` | who | description | */
static void doc_variables(void)
{
    char *doc = slurp(DOC_FILE, NULL);
    ASSERT(doc != NULL);
    int missing = 0;
    for (const struct comms_var *v = comms_vars; v->name; v++) {
        char row[512];
        snprintf(row, sizeof row, "| `%s` | %s | %s |", v->name,
                 v->audiences == COMMS_VAR_CUST ? "customer" : "internal", v->description);
        if (!strstr(doc, row)) {
            fprintf(stderr, "    %s lacks the row:\n%s\n", DOC_FILE, row);
            missing++;
        }
    }
    free(doc);
    ASSERT_EQ(missing, 0);
}

/*
 * Every ```tmpl block, rendered with the sample context: the info string
 * may give a path (default customer/in_app/example.tmpl) and a JSON object
 * merged over the sample.  The next block says what must come out:
 * ```text (the text; "subject: ...", "title: ..." and "headline: ..." lines
 * and `---` first when the template has them), ```html (the <body> contents) or ```error
 * (the diagnostics, exactly).
 */
static void doc_examples(void)
{
    size_t len;
    char *doc = slurp(DOC_FILE, &len);
    ASSERT(doc != NULL);
    int nexamples = 0, nfail = 0, lineno = 0, tmpl_line = 0, inblock = 0;
    char info[512] = "", kind[16] = "";
    struct buf block, tmpl, got;
    buf_init(&block, 0);
    buf_init(&tmpl, 0);
    buf_init(&got, 0);
    int have_tmpl = 0;
    char tpath[256], tover[400];
    for (char *p = doc, *e; *p; p = e ? e + 1 : p + strlen(p)) {
        e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        lineno++;
        if (n < 3 || strncmp(p, "```", 3)) {
            if (inblock) {
                buf_append(&block, p, n);
                buf_putc(&block, '\n');
            }
            continue;
        }
        if (!inblock) {
            inblock = lineno;
            snprintf(info, sizeof info, "%.*s", (int)(n - 3), p + 3);
            sscanf(info, "%15s", kind);
            buf_reset(&block);
            continue;
        }
        inblock = 0;
        char where[300];
        snprintf(where, sizeof where, "%s:%d", DOC_FILE, lineno);
        if (!strcmp(kind, "tmpl")) {
            buf_reset(&tmpl);
            buf_append(&tmpl, block.data ? block.data : "", block.len);
            tpath[0] = tover[0] = '\0';
            sscanf(info + 4, " %255s %399[^\n]", tpath, tover);
            if (!tpath[0])
                snprintf(tpath, sizeof tpath, "customer/in_app/example.tmpl");
            have_tmpl = 1;
            tmpl_line = lineno;
            continue;
        }
        if (!have_tmpl || (strcmp(kind, "text") && strcmp(kind, "html") && strcmp(kind, "error"))) {
            have_tmpl = 0;
            continue;
        }
        have_tmpl = 0;
        nexamples++;
        snprintf(where, sizeof where, "%s:%d (the example at line %d)", DOC_FILE, lineno,
                 tmpl_line);
        struct buf diag;
        buf_init(&diag, 0);
        struct comms_tmpl *t = NULL;
        comms_tmpl_compile(NULL, tpath, tmpl.data ? tmpl.data : "", tmpl.len, &t, &diag);
        while (block.len && block.data[block.len - 1] == '\n')
            block.data[--block.len] = '\0';
        if (!strcmp(kind, "error")) {
            while (diag.len && diag.data[diag.len - 1] == '\n')
                diag.data[--diag.len] = '\0';
            if (t || strcmp(diag.data ? diag.data : "", block.data ? block.data : "")) {
                fprintf(stderr, "    %s:\n--- got\n%s--- expected\n%s\n---\n", where,
                        diag.data ? diag.data : "(compiled)\n", block.data);
                nfail++;
            }
        } else if (!t) {
            fprintf(stderr, "    %s: does not compile:\n%s", where, diag.data);
            nfail++;
        } else {
            json_t *ctx = comms_sample_context();
            if (tover[0]) {
                json_error_t jerr;
                json_t *o = json_loads(tover, 0, &jerr);
                if (!o)
                    fprintf(stderr, "    %s: bad JSON: %s\n", where, jerr.text);
                json_object_update_recursive(ctx, o);
                json_decref(o);
            }
            struct comms_rendered r;
            buf_reset(&got);
            if (comms_render(t, ctx, &r) == 0) {
                if (!strcmp(kind, "html")) {
                    char *body = html_body(r.html);
                    buf_puts(&got, body ? body : "(no html)");
                    free(body);
                    while (got.len && got.data[got.len - 1] == '\n')
                        got.data[--got.len] = '\0';
                } else {
                    if (r.subject)
                        buf_printf(&got, "subject: %s\n", r.subject);
                    if (r.title)
                        buf_printf(&got, "title: %s\n", r.title);
                    if (r.headline)
                        buf_printf(&got, "headline: %s\n", r.headline);
                    if (r.subject || r.title || r.headline)
                        buf_puts(&got, "---\n");
                    buf_puts(&got, r.text);
                }
                comms_rendered_cleanup(&r);
            }
            if (strcmp(got.data ? got.data : "", block.data ? block.data : "")) {
                fprintf(stderr, "    %s:\n--- got\n%s\n--- expected\n%s\n---\n", where,
                        got.data ? got.data : "", block.data ? block.data : "");
                nfail++;
            }
            json_decref(ctx);
        }
        comms_tmpl_free(t);
        buf_cleanup(&diag);
    }
    buf_cleanup(&block);
    buf_cleanup(&tmpl);
    buf_cleanup(&got);
    free(doc);
    ASSERT(nexamples >= 10);
    ASSERT_EQ(nfail, 0);
}

const struct test comms_tests[] = {
    {"render_cases", render_cases},
    {"error_cases", error_cases},
    {"html_document", html_document},
    {"render_cap", render_cap},
    {"nesting_limit", nesting_limit},
    {"tidy_sizes", tidy_sizes},
    {"template_identity", template_identity},
    {"compile_mutations", compile_mutations},
    {"variables", variables},
    {"sample_context", sample_context},
    {"typed_context", typed_context},
    {"typed_from_json", typed_from_json},
    {"typed_sample_templates", typed_sample_templates},
    {"builtins_load", builtins_load},
    {"load_directory", load_directory},
    {"load_partials", load_partials},
    {"required_templates", required_templates},
    {"customer_templates", customer_templates},
    {"customer_templates_minimal", customer_templates_minimal},
    {"template_wording", template_wording},
    {"internal_templates", internal_templates},
    {"internal_templates_minimal", internal_templates_minimal},
    {"every_template_brand_and_tone", every_template_brand_and_tone},
    {"sms_and_push_lengths", sms_and_push_lengths},
    {"doc_variables", doc_variables},
    {"doc_examples", doc_examples},
    {NULL, NULL},
};
