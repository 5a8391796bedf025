/* SPDX-License-Identifier: MIT */
/*
 * `changepipe demo`: the article's write path on the embedded engine. Chat items are written
 * in BatchWriteItem-sized groups of 25 over K livestreams; every write commits with its change
 * record; the outbox relays the records into an on-demand Kinesis-style stream; the demo then
 * reads every shard back and checks each item arrived exactly once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdc/outbox.h"
#include "cli/cli.h"
#include "core/clock.h"
#include "core/mem.h"

typedef struct demo_opts {
    char *data;
    int64_t items;
    int64_t livestreams;
    int64_t writers;
    int keep;
} demo_opts;

static const cp_config_entry demo_table[] = {
    {"data", CP_CFG_STRING, NULL, 0, 0, offsetof(demo_opts, data), 0,
     "data directory (default: a new temporary directory, removed afterwards)", "DIR"},
    {"items", CP_CFG_INT, "250000", 25, 1e9, offsetof(demo_opts, items), 0,
     "chat items to write", NULL},
    {"livestreams", CP_CFG_INT, "10", 1, 100000, offsetof(demo_opts, livestreams), 0,
     "livestreams (partition keys) the items are spread over", NULL},
    {"writers", CP_CFG_INT, "32", 1, 1024, offsetof(demo_opts, writers), 0,
     "concurrent writer threads, each sending batches of 25", NULL},
    {"keep", CP_CFG_BOOL, "false", 0, 0, offsetof(demo_opts, keep), 0,
     "keep the data directory", NULL},
    {0},
};

#define BATCH 25

typedef struct writer_ctx {
    cp_db *db;
    const demo_opts *o;
    _Atomic int64_t next; /* next item number to claim */
    _Atomic int64_t done;
    _Atomic int failed;
} writer_ctx;

static void chat_item(cp_buf *out, int64_t n, int64_t livestreams)
{
    char live[32], uid[32], user[32];
    snprintf(live, sizeof(live), "live-%lld", (long long) (n % livestreams));
    snprintf(uid, sizeof(uid), "%lld", (long long) (cp_clock_now_ms() * 1000 + n % 1000));
    snprintf(user, sizeof(user), "user-%lld", (long long) (n * 7919 % 5000));
    char idbuf[32];
    snprintf(idbuf, sizeof(idbuf), "%lld", (long long) n);
    cp_item_builder b;
    cp_item_builder_init(&b, out);
    cp_item_begin(&b);
    cp_item_put_name(&b, CP_SLICE("LivestreamID"));
    cp_item_put_scalar(&b, CP_AV_S, cp_slice_str(live));
    cp_item_put_name(&b, CP_SLICE("UID"));
    /* UID must be unique per livestream: the item number makes it so. */
    cp_item_put_scalar(&b, CP_AV_N, cp_slice_str(idbuf));
    cp_item_put_name(&b, CP_SLICE("UserID"));
    cp_item_put_scalar(&b, CP_AV_S, cp_slice_str(user));
    cp_item_put_name(&b, CP_SLICE("Message"));
    cp_item_put_scalar(&b, CP_AV_S,
                       CP_SLICE("\xec\x95\x88\xeb\x85\x95\xed\x95\x98\xec\x84\xb8\xec\x9a\x94! "
                                "hello from the live chat"));
    cp_item_put_name(&b, CP_SLICE("CreatedAt"));
    cp_item_put_scalar(&b, CP_AV_N, cp_slice_str(uid));
    cp_item_end(&b);
}

static void *writer(void *arg)
{
    writer_ctx *w = arg;
    cp_buf items[BATCH];
    cp_write_op ops[BATCH];
    memset(items, 0, sizeof(items));
    for (;;) {
        int64_t first = atomic_fetch_add(&w->next, BATCH);
        if (first >= w->o->items) {
            break;
        }
        int64_t n = w->o->items - first < BATCH ? w->o->items - first : BATCH;
        for (int64_t i = 0; i < n; i++) {
            cp_buf_reset(&items[i]);
            chat_item(&items[i], first + i, w->o->livestreams);
            ops[i] = (cp_write_op){.kind = CP_WRITE_PUT, .table = "ChatMessages",
                                   .item = cp_buf_slice(&items[i])};
        }
        if (cp_db_write(w->db, ops, (size_t) n, 0, NULL) != CP_OK) {
            atomic_store(&w->failed, 1);
            break;
        }
        for (int64_t i = 0; i < n; i++) {
            if (ops[i].rc != CP_OK) {
                atomic_store(&w->failed, 1);
            }
        }
        atomic_fetch_add(&w->done, n);
    }
    for (int i = 0; i < BATCH; i++) {
        cp_buf_free(&items[i]);
    }
    return NULL;
}

