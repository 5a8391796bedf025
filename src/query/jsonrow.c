/* SPDX-License-Identifier: MIT */
/*
 * JSON line -> row. The hot path of every scan: one pass of the cp_json pull lexer per line
 * (no DOM), key lookup in a small open-addressing table of folded column keys, and a
 * generation counter instead of clearing the per-column slots for each row.
 */
#include "query/jsonrow.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"

typedef struct slot {
    uint8_t type;    /* cp_json_type of the value; OBJ_BEGIN/ARR_BEGIN: s is the raw text */
    uint8_t escaped; /* STRING with backslash escapes */
    cp_slice s;
} slot;

struct cp_jsonrow {
    const cp_ddl_table *t;
    size_t ncols;
    char **keys; /* folded key each column matches */
    size_t *klen;
    int32_t *hash; /* open addressing: column index or -1 */
    size_t mask;
    int fold_case; /* case.insensitive (default on) */
    int dots;      /* dots.in.keys */
    int dup_fails; /* OpenX: a repeated key is an error */
    slot *slots;
    uint32_t *gen_of; /* slots[i] is set for this row iff gen_of[i] == gen */
    uint32_t gen;
    cp_buf keybuf;  /* unescaped keys */
    cp_buf scratch; /* converted values */
};

static inline unsigned char fold(const cp_jsonrow *r, unsigned char c)
{
    if (r->fold_case && c >= 'A' && c <= 'Z') {
        c = (unsigned char) (c + 32);
    }
    if (r->dots && c == '.') {
        c = '_';
    }
    return c;
}

static uint32_t key_hash(const cp_jsonrow *r, const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ fold(r, (unsigned char) p[i])) * 16777619u;
    }
    return h;
}

cp_jsonrow *cp_jsonrow_new(const cp_ddl_table *t)
{
    cp_jsonrow *r = cp_calloc(1, sizeof(*r));
    r->t = t;
    r->ncols = t->ncols;
    const char *ci = cp_ddl_serde_prop(t, "case.insensitive");
    r->fold_case = !(ci && strcasecmp(ci, "false") == 0);
    r->dots = cp_ddl_prop_true(cp_ddl_serde_prop(t, "dots.in.keys"));
    r->dup_fails = t->serde == CP_DDL_SERDE_OPENX;
    r->keys = cp_calloc(r->ncols ? r->ncols : 1, sizeof(*r->keys));
    r->klen = cp_calloc(r->ncols ? r->ncols : 1, sizeof(*r->klen));
    r->slots = cp_calloc(r->ncols ? r->ncols : 1, sizeof(*r->slots));
    r->gen_of = cp_calloc(r->ncols ? r->ncols : 1, sizeof(*r->gen_of));
    r->gen = 1;
    size_t size = 8;
    while (size < r->ncols * 2) {
        size *= 2;
    }
    r->mask = size - 1;
    r->hash = cp_malloc(size * sizeof(*r->hash));
    for (size_t i = 0; i < size; i++) {
        r->hash[i] = -1;
    }
    cp_buf m = CP_BUF_INIT;
    for (size_t c = 0; c < r->ncols; c++) {
        cp_buf_reset(&m);
        cp_buf_printf(&m, "mapping.%s", t->cols[c].name);
        const char *key = cp_ddl_serde_prop(t, m.p);
        if (!key) {
            key = t->cols[c].name;
        }
        size_t n = strlen(key);
        r->keys[c] = cp_malloc(n + 1);
        for (size_t i = 0; i < n; i++) {
            r->keys[c][i] = (char) fold(r, (unsigned char) key[i]);
        }
        r->keys[c][n] = 0;
        r->klen[c] = n;
        size_t h = key_hash(r, r->keys[c], n) & r->mask;
        while (r->hash[h] >= 0) {
            h = (h + 1) & r->mask;
        }
        r->hash[h] = (int32_t) c;
    }
    cp_buf_free(&m);
    return r;
}

void cp_jsonrow_free(cp_jsonrow *r)
{
    if (!r) {
        return;
    }
    for (size_t c = 0; c < r->ncols; c++) {
        cp_free(r->keys[c]);
    }
    cp_free(r->keys);
    cp_free(r->klen);
    cp_free(r->hash);
    cp_free(r->slots);
    cp_free(r->gen_of);
    cp_buf_free(&r->keybuf);
    cp_buf_free(&r->scratch);
    cp_free(r);
}

