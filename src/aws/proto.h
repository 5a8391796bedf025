/* SPDX-License-Identifier: MIT */
/*
 * AWS JSON 1.0/1.1 dispatch: every call is POST / with the operation in X-Amz-Target
 * ("<Prefix>.<Operation>"). Services register a table of operations under their prefix; the
 * dispatcher does the framing checks in AWS's order (method and target, size, JSON, then
 * SigV4), calls the operation, and finishes the reply (request id, Date, content type,
 * x-amz-crc32). Operation handlers only write a JSON body or call cp_aws_reply_error().
 *
 * Threads: register everything before the server starts; afterwards the router is read-only
 * and cp_aws_dispatch runs concurrently on every worker thread.
 *
 * Wiring, as `changepipe serve` does it:
 *
 *     cp_aws_router *aws = cp_aws_router_new(&(cp_aws_router_cfg){creds, ncreds, NULL});
 *     cp_aws_register_service(aws, "Kinesis_20131202", NULL, NULL, kinesis_ops, streams);
 *     cp_http_router *http = cp_http_router_new();
 *     cp_aws_mount(aws, http);                       X-Amz-Target requests, POST /
 *     cp_http_router_add(http, "GET", "/health", 0, health, state);
 *     cp_http_router_set_fallback(http, s3_handle, objects);
 *     cp_http_server_open(&(cp_http_cfg){.host = h, .port = p, .handler = cp_http_router_handle,
 *                                        .ctx = http}, &srv, &err);
 *     ... on SIGTERM: cp_http_server_quiesce(srv); wake long polls; cp_http_server_close(srv);
 *     cp_http_router_free(http); cp_aws_router_free(aws);
 */
#ifndef CP_AWS_PROTO_H
#define CP_AWS_PROTO_H

#include "aws/errors.h"
#include "aws/sigv4.h"
#include "http/router.h"
#include "http/server.h"

/* What an operation handler gets. Everything borrows the request: valid until it returns. */
typedef struct cp_aws_req {
    const cp_http_req *http;       /* the transport request (headers, remote address, ...) */
    const cp_aws_service *service; /* wire conventions: pass to cp_aws_reply_error() */
    cp_slice op;                   /* operation name, e.g. "PutItem" */
    cp_slice body;                 /* the JSON body */
    cp_slice access_key;           /* from the SigV4 credential scope */
    cp_slice region;               /* from the scope; the router's default region if empty */
    cp_http_scratch *scratch;      /* per-request arena */
} cp_aws_req;

/* Write the JSON result into resp->body (status stays 200; an empty body becomes "{}") and
 * return CP_OK, or return cp_aws_reply_error(...). Any other negative return becomes the
 * service's 500 error. Runs on a server worker thread and may block. */
typedef int (*cp_aws_op_fn)(void *ctx, const cp_aws_req *req, cp_http_resp *resp);

/* The op parses the body itself in one pass (hot path): the dispatcher then only rejects an
 * empty body, and the op must answer malformed JSON with SerializationException itself. */
#define CP_AWS_OP_RAW_JSON 1u

typedef struct cp_aws_op {
    const char *name; /* operation name as in X-Amz-Target */
    cp_aws_op_fn handler;
    unsigned flags; /* CP_AWS_OP_* */
} cp_aws_op;

typedef struct cp_aws_router_cfg {
    const cp_sigv4_cred *creds; /* known credentials; none: accept any well-formed signature */
    size_t ncreds;
    const char *default_region; /* NULL = "us-east-1" */
} cp_aws_router_cfg;

typedef struct cp_aws_router cp_aws_router;

/* Returns a new router (cfg and the credential strings are copied); free with
 * cp_aws_router_free(). */
cp_aws_router *cp_aws_router_new(const cp_aws_router_cfg *cfg);
void cp_aws_router_free(cp_aws_router *r);

/* Register the operations of one service under its X-Amz-Target prefix. `ops` is terminated
 * by an entry with name NULL and is copied; ctx is borrowed for the router's lifetime. Known
 * prefixes (DynamoDB_20120810, DynamoDBStreams_20120810, Kinesis_20131202,
 * Firehose_20150804) get AWS's conventions for that service; json_version and signing_name
 * override the descriptor's. Returns CP_OK, or CP_EEXIST when the prefix is taken. */
int cp_aws_register_service(cp_aws_router *r, const char *prefix, const char *json_version,
                            const char *signing_name, const cp_aws_op *ops, void *ctx);

/* The registered descriptor for `prefix`, or NULL. Valid until the next registration (the
 * router's lifetime once serving has started). */
const cp_aws_service *cp_aws_router_service(const cp_aws_router *r, const char *prefix);

/* The cp_http_handler for AWS JSON requests (ctx = the cp_aws_router). */
int cp_aws_dispatch(void *router, const cp_http_req *req, cp_http_resp *resp);

/* Mount the dispatcher on an HTTP router: requests with X-Amz-Target (any path), and POST /
 * (a JSON-protocol call without a target is an UnknownOperationException). */
void cp_aws_mount(cp_aws_router *aws, cp_http_router *http);

/* SigV4 for REST handlers (S3, Lambda) with the router's credentials: the same rules as the
 * JSON dispatcher. `service` is the expected scope service (NULL = any); flags CP_SIGV4_S3
 * for S3. Returns CP_OK or CP_EINVAL with err filled. */
int cp_aws_authenticate(const cp_aws_router *r, const cp_http_req *req, const char *service,
                        int64_t max_skew_s, unsigned flags, cp_sigv4_auth *auth, cp_sigv4_err *err);

/* The JSON-service exception for a SigV4 failure kind (MissingAuthenticationTokenException,
 * IncompleteSignatureException, InvalidSignatureException, UnrecognizedClientException). */
const char *cp_aws_sigv4_exception(cp_sigv4_fail kind);

#endif
