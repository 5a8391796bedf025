/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the item store's files: store.c (keys, tables, the committer, recovery)
 * and store_read.c (reads). Not part of the store's API.
 */
#ifndef CP_STORE_INT_H
#define CP_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

#include "table/store.h"

struct request;

struct cp_db {
    MDB_env *env;
    MDB_dbi meta, tables, items;
    cp_seglog *log;
    unsigned char uuid[16];
    size_t group_max;

    pthread_rwlock_t tables_lock; /* guards the cache below for readers */
    cp_table_info **cache;        /* sorted by name */
    size_t ncache;
    uint32_t next_table_id;

    pthread_mutex_t mu;
    pthread_cond_t wake;
    struct request *head, *tail;
    int closing;
    pthread_t committer;
    int64_t last_ts_us;
    _Atomic uint64_t applied; /* log position after the last applied record */
    _Atomic uint64_t ops, ops_refused, changes, groups;
};

/* Key layout: u32be table id | u64be hash(partition key) | escaped partition key | 00 00 |
 * sort key bytes (see store.c). */
void cp__store_key_prefix(uint32_t table_id, cp_av hash, cp_buf *out);
/* The full key of an item whose key attributes were validated. */
void cp__store_item_key(uint32_t table_id, const cp_key_schema *ks, cp_slice item, cp_buf *out);
/* An LMDB failure as a CP_E* code with a message. */
int cp__store_mdb_fail(cp_err *err, int mrc, const char *what);
/* The cached table named `name` (caller holds tables_lock, or is the committer); *at (optional)
 * gets its index or insertion point. NULL when absent. */
cp_table_info *cp__store_cache_find(cp_db *db, const char *name, size_t *at);

#endif
