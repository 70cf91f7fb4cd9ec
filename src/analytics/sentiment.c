/*
 * sentiment.c -- the scorer: VADER's method (Hutto & Gilbert, "VADER: A
 * Parsimonious Rule-based Model for Sentiment Analysis of Social Media
 * Text", ICWSM 2014) written for forewarn, plus support phrases and intents.
 *
 * A text becomes words (split at white space, outer punctuation removed,
 * lower-cased, with a note of ALL-CAPS words and of clause ends), then
 * units: the longest domain or multi-word VADER phrase starting at each
 * word, else the word.  Each unit with a valence is adjusted by the three
 * units before it in its clause (boosters such as "very", negations such
 * as "not" and "n't", which flip and damp it by -0.74), by ALL CAPS when
 * the text is not all capitals, and by "but" (before it x0.5, after it
 * x1.5).  The sum gains emphasis from "!" and "??", and is normalised to
 * -1..1 by x / sqrt(x^2 + 15).  Intents are phrase lists matched on the
 * words, each one dropped when a negation precedes it in its clause
 * ("I don't want to cancel").
 *
 * Departures from VADER, all for support text: negation and boosters do
 * not reach across a clause end (. , ; : ! ?), so "Not bad. Thanks" keeps
 * its thanks; one-letter words are kept (phrases may use them); domain
 * phrases win over VADER's words.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/sentiment_int.h"
#include "util/util.h"

#define B_INCR 0.293      /* a booster word's push */
#define C_INCR 0.733      /* an ALL-CAPS word's push */
#define N_SCALAR -0.74    /* a negation flips and damps */
#define N_SCALAR_NEG -0.4 /* ... more so a complaint: "not bad" is well short of "good" */
#define ALPHA 15.0        /* normalisation: x / sqrt(x^2 + ALPHA) */

struct sentiment *sentiment_new(void)
{
    struct sentiment *s = xcalloc(1, sizeof *s);
    strmap_init(&s->vader);
    s->vmaxwords = 1;
    return s;
}

void sentiment_free(struct sentiment *s)
{
    if (!s)
        return;
    strmap_cleanup(&s->vader);
    free(s->vval);
    sentiment__domain_free(s->dom);
    free(s);
}

/* ---- word lists (short, grammatical, so kept in code) ------------------------------------- */

/* Words that strengthen (+) or soften (-) the next sentiment word. */
static const struct {
    const char *w;
    double v;
} boosters[] = {
    {"absolutely", B_INCR},    {"amazingly", B_INCR},
    {"awfully", B_INCR},       {"completely", B_INCR},
    {"considerably", B_INCR},  {"decidedly", B_INCR},
    {"deeply", B_INCR},        {"enormously", B_INCR},
    {"entirely", B_INCR},      {"especially", B_INCR},
    {"exceptionally", B_INCR}, {"extremely", B_INCR},
    {"fabulously", B_INCR},    {"freaking", B_INCR},
    {"fucking", B_INCR},       {"fully", B_INCR},
    {"greatly", B_INCR},       {"highly", B_INCR},
    {"hugely", B_INCR},        {"incredibly", B_INCR},
    {"intensely", B_INCR},     {"majorly", B_INCR},
    {"more", B_INCR},          {"most", B_INCR},
    {"particularly", B_INCR},  {"pretty", B_INCR},
    {"purely", B_INCR},        {"quite", B_INCR},
    {"really", B_INCR},        {"remarkably", B_INCR},
    {"seriously", B_INCR},     {"so", B_INCR},
    {"substantially", B_INCR}, {"super", B_INCR},
    {"thoroughly", B_INCR},    {"totally", B_INCR},
    {"tremendously", B_INCR},  {"truly", B_INCR},
    {"unbelievably", B_INCR},  {"unusually", B_INCR},
    {"utterly", B_INCR},       {"very", B_INCR},
    {"almost", -B_INCR},       {"barely", -B_INCR},
    {"hardly", -B_INCR},       {"kinda", -B_INCR},
    {"less", -B_INCR},         {"little", -B_INCR},
    {"marginally", -B_INCR},   {"occasionally", -B_INCR},
    {"partly", -B_INCR},       {"scarcely", -B_INCR},
    {"slightly", -B_INCR},     {"somewhat", -B_INCR},
    {"sorta", -B_INCR},
};

