/*
 * config.c -- the server's configuration file (YAML) and environment.
 */
#include "serve/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules.h"
#include "util/yaml.h"
#include "util/fwtime.h"
#include "util/util.h"

void config_init(struct config *c)
{
    memset(c, 0, sizeof *c);
    cluster_config_init(&c->cluster);
    c->listen_addr = xstrdup("127.0.0.1");
    c->listen_port = 8080;
    c->database = xstrdup("forewarn.db");
    c->max_body = 4 << 20;
    c->max_events = 10000;
    c->max_event_members = 1000;
    c->max_event_data = 64 << 10;
    c->event_time_min = 946684800000LL; /* 2000-01-01T00:00:00Z */
    c->event_time_skew = FW_DAY;
    c->max_connections = 1024;
    c->max_connections_per_address = 128;
    c->request_deadline = 30 * FW_SECOND;
    c->http_threads = 4;
    c->rate_limit = 100;
    c->rate_burst = 200;
    c->log_level = xstrdup("info");
    c->messages = 1;
    c->snapshot_every = 5 * FW_MINUTE;
    c->snapshot_load = 1;
    c->public_metrics = 1;
    struct cases_config cc;
    cases_config_init(&cc);
    c->weights = cc.weights;
    orch_config_init(&c->orch);
    delivery_config_init(&c->delivery);
    sla_config_init(&c->sla);
    draft_config_init(&c->drafting);
    c->health = engine_health_default;
    churn_init(&c->churn);
}

void config_cleanup(struct config *c)
{
    cluster_config_cleanup(&c->cluster);
    free(c->config_text);
    free(c->health_metric);
    free(c->health_contact_class);
    free(c->health_sentiment_key);
    free(c->listen_addr);
    free(c->tls_listen_addr);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->database);
    for (size_t i = 0; i < c->nrules; i++)
        free(c->rules[i]);
    free(c->rules);
    for (size_t i = 0; i < c->nplaybooks; i++)
        free(c->playbooks[i]);
    free(c->playbooks);
    free(c->api_token);
    free(c->log_level);
    free(c->ready_file);
    free(c->templates);
    free(c->known_issues);
    free(c->sentiment_lexicon);
    free(c->sentiment_domain);
    orch_config_cleanup(&c->orch);
    delivery_config_cleanup(&c->delivery);
    sla_config_cleanup(&c->sla);
    draft_config_cleanup(&c->drafting);
    churn_cleanup(&c->churn);
    memset(c, 0, sizeof *c);
}

int config_set_listen(struct config *c, const char *v)
{
    const char *colon = strrchr(v, ':');
    const char *port = colon ? colon + 1 : v;
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535)
        return FW_EINVAL;
    if (colon && colon != v) {
        free(c->listen_addr);
        c->listen_addr = xstrndup(v, (size_t)(colon - v));
    }
    c->listen_port = (unsigned)p;
    return 0;
}

/* listen_tls: HOST:PORT (the host is required: there is no default address for TLS). */
static int config_set_listen_tls(struct config *c, const char *v)
{
    const char *colon = strrchr(v, ':');
    char *end;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == v || !colon[1] || *end || p < 0 || p > 65535)
        return FW_EINVAL;
    free(c->tls_listen_addr);
    c->tls_listen_addr = xstrndup(v, (size_t)(colon - v));
    c->tls_listen_port = (unsigned)p;
    return 0;
}

/* Read a secret from a file: the first line, without its newline. */
static int read_secret(const char *path, char **out, struct buf *diag)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        buf_printf(diag, "%s: error: cannot read the API token file: %s\n", path, strerror(errno));
        return FW_EIO;
    }
    char line[1024];
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        buf_printf(diag, "%s: error: the API token file is empty\n", path);
        return FW_EINVAL;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (strlen(line) < 16) {
        buf_printf(diag, "%s: error: the API token must be at least 16 characters\n", path);
        return FW_EINVAL;
    }
    free(*out);
    *out = xstrdup(line);
    return 0;
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return FW_EINVAL;
    if (!strcmp(end, "KiB") || !strcmp(end, "k"))
        v <<= 10;
    else if (!strcmp(end, "MiB") || !strcmp(end, "M"))
        v <<= 20;
    else if (*end)
        return FW_EINVAL;
    if (v == 0 || v > (1ULL << 30))
        return FW_EINVAL;
    *out = (size_t)v;
    return 0;
}

#define CERR(node, ...)                                                                            \
    do {                                                                                           \
        ydiag(d, diag, (node), __VA_ARGS__);                                                       \
        rc = FW_EPARSE;                                                                            \
    } while (0)

