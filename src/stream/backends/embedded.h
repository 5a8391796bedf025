/* SPDX-License-Identifier: MIT */
/*
 * embedded: the built-in stream backend. Each shard is one cp_seglog in
 * <data>/streams/<name>/shardId-NNNNNNNNNNNN/; a record's sequence value is its seglog
 * position + 1 (so 0 stays free for StartingSequenceNumber), its arrival time is the frame
 * timestamp, and the payload carries source_id, partition key and data. Concurrent appends to a
 * shard share fsyncs through seglog's group commit.
 */
#ifndef CP_STREAM_BACKENDS_EMBEDDED_H
#define CP_STREAM_BACKENDS_EMBEDDED_H

#include <stddef.h>

#include "stream/backend.h"

/* Options (cp_stream_backend_args.opts); NULL means all defaults. */
typedef struct cp_embedded_opts {
    size_t segment_bytes; /* seglog segment size: the unit of retention trimming; 0 = 64 MiB */
    int no_fsync;         /* 1: skip fsync (tests and benchmarks only; never the default) */
} cp_embedded_opts;

extern const cp_stream_backend_ops cp_stream_backend_embedded;

#endif
