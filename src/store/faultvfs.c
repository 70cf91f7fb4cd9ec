/*
 * faultvfs.c -- a fault-injecting SQLite VFS for tests (curl's torture
 * mode for the disk).
 *
 * Test-only.  Nothing here runs unless the environment variable
 * FOREWARN_TEST_IO_FAULTS names a control file when the process opens its
 * first database.  Then a VFS that wraps the default one (unix) is
 * registered as the default, so every connection of the process (the
 * engine's writer, the dispatcher's, the audit writer's, the checkpointer,
 * the HTTP readers) goes through it.  It passes everything to the real VFS
 * except that it can make the N-th read, write or sync fail.
 *
 * The control file holds one line (empty, missing or "off": no faults):
 *
 *     OP N [COUNT] [full] [thread=PREFIX]
 *
 * OP is read, write, sync or any (write includes truncate); the N-th
 * operation of that kind (1 = the next one) counted from when the file
 * was last read fails, and so do the COUNT - 1 after it (COUNT 1 when
 * omitted; 0 = every one from the N-th until the file changes).  A failed
 * read, write or sync returns SQLITE_IOERR_READ, _WRITE, _FSYNC (_TRUNCATE)
 * without touching the file; with the word `full` a write fails with
 * SQLITE_FULL instead, as a full disk does.  thread=PREFIX counts and fails
 * only the operations of threads whose name starts with PREFIX: the engine
 * thread is "fw-engine", the dispatcher's workers "fw-deliver-<connector>"
 * (truncated to 15 characters), so a test can aim at ingest or at delivery.  The file is looked at (stat)
 * before each operation and re-read when it changed (replace it by
 * rename, so the change is seen at once), which re-arms the counters.
 *
 * Every injected fault is logged ("fault-vfs: ..."), so a test can tell
 * that its faults happened.  Reads through memory-mapped I/O would bypass
 * xRead, so this VFS declines xFetch (SQLite then reads through xRead).
 */
#include <ctype.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store_int.h"
#include "util/log.h"

enum fault_op { OP_READ, OP_WRITE, OP_SYNC, OP_ANY, OP_NONE };

static const char *const op_names[] = {"read", "write", "sync", "any"};

static struct {
    sqlite3_vfs vfs;        /* ours: the default's, with xOpen and szOsFile replaced */
    sqlite3_vfs *real;      /* the default VFS we wrap */
    const char *control;    /* the control file's path (the environment's string) */
    pthread_mutex_t mu;     /* guards everything below */
    struct stat seen;       /* the control file as last read (st_ino 0: none) */
    enum fault_op op;       /* what fails, or OP_NONE */
    long long nth, count;   /* the nth op fails, and count - 1 after it (0: all after it) */
    int full;               /* writes fail with SQLITE_FULL */
    char thread[16];        /* only in threads whose name starts so ("": all) */
    long long ops;          /* ops of kind `op` since the file was read */
    long long injected;     /* faults injected since the start of the process */
} F = {.mu = PTHREAD_MUTEX_INITIALIZER, .op = OP_NONE};

struct fault_file {
    sqlite3_file base;
    sqlite3_file *real; /* the wrapped file, allocated right after this struct */
    const char *name;   /* for the log; SQLite keeps the string while the file is open */
};

