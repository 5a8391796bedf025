/* SPDX-License-Identifier: MIT */
/*
 * The S3 client and the s3 sink against changepipe's own S3 API (objects/s3api.c) served
 * in-process by cp_http_server on port 0, with the bucket store behind it. A thin front
 * handler records what arrived and can inject faults (canned S3 errors, hanging answers)
 * before the request reaches the real API; everything else is the real server.
 */
#include "cpt.h"

#include <pthread.h>
#include <time.h>

#include "aws/proto.h"
#include "core/clock.h"
#include "core/hash.h"
#include "delivery/s3client.h"
#include "delivery/sink.h"
#include "http/server.h"
#include "objects/bucket.h"
#include "objects/s3api.h"

#define AK     "AKIDS3SINKTEST"
#define SK     "s3-sink-test-secret/key+value"
#define BUCKET "deliveries"
#define MIB    (1024u * 1024u)

/* ------------------------------------------------------------------------------------------ */
/* Fixture: bucket store + s3api + fault-injecting front + HTTP server                         */

typedef struct seen {
    char method[8];
    char path[256];
    char query[256];
    char host[128];
    char content_type[64];
    char content_encoding[32];
    char content_md5[32];
    char sha256[80];
    size_t body_len;
    int sig_ok; /* the request verified against the test credentials */
} seen;

typedef struct fault {
    const char *method; /* NULL = any */
    const char *query;  /* substring the query must contain ("" = any) */
    int skip;           /* matching requests to let through before failing */
    int count;          /* matching requests to fail (after skip) */
    int status;
    const char *code; /* NULL: a bare status, no S3 document */
    int hang;         /* block instead of answering, until released (or 10 s) */
} fault;

typedef struct fixture {
    cp_bucket_store *store;
    cp_aws_router *auth;
    cp_s3api *api;
    cp_http_server *srv;
    char endpoint[64];
    uint16_t port;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    seen log[512];
    size_t nlog;
    fault f;
    int released;
    int vhost_rewrite; /* map Host "<bucket>.localhost:port" to a path-style request */
} fixture;

static fixture fx;

static void copy_slice(char *dst, size_t cap, cp_slice s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n) {
        memcpy(dst, s.p, n);
    }
    dst[n] = 0;
}

static void reply_error(cp_http_resp *resp, int status, const char *code)
{
    if (!code) {
        cp_http_resp_set(resp, status, NULL, cp_slice_of("", 0));
        return;
    }
    char doc[512];
    snprintf(doc, sizeof(doc),
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>injected "
             "%s</Message><RequestId>FAULT42</RequestId></Error>",
             code, code);
    cp_http_resp_set(resp, status, "application/xml", cp_slice_str(doc));
}

static int front(void *ctx, const cp_http_req *req, cp_http_resp *resp)
{
    (void) ctx;
    seen s = {0};
    copy_slice(s.method, sizeof(s.method), req->method);
    copy_slice(s.path, sizeof(s.path), req->path);
    copy_slice(s.query, sizeof(s.query), req->query);
    copy_slice(s.host, sizeof(s.host), cp_http_req_header(req, "host"));
    copy_slice(s.content_type, sizeof(s.content_type), cp_http_req_header(req, "content-type"));
    copy_slice(s.content_encoding, sizeof(s.content_encoding),
               cp_http_req_header(req, "content-encoding"));
    copy_slice(s.content_md5, sizeof(s.content_md5), cp_http_req_header(req, "content-md5"));
    copy_slice(s.sha256, sizeof(s.sha256), cp_http_req_header(req, "x-amz-content-sha256"));
    s.body_len = req->body.len;
    /* Verify against the credentials here too, before any rewriting: virtual-hosted requests
     * are signed over their own Host and path. */
    cp_sigv4_cred cred = {AK, SK};
    cp_sigv4_policy pol = {&cred, 1, "s3", 900, CP_SIGV4_S3, 0};
    cp_sigv4_auth auth;
    cp_sigv4_err verr;
    s.sig_ok = cp_sigv4_verify(req, &pol, &auth, &verr) == CP_OK;

    pthread_mutex_lock(&fx.mu);
    if (fx.nlog < sizeof(fx.log) / sizeof(fx.log[0])) {
        fx.log[fx.nlog++] = s;
    }
    int inject = 0;
    fault f = fx.f;
    if (fx.f.count > 0 && (!f.method || strcmp(f.method, s.method) == 0) &&
        (!f.query || strstr(s.query, f.query))) {
        if (fx.f.skip > 0) {
            fx.f.skip--;
        } else {
            fx.f.count--;
            inject = 1;
        }
    }
    if (inject && f.hang) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        while (!fx.released) {
            if (pthread_cond_timedwait(&fx.cv, &fx.mu, &until) != 0) {
                break;
            }
        }
    }
    pthread_mutex_unlock(&fx.mu);
    if (inject) {
        reply_error(resp, f.status, f.code);
        return CP_OK;
    }
    if (fx.vhost_rewrite) {
        /* s3api is path-style only: turn "<bucket>.localhost:port" + "/key" into "/bucket/key"
         * (the signature was checked above on the original request). */
        const char *dot = strchr(s.host, '.');
        if (dot && strncmp(dot, ".localhost:", 11) == 0) {
            char path[512];
            snprintf(path, sizeof(path), "/%.*s%s", (int) (dot - s.host), s.host, s.path);
            cp_http_req r2 = *req;
            r2.path = cp_slice_str(path);
            return cp_s3api_handle(fx.api, &r2, resp);
        }
    }
    return cp_s3api_handle(fx.api, req, resp);
}

