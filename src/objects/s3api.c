/* SPDX-License-Identifier: MIT */
/*
 * The S3 REST API (path-style) served from the local bucket store. Parsing and replies only:
 * every durable decision is the bucket store's. S3 errors leave through one function,
 * reply_error(), which owns the table of codes, statuses and default messages.
 */
#include "objects/s3api.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/base64.h"
#include "core/hash.h"
#include "core/mem.h"
#include "objects/chunked.h"
#include "objects/keypath.h"
#include "objects/xml.h"

#define S3_NS            "http://s3.amazonaws.com/doc/2006-03-01/"
#define XML_DECL         "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define DEFAULT_OWNER_ID "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
#define MAX_XML_BODY     (4u << 20)
#define MAX_XML_NODES    60000
#define MAX_USER_META    2048 /* S3's limit on x-amz-meta-* names + values */
#define MAX_DELETE_KEYS  1000
#define MAX_LIST         1000
#define SKEW_S           900 /* S3 allows 15 minutes */

struct cp_s3api {
    cp_bucket_store *store;
    const cp_aws_router *auth;
    const char *owner_id, *owner_name; /* the one local account, shown as Owner */
};

/* One request being served. */
typedef struct s3 {
    cp_s3api *api;
    const cp_http_req *req;
    cp_http_resp *resp;
    char rid[17];       /* x-amz-request-id */
    const char *bucket; /* decoded (scratch); NULL at the service level */
    cp_slice key;       /* decoded (scratch); empty at the bucket level */
    int head;           /* HEAD request: status and headers only */
} s3;

/* ------------------------------------------------------------------------------------------ */
/* Errors: the one table and the one reply path                                                */

typedef struct s3_error {
    const char *code;
    int status;
    const char *msg;
} s3_error;

static const s3_error ERRORS[] = {
    {"AccessDenied", 403, "Access Denied"},
    {"AuthorizationHeaderMalformed", 400, "The authorization header is malformed."},
    {"BadDigest", 400, "The Content-MD5 you specified did not match what we received."},
    {"BucketAlreadyOwnedByYou", 409,
     "Your previous request to create the named bucket succeeded and you already own it."},
    {"BucketNotEmpty", 409, "The bucket you tried to delete is not empty"},
    {"EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size"},
    {"EntityTooSmall", 400,
     "Your proposed upload is smaller than the minimum allowed object size."},
    {"IncompleteBody", 400,
     "You did not provide the number of bytes specified by the Content-Length HTTP header"},
    {"InternalError", 500, "We encountered an internal error. Please try again."},
    {"InvalidAccessKeyId", 403,
     "The AWS Access Key Id you provided does not exist in our records."},
    {"InvalidArgument", 400, "Invalid Argument"},
    {"InvalidBucketName", 400, "The specified bucket is not valid."},
    {"InvalidDigest", 400, "The Content-MD5 you specified was invalid."},
    {"InvalidLocationConstraint", 400, "The specified location-constraint is not valid"},
    {"InvalidPart", 400,
     "One or more of the specified parts could not be found.  The part may not have been "
     "uploaded, or the specified entity tag may not match the part's entity tag."},
    {"InvalidPartOrder", 400,
     "The list of parts was not in ascending order. Parts must be ordered by part number."},
    {"InvalidRange", 416, "The requested range is not satisfiable"},
    {"InvalidRequest", 400, "Invalid Request"},
    {"KeyTooLongError", 400, "Your key is too long"},
    {"MalformedXML", 400,
     "The XML you provided was not well-formed or did not validate against our published "
     "schema"},
    {"MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size."},
    {"MethodNotAllowed", 405, "The specified method is not allowed against this resource."},
    {"NoSuchBucket", 404, "The specified bucket does not exist"},
    {"NoSuchKey", 404, "The specified key does not exist."},
    {"NoSuchUpload", 404,
     "The specified upload does not exist. The upload ID may be invalid, or the upload may "
     "have been aborted or completed."},
    {"NotImplemented", 501, "A header you provided implies functionality that is not implemented"},
    {"PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold"},
    {"RequestTimeTooSkewed", 403,
     "The difference between the request time and the current time is too large."},
    {"SignatureDoesNotMatch", 403,
     "The request signature we calculated does not match the signature you provided. Check "
     "your key and signing method."},
    {"XAmzContentSHA256Mismatch", 400,
     "The provided 'x-amz-content-sha256' header does not match what was computed."},
};

/*
 * Replace the response with S3 error `code`: msg NULL uses S3's default text; `extra` is
 * appended raw inside <Error> (e.g. <BucketName>..</BucketName>). Returns CP_OK: the
 * request is answered.
 */
static int reply_error(s3 *r, const char *code, const char *msg, cp_slice extra)
{
    const s3_error *e = NULL;
    for (size_t i = 0; i < sizeof(ERRORS) / sizeof(ERRORS[0]); i++) {
        if (strcmp(ERRORS[i].code, code) == 0) {
            e = &ERRORS[i];
            break;
        }
    }
    if (!e) {
        e = &ERRORS[8]; /* InternalError: an unknown code is our bug */
    }
    cp_http_resp_reset(r->resp);
    r->resp->status = e->status;
    cp_buf *b = &r->resp->body;
    cp_buf_puts(b, XML_DECL "<Error>");
    cp_xml_put_elem(b, "Code", cp_slice_str(e->code));
    cp_xml_put_elem(b, "Message", cp_slice_str(msg ? msg : e->msg));
    if (extra.len) {
        cp_buf_append(b, extra.p, extra.len);
    }
    cp_xml_put_elem(b, "RequestId", cp_slice_str(r->rid));
    cp_buf_puts(b, "</Error>");
    cp_http_resp_add_header(r->resp, "Content-Type", CP_SLICE("application/xml"));
    return CP_OK;
}

static int err_plain(s3 *r, const char *code, const char *msg)
{
    return reply_error(r, code, msg, cp_slice_of("", 0));
}

/* An error that names one element (BucketName, Key, UploadId, ArgumentName, ...). */
static int err_with(s3 *r, const char *code, const char *msg, const char *elem, cp_slice val)
{
    cp_buf x = CP_BUF_INIT;
    cp_xml_put_elem(&x, elem, val);
    reply_error(r, code, msg, cp_buf_slice(&x));
    cp_buf_free(&x);
    return CP_OK;
}

static int err_bucket(s3 *r, const char *code)
{
    return err_with(r, code, NULL, "BucketName", cp_slice_str(r->bucket ? r->bucket : ""));
}

static int err_arg(s3 *r, const char *msg, const char *name, cp_slice value)
{
    cp_buf x = CP_BUF_INIT;
    cp_xml_put_elem(&x, "ArgumentName", cp_slice_str(name));
    cp_xml_put_elem(&x, "ArgumentValue", value);
    reply_error(r, "InvalidArgument", msg, cp_buf_slice(&x));
    cp_buf_free(&x);
    return CP_OK;
}

/* Map a bucket-store result to its S3 error. */
static int store_error(s3 *r, int rc, const cp_err *err)
{
    const char *msg = err && err->msg[0] ? err->msg : NULL;
    switch (rc) {
    case CP_BUCKET_ENOBUCKET:
        return err_bucket(r, "NoSuchBucket");
    case CP_ENOTFOUND:
        return err_with(r, "NoSuchKey", NULL, "Key", r->key);
    case CP_BUCKET_ENOUPLOAD:
        return err_plain(r, "NoSuchUpload", NULL);
    case CP_BUCKET_ENOTEMPTY:
        return err_bucket(r, "BucketNotEmpty");
    case CP_BUCKET_EBADPART:
        return err_plain(r, "InvalidPart", NULL);
    case CP_BUCKET_EPARTORDER:
        return err_plain(r, "InvalidPartOrder", NULL);
    case CP_BUCKET_ETOOSMALL:
        return err_plain(r, "EntityTooSmall", NULL);
    case CP_BUCKET_EBADDIGEST:
        return err_plain(r, "BadDigest", NULL);
    case CP_ETOOBIG:
        return err_plain(r, "EntityTooLarge", NULL);
    case CP_EINVAL:
        return err_plain(r, "InvalidArgument", msg);
    case CP_EEXIST:
        return err_plain(r, "InvalidRequest", msg);
    default:
        return err_plain(r, "InternalError", NULL);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                               */

static void random_bytes(unsigned char *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = getrandom(p + got, n - got, 0);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) {
                continue;
            }
            for (; got < n; got++) {
                p[got] = (unsigned char) rand();
            }
            return;
        }
        got += (size_t) k;
    }
}

static cp_slice header(s3 *r, const char *name)
{
    return cp_http_req_header(r->req, name);
}

static int qparam(s3 *r, const char *name, cp_slice *out)
{
    cp_slice tmp;
    return cp_http_req_query_param(r->req, name, out ? out : &tmp) == CP_OK;
}

static int slice_is(cp_slice s, const char *lit)
{
    return cp_slice_eq(s, cp_slice_str(lit));
}

/* NUL-terminated copy of a slice in the request scratch. */
static char *sdup(s3 *r, cp_slice s)
{
    return cp_http_scratch_strdup(r->req->scratch, s);
}

