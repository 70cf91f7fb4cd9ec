/*
 * metrics.c -- message figures for /metrics: how many messages were
 * decided (by audience, channel and status at decision), how delivery
 * went (sent, failed attempts, dead, by audience and channel), and which
 * connectors are down now.
 *
 * The figures are process-wide counters in memory: they start at 0 when
 * the process starts and only go up (the gauge aside).  Writers are the
 * engine thread (decisions, through the pipeline) and the dispatcher's
 * workers (outcomes); the reader is an HTTP thread.  One mutex guards the
 * table; it is taken once per message, far from any hot loop.  Labels come
 * from small fixed vocabularies (audiences, channels, statuses), so the
 * table stays small and a linear search is enough.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/delivery_int.h"
#include "util/util.h"

#define LABEL_MAX 32
#define FIGURES_MAX 512 /* a hard cap: labels outside the vocabularies cannot grow it */

struct figure {
    enum delivery_figure what;
    char audience[LABEL_MAX], channel[LABEL_MAX], status[LABEL_MAX];
    uint64_t n;
};

struct down {
    char connector[LABEL_MAX], channel[LABEL_MAX];
    int down;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct figure *figs;
static size_t nfigs, capfigs;
static struct down *downs;
static size_t ndowns, capdowns;

/* A label value, cut to size; characters Prometheus would need escaped become '_'. */
static void label(char out[LABEL_MAX], const char *s)
{
    snprintf(out, LABEL_MAX, "%s", s ? s : "");
    for (char *p = out; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '_';
}

void delivery_metrics_count(enum delivery_figure what, const char *audience, const char *channel,
                            const char *status)
{
    char a[LABEL_MAX], c[LABEL_MAX], s[LABEL_MAX];
    label(a, audience);
    label(c, channel);
    label(s, what == DELIVERY_DECIDED ? status : NULL);
    pthread_mutex_lock(&mu);
    size_t i = 0;
    while (i < nfigs && (figs[i].what != what || strcmp(figs[i].audience, a) ||
                         strcmp(figs[i].channel, c) || strcmp(figs[i].status, s)))
        i++;
    if (i == nfigs && nfigs < FIGURES_MAX) {
        figs = xgrow(figs, &capfigs, nfigs + 1, sizeof *figs);
        struct figure *f = &figs[nfigs++];
        memset(f, 0, sizeof *f);
        f->what = what;
        memcpy(f->audience, a, sizeof a);
        memcpy(f->channel, c, sizeof c);
        memcpy(f->status, s, sizeof s);
    }
    if (i < nfigs)
        figs[i].n++;
    pthread_mutex_unlock(&mu);
}

void delivery_metrics_connector(const char *connector, const char *const *channels, int down)
{
    pthread_mutex_lock(&mu);
    for (const char *const *ch = channels; *ch; ch++) {
        size_t i = 0;
        while (i < ndowns &&
               (strcmp(downs[i].connector, connector) || strcmp(downs[i].channel, *ch)))
            i++;
        if (i == ndowns) {
            downs = xgrow(downs, &capdowns, ndowns + 1, sizeof *downs);
            label(downs[ndowns].connector, connector);
            label(downs[ndowns].channel, *ch);
            ndowns++;
        }
        downs[i].down = down;
    }
    pthread_mutex_unlock(&mu);
}

static const struct {
    const char *name, *help;
} names[] = {
    [DELIVERY_DECIDED] = {"forewarn_messages_decided_total",
                          "Messages decided, by audience, channel and status at decision."},
    [DELIVERY_SENT] = {"forewarn_messages_sent_total",
                       "Messages delivered, by audience and channel."},
    [DELIVERY_FAILED] =
        {"forewarn_message_attempts_failed_total",
         "Delivery attempts that failed (the last one of a dead message included)."},
    [DELIVERY_DEAD] = {"forewarn_messages_dead_total",
                       "Messages given up on (attempt limit or permanent refusal)."},
};

void delivery_metrics_print(struct buf *out)
{
    pthread_mutex_lock(&mu);
    for (size_t w = 0; w < ARRAY_SIZE(names); w++) {
        buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", names[w].name, names[w].help,
                   names[w].name);
        for (size_t i = 0; i < nfigs; i++) {
            const struct figure *f = &figs[i];
            if (f->what != (enum delivery_figure)w)
                continue;
            buf_printf(out, "%s{audience=\"%s\",channel=\"%s\"", names[w].name, f->audience,
                       f->channel);
            if (w == DELIVERY_DECIDED)
                buf_printf(out, ",status=\"%s\"", f->status);
            buf_printf(out, "} %llu\n", (unsigned long long)f->n);
        }
    }
    buf_puts(out, "# HELP forewarn_connector_down 1 while the connector's last outcome was a dead "
                  "message, 0 once it delivers (since the process started).\n"
                  "# TYPE forewarn_connector_down gauge\n");
    for (size_t i = 0; i < ndowns; i++)
        buf_printf(out, "forewarn_connector_down{connector=\"%s\",channel=\"%s\"} %d\n",
                   downs[i].connector, downs[i].channel, downs[i].down);
    pthread_mutex_unlock(&mu);
}

void delivery_metrics_reset(void)
{
    pthread_mutex_lock(&mu);
    free(figs);
    free(downs);
    figs = NULL;
    downs = NULL;
    nfigs = capfigs = ndowns = capdowns = 0;
    pthread_mutex_unlock(&mu);
}
