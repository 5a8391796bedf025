/* SPDX-License-Identifier: MIT */
/*
 * s3client: a small S3 REST client over libcurl with SigV4 (aws/sigv4.h), for the S3-compatible
 * delivery sink (sinks/s3.c) and, later, the query engine reading objects back. Operations:
 * PutObject, multipart upload (create, parts, complete, abort), GetObject (with a byte range),
 * HeadObject and ListObjectsV2. Works with AWS S3 and S3-compatible servers (changepipe's own
 * objects API, MinIO, s3rver, ...), path-style or virtual-hosted-style.
 *
 * Results follow the plugin contract (STYLE.md 4.4) so the delivery engine can decide:
 *   CP_OK      2xx.
 *   CP_RETRY   transient: connection refused/reset, timeouts, DNS failures, 5xx, 429, and the
 *              S3 codes SlowDown, RequestTimeout, InternalError, ServiceUnavailable,
 *              OperationAborted, RequestTimeTooSkewed (re-signed on the next call).
 *   CP_EFAIL   permanent for this configuration: 403 (AccessDenied, SignatureDoesNotMatch,
 *              InvalidAccessKeyId...), 404 NoSuchBucket, 301 PermanentRedirect (wrong region
 *              or endpoint), any other 4xx. The engine still retries these with a long backoff
 *              (a bucket may be created or a policy fixed later) and never drops data.
 *   CP_ENOTFOUND  only from GetObject/HeadObject: the key does not exist (404 NoSuchKey).
 *   CP_EINVAL  bad arguments (bad endpoint in the config, empty bucket, oversized object).
 * The detail (HTTP status, S3 error Code and Message, request id) goes to `err->msg` and, when
 * asked for, to a cp_s3_status; no secrets are ever written there.
 *
 * Threads: a client is thread-safe. It keeps a small pool of libcurl easy handles (each with
 * its own keep-alive connections); a call takes a handle from the pool for its duration, so
 * several delivery workers sharing one client run their requests in parallel. Every call
 * blocks until the request finishes or its timeout expires.
 */
#ifndef CP_DELIVERY_S3CLIENT_H
#define CP_DELIVERY_S3CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define CP_S3_MIN_PART_SIZE               (5u * 1024 * 1024) /* S3's minimum for all but the last */
#define CP_S3_MAX_PARTS                   10000              /* S3's limit per upload */
#define CP_S3_DEFAULT_MULTIPART_THRESHOLD (16u * 1024 * 1024)
#define CP_S3_DEFAULT_PART_SIZE           (8u * 1024 * 1024)
#define CP_S3_DEFAULT_TIMEOUT_MS          120000u /* whole request, upload included */
#define CP_S3_DEFAULT_CONNECT_TIMEOUT_MS  5000u

/*
 * Where and how to reach the S3-compatible endpoint (one per delivery stream destination).
 * Start from CP_S3_SINK_CFG_INIT: it sets path_style, whose default is on. Zero sizes and
 * timeouts mean the defaults above. Strings are copied by cp_s3client_new / cp_s3_sink_new.
 */
typedef struct cp_s3_sink_cfg {
    const char *endpoint;        /* "http[s]://host[:port][/base]"; required. For AWS:
                                  * "https://s3.<region>.amazonaws.com" */
    const char *region;          /* signing region; NULL or "" = "us-east-1" */
    const char *access_key;      /* required */
    const char *secret_key;      /* required; never logged or copied into messages */
    const char *session_token;   /* optional X-Amz-Security-Token (temporary credentials) */
    int path_style;              /* 1: http://host/bucket/key (default, what local servers
                                  * expect); 0: http://bucket.host/key (virtual-hosted; falls
                                  * back to path-style for bucket names that are not DNS labels) */
    size_t multipart_threshold;  /* objects above this many bytes use multipart upload;
                                  * 0 = 16 MiB */
    size_t part_size;            /* multipart part size, >= 5 MiB; 0 = 8 MiB. Raised as needed
                                  * to stay within 10000 parts */
    unsigned timeout_ms;         /* one whole request (connect + upload + answer); 0 = 120 s */
    unsigned connect_timeout_ms; /* TCP/TLS connect; 0 = 5 s */
    int unsigned_payload;        /* https only: sign "UNSIGNED-PAYLOAD" instead of hashing the body
                                  * (Content-MD5 still protects the bytes); ignored over http */
} cp_s3_sink_cfg;

#define CP_S3_SINK_CFG_INIT ((cp_s3_sink_cfg){.path_style = 1})

typedef struct cp_s3client cp_s3client;

/* What the server said, for callers that want more than err->msg. */
typedef struct cp_s3_status {
    long http_status;    /* 0 when no HTTP answer arrived (connection error, timeout) */
    char code[64];       /* S3 error Code ("NoSuchBucket"), or "" */
    char message[256];   /* S3 error Message, or the transport error text, or "" */
    char request_id[64]; /* x-amz-request-id, or "" */
} cp_s3_status;

/*
 * Check cfg and build a client. Does not connect (the first request does). On CP_OK *out is a
 * new client: free with cp_s3client_free(). Errors: CP_EINVAL (no or malformed endpoint, not
 * http/https, missing credentials, part_size below 5 MiB), with the reason in err->msg.
 */
int cp_s3client_new(const cp_s3_sink_cfg *cfg, cp_s3client **out, cp_err *err);
/* Close connections and free. Must not race with calls on the client. NULL is a no-op. */
void cp_s3client_free(cp_s3client *c);

/* Per-object headers. NULL fields are left out; content_type NULL sends
 * "application/octet-stream". Borrowed for the call. */
