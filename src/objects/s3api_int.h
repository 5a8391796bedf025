/* SPDX-License-Identifier: MIT */
/*
 * s3api_int.h: internals shared by the S3 API's files, not an API. Nothing outside
 * src/objects/s3api*.c includes this.
 *
 *   s3api.c            the error table and reply path, small helpers, service and bucket
 *                      operations, routing, authentication, the entry points
 *   s3api_object.c     upload bodies and checksums, object operations
 *   s3api_multipart.c  object listings and multipart uploads
 *
 * Macros and types here are short-named because they never reach the linker; functions
 * shared across files are cp__s3api_* (house style 4.2).
 */
#ifndef CP_OBJECTS_S3API_INT_H
#define CP_OBJECTS_S3API_INT_H

#include <stdint.h>

#include "core/buf.h"
#include "objects/bucket.h"
#include "objects/s3api.h"

#define S3_NS         "http://s3.amazonaws.com/doc/2006-03-01/"
#define XML_DECL      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define MAX_XML_BODY  (4u << 20)
#define MAX_XML_NODES 60000

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

/* Errors (s3api.c) */
int cp__s3api_reply_error(s3 *r, const char *code, const char *msg, cp_slice extra);
int cp__s3api_err_plain(s3 *r, const char *code, const char *msg);
int cp__s3api_err_with(s3 *r, const char *code, const char *msg, const char *elem, cp_slice val);
int cp__s3api_err_arg(s3 *r, const char *msg, const char *name, cp_slice value);
int cp__s3api_store_error(s3 *r, int rc, const cp_err *err);

/* Small helpers (s3api.c) */
cp_slice cp__s3api_header(s3 *r, const char *name);
int cp__s3api_qparam(s3 *r, const char *name, cp_slice *out);
int cp__s3api_slice_is(cp_slice s, const char *lit);
char *cp__s3api_sdup(s3 *r, cp_slice s);
int cp__s3api_parse_u64(cp_slice s, uint64_t *out);
void cp__s3api_iso_time(int64_t ms, char out[64]);
void cp__s3api_put_etag_elem(cp_buf *b, const char *etag);
void cp__s3api_add_etag_header(s3 *r, const char *etag);
void cp__s3api_set_xml(s3 *r, int status, cp_buf *xml);
void cp__s3api_put_owner(s3 *r, cp_buf *b, const char *elem);
void cp__s3api_url_encode(cp_slice s, cp_buf *out);
void cp__s3api_put_key_elem(cp_buf *b, const char *elem, cp_slice v, int url);
void cp__s3api_token_encode(cp_slice raw, cp_buf *out);
int cp__s3api_token_decode(cp_slice tok, cp_buf *out);

/* Upload bodies (s3api_object.c) */
int cp__s3api_write_body(s3 *r, cp_bucket_writer *w);
int cp__s3api_content_md5(s3 *r, unsigned char md[16]);
int cp__s3api_stored_headers(s3 *r, cp_buf *out);

/* Object operations (s3api_object.c) */
int cp__s3api_put_object(s3 *r);
int cp__s3api_copy_object(s3 *r, cp_slice src);
int cp__s3api_get_object(s3 *r);
int cp__s3api_delete_object(s3 *r);
int cp__s3api_delete_objects(s3 *r);

/* Listing and multipart uploads (s3api_multipart.c) */
int cp__s3api_list_objects(s3 *r, int v2);
int cp__s3api_create_mpu(s3 *r);
int cp__s3api_upload_part(s3 *r, cp_slice upload_id, cp_slice pn);
int cp__s3api_complete_mpu(s3 *r, cp_slice upload_id);
int cp__s3api_abort_mpu(s3 *r, cp_slice upload_id);
int cp__s3api_list_parts(s3 *r, cp_slice upload_id);

#endif