/* Negations: these, and any word ending in "n't". */
static const char *const negations[] = {
    "not",    "no",      "never",    "none",   "nope",   "nor",    "nothing", "nowhere", "neither",
    "nobody", "without", "rarely",   "seldom", "cannot", "aint",   "arent",   "cant",    "couldnt",
    "didnt",  "doesnt",  "dont",     "hadnt",  "hasnt",  "havent", "isnt",    "mightnt", "mustnt",
    "neednt", "shant",   "shouldnt", "wasnt",  "werent", "wont",   "wouldnt", "uh-uh",   "uhuh",
};

/* Negations that do not withdraw an intent: "I can't cancel online" still wants to cancel. */
static const char *const intent_not_negations[] = {"can't", "cant", "cannot", "couldn't",
                                                   "couldnt"};

/* Words that make an intent hypothetical or past: "I was going to switch to Visible, but". */
static const char *const intent_hypothetical[] = {"was", "were", "almost"};

static int word_is(const char *w, size_t n, const char *lit)
{
    return strlen(lit) == n && !memcmp(w, lit, n);
}

static int in_list(const char *w, size_t n, const char *const *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (word_is(w, n, list[i]))
            return 1;
    return 0;
}

static double booster_value(const char *w, size_t n)
{
    for (size_t i = 0; i < ARRAY_SIZE(boosters); i++)
        if (word_is(w, n, boosters[i].w))
            return boosters[i].v;
    return 0;
}

static int is_negation(const char *w, size_t n)
{
    if (in_list(w, n, negations, ARRAY_SIZE(negations)))
        return 1;
    return n >= 3 && !memcmp(w + n - 3, "n't", 3);
}

/* ---- words -------------------------------------------------------------------------------- */

struct word {
    const char *w; /* lower-cased, apostrophes straightened; in the scratch buffer */
    size_t n;
    uint32_t id;        /* the domain's id for it, or PH_ANY when the domain has no such word */
    unsigned upper : 1; /* written in capitals (at least two letters, no small ones) */
    unsigned brk : 1;   /* a clause ends after it */
};

static int is_ascii_punct(unsigned char c)
{
    return c < 0x80 && ((c >= '!' && c <= '/') || (c >= ':' && c <= '@') ||
                        (c >= '[' && c <= '`') || (c >= '{' && c <= '~'));
}

static int is_clause_end(unsigned char c)
{
    return c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?';
}

/*
 * Split text into words; scratch receives the lower-cased bytes (it must
 * hold len + max words bytes).  Returns the number of words, at most max.
 */
