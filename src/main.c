/*
 * main.c -- the command line.  One binary, one table of subcommands
 * (tmux's cmd_entry style): adding a command is adding a row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cases/playbook.h"
#include "analytics/sentiment.h"
#include "client/backfill.h"
#include "client/demo.h"
#include "model/model.h"
#include "replay/replay.h"
#include "replay/report.h"
#include "store/store.h"
#include "rules/rules.h"
#include "serve/config.h"
#include "serve/serve.h"
#include "serve/users_cli.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/util.h"

#define FOREWARN_VERSION "0.1.0"

struct cmd_entry {
    const char *name;
    const char *usage;
    const char *help;
    int (*run)(int argc, char **argv);
};

static int cmd_help(int argc, char **argv);

/* Load --rules files, or the built-in pack when none is given. Prints errors. */
static int load_rules(struct rules *r, const char *const *files, size_t n)
{
    if (n == 0)
        rules_add_builtin(r);
    for (size_t i = 0; i < n; i++)
        rules_add_file(r, files[i]);
    if (rules_finish(r)) {
        fputs(r->diag.data ? r->diag.data : "error: rules failed to load\n", stderr);
        return FW_EPARSE;
    }
    return 0;
}

static int cmd_replay(int argc, char **argv)
{
    const char *files[64] = {0};
    size_t nfiles = 0;
    const char *input = "-";
    struct replay_opts o = {.until = FW_TIME_NONE};
    struct report_opts rep = {.from = FW_TIME_NONE, .to = FW_TIME_NONE};
    const char *config_path = NULL;
    const char *pbfiles[64] = {0};
    size_t npb = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rules") && i + 1 < argc) {
            if (nfiles == ARRAY_SIZE(files)) {
                fprintf(stderr, "replay: too many --rules\n");
                return 2;
            }
            files[nfiles++] = argv[++i];
        } else if (!strcmp(argv[i], "--playbooks") && i + 1 < argc) {
            if (npb == ARRAY_SIZE(pbfiles)) {
                fprintf(stderr, "replay: too many --playbooks\n");
                return 2;
            }
            pbfiles[npb++] = argv[++i];
        } else if (!strcmp(argv[i], "--until") && i + 1 < argc) {
            i++;
            if (fw_time_parse(argv[i], strlen(argv[i]), &o.until)) {
                fprintf(stderr, "replay: --until %s: not an RFC 3339 time with offset\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--skip-invalid")) {
            o.skip_invalid = 1;
        } else if (!strcmp(argv[i], "--serial")) {
            o.serial = 1;
        } else if (!strcmp(argv[i], "--partitions") && i + 1 < argc) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || n < 1 || n > 64) {
                fprintf(stderr, "replay: --partitions %s: a number from 1 to 64\n", argv[i]);
                return 2;
            }
            o.partitions = (size_t)n;
        } else if (!strcmp(argv[i], "--messages")) {
            o.messages = 1;
        } else if (!strcmp(argv[i], "--templates") && i + 1 < argc) {
            o.templates = argv[++i];
        } else if (!strcmp(argv[i], "--cases")) {
            o.cases = 1;
        } else if (!strcmp(argv[i], "--stats")) {
            o.cases = o.stats = 1; /* outcomes are the cases' */
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config_path = argv[++i];
        } else if (!strcmp(argv[i], "--report") && i + 1 < argc) {
            if (strcmp(argv[++i], "outreach")) {
                fprintf(stderr, "replay: --report %s: the report is 'outreach'\n", argv[i]);
                return 2;
            }
            o.report = &rep; /* the outreach report reads the messages, cases and tasks */
            o.messages = o.cases = 1;
        } else if (!strcmp(argv[i], "--format") && i + 1 < argc) {
            rep.format = argv[++i];
            if (strcmp(rep.format, "md") && strcmp(rep.format, "json") &&
                strcmp(rep.format, "html")) {
                fprintf(stderr, "replay: --format %s: one of md, json, html\n", rep.format);
                return 2;
            }
        } else if (!strcmp(argv[i], "--segment") && i + 1 < argc) {
            rep.segment = argv[++i];
        } else if ((!strcmp(argv[i], "--from") || !strcmp(argv[i], "--to")) && i + 1 < argc) {
            int64_t *t = !strcmp(argv[i], "--from") ? &rep.from : &rep.to;
            i++;
            if (fw_time_parse(argv[i], strlen(argv[i]), t)) {
                fprintf(stderr, "replay: %s %s: not an RFC 3339 time with offset\n", argv[i - 1],
                        argv[i]);
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "replay: unknown option %s\n", argv[i]);
            return 2;
        } else {
            input = argv[i];
        }
    }
    /* The same config file serve reads: outreach settings, SLA policies, rules, templates. */
    struct config cfg;
    config_init(&cfg);
    if (config_path) {
        struct buf diag;
        buf_init(&diag, 0);
        int crc = config_load_file(&cfg, config_path, &diag);
        if (crc)
            fputs(diag.data ? diag.data : "replay: the config file failed to load\n", stderr);
        buf_cleanup(&diag);
        if (crc) {
            config_cleanup(&cfg);
            return 1;
        }
        o.orch = &cfg.orch;
        o.sla = &cfg.sla;
        o.weights = &cfg.weights;
        o.health = &cfg.health;
        if (!o.templates)
            o.templates = cfg.templates;
        for (size_t i = 0; !nfiles && i < cfg.nrules && i < ARRAY_SIZE(files); i++)
            files[i] = cfg.rules[i];
        if (!nfiles)
            nfiles = cfg.nrules < ARRAY_SIZE(files) ? cfg.nrules : ARRAY_SIZE(files);
        for (size_t i = 0; !npb && i < cfg.nplaybooks && i < ARRAY_SIZE(pbfiles); i++)
            pbfiles[i] = cfg.playbooks[i];
        if (!npb)
            npb = cfg.nplaybooks < ARRAY_SIZE(pbfiles) ? cfg.nplaybooks : ARRAY_SIZE(pbfiles);
        o.min_history = cfg.min_history;
    }
    /* An event serve would refuse is refused here too (the defaults without --config). */
    struct ingest_limits lim = ingest_default_limits;
    lim.max_body = cfg.max_body;
    lim.max_members = cfg.max_event_members;
    lim.max_data = cfg.max_event_data;
    lim.time_min = cfg.event_time_min;
    lim.time_max = fw_wall_now() + cfg.event_time_skew;
    if (lim.time_max >= INGEST_TIME_CEILING)
        lim.time_max = INGEST_TIME_CEILING - 1;
    lim.time_max_why = "the wall clock plus event_time_skew";
    o.limits = &lim;
    struct rules r;
    rules_init(&r);
    int rc = load_rules(&r, files, nfiles);
    if (!rc) {
        /* churn_model: as serve reads it, so a replay reproduces its churn_risk. */
        struct buf diag;
        buf_init(&diag, 0);
        rc = churn_bind(&cfg.churn, &r, &diag);
        rc = rc ? rc : churn_check_rules(&cfg.churn, &r, &diag);
        fputs(diag.data ? diag.data : "", stderr);
        buf_cleanup(&diag);
    }
    if (rc) {
        rules_cleanup(&r);
        config_cleanup(&cfg);
        return 1;
    }
    struct engine_churn churn;
    o.churn = churn_engine(&cfg.churn, &churn);
    if (o.partitions > 1 && (o.stats || o.report || o.churn)) {
        fprintf(stderr, "replay: --partitions replays detections, incidents, messages and cases "
                        "(not with --stats, --report or a churn_model)\n");
        rules_cleanup(&r);
        config_cleanup(&cfg);
        return 2;
    }
    /* Playbooks and sentiment (cases only): the built-in set, or the files given. */
    struct playbooks pb;
    playbooks_init(&pb);
    struct sentiment *sent = NULL;
    if (o.cases && !(sent = sentiment_open(NULL, cfg.sentiment_lexicon, cfg.sentiment_domain,
                                           "replay", stderr))) {
        rules_cleanup(&r);
        config_cleanup(&cfg);
        return 1;
    }
    o.sentiment = sent;
    if (o.cases) {
        if (!npb)
            playbooks_add_builtin(&pb, &r);
        for (size_t i = 0; i < npb; i++)
            playbooks_add_file(&pb, pbfiles[i], &r);
        o.playbooks = &pb;
    }
    FILE *in = pb.nerrors ? NULL : strcmp(input, "-") ? fopen(input, "rb") : stdin;
    if (!in) {
        if (pb.nerrors)
            fputs(pb.diag.data ? pb.diag.data : "", stderr);
        else
            fprintf(stderr, "replay: cannot read %s\n", input);
        rules_cleanup(&r);
        playbooks_cleanup(&pb);
        sentiment_free(sent);
        config_cleanup(&cfg);
        return 1;
    }
    /* Partitions: one copy of the rules each (an engine interns into its own). */
    struct rules *prules[65] = {&r};
    size_t nprules = 1;
    for (; o.partitions > 1 && nprules <= o.partitions; nprules++) {
        prules[nprules] = xmalloc(sizeof *prules[nprules]);
        rules_init(prules[nprules]);
        if (load_rules(prules[nprules], files, nfiles)) {
            rules_cleanup(prules[nprules]);
            free(prules[nprules]);
            break;
        }
    }
    if (o.partitions > 1 && nprules <= o.partitions)
        rc = 1; /* a copy failed to load (the copies are freed below) */
    o.part_rules = prules;
    /* With cases, each partition's playbooks, compiled against its copy of the rules. */
    struct playbooks ppb[64];
    const struct playbooks *ppbp[64];
    size_t nppb = 0;
    for (; !rc && o.cases && nppb + 1 < nprules; nppb++) {
        playbooks_init(&ppb[nppb]);
        if (!npb)
            playbooks_add_builtin(&ppb[nppb], prules[nppb + 1]);
        for (size_t i = 0; i < npb; i++)
            playbooks_add_file(&ppb[nppb], pbfiles[i], prules[nppb + 1]);
        ppbp[nppb] = &ppb[nppb];
    }
    o.part_playbooks = nppb ? ppbp : NULL;
    if (!rc)
        rc = replay_run(&r, in, stdout, stderr, &o);
    for (size_t k = 0; k < nppb; k++)
        playbooks_cleanup(&ppb[k]);
    if (in != stdin)
        fclose(in);
    for (size_t k = 1; k < nprules; k++) {
        rules_cleanup(prules[k]);
        free(prules[k]);
    }
    sentiment_free(sent);
    playbooks_cleanup(&pb);
    rules_cleanup(&r);
    config_cleanup(&cfg);
    return rc ? 1 : 0;
}

