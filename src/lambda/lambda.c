/* SPDX-License-Identifier: MIT */
/*
 * The Lambda function registry and its process pools. Functions are stored as
 * <data>/lambda/<name>/{config.json, code.zip, code/, function.log}; each one has a FIFO of
 * invocations and a set of bootstrap processes (instances) that take work through the Runtime
 * API (lambda_int.h). One reaper thread watches every child through a pidfd and enforces the
 * deadlines: Timeout, init timeout, idle timeout and the queue wait of admitted invocations.
 *
 * This file is the registry: names and ARNs, the function configuration (parse, render,
 * store), open/attach/close and the control plane. pool.c holds the pools: invocations,
 * instances, the reaper, invoke and the Runtime API calls. The types they share and the
 * locking rule are in lambda_int.h.
 */
#include "lambda/lambda.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/base64.h"
#include "core/clock.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "lambda/lambda_int.h"
#include "lambda/zip.h"

#define MAX_ENV_BYTES 4096 /* Lambda's 4 KB limit on Environment.Variables */

/* ------------------------------------------------------------------------------------------ */
/* Small utilities                                                                             */

void cp__lambda_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

void cp__lambda_random_bytes(unsigned char *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0) {
            CP_ASSERT(errno == EINTR);
            continue;
        }
        got += (size_t) r;
    }
}

void cp__lambda_uuid(char out[37])
{
    unsigned char b[16];
    cp__lambda_random_bytes(b, sizeof(b));
    b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);
    char hex[33];
    cp_hex(b, 16, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* snprintf for paths: CP_ETOOBIG instead of a silently truncated name. */
int cp__lambda_pathf(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t) n >= cap ? CP_ETOOBIG : CP_OK;
}

/* Lambda's LastModified form: 2026-11-26T05:00:00.000+0000 */
static void format_time(int64_t ms, char out[40])
{
    time_t s = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    size_t n = strlen(out);
    snprintf(out + n, 40 - n, ".%03u+0000", (unsigned) (ms % 1000) % 1000u);
}

static int valid_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static const char *region_of(const cp_lambda *l)
{
    return l->region;
}

/* ------------------------------------------------------------------------------------------ */
/* Names and ARNs                                                                              */

#define NAME_PATTERN                                                                               \
    "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?"      \
    "([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"

int cp__lambda_not_found(const cp_lambda *l, const char *name, const char *qualifier, cp_err *err)
{
    return cp_err_set(err, CP_ENOTFOUND, "Function not found: arn:aws:lambda:%s:%s:function:%s%s%s",
                      region_of(l), CP_LAMBDA_ACCOUNT, name, qualifier ? ":" : "",
                      qualifier ? qualifier : "");
}

/*
 * Resolve what the API accepts as FunctionName -- "name", "name:qualifier", a full ARN
 * "arn:aws:lambda:<region>:<account>:function:name[:qualifier]" or a partial ARN
 * "<account>:function:name[:qualifier]" -- into the bare name. Only $LATEST exists here, so
 * any other qualifier is a missing version (ResourceNotFoundException, as Lambda answers).
 */
int cp__lambda_parse_name(const cp_lambda *l, const char *in, char out[72], cp_err *err)
{
    const char *parts[8];
    size_t lens[8], n = 0;
    const char *p = in;
    size_t total = strlen(in);
    while (n < 8) {
        const char *c = strchr(p, ':');
        parts[n] = p;
        lens[n] = c ? (size_t) (c - p) : strlen(p);
        n++;
        if (!c) {
            break;
        }
        p = c + 1;
    }
    size_t ni = 0, qi = SIZE_MAX; /* index of the name and of the qualifier */
    int ok = total > 0 && total <= 170 && !(n == 8 && strchr(p, ':'));
    if (ok && n >= 7 && lens[0] == 3 && memcmp(parts[0], "arn", 3) == 0) {
        ok = lens[2] == 6 && memcmp(parts[2], "lambda", 6) == 0 && lens[5] == 8 &&
             memcmp(parts[5], "function", 8) == 0 && n <= 8;
        ni = 6;
        qi = n == 8 ? 7 : SIZE_MAX;
    } else if (ok && n >= 3 && lens[1] == 8 && memcmp(parts[1], "function", 8) == 0) {
        ok = n <= 4 && lens[0] == 12;
        ni = 2;
        qi = n == 4 ? 3 : SIZE_MAX;
    } else if (ok) {
        ok = n <= 2;
        qi = n == 2 ? 1 : SIZE_MAX;
    }
    if (ok) {
        ok = lens[ni] >= 1 && lens[ni] <= 64;
        for (size_t i = 0; ok && i < lens[ni]; i++) {
            ok = valid_name_char(parts[ni][i]);
        }
    }
    if (ok && qi != SIZE_MAX) {
        ok = lens[qi] >= 1 && lens[qi] <= 128;
        for (size_t i = 0; ok && i < lens[qi]; i++) {
            ok = valid_name_char(parts[qi][i]) || (i == 0 && parts[qi][i] == '$');
        }
    }
    if (!ok) {
        return cp_err_set(err, CP_EINVAL,
                          "1 validation error detected: Value '%.64s' at 'functionName' failed "
                          "to satisfy constraint: Member must satisfy regular expression pattern: "
                          "%s",
                          in, NAME_PATTERN);
    }
    memcpy(out, parts[ni], lens[ni]);
    out[lens[ni]] = 0;
    if (qi != SIZE_MAX && !(lens[qi] == 7 && memcmp(parts[qi], "$LATEST", 7) == 0)) {
        char q[130];
        memcpy(q, parts[qi], lens[qi]);
        q[lens[qi]] = 0;
        return cp__lambda_not_found(l, out, q, err);
    }
    return CP_OK;
}

