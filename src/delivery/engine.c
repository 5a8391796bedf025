/* SPDX-License-Identifier: MIT */
/*
 * The delivery engine (see engine.h for the exactly-once protocol). Sections: settings,
 * partitions and spill files, the state database, sources, the round (read, process, stage,
 * commit), flushing, recovery and the worker, and one stream's lifecycle. The public API is in
 * engine_api.c, replay in engine_replay.c.
 */
#include "delivery/engine.h"

#include <dirent.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/base64.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/seglog.h"
#include "delivery/compress.h"
#include "delivery/prefix.h"
#include "delivery/engine_int.h"


/* ------------------------------------------------------------------------------------------
 * Settings: the parts of a cp_ds_config the worker uses, resolved once per configuration.
 * ---------------------------------------------------------------------------------------- */

static void settings_free(settings *s)
{
    for (size_t i = 0; i < s->nprocs; i++) {
        s->procs[i].ops->destroy(s->procs[i].ctx);
    }
    cp_prefix_free(s->prefix);
    cp_prefix_free(s->error_prefix);
    cp_ds_config_free(s->cfg);
    memset(s, 0, sizeof(*s));
}

static int proc_order_cmp(const void *a, const void *b)
{
    const proc_inst *x = a, *y = b;
    return x->ops->order - y->ops->order;
}

/* Takes ownership of cfg. */
static int settings_init(settings *s, cp_ds_config *cfg, const cp_delivery_opts *o, cp_err *err)
{
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    snprintf(s->arn, sizeof(s->arn), "arn:aws:firehose:%s:000000000000:deliverystream/%s",
             o->region ? o->region : "us-east-1", cfg->name);
    if (cfg->type == CP_DS_KINESIS) {
        snprintf(s->source_arn, sizeof(s->source_arn), "%s", cfg->source_stream_arn);
    }
    s->sink = o->sink;
    s->sink_ctx = o->sink_ctx;
    int rc = CP_OK;
    if (cfg->sink && (!o->sink_for ||
                      o->sink_for(o->sink_for_ctx, cfg->sink, &s->sink, &s->sink_ctx) != CP_OK)) {
        rc = cp_err_set(err, CP_EINVAL,
                        "SinkEndpoint %s is not an S3 sink of this server (see serve --s3-sinks)",
                        cfg->sink);
    }
    if (rc == CP_OK) {
        rc = cp_prefix_compile_data(cfg->prefix, &s->prefix, err);
    }
    if (rc == CP_OK) {
        rc = cp_prefix_compile_error(cfg->error_output_prefix, cfg->prefix, &s->error_prefix, err);
    }
    cp_processor_env env = {
        .delivery_stream_arn = s->arn,
        .source_stream_arn = cfg->type == CP_DS_KINESIS ? s->source_arn : NULL,
        .region = o->region ? o->region : "us-east-1",
        .kinesis_source = cfg->type == CP_DS_KINESIS,
        .invoke = o->invoke,
        .invoke_ctx = o->invoke_ctx,
    };
    for (size_t i = 0; rc == CP_OK && cfg->processing_enabled && i < cfg->nprocessors; i++) {
        const cp_ds_processor *p = &cfg->processors[i];
        const cp_processor_ops *ops = cp_processor_find(p->type);
        if (!ops || s->nprocs == sizeof(s->procs) / sizeof(s->procs[0])) {
            rc = cp_err_set(err, CP_EINVAL, "Processor type %s is not supported", p->type);
            break;
        }
        void *ctx = NULL;
        rc = ops->init(p->params, p->nparams, &env, &ctx, err);
        if (rc == CP_OK) {
            s->procs[s->nprocs++] = (proc_inst){ops, ctx};
        }
    }
    qsort(s->procs, s->nprocs, sizeof(s->procs[0]), proc_order_cmp);
    if (rc != CP_OK) {
        settings_free(s);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Partitions: one spill file per (partition, generation) under <dir>/parts/.
 * ---------------------------------------------------------------------------------------- */

static partition *ptable_find(ptable *t, const char *id, int create)
{
    if (create && (t->n + 1) * 2 > t->cap) {
        ptable old = *t;
        t->cap = t->cap ? t->cap * 2 : 64;
        t->slots = cp_calloc(t->cap, sizeof(*t->slots));
        t->n = 0;
        for (size_t i = 0; i < old.cap; i++) {
            if (old.slots[i]) {
                size_t h = cp_fnv1a64(old.slots[i]->id, strlen(old.slots[i]->id)) & (t->cap - 1);
                while (t->slots[h]) {
                    h = (h + 1) & (t->cap - 1);
                }
                t->slots[h] = old.slots[i];
                t->n++;
            }
        }
        cp_free(old.slots);
    }
    if (!t->cap) {
        return NULL;
    }
    size_t h = cp_fnv1a64(id, strlen(id)) & (t->cap - 1);
    while (t->slots[h]) {
        if (strcmp(t->slots[h]->id, id) == 0) {
            return t->slots[h];
        }
        h = (h + 1) & (t->cap - 1);
    }
    if (!create) {
        return NULL;
    }
    partition *p = cp_calloc(1, sizeof(*p));
    p->id = cp_strdup(id);
    p->fd = -1;
    unsigned char d[16];
    cp_md5(id, strlen(id), d);
    cp_hex(d, 16, p->hash);
    t->slots[h] = p;
    t->n++;
    return p;
}

static void partition_free(partition *p)
{
    if (p->fd >= 0) {
        close(p->fd);
    }
    cp_free(p->id);
    cp_free(p->ranges);
    cp_free(p);
}

static void ptable_free(ptable *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i]) {
            partition_free(t->slots[i]);
        }
    }
    cp_free(t->slots);
    memset(t, 0, sizeof(*t));
}

static void range_add(partition *p, uint32_t shard, uint64_t seq)
{
    for (uint32_t i = 0; i < p->nranges; i++) {
        if (p->ranges[i].shard == shard) {
            if (seq < p->ranges[i].lo) {
                p->ranges[i].lo = seq;
            }
            if (seq > p->ranges[i].hi) {
                p->ranges[i].hi = seq;
            }
            return;
        }
    }
    p->ranges = cp_realloc(p->ranges, (p->nranges + 1) * sizeof(*p->ranges));
    p->ranges[p->nranges++] = (range){shard, seq, seq};
}

