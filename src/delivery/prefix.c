/* SPDX-License-Identifier: MIT */
/* Prefix templates: compile, evaluate, object keys (see prefix.h). */
#include "delivery/prefix.h"

#include <stdio.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"

enum { SEG_LIT, SEG_TS, SEG_RANDOM, SEG_ERRTYPE, SEG_KEY };

/* One element of a compiled timestamp pattern: a run of a pattern letter, or literal text. */
typedef struct ts_item {
    char letter;   /* 0 for literal text */
    uint8_t count; /* run length of the letter */
    uint32_t off;  /* literal: bytes in the pool */
    uint32_t len;
} ts_item;

typedef struct seg {
    uint8_t kind;
    uint8_t ns;   /* SEG_KEY: cp_prefix_ns */
    uint32_t off; /* SEG_LIT: text in the pool; SEG_KEY: NUL-terminated name in the pool */
    uint32_t len;
    uint32_t first, n; /* SEG_TS: items[first .. first+n) */
} seg;

typedef struct pkey {
    uint8_t ns;
    uint32_t off; /* name in the pool */
} pkey;

struct cp_prefix {
    char *tmpl; /* effective template */
    cp_buf pool;
    seg *segs;
    size_t nsegs, capsegs;
    ts_item *items;
    size_t nitems, capitems;
    pkey *keys;
    size_t nkeys, capkeys;
    unsigned flags;
};

/* ------------------------------------------------------------------------------------------ */
/* Compilation                                                                                 */

static uint32_t pool_add(cp_prefix *p, const char *s, size_t n, int nul)
{
    uint32_t off = (uint32_t) p->pool.len;
    cp_buf_append(&p->pool, s, n);
    if (nul) {
        cp_buf_putc(&p->pool, 0);
    }
    return off;
}

static seg *seg_add(cp_prefix *p, int kind)
{
    if (p->nsegs == p->capsegs) {
        p->capsegs = p->capsegs ? p->capsegs * 2 : 8;
        p->segs = cp_realloc(p->segs, p->capsegs * sizeof(*p->segs));
    }
    seg *s = &p->segs[p->nsegs++];
    memset(s, 0, sizeof(*s));
    s->kind = (uint8_t) kind;
    return s;
}

static void item_add(cp_prefix *p, char letter, int count, const char *lit, size_t len)
{
    if (p->nitems == p->capitems) {
        p->capitems = p->capitems ? p->capitems * 2 : 16;
        p->items = cp_realloc(p->items, p->capitems * sizeof(*p->items));
    }
    ts_item *it = &p->items[p->nitems++];
    it->letter = letter;
    it->count = (uint8_t) count;
    it->off = lit ? pool_add(p, lit, len, 0) : 0;
    it->len = (uint32_t) len;
}

/* Java DateTimeFormatter pattern letters and the run lengths ofPattern() accepts for each.
 * Letters Java knows but changepipe does not render (zone names, day periods) are refused the
 * same way as unknown ones: at create time, never as wrong text in a key. */
static int letter_max(char c)
{
    switch (c) {
    case 'G':
    case 'Q':
    case 'q':
    case 'M':
    case 'L':
    case 'E':
    case 'e':
    case 'c':
    case 'Z':
    case 'X':
    case 'x':
        return 5;
    case 'y':
    case 'u':
    case 'Y':
    case 'A':
    case 'n':
    case 'N':
        return 19;
    case 'd':
    case 'h':
    case 'H':
    case 'k':
    case 'K':
    case 'm':
    case 's':
    case 'w':
        return 2;
    case 'D':
        return 3;
    case 'S':
        return 9;
    case 'W':
    case 'a':
        return 1;
    default:
        return 0;
    }
}

