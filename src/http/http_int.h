/*
 * http_int.h -- private to the http module: the request record handlers
 * see, the route table, and the pool of read-only store connections.
 */
#ifndef FW_HTTP_INT_H
#define FW_HTTP_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "serve/config.h"
#include "serve/pipeline.h"
#include "store/store.h"
#include "util/buf.h"

struct MHD_Connection;

#define HTTP_READERS 8

/* Read-only connections, opened on first use and reused. */
struct readers {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *path;
    struct store *idle[HTTP_READERS];
    size_t nidle, open;
};

void http__readers_init(struct readers *rd, const char *path);
void http__readers_cleanup(struct readers *rd);
/* A connection for this request, or NULL (error logged). Give it back with release. */
struct store *http__reader_acquire(struct readers *rd);
void http__reader_release(struct readers *rd, struct store *s);

struct http_env {
    const struct config *cfg;
    struct pipeline *pipeline;
    struct readers readers;
    int64_t started;
    int ready;
};

struct req {
    struct http_env *env;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const char *tail; /* for prefix routes: the path after the prefix */
    const char *body;
    size_t body_len;
    unsigned status;
    const char *content_type;
    int www_authenticate;
    struct buf out;
};

struct route {
    const char *method;
    const char *path;
    int prefix; /* path is a prefix; the rest is in req->tail */
    int public; /* no token needed */
    void (*handler)(struct req *r);
};

extern const struct route http_routes[]; /* terminated by {0} */

void http_reply(struct req *r, unsigned status, const char *content_type, const char *body,
                size_t len);
void http_reply_json(struct req *r, unsigned status, struct buf *json);
void http_error(struct req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *http_query(struct req *r, const char *name);
const char *http_header(struct req *r, const char *name);

#endif
