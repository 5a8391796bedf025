/* SPDX-License-Identifier: MIT */
/*
 * The cp_athena_json virtual table: partition layout (declared or discovered), the pruned
 * listing walk, and the cursor that streams lines through jsonrow.
 */
#include "query/vtab.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "query/jsonrow.h"

#define DISCOVERY_MAX_DEPTH    16
#define DISCOVERY_MAX_PREFIXES 1000
#define HIVE_DEFAULT_PARTITION "__HIVE_DEFAULT_PARTITION__"

static const cp_ddl_type string_type = {CP_DDL_STRING, 0, 0, 0, "string"};

/* A partition column. */
typedef struct pcol {
    char *name;              /* lower case */
    const cp_ddl_type *type; /* borrowed from the table definition, or string_type */
    int declared;            /* from PARTITIONED BY (position = path depth) */
    int depth;               /* folder level below LOCATION where it was found */
} pcol;

/* The partition layout of one table. */
typedef struct layout {
    pcol *cols;
    size_t n;
    int declared;
} layout;

static void layout_free(layout *l)
{
    for (size_t i = 0; i < l->n; i++) {
        cp_free(l->cols[i].name);
    }
    cp_free(l->cols);
    l->cols = NULL;
    l->n = 0;
}

static void layout_add(layout *l, const char *name, const cp_ddl_type *type, int declared,
                       int depth)
{
    l->cols = cp_realloc(l->cols, (l->n + 1) * sizeof(*l->cols));
    l->cols[l->n++] = (pcol){cp_strdup(name), type, declared, depth};
}

/* Split "k=v" (a folder name); 0 when it is not one. */
static int split_kv(cp_slice seg, cp_slice *k, cp_slice *v)
{
    const char *eq = memchr(seg.p, '=', seg.len);
    if (!eq || eq == seg.p) {
        return 0;
    }
    *k = cp_slice_of(seg.p, (size_t) (eq - seg.p));
    *v = cp_slice_of(eq + 1, seg.len - k->len - 1);
    return 1;
}

static int slice_eq_ci(cp_slice a, const char *b)
{
    return strlen(b) == a.len && strncasecmp(a.p, b, a.len) == 0;
}

static int hidden_name(cp_slice seg)
{
    return seg.len && (seg.p[0] == '_' || seg.p[0] == '.');
}

static int find_pcol(const layout *l, cp_slice k)
{
    for (size_t i = 0; i < l->n; i++) {
        if (slice_eq_ci(k, l->cols[i].name)) {
            return (int) i;
        }
    }
    return -1;
}

/* Hive escapes special characters of partition values as %XX; undo that. NULL for Hive's
 * default (null) partition. Newly allocated. */
static char *partition_value(cp_slice v)
{
    if (v.len == strlen(HIVE_DEFAULT_PARTITION) &&
        memcmp(v.p, HIVE_DEFAULT_PARTITION, v.len) == 0) {
        return NULL;
    }
    char *out = cp_malloc(v.len + 1), *o = out;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] == '%' && i + 2 < v.len && isxdigit((unsigned char) v.p[i + 1]) &&
            isxdigit((unsigned char) v.p[i + 2])) {
            char hex[3] = {v.p[i + 1], v.p[i + 2], 0};
            *o++ = (char) strtol(hex, NULL, 16);
            i += 2;
        } else {
            *o++ = v.p[i];
        }
    }
    *o = 0;
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Listed objects                                                                              */

typedef struct qobj {
    char *key;
    uint64_t size;
    int64_t mtime_ms;
    char **pv; /* one value per partition column (NULL = absent / default partition) */
} qobj;

typedef struct objvec {
    qobj *v;
    size_t n, cap;
    size_t nparts;
} objvec;

static void objvec_clear(objvec *ov)
{
    for (size_t i = 0; i < ov->n; i++) {
        for (size_t j = 0; j < ov->nparts; j++) {
            cp_free(ov->v[i].pv[j]);
        }
        cp_free(ov->v[i].pv);
        cp_free(ov->v[i].key);
    }
    ov->n = 0;
}

static void objvec_free(objvec *ov)
{
    objvec_clear(ov);
    cp_free(ov->v);
    ov->v = NULL;
    ov->cap = 0;
}

/* Partition values of an object from its key relative to LOCATION. Returns 0 when the object
 * is not part of the table: hidden, a folder marker, or outside the declared partitions. */
