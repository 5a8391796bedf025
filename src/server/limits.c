/* SPDX-License-Identifier: MIT */
/*
 * Token-bucket throughput emulation behind the DynamoDB and Kinesis API hooks
 * (`serve --emulate-limits`). Buckets refill lazily from a monotonic clock when touched, so an
 * idle limiter costs nothing; they live in a striped, bounded hash map with per-stripe LRU.
 */
#include "server/limits.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/mem.h"

#define NSLOTS_MAX  5  /* token buckets one entry holds */
#define INLINE_KEY  64 /* longer keys are stored as their SHA-256 */
#define MAX_STRIPES 64
#define EPS         1e-9 /* refills are sums of products of doubles: forgive rounding */

/* Entry kinds: the first byte of every key, so a table never meets a partition of the same
 * name. Digested keys set the top bit of that byte, so they never equal an inline key. */
enum { K_PARTITION = 'p', K_TABLE = 't', K_SHARD = 's', K_DIGEST = 0x80 };

/* Slots of DynamoDB entries (partition keys and tables). */
enum { D_READ, D_WRITE };
/* Slots of Kinesis shard entries. */
enum { S_PUT_BYTES, S_PUT_RECORDS, S_GET_CALLS, S_GET_BYTES, S_ITER_CALLS };

typedef struct profile {
    double rate[NSLOTS_MAX];  /* tokens per second */
    double cap[NSLOTS_MAX];   /* most tokens held */
    double start[NSLOTS_MAX]; /* tokens of a new entry */
} profile;

typedef struct entry {
    struct entry *chain; /* next in the hash slot */
    struct entry *newer; /* LRU neighbours within the stripe */
    struct entry *older;
    uint64_t hash;
    int64_t last_ns;           /* when tokens were last brought up to date */
    double tokens[NSLOTS_MAX]; /* may be negative: debt from an oversized unit or a charge */
    size_t klen;
    unsigned char key[];
} entry;

typedef struct stripe {
    pthread_mutex_t mu;
    entry **slots;
    size_t mask;
    size_t n, max;
    entry *newest, *oldest;
    char pad[64]; /* keep neighbouring stripes' locks off one cache line */
} stripe;

struct cp_limits {
    cp_limits_cfg cfg;
    profile dyn_partition, dyn_table, shard;
    stripe *stripes;
    size_t nstripes;
    cp_dynamo_throttle dynamo_hook;
    cp_kinesis_limiter kinesis_hook;
    _Atomic uint64_t dyn_ok, dyn_no, kin_ok, kin_no, evicted;
    _Atomic size_t entries;
};

/* A key being looked up: kind, name, NUL, then the kind's own bytes (partition key bytes or
 * the shard index). Names (tables, streams) never contain NUL, so the layout is unambiguous. */
typedef struct lkey {
    unsigned char b[INLINE_KEY];
    size_t len;
    uint64_t hash;
} lkey;

static void make_key(lkey *k, int kind, const char *name, size_t name_len, const void *rest,
                     size_t rest_len)
{
    size_t total = 1 + name_len + 1 + rest_len;
    unsigned char *p = total <= INLINE_KEY ? k->b : cp_malloc(total);
    p[0] = (unsigned char) kind;
    memcpy(p + 1, name, name_len);
    p[1 + name_len] = 0;
    if (rest_len) {
        memcpy(p + 2 + name_len, rest, rest_len);
    }
    if (p == k->b) {
        k->len = total;
    } else {
        /* Long partition keys (up to 2 KiB) would make memory per entry unbounded in
         * practice; a digest keeps entries small and collisions out of reach. */
        k->b[0] = (unsigned char) (kind | K_DIGEST);
        cp_sha256(p, total, k->b + 1);
        k->len = 33;
        cp_free(p);
    }
    k->hash = cp_fnv1a64(k->b, k->len);
}

/* ------------------------------------------------------------------------------------------
 * The bounded map.
 * ---------------------------------------------------------------------------------------- */

static stripe *stripe_of(cp_limits *l, const lkey *k)
{
    /* High bits pick the stripe, low bits the slot, so the two stay independent. */
    return &l->stripes[(k->hash >> 58) & (l->nstripes - 1)];
}

static void lru_unlink(stripe *s, entry *e)
{
    if (e->newer) {
        e->newer->older = e->older;
    } else {
        s->newest = e->older;
    }
    if (e->older) {
        e->older->newer = e->newer;
    } else {
        s->oldest = e->newer;
    }
    e->newer = e->older = NULL;
}

static void lru_push(stripe *s, entry *e)
{
    e->older = s->newest;
    e->newer = NULL;
    if (s->newest) {
        s->newest->newer = e;
    }
    s->newest = e;
    if (!s->oldest) {
        s->oldest = e;
    }
}

