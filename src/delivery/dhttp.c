/*
 * dhttp.c -- what the HTTP connectors share: one request with libcurl and
 * the classification of its outcome (deliver, retry, give up), JSON values
 * built safely from stored text, and the Standard Webhooks envelope.
 *
 * The classification is the one every connector uses: a receiver that is
 * down, slow or overloaded (connection errors, timeouts, 408, 429, 5xx) is
 * retried with backoff; one that refuses the request (other 4xx) will
 * refuse it again, so the message goes to the dead letters at once.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/delivery_int.h"
#include "util/json.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/util.h"

#define RESPONSE_MAX (64 << 10) /* response bytes kept for the error text */

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    struct buf *b = ctx;
    size_t len = size * n;
    if (b->len < RESPONSE_MAX)
        buf_append(b, data, len < RESPONSE_MAX - b->len ? len : RESPONSE_MAX - b->len);
    return len; /* the rest is read and dropped, never an error */
}

/* Append a short, single-line excerpt of a response body to err. */
static void excerpt(char *err, size_t errlen, const struct buf *body)
{
    size_t used = strlen(err);
    if (!body->len || used + 4 >= errlen)
        return;
    snprintf(err + used, errlen - used, ": ");
    used += 2;
    for (size_t i = 0; i < body->len && used + 1 < errlen && i < 200; i++) {
        unsigned char ch = (unsigned char)body->data[i];
        err[used++] = ch < 0x20 ? ' ' : (char)ch;
    }
    err[used] = '\0';
}

void delivery__url_for_log(const char *url, char *out, size_t n)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    snprintf(out, n, "(the configured URL)");
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
            port = NULL;
        snprintf(out, n, "%s://%s%s%s/...", scheme, host, port ? ":" : "", port ? port : "");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

enum dresult delivery__http(struct dattempt *a, const struct dhttp_req *r)
{
    CURL *h = a->curl;
    struct curl_slist *hdrs = NULL;
    struct buf resp;
    char ctype[128], auth[1024], errbuf[CURL_ERROR_SIZE] = "";
    buf_init(&resp, 0);

    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)a->cfg->timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)a->cfg->timeout);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "forewarn");
    if (!strcmp(r->method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L); /* a HEAD has no body either way */
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? r->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(r->body ? r->len : 0));
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    if (r->username) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, r->username);
        curl_easy_setopt(h, CURLOPT_PASSWORD, r->password ? r->password : "");
    }
    if (r->content_type) {
        snprintf(ctype, sizeof ctype, "Content-Type: %s", r->content_type);
        hdrs = curl_slist_append(hdrs, ctype);
    }
    if (r->bearer) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", r->bearer);
        hdrs = curl_slist_append(hdrs, auth);
    }
    /* No "Expect: 100-continue" round trip for larger bodies. */
    hdrs = curl_slist_append(hdrs, "Expect:");
    for (struct curl_slist *e = r->headers; e; e = e->next)
        hdrs = curl_slist_append(hdrs, e->data);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

    enum dresult res;
    char where[300];
    delivery__url_for_log(r->url, where, sizeof where);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        snprintf(a->err, sizeof a->err, "%s %s: %s", r->method, where,
                 *errbuf ? errbuf : curl_easy_strerror(cc));
        res = DRESULT_RETRY;
    } else if (status >= 200 && status < 300) {
        a->err[0] = '\0';
        res = DRESULT_OK;
    } else {
        snprintf(a->err, sizeof a->err, "%s %s: HTTP %ld", r->method, where, status);
        excerpt(a->err, sizeof a->err, &resp);
        res = status == 408 || status == 429 || status >= 500 ? DRESULT_RETRY : DRESULT_PERMANENT;
    }
    /* Drop our pointers to stack data before the handle outlives this call. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs);
    buf_cleanup(&resp);
    return res;
}

enum dresult delivery__http_probe(struct dattempt *a, const char *url)
{
    struct dhttp_req r = {.method = "HEAD", .url = url};
    enum dresult res = delivery__http(a, &r);
    if (res != DRESULT_RETRY)
        return DRESULT_OK; /* 2xx, or a refusal: either way a server answered */
    long status = 0;
    curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &status);
    return status == 501 || status == 505 ? DRESULT_OK : DRESULT_RETRY; /* no HEAD: still up */
}