/* Serialized partition state: gen, len, records, first/last arrival, opened, version, ranges. */
static void partition_encode(const partition *p, cp_buf *out)
{
    cp_buf_put_u64le(out, p->gen);
    cp_buf_put_u64le(out, p->len);
    cp_buf_put_u64le(out, p->records);
    cp_buf_put_u64le(out, (uint64_t) p->first_arrival_ms);
    cp_buf_put_u64le(out, (uint64_t) p->last_arrival_ms);
    cp_buf_put_u64le(out, (uint64_t) p->opened_ms);
    cp_buf_put_u32le(out, p->version);
    cp_buf_put_u32le(out, p->nranges);
    for (uint32_t i = 0; i < p->nranges; i++) {
        cp_buf_put_u32le(out, p->ranges[i].shard);
        cp_buf_put_u64le(out, p->ranges[i].lo);
        cp_buf_put_u64le(out, p->ranges[i].hi);
    }
}

int cp__engine_partition_decode(cp_slice in, partition *p)
{
    cp_reader r = cp_reader_of(in);
    p->gen = cp_reader_u64le(&r);
    p->len = cp_reader_u64le(&r);
    p->records = cp_reader_u64le(&r);
    p->first_arrival_ms = (int64_t) cp_reader_u64le(&r);
    p->last_arrival_ms = (int64_t) cp_reader_u64le(&r);
    p->opened_ms = (int64_t) cp_reader_u64le(&r);
    p->version = cp_reader_u32le(&r);
    uint32_t n = cp_reader_u32le(&r);
    if (r.failed || n > 1u << 20) {
        return CP_ECORRUPT;
    }
    p->ranges = cp_calloc(n ? n : 1, sizeof(*p->ranges));
    p->nranges = n;
    for (uint32_t i = 0; i < n; i++) {
        p->ranges[i].shard = cp_reader_u32le(&r);
        p->ranges[i].lo = cp_reader_u64le(&r);
        p->ranges[i].hi = cp_reader_u64le(&r);
    }
    return r.failed ? CP_ECORRUPT : CP_OK;
}

/* ------------------------------------------------------------------------------------------
 * The engine and its state database.
 *   ckpt:     <stream>\0<u32 shard>  -> u64 next source position
 *   parts:    <stream>\0<partition id> -> partition state
 *   manifest: <stream>\0<object key> -> manifest entry (see flush)
 *   streams:  <stream>               -> configuration JSON
 *   stats:    <stream>               -> counters
 * ---------------------------------------------------------------------------------------- */

int cp__engine_mdb_err(cp_err *err, int mrc, const char *what)
{
    return cp_err_set(err, CP_EIO, "delivery state %s: %s", what, mdb_strerror(mrc));
}

static void state_key(cp_buf *k, const char *stream, const void *rest, size_t len)
{
    cp_buf_reset(k);
    cp_buf_append(k, stream, strlen(stream) + 1);
    cp_buf_append(k, rest, len);
}

int cp__engine_put_kv(MDB_txn *txn, MDB_dbi dbi, cp_slice k, cp_slice v)
{
    MDB_val mk = {k.len, (void *) k.p}, mv = {v.len, (void *) v.p};
    return mdb_put(txn, dbi, &mk, &mv, 0);
}

/* Delete every key of a database that starts with stream\0. */
int cp__engine_del_prefix(MDB_txn *txn, MDB_dbi dbi, const char *stream)
{
    MDB_cursor *c;
    int mrc = mdb_cursor_open(txn, dbi, &c);
    if (mrc) {
        return mrc;
    }
    size_t n = strlen(stream) + 1;
    MDB_val k = {n, (void *) stream}, v;
    mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (mrc == 0 && k.mv_size >= n && memcmp(k.mv_data, stream, n) == 0) {
        mrc = mdb_cursor_del(c, 0);
        if (mrc == 0) {
            mrc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT);
        }
    }
    mdb_cursor_close(c);
    return mrc == MDB_NOTFOUND ? 0 : mrc;
}

static void stats_encode(const cp_delivery_stats *s, cp_buf *out)
{
    cp_buf_put_u64le(out, s->records_read);
    cp_buf_put_u64le(out, s->records_delivered);
    cp_buf_put_u64le(out, s->records_errored);
    cp_buf_put_u64le(out, s->records_dropped);
    cp_buf_put_u64le(out, s->records_buffered);
    cp_buf_put_u64le(out, s->objects);
    cp_buf_put_u64le(out, s->bytes);
    cp_buf_put_u64le(out, s->processor_retries);
}

void cp__engine_stats_decode(cp_slice in, cp_delivery_stats *s)
{
    cp_reader r = cp_reader_of(in);
    s->records_read = cp_reader_u64le(&r);
    s->records_delivered = cp_reader_u64le(&r);
    s->records_errored = cp_reader_u64le(&r);
    s->records_dropped = cp_reader_u64le(&r);
    s->records_buffered = cp_reader_u64le(&r);
    s->objects = cp_reader_u64le(&r);
    s->bytes = cp_reader_u64le(&r);
    s->processor_retries = cp_reader_u64le(&r);
}

/* Make the counters of a committed state visible to cp_delivery_stats_get: readers never see
 * a round half-staged, so read = delivered + errored + dropped + buffered always holds. */
void cp__engine_publish(dstream *ds)
{
    pthread_mutex_lock(&ds->mu);
    ds->pub = ds->st;
    pthread_mutex_unlock(&ds->mu);
}

static int put_stats(dstream *ds, MDB_txn *txn)
{
    cp_buf v = CP_BUF_INIT;
    stats_encode(&ds->st, &v);
    int mrc = cp__engine_put_kv(txn, ds->d->stats_db, cp_slice_str(ds->name), cp_buf_slice(&v));
    cp_buf_free(&v);
    return mrc;
}

/* ------------------------------------------------------------------------------------------
 * Spill files.
 * ---------------------------------------------------------------------------------------- */

