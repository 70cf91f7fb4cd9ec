/*
 * failures.c -- messages that failed for good, per connector: one alert
 * when a connector starts failing, counted summaries while it stays down,
 * one note when it delivers again.
 *
 * The dispatcher journals a message.failed event for every dead message
 * and a message.sent for every delivery, both naming the channel, the
 * connector, the audience and the message's kind.  Answering each failure
 * with an alert through the same channel made a storm when a connector
 * was down (every alert died and raised another).  Here:
 *
 *   - an alert never travels through the channel that failed, nor through
 *     a connector known to be down: it takes the first of
 *     outreach.failure_channels that is neither, and is recorded
 *     `suppressed` (with the reason) when none is left;
 *   - a failure alert that fails raises nothing (it only marks its own
 *     connector down);
 *   - the first dead message of a connector raises one "connector down"
 *     alert; later ones are counted, and at most one summary goes out per
 *     repeat interval (outreach.connector_alert_repeat, doubling after each
 *     summary, capped at 24h), on an engine timer;
 *   - a message.sent through the connector ends the outage: the count is
 *     dropped and, if an alert went out, one "connector recovered" note.
 *
 * Invariant: the state is driven only by journaled events and the engine
 * clock, and every record's key is built from them (kind, connector, the
 * message or time it is about), so replaying the journal repeats the same
 * alerts with the same idempotency keys and stores none twice.
 */

#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/json.h"
#include "util/util.h"
#include "util/wire.h"

/* Kinds of the records made here; a failure of one of them raises nothing. */
#define KIND_DOWN "connector_down"
#define KIND_SUMMARY "connector_failures"
#define KIND_RECOVERED "connector_recovered"
#define REPEAT_CAP (24 * FW_HOUR)

/* One connector's outage, as the journal tells it. */
struct oconn {
    struct engine_timer t; /* first: the engine hands it back; the next summary */
    struct orch *o;
    char *name;   /* the dispatcher's connector name ("slack", "zendesk") */
    char **chans; /* the channels seen going through it */
    size_t nchans, capchans;
    int down;    /* a dead message since its last delivery */
    int alerted; /* the "connector down" alert of this outage was raised */
    int64_t down_since;
    uint64_t total;     /* dead messages in this outage */
    uint64_t more;      /* dead messages since the last alert or summary */
    int64_t more_since; /* when the first of those died */
    int64_t interval;   /* the current repeat, doubling after each summary */
    int64_t next_at;    /* no summary before this */
    char *last_error;
};

static const char *str_of(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static void conn_fire(struct engine_timer *t, int64_t due);

static struct oconn *conn_get(struct orch *o, const char *name)
{
    struct orch_failures *f = &o->failures;
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->conns[i]->name, name))
            return f->conns[i];
    struct oconn *k = xcalloc(1, sizeof *k);
    tw_entry_init(&k->t._tw);
    k->t.fire = conn_fire;
    k->o = o;
    k->name = xstrdup(name);
    f->conns = xgrow(f->conns, &f->cap, f->n + 1, sizeof *f->conns);
    f->conns[f->n++] = k;
    return k;
}

static void conn_note_channel(struct oconn *k, const char *channel)
{
    for (size_t i = 0; i < k->nchans; i++)
        if (!strcmp(k->chans[i], channel))
            return;
    k->chans = xgrow(k->chans, &k->capchans, k->nchans + 1, sizeof *k->chans);
    k->chans[k->nchans++] = xstrdup(channel);
}

/* Whether channel goes through a connector that is down now. */
static int channel_down(const struct orch *o, const char *channel)
{
    const struct orch_failures *f = &o->failures;
    for (size_t i = 0; i < f->n; i++)
        for (size_t j = 0; f->conns[i]->down && j < f->conns[i]->nchans; j++)
            if (!strcmp(f->conns[i]->chans[j], channel))
                return 1;
    return 0;
}

