/*
 * lexicon.c -- reading the two lexicons the scorer uses: VADER's published
 * lexicon (data from the npm package vader-sentiment, never executed) and
 * forewarn's own domain lexicon.  Both are plain line formats; every
 * problem is reported as name:line:col with the line and a caret, and a
 * file with any error changes nothing (it is parsed into a fresh table that
 * replaces the old one only at the end).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/sentiment_int.h"
#include "util/util.h"
#include "util/yaml.h"

#define MAX_ERRORS 20        /* reported per file; the rest are counted */
#define MAX_FILE (16u << 20) /* a lexicon file */
#define MAX_TOKEN 255        /* bytes in one VADER token or domain phrase word */
#define VALENCE_LIMIT 4.0    /* VADER's scale is -4 .. 4 */

extern const char sentiment_builtin_domain[];
extern const size_t sentiment_builtin_domain_len;

/* The error collector of one file: counts, and stops quoting after MAX_ERRORS. */
struct reader {
    const char *name, *text;
    size_t len;
    struct buf *diag;
    unsigned nerrors;
};

__attribute__((format(printf, 4, 5))) static void rerr(struct reader *r, size_t line, size_t col,
                                                       const char *fmt, ...)
{
    if (r->nerrors++ >= MAX_ERRORS || !r->diag)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ydiag_at(r->diag, r->name, r->text, r->len, line, col, "%s", msg);
}

static void rfinish(struct reader *r)
{
    if (r->nerrors > MAX_ERRORS && r->diag)
        buf_printf(r->diag, "%s: %u more error(s) not shown\n", r->name, r->nerrors - MAX_ERRORS);
}

/*
 * A whole field as a finite number (strtod's syntax, no spaces): 0 and *v,
 * or -1.  Copied first: the field is not NUL-terminated.
 */
static int parse_number(const char *s, size_t n, double *v)
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    if (tmp[0] == ' ' || tmp[0] == '\t' || tmp[0] == '\n')
        return -1;
    char *end;
    errno = 0;
    *v = strtod(tmp, &end);
    return *end || errno || !isfinite(*v) ? -1 : 0;
}

/* ---- VADER's lexicon ---------------------------------------------------------------------- */

/*
 * The ten ratings "[-1, 0, 2, ...]": integers from -4 to 4 separated by
 * ", ".  Returns the offset of the first bad byte, or -1 when the field is
 * well formed.
 */
static long check_ratings(const char *s, size_t n)
{
    size_t i = 0;
    if (n < 2 || s[0] != '[')
        return 0;
    i = 1;
    for (int k = 0;; k++) {
        if (k) {
            if (i < n && s[i] == ']')
                break;
            if (i + 1 >= n || s[i] != ',' || s[i + 1] != ' ')
                return (long)i;
            i += 2;
        }
        size_t st = i;
        if (i < n && s[i] == '-')
            i++;
        if (i >= n || s[i] < '0' || s[i] > '4')
            return (long)st;
        i++;
        if (k > 100)
            return (long)st;
    }
    return i + 1 == n ? -1 : (long)i + 1;
}

