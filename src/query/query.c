/* SPDX-License-Identifier: MIT */
/*
 * The query session: catalog + object source + one in-memory SQLite connection. Each
 * statement of a script is classified; our own DDL and SHOW/DESCRIBE statements are answered
 * here, everything else goes to SQLite after the catalog tables it names have been made into
 * virtual tables (lazily, so a statement never lists the objects of tables it does not use).
 */
#include "query/query.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/mem.h"
#include "query/catalog.h"
#include "query/ddl.h"
#include "query/output.h"
#include "query/source.h"
#include "query/vtab.h"

struct cp_query {
    cp_query_opts opts; /* strings below are our copies */
    char *data_dir, *catalog_path, *endpoint, *region, *access_key, *secret_key, *session_token;
    cp_catalog *cat;
    sqlite3 *db;
    cp_vtab_env env;
    cp_source src;
    int src_open;
    char **made; /* catalog tables made into virtual tables on this connection */
    size_t nmade;
    uint64_t statements, rows;
    cp_buf errmsg;
};

/* Where a statement's result rows go. */
typedef struct sink {
    void (*begin)(void *ctx, const cp_query_result *res);
    int (*row)(void *ctx, const cp_query_result *res, const cp_query_value *row);
    void (*end)(void *ctx);
    void *ctx;
} sink;

int cp_query_format_parse(const char *name, cp_query_format *out)
{
    static const struct {
        const char *name;
        cp_query_format fmt;
    } names[] = {{"auto", CP_QUERY_FORMAT_AUTO},   {"table", CP_QUERY_FORMAT_TABLE},
                 {"csv", CP_QUERY_FORMAT_CSV},     {"json", CP_QUERY_FORMAT_JSONL},
                 {"jsonl", CP_QUERY_FORMAT_JSONL}, {"json-lines", CP_QUERY_FORMAT_JSONL},
                 {"ndjson", CP_QUERY_FORMAT_JSONL}};
    for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].fmt;
            return CP_OK;
        }
    }
    return CP_EINVAL;
}

const char *cp_query_malformed_note(uint64_t n, char *buf, size_t cap)
{
    snprintf(buf, cap, "%llu malformed line%s ignored", (unsigned long long) n, n == 1 ? "" : "s");
    return buf;
}

static void note(cp_query *q, const char *fmt, ...) CP_PRINTF(2, 3);
static void note(cp_query *q, const char *fmt, ...)
{
    if (!q->opts.diag) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(q->opts.diag, fmt, ap);
    va_end(ap);
    fputc('\n', q->opts.diag);
    fflush(q->opts.diag);
}

/* Record a failure: the whole text for cp_query_errmsg, the cut one in err. */
static int fail(cp_query *q, cp_err *err, int code, const char *fmt, ...) CP_PRINTF(4, 5);
static int fail(cp_query *q, cp_err *err, int code, const char *fmt, ...)
{
    cp_buf_reset(&q->errmsg);
    va_list ap;
    va_start(ap, fmt);
    char *s = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    cp_buf_puts(&q->errmsg, s ? s : "out of memory");
    sqlite3_free(s);
    return cp_err_set(err, code, "%s", q->errmsg.p);
}

/* ------------------------------------------------------------------------------------------ */
/* Session                                                                                     */

static const cp_ddl_table *env_lookup(void *ctx, const char *name)
{
    cp_query *q = ctx;
    return cp_catalog_find(q->cat, name);
}

static int env_source(void *ctx, const cp_source **out, cp_err *err)
{
    cp_query *q = ctx;
    if (!q->src_open) {
        int rc;
        if (q->endpoint) {
            cp_source_s3_cfg cfg = {q->endpoint,   q->region,        q->access_key,
                                    q->secret_key, q->session_token, 0};
            rc = cp_source_s3_new(&cfg, &q->src, err);
        } else {
            rc = cp_source_local_new(q->opts.store, q->data_dir, &q->src, err);
        }
        if (rc < 0) {
            return rc;
        }
        q->src_open = 1;
    }
    *out = &q->src;
    return CP_OK;
}

