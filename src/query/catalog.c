/* SPDX-License-Identifier: MIT */
/* The table catalog: a JSON file of DDL statements, changed under a lock and replaced atomically.
 */
#include "query/catalog.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/json.h"
#include "core/mem.h"

struct cp_catalog {
    char *path; /* NULL: in memory */
    char *lock_path;
    cp_ddl_table **v; /* sorted by name */
    size_t n, cap;
    struct stat seen; /* identity of the file last loaded (st_ino 0: none) */
};

#define CATALOG_MAX_BYTES (64u * 1024 * 1024)

static void clear(cp_catalog *c)
{
    for (size_t i = 0; i < c->n; i++) {
        cp_ddl_table_free(c->v[i]);
    }
    c->n = 0;
}

static size_t find_pos(const cp_catalog *c, const char *name, int *found)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcasecmp(c->v[mid]->name, name);
        if (r == 0) {
            *found = 1;
            return mid;
        }
        if (r < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = 0;
    return lo;
}

static void insert(cp_catalog *c, cp_ddl_table *t, size_t pos)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->v = cp_realloc(c->v, c->cap * sizeof(*c->v));
    }
    memmove(&c->v[pos + 1], &c->v[pos], (c->n - pos) * sizeof(*c->v));
    c->v[pos] = t;
    c->n++;
}

/* mkdir -p of the directory holding `path`. */
static int make_parent(const char *path, cp_err *err)
{
    char *d = cp_strdup(path);
    char *slash = strrchr(d, '/');
    if (!slash || slash == d) {
        cp_free(d);
        return CP_OK;
    }
    *slash = 0;
    for (char *p = d + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(d, 0755) < 0 && errno != EEXIST) {
                int e = errno;
                cp_free(d);
                return cp_err_set(err, -e, "cannot create the catalog directory: %s", strerror(e));
            }
            *p = '/';
        }
    }
    if (mkdir(d, 0755) < 0 && errno != EEXIST) {
        int e = errno;
        cp_free(d);
        return cp_err_set(err, -e, "cannot create the catalog directory: %s", strerror(e));
    }
    cp_free(d);
    return CP_OK;
}

static int read_file(const char *path, cp_buf *out, struct stat *st, cp_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            memset(st, 0, sizeof(*st));
            return CP_ENOTFOUND;
        }
        return cp_err_set(err, -errno, "cannot open the catalog: %s", strerror(errno));
    }
    if (fstat(fd, st) < 0 || st->st_size > (off_t) CATALOG_MAX_BYTES) {
        close(fd);
        return cp_err_set(err, CP_ECORRUPT, "the catalog file is unreadable or too large");
    }
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            int e = errno;
            close(fd);
            return cp_err_set(err, -e, "cannot read the catalog: %s", strerror(e));
        }
        if (r == 0) {
            break;
        }
        cp_buf_append(out, chunk, (size_t) r);
    }
    close(fd);
    return CP_OK;
}

