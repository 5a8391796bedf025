/* SPDX-License-Identifier: MIT */
/*
 * Athena DDL: a small tokenizer shared by the CREATE EXTERNAL TABLE parser, the statement
 * classifier, the script splitter and the word scanner. Errors name line:column the way
 * Athena's parser does ("line 1:8: ...").
 */
#include "query/ddl.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

/* ------------------------------------------------------------------------------------------ */
/* Tokenizer                                                                                   */

typedef enum {
    T_EOF = 0,
    T_WORD,   /* bare identifier or keyword */
    T_QIDENT, /* `backquoted` identifier */
    T_STRING, /* '...' or "..." */
    T_NUMBER,
    T_PUNCT, /* one character: ( ) , < > : = ; . and anything else */
    T_BAD,   /* unterminated string, identifier or comment */
} tok_type;

typedef struct tok {
    tok_type type;
    const char *p; /* the raw text, quotes included */
    size_t len;
} tok;

typedef struct parser {
    const char *start, *p, *end;
    tok cur;
    cp_err *err;
    int failed;
    const char *bad; /* why the last T_BAD happened */
} parser;

static int is_word_start(int c)
{
    return isalpha(c) || c == '_' || c >= 0x80;
}

static int is_word_char(int c)
{
    return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* Skip whitespace and comments; returns 0, or -1 for an unterminated block comment. */
static int skip_space(const char **pp, const char *end)
{
    const char *p = *pp;
    for (;;) {
        while (p < end && isspace((unsigned char) *p)) {
            p++;
        }
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
            while (p < end && *p != '\n') {
                p++;
            }
            continue;
        }
        if (end - p >= 2 && p[0] == '/' && p[1] == '*') {
            const char *q = p + 2;
            while (end - q >= 2 && !(q[0] == '*' && q[1] == '/')) {
                q++;
            }
            if (end - q < 2) {
                *pp = end;
                return -1;
            }
            p = q + 2;
            continue;
        }
        break;
    }
    *pp = p;
    return 0;
}

/* End of a quoted run starting at p (the opening quote). Backslash escapes and doubled quotes
 * both continue the run (Hive's strings use the first, SQL's the second). NULL if unended. */
static const char *quoted_end(const char *p, const char *end, int backslash)
{
    char q = *p++;
    while (p < end) {
        if (backslash && *p == '\\' && p + 1 < end) {
            p += 2;
            continue;
        }
        if (*p == q) {
            if (p + 1 < end && p[1] == q) {
                p += 2;
                continue;
            }
            return p + 1;
        }
        p++;
    }
    return NULL;
}

static void next(parser *ps)
{
    tok *t = &ps->cur;
    if (skip_space(&ps->p, ps->end) < 0) {
        t->type = T_BAD;
        ps->bad = "unterminated comment";
        return;
    }
    const char *p = ps->p;
    t->p = p;
    if (p >= ps->end) {
        t->type = T_EOF;
        t->len = 0;
        return;
    }
    unsigned char c = (unsigned char) *p;
    const char *e;
    if (c == '\'' || c == '"' || c == '`') {
        e = quoted_end(p, ps->end, c != '`');
        if (!e) {
            t->type = T_BAD;
            ps->bad = c == '`' ? "unterminated quoted identifier" : "unterminated string";
            t->len = (size_t) (ps->end - p);
            ps->p = ps->end;
            return;
        }
        t->type = c == '`' ? T_QIDENT : T_STRING;
    } else if (is_word_start(c)) {
        e = p + 1;
        while (e < ps->end && is_word_char((unsigned char) *e)) {
            e++;
        }
        t->type = T_WORD;
    } else if (isdigit(c)) {
        e = p + 1;
        while (e < ps->end && (isalnum((unsigned char) *e) || *e == '.')) {
            e++;
        }
        t->type = T_NUMBER;
    } else {
        e = p + 1;
        t->type = T_PUNCT;
    }
    t->len = (size_t) (e - p);
    ps->p = e;
}

static void parser_init(parser *ps, cp_slice src, cp_err *err)
{
    memset(ps, 0, sizeof(*ps));
    ps->start = ps->p = src.p ? src.p : "";
    ps->end = ps->start + src.len;
    ps->err = err;
    next(ps);
}

