/* SPDX-License-Identifier: MIT */
/*
 * Compression of delivered objects (Firehose's CompressionFormat) and the key extension and
 * Content-Encoding each format implies (firehose.md 1.5). GZIP is written with libdeflate as
 * exactly one gzip member (what zcat, Athena and Hadoop read), whole-buffer: a partition's
 * buffer is at most 128 MiB, and cp_gzip_compress_fd maps the spill file and the output file
 * instead of copying them to the heap, so a flush costs page cache, not malloc.
 *
 * Output is a pure function of the input bytes and the level (libdeflate writes MTIME 0 and no
 * file name), so re-flushing the same records after a crash yields the same object bytes.
 *
 * Threads: every function is thread-safe (no shared state).
 */
#ifndef CP_COMPRESS_H
#define CP_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

typedef enum {
    CP_COMPRESS_NONE = 0,      /* UNCOMPRESSED */
    CP_COMPRESS_GZIP,          /* GZIP */
    CP_COMPRESS_ZIP,           /* ZIP (not implemented: cp_compress_supported() is 0) */
    CP_COMPRESS_SNAPPY,        /* Snappy, xerial snappy-java stream (not implemented) */
    CP_COMPRESS_HADOOP_SNAPPY, /* HADOOP_SNAPPY (not implemented) */
} cp_compress_format;

#define CP_GZIP_LEVEL_DEFAULT 6 /* gzip's own default: the usual speed/size trade */

/* The format for a Firehose CompressionFormat value (case-sensitive, as the API model:
 * "Snappy", not "SNAPPY"). NULL or "" means UNCOMPRESSED. CP_EINVAL for anything else. */
int cp_compress_parse(const char *name, cp_compress_format *out);
/* The API spelling of a format ("UNCOMPRESSED", "GZIP", ...). Static, never NULL. */
const char *cp_compress_name(cp_compress_format f);
/* 1 when changepipe can write the format (UNCOMPRESSED and GZIP today). */
int cp_compress_supported(cp_compress_format f);
/* The default key extension ("", ".gz", ".zip", ".snappy"). HADOOP_SNAPPY maps to ".snappy",
 * as the live service names it (the docs' ".hsnappy" is wrong, firehose.md 1.5). A configured
 * FileExtension replaces this; it is never appended to it. Static, never NULL. */
const char *cp_compress_extension(cp_compress_format f);
/* The Content-Encoding of delivered objects, or NULL for none ("gzip", "zip", "snappy-java",
 * "hadoop-snappy"). Static. */
const char *cp_compress_content_encoding(cp_compress_format f);

/* Largest gzip output cp_gzip_compress can produce for `len` input bytes. */
size_t cp_gzip_bound(size_t len);

/* Append one gzip member holding `in` to out. level 1..12 (libdeflate; 0 means the default).
 * Borrows in. CP_EINVAL for a bad level. Aborts on OOM like every cp_buf growth. */
int cp_gzip_compress(cp_slice in, int level, cp_buf *out, cp_err *err);

/* Compress the first `len` bytes of in_fd (from offset 0) into out_fd as one gzip member,
 * replacing out_fd's contents (it is truncated to the member's size); *out_len gets that size.
 * Both files are mapped, so neither is copied to the heap. The caller fsyncs out_fd if it
 * needs durability. Returns -errno for I/O failures (err says which step), CP_EINVAL for a
 * bad level. Empty input writes the (small) member of an empty stream. */
int cp_gzip_compress_fd(int in_fd, uint64_t len, int level, int out_fd, uint64_t *out_len,
                        cp_err *err);

/* Append the decompressed bytes of a gzip stream to out (every member, as zcat does).
 * CP_EINVAL for corrupt or truncated input, CP_ETOOBIG when the result would exceed max
 * bytes (a decompression bomb guard). Used by tests and by Decompression-style readers. */
int cp_gzip_decompress(cp_slice in, size_t max, cp_buf *out, cp_err *err);

#endif
