/*
 * http.h -- the HTTP API (libmicrohttpd: epoll, a pool of threads, connection
 * limits, a deadline to receive each request, per-token rate limits, and
 * optionally a TLS listener beside the plain one).
 *
 * Requests are parsed and validated on a pool thread; writes go
 * through the pipeline (which answers once the data is durable), reads go
 * to a pool of read-only SQLite connections or, for live state, to the
 * engine under its lock.  Every endpoint but /healthz, /readyz and
 * /metrics requires the bearer token when one is configured.
 */
#ifndef FW_HTTP_H
#define FW_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "pipeline/pipeline.h"

struct draft_config;

struct http_server;

/* What the HTTP layer needs of the server's configuration (serve fills it in). */
struct http_options {
    const char *listen_addr; /* IPv4 address */
    unsigned listen_port;    /* 0 picks a free port */
    const char *database;    /* for the read pool and the audit trail's writer */
    const char *api_token;   /* the shared (admin) token, or NULL */
    int public_metrics;      /* /metrics needs no token */
    size_t max_body;         /* bytes per request body */
    size_t max_events;       /* events per request */
    size_t max_event_members; /* object keys and list items in one event */
    size_t max_event_data;    /* bytes of an event's data as compact JSON */
    int64_t event_time_min;   /* the earliest event time accepted */
    int64_t event_time_skew;  /* how far past the server clock an event may be dated */
    unsigned max_connections; /* open at once, both listeners each */
    unsigned max_per_address; /* open at once from one IP address */
    int64_t request_deadline; /* ms to receive a request's headers and body */
    unsigned threads;         /* threads polling the connections (libmicrohttpd's pool) */
    unsigned rate_limit;      /* requests per second per token; 0: no limit */
    unsigned rate_burst;      /* requests a token may make at once beyond its rate */
    const char *tls_addr;     /* listen_tls address, or NULL: no TLS listener */
    unsigned tls_port;        /* 0 picks a free port */
    const char *tls_cert;     /* PEM certificate (chain) file */
    const char *tls_key;      /* PEM private key file */
    const struct draft_config *drafting; /* POST /v1/cases/{id}/draft; NULL: template only */
};

/*
 * Listen per opt and serve until http_stop.  The pipeline and the strings
 * of opt must outlive the server (opt itself is copied).  Returns 0 or
 * FW_EIO (address in use, ...).
 */
int http_start(struct http_server **out, const struct http_options *opt, struct pipeline *p);
/* The bound port (useful when the options asked for port 0). */
unsigned http_port(const struct http_server *s);
/* The bound TLS port (listen_tls), or 0 without a TLS listener. */
unsigned http_tls_port(const struct http_server *s);
/* Mark ready (after recovery) for /readyz. */
void http_set_ready(struct http_server *s, int ready);
/*
 * Tell the console's live streams what a committed group changed (GET
 * /v1/stream).  Called by whoever receives the pipeline's `committed`
 * hook, from the engine thread; it only takes a short lock.  NULL s:
 * nothing.  Must not be called once http_stop has begun.
 */
void http_notify(struct http_server *s, const struct pipeline_commit *c);
void http_stop(struct http_server *s);

#endif
