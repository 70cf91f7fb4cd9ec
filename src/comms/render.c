/*
 * render.c -- a compiled template plus a context to text, and text to an
 * HTML document for email.  The context is typed (ctx.c: what the
 * orchestrator fills per decision) or a JSON object (playbook scripts,
 * tests); both become comms__value, so one walk renders either.
 *
 * Rendering walks the node list with a context stack (Mustache's): the
 * root object at the bottom, then one frame per section entered.  A name
 * is looked up from the innermost frame outward; a frame that is a list's
 * element also answers the list's field names ("issues.headline" in the
 * element of {{#issues}} is its "headline").  A typed lookup reads the
 * name's slot by the id the compiler gave it (a field: in the innermost
 * element of its list); a JSON lookup probes each frame by the name's
 * text, as it always did.  Every output buffer has a
 * cap, so a huge list or value ends in FW_ETOOBIG, never in unbounded
 * memory.  Rendering reads the template only: one template may be rendered
 * by many threads at once.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "comms/comms_int.h"
#include "util/buf.h"
#include "util/util.h"

struct frame {
    json_t *j;        /* JSON: the value the section pushed (or the root) */
    const char *list; /* JSON: the list variable when j is one of its elements, else NULL */
    size_t listlen;
    struct comms__value v;            /* typed: the value the section pushed ({{.}}) */
    const struct comms__value *item;  /* typed: the fields of a list's element, else NULL */
    int ilist;                        /* typed: the list variable of item */
};

struct render {
    const struct comms_tmpl *t;
    struct buf *out;
    const struct comms__value *root; /* a typed context's slots, or NULL: a JSON context */
    struct frame st[COMMS__MAX_DEPTH + 1];
    int top; /* index of the innermost frame */
};

/*
 * A dotted name inside obj: a key holding the whole remaining name wins
 * (flat contexts: {"customer.first_name": ...}), else the first part
 * selects a nested object and the rest continues there.  NULL when some
 * step is missing; a JSON null that is present is returned as such.
 */
json_t *comms__json_path(json_t *obj, const char *p, size_t n) {
    while (json_is_object(obj)) {
        json_t *v = json_object_getn(obj, p, n);
        if (v)
            return v;
        const char *dot = memchr(p, '.', n);
        if (!dot)
            return NULL;
        obj = json_object_getn(obj, p, (size_t)(dot - p));
        n -= (size_t)(dot - p) + 1;
        p = dot + 1;
    }
    return NULL;
}

static json_t *lookup_json(struct render *r, const char *name, size_t n) {
    if (n == 1 && name[0] == '.')
        return r->st[r->top].j;
    for (int i = r->top; i >= 0; i--) {
        struct frame *f = &r->st[i];
        json_t *v;
        if (f->list && n > f->listlen && name[f->listlen] == '.' &&
            !memcmp(name, f->list, f->listlen) &&
            (v = comms__json_path(f->j, name + f->listlen + 1, n - f->listlen - 1)))
            return v;
        if ((v = comms__json_path(f->j, name, n)))
            return v;
    }
    return NULL;
}

/* A JSON value as rendering sees it (the string stays the JSON value's). */
static struct comms__value from_json(json_t *j) {
    struct comms__value v = {.kind = COMMS__ABSENT};
    switch (j ? json_typeof(j) : JSON_NULL) {
    case JSON_STRING:
        v.kind = COMMS__STR;
        v.u.s = json_string_value(j);
        v.len = (uint32_t)json_string_length(j);
        break;
    case JSON_INTEGER:
        v.kind = COMMS__INT;
        v.u.i = (long long)json_integer_value(j);
        break;
    case JSON_REAL:
        v.kind = COMMS__REAL;
        v.u.d = json_real_value(j);
        break;
    case JSON_TRUE:
        v.kind = COMMS__TRUE;
        break;
    case JSON_FALSE:
        v.kind = COMMS__FALSE;
        break;
    case JSON_ARRAY:
        v.kind = COMMS__JARRAY;
        v.len = (uint32_t)(json_array_size(j) ? 1 : 0); /* truthiness only: elements come from j */
        break;
    case JSON_OBJECT:
        v.kind = COMMS__OBJECT;
        break;
    default:
        v.kind = j ? COMMS__NULL : COMMS__ABSENT;
        break;
    }
    return v;
}

