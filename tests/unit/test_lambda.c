/* SPDX-License-Identifier: MIT */
/*
 * Lambda end to end in-process: a real HTTP server on a free port with the Lambda REST API
 * and the Runtime API mounted, functions whose bootstrap is a POSIX sh + curl runtime
 * (tests/data/lambda/echo/bootstrap), driven through libcurl and through cp_lambda_invoke.
 * Covers the control plane, warm reuse, function and init errors, Timeout (kill and replace),
 * crashes, throttling, concurrency, payload limits, asynchronous invokes, deletes and
 * shutdown without zombies. Waiting is polling with deadlines, never a fixed sleep.
 */
#include "cpt.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "aws/proto.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/mem.h"
#include "http/router.h"
#include "http/server.h"
#include "lambda/api.h"
#include "lambda/lambda.h"

/* ------------------------------------------------------------------------------------------ */
/* Environment: registry + router + server                                                     */

typedef struct env {
    cp_lambda *l;
    cp_http_router *r;
    cp_http_server *srv;
    uint16_t port;
} env;

static env g_env;
static cp_aws_router *g_aws;     /* when set, env_open mounts the signed REST API */
static const char *g_sign_creds; /* when set, http() signs as "AKID:SECRET" */

static const char *data_dir(void)
{
    static char p[300];
    snprintf(p, sizeof(p), "%s/data", cpt_tmpdir());
    return p;
}

static void env_open(const cp_lambda_cfg *over)
{
    cp_lambda_cfg cfg = {0};
    if (over) {
        cfg = *over;
    }
    cfg.data_dir = data_dir();
    cp_err err = {0};
    if (cp_lambda_open(&cfg, &g_env.l, &err) != CP_OK) {
        CPT_FAIL_AT("cp_lambda_open: %s", err.msg);
    }
    g_env.r = cp_http_router_new();
    if (g_aws) {
        cp_lambda_api_mount_signed(g_env.r, g_env.l, g_aws);
    } else {
        cp_lambda_api_mount(g_env.r, g_env.l);
    }
    cp_http_cfg hc = {0};
    hc.handler = cp_http_router_handle;
    hc.ctx = g_env.r;
    hc.drain_timeout_s = 5;
    if (cp_http_server_open(&hc, &g_env.srv, &err) != CP_OK) {
        CPT_FAIL_AT("server open: %s", err.msg);
    }
    g_env.port = cp_http_server_port(g_env.srv);
    cp_lambda_attach(g_env.l, g_env.srv, NULL);
}

/* The documented shutdown order (lambda.h). */
static void env_close(void)
{
    cp_http_server_quiesce(g_env.srv);
    cp_lambda_shutdown(g_env.l);
    cp_http_server_close(g_env.srv);
    cp_lambda_close(g_env.l);
    cp_http_router_free(g_env.r);
    memset(&g_env, 0, sizeof(g_env));
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP client                                                                                 */

typedef struct res {
    long status;
    cp_buf body;
    cp_buf headers;
} res;

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    cp_buf_append(ud, p, sz * n);
    return sz * n;
}

static res http(const char *method, const char *path, const char *hdr, cp_slice body)
{
    res r = {0, CP_BUF_INIT, CP_BUF_INIT};
    CURL *c = curl_easy_init();
    char url[1024];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", g_env.port, path);
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    if (hdr) {
        hl = curl_slist_append(hl, hdr);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.p ? body.p : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body.len);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (g_sign_creds) {
        curl_easy_setopt(c, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:lambda");
        curl_easy_setopt(c, CURLOPT_USERPWD, g_sign_creds);
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        CPT_FAIL_AT("%s %s: %s", method, path, curl_easy_strerror(cc));
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    cp_buf_reserve(&r.body, 0);
    cp_buf_reserve(&r.headers, 0);
    return r;
}

static void res_free(res *r)
{
    cp_buf_free(&r->body);
    cp_buf_free(&r->headers);
}

/* Value of response header `name` (case-insensitive) into a static buffer, or NULL. */
static const char *header(const res *r, const char *name)
{
    static char val[512];
    size_t n = strlen(name);
    const char *p = r->headers.p;
    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        if (!eol) {
            break;
        }
        if ((size_t) (eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ') {
                v++;
            }
            snprintf(val, sizeof(val), "%.*s", (int) (eol - v), v);
            return val;
        }
        p = eol + 2;
    }
    return NULL;
}

#define CHECK_HAS(hay, needle)                                                                     \
    do {                                                                                           \
        const char *cpt_h = (hay);                                                                 \
        if (!cpt_h || !strstr(cpt_h, (needle))) {                                                  \
            CPT_FAIL_AT("\"%.600s\" lacks \"%s\"", cpt_h ? cpt_h : "(null)", (needle));            \
        }                                                                                          \
    } while (0)

/* Expect a Lambda error reply: status, x-amzn-ErrorType and a message fragment. */
static void check_error(res *r, long status, const char *type, const char *msg)
{
    if (r->status != status) {
        CPT_FAIL_AT("status %ld != %ld: %s", r->status, status, r->body.p);
    }
    const char *t = header(r, "x-amzn-ErrorType");
    CPT_EQ_STR(t, type);
    CHECK_HAS(r->body.p, msg);
    CHECK_HAS(r->body.p, "\"Type\":\"User\"");
    res_free(r);
}

/* ------------------------------------------------------------------------------------------ */
/* Functions                                                                                   */

static cp_buf g_zip;

static const char *echo_dir(void)
{
    static char p[512];
    /* __FILE__ is tests/unit/test_lambda.c; the runtime lives in tests/data/lambda/echo. */
    snprintf(p, sizeof(p), "%s", __FILE__);
    char *slash = strrchr(p, '/');
    *slash = 0;
    slash = strrchr(p, '/');
    snprintf(slash, sizeof(p) - (size_t) (slash - p), "/data/lambda/echo");
    return p;
}

static cp_buf read_all(const char *path)
{
    cp_buf b = CP_BUF_INIT;
    FILE *f = fopen(path, "rb");
    if (!f) {
        CPT_FAIL_AT("open %s", path);
    }
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        cp_buf_append(&b, tmp, n);
    }
    fclose(f);
    return b;
}

