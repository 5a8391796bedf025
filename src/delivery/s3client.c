/* SPDX-License-Identifier: MIT */
/*
 * A small S3 REST client over libcurl, signed with SigV4 (aws/sigv4.h). It serves the
 * S3-compatible delivery sink (PutObject, multipart upload) and the query engine (GetObject,
 * HeadObject, ListObjectsV2). Every answer is classified into CP_OK / CP_RETRY / CP_EFAIL so
 * the delivery engine, which owns retries, can decide; nothing here retries or logs.
 */
#include "delivery/s3client.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/mem.h"
#include "objects/xml.h"

/* Idle easy handles kept per client. Each holds its own connection cache, so this bounds the
 * keep-alive connections a client keeps open between calls. */
#define POOL_MAX 8
/* Caps on answers we buffer: error documents and upload results are small; a listing page of
 * 1000 keys of 1 KiB each stays well below the list cap. */
#define SMALL_ANSWER_MAX (1u << 20)
#define LIST_ANSWER_MAX  (16u << 20)
#define GET_DEFAULT_MAX  ((size_t) 1 << 30)

struct cp_s3client {
    char *scheme;    /* "http" or "https" */
    char *authority; /* host[:port] exactly as in the endpoint; also the Host header */
    char *base;      /* path prefix of the endpoint without a trailing '/'; often "" */
    char *region;
    char *access_key;
    char *secret_key;
    char *session_token; /* NULL when not configured */
    int https;
    int path_style;
    int unsigned_payload;
    size_t threshold;
    size_t part_size;
    unsigned timeout_ms;
    unsigned connect_timeout_ms;

    pthread_mutex_t mu; /* guards the pool */
    CURL *idle[POOL_MAX];
    size_t nidle;
};

/* ------------------------------------------------------------------------------------------ */
/* Setup                                                                                       */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    /* Once per process, before any handle exists: curl_global_init is not guaranteed to be
     * thread-safe on every libcurl build, and curl_easy_init would otherwise call it lazily
     * from whichever worker thread comes first. Never cleaned up: other components (Lambda
     * invocations) share libcurl and the process exits anyway. */
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s)
{
    return s && *s ? cp_strdup(s) : NULL;
}

/* Split "scheme://authority[/base]" into the client. */
static int parse_endpoint(cp_s3client *c, const char *ep, cp_err *err)
{
    const char *rest;
    if (strncmp(ep, "http://", 7) == 0) {
        c->scheme = cp_strdup("http");
        rest = ep + 7;
    } else if (strncmp(ep, "https://", 8) == 0) {
        c->scheme = cp_strdup("https");
        c->https = 1;
        rest = ep + 8;
    } else {
        return cp_err_set(err, CP_EINVAL, "S3 endpoint must start with http:// or https://");
    }
    size_t alen = strcspn(rest, "/?#");
    if (alen == 0 || rest[alen] == '?' || rest[alen] == '#' || memchr(rest, '@', alen)) {
        return cp_err_set(err, CP_EINVAL,
                          "S3 endpoint must be http[s]://host[:port][/path] without user "
                          "info, query or fragment");
    }
    for (size_t i = 0; i < alen; i++) {
        if ((unsigned char) rest[i] <= ' ') {
            return cp_err_set(err, CP_EINVAL, "S3 endpoint host contains white space");
        }
    }
    c->authority = cp_strndup(rest, alen);
    const char *base = rest + alen;
    size_t blen = strlen(base);
    if (strpbrk(base, "?# \t\r\n")) {
        return cp_err_set(err, CP_EINVAL, "S3 endpoint path must not contain '?', '#' or spaces");
    }
    while (blen > 0 && base[blen - 1] == '/') {
        blen--;
    }
    c->base = cp_strndup(base, blen);
    return CP_OK;
}

int cp_s3client_new(const cp_s3_sink_cfg *cfg, cp_s3client **out, cp_err *err)
{
    *out = NULL;
    if (!cfg->endpoint || !*cfg->endpoint) {
        return cp_err_set(err, CP_EINVAL, "S3 endpoint is required");
    }
    if (!cfg->access_key || !*cfg->access_key || !cfg->secret_key || !*cfg->secret_key) {
        return cp_err_set(err, CP_EINVAL, "S3 access key and secret key are required");
    }
    if (cfg->part_size && cfg->part_size < CP_S3_MIN_PART_SIZE) {
        return cp_err_set(err, CP_EINVAL, "S3 part size %zu is below S3's minimum of 5 MiB",
                          cfg->part_size);
    }
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        return cp_err_set(err, CP_EINVAL, "libcurl initialisation failed: %s",
                          curl_easy_strerror(curl_init_rc));
    }
    cp_s3client *c = cp_calloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    int rc = parse_endpoint(c, cfg->endpoint, err);
    if (rc != CP_OK) {
        cp_s3client_free(c);
        return rc;
    }
    c->region = cp_strdup(cfg->region && *cfg->region ? cfg->region : "us-east-1");
    c->access_key = cp_strdup(cfg->access_key);
    c->secret_key = cp_strdup(cfg->secret_key);
    c->session_token = dup_or_null(cfg->session_token);
    c->path_style = cfg->path_style != 0;
    /* UNSIGNED-PAYLOAD over plain http would let anyone on the path change the bytes
     * undetected but for Content-MD5; AWS allows it only over TLS, and so do we. */
    c->unsigned_payload = cfg->unsigned_payload && c->https;
    c->threshold =
        cfg->multipart_threshold ? cfg->multipart_threshold : CP_S3_DEFAULT_MULTIPART_THRESHOLD;
    c->part_size = cfg->part_size ? cfg->part_size : CP_S3_DEFAULT_PART_SIZE;
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : CP_S3_DEFAULT_TIMEOUT_MS;
    c->connect_timeout_ms =
        cfg->connect_timeout_ms ? cfg->connect_timeout_ms : CP_S3_DEFAULT_CONNECT_TIMEOUT_MS;
    *out = c;
    return CP_OK;
}

