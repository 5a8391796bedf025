/* SPDX-License-Identifier: MIT */
/*
 * The outbox relay: one thread that reads the store's change log in order and appends each
 * change record, rendered as DynamoDB's Kinesis-destination JSON, to the Kinesis stream(s) the
 * table streams to. Exactly once across crashes: each stream record carries its change's log
 * position + 1 as source_id (0 marks direct puts); the relay persists a cursor after appends
 * are durable, and after a restart (or a failed append) it asks every shard for the last
 * source_id it holds and skips
 * the changes that already arrived. Because one item's changes always route to one shard and
 * are appended in log order, that check is exact.
 *
 * Threads: start/stop from one thread; stats and sync from any.
 */
#ifndef CP_OUTBOX_H
#define CP_OUTBOX_H

#include <stdint.h>

#include "core/err.h"
#include "stream/stream.h"
#include "table/store.h"

typedef struct cp_outbox cp_outbox;

typedef struct cp_outbox_opts {
    const char *region;   /* awsRegion in records; NULL = "us-east-1" */
    size_t batch_records; /* change records per read/append round; 0 = 4096 */
} cp_outbox_opts;

typedef struct cp_outbox_stats {
    uint64_t cursor;     /* change-log position everything before which is handled */
    uint64_t forwarded;  /* stream records appended */
    uint64_t duplicates; /* changes skipped because the stream already held them */
    uint64_t dropped;    /* changes whose destination stream no longer exists */
    uint64_t retries;    /* failed append rounds that were retried */
} cp_outbox_stats;

/* Start relaying from the persisted cursor. db and streams are borrowed until cp_outbox_stop.
 * On CP_OK *out is running. */
int cp_outbox_start(cp_db *db, cp_streams *streams, const cp_outbox_opts *opts, cp_outbox **out,
                    cp_err *err);
/* Stop the thread (finishing the current round) and free. NULL is a no-op. */
void cp_outbox_stop(cp_outbox *ob);
/* Wait until every change durable at the time of the call has been relayed, or timeout_ms
 * passes (CP_EAGAIN). */
int cp_outbox_sync(cp_outbox *ob, int64_t timeout_ms);
void cp_outbox_stats_get(cp_outbox *ob, cp_outbox_stats *out);

#endif
