/*
 * test_expr.c -- the condition language: the spec cases of
 * tests/cases/expr/eval.test, every example of docs/rules.md, error
 * positions, introspection, and a property check that `next` is never late.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "expr/expr.h"
#include "fake.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/util.h"

#define CASES_FILE "../cases/expr/eval.test"
#define DOC_FILE "../../docs/rules.md"

/* ---- one case: compile, evaluate, compare with the expected text ---- */

static int starts(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && !memcmp(s, prefix, k);
}

/* Last occurrence of needle in s[0..n). */
static const char *last_of(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = n >= k ? n - k + 1 : 0; i-- > 0;)
        if (!memcmp(s + i, needle, k))
            return s + i;
    return NULL;
}

/*
 * Check src against `expect`:
 *   <value> [next <time> | next +<duration> | next never]
 *   error <message substring> [at <line>:<col>]
 * `cond` compiles with expr_compile (a condition), otherwise with
 * expr_compile_value.  A boolean result is checked through expr_test too.
 * Returns 0 when the case holds; otherwise prints why, prefixed by where.
 */
static int check_case(struct fake *f, int cond, const char *src, size_t srclen, const char *expect,
                      size_t elen, const char *where)
{
    struct expr *e = NULL;
    struct expr_error err;
    int fails = 0;
    expect = fake_trim(expect, &elen);
    int rc = cond ? expr_compile(src, srclen, &f->res, &e, &err)
                  : expr_compile_value(src, srclen, &f->res, &e, &err);
    if (starts(expect, elen, "error ")) {
        const char *msg = expect + 6, *at = last_of(expect, elen, " at ");
        size_t mlen = elen - 6;
        unsigned line = 0, col = 0;
        if (at && sscanf(at, " at %u:%u", &line, &col) == 2)
            mlen = (size_t)(at - msg);
        msg = fake_trim(msg, &mlen);
        if (mlen >= 2 && msg[0] == '"' && msg[mlen - 1] == '"')
            msg++, mlen -= 2;
        if (rc == 0) {
            fprintf(stderr, "    %s: %.*s: compiled, expected error \"%.*s\"\n", where,
                    (int)srclen, src, (int)mlen, msg);
            expr_free(e);
            return 1;
        }
        if ((rc != FW_EPARSE && rc != FW_ETYPE) || !memmem(err.msg, strlen(err.msg), msg, mlen) ||
            (line && (err.line != line || err.col != col))) {
            fprintf(stderr, "    %s: %.*s: error \"%s\" at %u:%u (rc %d), expected \"%.*s\"", where,
                    (int)srclen, src, err.msg, err.line, err.col, rc, (int)mlen, msg);
            if (line)
                fprintf(stderr, " at %u:%u", line, col);
            fputc('\n', stderr);
            return 1;
        }
        return 0;
    }
    if (rc) {
        fprintf(stderr, "    %s: %.*s: error \"%s\" at %u:%u\n", where, (int)srclen, src, err.msg,
                err.line, err.col);
        return 1;
    }
    /* Split "<value> next <when>". */
    int64_t want_next = FW_TIME_MAX;
    size_t vlen = elen;
    const char *nx = last_of(expect, elen, " next ");
    if (nx) {
        const char *w = nx + 6;
        size_t wl = elen - (size_t)(w - expect);
        int64_t d;
        vlen = (size_t)(nx - expect);
        if (wl == 5 && !memcmp(w, "never", 5))
            want_next = FW_TIME_MAX;
        else if (wl > 1 && w[0] == '+' && !fw_duration_parse(w + 1, wl - 1, &d))
            want_next = f->now + d;
        else if (fw_time_parse(w, wl, &want_next)) {
            fprintf(stderr, "    %s: bad next time '%.*s'\n", where, (int)wl, w);
            expr_free(e);
            return 1;
        }
    }
    const struct expr_env *env = fake_env(f);
    struct value v;
    int64_t next = 0, tnext = 0;
    struct buf scratch, got;
    buf_init(&scratch, 0);
    buf_init(&got, 0);
    if (expr_eval(e, env, &v, &next, &scratch))
        buf_puts(&got, "(expr_eval failed)");
    else
        fake_format(&v, &got);
    int t = expr_test(e, env, &tnext);
    char nbuf[FW_TIME_MAXLEN] = "never";
    if (next != FW_TIME_MAX)
        fw_time_format(next, nbuf);
    if (got.len != vlen || memcmp(got.data, expect, vlen) || next != want_next) {
        char wbuf[FW_TIME_MAXLEN] = "never";
        if (want_next != FW_TIME_MAX)
            fw_time_format(want_next, wbuf);
        fprintf(stderr, "    %s: %.*s: got %s next %s, expected %.*s next %s\n", where,
                (int)srclen, src, got.data, nbuf, (int)vlen, expect, wbuf);
        fails++;
    }
    /*
     * expr_test is the same evaluation seen as a condition: null and
     * non-booleans are false.  (A moving non-boolean's next is now + 1 for
     * expr_eval only: as a condition it stays false.)
     */
    int truthy = v.type == VAL_BOOL || v.type == VAL_NULL;
    if (t != (v.type == VAL_BOOL && v.u.b) || (truthy && tnext != next)) {
        fprintf(stderr, "    %s: %.*s: expr_test gave %d next %lld, expr_eval %s next %lld\n",
                where, (int)srclen, src, t, (long long)tnext, got.data, (long long)next);
        fails++;
    }
    if (next <= env->now) {
        fprintf(stderr, "    %s: %.*s: next %lld is not after now\n", where, (int)srclen, src,
                (long long)next);
        fails++;
    }
    buf_cleanup(&scratch);
    buf_cleanup(&got);
    expr_free(e);
    return fails ? 1 : 0;
}

