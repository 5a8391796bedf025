/* SPDX-License-Identifier: MIT */
/* Replay: rebuild objects from the manifest and the source, into the same keys. */
#include "delivery/engine.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "delivery/compress.h"
#include "delivery/engine_int.h"

/* Read the records at positions lo..hi of one shard into ds->batch (appended). */
static int read_range(dstream *ds, uint32_t shard, uint64_t lo, uint64_t hi, cp_err *err)
{
    const cp_ds_config *cfg = ds->set.cfg;
    if (cfg->type != CP_DS_KINESIS) {
        cp_seglog_reader *r;
        int rc = cp_seglog_reader_open(ds->intake, lo, &r, err);
        cp_slice payload;
        uint64_t pos;
        int64_t ts;
        while (rc == CP_OK && cp_seglog_read(r, &payload, &pos, &ts, NULL) == CP_OK && pos <= hi) {
            cp_drec *rec = cp_batch_add(&ds->batch);
            rec->shard = shard;
            rec->seq = pos;
            rec->arrival_ms = ts;
            rec->raw = rec->data = cp_batch_copy(&ds->batch, payload);
        }
        cp_seglog_reader_close(rc == CP_OK ? r : NULL);
        return rc;
    }
    uint64_t pos = lo;
    for (;;) {
        int rc = cp_streams_read(ds->d->o.streams, cp_slice_str(cfg->source_stream), shard, pos,
                                 ROUND_MAX_RECORDS, ROUND_MAX_BYTES, &ds->rd, err);
        if (rc != CP_OK) {
            return rc;
        }
        for (size_t k = 0; k < ds->rd.batch.n; k++) {
            const cp_stream_rec *sr = &ds->rd.batch.recs[k];
            if (sr->seq > hi) {
                return CP_OK;
            }
            cp_drec *rec = cp_batch_add(&ds->batch);
            rec->shard = shard;
            rec->seq = sr->seq;
            rec->arrival_ms = sr->arrival_ms;
            rec->source_pk = cp_batch_copy(&ds->batch, sr->partition_key);
            rec->raw = rec->data = cp_batch_copy(&ds->batch, sr->data);
        }
        if (ds->rd.batch.n == 0) {
            return CP_OK;
        }
        pos = ds->rd.next_pos;
    }
}

/* Rebuild one manifest entry's object from its source positions and store it again. */
static int replay_object(dstream *ds, partition *p, cp_err *err)
{
    const cp_ds_config *cfg = ds->set.cfg;
    cp_batch_reset(&ds->batch);
    int rc = CP_OK;
    for (uint32_t i = 0; i < p->nranges && rc == CP_OK; i++) {
        rc = read_range(ds, p->ranges[i].shard, p->ranges[i].lo, p->ranges[i].hi, err);
    }
    if (rc != CP_OK) {
        return rc;
    }
    cp__engine_run_processors(ds);
    cp_buf body = CP_BUF_INIT, id = CP_BUF_INIT, key = CP_BUF_INIT, gz = CP_BUF_INIT;
    for (size_t i = 0; i < ds->batch.n; i++) {
        cp_drec *r = &ds->batch.recs[i];
        if (r->result == CP_REC_DROPPED) {
            continue;
        }
        cp__engine_route_record(ds, r, &id);
        if (p->error_type && r->result == CP_REC_FAILED && r->error_type &&
            strcmp(r->error_type, p->error_type) == 0) {
            cp__engine_error_document(ds, r, &body);
        } else if (!p->error_type && r->result == CP_REC_OK &&
                   strcmp(id.p ? id.p : "", p->id) == 0) {
            cp_buf_append(&body, r->data.p, r->data.len);
        }
    }
    rc = cp__engine_object_key(ds, p, &key, err);
    int gzip = !p->error_type && cfg->compression == CP_DS_GZIP;
    if (rc == CP_OK && gzip) {
        rc = cp_gzip_compress(cp_buf_slice(&body), CP_GZIP_LEVEL_DEFAULT, &gz, err);
    }
    if (rc == CP_OK) {
        cp_object obj = {.bucket = cfg->bucket,
                         .key = cp_buf_slice(&key),
                         .body = gzip ? cp_buf_slice(&gz) : cp_buf_slice(&body),
                         .encoding = gzip ? "gzip" : NULL};
        rc = ds->set.sink->put_object(ds->set.sink_ctx, &obj, err);
    }
    cp_buf_free(&body);
    cp_buf_free(&id);
    cp_buf_free(&key);
    cp_buf_free(&gz);
    return rc;
}

int cp_delivery_replay(cp_delivery *d, const char *name, int64_t from_ms, int64_t to_ms,
                       uint64_t *objects, cp_err *err)
{
    *objects = 0;
    pthread_mutex_lock(&d->mu);
    dstream *ds = cp__engine_find_locked(d, name, NULL);
    if (!ds) {
        pthread_mutex_unlock(&d->mu);
        return cp_err_set(err, CP_ENOTFOUND, "Firehose %s under account 000000000000 not found.",
                          name);
    }
    /* The worker owns the batch and the processors: pause it while replaying. */
    cp__engine_dstream_stop(ds);
    MDB_txn *txn;
    int rc = CP_OK;
    int mrc = mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn);
    cp_buf entries = CP_BUF_INIT;
    if (mrc == 0) {
        MDB_cursor *c;
        mdb_cursor_open(txn, d->manifest, &c);
        size_t nl = strlen(name) + 1;
        MDB_val k = {nl, (void *) name}, v;
        for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
             mrc == 0 && k.mv_size >= nl && memcmp(k.mv_data, name, nl) == 0;
             mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            cp_buf_put_bytes(&entries, v.mv_data, v.mv_size);
        }
        mdb_cursor_close(c);
        mdb_txn_abort(txn);
    } else {
        rc = cp__engine_mdb_err(err, mrc, "replay");
    }
    cp_reader r = cp_reader_of(cp_buf_slice(&entries));
    while (rc == CP_OK && r.p < r.end) {
        cp_reader e = cp_reader_of(cp_reader_bytes(&r));
        cp_slice id = cp_reader_bytes(&e);
        partition p = {0};
        p.id = cp_strndup(id.p, id.len);
        p.fd = -1;
        if (cp__engine_partition_decode(cp_slice_of((const char *) e.p, (size_t) (e.end - e.p)), &p) !=
            CP_OK) {
            rc = cp_err_set(err, CP_ECORRUPT, "delivery manifest is corrupt");
        } else if (p.last_arrival_ms >= from_ms && p.first_arrival_ms <= to_ms) {
            unsigned char dg[16];
            cp_md5(p.id, strlen(p.id), dg);
            cp_hex(dg, 16, p.hash);
            p.error_type = p.id[0] == '\x01' ? cp_ds_error_type_intern(p.id + 1) : NULL;
            rc = replay_object(ds, &p, err);
            *objects += rc == CP_OK;
        }
        cp_free(p.id);
        cp_free(p.ranges);
    }
    cp_buf_free(&entries);
    ds->stop = 0;
    ds->running = pthread_create(&ds->thread, NULL, cp__engine_worker_main, ds) == 0;
    pthread_mutex_unlock(&d->mu);
    return rc;
}
