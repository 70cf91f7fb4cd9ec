/*
 * yaml.c -- libyaml document helpers and caret diagnostics.
 */
#include "util/yaml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

void ydiag_at(struct buf *diag, const char *name, const char *text, size_t len, size_t line,
              size_t col, const char *fmt, ...)
{
    va_list ap;
    buf_printf(diag, "%s:%zu:%zu: error: ", name, line + 1, col + 1);
    va_start(ap, fmt);
    buf_vprintf(diag, fmt, ap);
    va_end(ap);
    buf_putc(diag, '\n');
    /* Quote the source line with a caret under the column. */
    size_t i = 0, l = 0;
    while (i < len && l < line) {
        if (text[i++] == '\n')
            l++;
    }
    if (i >= len && !(i == len && l == line))
        return;
    size_t end = i;
    while (end < len && text[end] != '\n' && text[end] != '\r')
        end++;
    buf_printf(diag, "    %.*s\n    ", (int)(end - i), text + i);
    for (size_t c = 0; c < col && i + c < end; c++)
        buf_putc(diag, text[i + c] == '\t' ? '\t' : ' ');
    buf_puts(diag, "^\n");
}

void ydiag(struct ydoc *d, struct buf *diag, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t line = n ? n->start_mark.line : 0, col = n ? n->start_mark.column : 0;
    ydiag_at(diag, d->name, d->text, d->len, line, col, "%s", msg);
}

int ydoc_load(struct ydoc *d, const char *name, const char *text, size_t len, struct buf *diag)
{
    yaml_parser_t p;
    memset(d, 0, sizeof *d);
    d->name = name;
    d->text = text;
    d->len = len;
    if (!yaml_parser_initialize(&p))
        abort();
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int ok = yaml_parser_load(&p, &d->doc);
    if (!ok) {
        ydiag_at(diag, name, text, len, p.problem_mark.line, p.problem_mark.column,
                 "YAML syntax: %s%s%s", p.problem ? p.problem : "error",
                 p.context ? " " : "", p.context ? p.context : "");
        yaml_parser_delete(&p);
        return FW_EPARSE;
    }
    d->loaded = 1;
    yaml_parser_delete(&p);
    if (!yaml_document_get_root_node(&d->doc)) {
        ydiag_at(diag, name, text, len, 0, 0, "the file is empty");
        return FW_EPARSE;
    }
    return 0;
}

void ydoc_cleanup(struct ydoc *d)
{
    if (d->loaded)
        yaml_document_delete(&d->doc);
    d->loaded = 0;
}

yaml_node_t *ydoc_root(struct ydoc *d)
{
    return yaml_document_get_root_node(&d->doc);
}

yaml_node_t *ydoc_node(struct ydoc *d, int id)
{
    return yaml_document_get_node(&d->doc, id);
}

const char *yscalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int yplain(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

yaml_node_t *ymap_get(struct ydoc *d, yaml_node_t *n, const char *key)
{
    if (!n || n->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *k = yscalar(ydoc_node(d, p->key));
        if (k && strcmp(k, key) == 0)
            return ydoc_node(d, p->value);
    }
    return NULL;
}

json_t *yaml_to_json(struct ydoc *d, yaml_node_t *n)
{
    if (!n)
        return json_null();
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        const char *s = yscalar(n);
        size_t len = n->data.scalar.length;
        if (yplain(n)) {
            if (!strcmp(s, "true"))
                return json_true();
            if (!strcmp(s, "false"))
                return json_false();
            if (!strcmp(s, "null") || !strcmp(s, "~") || len == 0)
                return json_null();
            char *end;
            double v = strtod(s, &end);
            if (len && end == s + len && ((s[0] >= '0' && s[0] <= '9') || s[0] == '-')) {
                /* JSON has no infinity (json_real would fail and the value vanish): keep the text. */
                if (!isfinite(v))
                    return json_stringn(s, len);
                errno = 0;
                long long iv = strtoll(s, &end, 10);
                if (end == s + len && errno != ERANGE)
                    return json_integer(iv);
                return json_real(v); /* a fraction, an exponent, or too big for an integer */
            }
        }
        return json_stringn(s, len);
    }
    case YAML_SEQUENCE_NODE: {
        json_t *a = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++)
            json_array_append_new(a, yaml_to_json(d, ydoc_node(d, *it)));
        return a;
    }
    case YAML_MAPPING_NODE: {
        json_t *o = json_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            const char *k = yscalar(ydoc_node(d, p->key));
            if (k)
                json_object_set_new(o, k, yaml_to_json(d, ydoc_node(d, p->value)));
        }
        return o;
    }
    default:
        return json_null();
    }
}
