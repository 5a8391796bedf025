/* SPDX-License-Identifier: MIT */
/*
 * The local bucket store: object files in browsable directories plus an SQLite index (see
 * bucket.h for the layout and the crash-safety protocol). The S3 API (s3api.c) and the local
 * delivery sink write through here.
 *
 * Lock order, always taken in this order and never the other way round:
 *   key stripe (per bucket+key hash)  ->  tree lock (rw)  ->  db mutex
 * The stripe serialises everything that touches one key (rename + index update must not
 * interleave with another writer of the same key, and readers must not see a new file with an
 * old ETag). The tree lock is shared by writers, which only ever add directories, and taken
 * exclusively to remove directories (empty parents after a delete, bucket create/delete), so a
 * directory never disappears between a writer opening it and renaming into it. The db mutex
 * guards the one SQLite connection.
 */
#include "objects/bucket.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/mem.h"
#include "objects/keypath.h"

#define NSTRIPES           64
#define TMP_DIR            ".cp-tmp"
#define UPLOADS_DIR        ".cp-uploads"
#define TRASH_PREFIX       ".cp-trash-"
#define DEFAULT_MAX_OBJECT (5ull << 30)
#define DEFAULT_MIN_PART   (5ull << 20)
#define LIST_PAGE          1000

enum { OP_PUT = 1, OP_DEL = 2 };

/* Prepared statements, all used under db_mu only. */
enum {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_BUCKET_GET,
    Q_BUCKET_INS,
    Q_BUCKET_DEL,
    Q_BUCKET_ALL,
    Q_BUCKET_USED,
    Q_OBJ_GET,
    Q_OBJ_PUT,
    Q_OBJ_DEL,
    Q_OBJ_LIST,
    Q_PEND_INS,
    Q_PEND_PATH,
    Q_PEND_DEL,
    Q_PEND_ALL,
    Q_UP_INS,
    Q_UP_GET,
    Q_UP_DEL,
    Q_UP_BUCKET,
    Q_UP_BUCKET_DEL,
    Q_PART_PUT,
    Q_PART_LIST,
    Q_PART_DEL,
    Q_PART_BUCKET_DEL,
    NQ
};

static const char *const SQL[NQ] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_BUCKET_GET] = "SELECT region, created_ms FROM buckets WHERE name = ?1",
    [Q_BUCKET_INS] = "INSERT INTO buckets(name, region, created_ms) VALUES(?1, ?2, ?3)",
    [Q_BUCKET_DEL] = "DELETE FROM buckets WHERE name = ?1",
    [Q_BUCKET_ALL] = "SELECT name, region, created_ms FROM buckets ORDER BY name",
    [Q_BUCKET_USED] = "SELECT 1 FROM objects WHERE bucket = ?1 UNION ALL "
                      "SELECT 1 FROM pending WHERE bucket = ?1 LIMIT 1",
    [Q_OBJ_GET] = "SELECT path, size, mtime_ms, etag, headers, ino FROM objects "
                  "WHERE bucket = ?1 AND key = ?2",
    [Q_OBJ_PUT] = "INSERT OR REPLACE INTO objects(bucket, key, path, size, mtime_ms, etag, "
                  "headers, ino) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [Q_OBJ_DEL] = "DELETE FROM objects WHERE bucket = ?1 AND key = ?2",
    [Q_OBJ_LIST] = "SELECT key, size, mtime_ms, etag FROM objects WHERE bucket = ?1 "
                   "AND key >= ?2 ORDER BY key",
    [Q_PEND_INS] = "INSERT INTO pending(op, bucket, key, path, size, mtime_ms, etag, headers, "
                   "ino, upload) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [Q_PEND_PATH] = "UPDATE pending SET path = ?2 WHERE id = ?1",
    [Q_PEND_DEL] = "DELETE FROM pending WHERE id = ?1",
    [Q_PEND_ALL] = "SELECT id, op, bucket, key, path, size, mtime_ms, etag, headers, ino, "
                   "upload FROM pending ORDER BY id",
    [Q_UP_INS] = "INSERT INTO uploads(id, bucket, key, created_ms, headers) "
                 "VALUES(?1, ?2, ?3, ?4, ?5)",
    [Q_UP_GET] = "SELECT bucket, key, headers FROM uploads WHERE id = ?1",
    [Q_UP_DEL] = "DELETE FROM uploads WHERE id = ?1",
    [Q_UP_BUCKET] = "SELECT id FROM uploads WHERE bucket = ?1",
    [Q_UP_BUCKET_DEL] = "DELETE FROM uploads WHERE bucket = ?1",
    [Q_PART_PUT] = "INSERT OR REPLACE INTO parts(upload, num, size, etag, mtime_ms) "
                   "VALUES(?1, ?2, ?3, ?4, ?5)",
    [Q_PART_LIST] = "SELECT num, size, etag, mtime_ms FROM parts WHERE upload = ?1 AND num > ?2 "
                    "ORDER BY num",
    [Q_PART_DEL] = "DELETE FROM parts WHERE upload = ?1",
    [Q_PART_BUCKET_DEL] = "DELETE FROM parts WHERE upload IN "
                          "(SELECT id FROM uploads WHERE bucket = ?1)",
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS buckets(name TEXT PRIMARY KEY, region TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL) WITHOUT ROWID;"
    /* key and path are BLOBs so ordering is memcmp order, which is S3's key order. */
    "CREATE TABLE IF NOT EXISTS objects(bucket TEXT NOT NULL, key BLOB NOT NULL,"
    " path BLOB NOT NULL, size INTEGER NOT NULL, mtime_ms INTEGER NOT NULL,"
    " etag TEXT NOT NULL, headers BLOB NOT NULL, ino INTEGER NOT NULL,"
    " PRIMARY KEY(bucket, key)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS pending(id INTEGER PRIMARY KEY, op INTEGER NOT NULL,"
    " bucket TEXT NOT NULL, key BLOB NOT NULL, path BLOB NOT NULL, size INTEGER,"
    " mtime_ms INTEGER, etag TEXT, headers BLOB, ino INTEGER, upload TEXT);"
    "CREATE TABLE IF NOT EXISTS uploads(id TEXT PRIMARY KEY, bucket TEXT NOT NULL,"
    " key BLOB NOT NULL, created_ms INTEGER NOT NULL, headers BLOB NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS uploads_bucket ON uploads(bucket);"
    "CREATE TABLE IF NOT EXISTS parts(upload TEXT NOT NULL, num INTEGER NOT NULL,"
    " size INTEGER NOT NULL, etag TEXT NOT NULL, mtime_ms INTEGER NOT NULL,"
    " PRIMARY KEY(upload, num)) WITHOUT ROWID;";

struct cp_bucket_store {
    int root_fd; /* <data>/buckets */
    int lock_fd; /* .cp-lock, flock()ed */
    sqlite3 *db;
    sqlite3_stmt *q[NQ];
    pthread_mutex_t db_mu;
    pthread_rwlock_t tree_mu;
    pthread_mutex_t stripes[NSTRIPES];
    char region[64];
    uint64_t max_object, min_part;
};

struct cp_bucket_writer {
    cp_bucket_store *s;
    char bucket[64];
    cp_buf key;
    char upload_id[CP_BUCKET_UPLOAD_ID_LEN + 1]; /* part writers only */
    int part;                                    /* 0 for an object writer */
    int bucket_fd, tmp_dirfd, fd;
    char tmpname[48];
    EVP_MD_CTX *md5;
    uint64_t size;
    int failed; /* sticky error code of a failed write */
};

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                               */

static int sys_err(cp_err *err, const char *what)
{
    int e = errno ? errno : EIO;
    return cp_err_set(err, -e, "%s: %s", what, strerror(e));
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char raw[32];
    if (nbytes > sizeof(raw)) {
        nbytes = sizeof(raw);
    }
    size_t got = 0;
    while (got < nbytes) {
        ssize_t n = getrandom(raw + got, nbytes - got, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            /* Cannot happen on Linux >= 3.17; a clock-derived id is still unique enough. */
            uint64_t t = (uint64_t) cp_clock_mono_ns() ^ (uint64_t) getpid();
            for (; got < nbytes; got++, t = t * 6364136223846793005ull + 1) {
                raw[got] = (unsigned char) (t >> 56);
            }
            break;
        }
        got += (size_t) n;
    }
    cp_hex(raw, nbytes, out);
}

static pthread_mutex_t *stripe_of(cp_bucket_store *s, const char *bucket, cp_slice key)
{
    uint64_t h = cp_fnv1a64(bucket, strlen(bucket) + 1);
    h ^= cp_fnv1a64(key.p, key.len);
    return &s->stripes[h % NSTRIPES];
}

static void md5_hex_final(EVP_MD_CTX *ctx, char out[48], unsigned char raw[16])
{
    unsigned char tmp[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx, tmp, &n);
    memcpy(raw, tmp, 16);
    cp_hex(tmp, 16, out);
}

void cp_bucket_obj_free(cp_bucket_obj *o)
{
    if (o) {
        cp_buf_free(&o->headers);
    }
}

cp_slice cp_bucket_obj_header(const cp_bucket_obj *o, const char *name)
{
    const char *p = o->headers.p, *end = o->headers.p + o->headers.len;
    size_t nlen = strlen(name);
    while (p && p < end) {
        size_t kl = strlen(p);
        const char *v = p + kl + 1;
        size_t vl = strlen(v);
        if (kl == nlen && memcmp(p, name, nlen) == 0) {
            return cp_slice_of(v, vl);
        }
        p = v + vl + 1;
    }
    return (cp_slice){NULL, 0};
}

void cp_bucket_list_res_free(cp_bucket_list_res *r)
{
    cp_buf_free(&r->next);
    cp_buf_free(&r->last);
}

/* ------------------------------------------------------------------------------------------ */
/* Index (SQLite) helpers; callers hold db_mu                                                  */