static void evict_oldest(cp_limits *l, stripe *s)
{
    entry *e = s->oldest;
    entry **pp = &s->slots[e->hash & s->mask];
    while (*pp != e) {
        pp = &(*pp)->chain;
    }
    *pp = e->chain;
    lru_unlink(s, e);
    s->n--;
    cp_free(e);
    atomic_fetch_sub_explicit(&l->entries, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->evicted, 1, memory_order_relaxed);
}

static void refill(entry *e, const profile *p, int64_t now)
{
    /* Threads read the clock before taking the lock, so `now` may trail last_ns slightly. */
    if (now <= e->last_ns) {
        return;
    }
    double dt = (double) (now - e->last_ns) / 1e9;
    for (int i = 0; i < NSLOTS_MAX; i++) {
        double t = e->tokens[i] + p->rate[i] * dt;
        e->tokens[i] = t < p->cap[i] ? t : p->cap[i];
    }
    e->last_ns = now;
}

/* The entry for k, brought up to date, most recent in its stripe; created full of p->start
 * when absent and `create` is set (else NULL). Caller holds s->mu. */
static entry *lookup(cp_limits *l, stripe *s, const lkey *k, const profile *p, int64_t now,
                     int create)
{
    entry **head = &s->slots[k->hash & s->mask];
    for (entry *e = *head; e; e = e->chain) {
        if (e->hash == k->hash && e->klen == k->len && memcmp(e->key, k->b, k->len) == 0) {
            lru_unlink(s, e);
            lru_push(s, e);
            refill(e, p, now);
            return e;
        }
    }
    if (!create) {
        return NULL;
    }
    if (s->n >= s->max) {
        evict_oldest(l, s);
    }
    entry *e = cp_malloc(sizeof(*e) + k->len);
    memset(e, 0, sizeof(*e));
    e->hash = k->hash;
    e->last_ns = now;
    memcpy(e->tokens, p->start, sizeof(e->tokens));
    e->klen = k->len;
    memcpy(e->key, k->b, k->len);
    e->chain = *head;
    *head = e;
    lru_push(s, e);
    s->n++;
    atomic_fetch_add_explicit(&l->entries, 1, memory_order_relaxed);
    return e;
}

/* ------------------------------------------------------------------------------------------
 * Bucket operations. `need[i] > 0` asks for that many tokens from slot i; a slot in
 * `nodebt` (bit mask) must merely not be in debt. All or nothing.
 * ---------------------------------------------------------------------------------------- */

static int admits(const entry *e, const profile *p, const double *need, unsigned nodebt)
{
    for (int i = 0; i < NSLOTS_MAX; i++) {
        if (need[i] > 0) {
            /* A unit larger than the bucket waits for a full bucket, then runs into debt,
             * rather than being refused forever. */
            double want = need[i] < p->cap[i] ? need[i] : p->cap[i];
            if (e->tokens[i] + EPS < want) {
                return 0;
            }
        }
        if ((nodebt & (1u << i)) && e->tokens[i] + EPS < 0) {
            return 0;
        }
    }
    return 1;
}