static int parse_u64(cp_slice s, uint64_t *out)
{
    if (s.len == 0 || s.len > 19) {
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            return 0;
        }
        v = v * 10 + (uint64_t) (s.p[i] - '0');
    }
    *out = v;
    return 1;
}

static void iso_time(int64_t ms, char out[64])
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) ((ms % 1000 + 1000) % 1000));
}

static void put_etag_elem(cp_buf *b, const char *etag)
{
    cp_buf_printf(b, "<ETag>&quot;%s&quot;</ETag>", etag);
}

static void add_etag_header(s3 *r, const char *etag)
{
    cp_http_resp_add_headerf(r->resp, "ETag", "\"%s\"", etag);
}

static void set_xml(s3 *r, int status, cp_buf *xml)
{
    r->resp->status = status;
    cp_buf_reset(&r->resp->body);
    cp_buf_append(&r->resp->body, xml->p, xml->len);
    cp_http_resp_add_header(r->resp, "Content-Type", CP_SLICE("application/xml"));
}

static void put_owner(s3 *r, cp_buf *b, const char *elem)
{
    cp_buf_printf(b, "<%s>", elem);
    cp_xml_put_elem(b, "ID", cp_slice_str(r->api->owner_id));
    cp_xml_put_elem(b, "DisplayName", cp_slice_str(r->api->owner_name));
    cp_buf_printf(b, "</%s>", elem);
}

/* Percent-encoding for encoding-type=url: everything but unreserved characters and '/'. */
static void url_encode(cp_slice s, cp_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char) s.p[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
            cp_buf_putc(out, (char) c);
        } else {
            cp_buf_putc(out, '%');
            cp_buf_putc(out, hex[c >> 4]);
            cp_buf_putc(out, hex[c & 15]);
        }
    }
}

static void put_key_elem(cp_buf *b, const char *elem, cp_slice v, int url)
{
    if (!url) {
        cp_xml_put_elem(b, elem, v);
        return;
    }
    cp_buf tmp = CP_BUF_INIT;
    url_encode(v, &tmp);
    cp_xml_put_elem(b, elem, cp_buf_slice(&tmp));
    cp_buf_free(&tmp);
}

/* Continuation tokens: base64url of the store's resume bytes (opaque to clients, and safe
 * in a query string even when a client forgets to encode it). */
static void token_encode(cp_slice raw, cp_buf *out)
{
    cp_buf b = CP_BUF_INIT;
    cp_base64_encode(raw, &b);
    for (size_t i = 0; i < b.len; i++) {
        char c = b.p[i];
        if (c == '=') {
            break;
        }
        cp_buf_putc(out, c == '+' ? '-' : c == '/' ? '_' : c);
    }
    cp_buf_free(&b);
}

static int token_decode(cp_slice tok, cp_buf *out)
{
    cp_buf b = CP_BUF_INIT;
    for (size_t i = 0; i < tok.len; i++) {
        char c = tok.p[i];
        cp_buf_putc(&b, c == '-' ? '+' : c == '_' ? '/' : c);
    }
    while (b.len % 4) {
        cp_buf_putc(&b, '=');
    }
    int rc = tok.len ? cp_base64_decode(cp_buf_slice(&b), out) : CP_EINVAL;
    cp_buf_free(&b);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Checksums on uploads                                                                        */

static uint32_t crc32c_update(uint32_t crc, const void *p, size_t n)
{
    static uint32_t table[256];
    static int ready; /* benign race: every thread computes the same table */
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) {
                c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            }
            table[i] = c;
        }
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    const unsigned char *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc = table[(crc ^ b[i]) & 0xFF] ^ (crc >> 8);
    }
    return ~crc;
}

enum { ALG_CRC32, ALG_CRC32C, ALG_SHA1, ALG_SHA256, NALG };

static const struct {
    const char *header; /* lower case, as trailers are stored */
    const char *name;   /* as in error messages */
} ALGS[NALG] = {
    {"x-amz-checksum-crc32", "CRC32"},
    {"x-amz-checksum-crc32c", "CRC32C"},
    {"x-amz-checksum-sha1", "SHA1"},
    {"x-amz-checksum-sha256", "SHA256"},
};

typedef struct checks {
    int want[NALG]; /* computed over the payload */
    uint32_t crc32, crc32c;
    EVP_MD_CTX *sha1, *sha256;
} checks;

static void checks_init(s3 *r, checks *c)
{
    memset(c, 0, sizeof(*c));
    cp_slice trailer = header(r, "x-amz-trailer");
    for (int i = 0; i < NALG; i++) {
        c->want[i] = header(r, ALGS[i].header).p != NULL ||
                     (trailer.p && cp_http_slice_ieq(trailer, ALGS[i].header));
    }
    if (c->want[ALG_SHA1]) {
        c->sha1 = EVP_MD_CTX_new();
        EVP_DigestInit_ex(c->sha1, EVP_sha1(), NULL);
    }
    if (c->want[ALG_SHA256]) {
        c->sha256 = EVP_MD_CTX_new();
        EVP_DigestInit_ex(c->sha256, EVP_sha256(), NULL);
    }
}

static void checks_update(checks *c, const char *p, size_t n)
{
    if (c->want[ALG_CRC32]) {
        c->crc32 = cp_crc32(c->crc32, p, n);
    }
    if (c->want[ALG_CRC32C]) {
        c->crc32c = crc32c_update(c->crc32c, p, n);
    }
    if (c->sha1) {
        EVP_DigestUpdate(c->sha1, p, n);
    }
    if (c->sha256) {
        EVP_DigestUpdate(c->sha256, p, n);
    }
}

static void checks_free(checks *c)
{
    EVP_MD_CTX_free(c->sha1);
    EVP_MD_CTX_free(c->sha256);
}

/* Verify each wanted checksum against its header or trailer and echo it in the response
 * (as S3 does). Returns the failing algorithm index, or -1 when all match. */
