/* SPDX-License-Identifier: MIT */
/* The delivery engine's public API: lifecycle, control, DirectPut, drain, stats. */
#include "delivery/engine.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/clock.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "delivery/compress.h"
#include "delivery/engine_int.h"


int cp_delivery_open(const cp_delivery_opts *opts, cp_delivery **out, cp_err *err)
{
    cp_delivery *d = cp_calloc(1, sizeof(*d));
    d->o = *opts;
    pthread_mutex_init(&d->mu, NULL);
    snprintf(d->dir, sizeof(d->dir), "%s/delivery", opts->data_dir);
    mkdir(opts->data_dir, 0755);
    mkdir(d->dir, 0755);
    char path[4200];
    snprintf(path, sizeof(path), "%s/state", d->dir);
    mkdir(path, 0755);
    int mrc = mdb_env_create(&d->env);
    if (mrc == 0) {
        mrc = mdb_env_set_maxdbs(d->env, 8);
    }
    if (mrc == 0) {
        mrc = mdb_env_set_mapsize(d->env, (size_t) 16 << 30);
    }
    if (mrc == 0) {
        mrc = mdb_env_open(d->env, path, MDB_NOTLS | (opts->no_fsync ? MDB_NOSYNC : 0), 0644);
    }
    MDB_txn *txn = NULL;
    if (mrc == 0) {
        mrc = mdb_txn_begin(d->env, NULL, 0, &txn);
    }
    if (mrc == 0) {
        mrc = mdb_dbi_open(txn, "ckpt", MDB_CREATE, &d->ckpt);
    }
    if (mrc == 0) {
        mrc = mdb_dbi_open(txn, "parts", MDB_CREATE, &d->parts);
    }
    if (mrc == 0) {
        mrc = mdb_dbi_open(txn, "manifest", MDB_CREATE, &d->manifest);
    }
    if (mrc == 0) {
        mrc = mdb_dbi_open(txn, "streams", MDB_CREATE, &d->streams_db);
    }
    if (mrc == 0) {
        mrc = mdb_dbi_open(txn, "stats", MDB_CREATE, &d->stats_db);
    }
    if (mrc == 0) {
        mrc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (mrc) {
        if (txn) {
            mdb_txn_abort(txn);
        }
        if (d->env) {
            mdb_env_close(d->env);
        }
        cp_free(d);
        return cp__engine_mdb_err(err, mrc, "open");
    }
    /* Restart every stream from its saved configuration. */
    cp_buf names = CP_BUF_INIT, jsons = CP_BUF_INIT;
    size_t nstreams = 0;
    mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn);
    MDB_cursor *c;
    mdb_cursor_open(txn, d->streams_db, &c);
    MDB_val k, v;
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        cp_buf_put_bytes(&jsons, v.mv_data, v.mv_size);
        nstreams++;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    cp_reader r = cp_reader_of(cp_buf_slice(&jsons));
    int rc = CP_OK;
    for (size_t i = 0; i < nstreams && rc == CP_OK; i++) {
        cp_slice json = cp_reader_bytes(&r);
        cp_ds_config *cfg = NULL;
        rc = cp_ds_config_from_json(json, &cfg, err);
        dstream *ds = NULL;
        if (rc == CP_OK) {
            rc = cp__engine_dstream_start(d, cfg, 0, &ds, err);
        }
        if (rc == CP_OK) {
            d->list = cp_realloc(d->list, (d->n + 1) * sizeof(*d->list));
            d->list[d->n++] = ds;
        }
    }
    cp_buf_free(&names);
    cp_buf_free(&jsons);
    if (rc != CP_OK) {
        cp_delivery_close(d);
        return rc;
    }
    *out = d;
    return CP_OK;
}

void cp_delivery_close(cp_delivery *d)
{
    if (!d) {
        return;
    }
    for (size_t i = 0; i < d->n; i++) {
        cp__engine_dstream_stop(d->list[i]);
        cp__engine_dstream_free(d->list[i]);
    }
    cp_free(d->list);
    mdb_env_close(d->env);
    pthread_mutex_destroy(&d->mu);
    cp_free(d);
}

