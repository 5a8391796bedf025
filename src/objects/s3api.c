/* SPDX-License-Identifier: MIT */
/*
 * The S3 REST API (path-style) served from the local bucket store. Parsing and replies only:
 * every durable decision is the bucket store's. S3 errors leave through one function,
 * cp__s3api_reply_error(), which owns the table of codes, statuses and default messages.
 */
#include "objects/s3api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/base64.h"
#include "core/mem.h"
#include "objects/keypath.h"
#include "objects/s3api_int.h"
#include "objects/xml.h"

#define DEFAULT_OWNER_ID "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
#define SKEW_S           900 /* S3 allows 15 minutes */

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
int cp__s3api_reply_error(s3 *r, const char *code, const char *msg, cp_slice extra)
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

int cp__s3api_err_plain(s3 *r, const char *code, const char *msg)
{
    return cp__s3api_reply_error(r, code, msg, cp_slice_of("", 0));
}

/* An error that names one element (BucketName, Key, UploadId, ArgumentName, ...). */
int cp__s3api_err_with(s3 *r, const char *code, const char *msg, const char *elem, cp_slice val)
{
    cp_buf x = CP_BUF_INIT;
    cp_xml_put_elem(&x, elem, val);
    cp__s3api_reply_error(r, code, msg, cp_buf_slice(&x));
    cp_buf_free(&x);
    return CP_OK;
}

static int err_bucket(s3 *r, const char *code)
{
    return cp__s3api_err_with(r, code, NULL, "BucketName",
                              cp_slice_str(r->bucket ? r->bucket : ""));
}

int cp__s3api_err_arg(s3 *r, const char *msg, const char *name, cp_slice value)
{
    cp_buf x = CP_BUF_INIT;
    cp_xml_put_elem(&x, "ArgumentName", cp_slice_str(name));
    cp_xml_put_elem(&x, "ArgumentValue", value);
    cp__s3api_reply_error(r, "InvalidArgument", msg, cp_buf_slice(&x));
    cp_buf_free(&x);
    return CP_OK;
}

/* Map a bucket-store result to its S3 error. */
int cp__s3api_store_error(s3 *r, int rc, const cp_err *err)
{
    const char *msg = err && err->msg[0] ? err->msg : NULL;
    switch (rc) {
    case CP_BUCKET_ENOBUCKET:
        return err_bucket(r, "NoSuchBucket");
    case CP_ENOTFOUND:
        return cp__s3api_err_with(r, "NoSuchKey", NULL, "Key", r->key);
    case CP_BUCKET_ENOUPLOAD:
        return cp__s3api_err_plain(r, "NoSuchUpload", NULL);
    case CP_BUCKET_ENOTEMPTY:
        return err_bucket(r, "BucketNotEmpty");
    case CP_BUCKET_EBADPART:
        return cp__s3api_err_plain(r, "InvalidPart", NULL);
    case CP_BUCKET_EPARTORDER:
        return cp__s3api_err_plain(r, "InvalidPartOrder", NULL);
    case CP_BUCKET_ETOOSMALL:
        return cp__s3api_err_plain(r, "EntityTooSmall", NULL);
    case CP_BUCKET_EBADDIGEST:
        return cp__s3api_err_plain(r, "BadDigest", NULL);
    case CP_ETOOBIG:
        return cp__s3api_err_plain(r, "EntityTooLarge", NULL);
    case CP_EINVAL:
        return cp__s3api_err_plain(r, "InvalidArgument", msg);
    case CP_EEXIST:
        return cp__s3api_err_plain(r, "InvalidRequest", msg);
    default:
        return cp__s3api_err_plain(r, "InternalError", NULL);
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

cp_slice cp__s3api_header(s3 *r, const char *name)
{
    return cp_http_req_header(r->req, name);
}

int cp__s3api_qparam(s3 *r, const char *name, cp_slice *out)
{
    cp_slice tmp;
    return cp_http_req_query_param(r->req, name, out ? out : &tmp) == CP_OK;
}

int cp__s3api_slice_is(cp_slice s, const char *lit)
{
    return cp_slice_eq(s, cp_slice_str(lit));
}

/* NUL-terminated copy of a slice in the request scratch. */
char *cp__s3api_sdup(s3 *r, cp_slice s)
{
    return cp_http_scratch_strdup(r->req->scratch, s);
}

int cp__s3api_parse_u64(cp_slice s, uint64_t *out)
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

void cp__s3api_iso_time(int64_t ms, char out[64])
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) ((ms % 1000 + 1000) % 1000));
}

