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
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/mem.h"
#include "objects/bucket_int.h"
#include "objects/keypath.h"

#define DEFAULT_MAX_OBJECT (5ull << 30)
#define DEFAULT_MIN_PART   (5ull << 20)

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

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                               */

int cp__bucket_sys_err(cp_err *err, const char *what)
{
    int e = errno ? errno : EIO;
    return cp_err_set(err, -e, "%s: %s", what, strerror(e));
}

void cp__bucket_random_hex(char *out, size_t nbytes)
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

pthread_mutex_t *cp__bucket_stripe_of(cp_bucket_store *s, const char *bucket, cp_slice key)
{
    uint64_t h = cp_fnv1a64(bucket, strlen(bucket) + 1);
    h ^= cp_fnv1a64(key.p, key.len);
    return &s->stripes[h % NSTRIPES];
}

void cp__bucket_md5_hex_final(EVP_MD_CTX *ctx, char out[48], unsigned char raw[16])
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

sqlite3_stmt *cp__bucket_stmt(cp_bucket_store *s, int id)
{
    sqlite3_stmt *st = s->q[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

void cp__bucket_bind_slice(sqlite3_stmt *st, int i, cp_slice v)
{
    /* A NULL pointer would bind SQL NULL; empty values are empty blobs. */
    sqlite3_bind_blob(st, i, v.p ? v.p : "", (int) v.len, SQLITE_TRANSIENT);
}

void cp__bucket_bind_str(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

cp_slice cp__bucket_col_slice(sqlite3_stmt *st, int i)
{
    const void *p = sqlite3_column_blob(st, i);
    int n = sqlite3_column_bytes(st, i);
    return cp_slice_of(p ? p : "", (size_t) n);
}

int cp__bucket_db_fail(cp_bucket_store *s, int rc, cp_err *err)
{
    int code = (rc & 0xff) == SQLITE_FULL ? -ENOSPC : CP_EIO;
    return cp_err_set(err, code, "object index: %s", sqlite3_errmsg(s->db));
}

/* Step a statement that returns no rows. */
int cp__bucket_db_run(cp_bucket_store *s, sqlite3_stmt *st, cp_err *err)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        return cp__bucket_db_fail(s, rc, err);
    }
    return CP_OK;
}

int cp__bucket_db_begin(cp_bucket_store *s, cp_err *err)
{
    return cp__bucket_db_run(s, cp__bucket_stmt(s, Q_BEGIN), err);
}

int cp__bucket_db_commit(cp_bucket_store *s, cp_err *err)
{
    int rc = cp__bucket_db_run(s, cp__bucket_stmt(s, Q_COMMIT), err);
    if (rc < 0) {
        sqlite3_step(cp__bucket_stmt(s, Q_ROLLBACK));
        sqlite3_reset(s->q[Q_ROLLBACK]);
    }
    return rc;
}

void cp__bucket_db_rollback(cp_bucket_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_step(cp__bucket_stmt(s, Q_ROLLBACK));
        sqlite3_reset(s->q[Q_ROLLBACK]);
    }
}

/* 1 when the bucket row exists, 0 when not, < 0 on index errors. */
int cp__bucket_db_exists(cp_bucket_store *s, const char *bucket, cp_bucket_info *out, cp_err *err)
{
    sqlite3_stmt *st = cp__bucket_stmt(s, Q_BUCKET_GET);
    cp__bucket_bind_str(st, 1, bucket);
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
    return rc == SQLITE_DONE ? 0 : cp__bucket_db_fail(s, rc, err);
}
void cp__bucket_obj_row_free(obj_row *r)
{
    cp_buf_free(&r->path);
    cp_buf_free(&r->headers);
}

