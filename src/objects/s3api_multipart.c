/* SPDX-License-Identifier: MIT */
/*
 * The S3 API's listings and multipart uploads: ListObjects (v1) and ListObjectsV2, then
 * CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload and
 * ListParts. Routing and the error path are in s3api.c; shared internals in s3api_int.h.
 */
#include "objects/s3api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "objects/s3api_int.h"
#include "objects/xml.h"

#define MAX_LIST 1000

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
        cp__s3api_put_key_elem(&c->prefixes, "Prefix", e->key, c->url);
        cp_buf_puts(&c->prefixes, "</CommonPrefixes>");
        return 0;
    }
    char t[64];
    cp__s3api_iso_time(e->mtime_ms, t);
    cp_buf *b = &c->contents;
    cp_buf_puts(b, "<Contents>");
    cp__s3api_put_key_elem(b, "Key", e->key, c->url);
    cp_xml_put_elem(b, "LastModified", cp_slice_str(t));
    cp__s3api_put_etag_elem(b, e->etag);
    cp_buf_printf(b, "<Size>%llu</Size>", (unsigned long long) e->size);
    if (c->owner) {
        cp__s3api_put_owner(c->r, b, "Owner");
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

int cp__s3api_list_objects(s3 *r, int v2)
{
    cp_slice prefix = {NULL, 0}, delim = {NULL, 0}, mk, enc, tok = {NULL, 0}, sa = {NULL, 0};
    cp__s3api_qparam(r, "prefix", &prefix);
    cp__s3api_qparam(r, "delimiter", &delim);
    size_t max = MAX_LIST;
    if (cp__s3api_qparam(r, "max-keys", &mk)) {
        uint64_t v;
        if (!cp__s3api_parse_u64(mk, &v)) {
            return cp__s3api_err_arg(r, "Provided max-keys not an integer or within integer range",
                                     "max-keys", mk);
        }
        max = v > MAX_LIST ? MAX_LIST : (size_t) v;
    }
    int url = 0;
    if (cp__s3api_qparam(r, "encoding-type", &enc)) {
        if (!cp__s3api_slice_is(enc, "url")) {
            return cp__s3api_err_arg(r, "Invalid Encoding Method specified in Request",
                                     "encoding-type", enc);
        }
        url = 1;
    }
    list_ctx lc = {r, CP_BUF_INIT, CP_BUF_INIT, url, 0};
    cp_buf resume = CP_BUF_INIT;
    int has_tok = 0;
    if (v2) {
        has_tok = cp__s3api_qparam(r, "continuation-token", &tok);
        if (has_tok && cp__s3api_token_decode(tok, &resume) < 0) {
            cp_buf_free(&resume);
            return cp__s3api_err_arg(r, "The continuation token provided is incorrect",
                                     "continuation-token", tok);
        }
        cp__s3api_qparam(r, "start-after", &sa);
        cp_slice fo;
        lc.owner = cp__s3api_qparam(r, "fetch-owner", &fo) && cp__s3api_slice_is(fo, "true");
    } else {
        cp__s3api_qparam(r, "marker", &sa);
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
        cp__s3api_store_error(r, rc, &err);
        goto out;
    }
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL "<ListBucketResult xmlns=\"" S3_NS "\">");
    cp_xml_put_elem(&xml, "Name", cp_slice_str(r->bucket));
    cp__s3api_put_key_elem(&xml, "Prefix", prefix, url);
    if (!v2) {
        cp__s3api_put_key_elem(&xml, "Marker", sa, url);
        if (delim.len && res.truncated) {
            cp__s3api_put_key_elem(&xml, "NextMarker", cp_buf_slice(&res.last), url);
        }
    }
    cp_buf_printf(&xml, "<MaxKeys>%zu</MaxKeys>", max);
    if (delim.len) {
        cp__s3api_put_key_elem(&xml, "Delimiter", delim, url);
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
            cp__s3api_token_encode(cp_buf_slice(&res.next), &t);
            cp_xml_put_elem(&xml, "NextContinuationToken", cp_buf_slice(&t));
            cp_buf_free(&t);
        }
        if (sa.len) {
            cp__s3api_put_key_elem(&xml, "StartAfter", sa, url);
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
    cp__s3api_set_xml(r, 200, &xml);
    cp_buf_free(&xml);
out:
    cp_buf_free(&lc.contents);
    cp_buf_free(&lc.prefixes);
    cp_buf_free(&resume);
    cp_bucket_list_res_free(&res);
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Multipart uploads                                                                           */

int cp__s3api_create_mpu(s3 *r)
{
    cp_buf hdrs = CP_BUF_INIT;
    if (cp__s3api_stored_headers(r, &hdrs) < 0) {
        cp_buf_free(&hdrs);
        return CP_OK;
    }
    char id[CP_BUCKET_UPLOAD_ID_LEN + 1];
    cp_err err = {0};
    int rc = cp_bucket_mpu_create(r->api->store, r->bucket, r->key, cp_buf_slice(&hdrs), id, &err);
    cp_buf_free(&hdrs);
    if (rc < 0) {
        return cp__s3api_store_error(r, rc, &err);
    }
    cp_slice alg = cp__s3api_header(r, "x-amz-checksum-algorithm");
    if (alg.p) {
        cp_http_resp_add_header(r->resp, "x-amz-checksum-algorithm", alg);
    }
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL "<InitiateMultipartUploadResult xmlns=\"" S3_NS "\">");
    cp_xml_put_elem(&xml, "Bucket", cp_slice_str(r->bucket));
    cp_xml_put_elem(&xml, "Key", r->key);
    cp_xml_put_elem(&xml, "UploadId", cp_slice_str(id));
    cp_buf_puts(&xml, "</InitiateMultipartUploadResult>");
    cp__s3api_set_xml(r, 200, &xml);
    cp_buf_free(&xml);
    return CP_OK;
}

int cp__s3api_upload_part(s3 *r, cp_slice upload_id, cp_slice pn)
{
    uint64_t part;
    if (!cp__s3api_parse_u64(pn, &part) || part < 1 || part > CP_BUCKET_MAX_PARTS) {
        return cp__s3api_err_arg(r, "Part number must be an integer between 1 and 10000, inclusive",
                                 "partNumber", pn);
    }
    if (cp__s3api_header(r, "x-amz-copy-source").p) {
        return cp__s3api_err_plain(r, "NotImplemented", "UploadPartCopy is not supported");
    }
    unsigned char md[16];
    int has_md5 = cp__s3api_content_md5(r, md);
    if (has_md5 < 0) {
        return CP_OK;
    }
    cp_bucket_writer *w;
    cp_err err = {0};
    int rc = cp_bucket_writer_open_part(r->api->store, r->bucket, r->key,
                                        cp__s3api_sdup(r, upload_id), (int) part, &w, &err);
    if (rc < 0) {
        if (rc == CP_BUCKET_ENOUPLOAD) {
            return cp__s3api_err_with(r, "NoSuchUpload", NULL, "UploadId", upload_id);
        }
        return cp__s3api_store_error(r, rc, &err);
    }
    if (cp__s3api_write_body(r, w) < 0) {
        cp_bucket_writer_abort(w);
        return CP_OK;
    }
    cp_bucket_put_opts opts = {{NULL, 0}, has_md5 ? md : NULL};
    cp_bucket_obj o = CP_BUCKET_OBJ_INIT;
    rc = cp_bucket_writer_commit(w, &opts, &o, &err);
    if (rc < 0) {
        cp__s3api_store_error(r, rc, &err);
    } else {
        cp__s3api_add_etag_header(r, o.etag);
    }
    cp_bucket_obj_free(&o);
    return CP_OK;
}

int cp__s3api_complete_mpu(s3 *r, cp_slice upload_id)
{
    cp_xml_doc doc = CP_XML_DOC_INIT;
    if (r->req->body.len > MAX_XML_BODY ||
        cp_xml_parse(r->req->body, MAX_XML_NODES, &doc, NULL) < 0 ||
        !cp__s3api_slice_is(cp_xml_name(&doc, 0), "CompleteMultipartUpload")) {
        cp_xml_doc_free(&doc);
        return cp__s3api_err_plain(r, "MalformedXML", NULL);
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
        if (!cp__s3api_parse_u64(num, &v) || v < 1 || v > CP_BUCKET_MAX_PARTS || etag.len == 0 ||
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
        return bad ? cp__s3api_err_plain(r, "InvalidPart", NULL)
                   : cp__s3api_err_plain(r, "MalformedXML", NULL);
    }
    cp_bucket_obj o = CP_BUCKET_OBJ_INIT;
    cp_err err = {0};
    int rc = cp_bucket_mpu_complete(r->api->store, r->bucket, r->key, cp__s3api_sdup(r, upload_id),
                                    parts, n, &o, &err);
    cp_free(parts);
    if (rc < 0) {
        if (rc == CP_BUCKET_ENOUPLOAD) {
            cp__s3api_err_with(r, "NoSuchUpload", NULL, "UploadId", upload_id);
        } else {
            cp__s3api_store_error(r, rc, &err);
        }
        cp_bucket_obj_free(&o);
        return CP_OK;
    }
    cp_slice host = cp__s3api_header(r, "Host");
    cp_buf loc = CP_BUF_INIT;
    cp_buf_puts(&loc, "http://");
    cp_buf_append(&loc, host.p ? host.p : "localhost", host.p ? host.len : 9);
    cp_buf_putc(&loc, '/');
    cp_buf_puts(&loc, r->bucket);
    cp_buf_putc(&loc, '/');
    cp__s3api_url_encode(r->key, &loc);
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL "<CompleteMultipartUploadResult xmlns=\"" S3_NS "\">");
    cp_xml_put_elem(&xml, "Location", cp_buf_slice(&loc));
    cp_xml_put_elem(&xml, "Bucket", cp_slice_str(r->bucket));
    cp_xml_put_elem(&xml, "Key", r->key);
    cp__s3api_put_etag_elem(&xml, o.etag);
    cp_buf_puts(&xml, "</CompleteMultipartUploadResult>");
    cp__s3api_set_xml(r, 200, &xml);
    cp_buf_free(&xml);
    cp_buf_free(&loc);
    cp_bucket_obj_free(&o);
    return CP_OK;
}

int cp__s3api_abort_mpu(s3 *r, cp_slice upload_id)
{
    cp_err err = {0};
    int rc =
        cp_bucket_mpu_abort(r->api->store, r->bucket, r->key, cp__s3api_sdup(r, upload_id), &err);
    if (rc == CP_BUCKET_ENOUPLOAD) {
        return cp__s3api_err_with(r, "NoSuchUpload", NULL, "UploadId", upload_id);
    }
    if (rc < 0) {
        return cp__s3api_store_error(r, rc, &err);
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
    cp__s3api_iso_time(p->mtime_ms, t);
    cp_buf_printf(c->xml, "<Part><PartNumber>%d</PartNumber>", p->number);
    cp_xml_put_elem(c->xml, "LastModified", cp_slice_str(t));
    cp__s3api_put_etag_elem(c->xml, p->etag);
    cp_buf_printf(c->xml, "<Size>%llu</Size></Part>", (unsigned long long) p->size);
    c->last = p->number;
    return 0;
}

int cp__s3api_list_parts(s3 *r, cp_slice upload_id)
{
    uint64_t max = 1000, marker = 0;
    cp_slice v;
    if (cp__s3api_qparam(r, "max-parts", &v) && (!cp__s3api_parse_u64(v, &max) || max > 1000)) {
        if (!cp__s3api_parse_u64(v, &max)) {
            return cp__s3api_err_arg(r, "Provided max-parts not an integer or within integer range",
                                     "max-parts", v);
        }
        max = 1000;
    }
    if (cp__s3api_qparam(r, "part-number-marker", &v) &&
        (!cp__s3api_parse_u64(v, &marker) || marker > 10000)) {
        return cp__s3api_err_arg(
            r, "Provided part-number-marker not an integer or within integer range",
            "part-number-marker", v);
    }
    cp_buf parts = CP_BUF_INIT;
    parts_ctx pc = {&parts, (int) marker};
    int truncated = 0;
    cp_err err = {0};
    int rc;
    if (max) {
        rc = cp_bucket_mpu_list_parts(r->api->store, r->bucket, r->key,
                                      cp__s3api_sdup(r, upload_id), (int) marker, (size_t) max,
                                      list_part_cb, &pc, &truncated, &err);
    } else {
        /* max-parts=0 lists nothing; fetch one part only to tell whether any follow. */
        cp_buf ignored = CP_BUF_INIT;
        parts_ctx probe = {&ignored, (int) marker};
        rc =
            cp_bucket_mpu_list_parts(r->api->store, r->bucket, r->key, cp__s3api_sdup(r, upload_id),
                                     (int) marker, 1, list_part_cb, &probe, NULL, &err);
        truncated = probe.last != (int) marker;
        cp_buf_free(&ignored);
    }
    if (rc < 0) {
        cp_buf_free(&parts);
        if (rc == CP_BUCKET_ENOUPLOAD) {
            return cp__s3api_err_with(r, "NoSuchUpload", NULL, "UploadId", upload_id);
        }
        return cp__s3api_store_error(r, rc, &err);
    }
    cp_buf xml = CP_BUF_INIT;
    cp_buf_puts(&xml, XML_DECL "<ListPartsResult xmlns=\"" S3_NS "\">");
    cp_xml_put_elem(&xml, "Bucket", cp_slice_str(r->bucket));
    cp_xml_put_elem(&xml, "Key", r->key);
    cp_xml_put_elem(&xml, "UploadId", upload_id);
    cp__s3api_put_owner(r, &xml, "Initiator");
    cp__s3api_put_owner(r, &xml, "Owner");
    cp_buf_puts(&xml, "<StorageClass>STANDARD</StorageClass>");
    cp_buf_printf(&xml, "<PartNumberMarker>%llu</PartNumberMarker>", (unsigned long long) marker);
    cp_buf_printf(&xml, "<NextPartNumberMarker>%d</NextPartNumberMarker>", pc.last);
    cp_buf_printf(&xml, "<MaxParts>%llu</MaxParts>", (unsigned long long) max);
    cp_buf_printf(&xml, "<IsTruncated>%s</IsTruncated>", truncated ? "true" : "false");
    if (parts.len) {
        cp_buf_append(&xml, parts.p, parts.len);
    }
    cp_buf_puts(&xml, "</ListPartsResult>");
    cp__s3api_set_xml(r, 200, &xml);
    cp_buf_free(&xml);
    cp_buf_free(&parts);
    return CP_OK;
}
