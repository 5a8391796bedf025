/* SPDX-License-Identifier: MIT */
/*
 * The changepipe server: wires the store, change capture, streams, buckets, Lambda and the
 * AWS APIs behind one HTTP listener, in a fixed start-up and shutdown order (wiring.c in
 * STYLE.md's terms). `changepipe serve` and the embedded demo both run it.
 */
#ifndef CP_SERVER_H
#define CP_SERVER_H

#include <stdint.h>

#include "core/err.h"
#include "delivery/engine.h"
#include "objects/bucket.h"
#include "server/metrics.h"

typedef struct cp_server_cfg {
    char *listen;          /* HOST:PORT; port 0 picks a free one */
    char *data;            /* data directory */
    char *config;          /* config file (read by the option engine) */
    char *region;          /* region reported in ARNs and records */
    char *credentials;     /* "AK:SECRET[,AK2:SECRET2]": verify SigV4; empty accepts any */
    char *ready_file;      /* write "HOST:PORT\n" here once serving (for scripts and tests) */
    char *log_level;       /* error, warn, info, debug */
    int64_t max_body;      /* request body limit in bytes */
    int64_t idle_timeout;  /* ms before an idle connection is closed */
    int64_t lambda_concurrency; /* instances per function */
    char *lambda_endpoints;     /* name=url,... : functions served by other Invoke endpoints */
    char *s3_sinks;             /* name=URL|region|ak|sk;... : S3-compatible delivery targets */
    int64_t max_active_partitions; /* per delivery stream (AWS's default quota is 500) */
    int strict;            /* enforce every AWS create-time rule (delivery streams) */
    int emulate_limits;    /* answer AWS's throttling errors past on-demand limits */
    int no_fsync;          /* benchmarks only: skip fsync on the write path */
} cp_server_cfg;

typedef struct cp_server cp_server;

/* Open everything and start serving. On CP_OK *out is running; stop it with cp_server_close.
 * cfg is borrowed for the call. */
int cp_server_open(const cp_server_cfg *cfg, cp_server **out, cp_err *err);
/* The bound port. */
uint16_t cp_server_port(const cp_server *s);
/* For in-process callers (the demo): the bucket store, the request metrics, and a delivery
 * stream's counters. Borrowed until cp_server_close. */
cp_bucket_store *cp_server_buckets(cp_server *s);
cp_metrics *cp_server_metrics(cp_server *s);
int cp_server_delivery_stats(cp_server *s, const char *name, cp_delivery_stats *out);

/* Graceful stop: stop accepting, finish in-flight requests, stop the relays, flush, fsync,
 * close. NULL is a no-op. */
void cp_server_close(cp_server *s);

#endif