static void spill_path(const dstream *ds, const partition *p, uint64_t gen, char *out, size_t cap)
{
    snprintf(out, cap, "%s/parts/%s-%llu.buf", ds->dir, p->hash, (unsigned long long) gen);
}

static void close_some_fds(dstream *ds)
{
    /* Keep descriptors bounded with tens of thousands of partitions: close untouched ones. */
    for (size_t i = 0; i < ds->parts.cap && ds->parts.open_fds >= MAX_OPEN_FILES; i++) {
        partition *p = ds->parts.slots[i];
        if (p && p->fd >= 0 && !p->touched) {
            close(p->fd);
            p->fd = -1;
            ds->parts.open_fds--;
        }
    }
}

static int spill_open(dstream *ds, partition *p, cp_err *err)
{
    if (p->fd >= 0) {
        return CP_OK;
    }
    if (ds->parts.open_fds >= MAX_OPEN_FILES) {
        close_some_fds(ds);
    }
    char path[4400];
    spill_path(ds, p, p->gen, path, sizeof(path));
    p->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (p->fd < 0) {
        return cp_err_set(err, -errno, "cannot open a spill file: %s", strerror(errno));
    }
    ds->parts.open_fds++;
    return CP_OK;
}

static int spill_append(dstream *ds, partition *p, cp_slice data, cp_err *err)
{
    int rc = spill_open(ds, p, err);
    if (rc < 0) {
        return rc;
    }
    if (pwrite(p->fd, data.p, data.len, (off_t) (p->len + p->pending)) != (ssize_t) data.len) {
        return cp_err_set(err, CP_EIO, "spill write failed: %s", strerror(errno));
    }
    p->pending += data.len;
    p->pending_records++;
    if (!p->touched) {
        p->touched = 1;
        p->next_touched = ds->touched;
        ds->touched = p;
    }
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------
 * Sources.
 * ---------------------------------------------------------------------------------------- */

static shard_src *find_shard(dstream *ds, uint32_t index)
{
    for (size_t i = 0; i < ds->nshards; i++) {
        if (ds->shards[i].index == index) {
            return &ds->shards[i];
        }
    }
    return NULL;
}

/* Learn new shards (resharding). A shard first seen after creation starts at its trim
 * horizon: every record in it arrived after the stream started delivering. */
static void refresh_shards(dstream *ds, int at_latest)
{
    const cp_ds_config *cfg = ds->set.cfg;
    if (cfg->type != CP_DS_KINESIS) {
        if (!ds->nshards) {
            ds->shards = cp_calloc(1, sizeof(*ds->shards));
            ds->nshards = 1;
            ds->shards[0] = (shard_src){INTAKE_SHARD, cp_seglog_start(ds->intake), 0};
        }
        return;
    }
    cp_stream_desc *desc;
    if (cp_streams_describe(ds->d->o.streams, cp_slice_str(cfg->source_stream), &desc, NULL) !=
        CP_OK) {
        return;
    }
    for (size_t i = 0; i < desc->nshards; i++) {
        uint32_t idx = desc->shards[i].index;
        if (find_shard(ds, idx)) {
            continue;
        }
        uint64_t pos = 0;
        cp_streams_iterator(ds->d->o.streams, cp_slice_str(cfg->source_stream), idx,
                            at_latest ? CP_ITER_LATEST : CP_ITER_TRIM_HORIZON, CP_SLICE(""), 0,
                            &pos, NULL);
        ds->shards = cp_realloc(ds->shards, (ds->nshards + 1) * sizeof(*ds->shards));
        ds->shards[ds->nshards++] = (shard_src){idx, pos, 0};
    }
    cp_stream_desc_free(desc);
    ds->shards_refreshed_ms = cp_clock_now_ms();
}

/* Read up to the round's budget from every shard into ds->batch. Returns records read. */
static size_t read_round(dstream *ds, uint64_t *next_pos)
{
    const cp_ds_config *cfg = ds->set.cfg;
    cp_batch_reset(&ds->batch);
    size_t total = 0, bytes = 0;
    ds->st.millis_behind = 0;
    /* Shards the round's budget does not reach keep their position. */
    for (size_t i = 0; i < ds->nshards; i++) {
        next_pos[i] = ds->shards[i].pos;
    }
    /* Start at a different shard each round, so a busy shard cannot starve the others. */
    size_t first = ds->nshards ? (size_t) (ds->rounds++ % ds->nshards) : 0;
    for (size_t step = 0; step < ds->nshards && total < ROUND_MAX_RECORDS; step++) {
        size_t i = (first + step) % ds->nshards;
        shard_src *sh = &ds->shards[i];
        if (sh->done) {
            continue;
        }
        if (cfg->type != CP_DS_KINESIS) {
            cp_seglog_reader *r;
            if (cp_seglog_reader_open(ds->intake, sh->pos, &r, NULL) != CP_OK) {
                continue;
            }
            cp_slice payload;
            uint64_t pos;
            int64_t ts;
            while (total < ROUND_MAX_RECORDS && bytes < ROUND_MAX_BYTES &&
                   cp_seglog_read(r, &payload, &pos, &ts, NULL) == CP_OK) {
                cp_drec *rec = cp_batch_add(&ds->batch);
                rec->shard = INTAKE_SHARD;
                rec->seq = pos;
                rec->arrival_ms = ts;
                rec->raw = rec->data = cp_batch_copy(&ds->batch, payload);
                total++;
                bytes += payload.len;
            }
            next_pos[i] = cp_seglog_reader_pos(r);
            cp_seglog_reader_close(r);
            continue;
        }
        size_t want = ROUND_MAX_RECORDS - total;
        int rc = cp_streams_read(ds->d->o.streams, cp_slice_str(cfg->source_stream), sh->index,
                                 sh->pos, want, ROUND_MAX_BYTES - bytes, &ds->rd, NULL);
        if (rc != CP_OK) {
            continue;
        }
        for (size_t k = 0; k < ds->rd.batch.n; k++) {
            const cp_stream_rec *sr = &ds->rd.batch.recs[k];
            cp_drec *rec = cp_batch_add(&ds->batch);
            rec->shard = sh->index;
            rec->seq = sr->seq;
            rec->arrival_ms = sr->arrival_ms;
            rec->source_pk = cp_batch_copy(&ds->batch, sr->partition_key);
            rec->raw = rec->data = cp_batch_copy(&ds->batch, sr->data);
            bytes += sr->data.len;
        }
        total += ds->rd.batch.n;
        next_pos[i] = ds->rd.next_pos;
        if (ds->rd.millis_behind > ds->st.millis_behind) {
            ds->st.millis_behind = ds->rd.millis_behind;
        }
        if (ds->rd.shard_end) {
            sh->done = 1;
        }
    }
    return total;
}

/* ------------------------------------------------------------------------------------------
 * Processing and staging.
 * ---------------------------------------------------------------------------------------- */

/* Run the processors in pipeline order. Engine-owned retries for CP_RETRY; CP_EFAIL fails
 * every still-OK record with the code the processor reported. */
void cp__engine_run_processors(dstream *ds)
{
    for (size_t i = 0; i < ds->set.nprocs; i++) {
        const proc_inst *pi = &ds->set.procs[i];
        int64_t backoff = 100;
        for (;;) {
            cp_err err = {0};
            int rc = pi->ops->apply(pi->ctx, &ds->batch, &err);
            if (rc == CP_OK) {
                break;
            }
            if (rc == CP_RETRY && !ds->stop) {
                ds->st.processor_retries++;
                struct timespec ts = {backoff / 1000, (backoff % 1000) * 1000000};
                nanosleep(&ts, NULL);
                backoff = backoff < 5000 ? backoff * 2 : 5000;
                continue;
            }
            /* Permanent whole-batch failure: "<code>: <message>" in err. */
            char code[96] = "Processor.Failed";
            const char *msg = err.msg;
            const char *colon = strstr(err.msg, ": ");
            if (colon && (size_t) (colon - err.msg) < sizeof(code)) {
                memcpy(code, err.msg, (size_t) (colon - err.msg));
                code[colon - err.msg] = 0;
                msg = colon + 2;
            }
            /* The code must outlive the batch: intern it in the batch arena. */
            cp_slice c = cp_batch_copy(&ds->batch, cp_slice_of(code, strlen(code) + 1));
            for (size_t k = 0; k < ds->batch.n; k++) {
                cp_drec *r = &ds->batch.recs[k];
                if (r->result == CP_REC_OK) {
                    cp_drec_fail(&ds->batch, r, "processing-failed", c.p, msg);
                    r->attempts = r->attempts ? r->attempts : 1;
                }
            }
            break;
        }
    }
}

/* One line of JSON object, optionally ending in a newline (the Athena-safe check). */
static int is_json_line(cp_slice data)
{
    if (data.len && data.p[data.len - 1] == '\n') {
        data.len--;
    }
    if (memchr(data.p, '\n', data.len)) {
        return 0;
    }
    cp_json_lexer lx;
    cp_json_lexer_init(&lx, data);
    cp_json_tok t;
    if (cp_json_next(&lx, &t) != CP_OK || t.type != CP_JSON_OBJ_BEGIN ||
        cp_json_skip(&lx, &t) != CP_OK || cp_json_next(&lx, &t) != CP_OK) {
        return 0;
    }
    return t.type == CP_JSON_END;
}

/* The error document Firehose writes for a failed record (one JSON line). */
void cp__engine_error_document(const dstream *ds, const cp_drec *r, cp_buf *out)
{
    cp_buf_puts(out, "{\"rawData\":\"");
    cp_base64_encode(r->raw, out);
    cp_buf_puts(out, "\",\"errorCode\":");
    cp_json_put_str(out, cp_slice_str(r->error_code ? r->error_code : "Unknown"));
    cp_buf_puts(out, ",\"errorMessage\":");
    cp_json_put_str(out, r->error_message);
    cp_buf_printf(out, ",\"attemptsMade\":%u,\"arrivalTimestamp\":%lld,"
                       "\"attemptEndingTimestamp\":%lld",
                  r->attempts ? r->attempts : 1, (long long) r->arrival_ms,
                  (long long) cp_clock_now_ms());
    const char *lambda = cp_ds_config_lambda_arn(ds->set.cfg);
    if (lambda && r->error_code && strncmp(r->error_code, "Lambda.", 7) == 0) {
        cp_buf_puts(out, ",\"lambdaARN\":");
        cp_json_put_str(out, cp_slice_str(lambda));
    }
    cp_buf_puts(out, "}\n");
}

static uint32_t active_partitions(const dstream *ds)
{
    uint32_t n = 0;
    for (size_t i = 0; i < ds->parts.cap; i++) {
        const partition *p = ds->parts.slots[i];
        n += p && !p->error_type && (p->len || p->pending);
    }
    return n;
}

static int stage_into(dstream *ds, partition *p, const cp_drec *r, cp_slice bytes, cp_err *err)
{
    if (p->len == 0 && p->pending == 0) {
        p->opened_ms = cp_clock_now_ms();
        p->first_arrival_ms = r->arrival_ms;
        p->version = ds->set.cfg->version;
    }
    if (r->arrival_ms < p->first_arrival_ms) {
        p->first_arrival_ms = r->arrival_ms;
    }
    if (r->arrival_ms > p->last_arrival_ms) {
        p->last_arrival_ms = r->arrival_ms;
    }
    range_add(p, r->shard, r->seq);
    return spill_append(ds, p, bytes, err);
}

static int stage_error(dstream *ds, cp_drec *r, cp_err *err)
{
    char id[64];
    snprintf(id, sizeof(id), "\x01%s", r->error_type ? r->error_type : "processing-failed");
    partition *p = ptable_find(&ds->parts, id, 1);
    if (!p->error_type) {
        p->error_type = r->error_type ? r->error_type : "processing-failed";
    }
    cp_buf_reset(&ds->scratch);
    cp__engine_error_document(ds, r, &ds->scratch);
    ds->st.records_errored++;
    return stage_into(ds, p, r, cp_buf_slice(&ds->scratch), err);
}

/* Where a processed record belongs: an OK record's data partition id goes to *id ("" without
 * dynamic partitioning); a record that fails the Athena-safety check or whose prefix cannot be
 * evaluated is marked FAILED. Shared by staging and replay, so both decide alike. */
void cp__engine_route_record(dstream *ds, cp_drec *r, cp_buf *id)
{
    const cp_ds_config *cfg = ds->set.cfg;
    cp_buf_reset(id);
    if (r->result == CP_REC_OK && cfg->validate_json && !is_json_line(r->data)) {
        cp_drec_fail(&ds->batch, r, "processing-failed", "Changepipe.InvalidJsonLine",
                     "The record is not one JSON object on one line");
    }
    if (r->result == CP_REC_OK && cfg->dynamic_partitioning) {
        cp_prefix_vars v = {.instant_ms = r->arrival_ms, .tz = cfg->tz, .rec = r,
                            .random_seed = 0};
        cp_err perr = {0};
        if (cp_prefix_eval(ds->set.prefix, &v, id, &perr) != CP_OK) {
            cp_drec_fail(&ds->batch, r, "partitioning-failed",
                         "DynamicPartitioning.MetadataExtractionFailed", perr.msg);
        }
    }
}

/* Decide each record's partition and append it to its spill file. */
static int stage_round(dstream *ds, cp_err *err)
{
    const cp_ds_config *cfg = ds->set.cfg;
    uint32_t limit = cfg->max_active_partitions     ? cfg->max_active_partitions
                     : ds->d->o.max_active_partitions ? ds->d->o.max_active_partitions
                                                      : DEFAULT_PARTITIONS;
    uint32_t active = cfg->dynamic_partitioning ? active_partitions(ds) : 0;
    cp_buf id = CP_BUF_INIT;
    int rc = CP_OK;
    for (size_t i = 0; i < ds->batch.n && rc == CP_OK; i++) {
        cp_drec *r = &ds->batch.recs[i];
        ds->st.records_read++;
        if (r->result == CP_REC_DROPPED) {
            ds->st.records_dropped++;
            continue;
        }
        partition *p = NULL;
        cp__engine_route_record(ds, r, &id);
        if (r->result == CP_REC_OK) {
            p = ptable_find(&ds->parts, id.p ? id.p : "", 0);
            if (!p || (!p->len && !p->pending)) {
                if (cfg->dynamic_partitioning && active >= limit) {
                    cp_drec_fail(&ds->batch, r, "partitioning-failed",
                                 "DynamicPartitioning.ActivePartitionCountExceeded",
                                 "The number of active partitions exceeded the limit");
                } else {
                    p = ptable_find(&ds->parts, id.p ? id.p : "", 1);
                    active++;
                }
            }
        }
        if (r->result == CP_REC_FAILED) {
            rc = stage_error(ds, r, err);
            continue;
        }
        rc = stage_into(ds, p, r, r->data, err);
    }
    cp_buf_free(&id);
    return rc;
}

/* Make the round durable: fsync the touched spill files, then one transaction with the new
 * checkpoints and partition lengths. */
static int commit_round(dstream *ds, const uint64_t *next_pos, cp_err *err)
{
    for (partition *p = ds->touched; p; p = p->next_touched) {
        if (!ds->d->o.no_fsync && fdatasync(p->fd) != 0) {
            return cp_err_set(err, CP_EIO, "spill fsync failed: %s", strerror(errno));
        }
    }
    MDB_txn *txn;
    int mrc = mdb_txn_begin(ds->d->env, NULL, 0, &txn);
    if (mrc) {
        return cp__engine_mdb_err(err, mrc, "begin");
    }
    cp_buf k = CP_BUF_INIT, v = CP_BUF_INIT;
    for (size_t i = 0; i < ds->nshards && mrc == 0; i++) {
        unsigned char idx[4];
        cp_store_u32le(idx, ds->shards[i].index);
        state_key(&k, ds->name, idx, 4);
        unsigned char pos[8];
        cp_store_u64le(pos, next_pos[i]);
        mrc = cp__engine_put_kv(txn, ds->d->ckpt, cp_buf_slice(&k), cp_slice_of((char *) pos, 8));
    }
    uint64_t buffered = 0;
    for (partition *p = ds->touched; p && mrc == 0; p = p->next_touched) {
        partition staged = *p;
        staged.len += p->pending;
        staged.records += p->pending_records;
        cp_buf_reset(&v);
        partition_encode(&staged, &v);
        state_key(&k, ds->name, p->id, strlen(p->id));
        mrc = cp__engine_put_kv(txn, ds->d->parts, cp_buf_slice(&k), cp_buf_slice(&v));
        buffered += p->pending_records;
    }
    cp_delivery_stats before = ds->st;
    ds->st.records_buffered += buffered;
    if (mrc == 0) {
        mrc = put_stats(ds, txn);
    }
    if (mrc == 0) {
        mrc = mdb_txn_commit(txn);
    } else {
        mdb_txn_abort(txn);
    }
    cp_buf_free(&k);
    cp_buf_free(&v);
    if (mrc) {
        ds->st = before;
        return cp__engine_mdb_err(err, mrc, "commit");
    }
    for (size_t i = 0; i < ds->nshards; i++) {
        ds->shards[i].pos = next_pos[i];
    }
    while (ds->touched) {
        partition *p = ds->touched;
        p->len += p->pending;
        p->records += p->pending_records;
        p->pending = p->pending_records = 0;
        p->touched = 0;
        ds->touched = p->next_touched;
        p->next_touched = NULL;
    }
    return CP_OK;
}

/* After a failed round: forget what was staged (files are truncated back on the next append
 * position, and the counters restored from the last commit). */
static void abort_round(dstream *ds, const cp_delivery_stats *before)
{
    while (ds->touched) {
        partition *p = ds->touched;
        if (p->fd >= 0 && ftruncate(p->fd, (off_t) p->len) != 0) {
            CP_LOG_WARN("delivery", "cannot truncate a spill file: %s", strerror(errno));
        }
        p->pending = p->pending_records = 0;
        p->touched = 0;
        ds->touched = p->next_touched;
        p->next_touched = NULL;
    }
    ds->st = *before;
}

/* ------------------------------------------------------------------------------------------
 * Flushing: a partition's committed bytes become one object.
 * ---------------------------------------------------------------------------------------- */

static int read_spill(dstream *ds, partition *p, cp_buf *out, cp_err *err)
{
    int rc = spill_open(ds, p, err);
    if (rc < 0) {
        return rc;
    }
    cp_buf_reset(out);
    cp_buf_reserve(out, p->len);
    if (pread(p->fd, out->p, p->len, 0) != (ssize_t) p->len) {
        return cp_err_set(err, CP_EIO, "spill read failed: %s", strerror(errno));
    }
    out->len = p->len;
    out->p[out->len] = 0;
    return CP_OK;
}

/* The object key of a partition's current generation: deterministic, so a flush repeated
 * after a crash writes the same key. */
int cp__engine_object_key(dstream *ds, const partition *p, cp_buf *key, cp_err *err)
{
    const cp_ds_config *cfg = ds->set.cfg;
    unsigned char seed_in[300], uuid[16];
    int n = snprintf((char *) seed_in, sizeof(seed_in), "%s|%s|%llu|%u", ds->name, p->hash,
                     (unsigned long long) p->gen, p->version);
    cp_md5(seed_in, (size_t) n, uuid);
    cp_buf prefix = CP_BUF_INIT;
    int rc = CP_OK;
    if (p->error_type) {
        cp_prefix_vars v = {.instant_ms = p->first_arrival_ms, .tz = cfg->tz,
                            .error_type = p->error_type, .random_seed = cp_load_u64le(uuid)};
        rc = cp_prefix_eval(ds->set.error_prefix, &v, &prefix, err);
    } else if (cfg->dynamic_partitioning) {
        cp_buf_puts(&prefix, p->id);
    } else {
        cp_prefix_vars v = {.instant_ms = p->first_arrival_ms, .tz = cfg->tz,
                            .random_seed = cp_load_u64le(uuid)};
        rc = cp_prefix_eval(ds->set.prefix, &v, &prefix, err);
    }
    if (rc == CP_OK) {
        uuid[6] = (unsigned char) ((uuid[6] & 0x0f) | 0x40);
        uuid[8] = (unsigned char) ((uuid[8] & 0x3f) | 0x80);
        cp_buf_reset(key);
        const char *ext = p->error_type ? "" : cp_ds_config_extension(cfg);
        cp_object_key(key, cp_buf_slice(&prefix), ds->name, p->version, p->first_arrival_ms,
                      cfg->tz, uuid, ext);
    }
    cp_buf_free(&prefix);
    return rc;
}

/* Manifest entry: partition id, gen, records, first/last arrival, ranges. */
static void manifest_encode(const partition *p, cp_buf *out)
{
    cp_buf_put_bytes(out, p->id, strlen(p->id));
    partition_encode(p, out);
}

static int flush_partition(dstream *ds, partition *p, cp_err *err)
{
    const cp_ds_config *cfg = ds->set.cfg;
    cp_buf body = CP_BUF_INIT, key = CP_BUF_INIT, gz = CP_BUF_INIT;
    int rc = read_spill(ds, p, &body, err);
    if (rc == CP_OK) {
        rc = cp__engine_object_key(ds, p, &key, err);
    }
    int gzip = !p->error_type && cfg->compression == CP_DS_GZIP;
    if (rc == CP_OK && gzip) {
        rc = cp_gzip_compress(cp_buf_slice(&body), CP_GZIP_LEVEL_DEFAULT, &gz, err);
    }
    if (rc != CP_OK) {
        cp_buf_free(&body);
        cp_buf_free(&key);
        cp_buf_free(&gz);
        return rc;
    }
    cp_object obj = {.bucket = cfg->bucket,
                     .key = cp_buf_slice(&key),
                     .body = gzip ? cp_buf_slice(&gz) : cp_buf_slice(&body),
                     .encoding = gzip ? "gzip" : NULL};
    /* Never skip data: retry until the object is stored or the stream stops (the spill file
     * keeps the data for the next start). */
    int64_t backoff = 100;
    for (;;) {
        cp_err serr = {0};
        rc = ds->set.sink->put_object(ds->set.sink_ctx, &obj, &serr);
        if (rc == CP_OK || ds->stop) {
            break;
        }
        CP_LOG_WARN("delivery", "%s: storing %.*s failed (%s), retrying", ds->name,
                    (int) obj.key.len, obj.key.p, serr.msg);
        struct timespec ts = {backoff / 1000, (backoff % 1000) * 1000000};
        nanosleep(&ts, NULL);
        backoff = backoff < 10000 ? backoff * 2 : 10000;
    }
    if (rc != CP_OK) {
        cp_buf_free(&body);
        cp_buf_free(&key);
        cp_buf_free(&gz);
        return cp_err_set(err, CP_ECLOSED, "stopping");
    }
    uint64_t stored = obj.body.len;
    cp_buf_free(&body);
    cp_buf_free(&gz);

    /* Record the object and open the next generation in one transaction. */
    MDB_txn *txn;
    int mrc = mdb_txn_begin(ds->d->env, NULL, 0, &txn);
    cp_buf k = CP_BUF_INIT, v = CP_BUF_INIT;
    if (mrc == 0) {
        manifest_encode(p, &v);
        state_key(&k, ds->name, key.p, key.len);
        mrc = cp__engine_put_kv(txn, ds->d->manifest, cp_buf_slice(&k), cp_buf_slice(&v));
    }
    partition next = *p;
    next.gen = p->gen + 1;
    next.len = next.records = 0;
    next.first_arrival_ms = next.last_arrival_ms = next.opened_ms = 0;
    next.nranges = 0;
    cp_delivery_stats before = ds->st;
    if (p->error_type) {
        /* errored was counted when the document was staged */
    } else {
        ds->st.records_delivered += p->records;
    }
    ds->st.records_buffered -= p->records;
    ds->st.objects++;
    ds->st.bytes += stored;
    if (mrc == 0) {
        cp_buf_reset(&v);
        partition_encode(&next, &v);
        state_key(&k, ds->name, p->id, strlen(p->id));
        mrc = cp__engine_put_kv(txn, ds->d->parts, cp_buf_slice(&k), cp_buf_slice(&v));
    }
    if (mrc == 0) {
        mrc = put_stats(ds, txn);
    }
    if (mrc == 0) {
        mrc = mdb_txn_commit(txn);
    } else if (txn) {
        mdb_txn_abort(txn);
    }
    cp_buf_free(&k);
    cp_buf_free(&v);
    cp_buf_free(&key);
    if (mrc) {
        ds->st = before;
        return cp__engine_mdb_err(err, mrc, "flush commit");
    }
    char path[4400];
    spill_path(ds, p, p->gen, path, sizeof(path));
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
        ds->parts.open_fds--;
    }
    unlink(path);
    p->gen = next.gen;
    p->len = p->records = 0;
    p->first_arrival_ms = p->last_arrival_ms = p->opened_ms = 0;
    p->nranges = 0;
    cp__engine_publish(ds);
    return CP_OK;
}