static sqlite3_stmt *q(cp_bucket_store *s, int id)
{
    sqlite3_stmt *st = s->q[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static void bind_slice(sqlite3_stmt *st, int i, cp_slice v)
{
    /* A NULL pointer would bind SQL NULL; empty values are empty blobs. */
    sqlite3_bind_blob(st, i, v.p ? v.p : "", (int) v.len, SQLITE_TRANSIENT);
}

static void bind_str(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

static cp_slice col_slice(sqlite3_stmt *st, int i)
{
    const void *p = sqlite3_column_blob(st, i);
    int n = sqlite3_column_bytes(st, i);
    return cp_slice_of(p ? p : "", (size_t) n);
}

static int db_fail(cp_bucket_store *s, int rc, cp_err *err)
{
    int code = (rc & 0xff) == SQLITE_FULL ? -ENOSPC : CP_EIO;
    return cp_err_set(err, code, "object index: %s", sqlite3_errmsg(s->db));
}

/* Step a statement that returns no rows. */
static int db_run(cp_bucket_store *s, sqlite3_stmt *st, cp_err *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        return db_fail(s, rc, err);
    }
    return CP_OK;
}

static int db_begin(cp_bucket_store *s, cp_err *err)
{
    return db_run(s, q(s, Q_BEGIN), err);
}

static int db_commit(cp_bucket_store *s, cp_err *err)
{
    int rc = db_run(s, q(s, Q_COMMIT), err);
    if (rc < 0) {
        sqlite3_step(q(s, Q_ROLLBACK));
        sqlite3_reset(s->q[Q_ROLLBACK]);
    }
    return rc;
}

static void db_rollback(cp_bucket_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_step(q(s, Q_ROLLBACK));
        sqlite3_reset(s->q[Q_ROLLBACK]);
    }
}

/* 1 when the bucket row exists, 0 when not, < 0 on index errors. */
static int db_bucket_exists(cp_bucket_store *s, const char *bucket, cp_bucket_info *out,
                            cp_err *err)
{
    sqlite3_stmt *st = q(s, Q_BUCKET_GET);
    bind_str(st, 1, bucket);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (out) {
            snprintf(out->name, sizeof(out->name), "%s", bucket);
            snprintf(out->region, sizeof(out->region), "%s",
                     (const char *) sqlite3_column_text(st, 0));
            out->created_ms = sqlite3_column_int64(st, 1);
        }
        sqlite3_reset(st);
        return 1;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, rc, err);
}

typedef struct obj_row {
    cp_buf path;
    uint64_t size;
    int64_t mtime_ms;
    char etag[48];
    cp_buf headers;
    uint64_t ino;
} obj_row;

static void obj_row_free(obj_row *r)
{
    cp_buf_free(&r->path);
    cp_buf_free(&r->headers);
}

/* CP_OK with *r filled, CP_ENOTFOUND, or an index error. */
static int db_obj_get(cp_bucket_store *s, const char *bucket, cp_slice key, obj_row *r, cp_err *err)
{
    sqlite3_stmt *st = q(s, Q_OBJ_GET);
    bind_str(st, 1, bucket);
    bind_slice(st, 2, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        cp_buf_reset(&r->path);
        cp_slice p = col_slice(st, 0);
        cp_buf_append(&r->path, p.p, p.len);
        r->size = (uint64_t) sqlite3_column_int64(st, 1);
        r->mtime_ms = sqlite3_column_int64(st, 2);
        snprintf(r->etag, sizeof(r->etag), "%s", (const char *) sqlite3_column_text(st, 3));
        cp_buf_reset(&r->headers);
        cp_slice h = col_slice(st, 4);
        cp_buf_append(&r->headers, h.p, h.len);
        r->ino = (uint64_t) sqlite3_column_int64(st, 5);
        sqlite3_reset(st);
        return CP_OK;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? CP_ENOTFOUND : db_fail(s, rc, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Directory walking. Every step is an openat() with O_NOFOLLOW from the bucket directory, so  */
/* a symlink planted inside a bucket can never lead a write or read outside it.               */

static int open_dir_at(int dirfd, const char *name)
{
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Descend from *cur into directory `name` (creating it when missing and `create`). The old
 * *cur is closed unless it is `keep`. CP_EEXIST when `name` is something other than a
 * directory. */
static int descend(int *cur, int keep, const char *name, int create)
{
    int fd = open_dir_at(*cur, name);
    if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(*cur, name, 0755) == 0) {
            /* The new entry must survive a crash before anything is renamed below it. */
            if (fsync(*cur) < 0) {
                return -errno;
            }
        } else if (errno != EEXIST) {
            return -errno;
        }
        fd = open_dir_at(*cur, name);
    }
    if (fd < 0) {
        return errno == ENOTDIR || errno == ELOOP ? CP_EEXIST : -errno;
    }
    if (*cur != keep) {
        close(*cur);
    }
    *cur = fd;
    return CP_OK;
}

/* Split the next '/'-separated component off path at *pos into name (NUL-terminated).
 * Returns 0 at the end; *last is set for the final component. */
static int next_comp(cp_slice path, size_t *pos, char name[256], int *last)
{
    if (*pos >= path.len) {
        return 0;
    }
    const char *s = path.p + *pos;
    const char *slash = memchr(s, '/', path.len - *pos);
    size_t n = slash ? (size_t) (slash - s) : path.len - *pos;
    if (n > 255) {
        n = 255; /* cannot happen for encoded paths; truncation fails the lookup safely */
    }
    memcpy(name, s, n);
    name[n] = 0;
    *last = !slash;
    *pos = slash ? (size_t) (slash - path.p) + 1 : path.len;
    return 1;
}

/* Walk a stored path: on CP_OK *dirfd is the parent directory of the last component (owned by
 * the caller) and leaf holds the last component. */
static int walk_stored(int base_fd, cp_slice path, int create, int *dirfd, char leaf[256])
{
    int cur = dup(base_fd);
    if (cur < 0) {
        return -errno;
    }
    size_t pos = 0;
    int last = 0;
    char name[256];
    while (next_comp(path, &pos, name, &last)) {
        if (last) {
            memcpy(leaf, name, strlen(name) + 1);
            *dirfd = cur;
            return CP_OK;
        }
        int rc = descend(&cur, -1, name, create);
        if (rc < 0) {
            close(cur);
            return rc;
        }
    }
    close(cur);
    return CP_EINVAL;
}

/*
 * Choose (and create the directories of) the path of a key that has none yet: the canonical
 * encoding, except that a plain component blocked by the other kind of entry (a file where a
 * directory is needed or the reverse) switches to its escaped form (keypath.h). On CP_OK
 * `path` holds the chosen relative path, *dirfd the leaf's directory, leaf the file name.
 * Caller holds the tree lock shared.
 */
static int place_key(int base_fd, cp_slice key, cp_buf *path, int *dirfd, char leaf[256])
{
    int cur = dup(base_fd);
    if (cur < 0) {
        return -errno;
    }
    cp_buf comps = CP_BUF_INIT;
    cp_buf_reset(path);
    const char *p = key.p, *end = key.p + key.len;
    int first = 1, rc = CP_OK, seg_fd = cur;
    for (;;) {
        const char *slash = memchr(p, '/', (size_t) (end - p));
        const char *stop = slash ? slash : end;
        cp_slice seg = cp_slice_of(p, (size_t) (stop - p));
        int last = !slash, force = 0;
        seg_fd = cur; /* pieces of this segment are walked from here */
    retry:
        cp_buf_reset(&comps);
        cp_keypath_encode_segment(seg, first, last, force, &comps);
        size_t pos = 0;
        int clast = 0;
        char name[256];
        cur = seg_fd;
        while (next_comp(cp_buf_slice(&comps), &pos, name, &clast)) {
            if (clast && last) {
                struct stat stt;
                if (fstatat(cur, name, &stt, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(stt.st_mode)) {
                    if (!force && name[0] != '%') {
                        force = 1;
                        if (cur != seg_fd) {
                            close(cur);
                        }
                        goto retry;
                    }
                    rc = CP_EEXIST;
                    goto out;
                }
                memcpy(leaf, name, strlen(name) + 1);
                break;
            }
            rc = descend(&cur, seg_fd, name, 1);
            if (rc == CP_EEXIST && clast && !force && name[0] != '%') {
                force = 1;
                if (cur != seg_fd) {
                    close(cur);
                }
                rc = CP_OK;
                goto retry;
            }
            if (rc < 0) {
                goto out;
            }
        }
        if (cur != seg_fd) {
            close(seg_fd);
        }
        cp_buf_append(path, comps.p, comps.len);
        if (last) {
            break;
        }
        cp_buf_putc(path, '/');
        p = slash + 1;
        first = 0;
    }
    cp_buf_free(&comps);
    *dirfd = cur;
    return CP_OK;
out:
    if (cur != seg_fd) {
        close(cur);
    }
    close(seg_fd);
    cp_buf_free(&comps);
    return rc;
}

/* Remove `name` under dirfd recursively, never following symlinks. Best effort: returns the
 * first error but keeps going. */
static int rm_tree(int dirfd, const char *name)
{
    int fd = open_dir_at(dirfd, name);
    if (fd < 0) {
        if (errno == ENOENT) {
            return CP_OK;
        }
        if (errno == ENOTDIR || errno == ELOOP) {
            return unlinkat(dirfd, name, 0) == 0 ? CP_OK : -errno;
        }
        return -errno;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    int rc = CP_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        int is_dir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            is_dir = fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        }
        int r =
            is_dir ? rm_tree(fd, de->d_name) : (unlinkat(fd, de->d_name, 0) == 0 ? CP_OK : -errno);
        if (r < 0 && rc == CP_OK) {
            rc = r;
        }
    }
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == CP_OK) {
        rc = -errno;
    }
    return rc;
}

/* Remove every entry of directory `name` under dirfd whose name is not accepted by keep(). */
static void clean_dir(int dirfd, const char *name, int (*keep)(void *, const char *), void *ctx)
{
    int fd = open_dir_at(dirfd, name);
    if (fd < 0) {
        return;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        if (!keep || !keep(ctx, de->d_name)) {
            rm_tree(fd, de->d_name);
        }
    }
    closedir(d);
}

static int open_bucket_dir(cp_bucket_store *s, const char *bucket)
{
    return open_dir_at(s->root_fd, bucket);
}

/* mkdir -p of one level; EEXIST is fine. */
static int ensure_dir(int dirfd, const char *name)
{
    if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST) {
        return -errno;
    }
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Open, recovery, close                                                                       */

static int upload_known(void *ctx, const char *name)
{
    cp_bucket_store *s = ctx;
    sqlite3_stmt *st = q(s, Q_UP_GET);
    bind_str(st, 1, name);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_ROW;
}

/* Finish one interrupted put or delete (see bucket.h): a put took effect iff the file at its
 * path is the inode the intent names. */
static void resolve_pending(cp_bucket_store *s, sqlite3_stmt *row)
{
    int64_t id = sqlite3_column_int64(row, 0);
    int op = sqlite3_column_int(row, 1);
    const char *bucket = (const char *) sqlite3_column_text(row, 2);
    cp_slice key = col_slice(row, 3);
    cp_slice path = col_slice(row, 4);
    int bfd = bucket ? open_bucket_dir(s, bucket) : -1;
    int dirfd = -1;
    char leaf[256];
    int have = bfd >= 0 && walk_stored(bfd, path, 0, &dirfd, leaf) == CP_OK;
    if (op == OP_PUT) {
        struct stat st;
        if (have && fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            (uint64_t) st.st_ino == (uint64_t) sqlite3_column_int64(row, 9)) {
            sqlite3_stmt *put = q(s, Q_OBJ_PUT);
            bind_str(put, 1, bucket);
            bind_slice(put, 2, key);
            bind_slice(put, 3, path);
            sqlite3_bind_int64(put, 4, sqlite3_column_int64(row, 5));
            sqlite3_bind_int64(put, 5, sqlite3_column_int64(row, 6));
            bind_str(put, 6, (const char *) sqlite3_column_text(row, 7));
            bind_slice(put, 7, col_slice(row, 8));
            sqlite3_bind_int64(put, 8, sqlite3_column_int64(row, 9));
            sqlite3_step(put);
            sqlite3_reset(put);
            const char *upload = (const char *) sqlite3_column_text(row, 10);
            if (upload) {
                sqlite3_stmt *d = q(s, Q_UP_DEL);
                bind_str(d, 1, upload);
                sqlite3_step(d);
                sqlite3_reset(d);
                d = q(s, Q_PART_DEL);
                bind_str(d, 1, upload);
                sqlite3_step(d);
                sqlite3_reset(d);
            }
        }
    } else {
        if (have) {
            unlinkat(dirfd, leaf, 0);
            fsync(dirfd);
        }
        sqlite3_stmt *del = q(s, Q_OBJ_DEL);
        bind_str(del, 1, bucket);
        bind_slice(del, 2, key);
        sqlite3_step(del);
        sqlite3_reset(del);
    }
    sqlite3_stmt *pd = q(s, Q_PEND_DEL);
    sqlite3_bind_int64(pd, 1, id);
    sqlite3_step(pd);
    sqlite3_reset(pd);
    if (dirfd >= 0) {
        close(dirfd);
    }
    if (bfd >= 0) {
        close(bfd);
    }
}

static int not_trash(void *ctx, const char *name)
{
    (void) ctx;
    return strncmp(name, TRASH_PREFIX, strlen(TRASH_PREFIX)) != 0;
}

static int recover(cp_bucket_store *s, cp_err *err)
{
    int rc = db_begin(s, err);
    if (rc < 0) {
        return rc;
    }
    /* One intent at a time: resolve the first row (which deletes it), then query again, so
     * no cursor walks a table that is being changed under it. */
    for (;;) {
        sqlite3_stmt *st = q(s, Q_PEND_ALL);
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE) {
            sqlite3_reset(st);
            break;
        }
        if (r != SQLITE_ROW) {
            rc = db_fail(s, r, err);
            db_rollback(s);
            return rc;
        }
        resolve_pending(s, st);
        sqlite3_reset(st);
    }
    if ((rc = db_commit(s, err)) < 0) {
        return rc;
    }
    /* Buckets: their directories must exist; staging is emptied (a temp file there is a
     * write that never committed); upload directories without an upload row are dropped. */
    sqlite3_stmt *all = q(s, Q_BUCKET_ALL);
    cp_buf names = CP_BUF_INIT;
    while (sqlite3_step(all) == SQLITE_ROW) {
        cp_buf_puts(&names, (const char *) sqlite3_column_text(all, 0));
        cp_buf_putc(&names, 0);
    }
    sqlite3_reset(all);
    for (size_t off = 0; off < names.len; off += strlen(names.p + off) + 1) {
        const char *b = names.p + off;
        if (ensure_dir(s->root_fd, b) < 0) {
            continue;
        }
        int bfd = open_bucket_dir(s, b);
        if (bfd < 0) {
            continue;
        }
        ensure_dir(bfd, TMP_DIR);
        ensure_dir(bfd, UPLOADS_DIR);
        clean_dir(bfd, TMP_DIR, NULL, NULL);
        clean_dir(bfd, UPLOADS_DIR, upload_known, s);
        close(bfd);
    }
    cp_buf_free(&names);
    clean_dir(s->root_fd, ".", not_trash, NULL);
    return CP_OK;
}

