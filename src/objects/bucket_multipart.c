/* SPDX-License-Identifier: MIT */
/*
 * The bucket store's multipart uploads: create, put part, complete (parts assembled into a
 * staged file and installed through the intent protocol of bucket.h), abort, list parts.
 * Part writers themselves are in bucket_object.c; shared helpers are in bucket_int.h.
 */
#include "objects/bucket.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/fs.h"
#include "core/mem.h"
#include "objects/bucket_int.h"

/* ------------------------------------------------------------------------------------------ */
/* Multipart uploads                                                                           */

int cp_bucket_mpu_create(cp_bucket_store *s, const char *bucket, cp_slice key, cp_slice headers,
                         char upload_id[CP_BUCKET_UPLOAD_ID_LEN + 1], cp_err *err)
{
    int rc = cp__bucket_check_key(bucket, key, err);
    if (rc < 0) {
        return rc;
    }
    int bfd = cp__bucket_open_dir(s, bucket);
    if (bfd < 0) {
        return errno == ENOENT ? cp__bucket_no_bucket(err)
                               : cp__bucket_sys_err(err, "cannot open the bucket");
    }
    cp__bucket_random_hex(upload_id, CP_BUCKET_UPLOAD_ID_LEN / 2);
    int up = cp__bucket_upload_dir(bfd, upload_id, 1);
    if (up < 0) {
        rc = cp__bucket_sys_err(err, "cannot create the upload's directory");
        close(bfd);
        return rc;
    }
    close(up);
    pthread_mutex_lock(&s->db_mu);
    rc = cp__bucket_db_exists(s, bucket, NULL, err);
    if (rc > 0) {
        sqlite3_stmt *st = cp__bucket_stmt(s, Q_UP_INS);
        cp__bucket_bind_str(st, 1, upload_id);
        cp__bucket_bind_str(st, 2, bucket);
        cp__bucket_bind_slice(st, 3, key);
        sqlite3_bind_int64(st, 4, cp_clock_now_ms());
        cp__bucket_bind_slice(st, 5, headers);
        rc = cp__bucket_db_run(s, st, err);
    } else if (rc == 0) {
        rc = cp__bucket_no_bucket(err);
    }
    pthread_mutex_unlock(&s->db_mu);
    if (rc < 0) {
        int upd = cp__bucket_open_dir_at(bfd, UPLOADS_DIR);
        if (upd >= 0) {
            cp__bucket_rm_tree(upd, upload_id);
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
    sqlite3_stmt *st = cp__bucket_stmt(s, Q_PART_LIST);
    cp__bucket_bind_str(st, 1, id);
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
    return r == SQLITE_DONE || r == SQLITE_ROW ? CP_OK : cp__bucket_db_fail(s, r, err);
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
    int rc = cp__bucket_check_key(bucket, key, err);
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
    pthread_mutex_t *m = cp__bucket_stripe_of(s, bucket, key);
    pthread_mutex_lock(m);
    pthread_mutex_lock(&s->db_mu);
    rc = cp__bucket_db_upload_check(s, bucket, key, upload_id, &headers, err);
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
    bfd = cp__bucket_open_dir(s, bucket);
    tmp_dirfd = bfd >= 0 ? cp__bucket_open_tmp_dir(bfd) : -1;
    up = bfd >= 0 ? cp__bucket_upload_dir(bfd, upload_id, 0) : -1;
    if (up < 0 || tmp_dirfd < 0 || (tfd = cp__bucket_create_tmp(tmp_dirfd, tmpname)) < 0) {
        rc = cp__bucket_sys_err(err, "cannot prepare the completed object");
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
            rc = cp__bucket_sys_err(err, "a part's file is missing");
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
        rc = cp__bucket_sys_err(err, "cannot sync the completed object");
        goto out;
    }
    char etag[48];
    unsigned char raw[16];
    cp__bucket_md5_hex_final(md, etag, raw);
    snprintf(etag + 32, sizeof(etag) - 32, "-%u", (unsigned) n); /* n <= 10000 */
    staged sg = {tmp_dirfd, tmpname, (uint64_t) st.st_ino, total, etag, cp_buf_slice(&headers),
                 upload_id};
    rc = cp__bucket_install_locked(s, bucket, bfd, key, &sg, out, err);
    if (rc == CP_OK) {
        tmpname[0] = 0;
        int upd = cp__bucket_open_dir_at(bfd, UPLOADS_DIR);
        if (upd >= 0) {
            cp__bucket_rm_tree(upd, upload_id);
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
    int rc = cp__bucket_check_key(bucket, key, err);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_t *m = cp__bucket_stripe_of(s, bucket, key);
    pthread_mutex_lock(m);
    pthread_mutex_lock(&s->db_mu);
    rc = cp__bucket_db_upload_check(s, bucket, key, upload_id, NULL, err);
    if (rc == CP_OK && (rc = cp__bucket_db_begin(s, err)) == CP_OK) {
        sqlite3_stmt *st = cp__bucket_stmt(s, Q_PART_DEL);
        cp__bucket_bind_str(st, 1, upload_id);
        rc = cp__bucket_db_run(s, st, err);
        if (rc == CP_OK) {
            st = cp__bucket_stmt(s, Q_UP_DEL);
            cp__bucket_bind_str(st, 1, upload_id);
            rc = cp__bucket_db_run(s, st, err);
        }
        rc = rc == CP_OK ? cp__bucket_db_commit(s, err) : (cp__bucket_db_rollback(s), rc);
    }
    pthread_mutex_unlock(&s->db_mu);
    if (rc == CP_OK) {
        int bfd = cp__bucket_open_dir(s, bucket);
        int upd = bfd >= 0 ? cp__bucket_open_dir_at(bfd, UPLOADS_DIR) : -1;
        if (upd >= 0) {
            cp__bucket_rm_tree(upd, upload_id);
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
    int rc = cp__bucket_check_key(bucket, key, err);
    if (rc < 0) {
        return rc;
    }
    part_vec pv = {0};
    pthread_mutex_lock(&s->db_mu);
    rc = cp__bucket_db_upload_check(s, bucket, key, upload_id, NULL, err);
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
