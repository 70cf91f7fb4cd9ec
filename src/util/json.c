/*
 * json.c -- jansson's document model with faster ways in and out: a
 * decoder that scans JSON in place and builds jansson values, an encoder
 * that writes them without jansson's callbacks, and per-thread free lists
 * for jansson's small blocks.  Each answers exactly as jansson would.
 *
 * The decoder is a recursive-descent parser over a byte range.  Every function returns
 * the value it built, or NULL to "bail": the input is outside the subset
 * this file decides on its own (an error, or a rare construct), and the
 * caller hands the whole buffer to json_loadb instead.  Bailing frees
 * whatever was built so far, so the only outcomes are jansson's.
 *
 * The subset follows jansson 2.14's decoder rule by rule: RFC 8259
 * grammar; strings are valid UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF) without raw control characters; integers without
 * a fraction or exponent are json_integer, the rest json_real through
 * strtod; the top level is an object or an array; nesting deeper than
 * 2048 is an error.
 */
#include "util/json.h"

#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/util.h"

#define MAX_DEPTH 2048 /* jansson's JSON_PARSER_MAX_DEPTH */
#define MAX_INT_DIGITS 18 /* always fits in json_int_t; longer ones go to jansson */

struct scan {
    const unsigned char *p, *end;
    size_t flags;
    int depth;
    char *tmp; /* unescaped string bytes; grows, freed at the end */
    size_t tmpcap;
};

static json_t *value(struct scan *s);

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/*
 * Length of the UTF-8 sequence at p (first byte >= 0x80), or 0 when it is
 * not one jansson accepts (its utf8_check_first and utf8_check_full).
 */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = *p;
    size_t n;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, v = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, v = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, v = c & 0x07;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
        (n == 4 && v < 0x10000))
        return 0;
    return n;
}

static void tmp_put(struct scan *s, size_t *len, const void *src, size_t n)
{
    if (!n)
        return;
    if (*len + n > s->tmpcap) {
        s->tmpcap = (*len + n) * 2 + 64;
        s->tmp = xrealloc(s->tmp, s->tmpcap);
    }
    memcpy(s->tmp + *len, src, n);
    *len += n;
}

static int hex4(const unsigned char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* Decode one escape after the backslash at s->p into tmp.  0, or -1 to bail. */
static int unescape(struct scan *s, size_t *len)
{
    static const char simple[] = "\"\\/bfnrt", repl[] = "\"\\/\b\f\n\r\t";
    if (s->p + 1 >= s->end)
        return -1;
    unsigned c = s->p[1];
    const char *k = c ? strchr(simple, (int)c) : NULL;
    if (k) {
        tmp_put(s, len, &repl[k - simple], 1);
        s->p += 2;
        return 0;
    }
    uint32_t v, lo;
    if (c != 'u' || s->end - s->p < 6 || hex4(s->p + 2, &v))
        return -1;
    s->p += 6;
    if (v == 0 || (v >= 0xDC00 && v <= 0xDFFF))
        return -1; /* NUL needs JSON_ALLOW_NUL; a lone low surrogate is an error */
    if (v >= 0xD800 && v <= 0xDBFF) {
        if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || hex4(s->p + 2, &lo) ||
            lo < 0xDC00 || lo > 0xDFFF)
            return -1;
        s->p += 6;
        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
    }
    unsigned char u[4];
    size_t n;
    if (v < 0x80)
        u[0] = (unsigned char)v, n = 1;
    else if (v < 0x800)
        u[0] = (unsigned char)(0xC0 | v >> 6), u[1] = (unsigned char)(0x80 | (v & 0x3F)), n = 2;
    else if (v < 0x10000)
        u[0] = (unsigned char)(0xE0 | v >> 12), u[1] = (unsigned char)(0x80 | ((v >> 6) & 0x3F)),
        u[2] = (unsigned char)(0x80 | (v & 0x3F)), n = 3;
    else
        u[0] = (unsigned char)(0xF0 | v >> 18), u[1] = (unsigned char)(0x80 | ((v >> 12) & 0x3F)),
        u[2] = (unsigned char)(0x80 | ((v >> 6) & 0x3F)), u[3] = (unsigned char)(0x80 | (v & 0x3F)),
        n = 4;
    tmp_put(s, len, u, n);
    return 0;
}