/* Start the server; `with_auth` makes s3api verify SigV4 against AK/SK. */
static void fx_start(int with_auth)
{
    memset(&fx, 0, sizeof(fx));
    pthread_mutex_init(&fx.mu, NULL);
    pthread_cond_init(&fx.cv, NULL);
    cp_err err = {0};
    cp_bucket_cfg bcfg = {.data_dir = cpt_tmpdir()};
    if (cp_bucket_store_open(&bcfg, &fx.store, &err) != CP_OK) {
        CPT_FAIL_AT("store: %s", err.msg);
    }
    CPT_EQ_INT(cp_bucket_create(fx.store, BUCKET, NULL, &err), CP_OK);
    if (with_auth) {
        cp_sigv4_cred cred = {AK, SK};
        fx.auth = cp_aws_router_new(&(cp_aws_router_cfg){&cred, 1, NULL});
    }
    fx.api = cp_s3api_new(fx.store, fx.auth);
    cp_http_cfg hcfg = {.host = "127.0.0.1", .port = 0, .handler = front, .drain_timeout_s = 5};
    if (cp_http_server_open(&hcfg, &fx.srv, &err) != CP_OK) {
        CPT_FAIL_AT("server: %s", err.msg);
    }
    fx.port = cp_http_server_port(fx.srv);
    snprintf(fx.endpoint, sizeof(fx.endpoint), "http://127.0.0.1:%u", fx.port);
}

static void fx_stop(void)
{
    pthread_mutex_lock(&fx.mu);
    fx.released = 1;
    pthread_cond_broadcast(&fx.cv);
    pthread_mutex_unlock(&fx.mu);
    cp_http_server_close(fx.srv);
    cp_s3api_free(fx.api);
    cp_aws_router_free(fx.auth);
    cp_bucket_store_close(fx.store);
    pthread_cond_destroy(&fx.cv);
    pthread_mutex_destroy(&fx.mu);
}

static void set_fault(fault f)
{
    pthread_mutex_lock(&fx.mu);
    fx.f = f;
    pthread_mutex_unlock(&fx.mu);
}

static void clear_log(void)
{
    pthread_mutex_lock(&fx.mu);
    fx.nlog = 0;
    pthread_mutex_unlock(&fx.mu);
}

/* Requests logged so far with this method and query substring. */
static size_t count_seen(const char *method, const char *query)
{
    size_t n = 0;
    pthread_mutex_lock(&fx.mu);
    for (size_t i = 0; i < fx.nlog; i++) {
        if (strcmp(fx.log[i].method, method) == 0 && strstr(fx.log[i].query, query)) {
            n++;
        }
    }
    pthread_mutex_unlock(&fx.mu);
    return n;
}

static cp_s3_sink_cfg cfg_for(const char *endpoint)
{
    cp_s3_sink_cfg c = CP_S3_SINK_CFG_INIT;
    c.endpoint = endpoint;
    c.region = "eu-central-1";
    c.access_key = AK;
    c.secret_key = SK;
    c.timeout_ms = 20000;
    return c;
}

