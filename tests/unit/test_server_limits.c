/* SPDX-License-Identifier: MIT */
/* Throughput emulation (server/limits.h): token buckets driven through the two API hooks with
 * an injected clock, so every budget, refill and burst is exact. */
#include "cpt.h"

#include <pthread.h>

#include "core/err.h"
#include "server/limits.h"

#define SEC 1000000000LL

static int64_t fake_ns = 1000 * SEC;

static int64_t fake_clock(void *ctx)
{
    (void) ctx;
    return fake_ns;
}

static cp_limits *limits_with(cp_limits_cfg cfg)
{
    cfg.now_ns = fake_clock;
    return cp_limits_new(&cfg);
}

/* One DynamoDB admit: CP_OK or CP_EAGAIN. */
static int dyn(cp_limits *l, const char *table, const char *key, double rcu, double wcu)
{
    const cp_dynamo_throttle *t = cp_limits_dynamo(l);
    cp_dynamo_usage u = {table, cp_slice_str(key), rcu, wcu, 0};
    return t->admit(t->ctx, &u);
}

/* How many consecutive admits of `wcu` write units pass before the first refusal (capped). */
static long writes_until_refused(cp_limits *l, const char *table, const char *key, double wcu)
{
    long n = 0;
    while (n < 10000000 && dyn(l, table, key, 0, wcu) == CP_OK) {
        n++;
    }
    return n;
}

static long reads_until_refused(cp_limits *l, const char *table, const char *key, double rcu)
{
    long n = 0;
    while (n < 10000000 && dyn(l, table, key, rcu, 0) == CP_OK) {
        n++;
    }
    return n;
}

static int kin(cp_limits *l, cp_kinesis_usage_op op, const char *stream, uint32_t shard,
               size_t bytes)
{
    const cp_kinesis_limiter *k = cp_limits_kinesis(l);
    cp_kinesis_usage u = {op,    cp_slice_str(stream), CP_STREAM_ON_DEMAND,
                          shard, CP_SLICE("pk"),       op == CP_KINESIS_USAGE_PUT ? 1 : 0,
                          bytes};
    return k->admit(k->ctx, &u);
}

static long puts_until_refused(cp_limits *l, const char *stream, uint32_t shard, size_t bytes)
{
    long n = 0;
    while (n < 10000000 && kin(l, CP_KINESIS_USAGE_PUT, stream, shard, bytes) == 0) {
        n++;
    }
    return n;
}

/* ------------------------------------------------------------------------------------------ */

static void defaults_partition_write_budget(void)
{
    /* AWS's defaults: a new key holds one second of 1,000 WCU. */
    cp_limits *l = limits_with((cp_limits_cfg){0});
    CPT_EQ_INT(writes_until_refused(l, "Chat", "live-0", 1), 1000);
    CPT_EQ_INT(dyn(l, "Chat", "live-0", 0, 1), CP_EAGAIN);
    /* Another key of the same table has its own partition budget. */
    CPT_EQ_INT(writes_until_refused(l, "Chat", "live-1", 1), 1000);
    cp_limits_stats st;
    cp_limits_get_stats(l, &st);
    CPT_EQ_INT(st.dynamo_admitted, 2000);
    CPT_EQ_INT(st.dynamo_throttled, 3);
    CPT_EQ_INT(st.entries, 3); /* two keys and the table */
    cp_limits_free(l);
}

static void defaults_partition_read_budget(void)
{
    cp_limits *l = limits_with((cp_limits_cfg){0});
    /* 3,000 RCU: 6,000 eventually consistent reads of half a unit; writes are separate. */
    CPT_EQ_INT(reads_until_refused(l, "Chat", "live-0", 0.5), 6000);
    CPT_EQ_INT(dyn(l, "Chat", "live-0", 0, 1), CP_OK);
    cp_limits_free(l);
}

static void refill_over_time(void)
{
    cp_limits *l = limits_with((cp_limits_cfg){0});
    CPT_EQ_INT(writes_until_refused(l, "T", "k", 1), 1000);
    fake_ns += SEC / 1000; /* 1 ms at 1,000 WCU/s: one unit */
    CPT_EQ_INT(writes_until_refused(l, "T", "k", 1), 1);
    fake_ns += SEC / 2;
    CPT_EQ_INT(writes_until_refused(l, "T", "k", 1), 500);
    /* A 4-unit write needs 4 ms of refill, not 3. */
    fake_ns += 3 * SEC / 1000;
    CPT_EQ_INT(dyn(l, "T", "k", 0, 4), CP_EAGAIN);
    fake_ns += SEC / 1000;
    CPT_EQ_INT(dyn(l, "T", "k", 0, 4), CP_OK);
    cp_limits_free(l);
}