/* The echo runtime zipped with Info-ZIP at test time. */
static cp_buf echo_zip(void)
{
    if (!g_zip.len) {
        char cmd[1200];
        snprintf(cmd, sizeof(cmd), "cd '%s' && zip -q -X '%s/fn.zip' bootstrap", echo_dir(),
                 cpt_tmpdir());
        CPT_EQ_INT(system(cmd), 0);
        char path[400];
        snprintf(path, sizeof(path), "%s/fn.zip", cpt_tmpdir());
        g_zip = read_all(path);
    }
    return g_zip;
}

/* CreateFunction request JSON; `extra` (may be "") is spliced in after the fixed members. */
static cp_buf create_json(const char *name, const char *runtime, const char *env_extra,
                          const char *extra, cp_slice zip)
{
    cp_buf b = CP_BUF_INIT;
    cp_buf_printf(&b,
                  "{\"FunctionName\":\"%s\",\"Runtime\":\"%s\","
                  "\"Role\":\"arn:aws:iam::000000000000:role/lambda-role\","
                  "\"Handler\":\"bootstrap.handler\",\"Environment\":{\"Variables\":"
                  "{\"TMPDIR\":\"%s\",\"GREETING\":\"hi\"%s}}%s,\"Code\":{\"ZipFile\":\"",
                  name, runtime, cpt_tmpdir(), env_extra, extra);
    cp_base64_encode(zip, &b);
    cp_buf_puts(&b, "\"}}");
    return b;
}

static res create(const char *name, const char *runtime, const char *env_extra, const char *extra)
{
    cp_buf j = create_json(name, runtime, env_extra, extra, cp_buf_slice(&g_zip));
    res r = http("POST", "/2015-03-31/functions", NULL, cp_buf_slice(&j));
    cp_buf_free(&j);
    return r;
}

static void create_ok(const char *name, const char *env_extra, const char *extra)
{
    echo_zip();
    res r = create(name, "provided.al2023", env_extra, extra);
    if (r.status != 201) {
        CPT_FAIL_AT("create %s: %ld %s", name, r.status, r.body.p);
    }
    res_free(&r);
}

typedef struct call {
    int rc;
    int fe;
    cp_buf out;
    cp_err err;
} call;

static call invoke(const char *name, const char *payload)
{
    call c = {0, 0, CP_BUF_INIT, {0}};
    c.rc = cp_lambda_invoke(g_env.l, name, cp_slice_str(payload), &c.out, &c.fe, &c.err);
    return c;
}

/* The "pid" member of an echo reply. */
static long pid_of(const call *c)
{
    CPT_EQ_INT(c->rc, CP_OK);
    CPT_EQ_INT(c->fe, 0);
    const char *p = strstr(c->out.p, "\"pid\":");
    CPT_CHECK(p != NULL);
    return strtol(p + 6, NULL, 10);
}

static int64_t now_ms(void)
{
    return cp_clock_mono_ns() / 1000000;
}

/* Poll `cond` every few ms until it holds or `ms` pass. */
static int eventually(int (*cond)(void *), void *arg, int ms)
{
    int64_t end = now_ms() + ms;
    while (!cond(arg)) {
        if (now_ms() > end) {
            return 0;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 1;
}

static cp_lambda_fn_stats stats(const char *name)
{
    cp_lambda_fn_stats st;
    cp_err err = {0};
    CPT_EQ_INT(cp_lambda_stats(g_env.l, name, &st, &err), CP_OK);
    return st;
}

/* Whether a live (non-zombie) process is in process group `pgid`. Killed grandchildren are
 * reparented to init, which in some containers reaps late: their zombies do not count. */
static int group_alive(pid_t pgid)
{
    DIR *d = opendir("/proc");
    CPT_CHECK(d != NULL);
    struct dirent *de;
    int alive = 0;
    while (!alive && (de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9') {
            continue;
        }
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f) {
            continue;
        }
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        char *rp = strrchr(buf, ')');
        char state = 0;
        int ppid = 0, pgrp = 0;
        if (rp && sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) == 3) {
            alive = pgrp == pgid && state != 'Z' && state != 'X';
        }
    }
    closedir(d);
    return alive;
}

static int gone(void *arg)
{
    long pid = *(long *) arg;
    /* The bootstrap is reaped and nothing it started (sleep, curl) still runs. */
    return kill((pid_t) pid, 0) != 0 && errno == ESRCH && !group_alive((pid_t) pid);
}

