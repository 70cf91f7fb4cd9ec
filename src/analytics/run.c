/*
 * run.c -- `forewarn sentiment`: NDJSON {"id","text"} in, one
 * {"id","score","label","intents"} line out per input line.
 *
 * All or nothing: the whole input is read and every line validated before
 * the first output line is written, so a bad line at the end of a file
 * leaves the output empty rather than half written.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/sentiment_int.h"
#include "util/util.h"
#include "util/yaml.h"

#define MAX_INPUT (256u << 20) /* bytes of NDJSON */
#define MAX_ERRORS 20          /* quoted; the rest are counted */

/* Column (0-based) of `"key"` in the line, or 0: a better caret than the line's start. */
static size_t key_column(const char *line, size_t n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 2 <= n; i++)
        if (line[i] == '"' && !memcmp(line + i + 1, key, kl) && line[i + 1 + kl] == '"')
            return i;
    return 0;
}

/*
 * Parse one line into its id and text (borrowed from *root, which the
 * caller frees).  On error fills *col and msg and returns -1.
 */
static int parse_line(const char *line, size_t n, json_t **root, const char **id, size_t *idlen,
                      const char **text, size_t *textlen, size_t *col, char *msg, size_t msgsz)
{
    json_error_t je;
    *root = json_loadb(line, n, JSON_REJECT_DUPLICATES, &je);
    if (!*root) {
        *col = je.column > 0 ? (size_t)je.column - 1 : 0;
        if (je.position > 0 && (size_t)je.position <= n && je.column <= 0)
            *col = (size_t)je.position - 1;
        snprintf(msg, msgsz, "malformed JSON: %s", je.text);
        return -1;
    }
    if (!json_is_object(*root)) {
        *col = 0;
        snprintf(msg, msgsz,
                 "each line must be a JSON object {\"id\": \"...\", \"text\": \"...\"}");
        return -1;
    }
    json_t *jid = json_object_get(*root, "id"), *jt = json_object_get(*root, "text");
    if (!jid || !json_is_string(jid) || json_string_length(jid) == 0) {
        *col = jid ? key_column(line, n, "id") : 0;
        snprintf(msg, msgsz, jid ? "\"id\" must be a non-empty string" : "\"id\" is missing");
        return -1;
    }
    if (!jt || !json_is_string(jt)) {
        *col = jt ? key_column(line, n, "text") : 0;
        snprintf(msg, msgsz, jt ? "\"text\" must be a string" : "\"text\" is missing");
        return -1;
    }
    *id = json_string_value(jid);
    *idlen = json_string_length(jid);
    *text = json_string_value(jt);
    *textlen = json_string_length(jt);
    return 0;
}

/* A score rounded to 4 decimals, without trailing zeros: -0.72, 0.4404, 0. */
static void put_score(struct buf *b, double v)
{
    char t[32];
    double r = round(v * 10000.0) / 10000.0;
    if (r == 0)
        r = 0; /* no "-0" */
    snprintf(t, sizeof t, "%.4f", r);
    size_t n = strlen(t);
    while (n > 1 && t[n - 1] == '0')
        n--;
    if (t[n - 1] == '.')
        n--;
    buf_append(b, t, n);
}

/* The next line of [*p, end): its bounds without "\r\n"; advances *p. */
static void next_line(const char **p, const char *end, const char **ls, size_t *ln)
{
    const char *s = *p, *e = memchr(s, '\n', (size_t)(end - s));
    if (!e)
        e = end;
    *p = e < end ? e + 1 : end;
    *ls = s;
    *ln = (size_t)(e - s);
    if (*ln && s[*ln - 1] == '\r')
        (*ln)--;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return 0;
    return 1;
}

