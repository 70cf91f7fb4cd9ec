/*
 * incident.h -- engine-private: systemic incidents (one signal firing for
 * N+ customers within a window) and the common factor they share.
 *
 * Baseline shares ("how common is carrier=X among all customers") are kept
 * incrementally: the engine reports each customer's factor values before and
 * after every state change, so naming a factor never scans all customers.
 */
#ifndef FW_ENGINE_INCIDENT_H
#define FW_ENGINE_INCIDENT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "engine/state.h"
#include "rules/rules.h"
#include "util/map.h"

struct inc_member {
    char *customer;
    int64_t at;
    char **values; /* per factor of the signal: the customer's value as text (borrowed from
                      incidents.texts), or NULL */
    int resolved;
};

struct inc_signal {
    struct inc_member *recent; /* firings within the window, oldest first */
    size_t nrecent, caprecent;
    struct inc_member *members; /* the open incident's customers; NULL when none is open */
    size_t nmembers, capmembers;
    struct strmap index;  /* customer -> member index + 1, while open */
    const char **names;   /* members[i].customer, as the sink's list of customers */
    size_t capnames;
    struct strmap *tally; /* per factor: value -> members with it, while open */
    size_t **tally_count; /* per factor, per tally entry: its index + 1 in counts (0: none) */
    size_t *tally_cap;
    size_t nactive;
    uint64_t id;
    int64_t opened_at;
};

struct incidents {
    const struct rules *rules;
    struct inc_signal *sig; /* per signal index */
    uint32_t *factor_keys;  /* union of all signals' factor keys */
    size_t nfactor_keys;
    char **snapshot;            /* per factor key: value before the current change */
    char **namespaces;          /* distinct namespaces of the factor keys ("customer", "portin") */
    size_t nnamespaces;
    struct strmap counts;       /* "<key id>=<value>" -> customers with it (as uintptr) */
    struct strmap texts;        /* every factor value a member holds, once (its key) */
    size_t ncustomers;
    uint64_t opened;
};

void incidents_init(struct incidents *inc, const struct rules *r);
void incidents_cleanup(struct incidents *inc);
void incidents_customer_added(struct incidents *inc);
/* Whether an event of this type can change a factor key (its namespace holds one). */
int incidents_watches(const struct incidents *inc, const char *type);
void incidents_before_change(struct incidents *inc, const struct rules *r, const struct kvset *s);
void incidents_after_change(struct incidents *inc, const struct rules *r, const struct kvset *s);

/*
 * For a partition, which reports what would move the baseline instead of
 * moving it (engine_set_trace): after a change, each factor key whose value
 * moved since incidents_before_change goes to moved (k: its place among
 * factor_keys; was and now, either NULL for none, are the callee's), and
 * the move of one key's count from one value to another, for the merger.
 */
void incidents_moved(struct incidents *inc, const struct kvset *s,
                     void (*moved)(void *ctx, size_t k, char *was, char *now), void *ctx);
void incidents_count_change(struct incidents *inc, size_t k, const char *was, const char *now);

/* A systemic signal fired / resolved for a customer; may emit through the sink. */
void incidents_fired(struct incidents *inc, const struct engine_sink *sink,
                     const struct rule_signal *sig, size_t s, const char *customer,
                     const struct kvset *state, int64_t now);
/* The signal's factor values of a customer as text: a new array of nfactors owned strings. */
char **incidents_signal_values(const struct rule_signal *sig, const struct kvset *state);
/* incidents_fired with those values (taken: the incident keeps or frees them). */
void incidents_fired_values(struct incidents *inc, const struct engine_sink *sink,
                            const struct rule_signal *sig, size_t s, const char *customer,
                            char **values, int64_t now);
void incidents_resolved(struct incidents *inc, const struct engine_sink *sink,
                        const struct rule_signal *sig, size_t s, const char *customer,
                        int64_t now);

/*
 * Snapshots (snap.c): the recent firings and open incidents of every
 * signal, and back into a freshly initialised `inc` (0, or -1 on malformed
 * input; incidents_cleanup frees what was read either way).  The baseline
 * counts are not written: they are a function of the customers' state, and
 * incidents_count_customer adds one customer's factor values to them.
 */
struct wire_rd;
void incidents_write(const struct incidents *inc, struct buf *out);
int incidents_read(struct incidents *inc, struct wire_rd *in);
/*
 * The baseline tallies incidents_write leaves out (customers, and customers
 * per factor value: an engine rebuilds them from its customers), for a
 * keeper that has no customers of its own (the cluster's global role).
 * Read them after incidents_read.
 */
void incidents_write_counts(const struct incidents *inc, struct buf *out);
int incidents_read_counts(struct incidents *inc, struct wire_rd *in);
void incidents_count_customer(struct incidents *inc, const struct kvset *s);

#endif