static void burst_from_unused_capacity(void)
{
    /* 10 WCU/s, 300 s of burst: idle time accumulates up to 3,000 units, no more. */
    cp_limits *l = limits_with((cp_limits_cfg){.partition_wcu = 10});
    CPT_EQ_INT(writes_until_refused(l, "T", "k", 1), 10);
    fake_ns += 60 * SEC;
    CPT_EQ_INT(writes_until_refused(l, "T", "k", 1), 600);
    fake_ns += 3600 * SEC;
    CPT_EQ_INT(writes_until_refused(l, "T", "k", 1), 3000);
    cp_limits_free(l);
}

static void burst_window_is_configurable(void)
{
    cp_limits *l =
        limits_with((cp_limits_cfg){.partition_wcu = 10, .dynamo_burst_s = 5, .dynamo_start_s = 2});
    CPT_EQ_INT(writes_until_refused(l, "T", "k", 1), 20);
    fake_ns += 3600 * SEC;
    CPT_EQ_INT(writes_until_refused(l, "T", "k", 1), 50);
    cp_limits_free(l);
}

static void table_limit_shared_by_keys(void)
{
    /* 40,000 WCU per table: forty hot keys use it up, the forty-first is refused although its
     * own partition budget is untouched; another table is unaffected. */
    cp_limits *l = limits_with((cp_limits_cfg){0});
    char key[32];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        CPT_EQ_INT(writes_until_refused(l, "Big", key, 1), 1000);
    }
    CPT_EQ_INT(dyn(l, "Big", "key-40", 0, 1), CP_EAGAIN);
    CPT_EQ_INT(dyn(l, "Other", "key-40", 0, 1), CP_OK);
    cp_limits_free(l);
}

static void table_refusal_refunds_partition(void)
{
    cp_limits *l = limits_with((cp_limits_cfg){.partition_wcu = 3, .table_wcu = 5});
    CPT_EQ_INT(writes_until_refused(l, "T", "a", 1), 3); /* table 5 -> 2 */
    CPT_EQ_INT(writes_until_refused(l, "T", "b", 1), 2); /* table empty; b keeps 1 */
    fake_ns += SEC; /* table +5, b +3: 4 if the refused attempt was refunded */
    CPT_EQ_INT(writes_until_refused(l, "T", "b", 1), 4);
    cp_limits_free(l);
}

static void query_and_scan_charge_the_table(void)
{
    /* An empty partition key (Query/Scan) touches only the table bucket. */
    cp_limits *l = limits_with((cp_limits_cfg){.table_rcu = 10});
    CPT_EQ_INT(reads_until_refused(l, "T", "", 1), 10);
    CPT_EQ_INT(dyn(l, "T", "k", 1, 0), CP_EAGAIN); /* the table is empty for keyed reads too */
    cp_limits_stats st;
    cp_limits_get_stats(l, &st);
    CPT_EQ_INT(st.entries, 2); /* T and T/k (its partition was refunded) */
    cp_limits_free(l);
}

static void oversized_unit_runs_into_debt(void)
{
    cp_limits *l = limits_with((cp_limits_cfg){.partition_wcu = 10, .dynamo_burst_s = 1});
    /* 25 units against a 10-unit bucket: admitted from a full bucket, leaving -15. */
    CPT_EQ_INT(dyn(l, "T", "k", 0, 25), CP_OK);
    CPT_EQ_INT(dyn(l, "T", "k", 0, 1), CP_EAGAIN);
    fake_ns += 15 * SEC / 10; /* back to 0 */
    CPT_EQ_INT(dyn(l, "T", "k", 0, 1), CP_EAGAIN);
    fake_ns += SEC / 10;
    CPT_EQ_INT(dyn(l, "T", "k", 0, 1), CP_OK);
    /* Not full: the big unit waits for a full bucket. */
    fake_ns += SEC / 2;
    CPT_EQ_INT(dyn(l, "T", "k", 0, 25), CP_EAGAIN);
    fake_ns += SEC;
    CPT_EQ_INT(dyn(l, "T", "k", 0, 25), CP_OK);
    cp_limits_free(l);
}

