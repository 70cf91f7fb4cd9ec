/*
 * regex.c -- the `=~` / matches() operator's regular expressions, on PCRE2
 * with every resource bounded.
 *
 * The rule language used POSIX regcomp/regexec, whose compiler in glibc
 * builds a DFA that grows exponentially with some patterns: a 60-byte
 * `"------++++…"` took gigabytes and seconds.  Conditions will arrive over
 * the API, so a pattern must never be able to take the machine.  Here:
 *
 *   - the pattern's length is capped (EXPR__RE_MAX_LEN) before PCRE2 sees
 *     it, and PCRE2's own caps on nesting and on the compiled size (64 KiB
 *     with Debian's link size of 2) bound compile time and memory;
 *   - every match runs with a match limit (backtracking steps), a depth
 *     limit (backtracking frames) and a heap limit (KiB of frame memory),
 *     so a catastrophic pattern such as `(a+)+$` on a long subject stops
 *     with PCRE2_ERROR_MATCHLIMIT instead of running for ever.
 *
 * Invariant: a compiled pattern is shared read-only by every thread; the
 * only mutable state is the per-thread match data (kept in a pthread key
 * and freed when its thread ends) and the hit counters, which are atomic.
 *
 * Dialect: PCRE2 (Perl) syntax, byte mode (no UTF), with DOTALL and
 * DOLLAR_ENDONLY so that `.` and `$` behave as they did under POSIX
 * without REG_NEWLINE.  docs/rules.md lists what changed from POSIX ERE.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"
#include "util/log.h"
#include "util/util.h"

/*
 * Compile options.  NEVER_UTF / NEVER_UCP stop a pattern from switching
 * itself into UTF mode with (*UTF), where a subject that is not valid
 * UTF-8 would be an error; NEVER_BACKSLASH_C forbids \C, which can split
 * a character.  NO_DOTSTAR_ANCHOR is not set: it only speeds up `.*x`.
 */
#define RE_OPTIONS                                                                                 \
    (PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_UTF | PCRE2_NEVER_UCP |                    \
     PCRE2_NEVER_BACKSLASH_C)

struct expr__re {
    pcre2_code *code;        /* owned */
    char *origin;            /* owned; "file:line:col" of the pattern for run-time messages, or NULL */
    uint32_t pos;            /* byte offset of the pattern literal in the condition */
    atomic_ulong limit_hits; /* matches stopped by a limit */
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pcre2_compile_context *cctx; /* process lifetime, read-only after init */
static pcre2_match_context *mctx;   /* process lifetime, read-only after init */
static pthread_key_t md_key;        /* this thread's pcre2_match_data */
static atomic_ulong total_hits;

static void oom(void)
{
    fprintf(stderr, "forewarn: out of memory setting up regular expressions\n");
    abort();
}

static void md_free(void *md)
{
    pcre2_match_data_free(md);
}

static void init(void)
{
    cctx = pcre2_compile_context_create(NULL);
    mctx = pcre2_match_context_create(NULL);
    if (!cctx || !mctx || pthread_key_create(&md_key, md_free))
        oom();
    pcre2_set_max_pattern_length(cctx, EXPR__RE_MAX_LEN);
    pcre2_set_parens_nest_limit(cctx, EXPR__RE_MAX_NEST);
    pcre2_set_match_limit(mctx, EXPR__RE_MATCH_LIMIT);
    pcre2_set_depth_limit(mctx, EXPR__RE_DEPTH_LIMIT);
    pcre2_set_heap_limit(mctx, EXPR__RE_HEAP_LIMIT_KIB);
}

int expr__re_compile(const char *pat, size_t n, uint32_t pos, struct expr__re **out,
                     size_t *erroff, char *why, size_t whylen)
{
    pthread_once(&once, init);
    *erroff = 0;
    if (n > EXPR__RE_MAX_LEN) {
        *erroff = EXPR__RE_MAX_LEN;
        snprintf(why, whylen, "the pattern is %zu bytes, over the limit of %d", n,
                 EXPR__RE_MAX_LEN);
        return -1;
    }
    const char *nul = memchr(pat, '\0', n);
    if (nul) {
        *erroff = (size_t)(nul - pat);
        snprintf(why, whylen, "it contains a NUL byte");
        return -1;
    }
    int err;
    PCRE2_SIZE at;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, n, RE_OPTIONS, &err, &at, cctx);
    if (!code) {
        PCRE2_UCHAR msg[120];
        if (pcre2_get_error_message(err, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", err);
        *erroff = at > n ? n : (size_t)at;
        snprintf(why, whylen, "%s", (const char *)msg);
        return -1;
    }
    struct expr__re *re = xcalloc(1, sizeof *re);
    re->code = code;
    re->pos = pos;
    atomic_init(&re->limit_hits, 0);
    *out = re;
    return 0;
}

void expr__re_free(struct expr__re *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    free(re->origin);
    free(re);
}

void expr__re_set_origin(struct expr__re *re, const char *origin)
{
    free(re->origin);
    re->origin = origin ? xstrdup(origin) : NULL;
}

const char *expr__re_origin(const struct expr__re *re)
{
    return re->origin;
}

uint32_t expr__re_pos(const struct expr__re *re)
{
    return re->pos;
}

int expr__re_match(struct expr__re *re, const char *s, size_t n)
{
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (!md) {
        /* One pair of offsets is all a yes/no search needs; PCRE2 keeps its frames here too. */
        md = pcre2_match_data_create(1, NULL);
        if (!md || pthread_setspecific(md_key, md))
            oom();
    }
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, 0, md, mctx);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    /*
     * A limit (or, in principle, memory): the answer is unknown.  Say so in
     * the log, at 1, 2, 4, 8 ... hits per pattern so a hot rule cannot
     * flood it, and let the caller treat the match as null.
     */
    unsigned long hits = atomic_fetch_add(&re->limit_hits, 1) + 1;
    atomic_fetch_add(&total_hits, 1);
    if ((hits & (hits - 1)) == 0) {
        PCRE2_UCHAR msg[120];
        if (pcre2_get_error_message(rc, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", rc);
        log_warn("%s: regex match on a %zu-byte subject stopped: %s; the match counts as null "
                 "(false) [%lu time%s]",
                 re->origin ? re->origin : "condition", n, (const char *)msg, hits,
                 hits == 1 ? "" : "s");
    }
    return -1;
}

unsigned long expr_regex_limit_hits(void)
{
    return atomic_load(&total_hits);
}
