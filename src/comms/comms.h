/*
 * comms.h -- message templates: plain files a user edits, rendered with a
 * small logic-less syntax (Mustache's core):
 *
 *     {{name}}            a variable (dotted paths: {{customer.first_name}})
 *     {{#name}}..{{/name}} a section: shown when name is present and truthy;
 *                          repeated for each element when name is a list
 *                          (inside, {{.}} is the element, or its fields by name)
 *     {{^name}}..{{/name}} an inverted section: shown when name is absent,
 *                          false, null, "" or an empty list
 *     {{! comment }}      nothing
 *
 * A template file has a header, a line `---`, then the body:
 *
 *     subject: Your {{brand.name}} eSIM is ready to install
 *     ---
 *     Hi {{customer.first_name}},
 *     ...
 *
 * Header keys: `subject` (email, ticket, slack title), `title` (push, in-app),
 * `headline` (a one-line description of the problem for lists of merged
 * problems: "Your eSIM activation failed on our side").  Each is a
 * template itself, rendered on one line.
 * Templates are found by (audience, channel, name) from the path
 * <dir>/<audience>/<channel>/<name>.tmpl; `name` is a signal id ("SIG-001"),
 * a merged/outreach/follow-up kind ("merged", "issue_alert",
 * "followup_relationship_repair", ...) or "default".  docs/templates.md
 * has the syntax in full and the shipped set.  The built-in set (templates/ in the repository) is compiled
 * into the binary; a configured directory overrides it file by file.
 *
 * Every variable a template names is checked at load time against the
 * variables its audience may see (comms_variables); an unknown one is an
 * error with file:line:col.  Customer-facing templates cannot name
 * internal-only variables (team, root cause, ids of internal systems), so
 * internal detail cannot reach external text by template.
 */
#ifndef FW_COMMS_H
#define FW_COMMS_H

#include <jansson.h>
#include <stddef.h>

#include "comms/vars.h"
#include "util/buf.h"

/* Audiences and channels, as named in the API and replay output. */
#define COMMS_AUDIENCES(X) X(customer) X(l1) X(l2) X(chatbot) X(engineering)
#define COMMS_CHANNELS(X)                                                                          \
    X(email) X(sms) X(push) X(in_app) X(ticket_reply) X(internal_note) X(ticket) X(slack)          \
        X(chatbot) X(webhook)

struct comms;      /* a loaded template set */
struct comms_tmpl; /* one compiled template */

/*
 * Load the built-in templates, then (when dir != NULL) every *.tmpl file
 * under dir, walked recursively, which replaces the built-in of the same
 * relative path; other files and dot-files are ignored.  All errors are
 * appended to diag as "file:line:col: error: ..." with the source line and
 * a caret (errors about a path or an unreadable file have no line); one
 * call reports every broken file.  Returns 0 and *out (comms_free), or
 * FW_EPARSE (a template is wrong) or FW_EIO (dir or a file cannot be read)
 * with *out == NULL: nothing is loaded then.  A loaded set is read-only, so
 * any thread may find and render with it concurrently.
 */
int comms_load(const char *dir, struct comms **out, struct buf *diag);
/* Free a set and its templates; NULL is fine. */
void comms_free(struct comms *c);

/*
 * Find a template for (audience, channel, name), falling back to
 * (audience, channel, "default").  NULL when neither exists.
 */
const struct comms_tmpl *comms_find(const struct comms *c, const char *audience,
                                    const char *channel, const char *name);

/* A rendered message; strings owned by the struct (comms_rendered_cleanup). */
struct comms_rendered {
    char *subject;  /* may be NULL when the template has none */
    char *title;    /* may be NULL */
    char *text;     /* the body as plain text */
    char *html;     /* the body as HTML (email): escaped text in paragraphs and lists */
    char *headline; /* may be NULL: the template's one-line, customer-facing description of
                       the problem, for issues.headline when several problems are merged */
};

/* The cap on each rendered part (subject, title, headline, text); html derives from the text. */
#define COMMS_RENDER_MAX (64 * 1024)

