/* SPDX-License-Identifier: MIT */
/*
 * Stream manager: create/describe/delete, MD5 routing, the five iterator types, retention,
 * checkpoints, concurrent puts, last source_id, resharding and crash leftovers.
 */
#include "cpt.h"

#include <pthread.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/mem.h"
#include "stream/backends/embedded.h"
#include "stream/stream.h"

#define OK(expr)                                                                                   \
    do {                                                                                           \
        cp_err e_ = {0};                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != CP_OK) {                                                                        \
            CPT_FAIL_AT("%s -> %s (%s)", #expr, cp_err_name(rc_), e_.msg);                         \
        }                                                                                          \
    } while (0)

#define S(x) CP_SLICE(x)

static cp_embedded_opts emb = {.segment_bytes = 1024, .no_fsync = 0};

static cp_streams *open_mgr(void)
{
    cp_streams_opts o = {.backend_opts = &emb, .shard_limit = 40};
    cp_streams *s;
    OK(cp_streams_open(cpt_tmpdir(), &o, &s, &e_));
    return s;
}

static cp_stream_put_result put1(cp_streams *s, const char *stream, const char *pk,
                                 const char *data, const char *ehk, uint64_t source)
{
    cp_stream_put p = {cp_slice_str(pk), cp_slice_str(data), cp_slice_str(ehk ? ehk : ""), source};
    cp_stream_put_result r;
    size_t failed = 9;
    OK(cp_streams_put(s, cp_slice_str(stream), &p, 1, &r, &failed, &e_));
    CPT_EQ_INT(failed, 0);
    CPT_EQ_INT(r.code, CP_OK);
    return r;
}

static const char *seqstr(uint32_t shard, uint64_t v)
{
    static char buf[4][CP_SEQ_STR_MAX];
    static int k;
    k = (k + 1) % 4;
    cp_seq_format(shard, v, buf[k]);
    return buf[k];
}

/* Read every record from pos with pages of `page`; returns the count, data copied to out. */
static size_t read_from(cp_streams *s, const char *stream, uint32_t shard, uint64_t pos,
                        size_t page, char out[][32], uint64_t *seqs, size_t cap)
{
    cp_stream_read r = CP_STREAM_READ_INIT;
    size_t n = 0;
    for (;;) {
        OK(cp_streams_read(s, cp_slice_str(stream), shard, pos, page, SIZE_MAX, &r, &e_));
        for (size_t i = 0; i < r.batch.n; i++) {
            if (n < cap) {
                const cp_stream_rec *x = &r.batch.recs[i];
                if (out) {
                    snprintf(out[n], 32, "%.*s", (int) x->data.len, x->data.p);
                }
                if (seqs) {
                    seqs[n] = x->seq;
                }
            }
            n++;
        }
        CPT_CHECK(r.next_pos >= pos);
        pos = r.next_pos;
        if (r.batch.n == 0) {
            break;
        }
    }
    cp_stream_read_free(&r);
    return n;
}

static int dir_exists(const char *stream)
{
    char p[600];
    struct stat st;
    snprintf(p, sizeof(p), "%s/streams/%s", cpt_tmpdir(), stream);
    return stat(p, &st) == 0;
}

/* ---------------------------------------------------------------- control plane */

static void create_describe_list(void)
{
    cp_streams *s = open_mgr();
    OK(cp_streams_create(s, S("orders"), CP_STREAM_PROVISIONED, 3, &e_));
    OK(cp_streams_create(s, S("chat"), CP_STREAM_ON_DEMAND, 0, &e_));
    cp_stream_desc *d;
    OK(cp_streams_describe(s, S("orders"), &d, &e_));
    CPT_EQ_STR(d->name, "orders");
    CPT_EQ_INT(d->status, CP_STREAM_ACTIVE);
    CPT_EQ_INT(d->mode, CP_STREAM_PROVISIONED);
    CPT_EQ_INT(d->retention_hours, 24);
    CPT_EQ_INT(d->nshards, 3);
    CPT_EQ_INT(d->open_shards, 3);
    CPT_CHECK(d->created_ms > 0);
    CPT_EQ_STR(d->shards[1].id, "shardId-000000000001");
    CPT_EQ_STR(d->shards[1].start_key, "113427455640312821154458202477256070485");
    CPT_EQ_STR(d->shards[1].end_key, "226854911280625642308916404954512140969");
    CPT_EQ_STR(d->shards[1].starting_seq, seqstr(1, 0));
    CPT_EQ_STR(d->shards[1].ending_seq, "");
    CPT_EQ_INT(d->shards[1].parent, -1);
    cp_stream_desc_free(d);
    OK(cp_streams_describe(s, S("chat"), &d, &e_));
    CPT_EQ_INT(d->mode, CP_STREAM_ON_DEMAND);
    CPT_EQ_INT(d->nshards, CP_STREAM_ON_DEMAND_SHARDS);
    CPT_EQ_STR(d->shards[3].start_key, "255211775190703847597530955573826158592");
    cp_stream_desc_free(d);

    cp_stream_summary *l;
    size_t n;
    OK(cp_streams_list(s, &l, &n, &e_));
    CPT_EQ_INT(n, 2);
    CPT_EQ_STR(l[0].name, "chat"); /* by name */
    CPT_EQ_STR(l[1].name, "orders");
    CPT_EQ_INT(l[0].mode, CP_STREAM_ON_DEMAND);
    cp_free(l);

    /* Everything survives a reopen. */
    cp_streams_close(s);
    s = open_mgr();
    OK(cp_streams_describe(s, S("orders"), &d, &e_));
    CPT_EQ_INT(d->nshards, 3);
    CPT_EQ_STR(d->shards[2].end_key, "340282366920938463463374607431768211455");
    cp_stream_desc_free(d);
    OK(cp_streams_list(s, &l, &n, &e_));
    CPT_EQ_INT(n, 2);
    cp_free(l);
    cp_streams_close(s);
}

