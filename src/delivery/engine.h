/* SPDX-License-Identifier: MIT */
/*
 * The delivery engine: Firehose delivery streams from a Kinesis stream (or DirectPut) to a
 * bucket, exactly once.
 *
 * Each delivery stream has one worker thread that repeats a *round*: read records from every
 * source shard after its checkpoint, run the processors, decide each record's partition
 * (dynamic partitioning, or one data partition) or error partition, append the resulting bytes
 * to that partition's spill file, fsync the touched files, and commit in one LMDB transaction
 * the new source checkpoints together with every partition's committed length. A partition is
 * flushed when its size or interval hint is reached: its committed bytes become one object
 * whose key is a function of (stream, partition, generation, version, oldest arrival time), then
 * one transaction records the object in the manifest and starts the partition's next
 * generation. After a crash, spill files are truncated to their committed lengths and reading
 * resumes at the committed checkpoints, so no record is lost or staged twice; a flush that was
 * interrupted writes the same key again (with the same bytes, or a superset when more records
 * joined that generation), so no object duplicates another. Memory stays bounded however many
 * partitions are active: buffers live on disk, and the worker reads the next round only after
 * staging the last one (backpressure onto the stream, whose retention holds the backlog).
 *
 * Threads: every function is thread-safe.
 */
#ifndef CP_ENGINE_H
#define CP_ENGINE_H

#include <stdint.h>

#include "core/buf.h"
#include "delivery/config.h"
#include "delivery/processor.h"
#include "delivery/sink.h"
#include "stream/stream.h"

typedef struct cp_delivery cp_delivery;

typedef struct cp_delivery_opts {
    const char *data_dir;      /* state under <data_dir>/delivery */
    cp_streams *streams;       /* Kinesis sources (borrowed) */
    const cp_sink_ops *sink;   /* default sink (localfs) */
    void *sink_ctx;            /* e.g. the cp_bucket_store */
    /* Optional: resolve a sink named by a stream's ChangepipeOptions.SinkEndpoint (an
     * S3-compatible endpoint in the server configuration). Returns CP_OK with *ops and *ctx, or
     * CP_ENOTFOUND for an unknown name (create then fails with CP_EINVAL). */
    int (*sink_for)(void *ctx, const char *name, const cp_sink_ops **ops, void **sink_ctx);
    void *sink_for_ctx;
    const char *region;        /* for ARNs in Lambda events */
    /* Lambda invocation for the Lambda processor (see cp_processor_env). */
    int (*invoke)(void *ctx, const char *function_arn, cp_slice payload, cp_buf *response,
                  int *function_error, cp_err *err);
    void *invoke_ctx;
    uint32_t max_active_partitions; /* 0 = 500, as AWS's default quota */
    int no_fsync;                   /* tests/benchmarks only */
} cp_delivery_opts;

/* Per-stream counters since creation (persisted). They reconcile:
 * records_read = delivered + errored + dropped + buffered. */
typedef struct cp_delivery_stats {
    uint64_t records_read;      /* taken from the source (after de-aggregation: sub-records) */
    uint64_t records_delivered; /* in delivered data objects */
    uint64_t records_errored;   /* written as error documents */
    uint64_t records_dropped;   /* Dropped by a processor */
    uint64_t records_buffered;  /* staged in spill files, not yet in an object */
    uint64_t objects;           /* objects written (data and error) */
    uint64_t bytes;             /* object bytes written */
    uint64_t processor_retries; /* whole-batch retries after CP_RETRY */
    int64_t millis_behind;      /* source lag at the last read */
    uint32_t active_partitions; /* partitions with buffered data */
} cp_delivery_stats;

/* Open the engine and restart every delivery stream found in its state. opts is copied
 * (pointers borrowed for the engine's lifetime). */
int cp_delivery_open(const cp_delivery_opts *opts, cp_delivery **out, cp_err *err);
/* Stop every worker (buffered data stays on disk and resumes on the next open) and free. */
void cp_delivery_close(cp_delivery *d);

/* Create a delivery stream; takes ownership of cfg (also on failure). A Kinesis source starts
 * at LATEST, as Firehose does. CP_EEXIST, CP_ENOTFOUND (source stream), CP_EINVAL. */
int cp_delivery_create(cp_delivery *d, cp_ds_config *cfg, cp_err *err);
/* Delete: stop the worker and discard buffered data (as Firehose does). CP_ENOTFOUND. */
int cp_delivery_delete(cp_delivery *d, const char *name, cp_err *err);
/* Replace a stream's configuration (UpdateDestination; takes ownership of cfg). Buffered data
 * is flushed under the old version first. */
int cp_delivery_update(cp_delivery *d, cp_ds_config *cfg, cp_err *err);
/* A copy of the current configuration (free with cp_ds_config_free). CP_ENOTFOUND. */
int cp_delivery_config(cp_delivery *d, const char *name, cp_ds_config **out, cp_err *err);
/* Names in byte order after `after` (NULL: from the start), NUL-separated into out. */
int cp_delivery_list(cp_delivery *d, const char *after, size_t max, cp_buf *out, size_t *n,
                     cp_err *err);

/* DirectPut: append records durably to the stream's intake (all or nothing); ids[i] gets each
 * record's position. CP_EINVAL for a Kinesis-source stream. */
int cp_delivery_put(cp_delivery *d, const char *name, const cp_slice *records, size_t n,
                    uint64_t *ids, cp_err *err);

/* Flush every buffer now and wait until everything read so far is in objects, or timeout_ms
 * passes (CP_EAGAIN). With catch_up, first wait until the source has been read to its end as
 * of the call. For tests, the demo and `changepipe load --verify`. */
int cp_delivery_drain(cp_delivery *d, const char *name, int catch_up, int64_t timeout_ms,
                      cp_err *err);

int cp_delivery_stats_get(cp_delivery *d, const char *name, cp_delivery_stats *out, cp_err *err);

/* Re-deliver every object whose records arrived between from_ms and to_ms (inclusive), into
 * the same keys, re-reading those records from the source and re-running the processors (to
 * backfill or fix a transform). Needs the records still in the source's retention.
 * *objects gets the number of objects rewritten. */
int cp_delivery_replay(cp_delivery *d, const char *name, int64_t from_ms, int64_t to_ms,
                       uint64_t *objects, cp_err *err);

#endif
