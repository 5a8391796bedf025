/* SPDX-License-Identifier: MIT */
/* The delivery engine end to end: Kinesis stream -> processors -> partitions -> bucket. */
#include "cpt.h"

#include "core/hash.h"
#include "core/mem.h"
#include "delivery/compress.h"
#include "delivery/engine.h"
#include "objects/bucket.h"

typedef struct env {
    cp_streams *streams;
    cp_bucket_store *buckets;
    cp_delivery *d;
} env;

static void env_open(env *e)
{
    cp_err err = {0};
    CPT_EQ_INT(cp_streams_open(cpt_tmpdir(), NULL, &e->streams, &err), CP_OK);
    cp_bucket_cfg bc = {.data_dir = cpt_tmpdir()};
    CPT_EQ_INT(cp_bucket_store_open(&bc, &e->buckets, &err), CP_OK);
    cp_delivery_opts o = {.data_dir = cpt_tmpdir(), .streams = e->streams,
                          .sink = &cp_sink_localfs, .sink_ctx = e->buckets};
    if (cp_delivery_open(&o, &e->d, &err) != CP_OK) {
        CPT_FAIL_AT("delivery open: %s", err.msg);
    }
}

static void env_close(env *e)
{
    cp_delivery_close(e->d);
    cp_bucket_store_close(e->buckets);
    cp_streams_close(e->streams);
}

static void create_stream_and_bucket(env *e)
{
    cp_err err = {0};
    CPT_EQ_INT(cp_streams_create(e->streams, CP_SLICE("cdc"), CP_STREAM_ON_DEMAND, 0, &err),
               CP_OK);
    CPT_EQ_INT(cp_bucket_create(e->buckets, "lake", NULL, &err), CP_OK);
}

static void create_delivery(env *e, const char *json)
{
    cp_ds_config *cfg = NULL;
    cp_ds_err perr = CP_DS_ERR_INIT;
    if (cp_ds_config_parse(cp_slice_str(json), NULL, &cfg, &perr) != CP_OK) {
        CPT_FAIL_AT("config: %s: %s", perr.type, perr.msg.p);
    }
    cp_err err = {0};
    if (cp_delivery_create(e->d, cfg, &err) != CP_OK) {
        CPT_FAIL_AT("create: %s", err.msg);
    }
}

/* A DynamoDB change record as the Kinesis streaming destination renders it. */
static void change_json(cp_buf *out, int live, int uid, const char *msg)
{
    cp_buf_reset(out);
    cp_buf_printf(out,
                  "{\"awsRegion\":\"us-east-1\",\"eventID\":\"e-%d\",\"eventName\":\"INSERT\","
                  "\"userIdentity\":null,\"recordFormat\":\"application/json\","
                  "\"tableName\":\"Chat\",\"dynamodb\":{\"ApproximateCreationDateTime\":1,"
                  "\"Keys\":{\"LivestreamID\":{\"S\":\"live-%d\"},\"UID\":{\"N\":\"%d\"}},"
                  "\"NewImage\":{\"LivestreamID\":{\"S\":\"live-%d\"},\"UID\":{\"N\":\"%d\"},"
                  "\"Message\":{\"S\":\"%s\"}},\"SizeBytes\":40},\"eventSource\":\"aws:dynamodb\"}",
                  uid, live, uid, live, uid, msg);
}

static void put_changes(env *e, int n, int livestreams, int first_uid, int missing_key_every)
{
    cp_buf data = CP_BUF_INIT;
    for (int i = 0; i < n; i++) {
        int uid = first_uid + i;
        change_json(&data, i % livestreams, uid, "hello");
        if (missing_key_every && i % missing_key_every == 0) {
            /* A record without LivestreamID in its image: partitioning must fail. */
            cp_buf_reset(&data);
            cp_buf_printf(&data,
                          "{\"eventName\":\"INSERT\",\"dynamodb\":{\"NewImage\":{\"UID\":{\"N\":"
                          "\"%d\"}}}}",
                          uid);
        }
        char pk[32];
        snprintf(pk, sizeof(pk), "pk-%d", uid);
        cp_stream_put p = {cp_slice_str(pk), cp_buf_slice(&data), {NULL, 0}, 0};
        cp_stream_put_result r;
        size_t failed = 0;
        CPT_EQ_INT(cp_streams_put(e->streams, CP_SLICE("cdc"), &p, 1, &r, &failed, NULL), CP_OK);
    }
    cp_buf_free(&data);
}

