/*
 * serve.c -- the `serve` subcommand.  Start-up order: configuration (file,
 * then environment, then flags), rules, database, recovery of the engine
 * from the journal, then the listener; /readyz turns ready last.  Fatal
 * errors are only possible here, before anything is served.
 */
#include "serve/serve.h"
#include "cases/playbook.h"

#include "cases/cases.h"
#include "store/auth.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "comms/comms.h"
#include "delivery/delivery.h"
#include "analytics/sentiment.h"
#include "http/http.h"
#include "rules/rules.h"
#include "serve/config.h"
#include "serve/known_file.h"
#include "pipeline/pipeline.h"
#include "store/store.h"
#include "util/fwtime.h"

/* What a refused start says about the database (every write of a start is a transaction). */
#define NOTHING_CHANGED                                                                            \
    "nothing was changed (what the start wrote was rolled back); once the disk is fixed or has "  \
    "space, start again"
#include "util/log.h"
#include "util/util.h"


/* The dispatcher reads the engine clock and feeds delivery outcomes back as events. */
static int64_t hook_now(void *ctx)
{
    return pipeline_now(ctx);
}

static void hook_report(void *ctx, json_t *event)
{
    struct pipeline *p = ctx;
    struct ingest_batch batch = {0};
    if (!json_object_get(event, "subject")) {
        /* Outcomes of messages about no one customer (incident alerts) have no journey to join. */
        json_decref(event);
        return;
    }
    struct event ev;
    struct ingest_error err;
    /* Our own report, dated by our own clock: no time window. */
    if (ingest_validate(event, &ingest_own_limits, NULL, &ev, &err) == 0) {
        batch.events = &ev;
        batch.n = 1;
        if (pipeline_ingest(p, &batch, NULL, NULL))
            log_warn("could not record %s", ev.type);
        event_cleanup(&ev);
    } else {
        log_warn("dispatcher outcome event refused: %s: %s", err.field, err.msg);
    }
    json_decref(event);
}

/*
 * The engine thread notifies the dispatcher after each commit (only the
 * workers whose channels got messages, or whose wait the clock reached,
 * wake up); shutdown detaches the dispatcher under the same lock before
 * stopping it, so a notification never reaches a dispatcher being torn
 * down.
 */
struct dispatch_ref {
    pthread_mutex_t mu;
    struct dispatcher *d;
    struct http_server *http; /* the console's live streams hear of every commit too */
};

static void on_commit(void *ctx, const struct pipeline_commit *c)
{
    struct dispatch_ref *ref = ctx;
    pthread_mutex_lock(&ref->mu);
    http_notify(ref->http, c);
    if (ref->d && c->all) {
        dispatcher_kick(ref->d);
    } else if (ref->d) {
        const char *chans[PIPELINE_MAX_CHANNELS];
        for (size_t i = 0; i < c->nchannels; i++)
            chans[i] = c->channels[i];
        dispatcher_notify(ref->d, chans, c->nchannels, c->engine_now);
    }
    pthread_mutex_unlock(&ref->mu);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: forewarn serve [--config FILE] [--listen HOST:PORT] [--db FILE]\n"
            "                      [--rules FILE]... [--playbooks FILE]... [--virtual-clock]\n"
            "                      [--ready-file FILE] [--full-replay]\n"
            "       forewarn serve --cluster FILE [--node NAME] [--listen HOST:PORT]\n"
            "                      [--rules FILE]... [--virtual-clock] [--ready-file FILE]\n"
            "The API token comes from the config file (api_token_file) or the environment\n"
            "(FOREWARN_API_TOKEN, FOREWARN_API_TOKEN_FILE), never from the command line.\n");
    return 2;
}

/*
 * What the engine's state depends on besides the journal: the rule packs'
 * text, in order, and the config file's.  A snapshot written under another
 * fingerprint is refused (conservative: any edit of the config file costs
 * one full replay).
 */
void serve_block_stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void serve_write_ready(const char *path, const char *addr, unsigned port, const char *extra)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "%s:%u\n", addr, port);
        if (extra)
            fprintf(f, "%s\n", extra);
        if (fclose(f) == 0 && rename(tmp, path) == 0)
            f = NULL;
    }
    if (f || access(path, F_OK) != 0)
        log_warn("could not write the ready file %s", path);
}

