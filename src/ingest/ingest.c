/*
 * ingest.c -- CloudEvents JSON bodies in, validated events out.
 *
 * The body's shape is detected, not declared: a first non-space '[' is an
 * array; otherwise the first JSON value is parsed and, if more content
 * follows it, the body is NDJSON and every non-blank line is parsed on its
 * own.  Every event is validated even after one fails, so the caller can
 * report all of them, but the batch is all or nothing: any error leaves it
 * empty.  Limits (body size, event count, string size, data depth) turn
 * hostile input into an error message, never into unbounded work.
 *
 * Ownership: jansson's reference counts.  Each valid event holds one
 * reference to its object; take_event() consumes the parser's reference
 * whatever the outcome, so no path leaks.
 *
 * Cost (bench/json_choice.c corpus, 10,000-event NDJSON bodies): about
 * 78k instructions per event, 71k of them in jansson's parser; freeing a
 * whole batch's objects at once is a large share of the wall time.
 */
#include "ingest/ingest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/fwtime.h"
#include "util/json.h"
#include "util/util.h"

#define QUOTE_MAX 48 /* bytes of a bad value quoted back in a message */
#define PARSE_FLAGS JSON_REJECT_DUPLICATES

const struct ingest_limits ingest_default_limits = {
    .max_body = 4u << 20,
    .max_events = 10000,
    .max_string = 8u << 10,
    .max_depth = 16,
    .max_members = 1000,
    .max_data = 64u << 10,
    .time_min = INGEST_TIME_MIN,
    .time_max = INGEST_TIME_CEILING - 1,
    .time_max_why = "the latest time forewarn accepts",
};

const struct ingest_limits ingest_own_limits = {
    .max_body = 4u << 20,
    .max_events = 10000,
    .max_string = 8u << 10,
    .max_depth = 16,
    .max_members = 1000,
    .max_data = 64u << 10,
    .time_min = FW_TIME_NONE,
    .time_max = FW_TIME_NONE,
};

/* Where an event sits in the body, for ingest_error.where. */
enum pos_kind { POS_BODY, POS_INDEX, POS_LINE };

/* Accumulates a batch's events and errors while a body is walked. */
struct collect {
    struct ingest_batch *b;
    const struct ingest_limits *lim;
    const struct ingest_globals *globals;
    size_t errcap;  /* allocated entries in b->errors */
    size_t dropped; /* errors beyond INGEST_MAX_ERRORS */
};

static void set_pos(struct ingest_error *err, enum pos_kind kind, size_t index)
{
    err->index = kind == POS_BODY ? 0 : index;
    switch (kind) {
    case POS_BODY: snprintf(err->where, sizeof err->where, "body"); break;
    case POS_INDEX: snprintf(err->where, sizeof err->where, "index %zu", index); break;
    case POS_LINE: snprintf(err->where, sizeof err->where, "line %zu", index); break;
    }
}