static void create_validation(void)
{
    cp_streams *s = open_mgr();
    cp_err err = {0};
    OK(cp_streams_create(s, S("a.b-c_9"), CP_STREAM_PROVISIONED, 1, &e_));
    CPT_EQ_INT(cp_streams_create(s, S("a.b-c_9"), CP_STREAM_PROVISIONED, 1, &err), CP_EEXIST);
    CPT_CHECK(strstr(err.msg, "already exists") != NULL);
    const char *bad[] = {"", "has space", "slash/x", ".", "..", "ümlaut"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CPT_EQ_INT(cp_streams_create(s, cp_slice_str(bad[i]), CP_STREAM_PROVISIONED, 1, &err),
                   CP_EINVAL);
    }
    char longname[130];
    memset(longname, 'x', 129);
    longname[129] = 0;
    CPT_EQ_INT(cp_streams_create(s, cp_slice_str(longname), CP_STREAM_PROVISIONED, 1, &err),
               CP_EINVAL);
    longname[128] = 0;
    OK(cp_streams_create(s, cp_slice_str(longname), CP_STREAM_PROVISIONED, 1, &e_));
    CPT_EQ_INT(cp_streams_create(s, S("od"), CP_STREAM_ON_DEMAND, 2, &err), CP_EINVAL);
    CPT_CHECK(strstr(err.msg, "ShardCount is not expected") != NULL);
    CPT_EQ_INT(cp_streams_create(s, S("p0"), CP_STREAM_PROVISIONED, 0, &err), CP_EINVAL);
    /* Shard limit 40: two streams used 2. */
    CPT_EQ_INT(cp_streams_create(s, S("big"), CP_STREAM_PROVISIONED, 39, &err), CP_ELIMIT);
    OK(cp_streams_create(s, S("big"), CP_STREAM_PROVISIONED, 38, &e_));
    CPT_EQ_INT(cp_streams_create(s, S("one-more"), CP_STREAM_PROVISIONED, 1, &err), CP_ELIMIT);
    OK(cp_streams_delete(s, S("big"), &e_));
    OK(cp_streams_create(s, S("one-more"), CP_STREAM_PROVISIONED, 1, &e_));
    cp_stream_desc *d;
    CPT_EQ_INT(cp_streams_describe(s, S("missing"), &d, &err), CP_ENOTFOUND);
    CPT_CHECK(strstr(err.msg, "not found") != NULL);
    cp_streams_close(s);
}

static void delete_stream(void)
{
    cp_streams *s = open_mgr();
    OK(cp_streams_create(s, S("gone"), CP_STREAM_PROVISIONED, 2, &e_));
    put1(s, "gone", "k", "v", NULL, 0);
    OK(cp_streams_checkpoint_set(s, S("gone"), S("c"), 0, 1, &e_));
    CPT_CHECK(dir_exists("gone"));
    OK(cp_streams_delete(s, S("gone"), &e_));
    CPT_CHECK(!dir_exists("gone"));
    cp_err err = {0};
    cp_stream_desc *d;
    CPT_EQ_INT(cp_streams_describe(s, S("gone"), &d, &err), CP_ENOTFOUND);
    cp_stream_put p = {S("k"), S("v"), S(""), 0};
    cp_stream_put_result r;
    CPT_EQ_INT(cp_streams_put(s, S("gone"), &p, 1, &r, NULL, &err), CP_ENOTFOUND);
    CPT_EQ_INT(cp_streams_delete(s, S("gone"), &err), CP_ENOTFOUND);
    /* Re-created under the same name it starts empty, without the old checkpoints. */
    OK(cp_streams_create(s, S("gone"), CP_STREAM_PROVISIONED, 1, &e_));
    uint64_t pos, seq;
    OK(cp_streams_iterator(s, S("gone"), 0, CP_ITER_TRIM_HORIZON, S(""), 0, &pos, &e_));
    CPT_EQ_INT(read_from(s, "gone", 0, pos, 10, NULL, NULL, 0), 0);
    CPT_EQ_INT(cp_streams_checkpoint_get(s, S("gone"), S("c"), 0, &seq, &err), CP_ENOTFOUND);
    cp_streams_close(s);
    s = open_mgr();
    OK(cp_streams_describe(s, S("gone"), &d, &e_));
    CPT_EQ_INT(d->nshards, 1);
    cp_stream_desc_free(d);
    cp_streams_close(s);
}

/* A create that crashed before committing and a delete that crashed after committing. */
static void crash_leftovers_are_resolved(void)
{
    cp_streams *s = open_mgr();
    OK(cp_streams_create(s, S("half-deleted"), CP_STREAM_PROVISIONED, 1, &e_));
    OK(cp_streams_create(s, S("kept"), CP_STREAM_PROVISIONED, 1, &e_));
    put1(s, "kept", "k", "v", NULL, 0);
    cp_streams_close(s);

    char p[700];
    snprintf(p, sizeof(p), "%s/streams/never-committed/shardId-000000000000", cpt_tmpdir());
    char cmd[1600];
    snprintf(cmd, sizeof(cmd),
             "mkdir -p '%s' && sed -i 's/\"ACTIVE\"/\"DELETING\"/' "
             "'%s/streams/half-deleted/stream.json'",
             p, cpt_tmpdir());
    CPT_EQ_INT(system(cmd), 0);

    s = open_mgr();
    CPT_CHECK(!dir_exists("never-committed"));
    CPT_CHECK(!dir_exists("half-deleted"));
    cp_stream_summary *l;
    size_t n;
    OK(cp_streams_list(s, &l, &n, &e_));
    CPT_EQ_INT(n, 1);
    CPT_EQ_STR(l[0].name, "kept");
    cp_free(l);
    uint64_t pos;
    OK(cp_streams_iterator(s, S("kept"), 0, CP_ITER_TRIM_HORIZON, S(""), 0, &pos, &e_));
    CPT_EQ_INT(read_from(s, "kept", 0, pos, 10, NULL, NULL, 0), 1);
    cp_streams_close(s);
}

