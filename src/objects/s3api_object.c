/* SPDX-License-Identifier: MIT */
/*
 * The S3 API's object operations: upload bodies (aws-chunked decoding, Content-MD5 and
 * x-amz-checksum-* verification, stored headers), PutObject, CopyObject, GetObject/HeadObject,
 * DeleteObject and DeleteObjects. Routing and the error path are in s3api.c; shared internals
 * in s3api_int.h.
 */
#include "objects/s3api.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/base64.h"
#include "core/hash.h"
#include "core/mem.h"
#include "objects/chunked.h"
#include "objects/s3api_int.h"
#include "objects/xml.h"

#define MAX_USER_META   2048 /* S3's limit on x-amz-meta-* names + values */
#define MAX_DELETE_KEYS 1000

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
    cp_slice trailer = cp__s3api_header(r, "x-amz-trailer");
    for (int i = 0; i < NALG; i++) {
        c->want[i] = cp__s3api_header(r, ALGS[i].header).p != NULL ||
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
        cp_slice claimed = cp__s3api_header(r, ALGS[i].header);
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
    cp_slice sha = cp__s3api_header(r, "x-amz-content-sha256");
    return (sha.len >= 10 && memcmp(sha.p, "STREAMING-", 10) == 0) ||
           has_token(cp__s3api_header(r, "Content-Encoding"), "aws-chunked");
}

/*
 * Stream the request body (decoding aws-chunked) into w and verify the payload hash and
 * checksums. Returns CP_OK, or replies the S3 error itself and returns CP_EFAIL (w is left to
 * the caller to abort).
 */
int cp__s3api_write_body(s3 *r, cp_bucket_writer *w)
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
            cp__s3api_err_plain(r, "IncompleteBody", err.msg);
            goto fail;
        }
        uint64_t want;
        cp_slice dl = cp__s3api_header(r, "x-amz-decoded-content-length");
        if (rc == CP_OK && dl.p && (!cp__s3api_parse_u64(dl, &want) || want != n)) {
            cp__s3api_err_plain(r, "IncompleteBody", NULL);
            goto fail;
        }
    } else {
        cp_slice sha = cp__s3api_header(r, "x-amz-content-sha256");
        if (is_hex64(sha)) {
            unsigned char d[32];
            char hex[65];
            cp_sha256(r->req->body.p ? r->req->body.p : "", r->req->body.len, d);
            cp_hex(d, 32, hex);
            if (strncasecmp(hex, sha.p, 64) != 0) {
                cp_buf x = CP_BUF_INIT;
                cp_xml_put_elem(&x, "ClientComputedContentSHA256", sha);
                cp_xml_put_elem(&x, "S3ComputedContentSHA256", cp_slice_of(hex, 64));
                cp__s3api_reply_error(r, "XAmzContentSHA256Mismatch", NULL, cp_buf_slice(&x));
                cp_buf_free(&x);
                goto fail;
            }
        }
        rc = r->req->body.len ? body_sink(&sc, r->req->body.p, r->req->body.len) : CP_OK;
    }
    if (rc < 0) {
        cp__s3api_store_error(r, rc, &err);
        goto fail;
    }
    int bad = checks_verify(r, &ck, cp_buf_slice(&trailers));
    if (bad >= 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "The %s you specified did not match the calculated checksum.",
                 ALGS[bad].name);
        cp__s3api_err_plain(r, "BadDigest", msg);
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
int cp__s3api_content_md5(s3 *r, unsigned char md[16])
{
    cp_slice v = cp__s3api_header(r, "Content-MD5");
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
        cp__s3api_err_plain(r, "InvalidDigest", NULL);
        return -1;
    }
    return 1;
}

/* The headers S3 stores with an object, as "name\0value\0" with lower-case names. Replies
 * MetadataTooLarge and returns CP_EFAIL when user metadata exceeds 2 KB. */
int cp__s3api_stored_headers(s3 *r, cp_buf *out)
{
    static const char *const keep[] = {"content-type", "content-disposition", "content-language",
                                       "cache-control", "expires"};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        cp_slice v = cp__s3api_header(r, keep[i]);
        if (v.p) {
            cp_buf_puts(out, keep[i]);
            cp_buf_putc(out, 0);
            cp_buf_append(out, v.p, v.len);
            cp_buf_putc(out, 0);
        }
    }
    /* Content-Encoding without the aws-chunked transfer coding, which describes the upload
     * rather than the object. */
    cp_slice ce = cp__s3api_header(r, "Content-Encoding");
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
        cp__s3api_err_plain(r, "MetadataTooLarge", NULL);
        return CP_EFAIL;
    }
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Objects                                                                                     */