static void *new_sink(const cp_s3_sink_cfg *c)
{
    void *ctx = NULL;
    cp_err err = {0};
    if (cp_s3_sink_new(c, &ctx, &err) != CP_OK) {
        CPT_FAIL_AT("sink: %s", err.msg);
    }
    return ctx;
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

static int put_via_sink(void *ctx, const char *key, cp_slice body, const char *enc, cp_err *err)
{
    cp_object o = {BUCKET, cp_slice_str(key), body, enc};
    return cp_sink_s3.put_object(ctx, &o, err);
}

/* The stored object's bytes and metadata, straight from the bucket store. */
static void read_back(const char *key, cp_buf *out, cp_bucket_obj *meta)
{
    cp_err err = {0};
    int rc = cp_bucket_read(fx.store, BUCKET, cp_slice_str(key), out, meta, &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("read %s: %d %s", key, rc, err.msg);
    }
}

static int64_t mono_ms(void)
{
    return cp_clock_mono_ns() / 1000000;
}

/* ------------------------------------------------------------------------------------------ */
/* Tests                                                                                       */

static void put_small_objects(void)
{
    fx_start(1);
    cp_s3_sink_cfg c = cfg_for(fx.endpoint);
    void *sink = new_sink(&c);
    cp_err err = {0};
    static const char *keys[] = {
        "Livestreams/LivestreamID=42/ds-1-2024-01-02-03-04-05-abc",
        "odd keys/a b+c~d=e&f%g/ü/x..y//z",
        "a/../b/./c",
    };
    for (size_t i = 0; i < 3; i++) {
        char body[1000];
        fill_random(body, sizeof(body), i + 1);
        int rc = put_via_sink(sink, keys[i], cp_slice_of(body, sizeof(body)),
                              i == 0 ? "gzip" : NULL, &err);
        if (rc != CP_OK) {
            CPT_FAIL_AT("put %s: %s", keys[i], err.msg);
        }
        cp_buf got = CP_BUF_INIT;
        cp_bucket_obj meta = CP_BUCKET_OBJ_INIT;
        read_back(keys[i], &got, &meta);
        CPT_EQ_MEM(got.p, got.len, body, sizeof(body));
        cp_slice ct = cp_bucket_obj_header(&meta, "content-type");
        CPT_EQ_MEM(ct.p, ct.len, "application/octet-stream", 24);
        cp_slice ce = cp_bucket_obj_header(&meta, "content-encoding");
        if (i == 0) {
            CPT_EQ_MEM(ce.p, ce.len, "gzip", 4);
        } else {
            CPT_EQ_INT(ce.len, 0);
        }
        /* The ETag of a single PUT is the MD5 of the bytes. */
        unsigned char md5[16];
        char hex[33];
        cp_md5(body, sizeof(body), md5);
        cp_hex(md5, 16, hex);
        CPT_EQ_STR(meta.etag, hex);
        cp_bucket_obj_free(&meta);
        cp_buf_free(&got);
    }
    /* What went over the wire: signed, hashed, with Content-MD5. */
    pthread_mutex_lock(&fx.mu);
    CPT_EQ_INT(fx.nlog, 3);
    for (size_t i = 0; i < fx.nlog; i++) {
        CPT_CHECK(fx.log[i].sig_ok);
        CPT_EQ_STR(fx.log[i].method, "PUT");
        CPT_EQ_INT(strlen(fx.log[i].sha256), 64);
        CPT_EQ_INT(strlen(fx.log[i].content_md5), 24);
    }
    CPT_EQ_STR(fx.log[0].content_encoding, "gzip");
    CPT_EQ_STR(fx.log[0].path,
               "/" BUCKET "/Livestreams/LivestreamID%3D42/ds-1-2024-01-02-03-04-05-abc");
    pthread_mutex_unlock(&fx.mu);
    /* Idempotent: the same key and bytes again leave the same object. */
    char body[1000];
    fill_random(body, sizeof(body), 1);
    CPT_EQ_INT(put_via_sink(sink, keys[0], cp_slice_of(body, sizeof(body)), "gzip", &err), CP_OK);
    cp_buf got = CP_BUF_INIT;
    read_back(keys[0], &got, NULL);
    CPT_EQ_MEM(got.p, got.len, body, sizeof(body));
    cp_buf_free(&got);
    /* Keep-alive: sequential calls from one thread reuse one connection. */
    cp_http_stats hs;
    cp_http_server_stats(fx.srv, &hs);
    CPT_EQ_INT(hs.connections, 1);
    cp_sink_s3.destroy(sink);
    fx_stop();
}

static void put_empty_object(void)
{
    fx_start(1);
    cp_s3_sink_cfg c = cfg_for(fx.endpoint);
    void *sink = new_sink(&c);
    cp_err err = {0};
    CPT_EQ_INT(put_via_sink(sink, "empty", cp_slice_of("", 0), NULL, &err), CP_OK);
    cp_bucket_obj meta = CP_BUCKET_OBJ_INIT;
    cp_buf got = CP_BUF_INIT;
    read_back("empty", &got, &meta);
    CPT_EQ_INT(got.len, 0);
    CPT_EQ_STR(meta.etag, "d41d8cd98f00b204e9800998ecf8427e");
    cp_bucket_obj_free(&meta);
    cp_buf_free(&got);
    cp_sink_s3.destroy(sink);
    fx_stop();
}

static void put_multipart(void)
{
    fx_start(1);
    cp_s3_sink_cfg c = cfg_for(fx.endpoint);
    c.multipart_threshold = 6 * MIB;
    c.part_size = 5 * MIB;
    void *sink = new_sink(&c);
    size_t len = 12 * MIB + 7;
    char *body = malloc(len);
    fill_random(body, len, 99);
    cp_err err = {0};
    int rc = put_via_sink(sink, "big/object.gz", cp_slice_of(body, len), "gzip", &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("multipart: %s", err.msg);
    }
    cp_buf got = CP_BUF_INIT;
    cp_bucket_obj meta = CP_BUCKET_OBJ_INIT;
    read_back("big/object.gz", &got, &meta);
    CPT_EQ_INT(got.len, len);
    CPT_CHECK(memcmp(got.p, body, len) == 0);
    /* Three parts (5 + 5 + 2 MiB), multipart ETag, headers from the upload's creation. */
    CPT_CHECK(strlen(meta.etag) > 2 && strcmp(meta.etag + strlen(meta.etag) - 2, "-3") == 0);
    cp_slice ce = cp_bucket_obj_header(&meta, "content-encoding");
    CPT_EQ_MEM(ce.p, ce.len, "gzip", 4);
    CPT_EQ_INT(count_seen("POST", "uploads"), 1);
    CPT_EQ_INT(count_seen("PUT", "partNumber="), 3);
    CPT_EQ_INT(count_seen("POST", "uploadId="), 1);
    CPT_EQ_INT(count_seen("DELETE", ""), 0);
    pthread_mutex_lock(&fx.mu);
    size_t part_sizes[3], np = 0;
    for (size_t i = 0; i < fx.nlog; i++) {
        CPT_CHECK(fx.log[i].sig_ok);
        if (strstr(fx.log[i].query, "partNumber=") && np < 3) {
            part_sizes[np++] = fx.log[i].body_len;
        }
    }
    pthread_mutex_unlock(&fx.mu);
    CPT_EQ_INT(part_sizes[0], 5 * MIB);
    CPT_EQ_INT(part_sizes[1], 5 * MIB);
    CPT_EQ_INT(part_sizes[2], 2 * MIB + 7);
    /* At the threshold exactly: one PutObject. */
    clear_log();
    CPT_EQ_INT(put_via_sink(sink, "at-threshold", cp_slice_of(body, 6 * MIB), NULL, &err), CP_OK);
    CPT_EQ_INT(count_seen("PUT", ""), 1);
    CPT_EQ_INT(count_seen("POST", ""), 0);
    cp_bucket_obj_free(&meta);
    cp_buf_free(&got);
    free(body);
    cp_sink_s3.destroy(sink);
    fx_stop();
}

/* A part failing permanently aborts the upload: nothing visible, no upload left behind. */
static void multipart_failure_aborts(void)
{
    fx_start(1);
    cp_s3_sink_cfg c = cfg_for(fx.endpoint);
    c.multipart_threshold = 5 * MIB;
    c.part_size = 5 * MIB;
    void *sink = new_sink(&c);
    size_t len = 11 * MIB;
    char *body = malloc(len);
    fill_random(body, len, 5);
    cp_err err = {0};

    struct {
        int status;
        const char *code;
        int want;
    } cases[] = {
        {403, "AccessDenied", CP_EFAIL},
        {503, "SlowDown", CP_RETRY},
        {500, NULL, CP_RETRY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        clear_log();
        set_fault((fault){.method = "PUT",
                          .query = "partNumber=",
                          .skip = 1,
                          .count = 1,
                          .status = cases[i].status,
                          .code = cases[i].code});
        CPT_EQ_INT(put_via_sink(sink, "mp/fail", cp_slice_of(body, len), NULL, &err),
                   cases[i].want);
        CPT_CHECK(strstr(err.msg, "UploadPart") != NULL);
        if (cases[i].code) {
            CPT_CHECK(strstr(err.msg, cases[i].code) != NULL);
        }
        CPT_EQ_INT(count_seen("PUT", "partNumber=3"), 0); /* stopped at the failing part */
        CPT_EQ_INT(count_seen("DELETE", "uploadId="), 1);
        CPT_EQ_INT(cp_bucket_exists(fx.store, BUCKET, CP_SLICE("mp/fail"), &err), 0);
    }
    /* The aborted uploads are gone from the store. */
    pthread_mutex_lock(&fx.mu);
    char upload_id[64] = "";
    for (size_t i = 0; i < fx.nlog; i++) {
        const char *q = strstr(fx.log[i].query, "uploadId=");
        if (q && strcmp(fx.log[i].method, "DELETE") == 0) {
            snprintf(upload_id, sizeof(upload_id), "%s", q + 9);
        }
    }
    pthread_mutex_unlock(&fx.mu);
    CPT_CHECK(upload_id[0] != 0);
    CPT_EQ_INT(cp_bucket_mpu_list_parts(fx.store, BUCKET, CP_SLICE("mp/fail"), upload_id, 0, 0,
                                        NULL, NULL, NULL, &err),
               CP_BUCKET_ENOUPLOAD);

    /* CompleteMultipartUpload answering 200 with an <Error> document is a failure. */
    clear_log();
    set_fault((fault){.method = "POST",
                      .query = "uploadId=",
                      .count = 1,
                      .status = 200,
                      .code = "InternalError"});
    CPT_EQ_INT(put_via_sink(sink, "mp/fail", cp_slice_of(body, len), NULL, &err), CP_RETRY);
    CPT_CHECK(strstr(err.msg, "InternalError") != NULL);
    CPT_EQ_INT(count_seen("DELETE", "uploadId="), 1);
    set_fault((fault){
        .method = "POST", .query = "uploadId=", .count = 1, .status = 400, .code = "InvalidPart"});
    CPT_EQ_INT(put_via_sink(sink, "mp/fail", cp_slice_of(body, len), NULL, &err), CP_EFAIL);
    CPT_EQ_INT(cp_bucket_exists(fx.store, BUCKET, CP_SLICE("mp/fail"), &err), 0);
    /* And once the faults are gone the same call stores the object. */
    CPT_EQ_INT(put_via_sink(sink, "mp/fail", cp_slice_of(body, len), NULL, &err), CP_OK);
    cp_buf got = CP_BUF_INIT;
    read_back("mp/fail", &got, NULL);
    CPT_EQ_INT(got.len, len);
    CPT_CHECK(memcmp(got.p, body, len) == 0);
    cp_buf_free(&got);
    free(body);
    cp_sink_s3.destroy(sink);
    fx_stop();
}

/* HTTP answers -> the engine's OK / RETRY / EFAIL. */
static void classification(void)
{
    fx_start(0);
    cp_s3_sink_cfg c = cfg_for(fx.endpoint);
    void *sink = new_sink(&c);
    struct {
        int status;
        const char *code;
        int want;
    } cases[] = {
        {500, "InternalError", CP_RETRY},
        {503, "SlowDown", CP_RETRY},
        {503, NULL, CP_RETRY},
        {502, NULL, CP_RETRY},
        {429, NULL, CP_RETRY},
        {400, "RequestTimeout", CP_RETRY},
        {400, "BadDigest", CP_RETRY},
        {403, "RequestTimeTooSkewed", CP_RETRY},
        {409, "OperationAborted", CP_RETRY},
        {403, "AccessDenied", CP_EFAIL},
        {403, "SignatureDoesNotMatch", CP_EFAIL},
        {403, "InvalidAccessKeyId", CP_EFAIL},
        {403, NULL, CP_EFAIL},
        {404, "NoSuchBucket", CP_EFAIL},
        {400, "InvalidArgument", CP_EFAIL},
        {301, "PermanentRedirect", CP_EFAIL},
        {400, "EntityTooLarge", CP_EFAIL},
    };
    cp_err err = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        set_fault((fault){.count = 1, .status = cases[i].status, .code = cases[i].code});
        int rc = put_via_sink(sink, "k", CP_SLICE("data"), NULL, &err);
        if (rc != cases[i].want) {
            CPT_FAIL_AT("%d %s: got %s, want %s (%s)", cases[i].status,
                        cases[i].code ? cases[i].code : "-", cp_err_name(rc),
                        cp_err_name(cases[i].want), err.msg);
        }
        CPT_EQ_INT(err.code, rc);
        char status[8];
        snprintf(status, sizeof(status), "%d", cases[i].status);
        CPT_CHECK(strstr(err.msg, status) != NULL);
        if (cases[i].code) {
            CPT_CHECK(strstr(err.msg, cases[i].code) != NULL);
            CPT_CHECK(strstr(err.msg, "injected") != NULL); /* S3's Message is passed on */
        }
        CPT_CHECK(strstr(err.msg, SK) == NULL);
    }
    /* The status detail for callers that want it. */
    cp_s3client *cl = NULL;
    CPT_EQ_INT(cp_s3client_new(&c, &cl, &err), CP_OK);
    cp_s3_status st;
    set_fault((fault){.count = 1, .status = 404, .code = "NoSuchBucket"});
    CPT_EQ_INT(cp_s3client_put(cl, BUCKET, CP_SLICE("k"), CP_SLICE("x"), NULL, &st, &err),
               CP_EFAIL);
    CPT_EQ_INT(st.http_status, 404);
    CPT_EQ_STR(st.code, "NoSuchBucket");
    CPT_EQ_STR(st.message, "injected NoSuchBucket");
    CPT_EQ_STR(st.request_id, "FAULT42");
    /* No fault: OK. */
    CPT_EQ_INT(cp_s3client_put(cl, BUCKET, CP_SLICE("k"), CP_SLICE("x"), NULL, &st, &err), CP_OK);
    CPT_EQ_INT(st.http_status, 200);
    cp_s3client_free(cl);
    cp_sink_s3.destroy(sink);
    fx_stop();
}

/* The real server checks signatures: wrong credentials are permanent failures. */
static void wrong_credentials(void)
{
    fx_start(1);
    cp_err err = {0};
    cp_s3_sink_cfg c = cfg_for(fx.endpoint);
    c.secret_key = "not-the-secret";
    void *bad_secret = new_sink(&c);
    CPT_EQ_INT(put_via_sink(bad_secret, "k", CP_SLICE("data"), NULL, &err), CP_EFAIL);
    CPT_CHECK(strstr(err.msg, "403") && strstr(err.msg, "SignatureDoesNotMatch"));
    CPT_CHECK(strstr(err.msg, "not-the-secret") == NULL);
    cp_sink_s3.destroy(bad_secret);
    c = cfg_for(fx.endpoint);
    c.access_key = "AKIDUNKNOWN";
    void *bad_key = new_sink(&c);
    CPT_EQ_INT(put_via_sink(bad_key, "k", CP_SLICE("data"), NULL, &err), CP_EFAIL);
    CPT_CHECK(strstr(err.msg, "InvalidAccessKeyId") != NULL);
    cp_sink_s3.destroy(bad_key);
    CPT_EQ_INT(cp_bucket_exists(fx.store, BUCKET, CP_SLICE("k"), &err), 0);
    /* A session token is signed along (the server has no token check; it must still verify). */
    c = cfg_for(fx.endpoint);
    c.session_token = "FQoGZXIvYXdzEJr//token";
    void *tok = new_sink(&c);
    CPT_EQ_INT(put_via_sink(tok, "k", CP_SLICE("data"), NULL, &err), CP_OK);
    cp_sink_s3.destroy(tok);
    fx_stop();
}

/* NoSuchBucket is permanent until the bucket appears; then the same call succeeds. */
static void missing_bucket(void)
{
    fx_start(1);
    cp_s3_sink_cfg c = cfg_for(fx.endpoint);
    void *sink = new_sink(&c);
    cp_err err = {0};
    cp_object o = {"later-bucket", CP_SLICE("k"), CP_SLICE("data"), NULL};
    CPT_EQ_INT(cp_sink_s3.put_object(sink, &o, &err), CP_EFAIL);
    CPT_CHECK(strstr(err.msg, "404") && strstr(err.msg, "NoSuchBucket"));
    CPT_EQ_INT(cp_bucket_create(fx.store, "later-bucket", NULL, &err), CP_OK);
    CPT_EQ_INT(cp_sink_s3.put_object(sink, &o, &err), CP_OK);
    cp_buf got = CP_BUF_INIT;
    CPT_EQ_INT(cp_bucket_read(fx.store, "later-bucket", CP_SLICE("k"), &got, NULL, &err), CP_OK);
    CPT_EQ_MEM(got.p, got.len, "data", 4);
    cp_buf_free(&got);
    /* Objects without bucket or key are refused without a request. */
    cp_object bad = {NULL, CP_SLICE("k"), CP_SLICE("x"), NULL};
    CPT_EQ_INT(cp_sink_s3.put_object(sink, &bad, &err), CP_EFAIL);
    cp_sink_s3.destroy(sink);
    fx_stop();
}

/* Nothing listening: CP_RETRY, quickly. */
static void connection_refused(void)
{
    fx_start(0);
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "%s", fx.endpoint);
    fx_stop();
    cp_s3_sink_cfg c = cfg_for(endpoint);
    void *sink = new_sink(&c);
    cp_err err = {0};
    int64_t t0 = mono_ms();
    CPT_EQ_INT(put_via_sink(sink, "k", CP_SLICE("data"), NULL, &err), CP_RETRY);
    CPT_CHECK(mono_ms() - t0 < 5000);
    CPT_CHECK(strstr(err.msg, "connection failed") != NULL);
    cp_sink_s3.destroy(sink);
}