/* Column index for a key, or -1. Two columns may fold to the same key (a mapping); the first
 * declared wins, as the table was built in column order. */
static int lookup(const cp_jsonrow *r, const char *p, size_t n)
{
    size_t h = key_hash(r, p, n) & r->mask;
    for (;;) {
        int32_t c = r->hash[h];
        if (c < 0) {
            return -1;
        }
        if (r->klen[c] == n) {
            const char *k = r->keys[c];
            size_t i = 0;
            while (i < n && (unsigned char) k[i] == fold(r, (unsigned char) p[i])) {
                i++;
            }
            if (i == n) {
                return c;
            }
        }
        h = (h + 1) & r->mask;
    }
}

static void next_gen(cp_jsonrow *r)
{
    if (++r->gen == 0) {
        /* Wrapped after 4 billion rows: clear so no stale slot looks current. */
        memset(r->gen_of, 0, r->ncols * sizeof(*r->gen_of));
        r->gen = 1;
    }
}

void cp_jsonrow_set_null(cp_jsonrow *r)
{
    next_gen(r);
}

static int syntax_error(cp_json_lexer *lx, const char *why, cp_err *err)
{
    return cp_err_set(err, CP_EINVAL,
                      "HIVE_CURSOR_ERROR: Row is not a valid JSON Object - %s at character %zu",
                      why         ? why
                      : lx->error ? lx->error
                                  : "malformed JSON",
                      cp_json_offset(lx) + 1);
}

