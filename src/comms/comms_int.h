/*
 * comms_int.h -- what the template compiler, renderer and loader share:
 * the compiled form of a template.
 *
 * A template compiles to one flat array of nodes.  Text and names live in
 * one string pool owned by the template, so the source can be freed after
 * loading.  A section node records the index just past its matching end,
 * so rendering skips a false section in one step and needs no end nodes.
 * The header values (subject, title, headline) and the body are node
 * ranges of that array.
 */
#ifndef FW_COMMS_INT_H
#define FW_COMMS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "comms/comms.h"
#include "util/buf.h"

/* Sections nest at most this deep; the renderer's context stack is sized by it. */
#define COMMS__MAX_DEPTH 16

/* Template sources larger than this are refused at load. */
#define COMMS__SOURCE_MAX (256 * 1024)

/* Partials include partials at most this deep (a cycle is reported long before). */
#define COMMS__PARTIAL_DEPTH 8

/*
 * A template's compiled text with its partials inlined may be at most this
 * large: a partial included twice by a partial included twice, eight deep,
 * must not turn a small file into a huge one.
 */
#define COMMS__EXPANDED_MAX (1024 * 1024)

/* A partial's source, as a finder hands it to the compiler (borrowed). */
struct comms__partial {
    const char *file; /* names it in diagnostics, e.g. templates/partials/signature.tmpl */
    const char *text;
    size_t len;
};

/*
 * Find the partial `name` (n bytes, not NUL-terminated) for {{> name}}:
 * 0 and *out, or -1 when there is none.  `arg` is the finder's own.
 */
typedef int (*comms__partial_fn)(void *arg, const char *name, size_t n, struct comms__partial *out);

/*
 * comms_tmpl_compile with partials found through find(arg, ...) (find may
 * be NULL: no partials).  A path "partials/<name>.tmpl" compiles the
 * partial on its own as an internal text without a header, which checks
 * its syntax, its names and its own includes (loading does this for a
 * partial no template includes).
 */
int comms__compile(const char *file, const char *path, const char *text, size_t len,
                   comms__partial_fn find, void *arg, struct comms_tmpl **out, struct buf *diag);

/* The built-in partials, for comms_tmpl_compile: a comms__partial_fn over comms_builtins. */
int comms__builtin_partial(void *arg, const char *name, size_t n, struct comms__partial *out);

enum comms__node_kind {
    COMMS__TEXT,     /* literal text */
    COMMS__VAR,      /* {{name}} */
    COMMS__SECTION,  /* {{#name}} ... {{/name}} */
    COMMS__INVERTED, /* {{^name}} ... {{/name}} */
};

/* A node's var for {{.}}, and its list when the variable is no list's field. */
#define COMMS__DOT 0xffff
#define COMMS__NOLIST 0xffff

struct comms__node {
    uint16_t kind; /* enum comms__node_kind */
    uint16_t var;  /* names: the variable's id (enum comms_var_id), or COMMS__DOT */
    uint16_t list; /* names: the list the variable is a field of, or COMMS__NOLIST */
    uint16_t _pad;
    uint32_t str; /* offset in the pool: the text, or the canonical name */
    uint32_t len; /* its length */
    uint32_t end; /* sections: index of the first node after the section */
};

/*
 * A value as rendering sees it, from a typed context or converted from
 * JSON.  Kinds render and test as the JSON values they stand for: ABSENT
 * and NULL as nothing and false, STR as itself (true unless empty), INT and
 * REAL as numbers (always true), LIST and JARRAY (a JSON array) true unless
 * empty, OBJECT (a JSON object, or a typed list's element) as nothing but true.
 */
enum comms__vkind {
    COMMS__ABSENT, /* zero: a fresh slot */
    COMMS__NULL,
    COMMS__STR,
    COMMS__INT,
    COMMS__REAL,
    COMMS__TRUE,
    COMMS__FALSE,
    COMMS__LIST,
    COMMS__JARRAY,
    COMMS__OBJECT,
};

struct comms__value {
    uint32_t kind; /* enum comms__vkind */
    uint32_t len;  /* STR: bytes; LIST: elements */
    union {
        const char *s;                    /* STR: NUL-terminated */
        long long i;                      /* INT */
        double d;                         /* REAL */
        const struct comms__value *items; /* LIST: len elements of comms__var_nfields() fields */
    } u;
};

/* vars.c: the list a variable is a field of (COMMS_V_issues for issues.headline), or -1. */
int comms__var_list(int id);
/* The number of fields of a list variable (they follow it in vars.h), 0 for others. */
size_t comms__var_nfields(int list);

/* The root values of a typed context (ctx.c), for the renderer. */
const struct comms__value *comms__ctx_values(const struct comms_ctx *c);

/*
 * A dotted name inside a JSON object as rendering looks it up (render.c): a
 * key holding the whole remaining name wins, else the first part selects a
 * nested object.  Borrowed; NULL when a step is missing.
 */
json_t *comms__json_path(json_t *obj, const char *p, size_t n);

/*
 * The typed context that renders every template exactly as JSON context j
 * does (ctx.c; j NULL: empty), for tests and the fuzz harness to compare the
 * two.  FW_EINVAL when j holds something a typed context has no form for:
 * a non-integral number, an object or array where a variable's value is,
 * a list element key that is not one of the list's fields or a field that
 * is not a string.  Returns 0 and *out (comms_ctx_free), or the error and
 * *out NULL.
 */
int comms__ctx_from_json(json_t *j, struct comms_ctx **out);

/* A range of nodes: [first, end). */
struct comms__part {
    uint32_t first, end;
    int present; /* the header had this key; the body is always present */
};

enum comms__audience {
#define COMMS__AUD_ENUM(name) COMMS__AUD_##name,
    COMMS_AUDIENCES(COMMS__AUD_ENUM)
#undef COMMS__AUD_ENUM
        COMMS__AUD_COUNT
};

enum comms__channel {
#define COMMS__CHAN_ENUM(name) COMMS__CHAN_##name,
    COMMS_CHANNELS(COMMS__CHAN_ENUM)
#undef COMMS__CHAN_ENUM
        COMMS__CHAN_COUNT
};

struct comms_tmpl {
    char *path;   /* as shown in explanations, e.g. templates/customer/email/SIG-001.tmpl */
    char *key;    /* audience/channel/name, the lookup key */
    char *name;   /* the name part of key */
    int audience; /* enum comms__audience */
    int channel;  /* enum comms__channel */
    struct comms__part subject, title, headline, body;
    struct comms__node *nodes;
    size_t nnodes;
    char *pool; /* text and names; not NUL-separated, nodes carry lengths */
    size_t poollen;
};

/* Names of the enums above; NULL when out of range. */
const char *comms__audience_name(int a);
const char *comms__channel_name(int c);

#endif