void cp__s3api_put_etag_elem(cp_buf *b, const char *etag)
{
    cp_buf_printf(b, "<ETag>&quot;%s&quot;</ETag>", etag);
}

void cp__s3api_add_etag_header(s3 *r, const char *etag)
{
    cp_http_resp_add_headerf(r->resp, "ETag", "\"%s\"", etag);
}

void cp__s3api_set_xml(s3 *r, int status, cp_buf *xml)
{
    r->resp->status = status;
    cp_buf_reset(&r->resp->body);
    cp_buf_append(&r->resp->body, xml->p, xml->len);
    cp_http_resp_add_header(r->resp, "Content-Type", CP_SLICE("application/xml"));
}

void cp__s3api_put_owner(s3 *r, cp_buf *b, const char *elem)
{
    cp_buf_printf(b, "<%s>", elem);
    cp_xml_put_elem(b, "ID", cp_slice_str(r->api->owner_id));
    cp_xml_put_elem(b, "DisplayName", cp_slice_str(r->api->owner_name));
    cp_buf_printf(b, "</%s>", elem);
}

/* Percent-encoding for encoding-type=url: everything but unreserved characters and '/'. */
void cp__s3api_url_encode(cp_slice s, cp_buf *out)
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

void cp__s3api_put_key_elem(cp_buf *b, const char *elem, cp_slice v, int url)
{
    if (!url) {
        cp_xml_put_elem(b, elem, v);
        return;
    }
    cp_buf tmp = CP_BUF_INIT;
    cp__s3api_url_encode(v, &tmp);
    cp_xml_put_elem(b, elem, cp_buf_slice(&tmp));
    cp_buf_free(&tmp);
}

/* Continuation tokens: base64url of the store's resume bytes (opaque to clients, and safe
 * in a query string even when a client forgets to encode it). */
void cp__s3api_token_encode(cp_slice raw, cp_buf *out)
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

int cp__s3api_token_decode(cp_slice tok, cp_buf *out)
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
/* Service and bucket operations                                                               */

typedef struct bucket_list_ctx {
    cp_buf *xml;
} bucket_list_ctx;

static int list_bucket_cb(void *ctx, const cp_bucket_info *b)
{
    bucket_list_ctx *c = ctx;
    char t[64];
    cp__s3api_iso_time(b->created_ms, t);
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
    cp__s3api_put_owner(r, &xml, "Owner");
    cp_buf_puts(&xml, "<Buckets>");
    bucket_list_ctx c = {&xml};
    cp_err err = {0};
    int rc = cp_bucket_list_buckets(r->api->store, list_bucket_cb, &c, &err);
    cp_buf_puts(&xml, "</Buckets></ListAllMyBucketsResult>");
    if (rc < 0) {
        cp__s3api_store_error(r, rc, &err);
    } else {
        cp__s3api_set_xml(r, 200, &xml);
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
            !cp__s3api_slice_is(cp_xml_name(&doc, 0), "CreateBucketConfiguration")) {
            cp_xml_doc_free(&doc);
            return cp__s3api_err_plain(r, "MalformedXML", NULL);
        }
        int lc = cp_xml_child(&doc, 0, "LocationConstraint");
        if (lc >= 0) {
            region = cp__s3api_sdup(r, cp_xml_text(&doc, lc));
        }
    }
    cp_xml_doc_free(&doc);
    if (region && strcmp(region, "us-east-1") == 0) {
        /* AWS refuses an explicit us-east-1: it is what "no constraint" means. */
        return cp__s3api_err_with(r, "InvalidLocationConstraint", NULL, "LocationConstraint",
                                  cp_slice_str(region));
    }
    cp_err err = {0};
    int rc = cp_bucket_create(r->api->store, r->bucket, region, &err);
    if (rc == CP_EEXIST) {
        return err_bucket(r, "BucketAlreadyOwnedByYou");
    }
    if (rc == CP_EINVAL) {
        if (region && region[0]) {
            return cp__s3api_err_with(r, "InvalidLocationConstraint", NULL, "LocationConstraint",
                                      cp_slice_str(region));
        }
        return err_bucket(r, "InvalidBucketName");
    }
    if (rc < 0) {
        return cp__s3api_store_error(r, rc, &err);
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
        return cp__s3api_store_error(r, rc, &err);
    }
    cp_http_resp_add_header(r->resp, "x-amz-bucket-region", cp_slice_str(info.region));
    return CP_OK;
}