static int file_exists(void *arg)
{
    struct stat sb;
    return stat((const char *) arg, &sb) == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Control plane                                                                               */

static void control_plane(void)
{
    env_open(NULL);
    cp_buf zip = echo_zip();
    res r = create("f1", "provided.al2023", "", ",\"Timeout\":7,\"Description\":\"d\"");
    CPT_EQ_INT(r.status, 201);
    CHECK_HAS(r.body.p, "\"FunctionName\":\"f1\"");
    CHECK_HAS(r.body.p, "\"FunctionArn\":\"arn:aws:lambda:us-east-1:000000000000:function:f1\"");
    CHECK_HAS(r.body.p, "\"Runtime\":\"provided.al2023\"");
    CHECK_HAS(r.body.p, "\"Timeout\":7");
    CHECK_HAS(r.body.p, "\"MemorySize\":128");
    CHECK_HAS(r.body.p, "\"Version\":\"$LATEST\"");
    CHECK_HAS(r.body.p, "\"State\":\"Active\"");
    CHECK_HAS(r.body.p, "\"PackageType\":\"Zip\"");
    CHECK_HAS(r.body.p, "\"Description\":\"d\"");
    CHECK_HAS(r.body.p, "\"GREETING\":\"hi\"");
    char size[64];
    snprintf(size, sizeof(size), "\"CodeSize\":%zu", zip.len);
    CHECK_HAS(r.body.p, size);
    unsigned char d[32];
    cp_sha256(zip.p, zip.len, d);
    cp_buf sha = CP_BUF_INIT;
    cp_buf_puts(&sha, "\"CodeSha256\":\"");
    cp_base64_encode(cp_slice_of((const char *) d, 32), &sha);
    CHECK_HAS(r.body.p, sha.p);
    cp_buf_free(&sha);
    /* LastModified like 2026-11-26T05:00:00.000+0000 */
    const char *lm = strstr(r.body.p, "\"LastModified\":\"");
    CPT_CHECK(lm && strlen(lm) > 45 && memcmp(lm + 16 + 10, "T", 1) == 0 &&
              memcmp(lm + 16 + 23, "+0000\"", 6) == 0);
    CPT_CHECK(header(&r, "x-amzn-RequestId") != NULL);
    res_free(&r);

    r = create("f1", "provided.al2023", "", "");
    check_error(&r, 409, "ResourceConflictException", "Function already exist: f1");
    r = create("py", "python3.12", "", "");
    check_error(&r, 400, "InvalidParameterValueException",
                "Runtime python3.12 is not supported by changepipe: only custom runtimes "
                "(provided, provided.al2, provided.al2023) run here");
    r = create("t", "provided", "", ",\"Timeout\":901");
    check_error(&r, 400, "ValidationException",
                "Value '901' at 'timeout' failed to satisfy constraint: Member must have value "
                "less than or equal to 900");
    r = create("m", "provided.al2", "", ",\"MemorySize\":64");
    check_error(&r, 400, "ValidationException", "at 'memorySize'");
    r = create("e", "provided", ",\"AWS_REGION\":\"x\"", "");
    check_error(&r, 400, "InvalidParameterValueException",
                "Reserved keys used in this request: AWS_REGION");
    r = create("bad name!", "provided", "", "");
    check_error(&r, 400, "ValidationException", "at 'functionName'");
    r = http("POST", "/2015-03-31/functions", NULL, CP_SLICE("{not json"));
    check_error(&r, 400, "InvalidRequestContentException", "Could not parse request body");
    r = http("POST", "/2015-03-31/functions", NULL,
             CP_SLICE("{\"FunctionName\":\"x\",\"Runtime\":\"provided\",\"Handler\":\"h\","
                      "\"Code\":{\"ZipFile\":\"AAAA\"}}"));
    check_error(&r, 400, "ValidationException", "Value null at 'role'");
    cp_buf j = CP_BUF_INIT;
    cp_buf_puts(&j, "{\"FunctionName\":\"z\",\"Runtime\":\"provided\",\"Handler\":\"h\","
                    "\"Role\":\"arn:aws:iam::000000000000:role/r\",\"Code\":{\"ZipFile\":\"");
    cp_base64_encode(CP_SLICE("definitely not a zip archive"), &j);
    cp_buf_puts(&j, "\"}}");
    r = http("POST", "/2015-03-31/functions", NULL, cp_buf_slice(&j));
    check_error(&r, 400, "InvalidParameterValueException", "Could not unzip uploaded file");
    cp_buf_free(&j);
    r = http("GET", "/2015-03-31/functions/z", NULL, CP_SLICE(""));
    check_error(&r, 404, "ResourceNotFoundException", "Function not found");

    create_ok("f3", "", "");
    create_ok("f2", "", "");
    r = http("GET", "/2015-03-31/functions/?MaxItems=2", NULL, CP_SLICE(""));
    CPT_EQ_INT(r.status, 200);
    CHECK_HAS(r.body.p, "\"FunctionName\":\"f1\"");
    CHECK_HAS(r.body.p, "\"FunctionName\":\"f2\"");
    CPT_CHECK(!strstr(r.body.p, "\"FunctionName\":\"f3\""));
    CHECK_HAS(r.body.p, "\"NextMarker\":\"f2\"");
    res_free(&r);
    r = http("GET", "/2015-03-31/functions/?Marker=f2&MaxItems=2", NULL, CP_SLICE(""));
    CHECK_HAS(r.body.p, "\"FunctionName\":\"f3\"");
    CPT_CHECK(!strstr(r.body.p, "\"FunctionName\":\"f1\""));
    CPT_CHECK(!strstr(r.body.p, "NextMarker"));
    res_free(&r);
    r = http("GET", "/2015-03-31/functions/?MaxItems=0", NULL, CP_SLICE(""));
    check_error(&r, 400, "ValidationException", "maxItems");

    r = http("GET", "/2015-03-31/functions/f1", NULL, CP_SLICE(""));
    CPT_EQ_INT(r.status, 200);
    CHECK_HAS(r.body.p, "{\"Configuration\":{\"FunctionName\":\"f1\"");
    CHECK_HAS(r.body.p, "\"Code\":{\"RepositoryType\":\"S3\",\"Location\":\"http://127.0.0.1:");
    res_free(&r);
    /* By ARN, percent-encoded as the CLI sends it, and by partial ARN. */
    r = http("GET",
             "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af1",
             NULL, CP_SLICE(""));
    CPT_EQ_INT(r.status, 200);
    res_free(&r);
    r = http("GET", "/2015-03-31/functions/000000000000:function:f1/configuration", NULL,
             CP_SLICE(""));
    CPT_EQ_INT(r.status, 200);
    CHECK_HAS(r.body.p, "{\"FunctionName\":\"f1\"");
    res_free(&r);
    r = http("GET", "/2015-03-31/functions/f1?Qualifier=%24LATEST", NULL, CP_SLICE(""));
    CPT_EQ_INT(r.status, 200);
    res_free(&r);
    r = http("GET", "/2015-03-31/functions/f1?Qualifier=1", NULL, CP_SLICE(""));
    check_error(&r, 404, "ResourceNotFoundException",
                "\"Message\":\"Function not found: "
                "arn:aws:lambda:us-east-1:000000000000:function:f1:1\"");
    r = http("GET", "/2015-03-31/functions/f1/code", NULL, CP_SLICE(""));
    CPT_EQ_INT(r.status, 200);
    CPT_EQ_MEM(r.body.p, r.body.len, zip.p, zip.len);
    res_free(&r);

    r = http("DELETE", "/2015-03-31/functions/f2", NULL, CP_SLICE(""));
    CPT_EQ_INT(r.status, 204);
    res_free(&r);
    r = http("GET", "/2015-03-31/functions/f2", NULL, CP_SLICE(""));
    check_error(&r, 404, "ResourceNotFoundException", "function:f2");
    r = http("DELETE", "/2015-03-31/functions/f2", NULL, CP_SLICE(""));
    check_error(&r, 404, "ResourceNotFoundException", "function:f2");

    /* The registry survives a restart; the deleted function's files are gone. */
    env_close();
    env_open(NULL);
    r = http("GET", "/2015-03-31/functions/", NULL, CP_SLICE(""));
    CHECK_HAS(r.body.p, "\"FunctionName\":\"f1\"");
    CHECK_HAS(r.body.p, "\"FunctionName\":\"f3\"");
    CHECK_HAS(r.body.p, "\"Timeout\":7");
    CPT_CHECK(!strstr(r.body.p, "\"f2\""));
    res_free(&r);
    char path[400];
    snprintf(path, sizeof(path), "%s/lambda/f2", data_dir());
    CPT_CHECK(!file_exists(path));
    snprintf(path, sizeof(path), "%s/lambda/f1/code/bootstrap", data_dir());
    struct stat sb;
    CPT_EQ_INT(stat(path, &sb), 0);
    CPT_CHECK(sb.st_mode & S_IXUSR);
    env_close();
    cp_buf_free(&g_zip);
}

/* ------------------------------------------------------------------------------------------ */
/* Invoke                                                                                      */

static void invoke_echo(void)
{
    env_open(NULL);
    create_ok("echo", "", ",\"MemorySize\":256");
    res r = http("POST", "/2015-03-31/functions/echo/invocations", NULL,
                 CP_SLICE("{\"k\":\"v\",\"n\":[1,2]}"));
    CPT_EQ_INT(r.status, 200);
    CHECK_HAS(r.body.p, "{\"echo\":{\"k\":\"v\",\"n\":[1,2]},");
    CHECK_HAS(r.body.p, "\"fn\":\"echo\"");
    CHECK_HAS(r.body.p, "\"greeting\":\"hi\"");
    CHECK_HAS(r.body.p, "\"handler\":\"bootstrap.handler\"");
    CHECK_HAS(r.body.p, "\"memory\":\"256\"");
    CHECK_HAS(r.body.p, "\"region\":\"us-east-1\"");
    CHECK_HAS(r.body.p, "\"arn\":\"arn:aws:lambda:us-east-1:000000000000:function:echo\"");
    CHECK_HAS(r.body.p, "/lambda/echo/code\"");
    CHECK_HAS(r.body.p, "\"trace\":\"Root=1-");
    /* The per-instance endpoint: host:port plus the /_lambda/<token> prefix (lambda.h). */
    char api[80];
    snprintf(api, sizeof(api), "\"api\":\"127.0.0.1:%u/_lambda/", g_env.port);
    const char *ap = strstr(r.body.p, api);
    CPT_CHECK(ap != NULL);
    ap += strlen(api);
    for (int i = 0; i < 32; i++) {
        CPT_CHECK(strchr("0123456789abcdef", ap[i]) != NULL);
    }
    CPT_EQ_INT(ap[32], '"');
    /* The deadline told to the runtime is about Timeout (3 s) from now. */
    const char *dl = strstr(r.body.p, "\"deadline\":\"");
    CPT_CHECK(dl != NULL);
    long long deadline = strtoll(dl + 12, NULL, 10);
    long long wall = (long long) cp_clock_now_ms();
    CPT_CHECK(deadline > wall && deadline <= wall + 3000);
    CPT_EQ_STR(header(&r, "X-Amz-Executed-Version"), "$LATEST");
    CPT_CHECK(header(&r, "X-Amz-Function-Error") == NULL);
    res_free(&r);

    /* Warm reuse: the same process answers again, nothing new is started. */
    call a = invoke("echo", "{\"a\":1}");
    call b = invoke("arn:aws:lambda:us-east-1:000000000000:function:echo:$LATEST", "{\"b\":2}");
    CPT_EQ_INT(pid_of(&a), pid_of(&b));
    CHECK_HAS(b.out.p, "\"echo\":{\"b\":2}");
    CPT_EQ_INT(stats("echo").started, 1);
    CPT_EQ_INT(stats("echo").invocations, 3);
    cp_buf_free(&a.out);
    cp_buf_free(&b.out);

    /* An empty payload reaches the function as {}; a non-JSON one is refused. */
    r = http("POST", "/2015-03-31/functions/echo/invocations", NULL, CP_SLICE(""));
    CHECK_HAS(r.body.p, "{\"echo\":{},");
    res_free(&r);
    r = http("POST", "/2015-03-31/functions/echo/invocations", NULL, CP_SLICE("not json"));
    check_error(&r, 400, "InvalidRequestContentException", "Could not parse payload into json");
    r = http("POST", "/2015-03-31/functions/echo/invocations", "X-Amz-Invocation-Type: DryRun",
             CP_SLICE("{}"));
    CPT_EQ_INT(r.status, 204);
    res_free(&r);
    r = http("POST", "/2015-03-31/functions/nope/invocations", NULL, CP_SLICE("{}"));
    check_error(&r, 404, "ResourceNotFoundException", "function:nope");
    call c = invoke("nope", "{}");
    CPT_EQ_INT(c.rc, CP_ENOTFOUND);
    env_close();
    cp_buf_free(&g_zip);
}

static void function_error(void)
{
    env_open(NULL);
    create_ok("fe", "", "");
    call a = invoke("fe", "{}");
    long pid = pid_of(&a);
    res r = http("POST", "/2015-03-31/functions/fe/invocations", NULL, CP_SLICE("{\"fail\":1}"));
    CPT_EQ_INT(r.status, 200);
    CPT_EQ_STR(header(&r, "X-Amz-Function-Error"), "Unhandled");
    CPT_EQ_STR(r.body.p, "{\"errorMessage\":\"failed on purpose\",\"errorType\":\"Test.Failure\"}");
    res_free(&r);
    call b = invoke("fe", "{\"fail\":2}");
    CPT_EQ_INT(b.rc, CP_OK);
    CPT_EQ_INT(b.fe, 1);
    CHECK_HAS(b.out.p, "Test.Failure");
    /* A reported error leaves the instance healthy. */
    call c = invoke("fe", "{}");
    CPT_EQ_INT(pid_of(&c), pid);
    cp_buf_free(&a.out);
    cp_buf_free(&b.out);
    cp_buf_free(&c.out);
    env_close();
    cp_buf_free(&g_zip);
}

static int exited_at_least_2(void *arg)
{
    return stats((const char *) arg).exited >= 2;
}

static void init_error(void)
{
    env_open(NULL);
    create_ok("ie", ",\"INIT_FAIL\":\"1\"", "");
    for (int i = 0; i < 2; i++) {
        call a = invoke("ie", "{}");
        CPT_EQ_INT(a.rc, CP_OK);
        CPT_EQ_INT(a.fe, 1);
        CPT_EQ_STR(
            a.out.p,
            "{\"errorMessage\":\"init failed on purpose\",\"errorType\":\"Runtime.TestInit\"}");
        cp_buf_free(&a.out);
    }
    /* Each cold start failed, so each invoke started (and lost) its own instance. */
    CPT_EQ_INT(stats("ie").started, 2);
    CPT_CHECK(eventually(exited_at_least_2, "ie", 5000));
    CPT_EQ_INT(stats("ie").live, 0);
    env_close();
    cp_buf_free(&g_zip);
}

static void timeout_kills_and_replaces(void)
{
    env_open(NULL);
    create_ok("to", "", ",\"Timeout\":1");
    call a = invoke("to", "{}");
    long p1 = pid_of(&a);
    int64_t t0 = now_ms();
    call b = invoke("to", "{\"sleep\":1}");
    int64_t took = now_ms() - t0;
    CPT_EQ_INT(b.rc, CP_OK);
    CPT_EQ_INT(b.fe, 1);
    CHECK_HAS(b.out.p, "\"errorType\":\"Sandbox.Timedout\"");
    CHECK_HAS(b.out.p, "Task timed out after 1.00 seconds");
    CPT_CHECK(took >= 1000 && took < 5000);
    CPT_EQ_INT(stats("to").timeouts, 1);
    /* The instance and its `sleep 60` child are killed and reaped... */
    CPT_CHECK(eventually(gone, &p1, 5000));
    /* ...and a new instance serves the next invoke. */
    call c = invoke("to", "{}");
    long p2 = pid_of(&c);
    CPT_CHECK(p2 != p1);
    CPT_EQ_INT(stats("to").started, 2);
    cp_buf_free(&a.out);
    cp_buf_free(&b.out);
    cp_buf_free(&c.out);
    env_close();
    cp_buf_free(&g_zip);
}

static void crash_restarts(void)
{
    env_open(NULL);
    create_ok("cr", "", "");
    call a = invoke("cr", "{}");
    long p1 = pid_of(&a);
    call b = invoke("cr", "{\"crash\":1}");
    CPT_EQ_INT(b.rc, CP_OK);
    CPT_EQ_INT(b.fe, 1);
    CHECK_HAS(b.out.p, "\"errorType\":\"Runtime.ExitError\"");
    CHECK_HAS(b.out.p, "Runtime exited with error: exit status 3");
    call c = invoke("cr", "{}");
    long p2 = pid_of(&c);
    CPT_CHECK(p2 != p1);
    CPT_CHECK(eventually(gone, &p1, 5000));
    CPT_CHECK(stats("cr").exited >= 1);
    cp_buf_free(&a.out);
    cp_buf_free(&b.out);
    cp_buf_free(&c.out);
    env_close();
    cp_buf_free(&g_zip);
}

static int idle_reaped(void *arg)
{
    cp_lambda_fn_stats st = stats((const char *) arg);
    return st.live == 0 && st.exited == 1;
}

/* Instances idle past idle_timeout_ms are stopped; one that never asks for work within
 * init_timeout_ms is killed and the invoke that waited for it fails. */
static void idle_and_init_timeouts(void)
{
    cp_lambda_cfg cfg = {0};
    cfg.idle_timeout_ms = 300;
    cfg.init_timeout_ms = 500;
    env_open(&cfg);
    create_ok("idle", "", "");
    call a = invoke("idle", "{}");
    long p1 = pid_of(&a);
    CPT_CHECK(eventually(idle_reaped, "idle", 5000));
    CPT_CHECK(eventually(gone, &p1, 5000));
    call b = invoke("idle", "{}");
    CPT_CHECK(pid_of(&b) != p1);
    CPT_EQ_INT(stats("idle").started, 2);
    cp_buf_free(&a.out);
    cp_buf_free(&b.out);

    create_ok("hang", ",\"INIT_HANG\":\"1\"", "");
    int64_t t0 = now_ms();
    call c = invoke("hang", "{}");
    CPT_EQ_INT(c.rc, CP_OK);
    CPT_EQ_INT(c.fe, 1);
    CHECK_HAS(c.out.p, "\"errorType\":\"Sandbox.Timedout\"");
    CHECK_HAS(c.out.p, "Runtime init timed out after 500 ms");
    CPT_CHECK(now_ms() - t0 >= 500);
    cp_buf_free(&c.out);
    env_close();
    cp_buf_free(&g_zip);
}

/* ------------------------------------------------------------------------------------------ */
/* Concurrency                                                                                 */

typedef struct job {
    const char *name;
    char payload[64];
    int n;
    call results[8];
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    for (int i = 0; i < j->n; i++) {
        j->results[i] = invoke(j->name, j->payload);
    }
    return NULL;
}

static int busy_is(void *arg)
{
    const int *want = arg;
    return (int) stats("th").busy == *want;
}

static void release(void)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/release", cpt_tmpdir());
    FILE *f = fopen(path, "w");
    CPT_CHECK(f != NULL);
    fclose(f);
}