/* Flush partitions whose size or interval hint is reached (all of them with force). */
static int flush_due(dstream *ds, int force, cp_err *err)
{
    const cp_ds_config *cfg = ds->set.cfg;
    int64_t now = cp_clock_now_ms();
    for (size_t i = 0; i < ds->parts.cap && !ds->stop; i++) {
        partition *p = ds->parts.slots[i];
        if (!p || !p->len) {
            continue;
        }
        if (force || p->len >= (uint64_t) cfg->buffer_bytes ||
            now - p->opened_ms >= cfg->buffer_interval_ms) {
            int rc = flush_partition(ds, p, err);
            if (rc < 0) {
                return rc;
            }
        }
    }
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------
 * Recovery and the worker.
 * ---------------------------------------------------------------------------------------- */

/* Load checkpoints, partitions and counters; truncate spill files to committed lengths and
 * remove files of generations that were never committed. */
static int recover(dstream *ds, cp_err *err)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/parts", ds->dir);
    mkdir(ds->dir, 0755);
    mkdir(path, 0755);
    MDB_txn *txn;
    int mrc = mdb_txn_begin(ds->d->env, NULL, MDB_RDONLY, &txn);
    if (mrc) {
        return cp__engine_mdb_err(err, mrc, "begin");
    }
    MDB_cursor *c;
    size_t nl = strlen(ds->name) + 1;
    MDB_val k, v;
    int rc = CP_OK;
    /* Checkpoints */
    mdb_cursor_open(txn, ds->d->ckpt, &c);
    k = (MDB_val){nl, ds->name};
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
         mrc == 0 && k.mv_size == nl + 4 && memcmp(k.mv_data, ds->name, nl) == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        ds->shards = cp_realloc(ds->shards, (ds->nshards + 1) * sizeof(*ds->shards));
        ds->shards[ds->nshards++] =
            (shard_src){cp_load_u32le((char *) k.mv_data + nl), cp_load_u64le(v.mv_data), 0};
    }
    mdb_cursor_close(c);
    /* Partitions */
    mdb_cursor_open(txn, ds->d->parts, &c);
    k = (MDB_val){nl, ds->name};
    for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
         mrc == 0 && k.mv_size >= nl && memcmp(k.mv_data, ds->name, nl) == 0;
         mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        char *id = cp_strndup((char *) k.mv_data + nl, k.mv_size - nl);
        partition *p = ptable_find(&ds->parts, id, 1);
        cp_free(id);
        if (cp__engine_partition_decode(cp_slice_of(v.mv_data, v.mv_size), p) != CP_OK) {
            rc = cp_err_set(err, CP_ECORRUPT, "delivery partition state is corrupt");
            break;
        }
        if (p->id[0] == '\x01') {
            p->error_type = cp_ds_error_type_intern(p->id + 1);
        }
        ds->st.active_partitions += p->len > 0;
    }
    mdb_cursor_close(c);
    MDB_val sk = {strlen(ds->name), ds->name};
    if (mdb_get(txn, ds->d->stats_db, &sk, &v) == 0) {
        cp__engine_stats_decode(cp_slice_of(v.mv_data, v.mv_size), &ds->st);
    }
    mdb_txn_abort(txn);
    if (rc != CP_OK) {
        return rc;
    }
    /* Spill files: keep the committed prefix of each partition's current generation. */
    DIR *dir = opendir(path);
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char full[4700];
        snprintf(full, sizeof(full), "%s/%s", path, e->d_name);
        int keep = 0;
        for (size_t i = 0; i < ds->parts.cap && !keep; i++) {
            partition *p = ds->parts.slots[i];
            char want[80];
            if (p) {
                snprintf(want, sizeof(want), "%s-%llu.buf", p->hash, (unsigned long long) p->gen);
                keep = strcmp(want, e->d_name) == 0;
                if (keep && truncate(full, (off_t) p->len) != 0) {
                    rc = cp_err_set(err, -errno, "cannot truncate a spill file");
                }
            }
        }
        if (!keep) {
            unlink(full);
        }
    }
    if (dir) {
        closedir(dir);
    }
    return rc;
}