/* sentiment: {lexicon: PATH, domain: PATH}, read by `forewarn sentiment --config`. */
static int parse_sentiment(struct config *c, struct ydoc *d, yaml_node_t *n, struct buf *diag)
{
    int rc = 0;
    if (n->type != YAML_MAPPING_NODE) {
        CERR(n, "sentiment must be a mapping (lexicon, domain)");
        return rc;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *k = yscalar(kn), *s = yscalar(v);
        char **slot = !k                   ? NULL
                      : !strcmp(k, "lexicon") ? &c->sentiment_lexicon
                      : !strcmp(k, "domain")  ? &c->sentiment_domain
                                              : NULL;
        if (!slot) {
            CERR(kn, "unknown key %s in sentiment (expected lexicon or domain)", k ? k : "?");
            continue;
        }
        if (!s || !*s) {
            CERR(v, "sentiment.%s must be a file name", k);
            continue;
        }
        free(*slot);
        *slot = xstrdup(s);
    }
    return rc;
}

/* priority: {weights: {value: .3, severity: .25, churn_risk: .25, timeliness: .2}} */
static int parse_priority(struct config *c, struct ydoc *d, yaml_node_t *n, struct buf *diag)
{
    int rc = 0;
    if (n->type != YAML_MAPPING_NODE) {
        CERR(n, "priority must be a mapping with weights");
        return rc;
    }
    struct case_weights w = c->weights;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *k = yscalar(kn);
        if (!k || strcmp(k, "weights")) {
            CERR(kn, "unknown key %s in priority (expected weights)", k ? k : "?");
            continue;
        }
        if (v->type != YAML_MAPPING_NODE) {
            CERR(v, "priority.weights must map value, severity, churn_risk and timeliness to numbers");
            continue;
        }
        for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
            yaml_node_t *wk = ydoc_node(d, q->key), *wv = ydoc_node(d, q->value);
            const char *name = yscalar(wk), *num = yscalar(wv);
            double *slot = !name                            ? NULL
                           : !strcmp(name, "value")         ? &w.value
                           : !strcmp(name, "severity")      ? &w.severity
                           : !strcmp(name, "churn_risk")    ? &w.churn
                           : !strcmp(name, "timeliness")    ? &w.timeliness
                                                            : NULL;
            if (!slot) {
                CERR(wk, "unknown weight %s (value, severity, churn_risk, timeliness)",
                     name ? name : "?");
                continue;
            }
            char *end = NULL;
            double x = num ? strtod(num, &end) : -1;
            if (!num || !*num || *end || !(x >= 0 && x <= 100)) {
                CERR(wv, "priority.weights.%s must be a number from 0 to 100", name);
                continue;
            }
            *slot = x;
        }
    }
    if (!rc && w.value + w.severity + w.churn + w.timeliness <= 0)
        CERR(n, "priority weights must not all be 0");
    if (!rc)
        c->weights = w;
    return rc;
}

/*
 * health: {weights: {usage: 30, adoption: 20, contacts: 15, sentiment: 15, payments: 10,
 * detections: 10}, metric: data_mb, contact_class: touch, sentiment_key: sentiment.score}
 * (docs/engagement.md).  Applied only when the whole section is valid.
 */
static int parse_health(struct config *c, struct ydoc *d, yaml_node_t *n, struct buf *diag)
{
    int rc = 0;
    struct engine_health h = c->health;
    char *strs[3] = {0};
    static const char *const names[] = {"metric", "contact_class", "sentiment_key"};
    if (n->type != YAML_MAPPING_NODE) {
        CERR(n, "health must be a mapping (weights, metric, contact_class, sentiment_key)");
        return rc;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *k = yscalar(kn);
        int si = -1;
        for (int i = 0; k && i < 3; i++)
            if (!strcmp(k, names[i]))
                si = i;
        if (si >= 0) {
            const char *sv = yscalar(v);
            if (!sv || !*sv)
                CERR(v, "health.%s must be a non-empty name", k);
            else {
                free(strs[si]);
                strs[si] = xstrdup(sv);
            }
            continue;
        }
        if (!k || strcmp(k, "weights")) {
            CERR(kn, "unknown key %s in health (expected weights, metric, contact_class, "
                     "sentiment_key)", k ? k : "?");
            continue;
        }
        if (v->type != YAML_MAPPING_NODE) {
            CERR(v, "health.weights must map usage, adoption, contacts, sentiment, payments and "
                    "detections to numbers");
            continue;
        }
        for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
            yaml_node_t *wk = ydoc_node(d, q->key), *wv = ydoc_node(d, q->value);
            const char *name = yscalar(wk), *num = yscalar(wv);
            double *slot = !name                           ? NULL
                           : !strcmp(name, "usage")        ? &h.usage
                           : !strcmp(name, "adoption")     ? &h.adoption
                           : !strcmp(name, "contacts")     ? &h.contacts
                           : !strcmp(name, "sentiment")    ? &h.sentiment
                           : !strcmp(name, "payments")     ? &h.payments
                           : !strcmp(name, "detections")   ? &h.detections
                                                           : NULL;
            if (!slot) {
                CERR(wk, "unknown weight %s (usage, adoption, contacts, sentiment, payments, "
                         "detections)", name ? name : "?");
                continue;
            }
            char *end = NULL;
            double x = num ? strtod(num, &end) : -1;
            if (!num || !*num || *end || !(x >= 0 && x <= 100)) {
                CERR(wv, "health.weights.%s must be a number from 0 to 100", name);
                continue;
            }
            *slot = x;
        }
    }
    if (!rc && h.usage + h.adoption + h.contacts + h.sentiment + h.payments + h.detections <= 0)
        CERR(n, "health weights must not all be 0");
    char **own[3] = {&c->health_metric, &c->health_contact_class, &c->health_sentiment_key};
    for (int i = 0; i < 3; i++) {
        if (!rc && strs[i]) {
            free(*own[i]);
            *own[i] = strs[i];
        } else {
            free(strs[i]);
        }
    }
    if (!rc) {
        c->health = h;
        c->health.metric = c->health_metric;
        c->health.contact_class = c->health_contact_class;
        c->health.sentiment_key = c->health_sentiment_key;
    }
    return rc;
}