static void throttling(void)
{
    cp_lambda_cfg cfg = {0};
    cfg.concurrency = 2;
    cfg.queue_timeout_ms = 300;
    env_open(&cfg);
    create_ok("th", "", "");
    job jobs[2] = {{"th", "{\"hold\":1}", 1, {{0}}}, {"th", "{\"hold\":2}", 1, {{0}}}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        pthread_create(&t[i], NULL, run_job, &jobs[i]);
    }
    int two = 2;
    CPT_CHECK(eventually(busy_is, &two, 10000));
    /* Both slots busy: after the queue wait, TooManyRequestsException. */
    int64_t t0 = now_ms();
    call c = invoke("th", "{}");
    CPT_EQ_INT(c.rc, CP_ELIMIT);
    CPT_EQ_STR(c.err.msg, "Rate Exceeded.");
    CPT_CHECK(now_ms() - t0 >= 250);
    res r = http("POST", "/2015-03-31/functions/th/invocations", NULL, CP_SLICE("{}"));
    CPT_EQ_INT(r.status, 429);
    CPT_EQ_STR(header(&r, "x-amzn-ErrorType"), "TooManyRequestsException");
    CHECK_HAS(r.body.p, "\"Reason\":\"ReservedFunctionConcurrentInvocationLimitExceeded\"");
    CHECK_HAS(r.body.p, "\"message\":\"Rate Exceeded.\"");
    res_free(&r);
    CPT_EQ_INT(stats("th").throttled, 2);
    CPT_EQ_INT(stats("th").started, 2);
    release();
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        CPT_EQ_INT(jobs[i].results[0].rc, CP_OK);
        CPT_EQ_INT(jobs[i].results[0].fe, 0);
        CHECK_HAS(jobs[i].results[0].out.p, "\"hold\":");
        cp_buf_free(&jobs[i].results[0].out);
    }
    env_close();
    cp_buf_free(&g_zip);
}

