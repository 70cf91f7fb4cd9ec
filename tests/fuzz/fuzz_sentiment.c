/*
 * fuzz_sentiment.c -- libFuzzer harness for everything sentiment parses:
 * the text scorer, VADER's lexicon reader, the domain lexicon reader and
 * the NDJSON command.  The first byte picks the target; the rest is input.
 *
 *   make fuzz && build/fuzz/fuzz_sentiment -dict=tests/fuzz/sentiment.dict \
 *       tests/fuzz/corpus/sentiment
 *
 * Invariants checked beyond "no crash, no sanitizer report": a score lies
 * in -1..1, and the command writes nothing when it fails.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/sentiment.h"

/* A small lexicon in VADER's format so the scorer has words to weigh. */
static const char lexicon[] = "happy\t2.7\t0.8\t[3, 2]\ngood\t1.9\t0.9\t[2, 2]\n"
                              "bad\t-2.5\t0.6\t[-3, -2]\nno\t-1.2\t0.6\t[-1, -1]\n"
                              "fed up\t-1.8\t1.2\t[-2, -2]\n:)\t2.0\t1.0\t[2, 2]\n";

static struct sentiment *shared;

/*
 * A scorer with the small lexicon, and the built-in domain lexicon when
 * `domain` is set.  Loading the built-in one (410 lines) took ten times
 * as long as everything else an input does, so only the shared scorer
 * has it; the domain reader's own input gets a scorer without.
 */
static struct sentiment *scorer(int domain)
{
    struct buf d;
    buf_init(&d, 0);
    struct sentiment *s = sentiment_new();
    if (sentiment_load_vader(s, "fuzz", lexicon, sizeof lexicon - 1, &d) ||
        (domain && sentiment_load_builtin_domain(s, &d)))
        abort();
    buf_cleanup(&d);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!shared)
        shared = scorer(1);
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    struct buf d;
    struct sentiment_result r;
    buf_init(&d, 0);
    switch (data[0] % 4) {
    case 0:
        sentiment_score(shared, in, n, &r);
        if (!(r.score >= -1 && r.score <= 1))
            abort();
        break;
    case 1: {
        struct sentiment *s = sentiment_new();
        if (sentiment_load_vader(s, "fuzz", in, n, &d) == 0)
            sentiment_score(s, in, n, &r);
        sentiment_free(s);
        break;
    }
    case 2: {
        struct sentiment *s = scorer(0);
        if (sentiment_load_domain(s, "fuzz", in, n, &d) == 0)
            sentiment_score(s, in, n, &r);
        sentiment_free(s);
        break;
    }
    default: {
        FILE *fin = fmemopen((void *)in, n ? n : 1, "rb");
        char *o = NULL, *e = NULL;
        size_t on = 0, en = 0;
        FILE *fo = open_memstream(&o, &on), *fe = open_memstream(&e, &en);
        int rc = n ? sentiment_run(shared, fin, "fuzz", fo, fe) : 0;
        fclose(fin);
        fclose(fo);
        fclose(fe);
        if (rc && on)
            abort();
        free(o);
        free(e);
    }
    }
    buf_cleanup(&d);
    return 0;
}
