/* SPDX-License-Identifier: MIT */
/*
 * The transport-neutral request/response pair every handler sees. The HTTP/1.1 (libmicrohttpd)
 * and h2c (nghttp2) front ends in server.c both fill a cp_http_req and send a cp_http_resp, so
 * handlers never touch a transport type. Also the per-request scratch arena.
 *
 * Threads: a request, its response and its scratch belong to the one worker thread running the
 * handler, for the duration of the call.
 */
#ifndef CP_HTTP_REQUEST_H
#define CP_HTTP_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* One header line. In requests both slices borrow transport memory (valid until the handler
 * returns); HTTP/1.1 names keep the client's case, HTTP/2 names are lower case. HTTP/2
 * requests also list ":authority" (the AWS JS v3 SDK signs it) and a "host" copied from it
 * when the client sent none. */
typedef struct cp_http_header {
    cp_slice name;
    cp_slice value;
} cp_http_header;

/* ------------------------------------------------------------------------------------------ */
/* Scratch arena                                                                               */

/* A bump allocator reset after each request (Redis module auto-memory): JSON decoding and
 * temporaries of one request go here and are never freed one by one. The first block is kept
 * across requests so a steady stream of small requests allocates nothing. */
typedef struct cp_http_scratch_block cp_http_scratch_block;
typedef struct cp_http_scratch {
    cp_http_scratch_block *head; /* current block (a list through ->next) */
    size_t used;                 /* bytes used in head */
    size_t total;                /* bytes handed out since the last reset (for limits/metrics) */
} cp_http_scratch;

#define CP_HTTP_SCRATCH_INIT ((cp_http_scratch){NULL, 0, 0})

/* `n` bytes aligned to 16, valid until the scratch is reset (the end of the request). Aborts on
 * OOM like cp_malloc: callers check client-chosen sizes against limits first. */
void *cp_http_scratch_alloc(cp_http_scratch *s, size_t n);
/* A NUL-terminated copy of `v` in the scratch. */
char *cp_http_scratch_strdup(cp_http_scratch *s, cp_slice v);
/* Free everything but the first block. */
void cp_http_scratch_reset(cp_http_scratch *s);
/* Free everything; the scratch is CP_HTTP_SCRATCH_INIT afterwards. */
void cp_http_scratch_free(cp_http_scratch *s);

/* ------------------------------------------------------------------------------------------ */
/* Request                                                                                     */

typedef struct cp_http_req {
    cp_slice method;               /* "GET", "POST", ... as sent */
    cp_slice target;               /* raw request target: path plus "?query" */
    cp_slice path;                 /* raw path, still percent-encoded, never empty */
    cp_slice query;                /* raw query without the '?', empty when absent */
    const cp_http_header *headers; /* in arrival order */
    size_t nheaders;               /* entries in headers */
    cp_slice body;                 /* the whole body, fully buffered */
    const char *remote;            /* "ip:port" of the peer */
    int version;                   /* 10, 11 or 20 */
    cp_http_scratch *scratch;      /* per-request arena, reset after the reply is sent */
} cp_http_req;

/* Value of the first header named `name` (ASCII case-insensitive), or {NULL, 0} when absent.
 * Borrows the request: valid until the handler returns. */
cp_slice cp_http_req_header(const cp_http_req *req, const char *name);
/* Case-insensitive compare of a slice with a C string. */
int cp_http_slice_ieq(cp_slice a, const char *b);
/* The value of query parameter `name` (exact, case-sensitive name match on the raw text),
 * percent-decoded into the scratch ('+' decodes to a space). Returns CP_OK, or CP_ENOTFOUND.
 * A parameter without '=' yields an empty value. */
int cp_http_req_query_param(const cp_http_req *req, const char *name, cp_slice *out);
/* Percent-decode `in` into out (appended). `plus_space` maps '+' to ' ' (query strings).
 * Malformed escapes are copied through as is. */
void cp_http_pct_decode(cp_slice in, int plus_space, cp_buf *out);

/* ------------------------------------------------------------------------------------------ */
/* Response                                                                                    */

typedef struct cp_http_resp {
    int status;        /* HTTP status; 200 until set */
    cp_buf body;       /* response bytes; ignored when file_fd >= 0 */
    cp_buf hdrs;       /* header storage: "name\0value\0" pairs; use the functions below */
    size_t nhdrs;      /* header pairs in hdrs */
    int file_fd;       /* >= 0: send file bytes instead of body (owned, closed by the server) */
    uint64_t file_off; /* first byte of the file to send */
    uint64_t file_len; /* bytes of the file to send */
    int close;         /* ask the transport to close the connection after this response */
} cp_http_resp;

/* Prepare an empty 200 response. */
void cp_http_resp_init(cp_http_resp *r);
/* Back to the state after init, keeping buffer memory (closes a pending file_fd). */
void cp_http_resp_reset(cp_http_resp *r);
/* Release memory and any file_fd. */
void cp_http_resp_free(cp_http_resp *r);
/* Add a header (copied). Names are sent as given over HTTP/1.1 and lower-cased over HTTP/2.
 * Content-Length and Transfer-Encoding are computed by the server: do not add them. */
void cp_http_resp_add_header(cp_http_resp *r, const char *name, cp_slice value);
void cp_http_resp_add_headerf(cp_http_resp *r, const char *name, const char *fmt, ...)
    CP_PRINTF(3, 4);
/* Drop all headers. */
void cp_http_resp_clear_headers(cp_http_resp *r);
/* Value of the first header named `name` (case-insensitive) or {NULL,0}; valid until the next
 * header change. */
cp_slice cp_http_resp_header(const cp_http_resp *r, const char *name);
/* Iterate headers: start with *pos = 0; returns 0 when done. */
int cp_http_resp_next_header(const cp_http_resp *r, size_t *pos, cp_slice *name, cp_slice *value);
/* Convenience: status, Content-Type and a copied body in one call (replaces the body). */
void cp_http_resp_set(cp_http_resp *r, int status, const char *content_type, cp_slice body);
/* Send `len` bytes of `fd` from `off` as the body. Takes ownership of fd (also on failure). */
void cp_http_resp_set_file(cp_http_resp *r, int fd, uint64_t off, uint64_t len);

/* The IMF-fixdate form of `epoch_s` ("Wed, 26 Nov 2026 04:56:51 GMT") into out[30]. */
void cp_http_date(int64_t epoch_s, char out[30]);

#endif