static void concurrent_invokes(void)
{
    cp_lambda_cfg cfg = {0};
    cfg.concurrency = 3;
    cfg.queue_timeout_ms = 30000;
    env_open(&cfg);
    create_ok("cc", "", "");
    enum { THREADS = 6, EACH = 4 };
    job jobs[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i].name = "cc";
        snprintf(jobs[i].payload, sizeof(jobs[i].payload), "{\"thread\":%d}", i);
        jobs[i].n = EACH;
        pthread_create(&t[i], NULL, run_job, &jobs[i]);
    }
    long pids[THREADS * EACH];
    int npids = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        char want[64];
        snprintf(want, sizeof(want), "{\"echo\":{\"thread\":%d},", i);
        for (int k = 0; k < EACH; k++) {
            call *c = &jobs[i].results[k];
            CPT_EQ_INT(c->rc, CP_OK);
            CHECK_HAS(c->out.p, want);
            long p = pid_of(c);
            int seen = 0;
            for (int m = 0; m < npids; m++) {
                seen |= pids[m] == p;
            }
            if (!seen) {
                pids[npids++] = p;
            }
            cp_buf_free(&c->out);
        }
    }
    /* Never more processes than the concurrency limit, all of them reused. */
    CPT_CHECK(npids >= 1 && npids <= 3);
    cp_lambda_fn_stats st = stats("cc");
    CPT_CHECK(st.started <= 3);
    CPT_EQ_INT(st.invocations, THREADS * EACH);
    CPT_EQ_INT(st.in_flight, 0);
    env_close();
    cp_buf_free(&g_zip);
}

