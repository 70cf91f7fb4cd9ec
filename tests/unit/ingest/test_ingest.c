/*
 * test_ingest.c -- CloudEvents ingest: body shapes, every validation error
 * with its position and field, limits, malformed JSON, all-or-nothing.
 *
 * JSON in the tables is written with single quotes, turned into double
 * quotes before parsing, so the cases read like the bodies they stand for.
 */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "ingest/ingest.h"
#include "util/buf.h"
#include "util/fwtime.h"
#include "util/util.h"

#define T0 1767434400000LL /* 2026-01-03T10:00:00Z */

/* The attributes every valid test event starts with. */
#define BASE "'specversion':'1.0','id':'e1','type':'order.placed','time':'2026-01-03T10:00:00Z'"

/* Single quotes to double quotes, in a fresh string (caller frees). */
static char *sq(const char *s)
{
    char *d = xstrdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

static int is_global(void *ctx, const char *type)
{
    (void)ctx;
    return !strcmp(type, "network.outage");
}

static const struct ingest_globals globals = {.ctx = NULL, .is_global = is_global};

/* Parse a single-quoted body with the default limits. */
static int parse(const char *body, struct ingest_batch *b)
{
    char *s = sq(body);
    int rc = ingest_parse(s, strlen(s), NULL, &globals, b);
    free(s);
    return rc;
}

static void single_object(void)
{
    struct ingest_batch b;
    ASSERT_EQ(parse("{" BASE ",'subject':'c1','source':'/shop','data':{'total':42},"
                    "'tenant':'acme','priority':3,'urgent':true}",
                    &b),
              0);
    ASSERT_EQ(b.n, 1);
    ASSERT_EQ(b.nerrors, 0);
    const struct event *e = &b.events[0];
    ASSERT_STREQ(e->id, "e1");
    ASSERT_STREQ(e->type, "order.placed");
    ASSERT_STREQ(e->subject, "c1");
    ASSERT_STREQ(e->source, "/shop");
    ASSERT_EQ(e->time, T0);
    ASSERT(json_is_object(e->data));
    ASSERT_EQ(json_integer_value(json_object_get(e->data, "total")), 42);
    /* Extensions are kept on the stored object. */
    ASSERT_STREQ(json_string_value(json_object_get(e->json, "tenant")), "acme");
    ingest_batch_cleanup(&b);
    ASSERT_EQ(b.n, 0);
    ASSERT(b.events == NULL);
    ingest_batch_cleanup(&b); /* twice: harmless */

    /* No data and no source: an empty data object, a NULL source. */
    ASSERT_EQ(parse("  \n{" BASE ",'subject':'c1'}\n\n", &b), 0);
    ASSERT_EQ(b.n, 1);
    ASSERT(b.events[0].source == NULL);
    ASSERT(json_is_object(b.events[0].data));
    ASSERT_EQ(json_object_size(b.events[0].data), 0);
    ASSERT(json_object_get(b.events[0].json, "data") == b.events[0].data);
    ingest_batch_cleanup(&b);

    /* A pretty-printed object is one document, not NDJSON. */
    ASSERT_EQ(parse("{\n  'specversion': '1.0',\n  'id': 'e1',\n  'type': 'a.b',\n"
                    "  'subject': 'c1',\n  'time': '2026-01-03T10:00:00Z'\n}\n",
                    &b),
              0);
    ASSERT_EQ(b.n, 1);
    ingest_batch_cleanup(&b);
}

static void array(void)
{
    struct ingest_batch b;
    ASSERT_EQ(parse(" [{" BASE ",'subject':'c1'},{" BASE ",'id':'e2','subject':'c2'} ,\n{" BASE
                    ",'id':'e3','subject':'c3'}]",
                    &b),
              FW_EPARSE); /* BASE's id repeated: a duplicate key is malformed JSON */
    ASSERT_EQ(b.nerrors, 1);
    ASSERT_STREQ(b.errors[0].where, "body");
    ASSERT_CONTAINS(b.errors[0].msg, "duplicate object key");
    ingest_batch_cleanup(&b);

    ASSERT_EQ(parse("[{'specversion':'1.0','id':'a','type':'t.x','subject':'c1','time':'2026-01-"
                    "03T10:00:00Z'},{'specversion':'1.0','id':'b','type':'t.y','subject':'c2',"
                    "'time':'2026-01-03T10:00:01Z'}]",
                    &b),
              0);
    ASSERT_EQ(b.n, 2);
    ASSERT_STREQ(b.events[0].id, "a");
    ASSERT_STREQ(b.events[1].id, "b");
    ASSERT_EQ(b.events[1].time, T0 + 1000);
    ingest_batch_cleanup(&b);

    /* An empty array is a valid batch of nothing. */
    ASSERT_EQ(parse("[]", &b), 0);
    ASSERT_EQ(b.n, 0);
    ingest_batch_cleanup(&b);

    /* Errors carry the 0-based index; valid neighbours are not returned. */
    ASSERT_EQ(parse("[{'specversion':'1.0','id':'a','type':'t.x','subject':'c1','time':'2026-01-"
                    "03T10:00:00Z'}, 7, {'specversion':'1.0','id':'c','type':'t.x','time':'2026-"
                    "01-03T10:00:00Z'}]",
                    &b),
              FW_EPARSE);
    ASSERT_EQ(b.n, 0);
    ASSERT_EQ(b.nerrors, 2);
    ASSERT_STREQ(b.errors[0].where, "index 1");
    ASSERT_EQ(b.errors[0].index, 1);
    ASSERT_CONTAINS(b.errors[0].msg, "must be a JSON object, got number");
    ASSERT_STREQ(b.errors[1].where, "index 2");
    ASSERT_STREQ(b.errors[1].field, "subject");
    ingest_batch_cleanup(&b);
}

static void ndjson(void)
{
    struct ingest_batch b;
    const char *body = "{'specversion':'1.0','id':'a','type':'t.x','subject':'c1','time':'2026-"
                       "01-03T10:00:00Z'}\n"
                       "\n"
                       "   \t\n"
                       "{'specversion':'1.0','id':'b','type':'t.x','subject':'c1','time':'2026-"
                       "01-03T10:00:02Z'}\n"
                       "{'specversion':'1.0','id':'a','type':'t.x','subject':'c1','time':'2026-"
                       "01-03T10:00:03Z'}"; /* repeated id: the store's business */
    ASSERT_EQ(parse(body, &b), 0);
    ASSERT_EQ(b.n, 3);
    ASSERT_STREQ(b.events[1].id, "b");
    ASSERT_EQ(b.events[2].time, T0 + 3000);
    ingest_batch_cleanup(&b);

    /* CRLF line ends; errors give 1-based line numbers counting blank lines. */
    body =
        "{'specversion':'1.0','id':'a','type':'t.x','subject':'c1','time':'2026-01-03T10:00:00Z'}"
        "\r\n\r\n"
        "{'specversion':'1.0','id':'b','type':'t.x','subject':'c1','time':'2026-01-03 10:00'}"
        "\r\n"
        "{'specversion':'1.0','id':'c','type':'t.x','subject':'c1','time':'2026-01-03T10:00:00Z'}"
        "\r\n";
    ASSERT_EQ(parse(body, &b), FW_EPARSE);
    ASSERT_EQ(b.n, 0);
    ASSERT_EQ(b.nerrors, 1);
    ASSERT_STREQ(b.errors[0].where, "line 3");
    ASSERT_EQ(b.errors[0].index, 3);
    ASSERT_STREQ(b.errors[0].field, "time");
    ASSERT_STREQ(b.errors[0].msg, "\"2026-01-03 10:00\" is not an RFC 3339 time with offset");
    ingest_batch_cleanup(&b);

    /* CRLF and valid: same events as LF. */
    body =
        "{'specversion':'1.0','id':'a','type':'t.x','subject':'c1','time':'2026-01-03T10:00:00Z'}"
        "\r\n"
        "{'specversion':'1.0','id':'b','type':'t.x','subject':'c1','time':'2026-01-03T10:00:00Z'}"
        "\r\n";
    ASSERT_EQ(parse(body, &b), 0);
    ASSERT_EQ(b.n, 2);
    ingest_batch_cleanup(&b);
}

/* One table row: an event (single-quoted JSON), the field at fault and a piece of the reason. */
struct bad_case {
    const char *event;
    const char *field;
    const char *msg;
};

static const struct bad_case bad_cases[] = {
    {"{'id':'e1','type':'a.b','subject':'c','time':'2026-01-03T10:00:00Z'}", "specversion",
     "required attribute is missing"},
    {"{'specversion':'0.3','id':'e1','type':'a.b','subject':'c','time':'2026-01-03T10:00:00Z'}",
     "specversion", "\"0.3\" is not supported; it must be \"1.0\""},
    {"{'specversion':1.0,'id':'e1','type':'a.b','subject':'c','time':'2026-01-03T10:00:00Z'}",
     "specversion", "must be a string, got number"},
    {"{'specversion':'1.0','type':'a.b','subject':'c','time':'2026-01-03T10:00:00Z'}", "id",
     "required attribute is missing"},
    {"{'specversion':'1.0','id':'','type':'a.b','subject':'c','time':'2026-01-03T10:00:00Z'}", "id",
     "must not be empty"},
    {"{'specversion':'1.0','id':17,'type':'a.b','subject':'c','time':'2026-01-03T10:00:00Z'}", "id",
     "must be a string, got number"},
    {"{'specversion':'1.0','id':'e1','subject':'c','time':'2026-01-03T10:00:00Z'}", "type",
     "required attribute is missing"},
    {"{'specversion':'1.0','id':'e1','type':'','subject':'c','time':'2026-01-03T10:00:00Z'}",
     "type", "must not be empty"},
    {"{'specversion':'1.0','id':'e1','type':'order placed','subject':'c','time':'2026-01-"
     "03T10:00:00Z'}",
     "type", "\"order placed\" contains whitespace"},
    {"{'specversion':'1.0','id':'e1','type':'a.b','subject':'c'}", "time",
     "required attribute is missing"},
    {"{'specversion':'1.0','id':'e1','type':'a.b','subject':'c','time':'2026-01-03 10:00'}", "time",
     "\"2026-01-03 10:00\" is not an RFC 3339 time with offset"},
    {"{'specversion':'1.0','id':'e1','type':'a.b','subject':'c','time':'2026-01-03T10:00:00'}",
     "time", "is not an RFC 3339 time with offset"},
    {"{'specversion':'1.0','id':'e1','type':'a.b','subject':'c','time':1767434400}", "time",
     "must be an RFC 3339 time string, got number"},
    {"{'specversion':'1.0','id':'e1','type':'a.b','time':'2026-01-03T10:00:00Z'}", "subject",
     "required attribute is missing (only global event types may omit it; \"a.b\" is not global)"},
    {"{'specversion':'1.0','id':'e1','type':'a.b','subject':'','time':'2026-01-03T10:00:00Z'}",
     "subject", "must not be empty"},
    {"{'specversion':'1.0','id':'e1','type':'a.b','subject':['c'],'time':'2026-01-03T10:00:00Z'}",
     "subject", "must be a string, got array"},
    {"{'specversion':'1.0','id':'e1','type':'a.b','subject':'c','source':5,'time':'2026-01-"
     "03T10:00:00Z'}",
     "source", "must be a string, got number"},
    {"{" BASE ",'subject':'c','data':[1,2]}", "data", "must be an object, got array"},
    {"{" BASE ",'subject':'c','data':'text'}", "data", "must be an object, got string"},
    {"{" BASE ",'subject':'c','datacontenttype':'text/plain','data':{}}", "datacontenttype",
     "\"text/plain\" is not supported; it must be application/json"},
    {"{" BASE ",'subject':'c','data_base64':'aGk='}", "data_base64",
     "binary data is not supported"},
    {"{" BASE ",'subject':'c','tenant':{'name':'acme'}}", "tenant",
     "extension attributes must be strings, numbers or booleans, got object"},
    {"{" BASE ",'subject':'c','tags':null}", "tags",
     "extension attributes must be strings, numbers or booleans, got null"},
};

static void each_error(void)
{
    for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
        struct ingest_batch b;
        /* Each bad event sits at index 1 of an array, after a valid one. */
        struct buf body;
        buf_init(&body, 0);
        buf_printf(&body, "[{" BASE ",'subject':'c0'},%s]", bad_cases[i].event);
        int rc = parse(body.data, &b);
        buf_cleanup(&body);
        if (rc != FW_EPARSE || b.nerrors != 1) {
            ingest_batch_cleanup(&b);
            TEST__FAIL("case %zu (%s): rc %d, %zu errors", i, bad_cases[i].field, rc, b.nerrors);
        }
        ASSERT_EQ(b.n, 0);
        ASSERT_STREQ(b.errors[0].where, "index 1");
        ASSERT_STREQ(b.errors[0].field, bad_cases[i].field);
        ASSERT_CONTAINS(b.errors[0].msg, bad_cases[i].msg);
        ingest_batch_cleanup(&b);
    }
    /* The application/json media type may carry parameters and any case. */
    struct ingest_batch b;
    ASSERT_EQ(
        parse("{" BASE ",'subject':'c','datacontenttype':'Application/JSON; charset=utf-8'}", &b),
        0);
    ingest_batch_cleanup(&b);
}

