/* SPDX-License-Identifier: MIT */
/*
 * Crash test of exactly-once delivery. The stream is filled first; a child process runs the
 * delivery engine and is killed with SIGKILL once a random number of objects has appeared in
 * the bucket directory (mid-flush, mid-round, anywhere). After each kill the parent restarts the
 * engine, lets it drain, and checks that every record is in the bucket exactly once.
 */
#include "../unit/cpt.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "core/mem.h"
#include "delivery/engine.h"
#include "delivery/s3client.h"
#include "http/server.h"
#include "objects/bucket.h"
#include "objects/s3api.h"

enum { ROUNDS = 20, PER_ROUND = 5000 };

typedef struct sys {
    cp_streams *streams;
    cp_bucket_store *buckets; /* localfs mode */
    void *s3;                 /* S3 mode: the sink's ctx */
    cp_delivery *d;
} sys;

/* S3 mode: the engine delivers through the S3-compatible sink to this endpoint. */
static char s3_endpoint[64];

static int sys_open(const char *dir, sys *s)
{
    memset(s, 0, sizeof(*s));
    if (cp_streams_open(dir, NULL, &s->streams, NULL) != CP_OK) {
        return -1;
    }
    cp_delivery_opts o = {.data_dir = dir, .streams = s->streams};
    if (s3_endpoint[0]) {
        cp_s3_sink_cfg sc = CP_S3_SINK_CFG_INIT;
        sc.endpoint = s3_endpoint;
        sc.region = "us-east-1";
        sc.access_key = "AKIDEXAMPLE";
        sc.secret_key = "secret";
        if (cp_s3_sink_new(&sc, &s->s3, NULL) != CP_OK) {
            return -1;
        }
        o.sink = &cp_sink_s3;
        o.sink_ctx = s->s3;
    } else {
        cp_bucket_cfg bc = {.data_dir = dir};
        if (cp_bucket_store_open(&bc, &s->buckets, NULL) != CP_OK) {
            return -1;
        }
        o.sink = &cp_sink_localfs;
        o.sink_ctx = s->buckets;
    }
    return cp_delivery_open(&o, &s->d, NULL);
}

static void sys_close(sys *s)
{
    cp_delivery_close(s->d);
    cp_bucket_store_close(s->buckets);
    if (s->s3) {
        cp_sink_s3.destroy(s->s3);
    }
    cp_streams_close(s->streams);
}

static const char *config_json =
    "{\"DeliveryStreamName\":\"t\",\"DeliveryStreamType\":\"KinesisStreamAsSource\","
    "\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":"
    "\"arn:aws:kinesis:us-east-1:000000000000:stream/src\",\"RoleARN\":\"arn:aws:iam::000000000000:role/firehose\"},"
    "\"ExtendedS3DestinationConfiguration\":{\"RoleARN\":\"arn:aws:iam::000000000000:role/firehose\","
    "\"BucketARN\":\"arn:aws:s3:::lake\",\"Prefix\":\"out/k=!{partitionKeyFromQuery:k}/\","
    "\"ErrorOutputPrefix\":\"err/!{firehose:error-output-type}/\","
    "\"BufferingHints\":{\"SizeInMBs\":1,\"IntervalInSeconds\":0},"
    "\"DynamicPartitioningConfiguration\":{\"Enabled\":true},"
    "\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":["
    "{\"Type\":\"MetadataExtraction\",\"Parameters\":[{\"ParameterName\":"
    "\"MetadataExtractionQuery\",\"ParameterValue\":\"{k:.k}\"},{\"ParameterName\":"
    "\"JsonParsingEngine\",\"ParameterValue\":\"JQ-1.6\"}]},"
    "{\"Type\":\"AppendDelimiterToRecord\",\"Parameters\":[]}]}}}";

static void put_records(sys *s, int first, int n)
{
    cp_stream_put *puts = cp_calloc((size_t) n, sizeof(*puts));
    cp_stream_put_result *res = cp_calloc((size_t) n, sizeof(*res));
    char (*data)[64] = cp_calloc((size_t) n, 64);
    char (*pks)[16] = cp_calloc((size_t) n, 16);
    for (int i = 0; i < n; i++) {
        snprintf(data[i], 64, "{\"id\":%d,\"k\":\"p%d\"}", first + i, (first + i) % 7);
        snprintf(pks[i], 16, "%d", first + i);
        puts[i] = (cp_stream_put){cp_slice_str(pks[i]), cp_slice_str(data[i]), {NULL, 0}, 0};
    }
    size_t failed = 0;
    CPT_EQ_INT(cp_streams_put(s->streams, CP_SLICE("src"), puts, (size_t) n, res, &failed, NULL),
               CP_OK);
    CPT_EQ_INT(failed, 0);
    cp_free(puts);
    cp_free(res);
    cp_free(data);
    cp_free(pks);
}

static int count_files(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        return 0;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        struct stat st;
        if (stat(sub, &st) == 0) {
            n += S_ISDIR(st.st_mode) ? count_files(sub) : 1;
        }
    }
    closedir(d);
    return n;
}

typedef struct seen {
    cp_bucket_store *store;
    int *ids;
    int n;
} seen;

static int check_object(void *ctx, const cp_bucket_entry *e)
{
    seen *sn = ctx;
    cp_buf body = CP_BUF_INIT;
    CPT_EQ_INT(cp_bucket_read(sn->store, "lake", e->key, &body, NULL, NULL), CP_OK);
    for (const char *p = body.p; p && (p = strstr(p, "\"id\":"));) {
        int id = atoi(p + 5);
        CPT_CHECK(id >= 0 && id < sn->n);
        sn->ids[id]++;
        p += 5;
    }
    cp_buf_free(&body);
    return 0;
}

