/*
 * test_delivery.c -- Standard Webhooks signatures, backoff bounds, the
 * connectors: configuration with its exact error places, email headers;
 * and the module's test table (the outbox and dispatcher tests live in
 * their own files).
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "delivery/delivery.h"
#include "delivery/delivery_int.h"
#include "dtest.h"
#include "util/yaml.h"
#include "store/messages.h"
#include "util/util.h"

/* ---- helpers shared with the other delivery test files ---- */

void dtest_tmpdb(char *path, size_t len)
{
    static int n;
    snprintf(path, len, "/tmp/fw-delivery-%d-%d.db", (int)getpid(), ++n);
    dtest_rmdb(path);
}

void dtest_rmdb(const char *path)
{
    char p[512];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

int dtest_insert(struct store *s, const char *name, const char *channel, long long send_at,
                 const char *recipient, const char *meta)
{
    char id[128], key[128];
    snprintf(id, sizeof id, "m_%s", name);
    snprintf(key, sizeof key, "k-%s", name);
    struct outbox_msg m = {
        .id = id,
        .key = key,
        .customer = "jodi@example.com",
        .audience = "customer",
        .channel = (char *)channel,
        .status = "scheduled",
        .created_at = send_at,
        .send_at = send_at,
        .recipient = (char *)recipient,
        .subject = "Your eSIM",
        .body = "Hello Jodi,\nwe are on it.",
        .html = "<p>Hello Jodi,</p><p>we are on it.</p>",
        .signals = "[\"SIG-002\"]",
        .meta = (char *)meta,
        .updated_at = 1,
    };
    int inserted = 0;
    int rc = store_message_insert(s, &m, &inserted);
    return rc ? rc : inserted ? 0 : FW_EEXISTS;
}

/* ---- signing ---- */

static void sign_spec_vector(void)
{
    /* The test vector of the Standard Webhooks reference libraries. */
    const char *body = "{\"test\": 2432232314}";
    char sig[64];
    ASSERT_EQ(delivery_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                            1614265330, body, strlen(body), sig, sizeof sig),
              0);
    ASSERT_STREQ(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* The prefix is optional. */
    ASSERT_EQ(delivery_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                            1614265330, body, strlen(body), sig, sizeof sig),
              0);
    ASSERT_STREQ(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* Any change to id, time or body changes it. */
    ASSERT_EQ(delivery_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                            1614265331, body, strlen(body), sig, sizeof sig),
              0);
    ASSERT(strcmp(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") != 0);
}

static void sign_rejects(void)
{
    char sig[64];
    ASSERT_EQ(delivery_sign("whsec_not base64!", "id", 1, "x", 1, sig, sizeof sig), FW_EINVAL);
    ASSERT_EQ(delivery_sign("whsec_", "id", 1, "x", 1, sig, sizeof sig), FW_EINVAL);
    ASSERT_EQ(delivery_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "id", 1, "x", 1, sig, 40),
              FW_ETOOBIG);
}

/* ---- backoff ---- */

/*
 * The default policy: backoff from 1s doubling to a 10-minute cap, for 24
 * hours after the first failure, the last retry on the limit, then dead;
 * no count limit unless max_attempts is set.
 */
static void retry_policy_spans_hours(void)
{
    struct delivery_config c;
    delivery_config_init(&c);
    ASSERT_EQ(c.backoff_base, 1000);
    ASSERT_EQ(c.backoff_max, 600000);
    ASSERT_EQ(c.retry_for, 86400000);
    ASSERT_EQ(c.max_attempts, 0);
    ASSERT_EQ(c.probe_interval, 300000); /* idle connectors with dead letters: every 5 minutes */
    uint64_t r = 88172645463325252ULL;
    int64_t first = 1000000, now = first, prev_gap = 0;
    int attempts = 1, capped = 0;
    for (;;) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        int64_t at = delivery__retry_at(&c, attempts, attempts == 1 ? 0 : first, now, r);
        if (!at)
            break;
        int64_t gap = at - now;
        ASSERT(gap >= 1 && gap <= 600000);
        if (at < first + c.retry_for)
            ASSERT(gap >= (prev_gap < 300000 ? prev_gap / 4 : 300000)); /* grows, then holds */
        capped += gap >= 300000;
        prev_gap = gap;
        now = at;
        attempts++;
        ASSERT(attempts < 1000);
    }
    /* Given up exactly at the limit, after the last retry fell on it. */
    ASSERT_EQ(now, first + c.retry_for);
    /* About 24h / 7.5m of capped retries (the cap's jitter is 5 to 10 minutes). */
    ASSERT(attempts > 140 && attempts < 300);
    ASSERT(capped > 130);
    /* A count limit, when set, ends it sooner. */
    c.max_attempts = 3;
    ASSERT(delivery__retry_at(&c, 2, first, first + 10, 0) > 0);
    ASSERT_EQ(delivery__retry_at(&c, 3, first, first + 10, 0), 0);
    /* A short window: never a retry past it. */
    c.max_attempts = 0;
    c.retry_for = 5000;
    ASSERT_EQ(delivery__retry_at(&c, 20, first, first + 4000, 0), first + 5000);
    ASSERT_EQ(delivery__retry_at(&c, 21, first, first + 5000, 0), 0);
}

