/* SPDX-License-Identifier: MIT */
/*
 * HTTP handlers for the Lambda REST API and the Runtime API (see api.h). They parse paths,
 * headers and query parameters, call lambda.h / lambda_int.h, and shape the replies; every
 * Lambda error goes out through reply_error().
 */
#include "lambda/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/proto.h"
#include "core/json.h"
#include "core/mem.h"
#include "lambda/lambda_int.h"

#define FUNCTIONS_PATH "/2015-03-31/functions"
#define RUNTIME_PATH   "/2018-06-01/runtime"

/* ------------------------------------------------------------------------------------------ */
/* Replies                                                                                     */

static void add_request_id(cp_http_resp *resp)
{
    char id[37];
    cp__lambda_uuid(id);
    cp_http_resp_add_header(resp, "x-amzn-RequestId", cp_slice_str(id));
}

static void reply_json(cp_http_resp *resp, int status, cp_slice body)
{
    cp_http_resp_set(resp, status, "application/json", body);
    add_request_id(resp);
}

/*
 * The single Lambda error path. Lambda's REST-JSON errors carry the code in x-amzn-ErrorType
 * and a small body whose message member is "Message" for ResourceNotFoundException and
 * "message" for the others, as the live service sends them; throttling adds a Reason.
 */
static int reply_error(cp_http_resp *resp, const char *type, const char *msg)
{
    cp_buf body = CP_BUF_INIT;
    cp_buf_putc(&body, '{');
    if (strcmp(type, "TooManyRequestsException") == 0) {
        cp_buf_puts(&body, "\"Reason\":\"ReservedFunctionConcurrentInvocationLimitExceeded\",");
    }
    cp_json_put_kv_str(&body, "Type",
                       strcmp(type, "ServiceException") == 0 ? CP_SLICE("Service")
                                                             : CP_SLICE("User"));
    cp_buf_putc(&body, ',');
    cp_json_put_kv_str(&body,
                       strcmp(type, "ResourceNotFoundException") == 0 ? "Message" : "message",
                       cp_slice_str(msg));
    cp_buf_putc(&body, '}');
    cp_http_resp_reset(resp);
    reply_json(resp, cp_lambda_error_status(type), cp_buf_slice(&body));
    cp_http_resp_add_header(resp, "x-amzn-ErrorType", cp_slice_str(type));
    cp_buf_free(&body);
    return CP_OK;
}

static int reply_err(cp_http_resp *resp, const cp_err *err)
{
    return reply_error(resp, cp_lambda_error_type(err), err->msg);
}

/* ------------------------------------------------------------------------------------------ */
/* REST API                                                                                    */

/* The function name from the path segment (percent-decoded: the CLI encodes ARN colons),
 * with ":<Qualifier>" appended when the query names one. Lives in the request scratch. */
static char *name_arg(const cp_http_req *req, cp_slice seg)
{
    cp_buf b = CP_BUF_INIT;
    cp_http_pct_decode(seg, 0, &b);
    cp_slice q;
    if (cp_http_req_query_param(req, "Qualifier", &q) == CP_OK && q.len) {
        cp_buf_putc(&b, ':');
        cp_buf_append(&b, q.p, q.len);
    }
    char *out = cp_http_scratch_strdup(req->scratch, cp_buf_slice(&b));
    cp_buf_free(&b);
    return out;
}

static int list_functions(cp_lambda *l, const cp_http_req *req, cp_http_resp *resp)
{
    cp_slice marker = {NULL, 0}, max = {NULL, 0};
    (void) cp_http_req_query_param(req, "Marker", &marker);
    int max_items = -1;
    if (cp_http_req_query_param(req, "MaxItems", &max) == CP_OK) {
        char *s = cp_http_scratch_strdup(req->scratch, max), *end = NULL;
        long v = strtol(s, &end, 10);
        if (!s[0] || *end || v < 0 || v > 1000000) {
            return reply_error(resp, "ValidationException",
                               "1 validation error detected: Value at 'maxItems' failed to "
                               "satisfy constraint: Member must have value less than or equal "
                               "to 10000");
        }
        max_items = (int) v;
    }
    char *m = cp_http_scratch_strdup(req->scratch, marker);
    cp_buf out = CP_BUF_INIT;
    cp_err err = {0};
    int rc = cp_lambda_list(l, m, max_items, &out, &err);
    if (rc == CP_OK) {
        reply_json(resp, 200, cp_buf_slice(&out));
    } else {
        reply_err(resp, &err);
    }
    cp_buf_free(&out);
    return CP_OK;
}