static int object_partitions(const layout *l, cp_slice rel, char **pv)
{
    if (rel.len == 0 || rel.p[rel.len - 1] == '/') {
        return 0;
    }
    for (size_t i = 0; i < l->n; i++) {
        pv[i] = NULL;
    }
    size_t depth = 0, off = 0;
    int ok = 1;
    while (ok) {
        const char *slash = memchr(rel.p + off, '/', rel.len - off);
        cp_slice seg =
            cp_slice_of(rel.p + off, slash ? (size_t) (slash - rel.p) - off : rel.len - off);
        if (hidden_name(seg)) {
            ok = 0;
            break;
        }
        if (!slash) {
            break; /* the file name */
        }
        cp_slice k, v;
        int kv = split_kv(seg, &k, &v);
        if (l->declared) {
            if (depth < l->n) {
                if (!kv || !slice_eq_ci(k, l->cols[depth].name)) {
                    ok = 0;
                    break;
                }
                pv[depth] = partition_value(v);
            }
        } else if (kv) {
            int c = find_pcol(l, k);
            if (c >= 0 && !pv[c]) {
                pv[c] = partition_value(v);
            }
        }
        depth++;
        off = (size_t) (slash - rel.p) + 1;
    }
    if (ok && l->declared && depth < l->n) {
        ok = 0; /* above the partition folders */
    }
    if (!ok) {
        for (size_t i = 0; i < l->n; i++) {
            cp_free(pv[i]);
            pv[i] = NULL;
        }
    }
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* Constraints                                                                                 */

/* One usable constraint: column `col` (partition index, or -1 for $path) equals one of v. */
typedef struct cons {
    int col;
    sqlite3_value **v;
    size_t n;
} cons;

/* 0 when a partition value certainly cannot equal c under SQLite's comparison rules (the
 * column's affinity applied to c); 1 when it may (including every case we are unsure of). */
static int may_equal(const pcol *pc, const char *raw, sqlite3_value *c, cp_buf *scratch)
{
    if (!raw) {
        return 0; /* NULL = x is never true */
    }
    int ct = sqlite3_value_type(c);
    if (ct == SQLITE_NULL) {
        return 0;
    }
    if (ct == SQLITE_BLOB) {
        return 1;
    }
    cp_jsonrow_value v;
    if (cp_jsonrow_convert_text(pc->type, pc->name, cp_slice_str(raw), scratch, &v, NULL) < 0) {
        return 1; /* reading the row will report the bad value */
    }
    if (v.type == CP_JV_NULL) {
        return 0;
    }
    if (v.type == CP_JV_TEXT) {
        /* TEXT affinity turns a numeric right-hand side into its text first. */
        const unsigned char *t = sqlite3_value_text(c);
        size_t n = (size_t) sqlite3_value_bytes(c);
        return t && n == v.s.len && memcmp(t, v.s.p, n) == 0;
    }
    double want;
    if (ct == SQLITE_INTEGER) {
        sqlite3_int64 ci = sqlite3_value_int64(c);
        if (v.type == CP_JV_INT) {
            return v.i == ci;
        }
        return v.d == (double) ci;
    } else if (ct == SQLITE_FLOAT) {
        want = sqlite3_value_double(c);
    } else {
        /* Text against a numeric column: SQLite converts it when it looks numeric. */
        const char *t = (const char *) sqlite3_value_text(c);
        char *e;
        if (!t) {
            return 1;
        }
        want = strtod(t, &e);
        while (*e == ' ') {
            e++;
        }
        if (e == t || *e) {
            return 0; /* not numeric: stays text, and text never equals a number */
        }
    }
    return (v.type == CP_JV_INT ? (double) v.i : v.d) == want;
}

/* ------------------------------------------------------------------------------------------ */
/* The walk                                                                                    */

typedef struct walk {
    const cp_ddl_table *def;
    const layout *lay;
    const cp_source *src;
    cons *cons;
    size_t ncons;
    int maxdepth; /* deepest folder level a constraint can prune at; -1: none */
    objvec *out;
    cp_vtab_stats *stats;
    cp_buf scratch;
    cp_buf path;
    cp_err *err;
} walk;

static int constraints_hold(walk *w, cp_slice key, char **pv)
{
    for (size_t i = 0; i < w->ncons; i++) {
        const cons *c = &w->cons[i];
        int any = 0;
        if (c->col < 0) {
            cp_buf_reset(&w->path);
            cp_buf_printf(&w->path, "s3://%s/%.*s", w->def->bucket, (int) key.len, key.p);
            for (size_t j = 0; j < c->n && !any; j++) {
                const unsigned char *t = sqlite3_value_text(c->v[j]);
                any = sqlite3_value_type(c->v[j]) == SQLITE_BLOB ||
                      (t && strcmp((const char *) t, w->path.p) == 0);
            }
        } else {
            for (size_t j = 0; j < c->n && !any; j++) {
                any = may_equal(&w->lay->cols[c->col], pv[c->col], c->v[j], &w->scratch);
            }
        }
        if (!any) {
            return 0;
        }
    }
    return 1;
}

static int on_object(walk *w, const cp_source_entry *e)
{
    w->stats->objects_listed++;
    size_t plen = strlen(w->def->prefix);
    cp_slice rel = cp_slice_of(e->key.p + plen, e->key.len - plen);
    objvec *ov = w->out;
    if (ov->n == ov->cap) {
        ov->cap = ov->cap ? ov->cap * 2 : 64;
        ov->v = cp_realloc(ov->v, ov->cap * sizeof(*ov->v));
    }
    qobj *o = &ov->v[ov->n];
    o->pv = cp_calloc(w->lay->n ? w->lay->n : 1, sizeof(char *));
    if (!object_partitions(w->lay, rel, o->pv) || !constraints_hold(w, e->key, o->pv)) {
        for (size_t i = 0; i < w->lay->n; i++) {
            cp_free(o->pv[i]);
        }
        cp_free(o->pv);
        w->stats->objects_pruned++;
        return 0;
    }
    o->key = cp_strndup(e->key.p, e->key.len);
    o->size = e->size;
    o->mtime_ms = e->mtime_ms;
    ov->n++;
    return 0;
}

static int flat_entry(void *ctx, const cp_source_entry *e)
{
    return e->is_prefix ? 0 : on_object(ctx, e);
}

typedef struct level_acc {
    walk *w;
    cp_buf names; /* the prefixes, NUL-separated */
    size_t n;
} level_acc;

static int level_entry(void *ctx, const cp_source_entry *e)
{
    level_acc *a = ctx;
    if (!e->is_prefix) {
        return on_object(a->w, e);
    }
    cp_buf_append(&a->names, e->key.p, e->key.len);
    cp_buf_putc(&a->names, 0);
    a->n++;
    return 0;
}

/* May the folder `seg` at `depth` (below LOCATION) hold matching objects? `bound` marks the
 * discovered columns already given a value higher up this path. */
static int folder_may_match(walk *w, cp_slice seg, int depth, uint64_t *bound)
{
    if (hidden_name(seg)) {
        return 0;
    }
    cp_slice k, v;
    int kv = split_kv(seg, &k, &v);
    const layout *l = w->lay;
    int c;
    if (l->declared) {
        if ((size_t) depth >= l->n) {
            return 1;
        }
        if (!kv || !slice_eq_ci(k, l->cols[depth].name)) {
            return 0; /* not a partition folder: Athena never reads it */
        }
        c = depth;
    } else {
        if (!kv || (c = find_pcol(l, k)) < 0 || c >= 64 || (*bound >> c & 1)) {
            return 1;
        }
        *bound |= 1ull << c;
    }
    char *val = partition_value(v);
    int ok = 1;
    for (size_t i = 0; ok && i < w->ncons; i++) {
        const cons *cs = &w->cons[i];
        if (cs->col != c) {
            continue;
        }
        int any = 0;
        for (size_t j = 0; j < cs->n && !any; j++) {
            any = may_equal(&l->cols[c], val, cs->v[j], &w->scratch);
        }
        ok = any;
    }
    cp_free(val);
    return ok;
}

static int walk_folder(walk *w, cp_slice prefix, int depth, uint64_t bound)
{
    int rc;
    w->stats->list_calls++;
    if (depth > w->maxdepth) {
        return w->src->ops->list(w->src->ctx, w->def->bucket, prefix, CP_SLICE(""), flat_entry, w,
                                 w->err);
    }
    level_acc a = {w, CP_BUF_INIT, 0};
    rc = w->src->ops->list(w->src->ctx, w->def->bucket, prefix, CP_SLICE("/"), level_entry, &a,
                           w->err);
    const char *p = a.names.p;
    for (size_t i = 0; rc == CP_OK && i < a.n; i++) {
        size_t len = strlen(p);
        cp_slice sub = cp_slice_of(p, len);
        cp_slice seg = cp_slice_of(p + prefix.len, len - prefix.len - 1);
        uint64_t b = bound;
        if (folder_may_match(w, seg, depth, &b)) {
            rc = walk_folder(w, sub, depth + 1, b);
        }
        p += len + 1;
    }
    cp_buf_free(&a.names);
    return rc;
}

/* List the objects of a table that can satisfy the constraints, into out. */
static int list_objects(const cp_ddl_table *def, const layout *lay, const cp_source *src, cons *cs,
                        size_t ncons, objvec *out, cp_vtab_stats *stats, cp_err *err)
{
    walk w = {def, lay, src, cs, ncons, -1, out, stats, CP_BUF_INIT, CP_BUF_INIT, err};
    for (size_t i = 0; i < ncons; i++) {
        if (cs[i].col >= 0 && lay->cols[cs[i].col].depth > w.maxdepth) {
            w.maxdepth = lay->cols[cs[i].col].depth;
        }
    }
    out->nparts = lay->n;
    int rc = walk_folder(&w, cp_slice_str(def->prefix), 0, 0);
    cp_buf_free(&w.scratch);
    cp_buf_free(&w.path);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Discovery                                                                                   */

typedef struct disc_acc {
    cp_buf names;
    size_t n;
} disc_acc;

static int disc_entry(void *ctx, const cp_source_entry *e)
{
    disc_acc *a = ctx;
    if (!e->is_prefix) {
        return 0;
    }
    cp_buf_append(&a->names, e->key.p, e->key.len);
    cp_buf_putc(&a->names, 0);
    return ++a->n >= DISCOVERY_MAX_PREFIXES ? 1 : 0;
}

static int valid_column_name(cp_slice k)
{
    if (k.len == 0 || k.len > 128) {
        return 0;
    }
    for (size_t i = 0; i < k.len; i++) {
        if (!isalnum((unsigned char) k.p[i]) && k.p[i] != '_') {
            return 0;
        }
    }
    return 1;
}

static int is_data_column(const cp_ddl_table *def, cp_slice k)
{
    for (size_t i = 0; i < def->ncols; i++) {
        if (slice_eq_ci(k, def->cols[i].name)) {
            return 1;
        }
    }
    return 0;
}

static int build_layout(const cp_ddl_table *def, const cp_source *src, cp_vtab_stats *stats,
                        layout *out, cp_err *err)
{
    memset(out, 0, sizeof(*out));
    if (def->nparts) {
        out->declared = 1;
        for (size_t i = 0; i < def->nparts; i++) {
            layout_add(out, def->parts[i].name, &def->parts[i].type, 1, (int) i);
        }
        return CP_OK;
    }
    const char *disc = cp_ddl_tbl_prop(def, "changepipe.partition.discovery");
    if (disc && strcasecmp(disc, "false") == 0) {
        return CP_OK;
    }
    cp_buf prefix = CP_BUF_INIT;
    cp_buf_puts(&prefix, def->prefix);
    int rc = CP_OK;
    for (int depth = 0; depth < DISCOVERY_MAX_DEPTH; depth++) {
        disc_acc a = {CP_BUF_INIT, 0};
        stats->list_calls++;
        rc = src->ops->list(src->ctx, def->bucket, cp_buf_slice(&prefix), CP_SLICE("/"), disc_entry,
                            &a, err);
        if (rc == 1) {
            rc = CP_OK;
        }
        const char *p = a.names.p, *next_dir = NULL, *first_dir = NULL;
        for (size_t i = 0; rc == CP_OK && i < a.n; i++) {
            size_t len = strlen(p);
            cp_slice seg = cp_slice_of(p + prefix.len, len - prefix.len - 1);
            cp_slice k, v;
            if (!hidden_name(seg)) {
                if (!first_dir) {
                    first_dir = p;
                }
                if (split_kv(seg, &k, &v)) {
                    if (!next_dir) {
                        next_dir = p;
                    }
                    if (valid_column_name(k) && !is_data_column(def, k) && find_pcol(out, k) < 0 &&
                        out->n < 64) {
                        char *name = cp_strndup(k.p, k.len);
                        for (char *c = name; *c; c++) {
                            *c = (char) tolower((unsigned char) *c);
                        }
                        layout_add(out, name, &string_type, 0, depth);
                        cp_free(name);
                    }
                }
            }
            p += len + 1;
        }
        if (!next_dir) {
            next_dir = first_dir;
        }
        if (next_dir) {
            cp_buf_reset(&prefix);
            cp_buf_puts(&prefix, next_dir);
        }
        cp_buf_free(&a.names);
        if (rc < 0 || !next_dir) {
            break;
        }
    }
    cp_buf_free(&prefix);
    if (rc == CP_ENOTFOUND) {
        /* A missing bucket is reported when the table is read, as Athena does. */
        rc = CP_OK;
    }
    if (rc < 0) {
        layout_free(out);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The module                                                                                  */

enum { PSEUDO_PATH, PSEUDO_SIZE, PSEUDO_MTIME, NPSEUDO };

typedef struct qtab {
    sqlite3_vtab base;
    cp_vtab_env *env;
    cp_ddl_table *def; /* our own copy */
    layout lay;
    int ignore_malformed;
} qtab;

typedef struct qcur {
    sqlite3_vtab_cursor base;
    objvec objs;
    size_t iobj;
    int opened;
    const cp_source *src;
    cp_source_lines *lines;
    cp_jsonrow *row;
    int row_null;
    uint64_t lineno;
    sqlite3_int64 rowid;
    int eof;
    cp_buf scratch;
} qcur;

static void put_ident(cp_buf *b, const char *name)
{
    cp_buf_putc(b, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"') {
            cp_buf_putc(b, '"');
        }
        cp_buf_putc(b, *p);
    }
    cp_buf_putc(b, '"');
}

static void qtab_free(qtab *t)
{
    if (t) {
        layout_free(&t->lay);
        cp_ddl_table_free(t->def);
        cp_free(t);
    }
}

static int x_create(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                    char **pzErr)
{
    cp_vtab_env *env = aux;
    if (argc < 3) {
        *pzErr = sqlite3_mprintf("%s needs a table name", CP_VTAB_MODULE);
        return SQLITE_ERROR;
    }
    const char *name = argv[2];
    const cp_ddl_table *def = env->lookup(env->ctx, name);
    if (!def) {
        *pzErr = sqlite3_mprintf("Table %s does not exist in the catalog", name);
        return SQLITE_ERROR;
    }
    cp_err err = {0};
    qtab *t = cp_calloc(1, sizeof(*t));
    t->env = env;
    if (cp_ddl_parse_create(cp_slice_str(def->ddl), &t->def, &err) < 0) {
        *pzErr = sqlite3_mprintf("Table %s: %s", name, err.msg);
        qtab_free(t);
        return SQLITE_ERROR;
    }
    t->ignore_malformed = cp_ddl_prop_true(cp_ddl_serde_prop(t->def, "ignore.malformed.json"));
    const cp_source *src = NULL;
    int rc = CP_OK;
    if (t->def->nparts == 0) {
        rc = env->source(env->ctx, &src, &err);
    }
    if (rc == CP_OK) {
        rc = build_layout(t->def, src, &env->stats, &t->lay, &err);
    }
    if (rc < 0) {
        *pzErr = sqlite3_mprintf("%s", err.msg);
        qtab_free(t);
        return SQLITE_ERROR;
    }
    cp_buf sql = CP_BUF_INIT;
    cp_buf_puts(&sql, "CREATE TABLE x(");
    for (size_t i = 0; i < t->def->ncols; i++) {
        put_ident(&sql, t->def->cols[i].name);
        cp_buf_printf(&sql, " %s, ", cp_ddl_sqlite_type(t->def->cols[i].type.kind));
    }
    for (size_t i = 0; i < t->lay.n; i++) {
        put_ident(&sql, t->lay.cols[i].name);
        cp_buf_printf(&sql, " %s%s, ", cp_ddl_sqlite_type(t->lay.cols[i].type->kind),
                      t->lay.cols[i].declared ? "" : " HIDDEN");
    }
    cp_buf_puts(&sql, "\"$path\" STRING TEXT HIDDEN, \"$file_size\" BIGINT HIDDEN, "
                      "\"$file_modified_time\" TIMESTAMP TEXT HIDDEN)");
    int src_rc = sqlite3_declare_vtab(db, sql.p);
    cp_buf_free(&sql);
    if (src_rc != SQLITE_OK) {
        *pzErr =
            sqlite3_mprintf("Table %s: cannot declare its columns (%s)", name, sqlite3_errmsg(db));
        qtab_free(t);
        return SQLITE_ERROR;
    }
    *out = &t->base;
    return SQLITE_OK;
}

static int x_disconnect(sqlite3_vtab *vt)
{
    qtab_free((qtab *) vt);
    return SQLITE_OK;
}

static int is_text_kind(cp_ddl_kind k)
{
    return k == CP_DDL_STRING || k == CP_DDL_VARCHAR || k == CP_DDL_CHAR || k == CP_DDL_TIMESTAMP ||
           k == CP_DDL_DATE;
}

static int x_best_index(sqlite3_vtab *vt, sqlite3_index_info *info)
{
    qtab *t = (qtab *) vt;
    int nd = (int) t->def->ncols, np = (int) t->lay.n;
    cp_buf idx = CP_BUF_INIT;
    int n = 0;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (!c->usable || c->op != SQLITE_INDEX_CONSTRAINT_EQ) {
            continue;
        }
        int col = c->iColumn - nd;
        int is_path = c->iColumn == nd + np + PSEUDO_PATH;
        if (!is_path && (col < 0 || col >= np)) {
            continue;
        }
        /* Pruning compares bytes: only under the BINARY collation is that SQLite's '='. */
        if ((is_path || is_text_kind(t->lay.cols[col].type->kind)) &&
            strcmp(sqlite3_vtab_collation(info, i), "BINARY") != 0) {
            continue;
        }
        info->aConstraintUsage[i].argvIndex = ++n;
        info->aConstraintUsage[i].omit = 0; /* conservative pruning: SQLite re-checks rows */
        sqlite3_vtab_in(info, i, 1);
        cp_buf_printf(&idx, "%s%d", n > 1 ? "," : "", is_path ? -1 : col);
    }
    info->idxNum = n;
    if (n) {
        info->idxStr = sqlite3_mprintf("%s", idx.p);
        info->needToFreeIdxStr = 1;
    }
    cp_buf_free(&idx);
    /* Each pruning constraint is worth an order of magnitude: prefer plans that use them. */
    double cost = 1e9;
    for (int i = 0; i < n; i++) {
        cost /= 10;
    }
    info->estimatedCost = cost;
    info->estimatedRows = (sqlite3_int64) (cost / 10 > 1 ? cost / 10 : 1);
    return SQLITE_OK;
}

static int x_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out)
{
    qtab *t = (qtab *) vt;
    qcur *c = cp_calloc(1, sizeof(*c));
    c->lines = cp_source_lines_new();
    c->row = cp_jsonrow_new(t->def);
    c->eof = 1;
    *out = &c->base;
    return SQLITE_OK;
}

static void cur_reset(qcur *c)
{
    cp_source_lines_close(c->lines);
    c->opened = 0;
    objvec_free(&c->objs);
    c->iobj = 0;
    c->eof = 1;
}

static int x_close(sqlite3_vtab_cursor *vc)
{
    qcur *c = (qcur *) vc;
    cur_reset(c);
    cp_source_lines_free(c->lines);
    cp_jsonrow_free(c->row);
    cp_buf_free(&c->scratch);
    cp_free(c);
    return SQLITE_OK;
}

static int vt_error(qcur *c, const char *fmt, ...) CP_PRINTF(2, 3);
static int vt_error(qcur *c, const char *fmt, ...)
{
    sqlite3_vtab *vt = c->base.pVtab;
    va_list ap;
    va_start(ap, fmt);
    sqlite3_free(vt->zErrMsg);
    vt->zErrMsg = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    return SQLITE_ERROR;
}

static int x_next(sqlite3_vtab_cursor *vc)
{
    qcur *c = (qcur *) vc;
    qtab *t = (qtab *) vc->pVtab;
    cp_vtab_stats *st = &t->env->stats;
    cp_err err = {0};
    for (;;) {
        if (!c->opened) {
            if (c->iobj >= c->objs.n) {
                c->eof = 1;
                return SQLITE_OK;
            }
            const qobj *o = &c->objs.v[c->iobj];
            int rc =
                cp_source_lines_open(c->lines, c->src, t->def->bucket, cp_slice_str(o->key), &err);
            if (rc < 0) {
                return vt_error(c, "HIVE_CANNOT_OPEN_SPLIT: Error opening s3://%s/%s: %s",
                                t->def->bucket, o->key, err.msg);
            }
            st->objects_opened++;
            c->opened = 1;
            c->lineno = 0;
        }
        cp_slice line;
        int r = cp_source_lines_next(c->lines, &line, &err);
        if (r < 0) {
            return vt_error(c, "HIVE_CURSOR_ERROR: %s in s3://%s/%s", err.msg, t->def->bucket,
                            c->objs.v[c->iobj].key);
        }
        if (r == 0) {
            st->bytes_read += cp_source_lines_bytes(c->lines);
            cp_source_lines_close(c->lines);
            c->opened = 0;
            c->iobj++;
            continue;
        }
        c->lineno++;
        size_t i = 0;
        while (i < line.len && (line.p[i] == ' ' || line.p[i] == '\t' || line.p[i] == '\r')) {
            i++;
        }
        if (i == line.len) {
            continue; /* blank lines (a trailing newline) are not records */
        }
        st->lines++;
        c->rowid++;
        if (cp_jsonrow_parse(c->row, line, &err) == CP_OK) {
            c->row_null = 0;
            return SQLITE_OK;
        }
        if (t->ignore_malformed) {
            cp_jsonrow_set_null(c->row);
            c->row_null = 1;
            st->malformed_ignored++;
            return SQLITE_OK;
        }
        return vt_error(c, "%s in s3://%s/%s line %llu", err.msg, t->def->bucket,
                        c->objs.v[c->iobj].key, (unsigned long long) c->lineno);
    }
}

static int x_filter(sqlite3_vtab_cursor *vc, int idxNum, const char *idxStr, int argc,
                    sqlite3_value **argv)
{
    qcur *c = (qcur *) vc;
    qtab *t = (qtab *) vc->pVtab;
    cur_reset(c);
    c->rowid = 0;
    cp_err err = {0};
    int rc = t->env->source(t->env->ctx, &c->src, &err);
    if (rc < 0) {
        return vt_error(c, "%s", err.msg);
    }
    cons *cs = cp_calloc(argc ? (size_t) argc : 1, sizeof(*cs));
    size_t ncons = 0;
    const char *p = idxStr ? idxStr : "";
    for (int i = 0; i < argc && i < idxNum; i++) {
        int col = atoi(p);
        const char *comma = strchr(p, ',');
        p = comma ? comma + 1 : p + strlen(p);
        cons *k = &cs[ncons++];
        k->col = col;
        sqlite3_value *v = NULL;
        int r = sqlite3_vtab_in_first(argv[i], &v);
        if (r == SQLITE_OK) {
            /* The whole IN list at once. */
            for (; r == SQLITE_OK && v; r = sqlite3_vtab_in_next(argv[i], &v)) {
                /* The iterator reuses one value: keep a copy of each. */
                k->v = cp_realloc(k->v, (k->n + 1) * sizeof(*k->v));
                k->v[k->n++] = sqlite3_value_dup(v);
            }
        } else {
            k->v = cp_malloc(sizeof(*k->v));
            k->v[0] = sqlite3_value_dup(argv[i]);
            k->n = 1;
        }
    }
    int oom = 0;
    for (size_t i = 0; i < ncons; i++) {
        for (size_t j = 0; j < cs[i].n; j++) {
            oom |= cs[i].v[j] == NULL;
        }
    }
    rc = oom ? cp_err_set(&err, CP_ENOMEM, "out of memory")
             : list_objects(t->def, &t->lay, c->src, cs, ncons, &c->objs, &t->env->stats, &err);
    for (size_t i = 0; i < ncons; i++) {
        for (size_t j = 0; j < cs[i].n; j++) {
            sqlite3_value_free(cs[i].v[j]);
        }
        cp_free(cs[i].v);
    }
    cp_free(cs);
    if (rc < 0) {
        return vt_error(c, "%s", err.msg);
    }
    c->eof = 0;
    return x_next(vc);
}

static int x_eof(sqlite3_vtab_cursor *vc)
{
    return ((qcur *) vc)->eof;
}

static void result_value(sqlite3_context *ctx, const cp_jsonrow_value *v)
{
    switch (v->type) {
    case CP_JV_NULL:
        sqlite3_result_null(ctx);
        break;
    case CP_JV_INT:
        sqlite3_result_int64(ctx, v->i);
        break;
    case CP_JV_REAL:
        sqlite3_result_double(ctx, v->d);
        break;
    case CP_JV_TEXT:
        sqlite3_result_text(ctx, v->s.p ? v->s.p : "", (int) v->s.len, SQLITE_TRANSIENT);
        break;
    }
}

static int x_column(sqlite3_vtab_cursor *vc, sqlite3_context *ctx, int i)
{
    qcur *c = (qcur *) vc;
    qtab *t = (qtab *) vc->pVtab;
    size_t nd = t->def->ncols, np = t->lay.n;
    const qobj *o = &c->objs.v[c->iobj];
    cp_err err = {0};
    cp_jsonrow_value v;
    if ((size_t) i < nd) {
        if (c->row_null) {
            sqlite3_result_null(ctx);
            return SQLITE_OK;
        }
        if (cp_jsonrow_get(c->row, (size_t) i, &v, &err) < 0) {
            char *msg = sqlite3_mprintf("%s in s3://%s/%s line %llu", err.msg, t->def->bucket,
                                        o->key, (unsigned long long) c->lineno);
            sqlite3_result_error(ctx, msg, -1);
            sqlite3_free(msg);
            return SQLITE_ERROR;
        }
        result_value(ctx, &v);
        return SQLITE_OK;
    }
    if ((size_t) i < nd + np) {
        const pcol *pc = &t->lay.cols[(size_t) i - nd];
        const char *raw = o->pv[(size_t) i - nd];
        if (!raw) {
            sqlite3_result_null(ctx);
            return SQLITE_OK;
        }
        if (cp_jsonrow_convert_text(pc->type, pc->name, cp_slice_str(raw), &c->scratch, &v, &err) <
            0) {
            char *msg = sqlite3_mprintf("%s in s3://%s/%s", err.msg, t->def->bucket, o->key);
            sqlite3_result_error(ctx, msg, -1);
            sqlite3_free(msg);
            return SQLITE_ERROR;
        }
        result_value(ctx, &v);
        return SQLITE_OK;
    }
    switch ((size_t) i - nd - np) {
    case PSEUDO_PATH: {
        char *s = sqlite3_mprintf("s3://%s/%s", t->def->bucket, o->key);
        sqlite3_result_text(ctx, s, -1, sqlite3_free);
        break;
    }
    case PSEUDO_SIZE:
        sqlite3_result_int64(ctx, (sqlite3_int64) o->size);
        break;
    case PSEUDO_MTIME: {
        char buf[32];
        size_t n = cp_jsonrow_format_ts(o->mtime_ms, buf);
        sqlite3_result_text(ctx, buf, (int) n, SQLITE_TRANSIENT);
        break;
    }
    default:
        sqlite3_result_null(ctx);
        break;
    }
    return SQLITE_OK;
}

static int x_rowid(sqlite3_vtab_cursor *vc, sqlite3_int64 *out)
{
    *out = ((qcur *) vc)->rowid;
    return SQLITE_OK;
}

static const sqlite3_module module = {
    .iVersion = 1,
    .xCreate = x_create,
    .xConnect = x_create,
    .xBestIndex = x_best_index,
    .xDisconnect = x_disconnect,
    .xDestroy = x_disconnect,
    .xOpen = x_open,
    .xClose = x_close,
    .xFilter = x_filter,
    .xNext = x_next,
    .xEof = x_eof,
    .xColumn = x_column,
    .xRowid = x_rowid,
};

int cp_vtab_register(sqlite3 *db, cp_vtab_env *env)
{
    if (sqlite3_create_module(db, CP_VTAB_MODULE, &module, env) != SQLITE_OK) {
        return CP_EIO;
    }
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* SHOW PARTITIONS                                                                             */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

int cp_vtab_partitions(const cp_ddl_table *t, const cp_source *src, cp_vtab_stats *stats,
                       cp_vtab_partition_cb cb, void *ctx, cp_err *err)
{
    layout lay;
    int rc = build_layout(t, src, stats, &lay, err);
    if (rc < 0) {
        return rc;
    }
    if (lay.n == 0) {
        layout_free(&lay);
        return cp_err_set(err, CP_EINVAL, "Table %s is not partitioned", t->name);
    }
    objvec ov = {0};
    rc = list_objects(t, &lay, src, NULL, 0, &ov, stats, err);
    char **names = cp_calloc(ov.n ? ov.n : 1, sizeof(char *));
    size_t nn = 0;
    cp_buf b = CP_BUF_INIT;
    for (size_t i = 0; rc == CP_OK && i < ov.n; i++) {
        cp_buf_reset(&b);
        int any = 0;
        for (size_t j = 0; j < lay.n; j++) {
            if (!ov.v[i].pv[j]) {
                continue;
            }
            cp_buf_printf(&b, "%s%s=%s", any ? "/" : "", lay.cols[j].name, ov.v[i].pv[j]);
            any = 1;
        }
        if (any) {
            names[nn++] = cp_strndup(b.p, b.len);
        }
    }
    qsort(names, nn, sizeof(char *), cmp_str);
    for (size_t i = 0; i < nn && rc == CP_OK; i++) {
        if (i == 0 || strcmp(names[i], names[i - 1]) != 0) {
            rc = cb(ctx, names[i]);
        }
    }
    for (size_t i = 0; i < nn; i++) {
        cp_free(names[i]);
    }
    cp_free(names);
    cp_buf_free(&b);
    objvec_free(&ov);
    layout_free(&lay);
    return rc;
}