static void offset_time_utc(void)
{
    struct ingest_batch b;
    ASSERT_EQ(parse("{'specversion':'1.0','id':'e1','type':'a.b','subject':'c',"
                    "'time':'2026-01-03T12:30:00.250+02:30'}",
                    &b),
              0);
    ASSERT_EQ(b.events[0].time, T0 + 250);
    ingest_batch_cleanup(&b);
    ASSERT_EQ(parse("{'specversion':'1.0','id':'e1','type':'a.b','subject':'c',"
                    "'time':'2026-01-03T05:00:00-05:00'}",
                    &b),
              0);
    ASSERT_EQ(b.events[0].time, T0);
    ingest_batch_cleanup(&b);
}

static void global_types(void)
{
    struct ingest_batch b;
    ASSERT_EQ(parse("{'specversion':'1.0','id':'o1','type':'network.outage',"
                    "'time':'2026-01-03T10:00:00Z','data':{'region':'north'}}",
                    &b),
              0);
    ASSERT_EQ(b.n, 1);
    ASSERT(b.events[0].subject == NULL);
    ingest_batch_cleanup(&b);
    /* Without a globals callback nothing is global. */
    char *s = sq("{'specversion':'1.0','id':'o1','type':'network.outage',"
                 "'time':'2026-01-03T10:00:00Z'}");
    ASSERT_EQ(ingest_parse(s, strlen(s), NULL, NULL, &b), FW_EPARSE);
    free(s);
    ASSERT_STREQ(b.errors[0].field, "subject");
    ingest_batch_cleanup(&b);
    /* A non-global type must name its customer. */
    ASSERT_EQ(parse("{'specversion':'1.0','id':'o1','type':'network.slow',"
                    "'time':'2026-01-03T10:00:00Z'}",
                    &b),
              FW_EPARSE);
    ASSERT_STREQ(b.errors[0].where, "body");
    ASSERT_STREQ(b.errors[0].field, "subject");
    ingest_batch_cleanup(&b);
}

