/*
 * test_outbox.c -- the dispatcher's half of the outbox on a temporary
 * database: what is due, compare-and-set outcomes, requeue after a crash,
 * and the next due times on each clock.
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../test.h"
#include "dtest.h"
#include "store/messages.h"
#include "store/store.h"
#include "util/util.h"

static struct store *open_db(char *path, size_t len)
{
    char err[256];
    struct store *s = NULL;
    dtest_tmpdb(path, len);
    if (store_open(path, 0, &s, err, sizeof err)) {
        fprintf(stderr, "    %s\n", err);
        return NULL;
    }
    return s;
}

/* Read one message's status and attempts (through the API half). */
static int status_of(struct store *s, const char *id, char *status, size_t len, int *attempts)
{
    struct outbox_msg m;
    int rc = store_message_get(s, id, &m);
    if (rc)
        return rc;
    snprintf(status, len, "%s", m.status);
    if (attempts)
        *attempts = m.attempts;
    outbox_msg_cleanup(&m);
    return 0;
}

void outbox_claim_due_only(void)
{
    char path[256], st[32];
    struct store *s = open_db(path, sizeof path);
    ASSERT(s != NULL);
    ASSERT_EQ(dtest_insert(s, "late", "email", 3000, "a@example.com", NULL), 0);
    ASSERT_EQ(dtest_insert(s, "early", "email", 1000, "a@example.com", NULL), 0);
    ASSERT_EQ(dtest_insert(s, "mid", "email", 2000, "a@example.com", NULL), 0);
    ASSERT_EQ(dtest_insert(s, "sms", "sms", 1000, "+1555", NULL), 0);
    ASSERT_EQ(dtest_insert(s, "early", "email", 1000, "a@example.com", NULL), FW_EEXISTS);

    struct outbox_msg out[4];
    /* Nothing is due before the engine clock reaches send_at. */
    ASSERT_EQ(store_outbox_claim(s, "email", 999, 5000, out, 4), 0);
    /* Due rows of that channel only, earliest first, marked sending with the attempt counted. */
    int n = store_outbox_claim(s, "email", 2000, 5000, out, 4);
    ASSERT_EQ(n, 2);
    ASSERT_STREQ(out[0].id, "m_early");
    ASSERT_STREQ(out[1].id, "m_mid");
    ASSERT_STREQ(out[0].status, "sending");
    ASSERT_EQ(out[0].attempts, 1);
    ASSERT_STREQ(out[0].key, "k-early");
    ASSERT_STREQ(out[0].recipient, "a@example.com");
    ASSERT_STREQ(out[0].body, "Hello Jodi,\nwe are on it.");
    ASSERT_STREQ(out[0].signals, "[\"SIG-002\"]");
    for (int i = 0; i < n; i++)
        outbox_msg_cleanup(&out[i]);
    /* Claimed rows are not claimed again. */
    ASSERT_EQ(store_outbox_claim(s, "email", 2000, 5000, out, 4), 0);
    ASSERT_EQ(status_of(s, "m_sms", st, sizeof st, NULL), 0);
    ASSERT_STREQ(st, "scheduled");
    /* max limits the batch. */
    ASSERT_EQ(dtest_insert(s, "late2", "email", 3000, "a@example.com", NULL), 0);
    ASSERT_EQ(store_outbox_claim(s, "email", 3000, 5000, out, 1), 1);
    ASSERT_STREQ(out[0].id, "m_late");
    outbox_msg_cleanup(&out[0]);
    store_close(s);
    dtest_rmdb(path);
}