static int add_destination(void *ctx, cp_table_info *t, cp_err *err)
{
    (void) err;
    snprintf(t->dest[0].stream_name, CP_NAME_MAX, "%s", (const char *) ctx);
    t->dest[0].active = 1;
    t->ndest = 1;
    return CP_OK;
}

/* Count stream records per livestream and check every change arrived once. */
static int verify_stream(cp_streams *streams, const demo_opts *o, int64_t *per_live,
                         int64_t *dups)
{
    cp_stream_desc *d;
    cp_err err = {0};
    if (cp_streams_describe(streams, CP_SLICE("chat-cdc"), &d, &err) != CP_OK) {
        fprintf(stderr, "describe: %s\n", err.msg);
        return -1;
    }
    size_t cap = (size_t) o->items;
    uint8_t *seen = cp_calloc(cap, 1);
    cp_stream_read r = CP_STREAM_READ_INIT;
    for (size_t i = 0; i < d->nshards; i++) {
        uint64_t pos;
        cp_streams_iterator(streams, CP_SLICE("chat-cdc"), d->shards[i].index,
                            CP_ITER_TRIM_HORIZON, CP_SLICE(""), 0, &pos, NULL);
        for (;;) {
            if (cp_streams_read(streams, CP_SLICE("chat-cdc"), d->shards[i].index, pos, 10000,
                                10 << 20, &r, &err) != CP_OK) {
                fprintf(stderr, "read: %s\n", err.msg);
                break;
            }
            if (r.batch.n == 0) {
                break;
            }
            for (size_t k = 0; k < r.batch.n; k++) {
                cp_slice data = r.batch.recs[k].data;
                static const char live_key[] = "\"Keys\":{\"LivestreamID\":{\"S\":\"live-";
                const char *p = memmem(data.p, data.len, live_key, sizeof(live_key) - 1);
                const char *u = memmem(data.p, data.len, "\"UID\":{\"N\":\"", 12);
                if (!p || !u) {
                    continue;
                }
                int64_t live = atoll(p + sizeof(live_key) - 1), id = atoll(u + 12);
                if (live >= 0 && live < o->livestreams && id >= 0 && id < o->items) {
                    if (seen[id]++) {
                        (*dups)++;
                    } else {
                        per_live[live]++;
                    }
                }
            }
            pos = r.next_pos;
        }
    }
    cp_stream_read_free(&r);
    cp_stream_desc_free(d);
    cp_free(seen);
    return 0;
}