static int compile_timestamp(cp_prefix *p, const char *v, size_t len, cp_err *err)
{
    int depth = 0;
    size_t i = 0;
    while (i < len) {
        char c = v[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            size_t j = i;
            while (j < len && v[j] == c) {
                j++;
            }
            int count = (int) (j - i), max = letter_max(c);
            if (max == 0) {
                if (strchr("VzOvBg", c)) {
                    return cp_err_set(err, CP_EINVAL,
                                      "pattern letter '%c' in !{timestamp:%.*s} is not supported",
                                      c, (int) len, v);
                }
                return cp_err_set(err, CP_EINVAL, "Unknown pattern letter: %c in !{timestamp:%.*s}",
                                  c, (int) len, v);
            }
            if (count > max || (c == 'c' && count == 2)) {
                return cp_err_set(err, CP_EINVAL,
                                  "Too many pattern letters: %c in !{timestamp:%.*s}", c, (int) len,
                                  v);
            }
            item_add(p, c, count, NULL, 0);
            i = j;
        } else if (c == '\'') {
            /* 'text' is literal, '' is one quote, inside or outside a quoted run. */
            size_t j = i + 1;
            cp_buf lit = CP_BUF_INIT;
            for (;;) {
                if (j >= len) {
                    cp_buf_free(&lit);
                    return cp_err_set(err, CP_EINVAL,
                                      "Pattern ends with an incomplete string literal: "
                                      "!{timestamp:%.*s}",
                                      (int) len, v);
                }
                if (v[j] == '\'') {
                    if (j + 1 < len && v[j + 1] == '\'') {
                        cp_buf_putc(&lit, '\'');
                        j += 2;
                        continue;
                    }
                    break;
                }
                cp_buf_putc(&lit, v[j++]);
            }
            if (j == i + 1) {
                cp_buf_putc(&lit, '\''); /* '' outside a quoted run */
            }
            item_add(p, 0, 0, lit.p, lit.len);
            cp_buf_free(&lit);
            i = j + 1;
        } else if (c == '[') {
            depth++; /* optional section: every field is available, so it always prints */
            i++;
        } else if (c == ']') {
            if (--depth < 0) {
                return cp_err_set(err, CP_EINVAL,
                                  "Pattern invalid as it contains ] without previous [: "
                                  "!{timestamp:%.*s}",
                                  (int) len, v);
            }
            i++;
        } else if (c == '#' || c == '{' || c == '}') {
            return cp_err_set(err, CP_EINVAL, "Pattern includes reserved character: '%c'", c);
        } else {
            size_t j = i;
            /* memchr, not strchr: a NUL in the pattern is literal text, not a terminator. */
            while (j < len && !((v[j] >= 'a' && v[j] <= 'z') || (v[j] >= 'A' && v[j] <= 'Z')) &&
                   !memchr("'[]#{}", v[j], 6)) {
                j++;
            }
            item_add(p, 0, 0, v + i, j - i);
            i = j;
        }
    }
    return CP_OK;
}

static void key_ref(cp_prefix *p, int ns, const char *name, size_t len, uint32_t *off)
{
    for (size_t i = 0; i < p->nkeys; i++) {
        const char *k = p->pool.p + p->keys[i].off;
        if (p->keys[i].ns == ns && strlen(k) == len && memcmp(k, name, len) == 0) {
            *off = p->keys[i].off;
            return;
        }
    }
    if (p->nkeys == p->capkeys) {
        p->capkeys = p->capkeys ? p->capkeys * 2 : 4;
        p->keys = cp_realloc(p->keys, p->capkeys * sizeof(*p->keys));
    }
    *off = pool_add(p, name, len, 1);
    p->keys[p->nkeys++] = (pkey){(uint8_t) ns, *off};
}

