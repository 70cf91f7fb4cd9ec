/*
 * config.c -- the server's configuration file (YAML) and environment.
 */
#include "serve/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/yamlutil.h"
#include "util/util.h"

void config_init(struct config *c)
{
    memset(c, 0, sizeof *c);
    c->listen_addr = xstrdup("127.0.0.1");
    c->listen_port = 8080;
    c->database = xstrdup("forewarn.db");
    c->max_body = 4 << 20;
    c->max_events = 10000;
    c->http_threads = 4;
    c->log_level = xstrdup("info");
}

void config_cleanup(struct config *c)
{
    free(c->listen_addr);
    free(c->database);
    for (size_t i = 0; i < c->nrules; i++)
        free(c->rules[i]);
    free(c->rules);
    free(c->api_token);
    free(c->log_level);
    free(c->ready_file);
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

int config_load_file(struct config *c, const char *path, struct buf *diag)
{
    struct ydoc doc, *d = &doc;
    struct buf text;
    int rc = 0;
    memset(&doc, 0, sizeof doc);
    buf_init(&text, 1 << 20);
    FILE *f = fopen(path, "rb");
    if (!f) {
        buf_printf(diag, "%s: error: cannot read: %s\n", path, strerror(errno));
        buf_cleanup(&text);
        return FW_EIO;
    }
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(&text, chunk, n)) {
            buf_printf(diag, "%s: error: config file larger than 1 MiB\n", path);
            rc = FW_ETOOBIG;
            break;
        }
    fclose(f);
    if (rc || (rc = ydoc_load(d, path, text.data ? text.data : "", text.len, diag)))
        goto out;
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
        } else if (!strcmp(k, "database")) {
            free(c->database);
            c->database = xstrdup(s);
        } else if (!strcmp(k, "api_token_file")) {
            if (read_secret(s, &c->api_token, diag))
                CERR(v, "cannot use api_token_file '%s'", s);
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
    ydoc_cleanup(d);
    buf_cleanup(&text);
    return rc;
}

int config_load_env(struct config *c, struct buf *diag)
{
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
