/* SPDX-License-Identifier: MIT */
/*
 * Lambda for custom runtimes: a registry of functions (provided, provided.al2,
 * provided.al2023) persisted under <data>/lambda/, and per function a pool of local child
 * processes running the package's `bootstrap`, which speak the public Lambda Runtime API served
 * by our own HTTP server (api.h). The Lambda REST API (api.h) and the delivery engine
 * (cp_lambda_invoke) both invoke through this module.
 *
 * How a runtime process is recognised. The Runtime API carries no instance identity: real
 * Lambda gives each sandbox its own endpoint. We do the same without extra ports by putting a
 * per-instance path prefix into the endpoint variable:
 *
 *     AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port>/_lambda/<token>
 *
 * Runtimes that build their URLs as "http://" + AWS_LAMBDA_RUNTIME_API + "/2018-06-01/..."
 * -- the aws-lambda-go and aws-lambda-cpp runtimes, the Rust runtime's API client (it keeps a
 * base path), and curl-based bootstraps like AWS's tutorial one -- send each instance's
 * requests under its own /_lambda/<token>/ prefix. <token> is 128 random bits per instance; it
 * tells us which process (and so which function) is asking for work and which invocation it is
 * answering, which Timeout enforcement (kill that process group) and crash handling (fail that
 * invocation) need. A runtime that splits the variable into host and port itself (some
 * runtime interface clients do; this is a known gap) cannot work with this scheme: its /next
 * and /init/error get a 400 that says so. Its /response and /error still work without the
 * prefix, since the request id identifies the invocation.
 *
 * Pool rules: invocations of a function queue in FIFO order and any idle instance of that
 * function takes the head. Instances start on demand (at most `concurrency` per function), are
 * reused while warm, are stopped after `idle_timeout_ms` without work, and a crashed or killed
 * instance is reaped and replaced on the next demand. Every instance runs in its own process
 * group, so killing it (timeout, delete, shutdown) also kills what the bootstrap started.
 *
 * Threads: every function here is thread-safe. Children are reaped by pid (never waitpid(-1)),
 * so other parts of the process may run their own children; a SIGCHLD handler elsewhere that
 * reaps every child would steal ours.
 */
#ifndef CP_LAMBDA_H
#define CP_LAMBDA_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "http/server.h"

/* Lambda's synchronous payload limits: 6 MB each way. The response limit is the figure in
 * Lambda's own error text ("...maximum allowed payload size (6291556 bytes)"). */
#define CP_LAMBDA_MAX_REQUEST  6291456u
#define CP_LAMBDA_MAX_RESPONSE 6291556u
/* Asynchronous (Event) payload limit. */
#define CP_LAMBDA_MAX_ASYNC_REQUEST (1024u * 1024u)
/* Direct-upload limit of CreateFunction (the base64 text of a 50 MB zip). */
#define CP_LAMBDA_MAX_CREATE_REQUEST 69905067u
/* The account id in every ARN. */
#define CP_LAMBDA_ACCOUNT "000000000000"

typedef struct cp_lambda_cfg {
    const char *data_dir;      /* required: functions live in <data_dir>/lambda/<name>/ */
    const char *region;        /* region in ARNs and AWS_REGION; NULL = "us-east-1" */
    unsigned concurrency;      /* instances (and in-flight invocations) per function; 0 = 10 */
    unsigned queue_timeout_ms; /* wait for a free slot before TooManyRequests; 0 = 1000 */
    unsigned init_timeout_ms;  /* a new instance must ask for work within this; 0 = 10000 */
    unsigned idle_timeout_ms;  /* stop instances idle this long; 0 = 600000 */
    uint64_t max_unzipped;     /* function code limit; 0 = 250 MiB (Lambda's) */
} cp_lambda_cfg;

typedef struct cp_lambda cp_lambda;

