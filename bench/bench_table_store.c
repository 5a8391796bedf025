/* SPDX-License-Identifier: MIT */
/*
 * Store write throughput: durable item writes per second through group commit.
 * Writers call cp_db_write with batches of 25 chat items (the BatchWriteItem shape), each
 * acknowledged only once its change record is fsync'd. Prints the median of several runs.
 *
 *   bench_store [seconds-per-run] [runs] [dir]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/mem.h"
#include "table/store.h"

enum { BATCH = 25 };

typedef struct run_arg {
    cp_db *db;
    int thread;
    int64_t deadline_ns;
    uint64_t items;
} run_arg;

static void chat_item(cp_buf *out, int thread, uint64_t n)
{
    char id[32], uid[32], user[32];
    snprintf(id, sizeof(id), "live-%d", (int) (n % 10));
    snprintf(uid, sizeof(uid), "%llu", (unsigned long long) (1764132000000ULL * 1000 + n * 64 +
                                                             (uint64_t) thread));
    snprintf(user, sizeof(user), "user-%llu", (unsigned long long) (n % 5000));
    cp_item_builder b;
    cp_item_builder_init(&b, out);
    cp_item_begin(&b);
    cp_item_put_name(&b, CP_SLICE("LivestreamID"));
    cp_item_put_scalar(&b, CP_AV_S, cp_slice_str(id));
    cp_item_put_name(&b, CP_SLICE("UID"));
    cp_item_put_scalar(&b, CP_AV_N, cp_slice_str(uid));
    cp_item_put_name(&b, CP_SLICE("UserID"));
    cp_item_put_scalar(&b, CP_AV_S, cp_slice_str(user));
    cp_item_put_name(&b, CP_SLICE("Message"));
    cp_item_put_scalar(&b, CP_AV_S,
                       CP_SLICE("\xec\x95\x88\xeb\x85\x95\xed\x95\x98\xec\x84\xb8\xec\x9a\x94 hello "
                                "from the live chat, nice stream!"));
    cp_item_put_name(&b, CP_SLICE("CreatedAt"));
    cp_item_put_scalar(&b, CP_AV_S, CP_SLICE("2026-11-26T05:00:00.000Z"));
    cp_item_end(&b);
}

static void *writer(void *p)
{
    run_arg *a = p;
    cp_buf items[BATCH];
    cp_write_op ops[BATCH];
    memset(items, 0, sizeof(items));
    uint64_t n = 0;
    while (cp_clock_mono_ns() < a->deadline_ns) {
        for (int i = 0; i < BATCH; i++) {
            cp_buf_reset(&items[i]);
            chat_item(&items[i], a->thread, n++);
            ops[i] = (cp_write_op){.kind = CP_WRITE_PUT, .table = "ChatMessages",
                                   .item = cp_buf_slice(&items[i])};
        }
        if (cp_db_write(a->db, ops, BATCH, 0, NULL) != CP_OK) {
            fprintf(stderr, "write failed\n");
            exit(1);
        }
        a->items += BATCH;
    }
    for (int i = 0; i < BATCH; i++) {
        cp_buf_free(&items[i]);
    }
    return NULL;
}

static double run_once(const char *dir, int threads, double seconds, int no_fsync)
{
    char path[512];
    snprintf(path, sizeof(path), "rm -rf '%s'", dir);
    if (system(path) != 0) {
        exit(1);
    }
    cp_db *db;
    cp_err err = {0};
    cp_db_opts o = {.dir = dir, .no_fsync = no_fsync};
    if (cp_db_open(&o, &db, &err) != CP_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(1);
    }
    cp_table_info t = {0};
    snprintf(t.name, sizeof(t.name), "ChatMessages");
    snprintf(t.key.hash_name, sizeof(t.key.hash_name), "LivestreamID");
    t.key.hash_type = CP_AV_S;
    snprintf(t.key.range_name, sizeof(t.key.range_name), "UID");
    t.key.range_type = CP_AV_N;
    cp_db_create_table(db, &t, NULL);
    cp_table_info_clear(&t);
    pthread_t *th = cp_calloc((size_t) threads, sizeof(*th));
    run_arg *args = cp_calloc((size_t) threads, sizeof(*args));
    int64_t start = cp_clock_mono_ns();
    for (int i = 0; i < threads; i++) {
        args[i] = (run_arg){db, i, start + (int64_t) (seconds * 1e9), 0};
        pthread_create(&th[i], NULL, writer, &args[i]);
    }
    uint64_t total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        total += args[i].items;
    }
    double elapsed = (double) (cp_clock_mono_ns() - start) / 1e9;
    cp_db_close(db);
    cp_free(th);
    cp_free(args);
    return (double) total / elapsed;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3;
    int runs = argc > 2 ? atoi(argv[2]) : 3;
    const char *dir = argc > 3 ? argv[3] : "/tmp/changepipe-bench-store";
    int thread_counts[] = {1, 8, 32, 128};
    printf("%-9s %-8s %14s   runs\n", "fsync", "writers", "items/s (med)");
    for (int f = 0; f < 2; f++) {
        for (size_t t = 0; t < sizeof(thread_counts) / sizeof(thread_counts[0]); t++) {
            double r[16];
            for (int i = 0; i < runs && i < 16; i++) {
                r[i] = run_once(dir, thread_counts[t], seconds, f);
            }
            qsort(r, (size_t) runs, sizeof(double), cmp_double);
            printf("%-9s %-8d %14.0f  ", f ? "off" : "on", thread_counts[t], r[runs / 2]);
            for (int i = 0; i < runs; i++) {
                printf(" %.0f", r[i]);
            }
            printf("\n");
            fflush(stdout);
        }
    }
    return 0;
}