static char *dup_opt(const char *s)
{
    return s ? cp_strdup(s) : NULL;
}

int cp_query_open(const cp_query_opts *opts, cp_query **out, cp_err *err)
{
    cp_query *q = cp_calloc(1, sizeof(*q));
    q->opts = *opts;
    q->data_dir = dup_opt(opts->data_dir);
    q->endpoint = opts->endpoint && *opts->endpoint ? cp_strdup(opts->endpoint) : NULL;
    q->region = dup_opt(opts->region);
    q->access_key = dup_opt(opts->access_key);
    q->secret_key = dup_opt(opts->secret_key);
    q->session_token = dup_opt(opts->session_token);
    if (opts->catalog_path) {
        q->catalog_path = cp_strdup(opts->catalog_path);
    } else if (opts->data_dir) {
        cp_buf p = CP_BUF_INIT;
        cp_buf_printf(&p, "%s/query/catalog.json", opts->data_dir);
        q->catalog_path = cp_strndup(p.p, p.len);
        cp_buf_free(&p);
    }
    int rc = cp_catalog_open(q->catalog_path, &q->cat, err);
    if (rc < 0) {
        cp_query_close(q);
        return rc;
    }
    if (sqlite3_open_v2(":memory:", &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = cp_err_set(err, CP_EIO, "cannot start SQLite: %s",
                        q->db ? sqlite3_errmsg(q->db) : "out of memory");
        cp_query_close(q);
        return rc;
    }
    q->env.lookup = env_lookup;
    q->env.source = env_source;
    q->env.ctx = q;
    if (cp_vtab_register(q->db, &q->env) < 0) {
        rc = cp_err_set(err, CP_EIO, "cannot register the table module: %s", sqlite3_errmsg(q->db));
        cp_query_close(q);
        return rc;
    }
    *out = q;
    return CP_OK;
}

void cp_query_close(cp_query *q)
{
    if (!q) {
        return;
    }
    /* Virtual tables go with the connection; the source must outlive their cursors. */
    if (q->db) {
        sqlite3_close_v2(q->db);
    }
    for (size_t i = 0; i < q->nmade; i++) {
        cp_free(q->made[i]);
    }
    cp_free(q->made);
    if (q->src_open) {
        cp_source_free(&q->src);
    }
    cp_catalog_close(q->cat);
    cp_free(q->data_dir);
    cp_free(q->catalog_path);
    cp_free(q->endpoint);
    cp_free(q->region);
    cp_free(q->access_key);
    cp_free(q->secret_key);
    cp_free(q->session_token);
    cp_buf_free(&q->errmsg);
    cp_free(q);
}

const char *cp_query_errmsg(const cp_query *q)
{
    return q->errmsg.p ? q->errmsg.p : "";
}

void cp_query_get_stats(const cp_query *q, cp_query_stats *out)
{
    const cp_vtab_stats *v = &q->env.stats;
    *out = (cp_query_stats){q->statements,     q->rows,           v->list_calls,
                            v->objects_listed, v->objects_pruned, v->objects_opened,
                            v->bytes_read,     v->lines,          v->malformed_ignored};
}

void cp_query_interrupt(cp_query *q)
{
    sqlite3_interrupt(q->db);
}

/* ------------------------------------------------------------------------------------------ */
/* Virtual tables on the connection                                                            */

static int made_index(const cp_query *q, const char *name)
{
    for (size_t i = 0; i < q->nmade; i++) {
        if (strcasecmp(q->made[i], name) == 0) {
            return (int) i;
        }
    }
    return -1;
}

static void unmake(cp_query *q, size_t i)
{
    char *sql = sqlite3_mprintf("DROP TABLE IF EXISTS main.\"%w\"", q->made[i]);
    sqlite3_exec(q->db, sql, NULL, NULL, NULL);
    sqlite3_free(sql);
    cp_free(q->made[i]);
    q->made[i] = q->made[--q->nmade];
}

static void unmake_all(cp_query *q)
{
    while (q->nmade) {
        unmake(q, q->nmade - 1);
    }
}

typedef struct want_ctx {
    cp_query *q;
    int rc;
    cp_err *err;
} want_ctx;

/* A word of the statement: make the catalog table of that name, once. */
static void want_word(void *ctx, cp_slice word)
{
    want_ctx *w = ctx;
    cp_query *q = w->q;
    if (w->rc < 0 || word.len == 0 || word.len > 128) {
        return;
    }
    char name[129];
    memcpy(name, word.p, word.len);
    name[word.len] = 0;
    if (!cp_catalog_find(q->cat, name) || made_index(q, name) >= 0) {
        return;
    }
    const cp_ddl_table *t = cp_catalog_find(q->cat, name);
    char *sql =
        sqlite3_mprintf("CREATE VIRTUAL TABLE main.\"%w\" USING %s", t->name, CP_VTAB_MODULE);
    char *msg = NULL;
    int rc = sqlite3_exec(q->db, sql, NULL, NULL, &msg);
    sqlite3_free(sql);
    if (rc != SQLITE_OK) {
        if (rc == SQLITE_ERROR && msg && strstr(msg, "already exists")) {
            /* A scratch table of the session took the name first: it shadows the catalog. */
            sqlite3_free(msg);
            return;
        }
        w->rc = fail(q, w->err, CP_EINVAL, "%s", msg ? msg : sqlite3_errmsg(q->db));
        sqlite3_free(msg);
        return;
    }
    sqlite3_free(msg);
    q->made = cp_realloc(q->made, (q->nmade + 1) * sizeof(*q->made));
    q->made[q->nmade++] = cp_strdup(t->name);
}

/* ------------------------------------------------------------------------------------------ */
/* Statements answered here                                                                    */

/* Emit a small result set of text columns. rows: nrows * ncols strings (NULL = NULL). */
static int emit_text(cp_query *q, const sink *sk, size_t ncols, const char *const *names,
                     const char *const *cells, size_t nrows)
{
    cp_query_result res = {ncols, names, NULL};
    cp_query_value *vals = cp_calloc(ncols, sizeof(*vals));
    int rc = 0;
    if (sk->begin) {
        sk->begin(sk->ctx, &res);
    }
    for (size_t r = 0; r < nrows && rc == 0; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *s = cells[r * ncols + c];
            vals[c] = s ? (cp_query_value){CP_QUERY_TEXT, 0, 0, cp_slice_str(s)}
                        : (cp_query_value){CP_QUERY_NULL, 0, 0, {NULL, 0}};
        }
        q->rows++;
        rc = sk->row(sk->ctx, &res, vals);
    }
    if (sk->end) {
        sk->end(sk->ctx);
    }
    cp_free(vals);
    return rc;
}