/*
 * Render with a context object whose fields are the variables: nested
 * objects ({"customer": {"first_name": "Jodi"}}) or flat dotted keys
 * ({"customer.first_name": "Jodi"}); ctx may be NULL (everything absent).
 * Strings render as-is, integral numbers as integers, booleans as
 * true/false, null and absent values as "".  The text is tidied: trailing
 * blanks are cut from every line, runs of blank lines become one, and the
 * text starts and ends with a non-blank line.  subject, title and headline
 * are one line each.  html is set for the email channel only (comms_text_to_html).
 * Rendered output is capped (COMMS_RENDER_MAX per part); returns 0, or
 * FW_ETOOBIG with *out empty.  The caller owns *out (comms_rendered_cleanup).
 */
int comms_render(const struct comms_tmpl *t, json_t *ctx, struct comms_rendered *out);
/* comms_render without the email's HTML part (out->html stays NULL): for readers of the text only. */
int comms_render_text(const struct comms_tmpl *t, json_t *ctx, struct comms_rendered *out);
void comms_rendered_cleanup(struct comms_rendered *r);

/*
 * Only the one-line headline (or, without one, the subject): for lists of
 * problems, without rendering the body.  *out (caller frees) is NULL when the
 * template has neither.  Returns 0 or FW_ETOOBIG.
 */
int comms_render_headline(const struct comms_tmpl *t, json_t *ctx, char **out);

/*
 * A typed template context: one slot per variable of vars.h, addressed by
 * its id (COMMS_V_customer_first_name), which is what the compiler resolves
 * every name of a template to.  Rendering with it reads a slot per name
 * (no hash probes, no JSON tree); it renders exactly as the JSON context
 * with the same values would: strings as-is, integers, true/false, absent
 * as "", the same truthiness and the same list semantics.  Strings are
 * copied into the context (one allocation per context, grown in blocks).
 * Filled and read by one thread at a time; freed with comms_ctx_free.
 */
enum comms_var_id {
#define COMMS__VAR_ID(id, name, who, desc) COMMS_V_##id,
    COMMS_VARS(COMMS__VAR_ID)
#undef COMMS__VAR_ID
        COMMS_NVARS
};

struct comms_ctx;

/* A context with every variable absent; never NULL. */
struct comms_ctx *comms_ctx_new(void);
/* Free a context, its strings and lists; NULL is fine. */
void comms_ctx_free(struct comms_ctx *c);
/* The id of the variable with this dotted name (n bytes), or -1 when there is none. */
int comms_var_id(const char *name, size_t n);

/*
 * Set a variable that is not a list's field (those are set per element,
 * below); ids out of range and list fields are ignored.  set_str copies s
 * and, as a JSON string would, refuses text that is not valid UTF-8 (the
 * variable keeps its value); NULL sets nothing.  set_valid copies n bytes
 * without the check, for text already validated (state values checked at
 * ingest, the code's own ASCII words).
 */
void comms_ctx_set_str(struct comms_ctx *c, int id, const char *s);
void comms_ctx_set_valid(struct comms_ctx *c, int id, const char *s, size_t n);
void comms_ctx_set_int(struct comms_ctx *c, int id, long long v);
void comms_ctx_set_bool(struct comms_ctx *c, int id, int v);
/* Make a variable absent again. */
void comms_ctx_unset(struct comms_ctx *c, int id);
/*
 * Make list variable `list` (COMMS_V_issues) a list of n elements whose
 * fields are all absent, then set field `field` (COMMS_V_issues_headline) of
 * element i with comms_ctx_item_str (copied, UTF-8 checked as set_str).
 */
void comms_ctx_set_list(struct comms_ctx *c, int list, size_t n);
void comms_ctx_item_str(struct comms_ctx *c, int field, size_t i, const char *s);

/* A variable's text when it is a string, else NULL; owned by the context. */
const char *comms_ctx_str(const struct comms_ctx *c, int id);
/* A variable's integer (0 when it is not one). */
long long comms_ctx_int(const struct comms_ctx *c, int id);
/* Field `field` of element i of its list when it is a string, else NULL. */
const char *comms_ctx_item(const struct comms_ctx *c, int field, size_t i);

