/* SPDX-License-Identifier: MIT */
/*
 * The wire conventions of each AWS JSON service and the single error path. Every JSON-protocol
 * error reply in changepipe goes through cp_aws_reply_error(), which picks the exact `__type`
 * namespace, message member casing and HTTP status AWS uses for that service and code, and adds
 * the response headers (x-amzn-RequestId, Date, Content-Type, x-amz-crc32 where AWS sends it).
 *
 * Threads: the service descriptors are immutable; the functions are reentrant.
 */
#ifndef CP_AWS_ERRORS_H
#define CP_AWS_ERRORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/request.h"

typedef enum cp_aws_style {
    CP_AWS_STYLE_BARE = 0, /* Kinesis, Firehose: "__type":"Name", "message" */
    CP_AWS_STYLE_DYNAMODB, /* namespaced __type, "Message" for a few codes, x-amz-crc32 */
} cp_aws_style;

/* How one AWS JSON service speaks (dynamodb-kinesis.md section 1). */
typedef struct cp_aws_service {
    const char *prefix;         /* X-Amz-Target prefix, e.g. "DynamoDB_20120810" */
    const char *json_version;   /* "1.0" or "1.1": echoed in Content-Type */
    const char *signing_name;   /* SigV4 credential-scope service, e.g. "dynamodb" */
    cp_aws_style style;         /* error shape family */
    int crc32;                  /* send x-amz-crc32 (DynamoDB and DynamoDB Streams) */
    int64_t max_skew_s;         /* SigV4 clock tolerance (15 min DynamoDB, 5 min others) */
    size_t max_body;            /* request limit, answered with 413 */
    const char *missing_token;  /* MissingAuthenticationTokenException message */
    const char *internal_error; /* code for 500s: InternalServerError / InternalFailureException */
} cp_aws_service;

extern const cp_aws_service cp_aws_dynamodb;         /* DynamoDB_20120810 */
extern const cp_aws_service cp_aws_dynamodb_streams; /* DynamoDBStreams_20120810 */
extern const cp_aws_service cp_aws_kinesis;          /* Kinesis_20131202 */
extern const cp_aws_service cp_aws_firehose;         /* Firehose_20150804 */

/* The built-in descriptor for an X-Amz-Target prefix, or NULL. */
const cp_aws_service *cp_aws_service_builtin(cp_slice prefix);

/* HTTP status AWS answers with for `code` (400 unless the code is a server fault). */
int cp_aws_error_status(const cp_aws_service *svc, const char *code);

/* Append the error body: {"__type":"<ns#>code","message":"..."} with the service's namespace
 * and member casing. msg NULL omits the message member (AWS does for some framing errors).
 * `extra` (may be empty) is appended raw before the closing brace and must start with ','
 * (e.g. ,"CancellationReasons":[...] or ,"Item":{...}). */
void cp_aws_error_body(const cp_aws_service *svc, const char *code, const char *msg, cp_slice extra,
                       cp_buf *out);

/* The single error path: replace resp with the error `code` for service svc (NULL means the
 * bare JSON 1.1 style), headers included. Returns CP_EFAIL so handlers can
 * `return cp_aws_reply_error(...)`: the dispatcher sees a completed error reply. */
int cp_aws_reply_error(cp_http_resp *resp, const cp_aws_service *svc, const char *code,
                       const char *msg);
int cp_aws_reply_errorf(cp_http_resp *resp, const cp_aws_service *svc, const char *code,
                        const char *fmt, ...) CP_PRINTF(4, 5);
/* As cp_aws_reply_error with extra members (see cp_aws_error_body). */
int cp_aws_reply_error_extra(cp_http_resp *resp, const cp_aws_service *svc, const char *code,
                             const char *msg, cp_slice extra);

/* Add the standard headers to a finished JSON response (status and body final):
 * x-amzn-RequestId (and x-amz-id-2 for Kinesis), Date, Content-Type
 * application/x-amz-json-<version>, and x-amz-crc32 for services that send it. */
void cp_aws_finish(cp_http_resp *resp, const cp_aws_service *svc);

/* A fresh request id in the service's format (52 upper-case alphanumerics for DynamoDB,
 * a UUID otherwise) into out[64]. */
void cp_aws_request_id(const cp_aws_service *svc, char out[64]);

#endif
