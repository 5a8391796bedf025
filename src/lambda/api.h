/* SPDX-License-Identifier: MIT */
/*
 * The HTTP face of lambda.h: the Lambda REST API (CreateFunction, GetFunction,
 * GetFunctionConfiguration, ListFunctions, DeleteFunction, Invoke) and the Lambda Runtime API
 * that bootstrap processes call, both mounted on the server's router.
 *
 * Paths:
 *   POST   /2015-03-31/functions                          CreateFunction (201)
 *   GET    /2015-03-31/functions/                         ListFunctions (Marker, MaxItems)
 *   GET    /2015-03-31/functions/{name}                   GetFunction (Qualifier)
 *   DELETE /2015-03-31/functions/{name}                   DeleteFunction (204)
 *   GET    /2015-03-31/functions/{name}/configuration     GetFunctionConfiguration
 *   POST   /2015-03-31/functions/{name}/invocations       Invoke: RequestResponse, Event (202),
 *                                                         DryRun (204)
 *   GET    /2015-03-31/functions/{name}/code              the stored zip (changepipe: the
 *                                                         Code.Location GetFunction returns)
 *   /_lambda/{token}/2018-06-01/runtime/invocation/next, .../invocation/{id}/response,
 *   .../invocation/{id}/error, .../init/error             the Runtime API of one instance
 *   /2018-06-01/runtime/invocation/{id}/response|error    accepted without the prefix too
 *
 * Errors use Lambda's REST-JSON shape: HTTP status, x-amzn-ErrorType: <code>, and a body
 * {"Type":"User","message":"..."} ("Message" for ResourceNotFoundException, as Lambda spells
 * it; "Type":"Service" for ServiceException).
 *
 * Threads: handlers run on server worker threads; /invocation/next long-polls (the server runs
 * one thread per HTTP/1.1 connection, so that is fine).
 */
#ifndef CP_LAMBDA_API_H
#define CP_LAMBDA_API_H

#include "http/router.h"
#include "lambda/lambda.h"

/* Add the routes above to r. l is borrowed for the router's lifetime. REST API requests are
 * not authenticated (as local emulators do when no credentials are configured). */
void cp_lambda_api_mount(cp_http_router *r, cp_lambda *l);

/* As cp_lambda_api_mount, and REST API requests must carry a SigV4 signature (scope service
 * "lambda") valid for `aws`'s credentials (cp_aws_authenticate), else 403 with
 * MissingAuthenticationTokenException / UnrecognizedClientException /
 * InvalidSignatureException. The Runtime API stays unsigned, as in Lambda. aws is borrowed
 * for the router's lifetime. */
typedef struct cp_aws_router cp_aws_router;
void cp_lambda_api_mount_signed(cp_http_router *r, cp_lambda *l, const cp_aws_router *aws);

/* The two handlers (ctx = the cp_lambda), for callers that route by other means. */
int cp_lambda_api_functions(void *ctx, const cp_http_req *req, cp_http_resp *resp);
int cp_lambda_api_runtime(void *ctx, const cp_http_req *req, cp_http_resp *resp);

#endif