int sentiment_load_vader(struct sentiment *s, const char *name, const char *text, size_t len,
                         struct buf *diag)
{
    struct reader r = {.name = name, .text = text, .len = len, .diag = diag};
    struct strmap map;
    strmap_init(&map);
    double *vals = NULL;
    size_t nvals = 0, cap = 0;
    int maxwords = 1;
    if (len > MAX_FILE) {
        buf_printf(diag, "%s: error: larger than %u MiB; is this VADER's lexicon?\n", name,
                   MAX_FILE >> 20);
        strmap_cleanup(&map);
        return FW_ETOOBIG;
    }
    size_t line = 0;
    for (size_t p = 0; p < len; line++) {
        size_t ls = p;
        while (p < len && text[p] != '\n')
            p++;
        size_t le = p;
        if (p < len)
            p++; /* the newline */
        if (le > ls && text[le - 1] == '\r')
            le--;
        if (le == ls)
            continue; /* blank lines carry nothing */
        /* Split on tabs: TOKEN, MEAN, STDDEV, RATINGS. */
        size_t fs[5], fe[5];
        int nf = 0;
        size_t q = ls;
        for (;;) {
            size_t st = q;
            while (q < le && text[q] != '\t')
                q++;
            if (nf < 5) {
                fs[nf] = st;
                fe[nf] = q;
            }
            nf++;
            if (q >= le)
                break;
            q++;
        }
        if (nf != 4) {
            if (nf < 4)
                rerr(&r, line, le - ls,
                     "expected 4 tab-separated fields (token, mean, standard deviation, "
                     "ratings), found %d",
                     nf);
            else
                rerr(&r, line, fs[4] - ls, "expected 4 tab-separated fields, found %d", nf);
            continue;
        }
        size_t tl = fe[0] - fs[0];
        if (tl == 0 || tl > MAX_TOKEN) {
            rerr(&r, line, 0, tl ? "token longer than %d bytes" : "empty token", MAX_TOKEN);
            continue;
        }
        int bad = 0;
        for (size_t i = fs[0]; i < fe[0]; i++)
            if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) {
                rerr(&r, line, i - ls, "control character in the token");
                bad = 1;
                break;
            }
        if (bad)
            continue;
        double mean, sd;
        if (parse_number(text + fs[1], fe[1] - fs[1], &mean)) {
            rerr(&r, line, fs[1] - ls, "the mean valence must be a number");
            continue;
        }
        if (fabs(mean) > VALENCE_LIMIT) {
            rerr(&r, line, fs[1] - ls, "the mean valence %g is outside -4 .. 4", mean);
            continue;
        }
        if (parse_number(text + fs[2], fe[2] - fs[2], &sd) || sd < 0) {
            rerr(&r, line, fs[2] - ls, "the standard deviation must be a number >= 0");
            continue;
        }
        long at = check_ratings(text + fs[3], fe[3] - fs[3]);
        if (at >= 0) {
            rerr(&r, line, fs[3] - ls + (size_t)at,
                 "the ratings must be a list such as [-1, 0, 2] of integers from -4 to 4");
            continue;
        }
        int words = 1;
        for (size_t i = fs[0]; i < fe[0]; i++)
            words += text[i] == ' ';
        if (words > maxwords)
            maxwords = words;
        struct strmap_entry *e = strmap_upsert(&map, text + fs[0], tl, NULL);
        if (!e->value) {
            vals = xgrow(vals, &cap, nvals + 1, sizeof *vals);
            e->value = (void *)(uintptr_t)(nvals + 1);
            nvals++;
        }
        vals[(uintptr_t)e->value - 1] = mean; /* a repeated token: the last wins */
    }
    if (!r.nerrors && nvals == 0)
        rerr(&r, 0, 0, "no entries: VADER's lexicon has thousands of lines");
    rfinish(&r);
    if (r.nerrors) {
        strmap_cleanup(&map);
        free(vals);
        return FW_EPARSE;
    }
    strmap_cleanup(&s->vader);
    free(s->vval);
    s->vader = map;
    s->vval = vals;
    s->nvval = nvals;
    s->vmaxwords = maxwords > PH_MAXWORDS ? PH_MAXWORDS : maxwords;
    return 0;
}

/* ---- the domain lexicon ------------------------------------------------------------------- */

static const char *const section_names[SEC_COUNT] = {"valence", "cancel", "competitor", "legal"};

void sentiment__domain_free(struct domain *d)
{
    if (!d)
        return;
    intern_cleanup(&d->words);
    free(d->ph);
    free(d->first_off);
    free(d->byfirst);
    free(d->wild);
    free(d);
}

/* A byte allowed in a phrase word: what the tokenizer can produce, lower case. */
static int word_byte(unsigned char c)
{
    return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'' || c == '-' ||
           c == '&' || c == '.' || c == '@' || c == '_' || c == '/';
}

/* Index the phrases by first word (CSR arrays), after the whole file is read. */
static void domain_index(struct domain *d)
{
    size_t nw = intern_count(&d->words);
    d->first_off = xcalloc(nw + 2, sizeof *d->first_off);
    for (size_t i = 0; i < d->nph; i++) {
        uint32_t t = d->ph[i].tok[0];
        if (t == PH_ANY || PH_IS_CLASS(t))
            d->nwild++;
        else
            d->first_off[t + 1]++;
    }
    for (size_t w = 0; w < nw; w++)
        d->first_off[w + 1] += d->first_off[w];
    d->first_off[nw + 1] = d->first_off[nw];
    d->byfirst = xmalloc((d->nph + 1) * sizeof *d->byfirst);
    d->wild = xmalloc((d->nwild + 1) * sizeof *d->wild);
    uint32_t *fill = xcalloc(nw + 1, sizeof *fill);
    size_t nwild = 0;
    for (size_t i = 0; i < d->nph; i++) {
        uint32_t t = d->ph[i].tok[0];
        if (t == PH_ANY || PH_IS_CLASS(t))
            d->wild[nwild++] = (uint32_t)i;
        else
            d->byfirst[d->first_off[t] + fill[t]++] = (uint32_t)i;
    }
    free(fill);
}

/* Two phrases of one section with the same words? */
static int same_phrase(const struct phrase *a, const struct phrase *b)
{
    return a->sec == b->sec && a->n == b->n && !memcmp(a->tok, b->tok, a->n * sizeof a->tok[0]);
}