void *cp__engine_worker_main(void *arg)
{
    dstream *ds = arg;
    uint64_t *next_pos = NULL;
    size_t next_cap = 0;
    int64_t backoff = 100;
    while (!ds->stop) {
        cp_err err = {0};
        pthread_mutex_lock(&ds->mu);
        int force = ds->flush_all;
        /* An empty read satisfies only the drains that asked before it began: one that began
         * earlier may have missed the records put just before the drain. */
        uint64_t catchup_req = ds->catchup_req;
        pthread_mutex_unlock(&ds->mu);
        int rc = flush_due(ds, force, &err);
        if (rc == CP_OK && force) {
            pthread_mutex_lock(&ds->mu);
            ds->flush_all = 0;
            ds->drain_gen++;
            pthread_cond_broadcast(&ds->cv);
            pthread_mutex_unlock(&ds->mu);
        }
        if (cp_clock_now_ms() - ds->shards_refreshed_ms >= SHARD_REFRESH_MS) {
            refresh_shards(ds, 0);
        }
        if (next_cap < ds->nshards) {
            next_cap = ds->nshards;
            next_pos = cp_realloc(next_pos, next_cap * sizeof(*next_pos));
        }
        size_t n = rc == CP_OK ? read_round(ds, next_pos) : 0;
        if (n == 0) {
            pthread_mutex_lock(&ds->mu);
            if (rc == CP_OK) {
                ds->catchup_seen = catchup_req;
            }
            pthread_cond_broadcast(&ds->cv);
            if (!ds->stop && !ds->flush_all) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t wait = rc == CP_OK ? IDLE_WAIT_MS : backoff;
                ts.tv_nsec += (long) (wait % 1000) * 1000000;
                ts.tv_sec += wait / 1000 + ts.tv_nsec / 1000000000;
                ts.tv_nsec %= 1000000000;
                pthread_cond_timedwait(&ds->cv, &ds->mu, &ts);
            }
            pthread_mutex_unlock(&ds->mu);
            if (rc != CP_OK) {
                CP_LOG_WARN("delivery", "%s: %s", ds->name, err.msg);
                backoff = backoff < 5000 ? backoff * 2 : 5000;
            }
            continue;
        }
        cp_delivery_stats before = ds->st;
        cp__engine_run_processors(ds);
        rc = stage_round(ds, &err);
        if (rc == CP_OK) {
            rc = commit_round(ds, next_pos, &err);
        }
        if (rc != CP_OK) {
            abort_round(ds, &before);
            CP_LOG_ERROR("delivery", "%s: round failed, will retry: %s", ds->name, err.msg);
            struct timespec ts = {backoff / 1000, (backoff % 1000) * 1000000};
            nanosleep(&ts, NULL);
            backoff = backoff < 5000 ? backoff * 2 : 5000;
            continue;
        }
        backoff = 100;
        ds->st.active_partitions = active_partitions(ds);
        cp__engine_publish(ds);
    }
    cp_free(next_pos);
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * Lifecycle of one delivery stream.
 * ---------------------------------------------------------------------------------------- */

