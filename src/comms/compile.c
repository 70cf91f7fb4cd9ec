/*
 * compile.c -- a template's source to its node list, checked against the
 * variables its audience may see.
 *
 * One pass over the source: the path gives the audience and channel, the
 * optional header (subject:, title:) ends at a line `---`, and each header
 * value and the body are tokenized into text, variable and section nodes.
 * Every name is resolved to its canonical variable (a list's field used by
 * its short name inside the list's section becomes "issues.headline"), so
 * the renderer needs no knowledge of vars.h.  Errors carry file:line:col,
 * the source line and a caret.  Structural errors (an unclosed tag or
 * section) stop the template; a bad name does not, so one load reports all
 * the names that are wrong.
 *
 * A partial ({{> name}}) is inlined as it is read: its text is tokenized
 * into the same node list, in the caller's open sections, with the
 * caller's audience, so it renders exactly as if it were written in place
 * and a partial used by a customer template meets the customer rules.  Its
 * errors carry the partial's own file:line:col and where it was included.
 *
 * Invariant: a template that compiled has balanced sections, every section
 * node's `end` set, and only names its audience may use.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comms/comms_int.h"
#include "comms/vars.h"
#include "util/buf.h"
#include "util/util.h"

/* A section that is open while its body is read. */
struct open_section {
    uint32_t node;    /* index of its node */
    size_t off;       /* offset of its "{{", for "unclosed" */
    const char *name; /* the name as written (points into the source) */
    size_t nlen;
    const char *list; /* canonical list variable when the section iterates one, else NULL */
};

/* A partial being read: where it was included from, to come back and for "included from". */
struct incl {
    const char *name; /* the partial's name as written (points into the including text) */
    size_t nlen;
    const char *file; /* the including source */
    const char *text;
    size_t len;
    size_t off; /* offset of the "{{>" in it */
};

/* Compiler state for one template. */
struct cc {
    const char *file; /* for diagnostics: the source being read (the template or a partial) */
    const char *text; /* that source (borrowed) */
    size_t len;
    comms__partial_fn find; /* finds partials; NULL: there are none */
    void *find_arg;
    struct incl incl[COMMS__PARTIAL_DEPTH]; /* the partials being read, outermost first */
    int nincl;
    struct buf *diag;
    int nerrors;
    struct comms_tmpl *t;
    size_t ncap;      /* allocated nodes */
    struct buf pool;  /* becomes t->pool */
    uint32_t barrier; /* text nodes before this index may not be extended */
    struct open_section open[COMMS__MAX_DEPTH];
    int depth;
};

const char *comms__audience_name(int a)
{
    static const char *const names[] = {
#define COMMS__AUD_STR(name) #name,
        COMMS_AUDIENCES(COMMS__AUD_STR)
#undef COMMS__AUD_STR
    };
    return a >= 0 && (size_t)a < ARRAY_SIZE(names) ? names[a] : NULL;
}

const char *comms__channel_name(int c)
{
    static const char *const names[] = {
#define COMMS__CHAN_STR(name) #name,
        COMMS_CHANNELS(COMMS__CHAN_STR)
#undef COMMS__CHAN_STR
    };
    return c >= 0 && (size_t)c < ARRAY_SIZE(names) ? names[c] : NULL;
}

/* ---- diagnostics ---- */

static int utf8_cont(char ch) { return ((unsigned char)ch & 0xC0) == 0x80; }

/* 1-based line and column (in characters) of byte offset `off` in text; returns the line's start.
 */
static size_t locate(const char *text, size_t len, size_t off, size_t *line, size_t *col)
{
    size_t ls = 0;
    *line = 1, *col = 1;
    if (off > len)
        off = len;
    for (size_t i = 0; i < off; i++)
        if (text[i] == '\n')
            ++*line, ls = i + 1;
    for (size_t i = ls; i < off; i++)
        if (!utf8_cont(text[i]))
            ++*col;
    return ls;
}