static int slice_is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static int compile_expr(cp_prefix *p, const char *ns, size_t nslen, const char *v, size_t vlen,
                        cp_err *err)
{
    p->flags |= CP_PREFIX_HAS_EXPR;
    if (slice_is(ns, nslen, "timestamp")) {
        seg *s = seg_add(p, SEG_TS);
        size_t first = p->nitems;
        int rc = compile_timestamp(p, v, vlen, err);
        s = &p->segs[p->nsegs - 1]; /* seg_add may not move, but items may: re-fetch anyway */
        s->first = (uint32_t) first;
        s->n = (uint32_t) (p->nitems - first);
        p->flags |= CP_PREFIX_USES_TIMESTAMP;
        return rc;
    }
    if (slice_is(ns, nslen, "firehose")) {
        if (slice_is(v, vlen, "random-string")) {
            seg_add(p, SEG_RANDOM);
            p->flags |= CP_PREFIX_USES_RANDOM;
            return CP_OK;
        }
        if (slice_is(v, vlen, "error-output-type")) {
            seg_add(p, SEG_ERRTYPE);
            p->flags |= CP_PREFIX_USES_ERRTYPE;
            return CP_OK;
        }
        return cp_err_set(err, CP_EINVAL,
                          "!{firehose:%.*s} is not valid: the firehose namespace takes "
                          "random-string or error-output-type",
                          (int) vlen, v);
    }
    int q = slice_is(ns, nslen, "partitionKeyFromQuery");
    if (q || slice_is(ns, nslen, "partitionKeyFromLambda")) {
        seg *s = seg_add(p, SEG_KEY);
        s->ns = (uint8_t) (q ? CP_PREFIX_NS_QUERY : CP_PREFIX_NS_LAMBDA);
        uint32_t off;
        key_ref(p, s->ns, v, vlen, &off);
        s = &p->segs[p->nsegs - 1];
        s->off = off;
        s->len = (uint32_t) vlen;
        p->flags |= q ? CP_PREFIX_USES_QUERY : CP_PREFIX_USES_LAMBDA;
        return CP_OK;
    }
    return cp_err_set(err, CP_EINVAL,
                      "!{%.*s:%.*s} has an unknown namespace; valid namespaces are firehose, "
                      "timestamp, partitionKeyFromQuery and partitionKeyFromLambda",
                      (int) nslen, ns, (int) vlen, v);
}

static int compile_into(cp_prefix *p, cp_slice t, cp_err *err)
{
    size_t i = 0;
    while (i < t.len) {
        const char *open = NULL;
        for (size_t j = i; j + 1 < t.len; j++) {
            if (t.p[j] == '!' && t.p[j + 1] == '{') {
                open = t.p + j;
                break;
            }
        }
        size_t litend = open ? (size_t) (open - t.p) : t.len;
        if (litend > i) {
            seg *s = seg_add(p, SEG_LIT);
            s->off = pool_add(p, t.p + i, litend - i, 0);
            s->len = (uint32_t) (litend - i);
        }
        if (!open) {
            break;
        }
        /* !{namespace:value}: the namespace ends at the first ':', the value at the first '}',
         * and neither may hold '{' or '}'. */
        size_t ns = litend + 2, colon = 0, close = 0;
        for (size_t j = ns; j < t.len; j++) {
            if (t.p[j] == '{') {
                break;
            }
            if (t.p[j] == '}') {
                close = j;
                break;
            }
            if (t.p[j] == ':' && !colon) {
                colon = j;
            }
        }
        if (!close || !colon || colon == ns || colon + 1 == close) {
            return cp_err_set(err, CP_EINVAL,
                              "the sequence !{ at character %zu does not start a "
                              "!{namespace:value} expression",
                              litend + 1);
        }
        int rc = compile_expr(p, t.p + ns, colon - ns, t.p + colon + 1, close - colon - 1, err);
        if (rc != CP_OK) {
            return rc;
        }
        i = close + 1;
    }
    return CP_OK;
}

static int compile_text(const char *text, size_t len, cp_prefix **out, cp_err *err)
{
    cp_prefix *p = cp_calloc(1, sizeof(*p));
    p->tmpl = cp_strndup(text, len);
    int rc = compile_into(p, cp_slice_of(p->tmpl, len), err);
    if (rc != CP_OK) {
        cp_prefix_free(p);
        *out = NULL;
        return rc;
    }
    *out = p;
    return CP_OK;
}

