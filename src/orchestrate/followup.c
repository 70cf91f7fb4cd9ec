/*
 * followup.c -- what customer events decide on their own: the follow-up
 * after a resolved ticket (seed 004) and the "we already reached out" note
 * when the customer gets in touch after our message.  (A message that
 * failed for good is failures.c's.)
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

/* ---- events that matter to the orchestrator ---- */

void orch__on_ticket_resolved(struct orch *o, struct ocust *c, const struct event *ev)
{
    int64_t now = engine_now(o->engine);
    json_t *snap = orch__snapshot(o, c->key);
    struct comms_ctx *ctx = orch__customer_context(o, c, snap, now);
    const char *tid = json_string_value(json_object_get(ev->data, "ticket_id"));
    char num[32];
    if (!tid && json_is_integer(json_object_get(ev->data, "ticket_id"))) {
        snprintf(num, sizeof num, "%lld",
                 (long long)json_integer_value(json_object_get(ev->data, "ticket_id")));
        tid = num;
    }
    const char *sevs = json_string_value(json_object_get(ev->data, "severity"));
    char sevl[32] = "";
    if (sevs)
        orch__lower_copy(sevs, sevl, sizeof sevl);
    int64_t contacts = engine_count(o->engine, c->key, "contact", 7 * FW_DAY);
    const char *tier = orch__svs(snap, "customer.tier");
    /* Seed 004: acknowledgment (minor), satisfaction check (moderate), relationship repair (major).
     */
    const char *level, *why;
    if (!strcmp(sevl, "urgent") || !strcmp(sevl, "critical") || !strcmp(sevl, "high") ||
        contacts >= 3) {
        level = "relationship_repair";
        why = contacts >= 3 ? "3 or more contacts in 7 days" : "major ticket severity";
    } else if (!strcmp(sevl, "normal") || !strcmp(sevl, "medium") || contacts == 2 ||
               (tier && !strcmp(tier, "enterprise"))) {
        level = "satisfaction_check";
        why = contacts == 2 ? "2 contacts in 7 days" : "moderate ticket severity";
    } else {
        level = "acknowledgment";
        why = "minor ticket";
    }
    comms_ctx_set_str(ctx, COMMS_V_ticket_id, tid);
    comms_ctx_set_str(ctx, COMMS_V_ticket_subject, orch__svs(snap, "ticket.subject"));
    comms_ctx_set_str(ctx, COMMS_V_ticket_resolution,
                      json_string_value(json_object_get(ev->data, "resolution")));
    comms_ctx_set_str(ctx, COMMS_V_ticket_severity, sevs);
    int64_t opened = orch__last_at(snap, "ticket.created");
    char tmp[64];
    if (opened != FW_TIME_NONE && opened <= ev->time) {
        orch__human_date(o, orch__svs(snap, "customer.timezone"), opened, tmp, sizeof tmp);
        comms_ctx_set_str(ctx, COMMS_V_ticket_opened_at, tmp);
        orch__human_duration(ev->time - opened, tmp, sizeof tmp);
        comms_ctx_set_str(ctx, COMMS_V_ticket_duration, tmp);
    }
    comms_ctx_set_str(ctx, COMMS_V_followup_level, level);
    orch__human_duration(o->cfg->followup_reminder, tmp, sizeof tmp);
    comms_ctx_set_str(ctx, COMMS_V_followup_reminder_in, tmp);
    json_t *sigs = json_array();
    char line[160];
    snprintf(line, sizeof line, "post_ticket_followup: %s (%s)", level, why);
    json_t *explain = json_pack("{s:{s:s?, s:s?}, s:[s]}", "ticket", "id", tid, "severity", sevs,
                                "decided_by", line);
    char tname[64];
    snprintf(tname, sizeof tname, "followup_%s", level);
    struct buf guards;
    buf_init(&guards, 0);
    struct verdict v = orch__outreach_verdict(o, c, snap, SEV_LOW, NULL, 0, now, &guards,
                                              OUT_FOLLOWUP, FW_TIME_NONE);
    struct draft d = {.audience = "customer",
                      .customer = c->key,
                      .kind = "followup",
                      .tmpl_name = tname,
                      .ctx = ctx,
                      .signals = sigs,
                      .explain = explain,
                      .at = now,
                      .key_extra = tid};
    const char *chans[] = {"email"};
    orch__customer_messages(o, c, snap, chans, 1, &d, &v, &guards, NULL);
    json_t *detail = json_pack("{s:s?, s:s}", "ticket_id", tid, "level", level);
    orch__ladder_arm(o, c, (size_t)-1, ev->time, STEP_FOLLOWUP_REMINDER, o->cfg->followup_reminder,
                     now, detail);
    json_decref(detail);
    buf_cleanup(&guards);
    json_decref(explain);
    json_decref(sigs);
    comms_ctx_free(ctx);
    json_decref(snap);
}

