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
 * Header keys: `subject` (email, ticket, slack title), `title` (push).
 * Templates are found by (audience, channel, name) from the path
 * <dir>/<audience>/<channel>/<name>.tmpl; `name` is a signal id ("SIG-001"),
 * a merged/outreach/follow-up kind ("merged", "followup_major", ...) or
 * "default".  The built-in set (templates/ in the repository) is compiled
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
 * under dir, which replaces the built-in of the same path.  All errors are
 * appended to diag as "file:line:col: error: ..." with the source line and
 * a caret; returns 0 or FW_EPARSE (nothing loaded then).
 */
int comms_load(const char *dir, struct comms **out, struct buf *diag);
void comms_free(struct comms *c);

/*
 * Find a template for (audience, channel, name), falling back to
 * (audience, channel, "default").  NULL when neither exists.
 */
const struct comms_tmpl *comms_find(const struct comms *c, const char *audience,
                                    const char *channel, const char *name);

/* A rendered message; strings owned by the struct (comms_rendered_cleanup). */
struct comms_rendered {
    char *subject; /* may be NULL when the template has none */
    char *title;   /* may be NULL */
    char *text;    /* the body as plain text */
    char *html;    /* the body as HTML (email): escaped text in paragraphs and lists */
};

/*
 * Render with a context object whose fields are the variables.  Rendered
 * output is capped (64 KiB); returns 0 or FW_ETOOBIG.
 */
int comms_render(const struct comms_tmpl *t, json_t *ctx, struct comms_rendered *out);
void comms_rendered_cleanup(struct comms_rendered *r);

/* The template's file, for explanations ("templates/customer/email/SIG-001.tmpl"). */
const char *comms_tmpl_path(const struct comms_tmpl *t);

/*
 * The variables an audience's templates may use, as a NULL-terminated array
 * of dotted names ("customer.first_name", "issues" (list), "issues.name").
 * Used by the loader, the docs and the orchestrator's context builder.
 */
const char *const *comms_variables(const char *audience);

/* Embedded built-in templates: a generated table of (path, text). */
struct comms_builtin {
    const char *path; /* relative, e.g. "customer/email/SIG-001.tmpl" */
    const char *text;
};
extern const struct comms_builtin comms_builtins[]; /* terminated by {NULL, NULL} */

#endif
