/*
 * report.c -- the Proactive Outreach Report (seed 001), in its section
 * order: executive summary, known issues, candidates in three priority
 * bands with their drafts, adoption gaps, usage declines, impact
 * projection, actions taken, follow-up tasks.
 *
 * The report is one JSON model built from what a replay decided (its
 * spool) and the state at its end; md and html are renderings of it.
 * Invariant: every rate is measured from past outreach of the same type
 * whose 7-day window has closed, printed with the count it rests on; with
 * none the figure is null and the text says "not enough history".
 */
#include "replay/report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrate/orchestrate.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/json.h"
#include "util/util.h"

#define WINDOW (7 * FW_DAY) /* a response or a ticket counts within this of the outreach */

static const char *const types[] = {"issue_alert", "adoption_help", "check_in", "maintenance",
                                    "success_milestone", "journey_alert", NULL};
static const char *const type_words[] = {"Issue Alert", "Adoption Help", "Check-in",
                                         "Maintenance", "Success Milestone", "Journey Alert"};

static const char *words(const char *type)
{
    for (size_t i = 0; types[i]; i++)
        if (!strcmp(types[i], type))
            return type_words[i];
    return type;
}

/* A signal's outreach type, from its root cause (orch_outreach_type). */
static const char *signal_type(const struct rules *r, const char *id)
{
    return orch_outreach_type(id ? rules_signal(r, id) : NULL);
}

/* A message's outreach type: by its template, else by its first signal. */
static const char *message_type(const struct rules *r, json_t *m)
{
    const char *tp = json_string_value(
        json_object_get(json_object_get(m, "explanation"), "template")) ?: "";
    const char *base = strrchr(tp, '/') ? strrchr(tp, '/') + 1 : tp;
    if (!strncmp(base, "known_issue", 11))
        return "issue_alert";
    if (!strncmp(base, "maintenance", 11))
        return "maintenance";
    return signal_type(r, json_string_value(json_array_get(json_object_get(m, "signals"), 0)));
}

static int64_t tparse(json_t *v)
{
    const char *s = json_string_value(v);
    int64_t t;
    return s && !fw_time_parse(s, strlen(s), &t) ? t : FW_TIME_NONE;
}

/* An RFC 3339 string, or null for FW_TIME_NONE. */
static json_t *time_json(int64_t t)
{
    char s[FW_TIME_MAXLEN];
    if (t == FW_TIME_NONE)
        return json_null();
    fw_time_format(t, s);
    return json_string(s);
}

static int in_range(const struct report_opts *o, int64_t t)
{
    return (o->from == FW_TIME_NONE || t >= o->from) && (o->to == FW_TIME_NONE || t < o->to);
}

static double sev_weight(const char *s)
{
    return !strcmp(s, "CRITICAL") ? 1 : !strcmp(s, "HIGH") ? 0.75 : !strcmp(s, "MEDIUM") ? 0.5
                                                                                         : 0.25;
}

static double num(json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : json_is_string(v) ? atof(json_string_value(v))
                                                                        : 0;
}

/* The measured rates of past outreach of one type: {type, count, responded, no_ticket}. */
static json_t *history(const struct rules *r, json_t *sent, json_t *answers, const char *type,
                       int64_t now)
{
    size_t n = 0, resp = 0, quiet = 0, i, k;
    json_t *m, *a;
    json_array_foreach (sent, i, m) {
        int64_t at = tparse(json_object_get(m, "at"));
        if (strcmp(message_type(r, m), type) || at + WINDOW > now)
            continue; /* another type, or its window is still open */
        const char *c = json_string_value(json_object_get(m, "customer"));
        int replied = 0, ticket = 0;
        json_array_foreach (answers, k, a) {
            int64_t t = json_integer_value(json_object_get(a, "at"));
            if (strcmp(json_string_value(json_object_get(a, "customer")), c) || t <= at ||
                t > at + WINDOW)
                continue;
            if (!strcmp(json_string_value(json_object_get(a, "type")), "message.replied"))
                replied = 1;
            else
                ticket = 1;
        }
        n++, resp += replied, quiet += !ticket;
    }
    return json_pack("{s:I, s:o, s:o}", "history", (json_int_t)n, "response_rate",
                     n ? json_real((double)resp / (double)n) : json_null(),
                     "ticket_prevention_rate", n ? json_real((double)quiet / (double)n)
                                                 : json_null());
}

