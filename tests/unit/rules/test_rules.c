/*
 * test_rules.c -- rule packs: the built-in pack as the engine sees it,
 * severities, packs that refer to each other, systemic defaults, and the
 * refused packs of tests/cases/rules/errors.test, each error at its exact
 * file:line:col with the source line and a caret.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "rules/rules.h"
#include "util/yaml.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/util.h"

#define CASES_FILE "../cases/rules/errors.test"

/* Load NUL-terminated packs (name, text, name, text, ..., NULL) and finish. */
static int load(struct rules *r, ...)
{
    va_list ap;
    int rc = 0;
    rules_init(r);
    va_start(ap, r);
    const char *name;
    while ((name = va_arg(ap, const char *))) {
        const char *text = va_arg(ap, const char *);
        if (rules_add_text(r, name, text, strlen(text)))
            rc = FW_EPARSE;
    }
    va_end(ap);
    if (rules_finish(r))
        rc = FW_EPARSE;
    return rc;
}

static int64_t class_id(const struct rules *r, const char *name)
{
    return intern_lookup(&r->classes, name, strlen(name));
}

static const struct rule_type *type_of(const struct rules *r, const char *type)
{
    int64_t id = intern_lookup(&r->types, type, strlen(type));
    return id < 0 ? NULL : rules_type(r, (uint32_t)id);
}

static int has_class(const struct rule_type *t, int64_t cls)
{
    for (size_t i = 0; t && i < t->nclasses; i++)
        if (t->classes[i] == cls)
            return 1;
    return 0;
}

/* The state-key names of a signal's factors, comma-separated, into b. */
static const char *factor_names(const struct rules *r, const struct rule_signal *s, struct buf *b)
{
    buf_reset(b);
    for (size_t i = 0; i < s->nfactors; i++)
        buf_printf(b, "%s%s", i ? "," : "", intern_str(&r->keys, s->factors[i]));
    return b->data ? b->data : "";
}

/* ---- the built-in pack ---- */

