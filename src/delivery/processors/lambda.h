/* SPDX-License-Identifier: MIT */
/*
 * Extra entry points of the Lambda processor (cp_processor_lambda, processor.h) for the engine:
 * the processing-buffer hints it must honour before calling apply, and a test seam for the
 * retry backoff.
 */
#ifndef CP_PROCESSOR_LAMBDA_H
#define CP_PROCESSOR_LAMBDA_H

#include <stddef.h>

/* Lambda's synchronous invocation cap for the request and for the response (6 MiB). */
#define CP_LAMBDA_PAYLOAD_MAX ((size_t) 6 * 1024 * 1024)
/* Outstanding invocations per apply call: Firehose allows 5 per shard [DG limits]. */
#define CP_LAMBDA_MAX_INFLIGHT 5

typedef struct cp_lambda_hints {
    size_t buffer_bytes; /* BufferSizeInMBs in bytes (MiB-based): record bytes per invocation */
    int interval_s;      /* BufferIntervalInSeconds: the longest a record waits for its batch */
    int retries;         /* NumberOfRetries */
} cp_lambda_hints;

/* The hints of a ctx that cp_processor_lambda.init returned. Borrows ctx; any thread. The
 * engine should call apply once buffer_bytes of records are pending or the oldest pending
 * record is interval_s old; apply itself splits whatever it gets into invocations of at most
 * buffer_bytes of record data and at most CP_LAMBDA_PAYLOAD_MAX of request. */
void cp_processor_lambda_hints(const void *ctx, cp_lambda_hints *out);

#ifdef CP_TESTING
/* Backoff before retry n (1-based) is base_ms * 2^(n-1), capped at max_ms. Defaults 1000 and
 * 10000. Test seam only; process-wide. */
void cp_processor_lambda_set_backoff(int base_ms, int max_ms);
#endif

#endif