/* The model: everything the report says, as JSON. */
static json_t *build(const struct report_opts *o, int64_t asof, FILE *lines, struct engine *e,
                     const struct orch *orch, json_t *answers, struct expr *seg)
{
    const struct rules *r = engine_rules(e);
    int64_t now = asof != FW_TIME_NONE ? asof : engine_now(e);
    json_t *msgs = json_array(), *sent = json_array(), *tasks = json_object();
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    /* Which customers the report is about. */
    json_t *in_seg = json_object();
    for (size_t i = 0, n = engine_customer_count(e); i < n; i++) {
        const char *k = engine_customer_key(e, i);
        if (!seg || engine_test(e, k, seg, NULL))
            json_object_set_new(in_seg, k, json_true());
    }
    while ((len = getline(&line, &cap, lines)) > 0) {
        json_t *j = json_loadb(line, (size_t)len, 0, NULL);
        const char *kind = json_string_value(json_object_get(j, "kind")) ?: "";
        const char *c = json_string_value(json_object_get(j, "customer"));
        if (!c || !json_object_get(in_seg, c)) {
            json_decref(j);
            continue;
        }
        if (!strcmp(kind, "message") &&
            !strcmp(json_string_value(json_object_get(j, "audience")) ?: "", "customer")) {
            json_array_append(msgs, j);
            size_t n = json_array_size(sent);
            json_t *last = n ? json_array_get(sent, n - 1) : NULL;
            if (strcmp(json_string_value(json_object_get(j, "status")), "suppressed") &&
                !(last && json_equal(json_object_get(last, "at"), json_object_get(j, "at")) &&
                  !strcmp(json_string_value(json_object_get(last, "customer")), c)))
                json_array_append(sent, j); /* one decision on several channels: one outreach */
        } else if (!strcmp(kind, "task")) {
            json_object_set(tasks, json_string_value(json_object_get(j, "task")), j);
        }
        json_decref(j);
    }
    free(line);
    /* No date is honest where there is none: "1970-01-01" would be a date nothing happened on. */
    json_t *model = json_pack("{s:o, s:{s:o, s:o}, s:s, s:I}", "report_date",
                              time_json(asof), "period", "from", time_json(o->from), "to",
                              time_json(o->to), "segment",
                              o->segment ? o->segment : "all customers", "customers",
                              (json_int_t)json_object_size(in_seg));
    /* Known issues with their affected counts (within the segment). */
    json_t *known = orch_known_json(orch), *kout = json_array(), *k;
    size_t i;
    json_array_foreach (known, i, k) {
        size_t told = 0, aff = 0, j;
        json_t *c;
        json_array_foreach (json_object_get(k, "affected_customers"), j, c)
            aff += json_object_get(in_seg, json_string_value(c)) != NULL;
        json_array_foreach (json_object_get(k, "told_customers"), j, c)
            told += json_object_get(in_seg, json_string_value(c)) != NULL;
        json_array_append_new(
            kout, json_pack("{s:O, s:O, s:O, s:O, s:O, s:I, s:I}", "id", json_object_get(k, "id"),
                            "kind", json_object_get(k, "kind"), "title",
                            json_object_get(k, "title"), "severity",
                            json_object_get(k, "severity"), "status", json_object_get(k, "status"),
                            "affected", (json_int_t)aff, "told", (json_int_t)told));
    }
    json_decref(known);
    /* Candidates: each firing signal of a customer in the segment, scored by seed 001's matrix. */
    json_t *cands = json_array(), *gaps = json_object(), *declines = json_array();
    double maxval = 0;
    const char *key;
    json_t *yes;
    json_object_foreach (in_seg, key, yes) {
        json_t *cv = engine_customer_object(e, key);
        double v = num(json_object_get(json_object_get(json_object_get(cv, "state"),
                                                       "customer.value"), "value"));
        if (v > maxval)
            maxval = v;
        json_decref(cv);
    }
    json_object_foreach (in_seg, key, yes) {
        json_t *cv = engine_customer_object(e, key), *a;
        double value = num(json_object_get(
            json_object_get(json_object_get(cv, "state"), "customer.value"), "value"));
        json_t *hs = json_object_get(json_object_get(cv, "health"), "score");
        double health = json_is_number(hs) ? json_number_value(hs) : 100;
        json_array_foreach (json_object_get(cv, "active_detections"), i, a) {
            const char *sig = json_string_value(json_object_get(a, "signal"));
            const char *sev = json_string_value(json_object_get(a, "severity"));
            int64_t fired = tparse(json_object_get(a, "fired_at"));
            double score = 30 * (maxval > 0 ? value / maxval : 0) + 25 * sev_weight(sev) +
                           25 * (100 - health) / 100 + 20 * (now - fired <= WINDOW ? 1 : 0.5);
            score = round(score * 10) / 10;
            json_t *draft = NULL, *m;
            size_t j;
            json_array_foreach (msgs, j, m) {
                json_t *s;
                size_t q;
                if (strcmp(json_string_value(json_object_get(m, "customer")), key))
                    continue;
                json_array_foreach (json_object_get(m, "signals"), q, s)
                    if (!strcmp(json_string_value(s), sig))
                        draft = m;
            }
            json_array_append_new(
                cands,
                json_pack("{s:s, s:s, s:s, s:O, s:s, s:f, s:f, s:f, s:i, s:O, s:O, s:O}",
                          "customer", key, "type", signal_type(r, sig), "signal", sig, "reason",
                          json_object_get(a, "name"), "severity", sev, "value", value, "health",
                          health, "priority_score", score, "band",
                          score >= 60 ? 1 : score >= 40 ? 2 : 3, "draft_status",
                          draft ? json_object_get(draft, "status") : json_null(), "draft_subject",
                          draft ? json_object_get(draft, "subject") : json_null(), "draft",
                          draft ? json_object_get(draft, "body") : json_null()));
        }
        /* Adoption gaps: purchased features never used, with days since signup. */
        json_t *eng = json_object_get(cv, "engagement"), *f;
        int64_t signup = tparse(json_object_get(eng, "signup"));
        const char *fname;
        json_object_foreach (json_object_get(eng, "features"), fname, f) {
            if (!json_is_true(json_object_get(f, "purchased")) ||
                !json_is_null(json_object_get(f, "last_used")))
                continue;
            json_t *g = json_object_get(gaps, fname);
            if (!g) {
                g = json_pack("{s:s, s:i, s:i, s:i}", "feature", fname, "customers", 0,
                              "days_sum", 0, "with_signup", 0);
                json_object_set_new(gaps, fname, g);
            }
            json_object_set_new(g, "customers",
                                json_integer(json_integer_value(json_object_get(g, "customers")) + 1));
            if (signup != FW_TIME_NONE) {
                json_object_set_new(g, "days_sum", json_integer(json_integer_value(json_object_get(
                                                       g, "days_sum")) + (now - signup) / FW_DAY));
                json_object_set_new(
                    g, "with_signup",
                    json_integer(json_integer_value(json_object_get(g, "with_signup")) + 1));
            }
        }
        /* Usage declines of 30% or more (7 days against the 28 before). */
        const char *mname;
        json_t *mv;
        json_object_foreach (json_object_get(eng, "metrics"), mname, mv) {
            json_t *d = json_object_get(mv, "decline_7_28");
            if (!json_is_number(d) || json_number_value(d) < 30)
                continue;
            json_array_append_new(
                declines,
                json_pack("{s:s, s:s, s:f, s:f, s:f}", "customer", key, "metric", mname,
                          "previous_daily", num(json_object_get(mv, "previous_28_days")) / 28,
                          "current_daily", num(json_object_get(mv, "last_7_days")) / 7, "decline",
                          json_number_value(d)));
        }
        json_decref(cv);
    }
    json_t *gout = json_array(), *g;
    json_object_foreach (gaps, key, g) {
        json_int_t ws = json_integer_value(json_object_get(g, "with_signup"));
        double avg = ws ? (double)json_integer_value(json_object_get(g, "days_sum")) / (double)ws
                        : -1;
        json_array_append_new(gout, json_pack("{s:s, s:O, s:o, s:b}", "feature", key, "customers",
                                              json_object_get(g, "customers"),
                                              "avg_days_since_signup",
                                              avg < 0 ? json_null() : json_real(round(avg * 10) / 10),
                                              "outreach_recommended", avg >= 14));
    }
    json_decref(gaps);
    /* Impact projection from measured history, and the summary. */
    json_t *impact = json_array();
    size_t count[ARRAY_SIZE(types)] = {0};
    json_t *c;
    json_array_foreach (cands, i, c)
        for (size_t q = 0; types[q]; q++)
            count[q] += !strcmp(types[q], json_string_value(json_object_get(c, "type")));
    size_t issue_told = 0;
    json_array_foreach (kout, i, k)
        if (!strcmp(json_string_value(json_object_get(k, "kind")), "issue"))
            issue_told += (size_t)json_integer_value(json_object_get(k, "told"));
    count[0] += issue_told;
    double prevented = 0;
    int any_rate = 0;
    for (size_t q = 0; q < 3; q++) {
        json_t *h = history(r, sent, answers, types[q], now);
        json_t *pr = json_object_get(h, "ticket_prevention_rate");
        json_object_set_new(h, "type", json_string(types[q]));
        json_object_set_new(h, "count", json_integer((json_int_t)count[q]));
        json_object_set_new(h, "tickets_prevented",
                            json_is_number(pr) ? json_real(round(json_number_value(pr) *
                                                                 (double)count[q] * 10) / 10)
                                               : json_null());
        if (json_is_number(pr)) {
            prevented += json_number_value(pr) * (double)count[q];
            any_rate = 1;
        }
        json_array_append_new(impact, h);
    }
    json_t *actions = json_array(), *m;
    json_array_foreach (msgs, i, m) {
        if (!in_range(o, tparse(json_object_get(m, "at"))))
            continue;
        json_array_append_new(actions, json_pack("{s:O, s:s, s:O, s:O, s:O, s:O}", "customer",
                                                 json_object_get(m, "customer"), "type",
                                                 message_type(r, m), "channel",
                                                 json_object_get(m, "channel"), "status",
                                                 json_object_get(m, "status"), "at",
                                                 json_object_get(m, "at"), "send_at",
                                                 json_object_get(m, "send_at")));
    }
    json_t *tout = json_array(), *tk;
    json_object_foreach (tasks, key, tk) {
        if (!in_range(o, tparse(json_object_get(tk, "due"))))
            continue;
        json_array_append_new(
            tout, json_pack("{s:s, s:O, s:O, s:O, s:O, s:o}", "task", key, "customer",
                            json_object_get(tk, "customer"), "outreach",
                            json_object_get(tk, "outreach"), "due", json_object_get(tk, "due"),
                            "state", json_object_get(tk, "state"), "owner",
                            json_is_string(json_object_get(tk, "assignee"))
                                ? json_incref(json_object_get(tk, "assignee"))
                            : json_is_string(json_object_get(tk, "team"))
                                ? json_pack("s+", "team ",
                                            json_string_value(json_object_get(tk, "team")))
                                : json_string("unassigned")));
    }
    json_object_set_new(model, "summary",
                        json_pack("{s:I, s:I, s:I, s:I, s:o}", "candidates",
                                  (json_int_t)(json_array_size(cands) + issue_told),
                                  "issue_alerts", (json_int_t)count[0],
                                  "adoption_opportunities", (json_int_t)count[1],
                                  "check_ins_needed", (json_int_t)count[2],
                                  "expected_ticket_prevention",
                                  any_rate ? json_real(round(prevented * 10) / 10) : json_null()));
    json_object_set_new(model, "known_issues", kout);
    json_object_set_new(model, "candidates", cands);
    json_object_set_new(model, "adoption_gaps", gout);
    json_object_set_new(model, "usage_declines", declines);
    json_object_set_new(model, "impact_projection", impact);
    json_object_set_new(model, "actions_taken", actions);
    json_object_set_new(model, "followup_tasks", tout);
    json_decref(msgs);
    json_decref(sent);
    json_decref(tasks);
    json_decref(in_seg);
    return model;
}

