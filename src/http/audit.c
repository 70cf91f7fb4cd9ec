/*
 * audit.c -- the audit trail's writer: one thread with its own read-write
 * connection, group commit, callers wait until their row is durable.
 *
 * Why its own connection and not the pipeline's: audited calls are mostly
 * reads, which never go near the engine thread, and the engine thread's
 * group commit is the ingest hot path; a separate writer keeps the two
 * apart and keeps the audit out of the journal's transactions.  SQLite
 * (WAL) allows one writer at a time, so the two take turns on the write
 * lock (busy_timeout 5 s, store_open); an audit transaction is a few
 * INSERTs and is short.  Rows waiting when the thread wakes are written in
 * ONE transaction (synchronous=FULL: one fsync for all of them), and only
 * after its COMMIT are their requests answered, so a call that was
 * answered is in the trail even if the process dies just after.  If the
 * commit fails, the callers learn it (the router then refuses to hand out
 * what was read; see http.c).
 *
 * The same thread records when tokens were last used (no caller waits for
 * those).  The checkpointer does not watch this connection: SQLite's own
 * autocheckpoint runs in its commits, which is fine at its volume.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"
#include "store/auth.h"
#include "util/log.h"
#include "util/util.h"

struct audit_entry {
    struct audit_record rec; /* borrowed from the waiting caller; unused for a touch */
    int64_t touch_id;        /* > 0: a token's last use, at touch_at; nobody waits */
    int64_t touch_at;
    int done, rc;
    struct audit_entry *next;
};

struct audit_log {
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* the writer waits for entries here */
    pthread_cond_t done_cv; /* callers wait for their commit here */
    struct audit_entry *head, *tail;
    int stop;
    pthread_t thread;
    struct store *db;
};

/* Write one group in one transaction: 0 or FW_EDB (nothing of the group kept). */
static int write_group(struct store *db, struct audit_entry *group)
{
    int rc = store_begin(db);
    for (struct audit_entry *e = group; e && !rc; e = e->next)
        rc = e->touch_id ? store_token_touch(db, e->touch_id, e->touch_at)
                         : store_audit_append(db, &e->rec);
    if (!rc)
        rc = store_commit(db);
    if (rc) {
        store_rollback(db);
        log_error("audit: could not write %s: %s", group->touch_id ? "a token's use" : "a row",
                  store_errmsg(db));
    }
    return rc;
}

static void *audit_thread(void *arg)
{
    struct audit_log *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->head && !a->stop)
            pthread_cond_wait(&a->work_cv, &a->mu);
        if (!a->head)
            break; /* stopping, and everything queued is written */
        struct audit_entry *group = a->head;
        a->head = a->tail = NULL;
        pthread_mutex_unlock(&a->mu);
        int rc = write_group(a->db, group);
        pthread_mutex_lock(&a->mu);
        /* A waiter's entry lives on its stack: read next before it may return. */
        for (struct audit_entry *e = group, *next; e; e = next) {
            next = e->next;
            if (e->touch_id) {
                free(e);
            } else {
                e->rc = rc;
                e->done = 1;
            }
        }
        pthread_cond_broadcast(&a->done_cv);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

int http__audit_start(struct audit_log **out, const char *path)
{
    struct audit_log *a = xcalloc(1, sizeof *a);
    char err[256];
    if (store_open(path, 0, &a->db, err, sizeof err)) {
        log_error("audit: %s", err);
        free(a);
        return FW_EDB;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->work_cv, NULL);
    pthread_cond_init(&a->done_cv, NULL);
    if (pthread_create(&a->thread, NULL, audit_thread, a)) {
        log_error("audit: cannot start the writer thread");
        store_close(a->db);
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->work_cv);
        pthread_cond_destroy(&a->done_cv);
        free(a);
        return FW_EIO;
    }
    *out = a;
    return 0;
}

void http__audit_stop(struct audit_log *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_signal(&a->work_cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    store_close(a->db);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->work_cv);
    pthread_cond_destroy(&a->done_cv);
    free(a);
}

static void enqueue(struct audit_log *a, struct audit_entry *e)
{
    e->next = NULL;
    if (a->tail)
        a->tail->next = e;
    else
        a->head = e;
    a->tail = e;
    pthread_cond_signal(&a->work_cv);
}

int http__audit_record(struct audit_log *a, const struct audit_record *rec)
{
    struct audit_entry e = {.rec = *rec};
    pthread_mutex_lock(&a->mu);
    enqueue(a, &e);
    while (!e.done)
        pthread_cond_wait(&a->done_cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
    return e.rc;
}

void http__audit_touch(struct audit_log *a, int64_t token_id, int64_t at)
{
    if (!a)
        return;
    struct audit_entry *e = xcalloc(1, sizeof *e);
    e->touch_id = token_id;
    e->touch_at = at;
    pthread_mutex_lock(&a->mu);
    enqueue(a, e);
    pthread_mutex_unlock(&a->mu);
}
