/*
 * gen.c -- the benchmark workload: a synthetic MVNO with N customers and
 * their journeys as CloudEvents NDJSON (the docs/events.md vocabulary), in
 * time order, deterministic for a given seed.
 *
 * Each customer draws one order journey (happy path, eSIM stuck PENDING,
 * eSIM FAILED, payment failed, order stuck), maybe a port-in (completed,
 * rejected, stalled) and one contact pattern (none, a chat, an escalation
 * answered or abandoned, repeat contacts, a chat during the outage).  One
 * outage covers a few zip codes for a few hours.
 *
 * The generator knows what it built, so it also writes what forewarn must
 * detect: for each journey, the signals it was built to raise and the exact
 * instant each one must fire (threshold instants such as payment + 48h).
 * These come from the journey recipes below, not from forewarn's rules or
 * code; bench/run compares them with forewarn's output.  Journeys are drawn
 * so that no two relevant instants of one customer coincide (an event and a
 * threshold at the same millisecond), which keeps every expectation exact.
 *
 * It can also fold the events up to given instants into the tables of the
 * seed's polling approach (stripe_customers, mvno_order, ...) as TSV files,
 * for the SQLite baseline (bench/polling.py).
 *
 * Self-contained on purpose: it links nothing from src/.
 *
 *   gen --customers N [--seed S] --events FILE [--expected FILE]
 *       [--detections FILE] [--tables DIR --snapshot MS[,MS...]]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

/* The simulated period: 2026-03-01T00:00:00Z + 30 days.  Customers arrive in the first 21. */
#define T0 1772323200000LL
#define ARRIVAL (21 * DAY)
#define END (T0 + 30 * DAY)
/* The outage: day 14, 07:13:27.5, for 5 hours, over OUTAGE_NZIPS of the NZIPS zip codes. */
#define OUTAGE_START (T0 + 14 * DAY + 7 * HOUR + 13 * MIN + 27500)
#define OUTAGE_END (OUTAGE_START + 5 * HOUR)
#define NZIPS 300
#define OUTAGE_NZIPS 5
static const int outage_zips[OUTAGE_NZIPS] = {17, 42, 99, 123, 250};

#define NSIG 11

enum kind {
    K_CUST,
    K_ORDER,
    K_PAY_OK,
    K_PAY_FAIL,
    K_ORDER_STATUS,
    K_ESIM,
    K_ACT,
    K_PORTIN,
    K_CHAT,
    K_ESC,
    K_TICKET,
    K_TICKET_RES,
    K_OUTAGE_START,
    K_OUTAGE_END,
};

static const char *const kind_type[] = {
    "customer.updated", "order.created",         "payment.completed", "payment.failed",
    "order.status_changed", "esim.status_changed", "activation.completed",
    "portin.status_changed", "chat.started",      "chat.escalated",    "ticket.created",
    "ticket.resolved",  "outage.started",        "outage.resolved",
};

static const char *const kind_source[] = {
    "/crm",          "/shop",  "/billing/stripe", "/billing/stripe", "/shop", "/provisioning/connectx",
    "/provisioning/connectx", "/porting", "/mochi", "/mochi", "/zendesk", "/zendesk", "/noc", "/noc",
};

/* Order statuses (K_ORDER_STATUS p1). */
enum { OS_COMPLETED, OS_PROCESSING, OS_CANCELLED };
static const char *const order_status[] = {"COMPLETED", "PROCESSING", "CANCELLED"};
/* eSIM statuses (K_ESIM p1); lower-case "failed" checks that status is read case-blind. */
enum { ES_PENDING, ES_ACTIVE, ES_FAILED, ES_ERROR, ES_FAILED_LC };
static const char *const esim_status[] = {"PENDING", "ACTIVE", "FAILED", "ERROR", "failed"};
/* Port-in forms (K_PORTIN p1). */
enum { PI_SUBMITTED, PI_COMPLETED, PI_REJECTED, PI_FAILED_RESP, PI_REJECTED_LC, PI_RESUBMITTED };

/* One event: 16 bytes, rendered to JSON only when written. */
struct ev {
    int64_t t;
    uint32_t cust;
    uint8_t kind, seq, p1, p2; /* seq: per-customer sequence number (the event id) */
};

struct expect {
    int64_t t;
    uint32_t cust;
    uint8_t sig; /* 0..10 for SIG-001..SIG-011 */
};

static struct ev *evs;
static size_t nev, evcap;
static struct expect *exps;
static size_t nexp, expcap;

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) {
        fprintf(stderr, "gen: out of memory\n");
        exit(1);
    }
    return p;
}

/* ---- deterministic randomness: splitmix64 per (seed, customer, attempt) ---- */

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

struct rng {
    uint64_t s;
};