int sentiment_run(const struct sentiment *s, FILE *in, const char *name, FILE *out, FILE *err)
{
    struct buf text, diag, line_out;
    buf_init(&text, MAX_INPUT);
    buf_init(&diag, 0);
    buf_init(&line_out, 0);
    int rc = 0;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, in)) > 0)
        if (buf_append(&text, chunk, n)) {
            fprintf(err, "sentiment: %s: more than %u MiB of input\n", name, MAX_INPUT >> 20);
            rc = FW_ETOOBIG;
            goto out;
        }
    if (ferror(in)) {
        fprintf(err, "sentiment: %s: read error\n", name);
        rc = FW_EIO;
        goto out;
    }
    const char *data = text.data ? text.data : "", *end = data + text.len;

    /*
     * One pass: every line is parsed once; the answers are kept, and written
     * only when no line was bad (all or nothing).
     */
    unsigned nerrors = 0;
    size_t lineno = 0;
    for (const char *p = data; p < end; lineno++) {
        const char *ls;
        size_t ln;
        next_line(&p, end, &ls, &ln);
        if (blank(ls, ln))
            continue;
        json_t *root;
        const char *id, *t;
        size_t idl, tl, col;
        char msg[300];
        if (parse_line(ls, ln, &root, &id, &idl, &t, &tl, &col, msg, sizeof msg)) {
            if (nerrors++ < MAX_ERRORS)
                ydiag_at(&diag, name, data, text.len, lineno, col, "%s", msg);
            json_decref(root);
            continue;
        }
        if (nerrors) {
            json_decref(root); /* nothing will be written: no need to score */
            continue;
        }
        struct sentiment_result r;
        sentiment_score(s, t, tl, &r);
        buf_puts(&line_out, "{\"id\":");
        buf_json_str(&line_out, id, idl);
        buf_puts(&line_out, ",\"score\":");
        put_score(&line_out, r.score);
        buf_printf(&line_out, ",\"label\":\"%s\",\"intents\":[", r.label);
        int first = 1;
        for (unsigned bit = 1; bit < (1u << SENTIMENT_NINTENTS); bit <<= 1)
            if (r.intents & bit) {
                buf_printf(&line_out, "%s\"%s\"", first ? "" : ",", sentiment_intent_name(bit));
                first = 0;
            }
        buf_puts(&line_out, "]}\n");
        json_decref(root);
    }
    if (nerrors) {
        if (nerrors > MAX_ERRORS)
            buf_printf(&diag, "%s: %u more error(s) not shown\n", name, nerrors - MAX_ERRORS);
        buf_printf(&diag, "sentiment: %s: %u bad line(s); nothing was scored\n", name, nerrors);
        fputs(diag.data, err);
        rc = FW_EPARSE;
        goto out;
    }
    if (line_out.len && fwrite(line_out.data, 1, line_out.len, out) != line_out.len) {
        fprintf(err, "sentiment: write error\n");
        rc = FW_EIO;
        goto out;
    }
    if (fflush(out)) {
        fprintf(err, "sentiment: write error\n");
        rc = FW_EIO;
    }
out:
    buf_cleanup(&line_out);
    buf_cleanup(&diag);
    buf_cleanup(&text);
    return rc;
}

struct sentiment *sentiment_open(const char *flag, const char *lexicon, const char *domain,
                                 const char *who, FILE *err)
{
    struct sentiment *s = sentiment_new();
    struct buf diag;
    buf_init(&diag, 0);
    const char *from;
    const char *path = sentiment_lexicon_path(flag, lexicon, &from);
    if (sentiment_load_vader_file(s, path, &diag)) {
        fputs(diag.data ? diag.data : "", err);
        fprintf(err,
                "%s: VADER's lexicon did not load from %s (%s); scripts/install-deps installs "
                "it there by default, or name the file with --lexicon, FOREWARN_LEXICON or "
                "sentiment.lexicon in the config\n",
                who, path, from);
        goto fail;
    }
    if (domain ? sentiment_load_domain_file(s, domain, &diag)
               : sentiment_load_builtin_domain(s, &diag)) {
        fputs(diag.data ? diag.data : "", err);
        fprintf(err, "%s: the domain lexicon did not load\n", who);
        goto fail;
    }
    buf_cleanup(&diag);
    return s;
fail:
    buf_cleanup(&diag);
    sentiment_free(s);
    return NULL;
}