int cp_delivery_create(cp_delivery *d, cp_ds_config *cfg, cp_err *err)
{
    pthread_mutex_lock(&d->mu);
    if (cp__engine_find_locked(d, cfg->name, NULL)) {
        pthread_mutex_unlock(&d->mu);
        int rc = cp_err_set(err, CP_EEXIST, "Firehose %s under account 000000000000 already exists.",
                            cfg->name);
        cp_ds_config_free(cfg);
        return rc;
    }
    if (cfg->type == CP_DS_KINESIS) {
        cp_stream_desc *desc;
        if (cp_streams_describe(d->o.streams, cp_slice_str(cfg->source_stream), &desc, NULL) !=
            CP_OK) {
            pthread_mutex_unlock(&d->mu);
            int rc = cp_err_set(err, CP_ENOTFOUND, "Stream %s under account 000000000000 not found.",
                                cfg->source_stream);
            cp_ds_config_free(cfg);
            return rc;
        }
        cp_stream_desc_free(desc);
    }
    int rc = cp__engine_save_config(d, cfg, err);
    dstream *ds = NULL;
    if (rc == CP_OK) {
        rc = cp__engine_dstream_start(d, cfg, 1, &ds, err);
    } else {
        cp_ds_config_free(cfg);
    }
    if (rc == CP_OK) {
        d->list = cp_realloc(d->list, (d->n + 1) * sizeof(*d->list));
        d->list[d->n++] = ds;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int cp_delivery_delete(cp_delivery *d, const char *name, cp_err *err)
{
    pthread_mutex_lock(&d->mu);
    size_t at;
    dstream *ds = cp__engine_find_locked(d, name, &at);
    if (!ds) {
        pthread_mutex_unlock(&d->mu);
        return cp_err_set(err, CP_ENOTFOUND, "Firehose %s under account 000000000000 not found.",
                          name);
    }
    memmove(d->list + at, d->list + at + 1, (d->n - at - 1) * sizeof(*d->list));
    d->n--;
    pthread_mutex_unlock(&d->mu);
    cp__engine_dstream_stop(ds);
    MDB_txn *txn;
    int mrc = mdb_txn_begin(d->env, NULL, 0, &txn);
    if (mrc == 0) {
        MDB_val k = {strlen(name), (void *) name};
        mdb_del(txn, d->streams_db, &k, NULL);
        mdb_del(txn, d->stats_db, &k, NULL);
        cp__engine_del_prefix(txn, d->ckpt, name);
        cp__engine_del_prefix(txn, d->parts, name);
        cp__engine_del_prefix(txn, d->manifest, name);
        mrc = mdb_txn_commit(txn);
    }
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s", ds->dir);
    cp__engine_dstream_free(ds);
    /* Buffered data is discarded, as Firehose does on deletion. */
    if (cp_fs_rm_rf(dir) != CP_OK) {
        CP_LOG_WARN("delivery", "could not remove %s", dir);
    }
    return mrc ? cp__engine_mdb_err(err, mrc, "delete") : CP_OK;
}

int cp_delivery_update(cp_delivery *d, cp_ds_config *cfg, cp_err *err)
{
    pthread_mutex_lock(&d->mu);
    size_t at;
    dstream *ds = cp__engine_find_locked(d, cfg->name, &at);
    if (!ds) {
        pthread_mutex_unlock(&d->mu);
        int rc = cp_err_set(err, CP_ENOTFOUND, "Firehose %s under account 000000000000 not found.",
                            cfg->name);
        cp_ds_config_free(cfg);
        return rc;
    }
    /* Restart the worker on the new configuration; buffered generations keep the version
     * they opened with, so their keys do not change. */
    cp__engine_dstream_stop(ds);
    int rc = cp__engine_save_config(d, cfg, err);
    dstream *next = NULL;
    if (rc == CP_OK) {
        cp__engine_dstream_free(ds);
        rc = cp__engine_dstream_start(d, cfg, 0, &next, err);
        if (rc == CP_OK) {
            d->list[at] = next;
        } else {
            memmove(d->list + at, d->list + at + 1, (d->n - at - 1) * sizeof(*d->list));
            d->n--;
        }
    } else {
        cp_ds_config_free(cfg);
        ds->stop = 0;
        ds->running = pthread_create(&ds->thread, NULL, cp__engine_worker_main, ds) == 0;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int cp_delivery_config(cp_delivery *d, const char *name, cp_ds_config **out, cp_err *err)
{
    pthread_mutex_lock(&d->mu);
    dstream *ds = cp__engine_find_locked(d, name, NULL);
    int rc = ds ? cp_ds_config_copy(ds->set.cfg, out, err)
                : cp_err_set(err, CP_ENOTFOUND,
                             "Firehose %s under account 000000000000 not found.", name);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

int cp_delivery_list(cp_delivery *d, const char *after, size_t max, cp_buf *out, size_t *n,
                     cp_err *err)
{
    (void) err;
    pthread_mutex_lock(&d->mu);
    const char **names = cp_calloc(d->n ? d->n : 1, sizeof(*names));
    for (size_t i = 0; i < d->n; i++) {
        names[i] = d->list[i]->name;
    }
    qsort(names, d->n, sizeof(*names), name_cmp);
    *n = 0;
    for (size_t i = 0; i < d->n && *n < max; i++) {
        if (!after || strcmp(names[i], after) > 0) {
            cp_buf_append(out, names[i], strlen(names[i]) + 1);
            (*n)++;
        }
    }
    cp_free(names);
    pthread_mutex_unlock(&d->mu);
    return CP_OK;
}

int cp_delivery_put(cp_delivery *d, const char *name, const cp_slice *records, size_t n,
                    uint64_t *ids, cp_err *err)
{
    pthread_mutex_lock(&d->mu);
    dstream *ds = cp__engine_find_locked(d, name, NULL);
    if (!ds) {
        pthread_mutex_unlock(&d->mu);
        return cp_err_set(err, CP_ENOTFOUND, "Firehose %s under account 000000000000 not found.",
                          name);
    }
    if (!ds->intake) {
        pthread_mutex_unlock(&d->mu);
        return cp_err_set(err, CP_EINVAL,
                          "This operation is not permitted on KinesisStreamAsSource delivery "
                          "stream type.");
    }
    uint64_t first = 0;
    int rc = cp_seglog_append(ds->intake, records, n, cp_clock_now_ms(), &first, err);
    if (rc == CP_OK) {
        rc = cp_seglog_sync(ds->intake, err);
    }
    pthread_mutex_unlock(&d->mu);
    for (size_t i = 0; rc == CP_OK && i < n; i++) {
        ids[i] = first;
        first += cp_seglog_frame_size(records[i].len);
    }
    if (rc == CP_OK) {
        pthread_cond_broadcast(&ds->cv);
    }
    return rc;
}

int cp_delivery_drain(cp_delivery *d, const char *name, int catch_up, int64_t timeout_ms,
                      cp_err *err)
{
    pthread_mutex_lock(&d->mu);
    dstream *ds = cp__engine_find_locked(d, name, NULL);
    pthread_mutex_unlock(&d->mu);
    if (!ds) {
        return cp_err_set(err, CP_ENOTFOUND, "Firehose %s under account 000000000000 not found.",
                          name);
    }
    int64_t deadline = cp_clock_mono_ns() + timeout_ms * 1000000;
    pthread_mutex_lock(&ds->mu);
    /* First let the worker read everything currently in the source. */
    uint64_t want = catch_up ? ++ds->catchup_req : 0;
    pthread_cond_broadcast(&ds->cv); /* an idle worker reads again now */
    while (ds->catchup_seen < want && cp_clock_mono_ns() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20000000;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&ds->cv, &ds->mu, &ts);
    }
    uint64_t gen = ds->drain_gen;
    ds->flush_all = 1;
    pthread_cond_broadcast(&ds->cv);
    while (ds->drain_gen == gen && cp_clock_mono_ns() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20000000;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&ds->cv, &ds->mu, &ts);
    }
    int done = ds->drain_gen != gen;
    pthread_mutex_unlock(&ds->mu);
    return done ? CP_OK : cp_err_set(err, CP_EAGAIN, "delivery did not drain in time");
}

int cp_delivery_stats_get(cp_delivery *d, const char *name, cp_delivery_stats *out, cp_err *err)
{
    pthread_mutex_lock(&d->mu);
    dstream *ds = cp__engine_find_locked(d, name, NULL);
    if (ds) {
        pthread_mutex_lock(&ds->mu);
        *out = ds->pub;
        pthread_mutex_unlock(&ds->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return ds ? CP_OK
              : cp_err_set(err, CP_ENOTFOUND, "Firehose %s under account 000000000000 not found.",
                           name);
}

