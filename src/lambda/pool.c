/* SPDX-License-Identifier: MIT */
/*
 * The process pools of the Lambda registry (lambda.c). Each function has a FIFO of
 * invocations and a set of bootstrap processes (instances) that take work through the Runtime
 * API (lambda_int.h). One reaper thread watches every child through a pidfd and enforces the
 * deadlines: Timeout, init timeout, idle timeout and the queue wait of admitted invocations.
 * Invoke admits and queues an invocation; the Runtime API calls hand it to an instance and
 * end it. Locking: see struct cp_lambda in lambda_int.h.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "lambda/lambda_int.h"

#define NS_PER_MS        1000000LL
#define POLL_SLICE_MS    250 /* long polls re-check the server's stopping flag this often */
#define LOG_ROTATE_BYTES (16u << 20)

/* ------------------------------------------------------------------------------------------ */
/* Small utilities                                                                             */

/* Wait until `deadline_ns` (CLOCK_MONOTONIC); returns ETIMEDOUT once it passed. */
static int cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu, int64_t deadline_ns)
{
    struct timespec ts = {(time_t) (deadline_ns / 1000000000), (long) (deadline_ns % 1000000000)};
    return pthread_cond_timedwait(c, mu, &ts);
}

void cp__lambda_wake_reaper(cp_lambda *l)
{
    uint64_t one = 1;
    ssize_t w = write(l->wake_fd, &one, sizeof(one));
    (void) w; /* EAGAIN means a wake-up is already pending */
}

/* {"errorMessage":"...","errorType":"..."}: the shape of every function error Lambda makes. */
static void error_json(cp_buf *out, const char *type, const char *fmt, ...) CP_PRINTF(3, 4);
static void error_json(cp_buf *out, const char *type, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cp_buf_reset(out);
    cp_buf_putc(out, '{');
    cp_json_put_kv_str(out, "errorMessage", cp_slice_str(msg));
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "errorType", cp_slice_str(type));
    cp_buf_putc(out, '}');
}

/* Calls from other threads register, so close() can wait for them to leave. */
static int enter(cp_lambda *l, cp_err *err)
{
    if (l->closing) {
        return cp_err_set(err, CP_ECLOSED, "changepipe is shutting down");
    }
    l->active++;
    return CP_OK;
}