/*
 * The channel an alert takes: not the failed one (NULL: any), not one of a
 * connector that is down; NULL when none is left.
 */
static const char *failure_channel(const struct orch *o, const char *failed)
{
    for (size_t i = 0; i < o->cfg->nfailure_channels; i++) {
        const char *ch = o->cfg->failure_channels[i];
        if ((!failed || strcmp(ch, failed)) && !channel_down(o, ch))
            return ch;
    }
    return NULL;
}

/* Who reads an alert on this channel: the L1 queue for a ticket, else L2. */
static const char *audience_of(const char *channel)
{
    return !strcmp(channel, "ticket") ? "l1" : "l2";
}

static int is_failure_alert(const char *kind)
{
    /* "failed" is the per-message alert of journals written before this file. */
    return kind && (!strncmp(kind, "connector_", 10) || !strcmp(kind, "failed"));
}

/*
 * Record one alert about connector k: through the failure channel, or
 * suppressed with the reason when none is up.  failed is the channel it
 * must avoid (NULL: none).  extra and at make its key.
 */
static void raise_alert(struct orch *o, struct oconn *k, const char *kind, const char *failed,
                        const char *title, const char *text, const char *customer,
                        const char *extra, int64_t at)
{
    const char *ch = failure_channel(o, failed);
    char reason[256] = "", when[128];
    const char *rec = ch;
    if (!ch) {
        rec = o->cfg->nfailure_channels ? o->cfg->failure_channels[0] : failed ? failed : "slack";
        snprintf(reason, sizeof reason,
                 "no_failure_channel: every channel of outreach.failure_channels is %s or on a "
                 "connector that is down",
                 failed ? failed : "unknown");
    }
    struct comms_ctx *ctx = comms_ctx_new();
    comms_ctx_set_str(ctx, COMMS_V_signal_name, title);
    comms_ctx_set_str(ctx, COMMS_V_signal_severity, "HIGH");
    comms_ctx_set_str(ctx, COMMS_V_signal_description, text);
    comms_ctx_set_str(ctx, COMMS_V_escalation_step, kind);
    comms_ctx_set_str(ctx, COMMS_V_priority, "high");
    comms_ctx_set_str(ctx, COMMS_V_customer_id, customer);
    orch__human_time(o, NULL, at, when, sizeof when);
    comms_ctx_set_str(ctx, COMMS_V_detected_at, when);
    char line[160];
    snprintf(line, sizeof line, "%s: %s (one alert per outage, then summaries)", kind, k->name);
    json_t *explain =
        json_pack("{s:[s], s:{s:s, s:s?, s:s?, s:I, s:I}}", "decided_by", line, "connector", "name",
                  k->name, "failed_channel", failed, "last_error", k->last_error, "failures",
                  (json_int_t)k->total, "repeat_ms", (json_int_t)k->interval);
    char tag[96];
    snprintf(tag, sizeof tag, "connector_%s", k->name);
    json_t *meta =
        json_pack("{s:s, s:[s, s]}", "priority", "high", "tags", "forewarn_connector", tag);
    json_t *sigs = json_array();
    struct draft d = {.audience = audience_of(rec),
                      .channel = rec,
                      .customer = NULL,
                      .kind = kind,
                      .tmpl_name = "connector",
                      .ctx = ctx,
                      .signals = sigs,
                      .explain = explain,
                      .meta = meta,
                      .status = ch ? "scheduled" : "suppressed",
                      .reason = ch ? NULL : reason,
                      .at = at,
                      .send_at = at,
                      .key_extra = extra};
    orch__emit(o, &d, NULL);
    json_decref(sigs);
    json_decref(meta);
    json_decref(explain);
    comms_ctx_free(ctx);
}

