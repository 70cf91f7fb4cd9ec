/*
 * act.c -- a person's action, or an admin's declaration, as a journal
 * event: the one path by which an HTTP request changes engine state.
 *
 * Case actions, task actions and known-issue changes each become a
 * CloudEvent that forewarn dates by its own clock (so no time window:
 * ingest_own_limits), validated like any event, and handed to
 * pipeline_act, which applies it on the engine thread and journals it
 * only if it took effect.  Replay then reproduces it.  The refusals map
 * to HTTP the same way for all of them.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "http/http_int.h"
#include "ingest/ingest.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/util.h"

void http__event_id(const char *prefix, char out[40])
{
    unsigned char b[12];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = getrandom(b + got, sizeof b - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    size_t p = strlen(prefix);
    if (p > 8)
        p = 8;
    memcpy(out, prefix, p);
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(out + p + 2 * i, 3, "%02x", b[i]);
}

int http__act(struct req *r, const char *eid, const char *type, const char *subject, json_t *data,
              const struct ingest_globals *g, const char *what, char case_id[24])
{
    char ts[FW_TIME_MAXLEN], unused[24];
    fw_time_format(pipeline_now(r->env->pipeline), ts);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "specversion", "1.0", "id", eid,
                          "type", type, "source", "forewarn/api", "time", ts, "data", data);
    if (subject)
        json_object_set_new(j, "subject", json_string(subject));
    struct event ev;
    struct ingest_error ierr;
    if (ingest_validate(j, &ingest_own_limits, g, &ev, &ierr)) {
        http_error(r, 400, "%s%s%s; nothing was changed", ierr.field, ierr.field[0] ? ": " : "",
                   ierr.msg);
        json_decref(j);
        return FW_EINVAL;
    }
    char *body = fw_json_dumps(j);
    char why[320];
    int rc = pipeline_act(r->env->pipeline, &ev, body, why, sizeof why, case_id ? case_id : unused);
    free(body);
    event_cleanup(&ev);
    json_decref(j);
    if (rc == FW_ENOTFOUND)
        http_error(r, 404, "%s; nothing was changed", why);
    else if (rc == FW_EINVAL)
        http_error(r, 400, "%s; nothing was changed", why);
    else if (rc == FW_ESTATE)
        http_error(r, 409, "%s; nothing was changed", why);
    else if (rc)
        http_error(r, 503, "the %s could not be stored; nothing was changed, retry later", what);
    return rc;
}
