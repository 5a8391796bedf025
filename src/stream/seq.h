/* SPDX-License-Identifier: MIT */
/*
 * seq: Kinesis sequence numbers as decimal strings. Inside changepipe a sequence number is a
 * (shard index, u64) pair; the u64 comes from the stream backend and strictly increases within
 * a shard (the embedded backend uses seglog position + 1). On the wire it is rendered with a
 * fixed width, so string order equals numeric order:
 *
 *     "4" | shard index, 10 digits | per-shard value, 20 digits      (31 digits in all)
 *
 * The leading 4 keeps the model's pattern 0|[1-9]\d{0,128} (no leading zero); the embedded
 * shard index lets GetShardIterator reject a number used on the wrong shard, as AWS does.
 * Value 0 is each shard's StartingSequenceNumber: below every record, and valid for
 * AT_/AFTER_SEQUENCE_NUMBER before any record exists. Pure functions; any thread.
 */
#ifndef CP_STREAM_SEQ_H
#define CP_STREAM_SEQ_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define CP_SEQ_DIGITS  31
#define CP_SEQ_STR_MAX 32 /* digits + NUL */

/* Render (shard, value) into out (NUL-terminated, always CP_SEQ_DIGITS long). */
void cp_seq_format(uint32_t shard, uint64_t value, char out[CP_SEQ_STR_MAX]);

/* Parse a rendered sequence number. CP_EINVAL (err: "Invalid SequenceNumber ...") for anything
 * that cp_seq_format could not have produced: wrong length, non-digits, wrong leading digit,
 * shard index or value out of range. */
int cp_seq_parse(cp_slice s, uint32_t *shard, uint64_t *value, cp_err *err);

#endif
