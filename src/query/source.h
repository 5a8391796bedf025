/* SPDX-License-Identifier: MIT */
/*
 * source: where a table's objects come from, behind one small versioned ops struct (SQLite's
 * VFS shape): list keys under a prefix (optionally rolled up at a delimiter, for partition
 * pruning level by level), and stream one object's bytes. Two implementations:
 *
 *   local  the bucket store in <data>/buckets (objects/bucket.h), or one the caller already
 *          opened (an in-process server holds the store's lock, so it passes its own);
 *   s3     any S3-compatible endpoint (changepipe's own S3 API, AWS S3, MinIO...):
 *          ListObjectsV2 pages and ranged GetObject requests of 8 MiB through
 *          delivery/s3client.h, path-style, SigV4-signed. Transient failures are retried
 *          twice with a short backoff. An object is read in ranges, so one replaced while it
 *          is being read may mix versions (S3 offers no snapshot; delivered objects are
 *          written once).
 *
 * On top of a source, cp_source_lines streams an object as lines: gzip (detected by its magic
 * bytes, whatever the key or Content-Encoding says, as zcat would) is inflated on the fly with
 * zlib, every member of a multi-member file included; memory stays bounded by the longest
 * line, never the object.
 *
 * Threads: a source and its readers belong to one thread.
 */
#ifndef CP_QUERY_SOURCE_H
#define CP_QUERY_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

typedef struct cp_bucket_store cp_bucket_store;

#define CP_SOURCE_ABI 1

/* One listed entry; borrowed for the callback. */
typedef struct cp_source_entry {
    cp_slice key; /* object key, or a common prefix (ending in the delimiter) */
    int is_prefix;
    uint64_t size;    /* objects only */
    int64_t mtime_ms; /* objects only; 0 when unknown */
} cp_source_entry;

/* Return 0 to go on; non-zero stops the listing and is returned by list. */
typedef int (*cp_source_entry_cb)(void *ctx, const cp_source_entry *e);

typedef struct cp_source_ops {
    int abi; /* CP_SOURCE_ABI */
    const char *name;
    /* Every entry under prefix (all pages), in key order. A non-empty delimiter rolls keys up
     * to common prefixes. Errors: CP_ENOTFOUND when the bucket does not exist, others with
     * err set; or the callback's value. */
    int (*list)(void *ctx, const char *bucket, cp_slice prefix, cp_slice delimiter,
                cp_source_entry_cb cb, void *cb_ctx, cp_err *err);
    /* Open an object for reading; *rd is the reader's state. CP_ENOTFOUND when it is gone. */
    int (*open)(void *ctx, const char *bucket, cp_slice key, void **rd, cp_err *err);
    /* Read up to cap bytes; *got = 0 at the end. */
    int (*read)(void *rd, void *buf, size_t cap, size_t *got, cp_err *err);
    /* Release a reader. */
    void (*close)(void *rd);
    /* Release the source. */
    void (*destroy)(void *ctx);
} cp_source_ops;

typedef struct cp_source {
    const cp_source_ops *ops;
    void *ctx;
} cp_source;

/*
 * The local bucket store. With `store` (borrowed; it must outlive the source) that store is
 * used; otherwise <data_dir>/buckets is opened (and closed with the source). Errors from
 * opening: CP_EINUSE when a running server holds the directory (err suggests --endpoint),
 * others as cp_bucket_store_open.
 */
int cp_source_local_new(cp_bucket_store *store, const char *data_dir, cp_source *out, cp_err *err);

typedef struct cp_source_s3_cfg {
    const char *endpoint; /* http[s]://host:port */
    const char *region;   /* NULL = us-east-1 */
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* NULL when none */
    size_t chunk;              /* bytes per ranged GET; 0 = 8 MiB */
} cp_source_s3_cfg;

/* An S3-compatible endpoint (strings copied). Does not connect yet. Errors: CP_EINVAL for a
 * bad endpoint or missing credentials (err says which). */
int cp_source_s3_new(const cp_source_s3_cfg *cfg, cp_source *out, cp_err *err);

/* Release a source (ops->destroy). A zeroed source is a no-op. */
void cp_source_free(cp_source *s);

/* ------------------------------------------------------------------------------------------ */
/* Lines of one object                                                                         */

typedef struct cp_source_lines cp_source_lines;

/* A reusable line reader (buffers are kept across objects). Free with cp_source_lines_free. */
cp_source_lines *cp_source_lines_new(void);
void cp_source_lines_free(cp_source_lines *l);

/* Start reading bucket/key from src (borrowed until the next open or free). Any previous
 * object is closed. Returns CP_OK or the source's open error. */
int cp_source_lines_open(cp_source_lines *l, const cp_source *src, const char *bucket, cp_slice key,
                         cp_err *err);
/*
 * The next line without its '\n' (and without a trailing '\r'): 1 with *line set (valid until
 * the next call), 0 at the end of the object, or a negative error: CP_ECORRUPT for a corrupt
 * gzip stream or an object in another compression format, CP_ETOOBIG for a line above
 * 256 MiB, read errors from the source.
 */
int cp_source_lines_next(cp_source_lines *l, cp_slice *line, cp_err *err);
/* Close the current object (also done by open and free). */
void cp_source_lines_close(cp_source_lines *l);
/* Bytes read from the source for the current object so far (compressed size for gzip). */
uint64_t cp_source_lines_bytes(const cp_source_lines *l);

#endif
