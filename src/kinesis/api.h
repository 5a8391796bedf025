/* SPDX-License-Identifier: MIT */
/*
 * kinesis api: the Kinesis Data Streams JSON 1.1 API (X-Amz-Target Kinesis_20131202.*) over a
 * cp_streams manager (stream/stream.h). It validates request shapes with AWS's exact exception
 * types and messages, turns read positions into opaque, authenticated, expiring ShardIterator
 * strings, renders every response, and maps manager codes to AWS errors through the single
 * error path (aws/errors.h). Storage, routing, sequence numbers, retention and resharding all
 * live in the manager; this layer keeps only stream tags (in memory) and the token key.
 *
 * Operations: CreateStream, DeleteStream, DescribeStream, DescribeStreamSummary, ListStreams,
 * ListShards, PutRecord, PutRecords, GetShardIterator, GetRecords,
 * IncreaseStreamRetentionPeriod, DecreaseStreamRetentionPeriod, UpdateShardCount,
 * AddTagsToStream, ListTagsForStream, RemoveTagsFromStream. StreamARN
 * (arn:aws:kinesis:<region>:000000000000:stream/<name>) is accepted wherever StreamName is.
 * PutRecord and PutRecords are parsed in one pass with the cp_json lexer (base64 decoded
 * straight into one buffer); the rest use the same lexer through a small field table.
 *
 * Differences from AWS (for the compatibility docs): streams are ACTIVE as soon as
 * CreateStream/UpdateShardCount answer (no CREATING/UPDATING window); tags live in memory and
 * are lost on restart; ListShards' AT_TIMESTAMP/FROM_TIMESTAMP filters return every shard still
 * within retention (a superset; consumers follow parent links); ListStreams NextTokens do not
 * expire; iterators issued before a restart are answered with ExpiredIteratorException unless
 * a token key is configured; no SplitShard/MergeShards, enhanced fan-out, encryption or
 * UpdateStreamMode; shape-error wording follows kinesalite/kinesis-mock where AWS's exact text
 * is not recorded.
 *
 * Threads: after cp_kinesis_api_register the handlers run concurrently on every server worker
 * thread; the api object is immutable then except for the tag table, which has its own lock.
 */
#ifndef CP_KINESIS_API_H
#define CP_KINESIS_API_H

#include <stddef.h>
#include <stdint.h>

#include "aws/proto.h"
#include "core/buf.h"
#include "stream/stream.h"

/* The account id in ARNs and messages ("Stream S under account 000000000000 not found."). */
#define CP_KINESIS_ACCOUNT "000000000000"

/* ---------------------------------------------------------------- throttling hook */

/* The unit of work a limiter is asked about. */
typedef enum cp_kinesis_usage_op {
    CP_KINESIS_USAGE_PUT,          /* one record of PutRecord/PutRecords */
    CP_KINESIS_USAGE_GET_RECORDS,  /* one GetRecords call */
    CP_KINESIS_USAGE_GET_ITERATOR, /* one GetShardIterator call */
} cp_kinesis_usage_op;

/* All slices borrow the request: valid for the duration of the callback only. */
typedef struct cp_kinesis_usage {
    cp_kinesis_usage_op op;
    cp_slice stream;        /* stream name */
    cp_stream_mode mode;    /* PROVISIONED or ON_DEMAND (their limits differ) */
    uint32_t shard;         /* shard index ("shardId-%012u") */
    cp_slice partition_key; /* PUT: the record's partition key (per-key limits); else empty */
    size_t records;         /* PUT: 1. GET_RECORDS: 0 in admit, records returned in charge */
    size_t bytes;           /* PUT: partition key + data. GET_RECORDS: 0 in admit, partition
                             * keys + data returned in charge. GET_ITERATOR: 0 */
} cp_kinesis_usage;

/* Throttling emulation (--emulate-limits). The api asks `admit` before each unit of work;
 * a refusal becomes ProvisionedThroughputExceededException ("Rate exceeded for shard ...") for
 * PutRecord, GetRecords and GetShardIterator, and a per-record failure with that ErrorCode in
 * PutRecords (the other records still go in). Routing for the question uses the stream's open
 * shards at the time of the call, so a concurrent reshard may charge a put to its old shard.
 * Both callbacks run on server worker threads, concurrently, and must not block for long. */
typedef struct cp_kinesis_limiter {
    void *ctx; /* passed back to the callbacks */
    /* Return 0 to admit the work, non-zero to refuse it. Required. */
    int (*admit)(void *ctx, const cp_kinesis_usage *u);
    /* Optional: what a GetRecords call actually returned, after the fact (AWS throttles the
     * calls after a large response rather than the large response itself). */
    void (*charge)(void *ctx, const cp_kinesis_usage *u);
} cp_kinesis_limiter;

/* ---------------------------------------------------------------- lifecycle */

typedef struct cp_kinesis_api_cfg {
    /* Region written into StreamARNs (copied). NULL: the region of each request's SigV4
     * credential scope (the router's default region for unsigned requests). Incoming ARNs are
     * accepted with any region. */
    const char *region;
    /* NULL: no throttling (the default). The struct is copied; its ctx is borrowed for the
     * api's lifetime. */
    const cp_kinesis_limiter *limiter;
    /* Largest Data blob per record (the model's 1 MiB; ValidationException above). Keep it in
     * line with cp_streams_opts.max_record_bytes, which also counts the partition key.
     * 0 = 1048576. */
    size_t max_record_bytes;
    /* Largest PutRecords payload (data plus partition keys; InvalidArgumentException "Records
     * size exceeds 5 MB limit"). 0 = 5 MiB. */
    size_t max_request_bytes;
    /* Key that authenticates ShardIterator and NextToken strings (HMAC-SHA256), borrowed for
     * the call and copied. NULL: 32 random bytes per process, so iterators handed out before a
     * restart are answered with ExpiredIteratorException (clients fetch a new one, as they do
     * after 5 minutes). A configured key keeps iterators valid across restarts. */
    const unsigned char *token_key;
    size_t token_key_len;
    /* Iterator lifetime; 0 = 300000 (AWS: 5 minutes). ListShards NextTokens live as long. */
    int64_t iterator_ttl_ms;
} cp_kinesis_api_cfg;

typedef struct cp_kinesis_api cp_kinesis_api;

/* Returns a new api over `streams` (borrowed: it must outlive the api); cfg (may be NULL for
 * all defaults) is copied. Free with cp_kinesis_api_free. Never fails (aborts on OOM). */
cp_kinesis_api *cp_kinesis_api_new(cp_streams *streams, const cp_kinesis_api_cfg *cfg);

/* Register the operations under "Kinesis_20131202" on `router` (the api is borrowed by the
 * router until both are freed; register before serving starts). Returns CP_OK, or CP_EEXIST
 * when the prefix is already registered. */
int cp_kinesis_api_register(cp_kinesis_api *api, cp_aws_router *router);

/* Free the api. No handler may be running. NULL is a no-op. */
void cp_kinesis_api_free(cp_kinesis_api *api);

#endif