static int show_tables(cp_query *q, const cp_ddl_stmt *st, const sink *sk)
{
    size_t n = cp_catalog_count(q->cat), k = 0;
    const char **cells = cp_calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        const char *name = cp_catalog_at(q->cat, i)->name;
        if (cp_ddl_pattern_match(st->pattern, name)) {
            cells[k++] = name;
        }
    }
    static const char *const names[] = {"tab_name"};
    int rc = emit_text(q, sk, 1, names, cells, k);
    cp_free(cells);
    return rc;
}

static const cp_ddl_table *need_table(cp_query *q, const char *name, cp_err *err, int *rc)
{
    const cp_ddl_table *t = cp_catalog_find(q->cat, name);
    if (!t) {
        *rc = fail(q, err, CP_ENOTFOUND, "Table %s does not exist", name);
    }
    return t;
}

static int describe(cp_query *q, const cp_ddl_table *t, int columns_only, const sink *sk)
{
    size_t ncells = 3 * (t->ncols + t->nparts + 4);
    const char **cells = cp_calloc(ncells, sizeof(char *));
    if (columns_only) {
        for (size_t i = 0; i < t->ncols + t->nparts; i++) {
            cells[i] = i < t->ncols ? t->cols[i].name : t->parts[i - t->ncols].name;
        }
        static const char *const names[] = {"field"};
        int rc = emit_text(q, sk, 1, names, cells, t->ncols + t->nparts);
        cp_free(cells);
        return rc;
    }
    size_t r = 0;
    for (size_t i = 0; i < t->ncols; i++, r++) {
        cells[3 * r] = t->cols[i].name;
        cells[3 * r + 1] = t->cols[i].type.text;
        cells[3 * r + 2] = t->cols[i].comment ? t->cols[i].comment : "";
    }
    if (t->nparts) {
        /* Athena/Hive print the partition keys in a section of their own. */
        static const char *const sep[] = {
            "", "", "", "# Partition Information", "", "", "# col_name", "data_type", "comment"};
        for (size_t i = 0; i < 9; i++) {
            cells[3 * r + i] = sep[i];
        }
        r += 3;
        for (size_t i = 0; i < t->nparts; i++, r++) {
            cells[3 * r] = t->parts[i].name;
            cells[3 * r + 1] = t->parts[i].type.text;
            cells[3 * r + 2] = t->parts[i].comment ? t->parts[i].comment : "";
        }
    }
    static const char *const names[] = {"col_name", "data_type", "comment"};
    int rc = emit_text(q, sk, 3, names, cells, r);
    cp_free(cells);
    return rc;
}

