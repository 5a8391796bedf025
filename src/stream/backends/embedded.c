/* SPDX-License-Identifier: MIT */
/*
 * embedded: stream backend on seglog, one log per shard. Payload layout (version 1):
 *   u8 1 | varint source_id | varint carried_source | varint pk_len, pk | data
 * carried_source is the newest non-zero source_id appended to the shard up to and including
 * this record, so "last source_id of the shard" is one read of the last record even when
 * direct puts (source_id 0) follow the forwarder's records.
 */
#include "stream/backends/embedded.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/seglog.h"
#include "stream/shard.h"
#include "stream/stream_int.h"

#define PAYLOAD_VERSION 1

typedef struct eshard {
    uint32_t index;
    cp_seglog *log;
    pthread_mutex_t mu; /* serialises encode + append so carried/stamp follow log order */
    uint64_t carried;   /* newest non-zero source_id appended (possibly not yet durable) */
    int64_t stamp;      /* newest arrival stamp handed out */
} eshard;

typedef struct emb {
    char *dir;
    cp_seglog_opts lo;
    pthread_rwlock_t lock; /* the shard table; entries themselves are stable pointers */
    eshard **shards;
    size_t n, cap;
} emb;

static void shard_dir(const emb *e, uint32_t index, char *out, size_t cap)
{
    char id[CP_SHARD_ID_MAX];
    cp_shard_id_format(index, id);
    snprintf(out, cap, "%s/%s", e->dir, id);
}

static eshard *find_locked(emb *e, uint32_t index, size_t *at)
{
    for (size_t i = 0; i < e->n; i++) {
        if (e->shards[i]->index == index) {
            if (at) {
                *at = i;
            }
            return e->shards[i];
        }
    }
    return NULL;
}

static int lookup(emb *e, uint32_t index, eshard **out, cp_err *err)
{
    pthread_rwlock_rdlock(&e->lock);
    *out = find_locked(e, index, NULL);
    pthread_rwlock_unlock(&e->lock);
    if (!*out) {
        char id[CP_SHARD_ID_MAX];
        cp_shard_id_format(index, id);
        return cp_err_set(err, CP_ENOTFOUND, "shard %s does not exist", id);
    }
    return CP_OK;
}

typedef struct decoded {
    uint64_t source_id, carried;
    cp_slice pk, data;
} decoded;

static int decode(cp_slice payload, decoded *d, cp_err *err)
{
    cp_reader r = cp_reader_of(payload);
    uint8_t v = cp_reader_u8(&r);
    d->source_id = cp_reader_varint(&r);
    d->carried = cp_reader_varint(&r);
    d->pk = cp_reader_bytes(&r);
    if (r.failed || v != PAYLOAD_VERSION) {
        return cp_err_set(err, CP_ECORRUPT, "stream record has a bad layout");
    }
    d->data = cp_slice_of((const char *) r.p, (size_t) (r.end - r.p));
    return CP_OK;
}

/* Read the record at pos. */
static int read_at(cp_seglog *log, uint64_t pos, decoded *d, int64_t *ts, cp_buf *copy, cp_err *err)
{
    cp_seglog_reader *r;
    int rc = cp_seglog_reader_open(log, pos, &r, err);
    if (rc != CP_OK) {
        return rc;
    }
    cp_slice p;
    rc = cp_seglog_read(r, &p, NULL, ts, err);
    if (rc == CP_OK) {
        cp_buf_reset(copy);
        cp_buf_append(copy, p.p, p.len);
        rc = decode(cp_buf_slice(copy), d, err);
    }
    cp_seglog_reader_close(r);
    return rc;
}

/* ---------------------------------------------------------------- lifecycle */

static int emb_open(const cp_stream_backend_args *args, void **ctx, cp_err *err)
{
    (void) err;
    const cp_embedded_opts *o = args->opts;
    emb *e = cp_calloc(1, sizeof(*e));
    e->dir = cp_strdup(args->dir);
    e->lo.segment_bytes = o ? o->segment_bytes : 0;
    e->lo.no_fsync = o ? o->no_fsync : 0;
    pthread_rwlock_init(&e->lock, NULL);
    *ctx = e;
    return CP_OK;
}

static void shard_close(eshard *s)
{
    cp_seglog_close(s->log);
    pthread_mutex_destroy(&s->mu);
    cp_free(s);
}