/*
 * A name in a typed context: the innermost element of the name's list that
 * has the field, else the root's slot, as the JSON lookup above finds it in
 * a tree of the same values (a list's field is never at the root; typed
 * values other than lists' elements have no fields).
 */
static struct comms__value lookup_typed(struct render *r, const struct comms__node *n) {
    if (n->var == COMMS__DOT)
        return r->st[r->top].v;
    if (n->list != COMMS__NOLIST) {
        for (int i = r->top; i > 0; i--) {
            const struct frame *f = &r->st[i];
            if (f->item && f->ilist == n->list && f->item[n->var - n->list - 1].kind != COMMS__ABSENT)
                return f->item[n->var - n->list - 1];
        }
        return (struct comms__value){.kind = COMMS__ABSENT};
    }
    return r->root[n->var];
}

/* Absent, null, false, "" and [] are false; everything else (0 and {} included) is true. */
static int truthy(const struct comms__value *v) {
    switch (v->kind) {
    case COMMS__ABSENT:
    case COMMS__NULL:
    case COMMS__FALSE:
        return 0;
    case COMMS__STR:
    case COMMS__LIST:
    case COMMS__JARRAY:
        return v->len > 0;
    default:
        return 1;
    }
}

static int put_value(struct buf *b, const struct comms__value *v) {
    switch (v->kind) {
    case COMMS__STR:
        return buf_append(b, v->u.s, v->len);
    case COMMS__INT:
        return buf_put_int(b, v->u.i);
    case COMMS__REAL:
        return buf_json_num(b, v->u.d);
    case COMMS__TRUE:
        return buf_puts(b, "true");
    case COMMS__FALSE:
        return buf_puts(b, "false");
    default:
        return 0; /* null, absent, objects and lists render as nothing */
    }
}

static struct frame *push(struct render *r) {
    if (r->top == COMMS__MAX_DEPTH)
        return NULL; /* cannot happen: the compiler bounds nesting */
    struct frame *f = &r->st[++r->top];
    memset(f, 0, sizeof *f);
    return f;
}

static int render_range(struct render *r, uint32_t i, uint32_t end);

/* A section over a value: its content once, once per element, or not at all. */
static int section(struct render *r, const struct comms__node *n, uint32_t i) {
    int rc = 0;
    struct frame *f;
    if (r->root) {
        struct comms__value v = lookup_typed(r, n);
        if (v.kind == COMMS__LIST) {
            size_t nf = comms__var_nfields(n->var);
            static const struct comms__value element = {.kind = COMMS__OBJECT};
            for (size_t k = 0; k < v.len && !rc; k++) {
                if (!(f = push(r)))
                    return FW_ESTATE;
                f->v = element;
                f->item = v.u.items + k * nf;
                f->ilist = n->var;
                rc = render_range(r, i + 1, n->end);
                r->top--;
            }
        } else if (truthy(&v)) {
            if (!(f = push(r)))
                return FW_ESTATE;
            f->v = v;
            rc = render_range(r, i + 1, n->end);
            r->top--;
        }
        return rc;
    }
    const char *name = r->t->pool + n->str;
    json_t *v = lookup_json(r, name, n->len);
    if (json_is_array(v)) {
        for (size_t k = 0; k < json_array_size(v) && !rc; k++) {
            if (!(f = push(r)))
                return FW_ESTATE;
            f->j = json_array_get(v, k);
            f->v = from_json(f->j);
            f->list = name;
            f->listlen = n->len;
            rc = render_range(r, i + 1, n->end);
            r->top--;
        }
    } else {
        struct comms__value tv = from_json(v);
        if (truthy(&tv)) {
            if (!(f = push(r)))
                return FW_ESTATE;
            f->j = v;
            f->v = tv;
            rc = render_range(r, i + 1, n->end);
            r->top--;
        }
    }
    return rc;
}