int cp_bucket_store_open(const cp_bucket_cfg *cfg, cp_bucket_store **out, cp_err *err)
{
    *out = NULL;
    if (!cfg || !cfg->data_dir || !cfg->data_dir[0]) {
        return cp_err_set(err, CP_EINVAL, "bucket store: no data directory");
    }
    if (mkdir(cfg->data_dir, 0755) < 0 && errno != EEXIST) {
        return sys_err(err, "cannot create the data directory");
    }
    int data_fd = open(cfg->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (data_fd < 0) {
        return sys_err(err, "cannot open the data directory");
    }
    int rc = ensure_dir(data_fd, "buckets");
    int root_fd = rc < 0 ? -1 : open_dir_at(data_fd, "buckets");
    close(data_fd);
    if (root_fd < 0) {
        return sys_err(err, "cannot open <data>/buckets");
    }
    cp_bucket_store *s = cp_calloc(1, sizeof(*s));
    s->root_fd = root_fd;
    s->lock_fd = openat(root_fd, ".cp-lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        rc = sys_err(err, "cannot open the bucket lock file");
        goto fail_fds;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK
                 ? cp_err_set(err, CP_EINUSE, "the bucket directory is in use by another process")
                 : sys_err(err, "cannot lock the bucket directory");
        goto fail_fds;
    }
    snprintf(s->region, sizeof(s->region), "%s",
             cfg->default_region && cfg->default_region[0] ? cfg->default_region : "us-east-1");
    s->max_object = cfg->max_object_size ? cfg->max_object_size : DEFAULT_MAX_OBJECT;
    s->min_part = cfg->min_part_size ? cfg->min_part_size : DEFAULT_MIN_PART;
    pthread_mutex_init(&s->db_mu, NULL);
    pthread_rwlock_init(&s->tree_mu, NULL);
    for (int i = 0; i < NSTRIPES; i++) {
        pthread_mutex_init(&s->stripes[i], NULL);
    }

    char dbpath[4096];
    snprintf(dbpath, sizeof(dbpath), "%s/buckets/.cp-index.db", cfg->data_dir);
    int src = sqlite3_open_v2(
        dbpath, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = cp_err_set(err, CP_EIO, "cannot open the object index: %s",
                        s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(src));
        goto fail;
    }
    /* WAL + FULL: every commit is durable when it returns, and readers never block the
     * writer. The intent protocol relies on the intent being durable before the rename. */
    char *emsg = NULL;
    src = sqlite3_exec(s->db,
                       "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                       "PRAGMA foreign_keys=OFF;",
                       NULL, NULL, &emsg);
    if (src == SQLITE_OK) {
        src = sqlite3_exec(s->db, SCHEMA, NULL, NULL, &emsg);
    }
    if (src != SQLITE_OK) {
        rc = cp_err_set(err, CP_EIO, "cannot initialise the object index: %s", emsg ? emsg : "?");
        sqlite3_free(emsg);
        goto fail;
    }
    for (int i = 0; i < NQ; i++) {
        src = sqlite3_prepare_v3(s->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i], NULL);
        if (src != SQLITE_OK) {
            rc = cp_err_set(err, CP_EIO, "object index statement %d: %s", i, sqlite3_errmsg(s->db));
            goto fail;
        }
    }
    if ((rc = recover(s, err)) < 0) {
        goto fail;
    }
    *out = s;
    return CP_OK;
fail:
    cp_bucket_store_close(s);
    return rc;
fail_fds:
    if (s->lock_fd >= 0) {
        close(s->lock_fd);
    }
    close(root_fd);
    cp_free(s);
    return rc;
}

void cp_bucket_store_close(cp_bucket_store *s)
{
    if (!s) {
        return;
    }
    for (int i = 0; i < NQ; i++) {
        sqlite3_finalize(s->q[i]);
    }
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->db_mu);
    pthread_rwlock_destroy(&s->tree_mu);
    for (int i = 0; i < NSTRIPES; i++) {
        pthread_mutex_destroy(&s->stripes[i]);
    }
    close(s->lock_fd); /* releases the flock */
    close(s->root_fd);
    cp_free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Buckets                                                                                     */

int cp_bucket_name_check(cp_slice n, cp_err *err)
{
    if (n.len < 3 || n.len > 63) {
        return cp_err_set(err, CP_EINVAL, "Bucket names must be between 3 and 63 characters");
    }
    for (size_t i = 0; i < n.len; i++) {
        char c = n.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) {
            return cp_err_set(err, CP_EINVAL,
                              "Bucket names can consist only of lowercase letters, numbers, "
                              "dots (.), and hyphens (-)");
        }
        if (c == '.' && i + 1 < n.len && n.p[i + 1] == '.') {
            return cp_err_set(err, CP_EINVAL, "Bucket names must not contain two adjacent periods");
        }
    }
    char f = n.p[0], l = n.p[n.len - 1];
    if (f == '.' || f == '-' || l == '.' || l == '-') {
        return cp_err_set(err, CP_EINVAL,
                          "Bucket names must begin and end with a letter or number");
    }
    /* Not formatted as an IPv4 address. */
    int dots = 0, digits_only = 1;
    for (size_t i = 0; i < n.len; i++) {
        dots += n.p[i] == '.';
        digits_only &= (n.p[i] >= '0' && n.p[i] <= '9') || n.p[i] == '.';
    }
    if (dots == 3 && digits_only) {
        return cp_err_set(err, CP_EINVAL, "Bucket names must not be formatted as an IP address");
    }
    static const char *const bad_prefix[] = {"xn--", "sthree-", "amzn-s3-demo-"};
    static const char *const bad_suffix[] = {"-s3alias", "--ol-s3", ".mrap", "--x-s3",
                                             "--table-s3"};
    for (size_t i = 0; i < sizeof(bad_prefix) / sizeof(bad_prefix[0]); i++) {
        size_t k = strlen(bad_prefix[i]);
        if (n.len >= k && memcmp(n.p, bad_prefix[i], k) == 0) {
            return cp_err_set(err, CP_EINVAL, "Bucket names must not start with %s", bad_prefix[i]);
        }
    }
    for (size_t i = 0; i < sizeof(bad_suffix) / sizeof(bad_suffix[0]); i++) {
        size_t k = strlen(bad_suffix[i]);
        if (n.len >= k && memcmp(n.p + n.len - k, bad_suffix[i], k) == 0) {
            return cp_err_set(err, CP_EINVAL, "Bucket names must not end with %s", bad_suffix[i]);
        }
    }
    return CP_OK;
}

/* A name that could be a bucket; anything else is answered as a missing bucket without
 * touching the file system (this is what keeps "..", "/" and friends out of paths). */
static int bucket_name_ok(const char *bucket)
{
    return bucket && cp_bucket_name_check(cp_slice_str(bucket), NULL) == CP_OK;
}

static int no_bucket(cp_err *err)
{
    return cp_err_set(err, CP_BUCKET_ENOBUCKET, "The specified bucket does not exist");
}

static int region_ok(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > 63) {
        return 0;
    }
    if (strcmp(r, "EU") == 0) {
        return 1; /* the legacy alias S3 still accepts */
    }
    for (size_t i = 0; i < n; i++) {
        if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-')) {
            return 0;
        }
    }
    return 1;
}

