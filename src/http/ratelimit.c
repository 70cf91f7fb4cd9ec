/*
 * ratelimit.c -- requests per token: a token bucket per token digest.
 *
 * Each token holds up to `burst` requests' worth of credit and earns
 * `rate` a second; a request spends one.  A request that finds less than
 * one is refused, and told when one will be there (Retry-After).  Only
 * tokens that authenticated are counted, so the table grows with the
 * tokens that exist, not with what strangers send; a session counts as the
 * token it was opened with.
 *
 * Invariant: every bucket is read and written under the one mutex; the
 * work per request is a hash look-up and a few arithmetic operations.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

#include "http/http_int.h"
#include "util/map.h"
#include "util/util.h"

struct bucket {
    double credit; /* requests that may be made now */
    int64_t at;    /* when credit was last brought up to date (ms, monotonic) */
};

struct ratelimit {
    pthread_mutex_t mu;
    double rate, burst;
    struct strmap buckets; /* hex of the token digest's first 16 bytes -> struct bucket * */
};

struct ratelimit *http__ratelimit_new(unsigned rate, unsigned burst)
{
    if (!rate)
        return NULL;
    struct ratelimit *rl = xcalloc(1, sizeof *rl);
    pthread_mutex_init(&rl->mu, NULL);
    rl->rate = rate;
    rl->burst = burst > 0 ? burst : 1;
    strmap_init(&rl->buckets);
    return rl;
}

void http__ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; i < rl->buckets.len; i++)
        free(rl->buckets.entries[i].value);
    strmap_cleanup(&rl->buckets);
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

unsigned http__ratelimit_take(struct ratelimit *rl, const unsigned char digest[AUTH_DIGEST_LEN],
                              int64_t now_ms)
{
    static const char hex[] = "0123456789abcdef";
    char key[33];
    unsigned wait = 0;
    if (!rl)
        return 0;
    for (int i = 0; i < 16; i++) {
        key[2 * i] = hex[digest[i] >> 4];
        key[2 * i + 1] = hex[digest[i] & 15];
    }
    key[32] = '\0';
    pthread_mutex_lock(&rl->mu);
    int created;
    struct strmap_entry *e = strmap_upsert(&rl->buckets, key, 32, &created);
    struct bucket *b = e->value;
    if (created) {
        b = e->value = xmalloc(sizeof *b);
        b->credit = rl->burst;
        b->at = now_ms;
    }
    if (now_ms > b->at) {
        b->credit += (double)(now_ms - b->at) * rl->rate / 1000.0;
        if (b->credit > rl->burst)
            b->credit = rl->burst;
        b->at = now_ms;
    }
    if (b->credit >= 1.0)
        b->credit -= 1.0;
    else
        wait = (unsigned)ceil((1.0 - b->credit) / rl->rate); /* whole seconds, at least 1 */
    pthread_mutex_unlock(&rl->mu);
    return wait ? wait : 0;
}