static int delete_bucket(s3 *r)
{
    cp_err err = {0};
    int rc = cp_bucket_delete(r->api->store, r->bucket, &err);
    if (rc < 0) {
        return cp__s3api_store_error(r, rc, &err);
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
        return cp__s3api_store_error(r, rc, &err);
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
    cp__s3api_set_xml(r, 200, &xml);
    cp_buf_free(&xml);
    return CP_OK;
}

static int get_versioning(s3 *r)
{
    cp_err err = {0};
    int rc = cp_bucket_info_get(r->api->store, r->bucket, NULL, &err);
    if (rc < 0) {
        return cp__s3api_store_error(r, rc, &err);
    }
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL "<VersioningConfiguration xmlns=\"" S3_NS "\"/>");
    cp__s3api_set_xml(r, 200, &xml);
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
        return cp__s3api_store_error(r, rc, &err);
    }
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL "<AccessControlPolicy xmlns=\"" S3_NS "\">");
    cp__s3api_put_owner(r, &xml, "Owner");
    cp_buf_puts(&xml, "<AccessControlList><Grant><Grantee "
                      "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                      "xsi:type=\"CanonicalUser\">");
    cp_xml_put_elem(&xml, "ID", cp_slice_str(r->api->owner_id));
    cp_xml_put_elem(&xml, "DisplayName", cp_slice_str(r->api->owner_name));
    cp_buf_puts(&xml, "</Grantee><Permission>FULL_CONTROL</Permission></Grant>"
                      "</AccessControlList></AccessControlPolicy>");
    cp__s3api_set_xml(r, 200, &xml);
    cp_buf_free(&xml);
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
        if (cp__s3api_qparam(r, UNSUPPORTED[i], NULL)) {
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
    cp__s3api_reply_error(r, "MethodNotAllowed", NULL, cp_buf_slice(&x));
    cp_buf_free(&x);
    return CP_OK;
}