void cp__engine_dstream_free(dstream *ds)
{
    settings_free(&ds->set);
    ptable_free(&ds->parts);
    cp_seglog_close(ds->intake);
    cp_free(ds->shards);
    cp_batch_free(&ds->batch);
    cp_stream_read_free(&ds->rd);
    cp_buf_free(&ds->scratch);
    pthread_mutex_destroy(&ds->mu);
    pthread_cond_destroy(&ds->cv);
    cp_free(ds);
}

void cp__engine_dstream_stop(dstream *ds)
{
    pthread_mutex_lock(&ds->mu);
    ds->stop = 1;
    pthread_cond_broadcast(&ds->cv);
    pthread_mutex_unlock(&ds->mu);
    if (ds->running) {
        pthread_join(ds->thread, NULL);
        ds->running = 0;
    }
}

/* Build and start a stream from its configuration (takes ownership of cfg). `fresh`: a new
 * stream whose Kinesis shards start at LATEST. */
int cp__engine_dstream_start(cp_delivery *d, cp_ds_config *cfg, int fresh, dstream **out,
                         cp_err *err)
{
    dstream *ds = cp_calloc(1, sizeof(*ds));
    ds->d = d;
    pthread_mutex_init(&ds->mu, NULL);
    pthread_cond_init(&ds->cv, NULL);
    snprintf(ds->name, sizeof(ds->name), "%s", cfg->name);
    snprintf(ds->dir, sizeof(ds->dir), "%s/%s", d->dir, cfg->name);
    int rc = settings_init(&ds->set, cfg, &d->o, err);
    if (rc != CP_OK) {
        pthread_mutex_destroy(&ds->mu);
        pthread_cond_destroy(&ds->cv);
        cp_free(ds);
        return rc;
    }
    rc = recover(ds, err);
    ds->pub = ds->st;
    if (rc == CP_OK && ds->set.cfg->type != CP_DS_KINESIS) {
        char path[4400];
        snprintf(path, sizeof(path), "%s/intake", ds->dir);
        cp_seglog_opts lo = {.no_fsync = d->o.no_fsync};
        rc = cp_seglog_open(path, &lo, &ds->intake, err);
    }
    if (rc == CP_OK) {
        refresh_shards(ds, fresh);
        if (fresh) {
            /* Persist the LATEST positions now, so a restart does not skip to a later LATEST. */
            uint64_t *pos = cp_calloc(ds->nshards ? ds->nshards : 1, sizeof(uint64_t));
            for (size_t i = 0; i < ds->nshards; i++) {
                pos[i] = ds->shards[i].pos;
            }
            rc = commit_round(ds, pos, err);
            cp_free(pos);
        }
    }
    if (rc == CP_OK) {
        ds->running = pthread_create(&ds->thread, NULL, cp__engine_worker_main, ds) == 0;
        if (!ds->running) {
            rc = cp_err_set(err, CP_EIO, "cannot start a delivery worker");
        }
    }
    if (rc != CP_OK) {
        cp__engine_dstream_free(ds);
        return rc;
    }
    *out = ds;
    return CP_OK;
}

dstream *cp__engine_find_locked(cp_delivery *d, const char *name, size_t *at)
{
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->list[i]->name, name) == 0) {
            if (at) {
                *at = i;
            }
            return d->list[i];
        }
    }
    return NULL;
}

int cp__engine_save_config(cp_delivery *d, const cp_ds_config *cfg, cp_err *err)
{
    cp_buf json = CP_BUF_INIT;
    cp_ds_config_to_json(cfg, &json);
    MDB_txn *txn;
    int mrc = mdb_txn_begin(d->env, NULL, 0, &txn);
    if (mrc == 0) {
        mrc = cp__engine_put_kv(txn, d->streams_db, cp_slice_str(cfg->name), cp_buf_slice(&json));
        if (mrc == 0) {
            mrc = mdb_txn_commit(txn);
        } else {
            mdb_txn_abort(txn);
        }
    }
    cp_buf_free(&json);
    return mrc ? cp__engine_mdb_err(err, mrc, "save") : CP_OK;
}