/* CP_OK with *r filled, CP_ENOTFOUND, or an index error. */
int cp__bucket_db_obj_get(cp_bucket_store *s, const char *bucket, cp_slice key, obj_row *r,
                          cp_err *err)
{
    sqlite3_stmt *st = cp__bucket_stmt(s, Q_OBJ_GET);
    cp__bucket_bind_str(st, 1, bucket);
    cp__bucket_bind_slice(st, 2, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        cp_buf_reset(&r->path);
        cp_slice p = cp__bucket_col_slice(st, 0);
        cp_buf_append(&r->path, p.p, p.len);
        r->size = (uint64_t) sqlite3_column_int64(st, 1);
        r->mtime_ms = sqlite3_column_int64(st, 2);
        snprintf(r->etag, sizeof(r->etag), "%s", (const char *) sqlite3_column_text(st, 3));
        cp_buf_reset(&r->headers);
        cp_slice h = cp__bucket_col_slice(st, 4);
        cp_buf_append(&r->headers, h.p, h.len);
        r->ino = (uint64_t) sqlite3_column_int64(st, 5);
        sqlite3_reset(st);
        return CP_OK;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? CP_ENOTFOUND : cp__bucket_db_fail(s, rc, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Directory walking. Every step is an openat() with O_NOFOLLOW from the bucket directory, so  */
/* a symlink planted inside a bucket can never lead a write or read outside it.               */

int cp__bucket_open_dir_at(int dirfd, const char *name)
{
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Descend from *cur into directory `name` (creating it when missing and `create`). The old
 * *cur is closed unless it is `keep`. CP_EEXIST when `name` is something other than a
 * directory. */
static int descend(int *cur, int keep, const char *name, int create)
{
    int fd = cp__bucket_open_dir_at(*cur, name);
    if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(*cur, name, 0755) == 0) {
            /* The new entry must survive a crash before anything is renamed below it. */
            if (fsync(*cur) < 0) {
                return -errno;
            }
        } else if (errno != EEXIST) {
            return -errno;
        }
        fd = cp__bucket_open_dir_at(*cur, name);
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
int cp__bucket_walk_stored(int base_fd, cp_slice path, int create, int *dirfd, char leaf[256])
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
int cp__bucket_rm_tree(int dirfd, const char *name)
{
    int fd = cp__bucket_open_dir_at(dirfd, name);
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
        int r = is_dir ? cp__bucket_rm_tree(fd, de->d_name)
                       : (unlinkat(fd, de->d_name, 0) == 0 ? CP_OK : -errno);
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
    int fd = cp__bucket_open_dir_at(dirfd, name);
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
            cp__bucket_rm_tree(fd, de->d_name);
        }
    }
    closedir(d);
}

int cp__bucket_open_dir(cp_bucket_store *s, const char *bucket)
{
    return cp__bucket_open_dir_at(s->root_fd, bucket);
}

/* mkdir -p of one level; EEXIST is fine. */
int cp__bucket_ensure_dir(int dirfd, const char *name)
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
    sqlite3_stmt *st = cp__bucket_stmt(s, Q_UP_GET);
    cp__bucket_bind_str(st, 1, name);
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
    cp_slice key = cp__bucket_col_slice(row, 3);
    cp_slice path = cp__bucket_col_slice(row, 4);
    int bfd = bucket ? cp__bucket_open_dir(s, bucket) : -1;
    int dirfd = -1;
    char leaf[256];
    int have = bfd >= 0 && cp__bucket_walk_stored(bfd, path, 0, &dirfd, leaf) == CP_OK;
    if (op == OP_PUT) {
        struct stat st;
        if (have && fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            (uint64_t) st.st_ino == (uint64_t) sqlite3_column_int64(row, 9)) {
            sqlite3_stmt *put = cp__bucket_stmt(s, Q_OBJ_PUT);
            cp__bucket_bind_str(put, 1, bucket);
            cp__bucket_bind_slice(put, 2, key);
            cp__bucket_bind_slice(put, 3, path);
            sqlite3_bind_int64(put, 4, sqlite3_column_int64(row, 5));
            sqlite3_bind_int64(put, 5, sqlite3_column_int64(row, 6));
            cp__bucket_bind_str(put, 6, (const char *) sqlite3_column_text(row, 7));
            cp__bucket_bind_slice(put, 7, cp__bucket_col_slice(row, 8));
            sqlite3_bind_int64(put, 8, sqlite3_column_int64(row, 9));
            sqlite3_step(put);
            sqlite3_reset(put);
            const char *upload = (const char *) sqlite3_column_text(row, 10);
            if (upload) {
                sqlite3_stmt *d = cp__bucket_stmt(s, Q_UP_DEL);
                cp__bucket_bind_str(d, 1, upload);
                sqlite3_step(d);
                sqlite3_reset(d);
                d = cp__bucket_stmt(s, Q_PART_DEL);
                cp__bucket_bind_str(d, 1, upload);
                sqlite3_step(d);
                sqlite3_reset(d);
            }
        }
    } else {
        if (have) {
            unlinkat(dirfd, leaf, 0);
            fsync(dirfd);
        }
        sqlite3_stmt *del = cp__bucket_stmt(s, Q_OBJ_DEL);
        cp__bucket_bind_str(del, 1, bucket);
        cp__bucket_bind_slice(del, 2, key);
        sqlite3_step(del);
        sqlite3_reset(del);
    }
    sqlite3_stmt *pd = cp__bucket_stmt(s, Q_PEND_DEL);
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
    int rc = cp__bucket_db_begin(s, err);
    if (rc < 0) {
        return rc;
    }
    /* One intent at a time: resolve the first row (which deletes it), then query again, so
     * no cursor walks a table that is being changed under it. */
    for (;;) {
        sqlite3_stmt *st = cp__bucket_stmt(s, Q_PEND_ALL);
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE) {
            sqlite3_reset(st);
            break;
        }
        if (r != SQLITE_ROW) {
            rc = cp__bucket_db_fail(s, r, err);
            cp__bucket_db_rollback(s);
            return rc;
        }
        resolve_pending(s, st);
        sqlite3_reset(st);
    }
    if ((rc = cp__bucket_db_commit(s, err)) < 0) {
        return rc;
    }
    /* Buckets: their directories must exist; staging is emptied (a temp file there is a
     * write that never committed); upload directories without an upload row are dropped. */
    sqlite3_stmt *all = cp__bucket_stmt(s, Q_BUCKET_ALL);
    cp_buf names = CP_BUF_INIT;
    while (sqlite3_step(all) == SQLITE_ROW) {
        cp_buf_puts(&names, (const char *) sqlite3_column_text(all, 0));
        cp_buf_putc(&names, 0);
    }
    sqlite3_reset(all);
    for (size_t off = 0; off < names.len; off += strlen(names.p + off) + 1) {
        const char *b = names.p + off;
        if (cp__bucket_ensure_dir(s->root_fd, b) < 0) {
            continue;
        }
        int bfd = cp__bucket_open_dir(s, b);
        if (bfd < 0) {
            continue;
        }
        cp__bucket_ensure_dir(bfd, TMP_DIR);
        cp__bucket_ensure_dir(bfd, UPLOADS_DIR);
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
        return cp__bucket_sys_err(err, "cannot create the data directory");
    }
    int data_fd = open(cfg->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (data_fd < 0) {
        return cp__bucket_sys_err(err, "cannot open the data directory");
    }
    int rc = cp__bucket_ensure_dir(data_fd, "buckets");
    int root_fd = rc < 0 ? -1 : cp__bucket_open_dir_at(data_fd, "buckets");
    close(data_fd);
    if (root_fd < 0) {
        return cp__bucket_sys_err(err, "cannot open <data>/buckets");
    }
    cp_bucket_store *s = cp_calloc(1, sizeof(*s));
    s->root_fd = root_fd;
    s->lock_fd = openat(root_fd, ".cp-lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        rc = cp__bucket_sys_err(err, "cannot open the bucket lock file");
        goto fail_fds;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK
                 ? cp_err_set(err, CP_EINUSE, "the bucket directory is in use by another process")
                 : cp__bucket_sys_err(err, "cannot lock the bucket directory");
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
int cp__bucket_name_ok(const char *bucket)
{
    return bucket && cp_bucket_name_check(cp_slice_str(bucket), NULL) == CP_OK;
}

int cp__bucket_no_bucket(cp_err *err)
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
    rc = cp__bucket_db_exists(s, name, NULL, err);
    pthread_mutex_unlock(&s->db_mu);
    if (rc > 0) {
        rc = cp_err_set(err, CP_EEXIST, "The bucket already exists");
        goto out;
    }
    if (rc < 0) {
        goto out;
    }
    if ((rc = cp__bucket_ensure_dir(s->root_fd, name)) < 0) {
        rc = cp_err_set(err, rc, "cannot create the bucket directory: %s", strerror(-rc));
        goto out;
    }
    int bfd = cp__bucket_open_dir(s, name);
    if (bfd < 0) {
        rc = cp__bucket_sys_err(err, "cannot open the bucket directory");
        goto out;
    }
    rc = cp__bucket_ensure_dir(bfd, TMP_DIR);
    if (rc == CP_OK) {
        rc = cp__bucket_ensure_dir(bfd, UPLOADS_DIR);
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
    sqlite3_stmt *st = cp__bucket_stmt(s, Q_BUCKET_INS);
    cp__bucket_bind_str(st, 1, name);
    cp__bucket_bind_str(st, 2, region);
    sqlite3_bind_int64(st, 3, cp_clock_now_ms());
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    if (r == SQLITE_CONSTRAINT || (r & 0xff) == SQLITE_CONSTRAINT) {
        rc = cp_err_set(err, CP_EEXIST, "The bucket already exists");
    } else if (r != SQLITE_DONE) {
        rc = cp__bucket_db_fail(s, r, err);
    }
    pthread_mutex_unlock(&s->db_mu);
out:
    pthread_rwlock_unlock(&s->tree_mu);
    return rc;
}

int cp_bucket_info_get(cp_bucket_store *s, const char *name, cp_bucket_info *out, cp_err *err)
{
    if (!cp__bucket_name_ok(name)) {
        return cp__bucket_no_bucket(err);
    }
    pthread_mutex_lock(&s->db_mu);
    int rc = cp__bucket_db_exists(s, name, out, err);
    pthread_mutex_unlock(&s->db_mu);
    return rc < 0 ? rc : rc == 0 ? cp__bucket_no_bucket(err) : CP_OK;
}

int cp_bucket_list_buckets(cp_bucket_store *s, cp_bucket_each_cb cb, void *ctx, cp_err *err)
{
    cp_bucket_info *v = NULL;
    size_t n = 0, cap = 0;
    pthread_mutex_lock(&s->db_mu);
    sqlite3_stmt *st = cp__bucket_stmt(s, Q_BUCKET_ALL);
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
    int rc = r == SQLITE_DONE ? CP_OK : cp__bucket_db_fail(s, r, err);
    pthread_mutex_unlock(&s->db_mu);
    for (size_t i = 0; rc == CP_OK && i < n; i++) {
        rc = cb(ctx, &v[i]);
    }
    cp_free(v);
    return rc;
}

int cp_bucket_delete(cp_bucket_store *s, const char *name, cp_err *err)
{
    if (!cp__bucket_name_ok(name)) {
        return cp__bucket_no_bucket(err);
    }
    pthread_rwlock_wrlock(&s->tree_mu);
    pthread_mutex_lock(&s->db_mu);
    int rc = cp__bucket_db_begin(s, err);
    if (rc < 0) {
        goto unlock;
    }
    rc = cp__bucket_db_exists(s, name, NULL, err);
    if (rc <= 0) {
        rc = rc < 0 ? rc : cp__bucket_no_bucket(err);
        goto rollback;
    }
    sqlite3_stmt *st = cp__bucket_stmt(s, Q_BUCKET_USED);
    cp__bucket_bind_str(st, 1, name);
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    if (r == SQLITE_ROW) {
        rc = cp_err_set(err, CP_BUCKET_ENOTEMPTY, "The bucket you tried to delete is not empty");
        goto rollback;
    }
    /* In-progress multipart uploads go with the bucket. */
    st = cp__bucket_stmt(s, Q_PART_BUCKET_DEL);
    cp__bucket_bind_str(st, 1, name);
    if ((rc = cp__bucket_db_run(s, st, err)) < 0) {
        goto rollback;
    }
    st = cp__bucket_stmt(s, Q_UP_BUCKET_DEL);
    cp__bucket_bind_str(st, 1, name);
    if ((rc = cp__bucket_db_run(s, st, err)) < 0) {
        goto rollback;
    }
    st = cp__bucket_stmt(s, Q_BUCKET_DEL);
    cp__bucket_bind_str(st, 1, name);
    if ((rc = cp__bucket_db_run(s, st, err)) < 0) {
        goto rollback;
    }
    rc = cp__bucket_db_commit(s, err);
    pthread_mutex_unlock(&s->db_mu);
    if (rc == CP_OK) {
        /* The row is gone, so the bucket is gone; the directory is moved aside in one step
         * and removed at leisure (or by the next open after a crash). */
        char trash[64];
        memcpy(trash, TRASH_PREFIX, strlen(TRASH_PREFIX));
        cp__bucket_random_hex(trash + strlen(TRASH_PREFIX), 8);
        if (renameat(s->root_fd, name, s->root_fd, trash) == 0) {
            fsync(s->root_fd);
            cp__bucket_rm_tree(s->root_fd, trash);
        } else {
            cp__bucket_rm_tree(s->root_fd, name);
        }
    }
    pthread_rwlock_unlock(&s->tree_mu);
    return rc;
rollback:
    cp__bucket_db_rollback(s);
unlock:
    pthread_mutex_unlock(&s->db_mu);
    pthread_rwlock_unlock(&s->tree_mu);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Installing a staged file under a key: the intent protocol of bucket.h                       */

static int intent_put(cp_bucket_store *s, const char *bucket, cp_slice key, cp_slice path,
                      const staged *sg, int64_t mtime, int64_t *pid, cp_err *err)
{
    int rc = cp__bucket_db_begin(s, err);
    if (rc < 0) {
        return rc;
    }
    rc = cp__bucket_db_exists(s, bucket, NULL, err);
    if (rc <= 0) {
        cp__bucket_db_rollback(s);
        return rc < 0 ? rc : cp__bucket_no_bucket(err);
    }
    sqlite3_stmt *st = cp__bucket_stmt(s, Q_PEND_INS);
    sqlite3_bind_int(st, 1, OP_PUT);
    cp__bucket_bind_str(st, 2, bucket);
    cp__bucket_bind_slice(st, 3, key);
    cp__bucket_bind_slice(st, 4, path);
    sqlite3_bind_int64(st, 5, (int64_t) sg->size);
    sqlite3_bind_int64(st, 6, mtime);
    cp__bucket_bind_str(st, 7, sg->etag);
    cp__bucket_bind_slice(st, 8, sg->headers);
    sqlite3_bind_int64(st, 9, (int64_t) sg->ino);
    if (sg->upload_id) {
        cp__bucket_bind_str(st, 10, sg->upload_id);
    }
    if ((rc = cp__bucket_db_run(s, st, err)) < 0) {
        cp__bucket_db_rollback(s);
        return rc;
    }
    *pid = sqlite3_last_insert_rowid(s->db);
    return cp__bucket_db_commit(s, err);
}

static void intent_drop(cp_bucket_store *s, int64_t pid)
{
    pthread_mutex_lock(&s->db_mu);
    sqlite3_stmt *st = cp__bucket_stmt(s, Q_PEND_DEL);
    sqlite3_bind_int64(st, 1, pid);
    sqlite3_step(st);
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->db_mu);
}

/* Remove the file at a stored path (best effort). */
void cp__bucket_unlink_stored(int bfd, cp_slice path)
{
    int dirfd;
    char leaf[256];
    if (cp__bucket_walk_stored(bfd, path, 0, &dirfd, leaf) == CP_OK) {
        unlinkat(dirfd, leaf, 0);
        fsync(dirfd);
        close(dirfd);
    }
}

/* Make the staged file the object `key`. Caller holds the key's stripe. */
int cp__bucket_install_locked(cp_bucket_store *s, const char *bucket, int bfd, cp_slice key,
                              const staged *sg, cp_bucket_obj *out, cp_err *err)
{
    obj_row old = {0};
    cp_buf path = CP_BUF_INIT;
    int have_old = 0, dirfd = -1, rc;
    int64_t pid = 0, mtime = cp_clock_now_ms();
    char leaf[256];

    pthread_mutex_lock(&s->db_mu);
    rc = cp__bucket_db_exists(s, bucket, NULL, err);
    if (rc > 0) {
        rc = cp__bucket_db_obj_get(s, bucket, key, &old, err);
        have_old = rc == CP_OK;
        rc = rc == CP_ENOTFOUND ? CP_OK : rc;
    } else if (rc == 0) {
        rc = cp__bucket_no_bucket(err);
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
            rc = cp__bucket_walk_stored(bfd, cp_buf_slice(&old.path), 1, &dirfd, leaf);
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
            sqlite3_stmt *st = cp__bucket_stmt(s, Q_PEND_PATH);
            sqlite3_bind_int64(st, 1, pid);
            cp__bucket_bind_slice(st, 2, cp_buf_slice(&path));
            rc = cp__bucket_db_run(s, st, err);
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
        rc = cp__bucket_sys_err(err, "cannot sync the object's directory");
        close(dirfd);
        goto out;
    }
    close(dirfd);
    if (have_old && !cp_slice_eq(cp_buf_slice(&old.path), cp_buf_slice(&path))) {
        cp__bucket_unlink_stored(bfd, cp_buf_slice(&old.path));
    }

    pthread_mutex_lock(&s->db_mu);
    rc = cp__bucket_db_begin(s, err);
    if (rc == CP_OK) {
        sqlite3_stmt *st = cp__bucket_stmt(s, Q_OBJ_PUT);
        cp__bucket_bind_str(st, 1, bucket);
        cp__bucket_bind_slice(st, 2, key);
        cp__bucket_bind_slice(st, 3, cp_buf_slice(&path));
        sqlite3_bind_int64(st, 4, (int64_t) sg->size);
        sqlite3_bind_int64(st, 5, mtime);
        cp__bucket_bind_str(st, 6, sg->etag);
        cp__bucket_bind_slice(st, 7, sg->headers);
        sqlite3_bind_int64(st, 8, (int64_t) sg->ino);
        rc = cp__bucket_db_run(s, st, err);
        if (rc == CP_OK) {
            st = cp__bucket_stmt(s, Q_PEND_DEL);
            sqlite3_bind_int64(st, 1, pid);
            rc = cp__bucket_db_run(s, st, err);
        }
        if (rc == CP_OK && sg->upload_id) {
            st = cp__bucket_stmt(s, Q_PART_DEL);
            cp__bucket_bind_str(st, 1, sg->upload_id);
            rc = cp__bucket_db_run(s, st, err);
            if (rc == CP_OK) {
                st = cp__bucket_stmt(s, Q_UP_DEL);
                cp__bucket_bind_str(st, 1, sg->upload_id);
                rc = cp__bucket_db_run(s, st, err);
            }
        }
        if (rc == CP_OK) {
            rc = cp__bucket_db_commit(s, err);
        } else {
            cp__bucket_db_rollback(s);
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
    cp__bucket_obj_row_free(&old);
    cp_buf_free(&path);
    return rc;
}
