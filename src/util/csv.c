/*
 * csv.c -- the RFC 4180 reader (csv.h).
 *
 * One pass over the input copies each field, unquoted, into one text block
 * of n + 1 bytes (a field never grows when unquoted, and its terminator
 * takes the place of its separator; only the last field of a file without
 * a final line break needs the extra byte), and records a pointer per
 * field.  Nothing is handed back until the whole input has passed.
 */
#include "util/csv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

void csv_init(struct csv *c) { memset(c, 0, sizeof *c); }

void csv_cleanup(struct csv *c)
{
    free(c->_cell);
    free(c->_line);
    free(c->_text);
    csv_init(c);
}

long csv_column(const struct csv *c, const char *name)
{
    for (size_t i = 0; i < c->ncols; i++)
        if (!strcmp(csv_cell(c, 0, i), name))
            return (long)i;
    return -1;
}

/* Growing arrays of cells and record lines while parsing. */
struct acc {
    char **cell;
    size_t ncell, capcell;
    size_t *line;
    size_t nline, capline;
};

static void push_cell(struct acc *a, char *p)
{
    if (a->ncell == a->capcell)
        a->cell = xgrow(a->cell, &a->capcell, a->ncell + 1, sizeof *a->cell);
    a->cell[a->ncell++] = p;
}

static void push_line(struct acc *a, size_t line)
{
    if (a->nline == a->capline)
        a->line = xgrow(a->line, &a->capline, a->nline + 1, sizeof *a->line);
    a->line[a->nline++] = line;
}

int csv_parse(struct csv *c, const char *name, const char *data, size_t n, struct buf *diag)
{
    struct acc a = {0};
    char *text = NULL;
    int rc = 0;
    csv_init(c);
    if (n > CSV_MAX_BYTES) {
        buf_printf(diag, "%s: larger than %zu bytes\n", name, CSV_MAX_BYTES);
        return FW_ETOOBIG;
    }
    size_t r = 0, line = 1, ncols = 0, nrec = 0;
    if (n >= 3 && !memcmp(data, "\xef\xbb\xbf", 3))
        r = 3;
    text = xmalloc(n + 1);
    char *w = text;
    while (r < n) {
        size_t rec_line = line, first = a.ncell, nf = 0;
        int quoted_any = 0;
        for (;;) {
            char *field = w;
            if (r < n && data[r] == '"') {
                quoted_any = 1;
                size_t qline = line;
                r++;
                for (;;) {
                    if (r >= n) {
                        buf_printf(diag, "%s:%zu: field %zu: quoted field not closed before the end "
                                   "of the file\n", name, qline, nf + 1);
                        rc = FW_EPARSE;
                        goto out;
                    }
                    char ch = data[r];
                    if (ch == '"') {
                        if (r + 1 < n && data[r + 1] == '"') {
                            *w++ = '"';
                            r += 2;
                            continue;
                        }
                        r++;
                        break;
                    }
                    if (ch == '\0')
                        goto nul;
                    if (ch == '\n' || (ch == '\r' && !(r + 1 < n && data[r + 1] == '\n')))
                        line++;
                    *w++ = ch;
                    r++;
                }
                if (r < n && data[r] != ',' && data[r] != '\n' && data[r] != '\r') {
                    buf_printf(diag, "%s:%zu: field %zu: text after the closing quote (a quote "
                               "inside a quoted field is written \"\")\n", name, line, nf + 1);
                    rc = FW_EPARSE;
                    goto out;
                }
            } else {
                while (r < n && data[r] != ',' && data[r] != '\n' && data[r] != '\r') {
                    if (data[r] == '\0')
                        goto nul;
                    *w++ = data[r++];
                }
            }
            *w++ = '\0';
            nf++;
            if (nf > CSV_MAX_COLS) {
                buf_printf(diag, "%s:%zu: more than %d fields\n", name, rec_line, CSV_MAX_COLS);
                rc = FW_ETOOBIG;
                goto out;
            }
            push_cell(&a, field);
            if (r < n && data[r] == ',') {
                r++;
                continue;
            }
            /* End of the record: LF, CRLF, lone CR or the end of the input. */
            if (r < n && data[r] == '\r')
                r++;
            if (r < n && data[r] == '\n')
                r++;
            line++;
            break;
        }
        if (nf == 1 && !quoted_any && !a.cell[first][0]) {
            a.ncell--; /* an empty line */
            continue;
        }
        if (nrec == 0) {
            ncols = nf;
        } else if (nf != ncols) {
            buf_printf(diag, "%s:%zu: %zu field%s, header has %zu (data row %zu)\n", name,
                       rec_line, nf, nf == 1 ? "" : "s", ncols, nrec);
            rc = FW_EPARSE;
            goto out;
        }
        push_line(&a, rec_line);
        nrec++;
    }
    if (nrec == 0) {
        buf_printf(diag, "%s: empty: no header row\n", name);
        rc = FW_EPARSE;
        goto out;
    }
    for (size_t i = 0; i < ncols; i++) {
        if (!a.cell[i][0]) {
            buf_printf(diag, "%s:%zu: header field %zu is empty (every column needs a name)\n",
                       name, a.line[0], i + 1);
            rc = FW_EPARSE;
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(a.cell[i], a.cell[j])) {
                buf_printf(diag, "%s:%zu: column '%s' appears twice (fields %zu and %zu)\n", name,
                           a.line[0], a.cell[i], j + 1, i + 1);
                rc = FW_EPARSE;
                goto out;
            }
    }
    c->ncols = ncols;
    c->nrows = nrec - 1;
    c->_cell = a.cell;
    c->_line = a.line;
    c->_text = text;
    return 0;
nul:
    buf_printf(diag, "%s:%zu: a NUL byte (not a text file?)\n", name, line);
    rc = FW_EPARSE;
out:
    free(a.cell);
    free(a.line);
    free(text);
    return rc;
}

int csv_read_file(struct csv *c, const char *path, struct buf *diag)
{
    struct buf in;
    buf_init(&in, CSV_MAX_BYTES);
    csv_init(c);
    int rc = buf_read_file(&in, path);
    if (rc == FW_ETOOBIG)
        buf_printf(diag, "%s: larger than %zu bytes\n", path, CSV_MAX_BYTES);
    else if (rc)
        buf_printf(diag, "%s: cannot read: %s\n", path, strerror(errno));
    else
        rc = csv_parse(c, path, in.data ? in.data : "", in.len, diag);
    buf_cleanup(&in);
    return rc;
}