static void builtin_pack(void)
{
    struct rules r;
    struct buf b;
    buf_init(&b, 0);
    rules_init(&r);
    ASSERT_EQ(rules_add_builtin(&r), 0);
    ASSERT_EQ(rules_finish(&r), 0);
    ASSERT_EQ(r.nerrors, 0);
    ASSERT(r.diag.len == 0);
    ASSERT(r.finished);

    /* Ten signals, in file order, with their severities. */
    static const struct {
        const char *id;
        enum severity sev;
    } want[] = {{"SIG-001", SEV_HIGH},   {"SIG-002", SEV_CRITICAL}, {"SIG-003", SEV_MEDIUM},
                {"SIG-004", SEV_HIGH},   {"SIG-005", SEV_MEDIUM},   {"SIG-006", SEV_MEDIUM},
                {"SIG-007", SEV_HIGH},   {"SIG-008", SEV_HIGH},     {"SIG-009", SEV_MEDIUM},
                {"SIG-010", SEV_HIGH}};
    ASSERT_EQ(r.nsignals, 11);
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        ASSERT_STREQ(r.signals[i].id, want[i].id);
        ASSERT_EQ(r.signals[i].severity, want[i].sev);
        ASSERT(r.signals[i].cond != NULL);
        ASSERT(rules_signal(&r, want[i].id) == &r.signals[i]);
        ASSERT_STREQ(r.signals[i].file, "<builtin:telecom.yaml>");
    }
    ASSERT(rules_signal(&r, "SIG-012") == NULL);

    /* Fields as written, folded block text joined with spaces. */
    const struct rule_signal *s1 = &r.signals[0];
    ASSERT_STREQ(s1->name, "eSIM stuck in PENDING");
    ASSERT_STREQ(s1->description, "The eSIM is still PENDING more than 48 hours after payment "
                                  "completed and activation has not completed.");
    ASSERT_STREQ(s1->team, "esim");
    ASSERT_STREQ(s1->root_cause, "esim_provisioning");
    ASSERT_STREQ(s1->condition, "upper(esim.status) == \"PENDING\" and last(\"payment.completed\") "
                                "is not null and last(\"activation.completed\") is null and "
                                "age(last(\"payment.completed\")) > 48h");
    {
        /* The line of "- id: SIG-001" in the pack's source (the tests run in tests/unit). */
        FILE *f = fopen("../../rules/telecom.yaml", "r");
        ASSERT(f != NULL);
        char line[512];
        unsigned n = 0, at = 0;
        while (!at && fgets(line, sizeof line, f)) {
            n++;
            if (!strncmp(line, "  - id: SIG-001", 15))
                at = n;
        }
        fclose(f);
        ASSERT_EQ(s1->line, at);
    }
    ASSERT_EQ(s1->col, 9);

    /* Systemic settings: explicit, defaulted, off; factors default to the pack's. */
    ASSERT(s1->systemic);
    ASSERT_EQ(s1->min_customers, 3);
    ASSERT_EQ(s1->window, 24 * FW_HOUR);
    ASSERT_STREQ(factor_names(&r, s1, &b),
                 "customer.carrier,customer.zip,customer.plan,customer.tier,portin.carrier");
    ASSERT_EQ(r.ndefault_factors, 5);
    ASSERT_EQ(rules_signal(&r, "SIG-002")->window, FW_HOUR);
    ASSERT(!rules_signal(&r, "SIG-008")->systemic);
    ASSERT(!rules_signal(&r, "SIG-009")->systemic);
    const struct rule_signal *s10 = rules_signal(&r, "SIG-010");
    ASSERT(s10->systemic);
    ASSERT_STREQ(factor_names(&r, s10, &b), "customer.zip");

    /* Only SIG-010 and SIG-011 (the outage signals) read global state; SIG-011 is the outage. */
    for (size_t i = 0; i < r.nsignals; i++) {
        ASSERT_EQ(r.signals[i].uses_global, i == 9 || i == 10);
        ASSERT_EQ(r.signals[i].outage, i == 10);
    }

    /* Classes: "contact" is ticket.created + chat.started, kept for 7 days. */
    ASSERT_EQ(intern_count(&r.classes), 1);
    int64_t contact = class_id(&r, "contact");
    ASSERT(contact >= 0);
    ASSERT_EQ(r.class_window[contact], 7 * FW_DAY);
    ASSERT(has_class(type_of(&r, "ticket.created"), contact));
    ASSERT(has_class(type_of(&r, "chat.started"), contact));
    ASSERT(!has_class(type_of(&r, "chat.ended"), contact));
    ASSERT_EQ(type_of(&r, "ticket.created")->nclasses, 1);

    /* Entities and the event types that open and close them. */
    ASSERT_EQ(intern_count(&r.entities), 2);
    int64_t ticket = intern_lookup(&r.entities, "ticket", 6);
    int64_t conv = intern_lookup(&r.entities, "conversation", 12);
    ASSERT(ticket >= 0 && conv >= 0);
    ASSERT_STREQ(r.entity_info[ticket].name, "ticket");
    ASSERT_STREQ(r.entity_info[ticket].id_field, "ticket_id");
    ASSERT_STREQ(r.entity_info[conv].id_field, "conversation_id");
    ASSERT_EQ(type_of(&r, "ticket.created")->opens, ticket);
    ASSERT_EQ(type_of(&r, "ticket.created")->closes, -1);
    ASSERT_EQ(type_of(&r, "ticket.resolved")->closes, ticket);
    ASSERT_EQ(type_of(&r, "ticket.closed")->closes, ticket);
    ASSERT_EQ(type_of(&r, "chat.started")->opens, conv);
    ASSERT_EQ(type_of(&r, "chat.ended")->closes, conv);
    ASSERT_EQ(type_of(&r, "chat.ended")->opens, -1);

    /* Global event types, through the ingest callback shape. */
    ASSERT(type_of(&r, "outage.started")->global);
    ASSERT(rules_is_global(&r, "outage.started"));
    ASSERT(rules_is_global(&r, "outage.resolved"));
    ASSERT(!rules_is_global(&r, "ticket.created"));
    ASSERT(!rules_is_global(&r, "payment.completed")); /* known from a condition, not global */
    size_t ntypes = intern_count(&r.types);
    ASSERT(!rules_is_global(&r, "no.such.type"));
    ASSERT_EQ(intern_count(&r.types), ntypes); /* asking does not add the type */

    /* After finish the set is read-only for packs. */
    ASSERT_EQ(rules_add_text(&r, "late.yaml", "pack: x\n", 8), FW_ESTATE);
    buf_cleanup(&b);
    rules_cleanup(&r);
}

