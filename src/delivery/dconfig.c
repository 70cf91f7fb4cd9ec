/*
 * dconfig.c -- the `connectors:` section of the configuration file, and
 * secrets from the environment.
 *
 *     connectors:
 *       email:   {url: smtp://127.0.0.1:2525, from: alerts@example.com, from_name: Example,
 *                 username: ..., password: ..., unsubscribe_mailto: unsubscribe@example.com}
 *       sms:     {base_url: https://api.twilio.com, account_sid: AC..., auth_token: ..., from: "+1..."}
 *       slack:   {webhook_url: https://hooks.slack.com/services/...}
 *       zendesk: {base_url: https://example.zendesk.com, email: agent@example.com, api_token: ...}
 *       webhook: {url: https://..., secret: whsec_...}
 *       push:    {url: https://..., token: ...}
 *       chatbot: {url: https://..., secret: whsec_...}
 *       retry:   {backoff_base: 1s, backoff_max: 10m, retry_for: 24h, max_attempts: 0,
 *                 timeout: 10s, clock: wall, probe_interval: 5m}
 *
 * Every mistake is reported at its place (file:line:col, the line, a
 * caret) and parsing goes on, so one run lists them all.  A connector is
 * configured when its section is present; a present section must be
 * complete (a secret may be left to its environment variable).
 */
#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/delivery.h"
#include "util/yaml.h"
#include "util/fwtime.h"
#include "util/util.h"

void delivery_config_init(struct delivery_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_attempts = 0;
    c->backoff_base = 1000;
    c->backoff_max = 10 * FW_MINUTE;
    c->retry_for = FW_DAY;
    c->timeout = 10000;
    c->probe_interval = 5 * FW_MINUTE;
}

void delivery_config_cleanup(struct delivery_config *c)
{
    char *strs[] = {c->email.url,        c->email.from,        c->email.from_name,
                    c->email.username,   c->email.password,    c->email.unsubscribe_mailto,
                    c->sms.base_url,     c->sms.account_sid,   c->sms.auth_token,
                    c->sms.from,         c->slack.webhook_url, c->zendesk.base_url,
                    c->zendesk.email,    c->zendesk.api_token, c->webhook.url,
                    c->webhook.secret,   c->push.url,          c->push.token,
                    c->chatbot.url,      c->chatbot.secret};
    for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
        free(strs[i]);
    memset(c, 0, sizeof *c);
}

/* How a field's value is checked. */
enum fkind {
    F_TEXT,      /* any non-empty text */
    F_HTTP_URL,  /* http:// or https:// with a host */
    F_SMTP_URL,  /* smtp:// or smtps:// with a host */
    F_SECRET,    /* Standard Webhooks secret: whsec_<base64> */
};

struct field {
    const char *key;
    size_t off; /* offset of the char * in struct delivery_config */
    enum fkind kind;
    int required;
    const char *env; /* environment variable that may supply it instead */
};

struct section {
    const char *name;
    const struct field *fields; /* terminated by key NULL */
};

#define FLD(k, member, kind, req, env) {k, offsetof(struct delivery_config, member), kind, req, env}

