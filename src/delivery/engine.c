/* SPDX-License-Identifier: MIT */
/*
 * The delivery engine (see engine.h for the exactly-once protocol). Sections: state database,
 * partitions and spill files, sources, the round (read, process, stage, commit), flushing,
 * the worker, and the public API.
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

#define ROUND_MAX_RECORDS  10000
#define ROUND_MAX_BYTES    (8u << 20)
#define IDLE_WAIT_MS       50
#define SHARD_REFRESH_MS   2000
#define MAX_OPEN_FILES     256
#define DEFAULT_PARTITIONS 500
#define INTAKE_SHARD       0

/* ------------------------------------------------------------------------------------------
 * Settings: the parts of a cp_ds_config the worker uses, resolved once per configuration.
 * ---------------------------------------------------------------------------------------- */

typedef struct proc_inst {
    const cp_processor_ops *ops;
    void *ctx;
} proc_inst;

typedef struct settings {
    cp_ds_config *cfg; /* owned */
    const cp_sink_ops *sink; /* where this stream's objects go */
    void *sink_ctx;
    cp_prefix *prefix, *error_prefix;
    proc_inst procs[8];
    size_t nprocs;
    char arn[256], source_arn[256];
} settings;

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

typedef struct range {
    uint32_t shard;
    uint64_t lo, hi; /* first and last source position in the partition's generation */
} range;

typedef struct partition {
    char *id;               /* data: evaluated prefix ("" without dynamic partitioning);
                             * errors: "\x01" + error type */
    const char *error_type; /* NULL for data partitions */
    char hash[33];          /* hex MD5 of the id: the spill file name stem */
    uint64_t gen;
    uint64_t len;           /* committed bytes */
    uint64_t pending;       /* bytes appended this round, not committed yet */
    uint64_t records, pending_records;
    int64_t first_arrival_ms; /* oldest record arrival: the object's timestamp */
    int64_t opened_ms;        /* wall time the generation got its first record */
    int64_t last_arrival_ms;
    uint32_t version;         /* config version when the generation opened */
    range *ranges;
    uint32_t nranges;
    int fd;
    int touched;
    struct partition *next_touched;
} partition;

typedef struct ptable {
    partition **slots;
    size_t cap, n;
    size_t open_fds;
} ptable;

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

static int partition_decode(cp_slice in, partition *p)
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

typedef struct shard_src {
    uint32_t index;
    uint64_t pos; /* next position to read */
    int done;     /* closed and fully read */
} shard_src;

typedef struct dstream dstream;

struct cp_delivery {
    cp_delivery_opts o;
    char dir[4096];
    MDB_env *env;
    MDB_dbi ckpt, parts, manifest, streams_db, stats_db;
    pthread_mutex_t mu; /* guards the list below */
    dstream **list;
    size_t n;
};

struct dstream {
    cp_delivery *d;
    char name[128];
    char dir[4200];
    pthread_mutex_t mu; /* guards settings swaps, drain and stop flags, stats */
    pthread_cond_t cv;
    settings set;
    pthread_t thread;
    int running, stop;
    int flush_all;         /* a drain asked for every buffer to be flushed */
    uint64_t drain_gen;    /* bumped when a requested flush-all completed */
    uint64_t catchup_req;  /* bumped by each drain that waits for the source's end */
    uint64_t catchup_seen; /* catchup_req as it was when the last empty read began */
    cp_seglog *intake;     /* DirectPut */
    shard_src *shards;
    size_t nshards;
    uint64_t rounds;       /* rounds read, for rotating the first shard */
    int64_t shards_refreshed_ms;
    ptable parts;
    partition *touched;
    cp_delivery_stats st;  /* the worker's working counters */
    cp_delivery_stats pub; /* the last committed state, published under mu for readers */
    cp_batch batch;
    cp_stream_read rd;
    cp_buf scratch;
};

static int mdb_err(cp_err *err, int mrc, const char *what)
{
    return cp_err_set(err, CP_EIO, "delivery state %s: %s", what, mdb_strerror(mrc));
}

static void state_key(cp_buf *k, const char *stream, const void *rest, size_t len)
{
    cp_buf_reset(k);
    cp_buf_append(k, stream, strlen(stream) + 1);
    cp_buf_append(k, rest, len);
}

static int put_kv(MDB_txn *txn, MDB_dbi dbi, cp_slice k, cp_slice v)
{
    MDB_val mk = {k.len, (void *) k.p}, mv = {v.len, (void *) v.p};
    return mdb_put(txn, dbi, &mk, &mv, 0);
}

/* Delete every key of a database that starts with stream\0. */
static int del_prefix(MDB_txn *txn, MDB_dbi dbi, const char *stream)
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

static void stats_decode(cp_slice in, cp_delivery_stats *s)
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
static void publish(dstream *ds)
{
    pthread_mutex_lock(&ds->mu);
    ds->pub = ds->st;
    pthread_mutex_unlock(&ds->mu);
}