static int checks_verify(s3 *r, checks *c, cp_slice trailers)
{
    for (int i = 0; i < NALG; i++) {
        if (!c->want[i]) {
            continue;
        }
        unsigned char raw[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (i == ALG_CRC32 || i == ALG_CRC32C) {
            uint32_t v = i == ALG_CRC32 ? c->crc32 : c->crc32c;
            raw[0] = (unsigned char) (v >> 24), raw[1] = (unsigned char) (v >> 16);
            raw[2] = (unsigned char) (v >> 8), raw[3] = (unsigned char) v;
            n = 4;
        } else {
            EVP_DigestFinal_ex(i == ALG_SHA1 ? c->sha1 : c->sha256, raw, &n);
        }
        cp_buf b64 = CP_BUF_INIT;
        cp_base64_encode(cp_slice_of((const char *) raw, n), &b64);
        cp_slice claimed = header(r, ALGS[i].header);
        if (!claimed.p) {
            claimed = cp_chunked_field(trailers, ALGS[i].header);
        }
        int ok = claimed.p && cp_slice_eq(claimed, cp_buf_slice(&b64));
        if (ok) {
            cp_http_resp_add_header(r->resp, ALGS[i].header, cp_buf_slice(&b64));
        }
        cp_buf_free(&b64);
        if (!ok) {
            return i;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Request bodies of uploads                                                                   */

typedef struct sink_ctx {
    cp_bucket_writer *w;
    checks *ck;
    cp_err *err;
} sink_ctx;

static int body_sink(void *ctx, const char *p, size_t len)
{
    sink_ctx *sc = ctx;
    int rc = cp_bucket_writer_write(sc->w, p, len, sc->err);
    if (rc == CP_OK) {
        checks_update(sc->ck, p, len);
    }
    return rc;
}

static int is_hex64(cp_slice s)
{
    if (s.len != 64) {
        return 0;
    }
    for (size_t i = 0; i < 64; i++) {
        if (!((s.p[i] >= '0' && s.p[i] <= '9') || (s.p[i] >= 'a' && s.p[i] <= 'f') ||
              (s.p[i] >= 'A' && s.p[i] <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

/* Does a comma-separated header value hold `token`? */
static int has_token(cp_slice v, const char *token)
{
    size_t tl = strlen(token);
    const char *p = v.p, *end = v.p + v.len;
    while (p && p < end) {
        while (p < end && (*p == ' ' || *p == ',')) {
            p++;
        }
        const char *s = p;
        while (p < end && *p != ',') {
            p++;
        }
        const char *e = p;
        while (e > s && e[-1] == ' ') {
            e--;
        }
        if ((size_t) (e - s) == tl && strncasecmp(s, token, tl) == 0) {
            return 1;
        }
    }
    return 0;
}

static int is_aws_chunked(s3 *r)
{
    cp_slice sha = header(r, "x-amz-content-sha256");
    return (sha.len >= 10 && memcmp(sha.p, "STREAMING-", 10) == 0) ||
           has_token(header(r, "Content-Encoding"), "aws-chunked");
}

/*
 * Stream the request body (decoding aws-chunked) into w and verify the payload hash and
 * checksums. Returns CP_OK, or replies the S3 error itself and returns CP_EFAIL (w is left to
 * the caller to abort).
 */
static int write_body(s3 *r, cp_bucket_writer *w)
{
    checks ck;
    checks_init(r, &ck);
    cp_err err = {0};
    sink_ctx sc = {w, &ck, &err};
    cp_buf trailers = CP_BUF_INIT;
    int rc;
    if (is_aws_chunked(r)) {
        uint64_t n = 0;
        rc = cp_chunked_decode(r->req->body, body_sink, &sc, &trailers, &n, &err);
        if (rc == CP_EINVAL) {
            err_plain(r, "IncompleteBody", err.msg);
            goto fail;
        }
        uint64_t want;
        cp_slice dl = header(r, "x-amz-decoded-content-length");
        if (rc == CP_OK && dl.p && (!parse_u64(dl, &want) || want != n)) {
            err_plain(r, "IncompleteBody", NULL);
            goto fail;
        }
    } else {
        cp_slice sha = header(r, "x-amz-content-sha256");
        if (is_hex64(sha)) {
            unsigned char d[32];
            char hex[65];
            cp_sha256(r->req->body.p ? r->req->body.p : "", r->req->body.len, d);
            cp_hex(d, 32, hex);
            if (strncasecmp(hex, sha.p, 64) != 0) {
                cp_buf x = CP_BUF_INIT;
                cp_xml_put_elem(&x, "ClientComputedContentSHA256", sha);
                cp_xml_put_elem(&x, "S3ComputedContentSHA256", cp_slice_of(hex, 64));
                reply_error(r, "XAmzContentSHA256Mismatch", NULL, cp_buf_slice(&x));
                cp_buf_free(&x);
                goto fail;
            }
        }
        rc = r->req->body.len ? body_sink(&sc, r->req->body.p, r->req->body.len) : CP_OK;
    }
    if (rc < 0) {
        store_error(r, rc, &err);
        goto fail;
    }
    int bad = checks_verify(r, &ck, cp_buf_slice(&trailers));
    if (bad >= 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "The %s you specified did not match the calculated checksum.",
                 ALGS[bad].name);
        err_plain(r, "BadDigest", msg);
        goto fail;
    }
    checks_free(&ck);
    cp_buf_free(&trailers);
    return CP_OK;
fail:
    checks_free(&ck);
    cp_buf_free(&trailers);
    return CP_EFAIL;
}

/* Content-MD5 into md (16 bytes): 0 absent, 1 present, -1 malformed (InvalidDigest sent). */
static int content_md5(s3 *r, unsigned char md[16])
{
    cp_slice v = header(r, "Content-MD5");
    if (!v.p) {
        return 0;
    }
    cp_buf raw = CP_BUF_INIT;
    int ok = cp_base64_decode(v, &raw) == CP_OK && raw.len == 16;
    if (ok) {
        memcpy(md, raw.p, 16);
    }
    cp_buf_free(&raw);
    if (!ok) {
        err_plain(r, "InvalidDigest", NULL);
        return -1;
    }
    return 1;
}

/* The headers S3 stores with an object, as "name\0value\0" with lower-case names. Replies
 * MetadataTooLarge and returns CP_EFAIL when user metadata exceeds 2 KB. */
static int stored_headers(s3 *r, cp_buf *out)
{
    static const char *const keep[] = {"content-type", "content-disposition", "content-language",
                                       "cache-control", "expires"};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        cp_slice v = header(r, keep[i]);
        if (v.p) {
            cp_buf_puts(out, keep[i]);
            cp_buf_putc(out, 0);
            cp_buf_append(out, v.p, v.len);
            cp_buf_putc(out, 0);
        }
    }
    /* Content-Encoding without the aws-chunked transfer coding, which describes the upload
     * rather than the object. */
    cp_slice ce = header(r, "Content-Encoding");
    if (ce.p) {
        cp_buf enc = CP_BUF_INIT;
        const char *p = ce.p, *end = ce.p + ce.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ',')) {
                p++;
            }
            const char *s = p;
            while (p < end && *p != ',') {
                p++;
            }
            const char *e = p;
            while (e > s && e[-1] == ' ') {
                e--;
            }
            if (e > s && !((size_t) (e - s) == 11 && strncasecmp(s, "aws-chunked", 11) == 0)) {
                if (enc.len) {
                    cp_buf_putc(&enc, ',');
                }
                cp_buf_append(&enc, s, (size_t) (e - s));
            }
        }
        if (enc.len) {
            cp_buf_puts(out, "content-encoding");
            cp_buf_putc(out, 0);
            cp_buf_append(out, enc.p, enc.len);
            cp_buf_putc(out, 0);
        }
        cp_buf_free(&enc);
    }
    size_t meta = 0;
    for (size_t i = 0; i < r->req->nheaders; i++) {
        cp_slice n = r->req->headers[i].name, v = r->req->headers[i].value;
        if (n.len > 11 && strncasecmp(n.p, "x-amz-meta-", 11) == 0) {
            for (size_t k = 0; k < n.len; k++) {
                char c = n.p[k];
                cp_buf_putc(out, (char) (c >= 'A' && c <= 'Z' ? c + 32 : c));
            }
            cp_buf_putc(out, 0);
            cp_buf_append(out, v.p, v.len);
            cp_buf_putc(out, 0);
            meta += n.len - 11 + v.len;
        }
    }
    if (meta > MAX_USER_META) {
        err_plain(r, "MetadataTooLarge", NULL);
        return CP_EFAIL;
    }
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Service and bucket operations                                                               */

typedef struct bucket_list_ctx {
    cp_buf *xml;
} bucket_list_ctx;

static int list_bucket_cb(void *ctx, const cp_bucket_info *b)
{
    bucket_list_ctx *c = ctx;
    char t[64];
    iso_time(b->created_ms, t);
    cp_buf_puts(c->xml, "<Bucket>");
    cp_xml_put_elem(c->xml, "Name", cp_slice_str(b->name));
    cp_xml_put_elem(c->xml, "CreationDate", cp_slice_str(t));
    cp_xml_put_elem(c->xml, "BucketRegion", cp_slice_str(b->region));
    cp_buf_puts(c->xml, "</Bucket>");
    return 0;
}

static int list_buckets(s3 *r)
{
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL "<ListAllMyBucketsResult xmlns=\"" S3_NS "\">");
    put_owner(r, &xml, "Owner");
    cp_buf_puts(&xml, "<Buckets>");
    bucket_list_ctx c = {&xml};
    cp_err err = {0};
    int rc = cp_bucket_list_buckets(r->api->store, list_bucket_cb, &c, &err);
    cp_buf_puts(&xml, "</Buckets></ListAllMyBucketsResult>");
    if (rc < 0) {
        store_error(r, rc, &err);
    } else {
        set_xml(r, 200, &xml);
    }
    cp_buf_free(&xml);
    return CP_OK;
}

static int create_bucket(s3 *r)
{
    const char *region = NULL;
    cp_xml_doc doc = CP_XML_DOC_INIT;
    if (r->req->body.len) {
        if (r->req->body.len > MAX_XML_BODY ||
            cp_xml_parse(r->req->body, MAX_XML_NODES, &doc, NULL) < 0 ||
            !slice_is(cp_xml_name(&doc, 0), "CreateBucketConfiguration")) {
            cp_xml_doc_free(&doc);
            return err_plain(r, "MalformedXML", NULL);
        }
        int lc = cp_xml_child(&doc, 0, "LocationConstraint");
        if (lc >= 0) {
            region = sdup(r, cp_xml_text(&doc, lc));
        }
    }
    cp_xml_doc_free(&doc);
    if (region && strcmp(region, "us-east-1") == 0) {
        /* AWS refuses an explicit us-east-1: it is what "no constraint" means. */
        return err_with(r, "InvalidLocationConstraint", NULL, "LocationConstraint",
                        cp_slice_str(region));
    }
    cp_err err = {0};
    int rc = cp_bucket_create(r->api->store, r->bucket, region, &err);
    if (rc == CP_EEXIST) {
        return err_bucket(r, "BucketAlreadyOwnedByYou");
    }
    if (rc == CP_EINVAL) {
        if (region && region[0]) {
            return err_with(r, "InvalidLocationConstraint", NULL, "LocationConstraint",
                            cp_slice_str(region));
        }
        return err_bucket(r, "InvalidBucketName");
    }
    if (rc < 0) {
        return store_error(r, rc, &err);
    }
    cp_http_resp_add_headerf(r->resp, "Location", "/%s", r->bucket);
    return CP_OK;
}

static int head_bucket(s3 *r)
{
    cp_bucket_info info;
    cp_err err = {0};
    int rc = cp_bucket_info_get(r->api->store, r->bucket, &info, &err);
    if (rc < 0) {
        return store_error(r, rc, &err);
    }
    cp_http_resp_add_header(r->resp, "x-amz-bucket-region", cp_slice_str(info.region));
    return CP_OK;
}

static int delete_bucket(s3 *r)
{
    cp_err err = {0};
    int rc = cp_bucket_delete(r->api->store, r->bucket, &err);
    if (rc < 0) {
        return store_error(r, rc, &err);
    }
    r->resp->status = 204;
    return CP_OK;
}

static int get_location(s3 *r)
{
    cp_bucket_info info;
    cp_err err = {0};
    int rc = cp_bucket_info_get(r->api->store, r->bucket, &info, &err);
    if (rc < 0) {
        return store_error(r, rc, &err);
    }
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL);
    /* us-east-1 is reported as an empty constraint, as S3 does. */
    if (strcmp(info.region, "us-east-1") == 0) {
        cp_buf_puts(&xml, "<LocationConstraint xmlns=\"" S3_NS "\"/>");
    } else {
        cp_buf_puts(&xml, "<LocationConstraint xmlns=\"" S3_NS "\">");
        cp_xml_put_escaped(&xml, cp_slice_str(info.region));
        cp_buf_puts(&xml, "</LocationConstraint>");
    }
    set_xml(r, 200, &xml);
    cp_buf_free(&xml);
    return CP_OK;
}

static int get_versioning(s3 *r)
{
    cp_err err = {0};
    int rc = cp_bucket_info_get(r->api->store, r->bucket, NULL, &err);
    if (rc < 0) {
        return store_error(r, rc, &err);
    }
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL "<VersioningConfiguration xmlns=\"" S3_NS "\"/>");
    set_xml(r, 200, &xml);
    cp_buf_free(&xml);
    return CP_OK;
}

static int get_acl(s3 *r)
{
    cp_err err = {0};
    int rc = cp_bucket_info_get(r->api->store, r->bucket, NULL, &err);
    if (rc == CP_OK && r->key.len) {
        rc = cp_bucket_get(r->api->store, r->bucket, r->key, NULL, NULL, &err);
    }
    if (rc < 0) {
        return store_error(r, rc, &err);
    }
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL "<AccessControlPolicy xmlns=\"" S3_NS "\">");
    put_owner(r, &xml, "Owner");
    cp_buf_puts(&xml, "<AccessControlList><Grant><Grantee "
                      "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                      "xsi:type=\"CanonicalUser\">");
    cp_xml_put_elem(&xml, "ID", cp_slice_str(r->api->owner_id));
    cp_xml_put_elem(&xml, "DisplayName", cp_slice_str(r->api->owner_name));
    cp_buf_puts(&xml, "</Grantee><Permission>FULL_CONTROL</Permission></Grant>"
                      "</AccessControlList></AccessControlPolicy>");
    set_xml(r, 200, &xml);
    cp_buf_free(&xml);
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Listing                                                                                     */

typedef struct list_ctx {
    s3 *r;
    cp_buf contents, prefixes;
    int url, owner;
} list_ctx;

static int list_entry_cb(void *ctx, const cp_bucket_entry *e)
{
    list_ctx *c = ctx;
    if (e->is_prefix) {
        cp_buf_puts(&c->prefixes, "<CommonPrefixes>");
        put_key_elem(&c->prefixes, "Prefix", e->key, c->url);
        cp_buf_puts(&c->prefixes, "</CommonPrefixes>");
        return 0;
    }
    char t[64];
    iso_time(e->mtime_ms, t);
    cp_buf *b = &c->contents;
    cp_buf_puts(b, "<Contents>");
    put_key_elem(b, "Key", e->key, c->url);
    cp_xml_put_elem(b, "LastModified", cp_slice_str(t));
    put_etag_elem(b, e->etag);
    cp_buf_printf(b, "<Size>%llu</Size>", (unsigned long long) e->size);
    if (c->owner) {
        put_owner(c->r, b, "Owner");
    }
    cp_buf_puts(b, "<StorageClass>STANDARD</StorageClass></Contents>");
    return 0;
}

/* The smallest string above every string that starts with p (empty when none). */
static void successor(cp_slice p, cp_buf *out)
{
    size_t n = p.len;
    while (n > 0 && (unsigned char) p.p[n - 1] == 0xFF) {
        n--;
    }
    cp_buf_reset(out);
    if (n > 0) {
        cp_buf_append(out, p.p, n);
        out->p[n - 1] = (char) ((unsigned char) out->p[n - 1] + 1);
    }
}

static int list_objects(s3 *r, int v2)
{
    cp_slice prefix = {NULL, 0}, delim = {NULL, 0}, mk, enc, tok = {NULL, 0}, sa = {NULL, 0};
    qparam(r, "prefix", &prefix);
    qparam(r, "delimiter", &delim);
    size_t max = MAX_LIST;
    if (qparam(r, "max-keys", &mk)) {
        uint64_t v;
        if (!parse_u64(mk, &v)) {
            return err_arg(r, "Provided max-keys not an integer or within integer range",
                           "max-keys", mk);
        }
        max = v > MAX_LIST ? MAX_LIST : (size_t) v;
    }
    int url = 0;
    if (qparam(r, "encoding-type", &enc)) {
        if (!slice_is(enc, "url")) {
            return err_arg(r, "Invalid Encoding Method specified in Request", "encoding-type", enc);
        }
        url = 1;
    }
    list_ctx lc = {r, CP_BUF_INIT, CP_BUF_INIT, url, 0};
    cp_buf resume = CP_BUF_INIT;
    int has_tok = 0;
    if (v2) {
        has_tok = qparam(r, "continuation-token", &tok);
        if (has_tok && token_decode(tok, &resume) < 0) {
            cp_buf_free(&resume);
            return err_arg(r, "The continuation token provided is incorrect", "continuation-token",
                           tok);
        }
        qparam(r, "start-after", &sa);
        cp_slice fo;
        lc.owner = qparam(r, "fetch-owner", &fo) && slice_is(fo, "true");
    } else {
        qparam(r, "marker", &sa);
        lc.owner = 1;
        /* A marker that is a CommonPrefix (our NextMarker) skips that whole roll-up. */
        if (delim.len && sa.len > prefix.len && memcmp(sa.p, prefix.p, prefix.len) == 0) {
            const char *d = memmem(sa.p + prefix.len, sa.len - prefix.len, delim.p, delim.len);
            if (d && (size_t) (d - sa.p) + delim.len == sa.len) {
                successor(sa, &resume);
            }
        }
    }
    cp_bucket_list_req rq = {prefix, delim, sa, cp_buf_slice(&resume), max};
    cp_bucket_list_res res = CP_BUCKET_LIST_RES_INIT;
    cp_err err = {0};
    int rc = cp_bucket_list(r->api->store, r->bucket, &rq, list_entry_cb, &lc, &res, &err);
    if (rc < 0) {
        store_error(r, rc, &err);
        goto out;
    }
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL "<ListBucketResult xmlns=\"" S3_NS "\">");
    cp_xml_put_elem(&xml, "Name", cp_slice_str(r->bucket));
    put_key_elem(&xml, "Prefix", prefix, url);
    if (!v2) {
        put_key_elem(&xml, "Marker", sa, url);
        if (delim.len && res.truncated) {
            put_key_elem(&xml, "NextMarker", cp_buf_slice(&res.last), url);
        }
    }
    cp_buf_printf(&xml, "<MaxKeys>%zu</MaxKeys>", max);
    if (delim.len) {
        put_key_elem(&xml, "Delimiter", delim, url);
    }
    if (url) {
        cp_buf_puts(&xml, "<EncodingType>url</EncodingType>");
    }
    if (v2) {
        cp_buf_printf(&xml, "<KeyCount>%zu</KeyCount>", res.count);
        if (has_tok) {
            cp_xml_put_elem(&xml, "ContinuationToken", tok);
        }
        if (res.truncated) {
            cp_buf t = CP_BUF_INIT;
            token_encode(cp_buf_slice(&res.next), &t);
            cp_xml_put_elem(&xml, "NextContinuationToken", cp_buf_slice(&t));
            cp_buf_free(&t);
        }
        if (sa.len) {
            put_key_elem(&xml, "StartAfter", sa, url);
        }
    }
    cp_buf_printf(&xml, "<IsTruncated>%s</IsTruncated>", res.truncated ? "true" : "false");
    if (lc.contents.len) {
        cp_buf_append(&xml, lc.contents.p, lc.contents.len);
    }
    if (lc.prefixes.len) {
        cp_buf_append(&xml, lc.prefixes.p, lc.prefixes.len);
    }
    cp_buf_puts(&xml, "</ListBucketResult>");
    set_xml(r, 200, &xml);
    cp_buf_free(&xml);
out:
    cp_buf_free(&lc.contents);
    cp_buf_free(&lc.prefixes);
    cp_buf_free(&resume);
    cp_bucket_list_res_free(&res);
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Objects                                                                                     */

static int put_object(s3 *r)
{
    unsigned char md[16];
    int has_md5 = content_md5(r, md);
    if (has_md5 < 0) {
        return CP_OK;
    }
    cp_buf hdrs = CP_BUF_INIT;
    if (stored_headers(r, &hdrs) < 0) {
        cp_buf_free(&hdrs);
        return CP_OK;
    }
    cp_bucket_writer *w;
    cp_err err = {0};
    int rc = cp_bucket_writer_open(r->api->store, r->bucket, r->key, &w, &err);
    if (rc < 0) {
        cp_buf_free(&hdrs);
        return store_error(r, rc, &err);
    }
    if (write_body(r, w) < 0) {
        cp_bucket_writer_abort(w);
        cp_buf_free(&hdrs);
        return CP_OK;
    }
    cp_bucket_put_opts opts = {cp_buf_slice(&hdrs), has_md5 ? md : NULL};
    cp_bucket_obj o = CP_BUCKET_OBJ_INIT;
    rc = cp_bucket_writer_commit(w, &opts, &o, &err);
    if (rc < 0) {
        store_error(r, rc, &err);
    } else {
        add_etag_header(r, o.etag);
    }
    cp_bucket_obj_free(&o);
    cp_buf_free(&hdrs);
    return CP_OK;
}

/* Parse x-amz-copy-source ("[/]bucket/key[?versionId=...]", percent-encoded). */
static int copy_source(s3 *r, cp_slice v, char **bucket, cp_slice *key)
{
    const char *q = memchr(v.p, '?', v.len);
    cp_slice raw = cp_slice_of(v.p, q ? (size_t) (q - v.p) : v.len);
    cp_buf dec = CP_BUF_INIT;
    cp_http_pct_decode(raw, 0, &dec);
    const char *p = dec.p ? dec.p : "", *end = p + dec.len;
    if (p < end && *p == '/') {
        p++;
    }
    const char *slash = memchr(p, '/', (size_t) (end - p));
    int ok = slash && slash > p && slash + 1 < end;
    if (ok) {
        *bucket = sdup(r, cp_slice_of(p, (size_t) (slash - p)));
        *key = cp_slice_of(sdup(r, cp_slice_of(slash + 1, (size_t) (end - slash - 1))),
                           (size_t) (end - slash - 1));
    }
    cp_buf_free(&dec);
    return ok;
}

static int copy_object(s3 *r, cp_slice src)
{
    char *sb;
    cp_slice sk;
    if (!copy_source(r, src, &sb, &sk)) {
        return err_arg(r,
                       "Copy Source must mention the source bucket and key: "
                       "sourcebucket/sourcekey",
                       "x-amz-copy-source", src);
    }
    cp_slice dir = header(r, "x-amz-metadata-directive");
    int replace = dir.p && slice_is(dir, "REPLACE");
    if (dir.p && !replace && !slice_is(dir, "COPY")) {
        return err_arg(r, "Unknown metadata directive.", "x-amz-metadata-directive", dir);
    }
    if (!replace && strcmp(sb, r->bucket) == 0 && cp_slice_eq(sk, r->key)) {
        return err_plain(r, "InvalidRequest",
                         "This copy request is illegal because it is trying to copy an object to "
                         "itself without changing the object's metadata, storage class, website "
                         "redirect location or encryption attributes.");
    }
    cp_buf hdrs = CP_BUF_INIT;
    if (replace && stored_headers(r, &hdrs) < 0) {
        cp_buf_free(&hdrs);
        return CP_OK;
    }
    cp_bucket_put_opts opts = {cp_buf_slice(&hdrs), NULL};
    cp_bucket_obj o = CP_BUCKET_OBJ_INIT;
    cp_err err = {0};
    int rc =
        cp_bucket_copy(r->api->store, sb, sk, r->bucket, r->key, replace ? &opts : NULL, &o, &err);
    if (rc < 0) {
        /* Name what is missing: the source bucket or key, or the destination bucket. */
        if (rc == CP_ENOTFOUND) {
            r->key = sk;
        } else if (rc == CP_BUCKET_ENOBUCKET &&
                   cp_bucket_info_get(r->api->store, sb, NULL, NULL) < 0) {
            r->bucket = sb;
        }
        store_error(r, rc, &err);
    } else {
        char t[64];
        iso_time(o.mtime_ms, t);
        cp_buf xml = CP_BUF_INIT;
        cp_buf_puts(&xml, XML_DECL "<CopyObjectResult xmlns=\"" S3_NS "\">");
        cp_xml_put_elem(&xml, "LastModified", cp_slice_str(t));
        put_etag_elem(&xml, o.etag);
        cp_buf_puts(&xml, "</CopyObjectResult>");
        set_xml(r, 200, &xml);
        cp_buf_free(&xml);
    }
    cp_bucket_obj_free(&o);
    cp_buf_free(&hdrs);
    return CP_OK;
}

/* ETag list match for If-Match / If-None-Match ("*", quoted or bare, W/ ignored). */
static int etag_in_list(cp_slice list, const char *etag)
{
    const char *p = list.p, *end = list.p + list.len;
    size_t el = strlen(etag);
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ',')) {
            p++;
        }
        const char *s = p;
        while (p < end && *p != ',') {
            p++;
        }
        const char *e = p;
        while (e > s && e[-1] == ' ') {
            e--;
        }
        if (e - s >= 2 && s[0] == 'W' && s[1] == '/') {
            s += 2;
        }
        if (e - s == 1 && *s == '*') {
            return 1;
        }
        if (e - s >= 2 && *s == '"' && e[-1] == '"') {
            s++, e--;
        }
        if ((size_t) (e - s) == el && memcmp(s, etag, el) == 0) {
            return 1;
        }
    }
    return 0;
}