static size_t split_words(const struct sentiment *s, const char *text, size_t len, char *scratch,
                          struct word *out, size_t max)
{
    size_t nw = 0, sp = 0;
    size_t i = 0;
    while (i < len && nw < max) {
        while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' ||
                           text[i] == '\r' || text[i] == '\f' || text[i] == '\v'))
            i++;
        if (i >= len)
            break;
        size_t st = i;
        while (i < len && !(text[i] == ' ' || text[i] == '\t' || text[i] == '\n' ||
                            text[i] == '\r' || text[i] == '\f' || text[i] == '\v'))
            i++;
        size_t en = i;
        /* An emoticon in VADER's lexicon (":D", "<3") is a word as written. */
        int emoticon = strmap_find(&s->vader, text + st, en - st) != NULL;
        size_t a = st, b = en;
        int brk = 0;
        if (!emoticon) {
            while (a < b && is_ascii_punct((unsigned char)text[a]))
                a++;
            while (b > a && is_ascii_punct((unsigned char)text[b - 1])) {
                brk |= is_clause_end((unsigned char)text[b - 1]);
                b--;
            }
            /* Curly closing quotes and apostrophes at the end are punctuation too. */
            while (b - a >= 3 && (unsigned char)text[b - 3] == 0xe2 &&
                   (unsigned char)text[b - 2] == 0x80 &&
                   ((unsigned char)text[b - 1] == 0x99 || (unsigned char)text[b - 1] == 0x9d))
                b -= 3;
        }
        if (a == b) {
            /* Only punctuation ("!!!", "-"): no word, but it may end the clause. */
            if (nw && brk)
                out[nw - 1].brk = 1;
            continue;
        }
        struct word *w = &out[nw];
        w->w = scratch + sp;
        int letters = 0, small = 0;
        for (size_t k = a; k < b; k++) {
            unsigned char c = (unsigned char)text[k];
            if (c == 0xe2 && k + 2 < b && (unsigned char)text[k + 1] == 0x80 &&
                ((unsigned char)text[k + 2] == 0x98 || (unsigned char)text[k + 2] == 0x99)) {
                scratch[sp++] = '\'';
                k += 2;
                continue;
            }
            if (c >= 'A' && c <= 'Z') {
                letters++;
                c = (unsigned char)(c - 'A' + 'a');
            } else if (c >= 'a' && c <= 'z') {
                letters++;
                small++;
            }
            scratch[sp++] = (char)c;
        }
        w->n = (size_t)(scratch + sp - w->w);
        scratch[sp++] = 0;
        w->upper = letters >= 2 && !small;
        w->brk = (unsigned)brk;
        w->id = PH_ANY;
        if (s->dom) {
            int64_t id = intern_lookup(&s->dom->words, w->w, w->n);
            if (id >= 0)
                w->id = (uint32_t)id;
        }
        if (emoticon) {
            /* Keep the emoticon's own case: VADER lists ":D" and ":d" apart. */
            memcpy((char *)w->w, text + st, en - st);
        }
        nw++;
    }
    return nw;
}

/* ---- phrases ------------------------------------------------------------------------------ */

static size_t match_phrase(const struct domain *d, const struct phrase *ph, uint32_t from,
                           const struct word *w, size_t nw, size_t at);

/* Does any phrase of section sec match at word `at`?  The end of the longest match, or 0. */
static size_t match_class(const struct domain *d, int sec, const struct word *w, size_t nw,
                          size_t at)
{
    size_t best = 0;
    for (size_t i = 0; i < d->nph; i++)
        if (d->ph[i].sec == sec) {
            size_t e = match_phrase(d, &d->ph[i], 0, w, nw, at);
            if (e > best)
                best = e;
        }
    return best;
}

/*
 * Match ph's tokens from index `from` at word `at`, within one clause (a
 * phrase never spans a clause end).  Returns the end (one past the last
 * word) or 0.  Classes are one level deep (the loader checks), so this
 * recurses at most twice.
 */
static size_t match_phrase(const struct domain *d, const struct phrase *ph, uint32_t from,
                           const struct word *w, size_t nw, size_t at)
{
    for (uint32_t k = from; k < ph->n; k++) {
        if (at >= nw || (k > from && w[at - 1].brk) || (k == from && from && w[at - 1].brk))
            return 0;
        uint32_t t = ph->tok[k];
        if (PH_IS_CLASS(t)) {
            size_t e = match_class(d, PH_CLASS_SEC(t), w, nw, at);
            if (!e)
                return 0;
            if (k + 1 == ph->n)
                return e;
            /* The class's longest match, then the rest of the phrase. */
            for (size_t j = at; j + 1 < e; j++)
                if (w[j].brk)
                    return 0;
            return match_phrase(d, ph, k + 1, w, nw, e);
        }
        if (t != PH_ANY && t != w[at].id)
            return 0;
        at++;
    }
    return at;
}

/* The phrases that may start at word `at`: a callback for each, stopping when it returns 1. */
static void each_candidate(const struct domain *d, const struct word *w, size_t at,
                           int (*fn)(const struct phrase *, void *), void *arg)
{
    if (w[at].id != PH_ANY)
        for (uint32_t i = d->first_off[w[at].id]; i < d->first_off[w[at].id + 1]; i++)
            if (fn(&d->ph[d->byfirst[i]], arg))
                return;
    for (size_t i = 0; i < d->nwild; i++)
        if (fn(&d->ph[d->wild[i]], arg))
            return;
}

