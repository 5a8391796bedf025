/* SPDX-License-Identifier: MIT */
/*
 * backend: the storage plugin interface under every Kinesis-style stream. The stream manager
 * (stream.h) owns names, shard metadata, routing, iterators, retention policy and checkpoints;
 * a backend only stores and returns the records of numbered shards. Built-in backends:
 * `embedded` (one seglog per shard, backends/embedded.h); a NATS JetStream backend is planned
 * against the same ops. Every backend must pass tests/unit/test_stream_backend.c.
 *
 * Guarantees every backend gives (and the conformance suite checks):
 *   Ordering      Each shard is one total order. Sequence values are u64, never 0, strictly
 *                 increasing in append order; reads return records in that order, each once.
 *                 Nothing is promised across shards.
 *   Durability    append returns CP_OK only after all its records are durable (fsynced, or
 *                 acknowledged by a replicated store) and visible to read.
 *   Atomicity     A failed append acknowledges nothing. If the process dies during an append,
 *                 the records that survive are a prefix of the call's records (no gaps, no
 *                 reordering), which is the at-least-once contract of PutRecords retries.
 *   Ack           CP_OK from append is the acknowledgement; seqs[] are final and stable.
 *
 * Positions: a read position is a u64 in the same space as sequence values. read(from) returns
 * the records whose sequence value is >= from. A position must come from this backend: a
 * record's seq, a batch's next_seq, or a shard state's first_seq/end_seq (other values may fail
 * with CP_ECORRUPT or CP_EINVAL). Positions below first_seq (trimmed) read from first_seq.
 */
#ifndef CP_STREAM_BACKEND_H
#define CP_STREAM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

struct cp_config_entry; /* config/config.h; only pointed to here */

/* Version of cp_stream_backend_ops this header describes. Callbacks are only ever appended;
 * the manager checks `abi` before using a newer one. */
#define CP_STREAM_BACKEND_ABI 1

/* One record, as appended or as read. */
typedef struct cp_stream_rec {
    uint64_t seq;           /* backend-assigned sequence value; ignored on append */
    int64_t arrival_ms;     /* ingestion time, ms since the epoch; ignored on append */
    uint64_t source_id;     /* caller's id (change capture); 0 for direct puts */
    cp_slice partition_key; /* 1..256 characters, checked by the manager */
    cp_slice data;          /* opaque bytes, may be empty */
} cp_stream_rec;

/* Records returned by a read. Caller-owned: the record slices point into `bytes` and stay
 * valid until the batch is reset or freed. One thread at a time. */
typedef struct cp_stream_batch {
    cp_stream_rec *recs;
    size_t n, cap;
    cp_buf bytes;      /* partition keys and data of recs */
    size_t data_bytes; /* sum of partition key and data lengths (the Kinesis size measure) */
    uint64_t next_seq; /* read position after the last returned record; the request's position
                        * (clamped to first_seq) when nothing was returned */
} cp_stream_batch;

#define CP_STREAM_BATCH_INIT ((cp_stream_batch){0})

/* Forget the records, keep the memory. */
void cp_stream_batch_reset(cp_stream_batch *b);
/* Release all memory; the batch is CP_STREAM_BATCH_INIT afterwards. */
void cp_stream_batch_free(cp_stream_batch *b);
/* Append a copy of one record (pk and data borrowed, copied). For backends' read callbacks. */
void cp_stream_batch_add(cp_stream_batch *b, uint64_t seq, int64_t arrival_ms, uint64_t source_id,
                         cp_slice partition_key, cp_slice data);

/* A shard's bounds, as of the call. */
typedef struct cp_stream_shard_state {
    uint64_t first_seq; /* TRIM_HORIZON: read(first_seq) starts at the oldest retained record */
    uint64_t end_seq;   /* LATEST: read(end_seq) sees only later appends; every future record
                         * gets a seq >= end_seq */
    uint64_t last_seq;  /* seq of the newest record, 0 when the shard never held one */
    int64_t last_ms;    /* arrival time of the newest record, 0 when none */
} cp_stream_shard_state;

/* What the manager passes to open. All borrowed for the duration of the call. */
typedef struct cp_stream_backend_args {
    const char *dir;    /* the stream's directory <data>/streams/<name>, already created. The
                         * backend may create entries named "shardId-*" in it; the manager owns
                         * every other name. */
    const char *stream; /* stream name ([a-zA-Z0-9_.-]{1,128}) */
    const void *opts;   /* the backend's own options struct (e.g. cp_embedded_opts), or NULL */
} cp_stream_backend_args;

