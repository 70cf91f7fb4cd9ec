/*
 * test_sentiment.c -- the scorer's rules (negation, boosters, capitals,
 * "!", "but", support phrases), intents and their negation, both lexicon
 * readers' errors, and a deterministic mutation run over every parser.
 *
 * The VADER lexicon here is a small fixture with made-up values, so the
 * tests check the method, not VADER's numbers; the real lexicon is
 * exercised end to end (tests/e2e/test_sentiment.py).
 */
#include <stdint.h>
#include <stdlib.h>

#include "../test.h"
#include "analytics/sentiment.h"
#include "util/util.h"

static const char fixture[] = "happy\t2.7\t0.8\t[3, 3, 2, 3, 3, 2, 3, 3, 2, 3]\n"
                              "good\t1.9\t0.9\t[2, 2, 1, 2, 2, 3, 2, 1, 2, 2]\n"
                              "great\t3.1\t0.7\t[3, 3, 3, 4, 3, 3, 3, 3, 3, 3]\n"
                              "bad\t-2.5\t0.6\t[-3, -2, -3, -2, -3, -2, -3, -2, -3, -2]\n"
                              "angry\t-2.3\t0.6\t[-2, -2, -3, -2, -2, -3, -2, -2, -3, -2]\n"
                              "terrible\t-2.5\t0.8\t[-3, -3, -2, -2, -3, -3, -2, -2, -3, -2]\n"
                              "problem\t-1.7\t0.6\t[-2, -2, -1, -2, -2, -1, -2, -2, -1, -2]\n"
                              "fed up\t-1.8\t1.2\t[-2, -2, -3, -4, -2, -2, -1, -2, -1, 1]\n"
                              ":)\t2.0\t1.0\t[2, 2, 2, 2, 2, 2, 2, 2, 2, 2]\n";

static struct sentiment *scorer(void)
{
    struct sentiment *s = sentiment_new();
    struct buf diag;
    buf_init(&diag, 0);
    int rc = sentiment_load_vader(s, "fixture", fixture, sizeof fixture - 1, &diag);
    rc |= sentiment_load_builtin_domain(s, &diag);
    if (rc)
        fprintf(stderr, "%s", diag.data ? diag.data : "");
    buf_cleanup(&diag);
    return s;
}

static double sc(const struct sentiment *s, const char *text)
{
    struct sentiment_result r;
    sentiment_score(s, text, strlen(text), &r);
    return r.score;
}

static unsigned in(const struct sentiment *s, const char *text)
{
    struct sentiment_result r;
    sentiment_score(s, text, strlen(text), &r);
    return r.intents;
}

#define ASSERT_LT(a, b)                                                                            \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(a_ < b_))                                                                            \
            TEST__FAIL("%s < %s: %g >= %g", #a, #b, a_, b_);                                       \
    } while (0)

static void test_negation(void)
{
    struct sentiment *s = scorer();
    double happy = sc(s, "I am happy"), not_happy = sc(s, "I am not happy");
    ASSERT_LT(0, happy);
    ASSERT_LT(not_happy, 0);
    ASSERT_LT(sc(s, "it isn't good"), 0);     /* "n't" negates */
    ASSERT_LT(sc(s, "never really good"), 0); /* within three words */
    ASSERT_LT(0, sc(s, "no problem at all")); /* a negated complaint */
    /* A negation does not reach across a clause end. */
    ASSERT_LT(0, sc(s, "Not now. I am happy"));
    /* Negating a complaint is weaker than praise. */
    ASSERT_LT(sc(s, "not bad"), sc(s, "good"));
    sentiment_free(s);
}

static void test_intensifiers_caps_exclamation(void)
{
    struct sentiment *s = scorer();
    ASSERT_LT(sc(s, "the service is good"), sc(s, "the service is very good"));
    ASSERT_LT(sc(s, "the service is very bad"), sc(s, "the service is bad"));
    ASSERT_LT(sc(s, "the service is slightly good"), sc(s, "the service is good"));
    /* Capitals emphasise when the rest of the text is not shouted. */
    ASSERT_LT(sc(s, "the service is BAD"), sc(s, "the service is bad"));
    ASSERT_LT(sc(s, "the service is good"), sc(s, "the service is GOOD"));
    /* "!" adds up to four times; "??" too. */
    ASSERT_LT(sc(s, "bad!!!"), sc(s, "bad!"));
    ASSERT_LT(sc(s, "bad!"), sc(s, "bad"));
    ASSERT(sc(s, "bad!!!!!!!!") == sc(s, "bad!!!!"));
    ASSERT_LT(sc(s, "bad??"), sc(s, "bad"));
    /* Emoticons as written. */
    ASSERT_LT(0, sc(s, "thanks :)"));
    sentiment_free(s);
}