/* rules_type_id hands out new ids with no role; known types keep theirs. */
static void type_ids(void)
{
    struct rules r;
    ASSERT_EQ(load(&r, "p.yaml",
                   "pack: p\n"
                   "global_events: outage.started\n" /* one scalar is a list of one */
                   "signals:\n"
                   "  - {id: S, name: S, severity: LOW, condition: 'last(\"a.b\") is not null'}\n",
                   NULL),
              0);
    uint32_t ab = rules_type_id(&r, "a.b", 3);
    ASSERT_EQ(rules_type_id(&r, "a.b", 3), ab);
    ASSERT(rules_is_global(&r, "outage.started"));
    uint32_t fresh = rules_type_id(&r, "x.new", 5);
    ASSERT_EQ(fresh, intern_count(&r.types) - 1);
    const struct rule_type *t = rules_type(&r, fresh);
    ASSERT_EQ(t->opens, -1);
    ASSERT_EQ(t->closes, -1);
    ASSERT_EQ(t->global, 0);
    ASSERT_EQ(t->nclasses, 0);
    ASSERT(!rules_is_global(&r, "x.new"));
    rules_cleanup(&r);
}

static void severities(void)
{
    ASSERT_STREQ(severity_name(SEV_LOW), "LOW");
    ASSERT_STREQ(severity_name(SEV_MEDIUM), "MEDIUM");
    ASSERT_STREQ(severity_name(SEV_HIGH), "HIGH");
    ASSERT_STREQ(severity_name(SEV_CRITICAL), "CRITICAL");
    ASSERT(severity_name((enum severity)4) == NULL);
    ASSERT(severity_name((enum severity)-1) == NULL);
    ASSERT_EQ(severity_parse("LOW"), SEV_LOW);
    ASSERT_EQ(severity_parse("MEDIUM"), SEV_MEDIUM);
    ASSERT_EQ(severity_parse("HIGH"), SEV_HIGH);
    ASSERT_EQ(severity_parse("CRITICAL"), SEV_CRITICAL);
    ASSERT_EQ(severity_parse("high"), -1);
    ASSERT_EQ(severity_parse("HIGHER"), -1);
    ASSERT_EQ(severity_parse("HIG"), -1);
    ASSERT_EQ(severity_parse(""), -1);
}

/* ---- packs together ---- */

/* Each pack counts the other's class and asks for the other's entity. */
static void packs_refer_to_each_other(void)
{
    struct rules r;
    int rc = load(&r, "a.yaml",
                  "pack: a\n"
                  "classes: {refund: [refund.requested]}\n"
                  "signals:\n"
                  "  - id: A-1\n"
                  "    name: Contacts after a refund\n"
                  "    severity: LOW\n"
                  "    condition: count(\"contact\", 2d) >= 2 and has_open(\"claim\")\n",
                  "b.yaml",
                  "pack: b\n"
                  "classes: {contact: [ticket.created]}\n"
                  "entities: {claim: {id: claim_id, open: claim.opened, close: claim.closed}}\n"
                  "signals:\n"
                  "  - id: B-1\n"
                  "    name: Refund asked twice\n"
                  "    severity: HIGH\n"
                  "    condition: count(\"refund\", 3d) >= 2\n",
                  NULL);
    ASSERT_STREQ(r.diag.data ? r.diag.data : "", "");
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(r.nsignals, 2);
    ASSERT_STREQ(r.signals[0].file, "a.yaml");
    ASSERT_STREQ(r.signals[1].file, "b.yaml");
    ASSERT_EQ(r.class_window[class_id(&r, "contact")], 2 * FW_DAY);
    ASSERT_EQ(r.class_window[class_id(&r, "refund")], 3 * FW_DAY);
    rules_cleanup(&r);
}