/* A valid event whose data nests `depth` objects (data itself is level 1). */
static char *nested(size_t depth)
{
    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, "{" BASE ",'subject':'c','data':");
    for (size_t i = 1; i < depth; i++)
        buf_puts(&b, "{'a':");
    buf_puts(&b, "{}");
    for (size_t i = 1; i < depth; i++)
        buf_putc(&b, '}');
    buf_putc(&b, '}');
    char *s = sq(b.data);
    buf_cleanup(&b);
    return s;
}

static void limits(void)
{
    struct ingest_batch b;
    /* A 5 MiB body is refused before parsing. */
    size_t big = 5u << 20;
    char *body = xmalloc(big);
    memset(body, ' ', big);
    body[0] = '[';
    body[big - 1] = ']';
    ASSERT_EQ(ingest_parse(body, big, NULL, &globals, &b), FW_ETOOBIG);
    ASSERT_EQ(b.nerrors, 1);
    ASSERT_STREQ(b.errors[0].where, "body");
    ASSERT_CONTAINS(b.errors[0].msg, "body of 5242880 bytes exceeds the limit of 4194304 bytes");
    ingest_batch_cleanup(&b);
    free(body);

    /* A 9 KiB string in data: that event's error, with its path. */
    struct buf s;
    buf_init(&s, 0);
    buf_puts(&s, "{" BASE ",'subject':'c','data':{'items':[{'note':'");
    for (size_t i = 0; i < 9 * 1024; i++)
        buf_putc(&s, 'x');
    buf_puts(&s, "'}]}}");
    ASSERT_EQ(parse(s.data, &b), FW_EPARSE);
    ASSERT_EQ(b.nerrors, 1);
    ASSERT_STREQ(b.errors[0].field, "data.items[0].note");
    ASSERT_CONTAINS(b.errors[0].msg, "string of 9216 bytes exceeds the 8192-byte limit");
    ingest_batch_cleanup(&b);
    /* Keys count as strings; so do top-level attributes. */
    buf_reset(&s);
    buf_puts(&s, "{" BASE ",'subject':'");
    for (size_t i = 0; i < 9 * 1024; i++)
        buf_putc(&s, 'c');
    buf_puts(&s, "'}");
    ASSERT_EQ(parse(s.data, &b), FW_EPARSE);
    ASSERT_STREQ(b.errors[0].field, "subject");
    ingest_batch_cleanup(&b);
    buf_reset(&s);
    buf_puts(&s, "{" BASE ",'subject':'c','data':{'");
    for (size_t i = 0; i < 9 * 1024; i++)
        buf_putc(&s, 'k');
    buf_puts(&s, "':1}}");
    ASSERT_EQ(parse(s.data, &b), FW_EPARSE);
    ASSERT_CONTAINS(b.errors[0].field, "data.kkkk");
    ASSERT_CONTAINS(b.errors[0].field, "...");
    ASSERT_CONTAINS(b.errors[0].msg, "string of 9216 bytes");
    ingest_batch_cleanup(&b);
    buf_cleanup(&s);

    /* Depth 16 is allowed, 17 is not; arrays count as levels too. */
    char *d16 = nested(16), *d17 = nested(17);
    ASSERT_EQ(ingest_parse(d16, strlen(d16), NULL, &globals, &b), 0);
    ingest_batch_cleanup(&b);
    ASSERT_EQ(ingest_parse(d17, strlen(d17), NULL, &globals, &b), FW_EPARSE);
    ASSERT_STREQ(b.errors[0].field, "data.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a");
    ASSERT_CONTAINS(b.errors[0].msg, "nesting depth exceeds the limit of 16 levels");
    ingest_batch_cleanup(&b);
    free(d16);
    free(d17);
    ASSERT_EQ(parse("{" BASE ",'subject':'c','data':{'a':[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}}", &b),
              FW_EPARSE);
    ASSERT_CONTAINS(b.errors[0].field, "data.a[0][0]");
    ingest_batch_cleanup(&b);

    /* 1,000 members in an event are allowed, 1,001 are not, counted over every level. */
    for (int over = 0; over < 2; over++) {
        struct buf m;
        buf_init(&m, 0);
        buf_puts(&m, "{" BASE ",'subject':'c','data':{'list':[");
        for (int i = 0; i < 998 + over; i++)
            buf_printf(&m, "%s%d", i ? "," : "", i);
        buf_puts(&m, "],'x':1}}"); /* 2 keys + 998 (or 999) items */
        ASSERT_EQ(parse(m.data, &b), over ? FW_EPARSE : 0);
        if (over)
            ASSERT_CONTAINS(b.errors[0].msg, "more than 1000 members");
        ingest_batch_cleanup(&b);
        buf_cleanup(&m);
    }

    /* 10,001 events, as an array and as NDJSON: one error for the whole body. */
    struct buf many;
    buf_init(&many, 0);
    buf_putc(&many, '[');
    for (size_t i = 0; i <= 10000; i++)
        buf_printf(&many,
                   "%s{'specversion':'1.0','id':'e%zu','type':'a.b','subject':'c','time':"
                   "'2026-01-03T10:00:00Z'}",
                   i ? "," : "", i);
    buf_putc(&many, ']');
    ASSERT_EQ(parse(many.data, &b), FW_ETOOBIG);
    ASSERT_EQ(b.nerrors, 1);
    ASSERT_STREQ(b.errors[0].where, "body");
    ASSERT_CONTAINS(b.errors[0].msg, "10001 events exceed the limit of 10000 per request");
    ingest_batch_cleanup(&b);
    buf_reset(&many);
    for (size_t i = 0; i <= 10000; i++)
        buf_printf(&many,
                   "{'specversion':'1.0','id':'e%zu','type':'a.b','subject':'c','time':"
                   "'2026-01-03T10:00:00Z'}\n",
                   i);
    ASSERT_EQ(parse(many.data, &b), FW_ETOOBIG);
    ASSERT_EQ(b.nerrors, 1);
    ASSERT_CONTAINS(b.errors[0].msg, "10001 events exceed the limit of 10000 per request");
    ingest_batch_cleanup(&b);
    /* Exactly 10,000 is fine. */
    char *nl = strrchr(many.data, '{');
    *nl = '\0';
    ASSERT_EQ(parse(many.data, &b), 0);
    ASSERT_EQ(b.n, 10000);
    ingest_batch_cleanup(&b);
    buf_cleanup(&many);

    /* Caller-supplied limits. */
    struct ingest_limits lim = ingest_default_limits;
    lim.max_body = 10;
    char *one = sq("{" BASE ",'subject':'c'}");
    ASSERT_EQ(ingest_parse(one, strlen(one), &lim, &globals, &b), FW_ETOOBIG);
    ingest_batch_cleanup(&b);
    free(one);
}