static void corrupt_metadata_fails_open(void)
{
    cp_streams *s = open_mgr();
    OK(cp_streams_create(s, S("x"), CP_STREAM_PROVISIONED, 1, &e_));
    cp_streams_close(s);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "echo '{\"version\":1,' > '%s/streams/x/stream.json'", cpt_tmpdir());
    CPT_EQ_INT(system(cmd), 0);
    cp_streams_opts o = {.backend_opts = &emb};
    cp_err err = {0};
    CPT_EQ_INT(cp_streams_open(cpt_tmpdir(), &o, &s, &err), CP_ECORRUPT);
    CPT_CHECK(s == NULL);
}

/* ---------------------------------------------------------------- routing */

static void put_routes_by_md5(void)
{
    cp_streams *s = open_mgr();
    OK(cp_streams_create(s, S("two"), CP_STREAM_PROVISIONED, 2, &e_));
    OK(cp_streams_create(s, S("four"), CP_STREAM_PROVISIONED, 4, &e_));
    /* MD5("user-42") = 157107139746365290205026809710278036035 (spec 5.3). */
    CPT_EQ_INT(put1(s, "two", "user-42", "d", NULL, 0).shard, 0);
    CPT_EQ_INT(put1(s, "four", "user-42", "d", NULL, 0).shard, 1);
    CPT_EQ_INT(put1(s, "four", "live-7", "d", NULL, 0).shard, 2);
    CPT_EQ_INT(put1(s, "four", "a", "d", NULL, 0).shard, 0);
    /* ExplicitHashKey overrides the partition key. */
    CPT_EQ_INT(put1(s, "four", "user-42", "d", "0", 0).shard, 0);
    CPT_EQ_INT(put1(s, "four", "a", "d", "340282366920938463463374607431768211455", 0).shard, 3);
    CPT_EQ_INT(put1(s, "four", "a", "d", "170141183460469231731687303715884105728", 0).shard, 2);

    /* One bad record fails the whole request, and nothing is written. */
    cp_stream_put recs[2] = {{S("ok"), S("d"), S(""), 0},
                             {S("ok"), S("d"), S("340282366920938463463374607431768211456"), 0}};
    cp_stream_put_result res[2];
    cp_err err = {0};
    CPT_EQ_INT(cp_streams_put(s, S("two"), recs, 2, res, NULL, &err), CP_EINVAL);
    CPT_CHECK(strstr(err.msg, "Invalid ExplicitHashKey") != NULL);
    cp_stream_put badpk = {S(""), S("d"), S(""), 0};
    CPT_EQ_INT(cp_streams_put(s, S("two"), &badpk, 1, res, NULL, &err), CP_EINVAL);
    char pk[520];
    memset(pk, 'k', 257);
    cp_stream_put longpk = {cp_slice_of(pk, 257), S("d"), S(""), 0};
    CPT_EQ_INT(cp_streams_put(s, S("two"), &longpk, 1, res, NULL, &err), CP_EINVAL);
    /* 256 characters of two bytes each are fine: the limit counts characters. */
    for (int i = 0; i < 256; i++) {
        pk[2 * i] = (char) 0xc3;
        pk[2 * i + 1] = (char) 0xa9;
    }
    cp_stream_put widepk = {cp_slice_of(pk, 512), S("d"), S(""), 0};
    OK(cp_streams_put(s, S("two"), &widepk, 1, res, NULL, &e_));
    uint32_t wide_shard = res[0].shard;
    static char big[(1 << 20) + 1];
    cp_stream_put toobig = {S("k"), cp_slice_of(big, 1 << 20), S(""), 0};
    CPT_EQ_INT(cp_streams_put(s, S("two"), &toobig, 1, res, NULL, &err), CP_ETOOBIG);
    /* Only user-42 (shard 0) and the wide key were written. */
    uint64_t pos;
    OK(cp_streams_iterator(s, S("two"), 0, CP_ITER_TRIM_HORIZON, S(""), 0, &pos, &e_));
    CPT_EQ_INT(read_from(s, "two", 0, pos, 10, NULL, NULL, 0), 1 + (wide_shard == 0));
    OK(cp_streams_iterator(s, S("two"), 1, CP_ITER_TRIM_HORIZON, S(""), 0, &pos, &e_));
    CPT_EQ_INT(read_from(s, "two", 1, pos, 10, NULL, NULL, 0), wide_shard == 1);

    /* PutRecords: results in request order; records of one shard keep request order. */
    cp_stream_put many[6];
    const char *keys[6] = {"user-42", "live-7", "a", "user-42", "live-7", "a"};
    char datas[6][8];
    for (int i = 0; i < 6; i++) {
        snprintf(datas[i], sizeof(datas[i]), "m%d", i);
        many[i] = (cp_stream_put){cp_slice_str(keys[i]), cp_slice_str(datas[i]), S(""), 0};
    }
    cp_stream_put_result mr[6];
    size_t failed = 9;
    OK(cp_streams_put(s, S("four"), many, 6, mr, &failed, &e_));
    CPT_EQ_INT(failed, 0);
    CPT_EQ_INT(mr[0].shard, 1);
    CPT_EQ_INT(mr[1].shard, 2);
    CPT_EQ_INT(mr[2].shard, 0);
    CPT_EQ_INT(mr[3].shard, 1);
    CPT_CHECK(mr[3].seq > mr[0].seq);
    CPT_CHECK(mr[5].seq > mr[2].seq);
    CPT_CHECK(mr[0].arrival_ms > 0);
    cp_streams_close(s);
}