/* Registry lookup under l->mu: binary search over the sorted array. */
static size_t fn_pos(const cp_lambda *l, const char *name, int *found)
{
    size_t lo = 0, hi = l->nfns;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(l->fns[mid]->name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = 0;
    return lo;
}

lam_fn *cp__lambda_fn_lookup(const cp_lambda *l, const char *name)
{
    int found;
    size_t i = fn_pos(l, name, &found);
    return found ? l->fns[i] : NULL;
}

static void fn_free(lam_fn *fn)
{
    cp_free(fn->runtime);
    cp_free(fn->role);
    cp_free(fn->handler);
    cp_free(fn->description);
    cp_free(fn->arch);
    cp_free(fn->sha256);
    cp_free(fn->revision);
    for (size_t i = 0; i < fn->nenv; i++) {
        cp_free(fn->env[i].k);
        cp_free(fn->env[i].v);
    }
    cp_free(fn->env);
    for (size_t i = 0; i < fn->ntags; i++) {
        cp_free(fn->tags[i].k);
        cp_free(fn->tags[i].v);
    }
    cp_free(fn->tags);
    cp_free(fn->dir);
    pthread_cond_destroy(&fn->work);
    pthread_cond_destroy(&fn->slot);
    cp_free(fn);
}

static lam_fn *fn_new(void)
{
    lam_fn *fn = cp_calloc(1, sizeof(*fn));
    cp__lambda_cond_init(&fn->work);
    cp__lambda_cond_init(&fn->slot);
    fn->timeout_s = 3;
    fn->memory_mb = 128;
    return fn;
}

/* Drop a reference under l->mu; the last one frees. */
void cp__lambda_fn_unref(lam_fn *fn)
{
    CP_ASSERT(fn->refs > 0);
    if (--fn->refs == 0) {
        fn_free(fn);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Function configuration JSON                                                                 */

static const char *const reserved_env[] = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    NULL,
};

static int shape_error(cp_err *err, const char *member, const char *what)
{
    return cp_err_set(err, CP_EINVAL, "Could not parse request body into json: %s %s", member,
                      what);
}

static int null_error(cp_err *err, const char *member)
{
    return cp_err_set(err, CP_EINVAL,
                      "1 validation error detected: Value null at '%s' failed to satisfy "
                      "constraint: Member must not be null",
                      member);
}

static int opt_string(const cJSON *j, const char *key, const char **out, cp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        return CP_OK;
    }
    if (!cJSON_IsString(v)) {
        return shape_error(err, key, "must be a string");
    }
    *out = v->valuestring;
    return CP_OK;
}

static int opt_int(const cJSON *j, const char *key, const char *member, long lo, long hi, int *out,
                   cp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) {
        return CP_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != (double) (long) v->valuedouble) {
        return shape_error(err, key, "must be an integer");
    }
    long x = (long) v->valuedouble;
    if (x < lo || x > hi) {
        return cp_err_set(err, CP_EINVAL,
                          "1 validation error detected: Value '%ld' at '%s' failed to satisfy "
                          "constraint: Member must have value %s than or equal to %ld",
                          x, member, x < lo ? "greater" : "less", x < lo ? lo : hi);
    }
    *out = (int) x;
    return CP_OK;
}

/* A JSON object of strings into a lam_kv array. */
static int string_map(const cJSON *m, const char *key, lam_kv **out, size_t *n, cp_err *err)
{
    if (!m || cJSON_IsNull(m)) {
        return CP_OK;
    }
    if (!cJSON_IsObject(m)) {
        return shape_error(err, key, "must be an object of strings");
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, m)
    {
        if (!cJSON_IsString(it)) {
            return shape_error(err, key, "values must be strings");
        }
    }
    size_t cnt = (size_t) cJSON_GetArraySize(m);
    *out = cp_calloc(cnt ? cnt : 1, sizeof(lam_kv));
    cJSON_ArrayForEach(it, m)
    {
        (*out)[*n].k = cp_strdup(it->string);
        (*out)[*n].v = cp_strdup(it->valuestring);
        (*n)++;
    }
    return CP_OK;
}

static int check_env(const lam_fn *fn, cp_err *err)
{
    size_t bytes = 2;
    char used[200] = "";
    for (size_t i = 0; i < fn->nenv; i++) {
        const char *k = fn->env[i].k;
        int ok = (k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z');
        ok = ok && k[1] != 0;
        for (const char *c = k + 1; ok && *c; c++) {
            ok = valid_name_char(*c) && *c != '-';
        }
        if (!ok) {
            return cp_err_set(err, CP_EINVAL,
                              "1 validation error detected: Value at 'environment.variables' "
                              "failed to satisfy constraint: Map keys must satisfy constraint: "
                              "[Member must satisfy regular expression pattern: "
                              "[a-zA-Z]([a-zA-Z0-9_])+]");
        }
        for (const char *const *r = reserved_env; *r; r++) {
            size_t u = strlen(used);
            if (strcmp(k, *r) == 0 && u + strlen(k) + 3 < sizeof(used)) {
                snprintf(used + u, sizeof(used) - u, "%s%s", u ? ", " : "", k);
            }
        }
        bytes += strlen(k) + strlen(fn->env[i].v) + 6;
    }
    if (used[0]) {
        return cp_err_set(err, CP_EINVAL,
                          "Lambda was unable to configure your environment variables because the "
                          "environment variables you have provided contains reserved keys that "
                          "are currently not supported for modification. Reserved keys used in "
                          "this request: %s",
                          used);
    }
    if (bytes > MAX_ENV_BYTES) {
        return cp_err_set(err, CP_EINVAL,
                          "Lambda was unable to configure your environment variables because the "
                          "environment variables you have provided exceeded the 4KB limit.");
    }
    return CP_OK;
}

static int is_custom_runtime(const char *r)
{
    return strcmp(r, "provided") == 0 || strcmp(r, "provided.al2") == 0 ||
           strcmp(r, "provided.al2023") == 0;
}

/* arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+ */
static int valid_role(const char *r)
{
    if (strncmp(r, "arn:", 4) != 0) {
        return 0;
    }
    const char *p = r + 4;
    if (strncmp(p, "aws", 3) == 0) {
        p += 3;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-') {
            p++;
        }
    }
    if (strncmp(p, ":iam::", 6) != 0) {
        return 0;
    }
    p += 6;
    for (int i = 0; i < 12; i++, p++) {
        if (*p < '0' || *p > '9') {
            return 0;
        }
    }
    if (strncmp(p, ":role", 5) != 0) {
        return 0;
    }
    p += 5;
    if (*p == '/') {
        p++;
    }
    if (!*p) {
        return 0;
    }
    for (; *p; p++) {
        if (!valid_name_char(*p) && !strchr("+=,.@/", *p)) {
            return 0;
        }
    }
    return 1;
}

