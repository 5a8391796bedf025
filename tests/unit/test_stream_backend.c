/* SPDX-License-Identifier: MIT */
/*
 * Conformance suite for stream backends (backend.h): every case is a function of the backend
 * ops and options, run here against `embedded`. A new backend adds one line per case to the
 * list at the bottom (and a ctest label when it needs an external server).
 */
#include "cpt.h"

#include <pthread.h>
#include <sys/stat.h>

#include "stream/backend.h"
#include "stream/backends/embedded.h"

typedef struct bk {
    const cp_stream_backend_ops *ops;
    const void *opts;
    char dir[512];
    void *ctx;
} bk;

#define OK(expr)                                                                                   \
    do {                                                                                           \
        cp_err e_ = {0};                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != CP_OK) {                                                                        \
            CPT_FAIL_AT("%s -> %s (%s)", #expr, cp_err_name(rc_), e_.msg);                         \
        }                                                                                          \
    } while (0)

static void bk_open(bk *b)
{
    cp_stream_backend_args a = {b->dir, "conformance", b->opts};
    OK(b->ops->open(&a, &b->ctx, &e_));
}

static bk bk_start(const cp_stream_backend_ops *ops, const void *opts, int nshards)
{
    bk b = {ops, opts, {0}, NULL};
    snprintf(b.dir, sizeof(b.dir), "%s/conformance", cpt_tmpdir());
    CPT_EQ_INT(mkdir(b.dir, 0755), 0);
    CPT_EQ_INT(ops->abi >= 1, 1);
    bk_open(&b);
    for (int i = 0; i < nshards; i++) {
        OK(ops->add_shard(b.ctx, (uint32_t) i, &e_));
    }
    return b;
}

static void bk_reopen(bk *b, int nshards)
{
    b->ops->close(b->ctx);
    bk_open(b);
    for (int i = 0; i < nshards; i++) {
        OK(b->ops->add_shard(b->ctx, (uint32_t) i, &e_));
    }
}

static cp_stream_rec rec(const char *pk, const char *data, uint64_t source)
{
    return (cp_stream_rec){0, 0, source, cp_slice_str(pk), cp_slice_str(data)};
}

/* Append records "<tag>-<i>" for i in [from, to) one call each; seqs into out (optional). */
static void append_range(bk *b, uint32_t shard, const char *tag, int from, int to, int64_t now,
                         uint64_t *out)
{
    for (int i = from; i < to; i++) {
        char data[64];
        snprintf(data, sizeof(data), "%s-%d", tag, i);
        cp_stream_rec r = rec("pk", data, 0);
        uint64_t seq;
        OK(b->ops->append(b->ctx, shard, &r, 1, now, &seq, NULL, &e_));
        if (out) {
            out[i - from] = seq;
        }
    }
}

static void read_all(bk *b, uint32_t shard, uint64_t from, cp_stream_batch *all)
{
    cp_stream_batch page = CP_STREAM_BATCH_INIT;
    uint64_t pos = from;
    for (;;) {
        OK(b->ops->read(b->ctx, shard, pos, 7, SIZE_MAX, &page, &e_));
        for (size_t i = 0; i < page.n; i++) {
            const cp_stream_rec *r = &page.recs[i];
            cp_stream_batch_add(all, r->seq, r->arrival_ms, r->source_id, r->partition_key,
                                r->data);
        }
        CPT_CHECK(page.next_seq >= pos);
        pos = page.next_seq;
        if (page.n == 0) {
            break;
        }
    }
    all->next_seq = pos;
    cp_stream_batch_free(&page);
}

/* ---------------------------------------------------------------- cases */