static void malformed(void)
{
    struct ingest_batch b;
    /* One document: jansson's line, column and text. */
    ASSERT_EQ(parse("{\n  'specversion': '1.0',\n  'id': 'e1'\n  'type': 'a.b'\n}", &b), FW_EPARSE);
    ASSERT_EQ(b.nerrors, 1);
    ASSERT_STREQ(b.errors[0].where, "body");
    ASSERT_CONTAINS(b.errors[0].msg, "malformed JSON at line 4, column");
    ASSERT_CONTAINS(b.errors[0].msg, "'}' expected");
    ingest_batch_cleanup(&b);
    /* An array cut short. */
    ASSERT_EQ(parse("[{" BASE ",'subject':'c'},", &b), FW_EPARSE);
    ASSERT_STREQ(b.errors[0].where, "body");
    ASSERT_CONTAINS(b.errors[0].msg, "malformed JSON at line 1");
    ingest_batch_cleanup(&b);
    /* NDJSON: each bad line reported by its number; the good lines still checked. */
    ASSERT_EQ(parse("{" BASE ",'subject':'c'}\n"
                    "{'specversion':'1.0',\n"
                    "{" BASE ",'subject':'c'} {}\n"
                    "{'specversion':'1.0','id':'x','type':'a.b','time':'2026-01-03T10:00:00Z'}\n",
                    &b),
              FW_EPARSE);
    ASSERT_EQ(b.n, 0);
    ASSERT_EQ(b.nerrors, 3);
    ASSERT_STREQ(b.errors[0].where, "line 2");
    ASSERT_CONTAINS(b.errors[0].msg, "malformed JSON at column");
    ASSERT_STREQ(b.errors[1].where, "line 3");
    ASSERT_CONTAINS(b.errors[1].msg, "end of file expected");
    ASSERT_STREQ(b.errors[2].where, "line 4");
    ASSERT_STREQ(b.errors[2].field, "subject");
    ingest_batch_cleanup(&b);
    /* A bad first line does not hide the others. */
    ASSERT_EQ(parse("{'specversion':'1.0','id':}\n{" BASE "}\n", &b), FW_EPARSE);
    ASSERT_EQ(b.nerrors, 2);
    ASSERT_STREQ(b.errors[0].where, "line 1");
    ASSERT_STREQ(b.errors[1].where, "line 2");
    ingest_batch_cleanup(&b);
    /* Two pretty-printed objects are not NDJSON. */
    ASSERT_EQ(parse("{\n'a':1\n}\n{\n'b':2\n}\n", &b), FW_EPARSE);
    ASSERT_EQ(b.nerrors, 1);
    ASSERT_CONTAINS(b.errors[0].msg, "ends at line 3, column 1; NDJSON needs");
    ingest_batch_cleanup(&b);
    /* Not JSON at all, empty, a bare string, invalid UTF-8, duplicate keys. */
    static const char *const junk[] = {
        "hello", "", " \r\n ", "'just a string'", "{'id':'\xff'}", "{'id':'a','id':'b'}"};
    for (size_t i = 0; i < ARRAY_SIZE(junk); i++) {
        ASSERT_EQ(parse(junk[i], &b), FW_EPARSE);
        ASSERT_EQ(b.nerrors, 1);
        ASSERT_STREQ(b.errors[0].where, "body");
        ASSERT(b.errors[0].msg[0] != '\0');
        ingest_batch_cleanup(&b);
    }
}

