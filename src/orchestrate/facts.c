/*
 * facts.c -- what templates may say about the past: only what forewarn
 * recorded.  "We wrote to you on …" needs a customer message that went out
 * about the same problem; "you've been in touch since" needs a contact
 * event after it.  Without the fact the variable is absent and the
 * template's sentence with it.
 */

#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/json.h"
#include "util/util.h"

void orch__fact_sent(struct orch *o, struct ocust *c, size_t sig, const char *channel, int64_t at)
{
    if (sig >= o->rules->nsignals)
        return;
    if (!c->sent) {
        c->sent = xcalloc(o->rules->nsignals, sizeof *c->sent);
        for (size_t i = 0; i < o->rules->nsignals; i++)
            c->sent[i].at = FW_TIME_NONE;
    }
    c->sent[sig].at = at;
    c->sent[sig].channel = orch__channel_static(channel);
}

int64_t orch__fact_last(const struct ocust *c, const size_t *idx, size_t n, const char **channel)
{
    int64_t last = FW_TIME_NONE;
    for (size_t i = 0; c->sent && i < n; i++)
        if (c->sent[idx[i]].at != FW_TIME_NONE &&
            (last == FW_TIME_NONE || c->sent[idx[i]].at > last)) {
            last = c->sent[idx[i]].at;
            if (channel)
                *channel = c->sent[idx[i]].channel;
        }
    return last;
}

void orch__facts_context(struct orch *o, struct ocust *c, struct comms_ctx *ctx, json_t *snap,
                         const size_t *idx, size_t n, int64_t now)
{
    if (o->quiet)
        return;
    const char *chan = NULL, *zone = orch__svs(snap, "customer.timezone");
    int64_t last = orch__fact_last(c, idx, n, &chan);
    if (last == FW_TIME_NONE || last > now)
        return;
    char tmp[128];
    orch__human_time(o, zone, last, tmp, sizeof tmp);
    comms_ctx_set_str(ctx, COMMS_V_last_message_at, tmp);
    comms_ctx_set_str(ctx, COMMS_V_last_message_channel_name, orch__channel_words(chan));
    /* The customer's latest contact (an event of the rule pack's "contact" class) since then. */
    const char *kind = NULL, *type;
    int64_t seen = FW_TIME_NONE;
    json_t *t;
    json_object_foreach (json_object_get(snap, "last_event"), type, t) {
        int64_t at = json_is_integer(t) ? (int64_t)json_integer_value(t) : FW_TIME_NONE;
        if (at == FW_TIME_NONE || at <= last || at > now ||
            !rules_type_in_class(o->rules, type, "contact"))
            continue;
        if (seen == FW_TIME_NONE || at > seen) {
            seen = at;
            kind = type;
        }
    }
    if (seen == FW_TIME_NONE)
        return;
    orch__human_time(o, zone, seen, tmp, sizeof tmp);
    comms_ctx_set_str(ctx, COMMS_V_contacted_since_at, tmp);
    char ns[64];
    snprintf(ns, sizeof ns, "%.*s", (int)strcspn(kind, "."), kind);
    comms_ctx_set_str(ctx, COMMS_V_contacted_since_kind, ns);
}