static int set_string(struct ydoc *d, struct buf *diag, yaml_node_t *v, char **out)
{
    int rc = 0;
    const char *s = yscalar(v);
    if (!s || !*s)
        CERR(v, "expected a non-empty string");
    else {
        free(*out);
        *out = xstrdup(s);
    }
    return rc;
}

static int parse_brand(struct config *c, struct ydoc *d, yaml_node_t *m, struct buf *diag)
{
    int rc = 0;
    if (m->type != YAML_MAPPING_NODE) {
        CERR(m, "brand must be a mapping");
        return rc;
    }
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *k = yscalar(kn);
        char **slot = !k                           ? NULL
                      : !strcmp(k, "name")         ? &c->orch.brand.name
                      : !strcmp(k, "sender_name")  ? &c->orch.brand.sender_name
                      : !strcmp(k, "support_url")  ? &c->orch.brand.support_url
                      : !strcmp(k, "app_name")     ? &c->orch.brand.app_name
                      : !strcmp(k, "unsubscribe_url") ? &c->orch.brand.unsubscribe_url
                                                   : NULL;
        if (!slot)
            CERR(kn, "unknown brand setting '%s'", k ? k : "?");
        else if (set_string(d, diag, v, slot))
            rc = FW_EPARSE;
        else if (strstr(k, "url") && strncmp(*slot, "https://", 8) && strncmp(*slot, "http://", 7))
            CERR(v, "%s must be an http(s) URL", k);
    }
    return rc;
}

static int parse_bool(struct ydoc *d, struct buf *diag, yaml_node_t *v, int *out)
{
    int rc = 0;
    const char *s = yscalar(v);
    if (!s || (strcmp(s, "true") && strcmp(s, "false")))
        CERR(v, "expected true or false");
    else
        *out = !strcmp(s, "true");
    return rc;
}

static int parse_dur(struct ydoc *d, struct buf *diag, yaml_node_t *v, int64_t *out)
{
    int rc = 0;
    const char *s = yscalar(v);
    if (!s || fw_duration_parse(s, strlen(s), out) || *out <= 0)
        CERR(v, "bad duration '%s' (expected e.g. 30m, 24h, 7d)", s ? s : "?");
    return rc;
}

static int parse_clock(struct ydoc *d, struct buf *diag, yaml_node_t *v, int *minutes)
{
    int rc = 0, h, m;
    char extra;
    const char *s = yscalar(v);
    if (!s || sscanf(s, "%d:%d%c", &h, &m, &extra) != 2 || h < 0 || h > 23 || m < 0 || m > 59)
        CERR(v, "expected a time of day HH:MM");
    else
        *minutes = h * 60 + m;
    return rc;
}

/* A duration that may be 0 ("0", "0s", "5s"). */
static int parse_dur0(struct ydoc *d, struct buf *diag, yaml_node_t *v, int64_t *out)
{
    int rc = 0;
    const char *s = yscalar(v);
    if (s && !strcmp(s, "0"))
        *out = 0;
    else if (!s || fw_duration_parse(s, strlen(s), out) || *out < 0)
        CERR(v, "bad duration '%s' (expected e.g. 0, 2s, 5s)", s ? s : "?");
    return rc;
}

/*
 * A duration per severity: 5s (every severity) or {CRITICAL: 2s, HIGH: 5s, ...}:
 * merge_window (docs/messages.md), followup_task (docs/cases.md).
 */