int cp_prefix_compile(cp_slice tmpl, cp_prefix **out, cp_err *err)
{
    return compile_text(tmpl.p ? tmpl.p : "", tmpl.len, out, err);
}

static int has_expr(const char *s)
{
    return s && strstr(s, "!{") != NULL;
}

int cp_prefix_compile_data(const char *prefix, cp_prefix **out, cp_err *err)
{
    if (has_expr(prefix)) {
        return compile_text(prefix, strlen(prefix), out, err);
    }
    /* Absent, empty or static: Firehose appends the hourly time part with no '/' in between
     * (a live capture shows "legacy" -> "legacy2026/07/13/14/", firehose.md 2.5). */
    cp_buf t = CP_BUF_INIT;
    cp_buf_printf(&t, "%s%s", prefix ? prefix : "", CP_PREFIX_DEFAULT_TIME);
    int rc = compile_text(t.p, t.len, out, err);
    cp_buf_free(&t);
    return rc;
}

int cp_prefix_compile_error(const char *error_prefix, const char *prefix, cp_prefix **out,
                            cp_err *err)
{
    if (has_expr(error_prefix)) {
        return compile_text(error_prefix, strlen(error_prefix), out, err);
    }
    cp_buf t = CP_BUF_INIT;
    if (error_prefix && *error_prefix) {
        /* A static ErrorOutputPrefix still sorts errors into folders by type, as the article
         * observed on AWS ("hahaha-error" -> one folder per error-output-type). */
        cp_buf_printf(&t, "%s!{firehose:error-output-type}/%s", error_prefix,
                      CP_PREFIX_DEFAULT_TIME);
    } else if (has_expr(prefix)) {
        *out = NULL;
        return cp_err_set(err, CP_EINVAL,
                          "ErrorOutputPrefix cannot be null or empty when Prefix contains "
                          "expressions");
    } else {
        cp_buf_printf(&t, "%s!{firehose:error-output-type}/%s", prefix ? prefix : "",
                      CP_PREFIX_DEFAULT_TIME);
    }
    int rc = compile_text(t.p, t.len, out, err);
    cp_buf_free(&t);
    return rc;
}

void cp_prefix_free(cp_prefix *p)
{
    if (!p) {
        return;
    }
    cp_free(p->tmpl);
    cp_buf_free(&p->pool);
    cp_free(p->segs);
    cp_free(p->items);
    cp_free(p->keys);
    cp_free(p);
}

const char *cp_prefix_text(const cp_prefix *p)
{
    return p->tmpl;
}

unsigned cp_prefix_flags(const cp_prefix *p)
{
    return p->flags;
}

size_t cp_prefix_nkeys(const cp_prefix *p)
{
    return p->nkeys;
}

void cp_prefix_key(const cp_prefix *p, size_t i, cp_prefix_ns *ns, const char **name)
{
    *ns = (cp_prefix_ns) p->keys[i].ns;
    *name = p->pool.p + p->keys[i].off;
}

/* ------------------------------------------------------------------------------------------ */
/* Timestamp rendering (Java DateTimeFormatter with Locale.US, firehose.md 2.3)                */

static const char *const month_names[12] = {"January",   "February", "March",    "April",
                                            "May",       "June",     "July",     "August",
                                            "September", "October",  "November", "December"};
static const char *const day_names[7] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                         "Friday", "Saturday", "Sunday"};

/* Decimal with at least `width` digits; `plus` prints '+' when the digits exceed the width
 * (Java's SignStyle.EXCEEDS_PAD for 4+ letter years). */
