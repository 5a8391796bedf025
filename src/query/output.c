/* SPDX-License-Identifier: MIT */
/* Result-set formatting: aligned table, CSV, JSON lines. */
#include "query/output.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/json.h"
#include "core/mem.h"

enum { KIND_PLAIN, KIND_BOOL, KIND_JSON, KIND_FLOAT };

struct cp_output {
    FILE *out;
    cp_query_format fmt;
    int header;
    size_t ncols;
    char **names;
    int *kind; /* per column: how to print it */
    uint64_t nrows;
    /* TABLE: every cell's text, row-major, NUL-separated, plus per-cell right alignment */
    cp_buf cells;
    cp_buf align; /* one byte per cell: 1 = right-aligned (a number) */
    size_t *width;
    cp_buf line; /* scratch */
    int sets;    /* result sets printed so far */
};

cp_output *cp_output_new(FILE *out, cp_query_format fmt, int header)
{
    cp_output *o = cp_calloc(1, sizeof(*o));
    o->out = out;
    o->fmt = fmt;
    o->header = header;
    return o;
}

static void forget_set(cp_output *o)
{
    for (size_t i = 0; i < o->ncols; i++) {
        cp_free(o->names[i]);
    }
    cp_free(o->names);
    cp_free(o->kind);
    cp_free(o->width);
    o->names = NULL;
    o->kind = NULL;
    o->width = NULL;
    o->ncols = 0;
    cp_buf_reset(&o->cells);
    cp_buf_reset(&o->align);
}

void cp_output_free(cp_output *o)
{
    if (!o) {
        return;
    }
    forget_set(o);
    cp_buf_free(&o->cells);
    cp_buf_free(&o->align);
    cp_buf_free(&o->line);
    cp_free(o);
}

/* ------------------------------------------------------------------------------------------ */
/* Display width                                                                               */

static int is_wide(uint32_t c)
{
    return (c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0x303E) ||
           (c >= 0x3041 && c <= 0x33FF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xA000 && c <= 0xA4CF) ||
           (c >= 0xA960 && c <= 0xA97F) || (c >= 0xAC00 && c <= 0xD7A3) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFE30 && c <= 0xFE4F) ||
           (c >= 0xFF00 && c <= 0xFF60) || (c >= 0xFFE0 && c <= 0xFFE6) ||
           (c >= 0x1F300 && c <= 0x1F64F) || (c >= 0x1F900 && c <= 0x1F9FF) ||
           (c >= 0x20000 && c <= 0x3FFFD);
}

static int is_zero_width(uint32_t c)
{
    return (c >= 0x0300 && c <= 0x036F) || (c >= 0x1160 && c <= 0x11FF) || c == 0x200B ||
           c == 0x200D || (c >= 0xFE00 && c <= 0xFE0F);
}

size_t cp_output_width(cp_slice s)
{
    size_t w = 0;
    const unsigned char *p = (const unsigned char *) s.p, *end = p + s.len;
    while (p < end) {
        uint32_t c = *p;
        int n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (end - p < n) {
            n = (int) (end - p);
        }
        if (n == 2) {
            c = (c & 0x1F) << 6 | (p[1] & 0x3F);
        } else if (n == 3) {
            c = (c & 0x0F) << 12 | (uint32_t) (p[1] & 0x3F) << 6 | (p[2] & 0x3F);
        } else if (n == 4) {
            c = (c & 0x07) << 18 | (uint32_t) (p[1] & 0x3F) << 12 | (uint32_t) (p[2] & 0x3F) << 6 |
                (p[3] & 0x3F);
        }
        p += n;
        w += is_zero_width(c) ? 0 : is_wide(c) ? 2 : 1;
    }
    return w;
}

/* ------------------------------------------------------------------------------------------ */
/* Values as text                                                                              */

/* Shortest text that reads back as the same double (or float, for single-precision
 * columns), with ".0" when it looks integral. */
static void put_real(cp_buf *b, double d, int single)
{
    if (isnan(d)) {
        cp_buf_puts(b, "NaN");
        return;
    }
    if (isinf(d)) {
        cp_buf_puts(b, d < 0 ? "-Infinity" : "Infinity");
        return;
    }
    char tmp[40];
    if (single && (double) (float) d == d) {
        for (int prec = 6; prec <= 9; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
            if (strtof(tmp, NULL) == (float) d) {
                break;
            }
        }
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
            if (strtod(tmp, NULL) == d) {
                break;
            }
        }
    }
    cp_buf_puts(b, tmp);
    if (!strpbrk(tmp, ".eEn")) {
        cp_buf_puts(b, ".0");
    }
}

static void put_hex(cp_buf *b, cp_slice s)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char) s.p[i];
        cp_buf_putc(b, hex[c >> 4]);
        cp_buf_putc(b, hex[c & 15]);
    }
}

/* Plain text of a value (CSV field before quoting, TABLE cell before escaping). Returns 0 for
 * NULL. */