static void conf_append_read_order(const cp_stream_backend_ops *ops, const void *opts)
{
    bk b = bk_start(ops, opts, 2);
    cp_stream_rec batch[3] = {rec("k1", "one", 0), rec("k2", "", 0), rec("k3", "three", 9)};
    uint64_t seqs[3], seqs2[3];
    int64_t stamp = 0;
    OK(ops->append(b.ctx, 0, batch, 3, 1000, seqs, &stamp, &e_));
    CPT_EQ_INT(stamp, 1000);
    CPT_CHECK(seqs[0] > 0 && seqs[0] < seqs[1] && seqs[1] < seqs[2]);
    OK(ops->append(b.ctx, 0, batch, 3, 1001, seqs2, NULL, &e_));
    CPT_CHECK(seqs2[0] > seqs[2]);
    /* Another shard is independent. */
    OK(ops->append(b.ctx, 1, batch, 1, 1002, seqs2, NULL, &e_));

    cp_stream_batch all = CP_STREAM_BATCH_INIT;
    read_all(&b, 0, 0, &all);
    CPT_EQ_INT(all.n, 6);
    for (size_t i = 0; i < 6; i++) {
        CPT_EQ_MEM(all.recs[i].partition_key.p, all.recs[i].partition_key.len,
                   batch[i % 3].partition_key.p, batch[i % 3].partition_key.len);
        CPT_EQ_MEM(all.recs[i].data.p, all.recs[i].data.len, batch[i % 3].data.p,
                   batch[i % 3].data.len);
        CPT_EQ_INT(all.recs[i].source_id, batch[i % 3].source_id);
        CPT_EQ_INT(all.recs[i].arrival_ms, i < 3 ? 1000 : 1001);
        if (i > 0) {
            CPT_CHECK(all.recs[i].seq > all.recs[i - 1].seq);
        }
    }
    CPT_CHECK(all.recs[0].seq == seqs[0] && all.recs[2].seq == seqs[2]);
    cp_stream_shard_state st;
    OK(ops->state(b.ctx, 0, &st, &e_));
    CPT_CHECK(st.last_seq == all.recs[5].seq);
    CPT_EQ_INT(st.last_ms, 1001);
    CPT_CHECK(all.next_seq == st.end_seq);
    CPT_CHECK(st.end_seq > st.last_seq);
    cp_stream_batch_free(&all);
    ops->close(b.ctx);
}

static void conf_positions(const cp_stream_backend_ops *ops, const void *opts)
{
    bk b = bk_start(ops, opts, 1);
    cp_stream_shard_state st;
    OK(ops->state(b.ctx, 0, &st, &e_));
    CPT_CHECK(st.last_seq == 0 && st.last_ms == 0);
    CPT_CHECK(st.first_seq == st.end_seq);
    uint64_t latest = st.end_seq;

    uint64_t seqs[10];
    append_range(&b, 0, "r", 0, 10, 5, seqs);
    CPT_CHECK(seqs[0] >= latest); /* LATEST taken before sees the first later record */
    cp_stream_batch out = CP_STREAM_BATCH_INIT;
    OK(ops->read(b.ctx, 0, latest, 100, SIZE_MAX, &out, &e_));
    CPT_EQ_INT(out.n, 10);
    /* Reading at a record's seq starts with that record; next_seq continues after it. */
    OK(ops->read(b.ctx, 0, seqs[4], 1, SIZE_MAX, &out, &e_));
    CPT_EQ_INT(out.n, 1);
    CPT_CHECK(out.recs[0].seq == seqs[4]);
    CPT_EQ_MEM(out.recs[0].data.p, out.recs[0].data.len, "r-4", 3);
    uint64_t after = out.next_seq;
    OK(ops->read(b.ctx, 0, after, 1, SIZE_MAX, &out, &e_));
    CPT_CHECK(out.n == 1 && out.recs[0].seq == seqs[5]);
    /* At the end: nothing, and the position does not move. */
    OK(ops->state(b.ctx, 0, &st, &e_));
    OK(ops->read(b.ctx, 0, st.end_seq, 5, SIZE_MAX, &out, &e_));
    CPT_EQ_INT(out.n, 0);
    CPT_CHECK(out.next_seq == st.end_seq);
    /* TRIM_HORIZON. */
    OK(ops->read(b.ctx, 0, st.first_seq, 1, SIZE_MAX, &out, &e_));
    CPT_CHECK(out.n == 1 && out.recs[0].seq == seqs[0]);
    cp_stream_batch_free(&out);
    ops->close(b.ctx);
}

