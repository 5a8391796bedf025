/* SPDX-License-Identifier: MIT */
/*
 * The item store: LMDB holds the items, the change log (cp_seglog) makes them durable.
 * See store.h for the commit protocol; this file has keys, table metadata, the committer
 * (group commit + recovery) and the change-log accessors; reads are in store_read.c.
 */
#include "table/store.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/mem.h"
#include "table/change.h"
#include "table/store_int.h"

#define DEFAULT_MAP_SIZE  ((size_t) 64 << 30)
#define DEFAULT_GROUP_MAX 16384

/* ------------------------------------------------------------------------------------------
 * Keys: u32be table id | u64be hash(partition key) | escaped partition key | 00 00 | sort key.
 * The hash prefix spreads partitions evenly over the key space, so Scan segments are key
 * ranges; escaping (00 -> 00 ff) keeps a partition's keys contiguous and prefix-free.
 * ---------------------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void cp__store_key_prefix(uint32_t table_id, cp_av hash, cp_buf *out)
{
    cp_buf hk = CP_BUF_INIT;
    cp_av_key_bytes(hash, &hk);
    cp_buf_put_u32be(out, table_id);
    cp_buf_put_u64be(out, mix64(cp_fnv1a64(hk.p, hk.len)));
    const char *p = hk.p, *e = hk.p + hk.len;
    while (p < e) {
        const char *z = memchr(p, 0, (size_t) (e - p));
        size_t n = z ? (size_t) (z - p) : (size_t) (e - p);
        cp_buf_append(out, p, n);
        p += n;
        if (z) {
            cp_buf_append(out, "\0\xff", 2);
            p++;
        }
    }
    cp_buf_append(out, "\0\0", 2);
    cp_buf_free(&hk);
}

/* Full key of an item whose key attributes were validated. */
void cp__store_item_key(uint32_t table_id, const cp_key_schema *ks, cp_slice item, cp_buf *out)
{
    cp_av h, r;
    cp_item_find(item, cp_slice_str(ks->hash_name), &h);
    cp__store_key_prefix(table_id, h, out);
    if (ks->range_type && cp_item_find(item, cp_slice_str(ks->range_name), &r)) {
        cp_av_key_bytes(r, out);
    }
}

static int key_attr_check(const char *name, cp_av_type want, cp_slice item, size_t max,
                          int whole_item, cp_err *err)
{
    cp_av v;
    if (!cp_item_find(item, cp_slice_str(name), &v)) {
        if (whole_item) {
            return cp_err_set(err, CP_EINVAL,
                              "One or more parameter values were invalid: Missing the key %s in "
                              "the item",
                              name);
        }
        return cp_err_set(err, CP_EINVAL, "The provided key element does not match the schema");
    }
    if (v.type != want) {
        if (whole_item) {
            return cp_err_set(err, CP_EINVAL,
                              "One or more parameter values were invalid: Type mismatch for key "
                              "%s expected: %s actual: %s",
                              name, cp_av_type_name(want), cp_av_type_name(v.type));
        }
        return cp_err_set(err, CP_EINVAL, "The provided key element does not match the schema");
    }
    cp_slice b = cp_av_bytes(v);
    if (b.len == 0) {
        return cp_err_set(err, CP_EINVAL,
                          "One or more parameter values are not valid. The AttributeValue for a "
                          "key attribute cannot contain an empty %s value. Key: %s",
                          want == CP_AV_S ? "string" : "binary", name);
    }
    if (b.len > max) {
        if (max == CP_HASH_KEY_MAX) {
            return cp_err_set(err, CP_EINVAL,
                              "One or more parameter values were invalid: Size of hashkey has "
                              "exceeded the maximum size limit of2048 bytes");
        }
        return cp_err_set(err, CP_EINVAL,
                          "One or more parameter values were invalid: Aggregated size of all "
                          "range keys has exceeded the size limit of 1024 bytes");
    }
    return CP_OK;
}

int cp_db_check_key(const cp_key_schema *ks, cp_slice item, int whole_item, cp_err *err)
{
    int rc = key_attr_check(ks->hash_name, ks->hash_type, item, CP_HASH_KEY_MAX, whole_item, err);
    if (rc == CP_OK && ks->range_type) {
        rc = key_attr_check(ks->range_name, ks->range_type, item, CP_RANGE_KEY_MAX, whole_item,
                            err);
    }
    if (rc == CP_OK && !whole_item) {
        /* A Key parameter must hold exactly the key attributes. */
        uint32_t want = ks->range_type ? 2 : 1;
        if (cp_item_count(item) != want) {
            rc = cp_err_set(err, CP_EINVAL,
                            "The provided key element does not match the schema");
        }
    }
    return rc;
}

void cp_db_extract_key(const cp_key_schema *ks, cp_slice item, cp_buf *out)
{
    cp_item_builder b;
    cp_item_builder_init(&b, out);
    cp_item_begin(&b);
    cp_av v;
    if (cp_item_find(item, cp_slice_str(ks->hash_name), &v)) {
        cp_item_put_name(&b, cp_slice_str(ks->hash_name));
        cp_item_put_av(&b, v);
    }
    if (ks->range_type && cp_item_find(item, cp_slice_str(ks->range_name), &v)) {
        cp_item_put_name(&b, cp_slice_str(ks->range_name));
        cp_item_put_av(&b, v);
    }
    cp_item_end(&b);
}

/* ------------------------------------------------------------------------------------------
 * Table metadata: binary records in the "tables" database, cached in memory (sorted by name).
 * Only the committer thread changes the cache, under the write lock.
 * ---------------------------------------------------------------------------------------- */

#define TABLE_FORMAT 1

