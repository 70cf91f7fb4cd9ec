/*
 * orchestrate.c -- decisions: who hears about a detection, on which
 * channel, in which words, and when.
 *
 * Flow per evaluation pass of one customer (the engine's `step`): the
 * signals that fired in the pass are merged into one decision.  Internal
 * audiences first (L1 ticket, L2 Slack for CRITICAL, the chatbot context),
 * then the customer: seed 000's channel matrix (severity x open ticket),
 * tone from the customer's touch count, and the guardrails in a fixed order
 * (duplicate root cause, frequency cap, opt-out, missing address, approval,
 * quiet hours, internal detail).  Every outcome, sent or held back, is a
 * message record with its explanation.  Ladder steps become engine timers
 * and task rows; the business event that ends the problem cancels them.
 *
 * Invariants: decisions depend only on what the engine reported and the
 * engine clock, so a replay makes the same ones; every record's key is a
 * pure function of what it is about, so re-deriving never duplicates.
 */
#include "orchestrate/orchestrate.h"

#include <ctype.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/json.h"
#include "util/fwtime.h"
#include "util/log.h"
#include "util/map.h"
#include "util/util.h"

/* Ladder steps and reminders. */
#define STEP_KINDS(X)                                                                              \
    X(HIGH_NO_RESPONSE, "followup_no_response")                                                    \
    X(HIGH_UNRESOLVED_L2, "escalate_l2_unresolved")                                                \
    X(HIGH_PERSIST_L2, "escalate_l2_persisting")                                                   \
    X(CRITICAL_PAGE, "page_engineering")                                                           \
    X(CRITICAL_NO_RESPONSE, "sms_no_response")                                                     \
    X(FOLLOWUP_REMINDER, "followup_reminder")

enum step_kind {
#define ORCH__STEP(name, str) STEP_##name,
    STEP_KINDS(ORCH__STEP)
#undef ORCH__STEP
};

static const char *const step_names[] = {
#define ORCH__STEPSTR(name, str) str,
    STEP_KINDS(ORCH__STEPSTR)
#undef ORCH__STEPSTR
};

struct ocust;

struct ladder {
    struct engine_timer t; /* first: the engine hands it back */
    struct orch *o;
    struct ocust *c;
    size_t sig;        /* signal index; (size_t)-1 for a follow-up reminder */
    int64_t fired_at;  /* the episode (or the resolved ticket's time) */
    enum step_kind kind;
    char *key;
    char *detail; /* JSON for the task row */
    int64_t created_at;
    struct ladder *next;
};

struct outreach {
    const char *root_cause; /* borrowed from the rules, or a static string */
    int64_t at;
};

/* The moment a customer's caught-up detections are decided (see sink_detection). */
struct hold {
    struct engine_timer t; /* first: the engine hands it back */
    struct orch *o;
    struct ocust *c;
};

struct ocust {
    char *key; /* owned by the map */
    struct outreach *hist;
    size_t nhist, caphist;
    size_t *pending; /* signal indexes fired in the current pass */
    size_t npending, cappending;
    size_t *held; /* signals found firing while catching up, decided when the hold ends */
    size_t nheld, capheld;
    int held_new; /* the current pass added to held */
    struct hold hold;
    struct ladder *tasks;
    int64_t first_outreach, last_outreach;
};

struct orch {
    const struct orch_config *cfg;
    const struct comms *tmpl;
    struct orch_sink sink;
    struct engine_sink next;
    struct engine *engine;
    const struct rules *rules;
    struct strmap customers;
    regex_t phone_re;
    int quiet; /* see orch_set_quiet */
    int bare;  /* see orch_set_bare: quiet, but unrendered records still reach the sink */
};

/* ---- small helpers ---- */

/* Remove v from a list of signal indexes; 1 when it was there. */
static int list_remove(size_t *list, size_t *n, size_t v)
{
    for (size_t i = 0; i < *n; i++)
        if (list[i] == v) {
            memmove(&list[i], &list[i + 1], (*n - i - 1) * sizeof *list);
            (*n)--;
            return 1;
        }
    return 0;
}

/* Whether something dated `at` reached us late enough to be history being caught up. */
static int is_late(const struct orch *o, int64_t at)
{
    return o->engine && at < engine_now(o->engine) - o->cfg->late_after;
}

static struct ocust *cust(struct orch *o, const char *key)
{
    int created;
    struct strmap_entry *me = strmap_upsert(&o->customers, key, strlen(key), &created);
    if (created) {
        struct ocust *c = xcalloc(1, sizeof *c);
        c->key = me->key;
        c->first_outreach = c->last_outreach = FW_TIME_NONE;
        tw_entry_init(&c->hold.t._tw);
        extern void orch__hold_fire(struct engine_timer * t, int64_t due);
        c->hold.t.fire = orch__hold_fire;
        c->hold.o = o;
        c->hold.c = c;
        me->value = c;
    }
    return me->value;
}

static void human_time(int64_t t, char *out, size_t n)
{
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char iso[FW_TIME_MAXLEN];
    fw_time_format(t, iso);
    int y, mo, d, h, mi;
    if (sscanf(iso, "%d-%d-%dT%d:%d", &y, &mo, &d, &h, &mi) != 5 || mo < 1 || mo > 12) {
        snprintf(out, n, "%s", iso);
        return;
    }
    snprintf(out, n, "%s %d, %d at %02d:%02d UTC", months[mo - 1], d, y, h, mi);
}

static void human_date(int64_t t, char *out, size_t n)
{
    char full[64];
    human_time(t, full, sizeof full);
    char *at = strstr(full, " at ");
    if (at)
        *at = '\0';
    snprintf(out, n, "%s", full);
}

static void human_duration(int64_t ms, char *out, size_t n)
{
    if (ms >= 2 * FW_DAY)
        snprintf(out, n, "%lld days", (long long)(ms / FW_DAY));
    else if (ms >= FW_DAY)
        snprintf(out, n, "1 day");
    else if (ms >= 2 * FW_HOUR)
        snprintf(out, n, "%lld hours", (long long)(ms / FW_HOUR));
    else if (ms >= FW_HOUR)
        snprintf(out, n, "1 hour");
    else
        snprintf(out, n, "%lld minutes", (long long)(ms / FW_MINUTE));
}

/* A state value from a customer snapshot ({"state": {"k": {"value": v}}}), or NULL. */
static json_t *sv(json_t *snap, const char *key)
{
    return json_object_get(json_object_get(json_object_get(snap, "state"), key), "value");
}

static const char *svs(json_t *snap, const char *key)
{
    return json_string_value(sv(snap, key));
}

static int64_t last_at(json_t *snap, const char *type)
{
    const char *t = json_string_value(json_object_get(json_object_get(snap, "last_event"), type));
    int64_t ms;
    return t && !fw_time_parse(t, strlen(t), &ms) ? ms : FW_TIME_NONE;
}

static json_t *snapshot(struct orch *o, const char *customer)
{
    json_t *j = engine_customer_object(o->engine, customer);
    return j ? j : json_object();
}

static const char *open_ticket(json_t *snap)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(snap, "open"), i, e)
    {
        if (!strcmp(json_string_value(json_object_get(e, "entity")) ?: "", "ticket"))
            return json_string_value(json_object_get(e, "id"));
    }
    return NULL;
}

static int opted_out(json_t *snap, const char *channel)
{
    json_t *list = sv(snap, "customer.opt_out");
    size_t i;
    json_t *v;
    if (json_is_string(list))
        return !strcmp(json_string_value(list), channel);
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && !strcmp(json_string_value(v), channel))
            return 1;
    }
    return 0;
}

static void mask_phone(const char *phone, char *out, size_t n)
{
    size_t digits = 0, len = strlen(phone);
    for (size_t i = 0; i < len; i++)
        digits += isdigit((unsigned char)phone[i]) != 0;
    size_t k = 0, seen = 0;
    for (size_t i = 0; i < len && k + 1 < n; i++) {
        char ch = phone[i];
        if (isdigit((unsigned char)ch)) {
            seen++;
            out[k++] = seen + 4 > digits ? ch : '*';
        } else {
            out[k++] = ch;
        }
    }
    out[k] = '\0';
}

/* Mask every run of 7+ digits (with separators) in external text, keeping the last 4. */
/* The digits of s, at most n - 1 of them. */
static size_t digits_of(const char *s, size_t len, char *out, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < n; i++)
        if (isdigit((unsigned char)s[i]))
            out[k++] = s[i];
    out[k] = '\0';
    return k;
}

/*
 * Is this run of digits and separators a phone number?  An international
 * number written with '+' (8 to 15 digits); a North American one written
 * with separators ("415-555-0199", "(415) 555 0199", "+1 415.555.0199");
 * or the customer's own number however it is written.  Ticket and order
 * numbers, amounts and dates ("2026-03-02") are none of these.
 */
static int is_phone(struct orch *o, const char *run, size_t len, const char *known)
{
    char d[64], kd[64];
    size_t nd = digits_of(run, len, d, sizeof d);
    if (nd < 7 || nd > 15)
        return 0;
    if (run[0] == '+' && nd >= 8)
        return 1;
    char *s = xstrndup(run, len);
    int nanp = regexec(&o->phone_re, s, 0, NULL, 0) == 0;
    free(s);
    if (nanp)
        return 1;
    size_t nk = known ? digits_of(known, strlen(known), kd, sizeof kd) : 0;
    if (nk < 7)
        return 0;
    /* The customer's number, with or without its country code. */
    size_t tail = nk < 10 ? nk : 10;
    return nd >= tail && !strcmp(d + nd - tail, kd + nk - tail);
}