/* An HTTP date (IMF-fixdate) as epoch seconds; -1 when unparseable. */
static int64_t http_date(cp_slice v)
{
    char tmp[64];
    if (v.len == 0 || v.len >= sizeof(tmp)) {
        return -1;
    }
    memcpy(tmp, v.p, v.len);
    tmp[v.len] = 0;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(tmp, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) {
        return -1;
    }
    return (int64_t) timegm(&tm);
}

/* Conditional GET/HEAD (RFC 7232 as S3 applies it). Returns 0 to serve, or the status (304
 * or 412) already prepared. */
static int conditions(s3 *r, const cp_bucket_obj *o)
{
    int64_t mtime_s = o->mtime_ms / 1000;
    cp_slice im = header(r, "If-Match"), inm = header(r, "If-None-Match");
    cp_slice ius = header(r, "If-Unmodified-Since"), ims = header(r, "If-Modified-Since");
    const char *failed = NULL;
    if (im.p) {
        if (!etag_in_list(im, o->etag)) {
            failed = "If-Match";
        }
    } else if (ius.p) {
        int64_t t = http_date(ius);
        if (t >= 0 && mtime_s > t) {
            failed = "If-Unmodified-Since";
        }
    }
    if (failed) {
        err_with(r, "PreconditionFailed", NULL, "Condition", cp_slice_str(failed));
        return 412;
    }
    int not_modified = 0;
    if (inm.p) {
        not_modified = etag_in_list(inm, o->etag);
    } else if (ims.p) {
        int64_t t = http_date(ims);
        not_modified = t >= 0 && mtime_s <= t;
    }
    if (not_modified) {
        char d[30];
        cp_http_date(mtime_s, d);
        r->resp->status = 304;
        add_etag_header(r, o->etag);
        cp_http_resp_add_header(r->resp, "Last-Modified", cp_slice_str(d));
        return 304;
    }
    return 0;
}