int cp_bucket_create(cp_bucket_store *s, const char *name, const char *region, cp_err *err)
{
    int rc = cp_bucket_name_check(cp_slice_str(name ? name : ""), err);
    if (rc < 0) {
        return rc;
    }
    if (!region || !region[0]) {
        region = s->region;
    }
    if (!region_ok(region)) {
        return cp_err_set(err, CP_EINVAL, "The specified location-constraint is not valid");
    }
    /* Exclusive tree lock: a concurrent delete of the same name must not move the directory
     * away between our mkdir and our insert. */
    pthread_rwlock_wrlock(&s->tree_mu);
    pthread_mutex_lock(&s->db_mu);
    rc = db_bucket_exists(s, name, NULL, err);
    pthread_mutex_unlock(&s->db_mu);
    if (rc > 0) {
        rc = cp_err_set(err, CP_EEXIST, "The bucket already exists");
        goto out;
    }
    if (rc < 0) {
        goto out;
    }
    if ((rc = ensure_dir(s->root_fd, name)) < 0) {
        rc = cp_err_set(err, rc, "cannot create the bucket directory: %s", strerror(-rc));
        goto out;
    }
    int bfd = open_bucket_dir(s, name);
    if (bfd < 0) {
        rc = sys_err(err, "cannot open the bucket directory");
        goto out;
    }
    rc = ensure_dir(bfd, TMP_DIR);
    if (rc == CP_OK) {
        rc = ensure_dir(bfd, UPLOADS_DIR);
    }
    if (rc == CP_OK && (fsync(bfd) < 0 || fsync(s->root_fd) < 0)) {
        rc = -errno;
    }
    close(bfd);
    if (rc < 0) {
        rc = cp_err_set(err, rc, "cannot prepare the bucket directory: %s", strerror(-rc));
        goto out;
    }
    pthread_mutex_lock(&s->db_mu);
    sqlite3_stmt *st = q(s, Q_BUCKET_INS);
    bind_str(st, 1, name);
    bind_str(st, 2, region);
    sqlite3_bind_int64(st, 3, cp_clock_now_ms());
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    if (r == SQLITE_CONSTRAINT || (r & 0xff) == SQLITE_CONSTRAINT) {
        rc = cp_err_set(err, CP_EEXIST, "The bucket already exists");
    } else if (r != SQLITE_DONE) {
        rc = db_fail(s, r, err);
    }
    pthread_mutex_unlock(&s->db_mu);
out:
    pthread_rwlock_unlock(&s->tree_mu);
    return rc;
}

int cp_bucket_info_get(cp_bucket_store *s, const char *name, cp_bucket_info *out, cp_err *err)
{
    if (!bucket_name_ok(name)) {
        return no_bucket(err);
    }
    pthread_mutex_lock(&s->db_mu);
    int rc = db_bucket_exists(s, name, out, err);
    pthread_mutex_unlock(&s->db_mu);
    return rc < 0 ? rc : rc == 0 ? no_bucket(err) : CP_OK;
}

int cp_bucket_list_buckets(cp_bucket_store *s, cp_bucket_each_cb cb, void *ctx, cp_err *err)
{
    cp_bucket_info *v = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&s->db_mu);
    sqlite3_stmt *st = q(s, Q_BUCKET_ALL);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = cp_realloc(v, cap * sizeof(*v));
        }
        snprintf(v[n].name, sizeof(v[n].name), "%s", (const char *) sqlite3_column_text(st, 0));
        snprintf(v[n].region, sizeof(v[n].region), "%s", (const char *) sqlite3_column_text(st, 1));
        v[n].created_ms = sqlite3_column_int64(st, 2);
        n++;
    }
    sqlite3_reset(st);
    int rc = r == SQLITE_DONE ? CP_OK : db_fail(s, r, err);
    pthread_mutex_unlock(&s->db_mu);
    for (size_t i = 0; rc == CP_OK && i < n; i++) {
        rc = cb(ctx, &v[i]);
    }
    cp_free(v);
    return rc;
}

int cp_bucket_delete(cp_bucket_store *s, const char *name, cp_err *err)
{
    if (!bucket_name_ok(name)) {
        return no_bucket(err);
    }
    pthread_rwlock_wrlock(&s->tree_mu);
    pthread_mutex_lock(&s->db_mu);
    int rc = db_begin(s, err);
    if (rc < 0) {
        goto unlock;
    }
    rc = db_bucket_exists(s, name, NULL, err);
    if (rc <= 0) {
        rc = rc < 0 ? rc : no_bucket(err);
        goto rollback;
    }
    sqlite3_stmt *st = q(s, Q_BUCKET_USED);
    bind_str(st, 1, name);
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    if (r == SQLITE_ROW) {
        rc = cp_err_set(err, CP_BUCKET_ENOTEMPTY, "The bucket you tried to delete is not empty");
        goto rollback;
    }
    /* In-progress multipart uploads go with the bucket. */
    st = q(s, Q_PART_BUCKET_DEL);
    bind_str(st, 1, name);
    if ((rc = db_run(s, st, err)) < 0) {
        goto rollback;
    }
    st = q(s, Q_UP_BUCKET_DEL);
    bind_str(st, 1, name);
    if ((rc = db_run(s, st, err)) < 0) {
        goto rollback;
    }
    st = q(s, Q_BUCKET_DEL);
    bind_str(st, 1, name);
    if ((rc = db_run(s, st, err)) < 0) {
        goto rollback;
    }
    rc = db_commit(s, err);
    pthread_mutex_unlock(&s->db_mu);
    if (rc == CP_OK) {
        /* The row is gone, so the bucket is gone; the directory is moved aside in one step
         * and removed at leisure (or by the next open after a crash). */
        char trash[64];
        memcpy(trash, TRASH_PREFIX, strlen(TRASH_PREFIX));
        random_hex(trash + strlen(TRASH_PREFIX), 8);
        if (renameat(s->root_fd, name, s->root_fd, trash) == 0) {
            fsync(s->root_fd);
            rm_tree(s->root_fd, trash);
        } else {
            rm_tree(s->root_fd, name);
        }
    }
    pthread_rwlock_unlock(&s->tree_mu);
    return rc;
rollback:
    db_rollback(s);
unlock:
    pthread_mutex_unlock(&s->db_mu);
    pthread_rwlock_unlock(&s->tree_mu);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Installing a staged file under a key: the intent protocol of bucket.h                       */

typedef struct staged {
    int tmp_dirfd;       /* the bucket's staging directory */
    const char *tmpname; /* the staged file in it, written and fsynced */
    uint64_t ino, size;
    const char *etag; /* unquoted */
    cp_slice headers;
    const char *upload_id; /* completing a multipart upload: drop its rows in the same commit */
} staged;

static int intent_put(cp_bucket_store *s, const char *bucket, cp_slice key, cp_slice path,
                      const staged *sg, int64_t mtime, int64_t *pid, cp_err *err)
{
    int rc = db_begin(s, err);
    if (rc < 0) {
        return rc;
    }
    rc = db_bucket_exists(s, bucket, NULL, err);
    if (rc <= 0) {
        db_rollback(s);
        return rc < 0 ? rc : no_bucket(err);
    }
    sqlite3_stmt *st = q(s, Q_PEND_INS);
    sqlite3_bind_int(st, 1, OP_PUT);
    bind_str(st, 2, bucket);
    bind_slice(st, 3, key);
    bind_slice(st, 4, path);
    sqlite3_bind_int64(st, 5, (int64_t) sg->size);
    sqlite3_bind_int64(st, 6, mtime);
    bind_str(st, 7, sg->etag);
    bind_slice(st, 8, sg->headers);
    sqlite3_bind_int64(st, 9, (int64_t) sg->ino);
    if (sg->upload_id) {
        bind_str(st, 10, sg->upload_id);
    }
    if ((rc = db_run(s, st, err)) < 0) {
        db_rollback(s);
        return rc;
    }
    *pid = sqlite3_last_insert_rowid(s->db);
    return db_commit(s, err);
}

static void intent_drop(cp_bucket_store *s, int64_t pid)
{
    pthread_mutex_lock(&s->db_mu);
    sqlite3_stmt *st = q(s, Q_PEND_DEL);
    sqlite3_bind_int64(st, 1, pid);
    sqlite3_step(st);
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->db_mu);
}

/* Remove the file at a stored path (best effort). */
static void unlink_stored(int bfd, cp_slice path)
{
    int dirfd;
    char leaf[256];
    if (walk_stored(bfd, path, 0, &dirfd, leaf) == CP_OK) {
        unlinkat(dirfd, leaf, 0);
        fsync(dirfd);
        close(dirfd);
    }
}

