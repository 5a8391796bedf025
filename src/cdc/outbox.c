/* SPDX-License-Identifier: MIT */
/* The outbox relay: change log -> Kinesis streaming destinations, exactly once (outbox.h). */
#include "cdc/outbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cdc/record.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "table/change.h"

#define CURSOR_KEY      "outbox.cursor"
#define IDLE_WAIT_MS    2
#define CURSOR_EVERY_MS 200 /* persisting costs an fsync; a stale cursor only costs re-checks */

/* What a stream held when we (re)started: the last source id per shard, and how keys route,
 * so a change already appended before a crash is recognised and skipped. */
typedef struct dedup_stream {
    char name[CP_STREAM_NAME_MAX + 1];
    cp_shard_map *map; /* open shards; NULL when the stream is gone */
    uint64_t *last;    /* by shard index */
    size_t nlast;
} dedup_stream;

/* One pending stream record of the current round. */
typedef struct pending {
    int stream;     /* index into round.streams */
    size_t data_off, data_len;
    char pk[33];
    uint64_t lsn;
} pending;

typedef struct round {
    char (*streams)[CP_STREAM_NAME_MAX + 1];
    size_t nstreams, cap_streams;
    pending *p;
    size_t np, cap_p;
    cp_buf data;
    cp_table_info *tables; /* table metadata looked up this round */
    size_t ntables;
} round;

struct cp_outbox {
    cp_db *db;
    cp_streams *streams;
    char region[64];
    size_t batch;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake, progress;
    int stop;
    _Atomic uint64_t cursor;
    _Atomic uint64_t forwarded, duplicates, dropped, retries;
    /* Recovery state: changes at positions <= dedup_until must be checked against dedup. */
    int recovering;
    uint64_t dedup_until;
    dedup_stream *dedup;
    size_t ndedup;
};

static void dedup_clear(cp_outbox *ob)
{
    for (size_t i = 0; i < ob->ndedup; i++) {
        cp_shard_map_free(ob->dedup[i].map);
        cp_free(ob->dedup[i].last);
    }
    cp_free(ob->dedup);
    ob->dedup = NULL;
    ob->ndedup = 0;
    ob->dedup_until = 0;
}

