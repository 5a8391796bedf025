/* SPDX-License-Identifier: MIT */
/*
 * Start-up and shutdown order of the server. Start: store (replays its change log) ->
 * streams -> outbox relay -> buckets -> Lambda -> API routers -> HTTP listener -> maintenance.
 * Stop in reverse, after the listener has drained in-flight requests.
 */
#include "server/server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/proto.h"
#include "cdc/outbox.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "delivery/api.h"
#include "delivery/engine.h"
#include "dynamo/dynamo.h"
#include "http/router.h"
#include "http/server.h"
#include "kinesis/api.h"
#include "lambda/api.h"
#include "objects/bucket.h"
#include "objects/s3api.h"
#include "server/firehose.h"
#include "server/invoke.h"
#include "server/limits.h"
#include "server/metrics.h"
#include "server/sinks.h"
#include "server/status.h"

#define MAINTENANCE_EVERY_MS 60000
#define LOG_KEEP_MS          (24LL * 3600 * 1000) /* DynamoDB Streams keep 24 hours */

struct cp_server {
    cp_db *db;
    cp_streams *streams;
    cp_outbox *outbox;
    cp_bucket_store *buckets;
    cp_s3api *s3;
    cp_lambda *lambda;
    cp_invoker *invoker;
    cp_sinks *sinks;
    cp_delivery *delivery;
    cp_firehose_backend firehose;
    cp_firehose_api_cfg firehose_cfg; /* borrowed by the router */
    cp_dynamo_api *dynamo;
    cp_kinesis_api *kinesis;
    cp_limits *limits; /* --emulate-limits; NULL when off */
    cp_aws_router *aws;
    cp_http_router *http;
    cp_metrics *metrics;
    cp_http_server *listener;
    cp_sigv4_cred *creds;
    size_t ncreds;
    char *cred_text;
    int64_t started_ms;

    pthread_t maintenance;
    int maintenance_running;
    pthread_mutex_t mu;
    pthread_cond_t stop_cv;
    int stopping;
};

static int health(void *ctx, const cp_http_req *req, cp_http_resp *resp)
{
    (void) req;
    cp_server *s = ctx;
    cp_http_resp_add_header(resp, "Content-Type", CP_SLICE("application/json"));
    cp_buf_printf(&resp->body, "{\"status\":\"ok\",\"version\":\"%s\",\"uptime_s\":%lld}",
                  CP_VERSION, (long long) ((cp_clock_now_ms() - s->started_ms) / 1000));
    return CP_OK;
}

/* GET / is S3's ListBuckets when signed (every SDK signs it), else the status page for a
 * browser. */
static int root(void *ctx, const cp_http_req *req, cp_http_resp *resp)
{
    cp_server *s = ctx;
    cp_slice presigned;
    if (cp_http_req_header(req, "Authorization").len ||
        cp_http_req_query_param(req, "X-Amz-Credential", &presigned) == CP_OK) {
        return cp_s3api_handle(s->s3, req, resp);
    }
    return cp_status_page(NULL, req, resp);
}

/* With --credentials, the admin endpoints demand a valid SigV4 signature like every API (any
 * service name; `changepipe load --verify` and `changepipe replay` sign theirs). Returns 1 when
 * the request may proceed, else writes a 403 and returns 0. */
static int admin_allowed(cp_server *s, const cp_http_req *req, cp_http_resp *resp)
{
    if (!s->ncreds) {
        return 1;
    }
    cp_sigv4_auth auth;
    cp_sigv4_err e;
    if (cp_aws_authenticate(s->aws, req, NULL, 15 * 60, 0, &auth, &e) == CP_OK) {
        return 1;
    }
    resp->status = 403;
    cp_http_resp_add_header(resp, "Content-Type", CP_SLICE("application/json"));
    cp_buf_puts(&resp->body, "{\"message\":");
    cp_json_put_str(&resp->body, cp_slice_str(e.msg));
    cp_buf_puts(&resp->body, "}");
    return 0;
}

/* POST /changepipe/v1/drain[?stream=NAME]: flush every delivery buffer after reading the
 * sources to their end (a changepipe extension, for load --verify and tests). */
