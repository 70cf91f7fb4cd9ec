/*
 * tz.c -- TZif reader and UTC <-> local conversion (RFC 8536).
 *
 * A zone is its transition table (seconds since the epoch, ascending, each
 * with the offset in effect from then on) plus, optionally, the POSIX TZ
 * rule from the file's footer that governs everything after the last
 * transition.  Instants before the first transition use local time type 0.
 * Everything here works in whole seconds: zone offsets and transitions are
 * whole seconds, so an instant in milliseconds has the offset of its floor
 * second.
 */
#include "util/tz.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fwtime.h"
#include "util/util.h"

#define TZ_DIR "/usr/share/zoneinfo/"
#define TZ_NAME_MAX 128
#define TZ_FILE_MAX (512 * 1024) /* the largest real zone file is under 4 KiB */
/* Offsets stay within a day or so; this window around a local time holds every
   instant that can show it. */
#define TZ_WINDOW (30 * 3600)

/* One date of a POSIX rule: Jn, n or Mm.w.d, plus the local time of day. */
struct rule_date {
    char kind;      /* 'J' (1-365, no Feb 29), 'D' (0-365), 'M' */
    int n, m, w, d; /* day (J/D); month, week 1-5, weekday 0=Sunday (M) */
    int secs;       /* local time of the change, may be negative or beyond 24h */
};

/* The footer: standard offset and, when the zone has DST, the rule for it. */
struct rule {
    int std_off, dst_off; /* seconds east */
    int has_dst;
    struct rule_date start, end; /* DST begins (in standard time), ends (in DST) */
};

