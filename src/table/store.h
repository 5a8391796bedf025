/* SPDX-License-Identifier: MIT */
/*
 * The item store: DynamoDB tables materialised in LMDB, made durable by a write-ahead change log.
 *
 * Every mutation that changes an item produces one binary change record (table/change.h). A
 * group of writes from many threads is applied by one committer thread inside one LMDB write
 * transaction; their change records are appended to the change log (a cp_seglog) and fsync'd
 * once; only then is the LMDB transaction committed (without its own fsync) together with the
 * log position it has applied, and the writers are acknowledged. So the log is the source of
 * truth: a write is durable exactly when its change record is, LMDB never holds a write whose
 * record is not durable, and on open the store replays the log from LMDB's applied position.
 * Readers use LMDB read transactions and see every acknowledged write.
 *
 * Threads: every function is thread-safe unless noted. Writes block until durable.
 */
#ifndef CP_STORE_H
#define CP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/seglog.h"
#include "table/item.h"

typedef struct cp_db cp_db;

typedef struct cp_db_opts {
    const char *dir;      /* data directory; created if missing */
    size_t map_size;      /* LMDB map size (default 64 GiB; sparse) */
    int no_fsync;         /* benchmarks/tests only: skip the change log's fsync */
    size_t group_max_ops; /* cap on writes per group commit (default 16384) */
} cp_db_opts;

/* Open (create, recover) the store in opts->dir. On CP_OK *out is new; close with cp_db_close. */
int cp_db_open(const cp_db_opts *opts, cp_db **out, cp_err *err);
/* Stop the committer after the writes already queued, sync LMDB, close. NULL is a no-op. */
void cp_db_close(cp_db *db);

/* ---- Tables ---- */

#define CP_NAME_MAX 256

typedef struct cp_key_schema {
    char hash_name[CP_NAME_MAX];
    cp_av_type hash_type; /* CP_AV_S, CP_AV_N or CP_AV_B */
    char range_name[CP_NAME_MAX];
    cp_av_type range_type; /* 0 when the table has no sort key */
} cp_key_schema;

#define CP_MAX_DESTINATIONS 4

/* A Kinesis streaming destination of a table. */
typedef struct cp_table_destination {
    char stream_name[CP_NAME_MAX];
    int active;          /* 1 while enabled; disabled ones stay listed as DISABLED */
    int micro_precision; /* ApproximateCreationDateTimePrecision MICROSECOND */
    uint64_t from_lsn;   /* change records at or after this log position are forwarded */
} cp_table_destination;

typedef struct cp_table_info {
    uint32_t id; /* unique for the store's lifetime; never reused */
    char name[CP_NAME_MAX];
    cp_key_schema key;
    int64_t created_ms;
    char stream_view[32];          /* DynamoDB Streams StreamViewType, "" when disabled */
    uint64_t stream_from_lsn;      /* first log position of the current DynamoDB stream */
    int64_t stream_created_ms;     /* label of the current DynamoDB stream */
    int ndest;
    cp_table_destination dest[CP_MAX_DESTINATIONS];
    cp_buf desc; /* opaque JSON the API layer keeps with the table (billing, throughput...) */
} cp_table_info;

/* Release what cp_table_info holds (desc). */
void cp_table_info_clear(cp_table_info *t);

/* Create a table from info (id, created_ms assigned here; desc copied). CP_EEXIST if the name is
 * taken. Durable on return. */
int cp_db_create_table(cp_db *db, cp_table_info *info, cp_err *err);
/* Delete a table and all its items. CP_ENOTFOUND if absent. Durable on return. On CP_OK *out
 * (optional) receives the table as it was; clear it with cp_table_info_clear. */
int cp_db_delete_table(cp_db *db, const char *name, cp_table_info *out, cp_err *err);
/* Look a table up by name; on CP_OK fill *out (clear it afterwards). CP_ENOTFOUND if absent. */
int cp_db_get_table(cp_db *db, const char *name, cp_table_info *out, cp_err *err);
/* Same, by id. */
int cp_db_get_table_by_id(cp_db *db, uint32_t id, cp_table_info *out, cp_err *err);
/* Change a table's metadata: `edit` runs on the committer thread with the current info and may
 * change stream settings, destinations and desc (not name, id or key). A destination or stream
 * enabled here gets from_lsn = the log position of the next write. Durable on return. */
int cp_db_update_table(cp_db *db, const char *name,
                       int (*edit)(void *ctx, cp_table_info *t, cp_err *err), void *ctx,
                       cp_err *err);
/* Names of all tables in byte order, starting after `after` (NULL for the start), at most max.
 * Appends NUL-separated names to *out and returns the count via *n. */
int cp_db_list_tables(cp_db *db, const char *after, size_t max, cp_buf *out, size_t *n,
                      cp_err *err);
/* Item count and total item bytes (DynamoDB size) of a table. */
int cp_db_table_stats(cp_db *db, uint32_t table_id, uint64_t *items, uint64_t *bytes,
                      cp_err *err);

/* ---- Writes ---- */

typedef enum {
    CP_WRITE_PUT = 1, /* replace the whole item */
    CP_WRITE_DELETE,  /* delete by key */
    CP_WRITE_UPDATE,  /* new item = update(current) */
    CP_WRITE_CHECK,   /* condition only (TransactWriteItems ConditionCheck) */
} cp_write_kind;