static void table_encode(const cp_table_info *t, cp_buf *out)
{
    cp_buf_put_u8(out, TABLE_FORMAT);
    cp_buf_put_u32le(out, t->id);
    cp_buf_put_bytes(out, t->name, strlen(t->name));
    cp_buf_put_bytes(out, t->key.hash_name, strlen(t->key.hash_name));
    cp_buf_put_u8(out, (uint8_t) t->key.hash_type);
    cp_buf_put_bytes(out, t->key.range_name, strlen(t->key.range_name));
    cp_buf_put_u8(out, (uint8_t) t->key.range_type);
    cp_buf_put_u64le(out, (uint64_t) t->created_ms);
    cp_buf_put_bytes(out, t->stream_view, strlen(t->stream_view));
    cp_buf_put_u64le(out, t->stream_from_lsn);
    cp_buf_put_u64le(out, (uint64_t) t->stream_created_ms);
    cp_buf_put_u8(out, (uint8_t) t->ndest);
    for (int i = 0; i < t->ndest; i++) {
        const cp_table_destination *d = &t->dest[i];
        cp_buf_put_bytes(out, d->stream_name, strlen(d->stream_name));
        cp_buf_put_u8(out, (uint8_t) (d->active | d->micro_precision << 1));
        cp_buf_put_u64le(out, d->from_lsn);
    }
    cp_buf_put_bytes(out, t->desc.p, t->desc.len);
}

static void copy_name(char *dst, cp_slice s)
{
    size_t n = s.len < CP_NAME_MAX - 1 ? s.len : CP_NAME_MAX - 1;
    memcpy(dst, s.p, n);
    dst[n] = 0;
}

static int table_decode(cp_slice in, cp_table_info *t)
{
    memset(t, 0, sizeof(*t));
    cp_reader r = cp_reader_of(in);
    if (cp_reader_u8(&r) != TABLE_FORMAT) {
        return CP_ECORRUPT;
    }
    t->id = cp_reader_u32le(&r);
    copy_name(t->name, cp_reader_bytes(&r));
    copy_name(t->key.hash_name, cp_reader_bytes(&r));
    t->key.hash_type = (cp_av_type) cp_reader_u8(&r);
    copy_name(t->key.range_name, cp_reader_bytes(&r));
    t->key.range_type = (cp_av_type) cp_reader_u8(&r);
    t->created_ms = (int64_t) cp_reader_u64le(&r);
    cp_slice view = cp_reader_bytes(&r);
    if (view.len >= sizeof(t->stream_view)) {
        return CP_ECORRUPT;
    }
    memcpy(t->stream_view, view.p, view.len);
    t->stream_from_lsn = cp_reader_u64le(&r);
    t->stream_created_ms = (int64_t) cp_reader_u64le(&r);
    t->ndest = cp_reader_u8(&r);
    if (t->ndest > CP_MAX_DESTINATIONS) {
        return CP_ECORRUPT;
    }
    for (int i = 0; i < t->ndest; i++) {
        cp_table_destination *d = &t->dest[i];
        copy_name(d->stream_name, cp_reader_bytes(&r));
        uint8_t flags = cp_reader_u8(&r);
        d->active = flags & 1;
        d->micro_precision = (flags >> 1) & 1;
        d->from_lsn = cp_reader_u64le(&r);
    }
    cp_slice desc = cp_reader_bytes(&r);
    if (r.failed) {
        return CP_ECORRUPT;
    }
    cp_buf_append(&t->desc, desc.p, desc.len);
    return CP_OK;
}

void cp_table_info_clear(cp_table_info *t)
{
    cp_buf_free(&t->desc);
}

static void table_copy(cp_table_info *dst, const cp_table_info *src)
{
    *dst = *src;
    dst->desc = CP_BUF_INIT;
    cp_buf_append(&dst->desc, src->desc.p, src->desc.len);
}

/* ------------------------------------------------------------------------------------------
 * The database handle and the committer queue.
 * ---------------------------------------------------------------------------------------- */

typedef enum { REQ_WRITE, REQ_CTL } req_kind;

typedef struct request {
    req_kind kind;
    /* REQ_WRITE */
    cp_write_op *ops;
    size_t n;
    unsigned flags;
    /* REQ_CTL: runs alone in its own durable transaction on the committer thread. */
    int (*ctl)(cp_db *db, MDB_txn *txn, void *ctx, cp_err *err);
    void (*after)(cp_db *db, void *ctx); /* after a successful commit: update the cache */
    void *ctx;
    int rc;
    cp_err err;
    int done;
    pthread_cond_t done_cv; /* signalled alone: waking every waiter costs more than the work */
    struct request *next;
} request;