/* line:col (1-based) of a position. */
static void where(const parser *ps, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *q = ps->start; q < at && q < ps->end; q++) {
        if (*q == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static int fail_at(parser *ps, const char *at, const char *fmt, ...) CP_PRINTF(3, 4);
static int fail_at(parser *ps, const char *at, const char *fmt, ...)
{
    if (ps->failed) {
        return CP_EINVAL;
    }
    ps->failed = 1;
    int line, col;
    where(ps, at, &line, &col);
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return cp_err_set(ps->err, CP_EINVAL, "line %d:%d: %s", line, col, what);
}

/* "expected X but found 'Y'" at the current token. */
static int expected(parser *ps, const char *what)
{
    if (ps->failed) {
        return CP_EINVAL;
    }
    if (ps->cur.type == T_BAD) {
        return fail_at(ps, ps->cur.p, "%s", ps->bad);
    }
    char found[64];
    if (ps->cur.type == T_EOF) {
        snprintf(found, sizeof(found), "end of input");
    } else {
        snprintf(found, sizeof(found), "'%.*s'", (int) (ps->cur.len > 40 ? 40 : ps->cur.len),
                 ps->cur.p);
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "expected %s but found %s", what, found);
    return fail_at(ps, ps->cur.p, "%s", msg);
}

static int tok_is_kw(const tok *t, const char *kw)
{
    return t->type == T_WORD && strlen(kw) == t->len && strncasecmp(t->p, kw, t->len) == 0;
}

static int is_kw(const parser *ps, const char *kw)
{
    return tok_is_kw(&ps->cur, kw);
}

static int is_punct(const parser *ps, char c)
{
    return ps->cur.type == T_PUNCT && ps->cur.p[0] == c;
}

/* Consume keyword kw or fail. */
static int expect_kw(parser *ps, const char *kw)
{
    if (!is_kw(ps, kw)) {
        return expected(ps, kw);
    }
    next(ps);
    return CP_OK;
}

static int expect_punct(parser *ps, char c)
{
    if (!is_punct(ps, c)) {
        char what[8] = {'\'', c, '\'', 0};
        return expected(ps, what);
    }
    next(ps);
    return CP_OK;
}

/* The decoded text of a quoted token (string or backquoted identifier), newly allocated. */
static char *unquote(const tok *t)
{
    char q = t->p[0];
    cp_buf b = CP_BUF_INIT;
    cp_buf_reserve(&b, t->len);
    for (size_t i = 1; i + 1 < t->len; i++) {
        char c = t->p[i];
        if (q != '`' && c == '\\' && i + 2 < t->len) {
            char n = t->p[++i];
            switch (n) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case '0':
                c = '\0';
                break;
            default:
                c = n;
                break; /* \' \" \\ and anything else: the character itself */
            }
        } else if (c == q && i + 2 < t->len && t->p[i + 1] == q) {
            i++;
        }
        cp_buf_putc(&b, c);
    }
    char *s = cp_strndup(b.p ? b.p : "", b.len);
    cp_buf_free(&b);
    return s;
}

static void lower(char *s)
{
    for (; *s; s++) {
        *s = (char) tolower((unsigned char) *s);
    }
}

/* An identifier (bare or backquoted), lower-cased, newly allocated; NULL after failing. */
static char *ident(parser *ps, const char *what)
{
    char *s = NULL;
    if (ps->cur.type == T_WORD) {
        s = cp_strndup(ps->cur.p, ps->cur.len);
    } else if (ps->cur.type == T_QIDENT) {
        s = unquote(&ps->cur);
    } else {
        expected(ps, what);
        return NULL;
    }
    lower(s);
    next(ps);
    return s;
}

static char *string_lit(parser *ps, const char *what)
{
    if (ps->cur.type != T_STRING) {
        expected(ps, what);
        return NULL;
    }
    char *s = unquote(&ps->cur);
    next(ps);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Types                                                                                       */

static int number_arg(parser *ps, int *out)
{
    if (ps->cur.type != T_NUMBER) {
        return expected(ps, "a number");
    }
    char tmp[16];
    if (ps->cur.len >= sizeof(tmp)) {
        return fail_at(ps, ps->cur.p, "%s", "number too large");
    }
    memcpy(tmp, ps->cur.p, ps->cur.len);
    tmp[ps->cur.len] = 0;
    char *e;
    long v = strtol(tmp, &e, 10);
    if (*e || v < 0 || v > 65535) {
        return fail_at(ps, ps->cur.p, "bad number '%s'", tmp);
    }
    *out = (int) v;
    next(ps);
    return CP_OK;
}

static const struct {
    const char *word;
    cp_ddl_kind kind;
    const char *canon;
} simple_types[] = {
    {"string", CP_DDL_STRING, "string"},
    {"tinyint", CP_DDL_TINYINT, "tinyint"},
    {"smallint", CP_DDL_SMALLINT, "smallint"},
    {"int", CP_DDL_INT, "int"},
    {"integer", CP_DDL_INT, "int"},
    {"bigint", CP_DDL_BIGINT, "bigint"},
    {"float", CP_DDL_FLOAT, "float"},
    {"real", CP_DDL_FLOAT, "float"},
    {"double", CP_DDL_DOUBLE, "double"},
    {"boolean", CP_DDL_BOOLEAN, "boolean"},
    {"timestamp", CP_DDL_TIMESTAMP, "timestamp"},
    {"date", CP_DDL_DATE, "date"},
};

/* Parse a type, appending its canonical text to `text`. */
static int parse_type_into(parser *ps, cp_ddl_type *out, cp_buf *text, int depth)
{
    if (depth > 32) {
        return fail_at(ps, ps->cur.p, "%s", "type nested too deeply");
    }
    if (ps->cur.type != T_WORD) {
        return expected(ps, "a type");
    }
    const tok t = ps->cur;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < sizeof(simple_types) / sizeof(simple_types[0]); i++) {
        if (tok_is_kw(&t, simple_types[i].word)) {
            out->kind = simple_types[i].kind;
            cp_buf_puts(text, simple_types[i].canon);
            next(ps);
            if (out->kind == CP_DDL_DOUBLE && is_kw(ps, "precision")) {
                next(ps);
            }
            return CP_OK;
        }
    }
    if (tok_is_kw(&t, "varchar") || tok_is_kw(&t, "char")) {
        out->kind = tok_is_kw(&t, "char") ? CP_DDL_CHAR : CP_DDL_VARCHAR;
        cp_buf_puts(text, out->kind == CP_DDL_CHAR ? "char" : "varchar");
        next(ps);
        if (is_punct(ps, '(')) {
            next(ps);
            if (number_arg(ps, &out->length) < 0 || expect_punct(ps, ')') < 0) {
                return CP_EINVAL;
            }
            if (out->length < 1) {
                return fail_at(ps, t.p, "%s", "length must be at least 1");
            }
            cp_buf_printf(text, "(%d)", out->length);
        } else if (out->kind == CP_DDL_CHAR) {
            return expected(ps, "'(' and a length");
        }
        return CP_OK;
    }
    if (tok_is_kw(&t, "decimal") || tok_is_kw(&t, "numeric")) {
        out->kind = CP_DDL_DECIMAL;
        out->precision = 10;
        out->scale = 0;
        next(ps);
        if (is_punct(ps, '(')) {
            next(ps);
            if (number_arg(ps, &out->precision) < 0) {
                return CP_EINVAL;
            }
            if (is_punct(ps, ',')) {
                next(ps);
                if (number_arg(ps, &out->scale) < 0) {
                    return CP_EINVAL;
                }
            }
            if (expect_punct(ps, ')') < 0) {
                return CP_EINVAL;
            }
            if (out->precision < 1 || out->precision > 38 || out->scale > out->precision) {
                return fail_at(ps, t.p, "%s",
                               "decimal precision must be 1..38 and scale at most the precision");
            }
        }
        cp_buf_printf(text, "decimal(%d,%d)", out->precision, out->scale);
        return CP_OK;
    }
    cp_ddl_type inner;
    if (tok_is_kw(&t, "array")) {
        out->kind = CP_DDL_ARRAY;
        next(ps);
        cp_buf_puts(text, "array<");
        if (expect_punct(ps, '<') < 0 || parse_type_into(ps, &inner, text, depth + 1) < 0 ||
            expect_punct(ps, '>') < 0) {
            return CP_EINVAL;
        }
        cp_buf_putc(text, '>');
        return CP_OK;
    }
    if (tok_is_kw(&t, "map")) {
        out->kind = CP_DDL_MAP;
        next(ps);
        cp_buf_puts(text, "map<");
        if (expect_punct(ps, '<') < 0 || parse_type_into(ps, &inner, text, depth + 1) < 0 ||
            expect_punct(ps, ',') < 0) {
            return CP_EINVAL;
        }
        cp_buf_putc(text, ',');
        if (parse_type_into(ps, &inner, text, depth + 1) < 0 || expect_punct(ps, '>') < 0) {
            return CP_EINVAL;
        }
        cp_buf_putc(text, '>');
        return CP_OK;
    }
    if (tok_is_kw(&t, "struct")) {
        out->kind = CP_DDL_STRUCT;
        next(ps);
        cp_buf_puts(text, "struct<");
        if (expect_punct(ps, '<') < 0) {
            return CP_EINVAL;
        }
        for (int first = 1;; first = 0) {
            if (!first) {
                cp_buf_putc(text, ',');
            }
            char *field = ident(ps, "a field name");
            if (!field) {
                return CP_EINVAL;
            }
            cp_buf_puts(text, field);
            cp_free(field);
            cp_buf_putc(text, ':');
            if (expect_punct(ps, ':') < 0 || parse_type_into(ps, &inner, text, depth + 1) < 0) {
                return CP_EINVAL;
            }
            if (!is_punct(ps, ',')) {
                break;
            }
            next(ps);
        }
        if (expect_punct(ps, '>') < 0) {
            return CP_EINVAL;
        }
        cp_buf_putc(text, '>');
        return CP_OK;
    }
    char name[48];
    snprintf(name, sizeof(name), "%.*s", (int) (t.len > 40 ? 40 : t.len), t.p);
    if (tok_is_kw(&t, "binary") || tok_is_kw(&t, "uniontype") || tok_is_kw(&t, "interval")) {
        return fail_at(ps, t.p, "type %s is not supported by the JSON reader", name);
    }
    return fail_at(ps, t.p, "unknown type '%s'", name);
}

static int parse_type(parser *ps, cp_ddl_type *out)
{
    cp_buf text = CP_BUF_INIT;
    int rc = parse_type_into(ps, out, &text, 0);
    if (rc == CP_OK) {
        out->text = cp_strndup(text.p, text.len);
    }
    cp_buf_free(&text);
    return rc;
}

int cp_ddl_parse_type(cp_slice text, cp_ddl_type *out, cp_err *err)
{
    parser ps;
    parser_init(&ps, text, err);
    int rc = parse_type(&ps, out);
    if (rc == CP_OK && ps.cur.type != T_EOF) {
        cp_free(out->text);
        out->text = NULL;
        rc = expected(&ps, "end of type");
    }
    return rc;
}

const char *cp_ddl_sqlite_type(cp_ddl_kind kind)
{
    /* SQLite derives affinity from substrings: INT -> INTEGER, CHAR/TEXT -> TEXT,
     * DOUB/FLOA/REAL -> REAL; the leading word keeps the Athena type visible to output. */
    switch (kind) {
    case CP_DDL_STRING:
        return "STRING TEXT";
    case CP_DDL_VARCHAR:
        return "VARCHAR";
    case CP_DDL_CHAR:
        return "CHAR";
    case CP_DDL_TINYINT:
        return "TINYINT";
    case CP_DDL_SMALLINT:
        return "SMALLINT";
    case CP_DDL_INT:
        return "INTEGER";
    case CP_DDL_BIGINT:
        return "BIGINT";
    case CP_DDL_FLOAT:
        return "FLOAT";
    case CP_DDL_DOUBLE:
        return "DOUBLE";
    case CP_DDL_DECIMAL:
        return "DECIMAL REAL";
    case CP_DDL_BOOLEAN:
        return "BOOLEAN INT";
    case CP_DDL_TIMESTAMP:
        return "TIMESTAMP TEXT";
    case CP_DDL_DATE:
        return "DATE TEXT";
    case CP_DDL_ARRAY:
        return "ARRAY JSON TEXT";
    case CP_DDL_MAP:
        return "MAP JSON TEXT";
    case CP_DDL_STRUCT:
        return "STRUCT JSON TEXT";
    }
    return "TEXT";
}

/* ------------------------------------------------------------------------------------------ */
/* CREATE EXTERNAL TABLE                                                                       */

static void col_free(cp_ddl_col *c)
{
    cp_free(c->name);
    cp_free(c->type.text);
    cp_free(c->comment);
}

static void props_free(cp_ddl_prop *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cp_free(p[i].key);
        cp_free(p[i].value);
    }
    cp_free(p);
}