static int put_stats(dstream *ds, MDB_txn *txn)
{
    cp_buf v = CP_BUF_INIT;
    stats_encode(&ds->st, &v);
    int mrc = put_kv(txn, ds->d->stats_db, cp_slice_str(ds->name), cp_buf_slice(&v));
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
static void run_processors(dstream *ds)
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
static void error_document(const dstream *ds, const cp_drec *r, cp_buf *out)
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
    error_document(ds, r, &ds->scratch);
    ds->st.records_errored++;
    return stage_into(ds, p, r, cp_buf_slice(&ds->scratch), err);
}

/* Where a processed record belongs: an OK record's data partition id goes to *id ("" without
 * dynamic partitioning); a record that fails the Athena-safety check or whose prefix cannot be
 * evaluated is marked FAILED. Shared by staging and replay, so both decide alike. */
static void route_record(dstream *ds, cp_drec *r, cp_buf *id)
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
        route_record(ds, r, &id);
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
        return mdb_err(err, mrc, "begin");
    }
    cp_buf k = CP_BUF_INIT, v = CP_BUF_INIT;
    for (size_t i = 0; i < ds->nshards && mrc == 0; i++) {
        unsigned char idx[4];
        cp_store_u32le(idx, ds->shards[i].index);
        state_key(&k, ds->name, idx, 4);
        unsigned char pos[8];
        cp_store_u64le(pos, next_pos[i]);
        mrc = put_kv(txn, ds->d->ckpt, cp_buf_slice(&k), cp_slice_of((char *) pos, 8));
    }
    uint64_t buffered = 0;
    for (partition *p = ds->touched; p && mrc == 0; p = p->next_touched) {
        partition staged = *p;
        staged.len += p->pending;
        staged.records += p->pending_records;
        cp_buf_reset(&v);
        partition_encode(&staged, &v);
        state_key(&k, ds->name, p->id, strlen(p->id));
        mrc = put_kv(txn, ds->d->parts, cp_buf_slice(&k), cp_buf_slice(&v));
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
        return mdb_err(err, mrc, "commit");
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
static int object_key(dstream *ds, const partition *p, cp_buf *key, cp_err *err)
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
        rc = object_key(ds, p, &key, err);
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
        mrc = put_kv(txn, ds->d->manifest, cp_buf_slice(&k), cp_buf_slice(&v));
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
        mrc = put_kv(txn, ds->d->parts, cp_buf_slice(&k), cp_buf_slice(&v));
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
        return mdb_err(err, mrc, "flush commit");
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
    publish(ds);
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
        return mdb_err(err, mrc, "begin");
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
        if (partition_decode(cp_slice_of(v.mv_data, v.mv_size), p) != CP_OK) {
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
        stats_decode(cp_slice_of(v.mv_data, v.mv_size), &ds->st);
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

static void *worker_main(void *arg)
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
        run_processors(ds);
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
        publish(ds);
    }
    cp_free(next_pos);
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * Lifecycle of one delivery stream.
 * ---------------------------------------------------------------------------------------- */

static void dstream_free(dstream *ds)
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

static void dstream_stop(dstream *ds)
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
static int dstream_start(cp_delivery *d, cp_ds_config *cfg, int fresh, dstream **out,
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
        ds->running = pthread_create(&ds->thread, NULL, worker_main, ds) == 0;
        if (!ds->running) {
            rc = cp_err_set(err, CP_EIO, "cannot start a delivery worker");
        }
    }
    if (rc != CP_OK) {
        dstream_free(ds);
        return rc;
    }
    *out = ds;
    return CP_OK;
}

static dstream *find_locked(cp_delivery *d, const char *name, size_t *at)
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

static int save_config(cp_delivery *d, const cp_ds_config *cfg, cp_err *err)
{
    cp_buf json = CP_BUF_INIT;
    cp_ds_config_to_json(cfg, &json);
    MDB_txn *txn;
    int mrc = mdb_txn_begin(d->env, NULL, 0, &txn);
    if (mrc == 0) {
        mrc = put_kv(txn, d->streams_db, cp_slice_str(cfg->name), cp_buf_slice(&json));
        if (mrc == 0) {
            mrc = mdb_txn_commit(txn);
        } else {
            mdb_txn_abort(txn);
        }
    }
    cp_buf_free(&json);
    return mrc ? mdb_err(err, mrc, "save") : CP_OK;
}

/* ------------------------------------------------------------------------------------------
 * Public API.
 * ---------------------------------------------------------------------------------------- */

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
        return mdb_err(err, mrc, "open");
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
            rc = dstream_start(d, cfg, 0, &ds, err);
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
        dstream_stop(d->list[i]);
        dstream_free(d->list[i]);
    }
    cp_free(d->list);
    mdb_env_close(d->env);
    pthread_mutex_destroy(&d->mu);
    cp_free(d);
}