/*
 * "file:line:col: error: msg", the source line, and a caret under the
 * character at byte offset `off` -- the format of the rules module
 * (util/yaml.c's ydiag_at), with columns counted in characters so the caret
 * stays under the spot on lines with non-ASCII text (an em dash in a
 * subject).
 */
static void diag_at(struct cc *c, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void diag_at(struct cc *c, size_t off, const char *fmt, ...)
{
    size_t line, col, ls;
    if (off > c->len)
        off = c->len;
    ls = locate(c->text, c->len, off, &line, &col);
    buf_printf(c->diag, "%s:%zu:%zu: error: ", c->file, line, col);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(c->diag, fmt, ap);
    va_end(ap);
    /* Inside a partial: where it was included, innermost first. */
    for (int k = c->nincl; k-- > 0;) {
        const struct incl *in = &c->incl[k];
        size_t il, ic;
        locate(in->text, in->len, in->off, &il, &ic);
        buf_printf(c->diag, "%s %s:%zu:%zu", k == c->nincl - 1 ? " (included from" : ",", in->file,
                   il, ic);
    }
    if (c->nincl)
        buf_putc(c->diag, ')');
    size_t end = ls;
    while (end < c->len && c->text[end] != '\n' && c->text[end] != '\r')
        end++;
    buf_printf(c->diag, "\n    %.*s\n    ", (int)(end - ls), c->text + ls);
    for (size_t i = ls; i < off && i < end; i++)
        if (!utf8_cont(c->text[i]))
            buf_putc(c->diag, c->text[i] == '\t' ? '\t' : ' ');
    buf_puts(c->diag, "^\n");
    c->nerrors++;
}

/* ---- nodes ---- */

static uint32_t add_node(struct cc *c, int kind, const char *s, size_t n)
{
    struct comms_tmpl *t = c->t;
    if (kind == COMMS__TEXT && t->nnodes > c->barrier) {
        /* Extend the previous text node: text around a comment is one node. */
        struct comms__node *prev = &t->nodes[t->nnodes - 1];
        if (prev->kind == COMMS__TEXT && prev->str + prev->len == c->pool.len) {
            buf_append(&c->pool, s, n); /* cannot fail: the pool has no cap */
            prev->len += (uint32_t)n;
            return t->nnodes - 1;
        }
    }
    t->nodes = xgrow(t->nodes, &c->ncap, t->nnodes + 1, sizeof *t->nodes);
    struct comms__node *nd = &t->nodes[t->nnodes];
    nd->kind = (uint16_t)kind;
    nd->var = COMMS__DOT;
    nd->list = COMMS__NOLIST;
    nd->_pad = 0;
    nd->str = (uint32_t)c->pool.len;
    nd->len = (uint32_t)n;
    nd->end = 0;
    buf_append(&c->pool, s, n);
    return (uint32_t)t->nnodes++;
}

/*
 * A name node's variable as an id (NULL: {{.}}, or a name already reported),
 * so that rendering reads a typed context's slot without looking names up.
 */
static void set_var(struct cc *c, uint32_t node, const struct comms_var *v)
{
    struct comms__node *nd = &c->t->nodes[node];
    int id = v ? (int)(v - comms_vars) : -1, list = id >= 0 ? comms__var_list(id) : -1;
    nd->var = id >= 0 ? (uint16_t)id : COMMS__DOT;
    nd->list = list >= 0 ? (uint16_t)list : COMMS__NOLIST;
}

static void add_text(struct cc *c, size_t from, size_t to)
{
    if (to > from)
        add_node(c, COMMS__TEXT, c->text + from, to - from);
}

/* ---- names ---- */

/* Edit distance of two short strings (for "did you mean"); large when either is long. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest variable the audience may use, when it is close enough to be a typo. */
static const char *suggest(int audience, const char *name)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (const struct comms_var *v = comms_vars; v->name; v++) {
        if (audience == COMMS__AUD_customer && v->audiences != COMMS_VAR_CUST)
            continue;
        size_t d = distance(name, v->name);
        if (d < bestd)
            bestd = d, best = v->name;
    }
    return best;
}