static void error_cap(void)
{
    struct ingest_batch b;
    struct buf body;
    buf_init(&body, 0);
    buf_putc(&body, '[');
    for (size_t i = 0; i < 150; i++)
        buf_printf(&body, "%s{'specversion':'1.0','id':'e%zu','type':'a.b','time':'x'}",
                   i ? "," : "", i);
    buf_putc(&body, ']');
    ASSERT_EQ(parse(body.data, &b), FW_EPARSE);
    buf_cleanup(&body);
    ASSERT_EQ(b.n, 0);
    ASSERT_EQ(b.nerrors, INGEST_MAX_ERRORS + 1);
    ASSERT_STREQ(b.errors[99].where, "index 99");
    ASSERT_STREQ(b.errors[100].where, "body");
    ASSERT_STREQ(b.errors[100].msg, "and 50 more errors");
    ingest_batch_cleanup(&b);
}

static void validate_direct(void)
{
    char *s = sq("{" BASE ",'subject':'c'}");
    json_t *obj = json_loads(s, 0, NULL);
    free(s);
    struct event ev;
    struct ingest_error err;
    ASSERT_EQ(ingest_validate(obj, NULL, NULL, &ev, &err), 0);
    ASSERT(ev.json == obj);
    ASSERT_EQ(obj->refcount, 2); /* ours and the event's */
    ASSERT(json_object_get(obj, "data") == ev.data);
    event_cleanup(&ev);
    ASSERT_EQ(obj->refcount, 1);
    event_cleanup(&ev); /* twice: harmless */
    json_object_del(obj, "time");
    ASSERT_EQ(ingest_validate(obj, NULL, NULL, &ev, &err), FW_EPARSE);
    ASSERT(ev.json == NULL);
    ASSERT_STREQ(err.where, "");
    ASSERT_STREQ(err.field, "time");
    ASSERT_EQ(ingest_validate(obj, NULL, NULL, &ev, NULL), FW_EPARSE);
    json_decref(obj);
    ASSERT_EQ(ingest_validate(NULL, NULL, NULL, &ev, &err), FW_EPARSE);
    ASSERT_CONTAINS(err.msg, "must be a JSON object");
    /* Messages quote bad values safely: escaped and cut short. */
    s = sq("{'specversion':'1.0','id':'e1','type':'a.b','subject':'c','time':'\\n\\\"0123456789"
           "0123456789012345678901234567890123456789'}");
    obj = json_loads(s, 0, NULL);
    free(s);
    ASSERT_EQ(ingest_validate(obj, NULL, NULL, &ev, &err), FW_EPARSE);
    ASSERT_CONTAINS(err.msg, "\"\\x0a\\\"0123");
    ASSERT_CONTAINS(err.msg, "...\" is not an RFC 3339");
    json_decref(obj);
}