/*
 * The members CreateFunction and the stored config.json share, validated with Lambda's
 * messages. Members Lambda knows but changepipe ignores (VpcConfig, Layers, TracingConfig...)
 * are accepted silently, as local emulators do.
 */
static int parse_spec(const cp_lambda *l, const cJSON *j, lam_fn *fn, cp_err *err)
{
    const char *name, *runtime, *role, *handler, *desc;
    int rc;
    if ((rc = opt_string(j, "FunctionName", &name, err)) != CP_OK ||
        (rc = opt_string(j, "Runtime", &runtime, err)) != CP_OK ||
        (rc = opt_string(j, "Role", &role, err)) != CP_OK ||
        (rc = opt_string(j, "Handler", &handler, err)) != CP_OK ||
        (rc = opt_string(j, "Description", &desc, err)) != CP_OK) {
        return rc;
    }
    if (!name) {
        return null_error(err, "functionName");
    }
    if ((rc = cp__lambda_parse_name(l, name, fn->name, err)) != CP_OK) {
        return rc == CP_ENOTFOUND
                   ? cp_err_set(err, CP_EINVAL, "Qualifiers are not supported in CreateFunction")
                   : rc;
    }
    if (!role) {
        return null_error(err, "role");
    }
    if (!valid_role(role)) {
        return cp_err_set(err, CP_EINVAL,
                          "1 validation error detected: Value '%.64s' at 'role' failed to "
                          "satisfy constraint: Member must satisfy regular expression pattern: "
                          "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
                          role);
    }
    const char *pkg;
    if ((rc = opt_string(j, "PackageType", &pkg, err)) != CP_OK) {
        return rc;
    }
    if (pkg && strcmp(pkg, "Zip") != 0) {
        return cp_err_set(err, CP_EINVAL,
                          "PackageType %.32s is not supported by changepipe: functions run from "
                          "Zip packages with a custom runtime",
                          pkg);
    }
    if (!runtime || !handler) {
        return cp_err_set(err, CP_EINVAL,
                          "Runtime and Handler are mandatory parameters for functions created "
                          "with deployment packages.");
    }
    if (!is_custom_runtime(runtime)) {
        return cp_err_set(err, CP_EINVAL,
                          "Runtime %.40s is not supported by changepipe: only custom runtimes "
                          "(provided, provided.al2, provided.al2023) run here. Package your "
                          "function with a bootstrap executable.",
                          runtime);
    }
    if (strlen(handler) > 128 || !handler[0] || strpbrk(handler, " \t\r\n")) {
        return cp_err_set(err, CP_EINVAL,
                          "1 validation error detected: Value '%.64s' at 'handler' failed to "
                          "satisfy constraint: Member must satisfy regular expression pattern: "
                          "[^\\s]+",
                          handler);
    }
    if (desc && strlen(desc) > 256) {
        return cp_err_set(err, CP_EINVAL,
                          "1 validation error detected: Value at 'description' failed to satisfy "
                          "constraint: Member must have length less than or equal to 256");
    }
    if ((rc = opt_int(j, "Timeout", "timeout", 1, 900, &fn->timeout_s, err)) != CP_OK ||
        (rc = opt_int(j, "MemorySize", "memorySize", 128, 10240, &fn->memory_mb, err)) != CP_OK) {
        return rc;
    }
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(j, "Architectures");
    const char *a = "x86_64";
    if (arch && !cJSON_IsNull(arch)) {
        if (!cJSON_IsArray(arch)) {
            return shape_error(err, "Architectures", "must be a list");
        }
        if (cJSON_GetArraySize(arch) != 1) {
            return cp_err_set(err, CP_EINVAL,
                              "1 validation error detected: Value at 'architectures' failed to "
                              "satisfy constraint: Member must have length less than or equal "
                              "to 1 and greater than or equal to 1");
        }
        const cJSON *a0 = cJSON_GetArrayItem(arch, 0);
        if (!cJSON_IsString(a0) ||
            (strcmp(a0->valuestring, "x86_64") != 0 && strcmp(a0->valuestring, "arm64") != 0)) {
            return cp_err_set(err, CP_EINVAL,
                              "1 validation error detected: Value at 'architectures' failed to "
                              "satisfy constraint: Member must satisfy constraint: [Member must "
                              "satisfy enum value set: [x86_64, arm64]]");
        }
        a = a0->valuestring;
    }
    const cJSON *envo = cJSON_GetObjectItemCaseSensitive(j, "Environment");
    if (envo && !cJSON_IsNull(envo)) {
        if (!cJSON_IsObject(envo)) {
            return shape_error(err, "Environment", "must be an object");
        }
        rc = string_map(cJSON_GetObjectItemCaseSensitive(envo, "Variables"),
                        "Environment.Variables", &fn->env, &fn->nenv, err);
        if (rc != CP_OK || (rc = check_env(fn, err)) != CP_OK) {
            return rc;
        }
    }
    rc =
        string_map(cJSON_GetObjectItemCaseSensitive(j, "Tags"), "Tags", &fn->tags, &fn->ntags, err);
    if (rc != CP_OK) {
        return rc;
    }
    fn->runtime = cp_strdup(runtime);
    fn->role = cp_strdup(role);
    fn->handler = cp_strdup(handler);
    fn->description = cp_strdup(desc ? desc : "");
    fn->arch = cp_strdup(a);
    return CP_OK;
}