void cp_ddl_table_free(cp_ddl_table *t)
{
    if (!t) {
        return;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        col_free(&t->cols[i]);
    }
    for (size_t i = 0; i < t->nparts; i++) {
        col_free(&t->parts[i]);
    }
    cp_free(t->cols);
    cp_free(t->parts);
    props_free(t->serde_props, t->nserde_props);
    props_free(t->tbl_props, t->ntbl_props);
    cp_free(t->name);
    cp_free(t->serde_class);
    cp_free(t->comment);
    cp_free(t->location);
    cp_free(t->bucket);
    cp_free(t->prefix);
    cp_free(t->ddl);
    cp_free(t);
}

/* A table name: [db.]name, validated as Athena does, lower-cased into *out. */
static int table_name(parser *ps, char **out)
{
    const char *at = ps->cur.p;
    char *name = ident(ps, "a table name");
    if (!name) {
        return CP_EINVAL;
    }
    if (is_punct(ps, '.')) {
        /* db.table: one database, so the qualifier is dropped. */
        next(ps);
        cp_free(name);
        at = ps->cur.p;
        name = ident(ps, "a table name");
        if (!name) {
            return CP_EINVAL;
        }
    }
    size_t n = strlen(name);
    int ok = n > 0 && n <= 128 && strncmp(name, "sqlite_", 7) != 0;
    for (size_t i = 0; ok && i < n; i++) {
        ok = islower((unsigned char) name[i]) || isdigit((unsigned char) name[i]) || name[i] == '_';
    }
    if (!ok) {
        int rc = fail_at(ps, at,
                         "bad table name '%s': use letters, digits and underscores "
                         "(names starting with sqlite_ are reserved)",
                         name);
        cp_free(name);
        return rc;
    }
    *out = name;
    return CP_OK;
}