static void backoff_bounds(void)
{
    struct delivery_config c;
    delivery_config_init(&c);
    c.backoff_base = 1000;
    c.backoff_max = 300000;
    uint64_t r = 88172645463325252ULL;
    for (int attempts = 1; attempts <= 40; attempts++) {
        int64_t d = 1000;
        for (int i = 1; i < attempts && d < 300000; i++)
            d *= 2;
        if (d > 300000)
            d = 300000;
        int64_t lo = INT64_MAX, hi = 0;
        for (int k = 0; k < 2000; k++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            int64_t v = delivery__backoff(&c, attempts, r);
            if (v < lo)
                lo = v;
            if (v > hi)
                hi = v;
            ASSERT(v >= (d + 1) / 2);
            ASSERT(v <= d);
        }
        /* The jitter spreads over the range, not a point. */
        ASSERT(hi - lo > d / 4);
    }
    /* The ends are reachable: r = 0 gives the lower bound, r = span - 1 the upper. */
    ASSERT_EQ(delivery__backoff(&c, 1, 0), 500);
    ASSERT_EQ(delivery__backoff(&c, 1, 500), 1000);
    ASSERT_EQ(delivery__backoff(&c, 3, 0), 2000);
    ASSERT_EQ(delivery__backoff(&c, 30, 150000), 300000);
    /* Never zero, even with a 1 ms base. */
    c.backoff_base = 1;
    c.backoff_max = 1;
    ASSERT_EQ(delivery__backoff(&c, 1, 12345), 1);
}

/* ---- configuration ---- */

/* Parse `text` as a config file; its connectors section into c. Returns the rc. */
static int parse_cfg(const char *text, struct delivery_config *c, struct buf *diag)
{
    struct ydoc d;
    int rc = ydoc_load(&d, "cfg.yaml", text, strlen(text), diag);
    if (!rc)
        rc = delivery_config_parse(c, &d, ymap_get(&d, ydoc_root(&d), "connectors"), diag);
    ydoc_cleanup(&d);
    return rc;
}