static int emb_add_shard(void *ctx, uint32_t shard, cp_err *err)
{
    emb *e = ctx;
    pthread_rwlock_wrlock(&e->lock);
    if (find_locked(e, shard, NULL)) {
        pthread_rwlock_unlock(&e->lock);
        return CP_OK;
    }
    char path[4096];
    shard_dir(e, shard, path, sizeof(path));
    cp_seglog *log;
    int rc = cp_seglog_open(path, &e->lo, &log, err);
    if (rc != CP_OK) {
        pthread_rwlock_unlock(&e->lock);
        return rc;
    }
    eshard *s = cp_calloc(1, sizeof(*s));
    s->index = shard;
    s->log = log;
    pthread_mutex_init(&s->mu, NULL);
    s->stamp = cp_seglog_last_ts(log);
    uint64_t last;
    if (cp_seglog_last(log, &last, NULL) == CP_OK) {
        /* Recover the carried source id from the last durable record. */
        decoded d;
        int64_t ts;
        cp_buf copy = CP_BUF_INIT;
        rc = read_at(log, last, &d, &ts, &copy, err);
        cp_buf_free(&copy);
        if (rc != CP_OK) {
            shard_close(s);
            pthread_rwlock_unlock(&e->lock);
            return rc;
        }
        s->carried = d.carried;
    }
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        e->shards = cp_realloc(e->shards, e->cap * sizeof(*e->shards));
    }
    e->shards[e->n++] = s;
    pthread_rwlock_unlock(&e->lock);
    return CP_OK;
}

static void emb_close(void *ctx)
{
    emb *e = ctx;
    if (!e) {
        return;
    }
    for (size_t i = 0; i < e->n; i++) {
        shard_close(e->shards[i]);
    }
    cp_free(e->shards);
    pthread_rwlock_destroy(&e->lock);
    cp_free(e->dir);
    cp_free(e);
}

static int emb_drop_shard(void *ctx, uint32_t shard, cp_err *err)
{
    emb *e = ctx;
    pthread_rwlock_wrlock(&e->lock);
    size_t at;
    eshard *s = find_locked(e, shard, &at);
    if (!s) {
        pthread_rwlock_unlock(&e->lock);
        return cp_err_set(err, CP_ENOTFOUND, "shard does not exist");
    }
    memmove(e->shards + at, e->shards + at + 1, (e->n - at - 1) * sizeof(*e->shards));
    e->n--;
    pthread_rwlock_unlock(&e->lock);
    shard_close(s);
    char path[4096];
    shard_dir(e, shard, path, sizeof(path));
    return cp__stream_rmtree(path, err);
}

static int emb_destroy(void *ctx, cp_err *err)
{
    emb *e = ctx;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", e->dir);
    emb_close(e);
    /* Every shard directory, including orphans of an interrupted reshard. */
    DIR *d = opendir(dir);
    if (!d) {
        return CP_OK;
    }
    int rc = CP_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "shardId-", 8) == 0) {
            char path[4096 + 256];
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            int r = cp__stream_rmtree(path, err);
            rc = rc == CP_OK ? r : rc;
        }
    }
    closedir(d);
    return rc;
}

/* ---------------------------------------------------------------- data path */

static int emb_append(void *ctx, uint32_t shard, const cp_stream_rec *recs, size_t n,
                      int64_t now_ms, uint64_t *seqs, int64_t *stamped_ms, cp_err *err)
{
    eshard *s;
    int rc = lookup(ctx, shard, &s, err);
    if (rc != CP_OK) {
        return rc;
    }
    cp_buf buf = CP_BUF_INIT;
    size_t *offs = cp_malloc((n + 1) * sizeof(*offs));
    cp_slice *payloads = cp_malloc(n * sizeof(*payloads));

    pthread_mutex_lock(&s->mu);
    /* Encode under the shard lock: carried_source and the arrival stamp must follow the order
     * in which the log assigns positions. */
    uint64_t carried = s->carried;
    for (size_t i = 0; i < n; i++) {
        offs[i] = buf.len;
        if (recs[i].source_id) {
            carried = recs[i].source_id;
        }
        cp_buf_put_u8(&buf, PAYLOAD_VERSION);
        cp_buf_put_varint(&buf, recs[i].source_id);
        cp_buf_put_varint(&buf, carried);
        cp_buf_put_bytes(&buf, recs[i].partition_key.p, recs[i].partition_key.len);
        cp_buf_append(&buf, recs[i].data.p, recs[i].data.len);
    }
    offs[n] = buf.len;
    for (size_t i = 0; i < n; i++) {
        payloads[i] = cp_slice_of(buf.p + offs[i], offs[i + 1] - offs[i]);
    }
    int64_t stamp = now_ms > s->stamp ? now_ms : s->stamp;
    uint64_t first = 0;
    rc = cp_seglog_append(s->log, payloads, n, stamp, &first, err);
    if (rc == CP_OK) {
        s->carried = carried;
        s->stamp = stamp;
    }
    pthread_mutex_unlock(&s->mu);

    if (rc == CP_OK) {
        uint64_t pos = first;
        for (size_t i = 0; i < n; i++) {
            seqs[i] = pos + 1;
            pos += cp_seglog_frame_size(payloads[i].len);
        }
        /* Group commit: outside the shard lock, so concurrent putters queue their frames while
         * one of them syncs, and most of them return on the same fdatasync. */
        rc = cp_seglog_sync_to(s->log, pos, err);
    }
    if (rc == CP_OK && stamped_ms) {
        *stamped_ms = stamp;
    }
    cp_free(payloads);
    cp_free(offs);
    cp_buf_free(&buf);
    return rc;
}