static int drain(void *ctx, const cp_http_req *req, cp_http_resp *resp)
{
    cp_server *s = ctx;
    if (!admin_allowed(s, req, resp)) {
        return CP_OK;
    }
    cp_slice only = {NULL, 0};
    cp_http_req_query_param(req, "stream", &only);
    cp_buf names = CP_BUF_INIT;
    size_t n = 0;
    cp_delivery_list(s->delivery, NULL, 100000, &names, &n, NULL);
    const char *name = names.p;
    int rc = CP_OK;
    cp_err err = {0};
    /* The change relay first: what the table committed must be in the streams. */
    cp_outbox_sync(s->outbox, 120000);
    for (size_t i = 0; i < n && rc == CP_OK; i++, name += strlen(name) + 1) {
        if (!only.len || cp_slice_eq(only, cp_slice_str(name))) {
            rc = cp_delivery_drain(s->delivery, name, 1, 300000, &err);
        }
    }
    cp_buf_free(&names);
    cp_http_resp_add_header(resp, "Content-Type", CP_SLICE("application/json"));
    if (rc != CP_OK) {
        resp->status = 503;
        cp_buf_printf(&resp->body, "{\"drained\":false,\"message\":\"%s\"}", err.msg);
    } else {
        cp_buf_puts(&resp->body, "{\"drained\":true}");
    }
    return CP_OK;
}

/* POST /changepipe/v1/replay?stream=NAME&from=MS&to=MS: re-deliver the objects whose records
 * arrived in [from, to] into the same keys (a changepipe extension; `changepipe replay`). */
static int replay(void *ctx, const cp_http_req *req, cp_http_resp *resp)
{
    cp_server *s = ctx;
    if (!admin_allowed(s, req, resp)) {
        return CP_OK;
    }
    cp_slice name = {NULL, 0}, from = {NULL, 0}, to = {NULL, 0};
    cp_http_req_query_param(req, "stream", &name);
    cp_http_req_query_param(req, "from", &from);
    cp_http_req_query_param(req, "to", &to);
    cp_http_resp_add_header(resp, "Content-Type", CP_SLICE("application/json"));
    if (!name.len) {
        resp->status = 400;
        cp_buf_puts(&resp->body, "{\"message\":\"stream is required\"}");
        return CP_OK;
    }
    char stream[256];
    snprintf(stream, sizeof(stream), "%.*s", (int) name.len, name.p);
    int64_t from_ms = from.len ? strtoll(from.p, NULL, 10) : 0;
    int64_t to_ms = to.len ? strtoll(to.p, NULL, 10) : INT64_MAX;
    uint64_t objects = 0;
    cp_err err = {0};
    int rc = cp_delivery_replay(s->delivery, stream, from_ms, to_ms, &objects, &err);
    if (rc != CP_OK) {
        resp->status = rc == CP_ENOTFOUND ? 404 : 500;
        cp_buf_puts(&resp->body, "{\"message\":");
        cp_json_put_str(&resp->body, cp_slice_str(err.msg));
        cp_buf_puts(&resp->body, "}");
        return CP_OK;
    }
    cp_buf_printf(&resp->body, "{\"objects\":%llu}", (unsigned long long) objects);
    return CP_OK;
}

