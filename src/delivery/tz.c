/* SPDX-License-Identifier: MIT */
/* CustomTimeZone: TZif reader and POSIX TZ rules (see tz.h). */
#include "delivery/tz.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/mem.h"

/* A POSIX TZ rule date: Jn (1..365, no Feb 29), n (0..365) or Mm.w.d. */
typedef struct tz_date {
    char kind; /* 'J', 'N' or 'M' */
    int n;     /* J and N: the day number */
    int m, w, d;
    int32_t time_s; /* local time of day of the change; may be negative or > 24h */
} tz_date;

typedef struct tz_rule {
    int32_t std_off; /* seconds east */
    int has_dst;
    int32_t dst_off;
    tz_date start, end;
} tz_rule;

struct cp_tz {
    char *name;
    size_t ntrans;
    int64_t *trans;     /* transition instants, ascending */
    uint8_t *trans_idx; /* local time type after each transition */
    size_t ntypes;
    int32_t *type_off;
    int has_rule; /* the footer rule governs instants after the last transition */
    tz_rule rule;
};

static int32_t utc_off[1] = {0};
static const struct cp_tz utc_zone = {(char *) "UTC", 0, NULL, NULL, 1, utc_off, 0, {0}};

const cp_tz *cp_tz_utc(void)
{
    return &utc_zone;
}

const char *cp_tz_name(const cp_tz *tz)
{
    return tz->name;
}

void cp_tz_free(const cp_tz *tz)
{
    if (!tz || tz == &utc_zone) {
        return;
    }
    cp_tz *z = (cp_tz *) tz;
    cp_free(z->name);
    cp_free(z->trans);
    cp_free(z->trans_idx);
    cp_free(z->type_off);
    cp_free(z);
}

/* ------------------------------------------------------------------------------------------ */
/* Calendar                                                                                    */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Howard Hinnant's days_from_civil / civil_from_days: exact for the whole int64 range we use. */
int64_t cp_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void cp_civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = (int) (yoe + era * 400 + (*m <= 2));
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* ------------------------------------------------------------------------------------------ */
/* POSIX TZ rule (the TZif footer)                                                             */

/* Local day (days since epoch) a rule date falls on in year y. */
static int64_t rule_day(const tz_date *dt, int64_t y)
{
    int64_t jan1 = cp_days_from_civil(y, 1, 1);
    if (dt->kind == 'J') {
        /* Jn counts 1..365 and never names Feb 29. */
        return jan1 + dt->n - 1 + (is_leap(y) && dt->n >= 60);
    }
    if (dt->kind == 'N') {
        return jan1 + dt->n;
    }
    int64_t first = cp_days_from_civil(y, dt->m, 1);
    int wd0 = (int) (((first % 7) + 7 + 4) % 7); /* 0 = Sunday; 1970-01-01 was a Thursday */
    int64_t day = first + (dt->d - wd0 + 7) % 7 + 7 * (dt->w - 1);
    while (day >= first + month_days(y, dt->m)) {
        day -= 7; /* w = 5 means "last" */
    }
    return day;
}

static int32_t rule_offset(const tz_rule *r, int64_t t)
{
    if (!r->has_dst) {
        return r->std_off;
    }
    int y, m, d;
    cp_civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
    /* The change to DST happens at local standard time, the change back at local DST. */
    int64_t start = rule_day(&r->start, y) * 86400 + r->start.time_s - r->std_off;
    int64_t end = rule_day(&r->end, y) * 86400 + r->end.time_s - r->dst_off;
    int dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? r->dst_off : r->std_off;
}

static int parse_num(const char **p, int max, int *out)
{
    const char *s = *p;
    int v = 0, n = 0;
    while (*s >= '0' && *s <= '9' && n < 4) {
        v = v * 10 + (*s++ - '0');
        n++;
    }
    if (n == 0 || v > max) {
        return -1;
    }
    *p = s;
    *out = v;
    return 0;
}

