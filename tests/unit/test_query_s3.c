/* SPDX-License-Identifier: MIT */
/*
 * The query engine reading through an S3-compatible endpoint: changepipe's own S3 API
 * (objects/s3api.c) served in-process on port 0 over the bucket store, with a front handler
 * that counts object GETs (to prove pruning happens before any object is fetched) and can
 * answer 503 SlowDown on cue.
 */
#include "cpt.h"

#include <pthread.h>
#include <zlib.h>

#include "http/server.h"
#include "objects/bucket.h"
#include "objects/s3api.h"
#include "query/query.h"
#include "query/source.h"

#define BUCKET "chat-bucket"

typedef struct fixture {
    cp_bucket_store *store;
    cp_s3api *api;
    cp_http_server *srv;
    char endpoint[64];
    pthread_mutex_t mu;
    int gets;      /* object GETs (not listings) */
    int lists;     /* ListObjectsV2 requests */
    int fail_gets; /* answer this many object GETs with 503 SlowDown */
} fixture;

static fixture fx;

static int front(void *ctx, const cp_http_req *req, cp_http_resp *resp)
{
    (void) ctx;
    int is_get = req->method.len == 3 && memcmp(req->method.p, "GET", 3) == 0;
    int is_list = req->query.len && memmem(req->query.p, req->query.len, "list-type", 9);
    int fail = 0;
    pthread_mutex_lock(&fx.mu);
    if (is_get && is_list) {
        fx.lists++;
    } else if (is_get) {
        fx.gets++;
        if (fx.fail_gets > 0) {
            fx.fail_gets--;
            fail = 1;
        }
    }
    pthread_mutex_unlock(&fx.mu);
    if (fail) {
        static const char doc[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>"
                                  "SlowDown</Code><Message>Please reduce your request rate."
                                  "</Message></Error>";
        cp_http_resp_set(resp, 503, "application/xml", CP_SLICE(doc));
        return CP_OK;
    }
    return cp_s3api_handle(fx.api, req, resp);
}

static void fx_start(void)
{
    memset(&fx, 0, sizeof(fx));
    pthread_mutex_init(&fx.mu, NULL);
    cp_err err = {0};
    cp_bucket_cfg bcfg = {.data_dir = cpt_tmpdir()};
    if (cp_bucket_store_open(&bcfg, &fx.store, &err) != CP_OK) {
        CPT_FAIL_AT("store: %s", err.msg);
    }
    CPT_EQ_INT(cp_bucket_create(fx.store, BUCKET, NULL, &err), CP_OK);
    fx.api = cp_s3api_new(fx.store, NULL);
    cp_http_cfg hcfg = {.host = "127.0.0.1", .port = 0, .handler = front, .drain_timeout_s = 5};
    if (cp_http_server_open(&hcfg, &fx.srv, &err) != CP_OK) {
        CPT_FAIL_AT("server: %s", err.msg);
    }
    snprintf(fx.endpoint, sizeof(fx.endpoint), "http://127.0.0.1:%u", cp_http_server_port(fx.srv));
}

static void fx_stop(void)
{
    cp_http_server_close(fx.srv);
    cp_s3api_free(fx.api);
    cp_bucket_store_close(fx.store);
    pthread_mutex_destroy(&fx.mu);
}

static int gets(void)
{
    pthread_mutex_lock(&fx.mu);
    int n = fx.gets;
    pthread_mutex_unlock(&fx.mu);
    return n;
}

static void put(const char *key, cp_slice data)
{
    cp_err err = {0};
    if (cp_bucket_put(fx.store, BUCKET, cp_slice_str(key), data, NULL, NULL, &err) != CP_OK) {
        CPT_FAIL_AT("put %s: %s", key, err.msg);
    }
}

static void gzip_into(cp_slice in, cp_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    CPT_EQ_INT(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t bound = deflateBound(&z, (uLong) in.len);
    cp_buf_reset(out);
    cp_buf_reserve(out, bound);
    z.next_in = (Bytef *) in.p;
    z.avail_in = (uInt) in.len;
    z.next_out = (Bytef *) out->p;
    z.avail_out = (uInt) bound;
    CPT_EQ_INT(deflate(&z, Z_FINISH), Z_STREAM_END);
    out->len = bound - z.avail_out;
    deflateEnd(&z);
}

static const char *run(cp_query *q, const char *sql)
{
    static char *text;
    free(text);
    text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cp_err err = {0};
    int rc = cp_query_exec(q, sql, f, &err);
    fclose(f);
    if (rc != CP_OK) {
        CPT_FAIL_AT("query failed (%d): %s\n  %s", rc, cp_query_errmsg(q), sql);
    }
    return text;
}

static void article_query_over_the_s3_api(void)
{
    fx_start();
    cp_buf b = CP_BUF_INIT, gz = CP_BUF_INIT;
    for (int l = 0; l < 4; l++) {
        for (int k = 0; k < 2; k++) {
            cp_buf_reset(&b);
            for (int r = 0; r < 25; r++) {
                cp_buf_printf(
                    &b, "{\"LivestreamID\":\"live-%d\",\"UID\":%lld,\"Message\":\"안녕 %d\"}\n", l,
                    1764132000000000LL + l * 1000 + k * 100 + r, r);
            }
            char key[128];
            snprintf(key, sizeof(key), "Livestreams/LivestreamID=live-%d/2025/11/26/part-%d%s", l,
                     k, k ? ".gz" : "");
            if (k) {
                gzip_into(cp_buf_slice(&b), &gz);
                put(key, cp_buf_slice(&gz));
            } else {
                put(key, cp_buf_slice(&b));
            }
        }
    }
    put("Livestreams/LivestreamID=live-0/empty", CP_SLICE(""));
    cp_query_opts o = {.data_dir = cpt_tmpdir(),
                       .endpoint = fx.endpoint,
                       .access_key = "AKIDQUERYTEST",
                       .secret_key = "query-test-secret",
                       .format = CP_QUERY_FORMAT_CSV};
    cp_query *q = NULL;
    cp_err err = {0};
    CPT_EQ_INT(cp_query_open(&o, &q, &err), CP_OK);
    run(q, "CREATE EXTERNAL TABLE chat (LivestreamID string, UID bigint, Message string) "
           "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
           "LOCATION 's3://chat-bucket/Livestreams/';"
           "CREATE EXTERNAL TABLE chat_p (uid bigint) PARTITIONED BY (livestreamid string) "
           "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
           "LOCATION 's3://chat-bucket/Livestreams/'");
    int before = gets();
    CPT_EQ_STR(run(q, "SELECT LivestreamID, count(*), count(DISTINCT uid), max(uid) FROM chat "
                      "GROUP BY 1 ORDER BY 1"),
               "livestreamid,count(*),count(DISTINCT uid),max(uid)\n"
               "live-0,50,50,1764132000000124\nlive-1,50,50,1764132000001124\n"
               "live-2,50,50,1764132000002124\nlive-3,50,50,1764132000003124\n");
    CPT_EQ_INT(gets() - before, 9); /* every object once, the empty one included */

    /* Pruning happens in the listing: only live-2's two objects are fetched. */
    before = gets();
    CPT_EQ_STR(run(q, "SELECT count(*) FROM chat_p WHERE livestreamid = 'live-2'"),
               "count(*)\n50\n");
    CPT_EQ_INT(gets() - before, 2);
    cp_query_stats st;
    cp_query_get_stats(q, &st);
    CPT_CHECK(st.list_calls >= 3);

    /* A transient 503 on a GET is retried. */
    pthread_mutex_lock(&fx.mu);
    fx.fail_gets = 1;
    pthread_mutex_unlock(&fx.mu);
    CPT_EQ_STR(run(q, "SELECT count(*) FROM chat_p WHERE livestreamid IN ('live-1')"),
               "count(*)\n50\n");

    /* A missing bucket is named. */
    run(q, "CREATE EXTERNAL TABLE nob (a int) STORED AS JSONFILE "
           "LOCATION 's3://no-such-bucket/x/'");
    FILE *f = fopen("/dev/null", "w");
    CPT_EQ_INT(cp_query_exec(q, "SELECT * FROM nob", f, &err), CP_EINVAL);
    fclose(f);
    CPT_CHECK(strstr(cp_query_errmsg(q), "The specified bucket does not exist: no-such-bucket"));
    cp_query_close(q);
    cp_buf_free(&b);
    cp_buf_free(&gz);
    fx_stop();
}

static void objects_are_read_in_ranges(void)
{
    fx_start();
    cp_buf b = CP_BUF_INIT, gz = CP_BUF_INIT;
    for (int i = 0; i < 3000; i++) {
        cp_buf_printf(&b, "{\"i\":%d,\"s\":\"%08x\"}\n", i, i * 2654435761u);
    }
    gzip_into(cp_buf_slice(&b), &gz);
    put("big.gz", cp_buf_slice(&gz));
    put("plain.json", cp_buf_slice(&b));
    cp_source src;
    cp_err err = {0};
    cp_source_s3_cfg cfg = {fx.endpoint, NULL, "AK", "SK", NULL, 4096};
    CPT_EQ_INT(cp_source_s3_new(&cfg, &src, &err), CP_OK);
    cp_source_lines *l = cp_source_lines_new();
    const char *keys[] = {"big.gz", "plain.json"};
    size_t sizes[] = {gz.len, b.len};
    for (int k = 0; k < 2; k++) {
        int before = gets();
        CPT_EQ_INT(cp_source_lines_open(l, &src, BUCKET, cp_slice_str(keys[k]), &err), CP_OK);
        cp_slice line;
        int n = 0, rc;
        while ((rc = cp_source_lines_next(l, &line, &err)) == 1) {
            char want[64];
            snprintf(want, sizeof(want), "{\"i\":%d,\"s\":\"%08x\"}", n, n * 2654435761u);
            CPT_EQ_MEM(line.p, line.len, want, strlen(want));
            n++;
        }
        CPT_EQ_INT(rc, 0);
        CPT_EQ_INT(n, 3000);
        CPT_EQ_INT(cp_source_lines_bytes(l), sizes[k]);
        CPT_EQ_INT(gets() - before, (int) ((sizes[k] + 4095) / 4096));
    }
    /* A missing key fails when read. */
    CPT_EQ_INT(cp_source_lines_open(l, &src, BUCKET, CP_SLICE("nope"), &err), CP_OK);
    cp_slice line;
    CPT_EQ_INT(cp_source_lines_next(l, &line, &err), CP_ENOTFOUND);
    cp_source_lines_free(l);
    cp_source_free(&src);

    cp_source_s3_cfg bad = {"ftp://x", NULL, "AK", "SK", NULL, 0};
    CPT_EQ_INT(cp_source_s3_new(&bad, &src, &err), CP_EINVAL);
    cp_buf_free(&b);
    cp_buf_free(&gz);
    fx_stop();
}

CPT_LIST = {
    {"article_query_over_the_s3_api", article_query_over_the_s3_api},
    {"objects_are_read_in_ranges", objects_are_read_in_ranges},
    {0},
};
