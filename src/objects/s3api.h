/* SPDX-License-Identifier: MIT */
/*
 * s3api: the S3 REST API (path-style) over the local bucket store, so `aws s3`, `aws s3api`
 * and the SDKs work against changepipe. One cp_http_handler-shaped entry point; mount it as
 * the HTTP router's fallback (every request that is not an AWS JSON call or another REST API).
 *
 * Routing: GET / lists buckets; /<bucket> and /<bucket>/<key...> with the sub-resources
 * ?list-type=2, ?location, ?delete, ?uploads, ?uploadId=, ?partNumber=, ?versioning, ?acl.
 * The key is the percent-decoded path after the bucket ('+' stays '+', as in S3).
 *
 * Operations: ListBuckets, CreateBucket (LocationConstraint), HeadBucket, DeleteBucket,
 * GetBucketLocation, GetBucketVersioning, GetBucketAcl, ListObjects (v1) and ListObjectsV2
 * (prefix, delimiter, max-keys, continuation, start-after, encoding-type=url, fetch-owner),
 * PutObject, CopyObject, GetObject (Range, conditional headers, response-* overrides),
 * HeadObject, DeleteObject, DeleteObjects, CreateMultipartUpload, UploadPart,
 * CompleteMultipartUpload, AbortMultipartUpload, ListParts. Other sub-resources answer
 * 501 NotImplemented.
 *
 * Bodies: aws-chunked uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER],
 * STREAMING-UNSIGNED-PAYLOAD-TRAILER) are decoded so the stored bytes are exact; chunk
 * signatures are not verified (see chunked.h). Content-MD5 is checked (BadDigest), a hex
 * x-amz-content-sha256 is checked (XAmzContentSHA256Mismatch), and x-amz-checksum-crc32,
 * -crc32c, -sha1 and -sha256 (as headers or trailers) are checked (BadDigest) and echoed.
 *
 * Errors are S3's XML (<Error><Code/><Message/>...<RequestId/></Error>) with S3's status codes;
 * every response carries x-amz-request-id and x-amz-id-2.
 *
 * Threads: after cp_s3api_new the object is read-only; cp_s3api_handle runs concurrently on
 * every server worker thread.
 */
#ifndef CP_OBJECTS_S3API_H
#define CP_OBJECTS_S3API_H

#include "aws/proto.h"
#include "http/request.h"
#include "objects/bucket.h"

typedef struct cp_s3api cp_s3api;

/*
 * Returns a new api serving `store` (borrowed for the api's lifetime; free with
 * cp_s3api_free()). `auth` (borrowed, may be NULL): when set, every request is checked with
 * cp_aws_authenticate (scope service "s3", S3 canonicalisation, 15 minutes of clock skew) and
 * refused with S3's errors: AccessDenied (no signature at all, or an expired presigned URL),
 * AuthorizationHeaderMalformed, InvalidAccessKeyId, SignatureDoesNotMatch,
 * RequestTimeTooSkewed, XAmzContentSHA256Mismatch. With no credentials configured in the
 * router any well-formed signature passes. NULL means a layer in front already verified it.
 */
cp_s3api *cp_s3api_new(cp_bucket_store *store, const cp_aws_router *auth);
void cp_s3api_free(cp_s3api *api);

/* The cp_http_handler: pass the cp_s3api as ctx. Always replies (errors included) and returns
 * CP_OK; req->scratch must be set. For GET/HEAD of an object the response carries the file
 * (resp->file_fd, owned by resp) rather than a copied body. */
int cp_s3api_handle(void *api, const cp_http_req *req, cp_http_resp *resp);

#endif