/* Parse one event whose time is `t` and data `data` (single quotes) under lim. */
static int parse_one(const char *t, const char *data, const struct ingest_limits *lim,
                     struct ingest_batch *b)
{
    char body[512];
    snprintf(body, sizeof body,
             "{'specversion':'1.0','id':'e1','type':'order.placed','subject':'c','time':'%s',"
             "'data':%s}", t, data);
    char *s = sq(body);
    int rc = ingest_parse(s, strlen(s), lim, &globals, b);
    free(s);
    return rc;
}

/* ---- the engagement vocabulary: a pack that declares data_mb and activate_esim ---- */

static int declared(void *ctx, const char *what, const char *name)
{
    if (ctx) /* a rule set without an engagement section: no vocabulary */
        return -1;
    if (!strcmp(what, "metric"))
        return !strcmp(name, "data_mb");
    if (!strcmp(what, "step"))
        return !strcmp(name, "activate_esim");
    return -1;
}

#define ENG(type, data)                                                                            \
    "{'specversion':'1.0','id':'e1','type':'" type "','subject':'c','time':'2026-01-03T10:00:00Z',"  \
    "'data':" data "}"

static const struct bad_case eng_cases[] = {
    {ENG("usage.reported", "{'value':3}"), "data.metric", "required: the metric"},
    {ENG("usage.reported", "{'metric':7,'value':3}"), "data.metric",
     "a non-empty string, got number"},
    {ENG("usage.reported", "{'metric':'','value':3}"), "data.metric", "got an empty string"},
    {ENG("usage.reported", "{'metric':'minutes','value':3}"), "data.metric",
     "\"minutes\" is not a metric the loaded rule packs declare (engagement.metrics)"},
    {ENG("usage.reported", "{'metric':'data_mb'}"), "data.value", "required: a count for the day"},
    {ENG("usage.reported", "{'metric':'data_mb','value':'812'}"), "data.value",
     "must be a number, got string"},
    {ENG("usage.reported", "{'metric':'data_mb','value':-0.5}"), "data.value",
     "must be 0 or more (a count for the day), got -0.5"},
    {ENG("usage.reported", "{'metric':'data_mb','value':1,'date':'2026-02-30'}"), "data.date",
     "must be a day, YYYY-MM-DD, got \"2026-02-30\""},
    {ENG("usage.reported", "{'metric':'data_mb','value':1,'date':20260101}"), "data.date",
     "must be a day, YYYY-MM-DD, got number"},
    {ENG("feature.used", "{}"), "data.feature", "required: the feature used"},
    {ENG("feature.used", "{'feature':['hotspot']}"), "data.feature", "got array"},
    {ENG("onboarding.step_completed", "{}"), "data.step", "required: the onboarding step done"},
    {ENG("onboarding.step_completed", "{'step':'install_app'}"), "data.step",
     "\"install_app\" is not a step the loaded rule packs declare (engagement.onboarding_steps)"},
    {ENG("subscription.changed", "{'plan':5}"), "data.plan", "must be the plan's name"},
    {ENG("subscription.changed", "{'features':'hotspot'}"), "data.features",
     "must be a list of feature names, got string"},
    {ENG("subscription.changed", "{'features':['hotspot',null]}"), "data.features[1]",
     "must be a feature name, a non-empty string, got null"},
    {ENG("sentiment.scored", "{}"), "data.score", "required: the score, from -1 to 1"},
    {ENG("sentiment.scored", "{'score':-1.5}"), "data.score", "must be from -1 to 1, got -1.5"},
};

