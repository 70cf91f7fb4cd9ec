/*
 * journal.c -- bulk-load generated NDJSON into the events journal of a
 * forewarn database, for the restart benchmark.
 *
 * Sending a million customers' events through HTTP would take longer than
 * the whole benchmark may; recovery only reads the journal, so this writes
 * the rows `serve --virtual-clock` would have written for the same events
 * sent in time order: id, type, subject, time, applied_at (= the event time,
 * since the virtual clock follows event time) and the body, plus the saved
 * virtual clock.  The schema must already exist (bench/run starts and stops
 * serve on the file first, so forewarn's own migrations create it).
 *
 *   journal DB FILE.ndjson
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Find "key":"value" in a generated line; returns the value and its length. */
static const char *field(const char *line, const char *key, size_t *len)
{
    const char *p = strstr(line, key);
    if (!p)
        return NULL;
    p += strlen(key);
    const char *e = strchr(p, '"');
    if (!e)
        return NULL;
    *len = (size_t)(e - p);
    return p;
}

/* YYYY-MM-DDTHH:MM:SS.mmmZ (the generator's format) to ms since the epoch. */
static int64_t parse_time(const char *s)
{
    struct tm tm = {0};
    tm.tm_year = atoi(s) - 1900;
    tm.tm_mon = atoi(s + 5) - 1;
    tm.tm_mday = atoi(s + 8);
    tm.tm_hour = atoi(s + 11);
    tm.tm_min = atoi(s + 14);
    tm.tm_sec = atoi(s + 17);
    return (int64_t)timegm(&tm) * 1000 + atoi(s + 20);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: journal DB FILE.ndjson\n");
        return 2;
    }
    sqlite3 *db;
    if (sqlite3_open(argv[1], &db) != SQLITE_OK) {
        fprintf(stderr, "journal: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    FILE *in = fopen(argv[2], "r");
    if (!in) {
        perror(argv[2]);
        return 1;
    }
    sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT INTO events(id, type, subject, time, applied_at, body) "
                               "VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "journal: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    int64_t last = 0;
    while ((len = getline(&line, &cap, in)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        size_t il = 0, tl = 0, sl = 0, ml = 0;
        const char *id = field(line, "\"id\":\"", &il);
        const char *type = field(line, "\"type\":\"", &tl);
        const char *sub = field(line, "\"subject\":\"", &sl);
        const char *tm = field(line, "\"time\":\"", &ml);
        if (!id || !type || !tm) {
            fprintf(stderr, "journal: line %zu: not a generated event\n", n + 1);
            return 1;
        }
        last = parse_time(tm);
        sqlite3_bind_text(st, 1, id, (int)il, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, type, (int)tl, SQLITE_STATIC);
        if (sub)
            sqlite3_bind_text(st, 3, sub, (int)sl, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 3);
        sqlite3_bind_int64(st, 4, last);
        sqlite3_bind_text(st, 5, line, (int)len, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            fprintf(stderr, "journal: line %zu: %s\n", n + 1, sqlite3_errmsg(db));
            return 1;
        }
        sqlite3_reset(st);
        n++;
    }
    sqlite3_finalize(st);
    char sql[160];
    snprintf(sql, sizeof sql,
             "INSERT INTO meta(key, value) VALUES ('virtual_clock', '%lld') "
             "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
             (long long)last);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "journal: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    sqlite3_close(db);
    free(line);
    fclose(in);
    printf("{\"events\":%zu,\"virtual_clock_ms\":%lld}\n", n, (long long)last);
    return 0;
}