static int parse_per_severity(struct ydoc *d, struct buf *diag, yaml_node_t *v, int64_t *w,
                              const char *name)
{
    int rc = 0;
    if (v->type == YAML_SCALAR_NODE) {
        int64_t all;
        if (parse_dur0(d, diag, v, &all))
            return FW_EPARSE;
        for (int i = 0; i < 4; i++)
            w[i] = all;
        return 0;
    }
    if (v->type != YAML_MAPPING_NODE) {
        CERR(v, "%s must be a duration or a mapping of severity to duration", name);
        return rc;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key);
        const char *k = yscalar(kn);
        int sv = k ? severity_parse(k) : -1;
        if (sv < 0)
            CERR(kn, "unknown severity '%s' in %s (CRITICAL, HIGH, MEDIUM, LOW)", k ? k : "?",
                 name);
        else if (parse_dur0(d, diag, ydoc_node(d, p->value), &w[sv]))
            rc = FW_EPARSE;
    }
    return rc;
}

/* One cell of the channel matrix: a list of channels (or [] for none). */
static int parse_matrix_cell(struct ydoc *d, struct buf *diag, yaml_node_t *v, int ticket,
                             struct orch_channels *cell)
{
    int rc = 0;
    if (v->type != YAML_SEQUENCE_NODE) {
        CERR(v, "a channel matrix cell must be a list of channels, e.g. [email, sms]");
        return rc;
    }
    const char *names[16];
    size_t n = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *e = ydoc_node(d, *it);
        const char *ch = yscalar(e);
        if (!ch || !orch_matrix_channel_ok(ch))
            CERR(e, "unknown channel '%s' (email, sms, push, in_app, ticket_reply, internal_note)",
                 ch ? ch : "?");
        else if (!ticket && (!strcmp(ch, "ticket_reply") || !strcmp(ch, "internal_note")))
            CERR(e, "%s needs an open ticket: it belongs under 'ticket', not 'no_ticket'", ch);
        else {
            int dup = 0;
            for (size_t k = 0; k < n && !dup; k++)
                dup = !strcmp(names[k], ch);
            if (dup)
                CERR(e, "channel '%s' is listed twice in this cell", ch);
            else
                names[n++] = ch; /* at most the six channels: names[] holds them */
        }
    }
    if (!rc)
        orch_matrix_set(cell, names, n);
    return rc;
}

/* channel_matrix: {CRITICAL: {ticket: [...], no_ticket: [...]}, ..., outage: {...}} */
static int parse_matrix(struct config *c, struct ydoc *d, yaml_node_t *v, struct buf *diag)
{
    int rc = 0;
    if (v->type != YAML_MAPPING_NODE) {
        CERR(v, "channel_matrix must be a mapping of severity (or outage) to {ticket, no_ticket}");
        return rc;
    }
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *row = ydoc_node(d, p->value);
        const char *k = yscalar(kn);
        int r = !k ? -1 : !strcmp(k, "outage") ? ORCH_ROW_OUTAGE : severity_parse(k);
        if (r < 0) {
            CERR(kn, "unknown row '%s' in channel_matrix (CRITICAL, HIGH, MEDIUM, LOW, outage)",
                 k ? k : "?");
            continue;
        }
        if (row->type != YAML_MAPPING_NODE) {
            CERR(row, "a channel matrix row must be a mapping {ticket: [...], no_ticket: [...]}");
            continue;
        }
        for (yaml_node_pair_t *q = row->data.mapping.pairs.start; q < row->data.mapping.pairs.top;
             q++) {
            yaml_node_t *tk = ydoc_node(d, q->key);
            const char *t = yscalar(tk);
            if (!t || (strcmp(t, "ticket") && strcmp(t, "no_ticket")))
                CERR(tk, "unknown key '%s' in a channel matrix row (ticket, no_ticket)",
                     t ? t : "?");
            else if (parse_matrix_cell(d, diag, ydoc_node(d, q->value), !strcmp(t, "ticket"),
                                       &c->orch.matrix[r][!strcmp(t, "ticket")]))
                rc = FW_EPARSE;
        }
    }
    return rc;
}

/* drafting: {url, model, api_key_env, timeout} (docs/guidance.md, "Drafting"). */
static int parse_drafting(struct config *c, struct ydoc *d, yaml_node_t *m, struct buf *diag)
{
    int rc = 0;
    struct draft_config *dc = &c->drafting;
    if (m->type != YAML_MAPPING_NODE) {
        CERR(m, "drafting must be a mapping {url, model, api_key_env, timeout}");
        return rc;
    }
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *k = yscalar(kn);
        if (!k) {
            CERR(kn, "keys must be plain names");
        } else if (!strcmp(k, "url")) {
            if (set_string(d, diag, v, &dc->url))
                rc = FW_EPARSE;
            else if (strncmp(dc->url, "https://", 8) && strncmp(dc->url, "http://", 7))
                CERR(v, "drafting.url must be an http(s) URL, e.g. http://127.0.0.1:11434/v1");
        } else if (!strcmp(k, "model")) {
            if (set_string(d, diag, v, &dc->model))
                rc = FW_EPARSE;
        } else if (!strcmp(k, "api_key_env")) {
            if (set_string(d, diag, v, &dc->api_key_env))
                rc = FW_EPARSE;
        } else if (!strcmp(k, "timeout")) {
            if (parse_dur(d, diag, v, &dc->timeout))
                rc = FW_EPARSE;
        } else {
            CERR(kn, "unknown drafting setting '%s' (url, model, api_key_env, timeout)", k);
        }
    }
    return rc;
}