static int value_text(const cp_output *o, size_t col, const cp_query_value *v, cp_buf *b)
{
    switch (v->type) {
    case CP_QUERY_NULL:
        return 0;
    case CP_QUERY_INT:
        if (o->kind[col] == KIND_BOOL && (v->i == 0 || v->i == 1)) {
            cp_buf_puts(b, v->i ? "true" : "false");
        } else {
            cp_buf_printf(b, "%lld", (long long) v->i);
        }
        return 1;
    case CP_QUERY_REAL:
        put_real(b, v->d, o->kind[col] == KIND_FLOAT);
        return 1;
    case CP_QUERY_TEXT:
        cp_buf_append(b, v->s.p, v->s.len);
        return 1;
    case CP_QUERY_BLOB:
        put_hex(b, v->s);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Result sets                                                                                 */

/* One CSV field, quoted when it holds a separator, a quote or a line break (RFC 4180); an
 * empty string is written as "" so it differs from NULL (an empty field). */
static void csv_field(cp_buf *b, cp_slice f)
{
    int quote = f.len == 0;
    for (size_t k = 0; k < f.len && !quote; k++) {
        char c = f.p[k];
        quote = c == ',' || c == '"' || c == '\r' || c == '\n';
    }
    if (!quote) {
        cp_buf_append(b, f.p, f.len);
        return;
    }
    cp_buf_putc(b, '"');
    for (size_t k = 0; k < f.len; k++) {
        if (f.p[k] == '"') {
            cp_buf_putc(b, '"');
        }
        cp_buf_putc(b, f.p[k]);
    }
    cp_buf_putc(b, '"');
}

void cp_output_begin(cp_output *o, const cp_query_result *res)
{
    forget_set(o);
    o->ncols = res->ncols;
    o->nrows = 0;
    o->names = cp_calloc(res->ncols ? res->ncols : 1, sizeof(char *));
    o->kind = cp_calloc(res->ncols ? res->ncols : 1, sizeof(int));
    o->width = cp_calloc(res->ncols ? res->ncols : 1, sizeof(size_t));
    for (size_t i = 0; i < res->ncols; i++) {
        o->names[i] = cp_strdup(res->names[i] ? res->names[i] : "");
        const char *t = res->decltypes ? res->decltypes[i] : NULL;
        if (t && strncasecmp(t, "BOOLEAN", 7) == 0) {
            o->kind[i] = KIND_BOOL;
        } else if (t && strstr(t, "JSON")) {
            o->kind[i] = KIND_JSON;
        } else if (t && strncasecmp(t, "FLOAT", 5) == 0) {
            o->kind[i] = KIND_FLOAT;
        }
        o->width[i] = cp_output_width(cp_slice_str(o->names[i]));
    }
    if (o->sets++ && o->fmt == CP_QUERY_FORMAT_TABLE) {
        fputc('\n', o->out);
    }
    if (o->fmt == CP_QUERY_FORMAT_CSV && o->header) {
        cp_buf *b = &o->line;
        cp_buf_reset(b);
        for (size_t i = 0; i < o->ncols; i++) {
            if (i) {
                cp_buf_putc(b, ',');
            }
            csv_field(b, cp_slice_str(o->names[i]));
        }
        cp_buf_putc(b, '\n');
        fwrite(b->p, 1, b->len, o->out);
    }
}

static void csv_row(cp_output *o, const cp_query_value *row)
{
    cp_buf *b = &o->line;
    cp_buf_reset(b);
    cp_buf field = CP_BUF_INIT;
    for (size_t i = 0; i < o->ncols; i++) {
        if (i) {
            cp_buf_putc(b, ',');
        }
        cp_buf_reset(&field);
        if (value_text(o, i, &row[i], &field)) {
            csv_field(b, cp_buf_slice(&field));
        }
    }
    cp_buf_free(&field);
    cp_buf_putc(b, '\n');
    fwrite(b->p, 1, b->len, o->out);
}

/* Is s one complete JSON value? */
static int valid_json(cp_slice s)
{
    cp_json_lexer lx;
    cp_json_lexer_init(&lx, s);
    cp_json_tok t;
    do {
        if (cp_json_next(&lx, &t) < 0) {
            return 0;
        }
    } while (t.type != CP_JSON_END);
    return 1;
}

static void jsonl_row(cp_output *o, const cp_query_value *row)
{
    cp_buf *b = &o->line;
    cp_buf_reset(b);
    cp_buf_putc(b, '{');
    for (size_t i = 0; i < o->ncols; i++) {
        if (i) {
            cp_buf_putc(b, ',');
        }
        cp_json_put_str(b, cp_slice_str(o->names[i]));
        cp_buf_putc(b, ':');
        const cp_query_value *v = &row[i];
        switch (v->type) {
        case CP_QUERY_NULL:
            cp_buf_puts(b, "null");
            break;
        case CP_QUERY_INT:
            if (o->kind[i] == KIND_BOOL && (v->i == 0 || v->i == 1)) {
                cp_buf_puts(b, v->i ? "true" : "false");
            } else {
                cp_buf_printf(b, "%lld", (long long) v->i);
            }
            break;
        case CP_QUERY_REAL:
            if (isfinite(v->d)) {
                put_real(b, v->d, o->kind[i] == KIND_FLOAT);
            } else {
                cp_buf_puts(b, "null");
            }
            break;
        case CP_QUERY_TEXT:
            if (o->kind[i] == KIND_JSON && valid_json(v->s)) {
                cp_buf_append(b, v->s.p, v->s.len);
            } else {
                cp_json_put_str(b, v->s);
            }
            break;
        case CP_QUERY_BLOB: {
            cp_buf enc = CP_BUF_INIT;
            cp_base64_encode(v->s, &enc);
            cp_json_put_str(b, cp_buf_slice(&enc));
            cp_buf_free(&enc);
            break;
        }
        }
    }
    cp_buf_puts(b, "}\n");
    fwrite(b->p, 1, b->len, o->out);
}

/* TABLE cell text: control characters shown as escapes so a row stays on one line. */
static void table_cell(cp_output *o, size_t col, const cp_query_value *v)
{
    cp_buf raw = CP_BUF_INIT;
    if (!value_text(o, col, v, &raw)) {
        cp_buf_puts(&raw, "NULL");
    }
    size_t start = o->cells.len;
    for (size_t i = 0; i < raw.len; i++) {
        unsigned char c = (unsigned char) raw.p[i];
        if (c == '\n') {
            cp_buf_puts(&o->cells, "\\n");
        } else if (c == '\t') {
            cp_buf_puts(&o->cells, "\\t");
        } else if (c == '\r') {
            cp_buf_puts(&o->cells, "\\r");
        } else if (c < 0x20 || c == 0x7f) {
            cp_buf_printf(&o->cells, "\\x%02x", c);
        } else {
            cp_buf_putc(&o->cells, (char) c);
        }
    }
    size_t w = cp_output_width(cp_slice_of(o->cells.p + start, o->cells.len - start));
    if (w > o->width[col]) {
        o->width[col] = w;
    }
    cp_buf_putc(&o->cells, 0);
    int right = (v->type == CP_QUERY_INT && o->kind[col] != KIND_BOOL) || v->type == CP_QUERY_REAL;
    cp_buf_putc(&o->align, (char) right);
    cp_buf_free(&raw);
}

void cp_output_row(cp_output *o, const cp_query_value *row)
{
    o->nrows++;
    switch (o->fmt) {
    case CP_QUERY_FORMAT_CSV:
        csv_row(o, row);
        break;
    case CP_QUERY_FORMAT_JSONL:
        jsonl_row(o, row);
        break;
    default:
        for (size_t i = 0; i < o->ncols; i++) {
            table_cell(o, i, &row[i]);
        }
        break;
    }
}

static void pad(cp_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cp_buf_putc(b, ' ');
    }
}

static void table_line(cp_output *o, const char *const *cells, const char *align)
{
    cp_buf *b = &o->line;
    cp_buf_reset(b);
    for (size_t i = 0; i < o->ncols; i++) {
        size_t w = cp_output_width(cp_slice_str(cells[i]));
        size_t gap = o->width[i] > w ? o->width[i] - w : 0;
        cp_buf_puts(b, i ? " | " : " ");
        if (align && align[i]) {
            pad(b, gap);
            cp_buf_puts(b, cells[i]);
        } else {
            cp_buf_puts(b, cells[i]);
            if (i + 1 < o->ncols) {
                pad(b, gap);
            }
        }
    }
    cp_buf_putc(b, '\n');
    fwrite(b->p, 1, b->len, o->out);
}

void cp_output_end(cp_output *o)
{
    if (o->fmt != CP_QUERY_FORMAT_TABLE) {
        fflush(o->out);
        return;
    }
    /* Headers line up with their column: right over numbers (as the first row has them). */
    table_line(o, (const char *const *) o->names, o->nrows ? o->align.p : NULL);
    cp_buf *b = &o->line;
    cp_buf_reset(b);
    for (size_t i = 0; i < o->ncols; i++) {
        cp_buf_puts(b, i ? "-+-" : "-");
        for (size_t k = 0; k < o->width[i]; k++) {
            cp_buf_putc(b, '-');
        }
    }
    cp_buf_puts(b, "-\n");
    fwrite(b->p, 1, b->len, o->out);
    const char **cells = cp_calloc(o->ncols ? o->ncols : 1, sizeof(char *));
    const char *p = o->cells.p;
    for (uint64_t r = 0; r < o->nrows; r++) {
        for (size_t i = 0; i < o->ncols; i++) {
            cells[i] = p;
            p += strlen(p) + 1;
        }
        table_line(o, cells, o->align.p + r * o->ncols);
    }
    cp_free(cells);
    fprintf(o->out, "(%llu row%s)\n", (unsigned long long) o->nrows, o->nrows == 1 ? "" : "s");
    fflush(o->out);
    cp_buf_reset(&o->cells);
    cp_buf_reset(&o->align);
}
