/*
 * bus.c -- NATS JetStream for the cluster (bus.h).
 */
#include "cluster/bus.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/map.h"
#include "util/util.h"

struct bus {
    natsConnection *nc;
    jsCtx *js;
    char *stream, *subject;
};

struct bus_sub {
    struct bus *b;
    natsSubscription *sub;
    char name[32];
};

static void say(char *why, size_t n, const char *what, natsStatus s, jsErrCode je)
{
    const char *last = nats_GetLastError(NULL);
    snprintf(why, n, "%s: %s%s%s (JetStream error %d)", what, natsStatus_GetText(s),
             last && *last ? ": " : "", last ? last : "", (int)je);
}

struct bus *bus_open(const struct cluster_config *cc, char *why, size_t n)
{
    struct bus *b = xcalloc(1, sizeof *b);
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, cc->nats);
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, cc->node);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1); /* a restarted server is waited for */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 250);
    if (s == NATS_OK)
        s = natsConnection_Connect(&b->nc, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        say(why, n, "cannot connect to NATS", s, 0);
        free(b);
        return NULL;
    }
    s = natsConnection_JetStream(&b->js, b->nc, NULL);
    if (s != NATS_OK) {
        say(why, n, "no JetStream context", s, 0);
        bus_close(b);
        return NULL;
    }
    b->stream = xstrdup(cc->stream);
    b->subject = xstrdup(cc->subject);
    char subj[160];
    snprintf(subj, sizeof subj, "%s.*", cc->subject);
    const char *subjects[] = {subj};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = cc->stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Duplicates = cc->dedup_window * 1000000; /* ns */
    jsStreamInfo *si = NULL;
    jsErrCode je = 0;
    s = js_AddStream(&si, b->js, &sc, NULL, &je);
    if (s != NATS_OK && je == JSStreamNameExistErr) {
        /* Made by another node (or an earlier start): the same settings, or an update. */
        s = js_UpdateStream(&si, b->js, &sc, NULL, &je);
    }
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK) {
        say(why, n, "cannot create the stream", s, je);
        bus_close(b);
        return NULL;
    }
    return b;
}

void bus_close(struct bus *b)
{
    if (!b)
        return;
    jsCtx_Destroy(b->js);
    natsConnection_Destroy(b->nc);
    free(b->stream);
    free(b->subject);
    free(b);
}

int bus_publish(struct bus *b, unsigned p, const char *msg_id, const char *json, size_t len,
                int *dup, uint64_t *seq, char *why, size_t n)
{
    char subj[160];
    snprintf(subj, sizeof subj, "%s.%u", b->subject, p);
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subj, NULL, json, (int)len);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
    jsPubAck *pa = NULL;
    jsErrCode je = 0;
    if (s == NATS_OK)
        s = js_PublishMsg(&pa, b->js, m, NULL, &je);
    natsMsg_Destroy(m);
    if (s != NATS_OK) {
        say(why, n, "the stream did not take the event", s, je);
        return -1;
    }
    *dup = pa->Duplicate;
    *seq = pa->Sequence;
    jsPubAck_Destroy(pa);
    return 0;
}

/* A batch in flight: its messages by id, and what came back. */
struct batch {
    struct bus_msg *m;
    struct strmap ids; /* Nats-Msg-Id -> index + 1 */
    size_t acked;
    natsStatus err;
    jsErrCode errcode;
    char errtext[256];
};

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    struct batch *bt = closure;
    const char *id = NULL;
    natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
    const struct strmap_entry *me = id ? strmap_find(&bt->ids, id, strlen(id)) : NULL;
    if (pa && me) {
        bt->m[(uintptr_t)me->value - 1].dup = pa->Duplicate;
        bt->acked++;
    } else if (bt->err == NATS_OK) {
        bt->err = pae ? pae->Err : NATS_ERR;
        bt->errcode = pae ? pae->ErrCode : 0;
        snprintf(bt->errtext, sizeof bt->errtext, "%s",
                 pae && pae->ErrText ? pae->ErrText : "an acknowledgement for no message of ours");
    }
    natsMsg_Destroy(msg);
}