/* ---------------------------------------------------------------- iterators */

static void iterator_types(void)
{
    cp_clock_pin_ms(1700000000000);
    cp_streams *s = open_mgr();
    OK(cp_streams_create(s, S("it"), CP_STREAM_PROVISIONED, 2, &e_));
    uint64_t pos, seq[6];
    cp_err err = {0};

    /* Before any record, the StartingSequenceNumber is accepted by both sequence types. */
    OK(cp_streams_iterator(s, S("it"), 0, CP_ITER_AT_SEQUENCE_NUMBER, cp_slice_str(seqstr(0, 0)), 0,
                           &pos, &e_));
    uint64_t early = pos;
    OK(cp_streams_iterator(s, S("it"), 0, CP_ITER_AFTER_SEQUENCE_NUMBER, cp_slice_str(seqstr(0, 0)),
                           0, &pos, &e_));
    OK(cp_streams_iterator(s, S("it"), 0, CP_ITER_LATEST, S(""), 0, &pos, &e_));
    uint64_t latest_before = pos;

    for (int i = 0; i < 6; i++) {
        cp_clock_pin_ms(1700000000000 + i * 1000);
        char d[8];
        snprintf(d, sizeof(d), "r%d", i);
        seq[i] = put1(s, "it", "x", d, "0", 0).seq; /* all to shard 0 */
    }
    char got[16][32];
    CPT_EQ_INT(read_from(s, "it", 0, early, 2, got, NULL, 16), 6);
    CPT_EQ_STR(got[0], "r0");
    CPT_EQ_INT(read_from(s, "it", 0, latest_before, 2, got, NULL, 16), 6);

    OK(cp_streams_iterator(s, S("it"), 0, CP_ITER_TRIM_HORIZON, S(""), 0, &pos, &e_));
    CPT_EQ_INT(read_from(s, "it", 0, pos, 4, got, NULL, 16), 6);
    CPT_EQ_STR(got[5], "r5");

    OK(cp_streams_iterator(s, S("it"), 0, CP_ITER_LATEST, S(""), 0, &pos, &e_));
    CPT_EQ_INT(read_from(s, "it", 0, pos, 4, got, NULL, 16), 0);
    uint64_t latest = pos;
    put1(s, "it", "x", "r6", "0", 0);
    CPT_EQ_INT(read_from(s, "it", 0, latest, 4, got, NULL, 16), 1);
    CPT_EQ_STR(got[0], "r6");

    OK(cp_streams_iterator(s, S("it"), 0, CP_ITER_AT_SEQUENCE_NUMBER,
                           cp_slice_str(seqstr(0, seq[2])), 0, &pos, &e_));
    CPT_EQ_INT(read_from(s, "it", 0, pos, 4, got, NULL, 16), 5);
    CPT_EQ_STR(got[0], "r2");
    OK(cp_streams_iterator(s, S("it"), 0, CP_ITER_AFTER_SEQUENCE_NUMBER,
                           cp_slice_str(seqstr(0, seq[2])), 0, &pos, &e_));
    CPT_EQ_INT(read_from(s, "it", 0, pos, 4, got, NULL, 16), 4);
    CPT_EQ_STR(got[0], "r3");
    OK(cp_streams_iterator(s, S("it"), 0, CP_ITER_AFTER_SEQUENCE_NUMBER, cp_slice_str(seqstr(0, 0)),
                           0, &pos, &e_));
    CPT_EQ_INT(read_from(s, "it", 0, pos, 4, got, NULL, 16), 7);

    /* AT_TIMESTAMP: first arrival at or after; older than everything: the horizon. */
    OK(cp_streams_iterator(s, S("it"), 0, CP_ITER_AT_TIMESTAMP, S(""), 1700000002500, &pos, &e_));
    CPT_EQ_INT(read_from(s, "it", 0, pos, 4, got, NULL, 16), 4);
    CPT_EQ_STR(got[0], "r3");
    OK(cp_streams_iterator(s, S("it"), 0, CP_ITER_AT_TIMESTAMP, S(""), 1700000003000, &pos, &e_));
    read_from(s, "it", 0, pos, 4, got, NULL, 16);
    CPT_EQ_STR(got[0], "r3");
    OK(cp_streams_iterator(s, S("it"), 0, CP_ITER_AT_TIMESTAMP, S(""), 1, &pos, &e_));
    CPT_EQ_INT(read_from(s, "it", 0, pos, 4, got, NULL, 16), 7);
    CPT_EQ_INT(cp_streams_iterator(s, S("it"), 0, CP_ITER_AT_TIMESTAMP, S(""),
                                   1700000000000 + 3600000, &pos, &err),
               CP_EINVAL); /* the future */

    /* Rejections. */
    CPT_EQ_INT(cp_streams_iterator(s, S("it"), 0, CP_ITER_AT_SEQUENCE_NUMBER, S(""), 0, &pos, &err),
               CP_EINVAL);
    CPT_CHECK(strstr(err.msg, "no StartingSequenceNumber") != NULL);
    CPT_EQ_INT(cp_streams_iterator(s, S("it"), 0, CP_ITER_LATEST, cp_slice_str(seqstr(0, seq[1])),
                                   0, &pos, &err),
               CP_EINVAL);
    CPT_EQ_INT(cp_streams_iterator(s, S("it"), 1, CP_ITER_AT_SEQUENCE_NUMBER,
                                   cp_slice_str(seqstr(0, seq[1])), 0, &pos, &err),
               CP_EINVAL);
    CPT_CHECK(strstr(err.msg, "It encodes shardId-000000000000") != NULL);
    CPT_EQ_INT(cp_streams_iterator(s, S("it"), 0, CP_ITER_AT_SEQUENCE_NUMBER,
                                   S("49628566489653659107048838082246518393102916603510521906"), 0,
                                   &pos, &err),
               CP_EINVAL);
    CPT_EQ_INT(
        cp_streams_iterator(s, S("it"), 0, CP_ITER_AT_SEQUENCE_NUMBER, S("banana"), 0, &pos, &err),
        CP_EINVAL);
    /* Well-formed but no record has it: inside a record, and beyond the end. */
    CPT_EQ_INT(cp_streams_iterator(s, S("it"), 0, CP_ITER_AT_SEQUENCE_NUMBER,
                                   cp_slice_str(seqstr(0, seq[1] + 3)), 0, &pos, &err),
               CP_EINVAL);
    CPT_EQ_INT(cp_streams_iterator(s, S("it"), 0, CP_ITER_AFTER_SEQUENCE_NUMBER,
                                   cp_slice_str(seqstr(0, seq[5] + 100000)), 0, &pos, &err),
               CP_EINVAL);
    CPT_EQ_INT(cp_streams_iterator(s, S("it"), 7, CP_ITER_LATEST, S(""), 0, &pos, &err),
               CP_ENOTFOUND);
    CPT_CHECK(strstr(err.msg, "shardId-000000000007") != NULL);
    CPT_EQ_INT(cp_streams_iterator(s, S("nope"), 0, CP_ITER_LATEST, S(""), 0, &pos, &err),
               CP_ENOTFOUND);
    cp_streams_close(s);
    cp_clock_pin_ms(0);
}