/* [+-]hh[:mm[:ss]] into seconds (hours up to 167, RFC 8536's extension). */
static int parse_hms(const char **p, int32_t *out)
{
    int sign = 1, h = 0, m = 0, s = 0;
    if (**p == '+' || **p == '-') {
        sign = **p == '-' ? -1 : 1;
        (*p)++;
    }
    if (parse_num(p, 167, &h) < 0) {
        return -1;
    }
    if (**p == ':') {
        (*p)++;
        if (parse_num(p, 59, &m) < 0) {
            return -1;
        }
        if (**p == ':') {
            (*p)++;
            if (parse_num(p, 59, &s) < 0) {
                return -1;
            }
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return 0;
}

static int parse_tzname(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        const char *e = strchr(s, '>');
        if (!e || e - s < 4) {
            return -1;
        }
        *p = e + 1;
        return 0;
    }
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')) {
        s++;
    }
    if (s - *p < 3) {
        return -1;
    }
    *p = s;
    return 0;
}

static int parse_date(const char **p, tz_date *dt)
{
    dt->time_s = 7200; /* 02:00 unless given */
    if (**p == 'J') {
        (*p)++;
        dt->kind = 'J';
        if (parse_num(p, 365, &dt->n) < 0 || dt->n < 1) {
            return -1;
        }
    } else if (**p == 'M') {
        (*p)++;
        dt->kind = 'M';
        if (parse_num(p, 12, &dt->m) < 0 || dt->m < 1 || *(*p)++ != '.' ||
            parse_num(p, 5, &dt->w) < 0 || dt->w < 1 || *(*p)++ != '.' ||
            parse_num(p, 6, &dt->d) < 0) {
            return -1;
        }
    } else {
        dt->kind = 'N';
        if (parse_num(p, 365, &dt->n) < 0) {
            return -1;
        }
    }
    if (**p == '/') {
        (*p)++;
        return parse_hms(p, &dt->time_s);
    }
    return 0;
}

/* POSIX TZ string, e.g. "CET-1CEST,M3.5.0,M10.5.0/3" or "<+09>-9". Offsets in the string
 * count west of Greenwich; we store seconds east. */
static int parse_rule(const char *s, tz_rule *r)
{
    int32_t v;
    memset(r, 0, sizeof(*r));
    if (parse_tzname(&s) < 0 || parse_hms(&s, &v) < 0) {
        return -1;
    }
    r->std_off = -v;
    if (!*s) {
        return 0;
    }
    if (parse_tzname(&s) < 0) {
        return -1;
    }
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*s && *s != ',') {
        if (parse_hms(&s, &v) < 0) {
            return -1;
        }
        r->dst_off = -v;
    }
    if (!*s) {
        /* No rule given: POSIX leaves it to the implementation; the US rule is the usual one. */
        r->start = (tz_date){'M', 0, 3, 2, 0, 7200};
        r->end = (tz_date){'M', 0, 11, 1, 0, 7200};
        return 0;
    }
    if (*s++ != ',' || parse_date(&s, &r->start) < 0 || *s++ != ',' ||
        parse_date(&s, &r->end) < 0 || *s) {
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* TZif                                                                                        */

typedef struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
} tzif_counts;

static int read_header(cp_reader *rd, int *version, tzif_counts *c)
{
    cp_slice magic = cp_reader_take(rd, 4);
    uint8_t ver = cp_reader_u8(rd);
    cp_reader_take(rd, 15);
    uint32_t v[6];
    for (int i = 0; i < 6; i++) {
        cp_slice b = cp_reader_take(rd, 4);
        v[i] = rd->failed ? 0 : cp_load_u32be(b.p);
    }
    if (rd->failed || memcmp(magic.p, "TZif", 4) != 0) {
        return -1;
    }
    *version = ver == 0 ? 1 : ver - '0';
    *c = (tzif_counts){v[0], v[1], v[2], v[3], v[4], v[5]};
    if (c->type == 0 || c->type > 256 || c->time > 100000 || c->chars > 65536 || c->leap > 100000 ||
        (c->isut && c->isut != c->type) || (c->isstd && c->isstd != c->type)) {
        return -1;
    }
    return 0;
}