static int name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.';
}

/* Letters, digits, '_', '-' and dots between non-empty parts. */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]) || (s[i] == '.' && s[i + 1] == '.'))
            return 0;
    return 1;
}

/* The list variable a dotted name is a field of ("issues" for "issues.headline"), or NULL. */
static const struct comms_var *list_of(const char *name)
{
    char tmp[128];
    size_t n = strlen(name);
    if (n >= sizeof tmp)
        return NULL;
    for (size_t i = n; i-- > 0;) {
        if (name[i] != '.')
            continue;
        memcpy(tmp, name, i);
        tmp[i] = '\0';
        if (comms_var_is_list(tmp))
            return comms_var_find(tmp);
    }
    return NULL;
}

/*
 * Resolve the name of a tag (at `off`) to its variable.  Inside a list's
 * section a field may be named short ("headline" in {{#issues}}); a list's
 * field anywhere else is an error, as is an internal variable in a
 * customer template.  Returns 0 and *out (NULL for "."), or -1 after
 * reporting the error.
 */
static int resolve_name(struct cc *c, const char *s, size_t n, size_t off, int section,
                        const struct comms_var **out)
{
    char name[128], tmp[260];
    *out = NULL;
    if (n == 1 && s[0] == '.') {
        if (c->depth == 0) {
            diag_at(c, off, "'{{.}}' is only meaningful inside a section");
            return -1;
        }
        return 0;
    }
    if (!name_ok(s, n) || n >= sizeof name) {
        diag_at(c, off, "bad name '%.*s' (letters, digits, '_', '-' and dots between them)", (int)n,
                s);
        return -1;
    }
    memcpy(name, s, n);
    name[n] = '\0';
    const struct comms_var *v = NULL;
    /* A field of an enclosing list, innermost first. */
    for (int i = c->depth; i-- > 0 && !v;) {
        if (!c->open[i].list)
            continue;
        snprintf(tmp, sizeof tmp, "%s.%s", c->open[i].list, name);
        v = comms_var_find(tmp);
    }
    if (!v) {
        v = comms_var_find(name);
        if (!v) {
            const char *hint = suggest(c->t->audience, name);
            if (hint)
                diag_at(c, off, "unknown variable '%s'; did you mean '%s'?", name, hint);
            else
                diag_at(c, off, "unknown variable '%s'", name);
            return -1;
        }
        const struct comms_var *list = list_of(v->name);
        if (list) {
            int inside = 0;
            for (int i = 0; i < c->depth; i++)
                inside |= c->open[i].list && !strcmp(c->open[i].list, list->name);
            if (!inside) {
                diag_at(c, off,
                        "'%s' is a field of the list '%s' and can only be used inside "
                        "{{#%s}}...{{/%s}}",
                        v->name, list->name, list->name, list->name);
                return -1;
            }
        }
    }
    if (c->t->audience == COMMS__AUD_customer && v->audiences != COMMS_VAR_CUST) {
        diag_at(c, off, "variable '%s' is internal and cannot be used in customer templates",
                v->name);
        return -1;
    }
    if (!section && comms_var_is_list(v->name)) {
        diag_at(c, off, "'%s' is a list: use {{#%s}}...{{/%s}} and its fields inside", v->name,
                v->name, v->name);
        return -1;
    }
    *out = v;
    return 0;
}

/* ---- tags ---- */

static int blank(char ch) { return ch == ' ' || ch == '\t'; }

/*
 * Tokenize text[start, end) into nodes.  `standalone` enables Mustache's
 * rule for the body: a line holding only a section, inverted, end or
 * comment tag (and blanks) vanishes with its newline.  Returns 0, or
 * FW_EPARSE for an error that leaves the structure unknown.
 */
