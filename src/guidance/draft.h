/*
 * draft.h -- an optional helper for the agent's reply: a language model
 * behind an OpenAI-compatible endpoint (POST {base}/chat/completions) asked
 * for a draft grounded in the case.  Never a dependency: without one
 * configured, or when it is slow or fails, the template draft forewarn
 * decided for the case is the answer, and the reply says why.
 */
#ifndef FW_GUIDANCE_DRAFT_H
#define FW_GUIDANCE_DRAFT_H

#include <jansson.h>
#include <stdint.h>

struct draft_config {
    char *url;         /* base URL, e.g. http://127.0.0.1:11434/v1; NULL: no model */
    char *model;       /* model name sent in the request */
    char *api_key_env; /* the environment variable holding the key (NULL: none sent) */
    int64_t timeout;   /* ms (default 10s) */
};

void draft_config_init(struct draft_config *c);
void draft_config_cleanup(struct draft_config *c);

/*
 * A draft for the case: {"source": "model"|"template", "subject", "body",
 * "template": {...}, "model"?, "fallback_reason"?}.  doc is the case
 * document; tmpl the template draft ({"subject", "body"}, or NULL when none
 * was decided); instructions the agent's words (may be NULL).
 */
json_t *draft_reply(const struct draft_config *c, json_t *doc, json_t *tmpl,
                    const char *instructions);

#endif