/* The kept window of a class is the longest any condition counts it over. */
static void class_window_longest(void)
{
    struct rules r;
    ASSERT_EQ(load(&r, "w.yaml",
                   "pack: w\n"
                   "classes:\n"
                   "  contact: [ticket.created, chat.started]\n"
                   "  unused: [x.y]\n"
                   "signals:\n"
                   "  - {id: W1, name: W1, severity: LOW, condition: 'count(\"contact\", 1h) > 1'}\n"
                   "  - {id: W2, name: W2, severity: LOW, condition: 'count(\"contact\", 3d) > 5'}\n"
                   "  - {id: W3, name: W3, severity: LOW, condition: 'count(\"contact\", 90m) > 2'}\n",
                   NULL),
              0);
    ASSERT_EQ(r.class_window[class_id(&r, "contact")], 3 * FW_DAY);
    ASSERT_EQ(r.class_window[class_id(&r, "unused")], 0);
    rules_cleanup(&r);
}

/* A type listed twice in a class belongs to it once, so its events are counted once. */
static void class_lists_a_type_once(void)
{
    struct rules r;
    ASSERT_EQ(load(&r, "d.yaml",
                   "pack: d\n"
                   "classes:\n"
                   "  contact: [ticket.created, chat.started, ticket.created]\n"
                   "  touch: [ticket.created]\n"
                   "signals:\n"
                   "  - {id: D1, name: D1, severity: LOW, condition: 'count(\"contact\", 1h) > 1'}\n",
                   NULL),
              0);
    const struct rule_type *t = type_of(&r, "ticket.created");
    ASSERT_EQ(t->nclasses, 2);
    ASSERT_EQ(t->classes[0], class_id(&r, "contact"));
    ASSERT_EQ(t->classes[1], class_id(&r, "touch"));
    rules_cleanup(&r);
}

static void systemic_settings(void)
{
    struct rules r;
    struct buf b;
    buf_init(&b, 0);
    ASSERT_EQ(load(&r, "s.yaml",
                   "pack: s\n"
                   "common_factors: [customer.zip, customer.plan]\n"
                   "signals:\n"
                   "  - {id: S1, name: S1, severity: LOW, condition: x.a == 1, systemic: true}\n"
                   "  - {id: S2, name: S2, severity: LOW, condition: x.a == 2, systemic: false}\n"
                   "  - {id: S3, name: S3, severity: LOW, condition: x.a == 3}\n"
                   "  - id: S4\n"
                   "    name: S4\n"
                   "    severity: CRITICAL\n"
                   "    condition: x.a == 4\n"
                   "    systemic: {min_customers: 12, window: 1h30m, factors: [x.region]}\n",
                   NULL),
              0);
    const struct rule_signal *s1 = rules_signal(&r, "S1"), *s2 = rules_signal(&r, "S2"),
                             *s3 = rules_signal(&r, "S3"), *s4 = rules_signal(&r, "S4");
    ASSERT(s1->systemic);
    ASSERT_EQ(s1->min_customers, 3);
    ASSERT_EQ(s1->window, FW_DAY);
    ASSERT_STREQ(factor_names(&r, s1, &b), "customer.zip,customer.plan");
    ASSERT(!s2->systemic);
    ASSERT(!s3->systemic);
    ASSERT_EQ(s3->nfactors, 0); /* not systemic: no factors copied */
    ASSERT(s4->systemic);
    ASSERT_EQ(s4->min_customers, 12);
    ASSERT_EQ(s4->window, 90 * FW_MINUTE);
    ASSERT_STREQ(factor_names(&r, s4, &b), "x.region");
    ASSERT(s1->description == NULL && s1->team == NULL && s1->root_cause == NULL);
    ASSERT_EQ(s4->line, 7);
    ASSERT_EQ(s4->col, 9);
    buf_cleanup(&b);
    rules_cleanup(&r);
}

