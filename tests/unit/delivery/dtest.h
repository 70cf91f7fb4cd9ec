/*
 * dtest.h -- shared by the delivery unit tests: the test functions of each
 * file (one table, in test_delivery.c), a temporary database, and a tiny
 * HTTP receiver for the dispatcher tests.
 */
#ifndef FW_DTEST_H
#define FW_DTEST_H

#include <pthread.h>
#include <stddef.h>

struct store;

/* test_outbox.c */
void outbox_claim_due_only(void);
void outbox_outcomes(void);
void outbox_requeue_and_next(void);
void outbox_redrive_filters(void);
/* test_dispatcher.c */
void dispatcher_states(void);
void dispatcher_retries_then_dead(void);
void dispatcher_engine_clock(void);
void dispatcher_notify_wakes_whom_it_concerns(void);
void dispatcher_requeue_same_key(void);

/* A fresh database path under /tmp (removed with its WAL files by dtest_rmdb). */
void dtest_tmpdb(char *path, size_t len);
void dtest_rmdb(const char *path);
/* Insert a scheduled message: id "m_<name>", key "k-<name>". */
int dtest_insert(struct store *s, const char *name, const char *channel, long long send_at,
                 const char *recipient, const char *meta);

/* A loopback HTTP receiver answering each request with the next scripted status. */
#define DHTTP_MAX 32
struct dhttp_seen {
    char method[8];
    char path[256];
    char headers[4096]; /* raw header block, lower-cased names */
    char body[8192];
};
struct dhttp_server {
    int fd;
    int port;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int statuses[DHTTP_MAX]; /* status for request i; 0 = 200 */
    struct dhttp_seen seen[DHTTP_MAX];
    int n; /* requests received */
    int stop;
};
int dhttp_start(struct dhttp_server *s);
void dhttp_stop(struct dhttp_server *s);
/* Wait until n requests arrived (or 10 s); returns the count. */
int dhttp_wait(struct dhttp_server *s, int n);
/* The value of header `name` (lower case) in request i, copied to out; NULL when absent. */
const char *dhttp_header(struct dhttp_server *s, int i, const char *name, char *out, size_t len);

#endif
