/* SPDX-License-Identifier: MIT */
/*
 * Private to src/lambda. First the Runtime API side of the pool, which api.c calls: what the
 * HTTP handlers of /2018-06-01/runtime/... call on behalf of a runtime process. An instance is
 * named by the token in its AWS_LAMBDA_RUNTIME_API path prefix (see lambda.h); an empty token means
 * the request came without a prefix, which only /response and /error accept.
 */
#ifndef CP_LAMBDA_INT_H
#define CP_LAMBDA_INT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/err.h"
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

/* ------------------------------------------------------------------------------------------ */
/* Internals shared by lambda.c (the registry) and pool.c (the process pools)                  */

/*
 * Locking: one mutex (l->mu) guards the registry, every pool, every instance and every
 * invocation. Nothing slow runs under it except posix_spawn (a vfork) and small copies;
 * package extraction and payload copies happen outside. Create and delete are serialised by
 * l->admin so the directory work can run without l->mu.
 */

typedef struct lam_kv {
    char *k, *v;
} lam_kv;

typedef struct lam_inv lam_inv;
typedef struct lam_inst lam_inst;

typedef struct lam_fn {
    /* Configuration: immutable once the function is in the registry. */
    char name[72];
    char *runtime, *role, *handler, *description, *arch, *sha256, *revision;
    char last_modified[40];
    int timeout_s, memory_mb;
    uint64_t code_size;
    lam_kv *env;
    size_t nenv;
    lam_kv *tags;
    size_t ntags;
    char *dir; /* <data>/lambda/<name> */
    /* Pool state, under l->mu. */
    int refs;    /* registry + invokers + instances + pollers */
    int deleted; /* out of the registry: fail fast, start nothing */
    lam_inv *q_head, *q_tail;
    unsigned queued, in_flight, live, busy;
    pthread_cond_t work; /* pollers: the queue grew (or the instance died / we close) */
    pthread_cond_t slot; /* invokers: in_flight dropped below the limit */
    cp_lambda_fn_stats st;
    int64_t last_warn_ns; /* warn_down() rate limit */
} lam_fn;

enum { INV_QUEUED, INV_RUNNING, INV_DONE };

struct lam_inv {
    char id[40];
    lam_fn *fn;
    cp_buf payload;
    int state;
    int refs;            /* the invoker, plus a poller copying the payload out */
    lam_inst *inst;      /* RUNNING: the instance working on it */
    int64_t deadline_ns; /* QUEUED: give up waiting; RUNNING: the function's Timeout */
    int64_t deadline_ms; /* RUNNING: wall-clock deadline told to the runtime */
    char trace[100];     /* RUNNING: Lambda-Runtime-Trace-Id */
    cp_buf result;       /* DONE: response or error JSON */
    int function_error;
    int rc; /* DONE: CP_OK, or why nothing ran (err) */
    cp_err err;
    pthread_cond_t done;
    lam_inv *next; /* queue link */
};

enum { INST_STARTING, INST_READY, INST_BUSY, INST_DEAD };

/* Why an instance went down: decides what its invocation (or a waiting one) is told. */
enum { DOWN_EXIT, DOWN_TIMEOUT, DOWN_INIT_TIMEOUT, DOWN_INIT_ERROR, DOWN_IDLE, DOWN_STOP };

struct lam_inst {
    lam_fn *fn;
    char token[40];
    pid_t pid;
    int pidfd; /* -1 when pidfd_open is unavailable: the reaper polls instead */
    int state;
    lam_inv *inv;      /* BUSY */
    int64_t since_ns;  /* STARTING: spawned at; READY: idle since */
    unsigned poll_gen; /* bumped by each /next: an older, abandoned poll steps aside */
    cp_buf init_error; /* the body posted to /init/error */
    lam_inst *next;
};

struct cp_lambda {
    char *data_dir, *root, *region, *path_env;
    unsigned concurrency, queue_timeout_ms, init_timeout_ms, idle_timeout_ms;
    uint64_t max_unzipped;
    pthread_mutex_t mu;
    pthread_mutex_t admin; /* serialises create and delete */
    pthread_cond_t idle;   /* close(): active calls and async jobs drained */
    char runtime_host[80]; /* "127.0.0.1:<port>", empty until attached */
    const cp_http_server *srv;
    const cp_aws_router *auth; /* api.c's SigV4 verifier, or NULL */
    lam_fn **fns;              /* sorted by name */
    size_t nfns, capfns;
    lam_inst *insts;
    int closing;            /* shutdown began: new work is refused */
    int shut;               /* shutdown finished */
    unsigned active;        /* threads inside invoke / runtime calls */
    unsigned async_running; /* background Event invocations */
    int wake_fd;            /* eventfd: the reaper re-plans */
    pthread_t reaper;
    int reaper_started;
};

/* lambda.c */

/* A condition variable whose timed waits use CLOCK_MONOTONIC. */
void cp__lambda_cond_init(pthread_cond_t *c);

/* n random bytes from getrandom(). */
void cp__lambda_random_bytes(unsigned char *p, size_t n);

/* snprintf for paths: CP_ETOOBIG instead of a silently truncated name. */
int cp__lambda_pathf(char *out, size_t cap, const char *fmt, ...) CP_PRINTF(3, 4);

/* CP_ENOTFOUND with Lambda's "Function not found: <arn>[:qualifier]" message. */
int cp__lambda_not_found(const cp_lambda *l, const char *name, const char *qualifier, cp_err *err);

/* Any accepted FunctionName form (name, name:qualifier, full or partial ARN) into the bare
 * name; CP_EINVAL for a malformed one, CP_ENOTFOUND for a qualifier other than $LATEST. */
int cp__lambda_parse_name(const cp_lambda *l, const char *in, char out[72], cp_err *err);

/* Registry lookup under l->mu; NULL when absent. The function is borrowed: take a reference
 * (fn->refs++) to keep it past an unlock. */
lam_fn *cp__lambda_fn_lookup(const cp_lambda *l, const char *name);

/* Drop a reference under l->mu; the last one frees. */
void cp__lambda_fn_unref(lam_fn *fn);

/* pool.c */

/* Make the reaper re-plan its deadlines. */
void cp__lambda_wake_reaper(cp_lambda *l);

/* Every queued and running invocation of fn ends with rc (delete, shutdown). Under l->mu. */
void cp__lambda_fail_all(cp_lambda *l, lam_fn *fn, int rc, const cp_err *why);

/* An instance stops counting (under l->mu); `why` is a DOWN_* cause, the exit arguments are
 * the wait status for DOWN_EXIT. */
void cp__lambda_inst_down(cp_lambda *l, lam_inst *in, int why, int exit_code, int exit_status);

/* The reaper thread (pthread_create's start routine; the argument is the cp_lambda). */
void *cp__lambda_reaper_main(void *arg);

#endif