/* Parse catalog JSON into c (which must be empty). */
static int parse(cp_catalog *c, cp_slice text, cp_err *err)
{
    cp_json_lexer lx;
    cp_json_lexer_init(&lx, text);
    cp_json_tok t;
    cp_buf name = CP_BUF_INIT, ddl = CP_BUF_INIT, scratch = CP_BUF_INIT;
    int rc = CP_OK;
#define NEXT()                                                                                     \
    do {                                                                                           \
        if (cp_json_next(&lx, &t) < 0) {                                                           \
            goto bad;                                                                              \
        }                                                                                          \
    } while (0)
    NEXT();
    if (t.type != CP_JSON_OBJ_BEGIN) {
        goto bad;
    }
    for (;;) {
        NEXT();
        if (t.type == CP_JSON_OBJ_END) {
            break;
        }
        if (!cp_json_tok_is(&t, "tables")) {
            NEXT();
            if (cp_json_skip(&lx, &t) < 0) {
                goto bad;
            }
            continue;
        }
        NEXT();
        if (t.type != CP_JSON_ARR_BEGIN) {
            goto bad;
        }
        for (;;) {
            NEXT();
            if (t.type == CP_JSON_ARR_END) {
                break;
            }
            if (t.type != CP_JSON_OBJ_BEGIN) {
                goto bad;
            }
            cp_buf_reset(&name);
            cp_buf_reset(&ddl);
            for (;;) {
                NEXT();
                if (t.type == CP_JSON_OBJ_END) {
                    break;
                }
                cp_buf *dst = cp_json_tok_is(&t, "name")  ? &name
                              : cp_json_tok_is(&t, "ddl") ? &ddl
                                                          : NULL;
                NEXT();
                if (dst && t.type == CP_JSON_STRING) {
                    cp_slice s;
                    if (cp_json_tok_string(&t, &scratch, &s) < 0) {
                        goto bad;
                    }
                    cp_buf_append(dst, s.p, s.len);
                } else if (cp_json_skip(&lx, &t) < 0) {
                    goto bad;
                }
            }
            cp_ddl_table *tbl = NULL;
            cp_err perr = {0};
            if (cp_ddl_parse_create(cp_buf_slice(&ddl), &tbl, &perr) < 0) {
                rc = cp_err_set(err, CP_ECORRUPT, "catalog entry '%s' does not parse: %s",
                                name.p ? name.p : "", perr.msg);
                goto out;
            }
            int found;
            size_t pos = find_pos(c, tbl->name, &found);
            if (found) {
                cp_ddl_table_free(tbl);
            } else {
                insert(c, tbl, pos);
            }
        }
    }
    NEXT();
    if (t.type != CP_JSON_END) {
        goto bad;
    }
    goto out;
bad:
    rc = cp_err_set(err, CP_ECORRUPT, "the catalog file is not valid catalog JSON (%s)",
                    lx.error ? lx.error : "unexpected shape");
out:
#undef NEXT
    cp_buf_free(&name);
    cp_buf_free(&ddl);
    cp_buf_free(&scratch);
    if (rc < 0) {
        clear(c);
    }
    return rc;
}

/* Load the file into c (replacing its contents on success). */
static int load(cp_catalog *c, cp_err *err)
{
    cp_buf text = CP_BUF_INIT;
    struct stat st;
    int rc = read_file(c->path, &text, &st, err);
    if (rc == CP_ENOTFOUND) {
        clear(c);
        memset(&c->seen, 0, sizeof(c->seen));
        cp_buf_free(&text);
        return CP_OK;
    }
    if (rc == CP_OK) {
        cp_catalog tmp = {0};
        rc = parse(&tmp, cp_buf_slice(&text), err);
        if (rc == CP_OK) {
            clear(c);
            cp_free(c->v);
            c->v = tmp.v;
            c->n = tmp.n;
            c->cap = tmp.cap;
            c->seen = st;
        } else {
            cp_free(tmp.v);
        }
    }
    cp_buf_free(&text);
    return rc;
}

int cp_catalog_open(const char *path, cp_catalog **out, cp_err *err)
{
    cp_catalog *c = cp_calloc(1, sizeof(*c));
    if (path) {
        c->path = cp_strdup(path);
        cp_buf lp = CP_BUF_INIT;
        const char *slash = strrchr(path, '/');
        cp_buf_append(&lp, path, slash ? (size_t) (slash - path + 1) : 0);
        cp_buf_puts(&lp, "catalog.lock");
        c->lock_path = cp_strndup(lp.p, lp.len);
        cp_buf_free(&lp);
        int rc = make_parent(path, err);
        if (rc == CP_OK) {
            rc = load(c, err);
        }
        if (rc < 0) {
            cp_catalog_close(c);
            return rc;
        }
    }
    *out = c;
    return CP_OK;
}