int cp__s3api_put_object(s3 *r)
{
    unsigned char md[16];
    int has_md5 = cp__s3api_content_md5(r, md);
    if (has_md5 < 0) {
        return CP_OK;
    }
    cp_buf hdrs = CP_BUF_INIT;
    if (cp__s3api_stored_headers(r, &hdrs) < 0) {
        cp_buf_free(&hdrs);
        return CP_OK;
    }
    cp_bucket_writer *w;
    cp_err err = {0};
    int rc = cp_bucket_writer_open(r->api->store, r->bucket, r->key, &w, &err);
    if (rc < 0) {
        cp_buf_free(&hdrs);
        return cp__s3api_store_error(r, rc, &err);
    }
    if (cp__s3api_write_body(r, w) < 0) {
        cp_bucket_writer_abort(w);
        cp_buf_free(&hdrs);
        return CP_OK;
    }
    cp_bucket_put_opts opts = {cp_buf_slice(&hdrs), has_md5 ? md : NULL};
    cp_bucket_obj o = CP_BUCKET_OBJ_INIT;
    rc = cp_bucket_writer_commit(w, &opts, &o, &err);
    if (rc < 0) {
        cp__s3api_store_error(r, rc, &err);
    } else {
        cp__s3api_add_etag_header(r, o.etag);
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
        *bucket = cp__s3api_sdup(r, cp_slice_of(p, (size_t) (slash - p)));
        *key = cp_slice_of(cp__s3api_sdup(r, cp_slice_of(slash + 1, (size_t) (end - slash - 1))),
                           (size_t) (end - slash - 1));
    }
    cp_buf_free(&dec);
    return ok;
}