static void put_map(cp_buf *out, const lam_kv *m, size_t n)
{
    cp_buf_putc(out, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) {
            cp_buf_putc(out, ',');
        }
        cp_json_put_kv_str(out, m[i].k, cp_slice_str(m[i].v));
    }
    cp_buf_putc(out, '}');
}

static void put_kv_int(cp_buf *out, const char *key, int64_t v)
{
    cp_json_put_key(out, key);
    cp_buf_printf(out, "%" PRId64, v);
}

/* The FunctionConfiguration shape every control-plane reply uses. */
static void render_config(const cp_lambda *l, const lam_fn *fn, cp_buf *out)
{
    char arn[200];
    snprintf(arn, sizeof(arn), "arn:aws:lambda:%s:%s:function:%s", region_of(l), CP_LAMBDA_ACCOUNT,
             fn->name);
    cp_buf_putc(out, '{');
    cp_json_put_kv_str(out, "FunctionName", cp_slice_str(fn->name));
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "FunctionArn", cp_slice_str(arn));
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "Runtime", cp_slice_str(fn->runtime));
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "Role", cp_slice_str(fn->role));
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "Handler", cp_slice_str(fn->handler));
    cp_buf_putc(out, ',');
    put_kv_int(out, "CodeSize", (int64_t) fn->code_size);
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "Description", cp_slice_str(fn->description));
    cp_buf_putc(out, ',');
    put_kv_int(out, "Timeout", fn->timeout_s);
    cp_buf_putc(out, ',');
    put_kv_int(out, "MemorySize", fn->memory_mb);
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "LastModified", cp_slice_str(fn->last_modified));
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "CodeSha256", cp_slice_str(fn->sha256));
    cp_buf_puts(out, ",\"Version\":\"$LATEST\"");
    if (fn->nenv) {
        cp_buf_puts(out, ",\"Environment\":{\"Variables\":");
        put_map(out, fn->env, fn->nenv);
        cp_buf_putc(out, '}');
    }
    cp_buf_puts(out, ",\"TracingConfig\":{\"Mode\":\"PassThrough\"},");
    cp_json_put_kv_str(out, "RevisionId", cp_slice_str(fn->revision));
    cp_buf_puts(out, ",\"State\":\"Active\",\"LastUpdateStatus\":\"Successful\","
                     "\"PackageType\":\"Zip\",\"Architectures\":[");
    cp_json_put_str(out, cp_slice_str(fn->arch));
    cp_buf_puts(out, "],\"EphemeralStorage\":{\"Size\":512},"
                     "\"SnapStart\":{\"ApplyOn\":\"None\",\"OptimizationStatus\":\"Off\"},"
                     "\"LoggingConfig\":{\"LogFormat\":\"Text\",\"LogGroup\":\"/aws/lambda/");
    cp_buf_puts(out, fn->name); /* names are [a-zA-Z0-9-_]: no escaping needed */
    cp_buf_puts(out, "\"}}");
}

/* config.json: the create-time members plus what the package produced. */
static void render_stored(const lam_fn *fn, cp_buf *out)
{
    cp_buf_putc(out, '{');
    cp_json_put_kv_str(out, "FunctionName", cp_slice_str(fn->name));
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "Runtime", cp_slice_str(fn->runtime));
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "Role", cp_slice_str(fn->role));
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "Handler", cp_slice_str(fn->handler));
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "Description", cp_slice_str(fn->description));
    cp_buf_putc(out, ',');
    put_kv_int(out, "Timeout", fn->timeout_s);
    cp_buf_putc(out, ',');
    put_kv_int(out, "MemorySize", fn->memory_mb);
    cp_buf_puts(out, ",\"Architectures\":[");
    cp_json_put_str(out, cp_slice_str(fn->arch));
    cp_buf_puts(out, "],\"Environment\":{\"Variables\":");
    put_map(out, fn->env, fn->nenv);
    cp_buf_puts(out, "},\"Tags\":");
    put_map(out, fn->tags, fn->ntags);
    cp_buf_putc(out, ',');
    put_kv_int(out, "CodeSize", (int64_t) fn->code_size);
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "CodeSha256", cp_slice_str(fn->sha256));
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "LastModified", cp_slice_str(fn->last_modified));
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "RevisionId", cp_slice_str(fn->revision));
    cp_buf_puts(out, "}\n");
}

/* ------------------------------------------------------------------------------------------ */
/* Files                                                                                       */

static int write_file_sync(const char *path, const void *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    int rc = cp_fs_write_all(fd, p, len);
    if (rc == CP_OK && fsync(fd) != 0) {
        rc = -errno;
    }
    if (close(fd) != 0 && rc == CP_OK) {
        rc = -errno;
    }
    return rc;
}