/* comms_render, comms_render_text and comms_render_headline with a typed context. */
int comms_render_ctx(const struct comms_tmpl *t, const struct comms_ctx *ctx,
                     struct comms_rendered *out);
int comms_render_text_ctx(const struct comms_tmpl *t, const struct comms_ctx *ctx,
                          struct comms_rendered *out);
int comms_render_headline_ctx(const struct comms_tmpl *t, const struct comms_ctx *ctx, char **out);

/* The template's file, for explanations ("templates/customer/email/SIG-001.tmpl"). */
const char *comms_tmpl_path(const struct comms_tmpl *t);
/* Its audience, channel and name as in the path ("customer", "email", "SIG-001"). */
const char *comms_tmpl_audience(const struct comms_tmpl *t);
const char *comms_tmpl_channel(const struct comms_tmpl *t);
const char *comms_tmpl_name(const struct comms_tmpl *t);

/* The loaded templates in load order (built-ins by path, then new files); NULL past the end. */
const struct comms_tmpl *comms_tmpl_at(const struct comms *c, size_t i);

/*
 * Compile one template on its own (tests, `check` tools, previews).  `path`
 * is its relative path <audience>/<channel>/<name>.tmpl, which decides the
 * variables it may use; `file` names it in diagnostics (NULL: path).
 * Errors are appended to diag as comms_load does; returns 0 and *out (free
 * with comms_tmpl_free), or FW_EPARSE and *out == NULL.
 */
int comms_tmpl_compile(const char *file, const char *path, const char *text, size_t len,
                       struct comms_tmpl **out, struct buf *diag);
/* Free a template from comms_tmpl_compile (never one owned by a set); NULL is fine. */
void comms_tmpl_free(struct comms_tmpl *t);

/*
 * Plain text to an HTML document: the text HTML-escaped, blank-line
 * separated blocks as <p> (single line breaks as <br>), runs of lines
 * starting "- " as <ul><li>, runs starting "1. " (any number) as <ol><li>,
 * http(s) URLs as links, and `title` (may be NULL) as the <title>.  Used
 * for email, and again when an approver edits a message's text.  Returns 0
 * and *out (caller frees), or FW_ETOOBIG when text exceeds COMMS_RENDER_MAX.
 */
int comms_text_to_html(const char *title, const char *text, char **out);

/*
 * The variables an audience's templates may use, as a NULL-terminated array
 * of dotted names ("customer.first_name", "issues" (list), "issues.name").
 * Used by the loader, the docs and the orchestrator's context builder.
 */
const char *const *comms_variables(const char *audience);

/* One variable of vars.h, for tools and docs. */
struct comms_var {
    const char *name;        /* dotted name, e.g. "customer.first_name" */
    int audiences;           /* COMMS_VAR_CUST or COMMS_VAR_INT (vars.h) */
    const char *description; /* one line, for the docs */
};
extern const struct comms_var comms_vars[]; /* every COMMS_VARS entry; ends with {NULL, 0, NULL} */

/* The entry for a name, or NULL when it is not a variable. */
const struct comms_var *comms_var_find(const char *name);
/* Whether a variable is a list (other variables are its fields: issues, issues.headline). */
int comms_var_is_list(const char *name);

/*
 * Set the tone variables for a touch-count band: tone.level = level
 * (clamped to 1..4) and exactly one of tone.helpful, tone.empathetic,
 * tone.apologetic, tone.urgent true, the others false.  ctx is an object;
 * nested "tone" is created when missing.
 */
void comms_context_set_tone(json_t *ctx, int level);

/*
 * A context with every variable set to a plausible value (Jodi Example,
 * jodi@example.com, SIG-002 merged with SIG-008, tone level 1), for tests,
 * docs and previews.  New reference; the caller decrefs.
 */
json_t *comms_sample_context(void);

/* Embedded built-in templates: a generated table of (path, text). */
struct comms_builtin {
    const char *path; /* relative, e.g. "customer/email/SIG-001.tmpl" */
    const char *text;
};
extern const struct comms_builtin comms_builtins[]; /* terminated by {NULL, NULL} */

#endif