void serve_config_fingerprint(const struct config *cfg, unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 32;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    if (cfg->nrules == 0) {
        EVP_DigestUpdate(md, "builtin\0", 8);
        EVP_DigestUpdate(md, rules_builtin_telecom, rules_builtin_telecom_len);
    }
    for (size_t i = 0; i < cfg->nrules; i++) {
        struct buf b;
        buf_init(&b, 0);
        buf_read_file(&b, cfg->rules[i]); /* read once more: it loaded a moment ago */
        EVP_DigestUpdate(md, cfg->rules[i], strlen(cfg->rules[i]) + 1);
        EVP_DigestUpdate(md, b.data ? b.data : "", b.len);
        buf_cleanup(&b);
    }
    EVP_DigestUpdate(md, "config\0", 7);
    if (cfg->config_text)
        EVP_DigestUpdate(md, cfg->config_text, strlen(cfg->config_text));
    /* The churn model's scores feed rules (churn_risk): a retrained file is another engine. */
    if (cfg->churn.file) {
        struct buf b;
        buf_init(&b, 0);
        buf_read_file(&b, cfg->churn.file);
        EVP_DigestUpdate(md, "churn\0", 6);
        EVP_DigestUpdate(md, b.data ? b.data : "", b.len);
        buf_cleanup(&b);
    }
    const char *mode = cfg->messages ? "messages" : "detect";
    EVP_DigestUpdate(md, mode, strlen(mode) + 1);
    EVP_DigestFinal_ex(md, out, &len);
    EVP_MD_CTX_free(md);
}