static int parse_with(const char *body, const struct ingest_globals *g, struct ingest_batch *b)
{
    char *s = sq(body);
    int rc = ingest_parse(s, strlen(s), NULL, g, b);
    free(s);
    return rc;
}

/* The plausibility window of event times, and the size of data (issue 18). */
static void time_window_and_data_size(void)
{
    struct ingest_batch b;
    /* The defaults: from 2000-01-01, before 9999-01-01. */
    ASSERT_EQ(parse_one("0000-01-01T00:00:00Z", "{}", NULL, &b), FW_EPARSE);
    ASSERT_STREQ(b.errors[0].field, "time");
    ASSERT_STREQ(b.errors[0].msg, "\"0000-01-01T00:00:00Z\" is before 2000-01-01T00:00:00Z, the "
                                  "earliest event time accepted");
    ingest_batch_cleanup(&b);
    ASSERT_EQ(parse_one("1999-12-31T23:59:59.999Z", "{}", NULL, &b), FW_EPARSE);
    ingest_batch_cleanup(&b);
    ASSERT_EQ(parse_one("2000-01-01T00:00:00Z", "{}", NULL, &b), 0);
    ingest_batch_cleanup(&b);
    ASSERT_EQ(parse_one("9999-12-31T23:59:59Z", "{}", NULL, &b), FW_EPARSE);
    ASSERT_STREQ(b.errors[0].field, "time");
    ASSERT_CONTAINS(b.errors[0].msg, "is after 9998-12-31T23:59:59.999Z, the latest time");
    ingest_batch_cleanup(&b);
    ASSERT_EQ(parse_one("9998-12-31T23:59:59Z", "{}", NULL, &b), 0);
    ingest_batch_cleanup(&b);
    /* A caller's window, and what it says about its ceiling. */
    struct ingest_limits lim = ingest_default_limits;
    lim.time_min = 1767434400000LL;     /* 2026-01-03T10:00:00Z */
    lim.time_max = 1767434400000LL + 1; /* a millisecond after */
    lim.time_max_why = "the server clock plus event_time_skew";
    ASSERT_EQ(parse_one("2026-01-03T10:00:00.001Z", "{}", &lim, &b), 0);
    ingest_batch_cleanup(&b);
    ASSERT_EQ(parse_one("2026-01-03T10:00:00.002Z", "{}", &lim, &b), FW_EPARSE);
    ASSERT_CONTAINS(b.errors[0].msg, "the server clock plus event_time_skew");
    ingest_batch_cleanup(&b);
    /* An offset counts: 11:00+02:00 is 09:00Z, before the floor. */
    ASSERT_EQ(parse_one("2026-01-03T11:00:00+02:00", "{}", &lim, &b), FW_EPARSE);
    ingest_batch_cleanup(&b);
    lim.time_min = lim.time_max = FW_TIME_NONE; /* no window: the server's own events */
    ASSERT_EQ(parse_one("0001-01-01T00:00:00Z", "{}", &lim, &b), 0);
    ingest_batch_cleanup(&b);
    /* data's size as compact JSON: {"a":"xxxxx"} is 13 bytes. */
    lim = ingest_default_limits;
    lim.max_data = 13;
    ASSERT_EQ(parse_one("2026-01-03T10:00:00Z", "{ 'a' : 'xxxxx' }", &lim, &b), 0);
    ingest_batch_cleanup(&b);
    ASSERT_EQ(parse_one("2026-01-03T10:00:00Z", "{'a':'xxxxxx'}", &lim, &b), FW_EPARSE);
    ASSERT_STREQ(b.errors[0].field, "data");
    ASSERT_STREQ(b.errors[0].msg, "14 bytes (as compact JSON) exceed the 13-byte limit");
    ingest_batch_cleanup(&b);
    /*
     * Validation measures only data whose size bound (strings as \u00XX, a
     * number as 32 bytes) is over the limit; the bound must never be under
     * the real size: a real written longer than it was sent, an escape.
     */
    lim.max_data = 28;
    ASSERT_EQ(parse_one("2026-01-03T10:00:00Z", "{'a':1.5e-300}", &lim, &b), FW_EPARSE);
    ASSERT_STREQ(b.errors[0].msg, "29 bytes (as compact JSON) exceed the 28-byte limit");
    ingest_batch_cleanup(&b);
    lim.max_data = 29;
    ASSERT_EQ(parse_one("2026-01-03T10:00:00Z", "{'a':1.5e-300}", &lim, &b), 0);
    ingest_batch_cleanup(&b);
    lim.max_data = 13;
    ASSERT_EQ(parse_one("2026-01-03T10:00:00Z", "{'a':'\\u0001'}", &lim, &b), FW_EPARSE);
    ASSERT_STREQ(b.errors[0].msg, "14 bytes (as compact JSON) exceed the 13-byte limit");
    ingest_batch_cleanup(&b);
    lim.max_data = 89; /* bound 2 + 10 + 2 + 1 + 32 + 10 + 32 = 89: not measured; 41 bytes */
    ASSERT_EQ(parse_one("2026-01-03T10:00:00Z", "{'a':[true],'b':-1.5e-300}", &lim, &b), 0);
    ingest_batch_cleanup(&b);
}

