/*
 * ccfg.c -- the `cluster:` section of the config file (docs/operations.md,
 * "Cluster").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "util/fwtime.h"
#include "util/util.h"
#include "util/yaml.h"

void cluster_config_init(struct cluster_config *c)
{
    memset(c, 0, sizeof *c);
    c->partitions = 8;
    c->stream = xstrdup("FOREWARN");
    c->subject = xstrdup("forewarn.events");
    c->dedup_window = 24 * FW_HOUR;
    c->checkpoint_every = 30 * FW_SECOND;
    c->ownership_every = 250;
}

void cluster_config_cleanup(struct cluster_config *c)
{
    free(c->nats);
    free(c->postgres);
    free(c->node);
    free(c->stream);
    free(c->subject);
    memset(c, 0, sizeof *c);
}

/* A NATS subject token or stream name: letters, digits, '-' and '_' ('.' between tokens). */
static int name_ok(const char *s, int dots)
{
    if (!*s || *s == '.')
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || (dots && *p == '.' && p[1] && p[1] != '.')))
            return 0;
    return 1;
}

#define CERR(node, ...)                                                                            \
    do {                                                                                           \
        ydiag(d, diag, node, __VA_ARGS__);                                                         \
        rc = FW_EPARSE;                                                                            \
    } while (0)

int cluster_config_parse(struct cluster_config *c, struct ydoc *d, yaml_node_t *n,
                         struct buf *diag)
{
    int rc = 0;
    if (n->type != YAML_MAPPING_NODE) {
        CERR(n, "cluster must be a mapping: {nats: URL, postgres: CONNINFO, node: NAME, "
                "partitions: N}");
        return rc;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = ydoc_node(d, p->key), *v = ydoc_node(d, p->value);
        const char *k = yscalar(kn), *s = yscalar(v);
        if (!k) {
            CERR(kn, "keys must be plain names");
            continue;
        }
        if (!s || !*s) {
            CERR(v, "cluster.%s must be a single value", k);
            continue;
        }
        char **str = !strcmp(k, "nats")       ? &c->nats
                     : !strcmp(k, "postgres") ? &c->postgres
                     : !strcmp(k, "node")     ? &c->node
                     : !strcmp(k, "stream")   ? &c->stream
                     : !strcmp(k, "subject")  ? &c->subject
                                              : NULL;
        if (str) {
            if (!strcmp(k, "nats") && strncmp(s, "nats://", 7) && strncmp(s, "tls://", 6))
                CERR(v, "cluster.nats must be a nats:// or tls:// URL");
            else if (!strcmp(k, "node") && (!name_ok(s, 0) || strlen(s) > 64))
                CERR(v, "cluster.node must be letters, digits, '-' or '_' (at most 64)");
            else if (!strcmp(k, "stream") && (!name_ok(s, 0) || strlen(s) > 64))
                CERR(v, "cluster.stream must be letters, digits, '-' or '_' (at most 64)");
            else if (!strcmp(k, "subject") && (!name_ok(s, 1) || strlen(s) > 128))
                CERR(v, "cluster.subject must be tokens of letters, digits, '-' or '_' "
                        "separated by '.'");
            else {
                free(*str);
                *str = xstrdup(s);
            }
            continue;
        }
        if (!strcmp(k, "partitions")) {
            char *end = NULL;
            long v2 = strtol(s, &end, 10);
            if (*end || v2 < 1 || v2 > 1024)
                CERR(v, "cluster.partitions must be a whole number from 1 to 1024");
            else
                c->partitions = (unsigned)v2;
            continue;
        }
        int64_t *dur = !strcmp(k, "dedup_window")       ? &c->dedup_window
                       : !strcmp(k, "checkpoint_every") ? &c->checkpoint_every
                       : !strcmp(k, "ownership_every")  ? &c->ownership_every
                                                        : NULL;
        if (dur) {
            int64_t ms;
            if (fw_duration_parse(s, strlen(s), &ms) || ms <= 0)
                CERR(v, "cluster.%s: bad duration '%s' (expected e.g. 250ms, 30s, 24h)", k, s);
            else
                *dur = ms;
            continue;
        }
        CERR(kn, "unknown cluster setting '%s' (nats, postgres, node, partitions, stream, "
                 "subject, dedup_window, checkpoint_every, ownership_every)",
             k);
    }
    if (!rc && (!c->nats || !c->postgres))
        CERR(n, "cluster needs both nats (a URL) and postgres (a connection string)");
    if (!rc && !c->node) {
        char host[64] = "node";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        for (char *q = host; *q; q++)
            if (!name_ok((char[]){*q, 0}, 0))
                *q = '-';
        char name[96];
        snprintf(name, sizeof name, "%s-%ld", host, (long)getpid());
        c->node = xstrdup(name);
    }
    c->on = !rc;
    return rc;
}

unsigned cluster_partition_of(const char *subject, unsigned partitions)
{
    return (unsigned)(fw_hash(subject, strlen(subject)) % partitions);
}