struct dump {
    FILE *f;
    int64_t last_applied; /* the latest applied_at of the journal, or FW_TIME_NONE */
};

/*
 * One journal row as an NDJSON line of the temporary replay input.  A move
 * of a virtual clock (POST /v1/admin/clock) is a journal row but not an
 * event replay accepts; the report's --until stands for it (cmd_report).
 */
static int dump_event(void *ctx, const struct event *ev, int64_t applied_at)
{
    struct dump *d = ctx;
    if (d->last_applied == FW_TIME_NONE || applied_at > d->last_applied)
        d->last_applied = applied_at;
    if (!ev->subject && !strcmp(ev->type, "forewarn.clock"))
        return 0;
    char *txt = fw_json_dumps(ev->json);
    fprintf(d->f, "%s\n", txt);
    free(txt);
    return 0;
}

/*
 * The instant a report on a store is as of, when --until does not say: a
 * virtual clock's stored time (FW_TIME_NONE when it never moved: no events
 * yet), else the wall clock's now (never before the last row applied).
 */
static int64_t store_report_time(struct store *s, int64_t last_applied)
{
    struct buf b;
    int64_t t;
    buf_init(&b, 32);
    if (store_meta_get(s, "virtual_clock", &b) == 0) {
        t = strtoll(b.data, NULL, 10);
        if (t <= 0 && last_applied == FW_TIME_NONE)
            t = FW_TIME_NONE;
    } else {
        t = fw_wall_now();
        if (last_applied != FW_TIME_NONE && last_applied > t)
            t = last_applied;
    }
    buf_cleanup(&b);
    return t;
}