/*
 * Mask phone numbers in customer text (all digits but the last four).
 * known: the customer's own number, or NULL.
 */
static char *mask_numbers(struct orch *o, const char *text, const char *known)
{
    struct buf out;
    buf_init(&out, 0);
    const char *p = text, *flushed = text;
    while (*p) {
        /* A run starts at a digit, or at '+' or '(' before one, not inside a word or an id. */
        int starts = isdigit((unsigned char)*p) ||
                     ((*p == '+' || *p == '(') && isdigit((unsigned char)p[1]));
        if (!starts || (p > text && (isalnum((unsigned char)p[-1]) || strchr("#_/+", p[-1])))) {
            p++;
            continue;
        }
        const char *e = p + 1;
        while (*e && (isdigit((unsigned char)*e) || strchr(" ().-", *e)))
            e++;
        const char *end = e;
        while (end > p && !isdigit((unsigned char)end[-1]))
            end--; /* separators after the last digit are not part of it */
        if (!isalnum((unsigned char)*end) && is_phone(o, p, (size_t)(end - p), known)) {
            buf_append(&out, flushed, (size_t)(p - flushed));
            char *run = xstrndup(p, (size_t)(end - p));
            char masked[256];
            mask_phone(run, masked, sizeof masked);
            buf_puts(&out, masked);
            free(run);
            flushed = p = end;
            continue;
        }
        /* Not one number: perhaps one starts at the next word ("on 2026-03-02 415-555-0199"). */
        const char *space = memchr(p, ' ', (size_t)(end - p));
        p = space ? space + 1 : e;
    }
    buf_puts(&out, flushed);
    return buf_steal(&out);
}

static const char *priority_of(enum severity s)
{
    static const char *p[] = {"low", "normal", "high", "urgent"};
    return p[s];
}

static const char *respond_within(enum severity s)
{
    static const char *p[] = {"best effort", "8 hours", "2 hours", "30 minutes"};
    return p[s];
}

static const char *followup_within(enum severity s)
{
    static const char *p[] = {"best effort", "48 hours", "24 hours", "2 hours"};
    return p[s];
}

static const char *customer_within(enum severity s)
{
    static const char *p[] = {"a few days", "24 hours", "4 hours", "1 hour"};
    return p[s];
}

static const char *group_of(const char *team)
{
    static const struct {
        const char *team, *group;
    } groups[] = {
        {"esim", "eSIM specialists"}, {"porting", "Port team"},  {"billing", "Billing"},
        {"support", "Support"},       {"orders", "Order operations"},
        {"retention", "Retention"},   {"network", "Network operations"},
    };
    for (size_t i = 0; team && i < ARRAY_SIZE(groups); i++)
        if (!strcmp(team, groups[i].team))
            return groups[i].group;
    return team ? team : "Support";
}

