/* SPDX-License-Identifier: MIT */
/*
 * The s3 sink: objects to any S3-compatible endpoint (AWS S3, MinIO, s3rver, another
 * changepipe) through the SigV4 client in delivery/s3client.c. PutObject up to the multipart
 * threshold, multipart upload above it. The client's OK/RETRY/EFAIL classification is the
 * sink's answer; the engine owns the retries.
 */
#include "delivery/sink.h"

#include "delivery/s3client.h"

int cp_s3_sink_new(const cp_s3_sink_cfg *cfg, void **ctx, cp_err *err)
{
    cp_s3client *c = NULL;
    int rc = cp_s3client_new(cfg, &c, err);
    *ctx = c;
    return rc;
}

static int s3_put(void *ctx, const cp_object *obj, cp_err *err)
{
    if (!obj->bucket || !*obj->bucket || obj->key.len == 0) {
        return cp_err_set(err, CP_EFAIL, "s3 sink: object without bucket or key");
    }
    /* Firehose writes every object as application/octet-stream, with Content-Encoding gzip
     * for GZIP compression, so readers (Athena, `aws s3 cp`) treat the bytes the same way. */
    cp_s3_put_opts opts = {.content_type = "application/octet-stream",
                           .content_encoding = obj->encoding};
    int rc = cp_s3client_put(ctx, obj->bucket, obj->key, obj->body, &opts, NULL, err);
    if (rc == CP_OK || rc == CP_RETRY) {
        return rc;
    }
    /* CP_EFAIL, and CP_EINVAL for what S3 could never accept: the engine backs off long and
     * logs err, never dropping the object. */
    if (err && err->code != CP_EFAIL) {
        err->code = CP_EFAIL;
    }
    return CP_EFAIL;
}

static void s3_destroy(void *ctx)
{
    cp_s3client_free(ctx);
}

const cp_sink_ops cp_sink_s3 = {
    .abi = CP_SINK_ABI,
    .name = "s3",
    .summary = "any S3-compatible endpoint (SigV4 over libcurl; multipart for large objects)",
    .put_object = s3_put,
    .destroy = s3_destroy,
};
