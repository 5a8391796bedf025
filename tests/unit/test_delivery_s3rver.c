/* SPDX-License-Identifier: MIT */
/*
 * The s3 sink against a third-party S3 server: the npm package s3rver (pinned in
 * tests/blackbox/package.json; install with `npm ci --prefix tests/blackbox`), started by each
 * test on a free port in its own temporary directory through tests/blackbox/s3rver_run.js.
 * Objects go in through the sink and come back through GetObject byte for byte; the server is
 * killed mid-way and restarted on the same port and directory to check the sink answers
 * CP_RETRY while it is down and delivers once it is back. Waits poll with deadlines.
 *
 * Without node or the installed package every test prints "skipped: s3rver not installed" and
 * passes, so unit runs do not need npm; CP_REQUIRE_S3RVER=1 (set it in CI) turns that into a
 * failure.
 */
#include "cpt.h"

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <libdeflate.h>
#include <limits.h>
#include <time.h>

#include "core/clock.h"
#include "delivery/s3client.h"
#include "delivery/sink.h"

#define BUCKET "cp-sink"
#define MIB    (1024u * 1024u)
/* s3rver checks the access key (it ignores V4 signatures): its one built-in account. */
#define S3RVER_KEY "S3RVER"

typedef struct s3rver {
    pid_t pid;
    char blackbox[PATH_MAX]; /* tests/blackbox */
    char data[PATH_MAX];
    char ready[PATH_MAX];
    char log[PATH_MAX];
    unsigned port;
    char endpoint[64];
} s3rver;

/* tests/blackbox next to this file, or $CP_BLACKBOX_DIR. */
static void blackbox_dir(char *out, size_t cap)
{
    const char *env = getenv("CP_BLACKBOX_DIR");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    snprintf(out, cap, "%s", __FILE__);
    char *slash = strrchr(out, '/');
    if (slash) {
        *slash = 0; /* tests/unit */
        slash = strrchr(out, '/');
    }
    if (slash) {
        snprintf(slash, cap - (size_t) (slash - out), "/blackbox");
    } else {
        snprintf(out, cap, "tests/blackbox");
    }
}

static int node_available(void)
{
    return system("node --version >/dev/null 2>&1") == 0;
}

/* 1 when the test can run; otherwise prints why and returns 0 (or fails when required). */
static int s3rver_installed(s3rver *s)
{
    memset(s, 0, sizeof(*s));
    s->pid = -1;
    blackbox_dir(s->blackbox, sizeof(s->blackbox));
    char pkg[PATH_MAX + 64];
    snprintf(pkg, sizeof(pkg), "%s/node_modules/s3rver/package.json", s->blackbox);
    int ok = access(pkg, R_OK) == 0 && node_available();
    if (!ok) {
        const char *req = getenv("CP_REQUIRE_S3RVER");
        if (req && strcmp(req, "1") == 0) {
            CPT_FAIL_AT("s3rver required but not installed at %s (npm ci --prefix "
                        "tests/blackbox)",
                        pkg);
        }
        printf("skipped: s3rver not installed (npm ci --prefix tests/blackbox)\n");
    }
    return ok;
}

static void wait_ready(s3rver *s)
{
    int64_t deadline = cp_clock_mono_ns() + 30 * 1000000000ll;
    for (;;) {
        FILE *f = fopen(s->ready, "r");
        if (f) {
            unsigned port = 0;
            int n = fscanf(f, "%u", &port);
            fclose(f);
            if (n == 1 && port > 0) {
                CPT_CHECK(s->port == 0 || s->port == port);
                s->port = port;
                return;
            }
        }
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            char cmd[PATH_MAX + 16];
            snprintf(cmd, sizeof(cmd), "cat '%s' >&2", s->log);
            (void) system(cmd);
            s->pid = -1;
            CPT_FAIL_AT("s3rver exited before it was ready");
        }
        if (cp_clock_mono_ns() > deadline) {
            CPT_FAIL_AT("s3rver not ready within 30 s");
        }
        struct timespec ts = {0, 20 * 1000000}; /* poll interval, not synchronisation */
        nanosleep(&ts, NULL);
    }
}