/* A server that does not answer within timeout_ms: CP_RETRY; the next call works. */
static void request_timeout(void)
{
    fx_start(0);
    cp_s3_sink_cfg c = cfg_for(fx.endpoint);
    c.timeout_ms = 400;
    void *sink = new_sink(&c);
    cp_err err = {0};
    set_fault((fault){.count = 1, .hang = 1, .status = 500, .code = "InternalError"});
    int64_t t0 = mono_ms();
    CPT_EQ_INT(put_via_sink(sink, "k", CP_SLICE("data"), NULL, &err), CP_RETRY);
    int64_t took = mono_ms() - t0;
    CPT_CHECK(took >= 350 && took < 5000);
    CPT_CHECK(strstr(err.msg, "connection failed") != NULL);
    pthread_mutex_lock(&fx.mu);
    fx.released = 1;
    pthread_cond_broadcast(&fx.cv);
    pthread_mutex_unlock(&fx.mu);
    CPT_EQ_INT(put_via_sink(sink, "k", CP_SLICE("data"), NULL, &err), CP_OK);
    cp_sink_s3.destroy(sink);
    fx_stop();
}

static void virtual_host_style(void)
{
    fx_start(0);
    fx.vhost_rewrite = 1;
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://localhost:%u", fx.port);
    cp_s3_sink_cfg c = cfg_for(endpoint);
    c.path_style = 0;
    void *sink = new_sink(&c);
    cp_err err = {0};
    int rc = put_via_sink(sink, "v/key 1", CP_SLICE("hello"), NULL, &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("vhost put: %s", err.msg);
    }
    char host[128];
    snprintf(host, sizeof(host), BUCKET ".localhost:%u", fx.port);
    pthread_mutex_lock(&fx.mu);
    CPT_EQ_INT(fx.nlog, 1);
    CPT_EQ_STR(fx.log[0].host, host);
    CPT_EQ_STR(fx.log[0].path, "/v/key%201");
    CPT_CHECK(fx.log[0].sig_ok);
    pthread_mutex_unlock(&fx.mu);
    cp_buf got = CP_BUF_INIT;
    read_back("v/key 1", &got, NULL);
    CPT_EQ_MEM(got.p, got.len, "hello", 5);
    cp_buf_free(&got);
    /* A bucket name that is not a DNS label goes path-style. */
    clear_log();
    cp_object o = {"Not_DNS", CP_SLICE("k"), CP_SLICE("x"), NULL};
    CPT_EQ_INT(cp_sink_s3.put_object(sink, &o, &err), CP_EFAIL); /* no such bucket */
    pthread_mutex_lock(&fx.mu);
    CPT_EQ_STR(fx.log[0].path, "/Not_DNS/k");
    snprintf(host, sizeof(host), "localhost:%u", fx.port);
    CPT_EQ_STR(fx.log[0].host, host);
    pthread_mutex_unlock(&fx.mu);
    cp_sink_s3.destroy(sink);
    fx_stop();
}