static int parse_outreach(struct config *c, struct ydoc *d, yaml_node_t *m, struct buf *diag)
{
    int rc = 0;
    struct orch_config *o = &c->orch;
    if (m->type != YAML_MAPPING_NODE) {
        CERR(m, "outreach must be a mapping");
        return rc;
    }
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *k = yscalar(kn);
        int bad = 0;
        if (!k) {
            CERR(kn, "keys must be plain names");
        } else if (!strcmp(k, "medium_email")) {
            bad = parse_bool(d, diag, v, &o->medium_email);
        } else if (!strcmp(k, "webhook")) {
            bad = parse_bool(d, diag, v, &o->webhook);
        } else if (!strcmp(k, "frequency_cap")) {
            const char *s = yscalar(v);
            char *end = NULL;
            long n = s ? strtol(s, &end, 10) : -1;
            if (!s || *end || n < 1 || n > 1000)
                CERR(v, "frequency_cap must be an integer from 1 to 1000");
            else
                o->freq_cap = (int)n;
        } else if (!strcmp(k, "frequency_window")) {
            bad = parse_dur(d, diag, v, &o->freq_window);
        } else if (!strcmp(k, "critical_bypasses_cap")) {
            bad = parse_bool(d, diag, v, &o->cap_bypass_critical);
        } else if (!strcmp(k, "dedup_window")) {
            bad = parse_dur(d, diag, v, &o->dedup_window);
        } else if (!strcmp(k, "quiet_hours")) {
            yaml_node_t *st = ymap_get(d, v, "start"), *en = ymap_get(d, v, "end");
            if (!st || !en)
                CERR(v, "quiet_hours needs start and end, e.g. {start: \"21:00\", end: \"08:00\"}");
            else
                bad = parse_clock(d, diag, st, &o->quiet_start) |
                      parse_clock(d, diag, en, &o->quiet_end);
        } else if (!strcmp(k, "critical_bypasses_quiet_hours")) {
            bad = parse_bool(d, diag, v, &o->quiet_bypass_critical);
        } else if (!strcmp(k, "approval_tiers")) {
            if (v->type != YAML_SEQUENCE_NODE) {
                CERR(v, "approval_tiers must be a list");
                continue;
            }
            for (size_t i = 0; i < o->napproval_tiers; i++)
                free(o->approval_tiers[i]);
            o->napproval_tiers = 0;
            for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
                 it++) {
                const char *t = yscalar(ydoc_node(d, *it));
                if (!t) {
                    CERR(ydoc_node(d, *it), "each tier must be a name");
                    continue;
                }
                o->approval_tiers = xrealloc(o->approval_tiers,
                                             (o->napproval_tiers + 1) * sizeof *o->approval_tiers);
                o->approval_tiers[o->napproval_tiers++] = xstrdup(t);
            }
        } else if (!strcmp(k, "approval_severities")) {
            if (v->type != YAML_SEQUENCE_NODE) {
                CERR(v, "approval_severities must be a list");
                continue;
            }
            memset(o->approval_severity, 0, sizeof o->approval_severity);
            for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
                 it++) {
                const char *t = yscalar(ydoc_node(d, *it));
                int sv = t ? severity_parse(t) : -1;
                if (sv < 0)
                    CERR(ydoc_node(d, *it), "unknown severity '%s'", t ? t : "?");
                else
                    o->approval_severity[sv] = 1;
            }
        } else if (!strcmp(k, "followup_approval")) {
            bad = parse_bool(d, diag, v, &o->followup_approval);
        } else if (!strcmp(k, "followup_reminder")) {
            bad = parse_dur(d, diag, v, &o->followup_reminder);
        } else if (!strcmp(k, "followup_task")) {
            bad = parse_per_severity(d, diag, v, o->followup_task, "followup_task");
        } else if (!strcmp(k, "late_after")) {
            bad = parse_dur(d, diag, v, &o->late_after);
        } else if (!strcmp(k, "late_hold")) {
            bad = parse_dur(d, diag, v, &o->late_hold);
        } else if (!strcmp(k, "stale_after")) {
            bad = parse_dur(d, diag, v, &o->stale_after);
        } else if (!strcmp(k, "failure_channels")) {
            /* Where alerts about dead messages go (failures.c): channels an alert can take. */
            if (v->type != YAML_SEQUENCE_NODE) {
                CERR(v, "failure_channels must be a list of channels (slack, ticket, webhook)");
                continue;
            }
            for (size_t i = 0; i < o->nfailure_channels; i++)
                free(o->failure_channels[i]);
            o->nfailure_channels = 0;
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++) {
                const char *t = yscalar(ydoc_node(d, *it));
                if (!t || (strcmp(t, "slack") && strcmp(t, "ticket") && strcmp(t, "webhook"))) {
                    CERR(ydoc_node(d, *it),
                         "unknown failure channel '%s' (expected slack, ticket "
                         "or webhook)",
                         t ? t : "?");
                    continue;
                }
                o->failure_channels = xrealloc(
                    o->failure_channels, (o->nfailure_channels + 1) * sizeof *o->failure_channels);
                o->failure_channels[o->nfailure_channels++] = xstrdup(t);
            }
        } else if (!strcmp(k, "connector_alert_repeat")) {
            bad = parse_dur(d, diag, v, &o->connector_alert_repeat);
        } else if (!strcmp(k, "merge_window")) {
            bad = parse_per_severity(d, diag, v, o->merge_window, "merge_window");
        } else if (!strcmp(k, "channel_matrix")) {
            bad = parse_matrix(c, d, v, diag);
        } else if (!strcmp(k, "outage_followup")) {
            bad = parse_dur(d, diag, v, &o->outage_followup);
        } else if (!strcmp(k, "ladder")) {
            static const struct {
                const char *name;
                size_t off;
            } steps[] = {
                {"high_no_response", offsetof(struct orch_config, high_no_response)},
                {"high_unresolved_l2", offsetof(struct orch_config, high_unresolved_l2)},
                {"high_persist_l2", offsetof(struct orch_config, high_persist_l2)},
                {"critical_page", offsetof(struct orch_config, critical_page)},
                {"critical_no_response", offsetof(struct orch_config, critical_no_response)},
            };
            if (v->type != YAML_MAPPING_NODE) {
                CERR(v, "ladder must be a mapping of step to delay");
                continue;
            }
            for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top;
                 q++) {
                yaml_node_t *sk = ydoc_node(d, q->key);
                const char *sn = yscalar(sk);
                size_t i = 0;
                while (i < ARRAY_SIZE(steps) && (!sn || strcmp(sn, steps[i].name)))
                    i++;
                if (i == ARRAY_SIZE(steps))
                    CERR(sk, "unknown ladder step '%s'", sn ? sn : "?");
                else
                    bad |= parse_dur(d, diag, ydoc_node(d, q->value),
                                     (int64_t *)((char *)o + steps[i].off));
            }
        } else {
            CERR(kn, "unknown outreach setting '%s'", k);
        }
        if (bad)
            rc = FW_EPARSE;
    }
    return rc;
}