static void put_num(cp_buf *out, int64_t v, int width, int plus)
{
    char tmp[32];
    int neg = v < 0;
    uint64_t u = neg ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;
    int n = 0;
    do {
        tmp[n++] = (char) ('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg) {
        cp_buf_putc(out, '-');
    } else if (plus && n > width) {
        cp_buf_putc(out, '+');
    }
    for (int i = n; i < width; i++) {
        cp_buf_putc(out, '0');
    }
    while (n) {
        cp_buf_putc(out, tmp[--n]);
    }
}

static void put_text(cp_buf *out, const char *full, int count)
{
    if (count == 4) {
        cp_buf_puts(out, full);
    } else if (count == 5) {
        cp_buf_putc(out, full[0]); /* narrow */
    } else {
        cp_buf_append(out, full, 3);
    }
}

/* Localized (Locale.US) day of week: Sunday = 1 .. Saturday = 7. */
static int us_dow(int iso_wday)
{
    return iso_wday % 7 + 1;
}

static int us_dow_days(int64_t days)
{
    return us_dow((int) (((days % 7) + 7 + 3) % 7) + 1);
}

/* WeekFields.of(Locale.US): weeks start on Sunday and week 1 is the one holding January 1. */
static void us_week(const cp_tm *tm, int64_t *week_year, int *week)
{
    int64_t start = tm->days - (us_dow(tm->wday) - 1);
    if (start + 6 >= cp_days_from_civil(tm->year + 1, 1, 1)) {
        *week_year = tm->year + 1;
        *week = 1;
        return;
    }
    int64_t jan1 = cp_days_from_civil(tm->year, 1, 1);
    int64_t first = jan1 - (us_dow_days(jan1) - 1);
    *week_year = tm->year;
    *week = (int) ((start - first) / 7 + 1);
}

static void put_offset(cp_buf *out, int32_t off, const char *pattern, const char *zero)
{
    if (off == 0 && zero) {
        cp_buf_puts(out, zero);
        return;
    }
    int a = off < 0 ? -off : off;
    int h = a / 3600, m = a / 60 % 60, s = a % 60;
    cp_buf_putc(out, off < 0 ? '-' : '+');
    put_num(out, h, 2, 0);
    int colon = strchr(pattern, ':') != NULL;
    /* "+HHmm" and "+HHMMss": the lower-case part only when non-zero. */
    if (strcmp(pattern, "+HH") == 0 || (strcmp(pattern, "+HHmm") == 0 && m == 0)) {
        return;
    }
    if (colon) {
        cp_buf_putc(out, ':');
    }
    put_num(out, m, 2, 0);
    if ((strstr(pattern, "ss") && s) || strstr(pattern, "SS")) {
        if (colon) {
            cp_buf_putc(out, ':');
        }
        put_num(out, s, 2, 0);
    }
}

static void render_item(cp_buf *out, const cp_prefix *p, const ts_item *it, const cp_tm *tm)
{
    int n = it->count;
    switch (it->letter) {
    case 0:
        cp_buf_append(out, p->pool.p + it->off, it->len);
        break;
    case 'G':
        cp_buf_puts(out, n == 4 ? "Anno Domini" : n == 5 ? "A" : "AD");
        break;
    case 'y':
    case 'u':
        if (n == 2) {
            put_num(out, ((tm->year % 100) + 100) % 100, 2, 0);
        } else {
            put_num(out, tm->year, n, n >= 4);
        }
        break;
    case 'Y': {
        int64_t wy;
        int w;
        us_week(tm, &wy, &w);
        if (n == 2) {
            put_num(out, ((wy % 100) + 100) % 100, 2, 0);
        } else {
            put_num(out, wy, n, n >= 4);
        }
        break;
    }
    case 'Q':
    case 'q': {
        int q = (tm->month - 1) / 3 + 1;
        static const char *const qfull[4] = {"1st quarter", "2nd quarter", "3rd quarter",
                                             "4th quarter"};
        if (n <= 2) {
            put_num(out, q, n, 0);
        } else if (n == 3) {
            cp_buf_printf(out, "Q%d", q);
        } else if (n == 4) {
            cp_buf_puts(out, qfull[q - 1]);
        } else {
            put_num(out, q, 1, 0);
        }
        break;
    }
    case 'M':
    case 'L':
        if (n <= 2) {
            put_num(out, tm->month, n, 0);
        } else {
            put_text(out, month_names[tm->month - 1], n);
        }
        break;
    case 'w':
    case 'W': {
        int64_t wy;
        int w;
        if (it->letter == 'w') {
            us_week(tm, &wy, &w);
        } else {
            int64_t first = tm->days - (tm->mday - 1);
            w = (tm->mday - 1 + us_dow_days(first) - 1) / 7 + 1;
        }
        put_num(out, w, n, 0);
        break;
    }
    case 'E':
        put_text(out, day_names[tm->wday - 1], n < 4 ? 3 : n);
        break;
    case 'e':
    case 'c':
        if (n <= 2) {
            put_num(out, us_dow(tm->wday), n, 0);
        } else {
            put_text(out, day_names[tm->wday - 1], n);
        }
        break;
    case 'd':
        put_num(out, tm->mday, n, 0);
        break;
    case 'D':
        put_num(out, tm->yday, n, 0);
        break;
    case 'a':
        cp_buf_puts(out, tm->hour < 12 ? "AM" : "PM");
        break;
    case 'h':
        put_num(out, tm->hour % 12 == 0 ? 12 : tm->hour % 12, n, 0);
        break;
    case 'K':
        put_num(out, tm->hour % 12, n, 0);
        break;
    case 'k':
        put_num(out, tm->hour == 0 ? 24 : tm->hour, n, 0);
        break;
    case 'H':
        put_num(out, tm->hour, n, 0);
        break;
    case 'm':
        put_num(out, tm->min, n, 0);
        break;
    case 's':
        put_num(out, tm->sec, n, 0);
        break;
    case 'S': {
        char frac[10];
        snprintf(frac, sizeof(frac), "%03d000000", tm->ms);
        cp_buf_append(out, frac, (size_t) n); /* truncated, never rounded */
        break;
    }
    case 'A':
        put_num(out, ((int64_t) tm->hour * 3600 + tm->min * 60 + tm->sec) * 1000 + tm->ms, n, 0);
        break;
    case 'n':
        put_num(out, (int64_t) tm->ms * 1000000, n, 0);
        break;
    case 'N':
        put_num(out,
                (((int64_t) tm->hour * 3600 + tm->min * 60 + tm->sec) * 1000 + tm->ms) * 1000000, n,
                0);
        break;
    case 'Z':
        if (n <= 3) {
            put_offset(out, tm->offset_s, "+HHMM", NULL);
        } else if (n == 4) {
            cp_buf_puts(out, "GMT");
            if (tm->offset_s) {
                put_offset(out, tm->offset_s, "+HH:MM:ss", NULL);
            }
        } else {
            put_offset(out, tm->offset_s, "+HH:MM:ss", "Z");
        }
        break;
    case 'X':
    case 'x': {
        static const char *const pat[5] = {"+HHmm", "+HHMM", "+HH:MM", "+HHMMss", "+HH:MM:ss"};
        static const char *const zx[5] = {"+00", "+0000", "+00:00", "+0000", "+00:00"};
        put_offset(out, tm->offset_s, pat[n - 1], it->letter == 'X' ? "Z" : zx[n - 1]);
        break;
    }
    default:
        break;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Evaluation                                                                                  */

static int find_key(const cp_drec *rec, int ns, const char *name, size_t len, cp_slice *value)
{
    if (!rec) {
        return 0;
    }
    const cp_pkey *keys = ns == CP_PREFIX_NS_QUERY ? rec->query_keys : rec->lambda_keys;
    size_t n = ns == CP_PREFIX_NS_QUERY ? rec->nquery_keys : rec->nlambda_keys;
    for (size_t i = 0; i < n; i++) {
        if (cp_slice_eq(keys[i].name, cp_slice_of(name, len))) {
            *value = keys[i].value;
            return 1;
        }
    }
    return 0;
}

static void random_string(uint64_t seed, uint32_t k, cp_buf *out)
{
    unsigned char in[12], md[16];
    char hex[33];
    cp_store_u64le(in, seed);
    cp_store_u32le(in + 8, k);
    cp_md5(in, sizeof(in), md);
    cp_hex(md, 16, hex);
    /* The shape of AWS's examples ("046b6c7f-0b"): the first 11 characters of a UUID. */
    cp_buf_append(out, hex, 8);
    cp_buf_putc(out, '-');
    cp_buf_append(out, hex + 8, 2);
}

static size_t utf8_chars(const char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c += ((unsigned char) p[i] & 0xC0) != 0x80;
    }
    return c;
}

int cp_prefix_eval(const cp_prefix *p, const cp_prefix_vars *v, cp_buf *out, cp_err *err)
{
    size_t start = out->len;
    cp_tm tm;
    int have_tm = 0;
    uint32_t nrandom = 0;
    int rc = CP_OK;
    for (size_t i = 0; i < p->nsegs && rc == CP_OK; i++) {
        const seg *s = &p->segs[i];
        switch (s->kind) {
        case SEG_LIT:
            cp_buf_append(out, p->pool.p + s->off, s->len);
            break;
        case SEG_TS:
            /* Every timestamp expression of one template renders the same instant. */
            if (!have_tm) {
                cp_tz_localtime(v->tz ? v->tz : cp_tz_utc(), v->instant_ms, &tm);
                have_tm = 1;
            }
            for (uint32_t j = 0; j < s->n; j++) {
                render_item(out, p, &p->items[s->first + j], &tm);
            }
            break;
        case SEG_RANDOM:
            random_string(v->random_seed, nrandom++, out);
            break;
        case SEG_ERRTYPE:
            if (!v->error_type) {
                rc = cp_err_set(err, CP_EINVAL,
                                "!{firehose:error-output-type} needs an error output type");
            } else {
                cp_buf_puts(out, v->error_type);
            }
            break;
        case SEG_KEY: {
            const char *name = p->pool.p + s->off;
            cp_slice val;
            if (!find_key(v->rec, s->ns, name, s->len, &val)) {
                rc = cp_err_set(err, CP_EINVAL,
                                "partitionKeys do not contain the key %s used by %s", name,
                                s->ns == CP_PREFIX_NS_QUERY ? "partitionKeyFromQuery"
                                                            : "partitionKeyFromLambda");
            } else if (val.len == 0) {
                rc = cp_err_set(err, CP_EINVAL, "partitionKeys values must not be null or empty");
            } else {
                cp_buf_append(out, val.p, val.len);
            }
            break;
        }
        default:
            break;
        }
    }
    if (rc == CP_OK && utf8_chars(out->p + start, out->len - start) > CP_PREFIX_EVAL_MAX) {
        rc = cp_err_set(err, CP_ETOOBIG, "The evaluated prefix exceeds %d characters",
                        CP_PREFIX_EVAL_MAX);
    }
    if (rc != CP_OK) {
        out->len = start;
        if (out->p) {
            out->p[start] = 0;
        }
    }
    return rc;
}

void cp_object_key(cp_buf *out, cp_slice evaluated_prefix, const char *stream, uint32_t version,
                   int64_t instant_ms, const cp_tz *tz, const unsigned char uuid16[16],
                   const char *ext)
{
    cp_tm tm;
    cp_tz_localtime(tz ? tz : cp_tz_utc(), instant_ms, &tm);
    char hex[33];
    cp_hex(uuid16, 16, hex);
    cp_buf_append(out, evaluated_prefix.p, evaluated_prefix.len);
    cp_buf_printf(out, "%s-%u-", stream, version);
    put_num(out, tm.year, 4, 0);
    cp_buf_printf(out, "-%02d-%02d-%02d-%02d-%02d-%.8s-%.4s-%.4s-%.4s-%.12s%s", tm.month, tm.mday,
                  tm.hour, tm.min, tm.sec, hex, hex + 8, hex + 12, hex + 16, hex + 20,
                  ext ? ext : "");
}

/* ------------------------------------------------------------------------------------------ */
/* jq object keys (static analysis for the create-time key checks)                             */

static const char *jq_ws(const char *s)
{
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
            s++;
        }
        if (*s != '#') {
            return s;
        }
        while (*s && *s != '\n') {
            s++;
        }
    }
}

