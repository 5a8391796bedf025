/* SPDX-License-Identifier: MIT */
/*
 * A batch of records moving through a delivery stream's processors. Each record keeps its
 * source position (for exactly-once bookkeeping and error documents), its current bytes, its
 * outcome and the partition keys processors extracted. Record bytes live in the batch's arena,
 * whose blocks never move, so slices stay valid until the batch is reset.
 *
 * Threads: a batch belongs to one thread at a time.
 */
#ifndef CP_BATCH_H
#define CP_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Firehose per-record outcomes. */
typedef enum {
    CP_REC_OK = 0,  /* continue down the pipeline */
    CP_REC_DROPPED, /* gone, counted as success, no error document */
    CP_REC_FAILED,  /* goes to error output with error_type/error_code/error_message */
} cp_rec_result;

#define CP_PKEY_MAX 50 /* partition keys per record (jq: at most 50) */

typedef struct cp_pkey {
    cp_slice name;  /* in the batch arena */
    cp_slice value; /* in the batch arena; never empty for a valid key */
} cp_pkey;

typedef struct cp_drec {
    /* Source position: the Kinesis shard and sequence value (backend position), or for
     * DirectPut the delivery stream's own intake log position (shard = 0). */
    uint32_t shard;
    uint64_t seq;
    uint32_t sub;          /* index of a sub-record after de-aggregation, else 0 */
    int64_t arrival_ms;    /* approximate arrival time at the source */
    cp_slice source_pk;    /* Kinesis partition key (empty for DirectPut) */
    cp_slice raw;          /* the original bytes (rawData of error documents) */
    cp_slice data;         /* current bytes, replaced by processors */
    cp_rec_result result;
    const char *error_type;  /* "processing-failed", "partitioning-failed", ... (static) */
    const char *error_code;  /* "Lambda.FunctionError", ... (static) */
    cp_slice error_message;  /* in the batch arena */
    uint32_t attempts;       /* attemptsMade for error documents */
    uint16_t nlambda_keys, nquery_keys;
    cp_pkey *lambda_keys;    /* metadata.partitionKeys from Lambda, in the arena */
    cp_pkey *query_keys;     /* keys from the MetadataExtraction jq query, in the arena */
} cp_drec;

typedef struct cp_batch_block cp_batch_block;

typedef struct cp_batch {
    cp_drec *recs;
    size_t n, cap;
    cp_batch_block *blocks; /* arena: a list of blocks, newest first */
    size_t used;            /* bytes used in the newest block */
    size_t arena_bytes;     /* bytes handed out since the last reset */
} cp_batch;

#define CP_BATCH_INIT ((cp_batch){0})

/* Forget the records and the arena contents, keep the memory. */
void cp_batch_reset(cp_batch *b);
/* Release everything; the batch is CP_BATCH_INIT afterwards. */
void cp_batch_free(cp_batch *b);
/* Append a record (zeroed, result CP_REC_OK) and return it; valid until the next add. */
cp_drec *cp_batch_add(cp_batch *b);
/* n bytes in the arena (16-aligned), valid until reset. */
void *cp_batch_alloc(cp_batch *b, size_t n);
/* Copy bytes into the arena. */
cp_slice cp_batch_copy(cp_batch *b, cp_slice s);
/* Mark a record failed with a static type/code and a message copied into the arena. */
void cp_drec_fail(cp_batch *b, cp_drec *r, const char *error_type, const char *error_code,
                  const char *message);

#endif
