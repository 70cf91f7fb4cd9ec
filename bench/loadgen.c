/*
 * loadgen.c -- HTTP load for `forewarn serve`: POST /v1/events from an
 * NDJSON file over keep-alive connections, one thread per connection.
 *
 *   loadgen batch  --port P --file F [--batch 1000] [--conns 4] [--skip N] [--limit N]
 *                  [--duration S]
 *       every line from --skip on (at most --limit), in batches of --batch
 *       lines, as fast as the server takes them (stopping after --duration
 *       seconds when given); prints events/s.
 *   loadgen single --port P --file F --rate R --duration S [--conns 64] [--skip N]
 *       one event per request at a fixed offered rate (open loop): request
 *       k is due at start + k/R, and its latency is measured from that due
 *       time, not from when it was sent, so a slow server cannot hide its
 *       queueing (no coordinated omission).  Prints p50/p90/p99/p99.9/max.
 *       A server slower than the offered rate would make this run for ever:
 *       requests not sent by 1.5 x duration + 2 s are dropped and counted as
 *       "unsent" (their latency would only be larger).
 *   loadgen single --port P --file F --rate 0 --duration S [--conns 8]
 *       closed loop: each connection sends its next event as soon as the
 *       previous one is answered; prints requests/s (saturation).
 *
 * Every response must be 200 with "accepted" plus "duplicates" equal to the
 * events sent; anything else counts as an error and is printed once.  The
 * last line of output is one JSON object with the figures.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *file_data;
static size_t *line_off; /* start of each line; line_off[nlines] = end */
static size_t nlines;
static int port, batch = 1000, conns = 4;
static double rate, duration;
static size_t skip, limit = SIZE_MAX;

