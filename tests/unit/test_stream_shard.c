/* SPDX-License-Identifier: MIT */
/* shard and seq: hash-key ranges as AWS computes them, MD5 routing, ids, sequence numbers. */
#include "cpt.h"

#include "stream/seq.h"
#include "stream/shard.h"

static void fmt(cp_hashkey k, char *out)
{
    cp_hashkey_format(k, out);
}

/* Ranges published by AWS DescribeStream for 1..4 shards. */
static void even_ranges_match_aws(void)
{
    static const char *const want[4][4][2] = {
        {{"0", "340282366920938463463374607431768211455"}},
        {{"0", "170141183460469231731687303715884105727"},
         {"170141183460469231731687303715884105728", "340282366920938463463374607431768211455"}},
        {{"0", "113427455640312821154458202477256070484"},
         {"113427455640312821154458202477256070485", "226854911280625642308916404954512140969"},
         {"226854911280625642308916404954512140970", "340282366920938463463374607431768211455"}},
        {{"0", "85070591730234615865843651857942052863"},
         {"85070591730234615865843651857942052864", "170141183460469231731687303715884105727"},
         {"170141183460469231731687303715884105728", "255211775190703847597530955573826158591"},
         {"255211775190703847597530955573826158592", "340282366920938463463374607431768211455"}},
    };
    for (uint32_t n = 1; n <= 4; n++) {
        for (uint32_t i = 0; i < n; i++) {
            cp_hashkey a, z;
            char sa[CP_HASHKEY_STR_MAX], sz[CP_HASHKEY_STR_MAX];
            cp_shard_even_range(n, i, &a, &z);
            fmt(a, sa);
            fmt(z, sz);
            CPT_EQ_STR(sa, want[n - 1][i][0]);
            CPT_EQ_STR(sz, want[n - 1][i][1]);
        }
    }
}

/* Any n: ranges tile the space (each starts right after the previous one ends). */
static void even_ranges_tile(void)
{
    uint32_t ns[] = {5, 7, 10, 64, 100, 1000};
    for (size_t t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
        cp_shard_range *r = malloc(ns[t] * sizeof(*r));
        for (uint32_t i = 0; i < ns[t]; i++) {
            r[i].index = i;
            cp_shard_even_range(ns[t], i, &r[i].start, &r[i].end);
        }
        cp_shard_map *m = NULL;
        cp_err err = {0};
        CPT_EQ_INT(cp_shard_map_from(r, ns[t], &m, &err), CP_OK);
        CPT_EQ_INT(cp_shard_map_count(m), ns[t]);
        cp_shard_map_free(m);
        free(r);
    }
}

/* MD5 digests from an independent implementation (Python hashlib) and the spec's example. */
static void md5_routing_known_values(void)
{
    static const struct {
        const char *pk, *key;
        uint32_t s2, s3, s4;
    } v[] = {
        {"user-42", "157107139746365290205026809710278036035", 0, 1, 1},
        {"", "281949768489412648962353822266799178366", 1, 2, 3},
        {"a", "16955237001963240173058271559858726497", 0, 0, 0},
        {"live-7", "200448116294194117533446408979060060663", 1, 1, 2},
        {"\xe6\x97\xa5\xe6\x9c\xac", "103341369634063465466164320543046703539", 0, 0, 1},
    };
    cp_shard_map *m2 = cp_shard_map_new(2), *m3 = cp_shard_map_new(3), *m4 = cp_shard_map_new(4);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char s[CP_HASHKEY_STR_MAX];
        cp_slice pk = cp_slice_str(v[i].pk);
        fmt(cp_hashkey_of_partition_key(pk), s);
        CPT_EQ_STR(s, v[i].key);
        CPT_EQ_INT(cp_shard_find(m2, pk), v[i].s2);
        CPT_EQ_INT(cp_shard_find(m3, pk), v[i].s3);
        CPT_EQ_INT(cp_shard_find(m4, pk), v[i].s4);
    }
    cp_shard_map_free(m2);
    cp_shard_map_free(m3);
    cp_shard_map_free(m4);
}

static void boundaries_route_inclusively(void)
{
    cp_shard_map *m = cp_shard_map_new(3);
    const struct {
        const char *key;
        uint32_t shard;
    } v[] = {
        {"0", 0},
        {"113427455640312821154458202477256070484", 0},
        {"113427455640312821154458202477256070485", 1},
        {"226854911280625642308916404954512140969", 1},
        {"226854911280625642308916404954512140970", 2},
        {"340282366920938463463374607431768211455", 2},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        cp_hashkey k;
        CPT_EQ_INT(cp_hashkey_parse(cp_slice_str(v[i].key), &k, NULL), CP_OK);
        CPT_EQ_INT(cp_shard_find_key(m, k), v[i].shard);
    }
    cp_shard_map_free(m);
}

static void explicit_hash_key_validation(void)
{
    const char *good[] = {"0", "1", "340282366920938463463374607431768211455",
                          "99999999999999999999"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cp_hashkey k;
        char back[CP_HASHKEY_STR_MAX];
        CPT_EQ_INT(cp_hashkey_parse(cp_slice_str(good[i]), &k, NULL), CP_OK);
        fmt(k, back);
        CPT_EQ_STR(back, good[i]);
    }
    const char *bad[] = {"",   "-1",  "340282366920938463463374607431768211456", "01", "1.5", "1e3",
                         " 1", "abc", "3402823669209384634633746074317682114550"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cp_hashkey k;
        cp_err err = {0};
        CPT_EQ_INT(cp_hashkey_parse(cp_slice_str(bad[i]), &k, &err), CP_EINVAL);
        CPT_CHECK(strstr(err.msg, "[0, 2^128-1]") != NULL);
    }
}