/* Re-read the control file if it changed (called with F.mu held). */
static void control_refresh(void)
{
    struct stat st;
    if (stat(F.control, &st)) {
        memset(&st, 0, sizeof st);
    }
    if (st.st_ino == F.seen.st_ino && st.st_dev == F.seen.st_dev &&
        st.st_size == F.seen.st_size && st.st_mtim.tv_sec == F.seen.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == F.seen.st_mtim.tv_nsec)
        return;
    F.seen = st;
    F.op = OP_NONE;
    F.ops = 0;
    FILE *f = st.st_ino ? fopen(F.control, "r") : NULL;
    if (!f)
        return;
    char line[256] = "", *save = NULL;
    if (!fgets(line, sizeof line, f))
        line[0] = 0;
    fclose(f);
    char *word[5] = {0};
    int n = 0;
    for (char *t = strtok_r(line, " \t\r\n", &save); t && n < 5; t = strtok_r(NULL, " \t\r\n", &save))
        word[n++] = t;
    if (n == 0 || !strcmp(word[0], "off"))
        return;
    enum fault_op op = OP_NONE;
    for (int i = 0; i < OP_NONE; i++)
        if (!strcmp(word[0], op_names[i]))
            op = (enum fault_op)i;
    int counted = n >= 3 && isdigit((unsigned char)word[2][0]); /* COUNT is optional */
    long long nth = n >= 2 ? atoll(word[1]) : 0, count = counted ? atoll(word[2]) : 1;
    int full = 0, bad = op == OP_NONE || nth < 1 || count < 0;
    F.thread[0] = 0;
    for (int i = counted ? 3 : 2; i < n; i++) {
        if (!strcmp(word[i], "full"))
            full = 1;
        else if (!strncmp(word[i], "thread=", 7))
            snprintf(F.thread, sizeof F.thread, "%s", word[i] + 7);
        else
            bad = 1;
    }
    if (bad) {
        log_warn("fault-vfs: %s: cannot read it: no faults", F.control);
        return;
    }
    F.op = op;
    F.nth = nth;
    F.count = count;
    F.full = full;
    log_warn("fault-vfs: armed: %s %lld %lld%s%s%s", op_names[op], nth, count,
             full ? " full" : "", F.thread[0] ? " thread=" : "", F.thread);
}

/* 1 when the calling thread is one the faults are for. */
static int thread_matches(void)
{
    if (!F.thread[0])
        return 1;
    char name[32] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    return !strncmp(name, F.thread, strlen(F.thread));
}

/* 1 when this operation must fail. */
static int fault_now(struct fault_file *f, enum fault_op kind)
{
    pthread_mutex_lock(&F.mu);
    control_refresh();
    int fail = 0;
    if ((F.op == kind || F.op == OP_ANY) && thread_matches()) {
        long long k = ++F.ops;
        fail = k >= F.nth && (F.count == 0 || k < F.nth + F.count);
        if (fail) {
            F.injected++;
            log_warn("fault-vfs: failing %s #%lld on %s (fault %lld)", op_names[kind], k,
                     f->name ? f->name : "(temp)", F.injected);
        }
    }
    int full = F.full;
    pthread_mutex_unlock(&F.mu);
    return fail ? (full && kind == OP_WRITE ? 2 : 1) : 0;
}

static int f_close(sqlite3_file *p)
{
    struct fault_file *f = (struct fault_file *)p;
    int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    return rc;
}

static int f_read(sqlite3_file *p, void *buf, int amt, sqlite3_int64 off)
{
    struct fault_file *f = (struct fault_file *)p;
    if (fault_now(f, OP_READ))
        return SQLITE_IOERR_READ;
    return f->real->pMethods->xRead(f->real, buf, amt, off);
}

static int f_write(sqlite3_file *p, const void *buf, int amt, sqlite3_int64 off)
{
    struct fault_file *f = (struct fault_file *)p;
    int x = fault_now(f, OP_WRITE);
    if (x)
        return x == 2 ? SQLITE_FULL : SQLITE_IOERR_WRITE;
    return f->real->pMethods->xWrite(f->real, buf, amt, off);
}

static int f_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    struct fault_file *f = (struct fault_file *)p;
    int x = fault_now(f, OP_WRITE);
    if (x)
        return x == 2 ? SQLITE_FULL : SQLITE_IOERR_TRUNCATE;
    return f->real->pMethods->xTruncate(f->real, size);
}

static int f_sync(sqlite3_file *p, int flags)
{
    struct fault_file *f = (struct fault_file *)p;
    if (fault_now(f, OP_SYNC))
        return SQLITE_IOERR_FSYNC;
    return f->real->pMethods->xSync(f->real, flags);
}

/* The rest is passed through as it is. */
#define REAL(p) (((struct fault_file *)(p))->real)