struct tz {
    char *name;
    int64_t *trans; /* transition instants, seconds, ascending */
    int *trans_off; /* offset in effect from trans[i] on */
    size_t ntrans;
    int first_off; /* before the first transition (type 0) */
    int has_rule;
    struct rule rule;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int month_days(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* ---- POSIX TZ strings ("EST5EDT,M3.2.0,M11.1.0", "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0") ---- */

static const char *parse_abbr(const char *s)
{
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e && e - s >= 4 ? e + 1 : NULL;
    }
    const char *p = s;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* [+-]h[h[h]][:mm[:ss]] into seconds; hours up to max_h. */
static const char *parse_hms(const char *s, int max_h, int *out)
{
    int sign = 1, h = 0, m = 0, sec = 0, nd = 0;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    while (*s >= '0' && *s <= '9' && nd < 3)
        h = h * 10 + (*s++ - '0'), nd++;
    if (!nd || h > max_h)
        return NULL;
    for (int part = 0; part < 2 && *s == ':'; part++) {
        s++;
        if (s[0] < '0' || s[0] > '5' || s[1] < '0' || s[1] > '9')
            return NULL;
        int v = (s[0] - '0') * 10 + (s[1] - '0');
        s += 2;
        if (part == 0)
            m = v;
        else
            sec = v;
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return s;
}

static const char *parse_num(const char *s, int lo, int hi, int *out)
{
    int v = 0, nd = 0;
    while (*s >= '0' && *s <= '9' && nd < 4)
        v = v * 10 + (*s++ - '0'), nd++;
    if (!nd || v < lo || v > hi)
        return NULL;
    *out = v;
    return s;
}

static const char *parse_rule_date(const char *s, struct rule_date *r)
{
    memset(r, 0, sizeof *r);
    if (*s == 'J') {
        r->kind = 'J';
        s = parse_num(s + 1, 1, 365, &r->n);
    } else if (*s == 'M') {
        r->kind = 'M';
        s = parse_num(s + 1, 1, 12, &r->m);
        if (s && *s++ == '.')
            s = parse_num(s, 1, 5, &r->w);
        else
            s = NULL;
        if (s && *s++ == '.')
            s = parse_num(s, 0, 6, &r->d);
        else
            s = NULL;
    } else {
        r->kind = 'D';
        s = parse_num(s, 0, 365, &r->n);
    }
    if (!s)
        return NULL;
    r->secs = 2 * 3600;
    if (*s == '/') /* RFC 8536 allows -167..167 hours here */
        s = parse_hms(s + 1, 167, &r->secs);
    return s;
}

/* Returns 0, or -1 when the string is not a rule we understand. */
static int parse_rule(const char *s, struct rule *r)
{
    int west;
    memset(r, 0, sizeof *r);
    if (!(s = parse_abbr(s)) || !(s = parse_hms(s, 24, &west)))
        return -1;
    r->std_off = r->dst_off = -west;
    if (!*s)
        return 0;
    if (!(s = parse_abbr(s)))
        return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*s && *s != ',') {
        if (!(s = parse_hms(s, 24, &west)))
            return -1;
        r->dst_off = -west;
    }
    if (!*s) { /* no dates: POSIX leaves it to the implementation; glibc uses the US rule */
        r->start = (struct rule_date){.kind = 'M', .m = 3, .w = 2, .d = 0, .secs = 7200};
        r->end = (struct rule_date){.kind = 'M', .m = 11, .w = 1, .d = 0, .secs = 7200};
        return 0;
    }
    if (*s++ != ',' || !(s = parse_rule_date(s, &r->start)) || *s++ != ',' ||
        !(s = parse_rule_date(s, &r->end)) || *s)
        return -1;
    return 0;
}

/* Days since the epoch of a rule date in year y. */
static int64_t rule_day(const struct rule_date *r, int64_t y)
{
    int64_t jan1 = fw_days_from_civil(y, 1, 1);
    if (r->kind == 'J')
        return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60);
    if (r->kind == 'D')
        return jan1 + r->n;
    int64_t first = fw_days_from_civil(y, (unsigned)r->m, 1);
    int wday_first = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    int day = 1 + (r->d - wday_first + 7) % 7 + (r->w - 1) * 7;
    while (day > month_days(y, r->m))
        day -= 7;
    return first + day - 1;
}

/* DST start and end instants (seconds) of year y. */
static void rule_year(const struct rule *r, int64_t y, int64_t *start, int64_t *end)
{
    *start = rule_day(&r->start, y) * 86400 + r->start.secs - r->std_off;
    *end = rule_day(&r->end, y) * 86400 + r->end.secs - r->dst_off;
}

static int64_t year_of(int64_t secs)
{
    int64_t y;
    unsigned m, d;
    fw_civil_from_days(floor_div(secs, 86400), &y, &m, &d);
    return y;
}

static int rule_offset(const struct rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t s, e;
    rule_year(r, year_of(t + r->std_off), &s, &e);
    int dst = s < e ? (t >= s && t < e) : !(t >= e && t < s); /* southern zones wrap the year */
    return dst ? r->dst_off : r->std_off;
}

/* First instant > t at which the rule's offset changes, or INT64_MAX. */
static int64_t rule_next_change(const struct rule *r, int64_t t)
{
    if (!r->has_dst || r->std_off == r->dst_off)
        return INT64_MAX;
    int64_t y = year_of(t + r->std_off);
    /* Candidates from this year and the next two, tried in time order. */
    int64_t c[6];
    for (int i = 0; i < 3; i++)
        rule_year(r, y - 1 + i, &c[2 * i], &c[2 * i + 1]);
    for (;;) {
        int best = -1;
        for (int i = 0; i < 6; i++)
            if (c[i] > t && (best < 0 || c[i] < c[best]))
                best = i;
        if (best < 0)
            return INT64_MAX; /* e.g. DST all year written as two changes that cancel */
        if (rule_offset(r, c[best]) != rule_offset(r, c[best] - 1))
            return c[best];
        t = c[best];
    }
}

/* ---- the zone ---- */

static int offset_s(const struct tz *z, int64_t t)
{
    if (!z->ntrans)
        return z->has_rule ? rule_offset(&z->rule, t) : z->first_off;
    if (t < z->trans[0])
        return z->first_off;
    if (t >= z->trans[z->ntrans - 1])
        return z->has_rule ? rule_offset(&z->rule, t) : z->trans_off[z->ntrans - 1];
    size_t lo = 0, hi = z->ntrans - 1; /* trans[lo] <= t < trans[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->trans_off[lo];
}

static int64_t next_change_s(const struct tz *z, int64_t t)
{
    size_t lo = 0, hi = z->ntrans; /* first transition > t */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < z->ntrans; i++) {
        int before = i ? z->trans_off[i - 1] : z->first_off;
        if (z->trans_off[i] != before)
            return z->trans[i];
    }
    if (!z->has_rule)
        return INT64_MAX;
    /* The footer governs from the last transition on (it agrees with that entry). */
    int64_t from = z->ntrans && z->trans[z->ntrans - 1] > t ? z->trans[z->ntrans - 1] : t;
    return rule_next_change(&z->rule, from);
}