static void lower_copy(const char *s, char *out, size_t n)
{
    size_t i = 0;
    for (; s[i] && i + 1 < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[i] = '\0';
}

/* ---- template contexts ---- */

static void set_json(json_t *obj, const char *dotted, json_t *v)
{
    char path[128];
    snprintf(path, sizeof path, "%s", dotted);
    json_t *cur = obj;
    char *seg = path, *dot;
    while ((dot = strchr(seg, '.'))) {
        *dot = '\0';
        json_t *child = json_object_get(cur, seg);
        if (!json_is_object(child)) {
            child = json_object();
            json_object_set_new(cur, seg, child);
        }
        cur = child;
        seg = dot + 1;
    }
    json_object_set_new(cur, seg, v);
}

/* A string at a dotted path; NULL sets nothing (absent reads as false in templates). */
static void set_str(json_t *obj, const char *dotted, const char *v)
{
    if (v)
        set_json(obj, dotted, json_string(v));
}

/* Scalar state value as text ("" when absent). */
static const char *sv_text(json_t *snap, const char *key, char *tmp, size_t n)
{
    json_t *v = sv(snap, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(tmp, n, "%lld", (long long)json_integer_value(v));
        return tmp;
    }
    if (json_is_real(v)) {
        snprintf(tmp, n, "%g", json_real_value(v));
        return tmp;
    }
    return NULL;
}

/*
 * Everything templates may need about a customer, now.  Only rendering and
 * explanations read it (no decision does), so a quiet orchestrator skips it.
 */
static json_t *customer_context(struct orch *o, struct ocust *c, json_t *snap, int64_t now)
{
    const struct orch_config *cfg = o->cfg;
    json_t *x = json_object();
    if (o->quiet)
        return x;
    char tmp[256], tmp2[64];
    set_str(x, "brand.name", cfg->brand.name);
    set_str(x, "brand.sender_name", cfg->brand.sender_name);
    set_str(x, "brand.support_url", cfg->brand.support_url);
    set_str(x, "brand.app_name", cfg->brand.app_name);
    set_str(x, "customer.id", c->key);
    const char *name = svs(snap, "customer.name");
    const char *email = svs(snap, "customer.email");
    if (!email && strchr(c->key, '@'))
        email = c->key;
    set_str(x, "customer.name", name ? name : (email ? email : c->key));
    char first[128] = "there";
    if (name && *name) {
        snprintf(first, sizeof first, "%s", name);
        first[strcspn(first, " ")] = '\0';
    }
    set_str(x, "customer.first_name", first);
    set_str(x, "customer.email", email);
    const char *phone = sv_text(snap, "customer.phone", tmp, sizeof tmp);
    if (phone) {
        set_str(x, "customer.phone", phone);
        char masked[128];
        mask_phone(phone, masked, sizeof masked);
        set_str(x, "customer.phone_masked", masked);
    }
    set_str(x, "customer.zip", sv_text(snap, "customer.zip", tmp, sizeof tmp));
    set_str(x, "customer.plan", svs(snap, "customer.plan"));
    set_str(x, "customer.tier", svs(snap, "customer.tier"));
    set_str(x, "customer.value", sv_text(snap, "customer.value", tmp, sizeof tmp));
    set_str(x, "customer.timezone", svs(snap, "customer.timezone"));
    const char *order = svs(snap, "order.order_id");
    if (!order)
        order = svs(snap, "esim.order_id");
    if (!order)
        order = svs(snap, "payment.order_id");
    set_str(x, "order.id", order);
    set_str(x, "order.status", svs(snap, "order.status"));
    set_str(x, "esim.status", svs(snap, "esim.status"));
    set_str(x, "esim.individual_id", svs(snap, "esim.individual_id"));
    int64_t paid = last_at(snap, "payment.completed");
    int64_t failed = last_at(snap, "payment.failed");
    if (paid != FW_TIME_NONE) {
        human_date(paid, tmp, sizeof tmp);
        set_str(x, "payment.completed_at", tmp);
        set_str(x, "payment.status", "completed");
        snprintf(tmp2, sizeof tmp2, "%lld", (long long)((now - paid) / FW_DAY));
        set_str(x, "days_since_payment", tmp2);
    } else {
        set_str(x, "payment.status", failed != FW_TIME_NONE ? "failed" : "pending");
    }
    set_str(x, "portin.status", svs(snap, "portin.status"));
    set_str(x, "portin.response", svs(snap, "portin.response"));
    set_str(x, "portin.carrier", svs(snap, "portin.carrier"));
    set_str(x, "chat.topic", svs(snap, "chat.topic"));
    set_str(x, "chat.summary", svs(snap, "chat.summary"));
    int64_t esc = last_at(snap, "chat.escalated");
    if (esc != FW_TIME_NONE) {
        human_time(esc, tmp, sizeof tmp);
        set_str(x, "chat.escalated_at", tmp);
    }
    int64_t contacts = engine_count(o->engine, c->key, "contact", 7 * FW_DAY);
    set_json(x, "contacts", json_integer(contacts));
    int64_t lt = last_at(snap, "ticket.created"), lc = last_at(snap, "chat.started");
    if (lt != FW_TIME_NONE || lc != FW_TIME_NONE) {
        int ticket = lt >= lc;
        human_time(ticket ? lt : lc, tmp2, sizeof tmp2);
        const char *topic = ticket ? svs(snap, "ticket.subject") : svs(snap, "chat.topic");
        snprintf(tmp, sizeof tmp, "%s — %s%s%s", ticket ? "ticket" : "chat", tmp2,
                 topic ? " — " : "", topic ? topic : "");
        set_str(x, "last_contact", tmp);
    }
    const char *tid = open_ticket(snap);
    set_json(x, "has_open_ticket", json_boolean(tid != NULL));
    set_str(x, "open_ticket_id", tid);
    int level = contacts < 1 ? 1 : contacts > 4 ? 4 : (int)contacts;
    set_json(x, "tone.level", json_integer(level));
    set_json(x, "tone.helpful", json_boolean(level == 1));
    set_json(x, "tone.empathetic", json_boolean(level == 2));
    set_json(x, "tone.apologetic", json_boolean(level == 3));
    set_json(x, "tone.urgent", json_boolean(level == 4));
    int reached = c->last_outreach != FW_TIME_NONE && now - c->last_outreach <= cfg->reached_out_window;
    set_json(x, "already_reached_out", json_boolean(reached));
    if (reached) {
        human_time(c->last_outreach, tmp, sizeof tmp);
        set_str(x, "reached_out_at", tmp);
    }
    human_time(now, tmp, sizeof tmp);
    set_str(x, "detected_at", tmp);
    /* Outage details from global state, for the customer's area. */
    json_t *glob = engine_global_object(o->engine);
    if (json_object_size(glob)) {
        set_str(x, "outage.area", sv_text(snap, "customer.zip", tmp, sizeof tmp));
        set_str(x, "outage.eta", json_string_value(json_object_get(glob, "outage.eta")));
        set_str(x, "outage.impact", json_string_value(json_object_get(glob, "outage.impact")));
    }
    json_decref(glob);
    return x;
}

static void signal_context(json_t *x, const struct rule_signal *s)
{
    set_str(x, "signal.id", s->id);
    set_str(x, "signal.name", s->name);
    set_str(x, "signal.severity", severity_name(s->severity));
    set_str(x, "signal.team", s->team);
    set_str(x, "signal.root_cause", s->root_cause);
    set_str(x, "signal.description", s->description);
    set_str(x, "priority", priority_of(s->severity));
    set_str(x, "group", group_of(s->team));
    set_str(x, "sla.respond_within", respond_within(s->severity));
    set_str(x, "sla.followup_within", followup_within(s->severity));
    set_str(x, "response_within", customer_within(s->severity));
}

/* ---- records ---- */

static char *hex_id(const char *key)
{
    char id[24];
    snprintf(id, sizeof id, "m_%016llx", (unsigned long long)fw_hash(key, strlen(key)));
    return xstrdup(id);
}

struct draft {
    const char *audience, *channel, *customer;
    const char *kind; /* what the message is for: "alert", "ladder", "incident", "followup" */
    const char *tmpl_name;
    json_t *ctx;      /* borrowed */
    json_t *signals;  /* borrowed array of ids */
    json_t *explain;  /* borrowed; copied into the record */
    json_t *meta;     /* borrowed or NULL */
    const char *recipient;
    const char *status;
    const char *reason;
    int64_t at, send_at;
    const char *key_extra; /* distinguishes records otherwise alike */
};

/* The record's key (and so its id): what the message is about, not its text. */
static void record_key(const struct draft *d, const char *sig, struct buf *key)
{
    buf_printf(key, "%s|%s|%s|%s|%s|%s|%lld", d->kind, d->customer ? d->customer : "-", sig,
               d->audience, d->channel, d->key_extra ? d->key_extra : "", (long long)d->at);
}

/*
 * Quiet: whether the customer message this draft decided counts as an
 * outreach (it was not suppressed), as the stored record says.
 */
static int quiet_counts(struct orch *o, const struct draft *d, const struct comms_tmpl *t)
{
    if (strcmp(d->audience, "customer") || !strcmp(d->status, "suppressed") || !t)
        return 0;
    if (!o->sink.stored_status)
        return 1;
    char *sig = fw_json_dumps(d->signals);
    struct buf key;
    buf_init(&key, 0);
    record_key(d, sig, &key);
    char status[32];
    int counts = o->sink.stored_status(o->sink.ctx, key.data, status, sizeof status)
                     ? 1 /* nothing stored (a journal older than its messages): as decided */
                     : strcmp(status, "suppressed") != 0;
    buf_cleanup(&key);
    free(sig);
    return counts;
}

/*
 * Bare: the record as decided, without text (no rendering).  A message that
 * rendering would have suppressed (output over the cap, an internal id in
 * customer text) is not known to be; a missing template is.
 */
static int emit_bare(struct orch *o, const struct draft *d, const struct comms_tmpl *t)
{
    char *sig = fw_json_dumps(d->signals);
    struct buf key;
    buf_init(&key, 0);
    record_key(d, sig, &key);
    char *id = hex_id(key.data);
    const char *status = t ? d->status : "suppressed", *reason = t ? d->reason : "no_template";
    struct outbox_msg m = {.id = id, .key = key.data, .customer = (char *)d->customer,
                           .audience = (char *)d->audience, .channel = (char *)d->channel,
                           .status = (char *)status, .reason = (char *)reason,
                           .created_at = d->at, .send_at = d->send_at,
                           .recipient = (char *)d->recipient, .signals = sig,
                           .explain = "{}", .meta = "{}"};
    if (o->sink.message)
        o->sink.message(o->sink.ctx, &m);
    int counts = !strcmp(d->audience, "customer") && strcmp(status, "suppressed") != 0;
    free(id);
    free(sig);
    buf_cleanup(&key);
    return counts;
}

/* The customer's phone number from a template context, or NULL. */
static const char *ctx_phone(json_t *ctx)
{
    return json_string_value(json_object_get(json_object_get(ctx, "customer"), "phone"));
}

/* Mask phone numbers in one rendered part, in place. */
static void mask_part(struct orch *o, char **part, const char *known)
{
    if (!*part)
        return;
    char *masked = mask_numbers(o, *part, known);
    free(*part);
    *part = masked;
}

/*
 * Render and emit one message record.  Returns 1 when the record counts as
 * an outreach to the customer (a customer message not suppressed), else 0.
 */
static int emit(struct orch *o, const struct draft *d, struct comms_rendered *keep)
{
    const struct comms_tmpl *t =
        comms_find(o->tmpl, d->audience, d->channel, d->tmpl_name ? d->tmpl_name : "default");
    if (o->quiet && !o->bare)
        return quiet_counts(o, d, t);
    if (o->bare)
        return emit_bare(o, d, t);
    struct comms_rendered r = {0};
    const char *status = d->status, *reason = d->reason;
    int external = !strcmp(d->audience, "customer");
    char *sig = fw_json_dumps(d->signals);
    struct buf key;
    buf_init(&key, 0);
    record_key(d, sig, &key);
    char *id = hex_id(key.data);
    char unsub[1024] = "";
    if (external && o->cfg->brand.unsubscribe_url && d->customer) {
        snprintf(unsub, sizeof unsub, "%s?m=%s", o->cfg->brand.unsubscribe_url, id);
        json_object_set_new(d->ctx, "unsubscribe_url", json_string(unsub));
    }
    if (!t) {
        status = "suppressed";
        reason = "no_template";
    } else if (comms_render(t, d->ctx, &r)) {
        status = "suppressed";
        reason = "render_failed: output over the cap";
    }
    json_object_del(d->ctx, "unsubscribe_url");
    if (external && r.text) {
        /* No internal detail in external text; phone numbers masked, in every part. */
        if (strstr(r.text, "SIG-") || (r.subject && strstr(r.subject, "SIG-")) ||
            (r.title && strstr(r.title, "SIG-"))) {
            status = "suppressed";
            reason = "internal_detail: the text names an internal signal id";
        }
        const char *known = ctx_phone(d->ctx);
        mask_part(o, &r.text, known);
        mask_part(o, &r.html, known);
        mask_part(o, &r.subject, known);
        mask_part(o, &r.title, known);
    }
    /* The record's explanation and meta are the draft's plus a key each, added for the dump. */
    json_t *ex = d->explain;
    if (t)
        json_object_set_new(ex, "template", json_string(comms_tmpl_path(t)));
    json_t *meta = d->meta ? json_incref(d->meta) : json_object();
    struct outbox_msg m = {
        .key = key.data,
        .customer = (char *)d->customer,
        .audience = (char *)d->audience,
        .channel = (char *)d->channel,
        .status = (char *)status,
        .reason = (char *)reason,
        .created_at = d->at,
        .send_at = d->send_at,
        .recipient = (char *)d->recipient,
        .subject = r.subject ? r.subject : r.title,
        .body = r.text,
        .html = r.html,
        .signals = sig,
    };
    m.id = id;
    if (unsub[0])
        json_object_set_new(meta, "unsubscribe_url", json_string(unsub));
    m.explain = fw_json_dumps(ex);
    m.meta = fw_json_dumps(meta);
    json_object_del(ex, "template");
    json_object_del(meta, "unsubscribe_url");
    if (o->sink.message)
        o->sink.message(o->sink.ctx, &m);
    free(m.id);
    free(m.explain);
    free(m.meta);
    free(sig);
    json_decref(meta);
    buf_cleanup(&key);
    if (keep && t && !reason)
        *keep = r;
    else if (keep && t && status && strcmp(status, "suppressed"))
        *keep = r;
    else
        comms_rendered_cleanup(&r);
    return external && strcmp(status, "suppressed") != 0;
}

static void emit_task(struct orch *o, struct ladder *l, const char *status)
{
    if (o->quiet)
        return;
    struct task_row row = {
        .key = l->key,
        .customer = l->c ? l->c->key : NULL,
        .kind = step_names[l->kind],
        .status = status,
        .detail = l->detail,
        .due_at = l->t._tw.due,
        .created_at = l->created_at,
    };
    if (o->sink.task)
        o->sink.task(o->sink.ctx, &row);
}

static void ladder_arm(struct orch *o, struct ocust *c, size_t sig, int64_t fired_at,
                       enum step_kind kind, int64_t delay, int64_t now, json_t *detail)
{
    struct ladder *l = xcalloc(1, sizeof *l);
    l->o = o;
    l->c = c;
    l->sig = sig;
    l->fired_at = fired_at;
    l->kind = kind;
    l->created_at = now;
    struct buf k;
    buf_init(&k, 0);
    buf_printf(&k, "%s|%s|%s|%lld", step_names[kind], c->key,
               sig == (size_t)-1 ? "-" : o->rules->signals[sig].id, (long long)fired_at);
    l->key = buf_steal(&k);
    l->detail = fw_json_dumps(detail);
    tw_entry_init(&l->t._tw);
    extern void orch__fire(struct engine_timer * t, int64_t due);
    l->t.fire = orch__fire;
    engine_timer_arm(o->engine, &l->t, now + delay);
    l->next = c->tasks;
    c->tasks = l;
    emit_task(o, l, "pending");
}

static void ladder_free(struct ladder *l)
{
    free(l->key);
    free(l->detail);
    free(l);
}

/* Cancel a customer's tasks matching (kind set, signal); -1 matches any signal. */
static void ladder_cancel(struct orch *o, struct ocust *c, unsigned kinds, size_t sig,
                          const char *why)
{
    for (struct ladder **pp = &c->tasks; *pp;) {
        struct ladder *l = *pp;
        if ((kinds & (1u << l->kind)) && (sig == (size_t)-2 || l->sig == sig)) {
            *pp = l->next;
            engine_timer_cancel(o->engine, &l->t);
            json_t *d = json_loads(l->detail, 0, NULL);
            if (!d)
                d = json_object();
            json_object_set_new(d, "cancelled_by", json_string(why));
            free(l->detail);
            l->detail = fw_json_dumps(d);
            json_decref(d);
            emit_task(o, l, "cancelled");
            ladder_free(l);
        } else {
            pp = &l->next;
        }
    }
}

#define NO_RESPONSE_KINDS ((1u << STEP_HIGH_NO_RESPONSE) | (1u << STEP_CRITICAL_NO_RESPONSE))
#define ALL_SIGNAL_KINDS                                                                           \
    ((1u << STEP_HIGH_NO_RESPONSE) | (1u << STEP_HIGH_UNRESOLVED_L2) |                             \
     (1u << STEP_HIGH_PERSIST_L2) | (1u << STEP_CRITICAL_PAGE) | (1u << STEP_CRITICAL_NO_RESPONSE))

/* ---- guardrails for customer messages ---- */

struct verdict {
    const char *status; /* scheduled, awaiting_approval, suppressed */
    char reason[320];
    int64_t send_at;
};

static int in_list(const char *v, char **list, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        if (!strcmp(v, list[i]))
            return 1;
    return 0;
}

/* What a customer message is: decides which guardrails apply. */
enum outreach_kind {
    OUT_PROACTIVE, /* about a detection: every guardrail */
    OUT_LADDER,    /* a ladder follow-up of an outreach that already passed dedup and the cap */
    OUT_FOLLOWUP,  /* after a resolved ticket (seed 004): approval by default */
};

/*
 * The guardrails that apply to a whole outreach (not per channel), in order.
 * Appends each check and its result to `guards`.
 */
static struct verdict outreach_verdict(struct orch *o, struct ocust *c, json_t *snap,
                                       enum severity sev, const char *const *roots, size_t nroots,
                                       int64_t now, json_t *guards, enum outreach_kind kind)
{
    int proactive = kind == OUT_PROACTIVE;
    const struct orch_config *cfg = o->cfg;
    struct verdict v = {.status = "scheduled", .send_at = now};
    char note[200];
#define GUARD(name, result)                                                                        \
    json_array_append_new(guards, json_pack("{s:s, s:s}", "guardrail", name, "result", result))
    if (proactive) {
        /* Duplicate root cause within the window. */
        size_t fresh = 0;
        int64_t seen_at = FW_TIME_NONE;
        for (size_t r = 0; r < nroots; r++) {
            int dup = 0;
            for (size_t h = 0; h < c->nhist && !dup; h++)
                if (roots[r] && c->hist[h].root_cause && !strcmp(c->hist[h].root_cause, roots[r]) &&
                    now - c->hist[h].at < cfg->dedup_window) {
                    dup = 1;
                    seen_at = c->hist[h].at;
                }
            fresh += !dup;
        }
        if (nroots && !fresh) {
            char t[FW_TIME_MAXLEN];
            fw_time_format(seen_at, t);
            snprintf(v.reason, sizeof v.reason,
                     "duplicate: this root cause was already messaged at %s (one per %lldh)", t,
                     (long long)(cfg->dedup_window / FW_HOUR));
            GUARD("dedup", v.reason);
            v.status = "suppressed";
            return v;
        }
        GUARD("dedup", "pass");
        /* Frequency cap. */
        int recent = 0;
        for (size_t h = 0; h < c->nhist; h++)
            recent += now - c->hist[h].at < cfg->freq_window;
        if (recent >= cfg->freq_cap && !(sev == SEV_CRITICAL && cfg->cap_bypass_critical)) {
            snprintf(v.reason, sizeof v.reason,
                     "frequency_cap: %d proactive message(s) in the last %lldd (cap %d)", recent,
                     (long long)(cfg->freq_window / FW_DAY), cfg->freq_cap);
            GUARD("frequency_cap", v.reason);
            v.status = "suppressed";
            return v;
        }
        GUARD("frequency_cap", recent >= cfg->freq_cap ? "bypassed: CRITICAL" : "pass");
    }
    /* Approval by tier or severity. */
    const char *tier = svs(snap, "customer.tier");
    int by_tier = in_list(tier, cfg->approval_tiers, cfg->napproval_tiers);
    int by_sev = kind != OUT_FOLLOWUP && cfg->approval_severity[sev];
    int by_followup = kind == OUT_FOLLOWUP && cfg->followup_approval;
    if (by_tier || by_sev || by_followup) {
        snprintf(note, sizeof note, "required: %s",
                 by_tier ? "customer tier" : by_followup ? "post-ticket follow-up" : "severity");
        GUARD("approval", note);
        v.status = "awaiting_approval";
        snprintf(v.reason, sizeof v.reason, "approval %s", note);
    } else {
        GUARD("approval", "not required");
    }
    /* Quiet hours in the customer's zone. */
    const char *tz = svs(snap, "customer.timezone");
    int qs = cfg->quiet_start, qe = cfg->quiet_end;
    const char *s1 = svs(snap, "customer.quiet_hours.start"), *e1 = svs(snap, "customer.quiet_hours.end");
    int h1, m1, h2, m2;
    if (s1 && e1 && sscanf(s1, "%d:%d", &h1, &m1) == 2 && sscanf(e1, "%d:%d", &h2, &m2) == 2) {
        qs = h1 * 60 + m1;
        qe = h2 * 60 + m2;
    }
    if (sev == SEV_CRITICAL && cfg->quiet_bypass_critical) {
        GUARD("quiet_hours", "bypassed: CRITICAL");
    } else {
        int64_t until = orch__quiet_until(now, tz ? tz : "UTC", qs, qe);
        if (until != FW_TIME_NONE) {
            char t[FW_TIME_MAXLEN];
            fw_time_format(until, t);
            snprintf(note, sizeof note, "held until %s (quiet hours %02d:%02d-%02d:%02d %s)", t,
                     qs / 60, qs % 60, qe / 60, qe % 60, tz ? tz : "UTC");
            GUARD("quiet_hours", note);
            v.send_at = until;
            if (!v.reason[0])
                snprintf(v.reason, sizeof v.reason, "quiet_hours: %s", note);
        } else {
            GUARD("quiet_hours", "pass");
        }
    }
#undef GUARD
    return v;
}

static void note_outreach(struct ocust *c, const char *const *roots, size_t nroots, int64_t now)
{
    for (size_t r = 0; r < (nroots ? nroots : 1); r++) {
        c->hist = xgrow(c->hist, &c->caphist, c->nhist + 1, sizeof *c->hist);
        c->hist[c->nhist].root_cause = nroots ? roots[r] : NULL;
        c->hist[c->nhist++].at = now;
    }
    if (c->first_outreach == FW_TIME_NONE)
        c->first_outreach = now;
    c->last_outreach = now;
}

/* Send one customer message per channel, each with its own per-channel checks. */
static int customer_messages(struct orch *o, struct ocust *c, json_t *snap, const char *const *chans,
                             size_t nchans, struct draft *base, const struct verdict *v,
                             json_t *guards, struct comms_rendered *draft_out)
{
    int sent = 0;
    for (size_t i = 0; i < nchans; i++) {
        struct draft d = *base;
        d.channel = chans[i];
        d.status = v->status;
        d.reason = v->reason[0] ? v->reason : NULL;
        d.send_at = v->send_at;
        /* This channel's guardrails: the shared ones plus its own (a shallow copy). */
        json_t *ex = base->explain;
        json_t *g = json_copy(guards);
        const char *addr = NULL;
        char why[128];
        if (!strcmp(chans[i], "email"))
            addr = svs(snap, "customer.email") ? svs(snap, "customer.email")
                                               : (strchr(c->key, '@') ? c->key : NULL);
        else if (!strcmp(chans[i], "sms"))
            addr = sv_text(snap, "customer.phone", why, sizeof why);
        else if (!strcmp(chans[i], "ticket_reply"))
            addr = open_ticket(snap);
        else
            addr = c->key;
        if (strcmp(d.status, "suppressed") && opted_out(snap, chans[i])) {
            d.status = "suppressed";
            snprintf(why, sizeof why, "opt_out: the customer refuses %s", chans[i]);
            d.reason = why;
            json_array_append_new(g, json_pack("{s:s, s:s}", "guardrail", "opt_out", "result", why));
        } else if (strcmp(d.status, "suppressed") && !addr) {
            d.status = "suppressed";
            snprintf(why, sizeof why, "no_address: no %s known for the customer", chans[i]);
            d.reason = why;
        } else {
            json_array_append_new(g, json_pack("{s:s, s:s}", "guardrail", "opt_out", "result", "pass"));
        }
        json_object_set_new(ex, "guardrails", g);
        d.explain = ex;
        d.recipient = addr ? xstrdup(addr) : NULL;
        json_t *meta = json_object();
        if (!strcmp(chans[i], "ticket_reply") && addr)
            json_object_set_new(meta, "ticket_id", json_string(addr));
        d.meta = meta;
        struct comms_rendered r = {0};
        /* What counts is what went out: a message suppressed when rendered does not. */
        if (emit(o, &d, draft_out && !draft_out->text ? &r : NULL))
            sent++;
        if (r.text && draft_out && !draft_out->text)
            *draft_out = r;
        free((char *)d.recipient);
        json_decref(meta);
        json_object_del(ex, "guardrails");
    }
    return sent;
}

/* ---- the decision for one pass ---- */

static json_t *signals_array(struct orch *o, const size_t *idx, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(o->rules->signals[idx[i]].id));
    return a;
}