static int valid_json(cp_slice s)
{
    cp_json_lexer lx;
    cp_json_lexer_init(&lx, s);
    cp_json_tok t;
    for (;;) {
        if (cp_json_next(&lx, &t) != CP_OK) {
            return 0;
        }
        if (t.type == CP_JSON_END) {
            return 1;
        }
    }
}

static int invoke(cp_lambda *l, const char *name, const cp_http_req *req, cp_http_resp *resp)
{
    cp_slice type = cp_http_req_header(req, "X-Amz-Invocation-Type");
    cp_err err = {0};
    int dry = type.p && cp_slice_eq(type, CP_SLICE("DryRun"));
    int event = type.p && cp_slice_eq(type, CP_SLICE("Event"));
    if (type.p && !dry && !event && !cp_slice_eq(type, CP_SLICE("RequestResponse"))) {
        return reply_error(resp, "ValidationException",
                           "1 validation error detected: Value at 'invocationType' failed to "
                           "satisfy constraint: Member must satisfy enum value set: [Event, "
                           "RequestResponse, DryRun]");
    }
    /* Lambda hands an empty payload to the function as {} and refuses anything that is not
     * JSON before the function runs. */
    cp_slice payload = req->body.len ? req->body : CP_SLICE("{}");
    if (payload.len <= CP_LAMBDA_MAX_REQUEST && !valid_json(payload)) {
        return reply_error(resp, "InvalidRequestContentException",
                           "Could not parse request body into json: Could not parse payload "
                           "into json");
    }
    if (dry) {
        if (cp_lambda_exists(l, name, &err) != CP_OK) {
            return reply_err(resp, &err);
        }
        resp->status = 204;
        add_request_id(resp);
        return CP_OK;
    }
    if (event) {
        if (cp_lambda_invoke_async(l, name, payload, &err) != CP_OK) {
            return reply_err(resp, &err);
        }
        resp->status = 202;
        add_request_id(resp);
        return CP_OK;
    }
    cp_buf out = CP_BUF_INIT;
    int fe = 0;
    if (cp_lambda_invoke(l, name, payload, &out, &fe, &err) != CP_OK) {
        cp_buf_free(&out);
        return reply_err(resp, &err);
    }
    resp->status = 200;
    cp_buf_free(&resp->body);
    resp->body = out; /* moved: no copy of up to 6 MB */
    cp_http_resp_add_header(resp, "Content-Type", CP_SLICE("application/json"));
    cp_http_resp_add_header(resp, "X-Amz-Executed-Version", CP_SLICE("$LATEST"));
    if (fe) {
        cp_http_resp_add_header(resp, "X-Amz-Function-Error", CP_SLICE("Unhandled"));
    }
    add_request_id(resp);
    return CP_OK;
}

