/*
 * delivery_int.h -- private to the delivery module: the connector
 * interface, the one-attempt context a worker hands a connector, and the
 * helpers the connectors share (HTTP with outcome classification, JSON
 * values, URL joining), exposed here so unit tests can reach them.
 *
 * A connector is a const struct with designated initializers in its own
 * file (email.c, sms.c, ...), listed once in connectors.c.  Adding a
 * connector is adding a file and a line there.
 */
#ifndef FW_DELIVERY_INT_H
#define FW_DELIVERY_INT_H

#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery/delivery.h"
#include "store/messages.h"

/* The outcome of one attempt. */
enum dresult {
    DRESULT_OK,        /* delivered: status sent */
    DRESULT_RETRY,     /* transient (connection, timeout, 5xx, 429): back off and retry */
    DRESULT_PERMANENT, /* the receiver refused it for good (4xx, bad recipient): dead now */
};

/* What a connector gets for one attempt; owned by the worker. */
struct dattempt {
    const struct delivery_config *cfg;
    CURL *curl;       /* the worker's easy handle, reset before each attempt (keeps connections) */
    int64_t wall_now; /* ms, wall clock (signatures, Date headers) */
    char err[512];    /* out: why it failed, for last_error and message.failed */
};

struct connector {
    const char *name;            /* worker name, in logs: "email", "zendesk" */
    const char *channels[4];     /* outbox channels it serves, NULL-terminated */
    /* Configured?  A channel whose connector is not configured is `stored`. NULL: always. */
    int (*configured)(const struct delivery_config *cfg);
    /* One delivery attempt.  NULL: delivered by storing it (in_app). */
    enum dresult (*send)(struct dattempt *a, const struct outbox_msg *m);
    /*
     * Without configuration the message is still `sent` by storing it (the
     * API serves it) rather than `stored` (chatbot: the pull API is the
     * delivery, the push webhook is optional).
     */
    int delivered_by_storing;
    /*
     * Is the receiver there?  A cheap request that delivers nothing (HTTP
     * HEAD of the connector's URL, SMTP EHLO and NOOP): DRESULT_OK when it
     * answers as a working server does, DRESULT_RETRY (a->err says why)
     * when it does not.  Run for a connector with expired dead letters and
     * no traffic (dispatcher.c); NULL: never probed.
     */
    enum dresult (*probe)(struct dattempt *a);
};

/* The table, in worker order; terminated by NULL. */
extern const struct connector *const delivery__connectors[];

extern const struct connector delivery__email, delivery__sms, delivery__push, delivery__slack,
    delivery__zendesk, delivery__webhook, delivery__inapp, delivery__chatbot;

/*
 * Backoff before retry number `attempts` (attempts made so far, >= 1):
 * base * 2^(attempts-1) capped at backoff_max, then a uniform jitter in
 * [50%, 100%] of that, drawn from `rnd`.  Never less than 1 ms.
 */
int64_t delivery__backoff(const struct delivery_config *c, int attempts, uint64_t rnd);

/*
 * After attempt number `attempts` failed at `now` (retry clock), the first
 * failure having been at `first` (0: this one is the first): when to try
 * again, now + delivery__backoff but never past first + retry_for (the
 * last retry falls on the limit itself), or 0 when the message is given
 * up: the limit has passed, or max_attempts (when > 0) is reached.
 */
int64_t delivery__retry_at(const struct delivery_config *c, int attempts, int64_t first,
                           int64_t now, uint64_t rnd);

/*
 * The identifier receivers see for a message: "msg_" and the first 32 hex
 * digits of SHA-256(idempotency key), the same digits as the e-mail
 * Message-ID.  Idempotency keys name the customer (an e-mail address, a
 * phone number), and receivers log the ids they get; the hash carries no
 * personal data, yet is stable across retries, restarts and re-drives,
 * so a receiver still drops a repeat.  Every connector sends this, never
 * the key itself (webhook-id, Idempotency-Key, I-Twilio-Idempotency-Token,
 * the idempotency_key field of webhook bodies).
 */
#define DELIVERY_WIRE_ID_LEN 37 /* "msg_" + 32 hex digits + NUL */
void delivery__wire_id(const char *key, char out[DELIVERY_WIRE_ID_LEN]);