typedef struct cp_s3_put_opts {
    const char *content_type;
    const char *content_encoding; /* e.g. "gzip" for a gzip object */
} cp_s3_put_opts;

/*
 * Store `body` (borrowed) as bucket/key, replacing any object there: one PutObject up to the
 * multipart threshold, a multipart upload above it (parts of part_size; the upload is aborted
 * when a part or the completion fails, so no half-finished upload is left behind when the
 * server is reachable). Every request carries Content-MD5 and x-amz-content-sha256, so the
 * server refuses corrupted bytes. Idempotent: calling again with the same key and bytes
 * leaves the same object. opts may be NULL. st (may be NULL) gets the last answer.
 * Returns CP_OK, CP_RETRY, CP_EFAIL or CP_EINVAL (see the top of this file).
 */
int cp_s3client_put(cp_s3client *c, const char *bucket, cp_slice key, cp_slice body,
                    const cp_s3_put_opts *opts, cp_s3_status *st, cp_err *err);

/* One PutObject regardless of size (up to 5 GiB at S3). Same results as cp_s3client_put. */
int cp_s3client_put_object(cp_s3client *c, const char *bucket, cp_slice key, cp_slice body,
                           const cp_s3_put_opts *opts, cp_s3_status *st, cp_err *err);
/* A multipart upload regardless of size (at least one part). Same results as
 * cp_s3client_put. */
int cp_s3client_put_multipart(cp_s3client *c, const char *bucket, cp_slice key, cp_slice body,
                              const cp_s3_put_opts *opts, cp_s3_status *st, cp_err *err);

/* Metadata of an object, from HeadObject or GetObject. */
typedef struct cp_s3_obj_info {
    uint64_t size;             /* Content-Length of the object (the whole object for GET with a
                                * range: from Content-Range) */
    char etag[80];             /* as sent, quotes removed */
    char content_type[128];    /* "" when absent */
    char content_encoding[32]; /* "" when absent */
    char last_modified[40];    /* the HTTP date as sent */
} cp_s3_obj_info;

/*
 * GetObject: append the object's bytes (exactly as stored: Content-Encoding is not undone) to
 * out. `len` 0 reads from `off` to the end; otherwise bytes [off, off+len) (a Range request).
 * Refuses (CP_ETOOBIG, nothing appended) an answer larger than max_bytes (0 = 1 GiB). info
 * (may be NULL) gets the metadata. Returns CP_OK, CP_ENOTFOUND (no such key), CP_RETRY,
 * CP_EFAIL, CP_ETOOBIG.
 */
int cp_s3client_get(cp_s3client *c, const char *bucket, cp_slice key, uint64_t off, uint64_t len,
                    size_t max_bytes, cp_buf *out, cp_s3_obj_info *info, cp_s3_status *st,
                    cp_err *err);

/* HeadObject: the metadata alone. Returns CP_OK, CP_ENOTFOUND, CP_RETRY, CP_EFAIL. */
int cp_s3client_head(cp_s3client *c, const char *bucket, cp_slice key, cp_s3_obj_info *info,
                     cp_s3_status *st, cp_err *err);

/* One entry of a listing page; everything borrowed for the duration of the callback. */
typedef struct cp_s3_list_entry {
    cp_slice key;  /* object key, or the common prefix when is_prefix */
    int is_prefix; /* a CommonPrefixes entry (size, etag, last_modified unset) */
    uint64_t size;
    cp_slice etag;          /* quotes removed */
    cp_slice last_modified; /* ISO 8601 as sent */
} cp_s3_list_entry;

/* Return 0 to go on; non-zero stops the page and is returned by cp_s3client_list. */
typedef int (*cp_s3_list_cb)(void *ctx, const cp_s3_list_entry *e);

typedef struct cp_s3_list_req {
    cp_slice prefix;             /* may be empty */
    cp_slice delimiter;          /* may be empty */
    cp_slice start_after;        /* may be empty */
    cp_slice continuation_token; /* a previous page's next_token, or empty */
    unsigned max_keys;           /* 0 = the server's default (1000) */
} cp_s3_list_req;

typedef struct cp_s3_list_res {
    size_t count;      /* entries passed to the callback */
    int truncated;     /* IsTruncated */
    cp_buf next_token; /* NextContinuationToken when truncated (caller frees) */
} cp_s3_list_res;

#define CP_S3_LIST_RES_INIT ((cp_s3_list_res){0, 0, CP_BUF_INIT})

/*
 * ListObjectsV2: one page of keys (and common prefixes) in the server's order. res is reset
 * first; free res->next_token when done. Returns CP_OK, CP_RETRY, CP_EFAIL (NoSuchBucket...),
 * CP_ECORRUPT (an answer that is not a ListBucketResult), or the callback's non-zero value.
 */
int cp_s3client_list(cp_s3client *c, const char *bucket, const cp_s3_list_req *rq, cp_s3_list_cb cb,
                     void *ctx, cp_s3_list_res *res, cp_s3_status *st, cp_err *err);

/* ------------------------------------------------------------------------------------------ */
/* The sink (src/delivery/sinks/s3.c)                                                          */

/*
 * Build the state of the `s3` sink (cp_sink_s3 in sink.h) from cfg: *ctx is a cp_s3client,
 * released by cp_sink_s3.destroy. cp_object.encoding "gzip" is sent as Content-Encoding, and
 * every object as application/octet-stream. Errors as cp_s3client_new.
 */
int cp_s3_sink_new(const cp_s3_sink_cfg *cfg, void **ctx, cp_err *err);

#endif