/*
 * report outreach: the replay of an events file (--events) or of a
 * store's journal (--db, copied to a temporary file first), with the
 * report instead of lines.  Every other option is replay's.
 */
static int cmd_report(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "outreach")) {
        fprintf(stderr, "usage: forewarn report outreach (--events FILE | --db PATH) [--rules "
                        "FILE]... [--config FILE] [--until T]\n"
                        "                [--segment COND] [--from T] [--to T] [--format "
                        "md|html|json]\n");
        return 2;
    }
    char **args = xcalloc((size_t)argc + 6, sizeof *args);
    int n = 0, until = 0;
    const char *events = NULL, *db = NULL;
    char until_s[FW_TIME_MAXLEN];
    args[n++] = "replay";
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc)
            events = argv[++i];
        else if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db = argv[++i];
        else
            args[n++] = argv[i];
        until |= !strcmp(argv[i], "--until");
    }
    int rc = 2;
    char tmp[] = "/tmp/forewarn-report-XXXXXX";
    int fd = -1;
    if (!events == !db) {
        fprintf(stderr, "report: give one of --events FILE or --db PATH\n");
        goto out;
    }
    if (db) {
        struct store *s;
        char why[256];
        if (store_open(db, 1, &s, why, sizeof why)) {
            fprintf(stderr, "report: --db %s: %s\n", db, why);
            rc = 1;
            goto out;
        }
        fd = mkstemp(tmp);
        struct dump d = {.f = fd >= 0 ? fdopen(fd, "w") : NULL, .last_applied = FW_TIME_NONE};
        int src = d.f ? store_events_scan(s, dump_event, &d) : FW_EIO;
        int64_t asof = src ? FW_TIME_NONE : store_report_time(s, d.last_applied);
        store_close(s);
        if (d.f)
            fclose(d.f);
        if (!until && asof != FW_TIME_NONE) {
            /* The store's now, as its server would see it: wake-ups due by then have fired. */
            fw_time_format(asof, until_s);
            args[n++] = "--until";
            args[n++] = until_s;
        }
        if (src) {
            fprintf(stderr, "report: --db %s: cannot read the journal\n", db);
            rc = 1;
            goto out;
        }
        events = tmp;
    }
    args[n++] = "--report";
    args[n++] = "outreach";
    args[n++] = (char *)events;
    rc = cmd_replay(n, args);
