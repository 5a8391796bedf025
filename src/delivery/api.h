/* SPDX-License-Identifier: MIT */
/*
 * The Firehose JSON API (Firehose_20150804, awsJson1_1, bare error types): CreateDeliveryStream,
 * DescribeDeliveryStream, ListDeliveryStreams, DeleteDeliveryStream, UpdateDestination,
 * PutRecord, PutRecordBatch, TagDeliveryStream, UntagDeliveryStream, ListTagsForDeliveryStream.
 *
 * The handlers own the wire: request shapes, validation (config.h), error types and messages,
 * response JSON. Delivery streams themselves live behind a cp_firehose_backend - the delivery
 * engine in the server, a fake in the unit tests - so this module never touches a stream's
 * data or state directly.
 *
 * Threads: handlers run concurrently on the server's worker threads; every backend callback
 * must be thread-safe.
 */
#ifndef CP_DELIVERY_API_H
#define CP_DELIVERY_API_H

#include <stdint.h>

#include "aws/proto.h"
#include "delivery/config.h"

#define CP_FH_BACKEND_ABI 1
/* Firehose per-call limits (firehose.md 1.9, 7). */
#define CP_FH_MAX_RECORD_BYTES 1024000 /* 1,000 KiB of data per record, before base64 */
#define CP_FH_MAX_BATCH        500
#define CP_FH_MAX_BATCH_BYTES  (4u << 20)
/* A PutRecord RecordId: opaque alphanumerics, like AWS's, derived from the record's position. */
#define CP_FH_RECORD_ID_SIZE 81 /* 80 characters + NUL */
#define CP_FH_MSG_KINESIS_PUT                                                                      \
    "This operation is not permitted on KinesisStreamAsSource delivery stream type."

/* What the API needs from whoever keeps delivery streams. Every callback is required; names are
 * validated DeliveryStreamNames. Errors: return a CP_E* code and fill err->msg where the code
 * says so; the handler turns codes into AWS errors:
 *   CP_ENOTFOUND -> ResourceNotFoundException (the handler words it),
 *   CP_EEXIST -> ResourceInUseException (worded by the handler),
 *   CP_EINUSE -> ResourceInUseException (err->msg), CP_ELIMIT -> LimitExceededException
 *   (err->msg), CP_EINVAL -> InvalidArgumentException (err->msg), CP_EAGAIN ->
 *   ServiceUnavailableException, anything else -> the service's 500. */
typedef struct cp_firehose_backend {
    int abi; /* CP_FH_BACKEND_ABI */
    void *ctx;
    /* Create a stream from a validated config; takes ownership of cfg on every path. A Kinesis
     * source that does not exist: CP_EINVAL with the message. */
    int (*create)(void *ctx, cp_ds_config *cfg, cp_err *err);
    /* A copy of the current config (*cfg owned by the caller, free with cp_ds_config_free)
     * and, if state is not NULL, its status. CP_ENOTFOUND. */
    int (*get)(void *ctx, const char *name, cp_ds_config **cfg, cp_ds_state *state, cp_err *err);
    /* Names in byte order strictly after `after` (NULL: from the first), at most `max`,
     * appended to `names` NUL-separated; *n gets the count. */
    int (*list)(void *ctx, const char *after, size_t max, cp_buf *names, size_t *n, cp_err *err);
    /* Delete (buffered data is discarded, as Firehose does). CP_ENOTFOUND, CP_EINUSE. */
    int (*remove)(void *ctx, const char *name, int allow_force, cp_err *err);
    /* Replace the config with `next` (ownership taken on every path) if the stored version is
     * still `expected_version` (compare-and-set: UpdateDestination and tag changes). A new
     * next->version means a new destination version (objects written from now on carry it).
     * CP_ENOTFOUND, CP_ECONDITION (the stored version moved on). */
    int (*update)(void *ctx, const char *name, uint32_t expected_version, cp_ds_config *next,
                  cp_err *err);
    /* DirectPut: accept n records durably (all or nothing). positions[i] gets an identifier of
     * record i unique within the stream (the API derives RecordIds from it). codes[] comes in
     * zeroed: a backend that can refuse single records sets codes[i] to CP_EAGAIN (throttled,
     * answered per record as ServiceUnavailableException) or another CP_E* (InternalFailure)
     * and still returns CP_OK. CP_ENOTFOUND; CP_EINVAL when the stream is not DirectPut
     * (answered with CP_FH_MSG_KINESIS_PUT); CP_EINUSE when it is not ACTIVE; CP_EAGAIN. */
    int (*put)(void *ctx, const char *name, const cp_slice *records, size_t n, uint64_t *positions,
               int *codes, cp_err *err);
} cp_firehose_backend;

typedef struct cp_firehose_api_cfg {
    const cp_firehose_backend *backend;
    const char *account;    /* 12 digits for ARNs and messages; NULL = "000000000000" */
    cp_ds_parse_opts parse; /* strict, compressions, backup_supported, zoneinfo_dir; region,
                             * account and now are filled per request */
} cp_firehose_api_cfg;

/* Register the Firehose operations on an AWS router. cfg (and what it points to) is borrowed
 * for the router's lifetime. CP_OK, or CP_EEXIST when Firehose_20150804 is already taken. */
int cp_firehose_api_register(cp_aws_router *r, const cp_firehose_api_cfg *cfg);

/* The RecordId PutRecord(Batch) returns for a record accepted at `position` of `stream`:
 * deterministic (a retried call after a crash names the same record the same way) and opaque. */
void cp_firehose_record_id(const char *stream, uint64_t position, char out[CP_FH_RECORD_ID_SIZE]);

#endif
