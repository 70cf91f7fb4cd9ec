/*
 * json_choice.c -- jansson, cJSON and json-c on the bodies forewarn ingests.
 *
 * Generates N realistic CloudEvents NDJSON lines (deterministic; 250-400
 * bytes, nested data with arrays, numbers, booleans, the odd escape and
 * non-ASCII letter), then for each library and configuration measures
 * parse + free of every line, and parse + the lookups ingest does + free.
 * Wall-clock figures are the best of five rounds; for instruction counts
 * that the machine's noise cannot touch, run one library under callgrind
 * (see bench/README.md).  Finally it feeds each library the same malformed
 * body and prints what its error tells a user.
 *
 * Usage: json_choice [LINES [LIB]]   LIB: all (default), none, jansson,
 * jansson-dup, cjson, jsonc, jsonc-strict.  "none" only generates, as the
 * baseline for callgrind.
 */
#define _GNU_SOURCE
#include <cJSON.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/json.h"

/*
 * json-c's headers cannot share a translation unit with jansson's: both
 * declare json_object, json_object_get and json_object_iter_next.  The
 * libraries themselves coexist (both version their symbols), so the few
 * json-c calls used here are declared by hand, as in json-c 0.16.
 */
struct json_object;
struct json_tokener;
#define JSON_TOKENER_STRICT 0x01
#define JSON_TOKENER_VALIDATE_UTF8 0x10
struct json_tokener *json_tokener_new(void);
void json_tokener_free(struct json_tokener *tok);
void json_tokener_reset(struct json_tokener *tok);
void json_tokener_set_flags(struct json_tokener *tok, int flags);
struct json_object *json_tokener_parse_ex(struct json_tokener *tok, const char *str, int len);
size_t json_tokener_get_parse_end(struct json_tokener *tok);
int json_tokener_get_error(struct json_tokener *tok); /* enum json_tokener_error */
const char *json_tokener_error_desc(int jerr);
int json_object_put(struct json_object *obj);
int json_object_object_get_ex(const struct json_object *obj, const char *key,
                              struct json_object **value);
const char *json_object_get_string(struct json_object *obj);
double json_object_get_double(const struct json_object *obj);

struct corpus {
    char *text;  /* all lines, '\n'-separated */
    size_t len;  /* bytes */
    size_t *off; /* line i starts at text + off[i] */
    size_t *n;   /* and has n[i] bytes, without '\n' */
    size_t lines;
};

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static const char *pick(const char *const *v, size_t n)
{
    return v[rng() % n];
}

/* One CloudEvents line per call, appended to c->text. */
static void gen_line(struct corpus *c, size_t i, size_t *cap)
{
    static const char *const types[] = {
        "order.placed",     "order.shipped",   "payment.failed",        "payment.succeeded",
        "delivery.delayed", "session.started", "support.ticket.opened", "app.crash",
    };
    static const char *const channels[] = {"web", "ios", "android", "store", "api"};
    static const char *const notes[] = {
        "first order this quarter",        "customer asked about \\\"express\\\" delivery",
        "retry after 3DS challenge",       "carrier: DHL Express, hub M\\u00fcnchen",
        "address changed during checkout", "caf\xc3\xa9 loyalty card applied",
    };
    char line[1024];
    uint64_t r = rng();
    int items = 1 + (int)(rng() % 2);
    int n =
        snprintf(line, sizeof line,
                 "{\"specversion\":\"1.0\",\"id\":\"evt-%016llx\",\"type\":\"%s\","
                 "\"source\":\"/shop/eu-%d\",\"subject\":\"cust-%06u\","
                 "\"time\":\"2026-01-%02uT%02u:%02u:%02u.%03uZ\",%s\"data\":{\"order\":{"
                 "\"id\":\"ord-%08u\",\"total\":%u.%02u,\"items\":[",
                 (unsigned long long)r, pick(types, 8), (int)(rng() % 4),
                 (unsigned)(rng() % 1000000), 1 + (unsigned)(rng() % 28), (unsigned)(rng() % 24),
                 (unsigned)(rng() % 60), (unsigned)(rng() % 60), (unsigned)(rng() % 1000),
                 rng() % 8 ? "" : "\"datacontenttype\":\"application/json\",",
                 (unsigned)(rng() % 100000000), (unsigned)(rng() % 2000), (unsigned)(rng() % 100));
    for (int k = 0; k < items; k++)
        n += snprintf(line + n, sizeof line - (size_t)n, "%s{\"sku\":\"S%05u\",\"qty\":%u}",
                      k ? "," : "", (unsigned)(rng() % 100000), 1 + (unsigned)(rng() % 5));
    n += snprintf(line + n, sizeof line - (size_t)n,
                  "]},\"channel\":\"%s\",\"attempt\":%u,\"flags\":{\"vip\":%s}", pick(channels, 5),
                  (unsigned)(rng() % 4), rng() % 5 ? "false" : "true");
    if (rng() % 3 == 0)
        n += snprintf(line + n, sizeof line - (size_t)n, ",\"note\":\"%s\"", pick(notes, 6));
    n += snprintf(line + n, sizeof line - (size_t)n, "}}");
    if (c->len + (size_t)n + 1 > *cap) {
        *cap = (*cap + (size_t)n + 1) * 2;
        c->text = realloc(c->text, *cap);
        if (!c->text)
            abort();
    }
    c->off[i] = c->len;
    c->n[i] = (size_t)n;
    memcpy(c->text + c->len, line, (size_t)n);
    c->len += (size_t)n;
    c->text[c->len++] = '\n';
}

