/* SPDX-License-Identifier: MIT */
/*
 * The query engine end to end: objects written with the bucket store API, tables defined with
 * Athena DDL, SQL run through the SQLite virtual table, output checked as text.
 */
#include "cpt.h"

#include <zlib.h>

#include "objects/bucket.h"
#include "query/output.h"
#include "query/query.h"

#define BUCKET "chat-bucket"

static cp_bucket_store *store_open(void)
{
    cp_bucket_cfg cfg = {cpt_tmpdir(), NULL, 0, 0};
    cp_bucket_store *s = NULL;
    cp_err err = {0};
    if (cp_bucket_store_open(&cfg, &s, &err) != CP_OK) {
        CPT_FAIL_AT("store open: %s", err.msg);
    }
    int rc = cp_bucket_create(s, BUCKET, NULL, &err);
    if (rc != CP_OK && rc != CP_EEXIST) {
        CPT_FAIL_AT("create bucket: %s", err.msg);
    }
    return s;
}

static void put_bytes(cp_bucket_store *s, const char *key, const void *p, size_t n,
                      const char *encoding)
{
    cp_err err = {0};
    cp_buf hdr = CP_BUF_INIT;
    if (encoding) {
        cp_buf_append(&hdr, "content-encoding", 17);
        cp_buf_append(&hdr, encoding, strlen(encoding) + 1);
    }
    cp_bucket_put_opts po = {cp_buf_slice(&hdr), NULL};
    int rc = cp_bucket_put(s, BUCKET, cp_slice_str(key), cp_slice_of(p, n), &po, NULL, &err);
    cp_buf_free(&hdr);
    if (rc != CP_OK) {
        CPT_FAIL_AT("put %s: %s", key, err.msg);
    }
}

static void put(cp_bucket_store *s, const char *key, const char *data)
{
    put_bytes(s, key, data, strlen(data), NULL);
}

/* One gzip member of `data` appended to out (zlib's deflate with a gzip wrapper). */
static void gzip_member(const char *data, size_t n, cp_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    CPT_EQ_INT(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t bound = deflateBound(&z, (uLong) n);
    cp_buf_reserve(out, bound);
    z.next_in = (Bytef *) data;
    z.avail_in = (uInt) n;
    z.next_out = (Bytef *) out->p + out->len;
    z.avail_out = (uInt) bound;
    CPT_EQ_INT(deflate(&z, Z_FINISH), Z_STREAM_END);
    out->len += bound - z.avail_out;
    deflateEnd(&z);
}

static cp_query *session_with(cp_bucket_store *s, FILE *diag, cp_query_format fmt)
{
    cp_query_opts o = {.data_dir = cpt_tmpdir(), .store = s, .format = fmt, .diag = diag};
    cp_query *q = NULL;
    cp_err err = {0};
    if (cp_query_open(&o, &q, &err) != CP_OK) {
        CPT_FAIL_AT("session: %s", err.msg);
    }
    return q;
}

static cp_query *session(cp_bucket_store *s)
{
    return session_with(s, NULL, CP_QUERY_FORMAT_CSV);
}

/* Run a script that must succeed; returns its printed output (static, overwritten). */
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

/* Run a script that must fail with `code`; returns the full message. */
static const char *run_fail(cp_query *q, const char *sql, int code)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cp_err err = {0};
    int rc = cp_query_exec(q, sql, f, &err);
    fclose(f);
    free(text);
    if (rc == CP_OK) {
        CPT_FAIL_AT("query succeeded: %s", sql);
    }
    CPT_EQ_INT(rc, code);
    CPT_EQ_INT(err.code, code);
    CPT_CHECK(strncmp(err.msg, cp_query_errmsg(q), sizeof(err.msg) - 1) == 0);
    return cp_query_errmsg(q);
}

static void expect_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        CPT_FAIL_AT("\"%s\"\n does not contain \"%s\"", hay, needle);
    }
}

static uint64_t opened(cp_query *q)
{
    cp_query_stats st;
    cp_query_get_stats(q, &st);
    return st.objects_opened;
}

/* ------------------------------------------------------------------------------------------ */
/* The article's layout                                                                        */

#define LIVES 10
#define OBJS  3
#define ROWS  40

/* Livestreams/LivestreamID=live-N/<yyyy/MM/dd/HH>/chat-...-K: what the dynamic-partitioning
 * delivery stream writes, with the article's chat rows (UID = ms timestamp * 1000 + counter). */
static void article_objects(cp_bucket_store *s)
{
    cp_buf b = CP_BUF_INIT;
    int64_t uid = 1764132000000LL * 1000;
    for (int l = 0; l < LIVES; l++) {
        for (int k = 0; k < OBJS; k++) {
            cp_buf_reset(&b);
            for (int r = 0; r < ROWS; r++) {
                cp_buf_printf(&b,
                              "{\"LivestreamID\":\"live-%d\",\"UID\":%lld,\"UserID\":\"user-%d\","
                              "\"Message\":\"안녕하세요 hello %d\",\"CreatedAt\":"
                              "\"2025-11-26T04:40:00.%03dZ\"}\n",
                              l, (long long) uid++, r % 7, r, r);
            }
            char key[256];
            snprintf(key, sizeof(key),
                     "Livestreams/LivestreamID=live-%d/2025/11/26/04/chat-by-livestream-1-"
                     "2025-11-26-04-40-%02d-%d",
                     l, k, l);
            put(s, key, b.p);
        }
    }
    cp_buf_free(&b);
}