/* ------------------------------------------------------------------------------------------ */
/* Limits, runtime API misuse, async, missing bootstrap                                        */

static void payload_limits(void)
{
    env_open(NULL);
    create_ok("pl", "", "");
    size_t n = CP_LAMBDA_MAX_REQUEST + 1;
    char *big = cp_malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '1';
    big[n] = 0;
    call a = invoke("pl", big);
    CPT_EQ_INT(a.rc, CP_ETOOBIG);
    CHECK_HAS(a.err.msg, "Request must be smaller than 6291456 bytes for the InvokeFunction");
    res r = http("POST", "/2015-03-31/functions/pl/invocations", NULL, cp_slice_of(big, n));
    check_error(&r, 413, "RequestEntityTooLargeException", "Request must be smaller than");
    cp_free(big);
    /* A reply over 6 MB fails the invocation as a function error. */
    call b = invoke("pl", "{\"big\":1}");
    CPT_EQ_INT(b.rc, CP_OK);
    CPT_EQ_INT(b.fe, 1);
    CHECK_HAS(b.out.p, "\"errorType\":\"Function.ResponseSizeTooLarge\"");
    CHECK_HAS(b.out.p, "6291556 bytes");
    cp_buf_free(&b.out);
    call c = invoke("pl", "{}");
    CPT_EQ_INT(c.fe, 0);
    cp_buf_free(&c.out);
    env_close();
    cp_buf_free(&g_zip);
}