/* Retention: trim streams and the part of the change log every consumer has passed. */
static void *maintenance_main(void *arg)
{
    cp_server *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += MAINTENANCE_EVERY_MS / 1000;
        pthread_cond_timedwait(&s->stop_cv, &s->mu, &ts);
        if (s->stopping) {
            break;
        }
        pthread_mutex_unlock(&s->mu);
        cp_err err = {0};
        if (cp_streams_trim(s->streams, 0, &err) != CP_OK) {
            CP_LOG_WARN("server", "stream retention: %s", err.msg);
        }
        cp_outbox_stats st;
        cp_outbox_stats_get(s->outbox, &st);
        if (cp_db_log_trim(s->db, cp_clock_now_ms() - LOG_KEEP_MS, st.cursor, &err) != CP_OK) {
            CP_LOG_WARN("server", "change log retention: %s", err.msg);
        }
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* "AK:SECRET,AK2:SECRET2" -> credential array pointing into s->cred_text. */
static int parse_credentials(cp_server *s, const char *text, cp_err *err)
{
    if (!text || !*text) {
        return CP_OK;
    }
    s->cred_text = cp_strdup(text);
    for (char *save = NULL, *tok = strtok_r(s->cred_text, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        if (!colon || colon == tok || !colon[1]) {
            return cp_err_set(err, CP_EINVAL,
                              "--credentials expects ACCESS_KEY:SECRET[,ACCESS_KEY:SECRET]");
        }
        *colon = 0;
        s->creds = cp_realloc(s->creds, (s->ncreds + 1) * sizeof(*s->creds));
        s->creds[s->ncreds++] = (cp_sigv4_cred){tok, colon + 1};
    }
    return CP_OK;
}

static int split_listen(const char *listen, char *host, size_t hostcap, uint16_t *port,
                        cp_err *err)
{
    const char *colon = strrchr(listen, ':');
    char *end;
    long p = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == listen || *end || p < 0 || p > 65535 ||
        (size_t) (colon - listen) >= hostcap) {
        return cp_err_set(err, CP_EINVAL, "--listen expects HOST:PORT, got '%s'", listen);
    }
    memcpy(host, listen, (size_t) (colon - listen));
    host[colon - listen] = 0;
    *port = (uint16_t) p;
    return CP_OK;
}

static int write_ready_file(const char *path, const char *host, uint16_t port, cp_err *err)
{
    char text[300];
    int n = snprintf(text, sizeof(text), "%s:%u\n", host, port);
    /* Atomic, so a watcher never reads half an address; no fsync: it only matters while up. */
    return cp_fs_write_atomic(path, text, (size_t) n, 1, err);
}

int cp_server_open(const cp_server_cfg *cfg, cp_server **out, cp_err *err)
{
    cp_server *s = cp_calloc(1, sizeof(*s));
    s->started_ms = cp_clock_now_ms();
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->stop_cv, NULL);
    char host[256];
    uint16_t port = 0;
    int rc = split_listen(cfg->listen, host, sizeof(host), &port, err);
    if (rc == CP_OK) {
        rc = parse_credentials(s, cfg->credentials, err);
    }
    cp_db_opts dbo = {.dir = cfg->data, .no_fsync = cfg->no_fsync};
    if (rc == CP_OK) {
        rc = cp_db_open(&dbo, &s->db, err);
    }
    cp_streams_opts so = {.no_fsync = cfg->no_fsync};
    if (rc == CP_OK) {
        rc = cp_streams_open(cfg->data, &so, &s->streams, err);
    }
    cp_outbox_opts oo = {.region = cfg->region};
    if (rc == CP_OK) {
        rc = cp_outbox_start(s->db, s->streams, &oo, &s->outbox, err);
    }
    cp_bucket_cfg bc = {.data_dir = cfg->data, .default_region = cfg->region};
    if (rc == CP_OK) {
        rc = cp_bucket_store_open(&bc, &s->buckets, err);
    }
    if (rc != CP_OK) {
        cp_server_close(s);
        return rc;
    }

    cp_aws_router_cfg ac = {.creds = s->creds, .ncreds = s->ncreds,
                            .default_region = cfg->region};
    s->aws = cp_aws_router_new(&ac);
    s->http = cp_http_router_new();
    /* ARNs echo each request's region, as AWS does. */
    if (cfg->emulate_limits) {
        s->limits = cp_limits_new(NULL);
        CP_LOG_INFO("server", "emulating AWS throughput limits (docs/limits.md)");
    }
    cp_dynamo_cfg dc = {.throttle = cp_limits_dynamo(s->limits)};
    cp_kinesis_api_cfg kc = {.limiter = cp_limits_kinesis(s->limits)};
    s->dynamo = cp_dynamo_api_new(s->db, s->streams, &dc);
    s->kinesis = cp_kinesis_api_new(s->streams, &kc);
    if (cp_dynamo_api_register(s->dynamo, s->aws) != CP_OK ||
        cp_kinesis_api_register(s->kinesis, s->aws) != CP_OK) {
        cp_server_close(s);
        return cp_err_set(err, CP_EINVAL, "cannot register the AWS services");
    }
    /* Lambda learns the server's port (its runtime API address) once the listener is bound;
     * every route must be mounted before the listener starts. */
    cp_lambda_cfg lc = {.data_dir = cfg->data,
                        .region = cfg->region,
                        .concurrency = (unsigned) cfg->lambda_concurrency};
    rc = cp_lambda_open(&lc, &s->lambda, err);
    if (rc != CP_OK) {
        cp_server_close(s);
        return rc;
    }
    rc = cp_invoker_new(s->lambda, cfg->lambda_endpoints, &s->invoker, err);
    if (rc == CP_OK) {
        rc = cp_sinks_new(cfg->s3_sinks, &s->sinks, err);
    }
    cp_delivery_opts deo = {.data_dir = cfg->data,
                            .streams = s->streams,
                            .sink = &cp_sink_localfs,
                            .sink_ctx = s->buckets,
                            .sink_for = cp_sinks_find,
                            .sink_for_ctx = s->sinks,
                            .region = cfg->region,
                            .invoke = cp_invoker_invoke,
                            .invoke_ctx = s->invoker,
                            .max_active_partitions = (uint32_t) cfg->max_active_partitions,
                            .no_fsync = cfg->no_fsync};
    if (rc == CP_OK) {
        rc = cp_delivery_open(&deo, &s->delivery, err);
    }
    if (rc != CP_OK) {
        cp_server_close(s);
        return rc;
    }
    cp_firehose_backend_init(&s->firehose, s->delivery);
    s->firehose_cfg = (cp_firehose_api_cfg){.backend = &s->firehose,
                                            .parse = {.strict = cfg->strict,
                                                      .region = cfg->region}};
    if (cp_firehose_api_register(s->aws, &s->firehose_cfg) != CP_OK) {
        cp_server_close(s);
        return cp_err_set(err, CP_EINVAL, "cannot register the Firehose API");
    }
    s->s3 = cp_s3api_new(s->buckets, s->creds ? s->aws : NULL);
    s->metrics = cp_metrics_new(cp_http_router_handle, s->http);
    cp_http_router_add(s->http, "GET", "/health", 0, health, s);
    cp_http_router_add(s->http, "GET", "/metrics", 0, cp_metrics_prometheus_handler, s->metrics);
    cp_http_router_add(s->http, "GET", "/status.json", 0, cp_metrics_json_handler, s->metrics);
    cp_http_router_add(s->http, "GET", "/", 0, root, s);
    cp_http_router_add(s->http, "POST", "/changepipe/v1/drain", 0, drain, s);
    cp_http_router_add(s->http, "POST", "/changepipe/v1/replay", 0, replay, s);
    if (s->creds) {
        cp_lambda_api_mount_signed(s->http, s->lambda, s->aws);
    } else {
        cp_lambda_api_mount(s->http, s->lambda);
    }
    cp_aws_mount(s->aws, s->http);
    cp_http_router_set_fallback(s->http, cp_s3api_handle, s->s3);

    cp_http_cfg hc = {.host = host,
                      .port = port,
                      .max_body = (size_t) cfg->max_body,
                      .idle_timeout_s = (unsigned) (cfg->idle_timeout / 1000),
                      .handler = cp_metrics_handle,
                      .ctx = s->metrics};
    rc = cp_http_server_open(&hc, &s->listener, err);
    if (rc == CP_OK) {
        cp_lambda_attach(s->lambda, s->listener, NULL);
        cp_metrics_sources ms = {s->db, s->outbox, s->delivery, s->lambda, s->listener};
        cp_metrics_set_sources(s->metrics, &ms);
    }
    if (rc == CP_OK && cfg->ready_file && *cfg->ready_file) {
        rc = write_ready_file(cfg->ready_file, host, cp_http_server_port(s->listener), err);
    }
    if (rc == CP_OK) {
        s->maintenance_running =
            pthread_create(&s->maintenance, NULL, maintenance_main, s) == 0;
    }
    if (rc != CP_OK) {
        cp_server_close(s);
        return rc;
    }
    *out = s;
    return CP_OK;
}