static void conf_paging_limits(const cp_stream_backend_ops *ops, const void *opts)
{
    bk b = bk_start(ops, opts, 1);
    append_range(&b, 0, "page", 0, 20, 1, NULL); /* each record: 2 + 6..7 bytes */
    cp_stream_batch out = CP_STREAM_BATCH_INIT;
    OK(ops->read(b.ctx, 0, 0, 3, SIZE_MAX, &out, &e_));
    CPT_EQ_INT(out.n, 3);
    /* A byte limit below one record still returns one record (progress). */
    OK(ops->read(b.ctx, 0, 0, 100, 1, &out, &e_));
    CPT_EQ_INT(out.n, 1);
    /* A byte limit of ~2.5 records returns 2, and next_seq points at the third. */
    uint64_t first_next;
    OK(ops->read(b.ctx, 0, 0, 100, 22, &out, &e_));
    CPT_EQ_INT(out.n, 2);
    CPT_CHECK(out.data_bytes <= 22);
    first_next = out.next_seq;
    OK(ops->read(b.ctx, 0, first_next, 1, SIZE_MAX, &out, &e_));
    CPT_EQ_MEM(out.recs[0].data.p, out.recs[0].data.len, "page-2", 6);
    cp_stream_batch_free(&out);
    ops->close(b.ctx);
}

static void conf_arrival_stamps(const cp_stream_backend_ops *ops, const void *opts)
{
    bk b = bk_start(ops, opts, 1);
    cp_stream_rec r = rec("k", "d", 0);
    uint64_t seq;
    int64_t st1, st2;
    OK(ops->append(b.ctx, 0, &r, 1, 5000, &seq, &st1, &e_));
    OK(ops->append(b.ctx, 0, &r, 1, 4000, &seq, &st2, &e_)); /* the clock stepped back */
    CPT_EQ_INT(st1, 5000);
    CPT_EQ_INT(st2, 5000);
    cp_stream_batch out = CP_STREAM_BATCH_INIT;
    OK(ops->read(b.ctx, 0, 0, 10, SIZE_MAX, &out, &e_));
    CPT_EQ_INT(out.n, 2);
    CPT_EQ_INT(out.recs[1].arrival_ms, 5000);
    cp_stream_batch_free(&out);
    ops->close(b.ctx);
}

static void conf_seek_time(const cp_stream_backend_ops *ops, const void *opts)
{
    bk b = bk_start(ops, opts, 1);
    uint64_t s1[5], s2[5], s3[5], pos;
    append_range(&b, 0, "a", 0, 5, 1000, s1);
    append_range(&b, 0, "b", 0, 5, 2000, s2);
    append_range(&b, 0, "c", 0, 5, 3000, s3);
    OK(ops->seek_time(b.ctx, 0, 1500, &pos, &e_));
    CPT_CHECK(pos == s2[0]);
    OK(ops->seek_time(b.ctx, 0, 2000, &pos, &e_));
    CPT_CHECK(pos == s2[0]);
    OK(ops->seek_time(b.ctx, 0, 2001, &pos, &e_));
    CPT_CHECK(pos == s3[0]);
    OK(ops->seek_time(b.ctx, 0, 0, &pos, &e_));
    CPT_CHECK(pos == s1[0]);
    cp_stream_shard_state st;
    OK(ops->state(b.ctx, 0, &st, &e_));
    OK(ops->seek_time(b.ctx, 0, 99999, &pos, &e_));
    CPT_CHECK(pos == st.end_seq);
    ops->close(b.ctx);
}

static void conf_last_source(const cp_stream_backend_ops *ops, const void *opts)
{
    bk b = bk_start(ops, opts, 2);
    uint64_t src = 99, seq[3];
    OK(ops->last_source(b.ctx, 0, &src, &e_));
    CPT_EQ_INT(src, 0);
    cp_stream_rec r[3] = {rec("k", "x", 5), rec("k", "y", 7), rec("k", "z", 0)};
    OK(ops->append(b.ctx, 0, r, 3, 1, seq, NULL, &e_));
    OK(ops->last_source(b.ctx, 0, &src, &e_));
    CPT_EQ_INT(src, 7); /* the direct put after it does not hide it */
    append_range(&b, 0, "direct", 0, 3, 2, NULL);
    OK(ops->last_source(b.ctx, 1, &src, &e_));
    CPT_EQ_INT(src, 0);
    bk_reopen(&b, 2);
    OK(ops->last_source(b.ctx, 0, &src, &e_));
    CPT_EQ_INT(src, 7);
    cp_stream_rec r2 = rec("k", "w", 8);
    OK(ops->append(b.ctx, 0, &r2, 1, 3, seq, NULL, &e_));
    OK(ops->last_source(b.ctx, 0, &src, &e_));
    CPT_EQ_INT(src, 8);
    ops->close(b.ctx);
}