static dedup_stream *dedup_load(cp_outbox *ob, const char *name)
{
    for (size_t i = 0; i < ob->ndedup; i++) {
        if (strcmp(ob->dedup[i].name, name) == 0) {
            return &ob->dedup[i];
        }
    }
    ob->dedup = cp_realloc(ob->dedup, (ob->ndedup + 1) * sizeof(*ob->dedup));
    dedup_stream *d = &ob->dedup[ob->ndedup++];
    memset(d, 0, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%s", name);
    cp_stream_desc *desc;
    if (cp_streams_describe(ob->streams, cp_slice_str(name), &desc, NULL) != CP_OK) {
        return d;
    }
    cp_shard_range *ranges = cp_calloc(desc->nshards, sizeof(*ranges));
    size_t nopen = 0;
    uint32_t max_index = 0;
    for (size_t i = 0; i < desc->nshards; i++) {
        const cp_stream_shard_desc *sh = &desc->shards[i];
        if (sh->index > max_index) {
            max_index = sh->index;
        }
        if (sh->open) {
            ranges[nopen++] = (cp_shard_range){sh->index, sh->start, sh->end};
        }
    }
    d->nlast = (size_t) max_index + 1;
    d->last = cp_calloc(d->nlast, sizeof(*d->last));
    for (size_t i = 0; i < desc->nshards; i++) {
        uint64_t src = 0;
        cp_streams_last_source(ob->streams, cp_slice_str(name), desc->shards[i].index, &src,
                               NULL);
        d->last[desc->shards[i].index] = src;
        if (src > ob->dedup_until) {
            ob->dedup_until = src;
        }
    }
    if (cp_shard_map_from(ranges, nopen, &d->map, NULL) != CP_OK) {
        d->map = NULL;
    }
    cp_free(ranges);
    cp_stream_desc_free(desc);
    return d;
}

/* Stream records carry position + 1, since source_id 0 means "not from change capture". */
static uint64_t source_id_of(uint64_t lsn)
{
    return lsn + 1;
}

/* Load what every destination stream of every table holds, so dedup_until covers them all. */
static void dedup_prepare(cp_outbox *ob)
{
    dedup_clear(ob);
    cp_buf names = CP_BUF_INIT;
    size_t n = 0;
    cp_db_list_tables(ob->db, NULL, SIZE_MAX, &names, &n, NULL);
    const char *name = names.p;
    for (size_t i = 0; i < n; i++, name += strlen(name) + 1) {
        cp_table_info t;
        if (cp_db_get_table(ob->db, name, &t, NULL) != CP_OK) {
            continue;
        }
        for (int d = 0; d < t.ndest; d++) {
            dedup_load(ob, t.dest[d].stream_name);
        }
        cp_table_info_clear(&t);
    }
    cp_buf_free(&names);
}

/* Already in the stream? Only asked while recovering, for changes at or below dedup_until. */
static int already_appended(cp_outbox *ob, const char *stream, const char *pk, uint64_t lsn)
{
    dedup_stream *d = dedup_load(ob, stream);
    if (!d->map) {
        return 0;
    }
    uint32_t shard = cp_shard_find(d->map, cp_slice_str(pk));
    return shard < d->nlast && d->last[shard] >= source_id_of(lsn);
}

static const cp_table_info *round_table(cp_outbox *ob, round *r, uint32_t id)
{
    for (size_t i = 0; i < r->ntables; i++) {
        if (r->tables[i].id == id) {
            return r->tables[i].name[0] ? &r->tables[i] : NULL;
        }
    }
    r->tables = cp_realloc(r->tables, (r->ntables + 1) * sizeof(*r->tables));
    cp_table_info *t = &r->tables[r->ntables++];
    if (cp_db_get_table_by_id(ob->db, id, t, NULL) != CP_OK) {
        memset(t, 0, sizeof(*t)); /* deleted since: nothing to forward */
        t->id = id;
        return NULL;
    }
    return t;
}

static int round_stream(round *r, const char *name)
{
    for (size_t i = 0; i < r->nstreams; i++) {
        if (strcmp(r->streams[i], name) == 0) {
            return (int) i;
        }
    }
    if (r->nstreams == r->cap_streams) {
        r->cap_streams = r->cap_streams ? r->cap_streams * 2 : 4;
        r->streams = cp_realloc(r->streams, r->cap_streams * sizeof(*r->streams));
    }
    snprintf(r->streams[r->nstreams], sizeof(r->streams[0]), "%s", name);
    return (int) r->nstreams++;
}

static void round_reset(round *r)
{
    for (size_t i = 0; i < r->ntables; i++) {
        cp_table_info_clear(&r->tables[i]);
    }
    r->ntables = 0;
    r->nstreams = 0;
    r->np = 0;
    cp_buf_reset(&r->data);
}

static void round_free(round *r)
{
    round_reset(r);
    cp_free(r->tables);
    cp_free(r->streams);
    cp_free(r->p);
    cp_buf_free(&r->data);
}

/* Turn one change record into the stream records its table's destinations need. */
static void collect(cp_outbox *ob, round *r, const cp_change *c, uint64_t lsn)
{
    const cp_table_info *t = round_table(ob, r, c->table_id);
    if (!t) {
        return;
    }
    char pk[33] = {0};
    for (int i = 0; i < t->ndest; i++) {
        const cp_table_destination *d = &t->dest[i];
        if (!d->active || lsn < d->from_lsn) {
            continue;
        }
        if (!pk[0]) {
            cp_cdc_partition_key(t->name, c->keys, pk);
        }
        if (ob->recovering && source_id_of(lsn) <= ob->dedup_until &&
            already_appended(ob, d->stream_name, pk, lsn)) {
            atomic_fetch_add(&ob->duplicates, 1);
            continue;
        }
        if (r->np == r->cap_p) {
            r->cap_p = r->cap_p ? r->cap_p * 2 : 1024;
            r->p = cp_realloc(r->p, r->cap_p * sizeof(*r->p));
        }
        pending *p = &r->p[r->np++];
        p->stream = round_stream(r, d->stream_name);
        p->data_off = r->data.len;
        cp_cdc_source src = {t->name, ob->region, cp_db_uuid(ob->db)};
        cp_cdc_render_kinesis(&src, c, lsn, d->micro_precision, &r->data);
        p->data_len = r->data.len - p->data_off;
        memcpy(p->pk, pk, sizeof(pk));
        p->lsn = lsn;
    }
}

/* Append the round's records stream by stream. CP_OK, or CP_RETRY when any append failed. */
static int flush_round(cp_outbox *ob, round *r)
{
    cp_stream_put *puts = cp_malloc((r->np ? r->np : 1) * sizeof(*puts));
    cp_stream_put_result *res = cp_malloc((r->np ? r->np : 1) * sizeof(*res));
    int rc = CP_OK;
    for (size_t s = 0; s < r->nstreams && rc == CP_OK; s++) {
        size_t n = 0;
        for (size_t i = 0; i < r->np; i++) {
            if (r->p[i].stream == (int) s) {
                puts[n++] = (cp_stream_put){cp_slice_str(r->p[i].pk),
                                            cp_slice_of(r->data.p + r->p[i].data_off,
                                                        r->p[i].data_len),
                                            {NULL, 0}, source_id_of(r->p[i].lsn)};
            }
        }
        size_t failed = 0;
        cp_err err = {0};
        int prc = cp_streams_put(ob->streams, cp_slice_str(r->streams[s]), puts, n, res, &failed,
                                 &err);
        if (prc == CP_ENOTFOUND) {
            /* AWS counts these as failed replications and moves on. */
            atomic_fetch_add(&ob->dropped, n);
        } else if (prc != CP_OK || failed) {
            CP_LOG_WARN("outbox", "append to stream %s failed (%s), retrying", r->streams[s],
                        prc != CP_OK ? err.msg : "some records");
            rc = CP_RETRY;
        } else {
            atomic_fetch_add(&ob->forwarded, n);
        }
    }
    cp_free(puts);
    cp_free(res);
    return rc;
}

static void persist_cursor(cp_outbox *ob, uint64_t pos)
{
    unsigned char b[8];
    cp_store_u64le(b, pos);
    cp_db_meta_put(ob->db, CURSOR_KEY, cp_slice_of((char *) b, 8), NULL);
}

/* Wait up to ms for a stop request; returns 1 when stopping. */
static int idle(cp_outbox *ob, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long) (ms % 1000) * 1000000;
    ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    pthread_mutex_lock(&ob->mu);
    if (!ob->stop) {
        pthread_cond_timedwait(&ob->wake, &ob->mu, &ts);
    }
    int stop = ob->stop;
    pthread_mutex_unlock(&ob->mu);
    return stop;
}

