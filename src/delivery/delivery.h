/*
 * delivery.h -- the dispatcher and its connectors.
 *
 * One worker thread per channel claims due messages from the outbox
 * (store_outbox_claim, its own SQLite connection), sends them through the
 * channel's connector, and records the outcome: sent, or failed with a
 * retry time (exponential backoff with jitter) until the attempt limit,
 * then dead.  A slow or failing connector only delays its own channel.
 * Each message carries its idempotency key to receivers that honour one
 * (HTTP Idempotency-Key / webhook-id / SMTP Message-ID).  Outcomes go back
 * into the engine as events (message.sent, message.failed) through a hook.
 * With no connector configured for a channel, messages are marked `stored`:
 * rendered and kept, and nothing leaves the machine.  in_app and chatbot
 * messages are delivered by storing them (the API serves them); chatbot
 * contexts are also pushed to a webhook when one is configured.
 */
#ifndef FW_DELIVERY_H
#define FW_DELIVERY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "util/buf.h"

struct ydoc;

/* Connector settings; strings owned (delivery_config_cleanup). NULL = not configured. */
struct delivery_config {
    struct {
        char *url; /* smtp://host:port or smtps:// */
        char *from, *from_name;
        char *username, *password;
        char *unsubscribe_mailto; /* List-Unsubscribe mailto target */
    } email;
    struct {
        char *base_url; /* e.g. https://api.twilio.com */
        char *account_sid, *auth_token, *from;
    } sms;
    struct {
        char *webhook_url;
    } slack;
    struct {
        char *base_url; /* https://example.zendesk.com */
        char *email, *api_token;
    } zendesk;
    struct {
        char *url, *secret; /* Standard Webhooks; secret "whsec_<base64>" */
    } webhook;
    struct {
        char *url, *token;
    } push;
    struct {
        char *url, *secret; /* optional chatbot context push (Standard Webhooks signed) */
    } chatbot;
    /*
     * Retries: exponential backoff from backoff_base, capped at
     * backoff_max, for retry_for after a message's first failed attempt
     * (the last retry falls at that limit), then a dead letter.  A receiver
     * down for a deploy or an afternoon delays messages, never drops them.
     */
    int max_attempts;     /* default 0: no limit on the count, retry_for decides */
    int64_t backoff_base; /* ms, default 1000 */
    int64_t backoff_max;  /* ms, default 600000 (10m) */
    int64_t retry_for;    /* ms, default 86400000 (24h) */
    int64_t timeout;      /* ms per attempt, default 10000 */
    /*
     * A connector with expired dead letters and no traffic is probed this
     * often (its receiver answers: dispatcher.c, "Probes"); when the probe
     * passes, the dead letters are re-driven.  ms on the retry clock,
     * default 300000 (5m); 0: never probed (connectors.retry.probe_interval: off).
     */
    int64_t probe_interval;
    /*
     * retry.clock: engine -- retry times on the engine clock (see
     * delivery_hooks.retry_on_engine_clock; serve passes it on).  Default
     * wall: with a virtual clock, retries still happen in real time.
     */
    int retry_engine_clock;
};

void delivery_config_init(struct delivery_config *c);
void delivery_config_cleanup(struct delivery_config *c);
/*
 * Parse the `connectors:` mapping of the config file (node n of doc d).
 * Unknown keys, bad URLs (scheme must be http/https, smtp/smtps), bad
 * numbers: errors with file:line:col appended to diag; returns 0 or FW_EPARSE.
 * Secrets may instead come from the environment (FOREWARN_SMTP_PASSWORD,
 * FOREWARN_TWILIO_AUTH_TOKEN, FOREWARN_ZENDESK_API_TOKEN,
 * FOREWARN_WEBHOOK_SECRET, FOREWARN_PUSH_TOKEN, FOREWARN_CHATBOT_SECRET):
 * delivery_config_env applies them.
 */
int delivery_config_parse(struct delivery_config *c, struct ydoc *d, yaml_node_t *n,
                          struct buf *diag);
int delivery_config_env(struct delivery_config *c, struct buf *diag);

/*
 * What the dispatcher needs from the server.  Both are called from the
 * worker threads, concurrently; either may be NULL (wall clock; no events).
 */