/* Range: bytes=a-b | a- | -n. Returns 1 with [*off, *len) for a satisfiable single range,
 * 0 to serve the whole object (no header, a multi-range or a syntactically invalid one, which
 * RFC 7233 says to ignore), -1 when unsatisfiable. */
static int parse_range(cp_slice v, uint64_t size, uint64_t *off, uint64_t *len)
{
    if (v.len < 7 || strncasecmp(v.p, "bytes=", 6) != 0 || memchr(v.p, ',', v.len)) {
        return 0;
    }
    cp_slice spec = cp_slice_of(v.p + 6, v.len - 6);
    const char *dash = memchr(spec.p, '-', spec.len);
    if (!dash) {
        return 0;
    }
    cp_slice a = cp_slice_of(spec.p, (size_t) (dash - spec.p));
    cp_slice b = cp_slice_of(dash + 1, spec.len - a.len - 1);
    uint64_t first, last;
    if (a.len == 0) {
        if (!parse_u64(b, &last)) {
            return 0;
        }
        if (last == 0 || size == 0) {
            return -1;
        }
        *len = last > size ? size : last;
        *off = size - *len;
        return 1;
    }
    if (!parse_u64(a, &first)) {
        return 0;
    }
    if (b.len == 0) {
        last = UINT64_MAX;
    } else if (!parse_u64(b, &last) || last < first) {
        return 0;
    }
    if (first >= size) {
        return -1;
    }
    if (last >= size) {
        last = size - 1;
    }
    *off = first;
    *len = last - first + 1;
    return 1;
}

static const char *canonical_header(const char *lower)
{
    static const char *const names[][2] = {
        {"content-type", "Content-Type"},
        {"content-encoding", "Content-Encoding"},
        {"content-disposition", "Content-Disposition"},
        {"content-language", "Content-Language"},
        {"cache-control", "Cache-Control"},
        {"expires", "Expires"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(lower, names[i][0]) == 0) {
            return names[i][1];
        }
    }
    return lower;
}