/* ---- rendering ---- */

static const char *S(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : "-";
}

static void pct(struct buf *b, json_t *rate, json_t *h)
{
    if (json_is_number(rate))
        buf_printf(b, "%.0f%% (of %lld past)", json_number_value(rate) * 100,
                   (long long)json_integer_value(h));
    else
        buf_printf(b, "not enough history (%lld past)", (long long)json_integer_value(h));
}

/* A text cell: '|' and line breaks would break a markdown table; HTML escapes its own. */
static void cell(struct buf *b, const char *s, int html)
{
    for (; *s; s++) {
        if (html && (*s == '<' || *s == '>' || *s == '&' || *s == '"'))
            buf_puts(b, *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;" : "&quot;");
        else if (!html && *s == '|')
            buf_puts(b, "\\|");
        else if (!html && *s == '\n')
            buf_putc(b, ' ');
        else
            buf_putc(b, *s);
    }
}

struct table {
    struct buf *b;
    int html;
};

static void t_head(struct table *t, const char *const *cols)
{
    if (t->html) {
        buf_puts(t->b, "<table><tr>");
        for (size_t i = 0; cols[i]; i++)
            buf_printf(t->b, "<th>%s</th>", cols[i]);
        buf_puts(t->b, "</tr>\n");
        return;
    }
    buf_puts(t->b, "|");
    for (size_t i = 0; cols[i]; i++)
        buf_printf(t->b, " %s |", cols[i]);
    buf_puts(t->b, "\n|");
    for (size_t i = 0; cols[i]; i++)
        buf_puts(t->b, "---|");
    buf_puts(t->b, "\n");
}

/* One row; each cell is printf'd text. */
static void t_row(struct table *t, size_t n, const char *const *cells)
{
    buf_puts(t->b, t->html ? "<tr>" : "|");
    for (size_t i = 0; i < n; i++) {
        buf_puts(t->b, t->html ? "<td>" : " ");
        cell(t->b, cells[i], t->html);
        buf_puts(t->b, t->html ? "</td>" : " |");
    }
    buf_puts(t->b, t->html ? "</tr>\n" : "\n");
}

static void t_end(struct table *t)
{
    buf_puts(t->b, t->html ? "</table>\n" : "\n");
}

static void heading(struct buf *b, int html, int level, const char *text)
{
    if (html)
        buf_printf(b, "<h%d>%s</h%d>\n", level, text, level);
    else
        buf_printf(b, "%.*s %s\n\n", level, "######", text);
}

/* A horizontal bar chart as inline SVG (no external requests). */
static void bars(struct buf *b, const char *title, size_t n, const char *const *labels,
                 const double *v)
{
    double max = 0;
    for (size_t i = 0; i < n; i++)
        max = v[i] > max ? v[i] : max;
    if (!n || max <= 0)
        return;
    buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"420\" height=\"%zu\" "
                  "role=\"img\" aria-label=\"", 20 * n + 24);
    cell(b, title, 1);
    buf_puts(b, "\">");
    for (size_t i = 0; i < n; i++) {
        buf_printf(b, "<text x=\"0\" y=\"%zu\" font-size=\"12\">", 20 * i + 34);
        cell(b, labels[i], 1);
        buf_printf(b, "</text><rect x=\"160\" y=\"%zu\" width=\"%.0f\" height=\"14\" "
                      "fill=\"#4a7bd0\"/><text x=\"%.0f\" y=\"%zu\" font-size=\"12\">%.1f</text>",
                   20 * i + 22, 200 * v[i] / max, 165 + 200 * v[i] / max, 20 * i + 34, v[i]);
    }
    buf_puts(b, "</svg>\n");
}