static uint64_t next(struct rng *r)
{
    r->s += 0x9E3779B97F4A7C15ULL;
    uint64_t z = r->s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static int64_t U(struct rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(next(r) % (uint64_t)(hi - lo));
}

/* Percent draw: true with probability pct/100. */
static int P(struct rng *r, unsigned pct)
{
    return next(r) % 100 < pct;
}

static uint64_t seed;

/* Customer attributes depend only on (seed, customer), never on the journey draw. */
static uint64_t attr(uint32_t cust, unsigned which)
{
    return mix(seed ^ mix(((uint64_t)cust << 8) | which));
}

static int cust_zip(uint32_t cust)
{
    return (int)(attr(cust, 1) % NZIPS);
}

static int zip_in_outage(int zip)
{
    for (int i = 0; i < OUTAGE_NZIPS; i++)
        if (outage_zips[i] == zip)
            return 1;
    return 0;
}

static void zip_str(int zip, char out[12])
{
    snprintf(out, 12, "%05d", 10001 + zip * 7);
}

static const char *const first_names[] = {"Jodi", "Sam", "Li", "Anna", "Omar", "Priya", "Mateo",
                                          "Chen", "Fatima", "Noah", "Ines", "Kofi"};
static const char *const last_names[] = {"Park", "Rivera", "Wei", "Schmidt", "Haddad", "Nair",
                                         "Lopez", "Okafor", "Kim", "Novak", "Silva", "Moreau"};
static const char *const carriers[] = {"Verizon", "AT&T", "T-Mobile", "US Cellular", "Cricket"};
static const char *const plans[] = {"Unlimited", "Basic", "Plus"};
static const char *const tiers[] = {"bronze", "silver", "gold"};
static const char *const topics[] = {"esim_install", "billing", "porting", "coverage", "plan_change"};
static const char *const pay_reasons[] = {"card_declined", "insufficient_funds",
                                          "authentication_required"};

/* ---- one customer's journey ---- */

/* The journey being built: events, the instants that matter, and what must fire. */
struct journey {
    struct ev ev[40];
    int n;
    struct expect ex[16];
    int nex;
    int64_t contacts[8]; /* chat.started and ticket.created times */
    int ncontacts;
    int64_t chats[8];
    int nchats;
    int64_t tk_open[8], tk_close[8]; /* ticket open intervals, close = INT64_MAX when never */
    int ntk;
};

static void add(struct journey *j, int64_t t, uint32_t cust, int kind, int p1, int p2)
{
    struct ev *e = &j->ev[j->n];
    e->t = t;
    e->cust = cust;
    e->kind = (uint8_t)kind;
    e->seq = (uint8_t)j->n;
    e->p1 = (uint8_t)p1;
    e->p2 = (uint8_t)p2;
    j->n++;
}

static void expect(struct journey *j, int sig, int64_t t, uint32_t cust)
{
    if (t > END)
        return; /* beyond the observed period: replay stops at END */
    j->ex[j->nex].t = t;
    j->ex[j->nex].cust = cust;
    j->ex[j->nex].sig = (uint8_t)(sig - 1);
    j->nex++;
}

static void chat(struct journey *j, uint32_t cust, int64_t t, int conv)
{
    add(j, t, cust, K_CHAT, conv, 0);
    j->contacts[j->ncontacts++] = t;
    j->chats[j->nchats++] = t;
}

static void ticket(struct journey *j, struct rng *r, uint32_t cust, int64_t t, int n,
                   int64_t res_lo, int64_t res_hi)
{
    add(j, t, cust, K_TICKET, 0, n);
    j->contacts[j->ncontacts++] = t;
    j->tk_open[j->ntk] = t;
    j->tk_close[j->ntk] = INT64_MAX;
    if (P(r, 80)) {
        int64_t rt = t + U(r, res_lo, res_hi);
        add(j, rt, cust, K_TICKET_RES, 0, n);
        j->tk_close[j->ntk] = rt;
    }
    j->ntk++;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * No two instants that decide a condition may coincide: no two events of
 * the customer at the same millisecond, none at the outage's start or end,
 * and no event exactly one threshold (2h, 24h, 48h, 72h, 7d) after another
 * event or after the outage's start.  Returns 1 when the journey is clean.
 */
static int clean(const struct journey *j)
{
    static const int64_t deltas[] = {0, 2 * HOUR, 24 * HOUR, 48 * HOUR, 72 * HOUR, 7 * DAY};
    int64_t ref[42];
    int nref = 0;
    for (int i = 0; i < j->n; i++)
        ref[nref++] = j->ev[i].t;
    ref[nref++] = OUTAGE_START;
    ref[nref++] = OUTAGE_END;
    for (int b = 0; b < j->n; b++)
        for (int a = 0; a < nref; a++)
            for (size_t d = 0; d < sizeof deltas / sizeof *deltas; d++) {
                if (d == 0 && a == b)
                    continue;
                if (j->ev[b].t == ref[a] + deltas[d] || ref[a] == j->ev[b].t + deltas[d])
                    return 0;
            }
    return 1;
}

enum arch { A_HAPPY, A_STUCK, A_STUCK_LATE, A_FAIL_FIXED, A_FAIL, A_PAYFAIL_RETRY, A_PAYFAIL,
            A_ORDER_STUCK, A_ORDER_LATE, NARCH };
static const char *const arch_name[] = {"happy", "esim_stuck", "esim_stuck_then_active",
                                        "esim_failed_then_fixed", "esim_failed", "payment_retry",
                                        "payment_failed", "order_stuck", "order_late"};
static const unsigned arch_pct[] = {79, 5, 3, 3, 2, 3, 3, 1, 1};

enum contact { C_NONE, C_CHAT, C_ESC_ANSWERED, C_ESC_ABANDONED, C_REPEAT, C_OUTAGE, NCONTACT };
static const char *const contact_name[] = {"none", "chat", "escalation_answered",
                                           "escalation_abandoned", "repeat_contact",
                                           "outage_chat"};

static uint64_t arch_count[NARCH], contact_count[NCONTACT], portin_count[4], retries;

static void build(struct journey *j, uint32_t cust, struct rng *r, int *arch_out, int *contact_out,
                  int *portin_out)
{
    j->n = j->nex = j->ncontacts = j->nchats = j->ntk = 0;
    int64_t t0 = T0 + U(r, 0, ARRIVAL);
    add(j, t0, cust, K_CUST, 0, 0);
    int64_t ot = t0 + U(r, 1 * MIN, 30 * MIN);
    add(j, ot, cust, K_ORDER, 0, 0);

    unsigned d = (unsigned)(next(r) % 100), acc = 0;
    int arch = 0;
    for (arch = 0; arch < NARCH - 1; arch++) {
        acc += arch_pct[arch];
        if (d < acc)
            break;
    }
    *arch_out = arch;

    int64_t pay = 0, comp, pend, act, f;
    int sig9 = 0; /* paid, never activated: silent churn candidate */
    switch (arch) {
    case A_HAPPY:
    case A_STUCK:
    case A_STUCK_LATE:
    case A_PAYFAIL_RETRY:
        if (arch == A_PAYFAIL_RETRY) {
            add(j, ot + U(r, 1 * MIN, 10 * MIN), cust, K_PAY_FAIL, (int)(next(r) % 3), 0);
            pay = ot + U(r, 3 * HOUR, 10 * HOUR);
            expect(j, 3, ot + 2 * HOUR, cust); /* unpaid 2h after the order; ends at payment */
        } else {
            pay = ot + U(r, 1 * MIN, 10 * MIN);
        }
        add(j, pay, cust, K_PAY_OK, 0, 0);
        comp = pay + U(r, 1 * MIN, 10 * MIN);
        add(j, comp, cust, K_ORDER_STATUS, OS_COMPLETED, 0);
        pend = comp + U(r, 1 * MIN, 5 * MIN);
        add(j, pend, cust, K_ESIM, ES_PENDING, 0);
        if (arch == A_STUCK) {
            expect(j, 1, pay + 48 * HOUR, cust); /* PENDING 48h after payment, forever */
            sig9 = 1;
        } else {
            if (arch == A_STUCK_LATE) {
                act = pay + U(r, 50 * HOUR, 100 * HOUR);
                expect(j, 1, pay + 48 * HOUR, cust); /* resolves at activation */
            } else {
                act = pend + U(r, 10 * MIN, 24 * HOUR); /* well before pay + 48h */
            }
            add(j, act, cust, K_ACT, 0, 0);
            add(j, act + U(r, 10 * SEC, 60 * SEC), cust, K_ESIM, ES_ACTIVE, 0);
        }
        break;
    case A_FAIL_FIXED:
    case A_FAIL: {
        pay = ot + U(r, 1 * MIN, 10 * MIN);
        add(j, pay, cust, K_PAY_OK, 0, 0);
        comp = pay + U(r, 1 * MIN, 10 * MIN);
        add(j, comp, cust, K_ORDER_STATUS, OS_COMPLETED, 0);
        pend = comp + U(r, 1 * MIN, 5 * MIN);
        add(j, pend, cust, K_ESIM, ES_PENDING, 0);
        int form = (int)(next(r) % 3);
        int st = form == 0 ? ES_FAILED : form == 1 ? ES_ERROR : ES_FAILED_LC;
        if (arch == A_FAIL_FIXED) {
            f = pend + U(r, 5 * MIN, 20 * HOUR);
            add(j, f, cust, K_ESIM, st, 0);
            int64_t rp = f + U(r, 1 * HOUR, 8 * HOUR); /* a new profile, installed < pay + 48h */
            add(j, rp, cust, K_ESIM, ES_PENDING, 0);
            act = rp + U(r, 5 * MIN, 12 * HOUR);
            add(j, act, cust, K_ACT, 0, 0);
            add(j, act + U(r, 10 * SEC, 60 * SEC), cust, K_ESIM, ES_ACTIVE, 0);
        } else {
            f = pend + U(r, 5 * MIN, 40 * HOUR); /* fails before the 48h PENDING threshold */
            add(j, f, cust, K_ESIM, st, 0);
            sig9 = 1;
        }
        expect(j, 2, f, cust); /* order younger than 7 days when the eSIM fails */
        break;
    }
    case A_PAYFAIL: {
        int64_t pf = ot + U(r, 1 * MIN, 10 * MIN);
        add(j, pf, cust, K_PAY_FAIL, (int)(next(r) % 3), 0);
        if (P(r, 50))
            add(j, pf + U(r, 20 * MIN, 100 * MIN), cust, K_PAY_FAIL, (int)(next(r) % 3), 0);
        if (P(r, 30))
            add(j, ot + U(r, 30 * HOUR, 72 * HOUR), cust, K_ORDER_STATUS, OS_CANCELLED, 0);
        expect(j, 3, ot + 2 * HOUR, cust);  /* never paid */
        expect(j, 6, ot + 24 * HOUR, cust); /* never COMPLETED (CANCELLED still counts) */
        break;
    }
    case A_ORDER_STUCK:
    case A_ORDER_LATE:
        pay = ot + U(r, 1 * MIN, 10 * MIN);
        add(j, pay, cust, K_PAY_OK, 0, 0);
        add(j, pay + U(r, 1 * MIN, 10 * MIN), cust, K_ORDER_STATUS, OS_PROCESSING, 0);
        expect(j, 6, ot + 24 * HOUR, cust);
        if (arch == A_ORDER_LATE) {
            comp = ot + U(r, 26 * HOUR, 40 * HOUR);
            add(j, comp, cust, K_ORDER_STATUS, OS_COMPLETED, 0);
            pend = comp + U(r, 1 * MIN, 5 * MIN);
            add(j, pend, cust, K_ESIM, ES_PENDING, 0);
            act = pend + U(r, 10 * MIN, 4 * HOUR); /* still before pay + 48h */
            add(j, act, cust, K_ACT, 0, 0);
            add(j, act + U(r, 10 * SEC, 60 * SEC), cust, K_ESIM, ES_ACTIVE, 0);
        } else {
            sig9 = 1; /* paid, no eSIM ever */
        }
        break;
    }

    /* Port-in: 12% of customers bring their number. */
    *portin_out = 0;
    if (P(r, 12)) {
        int carrier = (int)(next(r) % 5);
        int64_t p = ot + U(r, 30 * MIN, 48 * HOUR);
        add(j, p, cust, K_PORTIN, PI_SUBMITTED, carrier);
        unsigned k = (unsigned)(next(r) % 100);
        if (k < 50) { /* completes within 48h */
            *portin_out = 1;
            add(j, p + U(r, 1 * HOUR, 48 * HOUR), cust, K_PORTIN, PI_COMPLETED, carrier);
        } else if (k < 75) { /* rejected by the losing carrier */
            *portin_out = 2;
            int64_t rj = p + U(r, 1 * HOUR, 24 * HOUR);
            add(j, rj, cust, K_PORTIN, PI_REJECTED + (int)(next(r) % 3), carrier);
            expect(j, 4, rj, cust);
            if (P(r, 50)) {
                int64_t rs = rj + U(r, 2 * HOUR, 48 * HOUR);
                add(j, rs, cust, K_PORTIN, PI_RESUBMITTED, carrier);
                add(j, rs + U(r, 1 * HOUR, 24 * HOUR), cust, K_PORTIN, PI_COMPLETED, carrier);
            }
        } else { /* stalls in SUBMITTED */
            *portin_out = 3;
            expect(j, 5, p + 72 * HOUR, cust);
            if (P(r, 50))
                add(j, p + U(r, 80 * HOUR, 120 * HOUR), cust, K_PORTIN, PI_COMPLETED, carrier);
        }
    }

    /* Contacts: one pattern per customer. */
    int contact;
    if (zip_in_outage(cust_zip(cust)) && t0 < OUTAGE_START - HOUR && P(r, 35)) {
        contact = C_OUTAGE;
    } else {
        unsigned k = (unsigned)(next(r) % 100);
        contact = k < 72 ? C_NONE : k < 87 ? C_CHAT : k < 92 ? C_ESC_ANSWERED
                : k < 96 ? C_ESC_ABANDONED : C_REPEAT;
    }
    *contact_out = contact;
    int64_t c, e;
    switch (contact) {
    case C_NONE:
        break;
    case C_CHAT:
        chat(j, cust, t0 + U(r, 10 * MIN, 10 * DAY), 0);
        break;
    case C_ESC_ANSWERED:
    case C_ESC_ABANDONED:
        c = t0 + U(r, 10 * MIN, 10 * DAY);
        chat(j, cust, c, 0);
        e = c + U(r, 2 * MIN, 15 * MIN);
        add(j, e, cust, K_ESC, 0, 0);
        if (contact == C_ESC_ANSWERED) {
            ticket(j, r, cust, e + U(r, 10 * MIN, 110 * MIN), 0, 1 * HOUR, 48 * HOUR);
        } else {
            expect(j, 7, e + 2 * HOUR, cust); /* no ticket within 2h of the hand-over */
            if (P(r, 50))
                ticket(j, r, cust, e + U(r, 3 * HOUR, 30 * HOUR), 0, 1 * HOUR, 48 * HOUR);
        }
        break;
    case C_REPEAT: {
        int n = 3 + P(r, 50);
        c = t0 + U(r, 10 * MIN, 8 * DAY);
        for (int i = 0; i < n; i++) {
            if (i)
                c += U(r, 2 * HOUR, 2 * DAY); /* all within 6 days: one episode */
            if (P(r, 60))
                chat(j, cust, c, i);
            else
                ticket(j, r, cust, c, i, 1 * HOUR, 10 * HOUR);
            if (i == 2)
                expect(j, 8, c, cust); /* the third touch within 7 days */
        }
        break;
    }
    case C_OUTAGE:
        c = OUTAGE_START + U(r, 5 * MIN, 4 * HOUR);
        chat(j, cust, c, 0);
        if (P(r, 40))
            ticket(j, r, cust, c + U(r, 10 * MIN, 1 * HOUR), 0, 1 * HOUR, 30 * HOUR);
        break;
    }
    qsort(j->contacts, (size_t)j->ncontacts, sizeof(int64_t), cmp_i64);

    /*
     * SIG-009: paid, never activated, payment >= 7 days ago and no contact in
     * the last 7 days.  Each contact blocks [c, c + 7d); every stretch of
     * time from pay + 7d on that no contact blocks is one episode.
     */
    if (sig9) {
        int64_t t = pay + 7 * DAY;
        for (;;) {
            for (int moved = 1; moved;) {
                moved = 0;
                for (int i = 0; i < j->ncontacts; i++)
                    if (j->contacts[i] <= t && t < j->contacts[i] + 7 * DAY) {
                        t = j->contacts[i] + 7 * DAY;
                        moved = 1;
                    }
            }
            if (t > END)
                break;
            expect(j, 9, t, cust);
            int64_t nx = INT64_MAX;
            for (int i = 0; i < j->ncontacts; i++)
                if (j->contacts[i] > t && j->contacts[i] < nx)
                    nx = j->contacts[i];
            if (nx == INT64_MAX)
                break;
            t = nx; /* a contact ends the episode; the next may start 7 days later */
        }
    }

    /*
     * SIG-010: in an outage zip while the outage lasts, with a ticket open
     * ([created, resolved)) or a chat in the last 24h ([chat, chat + 24h)).
     * Each maximal stretch of that inside [start, end) of the outage is one
     * episode, firing at the stretch's start.
     */
    if (zip_in_outage(cust_zip(cust))) {
        int64_t lo[16], hi[16];
        int n = 0;
        for (int i = 0; i < j->nchats; i++) {
            lo[n] = j->chats[i];
            hi[n++] = j->chats[i] + 24 * HOUR;
        }
        for (int i = 0; i < j->ntk; i++) {
            lo[n] = j->tk_open[i];
            hi[n++] = j->tk_close[i];
        }
        for (int i = 0; i < n; i++) { /* clip to the outage */
            if (lo[i] < OUTAGE_START)
                lo[i] = OUTAGE_START;
            if (hi[i] > OUTAGE_END)
                hi[i] = OUTAGE_END;
        }
        for (int i = 1; i < n; i++) /* sort by start (n is tiny) */
            for (int k = i; k > 0 && lo[k] < lo[k - 1]; k--) {
                int64_t a = lo[k], b = hi[k];
                lo[k] = lo[k - 1], hi[k] = hi[k - 1];
                lo[k - 1] = a, hi[k - 1] = b;
            }
        int64_t cur_end = INT64_MIN;
        for (int i = 0; i < n; i++) {
            if (lo[i] >= hi[i])
                continue; /* outside the outage */
            if (lo[i] > cur_end)
                expect(j, 10, lo[i], cust);
            if (hi[i] > cur_end)
                cur_end = hi[i];
        }
        /*
         * SIG-011 (the pack's own, not the seed's): the customer's zip is in
         * the outage, from the outage's start or the customer's first event
         * (which sets the zip), whichever is later, until the outage ends.
         */
        int64_t known = INT64_MAX;
        for (int i = 0; i < j->n; i++)
            if (j->ev[i].kind == K_CUST && j->ev[i].t < known)
                known = j->ev[i].t;
        if (known < OUTAGE_END)
            expect(j, 11, known > OUTAGE_START ? known : OUTAGE_START, cust);
    }
}

/* ---- time and JSON rendering ---- */

/* Days since 1970-01-01 to civil date (Howard Hinnant's algorithm). */
static void civil(int64_t days, int *y, int *m, int *d)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

static int fmt_time(int64_t ms, char *out)
{
    int64_t days = ms / DAY, rem = ms % DAY;
    int y, mo, d;
    civil(days, &y, &mo, &d);
    return sprintf(out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, (int)(rem / HOUR),
                   (int)(rem / MIN % 60), (int)(rem / SEC % 60), (int)(rem % SEC));
}

static void subject(uint32_t cust, char out[32])
{
    snprintf(out, 32, "c%07u@example.net", cust);
}

static int render(const struct ev *e, char *out)
{
    char ts[32], sub[32], zip[12];
    fmt_time(e->t, ts);
    char *p = out;
    if (e->kind == K_OUTAGE_START || e->kind == K_OUTAGE_END) {
        p += sprintf(p, "{\"specversion\":\"1.0\",\"id\":\"outage-%u\",\"type\":\"%s\",\"source\":\"%s\","
                        "\"time\":\"%s\",\"data\":{\"outage_id\":\"out-1\"",
                     e->kind == K_OUTAGE_START ? 1u : 2u, kind_type[e->kind], kind_source[e->kind], ts);
        if (e->kind == K_OUTAGE_START) {
            p += sprintf(p, ",\"zips\":[");
            for (int i = 0; i < OUTAGE_NZIPS; i++) {
                zip_str(outage_zips[i], zip);
                p += sprintf(p, "%s\"%s\"", i ? "," : "", zip);
            }
            char eta[32];
            fmt_time(OUTAGE_END, eta);
            p += sprintf(p, "],\"impact\":\"no data service\",\"eta\":\"%s\"", eta);
        }
        p += sprintf(p, "}}\n");
        return (int)(p - out);
    }
    uint32_t c = e->cust;
    subject(c, sub);
    p += sprintf(p, "{\"specversion\":\"1.0\",\"id\":\"e%u-%u\",\"type\":\"%s\",\"source\":\"%s\","
                    "\"subject\":\"%s\",\"time\":\"%s\",\"data\":{",
                 c, e->seq, kind_type[e->kind], kind_source[e->kind], sub, ts);
    switch (e->kind) {
    case K_CUST:
        zip_str(cust_zip(c), zip);
        p += sprintf(p, "\"name\":\"%s %s\",\"email\":\"%s\",\"zip\":\"%s\",\"plan\":\"%s\","
                        "\"tier\":\"%s\",\"carrier\":\"%s\",\"value\":%u",
                     first_names[attr(c, 2) % 12], last_names[attr(c, 3) % 12], sub, zip,
                     plans[attr(c, 4) % 3], tiers[attr(c, 5) % 3], carriers[attr(c, 6) % 5],
                     (unsigned)(100 + attr(c, 7) % 900));
        break;
    case K_ORDER:
    case K_ACT:
        p += sprintf(p, "\"order_id\":\"ord-%u\"", c);
        break;
    case K_PAY_OK:
        p += sprintf(p, "\"order_id\":\"ord-%u\",\"amount\":%u", c, 25 + 10 * (unsigned)(attr(c, 4) % 3));
        break;
    case K_PAY_FAIL:
        p += sprintf(p, "\"order_id\":\"ord-%u\",\"reason\":\"%s\"", c, pay_reasons[e->p1 % 3]);
        break;
    case K_ORDER_STATUS:
        p += sprintf(p, "\"order_id\":\"ord-%u\",\"status\":\"%s\"", c, order_status[e->p1]);
        break;
    case K_ESIM:
        p += sprintf(p, "\"order_id\":\"ord-%u\",\"status\":\"%s\",\"individual_id\":\"ind-%u\"", c,
                     esim_status[e->p1], c);
        break;
    case K_PORTIN: {
        const char *carrier = carriers[e->p2 % 5];
        switch (e->p1) {
        case PI_SUBMITTED: p += sprintf(p, "\"status\":\"SUBMITTED\""); break;
        case PI_COMPLETED: p += sprintf(p, "\"status\":\"COMPLETED\""); break;
        case PI_REJECTED:
            p += sprintf(p, "\"status\":\"REJECTED\",\"response\":\"REJECTED: PIN mismatch\"");
            break;
        case PI_FAILED_RESP:
            p += sprintf(p, "\"status\":\"ERROR\",\"response\":\"Port FAILED: account number does "
                            "not match losing carrier records\"");
            break;
        case PI_REJECTED_LC: p += sprintf(p, "\"status\":\"rejected\""); break;
        case PI_RESUBMITTED: p += sprintf(p, "\"status\":\"RESUBMITTED\""); break;
        }
        p += sprintf(p, ",\"carrier\":\"%s\"", carrier);
        break;
    }
    case K_CHAT:
        p += sprintf(p, "\"conversation_id\":\"conv-%u-%u\",\"topic\":\"%s\"", c, e->p1,
                     topics[(attr(c, 8) + e->p1) % 5]);
        break;
    case K_ESC:
        p += sprintf(p, "\"conversation_id\":\"conv-%u-0\",\"topic\":\"%s\",\"summary\":\"customer "
                        "asked for a human\"",
                     c, topics[attr(c, 8) % 5]);
        break;
    case K_TICKET:
        p += sprintf(p, "\"ticket_id\":\"ZD-%u-%u\",\"subject\":\"%s\"", c, e->p2,
                     topics[(attr(c, 9) + e->p2) % 5]);
        break;
    case K_TICKET_RES:
        p += sprintf(p, "\"ticket_id\":\"ZD-%u-%u\",\"severity\":\"normal\",\"resolution\":\"solved\"",
                     c, e->p2);
        break;
    }
    p += sprintf(p, "}}\n");
    return (int)(p - out);
}

static int by_time(const void *a, const void *b)
{
    const struct ev *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->cust != y->cust)
        return x->cust < y->cust ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int exp_order(const void *a, const void *b)
{
    const struct expect *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->cust != y->cust)
        return x->cust < y->cust ? -1 : 1;
    return x->sig - y->sig;
}

/* ---- the seed's tables, folded from the events up to an instant ---- */

struct row_cust {
    int64_t created, order_at, pay_at, act_at, portin_at;
    uint8_t has_cust, has_order, order_status, esim_status, portin; /* 255 = NULL */
};

struct row_conv {
    uint32_t cust;
    uint8_t n;
    int64_t created, escalated;
};

struct row_ticket {
    uint32_t cust;
    uint8_t n;
    int64_t created, solved;
};

static void tsv_time(FILE *f, int64_t t)
{
    char ts[32];
    if (t == INT64_MIN) {
        fputs("\\N", f);
        return;
    }
    fmt_time(t, ts);
    fputs(ts, f);
}

static FILE *open_table(const char *dir, const char *name, int64_t snap)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%" PRId64 ".tsv", dir, name, snap);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "gen: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    return f;
}