static void runtime_api_misuse(void)
{
    env_open(NULL);
    res r = http("GET", "/2018-06-01/runtime/invocation/next", NULL, CP_SLICE(""));
    CPT_EQ_INT(r.status, 400);
    CHECK_HAS(r.body.p, "\"errorType\":\"InvalidRuntimeEndpoint\"");
    res_free(&r);
    r = http("GET", "/_lambda/0123456789abcdef0123456789abcdef/2018-06-01/runtime/invocation/next",
             NULL, CP_SLICE(""));
    CPT_EQ_INT(r.status, 403);
    res_free(&r);
    r = http("POST", "/2018-06-01/runtime/invocation/no-such-id/response", NULL, CP_SLICE("{}"));
    CPT_EQ_INT(r.status, 400);
    CHECK_HAS(r.body.p, "\"errorType\":\"InvalidRequestID\"");
    res_free(&r);
    r = http("POST", "/2018-06-01/runtime/nope", NULL, CP_SLICE("{}"));
    CPT_EQ_INT(r.status, 404);
    res_free(&r);
    env_close();
}

static void async_event(void)
{
    env_open(NULL);
    create_ok("ev", "", "");
    res r = http("POST", "/2015-03-31/functions/ev/invocations", "X-Amz-Invocation-Type: Event",
                 CP_SLICE("{\"mark\":1}"));
    CPT_EQ_INT(r.status, 202);
    CPT_EQ_INT(r.body.len, 0);
    res_free(&r);
    char path[400];
    snprintf(path, sizeof(path), "%s/marked", cpt_tmpdir());
    CPT_CHECK(eventually(file_exists, path, 10000));
    env_close();
    cp_buf_free(&g_zip);
}