static size_t data_size(const tzif_counts *c, size_t tsize)
{
    return c->time * tsize + c->time + c->type * 6u + c->chars + c->leap * (tsize + 4) + c->isstd +
           c->isut;
}

static int parse_tzif(cp_slice file, cp_tz *z)
{
    cp_reader rd = cp_reader_of(file);
    int version;
    tzif_counts c;
    if (read_header(&rd, &version, &c) < 0) {
        return -1;
    }
    size_t tsize = 4;
    if (version >= 2) {
        /* Skip the 32-bit block: the 64-bit one after the second header covers all time. */
        cp_reader_take(&rd, data_size(&c, 4));
        if (rd.failed || read_header(&rd, &version, &c) < 0) {
            return -1;
        }
        tsize = 8;
    }
    if ((size_t) (rd.end - rd.p) < data_size(&c, tsize)) {
        return -1;
    }
    z->ntrans = c.time;
    z->trans = cp_malloc((c.time ? c.time : 1) * sizeof(int64_t));
    z->trans_idx = cp_malloc(c.time ? c.time : 1);
    z->ntypes = c.type;
    z->type_off = cp_malloc(c.type * sizeof(int32_t));
    for (uint32_t i = 0; i < c.time; i++) {
        cp_slice b = cp_reader_take(&rd, tsize);
        z->trans[i] = tsize == 8 ? (int64_t) cp_load_u64be(b.p) : (int32_t) cp_load_u32be(b.p);
        if (i && z->trans[i] <= z->trans[i - 1]) {
            return -1;
        }
    }
    for (uint32_t i = 0; i < c.time; i++) {
        z->trans_idx[i] = cp_reader_u8(&rd);
        if (z->trans_idx[i] >= c.type) {
            return -1;
        }
    }
    for (uint32_t i = 0; i < c.type; i++) {
        cp_slice b = cp_reader_take(&rd, 6);
        int32_t off = (int32_t) cp_load_u32be(b.p);
        if (off < -89999 || off > 93599) { /* RFC 8536: -25h < utoff < 26h */
            return -1;
        }
        z->type_off[i] = off;
    }
    cp_reader_take(&rd, c.chars + c.leap * (tsize + 4) + c.isstd + c.isut);
    if (rd.failed) {
        return -1;
    }
    if (version >= 2 && rd.p < rd.end && *rd.p == '\n') {
        const char *s = (const char *) rd.p + 1;
        const char *e = memchr(s, '\n', (size_t) ((const char *) rd.end - s));
        if (!e) {
            return -1;
        }
        if (e > s) {
            char rule[128];
            size_t n = (size_t) (e - s);
            if (n >= sizeof(rule)) {
                return -1;
            }
            memcpy(rule, s, n);
            rule[n] = 0;
            if (parse_rule(rule, &z->rule) < 0) {
                return -1;
            }
            z->has_rule = 1;
        }
    }
    return 0;
}

/* Zone ids are relative paths of [A-Za-z0-9_+-] components ("America/Argentina/Salta"); this
 * keeps a client-supplied name from ever leaving the zoneinfo directory. */
static int name_ok(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 255 || name[0] == '/') {
        return 0;
    }
    const char *comp = name;
    for (const char *p = name;; p++) {
        if (*p == '/' || *p == 0) {
            size_t n = (size_t) (p - comp);
            if (n == 0 || comp[0] == '.') {
                return 0;
            }
            if (*p == 0) {
                return 1;
            }
            comp = p + 1;
            continue;
        }
        char ch = *p;
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '+' || ch == '.')) {
            return 0;
        }
    }
}

