/* SPDX-License-Identifier: MIT */
/* RFC 4648 base64 with padding (Kinesis Data, DynamoDB B, Firehose records). */
#ifndef CP_BASE64_H
#define CP_BASE64_H

#include "core/buf.h"

/* Append the base64 text of `in` to out. */
void cp_base64_encode(cp_slice in, cp_buf *out);
/* Append the decoded bytes of `in` to out. Returns CP_EINVAL on bad characters, bad padding or
 * a length that is not a multiple of 4; out then holds a partial result the caller discards. */
int cp_base64_decode(cp_slice in, cp_buf *out);
/* Decoded size upper bound. */
static inline size_t cp_base64_decoded_max(size_t n)
{
    return n / 4 * 3 + 3;
}

#endif