typedef struct part_acc {
    char **v;
    size_t n;
} part_acc;

static int add_partition(void *ctx, const char *p)
{
    part_acc *a = ctx;
    a->v = cp_realloc(a->v, (a->n + 1) * sizeof(*a->v));
    a->v[a->n++] = cp_strdup(p);
    return 0;
}

static int show_partitions(cp_query *q, const cp_ddl_table *t, const sink *sk, cp_err *err)
{
    const cp_source *src;
    int rc = env_source(q, &src, err);
    if (rc < 0) {
        return fail(q, err, rc, "%s", err->msg);
    }
    part_acc a = {0};
    rc = cp_vtab_partitions(t, src, &q->env.stats, add_partition, &a, err);
    if (rc == CP_OK) {
        static const char *const names[] = {"partition"};
        rc = emit_text(q, sk, 1, names, (const char *const *) a.v, a.n);
    } else if (rc < 0) {
        rc = fail(q, err, rc, "%s", err->msg);
    }
    for (size_t i = 0; i < a.n; i++) {
        cp_free(a.v[i]);
    }
    cp_free(a.v);
    return rc;
}

static int create_table(cp_query *q, cp_slice stmt, cp_err *err)
{
    cp_ddl_table *t = NULL;
    int rc = cp_ddl_parse_create(stmt, &t, err);
    if (rc < 0) {
        return fail(q, err, rc, "%s", err->msg);
    }
    char name[256];
    snprintf(name, sizeof(name), "%s", t->name);
    int if_not_exists = t->if_not_exists;
    rc = cp_catalog_add(q->cat, t, err);
    if (rc == CP_EEXIST && if_not_exists) {
        return CP_OK;
    }
    if (rc < 0) {
        return fail(q, err, rc, "%s", err->msg);
    }
    int i = made_index(q, name);
    if (i >= 0) {
        unmake(q, (size_t) i);
    }
    note(q, "Table %s created", name);
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* SQL through SQLite                                                                          */

static int run_sql(cp_query *q, cp_slice stmt, const sink *sk, cp_err *err)
{
    want_ctx w = {q, CP_OK, err};
    cp_ddl_words(stmt, want_word, &w);
    if (w.rc < 0) {
        return w.rc;
    }
    const char *tail = stmt.p, *end = stmt.p + stmt.len;
    int rc = CP_OK;
    while (rc == CP_OK && tail < end) {
        sqlite3_stmt *st = NULL;
        const char *next = NULL;
        if (sqlite3_prepare_v2(q->db, tail, (int) (end - tail), &st, &next) != SQLITE_OK) {
            const char *m = sqlite3_errmsg(q->db);
            return fail(q, err, CP_EINVAL, "%s%s", m,
                        strncmp(m, "no such table", 13) == 0
                            ? " (CREATE EXTERNAL TABLE defines tables; SHOW TABLES lists them)"
                            : "");
        }
        tail = next;
        if (!st) {
            continue; /* only comments or spaces */
        }
        size_t ncols = (size_t) sqlite3_column_count(st);
        const char **names = cp_calloc(ncols ? ncols : 1, sizeof(char *));
        const char **types = cp_calloc(ncols ? ncols : 1, sizeof(char *));
        cp_query_value *vals = cp_calloc(ncols ? ncols : 1, sizeof(*vals));
        for (size_t i = 0; i < ncols; i++) {
            names[i] = sqlite3_column_name(st, (int) i);
            types[i] = sqlite3_column_decltype(st, (int) i);
        }
        cp_query_result res = {ncols, names, types};
        if (ncols && sk->begin) {
            sk->begin(sk->ctx, &res);
        }
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            for (size_t i = 0; i < ncols; i++) {
                cp_query_value *v = &vals[i];
                switch (sqlite3_column_type(st, (int) i)) {
                case SQLITE_INTEGER:
                    *v = (cp_query_value){
                        CP_QUERY_INT, sqlite3_column_int64(st, (int) i), 0, {NULL, 0}};
                    break;
                case SQLITE_FLOAT:
                    *v = (cp_query_value){
                        CP_QUERY_REAL, 0, sqlite3_column_double(st, (int) i), {NULL, 0}};
                    break;
                case SQLITE_TEXT: {
                    const char *s = (const char *) sqlite3_column_text(st, (int) i);
                    size_t n = (size_t) sqlite3_column_bytes(st, (int) i);
                    *v = (cp_query_value){CP_QUERY_TEXT, 0, 0, cp_slice_of(s ? s : "", n)};
                    break;
                }
                case SQLITE_BLOB: {
                    const char *s = sqlite3_column_blob(st, (int) i);
                    size_t n = (size_t) sqlite3_column_bytes(st, (int) i);
                    *v = (cp_query_value){CP_QUERY_BLOB, 0, 0, cp_slice_of(s ? s : "", n)};
                    break;
                }
                default:
                    *v = (cp_query_value){CP_QUERY_NULL, 0, 0, {NULL, 0}};
                    break;
                }
            }
            q->rows++;
            int cr = sk->row(sk->ctx, &res, vals);
            if (cr) {
                rc = cr;
                break;
            }
        }
        if (rc == CP_OK && r != SQLITE_DONE) {
            rc = fail(q, err, r == SQLITE_INTERRUPT ? CP_ECLOSED : CP_EINVAL, "%s",
                      sqlite3_errmsg(q->db));
        }
        if (ncols && sk->end) {
            sk->end(sk->ctx);
        }
        sqlite3_finalize(st);
        cp_free(names);
        cp_free(types);
        cp_free(vals);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Scripts                                                                                     */

typedef struct script_ctx {
    cp_query *q;
    const sink *sk;
    cp_err *err;
} script_ctx;

static int run_statement(void *ctx, cp_slice stmt)
{
    script_ctx *sc = ctx;
    cp_query *q = sc->q;
    cp_err *err = sc->err;
    int changed = 0;
    int rc = cp_catalog_refresh(q->cat, &changed, err);
    if (rc < 0) {
        return fail(q, err, rc, "%s", err->msg);
    }
    if (changed) {
        unmake_all(q); /* another process changed the catalog: rebuild tables on demand */
    }
    q->statements++;
    uint64_t malformed_before = q->env.stats.malformed_ignored;
    cp_ddl_stmt st;
    rc = cp_ddl_classify(stmt, &st, err);
    if (rc < 0) {
        return fail(q, err, rc, "%s", err->msg);
    }
    const cp_ddl_table *t = NULL;
    switch (st.kind) {
    case CP_DDL_CREATE:
        rc = create_table(q, stmt, err);
        break;
    case CP_DDL_DROP:
        if (cp_catalog_find(q->cat, st.name)) {
            int i = made_index(q, st.name);
            if (i >= 0) {
                unmake(q, (size_t) i);
            }
            rc = cp_catalog_drop(q->cat, st.name, err);
            if (rc < 0) {
                rc = fail(q, err, rc, "%s", err->msg);
            } else {
                note(q, "Table %s dropped", st.name);
            }
        } else if (st.if_exists) {
            /* Nothing in the catalog; a scratch table of the session may still go. */
            rc = run_sql(q, stmt, sc->sk, err);
        } else {
            rc = run_sql(q, stmt, sc->sk, err);
            if (rc < 0 && strstr(cp_query_errmsg(q), "no such table")) {
                rc = fail(q, err, CP_ENOTFOUND, "Table not found: %s", st.name);
            }
        }
        break;
    case CP_DDL_SHOW_TABLES:
        rc = show_tables(q, &st, sc->sk);
        break;
    case CP_DDL_SHOW_CREATE:
        if ((t = need_table(q, st.name, err, &rc))) {
            static const char *const names[] = {"createtab_stmt"};
            const char *cells[] = {t->ddl};
            rc = emit_text(q, sc->sk, 1, names, cells, 1);
        }
        break;
    case CP_DDL_SHOW_COLUMNS:
    case CP_DDL_DESCRIBE:
        if ((t = need_table(q, st.name, err, &rc))) {
            rc = describe(q, t, st.kind == CP_DDL_SHOW_COLUMNS, sc->sk);
        }
        break;
    case CP_DDL_SHOW_PARTITIONS:
        if ((t = need_table(q, st.name, err, &rc))) {
            rc = show_partitions(q, t, sc->sk, err);
        }
        break;
    case CP_DDL_MSCK:
        if ((t = need_table(q, st.name, err, &rc))) {
            note(q,
                 "Partitions of %s are read from the object listing at query time: nothing "
                 "to repair",
                 t->name);
        }
        break;
    case CP_DDL_UNSUPPORTED:
        rc = fail(q, err, CP_EINVAL, "%s", err->msg);
        break;
    case CP_DDL_SQL:
        rc = run_sql(q, stmt, sc->sk, err);
        break;
    }
    uint64_t ignored = q->env.stats.malformed_ignored - malformed_before;
    if (ignored) {
        char buf[64];
        note(q, "%s", cp_query_malformed_note(ignored, buf, sizeof(buf)));
    }
    return rc;
}

static int run_script(cp_query *q, const char *sql, const sink *sk, cp_err *err)
{
    cp_buf_reset(&q->errmsg);
    script_ctx sc = {q, sk, err};
    return cp_ddl_split(cp_slice_str(sql), run_statement, &sc);
}

static void out_begin(void *ctx, const cp_query_result *res)
{
    cp_output_begin(ctx, res);
}

static int out_row(void *ctx, const cp_query_result *res, const cp_query_value *row)
{
    (void) res;
    cp_output_row(ctx, row);
    return 0;
}

static void out_end(void *ctx)
{
    cp_output_end(ctx);
}

int cp_query_exec(cp_query *q, const char *sql, FILE *out, cp_err *err)
{
    cp_query_format fmt = q->opts.format;
    if (fmt == CP_QUERY_FORMAT_AUTO) {
        fmt = isatty(fileno(out)) ? CP_QUERY_FORMAT_TABLE : CP_QUERY_FORMAT_CSV;
    }
    cp_output *o = cp_output_new(out, fmt, !q->opts.no_header);
    sink sk = {out_begin, out_row, out_end, o};
    int rc = run_script(q, sql, &sk, err);
    cp_output_free(o);
    return rc;
}

typedef struct each_ctx {
    cp_query_row_cb cb;
    void *ctx;
} each_ctx;

static int each_row(void *ctx, const cp_query_result *res, const cp_query_value *row)
{
    each_ctx *e = ctx;
    return e->cb(e->ctx, res, row);
}

int cp_query_each(cp_query *q, const char *sql, cp_query_row_cb cb, void *ctx, cp_err *err)
{
    each_ctx e = {cb, ctx};
    sink sk = {NULL, each_row, NULL, &e};
    return run_script(q, sql, &sk, err);
}

int cp_query_run(const cp_query_opts *opts, const char *sql, FILE *out, cp_err *err)
{
    cp_query *q = NULL;
    int rc = cp_query_open(opts, &q, err);
    if (rc < 0) {
        return rc;
    }
    rc = cp_query_exec(q, sql, out, err);
    cp_query_close(q);
    return rc;
}