static const struct field email_fields[] = {
    FLD("url", email.url, F_SMTP_URL, 1, NULL),
    FLD("from", email.from, F_TEXT, 1, NULL),
    FLD("from_name", email.from_name, F_TEXT, 0, NULL),
    FLD("username", email.username, F_TEXT, 0, NULL),
    FLD("password", email.password, F_TEXT, 0, "FOREWARN_SMTP_PASSWORD"),
    FLD("unsubscribe_mailto", email.unsubscribe_mailto, F_TEXT, 0, NULL),
    {0},
};
static const struct field sms_fields[] = {
    FLD("base_url", sms.base_url, F_HTTP_URL, 0, NULL),
    FLD("account_sid", sms.account_sid, F_TEXT, 1, NULL),
    FLD("auth_token", sms.auth_token, F_TEXT, 1, "FOREWARN_TWILIO_AUTH_TOKEN"),
    FLD("from", sms.from, F_TEXT, 1, NULL),
    {0},
};
static const struct field slack_fields[] = {
    FLD("webhook_url", slack.webhook_url, F_HTTP_URL, 1, NULL),
    {0},
};
static const struct field zendesk_fields[] = {
    FLD("base_url", zendesk.base_url, F_HTTP_URL, 1, NULL),
    FLD("email", zendesk.email, F_TEXT, 1, NULL),
    FLD("api_token", zendesk.api_token, F_TEXT, 1, "FOREWARN_ZENDESK_API_TOKEN"),
    {0},
};
static const struct field webhook_fields[] = {
    FLD("url", webhook.url, F_HTTP_URL, 1, NULL),
    FLD("secret", webhook.secret, F_SECRET, 1, "FOREWARN_WEBHOOK_SECRET"),
    {0},
};
static const struct field push_fields[] = {
    FLD("url", push.url, F_HTTP_URL, 1, NULL),
    FLD("token", push.token, F_TEXT, 0, "FOREWARN_PUSH_TOKEN"),
    {0},
};
static const struct field chatbot_fields[] = {
    FLD("url", chatbot.url, F_HTTP_URL, 1, NULL),
    FLD("secret", chatbot.secret, F_SECRET, 0, "FOREWARN_CHATBOT_SECRET"),
    {0},
};

static const struct section sections[] = {
    {"email", email_fields},     {"sms", sms_fields},   {"slack", slack_fields},
    {"zendesk", zendesk_fields}, {"webhook", webhook_fields}, {"push", push_fields},
    {"chatbot", chatbot_fields},
};

static char **field_ptr(struct delivery_config *c, const struct field *f)
{
    return (char **)((char *)c + f->off);
}

/*
 * Check a URL with libcurl's own parser, so what we accept is what the
 * connectors can use.  Returns NULL or why not (static text).
 */
static const char *url_problem(const char *s, enum fkind kind)
{
    const char *why = NULL;
    char *scheme = NULL, *host = NULL;
    CURLU *u = curl_url();
    if (!u)
        abort();
    /* A configuration must say its scheme (libcurl could guess one for "example.com"). */
    if (!strstr(s, "://"))
        why = "must start with its scheme (https://, smtp://)";
    else if (curl_url_set(u, CURLUPART_URL, s, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
        why = "is not a valid URL";
    else if (kind == F_HTTP_URL && strcmp(scheme, "http") && strcmp(scheme, "https"))
        why = "must be an http:// or https:// URL";
    else if (kind == F_SMTP_URL && strcmp(scheme, "smtp") && strcmp(scheme, "smtps"))
        why = "must be an smtp:// or smtps:// URL";
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return why;
}

/* A Standard Webhooks secret: optional whsec_ prefix, then base64 of 16 to 64 bytes. */
static int secret_ok(const char *s)
{
    if (!strncmp(s, "whsec_", 6))
        s += 6;
    size_t n = strlen(s), pad = 0;
    if (n < 24 || n > 88 || n % 4)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '=' && i >= n - 2) {
            pad++;
            continue;
        }
        if (pad || !(isalnum(ch) || ch == '+' || ch == '/'))
            return 0;
    }
    return 1;
}

#define CERR(node, ...)                                                                            \
    do {                                                                                           \
        ydiag(d, diag, (node), __VA_ARGS__);                                                       \
        rc = FW_EPARSE;                                                                            \
    } while (0)

