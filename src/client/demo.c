/*
 * demo.c -- `forewarn demo`: a realistic journal for trying forewarn (seed
 * 002, Track F).  Weeks of history (customers whose problems were detected,
 * worked by five agents and resolved with an outcome and a CSAT) and a few
 * live cases of seed 002's scenarios, as CloudEvents NDJSON, deterministic
 * for a seed and a "now".  Loaded into a server with `forewarn ingest
 * --backfill`, it gives a working queue, measured outcomes and a
 * leaderboard; replayed with `replay --stats`, the same figures.
 *
 * Every case here is opened by the built-in rule pack's own detections (the
 * journal holds business events and people's case.* actions, never a
 * detection), so what the demo shows is what forewarn made of it.  Ticket
 * ids are numbers, as Zendesk's are, so a server with the Zendesk connector
 * can deliver the replies and notes the demo's cases lead to.
 */
#include "client/demo.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/fwtime.h"
#include "util/util.h"

#define MIN FW_MINUTE
#define HOUR FW_HOUR
#define DAY FW_DAY

struct gen {
    uint64_t rng;
    struct buf *out;
    unsigned seq;
    size_t events;
};

/* splitmix64: small, fast, and the same everywhere. */
static uint64_t next(struct gen *g)
{
    uint64_t z = (g->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int64_t range(struct gen *g, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(next(g) % (uint64_t)(hi - lo + 1));
}

static const char *pick(struct gen *g, const char *const *v, size_t n) { return v[next(g) % n]; }

/* One event line: data is a JSON object's members, already written ("" for none). */
static void emit(struct gen *g, const char *type, const char *subject, int64_t at, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));
static void emit(struct gen *g, const char *type, const char *subject, int64_t at, const char *fmt,
                 ...)
{
    char when[FW_TIME_MAXLEN];
    fw_time_format(at, when);
    buf_printf(
        g->out,
        "{\"specversion\":\"1.0\",\"id\":\"demo-%06u\",\"source\":\"/demo\",\"type\":", ++g->seq);
    buf_json_str(g->out, type, strlen(type));
    if (subject) {
        buf_puts(g->out, ",\"subject\":");
        buf_json_str(g->out, subject, strlen(subject));
    }
    buf_printf(g->out, ",\"time\":\"%s\",\"data\":{", when);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(g->out, fmt, ap);
    va_end(ap);
    buf_puts(g->out, "}}\n");
    g->events++;
}

static const char *const first[] = {"Maria", "James", "Aisha", "Chen",  "Priya", "Lucas", "Fatima",
                                    "Noah",  "Sofia", "Omar",  "Hana",  "Diego", "Grace", "Ivan",
                                    "Leila", "Mateo", "Zoe",   "Kwame", "Elena", "Sam"};
static const char *const last[] = {
    "Lopez", "Smith",  "Khan", "Wei",    "Patel",  "Martin", "Haddad", "Brown",  "Rossi", "Farouk",
    "Sato",  "Garcia", "Kim",  "Petrov", "Nasser", "Silva",  "Young",  "Mensah", "Novak", "Reed"};
static const char *const agents[] = {"alice", "bob", "chen", "dana", "eli"};
static const char *const zips[] = {"94105", "94110", "10001", "10027", "60614", "73301", "98101"};
static const char *const zones[] = {"America/Los_Angeles", "America/New_York", "America/Chicago"};

/* A customer's profile, and their key. */
static void customer(struct gen *g, char *key, size_t n, unsigned i, int64_t at, int64_t since,
                     const char *tier, int value)
{
    const char *fn = first[i % ARRAY_SIZE(first)], *ln = last[(i / 3 + i) % ARRAY_SIZE(last)];
    snprintf(key, n, "%c%s.%u@example.com", fn[0] + 32, ln, i);
    for (char *p = key; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    char signup[FW_TIME_MAXLEN];
    fw_time_format(since, signup);
    emit(g, "customer.updated", key, at,
         "\"name\":\"%s %s\",\"email\":\"%s\",\"phone\":\"+1415555%04u\",\"zip\":\"%s\","
         "\"timezone\":\"%s\",\"tier\":\"%s\",\"value\":%d,\"signup_date\":\"%s\","
         "\"push_token\":\"demo-device-%u\"",
         fn, ln, key, 1000 + i % 9000, pick(g, zips, ARRAY_SIZE(zips)),
         pick(g, zones, ARRAY_SIZE(zones)), tier, value, signup, i);
}

/*
 * The history's problems: each ends by a business event (a fix), never by
 * a wake-up.  (A repeat-contact episode ends when its contacts age out, a
 * wake-up that a server catching up with a backfill runs before the
 * people's case actions dated earlier: those actions would find the case
 * already closed by itself.  The live scenarios have one.)
 */
enum kind { K_ESIM_FAILED, K_PORT_REJECTED, K_ESIM_STUCK, K_ESCALATION, K_ORDER_STUCK, K_NKINDS };

/* The business events of a problem detected at t; returns when the problem is fixed. */
static int64_t problem(struct gen *g, const char *c, enum kind k, int64_t t, int64_t fix_after)
{
    int64_t fix = t + fix_after;
    switch (k) {
    case K_ESIM_FAILED:
        emit(g, "order.created", c, t - HOUR, "\"order_id\":\"o-%u\"", g->seq);
        emit(g, "payment.completed", c, t - HOUR + MIN, "\"order_id\":\"o-%u\",\"amount\":45",
             g->seq - 1);
        emit(g, "order.status_changed", c, t - HOUR + 2 * MIN, "\"status\":\"COMPLETED\"");
        emit(g, "esim.status_changed", c, t, "\"status\":\"FAILED\",\"individual_id\":\"ind-%u\"",
             g->seq);
        emit(g, "esim.status_changed", c, fix, "\"status\":\"ACTIVE\"");
        emit(g, "activation.completed", c, fix + MIN, "%s", "");
        break;
    case K_PORT_REJECTED:
        emit(g, "portin.status_changed", c, t,
             "\"status\":\"REJECTED\",\"response\":\"REJECTED: account PIN mismatch\","
             "\"carrier\":\"%s\"",
             next(g) % 2 ? "Verizon" : "AT&T");
        emit(g, "portin.status_changed", c, fix, "\"status\":\"COMPLETED\",\"response\":\"OK\"");
        break;
    case K_ESIM_STUCK:
        emit(g, "order.created", c, t - 48 * HOUR - 10 * MIN, "\"order_id\":\"o-%u\"", g->seq);
        emit(g, "payment.completed", c, t - 48 * HOUR, "\"order_id\":\"o-%u\",\"amount\":45",
             g->seq - 1);
        emit(g, "order.status_changed", c, t - 48 * HOUR + MIN, "\"status\":\"COMPLETED\"");
        emit(g, "esim.status_changed", c, t - 48 * HOUR + 5 * MIN, "\"status\":\"PENDING\"");
        emit(g, "activation.completed", c, fix, "%s", "");
        emit(g, "esim.status_changed", c, fix + MIN, "\"status\":\"ACTIVE\"");
        break;
    case K_ESCALATION: /* the chatbot handed over and nobody picked it up for 2 hours */
        emit(g, "chat.started", c, t - 2 * HOUR - 10 * MIN,
             "\"conversation_id\":\"cv-%u\",\"topic\":\"bill higher than expected\"", g->seq);
        emit(g, "chat.escalated", c, t - 2 * HOUR,
             "\"conversation_id\":\"cv-%u\",\"topic\":\"billing\",\"summary\":\"Customer "
             "asked for a person about a charge they do not recognise.\"",
             g->seq);
        emit(g, "ticket.created", c, fix,
             "\"ticket_id\":\"%u\",\"subject\":\"Charge I do "
             "not recognise\"",
             80000 + g->seq);
        break;
    case K_ORDER_STUCK:
        emit(g, "order.created", c, t - 24 * HOUR, "\"order_id\":\"o-%u\"", g->seq);
        emit(g, "payment.completed", c, t - 24 * HOUR + MIN, "\"order_id\":\"o-%u\",\"amount\":45",
             g->seq - 1);
        emit(g, "order.status_changed", c, fix, "\"status\":\"COMPLETED\"");
        emit(g, "activation.completed", c, fix + MIN, "%s", "");
        break;
    default:
        break;
    }
    return fix;
}

/* The people's side of a case: taken, answered, resolved with an outcome. */
static void work(struct gen *g, const char *c, const char *agent, int64_t t, int64_t fixed,
                 const char *outcome, int csat)
{
    int64_t taken = t + range(g, 6, 40) * MIN; /* after the merge window and the opening */
    emit(g, "case.assigned", c, taken, "\"agent\":\"%s\"", agent);
    emit(g, "case.responded", c, taken + range(g, 5, 50) * MIN,
         "\"agent\":\"%s\",\"channel\":\"%s\"", agent, next(g) % 3 ? "call" : "email");
    int64_t done = (fixed > taken ? fixed : taken) + range(g, 20, 180) * MIN;
    if (csat)
        emit(g, "case.resolved", c, done, "\"agent\":\"%s\",\"outcome\":\"%s\",\"csat\":%d", agent,
             outcome, csat);
    else
        emit(g, "case.resolved", c, done, "\"agent\":\"%s\",\"outcome\":\"%s\"", agent, outcome);
}

/* A resolved case of the past: outcome and CSAT depend on the agent and how long it took. */
static void history(struct gen *g, unsigned i, unsigned n, int64_t now, int64_t span)
{
    char c[96];
    int64_t t = now - span + (int64_t)i * (span - 2 * DAY) / (int64_t)n / MIN * MIN +
                range(g, 0, 360) * MIN;
    int64_t since = t - range(g, 20, 1500) * DAY;
    int gold = next(g) % 4 == 0;
    customer(g, c, sizeof c, i, t - 3 * DAY, since, gold ? "gold" : "standard",
             gold ? (int)range(g, 1500, 6000) : (int)range(g, 200, 1400));
    enum kind k = (enum kind)(next(g) % K_NKINDS);
    const char *agent = agents[(i * 7 + next(g) % 3) % ARRAY_SIZE(agents)];
    /* Some agents are quicker and keep more customers: the figures have something to show. */
    int skill = agent[0] == 'a' || agent[0] == 'c' ? 2 : agent[0] == 'e' ? 0 : 1;
    int64_t fix_after = range(g, 1, 10 + 8 * (2 - skill)) * HOUR;
    int64_t fixed = problem(g, c, k, t, fix_after);
    /* One customer in four also opens a ticket while the case is worked. */
    int ticket = k != K_ESCALATION && next(g) % 4 == 0;
    if (ticket)
        emit(g, "ticket.created", c, t + range(g, 10, 120) * MIN,
             "\"ticket_id\":\"%u\",\"subject\":\"%s\"", 3000 + i,
             k == K_PORT_REJECTED ? "My number still has not moved" : "Is my line working yet?");
    int roll = (int)(next(g) % 100);
    const char *outcome = roll < 30 + 12 * skill ? "saved"
                          : roll < 88            ? "resolved"
                          : roll < 96            ? "churned"
                                                 : "no_action";
    int csat = next(g) % 5 == 0              ? 0
               : !strcmp(outcome, "churned") ? (int)range(g, 1, 2)
                                             : (int)range(g, 3 + (skill > 0), 5);
    work(g, c, agent, t, fixed, outcome, csat);
    if (ticket)
        emit(g, "ticket.resolved", c, fixed + 3 * HOUR + range(g, 0, 60) * MIN,
             "\"ticket_id\":\"%u\",\"severity\":\"normal\",\"resolution\":\"Fixed with "
             "the customer\"",
             3000 + i);
}

/* Seed 002's live scenarios: open cases the queue shows now. */
static void live(struct gen *g, int64_t now)
{
    char c[96];
    /* A customer of four years, three failed activations, about to leave. */
    customer(g, c, sizeof c, 901, now - 12 * DAY, now - 4 * 365 * DAY, "gold", 2400);
    for (int k = 3; k >= 1; k--) {
        emit(g, "esim.status_changed", c, now - (int64_t)k * 3 * DAY, "\"status\":\"FAILED\"");
        emit(g, "chat.started", c, now - (int64_t)k * 3 * DAY + 20 * MIN,
             "\"conversation_id\":\"cv-m%d\",\"topic\":\"eSIM activation\","
             "\"summary\":\"%s\"",
             k,
             k > 1 ? "My eSIM failed again, please help."
                   : "This is the third time my eSIM has failed. If it is not fixed today I "
                     "will cancel and switch to Verizon.");
        if (k > 1)
            emit(g, "esim.status_changed", c, now - (int64_t)k * 3 * DAY + 2 * HOUR,
                 "\"status\":\"PENDING\"");
    }
    emit(g, "esim.status_changed", c, now - 40 * MIN, "\"status\":\"FAILED\"");
    /* A new customer charged twice for one order. */
    customer(g, c, sizeof c, 902, now - 3 * DAY, now - 3 * DAY, "standard", 540);
    emit(g, "order.created", c, now - 3 * DAY + HOUR, "\"order_id\":\"o-dbl\"");
    emit(g, "payment.completed", c, now - 3 * DAY + HOUR + MIN,
         "\"order_id\":\"o-dbl\",\"amount\":45");
    emit(g, "payment.completed", c, now - 3 * DAY + HOUR + 2 * MIN,
         "\"order_id\":\"o-dbl\",\"amount\":45");
    emit(g, "ticket.created", c, now - 26 * HOUR,
         "\"ticket_id\":\"4812\",\"subject\":\"I was charged twice for my plan\"");
    emit(g, "chat.started", c, now - 20 * HOUR,
         "\"conversation_id\":\"cv-dbl1\",\"topic\":\"billing\",\"summary\":\"Still waiting for "
         "my refund for the double charge.\"");
    emit(g, "chat.started", c, now - 90 * MIN,
         "\"conversation_id\":\"cv-dbl2\",\"topic\":\"billing\",\"summary\":\"Nobody has fixed "
         "the double charge. I want my money back.\"");
    /* A quick win: the eSIM is ready, the customer just has not installed it. */
    customer(g, c, sizeof c, 903, now - 4 * DAY, now - 4 * DAY, "standard", 480);
    emit(g, "payment.completed", c, now - 49 * HOUR, "\"order_id\":\"o-qw\",\"amount\":45");
    emit(g, "esim.status_changed", c, now - 49 * HOUR + 5 * MIN, "\"status\":\"PENDING\"");
    /* An executive escalation: an enterprise account's number port refused. */
    customer(g, c, sizeof c, 904, now - 30 * DAY, now - 3 * 365 * DAY, "enterprise", 52000);
    emit(g, "ticket.created", c, now - 3 * HOUR,
         "\"ticket_id\":\"4890\",\"subject\":\"CEO escalation: our office numbers did not "
         "port\"");
    emit(g, "portin.status_changed", c, now - 2 * HOUR,
         "\"status\":\"REJECTED\",\"response\":\"REJECTED: authorization missing\","
         "\"carrier\":\"AT&T\"");
}

int demo_write(const struct demo_opts *o, struct buf *out, size_t *nevents)
{
    if (o->cases < 60 || o->cases > 100000)
        return FW_EINVAL;
    struct gen g = {.rng = o->seed * 0x2545F4914F6CDD1DULL + 1, .out = out};
    int64_t now = o->now - o->now % HOUR;
    int64_t span = 42 * DAY;
    /* History first, in time order per customer; the server sorts a backfill by time anyway. */
    for (unsigned i = 0; i < o->cases; i++)
        history(&g, i, o->cases, now, span);
    live(&g, now);
    *nevents = g.events;
    return 0;
}