typedef struct cp_stream_backend_ops {
    int abi;                            /* CP_STREAM_BACKEND_ABI this backend was built against */
    const char *name;                   /* "embedded", "jetstream": matched against the config */
    const char *summary;                /* one line for --help and docs */
    const struct cp_config_entry *opts; /* the backend's config table (config/config.h),
                                         * all-zero terminated; NULL: no options */

    /* Open the storage of one stream. On CP_OK *ctx is the backend's, released by close or
     * destroy. Manager thread; may block. No shard is usable until add_shard. */
    int (*open)(const cp_stream_backend_args *args, void **ctx, cp_err *err);

    /* Create shard `shard` or reopen its existing storage (idempotent). Any thread; may block;
     * may run concurrently with append/read on other shards. */
    int (*add_shard)(void *ctx, uint32_t shard, cp_err *err);

    /* Append n >= 1 records to one shard, all or nothing, and return only once they are
     * durable. recs (and their slices) are borrowed for the call; seq/arrival_ms inputs are
     * ignored. All records get one arrival time: now_ms raised if needed to keep arrival times
     * non-decreasing per shard; *stamped_ms (optional) receives it. seqs (n entries) receives
     * the sequence values. Any thread, concurrently with anything but close/destroy; may block;
     * concurrent appends to one shard are ordered and should share durability work (group
     * commit). Errors: CP_ENOTFOUND unknown shard, CP_ETOOBIG, CP_EIO/-errno (storage failed;
     * nothing acknowledged). */
    int (*append)(void *ctx, uint32_t shard, const cp_stream_rec *recs, size_t n, int64_t now_ms,
                  uint64_t *seqs, int64_t *stamped_ms, cp_err *err);

    /* Read up to max_records records with seq >= from into *out (reset first), stopping before
     * a record that would take out->data_bytes past max_bytes unless out is still empty (so a
     * read always makes progress). Sets out->next_seq. Only durable records are returned. Any
     * thread, concurrently with appends; may block on I/O but never waits for new records.
     * Errors: CP_ENOTFOUND unknown shard, CP_ECORRUPT (stored bytes, or a `from` this backend
     * never produced), -errno. */
    int (*read)(void *ctx, uint32_t shard, uint64_t from, size_t max_records, size_t max_bytes,
                cp_stream_batch *out, cp_err *err);

    /* Position of the first record with arrival time >= ts_ms (end_seq if none; first_seq if
     * ts_ms precedes everything retained). Any thread. CP_ENOTFOUND unknown shard. */
    int (*seek_time)(void *ctx, uint32_t shard, int64_t ts_ms, uint64_t *pos, cp_err *err);

    /* The shard's current bounds. Any thread; cheap (called on every GetRecords). */
    int (*state)(void *ctx, uint32_t shard, cp_stream_shard_state *out, cp_err *err);

    /* source_id of the newest durable record that was appended with a non-zero source_id (0
     * if none), even when direct puts (source_id 0) came after it. Must be cheap and correct
     * after a crash: the change-capture forwarder calls it on start to append each change
     * exactly once. Any thread. CP_ENOTFOUND unknown shard. */
    int (*last_source)(void *ctx, uint32_t shard, uint64_t *source_id, cp_err *err);

    /* Optional (NULL: retention is not enforced). Discard records older than before_ms, in
     * whole storage units; records at or after before_ms must stay. first_seq moves forward.
     * Any thread; concurrent readers of trimmed positions restart at first_seq. */
    int (*trim)(void *ctx, uint32_t shard, int64_t before_ms, cp_err *err);

    /* Optional. Delete all storage of a shard the manager has expired; later calls on it return
     * CP_ENOTFOUND. The manager guarantees no concurrent call on that shard. */
    int (*drop_shard)(void *ctx, uint32_t shard, cp_err *err);

    /* Delete all storage of the stream and release ctx (also on failure). Manager thread, after
     * every other call on ctx has returned. */
    int (*destroy)(void *ctx, cp_err *err);

    /* Release ctx, keeping the data. Manager thread, after every other call has returned. */
    void (*close)(void *ctx);
} cp_stream_backend_ops;

#endif