/* Customer-facing one-liner per signal: the subject of its own email template. */
static json_t *issues_list(struct orch *o, json_t *ctx, const size_t *idx, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct rule_signal *s = &o->rules->signals[idx[i]];
        const struct comms_tmpl *t = comms_find(o->tmpl, "customer", "email", s->id);
        char *headline = NULL;
        json_t *item = json_pack("{s:s, s:s, s:s}", "signal", s->id, "name", s->name, "severity",
                                 severity_name(s->severity));
        if (t && !o->quiet && comms_render_headline(t, ctx, &headline) == 0 && headline)
            json_object_set_new(item, "headline", json_string(headline));
        else
            json_object_set_new(item, "headline", json_string(s->name));
        free(headline);
        json_array_append_new(list, item);
    }
    return list;
}

static void decide(struct orch *o, struct ocust *c)
{
    int64_t now = engine_now(o->engine);
    size_t n = c->npending;
    size_t main = c->pending[0];
    for (size_t i = 1; i < n; i++)
        if (o->rules->signals[c->pending[i]].severity > o->rules->signals[main].severity)
            main = c->pending[i];
    const struct rule_signal *ms = &o->rules->signals[main];
    enum severity sev = ms->severity;
    json_t *snap = snapshot(o, c->key);
    json_t *ctx = customer_context(o, c, snap, now);
    signal_context(ctx, ms);
    /*
     * Merge: one message addresses every problem the customer has right now,
     * the new ones first, then those already firing (seed 000: SIG-002 +
     * SIG-008 make ONE message).
     */
    size_t all[64], nall = 0;
    for (size_t i = 0; i < n && nall < ARRAY_SIZE(all); i++)
        all[nall++] = c->pending[i];
    size_t ai;
    json_t *act;
    json_array_foreach(json_object_get(snap, "active_detections"), ai, act)
    {
        const struct rule_signal *as =
            rules_signal(o->rules, json_string_value(json_object_get(act, "signal")) ?: "");
        size_t idx = as ? (size_t)(as - o->rules->signals) : (size_t)-1;
        int dup = idx == (size_t)-1;
        for (size_t k = 0; k < nall && !dup; k++)
            dup = all[k] == idx;
        if (!dup && nall < ARRAY_SIZE(all))
            all[nall++] = idx;
    }
    json_object_set_new(ctx, "issues", issues_list(o, ctx, all, nall));
    json_object_set_new(ctx, "merged", json_boolean(nall > 1));
    json_t *sigs = signals_array(o, all, nall);
    const char *tid = open_ticket(snap);
    const char *roots[16];
    size_t nroots = 0;
    for (size_t i = 0; i < n && nroots < ARRAY_SIZE(roots); i++)
        roots[nroots++] = o->rules->signals[c->pending[i]].root_cause
                              ? o->rules->signals[c->pending[i]].root_cause
                              : o->rules->signals[c->pending[i]].id;
    json_t *explain = json_pack("{s:{s:O, s:s, s:s}, s:[]}", "detection", "signals", sigs,
                                "customer", c->key, "severity", severity_name(sev), "decided_by");
    json_t *why = json_object_get(explain, "decided_by");
    char line[256];

    /* External channels from the matrix. */
    const char *chans[4];
    size_t nchans = 0;
    const char *internal_note = NULL;
    switch (sev) {
    case SEV_CRITICAL:
        if (tid) {
            chans[nchans++] = "ticket_reply";
            chans[nchans++] = "sms";
        } else {
            chans[nchans++] = "email";
            chans[nchans++] = "sms";
            chans[nchans++] = "push";
        }
        break;
    case SEV_HIGH:
        chans[nchans++] = tid ? "ticket_reply" : "email";
        break;
    case SEV_MEDIUM:
        if (tid)
            internal_note = tid;
        else if (o->cfg->medium_email)
            chans[nchans++] = "email";
        break;
    case SEV_LOW:
        chans[nchans++] = "in_app";
        break;
    }
    snprintf(line, sizeof line, "channel_matrix: %s %s an open ticket -> %s%s%s",
             severity_name(sev), tid ? "with" : "without",
             nchans ? chans[0] : (internal_note ? "internal note" : "internal only"),
             nchans > 1 ? " + " : "", nchans > 1 ? chans[1] : "");
    json_array_append_new(why, json_string(line));
    if (nall > 1) {
        snprintf(line, sizeof line,
                 "merge: %zu problems (%zu new, %zu already firing) in one message", nall, n,
                 nall - n);
        json_array_append_new(why, json_string(line));
    }
    snprintf(line, sizeof line, "tone: level %lld (%lld contacts in 7 days)",
             (long long)json_integer_value(json_object_get(json_object_get(ctx, "tone"), "level")),
             (long long)json_integer_value(json_object_get(ctx, "contacts")));
    json_array_append_new(why, json_string(line));

    /* The customer message first, so internal records can carry it as the draft. */
    struct comms_rendered draft = {0};
    const char *tname = nall > 1 ? "merged" : ms->id;
    struct draft base = {
        .audience = "customer",
        .customer = c->key,
        .kind = "alert",
        .tmpl_name = tname,
        .ctx = ctx,
        .signals = sigs,
        .explain = explain,
        .at = now,
    };
    if (nchans) {
        json_t *guards = json_array();
        struct verdict v = outreach_verdict(o, c, snap, sev, roots, nroots, now, guards, OUT_PROACTIVE);
        int sent = customer_messages(o, c, snap, chans, nchans, &base, &v, guards, &draft);
        if (sent)
            note_outreach(c, roots, nroots, now);
        json_decref(guards);
    } else {
        /* Render the draft anyway for the L1 ticket, without sending it. */
        const struct comms_tmpl *t = comms_find(o->tmpl, "customer", "email", tname);
        if (t && !o->quiet)
            comms_render(t, ctx, &draft);
    }
    if (draft.subject)
        set_str(ctx, "draft.subject", draft.subject);
    if (draft.text)
        set_str(ctx, "draft.text", draft.text);
    const char *sent_tag = json_integer_value(json_object_get(ctx, "contacts")) >= 3 ? "High"
                           : json_integer_value(json_object_get(ctx, "contacts")) == 2 ? "Medium"
                                                                                       : "Low";
    set_str(ctx, "sentiment_risk", sent_tag);

    /* Internal: the L1 alert ticket (MEDIUM and up), grouped by the signal's team. */
    if (sev >= SEV_MEDIUM) {
        char tag_sig[64], tag_sev[64], lc[32];
        lower_copy(ms->id, lc, sizeof lc);
        snprintf(tag_sig, sizeof tag_sig, "signal_%s", lc);
        lower_copy(severity_name(sev), lc, sizeof lc);
        snprintf(tag_sev, sizeof tag_sev, "severity_%s", lc);
        json_t *meta = json_pack("{s:s, s:[s,s,s], s:s, s:s?}", "priority", priority_of(sev),
                                 "tags", "proactive_alert", tag_sig, tag_sev, "group",
                                 group_of(ms->team), "requester_name",
                                 json_string_value(json_object_get(json_object_get(ctx, "customer"), "name")));
        struct draft d = {.audience = "l1", .channel = "ticket", .customer = c->key,
                          .kind = "alert", .tmpl_name = ms->id, .ctx = ctx, .signals = sigs,
                          .explain = explain, .meta = meta, .status = "scheduled", .at = now,
                          .send_at = now};
        const char *email = svs(snap, "customer.email");
        d.recipient = email ? email : (strchr(c->key, '@') ? c->key : NULL);
        emit(o, &d, NULL);
        json_decref(meta);
    }
    if (internal_note) {
        json_t *meta = json_pack("{s:s}", "ticket_id", internal_note);
        struct draft d = {.audience = "l1", .channel = "internal_note", .customer = c->key,
                          .kind = "alert", .tmpl_name = "default", .ctx = ctx, .signals = sigs,
                          .explain = explain, .meta = meta, .recipient = internal_note,
                          .status = "scheduled", .at = now, .send_at = now};
        emit(o, &d, NULL);
        json_decref(meta);
    }
    /* The generic webhook, for systems that want every alert (Standard Webhooks signed). */
    if (o->cfg->webhook) {
        struct draft d = {.audience = "l2", .channel = "webhook", .customer = c->key,
                          .kind = "alert", .tmpl_name = ms->id, .ctx = ctx, .signals = sigs,
                          .explain = explain, .status = "scheduled", .at = now, .send_at = now};
        emit(o, &d, NULL);
    }
    /* L2/Eng Slack for CRITICAL, always. */
    if (sev == SEV_CRITICAL) {
        struct draft d = {.audience = "l2", .channel = "slack", .customer = c->key, .kind = "alert",
                          .tmpl_name = "default", .ctx = ctx, .signals = sigs, .explain = explain,
                          .status = "scheduled", .at = now, .send_at = now};
        emit(o, &d, NULL);
    }
    /* The chatbot context (L0). */
    {
        struct comms_rendered bot = {0};
        const struct comms_tmpl *t = comms_find(o->tmpl, "chatbot", "chatbot", ms->id);
        if (t && !o->quiet)
            comms_render(t, ctx, &bot);
        char when[FW_TIME_MAXLEN];
        fw_time_format(now, when);
        json_t *issues = json_object_get(ctx, "issues");
        const char *issue = json_string_value(json_object_get(json_array_get(issues, 0), "headline"));
        const char *email = svs(snap, "customer.email");
        json_t *pc = json_pack(
            "{s:s?, s:{s:s, s:O, s:s?, s:s, s:s, s:s, s:s?, s:b}}", "customer_email",
            email ? email : (strchr(c->key, '@') ? c->key : NULL), "proactive_context", "signal",
            ms->id, "signals", sigs, "issue", issue, "detected_at", when, "customer_impact",
            ms->description ? ms->description : ms->name, "resolution_status",
            "open: the team has been alerted", "what_to_tell_customer", bot.text, "already_reached_out",
            c->last_outreach != FW_TIME_NONE);
        char *txt = fw_json_dumps(pc);
        if (o->sink.context && !o->quiet)
            o->sink.context(o->sink.ctx, c->key, txt);
        struct draft d = {.audience = "chatbot", .channel = "chatbot", .customer = c->key,
                          .kind = "alert", .tmpl_name = ms->id, .ctx = ctx, .signals = sigs,
                          .explain = explain, .meta = pc, .recipient = c->key,
                          .status = "scheduled", .at = now, .send_at = now};
        emit(o, &d, NULL);
        free(txt);
        json_decref(pc);
        comms_rendered_cleanup(&bot);
    }
    /* The escalation ladder, per signal. */
    for (size_t i = 0; i < n; i++) {
        size_t s = c->pending[i];
        enum severity sv2 = o->rules->signals[s].severity;
        json_t *detail = json_pack("{s:s, s:s}", "signal", o->rules->signals[s].id, "severity",
                                   severity_name(sv2));
        if (sv2 == SEV_HIGH) {
            ladder_arm(o, c, s, now, STEP_HIGH_UNRESOLVED_L2, o->cfg->high_unresolved_l2, now, detail);
            ladder_arm(o, c, s, now, STEP_HIGH_NO_RESPONSE, o->cfg->high_no_response, now, detail);
            ladder_arm(o, c, s, now, STEP_HIGH_PERSIST_L2, o->cfg->high_persist_l2, now, detail);
        } else if (sv2 == SEV_CRITICAL) {
            ladder_arm(o, c, s, now, STEP_CRITICAL_PAGE, o->cfg->critical_page, now, detail);
            ladder_arm(o, c, s, now, STEP_CRITICAL_NO_RESPONSE, o->cfg->critical_no_response, now,
                       detail);
        }
        json_decref(detail);
    }
    comms_rendered_cleanup(&draft);
    json_decref(explain);
    json_decref(sigs);
    json_decref(ctx);
    json_decref(snap);
    c->npending = 0;
}