static const char *jq_skip_group(const char *s);

/* s at '"': past the closing quote, or NULL. String interpolation \( ... ) nests. */
static const char *jq_skip_string(const char *s)
{
    for (s++; *s; s++) {
        if (*s == '\\') {
            s++;
            if (*s == '(') {
                s = jq_skip_group(s);
                if (!s) {
                    return NULL;
                }
                s--;
            } else if (!*s) {
                return NULL;
            }
        } else if (*s == '"') {
            return s + 1;
        }
    }
    return NULL;
}

/* s at an opening bracket: past its matching closer, or NULL. */
static const char *jq_skip_group(const char *s)
{
    int depth = 0;
    while (*s) {
        char c = *s;
        if (c == '"') {
            s = jq_skip_string(s);
            if (!s) {
                return NULL;
            }
            continue;
        }
        if (c == '#') {
            while (*s && *s != '\n') {
                s++;
            }
            continue;
        }
        if (c == '(' || c == '[' || c == '{') {
            depth++;
        } else if (c == ')' || c == ']' || c == '}') {
            if (--depth == 0) {
                return s + 1;
            }
        }
        s++;
    }
    return NULL;
}

/* Skip an object value: up to the ',' or '}' that ends it at depth 0. */
static const char *jq_skip_value(const char *s)
{
    while (*s) {
        char c = *s;
        if (c == '"') {
            s = jq_skip_string(s);
        } else if (c == '(' || c == '[' || c == '{') {
            s = jq_skip_group(s);
        } else if (c == '#') {
            while (*s && *s != '\n') {
                s++;
            }
            continue;
        } else if (c == ',' || c == '}' || c == ')' || c == ']') {
            return s;
        } else {
            s++;
            continue;
        }
        if (!s) {
            return NULL;
        }
    }
    return s;
}