cp_table_info *cp__store_cache_find(cp_db *db, const char *name, size_t *at)
{
    size_t lo = 0, hi = db->ncache;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(db->cache[mid]->name, name);
        if (c == 0) {
            if (at) {
                *at = mid;
            }
            return db->cache[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (at) {
        *at = lo;
    }
    return NULL;
}

static cp_table_info *cache_find_id(cp_db *db, uint32_t id)
{
    for (size_t i = 0; i < db->ncache; i++) {
        if (db->cache[i]->id == id) {
            return db->cache[i];
        }
    }
    return NULL;
}

/* Committer thread only; takes ownership of t. */
static void cache_insert(cp_db *db, cp_table_info *t)
{
    size_t at;
    pthread_rwlock_wrlock(&db->tables_lock);
    CP_ASSERT(!cp__store_cache_find(db, t->name, &at));
    db->cache = cp_realloc(db->cache, (db->ncache + 1) * sizeof(*db->cache));
    memmove(db->cache + at + 1, db->cache + at, (db->ncache - at) * sizeof(*db->cache));
    db->cache[at] = t;
    db->ncache++;
    pthread_rwlock_unlock(&db->tables_lock);
}

static void cache_remove(cp_db *db, const char *name)
{
    size_t at;
    pthread_rwlock_wrlock(&db->tables_lock);
    cp_table_info *t = cp__store_cache_find(db, name, &at);
    if (t) {
        memmove(db->cache + at, db->cache + at + 1, (db->ncache - at - 1) * sizeof(*db->cache));
        db->ncache--;
        cp_table_info_clear(t);
        cp_free(t);
    }
    pthread_rwlock_unlock(&db->tables_lock);
}

int cp__store_mdb_fail(cp_err *err, int mrc, const char *what)
{
    return cp_err_set(err, mrc == MDB_MAP_FULL ? CP_ELIMIT : CP_EIO, "%s: %s", what,
                      mdb_strerror(mrc));
}

static int put_u64_meta(cp_db *db, MDB_txn *txn, const char *key, uint64_t v)
{
    unsigned char b[8];
    cp_store_u64le(b, v);
    MDB_val k = {strlen(key), (void *) key}, d = {8, b};
    return mdb_put(txn, db->meta, &k, &d, 0);
}

static int get_u64_meta(cp_db *db, MDB_txn *txn, const char *key, uint64_t *v)
{
    MDB_val k = {strlen(key), (void *) key}, d;
    int mrc = mdb_get(txn, db->meta, &k, &d);
    if (mrc == 0 && d.mv_size == 8) {
        *v = cp_load_u64le(d.mv_data);
    }
    return mrc;
}

/* ------------------------------------------------------------------------------------------
 * Applying writes inside the group's write transaction.
 * ---------------------------------------------------------------------------------------- */

/* Change records of the current group: payload bytes plus the op each belongs to. */
typedef struct group {
    cp_buf payloads;
    size_t *ends; /* end offset of each payload in `payloads` */
    cp_write_op **owners;
    size_t n, cap;
    int64_t ts_us;
    cp_buf key, cur, scratch;
} group;

static void group_add(group *g, cp_write_op *op, cp_change_event ev, uint32_t table_id,
                      const cp_key_schema *ks, cp_slice key_src, cp_slice new_image,
                      cp_slice old_image)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 256;
        g->ends = cp_realloc(g->ends, g->cap * sizeof(*g->ends));
        g->owners = cp_realloc(g->owners, g->cap * sizeof(*g->owners));
    }
    cp_buf_reset(&g->scratch);
    cp_db_extract_key(ks, key_src, &g->scratch);
    cp_change c = {ev, table_id, g->ts_us, cp_buf_slice(&g->scratch), new_image, old_image};
    cp_change_encode(&c, &g->payloads);
    g->ends[g->n] = g->payloads.len;
    g->owners[g->n] = op;
    g->n++;
}

static int apply_op(cp_db *db, MDB_txn *txn, group *g, cp_write_op *op)
{
    cp_table_info *t = cp__store_cache_find(db, op->table, NULL);
    if (!t) {
        return cp_err_set(&op->err, CP_ENOTFOUND, "Requested resource not found");
    }
    int rc = cp_db_check_key(&t->key, op->item, op->kind == CP_WRITE_PUT, &op->err);
    if (rc < 0) {
        return rc;
    }
    cp_buf_reset(&g->key);
    cp__store_item_key(t->id, &t->key, op->item, &g->key);
    MDB_val k = {g->key.len, g->key.p}, d;
    int mrc = mdb_get(txn, db->items, &k, &d);
    if (mrc != 0 && mrc != MDB_NOTFOUND) {
        return cp__store_mdb_fail(&op->err, mrc, "read");
    }
    /* LMDB's pointer dies at our next write, so keep a copy of the current item. */
    cp_buf_reset(&g->cur);
    if (mrc == 0) {
        cp_buf_append(&g->cur, d.mv_data, d.mv_size);
    }
    cp_slice cur = mrc == 0 ? cp_buf_slice(&g->cur) : (cp_slice){NULL, 0};

    if (op->condition) {
        rc = op->condition(op->ctx, cur, &op->err);
        if (rc < 0) {
            if (rc == CP_ECONDITION) {
                cp_buf_reset(&op->old_item);
                cp_buf_append(&op->old_item, cur.p, cur.len);
            }
            return rc;
        }
    }

    cp_slice next = {NULL, 0};
    cp_buf updated = CP_BUF_INIT;
    switch (op->kind) {
    case CP_WRITE_PUT:
        next = op->item;
        break;
    case CP_WRITE_UPDATE:
        rc = op->update(op->ctx, cur, &updated, &op->err);
        if (rc < 0) {
            cp_buf_free(&updated);
            return rc;
        }
        next = cp_buf_slice(&updated);
        break;
    case CP_WRITE_DELETE:
    case CP_WRITE_CHECK:
        break;
    }
    if (op->kind == CP_WRITE_PUT || op->kind == CP_WRITE_UPDATE) {
        if (cp_item_size(next) > CP_ITEM_MAX_SIZE) {
            cp_buf_free(&updated);
            return cp_err_set(&op->err, CP_EINVAL,
                              op->kind == CP_WRITE_PUT
                                  ? "Item size has exceeded the maximum allowed size"
                                  : "Item size to update has exceeded the maximum allowed size");
        }
    }
    if (op->want_images) {
        cp_buf_reset(&op->old_item);
        cp_buf_append(&op->old_item, cur.p, cur.len);
        cp_buf_reset(&op->new_item);
        if (op->kind == CP_WRITE_PUT || op->kind == CP_WRITE_UPDATE) {
            cp_buf_append(&op->new_item, next.p, next.len);
        } else if (op->kind == CP_WRITE_CHECK) {
            cp_buf_append(&op->new_item, cur.p, cur.len);
        }
    }

    int changed = 0;
    cp_change_event ev = CP_CHANGE_INSERT;
    if (op->kind == CP_WRITE_PUT || op->kind == CP_WRITE_UPDATE) {
        /* An identical write changes nothing and so captures nothing. */
        if (!cur.p || !cp_item_equal(cur, next)) {
            MDB_val nd = {next.len, (void *) next.p};
            mrc = mdb_put(txn, db->items, &k, &nd, 0);
            if (mrc != 0) {
                cp_buf_free(&updated);
                return cp__store_mdb_fail(&op->err, mrc, "write");
            }
            changed = 1;
            ev = cur.p ? CP_CHANGE_MODIFY : CP_CHANGE_INSERT;
        }
    } else if (op->kind == CP_WRITE_DELETE && cur.p) {
        mrc = mdb_del(txn, db->items, &k, NULL);
        if (mrc != 0) {
            return cp__store_mdb_fail(&op->err, mrc, "delete");
        }
        changed = 1;
        ev = CP_CHANGE_REMOVE;
    }
    if (changed) {
        group_add(g, op, ev, t->id, &t->key, ev == CP_CHANGE_REMOVE ? cur : next,
                  ev == CP_CHANGE_REMOVE ? (cp_slice){NULL, 0} : next, cur);
    }
    op->changed = changed;
    cp_buf_free(&updated);
    return CP_OK;
}

