/* SPDX-License-Identifier: MIT */
/*
 * dynamo: the DynamoDB API (DynamoDB_20120810.*, AWS JSON 1.0) and the DynamoDB Streams API
 * (DynamoDBStreams_20120810.*) over the item store (table/store.h). Requests are validated with
 * AWS's messages, translated into store reads and writes, and answered in AWS's shapes; the
 * Streams API reads the store's change log. Kinesis streaming destinations are configured here
 * and relayed by the outbox (cdc/outbox.h).
 *
 * Operations: CreateTable, DescribeTable, ListTables, DeleteTable, UpdateTable, PutItem,
 * GetItem, UpdateItem, DeleteItem, BatchWriteItem, BatchGetItem, Query, Scan,
 * TransactWriteItems, TransactGetItems, Enable/Disable/Describe/UpdateKinesisStreamingDestination;
 * Streams: ListStreams, DescribeStream, GetShardIterator, GetRecords.
 *
 * Threads: after cp_dynamo_api_register, handlers run concurrently on every server worker
 * thread; the api object itself is safe for that. new/register/free run on one thread while
 * nothing is being served.
 */
#ifndef CP_DYNAMO_H
#define CP_DYNAMO_H

#include <stddef.h>
#include <stdint.h>

#include "aws/proto.h"
#include "stream/stream.h"
#include "table/store.h"

typedef struct cp_dynamo_api cp_dynamo_api;

/* What a data-plane request is about to consume, for throughput emulation. */
typedef struct cp_dynamo_usage {
    const char *table;  /* table name */
    cp_slice hash_key;  /* order-preserving bytes of the partition key (cp_av_key_bytes); empty
                           for Query/Scan over several partitions */
    double read_units;  /* read capacity units (ReturnConsumedCapacity arithmetic) */
    double write_units; /* write capacity units */
    int provisioned;    /* 1: the table's BillingMode is PROVISIONED */
} cp_dynamo_usage;

/* Throughput emulation hook (--emulate-limits). Versioned like every ops struct. */
#define CP_DYNAMO_THROTTLE_ABI 1
typedef struct cp_dynamo_throttle {
    int abi; /* CP_DYNAMO_THROTTLE_ABI */
    /* Called on the request's worker thread before a read or write is performed (batch
     * operations call it once per item). Return CP_OK to admit, CP_EAGAIN to throttle: single
     * operations then fail with ProvisionedThroughputExceededException (PROVISIONED tables) or
     * ThrottlingException (on demand), batch operations return the item in UnprocessedItems /
     * UnprocessedKeys (and fail only when nothing could be processed). Must not block long.
     * Units are estimates made before the operation (writes count the new item only). */
    int (*admit)(void *ctx, const cp_dynamo_usage *u);
    void *ctx;
} cp_dynamo_throttle;

typedef struct cp_dynamo_cfg {
    /* Account id in ARNs; NULL = "000000000000". */
    const char *account;
    /* Query/Scan read size per page; 0 = 1 MiB (AWS). */
    size_t page_bytes;
    /* BatchGetItem response cap; 0 = 16 MiB (AWS). */
    size_t batch_get_bytes;
    /* DescribeTable ItemCount/TableSizeBytes cache age (AWS refreshes them about every 6 h);
     * 0 = 60 s, < 0 = always fresh. */
    int64_t stats_max_age_ms;
    /* Streams shard iterator lifetime; 0 = 15 min (AWS). */
    int64_t iterator_ttl_ms;
    /* Change-log records GetRecords examines per call before it returns (other tables'
     * records are skipped over); 0 = 20000. */
    size_t get_records_scan;
    /* Throughput emulation (--emulate-limits); NULL: none. Borrowed for the api's life. */
    const cp_dynamo_throttle *throttle;
} cp_dynamo_cfg;

/*
 * Returns a new API object over db and streams (both borrowed for the object's lifetime; cfg
 * may be NULL for defaults and is copied). streams may be NULL: Kinesis destinations are then
 * accepted without checking that the stream exists. Free with cp_dynamo_api_free.
 */
cp_dynamo_api *cp_dynamo_api_new(cp_db *db, cp_streams *streams, const cp_dynamo_cfg *cfg);

/*
 * Register the DynamoDB_20120810 and DynamoDBStreams_20120810 services on the router (the api
 * is borrowed by the router: free the router first, or at least stop serving). Returns CP_OK,
 * or CP_EEXIST when either prefix is already registered (nothing is registered then).
 */
int cp_dynamo_api_register(cp_dynamo_api *api, cp_aws_router *router);

/* Release the API object. NULL is a no-op. */
void cp_dynamo_api_free(cp_dynamo_api *api);

#endif