typedef struct listed {
    char keys[16][64];
    int prefix[16];
    size_t n;
} listed;

static int collect(void *ctx, const cp_s3_list_entry *e)
{
    listed *l = ctx;
    if (l->n < 16) {
        copy_slice(l->keys[l->n], sizeof(l->keys[0]), e->key);
        l->prefix[l->n++] = e->is_prefix;
    }
    return 0;
}

static void get_head_list(void)
{
    fx_start(1);
    cp_s3_sink_cfg c = cfg_for(fx.endpoint);
    cp_s3client *cl = NULL;
    cp_err err = {0};
    CPT_EQ_INT(cp_s3client_new(&c, &cl, &err), CP_OK);
    static const char *keys[] = {"p/a/1", "p/a/2", "p/b/1", "p/c", "q/x"};
    for (size_t i = 0; i < 5; i++) {
        cp_s3_put_opts o = {.content_type = "application/json",
                            .content_encoding = i == 0 ? "gzip" : NULL};
        CPT_EQ_INT(cp_s3client_put(cl, BUCKET, cp_slice_str(keys[i]), cp_slice_str(keys[i]), &o,
                                   NULL, &err),
                   CP_OK);
    }
    /* GetObject: bytes as stored (the gzip encoding is not undone), and a range. */
    cp_buf out = CP_BUF_INIT;
    cp_s3_obj_info info;
    CPT_EQ_INT(cp_s3client_get(cl, BUCKET, CP_SLICE("p/a/1"), 0, 0, 0, &out, &info, NULL, &err),
               CP_OK);
    CPT_EQ_STR(out.p, "p/a/1");
    CPT_EQ_INT(info.size, 5);
    CPT_EQ_STR(info.content_encoding, "gzip");
    CPT_EQ_STR(info.content_type, "application/json");
    unsigned char md5[16];
    char hex[33];
    cp_md5("p/a/1", 5, md5);
    cp_hex(md5, 16, hex);
    CPT_EQ_STR(info.etag, hex);
    cp_buf_reset(&out);
    CPT_EQ_INT(cp_s3client_get(cl, BUCKET, CP_SLICE("p/b/1"), 2, 2, 0, &out, &info, NULL, &err),
               CP_OK);
    CPT_EQ_STR(out.p, "b/");
    CPT_EQ_INT(info.size, 5);
    cp_buf_reset(&out);
    CPT_EQ_INT(cp_s3client_get(cl, BUCKET, CP_SLICE("p/b/1"), 3, 0, 0, &out, NULL, NULL, &err),
               CP_OK);
    CPT_EQ_STR(out.p, "/1");
    /* Over the caller's cap: refused, nothing appended. */
    cp_buf_reset(&out);
    CPT_EQ_INT(cp_s3client_get(cl, BUCKET, CP_SLICE("p/a/2"), 0, 0, 4, &out, NULL, NULL, &err),
               CP_ETOOBIG);
    CPT_EQ_INT(out.len, 0);
    CPT_EQ_INT(cp_s3client_get(cl, BUCKET, CP_SLICE("nope"), 0, 0, 0, &out, NULL, NULL, &err),
               CP_ENOTFOUND);
    CPT_EQ_INT(cp_s3client_get(cl, "no-bucket", CP_SLICE("k"), 0, 0, 0, &out, NULL, NULL, &err),
               CP_EFAIL);
    /* HeadObject. */
    CPT_EQ_INT(cp_s3client_head(cl, BUCKET, CP_SLICE("p/c"), &info, NULL, &err), CP_OK);
    CPT_EQ_INT(info.size, 3);
    CPT_EQ_STR(info.content_type, "application/json");
    CPT_CHECK(info.last_modified[0] != 0);
    CPT_EQ_INT(cp_s3client_head(cl, BUCKET, CP_SLICE("nope"), &info, NULL, &err), CP_ENOTFOUND);

    /* ListObjectsV2 with a delimiter, then paging with max-keys and continuation tokens. */
    listed l = {0};
    cp_s3_list_res res = CP_S3_LIST_RES_INIT;
    cp_s3_list_req rq = {.prefix = CP_SLICE("p/"), .delimiter = CP_SLICE("/")};
    CPT_EQ_INT(cp_s3client_list(cl, BUCKET, &rq, collect, &l, &res, NULL, &err), CP_OK);
    CPT_EQ_INT(l.n, 3);
    CPT_EQ_INT(res.truncated, 0);
    /* S3 lists Contents first, then CommonPrefixes. */
    CPT_EQ_STR(l.keys[0], "p/c");
    CPT_EQ_INT(l.prefix[0], 0);
    CPT_EQ_STR(l.keys[1], "p/a/");
    CPT_EQ_INT(l.prefix[1], 1);
    CPT_EQ_STR(l.keys[2], "p/b/");
    memset(&l, 0, sizeof(l));
    cp_s3_list_req page = {.max_keys = 2};
    int pages = 0;
    for (;;) {
        int lrc = cp_s3client_list(cl, BUCKET, &page, collect, &l, &res, NULL, &err);
        if (lrc != CP_OK) {
            CPT_FAIL_AT("list page %d: %s", pages, err.msg);
        }
        pages++;
        if (!res.truncated) {
            break;
        }
        CPT_CHECK(res.next_token.len > 0);
        page.continuation_token = cp_buf_slice(&res.next_token);
        CPT_CHECK(pages < 10);
    }
    CPT_EQ_INT(pages, 3);
    CPT_EQ_INT(l.n, 5);
    for (size_t i = 0; i < 5; i++) {
        CPT_EQ_STR(l.keys[i], keys[i]);
    }
    /* A token the server never issued is a client error, with S3's code. */
    cp_s3_list_req bad = {.continuation_token = CP_SLICE("!!not base64!!")};
    cp_s3_status st;
    CPT_EQ_INT(cp_s3client_list(cl, BUCKET, &bad, collect, &l, &res, &st, &err), CP_EFAIL);
    CPT_EQ_INT(st.http_status, 400);
    CPT_EQ_STR(st.code, "InvalidArgument");
    cp_s3_list_req none = {0};
    CPT_EQ_INT(cp_s3client_list(cl, "no-bucket", &none, collect, &l, &res, NULL, &err), CP_EFAIL);
    CPT_CHECK(strstr(err.msg, "NoSuchBucket") != NULL);
    cp_buf_free(&res.next_token);
    cp_buf_free(&out);
    cp_s3client_free(cl);
    fx_stop();
}