static int read_file(const char *path, size_t max, cp_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    char tmp[8192];
    ssize_t n;
    while ((n = read(fd, tmp, sizeof(tmp))) > 0) {
        cp_buf_append(out, tmp, (size_t) n);
        if (out->len > max) {
            close(fd);
            return CP_ETOOBIG;
        }
    }
    int rc = n < 0 ? -errno : CP_OK;
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Open, attach, close                                                                         */

static void registry_insert(cp_lambda *l, lam_fn *fn)
{
    int found;
    size_t i = fn_pos(l, fn->name, &found);
    CP_ASSERT(!found);
    if (l->nfns == l->capfns) {
        l->capfns = l->capfns ? l->capfns * 2 : 16;
        l->fns = cp_realloc(l->fns, l->capfns * sizeof(*l->fns));
    }
    memmove(l->fns + i + 1, l->fns + i, (l->nfns - i) * sizeof(*l->fns));
    l->fns[i] = fn;
    l->nfns++;
    fn->refs++;
}

static void registry_remove(cp_lambda *l, lam_fn *fn)
{
    int found;
    size_t i = fn_pos(l, fn->name, &found);
    CP_ASSERT(found && l->fns[i] == fn);
    memmove(l->fns + i, l->fns + i + 1, (l->nfns - i - 1) * sizeof(*l->fns));
    l->nfns--;
}

/* Load <root>/<dir>/config.json into a new function. */
static int load_one(cp_lambda *l, const char *dir, lam_fn **out, cp_err *err)
{
    char path[PATH_MAX];
    (void) cp__lambda_pathf(path, sizeof(path), "%s/%s/config.json", l->root, dir);
    cp_buf text = CP_BUF_INIT;
    int rc = read_file(path, 1 << 20, &text);
    if (rc != CP_OK) {
        cp_buf_free(&text);
        return cp_err_set(err, rc, "cannot read config.json");
    }
    cJSON *j = cJSON_ParseWithLength(text.p, text.len);
    cp_buf_free(&text);
    lam_fn *fn = fn_new();
    rc = j ? parse_spec(l, j, fn, err) : cp_err_set(err, CP_ECORRUPT, "config.json is not JSON");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(j, "CodeSize");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(j, "CodeSha256");
    const cJSON *mod = cJSON_GetObjectItemCaseSensitive(j, "LastModified");
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(j, "RevisionId");
    if (rc == CP_OK && (!cJSON_IsNumber(size) || !cJSON_IsString(sha) || !cJSON_IsString(mod) ||
                        !cJSON_IsString(rev) || strlen(mod->valuestring) >= 40)) {
        rc = cp_err_set(err, CP_ECORRUPT, "config.json lacks the package fields");
    }
    if (rc == CP_OK && strcmp(fn->name, dir) != 0) {
        rc = cp_err_set(err, CP_ECORRUPT, "config.json names another function");
    }
    if (rc == CP_OK) {
        fn->code_size = (uint64_t) size->valuedouble;
        fn->sha256 = cp_strdup(sha->valuestring);
        fn->revision = cp_strdup(rev->valuestring);
        snprintf(fn->last_modified, sizeof(fn->last_modified), "%s", mod->valuestring);
        (void) cp__lambda_pathf(path, sizeof(path), "%s/%s", l->root, dir);
        fn->dir = cp_strdup(path);
        *out = fn;
    } else {
        fn_free(fn);
    }
    cJSON_Delete(j);
    return rc;
}

static int load_all(cp_lambda *l, cp_err *err)
{
    DIR *d = opendir(l->root);
    if (!d) {
        return cp_err_set(err, -errno, "cannot read the lambda directory");
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        char path[PATH_MAX];
        (void) cp__lambda_pathf(path, sizeof(path), "%s/%s", l->root, de->d_name);
        if (strlen(de->d_name) > 64) {
            continue; /* not a function name; nothing of ours */
        }
        if (strncmp(de->d_name, ".tmp-", 5) == 0 || strncmp(de->d_name, ".trash-", 7) == 0) {
            (void) cp_fs_rm_rf(path); /* an interrupted create or delete */
            continue;
        }
        lam_fn *fn = NULL;
        cp_err e = {0};
        if (load_one(l, de->d_name, &fn, &e) != CP_OK || !fn) {
            CP_LOG_WARN("lambda", "skipping function directory %s: %s", path, e.msg);
            continue;
        }
        registry_insert(l, fn);
    }
    closedir(d);
    return CP_OK;
}

int cp_lambda_open(const cp_lambda_cfg *cfg, cp_lambda **out, cp_err *err)
{
    *out = NULL;
    if (!cfg->data_dir || !cfg->data_dir[0]) {
        return cp_err_set(err, CP_EINVAL, "lambda: data_dir is required");
    }
    cp_lambda *l = cp_calloc(1, sizeof(*l));
    l->data_dir = cp_strdup(cfg->data_dir);
    cp_buf root = CP_BUF_INIT;
    cp_buf_printf(&root, "%s/lambda", cfg->data_dir);
    l->root = root.p;
    /* Every path we build is <root>/<name, at most 64>/<short suffix>; checking the root
     * once lets cp__lambda_pathf() results go unchecked below. */
    if (root.len + 200 > PATH_MAX) {
        cp_free(l->data_dir);
        cp_free(l->root);
        cp_free(l);
        return cp_err_set(err, CP_EINVAL, "lambda: data_dir path too long");
    }
    l->region = cp_strdup(cfg->region ? cfg->region : "us-east-1");
    const char *path = getenv("PATH");
    l->path_env = cp_strdup(path && path[0] ? path : "/usr/local/bin:/usr/bin:/bin");
    l->concurrency = cfg->concurrency ? cfg->concurrency : 10;
    l->queue_timeout_ms = cfg->queue_timeout_ms ? cfg->queue_timeout_ms : 1000;
    l->init_timeout_ms = cfg->init_timeout_ms ? cfg->init_timeout_ms : 10000;
    l->idle_timeout_ms = cfg->idle_timeout_ms ? cfg->idle_timeout_ms : 600000;
    l->max_unzipped = cfg->max_unzipped ? cfg->max_unzipped : CP_ZIP_DEFAULT_MAX_TOTAL;
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->admin, NULL);
    cp__lambda_cond_init(&l->idle);
    l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc = CP_OK;
    if (l->wake_fd < 0) {
        rc = cp_err_set(err, -errno, "lambda: eventfd failed");
    } else if (mkdir(l->data_dir, 0755) != 0 && errno != EEXIST) {
        rc = cp_err_set(err, -errno, "lambda: cannot create the data directory");
    } else if (mkdir(l->root, 0755) != 0 && errno != EEXIST) {
        rc = cp_err_set(err, -errno, "lambda: cannot create the lambda directory");
    } else {
        rc = load_all(l, err);
    }
    if (rc == CP_OK) {
        rc = -pthread_create(&l->reaper, NULL, cp__lambda_reaper_main, l);
        if (rc != CP_OK) {
            cp_err_set(err, rc, "lambda: cannot start the reaper thread");
        }
        l->reaper_started = rc == CP_OK;
    }
    if (rc != CP_OK) {
        cp_lambda_close(l);
        return rc;
    }
    *out = l;
    return CP_OK;
}

