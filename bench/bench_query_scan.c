/* SPDX-License-Identifier: MIT */
/*
 * Scan speed of the query engine over the article's chat rows: N rows (default 250,000, the
 * article's 10 livestreams x 25,000) spread over objects laid out like the dynamic-partitioning
 * delivery stream writes them, then timed queries through the SQLite virtual table.
 *
 *   bench_query_scan [rows] [objects] [--gzip]
 *
 * Prints rows/s per query (best of 3). Never run by ctest; results go in BENCHMARKS.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/buf.h"
#include "objects/bucket.h"
#include "query/query.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void gzip(const cp_buf *in, cp_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    size_t bound = deflateBound(&z, (uLong) in->len);
    cp_buf_reset(out);
    cp_buf_reserve(out, bound);
    z.next_in = (Bytef *) in->p;
    z.avail_in = (uInt) in->len;
    z.next_out = (Bytef *) out->p;
    z.avail_out = (uInt) bound;
    deflate(&z, Z_FINISH);
    out->len = bound - z.avail_out;
    deflateEnd(&z);
}

static int count_cb(void *ctx, const cp_query_result *res, const cp_query_value *row)
{
    (void) res;
    (void) row;
    (*(long *) ctx)++;
    return 0;
}

int main(int argc, char **argv)
{
    long rows = 250000, objects = 10;
    int use_gzip = 0;
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--gzip") == 0) {
            use_gzip = 1;
        } else if (pos++ == 0) {
            rows = atol(argv[i]);
        } else {
            objects = atol(argv[i]);
        }
    }
    if (rows < 1 || objects < 1) {
        fprintf(stderr, "usage: bench_query_scan [rows] [objects] [--gzip]\n");
        return 2;
    }
    char dir[] = "/tmp/cp-bench-query-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    cp_bucket_cfg cfg = {dir, NULL, 0, 0};
    cp_bucket_store *s = NULL;
    cp_err err = {0};
    if (cp_bucket_store_open(&cfg, &s, &err) != CP_OK ||
        cp_bucket_create(s, "chat-bucket", NULL, &err) != CP_OK) {
        fprintf(stderr, "store: %s\n", err.msg);
        return 1;
    }
    cp_buf b = CP_BUF_INIT, gz = CP_BUF_INIT;
    long per = rows / objects, made = 0;
    long long uid = 1764132000000LL * 1000;
    size_t bytes = 0;
    for (long o = 0; o < objects; o++) {
        long n = o + 1 == objects ? rows - made : per;
        cp_buf_reset(&b);
        for (long r = 0; r < n; r++) {
            cp_buf_printf(&b,
                          "{\"LivestreamID\":\"live-%ld\",\"UID\":%lld,\"UserID\":\"user-%ld\","
                          "\"Message\":\"안녕하세요 hello world %ld\",\"CreatedAt\":"
                          "\"2025-11-26T04:40:%02ld.%03ldZ\"}\n",
                          o % 10, uid++, r % 997, r, r % 60, r % 1000);
        }
        made += n;
        bytes += b.len;
        char key[160];
        snprintf(key, sizeof(key), "Livestreams/LivestreamID=live-%ld/2025/11/26/04/part-%ld%s",
                 o % 10, o, use_gzip ? ".gz" : "");
        const cp_buf *body = &b;
        if (use_gzip) {
            gzip(&b, &gz);
            body = &gz;
        }
        if (cp_bucket_put(s, "chat-bucket", cp_slice_str(key), cp_buf_slice(body), NULL, NULL,
                          &err) != CP_OK) {
            fprintf(stderr, "put: %s\n", err.msg);
            return 1;
        }
    }
    printf("%ld rows in %ld objects, %.1f MB of JSON%s\n", rows, objects, (double) bytes / 1e6,
           use_gzip ? " (gzip)" : "");

    cp_query_opts qo = {.data_dir = dir, .store = s};
    cp_query *q = NULL;
    if (cp_query_open(&qo, &q, &err) != CP_OK ||
        cp_query_each(q,
                      "CREATE EXTERNAL TABLE chat (LivestreamID string, UID bigint, UserID "
                      "string, Message string, CreatedAt string) ROW FORMAT SERDE "
                      "'org.openx.data.jsonserde.JsonSerDe' LOCATION "
                      "'s3://chat-bucket/Livestreams/'",
                      count_cb, NULL, &err) != CP_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return 1;
    }
    const char *queries[] = {
        "SELECT count(*) FROM chat",
        "SELECT LivestreamID, count(*) FROM chat GROUP BY LivestreamID",
        "SELECT LivestreamID, count(*), count(DISTINCT UID) FROM chat GROUP BY LivestreamID",
        "SELECT * FROM chat",
    };
    for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
        double best = 1e30;
        long out_rows = 0;
        for (int rep = 0; rep < 3; rep++) {
            out_rows = 0;
            double t0 = now_s();
            if (cp_query_each(q, queries[i], count_cb, &out_rows, &err) != CP_OK) {
                fprintf(stderr, "query: %s\n", err.msg);
                return 1;
            }
            double t = now_s() - t0;
            best = t < best ? t : best;
        }
        printf("%-84s %8.3f s  %10.0f rows/s  (%ld result rows)\n", queries[i], best,
               (double) rows / best, out_rows);
    }
    cp_query_close(q);
    cp_bucket_store_close(s);
    cp_buf_free(&b);
    cp_buf_free(&gz);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
