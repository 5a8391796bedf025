/* SPDX-License-Identifier: MIT */
/*
 * A small request router so each API mounts where it lives: AWS JSON services by the
 * X-Amz-Target header, REST APIs by path (Lambda under /2015-03-31/functions, the Lambda
 * Runtime API under /2018-06-01/runtime/, /health, /metrics) and S3 path-style requests as the
 * fallback. The router is itself a cp_http_handler.
 *
 * Threads: build the table before the server starts; afterwards it is read-only and safe to
 * use from every worker thread.
 */
#ifndef CP_HTTP_ROUTER_H
#define CP_HTTP_ROUTER_H

#include "http/server.h"

typedef struct cp_http_router cp_http_router;

/* The path is a prefix: it matches itself and anything below it at a '/' boundary
 * ("/a/b" matches "/a/b", "/a/b/" and "/a/b/c", not "/a/bc"). Longest prefix wins. */
#define CP_HTTP_ROUTE_PREFIX 1u

/* Returns a new empty router; free with cp_http_router_free(). */
cp_http_router *cp_http_router_new(void);
void cp_http_router_free(cp_http_router *r);

/* Route `method` (NULL = any) on `path` (matched against the raw, still-encoded path) to h.
 * Strings are copied; ctx is borrowed for the router's lifetime. An exact route beats a
 * prefix route. A request that matches no route goes to the fallback when one is set, else
 * gets 405 when its path matched a route for another method, else 404. */
void cp_http_router_add(cp_http_router *r, const char *method, const char *path, unsigned flags,
                        cp_http_handler h, void *ctx);

/* Requests that carry header `name` (any value) go to h before any path route is tried. */
void cp_http_router_add_header(cp_http_router *r, const char *name, cp_http_handler h, void *ctx);

/* Handler for requests no route matched (404 with an empty body when unset). */
void cp_http_router_set_fallback(cp_http_router *r, cp_http_handler h, void *ctx);

/* The cp_http_handler entry point: pass the router as ctx. */
int cp_http_router_handle(void *router, const cp_http_req *req, cp_http_resp *resp);

#endif