static struct comms__value lookup(struct render *r, const struct comms__node *n) {
    if (r->root)
        return lookup_typed(r, n);
    return from_json(lookup_json(r, r->t->pool + n->str, n->len));
}

static int render_range(struct render *r, uint32_t i, uint32_t end) {
    const struct comms__node *nodes = r->t->nodes;
    const char *pool = r->t->pool;
    int rc = 0;
    while (i < end && !rc) {
        const struct comms__node *n = &nodes[i];
        switch (n->kind) {
        case COMMS__TEXT:
            rc = buf_append(r->out, pool + n->str, n->len);
            i++;
            break;
        case COMMS__VAR: {
            struct comms__value v = lookup(r, n);
            rc = put_value(r->out, &v);
            i++;
            break;
        }
        case COMMS__SECTION:
            rc = section(r, n, i);
            i = n->end;
            break;
        case COMMS__INVERTED: {
            struct comms__value v = lookup(r, n);
            if (!truthy(&v))
                rc = render_range(r, i + 1, n->end);
            i = n->end;
            break;
        }
        default:
            return FW_ESTATE;
        }
    }
    return rc;
}

static int blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r'; }

/*
 * Tidy rendered body text: cut trailing blanks from each line, collapse
 * runs of blank lines into one, drop blank lines at the start and end.
 * Optional sections leave blank lines behind; this keeps templates easy
 * to write without stray gaps in the message.
 */
/*
 * Both tidy functions write into one allocation of n + 1 bytes: what they
 * write never outgrows the input (a "\n\n" stands for a line break and a
 * blank line, a ' ' for at least one blank or break), and growing a buffer
 * from nothing cost six reallocations per message body.
 */
static char *tidy_text(const char *s, size_t n) {
    char *out = xmalloc(n + 1);
    size_t len = 0;
    int pending_blank = 0;
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - s) : n;
        size_t t = e;
        while (t > i && blank(s[t - 1]))
            t--;
        if (t == i) {
            pending_blank = len > 0;
        } else {
            if (len) {
                out[len++] = '\n';
                if (pending_blank)
                    out[len++] = '\n';
            }
            memcpy(out + len, s + i, t - i);
            len += t - i;
            pending_blank = 0;
        }
        i = e + 1;
    }
    out[len] = '\0';
    return out;
}

/* One line: every run of blanks and line breaks becomes one space, none at either end. */
static char *tidy_line(const char *s, size_t n) {
    char *out = xmalloc(n + 1);
    size_t len = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && (blank(s[i]) || s[i] == '\n'))
            i++;
        size_t w = i; /* a run of other bytes, appended at once */
        while (i < n && !blank(s[i]) && s[i] != '\n')
            i++;
        if (i > w) {
            if (len)
                out[len++] = ' ';
            memcpy(out + len, s + w, i - w);
            len += i - w;
        }
    }
    out[len] = '\0';
    return out;
}

static int render_part(struct render *r, const struct comms__part *p, int line, char **out) {
    struct buf b;
    buf_init(&b, COMMS_RENDER_MAX);
    /* One allocation for what most parts come to (a message body is one to two kilobytes). */
    buf_reserve(&b, line ? 240 : 4000);
    r->out = &b;
    r->top = 0;
    int rc = render_range(r, p->first, p->end);
    if (!rc)
        *out = line ? tidy_line(b.data, b.len) : tidy_text(b.data, b.len);
    buf_cleanup(&b);
    return rc;
}

/* Render every part; r->root or r->st[0].j is the context. */
static int render_all(struct render *r, struct comms_rendered *out, int html) {
    const struct comms_tmpl *t = r->t;
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (t->subject.present && (rc = render_part(r, &t->subject, 1, &out->subject)))
        goto out;
    if (t->title.present && (rc = render_part(r, &t->title, 1, &out->title)))
        goto out;
    if (t->headline.present && (rc = render_part(r, &t->headline, 1, &out->headline)))
        goto out;
    if ((rc = render_part(r, &t->body, 0, &out->text)))
        goto out;
    if (html && t->channel == COMMS__CHAN_email)
        rc = comms_text_to_html(out->subject ? out->subject : out->title, out->text, &out->html);
out:
    if (rc)
        comms_rendered_cleanup(out);
    return rc;
}

