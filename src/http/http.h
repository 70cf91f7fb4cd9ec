/*
 * http.h -- the HTTP API (libmicrohttpd, one thread per connection).
 *
 * Requests are parsed and validated on the connection's thread; writes go
 * through the pipeline (which answers once the data is durable), reads go
 * to a pool of read-only SQLite connections or, for live state, to the
 * engine under its lock.  Every endpoint but /healthz, /readyz and
 * /metrics requires the bearer token when one is configured.
 */
#ifndef FW_HTTP_H
#define FW_HTTP_H

#include "serve/config.h"
#include "serve/pipeline.h"

struct http_server;

/*
 * Listen per cfg and serve until http_stop.  The pipeline and config must
 * outlive the server.  Returns 0 or FW_EIO (address in use, ...).
 */
int http_start(struct http_server **out, const struct config *cfg, struct pipeline *p);
/* The bound port (useful when cfg asked for port 0). */
unsigned http_port(const struct http_server *s);
/* Mark ready (after recovery) for /readyz. */
void http_set_ready(struct http_server *s, int ready);
void http_stop(struct http_server *s);

#endif
