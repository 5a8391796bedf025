/* SPDX-License-Identifier: MIT */
/* The localfs sink: objects into the server's own bucket store (atomic, fsync'd). */
#include "delivery/sink.h"

#include "objects/bucket.h"

static int localfs_put(void *ctx, const cp_object *obj, cp_err *err)
{
    static const char gzip_headers[] = "content-type\0application/octet-stream\0"
                                       "content-encoding\0gzip";
    static const char plain_headers[] = "content-type\0application/octet-stream";
    cp_bucket_put_opts opts = {
        .headers = obj->encoding ? cp_slice_of(gzip_headers, sizeof(gzip_headers))
                                 : cp_slice_of(plain_headers, sizeof(plain_headers)),
    };
    int rc = cp_bucket_put(ctx, obj->bucket, obj->key, obj->body, &opts, NULL, err);
    if (rc == CP_OK) {
        return CP_OK;
    }
    /* A missing bucket may be created later (Firehose keeps retrying); I/O errors may pass. */
    return rc == CP_EINVAL || rc == CP_ETOOBIG ? CP_EFAIL : CP_RETRY;
}

const cp_sink_ops cp_sink_localfs = {
    .abi = CP_SINK_ABI,
    .name = "localfs",
    .summary = "the server's own bucket directory (atomic writes, fsync'd)",
    .put_object = localfs_put,
    .destroy = NULL,
};