typedef struct worker {
    void *sink;
    int id;
    int failures;
} worker;

static void *put_many(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 20; i++) {
        char key[64], body[128];
        snprintf(key, sizeof(key), "t%d/obj-%02d", w->id, i);
        snprintf(body, sizeof(body), "body of %s", key);
        cp_err err = {0};
        if (put_via_sink(w->sink, key, cp_slice_str(body), NULL, &err) != CP_OK) {
            w->failures++;
        }
    }
    return NULL;
}

/* Several delivery workers share one sink instance. */
static void shared_between_threads(void)
{
    fx_start(1);
    cp_s3_sink_cfg c = cfg_for(fx.endpoint);
    void *sink = new_sink(&c);
    pthread_t t[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){sink, i, 0};
        pthread_create(&t[i], NULL, put_many, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CPT_EQ_INT(w[i].failures, 0);
    }
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 20; j++) {
            char key[64], body[128];
            snprintf(key, sizeof(key), "t%d/obj-%02d", i, j);
            snprintf(body, sizeof(body), "body of %s", key);
            cp_buf got = CP_BUF_INIT;
            read_back(key, &got, NULL);
            CPT_EQ_STR(got.p, body);
            cp_buf_free(&got);
        }
    }
    /* Connections are kept per pooled handle: far fewer than requests. */
    cp_http_stats hs;
    cp_http_server_stats(fx.srv, &hs);
    CPT_CHECK(hs.connections <= 8);
    cp_sink_s3.destroy(sink);
    fx_stop();
}