static void apply_request(cp_db *db, MDB_txn *txn, group *g, request *rq)
{
    if (!(rq->flags & CP_WRITE_ATOMIC)) {
        for (size_t i = 0; i < rq->n; i++) {
            cp_write_op *op = &rq->ops[i];
            op->changed = 0;
            op->rc = apply_op(db, txn, g, op);
        }
        return;
    }
    /* All or nothing: a nested transaction we can abort, and the group's records truncated. */
    MDB_txn *child;
    size_t mark_n = g->n, mark_len = g->payloads.len;
    int mrc = mdb_txn_begin(db->env, txn, 0, &child);
    if (mrc != 0) {
        for (size_t i = 0; i < rq->n; i++) {
            rq->ops[i].rc = cp__store_mdb_fail(&rq->ops[i].err, mrc, "transaction");
        }
        return;
    }
    size_t failed = rq->n;
    for (size_t i = 0; i < rq->n && failed == rq->n; i++) {
        rq->ops[i].changed = 0;
        rq->ops[i].rc = apply_op(db, child, g, &rq->ops[i]);
        if (rq->ops[i].rc < 0) {
            failed = i;
        }
    }
    if (failed == rq->n) {
        mrc = mdb_txn_commit(child);
        if (mrc == 0) {
            return;
        }
        failed = 0;
        rq->ops[0].rc = cp__store_mdb_fail(&rq->ops[0].err, mrc, "transaction");
    } else {
        mdb_txn_abort(child);
    }
    g->n = mark_n;
    g->payloads.len = mark_len;
    for (size_t i = 0; i < rq->n; i++) {
        if (i != failed) {
            rq->ops[i].rc = cp_err_set(&rq->ops[i].err, CP_ETXN, "None");
        }
        rq->ops[i].changed = 0;
    }
}

static int64_t next_ts_us(cp_db *db)
{
    int64_t now = cp_clock_now_ms() * 1000;
    if (now <= db->last_ts_us) {
        now = db->last_ts_us + 1;
    }
    db->last_ts_us = now;
    return now;
}

/* Run one group of write requests: apply, log + fsync, commit. Returns the group's status. */
static int run_group(cp_db *db, request *list, group *g, cp_err *err)
{
    g->n = 0;
    cp_buf_reset(&g->payloads);
    g->ts_us = next_ts_us(db);
    MDB_txn *txn;
    int mrc = mdb_txn_begin(db->env, NULL, 0, &txn);
    if (mrc != 0) {
        return cp__store_mdb_fail(err, mrc, "begin");
    }
    for (request *rq = list; rq; rq = rq->next) {
        apply_request(db, txn, g, rq);
        for (size_t i = 0; i < rq->n; i++) {
            atomic_fetch_add(rq->ops[i].rc == CP_OK ? &db->ops : &db->ops_refused, 1);
        }
    }
    if (g->n == 0) {
        mdb_txn_abort(txn); /* nothing changed: nothing to log or commit */
        return CP_OK;
    }
    cp_slice *payloads = cp_malloc(g->n * sizeof(*payloads));
    size_t start = 0;
    for (size_t i = 0; i < g->n; i++) {
        payloads[i] = cp_slice_of(g->payloads.p + start, g->ends[i] - start);
        start = g->ends[i];
    }
    uint64_t pos = 0;
    int rc = cp_seglog_append(db->log, payloads, g->n, g->ts_us / 1000, &pos, err);
    if (rc == CP_OK) {
        for (size_t i = 0; i < g->n; i++) {
            g->owners[i]->lsn = pos;
            pos += cp_seglog_frame_size(payloads[i].len);
        }
        mrc = put_u64_meta(db, txn, "applied", pos);
        rc = mrc ? cp__store_mdb_fail(err, mrc, "meta") : CP_OK;
    }
    cp_free(payloads);
    /* The records must be durable before LMDB may hold their effects. */
    if (rc == CP_OK) {
        rc = cp_seglog_sync(db->log, err);
    }
    if (rc != CP_OK) {
        mdb_txn_abort(txn);
        return rc;
    }
    mrc = mdb_txn_commit(txn);
    if (mrc != 0) {
        /* The log has the records; the next open replays them. Refuse further writes. */
        return cp__store_mdb_fail(err, mrc, "commit");
    }
    db->applied = pos;
    atomic_fetch_add(&db->changes, g->n);
    atomic_fetch_add(&db->groups, 1);
    return CP_OK;
}

