/* SPDX-License-Identifier: MIT */
/* Reads of the item store: get, Query and Scan as key-range walks in LMDB read transactions. */
#include "table/store.h"

#include <lmdb.h>
#include <pthread.h>
#include <string.h>

#include "core/log.h"
#include "table/store_int.h"

/* Copy the table's id and key schema under the read lock. */
static int table_lookup(cp_db *db, const char *name, uint32_t *id, cp_key_schema *ks,
                        cp_err *err)
{
    pthread_rwlock_rdlock(&db->tables_lock);
    cp_table_info *t = cp__store_cache_find(db, name, NULL);
    if (t) {
        *id = t->id;
        *ks = t->key;
    }
    pthread_rwlock_unlock(&db->tables_lock);
    return t ? CP_OK
             : cp_err_set(err, CP_ENOTFOUND, "Requested resource not found: Table: %s not found",
                          name);
}

int cp_db_get(cp_db *db, const char *table, cp_slice key, cp_buf *out, cp_err *err)
{
    uint32_t id;
    cp_key_schema ks;
    int rc = table_lookup(db, table, &id, &ks, err);
    if (rc < 0) {
        return rc;
    }
    rc = cp_db_check_key(&ks, key, 0, err);
    if (rc < 0) {
        return rc;
    }
    cp_buf k = CP_BUF_INIT;
    cp__store_item_key(id, &ks, key, &k);
    MDB_txn *txn;
    int mrc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn);
    if (mrc == 0) {
        MDB_val mk = {k.len, k.p}, d;
        mrc = mdb_get(txn, db->items, &mk, &d);
        cp_buf_reset(out);
        if (mrc == 0) {
            cp_buf_append(out, d.mv_data, d.mv_size);
        }
        mdb_txn_abort(txn);
    }
    cp_buf_free(&k);
    if (mrc == MDB_NOTFOUND) {
        return CP_ENOTFOUND;
    }
    return mrc ? cp__store_mdb_fail(err, mrc, "get") : CP_OK;
}

typedef struct bound {
    cp_buf key;
    int inclusive;
} bound;

static int cmp_bytes(MDB_val k, const cp_buf *b)
{
    return cp_slice_cmp(cp_slice_of(k.mv_data, k.mv_size), cp_buf_slice(b));
}

/* Smallest key greater than every key starting with `prefix`, as an exclusive bound. */
static void prefix_successor(cp_buf *b)
{
    while (b->len && (unsigned char) b->p[b->len - 1] == 0xff) {
        b->len--;
    }
    CP_ASSERT(b->len > 0);
    b->p[b->len - 1]++;
}

/* Visit keys between lo and hi in either direction within one read transaction. */
static int visit_range(cp_db *db, const bound *lo, const bound *hi, int backward,
                       cp_db_visit visit, void *ctx, cp_err *err)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int mrc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn);
    if (mrc != 0) {
        return cp__store_mdb_fail(err, mrc, "read");
    }
    mrc = mdb_cursor_open(txn, db->items, &cur);
    if (mrc != 0) {
        mdb_txn_abort(txn);
        return cp__store_mdb_fail(err, mrc, "read");
    }
    MDB_val k, d;
    int rc = CP_OK;
    if (!backward) {
        k = (MDB_val){lo->key.len, lo->key.p};
        mrc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
        if (mrc == 0 && !lo->inclusive && cmp_bytes(k, &lo->key) == 0) {
            mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
        }
    } else {
        k = (MDB_val){hi->key.len, hi->key.p};
        mrc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
        if (mrc == MDB_NOTFOUND) {
            mrc = mdb_cursor_get(cur, &k, &d, MDB_LAST);
        } else if (mrc == 0) {
            int c = cmp_bytes(k, &hi->key);
            if (c > 0 || (c == 0 && !hi->inclusive)) {
                mrc = mdb_cursor_get(cur, &k, &d, MDB_PREV);
            }
        }
    }
    while (mrc == 0) {
        int clo = cmp_bytes(k, &lo->key), chi = cmp_bytes(k, &hi->key);
        if (clo < 0 || (clo == 0 && !lo->inclusive) || chi > 0 || (chi == 0 && !hi->inclusive)) {
            break;
        }
        int v = visit(ctx, cp_slice_of(d.mv_data, d.mv_size));
        if (v != 0) {
            rc = v < 0 ? v : CP_OK;
            break;
        }
        mrc = mdb_cursor_get(cur, &k, &d, backward ? MDB_PREV : MDB_NEXT);
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = cp__store_mdb_fail(err, mrc, "read");
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}

/* Narrow [lo, hi] by an ExclusiveStartKey in the direction of travel. */
static void apply_start_key(uint32_t id, const cp_key_schema *ks, cp_slice start, int backward,
                            bound *lo, bound *hi)
{
    cp_buf k = CP_BUF_INIT;
    cp__store_item_key(id, ks, start, &k);
    bound *b = backward ? hi : lo;
    int c = cp_slice_cmp(cp_buf_slice(&k), cp_buf_slice(&b->key));
    if (backward ? c <= 0 : c >= 0) {
        cp_buf_free(&b->key);
        b->key = k;
        b->inclusive = 0;
    } else {
        cp_buf_free(&k);
    }
}

