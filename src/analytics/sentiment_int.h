/*
 * sentiment_int.h -- what the scorer (sentiment.c), the lexicon readers
 * (lexicon.c) and the command (run.c) share inside the analytics module.
 */
#ifndef FW_SENTIMENT_INT_H
#define FW_SENTIMENT_INT_H

#include <stdint.h>

#include "analytics/sentiment.h"
#include "util/map.h"

/* Sections of a domain lexicon; the intent sections follow enum sentiment_intent's order. */
enum { SEC_VALENCE = 0, SEC_CANCEL, SEC_COMPETITOR, SEC_LEGAL, SEC_COUNT };

/* Pattern tokens that are not words: "*" and "<intent>". */
#define PH_ANY UINT32_MAX
#define PH_CLASS(sec) (UINT32_MAX - 1 - (uint32_t)(sec)) /* sec in SEC_CANCEL..SEC_LEGAL */
#define PH_IS_CLASS(t) ((t) >= PH_CLASS(SEC_COUNT - 1) && (t) != PH_ANY)
#define PH_CLASS_SEC(t) ((int)(UINT32_MAX - 1 - (t)))
#define PH_MAXWORDS 8 /* words in one phrase */

struct phrase {
    uint32_t tok[PH_MAXWORDS]; /* interned word ids, PH_ANY or PH_CLASS(sec) */
    uint32_t n;                /* 1 .. PH_MAXWORDS */
    int sec;                   /* SEC_* */
    double valence;            /* SEC_VALENCE only */
};

/* A loaded domain lexicon: phrases indexed by their first word. */
struct domain {
    struct intern words; /* every word that appears in a phrase */
    struct phrase *ph;   /* all phrases, in file order */
    size_t nph;
    uint32_t *first_off; /* phrases starting with word w: byfirst[first_off[w] .. first_off[w+1]) */
    uint32_t *byfirst;
    uint32_t *wild; /* phrases starting with "*" or a class */
    size_t nwild;
};

struct sentiment {
    struct strmap vader; /* VADER token (as in the file) -> index+1 into vval */
    double *vval;
    size_t nvval;
    int vmaxwords;      /* most words in one VADER entry ("can't stand": 2) */
    struct domain *dom; /* NULL until a domain lexicon is loaded */
};

/* Release a domain (NULL is fine). */
void sentiment__domain_free(struct domain *d);

#endif
