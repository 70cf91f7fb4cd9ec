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

struct comms__node {
    uint32_t kind; /* enum comms__node_kind */
    uint32_t str;  /* offset in the pool: the text, or the name as written */
    uint32_t len;  /* its length */
    uint32_t end;  /* sections: index of the first node after the section */
};

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