static void engagement_fields(void)
{
    struct ingest_globals g = {.ctx = NULL, .is_global = is_global, .declared = declared};
    struct ingest_batch b;
    for (size_t i = 0; i < ARRAY_SIZE(eng_cases); i++) {
        int rc = parse_with(eng_cases[i].event, &g, &b);
        if (rc != FW_EPARSE || b.nerrors != 1) {
            ingest_batch_cleanup(&b);
            TEST__FAIL("case %zu (%s): rc %d, %zu errors", i, eng_cases[i].field, rc, b.nerrors);
        }
        ASSERT_EQ(b.n, 0);
        ASSERT_STREQ(b.errors[0].field, eng_cases[i].field);
        ASSERT_CONTAINS(b.errors[0].msg, eng_cases[i].msg);
        ingest_batch_cleanup(&b);
    }
    /* Good ones pass, with the declared names and the optional fields. */
    static const char *const good[] = {
        ENG("usage.reported", "{'metric':'data_mb','value':0,'date':'2024-02-29','period':'day'}"),
        ENG("usage.reported", "{'metric':'data_mb','value':812.5}"),
        ENG("feature.used", "{'feature':'anything'}"),
        ENG("onboarding.step_completed", "{'step':'activate_esim'}"),
        ENG("subscription.changed", "{'plan':'Basic','features':[]}"),
        ENG("subscription.changed", "{}"),
        ENG("sentiment.scored", "{'score':-1}"),
        ENG("portal.login", "{}"),
    };
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        ASSERT_EQ(parse_with(good[i], &g, &b), 0);
        ingest_batch_cleanup(&b);
    }
    /* Without a declared vocabulary any metric and step name is accepted (nothing keeps them). */
    g.ctx = &g;
    ASSERT_EQ(parse_with(ENG("usage.reported", "{'metric':'minutes','value':1}"), &g, &b), 0);
    ingest_batch_cleanup(&b);
    ASSERT_EQ(parse_with(ENG("onboarding.step_completed", "{'step':'install_app'}"), &g, &b), 0);
    ingest_batch_cleanup(&b);
    /* ... but a report without a count is still refused. */
    ASSERT_EQ(parse_with(ENG("usage.reported", "{'metric':'minutes'}"), &g, &b), FW_EPARSE);
    ASSERT_STREQ(b.errors[0].field, "data.value");
    ingest_batch_cleanup(&b);
    /* No callback at all (tools without rules): the static checks alone. */
    ASSERT_EQ(parse(ENG("usage.reported", "{'metric':'minutes','value':1}"), &b), 0);
    ingest_batch_cleanup(&b);
}

const struct test event_tests[] = {
    {"time_window_and_data_size", time_window_and_data_size},
    {"single_object", single_object},
    {"array", array},
    {"ndjson", ndjson},
    {"each_error", each_error},
    {"offset_time_utc", offset_time_utc},
    {"global_types", global_types},
    {"limits", limits},
    {"malformed", malformed},
    {"error_cap", error_cap},
    {"validate_direct", validate_direct},
    {"engagement_fields", engagement_fields},
    {NULL, NULL},
};