void cp_catalog_close(cp_catalog *c)
{
    if (!c) {
        return;
    }
    clear(c);
    cp_free(c->v);
    cp_free(c->path);
    cp_free(c->lock_path);
    cp_free(c);
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int cp_catalog_refresh(cp_catalog *c, int *changed, cp_err *err)
{
    if (changed) {
        *changed = 0;
    }
    if (!c->path) {
        return CP_OK;
    }
    struct stat st;
    if (stat(c->path, &st) < 0) {
        memset(&st, 0, sizeof(st));
    }
    if (same_file(&st, &c->seen)) {
        return CP_OK;
    }
    int rc = load(c, err);
    if (rc == CP_OK && changed) {
        *changed = 1;
    }
    return rc;
}

size_t cp_catalog_count(const cp_catalog *c)
{
    return c->n;
}

const cp_ddl_table *cp_catalog_at(const cp_catalog *c, size_t i)
{
    return i < c->n ? c->v[i] : NULL;
}

const cp_ddl_table *cp_catalog_find(const cp_catalog *c, const char *name)
{
    int found;
    size_t pos = find_pos(c, name, &found);
    return found ? c->v[pos] : NULL;
}

static void put_catalog(const cp_catalog *c, cp_buf *out)
{
    cp_buf_puts(out, "{\"version\":1,\"tables\":[");
    for (size_t i = 0; i < c->n; i++) {
        cp_buf_puts(out, i ? ",\n  {" : "\n  {");
        cp_json_put_kv_str(out, "name", cp_slice_str(c->v[i]->name));
        cp_buf_putc(out, ',');
        cp_json_put_kv_str(out, "ddl", cp_slice_str(c->v[i]->ddl));
        cp_buf_putc(out, '}');
    }
    cp_buf_puts(out, c->n ? "\n]}\n" : "]}\n");
}

/* Replace the file with c's contents atomically and durably. */
static int save(cp_catalog *c, cp_err *err)
{
    cp_buf text = CP_BUF_INIT;
    put_catalog(c, &text);
    int rc = cp_fs_write_atomic(c->path, text.p, text.len, 0, err);
    if (rc == CP_OK && stat(c->path, &c->seen) < 0) {
        memset(&c->seen, 0, sizeof(c->seen));
    }
    cp_buf_free(&text);
    return rc;
}

/* Run fn under the catalog lock on a freshly loaded copy, then save. In memory: just fn. */
static int locked_change(cp_catalog *c, int (*fn)(cp_catalog *, void *, cp_err *), void *arg,
                         cp_err *err)
{
    if (!c->path) {
        return fn(c, arg, err);
    }
    int lfd = open(c->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0) {
        return cp_err_set(err, -errno, "cannot lock the catalog: %s", strerror(errno));
    }
    while (flock(lfd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            int e = errno;
            close(lfd);
            return cp_err_set(err, -e, "cannot lock the catalog: %s", strerror(e));
        }
    }
    int rc = load(c, err);
    if (rc == CP_OK) {
        rc = fn(c, arg, err);
        if (rc == CP_OK) {
            rc = save(c, err);
            if (rc < 0) {
                /* Memory must match the file: reload what is there. */
                cp_err ignored;
                load(c, &ignored);
            }
        }
    }
    flock(lfd, LOCK_UN);
    close(lfd);
    return rc;
}

typedef struct add_arg {
    cp_ddl_table *t;
    int inserted; /* t now belongs to the catalog (a failed save's reload may free it) */
} add_arg;

static int do_add(cp_catalog *c, void *arg, cp_err *err)
{
    add_arg *a = arg;
    int found;
    size_t pos = find_pos(c, a->t->name, &found);
    if (found) {
        return cp_err_set(err, CP_EEXIST, "Table %s already exists", a->t->name);
    }
    insert(c, a->t, pos);
    a->inserted = 1;
    return CP_OK;
}

int cp_catalog_add(cp_catalog *c, cp_ddl_table *t, cp_err *err)
{
    add_arg a = {t, 0};
    int rc = locked_change(c, do_add, &a, err);
    if (!a.inserted) {
        cp_ddl_table_free(t);
    }
    return rc;
}

static int do_drop(cp_catalog *c, void *arg, cp_err *err)
{
    const char *name = arg;
    int found;
    size_t pos = find_pos(c, name, &found);
    if (!found) {
        return cp_err_set(err, CP_ENOTFOUND, "Table not found: %s", name);
    }
    cp_ddl_table_free(c->v[pos]);
    memmove(&c->v[pos], &c->v[pos + 1], (c->n - pos - 1) * sizeof(*c->v));
    c->n--;
    return CP_OK;
}

int cp_catalog_drop(cp_catalog *c, const char *name, cp_err *err)
{
    return locked_change(c, do_drop, (void *) name, err);
}