/* ---- units and valence -------------------------------------------------------------------- */

struct unit {
    size_t first, n; /* words */
    double valence;  /* its own valence (0: none or a booster) */
    int has_valence; /* listed in a lexicon with a valence, even 0 */
    int upper;       /* written in capitals */
    int brk;         /* a clause ends after it */
    const char *w;   /* its first word, for the grammatical lists */
    size_t wn;
    int single; /* one word, not from a phrase */
};

struct best_ctx {
    const struct domain *d;
    const struct word *w;
    size_t nw, at, end;
    double valence;
};

static int best_valence(const struct phrase *ph, void *arg)
{
    struct best_ctx *c = arg;
    if (ph->sec != SEC_VALENCE)
        return 0;
    size_t e = match_phrase(c->d, ph, 0, c->w, c->nw, c->at);
    if (e > c->end) {
        c->end = e;
        c->valence = ph->valence;
    }
    return 0;
}

static const double *vader_lookup(const struct sentiment *s, const char *w, size_t n)
{
    const struct strmap_entry *e = strmap_find(&s->vader, w, n);
    return e ? &s->vval[(uintptr_t)e->value - 1] : NULL;
}

/* Group words into units: the longest domain or multi-word VADER phrase, else one word. */
static size_t make_units(const struct sentiment *s, const struct word *w, size_t nw, struct unit *u)
{
    size_t nu = 0;
    char joined[PH_MAXWORDS * 256 + PH_MAXWORDS];
    for (size_t at = 0; at < nw;) {
        struct best_ctx c = {.d = s->dom, .w = w, .nw = nw, .at = at};
        if (s->dom)
            each_candidate(s->dom, w, at, best_valence, &c);
        size_t dom_end = c.end;
        double val = c.valence;
        int has = dom_end > 0;
        /* VADER's multi-word entries ("fed up"): longer than the domain's match only. */
        size_t jl = 0;
        for (size_t k = 0; (int)k < s->vmaxwords && at + k < nw; k++) {
            if (k && w[at + k - 1].brk)
                break;
            if (w[at + k].n > 255)
                break;
            if (k)
                joined[jl++] = ' ';
            memcpy(joined + jl, w[at + k].w, w[at + k].n);
            jl += w[at + k].n;
            if (k == 0 || at + k + 1 <= dom_end)
                continue;
            const double *v = vader_lookup(s, joined, jl);
            if (v) {
                dom_end = at + k + 1;
                val = *v;
                has = 1;
            }
        }
        size_t end = dom_end;
        if (!has) {
            end = at + 1;
            const double *v = vader_lookup(s, w[at].w, w[at].n);
            if (v) {
                val = *v;
                has = 1;
            }
        }
        struct unit *x = &u[nu++];
        x->first = at;
        x->n = end - at;
        x->valence = has ? val : 0;
        x->has_valence = has;
        x->upper = w[at].upper;
        x->brk = w[end - 1].brk;
        x->w = w[at].w;
        x->wn = w[at].n;
        x->single = !dom_end;
        at = end;
    }
    return nu;
}

static int unit_is(const struct unit *u, const char *lit)
{
    return u->single && word_is(u->w, u->wn, lit);
}

