/*
 * checkpoint.c -- copy the WAL back into the database on a thread of its
 * own, so that the engine thread's commits never do.
 *
 * SQLite's default runs a checkpoint inside whichever COMMIT finds the WAL
 * past 1000 pages: with group commits of thousands of events that was
 * nearly every commit on the engine thread, and it wrote every page twice
 * before answering the waiting requests (bench/: a third of batched
 * ingest).  A connection handed to a checkpointer only signals it from its
 * WAL hook; the checkpointer's own connection then runs a PASSIVE
 * checkpoint, which never blocks the writer or readers (and, should the
 * writer never pause, the writer finishes one itself past WRITER_PAGES so
 * the WAL stays bounded).  Durability is unchanged: a commit is durable
 * once its WAL frames are synced, which the writer still does
 * (synchronous=FULL); the checkpoint only moves them.
 */
#include "store/store.h"
#include "store/store_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/util.h"

#define CHECKPOINT_PAGES 1000  /* as SQLite's default autocheckpoint */
#define WRITER_PAGES 16384     /* 64 MB of WAL: the writer finishes the job itself */
#define CHECKPOINT_IDLE_MS 1000 /* and at least this often while the WAL has frames */

struct store_checkpointer {
    sqlite3 *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int signalled, stop;
    int held; /* tests: checkpoints wait until released */
    unsigned long runs; /* checkpoints run, for tests */
};

static int wal_hook(void *ctx, sqlite3 *db, const char *name, int pages)
{
    struct store_checkpointer *c = ctx;
    if (pages >= WRITER_PAGES) {
        /*
         * A writer that never pauses keeps a background checkpoint from ever
         * catching up, and the WAL restarts from its beginning only once
         * every frame is back in the database.  So past 64 MB the writer
         * copies what the checkpointer has not yet (little: it has been
         * copying all along) and its next transaction starts the WAL over.
         */
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    } else if (pages >= CHECKPOINT_PAGES) {
        pthread_mutex_lock(&c->mu);
        c->signalled = 1;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

static void *checkpointer_main(void *arg)
{
    struct store_checkpointer *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        if (!c->signalled || c->held) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += CHECKPOINT_IDLE_MS / 1000;
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
            if (c->stop)
                break;
        }
        if (c->held)
            continue; /* the signal stays set for when the hold is lifted */
        c->signalled = 0;
        pthread_mutex_unlock(&c->mu);
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn("store: checkpoint: %s", sqlite3_errmsg(c->db));
        pthread_mutex_lock(&c->mu);
        c->runs++;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int store_checkpointer_start(const char *path, struct store_checkpointer **out, char *err,
                             size_t errlen)
{
    struct store_checkpointer *c = xcalloc(1, sizeof *c);
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(c->db, "PRAGMA synchronous = FULL;", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s for checkpoints: %s", path,
                 c->db ? sqlite3_errmsg(c->db) : "?");
        sqlite3_close(c->db);
        free(c);
        return FW_EDB;
    }
    sqlite3_busy_timeout(c->db, 5000);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, checkpointer_main, c)) {
        snprintf(err, errlen, "cannot start the checkpoint thread");
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        sqlite3_close(c->db);
        free(c);
        return FW_EDB;
    }
    *out = c;
    return 0;
}

void store_use_checkpointer(struct store *s, struct store_checkpointer *c)
{
    if (c)
        sqlite3_wal_hook(s->db, wal_hook, c); /* replaces (turns off) autocheckpoint */
    else
        sqlite3_wal_autocheckpoint(s->db, CHECKPOINT_PAGES);
}

void store_checkpointer_hold(struct store_checkpointer *c, int held)
{
    pthread_mutex_lock(&c->mu);
    c->held = held;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

unsigned long store_checkpointer_runs(struct store_checkpointer *c)
{
    pthread_mutex_lock(&c->mu);
    unsigned long n = c->runs;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void store_checkpointer_stop(struct store_checkpointer *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    sqlite3_close(c->db);
    free(c);
}