static const char *article_ddl =
    "CREATE EXTERNAL TABLE chat (\n"
    "  LivestreamID string, UID bigint, UserID string, Message string, CreatedAt string)\n"
    "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n"
    "LOCATION 's3://chat-bucket/Livestreams/';";

static void article_query_counts_every_livestream(void)
{
    cp_bucket_store *s = store_open();
    article_objects(s);
    cp_query *q = session(s);
    run(q, article_ddl);
    const char *out = run(q, "SELECT LivestreamID, count(*) AS n, count(DISTINCT uid) AS d "
                             "FROM chat GROUP BY LivestreamID ORDER BY 1");
    cp_buf want = CP_BUF_INIT;
    cp_buf_puts(&want, "livestreamid,n,d\n");
    for (int l = 0; l < LIVES; l++) {
        cp_buf_printf(&want, "live-%d,%d,%d\n", l, OBJS * ROWS, OBJS * ROWS);
    }
    /* SQLite reports a column by the name it was selected with. */
    const char *body = strchr(out, '\n');
    CPT_CHECK(body != NULL);
    CPT_EQ_STR(body, strchr(want.p, '\n'));
    CPT_EQ_INT(opened(q), LIVES * OBJS);
    cp_query_stats st;
    cp_query_get_stats(q, &st);
    CPT_EQ_INT(st.lines, LIVES * OBJS * ROWS);
    CPT_EQ_INT(st.rows, LIVES);

    /* The data column wins over the folder of the same name: nothing hidden was added. */
    out = run(q, "SELECT count(*) FROM pragma_table_xinfo('chat') WHERE hidden = 1");
    CPT_EQ_STR(out, "count(*)\n3\n"); /* only $path, $file_size, $file_modified_time */
    cp_buf_free(&want);
    cp_query_close(q);
    cp_bucket_store_close(s);
}

static void partition_count_group_by_and_pruning(void)
{
    cp_bucket_store *s = store_open();
    article_objects(s);
    put(s, "Livestreams/_SUCCESS", "not data");
    put(s, "Livestreams/LivestreamID=live-1/.hidden.json", "{\"broken");
    put(s, "Livestreams/stray-object.json", "{\"UID\":1}\n");
    cp_query *q = session(s);
    run(q, "CREATE EXTERNAL TABLE chat_p (uid bigint, userid string, message string)\n"
           "PARTITIONED BY (livestreamid string)\n"
           "ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'\n"
           "LOCATION 's3://chat-bucket/Livestreams/'");

    /* COUNT(*) GROUP BY the partition column: every object of every partition is read, the
     * stray object above the partition folders and the hidden files are not. */
    const char *out = run(q, "SELECT livestreamid, count(*) FROM chat_p GROUP BY livestreamid "
                             "ORDER BY livestreamid DESC LIMIT 2");
    CPT_EQ_STR(out, "livestreamid,count(*)\nlive-9,120\nlive-8,120\n");
    CPT_EQ_INT(opened(q), LIVES * OBJS);

    /* Equality: only live-3's objects are opened. */
    uint64_t before = opened(q);
    out = run(q, "SELECT count(*), min(uid) > 0 FROM chat_p WHERE livestreamid = 'live-3'");
    CPT_EQ_STR(out, "count(*),min(uid) > 0\n120,1\n");
    CPT_EQ_INT(opened(q) - before, OBJS);

    /* IN, taken as one list: two partitions. */
    before = opened(q);
    out = run(q, "SELECT livestreamid, count(*) FROM chat_p WHERE livestreamid IN "
                 "('live-2', 'live-7', 'live-404') GROUP BY 1 ORDER BY 1");
    CPT_EQ_STR(out, "livestreamid,count(*)\nlive-2,120\nlive-7,120\n");
    CPT_EQ_INT(opened(q) - before, 2 * OBJS);

    /* A constraint that matches nothing opens nothing. */
    before = opened(q);
    out = run(q, "SELECT count(*) FROM chat_p WHERE livestreamid = 'nope'");
    CPT_EQ_STR(out, "count(*)\n0\n");
    CPT_EQ_INT(opened(q) - before, 0);

    /* A non-prunable predicate still reads everything and gives the right answer. */
    before = opened(q);
    out = run(q, "SELECT count(*) FROM chat_p WHERE livestreamid LIKE 'live-1%'");
    CPT_EQ_STR(out, "count(*)\n120\n");
    CPT_EQ_INT(opened(q) - before, LIVES * OBJS);

    /* "$path" equality opens exactly that object. */
    before = opened(q);
    out = run(q, "SELECT count(*), min(\"$path\") FROM chat_p WHERE \"$path\" = "
                 "'s3://chat-bucket/Livestreams/LivestreamID=live-4/2025/11/26/04/"
                 "chat-by-livestream-1-2025-11-26-04-40-01-4'");
    expect_contains(out, "40,s3://chat-bucket/Livestreams/LivestreamID=live-4/");
    CPT_EQ_INT(opened(q) - before, 1);

    /* A join drives xFilter once per outer row, each pruned. */
    before = opened(q);
    out = run(q, "WITH w(id) AS (VALUES ('live-0'), ('live-5')) "
                 "SELECT w.id, count(*) FROM w JOIN chat_p c ON c.livestreamid = w.id "
                 "GROUP BY 1 ORDER BY 1");
    CPT_EQ_STR(out, "id,count(*)\nlive-0,120\nlive-5,120\n");
    CPT_EQ_INT(opened(q) - before, 2 * OBJS);

    out = run(q, "SHOW PARTITIONS chat_p");
    CPT_CHECK(strncmp(out, "partition\nlivestreamid=live-0\nlivestreamid=live-1\n", 50) == 0);
    cp_query_close(q);
    cp_bucket_store_close(s);
}