/* ---- ladder steps firing ---- */

void orch__fire(struct engine_timer *t, int64_t due)
{
    struct ladder *l = (struct ladder *)t;
    struct orch *o = l->o;
    struct ocust *c = l->c;
    (void)due;
    for (struct ladder **pp = &c->tasks; *pp; pp = &(*pp)->next)
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    emit_task(o, l, "done");
    /* What a step decides (an alert, a follow-up message) leaves no state behind: quiet skips it. */
    /* Bare keeps only what writes to the customer (what a case's contact clock hears of). */
    int to_customer = l->kind == STEP_HIGH_NO_RESPONSE || l->kind == STEP_CRITICAL_NO_RESPONSE;
    if (l->kind == STEP_FOLLOWUP_REMINDER || (o->quiet && !(o->bare && to_customer))) {
        ladder_free(l);
        return;
    }
    int64_t now = engine_now(o->engine);
    const struct rule_signal *s = &o->rules->signals[l->sig];
    json_t *snap = snapshot(o, c->key);
    json_t *ctx = customer_context(o, c, snap, now);
    signal_context(ctx, s);
    size_t idx = l->sig;
    json_object_set_new(ctx, "issues", issues_list(o, ctx, &idx, 1));
    static const char *const step_text[] = {
        "no reply from the customer 24 hours after our message",
        "still unresolved 4 hours after detection",
        "still unresolved 48 hours after detection",
        "CRITICAL and unresolved 2 hours after detection",
        "no reply from the customer 4 hours after our message",
        "follow-up reminder",
    };
    set_str(ctx, "escalation.step", step_text[l->kind]);
    /* A step comes hours after the detection: say when the problem was detected, not now. */
    char fired[64];
    human_time(l->fired_at, fired, sizeof fired);
    set_str(ctx, "detected_at", fired);
    json_t *sigs = json_pack("[s]", s->id);
    json_t *explain = json_pack("{s:{s:O, s:s, s:s}, s:[s]}", "detection", "signals", sigs,
                                "customer", c->key, "severity", severity_name(s->severity),
                                "decided_by", step_names[l->kind]);
    char extra[32];
    snprintf(extra, sizeof extra, "%lld", (long long)l->fired_at);
    struct draft d = {.customer = c->key, .kind = "ladder", .ctx = ctx, .signals = sigs,
                      .explain = explain, .status = "scheduled", .at = now, .send_at = now,
                      .key_extra = extra};
    switch (l->kind) {
    case STEP_HIGH_UNRESOLVED_L2:
    case STEP_HIGH_PERSIST_L2:
        d.audience = "l2";
        d.channel = "slack";
        d.tmpl_name = "escalation";
        emit(o, &d, NULL);
        break;
    case STEP_CRITICAL_PAGE:
        d.audience = "engineering";
        d.channel = "slack";
        d.tmpl_name = "page";
        emit(o, &d, NULL);
        break;
    case STEP_HIGH_NO_RESPONSE:
    case STEP_CRITICAL_NO_RESPONSE: {
        const char *ch = l->kind == STEP_HIGH_NO_RESPONSE ? "email" : "sms";
        json_t *guards = json_array();
        struct verdict v = outreach_verdict(o, c, snap, s->severity, NULL, 0, now, guards, OUT_LADDER);
        d.audience = "customer";
        d.tmpl_name = "followup_no_response";
        const char *chans[] = {ch};
        customer_messages(o, c, snap, chans, 1, &d, &v, guards, NULL);
        json_decref(guards);
        break;
    }
    default:
        break;
    }
    json_decref(explain);
    json_decref(sigs);
    json_decref(ctx);
    json_decref(snap);
    ladder_free(l);
}