static int get_object(s3 *r)
{
    cp_bucket_obj o = CP_BUCKET_OBJ_INIT;
    cp_err err = {0};
    int fd = -1;
    int rc = cp_bucket_get(r->api->store, r->bucket, r->key, &o, &fd, &err);
    if (rc < 0) {
        cp_bucket_obj_free(&o);
        return store_error(r, rc, &err);
    }
    if (conditions(r, &o)) {
        close(fd);
        cp_bucket_obj_free(&o);
        return CP_OK;
    }
    uint64_t off = 0, len = o.size;
    cp_slice range = header(r, "Range");
    int ranged = range.p ? parse_range(range, o.size, &off, &len) : 0;
    if (ranged < 0) {
        close(fd);
        cp_buf x = CP_BUF_INIT;
        cp_xml_put_elem(&x, "RangeRequested", range);
        cp_buf_printf(&x, "<ActualObjectSize>%llu</ActualObjectSize>", (unsigned long long) o.size);
        reply_error(r, "InvalidRange", NULL, cp_buf_slice(&x));
        cp_http_resp_add_headerf(r->resp, "Content-Range", "bytes */%llu",
                                 (unsigned long long) o.size);
        cp_buf_free(&x);
        cp_bucket_obj_free(&o);
        return CP_OK;
    }
    char d[30];
    cp_http_date(o.mtime_ms / 1000, d);
    /* Stored headers, with response-* query overrides (GET only, as in S3). */
    static const char *const overrides[][2] = {
        {"response-content-type", "content-type"},
        {"response-content-language", "content-language"},
        {"response-expires", "expires"},
        {"response-cache-control", "cache-control"},
        {"response-content-disposition", "content-disposition"},
        {"response-content-encoding", "content-encoding"},
    };
    int have_ct = 0;
    const char *p = o.headers.p, *end = o.headers.p + o.headers.len;
    while (p && p < end) {
        const char *v = p + strlen(p) + 1;
        int overridden = 0;
        for (size_t i = 0; !r->head && i < sizeof(overrides) / sizeof(overrides[0]); i++) {
            overridden |= strcmp(p, overrides[i][1]) == 0 && qparam(r, overrides[i][0], NULL);
        }
        if (!overridden) {
            cp_http_resp_add_header(r->resp, canonical_header(p), cp_slice_str(v));
            have_ct |= strcmp(p, "content-type") == 0;
        }
        p = v + strlen(v) + 1;
    }
    for (size_t i = 0; !r->head && i < sizeof(overrides) / sizeof(overrides[0]); i++) {
        cp_slice ov;
        if (qparam(r, overrides[i][0], &ov)) {
            cp_http_resp_add_header(r->resp, canonical_header(overrides[i][1]), ov);
            have_ct |= strcmp(overrides[i][1], "content-type") == 0;
        }
    }
    if (!have_ct) {
        cp_http_resp_add_header(r->resp, "Content-Type", CP_SLICE("binary/octet-stream"));
    }
    add_etag_header(r, o.etag);
    cp_http_resp_add_header(r->resp, "Last-Modified", cp_slice_str(d));
    cp_http_resp_add_header(r->resp, "Accept-Ranges", CP_SLICE("bytes"));
    if (ranged > 0) {
        r->resp->status = 206;
        cp_http_resp_add_headerf(r->resp, "Content-Range", "bytes %llu-%llu/%llu",
                                 (unsigned long long) off, (unsigned long long) (off + len - 1),
                                 (unsigned long long) o.size);
    }
    /* The file itself is the body (HEAD too: the transport then sends only Content-Length). */
    cp_http_resp_set_file(r->resp, fd, off, len);
    cp_bucket_obj_free(&o);
    return CP_OK;
}

static int delete_object(s3 *r)
{
    cp_err err = {0};
    int rc = cp_bucket_delete_object(r->api->store, r->bucket, r->key, &err);
    if (rc < 0 && rc != CP_ENOTFOUND) {
        return store_error(r, rc, &err);
    }
    r->resp->status = 204; /* S3 answers 204 whether or not the key existed */
    return CP_OK;
}

static int delete_objects(s3 *r)
{
    unsigned char md[16];
    int has_md5 = content_md5(r, md);
    if (has_md5 < 0) {
        return CP_OK;
    }
    if (has_md5) {
        unsigned char got[16];
        cp_md5(r->req->body.p ? r->req->body.p : "", r->req->body.len, got);
        if (memcmp(got, md, 16) != 0) {
            return err_plain(r, "BadDigest", NULL);
        }
    }
    cp_xml_doc doc = CP_XML_DOC_INIT;
    if (r->req->body.len > MAX_XML_BODY ||
        cp_xml_parse(r->req->body, MAX_XML_NODES, &doc, NULL) < 0 ||
        !slice_is(cp_xml_name(&doc, 0), "Delete")) {
        cp_xml_doc_free(&doc);
        return err_plain(r, "MalformedXML", NULL);
    }
    int quiet = slice_is(cp_xml_text(&doc, cp_xml_child(&doc, 0, "Quiet")), "true");
    size_t n = 0;
    for (int o = cp_xml_child(&doc, 0, "Object"); o >= 0; o = cp_xml_next_same(&doc, o)) {
        if (cp_xml_child(&doc, o, "Key") < 0) {
            cp_xml_doc_free(&doc);
            return err_plain(r, "MalformedXML", NULL);
        }
        n++;
    }
    if (n == 0 || n > MAX_DELETE_KEYS) {
        cp_xml_doc_free(&doc);
        return err_plain(r, "MalformedXML", NULL);
    }
    cp_err err = {0};
    int rc = cp_bucket_info_get(r->api->store, r->bucket, NULL, &err);
    if (rc < 0) {
        cp_xml_doc_free(&doc);
        return store_error(r, rc, &err);
    }
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL "<DeleteResult xmlns=\"" S3_NS "\">");
    for (int o = cp_xml_child(&doc, 0, "Object"); o >= 0; o = cp_xml_next_same(&doc, o)) {
        cp_slice key = cp_xml_text(&doc, cp_xml_child(&doc, o, "Key"));
        rc = cp_bucket_delete_object(r->api->store, r->bucket, key, &err);
        if (rc == CP_OK || rc == CP_ENOTFOUND) {
            if (!quiet) {
                cp_buf_puts(&xml, "<Deleted>");
                cp_xml_put_elem(&xml, "Key", key);
                cp_buf_puts(&xml, "</Deleted>");
            }
        } else {
            const char *code = rc == CP_ETOOBIG  ? "KeyTooLongError"
                               : rc == CP_EINVAL ? "InvalidArgument"
                                                 : "InternalError";
            cp_buf_puts(&xml, "<Error>");
            cp_xml_put_elem(&xml, "Key", key);
            cp_xml_put_elem(&xml, "Code", cp_slice_str(code));
            cp_xml_put_elem(&xml, "Message", cp_slice_str(err.msg));
            cp_buf_puts(&xml, "</Error>");
        }
    }
    cp_buf_puts(&xml, "</DeleteResult>");
    set_xml(r, 200, &xml);
    cp_buf_free(&xml);
    cp_xml_doc_free(&doc);
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Multipart uploads                                                                           */

static int create_mpu(s3 *r)
{
    cp_buf hdrs = CP_BUF_INIT;
    if (stored_headers(r, &hdrs) < 0) {
        cp_buf_free(&hdrs);
        return CP_OK;
    }
    char id[CP_BUCKET_UPLOAD_ID_LEN + 1];
    cp_err err = {0};
    int rc = cp_bucket_mpu_create(r->api->store, r->bucket, r->key, cp_buf_slice(&hdrs), id, &err);
    cp_buf_free(&hdrs);
    if (rc < 0) {
        return store_error(r, rc, &err);
    }
    cp_slice alg = header(r, "x-amz-checksum-algorithm");
    if (alg.p) {
        cp_http_resp_add_header(r->resp, "x-amz-checksum-algorithm", alg);
    }
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL "<InitiateMultipartUploadResult xmlns=\"" S3_NS "\">");
    cp_xml_put_elem(&xml, "Bucket", cp_slice_str(r->bucket));
    cp_xml_put_elem(&xml, "Key", r->key);
    cp_xml_put_elem(&xml, "UploadId", cp_slice_str(id));
    cp_buf_puts(&xml, "</InitiateMultipartUploadResult>");
    set_xml(r, 200, &xml);
    cp_buf_free(&xml);
    return CP_OK;
}

static int upload_part(s3 *r, cp_slice upload_id, cp_slice pn)
{
    uint64_t part;
    if (!parse_u64(pn, &part) || part < 1 || part > CP_BUCKET_MAX_PARTS) {
        return err_arg(r, "Part number must be an integer between 1 and 10000, inclusive",
                       "partNumber", pn);
    }
    if (header(r, "x-amz-copy-source").p) {
        return err_plain(r, "NotImplemented", "UploadPartCopy is not supported");
    }
    unsigned char md[16];
    int has_md5 = content_md5(r, md);
    if (has_md5 < 0) {
        return CP_OK;
    }
    cp_bucket_writer *w;
    cp_err err = {0};
    int rc = cp_bucket_writer_open_part(r->api->store, r->bucket, r->key, sdup(r, upload_id),
                                        (int) part, &w, &err);
    if (rc < 0) {
        if (rc == CP_BUCKET_ENOUPLOAD) {
            return err_with(r, "NoSuchUpload", NULL, "UploadId", upload_id);
        }
        return store_error(r, rc, &err);
    }
    if (write_body(r, w) < 0) {
        cp_bucket_writer_abort(w);
        return CP_OK;
    }
    cp_bucket_put_opts opts = {{NULL, 0}, has_md5 ? md : NULL};
    cp_bucket_obj o = CP_BUCKET_OBJ_INIT;
    rc = cp_bucket_writer_commit(w, &opts, &o, &err);
    if (rc < 0) {
        store_error(r, rc, &err);
    } else {
        add_etag_header(r, o.etag);
    }
    cp_bucket_obj_free(&o);
    return CP_OK;
}