static void discovered_partitions_are_hidden_and_prune(void)
{
    cp_bucket_store *s = store_open();
    for (int d = 1; d <= 3; d++) {
        for (int h = 0; h < 2; h++) {
            char key[128], body[128];
            snprintf(key, sizeof(key), "logs/dt=2025-01-0%d/hour=%02d/part-0.json", d, h);
            snprintf(body, sizeof(body), "{\"v\":%d}\n{\"v\":%d}\n", d * 10 + h, d * 100 + h);
            put(s, key, body);
        }
    }
    put(s, "logs/dt=2025-01-09/extra.json", "{\"v\":9}\n"); /* no hour= folder: hour is NULL */
    cp_query *q = session(s);
    run(q, "CREATE EXTERNAL TABLE logs (v int) ROW FORMAT SERDE "
           "'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://chat-bucket/logs/'");
    /* SELECT * shows the declared columns only; the discovered ones are there by name. */
    const char *out = run(q, "SELECT * FROM logs WHERE v = 9");
    CPT_EQ_STR(out, "v\n9\n");
    out = run(q, "SELECT dt, hour, sum(v) FROM logs GROUP BY 1, 2 ORDER BY 1, 2");
    CPT_EQ_STR(out, "dt,hour,sum(v)\n2025-01-01,00,110\n2025-01-01,01,112\n"
                    "2025-01-02,00,220\n2025-01-02,01,222\n2025-01-03,00,330\n"
                    "2025-01-03,01,332\n2025-01-09,,9\n");
    uint64_t before = opened(q);
    out = run(q, "SELECT count(*) FROM logs WHERE dt IN ('2025-01-02', '2025-01-09') "
                 "AND hour = '01'");
    CPT_EQ_STR(out, "count(*)\n2\n");
    CPT_EQ_INT(opened(q) - before, 1);
    out = run(q, "SHOW PARTITIONS logs");
    expect_contains(out, "partition\ndt=2025-01-01/hour=00\n");
    expect_contains(out, "dt=2025-01-09\n");

    /* Discovery can be turned off. */
    run(q, "CREATE EXTERNAL TABLE logs2 (v int) ROW FORMAT SERDE "
           "'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://chat-bucket/logs/' "
           "TBLPROPERTIES ('changepipe.partition.discovery'='false')");
    expect_contains(run_fail(q, "SELECT dt FROM logs2", CP_EINVAL), "no such column: dt");
    out = run(q, "SELECT count(*) FROM logs2");
    CPT_EQ_STR(out, "count(*)\n13\n");
    cp_query_close(q);
    cp_bucket_store_close(s);
}