static void render(json_t *m, int html, struct buf *b)
{
    char x[6][128];
    const char *row[8];
    struct table t = {.b = b, .html = html};
    size_t i;
    json_t *v;
    if (html)
        buf_puts(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Proactive "
                    "Outreach Report</title><style>body{font-family:sans-serif;max-width:60em;"
                    "margin:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
                    "padding:2px 6px}pre{white-space:pre-wrap;background:#f6f6f6}</style></head>"
                    "<body>\n");
    heading(b, html, 2, "Proactive Outreach Report");
    int dated = json_is_string(json_object_get(m, "report_date"));
    json_t *per = json_object_get(m, "period");
    char period[2 * FW_TIME_MAXLEN + 64];
    int has_from = json_is_string(json_object_get(per, "from"));
    int has_to = json_is_string(json_object_get(per, "to"));
    if (has_from && has_to)
        snprintf(period, sizeof period, "%s to %s", S(per, "from"), S(per, "to"));
    else if (has_from || has_to)
        snprintf(period, sizeof period, "%s %s", has_from ? "from" : "before",
                 has_from ? S(per, "from") : S(per, "to"));
    else
        snprintf(period, sizeof period, "all history (no --from or --to)");
    buf_printf(b, html ? "<p><b>Report Date</b>: %s<br>\n<b>Period</b>: %s<br>\n<b>Segment</b>: "
                       : "**Report Date**: %s\n**Period**: %s\n**Segment**: ",
               dated ? S(m, "report_date") : "no events yet (the virtual clock has not moved)",
               period);
    cell(b, S(m, "segment"), html);
    buf_printf(b, html ? " (%lld customers)<br>\n<b>Outreach Types</b>: Issue Alert, Adoption "
                         "Help, Check-in, Maintenance, Success Milestone</p>\n"
                       : " (%lld customers)\n**Outreach Types**: Issue Alert, Adoption Help, "
                         "Check-in, Maintenance, Success Milestone\n\n",
               (long long)json_integer_value(json_object_get(m, "customers")));
    if (!dated)
        buf_puts(b, html ? "<p>No events yet: there is no history, so every section is empty.</p>\n"
                         : "No events yet: there is no history, so every section is empty.\n\n");
    json_t *s = json_object_get(m, "summary");
    heading(b, html, 3, "Executive Summary");
    t_head(&t, (const char *const[]){"Metric", "Value", NULL});
    static const char *const sk[] = {"candidates", "issue_alerts", "adoption_opportunities",
                                     "check_ins_needed"};
    static const char *const sw[] = {"Candidates Identified", "Issue Alerts",
                                     "Adoption Opportunities", "Check-ins Needed"};
    for (size_t q = 0; q < 4; q++) {
        snprintf(x[0], sizeof x[0], "%lld", (long long)json_integer_value(json_object_get(s, sk[q])));
        t_row(&t, 2, (const char *const[]){sw[q], x[0]});
    }
    json_t *etp = json_object_get(s, "expected_ticket_prevention");
    if (json_is_number(etp))
        snprintf(x[0], sizeof x[0], "%.1f", json_number_value(etp));
    else
        snprintf(x[0], sizeof x[0], "not enough history");
    t_row(&t, 2, (const char *const[]){"Expected Ticket Prevention", x[0]});
    t_end(&t);

    heading(b, html, 3, "Known Issues Affecting Customers");
    t_head(&t, (const char *const[]){"Issue", "Kind", "Severity", "Affected Customers",
                                     "Told", "Status", NULL});
    json_array_foreach (json_object_get(m, "known_issues"), i, v) {
        snprintf(x[0], sizeof x[0], "%s: %s", S(v, "id"), S(v, "title"));
        snprintf(x[1], sizeof x[1], "%lld", (long long)json_integer_value(json_object_get(v, "affected")));
        snprintf(x[2], sizeof x[2], "%lld", (long long)json_integer_value(json_object_get(v, "told")));
        t_row(&t, 6, (const char *const[]){x[0], S(v, "kind"), S(v, "severity"), x[1], x[2],
                                           S(v, "status")});
    }
    t_end(&t);

    heading(b, html, 3, "Outreach Candidates");
    static const char *const bandw[] = {"Priority 1: Critical Outreach",
                                        "Priority 2: High Value Outreach",
                                        "Priority 3: Standard Outreach"};
    for (int band = 1; band <= 3; band++) {
        heading(b, html, 4, bandw[band - 1]);
        t_head(&t, (const char *const[]){"Customer", "Type", "Reason", "Value", "Score",
                                         "Draft Ready", NULL});
        json_array_foreach (json_object_get(m, "candidates"), i, v) {
            if (json_integer_value(json_object_get(v, "band")) != band)
                continue;
            snprintf(x[0], sizeof x[0], "$%.0f", json_number_value(json_object_get(v, "value")));
            snprintf(x[1], sizeof x[1], "%.1f",
                     json_number_value(json_object_get(v, "priority_score")));
            snprintf(x[2], sizeof x[2], "%s (%s)", S(v, "reason"), S(v, "signal"));
            const char *st = S(v, "draft_status");
            snprintf(x[3], sizeof x[3], "%s", !strcmp(st, "-") ? "No" : !strcmp(st, "suppressed")
                                                                        ? "No (suppressed)"
                                                                        : "Yes");
            t_row(&t, 6, (const char *const[]){S(v, "customer"), words(S(v, "type")), x[2], x[0],
                                               x[1], x[3]});
        }
        t_end(&t);
        json_array_foreach (json_object_get(m, "candidates"), i, v) {
            if (json_integer_value(json_object_get(v, "band")) != band ||
                !json_is_string(json_object_get(v, "draft")))
                continue;
            snprintf(x[0], sizeof x[0], "Draft: %s", S(v, "customer"));
            heading(b, html, 5, x[0]);
            buf_printf(b, html ? "<p><b>Type</b>: %s<br><b>Trigger</b>: " : "**Type**: %s\n"
                                                                           "**Trigger**: ",
                       words(S(v, "type")));
            cell(b, S(v, "reason"), html);
            buf_printf(b, html ? "<br><b>Context</b>: health %.1f, severity %s</p>\n<pre>"
                               : "\n**Context**: health %.1f, severity %s\n\n---\n",
                       json_number_value(json_object_get(v, "health")), S(v, "severity"));
            if (html)
                cell(b, S(v, "draft"), 1);
            else
                buf_puts(b, S(v, "draft"));
            buf_puts(b, html ? "</pre>\n" : "\n---\n\n");
        }
    }

    heading(b, html, 3, "Adoption Gaps Identified");
    t_head(&t, (const char *const[]){"Feature", "Customers Not Using", "Avg Days Since Signup",
                                     "Outreach Recommended", NULL});
    json_t *gaps = json_object_get(m, "adoption_gaps");
    const char *gl[32];
    double gv[32];
    size_t ng = 0;
    json_array_foreach (gaps, i, v) {
        snprintf(x[0], sizeof x[0], "%lld", (long long)json_integer_value(json_object_get(v, "customers")));
        json_t *a = json_object_get(v, "avg_days_since_signup");
        if (json_is_number(a))
            snprintf(x[1], sizeof x[1], "%.1f days", json_number_value(a));
        else
            snprintf(x[1], sizeof x[1], "no signup known");
        t_row(&t, 4, (const char *const[]){S(v, "feature"), x[0], x[1],
                                           json_is_true(json_object_get(v, "outreach_recommended"))
                                               ? "Yes" : "No"});
        if (ng < 32) {
            gl[ng] = S(v, "feature");
            gv[ng++] = (double)json_integer_value(json_object_get(v, "customers"));
        }
    }
    t_end(&t);
    if (html)
        bars(b, "Customers not using each purchased feature", ng, gl, gv);

    heading(b, html, 3, "Usage Decline Alerts");
    t_head(&t, (const char *const[]){"Customer", "Metric", "Previous (daily)", "Current (daily)",
                                     "Decline", NULL});
    const char *dl[32];
    double dv[32];
    size_t nd = 0;
    json_array_foreach (json_object_get(m, "usage_declines"), i, v) {
        snprintf(x[0], sizeof x[0], "%.1f", json_number_value(json_object_get(v, "previous_daily")));
        snprintf(x[1], sizeof x[1], "%.1f", json_number_value(json_object_get(v, "current_daily")));
        snprintf(x[2], sizeof x[2], "%.1f%%", json_number_value(json_object_get(v, "decline")));
        t_row(&t, 5, (const char *const[]){S(v, "customer"), S(v, "metric"), x[0], x[1], x[2]});
        if (nd < 32) {
            dl[nd] = S(v, "customer");
            dv[nd++] = json_number_value(json_object_get(v, "decline"));
        }
    }
    t_end(&t);
    if (html)
        bars(b, "Usage decline, percent", nd, dl, dv);

    heading(b, html, 3, "Impact Projection");
    t_head(&t, (const char *const[]){"Outreach Type", "Count", "Expected Response",
                                     "Tickets Prevented", NULL});
    json_array_foreach (json_object_get(m, "impact_projection"), i, v) {
        struct buf r1, r2;
        buf_init(&r1, 0);
        buf_init(&r2, 0);
        pct(&r1, json_object_get(v, "response_rate"), json_object_get(v, "history"));
        json_t *tp = json_object_get(v, "tickets_prevented");
        if (json_is_number(tp)) {
            buf_printf(&r2, "%.1f (", json_number_value(tp));
            pct(&r2, json_object_get(v, "ticket_prevention_rate"), json_object_get(v, "history"));
            buf_puts(&r2, " without a ticket in 7 days)");
        } else {
            pct(&r2, json_object_get(v, "ticket_prevention_rate"), json_object_get(v, "history"));
        }
        snprintf(x[0], sizeof x[0], "%lld", (long long)json_integer_value(json_object_get(v, "count")));
        t_row(&t, 4, (const char *const[]){words(S(v, "type")), x[0], r1.data, r2.data});
        buf_cleanup(&r1);
        buf_cleanup(&r2);
    }
    t_end(&t);

    heading(b, html, 3, "Actions Taken");
    t_head(&t, (const char *const[]){"Customer", "Type", "Channel", "Status", "Decided At",
                                     "Send At", NULL});
    json_array_foreach (json_object_get(m, "actions_taken"), i, v)
        t_row(&t, 6, (const char *const[]){S(v, "customer"), words(S(v, "type")), S(v, "channel"),
                                           S(v, "status"), S(v, "at"), S(v, "send_at")});
    t_end(&t);

    heading(b, html, 3, "Follow-up Tasks Created");
    t_head(&t, (const char *const[]){"Customer", "Task", "Due Date", "Owner", "State", NULL});
    json_array_foreach (json_object_get(m, "followup_tasks"), i, v) {
        snprintf(x[0], sizeof x[0], "follow up (%s, %s)", S(v, "outreach"), S(v, "task"));
        t_row(&t, 5, (const char *const[]){S(v, "customer"), x[0], S(v, "due"), S(v, "owner"),
                                           S(v, "state")});
    }
    t_end(&t);
    (void)row;
    if (html)
        buf_puts(b, "</body></html>\n");
}

int report_outreach(const struct report_opts *o, int64_t asof, FILE *lines, struct engine *e,
                    const struct orch *orch, json_t *answers, FILE *out, FILE *err)
{
    struct expr *seg = NULL;
    if (o->segment) {
        struct expr_error xe;
        if (engine_compile(e, o->segment, strlen(o->segment), &seg, &xe)) {
            fprintf(err, "report: --segment:%u:%u: %s\n", xe.line, xe.col, xe.msg);
            return FW_EPARSE;
        }
    }
    json_t *model = build(o, asof, lines, e, orch, answers, seg);
    expr_free(seg);
    struct buf b;
    buf_init(&b, 0);
    const char *fmt = o->format ? o->format : "md";
    if (!strcmp(fmt, "json")) {
        char *txt = json_dumps(model, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
        buf_puts(&b, txt);
        buf_putc(&b, '\n');
        free(txt);
    } else {
        render(model, !strcmp(fmt, "html"), &b);
    }
    fwrite(b.data, 1, b.len, out);
    buf_cleanup(&b);
    json_decref(model);
    return 0;
}
