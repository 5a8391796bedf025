/* SPDX-License-Identifier: MIT */
/*
 * bucket: the local object store behind our S3 API and the local delivery sink. Buckets are
 * directories <data>/buckets/<bucket>/ and objects are plain files at their key's path
 * (keypath.h), so `ls -R` shows what was delivered. An SQLite index next to them
 * (<data>/buckets/.cp-index.db) is authoritative for which objects exist and holds their
 * metadata (size, ETag, Last-Modified, stored headers); listings are ordered index scans.
 *
 * Layout under <data>/buckets/:
 *   .cp-index.db[-wal,-shm]   the index (buckets, objects, pending intents, uploads, parts)
 *   .cp-lock                  flock()ed while a store is open: one process per directory
 *   .cp-trash-*               deleted buckets being removed (finished at the next open)
 *   <bucket>/                 the objects, at keypath_encode(key)
 *   <bucket>/.cp-tmp/         staging: every write lands here first
 *   <bucket>/.cp-uploads/<id>/<part>   multipart upload parts
 * Bucket names cannot start with '.', and keys whose first segment starts with ".cp-" are
 * escaped, so these names never collide with user data.
 *
 * Atomicity: a write is a temp file in .cp-tmp, written, fsynced, then renamed over the
 * object's path, and the directory fsynced; readers see the old bytes or the new ones, never a
 * mix, and a failed write leaves nothing visible. The index is kept in step by an intent
 * record: (1) commit "pending put of inode I at path P", (2) rename, fsync dir, (3) commit the
 * object row and drop the intent. Opening the store resolves leftover intents: the rename
 * happened iff the file at P has inode I. Deletes use the same two-step intent. Everything a
 * call returns CP_OK for is durable.
 *
 * Files created or edited by hand inside a bucket directory are not objects (the index
 * decides); an object file edited in place is served with its current size and old ETag.
 *
 * Threads: every function is thread-safe; a store serves any number of threads. Writes to
 * one key are serialised; writes to different keys run in parallel except for short index
 * commits. A cp_bucket_writer belongs to one thread.
 */
#ifndef CP_OBJECTS_BUCKET_H
#define CP_OBJECTS_BUCKET_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

typedef struct cp_bucket_store cp_bucket_store;

/* Results specific to this module (below the core range), each with a client-safe err->msg.
 * Callers answering S3 map them to NoSuchBucket, NoSuchUpload, BucketNotEmpty, InvalidPart,
 * InvalidPartOrder, EntityTooSmall and BadDigest. Plain misses of a key are CP_ENOTFOUND. */
enum {
    CP_BUCKET_ENOBUCKET = -1201,  /* the bucket does not exist */
    CP_BUCKET_ENOUPLOAD = -1202,  /* no such multipart upload for this bucket and key */
    CP_BUCKET_ENOTEMPTY = -1203,  /* delete of a bucket that still holds objects */
    CP_BUCKET_EBADPART = -1204,   /* a listed part was never uploaded or its ETag differs */
    CP_BUCKET_EPARTORDER = -1205, /* parts not in strictly ascending order */
    CP_BUCKET_ETOOSMALL = -1206,  /* a part other than the last is below min_part_size */
    CP_BUCKET_EBADDIGEST = -1207, /* the Content-MD5 given does not match the bytes */
};

typedef struct cp_bucket_cfg {
    const char *data_dir;       /* required; the store lives in <data_dir>/buckets */
    const char *default_region; /* region of buckets created without one; NULL = us-east-1 */
    uint64_t max_object_size;   /* bytes per object or part written; 0 = 5 GiB */
    uint64_t min_part_size;     /* multipart: minimum size of all parts but the last;
                                 * 0 = 5 MiB (S3's rule) */
} cp_bucket_cfg;

/*
 * Open (creating directories and index as needed) the store under cfg->data_dir, and finish
 * whatever a crash interrupted: pending intents are resolved, staging files and trashed
 * buckets removed. cfg is copied. On CP_OK *out is a new store: close with
 * cp_bucket_store_close(). Errors: CP_EINUSE when another process holds the directory,
 * CP_EINVAL for a missing data_dir, -errno or CP_EIO from the file system or index.
 */
int cp_bucket_store_open(const cp_bucket_cfg *cfg, cp_bucket_store **out, cp_err *err);
/* Close the store. Must not race with calls on it. NULL is a no-op. */
void cp_bucket_store_close(cp_bucket_store *s);

/* ------------------------------------------------------------------------------------------ */
/* Buckets                                                                                     */