/* ---- tests/cases/expr/eval.test ---- */

static void spec_cases(void)
{
    FILE *fp = fopen(CASES_FILE, "r");
    ASSERT(fp != NULL);
    struct fake f;
    fake_init(&f);
    char line[4096], src[4096], where[64], why[256];
    int lineno = 0, srcline = 0, mode = -1, ncases = 0, nfail = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        size_t n = strlen(line);
        const char *s = fake_trim(line, &n);
        if (!n || s[0] == '#')
            continue;
        if (starts(s, n, "cond ") || starts(s, n, "value ") || (n == 4 && starts(s, n, "cond"))) {
            if (mode >= 0) {
                fprintf(stderr, "    %s:%d: case without '=>'\n", CASES_FILE, srcline);
                nfail++;
            }
            mode = s[0] == 'c';
            size_t k = mode ? 4 : 5, sl = n - k;
            const char *e = fake_trim(s + k, &sl);
            memcpy(src, e, sl);
            src[sl] = '\0';
            srcline = lineno;
            continue;
        }
        if (starts(s, n, "=>")) {
            if (mode < 0) {
                fprintf(stderr, "    %s:%d: '=>' without a case\n", CASES_FILE, lineno);
                nfail++;
                continue;
            }
            snprintf(where, sizeof where, "%s:%d", CASES_FILE, srcline);
            nfail += check_case(&f, mode, src, strlen(src), s + 2, n - 2, where);
            ncases++;
            mode = -1;
            continue;
        }
        char copy[4096];
        memcpy(copy, s, n);
        copy[n] = '\0';
        int r = fake_line(&f, copy, why, sizeof why);
        if (r <= 0) {
            fprintf(stderr, "    %s:%d: %s\n", CASES_FILE, lineno, r ? why : "unknown line");
            nfail++;
        }
    }
    fclose(fp);
    fake_cleanup(&f);
    ASSERT(ncases >= 150); /* the file really was read */
    ASSERT_EQ(nfail, 0);
}

/* ---- docs/rules.md: the example customer, the examples, the fw blocks ---- */

/* Split a markdown table row into cells (at most max), unescaping "\|". */
static size_t cells(const char *row, char out[][512], size_t max)
{
    size_t n = 0, len = 0;
    const char *p = row + 1; /* after the leading '|' */
    for (; *p && *p != '\n'; p++) {
        if (p[0] == '\\' && p[1] == '|') {
            if (len < 511)
                out[n][len++] = '|';
            p++;
        } else if (*p == '|') {
            out[n][len] = '\0';
            size_t l = len;
            const char *t = fake_trim(out[n], &l);
            memmove(out[n], t, l);
            out[n][l] = '\0';
            if (++n == max)
                break;
            len = 0;
        } else if (len < 511) {
            out[n][len++] = *p;
        }
    }
    return n;
}

/* Strip one pair of backticks around a cell's text, in place. */
static char *unquote(char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '`' && s[n - 1] == '`') {
        s[n - 1] = '\0';
        return s + 1;
    }
    return s;
}

/*
 * A doc result cell: `<value>` optionally followed by "until <time>" or
 * "moves with the clock", rewritten in the eval.test syntax
 * "<value> next <time>" (next +1ms for a moving value).
 */