static void leave(cp_lambda *l)
{
    CP_ASSERT(l->active > 0);
    if (--l->active == 0 && l->closing) {
        pthread_cond_broadcast(&l->idle);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Invocations                                                                                 */

static lam_inv *inv_new(lam_fn *fn, cp_slice payload)
{
    lam_inv *inv = cp_calloc(1, sizeof(*inv));
    cp__lambda_uuid(inv->id);
    inv->fn = fn;
    inv->refs = 1;
    cp_buf_append(&inv->payload, payload.p, payload.len);
    cp__lambda_cond_init(&inv->done);
    return inv;
}

static void inv_unref(lam_inv *inv)
{
    CP_ASSERT(inv->refs > 0);
    if (--inv->refs == 0) {
        cp_buf_free(&inv->payload);
        cp_buf_free(&inv->result);
        pthread_cond_destroy(&inv->done);
        cp_free(inv);
    }
}

static void queue_unlink(lam_fn *fn, lam_inv *inv)
{
    lam_inv **pp = &fn->q_head, *prev = NULL;
    while (*pp && *pp != inv) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    CP_ASSERT(*pp == inv);
    *pp = inv->next;
    if (fn->q_tail == inv) {
        fn->q_tail = prev;
    }
    inv->next = NULL;
    fn->queued--;
}

/*
 * End an invocation (under l->mu): `result` (may be NULL) is moved into it. Frees its
 * concurrency slot and, when an instance was running it and is still alive, makes that
 * instance idle again. Idempotent: the first ending wins (a response racing a timeout).
 */
static void inv_complete(lam_inv *inv, cp_buf *result, int function_error, int rc,
                         const cp_err *why)
{
    if (inv->state == INV_DONE) {
        return;
    }
    lam_fn *fn = inv->fn;
    if (inv->state == INV_QUEUED) {
        queue_unlink(fn, inv);
    }
    lam_inst *in = inv->inst;
    if (in && in->inv == inv) {
        in->inv = NULL;
        if (in->state == INST_BUSY) {
            in->state = INST_READY;
            in->since_ns = cp_clock_mono_ns();
            fn->busy--;
        }
    }
    inv->inst = NULL;
    if (result) {
        cp_buf tmp = inv->result;
        inv->result = *result;
        *result = tmp;
    }
    inv->function_error = function_error;
    inv->rc = rc;
    if (why) {
        inv->err = *why;
    }
    inv->state = INV_DONE;
    fn->in_flight--;
    if (rc == CP_OK) {
        fn->st.invocations++;
    }
    pthread_cond_broadcast(&inv->done);
    pthread_cond_signal(&fn->slot);
}

/* Complete with a function error built by error_json. */
static void inv_fail_function(lam_inv *inv, const char *type, const char *fmt, ...) CP_PRINTF(3, 4);
static void inv_fail_function(lam_inv *inv, const char *type, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cp_buf body = CP_BUF_INIT;
    error_json(&body, type, "%s", msg);
    inv_complete(inv, &body, 1, CP_OK, NULL);
    cp_buf_free(&body);
}

static void inv_fail(lam_inv *inv, int rc, const cp_err *why)
{
    inv_complete(inv, NULL, 0, rc, why);
}

/* Every queued and running invocation of fn ends with rc (delete, shutdown). */
void cp__lambda_fail_all(cp_lambda *l, lam_fn *fn, int rc, const cp_err *why)
{
    while (fn->q_head) {
        inv_fail(fn->q_head, rc, why);
    }
    for (lam_inst *in = l->insts; in; in = in->next) {
        if (in->fn == fn && in->inv) {
            inv_fail(in->inv, rc, why);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Instances                                                                                   */

static void status_text(int code, int status, char *out, size_t cap)
{
    if (code == CLD_EXITED) {
        if (status == 0) {
            snprintf(out, cap, "Runtime exited without providing a reason");
        } else {
            snprintf(out, cap, "Runtime exited with error: exit status %d", status);
        }
        return;
    }
    char sig[64];
    snprintf(sig, sizeof(sig), "%s", strsignal(status));
    for (char *c = sig; *c; c++) {
        *c = (char) (*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    }
    snprintf(out, cap, "Runtime exited with error: signal: %s", sig);
}

static void ensure_capacity(cp_lambda *l, lam_fn *fn);

/* The pool is the only place that sees a runtime fail, so it tells the operator, at most once
 * per function every WARN_INTERVAL_S: a bootstrap that dies at every start must not flood the
 * log. The function's own output is in its function.log. */
#define WARN_INTERVAL_S 10
static void warn_down(lam_fn *fn, const lam_inst *in, int was, int why, const char *text)
{
    if (why == DOWN_IDLE || why == DOWN_STOP || (why == DOWN_EXIT && was == INST_READY)) {
        return;
    }
    int64_t now = cp_clock_mono_ns();
    if (fn->last_warn_ns && now - fn->last_warn_ns < (int64_t) WARN_INTERVAL_S * 1000000000) {
        return;
    }
    fn->last_warn_ns = now;
    const char *what = why == DOWN_TIMEOUT        ? "timed out; instance killed"
                       : why == DOWN_INIT_TIMEOUT ? "never asked for work; instance killed"
                       : why == DOWN_INIT_ERROR   ? "reported an init error"
                                                  : "exited";
    CP_LOG_WARN("lambda", "function %s: runtime pid %d %s%s%s (output: %s/function.log)", fn->name,
                (int) in->pid, what, text[0] ? ": " : "", text, fn->dir);
}

/*
 * An instance stops counting (under l->mu): it died by itself (DOWN_EXIT with its wait
 * status) or we decided to stop it, in which case its process group gets SIGKILL. Its running
 * invocation fails with what Lambda reports for that cause; an instance that dies before its
 * first /next takes a waiting invocation down with its init failure, the way an invoke that
 * triggered a failing cold start gets the init error. The process is reaped later by the
 * reaper, which owns every waitpid.
 */
void cp__lambda_inst_down(cp_lambda *l, lam_inst *in, int why, int exit_code, int exit_status)
{
    if (in->state == INST_DEAD) {
        return;
    }
    lam_fn *fn = in->fn;
    int was = in->state;
    in->state = INST_DEAD;
    fn->live--;
    if (was == INST_BUSY) {
        fn->busy--;
    }
    /* The group id is the leader's pid, which stays reserved until the reaper collects the
     * zombie, so this can never hit an unrelated process group. */
    kill(-in->pid, SIGKILL);
    char text[160];
    if (why == DOWN_EXIT) {
        status_text(exit_code, exit_status, text, sizeof(text));
    }
    if (was == INST_BUSY && in->inv) {
        lam_inv *inv = in->inv;
        if (why == DOWN_TIMEOUT) {
            fn->st.timeouts++;
            inv_fail_function(inv, "Sandbox.Timedout",
                              "RequestId: %s Error: Task timed out after %d.00 seconds", inv->id,
                              fn->timeout_s);
        } else if (why == DOWN_EXIT) {
            inv_fail_function(inv, "Runtime.ExitError", "RequestId: %s Error: %s", inv->id, text);
        }
    } else if (was == INST_STARTING && fn->q_head && why != DOWN_STOP) {
        lam_inv *inv = fn->q_head;
        if (why == DOWN_INIT_ERROR) {
            cp_buf body = in->init_error;
            in->init_error = (cp_buf) CP_BUF_INIT;
            inv_complete(inv, &body, 1, CP_OK, NULL);
            cp_buf_free(&body);
        } else if (why == DOWN_INIT_TIMEOUT) {
            inv_fail_function(inv, "Sandbox.Timedout",
                              "RequestId: %s Error: Runtime init timed out after %u ms "
                              "(the bootstrap never asked for an invocation)",
                              inv->id, l->init_timeout_ms);
        } else if (why == DOWN_EXIT) {
            inv_fail_function(inv, "Runtime.ExitError", "RequestId: %s Error: %s", inv->id, text);
        }
    }
    warn_down(fn, in, was, why, why == DOWN_EXIT ? text : "");
    pthread_cond_broadcast(&fn->work);
    ensure_capacity(l, fn);
    cp__lambda_wake_reaper(l);
}

static lam_inst *inst_by_token(cp_lambda *l, cp_slice token)
{
    if (token.len != 32) {
        return NULL;
    }
    for (lam_inst *in = l->insts; in; in = in->next) {
        if (memcmp(in->token, token.p, 32) == 0) {
            return in;
        }
    }
    return NULL;
}

/* The environment of a bootstrap: Lambda's defined runtime variables, then the function's
 * own. Nothing is inherited from the server (its credentials stay private) except PATH. */
static char **build_env(const cp_lambda *l, const lam_fn *fn, const char *code, const char *token)
{
    size_t n = 0, cap = 24 + fn->nenv;
    char **envp = cp_calloc(cap + 1, sizeof(char *));
    char date[16];
    time_t now = (time_t) (cp_clock_now_ms() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%Y/%m/%d", &tm);
#define ENVF(...)                                                                                  \
    do {                                                                                           \
        cp_buf b = CP_BUF_INIT;                                                                    \
        cp_buf_printf(&b, __VA_ARGS__);                                                            \
        envp[n++] = b.p;                                                                           \
    } while (0)
    ENVF("PATH=%s", l->path_env);
    ENVF("LANG=en_US.UTF-8");
    ENVF("TZ=:UTC");
    ENVF("LD_LIBRARY_PATH=%s:%s/lib", code, code);
    ENVF("LAMBDA_TASK_ROOT=%s", code);
    ENVF("LAMBDA_RUNTIME_DIR=%s", code);
    ENVF("_HANDLER=%s", fn->handler);
    ENVF("AWS_LAMBDA_RUNTIME_API=%s" CP__LAMBDA_RT_PREFIX "/%s", l->runtime_host, token);
    ENVF("AWS_LAMBDA_FUNCTION_NAME=%s", fn->name);
    ENVF("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", fn->memory_mb);
    ENVF("AWS_LAMBDA_FUNCTION_VERSION=$LATEST");
    ENVF("AWS_LAMBDA_INITIALIZATION_TYPE=on-demand");
    ENVF("AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/%s", fn->name);
    ENVF("AWS_LAMBDA_LOG_STREAM_NAME=%s/[$LATEST]%s", date, token);
    ENVF("AWS_REGION=%s", l->region);
    ENVF("AWS_DEFAULT_REGION=%s", l->region);
    for (size_t i = 0; i < fn->nenv; i++) {
        ENVF("%s=%s", fn->env[i].k, fn->env[i].v);
    }
#undef ENVF
    CP_ASSERT(n <= cap);
    return envp;
}

static void free_env(char **envp)
{
    for (char **e = envp; *e; e++) {
        cp_free(*e);
    }
    cp_free(envp);
}

/* Start one instance of fn (under l->mu). The child gets its own process group, default
 * signal dispositions, stdin from /dev/null, stdout/stderr appended to function.log and no
 * other descriptor of ours. */
static int spawn_locked(cp_lambda *l, lam_fn *fn, cp_err *err)
{
    unsigned char rnd[16];
    cp__lambda_random_bytes(rnd, sizeof(rnd));
    char token[40];
    cp_hex(rnd, sizeof(rnd), token);
    char code[PATH_MAX], boot[PATH_MAX], log[PATH_MAX], old[PATH_MAX];
    (void) cp__lambda_pathf(code, sizeof(code), "%s/code", fn->dir);
    (void) cp__lambda_pathf(boot, sizeof(boot), "%s/bootstrap", code);
    (void) cp__lambda_pathf(log, sizeof(log), "%s/function.log", fn->dir);
    struct stat sb;
    if (stat(log, &sb) == 0 && (uint64_t) sb.st_size > LOG_ROTATE_BYTES) {
        (void) cp__lambda_pathf(old, sizeof(old), "%s.1", log);
        (void) rename(log, old);
    }
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
        return cp_err_set(err, -errno, "cannot open the function log");
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, logfd, 1);
    posix_spawn_file_actions_adddup2(&fa, logfd, 2);
    posix_spawn_file_actions_addchdir_np(&fa, code);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    char **envp = build_env(l, fn, code, token);
    char *argv[] = {boot, NULL};
    pid_t pid = 0;
    int rc = posix_spawn(&pid, boot, &fa, &at, argv, envp);
    free_env(envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(logfd);
    if (rc != 0) {
        return cp_err_set(err, -rc, "fork/exec bootstrap: %s", strerror(rc));
    }
    lam_inst *in = cp_calloc(1, sizeof(*in));
    in->fn = fn;
    memcpy(in->token, token, 33);
    in->pid = pid;
    in->pidfd = pidfd_open(pid, 0);
    in->state = INST_STARTING;
    in->since_ns = cp_clock_mono_ns();
    in->next = l->insts;
    l->insts = in;
    fn->refs++;
    fn->live++;
    fn->st.started++;
    cp__lambda_wake_reaper(l);
    return CP_OK;
}

/*
 * Start instances while queued invocations outnumber the idle ones and the function is under
 * its limit. Admission keeps in_flight <= concurrency, so a queued invocation always has an
 * instance that is idle, starting, or can be started.
 */
static void ensure_capacity(cp_lambda *l, lam_fn *fn)
{
    while (!l->closing && !fn->deleted && l->runtime_host[0] && fn->q_head &&
           fn->queued > fn->live - fn->busy && fn->live < l->concurrency) {
        cp_err e = {0};
        if (spawn_locked(l, fn, &e) != CP_OK) {
            int64_t now = cp_clock_mono_ns();
            if (!fn->last_warn_ns ||
                now - fn->last_warn_ns >= (int64_t) WARN_INTERVAL_S * 1000000000) {
                fn->last_warn_ns = now;
                CP_LOG_WARN("lambda", "function %s: cannot start the runtime: %s", fn->name, e.msg);
            }
            /* Lambda reports a bootstrap it cannot run as Runtime.InvalidEntrypoint. */
            inv_fail_function(fn->q_head, "Runtime.InvalidEntrypoint", "RequestId: %s Error: %s",
                              fn->q_head->id, e.msg);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The reaper                                                                                  */

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Enforce every deadline that passed (under l->mu); returns the next one. */
static int64_t enforce_deadlines(cp_lambda *l, int64_t now)
{
    int64_t next = now + 60000 * NS_PER_MS;
    for (lam_inst *in = l->insts; in; in = in->next) {
        int64_t d;
        if (in->state == INST_BUSY && in->inv) {
            d = in->inv->deadline_ns;
            if (d <= now) {
                cp__lambda_inst_down(l, in, DOWN_TIMEOUT, 0, 0);
                continue;
            }
        } else if (in->state == INST_STARTING) {
            d = in->since_ns + (int64_t) l->init_timeout_ms * NS_PER_MS;
            if (d <= now) {
                cp__lambda_inst_down(l, in, DOWN_INIT_TIMEOUT, 0, 0);
                continue;
            }
        } else if (in->state == INST_READY) {
            d = in->since_ns + (int64_t) l->idle_timeout_ms * NS_PER_MS;
            if (d <= now) {
                cp__lambda_inst_down(l, in, DOWN_IDLE, 0, 0);
                continue;
            }
        } else {
            continue;
        }
        next = min64(next, d);
    }
    for (size_t i = 0; i < l->nfns; i++) {
        lam_fn *fn = l->fns[i];
        for (lam_inv *inv = fn->q_head; inv;) {
            lam_inv *nx = inv->next;
            if (inv->deadline_ns <= now) {
                fn->st.timeouts++;
                inv_fail_function(inv, "Sandbox.Timedout",
                                  "RequestId: %s Error: Task timed out after %d.00 seconds "
                                  "(no instance became ready)",
                                  inv->id, fn->timeout_s);
            } else {
                next = min64(next, inv->deadline_ns);
            }
            inv = nx;
        }
    }
    return next;
}

/* Collect instances whose process ended (under l->mu). waitid(WNOWAIT) first, so the group
 * can be killed while the leader's pid is still reserved, then the real reap. */
static void reap_exited(cp_lambda *l)
{
    for (lam_inst **pp = &l->insts; *pp;) {
        lam_inst *in = *pp;
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t) in->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
            si.si_pid != in->pid) {
            pp = &in->next;
            continue;
        }
        cp__lambda_inst_down(l, in, DOWN_EXIT, si.si_code, si.si_status);
        kill(-in->pid, SIGKILL);
        while (waitpid(in->pid, NULL, 0) < 0 && errno == EINTR) {
        }
        *pp = in->next;
        lam_fn *fn = in->fn;
        fn->st.exited++;
        if (in->pidfd >= 0) {
            close(in->pidfd);
        }
        cp_buf_free(&in->init_error);
        cp_free(in);
        cp__lambda_fn_unref(fn);
    }
}

void *cp__lambda_reaper_main(void *arg)
{
    cp_lambda *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        reap_exited(l);
        int64_t now = cp_clock_mono_ns();
        int64_t next = enforce_deadlines(l, now);
        if (l->closing && !l->insts) {
            break;
        }
        size_t n = 1, cap = 1;
        int fallback = 0;
        for (lam_inst *in = l->insts; in; in = in->next) {
            cap++;
        }
        struct pollfd *fds = cp_calloc(cap, sizeof(*fds));
        fds[0] = (struct pollfd){l->wake_fd, POLLIN, 0};
        for (lam_inst *in = l->insts; in; in = in->next) {
            if (in->pidfd >= 0) {
                fds[n++] = (struct pollfd){in->pidfd, POLLIN, 0};
            } else {
                fallback = 1;
            }
        }
        int64_t wait_ms = (next - now + NS_PER_MS - 1) / NS_PER_MS;
        if (fallback || (l->closing && l->insts)) {
            wait_ms = min64(wait_ms, 20); /* no pidfd for some child: poll its status */
        }
        pthread_mutex_unlock(&l->mu);
        (void) poll(fds, (nfds_t) n, (int) (wait_ms < 1 ? 1 : wait_ms));
        uint64_t drain;
        ssize_t r = read(l->wake_fd, &drain, sizeof(drain));
        (void) r;
        cp_free(fds);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Invoke                                                                                      */

int cp_lambda_invoke(cp_lambda *l, const char *function_name_or_arn, cp_slice payload,
                     cp_buf *response, int *function_error, cp_err *err)
{
    *function_error = 0;
    if (payload.len > CP_LAMBDA_MAX_REQUEST) {
        return cp_err_set(err, CP_ETOOBIG,
                          "Request must be smaller than %u bytes for the InvokeFunction "
                          "operation",
                          CP_LAMBDA_MAX_REQUEST);
    }
    char nm[72];
    int rc = cp__lambda_parse_name(l, function_name_or_arn, nm, err);
    if (rc != CP_OK) {
        return rc;
    }
    /* The payload copy happens before taking the lock: up to 6 MB. */
    lam_inv *inv = inv_new(NULL, payload);
    pthread_mutex_lock(&l->mu);
    if ((rc = enter(l, err)) != CP_OK) {
        pthread_mutex_unlock(&l->mu);
        inv_unref(inv);
        return rc;
    }
    lam_fn *fn = cp__lambda_fn_lookup(l, nm);
    if (!fn) {
        rc = cp__lambda_not_found(l, nm, NULL, err);
    } else if (!l->runtime_host[0]) {
        rc = cp_err_set(err, CP_ECLOSED, "the Lambda Runtime API is not being served yet");
    }
    if (rc != CP_OK || !fn) {
        leave(l);
        pthread_mutex_unlock(&l->mu);
        inv_unref(inv);
        return rc;
    }
    fn->refs++;
    inv->fn = fn;
    /* Admission: Lambda's concurrency counts invocations in flight, so a full function
     * throttles (TooManyRequestsException, "Rate Exceeded.") after a short wait. */
    int64_t slot_deadline = cp_clock_mono_ns() + (int64_t) l->queue_timeout_ms * NS_PER_MS;
    while (fn->in_flight >= l->concurrency && !l->closing && !fn->deleted) {
        if (cond_wait_until(&fn->slot, &l->mu, slot_deadline) == ETIMEDOUT &&
            fn->in_flight >= l->concurrency) {
            fn->st.throttled++;
            rc = cp_err_set(err, CP_ELIMIT, "Rate Exceeded.");
            break;
        }
    }
    if (rc == CP_OK && l->closing) {
        rc = cp_err_set(err, CP_ECLOSED, "changepipe is shutting down");
    } else if (rc == CP_OK && fn->deleted) {
        rc = cp__lambda_not_found(l, nm, NULL, err);
    }
    if (rc == CP_OK) {
        int64_t now = cp_clock_mono_ns();
        inv->state = INV_QUEUED;
        inv->deadline_ns =
            now + ((int64_t) l->init_timeout_ms + (int64_t) fn->timeout_s * 1000) * NS_PER_MS;
        if (fn->q_tail) {
            fn->q_tail->next = inv;
        } else {
            fn->q_head = inv;
        }
        fn->q_tail = inv;
        fn->queued++;
        fn->in_flight++;
        ensure_capacity(l, fn);
        pthread_cond_broadcast(&fn->work);
        cp__lambda_wake_reaper(l);
        while (inv->state != INV_DONE) {
            pthread_cond_wait(&inv->done, &l->mu);
        }
        rc = inv->rc;
        if (rc != CP_OK && err) {
            *err = inv->err;
        }
    }
    cp_buf result = inv->result;
    inv->result = (cp_buf) CP_BUF_INIT;
    *function_error = rc == CP_OK ? inv->function_error : 0;
    inv_unref(inv);
    cp__lambda_fn_unref(fn);
    leave(l);
    pthread_mutex_unlock(&l->mu);
    if (rc == CP_OK) {
        if (response->len == 0 && response->cap == 0) {
            *response = result;
            result = (cp_buf) CP_BUF_INIT;
            if (!response->p) {
                cp_buf_reserve(response, 0);
            }
        } else {
            cp_buf_append(response, result.p, result.len);
        }
    }
    cp_buf_free(&result);
    return rc;
}

typedef struct async_job {
    cp_lambda *l;
    char name[72];
    cp_buf payload;
} async_job;

static void *async_main(void *arg)
{
    async_job *job = arg;
    cp_lambda *l = job->l;
    for (;;) {
        cp_buf out = CP_BUF_INIT;
        int fe = 0;
        cp_err e = {0};
        int rc = cp_lambda_invoke(l, job->name, cp_buf_slice(&job->payload), &out, &fe, &e);
        cp_buf_free(&out);
        /* Lambda's event queue holds throttled events until capacity frees up; each retry
         * here already waited queue_timeout_ms for a slot. */
        if (rc != CP_ELIMIT) {
            break;
        }
        pthread_mutex_lock(&l->mu);
        int closing = l->closing;
        pthread_mutex_unlock(&l->mu);
        if (closing) {
            break;
        }
    }
    cp_buf_free(&job->payload);
    cp_free(job);
    pthread_mutex_lock(&l->mu);
    if (--l->async_running == 0 && l->closing) {
        pthread_cond_broadcast(&l->idle);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int cp_lambda_invoke_async(cp_lambda *l, const char *function_name_or_arn, cp_slice payload,
                           cp_err *err)
{
    if (payload.len > CP_LAMBDA_MAX_ASYNC_REQUEST) {
        return cp_err_set(err, CP_ETOOBIG,
                          "Request must be smaller than %u bytes for the InvokeFunction "
                          "operation",
                          CP_LAMBDA_MAX_ASYNC_REQUEST);
    }
    async_job *job = cp_calloc(1, sizeof(*job));
    job->l = l;
    int rc = cp__lambda_parse_name(l, function_name_or_arn, job->name, err);
    if (rc != CP_OK) {
        cp_free(job);
        return rc;
    }
    pthread_mutex_lock(&l->mu);
    if (l->closing) {
        rc = cp_err_set(err, CP_ECLOSED, "changepipe is shutting down");
    } else if (!cp__lambda_fn_lookup(l, job->name)) {
        rc = cp__lambda_not_found(l, job->name, NULL, err);
    } else {
        l->async_running++;
    }
    pthread_mutex_unlock(&l->mu);
    if (rc != CP_OK) {
        cp_free(job);
        return rc;
    }
    cp_buf_append(&job->payload, payload.p, payload.len);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    rc = -pthread_create(&t, &at, async_main, job);
    pthread_attr_destroy(&at);
    if (rc != CP_OK) {
        cp_buf_free(&job->payload);
        cp_free(job);
        pthread_mutex_lock(&l->mu);
        if (--l->async_running == 0 && l->closing) {
            pthread_cond_broadcast(&l->idle);
        }
        pthread_mutex_unlock(&l->mu);
        return cp_err_set(err, rc, "cannot start an asynchronous invocation");
    }
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Runtime API                                                                                 */

static int server_stopping(const cp_lambda *l)
{
    return l->srv && cp_http_server_stopping(l->srv);
}

int cp__lambda_rt_next(cp_lambda *l, cp_slice token, cp__lambda_event *ev, cp_err *err)
{
    pthread_mutex_lock(&l->mu);
    int rc = enter(l, err);
    if (rc != CP_OK) {
        pthread_mutex_unlock(&l->mu);
        return rc;
    }
    lam_inst *in = inst_by_token(l, token);
    lam_fn *fn = in ? in->fn : NULL;
    lam_inv *inv = NULL;
    if (!in) {
        rc = cp_err_set(err, CP_ENOTFOUND, "unknown runtime instance");
    } else if (in->state == INST_BUSY) {
        rc = cp_err_set(err, CP_EINUSE,
                        "State transition from Invoke to Ready failed: invocation %s has no "
                        "response yet",
                        in->inv ? in->inv->id : "?");
    } else if (in->state == INST_DEAD) {
        rc = cp_err_set(err, CP_ECLOSED, "this runtime instance was stopped");
    }
    if (rc == CP_OK && in && fn) {
        fn->refs++;
        if (in->state == INST_STARTING) {
            in->state = INST_READY; /* the first /next ends the init phase */
            in->since_ns = cp_clock_mono_ns();
            cp__lambda_wake_reaper(l);
        }
        /* A runtime whose HTTP client gave up on a long poll and asked again must not have
         * its next event handed to the abandoned connection: the newest poll wins. */
        unsigned gen = ++in->poll_gen;
        int64_t slice = (int64_t) POLL_SLICE_MS * NS_PER_MS;
        for (;;) {
            /* Re-find the instance after every wait: it may have been reaped meanwhile. */
            in = inst_by_token(l, token);
            if (l->closing || server_stopping(l)) {
                rc = cp_err_set(err, CP_ECLOSED, "changepipe is shutting down");
                break;
            }
            if (!in || in->state == INST_DEAD) {
                rc = cp_err_set(err, CP_ECLOSED, "this runtime instance was stopped");
                break;
            }
            if (in->poll_gen != gen) {
                rc = cp_err_set(err, CP_EINUSE, "a newer /invocation/next replaced this one");
                break;
            }
            if (in->state == INST_READY && fn->q_head) {
                inv = fn->q_head;
                queue_unlink(fn, inv);
                inv->state = INV_RUNNING;
                inv->inst = in;
                inv->refs++;
                in->inv = inv;
                in->state = INST_BUSY;
                fn->busy++;
                /* Timeout counts from the moment the runtime has the event. */
                inv->deadline_ns = cp_clock_mono_ns() + (int64_t) fn->timeout_s * 1000 * NS_PER_MS;
                inv->deadline_ms = cp_clock_now_ms() + (int64_t) fn->timeout_s * 1000;
                /* An X-Ray style id, as Lambda always sends one (Sampled=0: no tracing). */
                unsigned char r[20];
                cp__lambda_random_bytes(r, sizeof(r));
                char hex[41];
                cp_hex(r, sizeof(r), hex);
                snprintf(inv->trace, sizeof(inv->trace), "Root=1-%08x-%.24s;Parent=%.16s;Sampled=0",
                         (unsigned) (cp_clock_now_ms() / 1000), hex, hex + 24);
                break;
            }
            cond_wait_until(&fn->work, &l->mu, cp_clock_mono_ns() + slice);
        }
        cp__lambda_fn_unref(fn);
    }
    if (inv) {
        snprintf(ev->request_id, sizeof(ev->request_id), "%s", inv->id);
        ev->deadline_ms = inv->deadline_ms;
        snprintf(ev->trace_id, sizeof(ev->trace_id), "%s", inv->trace);
        snprintf(ev->function_arn, sizeof(ev->function_arn), "arn:aws:lambda:%s:%s:function:%s",
                 l->region, CP_LAMBDA_ACCOUNT, inv->fn->name);
        cp__lambda_wake_reaper(l);
    }
    leave(l);
    pthread_mutex_unlock(&l->mu);
    if (inv) {
        /* The payload is immutable while the invocation lives; our reference keeps it. */
        cp_buf_append(&ev->payload, inv->payload.p, inv->payload.len);
        pthread_mutex_lock(&l->mu);
        inv_unref(inv);
        pthread_mutex_unlock(&l->mu);
    }
    return rc;
}

/* The running invocation `id`: the one of instance `token`, or of any instance when the
 * request came without a token (under l->mu). */
static lam_inv *running_inv(cp_lambda *l, cp_slice token, cp_slice id)
{
    for (lam_inst *in = l->insts; in; in = in->next) {
        if (token.len && (token.len != 32 || memcmp(in->token, token.p, 32) != 0)) {
            continue;
        }
        if (in->inv && in->state == INST_BUSY && cp_slice_eq(cp_slice_str(in->inv->id), id)) {
            return in->inv;
        }
        if (token.len) {
            return NULL;
        }
    }
    return NULL;
}

static int invalid_id(cp_slice id, cp_err *err)
{
    return cp_err_set(err, CP_ENOTFOUND, "Invalid request ID: %.40s", id.p ? id.p : "");
}

/* An error body as posted, when it is a JSON object; else Lambda's shape around it. */
static void error_body(cp_slice error_type, cp_slice body, cp_buf *out)
{
    cJSON *j = body.len ? cJSON_ParseWithLength(body.p, body.len) : NULL;
    int object = j && cJSON_IsObject(j);
    cJSON_Delete(j);
    if (object) {
        cp_buf_append(out, body.p, body.len);
        return;
    }
    cp_buf_reset(out);
    cp_buf_putc(out, '{');
    cp_json_put_kv_str(out, "errorMessage", body);
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "errorType", error_type.len ? error_type : CP_SLICE("Unhandled"));
    cp_buf_putc(out, '}');
}

static int finish(cp_lambda *l, cp_slice token, cp_slice id, cp_buf *body, int function_error,
                  int too_big, cp_err *err)
{
    pthread_mutex_lock(&l->mu);
    int rc = enter(l, err);
    if (rc == CP_OK) {
        lam_inv *inv = running_inv(l, token, id);
        if (!inv) {
            rc = invalid_id(id, err);
        } else if (too_big) {
            /* Lambda fails the invocation and tells the runtime 413. */
            inv_fail_function(inv, "Function.ResponseSizeTooLarge",
                              "Response payload size exceeded maximum allowed payload size "
                              "(%u bytes).",
                              CP_LAMBDA_MAX_RESPONSE);
            rc = cp_err_set(err, CP_ETOOBIG, "Exceeded maximum allowed payload size (%u bytes).",
                            CP_LAMBDA_MAX_RESPONSE);
        } else {
            inv_complete(inv, body, function_error, CP_OK, NULL);
        }
        leave(l);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int cp__lambda_rt_response(cp_lambda *l, cp_slice token, cp_slice id, cp_slice body, cp_err *err)
{
    int too_big = body.len > CP_LAMBDA_MAX_RESPONSE;
    cp_buf copy = CP_BUF_INIT;
    if (!too_big) {
        cp_buf_append(&copy, body.p, body.len); /* outside the lock */
        cp_buf_reserve(&copy, 0);
    }
    int rc = finish(l, token, id, &copy, 0, too_big, err);
    cp_buf_free(&copy);
    return rc;
}

int cp__lambda_rt_error(cp_lambda *l, cp_slice token, cp_slice id, cp_slice error_type,
                        cp_slice body, cp_err *err)
{
    int too_big = body.len > CP_LAMBDA_MAX_RESPONSE;
    cp_buf copy = CP_BUF_INIT;
    if (!too_big) {
        error_body(error_type, body, &copy);
    }
    int rc = finish(l, token, id, &copy, 1, too_big, err);
    cp_buf_free(&copy);
    return rc;
}

int cp__lambda_rt_init_error(cp_lambda *l, cp_slice token, cp_slice error_type, cp_slice body,
                             cp_err *err)
{
    cp_buf copy = CP_BUF_INIT;
    if (body.len <= CP_LAMBDA_MAX_RESPONSE) {
        error_body(error_type, body, &copy);
    } else {
        error_body(error_type, CP_SLICE("(init error body too large)"), &copy);
    }
    pthread_mutex_lock(&l->mu);
    int rc = enter(l, err);
    if (rc == CP_OK) {
        lam_inst *in = inst_by_token(l, token);
        if (!in) {
            rc = cp_err_set(err, CP_ENOTFOUND, "unknown runtime instance");
        } else if (in->state != INST_STARTING) {
            rc = cp_err_set(err, CP_EINUSE,
                            "State transition from Ready to InitError failed: the runtime has "
                            "already initialised");
        } else {
            /* Lambda resets the sandbox after an init error; the invocation waiting for this
             * cold start gets the error. */
            cp_buf_free(&in->init_error);
            in->init_error = copy;
            copy = (cp_buf) CP_BUF_INIT;
            cp__lambda_inst_down(l, in, DOWN_INIT_ERROR, 0, 0);
        }
        leave(l);
    }
    pthread_mutex_unlock(&l->mu);
    cp_buf_free(&copy);
    return rc;
}
