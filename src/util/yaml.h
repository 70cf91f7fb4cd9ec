/*
 * yaml.h -- small helpers over libyaml's document API shared by the
 * rule-pack loader and the rule-test loader: typed access to mapping
 * entries, and diagnostics in the house format (file:line:col, the source
 * line, a caret).
 */
#ifndef FW_UTIL_YAML_H
#define FW_UTIL_YAML_H

#include <jansson.h>
#include <stddef.h>
#include <yaml.h>

#include "util/buf.h"

/* A loaded YAML file plus what diagnostics need. */
struct ydoc {
    const char *name; /* for messages; borrowed */
    const char *text; /* the source; borrowed */
    size_t len;
    yaml_document_t doc;
    int loaded;
};

/*
 * Parse text into d.  On a syntax error appends a diagnostic to `diag`
 * and returns FW_EPARSE; d must still be released with ydoc_cleanup.
 */
int ydoc_load(struct ydoc *d, const char *name, const char *text, size_t len, struct buf *diag);
void ydoc_cleanup(struct ydoc *d);
yaml_node_t *ydoc_root(struct ydoc *d);
yaml_node_t *ydoc_node(struct ydoc *d, int id);

/*
 * Append "name:line:col: error: msg" + source line + caret to diag.
 * line and col are 0-based (libyaml marks).
 */
void ydiag_at(struct buf *diag, const char *name, const char *text, size_t len, size_t line,
              size_t col, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* The same at a node's start mark. */
void ydiag(struct ydoc *d, struct buf *diag, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Scalar text of a node, or NULL when it is not a scalar. */
const char *yscalar(const yaml_node_t *n);
/* Lookup a key in a mapping node; NULL when absent or n is not a mapping. */
yaml_node_t *ymap_get(struct ydoc *d, yaml_node_t *n, const char *key);
/* A plain (unquoted) scalar? Used to tell numbers and booleans from strings. */
int yplain(const yaml_node_t *n);

/* Convert a node to JSON: plain scalars that read as numbers, true/false, null become those. */
json_t *yaml_to_json(struct ydoc *d, yaml_node_t *n);

#endif