static void test_but(void)
{
    struct sentiment *s = scorer();
    ASSERT_LT(sc(s, "the phone is good but the signal is bad"), 0);
    ASSERT_LT(0, sc(s, "the signal was bad but now it is good"));
    sentiment_free(s);
}

static void test_support_phrases(void)
{
    struct sentiment *s = scorer();
    ASSERT_LT(sc(s, "this is the third time I ask"), 0);
    ASSERT_LT(sc(s, "still not working"), 0);
    ASSERT_LT(sc(s, "Nobody has fixed my line"), 0);
    ASSERT_LT(sc(s, "what a waste of time"), 0);
    ASSERT_LT(sc(s, "on hold for an hour"), 0);
    ASSERT_LT(sc(s, "no signal since Monday"), 0);
    ASSERT_LT(sc(s, "I am fed up"), 0); /* VADER's own two-word entry */
    ASSERT_LT(0, sc(s, "thank you so much"));
    ASSERT_LT(0, sc(s, "it works now"));
    ASSERT_LT(0, sc(s, "all sorted"));
    ASSERT_LT(sc(s, "it is not fixed"), 0);      /* a negated phrase */
    ASSERT(sc(s, "please cancel my plan") == 0); /* a request, not a feeling */
    /* Curly apostrophes are apostrophes. */
    ASSERT(sc(s, "it doesn\xe2\x80\x99t work") == sc(s, "it doesn't work"));
    sentiment_free(s);
}

static void test_labels(void)
{
    ASSERT_STREQ(sentiment_label(-0.9), "very_negative");
    ASSERT_STREQ(sentiment_label(-0.6), "very_negative");
    ASSERT_STREQ(sentiment_label(-0.3), "negative");
    ASSERT_STREQ(sentiment_label(-0.05), "negative");
    ASSERT_STREQ(sentiment_label(0), "neutral");
    ASSERT_STREQ(sentiment_label(0.049), "neutral");
    ASSERT_STREQ(sentiment_label(0.05), "positive");
    ASSERT_STREQ(sentiment_label(0.6), "very_positive");
    struct sentiment *s = scorer();
    struct sentiment_result r;
    sentiment_score(s, "", 0, &r);
    ASSERT(r.score == 0);
    ASSERT_STREQ(r.label, "neutral");
    ASSERT_EQ(r.intents, 0);
    sentiment_free(s);
}

