/* SPDX-License-Identifier: MIT */
/*
 * The aws-chunked content encoding of S3 uploads (x-amz-content-sha256:
 * STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], STREAMING-UNSIGNED-PAYLOAD-TRAILER):
 *
 *   <hex size>[;chunk-signature=<sig>]\r\n<bytes>\r\n ... 0[;chunk-signature=<sig>]\r\n
 *   [<trailer name>:<value>\r\n ...]\r\n
 *
 * Decoding yields the exact object bytes plus the trailer fields (x-amz-checksum-*).
 * Chunk and trailer signatures are parsed but NOT verified: the seed signature of the request
 * is verified by the router, and verifying each chunk needs the signing key, which lives in
 * the aws component (a gap to close there).
 */
#ifndef CP_OBJECTS_CHUNKED_H
#define CP_OBJECTS_CHUNKED_H

#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* Receives decoded bytes in order; `p` borrows the encoded input. Return CP_OK to go on,
 * anything negative to stop the decode with that code. */
typedef int (*cp_chunked_sink)(void *ctx, const char *p, size_t len);

/*
 * Decode the aws-chunked body `in`. Payload bytes go to sink(ctx, ...) chunk by chunk.
 * Trailer fields are appended to `trailers` (may be NULL) as "name\0value\0" pairs with the
 * name lower-cased and both sides trimmed; trailer signatures are dropped.
 * *decoded_len (may be NULL) gets the payload size.
 * Returns CP_OK; CP_EINVAL with err->msg for malformed framing (bad size line, a chunk running
 * past the end, missing CRLF, no final zero-size chunk); or the sink's negative code.
 */
int cp_chunked_decode(cp_slice in, cp_chunked_sink sink, void *ctx, cp_buf *trailers,
                      uint64_t *decoded_len, cp_err *err);

/* Value of field `name` (lower case) in a "name\0value\0" list such as `trailers`, or
 * {NULL, 0} when absent. Borrows the list. */
cp_slice cp_chunked_field(cp_slice fields, const char *name);

#endif