/* Make the staged file the object `key`. Caller holds the key's stripe. */
static int install_locked(cp_bucket_store *s, const char *bucket, int bfd, cp_slice key,
                          const staged *sg, cp_bucket_obj *out, cp_err *err)
{
    obj_row old = {0};
    cp_buf path = CP_BUF_INIT;
    int have_old = 0, dirfd = -1, rc;
    int64_t pid = 0, mtime = cp_clock_now_ms();
    char leaf[256];

    pthread_mutex_lock(&s->db_mu);
    rc = db_bucket_exists(s, bucket, NULL, err);
    if (rc > 0) {
        rc = db_obj_get(s, bucket, key, &old, err);
        have_old = rc == CP_OK;
        rc = rc == CP_ENOTFOUND ? CP_OK : rc;
    } else if (rc == 0) {
        rc = no_bucket(err);
    }
    pthread_mutex_unlock(&s->db_mu);
    if (rc < 0) {
        goto out;
    }

    pthread_rwlock_rdlock(&s->tree_mu);
    for (int attempt = 0;; attempt++) {
        rc = CP_EEXIST;
        if (have_old && attempt == 0) {
            /* An overwrite keeps the object's current path. */
            rc = walk_stored(bfd, cp_buf_slice(&old.path), 1, &dirfd, leaf);
            struct stat st;
            if (rc == CP_OK && fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISDIR(st.st_mode)) {
                close(dirfd);
                rc = CP_EEXIST;
            }
            if (rc == CP_OK) {
                cp_buf_reset(&path);
                cp_buf_append(&path, old.path.p, old.path.len);
            }
        }
        if (rc < 0) {
            rc = place_key(bfd, key, &path, &dirfd, leaf);
        }
        if (rc < 0) {
            pthread_rwlock_unlock(&s->tree_mu);
            rc = rc == CP_EEXIST
                     ? cp_err_set(err, CP_EEXIST,
                                  "the object's path is blocked by a file that is not an object")
                     : cp_err_set(err, rc, "cannot create the object's directories: %s",
                                  strerror(-rc));
            if (pid) {
                intent_drop(s, pid);
            }
            goto out;
        }
        pthread_mutex_lock(&s->db_mu);
        if (pid == 0) {
            rc = intent_put(s, bucket, key, cp_buf_slice(&path), sg, mtime, &pid, err);
        } else {
            sqlite3_stmt *st = q(s, Q_PEND_PATH);
            sqlite3_bind_int64(st, 1, pid);
            bind_slice(st, 2, cp_buf_slice(&path));
            rc = db_run(s, st, err);
        }
        pthread_mutex_unlock(&s->db_mu);
        if (rc < 0) {
            close(dirfd);
            pthread_rwlock_unlock(&s->tree_mu);
            goto out;
        }
        if (renameat(sg->tmp_dirfd, sg->tmpname, dirfd, leaf) == 0) {
            break;
        }
        int e = errno;
        close(dirfd);
        dirfd = -1;
        /* Another writer made the plain name a directory since we looked: place again, the
         * escaped form will be chosen. */
        if ((e == EISDIR || e == ENOTEMPTY || e == EEXIST) && attempt < 3) {
            continue;
        }
        pthread_rwlock_unlock(&s->tree_mu);
        intent_drop(s, pid);
        rc = cp_err_set(err, -e, "cannot move the object into place: %s", strerror(e));
        goto out;
    }
    pthread_rwlock_unlock(&s->tree_mu);
    if (fsync(dirfd) < 0) {
        /* The intent stays: the next open settles whether the rename reached the disk. */
        rc = sys_err(err, "cannot sync the object's directory");
        close(dirfd);
        goto out;
    }
    close(dirfd);
    if (have_old && !cp_slice_eq(cp_buf_slice(&old.path), cp_buf_slice(&path))) {
        unlink_stored(bfd, cp_buf_slice(&old.path));
    }

    pthread_mutex_lock(&s->db_mu);
    rc = db_begin(s, err);
    if (rc == CP_OK) {
        sqlite3_stmt *st = q(s, Q_OBJ_PUT);
        bind_str(st, 1, bucket);
        bind_slice(st, 2, key);
        bind_slice(st, 3, cp_buf_slice(&path));
        sqlite3_bind_int64(st, 4, (int64_t) sg->size);
        sqlite3_bind_int64(st, 5, mtime);
        bind_str(st, 6, sg->etag);
        bind_slice(st, 7, sg->headers);
        sqlite3_bind_int64(st, 8, (int64_t) sg->ino);
        rc = db_run(s, st, err);
        if (rc == CP_OK) {
            st = q(s, Q_PEND_DEL);
            sqlite3_bind_int64(st, 1, pid);
            rc = db_run(s, st, err);
        }
        if (rc == CP_OK && sg->upload_id) {
            st = q(s, Q_PART_DEL);
            bind_str(st, 1, sg->upload_id);
            rc = db_run(s, st, err);
            if (rc == CP_OK) {
                st = q(s, Q_UP_DEL);
                bind_str(st, 1, sg->upload_id);
                rc = db_run(s, st, err);
            }
        }
        if (rc == CP_OK) {
            rc = db_commit(s, err);
        } else {
            db_rollback(s);
        }
    }
    pthread_mutex_unlock(&s->db_mu);
    if (rc == CP_OK && out) {
        out->size = sg->size;
        out->mtime_ms = mtime;
        snprintf(out->etag, sizeof(out->etag), "%s", sg->etag);
        cp_buf_reset(&out->headers);
        if (sg->headers.len) {
            cp_buf_append(&out->headers, sg->headers.p, sg->headers.len);
        }
    }
out:
    obj_row_free(&old);
    cp_buf_free(&path);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Writers                                                                                     */

static void writer_free(cp_bucket_writer *w, int unlink_tmp)
{
    if (w->fd >= 0) {
        close(w->fd);
    }
    if (unlink_tmp && w->tmp_dirfd >= 0 && w->tmpname[0]) {
        unlinkat(w->tmp_dirfd, w->tmpname, 0);
    }
    if (w->tmp_dirfd >= 0) {
        close(w->tmp_dirfd);
    }
    if (w->bucket_fd >= 0) {
        close(w->bucket_fd);
    }
    EVP_MD_CTX_free(w->md5);
    cp_buf_free(&w->key);
    cp_free(w);
}

/* Open the bucket's staging directory (recreated if a person removed it). */
static int open_tmp_dir(int bfd)
{
    int fd = open_dir_at(bfd, TMP_DIR);
    if (fd < 0 && errno == ENOENT && ensure_dir(bfd, TMP_DIR) == CP_OK) {
        fd = open_dir_at(bfd, TMP_DIR);
    }
    return fd;
}

/* A new staging file in the bucket's .cp-tmp. */
static int create_tmp(int tmp_dirfd, char name[48])
{
    for (int i = 0; i < 8; i++) {
        random_hex(name, 12);
        strcat(name, ".tmp");
        int fd = openat(tmp_dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST) {
            return fd;
        }
    }
    return -1;
}

static int writer_start(cp_bucket_store *s, const char *bucket, cp_slice key,
                        cp_bucket_writer **out, cp_err *err)
{
    *out = NULL;
    if (!bucket_name_ok(bucket)) {
        return no_bucket(err);
    }
    int rc = cp_keypath_check(key, err);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&s->db_mu);
    rc = db_bucket_exists(s, bucket, NULL, err);
    pthread_mutex_unlock(&s->db_mu);
    if (rc <= 0) {
        return rc < 0 ? rc : no_bucket(err);
    }
    cp_bucket_writer *w = cp_calloc(1, sizeof(*w));
    w->s = s;
    w->bucket_fd = w->tmp_dirfd = w->fd = -1;
    snprintf(w->bucket, sizeof(w->bucket), "%s", bucket);
    cp_buf_append(&w->key, key.p, key.len);
    w->bucket_fd = open_bucket_dir(s, bucket);
    if (w->bucket_fd < 0) {
        rc = errno == ENOENT ? no_bucket(err) : sys_err(err, "cannot open the bucket directory");
        goto fail;
    }
    w->tmp_dirfd = open_tmp_dir(w->bucket_fd);
    if (w->tmp_dirfd < 0) {
        rc = sys_err(err, "cannot open the bucket's staging directory");
        goto fail;
    }
    w->fd = create_tmp(w->tmp_dirfd, w->tmpname);
    if (w->fd < 0) {
        w->tmpname[0] = 0;
        rc = sys_err(err, "cannot create a staging file");
        goto fail;
    }
    w->md5 = EVP_MD_CTX_new();
    if (!w->md5 || EVP_DigestInit_ex(w->md5, EVP_md5(), NULL) != 1) {
        rc = cp_err_set(err, CP_EIO, "MD5 is unavailable");
        goto fail;
    }
    *out = w;
    return CP_OK;
fail:
    writer_free(w, 1);
    return rc;
}

int cp_bucket_writer_open(cp_bucket_store *s, const char *bucket, cp_slice key,
                          cp_bucket_writer **out, cp_err *err)
{
    return writer_start(s, bucket, key, out, err);
}