static int doc_result(const char *cell, char *out, size_t outlen)
{
    const char *a = strchr(cell, '`'), *b = a ? strchr(a + 1, '`') : NULL;
    if (!a || !b)
        return -1;
    const char *until = strstr(b, "until ");
    if (strstr(b, "moves with the clock")) {
        snprintf(out, outlen, "%.*s next +1ms", (int)(b - a - 1), a + 1);
        return 0;
    }
    if (!until) {
        snprintf(out, outlen, "%.*s", (int)(b - a - 1), a + 1);
        return 0;
    }
    until += 6;
    size_t ul = strlen(until);
    const char *u = fake_trim(until, &ul);
    if (ul >= 2 && u[0] == '`')
        u++, ul -= 2;
    snprintf(out, outlen, "%.*s next %.*s", (int)(b - a - 1), a + 1, (int)ul, u);
    return 0;
}

static void doc_examples(void)
{
    FILE *fp = fopen(DOC_FILE, "r");
    ASSERT(fp != NULL);
    struct fake f, blocks;
    fake_init(&f);
    fake_init(&blocks);
    fake_declare(&blocks, EXPR_REF_CLASS, "contact", 7);
    fake_declare(&blocks, EXPR_REF_ENTITY, "ticket", 6);
    char line[4096], c[4][512], table[64] = "", where[64], expect[1200];
    struct buf block;
    buf_init(&block, 0);
    int lineno = 0, insec = 0, inblock = 0, fw = 0, blockline = 0;
    int nexamples = 0, nerrors = 0, nblocks = 0, nfail = 0, have_now = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        if (!strncmp(line, "```", 3)) {
            if (!inblock) {
                inblock = 1;
                fw = insec && !strncmp(line, "```fw", 5);
                blockline = lineno + 1;
                buf_reset(&block);
            } else {
                inblock = 0;
                if (fw) {
                    struct expr *e;
                    struct expr_error err;
                    nblocks++;
                    if (expr_compile(block.data ? block.data : "", block.len, &blocks.res, &e,
                                     &err)) {
                        fprintf(stderr, "    %s:%u:%u: fw block does not compile: %s\n", DOC_FILE,
                                blockline + err.line - 1, err.col, err.msg);
                        nfail++;
                    } else {
                        expr_free(e);
                    }
                }
            }
            continue;
        }
        if (inblock) {
            if (fw)
                buf_puts(&block, line);
            continue;
        }
        if (!strncmp(line, "## ", 3)) {
            insec = !strncmp(line, "## Condition language", 21);
            continue;
        }
        if (!insec)
            continue;
        const char *nowp = strstr(line, "`now` = `");
        if (nowp) {
            const char *t = nowp + 9, *end = strchr(t, '`');
            if (end && !fw_time_parse(t, (size_t)(end - t), &f.now))
                have_now = 1;
        }
        if (line[0] != '|') {
            table[0] = '\0';
            continue;
        }
        size_t nc = cells(line, c, 4);
        if (nc >= 1 && strstr(c[0], "---"))
            continue;
        if (!table[0]) {
            snprintf(table, sizeof table, "%s", nc ? c[0] : "?");
            continue;
        }
        snprintf(where, sizeof where, "%s:%d", DOC_FILE, lineno);
        char *k = unquote(c[0]);
        struct value v;
        if (!strcmp(table, "condition") && nc >= 2) {
            if (!have_now) {
                fprintf(stderr, "    %s: example before the example customer's now\n", where);
                nfail++;
            }
            if (doc_result(c[1], expect, sizeof expect)) {
                fprintf(stderr, "    %s: result cell needs a `value`\n", where);
                nfail++;
                continue;
            }
            nfail += check_case(&f, 0, k, strlen(k), expect, strlen(expect), where);
            nexamples++;
        } else if (!strcmp(table, "invalid condition") && nc >= 3) {
            snprintf(expect, sizeof expect, "error %s at 1:%s", c[2], c[1]);
            nfail += check_case(&blocks, 1, k, strlen(k), expect, strlen(expect), where);
            nerrors++;
        } else if ((!strcmp(table, "state key") || !strcmp(table, "global key")) && nc >= 3) {
            int g = table[0] == 'g';
            uint32_t id = fake_declare(&f, g ? EXPR_REF_GLOBAL : EXPR_REF_STATE, k, strlen(k));
            struct fake_kv *kv = g ? &f.global[id] : &f.state[id];
            char *val = unquote(c[1]), *since = unquote(c[2]);
            if (fake_value(&f, val, strlen(val), &v) ||
                fw_time_parse(since, strlen(since), &kv->since)) {
                fprintf(stderr, "    %s: bad value or time\n", where);
                nfail++;
            }
            kv->v = v;
        } else if (!strcmp(table, "event type") && nc >= 2) {
            char *t = unquote(c[1]);
            if (fw_time_parse(t, strlen(t), &f.last[fake_declare(&f, EXPR_REF_TYPE, k, strlen(k))])) {
                fprintf(stderr, "    %s: bad time\n", where);
                nfail++;
            }
        } else if (!strcmp(table, "event class") && nc >= 2) {
            char fx[600];
            snprintf(fx, sizeof fx, "events %s %s", k, c[1]);
            for (char *p = fx; *p; p++)
                if (*p == '`')
                    *p = ' ';
            char why[128];
            if (fake_line(&f, fx, why, sizeof why) != 1) {
                fprintf(stderr, "    %s: %s\n", where, why);
                nfail++;
            }
        } else if (!strcmp(table, "entity") && nc >= 2) {
            f.open[fake_declare(&f, EXPR_REF_ENTITY, k, strlen(k))] = strtoll(unquote(c[1]), 0, 10);
        } else if (!strcmp(table, "event field") && nc >= 2) {
            char *val = unquote(c[1]);
            if (f.nev == ARRAY_SIZE(f.ev) || fake_value(&f, val, strlen(val), &v)) {
                fprintf(stderr, "    %s: bad event field\n", where);
                nfail++;
                continue;
            }
            f.ev[f.nev].path = xstrdup(k);
            f.ev[f.nev++].v = v;
        }
    }
    fclose(fp);
    buf_cleanup(&block);
    fake_cleanup(&f);
    fake_cleanup(&blocks);
    ASSERT(have_now);
    ASSERT(nexamples >= 50); /* the tables really were found */
    ASSERT(nerrors >= 10);
    ASSERT(nblocks >= 3);
    ASSERT_EQ(nfail, 0);
}