int serve_main(int argc, char **argv)
{
    struct config cfg;
    struct buf diag;
    struct rules rules;
    struct playbooks playbooks;
    struct sentiment *sent = NULL;
    struct store *db = NULL;
    struct store_checkpointer *ckpt = NULL;
    struct pipeline *p = NULL;
    struct http_server *http = NULL;
    struct comms *templates = NULL;
    struct dispatcher *dispatcher = NULL;
    struct dispatch_ref dref = {.mu = PTHREAD_MUTEX_INITIALIZER};
    int rc = 1;
    config_init(&cfg);
    buf_init(&diag, 0);
    rules_init(&rules);
    playbooks_init(&playbooks);

    /* The config file first, so flags override it wherever they appear. */
    int cluster = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--config") || !strcmp(argv[i], "--cluster")) {
            cluster |= !strcmp(argv[i], "--cluster");
            if (i + 1 >= argc) {
                rc = usage();
                goto out;
            }
            if (config_load_file(&cfg, argv[i + 1], &diag))
                goto fail;
        }
    if (config_load_env(&cfg, &diag))
        goto fail;
    int flag_rules = 0, flag_playbooks = 0, full_replay = 0;
    char snap_path[4096];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((!strcmp(a, "--config") || !strcmp(a, "--cluster")) && v) {
            i++;
        } else if (!strcmp(a, "--node") && v) {
            if (!cluster) {
                fprintf(stderr, "serve: --node names a cluster node (with --cluster FILE)\n");
                goto out;
            }
            free(cfg.cluster.node);
            cfg.cluster.node = xstrdup(v);
            i++;
        } else if (!strcmp(a, "--listen") && v) {
            if (config_set_listen(&cfg, v)) {
                fprintf(stderr, "serve: --listen %s: expected HOST:PORT\n", v);
                goto out;
            }
            i++;
        } else if (!strcmp(a, "--db") && v) {
            free(cfg.database);
            cfg.database = xstrdup(v);
            i++;
        } else if (!strcmp(a, "--rules") && v) {
            if (!flag_rules) { /* flags replace the config file's list */
                for (size_t k = 0; k < cfg.nrules; k++)
                    free(cfg.rules[k]);
                cfg.nrules = 0;
                flag_rules = 1;
            }
            cfg.rules = xrealloc(cfg.rules, (cfg.nrules + 1) * sizeof *cfg.rules);
            cfg.rules[cfg.nrules++] = xstrdup(v);
            i++;
        } else if (!strcmp(a, "--playbooks") && v) {
            if (!flag_playbooks) { /* flags replace the config file's list */
                for (size_t k = 0; k < cfg.nplaybooks; k++)
                    free(cfg.playbooks[k]);
                cfg.nplaybooks = 0;
                flag_playbooks = 1;
            }
            cfg.playbooks = xrealloc(cfg.playbooks, (cfg.nplaybooks + 1) * sizeof *cfg.playbooks);
            cfg.playbooks[cfg.nplaybooks++] = xstrdup(v);
            i++;
        } else if (!strcmp(a, "--full-replay")) {
            full_replay = 1; /* ignore snapshots this once: rebuild from the whole journal */
        } else if (!strcmp(a, "--virtual-clock")) {
            cfg.virtual_clock = 1;
        } else if (!strcmp(a, "--ready-file") && v) {
            free(cfg.ready_file);
            cfg.ready_file = xstrdup(v);
            i++;
        } else if (!strcmp(a, "--api-token") || !strncmp(a, "--api-token=", 12)) {
            fprintf(stderr, "serve: the API token is never taken from the command line; use "
                            "FOREWARN_API_TOKEN or api_token_file\n");
            goto out;
        } else {
            rc = usage();
            goto out;
        }
    }
    log_set_level(!strcmp(cfg.log_level, "debug")  ? LOG_DEBUG
                  : !strcmp(cfg.log_level, "warn") ? LOG_WARN
                  : !strcmp(cfg.log_level, "error") ? LOG_ERROR
                                                    : LOG_INFO);

    if (cluster) {
        /* NATS JetStream and PostgreSQL instead of the local database (cluster/cluster.h). */
        if (!cfg.cluster.on) {
            fprintf(stderr, "serve: --cluster FILE needs a cluster: section in FILE "
                            "(docs/operations.md, \"Cluster\")\n");
            goto out;
        }
        rc = cluster_serve(&cfg, (const char *const *)cfg.rules, cfg.nrules);
        goto out;
    }
    if (cfg.nrules == 0)
        rules_add_builtin(&rules);
    for (size_t i = 0; i < cfg.nrules; i++)
        rules_add_file(&rules, cfg.rules[i]);
    if (rules_finish(&rules)) {
        fputs(rules.diag.data ? rules.diag.data : "", stderr);
        goto out;
    }
    /* The churn model's features compile against the packs; a rule reading churn_risk needs one. */
    if (churn_bind(&cfg.churn, &rules, &diag) || churn_check_rules(&cfg.churn, &rules, &diag))
        goto fail;
    struct engine_churn churn;
    /* Playbooks: the built-in set, or the configured files; a bad one stops the start. */
    if (cfg.nplaybooks == 0)
        playbooks_add_builtin(&playbooks, &rules);
    for (size_t i = 0; i < cfg.nplaybooks; i++)
        playbooks_add_file(&playbooks, cfg.playbooks[i], &rules);
    if (playbooks.nerrors) {
        fputs(playbooks.diag.data ? playbooks.diag.data : "", stderr);
        goto out;
    }
    /* Sentiment: a lexicon that does not load stops the start (never a silent neutral). */
    if (!(sent = sentiment_open(NULL, cfg.sentiment_lexicon, cfg.sentiment_domain, "serve",
                                stderr)))
        goto out;

    /* Before any thread starts (threads inherit the mask); taken with sigwait below. */
    sigset_t stop_signals;
    serve_block_stop_signals(&stop_signals);

    /* SLA policy conditions compile against the case fields: refuse a bad one before starting. */
    struct cases_config ccfg;
    cases_config_init(&ccfg);
    ccfg.sla = &cfg.sla;
    struct cases *probe = cases_new(&ccfg, NULL, &diag);
    if (!probe)
        goto fail;
    cases_free(probe);

    char err[512];
    if (store_open(cfg.database, 0, &db, err, sizeof err) ||
        store_checkpointer_start(cfg.database, &ckpt, err, sizeof err)) {
        fprintf(stderr, "serve: cannot start: %s; %s\n", err, NOTHING_CHANGED);
        goto out;
    }
    store_use_checkpointer(db, ckpt); /* the engine thread's commits never checkpoint */
    int users = 0; /* for the start-up line: authentication is on once a user exists */
    store_users_any(db, &users);
    /* Open to the network with nobody to ask for a token: refused unless asked for in so many words. */
    const char *open_addr = strncmp(cfg.listen_addr, "127.", 4) ? cfg.listen_addr
                            : cfg.tls_listen_addr && strncmp(cfg.tls_listen_addr, "127.", 4)
                                ? cfg.tls_listen_addr
                                : NULL;
    if (!cfg.api_token && !users && !cfg.allow_open && open_addr) {
        fprintf(stderr,
                "serve: listening on %s without authentication would let anyone on the network "
                "read and change everything; add a user (forewarn user add NAME --role admin), "
                "set api_token, or set allow_unauthenticated: true in the config\n",
                open_addr);
        goto out;
    }
    if (cfg.messages && comms_load(cfg.templates, &templates, &diag))
        goto fail;
    snprintf(snap_path, sizeof snap_path, "%s.snapshot", cfg.database);
    struct pipeline_opts opts = {
        .virtual_clock = cfg.virtual_clock,
        .orch = cfg.messages ? &cfg.orch : NULL,
        .templates = templates,
        .delivery = &cfg.delivery,
        .sla = &cfg.sla,
        .weights = &cfg.weights,
        .health = &cfg.health,
        .churn = churn_engine(&cfg.churn, &churn),
        .playbooks = &playbooks,
        .sentiment = sent,
        .min_history = cfg.min_history,
        .committed = on_commit,
        .committed_ctx = &dref,
        .snapshot_path = snap_path,
        .snapshot_every = cfg.snapshot_every,
        .snapshot_load = cfg.snapshot_load && !full_replay,
    };
    serve_config_fingerprint(&cfg, opts.config_hash);
    if (pipeline_start(&p, err, sizeof err, &rules, db, &opts)) {
        fprintf(stderr, "serve: cannot start: recovery from the journal in %s failed: %s; %s\n",
                cfg.database, err, NOTHING_CHANGED);
        goto out;
    }
    /* Known issues from a file (config known_issues:): all of it applies, or serve stops. */
    if (cfg.known_issues && known_file_apply(p, cfg.known_issues, &diag))
        goto fail;
    struct delivery_hooks hooks = {.ctx = p,
                                   .engine_now = hook_now,
                                   .report = hook_report,
                                   .retry_on_engine_clock = cfg.delivery.retry_engine_clock};
    if (cfg.messages && dispatcher_start(&dispatcher, &cfg.delivery, cfg.database, &hooks)) {
        fprintf(stderr, "serve: cannot start the dispatcher (see the log above); %s\n",
                NOTHING_CHANGED);
        goto out;
    }
    pthread_mutex_lock(&dref.mu);
    dref.d = dispatcher;
    pthread_mutex_unlock(&dref.mu);
    struct http_options hopt = {.listen_addr = cfg.listen_addr, .listen_port = cfg.listen_port,
                                .database = cfg.database, .api_token = cfg.api_token,
                                .public_metrics = cfg.public_metrics, .max_body = cfg.max_body,
                                .max_events = cfg.max_events, .drafting = &cfg.drafting,
                                .max_event_members = cfg.max_event_members,
                                .max_event_data = cfg.max_event_data,
                                .event_time_min = cfg.event_time_min,
                                .event_time_skew = cfg.event_time_skew,
                                .max_connections = cfg.max_connections,
                                .max_per_address = cfg.max_connections_per_address,
                                .request_deadline = cfg.request_deadline,
                                .threads = cfg.http_threads, .rate_limit = cfg.rate_limit,
                                .rate_burst = cfg.rate_burst, .tls_addr = cfg.tls_listen_addr,
                                .tls_port = cfg.tls_listen_port, .tls_cert = cfg.tls_cert,
                                .tls_key = cfg.tls_key};
    if (http_start(&http, &hopt, p))
        goto out;
    pthread_mutex_lock(&dref.mu);
    dref.http = http;
    pthread_mutex_unlock(&dref.mu);
    http_set_ready(http, 1);
    log_info("listening on http://%s:%u (database %s, %zu signals, %s clock%s)", cfg.listen_addr,
             http_port(http), cfg.database, rules.nsignals, cfg.virtual_clock ? "virtual" : "wall",
             cfg.api_token || users ? ", bearer token required" : ", no authentication");
    if (http_tls_port(http))
        log_info("listening on https://%s:%u (certificate %s)", cfg.tls_listen_addr,
                 http_tls_port(http), cfg.tls_cert);
    if (http_tls_port(http) && strncmp(cfg.listen_addr, "127.", 4))
        log_warn("plain HTTP listens on %s beside listen_tls: tokens and session cookies sent "
                 "to it cross the network in the clear; keep listen on loopback",
                 cfg.listen_addr);
    if (!cfg.orch.brand.name)
        log_warn("no brand configured (brand.name): customer messages name no company; set it "
                 "in the config file (docs/configuration.md)");
    if (cfg.ready_file) {
        char tls[300] = ""; /* a second line: the TLS listener */
        if (http_tls_port(http))
            snprintf(tls, sizeof tls, "https://%s:%u", cfg.tls_listen_addr, http_tls_port(http));
        serve_write_ready(cfg.ready_file, cfg.listen_addr, http_port(http), tls[0] ? tls : NULL);
    }

    int sig = 0;
    sigwait(&stop_signals, &sig);
    log_info("stopping on signal %d", sig);
    rc = 0;
    goto out;
fail:
    fputs(diag.data ? diag.data : "", stderr);
out:
    pthread_mutex_lock(&dref.mu);
    dref.http = NULL;
    pthread_mutex_unlock(&dref.mu);
    http_stop(http);
    pthread_mutex_lock(&dref.mu);
    dref.d = NULL;
    pthread_mutex_unlock(&dref.mu);
    dispatcher_stop(dispatcher);
    dispatcher = NULL;
    pipeline_stop(p);
    comms_free(templates);
    store_close(db);
    store_checkpointer_stop(ckpt);
    rules_cleanup(&rules);
    playbooks_cleanup(&playbooks);
    sentiment_free(sent);
    config_cleanup(&cfg);
    buf_cleanup(&diag);
    return rc;
}
