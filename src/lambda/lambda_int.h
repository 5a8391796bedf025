/* SPDX-License-Identifier: MIT */
/*
 * The Runtime API side of the pool, shared by lambda.c and api.c only: what the HTTP handlers
 * of /2018-06-01/runtime/... call on behalf of a runtime process. An instance is named by the
 * token in its AWS_LAMBDA_RUNTIME_API path prefix (see lambda.h); an empty token means the
 * request came without a prefix, which only /response and /error accept.
 */
#ifndef CP_LAMBDA_INT_H
#define CP_LAMBDA_INT_H

#include "lambda/lambda.h"

/* The path prefix of every instance's Runtime API endpoint: /_lambda/<token>/2018-06-01/...
 * (an underscore cannot start an S3 bucket name, so it never shadows a bucket). */
#define CP__LAMBDA_RT_PREFIX "/_lambda"

/* One invocation handed to a runtime by /invocation/next. */
typedef struct cp__lambda_event {
    char request_id[40];    /* Lambda-Runtime-Aws-Request-Id */
    int64_t deadline_ms;    /* Lambda-Runtime-Deadline-Ms (epoch milliseconds) */
    char function_arn[200]; /* Lambda-Runtime-Invoked-Function-Arn */
    char trace_id[100];     /* Lambda-Runtime-Trace-Id */
    cp_buf payload;         /* the event (the caller frees it) */
} cp__lambda_event;

/*
 * GET /invocation/next for instance `token`: blocks until an invocation of its function is
 * assigned to it, the instance dies, the registry closes or the attached server stops. The
 * first call marks the instance initialised. On CP_OK *ev is filled.
 * CP_ENOTFOUND unknown token; CP_EINUSE the instance still owes a response for its previous
 * invocation, or a newer /next of the same instance superseded this one; CP_ECLOSED the
 * instance was stopped or we are shutting down.
 */
int cp__lambda_rt_next(cp_lambda *l, cp_slice token, cp__lambda_event *ev, cp_err *err);

/*
 * POST /invocation/<id>/response. The body is borrowed and copied. CP_ENOTFOUND when `id` is
 * not the invocation this instance (or, without a token, any instance) is running;
 * CP_ETOOBIG when the body is over CP_LAMBDA_MAX_RESPONSE: the invocation then fails with
 * Function.ResponseSizeTooLarge.
 */
int cp__lambda_rt_response(cp_lambda *l, cp_slice token, cp_slice id, cp_slice body, cp_err *err);

/* POST /invocation/<id>/error: the invocation ends as a function error with `body` (or, if
 * the body is not a JSON object, an error JSON built from `error_type`). As above. */
int cp__lambda_rt_error(cp_lambda *l, cp_slice token, cp_slice id, cp_slice error_type,
                        cp_slice body, cp_err *err);

/* POST /init/error: the instance failed to initialise. One waiting invocation ends with this
 * error and the instance is killed. CP_ENOTFOUND unknown token; CP_EINUSE the instance had
 * already initialised (Lambda answers 403 then). */
int cp__lambda_rt_init_error(cp_lambda *l, cp_slice token, cp_slice error_type, cp_slice body,
                             cp_err *err);

/* The aws router whose credentials verify SigV4 on REST API requests (api.c), NULL for
 * none. Borrowed; set before the server starts. The Runtime API is never signed. */
typedef struct cp_aws_router cp_aws_router;
void cp__lambda_set_auth(cp_lambda *l, const cp_aws_router *aws);
const cp_aws_router *cp__lambda_auth(const cp_lambda *l);

/* A fresh random UUID (8-4-4-4-12 lower-case hex) into out[37]. */
void cp__lambda_uuid(char out[37]);

#endif
