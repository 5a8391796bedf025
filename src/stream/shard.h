/* SPDX-License-Identifier: MIT */
/*
 * shard: Kinesis hash-key arithmetic and shard routing. A record's hash key is the MD5 of its
 * partition key read as an unsigned big-endian 128-bit integer (or the caller's ExplicitHashKey);
 * it goes to the open shard whose inclusive [start, end] range contains it. CreateStream with N
 * shards splits 0..2^128-1 evenly exactly as AWS does (width floor(2^128 / N), the last shard
 * ending at 2^128-1), so hash ranges and routing match real Kinesis key for key.
 *
 * Everything here is pure computation: no I/O, no global state. A cp_shard_map is immutable
 * after construction and may be shared by any number of threads.
 */
#ifndef CP_STREAM_SHARD_H
#define CP_STREAM_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* An unsigned 128-bit hash key. */
typedef struct cp_hashkey {
    uint64_t hi; /* most significant 64 bits */
    uint64_t lo;
} cp_hashkey;

#define CP_HASHKEY_MAX ((cp_hashkey){UINT64_MAX, UINT64_MAX}) /* 2^128 - 1 */

/* Room for the decimal form of any hash key: 39 digits plus the NUL. */
#define CP_HASHKEY_STR_MAX 40

/* "shardId-" + 12 digits + NUL. */
#define CP_SHARD_ID_MAX 21

/* -1, 0 or 1 as a is below, equal to or above b. */
int cp_hashkey_cmp(cp_hashkey a, cp_hashkey b);

/* Hash key of a partition key: MD5 of its bytes as a big-endian 128-bit integer. */
cp_hashkey cp_hashkey_of_partition_key(cp_slice partition_key);

/* Parse an ExplicitHashKey / StartingHashKey: decimal, no sign, no leading zeros (the model's
 * pattern 0|[1-9]\d{0,38}), value in [0, 2^128-1]. CP_EINVAL otherwise, with err holding the
 * AWS wording ("Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1].
 * Specified value was <s>."), truncated to fit. */
int cp_hashkey_parse(cp_slice s, cp_hashkey *out, cp_err *err);

/* Decimal form into out (NUL-terminated); returns its length. */
size_t cp_hashkey_format(cp_hashkey k, char out[CP_HASHKEY_STR_MAX]);

/* The inclusive range of shard i (0 <= i < n, n >= 1) when 2^128 is split evenly over n shards
 * as CreateStream and UpdateShardCount(UNIFORM_SCALING) do. */
void cp_shard_even_range(uint32_t n, uint32_t i, cp_hashkey *start, cp_hashkey *end);

/* "shardId-000000000007" for index 7 (12 zero-padded digits, as AWS). */
void cp_shard_id_format(uint32_t index, char out[CP_SHARD_ID_MAX]);
/* Inverse of cp_shard_id_format: exactly "shardId-" and 12 digits. CP_EINVAL otherwise. */
int cp_shard_id_parse(cp_slice s, uint32_t *index);

/* One routable (open) shard. */
typedef struct cp_shard_range {
    uint32_t index;   /* shard index: the 12 digits of its id */
    cp_hashkey start; /* inclusive */
    cp_hashkey end;   /* inclusive */
} cp_shard_range;

/* An immutable set of open shards that together cover 0..2^128-1 without overlap. */
typedef struct cp_shard_map cp_shard_map;

/* Returns a new map of n evenly split shards with indexes 0..n-1 (n >= 1); free with
 * cp_shard_map_free. */
cp_shard_map *cp_shard_map_new(uint32_t n);

/* Returns (in *out) a new map over arbitrary ranges (borrowed, copied, any order). They must
 * tile 0..2^128-1 exactly: CP_EINVAL on a gap, an overlap, or n == 0. */
int cp_shard_map_from(const cp_shard_range *ranges, size_t n, cp_shard_map **out, cp_err *err);

/* NULL is a no-op. */
void cp_shard_map_free(cp_shard_map *m);

/* Number of shards and the i-th by ascending start (borrowed; valid while the map lives). */
size_t cp_shard_map_count(const cp_shard_map *m);
const cp_shard_range *cp_shard_map_at(const cp_shard_map *m, size_t i);

/* Index of the shard owning a hash key / a partition key. Never fails on a valid map. */
uint32_t cp_shard_find_key(const cp_shard_map *m, cp_hashkey key);
uint32_t cp_shard_find(const cp_shard_map *m, cp_slice partition_key);

#endif