/* S3 naming rules for new general-purpose buckets: 3..63 of [a-z0-9.-], starting and ending
 * with a letter or digit, no "..", not an IPv4 address, not the reserved prefixes ("xn--",
 * "sthree-", "amzn-s3-demo-") or suffixes ("-s3alias", "--ol-s3", ".mrap", "--x-s3",
 * "--table-s3"). Returns CP_OK or CP_EINVAL with the reason in err->msg. */
int cp_bucket_name_check(cp_slice name, cp_err *err);

typedef struct cp_bucket_info {
    char name[64];
    char region[64];    /* the LocationConstraint it was created with (or the default) */
    int64_t created_ms; /* creation time, ms since the epoch */
} cp_bucket_info;

/* Create bucket `name` in `region` (NULL or "" = default region; checked to look like a
 * region name). Returns CP_OK, CP_EEXIST (already exists), CP_EINVAL (bad name or region). */
int cp_bucket_create(cp_bucket_store *s, const char *name, const char *region, cp_err *err);
/* Look a bucket up; out may be NULL. Returns CP_OK or CP_BUCKET_ENOBUCKET. */
int cp_bucket_info_get(cp_bucket_store *s, const char *name, cp_bucket_info *out, cp_err *err);
/* Called once per bucket in name order; `b` borrows the store's memory for the call only.
 * A non-zero return stops the listing and is returned by cp_bucket_list_buckets. */
typedef int (*cp_bucket_each_cb)(void *ctx, const cp_bucket_info *b);
int cp_bucket_list_buckets(cp_bucket_store *s, cp_bucket_each_cb cb, void *ctx, cp_err *err);
/* Delete an empty bucket (in-progress multipart uploads are aborted with it). Returns CP_OK,
 * CP_BUCKET_ENOBUCKET or CP_BUCKET_ENOTEMPTY. */