/* The valence of unit k with VADER's adjustments from the units before it in its clause. */
static double unit_valence(const struct unit *u, size_t nu, size_t k, int cap_diff)
{
    const struct unit *x = &u[k];
    double v = x->valence;
    if (x->single && booster_value(x->w, x->wn) != 0)
        return 0; /* a booster only modifies */
    if (v == 0)
        return 0;
    /* "kind of" is a softener, not kindness. */
    if (unit_is(x, "kind") && k + 1 < nu && unit_is(&u[k + 1], "of"))
        return 0;
    /* "no problem": the negation carries into the next word; "no" itself scores nothing then. */
    if (unit_is(x, "no") && k + 1 < nu && !x->brk && u[k + 1].valence != 0)
        return 0;
    if (x->upper && cap_diff)
        v += v > 0 ? C_INCR : -C_INCR;
    for (size_t j = 1; j <= 3 && j <= k; j++) {
        const struct unit *p = &u[k - j];
        if (p->brk)
            break; /* a clause end between them */
        double sc = p->single ? booster_value(p->w, p->wn) : 0;
        if (sc != 0) {
            if (v < 0)
                sc = -sc;
            if (p->upper && cap_diff)
                sc += v > 0 ? C_INCR : -C_INCR;
            v += sc * (j == 1 ? 1.0 : j == 2 ? 0.95 : 0.9);
            continue;
        }
        /* A sentiment word of its own does not modify ("no" does: "no problem"). */
        if (p->has_valence && p->valence != 0 && !unit_is(p, "no"))
            continue;
        if (!p->single || !is_negation(p->w, p->wn))
            continue;
        /* "never so good", "never this bad": emphasis, not negation. */
        if (unit_is(p, "never") && j >= 2 &&
            (unit_is(&u[k - 1], "so") || unit_is(&u[k - 1], "this") ||
             (j == 3 && (unit_is(&u[k - 2], "so") || unit_is(&u[k - 2], "this"))))) {
            v *= 1.25;
            continue;
        }
        v *= v < 0 ? N_SCALAR_NEG : N_SCALAR;
    }
    /* "least" negates ("least helpful") unless "at least" / "very least". */
    if (k >= 1 && unit_is(&u[k - 1], "least") && !u[k - 1].brk &&
        !(k >= 2 && (unit_is(&u[k - 2], "at") || unit_is(&u[k - 2], "very"))))
        v *= N_SCALAR;
    return v;
}

/* ---- intents ------------------------------------------------------------------------------ */

struct intent_ctx {
    const struct domain *d;
    const struct word *w;
    size_t nw, at;
    unsigned found;
};

/* A negation or a "was going to" among the three words before `at`, in its clause? */
static int intent_withdrawn(const struct word *w, size_t at)
{
    for (size_t j = 1; j <= 3 && j <= at; j++) {
        const struct word *p = &w[at - j];
        if (p->brk)
            return 0;
        if (in_list(p->w, p->n, intent_not_negations, ARRAY_SIZE(intent_not_negations)))
            continue;
        if (is_negation(p->w, p->n) ||
            in_list(p->w, p->n, intent_hypothetical, ARRAY_SIZE(intent_hypothetical)))
            return 1;
    }
    return 0;
}

static int intent_try(const struct phrase *ph, void *arg)
{
    struct intent_ctx *c = arg;
    if (ph->sec == SEC_VALENCE || (c->found & (1u << (ph->sec - SEC_CANCEL))))
        return 0;
    if (match_phrase(c->d, ph, 0, c->w, c->nw, c->at) && !intent_withdrawn(c->w, c->at))
        c->found |= 1u << (ph->sec - SEC_CANCEL);
    return 0;
}

static unsigned find_intents(const struct domain *d, const struct word *w, size_t nw)
{
    struct intent_ctx c = {.d = d, .w = w, .nw = nw};
    for (c.at = 0; c.at < nw; c.at++)
        each_candidate(d, w, c.at, intent_try, &c);
    return c.found;
}

/* ---- the score ---------------------------------------------------------------------------- */

const char *sentiment_label(double score)
{
    if (score <= -SENTIMENT_VERY)
        return "very_negative";
    if (score <= -SENTIMENT_NEUTRAL_BAND)
        return "negative";
    if (score < SENTIMENT_NEUTRAL_BAND)
        return "neutral";
    if (score < SENTIMENT_VERY)
        return "positive";
    return "very_positive";
}