/* Start s3rver on s->port (0 = any free one) serving s->data. */
static void s3rver_start(s3rver *s)
{
    if (!s->data[0]) {
        snprintf(s->data, sizeof(s->data), "%s/s3rver-data", cpt_tmpdir());
        snprintf(s->ready, sizeof(s->ready), "%s/s3rver-ready", cpt_tmpdir());
        snprintf(s->log, sizeof(s->log), "%s/s3rver.log", cpt_tmpdir());
    }
    unlink(s->ready);
    char script[PATH_MAX + 32], port[16];
    snprintf(script, sizeof(script), "%s/s3rver_run.js", s->blackbox);
    snprintf(port, sizeof(port), "%u", s->port);
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    CPT_CHECK(pid >= 0);
    if (pid == 0) {
        /* Never outlive the test process, whichever way it ends (failed check, timeout). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execlp("node", "node", script, s->data, port, s->ready, BUCKET, (char *) NULL);
        _exit(127);
    }
    s->pid = pid;
    wait_ready(s);
    snprintf(s->endpoint, sizeof(s->endpoint), "http://127.0.0.1:%u", s->port);
}

/* SIGKILL: the server vanishes mid-way, as in a crash. */
static void s3rver_kill(s3rver *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = -1;
    }
}

static cp_s3_sink_cfg cfg_for(const char *endpoint)
{
    cp_s3_sink_cfg c = CP_S3_SINK_CFG_INIT;
    c.endpoint = endpoint;
    c.region = "us-east-1";
    c.access_key = S3RVER_KEY;
    c.secret_key = "S3RVER";
    c.timeout_ms = 30000;
    c.connect_timeout_ms = 2000;
    return c;
}

static void fill_random(char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (char) (x >> 24);
    }
}

/* Real gzip bytes, so a server that decoded Content-Encoding on upload would be caught. */
static void gzip_of(const char *text, cp_buf *out)
{
    struct libdeflate_compressor *z = libdeflate_alloc_compressor(6);
    size_t len = strlen(text);
    size_t cap = libdeflate_gzip_compress_bound(z, len);
    cp_buf_reserve(out, cap);
    out->len = libdeflate_gzip_compress(z, text, len, out->p, cap);
    CPT_CHECK(out->len > 0);
    libdeflate_free_compressor(z);
}

static int put(void *sink, const char *key, cp_slice body, const char *enc, cp_err *err)
{
    cp_object o = {BUCKET, cp_slice_str(key), body, enc};
    return cp_sink_s3.put_object(sink, &o, err);
}

static void expect_object(const char *endpoint, const char *key, cp_slice want,
                          const char *want_encoding)
{
    cp_s3_sink_cfg c = cfg_for(endpoint);
    cp_s3client *cl = NULL;
    cp_err err = {0};
    CPT_EQ_INT(cp_s3client_new(&c, &cl, &err), CP_OK);
    cp_buf got = CP_BUF_INIT;
    cp_s3_obj_info info;
    int rc = cp_s3client_get(cl, BUCKET, cp_slice_str(key), 0, 0, 0, &got, &info, NULL, &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("get %s: %s", key, err.msg);
    }
    CPT_EQ_INT(got.len, want.len);
    CPT_CHECK(memcmp(got.p, want.p, want.len) == 0);
    CPT_EQ_INT(info.size, want.len);
    CPT_EQ_STR(info.content_encoding, want_encoding ? want_encoding : "");
    CPT_EQ_STR(info.content_type, "application/octet-stream");
    cp_buf_free(&got);
    cp_s3client_free(cl);
}

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                       */

static void small_and_gzip_objects(void)
{
    s3rver s;
    if (!s3rver_installed(&s)) {
        return;
    }
    s3rver_start(&s);
    cp_s3_sink_cfg c = cfg_for(s.endpoint);
    void *sink = NULL;
    cp_err err = {0};
    CPT_EQ_INT(cp_s3_sink_new(&c, &sink, &err), CP_OK);

    const char *plain = "{\"LivestreamID\":\"42\",\"n\":1.50}\n{\"LivestreamID\":\"42\",\"n\":2}\n";
    const char *k1 = "Livestreams/LivestreamID=42/delivery-1-2024-05-06-07-08-09-abc";
    CPT_EQ_INT(put(sink, k1, cp_slice_str(plain), NULL, &err), CP_OK);
    cp_buf gz = CP_BUF_INIT;
    gzip_of(plain, &gz);
    const char *k2 = "Livestreams/2024/05/06/07/delivery-1-2024-05-06-07-08-09-def.gz";
    int rc = put(sink, k2, cp_buf_slice(&gz), "gzip", &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("put gzip: %s", err.msg);
    }
    const char *k3 = "odd/a b+c~d(e)!';ü.json";
    CPT_EQ_INT(put(sink, k3, cp_slice_str(plain), NULL, &err), CP_OK);
    expect_object(s.endpoint, k1, cp_slice_str(plain), NULL);
    expect_object(s.endpoint, k2, cp_buf_slice(&gz), "gzip");
    expect_object(s.endpoint, k3, cp_slice_str(plain), NULL);

    /* ListObjectsV2 sees them, in key order. */
    cp_s3client *cl = NULL;
    CPT_EQ_INT(cp_s3client_new(&c, &cl, &err), CP_OK);
    cp_s3_list_res res = CP_S3_LIST_RES_INIT;
    cp_s3_list_req rq = {.prefix = CP_SLICE("Livestreams/")};
    CPT_EQ_INT(cp_s3client_list(cl, BUCKET, &rq, NULL, NULL, &res, NULL, &err), CP_OK);
    CPT_EQ_INT(res.count, 2);
    cp_buf_free(&res.next_token);
    /* A missing bucket is permanent; an unknown key is refused by s3rver (403). */
    cp_object o = {"no-such-bucket", CP_SLICE("k"), CP_SLICE("x"), NULL};
    CPT_EQ_INT(cp_sink_s3.put_object(sink, &o, &err), CP_EFAIL);
    CPT_CHECK(strstr(err.msg, "NoSuchBucket") != NULL);
    cp_s3_sink_cfg bad = cfg_for(s.endpoint);
    bad.access_key = "AKIDNOTS3RVER";
    void *bad_sink = NULL;
    CPT_EQ_INT(cp_s3_sink_new(&bad, &bad_sink, &err), CP_OK);
    CPT_EQ_INT(put(bad_sink, "k", CP_SLICE("x"), NULL, &err), CP_EFAIL);
    CPT_CHECK(strstr(err.msg, "403") && strstr(err.msg, "InvalidAccessKeyId"));
    cp_sink_s3.destroy(bad_sink);

    cp_s3client_free(cl);
    cp_buf_free(&gz);
    cp_sink_s3.destroy(sink);
    s3rver_kill(&s);
}