static int complete_mpu(s3 *r, cp_slice upload_id)
{
    cp_xml_doc doc = CP_XML_DOC_INIT;
    if (r->req->body.len > MAX_XML_BODY ||
        cp_xml_parse(r->req->body, MAX_XML_NODES, &doc, NULL) < 0 ||
        !slice_is(cp_xml_name(&doc, 0), "CompleteMultipartUpload")) {
        cp_xml_doc_free(&doc);
        return err_plain(r, "MalformedXML", NULL);
    }
    size_t n = 0, cap = 0;
    cp_bucket_part *parts = NULL;
    int bad = 0;
    for (int p = cp_xml_child(&doc, 0, "Part"); p >= 0 && !bad; p = cp_xml_next_same(&doc, p)) {
        cp_slice num = cp_xml_text(&doc, cp_xml_child(&doc, p, "PartNumber"));
        cp_slice etag = cp_xml_text(&doc, cp_xml_child(&doc, p, "ETag"));
        while (etag.len && (etag.p[0] == '"' || etag.p[0] == ' ')) {
            etag.p++, etag.len--;
        }
        while (etag.len && (etag.p[etag.len - 1] == '"' || etag.p[etag.len - 1] == ' ')) {
            etag.len--;
        }
        uint64_t v;
        if (!parse_u64(num, &v) || v < 1 || v > CP_BUCKET_MAX_PARTS || etag.len == 0 ||
            etag.len >= sizeof(parts[0].etag) || n >= CP_BUCKET_MAX_PARTS) {
            bad = 1;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            parts = cp_realloc(parts, cap * sizeof(*parts));
        }
        memset(&parts[n], 0, sizeof(parts[n]));
        parts[n].number = (int) v;
        memcpy(parts[n].etag, etag.p, etag.len);
        n++;
    }
    cp_xml_doc_free(&doc);
    if (bad || n == 0) {
        cp_free(parts);
        return bad ? err_plain(r, "InvalidPart", NULL) : err_plain(r, "MalformedXML", NULL);
    }
    cp_bucket_obj o = CP_BUCKET_OBJ_INIT;
    cp_err err = {0};
    int rc = cp_bucket_mpu_complete(r->api->store, r->bucket, r->key, sdup(r, upload_id), parts, n,
                                    &o, &err);
    cp_free(parts);
    if (rc < 0) {
        if (rc == CP_BUCKET_ENOUPLOAD) {
            err_with(r, "NoSuchUpload", NULL, "UploadId", upload_id);
        } else {
            store_error(r, rc, &err);
        }
        cp_bucket_obj_free(&o);
        return CP_OK;
    }
    cp_slice host = header(r, "Host");
    cp_buf loc = CP_BUF_INIT;
    cp_buf_puts(&loc, "http://");
    cp_buf_append(&loc, host.p ? host.p : "localhost", host.p ? host.len : 9);
    cp_buf_putc(&loc, '/');
    cp_buf_puts(&loc, r->bucket);
    cp_buf_putc(&loc, '/');
    url_encode(r->key, &loc);
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL "<CompleteMultipartUploadResult xmlns=\"" S3_NS "\">");
    cp_xml_put_elem(&xml, "Location", cp_buf_slice(&loc));
    cp_xml_put_elem(&xml, "Bucket", cp_slice_str(r->bucket));
    cp_xml_put_elem(&xml, "Key", r->key);
    put_etag_elem(&xml, o.etag);
    cp_buf_puts(&xml, "</CompleteMultipartUploadResult>");
    set_xml(r, 200, &xml);
    cp_buf_free(&xml);
    cp_buf_free(&loc);
    cp_bucket_obj_free(&o);
    return CP_OK;
}

static int abort_mpu(s3 *r, cp_slice upload_id)
{
    cp_err err = {0};
    int rc = cp_bucket_mpu_abort(r->api->store, r->bucket, r->key, sdup(r, upload_id), &err);
    if (rc == CP_BUCKET_ENOUPLOAD) {
        return err_with(r, "NoSuchUpload", NULL, "UploadId", upload_id);
    }
    if (rc < 0) {
        return store_error(r, rc, &err);
    }
    r->resp->status = 204;
    return CP_OK;
}

typedef struct parts_ctx {
    cp_buf *xml;
    int last;
} parts_ctx;

static int list_part_cb(void *ctx, const cp_bucket_part *p)
{
    parts_ctx *c = ctx;
    char t[64];
    iso_time(p->mtime_ms, t);
    cp_buf_printf(c->xml, "<Part><PartNumber>%d</PartNumber>", p->number);
    cp_xml_put_elem(c->xml, "LastModified", cp_slice_str(t));
    put_etag_elem(c->xml, p->etag);
    cp_buf_printf(c->xml, "<Size>%llu</Size></Part>", (unsigned long long) p->size);
    c->last = p->number;
    return 0;
}

static int list_parts(s3 *r, cp_slice upload_id)
{
    uint64_t max = 1000, marker = 0;
    cp_slice v;
    if (qparam(r, "max-parts", &v) && (!parse_u64(v, &max) || max > 1000)) {
        if (!parse_u64(v, &max)) {
            return err_arg(r, "Provided max-parts not an integer or within integer range",
                           "max-parts", v);
        }
        max = 1000;
    }
    if (qparam(r, "part-number-marker", &v) && (!parse_u64(v, &marker) || marker > 10000)) {
        return err_arg(r, "Provided part-number-marker not an integer or within integer range",
                       "part-number-marker", v);
    }
    cp_buf parts = CP_BUF_INIT;
    parts_ctx pc = {&parts, (int) marker};
    int truncated = 0;
    cp_err err = {0};
    int rc;
    if (max) {
        rc = cp_bucket_mpu_list_parts(r->api->store, r->bucket, r->key, sdup(r, upload_id),
                                      (int) marker, (size_t) max, list_part_cb, &pc, &truncated,
                                      &err);
    } else {
        /* max-parts=0 lists nothing; fetch one part only to tell whether any follow. */
        cp_buf ignored = CP_BUF_INIT;
        parts_ctx probe = {&ignored, (int) marker};
        rc = cp_bucket_mpu_list_parts(r->api->store, r->bucket, r->key, sdup(r, upload_id),
                                      (int) marker, 1, list_part_cb, &probe, NULL, &err);
        truncated = probe.last != (int) marker;
        cp_buf_free(&ignored);
    }
    if (rc < 0) {
        cp_buf_free(&parts);
        if (rc == CP_BUCKET_ENOUPLOAD) {
            return err_with(r, "NoSuchUpload", NULL, "UploadId", upload_id);
        }
        return store_error(r, rc, &err);
    }
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL "<ListPartsResult xmlns=\"" S3_NS "\">");
    cp_xml_put_elem(&xml, "Bucket", cp_slice_str(r->bucket));
    cp_xml_put_elem(&xml, "Key", r->key);
    cp_xml_put_elem(&xml, "UploadId", upload_id);
    put_owner(r, &xml, "Initiator");
    put_owner(r, &xml, "Owner");
    cp_buf_puts(&xml, "<StorageClass>STANDARD</StorageClass>");
    cp_buf_printf(&xml, "<PartNumberMarker>%llu</PartNumberMarker>", (unsigned long long) marker);
    cp_buf_printf(&xml, "<NextPartNumberMarker>%d</NextPartNumberMarker>", pc.last);
    cp_buf_printf(&xml, "<MaxParts>%llu</MaxParts>", (unsigned long long) max);
    cp_buf_printf(&xml, "<IsTruncated>%s</IsTruncated>", truncated ? "true" : "false");
    if (parts.len) {
        cp_buf_append(&xml, parts.p, parts.len);
    }
    cp_buf_puts(&xml, "</ListPartsResult>");
    set_xml(r, 200, &xml);
    cp_buf_free(&xml);
    cp_buf_free(&parts);
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Routing                                                                                     */

/* Sub-resources we recognise but do not implement: answered 501 rather than being mistaken
 * for a plain object or bucket request. */
static const char *const UNSUPPORTED[] = {
    "policy",
    "cors",
    "lifecycle",
    "tagging",
    "website",
    "notification",
    "encryption",
    "replication",
    "logging",
    "accelerate",
    "requestPayment",
    "ownershipControls",
    "publicAccessBlock",
    "object-lock",
    "retention",
    "legal-hold",
    "torrent",
    "restore",
    "select",
    "attributes",
    "versions",
    "analytics",
    "metrics",
    "inventory",
    "intelligent-tiering",
    "policyStatus",
    "uploads-list",
    "session",
};