/* The failures counted since the last alert, in one summary; the next one waits longer. */
static void summarise(struct orch *o, struct oconn *k, int64_t at)
{
    char since[FW_TIME_MAXLEN], title[128], text[1024], extra[160];
    fw_time_format(k->more_since, since);
    snprintf(title, sizeof title, "Connector still down: %s", k->name);
    snprintf(text, sizeof text,
             "%llu more message%s failed on %s since %s (%llu in all since it went down). "
             "Last error: %s",
             (unsigned long long)k->more, k->more == 1 ? "" : "s", k->name, since,
             (unsigned long long)k->total, k->last_error ? k->last_error : "unknown");
    snprintf(extra, sizeof extra, "%s:%lld", k->name, (long long)k->more_since);
    raise_alert(o, k, KIND_SUMMARY, k->chans[0], title, text, NULL, extra, at);
    k->more = 0;
    int64_t cap =
        o->cfg->connector_alert_repeat > REPEAT_CAP ? o->cfg->connector_alert_repeat : REPEAT_CAP;
    k->interval = k->interval * 2 > cap ? cap : k->interval * 2;
    k->next_at = at + k->interval;
}

static void conn_fire(struct engine_timer *t, int64_t due)
{
    struct oconn *k = (struct oconn *)t;
    if (k->down && k->more)
        summarise(k->o, k, due);
}

static void on_failed(struct orch *o, struct oconn *k, const struct event *ev, const char *channel,
                      const char *kind, int64_t now)
{
    const char *err = str_of(ev->data, "error");
    free(k->last_error);
    k->last_error = xstrdup(err ? err : "delivery failed");
    if (!k->down) {
        k->down = 1;
        k->alerted = 0;
        k->down_since = now;
        k->total = k->more = 0;
        k->interval =
            o->cfg->connector_alert_repeat > 0 ? o->cfg->connector_alert_repeat : 4 * FW_HOUR;
    }
    k->total++;
    if (is_failure_alert(kind))
        return; /* an alert about failures that fails raises nothing: no storm */
    if (!k->alerted) {
        const char *mid = str_of(ev->data, "message_id");
        const char *aud = str_of(ev->data, "audience");
        char title[128], text[1024], extra[160], every[FW_TIME_MAXLEN];
        fw_duration_format(k->interval, every);
        snprintf(title, sizeof title, "Connector down: %s", k->name);
        snprintf(text, sizeof text,
                 "A message on %s failed for good: %s (%s %s%s%s). Error: %s. Further failures "
                 "of %s are counted and summarised at most every %s until it delivers again.",
                 channel, mid ? mid : "?", aud ? aud : "?", kind ? kind : "message",
                 ev->subject ? " for " : "", ev->subject ? ev->subject : "", k->last_error, k->name,
                 every);
        snprintf(extra, sizeof extra, "%s:%s", k->name, mid ? mid : ev->id);
        k->alerted = 1;
        k->next_at = now + k->interval;
        raise_alert(o, k, KIND_DOWN, channel, title, text, ev->subject, extra, now);
        return;
    }
    if (!k->more++)
        k->more_since = now;
    if (now >= k->next_at)
        summarise(o, k, now); /* quiet for longer than the interval: summarise at once */
    else if (!tw_armed(&k->t._tw))
        engine_timer_arm(o->engine, &k->t, k->next_at);
}

static void on_sent(struct orch *o, struct oconn *k, const struct event *ev, const char *channel,
                    int64_t now)
{
    if (!k->down)
        return;
    engine_timer_cancel(o->engine, &k->t);
    k->down = 0; /* before the note: its channel choice sees this connector up */
    if (k->alerted) {
        const char *mid = str_of(ev->data, "message_id");
        char title[128], text[1024], extra[160], since[FW_TIME_MAXLEN];
        fw_time_format(k->down_since, since);
        snprintf(title, sizeof title, "Connector recovered: %s", k->name);
        snprintf(text, sizeof text,
                 "%s delivered again (message %s on %s). It had been failing since %s: %llu "
                 "message%s failed for good, %llu of them not in an earlier summary.",
                 k->name, mid ? mid : "?", channel, since, (unsigned long long)k->total,
                 k->total == 1 ? "" : "s", (unsigned long long)k->more);
        snprintf(extra, sizeof extra, "%s:%s", k->name, mid ? mid : ev->id);
        /* The connector that is back may carry the news itself. */
        raise_alert(o, k, KIND_RECOVERED, NULL, title, text, NULL, extra, now);
    }
    k->alerted = 0;
    k->total = k->more = 0;
}