/* (col type [COMMENT 'x'], ...) into *cols / *n. */
static int column_list(parser *ps, cp_ddl_col **cols, size_t *n)
{
    if (expect_punct(ps, '(') < 0) {
        return CP_EINVAL;
    }
    size_t cap = 0;
    for (;;) {
        const char *at = ps->cur.p;
        char *name = ident(ps, "a column name");
        if (!name) {
            return CP_EINVAL;
        }
        if (!name[0] || name[0] == '$') {
            int rc = fail_at(ps, at, "bad column name '%s' ($ names are reserved)", name);
            cp_free(name);
            return rc;
        }
        for (const char *c = name; *c; c++) {
            if ((unsigned char) *c < 0x20) {
                cp_free(name);
                return fail_at(ps, at, "%s", "control character in a column name");
            }
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *cols = cp_realloc(*cols, cap * sizeof(**cols));
        }
        cp_ddl_col *c = &(*cols)[(*n)++];
        memset(c, 0, sizeof(*c));
        c->name = name;
        if (parse_type(ps, &c->type) < 0) {
            return CP_EINVAL;
        }
        if (is_kw(ps, "comment")) {
            next(ps);
            if (!(c->comment = string_lit(ps, "a comment string"))) {
                return CP_EINVAL;
            }
        }
        if (is_punct(ps, ',')) {
            next(ps);
            continue;
        }
        return expect_punct(ps, ')');
    }
}