void cp_s3client_free(cp_s3client *c)
{
    if (!c) {
        return;
    }
    for (size_t i = 0; i < c->nidle; i++) {
        curl_easy_cleanup(c->idle[i]);
    }
    pthread_mutex_destroy(&c->mu);
    cp_free(c->scheme);
    cp_free(c->authority);
    cp_free(c->base);
    cp_free(c->region);
    cp_free(c->access_key);
    if (c->secret_key) {
        /* Do not leave the secret in freed heap memory. */
        memset(c->secret_key, 0, strlen(c->secret_key));
    }
    cp_free(c->secret_key);
    cp_free(c->session_token);
    cp_free(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Handle pool                                                                                 */

static CURL *take_handle(cp_s3client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->nidle > 0) {
        h = c->idle[--c->nidle];
    }
    pthread_mutex_unlock(&c->mu);
    if (h) {
        /* Forget the previous call's options but keep its live connections (keep-alive),
         * DNS cache and TLS sessions. */
        curl_easy_reset(h);
        return h;
    }
    return curl_easy_init();
}

static void give_handle(cp_s3client *c, CURL *h)
{
    pthread_mutex_lock(&c->mu);
    if (c->nidle < POOL_MAX) {
        c->idle[c->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h) {
        curl_easy_cleanup(h);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* One request                                                                                 */

typedef struct s3_call {
    const char *op;     /* S3 operation name, for messages */
    const char *method; /* GET, HEAD, PUT, POST, DELETE */
    const char *bucket;
    cp_slice key;             /* empty for bucket-level requests */
    const char *query;        /* raw, already encoded; "" when none */
    cp_slice body;            /* sent for PUT and POST */
    const char *content_type; /* NULL: none */
    const char *content_encoding;
    const char *range; /* "bytes=a-b" or NULL */
    size_t max_answer; /* bytes of answer body we accept */
} s3_call;

typedef struct s3_answer {
    long status;
    long line_status; /* status of the response being received (header_cb) */
    cp_buf body;
    int too_big;
    int have_length;
    uint64_t content_length;
    size_t max;
    char etag[80];
    char content_type[128];
    char content_encoding[32];
    char content_range[96];
    char last_modified[40];
    char request_id[64];
} s3_answer;

/* The request body, replayable: curl rewinds it when it resends on a fresh connection after
 * a keep-alive connection turned out to be dead. */
typedef struct upload_src {
    cp_slice data;
    size_t off;
} upload_src;

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    upload_src *u = ud;
    size_t want = size * nitems, left = u->data.len - u->off;
    size_t n = want < left ? want : left;
    if (n) {
        memcpy(buf, u->data.p + u->off, n);
    }
    u->off += n;
    return n;
}

static int seek_cb(void *ud, curl_off_t offset, int origin)
{
    upload_src *u = ud;
    if (origin != SEEK_SET || offset < 0 || (uint64_t) offset > u->data.len) {
        return CURL_SEEKFUNC_CANTSEEK;
    }
    u->off = (size_t) offset;
    return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    s3_answer *a = ud;
    size_t n = size * nmemb;
    if (a->body.len + n > a->max) {
        a->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    cp_buf_append(&a->body, p, n);
    return n;
}

static void copy_value(char *dst, size_t cap, const char *v, size_t len)
{
    if (len >= cap) {
        len = cap - 1;
    }
    memcpy(dst, v, len);
    dst[len] = 0;
}

static int name_is(const char *line, size_t nlen, const char *name)
{
    return strlen(name) == nlen && strncasecmp(line, name, nlen) == 0;
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *ud)
{
    s3_answer *a = ud;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        /* A new status line (after "100 Continue"): forget the interim response's headers. */
        const char *sp = memchr(line, ' ', n);
        a->line_status = sp ? strtol(sp + 1, NULL, 10) : 0;
        a->have_length = 0;
        a->etag[0] = a->content_type[0] = a->content_encoding[0] = 0;
        a->content_range[0] = a->last_modified[0] = a->request_id[0] = 0;
        return n;
    }
    const char *colon = memchr(line, ':', n);
    if (!colon) {
        return n;
    }
    size_t nlen = (size_t) (colon - line);
    const char *v = colon + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) {
        end--;
    }
    size_t vlen = (size_t) (end - v);
    if (name_is(line, nlen, "etag")) {
        if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
            v++;
            vlen -= 2;
        }
        copy_value(a->etag, sizeof(a->etag), v, vlen);
    } else if (name_is(line, nlen, "content-type")) {
        copy_value(a->content_type, sizeof(a->content_type), v, vlen);
    } else if (name_is(line, nlen, "content-encoding")) {
        copy_value(a->content_encoding, sizeof(a->content_encoding), v, vlen);
    } else if (name_is(line, nlen, "content-range")) {
        copy_value(a->content_range, sizeof(a->content_range), v, vlen);
    } else if (name_is(line, nlen, "last-modified")) {
        copy_value(a->last_modified, sizeof(a->last_modified), v, vlen);
    } else if (name_is(line, nlen, "x-amz-request-id")) {
        copy_value(a->request_id, sizeof(a->request_id), v, vlen);
    } else if (name_is(line, nlen, "content-length")) {
        char tmp[32];
        copy_value(tmp, sizeof(tmp), v, vlen);
        char *e = NULL;
        unsigned long long len = strtoull(tmp, &e, 10);
        if (e != tmp && *e == 0) {
            a->have_length = 1;
            a->content_length = len;
            /* Refuse an oversized GET before its bytes arrive (error documents that large
             * are cut at the cap by write_cb instead). */
            if (len > a->max && a->line_status / 100 == 2) {
                a->too_big = 1;
                return 0;
            }
        }
    }
    return n;
}

/* Bucket names usable as a DNS label in front of the endpoint host. Others (upper case,
 * underscores) fall back to path-style, as the AWS SDKs do; so do names with dots over TLS,
 * which would not match the endpoint's wildcard certificate. */
static int vhost_ok(const cp_s3client *c, const char *bucket)
{
    size_t n = strlen(bucket);
    if (n < 3 || n > 63) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = bucket[i];
        int alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && ch != '-' && !(ch == '.' && !c->https)) {
            return 0;
        }
        if ((i == 0 || i == n - 1) && !alnum) {
            return 0;
        }
        if (ch == '.' && bucket[i + 1] == '.') {
            return 0;
        }
    }
    return 1;
}