int cp__s3api_copy_object(s3 *r, cp_slice src)
{
    char *sb;
    cp_slice sk;
    if (!copy_source(r, src, &sb, &sk)) {
        return cp__s3api_err_arg(r,
                                 "Copy Source must mention the source bucket and key: "
                                 "sourcebucket/sourcekey",
                                 "x-amz-copy-source", src);
    }
    cp_slice dir = cp__s3api_header(r, "x-amz-metadata-directive");
    int replace = dir.p && cp__s3api_slice_is(dir, "REPLACE");
    if (dir.p && !replace && !cp__s3api_slice_is(dir, "COPY")) {
        return cp__s3api_err_arg(r, "Unknown metadata directive.", "x-amz-metadata-directive", dir);
    }
    if (!replace && strcmp(sb, r->bucket) == 0 && cp_slice_eq(sk, r->key)) {
        return cp__s3api_err_plain(
            r, "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to "
            "itself without changing the object's metadata, storage class, website "
            "redirect location or encryption attributes.");
    }
    cp_buf hdrs = CP_BUF_INIT;
    if (replace && cp__s3api_stored_headers(r, &hdrs) < 0) {
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
        cp__s3api_store_error(r, rc, &err);
    } else {
        char t[64];
        cp__s3api_iso_time(o.mtime_ms, t);
        cp_buf xml = CP_BUF_INIT;
        cp_buf_puts(&xml, XML_DECL "<CopyObjectResult xmlns=\"" S3_NS "\">");
        cp_xml_put_elem(&xml, "LastModified", cp_slice_str(t));
        cp__s3api_put_etag_elem(&xml, o.etag);
        cp_buf_puts(&xml, "</CopyObjectResult>");
        cp__s3api_set_xml(r, 200, &xml);
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
    cp_slice im = cp__s3api_header(r, "If-Match"), inm = cp__s3api_header(r, "If-None-Match");
    cp_slice ius = cp__s3api_header(r, "If-Unmodified-Since"),
             ims = cp__s3api_header(r, "If-Modified-Since");
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
        cp__s3api_err_with(r, "PreconditionFailed", NULL, "Condition", cp_slice_str(failed));
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
        cp__s3api_add_etag_header(r, o->etag);
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
        if (!cp__s3api_parse_u64(b, &last)) {
            return 0;
        }
        if (last == 0 || size == 0) {
            return -1;
        }
        *len = last > size ? size : last;
        *off = size - *len;
        return 1;
    }
    if (!cp__s3api_parse_u64(a, &first)) {
        return 0;
    }
    if (b.len == 0) {
        last = UINT64_MAX;
    } else if (!cp__s3api_parse_u64(b, &last) || last < first) {
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

int cp__s3api_get_object(s3 *r)
{
    cp_bucket_obj o = CP_BUCKET_OBJ_INIT;
    cp_err err = {0};
    int fd = -1;
    int rc = cp_bucket_get(r->api->store, r->bucket, r->key, &o, &fd, &err);
    if (rc < 0) {
        cp_bucket_obj_free(&o);
        return cp__s3api_store_error(r, rc, &err);
    }
    if (conditions(r, &o)) {
        close(fd);
        cp_bucket_obj_free(&o);
        return CP_OK;
    }
    uint64_t off = 0, len = o.size;
    cp_slice range = cp__s3api_header(r, "Range");
    int ranged = range.p ? parse_range(range, o.size, &off, &len) : 0;
    if (ranged < 0) {
        close(fd);
        cp_buf x = CP_BUF_INIT;
        cp_xml_put_elem(&x, "RangeRequested", range);
        cp_buf_printf(&x, "<ActualObjectSize>%llu</ActualObjectSize>", (unsigned long long) o.size);
        cp__s3api_reply_error(r, "InvalidRange", NULL, cp_buf_slice(&x));
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
            overridden |=
                strcmp(p, overrides[i][1]) == 0 && cp__s3api_qparam(r, overrides[i][0], NULL);
        }
        if (!overridden) {
            cp_http_resp_add_header(r->resp, canonical_header(p), cp_slice_str(v));
            have_ct |= strcmp(p, "content-type") == 0;
        }
        p = v + strlen(v) + 1;
    }
    for (size_t i = 0; !r->head && i < sizeof(overrides) / sizeof(overrides[0]); i++) {
        cp_slice ov;
        if (cp__s3api_qparam(r, overrides[i][0], &ov)) {
            cp_http_resp_add_header(r->resp, canonical_header(overrides[i][1]), ov);
            have_ct |= strcmp(overrides[i][1], "content-type") == 0;
        }
    }
    if (!have_ct) {
        cp_http_resp_add_header(r->resp, "Content-Type", CP_SLICE("binary/octet-stream"));
    }
    cp__s3api_add_etag_header(r, o.etag);
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

int cp__s3api_delete_object(s3 *r)
{
    cp_err err = {0};
    int rc = cp_bucket_delete_object(r->api->store, r->bucket, r->key, &err);
    if (rc < 0 && rc != CP_ENOTFOUND) {
        return cp__s3api_store_error(r, rc, &err);
    }
    r->resp->status = 204; /* S3 answers 204 whether or not the key existed */
    return CP_OK;
}

int cp__s3api_delete_objects(s3 *r)
{
    unsigned char md[16];
    int has_md5 = cp__s3api_content_md5(r, md);
    if (has_md5 < 0) {
        return CP_OK;
    }
    if (has_md5) {
        unsigned char got[16];
        cp_md5(r->req->body.p ? r->req->body.p : "", r->req->body.len, got);
        if (memcmp(got, md, 16) != 0) {
            return cp__s3api_err_plain(r, "BadDigest", NULL);
        }
    }
    cp_xml_doc doc = CP_XML_DOC_INIT;
    if (r->req->body.len > MAX_XML_BODY ||
        cp_xml_parse(r->req->body, MAX_XML_NODES, &doc, NULL) < 0 ||
        !cp__s3api_slice_is(cp_xml_name(&doc, 0), "Delete")) {
        cp_xml_doc_free(&doc);
        return cp__s3api_err_plain(r, "MalformedXML", NULL);
    }
    int quiet = cp__s3api_slice_is(cp_xml_text(&doc, cp_xml_child(&doc, 0, "Quiet")), "true");
    size_t n = 0;
    for (int o = cp_xml_child(&doc, 0, "Object"); o >= 0; o = cp_xml_next_same(&doc, o)) {
        if (cp_xml_child(&doc, o, "Key") < 0) {
            cp_xml_doc_free(&doc);
            return cp__s3api_err_plain(r, "MalformedXML", NULL);
        }
        n++;
    }
    if (n == 0 || n > MAX_DELETE_KEYS) {
        cp_xml_doc_free(&doc);
        return cp__s3api_err_plain(r, "MalformedXML", NULL);
    }
    cp_err err = {0};
    int rc = cp_bucket_info_get(r->api->store, r->bucket, NULL, &err);
    if (rc < 0) {
        cp_xml_doc_free(&doc);
        return cp__s3api_store_error(r, rc, &err);
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
    cp__s3api_set_xml(r, 200, &xml);
    cp_buf_free(&xml);
    cp_xml_doc_free(&doc);
    return CP_OK;
}