static int emb_read(void *ctx, uint32_t shard, uint64_t from, size_t max_records, size_t max_bytes,
                    cp_stream_batch *out, cp_err *err)
{
    eshard *s;
    cp_stream_batch_reset(out);
    int rc = lookup(ctx, shard, &s, err);
    if (rc != CP_OK) {
        return rc;
    }
    uint64_t pos = from ? from - 1 : 0;
    cp_seglog_reader *r = NULL;
    for (;;) {
        uint64_t start = cp_seglog_start(s->log);
        if (pos < start) {
            pos = start; /* trimmed: continue at the trim horizon */
        }
        out->next_seq = pos + 1;
        if (!r) {
            rc = cp_seglog_reader_open(s->log, pos, &r, err);
            if (rc == CP_EEXPIRED) {
                continue;
            }
            if (rc != CP_OK) {
                return rc;
            }
        }
        if (out->n >= max_records) {
            break;
        }
        cp_slice p;
        uint64_t at;
        int64_t ts;
        rc = cp_seglog_read(r, &p, &at, &ts, err);
        if (rc == CP_ENOTFOUND) {
            rc = CP_OK;
            break;
        }
        if (rc == CP_EEXPIRED && out->n == 0) {
            cp_seglog_reader_close(r);
            r = NULL;
            continue;
        }
        if (rc == CP_EEXPIRED) {
            rc = CP_OK; /* return what we have; the next read restarts at the horizon */
            break;
        }
        if (rc != CP_OK) {
            break;
        }
        decoded d;
        rc = decode(p, &d, err);
        if (rc != CP_OK) {
            break;
        }
        if (out->n > 0 && out->data_bytes + d.pk.len + d.data.len > max_bytes) {
            break; /* next_seq still points at this record */
        }
        cp_stream_batch_add(out, at + 1, ts, d.source_id, d.pk, d.data);
        pos = cp_seglog_reader_pos(r);
    }
    cp_seglog_reader_close(r);
    return rc;
}

static int emb_seek_time(void *ctx, uint32_t shard, int64_t ts_ms, uint64_t *pos, cp_err *err)
{
    eshard *s;
    int rc = lookup(ctx, shard, &s, err);
    if (rc != CP_OK) {
        return rc;
    }
    uint64_t p;
    rc = cp_seglog_seek_time(s->log, ts_ms, &p, err);
    if (rc == CP_OK) {
        *pos = p + 1;
    }
    return rc;
}

static int emb_state(void *ctx, uint32_t shard, cp_stream_shard_state *out, cp_err *err)
{
    eshard *s;
    int rc = lookup(ctx, shard, &s, err);
    if (rc != CP_OK) {
        return rc;
    }
    uint64_t last;
    out->first_seq = cp_seglog_start(s->log) + 1;
    out->end_seq = cp_seglog_end(s->log) + 1;
    if (cp_seglog_last(s->log, &last, NULL) == CP_OK) {
        out->last_seq = last + 1;
        out->last_ms = cp_seglog_last_ts(s->log);
    } else {
        out->last_seq = 0;
        out->last_ms = 0;
    }
    return CP_OK;
}

static int emb_last_source(void *ctx, uint32_t shard, uint64_t *source_id, cp_err *err)
{
    eshard *s;
    int rc = lookup(ctx, shard, &s, err);
    if (rc != CP_OK) {
        return rc;
    }
    uint64_t last;
    *source_id = 0;
    if (cp_seglog_last(s->log, &last, NULL) != CP_OK) {
        return CP_OK;
    }
    decoded d;
    int64_t ts;
    cp_buf copy = CP_BUF_INIT;
    rc = read_at(s->log, last, &d, &ts, &copy, err);
    if (rc == CP_OK) {
        *source_id = d.carried;
    }
    cp_buf_free(&copy);
    return rc;
}

static int emb_trim(void *ctx, uint32_t shard, int64_t before_ms, cp_err *err)
{
    eshard *s;
    int rc = lookup(ctx, shard, &s, err);
    if (rc != CP_OK) {
        return rc;
    }
    return cp_seglog_trim(s->log, before_ms, err);
}

const cp_stream_backend_ops cp_stream_backend_embedded = {
    .abi = CP_STREAM_BACKEND_ABI,
    .name = "embedded",
    .summary = "shards stored in local segmented logs under the data directory",
    .opts = NULL,
    .open = emb_open,
    .add_shard = emb_add_shard,
    .append = emb_append,
    .read = emb_read,
    .seek_time = emb_seek_time,
    .state = emb_state,
    .last_source = emb_last_source,
    .trim = emb_trim,
    .drop_shard = emb_drop_shard,
    .destroy = emb_destroy,
    .close = emb_close,
};