static void typed_and_escaped_partition_values(void)
{
    cp_bucket_store *s = store_open();
    const char *dirs[] = {"n=1/s=a", "n=2/s=a%2Fb", "n=07/s=x", "n=__HIVE_DEFAULT_PARTITION__/s=y",
                          "n=3/s=__HIVE_DEFAULT_PARTITION__"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char key[128];
        snprintf(key, sizeof(key), "tp/%s/data.json", dirs[i]);
        put(s, key, "{\"v\":1}\n");
    }
    cp_query *q = session(s);
    run(q, "CREATE EXTERNAL TABLE tp (v int) PARTITIONED BY (n int, s string) "
           "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
           "LOCATION 's3://chat-bucket/tp/'");
    CPT_EQ_STR(run(q, "SELECT n, typeof(n), s FROM tp ORDER BY n, s"),
               "n,typeof(n),s\n,null,y\n1,integer,a\n2,integer,a/b\n3,integer,\n7,integer,x\n");
    uint64_t before = opened(q);
    CPT_EQ_STR(run(q, "SELECT s FROM tp WHERE n = 7"), "s\nx\n");
    CPT_EQ_INT(opened(q) - before, 1);
    before = opened(q);
    CPT_EQ_STR(run(q, "SELECT count(*) FROM tp WHERE n IN (1, '2', 2.0, 'x')"), "count(*)\n2\n");
    CPT_EQ_INT(opened(q) - before, 2);
    before = opened(q);
    CPT_EQ_STR(run(q, "SELECT n FROM tp WHERE s = 'a/b'"), "n\n2\n");
    CPT_EQ_INT(opened(q) - before, 1);
    /* NULL partitions never equal anything; IS NULL still finds them (unpruned). */
    before = opened(q);
    CPT_EQ_STR(run(q, "SELECT count(*) FROM tp WHERE n = NULL"), "count(*)\n0\n");
    CPT_EQ_INT(opened(q) - before, 0);
    CPT_EQ_STR(run(q, "SELECT s FROM tp WHERE n IS NULL"), "s\ny\n");
    /* A collation other than BINARY is not pruned on, and still answers correctly. */
    CPT_EQ_STR(run(q, "SELECT n FROM tp WHERE s = 'X' COLLATE NOCASE"), "n\n7\n");
    cp_query_close(q);
    cp_bucket_store_close(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Types                                                                                       */

static void big_integers_round_trip_exactly(void)
{
    cp_bucket_store *s = store_open();
    put(s, "t/a.json",
        "{\"uid\":1764132000000123,\"n\":9223372036854775807}\n"
        "{\"uid\":-9223372036854775808,\"n\":\"9007199254740993\"}\n"
        "{\"uid\":9007199254740993,\"n\":42}\n");
    cp_query *q = session(s);
    run(q, "CREATE EXTERNAL TABLE t (uid bigint, n bigint) ROW FORMAT SERDE "
           "'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://chat-bucket/t/'");
    const char *out = run(q, "SELECT uid, n, typeof(uid) FROM t");
    CPT_EQ_STR(out, "uid,n,typeof(uid)\n1764132000000123,9223372036854775807,integer\n"
                    "-9223372036854775808,9007199254740993,integer\n"
                    "9007199254740993,42,integer\n");
    /* 2^53 + 1 is not a double: equality must hold on the exact integer. */
    out = run(q, "SELECT count(*) FROM t WHERE uid = 9007199254740993 OR uid = 1764132000000123");
    CPT_EQ_STR(out, "count(*)\n2\n");
    out = run(q, "SELECT max(uid) - min(uid) > 0, sum(uid = 1764132000000123) FROM t");
    CPT_EQ_STR(out, "max(uid) - min(uid) > 0,sum(uid = 1764132000000123)\n1,1\n");

    /* Out of range for bigint: HIVE_BAD_DATA naming the object and line. */
    put(s, "t/b.json", "{\"uid\":1}\n{\"uid\":9223372036854775808}\n");
    const char *msg = run_fail(q, "SELECT sum(uid) FROM t", CP_EINVAL);
    expect_contains(msg, "HIVE_BAD_DATA: Error parsing field value '9223372036854775808' for "
                         "field 0 (uid): out of range in s3://chat-bucket/t/b.json line 2");
    cp_query_close(q);
    cp_bucket_store_close(s);
}

static void athena_types_map_onto_sqlite(void)
{
    cp_bucket_store *s = store_open();
    put(s, "types/x.json",
        "{\"s\":12.5,\"vc\":\"안녕하세요 world\",\"ti\":-128,\"si\":\"32767\",\"i\":-5,"
        "\"f\":0.1,\"d\":1e300,\"dec\":\"12.345\",\"dec0\":12,\"b\":true,\"bs\":\"FALSE\","
        "\"ts\":\"2025-11-26T13:40:00.5+09:00\",\"tsn\":1764132000123,\"tss\":1764132000,"
        "\"dt\":\"2025-02-28\",\"arr\":[1, 2,{\"x\":null}],\"m\":{\"k\":\"v\"},"
        "\"st\":{\"a\":1,\"b\":[true]},\"c\":\"abcdef\",\"e\":\"\",\"nul\":null,"
        "\"esc\":\"tab\\there \\u00e9 \\\"q\\\"\",\"obj_as_str\":{\"z\":[1]}}\n");
    cp_query *q = session_with(s, NULL, CP_QUERY_FORMAT_JSONL);
    run(q, "CREATE EXTERNAL TABLE types (s string, vc varchar(7), ti tinyint, si smallint, "
           "i int, f float, d double, dec decimal(10,3), dec0 decimal(12,0), b boolean, "
           "bs boolean, ts timestamp, tsn timestamp, tss timestamp, dt date, arr array<string>, "
           "m map<string,string>, st struct<a:int,b:array<boolean>>, c char(3), e int, "
           "nul string, esc string, obj_as_str string, missing double) "
           "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
           "LOCATION 's3://chat-bucket/types/'");
    const char *out = run(q, "SELECT * FROM types");
    CPT_EQ_STR(out, "{\"s\":\"12.5\",\"vc\":\"안녕하세요 w\",\"ti\":-128,\"si\":32767,\"i\":-5,"
                    "\"f\":0.1,\"d\":1e+300,\"dec\":12.345,\"dec0\":12,\"b\":true,"
                    "\"bs\":false,\"ts\":\"2025-11-26 04:40:00.500\",\"tsn\":"
                    "\"2025-11-26 04:40:00.123\",\"tss\":\"2025-11-26 04:40:00.000\","
                    "\"dt\":\"2025-02-28\",\"arr\":[1, 2,{\"x\":null}],\"m\":{\"k\":\"v\"},"
                    "\"st\":{\"a\":1,\"b\":[true]},\"c\":\"abc\",\"e\":null,\"nul\":null,"
                    "\"esc\":\"tab\\there é \\\"q\\\"\",\"obj_as_str\":\"{\\\"z\\\":[1]}\","
                    "\"missing\":null}\n");
    out = run(q, "SELECT typeof(ti), typeof(f), typeof(dec), typeof(dec0), typeof(b), "
                 "typeof(ts), json_extract(st, '$.b[0]'), json_array_length(arr), "
                 "strftime('%s', ts) FROM types");
    CPT_EQ_STR(out, "{\"typeof(ti)\":\"integer\",\"typeof(f)\":\"real\",\"typeof(dec)\":\"real\","
                    "\"typeof(dec0)\":\"integer\",\"typeof(b)\":\"integer\",\"typeof(ts)\":"
                    "\"text\",\"json_extract(st, '$.b[0]')\":1,\"json_array_length(arr)\":3,"
                    "\"strftime('%s', ts)\":\"1764132000\"}\n");

    /* Values that do not fit their type fail when that column is read, and only then. */
    put(s, "types/y.json", "{\"ti\":128,\"b\":1,\"ts\":\"yesterday\",\"arr\":\"x\"}\n");
    out = run(q, "SELECT count(*) FROM types");
    CPT_EQ_STR(out, "{\"count(*)\":2}\n");
    expect_contains(run_fail(q, "SELECT ti FROM types", CP_EINVAL),
                    "Error parsing field value '128' for field 2 (ti): out of range");
    expect_contains(run_fail(q, "SELECT b FROM types", CP_EINVAL), "(b): not a boolean");
    expect_contains(run_fail(q, "SELECT ts FROM types", CP_EINVAL), "(ts): not a timestamp");
    expect_contains(run_fail(q, "SELECT arr FROM types", CP_EINVAL), "(arr): not an array");
    cp_query_close(q);
    cp_bucket_store_close(s);
}

static void keys_match_case_insensitively(void)
{
    cp_bucket_store *s = store_open();
    put(s, "k/x.json",
        "{\"LIVESTREAMID\":\"live-1\",\"Uid\":7,\"user.name\":\"kim\","
        "\"Raw_Key\":\"r\",\"other\":{\"deep\":[1,{\"UID\":99}]}}\n");
    cp_query *q = session(s);
    run(q, "CREATE EXTERNAL TABLE k (livestreamid string, uid bigint, user_name string, "
           "mapped string) ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
           "WITH SERDEPROPERTIES ('dots.in.keys'='true', 'mapping.mapped'='raw_key') "
           "LOCATION 's3://chat-bucket/k/'");
    CPT_EQ_STR(run(q, "SELECT * FROM k"), "livestreamid,uid,user_name,mapped\nlive-1,7,kim,r\n");
    run(q, "CREATE EXTERNAL TABLE k_exact (livestreamid string, uid bigint) "
           "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
           "WITH SERDEPROPERTIES ('case.insensitive'='false', 'mapping.uid'='Uid') "
           "LOCATION 's3://chat-bucket/k/'");
    CPT_EQ_STR(run(q, "SELECT livestreamid IS NULL, uid FROM k_exact"),
               "livestreamid IS NULL,uid\n1,7\n");

    /* OpenX refuses a key given twice for one column, as Athena reports. */
    put(s, "k/y.json", "{\"uid\":1,\"UID\":2}\n");
    expect_contains(run_fail(q, "SELECT count(*) FROM k", CP_EINVAL),
                    "JSONException: Duplicate key \"uid\" at character");
    cp_query_close(q);
    cp_bucket_store_close(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Malformed data                                                                              */

static void malformed_line_fails_naming_object_and_line(void)
{
    cp_bucket_store *s = store_open();
    put(s, "m/a/1.json", "{\"a\":1}\n{\"a\":2}\n");
    put(s, "m/b/2.json", "{\"a\":3}\n\n{\"a\":4,}\n{\"a\":5}\n");
    cp_query *q = session(s);
    run(q, "CREATE EXTERNAL TABLE m (a int) ROW FORMAT SERDE "
           "'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://chat-bucket/m/'");
    const char *msg = run_fail(q, "SELECT count(*) FROM m", CP_EINVAL);
    expect_contains(msg, "HIVE_CURSOR_ERROR: Row is not a valid JSON Object - expected a member "
                         "name at character 8 in s3://chat-bucket/m/b/2.json line 3");
    put(s, "m/b/2.json", "[1,2]\n");
    msg = run_fail(q, "SELECT * FROM m", CP_EINVAL);
    expect_contains(msg, "A JSONObject text must begin with '{' at character 1 in "
                         "s3://chat-bucket/m/b/2.json line 1");
    put(s, "m/b/2.json", "{\"a\":1}{\"a\":2}\n");
    msg = run_fail(q, "SELECT * FROM m", CP_EINVAL);
    expect_contains(msg, "trailing characters after the document");
    cp_query_close(q);
    cp_bucket_store_close(s);
}

static void ignore_malformed_gives_null_rows_and_a_count(void)
{
    cp_bucket_store *s = store_open();
    put(s, "m/p=1/1.json", "{\"a\":1}\n{\"a\": oops}\n{\"a\":3}\n\"just a string\"\n");
    char *diag_text = NULL;
    size_t diag_len = 0;
    FILE *diag = open_memstream(&diag_text, &diag_len);
    cp_query *q = session_with(s, diag, CP_QUERY_FORMAT_CSV);
    run(q, "CREATE EXTERNAL TABLE m (a int) ROW FORMAT SERDE "
           "'org.openx.data.jsonserde.JsonSerDe' WITH SERDEPROPERTIES "
           "('ignore.malformed.json'='TRUE') LOCATION 's3://chat-bucket/m/'");
    /* The malformed rows are rows of NULL data columns; the partition keeps its value. */
    const char *out = run(q, "SELECT count(*), count(a), sum(a), count(p) FROM m");
    CPT_EQ_STR(out, "count(*),count(a),sum(a),count(p)\n4,2,4,4\n");
    cp_query_stats st;
    cp_query_get_stats(q, &st);
    CPT_EQ_INT(st.malformed_ignored, 2);
    out = run(q, "SELECT a FROM m WHERE a = 3");
    CPT_EQ_STR(out, "a\n3\n");
    fflush(diag);
    expect_contains(diag_text, "Table m created\n2 malformed lines ignored\n");
    char note[64];
    CPT_EQ_STR(cp_query_malformed_note(1, note, sizeof(note)), "1 malformed line ignored");
    cp_query_close(q);
    fclose(diag);
    free(diag_text);
    cp_bucket_store_close(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Objects                                                                                     */

static void gzip_objects_read_transparently(void)
{
    cp_bucket_store *s = store_open();
    cp_buf raw = CP_BUF_INIT, gz = CP_BUF_INIT;
    /* Big enough that the compressed stream spans several reads and the lines a buffer. */
    for (int i = 0; i < 60000; i++) {
        cp_buf_printf(&raw, "{\"i\":%d,\"pad\":\"%08x%08x\"}\r\n", i, i * 2654435761u, i);
    }
    gzip_member(raw.p, raw.len, &gz);
    put_bytes(s, "g/big.json.gz", gz.p, gz.len, "gzip");
    /* Two members back to back (zcat reads both), no .gz extension, no Content-Encoding. */
    cp_buf_reset(&gz);
    gzip_member("{\"i\":-1}\n", 9, &gz);
    gzip_member("{\"i\":-2}", 8, &gz);
    put_bytes(s, "g/multi", gz.p, gz.len, NULL);
    put(s, "g/plain.json", "\xEF\xBB\xBF{\"i\":-3}");
    cp_query *q = session(s);
    run(q, "CREATE EXTERNAL TABLE g (i int) ROW FORMAT SERDE "
           "'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://chat-bucket/g'");
    const char *out = run(q, "SELECT count(*), sum(i), min(i), max(i) FROM g");
    CPT_EQ_STR(out, "count(*),sum(i),min(i),max(i)\n60003,1799969994,-3,59999\n");
    cp_query_close(q);

    /* A truncated gzip object is an error naming it. */
    cp_buf_reset(&gz);
    gzip_member(raw.p, 100000, &gz);
    put_bytes(s, "g/cut.gz", gz.p, gz.len / 2, "gzip");
    q = session(s);
    expect_contains(run_fail(q, "SELECT count(*) FROM g", CP_EINVAL),
                    "the gzip stream is truncated in s3://chat-bucket/g/cut.gz");
    cp_query_close(q);
    cp_buf_free(&raw);
    cp_buf_free(&gz);
    cp_bucket_store_close(s);
}

static void long_lines_and_missing_bucket(void)
{
    cp_bucket_store *s = store_open();
    cp_buf b = CP_BUF_INIT;
    cp_buf_puts(&b, "{\"a\":\"");
    for (int i = 0; i < 3 * 1024 * 1024; i++) {
        cp_buf_putc(&b, (char) ('a' + i % 26));
    }
    cp_buf_puts(&b, "\"}\n{\"a\":\"short\"}");
    put(s, "long/x.json", b.p);
    cp_query *q = session(s);
    run(q, "CREATE EXTERNAL TABLE l (a string) ROW FORMAT SERDE "
           "'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://chat-bucket/long/';"
           "CREATE EXTERNAL TABLE nob (a string) ROW FORMAT SERDE "
           "'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://no-such-bucket/x/'");
    CPT_EQ_STR(run(q, "SELECT length(a) FROM l"), "length(a)\n3145728\n5\n");
    expect_contains(run_fail(q, "SELECT * FROM nob", CP_EINVAL),
                    "The specified bucket does not exist: no-such-bucket");
    /* An empty location is an empty table. */
    run(q, "CREATE EXTERNAL TABLE e (a string) ROW FORMAT SERDE "
           "'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://chat-bucket/empty/'");
    CPT_EQ_STR(run(q, "SELECT count(*) FROM e"), "count(*)\n0\n");
    cp_buf_free(&b);
    cp_query_close(q);
    cp_bucket_store_close(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Statements, catalog and sessions                                                            */

static void ddl_statements_and_catalog_across_sessions(void)
{
    cp_bucket_store *s = store_open();
    put(s, "Livestreams/LivestreamID=live-0/x.json", "{\"UID\":5}\n");
    cp_query *q = session(s);
    run(q, article_ddl);
    CPT_EQ_INT(run_fail(q, article_ddl, CP_EEXIST)[0], 'T');
    expect_contains(cp_query_errmsg(q), "Table chat already exists");
    run(q, "CREATE EXTERNAL TABLE IF NOT EXISTS chat (x int) LOCATION 's3://b/' "
           "STORED AS JSONFILE");
    CPT_EQ_STR(run(q, "SHOW TABLES"), "tab_name\nchat\n");
    CPT_EQ_STR(run(q, "DESCRIBE chat"),
               "col_name,data_type,comment\nlivestreamid,string,\"\"\nuid,bigint,\"\"\n"
               "userid,string,\"\"\nmessage,string,\"\"\ncreatedat,string,\"\"\n");
    CPT_EQ_STR(run(q, "SHOW COLUMNS IN chat"),
               "field\nlivestreamid\nuid\nuserid\nmessage\ncreatedat\n");
    expect_contains(run(q, "SHOW CREATE TABLE chat"), "LOCATION 's3://chat-bucket/Livestreams/'");
    run(q, "MSCK REPAIR TABLE chat");
    cp_query_close(q);

    /* A later session (another process, in effect) names the table. */
    q = session(s);
    CPT_EQ_STR(run(q, "SELECT uid FROM chat"), "uid\n5\n");
    run(q, "CREATE EXTERNAL TABLE p (a int) PARTITIONED BY (dt string, n int COMMENT 'x') "
           "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
           "LOCATION 's3://chat-bucket/p/'");
    CPT_EQ_STR(run(q, "DESCRIBE p"),
               "col_name,data_type,comment\na,int,\"\"\n\"\",\"\",\"\"\n"
               "# Partition Information,\"\",\"\"\n# col_name,data_type,comment\n"
               "dt,string,\"\"\nn,int,x\n");
    CPT_EQ_STR(run(q, "SHOW TABLES 'c*'"), "tab_name\nchat\n");
    expect_contains(run_fail(q, "SHOW PARTITIONS chat", CP_EINVAL), "not partitioned");
    run(q, "DROP TABLE chat");
    expect_contains(run_fail(q, "SELECT * FROM chat", CP_EINVAL), "no such table: chat");
    expect_contains(run_fail(q, "DROP TABLE chat", CP_ENOTFOUND), "Table not found: chat");
    run(q, "DROP TABLE IF EXISTS chat");
    expect_contains(run_fail(q, "DESCRIBE chat", CP_ENOTFOUND), "Table chat does not exist");
    expect_contains(run_fail(q, "ALTER TABLE p ADD PARTITION (dt='x')", CP_EINVAL),
                    "ALTER TABLE is not supported");
    expect_contains(run_fail(q, "SELEC 1", CP_EINVAL), "syntax error");
    /* Plain SQLite statements work too (scratch tables live for the session). */
    CPT_EQ_STR(run(q, "CREATE TABLE scratch AS SELECT 1 AS x; SELECT x + 1 FROM scratch; "
                      "DROP TABLE scratch"),
               "x + 1\n2\n");
    cp_query_close(q);

    /* Re-creating a table with a new definition in one script takes effect at once. */
    q = session(s);
    run(q, "CREATE EXTERNAL TABLE r (uid string) ROW FORMAT SERDE "
           "'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://chat-bucket/Livestreams/'");
    CPT_EQ_STR(run(q, "SELECT typeof(uid) FROM r; DROP TABLE r; CREATE EXTERNAL TABLE r "
                      "(uid bigint) ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
                      "LOCATION 's3://chat-bucket/Livestreams/'; SELECT typeof(uid) FROM r"),
               "typeof(uid)\ntext\ntypeof(uid)\ninteger\n");
    cp_query_close(q);
    cp_bucket_store_close(s);
}

typedef struct sums {
    int64_t rows, total;
    char first_name[32];
} sums;

static int sum_rows(void *ctx, const cp_query_result *res, const cp_query_value *row)
{
    sums *s = ctx;
    CPT_EQ_INT(res->ncols, 2);
    snprintf(s->first_name, sizeof(s->first_name), "%s", res->names[0]);
    CPT_EQ_STR(res->decltypes[1], "BIGINT");
    CPT_EQ_INT(row[1].type, CP_QUERY_INT);
    s->rows++;
    s->total += row[1].i;
    return s->rows == 3 ? 77 : 0;
}

static void row_callback_and_one_shot_run(void)
{
    cp_bucket_store *s = store_open();
    article_objects(s);
    cp_query *q = session(s);
    run(q, article_ddl);
    sums sm = {0};
    cp_err err = {0};
    CPT_EQ_INT(cp_query_each(q, "SELECT livestreamid, uid FROM chat LIMIT 2", sum_rows, &sm, &err),
               CP_OK);
    CPT_EQ_INT(sm.rows, 2);
    CPT_EQ_INT(sm.total, 2 * 1764132000000000LL + 1);
    CPT_EQ_STR(sm.first_name, "livestreamid");
    /* A callback's non-zero value stops the statement and comes back. */
    CPT_EQ_INT(cp_query_each(q, "SELECT livestreamid, uid FROM chat", sum_rows, &sm, &err), 77);
    cp_query_close(q);
    cp_bucket_store_close(s);

    /* One shot, the store opened from the data directory (no server holds it now). */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cp_query_opts o = {.data_dir = cpt_tmpdir(), .format = CP_QUERY_FORMAT_CSV, .no_header = 1};
    CPT_EQ_INT(cp_query_run(&o, "SELECT count(*) FROM chat WHERE livestreamid = 'live-4'", f, &err),
               CP_OK);
    fclose(f);
    CPT_EQ_STR(text, "120\n");
    free(text);

    /* While a store is open elsewhere the directory is busy, and the message says what to do. */
    s = store_open();
    text = NULL;
    f = open_memstream(&text, &len);
    CPT_EQ_INT(cp_query_run(&o, "SELECT count(*) FROM chat", f, &err), CP_EINVAL);
    fclose(f);
    free(text);
    expect_contains(err.msg, "in use by a running server");
    /* Statements that read no objects do not need the store. */
    text = NULL;
    f = open_memstream(&text, &len);
    CPT_EQ_INT(cp_query_run(&o, "SHOW TABLES; SELECT 1", f, &err), CP_OK);
    fclose(f);
    CPT_EQ_STR(text, "chat\n1\n");
    free(text);
    cp_bucket_store_close(s);

    cp_query_format fmt;
    CPT_EQ_INT(cp_query_format_parse("JSONL", &fmt), CP_OK);
    CPT_EQ_INT(fmt, CP_QUERY_FORMAT_JSONL);
    CPT_EQ_INT(cp_query_format_parse("xml", &fmt), CP_EINVAL);
}

/* ------------------------------------------------------------------------------------------ */
/* Output                                                                                      */

static void output_formats(void)
{
    cp_bucket_store *s = store_open();
    put(s, "o/x.json",
        "{\"name\":\"kim\",\"msg\":\"안녕하세요\",\"n\":1764132000000123,"
        "\"ok\":true,\"r\":2.0,\"tags\":[\"a\",\"b\"]}\n"
        "{\"name\":\"lee, \\\"jr\\\"\",\"msg\":\"line1\\nline2\",\"n\":-7,"
        "\"ok\":false,\"r\":0.25}\n");
    const char *ddl = "CREATE EXTERNAL TABLE o (name string, msg string, n bigint, ok boolean, "
                      "r double, tags array<string>) ROW FORMAT SERDE "
                      "'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://chat-bucket/o/'";
    cp_query *q = session_with(s, NULL, CP_QUERY_FORMAT_TABLE);
    run(q, ddl);
    CPT_EQ_STR(run(q, "SELECT * FROM o"),
               " name      | msg          |                n | ok    |    r | tags\n"
               "-----------+--------------+------------------+-------+------+-----------\n"
               " kim       | 안녕하세요   | 1764132000000123 | true  |  2.0 | [\"a\",\"b\"]\n"
               " lee, \"jr\" | line1\\nline2 |               -7 | false | 0.25 | NULL\n"
               "(2 rows)\n");
    CPT_EQ_STR(run(q, "SELECT 1 AS one; SELECT 'x' AS a, NULL AS b WHERE 0"),
               " one\n-----\n   1\n(1 row)\n\n a | b\n---+---\n(0 rows)\n");
    cp_query_close(q);

    q = session_with(s, NULL, CP_QUERY_FORMAT_CSV);
    CPT_EQ_STR(run(q, "SELECT name, msg, n, ok, r, tags, '' AS empty FROM o"),
               "name,msg,n,ok,r,tags,empty\n"
               "kim,안녕하세요,1764132000000123,true,2.0,\"[\"\"a\"\",\"\"b\"\"]\",\"\"\n"
               "\"lee, \"\"jr\"\"\",\"line1\nline2\",-7,false,0.25,,\"\"\n");
    cp_query_close(q);

    q = session_with(s, NULL, CP_QUERY_FORMAT_JSONL);
    CPT_EQ_STR(run(q, "SELECT name, n, ok, r, tags, x'00ff' AS bin, 1e999 AS inf FROM o"),
               "{\"name\":\"kim\",\"n\":1764132000000123,\"ok\":true,\"r\":2.0,"
               "\"tags\":[\"a\",\"b\"],\"bin\":\"AP8=\",\"inf\":null}\n"
               "{\"name\":\"lee, \\\"jr\\\"\",\"n\":-7,\"ok\":false,\"r\":0.25,\"tags\":null,"
               "\"bin\":\"AP8=\",\"inf\":null}\n");
    cp_query_close(q);
    cp_bucket_store_close(s);

    CPT_EQ_INT(cp_output_width(CP_SLICE("안녕 hi")), 7);
    CPT_EQ_INT(cp_output_width(CP_SLICE("e\xCC\x81")), 1); /* e + combining acute */
}

CPT_LIST = {
    {"article_query_counts_every_livestream", article_query_counts_every_livestream},
    {"partition_count_group_by_and_pruning", partition_count_group_by_and_pruning},
    {"discovered_partitions_are_hidden_and_prune", discovered_partitions_are_hidden_and_prune},
    {"typed_and_escaped_partition_values", typed_and_escaped_partition_values},
    {"big_integers_round_trip_exactly", big_integers_round_trip_exactly},
    {"athena_types_map_onto_sqlite", athena_types_map_onto_sqlite},
    {"keys_match_case_insensitively", keys_match_case_insensitively},
    {"malformed_line_fails_naming_object_and_line", malformed_line_fails_naming_object_and_line},
    {"ignore_malformed_gives_null_rows_and_a_count", ignore_malformed_gives_null_rows_and_a_count},
    {"gzip_objects_read_transparently", gzip_objects_read_transparently},
    {"long_lines_and_missing_bucket", long_lines_and_missing_bucket},
    {"ddl_statements_and_catalog_across_sessions", ddl_statements_and_catalog_across_sessions},
    {"row_callback_and_one_shot_run", row_callback_and_one_shot_run},
    {"output_formats", output_formats},
    {0},
};