static void corpus_make(struct corpus *c, size_t lines)
{
    size_t cap = lines * 400;
    c->text = malloc(cap);
    c->off = malloc(lines * sizeof *c->off);
    c->n = malloc(lines * sizeof *c->n);
    if (!c->text || !c->off || !c->n)
        abort();
    c->len = 0;
    c->lines = lines;
    for (size_t i = 0; i < lines; i++)
        gen_line(c, i, &cap);
}

/* ---- one function per library: parse every line (and maybe look up), free ---- */

#define FASTPATH 0x40000000u /* not a jansson flag: use fw_json_loadb */

static volatile double sink; /* keeps lookups from being optimised away */

__attribute__((noinline)) static size_t run_jansson(const struct corpus *c, size_t flags,
                                                    int lookup)
{
    size_t ok = 0;
    for (size_t i = 0; i < c->lines; i++) {
        json_error_t err;
        json_t *j = (flags & FASTPATH) ? fw_json_loadb(c->text + c->off[i], c->n[i],
                                                       flags & ~(size_t)FASTPATH, &err)
                                       : json_loadb(c->text + c->off[i], c->n[i], flags, &err);
        if (!j)
            continue;
        if (lookup) {
            const char *id = json_string_value(json_object_get(j, "id"));
            const char *ty = json_string_value(json_object_get(j, "type"));
            const char *su = json_string_value(json_object_get(j, "subject"));
            const char *tm = json_string_value(json_object_get(j, "time"));
            json_t *order = json_object_get(json_object_get(j, "data"), "order");
            sink +=
                json_number_value(json_object_get(order, "total")) + id[0] + ty[0] + su[0] + tm[0];
        }
        json_decref(j);
        ok++;
    }
    return ok;
}

__attribute__((noinline)) static size_t run_cjson(const struct corpus *c, int lookup)
{
    size_t ok = 0;
    for (size_t i = 0; i < c->lines; i++) {
        cJSON *j = cJSON_ParseWithLength(c->text + c->off[i], c->n[i]);
        if (!j)
            continue;
        if (lookup) {
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "id"));
            const char *ty = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "type"));
            const char *su = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "subject"));
            const char *tm = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "time"));
            cJSON *order = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(j, "data"), "order");
            sink += cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(order, "total")) + id[0] +
                    ty[0] + su[0] + tm[0];
        }
        cJSON_Delete(j);
        ok++;
    }
    return ok;
}

static const char *jc_str(struct json_object *o, const char *k)
{
    struct json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

__attribute__((noinline)) static size_t run_jsonc(const struct corpus *c, int flags, int lookup)
{
    size_t ok = 0;
    struct json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, flags);
    for (size_t i = 0; i < c->lines; i++) {
        json_tokener_reset(tok);
        struct json_object *j = json_tokener_parse_ex(tok, c->text + c->off[i], (int)c->n[i]);
        if (!j)
            continue;
        if (json_tokener_get_parse_end(tok) != c->n[i]) { /* trailing bytes: an error */
            json_object_put(j);
            continue;
        }
        if (lookup) {
            struct json_object *data, *order, *total;
            const char *id = jc_str(j, "id"), *ty = jc_str(j, "type");
            const char *su = jc_str(j, "subject"), *tm = jc_str(j, "time");
            double t = 0;
            if (json_object_object_get_ex(j, "data", &data) &&
                json_object_object_get_ex(data, "order", &order) &&
                json_object_object_get_ex(order, "total", &total))
                t = json_object_get_double(total);
            sink += t + id[0] + ty[0] + su[0] + tm[0];
        }
        json_object_put(j);
        ok++;
    }
    json_tokener_free(tok);
    return ok;
}

struct lib {
    const char *name;
    const char *note;
    size_t (*run)(const struct corpus *c, int lookup);
};

static size_t r_jansson(const struct corpus *c, int lookup)
{
    return run_jansson(c, 0, lookup);
}
static size_t r_jansson_dup(const struct corpus *c, int lookup)
{
    return run_jansson(c, JSON_REJECT_DUPLICATES, lookup);
}
static size_t r_fw(const struct corpus *c, int lookup)
{
    return run_jansson(c, FASTPATH | JSON_REJECT_DUPLICATES, lookup);
}
static size_t r_cjson(const struct corpus *c, int lookup)
{
    return run_cjson(c, lookup);
}
static size_t r_jsonc(const struct corpus *c, int lookup)
{
    return run_jsonc(c, 0, lookup);
}
static size_t r_jsonc_strict(const struct corpus *c, int lookup)
{
    return run_jsonc(c, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8, lookup);
}