/*
 * The string at s->p (on its opening quote).  Sets *str and *len to its
 * bytes: in the input when it has no escapes, else in s->tmp (valid until
 * the next string).  0, or -1 to bail.
 */
static int string(struct scan *s, const char **str, size_t *len)
{
    const unsigned char *start = ++s->p;
    for (;;) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /*
         * Eight bytes at a time to the first that needs a look: a quote, a
         * backslash, a control character or a byte of a UTF-8 sequence.
         * The lowest flagged byte is exact (the tests' borrows only reach
         * bytes above a true hit), so the loop jumps straight to it.
         */
        const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        while (s->end - s->p >= 8) {
            uint64_t w;
            memcpy(&w, s->p, 8);
            uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
            uint64_t m = (((q - ones) & ~q) | ((b - ones) & ~b) | (w - ones * 0x20) | w) & highs;
            if (m) {
                s->p += __builtin_ctzll(m) >> 3;
                goto look;
            }
            s->p += 8;
        }
#endif
        while (s->p < s->end && *s->p >= 0x20 && *s->p < 0x80 && *s->p != '"' && *s->p != '\\')
            s->p++;
        if (s->p >= s->end)
            return -1;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    look:
#endif
        if (*s->p == '"') {
            *str = (const char *)start;
            *len = (size_t)(s->p++ - start);
            return 0;
        }
        if (*s->p == '\\')
            break;
        if (*s->p < 0x20)
            return -1;
        size_t n = utf8_seq(s->p, s->end); /* >= 0x80 */
        if (!n)
            return -1;
        s->p += n;
    }
    if (s->p >= s->end)
        return -1;
    /* Escapes: copy what came before, then decode into tmp. */
    size_t n = 0;
    tmp_put(s, &n, start, (size_t)(s->p - start));
    while (s->p < s->end) {
        const unsigned char *run = s->p;
        while (s->p < s->end && *s->p != '"' && *s->p != '\\' && *s->p >= 0x20 && *s->p < 0x80)
            s->p++;
        tmp_put(s, &n, run, (size_t)(s->p - run));
        if (s->p >= s->end)
            return -1;
        unsigned c = *s->p;
        if (c == '"') {
            s->p++;
            *str = s->tmp;
            *len = n;
            return 0;
        }
        if (c == '\\') {
            if (unescape(s, &n))
                return -1;
        } else if (c < 0x20) {
            return -1;
        } else {
            size_t k = utf8_seq(s->p, s->end);
            if (!k)
                return -1;
            tmp_put(s, &n, s->p, k);
            s->p += k;
        }
    }
    return -1;
}

static int is_digit(const unsigned char *p, const unsigned char *end)
{
    return p < end && *p >= '0' && *p <= '9';
}

static json_t *number(struct scan *s)
{
    const unsigned char *start = s->p;
    int neg = 0, real = 0;
    if (*s->p == '-')
        neg = 1, s->p++;
    if (!is_digit(s->p, s->end))
        return NULL;
    if (*s->p == '0') {
        s->p++;
        if (is_digit(s->p, s->end))
            return NULL; /* a leading zero */
    } else {
        while (is_digit(s->p, s->end))
            s->p++;
    }
    if (s->p < s->end && *s->p == '.') {
        real = 1;
        s->p++;
        if (!is_digit(s->p, s->end))
            return NULL;
        while (is_digit(s->p, s->end))
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        real = 1;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!is_digit(s->p, s->end))
            return NULL;
        while (is_digit(s->p, s->end))
            s->p++;
    }
    size_t n = (size_t)(s->p - start);
    if (!real) {
        size_t digits = n - (size_t)neg;
        if (digits > MAX_INT_DIGITS)
            return NULL; /* jansson decides between a value and "too big integer" */
        json_int_t v = 0;
        for (const unsigned char *q = start + neg; q < s->p; q++)
            v = v * 10 + (*q - '0');
        return json_integer(neg ? -v : v);
    }
    char tmp[64];
    if (n >= sizeof tmp)
        return NULL;
    memcpy(tmp, start, n);
    tmp[n] = '\0';
    double d = strtod(tmp, NULL);
    if (isinf(d))
        return NULL; /* jansson: "real number overflow" */
    return json_real(d);
}