static void read_positions_and_lag(void)
{
    cp_clock_pin_ms(1700000000000);
    cp_streams *s = open_mgr();
    OK(cp_streams_create(s, S("lag"), CP_STREAM_PROVISIONED, 1, &e_));
    for (int i = 0; i < 5; i++) {
        cp_clock_pin_ms(1700000000000 + i * 250);
        put1(s, "lag", "k", "data", NULL, 0);
    }
    uint64_t pos;
    OK(cp_streams_iterator(s, S("lag"), 0, CP_ITER_TRIM_HORIZON, S(""), 0, &pos, &e_));
    cp_stream_read r = CP_STREAM_READ_INIT;
    OK(cp_streams_read(s, S("lag"), 0, pos, 2, SIZE_MAX, &r, &e_));
    CPT_EQ_INT(r.batch.n, 2);
    CPT_EQ_INT(r.millis_behind, 750); /* newest (1000) - last returned (250) */
    CPT_EQ_INT(r.shard_end, 0);
    uint64_t next = r.next_pos;
    CPT_CHECK(next > pos);
    OK(cp_streams_read(s, S("lag"), 0, next, 100, SIZE_MAX, &r, &e_));
    CPT_EQ_INT(r.batch.n, 3); /* no re-delivery */
    CPT_EQ_INT(r.millis_behind, 0);
    OK(cp_streams_read(s, S("lag"), 0, r.next_pos, 100, SIZE_MAX, &r, &e_));
    CPT_EQ_INT(r.batch.n, 0);
    cp_err err = {0};
    CPT_EQ_INT(cp_streams_read(s, S("lag"), 0, pos, 0, SIZE_MAX, &r, &err), CP_EINVAL);
    CPT_EQ_INT(cp_streams_read(s, S("lag"), 1, pos, 1, SIZE_MAX, &r, &err), CP_ENOTFOUND);
    cp_stream_read_free(&r);
    cp_streams_close(s);
    cp_clock_pin_ms(0);
}

/* ---------------------------------------------------------------- retention */