static int run_ctl(cp_db *db, request *rq)
{
    MDB_txn *txn;
    int mrc = mdb_txn_begin(db->env, NULL, 0, &txn);
    if (mrc != 0) {
        return cp__store_mdb_fail(&rq->err, mrc, "begin");
    }
    int rc = rq->ctl(db, txn, rq->ctx, &rq->err);
    if (rc < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    mrc = mdb_txn_commit(txn);
    if (mrc == 0) {
        mrc = mdb_env_sync(db->env, 1); /* table changes are rare: make them durable now */
    }
    if (mrc != 0) {
        return cp__store_mdb_fail(&rq->err, mrc, "commit");
    }
    rq->after(db, rq->ctx);
    return CP_OK;
}

static void *committer_main(void *arg)
{
    cp_db *db = arg;
    group g = {0};
    int failed = CP_OK; /* sticky: after a log failure nothing more is acknowledged */
    cp_err ferr = {0};
    pthread_mutex_lock(&db->mu);
    for (;;) {
        while (!db->head && !db->closing) {
            pthread_cond_wait(&db->wake, &db->mu);
        }
        if (!db->head) {
            break;
        }
        /* Take a batch: control requests run alone; writes up to group_max ops. */
        request *list = db->head, *last = list;
        size_t ops = list->kind == REQ_WRITE ? list->n : 0;
        if (list->kind == REQ_WRITE) {
            while (last->next && last->next->kind == REQ_WRITE &&
                   ops + last->next->n <= db->group_max) {
                last = last->next;
                ops += last->n;
            }
        }
        db->head = last->next;
        if (!db->head) {
            db->tail = NULL;
        }
        last->next = NULL;
        pthread_mutex_unlock(&db->mu);

        int rc = failed;
        cp_err err = ferr;
        if (rc == CP_OK) {
            rc = list->kind == REQ_CTL ? run_ctl(db, list) : run_group(db, list, &g, &err);
            if (rc != CP_OK && list->kind == REQ_WRITE) {
                CP_LOG_ERROR("store", "group commit failed, refusing writes: %s", err.msg);
                failed = rc;
                ferr = err;
            }
        }

        pthread_mutex_lock(&db->mu);
        for (request *rq = list; rq; rq = rq->next) {
            rq->rc = rc;
            if (rc != CP_OK && (rq->kind == REQ_WRITE || rc == failed)) {
                rq->err = err;
            }
            rq->done = 1;
            pthread_cond_signal(&rq->done_cv);
        }
    }
    pthread_mutex_unlock(&db->mu);
    cp_buf_free(&g.payloads);
    cp_buf_free(&g.key);
    cp_buf_free(&g.cur);
    cp_buf_free(&g.scratch);
    cp_free(g.ends);
    cp_free(g.owners);
    return NULL;
}

static int submit(cp_db *db, request *rq)
{
    rq->next = NULL;
    rq->done = 0;
    pthread_cond_init(&rq->done_cv, NULL);
    pthread_mutex_lock(&db->mu);
    if (db->closing) {
        pthread_mutex_unlock(&db->mu);
        pthread_cond_destroy(&rq->done_cv);
        return CP_ECLOSED;
    }
    if (db->tail) {
        db->tail->next = rq;
    } else {
        db->head = rq;
    }
    db->tail = rq;
    pthread_cond_signal(&db->wake);
    while (!rq->done) {
        pthread_cond_wait(&rq->done_cv, &db->mu);
    }
    pthread_mutex_unlock(&db->mu);
    pthread_cond_destroy(&rq->done_cv);
    return rq->rc;
}

int cp_db_write(cp_db *db, cp_write_op *ops, size_t n, unsigned flags, cp_err *err)
{
    for (size_t i = 0; i < n; i++) {
        ops[i].rc = CP_OK;
        ops[i].changed = 0;
        ops[i].lsn = 0;
        ops[i].err.code = 0;
        ops[i].err.msg[0] = 0;
    }
    if (n == 0) {
        return CP_OK;
    }
    request rq = {.kind = REQ_WRITE, .ops = ops, .n = n, .flags = flags};
    int rc = submit(db, &rq);
    if (rc == CP_ECLOSED) {
        cp_err_set(err, rc, "store is closing");
    } else if (rc != CP_OK && err) {
        *err = rq.err;
    }
    return rc;
}

void cp_write_op_clear(cp_write_op *op)
{
    cp_buf_free(&op->old_item);
    cp_buf_free(&op->new_item);
}

/* ------------------------------------------------------------------------------------------
 * Control requests: table create, delete, update.
 * ---------------------------------------------------------------------------------------- */

static int save_table(cp_db *db, MDB_txn *txn, const cp_table_info *t)
{
    cp_buf b = CP_BUF_INIT;
    table_encode(t, &b);
    MDB_val k = {strlen(t->name), (void *) t->name}, d = {b.len, b.p};
    int mrc = mdb_put(txn, db->tables, &k, &d, 0);
    cp_buf_free(&b);
    return mrc;
}

/* Submit a control request and report its error. */
static int finish_ctl(cp_db *db, request *rq, cp_err *err)
{
    int rc = submit(db, rq);
    if (rc == CP_ECLOSED) {
        return cp_err_set(err, rc, "store is closing");
    }
    if (rc < 0 && err) {
        *err = rq->err;
    }
    return rc;
}

static int ctl_create(cp_db *db, MDB_txn *txn, void *ctx, cp_err *err)
{
    cp_table_info *info = ctx;
    if (cp__store_cache_find(db, info->name, NULL)) {
        return cp_err_set(err, CP_EEXIST, "Table already exists: %s", info->name);
    }
    info->id = db->next_table_id;
    info->created_ms = cp_clock_now_ms();
    if (info->stream_view[0]) {
        info->stream_from_lsn = cp_seglog_end(db->log);
        info->stream_created_ms = info->created_ms;
    }
    int mrc = save_table(db, txn, info);
    if (mrc == 0) {
        mrc = put_u64_meta(db, txn, "next_table_id", info->id + 1);
    }
    if (mrc != 0) {
        return cp__store_mdb_fail(err, mrc, "create table");
    }
    db->next_table_id++;
    return CP_OK;
}

static void after_create(cp_db *db, void *ctx)
{
    cp_table_info *copy = cp_malloc(sizeof(*copy));
    table_copy(copy, ctx);
    cache_insert(db, copy);
}

int cp_db_create_table(cp_db *db, cp_table_info *info, cp_err *err)
{
    request rq = {.kind = REQ_CTL, .ctl = ctl_create, .after = after_create, .ctx = info};
    return finish_ctl(db, &rq, err);
}

typedef struct delete_ctx {
    const char *name;
    cp_table_info *out;
} delete_ctx;

static int ctl_delete(cp_db *db, MDB_txn *txn, void *arg, cp_err *err)
{
    delete_ctx *dc = arg;
    cp_table_info *t = cp__store_cache_find(db, dc->name, NULL);
    if (!t) {
        return cp_err_set(err, CP_ENOTFOUND, "Requested resource not found: Table: %s not found",
                          dc->name);
    }
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, db->items, &cur);
    unsigned char prefix[4];
    prefix[0] = (unsigned char) (t->id >> 24);
    prefix[1] = (unsigned char) (t->id >> 16);
    prefix[2] = (unsigned char) (t->id >> 8);
    prefix[3] = (unsigned char) t->id;
    MDB_val k = {4, prefix}, d;
    if (mrc == 0) {
        /* Re-seek after every delete: GET_CURRENT fails with EINVAL once the database is empty. */
        for (;;) {
            k = (MDB_val){4, prefix};
            mrc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
            if (mrc != 0 || k.mv_size < 4 || memcmp(k.mv_data, prefix, 4) != 0) {
                break;
            }
            mrc = mdb_cursor_del(cur, 0);
            if (mrc != 0) {
                break;
            }
        }
        mdb_cursor_close(cur);
        if (mrc == MDB_NOTFOUND) {
            mrc = 0;
        }
    }
    if (mrc == 0) {
        MDB_val nk = {strlen(t->name), t->name};
        mrc = mdb_del(txn, db->tables, &nk, NULL);
    }
    if (mrc != 0) {
        return cp__store_mdb_fail(err, mrc, "delete table");
    }
    if (dc->out) {
        table_copy(dc->out, t);
    }
    return CP_OK;
}