static void config_full(void)
{
    const char *text = "connectors:\n"
                       "  email:\n"
                       "    url: smtp://127.0.0.1:2525\n"
                       "    from: alerts@example.com\n"
                       "    from_name: Example Mobile\n"
                       "    unsubscribe_mailto: unsubscribe@example.com\n"
                       "  sms: {account_sid: AC123, auth_token: tok, from: \"+15550001111\"}\n"
                       "  slack: {webhook_url: \"http://127.0.0.1:9/hook\"}\n"
                       "  zendesk: {base_url: \"https://example.zendesk.com/\", email: a@example.com,"
                       " api_token: z}\n"
                       "  webhook: {url: \"https://hooks.example.com/in\","
                       " secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}\n"
                       "  push: {url: \"http://127.0.0.1:9/push\", token: p}\n"
                       "  chatbot: {url: \"http://127.0.0.1:9/bot\"}\n"
                       "  retry: {max_attempts: 3, backoff_base: 250ms, backoff_max: 5m, timeout: 2s}\n";
    struct delivery_config c;
    struct buf diag;
    delivery_config_init(&c);
    buf_init(&diag, 0);
    int rc = parse_cfg(text, &c, &diag);
    if (rc)
        fprintf(stderr, "%s", diag.data);
    ASSERT_EQ(rc, 0);
    ASSERT_STREQ(c.email.url, "smtp://127.0.0.1:2525");
    ASSERT_STREQ(c.email.from_name, "Example Mobile");
    ASSERT_STREQ(c.sms.base_url, "https://api.twilio.com"); /* the default */
    ASSERT_STREQ(c.sms.from, "+15550001111");
    ASSERT_STREQ(c.zendesk.base_url, "https://example.zendesk.com/");
    ASSERT_STREQ(c.webhook.secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    ASSERT(c.chatbot.secret == NULL);
    ASSERT_EQ(c.max_attempts, 3);
    ASSERT_EQ(c.backoff_base, 250);
    ASSERT_EQ(c.backoff_max, 300000);
    ASSERT_EQ(c.timeout, 2000);
    delivery_config_cleanup(&c);
    buf_cleanup(&diag);
}

static void config_errors_at_their_place(void)
{
    static const struct {
        const char *text, *expect;
    } cases[] = {
        {"connectors:\n  email:\n    url: http://mail.example.com\n    from: a@example.com\n",
         "cfg.yaml:3:10: error: connectors.email.url must be an smtp:// or smtps:// URL"},
        {"connectors:\n  slack:\n    webhook_url: \"ftp://x.example.com/\"\n",
         "cfg.yaml:3:18: error: connectors.slack.webhook_url must be an http:// or https:// URL"},
        {"connectors:\n  push: {url: hooks.example.com}\n",
         "cfg.yaml:2:15: error: connectors.push.url must start with its scheme"},
        {"connectors:\n  push: {url: \"http://\"}\n",
         "cfg.yaml:2:15: error: connectors.push.url is not a valid URL"},
        {"connectors:\n  email:\n    url: smtp://127.0.0.1\n    from: a@example.com\n"
         "    form_name: typo\n",
         "cfg.yaml:5:5: error: unknown setting 'form_name' in connectors.email (known: url, from,"},
        {"connectors:\n  pager: {url: \"http://x\"}\n",
         "cfg.yaml:2:3: error: unknown connector 'pager'"},
        {"connectors:\n  email: {url: \"smtp://127.0.0.1\"}\n",
         "cfg.yaml:2:3: error: connectors.email needs 'from'"},
        {"connectors:\n  webhook: {url: \"http://127.0.0.1/\", secret: sekrit}\n",
         "cfg.yaml:2:47: error: connectors.webhook.secret must be a Standard Webhooks secret"},
        {"connectors:\n  retry:\n    max_attempts: -1\n",
         "cfg.yaml:3:19: error: connectors.retry.max_attempts must be an integer from 1 to "
         "10000, or 0 for no limit on the count (retry_for decides)"},
        {"connectors:\n  retry:\n    retry_for: 8d\n",
         "cfg.yaml:3:16: error: connectors.retry.retry_for must be a duration from 1ms to 7d"},
        {"connectors:\n  retry:\n    backoff_base: 5 minutes\n",
         "cfg.yaml:3:19: error: connectors.retry.backoff_base must be a duration"},
        {"connectors:\n  retry: {backoff_base: 10s, backoff_max: 1s}\n",
         "cfg.yaml:2:43: error: connectors.retry.backoff_max must not be shorter than backoff_base"},
        {"connectors:\n  retry: {probe_interval: never}\n",
         "cfg.yaml:2:27: error: connectors.retry.probe_interval must be a duration from 1ms to 7d"},
        {"connectors:\n  retry: {timeut: 1s}\n",
         "cfg.yaml:2:11: error: unknown setting 'timeut' in connectors.retry"},
        {"connectors:\n  slack: https://hooks.slack.com/x\n",
         "cfg.yaml:2:10: error: connectors.slack must be a mapping"},
        {"connectors: [email]\n", "cfg.yaml:1:13: error: connectors must be a mapping"},
        {"connectors:\n  slack: {webhook_url: \"http://a/\"}\n  slack: {webhook_url: \"http://b/\"}\n",
         "cfg.yaml:3:3: error: connectors.slack is set twice"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct delivery_config c;
        struct buf diag;
        delivery_config_init(&c);
        buf_init(&diag, 0);
        ASSERT_EQ(parse_cfg(cases[i].text, &c, &diag), FW_EPARSE);
        ASSERT_CONTAINS(diag.data, cases[i].expect);
        delivery_config_cleanup(&c);
        buf_cleanup(&diag);
    }
    /* probe_interval: a duration, or off. */
    struct delivery_config c;
    struct buf diag;
    delivery_config_init(&c);
    buf_init(&diag, 0);
    ASSERT_EQ(parse_cfg("connectors:\n  retry: {probe_interval: 90s}\n", &c, &diag), 0);
    ASSERT_EQ(c.probe_interval, 90000);
    ASSERT_EQ(parse_cfg("connectors:\n  retry: {probe_interval: off}\n", &c, &diag), 0);
    ASSERT_EQ(c.probe_interval, 0);
    delivery_config_cleanup(&c);
    buf_cleanup(&diag);
    /* Every error is reported, not just the first; and the caret line quotes the source. */
    delivery_config_init(&c);
    buf_init(&diag, 0);
    ASSERT_EQ(parse_cfg("connectors:\n  push: {url: x}\n  slack: {webhook_url: y}\n", &c, &diag),
              FW_EPARSE);
    ASSERT_CONTAINS(diag.data, "cfg.yaml:2:15:");
    ASSERT_CONTAINS(diag.data, "cfg.yaml:3:24:");
    ASSERT_CONTAINS(diag.data, "\n      push: {url: x}\n                  ^\n");
    delivery_config_cleanup(&c);
    buf_cleanup(&diag);
}

static void config_secrets_from_env(void)
{
    struct delivery_config c;
    struct buf diag;
    delivery_config_init(&c);
    buf_init(&diag, 0);
    /* Without the token anywhere, the section is incomplete. */
    unsetenv("FOREWARN_TWILIO_AUTH_TOKEN");
    const char *text = "connectors:\n  sms: {base_url: \"http://127.0.0.1:1\", account_sid: AC1,"
                       " from: \"+1555\"}\n";
    ASSERT_EQ(parse_cfg(text, &c, &diag), FW_EPARSE);
    ASSERT_CONTAINS(diag.data, "cfg.yaml:2:3: error: connectors.sms needs 'auth_token' (or the "
                               "environment variable FOREWARN_TWILIO_AUTH_TOKEN)");
    delivery_config_cleanup(&c);
    buf_reset(&diag);
    /* With it in the environment, it parses, and delivery_config_env fills it in. */
    delivery_config_init(&c);
    setenv("FOREWARN_TWILIO_AUTH_TOKEN", "from-env", 1);
    ASSERT_EQ(parse_cfg(text, &c, &diag), 0);
    ASSERT(c.sms.auth_token == NULL);
    ASSERT_EQ(delivery_config_env(&c, &diag), 0);
    ASSERT_STREQ(c.sms.auth_token, "from-env");
    unsetenv("FOREWARN_TWILIO_AUTH_TOKEN");
    /* A bad secret in the environment is an error naming the variable. */
    setenv("FOREWARN_WEBHOOK_SECRET", "plain", 1);
    ASSERT_EQ(delivery_config_env(&c, &diag), FW_EPARSE);
    ASSERT_CONTAINS(diag.data, "FOREWARN_WEBHOOK_SECRET: error: must be a Standard Webhooks");
    unsetenv("FOREWARN_WEBHOOK_SECRET");
    delivery_config_cleanup(&c);
    buf_cleanup(&diag);
}

/* ---- email ---- */

static const char *find_header(struct curl_slist *l, const char *name)
{
    size_t n = strlen(name);
    for (; l; l = l->next)
        if (!strncasecmp(l->data, name, n) && l->data[n] == ':')
            return l->data + n + 2;
    return NULL;
}

static void email_headers(void)
{
    struct delivery_config c;
    delivery_config_init(&c);
    c.email.url = "smtp://127.0.0.1:2525";
    c.email.from = "alerts@example.com";
    c.email.from_name = "Example Mobile";
    c.email.unsubscribe_mailto = "unsubscribe@example.com";
    struct outbox_msg m = {
        .id = "m_1",
        .key = "msg:SIG-002:jodi@example.com:1",
        .channel = "email",
        .recipient = "jodi@example.com",
        .subject = "Your eSIM",
        .meta = "{\"unsubscribe_url\":\"https://example.com/u/abc\"}",
    };
    struct curl_slist *h = NULL;
    char err[256];
    /* 2026-03-02T10:00:00Z is a Monday. */
    ASSERT_EQ(delivery__email_headers(&c, &m, 1772445600000LL, &h, err, sizeof err), 0);
    ASSERT_STREQ(find_header(h, "From"), "Example Mobile <alerts@example.com>");
    ASSERT_STREQ(find_header(h, "To"), "<jodi@example.com>");
    ASSERT_STREQ(find_header(h, "Subject"), "Your eSIM");
    ASSERT_STREQ(find_header(h, "Date"), "Mon, 02 Mar 2026 10:00:00 +0000");
    ASSERT_STREQ(find_header(h, "MIME-Version"), "1.0");
    ASSERT_STREQ(find_header(h, "List-Unsubscribe"),
                 "<https://example.com/u/abc>, <mailto:unsubscribe@example.com>");
    ASSERT_STREQ(find_header(h, "List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
    ASSERT_STREQ(find_header(h, "Content-Type"), "multipart/alternative");
    /* The Message-ID is a function of the idempotency key alone. */
    char mid[64];
    delivery__message_id(m.key, mid);
    ASSERT_STREQ(find_header(h, "Message-ID"), mid);
    ASSERT_EQ(strlen(mid), 1 + 32 + strlen("@forewarn>"));
    char mid2[64];
    delivery__message_id("msg:SIG-002:jodi@example.com:2", mid2);
    ASSERT(strcmp(mid, mid2) != 0);
    /* The id other receivers get has the same digits: SHA-256 of the key, never the key. */
    char wid[DELIVERY_WIRE_ID_LEN];
    delivery__wire_id("msg:SIG-002:jodi@example.com:2", wid);
    ASSERT_STREQ(wid, "msg_062621200579536c9ba6c87b303e5a46");
    ASSERT_STREQ(mid2, "<062621200579536c9ba6c87b303e5a46@forewarn>");
    curl_slist_free_all(h);

    /* No unsubscribe URL: mailto only, and no one-click header (RFC 8058 needs https). */
    m.meta = "{}";
    ASSERT_EQ(delivery__email_headers(&c, &m, 0, &h, err, sizeof err), 0);
    ASSERT_STREQ(find_header(h, "List-Unsubscribe"), "<mailto:unsubscribe@example.com>");
    ASSERT(find_header(h, "List-Unsubscribe-Post") == NULL);
    curl_slist_free_all(h);
    c.email.unsubscribe_mailto = NULL;
    ASSERT_EQ(delivery__email_headers(&c, &m, 0, &h, err, sizeof err), 0);
    ASSERT(find_header(h, "List-Unsubscribe") == NULL);
    curl_slist_free_all(h);

    /* Non-ASCII subject and display name are RFC 2047 encoded; specials are quoted. */
    m.subject = "Caf\xc3\xa9 \xe2\x98\x95";
    c.email.from_name = "Example, Inc.";
    ASSERT_EQ(delivery__email_headers(&c, &m, 0, &h, err, sizeof err), 0);
    ASSERT_STREQ(find_header(h, "Subject"), "=?UTF-8?B?Q2Fmw6kg4piV?=");
    ASSERT_STREQ(find_header(h, "From"), "\"Example, Inc.\" <alerts@example.com>");
    curl_slist_free_all(h);

    /* Header injection through the recipient is refused, not sent. */
    m.recipient = "jodi@example.com\r\nBcc: all@example.com";
    ASSERT_EQ(delivery__email_headers(&c, &m, 0, &h, err, sizeof err), FW_EINVAL);
    ASSERT(h == NULL);
    ASSERT_CONTAINS(err, "not a usable email address");
    m.recipient = NULL;
    ASSERT_EQ(delivery__email_headers(&c, &m, 0, &h, err, sizeof err), FW_EINVAL);
}

static void email_rfc2047_long(void)
{
    /* 40 two-byte characters: more than one encoded word, each at most 75 characters. */
    char text[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(text, "\xc3\xa9");
    char *enc = delivery__rfc2047(text);
    struct buf dec;
    buf_init(&dec, 0);
    int words = 0;
    for (char *w = enc; w;) {
        char *end = strstr(w, "?=");
        ASSERT(end != NULL);
        ASSERT(!strncmp(w, "=?UTF-8?B?", 10));
        ASSERT(end + 2 - w <= 75);
        unsigned char out[64];
        int b64 = (int)(end - w - 10);
        int n = EVP_DecodeBlock(out, (unsigned char *)w + 10, b64);
        ASSERT(n > 0);
        n -= (w[10 + b64 - 1] == '=') + (w[10 + b64 - 2] == '=');
        buf_append(&dec, out, (size_t)n);
        /* Each word holds whole characters: decoding one alone gives valid UTF-8. */
        ASSERT(((unsigned char)out[n - 1] & 0xc0) == 0x80);
        words++;
        w = strstr(end, "\r\n ");
        if (w)
            w += 3;
    }
    ASSERT(words >= 2);
    ASSERT_STREQ(dec.data, text);
    buf_cleanup(&dec);
    free(enc);
    char *plain = delivery__rfc2047("Plain ASCII");
    ASSERT_STREQ(plain, "Plain ASCII");
    free(plain);
}

static void url_join(void)
{
    char *u = delivery__url("https://example.zendesk.com//", "/api/v2/tickets.json");
    ASSERT_STREQ(u, "https://example.zendesk.com/api/v2/tickets.json");
    free(u);
    u = delivery__url("http://127.0.0.1:9", "x");
    ASSERT_STREQ(u, "http://127.0.0.1:9/x");
    free(u);
}

const struct test delivery_tests[] = {
    {"sign_spec_vector", sign_spec_vector},
    {"sign_rejects", sign_rejects},
    {"backoff_bounds", backoff_bounds},
    {"retry_policy_spans_hours", retry_policy_spans_hours},
    {"config_full", config_full},
    {"config_errors_at_their_place", config_errors_at_their_place},
    {"config_secrets_from_env", config_secrets_from_env},
    {"email_headers", email_headers},
    {"email_rfc2047_long", email_rfc2047_long},
    {"url_join", url_join},
    {"outbox_claim_due_only", outbox_claim_due_only},
    {"outbox_outcomes", outbox_outcomes},
    {"outbox_requeue_and_next", outbox_requeue_and_next},
    {"outbox_redrive_filters", outbox_redrive_filters},
    {"dispatcher_states", dispatcher_states},
    {"dispatcher_retries_then_dead", dispatcher_retries_then_dead},
    {"dispatcher_engine_clock", dispatcher_engine_clock},
    {"dispatcher_notify_wakes_whom_it_concerns", dispatcher_notify_wakes_whom_it_concerns},
    {"dispatcher_requeue_same_key", dispatcher_requeue_same_key},
    {NULL, NULL},
};