static void retention_trimming(void)
{
    const int64_t t0 = 1700000000000, hour = 3600000;
    cp_clock_pin_ms(t0);
    cp_streams *s = open_mgr();
    OK(cp_streams_create(s, S("ret"), CP_STREAM_PROVISIONED, 1, &e_));
    cp_err err = {0};
    CPT_EQ_INT(cp_streams_increase_retention(s, S("ret"), 12, &err), CP_EINVAL);
    CPT_CHECK(strstr(err.msg, "Minimum allowed retention period is 24 hours") != NULL);
    CPT_EQ_INT(cp_streams_increase_retention(s, S("ret"), 8761, &err), CP_EINVAL);
    OK(cp_streams_increase_retention(s, S("ret"), 48, &e_));
    CPT_EQ_INT(cp_streams_increase_retention(s, S("ret"), 30, &err), CP_EINVAL);
    CPT_EQ_INT(cp_streams_decrease_retention(s, S("ret"), 72, &err), CP_EINVAL);

    uint64_t first = put1(s, "ret", "k", "old-0", NULL, 0).seq;
    for (int i = 1; i < 100; i++) {
        char d[16];
        snprintf(d, sizeof(d), "old-%d", i);
        put1(s, "ret", "k", d, NULL, 0);
    }
    cp_clock_pin_ms(t0 + 30 * hour);
    for (int i = 0; i < 10; i++) {
        char d[16];
        snprintf(d, sizeof(d), "new-%d", i);
        put1(s, "ret", "k", d, NULL, 0);
    }
    /* 48 h retention: nothing is old enough yet. */
    OK(cp_streams_trim(s, 0, &e_));
    uint64_t pos;
    OK(cp_streams_iterator(s, S("ret"), 0, CP_ITER_TRIM_HORIZON, S(""), 0, &pos, &e_));
    CPT_EQ_INT(read_from(s, "ret", 0, pos, 50, NULL, NULL, 0), 110);

    OK(cp_streams_decrease_retention(s, S("ret"), 24, &e_));
    cp_stream_desc *d;
    OK(cp_streams_describe(s, S("ret"), &d, &e_));
    CPT_EQ_INT(d->retention_hours, 24);
    cp_stream_desc_free(d);
    OK(cp_streams_trim(s, 0, &e_));
    OK(cp_streams_iterator(s, S("ret"), 0, CP_ITER_TRIM_HORIZON, S(""), 0, &pos, &e_));
    CPT_CHECK(pos > first);
    char got[128][32];
    size_t n = read_from(s, "ret", 0, pos, 50, got, NULL, 128);
    CPT_CHECK(n >= 10 && n < 110);
    CPT_EQ_STR(got[n - 10], "new-0"); /* every young record survives */
    /* A reader positioned on trimmed data continues at the horizon; AT_TIMESTAMP too. */
    uint64_t seqs[128];
    CPT_EQ_INT(read_from(s, "ret", 0, first, 50, NULL, seqs, 128), n);
    CPT_CHECK(seqs[0] == pos);
    uint64_t at;
    OK(cp_streams_iterator(s, S("ret"), 0, CP_ITER_AT_TIMESTAMP, S(""), t0, &at, &e_));
    CPT_CHECK(at == pos);
    OK(cp_streams_iterator(s, S("ret"), 0, CP_ITER_AT_SEQUENCE_NUMBER,
                           cp_slice_str(seqstr(0, first)), 0, &at, &e_));
    CPT_CHECK(at == pos);

    /* Retention survives reopen. */
    cp_streams_close(s);
    s = open_mgr();
    OK(cp_streams_describe(s, S("ret"), &d, &e_));
    CPT_EQ_INT(d->retention_hours, 24);
    cp_stream_desc_free(d);
    cp_streams_close(s);
    cp_clock_pin_ms(0);
}

/* ---------------------------------------------------------------- consumers and recovery */

static void checkpoints_survive_reopen(void)
{
    cp_streams *s = open_mgr();
    OK(cp_streams_create(s, S("ck"), CP_STREAM_PROVISIONED, 2, &e_));
    OK(cp_streams_checkpoint_set(s, S("ck"), S("firehose-a"), 0, 100, &e_));
    OK(cp_streams_checkpoint_set(s, S("ck"), S("firehose-a"), 1, 7, &e_));
    OK(cp_streams_checkpoint_set(s, S("ck"), S("firehose-b"), 0, 3, &e_));
    OK(cp_streams_checkpoint_set(s, S("ck"), S("firehose-a"), 0, UINT64_MAX - 1, &e_));
    cp_err err = {0};
    CPT_EQ_INT(cp_streams_checkpoint_set(s, S("ck"), S(""), 0, 1, &err), CP_EINVAL);
    CPT_EQ_INT(cp_streams_checkpoint_set(s, S("ck"), S("x"), 9, 1, &err), CP_ENOTFOUND);
    cp_streams_close(s);

    s = open_mgr();
    uint64_t v;
    OK(cp_streams_checkpoint_get(s, S("ck"), S("firehose-a"), 0, &v, &e_));
    CPT_CHECK(v == UINT64_MAX - 1);
    OK(cp_streams_checkpoint_get(s, S("ck"), S("firehose-a"), 1, &v, &e_));
    CPT_EQ_INT(v, 7);
    OK(cp_streams_checkpoint_get(s, S("ck"), S("firehose-b"), 0, &v, &e_));
    CPT_EQ_INT(v, 3);
    CPT_EQ_INT(cp_streams_checkpoint_get(s, S("ck"), S("firehose-b"), 1, &v, &err), CP_ENOTFOUND);
    CPT_EQ_INT(cp_streams_checkpoint_get(s, S("ck"), S("other"), 0, &v, &err), CP_ENOTFOUND);
    OK(cp_streams_checkpoint_delete(s, S("ck"), S("firehose-a"), &e_));
    CPT_EQ_INT(cp_streams_checkpoint_get(s, S("ck"), S("firehose-a"), 0, &v, &err), CP_ENOTFOUND);
    cp_streams_close(s);

    s = open_mgr();
    CPT_EQ_INT(cp_streams_checkpoint_get(s, S("ck"), S("firehose-a"), 1, &v, &err), CP_ENOTFOUND);
    OK(cp_streams_checkpoint_get(s, S("ck"), S("firehose-b"), 0, &v, &e_));
    CPT_EQ_INT(v, 3);
    cp_streams_close(s);
}

static void last_source_after_reopen(void)
{
    cp_streams *s = open_mgr();
    OK(cp_streams_create(s, S("cdc"), CP_STREAM_PROVISIONED, 2, &e_));
    uint64_t src = 99;
    OK(cp_streams_last_source(s, S("cdc"), 0, &src, &e_));
    CPT_EQ_INT(src, 0);
    /* The forwarder appends changes 1..10 to shard 0, then a direct put lands after them. */
    for (uint64_t i = 1; i <= 10; i++) {
        CPT_EQ_INT(put1(s, "cdc", "x", "change", "0", i).shard, 0);
    }
    put1(s, "cdc", "x", "direct", "0", 0);
    OK(cp_streams_last_source(s, S("cdc"), 0, &src, &e_));
    CPT_EQ_INT(src, 10);
    cp_streams_close(s);
    s = open_mgr();
    OK(cp_streams_last_source(s, S("cdc"), 0, &src, &e_));
    CPT_EQ_INT(src, 10);
    OK(cp_streams_last_source(s, S("cdc"), 1, &src, &e_));
    CPT_EQ_INT(src, 0);
    cp_err err = {0};
    CPT_EQ_INT(cp_streams_last_source(s, S("cdc"), 5, &src, &err), CP_ENOTFOUND);
    /* Source ids are stored per record and come back on read. */
    uint64_t pos;
    OK(cp_streams_iterator(s, S("cdc"), 0, CP_ITER_TRIM_HORIZON, S(""), 0, &pos, &e_));
    cp_stream_read r = CP_STREAM_READ_INIT;
    OK(cp_streams_read(s, S("cdc"), 0, pos, 100, SIZE_MAX, &r, &e_));
    CPT_EQ_INT(r.batch.n, 11);
    CPT_EQ_INT(r.batch.recs[4].source_id, 5);
    CPT_EQ_INT(r.batch.recs[10].source_id, 0);
    cp_stream_read_free(&r);
    cp_streams_close(s);
}

