/* SPDX-License-Identifier: MIT */
/*
 * stream: the Kinesis Data Streams model over a data directory. A cp_streams manager owns every
 * stream under <data>/streams/: names and modes, shards with hash-key ranges and parent links,
 * routing of puts (MD5 of the partition key or ExplicitHashKey), iterator positions
 * (TRIM_HORIZON, LATEST, AT/AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP), retention and trimming,
 * resharding (UpdateShardCount), durable consumer checkpoints, and the "last source_id" query the
 * change-capture forwarder uses for exactly-once appends. Record storage is delegated to a
 * cp_stream_backend_ops (backend.h; `embedded` by default).
 *
 * The HTTP layer (Kinesis JSON API) sits on top: it validates request shapes, encodes iterator
 * positions into opaque (authenticated) ShardIterator strings and maps CP_E* codes to AWS errors.
 *
 * On disk, per stream: <data>/streams/<name>/stream.json (metadata) and checkpoints.json, both
 * replaced atomically (write temp, fsync, rename, fsync dir); plus the backend's shard storage.
 * JSON files rather than LMDB because a stream is then one self-contained directory: creating
 * and deleting it cannot disagree with a separate database after a crash, and the files are
 * small, rarely written and easy to inspect.
 *
 * Threads: every function is safe to call from any thread concurrently, except open/close.
 * Puts and reads of one stream run in parallel; resharding and retention changes wait for
 * in-flight puts of that stream (so a closed shard's EndingSequenceNumber is exact).
 *
 * Errors (in addition to those listed per function): CP_ENOTFOUND for an unknown stream
 * ("Stream <name> under account ... not found" at the API layer), -errno / CP_EIO for storage
 * failures. `err` receives a client-safe message; nothing here logs.
 */
#ifndef CP_STREAM_STREAM_H
#define CP_STREAM_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "stream/backend.h"
#include "stream/seq.h"
#include "stream/shard.h"

typedef struct cp_streams cp_streams;

#define CP_STREAM_NAME_MAX         128
#define CP_STREAM_RETENTION_MIN    24   /* hours */
#define CP_STREAM_RETENTION_MAX    8760 /* hours (365 days) */
#define CP_STREAM_RETENTION_DEF    24
#define CP_STREAM_ON_DEMAND_SHARDS 4 /* what an on-demand stream starts (and stays) with */
#define CP_STREAM_PK_MAX_CHARS     256
#define CP_STREAM_CONSUMER_MAX     256 /* bytes of a checkpoint consumer name */

typedef enum {
    CP_STREAM_CREATING,
    CP_STREAM_ACTIVE,
    CP_STREAM_UPDATING,
    CP_STREAM_DELETING,
} cp_stream_status;

typedef enum {
    CP_STREAM_PROVISIONED,
    CP_STREAM_ON_DEMAND,
} cp_stream_mode;

typedef enum {
    CP_ITER_TRIM_HORIZON,
    CP_ITER_LATEST,
    CP_ITER_AT_SEQUENCE_NUMBER,
    CP_ITER_AFTER_SEQUENCE_NUMBER,
    CP_ITER_AT_TIMESTAMP,
} cp_stream_iter_type;

/* "ACTIVE", "PROVISIONED", "AFTER_SEQUENCE_NUMBER"... (static strings). */
const char *cp_stream_status_name(cp_stream_status s);
const char *cp_stream_mode_name(cp_stream_mode m);
const char *cp_stream_iter_type_name(cp_stream_iter_type t);
/* Parse the AWS spelling; CP_EINVAL for anything else. */
int cp_stream_iter_type_parse(cp_slice s, cp_stream_iter_type *out);

/* Stream names: 1..128 of [a-zA-Z0-9_.-], and not "." or ".." (they name directories).
 * CP_EINVAL with an AWS-style message otherwise. */
int cp_stream_name_check(cp_slice name, cp_err *err);

/* ---------------------------------------------------------------- lifecycle */

typedef struct cp_streams_opts {
    const cp_stream_backend_ops *backend; /* NULL: cp_stream_backend_embedded */
    const void *backend_opts;             /* e.g. a cp_embedded_opts; NULL: defaults */
    uint32_t shard_limit;    /* max open shards over all streams; 0 = 500 (AWS default) */
    size_t max_record_bytes; /* partition key + data per record; 0 = 1 MiB */
    int no_fsync;            /* metadata files without fsync (tests only) */
} cp_streams_opts;

/* Open the manager over <data_dir>/streams (created if missing) and reopen every stream found
 * there. Leftovers of an interrupted create are removed and interrupted deletes are finished.
 * opts (borrowed; may be NULL) is copied, but the backend ops and backend_opts are borrowed for
 * the manager's lifetime. On CP_OK *out is new; close with cp_streams_close. CP_ECORRUPT when a
 * stream.json cannot be parsed. */
int cp_streams_open(const char *data_dir, const cp_streams_opts *opts, cp_streams **out,
                    cp_err *err);
/* Close every stream (data stays). No call may be in flight. NULL is a no-op. */
void cp_streams_close(cp_streams *s);

/* ---------------------------------------------------------------- control plane */