/* ---- events that matter to the orchestrator ---- */

static void on_ticket_resolved(struct orch *o, struct ocust *c, const struct event *ev)
{
    int64_t now = engine_now(o->engine);
    json_t *snap = snapshot(o, c->key);
    json_t *ctx = customer_context(o, c, snap, now);
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
        lower_copy(sevs, sevl, sizeof sevl);
    int64_t contacts = engine_count(o->engine, c->key, "contact", 7 * FW_DAY);
    const char *tier = svs(snap, "customer.tier");
    /* Seed 004: acknowledgment (minor), satisfaction check (moderate), relationship repair (major). */
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
    set_str(ctx, "ticket.id", tid);
    set_str(ctx, "ticket.subject", svs(snap, "ticket.subject"));
    set_str(ctx, "ticket.resolution", json_string_value(json_object_get(ev->data, "resolution")));
    set_str(ctx, "ticket.severity", sevs);
    int64_t opened = last_at(snap, "ticket.created");
    char tmp[64];
    if (opened != FW_TIME_NONE && opened <= ev->time) {
        human_date(opened, tmp, sizeof tmp);
        set_str(ctx, "ticket.opened_at", tmp);
        human_duration(ev->time - opened, tmp, sizeof tmp);
        set_str(ctx, "ticket.duration", tmp);
    }
    set_str(ctx, "followup.level", level);
    human_duration(o->cfg->followup_reminder, tmp, sizeof tmp);
    set_str(ctx, "followup.reminder_in", tmp);
    json_t *sigs = json_array();
    char line[160];
    snprintf(line, sizeof line, "post_ticket_followup: %s (%s)", level, why);
    json_t *explain = json_pack("{s:{s:s?, s:s?}, s:[s]}", "ticket", "id", tid, "severity", sevs,
                                "decided_by", line);
    char tname[64];
    snprintf(tname, sizeof tname, "followup_%s", level);
    json_t *guards = json_array();
    struct verdict v = outreach_verdict(o, c, snap, SEV_LOW, NULL, 0, now, guards, OUT_FOLLOWUP);
    struct draft d = {.audience = "customer", .customer = c->key, .kind = "followup",
                      .tmpl_name = tname, .ctx = ctx, .signals = sigs, .explain = explain,
                      .at = now, .key_extra = tid};
    const char *chans[] = {"email"};
    customer_messages(o, c, snap, chans, 1, &d, &v, guards, NULL);
    json_t *detail = json_pack("{s:s?, s:s}", "ticket_id", tid, "level", level);
    ladder_arm(o, c, (size_t)-1, ev->time, STEP_FOLLOWUP_REMINDER, o->cfg->followup_reminder, now,
               detail);
    json_decref(detail);
    json_decref(guards);
    json_decref(explain);
    json_decref(sigs);
    json_decref(ctx);
    json_decref(snap);
}