int cp_db_query_items(cp_db *db, const cp_db_query *q, cp_db_visit visit, void *ctx,
                      cp_err *err)
{
    uint32_t id;
    cp_key_schema ks;
    int rc = table_lookup(db, q->table, &id, &ks, err);
    if (rc < 0) {
        return rc;
    }
    if (q->start_key.len) {
        rc = cp_db_check_key(&ks, q->start_key, 0, err);
        if (rc < 0) {
            return cp_err_set(err, CP_EINVAL, "The provided starting key is invalid: %s",
                              err ? err->msg : "");
        }
    }
    bound lo = {CP_BUF_INIT, 1}, hi = {CP_BUF_INIT, 0};
    cp__store_key_prefix(id, q->hash, &lo.key);
    size_t plen = lo.key.len;
    cp_buf_append(&hi.key, lo.key.p, lo.key.len);
    prefix_successor(&hi.key);
    if (q->op != CP_RANGE_NONE) {
        cp_buf v1 = CP_BUF_INIT;
        cp_buf_append(&v1, lo.key.p, plen);
        cp_av_key_bytes(q->r1, &v1);
        switch (q->op) {
        case CP_RANGE_EQ:
            cp_buf_reset(&lo.key);
            cp_buf_append(&lo.key, v1.p, v1.len);
            cp_buf_reset(&hi.key);
            cp_buf_append(&hi.key, v1.p, v1.len);
            hi.inclusive = 1;
            break;
        case CP_RANGE_LT:
        case CP_RANGE_LE:
            cp_buf_reset(&hi.key);
            cp_buf_append(&hi.key, v1.p, v1.len);
            hi.inclusive = q->op == CP_RANGE_LE;
            break;
        case CP_RANGE_GT:
        case CP_RANGE_GE:
            cp_buf_reset(&lo.key);
            cp_buf_append(&lo.key, v1.p, v1.len);
            lo.inclusive = q->op == CP_RANGE_GE;
            break;
        case CP_RANGE_BETWEEN:
            cp_buf_reset(&lo.key);
            cp_buf_append(&lo.key, v1.p, v1.len);
            cp_buf_reset(&hi.key);
            cp_buf_append(&hi.key, lo.key.p, plen);
            cp_av_key_bytes(q->r2, &hi.key);
            hi.inclusive = 1;
            break;
        case CP_RANGE_BEGINS_WITH:
            cp_buf_reset(&lo.key);
            cp_buf_append(&lo.key, v1.p, v1.len);
            if (v1.len > plen) {
                cp_buf_reset(&hi.key);
                cp_buf_append(&hi.key, v1.p, v1.len);
                prefix_successor(&hi.key);
            }
            break;
        case CP_RANGE_NONE:
            break;
        }
        cp_buf_free(&v1);
    }
    if (q->start_key.len) {
        apply_start_key(id, &ks, q->start_key, q->backward, &lo, &hi);
    }
    rc = visit_range(db, &lo, &hi, q->backward, visit, ctx, err);
    cp_buf_free(&lo.key);
    cp_buf_free(&hi.key);
    return rc;
}

int cp_db_scan_items(cp_db *db, const cp_db_scan *s, cp_db_visit visit, void *ctx, cp_err *err)
{
    uint32_t id;
    cp_key_schema ks;
    int rc = table_lookup(db, s->table, &id, &ks, err);
    if (rc < 0) {
        return rc;
    }
    uint32_t total = s->total_segments ? s->total_segments : 1;
    if (s->segment >= total) {
        return cp_err_set(err, CP_EINVAL, "Segment must be less than TotalSegments");
    }
    /* Segment i covers partition hashes [i * 2^64 / total, (i + 1) * 2^64 / total). */
    unsigned __int128 span = ((unsigned __int128) 1 << 64) / total;
    uint64_t h_lo = (uint64_t) (span * s->segment);
    bound lo = {CP_BUF_INIT, 1}, hi = {CP_BUF_INIT, 0};
    cp_buf_put_u32be(&lo.key, id);
    cp_buf_put_u64be(&lo.key, h_lo);
    if (s->segment + 1 < total) {
        cp_buf_put_u32be(&hi.key, id);
        cp_buf_put_u64be(&hi.key, (uint64_t) (span * (s->segment + 1)));
    } else {
        cp_buf_put_u32be(&hi.key, id + 1);
    }
    if (s->start_key.len) {
        rc = cp_db_check_key(&ks, s->start_key, 0, err);
        if (rc < 0) {
            cp_buf_free(&lo.key);
            cp_buf_free(&hi.key);
            return cp_err_set(err, CP_EINVAL, "The provided starting key is invalid: %s",
                              err ? err->msg : "");
        }
        apply_start_key(id, &ks, s->start_key, 0, &lo, &hi);
    }
    rc = visit_range(db, &lo, &hi, 0, visit, ctx, err);
    cp_buf_free(&lo.key);
    cp_buf_free(&hi.key);
    return rc;
}

typedef struct count_ctx {
    uint64_t items, bytes;
} count_ctx;

static int count_visit(void *ctx, cp_slice item)
{
    count_ctx *c = ctx;
    c->items++;
    c->bytes += cp_item_size(item);
    return 0;
}

int cp_db_table_stats(cp_db *db, uint32_t table_id, uint64_t *items, uint64_t *bytes,
                      cp_err *err)
{
    bound lo = {CP_BUF_INIT, 1}, hi = {CP_BUF_INIT, 0};
    cp_buf_put_u32be(&lo.key, table_id);
    cp_buf_put_u32be(&hi.key, table_id + 1);
    count_ctx c = {0, 0};
    int rc = visit_range(db, &lo, &hi, 0, count_visit, &c, err);
    cp_buf_free(&lo.key);
    cp_buf_free(&hi.key);
    *items = c.items;
    *bytes = c.bytes;
    return rc;
}