static void dump_tables(const char *dir, int64_t snap, uint32_t ncust, const struct row_cust *rc,
                        const struct row_conv *cv, size_t ncv, const struct row_ticket *tk,
                        size_t ntk, int outage_state, const char **portin_text)
{
    FILE *sc = open_table(dir, "stripe_customers", snap);
    FILE *mo = open_table(dir, "mvno_order", snap);
    FILE *uf = open_table(dir, "user_onboarding_flow", snap);
    FILE *zu = open_table(dir, "zendesk_users", snap);
    char sub[32], zip[12];
    for (uint32_t c = 0; c < ncust; c++) {
        const struct row_cust *r = &rc[c];
        if (!r->has_cust)
            continue;
        subject(c, sub);
        zip_str(cust_zip(c), zip);
        fprintf(sc, "%u\t%s\t%s %s\t%s\t%s\n", c, sub, first_names[attr(c, 2) % 12],
                last_names[attr(c, 3) % 12], zip, carriers[attr(c, 6) % 5]);
        fprintf(zu, "%u\t%s\n", 500000000u + c, sub);
        if (!r->has_order)
            continue;
        fprintf(mo, "ord-%u\t%u\t%s\t%s\t", c, c,
                r->order_status == 255 ? "\\N" : order_status[r->order_status],
                r->esim_status == 255 ? "\\N" : esim_status[r->esim_status]);
        tsv_time(mo, r->order_at);
        fputc('\t', mo);
        if (r->portin == 255) {
            fputs("\\N\t\\N\t\\N\n", mo);
        } else {
            fprintf(mo, "%s\t%s\t", portin_text[r->portin * 2], portin_text[r->portin * 2 + 1]);
            tsv_time(mo, r->portin_at);
            fputc('\n', mo);
        }
        fprintf(uf, "ord-%u\t", c);
        tsv_time(uf, r->pay_at);
        fputc('\t', uf);
        tsv_time(uf, r->act_at);
        fputc('\n', uf);
    }
    fclose(sc);
    fclose(mo);
    fclose(uf);
    fclose(zu);
    FILE *f = open_table(dir, "conversations", snap);
    for (size_t i = 0; i < ncv; i++) {
        fprintf(f, "conv-%u-%u\t%u\t", cv[i].cust, cv[i].n, cv[i].cust);
        tsv_time(f, cv[i].created);
        fputc('\t', f);
        tsv_time(f, cv[i].escalated);
        fputc('\n', f);
    }
    fclose(f);
    f = open_table(dir, "zendesk_tickets", snap);
    for (size_t i = 0; i < ntk; i++) {
        fprintf(f, "ZD-%u-%u\t%u\t", tk[i].cust, tk[i].n, 500000000u + tk[i].cust);
        tsv_time(f, tk[i].created);
        fputc('\t', f);
        tsv_time(f, tk[i].solved);
        fputc('\n', f);
    }
    fclose(f);
    f = open_table(dir, "network_outages", snap);
    if (outage_state)
        for (int i = 0; i < OUTAGE_NZIPS; i++) {
            zip_str(outage_zips[i], zip);
            fprintf(f, "out-1\t%s\t", zip);
            tsv_time(f, OUTAGE_START);
            fputc('\t', f);
            tsv_time(f, outage_state == 2 ? OUTAGE_END : INT64_MIN);
            fputc('\n', f);
        }
    fclose(f);
}