/* The customer contacted us: "no response" steps end; say we already reached out. */
static void on_contact(struct orch *o, struct ocust *c, const struct event *ev)
{
    int64_t now = engine_now(o->engine);
    ladder_cancel(o, c, NO_RESPONSE_KINDS, (size_t)-2, ev->type);
    if (o->quiet || c->last_outreach == FW_TIME_NONE ||
        now - c->last_outreach > o->cfg->reached_out_window)
        return; /* the rest is a note and the chatbot context: nothing to remember */
    json_t *snap = snapshot(o, c->key);
    json_t *ctx = customer_context(o, c, snap, now);
    json_t *sigs = json_array();
    json_t *explain = json_pack("{s:[s]}", "decided_by",
                                "already_reached_out: the customer contacted us after our outreach");
    const char *tid = json_string_value(json_object_get(ev->data, "ticket_id"));
    if (!strcmp(ev->type, "ticket.created") && tid) {
        json_t *meta = json_pack("{s:s}", "ticket_id", tid);
        struct draft d = {.audience = "l1", .channel = "internal_note", .customer = c->key,
                          .kind = "contact", .tmpl_name = "already_reached_out", .ctx = ctx,
                          .signals = sigs, .explain = explain, .meta = meta, .recipient = tid,
                          .status = "scheduled", .at = now, .send_at = now, .key_extra = ev->id};
        emit(o, &d, NULL);
        json_decref(meta);
    }
    /* The chatbot context says so too. */
    char when[FW_TIME_MAXLEN], first[FW_TIME_MAXLEN];
    fw_time_format(now, when);
    fw_time_format(c->last_outreach, first);
    const char *email = svs(snap, "customer.email");
    struct comms_rendered bot = {0};
    const struct comms_tmpl *bt = comms_find(o->tmpl, "chatbot", "chatbot", "default");
    if (bt && !o->quiet)
        comms_render(bt, ctx, &bot); /* the context says already_reached_out */
    json_t *pc = json_pack("{s:s?, s:{s:b, s:s, s:s, s:s?}}", "customer_email",
                           email ? email : (strchr(c->key, '@') ? c->key : NULL),
                           "proactive_context", "already_reached_out", 1, "reached_out_at", first,
                           "updated_at", when, "what_to_tell_customer", bot.text);
    comms_rendered_cleanup(&bot);
    char *txt = fw_json_dumps(pc);
    if (o->sink.context && !o->quiet)
        o->sink.context(o->sink.ctx, c->key, txt);
    free(txt);
    json_decref(pc);
    json_decref(explain);
    json_decref(sigs);
    json_decref(ctx);
    json_decref(snap);
}

static void on_message_failed(struct orch *o, struct ocust *c, const struct event *ev)
{
    int64_t now = engine_now(o->engine);
    json_t *snap = snapshot(o, c->key);
    json_t *ctx = customer_context(o, c, snap, now);
    set_str(ctx, "escalation.step", "a message or action failed after every retry");
    set_str(ctx, "signal.name", "Action failed");
    set_str(ctx, "signal.severity", "HIGH");
    json_t *sigs = json_array();
    json_t *explain = json_pack("{s:[s], s:O?}", "decided_by",
                                "l2_alert: a message or action failed for good", "failure",
                                ev->data);
    struct draft d = {.audience = "l2", .channel = "slack", .customer = c->key, .kind = "failed",
                      .tmpl_name = "escalation", .ctx = ctx, .signals = sigs, .explain = explain,
                      .status = "scheduled", .at = now, .send_at = now, .key_extra = ev->id};
    emit(o, &d, NULL);
    json_decref(explain);
    json_decref(sigs);
    json_decref(ctx);
    json_decref(snap);
}

/* ---- engine sink ---- */

static void sink_detection(void *ctx, const struct detection *d)
{
    struct orch *o = ctx;
    if (o->next.detection)
        o->next.detection(o->next.ctx, d);
    struct ocust *c = cust(o, d->customer);
    size_t s = (size_t)(d->signal - o->rules->signals);
    if (d->firing && is_late(o, d->at)) {
        /* Caught up from history: decided when the catch-up is over, if still firing. */
        if (!list_remove(c->held, &c->nheld, s))
            c->held_new = 1;
        c->held = xgrow(c->held, &c->capheld, c->nheld + 1, sizeof *c->held);
        c->held[c->nheld++] = s;
        return;
    }
    if (d->firing) {
        c->pending = xgrow(c->pending, &c->cappending, c->npending + 1, sizeof *c->pending);
        c->pending[c->npending++] = s;
        return;
    }
    if (list_remove(c->held, &c->nheld, s)) {
        /* Fired and resolved while catching up: history, never announced. */
        if (!c->nheld)
            engine_timer_cancel(o->engine, &c->hold.t);
        return;
    }
    /* The problem ended: its ladder steps end with it; the chatbot hears it is fixed. */
    ladder_cancel(o, c, ALL_SIGNAL_KINDS, s, "detection resolved");
    if (o->quiet)
        return;
    char when[FW_TIME_MAXLEN];
    fw_time_format(d->at, when);
    json_t *pc = json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "customer_email", d->customer,
                           "proactive_context", "signal", d->signal->id, "resolution_status",
                           "resolved", "resolved_at", when, "what_to_tell_customer",
                           "Good news: the issue we contacted you about has been fixed.");
    char *txt = fw_json_dumps(pc);
    if (o->sink.context && !o->quiet)
        o->sink.context(o->sink.ctx, d->customer, txt);
    free(txt);
    json_decref(pc);
}

/* The held signals join the pending ones (each once), for one decision. */
static void take_held(struct ocust *c)
{
    for (size_t i = 0; i < c->nheld; i++) {
        list_remove(c->pending, &c->npending, c->held[i]);
        c->pending = xgrow(c->pending, &c->cappending, c->npending + 1, sizeof *c->pending);
        c->pending[c->npending++] = c->held[i];
    }
    c->nheld = 0;
}

/* A transition reported earlier never happened (engine_sink.retract). */
static void sink_retract(void *ctx, const struct detection *d)
{
    struct orch *o = ctx;
    if (o->next.retract)
        o->next.retract(o->next.ctx, d);
    if (!d->firing)
        return; /* an episode thought over goes on: nothing was said about its end */
    struct ocust *c = cust(o, d->customer);
    size_t s = (size_t)(d->signal - o->rules->signals);
    if (list_remove(c->held, &c->nheld, s) || list_remove(c->pending, &c->npending, s)) {
        if (!c->nheld)
            engine_timer_cancel(o->engine, &c->hold.t);
        return; /* not decided yet: nothing to take back */
    }
    /* Already decided: what was said cannot be unsaid, but its ladder stops. */
    ladder_cancel(o, c, ALL_SIGNAL_KINDS, s, "detection withdrawn by a late event");
}

/* The hold is over: one decision for every caught-up signal still firing. */
void orch__hold_fire(struct engine_timer *t, int64_t due)
{
    struct hold *h = (struct hold *)t;
    struct ocust *c = h->c;
    (void)due;
    take_held(c);
    if (c->npending)
        decide(h->o, c);
}