static void *relay_main(void *arg)
{
    cp_outbox *ob = arg;
    cp_seglog *log = cp_db_log(ob->db);
    round r = {0};
    cp_seglog_reader *reader = NULL;
    int64_t backoff_ms = 10, last_persist_ms = 0;
    while (!idle(ob, 0)) {
        uint64_t cursor = atomic_load(&ob->cursor);
        if (!reader && cp_seglog_reader_open(log, cursor, &reader, NULL) != CP_OK) {
            idle(ob, 100);
            continue;
        }
        if (ob->recovering && !ob->dedup) {
            dedup_prepare(ob);
        }
        round_reset(&r);
        size_t n = 0;
        int rc = CP_OK;
        while (n < ob->batch) {
            cp_slice payload;
            uint64_t pos;
            int64_t ts;
            cp_err err = {0};
            rc = cp_seglog_read(reader, &payload, &pos, &ts, &err);
            if (rc != CP_OK) {
                break;
            }
            cp_change c;
            if (cp_change_decode(payload, &c) == CP_OK) {
                collect(ob, &r, &c, pos);
            }
            n++;
        }
        if (rc != CP_OK && rc != CP_ENOTFOUND) {
            CP_LOG_ERROR("outbox", "cannot read the change log: %s", cp_err_name(rc));
            cp_seglog_reader_close(reader);
            reader = NULL;
            idle(ob, 1000);
            continue;
        }
        if (n == 0) {
            idle(ob, IDLE_WAIT_MS);
            continue;
        }
        if (r.np && flush_round(ob, &r) != CP_OK) {
            /* Some appends may have landed: re-read the round with the dedup check on. */
            atomic_fetch_add(&ob->retries, 1);
            dedup_clear(ob);
            ob->recovering = 1; /* the next round reloads what the streams hold */
            cp_seglog_reader_close(reader);
            reader = NULL;
            idle(ob, backoff_ms);
            backoff_ms = backoff_ms < 2000 ? backoff_ms * 2 : 2000;
            continue;
        }
        backoff_ms = 10;
        uint64_t next = cp_seglog_reader_pos(reader);
        int64_t now = cp_clock_mono_ns() / 1000000;
        if (now - last_persist_ms >= CURSOR_EVERY_MS || n < ob->batch) {
            persist_cursor(ob, next);
            last_persist_ms = now;
        }
        if (ob->recovering && source_id_of(next) > ob->dedup_until) {
            /* Past everything any stream held at restart: no more checks needed. */
            ob->recovering = 0;
            dedup_clear(ob);
        }
        pthread_mutex_lock(&ob->mu);
        atomic_store(&ob->cursor, next);
        pthread_cond_broadcast(&ob->progress);
        pthread_mutex_unlock(&ob->mu);
    }
    cp_seglog_reader_close(reader);
    round_free(&r);
    return NULL;
}