static int literal(struct scan *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n))
        return -1;
    s->p += n;
    return 0;
}

static json_t *object(struct scan *s)
{
    json_t *obj = json_object();
    size_t members = 0;
    s->p++; /* '{' */
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return obj;
    }
    for (;;) {
        const char *key;
        size_t klen;
        if (s->p >= s->end || *s->p != '"' || string(s, &key, &klen))
            goto bail;
        /* The key may live in tmp, which the value's strings reuse: keep a copy. */
        char kbuf[128], *k = klen < sizeof kbuf ? kbuf : xmalloc(klen + 1);
        memcpy(k, key, klen);
        skip_ws(s);
        json_t *v = NULL;
        if (s->p < s->end && *s->p == ':') {
            s->p++;
            skip_ws(s);
            v = value(s);
        }
        if (v)
            json_object_setn_new_nocheck(obj, k, klen, v);
        if (k != kbuf)
            free(k);
        /* A repeated key replaces the value, so the object does not grow: jansson refuses it. */
        if (!v || ((s->flags & JSON_REJECT_DUPLICATES) && json_object_size(obj) != ++members))
            goto bail;
        skip_ws(s);
        if (s->p >= s->end)
            goto bail;
        if (*s->p == '}') {
            s->p++;
            return obj;
        }
        if (*s->p != ',')
            goto bail;
        s->p++;
        skip_ws(s);
    }
bail:
    json_decref(obj);
    return NULL;
}

static json_t *array(struct scan *s)
{
    json_t *arr = json_array();
    s->p++; /* '[' */
    skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return arr;
    }
    for (;;) {
        json_t *v = value(s);
        if (!v)
            goto bail;
        json_array_append_new(arr, v);
        skip_ws(s);
        if (s->p >= s->end)
            goto bail;
        if (*s->p == ']') {
            s->p++;
            return arr;
        }
        if (*s->p != ',')
            goto bail;
        s->p++;
        skip_ws(s);
    }
bail:
    json_decref(arr);
    return NULL;
}

static json_t *value(struct scan *s)
{
    if (s->p >= s->end)
        return NULL;
    const char *str;
    size_t len;
    json_t *v = NULL;
    switch (*s->p) {
    case '{':
    case '[':
        if (++s->depth > MAX_DEPTH)
            return NULL;
        v = *s->p == '{' ? object(s) : array(s);
        s->depth--;
        return v;
    case '"':
        return string(s, &str, &len) ? NULL : json_stringn_nocheck(str, len);
    case 't':
        return literal(s, "true", 4) ? NULL : json_true();
    case 'f':
        return literal(s, "false", 5) ? NULL : json_false();
    case 'n':
        return literal(s, "null", 4) ? NULL : json_null();
    default:
        return number(s);
    }
}

/*
 * The allocator behind fw_json_init.  Every block is an ordinary malloc
 * block, so whatever jansson hands out (json_dumps' strings included) may
 * still be released with free().  A block that jansson frees goes onto the
 * freeing thread's list for its size class (usable size / 16, up to 256
 * bytes), up to POOL_KEEP blocks per class; beyond that, and for larger
 * blocks, it goes back to free.  So a thread that parses and frees reuses
 * warm blocks in LIFO order without glibc's bin management, and a thread
 * that only frees what others parsed (serve's engine thread) holds at most
 * POOL_KEEP blocks per class.  Lists are emptied when a thread exits.
 */
#define POOL_CLASSES 16
#define POOL_KEEP 4096

struct pool {
    void *head[POOL_CLASSES + 1];
    unsigned count[POOL_CLASSES + 1];
    int registered;
};