/* ('k'='v', ...) into *props / *n (appending). */
static int prop_list(parser *ps, cp_ddl_prop **props, size_t *n)
{
    if (expect_punct(ps, '(') < 0) {
        return CP_EINVAL;
    }
    if (is_punct(ps, ')')) {
        next(ps);
        return CP_OK;
    }
    for (;;) {
        char *k = string_lit(ps, "a property name string");
        if (!k) {
            return CP_EINVAL;
        }
        if (expect_punct(ps, '=') < 0) {
            cp_free(k);
            return CP_EINVAL;
        }
        char *v = string_lit(ps, "a property value string");
        if (!v) {
            cp_free(k);
            return CP_EINVAL;
        }
        *props = cp_realloc(*props, (*n + 1) * sizeof(**props));
        (*props)[*n].key = k;
        (*props)[*n].value = v;
        (*n)++;
        if (is_punct(ps, ',')) {
            next(ps);
            continue;
        }
        return expect_punct(ps, ')');
    }
}

static int serde_kind(const char *cls, cp_ddl_serde *out)
{
    if (strcasecmp(cls, "org.openx.data.jsonserde.JsonSerDe") == 0) {
        *out = CP_DDL_SERDE_OPENX;
        return 1;
    }
    if (strcasecmp(cls, "org.apache.hive.hcatalog.data.JsonSerDe") == 0 ||
        strcasecmp(cls, "org.apache.hadoop.hive.serde2.JsonSerDe") == 0) {
        *out = CP_DDL_SERDE_HCATALOG;
        return 1;
    }
    return 0;
}

/* s3://bucket/prefix -> bucket, prefix ("" or ending in '/'). */
static int split_location(parser *ps, const char *at, cp_ddl_table *t)
{
    const char *loc = t->location;
    const char *rest = NULL;
    static const char *schemes[] = {"s3://", "s3a://", "s3n://"};
    for (size_t i = 0; i < 3; i++) {
        if (strncasecmp(loc, schemes[i], strlen(schemes[i])) == 0) {
            rest = loc + strlen(schemes[i]);
        }
    }
    if (!rest) {
        return fail_at(ps, at, "LOCATION '%s' is not an s3:// URL", loc);
    }
    const char *slash = strchr(rest, '/');
    size_t blen = slash ? (size_t) (slash - rest) : strlen(rest);
    if (blen == 0 || blen > 63) {
        return fail_at(ps, at, "LOCATION '%s' names no bucket", loc);
    }
    t->bucket = cp_strndup(rest, blen);
    const char *pfx = slash ? slash + 1 : "";
    size_t plen = strlen(pfx);
    cp_buf b = CP_BUF_INIT;
    cp_buf_append(&b, pfx, plen);
    if (plen && pfx[plen - 1] != '/') {
        /* Athena reads a LOCATION as a folder whether or not it ends in '/'. */
        cp_buf_putc(&b, '/');
    }
    t->prefix = cp_strndup(b.p ? b.p : "", b.len);
    cp_buf_free(&b);
    return CP_OK;
}