static void conf_reopen_durable(const cp_stream_backend_ops *ops, const void *opts)
{
    bk b = bk_start(ops, opts, 1);
    uint64_t seqs[20];
    append_range(&b, 0, "d", 0, 20, 10, seqs);
    bk_reopen(&b, 1);
    cp_stream_batch all = CP_STREAM_BATCH_INIT;
    read_all(&b, 0, 0, &all);
    CPT_EQ_INT(all.n, 20);
    CPT_CHECK(all.recs[19].seq == seqs[19]);
    uint64_t more;
    append_range(&b, 0, "d", 20, 21, 10, &more);
    CPT_CHECK(more > seqs[19]);
    cp_stream_batch_free(&all);
    ops->close(b.ctx);
}

static void conf_unknown_shard(const cp_stream_backend_ops *ops, const void *opts)
{
    bk b = bk_start(ops, opts, 1);
    cp_stream_rec r = rec("k", "d", 0);
    uint64_t seq, pos;
    cp_stream_batch out = CP_STREAM_BATCH_INIT;
    cp_stream_shard_state st;
    cp_err err = {0};
    CPT_EQ_INT(ops->append(b.ctx, 3, &r, 1, 1, &seq, NULL, &err), CP_ENOTFOUND);
    CPT_EQ_INT(ops->read(b.ctx, 3, 0, 1, SIZE_MAX, &out, &err), CP_ENOTFOUND);
    CPT_EQ_INT(ops->state(b.ctx, 3, &st, &err), CP_ENOTFOUND);
    CPT_EQ_INT(ops->seek_time(b.ctx, 3, 0, &pos, &err), CP_ENOTFOUND);
    CPT_EQ_INT(ops->last_source(b.ctx, 3, &seq, &err), CP_ENOTFOUND);
    /* add_shard is idempotent */
    OK(ops->add_shard(b.ctx, 0, &e_));
    OK(ops->append(b.ctx, 0, &r, 1, 1, &seq, NULL, &e_));
    OK(ops->add_shard(b.ctx, 0, &e_));
    OK(ops->state(b.ctx, 0, &st, &e_));
    CPT_CHECK(st.last_seq == seq);
    cp_stream_batch_free(&out);
    ops->close(b.ctx);
}

typedef struct tctx {
    bk *b;
    int id, n;
    int bad;
} tctx;

static void *appender(void *arg)
{
    tctx *t = arg;
    for (int i = 0; i < t->n; i++) {
        char d[32];
        snprintf(d, sizeof(d), "%d:%d", t->id, i);
        cp_stream_rec r = rec("k", d, 0);
        uint64_t seq;
        if (t->b->ops->append(t->b->ctx, 0, &r, 1, 1, &seq, NULL, NULL) != CP_OK || seq == 0) {
            t->bad++;
        }
    }
    return NULL;
}