static _Thread_local struct pool pool;
static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_drain(void *arg)
{
    struct pool *p = arg;
    for (size_t c = 1; c <= POOL_CLASSES; c++) {
        while (p->head[c]) {
            void *next;
            memcpy(&next, p->head[c], sizeof next);
            free(p->head[c]);
            p->head[c] = next;
        }
        p->count[c] = 0;
    }
}

static void pool_key_make(void)
{
    pthread_key_create(&pool_key, pool_drain);
}

static void *pool_malloc(size_t n)
{
    size_t c = (n + 15) / 16; /* a block of class c has at least 16 * c usable bytes */
    if (c == 0)
        c = 1;
    if (c > POOL_CLASSES)
        return malloc(n);
    void *b = pool.head[c];
    if (!b)
        return malloc(16 * c);
    memcpy(&pool.head[c], b, sizeof b);
    pool.count[c]--;
    return b;
}

static void pool_free(void *b)
{
    if (!b)
        return;
    size_t c = malloc_usable_size(b) / 16;
    if (c == 0 || c > POOL_CLASSES || pool.count[c] >= POOL_KEEP) {
        free(b);
        return;
    }
    if (!pool.registered) {
        pool.registered = 1;
        pthread_once(&pool_once, pool_key_make);
        pthread_setspecific(pool_key, &pool); /* drained when the thread exits */
    }
    memcpy(b, &pool.head[c], sizeof b);
    pool.head[c] = b;
    pool.count[c]++;
}

#if defined(__SANITIZE_ADDRESS__)
#define POOL_ENABLED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ENABLED 0
#endif
#endif
#ifndef POOL_ENABLED
#define POOL_ENABLED 1
#endif

void fw_json_init(void)
{
    if (POOL_ENABLED)
        json_set_alloc_funcs(pool_malloc, pool_free);
}

json_t *fw__json_scan(const char *buf, size_t len, size_t flags, size_t *used)
{
    if (!buf || (flags & ~(size_t)(JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK)))
        return NULL;
    struct scan s = {.p = (const unsigned char *)buf,
                     .end = (const unsigned char *)buf + len,
                     .flags = flags};
    skip_ws(&s);
    json_t *root = NULL;
    if (s.p < s.end && (*s.p == '{' || *s.p == '['))
        root = value(&s);
    if (root && !(flags & JSON_DISABLE_EOF_CHECK)) {
        skip_ws(&s);
        if (s.p != s.end) {
            json_decref(root);
            root = NULL;
        }
    }
    free(s.tmp);
    *used = (size_t)((const char *)s.p - buf);
    return root;
}

json_t *fw_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err)
{
    size_t used;
    json_t *root = fw__json_scan(buf, len, flags, &used);
    if (!root)
        return json_loadb(buf, len, flags, err);
    if (err) {
        memset(err, 0, sizeof *err);
        err->line = err->column = -1;
        err->position = (int)used;
        strcpy(err->source, "<buffer>");
    }
    return root;
}

/* ---- the encoder ---- */

/* The output: room is made before each piece, so the writes need no checks. */
struct out {
    char *d;
    size_t len, cap;
};

static char *room(struct out *o, size_t n)
{
    if (o->len + n > o->cap) {
        o->cap = (o->len + n) * 2 + 256;
        o->d = xrealloc(o->d, o->cap);
    }
    return o->d + o->len;
}

static void put(struct out *o, const void *src, size_t n)
{
    if (!n)
        return;
    memcpy(room(o, n), src, n);
    o->len += n;
}

static void putc1(struct out *o, char c)
{
    *room(o, 1) = c;
    o->len++;
}

/* A string as jansson's dump_string writes it; -1 when it is not valid UTF-8. */
static int dump_string(struct out *o, const char *str, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)str, *end = p + n;
    char *w = room(o, 6 * n + 2), *start = w; /* the worst case: every byte \u00XX */
    *w++ = '"';
    while (p < end) {
        unsigned c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *w++ = (char)c;
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq(p, end);
            if (!k)
                return -1;
            memcpy(w, p, k);
            w += k;
            p += k;
            continue;
        }
        *w++ = '\\';
        switch (c) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '\b': *w++ = 'b'; break;
        case '\f': *w++ = 'f'; break;
        case '\n': *w++ = 'n'; break;
        case '\r': *w++ = 'r'; break;
        case '\t': *w++ = 't'; break;
        default:
            *w++ = 'u', *w++ = '0', *w++ = '0', *w++ = hex[c >> 4], *w++ = hex[c & 15];
        }
        p++;
    }
    *w++ = '"';
    o->len += (size_t)(w - start);
    return 0;
}