/* A set without signals, and files that cannot be read. */
static void no_signals_and_files(void)
{
    struct rules r;
    rules_init(&r);
    ASSERT_EQ(rules_finish(&r), FW_EPARSE);
    ASSERT_STREQ(r.diag.data, "error: no signals loaded\n");
    ASSERT(!r.finished);
    rules_cleanup(&r);

    rules_init(&r);
    ASSERT_EQ(rules_add_file(&r, "no/such/pack.yaml"), FW_EIO);
    ASSERT_EQ(r.nerrors, 1);
    ASSERT_STREQ(r.diag.data, "no/such/pack.yaml: error: cannot read: No such file or directory\n");
    rules_cleanup(&r);

    /* A real file: messages carry the path it was opened by. */
    rules_init(&r);
    ASSERT_EQ(rules_add_file(&r, "../rules/bad_severity.yaml"), FW_EPARSE);
    ASSERT_EQ(rules_finish(&r), FW_EPARSE);
    ASSERT_EQ(r.nerrors, 1);
    ASSERT_STREQ(r.diag.data, "../rules/bad_severity.yaml:6:15: error: unknown severity 'URGENT' "
                              "(expected CRITICAL, HIGH, MEDIUM or LOW)\n"
                              "        severity: URGENT\n"
                              "                  ^\n");
    rules_cleanup(&r);
}

/* A failed finish keeps going: every condition that compiles is compiled and freed later. */
static void failed_finish_compiles_the_rest(void)
{
    struct rules r;
    ASSERT_EQ(load(&r, "f.yaml",
                   "pack: f\n"
                   "signals:\n"
                   "  - {id: F1, name: F1, severity: LOW, condition: x.a == 1}\n"
                   "  - {id: F2, name: F2, severity: LOW, condition: nosuch(x.a)}\n"
                   "  - {id: F3, name: F3, severity: LOW, condition: 'count(\"c\", 1h) > 1'}\n"
                   "  - {id: F4, name: F4, severity: LOW, condition: x.a == 4}\n",
                   NULL),
              FW_EPARSE);
    ASSERT_EQ(r.nerrors, 2);
    ASSERT(r.signals[0].cond != NULL);
    ASSERT(r.signals[1].cond == NULL);
    ASSERT(r.signals[2].cond == NULL);
    ASSERT(r.signals[3].cond != NULL);
    ASSERT(!r.finished);
    /* Finishing again reports the same and leaks nothing (the sanitizer build checks). */
    unsigned nerrors = r.nerrors;
    ASSERT_EQ(rules_finish(&r), FW_EPARSE);
    ASSERT_EQ(r.nerrors, nerrors + 2);
    rules_cleanup(&r);

    /* After a successful finish, finishing again changes nothing. */
    ASSERT_EQ(load(&r, "g.yaml",
                   "pack: g\n"
                   "classes: {c: [x.y]}\n"
                   "signals:\n"
                   "  - {id: G1, name: G1, severity: LOW, condition: 'count(\"c\", 1h) > 1'}\n",
                   NULL),
              0);
    const int64_t *windows = r.class_window;
    ASSERT_EQ(rules_finish(&r), 0);
    ASSERT(r.class_window == windows);
    ASSERT_EQ(r.class_window[0], FW_HOUR);
    ASSERT_EQ(r.nerrors, 0);
    rules_cleanup(&r);
}

/* CRLF line ends: the CR before each line break is not a column of the next line. */
static void crlf_positions(void)
{
    struct rules r;
    ASSERT_EQ(load(&r, "crlf.yaml",
                   "pack: c\r\n"
                   "signals:\r\n"
                   "  - id: SIG-CR\r\n"
                   "    name: CRLF\r\n"
                   "    severity: HIGH\r\n"
                   "    condition: >-\r\n"
                   "      esim.status == \"A\"\r\n"
                   "      and x.y == 1\r\n"
                   "      and nosuch(x.y)\r\n",
                   NULL),
              FW_EPARSE);
    ASSERT_STREQ(r.diag.data, "crlf.yaml:9:11: error: SIG-CR: unknown function 'nosuch'\n"
                              "          and nosuch(x.y)\n"
                              "              ^\n");
    rules_cleanup(&r);
}