static void after_delete(cp_db *db, void *ctx)
{
    cache_remove(db, ((delete_ctx *) ctx)->name);
}

int cp_db_delete_table(cp_db *db, const char *name, cp_table_info *out, cp_err *err)
{
    delete_ctx dc = {name, out};
    request rq = {.kind = REQ_CTL, .ctl = ctl_delete, .after = after_delete, .ctx = &dc};
    return finish_ctl(db, &rq, err);
}

typedef struct update_ctx {
    const char *name;
    int (*edit)(void *ctx, cp_table_info *t, cp_err *err);
    void *ctx;
    cp_table_info next; /* prepared in the transaction, installed after the commit */
} update_ctx;

static int ctl_update(cp_db *db, MDB_txn *txn, void *arg, cp_err *err)
{
    update_ctx *uc = arg;
    cp_table_info *t = cp__store_cache_find(db, uc->name, NULL);
    if (!t) {
        return cp_err_set(err, CP_ENOTFOUND, "Requested resource not found: Table: %s not found",
                          uc->name);
    }
    cp_table_info next;
    table_copy(&next, t);
    char had_view[sizeof(next.stream_view)];
    memcpy(had_view, next.stream_view, sizeof(had_view));
    int had_active[CP_MAX_DESTINATIONS] = {0};
    for (int i = 0; i < next.ndest; i++) {
        had_active[i] = next.dest[i].active;
    }
    int rc = uc->edit(uc->ctx, &next, err);
    if (rc == CP_OK) {
        /* Immutable parts stay as they were whatever edit did. */
        next.id = t->id;
        memcpy(next.name, t->name, sizeof(next.name));
        next.key = t->key;
        next.created_ms = t->created_ms;
        uint64_t end = cp_seglog_end(db->log);
        if (next.stream_view[0] && !had_view[0]) {
            next.stream_from_lsn = end;
            next.stream_created_ms = cp_clock_now_ms();
        }
        for (int i = 0; i < next.ndest; i++) {
            if (next.dest[i].active && (i >= t->ndest || !had_active[i])) {
                next.dest[i].from_lsn = end;
            }
        }
        int mrc = save_table(db, txn, &next);
        if (mrc != 0) {
            rc = cp__store_mdb_fail(err, mrc, "update table");
        }
    }
    if (rc != CP_OK) {
        cp_table_info_clear(&next);
        return rc;
    }
    uc->next = next;
    return CP_OK;
}

static void after_update(cp_db *db, void *ctx)
{
    update_ctx *uc = ctx;
    pthread_rwlock_wrlock(&db->tables_lock);
    cp_table_info *t = cp__store_cache_find(db, uc->name, NULL);
    cp_table_info_clear(t);
    *t = uc->next;
    pthread_rwlock_unlock(&db->tables_lock);
}

int cp_db_update_table(cp_db *db, const char *name,
                       int (*edit)(void *ctx, cp_table_info *t, cp_err *err), void *ctx,
                       cp_err *err)
{
    update_ctx uc = {.name = name, .edit = edit, .ctx = ctx};
    request rq = {.kind = REQ_CTL, .ctl = ctl_update, .after = after_update, .ctx = &uc};
    return finish_ctl(db, &rq, err);
}

int cp_db_get_table(cp_db *db, const char *name, cp_table_info *out, cp_err *err)
{
    pthread_rwlock_rdlock(&db->tables_lock);
    cp_table_info *t = cp__store_cache_find(db, name, NULL);
    if (t) {
        table_copy(out, t);
    }
    pthread_rwlock_unlock(&db->tables_lock);
    return t ? CP_OK
             : cp_err_set(err, CP_ENOTFOUND, "Requested resource not found: Table: %s not found",
                          name);
}

int cp_db_get_table_by_id(cp_db *db, uint32_t id, cp_table_info *out, cp_err *err)
{
    pthread_rwlock_rdlock(&db->tables_lock);
    cp_table_info *t = cache_find_id(db, id);
    if (t) {
        table_copy(out, t);
    }
    pthread_rwlock_unlock(&db->tables_lock);
    return t ? CP_OK : cp_err_set(err, CP_ENOTFOUND, "Requested resource not found");
}

int cp_db_list_tables(cp_db *db, const char *after, size_t max, cp_buf *out, size_t *n,
                      cp_err *err)
{
    (void) err;
    *n = 0;
    pthread_rwlock_rdlock(&db->tables_lock);
    size_t i = 0;
    if (after) {
        cp__store_cache_find(db, after, &i);
        if (i < db->ncache && strcmp(db->cache[i]->name, after) == 0) {
            i++;
        }
    }
    for (; i < db->ncache && *n < max; i++, (*n)++) {
        cp_buf_append(out, db->cache[i]->name, strlen(db->cache[i]->name) + 1);
    }
    pthread_rwlock_unlock(&db->tables_lock);
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------
 * Open, recovery, close.
 * ---------------------------------------------------------------------------------------- */

static int load_tables(cp_db *db, MDB_txn *txn, cp_err *err)
{
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, db->tables, &cur);
    if (mrc != 0) {
        return cp__store_mdb_fail(err, mrc, "tables");
    }
    MDB_val k, d;
    for (mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        cp_table_info *t = cp_calloc(1, sizeof(*t));
        if (table_decode(cp_slice_of(d.mv_data, d.mv_size), t) != CP_OK) {
            cp_table_info_clear(t);
            cp_free(t);
            mdb_cursor_close(cur);
            return cp_err_set(err, CP_ECORRUPT, "table metadata is corrupt");
        }
        db->cache = cp_realloc(db->cache, (db->ncache + 1) * sizeof(*db->cache));
        db->cache[db->ncache++] = t; /* LMDB returns names in byte order: already sorted */
    }
    mdb_cursor_close(cur);
    return CP_OK;
}