int sentiment_load_domain(struct sentiment *s, const char *name, const char *text, size_t len,
                          struct buf *diag)
{
    struct reader r = {.name = name, .text = text, .len = len, .diag = diag};
    if (len > MAX_FILE) {
        buf_printf(diag, "%s: error: larger than %u MiB\n", name, MAX_FILE >> 20);
        return FW_ETOOBIG;
    }
    struct domain *d = xcalloc(1, sizeof *d);
    intern_init(&d->words);
    size_t cap = 0;
    int sec = -1;
    size_t *phline = NULL, phcap = 0; /* each phrase's line, for the class check */
    size_t line = 0;
    for (size_t p = 0; p < len; line++) {
        size_t ls = p;
        while (p < len && text[p] != '\n')
            p++;
        size_t le = p;
        if (p < len)
            p++;
        if (le > ls && text[le - 1] == '\r')
            le--;
        size_t q = ls;
        while (q < le && (text[q] == ' ' || text[q] == '\t'))
            q++;
        if (q == le || text[q] == '#')
            continue;
        /* Trailing blanks are not part of the line. */
        while (le > q && (text[le - 1] == ' ' || text[le - 1] == '\t'))
            le--;
        if (text[q] == '[') {
            size_t e = q + 1;
            while (e < le && text[e] != ']')
                e++;
            int found = -1;
            for (int k = 0; k < SEC_COUNT; k++)
                if (e < le && strlen(section_names[k]) == e - q - 1 &&
                    !memcmp(text + q + 1, section_names[k], e - q - 1))
                    found = k;
            if (e >= le)
                rerr(&r, line, q - ls, "a section header needs its closing ']'");
            else if (found < 0)
                rerr(&r, line, q + 1 - ls,
                     "unknown section '%.*s' (valence, cancel, competitor or legal)",
                     (int)(e - q - 1 > 40 ? 40 : e - q - 1), text + q + 1);
            else if (e + 1 != le)
                rerr(&r, line, e + 1 - ls, "nothing may follow a section header");
            sec = found;
            continue;
        }
        if (sec < 0) {
            rerr(&r, line, q - ls, "a phrase before any [section]");
            continue;
        }
        /* Split into space-separated fields; [valence] lines end with the number. */
        size_t ws[PH_MAXWORDS + 2], we[PH_MAXWORDS + 2];
        int nw = 0, toomany = 0;
        for (size_t i = q; i < le;) {
            while (i < le && (text[i] == ' ' || text[i] == '\t'))
                i++;
            if (i >= le)
                break;
            size_t st = i;
            while (i < le && text[i] != ' ' && text[i] != '\t')
                i++;
            if (nw == PH_MAXWORDS + 1) {
                toomany = 1;
                rerr(&r, line, st - ls, "a phrase has at most %d words", PH_MAXWORDS);
                break;
            }
            ws[nw] = st;
            we[nw] = i;
            nw++;
        }
        if (toomany)
            continue;
        struct phrase ph = {.sec = sec};
        if (sec == SEC_VALENCE) {
            if (nw < 2) {
                rerr(&r, line, le - ls, "a [valence] line is a phrase and then a number");
                continue;
            }
            nw--;
            if (parse_number(text + ws[nw], we[nw] - ws[nw], &ph.valence)) {
                rerr(&r, line, ws[nw] - ls, "the valence must be a number");
                continue;
            }
            if (fabs(ph.valence) > VALENCE_LIMIT) {
                rerr(&r, line, ws[nw] - ls, "the valence %g is outside -4 .. 4", ph.valence);
                continue;
            }
        }
        if (nw > PH_MAXWORDS) {
            rerr(&r, line, ws[PH_MAXWORDS] - ls, "a phrase has at most %d words", PH_MAXWORDS);
            continue;
        }
        int bad = 0;
        for (int w = 0; w < nw && !bad; w++) {
            const char *t = text + ws[w];
            size_t n = we[w] - ws[w];
            if (n == 1 && t[0] == '*') {
                if (sec == SEC_VALENCE) {
                    rerr(&r, line, ws[w] - ls, "'*' is for intent phrases only");
                    bad = 1;
                }
                ph.tok[w] = PH_ANY;
                continue;
            }
            if (t[0] == '<') {
                int found = -1;
                for (int k = SEC_CANCEL; k < SEC_COUNT; k++)
                    if (n == strlen(section_names[k]) + 2 && t[n - 1] == '>' &&
                        !memcmp(t + 1, section_names[k], n - 2))
                        found = k;
                if (found < 0 || sec == SEC_VALENCE || found == sec) {
                    rerr(&r, line, ws[w] - ls,
                         found < 0      ? "unknown list '%.*s' (<cancel>, <competitor>, <legal>)"
                         : found == sec ? "a list cannot contain itself ('%.*s')"
                                        : "'%.*s' is for intent phrases only",
                         (int)(n > 40 ? 40 : n), t);
                    bad = 1;
                }
                ph.tok[w] = PH_CLASS(found < 0 ? 1 : found);
                continue;
            }
            if (n > MAX_TOKEN) {
                rerr(&r, line, ws[w] - ls, "a word longer than %d bytes", MAX_TOKEN);
                bad = 1;
                continue;
            }
            for (size_t i = 0; i < n; i++)
                if (!word_byte((unsigned char)t[i])) {
                    rerr(&r, line, ws[w] - ls + i,
                         (t[i] >= 'A' && t[i] <= 'Z')
                             ? "phrases are written in lower case (text is matched lower-cased)"
                             : "'%c' cannot occur inside a word of the text (words are split "
                               "at spaces and lose their outer punctuation)",
                         t[i]);
                    bad = 1;
                    break;
                }
            if (!bad)
                ph.tok[w] = intern_id(&d->words, t, n);
        }
        if (bad)
            continue;
        ph.n = (uint32_t)nw;
        for (size_t i = 0; i < d->nph; i++)
            if (same_phrase(&d->ph[i], &ph)) {
                rerr(&r, line, q - ls, "this phrase is already in [%s] at line %zu",
                     section_names[sec], phline[i] + 1);
                bad = 1;
                break;
            }
        if (bad)
            continue;
        d->ph = xgrow(d->ph, &cap, d->nph + 1, sizeof *d->ph);
        phline = xgrow(phline, &phcap, d->nph + 1, sizeof *phline);
        phline[d->nph] = line;
        d->ph[d->nph++] = ph;
    }
    /* A list named inside another must not name lists itself: matching stays one level deep. */
    for (size_t i = 0; i < d->nph; i++)
        for (uint32_t w = 0; w < d->ph[i].n; w++) {
            if (!PH_IS_CLASS(d->ph[i].tok[w]))
                continue;
            int ref = PH_CLASS_SEC(d->ph[i].tok[w]);
            for (size_t j = 0; j < d->nph; j++) {
                if (d->ph[j].sec != ref)
                    continue;
                for (uint32_t v = 0; v < d->ph[j].n; v++)
                    if (PH_IS_CLASS(d->ph[j].tok[v])) {
                        rerr(&r, phline[j], 0,
                             "[%s] is named in [%s] (line %zu), so its phrases cannot name "
                             "lists themselves",
                             section_names[ref], section_names[d->ph[i].sec], phline[i] + 1);
                        goto next;
                    }
            }
        next:;
        }
    free(phline);
    rfinish(&r);
    if (r.nerrors) {
        sentiment__domain_free(d);
        return FW_EPARSE;
    }
    domain_index(d);
    sentiment__domain_free(s->dom);
    s->dom = d;
    return 0;
}