static void multipart_object(void)
{
    s3rver s;
    if (!s3rver_installed(&s)) {
        return;
    }
    s3rver_start(&s);
    cp_s3_sink_cfg c = cfg_for(s.endpoint);
    c.multipart_threshold = 6 * MIB;
    c.part_size = 5 * MIB;
    void *sink = NULL;
    cp_err err = {0};
    CPT_EQ_INT(cp_s3_sink_new(&c, &sink, &err), CP_OK);
    size_t len = 12 * MIB + 7;
    char *body = malloc(len);
    fill_random(body, len, 7);
    int rc = put(sink, "big/multipart.gz", cp_slice_of(body, len), "gzip", &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("multipart: %s", err.msg);
    }
    expect_object(s.endpoint, "big/multipart.gz", cp_slice_of(body, len), "gzip");
    /* Written again (the engine's retry after a crash): the same bytes. */
    CPT_EQ_INT(put(sink, "big/multipart.gz", cp_slice_of(body, len), "gzip", &err), CP_OK);
    expect_object(s.endpoint, "big/multipart.gz", cp_slice_of(body, len), "gzip");
    free(body);
    cp_sink_s3.destroy(sink);
    s3rver_kill(&s);
}

static void virtual_hosted_style(void)
{
    s3rver s;
    if (!s3rver_installed(&s)) {
        return;
    }
    s3rver_start(&s);
    /* s3rver maps <bucket>.s3.localhost to the bucket; *.localhost resolves to loopback. */
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://s3.localhost:%u", s.port);
    cp_s3_sink_cfg c = cfg_for(endpoint);
    c.path_style = 0;
    void *sink = NULL;
    cp_err err = {0};
    CPT_EQ_INT(cp_s3_sink_new(&c, &sink, &err), CP_OK);
    int rc = put(sink, "vhost/key", CP_SLICE("virtual"), NULL, &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("vhost put: %s", err.msg);
    }
    /* Read it back path-style: the same object. */
    expect_object(s.endpoint, "vhost/key", CP_SLICE("virtual"), NULL);
    cp_sink_s3.destroy(sink);
    s3rver_kill(&s);
}

/* Put until the sink says OK or the deadline passes; every other answer must be CP_RETRY. */
static int put_until_ok(void *sink, const char *key, cp_slice body, int64_t deadline_ns,
                        int *retries)
{
    for (;;) {
        cp_err err = {0};
        int rc = put(sink, key, body, NULL, &err);
        if (rc == CP_OK) {
            return CP_OK;
        }
        if (rc != CP_RETRY) {
            CPT_FAIL_AT("while s3rver restarts: %s (%s)", cp_err_name(rc), err.msg);
        }
        (*retries)++;
        if (cp_clock_mono_ns() > deadline_ns) {
            return rc;
        }
        struct timespec ts = {0, 50 * 1000000}; /* the engine's backoff, shortened */
        nanosleep(&ts, NULL);
    }
}

typedef struct bg_put {
    void *sink;
    const char *key;
    cp_slice body;
    int rc;
    cp_err err;
} bg_put;