out:
    if (fd >= 0)
        unlink(tmp);
    free(args);
    return rc;
}

static int cmd_rules(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "check") && strcmp(argv[1], "test"))) {
        fprintf(stderr, "usage: forewarn rules check [--config FILE] FILE...\n"
                        "       forewarn rules test FILE...\n");
        return 2;
    }
    int failed = 0;
    if (!strcmp(argv[1], "test")) {
        for (int i = 2; i < argc; i++)
            failed |= ruletest_run(argv[i], stdout, stderr) != 0;
        return failed;
    }
    /*
     * --config: the serve config the packs will run with; its churn_model:
     * features are compiled against each pack, and a rule reading
     * churn_risk is refused without one, as serve refuses it.
     */
    struct config cfg;
    config_init(&cfg);
    int first = 2;
    if (argc > 3 && !strcmp(argv[2], "--config")) {
        struct buf diag;
        buf_init(&diag, 0);
        int crc = config_load_file(&cfg, argv[3], &diag);
        fputs(diag.data ? diag.data : "", stderr);
        buf_cleanup(&diag);
        if (crc) {
            config_cleanup(&cfg);
            return 1;
        }
        first = 4;
    }
    for (int i = first; i < argc; i++) {
        struct rules r;
        struct buf diag;
        buf_init(&diag, 0);
        rules_init(&r);
        rules_add_file(&r, argv[i]);
        if (rules_finish(&r)) {
            fputs(r.diag.data ? r.diag.data : "", stderr);
            fprintf(stderr, "%s: %u error(s)\n", argv[i], r.nerrors);
            failed = 1;
        } else if (churn_bind(&cfg.churn, &r, &diag) || churn_check_rules(&cfg.churn, &r, &diag)) {
            fputs(diag.data ? diag.data : "", stderr);
            fprintf(stderr, "%s: churn_risk or churn_model: refused\n", argv[i]);
            failed = 1;
        } else {
            printf("%s: OK, %zu signal(s)\n", argv[i], r.nsignals);
        }
        /* The features were compiled against this pack's names: the next pack compiles its own. */
        churn_unbind(&cfg.churn);
        buf_cleanup(&diag);
        rules_cleanup(&r);
    }
    config_cleanup(&cfg);
    return failed;
}