static int take(cp_limits *l, const lkey *k, const profile *p, const double *need, unsigned nodebt,
                int64_t now)
{
    stripe *s = stripe_of(l, k);
    pthread_mutex_lock(&s->mu);
    entry *e = lookup(l, s, k, p, now, 1);
    int ok = admits(e, p, need, nodebt);
    if (ok) {
        for (int i = 0; i < NSLOTS_MAX; i++) {
            if (need[i] > 0) {
                e->tokens[i] -= need[i];
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

/* Give tokens back (signed: a negative amount charges). Refunds stop at capacity; an entry
 * evicted in the meantime is not recreated for a refund, only for a charge. */
static void give(cp_limits *l, const lkey *k, const profile *p, const double *delta, int64_t now)
{
    int charge = 0;
    for (int i = 0; i < NSLOTS_MAX; i++) {
        charge |= delta[i] < 0;
    }
    stripe *s = stripe_of(l, k);
    pthread_mutex_lock(&s->mu);
    entry *e = lookup(l, s, k, p, now, charge);
    for (int i = 0; e && i < NSLOTS_MAX; i++) {
        double t = e->tokens[i] + delta[i];
        e->tokens[i] = t < p->cap[i] ? t : p->cap[i];
    }
    pthread_mutex_unlock(&s->mu);
}

static int64_t now_of(const cp_limits *l)
{
    return l->cfg.now_ns(l->cfg.clock_ctx);
}

/* ------------------------------------------------------------------------------------------
 * DynamoDB: the partition key's bucket, then the table's. Query/Scan name no partition (the
 * hook passes an empty key) and are charged to the table only.
 * ---------------------------------------------------------------------------------------- */

static int dynamo_admit(void *ctx, const cp_dynamo_usage *u)
{
    cp_limits *l = ctx;
    int64_t now = now_of(l);
    double need[NSLOTS_MAX] = {0};
    /* Negative or NaN estimates count as nothing (the comparisons are false for NaN). */
    need[D_READ] = u->read_units > 0 ? u->read_units : 0;
    need[D_WRITE] = u->write_units > 0 ? u->write_units : 0;
    const char *table = u->table ? u->table : "";
    size_t tlen = strlen(table);
    lkey pk, tk;
    int ok = 1;
    if (u->hash_key.len) {
        make_key(&pk, K_PARTITION, table, tlen, u->hash_key.p, u->hash_key.len);
        ok = take(l, &pk, &l->dyn_partition, need, 0, now);
    }
    if (ok) {
        make_key(&tk, K_TABLE, table, tlen, NULL, 0);
        ok = take(l, &tk, &l->dyn_table, need, 0, now);
        if (!ok && u->hash_key.len) {
            /* The table refused: the partition did no work either. */
            give(l, &pk, &l->dyn_partition, need, now);
        }
    }
    atomic_fetch_add_explicit(ok ? &l->dyn_ok : &l->dyn_no, 1, memory_order_relaxed);
    return ok ? CP_OK : CP_EAGAIN;
}

/* ------------------------------------------------------------------------------------------
 * Kinesis: one entry per stream shard holds the write, read and iterator buckets, so a
 * record's bytes and count are decided together.
 * ---------------------------------------------------------------------------------------- */

static void shard_key(lkey *k, const cp_kinesis_usage *u)
{
    unsigned char idx[4] = {(unsigned char) u->shard, (unsigned char) (u->shard >> 8),
                            (unsigned char) (u->shard >> 16), (unsigned char) (u->shard >> 24)};
    make_key(k, K_SHARD, u->stream.p ? u->stream.p : "", u->stream.len, idx, sizeof(idx));
}

static int kinesis_admit(void *ctx, const cp_kinesis_usage *u)
{
    cp_limits *l = ctx;
    double need[NSLOTS_MAX] = {0};
    unsigned nodebt = 0;
    switch (u->op) {
    case CP_KINESIS_USAGE_PUT:
        need[S_PUT_BYTES] = (double) u->bytes;
        need[S_PUT_RECORDS] = u->records ? (double) u->records : 1;
        break;
    case CP_KINESIS_USAGE_GET_RECORDS:
        /* The size of the answer is unknown yet: admit while the byte bucket is not in debt
         * and charge what was returned afterwards (kinesis_charge). */
        need[S_GET_CALLS] = 1;
        nodebt = 1u << S_GET_BYTES;
        break;
    case CP_KINESIS_USAGE_GET_ITERATOR:
        need[S_ITER_CALLS] = 1;
        break;
    default:
        return 0;
    }
    lkey k;
    shard_key(&k, u);
    int ok = take(l, &k, &l->shard, need, nodebt, now_of(l));
    atomic_fetch_add_explicit(ok ? &l->kin_ok : &l->kin_no, 1, memory_order_relaxed);
    return ok ? 0 : 1;
}

static void kinesis_charge(void *ctx, const cp_kinesis_usage *u)
{
    cp_limits *l = ctx;
    if (u->op != CP_KINESIS_USAGE_GET_RECORDS || !u->bytes) {
        return;
    }
    double delta[NSLOTS_MAX] = {0};
    delta[S_GET_BYTES] = -(double) u->bytes;
    lkey k;
    shard_key(&k, u);
    give(l, &k, &l->shard, delta, now_of(l));
}

/* ------------------------------------------------------------------------------------------
 * Lifecycle.
 * ---------------------------------------------------------------------------------------- */

static int64_t mono_ns(void *ctx)
{
    (void) ctx;
    return cp_clock_mono_ns();
}

static double or_default(double v, double def)
{
    return v > 0 ? v : def;
}

static void set_slot(profile *p, int i, double rate, double cap_s, double start_s)
{
    p->rate[i] = rate;
    p->cap[i] = rate * cap_s;
    p->start[i] = rate * (start_s < cap_s ? start_s : cap_s);
}

cp_limits *cp_limits_new(const cp_limits_cfg *cfg)
{
    cp_limits *l = cp_calloc(1, sizeof(*l));
    if (cfg) {
        l->cfg = *cfg;
    }
    cp_limits_cfg *c = &l->cfg;
    c->partition_rcu = or_default(c->partition_rcu, 3000);
    c->partition_wcu = or_default(c->partition_wcu, 1000);
    c->table_rcu = or_default(c->table_rcu, 40000);
    c->table_wcu = or_default(c->table_wcu, 40000);
    c->dynamo_burst_s = or_default(c->dynamo_burst_s, 300);
    c->dynamo_start_s = or_default(c->dynamo_start_s, 1);
    c->shard_write_bytes = or_default(c->shard_write_bytes, 1048576);
    c->shard_write_records = or_default(c->shard_write_records, 1000);
    c->shard_read_bytes = or_default(c->shard_read_bytes, 2097152);
    c->shard_read_calls = or_default(c->shard_read_calls, 5);
    c->shard_iterator_calls = or_default(c->shard_iterator_calls, 5);
    if (!c->max_entries) {
        c->max_entries = 65536;
    }
    if (!c->now_ns) {
        c->now_ns = mono_ns;
        c->clock_ctx = NULL;
    }

    /* DynamoDB keeps up to 300 s of unused capacity for bursts; a bucket starts with one
     * second's worth so that a key hammered from the start is throttled at once, as a hot key
     * is on AWS, and earns its burst only by running below the rate. */
    set_slot(&l->dyn_partition, D_READ, c->partition_rcu, c->dynamo_burst_s, c->dynamo_start_s);
    set_slot(&l->dyn_partition, D_WRITE, c->partition_wcu, c->dynamo_burst_s, c->dynamo_start_s);
    set_slot(&l->dyn_table, D_READ, c->table_rcu, c->dynamo_burst_s, c->dynamo_start_s);
    set_slot(&l->dyn_table, D_WRITE, c->table_wcu, c->dynamo_burst_s, c->dynamo_start_s);
    /* Kinesis limits are per second with no burst window: buckets hold (and start with) one
     * second of capacity. */
    set_slot(&l->shard, S_PUT_BYTES, c->shard_write_bytes, 1, 1);
    set_slot(&l->shard, S_PUT_RECORDS, c->shard_write_records, 1, 1);
    set_slot(&l->shard, S_GET_CALLS, c->shard_read_calls, 1, 1);
    set_slot(&l->shard, S_GET_BYTES, c->shard_read_bytes, 1, 1);
    set_slot(&l->shard, S_ITER_CALLS, c->shard_iterator_calls, 1, 1);

    /* Stripes of at least 64 entries each (up to 64 stripes): small maps keep one stripe and
     * so an exact LRU, large ones spread their locks. */
    size_t ns = 1;
    while (ns < MAX_STRIPES && ns * 2 * 64 <= c->max_entries) {
        ns *= 2;
    }
    l->nstripes = ns;
    l->stripes = cp_calloc(ns, sizeof(*l->stripes));
    size_t per = c->max_entries / ns ? c->max_entries / ns : 1;
    size_t nslots = 1;
    while (nslots < per) {
        nslots *= 2;
    }
    for (size_t i = 0; i < ns; i++) {
        stripe *s = &l->stripes[i];
        pthread_mutex_init(&s->mu, NULL);
        s->slots = cp_calloc(nslots, sizeof(*s->slots));
        s->mask = nslots - 1;
        s->max = per;
    }
    l->dynamo_hook = (cp_dynamo_throttle){CP_DYNAMO_THROTTLE_ABI, dynamo_admit, l};
    l->kinesis_hook = (cp_kinesis_limiter){l, kinesis_admit, kinesis_charge};
    return l;
}

void cp_limits_free(cp_limits *l)
{
    if (!l) {
        return;
    }
    for (size_t i = 0; i < l->nstripes; i++) {
        stripe *s = &l->stripes[i];
        for (entry *e = s->newest, *next; e; e = next) {
            next = e->older;
            cp_free(e);
        }
        cp_free(s->slots);
        pthread_mutex_destroy(&s->mu);
    }
    cp_free(l->stripes);
    cp_free(l);
}

const cp_dynamo_throttle *cp_limits_dynamo(cp_limits *l)
{
    return l ? &l->dynamo_hook : NULL;
}

const cp_kinesis_limiter *cp_limits_kinesis(cp_limits *l)
{
    return l ? &l->kinesis_hook : NULL;
}

void cp_limits_get_stats(cp_limits *l, cp_limits_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->dynamo_admitted = atomic_load_explicit(&l->dyn_ok, memory_order_relaxed);
    out->dynamo_throttled = atomic_load_explicit(&l->dyn_no, memory_order_relaxed);
    out->kinesis_admitted = atomic_load_explicit(&l->kin_ok, memory_order_relaxed);
    out->kinesis_throttled = atomic_load_explicit(&l->kin_no, memory_order_relaxed);
    out->evicted = atomic_load_explicit(&l->evicted, memory_order_relaxed);
    out->entries = atomic_load_explicit(&l->entries, memory_order_relaxed);
}
