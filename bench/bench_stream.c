/* SPDX-License-Identifier: MIT */
/*
 * Stream put throughput: durable records per second through cp_streams_put on the embedded
 * backend, with N threads putting batches of `batch` ~200-byte records (PutRecords shape) into
 * a 4-shard stream. Every put returns only after its records are fsynced; concurrent putters
 * to a shard share fsyncs (group commit). Short by default; not run by ctest.
 *
 *   bench_stream [seconds] [threads] [batch] [dir] [nofsync]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "stream/backends/embedded.h"
#include "stream/stream.h"

typedef struct run_arg {
    cp_streams *s;
    int thread, batch;
    int64_t deadline_ns;
    uint64_t records, calls, failed;
} run_arg;

static void *putter(void *p)
{
    run_arg *a = p;
    cp_stream_put *recs = calloc((size_t) a->batch, sizeof(*recs));
    cp_stream_put_result *res = calloc((size_t) a->batch, sizeof(*res));
    char(*pk)[32] = calloc((size_t) a->batch, 32);
    char data[200];
    memset(data, 'x', sizeof(data));
    uint64_t n = 0;
    while (cp_clock_mono_ns() < a->deadline_ns) {
        for (int i = 0; i < a->batch; i++) {
            snprintf(pk[i], 32, "live-%d-%llu", a->thread, (unsigned long long) (n++ % 10));
            recs[i] = (cp_stream_put){cp_slice_str(pk[i]), cp_slice_of(data, sizeof(data)),
                                      CP_SLICE(""), 0};
        }
        size_t failed = 0;
        cp_err err = {0};
        if (cp_streams_put(a->s, CP_SLICE("bench"), recs, (size_t) a->batch, res, &failed, &err) !=
            CP_OK) {
            fprintf(stderr, "put: %s\n", err.msg);
            break;
        }
        a->records += (uint64_t) a->batch - failed;
        a->failed += failed;
        a->calls++;
    }
    free(pk);
    free(res);
    free(recs);
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    int threads = argc > 2 ? atoi(argv[2]) : 8;
    int batch = argc > 3 ? atoi(argv[3]) : 25;
    char tmpl[] = "/tmp/bench-stream-XXXXXX";
    const char *dir = argc > 4 ? argv[4] : mkdtemp(tmpl);
    int nofsync = argc > 5 && strcmp(argv[5], "nofsync") == 0;
    if (!dir || threads < 1 || threads > 256 || batch < 1 || batch > 500) {
        fprintf(stderr, "usage: bench_stream [seconds] [threads 1..256] [batch 1..500] [dir] "
                        "[nofsync]\n");
        return 2;
    }
    cp_embedded_opts eo = {.segment_bytes = 0, .no_fsync = nofsync};
    cp_streams_opts o = {.backend_opts = &eo, .no_fsync = nofsync};
    cp_streams *s;
    cp_err err = {0};
    if (cp_streams_open(dir, &o, &s, &err) != CP_OK ||
        cp_streams_create(s, CP_SLICE("bench"), CP_STREAM_PROVISIONED, 4, &err) != CP_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    run_arg *a = calloc((size_t) threads, sizeof(*a));
    pthread_t *t = calloc((size_t) threads, sizeof(*t));
    int64_t start = cp_clock_mono_ns();
    for (int i = 0; i < threads; i++) {
        a[i] = (run_arg){s, i, batch, start + (int64_t) (seconds * 1e9), 0, 0, 0};
        pthread_create(&t[i], NULL, putter, &a[i]);
    }
    uint64_t records = 0, calls = 0, failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        records += a[i].records;
        calls += a[i].calls;
        failed += a[i].failed;
    }
    double el = (double) (cp_clock_mono_ns() - start) / 1e9;
    printf("threads=%d batch=%d fsync=%s: %.0f records/s, %.0f puts/s, %llu failed, "
           "%.2f ms/put\n",
           threads, batch, nofsync ? "off" : "on", (double) records / el, (double) calls / el,
           (unsigned long long) failed, calls ? el * 1000.0 * threads / (double) calls : 0.0);
    cp_streams_delete(s, CP_SLICE("bench"), NULL);
    cp_streams_close(s);
    if (argc <= 4) {
        char sub[64];
        snprintf(sub, sizeof(sub), "%s/streams", dir);
        rmdir(sub); /* our mkdtemp: emptied by the delete */
        rmdir(dir);
    }
    free(t);
    free(a);
    return 0;
}
