/* SPDX-License-Identifier: MIT */
/*
 * The bucket store's object side: streaming writers (objects and multipart parts), reads,
 * deletes, copies and listing. Locking and the intent protocol are described in bucket.c
 * and bucket.h; the helpers shared with them are in bucket_int.h.
 */
#include "objects/bucket.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/fs.h"
#include "core/mem.h"
#include "objects/bucket_int.h"
#include "objects/keypath.h"

#define LIST_PAGE 1000

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
int cp__bucket_open_tmp_dir(int bfd)
{
    int fd = cp__bucket_open_dir_at(bfd, TMP_DIR);
    if (fd < 0 && errno == ENOENT && cp__bucket_ensure_dir(bfd, TMP_DIR) == CP_OK) {
        fd = cp__bucket_open_dir_at(bfd, TMP_DIR);
    }
    return fd;
}

/* A new staging file in the bucket's .cp-tmp. */
int cp__bucket_create_tmp(int tmp_dirfd, char name[48])
{
    for (int i = 0; i < 8; i++) {
        cp__bucket_random_hex(name, 12);
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
    if (!cp__bucket_name_ok(bucket)) {
        return cp__bucket_no_bucket(err);
    }
    int rc = cp_keypath_check(key, err);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&s->db_mu);
    rc = cp__bucket_db_exists(s, bucket, NULL, err);
    pthread_mutex_unlock(&s->db_mu);
    if (rc <= 0) {
        return rc < 0 ? rc : cp__bucket_no_bucket(err);
    }
    cp_bucket_writer *w = cp_calloc(1, sizeof(*w));
    w->s = s;
    w->bucket_fd = w->tmp_dirfd = w->fd = -1;
    snprintf(w->bucket, sizeof(w->bucket), "%s", bucket);
    cp_buf_append(&w->key, key.p, key.len);
    w->bucket_fd = cp__bucket_open_dir(s, bucket);
    if (w->bucket_fd < 0) {
        rc = errno == ENOENT ? cp__bucket_no_bucket(err)
                             : cp__bucket_sys_err(err, "cannot open the bucket directory");
        goto fail;
    }
    w->tmp_dirfd = cp__bucket_open_tmp_dir(w->bucket_fd);
    if (w->tmp_dirfd < 0) {
        rc = cp__bucket_sys_err(err, "cannot open the bucket's staging directory");
        goto fail;
    }
    w->fd = cp__bucket_create_tmp(w->tmp_dirfd, w->tmpname);
    if (w->fd < 0) {
        w->tmpname[0] = 0;
        rc = cp__bucket_sys_err(err, "cannot create a staging file");
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
int cp__bucket_db_upload_check(cp_bucket_store *s, const char *bucket, cp_slice key, const char *id,
                               cp_buf *headers, cp_err *err)
{
    if (!upload_id_ok(id)) {
        return no_upload(err);
    }
    sqlite3_stmt *st = cp__bucket_stmt(s, Q_UP_GET);
    cp__bucket_bind_str(st, 1, id);
    int r = sqlite3_step(st);
    int rc;
    if (r == SQLITE_ROW) {
        const char *b = (const char *) sqlite3_column_text(st, 0);
        cp_slice k = cp__bucket_col_slice(st, 1);
        rc = strcmp(b, bucket) == 0 && cp_slice_eq(k, key) ? CP_OK : no_upload(err);
        if (rc == CP_OK && headers) {
            cp_slice h = cp__bucket_col_slice(st, 2);
            cp_buf_reset(headers);
            cp_buf_append(headers, h.p, h.len);
        }
    } else {
        rc = r == SQLITE_DONE ? no_upload(err) : cp__bucket_db_fail(s, r, err);
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
    rc = cp__bucket_db_upload_check(s, bucket, key, upload_id, NULL, err);
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

int cp__bucket_upload_dir(int bfd, const char *id, int create)
{
    int up = cp__bucket_open_dir_at(bfd, UPLOADS_DIR);
    if (up < 0 && errno == ENOENT && create && cp__bucket_ensure_dir(bfd, UPLOADS_DIR) == CP_OK) {
        up = cp__bucket_open_dir_at(bfd, UPLOADS_DIR);
    }
    if (up < 0) {
        return -1;
    }
    int fd = cp__bucket_open_dir_at(up, id);
    if (fd < 0 && errno == ENOENT && create && cp__bucket_ensure_dir(up, id) == CP_OK) {
        fsync(up);
        fd = cp__bucket_open_dir_at(up, id);
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
    pthread_mutex_t *m = cp__bucket_stripe_of(s, w->bucket, key);
    pthread_mutex_lock(m);
    pthread_mutex_lock(&s->db_mu);
    int rc = cp__bucket_db_upload_check(s, w->bucket, key, w->upload_id, NULL, err);
    pthread_mutex_unlock(&s->db_mu);
    int up = -1;
    if (rc == CP_OK) {
        up = cp__bucket_upload_dir(w->bucket_fd, w->upload_id, 1);
        if (up < 0) {
            rc = cp__bucket_sys_err(err, "cannot open the upload's directory");
        }
    }
    if (rc == CP_OK) {
        char pname[16];
        snprintf(pname, sizeof(pname), "%05d", w->part);
        if (renameat(w->tmp_dirfd, w->tmpname, up, pname) < 0 || fsync(up) < 0) {
            rc = cp__bucket_sys_err(err, "cannot store the part");
        }
    }
    int64_t mtime = cp_clock_now_ms();
    if (rc == CP_OK) {
        pthread_mutex_lock(&s->db_mu);
        sqlite3_stmt *st = cp__bucket_stmt(s, Q_PART_PUT);
        cp__bucket_bind_str(st, 1, w->upload_id);
        sqlite3_bind_int(st, 2, w->part);
        sqlite3_bind_int64(st, 3, (int64_t) w->size);
        cp__bucket_bind_str(st, 4, etag);
        sqlite3_bind_int64(st, 5, mtime);
        rc = cp__bucket_db_run(s, st, err);
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
        rc = cp__bucket_sys_err(err, "cannot sync the object");
        writer_free(w, 1);
        return rc;
    }
    close(w->fd);
    w->fd = -1;
    char etag[48];
    unsigned char raw[16];
    cp__bucket_md5_hex_final(w->md5, etag, raw);
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
        pthread_mutex_t *m = cp__bucket_stripe_of(w->s, w->bucket, key);
        pthread_mutex_lock(m);
        rc = cp__bucket_install_locked(w->s, w->bucket, w->bucket_fd, key, &sg, out, err);
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

int cp__bucket_check_key(const char *bucket, cp_slice key, cp_err *err)
{
    if (!cp__bucket_name_ok(bucket)) {
        return cp__bucket_no_bucket(err);
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
    int rc = cp__bucket_db_exists(s, bucket, NULL, err);
    if (rc > 0) {
        rc = cp__bucket_db_obj_get(s, bucket, key, r, err);
        if (rc == CP_ENOTFOUND) {
            rc = no_key(err);
        }
    } else if (rc == 0) {
        rc = cp__bucket_no_bucket(err);
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
    int rc = cp__bucket_check_key(bucket, key, err);
    if (rc < 0) {
        return rc;
    }
    obj_row r = {0};
    pthread_mutex_t *m = cp__bucket_stripe_of(s, bucket, key);
    /* Under the key's stripe the index row and the file agree (no writer is between its
     * rename and its index commit). */
    pthread_mutex_lock(m);
    rc = lookup(s, bucket, key, &r, err);
    int ofd = -1;
    if (rc == CP_OK && fd) {
        int bfd = cp__bucket_open_dir(s, bucket), dirfd = -1;
        char leaf[256];
        if (bfd >= 0 &&
            cp__bucket_walk_stored(bfd, cp_buf_slice(&r.path), 0, &dirfd, leaf) == CP_OK) {
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
    cp__bucket_obj_row_free(&r);
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
            rc = cp__bucket_sys_err(err, "cannot read the object");
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
        if (cp__bucket_walk_stored(bfd, path, 0, &dirfd, leaf) < 0) {
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
    int rc = cp__bucket_check_key(bucket, key, err);
    if (rc < 0) {
        return rc;
    }
    obj_row r = {0};
    int64_t pid = 0;
    pthread_mutex_t *m = cp__bucket_stripe_of(s, bucket, key);
    pthread_mutex_lock(m);
    rc = lookup(s, bucket, key, &r, err);
    if (rc < 0) {
        goto out;
    }
    pthread_mutex_lock(&s->db_mu);
    sqlite3_stmt *st = cp__bucket_stmt(s, Q_PEND_INS);
    sqlite3_bind_int(st, 1, OP_DEL);
    cp__bucket_bind_str(st, 2, bucket);
    cp__bucket_bind_slice(st, 3, key);
    cp__bucket_bind_slice(st, 4, cp_buf_slice(&r.path));
    rc = cp__bucket_db_run(s, st, err);
    pid = sqlite3_last_insert_rowid(s->db);
    pthread_mutex_unlock(&s->db_mu);
    if (rc < 0) {
        goto out;
    }
    int bfd = cp__bucket_open_dir(s, bucket);
    if (bfd >= 0) {
        cp__bucket_unlink_stored(bfd, cp_buf_slice(&r.path));
        pthread_rwlock_wrlock(&s->tree_mu);
        prune_dirs(bfd, cp_buf_slice(&r.path));
        pthread_rwlock_unlock(&s->tree_mu);
        close(bfd);
    }
    pthread_mutex_lock(&s->db_mu);
    rc = cp__bucket_db_begin(s, err);
    if (rc == CP_OK) {
        st = cp__bucket_stmt(s, Q_OBJ_DEL);
        cp__bucket_bind_str(st, 1, bucket);
        cp__bucket_bind_slice(st, 2, key);
        rc = cp__bucket_db_run(s, st, err);
        if (rc == CP_OK) {
            st = cp__bucket_stmt(s, Q_PEND_DEL);
            sqlite3_bind_int64(st, 1, pid);
            rc = cp__bucket_db_run(s, st, err);
        }
        if (rc == CP_OK) {
            rc = cp__bucket_db_commit(s, err);
        } else {
            cp__bucket_db_rollback(s);
        }
    }
    pthread_mutex_unlock(&s->db_mu);
out:
    pthread_mutex_unlock(m);
    cp__bucket_obj_row_free(&r);
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
                rc = cp__bucket_sys_err(err, "cannot read the source object");
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
    int rc = cp__bucket_db_exists(s, bucket, NULL, err);
    if (rc <= 0) {
        rc = rc < 0 ? rc : cp__bucket_no_bucket(err);
        goto out;
    }
    rc = CP_OK;
    if (rq->max_keys == 0) {
        goto out;
    }
    sqlite3_stmt *st = cp__bucket_stmt(s, Q_OBJ_LIST);
    cp__bucket_bind_str(st, 1, bucket);
    cp__bucket_bind_slice(st, 2, cp_buf_slice(&lo));
    for (;;) {
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE) {
            break;
        }
        if (r != SQLITE_ROW) {
            rc = cp__bucket_db_fail(s, r, err);
            break;
        }
        cp_slice key = cp__bucket_col_slice(st, 0);
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
                cp__bucket_bind_slice(st, 2, cp_buf_slice(&lo));
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
    if (!cp__bucket_name_ok(bucket)) {
        return cp__bucket_no_bucket(err);
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
