/*
 * util.h -- process-wide helpers with no product types: allocation that
 * aborts on exhaustion, the error-code list, and small macros.
 *
 * Out of memory aborts (xmalloc and friends), so callers never test for
 * NULL; in exchange every buffer that grows with input has a hard cap.
 */
#ifndef FW_UTIL_H
#define FW_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * One list of error codes; FW_ERR_MAP generates both the enum and the
 * strings returned by fw_strerror().  Functions that can fail return 0 or
 * one of these (negative) codes.
 */
#define FW_ERR_MAP(X)                                                                              \
    X(NOMEM, "out of memory")                                                                      \
    X(INVAL, "invalid argument")                                                                   \
    X(PARSE, "parse error")                                                                        \
    X(TOOBIG, "input exceeds its limit")                                                           \
    X(NOTFOUND, "not found")                                                                       \
    X(EXISTS, "already exists")                                                                    \
    X(IO, "input/output error")                                                                    \
    X(DB, "database error")                                                                        \
    X(TYPE, "type mismatch")                                                                       \
    X(STATE, "operation not allowed in this state")

enum fw_err {
    FW_OK = 0,
#define FW__ERR_ENUM(name, str) FW_E##name,
    FW__ERR_FIRST = -100,
    FW_ERR_MAP(FW__ERR_ENUM)
#undef FW__ERR_ENUM
};

/* Human-readable text for an error code (static storage). */
const char *fw_strerror(int err);

/* Allocation: never returns NULL; aborts with a message on exhaustion. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Grow *cap (doubling, at least `need`) and realloc *p of elements of size `elem`. */
void *xgrow(void *p, size_t *cap, size_t need, size_t elem);

/* 64-bit FNV-1a hash of n bytes; stable across runs (replay output depends on it). */
uint64_t fw_hash(const void *data, size_t n);

/* Compare two byte strings in time independent of where they differ. 0 when equal. */
int fw_consttime_cmp(const void *a, size_t alen, const void *b, size_t blen);

#endif