static int cmd_playbooks(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "check") && strcmp(argv[1], "test"))) {
        fprintf(stderr, "usage: forewarn playbooks check FILE...\n"
                        "       forewarn playbooks test FILE...\n");
        return 2;
    }
    int failed = 0;
    if (!strcmp(argv[1], "test")) {
        for (int i = 2; i < argc; i++)
            failed |= playbooks_test_run(argv[i], stdout, stderr) != 0;
        return failed;
    }
    /* Signal ids are checked against the built-in rule pack. */
    struct rules r;
    rules_init(&r);
    rules_add_builtin(&r);
    if (rules_finish(&r)) {
        fputs(r.diag.data ? r.diag.data : "", stderr);
        rules_cleanup(&r);
        return 1;
    }
    for (int i = 2; i < argc; i++) {
        struct playbooks pb;
        playbooks_init(&pb);
        playbooks_add_file(&pb, argv[i], &r);
        if (pb.nerrors) {
            fputs(pb.diag.data ? pb.diag.data : "", stderr);
            fprintf(stderr, "%s: %u error(s)\n", argv[i], pb.nerrors);
            failed = 1;
        } else {
            printf("%s: OK, %zu playbook(s)\n", argv[i], pb.n);
        }
        playbooks_cleanup(&pb);
    }
    rules_cleanup(&r);
    return failed;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("forewarn %s\n", FOREWARN_VERSION);
    return 0;
}

static int cmd_demo(int argc, char **argv)
{
    struct demo_opts o = {.seed = 1, .now = fw_wall_now(), .cases = 72};
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            unsigned long long v = strtoull(argv[++i], &end, 10);
            if (*end || !*argv[i]) {
                fprintf(stderr, "demo: --seed must be a non-negative integer\n");
                return 2;
            }
            o.seed = v;
        } else if (!strcmp(argv[i], "--now") && i + 1 < argc) {
            if (fw_time_parse(argv[i + 1], strlen(argv[i + 1]), &o.now)) {
                fprintf(stderr, "demo: --now %s: not an RFC 3339 time with offset\n", argv[i + 1]);
                return 2;
            }
            i++;
        } else if (!strcmp(argv[i], "--cases") && i + 1 < argc) {
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 60 || n > 100000) {
                fprintf(stderr, "demo: --cases must be an integer from 60 to 100000\n");
                return 2;
            }
            o.cases = (unsigned)n;
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            path = argv[++i];
        } else {
            fprintf(stderr, "demo: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    struct buf out;
    buf_init(&out, 0);
    size_t n = 0;
    if (demo_write(&o, &out, &n)) {
        buf_cleanup(&out);
        fprintf(stderr, "demo: bad options\n");
        return 2;
    }
    FILE *f = path ? fopen(path, "w") : stdout;
    if (!f || fwrite(out.data, 1, out.len, f) != out.len || (path && fclose(f))) {
        fprintf(stderr, "demo: cannot write %s\n", path ? path : "standard output");
        buf_cleanup(&out);
        return 1;
    }
    fprintf(stderr, "demo: %zu events, %u resolved cases of history and 4 live ones\n", n,
            o.cases);
    buf_cleanup(&out);
    return 0;
}

static int cmd_ingest(int argc, char **argv)
{
    struct backfill_opts o = {.url = "http://127.0.0.1:8080", .batch = 1000,
                              .token = getenv("FOREWARN_TOKEN")};
    const char *files[16] = {0};
    size_t nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backfill") && i + 1 < argc) {
            o.file = argv[++i];
        } else if (!strcmp(argv[i], "--url") && i + 1 < argc) {
            o.url = argv[++i];
        } else if (!strcmp(argv[i], "--token") && i + 1 < argc) {
            o.token = argv[++i];
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 1 || n > 10000) {
                fprintf(stderr, "ingest: --batch must be an integer from 1 to 10000\n");
                return 2;
            }
            o.batch = (size_t)n;
        } else if (!strcmp(argv[i], "--rules") && i + 1 < argc) {
            if (nfiles == ARRAY_SIZE(files)) {
                fprintf(stderr, "ingest: too many --rules files\n");
                return 2;
            }
            files[nfiles++] = argv[++i];
        } else {
            fprintf(stderr, "ingest: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!o.file) {
        fprintf(stderr, "usage: forewarn ingest --backfill FILE [--url URL] [--token TOKEN] "
                        "[--batch N] [--rules FILE]...\n");
        return 2;
    }
    struct rules r;
    rules_init(&r);
    int rc = load_rules(&r, files, nfiles);
    if (!rc) {
        o.rules = &r;
        rc = backfill_run(&o);
    }
    rules_cleanup(&r);
    return rc ? 1 : 0;
}

