/* SPDX-License-Identifier: MIT */
/*
 * Processors: the transform plugins of a delivery stream (Firehose's ProcessingConfiguration
 * plus changepipe's native DynamoDB processor). Each is a const ops struct (STYLE.md 4.6); the
 * engine owns the instance, the plugin owns its ctx. The engine runs them in Firehose's fixed
 * order whatever order the configuration lists them in:
 *   RecordDeAggregation -> Lambda / Native -> MetadataExtraction -> (prefix, buffer) ->
 *   AppendDelimiterToRecord -> compression.
 *
 * Contract of apply: it sees every record of the batch whose result is CP_REC_OK and may
 * replace its data (bytes in the batch arena), add records (de-aggregation), set partition
 * keys, or mark it DROPPED/FAILED (with error type, code and message as Firehose words them).
 * Records already DROPPED or FAILED must be left alone. Return CP_OK when the batch was
 * processed (per-record failures included), CP_RETRY for a transient whole-batch failure (the
 * engine backs off and calls again with the same input, counting attempts), CP_EFAIL when the
 * whole batch failed permanently after the plugin's own retries (the engine then fails every
 * record with the code the plugin left in err->msg as "<code>: <message>").
 */
#ifndef CP_PROCESSOR_H
#define CP_PROCESSOR_H

#include "core/err.h"
#include "delivery/batch.h"

#define CP_PROCESSOR_ABI 1

/* One ParameterName/ParameterValue pair, borrowed. */
typedef struct cp_processor_param {
    const char *name;
    const char *value;
} cp_processor_param;

/* What the engine hands a processor at init (borrowed for the call). */
typedef struct cp_processor_env {
    const char *delivery_stream_arn;
    const char *source_stream_arn; /* NULL for DirectPut */
    const char *region;
    int kinesis_source;            /* 1: records carry kinesisRecordMetadata */
    /* Invoke a Lambda function synchronously (the server's Lambda service or an HTTP endpoint
     * mapped in the config). Thread-safe. Sets *function_error when the function itself failed.
     * Returns CP_OK, CP_ENOTFOUND (no such function), CP_EAGAIN (throttled), CP_ETOOBIG,
     * or -errno / CP_EIO for transport failures. */
    int (*invoke)(void *invoke_ctx, const char *function_arn, cp_slice payload, cp_buf *response,
                  int *function_error, cp_err *err);
    void *invoke_ctx;
} cp_processor_env;

typedef struct cp_processor_ops {
    int abi;             /* CP_PROCESSOR_ABI */
    const char *type;    /* Firehose processor Type ("Lambda", "MetadataExtraction", ...) */
    const char *summary; /* one line for docs */
    int order;           /* position in the fixed pipeline order (lower runs first) */

    /* Validate parameters and build state. CP_EINVAL with an InvalidArgumentException message
     * for bad parameters. On CP_OK *ctx is the plugin's. Engine thread; may not block long. */
    int (*init)(const cp_processor_param *params, size_t nparams, const cp_processor_env *env,
                void **ctx, cp_err *err);
    /* Process a batch (see the contract above). Delivery worker thread; may block (Lambda). */
    int (*apply)(void *ctx, cp_batch *batch, cp_err *err);
    /* Release ctx. Cannot fail. */
    void (*destroy)(void *ctx);
} cp_processor_ops;

/* The built-in processors (src/delivery/processors/<name>.c). */
extern const cp_processor_ops cp_processor_deagg;     /* RecordDeAggregation */
extern const cp_processor_ops cp_processor_lambda;    /* Lambda */
extern const cp_processor_ops cp_processor_native;    /* changepipe DynamoDBChangeRecord */
extern const cp_processor_ops cp_processor_jq;        /* MetadataExtraction */
extern const cp_processor_ops cp_processor_delimiter; /* AppendDelimiterToRecord */

/* The processor for a Firehose Type, or NULL. */
const cp_processor_ops *cp_processor_find(const char *type);

#endif