static int64_t local_to_utc_s(const struct tz *z, int64_t local)
{
    int64_t cur = local - TZ_WINDOW;
    int off = offset_s(z, cur);
    /* Walk the offset segments from before the earliest instant that could
       show `local`: the first segment that shows it is the first occurrence;
       a change that jumps over it is a gap. */
    for (int guard = 0; guard < 64; guard++) {
        int64_t next = next_change_s(z, cur);
        int64_t u = local - off;
        if (u >= cur && u < next)
            return u;
        if (next == INT64_MAX || next > local + TZ_WINDOW)
            break;
        int off2 = offset_s(z, next);
        if (off2 > off && next + off <= local && local < next + off2)
            return next;
        cur = next;
        off = off2;
    }
    return local - off; /* not reached with real zones */
}

const char *tz_name(const struct tz *z) { return z->name; }

int tz_offset(const struct tz *z, int64_t utc_ms) { return offset_s(z, floor_div(utc_ms, 1000)); }

int64_t tz_next_change(const struct tz *z, int64_t utc_ms)
{
    int64_t t = next_change_s(z, floor_div(utc_ms, 1000));
    return t >= INT64_MAX / 1000 ? INT64_MAX : t * 1000;
}

int64_t tz_local_day_to_utc(const struct tz *z, int64_t day, int minute_of_day)
{
    return local_to_utc_s(z, day * 86400 + (int64_t)minute_of_day * 60) * 1000;
}

int64_t tz_local_to_utc(const struct tz *z, int y, int mon, int d, int minute_of_day)
{
    return tz_local_day_to_utc(z, fw_days_from_civil(y, (unsigned)mon, (unsigned)d), minute_of_day);
}

void tz_free(struct tz *z)
{
    if (!z)
        return;
    free(z->name);
    free(z->trans);
    free(z->trans_off);
    free(z);
}

/* ---- reading TZif ---- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The six counts of a TZif header at p (which has at least 44 bytes). */
struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chr;
};

static void read_counts(const unsigned char *p, struct tzif_counts *c)
{
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chr = be32(p + 40);
}