void orch__on_delivery(struct orch *o, const struct event *ev)
{
    const char *channel = str_of(ev->data, "channel");
    if (!channel || !o->engine)
        return;
    const char *name = str_of(ev->data, "connector");
    struct oconn *k = conn_get(o, name ? name : channel); /* older journals: per channel */
    conn_note_channel(k, channel);
    int64_t now = engine_now(o->engine);
    if (!strcmp(ev->type, "message.sent"))
        on_sent(o, k, ev, channel, now);
    else
        on_failed(o, k, ev, channel, str_of(ev->data, "kind"), now);
}

void orch__failures_cleanup(struct orch *o)
{
    struct orch_failures *f = &o->failures;
    for (size_t i = 0; i < f->n; i++) {
        struct oconn *k = f->conns[i];
        if (o->engine)
            engine_timer_cancel(o->engine, &k->t);
        for (size_t j = 0; j < k->nchans; j++)
            free(k->chans[j]);
        free(k->chans);
        free(k->name);
        free(k->last_error);
        free(k);
    }
    free(f->conns);
    memset(f, 0, sizeof *f);
}

/* ---- snapshots (snap.c) ---- */

void orch__failures_write(const struct orch *o, struct buf *out)
{
    const struct orch_failures *f = &o->failures;
    wire_put_u32(out, (uint32_t)f->n);
    for (size_t i = 0; i < f->n; i++) {
        const struct oconn *k = f->conns[i];
        wire_put_str(out, k->name);
        wire_put_u32(out, (uint32_t)k->nchans);
        for (size_t j = 0; j < k->nchans; j++)
            wire_put_str(out, k->chans[j]);
        wire_put_u8(out, (uint8_t)k->down);
        wire_put_u8(out, (uint8_t)k->alerted);
        wire_put_i64(out, k->down_since);
        wire_put_u64(out, k->total);
        wire_put_u64(out, k->more);
        wire_put_i64(out, k->more_since);
        wire_put_i64(out, k->interval);
        wire_put_i64(out, k->next_at);
        wire_put_str(out, k->last_error);
        engine_timer_write(o->engine, &k->t, out);
    }
}

void orch__failures_read(struct orch *o, struct wire_rd *in)
{
    uint32_t n = wire_get_count(in, 60);
    for (uint32_t i = 0; i < n && !in->err; i++) {
        char *name = wire_get_str(in);
        if (!name) {
            in->err = 1;
            return;
        }
        for (size_t j = 0; j < o->failures.n; j++)
            if (!strcmp(o->failures.conns[j]->name, name))
                in->err = 1; /* the same connector twice */
        struct oconn *k = conn_get(o, name);
        free(name);
        uint32_t nc = wire_get_count(in, 1);
        for (uint32_t j = 0; j < nc && !in->err; j++) {
            char *ch = wire_get_str(in);
            if (!ch) {
                in->err = 1;
                break;
            }
            k->chans = xgrow(k->chans, &k->capchans, k->nchans + 1, sizeof *k->chans);
            k->chans[k->nchans++] = ch;
        }
        k->down = wire_get_u8(in);
        k->alerted = wire_get_u8(in);
        k->down_since = wire_get_time(in);
        k->total = wire_get_u64(in);
        k->more = wire_get_u64(in);
        k->more_since = wire_get_time(in);
        k->interval = wire_get_time(in);
        k->next_at = wire_get_time(in);
        k->last_error = wire_get_str(in);
        if (!in->err)
            engine_timer_read(o->engine, &k->t, in);
    }
}
