/*
 * config.h -- server configuration: embedded defaults, then a YAML file
 * (--config), then command-line flags, each overriding the one before.
 * Secrets (the API token) come from a file or the environment, never from
 * the command line, where they would show in `ps`.
 */
#ifndef FW_CONFIG_H
#define FW_CONFIG_H

#include <stddef.h>

#include "cases/sla_config.h"
#include "cluster/cluster.h"
#include "delivery/delivery.h"
#include "engine/engine.h"
#include "cases/cases.h"
#include "orchestrate/orchestrate.h"
#include "guidance/draft.h"
#include "serve/churn.h"
#include "util/buf.h"

struct config {
    char *listen_addr;     /* "127.0.0.1" */
    unsigned listen_port;  /* 8080; 0 picks a free port (printed at start) */
    char *database;        /* "forewarn.db" */
    char **rules;          /* rule pack files; none: the built-in telecom pack */
    size_t nrules;
    char **playbooks;      /* playbook files; none: the built-in telecom playbooks */
    size_t nplaybooks;
    size_t min_history;    /* guidance.min_history: resolved cases a success figure needs (5) */
    char *api_token;       /* the shared token, acting as admin; NULL: none (users may still exist) */
    int public_metrics;    /* /metrics needs no token (default 1); 0: a reading role's token */
    int allow_open;        /* listen beyond loopback without authentication (default 0: refused) */
    int virtual_clock;     /* tests: the clock moves only with events and /v1/admin/clock */
    size_t max_body;       /* bytes per request body */
    size_t max_events;     /* events per request */
    /* Input that cannot hurt, and connections that cannot starve others (issue 18). */
    size_t max_event_members; /* object keys and list items in one event (1000) */
    size_t max_event_data;    /* bytes of an event's data as compact JSON (64 KiB) */
    int64_t event_time_min;   /* the earliest event time accepted (2000-01-01T00:00:00Z) */
    int64_t event_time_skew;  /* how far past the server clock an event may be dated (1d) */
    unsigned max_connections;      /* open at once (1024) */
    unsigned max_connections_per_address; /* open at once from one IP address (128) */
    int64_t request_deadline; /* to receive a request's headers and body (30s) */
    unsigned http_threads;    /* threads polling the connections (4) */
    unsigned rate_limit;      /* requests per second per token (0: no limit; 100) */
    unsigned rate_burst;      /* requests a token may make at once beyond its rate (200) */
    char *tls_listen_addr;    /* listen_tls host, or NULL: no TLS listener */
    unsigned tls_listen_port;
    char *tls_cert;           /* PEM files for listen_tls */
    char *tls_key;
    char *log_level;       /* debug, info, warn, error */
    char *ready_file;      /* write "host:port\n" here once ready (for scripts and tests) */
    char *templates;       /* template directory overriding the built-ins, or NULL */
    char *known_issues;    /* a known_issues: YAML file applied at start-up (known_file.h), or NULL */
    int64_t snapshot_every; /* ms between engine snapshots while serving (5m); 0: at stop only */
    int snapshot_load;      /* start-up may load a snapshot (1); 0: replay the whole journal */
    char *config_text;      /* the config file as read, for the snapshot's fingerprint; or NULL */
    int messages;          /* decide messages (default 1); 0 = detection only */
    char *sentiment_lexicon; /* VADER's lexicon file (sentiment.lexicon), or NULL */
    char *sentiment_domain;  /* a domain lexicon replacing the built-in one, or NULL */
    struct orch_config orch;       /* brand and outreach rules */
    struct delivery_config delivery; /* connectors */
    struct sla_config sla;           /* SLA calendars and policies (sla:) */
    struct draft_config drafting;    /* the optional drafting model (drafting:) */
    struct case_weights weights; /* priority: value, severity, churn risk, timeliness */
    struct engine_health health; /* health score weights (health:); strings owned below */
    char *health_metric, *health_contact_class, *health_sentiment_key;
    struct churn_config churn;   /* churn_model: (serve/churn.h); churn.model NULL: none */
    struct cluster_config cluster; /* cluster: (serve --cluster, cluster/cluster.h) */
};

/* Fill with the embedded defaults. */
void config_init(struct config *c);
void config_cleanup(struct config *c);
/*
 * Apply a YAML config file.  Unknown keys, wrong types and bad values are
 * errors with file:line:col in diag; returns 0 or FW_EPARSE / FW_EIO.
 * The sla section is replaced as a whole, and only when the file loads
 * without error (the other sections are applied as they are read).
 */
int config_load_file(struct config *c, const char *path, struct buf *diag);
/* Apply FOREWARN_API_TOKEN / FOREWARN_API_TOKEN_FILE from the environment. */
int config_load_env(struct config *c, struct buf *diag);
/* Parse "host:port" or ":port" or "port". */
int config_set_listen(struct config *c, const char *v);

#endif