static int jq_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int jq_add_key(char **names, int cap, int n, const char *k, size_t len)
{
    for (int i = 0; i < n && i < cap; i++) {
        if (strlen(names[i]) == len && memcmp(names[i], k, len) == 0) {
            return n;
        }
    }
    if (n < cap) {
        names[n] = cp_strndup(k, len);
    }
    return n + 1;
}

int cp_prefix_jq_keys(const char *query, char **names, int cap)
{
    const char *s = jq_ws(query);
    int n = 0;
    if (*s != '{') {
        return -1;
    }
    s = jq_ws(s + 1);
    if (*s == '}') {
        s = jq_ws(s + 1);
        return *s ? -1 : 0;
    }
    for (;;) {
        const char *k = s;
        size_t klen;
        if (*s == '$') {
            s++;
            k = s;
        }
        if (jq_ident_start(*s)) {
            while (jq_ident_start(*s) || (*s >= '0' && *s <= '9')) {
                s++;
            }
            klen = (size_t) (s - k);
        } else if (*s == '"') {
            const char *e = jq_skip_string(s);
            if (!e) {
                goto unknown;
            }
            k = s + 1;
            klen = (size_t) (e - 1 - k);
            if (memchr(k, '\\', klen)) {
                goto unknown; /* escapes and interpolation: the key is only known at run time */
            }
            s = e;
        } else {
            goto unknown; /* computed key: (expr), @format, ... */
        }
        n = jq_add_key(names, cap, n, k, klen);
        s = jq_ws(s);
        if (*s == ':') {
            s = jq_skip_value(s + 1);
            if (!s) {
                goto unknown;
            }
        }
        if (*s == ',') {
            s = jq_ws(s + 1);
            continue;
        }
        if (*s != '}') {
            goto unknown;
        }
        s = jq_ws(s + 1);
        if (*s) {
            goto unknown; /* e.g. {...} | with_entries(...): keys depend on the rest */
        }
        return n;
    }
unknown:
    for (int i = 0; i < n && i < cap; i++) {
        cp_free(names[i]);
        names[i] = NULL;
    }
    return -1;
}