/* ---- errors and introspection ---- */

static void error_positions(void)
{
    static const struct {
        const char *src;
        unsigned line, col;
        const char *msg;
    } cases[] = {
        {"agee(last(\"x\")) > 1h", 1, 1, "unknown function 'agee'"},
        {"a == 1\n  and agee(x)", 2, 7, "unknown function 'agee'"},
        {"a == 1 and\n\tcount(\"contactt\", 7d) > 2", 2, 8, "unknown event class 'contactt'"},
        {"age(x) > 48x", 1, 10, "bad duration '48x'"},
        {"age(last(\"p\")) > 5", 1, 16, "type mismatch: duration > number"},
        {"upper(x", 1, 8, "expected ')' after arguments"},
        {"upper(x y)", 1, 9, "expected ')' after arguments"},
        {"x =~ \"(\"", 1, 8, "bad regex '('"},
        {"x = 1", 1, 3, "use '=='"},
        {"\n\n   \"abc", 3, 4, "unterminated string"},
        {"x == \"a\\qb\"", 1, 8, "unknown escape"},
        {"a < b < c", 1, 7, "cannot be chained"},
        {"(a == 1", 1, 8, "expected ')'"},
        {"", 1, 1, "empty condition"},
        {"a == 1 b", 1, 8, "unexpected 'b'"},
        {"age(x)", 1, 1, "must be true or false, but this is a duration"},
        {"event.tipe == \"x\"", 1, 7, "unknown event field 'tipe'"},
        {"x == null", 1, 3, "use 'is null'"},
        {"age(now()) * 2 > 1h", 1, 12, "cannot scale a clock-dependent value"},
        {"open_count(\"tickets\") > 0", 1, 12, "unknown entity 'tickets'"},
        {"esim. status == 1", 1, 5, "expected a name after '.'"},
    };
    struct fake f;
    fake_init(&f);
    fake_declare(&f, EXPR_REF_CLASS, "contact", 7);
    fake_declare(&f, EXPR_REF_ENTITY, "ticket", 6);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct expr *e = (struct expr *)&f; /* must stay untouched */
        struct expr_error err;
        int rc = expr_compile(cases[i].src, strlen(cases[i].src), &f.res, &e, &err);
        if (rc == 0)
            expr_free(e);
        ASSERT(rc == FW_EPARSE || rc == FW_ETYPE);
        ASSERT(e == (struct expr *)&f);
        ASSERT_CONTAINS(err.msg, cases[i].msg);
        ASSERT_EQ(err.line, cases[i].line);
        ASSERT_EQ(err.col, cases[i].col);
        /* The offset and the line/column agree. */
        size_t off = 0;
        for (unsigned l = 1; l < err.line; l++)
            off = (size_t)(strchr(cases[i].src + off, '\n') - cases[i].src) + 1;
        ASSERT_EQ(err.offset, off + err.col - 1);
    }
    fake_cleanup(&f);
}