/* ---------------------------------------------------------------- concurrency */

enum { PUTTERS = 4, CALLS = 40, PER_CALL = 5 };

typedef struct putter {
    cp_streams *s;
    int id;
    int bad;
    cp_stream_put_result res[CALLS][PER_CALL];
} putter;

static void *putter_main(void *arg)
{
    putter *p = arg;
    for (int c = 0; c < CALLS; c++) {
        cp_stream_put recs[PER_CALL];
        char pk[PER_CALL][16], data[PER_CALL][32];
        for (int j = 0; j < PER_CALL; j++) {
            snprintf(pk[j], sizeof(pk[j]), "t%d-k%d", p->id, j);
            snprintf(data[j], sizeof(data[j]), "%d/%d/%d", p->id, c, j);
            recs[j] = (cp_stream_put){cp_slice_str(pk[j]), cp_slice_str(data[j]), S(""), 0};
        }
        size_t failed = 0;
        if (cp_streams_put(p->s, S("hot"), recs, PER_CALL, p->res[c], &failed, NULL) != CP_OK ||
            failed) {
            p->bad++;
        }
    }
    return NULL;
}

static void concurrent_puts_exactly_once(void)
{
    cp_streams *s = open_mgr();
    OK(cp_streams_create(s, S("hot"), CP_STREAM_PROVISIONED, 3, &e_));
    static putter p[PUTTERS];
    pthread_t t[PUTTERS];
    for (int i = 0; i < PUTTERS; i++) {
        p[i].s = s;
        p[i].id = i;
        p[i].bad = 0;
        CPT_EQ_INT(pthread_create(&t[i], NULL, putter_main, &p[i]), 0);
    }
    for (int i = 0; i < PUTTERS; i++) {
        pthread_join(t[i], NULL);
        CPT_EQ_INT(p[i].bad, 0);
    }
    static int seen[PUTTERS][CALLS][PER_CALL];
    int total = 0;
    for (uint32_t sh = 0; sh < 3; sh++) {
        uint64_t pos;
        OK(cp_streams_iterator(s, S("hot"), sh, CP_ITER_TRIM_HORIZON, S(""), 0, &pos, &e_));
        int last_call[PUTTERS][PER_CALL];
        memset(last_call, -1, sizeof(last_call));
        cp_stream_read r = CP_STREAM_READ_INIT;
        uint64_t prev = 0;
        for (;;) {
            OK(cp_streams_read(s, S("hot"), sh, pos, 17, SIZE_MAX, &r, &e_));
            if (r.batch.n == 0) {
                break;
            }
            for (size_t i = 0; i < r.batch.n; i++) {
                const cp_stream_rec *x = &r.batch.recs[i];
                char d[32];
                int id, c, j;
                snprintf(d, sizeof(d), "%.*s", (int) x->data.len, x->data.p);
                CPT_EQ_INT(sscanf(d, "%d/%d/%d", &id, &c, &j), 3);
                CPT_CHECK(x->seq > prev); /* per-shard total order */
                prev = x->seq;
                CPT_EQ_INT(seen[id][c][j]++, 0); /* exactly once */
                /* The acknowledgement named this shard and this sequence number. */
                CPT_EQ_INT(p[id].res[c][j].shard, sh);
                CPT_CHECK(p[id].res[c][j].seq == x->seq);
                /* Serial puts of one partition key stay in order. */
                CPT_CHECK(c > last_call[id][j]);
                last_call[id][j] = c;
                total++;
            }
            pos = r.next_pos;
        }
        cp_stream_read_free(&r);
    }
    CPT_EQ_INT(total, PUTTERS * CALLS * PER_CALL);
    cp_streams_close(s);
}

/* ---------------------------------------------------------------- resharding */