/*
 * The customer contacted us (a new ticket or chat): say we already reached
 * out.  The "no response" steps stay: only a reply to our message
 * (message.replied) answers it; a contact on another thread changes where
 * the follow-up goes (an open ticket: a reply on it) and what it says
 * ("you've been in touch since"), decided when it is sent.
 */
void orch__on_contact(struct orch *o, struct ocust *c, const struct event *ev)
{
    int64_t now = engine_now(o->engine);
    if (o->quiet || c->last_outreach == FW_TIME_NONE ||
        now - c->last_outreach > o->cfg->reached_out_window)
        return; /* the rest is a note and the chatbot context: nothing to remember */
    json_t *snap = orch__snapshot(o, c->key);
    struct comms_ctx *ctx = orch__customer_context(o, c, snap, now);
    json_t *sigs = json_array();
    json_t *explain =
        json_pack("{s:[s]}", "decided_by",
                  "already_reached_out: the customer contacted us after our outreach");
    const char *tid = json_string_value(json_object_get(ev->data, "ticket_id"));
    if (!strcmp(ev->type, "ticket.created") && tid) {
        json_t *meta = json_pack("{s:s}", "ticket_id", tid);
        struct draft d = {.audience = "l1",
                          .channel = "internal_note",
                          .customer = c->key,
                          .kind = "contact",
                          .tmpl_name = "already_reached_out",
                          .ctx = ctx,
                          .signals = sigs,
                          .explain = explain,
                          .meta = meta,
                          .recipient = tid,
                          .status = "scheduled",
                          .at = now,
                          .send_at = now,
                          .key_extra = ev->id};
        orch__emit(o, &d, NULL);
        json_decref(meta);
    }
    /* The chatbot context says so too. */
    char when[FW_TIME_MAXLEN], first[FW_TIME_MAXLEN];
    fw_time_format(now, when);
    fw_time_format(c->last_outreach, first);
    const char *email = orch__svs(snap, "customer.email");
    struct comms_rendered bot = {0};
    const struct comms_tmpl *bt = comms_find(o->tmpl, "chatbot", "chatbot", "default");
    if (bt && !o->quiet)
        comms_render_ctx(bt, ctx, &bot); /* the context says already_reached_out */
    json_t *pc = json_pack("{s:s?, s:{s:b, s:s, s:s, s:s?}}", "customer_email",
                           email ? email : (strchr(c->key, '@') ? c->key : NULL),
                           "proactive_context", "already_reached_out", 1, "reached_out_at", first,
                           "updated_at", when, "what_to_tell_customer", bot.text);
    comms_rendered_cleanup(&bot);
    if (o->sink.context && !o->quiet) { /* replay has no context sink: no text to make */
        char *txt = fw_json_dumps(pc);
        o->sink.context(o->sink.ctx, c->key, txt);
        free(txt);
    }
    json_decref(pc);
    json_decref(explain);
    json_decref(sigs);
    comms_ctx_free(ctx);
    json_decref(snap);
}