int bus_publish_batch(struct bus *b, struct bus_msg *m, size_t n, char *why, size_t nwhy)
{
    struct batch bt = {.m = m};
    strmap_init(&bt.ids);
    size_t repeats = 0;
    for (size_t i = 0; i < n; i++) {
        int created;
        struct strmap_entry *me = strmap_upsert(&bt.ids, m[i].msg_id, strlen(m[i].msg_id), &created);
        if (created)
            me->value = (void *)(uintptr_t)(i + 1);
        m[i].dup = !created; /* an id the batch has already: the stream would say duplicate */
        repeats += !created;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = &bt;
    jo.PublishAsync.MaxPending = 4096;
    jsCtx *js = NULL;
    natsStatus s = natsConnection_JetStream(&js, b->nc, &jo);
    size_t sent = 0;
    for (; s == NATS_OK && sent < n; sent++) {
        if (m[sent].dup)
            continue;
        char subj[160];
        snprintf(subj, sizeof subj, "%s.%u", b->subject, m[sent].p);
        natsMsg *msg = NULL;
        s = natsMsg_Create(&msg, subj, NULL, m[sent].json, (int)m[sent].len);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(msg, "Nats-Msg-Id", m[sent].msg_id);
        if (s == NATS_OK)
            s = js_PublishMsgAsync(js, &msg, NULL); /* the library owns it now */
        natsMsg_Destroy(msg);                       /* NULL unless it failed */
    }
    if (js) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 30000; /* ms: a stream that takes no message for this long is down */
        natsStatus w = js_PublishAsyncComplete(js, &po);
        if (s == NATS_OK)
            s = w;
        jsCtx_Destroy(js); /* after the wait: no acknowledgement comes later */
    }
    int rc = 0;
    if (s != NATS_OK) {
        say(why, nwhy, "the stream did not take the batch", s, 0);
        rc = -1;
    } else if (bt.err != NATS_OK || bt.acked + repeats != n) {
        snprintf(why, nwhy, "the stream did not take the batch: %s (%s, JetStream error %d; %zu of "
                            "%zu acknowledged)",
                 bt.errtext, natsStatus_GetText(bt.err), (int)bt.errcode, bt.acked, n - repeats);
        rc = -1;
    }
    strmap_cleanup(&bt.ids);
    return rc;
}

int64_t bus_last_seq(struct bus *b)
{
    jsStreamInfo *si = NULL;
    jsErrCode je = 0;
    if (js_GetStreamInfo(&si, b->js, b->stream, NULL, &je) != NATS_OK)
        return -1;
    int64_t last = (int64_t)si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return last;
}

struct bus_sub *bus_subscribe(struct bus *b, unsigned p, uint64_t from, char *why, size_t n)
{
    struct bus_sub *s = xcalloc(1, sizeof *s);
    s->b = b;
    snprintf(s->name, sizeof s->name, "fw-p%u", p);
    char subj[160];
    snprintf(subj, sizeof subj, "%s.%u", b->subject, p);
    jsErrCode je = 0;
    /* A former owner's consumer is at its own position: the new owner starts from its checkpoint. */
    js_DeleteConsumer(b->js, b->stream, s->name, NULL, &je);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = s->name;
    cc.FilterSubject = subj;
    cc.AckPolicy = js_AckAll;
    cc.DeliverPolicy = from > 1 ? js_DeliverByStartSequence : js_DeliverAll;
    cc.OptStartSeq = from > 1 ? from : 0;
    cc.AckWait = (int64_t)60 * 1000000000; /* ns; redelivery goes to this owner only */
    cc.MaxAckPending = 20000;
    jsConsumerInfo *ci = NULL;
    natsStatus st = js_AddConsumer(&ci, b->js, b->stream, &cc, NULL, &je);
    jsConsumerInfo_Destroy(ci);
    if (st != NATS_OK) {
        say(why, n, "cannot create the partition's consumer", st, je);
        free(s);
        return NULL;
    }
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = b->stream;
    so.Consumer = s->name;
    st = js_PullSubscribe(&s->sub, b->js, subj, s->name, NULL, &so, &je);
    if (st != NATS_OK) {
        say(why, n, "cannot subscribe to the partition", st, je);
        free(s);
        return NULL;
    }
    return s;
}

int bus_fetch(struct bus_sub *s, natsMsgList *list, int max, int64_t timeout_ms)
{
    jsErrCode je = 0;
    memset(list, 0, sizeof *list);
    natsStatus st = natsSubscription_Fetch(list, s->sub, max, timeout_ms, &je);
    if (st == NATS_OK || st == NATS_TIMEOUT)
        return 0;
    log_warn("cluster: fetching from %s: %s (JetStream error %d)", s->name,
             natsStatus_GetText(st), (int)je);
    return -1;
}

int bus_ack(natsMsg *msg) { return natsMsg_Ack(msg, NULL) == NATS_OK ? 0 : -1; }

uint64_t bus_msg_seq(natsMsg *msg, int64_t *stored_ms)
{
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK)
        return 0;
    uint64_t seq = meta->Sequence.Stream;
    if (stored_ms)
        *stored_ms = meta->Timestamp / 1000000;
    jsMsgMetaData_Destroy(meta);
    return seq;
}

void bus_unsubscribe(struct bus_sub *s)
{
    if (!s)
        return;
    natsSubscription_Unsubscribe(s->sub);
    natsSubscription_Destroy(s->sub);
    free(s);
}
