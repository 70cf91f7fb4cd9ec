/*
 * backfill.c -- load a file of events into a running server.  See
 * backfill.h.
 *
 * Invariant: nothing is sent unless every event of the file is valid, and
 * the batches go out in event-time order, so the server sees each
 * customer's history as it happened, however the file was ordered.
 */
#include "client/backfill.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/util.h"

/* The server's default body cap is 4 MiB; a batch is cut before it. */
#define BATCH_BYTES (3u << 20)

static int read_all(const char *path, struct buf *out)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "backfill: %s: %s\n", path, strerror(errno));
        return FW_EIO;
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(out, chunk, n);
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad) {
        fprintf(stderr, "backfill: %s: read error\n", path);
        return FW_EIO;
    }
    return 0;
}

static size_t collect(char *data, size_t size, size_t n, void *ctx)
{
    buf_append(ctx, data, size * n);
    return size * n;
}

/* POST one NDJSON batch; adds the server's counts.  Returns 0 or FW_EIO. */
static int post(CURL *h, const struct backfill_opts *o, const struct buf *body, size_t *accepted,
                size_t *dups)
{
    struct buf url, resp, auth;
    buf_init(&url, 0);
    buf_init(&resp, 1 << 20);
    buf_init(&auth, 0);
    buf_printf(&url, "%s/v1/events", o->url);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/x-ndjson");
    if (o->token) {
        buf_printf(&auth, "Authorization: Bearer %s", o->token);
        hdr = curl_slist_append(hdr, auth.data);
    }
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url.data);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    int rc = 0;
    if (cc != CURLE_OK) {
        fprintf(stderr, "backfill: %s: %s\n", url.data, curl_easy_strerror(cc));
        rc = FW_EIO;
    } else if (status != 200) {
        fprintf(stderr, "backfill: %s answered %ld: %.*s\n", url.data, status,
                (int)(resp.len > 2000 ? 2000 : resp.len), resp.data ? resp.data : "");
        rc = FW_EIO;
    } else {
        json_t *j = json_loadb(resp.data ? resp.data : "", resp.len, 0, NULL);
        *accepted += (size_t)json_integer_value(json_object_get(j, "accepted"));
        *dups += (size_t)json_integer_value(json_object_get(j, "duplicates"));
        json_decref(j);
    }
    curl_slist_free_all(hdr);
    buf_cleanup(&url);
    buf_cleanup(&resp);
    buf_cleanup(&auth);
    return rc;
}

int backfill_run(const struct backfill_opts *o)
{
    struct buf in, body;
    buf_init(&in, 0);
    buf_init(&body, 0);
    struct ingest_batch batch;
    memset(&batch, 0, sizeof batch);
    size_t *order = NULL;
    CURL *h = NULL;
    size_t accepted = 0, dups = 0, batches = 0;
    int rc = read_all(o->file, &in);
    if (rc)
        goto out;
    /* The whole file at once: its own size and count are the limits, the rest as the server's. */
    struct ingest_limits lim = ingest_default_limits;
    lim.max_body = in.len + 1;
    lim.max_events = (size_t)-1;
    struct ingest_globals g = {
        .ctx = (void *)o->rules, .is_global = rules_is_global, .declared = rules_declared};
    rc = ingest_parse(in.data ? in.data : "", in.len, &lim, &g, &batch);
    if (rc) {
        for (size_t i = 0; i < batch.nerrors; i++)
            fprintf(stderr, "%s: %s: %s%s%s\n", o->file, batch.errors[i].where,
                    batch.errors[i].field, batch.errors[i].field[0] ? ": " : "",
                    batch.errors[i].msg);
        fprintf(stderr, "backfill: %s refused; nothing was sent\n", o->file);
        rc = FW_EPARSE;
        goto out;
    }
    for (size_t i = 0; i < batch.n; i++)
        if (!strncmp(batch.events[i].type, "forewarn.", 9)) {
            fprintf(stderr, "%s: event %zu: type: the forewarn. prefix is reserved\n"
                            "backfill: %s refused; nothing was sent\n",
                    o->file, i + 1, o->file);
            rc = FW_EPARSE;
            goto out;
        }
    order = ingest_time_order(&batch);
    h = curl_easy_init();
    if (!h) {
        rc = FW_EIO;
        goto out;
    }
    size_t inbatch = 0;
    for (size_t k = 0; k <= batch.n; k++) {
        char *line = NULL;
        if (k < batch.n)
            line = fw_json_dumps(batch.events[order[k]].json);
        /* Send what is gathered when the batch is full, the next line would pass the cap, or at the end. */
        if (inbatch && (k == batch.n || inbatch == o->batch ||
                        body.len + strlen(line) + 1 > BATCH_BYTES)) {
            rc = post(h, o, &body, &accepted, &dups);
            if (rc) {
                fprintf(stderr, "backfill: stopped at batch %zu; the %zu batch(es) before it are "
                                "stored, run it again to resume\n", batches + 1, batches);
                free(line);
                goto out;
            }
            batches++;
            buf_reset(&body);
            inbatch = 0;
        }
        if (line) {
            buf_puts(&body, line);
            buf_putc(&body, '\n');
            inbatch++;
            free(line);
        }
    }
    printf("backfill: %zu events, %zu accepted, %zu duplicate(s) in %zu batch(es)\n", batch.n,
           accepted, dups, batches);
out:
    if (h)
        curl_easy_cleanup(h);
    free(order);
    ingest_batch_cleanup(&batch);
    buf_cleanup(&in);
    buf_cleanup(&body);
    return rc;
}