static int render_json(const struct comms_tmpl *t, json_t *ctx, struct comms_rendered *out,
                       int html) {
    struct render r = {.t = t};
    json_t *empty = ctx ? NULL : json_object();
    r.st[0].j = ctx ? ctx : empty;
    r.st[0].v = from_json(r.st[0].j);
    int rc = render_all(&r, out, html);
    json_decref(empty);
    return rc;
}

static int render_typed(const struct comms_tmpl *t, const struct comms_ctx *ctx,
                        struct comms_rendered *out, int html) {
    struct render r = {.t = t, .root = comms__ctx_values(ctx)};
    r.st[0].v = (struct comms__value){.kind = COMMS__OBJECT};
    return render_all(&r, out, html);
}

int comms_render(const struct comms_tmpl *t, json_t *ctx, struct comms_rendered *out) {
    return render_json(t, ctx, out, 1);
}

int comms_render_text(const struct comms_tmpl *t, json_t *ctx, struct comms_rendered *out) {
    return render_json(t, ctx, out, 0);
}

int comms_render_ctx(const struct comms_tmpl *t, const struct comms_ctx *ctx,
                     struct comms_rendered *out) {
    return render_typed(t, ctx, out, 1);
}

int comms_render_text_ctx(const struct comms_tmpl *t, const struct comms_ctx *ctx,
                          struct comms_rendered *out) {
    return render_typed(t, ctx, out, 0);
}

/* The headline part (or, without one, the subject) of a template, or NULL. */
static const struct comms__part *headline_part(const struct comms_tmpl *t) {
    return t->headline.present  ? &t->headline
           : t->subject.present ? &t->subject
                                : NULL;
}

int comms_render_headline(const struct comms_tmpl *t, json_t *ctx, char **out)
{
    struct render r = {.t = t};
    const struct comms__part *p = headline_part(t);
    *out = NULL;
    if (!p)
        return 0;
    r.st[0].j = ctx;
    r.st[0].v = from_json(ctx);
    return render_part(&r, p, 1, out);
}

int comms_render_headline_ctx(const struct comms_tmpl *t, const struct comms_ctx *ctx, char **out)
{
    struct render r = {.t = t, .root = comms__ctx_values(ctx)};
    const struct comms__part *p = headline_part(t);
    *out = NULL;
    if (!p)
        return 0;
    r.st[0].v = (struct comms__value){.kind = COMMS__OBJECT};
    return render_part(&r, p, 1, out);
}

void comms_rendered_cleanup(struct comms_rendered *r) {
    free(r->subject);
    free(r->title);
    free(r->text);
    free(r->html);
    free(r->headline);
    memset(r, 0, sizeof *r);
}

/* ---- HTML ---- */

/* HTML-escaped text; runs of bytes that need no escape are appended at once. */
static void put_escaped(struct buf *b, const char *s, size_t n) {
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc;
        switch (s[i]) {
        case '&':
            esc = "&amp;";
            break;
        case '<':
            esc = "&lt;";
            break;
        case '>':
            esc = "&gt;";
            break;
        case '"':
            esc = "&quot;";
            break;
        case '\'':
            esc = "&#39;";
            break;
        default:
            continue;
        }
        buf_append(b, s + run, i - run);
        buf_puts(b, esc);
        run = i + 1;
    }
    buf_append(b, s + run, n - run);
}

/* Length of an http(s) URL starting at s, without trailing punctuation; 0 when none starts there.
 */