static int create_body(parser *ps, cp_ddl_table *t)
{
    if (expect_kw(ps, "create") < 0 || expect_kw(ps, "external") < 0 ||
        expect_kw(ps, "table") < 0) {
        return CP_EINVAL;
    }
    if (is_kw(ps, "if")) {
        next(ps);
        if (expect_kw(ps, "not") < 0 || expect_kw(ps, "exists") < 0) {
            return CP_EINVAL;
        }
        t->if_not_exists = 1;
    }
    if (table_name(ps, &t->name) < 0 || column_list(ps, &t->cols, &t->ncols) < 0) {
        return CP_EINVAL;
    }
    int seen_serde = 0, seen_stored = 0, seen_props = 0, jsonfile = 0;
    const char *loc_at = NULL;
    while (ps->cur.type != T_EOF && !is_punct(ps, ';')) {
        const char *at = ps->cur.p;
        if (is_kw(ps, "comment") && !t->comment) {
            next(ps);
            if (!(t->comment = string_lit(ps, "a comment string"))) {
                return CP_EINVAL;
            }
        } else if (is_kw(ps, "partitioned") && !t->nparts) {
            next(ps);
            if (expect_kw(ps, "by") < 0 || column_list(ps, &t->parts, &t->nparts) < 0) {
                return CP_EINVAL;
            }
        } else if (is_kw(ps, "row") && !seen_serde) {
            next(ps);
            if (expect_kw(ps, "format") < 0) {
                return CP_EINVAL;
            }
            if (is_kw(ps, "delimited")) {
                return fail_at(ps, ps->cur.p, "%s",
                               "ROW FORMAT DELIMITED is not supported: changepipe reads JSON "
                               "objects (use a JSON SerDe)");
            }
            if (expect_kw(ps, "serde") < 0) {
                return CP_EINVAL;
            }
            const char *cls_at = ps->cur.p;
            if (!(t->serde_class = string_lit(ps, "a SerDe class string"))) {
                return CP_EINVAL;
            }
            if (!serde_kind(t->serde_class, &t->serde)) {
                return fail_at(ps, cls_at,
                               "SerDe '%.60s' is not supported: use "
                               "org.openx.data.jsonserde.JsonSerDe or "
                               "org.apache.hive.hcatalog.data.JsonSerDe",
                               t->serde_class);
            }
            seen_serde = 1;
            if (is_kw(ps, "with")) {
                next(ps);
                if (expect_kw(ps, "serdeproperties") < 0 ||
                    prop_list(ps, &t->serde_props, &t->nserde_props) < 0) {
                    return CP_EINVAL;
                }
            }
        } else if (is_kw(ps, "with") && seen_serde && !t->nserde_props) {
            next(ps);
            if (expect_kw(ps, "serdeproperties") < 0 ||
                prop_list(ps, &t->serde_props, &t->nserde_props) < 0) {
                return CP_EINVAL;
            }
        } else if (is_kw(ps, "stored") && !seen_stored) {
            next(ps);
            if (expect_kw(ps, "as") < 0) {
                return CP_EINVAL;
            }
            seen_stored = 1;
            if (is_kw(ps, "textfile")) {
                next(ps);
            } else if (is_kw(ps, "jsonfile")) {
                next(ps);
                jsonfile = 1;
            } else if (is_kw(ps, "inputformat")) {
                next(ps);
                const char *in_at = ps->cur.p;
                char *in = string_lit(ps, "an input format class string");
                if (!in) {
                    return CP_EINVAL;
                }
                int text = strstr(in, "TextInputFormat") != NULL;
                if (!text) {
                    int rc = fail_at(ps, in_at,
                                     "input format '%.60s' is not supported: JSON tables are "
                                     "text files (org.apache.hadoop.mapred.TextInputFormat)",
                                     in);
                    cp_free(in);
                    return rc;
                }
                cp_free(in);
                char *outf = NULL;
                if (expect_kw(ps, "outputformat") < 0 ||
                    !(outf = string_lit(ps, "an output format class string"))) {
                    return CP_EINVAL;
                }
                cp_free(outf);
            } else {
                char name[48];
                snprintf(name, sizeof(name), "%.*s", (int) (ps->cur.len > 40 ? 40 : ps->cur.len),
                         ps->cur.p);
                return fail_at(ps, ps->cur.p,
                               "STORED AS %s is not supported: JSON tables are text files", name);
            }
        } else if (is_kw(ps, "location") && !t->location) {
            next(ps);
            loc_at = ps->cur.p;
            if (!(t->location = string_lit(ps, "an s3:// location string"))) {
                return CP_EINVAL;
            }
        } else if (is_kw(ps, "tblproperties") && !seen_props) {
            next(ps);
            seen_props = 1;
            if (prop_list(ps, &t->tbl_props, &t->ntbl_props) < 0) {
                return CP_EINVAL;
            }
        } else if (is_kw(ps, "clustered") || is_kw(ps, "skewed")) {
            return fail_at(ps, at, "%s",
                           "bucketed (CLUSTERED BY / SKEWED BY) tables are not "
                           "supported");
        } else {
            return expected(ps, "a table clause (COMMENT, PARTITIONED BY, ROW FORMAT, "
                                "STORED AS, LOCATION, TBLPROPERTIES)");
        }
    }
    if (is_punct(ps, ';')) {
        next(ps);
    }
    if (ps->cur.type != T_EOF) {
        return expected(ps, "end of statement");
    }
    if (!seen_serde) {
        if (!jsonfile) {
            return fail_at(ps, ps->cur.p, "%s",
                           "ROW FORMAT SERDE is required: changepipe reads JSON with "
                           "org.openx.data.jsonserde.JsonSerDe or "
                           "org.apache.hive.hcatalog.data.JsonSerDe");
        }
        t->serde = CP_DDL_SERDE_HCATALOG;
        t->serde_class = cp_strdup("org.apache.hive.hcatalog.data.JsonSerDe");
    }
    if (!t->location) {
        return fail_at(ps, ps->cur.p, "%s", "LOCATION 's3://bucket/prefix/' is required");
    }
    if (split_location(ps, loc_at, t) < 0) {
        return CP_EINVAL;
    }
    /* Hive: "Column repeated in partitioning columns" and duplicate data columns. */
    size_t all = t->ncols + t->nparts;
    for (size_t i = 0; i < all; i++) {
        const char *a = i < t->ncols ? t->cols[i].name : t->parts[i - t->ncols].name;
        for (size_t j = i + 1; j < all; j++) {
            const char *b = j < t->ncols ? t->cols[j].name : t->parts[j - t->ncols].name;
            if (strcmp(a, b) == 0) {
                ps->failed = 0;
                return fail_at(ps, ps->start,
                               j >= t->ncols && i < t->ncols
                                   ? "column '%s' is both a data column and a partition column"
                                   : "column '%s' is declared twice",
                               a);
            }
        }
    }
    return CP_OK;
}

