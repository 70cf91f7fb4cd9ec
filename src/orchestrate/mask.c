/*
 * mask.c -- phone numbers in customer text: every number that is not the
 * customer's own has all digits but the last four starred, so a message
 * read over a shoulder or forwarded leaks no one's number.  Ticket numbers,
 * order ids, amounts and dates are not phone numbers and stay as written.
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/orch_int.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"
#include "util/util.h"

void orch__mask_phone(const char *phone, char *out, size_t n)
{
    size_t digits = 0, len = strlen(phone);
    for (size_t i = 0; i < len; i++)
        digits += isdigit((unsigned char)phone[i]) != 0;
    size_t k = 0, seen = 0;
    for (size_t i = 0; i < len && k + 1 < n; i++) {
        char ch = phone[i];
        if (isdigit((unsigned char)ch)) {
            seen++;
            out[k++] = seen + 4 > digits ? ch : '*';
        } else {
            out[k++] = ch;
        }
    }
    out[k] = '\0';
}

/* Mask every run of 7+ digits (with separators) in external text, keeping the last 4. */
/* The digits of s, at most n - 1 of them. */
static size_t digits_of(const char *s, size_t len, char *out, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < n; i++)
        if (isdigit((unsigned char)s[i]))
            out[k++] = s[i];
    out[k] = '\0';
    return k;
}

/*
 * Is this run of digits and separators someone else's phone number?  An
 * international number written with '+' (8 to 15 digits), or a North
 * American one written with separators ("415-555-0199", "(415) 555 0199",
 * "+1 415.555.0199").  The customer's own number (with or without its
 * country code) is not masked in a message to that customer: it is theirs.
 * Ticket and order numbers, amounts and dates ("2026-03-02") are none of
 * these.
 */
static int is_phone(struct orch *o, const char *run, size_t len, const char *own)
{
    char d[64], kd[64];
    size_t nd = digits_of(run, len, d, sizeof d);
    if (nd < 7 || nd > 15)
        return 0;
    size_t nk = own ? digits_of(own, strlen(own), kd, sizeof kd) : 0;
    size_t tail = nk < 10 ? nk : 10;
    if (nk >= 7 && nd >= tail && !strcmp(d + nd - tail, kd + nk - tail))
        return 0;
    if (run[0] == '+' && nd >= 8)
        return 1;
    char *s = xstrndup(run, len);
    int nanp = regexec(&o->phone_re, s, 0, NULL, 0) == 0;
    free(s);
    return nanp;
}

/*
 * Mask other people's phone numbers in customer text (all digits but the
 * last four).  own: the customer's own number (left as written), or NULL.
 */
char *orch__mask_numbers(struct orch *o, const char *text, const char *own)
{
    struct buf out;
    buf_init(&out, 0);
    const char *p = text, *flushed = text;
    while (*p) {
        /* Straight to the next byte that may start a run (most of a message is words). */
        p += strcspn(p, "0123456789+(");
        if (!*p)
            break;
        /* A run starts at a digit, or at '+' or '(' before one, not inside a word or an id. */
        int starts = isdigit((unsigned char)*p) ||
                     ((*p == '+' || *p == '(') && isdigit((unsigned char)p[1]));
        if (!starts || (p > text && (isalnum((unsigned char)p[-1]) || strchr("#_/+", p[-1])))) {
            p++;
            continue;
        }
        const char *e = p + 1;
        while (*e && (isdigit((unsigned char)*e) || strchr(" ().-", *e)))
            e++;
        const char *end = e;
        while (end > p && !isdigit((unsigned char)end[-1]))
            end--; /* separators after the last digit are not part of it */
        if (!isalnum((unsigned char)*end) && is_phone(o, p, (size_t)(end - p), own)) {
            buf_append(&out, flushed, (size_t)(p - flushed));
            char *run = xstrndup(p, (size_t)(end - p));
            char masked[256];
            orch__mask_phone(run, masked, sizeof masked);
            buf_puts(&out, masked);
            free(run);
            flushed = p = end;
            continue;
        }
        /* Not one number: perhaps one starts at the next word ("on 2026-03-02 415-555-0199"). */
        const char *space = memchr(p, ' ', (size_t)(end - p));
        p = space ? space + 1 : e;
    }
    buf_puts(&out, flushed);
    return buf_steal(&out);
}