static int include(struct cc *c, size_t op, const char *name, size_t nlen, int alone);

static int parse_range(struct cc *c, size_t start, size_t end, int standalone)
{
    const char *text = c->text;
    size_t pos = start, text_start = start, last_tag_end = start;
    int base = c->depth;
    for (;;) {
        const char *o = memmem(text + pos, end - pos, "{{", 2);
        if (!o) {
            add_text(c, text_start, end);
            break;
        }
        size_t op = (size_t)(o - text), cs = op + 2;
        char sigil = cs < end ? text[cs] : '\0';
        const char *cl = memmem(text + cs, end - cs, "}}", 2);
        if (!cl && sigil == '!') {
            diag_at(c, op, "unclosed comment: '{{!' without '}}'");
            return FW_EPARSE;
        }
        if (!cl || (sigil != '!' && memchr(text + cs, '\n', (size_t)(cl - (text + cs))))) {
            diag_at(c, op, "unclosed tag: '{{' without '}}' on the same line");
            return FW_EPARSE;
        }
        size_t ce = (size_t)(cl - text), q = ce + 2;
        if (sigil == '{' || sigil == '&' || sigil == '=') {
            diag_at(c, op,
                    "unsupported tag '{{%c': templates have variables, sections (#, ^, /), "
                    "partials (>) and comments (!) only",
                    sigil);
            return FW_EPARSE;
        }
        int kind = strchr("#^/!>", sigil) && sigil ? sigil : 0;
        size_t ns = kind ? cs + 1 : cs, ne = ce;
        while (ns < ne && (blank(text[ns]) || text[ns] == '\n' || text[ns] == '\r'))
            ns++;
        while (ne > ns && (blank(text[ne - 1]) || text[ne - 1] == '\n' || text[ne - 1] == '\r'))
            ne--;

        /* Standalone: blanks before the tag on its line, blanks then a newline (or the end) after.
         */
        size_t ls = op, resume = q;
        while (ls > start && text[ls - 1] != '\n')
            ls--;
        int alone = 0;
        if (standalone && kind && last_tag_end <= ls) {
            size_t i = ls;
            while (i < op && blank(text[i]))
                i++;
            size_t r = q;
            while (r < end && blank(text[r]))
                r++;
            if (i == op && (r == end || text[r] == '\n' ||
                            (text[r] == '\r' && r + 1 < end && text[r + 1] == '\n'))) {
                alone = 1;
                resume = r == end ? end : (text[r] == '\r' ? r + 2 : r + 1);
            }
        }
        add_text(c, text_start, alone ? ls : op);
        pos = text_start = last_tag_end = resume;

        if (kind == '!') {
            /* A comment ends at the first "}}": a tag inside would end it early. */
            const char *inner = memmem(text + cs, ce - cs, "{{", 2);
            if (inner) {
                diag_at(c, (size_t)(inner - text),
                        "'{{' inside a comment: the comment ends at the first '}}'");
                return FW_EPARSE;
            }
            continue;
        }
        if (ns == ne) {
            diag_at(c, op, "empty tag '%.*s'", (int)(q - op), text + op);
            continue;
        }
        const char *name = text + ns;
        size_t nlen = ne - ns;
        const struct comms_var *v;
        if (kind == '>') {
            int rc = include(c, op, name, nlen, alone);
            if (rc)
                return rc;
            continue;
        }
        if (kind == 0) {
            if (resolve_name(c, name, nlen, ns, 0, &v) == 0)
                set_var(c, add_node(c, COMMS__VAR, v ? v->name : ".", v ? strlen(v->name) : 1), v);
        } else if (kind == '#' || kind == '^') {
            if (c->depth == COMMS__MAX_DEPTH) {
                diag_at(c, op, "sections nested more than %d deep", COMMS__MAX_DEPTH);
                return FW_EPARSE;
            }
            int ok = resolve_name(c, name, nlen, ns, 1, &v) == 0;
            const char *canon = ok && v ? v->name : ".";
            struct open_section *os = &c->open[c->depth++];
            os->node =
                add_node(c, kind == '#' ? COMMS__SECTION : COMMS__INVERTED, canon, strlen(canon));
            set_var(c, os->node, ok ? v : NULL);
            os->off = op;
            os->name = name;
            os->nlen = nlen;
            os->list = ok && v && kind == '#' && comms_var_is_list(v->name) ? v->name : NULL;
        } else { /* '/' */
            if (c->depth == base) {
                diag_at(c, op, "'{{/%.*s}}' closes no open section", (int)nlen, name);
                return FW_EPARSE;
            }
            struct open_section *os = &c->open[c->depth - 1];
            if (os->nlen != nlen || memcmp(os->name, name, nlen)) {
                size_t line = 1;
                for (size_t i = 0; i < os->off; i++)
                    line += text[i] == '\n';
                diag_at(c, op, "'{{/%.*s}}' does not match the open section '%.*s' (line %zu)",
                        (int)nlen, name, (int)os->nlen, os->name, line);
                return FW_EPARSE;
            }
            c->t->nodes[os->node].end = (uint32_t)c->t->nnodes;
            c->barrier = (uint32_t)c->t->nnodes;
            c->depth--;
        }
    }
    if (c->depth > base) {
        struct open_section *os = &c->open[c->depth - 1];
        diag_at(c, os->off, "unclosed section '%.*s': no '{{/%.*s}}' before the end%s",
                (int)os->nlen, os->name, (int)os->nlen, os->name,
                !standalone ? " of the line"
                : c->nincl  ? " of the partial"
                            : " of the template");
        return FW_EPARSE;
    }
    return 0;
}