static int read_file(const char *path, cp_buf *out, cp_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            return cp_err_set(err, CP_ENOTFOUND, "unknown time zone");
        }
        return cp_err_set(err, -errno, "cannot read the time zone database");
    }
    struct stat st;
    int rc = CP_OK;
    if (fstat(fd, &st) < 0) {
        rc = cp_err_set(err, -errno, "cannot read the time zone database");
    } else if (!S_ISREG(st.st_mode)) {
        rc = cp_err_set(err, CP_ENOTFOUND, "unknown time zone");
    } else if (st.st_size > (1 << 20)) {
        rc = cp_err_set(err, CP_ECORRUPT, "time zone file too large");
    } else {
        cp_buf_reserve(out, (size_t) st.st_size);
        while (rc == CP_OK) {
            ssize_t n = read(fd, out->p + out->len, out->cap - out->len);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                rc = cp_err_set(err, -errno, "cannot read the time zone database");
            } else if (n == 0) {
                break;
            } else {
                out->len += (size_t) n;
                if (out->len == out->cap) {
                    cp_buf_reserve(out, 4096);
                }
            }
        }
    }
    close(fd);
    return rc;
}

int cp_tz_load(const char *name, const char *dir, cp_tz **out, cp_err *err)
{
    *out = NULL;
    if (!name || !*name || strcmp(name, "UTC") == 0) {
        *out = (cp_tz *) &utc_zone;
        return CP_OK;
    }
    if (!name_ok(name)) {
        return cp_err_set(err, CP_EINVAL, "invalid time zone name");
    }
    cp_buf path = CP_BUF_INIT, file = CP_BUF_INIT;
    cp_buf_printf(&path, "%s/%s", dir ? dir : CP_TZ_DIR, name);
    int rc = read_file(path.p, &file, err);
    cp_buf_free(&path);
    if (rc != CP_OK) {
        cp_buf_free(&file);
        return rc;
    }
    cp_tz *z = cp_calloc(1, sizeof(*z));
    z->name = cp_strdup(name);
    if (parse_tzif(cp_buf_slice(&file), z) < 0) {
        cp_buf_free(&file);
        cp_tz_free(z);
        return cp_err_set(err, CP_ECORRUPT, "time zone file is not valid TZif");
    }
    cp_buf_free(&file);
    *out = z;
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Queries                                                                                     */

int32_t cp_tz_offset(const cp_tz *tz, int64_t t)
{
    if (tz->ntrans == 0) {
        return tz->has_rule ? rule_offset(&tz->rule, t) : tz->type_off[0];
    }
    if (t < tz->trans[0]) {
        /* RFC 8536: type 0 governs instants before the first transition. */
        return tz->type_off[0];
    }
    if (t >= tz->trans[tz->ntrans - 1] && tz->has_rule) {
        return rule_offset(&tz->rule, t);
    }
    size_t lo = 0, hi = tz->ntrans; /* last transition <= t lies in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return tz->type_off[tz->trans_idx[lo]];
}

void cp_tz_localtime(const cp_tz *tz, int64_t instant_ms, cp_tm *out)
{
    int64_t s = floor_div(instant_ms, 1000);
    out->ms = (int) (instant_ms - s * 1000);
    out->offset_s = cp_tz_offset(tz, s);
    int64_t ls = s + out->offset_s;
    int64_t days = floor_div(ls, 86400);
    int64_t sod = ls - days * 86400;
    cp_civil_from_days(days, &out->year, &out->month, &out->mday);
    out->hour = (int) (sod / 3600);
    out->min = (int) (sod / 60 % 60);
    out->sec = (int) (sod % 60);
    out->yday = (int) (days - cp_days_from_civil(out->year, 1, 1) + 1);
    out->wday = (int) (((days % 7) + 7 + 3) % 7) + 1;
    out->days = days;
}