static int route_bucket(s3 *r, cp_slice m)
{
    if (cp__s3api_slice_is(m, "GET") || cp__s3api_slice_is(m, "HEAD")) {
        if (cp__s3api_slice_is(m, "HEAD")) {
            return head_bucket(r);
        }
        if (cp__s3api_qparam(r, "location", NULL)) {
            return get_location(r);
        }
        if (cp__s3api_qparam(r, "versioning", NULL)) {
            return get_versioning(r);
        }
        if (cp__s3api_qparam(r, "acl", NULL)) {
            return get_acl(r);
        }
        if (cp__s3api_qparam(r, "uploads", NULL)) {
            return cp__s3api_err_plain(r, "NotImplemented",
                                       "ListMultipartUploads is not supported");
        }
        cp_slice lt;
        if (cp__s3api_qparam(r, "list-type", &lt)) {
            if (!cp__s3api_slice_is(lt, "2")) {
                return cp__s3api_err_arg(r, "Invalid List Type specified in Request", "list-type",
                                         lt);
            }
            return cp__s3api_list_objects(r, 1);
        }
        return cp__s3api_list_objects(r, 0);
    }
    if (cp__s3api_slice_is(m, "PUT")) {
        if (cp__s3api_qparam(r, "acl", NULL) || cp__s3api_qparam(r, "versioning", NULL)) {
            return cp__s3api_err_plain(r, "NotImplemented", NULL);
        }
        return create_bucket(r);
    }
    if (cp__s3api_slice_is(m, "DELETE")) {
        return delete_bucket(r);
    }
    if (cp__s3api_slice_is(m, "POST") && cp__s3api_qparam(r, "delete", NULL)) {
        return cp__s3api_delete_objects(r);
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
        cp__s3api_reply_error(r, "KeyTooLongError", NULL, cp_buf_slice(&x));
        cp_buf_free(&x);
        return CP_OK;
    }
    if (krc < 0) {
        return cp__s3api_err_plain(r, "InvalidArgument", kerr.msg);
    }
    cp_slice upload_id, pn;
    int has_upload = cp__s3api_qparam(r, "uploadId", &upload_id);
    if (cp__s3api_slice_is(m, "GET") || cp__s3api_slice_is(m, "HEAD")) {
        if (!r->head && has_upload) {
            return cp__s3api_list_parts(r, upload_id);
        }
        if (!r->head && cp__s3api_qparam(r, "acl", NULL)) {
            return get_acl(r);
        }
        return cp__s3api_get_object(r);
    }
    if (cp__s3api_slice_is(m, "PUT")) {
        if (cp__s3api_qparam(r, "acl", NULL)) {
            return cp__s3api_err_plain(r, "NotImplemented", NULL);
        }
        if (has_upload || cp__s3api_qparam(r, "partNumber", NULL)) {
            if (!has_upload || !cp__s3api_qparam(r, "partNumber", &pn)) {
                return cp__s3api_err_plain(r, "InvalidRequest",
                                           "UploadPart needs both partNumber and uploadId");
            }
            return cp__s3api_upload_part(r, upload_id, pn);
        }
        cp_slice src = cp__s3api_header(r, "x-amz-copy-source");
        if (src.p) {
            return cp__s3api_copy_object(r, src);
        }
        return cp__s3api_put_object(r);
    }
    if (cp__s3api_slice_is(m, "DELETE")) {
        return has_upload ? cp__s3api_abort_mpu(r, upload_id) : cp__s3api_delete_object(r);
    }
    if (cp__s3api_slice_is(m, "POST")) {
        if (cp__s3api_qparam(r, "uploads", NULL)) {
            return cp__s3api_create_mpu(r);
        }
        if (has_upload) {
            return cp__s3api_complete_mpu(r, upload_id);
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
        cp__s3api_err_plain(r, "AccessDenied", NULL);
        break;
    case CP_SIGV4_UNKNOWN_KEY:
        cp__s3api_err_plain(r, "InvalidAccessKeyId", NULL);
        break;
    case CP_SIGV4_MISMATCH:
        cp__s3api_err_plain(r, "SignatureDoesNotMatch", NULL);
        break;
    case CP_SIGV4_SKEW:
        cp__s3api_err_plain(r, "RequestTimeTooSkewed", NULL);
        break;
    case CP_SIGV4_EXPIRED:
        cp__s3api_err_plain(r, "AccessDenied", "Request has expired");
        break;
    case CP_SIGV4_HASH_MISMATCH:
        cp__s3api_err_plain(r, "XAmzContentSHA256Mismatch", NULL);
        break;
    default:
        cp__s3api_err_plain(r, "AuthorizationHeaderMalformed", e.msg);
    }
    return 0;
}

static void dispatch(s3 *r)
{
    const cp_http_req *req = r->req;
    cp_slice m = req->method;
    r->head = cp__s3api_slice_is(m, "HEAD");
    if (r->api->auth && !authenticate(r)) {
        return;
    }
    /* Path-style: /<bucket>[/<key>]; the key keeps every byte after the bucket's slash. */
    cp_slice path = req->path;
    if (path.len == 0 || path.p[0] != '/') {
        cp__s3api_err_plain(r, "InvalidRequest", "The request path must start with '/'");
        return;
    }
    path.p++, path.len--;
    if (path.len == 0) {
        if (cp__s3api_slice_is(m, "GET")) {
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
    r->bucket = cp__s3api_sdup(r, cp_buf_slice(&dec));
    int bucket_ok =
        dec.len == strlen(r->bucket) && cp_bucket_name_check(cp_buf_slice(&dec), NULL) == CP_OK;
    if (slash && (size_t) (slash - path.p) + 1 < path.len) {
        cp_slice kraw = cp_slice_of(slash + 1, path.len - (size_t) (slash - path.p) - 1);
        cp_buf_reset(&dec);
        cp_http_pct_decode(kraw, 0, &dec); /* '+' is a literal plus in S3 paths */
        r->key = cp_slice_of(cp__s3api_sdup(r, cp_buf_slice(&dec)), dec.len);
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
        cp__s3api_err_plain(r, "NotImplemented", msg);
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