void outbox_outcomes(void)
{
    char path[256], st[32];
    int attempts = -1;
    struct store *s = open_db(path, sizeof path);
    ASSERT(s != NULL);
    ASSERT_EQ(dtest_insert(s, "a", "webhook", 0, NULL, NULL), 0);
    ASSERT_EQ(dtest_insert(s, "b", "webhook", 0, NULL, NULL), 0);
    ASSERT_EQ(dtest_insert(s, "c", "email", 0, NULL, NULL), 0);
    struct outbox_msg out[2];
    ASSERT_EQ(store_outbox_claim(s, "webhook", 0, 100, out, 2), 2);
    outbox_msg_cleanup(&out[1]); /* out[1] is reused below */

    /* A failure with a retry time: retrying, not due before it, due at it. */
    ASSERT_EQ(store_outbox_failed(s, "m_a", "HTTP 503", 5000, NULL, 90, 100), 0);
    ASSERT_EQ(status_of(s, "m_a", st, sizeof st, &attempts), 0);
    ASSERT_STREQ(st, "retrying");
    ASSERT_EQ(attempts, 1);
    struct outbox_msg m;
    ASSERT_EQ(store_message_get(s, "m_a", &m), 0);
    ASSERT_STREQ(m.last_error, "HTTP 503");
    ASSERT_EQ(m.next_attempt_at, 5000);
    outbox_msg_cleanup(&m);
    /* An outcome for a row that is no longer sending changes nothing. */
    ASSERT_EQ(store_outbox_sent(s, "m_a", 200, "sent"), FW_ESTATE);
    ASSERT_EQ(store_outbox_claim(s, "webhook", 0, 4999, out + 1, 1), 0);
    ASSERT_EQ(store_outbox_claim(s, "webhook", 0, 5000, out + 1, 1), 1);
    ASSERT_EQ(out[1].attempts, 2);
    outbox_msg_cleanup(&out[1]);
    /* Sent: sent_at set, error cleared. */
    ASSERT_EQ(store_outbox_sent(s, "m_a", 6000, "sent"), 0);
    ASSERT_EQ(store_message_get(s, "m_a", &m), 0);
    ASSERT_STREQ(m.status, "sent");
    ASSERT_EQ(m.sent_at, 6000);
    ASSERT(m.last_error == NULL);
    ASSERT_EQ(m.attempts, 2);
    outbox_msg_cleanup(&m);
    /* Dead: terminal for the dispatcher; the API's retry brings it back as due at once. */
    ASSERT_EQ(store_outbox_failed(s, "m_b", "HTTP 400", 0, "refused", 90, 100), 0);
    ASSERT_EQ(status_of(s, "m_b", st, sizeof st, NULL), 0);
    ASSERT_STREQ(st, "dead");
    ASSERT_EQ(store_outbox_claim(s, "webhook", 1 << 30, 1LL << 50, out + 1, 1), 0);
    ASSERT_EQ(store_message_retry(s, "m_b", 7000), 0);
    ASSERT_EQ(store_outbox_claim(s, "webhook", 0, 7000, out + 1, 1), 1);
    ASSERT_STREQ(out[1].id, "m_b");
    ASSERT_EQ(out[1].attempts, 1);
    outbox_msg_cleanup(&out[1]);
    /* Stored: no attempt made, no sent_at. */
    ASSERT_EQ(store_outbox_claim(s, "email", 0, 100, out + 1, 1), 1);
    outbox_msg_cleanup(&out[1]);
    ASSERT_EQ(store_outbox_sent(s, "m_c", 100, "stored"), 0);
    ASSERT_EQ(store_message_get(s, "m_c", &m), 0);
    ASSERT_STREQ(m.status, "stored");
    ASSERT_EQ(m.attempts, 0);
    ASSERT_EQ(m.sent_at, 0);
    outbox_msg_cleanup(&m);
    ASSERT_EQ(store_outbox_sent(s, "m_c", 100, "delivered"), FW_EINVAL);
    outbox_msg_cleanup(&out[0]);
    store_close(s);
    dtest_rmdb(path);
}

void outbox_requeue_and_next(void)
{
    char path[256], st[32];
    int attempts = 0;
    int64_t e, w;
    struct store *s = open_db(path, sizeof path);
    ASSERT(s != NULL);
    ASSERT_EQ(store_outbox_next(s, "sms", &e, &w), 0);
    ASSERT_EQ(e, INT64_MAX);
    ASSERT_EQ(w, INT64_MAX);
    ASSERT_EQ(dtest_insert(s, "now", "sms", 1000, "+1555", NULL), 0);
    ASSERT_EQ(dtest_insert(s, "later", "sms", 9000, "+1555", NULL), 0);
    ASSERT_EQ(store_outbox_next(s, "sms", &e, &w), 0);
    ASSERT_EQ(e, 1000);
    ASSERT_EQ(w, INT64_MAX);
    struct outbox_msg m;
    ASSERT_EQ(store_outbox_claim(s, "sms", 1000, 50, &m, 1), 1);
    outbox_msg_cleanup(&m);
    /* While it is sending it is nobody else's business. */
    ASSERT_EQ(store_outbox_next(s, "sms", &e, &w), 0);
    ASSERT_EQ(e, 9000);
    /* A failed row waits on the wall clock; a scheduled one on the engine clock. */
    ASSERT_EQ(store_outbox_failed(s, "m_now", "timeout", 777, NULL, 60, 60), 0);
    ASSERT_EQ(store_outbox_next(s, "sms", &e, &w), 0);
    ASSERT_EQ(e, 9000);
    ASSERT_EQ(w, 777);
    /* The crash case: claimed, never recorded; requeue makes it due again at once. */
    ASSERT_EQ(store_outbox_claim(s, "sms", 1000, 777, &m, 1), 1);
    outbox_msg_cleanup(&m);
    ASSERT_EQ(store_outbox_requeue(s, 800), 1);
    ASSERT_EQ(store_outbox_requeue(s, 800), 0);
    ASSERT_EQ(status_of(s, "m_now", st, sizeof st, &attempts), 0);
    ASSERT_STREQ(st, "retrying");
    ASSERT_EQ(attempts, 2);
    ASSERT_EQ(store_outbox_next(s, "sms", &e, &w), 0);
    ASSERT_EQ(e, 1000);
    ASSERT_EQ(w, INT64_MAX);
    ASSERT_EQ(store_outbox_claim(s, "sms", 1000, 800, &m, 1), 1);
    ASSERT_STREQ(m.key, "k-now"); /* the same idempotency key goes out again */
    ASSERT_EQ(m.attempts, 3);
    outbox_msg_cleanup(&m);
    store_close(s);
    dtest_rmdb(path);
}