int config_load_file(struct config *c, const char *path, struct buf *diag)
{
    struct ydoc doc, *d = &doc;
    struct buf text;
    struct sla_config sla; /* applied at the end, only if the whole file is good */
    int rc = 0, have_sla = 0;
    memset(&doc, 0, sizeof doc);
    sla_config_init(&sla);
    buf_init(&text, 1 << 20);
    if ((rc = buf_read_file(&text, path)) == FW_EIO) {
        buf_printf(diag, "%s: error: cannot read: %s\n", path, strerror(errno));
        buf_cleanup(&text);
        sla_config_cleanup(&sla);
        return FW_EIO;
    }
    if (rc)
        buf_printf(diag, "%s: error: config file larger than 1 MiB\n", path);
    if (rc || (rc = ydoc_load(d, path, text.data ? text.data : "", text.len, diag)))
        goto out;
    free(c->config_text);
    c->config_text = xstrdup(text.data ? text.data : "");
    yaml_node_t *root = ydoc_root(d);
    if (root->type != YAML_MAPPING_NODE) {
        CERR(root, "the configuration must be a mapping");
        goto out;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *k = yscalar(kn), *s = yscalar(v);
        if (!k) {
            CERR(kn, "keys must be plain names");
            continue;
        }
        if (!strcmp(k, "brand")) {
            if (parse_brand(c, d, v, diag))
                rc = FW_EPARSE;
            continue;
        }
        if (!strcmp(k, "outreach")) {
            if (parse_outreach(c, d, v, diag))
                rc = FW_EPARSE;
            continue;
        }
        if (!strcmp(k, "drafting")) {
            if (parse_drafting(c, d, v, diag))
                rc = FW_EPARSE;
            continue;
        }
        if (!strcmp(k, "sla")) {
            if (have_sla++)
                CERR(kn, "sla is set twice");
            else if (sla_config_parse(&sla, d, v, diag))
                rc = FW_EPARSE;
            continue;
        }
        if (!strcmp(k, "sentiment")) {
            if (parse_sentiment(c, d, v, diag))
                rc = FW_EPARSE;
            continue;
        }
        if (!strcmp(k, "priority")) {
            if (parse_priority(c, d, v, diag))
                rc = FW_EPARSE;
            continue;
        }
        if (!strcmp(k, "health")) {
            if (parse_health(c, d, v, diag))
                rc = FW_EPARSE;
            continue;
        }
        if (!strcmp(k, "churn_model")) {
            if (churn_parse(&c->churn, d, v, diag))
                rc = FW_EPARSE;
            continue;
        }
        if (!strcmp(k, "cluster")) {
            if (cluster_config_parse(&c->cluster, d, v, diag))
                rc = FW_EPARSE;
            continue;
        }
        if (!strcmp(k, "connectors")) {
            if (delivery_config_parse(&c->delivery, d, v, diag))
                rc = FW_EPARSE;
            continue;
        }
        if (!strcmp(k, "playbooks")) {
            if (v->type != YAML_SEQUENCE_NODE) {
                CERR(v, "playbooks must be a list of playbook files");
                continue;
            }
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++) {
                const char *pf = yscalar(ydoc_node(d, *it));
                if (!pf || !*pf) {
                    CERR(ydoc_node(d, *it), "each playbook file must be a file name");
                    continue;
                }
                c->playbooks = xrealloc(c->playbooks, (c->nplaybooks + 1) * sizeof *c->playbooks);
                c->playbooks[c->nplaybooks++] = xstrdup(pf);
            }
            continue;
        }
        if (!strcmp(k, "snapshot")) {
            /* snapshot: {every: 5m, load: true} (docs/operations.md) */
            if (v->type != YAML_MAPPING_NODE) {
                CERR(v, "snapshot must be a mapping: {every: 5m, load: true}");
                continue;
            }
            for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
                 q < v->data.mapping.pairs.top; q++) {
                yaml_node_t *sk = ydoc_node(d, q->key), *sv = ydoc_node(d, q->value);
                const char *skn = yscalar(sk), *svs = yscalar(sv);
                if (skn && !strcmp(skn, "every")) {
                    parse_dur0(d, diag, sv, &c->snapshot_every);
                } else if (skn && !strcmp(skn, "load")) {
                    if (!svs || (strcmp(svs, "true") && strcmp(svs, "false")))
                        CERR(sv, "snapshot.load must be true or false");
                    else
                        c->snapshot_load = !strcmp(svs, "true");
                } else {
                    CERR(sk, "unknown snapshot key (every, load)");
                }
            }
            continue;
        }
        if (!strcmp(k, "guidance")) {
            yaml_node_t *mh = ymap_get(d, v, "min_history");
            const char *ms = yscalar(mh);
            char *end = NULL;
            long mhn = ms ? strtol(ms, &end, 10) : -1;
            if (v->type != YAML_MAPPING_NODE || !mh)
                CERR(v, "guidance must be a mapping: {min_history: N}");
            else if (!ms || *end || mhn < 1 || mhn > 100000)
                CERR(mh, "guidance.min_history must be a whole number from 1 to 100000");
            else
                c->min_history = (size_t)mhn;
            continue;
        }
        if (!strcmp(k, "rules")) {
            if (v->type != YAML_SEQUENCE_NODE) {
                CERR(v, "rules must be a list of rule pack files");
                continue;
            }
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++) {
                const char *rf = yscalar(ydoc_node(d, *it));
                if (!rf || !*rf) {
                    CERR(ydoc_node(d, *it), "each rule pack must be a file name");
                    continue;
                }
                c->rules = xrealloc(c->rules, (c->nrules + 1) * sizeof *c->rules);
                c->rules[c->nrules++] = xstrdup(rf);
            }
            continue;
        }
        if (!s) {
            CERR(v, "%s must be a single value", k);
            continue;
        }
        if (!strcmp(k, "listen")) {
            if (config_set_listen(c, s))
                CERR(v, "listen must be host:port, e.g. 127.0.0.1:8080");
        } else if (!strcmp(k, "templates")) {
            free(c->templates);
            c->templates = xstrdup(s);
        } else if (!strcmp(k, "known_issues")) {
            free(c->known_issues);
            c->known_issues = xstrdup(s);
        } else if (!strcmp(k, "messages")) {
            if (strcmp(s, "true") && strcmp(s, "false"))
                CERR(v, "messages must be true or false");
            c->messages = !strcmp(s, "true");
        } else if (!strcmp(k, "database")) {
            free(c->database);
            c->database = xstrdup(s);
        } else if (!strcmp(k, "api_token_file")) {
            if (read_secret(s, &c->api_token, diag))
                CERR(v, "cannot use api_token_file '%s'", s);
        } else if (!strcmp(k, "public_metrics")) {
            if (strcmp(s, "true") && strcmp(s, "false"))
                CERR(v, "public_metrics must be true or false");
            c->public_metrics = !strcmp(s, "true");
        } else if (!strcmp(k, "allow_unauthenticated")) {
            if (strcmp(s, "true") && strcmp(s, "false"))
                CERR(v, "allow_unauthenticated must be true or false");
            c->allow_open = !strcmp(s, "true");
        } else if (!strcmp(k, "virtual_clock")) {
            if (strcmp(s, "true") && strcmp(s, "false"))
                CERR(v, "virtual_clock must be true or false");
            c->virtual_clock = !strcmp(s, "true");
        } else if (!strcmp(k, "max_body")) {
            if (parse_size(s, &c->max_body))
                CERR(v, "max_body must be a size such as 4MiB or 65536");
        } else if (!strcmp(k, "max_events")) {
            size_t m;
            if (parse_size(s, &m) || m > 1000000)
                CERR(v, "max_events must be an integer from 1 to 1000000");
            else
                c->max_events = m;
        } else if (!strcmp(k, "max_event_members")) {
            size_t m;
            if (parse_size(s, &m) || m > 1000000)
                CERR(v, "max_event_members must be an integer from 1 to 1000000");
            else
                c->max_event_members = m;
        } else if (!strcmp(k, "max_event_data")) {
            if (parse_size(s, &c->max_event_data))
                CERR(v, "max_event_data must be a size such as 64KiB or 65536");
        } else if (!strcmp(k, "event_time_min")) {
            if (fw_time_parse(s, strlen(s), &c->event_time_min))
                CERR(v, "event_time_min must be an RFC 3339 time such as 2000-01-01T00:00:00Z");
        } else if (!strcmp(k, "event_time_skew")) {
            if (parse_dur0(d, diag, v, &c->event_time_skew))
                rc = FW_EPARSE;
        } else if (!strcmp(k, "max_connections") || !strcmp(k, "max_connections_per_address") ||
                   !strcmp(k, "http_threads") || !strcmp(k, "rate_limit") ||
                   !strcmp(k, "rate_burst")) {
            char *end;
            unsigned long n = strtoul(s, &end, 10);
            unsigned *to = !strcmp(k, "max_connections")   ? &c->max_connections
                           : !strcmp(k, "http_threads")    ? &c->http_threads
                           : !strcmp(k, "rate_limit")      ? &c->rate_limit
                           : !strcmp(k, "rate_burst")      ? &c->rate_burst
                                                           : &c->max_connections_per_address;
            unsigned long lo = to == &c->rate_limit ? 0 : 1;
            unsigned long hi = to == &c->http_threads ? 64 : 1000000;
            if (end == s || *end || n < lo || n > hi)
                CERR(v, "%s must be an integer from %lu to %lu", k, lo, hi);
            else
                *to = (unsigned)n;
        } else if (!strcmp(k, "request_deadline")) {
            if (parse_dur(d, diag, v, &c->request_deadline))
                rc = FW_EPARSE;
        } else if (!strcmp(k, "listen_tls")) {
            if (config_set_listen_tls(c, s))
                CERR(v, "listen_tls must be host:port, e.g. 0.0.0.0:8443");
        } else if (!strcmp(k, "tls_cert") || !strcmp(k, "tls_key")) {
            char **to = !strcmp(k, "tls_cert") ? &c->tls_cert : &c->tls_key;
            free(*to);
            *to = xstrdup(s);
        } else if (!strcmp(k, "log_level")) {
            if (strcmp(s, "debug") && strcmp(s, "info") && strcmp(s, "warn") && strcmp(s, "error"))
                CERR(v, "log_level must be debug, info, warn or error");
            free(c->log_level);
            c->log_level = xstrdup(s);
        } else {
            CERR(kn, "unknown setting '%s'", k);
        }
    }
out:
    if (!rc && have_sla) {
        sla_config_cleanup(&c->sla);
        c->sla = sla; /* moved: nothing left to free in the local */
    } else {
        sla_config_cleanup(&sla);
    }
    ydoc_cleanup(d);
    buf_cleanup(&text);
    return rc;
}

int config_load_env(struct config *c, struct buf *diag)
{
    if (delivery_config_env(&c->delivery, diag))
        return FW_EINVAL;
    const char *t = getenv("FOREWARN_API_TOKEN");
    const char *tf = getenv("FOREWARN_API_TOKEN_FILE");
    if (tf && *tf)
        return read_secret(tf, &c->api_token, diag);
    if (t && *t) {
        if (strlen(t) < 16) {
            buf_puts(diag, "error: FOREWARN_API_TOKEN must be at least 16 characters\n");
            return FW_EINVAL;
        }
        free(c->api_token);
        c->api_token = xstrdup(t);
    }
    return 0;
}