/* "<op> <bucket>/<key>" for messages, bounded so the S3 detail still fits in cp_err. */
static void what(const s3_call *call, char *out, size_t cap)
{
    int klen = call->key.len > 96 ? 96 : (int) call->key.len;
    snprintf(out, cap, "S3 %s %s/%.*s%s", call->op, call->bucket, klen,
             call->key.p ? call->key.p : "", call->key.len > 96 ? "..." : "");
}

/* Codes S3 documents as worth retrying even though some come with a 4xx status; and the
 * integrity failures, which mean the bytes were damaged on the way and will likely pass
 * next time. NoSuchUpload: the upload vanished (aborted by a lifecycle rule or another
 * writer); the next attempt starts a new one. */
static int retryable_code(const char *code)
{
    static const char *const codes[] = {
        "SlowDown",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
        "Throttling",
        "ThrottlingException",
        "RequestTimeTooSkewed",
        "BadDigest",
        "XAmzContentSHA256Mismatch",
        "IncompleteBody",
        "NoSuchUpload",
        NULL,
    };
    for (size_t i = 0; codes[i]; i++) {
        if (strcmp(code, codes[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Extract Code/Message/RequestId from an S3 error document; 0 when it is not one. */
static int parse_error_doc(cp_slice body, cp_s3_status *st)
{
    if (body.len == 0) {
        return 0;
    }
    cp_xml_doc doc = CP_XML_DOC_INIT;
    int found = 0;
    if (cp_xml_parse(body, 1000, &doc, NULL) == CP_OK &&
        cp_slice_eq(cp_xml_name(&doc, 0), CP_SLICE("Error"))) {
        int n;
        cp_slice v;
        if ((n = cp_xml_child(&doc, 0, "Code")) >= 0) {
            v = cp_xml_text(&doc, n);
            copy_value(st->code, sizeof(st->code), v.p, v.len);
        }
        if ((n = cp_xml_child(&doc, 0, "Message")) >= 0) {
            v = cp_xml_text(&doc, n);
            copy_value(st->message, sizeof(st->message), v.p, v.len);
        }
        if (!st->request_id[0] && (n = cp_xml_child(&doc, 0, "RequestId")) >= 0) {
            v = cp_xml_text(&doc, n);
            copy_value(st->request_id, sizeof(st->request_id), v.p, v.len);
        }
        found = 1;
    }
    cp_xml_doc_free(&doc);
    return found;
}

/* Classify an HTTP answer that is an error (non-2xx, or a 200 carrying <Error>). */
static int classify_http(const s3_call *call, const s3_answer *a, cp_s3_status *st, cp_err *err)
{
    char w[160];
    what(call, w, sizeof(w));
    if (!parse_error_doc(cp_buf_slice(&a->body), st)) {
        /* HEAD answers and some proxies' errors carry no S3 document. */
        const char *guess = a->status == 404   ? (call->key.len ? "NoSuchKey" : "NoSuchBucket")
                            : a->status == 403 ? "AccessDenied"
                            : a->status == 503 ? "SlowDown"
                                               : "";
        copy_value(st->code, sizeof(st->code), guess, strlen(guess));
    }
    int rc;
    if (a->status >= 500 || a->status == 429 || retryable_code(st->code)) {
        rc = CP_RETRY;
    } else if (a->status == 404 && strcmp(st->code, "NoSuchKey") == 0 &&
               (strcmp(call->method, "GET") == 0 || strcmp(call->method, "HEAD") == 0)) {
        rc = CP_ENOTFOUND;
    } else {
        /* 403 AccessDenied / SignatureDoesNotMatch / InvalidAccessKeyId, 404 NoSuchBucket,
         * 301 PermanentRedirect (wrong region), other client errors: retrying the same
         * request cannot succeed until the configuration or the bucket changes. */
        rc = CP_EFAIL;
    }
    return cp_err_set(err, rc, "%s: HTTP %ld %s%s%s", w, a->status,
                      st->code[0] ? st->code : "(no code)", st->message[0] ? ": " : "",
                      st->message);
}

static int classify_curl(const s3_call *call, CURLcode cc, const char *errbuf, cp_s3_status *st,
                         cp_err *err)
{
    char w[160];
    what(call, w, sizeof(w));
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    copy_value(st->message, sizeof(st->message), detail, strlen(detail));
    int rc;
    switch (cc) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        /* Configuration problems: the endpoint or its certificate. */
        rc = CP_EFAIL;
        break;
    default:
        /* Refused, reset, DNS, timeouts, TLS handshakes cut short: the endpoint may be back
         * on the next attempt. */
        rc = CP_RETRY;
        break;
    }
    return cp_err_set(err, rc, "%s: %s (%s)", w, rc == CP_RETRY ? "connection failed" : "failed",
                      detail);
}

/*
 * Sign and perform one request. CP_OK for a 2xx answer (a->body holds it), else the
 * classified failure with st and err filled. a must be initialised by the caller.
 */
static int perform(cp_s3client *c, const s3_call *call, s3_answer *a, cp_s3_status *st, cp_err *err)
{
    memset(st, 0, sizeof(*st));
    if (!call->bucket || !*call->bucket) {
        return cp_err_set(err, CP_EINVAL, "S3 %s: bucket name is empty", call->op);
    }
    int vhost = !c->path_style && vhost_ok(c, call->bucket);

    /* Path as sent on the wire; the signer decodes and re-encodes it (S3 rules), which is
     * the identity for our encoding. */
    cp_buf path = CP_BUF_INIT, url = CP_BUF_INIT, host = CP_BUF_INIT;
    cp_buf_puts(&path, c->base);
    if (!vhost) {
        cp_buf_putc(&path, '/');
        cp_sigv4_uri_encode(cp_slice_str(call->bucket), 0, &path);
    }
    if (call->key.len || vhost) {
        cp_buf_putc(&path, '/');
        cp_sigv4_uri_encode(call->key, 1, &path);
    }
    if (vhost) {
        cp_buf_printf(&host, "%s.%s", call->bucket, c->authority);
    } else {
        cp_buf_puts(&host, c->authority);
    }
    cp_buf_printf(&url, "%s://%s%s%s%s", c->scheme, host.p, path.p, call->query[0] ? "?" : "",
                  call->query);

    int has_body = strcmp(call->method, "PUT") == 0 || strcmp(call->method, "POST") == 0;
    char amz_date[17], sha[65], md5_b64[32] = "";
    cp_sigv4_amz_date(cp_clock_now_ms() / 1000, amz_date);
    if (!has_body) {
        memcpy(sha, CP_SIGV4_EMPTY_SHA256, 65);
    } else if (c->unsigned_payload) {
        snprintf(sha, sizeof(sha), "%s", CP_SIGV4_UNSIGNED_PAYLOAD);
    } else {
        cp_sigv4_sha256_hex(call->body, sha);
    }
    if (has_body) {
        unsigned char md5[16];
        cp_md5(call->body.p, call->body.len, md5);
        cp_buf b64 = CP_BUF_INIT;
        cp_base64_encode(cp_slice_of((const char *) md5, 16), &b64);
        copy_value(md5_b64, sizeof(md5_b64), b64.p, b64.len);
        cp_buf_free(&b64);
    }

    cp_http_header hs[10];
    size_t n = 0;
    hs[n++] = (cp_http_header){CP_SLICE("Host"), cp_buf_slice(&host)};
    hs[n++] = (cp_http_header){CP_SLICE("X-Amz-Date"), cp_slice_str(amz_date)};
    hs[n++] = (cp_http_header){CP_SLICE("X-Amz-Content-Sha256"), cp_slice_str(sha)};
    if (c->session_token) {
        hs[n++] =
            (cp_http_header){CP_SLICE("X-Amz-Security-Token"), cp_slice_str(c->session_token)};
    }
    if (has_body) {
        hs[n++] = (cp_http_header){CP_SLICE("Content-MD5"), cp_slice_str(md5_b64)};
    }
    if (call->content_type) {
        hs[n++] = (cp_http_header){CP_SLICE("Content-Type"), cp_slice_str(call->content_type)};
    }
    if (call->content_encoding) {
        hs[n++] =
            (cp_http_header){CP_SLICE("Content-Encoding"), cp_slice_str(call->content_encoding)};
    }
    if (call->range) {
        hs[n++] = (cp_http_header){CP_SLICE("Range"), cp_slice_str(call->range)};
    }
    cp_sigv4_msg m = {
        cp_slice_str(call->method), cp_buf_slice(&path), cp_slice_str(call->query), hs, n,
        cp_slice_str(sha)};
    cp_sigv4_signer signer = {cp_slice_str(c->access_key), cp_slice_str(c->secret_key),
                              cp_slice_str(c->region), CP_SLICE("s3"), CP_SIGV4_S3};
    cp_buf authz = CP_BUF_INIT, line = CP_BUF_INIT;
    cp_sigv4_sign(&signer, &m, cp_slice_str(amz_date), &authz);

    struct curl_slist *list = NULL, *tmp;
    int oom = 0;
    for (size_t i = 0; i <= n && !oom; i++) {
        cp_buf_reset(&line);
        if (i < n) {
            cp_buf_printf(&line, "%.*s: %.*s", (int) hs[i].name.len, hs[i].name.p,
                          (int) hs[i].value.len, hs[i].value.p);
        } else {
            cp_buf_printf(&line, "Authorization: %s", authz.p);
        }
        oom = !(tmp = curl_slist_append(list, line.p));
        list = tmp ? tmp : list;
    }
    /* No "Expect: 100-continue" round trip; POSTs without our own type must not get curl's
     * form content type (it would not be signed); nothing asks for compressed answers, so
     * GetObject returns the stored bytes as they are. */
    static const char *const extra[] = {"Expect:", "Accept:", "Content-Type:", NULL};
    for (size_t i = 0; extra[i] && !oom; i++) {
        if (i == 2 && call->content_type) {
            continue;
        }
        oom = !(tmp = curl_slist_append(list, extra[i]));
        list = tmp ? tmp : list;
    }
    cp_buf_free(&authz);
    cp_buf_free(&line);

    CURL *h = oom ? NULL : take_handle(c);
    int rc;
    if (!h) {
        rc = cp_err_set(err, CP_RETRY, "S3 %s: out of memory in libcurl", call->op);
        goto out;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    upload_src src = {call->body, 0};
    a->max = call->max_answer;
    curl_easy_setopt(h, CURLOPT_URL, url.p);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    /* Worker threads: no signals (SIGALRM-based DNS timeouts are not thread-safe). */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long) c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    /* Keys are data: "a/../b" is an object name, not a path to squash. */
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
    if (strcmp(call->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, &src);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, &src);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t) call->body.len);
    } else if (strcmp(call->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, call->body.len ? call->body.p : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) call->body.len);
    } else if (strcmp(call->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(call->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, call->method);
    }
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
    /* Nothing of this call may be touched after it returns (the handle idles in the pool). */
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    give_handle(c, h);

    st->http_status = a->status;
    copy_value(st->request_id, sizeof(st->request_id), a->request_id, strlen(a->request_id));
    if (a->too_big && (cc == CURLE_OK || cc == CURLE_WRITE_ERROR) && a->status / 100 == 2) {
        char w[160];
        what(call, w, sizeof(w));
        rc = cp_err_set(err, CP_ETOOBIG, "%s: answer larger than %zu bytes", w, a->max);
    } else if (cc != CURLE_OK && !(a->too_big && a->status >= 300)) {
        rc = classify_curl(call, cc, errbuf, st, err);
    } else if (a->status / 100 == 2) {
        rc = CP_OK;
    } else {
        rc = classify_http(call, a, st, err);
    }
out:
    curl_slist_free_all(list);
    cp_buf_free(&path);
    cp_buf_free(&url);
    cp_buf_free(&host);
    return rc;
}

static void answer_init(s3_answer *a)
{
    memset(a, 0, sizeof(*a));
}

static void answer_free(s3_answer *a)
{
    cp_buf_free(&a->body);
}

/* ------------------------------------------------------------------------------------------ */
/* PutObject and multipart upload                                                              */

static const char *type_of(const cp_s3_put_opts *opts)
{
    return opts && opts->content_type ? opts->content_type : "application/octet-stream";
}

static const char *encoding_of(const cp_s3_put_opts *opts)
{
    return opts && opts->content_encoding && *opts->content_encoding ? opts->content_encoding
                                                                     : NULL;
}

int cp_s3client_put_object(cp_s3client *c, const char *bucket, cp_slice key, cp_slice body,
                           const cp_s3_put_opts *opts, cp_s3_status *st, cp_err *err)
{
    cp_s3_status local;
    st = st ? st : &local;
    if (key.len == 0) {
        return cp_err_set(err, CP_EINVAL, "S3 PutObject: empty key");
    }
    s3_call call = {.op = "PutObject",
                    .method = "PUT",
                    .bucket = bucket,
                    .key = key,
                    .query = "",
                    .body = body,
                    .content_type = type_of(opts),
                    .content_encoding = encoding_of(opts),
                    .max_answer = SMALL_ANSWER_MAX};
    s3_answer a;
    answer_init(&a);
    int rc = perform(c, &call, &a, st, err);
    answer_free(&a);
    return rc;
}

/* Text of the first child `name` of the root, or an empty slice. */
static cp_slice root_child_text(const cp_xml_doc *doc, const char *name)
{
    int n = cp_xml_child(doc, 0, name);
    return n >= 0 ? cp_xml_text(doc, n) : cp_slice_of("", 0);
}

static int mpu_create(cp_s3client *c, const char *bucket, cp_slice key, const cp_s3_put_opts *opts,
                      cp_buf *upload_id, cp_s3_status *st, cp_err *err)
{
    s3_call call = {.op = "CreateMultipartUpload",
                    .method = "POST",
                    .bucket = bucket,
                    .key = key,
                    .query = "uploads",
                    .body = cp_slice_of("", 0),
                    .content_type = type_of(opts),
                    .content_encoding = encoding_of(opts),
                    .max_answer = SMALL_ANSWER_MAX};
    s3_answer a;
    answer_init(&a);
    int rc = perform(c, &call, &a, st, err);
    if (rc == CP_OK) {
        cp_xml_doc doc = CP_XML_DOC_INIT;
        cp_slice id = {NULL, 0};
        if (cp_xml_parse(cp_buf_slice(&a.body), 1000, &doc, NULL) == CP_OK &&
            cp_slice_eq(cp_xml_name(&doc, 0), CP_SLICE("InitiateMultipartUploadResult"))) {
            id = root_child_text(&doc, "UploadId");
        }
        if (id.len == 0) {
            /* A 200 we cannot use; a proxy or a half-implemented server. Retrying may hit a
             * healthy backend. */
            rc = cp_err_set(err, CP_RETRY,
                            "S3 CreateMultipartUpload %s: answer without an UploadId", bucket);
        } else {
            cp_buf_append(upload_id, id.p, id.len);
        }
        cp_xml_doc_free(&doc);
    }
    answer_free(&a);
    return rc;
}

static void abort_upload(cp_s3client *c, const char *bucket, cp_slice key, const char *query)
{
    /* Best effort: when the server is unreachable the upload stays behind (S3 bucket
     * lifecycle rules for incomplete uploads clean those up); the caller reports the
     * original failure, not this one. */
    s3_call call = {.op = "AbortMultipartUpload",
                    .method = "DELETE",
                    .bucket = bucket,
                    .key = key,
                    .query = query,
                    .max_answer = SMALL_ANSWER_MAX};
    s3_answer a;
    cp_s3_status st;
    answer_init(&a);
    (void) perform(c, &call, &a, &st, NULL);
    answer_free(&a);
}

int cp_s3client_put_multipart(cp_s3client *c, const char *bucket, cp_slice key, cp_slice body,
                              const cp_s3_put_opts *opts, cp_s3_status *st, cp_err *err)
{
    cp_s3_status local;
    st = st ? st : &local;
    if (key.len == 0) {
        return cp_err_set(err, CP_EINVAL, "S3 CreateMultipartUpload: empty key");
    }
    size_t psize = c->part_size;
    if (body.len / psize >= CP_S3_MAX_PARTS) {
        /* Keep within S3's 10000 parts by growing the parts. */
        psize = (body.len + CP_S3_MAX_PARTS - 1) / CP_S3_MAX_PARTS;
    }
    size_t nparts = body.len == 0 ? 1 : (body.len + psize - 1) / psize;

    cp_buf id = CP_BUF_INIT, q = CP_BUF_INIT, xml = CP_BUF_INIT, idq = CP_BUF_INIT;
    int rc = mpu_create(c, bucket, key, opts, &id, st, err);
    if (rc != CP_OK) {
        goto done;
    }
    cp_buf_puts(&idq, "uploadId=");
    cp_sigv4_uri_encode(cp_buf_slice(&id), 0, &idq);
    cp_buf_puts(&xml, "<CompleteMultipartUpload "
                      "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (size_t i = 0; i < nparts; i++) {
        size_t off = i * psize;
        size_t len = body.len - off < psize ? body.len - off : psize;
        cp_buf_reset(&q);
        cp_buf_printf(&q, "partNumber=%zu&%s", i + 1, idq.p);
        s3_call call = {.op = "UploadPart",
                        .method = "PUT",
                        .bucket = bucket,
                        .key = key,
                        .query = q.p,
                        .body = cp_slice_of(body.p + off, len),
                        .max_answer = SMALL_ANSWER_MAX};
        s3_answer a;
        answer_init(&a);
        rc = perform(c, &call, &a, st, err);
        if (rc == CP_OK && !a.etag[0]) {
            rc = cp_err_set(err, CP_RETRY, "S3 UploadPart %s: answer without an ETag", bucket);
        }
        if (rc == CP_OK) {
            char quoted[84];
            snprintf(quoted, sizeof(quoted), "\"%s\"", a.etag);
            cp_buf_printf(&xml, "<Part><PartNumber>%zu</PartNumber>", i + 1);
            cp_xml_put_elem(&xml, "ETag", cp_slice_str(quoted));
            cp_buf_puts(&xml, "</Part>");
        }
        answer_free(&a);
        if (rc != CP_OK) {
            goto abort;
        }
    }
    cp_buf_puts(&xml, "</CompleteMultipartUpload>");

    s3_call call = {.op = "CompleteMultipartUpload",
                    .method = "POST",
                    .bucket = bucket,
                    .key = key,
                    .query = idq.p,
                    .body = cp_buf_slice(&xml),
                    .content_type = "application/xml",
                    .max_answer = SMALL_ANSWER_MAX};
    s3_answer a;
    answer_init(&a);
    rc = perform(c, &call, &a, st, err);
    if (rc == CP_OK) {
        /* S3 may answer 200 and still fail: the status is sent before the parts are
         * assembled, and an <Error> document follows in the body. */
        cp_xml_doc doc = CP_XML_DOC_INIT;
        if (cp_xml_parse(cp_buf_slice(&a.body), 1000, &doc, NULL) != CP_OK ||
            !cp_slice_eq(cp_xml_name(&doc, 0), CP_SLICE("CompleteMultipartUploadResult"))) {
            if (parse_error_doc(cp_buf_slice(&a.body), st)) {
                rc = classify_http(&call, &a, st, err);
            } else {
                rc = cp_err_set(err, CP_RETRY, "S3 CompleteMultipartUpload %s: unexpected answer",
                                bucket);
            }
        }
        cp_xml_doc_free(&doc);
    }
    answer_free(&a);
    if (rc == CP_OK) {
        goto done;
    }
abort:
    abort_upload(c, bucket, key, idq.p);
done:
    cp_buf_free(&id);
    cp_buf_free(&q);
    cp_buf_free(&xml);
    cp_buf_free(&idq);
    return rc;
}

int cp_s3client_put(cp_s3client *c, const char *bucket, cp_slice key, cp_slice body,
                    const cp_s3_put_opts *opts, cp_s3_status *st, cp_err *err)
{
    if (body.len > c->threshold) {
        return cp_s3client_put_multipart(c, bucket, key, body, opts, st, err);
    }
    return cp_s3client_put_object(c, bucket, key, body, opts, st, err);
}

/* ------------------------------------------------------------------------------------------ */
/* GetObject, HeadObject                                                                       */

static void fill_info(const s3_answer *a, uint64_t body_len, cp_s3_obj_info *info)
{
    memset(info, 0, sizeof(*info));
    info->size = a->have_length ? a->content_length : body_len;
    /* A ranged answer: "bytes a-b/total" names the whole object's size. */
    const char *slash = strrchr(a->content_range, '/');
    if (slash && slash[1] != '*') {
        info->size = strtoull(slash + 1, NULL, 10);
    }
    snprintf(info->etag, sizeof(info->etag), "%s", a->etag);
    snprintf(info->content_type, sizeof(info->content_type), "%s", a->content_type);
    snprintf(info->content_encoding, sizeof(info->content_encoding), "%s", a->content_encoding);
    snprintf(info->last_modified, sizeof(info->last_modified), "%s", a->last_modified);
}

int cp_s3client_get(cp_s3client *c, const char *bucket, cp_slice key, uint64_t off, uint64_t len,
                    size_t max_bytes, cp_buf *out, cp_s3_obj_info *info, cp_s3_status *st,
                    cp_err *err)
{
    cp_s3_status local;
    st = st ? st : &local;
    char range[64];
    int ranged = off > 0 || len > 0;
    if (len > 0) {
        snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, off, off + len - 1);
    } else {
        snprintf(range, sizeof(range), "bytes=%" PRIu64 "-", off);
    }
    s3_call call = {.op = "GetObject",
                    .method = "GET",
                    .bucket = bucket,
                    .key = key,
                    .query = "",
                    .range = ranged ? range : NULL,
                    .max_answer = max_bytes ? max_bytes : GET_DEFAULT_MAX};
    s3_answer a;
    answer_init(&a);
    int rc = perform(c, &call, &a, st, err);
    if (rc == CP_OK) {
        cp_buf_append(out, a.body.p ? a.body.p : "", a.body.len);
        if (info) {
            fill_info(&a, a.body.len, info);
        }
    }
    answer_free(&a);
    return rc;
}

