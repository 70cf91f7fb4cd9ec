/*
 * bus.c -- NATS JetStream for the cluster (bus.h).
 */
#include "cluster/bus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
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