static void test_intents(void)
{
    struct sentiment *s = scorer();
    ASSERT_EQ(in(s, "Please cancel my plan"), SENTIMENT_CANCEL);
    ASSERT_EQ(in(s, "I want to close my account"), SENTIMENT_CANCEL);
    ASSERT_EQ(in(s, "time to switch carriers"), SENTIMENT_CANCEL);
    ASSERT_EQ(in(s, "how do I port my number out"), SENTIMENT_CANCEL);
    ASSERT_EQ(in(s, "I'm done with you."), SENTIMENT_CANCEL);
    ASSERT_EQ(in(s, "I'm switching to Verizon"), SENTIMENT_CANCEL | SENTIMENT_COMPETITOR);
    ASSERT_EQ(in(s, "moving to T-Mobile next week"), SENTIMENT_CANCEL | SENTIMENT_COMPETITOR);
    ASSERT_EQ(in(s, "Mint Mobile has a better deal elsewhere"), SENTIMENT_COMPETITOR);
    ASSERT_EQ(in(s, "my lawyer will call"), SENTIMENT_LEGAL);
    ASSERT_EQ(in(s, "I will report this to the FCC"), SENTIMENT_LEGAL);
    ASSERT_EQ(in(s, "see you in small claims"), SENTIMENT_LEGAL);
    ASSERT_EQ(in(s, "I'm calling my attorney and I will cancel"),
              SENTIMENT_CANCEL | SENTIMENT_LEGAL);
    /* Negated or hypothetical: withdrawn. */
    ASSERT_EQ(in(s, "I don't want to cancel"), 0);
    ASSERT_EQ(in(s, "I'm not going to cancel"), 0);
    ASSERT_EQ(in(s, "no need to cancel"), 0);
    ASSERT_EQ(in(s, "I never said to terminate anything"), 0);
    ASSERT_EQ(in(s, "I'm not going to sue"), 0);
    ASSERT_EQ(in(s, "I was going to switch carriers"), 0);
    /* Not a negation of the wish: difficulty. */
    ASSERT_EQ(in(s, "I can't cancel online"), SENTIMENT_CANCEL);
    /* A negation in another clause does not withdraw it. */
    ASSERT_EQ(in(s, "Not happy. Cancel my line"), SENTIMENT_CANCEL);
    ASSERT_EQ(in(s, "I will not wait, cancel it"), SENTIMENT_CANCEL);
    /* A phrase does not span a clause end. */
    ASSERT_EQ(in(s, "I want to switch. Verizon is not my choice"), SENTIMENT_COMPETITOR);
    ASSERT_STREQ(sentiment_intent_name(SENTIMENT_CANCEL), "cancel");
    ASSERT_STREQ(sentiment_intent_name(SENTIMENT_LEGAL), "legal");
    ASSERT(sentiment_intent_name(8) == NULL);
    sentiment_free(s);
}

/* Load text as a VADER lexicon into a scorer that has the fixture; the diagnostics. */
static int vader_err(const char *text, struct buf *diag)
{
    struct sentiment *s = scorer();
    buf_init(diag, 0);
    int rc = sentiment_load_vader(s, "lex.txt", text, strlen(text), diag);
    /* All or nothing: a failed load keeps the old lexicon. */
    if (rc && sc(s, "happy") <= 0)
        rc = 12345;
    sentiment_free(s);
    return rc;
}

