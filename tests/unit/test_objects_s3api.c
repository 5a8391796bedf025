/* SPDX-License-Identifier: MIT */
/* The S3 REST API, in process: hand-built requests through cp_s3api_handle. */
#include "cpt.h"

#include <regex.h>

#include "aws/proto.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/hash.h"
#include "objects/s3api.h"
#include "objects/xml.h"

/* ------------------------------------------------------------------------------------------ */
/* Harness                                                                                     */

typedef struct env {
    cp_bucket_store *store;
    cp_s3api *api;
    cp_http_scratch scratch;
    cp_http_resp resp;
    cp_buf body;    /* the response body: resp.body, or the file range it points at */
    cp_xml_doc doc; /* body parsed when it is XML */
} env;

static void env_open(env *e, uint64_t max_object, uint64_t min_part)
{
    memset(e, 0, sizeof(*e));
    cp_bucket_cfg cfg = {cpt_tmpdir(), NULL, max_object, min_part};
    cp_err err = {0};
    if (cp_bucket_store_open(&cfg, &e->store, &err) != CP_OK) {
        CPT_FAIL_AT("open: %s", err.msg);
    }
    e->api = cp_s3api_new(e->store, NULL);
    e->scratch = CP_HTTP_SCRATCH_INIT;
    cp_http_resp_init(&e->resp);
}

static void env_close(env *e)
{
    cp_http_resp_free(&e->resp);
    cp_http_scratch_free(&e->scratch);
    cp_buf_free(&e->body);
    cp_xml_doc_free(&e->doc);
    cp_s3api_free(e->api);
    cp_bucket_store_close(e->store);
}

/* Send one request. hdrs: name, value, ..., NULL. Returns the status. */
static int call_api(env *e, cp_s3api *api, const char *method, const char *target,
                    const char *const *hdrs, cp_slice body)
{
    cp_http_header h[40];
    size_t nh = 0;
    for (; hdrs && hdrs[2 * nh]; nh++) {
        h[nh].name = cp_slice_str(hdrs[2 * nh]);
        h[nh].value = cp_slice_str(hdrs[2 * nh + 1]);
    }
    const char *q = strchr(target, '?');
    cp_http_req req = {
        .method = cp_slice_str(method),
        .target = cp_slice_str(target),
        .path = cp_slice_of(target, q ? (size_t) (q - target) : strlen(target)),
        .query = q ? cp_slice_str(q + 1) : cp_slice_of("", 0),
        .headers = h,
        .nheaders = nh,
        .body = body,
        .remote = "127.0.0.1:1",
        .version = 11,
        .scratch = &e->scratch,
    };
    cp_http_resp_reset(&e->resp);
    cp_http_scratch_reset(&e->scratch);
    CPT_EQ_INT(cp_s3api_handle(api, &req, &e->resp), CP_OK);
    cp_buf_reset(&e->body);
    if (e->resp.file_fd >= 0) {
        cp_buf_reserve(&e->body, (size_t) e->resp.file_len);
        ssize_t n =
            pread(e->resp.file_fd, e->body.p, (size_t) e->resp.file_len, (off_t) e->resp.file_off);
        CPT_EQ_INT(n, (long long) e->resp.file_len);
        e->body.len = (size_t) n;
        e->body.p[n] = 0;
    } else if (e->resp.body.len) {
        cp_buf_append(&e->body, e->resp.body.p, e->resp.body.len);
    }
    cp_xml_doc_free(&e->doc);
    cp_slice ct = cp_http_resp_header(&e->resp, "Content-Type");
    if (ct.p && cp_slice_eq(ct, CP_SLICE("application/xml"))) {
        cp_err err = {0};
        if (cp_xml_parse(cp_buf_slice(&e->body), 0, &e->doc, &err) != CP_OK) {
            CPT_FAIL_AT("response is not XML (%s): %s", err.msg, e->body.p);
        }
    }
    /* Every response carries a request id. */
    CPT_EQ_INT(cp_http_resp_header(&e->resp, "x-amz-request-id").len, 16);
    CPT_CHECK(cp_http_resp_header(&e->resp, "x-amz-id-2").len > 0);
    return e->resp.status;
}

static int call(env *e, const char *method, const char *target, const char *const *hdrs,
                cp_slice body)
{
    return call_api(e, e->api, method, target, hdrs, body);
}

#define H(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NOBODY cp_slice_of("", 0)

/* Text of the first element named `name` anywhere in the response XML ("" when absent). */
static const char *xtext(env *e, const char *name)
{
    static char out[4096];
    out[0] = 0;
    for (size_t i = 0; i < e->doc.n; i++) {
        if (cp_slice_eq(cp_xml_name(&e->doc, (int) i), cp_slice_str(name))) {
            cp_slice t = cp_xml_text(&e->doc, (int) i);
            snprintf(out, sizeof(out), "%.*s", (int) t.len, t.p);
            return out;
        }
    }
    return "\x01(absent)";
}

/* Number of elements named `name`. */
static int xcount(env *e, const char *name)
{
    int n = 0;
    for (size_t i = 0; i < e->doc.n; i++) {
        n += cp_slice_eq(cp_xml_name(&e->doc, (int) i), cp_slice_str(name));
    }
    return n;
}

static const char *hdr(env *e, const char *name)
{
    static char out[1024];
    cp_slice v = cp_http_resp_header(&e->resp, name);
    if (!v.p) {
        return "\x01(absent)";
    }
    snprintf(out, sizeof(out), "%.*s", (int) v.len, v.p);
    return out;
}

static void expect_error(env *e, int status, const char *code)
{
    CPT_EQ_INT(e->resp.status, status);
    CPT_EQ_STR(xtext(e, "Code"), code);
    CPT_CHECK(strlen(xtext(e, "Message")) > 0);
    CPT_EQ_STR(xtext(e, "RequestId"), hdr(e, "x-amz-request-id"));
    CPT_CHECK(cp_slice_eq(cp_xml_name(&e->doc, 0), CP_SLICE("Error")));
}

static void md5_hex(cp_slice data, char out[33])
{
    unsigned char md[16];
    cp_md5(data.p ? data.p : "", data.len, md);
    cp_hex(md, 16, out);
}

static void make_bucket(env *e, const char *name)
{
    char t[128];
    snprintf(t, sizeof(t), "/%s", name);
    CPT_EQ_INT(call(e, "PUT", t, NULL, NOBODY), 200);
}

static void put_obj(env *e, const char *target, const char *data)
{
    CPT_EQ_INT(call(e, "PUT", target, NULL, cp_slice_str(data)), 200);
}

/* ------------------------------------------------------------------------------------------ */
/* Service and buckets                                                                         */