static void sink_incident(void *ctx, const struct incident *i)
{
    struct orch *o = ctx;
    if (o->next.incident)
        o->next.incident(o->next.ctx, i);
    if (strcmp(i->update, "opened") || o->quiet)
        return; /* the systemic alert is the only thing an incident decides */
    json_t *x = json_object();
    signal_context(x, i->signal);
    char tmp[64];
    set_str(x, "brand.name", o->cfg->brand.name);
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)i->id);
    set_str(x, "incident.id", tmp);
    set_json(x, "incident.count", json_integer((json_int_t)i->ncustomers));
    fw_duration_format(i->signal->window, tmp);
    set_str(x, "incident.window", tmp);
    set_str(x, "incident.factor_key", i->factor_key);
    set_str(x, "incident.factor_value", i->factor_value);
    json_t *list = json_array();
    for (size_t k = 0; k < i->ncustomers; k++) {
        json_t *snap = snapshot(o, i->customers[k]);
        const char *order = svs(snap, "order.order_id") ? svs(snap, "order.order_id")
                                                        : svs(snap, "esim.order_id");
        human_duration(0, tmp, sizeof tmp);
        json_array_append_new(list, json_pack("{s:s, s:s?, s:s?, s:s}", "customer",
                                              i->customers[k], "order", order, "status",
                                              svs(snap, "esim.status") ? svs(snap, "esim.status")
                                                                       : svs(snap, "portin.status"),
                                              "since", "just now"));
        json_decref(snap);
    }
    set_json(x, "incident.customers", list);
    json_t *sigs = json_pack("[s]", i->signal->id);
    json_t *explain = json_pack("{s:{s:I, s:i}, s:[s]}", "incident", "id", (json_int_t)i->id,
                                "customers", (int)i->ncustomers, "decided_by",
                                "systemic_alert: any signal affecting 3+ customers");
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)i->id);
    struct draft d = {.audience = "engineering", .channel = "slack", .customer = NULL,
                      .kind = "incident", .tmpl_name = "incident", .ctx = x, .signals = sigs,
                      .explain = explain, .status = "scheduled", .at = i->at, .send_at = i->at,
                      .key_extra = tmp};
    emit(o, &d, NULL);
    json_decref(explain);
    json_decref(sigs);
    json_decref(x);
}

static int is_contact(struct orch *o, const char *type)
{
    return rules_type_in_class(o->rules, type, "contact");
}

static void sink_step(void *ctx, const struct event *ev, const char *customer)
{
    struct orch *o = ctx;
    if (o->next.step)
        o->next.step(o->next.ctx, ev, customer);
    if (!customer) {
        /* A global event (an outage): decide for every customer it made fire, in one pass. */
        for (size_t i = 0; i < o->customers.len; i++) {
            struct ocust *gc = o->customers.entries[i].value;
            if (gc->npending)
                decide(o, gc);
        }
        return;
    }
    struct ocust *c = cust(o, customer);
    int64_t now = engine_now(o->engine);
    int stale = ev && ev->time < now - o->cfg->stale_after;
    if (c->nheld && c->npending) {
        /* Something fired live: it and what was caught up make one decision, now. */
        take_held(c);
        engine_timer_cancel(o->engine, &c->hold.t);
    } else if (c->nheld && (c->held_new || (ev && is_late(o, ev->time)))) {
        /* Still catching up: the decision waits until the history stops arriving. */
        engine_timer_arm(o->engine, &c->hold.t, now + o->cfg->late_hold);
    }
    c->held_new = 0;
    /* A stale event is history: what it would have us say to the customer has passed. */
    if (ev && !stale) {
        if (!strcmp(ev->type, "message.replied"))
            ladder_cancel(o, c, NO_RESPONSE_KINDS, (size_t)-2, "message.replied");
        else if (is_contact(o, ev->type))
            on_contact(o, c, ev);
        else if (!strcmp(ev->type, "message.failed"))
            on_message_failed(o, c, ev);
    }
    if (c->npending)
        decide(o, c);
    if (ev && !stale && !strcmp(ev->type, "ticket.resolved"))
        on_ticket_resolved(o, c, ev);
}

struct engine_sink orch_engine_sink(struct orch *o, const struct engine_sink *next)
{
    if (next)
        o->next = *next;
    struct engine_sink s = {.ctx = o, .detection = sink_detection, .incident = sink_incident,
                            .step = sink_step, .retract = sink_retract};
    return s;
}

void orch_bind(struct orch *o, struct engine *e)
{
    o->engine = e;
    o->rules = engine_rules(e);
}

void orch_set_quiet(struct orch *o, int quiet)
{
    o->quiet = quiet;
}

void orch_set_bare(struct orch *o)
{
    o->quiet = o->bare = 1;
}

/* ---- lifecycle ---- */

struct orch *orch_new(const struct orch_config *cfg, const struct comms *templates,
                      const struct orch_sink *sink)
{
    struct orch *o = xcalloc(1, sizeof *o);
    o->cfg = cfg;
    o->tmpl = templates;
    if (sink)
        o->sink = *sink;
    strmap_init(&o->customers);
    /* A North American number written with separators, optionally with its +1. */
    if (regcomp(&o->phone_re,
                "^(\\+?1[ .-]?)?(\\([0-9]{3}\\)|[0-9]{3})[ .-]?[0-9]{3}[ .-][0-9]{4}$",
                REG_EXTENDED | REG_NOSUB))
        abort();
    return o;
}

void orch_free(struct orch *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->customers.len; i++) {
        struct ocust *c = o->customers.entries[i].value;
        if (o->engine)
            engine_timer_cancel(o->engine, &c->hold.t);
        free(c->held);
        while (c->tasks) {
            struct ladder *l = c->tasks;
            c->tasks = l->next;
            if (o->engine)
                engine_timer_cancel(o->engine, &l->t);
            ladder_free(l);
        }
        free(c->hist);
        free(c->pending);
        free(c);
    }
    strmap_cleanup(&o->customers);
    regfree(&o->phone_re);
    free(o);
}

void orch_config_init(struct orch_config *c)
{
    memset(c, 0, sizeof *c);
    c->brand.name = NULL; /* no brand: templates read naturally without one */
    c->brand.sender_name = xstrdup("The support team");
    c->brand.support_url = xstrdup("https://support.example.com");
    c->brand.app_name = xstrdup("the app");
    c->brand.unsubscribe_url = xstrdup("https://support.example.com/unsubscribe");
    c->medium_email = 1;
    c->freq_cap = 1;
    c->freq_window = 7 * FW_DAY;
    c->cap_bypass_critical = 1;
    c->dedup_window = 24 * FW_HOUR;
    c->quiet_start = 21 * 60;
    c->quiet_end = 8 * 60;
    c->quiet_bypass_critical = 1;
    c->approval_tiers = xcalloc(1, sizeof *c->approval_tiers);
    c->approval_tiers[0] = xstrdup("enterprise");
    c->napproval_tiers = 1;
    c->followup_approval = 1;
    c->followup_reminder = 3 * FW_DAY;
    c->reached_out_window = 7 * FW_DAY;
    c->high_no_response = 24 * FW_HOUR;
    c->high_unresolved_l2 = 4 * FW_HOUR;
    c->high_persist_l2 = 48 * FW_HOUR;
    c->critical_page = 2 * FW_HOUR;
    c->critical_no_response = 4 * FW_HOUR;
    c->late_after = 10 * FW_SECOND;
    c->late_hold = 5 * FW_SECOND;
    c->stale_after = 24 * FW_HOUR;
}

void orch_config_cleanup(struct orch_config *c)
{
    free(c->brand.name);
    free(c->brand.sender_name);
    free(c->brand.support_url);
    free(c->brand.app_name);
    free(c->brand.unsubscribe_url);
    for (size_t i = 0; i < c->napproval_tiers; i++)
        free(c->approval_tiers[i]);
    free(c->approval_tiers);
    memset(c, 0, sizeof *c);
}

void orch_message_json(const struct outbox_msg *m, struct buf *out)
{
    buf_puts(out, "{\"kind\":\"message\",\"id\":");
    buf_json_str(out, m->id, strlen(m->id));
    buf_puts(out, ",\"audience\":");
    buf_json_str(out, m->audience, strlen(m->audience));
    buf_puts(out, ",\"channel\":");
    buf_json_str(out, m->channel, strlen(m->channel));
    buf_puts(out, ",\"customer\":");
    if (m->customer)
        buf_json_str(out, m->customer, strlen(m->customer));
    else
        buf_puts(out, "null");
    buf_printf(out, ",\"signals\":%s,\"status\":", m->signals ? m->signals : "[]");
    buf_json_str(out, m->status, strlen(m->status));
    if (m->reason) {
        buf_puts(out, ",\"reason\":");
        buf_json_str(out, m->reason, strlen(m->reason));
    }
    buf_puts(out, ",\"at\":");
    buf_json_time(out, m->created_at);
    buf_puts(out, ",\"send_at\":");
    buf_json_time(out, m->send_at);
    buf_puts(out, ",\"recipient\":");
    if (m->recipient)
        buf_json_str(out, m->recipient, strlen(m->recipient));
    else
        buf_puts(out, "null");
    buf_puts(out, ",\"subject\":");
    if (m->subject)
        buf_json_str(out, m->subject, strlen(m->subject));
    else
        buf_puts(out, "null");
    buf_puts(out, ",\"body\":");
    if (m->body)
        buf_json_str(out, m->body, strlen(m->body));
    else
        buf_puts(out, "null");
    buf_printf(out, ",\"meta\":%s,\"explanation\":%s}", m->meta ? m->meta : "{}",
               m->explain ? m->explain : "{}");
}