/*
 * Fold the (time-ordered) events into the seed's tables and write them at
 * each snapshot instant: what an ETL job loading these events would hold.
 */
static void tables(const char *dir, uint32_t ncust, const int64_t *snaps, int nsnaps)
{
    static const char *portin_text[] = {
        "SUBMITTED", "\\N", "COMPLETED", "\\N", "REJECTED", "REJECTED: PIN mismatch",
        "ERROR", "Port FAILED: account number does not match losing carrier records",
        "rejected", "\\N", "RESUBMITTED", "\\N"};
    struct row_cust *rc = calloc(ncust, sizeof *rc);
    uint32_t(*conv_row)[4] = calloc(ncust, sizeof *conv_row);
    uint32_t(*tk_row)[4] = calloc(ncust, sizeof *tk_row);
    struct row_conv *cv = NULL;
    struct row_ticket *tk = NULL;
    size_t ncv = 0, ntk = 0, cvcap = 0, tkcap = 0;
    if (!rc || !conv_row || !tk_row) {
        fprintf(stderr, "gen: out of memory\n");
        exit(1);
    }
    for (uint32_t c = 0; c < ncust; c++) {
        rc[c].order_status = rc[c].esim_status = rc[c].portin = 255;
        rc[c].order_at = rc[c].pay_at = rc[c].act_at = rc[c].portin_at = INT64_MIN;
    }
    int outage = 0;
    size_t i = 0;
    for (int s = 0; s < nsnaps; s++) {
        for (; i < nev && evs[i].t <= snaps[s]; i++) {
            const struct ev *e = &evs[i];
            struct row_cust *r = e->cust < ncust ? &rc[e->cust] : rc;
            switch (e->kind) {
            case K_CUST: r->has_cust = 1; r->created = e->t; break;
            case K_ORDER: r->has_order = 1; r->order_at = e->t; break;
            case K_PAY_OK: r->pay_at = e->t; break;
            case K_ORDER_STATUS: r->order_status = e->p1; break;
            case K_ESIM: r->esim_status = e->p1; break;
            case K_ACT: r->act_at = e->t; break;
            case K_PORTIN:
                if (r->portin != e->p1)
                    r->portin_at = e->t;
                r->portin = e->p1;
                break;
            case K_CHAT:
                if (ncv == cvcap) {
                    cvcap = cvcap ? cvcap * 2 : 1024;
                    cv = xrealloc(cv, cvcap * sizeof *cv);
                }
                cv[ncv] = (struct row_conv){e->cust, e->p1, e->t, INT64_MIN};
                conv_row[e->cust][e->p1 & 3] = (uint32_t)ncv++;
                break;
            case K_ESC: cv[conv_row[e->cust][0]].escalated = e->t; break;
            case K_TICKET:
                if (ntk == tkcap) {
                    tkcap = tkcap ? tkcap * 2 : 1024;
                    tk = xrealloc(tk, tkcap * sizeof *tk);
                }
                tk[ntk] = (struct row_ticket){e->cust, e->p2, e->t, INT64_MIN};
                tk_row[e->cust][e->p2 & 3] = (uint32_t)ntk++;
                break;
            case K_TICKET_RES: tk[tk_row[e->cust][e->p2 & 3]].solved = e->t; break;
            case K_OUTAGE_START: outage = 1; break;
            case K_OUTAGE_END: outage = 2; break;
            }
        }
        dump_tables(dir, snaps[s], ncust, rc, cv, ncv, tk, ntk, outage, portin_text);
    }
    free(rc);
    free(conv_row);
    free(tk_row);
    free(cv);
    free(tk);
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr, "usage: gen --customers N [--seed S] --events FILE [--expected FILE] "
                    "[--detections FILE] [--tables DIR --snapshot MS[,MS...]]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint32_t ncust = 0;
    const char *events_path = NULL, *expected_path = NULL, *det_path = NULL, *tables_dir = NULL;
    int64_t snaps[8];
    int nsnaps = 0;
    seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--customers"))
            ncust = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--events"))
            events_path = v;
        else if (!strcmp(a, "--expected"))
            expected_path = v;
        else if (!strcmp(a, "--detections"))
            det_path = v;
        else if (!strcmp(a, "--tables"))
            tables_dir = v;
        else if (!strcmp(a, "--snapshot")) {
            for (char *p = (char *)v; *p && nsnaps < 8;) {
                snaps[nsnaps++] = strtoll(p, &p, 10);
                if (*p == ',')
                    p++;
            }
        } else
            usage();
        i++;
    }
    if (!ncust || !events_path || ncust > 9999999)
        usage();

    /* Journeys. */
    for (uint32_t c = 0; c < ncust; c++) {
        struct journey j;
        int arch, contact, portin;
        for (unsigned attempt = 0;; attempt++) {
            struct rng r = {mix(seed ^ mix(((uint64_t)c << 16) | attempt | (1ULL << 62)))};
            build(&j, c, &r, &arch, &contact, &portin);
            if (clean(&j))
                break;
            retries++;
        }
        arch_count[arch]++;
        contact_count[contact]++;
        portin_count[portin]++;
        if (nev + (size_t)j.n + 2 > evcap) {
            evcap = evcap ? evcap * 2 : 1 << 20;
            evs = xrealloc(evs, evcap * sizeof *evs);
        }
        for (int i = 0; i < j.n; i++)
            if (j.ev[i].t < END) /* the observed period ends at END */
                evs[nev++] = j.ev[i];
        if (nexp + (size_t)j.nex > expcap) {
            expcap = expcap ? expcap * 2 : 1 << 16;
            exps = xrealloc(exps, expcap * sizeof *exps);
        }
        memcpy(exps + nexp, j.ex, (size_t)j.nex * sizeof *exps);
        nexp += (size_t)j.nex;
    }
    evs[nev++] = (struct ev){.t = OUTAGE_START, .cust = UINT32_MAX, .kind = K_OUTAGE_START};
    evs[nev++] = (struct ev){.t = OUTAGE_END, .cust = UINT32_MAX, .kind = K_OUTAGE_END};
    qsort(evs, nev, sizeof *evs, by_time);
    qsort(exps, nexp, sizeof *exps, exp_order);

    /* Events. */
    FILE *out = strcmp(events_path, "-") ? fopen(events_path, "w") : stdout;
    if (!out) {
        fprintf(stderr, "gen: cannot write %s: %s\n", events_path, strerror(errno));
        return 1;
    }
    static char obuf[1 << 20];
    size_t olen = 0, bytes = 0;
    for (size_t i = 0; i < nev; i++) {
        olen += (size_t)render(&evs[i], obuf + olen);
        if (olen > sizeof obuf - 2048) {
            fwrite(obuf, 1, olen, out);
            bytes += olen;
            olen = 0;
        }
    }
    fwrite(obuf, 1, olen, out);
    bytes += olen;
    if (out != stdout && fclose(out)) {
        fprintf(stderr, "gen: writing %s failed\n", events_path);
        return 1;
    }

    uint64_t firing[NSIG] = {0};
    for (size_t i = 0; i < nexp; i++)
        firing[exps[i].sig]++;
    if (det_path) {
        FILE *f = fopen(det_path, "w");
        char sub[32];
        for (size_t i = 0; f && i < nexp; i++) {
            subject(exps[i].cust, sub);
            fprintf(f, "SIG-%03d\t%s\t%" PRId64 "\n", exps[i].sig + 1, sub, exps[i].t);
        }
        if (!f || fclose(f)) {
            fprintf(stderr, "gen: cannot write %s\n", det_path);
            return 1;
        }
    }
    if (expected_path) {
        FILE *f = fopen(expected_path, "w");
        if (!f) {
            fprintf(stderr, "gen: cannot write %s\n", expected_path);
            return 1;
        }
        char ts[32];
        fprintf(f, "{\"customers\":%u,\"seed\":%" PRIu64 ",\"events\":%zu,\"bytes\":%zu,", ncust, seed,
                nev, bytes);
        fmt_time(T0, ts);
        fprintf(f, "\"start\":\"%s\",\"start_ms\":%lld,", ts, T0);
        fmt_time(END, ts);
        fprintf(f, "\"end\":\"%s\",\"end_ms\":%lld,\"days\":30,", ts, END);
        fprintf(f, "\"outage_start_ms\":%lld,\"outage_end_ms\":%lld,", OUTAGE_START, OUTAGE_END);
        fprintf(f, "\"retries\":%" PRIu64 ",\"firing\":{", retries);
        for (int s = 0; s < NSIG; s++)
            fprintf(f, "%s\"SIG-%03d\":%" PRIu64, s ? "," : "", s + 1, firing[s]);
        fprintf(f, "},\"journeys\":{");
        for (int a = 0; a < NARCH; a++)
            fprintf(f, "%s\"%s\":%" PRIu64, a ? "," : "", arch_name[a], arch_count[a]);
        fprintf(f, "},\"contacts\":{");
        for (int a = 0; a < NCONTACT; a++)
            fprintf(f, "%s\"%s\":%" PRIu64, a ? "," : "", contact_name[a], contact_count[a]);
        fprintf(f, "},\"portins\":{\"none\":%" PRIu64 ",\"completed\":%" PRIu64
                   ",\"rejected\":%" PRIu64 ",\"stalled\":%" PRIu64 "}}\n",
                portin_count[0], portin_count[1], portin_count[2], portin_count[3]);
        fclose(f);
    }
    if (tables_dir) {
        mkdir(tables_dir, 0755);
        tables(tables_dir, ncust, snaps, nsnaps);
    }
    fprintf(stderr, "gen: %u customers, %zu events (%.1f per customer), %zu bytes, %zu expected "
                    "firings\n",
            ncust, nev, (double)nev / ncust, bytes, nexp);
    free(evs);
    free(exps);
    return 0;
}