void cp_lambda_attach(cp_lambda *l, const cp_http_server *srv, const char *host)
{
    pthread_mutex_lock(&l->mu);
    l->srv = srv;
    snprintf(l->runtime_host, sizeof(l->runtime_host), "%s:%u", host ? host : "127.0.0.1",
             (unsigned) cp_http_server_port(srv));
    pthread_mutex_unlock(&l->mu);
}

void cp__lambda_set_auth(cp_lambda *l, const cp_aws_router *aws)
{
    l->auth = aws;
}

const cp_aws_router *cp__lambda_auth(const cp_lambda *l)
{
    return l->auth;
}

void cp_lambda_shutdown(cp_lambda *l)
{
    pthread_mutex_lock(&l->mu);
    if (l->shut) {
        pthread_mutex_unlock(&l->mu);
        return;
    }
    l->closing = 1;
    cp_err why;
    cp_err_set(&why, CP_ECLOSED, "changepipe is shutting down");
    for (size_t i = 0; i < l->nfns; i++) {
        cp__lambda_fail_all(l, l->fns[i], CP_ECLOSED, &why);
    }
    for (lam_inst *in = l->insts; in; in = in->next) {
        cp__lambda_inst_down(l, in, DOWN_STOP, 0, 0);
    }
    for (size_t i = 0; i < l->nfns; i++) {
        pthread_cond_broadcast(&l->fns[i]->work);
        pthread_cond_broadcast(&l->fns[i]->slot);
    }
    if (l->wake_fd >= 0) {
        cp__lambda_wake_reaper(l);
    }
    /* Every thread inside the module sees `closing` at its next wake-up and leaves. */
    while (l->active > 0 || l->async_running > 0) {
        pthread_cond_wait(&l->idle, &l->mu);
    }
    l->shut = 1;
    pthread_mutex_unlock(&l->mu);
    /* The reaper leaves once every instance is reaped: no zombies after this point. */
    if (l->reaper_started) {
        pthread_join(l->reaper, NULL);
        l->reaper_started = 0;
    }
}

void cp_lambda_close(cp_lambda *l)
{
    if (!l) {
        return;
    }
    cp_lambda_shutdown(l);
    /* A create or delete still writing its directory finishes first. */
    pthread_mutex_lock(&l->admin);
    pthread_mutex_unlock(&l->admin);
    CP_ASSERT(!l->insts);
    for (size_t i = 0; i < l->nfns; i++) {
        cp__lambda_fn_unref(l->fns[i]);
    }
    cp_free(l->fns);
    if (l->wake_fd >= 0) {
        close(l->wake_fd);
    }
    pthread_cond_destroy(&l->idle);
    pthread_mutex_destroy(&l->admin);
    pthread_mutex_destroy(&l->mu);
    cp_free(l->data_dir);
    cp_free(l->root);
    cp_free(l->region);
    cp_free(l->path_env);
    cp_free(l);
}

/* ------------------------------------------------------------------------------------------ */
/* Control plane                                                                               */