static void set_error(struct ingest_error *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(struct ingest_error *err, const char *field, const char *fmt, ...)
{
    if (!err)
        return;
    size_t n = strlen(field);
    if (n >= sizeof err->field) {
        /* Keep the head of a long path and mark the cut. */
        n = sizeof err->field - 4;
        while (n > 0 && ((unsigned char)field[n] & 0xC0) == 0x80)
            n--;
        memcpy(err->field, field, n);
        memcpy(err->field + n, "...", 4);
    } else {
        memcpy(err->field, field, n + 1);
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

static void add_error(struct collect *c, const struct ingest_error *err)
{
    struct ingest_batch *b = c->b;
    if (b->nerrors >= INGEST_MAX_ERRORS) {
        c->dropped++;
        return;
    }
    if (b->nerrors == c->errcap)
        b->errors = xgrow(b->errors, &c->errcap, b->nerrors + 1, sizeof *b->errors);
    b->errors[b->nerrors++] = *err;
}

/* A body-level error: the only one in the batch (limits) or one among many. */
static void add_body_error(struct collect *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_body_error(struct collect *c, const char *fmt, ...)
{
    struct ingest_error err;
    memset(&err, 0, sizeof err);
    set_pos(&err, POS_BODY, 0);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    add_error(c, &err);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "value";
}

/*
 * Quote a value for a message: at most QUOTE_MAX bytes, cut on a UTF-8
 * boundary, with quotes, backslashes and control bytes escaped so the
 * message stays one printable line.
 */
static const char *quote(const char *s, size_t n, char out[QUOTE_MAX * 4 + 8])
{
    size_t o = 0, take = n;
    if (take > QUOTE_MAX) {
        take = QUOTE_MAX;
        while (take > 0 && ((unsigned char)s[take] & 0xC0) == 0x80)
            take--;
    }
    out[o++] = '"';
    for (size_t i = 0; i < take; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(out + o, 5, "\\x%02x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    if (take < n) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* ---- validation of one event ---- */

/*
 * Where the limit walk is: one frame per level on the C stack, linked
 * upwards.  The path text ("data.items[3].name") is only built on error,
 * so a valid event costs no formatting.
 */
struct frame {
    const struct frame *up; /* NULL at the event's top level */
    const char *key;        /* member name, or NULL for an array element */
    size_t index;           /* array index when key is NULL */
};

static void frame_path(const struct frame *f, char *out, size_t cap, size_t *len)
{
    if (!f)
        return;
    frame_path(f->up, out, cap, len);
    int k;
    if (f->key)
        k = snprintf(out + *len, cap - *len, "%s%s", f->up ? "." : "", f->key);
    else
        k = snprintf(out + *len, cap - *len, "[%zu]", f->index);
    if (k > 0)
        *len = *len + (size_t)k < cap ? *len + (size_t)k : cap - 1;
}

static void limit_error(const struct frame *f, struct ingest_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void limit_error(const struct frame *f, struct ingest_error *err, const char *fmt, ...)
{
    char path[256] = "", msg[sizeof err->msg];
    size_t len = 0;
    if (!err)
        return;
    frame_path(f, path, sizeof path, &len);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    set_error(err, path, "%s", msg);
}

static int string_too_long(const struct ingest_limits *lim, size_t n, const struct frame *f,
                           struct ingest_error *err)
{
    if (n <= lim->max_string)
        return 0;
    limit_error(f, err, "string of %zu bytes exceeds the %zu-byte limit", n, lim->max_string);
    return FW_EPARSE;
}

/*
 * Check the sizes of strings and keys, the nesting depth and the number of
 * members under v (at frame f, depth given; *members counts the event's).
 * The member limit keeps the cost of an event linear and small: an event is
 * a journey step, not a data dump.
 */
static int check_value(const json_t *v, size_t depth, const struct ingest_limits *lim,
                       const struct frame *f, struct ingest_error *err, size_t *members,
                       size_t *bound)
{
    if (json_is_string(v)) {
        *bound += 6 * json_string_length(v) + 2; /* every byte as \u00XX at worst */
        return string_too_long(lim, json_string_length(v), f, err);
    }
    if (!json_is_object(v) && !json_is_array(v)) {
        *bound += 32; /* a number, true, false or null: 24 bytes at most ("-2.2250738585072014e-308") */
        return 0;
    }
    *bound += 2;
    if (depth > lim->max_depth) {
        limit_error(f, err, "nesting depth exceeds the limit of %zu levels", lim->max_depth);
        return FW_EPARSE;
    }
    int rc = 0;
    *members += json_is_object(v) ? json_object_size(v) : json_array_size(v);
    if (lim->max_members && *members > lim->max_members) {
        limit_error(f, err, "more than %zu members (object keys and array items) in one event",
                    lim->max_members);
        return FW_EPARSE;
    }
    if (json_is_object(v)) {
        const char *k;
        const json_t *child;
        json_object_foreach((json_t *)v, k, child) {
            struct frame sub = {f, k, 0};
            size_t klen = strlen(k);
            *bound += 6 * klen + 4; /* the key, its quotes, ':' and ',' */
            if ((rc = string_too_long(lim, klen, &sub, err)) ||
                (rc = check_value(child, depth + 1, lim, &sub, err, members, bound)))
                break;
        }
    } else {
        size_t i;
        const json_t *child;
        json_array_foreach(v, i, child) {
            struct frame sub = {f, NULL, i};
            *bound += 1; /* ',' */
            if ((rc = check_value(child, depth + 1, lim, &sub, err, members, bound)))
                break;
        }
    }
    return rc;
}

/* The attributes validate_attrs reads, found in one pass over the object's members. */
enum attr {
    A_SPECVERSION,
    A_ID,
    A_TYPE,
    A_SOURCE,
    A_TIME,
    A_SUBJECT,
    A_DATACONTENTTYPE,
    A_DATASCHEMA,
    A_DATA,
    A_KNOWN,               /* how many: the attributes above */
    A_EXTENSION = A_KNOWN, /* any other name */
    A_DATA_BASE64,         /* refused: binary data */
};

/* Which attribute a member name is; A_EXTENSION for any other name. */
static enum attr attr_of(const char *k)
{
    switch (k[0]) {
    case 'd':
        if (!strcmp(k, "data"))
            return A_DATA;
        if (!strcmp(k, "datacontenttype"))
            return A_DATACONTENTTYPE;
        if (!strcmp(k, "dataschema"))
            return A_DATASCHEMA;
        if (!strcmp(k, "data_base64"))
            return A_DATA_BASE64;
        break;
    case 'i':
        if (!strcmp(k, "id"))
            return A_ID;
        break;
    case 's':
        if (!strcmp(k, "specversion"))
            return A_SPECVERSION;
        if (!strcmp(k, "source"))
            return A_SOURCE;
        if (!strcmp(k, "subject"))
            return A_SUBJECT;
        break;
    case 't':
        if (!strcmp(k, "type"))
            return A_TYPE;
        if (!strcmp(k, "time"))
            return A_TIME;
        break;
    }
    return A_EXTENSION;
}

/* A required non-empty string attribute (v: its value, NULL when absent); *out borrows from it. */
static int want_string(json_t *v, const char *name, int required, const char **out,
                       struct ingest_error *err)
{
    *out = NULL;
    if (!v) {
        if (!required)
            return 0;
        set_error(err, name, "required attribute is missing");
        return FW_EPARSE;
    }
    if (!json_is_string(v)) {
        set_error(err, name, "must be a string, got %s", type_name(v));
        return FW_EPARSE;
    }
    if (json_string_length(v) == 0) {
        set_error(err, name, "must not be empty");
        return FW_EPARSE;
    }
    *out = json_string_value(v);
    return 0;
}

/* "application/json", any case, optionally with parameters ("; charset=utf-8"). */
static int is_json_media_type(const char *s, size_t n)
{
    static const char mt[] = "application/json";
    size_t m = sizeof mt - 1;
    if (n < m || strncasecmp(s, mt, m) != 0)
        return 0;
    while (m < n && (s[m] == ' ' || s[m] == '\t'))
        m++;
    return m == n || s[m] == ';';
}

/*
 * Validate every attribute; fills ev's borrowed fields.  No reference is
 * taken here.  One pass over the members finds the known attributes and the
 * first bad extension; the checks then run in a fixed order, so an event
 * with several faults always reports the same one.
 */
static int validate_attrs(json_t *obj, const struct ingest_limits *lim,
                          const struct ingest_globals *globals, struct event *ev,
                          struct ingest_error *err)
{
    char q[QUOTE_MAX * 4 + 8];
    json_t *at[A_KNOWN] = {NULL};
    const char *k, *bad_key = NULL;
    json_t *v, *bad = NULL;
    const char *s;
    int rc;

    json_object_foreach(obj, k, v) {
        enum attr a = attr_of(k);
        if (a < A_KNOWN) {
            at[a] = v;
        } else if (!bad && (a == A_DATA_BASE64 || (!json_is_string(v) && !json_is_number(v) &&
                                                    !json_is_boolean(v)))) {
            bad_key = k; /* the first extension in member order that is not allowed */
            bad = v;
        }
    }

    /* specversion first: a different version means the rest reads differently. */
    if ((rc = want_string(at[A_SPECVERSION], "specversion", 1, &s, err)))
        return rc;
    if (strcmp(s, "1.0") != 0) {
        set_error(err, "specversion", "%s is not supported; it must be \"1.0\"",
                  quote(s, strlen(s), q));
        return FW_EPARSE;
    }
    if ((rc = want_string(at[A_ID], "id", 1, &ev->id, err)))
        return rc;
    if ((rc = want_string(at[A_TYPE], "type", 1, &ev->type, err)))
        return rc;
    for (const char *t = ev->type; *t; t++) {
        if ((unsigned char)*t <= ' ' || *t == 0x7f) {
            set_error(err, "type", "%s contains whitespace or a control character",
                      quote(ev->type, strlen(ev->type), q));
            return FW_EPARSE;
        }
    }
    if ((rc = want_string(at[A_SOURCE], "source", 0, &ev->source, err)))
        return rc;

    json_t *tv = at[A_TIME];
    if (!tv) {
        set_error(err, "time", "required attribute is missing");
        return FW_EPARSE;
    }
    if (!json_is_string(tv)) {
        set_error(err, "time", "must be an RFC 3339 time string, got %s", type_name(tv));
        return FW_EPARSE;
    }
    if (fw_time_parse(json_string_value(tv), json_string_length(tv), &ev->time)) {
        set_error(err, "time", "%s is not an RFC 3339 time with offset",
                  quote(json_string_value(tv), json_string_length(tv), q));
        return FW_EPARSE;
    }
    /* A plausible time: year 0000 or 9999 is a producer's bug, and would pin state forever. */
    if ((lim->time_min != FW_TIME_NONE && ev->time < lim->time_min) ||
        (lim->time_max != FW_TIME_NONE && ev->time > lim->time_max)) {
        char bound[FW_TIME_MAXLEN];
        int early = lim->time_min != FW_TIME_NONE && ev->time < lim->time_min;
        fw_time_format(early ? lim->time_min : lim->time_max, bound);
        if (early)
            set_error(err, "time", "%s is before %s, the earliest event time accepted",
                      quote(json_string_value(tv), json_string_length(tv), q), bound);
        else
            set_error(err, "time", "%s is after %s, %s",
                      quote(json_string_value(tv), json_string_length(tv), q), bound,
                      lim->time_max_why ? lim->time_max_why : "the latest event time accepted");
        return FW_EPARSE;
    }

    /* A global event (an outage) has no customer; every other event needs one. */
    int global = globals && globals->is_global && globals->is_global(globals->ctx, ev->type);
    if ((rc = want_string(at[A_SUBJECT], "subject", !global, &ev->subject, err))) {
        if (!global && !at[A_SUBJECT])
            set_error(err, "subject",
                      "required attribute is missing (only global event types may omit it; "
                      "%s is not global)",
                      quote(ev->type, strlen(ev->type), q));
        return rc;
    }

    const char *dct;
    if ((rc = want_string(at[A_DATACONTENTTYPE], "datacontenttype", 0, &dct, err)))
        return rc;
    if (dct && !is_json_media_type(dct, strlen(dct))) {
        set_error(err, "datacontenttype", "%s is not supported; it must be application/json",
                  quote(dct, strlen(dct), q));
        return FW_EPARSE;
    }
    const char *schema;
    if ((rc = want_string(at[A_DATASCHEMA], "dataschema", 0, &schema, err)))
        return rc;

    ev->data = at[A_DATA];
    if (ev->data && !json_is_object(ev->data)) {
        set_error(err, "data", "must be an object, got %s", type_name(ev->data));
        return FW_EPARSE;
    }

    /* Extensions: CloudEvents allows only scalar attribute values. */
    if (bad) {
        if (!strcmp(bad_key, "data_base64"))
            set_error(err, bad_key, "binary data is not supported; send data as a JSON object");
        else
            set_error(err, bad_key,
                      "extension attributes must be strings, numbers or booleans, got %s",
                      type_name(bad));
        return FW_EPARSE;
    }

    /* Limits last: by now every attribute outside data is a scalar. */
    size_t members = 0, bound = 0, other = 0;
    json_object_foreach(obj, k, v) {
        struct frame top = {NULL, k, 0};
        if ((rc = string_too_long(lim, strlen(k), &top, err)) ||
            (rc = check_value(v, 1, lim, &top, err, &members, v == ev->data ? &bound : &other)))
            return rc;
    }
    /* bound: the most data's compact JSON can take; measure only when it may be over. */
    if (lim->max_data && ev->data && bound > lim->max_data) {
        /* Measured as it would be written (jansson's compact form, byte for byte). */
        size_t n = fw_json_compact_size(ev->data);
        if (n > lim->max_data) {
            set_error(err, "data", "%zu bytes (as compact JSON) exceed the %zu-byte limit", n,
                      lim->max_data);
            return FW_EPARSE;
        }
    }
    return 0;
}

/*
 * A person's action on a case (docs/cases.md): the fields each action
 * needs and the values they may take.  Whether the case exists and is open
 * is decided where the cases live, when the event is applied.
 */
static const char *const case_channels[] = {"call", "email", "sms", "chat", "internal", NULL};
static const char *const case_statuses[] = {"open", "pending", "on_hold", NULL};
static const char *const case_outcomes[] = {"saved", "resolved", "churned", "no_action", NULL};

static int one_of(const char *s, const char *const *allowed)
{
    for (size_t i = 0; allowed[i]; i++)
        if (!strcmp(s, allowed[i]))
            return 1;
    return 0;
}

static void list_of(const char *const *allowed, char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    for (size_t i = 0; allowed[i] && len < n; i++)
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? ", " : "", allowed[i]);
}

/* data.<name>: a non-empty string, one of `allowed` when given. */
static int case_field(json_t *data, const char *name, int required, const char *const *allowed,
                      struct ingest_error *err)
{
    char field[64], q[QUOTE_MAX * 4 + 8], names[128];
    json_t *v = json_object_get(data, name);
    snprintf(field, sizeof field, "data.%s", name);
    if (!v) {
        if (!required)
            return 0;
        set_error(err, field, "required for this case action");
        return FW_EPARSE;
    }
    if (!json_is_string(v) || !json_string_length(v)) {
        set_error(err, field, "must be a non-empty string, got %s",
                  json_is_string(v) ? "an empty string" : type_name(v));
        return FW_EPARSE;
    }
    if (allowed && !one_of(json_string_value(v), allowed)) {
        list_of(allowed, names, sizeof names);
        set_error(err, field, "%s is not one of %s",
                  quote(json_string_value(v), json_string_length(v), q), names);
        return FW_EPARSE;
    }
    return 0;
}

static int validate_case_action(const struct event *ev, struct ingest_error *err)
{
    static const char *const actions[] = {"case.assigned",      "case.responded",
                                          "case.status_changed", "case.note_added",
                                          "case.skipped",        "case.resolved",
                                          "case.playbook_set",   "case.step_completed",
                                          "case.step_skipped",   "case.task_completed",
                                          "case.task_cancelled", NULL};
    char q[QUOTE_MAX * 4 + 8], names[512];
    json_t *d = ev->data;
    int rc;
    if (!one_of(ev->type, actions)) {
        list_of(actions, names, sizeof names);
        set_error(err, "type", "%s is not a case action (%s)",
                  quote(ev->type, strlen(ev->type), q), names);
        return FW_EPARSE;
    }
    if (!ev->subject) {
        set_error(err, "subject", "a case action names the customer as its subject");
        return FW_EPARSE;
    }
    if ((rc = case_field(d, "case", 0, NULL, err)))
        return rc;
    const char *a = ev->type + 5;
    if (!strcmp(a, "assigned") || !strcmp(a, "responded") || !strcmp(a, "note_added") ||
        !strcmp(a, "skipped") || !strcmp(a, "playbook_set") || !strcmp(a, "step_completed") ||
        !strcmp(a, "step_skipped") || !strncmp(a, "task_", 5))
        if ((rc = case_field(d, "agent", 1, NULL, err)))
            return rc;
    if (!strncmp(a, "task_", 5)) {
        /* A follow-up task (docs/cases.md): completed with a note, or cancelled saying why. */
        if ((rc = case_field(d, "task", 1, NULL, err)))
            return rc;
        return case_field(d, "note", !strcmp(a, "task_cancelled"), NULL, err);
    }
    if ((!strcmp(a, "status_changed") || !strcmp(a, "resolved")) &&
        (rc = case_field(d, "agent", 0, NULL, err)))
        return rc;
    if (!strcmp(a, "responded"))
        return case_field(d, "channel", 1, case_channels, err);
    if (!strcmp(a, "status_changed"))
        return case_field(d, "status", 1, case_statuses, err);
    if (!strcmp(a, "note_added"))
        return case_field(d, "text", 1, NULL, err);
    if (!strcmp(a, "skipped"))
        return case_field(d, "reason", 1, NULL, err);
    if (!strcmp(a, "playbook_set"))
        return case_field(d, "playbook", 1, NULL, err);
    if (!strcmp(a, "step_completed") || !strcmp(a, "step_skipped")) {
        json_t *st = json_object_get(d, "step");
        if (!json_is_integer(st) || json_integer_value(st) < 1 || json_integer_value(st) > 1000) {
            set_error(err, "data.step", st ? "must be a step number from 1 to 1000"
                                           : "required: the playbook step, from 1");
            return FW_EPARSE;
        }
        /* Whether the step needs a reason is the playbook's to say, when the action applies. */
        return !strcmp(a, "step_skipped") ? case_field(d, "reason", 0, NULL, err) : 0;
    }
    if (!strcmp(a, "resolved")) {
        if ((rc = case_field(d, "outcome", 1, case_outcomes, err)))
            return rc;
        json_t *c = json_object_get(d, "csat");
        if (c && !json_is_null(c) &&
            (!json_is_integer(c) || json_integer_value(c) < 1 || json_integer_value(c) > 5)) {
            set_error(err, "data.csat", "must be a whole number from 1 to 5");
            return FW_EPARSE;
        }
    }
    return 0;
}

/* ---- the engagement vocabulary (docs/events.md) ---- */

/* data.<name>: a required non-empty string; *out is it. */
static int eng_name(json_t *data, const char *name, const char *what, const char **out,
                    struct ingest_error *err)
{
    char field[64];
    json_t *v = json_object_get(data, name);
    snprintf(field, sizeof field, "data.%s", name);
    if (!v) {
        set_error(err, field, "required: the %s", what);
        return FW_EPARSE;
    }
    if (!json_is_string(v) || !json_string_length(v)) {
        set_error(err, field, "must be the %s, a non-empty string, got %s", what,
                  json_is_string(v) ? "an empty string" : type_name(v));
        return FW_EPARSE;
    }
    *out = json_string_value(v);
    return 0;
}

/* A name the packs must declare when they declare any of its kind. */
static int eng_declared(const struct ingest_globals *g, const char *what, const char *field,
                        const char *name, const char *section, struct ingest_error *err)
{
    char q[QUOTE_MAX * 4 + 8];
    if (!g || !g->declared || g->declared(g->ctx, what, name) != 0)
        return 0;
    set_error(err, field, "%s is not a %s the loaded rule packs declare (engagement.%s)",
              quote(name, strlen(name), q), what, section);
    return FW_EPARSE;
}

/* A number in [lo, hi]; hi < lo: no upper bound. */
static int eng_number(json_t *data, const char *name, double lo, double hi, const char *what,
                      struct ingest_error *err)
{
    char field[64];
    json_t *v = json_object_get(data, name);
    snprintf(field, sizeof field, "data.%s", name);
    if (!v) {
        set_error(err, field, "required: %s", what);
        return FW_EPARSE;
    }
    if (!json_is_number(v)) {
        set_error(err, field, "must be a number, got %s", type_name(v));
        return FW_EPARSE;
    }
    double x = json_number_value(v);
    if (x < lo || (hi >= lo && x > hi)) {
        if (hi >= lo)
            set_error(err, field, "must be from %g to %g, got %g", lo, hi, x);
        else
            set_error(err, field, "must be %g or more (%s), got %g", lo, what, x);
        return FW_EPARSE;
    }
    return 0;
}

/* "YYYY-MM-DD", a day that exists. */
static int is_day(const char *s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y, m, d;
    char tail;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
        sscanf(s, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 || d < 1 ||
        (int)d > mdays[m - 1])
        return 0;
    return m != 2 || d < 29 || (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
}

/*
 * What the engine would otherwise drop in silence: a usage report without
 * a metric or a count, a feature or step without its name, a name outside
 * the packs' declared vocabulary.  Other types pass untouched.
 */
static int validate_engagement(const struct event *ev, const struct ingest_globals *g,
                               struct ingest_error *err)
{
    json_t *d = ev->data;
    const char *name;
    char q[QUOTE_MAX * 4 + 8];
    int rc;
    if (!strcmp(ev->type, "usage.reported")) {
        if ((rc = eng_name(d, "metric", "metric the value counts (e.g. \"data_mb\")", &name, err)) ||
            (rc = eng_declared(g, "metric", "data.metric", name, "metrics", err)) ||
            (rc = eng_number(d, "value", 0, -1, "a count for the day", err)))
            return rc;
        json_t *day = json_object_get(d, "date");
        if (day && (!json_is_string(day) || !is_day(json_string_value(day)))) {
            set_error(err, "data.date", "must be a day, YYYY-MM-DD, got %s",
                      json_is_string(day)
                          ? quote(json_string_value(day), json_string_length(day), q)
                          : type_name(day));
            return FW_EPARSE;
        }
        return 0;
    }
    if (!strcmp(ev->type, "feature.used"))
        return eng_name(d, "feature", "feature used (e.g. \"hotspot\")", &name, err);
    if (!strcmp(ev->type, "onboarding.step_completed")) {
        if ((rc = eng_name(d, "step", "onboarding step done (e.g. \"activate_esim\")", &name, err)))
            return rc;
        return eng_declared(g, "step", "data.step", name, "onboarding_steps", err);
    }
    if (!strcmp(ev->type, "subscription.changed")) {
        json_t *plan = json_object_get(d, "plan"), *list = json_object_get(d, "features"), *f;
        size_t i;
        if (plan && !json_is_string(plan) && !json_is_null(plan)) {
            set_error(err, "data.plan", "must be the plan's name, a string, got %s",
                      type_name(plan));
            return FW_EPARSE;
        }
        if (list && !json_is_array(list)) {
            set_error(err, "data.features", "must be a list of feature names, got %s",
                      type_name(list));
            return FW_EPARSE;
        }
        json_array_foreach (list, i, f)
            if (!json_is_string(f) || !json_string_length(f)) {
                char field[64];
                snprintf(field, sizeof field, "data.features[%zu]", i);
                set_error(err, field, "must be a feature name, a non-empty string, got %s",
                          json_is_string(f) ? "an empty string" : type_name(f));
                return FW_EPARSE;
            }
        return 0;
    }
    if (!strcmp(ev->type, "sentiment.scored"))
        return eng_number(d, "score", -1, 1, "the score, from -1 to 1", err);
    return 0;
}

int ingest_validate(json_t *obj, const struct ingest_limits *lim,
                    const struct ingest_globals *globals, struct event *out,
                    struct ingest_error *err)
{
    int rc;
    if (!lim)
        lim = &ingest_default_limits;
    memset(out, 0, sizeof *out);
    if (err)
        memset(err, 0, sizeof *err);
    if (!json_is_object(obj)) {
        set_error(err, "", "an event must be a JSON object, got %s",
                  obj ? type_name(obj) : "nothing");
        return FW_EPARSE;
    }
    if ((rc = validate_attrs(obj, lim, globals, out, err))) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    if (!out->data) {
        /* Downstream code always gets an object; the stored event says so too. */
        out->data = json_object();
        json_object_set_new(obj, "data", out->data);
    }
    if (!strncmp(out->type, "case.", 5) && (rc = validate_case_action(out, err))) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    if ((rc = validate_engagement(out, globals, err))) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->json = json_incref(obj);
    return 0;
}

void event_cleanup(struct event *e)
{
    if (!e)
        return;
    json_decref(e->json);
    memset(e, 0, sizeof *e);
}

struct order_key {
    int64_t time;
    size_t i;
};

static int order_cmp(const void *a, const void *b)
{
    const struct order_key *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

size_t *ingest_time_order(const struct ingest_batch *b)
{
    struct order_key *k = xmalloc((b->n ? b->n : 1) * sizeof *k);
    for (size_t i = 0; i < b->n; i++)
        k[i] = (struct order_key){b->events[i].time, i};
    qsort(k, b->n, sizeof *k, order_cmp);
    size_t *order = xmalloc((b->n ? b->n : 1) * sizeof *order);
    for (size_t i = 0; i < b->n; i++)
        order[i] = k[i].i;
    free(k);
    return order;
}

void ingest_batch_cleanup(struct ingest_batch *batch)
{
    if (!batch)
        return;
    for (size_t i = 0; i < batch->n; i++)
        event_cleanup(&batch->events[i]);
    free(batch->events);
    free(batch->errors);
    memset(batch, 0, sizeof *batch);
}

/* ---- bodies ---- */

/* Validate one parsed object (its reference is consumed) at a position. */
static void take_event(struct collect *c, json_t *obj, enum pos_kind kind, size_t index)
{
    struct ingest_error err;
    struct event ev;
    if (ingest_validate(obj, c->lim, c->globals, &ev, &err)) {
        set_pos(&err, kind, index);
        add_error(c, &err);
    } else if (c->b->nerrors || c->dropped) {
        event_cleanup(&ev); /* the batch is already lost; keep validating for the report */
    } else {
        c->b->events[c->b->n++] = ev;
    }
    json_decref(obj);
}

static void parse_error(struct collect *c, const json_error_t *jerr, enum pos_kind kind,
                        size_t index)
{
    struct ingest_error err;
    memset(&err, 0, sizeof err);
    set_pos(&err, kind, index);
    if (kind == POS_LINE)
        set_error(&err, "", "malformed JSON at column %d: %s", jerr->column, jerr->text);
    else
        set_error(&err, "", "malformed JSON at line %d, column %d (byte %d): %s", jerr->line,
                  jerr->column, jerr->position, jerr->text);
    add_error(c, &err);
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* Returns FW_ETOOBIG when there are too many events; other errors are collected. */
static int parse_array(struct collect *c, const char *body, size_t len)
{
    json_error_t jerr;
    int rc = 0;
    json_t *root = fw_json_loadb(body, len, PARSE_FLAGS, &jerr);
    if (!root) {
        parse_error(c, &jerr, POS_BODY, 0);
        return 0;
    }
    if (!json_is_array(root)) {
        add_body_error(c, "a body starting with '[' must be a JSON array");
    } else if (json_array_size(root) > c->lim->max_events) {
        add_body_error(c, "%zu events exceed the limit of %zu per request", json_array_size(root),
                       c->lim->max_events);
        rc = FW_ETOOBIG;
    } else {
        c->b->events = xcalloc(json_array_size(root), sizeof *c->b->events);
        for (size_t i = 0; i < json_array_size(root); i++)
            take_event(c, json_incref(json_array_get(root, i)), POS_INDEX, i);
    }
    json_decref(root);
    return rc;
}

/* The next line of [*p, end): its bounds without "\r\n"; advances *p. */
static void next_line(const char **p, const char *end, const char **ls, size_t *ln)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *stop = nl ? nl : end;
    *ls = *p;
    *ln = (size_t)(stop - *p);
    if (*ln && (*ls)[*ln - 1] == '\r')
        (*ln)--;
    *p = nl ? nl + 1 : end;
}

/* Returns FW_ETOOBIG when there are too many events; other errors are collected. */
static int parse_ndjson(struct collect *c, const char *body, size_t len)
{
    const char *p = body, *end = body + len, *ls;
    size_t ln, events = 0;
    /* Count first: the limit is checked before any work, and sizes the array. */
    while (p < end) {
        next_line(&p, end, &ls, &ln);
        events += !is_blank(ls, ln);
    }
    if (events > c->lim->max_events) {
        add_body_error(c, "%zu events exceed the limit of %zu per request", events,
                       c->lim->max_events);
        return FW_ETOOBIG;
    }
    c->b->events = xcalloc(events, sizeof *c->b->events);
    p = body;
    for (size_t lineno = 1; p < end; lineno++) {
        next_line(&p, end, &ls, &ln);
        if (is_blank(ls, ln))
            continue;
        json_error_t jerr;
        json_t *obj = fw_json_loadb(ls, ln, PARSE_FLAGS, &jerr);
        if (!obj)
            parse_error(c, &jerr, POS_LINE, lineno);
        else
            take_event(c, obj, POS_LINE, lineno);
    }
    return 0;
}

/*
 * When the first value does not parse, is the body NDJSON with a bad
 * line?  Yes when its first non-blank line looks like a whole object and
 * another non-blank line follows; then every line gets its own report.
 */
static int looks_like_ndjson(const char *body, size_t len)
{
    const char *p = body, *end = body + len, *ls;
    size_t ln, seen = 0;
    int first_whole = 0;
    while (p < end && seen < 2) {
        next_line(&p, end, &ls, &ln);
        if (is_blank(ls, ln))
            continue;
        if (seen++ == 0) {
            while (ln && (ls[ln - 1] == ' ' || ls[ln - 1] == '\t'))
                ln--;
            while (ln && (*ls == ' ' || *ls == '\t'))
                ls++, ln--;
            first_whole = ln >= 2 && ls[0] == '{' && ls[ln - 1] == '}';
        }
    }
    return first_whole && seen == 2;
}

int ingest_parse(const char *body, size_t len, const struct ingest_limits *lim,
                 const struct ingest_globals *globals, struct ingest_batch *batch)
{
    struct collect c = {.b = batch, .lim = lim ? lim : &ingest_default_limits, .globals = globals};
    int rc = 0;
    memset(batch, 0, sizeof *batch);
    if (len > c.lim->max_body) {
        add_body_error(&c, "body of %zu bytes exceeds the limit of %zu bytes", len,
                       c.lim->max_body);
        return FW_ETOOBIG;
    }
    if (len >= 3 && !memcmp(body, "\xEF\xBB\xBF", 3)) {
        body += 3; /* a UTF-8 byte order mark, as some editors write */
        len -= 3;
    }
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
        i++;
    if (i == len) {
        add_body_error(&c, "the body is empty; send a JSON object, a JSON array or NDJSON");
        return FW_EPARSE;
    }
    if (body[i] == '[') {
        rc = parse_array(&c, body, len);
    } else {
        json_error_t jerr;
        json_t *first = fw_json_loadb(body, len, PARSE_FLAGS | JSON_DISABLE_EOF_CHECK, &jerr);
        size_t used = first ? (size_t)jerr.position : 0;
        if (first && is_blank(body + used, len - used)) {
            c.b->events = xcalloc(1, sizeof *c.b->events);
            take_event(&c, first, POS_BODY, 0);
        } else if (first && memchr(body + i, '\n', used - i)) {
            /* Several pretty-printed objects are not NDJSON: say where the first ends. */
            json_decref(first);
            size_t line = 1, col = 1;
            for (size_t k = 0; k < used; k++, col++)
                if (body[k] == '\n')
                    line++, col = 0;
            add_body_error(&c,
                           "content after the first JSON value, which ends at line %zu, "
                           "column %zu; NDJSON needs exactly one event per line",
                           line, col - 1);
        } else if (first || looks_like_ndjson(body, len)) {
            json_decref(first);
            rc = parse_ndjson(&c, body, len);
        } else {
            parse_error(&c, &jerr, POS_BODY, 0);
        }
    }
    if (!rc && (batch->nerrors || c.dropped))
        rc = FW_EPARSE;
    if (c.dropped) {
        /* The cap leaves room for this one line in the list. */
        batch->errors = xrealloc(batch->errors, (batch->nerrors + 1) * sizeof *batch->errors);
        struct ingest_error *e = &batch->errors[batch->nerrors++];
        memset(e, 0, sizeof *e);
        set_pos(e, POS_BODY, 0);
        snprintf(e->msg, sizeof e->msg, "and %zu more errors", c.dropped);
    }
    if (rc) {
        for (size_t k = 0; k < batch->n; k++)
            event_cleanup(&batch->events[k]);
        free(batch->events);
        batch->events = NULL;
        batch->n = 0;
    }
    return rc;
}