char *delivery__url(const char *base, const char *path)
{
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    struct buf b;
    buf_init(&b, 0);
    buf_append(&b, base, n);
    if (*path != '/')
        buf_putc(&b, '/');
    buf_puts(&b, path);
    return buf_steal(&b);
}

int delivery__header_safe(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (!n || (s[0] >= 0xf8))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

json_t *delivery__jstr(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    /* Not UTF-8: keep what is, replace what is not. */
    struct buf b;
    buf_init(&b, 0);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_len(p);
        if (n) {
            buf_append(&b, p, n);
            p += n;
        } else {
            buf_puts(&b, "\xef\xbf\xbd");
            p++;
        }
    }
    j = json_stringn(b.data ? b.data : "", b.len);
    buf_cleanup(&b);
    return j ? j : json_string("");
}

json_t *delivery__jparse(const char *text)
{
    if (!text || !*text)
        return NULL;
    return json_loads(text, JSON_DECODE_ANY, NULL);
}

const char *delivery__meta_str(json_t *meta, const char *key)
{
    json_t *v = json_object_get(meta, key);
    const char *s = json_string_value(v);
    return s && *s ? s : NULL;
}

static json_t *time_or_null(int64_t ms)
{
    char t[FW_TIME_MAXLEN];
    if (!ms)
        return json_null();
    fw_time_format(ms, t);
    return json_string(t);
}

json_t *delivery__message_json(const struct outbox_msg *m)
{
    json_t *o = json_object();
    json_t *signals = delivery__jparse(m->signals), *meta = delivery__jparse(m->meta);
    json_object_set_new(o, "id", delivery__jstr(m->id));
    char wid[DELIVERY_WIRE_ID_LEN];
    delivery__wire_id(m->key, wid);
    json_object_set_new(o, "idempotency_key", json_string(wid));
    json_object_set_new(o, "customer", delivery__jstr(m->customer));
    json_object_set_new(o, "audience", delivery__jstr(m->audience));
    json_object_set_new(o, "channel", delivery__jstr(m->channel));
    json_object_set_new(o, "recipient", delivery__jstr(m->recipient));
    json_object_set_new(o, "subject", delivery__jstr(m->subject));
    json_object_set_new(o, "body", delivery__jstr(m->body));
    json_object_set_new(o, "html", delivery__jstr(m->html));
    json_object_set_new(o, "signals", signals ? signals : json_array());
    json_object_set_new(o, "meta", meta ? meta : json_object());
    json_object_set_new(o, "created_at", time_or_null(m->created_at));
    json_object_set_new(o, "send_at", time_or_null(m->send_at));
    return o;
}

enum dresult delivery__webhook_post(struct dattempt *a, const char *url, const char *secret,
                                    const char *type, const char *id, json_t *data)
{
    char ts[FW_TIME_MAXLEN], sig[128], h_id[600], h_ts[64], h_sig[160];
    int64_t secs = a->wall_now / 1000;
    fw_time_format(secs * 1000, ts);
    json_t *env = json_object();
    json_object_set_new(env, "type", json_string(type));
    json_object_set_new(env, "timestamp", json_string(ts));
    json_object_set_new(env, "data", data);
    char *body = fw_json_dumps(env);
    json_decref(env);
    struct curl_slist *hdrs = NULL;
    enum dresult res = DRESULT_PERMANENT;
    if (!body) {
        snprintf(a->err, sizeof a->err, "cannot encode the message as JSON");
        return res;
    }
    snprintf(h_id, sizeof h_id, "webhook-id: %s", id);
    snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %" PRId64, secs);
    hdrs = curl_slist_append(hdrs, h_id);
    hdrs = curl_slist_append(hdrs, h_ts);
    if (secret) {
        if (delivery_sign(secret, id, secs, body, strlen(body), sig, sizeof sig)) {
            snprintf(a->err, sizeof a->err, "cannot sign: the webhook secret is not valid");
            goto out;
        }
        snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);
        hdrs = curl_slist_append(hdrs, h_sig);
    }
    struct dhttp_req r = {.method = "POST",
                          .url = url,
                          .content_type = "application/json",
                          .body = body,
                          .len = strlen(body),
                          .headers = hdrs};
    res = delivery__http(a, &r);
out:
    curl_slist_free_all(hdrs);
    free(body);
    return res;
}