/* UNSIGNED-PAYLOAD is only ever used over TLS. */
static void unsigned_payload_needs_https(void)
{
    fx_start(1);
    cp_s3_sink_cfg c = cfg_for(fx.endpoint);
    c.unsigned_payload = 1;
    void *sink = new_sink(&c);
    cp_err err = {0};
    CPT_EQ_INT(put_via_sink(sink, "k", CP_SLICE("data"), NULL, &err), CP_OK);
    char sha[65];
    cp_sigv4_sha256_hex(CP_SLICE("data"), sha);
    pthread_mutex_lock(&fx.mu);
    CPT_EQ_STR(fx.log[0].sha256, sha);
    pthread_mutex_unlock(&fx.mu);
    cp_sink_s3.destroy(sink);
    fx_stop();
}

static void config_errors(void)
{
    static const char *bad[] = {
        NULL,
        "",
        "ftp://host",
        "127.0.0.1:9000",
        "http://",
        "http://host?x=1",
        "http://user@host/",
        "http://host/base#frag",
    };
    cp_err err = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cp_s3_sink_cfg c = cfg_for(bad[i]);
        void *ctx = (void *) 1;
        CPT_EQ_INT(cp_s3_sink_new(&c, &ctx, &err), CP_EINVAL);
        CPT_CHECK(ctx == NULL);
    }
    cp_s3_sink_cfg c = cfg_for("http://127.0.0.1:1");
    c.secret_key = NULL;
    void *ctx = NULL;
    CPT_EQ_INT(cp_s3_sink_new(&c, &ctx, &err), CP_EINVAL);
    c = cfg_for("http://127.0.0.1:1");
    c.part_size = 5 * MIB - 1;
    CPT_EQ_INT(cp_s3_sink_new(&c, &ctx, &err), CP_EINVAL);
    CPT_CHECK(strstr(err.msg, "5 MiB") != NULL);
    /* An endpoint with a base path and trailing slash is fine. */
    c = cfg_for("https://s3.example.test/base/");
    CPT_EQ_INT(cp_s3_sink_new(&c, &ctx, &err), CP_OK);
    cp_sink_s3.destroy(ctx);
    CPT_EQ_STR(cp_sink_s3.name, "s3");
    CPT_EQ_INT(cp_sink_s3.abi, CP_SINK_ABI);
}