int cp_lambda_create(cp_lambda *l, cp_slice request, cp_buf *out, cp_err *err)
{
    if (request.len > CP_LAMBDA_MAX_CREATE_REQUEST) {
        return cp_err_set(err, CP_ETOOBIG,
                          "Request must be smaller than %u bytes for the CreateFunction "
                          "operation",
                          CP_LAMBDA_MAX_CREATE_REQUEST);
    }
    cJSON *j = cJSON_ParseWithLength(request.p, request.len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return cp_err_set(err, CP_EINVAL,
                          "Could not parse request body into json: the body is not a JSON "
                          "object");
    }
    lam_fn *fn = fn_new();
    cp_buf zip = CP_BUF_INIT;
    int rc = parse_spec(l, j, fn, err);
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "Code");
    if (rc == CP_OK && (!code || cJSON_IsNull(code))) {
        rc = null_error(err, "code");
    } else if (rc == CP_OK && !cJSON_IsObject(code)) {
        rc = shape_error(err, "Code", "must be an object");
    }
    if (rc == CP_OK) {
        const cJSON *zf = cJSON_GetObjectItemCaseSensitive(code, "ZipFile");
        if (!zf || cJSON_IsNull(zf)) {
            rc = cp_err_set(err, CP_EINVAL,
                            "changepipe takes the deployment package inline only: pass "
                            "Code.ZipFile (aws lambda create-function --zip-file fileb://fn.zip)");
        } else if (!cJSON_IsString(zf) ||
                   cp_base64_decode(cp_slice_str(zf->valuestring), &zip) != CP_OK) {
            rc = cp_err_set(err, CP_EINVAL,
                            "Could not parse request body into json: Code.ZipFile is not "
                            "base64");
        } else if (zip.len == 0) {
            rc = cp_err_set(err, CP_EINVAL,
                            "Could not unzip uploaded file. Please check your file, then try to "
                            "upload again.");
        }
    }
    cJSON_Delete(j);
    if (rc != CP_OK) {
        cp_buf_free(&zip);
        fn_free(fn);
        return rc;
    }
    unsigned char digest[32];
    cp_sha256(zip.p, zip.len, digest);
    cp_buf sha = CP_BUF_INIT;
    cp_base64_encode(cp_slice_of((const char *) digest, sizeof(digest)), &sha);
    fn->sha256 = sha.p;
    fn->code_size = zip.len;
    char rev[37];
    cp__lambda_uuid(rev);
    fn->revision = cp_strdup(rev);
    format_time(cp_clock_now_ms(), fn->last_modified);

    pthread_mutex_lock(&l->admin);
    pthread_mutex_lock(&l->mu);
    int taken = cp__lambda_fn_lookup(l, fn->name) != NULL, closing = l->closing;
    pthread_mutex_unlock(&l->mu);
    char tmp[PATH_MAX], path[PATH_MAX], final[PATH_MAX];
    char id[37];
    cp__lambda_uuid(id);
    (void) cp__lambda_pathf(tmp, sizeof(tmp), "%s/.tmp-%s", l->root, id);
    (void) cp__lambda_pathf(final, sizeof(final), "%s/%s", l->root, fn->name);
    if (closing) {
        rc = cp_err_set(err, CP_ECLOSED, "changepipe is shutting down");
    } else if (taken) {
        rc = cp_err_set(err, CP_EEXIST, "Function already exist: %s", fn->name);
    } else if (mkdir(tmp, 0755) != 0) {
        rc = cp_err_set(err, -errno, "cannot create the function directory");
    } else {
        /* Everything is written below a scratch name and renamed into place in one step:
         * a crash leaves either no function or a complete one (plus a .tmp- leftover that
         * open() removes). */
        (void) cp__lambda_pathf(path, sizeof(path), "%s/code.zip", tmp);
        rc = write_file_sync(path, zip.p, zip.len);
        if (rc != CP_OK) {
            cp_err_set(err, rc, "cannot store the deployment package");
        }
        (void) cp__lambda_pathf(path, sizeof(path), "%s/code", tmp);
        if (rc == CP_OK && mkdir(path, 0755) != 0) {
            rc = cp_err_set(err, -errno, "cannot create the code directory");
        }
        if (rc == CP_OK) {
            cp_zip_limits lim = {l->max_unzipped, 0};
            cp_err zerr = {0};
            rc = cp_zip_extract(cp_buf_slice(&zip), path, &lim, NULL, &zerr);
            if (rc == CP_ETOOBIG && strstr(zerr.msg, "Unzipped size")) {
                rc = cp_err_set(err, CP_EINVAL, "%s", zerr.msg);
            } else if (rc == CP_ETOOBIG || rc == CP_EINVAL) {
                rc = cp_err_set(err, CP_EINVAL,
                                "Could not unzip uploaded file. Please check your file, then try "
                                "to upload again. (%s)",
                                zerr.msg);
            } else if (rc != CP_OK) {
                *err = zerr;
            }
        }
        if (rc == CP_OK) {
            cp_buf cfg = CP_BUF_INIT;
            render_stored(fn, &cfg);
            (void) cp__lambda_pathf(path, sizeof(path), "%s/config.json", tmp);
            rc = write_file_sync(path, cfg.p, cfg.len);
            cp_buf_free(&cfg);
            if (rc != CP_OK) {
                cp_err_set(err, rc, "cannot store config.json");
            }
        }
        if (rc == CP_OK) {
            /* One syncfs covers the extracted tree (possibly thousands of files). */
            int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd < 0 || syncfs(dfd) != 0) {
                rc = cp_err_set(err, -errno, "cannot sync the function directory");
            }
            if (dfd >= 0) {
                close(dfd);
            }
        }
        if (rc == CP_OK && rename(tmp, final) != 0) {
            rc = errno == EEXIST || errno == ENOTEMPTY
                     ? cp_err_set(err, CP_EEXIST, "Function already exist: %s", fn->name)
                     : cp_err_set(err, -errno, "cannot install the function directory");
        }
        if (rc == CP_OK) {
            (void) cp_fs_fsync_dir(l->root);
        } else {
            (void) cp_fs_rm_rf(tmp);
        }
    }
    cp_buf_free(&zip);
    if (rc == CP_OK) {
        fn->dir = cp_strdup(final);
        pthread_mutex_lock(&l->mu);
        registry_insert(l, fn);
        render_config(l, fn, out);
        pthread_mutex_unlock(&l->mu);
    } else {
        fn_free(fn);
    }
    pthread_mutex_unlock(&l->admin);
    return rc;
}

/* Look a function up by any accepted name form (under l->mu). */
static int find_locked(cp_lambda *l, const char *name, lam_fn **out, cp_err *err)
{
    char nm[72];
    int rc = cp__lambda_parse_name(l, name, nm, err);
    if (rc != CP_OK) {
        return rc;
    }
    *out = cp__lambda_fn_lookup(l, nm);
    return *out ? CP_OK : cp__lambda_not_found(l, nm, NULL, err);
}

