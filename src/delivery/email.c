/*
 * email.c -- the email connector: SMTP through libcurl, the body as MIME
 * multipart/alternative (text/plain and text/html, quoted-printable UTF-8).
 *
 * The Message-ID is a hash of the idempotency key (delivery__wire_id's
 * digits: no personal data), so a message re-sent after a crash carries
 * the same Message-ID and a receiving system can tell it is the same
 * message.  List-Unsubscribe names the message's own
 * one-click URL (meta "unsubscribe_url") and the configured mailto, with
 * List-Unsubscribe-Post for RFC 8058 one-click unsubscribe.
 *
 * Outcomes: an SMTP 5xx reply (unknown mailbox, refused sender, failed
 * login) is permanent; 4xx replies and connection errors are retried.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "delivery/delivery_int.h"
#include "util/buf.h"
#include "util/util.h"

static int configured(const struct delivery_config *c)
{
    return c->email.url && c->email.from;
}

/* 32 hex digits (the first 16 bytes) of SHA-256(key), and a NUL. */
static void key_digest(const char *key, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(key, strlen(key), md, &len, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void delivery__message_id(const char *key, char out[64])
{
    char hex[33];
    key_digest(key, hex);
    snprintf(out, 64, "<%s@forewarn>", hex);
}

void delivery__wire_id(const char *key, char out[DELIVERY_WIRE_ID_LEN])
{
    char hex[33];
    key_digest(key ? key : "", hex);
    snprintf(out, DELIVERY_WIRE_ID_LEN, "msg_%s", hex);
}

void delivery__rfc5322_date(int64_t ms, char out[40])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Bytes of the UTF-8 character that starts with byte c (1 for stray bytes). */
static size_t u8len(unsigned char c)
{
    return c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
}

char *delivery__rfc2047(const char *text)
{
    int plain = 1;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p >= 0x80 || *p < 0x20)
            plain = 0;
    if (plain)
        return xstrdup(text);
    /*
     * Base64 encoded-words of at most 45 bytes of text (60 encoded
     * characters, 72 with "=?UTF-8?B?" and "?="), split between characters,
     * on folded lines.  Control characters become spaces.
     */
    struct buf out;
    buf_init(&out, 0);
    size_t n = strlen(text), i = 0;
    while (i < n) {
        unsigned char chunk[48];
        size_t len = 0;
        while (i < n) {
            size_t cl = u8len((unsigned char)text[i]);
            if (i + cl > n)
                cl = n - i;
            if (len + cl > 45)
                break;
            for (size_t k = 0; k < cl; k++) {
                unsigned char ch = (unsigned char)text[i + k];
                chunk[len++] = ch < 0x20 ? ' ' : ch;
            }
            i += cl;
        }
        unsigned char enc[80];
        EVP_EncodeBlock(enc, chunk, (int)len);
        buf_printf(&out, "%s=?UTF-8?B?%s?=", out.len ? "\r\n " : "", enc);
    }
    return buf_steal(&out);
}

/* A display name: encoded when non-ASCII, quoted when it has specials. */
static void display_name(struct buf *b, const char *name)
{
    if (strpbrk(name, "()<>[]:;@\\,.\"")) {
        int ascii = 1;
        for (const unsigned char *p = (const unsigned char *)name; *p; p++)
            ascii &= *p < 0x80;
        if (ascii) {
            buf_putc(b, '"');
            for (const char *p = name; *p; p++) {
                if (*p == '"' || *p == '\\')
                    buf_putc(b, '\\');
                buf_putc(b, *p);
            }
            buf_putc(b, '"');
            return;
        }
    }
    char *enc = delivery__rfc2047(name);
    buf_puts(b, enc);
    free(enc);
}

/* An address we put between angle brackets: one mailbox, no header tricks. */
static int address_ok(const char *s)
{
    return delivery__header_safe(s) && strchr(s, '@') && !strpbrk(s, "<>,;\" ");
}

static struct curl_slist *add(struct curl_slist *l, struct buf *b)
{
    l = curl_slist_append(l, b->data);
    buf_reset(b);
    return l;
}

int delivery__email_headers(const struct delivery_config *c, const struct outbox_msg *m,
                            int64_t wall_now, struct curl_slist **out, char *err, size_t errlen)
{
    struct curl_slist *l = NULL;
    struct buf b;
    json_t *meta = NULL;
    char date[40], mid[64];
    int rc = 0;
    *out = NULL;
    if (!m->recipient || !address_ok(m->recipient)) {
        snprintf(err, errlen, "not a usable email address: '%s'",
                 m->recipient ? m->recipient : "(none)");
        return FW_EINVAL;
    }
    if (!address_ok(c->email.from)) {
        snprintf(err, errlen, "connectors.email.from is not a usable address: '%s'", c->email.from);
        return FW_EINVAL;
    }
    buf_init(&b, 0);
    meta = delivery__jparse(m->meta);

    if (c->email.from_name && *c->email.from_name) {
        buf_puts(&b, "From: ");
        display_name(&b, c->email.from_name);
        buf_printf(&b, " <%s>", c->email.from);
    } else {
        buf_printf(&b, "From: <%s>", c->email.from);
    }
    l = add(l, &b);
    buf_printf(&b, "To: <%s>", m->recipient);
    l = add(l, &b);
    char *subject = delivery__rfc2047(m->subject ? m->subject : "");
    buf_printf(&b, "Subject: %s", subject);
    free(subject);
    l = add(l, &b);
    delivery__rfc5322_date(wall_now, date);
    buf_printf(&b, "Date: %s", date);
    l = add(l, &b);
    delivery__message_id(m->key, mid);
    buf_printf(&b, "Message-ID: %s", mid);
    l = add(l, &b);
    buf_puts(&b, "MIME-Version: 1.0");
    l = add(l, &b);

    /* RFC 2369 List-Unsubscribe; RFC 8058 one-click needs the https URI. */
    const char *url = delivery__meta_str(meta, "unsubscribe_url");
    const char *mailto = c->email.unsubscribe_mailto;
    if (url && (!delivery__header_safe(url) || strpbrk(url, "<> ") ||
                (strncmp(url, "https://", 8) && strncmp(url, "http://", 7))))
        url = NULL;
    if (mailto && (!delivery__header_safe(mailto) || strpbrk(mailto, "<> ")))
        mailto = NULL;
    if (url || mailto) {
        buf_puts(&b, "List-Unsubscribe: ");
        if (url)
            buf_printf(&b, "<%s>", url);
        if (mailto)
            buf_printf(&b, "%s<%s%s>", url ? ", " : "", strncmp(mailto, "mailto:", 7) ? "mailto:" : "",
                       mailto);
        l = add(l, &b);
        if (url) {
            buf_puts(&b, "List-Unsubscribe-Post: List-Unsubscribe=One-Click");
            l = add(l, &b);
        }
    }
    /*
     * The top-level type: libcurl merges this header with the boundary it
     * generates for the MIME structure, so the whole message is the
     * alternative (no multipart/mixed wrapper).
     */
    buf_puts(&b, "Content-Type: multipart/alternative");
    l = add(l, &b);
    *out = l;
    json_decref(meta);
    buf_cleanup(&b);
    return rc;
}

/* Line ends as CRLF: libcurl's quoted-printable encoder only breaks lines at CRLF. */
static char *crlf(const char *s)
{
    struct buf b;
    buf_init(&b, 0);
    for (; s && *s; s++) {
        if (*s == '\r')
            continue;
        if (*s == '\n')
            buf_putc(&b, '\r');
        buf_putc(&b, *s);
    }
    return buf_steal(&b);
}

static enum dresult send_email(struct dattempt *a, const struct outbox_msg *m)
{
    const struct delivery_config *c = a->cfg;
    CURL *h = a->curl;
    struct curl_slist *hdrs = NULL, *rcpt = NULL;
    curl_mime *mime = NULL;
    char from[512], to[512], errbuf[CURL_ERROR_SIZE] = "";
    char *text = NULL, *html = NULL;
    enum dresult res = DRESULT_PERMANENT;

    if (delivery__email_headers(c, m, a->wall_now, &hdrs, a->err, sizeof a->err))
        return DRESULT_PERMANENT;
    snprintf(from, sizeof from, "<%s>", c->email.from);
    snprintf(to, sizeof to, "<%s>", m->recipient);
    rcpt = curl_slist_append(rcpt, to);

    curl_easy_reset(h);
    mime = curl_mime_init(h);
    curl_mimepart *part = curl_mime_addpart(mime);
    text = crlf(m->body);
    curl_mime_data(part, text, CURL_ZERO_TERMINATED);
    curl_mime_type(part, "text/plain; charset=utf-8");
    curl_mime_encoder(part, "quoted-printable");
    if (m->html && *m->html) {
        html = crlf(m->html);
        part = curl_mime_addpart(mime);
        curl_mime_data(part, html, CURL_ZERO_TERMINATED);
        curl_mime_type(part, "text/html; charset=utf-8");
        curl_mime_encoder(part, "quoted-printable");
    }

    curl_easy_setopt(h, CURLOPT_URL, c->email.url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    /* smtp:// upgrades with STARTTLS when the server offers it; smtps:// is TLS from the start. */
    curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    if (c->email.username) {
        curl_easy_setopt(h, CURLOPT_USERNAME, c->email.username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->email.password ? c->email.password : "");
    }
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);

    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (cc == CURLE_OK) {
        res = DRESULT_OK;
    } else {
        char where[300];
        delivery__url_for_log(c->email.url, where, sizeof where);
        snprintf(a->err, sizeof a->err, "SMTP %s to %s: %s (last reply %ld)", where,
                 m->recipient, *errbuf ? errbuf : curl_easy_strerror(cc), code);
        res = code >= 500 && code < 600 ? DRESULT_PERMANENT : DRESULT_RETRY;
    }
    /* The handle is reused: forget everything that is freed below. */
    curl_easy_setopt(h, CURLOPT_MIMEPOST, NULL);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_mime_free(mime);
    curl_slist_free_all(hdrs);
    curl_slist_free_all(rcpt);
    free(text);
    free(html);
    return res;
}

/*
 * Is the mail server there?  Connect, EHLO (STARTTLS and AUTH as for a
 * message), NOOP: no mail is sent (the connection stays in the handle's
 * cache for the next message, as after one).  A server that accepts all that
 * but refuses recipients passes; its letters then fail again.
 */
static size_t discard(char *data, size_t size, size_t n, void *ctx)
{
    (void)data, (void)ctx;
    return size * n;
}

static enum dresult probe_email(struct dattempt *a)
{
    const struct delivery_config *c = a->cfg;
    CURL *h = a->curl;
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, c->email.url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    if (c->email.username) {
        curl_easy_setopt(h, CURLOPT_USERNAME, c->email.username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->email.password ? c->email.password : "");
    }
    /* No MAIL FROM, no recipients, no upload: libcurl sends this command instead. */
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "NOOP");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard); /* the reply, not for stdout */
    CURLcode cc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    if (cc == CURLE_OK)
        return DRESULT_OK;
    char where[300];
    delivery__url_for_log(c->email.url, where, sizeof where);
    snprintf(a->err, sizeof a->err, "SMTP %s: %s", where, *errbuf ? errbuf : curl_easy_strerror(cc));
    return DRESULT_RETRY;
}

const struct connector delivery__email = {
    .name = "email",
    .channels = {"email", NULL},
    .configured = configured,
    .send = send_email,
    .probe = probe_email,
};