struct delivery_hooks {
    void *ctx;
    /*
     * The engine clock, for send_at: the wall clock in production; with a
     * virtual clock, call dispatcher_notify (or dispatcher_kick) whenever
     * it moves (a worker waiting for a send_at does not wake up for a clock
     * that stands still).
     */
    int64_t (*engine_now)(void *ctx);
    /*
     * Feed an outcome event, a CloudEvent object (the callee takes the
     * reference): message.sent, id "sent:<message id>", data {message_id,
     * channel, connector, audience, kind, attempts}; message.failed, id
     * "failed:<message id>:<wall ms>", the same data and error.  kind is
     * the first field of the message's key (the orchestrator's kind), or
     * null.
     * subject is the customer (absent for incident messages), time the
     * engine clock.
     */
    void (*report)(void *ctx, json_t *event);
    /*
     * Retry times on the engine clock instead of the wall clock
     * (connectors.retry.clock: engine): with a virtual clock, a receiver
     * down for hours can be tested by moving the clock (retries fall due
     * when it moves, like send_at).  In production both are the wall clock.
     */
    int retry_on_engine_clock;
};

struct dispatcher;

/*
 * Start one worker per channel over the database at db_path.  Requeues
 * rows a crash left `sending`.  cfg and hooks must outlive the dispatcher.
 */
int dispatcher_start(struct dispatcher **out, const struct delivery_config *cfg,
                     const char *db_path, const struct delivery_hooks *hooks);
/* New messages were committed, or the engine clock moved: every worker looks again. */
void dispatcher_kick(struct dispatcher *d);
/*
 * A commit: wake only the workers it concerns -- those serving one of
 * `channels` (new scheduled messages), and those waiting for an engine
 * time at or before `engine_now`.  A commit that sent nothing anywhere
 * wakes no one.
 */
void dispatcher_notify(struct dispatcher *d, const char *const *channels, size_t nchannels,
                       int64_t engine_now);
/* Stop the workers (a send in progress finishes) and free. */
void dispatcher_stop(struct dispatcher *d);

/*
 * Whether messages of `channel` can leave the machine under cfg: 0 when no
 * connector for the channel is configured (they will only be `stored`), 1
 * otherwise (including in_app and chatbot, delivered by storing them).
 * Lets the decision record `stored` at once instead of queueing work.
 */
int delivery_channel_active(const struct delivery_config *cfg, const char *channel);

/*
 * The outbox channels the connector called `name` serves ("zendesk":
 * ticket, internal_note, ticket_reply), NULL-terminated and static; NULL
 * for an unknown name.
 */
const char *const *delivery_connector_channels(const char *name);

/*
 * Message figures for /metrics (metrics.c): process-wide counters that
 * start at 0 with the process and only go up, safe from any thread.
 * DELIVERY_DECIDED counts a message record stored by a decision, with its
 * status then (status is ignored for the others); the dispatcher counts
 * the rest itself.  Labels are copied (cut at 31 bytes).
 */
enum delivery_figure { DELIVERY_DECIDED, DELIVERY_SENT, DELIVERY_FAILED, DELIVERY_DEAD };
void delivery_metrics_count(enum delivery_figure what, const char *audience, const char *channel,
                            const char *status);
/* The connector-down gauge of each of channels (NULL-terminated): 1 down, 0 up. */
void delivery_metrics_connector(const char *connector, const char *const *channels, int down);
/* Append every figure in Prometheus text format, with HELP and TYPE lines. */
void delivery_metrics_print(struct buf *out);
/* Forget every figure (tests). */
void delivery_metrics_reset(void);

/*
 * One delivery attempt outside the dispatcher (the cluster's outbox
 * workers, cluster/deliver.c): the connector serving m->channel sends m.
 * *curl is the caller's easy handle, made on first use and kept between
 * attempts (free it with delivery_curl_free).  DELIVERY_SENT, or
 * DELIVERY_STORED when no connector is configured for the channel (nothing
 * left the machine), DELIVERY_RETRY (transient) or DELIVERY_PERMANENT
 * with the reason in err.
 */
enum delivery_outcome { DELIVERY_OUT_SENT, DELIVERY_OUT_STORED, DELIVERY_OUT_RETRY,
                        DELIVERY_OUT_PERMANENT };
struct outbox_msg;
enum delivery_outcome delivery_attempt(const struct delivery_config *cfg, void **curl,
                                       const struct outbox_msg *m, char *err, size_t n);
void delivery_curl_free(void *curl);
/* When to try again after attempt number `attempts` failed (the first at `first`): 0 to give up. */
int64_t delivery_retry_at(const struct delivery_config *cfg, int attempts, int64_t first,
                          int64_t now);

/* Standard Webhooks signature: "v1,<base64 HMAC-SHA256(secret, id.ts.body)>". */
int delivery_sign(const char *secret, const char *id, int64_t ts_seconds, const char *body,
                  size_t len, char *out, size_t outlen);

#endif