/*
 * Re-drive: dead letters back to `retrying` with a fresh window and their
 * key unchanged, filtered by channel, cause and time of death.
 */
void outbox_redrive_filters(void)
{
    char path[256], st[32];
    struct store *s = open_db(path, sizeof path);
    ASSERT(s != NULL);
    const char *names[] = {"w1", "w2", "w3", "s1"};
    const char *chans[] = {"webhook", "webhook", "webhook", "slack"};
    for (int i = 0; i < 4; i++) {
        struct outbox_msg m;
        ASSERT_EQ(dtest_insert(s, names[i], chans[i], 0, NULL, NULL), 0);
        ASSERT_EQ(store_outbox_claim(s, chans[i], 0, 0, &m, 1), 1);
        outbox_msg_cleanup(&m);
    }
    /* First failure sets first_failed_at; a later one keeps it. */
    ASSERT_EQ(store_outbox_failed(s, "m_w1", "HTTP 503", 50, NULL, 40, 40), 0);
    struct outbox_msg m;
    ASSERT_EQ(store_outbox_claim(s, "webhook", 0, 50, &m, 1), 1);
    outbox_msg_cleanup(&m);
    ASSERT_EQ(store_outbox_failed(s, "m_w1", "HTTP 503", 0, "expired", 100, 100), 0);
    ASSERT_EQ(store_message_get(s, "m_w1", &m), 0);
    ASSERT_EQ(m.first_failed_at, 40);
    ASSERT_STREQ(m.gave_up, "expired");
    outbox_msg_cleanup(&m);
    ASSERT_EQ(store_outbox_failed(s, "m_w2", "HTTP 400", 0, "refused", 200, 200), 0);
    ASSERT_EQ(store_outbox_failed(s, "m_w3", "timeout", 0, "expired", 300, 300), 0);
    ASSERT_EQ(store_outbox_failed(s, "m_s1", "HTTP 503", 0, "expired", 100, 100), 0);

    /* Automatic (expired only, its connector's channels): w1 and w3, not the refused w2. */
    const char *wh[] = {"webhook", NULL};
    struct redrive_filter f = {.channels = wh, .expired_only = 1};
    ASSERT_EQ(store_outbox_redrive(s, &f, 1000), 2);
    ASSERT_EQ(status_of(s, "m_w2", st, sizeof st, NULL), 0);
    ASSERT_STREQ(st, "dead");
    ASSERT_EQ(status_of(s, "m_s1", st, sizeof st, NULL), 0);
    ASSERT_STREQ(st, "dead");
    ASSERT_EQ(store_message_get(s, "m_w1", &m), 0);
    ASSERT_STREQ(m.status, "retrying");
    ASSERT_STREQ(m.key, "k-w1");
    ASSERT_EQ(m.attempts, 0);
    ASSERT_EQ(m.first_failed_at, 0);
    ASSERT(m.gave_up == NULL);
    outbox_msg_cleanup(&m);
    /* Due again at once. */
    ASSERT_EQ(store_outbox_claim(s, "webhook", 0, 1000, &m, 1), 1);
    outbox_msg_cleanup(&m);
    /* By time of death: [since, until). */
    struct redrive_filter t = {.since = 150, .until = 200};
    ASSERT_EQ(store_outbox_redrive(s, &t, 1100), 0);
    t.until = 201;
    ASSERT_EQ(store_outbox_redrive(s, &t, 1100), 1); /* w2, refused, but a person asked */
    /* Everything: what is left. */
    struct redrive_filter all = {0};
    ASSERT_EQ(store_outbox_redrive(s, &all, 1200), 1); /* s1 */
    ASSERT_EQ(store_outbox_redrive(s, &all, 1200), 0);
    store_close(s);
    dtest_rmdb(path);
}