static int f_size(sqlite3_file *p, sqlite3_int64 *size)
{
    return REAL(p)->pMethods->xFileSize(REAL(p), size);
}
static int f_lock(sqlite3_file *p, int l)
{
    return REAL(p)->pMethods->xLock(REAL(p), l);
}
static int f_unlock(sqlite3_file *p, int l)
{
    return REAL(p)->pMethods->xUnlock(REAL(p), l);
}
static int f_check_lock(sqlite3_file *p, int *out)
{
    return REAL(p)->pMethods->xCheckReservedLock(REAL(p), out);
}
static int f_control(sqlite3_file *p, int op, void *arg)
{
    if (op == SQLITE_FCNTL_MMAP_SIZE) { /* no memory-mapped reads: they would bypass xRead */
        if (arg)
            *(sqlite3_int64 *)arg = 0;
        return SQLITE_OK;
    }
    return REAL(p)->pMethods->xFileControl(REAL(p), op, arg);
}
static int f_sector(sqlite3_file *p)
{
    return REAL(p)->pMethods->xSectorSize(REAL(p));
}
static int f_devchar(sqlite3_file *p)
{
    return REAL(p)->pMethods->xDeviceCharacteristics(REAL(p));
}
static int f_shm_map(sqlite3_file *p, int pg, int sz, int extend, void volatile **pp)
{
    const sqlite3_io_methods *m = REAL(p)->pMethods;
    return m->iVersion >= 2 && m->xShmMap ? m->xShmMap(REAL(p), pg, sz, extend, pp)
                                          : SQLITE_IOERR_SHMMAP;
}
static int f_shm_lock(sqlite3_file *p, int off, int n, int flags)
{
    return REAL(p)->pMethods->xShmLock(REAL(p), off, n, flags);
}
static void f_shm_barrier(sqlite3_file *p)
{
    REAL(p)->pMethods->xShmBarrier(REAL(p));
}
static int f_shm_unmap(sqlite3_file *p, int del)
{
    const sqlite3_io_methods *m = REAL(p)->pMethods;
    return m->iVersion >= 2 && m->xShmUnmap ? m->xShmUnmap(REAL(p), del) : SQLITE_OK;
}
static int f_fetch(sqlite3_file *p, sqlite3_int64 off, int amt, void **pp)
{
    (void)p, (void)off, (void)amt;
    *pp = NULL; /* read it through xRead instead */
    return SQLITE_OK;
}
static int f_unfetch(sqlite3_file *p, sqlite3_int64 off, void *ptr)
{
    (void)p, (void)off, (void)ptr;
    return SQLITE_OK;
}

static const sqlite3_io_methods fault_methods = {
    .iVersion = 3,
    .xClose = f_close,
    .xRead = f_read,
    .xWrite = f_write,
    .xTruncate = f_truncate,
    .xSync = f_sync,
    .xFileSize = f_size,
    .xLock = f_lock,
    .xUnlock = f_unlock,
    .xCheckReservedLock = f_check_lock,
    .xFileControl = f_control,
    .xSectorSize = f_sector,
    .xDeviceCharacteristics = f_devchar,
    .xShmMap = f_shm_map,
    .xShmLock = f_shm_lock,
    .xShmBarrier = f_shm_barrier,
    .xShmUnmap = f_shm_unmap,
    .xFetch = f_fetch,
    .xUnfetch = f_unfetch,
};

static int f_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags, int *out_flags)
{
    (void)vfs;
    struct fault_file *f = (struct fault_file *)p;
    f->real = (sqlite3_file *)(f + 1);
    f->name = name;
    int rc = F.real->xOpen(F.real, name, f->real, flags, out_flags);
    /* SQLite calls xClose when pMethods is set, even after a failed open. */
    p->pMethods = f->real->pMethods ? &fault_methods : NULL;
    return rc;
}

static void install(void)
{
    F.control = getenv("FOREWARN_TEST_IO_FAULTS");
    if (!F.control || !F.control[0])
        return;
    F.real = sqlite3_vfs_find(NULL);
    if (!F.real)
        return;
    F.vfs = *F.real; /* the other methods (and pAppData) are the real VFS's own */
    F.vfs.zName = "forewarn-fault";
    F.vfs.szOsFile = (int)sizeof(struct fault_file) + F.real->szOsFile;
    F.vfs.xOpen = f_open;
    F.vfs.pNext = NULL;
    if (sqlite3_vfs_register(&F.vfs, 1) == SQLITE_OK)
        log_warn("fault-vfs: test-only I/O fault injection is on (FOREWARN_TEST_IO_FAULTS=%s)",
                 F.control);
}

void store__fault_install(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install);
}
