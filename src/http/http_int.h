/*
 * http_int.h -- private to the http module: the request record handlers
 * see, the route table, and the pool of read-only store connections.
 */
#ifndef FW_HTTP_INT_H
#define FW_HTTP_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "http/auth.h"
#include "http/http.h"
#include "pipeline/pipeline.h"
#include "store/auth.h"
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

/* The audit trail's writer thread (audit.c). */
struct audit_log;
/* Open a writer connection to path and start the thread: 0, or FW_EDB / FW_EIO (logged). */
int http__audit_start(struct audit_log **out, const char *path);
/* Write what is queued, stop the thread, close its connection.  NULL: nothing. */
void http__audit_stop(struct audit_log *a);
/*
 * Append rec to the trail and wait until it is durable: 0, or FW_EDB when
 * its transaction failed.  rec's strings are only read before it returns.
 */
int http__audit_record(struct audit_log *a, const struct audit_record *rec);
/* Queue "token id was used at `at`" (no wait; best effort). a NULL: nothing. */
void http__audit_touch(struct audit_log *a, int64_t token_id, int64_t at);

/*
 * Requests per token (ratelimit.c): a token bucket of `burst` requests
 * refilled at `rate` a second.  new returns NULL for rate 0 (no limit);
 * free(NULL) does nothing.
 */
struct ratelimit;
struct ratelimit *http__ratelimit_new(unsigned rate, unsigned burst);
void http__ratelimit_free(struct ratelimit *rl);
/* Spend one request of the token with this digest: 0, or the seconds until one is there. */
unsigned http__ratelimit_take(struct ratelimit *rl, const unsigned char digest[AUTH_DIGEST_LEN],
                              int64_t now_ms);

struct http_env {
    struct http_options opt;
    struct pipeline *pipeline;
    struct readers readers;
    struct audit_log *audit;
    int has_shared;                              /* the config has a shared (admin) token */
    unsigned char shared_digest[AUTH_DIGEST_LEN]; /* its SHA-256 */
    int64_t started;
    int ready;
    struct sessions *sessions; /* the console's sign-in sessions (session.c) */
    struct stream_hub *stream; /* the console's live events (stream.c) */
    struct ratelimit *ratelimit; /* per token; NULL: no limit */
    uint64_t deadline_closed;    /* connections closed for not delivering a request in time */
    uint64_t rate_limited;       /* requests refused 429 */
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
    struct principal who;     /* the caller, filled by the router before the handler */
    char audit_id[160];       /* the audited object's id; empty: the route tail up to '/' */
    const char *audit_action; /* what the audit row says was done; NULL: "METHOD /path" */
    /* Authenticated by the session cookie (not a bearer token): changes need the CSRF header. */
    int via_cookie;
    char session_csrf[64];    /* that session's CSRF value (empty otherwise) */
    char session_id[64];      /* that session's id as presented (for DELETE /v1/session) */
    /* Response extras; the defaults suit the API (Cache-Control: no-store, no cookie). */
    const char *cache_control; /* NULL: "no-store" */
    const char *etag;          /* static assets: their strong ETag */
    int is_page;               /* an HTML page: send the Content-Security-Policy */
    const void *static_body;   /* static assets: the bytes to send instead of out (not copied) */
    size_t static_len;
    char set_cookie[256];      /* Set-Cookie value, empty: none */
    unsigned retry_after;      /* Retry-After seconds (429, 503); 0: none */
    struct stream_client *stream; /* GET /v1/stream: answer with this event stream (stream.c) */
    /* The presented token's digest (bearer or the session's), for the rate limit. */
    unsigned char token_digest[AUTH_DIGEST_LEN];
    int has_token;
};

/* route.public values */
#define ROUTE_PUBLIC 1         /* no token ever */
#define ROUTE_PUBLIC_METRICS 2 /* no token while public_metrics is on (default); else roles */

struct route {
    const char *method;
    const char *path;
    int prefix; /* path is a prefix; the rest is in req->tail */
    int public; /* ROUTE_PUBLIC, ROUTE_PUBLIC_METRICS, or 0: authenticated */
    int roles;  /* bitmask of enum role allowed to call it (403 for others) */
    const char *audit; /* object kind to audit ("message", "customer", "case"), or NULL */
    void (*handler)(struct req *r);
};

/*
 * The route for method and path (NULL: none), trying the tables of
 * http_route_tables in order.  *path_known: some method has the path (405
 * rather than 404); *tail: the rest of the path after a prefix route's
 * path (never empty), else NULL.  Pure: parse.c.
 */
const struct route *http__route_find(const char *method, const char *path, int *path_known,
                                     const char **tail);
/*
 * The token of an "Authorization: Bearer <token>" header value (scheme
 * case-insensitive, blanks after it skipped), pointing into h; NULL when h
 * is NULL or another scheme.  Pure: parse.c.
 */
const char *http__bearer_token(const char *h);