/* Tokenize a header value or the body into `part`. */
static int parse_part(struct cc *c, size_t start, size_t end, int standalone,
                      struct comms__part *part)
{
    part->first = (uint32_t)c->t->nnodes;
    c->barrier = part->first;
    int rc = parse_range(c, start, end, standalone);
    part->end = (uint32_t)c->t->nnodes;
    return rc;
}

/* A partial's name: letters, digits, '_' and '-' (it is a file name). */
static int partial_name_ok(const char *s, size_t n)
{
    int ok = n > 0 && n < 100;
    for (size_t i = 0; i < n && ok; i++)
        ok = name_char(s[i]) && s[i] != '.';
    return ok;
}

/*
 * {{> name}} at `op`: read the partial's text here, in the current open
 * sections.  On a line of its own (`alone`) the partial's lines replace
 * the tag's line; inside a line its final line break is dropped, so the
 * text goes on after it.  An unknown partial, a cycle or a bad name is
 * reported and compiling goes on; an error that leaves the structure
 * unknown (in the partial's text) stops it: FW_EPARSE.
 */
static int include(struct cc *c, size_t op, const char *name, size_t nlen, int alone)
{
    struct comms__partial p;
    if (!partial_name_ok(name, nlen)) {
        diag_at(c, op, "bad partial name '%.*s' (letters, digits, '_' and '-')", (int)nlen, name);
        return 0;
    }
    for (int k = 0; k < c->nincl; k++) {
        if (c->incl[k].nlen != nlen || memcmp(c->incl[k].name, name, nlen))
            continue;
        char chain[COMMS__PARTIAL_DEPTH * 104 + 104];
        size_t used = 0;
        for (int j = k; j < c->nincl && used < sizeof chain; j++)
            used += (size_t)snprintf(chain + used, sizeof chain - used, "%.*s -> ",
                                     (int)c->incl[j].nlen, c->incl[j].name);
        if (used < sizeof chain)
            snprintf(chain + used, sizeof chain - used, "%.*s", (int)nlen, name);
        diag_at(c, op, "the partial '%.*s' includes itself (%s)", (int)nlen, name, chain);
        return 0;
    }
    if (c->nincl == COMMS__PARTIAL_DEPTH) {
        diag_at(c, op, "partials nested more than %d deep", COMMS__PARTIAL_DEPTH);
        return 0;
    }
    if (!c->find || c->find(c->find_arg, name, nlen, &p)) {
        diag_at(c, op, "unknown partial '%.*s' (no file partials/%.*s.tmpl)", (int)nlen, name,
                (int)nlen, name);
        return 0;
    }
    size_t start = 0, plen = p.len;
    if (plen >= 3 && !memcmp(p.text, "\xEF\xBB\xBF", 3))
        start = 3;
    if (!alone && plen > start && p.text[plen - 1] == '\n')
        plen--;
    if (!alone && plen > start && p.text[plen - 1] == '\r')
        plen--;
    c->incl[c->nincl++] = (struct incl){name, nlen, c->file, c->text, c->len, op};
    c->file = p.file;
    c->text = p.text;
    c->len = plen;
    int rc = parse_range(c, start, plen, 1);
    struct incl *in = &c->incl[--c->nincl];
    c->file = in->file;
    c->text = in->text;
    c->len = in->len;
    if (!rc && c->pool.len + c->t->nnodes * sizeof *c->t->nodes > COMMS__EXPANDED_MAX) {
        diag_at(c, op, "the template is larger than %d KiB with its partials",
                COMMS__EXPANDED_MAX / 1024);
        rc = FW_EPARSE;
    }
    return rc;
}