/*
 * Score customer texts.  Exit 0; 1 when a lexicon or the config cannot be
 * loaded (at start-up, before any input is read); 2 for bad arguments or
 * bad input (every bad line reported, nothing written).
 */
static int cmd_sentiment(int argc, char **argv)
{
    const char *input = "-", *lexicon = NULL, *domain = NULL, *config_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--lexicon") && i + 1 < argc) {
            lexicon = argv[++i];
        } else if (!strcmp(argv[i], "--domain") && i + 1 < argc) {
            domain = argv[++i];
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config_path = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "sentiment: unknown option %s\n", argv[i]);
            return 2;
        } else if (strcmp(input, "-")) {
            fprintf(stderr, "sentiment: one input file at most\n");
            return 2;
        } else {
            input = argv[i];
        }
    }
    struct config cfg;
    config_init(&cfg);
    struct sentiment *s = NULL;
    struct buf diag;
    buf_init(&diag, 0);
    int rc = 1;
    if (config_path && config_load_file(&cfg, config_path, &diag)) {
        fputs(diag.data ? diag.data : "sentiment: the config file failed to load\n", stderr);
        goto out;
    }
    if (!(s = sentiment_open(lexicon, cfg.sentiment_lexicon, domain ? domain : cfg.sentiment_domain,
                             "sentiment", stderr)))
        goto out;
    FILE *in = strcmp(input, "-") ? fopen(input, "rb") : stdin;
    if (!in) {
        fprintf(stderr, "sentiment: cannot read %s\n", input);
        rc = 2;
        goto out;
    }
    int r = sentiment_run(s, in, strcmp(input, "-") ? input : "<stdin>", stdout, stderr);
    if (in != stdin)
        fclose(in);
    rc = r == 0 ? 0 : r == FW_EIO ? 1 : 2;
out:
    buf_cleanup(&diag);
    sentiment_free(s);
    config_cleanup(&cfg);
    return rc;
}

static int cmd_model(int argc, char **argv) { return model_main(argc, argv, FOREWARN_VERSION); }