static void *bg_put_run(void *arg)
{
    bg_put *b = arg;
    b->rc = put(b->sink, b->key, b->body, NULL, &b->err);
    return NULL;
}

static const char *nftw_want;
static int nftw_found;

static int nftw_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void) sb;
    (void) type;
    if (strcmp(path + ftw->base, nftw_want) == 0) {
        nftw_found = 1;
        return 1;
    }
    return 0;
}

/* A file called `name` anywhere under dir (s3rver keeps each stored part as <n> + <n>.md5). */
static int has_file_named(const char *dir, const char *name)
{
    nftw_want = name;
    nftw_found = 0;
    nftw(dir, nftw_cb, 16, FTW_PHYS);
    return nftw_found;
}

static void server_down_then_back(void)
{
    s3rver s;
    if (!s3rver_installed(&s)) {
        return;
    }
    s3rver_start(&s);
    unsigned port = s.port;
    cp_s3_sink_cfg c = cfg_for(s.endpoint);
    c.multipart_threshold = 5 * MIB;
    c.part_size = 5 * MIB;
    void *sink = NULL;
    cp_err err = {0};
    CPT_EQ_INT(cp_s3_sink_new(&c, &sink, &err), CP_OK);
    CPT_EQ_INT(put(sink, "before", CP_SLICE("delivered before the outage"), NULL, &err), CP_OK);

    /* Down: connection refused on the kept-alive connection and on new ones. Both a plain put
     * and a multipart upload are transient failures, never permanent ones. */
    s3rver_kill(&s);
    size_t big_len = 6 * MIB;
    char *big = malloc(big_len);
    fill_random(big, big_len, 11);
    for (int i = 0; i < 3; i++) {
        int rc = put(sink, "during", CP_SLICE("written during the outage"), NULL, &err);
        CPT_EQ_INT(rc, CP_RETRY);
        CPT_CHECK(strstr(err.msg, "connection failed") != NULL);
    }
    CPT_EQ_INT(put(sink, "during-big", cp_slice_of(big, big_len), NULL, &err), CP_RETRY);

    /* Back on the same port and directory: the same calls go through. */
    s.port = port;
    s3rver_start(&s);
    CPT_EQ_INT(s.port, port);
    int retries = 0;
    int64_t deadline = cp_clock_mono_ns() + 30 * 1000000000ll;
    CPT_EQ_INT(
        put_until_ok(sink, "during", CP_SLICE("written during the outage"), deadline, &retries),
        CP_OK);
    CPT_EQ_INT(put_until_ok(sink, "during-big", cp_slice_of(big, big_len), deadline, &retries),
               CP_OK);
    expect_object(s.endpoint, "before", CP_SLICE("delivered before the outage"), NULL);
    expect_object(s.endpoint, "during", CP_SLICE("written during the outage"), NULL);
    expect_object(s.endpoint, "during-big", cp_slice_of(big, big_len), NULL);

    /* Killed in the middle of a multipart upload, once s3rver has stored its first part:
     * CP_RETRY, and the next attempt after the restart stores the whole object. */
    size_t huge_len = 12 * (size_t) 5 * MIB;
    char *huge = malloc(huge_len);
    fill_random(huge, huge_len, 13);
    bg_put bg = {sink, "mid-upload", cp_slice_of(huge, huge_len), 0, {0}};
    pthread_t t;
    pthread_create(&t, NULL, bg_put_run, &bg);
    int64_t part_deadline = cp_clock_mono_ns() + 30 * 1000000000ll;
    while (!has_file_named(s.data, "1.md5")) {
        CPT_CHECK(cp_clock_mono_ns() < part_deadline);
        struct timespec ts = {0, 2 * 1000000}; /* poll interval */
        nanosleep(&ts, NULL);
    }
    s3rver_kill(&s);
    pthread_join(t, NULL);
    if (bg.rc != CP_RETRY) {
        CPT_FAIL_AT("put interrupted by a crash: %s (%s)", cp_err_name(bg.rc), bg.err.msg);
    }
    s.port = port;
    s3rver_start(&s);
    CPT_EQ_INT(put_until_ok(sink, "mid-upload", cp_slice_of(huge, huge_len), deadline, &retries),
               CP_OK);
    expect_object(s.endpoint, "mid-upload", cp_slice_of(huge, huge_len), NULL);
    free(huge);
    free(big);
    cp_sink_s3.destroy(sink);
    s3rver_kill(&s);
}

CPT_LIST = {
    {"small_and_gzip_objects", small_and_gzip_objects},
    {"multipart_object", multipart_object},
    {"virtual_hosted_style", virtual_hosted_style},
    {"server_down_then_back", server_down_then_back},
    {0},
};