/*
 * Open the registry: create <data_dir>/lambda if needed, load every function stored there
 * (a directory that fails to load is skipped with a warning), remove leftovers of interrupted
 * creates and deletes, and start the reaper thread. cfg is copied. On CP_OK *out is the
 * caller's to cp_lambda_close(). Errors: -errno from the file system, CP_EINVAL for a missing
 * data_dir.
 */
int cp_lambda_open(const cp_lambda_cfg *cfg, cp_lambda **out, cp_err *err);

/*
 * Tell the registry where the Runtime API is served: `srv`'s bound port on `host` (NULL =
 * "127.0.0.1"; use a loopback address even when the server binds 0.0.0.0). srv is borrowed
 * until cp_lambda_close; long polls end when it starts stopping. Instances can start only
 * after this call: invocations before it fail with a ServiceException (CP_ECLOSED).
 */
void cp_lambda_attach(cp_lambda *l, const cp_http_server *srv, const char *host);

/*
 * First half of the stop: fail queued and running invocations with CP_ECLOSED, end long
 * polls, SIGKILL every instance's process group and reap it (no zombies once this returns),
 * and wait for the invokes, Runtime API calls and asynchronous invocations in progress to
 * return. Afterwards the registry still answers (reads work, new work gets CP_ECLOSED), so
 * HTTP handlers may keep arriving while the server drains. Idempotent.
 *
 * Shutdown order:  cp_http_server_quiesce(srv);  cp_lambda_shutdown(l);
 *                  cp_http_server_close(srv);    cp_lambda_close(l);
 */
void cp_lambda_shutdown(cp_lambda *l);

/*
 * Free everything (runs cp_lambda_shutdown first if needed, and lets a create or delete in
 * progress finish). No call may start once close has begun: close the HTTP server first, or
 * call this between quiesce and close only when no control-plane request can be in flight.
 * NULL is a no-op.
 */
void cp_lambda_close(cp_lambda *l);

/* ------------------------------------------------------------------------------------------ */
/* Control plane: requests and replies are the Lambda REST API's JSON                           */

/*
 * CreateFunction from its request JSON (borrowed): FunctionName, Runtime (custom runtimes
 * only), Role, Handler, Code.ZipFile (base64), Timeout (1..900, default 3), MemorySize
 * (128..10240, default 128), Environment.Variables, Description, Architectures, Tags, Publish
 * (accepted; only $LATEST exists). The package is extracted and stored atomically. On CP_OK
 * `out` gets the FunctionConfiguration JSON (appended). Errors (see cp_lambda_error_type):
 * CP_EINVAL (validation; the message is AWS's text), CP_EEXIST (name taken), -errno.
 */
int cp_lambda_create(cp_lambda *l, cp_slice request, cp_buf *out, cp_err *err);

/* GetFunction: {"Configuration":{...},"Code":{...},"Tags":{...}} appended to out.
 * `name` is a name, an ARN or a partial ARN, optionally with ":$LATEST". CP_ENOTFOUND,
 * CP_EINVAL. */
int cp_lambda_get(cp_lambda *l, const char *name, cp_buf *out, cp_err *err);

/* GetFunctionConfiguration: the FunctionConfiguration JSON appended to out. As above. */
int cp_lambda_get_configuration(cp_lambda *l, const char *name, cp_buf *out, cp_err *err);

/* ListFunctions in name order: {"Functions":[...],"NextMarker":"..."} appended to out.
 * marker NULL or "" starts at the beginning (a marker is the last name of the previous page);
 * max_items < 0 means 50. CP_EINVAL (ValidationException) for max_items outside 1..10000. */
int cp_lambda_list(cp_lambda *l, const char *marker, int max_items, cp_buf *out, cp_err *err);

/* DeleteFunction: remove it from the registry, fail its queued and running invocations with
 * CP_ENOTFOUND, kill its instances and delete its directory. CP_ENOTFOUND, CP_EINVAL. */