static void map_rejects_gaps_and_overlaps(void)
{
    cp_shard_range r[2];
    r[0].index = 0;
    r[1].index = 1;
    cp_shard_even_range(2, 0, &r[0].start, &r[0].end);
    cp_shard_even_range(2, 1, &r[1].start, &r[1].end);
    cp_shard_map *m = NULL;
    cp_err err = {0};
    cp_hashkey start1 = r[1].start;
    r[1].start.lo += 1; /* a gap of one key */
    CPT_EQ_INT(cp_shard_map_from(r, 2, &m, &err), CP_EINVAL);
    r[1].start = r[0].end; /* an overlap of one key */
    CPT_EQ_INT(cp_shard_map_from(r, 2, &m, &err), CP_EINVAL);
    r[1].start = start1;
    CPT_EQ_INT(cp_shard_map_from(r, 2, &m, &err), CP_OK);
    CPT_EQ_INT(cp_shard_find_key(m, r[0].end), 0);
    CPT_EQ_INT(cp_shard_find_key(m, start1), 1);
    cp_shard_map_free(m);
    CPT_EQ_INT(cp_shard_map_from(r, 0, &m, &err), CP_EINVAL);
}

static void shard_ids(void)
{
    char id[CP_SHARD_ID_MAX];
    cp_shard_id_format(0, id);
    CPT_EQ_STR(id, "shardId-000000000000");
    cp_shard_id_format(4294967295u, id);
    CPT_EQ_STR(id, "shardId-004294967295");
    uint32_t x;
    CPT_EQ_INT(cp_shard_id_parse(CP_SLICE("shardId-000000000012"), &x), CP_OK);
    CPT_EQ_INT(x, 12);
    CPT_EQ_INT(cp_shard_id_parse(CP_SLICE("shardId-00000000012"), &x), CP_EINVAL);
    CPT_EQ_INT(cp_shard_id_parse(CP_SLICE("shardId-00000000001x"), &x), CP_EINVAL);
    CPT_EQ_INT(cp_shard_id_parse(CP_SLICE("shardId-999999999999"), &x), CP_EINVAL);
    CPT_EQ_INT(cp_shard_id_parse(CP_SLICE("shard-000000000012xx"), &x), CP_EINVAL);
}

static void sequence_numbers(void)
{
    char a[CP_SEQ_STR_MAX], b[CP_SEQ_STR_MAX];
    cp_seq_format(3, 17, a);
    CPT_EQ_STR(a, "40000000003"
                  "00000000000000000017");
    uint32_t sh;
    uint64_t v;
    CPT_EQ_INT(cp_seq_parse(cp_slice_str(a), &sh, &v, NULL), CP_OK);
    CPT_EQ_INT(sh, 3);
    CPT_EQ_INT(v, 17);
    /* Fixed width: string order is numeric order within a shard. */
    uint64_t vals[] = {0, 1, 9, 10, 99, 100, 123456789, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i + 1 < sizeof(vals) / sizeof(vals[0]); i++) {
        cp_seq_format(7, vals[i], a);
        cp_seq_format(7, vals[i + 1], b);
        CPT_EQ_INT(strlen(a), CP_SEQ_DIGITS);
        CPT_CHECK(strcmp(a, b) < 0);
        CPT_EQ_INT(cp_seq_parse(cp_slice_str(b), &sh, &v, NULL), CP_OK);
        CPT_EQ_INT(v == vals[i + 1], 1);
    }
    cp_seq_format(UINT32_MAX, UINT64_MAX, a);
    CPT_EQ_INT(cp_seq_parse(cp_slice_str(a), &sh, &v, NULL), CP_OK);
    CPT_EQ_INT(sh, UINT32_MAX);
    CPT_CHECK(v == UINT64_MAX);
    const char *bad[] = {"",
                         "0",
                         "49628566489653659107048838082246518393102916603510521906",
                         "3000000000300000000000000000017",
                         "400000000030000000000000000001",
                         "40000000003000000000000000000017",
                         "4000000000300000000000000000x17",
                         "4999999999900000000000000000017",  /* shard > u32 */
                         "4000000000399999999999999999999"}; /* value > u64 */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cp_err err = {0};
        CPT_EQ_INT(cp_seq_parse(cp_slice_str(bad[i]), &sh, &v, &err), CP_EINVAL);
        CPT_CHECK(err.msg[0] != 0);
    }
}

CPT_LIST = {
    {"even_ranges_match_aws", even_ranges_match_aws},
    {"even_ranges_tile", even_ranges_tile},
    {"md5_routing_known_values", md5_routing_known_values},
    {"boundaries_route_inclusively", boundaries_route_inclusively},
    {"explicit_hash_key_validation", explicit_hash_key_validation},
    {"map_rejects_gaps_and_overlaps", map_rejects_gaps_and_overlaps},
    {"shard_ids", shard_ids},
    {"sequence_numbers", sequence_numbers},
    {0},
};
