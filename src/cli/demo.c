/* SPDX-License-Identifier: MIT */
/*
 * `changepipe demo`: the article end to end in one command. An embedded server in a temporary
 * directory; the article's pipeline created through the AWS APIs (bucket, on-demand table,
 * on-demand stream, streaming destination, a by-livestream delivery stream with dynamic
 * partitioning and a by-time delivery stream, both with the native DynamoDB processor); the
 * article's load (1,000 BatchWriteItem requests/s x 25 items over 10 livestreams, 30 s by
 * default); then the article's Athena-style query over the bucket, the rows per livestream,
 * lost and duplicated counts, and each stage's success rate.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/awsclient.h"
#include "cli/cli.h"
#include "cli/load.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/mem.h"
#include "query/query.h"
#include "server/metrics.h"
#include "server/server.h"

typedef struct demo_opts {
    cp_load_opts load; /* rate, duration, livestreams, connections (first: shares offsets) */
    char *data;
    int keep;
} demo_opts;

static const cp_config_entry demo_table[] = {
    {"rate", CP_CFG_DOUBLE, "1000", 0.1, 1e6, offsetof(demo_opts, load.rate), 0,
     "BatchWriteItem requests per second (25 items each)", NULL},
    {"duration", CP_CFG_DURATION, "30s", 100, 86400000, offsetof(demo_opts, load.duration_ms), 0,
     "how long the load runs", NULL},
    {"livestreams", CP_CFG_INT, "10", 1, 100000, offsetof(demo_opts, load.livestreams), 0,
     "livestreams the requests rotate over", NULL},
    {"connections", CP_CFG_INT, "64", 1, 4096, offsetof(demo_opts, load.connections), 0,
     "keep-alive connections of the load generator", NULL},
    {"data", CP_CFG_STRING, NULL, 0, 0, offsetof(demo_opts, data), 0,
     "data directory (default: a new temporary directory, removed afterwards)", "DIR"},
    {"keep", CP_CFG_BOOL, "false", 0, 0, offsetof(demo_opts, keep), 0,
     "keep the data directory and print where it is", NULL},
    {0},
};

#define REGION "ap-northeast-2"