int cp_lambda_get_configuration(cp_lambda *l, const char *name, cp_buf *out, cp_err *err)
{
    pthread_mutex_lock(&l->mu);
    lam_fn *fn = NULL;
    int rc = find_locked(l, name, &fn, err);
    if (rc == CP_OK) {
        render_config(l, fn, out);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int cp_lambda_get(cp_lambda *l, const char *name, cp_buf *out, cp_err *err)
{
    pthread_mutex_lock(&l->mu);
    lam_fn *fn = NULL;
    int rc = find_locked(l, name, &fn, err);
    if (rc == CP_OK) {
        cp_buf_puts(out, "{\"Configuration\":");
        render_config(l, fn, out);
        /* Lambda hands out a presigned S3 URL; ours is the package served by the API
         * itself (api.c: GET /2015-03-31/functions/<name>/code). */
        cp_buf_puts(out, ",\"Code\":{\"RepositoryType\":\"S3\",\"Location\":\"http://");
        cp_buf_puts(out, l->runtime_host[0] ? l->runtime_host : "127.0.0.1");
        cp_buf_printf(out, "/2015-03-31/functions/%s/code\"}", fn->name);
        if (fn->ntags) {
            cp_buf_puts(out, ",\"Tags\":");
            put_map(out, fn->tags, fn->ntags);
        }
        cp_buf_putc(out, '}');
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int cp_lambda_list(cp_lambda *l, const char *marker, int max_items, cp_buf *out, cp_err *err)
{
    if (max_items < 0) {
        max_items = 50;
    }
    if (max_items < 1 || max_items > 10000) {
        return cp_err_set(err, CP_EINVAL,
                          "1 validation error detected: Value '%d' at 'maxItems' failed to "
                          "satisfy constraint: Member must have value %s than or equal to %d",
                          max_items, max_items < 1 ? "greater" : "less", max_items < 1 ? 1 : 10000);
    }
    pthread_mutex_lock(&l->mu);
    size_t i = 0;
    if (marker && marker[0]) {
        int found;
        i = fn_pos(l, marker, &found);
        i += found; /* the marker is the last name of the previous page */
    }
    cp_buf_puts(out, "{\"Functions\":[");
    int n = 0;
    for (; i < l->nfns && n < max_items; i++, n++) {
        if (n) {
            cp_buf_putc(out, ',');
        }
        render_config(l, l->fns[i], out);
    }
    cp_buf_putc(out, ']');
    if (i < l->nfns && n > 0) {
        cp_buf_putc(out, ',');
        cp_json_put_kv_str(out, "NextMarker", cp_slice_str(l->fns[i - 1]->name));
    }
    cp_buf_putc(out, '}');
    pthread_mutex_unlock(&l->mu);
    return CP_OK;
}

int cp_lambda_delete(cp_lambda *l, const char *name, cp_err *err)
{
    pthread_mutex_lock(&l->admin);
    pthread_mutex_lock(&l->mu);
    lam_fn *fn = NULL;
    int rc = l->closing ? cp_err_set(err, CP_ECLOSED, "changepipe is shutting down")
                        : find_locked(l, name, &fn, err);
    if (rc != CP_OK || !fn) {
        pthread_mutex_unlock(&l->mu);
        pthread_mutex_unlock(&l->admin);
        return rc;
    }
    registry_remove(l, fn);
    fn->deleted = 1;
    cp_err why;
    cp__lambda_not_found(l, fn->name, NULL, &why);
    cp__lambda_fail_all(l, fn, CP_ENOTFOUND, &why);
    for (lam_inst *in = l->insts; in; in = in->next) {
        if (in->fn == fn) {
            cp__lambda_inst_down(l, in, DOWN_STOP, 0, 0);
        }
    }
    pthread_cond_broadcast(&fn->work);
    pthread_cond_broadcast(&fn->slot);
    pthread_mutex_unlock(&l->mu);

    /* Rename first (atomic: the function is gone even if removing its files is cut short),
     * then remove the tree; open() clears any .trash- leftover. */
    char trash[PATH_MAX], id[37];
    cp__lambda_uuid(id);
    (void) cp__lambda_pathf(trash, sizeof(trash), "%s/.trash-%s", l->root, id);
    if (rename(fn->dir, trash) == 0) {
        (void) cp_fs_fsync_dir(l->root);
        (void) cp_fs_rm_rf(trash);
    } else {
        CP_LOG_WARN("lambda", "cannot remove %s: %s", fn->dir, strerror(errno));
    }
    pthread_mutex_lock(&l->mu);
    cp__lambda_fn_unref(fn); /* the registry's reference */
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_unlock(&l->admin);
    return CP_OK;
}

int cp_lambda_open_code(cp_lambda *l, const char *name, int *fd, uint64_t *size, cp_err *err)
{
    pthread_mutex_lock(&l->mu);
    lam_fn *fn = NULL;
    int rc = find_locked(l, name, &fn, err);
    char path[PATH_MAX];
    if (rc == CP_OK) {
        (void) cp__lambda_pathf(path, sizeof(path), "%s/code.zip", fn->dir);
        *fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat sb;
        if (*fd < 0 || fstat(*fd, &sb) != 0) {
            rc = cp_err_set(err, -errno, "cannot open the deployment package");
            if (*fd >= 0) {
                close(*fd);
                *fd = -1;
            }
        } else {
            *size = (uint64_t) sb.st_size;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int cp_lambda_exists(cp_lambda *l, const char *name, cp_err *err)
{
    pthread_mutex_lock(&l->mu);
    lam_fn *fn = NULL;
    int rc = find_locked(l, name, &fn, err);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int cp_lambda_stats(cp_lambda *l, const char *name, cp_lambda_fn_stats *out, cp_err *err)
{
    pthread_mutex_lock(&l->mu);
    lam_fn *fn = NULL;
    int rc = find_locked(l, name, &fn, err);
    if (rc == CP_OK) {
        *out = fn->st;
        out->live = fn->live;
        out->busy = fn->busy;
        out->in_flight = fn->in_flight;
        out->queued = fn->queued;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                      */

static int is_validation(const char *msg)
{
    const char *p = msg;
    while (*p >= '0' && *p <= '9') {
        p++;
    }
    return p > msg && strncmp(p, " validation error", 17) == 0;
}

const char *cp_lambda_error_type(const cp_err *err)
{
    switch (err->code) {
    case CP_ENOTFOUND:
        return "ResourceNotFoundException";
    case CP_EEXIST:
    case CP_EINUSE:
        return "ResourceConflictException";
    case CP_ELIMIT:
        return "TooManyRequestsException";
    case CP_ETOOBIG:
        return "RequestEntityTooLargeException";
    case CP_EINVAL:
        if (is_validation(err->msg)) {
            return "ValidationException";
        }
        if (strncmp(err->msg, "Could not parse request body", 28) == 0) {
            return "InvalidRequestContentException";
        }
        return "InvalidParameterValueException";
    default:
        return "ServiceException";
    }
}

int cp_lambda_error_status(const char *type)
{
    static const struct {
        const char *type;
        int status;
    } map[] = {
        {"ResourceNotFoundException", 404},
        {"ResourceConflictException", 409},
        {"TooManyRequestsException", 429},
        {"RequestEntityTooLargeException", 413},
        {"ServiceException", 500},
        {"UnknownOperationException", 404},
        {"ResourceNotReadyException", 502},
        {"MissingAuthenticationTokenException", 403},
        {"UnrecognizedClientException", 403},
        {"InvalidSignatureException", 403},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(map[i].type, type) == 0) {
            return map[i].status;
        }
    }
    return 400;
}