static void long_keys_are_distinct(void)
{
    char a[2100], b[2100];
    memset(a, 'x', sizeof(a) - 1);
    a[sizeof(a) - 1] = 0;
    memcpy(b, a, sizeof(a));
    b[sizeof(b) - 2] = 'y';
    cp_limits *l = limits_with((cp_limits_cfg){.partition_wcu = 5});
    CPT_EQ_INT(writes_until_refused(l, "T", a, 1), 5);
    CPT_EQ_INT(writes_until_refused(l, "T", b, 1), 5);
    CPT_EQ_INT(dyn(l, "T", a, 0, 1), CP_EAGAIN);
    cp_limits_stats st;
    cp_limits_get_stats(l, &st);
    CPT_EQ_INT(st.entries, 3);
    cp_limits_free(l);
}

static void bounded_memory_evicts_least_recent(void)
{
    cp_limits *l = limits_with((cp_limits_cfg){.partition_wcu = 2, .max_entries = 4});
    CPT_EQ_INT(writes_until_refused(l, "T", "a", 1), 2); /* entries: T, a */
    CPT_EQ_INT(dyn(l, "T", "b", 0, 1), CP_OK);           /* T, a, b */
    CPT_EQ_INT(dyn(l, "T", "a", 0, 1), CP_EAGAIN);       /* a is touched again: b is oldest */
    CPT_EQ_INT(dyn(l, "T", "c", 0, 1), CP_OK);           /* T, a, b, c */
    CPT_EQ_INT(dyn(l, "T", "d", 0, 1), CP_OK);           /* evicts b */
    cp_limits_stats st;
    cp_limits_get_stats(l, &st);
    CPT_EQ_INT(st.entries, 4);
    CPT_CHECK(st.evicted >= 1);
    /* a survived (still exhausted); b was forgotten and starts afresh with 2 units. */
    CPT_EQ_INT(dyn(l, "T", "a", 0, 1), CP_EAGAIN);
    CPT_EQ_INT(writes_until_refused(l, "T", "b", 1), 2);
    cp_limits_get_stats(l, &st);
    CPT_EQ_INT(st.entries, 4);
    cp_limits_free(l);
}

typedef struct hammer_arg {
    cp_limits *l;
    long admitted;
} hammer_arg;

static void *hammer(void *p)
{
    hammer_arg *a = p;
    for (int i = 0; i < 5000; i++) {
        a->admitted += dyn(a->l, "T", "hot", 0, 1) == CP_OK;
    }
    return NULL;
}

static void concurrent_admits_never_exceed_budget(void)
{
    /* The clock stands still: four threads share exactly one second of 1,000 WCU. */
    cp_limits *l = limits_with((cp_limits_cfg){0});
    pthread_t t[4];
    hammer_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (hammer_arg){l, 0};
        pthread_create(&t[i], NULL, hammer, &a[i]);
    }
    long total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        total += a[i].admitted;
    }
    CPT_EQ_INT(total, 1000);
    cp_limits_stats st;
    cp_limits_get_stats(l, &st);
    CPT_EQ_INT(st.dynamo_admitted, 1000);
    CPT_EQ_INT(st.dynamo_throttled, 19000);
    cp_limits_free(l);
}

/* ------------------------------------------------------------------------------------------ */

static void kinesis_records_per_shard(void)
{
    cp_limits *l = limits_with((cp_limits_cfg){0});
    CPT_EQ_INT(puts_until_refused(l, "orders", 0, 100), 1000);
    /* Other shards and other streams have their own budgets. */
    CPT_EQ_INT(puts_until_refused(l, "orders", 1, 100), 1000);
    CPT_EQ_INT(puts_until_refused(l, "other", 0, 100), 1000);
    fake_ns += SEC / 10;
    CPT_EQ_INT(puts_until_refused(l, "orders", 0, 100), 100);
    cp_limits_stats st;
    cp_limits_get_stats(l, &st);
    CPT_EQ_INT(st.kinesis_admitted, 3100);
    CPT_EQ_INT(st.kinesis_throttled, 4);
    cp_limits_free(l);
}

static void kinesis_bytes_per_shard(void)
{
    cp_limits *l = limits_with((cp_limits_cfg){0});
    /* 1 MiB/s: ten 100 KB records fit (1,024,000 bytes), the eleventh does not. */
    CPT_EQ_INT(puts_until_refused(l, "s", 0, 102400), 10);
    /* Bytes and records are decided together: a tiny record still fits in the 24 KiB left. */
    CPT_EQ_INT(kin(l, CP_KINESIS_USAGE_PUT, "s", 0, 1000), 0);
    fake_ns += SEC;
    /* A record larger than the bucket (1 MiB data + key) goes in from a full bucket. */
    CPT_EQ_INT(kin(l, CP_KINESIS_USAGE_PUT, "s", 0, 1048576 + 256), 0);
    CPT_CHECK(kin(l, CP_KINESIS_USAGE_PUT, "s", 0, 1) != 0);
    cp_limits_free(l);
}