static int parse_section(struct delivery_config *c, const struct section *sec, struct ydoc *d,
                         yaml_node_t *kn, yaml_node_t *v, struct buf *diag)
{
    int rc = 0;
    yaml_node_t *seen[8] = {0};
    if (v->type != YAML_MAPPING_NODE) {
        CERR(v, "connectors.%s must be a mapping of settings (%s: {...})", sec->name, sec->name);
        return rc;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *fk = ydoc_node(d, p->key), *fv = ydoc_node(d, p->value);
        const char *k = yscalar(fk), *s = yscalar(fv);
        const struct field *f = sec->fields;
        while (f->key && (!k || strcmp(f->key, k)))
            f++;
        if (!f->key) {
            struct buf known;
            buf_init(&known, 0);
            for (const struct field *g = sec->fields; g->key; g++)
                buf_printf(&known, "%s%s", g == sec->fields ? "" : ", ", g->key);
            CERR(fk, "unknown setting '%s' in connectors.%s (known: %s)", k ? k : "?", sec->name,
                 known.data);
            buf_cleanup(&known);
            continue;
        }
        size_t idx = (size_t)(f - sec->fields);
        if (seen[idx]) {
            CERR(fk, "connectors.%s.%s is set twice", sec->name, f->key);
            continue;
        }
        seen[idx] = fk;
        if (!s || !*s) {
            CERR(fv, "connectors.%s.%s must be a non-empty text value", sec->name, f->key);
            continue;
        }
        const char *why = NULL;
        if (f->kind == F_HTTP_URL || f->kind == F_SMTP_URL)
            why = url_problem(s, f->kind);
        else if (f->kind == F_SECRET && !secret_ok(s))
            why = "must be a Standard Webhooks secret: whsec_ followed by base64 of 16 to 64 "
                  "bytes";
        if (why) {
            CERR(fv, "connectors.%s.%s %s: '%s'", sec->name, f->key, why, s);
            continue;
        }
        char **dst = field_ptr(c, f);
        free(*dst);
        *dst = xstrdup(s);
    }
    /* A present section must be complete; a secret may come from the environment. */
    for (const struct field *f = sec->fields; f->key; f++) {
        const char *env = f->env ? getenv(f->env) : NULL;
        if (f->required && !seen[f - sec->fields] && !(env && *env)) {
            if (f->env)
                CERR(kn, "connectors.%s needs '%s' (or the environment variable %s)", sec->name,
                     f->key, f->env);
            else
                CERR(kn, "connectors.%s needs '%s'", sec->name, f->key);
        }
    }
    return rc;
}

static int parse_duration(struct ydoc *d, yaml_node_t *v, const char *what, int64_t *out,
                          struct buf *diag)
{
    int rc = 0;
    const char *s = yscalar(v);
    int64_t ms;
    if (!s || fw_duration_parse(s, strlen(s), &ms) || ms <= 0 || ms > 7 * FW_DAY)
        CERR(v, "connectors.retry.%s must be a duration from 1ms to 7d, such as 500ms, 10s or 5m",
             what);
    else
        *out = ms;
    return rc;
}

