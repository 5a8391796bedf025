/* SPDX-License-Identifier: MIT */
/*
 * Rendering change records (table/change.h) as the JSON AWS emits: the payload DynamoDB puts
 * into a Kinesis streaming destination, and the record the DynamoDB Streams API returns. Both
 * are pure functions of the record and its log position, so re-rendering after a crash yields
 * the same bytes (the delivery stage relies on that for exactly-once output).
 */
#ifndef CP_RECORD_H
#define CP_RECORD_H

#include <stdint.h>

#include "core/buf.h"
#include "table/change.h"

typedef struct cp_cdc_source {
    const char *table;         /* table name */
    const char *region;        /* e.g. "us-east-1" */
    const unsigned char *uuid; /* cp_db_uuid(): 16 bytes that make event ids unique */
} cp_cdc_source;

/* Append the Kinesis-destination JSON of the record at log position `lsn`:
 * {"awsRegion","eventID" (UUID),"eventName","userIdentity":null,"recordFormat","tableName",
 *  "dynamodb":{"ApproximateCreationDateTime" (ms, or us when micro),"Keys","NewImage",
 *  "OldImage","SizeBytes"},"eventSource":"aws:dynamodb"}. */
void cp_cdc_render_kinesis(const cp_cdc_source *src, const cp_change *c, uint64_t lsn, int micro,
                           cp_buf *out);

/* Append the DynamoDB Streams GetRecords JSON of the record, images filtered by view type
 * ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"); `seq` is its SequenceNumber. */
void cp_cdc_render_streams(const cp_cdc_source *src, const cp_change *c, uint64_t lsn,
                           const char *view, const char *seq, cp_buf *out);

/* The Kinesis partition key for an item: 32 upper-case hex digits derived from the table name
 * and the item's key attributes, so every change of one item lands on one shard. */
void cp_cdc_partition_key(const char *table, cp_slice keys, char out[33]);

/* The record's SizeBytes: DynamoDB size of keys plus the images present. */
size_t cp_cdc_size_bytes(const cp_change *c);

#endif
