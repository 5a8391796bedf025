/* SPDX-License-Identifier: MIT */
/* Request metrics and pipeline counters as Prometheus text and JSON (see metrics.h). */
#include "server/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/mem.h"

/* Latency bucket upper bounds in milliseconds (the last bucket is +Inf). */
static const double bounds_ms[] = {0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500,
                                   5000};
#define NBOUNDS (sizeof(bounds_ms) / sizeof(bounds_ms[0]))
#define MAX_OPS 256

typedef struct op_stats {
    char name[96]; /* "dynamodb.BatchWriteItem"; empty slot when "" */
    _Atomic uint64_t count, errors, throttles, sum_us;
    _Atomic uint64_t buckets[NBOUNDS + 1];
} op_stats;

struct cp_metrics {
    cp_http_handler inner;
    void *inner_ctx;
    cp_metrics_sources src;
    pthread_mutex_t mu; /* guards slot creation */
    op_stats ops[MAX_OPS];
    int64_t started_ms;
};

cp_metrics *cp_metrics_new(cp_http_handler inner, void *inner_ctx)
{
    cp_metrics *m = cp_calloc(1, sizeof(*m));
    m->inner = inner;
    m->inner_ctx = inner_ctx;
    m->started_ms = cp_clock_now_ms();
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void cp_metrics_free(cp_metrics *m)
{
    if (m) {
        pthread_mutex_destroy(&m->mu);
        cp_free(m);
    }
}

void cp_metrics_set_sources(cp_metrics *m, const cp_metrics_sources *src)
{
    m->src = *src;
}

/* The slot for an operation name, created on first use. A short critical section: at a few
 * thousand requests per second the lock is never contended for long. */
static op_stats *slot(cp_metrics *m, const char *name)
{
    size_t h = cp_fnv1a64(name, strlen(name)) % MAX_OPS;
    op_stats *found = NULL;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < MAX_OPS && !found; i++) {
        op_stats *o = &m->ops[(h + i) % MAX_OPS];
        if (!o->name[0]) {
            snprintf(o->name, sizeof(o->name), "%s", name);
        }
        if (strcmp(o->name, name) == 0) {
            found = o;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return found; /* NULL when the table is full: not counted */
}

/* "dynamodb.BatchWriteItem", "s3.PUT", "lambda.invoke", "admin" ... */
static void classify(const cp_http_req *req, char *out, size_t cap)
{
    cp_slice target = cp_http_req_header(req, "X-Amz-Target");
    if (target.len) {
        static const struct {
            const char *prefix, *service;
        } map[] = {{"DynamoDB_", "dynamodb"},
                   {"DynamoDBStreams_", "dynamodbstreams"},
                   {"Kinesis_", "kinesis"},
                   {"Firehose_", "firehose"}};
        const char *dot = memchr(target.p, '.', target.len);
        const char *service = "other";
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
            if (target.len >= strlen(map[i].prefix) &&
                memcmp(target.p, map[i].prefix, strlen(map[i].prefix)) == 0) {
                service = map[i].service;
            }
        }
        int oplen = dot ? (int) (target.p + target.len - dot - 1) : 0;
        snprintf(out, cap, "%s.%.*s", service, oplen > 64 ? 64 : oplen, dot ? dot + 1 : "");
        return;
    }
    cp_slice p = req->path;
    if (p.len >= 11 && memcmp(p.p, "/2015-03-31", 11) == 0) {
        snprintf(out, cap, "lambda.%.*s", (int) (req->method.len > 10 ? 10 : req->method.len),
                 req->method.p);
    } else if ((p.len >= 11 && memcmp(p.p, "/2018-06-01", 11) == 0) ||
               (p.len >= 9 && memcmp(p.p, "/_lambda/", 9) == 0)) {
        /* Local runtimes call under their per-instance /_lambda/<token>/ prefix (lambda.h);
         * without this they would be counted as S3 requests. */
        snprintf(out, cap, "lambda.runtime");
    } else if (cp_slice_eq(p, CP_SLICE("/metrics")) || cp_slice_eq(p, CP_SLICE("/health")) ||
               cp_slice_eq(p, CP_SLICE("/")) || cp_slice_eq(p, CP_SLICE("/status.json")) ||
               (p.len > 11 && memcmp(p.p, "/changepipe", 11) == 0)) {
        snprintf(out, cap, "admin");
    } else {
        snprintf(out, cap, "s3.%.*s", (int) (req->method.len > 10 ? 10 : req->method.len),
                 req->method.p);
    }
}

static int is_throttle(const cp_http_resp *resp)
{
    if (resp->status == 429 || resp->status == 503) {
        return 1;
    }
    if (resp->status != 400 || !resp->body.len) {
        return 0;
    }
    const char *b = resp->body.p;
    size_t n = resp->body.len < 200 ? resp->body.len : 200;
    return memmem(b, n, "ThroughputExceeded", 18) || memmem(b, n, "Throttling", 10) ||
           memmem(b, n, "LimitExceeded", 13);
}

int cp_metrics_handle(void *ctx, const cp_http_req *req, cp_http_resp *resp)
{
    cp_metrics *m = ctx;
    int64_t t0 = cp_clock_mono_ns();
    int rc = m->inner(m->inner_ctx, req, resp);
    uint64_t us = (uint64_t) ((cp_clock_mono_ns() - t0) / 1000);
    char name[96];
    classify(req, name, sizeof(name));
    op_stats *o = slot(m, name);
    if (o) {
        atomic_fetch_add(&o->count, 1);
        atomic_fetch_add(&o->sum_us, us);
        if (rc != CP_OK || resp->status >= 400) {
            atomic_fetch_add(&o->errors, 1);
        }
        if (is_throttle(resp)) {
            atomic_fetch_add(&o->throttles, 1);
        }
        size_t b = 0;
        while (b < NBOUNDS && (double) us / 1000.0 > bounds_ms[b]) {
            b++;
        }
        atomic_fetch_add(&o->buckets[b], 1);
    }
    return rc;
}

/* Quantile from the histogram: the upper bound of the bucket holding it. */
static double quantile(const op_stats *o, double q)
{
    uint64_t total = atomic_load(&o->count), seen = 0;
    if (!total) {
        return 0;
    }
    for (size_t b = 0; b <= NBOUNDS; b++) {
        seen += atomic_load(&o->buckets[b]);
        if ((double) seen >= q * (double) total) {
            return b < NBOUNDS ? bounds_ms[b] : bounds_ms[NBOUNDS - 1] * 2;
        }
    }
    return bounds_ms[NBOUNDS - 1] * 2;
}

int cp_metrics_op_get(cp_metrics *m, const char *op, cp_metrics_op *out)
{
    int rc = CP_ENOTFOUND;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < MAX_OPS && rc != CP_OK; i++) {
        const op_stats *o = &m->ops[i];
        if (o->name[0] && strcmp(o->name, op) == 0) {
            out->count = atomic_load(&o->count);
            out->errors = atomic_load(&o->errors);
            out->throttles = atomic_load(&o->throttles);
            out->p50_ms = quantile(o, 0.5);
            out->p99_ms = quantile(o, 0.99);
            rc = CP_OK;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* Calls fn for every delivery stream with its stats. */
static void each_delivery(cp_metrics *m, void (*fn)(void *, const char *, const cp_delivery_stats *),
                          void *arg)
{
    if (!m->src.delivery) {
        return;
    }
    cp_buf names = CP_BUF_INIT;
    size_t n = 0;
    cp_delivery_list(m->src.delivery, NULL, 100000, &names, &n, NULL);
    const char *name = names.p;
    for (size_t i = 0; i < n; i++, name += strlen(name) + 1) {
        cp_delivery_stats st;
        if (cp_delivery_stats_get(m->src.delivery, name, &st, NULL) == CP_OK) {
            fn(arg, name, &st);
        }
    }
    cp_buf_free(&names);
}

static void prom_delivery(void *arg, const char *name, const cp_delivery_stats *st)
{
    cp_buf *out = arg;
    static const char *const fields[] = {"read", "delivered", "errored", "dropped", "buffered"};
    uint64_t values[] = {st->records_read, st->records_delivered, st->records_errored,
                         st->records_dropped, st->records_buffered};
    for (int i = 0; i < 5; i++) {
        cp_buf_printf(out, "changepipe_delivery_records_total{stream=\"%s\",outcome=\"%s\"} %llu\n",
                      name, fields[i], (unsigned long long) values[i]);
    }
    cp_buf_printf(out, "changepipe_delivery_objects_total{stream=\"%s\"} %llu\n", name,
                  (unsigned long long) st->objects);
    cp_buf_printf(out, "changepipe_delivery_bytes_total{stream=\"%s\"} %llu\n", name,
                  (unsigned long long) st->bytes);
    cp_buf_printf(out, "changepipe_delivery_processor_retries_total{stream=\"%s\"} %llu\n", name,
                  (unsigned long long) st->processor_retries);
    cp_buf_printf(out, "changepipe_delivery_lag_ms{stream=\"%s\"} %lld\n", name,
                  (long long) st->millis_behind);
    cp_buf_printf(out, "changepipe_delivery_active_partitions{stream=\"%s\"} %u\n", name,
                  st->active_partitions);
}

void cp_metrics_prometheus(cp_metrics *m, cp_buf *out)
{
    cp_buf_puts(out, "# HELP changepipe_requests_total Requests by operation.\n"
                     "# TYPE changepipe_requests_total counter\n");
    pthread_mutex_lock(&m->mu); /* slot names are written under it */
    for (size_t i = 0; i < MAX_OPS; i++) {
        const op_stats *o = &m->ops[i];
        if (!o->name[0]) {
            continue;
        }
        cp_buf_printf(out, "changepipe_requests_total{op=\"%s\"} %llu\n", o->name,
                      (unsigned long long) atomic_load(&o->count));
        cp_buf_printf(out, "changepipe_request_errors_total{op=\"%s\"} %llu\n", o->name,
                      (unsigned long long) atomic_load(&o->errors));
        cp_buf_printf(out, "changepipe_request_throttles_total{op=\"%s\"} %llu\n", o->name,
                      (unsigned long long) atomic_load(&o->throttles));
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBOUNDS; b++) {
            cum += atomic_load(&o->buckets[b]);
            if (b < NBOUNDS) {
                cp_buf_printf(out, "changepipe_request_seconds_bucket{op=\"%s\",le=\"%g\"} %llu\n",
                              o->name, bounds_ms[b] / 1000, (unsigned long long) cum);
            } else {
                cp_buf_printf(out,
                              "changepipe_request_seconds_bucket{op=\"%s\",le=\"+Inf\"} %llu\n",
                              o->name, (unsigned long long) cum);
            }
        }
        cp_buf_printf(out, "changepipe_request_seconds_sum{op=\"%s\"} %g\n", o->name,
                      (double) atomic_load(&o->sum_us) / 1e6);
        cp_buf_printf(out, "changepipe_request_seconds_count{op=\"%s\"} %llu\n", o->name,
                      (unsigned long long) cum);
    }
    pthread_mutex_unlock(&m->mu);
    if (m->src.db) {
        cp_db_counters c;
        cp_db_counters_get(m->src.db, &c);
        cp_buf_printf(out,
                      "# TYPE changepipe_table_writes_total counter\n"
                      "changepipe_table_writes_total{outcome=\"applied\"} %llu\n"
                      "changepipe_table_writes_total{outcome=\"refused\"} %llu\n"
                      "changepipe_change_records_total %llu\n"
                      "changepipe_group_commits_total %llu\n",
                      (unsigned long long) c.ops, (unsigned long long) c.ops_refused,
                      (unsigned long long) c.changes, (unsigned long long) c.groups);
    }
    if (m->src.outbox) {
        cp_outbox_stats st;
        cp_outbox_stats_get(m->src.outbox, &st);
        cp_buf_printf(out,
                      "changepipe_cdc_relayed_total{outcome=\"appended\"} %llu\n"
                      "changepipe_cdc_relayed_total{outcome=\"duplicate_skipped\"} %llu\n"
                      "changepipe_cdc_relayed_total{outcome=\"dropped\"} %llu\n"
                      "changepipe_cdc_relay_retries_total %llu\n",
                      (unsigned long long) st.forwarded, (unsigned long long) st.duplicates,
                      (unsigned long long) st.dropped, (unsigned long long) st.retries);
    }
    cp_buf_puts(out, "# TYPE changepipe_delivery_records_total counter\n");
    each_delivery(m, prom_delivery, out);
    if (m->src.http) {
        cp_http_stats hs;
        cp_http_server_stats(m->src.http, &hs);
        cp_buf_printf(out,
                      "changepipe_http_connections_total %llu\n"
                      "changepipe_http_requests_in_flight %u\n",
                      (unsigned long long) hs.connections, hs.in_flight);
    }
    cp_buf_printf(out, "changepipe_uptime_seconds %lld\n",
                  (long long) ((cp_clock_now_ms() - m->started_ms) / 1000));
}

static void json_delivery(void *arg, const char *name, const cp_delivery_stats *st)
{
    cp_buf *out = arg;
    if (out->p[out->len - 1] != '[') {
        cp_buf_putc(out, ',');
    }
    cp_buf_puts(out, "{\"name\":");
    cp_json_put_str(out, cp_slice_str(name));
    cp_buf_printf(out,
                  ",\"read\":%llu,\"delivered\":%llu,\"errored\":%llu,\"dropped\":%llu,"
                  "\"buffered\":%llu,\"objects\":%llu,\"bytes\":%llu,\"retries\":%llu,"
                  "\"lag_ms\":%lld,\"partitions\":%u}",
                  (unsigned long long) st->records_read, (unsigned long long) st->records_delivered,
                  (unsigned long long) st->records_errored,
                  (unsigned long long) st->records_dropped,
                  (unsigned long long) st->records_buffered, (unsigned long long) st->objects,
                  (unsigned long long) st->bytes, (unsigned long long) st->processor_retries,
                  (long long) st->millis_behind, st->active_partitions);
}

void cp_metrics_json(cp_metrics *m, cp_buf *out)
{
    cp_buf_printf(out, "{\"time_ms\":%lld,\"ops\":[", (long long) cp_clock_now_ms());
    int first = 1;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < MAX_OPS; i++) {
        const op_stats *o = &m->ops[i];
        if (!o->name[0]) {
            continue;
        }
        cp_buf_printf(out,
                      "%s{\"op\":\"%s\",\"count\":%llu,\"errors\":%llu,\"throttles\":%llu,"
                      "\"p50_ms\":%g,\"p99_ms\":%g}",
                      first ? "" : ",", o->name, (unsigned long long) atomic_load(&o->count),
                      (unsigned long long) atomic_load(&o->errors),
                      (unsigned long long) atomic_load(&o->throttles), quantile(o, 0.5),
                      quantile(o, 0.99));
        first = 0;
    }
    pthread_mutex_unlock(&m->mu);
    cp_buf_puts(out, "]");
    if (m->src.db) {
        cp_db_counters c;
        cp_db_counters_get(m->src.db, &c);
        cp_buf_printf(out, ",\"table\":{\"applied\":%llu,\"refused\":%llu,\"changes\":%llu}",
                      (unsigned long long) c.ops, (unsigned long long) c.ops_refused,
                      (unsigned long long) c.changes);
    }
    if (m->src.outbox) {
        cp_outbox_stats st;
        cp_outbox_stats_get(m->src.outbox, &st);
        cp_buf_printf(out, ",\"cdc\":{\"appended\":%llu,\"duplicates\":%llu,\"dropped\":%llu}",
                      (unsigned long long) st.forwarded, (unsigned long long) st.duplicates,
                      (unsigned long long) st.dropped);
    }
    cp_buf_puts(out, ",\"delivery\":[");
    each_delivery(m, json_delivery, out);
    cp_buf_puts(out, "]}");
}

int cp_metrics_prometheus_handler(void *ctx, const cp_http_req *req, cp_http_resp *resp)
{
    (void) req;
    cp_http_resp_add_header(resp, "Content-Type", CP_SLICE("text/plain; version=0.0.4"));
    cp_metrics_prometheus(ctx, &resp->body);
    return CP_OK;
}

int cp_metrics_json_handler(void *ctx, const cp_http_req *req, cp_http_resp *resp)
{
    (void) req;
    cp_http_resp_add_header(resp, "Content-Type", CP_SLICE("application/json"));
    cp_http_resp_add_header(resp, "Cache-Control", CP_SLICE("no-store"));
    cp_metrics_json(ctx, &resp->body);
    return CP_OK;
}