static int rm_rf(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static int demo_run(void *arg, char **rest)
{
    (void) rest;
    demo_opts *o = arg;
    char tmp[] = "/tmp/changepipe-demo-XXXXXX";
    const char *dir = o->data;
    if (!dir) {
        if (!mkdtemp(tmp)) {
            perror("mkdtemp");
            return 1;
        }
        dir = tmp;
    }
    cp_err err = {0};
    cp_db *db = NULL;
    cp_streams *streams = NULL;
    cp_outbox *ob = NULL;
    cp_db_opts dbo = {.dir = dir};
    int status = 1;
    if (cp_db_open(&dbo, &db, &err) != CP_OK || cp_streams_open(dir, NULL, &streams, &err) != CP_OK) {
        fprintf(stderr, "changepipe demo: %s\n", err.msg);
        goto out;
    }
    printf("changepipe demo: table ChatMessages (LivestreamID S, UID N) -> change records -> "
           "on-demand stream chat-cdc\n  data directory: %s\n",
           dir);
    cp_table_info t = {0};
    snprintf(t.name, sizeof(t.name), "ChatMessages");
    snprintf(t.key.hash_name, sizeof(t.key.hash_name), "LivestreamID");
    t.key.hash_type = CP_AV_S;
    snprintf(t.key.range_name, sizeof(t.key.range_name), "UID");
    t.key.range_type = CP_AV_N;
    int rc = cp_db_create_table(db, &t, &err);
    cp_table_info_clear(&t);
    if (rc == CP_OK) {
        rc = cp_streams_create(streams, CP_SLICE("chat-cdc"), CP_STREAM_ON_DEMAND, 0, &err);
    }
    if (rc == CP_OK) {
        rc = cp_db_update_table(db, "ChatMessages", add_destination, "chat-cdc", &err);
    }
    if (rc == CP_OK) {
        rc = cp_outbox_start(db, streams, NULL, &ob, &err);
    }
    if (rc != CP_OK) {
        fprintf(stderr, "changepipe demo: %s (use a fresh --data directory)\n", err.msg);
        goto out;
    }

    writer_ctx w = {.db = db, .o = o};
    pthread_t *th = cp_calloc((size_t) o->writers, sizeof(*th));
    int64_t start = cp_clock_mono_ns();
    for (int64_t i = 0; i < o->writers; i++) {
        pthread_create(&th[i], NULL, writer, &w);
    }
    int64_t last_done = 0, last_t = start;
    int tty = isatty(2);
    while (atomic_load(&w.done) < o->items && !atomic_load(&w.failed)) {
        usleep(200000);
        int64_t now = cp_clock_mono_ns(), done = atomic_load(&w.done);
        if (tty && now - last_t >= 1000000000) {
            fprintf(stderr, "\r  writing: %lld / %lld items, %.0f items/s   ", (long long) done,
                    (long long) o->items, (double) (done - last_done) * 1e9 / (double) (now - last_t));
            last_done = done;
            last_t = now;
        }
    }
    for (int64_t i = 0; i < o->writers; i++) {
        pthread_join(th[i], NULL);
    }
    cp_free(th);
    double write_s = (double) (cp_clock_mono_ns() - start) / 1e9;
    if (tty) {
        fprintf(stderr, "\r%70s\r", "");
    }
    if (atomic_load(&w.failed)) {
        fprintf(stderr, "changepipe demo: a write failed\n");
        goto out;
    }
    printf("  wrote %lld items in %.2f s (%.0f durable items/s, batches of %d, %lld writers)\n",
           (long long) o->items, write_s, (double) o->items / write_s, BATCH,
           (long long) o->writers);
    if (cp_outbox_sync(ob, 120000) != CP_OK) {
        fprintf(stderr, "changepipe demo: the relay did not catch up in 120 s\n");
        goto out;
    }
    double relay_s = (double) (cp_clock_mono_ns() - start) / 1e9;
    cp_outbox_stats st;
    cp_outbox_stats_get(ob, &st);
    printf("  relayed %llu change records to the stream within %.2f s of the first write\n",
           (unsigned long long) st.forwarded, relay_s);

    int64_t *per_live = cp_calloc((size_t) o->livestreams, sizeof(int64_t));
    int64_t dups = 0, total = 0;
    if (verify_stream(streams, o, per_live, &dups) == 0) {
        printf("\n  %-12s %12s %14s\n", "livestream", "items", "stream records");
        for (int64_t i = 0; i < o->livestreams; i++) {
            int64_t want = o->items / o->livestreams + (i < o->items % o->livestreams);
            if (i < 20) {
                printf("  live-%-7lld %12lld %14lld\n", (long long) i, (long long) want,
                       (long long) per_live[i]);
            }
            total += per_live[i];
        }
        int64_t lost = o->items - total;
        printf("\n  lost = %lld, duplicated = %lld\n", (long long) lost, (long long) dups);
        status = lost == 0 && dups == 0 ? 0 : 1;
    }
    cp_free(per_live);
out:
    cp_outbox_stop(ob);
    cp_streams_close(streams);
    cp_db_close(db);
    if (!o->data && !o->keep) {
        rm_rf(dir);
    }
    return status;
}

const cp_cli_command cp_cli_demo = {
    .name = "demo",
    .summary = "write chat items through the store and change capture into a stream, then "
               "verify every item arrived exactly once",
    .usage = NULL,
    .opts = demo_table,
    .opts_size = sizeof(demo_opts),
    .run = demo_run,
};