/* CreateStream. shard_count is required for PROVISIONED (1..shard_limit) and must be 0 for
 * ON_DEMAND, which gets CP_STREAM_ON_DEMAND_SHARDS. The stream is ACTIVE on return (creation is
 * synchronous and durable). created_ms: creation time; 0 = now.
 * CP_EINVAL bad name/count ("ShardCount is not expected when StreamMode=ON_DEMAND"), CP_EEXIST
 * the name exists (including a stream still being deleted), CP_ELIMIT the shard limit. */
int cp_streams_create(cp_streams *s, cp_slice name, cp_stream_mode mode, uint32_t shard_count,
                      cp_err *err);

/* DeleteStream: the stream turns DELETING (new calls on it get CP_ENOTFOUND), in-flight calls
 * finish, then its storage and checkpoints are removed. Durable: a crash mid-way finishes the
 * delete on the next open. Returns when the stream is gone. */
int cp_streams_delete(cp_streams *s, cp_slice name, cp_err *err);

typedef struct cp_stream_summary {
    char name[CP_STREAM_NAME_MAX + 1];
    cp_stream_status status;
    cp_stream_mode mode;
    int64_t created_ms;
} cp_stream_summary;

/* ListStreams: all streams in byte order of name. *out is a new array of *n entries (NULL when
 * empty); free it with cp_free. */
int cp_streams_list(cp_streams *s, cp_stream_summary **out, size_t *n, cp_err *err);

typedef struct cp_stream_shard_desc {
    uint32_t index;
    char id[CP_SHARD_ID_MAX];           /* "shardId-000000000000" */
    cp_hashkey start, end;              /* inclusive hash-key range */
    char start_key[CP_HASHKEY_STR_MAX]; /* StartingHashKey, decimal */
    char end_key[CP_HASHKEY_STR_MAX];   /* EndingHashKey, decimal */
    char starting_seq[CP_SEQ_STR_MAX];  /* StartingSequenceNumber */
    char ending_seq[CP_SEQ_STR_MAX];    /* EndingSequenceNumber; "" while open */
    int open;                           /* 1: receives new records */
    int64_t parent;                     /* ParentShardId index, -1 if none */
    int64_t adjacent_parent;            /* AdjacentParentShardId index, -1 if none */
    uint32_t nparents;                  /* all parents (UpdateShardCount may give >2) */
    uint32_t parents[8];                /* the first 8 of them */
} cp_stream_shard_desc;

typedef struct cp_stream_desc {
    char name[CP_STREAM_NAME_MAX + 1];
    cp_stream_status status;
    cp_stream_mode mode;
    int retention_hours;
    int64_t created_ms;
    size_t open_shards;
    size_t nshards;               /* listed shards: open and closed-but-not-expired */
    cp_stream_shard_desc *shards; /* ascending index */
} cp_stream_desc;

/* DescribeStream / ListShards. On CP_OK *out is new; free with cp_stream_desc_free. A DELETING
 * stream can still be described. */
int cp_streams_describe(cp_streams *s, cp_slice name, cp_stream_desc **out, cp_err *err);
/* NULL is a no-op. */
void cp_stream_desc_free(cp_stream_desc *d);

/* IncreaseStreamRetentionPeriod / DecreaseStreamRetentionPeriod. hours must be within
 * 24..8760 and not shorter (increase) / longer (decrease) than the current period; an equal
 * value is accepted. CP_EINVAL with the AWS wording otherwise. */
int cp_streams_increase_retention(cp_streams *s, cp_slice name, int hours, cp_err *err);
int cp_streams_decrease_retention(cp_streams *s, cp_slice name, int hours, cp_err *err);

/* UpdateShardCount (UNIFORM_SCALING). Every open shard is closed (EndingSequenceNumber = its
 * last record, or its StartingSequenceNumber when empty) and `target` children split the key
 * space evenly; each child's parents are the closed shards overlapping its range (Parent =
 * first, AdjacentParent = second; a child may overlap more, see nparents). New records route to
 * the children at once. Synchronous: the stream is ACTIVE again on return.
 * CP_EINVAL for ON_DEMAND streams or a target outside [ceil(open/2), 2*open]; CP_ELIMIT when the
 * shard limit would be exceeded; CP_EINUSE when the stream is not ACTIVE. */
int cp_streams_update_shard_count(cp_streams *s, cp_slice name, uint32_t target, cp_err *err);

/* Apply retention to every stream: trim records older than now_ms - retention (whole storage
 * units, so some older records may linger until their segment fills), and expire closed shards
 * whose newest record (and closing) is past retention: they vanish from describe and their
 * storage is deleted. The server calls this periodically. now_ms 0 = the clock. */
int cp_streams_trim(cp_streams *s, int64_t now_ms, cp_err *err);

/* ---------------------------------------------------------------- data plane */

/* One record of a put. All borrowed for the call. */
typedef struct cp_stream_put {
    cp_slice partition_key;     /* 1..256 characters (UTF-8) */
    cp_slice data;              /* may be empty */
    cp_slice explicit_hash_key; /* decimal, or empty for MD5(partition_key) */
    uint64_t source_id;         /* change-capture id, 0 for direct puts */
} cp_stream_put;

