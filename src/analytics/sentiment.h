/*
 * sentiment.h -- offline sentiment and intents of customer-authored text.
 *
 * A VADER-style scorer (Hutto & Gilbert, 2014) written for forewarn: word
 * valences from VADER's published lexicon, read at run time from the npm
 * package vader-sentiment (Apache-2.0), plus forewarn's own support-domain
 * lexicon (lexicon/support.txt, compiled in) of phrases with valences and
 * of intent phrases (cancel, competitor, legal).
 *
 * A `struct sentiment` is built once (process lifetime), then only read:
 * sentiment_score() keeps no state between calls, so threads may share it.
 */
#ifndef FW_SENTIMENT_H
#define FW_SENTIMENT_H

#include <stddef.h>
#include <stdio.h>

#include "util/buf.h"

/* Intents found in a text, as bits; printed in this order. */
enum sentiment_intent {
    SENTIMENT_CANCEL = 1 << 0,     /* wants to leave: cancel, switch carrier, port out */
    SENTIMENT_COMPETITOR = 1 << 1, /* names a competitor or a better deal elsewhere */
    SENTIMENT_LEGAL = 1 << 2,      /* lawyer, lawsuit, regulator, BBB */
};
#define SENTIMENT_NINTENTS 3

/* Label thresholds on the compound score (docs/guidance.md, "Labels"). */
#define SENTIMENT_NEUTRAL_BAND 0.05 /* |score| below this: neutral (VADER's own) */
#define SENTIMENT_VERY 0.6          /* |score| at or above this: very_* */

struct sentiment_result {
    double score;      /* compound, -1 .. 1 */
    const char *label; /* very_negative .. very_positive (static storage) */
    unsigned intents;  /* enum sentiment_intent bits */
};

struct sentiment;

/* An empty scorer: no lexicon yet.  Never NULL; free with sentiment_free. */
struct sentiment *sentiment_new(void);
void sentiment_free(struct sentiment *s);

/*
 * Read VADER's lexicon (vader_lexicon.txt: one entry a line, TOKEN TAB MEAN
 * TAB STDDEV TAB [TEN RATINGS]) from text (len bytes, need not be
 * NUL-terminated).  Errors go to diag as "name:line:col: error: ..." with
 * the line and a caret; returns 0, FW_EPARSE (nothing of the file is kept:
 * the scorer is unchanged) or FW_ETOOBIG.  A token listed twice keeps its
 * last value, as VADER's own reader does.
 */
int sentiment_load_vader(struct sentiment *s, const char *name, const char *text, size_t len,
                         struct buf *diag);

/*
 * Read a domain lexicon in the format of lexicon/support.txt; the same
 * errors as sentiment_load_vader.  Replaces any domain lexicon loaded
 * before (only when this one loads).
 */
int sentiment_load_domain(struct sentiment *s, const char *name, const char *text, size_t len,
                          struct buf *diag);
/* The built-in domain lexicon (lexicon/support.txt compiled in). */
int sentiment_load_builtin_domain(struct sentiment *s, struct buf *diag);

/* Read a whole file (at most 16 MiB) and load it as above; FW_EIO when unreadable. */
int sentiment_load_vader_file(struct sentiment *s, const char *path, struct buf *diag);
int sentiment_load_domain_file(struct sentiment *s, const char *path, struct buf *diag);

/*
 * Where VADER's lexicon is looked for, first match wins: `flag` (--lexicon),
 * $FOREWARN_LEXICON, `config` (sentiment.lexicon), then SENTIMENT_DEFAULT_LEXICON.
 * A named path (flag, environment, config) is used as given, existing or
 * not, so a wrong one is reported rather than skipped.  Returns the path
 * (one of the arguments, the environment's, or the static default) and
 * sets *from to where it came from ("--lexicon", "FOREWARN_LEXICON",
 * "sentiment.lexicon", "the default path").
 */
const char *sentiment_lexicon_path(const char *flag, const char *config, const char **from);
#define SENTIMENT_DEFAULT_LEXICON                                                                  \
    "/usr/local/share/forewarn/node_modules/vader-sentiment/vader_lexicon.txt"

/*
 * Score len bytes of UTF-8 text (invalid bytes are tolerated).  Only the
 * first SENTIMENT_MAX_TOKENS words are read.  Needs a loaded VADER lexicon
 * (without one every word is unknown and the score is 0).
 */
void sentiment_score(const struct sentiment *s, const char *text, size_t len,
                     struct sentiment_result *out);
#define SENTIMENT_MAX_TOKENS 4096

/* The label of a compound score. */
const char *sentiment_label(double score);
/* The name of one intent bit ("cancel", "competitor", "legal"); NULL for others. */
const char *sentiment_intent_name(unsigned bit);

/*
 * `forewarn sentiment`: read NDJSON {"id": "...", "text": "..."} (other
 * fields ignored, blank lines skipped) from `in`, named `name` in messages;
 * validate every line first, and only if all are valid write one line
 * {"id","score","label","intents"} per input line to `out`, in order.
 * Errors (each with name:line:col, at most 20) go to `err`.  Returns 0, or
 * FW_EPARSE / FW_ETOOBIG / FW_EIO with nothing written to `out`.
 */
int sentiment_run(const struct sentiment *s, FILE *in, const char *name, FILE *out, FILE *err);

/*
 * A scorer ready to use: VADER's lexicon from sentiment_lexicon_path(flag,
 * lexicon) and the domain lexicon (the file `domain`, or the built-in one).
 * On failure prints to err, as `who: ...`, what did not load, from where and
 * how to fix it, and returns NULL: a missing lexicon stops the start, never
 * scores everything neutral.
 */
struct sentiment *sentiment_open(const char *flag, const char *lexicon, const char *domain,
                                 const char *who, FILE *err);

#endif
