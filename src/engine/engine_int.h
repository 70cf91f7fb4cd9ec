/*
 * engine_int.h -- private to the engine module: the engine's own state,
 * shared by engine.c (events, evaluation, wake-ups) and snap.c (the
 * snapshot of all of it, written and loaded).
 */
#ifndef FW_ENGINE_INT_H
#define FW_ENGINE_INT_H

#include "engine/engine.h"
#include "engine/incident.h"
#include "engine/state.h"
#include "util/map.h"

/* One state key an event sets: its id, its place in the event, its JSON value (borrowed). */
struct keyset_item {
    uint32_t id;
    uint32_t seq; /* order in the event: of two dotted names for one key, the later wins */
    json_t *v;
};

/* The keys one event sets, collected by set_fields and merged into state by map_state. */
struct keylist {
    struct keyset_item *items;
    size_t n, cap;
};

struct engine {
    struct rules *rules;
    struct engine_sink sink;
    struct tw *wheel;
    int64_t now;
    struct strmap customers;     /* subject -> struct customer * */
    struct kvset global;         /* global state */
    struct incidents incidents;  /* per-signal systemic tracking (only its factor keys when
                                    traced: the merger keeps the incidents) */
    struct engine_trace trace;   /* a partition's report (engine_set_trace); begin NULL: none */
    struct engine_stats stats;
    size_t nsignals;
    size_t *global_signals; /* indexes of signals that read global state */
    size_t nglobal_signals;
    uint8_t *sig_flags;     /* per signal: SIG_READS_EVENT, SIG_COUNTS */
    uint8_t *affects;       /* per event type id, nsignals bytes: see type_affects() */
    uint8_t *affects_known; /* per event type id: its row of affects is filled */
    size_t naffects;        /* type ids with room in affects */
    struct buf name;        /* map_state's key names, kept between events */
    struct shape {          /* per event type id: its data's top-level fields last time */
        struct shape_field {
            char *name; /* the field's name in the data (NULL: none remembered) */
            uint32_t id; /* its state key id ("ns.name") */
        } *f;
        size_t n, cap;
    } *shapes;
    size_t nshapes;
    struct intern nsnames;  /* namespaces of customer state keys ("customer", "order", ...) */
    uint32_t *keyns;        /* per customer state key id: its namespace id (key_ns) */
    size_t nkeyns;
    uint32_t *typens;       /* per event type id: its namespace id (type_ns) */
    size_t ntypens;
    struct keylist touched; /* map_state's keys set by the event, kept between events */
    struct slab slab;       /* customers and their blocks (util/slab.h) */
    struct kvlayouts layouts; /* the ids the state blocks share (state.h) */
    struct kvbuild build;   /* map_state's new set, its scratch kept between events */
    int waking;             /* evaluating a customer's wake-up */
    int collecting;         /* a late event is being applied: transitions go to col */
    struct trans *col;      /* what the late event's catch-up found, in time order */
    size_t ncol, capcol;
    int64_t *before;        /* per signal: fired_at before the late event (scratch) */
    struct gsnap *ghist;    /* the global state's recent history, in time order */
    size_t nghist, capghist;
    int ghist_dropped;      /* older history was let go: before ghist[0] is unknown */
    struct engine_health health; /* the health score's weights (engine_set_health) */
    int64_t health_metric;       /* its usage metric id, -1 when none */
    int64_t health_class;        /* the contact class id, -1 when none */
    int64_t health_sentiment;    /* the sentiment state key id, -1 when none */
    int64_t health_payfail;      /* the payment.failed type id, -1 when none */
    struct engine_churn churn;   /* the churn model (engine_set_churn); churn.score NULL: none */
    uint32_t gver;               /* bumped by each global event: cached churn scores of another
                                    version are stale (a feature may read global state) */
    struct value *churn_vals;    /* churn.n feature values of the customer being scored */
    struct buf churn_cells;      /* their texts as the model saw them */
    struct buf churn_scratch;    /* expr_eval's strings while scoring */
    struct snap_ranks *ranks;    /* snap.c: each armed timer's place in pop order, from
                                    engine_snapshot until engine_snapshot_end */
    struct snap_rearm *rearm;    /* snap.c: timers a restore armed, re-armed in their
                                    original order by engine_restore_end */
    size_t nrearm, caprearm;
};

/* snap.c: free what a snapshot or a restore left (engine_free). */
void engine__snap_cleanup(struct engine *e);

/*
 * The global state from `at` on, as the global events up to then left it,
 * with the event that made it (so a late global event can be folded in).
 */
struct gsnap {
    int64_t at;
    char *type;
    int64_t time;
    json_t *data;
    struct kvset state;
};

/* Global history kept for late events; past this the oldest is let go. */
#define GHIST_MAX 256

/* Wake-up transitions kept per customer for undoing; past this the floor moves up instead. */
#define PROJ_MAX 64

#endif