/* What the bucket holds under a prefix: objects, lines, and per-UID counts. */
typedef struct tally {
    env *e;
    int objects, lines, gz;
    int *uid_seen;
    int uid_cap;
    char first_key[512];
    int error_docs;
} tally;

static int tally_entry(void *ctx, const cp_bucket_entry *ent)
{
    tally *t = ctx;
    cp_buf body = CP_BUF_INIT, plain = CP_BUF_INIT;
    char *key = cp_strndup(ent->key.p, ent->key.len);
    CPT_EQ_INT(cp_bucket_read(t->e->buckets, "lake", ent->key, &body, NULL, NULL), CP_OK);
    cp_slice text = cp_buf_slice(&body);
    if (body.len > 2 && (unsigned char) body.p[0] == 0x1f && (unsigned char) body.p[1] == 0x8b) {
        CPT_EQ_INT(cp_gzip_decompress(cp_buf_slice(&body), 1 << 30, &plain, NULL), CP_OK);
        text = cp_buf_slice(&plain);
        t->gz++;
    }
    if (!t->objects) {
        snprintf(t->first_key, sizeof(t->first_key), "%s", key);
    }
    t->objects++;
    const char *p = text.p, *end = text.p + text.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        CPT_CHECK(nl != NULL); /* every record ends with a newline */
        t->lines++;
        const char *u = memmem(p, (size_t) (nl - p), "\"UID\":", 6);
        if (u && t->uid_seen) {
            int uid = atoi(u + 6);
            CPT_CHECK(uid >= 0 && uid < t->uid_cap);
            t->uid_seen[uid]++;
        }
        if (memmem(p, (size_t) (nl - p), "\"errorCode\":", 12)) {
            t->error_docs++;
        }
        p = nl + 1;
    }
    cp_free(key);
    cp_buf_free(&body);
    cp_buf_free(&plain);
    return 0;
}

static void tally_prefix(env *e, const char *prefix, tally *t, int uid_cap)
{
    memset(t, 0, sizeof(*t));
    t->e = e;
    t->uid_cap = uid_cap;
    t->uid_seen = uid_cap ? cp_calloc((size_t) uid_cap, sizeof(int)) : NULL;
    CPT_EQ_INT(cp_bucket_walk(e->buckets, "lake", cp_slice_str(prefix), tally_entry, t, NULL),
               CP_OK);
}