/* Re-apply the change records LMDB has not seen (a crash between log fsync and LMDB commit,
 * or LMDB pages lost because it does not fsync itself). Records carry full images, so
 * re-applying is idempotent. */
static int replay(cp_db *db, cp_err *err)
{
    uint64_t end = cp_seglog_end(db->log);
    if (db->applied >= end) {
        return CP_OK;
    }
    cp_seglog_reader *r;
    int rc = cp_seglog_reader_open(db->log, db->applied, &r, err);
    if (rc < 0) {
        return rc;
    }
    MDB_txn *txn;
    int mrc = mdb_txn_begin(db->env, NULL, 0, &txn);
    if (mrc != 0) {
        cp_seglog_reader_close(r);
        return cp__store_mdb_fail(err, mrc, "begin");
    }
    cp_buf key = CP_BUF_INIT;
    uint64_t n = 0;
    for (;;) {
        cp_slice payload;
        uint64_t pos;
        int64_t ts;
        rc = cp_seglog_read(r, &payload, &pos, &ts, err);
        if (rc == CP_ENOTFOUND) {
            rc = CP_OK;
            break;
        }
        if (rc < 0) {
            break;
        }
        cp_change c;
        if (cp_change_decode(payload, &c) != CP_OK) {
            rc = cp_err_set(err, CP_ECORRUPT, "change record at %llu is corrupt",
                            (unsigned long long) pos);
            break;
        }
        if (c.ts_us > db->last_ts_us) {
            db->last_ts_us = c.ts_us;
        }
        cp_table_info *t = cache_find_id(db, c.table_id);
        if (!t) {
            continue; /* the table was deleted after this write */
        }
        cp_buf_reset(&key);
        cp__store_item_key(t->id, &t->key, c.keys, &key);
        MDB_val k = {key.len, key.p};
        if (c.event == CP_CHANGE_REMOVE) {
            mrc = mdb_del(txn, db->items, &k, NULL);
            mrc = mrc == MDB_NOTFOUND ? 0 : mrc;
        } else {
            MDB_val d = {c.new_image.len, (void *) c.new_image.p};
            mrc = mdb_put(txn, db->items, &k, &d, 0);
        }
        if (mrc != 0) {
            rc = cp__store_mdb_fail(err, mrc, "replay");
            break;
        }
        n++;
    }
    cp_buf_free(&key);
    cp_seglog_reader_close(r);
    if (rc == CP_OK) {
        mrc = put_u64_meta(db, txn, "applied", end);
        if (mrc == 0) {
            mrc = mdb_txn_commit(txn);
        } else {
            mdb_txn_abort(txn);
        }
        if (mrc == 0) {
            mrc = mdb_env_sync(db->env, 1);
        }
        if (mrc != 0) {
            return cp__store_mdb_fail(err, mrc, "replay commit");
        }
        db->applied = end;
        if (n) {
            CP_LOG_INFO("store", "replayed %llu change records", (unsigned long long) n);
        }
        return CP_OK;
    }
    mdb_txn_abort(txn);
    return rc;
}

static int open_env(cp_db *db, const cp_db_opts *opts, cp_err *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/items", opts->dir);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        return cp_err_set(err, -errno, "cannot create %s", path);
    }
    int mrc = mdb_env_create(&db->env);
    if (mrc == 0) {
        mrc = mdb_env_set_maxdbs(db->env, 8);
    }
    if (mrc == 0) {
        mrc = mdb_env_set_mapsize(db->env, opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE);
    }
    if (mrc == 0) {
        mrc = mdb_env_set_maxreaders(db->env, 512);
    }
    /* NOSYNC: the change log is the durable copy; LMDB is rebuilt from it after a crash. */
    if (mrc == 0) {
        mrc = mdb_env_open(db->env, path, MDB_NOSYNC | MDB_NOTLS, 0644);
    }
    if (mrc != 0) {
        return cp__store_mdb_fail(err, mrc, "open items");
    }
    MDB_txn *txn;
    mrc = mdb_txn_begin(db->env, NULL, 0, &txn);
    if (mrc == 0) {
        mrc = mdb_dbi_open(txn, "meta", MDB_CREATE, &db->meta);
    }
    if (mrc == 0) {
        mrc = mdb_dbi_open(txn, "tables", MDB_CREATE, &db->tables);
    }
    if (mrc == 0) {
        mrc = mdb_dbi_open(txn, "items", MDB_CREATE, &db->items);
    }
    if (mrc != 0) {
        return cp__store_mdb_fail(err, mrc, "open items");
    }
    MDB_val uk = {4, "uuid"}, ud;
    mrc = mdb_get(txn, db->meta, &uk, &ud);
    if (mrc == 0 && ud.mv_size == 16) {
        memcpy(db->uuid, ud.mv_data, 16);
    } else {
        FILE *f = fopen("/dev/urandom", "rb");
        if (!f || fread(db->uuid, 1, 16, f) != 16) {
            if (f) {
                fclose(f);
            }
            mdb_txn_abort(txn);
            return cp_err_set(err, CP_EIO, "cannot read /dev/urandom");
        }
        fclose(f);
        ud = (MDB_val){16, db->uuid};
        mrc = mdb_put(txn, db->meta, &uk, &ud, 0);
    }
    uint64_t v = 1;
    if (mrc == 0 && get_u64_meta(db, txn, "next_table_id", &v) == MDB_NOTFOUND) {
        v = 1;
    }
    db->next_table_id = (uint32_t) v;
    uint64_t applied = 0;
    get_u64_meta(db, txn, "applied", &applied);
    db->applied = applied;
    int rc = mrc ? cp__store_mdb_fail(err, mrc, "meta") : load_tables(db, txn, err);
    if (rc != CP_OK) {
        mdb_txn_abort(txn);
        return rc;
    }
    mrc = mdb_txn_commit(txn);
    if (mrc == 0) {
        mrc = mdb_env_sync(db->env, 1);
    }
    return mrc ? cp__store_mdb_fail(err, mrc, "open items") : CP_OK;
}

