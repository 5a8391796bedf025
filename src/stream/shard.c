/* SPDX-License-Identifier: MIT */
/*
 * shard: 128-bit hash-key arithmetic (GCC's unsigned __int128 inside this file only; the public
 * type is a hi/lo pair) and routing of hash keys to open shards by binary search.
 */
#include "stream/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"

__extension__ typedef unsigned __int128 u128;

static u128 to128(cp_hashkey k)
{
    return (u128) k.hi << 64 | k.lo;
}

static cp_hashkey from128(u128 v)
{
    return (cp_hashkey){(uint64_t) (v >> 64), (uint64_t) v};
}

int cp_hashkey_cmp(cp_hashkey a, cp_hashkey b)
{
    if (a.hi != b.hi) {
        return a.hi < b.hi ? -1 : 1;
    }
    if (a.lo != b.lo) {
        return a.lo < b.lo ? -1 : 1;
    }
    return 0;
}

cp_hashkey cp_hashkey_of_partition_key(cp_slice partition_key)
{
    unsigned char d[16];
    cp_md5(partition_key.p ? partition_key.p : "", partition_key.len, d);
    return (cp_hashkey){cp_load_u64be(d), cp_load_u64be(d + 8)};
}

static int bad_key(cp_slice s, cp_err *err)
{
    int shown = s.len > 64 ? 64 : (int) s.len;
    return cp_err_set(err, CP_EINVAL,
                      "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: "
                      "[0, 2^128-1]. Specified value was %.*s%s.",
                      shown, s.p ? s.p : "", s.len > 64 ? "..." : "");
}

int cp_hashkey_parse(cp_slice s, cp_hashkey *out, cp_err *err)
{
    if (s.len == 0 || s.len > 39 || (s.len > 1 && s.p[0] == '0')) {
        return bad_key(s, err);
    }
    u128 v = 0;
    const u128 max = ~(u128) 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            return bad_key(s, err);
        }
        unsigned d = (unsigned) (s.p[i] - '0');
        if (v > (max - d) / 10) {
            return bad_key(s, err); /* above 2^128-1 */
        }
        v = v * 10 + d;
    }
    *out = from128(v);
    return CP_OK;
}

size_t cp_hashkey_format(cp_hashkey k, char out[CP_HASHKEY_STR_MAX])
{
    char tmp[CP_HASHKEY_STR_MAX];
    size_t n = 0;
    u128 v = to128(k);
    do {
        tmp[n++] = (char) ('0' + (unsigned) (v % 10));
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    out[n] = 0;
    return n;
}

void cp_shard_even_range(uint32_t n, uint32_t i, cp_hashkey *start, cp_hashkey *end)
{
    const u128 max = ~(u128) 0;
    if (n <= 1) {
        *start = from128(0);
        *end = from128(max);
        return;
    }
    /* floor(2^128 / n) without 129-bit arithmetic: 2^128 = max + 1, so the quotient gains one
     * exactly when max % n == n - 1. For n = 3 this gives the AWS boundaries ...484/...485 and
     * ...969/...970. */
    u128 w = max / n + (max % n == (u128) n - 1 ? 1 : 0);
    *start = from128(w * i);
    *end = i + 1 == n ? from128(max) : from128(w * (i + 1) - 1);
}

void cp_shard_id_format(uint32_t index, char out[CP_SHARD_ID_MAX])
{
    snprintf(out, CP_SHARD_ID_MAX, "shardId-%012u", index);
}

int cp_shard_id_parse(cp_slice s, uint32_t *index)
{
    if (s.len != 20 || memcmp(s.p, "shardId-", 8) != 0) {
        return CP_EINVAL;
    }
    uint64_t v = 0;
    for (size_t i = 8; i < 20; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            return CP_EINVAL;
        }
        v = v * 10 + (uint64_t) (s.p[i] - '0');
    }
    if (v > UINT32_MAX) {
        return CP_EINVAL;
    }
    *index = (uint32_t) v;
    return CP_OK;
}

/* ---------------------------------------------------------------- map */

struct cp_shard_map {
    size_t n;
    cp_shard_range r[]; /* ascending start, tiling the key space */
};

cp_shard_map *cp_shard_map_new(uint32_t n)
{
    if (n == 0) {
        n = 1;
    }
    cp_shard_map *m = cp_malloc(sizeof(*m) + n * sizeof(m->r[0]));
    m->n = n;
    for (uint32_t i = 0; i < n; i++) {
        m->r[i].index = i;
        cp_shard_even_range(n, i, &m->r[i].start, &m->r[i].end);
    }
    return m;
}

static int cmp_range(const void *a, const void *b)
{
    return cp_hashkey_cmp(((const cp_shard_range *) a)->start, ((const cp_shard_range *) b)->start);
}

int cp_shard_map_from(const cp_shard_range *ranges, size_t n, cp_shard_map **out, cp_err *err)
{
    *out = NULL;
    if (n == 0) {
        return cp_err_set(err, CP_EINVAL, "a stream needs at least one open shard");
    }
    cp_shard_map *m = cp_malloc(sizeof(*m) + n * sizeof(m->r[0]));
    m->n = n;
    memcpy(m->r, ranges, n * sizeof(m->r[0]));
    qsort(m->r, n, sizeof(m->r[0]), cmp_range);
    /* Tiling check: starts at 0, each range begins right after its predecessor, ends at max. */
    u128 expect = 0;
    for (size_t i = 0; i < n; i++) {
        u128 s = to128(m->r[i].start), e = to128(m->r[i].end);
        if (s != expect || e < s || (i + 1 < n && e == ~(u128) 0)) {
            cp_shard_map_free(m);
            return cp_err_set(err, CP_EINVAL, "open shard ranges do not tile the hash key space");
        }
        expect = e + 1;
    }
    if (to128(m->r[n - 1].end) != ~(u128) 0) {
        cp_shard_map_free(m);
        return cp_err_set(err, CP_EINVAL, "open shard ranges do not tile the hash key space");
    }
    *out = m;
    return CP_OK;
}

void cp_shard_map_free(cp_shard_map *m)
{
    cp_free(m);
}

size_t cp_shard_map_count(const cp_shard_map *m)
{
    return m->n;
}

const cp_shard_range *cp_shard_map_at(const cp_shard_map *m, size_t i)
{
    return i < m->n ? &m->r[i] : NULL;
}

uint32_t cp_shard_find_key(const cp_shard_map *m, cp_hashkey key)
{
    /* Last range whose start <= key; the ranges tile the space so it also contains the key. */
    size_t lo = 0, hi = m->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp_hashkey_cmp(m->r[mid].start, key) <= 0) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return m->r[lo].index;
}

uint32_t cp_shard_find(const cp_shard_map *m, cp_slice partition_key)
{
    return cp_shard_find_key(m, cp_hashkey_of_partition_key(partition_key));
}