static cp_slice trim(cp_slice s)
{
    while (s.len && isspace((unsigned char) s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len && (isspace((unsigned char) s.p[s.len - 1]) || s.p[s.len - 1] == ';')) {
        s.len--;
    }
    return s;
}

int cp_ddl_parse_create(cp_slice sql, cp_ddl_table **out, cp_err *err)
{
    parser ps;
    parser_init(&ps, sql, err);
    cp_ddl_table *t = cp_calloc(1, sizeof(*t));
    int rc = create_body(&ps, t);
    if (rc < 0) {
        cp_ddl_table_free(t);
        return rc;
    }
    cp_slice s = trim(sql);
    t->ddl = cp_strndup(s.p, s.len);
    *out = t;
    return CP_OK;
}

static const char *prop_get(const cp_ddl_prop *p, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(p[i].key, key) == 0) {
            return p[i].value;
        }
    }
    return NULL;
}

const char *cp_ddl_serde_prop(const cp_ddl_table *t, const char *key)
{
    return prop_get(t->serde_props, t->nserde_props, key);
}

const char *cp_ddl_tbl_prop(const cp_ddl_table *t, const char *key)
{
    return prop_get(t->tbl_props, t->ntbl_props, key);
}

int cp_ddl_prop_true(const char *value)
{
    return value && strcasecmp(value, "true") == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Classification                                                                              */

/* Copy an identifier-ish name into out[256] (lower case), then skip ".name" parts. */
static int stmt_name(parser *ps, char out[256])
{
    char *n = NULL;
    if (table_name(ps, &n) < 0) {
        return CP_EINVAL;
    }
    snprintf(out, 256, "%s", n);
    cp_free(n);
    return CP_OK;
}

static int stmt_end(parser *ps)
{
    if (is_punct(ps, ';')) {
        next(ps);
    }
    if (ps->cur.type != T_EOF) {
        return expected(ps, "end of statement");
    }
    return CP_OK;
}

int cp_ddl_classify(cp_slice sql, cp_ddl_stmt *out, cp_err *err)
{
    memset(out, 0, sizeof(*out));
    parser ps;
    parser_init(&ps, sql, err);
    if (is_kw(&ps, "create")) {
        next(&ps);
        if (is_kw(&ps, "external")) {
            out->kind = CP_DDL_CREATE;
            return CP_OK;
        }
        if (is_kw(&ps, "table")) {
            /* A plain CREATE TABLE is SQLite's (a scratch table for the session), unless it
             * carries Hive clauses: then the user meant an Athena table. */
            for (; ps.cur.type != T_EOF && ps.cur.type != T_BAD; next(&ps)) {
                if (is_kw(&ps, "serde") || is_kw(&ps, "location") ||
                    is_kw(&ps, "serdeproperties")) {
                    return cp_err_set(err, CP_EINVAL,
                                      "only external tables are supported: use CREATE EXTERNAL "
                                      "TABLE ... LOCATION 's3://...'");
                }
            }
        }
        return CP_OK;
    }
    if (is_kw(&ps, "drop")) {
        next(&ps);
        if (!is_kw(&ps, "table")) {
            return CP_OK;
        }
        next(&ps);
        out->kind = CP_DDL_DROP;
        if (is_kw(&ps, "if")) {
            next(&ps);
            if (expect_kw(&ps, "exists") < 0) {
                return CP_EINVAL;
            }
            out->if_exists = 1;
        }
        if (stmt_name(&ps, out->name) < 0) {
            return CP_EINVAL;
        }
        return stmt_end(&ps);
    }
    if (is_kw(&ps, "show")) {
        next(&ps);
        if (is_kw(&ps, "tables")) {
            next(&ps);
            out->kind = CP_DDL_SHOW_TABLES;
            if (is_kw(&ps, "in") || is_kw(&ps, "from")) {
                next(&ps);
                char *db = ident(&ps, "a database name");
                if (!db) {
                    return CP_EINVAL;
                }
                cp_free(db);
            }
            if (is_kw(&ps, "like")) {
                next(&ps);
            }
            if (ps.cur.type == T_STRING) {
                char *pat = string_lit(&ps, "a pattern");
                snprintf(out->pattern, sizeof(out->pattern), "%s", pat);
                cp_free(pat);
            }
            return stmt_end(&ps);
        }
        if (is_kw(&ps, "create")) {
            next(&ps);
            if (expect_kw(&ps, "table") < 0 || stmt_name(&ps, out->name) < 0) {
                return CP_EINVAL;
            }
            out->kind = CP_DDL_SHOW_CREATE;
            return stmt_end(&ps);
        }
        if (is_kw(&ps, "columns")) {
            next(&ps);
            if (!is_kw(&ps, "in") && !is_kw(&ps, "from")) {
                return expected(&ps, "IN or FROM");
            }
            next(&ps);
            if (stmt_name(&ps, out->name) < 0) {
                return CP_EINVAL;
            }
            out->kind = CP_DDL_SHOW_COLUMNS;
            if (is_kw(&ps, "in") || is_kw(&ps, "from")) {
                next(&ps);
                char *db = ident(&ps, "a database name");
                cp_free(db);
                if (!db) {
                    return CP_EINVAL;
                }
            }
            return stmt_end(&ps);
        }
        if (is_kw(&ps, "partitions")) {
            next(&ps);
            if (stmt_name(&ps, out->name) < 0) {
                return CP_EINVAL;
            }
            out->kind = CP_DDL_SHOW_PARTITIONS;
            return stmt_end(&ps);
        }
        out->kind = CP_DDL_UNSUPPORTED;
        return cp_err_set(err, CP_EINVAL,
                          "supported SHOW statements: SHOW TABLES, SHOW CREATE TABLE, SHOW "
                          "COLUMNS, SHOW PARTITIONS");
    }
    if (is_kw(&ps, "describe") || is_kw(&ps, "desc")) {
        next(&ps);
        if (is_kw(&ps, "formatted") || is_kw(&ps, "extended")) {
            next(&ps);
        }
        if (stmt_name(&ps, out->name) < 0) {
            return CP_EINVAL;
        }
        out->kind = CP_DDL_DESCRIBE;
        return stmt_end(&ps);
    }
    if (is_kw(&ps, "msck")) {
        next(&ps);
        if (expect_kw(&ps, "repair") < 0 || expect_kw(&ps, "table") < 0 ||
            stmt_name(&ps, out->name) < 0) {
            return CP_EINVAL;
        }
        out->kind = CP_DDL_MSCK;
        return stmt_end(&ps);
    }
    if (is_kw(&ps, "alter")) {
        next(&ps);
        if (is_kw(&ps, "table")) {
            out->kind = CP_DDL_UNSUPPORTED;
            return cp_err_set(err, CP_EINVAL,
                              "ALTER TABLE is not supported: partitions are discovered from the "
                              "object listing at query time; DROP and CREATE the table to change "
                              "it");
        }
    }
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Scripts and words                                                                           */

int cp_ddl_split(cp_slice script, cp_ddl_stmt_cb cb, void *ctx)
{
    const char *p = script.p ? script.p : "", *end = p + script.len, *s = p;
    while (p < end) {
        char c = *p;
        if (c == '\'' || c == '"' || c == '`') {
            const char *e = quoted_end(p, end, c == '\'');
            p = e ? e : end;
            continue;
        }
        if (c == '[') {
            const char *e = memchr(p, ']', (size_t) (end - p));
            p = e ? e + 1 : end;
            continue;
        }
        if ((c == '-' && p + 1 < end && p[1] == '-') || (c == '/' && p + 1 < end && p[1] == '*')) {
            if (skip_space(&p, end) < 0) {
                p = end;
            }
            continue;
        }
        if (c == ';') {
            cp_slice st = {s, (size_t) (p - s)};
            const char *q = st.p;
            skip_space(&q, st.p + st.len);
            if (q < st.p + st.len) {
                int rc = cb(ctx, st);
                if (rc) {
                    return rc;
                }
            }
            s = p + 1;
        }
        p++;
    }
    const char *q = s;
    skip_space(&q, end);
    if (q < end) {
        return cb(ctx, (cp_slice){s, (size_t) (end - s)});
    }
    return 0;
}

void cp_ddl_words(cp_slice sql, cp_ddl_word_cb cb, void *ctx)
{
    const char *p = sql.p ? sql.p : "", *end = p + sql.len;
    cp_buf w = CP_BUF_INIT;
    while (p < end) {
        if (skip_space(&p, end) < 0 || p >= end) {
            break;
        }
        char c = *p;
        if (c == '\'') {
            const char *e = quoted_end(p, end, 1);
            p = e ? e : end;
        } else if (c == '"' || c == '`' || c == '[') {
            char close = c == '[' ? ']' : c;
            const char *q = p + 1;
            cp_buf_reset(&w);
            while (q < end) {
                if (*q == close) {
                    if (close != ']' && q + 1 < end && q[1] == close) {
                        cp_buf_putc(&w, close);
                        q += 2;
                        continue;
                    }
                    break;
                }
                cp_buf_putc(&w, *q++);
            }
            cb(ctx, cp_slice_of(w.p ? w.p : "", w.len));
            p = q < end ? q + 1 : end;
        } else if (is_word_start((unsigned char) c)) {
            const char *q = p + 1;
            while (q < end && is_word_char((unsigned char) *q)) {
                q++;
            }
            cb(ctx, cp_slice_of(p, (size_t) (q - p)));
            p = q;
        } else {
            p++;
        }
    }
    cp_buf_free(&w);
}

static int glob_ci(const char *pat, const char *pend, const char *s)
{
    while (pat < pend) {
        if (*pat == '*') {
            pat++;
            for (;;) {
                if (glob_ci(pat, pend, s)) {
                    return 1;
                }
                if (!*s) {
                    return 0;
                }
                s++;
            }
        }
        if (!*s || tolower((unsigned char) *pat) != tolower((unsigned char) *s)) {
            return 0;
        }
        pat++;
        s++;
    }
    return *s == 0;
}

int cp_ddl_pattern_match(const char *pattern, const char *s)
{
    if (!pattern || !*pattern) {
        return 1;
    }
    const char *p = pattern;
    for (;;) {
        const char *bar = strchr(p, '|');
        const char *e = bar ? bar : p + strlen(p);
        if (glob_ci(p, e, s)) {
            return 1;
        }
        if (!bar) {
            return 0;
        }
        p = bar + 1;
    }
}
