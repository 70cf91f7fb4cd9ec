/*
 * buf.h -- a growable byte buffer with a hard cap.
 *
 * Invariant: data[len] == '\0' whenever data != NULL, so the contents can
 * be used as a C string.  Appends past `max` fail with FW_ETOOBIG and leave
 * the buffer unchanged (the curl dynbuf "toobig" rule).
 */
#ifndef FW_BUF_H
#define FW_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    char *data;  /* owned; NUL-terminated; NULL until the first append */
    size_t len;  /* bytes used, excluding the terminator */
    size_t cap;  /* bytes allocated */
    size_t max;  /* hard cap on len; 0 means SIZE_MAX */
};

/* Prepare an empty buffer that may hold at most `max` bytes (0: no cap). */
void buf_init(struct buf *b, size_t max);
/* Free the contents; the buffer can be reused after buf_init. */
void buf_cleanup(struct buf *b);
/* Forget the contents but keep the allocation. */
void buf_reset(struct buf *b);
/* Take ownership of the contents (never NULL); the buffer is left empty. */
char *buf_steal(struct buf *b);

int buf_append(struct buf *b, const void *data, size_t n);
/*
 * Room for n more bytes (and the terminator) in one allocation, for a writer
 * that knows roughly how much comes: 0, or FW_ETOOBIG past the cap.
 */
int buf_reserve(struct buf *b, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/*
 * Append a whole file, within the buffer's cap: 0; FW_EIO when it cannot be
 * opened or read (errno says why); FW_ETOOBIG when it is larger than the cap.
 * The one capped file reader of the project (rules, playbooks, config,
 * templates, lexicons, test files).
 */
int buf_read_file(struct buf *b, const char *path);

/* Append a decimal integer (what printf's "%lld" writes, without its cost). */
int buf_put_int(struct buf *b, long long v);
/* Append s (n bytes) as a JSON string literal, quotes included. */
int buf_json_str(struct buf *b, const char *s, size_t n);
/* Append a JSON number: integers print without a fraction, others with %.17g trimmed. */
int buf_json_num(struct buf *b, double v);
/* Append a UTC RFC 3339 time (ms since epoch) as a JSON string. */
int buf_json_time(struct buf *b, int64_t ms);

#endif