const char *sentiment_intent_name(unsigned bit)
{
    switch (bit) {
    case SENTIMENT_CANCEL:
        return "cancel";
    case SENTIMENT_COMPETITOR:
        return "competitor";
    case SENTIMENT_LEGAL:
        return "legal";
    default:
        return NULL;
    }
}

/* "!" adds emphasis up to four; two or more "?" add some too (VADER's amounts). */
static double punctuation_emphasis(const char *text, size_t len)
{
    size_t ex = 0, qm = 0;
    for (size_t i = 0; i < len; i++) {
        ex += text[i] == '!';
        qm += text[i] == '?';
    }
    double e = (double)(ex > 4 ? 4 : ex) * 0.292;
    if (qm > 1)
        e += qm <= 3 ? (double)qm * 0.18 : 0.96;
    return e;
}

#define THREAT_FLOOR 0.3 /* the least negative a cancel or legal threat scores */

/* Is the text put as a condition: "or", "unless", "otherwise", "else", "or else", "if not"? */
static int is_threat(const struct word *w, size_t nw)
{
    static const char *const markers[] = {"or", "unless", "otherwise", "else", "until", NULL};
    for (size_t i = 0; i < nw; i++) {
        for (size_t k = 0; markers[k]; k++)
            if (w[i].n == strlen(markers[k]) && !memcmp(w[i].w, markers[k], w[i].n))
                return 1;
        if (w[i].n == 2 && !memcmp(w[i].w, "if", 2))
            for (size_t j = i + 1; j < nw && j <= i + 5; j++)
                if ((w[j].n == 3 && !memcmp(w[j].w, "not", 3)) ||
                    (w[j].n >= 3 && !memcmp(w[j].w + w[j].n - 3, "n't", 3)))
                    return 1;
    }
    return 0;
}

void sentiment_score(const struct sentiment *s, const char *text, size_t len,
                     struct sentiment_result *out)
{
    size_t maxw = len / 2 + 1;
    if (maxw > SENTIMENT_MAX_TOKENS)
        maxw = SENTIMENT_MAX_TOKENS;
    struct word *w = xmalloc(maxw * sizeof *w);
    char *scratch = xmalloc(len + maxw + 1);
    size_t nw = split_words(s, text, len, scratch, w, maxw);
    struct unit *u = xmalloc((nw + 1) * sizeof *u);
    size_t nu = make_units(s, w, nw, u);

    size_t ncaps = 0;
    for (size_t i = 0; i < nw; i++)
        ncaps += w[i].upper;
    int cap_diff = ncaps > 0 && ncaps < nw;

    /* "but" shifts the weight to what follows it (the first "but", as VADER). */
    size_t but = nu;
    for (size_t k = 0; k < nu && but == nu; k++)
        if (unit_is(&u[k], "but"))
            but = k;
    double sum = 0;
    for (size_t k = 0; k < nu; k++) {
        double v = unit_valence(u, nu, k, cap_diff);
        if (but < nu)
            v *= k < but ? 0.5 : k > but ? 1.5 : 1.0;
        sum += v;
    }
    if (sum != 0) {
        double e = punctuation_emphasis(text, len);
        sum += sum > 0 ? e : -e;
    }
    double score = sum / sqrt(sum * sum + ALPHA);
    if (score < -1)
        score = -1;
    if (score > 1)
        score = 1;
    out->intents = s->dom ? find_intents(s->dom, w, nw) : 0;
    /*
     * A threat to leave or to take it further is discontent whatever its
     * words ("Fix it today or I'm switching to T-Mobile" has none VADER
     * knows): an intent put as a condition ("or", "unless", "otherwise",
     * "if ... not") scores at least as negative as THREAT_FLOOR, unless the
     * text is clearly positive.  A plain request ("please cancel my second
     * line") stays as its words make it.
     */
    if ((out->intents & (SENTIMENT_CANCEL | SENTIMENT_LEGAL)) && score > -THREAT_FLOOR &&
        score < THREAT_FLOOR && is_threat(w, nw))
        score = -THREAT_FLOOR;
    out->score = score;
    out->label = sentiment_label(score);
    free(u);
    free(scratch);
    free(w);
}