static size_t block_len(const struct tzif_counts *c, size_t tsize)
{
    return (size_t)c->time * tsize + c->time + (size_t)c->type * 6 + c->chr +
           (size_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

/* Parse a whole TZif image into z; returns a static reason or NULL. */
static const char *parse_tzif(struct tz *z, const unsigned char *p, size_t n)
{
    struct tzif_counts c;
    if (n < 44 || memcmp(p, "TZif", 4))
        return "not a TZif file";
    int version = p[4] ? p[4] - '0' : 1;
    read_counts(p, &c);
    if (c.time > 100000 || c.type > 256 || c.chr > 65536 || c.leap > 10000 || c.isut > 256 ||
        c.isstd > 256)
        return "implausible TZif header";
    size_t tsize = 4, off = 44;
    if (version >= 2) { /* skip the 32-bit block to the 64-bit one */
        off += block_len(&c, 4);
        if (n < off + 44 || memcmp(p + off, "TZif", 4))
            return "truncated TZif file";
        read_counts(p + off, &c);
        if (c.time > 100000 || c.type > 256 || c.chr > 65536 || c.leap > 10000 || c.isut > 256 ||
            c.isstd > 256)
            return "implausible TZif header";
        off += 44;
        tsize = 8;
    }
    if (c.type == 0 || n < off + block_len(&c, tsize))
        return "truncated TZif file";
    if (c.leap)
        return "leap-second zone files (right/...) are not supported";
    const unsigned char *times = p + off, *idx = times + (size_t)c.time * tsize,
                        *types = idx + c.time;
    z->ntrans = c.time;
    z->trans = xmalloc((c.time ? c.time : 1) * sizeof *z->trans);
    z->trans_off = xmalloc((c.time ? c.time : 1) * sizeof *z->trans_off);
    for (uint32_t i = 0; i < c.time; i++) {
        z->trans[i] = tsize == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
        if (i && z->trans[i] <= z->trans[i - 1])
            return "TZif transitions out of order";
        if (idx[i] >= c.type)
            return "TZif transition names a missing type";
        int32_t o = (int32_t)be32(types + 6 * idx[i]);
        if (o < -89999 || o > 93599) /* RFC 8536: -25:59:59 .. 25:59:59 */
            return "TZif offset out of range";
        z->trans_off[i] = o;
    }
    z->first_off = (int32_t)be32(types);
    if (z->first_off < -89999 || z->first_off > 93599)
        return "TZif offset out of range";
    off += block_len(&c, tsize);
    if (version >= 2 && off < n && p[off] == '\n') {
        const unsigned char *nl = memchr(p + off + 1, '\n', n - off - 1);
        if (!nl)
            return "TZif footer is not terminated";
        size_t flen = (size_t)(nl - (p + off + 1));
        if (flen > 0) {
            char footer[256];
            if (flen >= sizeof footer)
                return "TZif footer too long";
            memcpy(footer, p + off + 1, flen);
            footer[flen] = '\0';
            if (parse_rule(footer, &z->rule))
                return "TZif footer is not a POSIX TZ rule";
            z->has_rule = 1;
        }
    }
    return NULL;
}

static int name_ok(const char *name)
{
    size_t n = strlen(name);
    if (!n || n > TZ_NAME_MAX || name[0] == '/' || strstr(name, ".."))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '+' || ch == '/' || ch == '-'))
            return 0;
    }
    return 1;
}

struct tz *tz_load_file(const char *name, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR)
            seterr(err, errlen, "unknown time zone '%s'", name);
        else
            seterr(err, errlen, "time zone '%s': %s: %s", name, path, strerror(errno));
        return NULL;
    }
    unsigned char *data = xmalloc(TZ_FILE_MAX);
    size_t n = fread(data, 1, TZ_FILE_MAX, f);
    int bad_read = ferror(f), too_big = n == TZ_FILE_MAX && fgetc(f) != EOF;
    fclose(f);
    struct tz *z = xcalloc(1, sizeof *z);
    z->name = xstrdup(name);
    const char *why = bad_read  ? "cannot read it (a directory?)"
                      : too_big ? "the file is too large"
                                : parse_tzif(z, data, n);
    free(data);
    if (why) {
        /* A directory such as "America" reads as an error: it is not a zone. */
        seterr(err, errlen, "time zone '%s': %s", name, why);
        tz_free(z);
        return NULL;
    }
    return z;
}

struct tz *tz_load(const char *name, char *err, size_t errlen)
{
    if (!name || !name_ok(name)) {
        seterr(err, errlen,
               "invalid time zone name '%s' (expected a tz database name such as "
               "America/New_York)",
               name ? name : "");
        return NULL;
    }
    char path[sizeof TZ_DIR + TZ_NAME_MAX];
    snprintf(path, sizeof path, "%s%s", TZ_DIR, name);
    if (!strcmp(name, "UTC") || !strcmp(name, "Etc/UTC")) {
        FILE *f = fopen(path, "rb");
        if (!f) { /* no tzdata: UTC needs none */
            struct tz *z = xcalloc(1, sizeof *z);
            z->name = xstrdup(name);
            return z;
        }
        fclose(f);
    }
    return tz_load_file(name, path, err, errlen);
}