int cp_delivery_create(cp_delivery *d, cp_ds_config *cfg, cp_err *err)
{
    pthread_mutex_lock(&d->mu);
    if (find_locked(d, cfg->name, NULL)) {
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
    int rc = save_config(d, cfg, err);
    dstream *ds = NULL;
    if (rc == CP_OK) {
        rc = dstream_start(d, cfg, 1, &ds, err);
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
    dstream *ds = find_locked(d, name, &at);
    if (!ds) {
        pthread_mutex_unlock(&d->mu);
        return cp_err_set(err, CP_ENOTFOUND, "Firehose %s under account 000000000000 not found.",
                          name);
    }
    memmove(d->list + at, d->list + at + 1, (d->n - at - 1) * sizeof(*d->list));
    d->n--;
    pthread_mutex_unlock(&d->mu);
    dstream_stop(ds);
    MDB_txn *txn;
    int mrc = mdb_txn_begin(d->env, NULL, 0, &txn);
    if (mrc == 0) {
        MDB_val k = {strlen(name), (void *) name};
        mdb_del(txn, d->streams_db, &k, NULL);
        mdb_del(txn, d->stats_db, &k, NULL);
        del_prefix(txn, d->ckpt, name);
        del_prefix(txn, d->parts, name);
        del_prefix(txn, d->manifest, name);
        mrc = mdb_txn_commit(txn);
    }
    char cmd[4400];
    snprintf(cmd, sizeof(cmd), "%s", ds->dir);
    dstream_free(ds);
    /* Buffered data is discarded, as Firehose does on deletion. */
    char rm[4500];
    snprintf(rm, sizeof(rm), "rm -rf '%s'", cmd);
    if (system(rm) != 0) {
        CP_LOG_WARN("delivery", "could not remove %s", cmd);
    }
    return mrc ? mdb_err(err, mrc, "delete") : CP_OK;
}

int cp_delivery_update(cp_delivery *d, cp_ds_config *cfg, cp_err *err)
{
    pthread_mutex_lock(&d->mu);
    size_t at;
    dstream *ds = find_locked(d, cfg->name, &at);
    if (!ds) {
        pthread_mutex_unlock(&d->mu);
        int rc = cp_err_set(err, CP_ENOTFOUND, "Firehose %s under account 000000000000 not found.",
                            cfg->name);
        cp_ds_config_free(cfg);
        return rc;
    }
    /* Restart the worker on the new configuration; buffered generations keep the version
     * they opened with, so their keys do not change. */
    dstream_stop(ds);
    int rc = save_config(d, cfg, err);
    dstream *next = NULL;
    if (rc == CP_OK) {
        dstream_free(ds);
        rc = dstream_start(d, cfg, 0, &next, err);
        if (rc == CP_OK) {
            d->list[at] = next;
        } else {
            memmove(d->list + at, d->list + at + 1, (d->n - at - 1) * sizeof(*d->list));
            d->n--;
        }
    } else {
        cp_ds_config_free(cfg);
        ds->stop = 0;
        ds->running = pthread_create(&ds->thread, NULL, worker_main, ds) == 0;
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

int cp_delivery_config(cp_delivery *d, const char *name, cp_ds_config **out, cp_err *err)
{
    pthread_mutex_lock(&d->mu);
    dstream *ds = find_locked(d, name, NULL);
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
    dstream *ds = find_locked(d, name, NULL);
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
    dstream *ds = find_locked(d, name, NULL);
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
    dstream *ds = find_locked(d, name, NULL);
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
    run_processors(ds);
    cp_buf body = CP_BUF_INIT, id = CP_BUF_INIT, key = CP_BUF_INIT, gz = CP_BUF_INIT;
    for (size_t i = 0; i < ds->batch.n; i++) {
        cp_drec *r = &ds->batch.recs[i];
        if (r->result == CP_REC_DROPPED) {
            continue;
        }
        route_record(ds, r, &id);
        if (p->error_type && r->result == CP_REC_FAILED && r->error_type &&
            strcmp(r->error_type, p->error_type) == 0) {
            error_document(ds, r, &body);
        } else if (!p->error_type && r->result == CP_REC_OK &&
                   strcmp(id.p ? id.p : "", p->id) == 0) {
            cp_buf_append(&body, r->data.p, r->data.len);
        }
    }
    rc = object_key(ds, p, &key, err);
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
    dstream *ds = find_locked(d, name, NULL);
    if (!ds) {
        pthread_mutex_unlock(&d->mu);
        return cp_err_set(err, CP_ENOTFOUND, "Firehose %s under account 000000000000 not found.",
                          name);
    }
    /* The worker owns the batch and the processors: pause it while replaying. */
    dstream_stop(ds);
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
        rc = mdb_err(err, mrc, "replay");
    }
    cp_reader r = cp_reader_of(cp_buf_slice(&entries));
    while (rc == CP_OK && r.p < r.end) {
        cp_reader e = cp_reader_of(cp_reader_bytes(&r));
        cp_slice id = cp_reader_bytes(&e);
        partition p = {0};
        p.id = cp_strndup(id.p, id.len);
        p.fd = -1;
        if (partition_decode(cp_slice_of((const char *) e.p, (size_t) (e.end - e.p)), &p) !=
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
    ds->running = pthread_create(&ds->thread, NULL, worker_main, ds) == 0;
    pthread_mutex_unlock(&d->mu);
    return rc;
}