static void conf_concurrent_appends(const cp_stream_backend_ops *ops, const void *opts)
{
    bk b = bk_start(ops, opts, 1);
    enum { T = 4, N = 150 };
    tctx t[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        t[i] = (tctx){&b, i, N, 0};
        CPT_EQ_INT(pthread_create(&th[i], NULL, appender, &t[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        CPT_EQ_INT(t[i].bad, 0);
    }
    cp_stream_batch all = CP_STREAM_BATCH_INIT;
    read_all(&b, 0, 0, &all);
    CPT_EQ_INT(all.n, T * N);
    int next[T] = {0};
    for (size_t i = 0; i < all.n; i++) {
        int id, k;
        char d[32];
        snprintf(d, sizeof(d), "%.*s", (int) all.recs[i].data.len, all.recs[i].data.p);
        CPT_EQ_INT(sscanf(d, "%d:%d", &id, &k), 2);
        CPT_EQ_INT(k, next[id]); /* each thread's appends in its order, each exactly once */
        next[id]++;
        if (i > 0) {
            CPT_CHECK(all.recs[i].seq > all.recs[i - 1].seq);
        }
    }
    cp_stream_batch_free(&all);
    ops->close(b.ctx);
}

static void conf_trim(const cp_stream_backend_ops *ops, const void *opts)
{
    if (!ops->trim) {
        return;
    }
    bk b = bk_start(ops, opts, 1);
    uint64_t old[200], young[50];
    append_range(&b, 0, "old", 0, 200, 1000, old);
    append_range(&b, 0, "young", 0, 50, 9000, young);
    cp_stream_shard_state st;
    OK(ops->trim(b.ctx, 0, 5000, &e_));
    OK(ops->state(b.ctx, 0, &st, &e_));
    CPT_CHECK(st.first_seq <= young[0]); /* nothing at or after the cutoff goes */
    cp_stream_batch all = CP_STREAM_BATCH_INIT;
    read_all(&b, 0, 0, &all); /* position 0 (trimmed) reads from the horizon */
    CPT_CHECK(all.n >= 50);
    CPT_CHECK(all.recs[0].seq == st.first_seq);
    CPT_CHECK(all.recs[all.n - 1].seq == young[49]);
    cp_stream_batch_free(&all);
    ops->close(b.ctx);
}

static void conf_drop_and_destroy(const cp_stream_backend_ops *ops, const void *opts)
{
    bk b = bk_start(ops, opts, 2);
    append_range(&b, 0, "x", 0, 5, 1, NULL);
    append_range(&b, 1, "y", 0, 5, 1, NULL);
    cp_stream_shard_state st;
    cp_err err = {0};
    if (ops->drop_shard) {
        OK(ops->drop_shard(b.ctx, 1, &e_));
        CPT_EQ_INT(ops->state(b.ctx, 1, &st, &err), CP_ENOTFOUND);
        OK(ops->state(b.ctx, 0, &st, &e_));
        CPT_CHECK(st.last_seq != 0);
    }
    OK(ops->destroy(b.ctx, &e_));
    /* After destroy the same stream starts empty. */
    bk_open(&b);
    OK(ops->add_shard(b.ctx, 0, &e_));
    OK(ops->state(b.ctx, 0, &st, &e_));
    CPT_EQ_INT(st.last_seq, 0);
    ops->close(b.ctx);
}

/* ---------------------------------------------------------------- registrations */

static const cp_embedded_opts emb_opts = {.segment_bytes = 1024, .no_fsync = 0};

#define EMBEDDED(c)                                                                                \
    static void embedded_##c(void)                                                                 \
    {                                                                                              \
        conf_##c(&cp_stream_backend_embedded, &emb_opts);                                          \
    }

EMBEDDED(append_read_order)
EMBEDDED(positions)
EMBEDDED(paging_limits)
EMBEDDED(arrival_stamps)
EMBEDDED(seek_time)
EMBEDDED(last_source)
EMBEDDED(reopen_durable)
EMBEDDED(unknown_shard)
EMBEDDED(concurrent_appends)
EMBEDDED(trim)
EMBEDDED(drop_and_destroy)

static void embedded_trim_moves_horizon(void)
{
    /* Backend-specific: with 1 KiB segments a trim must actually discard something. */
    bk b = bk_start(&cp_stream_backend_embedded, &emb_opts, 1);
    uint64_t old[100];
    append_range(&b, 0, "old", 0, 100, 1000, old);
    append_range(&b, 0, "new", 0, 100, 9000, NULL);
    cp_stream_shard_state st;
    OK(b.ops->trim(b.ctx, 0, 5000, &e_));
    OK(b.ops->state(b.ctx, 0, &st, &e_));
    CPT_CHECK(st.first_seq > old[0]);
    b.ops->close(b.ctx);
}

CPT_LIST = {
    {"embedded_append_read_order", embedded_append_read_order},
    {"embedded_positions", embedded_positions},
    {"embedded_paging_limits", embedded_paging_limits},
    {"embedded_arrival_stamps", embedded_arrival_stamps},
    {"embedded_seek_time", embedded_seek_time},
    {"embedded_last_source", embedded_last_source},
    {"embedded_reopen_durable", embedded_reopen_durable},
    {"embedded_unknown_shard", embedded_unknown_shard},
    {"embedded_concurrent_appends", embedded_concurrent_appends},
    {"embedded_trim", embedded_trim},
    {"embedded_drop_and_destroy", embedded_drop_and_destroy},
    {"embedded_trim_moves_horizon", embedded_trim_moves_horizon},
    {0},
};