cp_bucket_store *cp_server_buckets(cp_server *s)
{
    return s->buckets;
}

cp_metrics *cp_server_metrics(cp_server *s)
{
    return s->metrics;
}

int cp_server_delivery_stats(cp_server *s, const char *name, cp_delivery_stats *out)
{
    return cp_delivery_stats_get(s->delivery, name, out, NULL);
}

uint16_t cp_server_port(const cp_server *s)
{
    return cp_http_server_port(s->listener);
}

void cp_server_close(cp_server *s)
{
    if (!s) {
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->stop_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->maintenance_running) {
        pthread_join(s->maintenance, NULL);
    }
    /* Refuse new work; end Lambda long polls and invocations (delivery workers inside one
     * return at once); stop delivery; drain in-flight requests; then free Lambda. */
    if (s->listener) {
        cp_http_server_quiesce(s->listener);
    }
    if (s->lambda) {
        cp_lambda_shutdown(s->lambda);
    }
    cp_delivery_close(s->delivery);
    cp_http_server_close(s->listener);
    cp_lambda_close(s->lambda);
    cp_metrics_free(s->metrics);
    cp_invoker_free(s->invoker);
    cp_sinks_free(s->sinks);
    cp_s3api_free(s->s3);
    cp_dynamo_api_free(s->dynamo);
    cp_kinesis_api_free(s->kinesis);
    cp_limits_free(s->limits);
    cp_aws_router_free(s->aws);
    cp_http_router_free(s->http);
    cp_outbox_stop(s->outbox);
    cp_bucket_store_close(s->buckets);
    cp_streams_close(s->streams);
    cp_db_close(s->db);
    cp_free(s->creds);
    cp_free(s->cred_text);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->stop_cv);
    cp_free(s);
}