static void update_shard_count(void)
{
    const int64_t t0 = 1700000000000, hour = 3600000;
    cp_clock_pin_ms(t0);
    cp_streams *s = open_mgr();
    OK(cp_streams_create(s, S("rs"), CP_STREAM_PROVISIONED, 2, &e_));
    OK(cp_streams_create(s, S("od"), CP_STREAM_ON_DEMAND, 0, &e_));
    cp_err err = {0};
    CPT_EQ_INT(cp_streams_update_shard_count(s, S("od"), 8, &err), CP_EINVAL);
    CPT_EQ_INT(cp_streams_update_shard_count(s, S("rs"), 5, &err), CP_EINVAL);
    uint64_t last0 = 0;
    for (int i = 0; i < 5; i++) {
        last0 = put1(s, "rs", "user-42", "before", NULL, 0).seq; /* shard 0 */
    }
    OK(cp_streams_update_shard_count(s, S("rs"), 4, &e_));

    cp_stream_desc *d;
    OK(cp_streams_describe(s, S("rs"), &d, &e_));
    CPT_EQ_INT(d->nshards, 6);
    CPT_EQ_INT(d->open_shards, 4);
    CPT_EQ_INT(d->shards[0].open, 0);
    CPT_EQ_STR(d->shards[0].ending_seq, seqstr(0, last0));
    CPT_EQ_STR(d->shards[1].ending_seq, seqstr(1, 0)); /* empty: its starting number */
    CPT_EQ_STR(d->shards[2].id, "shardId-000000000002");
    CPT_EQ_INT(d->shards[2].parent, 0);
    CPT_EQ_INT(d->shards[2].adjacent_parent, -1);
    CPT_EQ_INT(d->shards[3].parent, 0);
    CPT_EQ_INT(d->shards[4].parent, 1);
    CPT_EQ_INT(d->shards[5].parent, 1);
    CPT_EQ_STR(d->shards[3].start_key, "85070591730234615865843651857942052864");
    cp_stream_desc_free(d);

    /* New records go to the children; user-42 is in the second quarter. */
    CPT_EQ_INT(put1(s, "rs", "user-42", "after", NULL, 0).shard, 3);
    /* Iterators on the closed parent still work; its end reports the children. */
    uint64_t pos;
    OK(cp_streams_iterator(s, S("rs"), 0, CP_ITER_TRIM_HORIZON, S(""), 0, &pos, &e_));
    cp_stream_read r = CP_STREAM_READ_INIT;
    OK(cp_streams_read(s, S("rs"), 0, pos, 3, SIZE_MAX, &r, &e_));
    CPT_EQ_INT(r.shard_end, 0);
    OK(cp_streams_read(s, S("rs"), 0, r.next_pos, 3, SIZE_MAX, &r, &e_));
    CPT_EQ_INT(r.batch.n, 2);
    CPT_EQ_INT(r.shard_end, 1);
    CPT_EQ_INT(r.nchildren, 2);
    CPT_EQ_INT(r.children[0], 2);
    CPT_EQ_INT(r.children[1], 3);
    cp_stream_read_free(&r);
    OK(cp_streams_iterator(s, S("rs"), 0, CP_ITER_AFTER_SEQUENCE_NUMBER,
                           cp_slice_str(seqstr(0, last0)), 0, &pos, &e_));

    /* Scaling down: three children, each overlapping two of the four parents. */
    OK(cp_streams_update_shard_count(s, S("rs"), 3, &e_));
    cp_streams_close(s);
    s = open_mgr(); /* and it all persists */
    OK(cp_streams_describe(s, S("rs"), &d, &e_));
    CPT_EQ_INT(d->nshards, 9);
    CPT_EQ_INT(d->open_shards, 3);
    CPT_EQ_INT(d->shards[6].parent, 2);
    CPT_EQ_INT(d->shards[6].adjacent_parent, 3);
    CPT_EQ_INT(d->shards[7].parent, 3);
    CPT_EQ_INT(d->shards[7].adjacent_parent, 4);
    CPT_EQ_INT(d->shards[8].parent, 4);
    CPT_EQ_INT(d->shards[8].adjacent_parent, 5);
    cp_stream_desc_free(d);
    CPT_EQ_INT(put1(s, "rs", "user-42", "later", NULL, 0).shard, 7);

    /* Past retention, closed shards expire and disappear; open ones stay. */
    cp_clock_pin_ms(t0 + 25 * hour);
    put1(s, "rs", "user-42", "young", NULL, 0);
    OK(cp_streams_trim(s, 0, &e_));
    OK(cp_streams_describe(s, S("rs"), &d, &e_));
    CPT_EQ_INT(d->nshards, 3);
    CPT_EQ_INT(d->shards[0].index, 6);
    cp_stream_desc_free(d);
    CPT_EQ_INT(cp_streams_iterator(s, S("rs"), 0, CP_ITER_TRIM_HORIZON, S(""), 0, &pos, &err),
               CP_ENOTFOUND);
    cp_streams_close(s);
    s = open_mgr();
    OK(cp_streams_describe(s, S("rs"), &d, &e_));
    CPT_EQ_INT(d->nshards, 3);
    cp_stream_desc_free(d);
    cp_streams_close(s);
    cp_clock_pin_ms(0);
}

static void names_and_types(void)
{
    cp_stream_iter_type t;
    CPT_EQ_INT(cp_stream_iter_type_parse(S("AFTER_SEQUENCE_NUMBER"), &t), CP_OK);
    CPT_EQ_INT(t, CP_ITER_AFTER_SEQUENCE_NUMBER);
    CPT_EQ_INT(cp_stream_iter_type_parse(S("after_sequence_number"), &t), CP_EINVAL);
    CPT_EQ_STR(cp_stream_iter_type_name(CP_ITER_AT_TIMESTAMP), "AT_TIMESTAMP");
    CPT_EQ_STR(cp_stream_status_name(CP_STREAM_DELETING), "DELETING");
    CPT_EQ_STR(cp_stream_mode_name(CP_STREAM_ON_DEMAND), "ON_DEMAND");
}

CPT_LIST = {
    {"create_describe_list", create_describe_list},
    {"create_validation", create_validation},
    {"delete_stream", delete_stream},
    {"crash_leftovers_are_resolved", crash_leftovers_are_resolved},
    {"corrupt_metadata_fails_open", corrupt_metadata_fails_open},
    {"put_routes_by_md5", put_routes_by_md5},
    {"iterator_types", iterator_types},
    {"read_positions_and_lag", read_positions_and_lag},
    {"retention_trimming", retention_trimming},
    {"checkpoints_survive_reopen", checkpoints_survive_reopen},
    {"last_source_after_reopen", last_source_after_reopen},
    {"concurrent_puts_exactly_once", concurrent_puts_exactly_once},
    {"update_shard_count", update_shard_count},
    {"names_and_types", names_and_types},
    {0},
};
