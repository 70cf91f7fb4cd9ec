/*
 * csv.h -- an RFC 4180 table reader: a header row, then data rows of the
 * same width.
 *
 * Fields are separated by commas; a field may be quoted ("a, b"), with ""
 * for a quote inside and line breaks allowed inside the quotes.  Records
 * end at LF, CRLF or a lone CR.  A UTF-8 byte-order mark before the header
 * is skipped, and so are empty lines (a record of one empty, unquoted
 * field).  The whole table is validated before the caller sees any of it:
 * a row with another number of fields than the header, an unterminated
 * quote, text after a closing quote, a NUL byte, a duplicate or empty
 * header name are each refused with "FILE:LINE: reason".
 *
 * Invariant after csv_parse() succeeds: every row has exactly ncols cells,
 * each a NUL-terminated string (quotes removed) owned by the table.
 */
#ifndef FW_CSV_H
#define FW_CSV_H

#include <stddef.h>

#include "util/buf.h"

#define CSV_MAX_BYTES ((size_t)1 << 30) /* a larger file is refused, not truncated */
#define CSV_MAX_COLS 4096               /* fields in the header */

struct csv {
    size_t ncols;  /* fields in the header */
    size_t nrows;  /* data rows, the header not counted */
    char **_cell;  /* (nrows + 1) * ncols pointers into _text; row 0 is the header */
    size_t *_line; /* nrows + 1: the file line each record starts on */
    char *_text;   /* the unquoted fields, NUL-separated */
};

/* An empty table (csv_cleanup on it does nothing harmful). */
void csv_init(struct csv *c);
/* Free the table's contents; it can be parsed into again after csv_init. */
void csv_cleanup(struct csv *c);

/*
 * Parse n bytes of CSV text.  `name` only labels messages.  0 on success;
 * FW_EPARSE with "name:LINE: reason\n" appended to diag (the table left
 * empty); FW_ETOOBIG when n exceeds CSV_MAX_BYTES or the header exceeds
 * CSV_MAX_COLS.  The text is copied: the caller keeps `data`.
 */
int csv_parse(struct csv *c, const char *name, const char *data, size_t n, struct buf *diag);

/* Read and parse a file, within CSV_MAX_BYTES; FW_EIO (with a message) when it cannot be read. */
int csv_read_file(struct csv *c, const char *path, struct buf *diag);

/* The field at data row `row` (1-based; 0 is the header) and column `col`. Borrowed. */
static inline const char *csv_cell(const struct csv *c, size_t row, size_t col)
{
    return c->_cell[row * c->ncols + col];
}

/* The file line data row `row` (1-based) starts on, for messages. */
static inline size_t csv_line(const struct csv *c, size_t row) { return c->_line[row]; }

/* The index of the header field named `name`, or -1. */
long csv_column(const struct csv *c, const char *name);

#endif