int cp_lambda_delete(cp_lambda *l, const char *name, cp_err *err);

/* Open the function's stored deployment package for reading (GetFunction's Code.Location):
 * on CP_OK *fd is a new descriptor the caller closes and *size its length. CP_ENOTFOUND. */
int cp_lambda_open_code(cp_lambda *l, const char *name, int *fd, uint64_t *size, cp_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Invoke                                                                                      */

/*
 * Invoke synchronously (RequestResponse) and wait for the result. Blocking and thread-safe:
 * the delivery engine calls it from its workers. `payload` is borrowed for the call.
 *
 * CP_OK: the function ran. `response` gets (appended) the bytes the function returned, and
 * *function_error is 0; or, when the function failed (it posted an error, crashed, timed
 * out, failed to initialise or returned more than 6 MB), *function_error is 1 and `response`
 * holds Lambda's error JSON {"errorMessage":...,"errorType":...} -- for a timeout errorType
 * "Sandbox.Timedout" and "Task timed out after N.NN seconds"; these are what Invoke reports
 * with X-Amz-Function-Error: Unhandled.
 *
 * Errors (nothing ran or the result is lost; *function_error is 0):
 *   CP_ENOTFOUND  no such function (or it was deleted meanwhile);
 *   CP_EINVAL     malformed name, or a qualifier other than $LATEST;
 *   CP_ETOOBIG    payload larger than CP_LAMBDA_MAX_REQUEST;
 *   CP_ELIMIT     all `concurrency` slots stayed busy for queue_timeout_ms (TooManyRequests);
 *   CP_ECLOSED    shutting down, or not attached to a server yet.
 */
int cp_lambda_invoke(cp_lambda *l, const char *function_name_or_arn, cp_slice payload,
                     cp_buf *response, int *function_error, cp_err *err);

/*
 * Invoke asynchronously (InvocationType Event): check the function exists and the payload
 * fits CP_LAMBDA_MAX_ASYNC_REQUEST, then run it on a background thread, waiting for a slot as
 * long as needed (asynchronous invocations are queued rather than throttled). The result is
 * discarded; function errors are not retried. Errors as cp_lambda_invoke, before anything
 * runs.
 */
int cp_lambda_invoke_async(cp_lambda *l, const char *function_name_or_arn, cp_slice payload,
                           cp_err *err);

/* Check that a function exists (Invoke with InvocationType DryRun). CP_ENOTFOUND, CP_EINVAL. */
int cp_lambda_exists(cp_lambda *l, const char *function_name_or_arn, cp_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Errors and observability                                                                    */

/* The Lambda error code for a failed call of this module ("ResourceNotFoundException",
 * "InvalidParameterValueException", ...). Mostly from err->code; CP_EINVAL messages carry
 * AWS's fixed prefixes, which pick ValidationException ("1 validation error detected") and
 * InvalidRequestContentException ("Could not parse request body"). Never NULL. */
const char *cp_lambda_error_type(const cp_err *err);
/* The HTTP status Lambda answers with for that code (400 for unknown codes). */
int cp_lambda_error_status(const char *type);

typedef struct cp_lambda_fn_stats {
    unsigned live;        /* instances started and not dead */
    unsigned busy;        /* instances running an invocation */
    unsigned in_flight;   /* admitted invocations (queued + running) */
    unsigned queued;      /* admitted invocations waiting for an instance */
    uint64_t started;     /* instances started since open */
    uint64_t exited;      /* instances reaped since open (any cause) */
    uint64_t timeouts;    /* invocations that hit Timeout */
    uint64_t throttled;   /* invocations refused with TooManyRequests */
    uint64_t invocations; /* invocations completed (including function errors) */
} cp_lambda_fn_stats;

/* A snapshot of one function's pool. CP_ENOTFOUND. */
int cp_lambda_stats(cp_lambda *l, const char *name, cp_lambda_fn_stats *out, cp_err *err);

#endif