static size_t next_unit; /* batches or requests handed out (atomic) */
static size_t nunits;
static int64_t start_ns;
static size_t sent_events, accepted, dups, errors, unsent;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t *lat; /* per request, ns; -1 when not sent */
static int error_printed;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int connect_to(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        perror("loadgen: connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

struct conn {
    int fd;
    char *rbuf;
    size_t rcap, rlen;
    char *req;
    size_t reqcap;
};

/* Read one response; returns the status (or -1) and leaves the body in c->rbuf[*body..]. */
static int read_response(struct conn *c, size_t *body, size_t *blen)
{
    c->rlen = 0;
    size_t hdr_end = 0, clen = 0;
    for (;;) {
        if (c->rlen + 65536 > c->rcap) {
            c->rcap = c->rcap * 2 + 65536;
            c->rbuf = realloc(c->rbuf, c->rcap + 1);
        }
        ssize_t r = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c->rlen += (size_t)r;
        c->rbuf[c->rlen] = '\0';
        if (!hdr_end) {
            char *e = strstr(c->rbuf, "\r\n\r\n");
            if (!e)
                continue;
            hdr_end = (size_t)(e - c->rbuf) + 4;
            char *cl = strcasestr(c->rbuf, "\r\nContent-Length:");
            if (!cl || cl > e)
                return -1;
            clen = strtoul(cl + 17, NULL, 10);
        }
        if (c->rlen >= hdr_end + clen)
            break;
    }
    *body = hdr_end;
    *blen = clen;
    return atoi(c->rbuf + 9);
}

/* POST lines [a, b); returns 0 when all were accepted or duplicates. */
static int post(struct conn *c, size_t a, size_t b)
{
    size_t len = line_off[b] - line_off[a];
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Content-Type: application/x-ndjson\r\nContent-Length: %zu\r\n\r\n",
                      len);
    if (c->reqcap < (size_t)hn + len) {
        c->reqcap = (size_t)hn + len;
        c->req = realloc(c->req, c->reqcap);
    }
    memcpy(c->req, head, (size_t)hn);
    memcpy(c->req + hn, file_data + line_off[a], len);
    if (write_all(c->fd, c->req, (size_t)hn + len))
        return -1;
    size_t body, blen;
    int status = read_response(c, &body, &blen);
    size_t acc = 0, dup = 0;
    const char *p = status == 200 ? strstr(c->rbuf + body, "\"accepted\":") : NULL;
    if (p)
        acc = strtoul(p + 11, NULL, 10);
    p = p ? strstr(p, "\"duplicates\":") : NULL;
    if (p)
        dup = strtoul(p + 13, NULL, 10);
    pthread_mutex_lock(&mu);
    sent_events += b - a;
    accepted += acc;
    dups += dup;
    int bad = status != 200 || acc + dup != b - a;
    if (bad) {
        errors++;
        if (!error_printed++)
            fprintf(stderr, "loadgen: status %d: %.300s\n", status,
                    status > 0 ? c->rbuf + body : "(connection lost)");
    }
    pthread_mutex_unlock(&mu);
    return bad ? -1 : 0;
}

static void *batch_thread(void *arg)
{
    (void)arg;
    struct conn c = {.fd = connect_to()};
    int64_t stop = duration > 0 ? start_ns + (int64_t)(duration * 1e9) : INT64_MAX;
    for (;;) {
        size_t u = __atomic_fetch_add(&next_unit, 1, __ATOMIC_RELAXED);
        if (u >= nunits || now_ns() >= stop)
            break;
        size_t a = skip + u * (size_t)batch, b = a + (size_t)batch;
        if (b > skip + limit) /* limit: lines to send, set in main */
            b = skip + limit;
        int64_t t0 = now_ns();
        if (post(&c, a, b)) {
            close(c.fd);
            c.fd = connect_to();
        }
        lat[u] = now_ns() - t0;
    }
    close(c.fd);
    free(c.rbuf);
    free(c.req);
    return NULL;
}

static void sleep_until(int64_t t)
{
    struct timespec ts = {.tv_sec = t / 1000000000LL, .tv_nsec = t % 1000000000LL};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void *single_thread(void *arg)
{
    size_t id = (size_t)(uintptr_t)arg;
    struct conn c = {.fd = connect_to()};
    if (rate > 0) {
        /* Open loop: this connection owns requests id, id + conns, ... */
        int64_t hard_stop = start_ns + (int64_t)((duration * 1.5 + 2) * 1e9);
        for (size_t k = id; k < nunits; k += (size_t)conns) {
            int64_t due = start_ns + (int64_t)((double)k * 1e9 / rate);
            if (now_ns() > hard_stop) {
                __atomic_fetch_add(&unsent, 1, __ATOMIC_RELAXED);
                continue;
            }
            sleep_until(due);
            if (post(&c, skip + k, skip + k + 1)) {
                close(c.fd);
                c.fd = connect_to();
            }
            lat[k] = now_ns() - due;
        }
    } else {
        int64_t stop = start_ns + (int64_t)(duration * 1e9);
        for (;;) {
            size_t k = __atomic_fetch_add(&next_unit, 1, __ATOMIC_RELAXED);
            if (k >= nunits || now_ns() >= stop)
                break;
            int64_t t0 = now_ns();
            if (post(&c, skip + k, skip + k + 1)) {
                close(c.fd);
                c.fd = connect_to();
            }
            lat[k] = now_ns() - t0;
        }
    }
    close(c.fd);
    free(c.rbuf);
    free(c.req);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const int64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)n);
    if (i >= n)
        i = n - 1;
    return (double)v[i] / 1e6;
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen batch|single --port P --file F [--batch N] [--conns N] "
                    "[--rate R] [--duration S] [--skip N] [--limit N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    int single = !strcmp(argv[1], "single");
    if (!single && strcmp(argv[1], "batch"))
        usage();
    const char *path = NULL;
    if (single)
        conns = 64;
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--port"))
            port = atoi(v);
        else if (!strcmp(a, "--file"))
            path = v;
        else if (!strcmp(a, "--batch"))
            batch = atoi(v);
        else if (!strcmp(a, "--conns"))
            conns = atoi(v);
        else if (!strcmp(a, "--rate"))
            rate = atof(v);
        else if (!strcmp(a, "--duration"))
            duration = atof(v);
        else if (!strcmp(a, "--skip"))
            skip = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--limit"))
            limit = strtoul(v, NULL, 10);
        else
            usage();
    }
    if (!path || !port || batch < 1 || conns < 1)
        usage();
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        perror(path);
        return 1;
    }
    file_data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (file_data == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    size_t cap = 1 << 20;
    line_off = malloc(cap * sizeof *line_off);
    line_off[0] = 0;
    for (size_t i = 0; i < (size_t)st.st_size; i++)
        if (file_data[i] == '\n') {
            if (nlines + 2 >= cap) {
                cap *= 2;
                line_off = realloc(line_off, cap * sizeof *line_off);
            }
            line_off[++nlines] = i + 1;
        }
    if (skip > nlines)
        skip = nlines;
    size_t avail = nlines - skip < limit ? nlines - skip : limit;
    if (single) {
        nunits = rate > 0 ? (size_t)(rate * duration) : avail;
        if (nunits > avail) {
            fprintf(stderr, "loadgen: only %zu events after --skip; need %zu\n", avail, nunits);
            return 1;
        }
    } else {
        nunits = (avail + (size_t)batch - 1) / (size_t)batch;
        limit = avail;
    }
    lat = malloc((nunits + 1) * sizeof *lat);
    for (size_t i = 0; i < nunits; i++)
        lat[i] = -1;
    pthread_t *th = calloc((size_t)conns, sizeof *th);
    start_ns = now_ns() + 50000000; /* 50 ms for every thread to connect */
    for (int i = 0; i < conns; i++)
        pthread_create(&th[i], NULL, single ? single_thread : batch_thread, (void *)(uintptr_t)i);
    if (!single || rate == 0)
        sleep_until(start_ns);
    for (int i = 0; i < conns; i++)
        pthread_join(th[i], NULL);
    double secs = (double)(now_ns() - start_ns) / 1e9;
    size_t n = 0;
    for (size_t i = 0; i < nunits; i++)
        if (lat[i] >= 0)
            lat[n++] = lat[i];
    qsort(lat, n, sizeof *lat, cmp_i64);
    const char *mode = !single ? "batch" : rate > 0 ? "single_open_loop" : "single_closed_loop";
    printf("{\"mode\":\"%s\",\"conns\":%d,\"batch\":%d,\"offered_rate\":%.0f,\"requests\":%zu,"
           "\"events\":%zu,\"accepted\":%zu,\"duplicates\":%zu,\"errors\":%zu,\"unsent\":%zu,"
           "\"seconds\":%.3f,"
           "\"events_per_s\":%.0f,\"requests_per_s\":%.0f,\"lat_ms\":{\"p50\":%.3f,\"p90\":%.3f,"
           "\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}}\n",
           mode, conns, single ? 1 : batch, rate, n, sent_events, accepted, dups, errors, unsent, secs,
           (double)sent_events / secs, (double)n / secs, pct(lat, n, 50), pct(lat, n, 90),
           pct(lat, n, 99), pct(lat, n, 99.9), n ? (double)lat[n - 1] / 1e6 : 0.0);
    return errors ? 1 : 0;
}