static void missing_bootstrap(void)
{
    env_open(NULL);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "cd '%s' && echo hi > README && zip -q nb.zip README", cpt_tmpdir());
    CPT_EQ_INT(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s/nb.zip", cpt_tmpdir());
    g_zip = read_all(cmd);
    res r = create("nb", "provided.al2", "", "");
    CPT_EQ_INT(r.status, 201); /* as in Lambda, the package is only checked when it runs */
    res_free(&r);
    call a = invoke("nb", "{}");
    CPT_EQ_INT(a.rc, CP_OK);
    CPT_EQ_INT(a.fe, 1);
    CHECK_HAS(a.out.p, "\"errorType\":\"Runtime.InvalidEntrypoint\"");
    CHECK_HAS(a.out.p, "No such file or directory");
    cp_buf_free(&a.out);
    env_close();
    cp_buf_free(&g_zip);
}

/* ------------------------------------------------------------------------------------------ */
/* Delete and shutdown while busy                                                              */

static int busy_one(void *arg)
{
    cp_lambda_fn_stats st;
    cp_err err;
    return cp_lambda_stats(g_env.l, (const char *) arg, &st, &err) == CP_OK && st.busy == 1;
}

static void delete_while_running(void)
{
    env_open(NULL);
    create_ok("dw", "", "");
    job j = {"dw", "{\"hold\":1}", 1, {{0}}};
    pthread_t t;
    pthread_create(&t, NULL, run_job, &j);
    CPT_CHECK(eventually(busy_one, "dw", 10000));
    cp_err err = {0};
    CPT_EQ_INT(cp_lambda_delete(g_env.l, "dw", &err), CP_OK);
    pthread_join(t, NULL);
    CPT_EQ_INT(j.results[0].rc, CP_ENOTFOUND);
    CHECK_HAS(j.results[0].err.msg, "Function not found");
    call c = invoke("dw", "{}");
    CPT_EQ_INT(c.rc, CP_ENOTFOUND);
    env_close();
    cp_buf_free(&g_zip);
}

static void shutdown_no_zombies(void)
{
    cp_lambda_cfg cfg = {0};
    cfg.concurrency = 2;
    env_open(&cfg);
    create_ok("sd", "", "");
    call warm = invoke("sd", "{}");
    long busy_pid = pid_of(&warm);
    cp_buf_free(&warm.out);
    /* Instance A runs a held invocation through the shutdown... */
    job j = {"sd", "{\"hold\":1}", 1, {{0}}};
    pthread_t t;
    pthread_create(&t, NULL, run_job, &j);
    CPT_CHECK(eventually(busy_one, "sd", 10000));
    /* ...while instance B, started for this invoke, sits idle in its /next long poll. */
    call second = invoke("sd", "{}");
    long idle_pid = pid_of(&second);
    CPT_CHECK(idle_pid != busy_pid);
    cp_buf_free(&second.out);
    env_close();
    pthread_join(t, NULL);
    CPT_EQ_INT(j.results[0].rc, CP_ECLOSED);
    /* Every child was killed and reaped: this process has none left. */
    CPT_EQ_INT(waitpid(-1, NULL, WNOHANG), -1);
    CPT_EQ_INT(errno, ECHILD);
    CPT_CHECK(eventually(gone, &busy_pid, 5000));
    CPT_CHECK(eventually(gone, &idle_pid, 5000));
    cp_buf_free(&g_zip);
}

/* With credentials configured the REST API wants SigV4; the Runtime API never does. */
static void signed_rest_api(void)
{
    cp_sigv4_cred cred = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
    g_aws = cp_aws_router_new(&(cp_aws_router_cfg){&cred, 1, NULL});
    env_open(NULL);
    echo_zip();
    res r = create("sig", "provided", "", "");
    CPT_EQ_INT(r.status, 403);
    CPT_EQ_STR(header(&r, "x-amzn-ErrorType"), "MissingAuthenticationTokenException");
    res_free(&r);
    g_sign_creds = "AKIDEXAMPLE:not-the-secret";
    r = create("sig", "provided", "", "");
    CPT_EQ_INT(r.status, 403);
    CPT_EQ_STR(header(&r, "x-amzn-ErrorType"), "InvalidSignatureException");
    res_free(&r);
    g_sign_creds = "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    r = create("sig", "provided", "", "");
    CPT_EQ_INT(r.status, 201);
    res_free(&r);
    /* The bootstrap's unsigned Runtime API calls go through. */
    r = http("POST", "/2015-03-31/functions/sig/invocations", NULL, CP_SLICE("{\"s\":1}"));
    CPT_EQ_INT(r.status, 200);
    CHECK_HAS(r.body.p, "{\"echo\":{\"s\":1},");
    res_free(&r);
    g_sign_creds = NULL;
    env_close();
    cp_aws_router_free(g_aws);
    g_aws = NULL;
    cp_buf_free(&g_zip);
}

CPT_LIST = {
    {"control_plane", control_plane},
    {"invoke_echo", invoke_echo},
    {"function_error", function_error},
    {"init_error", init_error},
    {"timeout_kills_and_replaces", timeout_kills_and_replaces},
    {"crash_restarts", crash_restarts},
    {"idle_and_init_timeouts", idle_and_init_timeouts},
    {"throttling", throttling},
    {"concurrent_invokes", concurrent_invokes},
    {"payload_limits", payload_limits},
    {"runtime_api_misuse", runtime_api_misuse},
    {"async_event", async_event},
    {"missing_bootstrap", missing_bootstrap},
    {"delete_while_running", delete_while_running},
    {"shutdown_no_zombies", shutdown_no_zombies},
    {"signed_rest_api", signed_rest_api},
    {0},
};
