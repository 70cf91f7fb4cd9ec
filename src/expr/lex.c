/*
 * lex.c -- tokens of the condition language.
 *
 * One pass over the source, one token at a time, no lookahead beyond a
 * character or two.  Invariant: every token records the byte offset of its
 * first character, so any message about it points at the right column;
 * string literals are unescaped into the caller's pool, which never needs
 * more bytes than the source has (an escape is longer than what it means).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr/expr_int.h"
#include "util/fwtime.h"
#include "util/util.h"

int expr__error(struct expr_error *err, const char *src, size_t len, size_t offset, int rc,
                const char *fmt, ...)
{
    va_list ap;
    if (offset > len)
        offset = len;
    err->offset = offset;
    err->line = 1;
    err->col = 1;
    for (size_t i = 0; i < offset; i++) {
        if (src[i] == '\n') {
            err->line++;
            err->col = 1;
        } else {
            err->col++;
        }
    }
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return rc;
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_word(int c)
{
    return is_alpha(c) || is_digit(c);
}

static int fail(struct expr__lexer *lx, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct expr__lexer *lx, size_t at, const char *fmt, ...)
{
    char msg[sizeof lx->err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return expr__error(lx->err, lx->src, lx->len, at, FW_EPARSE, "%s", msg);
}

static const struct {
    const char *word;
    int kind;
} keywords[] = {
    {"and", TK_AND},   {"or", TK_OR},     {"not", TK_NOT},     {"in", TK_IN},
    {"contains", TK_CONTAINS}, {"is", TK_IS}, {"null", TK_NULL}, {"true", TK_TRUE},
    {"false", TK_FALSE},
};

/* A name: word segments joined by '.'; a keyword only when it has no dot. */
static int lex_name(struct expr__lexer *lx, struct expr__token *t)
{
    const char *s = lx->src;
    size_t i = lx->pos, dots = 0;
    while (i < lx->len && is_word(s[i]))
        i++;
    while (i < lx->len && s[i] == '.') {
        if (i + 1 >= lx->len || !is_word(s[i + 1]))
            return fail(lx, i, "expected a name after '.'");
        i++;
        dots++;
        while (i < lx->len && is_word(s[i]))
            i++;
    }
    t->len = (uint32_t)(i - lx->pos);
    t->kind = TK_NAME;
    if (!dots)
        for (size_t k = 0; k < ARRAY_SIZE(keywords); k++)
            if (strlen(keywords[k].word) == t->len && !memcmp(keywords[k].word, s + t->pos, t->len))
                t->kind = keywords[k].kind;
    lx->pos = i;
    if (t->kind == TK_NAME) {
        while (i < lx->len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            i++;
        t->call = i < lx->len && s[i] == '(';
    }
    return 0;
}

/* A number, or a duration when a letter follows the digits at once ("48h"). */
static int lex_number(struct expr__lexer *lx, struct expr__token *t)
{
    const char *s = lx->src;
    size_t i = lx->pos;
    while (i < lx->len && is_digit(s[i]))
        i++;
    if (i + 1 < lx->len && s[i] == '.' && is_digit(s[i + 1])) {
        i++;
        while (i < lx->len && is_digit(s[i]))
            i++;
    }
    if (i < lx->len && is_alpha(s[i])) {
        while (i < lx->len && is_word(s[i]))
            i++;
        t->kind = TK_DUR;
        t->len = (uint32_t)(i - lx->pos);
        if (fw_duration_parse(s + t->pos, t->len, &t->ms))
            return fail(lx, t->pos, "bad duration '%.*s'", (int)t->len, s + t->pos);
        lx->pos = i;
        return 0;
    }
    char tmp[64];
    t->len = (uint32_t)(i - lx->pos);
    if (t->len >= sizeof tmp)
        return fail(lx, t->pos, "number too long");
    memcpy(tmp, s + t->pos, t->len);
    tmp[t->len] = '\0';
    t->kind = TK_NUM;
    t->num = strtod(tmp, NULL);
    lx->pos = i;
    return 0;
}

/* A string in double or single quotes; \" \' \\ \n \t are the escapes. */
static int lex_string(struct expr__lexer *lx, struct expr__token *t)
{
    const char *s = lx->src;
    char quote = s[lx->pos];
    size_t i = lx->pos + 1;
    char *out = lx->pool + lx->pool_len;
    size_t n = 0;
    for (;;) {
        if (i >= lx->len || s[i] == '\n')
            return fail(lx, t->pos, "unterminated string");
        char c = s[i];
        if (c == quote)
            break;
        if (c == '\\') {
            if (i + 1 >= lx->len)
                return fail(lx, t->pos, "unterminated string");
            switch (s[i + 1]) {
            case '"': c = '"'; break;
            case '\'': c = '\''; break;
            case '\\': c = '\\'; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            default:
                return fail(lx, i, "unknown escape '\\%c' in string", s[i + 1]);
            }
            i++;
        }
        out[n++] = c;
        i++;
    }
    t->kind = TK_STR;
    t->str = out;
    t->slen = n;
    t->len = (uint32_t)(i + 1 - lx->pos);
    lx->pool_len += n;
    lx->pos = i + 1;
    return 0;
}

int expr__lex(struct expr__lexer *lx, struct expr__token *t)
{
    const char *s = lx->src;
    while (lx->pos < lx->len &&
           (s[lx->pos] == ' ' || s[lx->pos] == '\t' || s[lx->pos] == '\n' || s[lx->pos] == '\r'))
        lx->pos++;
    memset(t, 0, sizeof *t);
    t->pos = (uint32_t)lx->pos;
    if (lx->pos >= lx->len) {
        t->kind = TK_EOF;
        return 0;
    }
    char c = s[lx->pos], d = lx->pos + 1 < lx->len ? s[lx->pos + 1] : '\0';
    if (is_alpha(c))
        return lex_name(lx, t);
    if (is_digit(c))
        return lex_number(lx, t);
    if (c == '"' || c == '\'')
        return lex_string(lx, t);
    t->len = 1;
    switch (c) {
    case '(': t->kind = TK_LPAREN; break;
    case ')': t->kind = TK_RPAREN; break;
    case '[': t->kind = TK_LBRACKET; break;
    case ']': t->kind = TK_RBRACKET; break;
    case ',': t->kind = TK_COMMA; break;
    case '+': t->kind = TK_PLUS; break;
    case '-': t->kind = TK_MINUS; break;
    case '*': t->kind = TK_STAR; break;
    case '/': t->kind = TK_SLASH; break;
    case '<':
        t->kind = d == '=' ? TK_LE : TK_LT;
        break;
    case '>':
        t->kind = d == '=' ? TK_GE : TK_GT;
        break;
    case '!':
        t->kind = d == '=' ? TK_NE : TK_NOT;
        break;
    case '=':
        if (d == '=')
            t->kind = TK_EQ;
        else if (d == '~')
            t->kind = TK_MATCH;
        else
            return fail(lx, t->pos, "unexpected '='; use '==' to compare");
        break;
    case '&':
        if (d != '&')
            return fail(lx, t->pos, "unexpected '&'; use 'and' or '&&'");
        t->kind = TK_AND;
        break;
    case '|':
        if (d != '|')
            return fail(lx, t->pos, "unexpected '|'; use 'or' or '||'");
        t->kind = TK_OR;
        break;
    default:
        if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
            return fail(lx, t->pos, "unexpected character '%c'", c);
        return fail(lx, t->pos, "unexpected byte 0x%02x", (unsigned char)c);
    }
    /* The two-character operators: ==, !=, <=, >=, =~, &&, ||. */
    if (t->kind == TK_EQ || t->kind == TK_NE || t->kind == TK_LE || t->kind == TK_GE ||
        t->kind == TK_MATCH || t->kind == TK_AND || t->kind == TK_OR)
        t->len = 2;
    lx->pos += t->len;
    return 0;
}