/* A real as jansson's jsonp_dtostr writes it with the default precision (17). */
static void dump_real(struct out *o, double v)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp - 3, "%.17g", v);
    if (n < 0 || (size_t)n >= sizeof tmp - 3)
        n = 0;
    if (!strchr(tmp, '.') && !strchr(tmp, 'e')) {
        memcpy(tmp + n, ".0", 3);
        n += 2;
    }
    char *e = strchr(tmp, 'e');
    if (e) {
        /* No '+' and no leading zeros in the exponent. */
        char *start = e + 1, *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, (size_t)(tmp + n + 1 - end));
            n -= (int)(end - start);
        }
    }
    put(o, tmp, (size_t)n);
}

static void dump_integer(struct out *o, json_int_t v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    put(o, p, (size_t)(tmp + sizeof tmp - p));
}

static int dump(struct out *o, const json_t *j, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        putc1(o, '{');
        int first = 1;
        for (void *it = json_object_iter((json_t *)j); it;
             it = json_object_iter_next((json_t *)j, it)) {
            if (!first)
                putc1(o, ',');
            first = 0;
            if (dump_string(o, json_object_iter_key(it), json_object_iter_key_len(it)))
                return -1;
            putc1(o, ':');
            if (dump(o, json_object_iter_value(it), depth + 1))
                return -1;
        }
        putc1(o, '}');
        return 0;
    }
    case JSON_ARRAY:
        putc1(o, '[');
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i)
                putc1(o, ',');
            if (dump(o, json_array_get(j, i), depth + 1))
                return -1;
        }
        putc1(o, ']');
        return 0;
    case JSON_STRING:
        return dump_string(o, json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        dump_integer(o, json_integer_value(j));
        return 0;
    case JSON_REAL:
        dump_real(o, json_real_value(j));
        return 0;
    case JSON_TRUE:
        put(o, "true", 4);
        return 0;
    case JSON_FALSE:
        put(o, "false", 5);
        return 0;
    case JSON_NULL:
        put(o, "null", 4);
        return 0;
    }
    return -1;
}

size_t fw_json_compact_size(const json_t *j)
{
    if (!json_is_object(j) && !json_is_array(j))
        return json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    struct out o = {0};
    size_t n = dump(&o, j, 1) ? json_dumpb(j, NULL, 0, JSON_COMPACT) : o.len;
    free(o.d);
    return n;
}

char *fw_json_dumps(const json_t *j)
{
    if (!json_is_object(j) && !json_is_array(j))
        return NULL; /* json_dumps wants JSON_ENCODE_ANY for these */
    struct out o = {0};
    if (dump(&o, j, 1)) {
        free(o.d);
        return json_dumps(j, JSON_COMPACT); /* jansson decides: NULL, as it says */
    }
    putc1(&o, '\0');
    return o.d;
}

int fw_json_str(struct buf *out, const char *s)
{
    size_t n = strlen(s), i = 0;
    while (i < n && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x80)
        i++;
    if (i == n) { /* plain ASCII, the common case: only quotes and backslashes escaped */
        size_t run = 0;
        buf_putc(out, '"');
        for (i = 0; i < n; i++)
            if (s[i] == '"' || s[i] == '\\') {
                buf_append(out, s + run, i - run);
                buf_putc(out, '\\');
                run = i;
            }
        buf_append(out, s + run, n - run);
        return buf_putc(out, '"') ? -1 : 0;
    }
    struct out o = {0};
    int rc = dump_string(&o, s, n);
    if (!rc)
        buf_append(out, o.d, o.len);
    free(o.d);
    return rc ? -1 : 0;
}