/* ---- HTTP (dhttp.c) ---- */

struct dhttp_req {
    const char *method;       /* "POST" or "PUT" */
    const char *url;
    const char *content_type; /* "application/json", "application/x-www-form-urlencoded" */
    const char *body;
    size_t len;
    const char *username, *password; /* HTTP basic auth, or NULL */
    const char *bearer;              /* Authorization: Bearer, or NULL */
    struct curl_slist *headers;      /* extra headers; borrowed */
};

/*
 * Perform one request with the attempt's timeout.  2xx: OK.  Connection
 * errors, timeouts, 408, 429 and 5xx: RETRY.  Other statuses: PERMANENT.
 * a->err says what happened: the method, the URL cut to scheme://host:port
 * (its path, credentials and query can be secrets: a Slack webhook URL
 * is one), the status and the start of the response body.
 */
enum dresult delivery__http(struct dattempt *a, const struct dhttp_req *r);

/*
 * A probe of an HTTP receiver: HEAD of url, nothing sent.  Any answer but
 * 408, 429 and 5xx means a server that works is there (a 404 or 405 to a
 * HEAD still says so, and so do 501 and 505): DRESULT_OK.  No answer or
 * one of those: DRESULT_RETRY with a->err.
 */
enum dresult delivery__http_probe(struct dattempt *a, const char *url);

/*
 * The URL as errors (logs, last_error, message.failed events) may show it:
 * "scheme://host:port/...".  A Slack incoming-webhook URL is its own
 * secret (the path is the token), and any URL may carry user:password or a
 * token in its query; none of that may reach a log.
 */
void delivery__url_for_log(const char *url, char *out, size_t n);

/* base (a configured URL, trailing slashes ignored) + path; caller frees. */
char *delivery__url(const char *base, const char *path);

/*
 * Is s usable as a header value (no CR, LF or other control characters)?
 * Keys, tokens and addresses go into headers verbatim; a message with a
 * value that is not fails permanently rather than injecting a header.
 */
int delivery__header_safe(const char *s);

/* A JSON string of s, or null when s is NULL; invalid UTF-8 bytes become U+FFFD. */
json_t *delivery__jstr(const char *s);
/* Parse stored JSON text (meta, signals); NULL when absent or malformed. */
json_t *delivery__jparse(const char *text);
/* A string field of the meta object, or NULL. */
const char *delivery__meta_str(json_t *meta, const char *key);

/*
 * The message as JSON for webhook receivers: id, idempotency_key (the
 * wire id, delivery__wire_id, not the key),
 * customer, audience, channel, recipient, subject, body, html, signals,
 * meta, created_at, send_at.  New reference.
 */
json_t *delivery__message_json(const struct outbox_msg *m);

/*
 * Sign and POST a Standard Webhooks envelope {type, timestamp, data} to
 * url: headers webhook-id (id: pass a delivery__wire_id), webhook-timestamp and,
 * when secret is set, webhook-signature.  Takes the reference to data.
 */
enum dresult delivery__webhook_post(struct dattempt *a, const char *url, const char *secret,
                                    const char *type, const char *id, json_t *data);

/* ---- email (email.c), exposed for unit tests ---- */

/*
 * The message headers of an email (From, To, Subject, Date, Message-ID,
 * MIME-Version, List-Unsubscribe, List-Unsubscribe-Post, Content-Type),
 * one per list entry.  FW_EINVAL with a reason in err when the message
 * cannot be sent as it is (no or unsafe recipient, unsafe key).  Caller
 * frees *out with curl_slist_free_all.
 */
int delivery__email_headers(const struct delivery_config *c, const struct outbox_msg *m,
                            int64_t wall_now, struct curl_slist **out, char *err, size_t errlen);
/* RFC 2047 encoded-word form of a header text when it needs one (non-ASCII); else a copy. */
char *delivery__rfc2047(const char *text);
/* "<" 32 hex digits of SHA-256(key) "@forewarn>": the same key gives the same Message-ID. */
void delivery__message_id(const char *key, char out[64]);
/* RFC 5322 date ("Mon, 02 Mar 2026 10:00:00 +0000"), locale-independent. */
void delivery__rfc5322_date(int64_t ms, char out[40]);

#endif