int cp_outbox_start(cp_db *db, cp_streams *streams, const cp_outbox_opts *opts, cp_outbox **out,
                    cp_err *err)
{
    cp_outbox *ob = cp_calloc(1, sizeof(*ob));
    ob->db = db;
    ob->streams = streams;
    snprintf(ob->region, sizeof(ob->region), "%s",
             opts && opts->region ? opts->region : "us-east-1");
    ob->batch = opts && opts->batch_records ? opts->batch_records : 4096;
    pthread_mutex_init(&ob->mu, NULL);
    pthread_cond_init(&ob->wake, NULL);
    pthread_cond_init(&ob->progress, NULL);
    cp_buf b = CP_BUF_INIT;
    uint64_t cursor = cp_seglog_start(cp_db_log(db));
    if (cp_db_meta_get(db, CURSOR_KEY, &b, NULL) == CP_OK && b.len == 8) {
        uint64_t saved = cp_load_u64le(b.p);
        cursor = saved > cursor ? saved : cursor;
    }
    cp_buf_free(&b);
    atomic_store(&ob->cursor, cursor);
    /* The cursor may lag what reached the streams before a crash: check until past it. */
    ob->recovering = 1;
    if (pthread_create(&ob->thread, NULL, relay_main, ob) != 0) {
        cp_free(ob);
        return cp_err_set(err, CP_EIO, "cannot start the outbox relay thread");
    }
    *out = ob;
    return CP_OK;
}

void cp_outbox_stop(cp_outbox *ob)
{
    if (!ob) {
        return;
    }
    pthread_mutex_lock(&ob->mu);
    ob->stop = 1;
    pthread_cond_broadcast(&ob->wake);
    pthread_mutex_unlock(&ob->mu);
    pthread_join(ob->thread, NULL);
    dedup_clear(ob);
    pthread_mutex_destroy(&ob->mu);
    pthread_cond_destroy(&ob->wake);
    pthread_cond_destroy(&ob->progress);
    cp_free(ob);
}

int cp_outbox_sync(cp_outbox *ob, int64_t timeout_ms)
{
    uint64_t target = cp_seglog_end(cp_db_log(ob->db));
    int64_t deadline = cp_clock_mono_ns() + timeout_ms * 1000000;
    pthread_mutex_lock(&ob->mu);
    while (atomic_load(&ob->cursor) < target) {
        int64_t left = deadline - cp_clock_mono_ns();
        if (left <= 0) {
            pthread_mutex_unlock(&ob->mu);
            return CP_EAGAIN;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t wait = left < 100000000 ? left : 100000000;
        ts.tv_nsec += (long) wait;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&ob->progress, &ob->mu, &ts);
    }
    pthread_mutex_unlock(&ob->mu);
    return CP_OK;
}

void cp_outbox_stats_get(cp_outbox *ob, cp_outbox_stats *out)
{
    out->cursor = atomic_load(&ob->cursor);
    out->forwarded = atomic_load(&ob->forwarded);
    out->duplicates = atomic_load(&ob->duplicates);
    out->dropped = atomic_load(&ob->dropped);
    out->retries = atomic_load(&ob->retries);
}