/* YAML values as JSON (rule-test events and expectations): numbers that do not fit. */
static void yaml_numbers_to_json(void)
{
    const char *text = "int: 42\n"
                       "neg: -7\n"
                       "real: 1.5\n"
                       "quoted: \"42\"\n"
                       "huge: 99999999999999999999\n"
                       "inf: 1e999\n"
                       "list: [1, 1e999, 2]\n"
                       "null: ~\n"
                       "yes: true\n";
    struct ydoc d;
    struct buf diag;
    buf_init(&diag, 0);
    ASSERT_EQ(ydoc_load(&d, "t.yaml", text, strlen(text), &diag), 0);
    json_t *j = yaml_to_json(&d, ydoc_root(&d));
    ydoc_cleanup(&d);
    buf_cleanup(&diag);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    int ok = s && !strcmp(s, "{\"huge\":1e20,\"inf\":\"1e999\",\"int\":42,\"list\":[1,\"1e999\",2],"
                             "\"neg\":-7,\"null\":null,\"quoted\":\"42\",\"real\":1.5,\"yes\":true}");
    if (!ok)
        fprintf(stderr, "    got %s\n", s ? s : "(null)");
    free(s);
    ASSERT(ok);
}

/* ---- tests/cases/rules/errors.test ---- */

#define MAX_PACKS 8

struct rcase {
    char title[200];
    int line; /* of the === line, for messages */
    size_t npacks;
    char *names[MAX_PACKS];
    struct buf texts[MAX_PACKS];
    struct buf errors; /* expected lines, each ending in \n */
};

static void rcase_reset(struct rcase *c)
{
    for (size_t i = 0; i < c->npacks; i++) {
        free(c->names[i]);
        buf_cleanup(&c->texts[i]);
    }
    buf_cleanup(&c->errors);
    memset(c, 0, sizeof *c);
    buf_init(&c->errors, 0);
}

/* Line `n` (1-based) of text, without its line break; NULL past the end. */
static const char *nth_line(const char *text, size_t len, size_t n, size_t *out_len)
{
    size_t i = 0;
    for (size_t l = 1; l < n; l++) {
        const char *nl = memchr(text + i, '\n', len - i);
        if (!nl)
            return NULL;
        i = (size_t)(nl - text) + 1;
    }
    size_t e = i;
    while (e < len && text[e] != '\n' && text[e] != '\r')
        e++;
    *out_len = e - i;
    return text + i;
}

/* Characters (not UTF-8 continuation bytes) in s[0..n). */
static size_t nchars(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/*
 * Check the source line and caret that follow an error line in diag.
 * Returns NULL when they are right, else what is wrong.
 */
static const char *check_quote(const struct rcase *c, const char *msg, const char **p)
{
    char name[128];
    unsigned line, col;
    if (sscanf(msg, "%127[^:]:%u:%u: error: ", name, &line, &col) != 3)
        return NULL; /* no position: nothing is quoted */
    const struct buf *text = NULL;
    for (size_t i = 0; i < c->npacks; i++)
        if (!strcmp(c->names[i], name))
            text = &c->texts[i];
    if (!text)
        return "error names a file the case does not have";
    size_t slen = 0;
    const char *src = nth_line(text->data ? text->data : "", text->len, line, &slen);
    if (!src)
        return "line is past the end of the file";
    const char *q = *p, *nl = strchr(q, '\n');
    if (!nl || strncmp(q, "    ", 4) || (size_t)(nl - q - 4) != slen || memcmp(q + 4, src, slen))
        return "the next line is not the source line";
    q = nl + 1;
    nl = strchr(q, '\n');
    const char *caret = nl ? memchr(q, '^', (size_t)(nl - q)) : NULL;
    if (!caret || caret + 1 != nl || strncmp(q, "    ", 4))
        return "no caret line";
    size_t at = (size_t)(caret - q) - 4, want = col - 1, width = nchars(src, slen);
    if (at != (want < width ? want : width))
        return "the caret is not under the column";
    *p = nl + 1;
    return NULL;
}

/* Run one case; returns 0 when it holds, else prints why. */
static int run_case(struct rcase *c)
{
    struct rules r;
    struct buf got;
    int fails = 0;
    rules_init(&r);
    buf_init(&got, 0);
    for (size_t i = 0; i < c->npacks; i++)
        rules_add_text(&r, c->names[i], c->texts[i].data ? c->texts[i].data : "", c->texts[i].len);
    int rc = rules_finish(&r);
    const char *p = r.diag.data ? r.diag.data : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (!strncmp(p, "    ", 4)) {
            fprintf(stderr, "    %s:%d: %s: unexpected quote line: %.*s\n", CASES_FILE, c->line,
                    c->title, (int)n, p);
            fails++;
        } else {
            buf_append(&got, p, n);
            buf_putc(&got, '\n');
        }
        const char *msg = p;
        p += n + (nl ? 1 : 0);
        if (!strncmp(msg, "    ", 4))
            continue;
        const char *why = check_quote(c, msg, &p);
        if (why) {
            fprintf(stderr, "    %s:%d: %s: %s: %.*s\n", CASES_FILE, c->line, c->title, why, (int)n,
                    msg);
            fails++;
        }
    }
    const char *g = got.data ? got.data : "", *w = c->errors.data ? c->errors.data : "";
    if (strcmp(g, w)) {
        fprintf(stderr, "    %s:%d: %s:\n      expected:\n%s      got:\n%s", CASES_FILE, c->line,
                c->title, w, g);
        fails++;
    }
    if (rc != FW_EPARSE || r.nerrors == 0 || r.finished) {
        fprintf(stderr, "    %s:%d: %s: rules_finish returned %d with %u errors\n", CASES_FILE,
                c->line, c->title, rc, r.nerrors);
        fails++;
    }
    buf_cleanup(&got);
    rules_cleanup(&r);
    return fails;
}