/* Per-record outcome, same order as the input. */
typedef struct cp_stream_put_result {
    int code;       /* CP_OK, or the failure of this record's shard append */
    uint32_t shard; /* routed shard index */
    uint64_t seq;   /* sequence value (render with cp_seq_format(shard, seq, ...)) */
    int64_t arrival_ms;
} cp_stream_put_result;

/* PutRecord / PutRecords. Validates every record first: any invalid one fails the whole call
 * (CP_EINVAL: partition key length, ExplicitHashKey; CP_ETOOBIG: key + data over the record
 * limit) with nothing written. Then records are grouped by shard and each group is appended
 * all-or-nothing and durably; groups are independent, so on return some records may have
 * failed (res[i].code != CP_OK, counted in *failed) while the rest are durable: PutRecords'
 * per-record errors. Returns CP_OK in that case too. CP_EINVAL also for n == 0. */
int cp_streams_put(cp_streams *s, cp_slice name, const cp_stream_put *recs, size_t n,
                   cp_stream_put_result *res, size_t *failed, cp_err *err);

/* GetShardIterator: the read position (a backend sequence value, see backend.h) that an
 * iterator of `type` starts at. seq is the StartingSequenceNumber string for the two sequence
 * types (ignored otherwise); ts_ms the timestamp for AT_TIMESTAMP.
 * - TRIM_HORIZON: the oldest retained record. LATEST: after the newest record.
 * - AT/AFTER_SEQUENCE_NUMBER: at/after that record. The shard's StartingSequenceNumber is always
 *   accepted (= trim horizon); a record that was trimmed starts at the trim horizon.
 * - AT_TIMESTAMP: first record that arrived at or after ts_ms (trim horizon when older).
 * CP_ENOTFOUND unknown shard (or expired); CP_EINVAL: malformed sequence number, one encoding
 * another shard, one that no record has, a missing/unexpected sequence number, or a timestamp
 * in the future. A closed shard yields positions as usual. */
int cp_streams_iterator(cp_streams *s, cp_slice name, uint32_t shard, cp_stream_iter_type type,
                        cp_slice seq, int64_t ts_ms, uint64_t *pos, cp_err *err);

/* Result of a read. Initialise with CP_STREAM_READ_INIT, free with cp_stream_read_free; reused
 * across reads by one thread. */
typedef struct cp_stream_read {
    cp_stream_batch batch; /* records in sequence order; slices valid until the next read */
    uint64_t next_pos;     /* position for the next read (NextShardIterator) */
    int64_t millis_behind; /* MillisBehindLatest: 0 when caught up with the shard */
    int shard_end;         /* closed shard fully read: no NextShardIterator, see children */
    size_t nchildren;
    uint32_t children[16]; /* ChildShards' indexes when shard_end */
} cp_stream_read;

#define CP_STREAM_READ_INIT ((cp_stream_read){.batch = CP_STREAM_BATCH_INIT})
/* Release the batch memory; *r is CP_STREAM_READ_INIT afterwards. */
void cp_stream_read_free(cp_stream_read *r);

/* GetRecords from position `pos` (from cp_streams_iterator or a previous next_pos): up to
 * max_records (>= 1) records and about max_bytes of keys + data (at least one record when any
 * is available). Never waits for new records. A position whose records were trimmed continues
 * at the trim horizon. CP_ENOTFOUND unknown/expired shard, CP_EINVAL max_records == 0. */
int cp_streams_read(cp_streams *s, cp_slice name, uint32_t shard, uint64_t pos, size_t max_records,
                    size_t max_bytes, cp_stream_read *out, cp_err *err);

/* ---------------------------------------------------------------- recovery and consumers */

/* The source_id of the newest durable record put with a non-zero source_id on that shard (0 if
 * none): after a crash the change-capture forwarder skips every change up to it. One read of the
 * shard's last record. CP_ENOTFOUND unknown shard. */
int cp_streams_last_source(cp_streams *s, cp_slice name, uint32_t shard, uint64_t *source_id,
                           cp_err *err);

/* Record durably (atomic file replace, fsynced) that `consumer` processed shard `shard` up to
 * and including sequence value `seq`. Returns after it is durable. consumer: 1..256 bytes.
 * CP_EINVAL bad consumer name; CP_ENOTFOUND unknown shard. */
int cp_streams_checkpoint_set(cp_streams *s, cp_slice name, cp_slice consumer, uint32_t shard,
                              uint64_t seq, cp_err *err);
/* The checkpoint stored by cp_streams_checkpoint_set; CP_ENOTFOUND when there is none (resume
 * with TRIM_HORIZON or LATEST as the consumer prefers). Resume with AFTER_SEQUENCE_NUMBER. */
int cp_streams_checkpoint_get(cp_streams *s, cp_slice name, cp_slice consumer, uint32_t shard,
                              uint64_t *seq, cp_err *err);
/* Forget every checkpoint of `consumer` on this stream (no-op when it has none). */
int cp_streams_checkpoint_delete(cp_streams *s, cp_slice name, cp_slice consumer, cp_err *err);

#endif