static size_t url_len(const char *s, size_t n) {
    size_t k;
    if (n > 8 && !memcmp(s, "https://", 8))
        k = 8;
    else if (n > 7 && !memcmp(s, "http://", 7))
        k = 7;
    else
        return 0;
    size_t e = k;
    while (e < n && s[e] != ' ' && s[e] != '\t' && s[e] != '<' && s[e] != '>' && s[e] != '"')
        e++;
    while (e > k && strchr(".,;:!?)'", s[e - 1]))
        e--;
    return e > k ? e : 0;
}

/* Escaped text with URLs as links. */
static void put_inline(struct buf *b, const char *s, size_t n) {
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        size_t u;
        int boundary = i == 0 || !((s[i - 1] >= 'a' && s[i - 1] <= 'z') ||
                                   (s[i - 1] >= 'A' && s[i - 1] <= 'Z') ||
                                   (s[i - 1] >= '0' && s[i - 1] <= '9'));
        if ((s[i] == 'h') && boundary && (u = url_len(s + i, n - i))) {
            put_escaped(b, s + from, i - from);
            buf_puts(b, "<a href=\"");
            put_escaped(b, s + i, u);
            buf_puts(b, "\">");
            put_escaped(b, s + i, u);
            buf_puts(b, "</a>");
            i += u - 1;
            from = i + 1;
        }
    }
    put_escaped(b, s + from, n - from);
}

enum block { B_NONE, B_P, B_UL, B_OL };

static void close_block(struct buf *b, enum block *state) {
    static const char *const ends[] = {"", "</p>\n", "</ul>\n", "</ol>\n"};
    buf_puts(b, ends[*state]);
    *state = B_NONE;
}

/* "12. " at the start of a line: the number and the length of the marker, or 0. */
static size_t ol_marker(const char *s, size_t n, long *num) {
    size_t i = 0;
    long v = 0;
    while (i < n && i < 6 && s[i] >= '0' && s[i] <= '9')
        v = v * 10 + (s[i++] - '0');
    if (i == 0 || i + 1 >= n || s[i] != '.' || s[i + 1] != ' ')
        return 0;
    *num = v;
    return i + 2;
}

int comms_text_to_html(const char *title, const char *text, char **out) {
    size_t n = strlen(text);
    *out = NULL;
    if (n > COMMS_RENDER_MAX)
        return FW_ETOOBIG;
    struct buf b;
    buf_init(&b, 0); /* bounded by the text's cap: escaping at most multiplies it by 6 */
    buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                 "<title>");
    put_escaped(&b, title && *title ? title : "Message", title && *title ? strlen(title) : 7);
    buf_puts(&b, "</title>\n</head>\n<body>\n");
    enum block state = B_NONE;
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && text[e] != '\n')
            e++;
        size_t t = e;
        while (t > i && blank(text[t - 1]))
            t--;
        const char *line = text + i;
        size_t len = t - i, mk;
        long num = 0;
        if (len == 0) {
            close_block(&b, &state);
        } else if (len > 2 && line[0] == '-' && line[1] == ' ') {
            if (state != B_UL) {
                close_block(&b, &state);
                buf_puts(&b, "<ul>\n");
                state = B_UL;
            }
            buf_puts(&b, "<li>");
            put_inline(&b, line + 2, len - 2);
            buf_puts(&b, "</li>\n");
        } else if ((mk = ol_marker(line, len, &num))) {
            if (state != B_OL) {
                close_block(&b, &state);
                if (num == 1)
                    buf_puts(&b, "<ol>\n");
                else
                    buf_printf(&b, "<ol start=\"%ld\">\n", num);
                state = B_OL;
            }
            buf_puts(&b, "<li>");
            put_inline(&b, line + mk, len - mk);
            buf_puts(&b, "</li>\n");
        } else {
            if (state == B_P) {
                buf_puts(&b, "<br>\n");
            } else {
                close_block(&b, &state);
                buf_puts(&b, "<p>");
                state = B_P;
            }
            put_inline(&b, line, len);
        }
        i = e + 1;
    }
    close_block(&b, &state);
    buf_puts(&b, "</body>\n</html>\n");
    *out = buf_steal(&b);
    return 0;
}