static const struct cmd_entry commands[] = {
    {.name = "serve",
     .usage = "serve [--config FILE] [--listen ADDR:PORT] [--db FILE] [--rules FILE]...\n"
              "                 [--playbooks FILE]... [--virtual-clock]",
     .help = "run the server (HTTP API, SQLite store) on its embedded defaults",
     .run = serve_main},
    {.name = "report",
     .usage = "report outreach (--events FILE | --db PATH) [--rules FILE]... [--config FILE]\n"
              "                 [--until T] [--segment COND] [--from T] [--to T] "
              "[--format md|html|json]",
     .help = "seed 001's Proactive Outreach Report over a replay of the events or of the "
             "store's journal (docs/known-issues.md)",
     .run = cmd_report},
    {.name = "replay",
     .usage = "replay [--config FILE] [--rules FILE]... [--until RFC3339] [--messages]\n"
              "                 [--cases] [--stats] [--playbooks FILE]... [--templates DIR]\n"
              "                 [--skip-invalid] [--serial] [--partitions N] [FILE|-]",
     .help = "replay NDJSON events on a virtual clock; print detections, incidents,\n"
             "      (with --messages) every message decision, (with --cases) every case\n"
             "      and SLA clock change, and (with --stats) the outcomes and leaderboard",
     .run = cmd_replay},
    {.name = "demo",
     .usage = "demo [--seed N] [--now RFC3339] [--cases N] [--out FILE]",
     .help = "write a realistic journal (weeks of worked cases and seed 002's live\n"
             "      scenarios) to load with `ingest --backfill` or `replay --stats`",
     .run = cmd_demo},
    {.name = "ingest",
     .usage = "ingest --backfill FILE [--url URL] [--token TOKEN] [--batch N] [--rules FILE]...",
     .help = "load a history of events into a running server, in time order, in batches;\n"
             "      validated whole first (a bad event sends nothing)",
     .run = cmd_ingest},
    {.name = "rules",
     .usage = "rules check [--config FILE] FILE... | rules test FILE...",
     .help = "validate rule packs, or run rule unit tests",
     .run = cmd_rules},
    {.name = "playbooks",
     .usage = "playbooks check FILE... | playbooks test FILE...",
     .help = "validate playbook files (file:line:col errors), or run playbook tests",
     .run = cmd_playbooks},
    {.name = "user",
     .usage = "user add NAME --role ROLE [--expires DUR] | user list | user set-role NAME --role "
              "ROLE\n                 | user remove NAME   (each with [--db FILE] [--config FILE])",
     .help = "manage people and their roles (viewer, agent, lead, admin, service); add prints\n"
             "      the user's first token, once",
     .run = users_cli_user},
    {.name = "token",
     .usage = "token create --user NAME [--expires DUR] | token list | token revoke ID\n"
              "                 (each with [--db FILE] [--config FILE])",
     .help = "API tokens: create prints fw_... once (only its SHA-256 is stored); list never\n"
             "      shows secrets; revoke ends one at once, even on a running server",
     .run = users_cli_token},
    {.name = "sentiment",
     .usage = "sentiment [--lexicon FILE] [--domain FILE] [--config FILE] [FILE|-]",
     .help = "score customer texts, NDJSON {\"id\",\"text\"} in, one line out each:\n"
             "      {\"id\",\"score\",\"label\",\"intents\"} (docs/guidance.md); the whole input\n"
             "      is validated first (a bad line writes nothing)",
     .run = cmd_sentiment},
    {.name = "model",
     .usage = "model train --csv FILE --label COLUMN --positive VALUE [--id COLUMN] --out MODEL\n"
              "                 | model score --model MODEL --csv FILE [--id COLUMN]",
     .help = "train a churn model (gradient-boosted trees and a logistic baseline, measured\n"
             "      by cross-validation; docs/model.md), or score a CSV with one: id,score lines",
     .run = cmd_model},
    {.name = "version", .usage = "version", .help = "print the version", .run = cmd_version},
    {.name = "help", .usage = "help", .help = "this text", .run = cmd_help},
};

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("forewarn %s -- detect customer-journey problems the moment they happen\n\n"
           "usage:\n",
           FOREWARN_VERSION);
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        printf("  forewarn %s\n      %s\n", commands[i].usage, commands[i].help);
    return 0;
}

int main(int argc, char **argv)
{
    fw_json_init(); /* before any jansson value */
    if (argc < 2) {
        cmd_help(0, NULL);
        return 2;
    }
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        return cmd_help(0, NULL);
    fprintf(stderr, "forewarn: unknown command '%s' (try 'forewarn help')\n", argv[1]);
    return 2;
}