int cp_lambda_api_functions(void *ctx, const cp_http_req *req, cp_http_resp *resp)
{
    cp_lambda *l = ctx;
    cp_slice rest = {req->path.p + strlen(FUNCTIONS_PATH), req->path.len - strlen(FUNCTIONS_PATH)};
    int get = cp_slice_eq(req->method, CP_SLICE("GET"));
    int post = cp_slice_eq(req->method, CP_SLICE("POST"));
    int del = cp_slice_eq(req->method, CP_SLICE("DELETE"));
    cp_err err = {0};
    const cp_aws_router *aws = cp__lambda_auth(l);
    if (aws) {
        /* Lambda allows 5 minutes of clock skew, like the JSON services other than DynamoDB. */
        cp_sigv4_auth auth;
        cp_sigv4_err serr;
        if (cp_aws_authenticate(aws, req, "lambda", 300, 0, &auth, &serr) < 0) {
            return reply_error(resp, cp_aws_sigv4_exception(serr.kind),
                               serr.kind == CP_SIGV4_MISSING ? "Missing Authentication Token"
                                                             : serr.msg);
        }
    }
    if (rest.len == 0 || cp_slice_eq(rest, CP_SLICE("/"))) {
        if (post) {
            cp_buf out = CP_BUF_INIT;
            int rc = cp_lambda_create(l, req->body, &out, &err);
            if (rc == CP_OK) {
                reply_json(resp, 201, cp_buf_slice(&out));
            } else {
                reply_err(resp, &err);
            }
            cp_buf_free(&out);
            return CP_OK;
        }
        if (get) {
            return list_functions(l, req, resp);
        }
        return reply_error(resp, "UnknownOperationException", "Unknown operation");
    }
    /* rest = "/{name}" or "/{name}/{sub}" */
    const char *seg = rest.p + 1, *end = rest.p + rest.len;
    const char *slash = memchr(seg, '/', (size_t) (end - seg));
    cp_slice name_seg = {seg, (size_t) ((slash ? slash : end) - seg)};
    cp_slice sub = slash ? (cp_slice){slash, (size_t) (end - slash)} : (cp_slice){"", 0};
    if (name_seg.len == 0) {
        return reply_error(resp, "UnknownOperationException", "Unknown operation");
    }
    char *name = name_arg(req, name_seg);
    cp_buf out = CP_BUF_INIT;
    int rc = CP_EFAIL;
    if (sub.len == 0 && get) {
        rc = cp_lambda_get(l, name, &out, &err);
    } else if (sub.len == 0 && del) {
        rc = cp_lambda_delete(l, name, &err);
        if (rc == CP_OK) {
            resp->status = 204;
            add_request_id(resp);
            return CP_OK;
        }
    } else if (cp_slice_eq(sub, CP_SLICE("/configuration")) && get) {
        rc = cp_lambda_get_configuration(l, name, &out, &err);
    } else if (cp_slice_eq(sub, CP_SLICE("/invocations")) && post) {
        return invoke(l, name, req, resp);
    } else if (cp_slice_eq(sub, CP_SLICE("/code")) && get) {
        int fd = -1;
        uint64_t size = 0;
        rc = cp_lambda_open_code(l, name, &fd, &size, &err);
        if (rc == CP_OK) {
            cp_http_resp_set_file(resp, fd, 0, size);
            cp_http_resp_add_header(resp, "Content-Type", CP_SLICE("application/zip"));
            add_request_id(resp);
            return CP_OK;
        }
    } else {
        return reply_error(resp, "UnknownOperationException", "Unknown operation");
    }
    if (rc == CP_OK) {
        reply_json(resp, 200, cp_buf_slice(&out));
    } else {
        reply_err(resp, &err);
    }
    cp_buf_free(&out);
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Runtime API                                                                                 */

/* The Runtime API's own error shape: {"errorMessage":"...","errorType":"..."}. */
static int rt_error(cp_http_resp *resp, int status, const char *type, const char *msg)
{
    cp_buf body = CP_BUF_INIT;
    cp_buf_putc(&body, '{');
    cp_json_put_kv_str(&body, "errorMessage", cp_slice_str(msg));
    cp_buf_putc(&body, ',');
    cp_json_put_kv_str(&body, "errorType", cp_slice_str(type));
    cp_buf_putc(&body, '}');
    cp_http_resp_set(resp, status, "application/json", cp_buf_slice(&body));
    cp_buf_free(&body);
    return CP_OK;
}

static int rt_reply_err(cp_http_resp *resp, const cp_err *err)
{
    switch (err->code) {
    case CP_ENOTFOUND:
        return rt_error(resp, strncmp(err->msg, "Invalid request ID", 18) == 0 ? 400 : 403,
                        strncmp(err->msg, "Invalid request ID", 18) == 0 ? "InvalidRequestID"
                                                                         : "InvalidRuntimeInstance",
                        err->msg);
    case CP_EINUSE:
        return rt_error(resp, 403, "InvalidStateTransition", err->msg);
    case CP_ETOOBIG:
        return rt_error(resp, 413, "RequestEntityTooLarge", err->msg);
    default:
        /* Shutting down or the instance was stopped: a runtime exits on a 500. */
        return rt_error(resp, 500, "ServiceUnavailable", err->msg);
    }
}

static int rt_accepted(cp_http_resp *resp)
{
    cp_http_resp_set(resp, 202, "application/json", CP_SLICE("{\"status\":\"OK\"}"));
    return CP_OK;
}

int cp_lambda_api_runtime(void *ctx, const cp_http_req *req, cp_http_resp *resp)
{
    cp_lambda *l = ctx;
    cp_slice path = req->path, token = {NULL, 0};
    size_t pl = strlen(CP__LAMBDA_RT_PREFIX);
    if (path.len > pl + 1 && memcmp(path.p, CP__LAMBDA_RT_PREFIX "/", pl + 1) == 0) {
        const char *t = path.p + pl + 1, *end = path.p + path.len;
        const char *slash = memchr(t, '/', (size_t) (end - t));
        if (!slash) {
            return rt_error(resp, 404, "UnknownPath", "Unknown Runtime API path");
        }
        token = (cp_slice){t, (size_t) (slash - t)};
        path = (cp_slice){slash, (size_t) (end - slash)};
    }
    size_t rl = strlen(RUNTIME_PATH);
    if (path.len < rl || memcmp(path.p, RUNTIME_PATH, rl) != 0) {
        return rt_error(resp, 404, "UnknownPath", "Unknown Runtime API path");
    }
    cp_slice op = {path.p + rl, path.len - rl};
    int get = cp_slice_eq(req->method, CP_SLICE("GET"));
    int post = cp_slice_eq(req->method, CP_SLICE("POST"));
    cp_err err = {0};
    cp_slice etype = cp_http_req_header(req, "Lambda-Runtime-Function-Error-Type");
    if (cp_slice_eq(op, CP_SLICE("/invocation/next")) || cp_slice_eq(op, CP_SLICE("/init/error"))) {
        int next = cp_slice_eq(op, CP_SLICE("/invocation/next"));
        if (next ? !get : !post) {
            return rt_error(resp, 405, "MethodNotAllowed", "Method not allowed");
        }
        if (!token.len) {
            /* Without the instance prefix we cannot tell which process is asking. */
            return rt_error(resp, 400, "InvalidRuntimeEndpoint",
                            "changepipe serves the Runtime API per instance: build URLs as "
                            "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/... with the "
                            "variable unchanged");
        }
        if (!next) {
            if (cp__lambda_rt_init_error(l, token, etype, req->body, &err) != CP_OK) {
                return rt_reply_err(resp, &err);
            }
            return rt_accepted(resp);
        }
        cp__lambda_event ev;
        memset(&ev, 0, sizeof(ev));
        if (cp__lambda_rt_next(l, token, &ev, &err) != CP_OK) {
            cp_buf_free(&ev.payload);
            return rt_reply_err(resp, &err);
        }
        resp->status = 200;
        cp_buf_free(&resp->body);
        resp->body = ev.payload; /* moved */
        cp_http_resp_add_header(resp, "Content-Type", CP_SLICE("application/json"));
        cp_http_resp_add_header(resp, "Lambda-Runtime-Aws-Request-Id", cp_slice_str(ev.request_id));
        cp_http_resp_add_headerf(resp, "Lambda-Runtime-Deadline-Ms", "%lld",
                                 (long long) ev.deadline_ms);
        cp_http_resp_add_header(resp, "Lambda-Runtime-Invoked-Function-Arn",
                                cp_slice_str(ev.function_arn));
        cp_http_resp_add_header(resp, "Lambda-Runtime-Trace-Id", cp_slice_str(ev.trace_id));
        return CP_OK;
    }
    /* /invocation/{id}/response | /invocation/{id}/error */
    cp_slice inv = CP_SLICE("/invocation/");
    if (op.len > inv.len && memcmp(op.p, inv.p, inv.len) == 0) {
        const char *id = op.p + inv.len, *end = op.p + op.len;
        const char *slash = memchr(id, '/', (size_t) (end - id));
        if (slash) {
            cp_slice rid = {id, (size_t) (slash - id)};
            cp_slice what = {slash, (size_t) (end - slash)};
            int response = cp_slice_eq(what, CP_SLICE("/response"));
            if ((response || cp_slice_eq(what, CP_SLICE("/error"))) && !post) {
                return rt_error(resp, 405, "MethodNotAllowed", "Method not allowed");
            }
            int rc = CP_EFAIL;
            if (response) {
                rc = cp__lambda_rt_response(l, token, rid, req->body, &err);
            } else if (cp_slice_eq(what, CP_SLICE("/error"))) {
                rc = cp__lambda_rt_error(l, token, rid, etype, req->body, &err);
            } else {
                return rt_error(resp, 404, "UnknownPath", "Unknown Runtime API path");
            }
            return rc == CP_OK ? rt_accepted(resp) : rt_reply_err(resp, &err);
        }
    }
    return rt_error(resp, 404, "UnknownPath", "Unknown Runtime API path");
}

void cp_lambda_api_mount(cp_http_router *r, cp_lambda *l)
{
    cp_http_router_add(r, NULL, FUNCTIONS_PATH, CP_HTTP_ROUTE_PREFIX, cp_lambda_api_functions, l);
    cp_http_router_add(r, NULL, RUNTIME_PATH, CP_HTTP_ROUTE_PREFIX, cp_lambda_api_runtime, l);
    cp_http_router_add(r, NULL, CP__LAMBDA_RT_PREFIX, CP_HTTP_ROUTE_PREFIX, cp_lambda_api_runtime,
                       l);
}

void cp_lambda_api_mount_signed(cp_http_router *r, cp_lambda *l, const cp_aws_router *aws)
{
    cp__lambda_set_auth(l, aws);
    cp_lambda_api_mount(r, l);
}