int sentiment_load_builtin_domain(struct sentiment *s, struct buf *diag)
{
    return sentiment_load_domain(s, "lexicon/support.txt (built in)", sentiment_builtin_domain,
                                 sentiment_builtin_domain_len, diag);
}

/* Read a whole file with a cap; FW_EIO with a message naming the path. */
static int read_file(const char *path, struct buf *text, struct buf *diag)
{
    buf_init(text, MAX_FILE);
    int rc = buf_read_file(text, path);
    if (rc == FW_EIO)
        buf_printf(diag, "%s: error: cannot read: %s\n", path, strerror(errno));
    else if (rc)
        buf_printf(diag, "%s: error: larger than %u MiB\n", path, MAX_FILE >> 20);
    return rc;
}

int sentiment_load_vader_file(struct sentiment *s, const char *path, struct buf *diag)
{
    struct buf text;
    int rc = read_file(path, &text, diag);
    if (!rc)
        rc = sentiment_load_vader(s, path, text.data ? text.data : "", text.len, diag);
    buf_cleanup(&text);
    return rc;
}

int sentiment_load_domain_file(struct sentiment *s, const char *path, struct buf *diag)
{
    struct buf text;
    int rc = read_file(path, &text, diag);
    if (!rc)
        rc = sentiment_load_domain(s, path, text.data ? text.data : "", text.len, diag);
    buf_cleanup(&text);
    return rc;
}

const char *sentiment_lexicon_path(const char *flag, const char *config, const char **from)
{
    const char *env = getenv("FOREWARN_LEXICON");
    if (flag && *flag) {
        *from = "--lexicon";
        return flag;
    }
    if (env && *env) {
        *from = "FOREWARN_LEXICON";
        return env;
    }
    if (config && *config) {
        *from = "sentiment.lexicon";
        return config;
    }
    *from = "the default path";
    return SENTIMENT_DEFAULT_LEXICON;
}