static void kinesis_get_records_calls_and_bytes(void)
{
    cp_limits *l = limits_with((cp_limits_cfg){0});
    const cp_kinesis_limiter *k = cp_limits_kinesis(l);
    CPT_CHECK(k->charge != NULL);
    for (int i = 0; i < 5; i++) {
        CPT_EQ_INT(kin(l, CP_KINESIS_USAGE_GET_RECORDS, "s", 0, 0), 0);
    }
    CPT_CHECK(kin(l, CP_KINESIS_USAGE_GET_RECORDS, "s", 0, 0) != 0);
    /* GetShardIterator has its own 5 calls/s. */
    for (int i = 0; i < 5; i++) {
        CPT_EQ_INT(kin(l, CP_KINESIS_USAGE_GET_ITERATOR, "s", 0, 0), 0);
    }
    CPT_CHECK(kin(l, CP_KINESIS_USAGE_GET_ITERATOR, "s", 0, 0) != 0);
    fake_ns += SEC / 5;
    CPT_EQ_INT(kin(l, CP_KINESIS_USAGE_GET_RECORDS, "s", 0, 0), 0);
    /* That call returned 10 MiB: 8 MiB of debt at 2 MiB/s keeps reads refused for 4 s even
     * though the call bucket refills. */
    cp_kinesis_usage u = {CP_KINESIS_USAGE_GET_RECORDS,
                          CP_SLICE("s"),
                          CP_STREAM_ON_DEMAND,
                          0,
                          CP_SLICE(""),
                          10000,
                          10u << 20};
    k->charge(k->ctx, &u);
    fake_ns += 3 * SEC;
    CPT_CHECK(kin(l, CP_KINESIS_USAGE_GET_RECORDS, "s", 0, 0) != 0);
    fake_ns += SEC;
    CPT_EQ_INT(kin(l, CP_KINESIS_USAGE_GET_RECORDS, "s", 0, 0), 0);
    /* Writes were never affected by reads. */
    CPT_EQ_INT(puts_until_refused(l, "s", 0, 10), 1000);
    cp_limits_free(l);
}

static void hooks_shape(void)
{
    CPT_CHECK(cp_limits_dynamo(NULL) == NULL);
    CPT_CHECK(cp_limits_kinesis(NULL) == NULL);
    cp_limits_free(NULL);
    cp_limits *l = cp_limits_new(NULL); /* the real clock */
    const cp_dynamo_throttle *t = cp_limits_dynamo(l);
    CPT_EQ_INT(t->abi, CP_DYNAMO_THROTTLE_ABI);
    CPT_CHECK(t->ctx == l);
    CPT_CHECK(cp_limits_kinesis(l)->admit != NULL);
    CPT_EQ_INT(dyn(l, "T", "k", 0, 1), CP_OK);
    cp_limits_free(l);
}

CPT_LIST = {
    {"defaults_partition_write_budget", defaults_partition_write_budget},
    {"defaults_partition_read_budget", defaults_partition_read_budget},
    {"refill_over_time", refill_over_time},
    {"burst_from_unused_capacity", burst_from_unused_capacity},
    {"burst_window_is_configurable", burst_window_is_configurable},
    {"table_limit_shared_by_keys", table_limit_shared_by_keys},
    {"table_refusal_refunds_partition", table_refusal_refunds_partition},
    {"query_and_scan_charge_the_table", query_and_scan_charge_the_table},
    {"oversized_unit_runs_into_debt", oversized_unit_runs_into_debt},
    {"long_keys_are_distinct", long_keys_are_distinct},
    {"bounded_memory_evicts_least_recent", bounded_memory_evicts_least_recent},
    {"concurrent_admits_never_exceed_budget", concurrent_admits_never_exceed_budget},
    {"kinesis_records_per_shard", kinesis_records_per_shard},
    {"kinesis_bytes_per_shard", kinesis_bytes_per_shard},
    {"kinesis_get_records_calls_and_bytes", kinesis_get_records_calls_and_bytes},
    {"hooks_shape", hooks_shape},
    {0},
};
