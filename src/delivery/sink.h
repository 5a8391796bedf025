/* SPDX-License-Identifier: MIT */
/*
 * Sinks: where a delivery stream's objects go (STYLE.md 4.6). `localfs` writes into the
 * server's own bucket store; `s3` PUTs to any S3-compatible endpoint. The engine owns retries:
 * a sink returns CP_RETRY for anything transient and is called again with the same key and
 * bytes, so put_object must be idempotent per key (a rewrite replaces the object).
 */
#ifndef CP_SINK_H
#define CP_SINK_H

#include "core/buf.h"
#include "core/err.h"

#define CP_SINK_ABI 1

typedef struct cp_object {
    const char *bucket;   /* bucket name */
    cp_slice key;         /* full object key after prefix expansion */
    cp_slice body;        /* bytes to store; borrowed for the call */
    const char *encoding; /* NULL or "gzip" (Content-Encoding) */
} cp_object;

typedef struct cp_sink_ops {
    int abi;             /* CP_SINK_ABI */
    const char *name;    /* "localfs", "s3" */
    const char *summary; /* one line for docs */
    /* Store one object durably. Delivery worker thread; may block. CP_OK, CP_RETRY
     * (transient: the engine backs off and calls again), CP_EFAIL (permanent, e.g. no such
     * bucket: the engine keeps retrying with a long backoff and logs, as Firehose does with a
     * Kinesis source, never dropping data). */
    int (*put_object)(void *ctx, const cp_object *obj, cp_err *err);
    /* Release the sink's state. Optional. */
    void (*destroy)(void *ctx);
} cp_sink_ops;

extern const cp_sink_ops cp_sink_localfs; /* ctx: the cp_bucket_store */
extern const cp_sink_ops cp_sink_s3;      /* ctx: from cp_s3_sink_new (s3client.h) */

#endif