typedef struct cp_write_op {
    cp_write_kind kind;
    const char *table; /* table name (borrowed) */
    cp_slice item;     /* PUT: the full item; others: an item holding the key attributes */
    /* Optional: decide on the current item (cur.len == 0 when absent). Return CP_OK to go on,
     * CP_ECONDITION to refuse, anything else is an error. Runs on the committer thread while it
     * holds the write lock: must not block. */
    int (*condition)(void *ctx, cp_slice cur, cp_err *err);
    /* UPDATE: write the new item into *out (empty on entry) from the current one; may fail with
     * CP_EINVAL (validation). Same thread rules as condition. */
    int (*update)(void *ctx, cp_slice cur, cp_buf *out, cp_err *err);
    void *ctx;
    int want_images; /* 1: fill old_item/new_item below (ReturnValues) */

    /* Results, owned by the caller (free with cp_write_op_clear). */
    int rc;              /* CP_OK, CP_ECONDITION, CP_EINVAL, CP_ENOTFOUND (no table), CP_ETXN */
    cp_err err;          /* detail when rc != CP_OK */
    int changed;         /* 1 when the op produced a change record */
    uint64_t lsn;        /* log position of the change record when changed */
    cp_buf old_item;     /* item before (want_images, or on CP_ECONDITION) */
    cp_buf new_item;     /* item after (want_images) */
} cp_write_op;

/* Free the result buffers of an op. */
void cp_write_op_clear(cp_write_op *op);

#define CP_WRITE_ATOMIC 1u /* all ops succeed or none is applied (TransactWriteItems) */

/* Apply ops in order and return after they are durable. Without CP_WRITE_ATOMIC each op
 * succeeds or fails alone (op->rc); with it, the first failing op keeps its rc and the others get
 * CP_ETXN, and nothing is written. Returns CP_OK when the call itself worked (inspect op->rc),
 * CP_EIO if the change log failed (nothing acknowledged), CP_ECLOSED while closing. */
int cp_db_write(cp_db *db, cp_write_op *ops, size_t n, unsigned flags, cp_err *err);

/* Validate the key attributes of `item` against the table's schema (presence, types, sizes,
 * non-empty) with DynamoDB's messages; `whole_item` selects the PutItem wording. */
int cp_db_check_key(const cp_key_schema *ks, cp_slice item, int whole_item, cp_err *err);
/* Build an item holding just the key attributes of `item` (appended to out). */
void cp_db_extract_key(const cp_key_schema *ks, cp_slice item, cp_buf *out);

/* ---- Reads ---- */

/* Fetch the item with the key attributes in `key` into *out (reset first). CP_ENOTFOUND when
 * absent or the table does not exist (err says which). */
int cp_db_get(cp_db *db, const char *table, cp_slice key, cp_buf *out, cp_err *err);

typedef enum {
    CP_RANGE_NONE = 0,
    CP_RANGE_EQ,
    CP_RANGE_LT,
    CP_RANGE_LE,
    CP_RANGE_GT,
    CP_RANGE_GE,
    CP_RANGE_BETWEEN,
    CP_RANGE_BEGINS_WITH,
} cp_range_op;

/* Called per item in key order; return 0 to continue, 1 to stop after this item, < 0 to abort
 * with that code. `item` is valid only during the call. */
typedef int (*cp_db_visit)(void *ctx, cp_slice item);

typedef struct cp_db_query {
    const char *table;
    cp_av hash;          /* partition key value */
    cp_range_op op;      /* sort-key condition */
    cp_av r1, r2;        /* operands (r2 for BETWEEN) */
    int backward;        /* ScanIndexForward = false */
    cp_slice start_key;  /* ExclusiveStartKey as an item, or empty */
} cp_db_query;

/* Visit the items of one partition that satisfy the sort-key condition. */
int cp_db_query_items(cp_db *db, const cp_db_query *q, cp_db_visit visit, void *ctx,
                      cp_err *err);

typedef struct cp_db_scan {
    const char *table;
    uint32_t segment, total_segments; /* total 0 or 1: the whole table */
    cp_slice start_key;               /* ExclusiveStartKey as an item, or empty */
} cp_db_scan;

/* Visit the items of a table (or one segment of it) in the store's deterministic order. */
int cp_db_scan_items(cp_db *db, const cp_db_scan *s, cp_db_visit visit, void *ctx, cp_err *err);

/* ---- Counters ---- */

typedef struct cp_db_counters {
    uint64_t ops;         /* write operations applied (each op of a cp_db_write) */
    uint64_t ops_refused; /* ops that failed: condition, validation, missing table */
    uint64_t changes;     /* change records committed (ops that changed an item) */
    uint64_t groups;      /* group commits (change-log fsyncs) */
} cp_db_counters;

/* Counters since open. Thread-safe. */
void cp_db_counters_get(cp_db *db, cp_db_counters *out);

/* ---- The change log ---- */

/* The store's change log, for change capture readers (cdc). Borrowed: valid until cp_db_close.
 * Payloads decode with cp_change_decode (table/change.h). */
cp_seglog *cp_db_log(cp_db *db);
/* Remove log segments older than before_ms that everyone has consumed (below keep_from). */
int cp_db_log_trim(cp_db *db, int64_t before_ms, uint64_t keep_from, cp_err *err);
/* A 16-byte random id made when the store was created (seeds change-record event ids). */
const unsigned char *cp_db_uuid(cp_db *db);

/* Small durable key/value metadata for other components (e.g. the change forwarder's cursor).
 * Written in its own LMDB transaction and synced before put returns (costs an fsync: callers
 * rate-limit frequent updates). CP_ENOTFOUND from get when absent. */
int cp_db_meta_put(cp_db *db, const char *key, cp_slice value, cp_err *err);
int cp_db_meta_get(cp_db *db, const char *key, cp_buf *out, cp_err *err);

#endif