static const char *const by_livestream =
    "{\"DeliveryStreamName\":\"chat-by-livestream\",\"DeliveryStreamType\":"
    "\"KinesisStreamAsSource\",\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":"
    "\"arn:aws:kinesis:" REGION ":000000000000:stream/chat-cdc\",\"RoleARN\":"
    "\"arn:aws:iam::000000000000:role/firehose\"},\"ExtendedS3DestinationConfiguration\":{"
    "\"RoleARN\":\"arn:aws:iam::000000000000:role/firehose\",\"BucketARN\":"
    "\"arn:aws:s3:::chat-bucket\",\"Prefix\":"
    "\"Livestreams/LivestreamID=!{partitionKeyFromLambda:LivestreamID}/\","
    "\"ErrorOutputPrefix\":\"errors/!{firehose:error-output-type}/\","
    "\"BufferingHints\":{\"SizeInMBs\":64,\"IntervalInSeconds\":60},"
    "\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":[{\"Type\":"
    "\"DynamoDBChangeRecord\",\"Parameters\":[{\"ParameterName\":\"PartitionKeyAttributes\","
    "\"ParameterValue\":\"LivestreamID\"}]}]},"
    "\"DynamicPartitioningConfiguration\":{\"Enabled\":true,\"RetryOptions\":"
    "{\"DurationInSeconds\":300}}}}";

static const char *const by_time =
    "{\"DeliveryStreamName\":\"chat-by-time\",\"DeliveryStreamType\":\"KinesisStreamAsSource\","
    "\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":"
    "\"arn:aws:kinesis:" REGION ":000000000000:stream/chat-cdc\",\"RoleARN\":"
    "\"arn:aws:iam::000000000000:role/firehose\"},\"ExtendedS3DestinationConfiguration\":{"
    "\"RoleARN\":\"arn:aws:iam::000000000000:role/firehose\",\"BucketARN\":"
    "\"arn:aws:s3:::chat-bucket-by-time\",\"Prefix\":"
    "\"Livestreams/!{timestamp:yyyy/MM/dd/HH/mm/ss/}\","
    "\"ErrorOutputPrefix\":\"errors/!{firehose:error-output-type}/\","
    "\"BufferingHints\":{\"SizeInMBs\":128,\"IntervalInSeconds\":300},"
    "\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":[{\"Type\":"
    "\"DynamoDBChangeRecord\",\"Parameters\":[]}]}}}";

/* One set-up call; prints the failure and returns -1 unless the status is 200. */
static int setup(const cp_awsc *c, const char *what, const char *target, const char *service,
                 const char *json)
{
    long status = 0;
    cp_buf out = CP_BUF_INIT;
    cp_err err = {0};
    int rc = target ? cp_awsc_json(c, target, service, json, &status, &out, &err)
                    : cp_awsc_rest(c, "PUT", json, "s3",
                                   CP_SLICE("<CreateBucketConfiguration><LocationConstraint>"
                                            REGION "</LocationConstraint>"
                                            "</CreateBucketConfiguration>"),
                                   &status, &out, &err);
    if (rc != CP_OK || status != 200) {
        fprintf(stderr, "changepipe demo: %s failed: %s %.*s\n", what,
                rc != CP_OK ? err.msg : "", (int) out.len, out.p ? out.p : "");
        cp_buf_free(&out);
        return -1;
    }
    printf("  %s\n", what);
    cp_buf_free(&out);
    return 0;
}

typedef struct counts {
    int64_t n;
    char live[64][32];
    uint64_t rows[64], distinct[64];
    uint64_t total_rows;
} counts;

static int count_row(void *ctx, const cp_query_result *res, const cp_query_value *row)
{
    counts *c = ctx;
    if (res->ncols == 1) {
        c->total_rows = (uint64_t) row[0].i;
        return 0;
    }
    if (c->n < 64) {
        snprintf(c->live[c->n], sizeof(c->live[0]), "%.*s", (int) row[0].s.len, row[0].s.p);
        c->rows[c->n] = (uint64_t) row[1].i;
        c->distinct[c->n] = (uint64_t) row[2].i;
        c->n++;
    }
    return 0;
}

static double pct(uint64_t ok, uint64_t total)
{
    return total ? 100.0 * (double) ok / (double) total : 100.0;
}

static int demo_run(void *arg, char **rest)
{
    (void) rest;
    demo_opts *o = arg;
    char tmp[] = "/tmp/changepipe-demo-XXXXXX";
    const char *dir = o->data;
    if (!dir) {
        if (!mkdtemp(tmp)) {
            perror("changepipe demo: mkdtemp");
            return 1;
        }
        dir = tmp;
    }
    cp_server_cfg sc = {.listen = "127.0.0.1:0",
                        .data = (char *) dir,
                        .region = REGION,
                        .credentials = "",
                        .log_level = "warn",
                        .max_body = 32 << 20,
                        .idle_timeout = 120000,
                        .lambda_concurrency = 10,
                        .lambda_endpoints = "",
                        .s3_sinks = "",
                        .max_active_partitions = 500};
    cp_server *srv = NULL;
    cp_err err = {0};
    int status = 1;
    if (cp_server_open(&sc, &srv, &err) != CP_OK) {
        fprintf(stderr, "changepipe demo: %s\n", err.msg);
        goto out;
    }
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", cp_server_port(srv));
    char access_key[] = "AKIDEXAMPLE", secret_key[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    char region[] = REGION, table[] = "ChatMessages";
    cp_awsc c = {endpoint, REGION, access_key, secret_key};
    printf("changepipe demo: the article's pipeline on an embedded server at %s\n", endpoint);
    if (setup(&c, "s3api create-bucket chat-bucket", NULL, NULL, "/chat-bucket") ||
        setup(&c, "s3api create-bucket chat-bucket-by-time", NULL, NULL,
              "/chat-bucket-by-time") ||
        setup(&c, "dynamodb create-table ChatMessages (LivestreamID S, UID N, on demand)",
              "DynamoDB_20120810.CreateTable", "dynamodb",
              "{\"TableName\":\"ChatMessages\",\"BillingMode\":\"PAY_PER_REQUEST\","
              "\"AttributeDefinitions\":[{\"AttributeName\":\"LivestreamID\",\"AttributeType\":"
              "\"S\"},{\"AttributeName\":\"UID\",\"AttributeType\":\"N\"}],\"KeySchema\":["
              "{\"AttributeName\":\"LivestreamID\",\"KeyType\":\"HASH\"},{\"AttributeName\":"
              "\"UID\",\"KeyType\":\"RANGE\"}]}") ||
        setup(&c, "kinesis create-stream chat-cdc --stream-mode-details StreamMode=ON_DEMAND",
              "Kinesis_20131202.CreateStream", "kinesis",
              "{\"StreamName\":\"chat-cdc\",\"StreamModeDetails\":{\"StreamMode\":"
              "\"ON_DEMAND\"}}") ||
        setup(&c, "dynamodb enable-kinesis-streaming-destination",
              "DynamoDB_20120810.EnableKinesisStreamingDestination", "dynamodb",
              "{\"TableName\":\"ChatMessages\",\"StreamArn\":\"arn:aws:kinesis:" REGION
              ":000000000000:stream/chat-cdc\"}") ||
        setup(&c, "firehose create-delivery-stream chat-by-livestream (dynamic partitioning)",
              "Firehose_20150804.CreateDeliveryStream", "firehose", by_livestream) ||
        setup(&c, "firehose create-delivery-stream chat-by-time (yyyy/MM/dd/HH/mm/ss)",
              "Firehose_20150804.CreateDeliveryStream", "firehose", by_time)) {
        goto out;
    }

    cp_load_opts lo = o->load;
    lo.endpoint = endpoint;
    lo.table = table;
    lo.region = region;
    lo.access_key = access_key;
    lo.secret_key = secret_key;
    printf("\nload: %.0f BatchWriteItem requests/s x 25 items for %.0f s over %lld livestreams\n",
           lo.rate, (double) lo.duration_ms / 1000, (long long) lo.livestreams);
    cp_load_result lr;
    cp_load_run(&lo, &lr);
    cp_load_print(&lo, &lr, stdout);

    printf("\nwaiting for delivery (flushing every buffer) ...\n");
    int64_t t0 = cp_clock_mono_ns();
    long st = 0;
    cp_buf body = CP_BUF_INIT;
    if (cp_awsc_rest(&c, "POST", "/changepipe/v1/drain", "s3", CP_SLICE(""), &st, &body, &err) !=
            CP_OK ||
        st != 200) {
        fprintf(stderr, "changepipe demo: drain failed: %s %s\n", err.msg, body.p ? body.p : "");
        cp_buf_free(&body);
        cp_load_result_free(&lr);
        goto out;
    }
    cp_buf_free(&body);
    printf("  delivered in %.2f s after the load ended\n",
           (double) (cp_clock_mono_ns() - t0) / 1e9);

    /* The article's Athena table and query, over the objects as they are in the bucket. */
    const char *ddl =
        "CREATE EXTERNAL TABLE IF NOT EXISTS chat_messages (LivestreamID string, UID bigint, "
        "UserID string, Message string, CreatedAt string) ROW FORMAT SERDE "
        "'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://chat-bucket/Livestreams/';"
        "CREATE EXTERNAL TABLE IF NOT EXISTS chat_by_time (LivestreamID string, UID bigint) "
        "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
        "LOCATION 's3://chat-bucket-by-time/Livestreams/'";
    cp_query_opts qo = {.data_dir = dir, .store = cp_server_buckets(srv)};
    cp_query *q = NULL;
    counts cnt = {0}, by_time_cnt = {0};
    int qrc = cp_query_open(&qo, &q, &err);
    if (qrc == CP_OK) {
        qrc = cp_query_each(q, ddl, count_row, &cnt, &err);
    }
    const char *sql = "SELECT LivestreamID, count(*), count(DISTINCT UID) FROM chat_messages "
                      "GROUP BY LivestreamID ORDER BY LivestreamID";
    if (qrc == CP_OK) {
        printf("\nathena> %s\n", sql);
        qrc = cp_query_each(q, sql, count_row, &cnt, &err);
    }
    if (qrc == CP_OK) {
        qrc = cp_query_each(q, "SELECT count(*) FROM chat_by_time", count_row, &by_time_cnt,
                            &err);
    }
    cp_query_close(q);
    if (qrc != CP_OK) {
        fprintf(stderr, "changepipe demo: query failed: %s\n", err.msg);
        cp_load_result_free(&lr);
        goto out;
    }
    uint64_t lost = 0, dup = 0, rows = 0, sent = 0;
    printf("  %-14s %12s %12s %12s\n", "LivestreamID", "rows", "written", "distinct UID");
    for (int64_t i = 0; i < lo.livestreams; i++) {
        char id[32];
        snprintf(id, sizeof(id), "live-%lld", (long long) i);
        uint64_t r = 0, d = 0;
        for (int64_t k = 0; k < cnt.n; k++) {
            if (strcmp(cnt.live[k], id) == 0) {
                r = cnt.rows[k];
                d = cnt.distinct[k];
            }
        }
        uint64_t w = lr.per_livestream[i];
        if (i < 20) {
            printf("  %-14s %12llu %12llu %12llu\n", id, (unsigned long long) r,
                   (unsigned long long) w, (unsigned long long) d);
        }
        lost += w > d ? w - d : 0;
        dup += r - d;
        rows += r;
        sent += w;
    }
    printf("\n  lost = %llu, duplicated = %llu (by-livestream: %llu rows for %llu items written;"
           " by-time: %llu rows)\n",
           (unsigned long long) lost, (unsigned long long) dup, (unsigned long long) rows,
           (unsigned long long) sent, (unsigned long long) by_time_cnt.total_rows);

    /* Per-stage success rates, as the article's dashboards show them. */
    cp_metrics *m = cp_server_metrics(srv);
    cp_metrics_op w;
    if (cp_metrics_op_get(m, "dynamodb.BatchWriteItem", &w) != CP_OK) {
        memset(&w, 0, sizeof(w));
    }
    printf("\n  stage success rates:\n");
    printf("    %-44s %7.2f%%  (%llu requests, %llu throttled)\n",
           "client -> DynamoDB BatchWriteItem",
           pct(w.count - w.errors, w.count), (unsigned long long) w.count,
           (unsigned long long) w.throttles);
    static const char *const streams[] = {"chat-by-livestream", "chat-by-time"};
    for (int i = 0; i < 2; i++) {
        cp_delivery_stats ds;
        if (cp_server_delivery_stats(srv, streams[i], &ds) != CP_OK) {
            continue;
        }
        char label[96];
        snprintf(label, sizeof(label), "Kinesis -> Firehose %s", streams[i]);
        printf("    %-44s %7.2f%%  (%llu records read)\n", label,
               pct(ds.records_read - ds.records_errored, ds.records_read),
               (unsigned long long) ds.records_read);
        snprintf(label, sizeof(label), "Firehose -> transform %s", streams[i]);
        printf("    %-44s %7.2f%%  (%llu errors)\n", label,
               pct(ds.records_read - ds.records_errored, ds.records_read),
               (unsigned long long) ds.records_errored);
        snprintf(label, sizeof(label), "Firehose -> S3 %s", streams[i]);
        printf("    %-44s %7.2f%%  (%llu objects, %llu records)\n", label,
               pct(ds.records_delivered, ds.records_read - ds.records_dropped),
               (unsigned long long) ds.objects, (unsigned long long) ds.records_delivered);
    }
    status = lost == 0 && dup == 0 && lr.errors == 0 && rows == sent ? 0 : 1;
    if (status) {
        printf("\n  FAILED: the bucket does not hold every written item exactly once\n");
    }
    cp_load_result_free(&lr);
out:
    cp_server_close(srv);
    if (!o->data && !o->keep) {
        if (cp_fs_rm_rf(dir) != CP_OK) {
            fprintf(stderr, "changepipe demo: could not remove %s\n", dir);
        }
    } else {
        printf("  data kept in %s\n", dir);
    }
    return status;
}

const cp_cli_command cp_cli_demo = {
    .name = "demo",
    .summary = "run the article end to end: pipeline through the APIs, 25,000 items/s load, "
               "Athena-style query, lost/duplicated counts, per-stage success rates",
    .usage = NULL,
    .opts = demo_table,
    .opts_size = sizeof(demo_opts),
    .run = demo_run,
};