int cp_bucket_delete(cp_bucket_store *s, const char *name, cp_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Objects                                                                                     */

/* Metadata of one object. Caller-owned: free with cp_bucket_obj_free(). */
typedef struct cp_bucket_obj {
    uint64_t size;    /* bytes */
    int64_t mtime_ms; /* Last-Modified: when the write completed */
    char etag[48];    /* unquoted: 32 hex digits of the MD5, or "<hex>-<parts>" (multipart) */
    cp_buf headers;   /* stored headers as "name\0value\0" pairs (lower-case names) */
} cp_bucket_obj;

#define CP_BUCKET_OBJ_INIT ((cp_bucket_obj){0, 0, {0}, CP_BUF_INIT})
void cp_bucket_obj_free(cp_bucket_obj *o);
/* Value of stored header `name` (lower case), or {NULL, 0}. Valid until o changes. */
cp_slice cp_bucket_obj_header(const cp_bucket_obj *o, const char *name);

typedef struct cp_bucket_put_opts {
    /* Headers stored with the object and sent back on GET/HEAD, as "name\0value\0" pairs
     * with lower-case names: content-type, content-encoding, content-disposition,
     * content-language, cache-control, expires, x-amz-meta-*. Borrowed. */
    cp_slice headers;
    /* When set, the 16-byte MD5 the bytes must have (Content-MD5); a mismatch fails the
     * write with CP_BUCKET_EBADDIGEST and stores nothing. */
    const unsigned char *content_md5;
} cp_bucket_put_opts;

/*
 * A streaming write of one object (or one multipart part): bytes go to a staging file, and
 * nothing is visible until commit. Either commit or abort every writer; both free it.
 */
typedef struct cp_bucket_writer cp_bucket_writer;

/* Start writing `key` in `bucket`. Returns a new writer in *out, or CP_BUCKET_ENOBUCKET,
 * CP_EINVAL / CP_ETOOBIG (bad key, see cp_keypath_check), -errno. */
int cp_bucket_writer_open(cp_bucket_store *s, const char *bucket, cp_slice key,
                          cp_bucket_writer **out, cp_err *err);
/* Start writing part `part` (1..10000) of multipart upload `upload_id` for bucket/key.
 * Returns CP_BUCKET_ENOUPLOAD when the upload does not exist for that bucket and key,
 * CP_EINVAL for a bad part number. */
int cp_bucket_writer_open_part(cp_bucket_store *s, const char *bucket, cp_slice key,
                               const char *upload_id, int part, cp_bucket_writer **out,
                               cp_err *err);
/* Append bytes (borrowed). CP_ETOOBIG past max_object_size, -errno on I/O errors; after a
 * failure the writer only accepts abort (commit returns the same error and frees it). */
int cp_bucket_writer_write(cp_bucket_writer *w, const void *p, size_t len, cp_err *err);
/* Bytes written so far. */
uint64_t cp_bucket_writer_size(const cp_bucket_writer *w);
/*
 * Make the bytes durable and visible atomically under the key (replacing any previous
 * object), or store the part. opts may be NULL (no headers, no digest check; for parts the
 * headers are ignored: an upload's headers come from its creation). `out` (may be NULL) gets
 * the new object's metadata (for a part: its size and ETag). Frees the writer on every path.
 * Errors: CP_BUCKET_EBADDIGEST, CP_BUCKET_ENOBUCKET (deleted meanwhile), CP_BUCKET_ENOUPLOAD,
 * CP_EEXIST (the path is blocked by a foreign file), -errno / CP_EIO.
 */
int cp_bucket_writer_commit(cp_bucket_writer *w, const cp_bucket_put_opts *opts, cp_bucket_obj *out,
                            cp_err *err);
/* Drop the staged bytes and free the writer. NULL is a no-op. */
void cp_bucket_writer_abort(cp_bucket_writer *w);

/* Write a whole object from memory, atomically (open + write + commit). data is borrowed. */
int cp_bucket_put(cp_bucket_store *s, const char *bucket, cp_slice key, cp_slice data,
                  const cp_bucket_put_opts *opts, cp_bucket_obj *out, cp_err *err);

/*
 * Look up an object. meta (may be NULL) gets its metadata; when fd is not NULL, *fd gets a new
 * read-only descriptor of the object's bytes (the caller closes it; it keeps reading the same
 * bytes even if the object is replaced or deleted meanwhile), and meta->size is the size of
 * that file. Returns CP_OK, CP_ENOTFOUND (no such key), CP_BUCKET_ENOBUCKET, CP_EINVAL (bad key).
 */
int cp_bucket_get(cp_bucket_store *s, const char *bucket, cp_slice key, cp_bucket_obj *meta,
                  int *fd, cp_err *err);
/* 1 when the object exists, 0 when not (or the bucket is missing), negative on errors. */
int cp_bucket_exists(cp_bucket_store *s, const char *bucket, cp_slice key, cp_err *err);
/* Read a whole object into out (appended). Same results as cp_bucket_get. */
int cp_bucket_read(cp_bucket_store *s, const char *bucket, cp_slice key, cp_buf *out,
                   cp_bucket_obj *meta, cp_err *err);
/* Delete an object. Returns CP_OK, CP_ENOTFOUND (it did not exist; S3 still answers 204),
 * CP_BUCKET_ENOBUCKET. */
int cp_bucket_delete_object(cp_bucket_store *s, const char *bucket, cp_slice key, cp_err *err);
/*
 * Server-side copy of src_bucket/src_key to dst_bucket/dst_key (the same key is allowed when
 * opts replace the headers). opts NULL keeps the source's headers; otherwise opts->headers
 * replace them. out (may be NULL) gets the new object's metadata. Errors as get + commit.
 */
int cp_bucket_copy(cp_bucket_store *s, const char *src_bucket, cp_slice src_key,
                   const char *dst_bucket, cp_slice dst_key, const cp_bucket_put_opts *opts,
                   cp_bucket_obj *out, cp_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Listing                                                                                     */

/* One listed entry; everything borrowed for the duration of the callback. */
typedef struct cp_bucket_entry {
    cp_slice key;  /* the object key, or the common prefix when is_prefix */
    int is_prefix; /* 1: a CommonPrefixes entry (size, mtime and etag unset) */
    uint64_t size;
    int64_t mtime_ms;
    const char *etag; /* unquoted */
} cp_bucket_entry;

/* Return 0 to go on; non-zero stops and is returned by the listing call. */
typedef int (*cp_bucket_entry_cb)(void *ctx, const cp_bucket_entry *e);

typedef struct cp_bucket_list_req {
    cp_slice prefix;      /* only keys starting with this */
    cp_slice delimiter;   /* non-empty: roll keys up to CommonPrefixes at its first
                           * occurrence after the prefix */
    cp_slice start_after; /* only keys (and prefixes) strictly greater */
    cp_slice resume;      /* only keys >= this: a previous page's `next` (binary) */
    size_t max_keys;      /* entries (keys + prefixes) to return at most; 0 = none */
} cp_bucket_list_req;

typedef struct cp_bucket_list_res {
    size_t count;  /* entries passed to the callback */
    int truncated; /* more entries follow */
    cp_buf next;   /* when truncated: pass as `resume` for the next page (binary bytes) */
    cp_buf last;   /* the last entry returned (key or prefix), for V1's NextMarker */
} cp_bucket_list_res;

#define CP_BUCKET_LIST_RES_INIT ((cp_bucket_list_res){0, 0, CP_BUF_INIT, CP_BUF_INIT})
void cp_bucket_list_res_free(cp_bucket_list_res *r);

/*
 * One page of a bucket's keys in S3 order (byte-wise), read from one consistent snapshot of
 * the index, then passed to cb (the store is not locked during callbacks, so cb may call the
 * store). res is reset first. Returns CP_OK, CP_BUCKET_ENOBUCKET, or cb's non-zero value.
 */
int cp_bucket_list(cp_bucket_store *s, const char *bucket, const cp_bucket_list_req *rq,
                   cp_bucket_entry_cb cb, void *ctx, cp_bucket_list_res *res, cp_err *err);
/* Every object under `prefix`, recursively, in key order (pages of 1000 internally; objects
 * written during the walk may or may not be seen). Returns as cp_bucket_list. */
int cp_bucket_walk(cp_bucket_store *s, const char *bucket, cp_slice prefix, cp_bucket_entry_cb cb,
                   void *ctx, cp_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Multipart uploads                                                                           */

#define CP_BUCKET_UPLOAD_ID_LEN 32 /* hex characters */
#define CP_BUCKET_MAX_PARTS     10000

/* Start a multipart upload of bucket/key with the headers to store on completion (borrowed,
 * as in cp_bucket_put_opts). Writes the new id (NUL-terminated) to upload_id. Returns CP_OK,
 * CP_BUCKET_ENOBUCKET, CP_EINVAL / CP_ETOOBIG (key). */
int cp_bucket_mpu_create(cp_bucket_store *s, const char *bucket, cp_slice key, cp_slice headers,
                         char upload_id[CP_BUCKET_UPLOAD_ID_LEN + 1], cp_err *err);

/* A part, as listed by the client on completion or returned by cp_bucket_mpu_list_parts. */
typedef struct cp_bucket_part {
    int number;       /* 1..10000 */
    char etag[48];    /* unquoted hex MD5 of the part */
    uint64_t size;    /* bytes (output of list_parts; ignored on complete) */
    int64_t mtime_ms; /* upload time (output of list_parts) */
} cp_bucket_part;

/* Store part `part` from memory (open_part + write + commit). out_etag gets the unquoted
 * ETag. content_md5 may be NULL. Errors as cp_bucket_writer_open_part and commit. */
int cp_bucket_mpu_put_part(cp_bucket_store *s, const char *bucket, cp_slice key,
                           const char *upload_id, int part, cp_slice data,
                           const unsigned char *content_md5, char out_etag[48], cp_err *err);
/*
 * Complete an upload: concatenate the listed parts (parts[i].number and .etag, borrowed) into
 * the object, atomically as a put, with ETag "<hex md5 of the parts' binary MD5s>-<n>".
 * Parts not listed are discarded. Returns CP_OK, CP_BUCKET_ENOUPLOAD, CP_BUCKET_EPARTORDER,
 * CP_BUCKET_EBADPART, CP_BUCKET_ETOOSMALL, CP_EINVAL (no parts), or write errors.
 */
int cp_bucket_mpu_complete(cp_bucket_store *s, const char *bucket, cp_slice key,
                           const char *upload_id, const cp_bucket_part *parts, size_t n,
                           cp_bucket_obj *out, cp_err *err);
/* Abort an upload and delete its parts. Returns CP_OK or CP_BUCKET_ENOUPLOAD. */
int cp_bucket_mpu_abort(cp_bucket_store *s, const char *bucket, cp_slice key, const char *upload_id,
                        cp_err *err);
/* The uploaded parts with number > after, ascending, up to max (0 = all): calls cb (may be
 * NULL) once per part (borrowed). *truncated (may be NULL) is set when more parts follow. Returns
 * CP_OK, CP_BUCKET_ENOUPLOAD, or cb's non-zero value. */
typedef int (*cp_bucket_part_cb)(void *ctx, const cp_bucket_part *p);
int cp_bucket_mpu_list_parts(cp_bucket_store *s, const char *bucket, cp_slice key,
                             const char *upload_id, int after, size_t max, cp_bucket_part_cb cb,
                             void *ctx, int *truncated, cp_err *err);

#endif