int cp_db_open(const cp_db_opts *opts, cp_db **out, cp_err *err)
{
    int mrc = cp_fs_mkdir_p(opts->dir);
    if (mrc != CP_OK) {
        return cp_err_set(err, mrc, "cannot create the data directory %s: %s", opts->dir,
                          strerror(-mrc));
    }
    cp_db *db = cp_calloc(1, sizeof(*db));
    db->group_max = opts->group_max_ops ? opts->group_max_ops : DEFAULT_GROUP_MAX;
    pthread_rwlock_init(&db->tables_lock, NULL);
    pthread_mutex_init(&db->mu, NULL);
    pthread_cond_init(&db->wake, NULL);
    char path[4096];
    snprintf(path, sizeof(path), "%s/changelog", opts->dir);
    cp_seglog_opts lo = {.segment_bytes = 0, .no_fsync = opts->no_fsync};
    int rc = open_env(db, opts, err);
    if (rc == CP_OK) {
        rc = cp_seglog_open(path, &lo, &db->log, err);
    }
    if (rc == CP_OK && db->applied < cp_seglog_start(db->log)) {
        rc = cp_err_set(err, CP_ECORRUPT,
                        "the change log no longer holds records the item store has not applied");
    }
    if (rc == CP_OK) {
        rc = replay(db, err);
    }
    if (rc == CP_OK && pthread_create(&db->committer, NULL, committer_main, db) != 0) {
        rc = cp_err_set(err, CP_EIO, "cannot start the committer thread");
    }
    if (rc != CP_OK) {
        cp_seglog_close(db->log);
        if (db->env) {
            mdb_env_close(db->env);
        }
        for (size_t i = 0; i < db->ncache; i++) {
            cp_table_info_clear(db->cache[i]);
            cp_free(db->cache[i]);
        }
        cp_free(db->cache);
        cp_free(db);
        return rc;
    }
    *out = db;
    return CP_OK;
}

void cp_db_close(cp_db *db)
{
    if (!db) {
        return;
    }
    pthread_mutex_lock(&db->mu);
    db->closing = 1;
    pthread_cond_signal(&db->wake);
    pthread_mutex_unlock(&db->mu);
    pthread_join(db->committer, NULL);
    mdb_env_sync(db->env, 1);
    mdb_env_close(db->env);
    cp_seglog_close(db->log);
    for (size_t i = 0; i < db->ncache; i++) {
        cp_table_info_clear(db->cache[i]);
        cp_free(db->cache[i]);
    }
    cp_free(db->cache);
    pthread_rwlock_destroy(&db->tables_lock);
    pthread_mutex_destroy(&db->mu);
    pthread_cond_destroy(&db->wake);
    cp_free(db);
}

/* ------------------------------------------------------------------------------------------
 * Change log access and small metadata.
 * ---------------------------------------------------------------------------------------- */

void cp_db_counters_get(cp_db *db, cp_db_counters *out)
{
    out->ops = atomic_load(&db->ops);
    out->ops_refused = atomic_load(&db->ops_refused);
    out->changes = atomic_load(&db->changes);
    out->groups = atomic_load(&db->groups);
}

cp_seglog *cp_db_log(cp_db *db)
{
    return db->log;
}

int cp_db_log_trim(cp_db *db, int64_t before_ms, uint64_t keep_from, cp_err *err)
{
    /* Never drop what LMDB has not durably applied: sync it first, then trim below that. */
    uint64_t applied = atomic_load(&db->applied);
    int mrc = mdb_env_sync(db->env, 1);
    if (mrc != 0) {
        return cp__store_mdb_fail(err, mrc, "sync");
    }
    uint64_t by_age;
    int rc = cp_seglog_seek_time(db->log, before_ms, &by_age, err);
    if (rc < 0) {
        return rc;
    }
    uint64_t to = by_age < keep_from ? by_age : keep_from;
    return cp_seglog_trim_to(db->log, to < applied ? to : applied, err);
}

const unsigned char *cp_db_uuid(cp_db *db)
{
    return db->uuid;
}

int cp_db_meta_put(cp_db *db, const char *key, cp_slice value, cp_err *err)
{
    char k[300];
    int kn = snprintf(k, sizeof(k), "x:%s", key);
    MDB_txn *txn;
    int mrc = mdb_txn_begin(db->env, NULL, 0, &txn);
    if (mrc == 0) {
        MDB_val mk = {(size_t) kn, k}, d = {value.len, (void *) value.p};
        mrc = mdb_put(txn, db->meta, &mk, &d, 0);
        if (mrc == 0) {
            mrc = mdb_txn_commit(txn);
        } else {
            mdb_txn_abort(txn);
        }
    }
    if (mrc == 0) {
        mrc = mdb_env_sync(db->env, 1); /* the environment is NOSYNC: make this one durable */
    }
    return mrc ? cp__store_mdb_fail(err, mrc, "meta") : CP_OK;
}

int cp_db_meta_get(cp_db *db, const char *key, cp_buf *out, cp_err *err)
{
    char k[300];
    int kn = snprintf(k, sizeof(k), "x:%s", key);
    MDB_txn *txn;
    int mrc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn);
    if (mrc == 0) {
        MDB_val mk = {(size_t) kn, k}, d;
        mrc = mdb_get(txn, db->meta, &mk, &d);
        if (mrc == 0) {
            cp_buf_reset(out);
            cp_buf_append(out, d.mv_data, d.mv_size);
        }
        mdb_txn_abort(txn);
    }
    if (mrc == MDB_NOTFOUND) {
        return CP_ENOTFOUND;
    }
    return mrc ? cp__store_mdb_fail(err, mrc, "meta") : CP_OK;
}