int cp_s3client_head(cp_s3client *c, const char *bucket, cp_slice key, cp_s3_obj_info *info,
                     cp_s3_status *st, cp_err *err)
{
    cp_s3_status local;
    st = st ? st : &local;
    s3_call call = {.op = "HeadObject",
                    .method = "HEAD",
                    .bucket = bucket,
                    .key = key,
                    .query = "",
                    .max_answer = SIZE_MAX};
    s3_answer a;
    answer_init(&a);
    int rc = perform(c, &call, &a, st, err);
    if (rc == CP_OK && info) {
        fill_info(&a, 0, info);
    }
    answer_free(&a);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* ListObjectsV2                                                                               */

static void add_param(cp_buf *q, const char *name, cp_slice v)
{
    if (q->len) {
        cp_buf_putc(q, '&');
    }
    cp_buf_puts(q, name);
    cp_buf_putc(q, '=');
    cp_sigv4_uri_encode(v, 0, q);
}

static cp_slice child_text(const cp_xml_doc *doc, int node, const char *name)
{
    int n = cp_xml_child(doc, node, name);
    return n >= 0 ? cp_xml_text(doc, n) : cp_slice_of("", 0);
}

static cp_slice unquote(cp_slice s)
{
    if (s.len >= 2 && s.p[0] == '"' && s.p[s.len - 1] == '"') {
        return cp_slice_of(s.p + 1, s.len - 2);
    }
    return s;
}

int cp_s3client_list(cp_s3client *c, const char *bucket, const cp_s3_list_req *rq, cp_s3_list_cb cb,
                     void *ctx, cp_s3_list_res *res, cp_s3_status *st, cp_err *err)
{
    cp_s3_status local;
    st = st ? st : &local;
    /* Parameters in canonical (sorted) order, though the signer sorts them anyway. */
    cp_buf q = CP_BUF_INIT;
    if (rq->continuation_token.len) {
        add_param(&q, "continuation-token", rq->continuation_token);
    }
    if (rq->delimiter.len) {
        add_param(&q, "delimiter", rq->delimiter);
    }
    cp_buf_puts(&q, q.len ? "&list-type=2" : "list-type=2");
    if (rq->max_keys) {
        cp_buf_printf(&q, "&max-keys=%u", rq->max_keys);
    }
    if (rq->prefix.len) {
        add_param(&q, "prefix", rq->prefix);
    }
    if (rq->start_after.len) {
        add_param(&q, "start-after", rq->start_after);
    }
    /* Only now: rq->continuation_token may point into res->next_token (the natural loop). */
    res->count = 0;
    res->truncated = 0;
    cp_buf_reset(&res->next_token);
    s3_call call = {.op = "ListObjectsV2",
                    .method = "GET",
                    .bucket = bucket,
                    .key = cp_slice_of("", 0),
                    .query = q.p,
                    .max_answer = LIST_ANSWER_MAX};
    s3_answer a;
    answer_init(&a);
    int rc = perform(c, &call, &a, st, err);
    cp_xml_doc doc = CP_XML_DOC_INIT;
    if (rc != CP_OK) {
        goto out;
    }
    if (cp_xml_parse(cp_buf_slice(&a.body), 0, &doc, NULL) != CP_OK ||
        !cp_slice_eq(cp_xml_name(&doc, 0), CP_SLICE("ListBucketResult"))) {
        rc = cp_err_set(err, CP_ECORRUPT, "S3 ListObjectsV2 %s: answer is not a ListBucketResult",
                        bucket);
        goto out;
    }
    res->truncated = cp_slice_eq(root_child_text(&doc, "IsTruncated"), CP_SLICE("true"));
    cp_slice next = root_child_text(&doc, "NextContinuationToken");
    cp_buf_append(&res->next_token, next.p ? next.p : "", next.len);
    for (int n = doc.nodes[0].first_child; n >= 0; n = doc.nodes[n].next) {
        cp_slice name = cp_xml_name(&doc, n);
        cp_s3_list_entry e = {0};
        if (cp_slice_eq(name, CP_SLICE("Contents"))) {
            e.key = child_text(&doc, n, "Key");
            cp_slice sz = child_text(&doc, n, "Size");
            char tmp[24];
            copy_value(tmp, sizeof(tmp), sz.p ? sz.p : "", sz.len);
            e.size = strtoull(tmp, NULL, 10);
            e.etag = unquote(child_text(&doc, n, "ETag"));
            e.last_modified = child_text(&doc, n, "LastModified");
        } else if (cp_slice_eq(name, CP_SLICE("CommonPrefixes"))) {
            e.key = child_text(&doc, n, "Prefix");
            e.is_prefix = 1;
        } else {
            continue;
        }
        res->count++;
        int stop = cb ? cb(ctx, &e) : 0;
        if (stop) {
            rc = stop;
            break;
        }
    }
out:
    cp_xml_doc_free(&doc);
    answer_free(&a);
    cp_buf_free(&q);
    return rc;
}