/* ---- the path ---- */

static void join_names(char *out, size_t n, const char *(*name)(int))
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; name(i) && len < n; i++)
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? ", " : "", name(i));
}

static int lookup_name(const char *s, size_t n, const char *(*name)(int))
{
    for (int i = 0; name(i); i++)
        if (strlen(name(i)) == n && !memcmp(name(i), s, n))
            return i;
    return -1;
}

/* <audience>/<channel>/<name>.tmpl into t; errors name the file (a path has no line). */
static int parse_path(struct comms_tmpl *t, const char *file, const char *path, struct buf *diag)
{
    char expected[256];
    const char *s1 = strchr(path, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    size_t plen = strlen(path);
    if (!s1 || !s2 || strchr(s2 + 1, '/') || plen < 5 || strcmp(path + plen - 5, ".tmpl")) {
        buf_printf(diag,
                   "%s: error: a template's path must be <audience>/<channel>/<name>.tmpl, "
                   "not '%s'\n",
                   file, path);
        return FW_EPARSE;
    }
    t->audience = lookup_name(path, (size_t)(s1 - path), comms__audience_name);
    if (t->audience < 0) {
        join_names(expected, sizeof expected, comms__audience_name);
        buf_printf(diag, "%s: error: unknown audience '%.*s' in the path (expected one of %s)\n",
                   file, (int)(s1 - path), path, expected);
        return FW_EPARSE;
    }
    t->channel = lookup_name(s1 + 1, (size_t)(s2 - s1 - 1), comms__channel_name);
    if (t->channel < 0) {
        join_names(expected, sizeof expected, comms__channel_name);
        buf_printf(diag, "%s: error: unknown channel '%.*s' in the path (expected one of %s)\n",
                   file, (int)(s2 - s1 - 1), s1 + 1, expected);
        return FW_EPARSE;
    }
    const char *nm = s2 + 1;
    size_t nlen = plen - (size_t)(nm - path) - 5;
    int ok = nlen > 0;
    for (size_t i = 0; i < nlen; i++)
        ok &= name_char(nm[i]) && nm[i] != '.';
    if (!ok) {
        buf_printf(diag,
                   "%s: error: bad template name '%.*s' in the path (letters, digits, '_' and "
                   "'-')\n",
                   file, (int)nlen, nm);
        return FW_EPARSE;
    }
    t->key = xstrndup(path, plen - 5);
    t->name = xstrndup(nm, nlen);
    return 0;
}

/* ---- the header ---- */

/* Length of the line at p (excluding "\n" or "\r\n"), and where the next line starts. */
static size_t line_at(const char *text, size_t len, size_t p, size_t *next)
{
    size_t e = p;
    while (e < len && text[e] != '\n')
        e++;
    *next = e < len ? e + 1 : len;
    if (e > p && text[e - 1] == '\r')
        e--;
    return e - p;
}

static int is_rule(const char *s, size_t n)
{
    while (n > 3 && blank(s[n - 1]))
        n--;
    return n == 3 && !memcmp(s, "---", 3);
}

/* Length of a header key ("subject" in "subject: ..."), or 0 when the line is not `key:`. */
static size_t key_len(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    while (i < n && (name_char(s[i]) && s[i] != '.'))
        i++;
    return i < n && s[i] == ':' ? i : 0;
}

/* Whether a line `---` starts at or after pos. */
static int has_rule(const char *text, size_t len, size_t pos)
{
    while (pos < len) {
        size_t next, n = line_at(text, len, pos, &next);
        if (is_rule(text + pos, n))
            return 1;
        pos = next;
    }
    return 0;
}

/*
 * The header: `key: value` lines (blank lines allowed) up to a line `---`.
 * A file has one when its first line is `---`, is a known key,
 * or is some other `word:` with a line `---` further down (so a mistyped
 * key is reported, while a body that merely starts with "Note: ..." stays
 * a body).  Sets *body to where the body starts, or to SIZE_MAX when the
 * structure is unknown (the header never ends, or a header value has an
 * unclosed tag).  Returns 0 or FW_EPARSE.
 */
static int parse_header(struct cc *c, size_t pos, size_t *body)
{
    const char *text = c->text;
    size_t next, n = line_at(text, c->len, pos, &next), k = key_len(text + pos, n);
    int rc = 0;
    *body = pos;
    int known = (k == 7 && !memcmp(text + pos, "subject", 7)) ||
                (k == 5 && !memcmp(text + pos, "title", 5)) ||
                (k == 8 && !memcmp(text + pos, "headline", 8));
    if (!is_rule(text + pos, n) && !known && !(k && has_rule(text, c->len, next)))
        return 0; /* no header: the whole file is the body */
    while (pos < c->len) {
        n = line_at(text, c->len, pos, &next);
        if (is_rule(text + pos, n)) {
            *body = next;
            return rc;
        }
        k = key_len(text + pos, n);
        size_t i = pos + k + 1, e = pos + n;
        size_t b = 0;
        while (b < n && blank(text[pos + b]))
            b++;
        if (k == 0 && b == n) {
            pos = next;
            continue;
        }
        if (k == 0)
            break;
        struct comms__part *part = NULL;
        if (k == 7 && !memcmp(text + pos, "subject", 7))
            part = &c->t->subject;
        else if (k == 5 && !memcmp(text + pos, "title", 5))
            part = &c->t->title;
        else if (k == 8 && !memcmp(text + pos, "headline", 8))
            part = &c->t->headline;
        while (i < e && blank(text[i]))
            i++;
        while (e > i && blank(text[e - 1]))
            e--;
        if (!part) {
            diag_at(c, pos, "unknown header key '%.*s' (expected subject, title or headline)",
                    (int)k, text + pos);
            rc = FW_EPARSE;
        } else if (part->present) {
            diag_at(c, pos, "duplicate header key '%.*s'", (int)k, text + pos);
            rc = FW_EPARSE;
        } else if (i == e) {
            diag_at(c, pos, "the header '%.*s' is empty", (int)k, text + pos);
            rc = FW_EPARSE;
        } else {
            part->present = 1;
            if (parse_part(c, i, e, 0, part)) {
                *body = SIZE_MAX; /* structure unknown: stop here */
                return FW_EPARSE;
            }
        }
        pos = next;
    }
    diag_at(c, pos,
            "missing '---' after the header: a line '---' must separate the header "
            "(subject:, title:, headline:) from the body");
    *body = SIZE_MAX;
    return FW_EPARSE;
}

/* ---- the template ---- */

void comms_tmpl_free(struct comms_tmpl *t)
{
    if (!t)
        return;
    free(t->path);
    free(t->key);
    free(t->name);
    free(t->nodes);
    free(t->pool);
    free(t);
}

int comms__builtin_partial(void *arg, const char *name, size_t n, struct comms__partial *out)
{
    (void)arg;
    for (const struct comms_builtin *b = comms_builtins; b->path; b++) {
        if (strncmp(b->path, "partials/", 9) || strncmp(b->path + 9, name, n) ||
            strcmp(b->path + 9 + n, ".tmpl"))
            continue;
        *out = (struct comms__partial){b->path, b->text, strlen(b->text)};
        return 0;
    }
    return -1;
}

int comms_tmpl_compile(const char *file, const char *path, const char *text, size_t len,
                       struct comms_tmpl **out, struct buf *diag)
{
    return comms__compile(file, path, text, len, comms__builtin_partial, NULL, out, diag);
}

/* "partials/<name>.tmpl": checked as an internal text (every variable), no header. */
static int partial_path(struct comms_tmpl *t, const char *path)
{
    size_t plen = strlen(path);
    if (strncmp(path, "partials/", 9) || plen < 15 || strcmp(path + plen - 5, ".tmpl") ||
        !partial_name_ok(path + 9, plen - 14))
        return 0;
    t->audience = COMMS__AUD_l1;
    t->channel = COMMS__CHAN_internal_note;
    t->key = xstrndup(path, plen - 5);
    t->name = xstrndup(path + 9, plen - 14);
    return 1;
}

int comms__compile(const char *file, const char *path, const char *text, size_t len,
                   comms__partial_fn find, void *arg, struct comms_tmpl **out, struct buf *diag)
{
    struct cc c = {0};
    size_t body = 0, pos = 0;
    int rc = 0, partial;
    *out = NULL;
    if (!file)
        file = path;
    c.t = xcalloc(1, sizeof *c.t);
    c.t->path = xstrdup(file);
    c.file = file;
    c.text = text;
    c.len = len;
    c.diag = diag;
    c.find = find;
    c.find_arg = arg;
    buf_init(&c.pool, 0);
    partial = partial_path(c.t, path);
    if (!partial && (rc = parse_path(c.t, file, path, diag)))
        goto out;
    if (len > COMMS__SOURCE_MAX) {
        buf_printf(diag, "%s: error: template larger than %d KiB\n", file,
                   COMMS__SOURCE_MAX / 1024);
        rc = FW_EPARSE;
        goto out;
    }
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
        pos = 3; /* a byte-order mark from an editor */
    if (partial)
        body = pos; /* a partial is all body */
    else
        rc = parse_header(&c, pos, &body);
    if (body == SIZE_MAX)
        goto out;
    {
        size_t i = body;
        while (i < len && (blank(text[i]) || text[i] == '\n' || text[i] == '\r'))
            i++;
        if (i == len && !partial) {
            diag_at(&c, body, "the template body is empty");
            rc = FW_EPARSE;
        } else if (parse_part(&c, body, len, 1, &c.t->body)) {
            rc = FW_EPARSE;
        }
    }
    if ((c.t->channel == COMMS__CHAN_email || c.t->channel == COMMS__CHAN_ticket) &&
        !c.t->subject.present && !c.nerrors) {
        diag_at(&c, 0, "%s templates need a 'subject:' header", comms__channel_name(c.t->channel));
    }
    if (c.nerrors)
        rc = FW_EPARSE;
out:
    if (rc) {
        buf_cleanup(&c.pool);
        comms_tmpl_free(c.t);
        return rc;
    }
    c.t->poollen = c.pool.len;
    c.t->pool = buf_steal(&c.pool);
    *out = c.t;
    return 0;
}
