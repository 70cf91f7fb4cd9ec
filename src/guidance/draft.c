/*
 * draft.c -- a reply draft from a language model, or the template's
 * (draft.h).  The request carries the case as facts (who, what fired, the
 * SLA clocks, the template draft) and asks for a short reply in the
 * template's tone that claims nothing the facts do not say.  One attempt,
 * bounded by the timeout; the template is the answer on any failure.
 */
#include "guidance/draft.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/util.h"

#define RESPONSE_MAX (256 << 10)

void draft_config_init(struct draft_config *c)
{
    memset(c, 0, sizeof *c);
    c->timeout = 10 * FW_SECOND;
}

void draft_config_cleanup(struct draft_config *c)
{
    free(c->url);
    free(c->model);
    free(c->api_key_env);
    memset(c, 0, sizeof *c);
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    struct buf *b = ctx;
    size_t len = size * n;
    if (b->len + len > RESPONSE_MAX)
        return 0; /* too large: the transfer fails, the template answers */
    buf_append(b, data, len);
    return len;
}

/* The facts the model may use, as JSON text. */
static char *facts(json_t *doc, json_t *tmpl)
{
    json_t *f = json_object();
    static const char *const keys[] = {"customer",  "name",    "severity", "reason",
                                       "next_step", "signals", "tier",     "value",
                                       "opened_at", "status",  "sla"};
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        json_t *v = json_object_get(doc, keys[i]);
        if (v && !json_is_null(v))
            json_object_set(f, keys[i], v);
    }
    if (tmpl)
        json_object_set(f, "template_draft", tmpl);
    char *s = fw_json_dumps(f);
    json_decref(f);
    return s;
}

/* Ask the model; 0 and its text in *out, or non-zero with why in err. */
static int ask(const struct draft_config *c, const char *prompt, char **out, char *err, size_t n)
{
    const char *system =
        "You draft replies that a support agent will read and edit before sending. Write a "
        "short, warm, plain reply to the customer about the case described in JSON. Use only "
        "the facts given: never claim something happened that the facts do not say, never "
        "promise a time the facts do not give, and never mention internal ids, signal codes "
        "or severities. Keep the template draft's tone. Reply with the message body only.";
    json_t *req =
        json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:f}", "model",
                  c->model ? c->model : "default", "messages", "role", "system", "content", system,
                  "role", "user", "content", prompt, "temperature", 0.2);
    char *body = fw_json_dumps(req);
    json_decref(req);
    struct buf url, resp;
    buf_init(&url, 0);
    buf_init(&resp, 0);
    size_t ul = strlen(c->url);
    buf_printf(&url, "%.*s/chat/completions", (int)(ul && c->url[ul - 1] == '/' ? ul - 1 : ul),
               c->url);
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    const char *key = c->api_key_env ? getenv(c->api_key_env) : NULL;
    char auth[1024];
    if (key && *key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        hdr = curl_slist_append(hdr, auth);
    }
    curl_easy_setopt(h, CURLOPT_URL, url.data);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    int bad = 1;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(err, n, "the model did not answer within %lld ms", (long long)c->timeout);
    } else if (rc != CURLE_OK) {
        snprintf(err, n, "the model could not be reached: %s", curl_easy_strerror(rc));
    } else if (status != 200) {
        snprintf(err, n, "the model answered HTTP %ld", status);
    } else {
        json_t *j = json_loadb(resp.data ? resp.data : "", resp.len, 0, NULL);
        const char *text = json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"),
            "content"));
        if (!text || !*text) {
            snprintf(err, n, "the model's answer has no choices[0].message.content");
        } else {
            *out = xstrdup(text);
            bad = 0;
        }
        json_decref(j);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    buf_cleanup(&url);
    buf_cleanup(&resp);
    free(body);
    return bad;
}

json_t *draft_reply(const struct draft_config *c, json_t *doc, json_t *tmpl,
                    const char *instructions)
{
    json_t *subject = json_object_get(tmpl, "subject"), *body = json_object_get(tmpl, "body");
    json_t *out = json_pack("{s:s, s:O?, s:O?, s:O?}", "source", "template", "subject", subject,
                            "body", body, "template", tmpl);
    if (!c || !c->url) {
        json_object_set_new(out, "fallback_reason",
                            json_string("no drafting model is configured (drafting.url)"));
        return out;
    }
    char *f = facts(doc, tmpl);
    struct buf prompt;
    buf_init(&prompt, 0);
    buf_printf(&prompt, "Case facts: %s", f);
    if (instructions && *instructions)
        buf_printf(&prompt, "\nThe agent asks: %s", instructions);
    char *text = NULL, err[256] = "";
    if (ask(c, prompt.data, &text, err, sizeof err)) {
        json_object_set_new(out, "fallback_reason", json_string(err));
    } else {
        json_t *t = json_string(text);
        if (!t) {
            json_object_set_new(out, "fallback_reason",
                                json_string("the model's answer is not valid UTF-8"));
        } else {
            json_object_set_new(out, "source", json_string("model"));
            json_object_set_new(out, "model", json_string(c->model ? c->model : "default"));
            json_object_set_new(out, "body", t);
        }
    }
    free(text);
    free(f);
    buf_cleanup(&prompt);
    return out;
}