static const char *by_livestream_json =
    "{\"DeliveryStreamName\":\"by-live\",\"DeliveryStreamType\":\"KinesisStreamAsSource\","
    "\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":"
    "\"arn:aws:kinesis:us-east-1:000000000000:stream/cdc\",\"RoleARN\":\"arn:aws:iam::000000000000:role/firehose\"},"
    "\"ExtendedS3DestinationConfiguration\":{\"RoleARN\":\"arn:aws:iam::000000000000:role/firehose\","
    "\"BucketARN\":\"arn:aws:s3:::lake\","
    "\"Prefix\":\"Livestreams/LivestreamID=!{partitionKeyFromLambda:LivestreamID}/\","
    "\"ErrorOutputPrefix\":\"errors/!{firehose:error-output-type}/\","
    "\"BufferingHints\":{\"SizeInMBs\":64,\"IntervalInSeconds\":60},"
    "\"CompressionFormat\":\"GZIP\","
    "\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":[{\"Type\":"
    "\"DynamoDBChangeRecord\",\"Parameters\":[{\"ParameterName\":\"PartitionKeyAttributes\","
    "\"ParameterValue\":\"LivestreamID\"}]}]},"
    "\"DynamicPartitioningConfiguration\":{\"Enabled\":true}}}";

static const char *by_time_json =
    "{\"DeliveryStreamName\":\"by-time\",\"DeliveryStreamType\":\"KinesisStreamAsSource\","
    "\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":"
    "\"arn:aws:kinesis:us-east-1:000000000000:stream/cdc\",\"RoleARN\":\"arn:aws:iam::000000000000:role/firehose\"},"
    "\"ExtendedS3DestinationConfiguration\":{\"RoleARN\":\"arn:aws:iam::000000000000:role/firehose\","
    "\"BucketARN\":\"arn:aws:s3:::lake\","
    "\"Prefix\":\"Time/!{timestamp:yyyy/MM/dd/HH/mm/ss/}\","
    "\"ErrorOutputPrefix\":\"time-errors/!{firehose:error-output-type}/\","
    "\"BufferingHints\":{\"SizeInMBs\":1,\"IntervalInSeconds\":60},"
    "\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":[{\"Type\":"
    "\"DynamoDBChangeRecord\",\"Parameters\":[]}]}}}";

static void reconciles(env *e, const char *name, uint64_t expect_read)
{
    cp_delivery_stats st;
    CPT_EQ_INT(cp_delivery_stats_get(e->d, name, &st, NULL), CP_OK);
    CPT_EQ_INT(st.records_read, expect_read);
    CPT_EQ_INT(st.records_read, st.records_delivered + st.records_errored + st.records_dropped +
                                    st.records_buffered);
}

static void two_delivery_streams_read_one_stream(void)
{
    env e;
    env_open(&e);
    create_stream_and_bucket(&e);
    create_delivery(&e, by_livestream_json);
    create_delivery(&e, by_time_json);
    enum { N = 2000, LIVE = 10 };
    put_changes(&e, N, LIVE, 0, 0);
    cp_err err = {0};
    CPT_EQ_INT(cp_delivery_drain(e.d, "by-live", 1, 30000, &err), CP_OK);
    CPT_EQ_INT(cp_delivery_drain(e.d, "by-time", 1, 30000, &err), CP_OK);
    for (int l = 0; l < LIVE; l++) {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "Livestreams/LivestreamID=live-%d/", l);
        tally t;
        tally_prefix(&e, prefix, &t, N);
        CPT_EQ_INT(t.lines, N / LIVE);
        CPT_CHECK(t.gz == t.objects && t.objects >= 1);
        /* <prefix><stream>-<version>-yyyy-MM-dd-HH-mm-ss-<uuid>.gz */
        CPT_CHECK(strstr(t.first_key, "/by-live-1-") != NULL);
        CPT_CHECK(strlen(t.first_key) > 3 && !strcmp(t.first_key + strlen(t.first_key) - 3, ".gz"));
        for (int u = 0; u < N; u++) {
            CPT_CHECK(t.uid_seen[u] == (u % LIVE == l));
        }
        cp_free(t.uid_seen);
    }
    tally all;
    tally_prefix(&e, "Time/", &all, N);
    CPT_EQ_INT(all.lines, N);
    CPT_EQ_INT(all.gz, 0);
    for (int u = 0; u < N; u++) {
        CPT_EQ_INT(all.uid_seen[u], 1);
    }
    cp_free(all.uid_seen);
    reconciles(&e, "by-live", N);
    reconciles(&e, "by-time", N);
    env_close(&e);
}

static void failures_go_to_error_output(void)
{
    env e;
    env_open(&e);
    create_stream_and_bucket(&e);
    create_delivery(&e, by_livestream_json);
    put_changes(&e, 100, 5, 0, 10); /* every 10th record lacks LivestreamID */
    CPT_EQ_INT(cp_delivery_drain(e.d, "by-live", 1, 30000, NULL), CP_OK);
    tally errors;
    tally_prefix(&e, "errors/partitioning-failed/", &errors, 0);
    CPT_EQ_INT(errors.error_docs, 10);
    tally data;
    tally_prefix(&e, "Livestreams/", &data, 100);
    CPT_EQ_INT(data.lines, 90);
    cp_free(data.uid_seen);
    cp_delivery_stats st;
    CPT_EQ_INT(cp_delivery_stats_get(e.d, "by-live", &st, NULL), CP_OK);
    CPT_EQ_INT(st.records_errored, 10);
    CPT_EQ_INT(st.records_delivered, 90);
    reconciles(&e, "by-live", 100);
    env_close(&e);
}

static void buffers_survive_restart(void)
{
    env e;
    env_open(&e);
    create_stream_and_bucket(&e);
    create_delivery(&e, by_time_json);
    put_changes(&e, 500, 3, 0, 0);
    /* Let the worker stage the records (interval 60 s: nothing is flushed yet). */
    cp_delivery_stats st = {0};
    for (int i = 0; i < 2000 && st.records_read < 500; i++) {
        CPT_EQ_INT(cp_delivery_stats_get(e.d, "by-time", &st, NULL), CP_OK);
        usleep(5000);
    }
    CPT_EQ_INT(st.records_read, 500);
    CPT_EQ_INT(st.records_buffered, 500);
    env_close(&e);
    env_open(&e);
    put_changes(&e, 500, 3, 500, 0);
    CPT_EQ_INT(cp_delivery_drain(e.d, "by-time", 1, 30000, NULL), CP_OK);
    tally all;
    tally_prefix(&e, "Time/", &all, 1000);
    CPT_EQ_INT(all.lines, 1000);
    for (int u = 0; u < 1000; u++) {
        CPT_EQ_INT(all.uid_seen[u], 1);
    }
    cp_free(all.uid_seen);
    reconciles(&e, "by-time", 1000);
    env_close(&e);
}

static void starts_at_latest_and_deletes(void)
{
    env e;
    env_open(&e);
    create_stream_and_bucket(&e);
    put_changes(&e, 50, 2, 0, 0); /* before the delivery stream exists: not delivered */
    create_delivery(&e, by_time_json);
    put_changes(&e, 20, 2, 50, 0);
    CPT_EQ_INT(cp_delivery_drain(e.d, "by-time", 1, 30000, NULL), CP_OK);
    tally all;
    tally_prefix(&e, "Time/", &all, 100);
    CPT_EQ_INT(all.lines, 20);
    for (int u = 50; u < 70; u++) {
        CPT_EQ_INT(all.uid_seen[u], 1);
    }
    cp_free(all.uid_seen);
    cp_err err = {0};
    CPT_EQ_INT(cp_delivery_delete(e.d, "by-time", &err), CP_OK);
    CPT_EQ_INT(cp_delivery_delete(e.d, "by-time", &err), CP_ENOTFOUND);
    cp_delivery_stats st;
    CPT_EQ_INT(cp_delivery_stats_get(e.d, "by-time", &st, &err), CP_ENOTFOUND);
    env_close(&e);
}

/* Every object under a prefix: its key, the digest of its bytes, and the digest of its sorted
 * lines (replay re-reads the source shard by shard, so record order within an object may
 * differ from the first delivery while the records are the same). */
typedef struct snapshot {
    env *e;
    cp_buf keys, bytes, lines;
    int n;
} snapshot;

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static void digest_line(cp_buf *out, cp_slice key, const void *p, size_t len)
{
    unsigned char d[16];
    char hex[33];
    cp_md5(p, len, d);
    cp_hex(d, 16, hex);
    cp_buf_printf(out, "%.*s\t%s\n", (int) key.len, key.p, hex);
}

static int snap_entry(void *ctx, const cp_bucket_entry *ent)
{
    snapshot *sn = ctx;
    cp_buf body = CP_BUF_INIT, plain = CP_BUF_INIT, sorted = CP_BUF_INIT;
    CPT_EQ_INT(cp_bucket_read(sn->e->buckets, "lake", ent->key, &body, NULL, NULL), CP_OK);
    CPT_EQ_INT(cp_gzip_decompress(cp_buf_slice(&body), 1 << 30, &plain, NULL), CP_OK);
    char **lines = cp_calloc(plain.len + 1, sizeof(char *));
    size_t n = 0;
    for (char *save = NULL, *l = strtok_r(plain.p, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        lines[n++] = l;
    }
    qsort(lines, n, sizeof(char *), cmp_line);
    for (size_t i = 0; i < n; i++) {
        cp_buf_printf(&sorted, "%s\n", lines[i]);
    }
    cp_buf_printf(&sn->keys, "%.*s\n", (int) ent->key.len, ent->key.p);
    digest_line(&sn->bytes, ent->key, body.p, body.len);
    digest_line(&sn->lines, ent->key, sorted.p, sorted.len);
    sn->n++;
    cp_free(lines);
    cp_buf_free(&body);
    cp_buf_free(&plain);
    cp_buf_free(&sorted);
    return 0;
}

static void snapshot_take(env *e, snapshot *sn)
{
    *sn = (snapshot){e, CP_BUF_INIT, CP_BUF_INIT, CP_BUF_INIT, 0};
    CPT_EQ_INT(cp_bucket_walk(e->buckets, "lake", CP_SLICE("Livestreams/"), snap_entry, sn, NULL),
               CP_OK);
}

static void snapshot_free(snapshot *sn)
{
    cp_buf_free(&sn->keys);
    cp_buf_free(&sn->bytes);
    cp_buf_free(&sn->lines);
}

static int delete_entry(void *ctx, const cp_bucket_entry *ent)
{
    env *e = ctx;
    CPT_EQ_INT(cp_bucket_delete_object(e->buckets, "lake", ent->key, NULL), CP_OK);
    return 0;
}

static void replay_rewrites_the_same_keys(void)
{
    env e;
    env_open(&e);
    create_stream_and_bucket(&e);
    create_delivery(&e, by_livestream_json);
    put_changes(&e, 600, 4, 0, 0);
    CPT_EQ_INT(cp_delivery_drain(e.d, "by-live", 1, 30000, NULL), CP_OK);
    snapshot before, after, again;
    snapshot_take(&e, &before);
    CPT_CHECK(before.n >= 4);
    CPT_EQ_INT(cp_bucket_walk(e.buckets, "lake", CP_SLICE("Livestreams/"), delete_entry, &e,
                              NULL),
               CP_OK);
    uint64_t objects = 0;
    cp_err err = {0};
    CPT_EQ_INT(cp_delivery_replay(e.d, "by-live", 0, INT64_MAX, &objects, &err), CP_OK);
    CPT_EQ_INT(objects, before.n);
    snapshot_take(&e, &after);
    CPT_EQ_STR(after.keys.p, before.keys.p);   /* the same keys */
    CPT_EQ_STR(after.lines.p, before.lines.p); /* the same records in each */
    /* Replaying again is idempotent: byte for byte the same objects. */
    CPT_EQ_INT(cp_delivery_replay(e.d, "by-live", 0, INT64_MAX, &objects, &err), CP_OK);
    snapshot_take(&e, &again);
    CPT_EQ_STR(again.bytes.p, after.bytes.p);
    /* A window before every arrival replays nothing. */
    CPT_EQ_INT(cp_delivery_replay(e.d, "by-live", 0, 1, &objects, &err), CP_OK);
    CPT_EQ_INT(objects, 0);
    snapshot_free(&before);
    snapshot_free(&after);
    snapshot_free(&again);
    env_close(&e);
}

CPT_LIST = {
    {"replay_rewrites_the_same_keys", replay_rewrites_the_same_keys},
    {"two_delivery_streams_read_one_stream", two_delivery_streams_read_one_stream},
    {"failures_go_to_error_output", failures_go_to_error_output},
    {"buffers_survive_restart", buffers_survive_restart},
    {"starts_at_latest_and_deletes", starts_at_latest_and_deletes},
    {0},
};