static const char *unsupported_subresource(s3 *r)
{
    for (size_t i = 0; i < sizeof(UNSUPPORTED) / sizeof(UNSUPPORTED[0]); i++) {
        if (qparam(r, UNSUPPORTED[i], NULL)) {
            return UNSUPPORTED[i];
        }
    }
    return NULL;
}

static int method_not_allowed(s3 *r, const char *resource)
{
    cp_buf x = CP_BUF_INIT;
    cp_xml_put_elem(&x, "Method", r->req->method);
    cp_xml_put_elem(&x, "ResourceType", cp_slice_str(resource));
    reply_error(r, "MethodNotAllowed", NULL, cp_buf_slice(&x));
    cp_buf_free(&x);
    return CP_OK;
}

static int route_bucket(s3 *r, cp_slice m)
{
    if (slice_is(m, "GET") || slice_is(m, "HEAD")) {
        if (slice_is(m, "HEAD")) {
            return head_bucket(r);
        }
        if (qparam(r, "location", NULL)) {
            return get_location(r);
        }
        if (qparam(r, "versioning", NULL)) {
            return get_versioning(r);
        }
        if (qparam(r, "acl", NULL)) {
            return get_acl(r);
        }
        if (qparam(r, "uploads", NULL)) {
            return err_plain(r, "NotImplemented", "ListMultipartUploads is not supported");
        }
        cp_slice lt;
        if (qparam(r, "list-type", &lt)) {
            if (!slice_is(lt, "2")) {
                return err_arg(r, "Invalid List Type specified in Request", "list-type", lt);
            }
            return list_objects(r, 1);
        }
        return list_objects(r, 0);
    }
    if (slice_is(m, "PUT")) {
        if (qparam(r, "acl", NULL) || qparam(r, "versioning", NULL)) {
            return err_plain(r, "NotImplemented", NULL);
        }
        return create_bucket(r);
    }
    if (slice_is(m, "DELETE")) {
        return delete_bucket(r);
    }
    if (slice_is(m, "POST") && qparam(r, "delete", NULL)) {
        return delete_objects(r);
    }
    return method_not_allowed(r, "BUCKET");
}

static int route_object(s3 *r, cp_slice m)
{
    cp_err kerr = {0};
    int krc = cp_keypath_check(r->key, &kerr);
    if (krc == CP_ETOOBIG) {
        cp_buf x = CP_BUF_INIT;
        cp_buf_printf(&x, "<Size>%zu</Size><MaxSizeAllowed>1024</MaxSizeAllowed>", r->key.len);
        reply_error(r, "KeyTooLongError", NULL, cp_buf_slice(&x));
        cp_buf_free(&x);
        return CP_OK;
    }
    if (krc < 0) {
        return err_plain(r, "InvalidArgument", kerr.msg);
    }
    cp_slice upload_id, pn;
    int has_upload = qparam(r, "uploadId", &upload_id);
    if (slice_is(m, "GET") || slice_is(m, "HEAD")) {
        if (!r->head && has_upload) {
            return list_parts(r, upload_id);
        }
        if (!r->head && qparam(r, "acl", NULL)) {
            return get_acl(r);
        }
        return get_object(r);
    }
    if (slice_is(m, "PUT")) {
        if (qparam(r, "acl", NULL)) {
            return err_plain(r, "NotImplemented", NULL);
        }
        if (has_upload || qparam(r, "partNumber", NULL)) {
            if (!has_upload || !qparam(r, "partNumber", &pn)) {
                return err_plain(r, "InvalidRequest",
                                 "UploadPart needs both partNumber and uploadId");
            }
            return upload_part(r, upload_id, pn);
        }
        cp_slice src = header(r, "x-amz-copy-source");
        if (src.p) {
            return copy_object(r, src);
        }
        return put_object(r);
    }
    if (slice_is(m, "DELETE")) {
        return has_upload ? abort_mpu(r, upload_id) : delete_object(r);
    }
    if (slice_is(m, "POST")) {
        if (qparam(r, "uploads", NULL)) {
            return create_mpu(r);
        }
        if (has_upload) {
            return complete_mpu(r, upload_id);
        }
    }
    return method_not_allowed(r, "OBJECT");
}

/* SigV4 failures in S3's words. Returns 1 when the request may proceed. */
static int authenticate(s3 *r)
{
    cp_sigv4_auth a;
    cp_sigv4_err e;
    if (cp_aws_authenticate(r->api->auth, r->req, "s3", SKEW_S, CP_SIGV4_S3, &a, &e) == CP_OK) {
        return 1;
    }
    switch (e.kind) {
    case CP_SIGV4_MISSING:
        err_plain(r, "AccessDenied", NULL);
        break;
    case CP_SIGV4_UNKNOWN_KEY:
        err_plain(r, "InvalidAccessKeyId", NULL);
        break;
    case CP_SIGV4_MISMATCH:
        err_plain(r, "SignatureDoesNotMatch", NULL);
        break;
    case CP_SIGV4_SKEW:
        err_plain(r, "RequestTimeTooSkewed", NULL);
        break;
    case CP_SIGV4_EXPIRED:
        err_plain(r, "AccessDenied", "Request has expired");
        break;
    case CP_SIGV4_HASH_MISMATCH:
        err_plain(r, "XAmzContentSHA256Mismatch", NULL);
        break;
    default:
        err_plain(r, "AuthorizationHeaderMalformed", e.msg);
    }
    return 0;
}

static void dispatch(s3 *r)
{
    const cp_http_req *req = r->req;
    cp_slice m = req->method;
    r->head = slice_is(m, "HEAD");
    if (r->api->auth && !authenticate(r)) {
        return;
    }
    /* Path-style: /<bucket>[/<key>]; the key keeps every byte after the bucket's slash. */
    cp_slice path = req->path;
    if (path.len == 0 || path.p[0] != '/') {
        err_plain(r, "InvalidRequest", "The request path must start with '/'");
        return;
    }
    path.p++, path.len--;
    if (path.len == 0) {
        if (slice_is(m, "GET")) {
            list_buckets(r);
        } else {
            method_not_allowed(r, "SERVICE");
        }
        return;
    }
    const char *slash = memchr(path.p, '/', path.len);
    cp_slice braw = cp_slice_of(path.p, slash ? (size_t) (slash - path.p) : path.len);
    cp_buf dec = CP_BUF_INIT;
    cp_http_pct_decode(braw, 0, &dec);
    r->bucket = sdup(r, cp_buf_slice(&dec));
    int bucket_ok =
        dec.len == strlen(r->bucket) && cp_bucket_name_check(cp_buf_slice(&dec), NULL) == CP_OK;
    if (slash && (size_t) (slash - path.p) + 1 < path.len) {
        cp_slice kraw = cp_slice_of(slash + 1, path.len - (size_t) (slash - path.p) - 1);
        cp_buf_reset(&dec);
        cp_http_pct_decode(kraw, 0, &dec); /* '+' is a literal plus in S3 paths */
        r->key = cp_slice_of(sdup(r, cp_buf_slice(&dec)), dec.len);
    }
    cp_buf_free(&dec);
    if (!bucket_ok) {
        err_bucket(r, "InvalidBucketName");
        return;
    }
    const char *unsupported = unsupported_subresource(r);
    if (unsupported) {
        char msg[128];
        snprintf(msg, sizeof(msg), "The '%s' sub-resource is not supported", unsupported);
        err_plain(r, "NotImplemented", msg);
        return;
    }
    if (r->key.len == 0) {
        route_bucket(r, m);
    } else {
        route_object(r, m);
    }
}

int cp_s3api_handle(void *ctx, const cp_http_req *req, cp_http_resp *resp)
{
    s3 r = {.api = ctx, .req = req, .resp = resp, .key = {"", 0}};
    unsigned char id[8], id2[24];
    random_bytes(id, sizeof(id));
    random_bytes(id2, sizeof(id2));
    static const char hex[] = "0123456789ABCDEF";
    for (int i = 0; i < 8; i++) {
        r.rid[2 * i] = hex[id[i] >> 4];
        r.rid[2 * i + 1] = hex[id[i] & 15];
    }
    r.rid[16] = 0;
    dispatch(&r);
    cp_buf b64 = CP_BUF_INIT;
    cp_base64_encode(cp_slice_of((const char *) id2, sizeof(id2)), &b64);
    cp_http_resp_add_header(resp, "x-amz-request-id", cp_slice_str(r.rid));
    cp_http_resp_add_header(resp, "x-amz-id-2", cp_buf_slice(&b64));
    cp_buf_free(&b64);
    return CP_OK;
}

cp_s3api *cp_s3api_new(cp_bucket_store *store, const cp_aws_router *auth)
{
    cp_s3api *api = cp_calloc(1, sizeof(*api));
    api->store = store;
    api->auth = auth;
    api->owner_id = DEFAULT_OWNER_ID;
    api->owner_name = "changepipe";
    return api;
}

void cp_s3api_free(cp_s3api *api)
{
    cp_free(api);
}