/* Each table is terminated by {0}; the router tries them in this order. */
extern const struct route http_routes[];      /* routes.c: events, reads, messages, admin */
extern const struct route http_case_routes[]; /* case_routes.c: cases and the queue */
extern const struct route http_auth_routes[]; /* auth_routes.c: audit, users, me */
extern const struct route http_stats_routes[]; /* stats_routes.c: outcomes, leaderboard */
extern const struct route http_redrive_routes[]; /* redrive_routes.c: dead letters in bulk */
extern const struct route http_known_routes[]; /* known_routes.c: known issues, maintenance */
/* POST /v1/cases/{id}/draft (draft_routes.c), reached through the case routes. */
void http__case_draft(struct req *r, const char *id);
extern const struct route *const http_route_tables[]; /* NULL-terminated */

/*
 * Who is calling (req->who), from the Authorization header: 0, FW_EINVAL
 * when a token is needed and missing, wrong, expired or revoked (401), or
 * FW_EDB when the store could not be read (503).  See auth.c.
 */
int http__authenticate(struct req *r);

/*
 * Console sessions (session.c): a session id (in the HttpOnly cookie
 * "fw_session") names the token its user signed in with, so a session
 * authenticates exactly as that token would, revoked and expired tokens,
 * removed users and changed roles included.  Only the id's SHA-256 is
 * kept, in memory: a restart signs everyone out.
 */
struct sessions;
struct sessions *http__sessions_new(void);
void http__sessions_free(struct sessions *ss); /* NULL: nothing */
/*
 * The token digest and CSRF value of the live session with this id: 0, or
 * FW_ENOTFOUND (unknown or expired).  csrf receives at most 64 bytes.
 */
int http__session_lookup(struct sessions *ss, const char *id, unsigned char digest[AUTH_DIGEST_LEN],
                         char csrf[64]);
/* The cookie's name. */
#define HTTP_SESSION_COOKIE "fw_session"
/* The header a cookie-authenticated change must carry, equal to the session's CSRF value. */
#define HTTP_CSRF_HEADER "X-Forewarn-CSRF"
extern const struct route http_session_routes[]; /* POST/GET/DELETE /v1/session */

/*
 * The console's live events (stream.c, GET /v1/stream): a hub that the
 * engine thread publishes to after each commit and that each open stream
 * reads from.  new: never fails (now: the engine clock at start); close: every open stream ends, and new
 * ones are refused (call it before the daemon stops); free: after the
 * daemon stopped (no stream is open), NULL does nothing.
 */
struct stream_hub;
struct stream_client;
struct MHD_Response;
struct stream_hub *http__stream_new(int virtual_clock, int64_t now);
void http__stream_close(struct stream_hub *h);
void http__stream_free(struct stream_hub *h);
/* Publish what a committed group changed (any thread; NULL hub: nothing). */
void http__stream_commit(struct stream_hub *h, const struct pipeline_commit *c);
/*
 * The MHD response for r->stream (which it takes over; r->stream becomes
 * NULL), or NULL when MHD could not make one (the stream is released).
 */
struct MHD_Response *http__stream_response(struct req *r);
extern const struct route http_stream_routes[]; /* GET /v1/stream */

/*
 * Who holds the token with this digest (NULL: no token presented), as
 * http__authenticate decides it: 0 (who filled; authentication off leaves
 * "anonymous", admin, authenticated 0), FW_EINVAL (401) or FW_EDB (503).
 */
int http__principal_for(struct http_env *env, const unsigned char *digest, struct principal *who);

/* A fresh event id: prefix (at most 8 bytes) and 24 random hex digits (act.c). */
void http__event_id(const char *prefix, char out[40]);
/*
 * A person's action as a journal event (act.c): the CloudEvent {eid, type,
 * subject (NULL: a global event), data (not taken)} dated by the server's
 * clock, validated (g: the rule set's globals, or NULL) and applied by
 * pipeline_act.  0 when it took effect (case_id, if not NULL, receives the
 * case it touched); otherwise the error answer is written (400, 404, 409,
 * or 503 naming `what`: "action", "change") and the error returned.
 */
struct ingest_globals;
int http__act(struct req *r, const char *eid, const char *type, const char *subject, json_t *data,
              const struct ingest_globals *g, const char *what, char case_id[24]);

void http_reply(struct req *r, unsigned status, const char *content_type, const char *body,
                size_t len);
void http_reply_json(struct req *r, unsigned status, struct buf *json);
void http_error(struct req *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *http_query(struct req *r, const char *name);
const char *http_header(struct req *r, const char *name);
/*
 * Optional query parameters: an RFC 3339 time (FW_TIME_NONE when absent),
 * an integer in [lo, hi] (dflt when absent).  On a malformed value the
 * reply is already a 400 and -1 is returned.
 */
int http__query_time(struct req *r, const char *name, int64_t *out);
int http__query_int(struct req *r, const char *name, long lo, long hi, long dflt, long *out);

#endif
