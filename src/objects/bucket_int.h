/* SPDX-License-Identifier: MIT */
/*
 * bucket_int.h: internals shared by the bucket store's files, not an API. Nothing outside
 * src/objects/bucket*.c includes this.
 *
 *   bucket.c            small helpers, the SQLite index, directory walking, open/recovery/close,
 *                       bucket operations, and installing a staged file (the intent protocol)
 *   bucket_object.c     writers, reads, deletes, copies, listing
 *   bucket_multipart.c  multipart uploads
 *
 * The lock order (key stripe -> tree lock -> db mutex) is described at the top of bucket.c and
 * binds all three files. Macros and types here are short-named because they never reach the
 * linker; functions shared across files are cp__bucket_* (house style 4.2).
 */
#ifndef CP_OBJECTS_BUCKET_INT_H
#define CP_OBJECTS_BUCKET_INT_H

#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "objects/bucket.h"

#define NSTRIPES     64
#define TMP_DIR      ".cp-tmp"
#define UPLOADS_DIR  ".cp-uploads"
#define TRASH_PREFIX ".cp-trash-"

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

typedef struct obj_row {
    cp_buf path;
    uint64_t size;
    int64_t mtime_ms;
    char etag[48];
    cp_buf headers;
    uint64_t ino;
} obj_row;

/* A staged file about to become an object (cp__bucket_install_locked). */
typedef struct staged {
    int tmp_dirfd;       /* the bucket's staging directory */
    const char *tmpname; /* the staged file in it, written and fsynced */
    uint64_t ino, size;
    const char *etag; /* unquoted */
    cp_slice headers;
    const char *upload_id; /* completing a multipart upload: drop its rows in the same commit */
} staged;

/* Small helpers (bucket.c) */
int cp__bucket_sys_err(cp_err *err, const char *what);
void cp__bucket_random_hex(char *out, size_t nbytes);
pthread_mutex_t *cp__bucket_stripe_of(cp_bucket_store *s, const char *bucket, cp_slice key);
void cp__bucket_md5_hex_final(EVP_MD_CTX *ctx, char out[48], unsigned char raw[16]);

/* Index (SQLite) helpers; callers hold db_mu (bucket.c) */
sqlite3_stmt *cp__bucket_stmt(cp_bucket_store *s, int id);
void cp__bucket_bind_slice(sqlite3_stmt *st, int i, cp_slice v);
void cp__bucket_bind_str(sqlite3_stmt *st, int i, const char *v);
cp_slice cp__bucket_col_slice(sqlite3_stmt *st, int i);
int cp__bucket_db_fail(cp_bucket_store *s, int rc, cp_err *err);
int cp__bucket_db_run(cp_bucket_store *s, sqlite3_stmt *st, cp_err *err);
int cp__bucket_db_begin(cp_bucket_store *s, cp_err *err);
int cp__bucket_db_commit(cp_bucket_store *s, cp_err *err);
void cp__bucket_db_rollback(cp_bucket_store *s);
int cp__bucket_db_exists(cp_bucket_store *s, const char *bucket, cp_bucket_info *out, cp_err *err);
void cp__bucket_obj_row_free(obj_row *r);
int cp__bucket_db_obj_get(cp_bucket_store *s, const char *bucket, cp_slice key, obj_row *r,
                          cp_err *err);

/* Directory walking (bucket.c) */
int cp__bucket_open_dir_at(int dirfd, const char *name);
int cp__bucket_walk_stored(int base_fd, cp_slice path, int create, int *dirfd, char leaf[256]);
int cp__bucket_rm_tree(int dirfd, const char *name);
int cp__bucket_open_dir(cp_bucket_store *s, const char *bucket);
int cp__bucket_ensure_dir(int dirfd, const char *name);

/* Buckets and installing (bucket.c) */
int cp__bucket_name_ok(const char *bucket);
int cp__bucket_no_bucket(cp_err *err);
void cp__bucket_unlink_stored(int bfd, cp_slice path);
int cp__bucket_install_locked(cp_bucket_store *s, const char *bucket, int bfd, cp_slice key,
                              const staged *sg, cp_bucket_obj *out, cp_err *err);

/* Writers, reads and deletes (bucket_object.c) */
int cp__bucket_open_tmp_dir(int bfd);
int cp__bucket_create_tmp(int tmp_dirfd, char name[48]);
int cp__bucket_db_upload_check(cp_bucket_store *s, const char *bucket, cp_slice key, const char *id,
                               cp_buf *headers, cp_err *err);
int cp__bucket_upload_dir(int bfd, const char *id, int create);
int cp__bucket_check_key(const char *bucket, cp_slice key, cp_err *err);

#endif