static int parse_retry(struct delivery_config *c, struct ydoc *d, yaml_node_t *v, struct buf *diag)
{
    int rc = 0;
    yaml_node_t *base_node = NULL, *max_node = NULL;
    if (v->type != YAML_MAPPING_NODE) {
        CERR(v, "connectors.retry must be a mapping (backoff_base, backoff_max, retry_for, "
                "max_attempts, timeout, clock, probe_interval)");
        return rc;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *fk = ydoc_node(d, p->key), *fv = ydoc_node(d, p->value);
        const char *k = yscalar(fk), *s = yscalar(fv);
        if (!k) {
            CERR(fk, "keys must be plain names");
        } else if (!strcmp(k, "max_attempts")) {
            char *end = NULL;
            long n = s ? strtol(s, &end, 10) : 0;
            if (!s || !*s || *end || n < 0 || n > 10000)
                CERR(fv, "connectors.retry.max_attempts must be an integer from 1 to 10000, or 0 "
                         "for no limit on the count (retry_for decides)");
            else
                c->max_attempts = (int)n;
        } else if (!strcmp(k, "backoff_base")) {
            base_node = fv;
            rc |= parse_duration(d, fv, k, &c->backoff_base, diag);
        } else if (!strcmp(k, "backoff_max")) {
            max_node = fv;
            rc |= parse_duration(d, fv, k, &c->backoff_max, diag);
        } else if (!strcmp(k, "clock")) {
            if (!s || (strcmp(s, "wall") && strcmp(s, "engine")))
                CERR(fv, "connectors.retry.clock must be wall or engine");
            else
                c->retry_engine_clock = !strcmp(s, "engine");
        } else if (!strcmp(k, "retry_for")) {
            rc |= parse_duration(d, fv, k, &c->retry_for, diag);
        } else if (!strcmp(k, "timeout")) {
            rc |= parse_duration(d, fv, k, &c->timeout, diag);
        } else if (!strcmp(k, "probe_interval")) {
            if (s && !strcmp(s, "off"))
                c->probe_interval = 0;
            else
                rc |= parse_duration(d, fv, k, &c->probe_interval, diag);
        } else {
            CERR(fk, "unknown setting '%s' in connectors.retry (known: backoff_base, "
                     "backoff_max, retry_for, max_attempts, timeout, clock, probe_interval)", k);
        }
    }
    if (!rc && c->backoff_max < c->backoff_base)
        CERR(max_node ? max_node : base_node,
             "connectors.retry.backoff_max must not be shorter than backoff_base");
    return rc ? FW_EPARSE : 0;
}

int delivery_config_parse(struct delivery_config *c, struct ydoc *d, yaml_node_t *n,
                          struct buf *diag)
{
    int rc = 0;
    if (!n || n->type != YAML_MAPPING_NODE) {
        CERR(n, "connectors must be a mapping: email, sms, slack, zendesk, webhook, push, "
                "chatbot, retry");
        return rc;
    }
    unsigned seen = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *k = yscalar(kn);
        size_t i = 0;
        while (i < ARRAY_SIZE(sections) && (!k || strcmp(sections[i].name, k)))
            i++;
        unsigned bit = 1u << i; /* i == ARRAY_SIZE(sections) stands for retry */
        if (k && (i < ARRAY_SIZE(sections) || !strcmp(k, "retry"))) {
            if (seen & bit) {
                CERR(kn, "connectors.%s is set twice", k);
                continue;
            }
            seen |= bit;
        }
        if (i < ARRAY_SIZE(sections)) {
            /* "email:" with nothing after it leaves the connector unconfigured. */
            const char *s = yscalar(v);
            if (s && !*s && yplain(v))
                continue;
            if (parse_section(c, &sections[i], d, kn, v, diag))
                rc = FW_EPARSE;
        } else if (k && !strcmp(k, "retry")) {
            if (parse_retry(c, d, v, diag))
                rc = FW_EPARSE;
        } else {
            CERR(kn, "unknown connector '%s' (known: email, sms, slack, zendesk, webhook, push, "
                     "chatbot, retry)", k ? k : "?");
        }
    }
    if (!rc && c->sms.account_sid && !c->sms.base_url)
        c->sms.base_url = xstrdup("https://api.twilio.com");
    return rc;
}

int delivery_config_env(struct delivery_config *c, struct buf *diag)
{
    int rc = 0;
    for (size_t i = 0; i < ARRAY_SIZE(sections); i++) {
        for (const struct field *f = sections[i].fields; f->key; f++) {
            const char *v = f->env ? getenv(f->env) : NULL;
            if (!v || !*v)
                continue;
            if (f->kind == F_SECRET && !secret_ok(v)) {
                buf_printf(diag,
                           "%s: error: must be a Standard Webhooks secret: whsec_ followed by "
                           "base64 of 16 to 64 bytes\n",
                           f->env);
                rc = FW_EPARSE;
                continue;
            }
            char **dst = field_ptr(c, f);
            free(*dst);
            *dst = xstrdup(v);
        }
    }
    return rc;
}