static const struct lib libs[] = {
    {"jansson", "defaults (validates UTF-8)", r_jansson},
    {"jansson-dup", "+JSON_REJECT_DUPLICATES, as ingest uses it", r_jansson_dup},
    {"fw-jansson", "forewarn's scanner building jansson values (src/util/json.c)", r_fw},
    {"cjson", "defaults (no UTF-8 check)", r_cjson},
    {"jsonc", "defaults (lenient, no UTF-8 check)", r_jsonc},
    {"jsonc-strict", "STRICT|VALIDATE_UTF8", r_jsonc_strict},
};
#define NLIBS (sizeof libs / sizeof libs[0])

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double best_of(const struct lib *l, const struct corpus *c, int lookup, int rounds)
{
    double best = 1e30;
    for (int r = 0; r < rounds; r++) {
        double t0 = now_s();
        size_t ok = l->run(c, lookup);
        double t = now_s() - t0;
        if (ok != c->lines) {
            fprintf(stderr, "json_choice: %s parsed %zu of %zu lines\n", l->name, ok, c->lines);
            exit(1);
        }
        if (t < best)
            best = t;
    }
    return best;
}

/* ---- what an error tells the user ---- */

static void show_errors(void)
{
    /* The comma is missing at the end of line 3: the error is at line 4, column 3. */
    static const char bad[] = "{\n  \"specversion\": \"1.0\",\n  \"id\": \"evt-1\"\n  \"type\": "
                              "\"order.placed\"\n}";
    size_t n = sizeof bad - 1;
    printf("\nerrors for a body missing a comma at the end of line 3:\n");

    json_error_t jerr;
    json_t *j = json_loadb(bad, n, 0, &jerr);
    if (!j)
        printf("  %-12s line %d, column %d, byte %d: %s\n", "jansson", jerr.line, jerr.column,
               jerr.position, jerr.text);
    json_decref(j);

    const char *end = NULL;
    cJSON *cj = cJSON_ParseWithLengthOpts(bad, n, &end, 0);
    if (!cj)
        printf("  %-12s no message, no line/column; only a pointer to byte %td "
               "(cJSON_GetErrorPtr, global state)\n",
               "cjson", end ? end - bad : -1);
    cJSON_Delete(cj);

    struct json_tokener *tok = json_tokener_new();
    struct json_object *o = json_tokener_parse_ex(tok, bad, (int)n);
    if (!o)
        printf("  %-12s \"%s\" at byte %zu; no line/column\n", "jsonc",
               json_tokener_error_desc(json_tokener_get_error(tok)),
               json_tokener_get_parse_end(tok));
    json_object_put(o);
    json_tokener_free(tok);
}

int main(int argc, char **argv)
{
    size_t lines = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    const char *which = argc > 2 ? argv[2] : "all";
    struct corpus c;
    json_object_seed(1); /* fixed hash seed: runs are comparable under callgrind */
    corpus_make(&c, lines);
    if (!strcmp(which, "none"))
        return 0;
    for (size_t i = 0; i < NLIBS; i++) {
        if (strcmp(which, "all") && strcmp(which, libs[i].name))
            continue;
        if (strcmp(which, "all")) { /* one library, one pass: for callgrind */
            libs[i].run(&c, 0);
            return 0;
        }
    }
    if (strcmp(which, "all")) {
        fprintf(stderr, "json_choice: unknown library %s\n", which);
        return 2;
    }
    size_t minl = SIZE_MAX, maxl = 0;
    for (size_t i = 0; i < c.lines; i++) {
        minl = c.n[i] < minl ? c.n[i] : minl;
        maxl = c.n[i] > maxl ? c.n[i] : maxl;
    }
    printf("%zu CloudEvents NDJSON lines, %zu to %zu bytes, %.1f MB; best of 5 rounds\n\n", c.lines,
           minl, maxl, (double)c.len / 1e6);
    printf("%-13s %12s %10s %9s   %12s %10s   %s\n", "library", "parse+free", "events/s", "MB/s",
           "+5 lookups", "events/s", "configuration");
    for (size_t i = 0; i < NLIBS; i++) {
        double t = best_of(&libs[i], &c, 0, 5);
        double tl = best_of(&libs[i], &c, 1, 5);
        printf("%-13s %9.0f ns %10.0f %9.1f   %9.0f ns %10.0f   %s\n", libs[i].name,
               t * 1e9 / (double)c.lines, (double)c.lines / t, (double)c.len / t / 1e6,
               tl * 1e9 / (double)c.lines, (double)c.lines / tl, libs[i].note);
    }
    show_errors();
    free(c.text);
    free(c.off);
    free(c.n);
    return 0;
}