static void error_cases(void)
{
    FILE *fp = fopen(CASES_FILE, "r");
    ASSERT(fp != NULL);
    struct rcase c;
    memset(&c, 0, sizeof c);
    rcase_reset(&c);
    char line[1024];
    int lineno = 0, ncases = 0, nfail = 0, in_case = 0;
    struct buf *into = NULL; /* where pack lines go; NULL outside a pack */
    int in_errors = 0;
    for (;;) {
        int eof = !fgets(line, sizeof line, fp);
        if (!eof)
            lineno++;
        if (eof || !strncmp(line, "=== ", 4)) {
            if (in_case) {
                ncases++;
                nfail += run_case(&c) != 0;
            }
            if (eof)
                break;
            rcase_reset(&c);
            snprintf(c.title, sizeof c.title, "%.*s", (int)strcspn(line + 4, "\n"), line + 4);
            c.line = lineno;
            in_case = 1;
            into = NULL;
            in_errors = 0;
            continue;
        }
        if (!in_case)
            continue; /* the header comment */
        if (!strncmp(line, "--- ", 4)) {
            line[strcspn(line, "\n")] = '\0';
            into = NULL;
            in_errors = !strcmp(line + 4, "errors");
            if (!in_errors) {
                ASSERT(c.npacks < MAX_PACKS);
                c.names[c.npacks] = xstrdup(line + 4);
                buf_init(&c.texts[c.npacks], 0);
                into = &c.texts[c.npacks++];
            }
            continue;
        }
        if (into) {
            buf_puts(into, line);
        } else if (in_errors && line[0] != '\n' && line[0] != '#') {
            buf_puts(&c.errors, line);
        }
    }
    fclose(fp);
    rcase_reset(&c);
    buf_cleanup(&c.errors);
    ASSERT_EQ(nfail, 0);
    ASSERT(ncases >= 30); /* the file really was read */
}

const struct test rules_tests[] = {
    {"builtin_pack", builtin_pack},
    {"type_ids", type_ids},
    {"severities", severities},
    {"packs_refer_to_each_other", packs_refer_to_each_other},
    {"class_window_longest", class_window_longest},
    {"class_lists_a_type_once", class_lists_a_type_once},
    {"systemic_settings", systemic_settings},
    {"no_signals_and_files", no_signals_and_files},
    {"failed_finish_compiles_the_rest", failed_finish_compiles_the_rest},
    {"crlf_positions", crlf_positions},
    {"yaml_numbers_to_json", yaml_numbers_to_json},
    {"error_cases", error_cases},
    {NULL, NULL},
};