int cp_jsonrow_parse(cp_jsonrow *r, cp_slice line, cp_err *err)
{
    next_gen(r);
    cp_json_lexer lx;
    cp_json_lexer_init(&lx, line);
    cp_json_tok t;
    if (cp_json_next(&lx, &t) < 0) {
        return syntax_error(&lx, NULL, err);
    }
    if (t.type != CP_JSON_OBJ_BEGIN) {
        lx.p = lx.start;
        return syntax_error(&lx, "A JSONObject text must begin with '{'", err);
    }
    for (;;) {
        if (cp_json_next(&lx, &t) < 0) {
            goto bad;
        }
        if (t.type == CP_JSON_OBJ_END) {
            break;
        }
        /* t is a KEY. */
        int c;
        if (t.escaped) {
            cp_buf_reset(&r->keybuf);
            if (cp_json_unescape(t.s, &r->keybuf) < 0) {
                return syntax_error(&lx, "bad escape in a key", err);
            }
            c = lookup(r, r->keybuf.p, r->keybuf.len);
        } else {
            c = lookup(r, t.s.p, t.s.len);
        }
        if (cp_json_next(&lx, &t) < 0) {
            goto bad;
        }
        if (t.type == CP_JSON_OBJ_BEGIN || t.type == CP_JSON_ARR_BEGIN) {
            const char *start = lx.p - 1;
            if (cp_json_skip(&lx, &t) < 0) {
                goto bad;
            }
            t.s = cp_slice_of(start, (size_t) (lx.p - start));
        }
        if (c >= 0) {
            if (r->gen_of[c] == r->gen && r->dup_fails) {
                char why[160];
                snprintf(why, sizeof(why), "JSONException: Duplicate key \"%.100s\"",
                         r->t->cols[c].name);
                next_gen(r);
                return syntax_error(&lx, why, err);
            }
            r->gen_of[c] = r->gen;
            r->slots[c] = (slot){(uint8_t) t.type, (uint8_t) t.escaped, t.s};
        }
    }
    if (cp_json_next(&lx, &t) < 0 || t.type != CP_JSON_END) {
        goto bad;
    }
    return CP_OK;
bad:
    next_gen(r);
    return syntax_error(&lx, NULL, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Conversions                                                                                 */

static cp_slice trim_ws(cp_slice s)
{
    while (s.len && isspace((unsigned char) s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len && isspace((unsigned char) s.p[s.len - 1])) {
        s.len--;
    }
    return s;
}

/* Exact decimal integer: [+-]digits. 0 on success, -1 on syntax, -2 on overflow. */
static int parse_i64(cp_slice s, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (i < s.len && (s.p[i] == '-' || s.p[i] == '+')) {
        neg = s.p[i] == '-';
        i++;
    }
    if (i == s.len) {
        return -1;
    }
    uint64_t v = 0;
    uint64_t limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
    for (; i < s.len; i++) {
        unsigned d = (unsigned char) s.p[i] - '0';
        if (d > 9) {
            return -1;
        }
        if (v > (limit - d) / 10) {
            return -2;
        }
        v = v * 10 + d;
    }
    *out = neg ? (int64_t) (0 - v) : (int64_t) v;
    return 0;
}

/* strtod over a slice (copied to terminate it). 0 on success. */
static int parse_f64(cp_slice s, double *out)
{
    char tmp[128];
    if (s.len == 0 || s.len >= sizeof(tmp)) {
        return -1;
    }
    memcpy(tmp, s.p, s.len);
    tmp[s.len] = 0;
    char *e;
    errno = 0;
    double d = strtod(tmp, &e);
    if (*e || e == tmp) {
        return -1;
    }
    /* Java's Double.parseDouble spells these out; strtod also takes "inf"/"nan" forms. */
    *out = d;
    return 0;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned) (y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? (unsigned) -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t) doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned) (z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t) yoe + era * 400 + (*m <= 2);
}

static int digits(const char *p, const char *end, int n, int *out)
{
    if (end - p < n) {
        return -1;
    }
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

static int month_days(int64_t y, int m)
{
    static const int md[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) {
        return 29;
    }
    return md[m - 1];
}

int cp_jsonrow_parse_ts(cp_slice in, int64_t *ms)
{
    cp_slice s = trim_ws(in);
    const char *p = s.p, *end = s.p + s.len;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0;
    if (digits(p, end, 4, &y) < 0 || end - p < 10 || p[4] != '-' ||
        digits(p + 5, end, 2, &mo) < 0 || p[7] != '-' || digits(p + 8, end, 2, &d) < 0) {
        return CP_EINVAL;
    }
    p += 10;
    if (mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo)) {
        return CP_EINVAL;
    }
    if (p < end && (*p == ' ' || *p == 'T' || *p == 't')) {
        p++;
        if (digits(p, end, 2, &h) < 0 || end - p < 5 || p[2] != ':' ||
            digits(p + 3, end, 2, &mi) < 0) {
            return CP_EINVAL;
        }
        p += 5;
        if (p < end && *p == ':') {
            if (digits(p + 1, end, 2, &sec) < 0) {
                return CP_EINVAL;
            }
            p += 3;
            if (p < end && (*p == '.' || *p == ',')) {
                p++;
                int n = 0;
                while (p < end && *p >= '0' && *p <= '9') {
                    if (n < 3) {
                        frac_ms = frac_ms * 10 + (*p - '0');
                    }
                    n++;
                    p++;
                }
                if (n == 0) {
                    return CP_EINVAL;
                }
                for (; n < 3; n++) {
                    frac_ms *= 10;
                }
            }
        }
        if (h > 23 || mi > 59 || sec > 60) {
            return CP_EINVAL;
        }
    }
    int64_t off_min = 0;
    while (p < end && *p == ' ') {
        p++;
    }
    if (p < end) {
        if ((*p == 'Z' || *p == 'z') && p + 1 == end) {
            p++;
        } else if (end - p == 3 && strncasecmp(p, "UTC", 3) == 0) {
            p += 3;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1, oh, om = 0;
            p++;
            if (digits(p, end, 2, &oh) < 0) {
                return CP_EINVAL;
            }
            p += 2;
            if (p < end && *p == ':') {
                p++;
            }
            if (p < end && digits(p, end, 2, &om) < 0) {
                return CP_EINVAL;
            }
            if (p < end) {
                p += 2;
            }
            if (oh > 18 || om > 59) {
                return CP_EINVAL;
            }
            off_min = sign * (oh * 60 + om);
        }
        if (p != end) {
            return CP_EINVAL;
        }
    }
    int64_t days = days_from_civil(y, (unsigned) mo, (unsigned) d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - off_min * 60;
    *ms = secs * 1000 + frac_ms;
    return CP_OK;
}

size_t cp_jsonrow_format_ts(int64_t ms, char *buf)
{
    int64_t secs = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        secs--;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(buf, 32, "%04lld-%02u-%02u %02d:%02d:%02d.%03d", (long long) y, m, d,
                     (int) (sod / 3600), (int) (sod / 60 % 60), (int) (sod % 60), (int) rem);
    return n < 0 ? 0 : (size_t) n;
}

/* The value as the user sees it in an error message, cut short. */
static void show_value(const slot *v, char *out, size_t cap)
{
    size_t n = v->s.len > 40 ? 40 : v->s.len;
    snprintf(out, cap, "%.*s%s", (int) n, v->s.p ? v->s.p : "", v->s.len > n ? "..." : "");
}

/* Cut UTF-8 text to at most n code points. */
static cp_slice cut_chars(cp_slice s, int n)
{
    size_t i = 0;
    int chars = 0;
    while (i < s.len) {
        if (((unsigned char) s.p[i] & 0xC0) != 0x80) {
            if (chars == n) {
                break;
            }
            chars++;
        }
        i++;
    }
    s.len = i;
    return s;
}

static const int64_t int_min[] = {[CP_DDL_TINYINT] = -128,
                                  [CP_DDL_SMALLINT] = -32768,
                                  [CP_DDL_INT] = INT32_MIN,
                                  [CP_DDL_BIGINT] = INT64_MIN};
static const int64_t int_max[] = {[CP_DDL_TINYINT] = 127,
                                  [CP_DDL_SMALLINT] = 32767,
                                  [CP_DDL_INT] = INT32_MAX,
                                  [CP_DDL_BIGINT] = INT64_MAX};

/* Integer from number text: exact, or an integral double below 2^53. */
static const char *to_int(cp_ddl_kind kind, cp_slice s, int64_t *out)
{
    int rc = parse_i64(s, out);
    if (rc == -2) {
        return "out of range";
    }
    if (rc < 0) {
        double d;
        if (parse_f64(s, &d) < 0) {
            return "not a number";
        }
        if (!(fabs(d) < 9007199254740992.0) || d != floor(d)) {
            return "not an integer";
        }
        *out = (int64_t) d;
    }
    if (*out < int_min[kind] || *out > int_max[kind]) {
        return "out of range";
    }
    return NULL;
}

/* Convert value v with type ty. why gets a reason on failure (returns -1). */
static int convert(const cp_ddl_type *ty, const slot *v, cp_buf *scratch, cp_jsonrow_value *out,
                   const char **why)
{
    out->type = CP_JV_NULL;
    if (v->type == CP_JSON_NULL) {
        return 0;
    }
    cp_slice text = v->s;
    int is_str = v->type == CP_JSON_STRING;
    if (is_str && v->escaped) {
        cp_buf_reset(scratch);
        if (cp_json_unescape(v->s, scratch) < 0) {
            *why = "bad escape";
            return -1;
        }
        text = cp_buf_slice(scratch);
    }
    int container = v->type == CP_JSON_OBJ_BEGIN || v->type == CP_JSON_ARR_BEGIN;
    switch (ty->kind) {
    case CP_DDL_STRING:
    case CP_DDL_VARCHAR:
    case CP_DDL_CHAR:
        out->type = CP_JV_TEXT;
        out->s = ty->length > 0 ? cut_chars(text, ty->length) : text;
        return 0;
    default:
        break;
    }
    if (container) {
        int want_arr = ty->kind == CP_DDL_ARRAY;
        int want_obj = ty->kind == CP_DDL_MAP || ty->kind == CP_DDL_STRUCT;
        if ((want_arr && v->type == CP_JSON_ARR_BEGIN) ||
            (want_obj && v->type == CP_JSON_OBJ_BEGIN)) {
            out->type = CP_JV_TEXT;
            out->s = text;
            return 0;
        }
        *why = v->type == CP_JSON_ARR_BEGIN ? "an array is not a value of this type"
                                            : "an object is not a value of this type";
        return -1;
    }
    if (is_str) {
        text = trim_ws(text);
        if (text.len == 0) {
            return 0; /* "" reads as NULL for every non-string type */
        }
    }
    switch (ty->kind) {
    case CP_DDL_TINYINT:
    case CP_DDL_SMALLINT:
    case CP_DDL_INT:
    case CP_DDL_BIGINT:
        if (!is_str && v->type != CP_JSON_NUMBER) {
            *why = "not a number";
            return -1;
        }
        if ((*why = to_int(ty->kind, text, &out->i))) {
            return -1;
        }
        out->type = CP_JV_INT;
        return 0;
    case CP_DDL_FLOAT:
    case CP_DDL_DOUBLE:
    case CP_DDL_DECIMAL:
        if ((!is_str && v->type != CP_JSON_NUMBER) || parse_f64(text, &out->d) < 0) {
            *why = "not a number";
            return -1;
        }
        if (ty->kind == CP_DDL_DECIMAL && ty->scale == 0 && parse_i64(text, &out->i) == 0) {
            out->type = CP_JV_INT;
            return 0;
        }
        if (ty->kind == CP_DDL_FLOAT) {
            out->d = (double) (float) out->d;
        }
        out->type = CP_JV_REAL;
        return 0;
    case CP_DDL_BOOLEAN:
        if (v->type == CP_JSON_TRUE || v->type == CP_JSON_FALSE) {
            out->i = v->type == CP_JSON_TRUE;
        } else if (is_str && text.len == 4 && strncasecmp(text.p, "true", 4) == 0) {
            out->i = 1;
        } else if (is_str && text.len == 5 && strncasecmp(text.p, "false", 5) == 0) {
            out->i = 0;
        } else {
            *why = "not a boolean";
            return -1;
        }
        out->type = CP_JV_INT;
        return 0;
    case CP_DDL_TIMESTAMP:
    case CP_DDL_DATE: {
        int64_t ms;
        if (v->type == CP_JSON_NUMBER || (is_str && parse_i64(text, &ms) == 0)) {
            int64_t n;
            double d;
            if (parse_i64(text, &n) == 0) {
                if (ty->kind == CP_DDL_DATE) {
                    ms = n * 86400000; /* Hive: an integer date is days since the epoch */
                } else {
                    ms = (n >= 100000000000LL || n <= -100000000000LL) ? n : n * 1000;
                }
            } else if (parse_f64(text, &d) == 0 && fabs(d) < 9e15) {
                ms = (int64_t) llround(ty->kind == CP_DDL_DATE ? d * 86400000.0 : d * 1000.0);
            } else {
                *why = "not a timestamp";
                return -1;
            }
        } else if (!is_str || cp_jsonrow_parse_ts(text, &ms) < 0) {
            *why = ty->kind == CP_DDL_DATE ? "not a date (YYYY-MM-DD)"
                                           : "not a timestamp (YYYY-MM-DD HH:MM:SS[.fff])";
            return -1;
        }
        char buf[32];
        size_t n = cp_jsonrow_format_ts(ms, buf);
        if (ty->kind == CP_DDL_DATE) {
            n = 10;
        }
        cp_buf_reset(scratch);
        cp_buf_append(scratch, buf, n);
        out->type = CP_JV_TEXT;
        out->s = cp_buf_slice(scratch);
        return 0;
    }
    case CP_DDL_ARRAY:
        *why = "not an array";
        return -1;
    case CP_DDL_MAP:
    case CP_DDL_STRUCT:
        *why = "not an object";
        return -1;
    default:
        *why = "unsupported type";
        return -1;
    }
}

static int bad_data(const slot *v, const char *field, size_t index, const char *why, cp_err *err)
{
    char shown[64];
    show_value(v, shown, sizeof(shown));
    if (index) {
        return cp_err_set(err, CP_EINVAL,
                          "HIVE_BAD_DATA: Error parsing field value '%s' for field %zu (%s): %s",
                          shown, index - 1, field, why);
    }
    return cp_err_set(err, CP_EINVAL,
                      "HIVE_BAD_DATA: Error parsing field value '%s' for field %s: %s", shown,
                      field, why);
}

int cp_jsonrow_get(cp_jsonrow *r, size_t col, cp_jsonrow_value *out, cp_err *err)
{
    if (col >= r->ncols || r->gen_of[col] != r->gen) {
        out->type = CP_JV_NULL;
        return CP_OK;
    }
    const slot *v = &r->slots[col];
    const char *why = NULL;
    if (convert(&r->t->cols[col].type, v, &r->scratch, out, &why) < 0) {
        return bad_data(v, r->t->cols[col].name, col + 1, why, err);
    }
    return CP_OK;
}

int cp_jsonrow_convert_text(const cp_ddl_type *type, const char *field, cp_slice text,
                            cp_buf *scratch, cp_jsonrow_value *out, cp_err *err)
{
    slot v = {CP_JSON_STRING, 0, text};
    const char *why = NULL;
    if (convert(type, &v, scratch, out, &why) < 0) {
        return bad_data(&v, field, 0, why, err);
    }
    return CP_OK;
}
