/*
 * stats_routes.c -- the outcomes and the scoreboard: GET /v1/stats/outcomes,
 * GET /v1/stats/me and GET /v1/leaderboard.  The figures are computed from
 * what the store keeps (analytics/stats.h), the same way replay --stats
 * computes them from the journal.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/stats.h"
#include "http/http_int.h"
#include "store/stats.h"
#include "util/fwtime.h"
#include "util/json.h"

enum stats_view { VIEW_OUTCOMES, VIEW_ME, VIEW_LEADERBOARD };

static void reply_stats(struct req *r, enum stats_view view)
{
    int64_t from, to;
    if (http__query_time(r, "from", &from) || http__query_time(r, "to", &to))
        return;
    if (from != FW_TIME_NONE && to != FW_TIME_NONE && to <= from) {
        http_error(r, 400, "query parameter to: must be after from");
        return;
    }
    if (view == VIEW_ME && !r->who.authenticated) {
        http_error(r, 400,
                   "stats/me needs a user's token: without authentication there is no 'me'");
        return;
    }
    struct store *s = http__reader_acquire(&r->env->readers);
    if (!s) {
        http_error(r, 503, "database unavailable");
        return;
    }
    json_t *cases, *outreach, *contacts;
    int rc = store_stats_input(s, &cases, &outreach, &contacts);
    http__reader_release(&r->env->readers, s);
    if (rc) {
        json_decref(cases);
        json_decref(outreach);
        json_decref(contacts);
        http_error(r, 500, "could not read the cases");
        return;
    }
    struct stats_input in = {.cases = cases,
                             .outreach = outreach,
                             .contacts = contacts,
                             .from = from == FW_TIME_NONE ? INT64_MIN : from,
                             .to = to == FW_TIME_NONE ? INT64_MAX : to,
                             .prevention_window = 7 * FW_DAY};
    json_t *out = view == VIEW_OUTCOMES ? stats_outcomes(&in)
                  : view == VIEW_ME     ? stats_agent(&in, r->who.name)
                                        : stats_leaderboard(&in);
    char *txt = fw_json_dumps(out);
    buf_reset(&r->out);
    buf_puts(&r->out, txt);
    http_reply_json(r, 200, &r->out);
    free(txt);
    json_decref(out);
    json_decref(cases);
    json_decref(outreach);
    json_decref(contacts);
}

static void get_outcomes(struct req *r) { reply_stats(r, VIEW_OUTCOMES); }

static void get_me_stats(struct req *r) { reply_stats(r, VIEW_ME); }

static void get_leaderboard(struct req *r) { reply_stats(r, VIEW_LEADERBOARD); }

const struct route http_stats_routes[] = {
    {.method = "GET", .path = "/v1/stats/outcomes", .roles = ROLES_READ, .handler = get_outcomes},
    {.method = "GET", .path = "/v1/stats/me", .roles = ROLES_READ, .handler = get_me_stats},
    {.method = "GET", .path = "/v1/leaderboard", .roles = ROLES_READ, .handler = get_leaderboard},
    {0},
};