/* An endpoint with a base path: requests go to /base/bucket/key. */
static void endpoint_base_path(void)
{
    fx_start(0);
    char endpoint[80];
    snprintf(endpoint, sizeof(endpoint), "%s/s3-prefix/", fx.endpoint);
    cp_s3_sink_cfg c = cfg_for(endpoint);
    void *sink = new_sink(&c);
    cp_err err = {0};
    /* s3api sees bucket "s3-prefix" (absent): the request path is what we check. */
    CPT_EQ_INT(put_via_sink(sink, "k", CP_SLICE("x"), NULL, &err), CP_EFAIL);
    pthread_mutex_lock(&fx.mu);
    CPT_EQ_STR(fx.log[0].path, "/s3-prefix/" BUCKET "/k");
    CPT_CHECK(fx.log[0].sig_ok);
    pthread_mutex_unlock(&fx.mu);
    cp_sink_s3.destroy(sink);
    fx_stop();
}

CPT_LIST = {
    {"put_small_objects", put_small_objects},
    {"put_empty_object", put_empty_object},
    {"put_multipart", put_multipart},
    {"multipart_failure_aborts", multipart_failure_aborts},
    {"classification", classification},
    {"wrong_credentials", wrong_credentials},
    {"missing_bucket", missing_bucket},
    {"connection_refused", connection_refused},
    {"request_timeout", request_timeout},
    {"virtual_host_style", virtual_host_style},
    {"get_head_list", get_head_list},
    {"shared_between_threads", shared_between_threads},
    {"unsigned_payload_needs_https", unsigned_payload_needs_https},
    {"config_errors", config_errors},
    {"endpoint_base_path", endpoint_base_path},
    {0},
};
