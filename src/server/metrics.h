/* SPDX-License-Identifier: MIT */
/*
 * Observability: per-operation request counters and latency histograms (measured around every
 * request), plus the pipeline's own counters read from each stage, rendered as Prometheus text
 * (GET /metrics) and as JSON for the status page (GET /status.json). Stage counters balance:
 * for every delivery stream, read = delivered + error output + dropped + buffered.
 */
#ifndef CP_METRICS_H
#define CP_METRICS_H

#include "cdc/outbox.h"
#include "delivery/engine.h"
#include "http/server.h"
#include "lambda/lambda.h"
#include "table/store.h"

typedef struct cp_metrics cp_metrics;

/* What the renderers read (all borrowed; any may be NULL). */
typedef struct cp_metrics_sources {
    cp_db *db;
    cp_outbox *outbox;
    cp_delivery *delivery;
    cp_lambda *lambda;
    cp_http_server *http;
} cp_metrics_sources;

/* A new registry wrapping `inner` (the router): every request passes through it. */
cp_metrics *cp_metrics_new(cp_http_handler inner, void *inner_ctx);
void cp_metrics_free(cp_metrics *m);
/* Set the sources once they exist (before serving). */
void cp_metrics_set_sources(cp_metrics *m, const cp_metrics_sources *src);

/* The cp_http_handler to serve with (ctx = the cp_metrics): times and classifies the request,
 * then calls the inner handler. */
int cp_metrics_handle(void *ctx, const cp_http_req *req, cp_http_resp *resp);

/* GET /metrics and GET /status.json handlers (ctx = the cp_metrics). */
int cp_metrics_prometheus_handler(void *ctx, const cp_http_req *req, cp_http_resp *resp);
int cp_metrics_json_handler(void *ctx, const cp_http_req *req, cp_http_resp *resp);

/* Renderers, for tests and the demo. */
void cp_metrics_prometheus(cp_metrics *m, cp_buf *out);
void cp_metrics_json(cp_metrics *m, cp_buf *out);

/* Totals of the requests seen for one operation ("dynamodb.BatchWriteItem"). */
typedef struct cp_metrics_op {
    uint64_t count, errors, throttles;
    double p50_ms, p99_ms;
} cp_metrics_op;
int cp_metrics_op_get(cp_metrics *m, const char *op, cp_metrics_op *out);

#endif
