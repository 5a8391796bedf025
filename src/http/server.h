/* SPDX-License-Identifier: MIT */
/*
 * The HTTP listener in front of every API: HTTP/1.1 keep-alive through libmicrohttpd and h2c
 * with prior knowledge (the AWS JS v3 Kinesis client's default) through nghttp2, both on one
 * port. Our own acceptor peeks at the first bytes of each connection: the 24-byte HTTP/2
 * preface goes to an nghttp2 session thread, anything else to libmicrohttpd
 * (MHD_add_connection). Every request reaches the same synchronous handler.
 *
 * Threading: libmicrohttpd runs one thread per HTTP/1.1 connection, and the handler runs on it,
 * so a handler may block (the Lambda Runtime API long-polls) without stalling other clients.
 * HTTP/2 streams run on a shared pool of worker threads (up to max_workers), so one h2c
 * connection multiplexing many requests gets them served in parallel.
 */
#ifndef CP_HTTP_SERVER_H
#define CP_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "http/request.h"

/* A request handler. Runs on a server worker thread and may block. Fill *resp (it arrives
 * initialised as an empty 200) and return CP_OK; any negative return makes the server answer
 * 500 with an empty body instead (a bug path: handlers reply their own errors). */
typedef int (*cp_http_handler)(void *ctx, const cp_http_req *req, cp_http_resp *resp);

typedef struct cp_http_cfg {
    const char *host;         /* address to bind; NULL = "127.0.0.1" */
    uint16_t port;            /* 0 picks a free port (see cp_http_server_port) */
    size_t max_body;          /* request body limit (413 above); 0 = 32 MiB */
    size_t max_header_bytes;  /* request line + headers limit; 0 = 64 KiB */
    unsigned idle_timeout_s;  /* close idle connections after this; 0 = 120 s */
    unsigned max_connections; /* concurrent connections; 0 = 4096 */
    unsigned max_workers;     /* HTTP/2 handler threads; 0 = 64 */
    unsigned h2_max_streams;  /* SETTINGS_MAX_CONCURRENT_STREAMS; 0 = 128 */
    unsigned drain_timeout_s; /* close(): wait this long for in-flight requests; 0 = 30 s */
    cp_http_handler handler;  /* required */
    void *ctx;                /* passed to handler */
} cp_http_cfg;

typedef struct cp_http_server cp_http_server;

typedef struct cp_http_stats {
    uint64_t requests;       /* completed requests, both protocols */
    uint64_t requests_h2;    /* of which over HTTP/2 */
    uint64_t too_large;      /* requests refused with 413 */
    uint64_t connections;    /* connections accepted */
    uint64_t connections_h2; /* of which h2c */
    uint32_t in_flight;      /* requests being handled now */
} cp_http_stats;

/* Bind, listen and start serving. cfg is copied (handler/ctx are borrowed until close).
 * On CP_OK *out is a running server: the caller stops it with cp_http_server_close().
 * Errors: -errno from bind/listen (e.g. -EADDRINUSE), CP_EINVAL for a bad host. */
int cp_http_server_open(const cp_http_cfg *cfg, cp_http_server **out, cp_err *err);

/* The bound TCP port (the real one when cfg->port was 0). */
uint16_t cp_http_server_port(const cp_http_server *srv);

/* Snapshot of counters. Thread-safe. */
void cp_http_server_stats(const cp_http_server *srv, cp_http_stats *out);

/* First half of a graceful stop: close the listening socket (new connections are refused),
 * answer further HTTP/1.1 requests with "Connection: close" and send GOAWAY on h2c
 * connections. In-flight requests continue. Call this, wake any handler that blocks
 * indefinitely (long polls), then cp_http_server_close(). Idempotent; thread-safe. */
void cp_http_server_quiesce(cp_http_server *srv);

/* Non-zero once quiesce or close has started (long-polling handlers can check it). */
int cp_http_server_stopping(const cp_http_server *srv);

/* Graceful stop (quiesces first if needed): stop accepting, let in-flight requests finish (up to
 * drain_timeout_s), close every connection, join all threads and free. NULL is a no-op. Must not be
 * called from a handler. */
void cp_http_server_close(cp_http_server *srv);

#endif