/* localfs: objects in <dir>/buckets; s3: objects PUT to an S3 server in this (parent)
 * process, whose store lives in <dir>/s3 and survives every kill of the child. */
static void run_crashes(int s3_mode)
{
    const char *dir = cpt_tmpdir();
    cp_bucket_store *remote = NULL;
    cp_s3api *api = NULL;
    cp_http_server *srv = NULL;
    char remote_dir[4000];
    snprintf(remote_dir, sizeof(remote_dir), "%s/s3", dir);
    if (s3_mode) {
        cp_bucket_cfg bc = {.data_dir = remote_dir};
        CPT_EQ_INT(cp_bucket_store_open(&bc, &remote, NULL), CP_OK);
        CPT_EQ_INT(cp_bucket_create(remote, "lake", NULL, NULL), CP_OK);
        api = cp_s3api_new(remote, NULL);
        cp_http_cfg hc = {.host = "127.0.0.1", .handler = cp_s3api_handle, .ctx = api};
        CPT_EQ_INT(cp_http_server_open(&hc, &srv, NULL), CP_OK);
        snprintf(s3_endpoint, sizeof(s3_endpoint), "http://127.0.0.1:%u",
                 cp_http_server_port(srv));
    }
    unsigned seed = (unsigned) time(NULL);
    printf("seed %u\n", seed);
    srand(seed);
    sys s;
    CPT_EQ_INT(sys_open(dir, &s), 0);
    CPT_EQ_INT(cp_streams_create(s.streams, CP_SLICE("src"), CP_STREAM_ON_DEMAND, 0, NULL), CP_OK);
    if (!s3_mode) {
        CPT_EQ_INT(cp_bucket_create(s.buckets, "lake", NULL, NULL), CP_OK);
    }
    cp_ds_config *cfg;
    cp_ds_err perr = CP_DS_ERR_INIT;
    CPT_EQ_INT(cp_ds_config_parse(cp_slice_str(config_json), NULL, &cfg, &perr), CP_OK);
    CPT_EQ_INT(cp_delivery_create(s.d, cfg, NULL), CP_OK);
    sys_close(&s);
    char out_dir[4200];
    snprintf(out_dir, sizeof(out_dir), "%s/buckets/lake/out", s3_mode ? remote_dir : dir);
    int total = 0;
    for (int round = 0; round < ROUNDS; round++) {
        /* More input, written while no engine runs. */
        CPT_EQ_INT(cp_streams_open(dir, NULL, &s.streams, NULL), CP_OK);
        put_records(&s, total, PER_ROUND);
        cp_streams_close(s.streams);
        total += PER_ROUND;
        int before = count_files(out_dir), target = before + 1 + rand() % 6;
        pid_t pid = fork();
        if (pid == 0) {
            sys c;
            if (sys_open(dir, &c) != 0) {
                _exit(2);
            }
            for (;;) {
                pause(); /* the engine's worker thread delivers until the kill */
            }
        }
        /* Kill once `target` objects exist, or when the child has delivered everything. */
        int64_t deadline = time(NULL) + 60;
        while (count_files(out_dir) < target && time(NULL) < deadline) {
            usleep(1000);
        }
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        CPT_CHECK(WIFSIGNALED(st));
    }
    /* Restart once more, drain everything, and count every record. */
    CPT_EQ_INT(sys_open(dir, &s), 0);
    CPT_EQ_INT(cp_delivery_drain(s.d, "t", 1, 60000, NULL), CP_OK);
    seen sn = {s3_mode ? remote : s.buckets, cp_calloc((size_t) total, sizeof(int)), total};
    CPT_EQ_INT(cp_bucket_walk(sn.store, "lake", CP_SLICE("out/"), check_object, &sn, NULL),
               CP_OK);
    int lost = 0, dup = 0;
    for (int i = 0; i < total; i++) {
        lost += sn.ids[i] == 0;
        dup += sn.ids[i] > 1;
    }
    cp_delivery_stats stats;
    CPT_EQ_INT(cp_delivery_stats_get(s.d, "t", &stats, NULL), CP_OK);
    printf("%d records, %d crashes, %llu objects: lost %d, duplicated %d (read %llu, delivered "
           "%llu, errors %llu, buffered %llu)\n",
           total, ROUNDS, (unsigned long long) stats.objects, lost, dup,
           (unsigned long long) stats.records_read, (unsigned long long) stats.records_delivered,
           (unsigned long long) stats.records_errored,
           (unsigned long long) stats.records_buffered);
    for (int i = 0, shown = 0; i < total && shown < 5; i++) {
        if (sn.ids[i] == 0) {
            printf("  lost id %d\n", i);
            shown++;
        }
    }
    CPT_EQ_INT(lost, 0);
    CPT_EQ_INT(dup, 0);
    CPT_EQ_INT(stats.records_read, (uint64_t) total);
    CPT_EQ_INT(stats.records_delivered, (uint64_t) total);
    cp_free(sn.ids);
    sys_close(&s);
    cp_http_server_close(srv);
    cp_s3api_free(api);
    cp_bucket_store_close(remote);
    s3_endpoint[0] = 0;
}

static void killed_mid_delivery_still_exactly_once(void)
{
    run_crashes(0);
}

static void killed_mid_delivery_to_s3_still_exactly_once(void)
{
    run_crashes(1);
}

CPT_LIST = {
    {"killed_mid_delivery_still_exactly_once", killed_mid_delivery_still_exactly_once},
    {"killed_mid_delivery_to_s3_still_exactly_once", killed_mid_delivery_to_s3_still_exactly_once},
    {0},
};
