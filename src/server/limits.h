/* SPDX-License-Identifier: MIT */
/*
 * Throughput emulation for `serve --emulate-limits`: token buckets that refuse DynamoDB and
 * Kinesis work beyond AWS's on-demand limits, so clients can exercise their retry logic here.
 * One object implements both API hooks (cp_dynamo_throttle in dynamo/dynamo.h and
 * cp_kinesis_limiter in kinesis/api.h); the APIs turn a refusal into AWS's errors.
 *
 * Buckets (all refill continuously; "rate" per second, "capacity" the most they hold):
 *   DynamoDB partition key  1,000 WCU/s and 3,000 RCU/s, capacity 300 s of unused capacity
 *                           (AWS's burst window), a new key starts with 1 s worth
 *   DynamoDB table          40,000 WCU/s and 40,000 RCU/s, same burst rule
 *   Kinesis shard, writes   1 MiB/s (partition keys + data) and 1,000 records/s, capacity 1 s
 *   Kinesis shard, reads    5 GetRecords calls/s and 2 MiB/s, capacity 1 s; the bytes a call
 *                           returned are charged afterwards and may drive the bucket negative,
 *                           so calls after a large response wait (AWS's behaviour)
 *   Kinesis shard iterators 5 GetShardIterator calls/s, capacity 1 s
 * A unit of work bigger than a bucket's capacity is admitted when the bucket is full and leaves
 * it in debt, so nothing is refused forever. The choices are explained in docs/limits.md.
 *
 * Memory is bounded: buckets live in a striped hash map of at most max_entries entries; past
 * that the least recently used bucket of the stripe is dropped (and starts afresh if its key
 * comes back). Keys longer than 64 bytes are stored as their SHA-256 digest.
 *
 * Threads: admit/charge run concurrently on the server's worker threads (one short lock per
 * bucket touched, never held across another); new/free while nothing calls the hooks.
 */
#ifndef CP_LIMITS_H
#define CP_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "dynamo/dynamo.h"
#include "kinesis/api.h"

typedef struct cp_limits cp_limits;

/* Every field 0 (or NULL) means AWS's default written after it. */
typedef struct cp_limits_cfg {
    double partition_rcu;        /* read units per second per partition key: 3000 */
    double partition_wcu;        /* write units per second per partition key: 1000 */
    double table_rcu;            /* read units per second per table: 40000 */
    double table_wcu;            /* write units per second per table: 40000 */
    double dynamo_burst_s;       /* unused capacity a DynamoDB bucket keeps, in seconds: 300 */
    double dynamo_start_s;       /* tokens a new DynamoDB bucket holds, in seconds: 1 */
    double shard_write_bytes;    /* per shard per second: 1048576 */
    double shard_write_records;  /* per shard per second: 1000 */
    double shard_read_bytes;     /* per shard per second: 2097152 */
    double shard_read_calls;     /* GetRecords per shard per second: 5 */
    double shard_iterator_calls; /* GetShardIterator per shard per second: 5 */
    size_t max_entries;          /* buckets kept (partition keys + tables + shards): 65536 */
    /* Monotonic clock in nanoseconds (tests inject one); NULL: cp_clock_mono_ns. */
    int64_t (*now_ns)(void *clock_ctx);
    void *clock_ctx;
} cp_limits_cfg;

/* Counters since creation (each a snapshot of relaxed atomics). */
typedef struct cp_limits_stats {
    uint64_t dynamo_admitted;  /* admit calls answered yes */
    uint64_t dynamo_throttled; /* admit calls answered no */
    uint64_t kinesis_admitted; /* records and read calls admitted */
    uint64_t kinesis_throttled;
    uint64_t evicted; /* buckets dropped to stay within max_entries */
    size_t entries;   /* buckets held now */
} cp_limits_stats;

/* A new limiter; cfg may be NULL for all defaults and is copied. Free with cp_limits_free.
 * Never fails (aborts on OOM, as cp_malloc does). */
cp_limits *cp_limits_new(const cp_limits_cfg *cfg);

/* Free the limiter. Nothing may be calling its hooks; the structs returned below die with it.
 * NULL is a no-op. */
void cp_limits_free(cp_limits *l);

/* The DynamoDB hook to put in cp_dynamo_cfg.throttle, owned by l (valid until cp_limits_free).
 * Returns NULL when l is NULL, so `.throttle = cp_limits_dynamo(maybe_null)` reads naturally. */
const cp_dynamo_throttle *cp_limits_dynamo(cp_limits *l);

/* The Kinesis hook to put in cp_kinesis_api_cfg.limiter, owned by l; NULL when l is NULL. */
const cp_kinesis_limiter *cp_limits_kinesis(cp_limits *l);

/* Fill *out with the counters. Safe while the hooks run. */
void cp_limits_get_stats(cp_limits *l, cp_limits_stats *out);

#endif