static int upload_id_ok(const char *id)
{
    if (!id || strlen(id) != CP_BUCKET_UPLOAD_ID_LEN) {
        return 0;
    }
    for (const char *p = id; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

static int no_upload(cp_err *err)
{
    return cp_err_set(err, CP_BUCKET_ENOUPLOAD,
                      "The specified upload does not exist. The upload ID may be invalid, or the "
                      "upload may have been aborted or completed.");
}

/* CP_OK when upload `id` exists for bucket/key (headers, when not NULL, get its stored
 * headers), CP_BUCKET_ENOUPLOAD otherwise. Caller holds db_mu. */
static int db_upload_check(cp_bucket_store *s, const char *bucket, cp_slice key, const char *id,
                           cp_buf *headers, cp_err *err)
{
    if (!upload_id_ok(id)) {
        return no_upload(err);
    }
    sqlite3_stmt *st = q(s, Q_UP_GET);
    bind_str(st, 1, id);
    int r = sqlite3_step(st);
    int rc;
    if (r == SQLITE_ROW) {
        const char *b = (const char *) sqlite3_column_text(st, 0);
        cp_slice k = col_slice(st, 1);
        rc = strcmp(b, bucket) == 0 && cp_slice_eq(k, key) ? CP_OK : no_upload(err);
        if (rc == CP_OK && headers) {
            cp_slice h = col_slice(st, 2);
            cp_buf_reset(headers);
            cp_buf_append(headers, h.p, h.len);
        }
    } else {
        rc = r == SQLITE_DONE ? no_upload(err) : db_fail(s, r, err);
    }
    sqlite3_reset(st);
    return rc;
}

int cp_bucket_writer_open_part(cp_bucket_store *s, const char *bucket, cp_slice key,
                               const char *upload_id, int part, cp_bucket_writer **out, cp_err *err)
{
    *out = NULL;
    if (part < 1 || part > CP_BUCKET_MAX_PARTS) {
        return cp_err_set(err, CP_EINVAL,
                          "Part number must be an integer between 1 and 10000, "
                          "inclusive");
    }
    cp_bucket_writer *w;
    int rc = writer_start(s, bucket, key, &w, err);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&s->db_mu);
    rc = db_upload_check(s, bucket, key, upload_id, NULL, err);
    pthread_mutex_unlock(&s->db_mu);
    if (rc < 0) {
        writer_free(w, 1);
        return rc;
    }
    snprintf(w->upload_id, sizeof(w->upload_id), "%s", upload_id);
    w->part = part;
    *out = w;
    return CP_OK;
}

int cp_bucket_writer_write(cp_bucket_writer *w, const void *p, size_t len, cp_err *err)
{
    if (w->failed) {
        return cp_err_set(err, w->failed, "an earlier write to this object failed");
    }
    if (len > w->s->max_object || w->size > w->s->max_object - len) {
        w->failed = CP_ETOOBIG;
        return cp_err_set(err, CP_ETOOBIG, "Your proposed upload exceeds the maximum allowed size");
    }
    int rc = cp_fs_write_all(w->fd, p, len);
    if (rc < 0) {
        w->failed = rc;
        return cp_err_set(err, rc, "cannot write the object: %s", strerror(-rc));
    }
    EVP_DigestUpdate(w->md5, p, len);
    w->size += len;
    return CP_OK;
}

uint64_t cp_bucket_writer_size(const cp_bucket_writer *w)
{
    return w->size;
}

void cp_bucket_writer_abort(cp_bucket_writer *w)
{
    if (w) {
        writer_free(w, 1);
    }
}

static int upload_dir(int bfd, const char *id, int create)
{
    int up = open_dir_at(bfd, UPLOADS_DIR);
    if (up < 0 && errno == ENOENT && create && ensure_dir(bfd, UPLOADS_DIR) == CP_OK) {
        up = open_dir_at(bfd, UPLOADS_DIR);
    }
    if (up < 0) {
        return -1;
    }
    int fd = open_dir_at(up, id);
    if (fd < 0 && errno == ENOENT && create && ensure_dir(up, id) == CP_OK) {
        fsync(up);
        fd = open_dir_at(up, id);
    }
    int e = errno;
    close(up);
    errno = e;
    return fd;
}

static int commit_part(cp_bucket_writer *w, const char *etag, cp_bucket_obj *out, cp_err *err)
{
    cp_bucket_store *s = w->s;
    cp_slice key = cp_buf_slice(&w->key);
    pthread_mutex_t *m = stripe_of(s, w->bucket, key);
    pthread_mutex_lock(m);
    pthread_mutex_lock(&s->db_mu);
    int rc = db_upload_check(s, w->bucket, key, w->upload_id, NULL, err);
    pthread_mutex_unlock(&s->db_mu);
    int up = -1;
    if (rc == CP_OK) {
        up = upload_dir(w->bucket_fd, w->upload_id, 1);
        if (up < 0) {
            rc = sys_err(err, "cannot open the upload's directory");
        }
    }
    if (rc == CP_OK) {
        char pname[16];
        snprintf(pname, sizeof(pname), "%05d", w->part);
        if (renameat(w->tmp_dirfd, w->tmpname, up, pname) < 0 || fsync(up) < 0) {
            rc = sys_err(err, "cannot store the part");
        }
    }
    int64_t mtime = cp_clock_now_ms();
    if (rc == CP_OK) {
        pthread_mutex_lock(&s->db_mu);
        sqlite3_stmt *st = q(s, Q_PART_PUT);
        bind_str(st, 1, w->upload_id);
        sqlite3_bind_int(st, 2, w->part);
        sqlite3_bind_int64(st, 3, (int64_t) w->size);
        bind_str(st, 4, etag);
        sqlite3_bind_int64(st, 5, mtime);
        rc = db_run(s, st, err);
        pthread_mutex_unlock(&s->db_mu);
    }
    if (up >= 0) {
        close(up);
    }
    pthread_mutex_unlock(m);
    if (rc == CP_OK && out) {
        out->size = w->size;
        out->mtime_ms = mtime;
        snprintf(out->etag, sizeof(out->etag), "%s", etag);
        cp_buf_reset(&out->headers);
    }
    return rc;
}

int cp_bucket_writer_commit(cp_bucket_writer *w, const cp_bucket_put_opts *opts, cp_bucket_obj *out,
                            cp_err *err)
{
    int rc;
    if (w->failed) {
        rc = cp_err_set(err, w->failed, "an earlier write to this object failed");
        writer_free(w, 1);
        return rc;
    }
    struct stat st;
    if (fsync(w->fd) < 0 || fstat(w->fd, &st) < 0) {
        rc = sys_err(err, "cannot sync the object");
        writer_free(w, 1);
        return rc;
    }
    close(w->fd);
    w->fd = -1;
    char etag[48];
    unsigned char raw[16];
    md5_hex_final(w->md5, etag, raw);
    if (opts && opts->content_md5 && memcmp(raw, opts->content_md5, 16) != 0) {
        rc = cp_err_set(err, CP_BUCKET_EBADDIGEST,
                        "The Content-MD5 you specified did not match what we received.");
        writer_free(w, 1);
        return rc;
    }
    if (w->part) {
        rc = commit_part(w, etag, out, err);
    } else {
        staged sg = {w->tmp_dirfd, w->tmpname, (uint64_t) st.st_ino,
                     w->size,      etag,       opts ? opts->headers : cp_slice_of("", 0),
                     NULL};
        cp_slice key = cp_buf_slice(&w->key);
        pthread_mutex_t *m = stripe_of(w->s, w->bucket, key);
        pthread_mutex_lock(m);
        rc = install_locked(w->s, w->bucket, w->bucket_fd, key, &sg, out, err);
        pthread_mutex_unlock(m);
    }
    writer_free(w, rc < 0);
    return rc;
}

int cp_bucket_put(cp_bucket_store *s, const char *bucket, cp_slice key, cp_slice data,
                  const cp_bucket_put_opts *opts, cp_bucket_obj *out, cp_err *err)
{
    cp_bucket_writer *w;
    int rc = cp_bucket_writer_open(s, bucket, key, &w, err);
    if (rc < 0) {
        return rc;
    }
    if (data.len && (rc = cp_bucket_writer_write(w, data.p, data.len, err)) < 0) {
        cp_bucket_writer_abort(w);
        return rc;
    }
    return cp_bucket_writer_commit(w, opts, out, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Reads and deletes                                                                           */

static int check_bucket_key(const char *bucket, cp_slice key, cp_err *err)
{
    if (!bucket_name_ok(bucket)) {
        return no_bucket(err);
    }
    return cp_keypath_check(key, err);
}

static int no_key(cp_err *err)
{
    return cp_err_set(err, CP_ENOTFOUND, "The specified key does not exist.");
}

/* Look the key up (db_mu taken here). */
static int lookup(cp_bucket_store *s, const char *bucket, cp_slice key, obj_row *r, cp_err *err)
{
    pthread_mutex_lock(&s->db_mu);
    int rc = db_bucket_exists(s, bucket, NULL, err);
    if (rc > 0) {
        rc = db_obj_get(s, bucket, key, r, err);
        if (rc == CP_ENOTFOUND) {
            rc = no_key(err);
        }
    } else if (rc == 0) {
        rc = no_bucket(err);
    }
    pthread_mutex_unlock(&s->db_mu);
    return rc;
}

int cp_bucket_get(cp_bucket_store *s, const char *bucket, cp_slice key, cp_bucket_obj *meta,
                  int *fd, cp_err *err)
{
    if (fd) {
        *fd = -1;
    }
    int rc = check_bucket_key(bucket, key, err);
    if (rc < 0) {
        return rc;
    }
    obj_row r = {0};
    pthread_mutex_t *m = stripe_of(s, bucket, key);
    /* Under the key's stripe the index row and the file agree (no writer is between its
     * rename and its index commit). */
    pthread_mutex_lock(m);
    rc = lookup(s, bucket, key, &r, err);
    int ofd = -1;
    if (rc == CP_OK && fd) {
        int bfd = open_bucket_dir(s, bucket), dirfd = -1;
        char leaf[256];
        if (bfd >= 0 && walk_stored(bfd, cp_buf_slice(&r.path), 0, &dirfd, leaf) == CP_OK) {
            ofd = openat(dirfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        }
        struct stat st;
        if (ofd >= 0 && fstat(ofd, &st) == 0 && S_ISREG(st.st_mode)) {
            r.size = (uint64_t) st.st_size; /* what will actually be read */
        } else {
            if (ofd >= 0) {
                close(ofd);
                ofd = -1;
            }
            /* Indexed but its file is gone (removed by hand): it no longer exists. */
            rc = no_key(err);
        }
        if (dirfd >= 0) {
            close(dirfd);
        }
        if (bfd >= 0) {
            close(bfd);
        }
    }
    pthread_mutex_unlock(m);
    if (rc == CP_OK) {
        if (meta) {
            meta->size = r.size;
            meta->mtime_ms = r.mtime_ms;
            memcpy(meta->etag, r.etag, sizeof(meta->etag));
            cp_buf_reset(&meta->headers);
            cp_buf_append(&meta->headers, r.headers.p ? r.headers.p : "", r.headers.len);
        }
        if (fd) {
            *fd = ofd;
        }
    }
    obj_row_free(&r);
    return rc;
}

int cp_bucket_exists(cp_bucket_store *s, const char *bucket, cp_slice key, cp_err *err)
{
    int rc = cp_bucket_get(s, bucket, key, NULL, NULL, err);
    if (rc == CP_ENOTFOUND || rc == CP_BUCKET_ENOBUCKET) {
        return 0;
    }
    return rc < 0 ? rc : 1;
}

int cp_bucket_read(cp_bucket_store *s, const char *bucket, cp_slice key, cp_buf *out,
                   cp_bucket_obj *meta, cp_err *err)
{
    cp_bucket_obj tmp = CP_BUCKET_OBJ_INIT;
    int fd;
    int rc = cp_bucket_get(s, bucket, key, meta ? meta : &tmp, &fd, err);
    if (rc < 0) {
        cp_bucket_obj_free(&tmp);
        return rc;
    }
    uint64_t size = meta ? meta->size : tmp.size;
    cp_buf_reserve(out, (size_t) size);
    for (;;) {
        cp_buf_reserve(out, 65536);
        ssize_t n = read(fd, out->p + out->len, out->cap - out->len - 1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = sys_err(err, "cannot read the object");
            break;
        }
        if (n == 0) {
            break;
        }
        out->len += (size_t) n;
    }
    out->p[out->len] = 0;
    close(fd);
    cp_bucket_obj_free(&tmp);
    return rc;
}

/* Remove directories left empty by a delete, deepest first, stopping at the first that is
 * not empty. Caller holds the tree lock exclusively. */
static void prune_dirs(int bfd, cp_slice path)
{
    for (;;) {
        const char *slash = NULL;
        for (size_t i = path.len; i > 0; i--) {
            if (path.p[i - 1] == '/') {
                slash = path.p + i - 1;
                break;
            }
        }
        if (!slash) {
            return;
        }
        path = cp_slice_of(path.p, (size_t) (slash - path.p));
        int dirfd;
        char leaf[256];
        if (walk_stored(bfd, path, 0, &dirfd, leaf) < 0) {
            return;
        }
        int ok = unlinkat(dirfd, leaf, AT_REMOVEDIR) == 0;
        close(dirfd);
        if (!ok) {
            return;
        }
    }
}

int cp_bucket_delete_object(cp_bucket_store *s, const char *bucket, cp_slice key, cp_err *err)
{
    int rc = check_bucket_key(bucket, key, err);
    if (rc < 0) {
        return rc;
    }
    obj_row r = {0};
    int64_t pid = 0;
    pthread_mutex_t *m = stripe_of(s, bucket, key);
    pthread_mutex_lock(m);
    rc = lookup(s, bucket, key, &r, err);
    if (rc < 0) {
        goto out;
    }
    pthread_mutex_lock(&s->db_mu);
    sqlite3_stmt *st = q(s, Q_PEND_INS);
    sqlite3_bind_int(st, 1, OP_DEL);
    bind_str(st, 2, bucket);
    bind_slice(st, 3, key);
    bind_slice(st, 4, cp_buf_slice(&r.path));
    rc = db_run(s, st, err);
    pid = sqlite3_last_insert_rowid(s->db);
    pthread_mutex_unlock(&s->db_mu);
    if (rc < 0) {
        goto out;
    }
    int bfd = open_bucket_dir(s, bucket);
    if (bfd >= 0) {
        unlink_stored(bfd, cp_buf_slice(&r.path));
        pthread_rwlock_wrlock(&s->tree_mu);
        prune_dirs(bfd, cp_buf_slice(&r.path));
        pthread_rwlock_unlock(&s->tree_mu);
        close(bfd);
    }
    pthread_mutex_lock(&s->db_mu);
    rc = db_begin(s, err);
    if (rc == CP_OK) {
        st = q(s, Q_OBJ_DEL);
        bind_str(st, 1, bucket);
        bind_slice(st, 2, key);
        rc = db_run(s, st, err);
        if (rc == CP_OK) {
            st = q(s, Q_PEND_DEL);
            sqlite3_bind_int64(st, 1, pid);
            rc = db_run(s, st, err);
        }
        if (rc == CP_OK) {
            rc = db_commit(s, err);
        } else {
            db_rollback(s);
        }
    }
    pthread_mutex_unlock(&s->db_mu);
out:
    pthread_mutex_unlock(m);
    obj_row_free(&r);
    return rc;
}

int cp_bucket_copy(cp_bucket_store *s, const char *src_bucket, cp_slice src_key,
                   const char *dst_bucket, cp_slice dst_key, const cp_bucket_put_opts *opts,
                   cp_bucket_obj *out, cp_err *err)
{
    cp_bucket_obj src = CP_BUCKET_OBJ_INIT;
    int fd = -1;
    int rc = cp_bucket_get(s, src_bucket, src_key, &src, &fd, err);
    if (rc < 0) {
        cp_bucket_obj_free(&src);
        return rc;
    }
    cp_bucket_writer *w;
    rc = cp_bucket_writer_open(s, dst_bucket, dst_key, &w, err);
    if (rc == CP_OK) {
        char *buf = cp_malloc(1 << 16);
        for (;;) {
            ssize_t n = read(fd, buf, 1 << 16);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                rc = sys_err(err, "cannot read the source object");
                break;
            }
            if (n == 0 || (rc = cp_bucket_writer_write(w, buf, (size_t) n, err)) < 0) {
                break;
            }
        }
        cp_free(buf);
        if (rc < 0) {
            cp_bucket_writer_abort(w);
        } else {
            cp_bucket_put_opts o = {cp_buf_slice(&src.headers), NULL};
            if (opts) {
                o.headers = opts->headers;
            }
            rc = cp_bucket_writer_commit(w, &o, out, err);
        }
    }
    close(fd);
    cp_bucket_obj_free(&src);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Listing                                                                                     */

typedef struct list_ent {
    size_t off, len; /* key bytes in the collection buffer */
    int is_prefix;
    uint64_t size;
    int64_t mtime_ms;
    char etag[48];
} list_ent;

typedef struct list_acc {
    list_ent *v;
    size_t n, cap;
    cp_buf bytes;
} list_acc;

static void acc_add(list_acc *a, cp_slice key, int is_prefix, sqlite3_stmt *row)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = cp_realloc(a->v, a->cap * sizeof(*a->v));
    }
    list_ent *e = &a->v[a->n++];
    memset(e, 0, sizeof(*e));
    e->off = a->bytes.len;
    e->len = key.len;
    cp_buf_append(&a->bytes, key.p, key.len);
    e->is_prefix = is_prefix;
    if (!is_prefix) {
        e->size = (uint64_t) sqlite3_column_int64(row, 1);
        e->mtime_ms = sqlite3_column_int64(row, 2);
        snprintf(e->etag, sizeof(e->etag), "%s", (const char *) sqlite3_column_text(row, 3));
    }
}

static cp_slice slice_max(cp_slice a, cp_slice b)
{
    return cp_slice_cmp(a, b) >= 0 ? a : b;
}

/* The smallest string greater than every string starting with p, into out; 0 when there is
 * none (p is all 0xFF bytes). */
static int prefix_successor(cp_slice p, cp_buf *out)
{
    size_t n = p.len;
    while (n > 0 && (unsigned char) p.p[n - 1] == 0xFF) {
        n--;
    }
    if (n == 0) {
        return 0;
    }
    cp_buf_reset(out);
    cp_buf_append(out, p.p, n);
    out->p[n - 1] = (char) ((unsigned char) out->p[n - 1] + 1);
    return 1;
}

static int collect(cp_bucket_store *s, const char *bucket, const cp_bucket_list_req *rq,
                   list_acc *acc, cp_bucket_list_res *res, cp_err *err)
{
    cp_buf lo = CP_BUF_INIT, sa = CP_BUF_INIT;
    cp_slice bound = rq->prefix;
    if (rq->resume.len) {
        bound = slice_max(bound, rq->resume);
    }
    if (rq->start_after.len) {
        /* Strictly after X is "at least X followed by a NUL byte". */
        cp_buf_append(&sa, rq->start_after.p, rq->start_after.len);
        cp_buf_putc(&sa, 0);
        sa.len = rq->start_after.len + 1;
        bound = slice_max(bound, cp_buf_slice(&sa));
    }
    cp_buf_append(&lo, bound.p ? bound.p : "", bound.len);
    int rc = db_bucket_exists(s, bucket, NULL, err);
    if (rc <= 0) {
        rc = rc < 0 ? rc : no_bucket(err);
        goto out;
    }
    rc = CP_OK;
    if (rq->max_keys == 0) {
        goto out;
    }
    sqlite3_stmt *st = q(s, Q_OBJ_LIST);
    bind_str(st, 1, bucket);
    bind_slice(st, 2, cp_buf_slice(&lo));
    for (;;) {
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE) {
            break;
        }
        if (r != SQLITE_ROW) {
            rc = db_fail(s, r, err);
            break;
        }
        cp_slice key = col_slice(st, 0);
        if (key.len < rq->prefix.len ||
            (rq->prefix.len && memcmp(key.p, rq->prefix.p, rq->prefix.len) != 0)) {
            break;
        }
        if (rq->delimiter.len) {
            const char *d = memmem(key.p + rq->prefix.len, key.len - rq->prefix.len,
                                   rq->delimiter.p, rq->delimiter.len);
            if (d) {
                cp_slice cpfx = cp_slice_of(key.p, (size_t) (d - key.p) + rq->delimiter.len);
                if (acc->n == rq->max_keys) {
                    res->truncated = 1;
                    cp_buf_append(&res->next, cpfx.p, cpfx.len);
                    break;
                }
                acc_add(acc, cpfx, 1, st);
                /* Skip every key under this prefix with one seek. */
                if (!prefix_successor(cpfx, &lo)) {
                    break;
                }
                sqlite3_reset(st);
                bind_slice(st, 2, cp_buf_slice(&lo));
                continue;
            }
        }
        if (acc->n == rq->max_keys) {
            res->truncated = 1;
            cp_buf_append(&res->next, key.p, key.len);
            break;
        }
        acc_add(acc, key, 0, st);
    }
    sqlite3_reset(st);
out:
    cp_buf_free(&lo);
    cp_buf_free(&sa);
    return rc;
}

int cp_bucket_list(cp_bucket_store *s, const char *bucket, const cp_bucket_list_req *rq,
                   cp_bucket_entry_cb cb, void *ctx, cp_bucket_list_res *res, cp_err *err)
{
    res->count = 0;
    res->truncated = 0;
    cp_buf_reset(&res->next);
    cp_buf_reset(&res->last);
    if (!bucket_name_ok(bucket)) {
        return no_bucket(err);
    }
    list_acc acc = {0};
    pthread_mutex_lock(&s->db_mu);
    int rc = collect(s, bucket, rq, &acc, res, err);
    pthread_mutex_unlock(&s->db_mu);
    for (size_t i = 0; rc == CP_OK && i < acc.n; i++) {
        list_ent *e = &acc.v[i];
        cp_bucket_entry be = {cp_slice_of(acc.bytes.p + e->off, e->len), e->is_prefix, e->size,
                              e->mtime_ms, e->etag};
        rc = cb ? cb(ctx, &be) : CP_OK;
        res->count++;
        if (i + 1 == acc.n) {
            cp_buf_append(&res->last, be.key.p, be.key.len);
        }
    }
    cp_free(acc.v);
    cp_buf_free(&acc.bytes);
    return rc;
}

int cp_bucket_walk(cp_bucket_store *s, const char *bucket, cp_slice prefix, cp_bucket_entry_cb cb,
                   void *ctx, cp_err *err)
{
    cp_bucket_list_res res = CP_BUCKET_LIST_RES_INIT;
    cp_buf resume = CP_BUF_INIT;
    int rc;
    for (;;) {
        cp_bucket_list_req rq = {prefix, {NULL, 0}, {NULL, 0}, cp_buf_slice(&resume), LIST_PAGE};
        rc = cp_bucket_list(s, bucket, &rq, cb, ctx, &res, err);
        if (rc != CP_OK || !res.truncated) {
            break;
        }
        cp_buf_reset(&resume);
        cp_buf_append(&resume, res.next.p, res.next.len);
    }
    cp_buf_free(&resume);
    cp_bucket_list_res_free(&res);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Multipart uploads                                                                           */

int cp_bucket_mpu_create(cp_bucket_store *s, const char *bucket, cp_slice key, cp_slice headers,
                         char upload_id[CP_BUCKET_UPLOAD_ID_LEN + 1], cp_err *err)
{
    int rc = check_bucket_key(bucket, key, err);
    if (rc < 0) {
        return rc;
    }
    int bfd = open_bucket_dir(s, bucket);
    if (bfd < 0) {
        return errno == ENOENT ? no_bucket(err) : sys_err(err, "cannot open the bucket");
    }
    random_hex(upload_id, CP_BUCKET_UPLOAD_ID_LEN / 2);
    int up = upload_dir(bfd, upload_id, 1);
    if (up < 0) {
        rc = sys_err(err, "cannot create the upload's directory");
        close(bfd);
        return rc;
    }
    close(up);
    pthread_mutex_lock(&s->db_mu);
    rc = db_bucket_exists(s, bucket, NULL, err);
    if (rc > 0) {
        sqlite3_stmt *st = q(s, Q_UP_INS);
        bind_str(st, 1, upload_id);
        bind_str(st, 2, bucket);
        bind_slice(st, 3, key);
        sqlite3_bind_int64(st, 4, cp_clock_now_ms());
        bind_slice(st, 5, headers);
        rc = db_run(s, st, err);
    } else if (rc == 0) {
        rc = no_bucket(err);
    }
    pthread_mutex_unlock(&s->db_mu);
    if (rc < 0) {
        int upd = open_dir_at(bfd, UPLOADS_DIR);
        if (upd >= 0) {
            rm_tree(upd, upload_id);
            close(upd);
        }
    }
    close(bfd);
    return rc;
}

int cp_bucket_mpu_put_part(cp_bucket_store *s, const char *bucket, cp_slice key,
                           const char *upload_id, int part, cp_slice data,
                           const unsigned char *content_md5, char out_etag[48], cp_err *err)
{
    cp_bucket_writer *w;
    int rc = cp_bucket_writer_open_part(s, bucket, key, upload_id, part, &w, err);
    if (rc < 0) {
        return rc;
    }
    if (data.len && (rc = cp_bucket_writer_write(w, data.p, data.len, err)) < 0) {
        cp_bucket_writer_abort(w);
        return rc;
    }
    cp_bucket_obj o = CP_BUCKET_OBJ_INIT;
    cp_bucket_put_opts opts = {{NULL, 0}, content_md5};
    rc = cp_bucket_writer_commit(w, &opts, &o, err);
    if (rc == CP_OK && out_etag) {
        memcpy(out_etag, o.etag, sizeof(o.etag));
    }
    cp_bucket_obj_free(&o);
    return rc;
}

typedef struct part_vec {
    cp_bucket_part *v;
    size_t n, cap;
} part_vec;

/* Parts of an upload with number > after, ascending, at most max (0 = all) plus one more to
 * tell truncation. Caller holds db_mu. */
static int db_parts(cp_bucket_store *s, const char *id, int after, size_t max, part_vec *pv,
                    cp_err *err)
{
    sqlite3_stmt *st = q(s, Q_PART_LIST);
    bind_str(st, 1, id);
    sqlite3_bind_int(st, 2, after);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && (max == 0 || pv->n <= max)) {
        if (pv->n == pv->cap) {
            pv->cap = pv->cap ? pv->cap * 2 : 16;
            pv->v = cp_realloc(pv->v, pv->cap * sizeof(*pv->v));
        }
        cp_bucket_part *p = &pv->v[pv->n++];
        p->number = sqlite3_column_int(st, 0);
        p->size = (uint64_t) sqlite3_column_int64(st, 1);
        snprintf(p->etag, sizeof(p->etag), "%s", (const char *) sqlite3_column_text(st, 2));
        p->mtime_ms = sqlite3_column_int64(st, 3);
    }
    sqlite3_reset(st);
    return r == SQLITE_DONE || r == SQLITE_ROW ? CP_OK : db_fail(s, r, err);
}

static int copy_fd(int in, int out, uint64_t len)
{
    while (len > 0) {
        ssize_t n =
            copy_file_range(in, NULL, out, NULL, (size_t) (len > (1u << 30) ? 1u << 30 : len), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 &&
            (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
            /* No in-kernel copy here: plain read/write. */
            char buf[65536];
            while (len > 0) {
                ssize_t got = read(in, buf, sizeof(buf) < len ? sizeof(buf) : (size_t) len);
                if (got < 0 && errno == EINTR) {
                    continue;
                }
                if (got <= 0) {
                    return got < 0 ? -errno : CP_EIO;
                }
                int rc = cp_fs_write_all(out, buf, (size_t) got);
                if (rc < 0) {
                    return rc;
                }
                len -= (uint64_t) got;
            }
            return CP_OK;
        }
        if (n <= 0) {
            return n < 0 ? -errno : CP_EIO; /* the part file is shorter than recorded */
        }
        len -= (uint64_t) n;
    }
    return CP_OK;
}

static int hex_nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (char) (c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int cp_bucket_mpu_complete(cp_bucket_store *s, const char *bucket, cp_slice key,
                           const char *upload_id, const cp_bucket_part *parts, size_t n,
                           cp_bucket_obj *out, cp_err *err)
{
    int rc = check_bucket_key(bucket, key, err);
    if (rc < 0) {
        return rc;
    }
    if (n == 0) {
        return cp_err_set(err, CP_EINVAL, "You must specify at least one part");
    }
    for (size_t i = 1; i < n; i++) {
        if (parts[i].number <= parts[i - 1].number) {
            return cp_err_set(err, CP_BUCKET_EPARTORDER,
                              "The list of parts was not in ascending order. Parts must be "
                              "ordered by part number.");
        }
    }
    part_vec have = {0};
    cp_buf headers = CP_BUF_INIT;
    uint64_t *sizes = NULL;
    int bfd = -1, tmp_dirfd = -1, up = -1, tfd = -1;
    char tmpname[48] = "";
    EVP_MD_CTX *md = NULL;
    pthread_mutex_t *m = stripe_of(s, bucket, key);
    pthread_mutex_lock(m);
    pthread_mutex_lock(&s->db_mu);
    rc = db_upload_check(s, bucket, key, upload_id, &headers, err);
    if (rc == CP_OK) {
        rc = db_parts(s, upload_id, 0, 0, &have, err);
    }
    pthread_mutex_unlock(&s->db_mu);
    if (rc < 0) {
        goto out;
    }
    /* Match the client's list against what was uploaded: every part must exist with its
     * ETag (InvalidPart) before sizes are judged (EntityTooSmall), the order S3 checks in.
     * Both lists are ascending, so one merge pass finds each part. */
    uint64_t total = 0;
    sizes = cp_malloc(n * sizeof(*sizes));
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        while (j < have.n && have.v[j].number < parts[i].number) {
            j++;
        }
        if (j == have.n || have.v[j].number != parts[i].number ||
            strcasecmp(have.v[j].etag, parts[i].etag) != 0) {
            rc = cp_err_set(err, CP_BUCKET_EBADPART,
                            "One or more of the specified parts could not be found.  The part may "
                            "not have been uploaded, or the specified entity tag may not match the "
                            "part's entity tag. (part %d)",
                            parts[i].number);
            goto out;
        }
        sizes[i] = have.v[j].size;
        total += sizes[i];
    }
    for (size_t i = 0; i + 1 < n; i++) {
        if (sizes[i] < s->min_part) {
            rc = cp_err_set(err, CP_BUCKET_ETOOSMALL,
                            "Your proposed upload is smaller than the minimum allowed size "
                            "(part %d)",
                            parts[i].number);
            goto out;
        }
    }
    if (total > s->max_object * (uint64_t) CP_BUCKET_MAX_PARTS) {
        rc = cp_err_set(err, CP_ETOOBIG, "Your proposed upload exceeds the maximum allowed size");
        goto out;
    }
    bfd = open_bucket_dir(s, bucket);
    tmp_dirfd = bfd >= 0 ? open_tmp_dir(bfd) : -1;
    up = bfd >= 0 ? upload_dir(bfd, upload_id, 0) : -1;
    if (up < 0 || tmp_dirfd < 0 || (tfd = create_tmp(tmp_dirfd, tmpname)) < 0) {
        rc = sys_err(err, "cannot prepare the completed object");
        goto out;
    }
    /* ETag: MD5 over the parts' binary MD5s, then "-<count>" (what S3 and its clients use to
     * recognise a multipart object). */
    md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_md5(), NULL);
    for (size_t i = 0; i < n; i++) {
        unsigned char raw[16];
        for (int k = 0; k < 16; k++) {
            int hi = hex_nibble(parts[i].etag[2 * k]), lo = hex_nibble(parts[i].etag[2 * k + 1]);
            raw[k] = (unsigned char) ((hi < 0 ? 0 : hi) << 4 | (lo < 0 ? 0 : lo));
        }
        EVP_DigestUpdate(md, raw, 16);
        char pname[16];
        snprintf(pname, sizeof(pname), "%05d", parts[i].number);
        int pfd = openat(up, pname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (pfd < 0) {
            rc = sys_err(err, "a part's file is missing");
            goto out;
        }
        rc = copy_fd(pfd, tfd, sizes[i]);
        close(pfd);
        if (rc < 0) {
            rc = cp_err_set(err, rc, "cannot assemble the parts: %s", cp_err_name(rc));
            goto out;
        }
    }
    struct stat st;
    if (fsync(tfd) < 0 || fstat(tfd, &st) < 0) {
        rc = sys_err(err, "cannot sync the completed object");
        goto out;
    }
    char etag[48];
    unsigned char raw[16];
    md5_hex_final(md, etag, raw);
    snprintf(etag + 32, sizeof(etag) - 32, "-%u", (unsigned) n); /* n <= 10000 */
    staged sg = {tmp_dirfd, tmpname, (uint64_t) st.st_ino, total, etag, cp_buf_slice(&headers),
                 upload_id};
    rc = install_locked(s, bucket, bfd, key, &sg, out, err);
    if (rc == CP_OK) {
        tmpname[0] = 0;
        int upd = open_dir_at(bfd, UPLOADS_DIR);
        if (upd >= 0) {
            rm_tree(upd, upload_id);
            close(upd);
        }
    }
out:
    pthread_mutex_unlock(m);
    cp_free(sizes);
    if (tfd >= 0) {
        close(tfd);
    }
    if (tmpname[0] && tmp_dirfd >= 0) {
        unlinkat(tmp_dirfd, tmpname, 0);
    }
    if (up >= 0) {
        close(up);
    }
    if (tmp_dirfd >= 0) {
        close(tmp_dirfd);
    }
    if (bfd >= 0) {
        close(bfd);
    }
    EVP_MD_CTX_free(md);
    cp_free(have.v);
    cp_buf_free(&headers);
    return rc;
}

int cp_bucket_mpu_abort(cp_bucket_store *s, const char *bucket, cp_slice key, const char *upload_id,
                        cp_err *err)
{
    int rc = check_bucket_key(bucket, key, err);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_t *m = stripe_of(s, bucket, key);
    pthread_mutex_lock(m);
    pthread_mutex_lock(&s->db_mu);
    rc = db_upload_check(s, bucket, key, upload_id, NULL, err);
    if (rc == CP_OK && (rc = db_begin(s, err)) == CP_OK) {
        sqlite3_stmt *st = q(s, Q_PART_DEL);
        bind_str(st, 1, upload_id);
        rc = db_run(s, st, err);
        if (rc == CP_OK) {
            st = q(s, Q_UP_DEL);
            bind_str(st, 1, upload_id);
            rc = db_run(s, st, err);
        }
        rc = rc == CP_OK ? db_commit(s, err) : (db_rollback(s), rc);
    }
    pthread_mutex_unlock(&s->db_mu);
    if (rc == CP_OK) {
        int bfd = open_bucket_dir(s, bucket);
        int upd = bfd >= 0 ? open_dir_at(bfd, UPLOADS_DIR) : -1;
        if (upd >= 0) {
            rm_tree(upd, upload_id);
            close(upd);
        }
        if (bfd >= 0) {
            close(bfd);
        }
    }
    pthread_mutex_unlock(m);
    return rc;
}

int cp_bucket_mpu_list_parts(cp_bucket_store *s, const char *bucket, cp_slice key,
                             const char *upload_id, int after, size_t max, cp_bucket_part_cb cb,
                             void *ctx, int *truncated, cp_err *err)
{
    int rc = check_bucket_key(bucket, key, err);
    if (rc < 0) {
        return rc;
    }
    part_vec pv = {0};
    pthread_mutex_lock(&s->db_mu);
    rc = db_upload_check(s, bucket, key, upload_id, NULL, err);
    if (rc == CP_OK) {
        rc = db_parts(s, upload_id, after, max, &pv, err);
    }
    pthread_mutex_unlock(&s->db_mu);
    size_t n = pv.n;
    if (truncated) {
        *truncated = max && n > max;
    }
    if (max && n > max) {
        n = max;
    }
    for (size_t i = 0; rc == CP_OK && cb && i < n; i++) {
        rc = cb(ctx, &pv.v[i]);
    }
    cp_free(pv.v);
    return rc;
}