static void buckets_lifecycle(void)
{
    env e;
    env_open(&e, 0, 0);
    const char *cfg =
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<LocationConstraint>ap-northeast-2</LocationConstraint>"
        "</CreateBucketConfiguration>";
    CPT_EQ_INT(call(&e, "PUT", "/chat-archive", NULL, cp_slice_str(cfg)), 200);
    CPT_EQ_STR(hdr(&e, "Location"), "/chat-archive");
    CPT_EQ_INT(e.body.len, 0);
    make_bucket(&e, "another");

    CPT_EQ_INT(call(&e, "GET", "/chat-archive?location", NULL, NOBODY), 200);
    CPT_EQ_STR(xtext(&e, "LocationConstraint"), "ap-northeast-2");
    CPT_CHECK(strstr(e.body.p, "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"") != NULL);
    CPT_EQ_INT(call(&e, "GET", "/another?location", NULL, NOBODY), 200);
    CPT_EQ_STR(xtext(&e, "LocationConstraint"), ""); /* us-east-1 is the empty constraint */

    CPT_EQ_INT(call(&e, "GET", "/", NULL, NOBODY), 200);
    CPT_CHECK(cp_slice_eq(cp_xml_name(&e.doc, 0), CP_SLICE("ListAllMyBucketsResult")));
    CPT_CHECK(strstr(e.body.p, "<ListAllMyBucketsResult "
                               "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">") != NULL);
    CPT_EQ_INT(xcount(&e, "Bucket"), 2);
    CPT_EQ_STR(xtext(&e, "Name"), "another"); /* name order */
    CPT_EQ_STR(xtext(&e, "DisplayName"), "changepipe");
    regex_t re;
    CPT_EQ_INT(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                       REG_EXTENDED | REG_NOSUB),
               0);
    CPT_EQ_INT(regexec(&re, xtext(&e, "CreationDate"), 0, NULL, 0), 0);
    regfree(&re);

    CPT_EQ_INT(call(&e, "HEAD", "/chat-archive", NULL, NOBODY), 200);
    CPT_EQ_STR(hdr(&e, "x-amz-bucket-region"), "ap-northeast-2");
    CPT_EQ_INT(call(&e, "HEAD", "/missing-bucket", NULL, NOBODY), 404);

    CPT_EQ_INT(call(&e, "PUT", "/chat-archive", NULL, NOBODY), 409);
    expect_error(&e, 409, "BucketAlreadyOwnedByYou");
    CPT_EQ_STR(xtext(&e, "BucketName"), "chat-archive");

    put_obj(&e, "/chat-archive/k", "v");
    CPT_EQ_INT(call(&e, "DELETE", "/chat-archive", NULL, NOBODY), 409);
    expect_error(&e, 409, "BucketNotEmpty");
    CPT_EQ_INT(call(&e, "DELETE", "/chat-archive/k", NULL, NOBODY), 204);
    CPT_EQ_INT(call(&e, "DELETE", "/chat-archive", NULL, NOBODY), 204);
    CPT_EQ_INT(call(&e, "DELETE", "/chat-archive", NULL, NOBODY), 404);
    expect_error(&e, 404, "NoSuchBucket");
    CPT_EQ_STR(xtext(&e, "BucketName"), "chat-archive");
    CPT_EQ_STR(xtext(&e, "Message"), "The specified bucket does not exist");
    env_close(&e);
}

static void bucket_errors(void)
{
    env e;
    env_open(&e, 0, 0);
    const char *bad[] = {"/AB", "/a_b", "/ab", "/-abc", "/192.168.1.1", "/%2e%2e", "/a..b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call(&e, "PUT", bad[i], NULL, NOBODY);
        expect_error(&e, 400, "InvalidBucketName");
    }
    CPT_EQ_INT(call(&e, "PUT", "/good-name", NULL, CP_SLICE("<CreateBucketConfiguration>")), 400);
    expect_error(&e, 400, "MalformedXML");
    CPT_EQ_INT(call(&e, "PUT", "/good-name", NULL, CP_SLICE("<Other/>")), 400);
    expect_error(&e, 400, "MalformedXML");
    CPT_EQ_INT(call(&e, "PUT", "/good-name", NULL,
                    CP_SLICE("<CreateBucketConfiguration><LocationConstraint>us-east-1"
                             "</LocationConstraint></CreateBucketConfiguration>")),
               400);
    expect_error(&e, 400, "InvalidLocationConstraint");
    CPT_EQ_INT(call(&e, "PUT", "/good-name", NULL,
                    CP_SLICE("<CreateBucketConfiguration><LocationConstraint>not a region"
                             "</LocationConstraint></CreateBucketConfiguration>")),
               400);
    expect_error(&e, 400, "InvalidLocationConstraint");
    /* None of those created anything. */
    CPT_EQ_INT(call(&e, "GET", "/", NULL, NOBODY), 200);
    CPT_EQ_INT(xcount(&e, "Bucket"), 0);
    CPT_EQ_INT(call(&e, "POST", "/", NULL, NOBODY), 405);
    expect_error(&e, 405, "MethodNotAllowed");
    make_bucket(&e, "good-name");
    CPT_EQ_INT(call(&e, "PATCH", "/good-name/k", NULL, NOBODY), 405);
    expect_error(&e, 405, "MethodNotAllowed");
    CPT_EQ_STR(xtext(&e, "Method"), "PATCH");
    CPT_EQ_INT(call(&e, "GET", "/good-name?tagging", NULL, NOBODY), 501);
    expect_error(&e, 501, "NotImplemented");
    CPT_EQ_INT(call(&e, "GET", "/good-name?versioning", NULL, NOBODY), 200);
    CPT_CHECK(cp_slice_eq(cp_xml_name(&e.doc, 0), CP_SLICE("VersioningConfiguration")));
    CPT_EQ_INT(call(&e, "GET", "/good-name?acl", NULL, NOBODY), 200);
    CPT_EQ_STR(xtext(&e, "Permission"), "FULL_CONTROL");
    CPT_EQ_INT(call(&e, "GET", "/nobucket?list-type=2", NULL, NOBODY), 404);
    expect_error(&e, 404, "NoSuchBucket");
    env_close(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Objects                                                                                     */

static void put_get_head_delete(void)
{
    env e;
    env_open(&e, 0, 0);
    make_bucket(&e, "objs");
    const char *data = "{\"LivestreamID\":\"x\",\"UID\":1}\n";
    CPT_EQ_INT(call(&e, "PUT", "/objs/Livestreams/LivestreamID=x/part-0001.json",
                    H("Content-Type", "application/json", "x-amz-meta-Origin", "unit-test",
                      "Cache-Control", "no-cache"),
                    cp_slice_str(data)),
               200);
    char etag[33], quoted[40];
    md5_hex(cp_slice_str(data), etag);
    snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
    CPT_EQ_STR(hdr(&e, "ETag"), quoted);

    CPT_EQ_INT(call(&e, "GET", "/objs/Livestreams/LivestreamID=x/part-0001.json", NULL, NOBODY),
               200);
    CPT_EQ_STR(e.body.p, data);
    CPT_EQ_STR(hdr(&e, "ETag"), quoted);
    CPT_EQ_STR(hdr(&e, "Content-Type"), "application/json");
    CPT_EQ_STR(hdr(&e, "x-amz-meta-origin"), "unit-test");
    CPT_EQ_STR(hdr(&e, "Cache-Control"), "no-cache");
    CPT_EQ_STR(hdr(&e, "Accept-Ranges"), "bytes");
    regex_t re;
    CPT_EQ_INT(regcomp(&re,
                       "^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} [A-Z][a-z]{2} [0-9]{4} "
                       "[0-9]{2}:[0-9]{2}:[0-9]{2} GMT$",
                       REG_EXTENDED | REG_NOSUB),
               0);
    CPT_EQ_INT(regexec(&re, hdr(&e, "Last-Modified"), 0, NULL, 0), 0);
    regfree(&re);

    /* HEAD: same headers, the length of the object, the body is the transport's to drop. */
    CPT_EQ_INT(call(&e, "HEAD", "/objs/Livestreams/LivestreamID=x/part-0001.json", NULL, NOBODY),
               200);
    CPT_EQ_INT(e.resp.file_len, strlen(data));
    CPT_EQ_STR(hdr(&e, "ETag"), quoted);

    /* response-* overrides on GET. */
    CPT_EQ_INT(call(&e, "GET",
                    "/objs/Livestreams/LivestreamID=x/part-0001.json?response-content-type="
                    "text%2Fplain&response-content-disposition=attachment",
                    NULL, NOBODY),
               200);
    CPT_EQ_STR(hdr(&e, "Content-Type"), "text/plain");
    CPT_EQ_STR(hdr(&e, "Content-Disposition"), "attachment");

    /* No Content-Type given: S3's default. */
    put_obj(&e, "/objs/plain", "x");
    CPT_EQ_INT(call(&e, "GET", "/objs/plain", NULL, NOBODY), 200);
    CPT_EQ_STR(hdr(&e, "Content-Type"), "binary/octet-stream");

    /* Missing keys. */
    CPT_EQ_INT(call(&e, "GET", "/objs/nope/key", NULL, NOBODY), 404);
    expect_error(&e, 404, "NoSuchKey");
    CPT_EQ_STR(xtext(&e, "Key"), "nope/key");
    CPT_EQ_STR(xtext(&e, "Message"), "The specified key does not exist.");
    CPT_EQ_INT(call(&e, "HEAD", "/objs/nope", NULL, NOBODY), 404);
    CPT_EQ_INT(call(&e, "GET", "/nobucket/key", NULL, NOBODY), 404);
    expect_error(&e, 404, "NoSuchBucket");
    CPT_EQ_INT(call(&e, "PUT", "/nobucket/key", NULL, CP_SLICE("x")), 404);
    expect_error(&e, 404, "NoSuchBucket");

    /* Delete: 204, also for a key that is not there. */
    CPT_EQ_INT(call(&e, "DELETE", "/objs/Livestreams/LivestreamID=x/part-0001.json", NULL, NOBODY),
               204);
    CPT_EQ_INT(call(&e, "DELETE", "/objs/Livestreams/LivestreamID=x/part-0001.json", NULL, NOBODY),
               204);
    CPT_EQ_INT(call(&e, "GET", "/objs/Livestreams/LivestreamID=x/part-0001.json", NULL, NOBODY),
               404);
    CPT_EQ_INT(call(&e, "DELETE", "/nobucket/key", NULL, NOBODY), 404);
    env_close(&e);
}

static void keys_are_url_decoded(void)
{
    env e;
    env_open(&e, 0, 0);
    make_bucket(&e, "keys");
    /* %20 is a space, '+' stays a plus, %2F is a slash inside the key. */
    put_obj(&e, "/keys/a%20b+c%2Fd", "1");
    CPT_EQ_INT(cp_bucket_exists(e.store, "keys", CP_SLICE("a b+c/d"), NULL), 1);
    CPT_EQ_INT(call(&e, "GET", "/keys/a%20b+c/d", NULL, NOBODY), 200);
    CPT_EQ_STR(e.body.p, "1");
    /* Traversal attempts are just keys. */
    put_obj(&e, "/keys/../../etc/passwd", "2");
    put_obj(&e, "/keys/%2E%2E/%2E%2E/x", "3");
    CPT_EQ_INT(cp_bucket_exists(e.store, "keys", CP_SLICE("../../etc/passwd"), NULL), 1);
    CPT_EQ_INT(call(&e, "GET", "/keys/..%2F..%2Fetc%2Fpasswd", NULL, NOBODY), 200);
    CPT_EQ_STR(e.body.p, "2");
    /* A trailing slash is part of the key ("folder" objects). */
    put_obj(&e, "/keys/folder/", "");
    CPT_EQ_INT(cp_bucket_exists(e.store, "keys", CP_SLICE("folder/"), NULL), 1);
    /* Key limits. */
    char t[1200];
    strcpy(t, "/keys/");
    memset(t + 6, 'k', 1025);
    t[6 + 1025] = 0;
    CPT_EQ_INT(call(&e, "PUT", t, NULL, CP_SLICE("x")), 400);
    expect_error(&e, 400, "KeyTooLongError");
    t[6 + 1024] = 0;
    CPT_EQ_INT(call(&e, "PUT", t, NULL, CP_SLICE("x")), 200);
    CPT_EQ_INT(call(&e, "PUT", "/keys/bad%00nul", NULL, CP_SLICE("x")), 400);
    expect_error(&e, 400, "InvalidArgument");
    CPT_EQ_INT(call(&e, "PUT", "/keys/bad%FFutf8", NULL, CP_SLICE("x")), 400);
    expect_error(&e, 400, "InvalidArgument");
    env_close(&e);
}

static void ranges(void)
{
    env e;
    env_open(&e, 0, 0);
    make_bucket(&e, "rng");
    put_obj(&e, "/rng/k", "0123456789abcdefghij"); /* 20 bytes */
    struct {
        const char *range;
        int status;
        const char *body;
        const char *content_range;
    } cases[] = {
        {"bytes=0-9", 206, "0123456789", "bytes 0-9/20"},
        {"bytes=-5", 206, "fghij", "bytes 15-19/20"},
        {"bytes=5-", 206, "56789abcdefghij", "bytes 5-19/20"},
        {"bytes=18-100", 206, "ij", "bytes 18-19/20"},
        {"bytes=-100", 206, "0123456789abcdefghij", "bytes 0-19/20"},
        {"bytes=19-19", 206, "j", "bytes 19-19/20"},
        {"bytes=0-1,4-5", 200, "0123456789abcdefghij", NULL}, /* multi-range: whole object */
        {"bytes=5-2", 200, "0123456789abcdefghij", NULL},     /* invalid: ignored */
        {"items=0-1", 200, "0123456789abcdefghij", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CPT_EQ_INT(call(&e, "GET", "/rng/k", H("Range", cases[i].range), NOBODY), cases[i].status);
        CPT_EQ_STR(e.body.p, cases[i].body);
        if (cases[i].content_range) {
            CPT_EQ_STR(hdr(&e, "Content-Range"), cases[i].content_range);
        } else {
            CPT_CHECK(cp_http_resp_header(&e.resp, "Content-Range").p == NULL);
        }
    }
    const char *unsat[] = {"bytes=20-", "bytes=100-200", "bytes=-0"};
    for (size_t i = 0; i < sizeof(unsat) / sizeof(unsat[0]); i++) {
        CPT_EQ_INT(call(&e, "GET", "/rng/k", H("Range", unsat[i]), NOBODY), 416);
        expect_error(&e, 416, "InvalidRange");
        CPT_EQ_STR(hdr(&e, "Content-Range"), "bytes */20");
        CPT_EQ_STR(xtext(&e, "ActualObjectSize"), "20");
        CPT_EQ_INT(e.resp.file_fd, -1);
    }
    env_close(&e);
}

static void conditional_requests(void)
{
    env e;
    env_open(&e, 0, 0);
    make_bucket(&e, "cond");
    put_obj(&e, "/cond/k", "abc");
    char q[40];
    snprintf(q, sizeof(q), "\"%s\"", "900150983cd24fb0d6963f7d28e17f72");
    CPT_EQ_INT(call(&e, "GET", "/cond/k", H("If-None-Match", q), NOBODY), 304);
    CPT_EQ_INT(e.body.len, 0);
    CPT_EQ_STR(hdr(&e, "ETag"), q);
    CPT_EQ_INT(call(&e, "GET", "/cond/k", H("If-None-Match", "\"other\""), NOBODY), 200);
    CPT_EQ_INT(call(&e, "GET", "/cond/k", H("If-Match", q), NOBODY), 200);
    CPT_EQ_INT(call(&e, "GET", "/cond/k", H("If-Match", "\"other\""), NOBODY), 412);
    expect_error(&e, 412, "PreconditionFailed");
    CPT_EQ_INT(
        call(&e, "GET", "/cond/k", H("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"), NOBODY),
        304);
    CPT_EQ_INT(
        call(&e, "GET", "/cond/k", H("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT"), NOBODY),
        200);
    CPT_EQ_INT(call(&e, "HEAD", "/cond/k",
                    H("If-Unmodified-Since", "Thu, 01 Jan 1970 00:00:00 GMT"), NOBODY),
               412);
    env_close(&e);
}

static void digests_and_checksums(void)
{
    env e;
    env_open(&e, 0, 0);
    make_bucket(&e, "dig");
    /* Content-MD5 of "hello": XUFAKrxLKna5cZ2REBfFkg== */
    CPT_EQ_INT(
        call(&e, "PUT", "/dig/ok", H("Content-MD5", "XUFAKrxLKna5cZ2REBfFkg=="), CP_SLICE("hello")),
        200);
    CPT_EQ_INT(call(&e, "PUT", "/dig/bad", H("Content-MD5", "XUFAKrxLKna5cZ2REBfFkg=="),
                    CP_SLICE("hellO")),
               400);
    expect_error(&e, 400, "BadDigest");
    CPT_EQ_INT(cp_bucket_exists(e.store, "dig", CP_SLICE("bad"), NULL), 0);
    CPT_EQ_INT(call(&e, "PUT", "/dig/bad", H("Content-MD5", "not-base64!"), CP_SLICE("hello")),
               400);
    expect_error(&e, 400, "InvalidDigest");
    CPT_EQ_INT(call(&e, "PUT", "/dig/bad", H("Content-MD5", "aGVsbG8="), CP_SLICE("hello")), 400);
    expect_error(&e, 400, "InvalidDigest");

    /* A hex x-amz-content-sha256 must match the body. */
    const char *sha_hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    CPT_EQ_INT(call(&e, "PUT", "/dig/sha", H("x-amz-content-sha256", sha_hello), CP_SLICE("hello")),
               200);
    CPT_EQ_INT(
        call(&e, "PUT", "/dig/sha2", H("x-amz-content-sha256", sha_hello), CP_SLICE("hellx")), 400);
    expect_error(&e, 400, "XAmzContentSHA256Mismatch");
    CPT_EQ_INT(call(&e, "PUT", "/dig/unsigned", H("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
                    CP_SLICE("hellx")),
               200);

    /* Flexible checksums as headers: CRC32("hello") = 0x3610a686 -> NhCmhg==,
     * CRC32C("hello") = 0x9a71bb4c -> mnG7TA==, SHA-256 ->
     * LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ= */
    CPT_EQ_INT(
        call(&e, "PUT", "/dig/crc", H("x-amz-checksum-crc32", "NhCmhg=="), CP_SLICE("hello")), 200);
    CPT_EQ_STR(hdr(&e, "x-amz-checksum-crc32"), "NhCmhg==");
    CPT_EQ_INT(
        call(&e, "PUT", "/dig/crcc", H("x-amz-checksum-crc32c", "mnG7TA=="), CP_SLICE("hello")),
        200);
    CPT_EQ_INT(call(&e, "PUT", "/dig/s256",
                    H("x-amz-checksum-sha256", "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="),
                    CP_SLICE("hello")),
               200);
    CPT_EQ_INT(
        call(&e, "PUT", "/dig/crcbad", H("x-amz-checksum-crc32", "AAAAAA=="), CP_SLICE("hello")),
        400);
    expect_error(&e, 400, "BadDigest");
    CPT_CHECK(strstr(xtext(&e, "Message"), "CRC32") != NULL);
    CPT_EQ_INT(cp_bucket_exists(e.store, "dig", CP_SLICE("crcbad"), NULL), 0);
    env_close(&e);
}

static void entity_too_large(void)
{
    env e;
    env_open(&e, 8, 0);
    make_bucket(&e, "big");
    CPT_EQ_INT(call(&e, "PUT", "/big/k", NULL, CP_SLICE("12345678")), 200);
    CPT_EQ_INT(call(&e, "PUT", "/big/k", NULL, CP_SLICE("123456789")), 400);
    expect_error(&e, 400, "EntityTooLarge");
    CPT_EQ_INT(call(&e, "GET", "/big/k", NULL, NOBODY), 200);
    CPT_EQ_STR(e.body.p, "12345678");
    CPT_EQ_INT(call(&e, "PUT", "/big/meta", H("x-amz-meta-big", ""), CP_SLICE("1")), 200);
    char bigval[2100];
    memset(bigval, 'v', 2090);
    bigval[2090] = 0;
    CPT_EQ_INT(call(&e, "PUT", "/big/meta", H("x-amz-meta-big", bigval), CP_SLICE("1")), 400);
    expect_error(&e, 400, "MetadataTooLarge");
    env_close(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* aws-chunked uploads                                                                         */

static void build_chunked(cp_buf *out, cp_slice data, size_t chunk, int signed_chunks,
                          const char *trailer)
{
    const char *sig = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    for (size_t off = 0; off < data.len; off += chunk) {
        size_t n = data.len - off < chunk ? data.len - off : chunk;
        if (signed_chunks) {
            cp_buf_printf(out, "%zx;chunk-signature=%s\r\n", n, sig);
        } else {
            cp_buf_printf(out, "%zx\r\n", n);
        }
        cp_buf_append(out, data.p + off, n);
        cp_buf_puts(out, "\r\n");
    }
    if (signed_chunks) {
        cp_buf_printf(out, "0;chunk-signature=%s\r\n", sig);
    } else {
        cp_buf_puts(out, "0\r\n");
    }
    if (trailer) {
        cp_buf_puts(out, trailer);
        cp_buf_puts(out, "\r\n");
    }
    cp_buf_puts(out, "\r\n");
}

static void aws_chunked_uploads(void)
{
    env e;
    env_open(&e, 0, 0);
    make_bucket(&e, "chk");
    cp_buf data = CP_BUF_INIT, body = CP_BUF_INIT;
    for (int i = 0; i < 70000; i++) {
        cp_buf_putc(&data, (char) ('A' + (i * 31) % 57));
    }
    char len[32], etag[33], q[40];
    snprintf(len, sizeof(len), "%zu", data.len);
    md5_hex(cp_buf_slice(&data), etag);
    snprintf(q, sizeof(q), "\"%s\"", etag);

    /* Signed chunks (what SigV4 streaming clients send), 64 KiB chunks. */
    build_chunked(&body, cp_buf_slice(&data), 65536, 1, NULL);
    CPT_EQ_INT(call(&e, "PUT", "/chk/signed",
                    H("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                      "Content-Encoding", "aws-chunked", "x-amz-decoded-content-length", len),
                    cp_buf_slice(&body)),
               200);
    CPT_EQ_STR(hdr(&e, "ETag"), q);
    CPT_EQ_INT(call(&e, "GET", "/chk/signed", NULL, NOBODY), 200);
    CPT_EQ_MEM(e.body.p, e.body.len, data.p, data.len);
    /* aws-chunked is not stored as the object's encoding. */
    CPT_CHECK(cp_http_resp_header(&e.resp, "Content-Encoding").p == NULL);

    /* Unsigned chunks with a CRC32 trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER), and a real
     * content encoding next to aws-chunked. */
    cp_buf_reset(&body);
    char trailer[64];
    uint32_t crc = cp_crc32(0, data.p, data.len);
    unsigned char be[4] = {(unsigned char) (crc >> 24), (unsigned char) (crc >> 16),
                           (unsigned char) (crc >> 8), (unsigned char) crc};
    cp_buf b64 = CP_BUF_INIT;
    cp_base64_encode(cp_slice_of((const char *) be, 4), &b64);
    snprintf(trailer, sizeof(trailer), "x-amz-checksum-crc32:%s", b64.p);
    build_chunked(&body, cp_buf_slice(&data), 8192, 0, trailer);
    CPT_EQ_INT(call(&e, "PUT", "/chk/trailer",
                    H("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                      "Content-Encoding", "gzip,aws-chunked", "x-amz-trailer",
                      "x-amz-checksum-crc32", "x-amz-decoded-content-length", len),
                    cp_buf_slice(&body)),
               200);
    CPT_EQ_STR(hdr(&e, "ETag"), q);
    CPT_EQ_STR(hdr(&e, "x-amz-checksum-crc32"), b64.p);
    CPT_EQ_INT(call(&e, "GET", "/chk/trailer", NULL, NOBODY), 200);
    CPT_EQ_MEM(e.body.p, e.body.len, data.p, data.len);
    CPT_EQ_STR(hdr(&e, "Content-Encoding"), "gzip");

    /* A wrong trailer checksum stores nothing. */
    cp_buf_reset(&body);
    build_chunked(&body, cp_buf_slice(&data), 8192, 0, "x-amz-checksum-crc32:AAAAAA==");
    CPT_EQ_INT(call(&e, "PUT", "/chk/badtrailer",
                    H("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                      "Content-Encoding", "aws-chunked", "x-amz-trailer", "x-amz-checksum-crc32"),
                    cp_buf_slice(&body)),
               400);
    expect_error(&e, 400, "BadDigest");
    CPT_EQ_INT(cp_bucket_exists(e.store, "chk", CP_SLICE("badtrailer"), NULL), 0);

    /* Truncated framing and a decoded length that disagrees: IncompleteBody, nothing stored,
     * the old object intact. */
    cp_buf_reset(&body);
    build_chunked(&body, cp_buf_slice(&data), 65536, 1, NULL);
    CPT_EQ_INT(call(&e, "PUT", "/chk/signed",
                    H("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
                    cp_slice_of(body.p, body.len - 100)),
               400);
    expect_error(&e, 400, "IncompleteBody");
    CPT_EQ_INT(call(&e, "PUT", "/chk/signed",
                    H("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                      "x-amz-decoded-content-length", "5"),
                    cp_buf_slice(&body)),
               400);
    expect_error(&e, 400, "IncompleteBody");
    CPT_EQ_INT(call(&e, "GET", "/chk/signed", NULL, NOBODY), 200);
    CPT_EQ_MEM(e.body.p, e.body.len, data.p, data.len);
    CPT_EQ_INT(cp_bucket_exists(e.store, "chk", CP_SLICE("nothing"), NULL), 0);
    cp_buf_free(&b64);
    cp_buf_free(&data);
    cp_buf_free(&body);
    env_close(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Listing                                                                                     */

static void list_v2_pagination_and_delimiter(void)
{
    env e;
    env_open(&e, 0, 0);
    make_bucket(&e, "lst");
    /* 250 keys in 5 partitions plus a few top-level ones. */
    for (int i = 0; i < 250; i++) {
        char k[128];
        snprintf(k, sizeof(k), "/lst/Livestreams/LivestreamID=%d/obj-%03d.json", i % 5, i);
        put_obj(&e, k, "x");
    }
    put_obj(&e, "/lst/top-a", "x");
    put_obj(&e, "/lst/top-b", "x");

    /* Delimiter at the root. */
    CPT_EQ_INT(call(&e, "GET", "/lst?list-type=2&delimiter=%2F", NULL, NOBODY), 200);
    CPT_CHECK(cp_slice_eq(cp_xml_name(&e.doc, 0), CP_SLICE("ListBucketResult")));
    CPT_CHECK(strstr(e.body.p, "<ListBucketResult "
                               "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">") != NULL);
    CPT_EQ_STR(xtext(&e, "Name"), "lst");
    CPT_EQ_STR(xtext(&e, "KeyCount"), "3");
    CPT_EQ_STR(xtext(&e, "IsTruncated"), "false");
    CPT_EQ_STR(xtext(&e, "Delimiter"), "/");
    CPT_EQ_STR(xtext(&e, "MaxKeys"), "1000");
    CPT_EQ_INT(xcount(&e, "CommonPrefixes"), 1);
    CPT_EQ_INT(xcount(&e, "Contents"), 2);
    CPT_EQ_STR(xtext(&e, "Key"), "top-a");
    CPT_EQ_STR(xtext(&e, "StorageClass"), "STANDARD");
    CPT_EQ_STR(xtext(&e, "Size"), "1");
    CPT_EQ_STR(xtext(&e, "ETag"), "\"9dd4e461268c8034f5c8564e155c67a6\"");
    CPT_CHECK(strcmp(xtext(&e, "Owner"), "\x01(absent)") == 0); /* only with fetch-owner */

    /* Partitions under the prefix. */
    CPT_EQ_INT(
        call(&e, "GET", "/lst?list-type=2&prefix=Livestreams%2F&delimiter=%2F", NULL, NOBODY), 200);
    CPT_EQ_INT(xcount(&e, "CommonPrefixes"), 5);
    CPT_EQ_STR(xtext(&e, "Prefix"), "Livestreams/");
    CPT_CHECK(strstr(e.body.p, "<CommonPrefixes><Prefix>Livestreams/LivestreamID=0/</Prefix>"
                               "</CommonPrefixes>") != NULL);

    /* Pagination with continuation tokens: every key once, in order. */
    char target[1024] = "/lst?list-type=2&max-keys=37";
    int total = 0, pages = 0;
    char last[256] = "";
    for (;;) {
        CPT_EQ_INT(call(&e, "GET", target, NULL, NOBODY), 200);
        pages++;
        int kc = atoi(xtext(&e, "KeyCount"));
        CPT_EQ_INT(kc, xcount(&e, "Contents"));
        for (size_t i = 0; i < e.doc.n; i++) {
            if (cp_slice_eq(cp_xml_name(&e.doc, (int) i), CP_SLICE("Key"))) {
                cp_slice k = cp_xml_text(&e.doc, (int) i);
                char cur[256];
                snprintf(cur, sizeof(cur), "%.*s", (int) k.len, k.p);
                CPT_CHECK(strcmp(last, cur) < 0);
                snprintf(last, sizeof(last), "%s", cur);
                total++;
            }
        }
        if (strcmp(xtext(&e, "IsTruncated"), "true") != 0) {
            CPT_CHECK(strcmp(xtext(&e, "NextContinuationToken"), "\x01(absent)") == 0);
            break;
        }
        CPT_EQ_INT(kc, 37);
        char tok[512];
        snprintf(tok, sizeof(tok), "%s", xtext(&e, "NextContinuationToken"));
        CPT_CHECK(strlen(tok) > 0);
        snprintf(target, sizeof(target), "/lst?list-type=2&max-keys=37&continuation-token=%s", tok);
    }
    CPT_EQ_INT(total, 252);
    CPT_EQ_INT(pages, (252 + 36) / 37);
    CPT_EQ_STR(last, "top-b");

    /* StartAfter, fetch-owner, max-keys above 1000 is clamped, bad arguments. */
    CPT_EQ_INT(call(&e, "GET",
                    "/lst?list-type=2&start-after=Livestreams%2FLivestreamID%3D4%2Fobj-249.json"
                    "&fetch-owner=true&max-keys=5000",
                    NULL, NOBODY),
               200);
    CPT_EQ_STR(xtext(&e, "KeyCount"), "2");
    CPT_EQ_STR(xtext(&e, "StartAfter"), "Livestreams/LivestreamID=4/obj-249.json");
    CPT_EQ_STR(xtext(&e, "MaxKeys"), "1000");
    CPT_EQ_STR(xtext(&e, "DisplayName"), "changepipe");
    CPT_EQ_INT(call(&e, "GET", "/lst?list-type=2&max-keys=abc", NULL, NOBODY), 400);
    expect_error(&e, 400, "InvalidArgument");
    CPT_EQ_STR(xtext(&e, "ArgumentName"), "max-keys");
    CPT_EQ_INT(call(&e, "GET", "/lst?list-type=2&continuation-token=%25%25", NULL, NOBODY), 400);
    expect_error(&e, 400, "InvalidArgument");
    CPT_EQ_INT(call(&e, "GET", "/lst?list-type=2&encoding-type=xml", NULL, NOBODY), 400);
    expect_error(&e, 400, "InvalidArgument");
    CPT_EQ_INT(call(&e, "GET", "/lst?list-type=3", NULL, NOBODY), 400);
    CPT_EQ_INT(call(&e, "GET", "/lst?list-type=2&max-keys=0", NULL, NOBODY), 200);
    CPT_EQ_STR(xtext(&e, "KeyCount"), "0");
    CPT_EQ_STR(xtext(&e, "IsTruncated"), "false");
    env_close(&e);
}

static void list_encoding_and_v1(void)
{
    env e;
    env_open(&e, 0, 0);
    make_bucket(&e, "enc");
    put_obj(&e, "/enc/a%20b+c", "x");   /* "a b+c" */
    put_obj(&e, "/enc/d%26e/f", "x");   /* "d&e/f" */
    put_obj(&e, "/enc/%E2%82%AC", "x"); /* euro sign */
    CPT_EQ_INT(call(&e, "GET", "/enc?list-type=2&encoding-type=url&delimiter=%2F", NULL, NOBODY),
               200);
    CPT_EQ_STR(xtext(&e, "EncodingType"), "url");
    CPT_CHECK(strstr(e.body.p, "<Key>a%20b%2Bc</Key>") != NULL);
    CPT_CHECK(strstr(e.body.p, "<Prefix>d%26e/</Prefix>") != NULL);
    CPT_CHECK(strstr(e.body.p, "<Key>%E2%82%AC</Key>") != NULL);
    /* Without encoding, XML escaping only. */
    CPT_EQ_INT(call(&e, "GET", "/enc?list-type=2", NULL, NOBODY), 200);
    CPT_CHECK(strstr(e.body.p, "<Key>d&amp;e/f</Key>") != NULL);

    /* ListObjects v1: Marker/NextMarker, Owner always present. */
    for (int i = 0; i < 6; i++) {
        char k[64];
        snprintf(k, sizeof(k), "/enc/v1/p%d/x", i);
        put_obj(&e, k, "x");
    }
    CPT_EQ_INT(call(&e, "GET", "/enc?prefix=v1%2F&delimiter=%2F&max-keys=4", NULL, NOBODY), 200);
    CPT_EQ_STR(xtext(&e, "IsTruncated"), "true");
    CPT_EQ_STR(xtext(&e, "NextMarker"), "v1/p3/");
    CPT_EQ_INT(xcount(&e, "CommonPrefixes"), 4);
    CPT_EQ_INT(call(&e, "GET", "/enc?prefix=v1%2F&delimiter=%2F&max-keys=4&marker=v1%2Fp3%2F", NULL,
                    NOBODY),
               200);
    CPT_EQ_STR(xtext(&e, "IsTruncated"), "false");
    CPT_EQ_INT(xcount(&e, "CommonPrefixes"), 2);
    CPT_CHECK(strstr(e.body.p, "<Prefix>v1/p4/</Prefix>") != NULL);
    CPT_EQ_STR(xtext(&e, "Marker"), "v1/p3/");
    CPT_EQ_INT(call(&e, "GET", "/enc?prefix=v1%2Fp0", NULL, NOBODY), 200);
    CPT_EQ_STR(xtext(&e, "Key"), "v1/p0/x");
    CPT_EQ_STR(xtext(&e, "DisplayName"), "changepipe");
    env_close(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Multi-delete and copy                                                                       */

static void delete_objects(void)
{
    env e;
    env_open(&e, 0, 0);
    make_bucket(&e, "del");
    put_obj(&e, "/del/a", "1");
    put_obj(&e, "/del/b/c", "2");
    put_obj(&e, "/del/keep", "3");
    const char *body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                       "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                       "<Object><Key>a</Key></Object><Object><Key>b/c</Key></Object>"
                       "<Object><Key>never-existed</Key></Object></Delete>";
    unsigned char md[16];
    cp_md5(body, strlen(body), md);
    cp_buf b64 = CP_BUF_INIT;
    cp_base64_encode(cp_slice_of((const char *) md, 16), &b64);
    CPT_EQ_INT(call(&e, "POST", "/del?delete", H("Content-MD5", b64.p), cp_slice_str(body)), 200);
    CPT_CHECK(cp_slice_eq(cp_xml_name(&e.doc, 0), CP_SLICE("DeleteResult")));
    CPT_EQ_INT(xcount(&e, "Deleted"), 3);
    CPT_EQ_INT(xcount(&e, "Error"), 0);
    CPT_EQ_INT(cp_bucket_exists(e.store, "del", CP_SLICE("a"), NULL), 0);
    CPT_EQ_INT(cp_bucket_exists(e.store, "del", CP_SLICE("b/c"), NULL), 0);
    CPT_EQ_INT(cp_bucket_exists(e.store, "del", CP_SLICE("keep"), NULL), 1);
    /* Quiet mode reports only errors. */
    CPT_EQ_INT(call(&e, "POST", "/del?delete", NULL,
                    CP_SLICE("<Delete><Quiet>true</Quiet><Object><Key>keep</Key></Object>"
                             "</Delete>")),
               200);
    CPT_EQ_INT(xcount(&e, "Deleted"), 0);
    CPT_EQ_INT(cp_bucket_exists(e.store, "del", CP_SLICE("keep"), NULL), 0);
    CPT_EQ_INT(call(&e, "POST", "/del?delete", H("Content-MD5", b64.p),
                    CP_SLICE("<Delete><Object><Key>x</Key></Object></Delete>")),
               400);
    expect_error(&e, 400, "BadDigest");
    CPT_EQ_INT(
        call(&e, "POST", "/del?delete", NULL, CP_SLICE("<Delete><Object></Object></Delete>")), 400);
    expect_error(&e, 400, "MalformedXML");
    CPT_EQ_INT(call(&e, "POST", "/del?delete", NULL, CP_SLICE("not xml")), 400);
    expect_error(&e, 400, "MalformedXML");
    cp_buf_free(&b64);
    env_close(&e);
}

static void copy_object(void)
{
    env e;
    env_open(&e, 0, 0);
    make_bucket(&e, "src");
    make_bucket(&e, "dst");
    CPT_EQ_INT(call(&e, "PUT", "/src/dir/a+b", H("Content-Type", "text/csv", "x-amz-meta-k", "v"),
                    CP_SLICE("a,b\n")),
               200);
    CPT_EQ_INT(call(&e, "PUT", "/dst/copy", H("x-amz-copy-source", "/src/dir/a%2Bb"), NOBODY), 200);
    CPT_CHECK(cp_slice_eq(cp_xml_name(&e.doc, 0), CP_SLICE("CopyObjectResult")));
    char etag[33], q[40];
    md5_hex(CP_SLICE("a,b\n"), etag);
    snprintf(q, sizeof(q), "\"%s\"", etag);
    CPT_EQ_STR(xtext(&e, "ETag"), q);
    CPT_EQ_INT(call(&e, "GET", "/dst/copy", NULL, NOBODY), 200);
    CPT_EQ_STR(e.body.p, "a,b\n");
    CPT_EQ_STR(hdr(&e, "Content-Type"), "text/csv");
    CPT_EQ_STR(hdr(&e, "x-amz-meta-k"), "v");
    /* REPLACE takes the request's metadata. */
    CPT_EQ_INT(call(&e, "PUT", "/dst/copy",
                    H("x-amz-copy-source", "src/dir/a%2Bb", "x-amz-metadata-directive", "REPLACE",
                      "Content-Type", "text/plain"),
                    NOBODY),
               200);
    CPT_EQ_INT(call(&e, "HEAD", "/dst/copy", NULL, NOBODY), 200);
    CPT_EQ_STR(hdr(&e, "Content-Type"), "text/plain");
    CPT_CHECK(cp_http_resp_header(&e.resp, "x-amz-meta-k").p == NULL);
    /* Errors. */
    CPT_EQ_INT(call(&e, "PUT", "/src/dir/a+b", H("x-amz-copy-source", "/src/dir/a%2Bb"), NOBODY),
               400);
    expect_error(&e, 400, "InvalidRequest");
    CPT_EQ_INT(call(&e, "PUT", "/dst/x", H("x-amz-copy-source", "/src/nope"), NOBODY), 404);
    expect_error(&e, 404, "NoSuchKey");
    CPT_EQ_STR(xtext(&e, "Key"), "nope");
    CPT_EQ_INT(call(&e, "PUT", "/dst/x", H("x-amz-copy-source", "/nobucket/k"), NOBODY), 404);
    expect_error(&e, 404, "NoSuchBucket");
    CPT_EQ_STR(xtext(&e, "BucketName"), "nobucket");
    CPT_EQ_INT(call(&e, "PUT", "/dst/x", H("x-amz-copy-source", "justbucket"), NOBODY), 400);
    expect_error(&e, 400, "InvalidArgument");
    env_close(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Multipart                                                                                   */

static void multipart_through_the_api(void)
{
    env e;
    env_open(&e, 0, 6); /* parts but the last must be >= 6 bytes here */
    make_bucket(&e, "mpu");
    CPT_EQ_INT(
        call(&e, "POST", "/mpu/big/file.bin?uploads", H("Content-Type", "text/plain"), NOBODY),
        200);
    CPT_CHECK(cp_slice_eq(cp_xml_name(&e.doc, 0), CP_SLICE("InitiateMultipartUploadResult")));
    CPT_CHECK(strstr(e.body.p, "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"") != NULL);
    CPT_EQ_STR(xtext(&e, "Bucket"), "mpu");
    CPT_EQ_STR(xtext(&e, "Key"), "big/file.bin");
    char id[64];
    snprintf(id, sizeof(id), "%s", xtext(&e, "UploadId"));
    CPT_EQ_INT(strlen(id), 32);

    const char *parts[3] = {"first-part|", "second-part|", "end"};
    char etags[3][48];
    unsigned char mds[48];
    for (int p = 0; p < 3; p++) {
        char t[256];
        snprintf(t, sizeof(t), "/mpu/big/file.bin?partNumber=%d&uploadId=%s", p + 1, id);
        CPT_EQ_INT(call(&e, "PUT", t, NULL, cp_slice_str(parts[p])), 200);
        snprintf(etags[p], sizeof(etags[p]), "%.47s", hdr(&e, "ETag"));
        cp_md5(parts[p], strlen(parts[p]), mds + 16 * p);
        char hex[33], q[40];
        cp_hex(mds + 16 * p, 16, hex);
        snprintf(q, sizeof(q), "\"%s\"", hex);
        CPT_EQ_STR(etags[p], q);
    }
    char t[256];
    snprintf(t, sizeof(t), "/mpu/big/file.bin?uploadId=%s", id);
    CPT_EQ_INT(call(&e, "GET", t, NULL, NOBODY), 200);
    CPT_CHECK(cp_slice_eq(cp_xml_name(&e.doc, 0), CP_SLICE("ListPartsResult")));
    CPT_EQ_INT(xcount(&e, "Part"), 3);
    CPT_EQ_STR(xtext(&e, "NextPartNumberMarker"), "3");
    char tp[300];
    snprintf(tp, sizeof(tp), "%s&max-parts=2", t);
    CPT_EQ_INT(call(&e, "GET", tp, NULL, NOBODY), 200);
    CPT_EQ_INT(xcount(&e, "Part"), 2);
    CPT_EQ_STR(xtext(&e, "IsTruncated"), "true");
    CPT_EQ_STR(xtext(&e, "NextPartNumberMarker"), "2");
    snprintf(tp, sizeof(tp), "%s&max-parts=2&part-number-marker=2", t);
    CPT_EQ_INT(call(&e, "GET", tp, NULL, NOBODY), 200);
    CPT_EQ_INT(xcount(&e, "Part"), 1);
    CPT_EQ_STR(xtext(&e, "IsTruncated"), "false");
    snprintf(tp, sizeof(tp), "%s&max-parts=0", t);
    CPT_EQ_INT(call(&e, "GET", tp, NULL, NOBODY), 200);
    CPT_EQ_INT(xcount(&e, "Part"), 0);
    CPT_EQ_STR(xtext(&e, "IsTruncated"), "true");
    snprintf(tp, sizeof(tp), "%s&max-parts=x", t);
    CPT_EQ_INT(call(&e, "GET", tp, NULL, NOBODY), 400);
    expect_error(&e, 400, "InvalidArgument");

    /* Error paths. */
    CPT_EQ_INT(call(&e, "PUT", "/mpu/big/file.bin?partNumber=0&uploadId=x", NULL, CP_SLICE("x")),
               400);
    expect_error(&e, 400, "InvalidArgument");
    CPT_EQ_INT(call(&e, "PUT",
                    "/mpu/big/file.bin?partNumber=1&uploadId="
                    "0123456789abcdef0123456789abcdef",
                    NULL, CP_SLICE("x")),
               404);
    expect_error(&e, 404, "NoSuchUpload");
    cp_buf xml = CP_BUF_INIT;
    cp_buf_printf(&xml,
                  "<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>%s</ETag></Part>"
                  "<Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part>"
                  "</CompleteMultipartUpload>",
                  etags[1], etags[0]);
    CPT_EQ_INT(call(&e, "POST", t, NULL, cp_buf_slice(&xml)), 400);
    expect_error(&e, 400, "InvalidPartOrder");
    cp_buf_reset(&xml);
    cp_buf_printf(&xml, "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
                        "<ETag>\"00000000000000000000000000000000\"</ETag></Part>"
                        "</CompleteMultipartUpload>");
    CPT_EQ_INT(call(&e, "POST", t, NULL, cp_buf_slice(&xml)), 400);
    expect_error(&e, 400, "InvalidPart");
    CPT_EQ_INT(call(&e, "POST", t, NULL, CP_SLICE("<CompleteMultipartUpload/>")), 400);
    expect_error(&e, 400, "MalformedXML");
    CPT_EQ_INT(call(&e, "POST", t, NULL, CP_SLICE("<Complete")), 400);
    expect_error(&e, 400, "MalformedXML");
    cp_buf_reset(&xml);
    cp_buf_printf(&xml,
                  "<CompleteMultipartUpload><Part><PartNumber>3</PartNumber><ETag>%s</ETag></Part>"
                  "<Part><PartNumber>4</PartNumber><ETag>%s</ETag></Part>"
                  "</CompleteMultipartUpload>",
                  etags[2], etags[2]);
    CPT_EQ_INT(call(&e, "POST", t, NULL, cp_buf_slice(&xml)), 400);
    expect_error(&e, 400, "InvalidPart");
    char t4[256];
    snprintf(t4, sizeof(t4), "/mpu/big/file.bin?partNumber=4&uploadId=%s", id);
    CPT_EQ_INT(call(&e, "PUT", t4, NULL, CP_SLICE("end")), 200);
    CPT_EQ_INT(call(&e, "POST", t, NULL, cp_buf_slice(&xml)), 400);
    expect_error(&e, 400, "EntityTooSmall"); /* part 3 ("end") is not last and < 6 bytes */

    /* Complete with parts 1-3 (part 4 is discarded). */
    cp_buf_reset(&xml);
    cp_buf_puts(&xml,
                "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (int p = 0; p < 3; p++) {
        cp_buf_printf(&xml, "<Part><ETag>%s</ETag><PartNumber>%d</PartNumber></Part>", etags[p],
                      p + 1);
    }
    cp_buf_puts(&xml, "</CompleteMultipartUpload>");
    CPT_EQ_INT(call(&e, "POST", t, H("Host", "127.0.0.1:4566"), cp_buf_slice(&xml)), 200);
    CPT_CHECK(cp_slice_eq(cp_xml_name(&e.doc, 0), CP_SLICE("CompleteMultipartUploadResult")));
    unsigned char all[16];
    cp_md5(mds, 48, all);
    char want[64], hex[33];
    cp_hex(all, 16, hex);
    snprintf(want, sizeof(want), "\"%s-3\"", hex);
    CPT_EQ_STR(xtext(&e, "ETag"), want);
    CPT_EQ_STR(xtext(&e, "Location"), "http://127.0.0.1:4566/mpu/big/file.bin");
    CPT_EQ_STR(xtext(&e, "Key"), "big/file.bin");
    CPT_EQ_INT(call(&e, "GET", "/mpu/big/file.bin", NULL, NOBODY), 200);
    CPT_EQ_STR(e.body.p, "first-part|second-part|end");
    CPT_EQ_STR(hdr(&e, "ETag"), want);
    CPT_EQ_STR(hdr(&e, "Content-Type"), "text/plain");
    /* Completed uploads are gone. */
    CPT_EQ_INT(call(&e, "POST", t, NULL, cp_buf_slice(&xml)), 404);
    expect_error(&e, 404, "NoSuchUpload");

    /* Abort. */
    CPT_EQ_INT(call(&e, "POST", "/mpu/tmp?uploads", NULL, NOBODY), 200);
    snprintf(id, sizeof(id), "%s", xtext(&e, "UploadId"));
    snprintf(t, sizeof(t), "/mpu/tmp?partNumber=1&uploadId=%s", id);
    CPT_EQ_INT(call(&e, "PUT", t, NULL, CP_SLICE("data")), 200);
    snprintf(t, sizeof(t), "/mpu/tmp?uploadId=%s", id);
    CPT_EQ_INT(call(&e, "DELETE", t, NULL, NOBODY), 204);
    CPT_EQ_INT(call(&e, "DELETE", t, NULL, NOBODY), 404);
    expect_error(&e, 404, "NoSuchUpload");
    CPT_EQ_INT(call(&e, "GET", "/mpu/tmp", NULL, NOBODY), 404);
    cp_buf_free(&xml);
    env_close(&e);
}

static void multipart_part_in_aws_chunked(void)
{
    env e;
    env_open(&e, 0, 1);
    make_bucket(&e, "mpc");
    CPT_EQ_INT(call(&e, "POST", "/mpc/k?uploads", NULL, NOBODY), 200);
    char id[64], t[256];
    snprintf(id, sizeof(id), "%s", xtext(&e, "UploadId"));
    snprintf(t, sizeof(t), "/mpc/k?partNumber=1&uploadId=%s", id);
    cp_buf body = CP_BUF_INIT;
    build_chunked(&body, CP_SLICE("chunked part"), 5, 1, NULL);
    CPT_EQ_INT(call(&e, "PUT", t, H("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
                    cp_buf_slice(&body)),
               200);
    char etag[33], q[40];
    md5_hex(CP_SLICE("chunked part"), etag);
    snprintf(q, sizeof(q), "\"%s\"", etag);
    CPT_EQ_STR(hdr(&e, "ETag"), q);
    cp_buf_free(&body);
    env_close(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Authentication                                                                              */

/* Sign a request the way the aws CLI does and send it through an api with auth. */
static int call_signed(env *e, cp_s3api *api, const char *method, const char *target,
                       const char *secret, cp_slice body)
{
    char amz[17];
    cp_sigv4_amz_date(cp_clock_now_ms() / 1000, amz);
    char sha[65];
    cp_sigv4_sha256_hex(body, sha);
    cp_http_header h[4] = {{CP_SLICE("Host"), CP_SLICE("127.0.0.1:4566")},
                           {CP_SLICE("X-Amz-Date"), cp_slice_str(amz)},
                           {CP_SLICE("X-Amz-Content-Sha256"), cp_slice_str(sha)}};
    const char *q = strchr(target, '?');
    cp_sigv4_msg m = {cp_slice_str(method),
                      cp_slice_of(target, q ? (size_t) (q - target) : strlen(target)),
                      q ? cp_slice_str(q + 1) : cp_slice_of("", 0),
                      h,
                      3,
                      cp_slice_str(sha)};
    cp_sigv4_signer sg = {CP_SLICE("AKIDEXAMPLE"), cp_slice_str(secret), CP_SLICE("us-east-1"),
                          CP_SLICE("s3"), CP_SIGV4_S3};
    cp_buf authz = CP_BUF_INIT;
    cp_sigv4_sign(&sg, &m, cp_slice_str(amz), &authz);
    int st = call_api(e, api, method, target,
                      H("Host", "127.0.0.1:4566", "X-Amz-Date", amz, "X-Amz-Content-Sha256", sha,
                        "Authorization", authz.p),
                      body);
    cp_buf_free(&authz);
    return st;
}

static void sigv4_when_configured(void)
{
    env e;
    env_open(&e, 0, 0);
    cp_sigv4_cred cred = {"AKIDEXAMPLE", "secret-key"};
    cp_aws_router *auth = cp_aws_router_new(&(cp_aws_router_cfg){&cred, 1, NULL});
    cp_s3api *strict = cp_s3api_new(e.store, auth);
    CPT_EQ_INT(call_signed(&e, strict, "PUT", "/signed-bucket", "secret-key", NOBODY), 200);
    CPT_EQ_INT(
        call_signed(&e, strict, "PUT", "/signed-bucket/a%20key", "secret-key", CP_SLICE("body")),
        200);
    CPT_EQ_INT(
        call_signed(&e, strict, "GET", "/signed-bucket?list-type=2&prefix=a", "secret-key", NOBODY),
        200);
    CPT_EQ_STR(xtext(&e, "Key"), "a key");
    CPT_EQ_INT(call_signed(&e, strict, "GET", "/signed-bucket/a%20key", "wrong-secret", NOBODY),
               403);
    expect_error(&e, 403, "SignatureDoesNotMatch");
    CPT_EQ_INT(call_api(&e, strict, "GET", "/signed-bucket/a%20key", NULL, NOBODY), 403);
    expect_error(&e, 403, "AccessDenied");
    CPT_EQ_INT(call_api(&e, strict, "GET", "/signed-bucket/a%20key",
                        H("Authorization", "AWS4-HMAC-SHA256 garbage"), NOBODY),
               400);
    expect_error(&e, 400, "AuthorizationHeaderMalformed");
    cp_s3api_free(strict);
    cp_aws_router_free(auth);
    env_close(&e);
}

CPT_LIST = {
    {"buckets_lifecycle", buckets_lifecycle},
    {"bucket_errors", bucket_errors},
    {"put_get_head_delete", put_get_head_delete},
    {"keys_are_url_decoded", keys_are_url_decoded},
    {"ranges", ranges},
    {"conditional_requests", conditional_requests},
    {"digests_and_checksums", digests_and_checksums},
    {"entity_too_large", entity_too_large},
    {"aws_chunked_uploads", aws_chunked_uploads},
    {"list_v2_pagination_and_delimiter", list_v2_pagination_and_delimiter},
    {"list_encoding_and_v1", list_encoding_and_v1},
    {"delete_objects", delete_objects},
    {"copy_object", copy_object},
    {"multipart_through_the_api", multipart_through_the_api},
    {"multipart_part_in_aws_chunked", multipart_part_in_aws_chunked},
    {"sigv4_when_configured", sigv4_when_configured},
    {0},
};