static void deps_and_timed(void)
{
    struct fake f;
    fake_init(&f);
    uint32_t contact = fake_declare(&f, EXPR_REF_CLASS, "contact", 7);
    uint32_t chat = fake_declare(&f, EXPR_REF_CLASS, "chat", 4);
    uint32_t ticket = fake_declare(&f, EXPR_REF_ENTITY, "ticket", 6);
    const char *src = "upper(esim.status) == \"PENDING\" and esim.status != \"X\"\n"
                      " and age(last(\"payment.completed\")) > 48h\n"
                      " and last(\"payment.completed\") is not null\n"
                      " and (count(\"contact\", 7d) >= 3 or count(\"contact\", 30d) > 9)\n"
                      " and has_open(\"ticket\") and customer.zip in global.outage.zips\n"
                      " and age(changed_at(global.outage.zips)) < 1h and event.type == \"x\"";
    struct expr *e;
    struct expr_error err;
    ASSERT_EQ(expr_compile(src, strlen(src), &f.res, &e, &err), 0);
    size_t n;
    const struct expr_dep *d = expr_deps(e, &n);
    struct {
        enum expr_ref kind;
        const char *name;
    } want[] = {
        {EXPR_REF_STATE, "esim.status"}, {EXPR_REF_TYPE, "payment.completed"},
        {EXPR_REF_CLASS, "contact"},     {EXPR_REF_ENTITY, "ticket"},
        {EXPR_REF_STATE, "customer.zip"}, {EXPR_REF_GLOBAL, "outage.zips"},
    };
    ASSERT_EQ(n, ARRAY_SIZE(want));
    for (size_t i = 0; i < n; i++) {
        ASSERT_EQ(d[i].kind, want[i].kind);
        ASSERT_STREQ(intern_str(&f.names[d[i].kind], d[i].id), want[i].name);
    }
    ASSERT(expr_is_timed(e));
    ASSERT_EQ(expr_max_window(e, contact), 30 * FW_DAY);
    ASSERT_EQ(expr_max_window(e, chat), 0);
    (void)ticket;
    expr_free(e);

    /* Timed only through now(), age() and count(); last() and changed_at() alone are not. */
    static const struct {
        const char *src;
        int timed;
    } t[] = {
        {"last(\"a\") < last(\"b\")", 0},
        {"changed_at(x) is null", 0},
        {"now() > last(\"a\")", 1},
        {"age(last(\"a\")) > 1h", 1},
        {"count(\"chat\", 1h) > 0", 1},
        {"x == 1", 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
        ASSERT_EQ(expr_compile(t[i].src, strlen(t[i].src), &f.res, &e, &err), 0);
        ASSERT_EQ(expr_is_timed(e), t[i].timed);
        expr_free(e);
    }
    expr_free(NULL);
    fake_cleanup(&f);
}

/* expr_eval copies string results into scratch; a cap that refuses them is an error. */
static void eval_scratch(void)
{
    struct fake f;
    fake_init(&f);
    char why[128];
    ASSERT_EQ(fake_line(&f, "state name \"Ada Lovelace\"", why, sizeof why), 1);
    struct expr *e;
    struct expr_error err;
    const char *src = "upper(name)";
    ASSERT_EQ(expr_compile_value(src, strlen(src), &f.res, &e, &err), 0);
    struct buf scratch;
    buf_init(&scratch, 0);
    buf_puts(&scratch, "prefix:");
    struct value v;
    int64_t next;
    ASSERT_EQ(expr_eval(e, fake_env(&f), &v, &next, &scratch), 0);
    ASSERT_EQ(v.type, VAL_STR);
    ASSERT_EQ(v.u.str.len, 12);
    ASSERT(!memcmp(v.u.str.ptr, "ADA LOVELACE", 12));
    ASSERT(v.u.str.ptr == scratch.data + 7);
    ASSERT_EQ(next, FW_TIME_MAX);
    buf_cleanup(&scratch);
    buf_init(&scratch, 4);
    ASSERT_EQ(expr_eval(e, fake_env(&f), &v, &next, &scratch), FW_ETOOBIG);
    ASSERT_EQ(v.type, VAL_NULL);
    buf_cleanup(&scratch);
    expr_free(e);
    fake_cleanup(&f);
}

/* Strings longer than the evaluator's stack space take the heap path (ASan checks the frees). */
static void long_strings(void)
{
    struct fake f;
    fake_init(&f);
    size_t n = 5000;
    char *big = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    memcpy(big + n - 6, "FAILED", 6);
    uint32_t id = fake_declare(&f, EXPR_REF_STATE, "resp", 4);
    f.state[id].v.type = VAL_STR;
    f.state[id].v.u.str.ptr = big;
    f.state[id].v.u.str.len = n;
    f.state[id].since = 0;
    static const struct {
        const char *src;
        int want;
    } cases[] = {
        {"resp =~ \"FAILED$\"", 1},
        {"upper(resp) =~ \"^ABC.*FAILED$\"", 1},
        {"lower(resp) contains \"failed\" and upper(resp) contains \"XYZ\"", 1},
        {"lower(upper(lower(resp))) == resp", 0},
        {"len(upper(resp)) == 5000 and len(lower(resp)) == 5000", 1},
        {"upper(resp) =~ \"^abc\"", 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct expr *e;
        struct expr_error err;
        ASSERT_EQ(expr_compile(cases[i].src, strlen(cases[i].src), &f.res, &e, &err), 0);
        int got = expr_test(e, fake_env(&f), NULL);
        expr_free(e);
        ASSERT_EQ(got, cases[i].want);
    }
    free(big);
    fake_cleanup(&f);
}

/* Deep nesting is refused with a message, never a crash. */
static void nesting_limits(void)
{
    struct fake f;
    fake_init(&f);
    struct buf b;
    struct expr *e;
    struct expr_error err;
    buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        buf_putc(&b, '(');
    buf_puts(&b, "x");
    for (int i = 0; i < 1000; i++)
        buf_putc(&b, ')');
    ASSERT_EQ(expr_compile(b.data, b.len, &f.res, &e, &err), FW_EPARSE);
    ASSERT_CONTAINS(err.msg, "nested too deeply");
    buf_reset(&b);
    for (int i = 0; i < 1000; i++)
        buf_puts(&b, "x == 1 or ");
    buf_puts(&b, "x == 2");
    ASSERT_EQ(expr_compile(b.data, b.len, &f.res, &e, &err), FW_EPARSE);
    ASSERT_CONTAINS(err.msg, "nested too deeply");
    /* A realistic long chain is fine. */
    buf_reset(&b);
    for (int i = 0; i < 50; i++)
        buf_printf(&b, "x == %d or ", i);
    buf_puts(&b, "x == 99");
    ASSERT_EQ(expr_compile(b.data, b.len, &f.res, &e, &err), 0);
    char why[64];
    ASSERT_EQ(fake_line(&f, "state x 99", why, sizeof why), 1);
    ASSERT_EQ(expr_test(e, fake_env(&f), NULL), 1);
    expr_free(e);
    buf_cleanup(&b);
    fake_cleanup(&f);
}

/* ---- property: the result does not change before `next` ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Each atom changes at most once as time passes (counts only fall), so combinations stay exact. */
static const char *const atoms[] = {
    "age(last(\"a\")) > 2h",
    "age(last(\"a\")) <= 90m",
    "now() - 1h < last(\"b\")",
    "last(\"b\") + 30m >= now()",
    "age(changed_at(k)) >= 45m",
    "last(\"b\") - now() > -2h",
    "now() > last(\"a\") + 5h",
    "age(last(\"a\")) - age(last(\"b\")) > 1h",
    "age(last(\"a\")) + age(last(\"b\")) > 3h",
    "age(last(\"a\")) + age(last(\"b\")) > 3h1ms",
    "-age(last(\"b\")) < -100m",
    "k == \"A\"",
    "age(last(\"missing\")) > 1h",
    "count(\"c\", 1d) >= 2",
    "count(\"c\", 3h) == 0",
    "coalesce(last(\"missing\"), last(\"a\")) < now() - 3h",
    "coalesce(zz == \"B\" or age(last(\"a\")) > 2h, false)",
};

static void gen(struct buf *b, int depth)
{
    unsigned r = (unsigned)(rnd() % 8);
    if (depth == 0 || r < 3) {
        buf_printf(b, "(%s)", atoms[rnd() % ARRAY_SIZE(atoms)]);
        return;
    }
    if (r == 3) {
        buf_puts(b, "not ");
        gen(b, depth - 1);
        return;
    }
    buf_putc(b, '(');
    gen(b, depth - 1);
    buf_puts(b, r < 6 ? " and " : " or ");
    gen(b, depth - 1);
    buf_putc(b, ')');
}

/* Evaluate src at each of several instants; the result holds until next, and flips there when exact. */
static int check_never_late(struct fake *f, const char *src, int exact, int64_t t0)
{
    struct expr *e;
    struct expr_error err;
    int fails = 0;
    if (expr_compile(src, strlen(src), &f->res, &e, &err)) {
        fprintf(stderr, "    %s: %s\n", src, err.msg);
        return 1;
    }
    static const int64_t offsets[] = {0, 1, FW_MINUTE, 20 * FW_MINUTE, 30 * FW_MINUTE, FW_HOUR,
                                      4 * FW_HOUR, 5 * FW_HOUR, FW_DAY, 3 * FW_DAY};
    for (size_t o = 0; o < ARRAY_SIZE(offsets); o++) {
        int64_t now = t0 + offsets[o], next;
        f->now = now;
        int v0 = expr_test(e, fake_env(f), &next);
        if (next <= now) {
            fprintf(stderr, "    %s at +%lld: next not after now\n", src, (long long)offsets[o]);
            fails++;
            continue;
        }
        int64_t horizon = next == FW_TIME_MAX ? now + 10 * FW_DAY : next;
        for (int k = 0; k < 24; k++) {
            int64_t t = k == 0 ? now + 1 : k == 1 ? horizon - 1 : now + (int64_t)(rnd() % (uint64_t)(horizon - now));
            if (t <= now || t >= horizon)
                continue;
            f->now = t;
            if (expr_test(e, fake_env(f), NULL) != v0) {
                fprintf(stderr, "    %s: at +%lld gives %d, but at +%lld it was already %d\n", src,
                        (long long)(t - t0), !v0, (long long)offsets[o], !v0);
                fails++;
                break;
            }
        }
        if (exact && next != FW_TIME_MAX) {
            f->now = next;
            if (expr_test(e, fake_env(f), NULL) == v0) {
                fprintf(stderr, "    %s: next %+lld from +%lld, but the result did not change\n",
                        src, (long long)(next - now), (long long)offsets[o]);
                fails++;
            }
        }
    }
    expr_free(e);
    return fails;
}

static void next_never_late(void)
{
    struct fake f;
    fake_init(&f);
    char why[128];
    int64_t t0;
    ASSERT_EQ(fw_time_parse("2026-01-05T10:00:00Z", 20, &t0), 0);
    f.now = t0;
    ASSERT_EQ(fake_line(&f, "last a 2026-01-05T09:00:00Z", why, sizeof why), 1);
    ASSERT_EQ(fake_line(&f, "last b 2026-01-05T09:30:00Z", why, sizeof why), 1);
    ASSERT_EQ(fake_line(&f, "state k \"A\" 2026-01-05T09:20:00Z", why, sizeof why), 1);
    ASSERT_EQ(fake_line(&f,
                        "events c 2026-01-04T14:00:00Z 2026-01-05T08:00:00Z 2026-01-05T09:50:00Z",
                        why, sizeof why),
              1);
    fake_declare(&f, EXPR_REF_TYPE, "missing", 7);
    int fails = 0;
    /*
     * A comparison, and its negation, flips exactly at next (a count's next
     * is when the count changes, which need not flip the comparison).  Pairs
     * are only checked for lateness: `A and B` with A false and B true
     * answers A's time, and B may turn false before it.
     */
    for (size_t i = 0; i < ARRAY_SIZE(atoms); i++) {
        char src[512];
        int exact = !strstr(atoms[i], "count");
        fails += check_never_late(&f, atoms[i], exact, t0);
        snprintf(src, sizeof src, "not (%s)", atoms[i]);
        fails += check_never_late(&f, src, exact, t0);
        for (size_t j = 0; j < ARRAY_SIZE(atoms); j++) {
            snprintf(src, sizeof src, "(%s) and (%s)", atoms[i], atoms[j]);
            fails += check_never_late(&f, src, 0, t0);
            snprintf(src, sizeof src, "(%s) or not (%s)", atoms[i], atoms[j]);
            fails += check_never_late(&f, src, 0, t0);
        }
    }
    /* Random combinations: never late (exactness is not promised for them). */
    struct buf b;
    buf_init(&b, 0);
    for (int i = 0; i < 300; i++) {
        buf_reset(&b);
        gen(&b, 4);
        fails += check_never_late(&f, b.data, 0, t0);
    }
    buf_cleanup(&b);
    fake_cleanup(&f);
    ASSERT_EQ(fails, 0);
}

/* The telecom pack's SIG-001 condition, end to end at the 48h boundary. */
static void sig001_boundary(void)
{
    struct fake f;
    fake_init(&f);
    char why[128];
    const char *src = "upper(esim.status) == \"PENDING\"\n"
                      "and last(\"payment.completed\") is not null\n"
                      "and last(\"activation.completed\") is null\n"
                      "and age(last(\"payment.completed\")) > 48h";
    struct expr *e;
    struct expr_error err;
    ASSERT_EQ(expr_compile(src, strlen(src), &f.res, &e, &err), 0);
    ASSERT_EQ(fake_line(&f, "state esim.status \"pending\"", why, sizeof why), 1);
    ASSERT_EQ(fake_line(&f, "last payment.completed 2026-01-03T10:00:00Z", why, sizeof why), 1);
    int64_t pay, next;
    ASSERT_EQ(fw_time_parse("2026-01-03T10:00:00Z", 20, &pay), 0);
    f.now = pay + 47 * FW_HOUR + 59 * FW_MINUTE;
    ASSERT_EQ(expr_test(e, fake_env(&f), &next), 0);
    ASSERT_EQ(next, pay + 48 * FW_HOUR);
    f.now = pay + 48 * FW_HOUR - 1;
    ASSERT_EQ(expr_test(e, fake_env(&f), &next), 0);
    ASSERT_EQ(next, pay + 48 * FW_HOUR);
    f.now = pay + 48 * FW_HOUR;
    ASSERT_EQ(expr_test(e, fake_env(&f), &next), 1);
    ASSERT_EQ(next, FW_TIME_MAX);
    /* Activation arrives: false for good. */
    ASSERT_EQ(fake_line(&f, "last activation.completed 2026-01-05T11:00:00Z", why, sizeof why), 1);
    ASSERT_EQ(expr_test(e, fake_env(&f), &next), 0);
    ASSERT_EQ(next, FW_TIME_MAX);
    expr_free(e);
    fake_cleanup(&f);
}

/*
 * Regular expressions: each pattern gets its place in the file for
 * run-time messages; a search stopped by a limit is null and counted; and
 * the per-thread match data lets threads search the same pattern at once.
 */
struct re_thread {
    const struct expr *e;
    const struct expr_env *env;
    int ok;
};

static void *re_search(void *arg)
{
    struct re_thread *t = arg;
    int64_t next;
    t->ok = 1;
    for (int i = 0; i < 200; i++)
        if (expr_test(t->e, t->env, &next) != 1)
            t->ok = 0;
    return NULL;
}

static void regex_places_limits_threads(void)
{
    struct fake f;
    char why[256];
    fake_init(&f);
    struct expr *e = NULL;
    struct expr_error err;
    const char *src = "note =~ \"^ok\" and\n  other =~ \"(a+)+$\"";
    ASSERT_EQ(expr_compile(src, strlen(src), &f.res, &e, &err), 0);
    ASSERT_EQ(expr_regex_count(e), 2);
    ASSERT_EQ(expr_regex_offset(e, 0), 8);
    ASSERT_EQ(expr_regex_offset(e, 1), 29);
    ASSERT(expr_regex_origin(e, 0) == NULL);
    /* The condition starts at line 7, column 16 of the file. */
    expr_regex_place(e, src, "p.yaml", 7, 16, "SIG-X");
    ASSERT_STREQ(expr_regex_origin(e, 0), "p.yaml:7:24 (SIG-X)");
    ASSERT_STREQ(expr_regex_origin(e, 1), "p.yaml:8:12 (SIG-X)");
    ASSERT(expr_regex_origin(e, 2) == NULL);

    /* (a+)+$ on 300 a's and a '!': stopped by the match limit, so null, and counted. */
    char line[400];
    snprintf(line, sizeof line, "state other \"%0300d!\"", 0);
    for (char *p = line + 13; *p == '0'; p++)
        *p = 'a';
    ASSERT_EQ(fake_line(&f, "state note \"ok then\"", why, sizeof why), 1);
    ASSERT_EQ(fake_line(&f, line, why, sizeof why), 1);
    unsigned long hits = expr_regex_limit_hits();
    int64_t next;
    struct value v;
    struct buf scratch;
    buf_init(&scratch, 0);
    ASSERT_EQ(expr_test(e, fake_env(&f), &next), 0);
    ASSERT_EQ(expr_eval(e, fake_env(&f), &v, &next, &scratch), 0);
    ASSERT_EQ(v.type, VAL_NULL);
    ASSERT_EQ(expr_regex_limit_hits(), hits + 2);
    buf_cleanup(&scratch);
    expr_free(e);

    /* Four threads search one compiled pattern at once. */
    src = "note =~ \"^ok( then)?$\"";
    ASSERT_EQ(expr_compile(src, strlen(src), &f.res, &e, &err), 0);
    struct re_thread t[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        t[i].e = e;
        t[i].env = fake_env(&f);
        ASSERT_EQ(pthread_create(&th[i], NULL, re_search, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ASSERT_EQ(t[i].ok, 1);
    }
    expr_free(e);
    fake_cleanup(&f);
}

const struct test expr_tests[] = {
    {"spec_cases", spec_cases},
    {"doc_examples", doc_examples},
    {"error_positions", error_positions},
    {"deps_and_timed", deps_and_timed},
    {"eval_scratch", eval_scratch},
    {"long_strings", long_strings},
    {"nesting_limits", nesting_limits},
    {"next_never_late", next_never_late},
    {"sig001_boundary", sig001_boundary},
    {"regex_places_limits_threads", regex_places_limits_threads},
    {NULL, NULL},
};