static void test_vader_errors(void)
{
    struct buf d;
    ASSERT_EQ(vader_err("good\t1.9\t0.9\t[2, 2]\nbad\t-2.5\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "lex.txt:2:9: error: expected 4 tab-separated fields");
    ASSERT_CONTAINS(d.data, "    bad\t-2.5\n");
    buf_cleanup(&d);
    ASSERT_EQ(vader_err("good\tx\t0.9\t[2]\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "lex.txt:1:6: error: the mean valence must be a number");
    buf_cleanup(&d);
    ASSERT_EQ(vader_err("good\t9\t0.9\t[2]\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "outside -4 .. 4");
    buf_cleanup(&d);
    ASSERT_EQ(vader_err("good\t1\t-1\t[2]\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "1:8: error: the standard deviation");
    buf_cleanup(&d);
    ASSERT_EQ(vader_err("good\t1\t1\t[2, 7]\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "1:14: error: the ratings");
    buf_cleanup(&d);
    ASSERT_EQ(vader_err("\t1\t1\t[2]\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "1:1: error: empty token");
    buf_cleanup(&d);
    ASSERT_EQ(vader_err("", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "no entries");
    buf_cleanup(&d);
    /* The JavaScript module is not the data file. */
    ASSERT_EQ(vader_err("module.exports = {\n  good: 1.9,\n};\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "lex.txt:1:");
    buf_cleanup(&d);
    /* Well formed, CRLF and blank lines tolerated; a repeated token keeps its last value. */
    struct sentiment *s = sentiment_new();
    buf_init(&d, 0);
    const char *ok = "ok\t1.0\t0.5\t[1, 1]\r\n\r\nok\t-1.0\t0.5\t[-1, -1]\r\n";
    ASSERT_EQ(sentiment_load_vader(s, "x", ok, strlen(ok), &d), 0);
    ASSERT_LT(sc(s, "ok"), 0);
    buf_cleanup(&d);
    sentiment_free(s);
}

static int domain_err(const char *text, struct buf *diag)
{
    struct sentiment *s = scorer();
    buf_init(diag, 0);
    int rc = sentiment_load_domain(s, "dom.txt", text, strlen(text), diag);
    if (rc && in(s, "cancel it") != SENTIMENT_CANCEL) /* the old domain is kept */
        rc = 12345;
    sentiment_free(s);
    return rc;
}

static void test_domain_errors(void)
{
    struct buf d;
    ASSERT_EQ(domain_err("cancel\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "dom.txt:1:1: error: a phrase before any [section]");
    buf_cleanup(&d);
    ASSERT_EQ(domain_err("[cancel]\nquit\n [moods]\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "dom.txt:3:3: error: unknown section 'moods'");
    buf_cleanup(&d);
    ASSERT_EQ(domain_err("# c\n[valence]\nthird time\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "dom.txt:3:7: error: the valence must be a number");
    buf_cleanup(&d);
    ASSERT_EQ(domain_err("[valence]\nthird time  -7\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "2:13: error: the valence -7 is outside -4 .. 4");
    buf_cleanup(&d);
    ASSERT_EQ(domain_err("[cancel]\nswitch to Verizon\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "2:11: error: phrases are written in lower case");
    buf_cleanup(&d);
    ASSERT_EQ(domain_err("[cancel]\nquit\n  quit\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "3:3: error: this phrase is already in [cancel] at line 2");
    buf_cleanup(&d);
    ASSERT_EQ(domain_err("[cancel]\ngo to <cancel>\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "2:7: error: a list cannot contain itself");
    buf_cleanup(&d);
    ASSERT_EQ(domain_err("[cancel]\nswitch to <competitor>\n[competitor]\nlike <legal>\n", &d),
              FW_EPARSE);
    ASSERT_CONTAINS(d.data, "4:1: error: [competitor] is named in [cancel]");
    buf_cleanup(&d);
    ASSERT_EQ(domain_err("[valence]\nsome * word 1\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "'*' is for intent phrases only");
    buf_cleanup(&d);
    ASSERT_EQ(domain_err("[legal]\nsue, now\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "2:4: error: ',' cannot occur inside a word");
    buf_cleanup(&d);
    ASSERT_EQ(domain_err("[legal]\na b c d e f g h i\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "at most 8 words");
    buf_cleanup(&d);
    ASSERT_EQ(domain_err("[legal\n", &d), FW_EPARSE);
    ASSERT_CONTAINS(d.data, "closing ']'");
    buf_cleanup(&d);
    /* A good one replaces the built-in lists; wildcards and lists work. */
    struct sentiment *s = scorer();
    buf_init(&d, 0);
    const char *ok = "[valence]\nmeh meh  -1.5\n[cancel]\nport * out\nrun to <competitor>\n"
                     "[competitor]\nacme tel\n";
    ASSERT_EQ(sentiment_load_domain(s, "x", ok, strlen(ok), &d), 0);
    ASSERT_EQ(in(s, "cancel"), 0);
    ASSERT_EQ(in(s, "port it out"), SENTIMENT_CANCEL);
    ASSERT_EQ(in(s, "we run to ACME Tel"), SENTIMENT_CANCEL | SENTIMENT_COMPETITOR);
    ASSERT_LT(sc(s, "meh meh"), 0);
    buf_cleanup(&d);
    sentiment_free(s);
}

/* A small deterministic generator, so a failure repeats. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Mutate seed into out (insert, delete, flip, duplicate a slice); returns the length. */
static size_t mutate(const char *seed, size_t n, char *out, size_t cap)
{
    size_t len = n < cap ? n : cap;
    memcpy(out, seed, len);
    static const char bytes[] = "\t\n\r []<>*#!?.,'\"{}:\\-0123456789aZ\xe2\x80\x99\xff";
    int k = 1 + (int)(rnd() % 8);
    for (int i = 0; i < k; i++) {
        size_t at = len ? rnd() % (len + 1) : 0;
        switch (rnd() % 4) {
        case 0: /* insert */
            if (len < cap) {
                memmove(out + at + 1, out + at, len - at);
                out[at] = bytes[rnd() % (sizeof bytes - 1)];
                len++;
            }
            break;
        case 1: /* delete */
            if (at < len) {
                memmove(out + at, out + at + 1, len - at - 1);
                len--;
            }
            break;
        case 2: /* flip */
            if (at < len)
                out[at] = (char)rnd();
            break;
        default: { /* duplicate a slice */
            size_t from = len ? rnd() % len : 0, m = 1 + rnd() % 16;
            if (from + m > len)
                m = len - from;
            if (len + m <= cap) {
                char slice[16];
                memcpy(slice, out + from, m); /* before the move, which may overlap it */
                memmove(out + at + m, out + at, len - at);
                memcpy(out + at, slice, m);
                len += m;
            }
        }
        }
    }
    return len;
}

extern const char sentiment_builtin_domain[];
extern const size_t sentiment_builtin_domain_len;

static void test_mutations_do_not_crash(void)
{
    struct sentiment *s = scorer();
    static const char *texts[] = {
        "I am NOT happy!!! This is the third time, still not working :(",
        "Please don't cancel, I'm switching to Verizon?? My lawyer, small claims...",
        "{\"id\":\"a\",\"text\":\"very good but bad\"}\n{\"id\":\"b\",\"text\":\"x\"}\n",
    };
    static char buf[8192];
    struct buf d;
    for (int round = 0; round < 3000; round++) {
        size_t n;
        struct sentiment_result r;
        switch (round % 4) {
        case 0:
            n = mutate(texts[round % 3], strlen(texts[round % 3]), buf, sizeof buf);
            sentiment_score(s, buf, n, &r);
            if (!(r.score >= -1 && r.score <= 1))
                TEST__FAIL("score %g out of range", r.score);
            break;
        case 1: {
            n = mutate(fixture, sizeof fixture - 1, buf, sizeof buf);
            struct sentiment *t = sentiment_new();
            buf_init(&d, 0);
            sentiment_load_vader(t, "m", buf, n, &d);
            sentiment_score(t, buf, n, &r);
            buf_cleanup(&d);
            sentiment_free(t);
            break;
        }
        case 2: {
            size_t off = rnd() % (sentiment_builtin_domain_len - 600);
            n = mutate(sentiment_builtin_domain + off, 600, buf, sizeof buf);
            struct sentiment *t = scorer();
            buf_init(&d, 0);
            if (sentiment_load_domain(t, "m", buf, n, &d) == 0)
                sentiment_score(t, texts[0], strlen(texts[0]), &r);
            buf_cleanup(&d);
            sentiment_free(t);
            break;
        }
        default: {
            n = mutate(texts[2], strlen(texts[2]), buf, sizeof buf);
            FILE *fin = fmemopen(buf, n ? n : 1, "rb");
            char *outp = NULL, *errp = NULL;
            size_t on = 0, en = 0;
            FILE *fout = open_memstream(&outp, &on), *ferr = open_memstream(&errp, &en);
            int rc = sentiment_run(s, fin, "m", fout, ferr);
            fclose(fin);
            fclose(fout);
            fclose(ferr);
            if (rc && on)
                TEST__FAIL("output written despite an error: %s", outp);
            free(outp);
            free(errp);
        }
        }
    }
    sentiment_free(s);
}

/* A cancel or legal intent put as a condition is discontent; a plain request is not. */
static void test_threats(void)
{
    struct sentiment *s = scorer();
    ASSERT_LT(sc(s, "Fix it today or I'm switching to T-Mobile"), -0.29);
    ASSERT_LT(sc(s, "If this is not fixed by Friday I will cancel."), -0.29);
    ASSERT_LT(sc(s, "Sort it out, otherwise my lawyer will call"), -0.29);
    ASSERT_EQ(sc(s, "Please cancel my second line."), 0);
    ASSERT_EQ(sc(s, "How do I cancel? I'm moving abroad."), 0);
    /* Already more negative than the floor: left as it is. */
    ASSERT_LT(sc(s, "This is terrible, fix it or I cancel"), sc(s, "Fix it or I cancel"));
    sentiment_free(s);
}

const struct test sentiment_tests[] = {
    {"threats", test_threats},
    {"negation", test_negation},
    {"intensifiers_caps_exclamation", test_intensifiers_caps_exclamation},
    {"but", test_but},
    {"support_phrases", test_support_phrases},
    {"labels", test_labels},
    {"intents", test_intents},
    {"vader_errors", test_vader_errors},
    {"domain_errors", test_domain_errors},
    {"mutations_do_not_crash", test_mutations_do_not_crash},
    {NULL, NULL},
};
