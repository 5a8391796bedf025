/* SPDX-License-Identifier: MIT */
/* Athena DDL parsing, statement classification, script splitting and the catalog file. */
#include "cpt.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "query/catalog.h"
#include "query/ddl.h"

static cp_ddl_table *parse_ok(const char *sql)
{
    cp_ddl_table *t = NULL;
    cp_err err = {0};
    int rc = cp_ddl_parse_create(cp_slice_str(sql), &t, &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("parse failed: %d %s\n  %s", rc, err.msg, sql);
    }
    return t;
}

/* Parse must fail; returns the message (static buffer). */
static const char *parse_err(const char *sql)
{
    static cp_err err;
    memset(&err, 0, sizeof(err));
    cp_ddl_table *t = NULL;
    int rc = cp_ddl_parse_create(cp_slice_str(sql), &t, &err);
    if (rc == CP_OK) {
        cp_ddl_table_free(t);
        CPT_FAIL_AT("parse accepted: %s", sql);
    }
    CPT_EQ_INT(rc, CP_EINVAL);
    CPT_EQ_INT(err.code, CP_EINVAL);
    return err.msg;
}

static void expect_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        CPT_FAIL_AT("\"%s\" does not contain \"%s\"", hay, needle);
    }
}

static void openx_table_with_everything(void)
{
    cp_ddl_table *t = parse_ok(
        "-- the article's table, and then some\n"
        "CREATE EXTERNAL TABLE IF NOT EXISTS `mydb`.`Chat_Messages` (\n"
        "  LivestreamID string COMMENT 'broadcast id',\n"
        "  `UID` BIGINT,\n"
        "  tags array<string>, /* nested */\n"
        "  meta struct<a:int, `B`:map<string, array<double>>>,\n"
        "  price decimal(10,2), name varchar(5), flag boolean, ts timestamp, d date,\n"
        "  small smallint, tiny tinyint, i integer, r real, f float, dp double precision,\n"
        "  c char(3), dflt decimal\n"
        ")\n"
        "COMMENT 'chat rows'\n"
        "PARTITIONED BY (dt string, hr int)\n"
        "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n"
        "WITH SERDEPROPERTIES ('ignore.malformed.json'='true', \"mapping.uid\"='UID',\n"
        "                      'dots.in.keys'='it\\'s')\n"
        "STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'\n"
        "  OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n"
        "LOCATION 's3://chat-bucket/Livestreams'\n"
        "TBLPROPERTIES ('has_encrypted_data'='false');\n");
    CPT_EQ_STR(t->name, "chat_messages");
    CPT_CHECK(t->if_not_exists);
    CPT_EQ_INT(t->ncols, 17);
    CPT_EQ_STR(t->cols[0].name, "livestreamid");
    CPT_EQ_STR(t->cols[0].comment, "broadcast id");
    CPT_EQ_STR(t->cols[1].name, "uid");
    CPT_EQ_INT(t->cols[1].type.kind, CP_DDL_BIGINT);
    CPT_EQ_STR(t->cols[2].type.text, "array<string>");
    CPT_EQ_INT(t->cols[2].type.kind, CP_DDL_ARRAY);
    CPT_EQ_STR(t->cols[3].type.text, "struct<a:int,b:map<string,array<double>>>");
    CPT_EQ_INT(t->cols[3].type.kind, CP_DDL_STRUCT);
    CPT_EQ_STR(t->cols[4].type.text, "decimal(10,2)");
    CPT_EQ_INT(t->cols[4].type.scale, 2);
    CPT_EQ_STR(t->cols[5].type.text, "varchar(5)");
    CPT_EQ_INT(t->cols[5].type.length, 5);
    CPT_EQ_INT(t->cols[6].type.kind, CP_DDL_BOOLEAN);
    CPT_EQ_INT(t->cols[7].type.kind, CP_DDL_TIMESTAMP);
    CPT_EQ_INT(t->cols[8].type.kind, CP_DDL_DATE);
    CPT_EQ_INT(t->cols[9].type.kind, CP_DDL_SMALLINT);
    CPT_EQ_INT(t->cols[10].type.kind, CP_DDL_TINYINT);
    CPT_EQ_STR(t->cols[11].type.text, "int");
    CPT_EQ_STR(t->cols[12].type.text, "float");
    CPT_EQ_INT(t->cols[14].type.kind, CP_DDL_DOUBLE);
    CPT_EQ_STR(t->cols[15].type.text, "char(3)");
    CPT_EQ_STR(t->cols[16].type.text, "decimal(10,0)");
    CPT_EQ_STR(t->comment, "chat rows");
    CPT_EQ_INT(t->nparts, 2);
    CPT_EQ_STR(t->parts[0].name, "dt");
    CPT_EQ_INT(t->parts[1].type.kind, CP_DDL_INT);
    CPT_EQ_INT(t->serde, CP_DDL_SERDE_OPENX);
    CPT_EQ_STR(cp_ddl_serde_prop(t, "IGNORE.malformed.json"), "true");
    CPT_CHECK(cp_ddl_prop_true(cp_ddl_serde_prop(t, "ignore.malformed.json")));
    CPT_EQ_STR(cp_ddl_serde_prop(t, "mapping.uid"), "UID");
    CPT_EQ_STR(cp_ddl_serde_prop(t, "dots.in.keys"), "it's");
    CPT_CHECK(cp_ddl_serde_prop(t, "missing") == NULL);
    CPT_EQ_STR(cp_ddl_tbl_prop(t, "has_encrypted_data"), "false");
    CPT_EQ_STR(t->bucket, "chat-bucket");
    CPT_EQ_STR(t->prefix, "Livestreams/");
    CPT_EQ_STR(t->location, "s3://chat-bucket/Livestreams");
    CPT_CHECK(strncmp(t->ddl, "-- the article", 14) == 0);
    CPT_CHECK(t->ddl[strlen(t->ddl) - 1] != ';');
    cp_ddl_table_free(t);
}

static void hcatalog_and_minimal_forms(void)
{
    cp_ddl_table *t = parse_ok("create external table chat (a string) row format serde "
                               "'org.apache.hive.hcatalog.data.JsonSerDe' location "
                               "'s3://b/'");
    CPT_EQ_INT(t->serde, CP_DDL_SERDE_HCATALOG);
    CPT_EQ_STR(t->prefix, "");
    CPT_EQ_STR(t->bucket, "b");
    CPT_EQ_INT(t->nparts, 0);
    CPT_EQ_INT(t->nserde_props, 0);
    cp_ddl_table_free(t);

    /* Clauses in another order, STORED AS JSONFILE without ROW FORMAT, LOCATION bucket only. */
    t = parse_ok("CREATE EXTERNAL TABLE t2 (x int) LOCATION 's3a://bucket-2' STORED AS JSONFILE "
                 "TBLPROPERTIES ()");
    CPT_EQ_INT(t->serde, CP_DDL_SERDE_HCATALOG);
    CPT_EQ_STR(t->bucket, "bucket-2");
    CPT_EQ_STR(t->prefix, "");
    cp_ddl_table_free(t);

    cp_ddl_type ty;
    cp_err err = {0};
    CPT_EQ_INT(cp_ddl_parse_type(CP_SLICE("MAP < STRING , ARRAY<BIGINT> >"), &ty, &err), CP_OK);
    CPT_EQ_STR(ty.text, "map<string,array<bigint>>");
    CPT_EQ_INT(ty.kind, CP_DDL_MAP);
    free(ty.text);
    CPT_EQ_INT(cp_ddl_parse_type(CP_SLICE("bigint bigint"), &ty, &err), CP_EINVAL);
    CPT_EQ_STR(cp_ddl_sqlite_type(CP_DDL_BIGINT), "BIGINT");
    CPT_CHECK(strstr(cp_ddl_sqlite_type(CP_DDL_BOOLEAN), "INT"));
    CPT_CHECK(strstr(cp_ddl_sqlite_type(CP_DDL_STRUCT), "JSON"));
}

static void errors_say_what_and_where(void)
{
    const char *head = "CREATE EXTERNAL TABLE t (a string) ";
    const char *serde = "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' ";
    char sql[512];

    snprintf(sql, sizeof(sql), "%s%s", head, serde);
    expect_contains(parse_err(sql), "LOCATION 's3://bucket/prefix/' is required");

    snprintf(sql, sizeof(sql), "%sLOCATION 's3://b/x/'", head);
    expect_contains(parse_err(sql), "ROW FORMAT SERDE is required");

    snprintf(sql, sizeof(sql),
             "%sROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe' "
             "LOCATION 's3://b/'",
             head);
    expect_contains(parse_err(sql), "SerDe 'org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe' "
                                    "is not supported");

    snprintf(sql, sizeof(sql), "%sROW FORMAT DELIMITED FIELDS TERMINATED BY ','", head);
    expect_contains(parse_err(sql), "ROW FORMAT DELIMITED is not supported");

    snprintf(sql, sizeof(sql), "%s%sSTORED AS PARQUET LOCATION 's3://b/'", head, serde);
    expect_contains(parse_err(sql), "STORED AS PARQUET is not supported");

    snprintf(sql, sizeof(sql), "%s%sLOCATION 'hdfs://nn/x'", head, serde);
    expect_contains(parse_err(sql), "is not an s3:// URL");

    snprintf(sql, sizeof(sql), "%s%sLOCATION 's3:///x'", head, serde);
    expect_contains(parse_err(sql), "names no bucket");

    expect_contains(parse_err("CREATE EXTERNAL TABLE t (a strin) LOCATION 's3://b/'"),
                    "line 1:28: unknown type 'strin'");
    expect_contains(parse_err("CREATE EXTERNAL TABLE t (a binary) LOCATION 's3://b/'"),
                    "type binary is not supported");
    expect_contains(parse_err("CREATE EXTERNAL TABLE t (\n  a string,\n  A int)\n"
                              "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
                              "LOCATION 's3://b/'"),
                    "column 'a' is declared twice");
    expect_contains(parse_err("CREATE EXTERNAL TABLE t (a string) PARTITIONED BY (a string) "
                              "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
                              "LOCATION 's3://b/'"),
                    "both a data column and a partition column");
    expect_contains(parse_err("CREATE EXTERNAL TABLE t (a string\n"
                              "LOCATION 's3://b/'"),
                    "line 2:1: expected ')' but found 'LOCATION'");
    expect_contains(parse_err("CREATE EXTERNAL TABLE t (a string) LOCATION 's3://b/"),
                    "unterminated string");
    expect_contains(parse_err("CREATE EXTERNAL TABLE `my-table` (a string) LOCATION 's3://b/'"),
                    "bad table name 'my-table'");
    expect_contains(parse_err("CREATE EXTERNAL TABLE t () LOCATION 's3://b/'"),
                    "expected a column name but found ')'");
    expect_contains(parse_err("CREATE EXTERNAL TABLE t (`$path` string) LOCATION 's3://b/'"),
                    "$ names are reserved");
    expect_contains(parse_err("CREATE EXTERNAL TABLE t (d decimal(40,2)) LOCATION 's3://b/'"),
                    "decimal precision must be 1..38");
    expect_contains(parse_err("CREATE EXTERNAL TABLE t (a string) CLUSTERED BY (a) INTO 4 "
                              "BUCKETS LOCATION 's3://b/'"),
                    "CLUSTERED BY");
    snprintf(sql, sizeof(sql), "%s%sLOCATION 's3://b/' extra", head, serde);
    expect_contains(parse_err(sql), "expected a table clause");
    snprintf(sql, sizeof(sql), "%s%sLOCATION 's3://b/'; SELECT 1", head, serde);
    expect_contains(parse_err(sql), "expected end of statement");
}

static cp_ddl_stmt classify_ok(const char *sql, cp_ddl_stmt_kind want)
{
    cp_ddl_stmt st;
    cp_err err = {0};
    int rc = cp_ddl_classify(cp_slice_str(sql), &st, &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("classify %s: %s", sql, err.msg);
    }
    CPT_EQ_INT(st.kind, want);
    return st;
}

static void classifies_statements(void)
{
    classify_ok("  /* c */ create EXTERNAL table x (a int)", CP_DDL_CREATE);
    CPT_EQ_INT(classify_ok("DROP TABLE IF EXISTS db.Chat;", CP_DDL_DROP).if_exists, 1);
    CPT_EQ_STR(classify_ok("drop table `Chat`", CP_DDL_DROP).name, "chat");
    CPT_EQ_STR(classify_ok("SHOW TABLES IN default 'ch*|x'", CP_DDL_SHOW_TABLES).pattern, "ch*|x");
    CPT_EQ_STR(classify_ok("SHOW TABLES", CP_DDL_SHOW_TABLES).pattern, "");
    CPT_EQ_STR(classify_ok("show create table chat", CP_DDL_SHOW_CREATE).name, "chat");
    CPT_EQ_STR(classify_ok("SHOW COLUMNS IN chat", CP_DDL_SHOW_COLUMNS).name, "chat");
    CPT_EQ_STR(classify_ok("SHOW PARTITIONS chat", CP_DDL_SHOW_PARTITIONS).name, "chat");
    CPT_EQ_STR(classify_ok("DESCRIBE FORMATTED chat", CP_DDL_DESCRIBE).name, "chat");
    CPT_EQ_STR(classify_ok("desc chat", CP_DDL_DESCRIBE).name, "chat");
    CPT_EQ_STR(classify_ok("MSCK REPAIR TABLE chat", CP_DDL_MSCK).name, "chat");
    classify_ok("SELECT * FROM chat", CP_DDL_SQL);
    classify_ok("CREATE TABLE scratch AS SELECT 1", CP_DDL_SQL);
    classify_ok("DROP VIEW v", CP_DDL_SQL);
    classify_ok("WITH x AS (SELECT 1) SELECT * FROM x", CP_DDL_SQL);

    cp_ddl_stmt st;
    cp_err err = {0};
    CPT_EQ_INT(cp_ddl_classify(CP_SLICE("ALTER TABLE chat ADD PARTITION (dt='x')"), &st, &err),
               CP_EINVAL);
    expect_contains(err.msg, "ALTER TABLE is not supported");
    CPT_EQ_INT(cp_ddl_classify(CP_SLICE("CREATE TABLE t (a int) LOCATION 's3://b/'"), &st, &err),
               CP_EINVAL);
    expect_contains(err.msg, "CREATE EXTERNAL TABLE");
    CPT_EQ_INT(cp_ddl_classify(CP_SLICE("SHOW DATABASES"), &st, &err), CP_EINVAL);
    CPT_EQ_INT(cp_ddl_classify(CP_SLICE("DROP TABLE"), &st, &err), CP_EINVAL);
    CPT_EQ_INT(cp_ddl_classify(CP_SLICE("DESCRIBE chat extra"), &st, &err), CP_EINVAL);
}

typedef struct collected {
    char items[16][128];
    int n;
} collected;

static int collect_stmt(void *ctx, cp_slice s)
{
    collected *c = ctx;
    snprintf(c->items[c->n++], 128, "%.*s", (int) s.len, s.p);
    return 0;
}

static void collect_word(void *ctx, cp_slice s)
{
    collect_stmt(ctx, s);
}

static void splits_scripts_and_finds_words(void)
{
    collected c = {0};
    const char *script = "SELECT 'a;b' FROM t; -- x; y\n"
                         "SELECT \"c;d\" /* ; */ FROM `e;f`;;  \n"
                         "CREATE EXTERNAL TABLE x (a string) LOCATION 's3://b/it\\'s;x'";
    CPT_EQ_INT(cp_ddl_split(cp_slice_str(script), collect_stmt, &c), 0);
    CPT_EQ_INT(c.n, 3);
    CPT_EQ_STR(c.items[0], "SELECT 'a;b' FROM t");
    CPT_EQ_STR(c.items[1], " -- x; y\nSELECT \"c;d\" /* ; */ FROM `e;f`");
    CPT_CHECK(strstr(c.items[2], "it\\'s;x'") != NULL);

    collected only_comment = {0};
    CPT_EQ_INT(cp_ddl_split(CP_SLICE("-- nothing here;\n  ;"), collect_stmt, &only_comment), 0);
    CPT_EQ_INT(only_comment.n, 0);

    collected w = {0};
    cp_ddl_words(CP_SLICE("SELECT \"Chat\".uid, 'chat' FROM [x y] JOIN `q\"r` -- chat2\n"),
                 collect_word, &w);
    CPT_EQ_INT(w.n, 7);
    CPT_EQ_STR(w.items[0], "SELECT");
    CPT_EQ_STR(w.items[1], "Chat");
    CPT_EQ_STR(w.items[2], "uid");
    CPT_EQ_STR(w.items[3], "FROM");
    CPT_EQ_STR(w.items[4], "x y");
    CPT_EQ_STR(w.items[5], "JOIN");
    CPT_EQ_STR(w.items[6], "q\"r");

    CPT_CHECK(cp_ddl_pattern_match("ch*", "chat"));
    CPT_CHECK(cp_ddl_pattern_match("x|CH*T", "chat"));
    CPT_CHECK(!cp_ddl_pattern_match("ch", "chat"));
    CPT_CHECK(cp_ddl_pattern_match("", "anything"));
    CPT_CHECK(cp_ddl_pattern_match("*", ""));
}

static char *catalog_path(void)
{
    static char p[512];
    snprintf(p, sizeof(p), "%s/query/catalog.json", cpt_tmpdir());
    return p;
}

static void catalog_persists_and_locks(void)
{
    cp_catalog *c = NULL;
    cp_err err = {0};
    CPT_EQ_INT(cp_catalog_open(catalog_path(), &c, &err), CP_OK);
    CPT_EQ_INT(cp_catalog_count(c), 0);
    CPT_EQ_INT(cp_catalog_add(c,
                              parse_ok("CREATE EXTERNAL TABLE zeta (a string) LOCATION "
                                       "'s3://b/z/' STORED AS JSONFILE"),
                              &err),
               CP_OK);
    CPT_EQ_INT(
        cp_catalog_add(c,
                       parse_ok("CREATE EXTERNAL TABLE alpha (x bigint COMMENT 'say \"hi\"') "
                                "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
                                "LOCATION 's3://b/a/'"),
                       &err),
        CP_OK);
    CPT_EQ_INT(cp_catalog_add(c,
                              parse_ok("CREATE EXTERNAL TABLE Alpha (y int) LOCATION "
                                       "'s3://b/' STORED AS JSONFILE"),
                              &err),
               CP_EEXIST);
    CPT_EQ_STR(err.msg, "Table alpha already exists");
    CPT_EQ_INT(cp_catalog_count(c), 2);
    CPT_EQ_STR(cp_catalog_at(c, 0)->name, "alpha");
    CPT_EQ_STR(cp_catalog_at(c, 1)->name, "zeta");
    CPT_EQ_STR(cp_catalog_find(c, "ALPHA")->cols[0].name, "x");

    /* A second handle (another process, in effect) sees both, and its change reaches c. */
    cp_catalog *c2 = NULL;
    CPT_EQ_INT(cp_catalog_open(catalog_path(), &c2, &err), CP_OK);
    CPT_EQ_INT(cp_catalog_count(c2), 2);
    CPT_EQ_INT(cp_catalog_drop(c2, "zeta", &err), CP_OK);
    CPT_EQ_INT(cp_catalog_drop(c2, "zeta", &err), CP_ENOTFOUND);
    int changed = 0;
    CPT_EQ_INT(cp_catalog_refresh(c, &changed, &err), CP_OK);
    CPT_EQ_INT(changed, 1);
    CPT_EQ_INT(cp_catalog_count(c), 1);
    CPT_CHECK(cp_catalog_find(c, "zeta") == NULL);
    CPT_EQ_INT(cp_catalog_refresh(c, &changed, &err), CP_OK);
    CPT_EQ_INT(changed, 0);
    cp_catalog_close(c2);
    cp_catalog_close(c);

    /* The file is readable JSON holding the statement text. */
    FILE *f = fopen(catalog_path(), "r");
    CPT_CHECK(f != NULL);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    expect_contains(buf, "\"name\":\"alpha\"");
    expect_contains(buf, "CREATE EXTERNAL TABLE alpha (x bigint COMMENT 'say \\\"hi\\\"')");

    /* A damaged file is reported, not silently emptied. */
    f = fopen(catalog_path(), "w");
    fputs("{\"tables\":[{\"name\":\"x\",\"ddl\":\"CREATE EXTERNAL TABLE x (\"}]}", f);
    fclose(f);
    CPT_EQ_INT(cp_catalog_open(catalog_path(), &c, &err), CP_ECORRUPT);
    expect_contains(err.msg, "catalog entry 'x' does not parse");
    f = fopen(catalog_path(), "w");
    fputs("[1,2", f);
    fclose(f);
    CPT_EQ_INT(cp_catalog_open(catalog_path(), &c, &err), CP_ECORRUPT);

    /* In memory: no file at all. */
    CPT_EQ_INT(cp_catalog_open(NULL, &c, &err), CP_OK);
    CPT_EQ_INT(cp_catalog_add(c,
                              parse_ok("CREATE EXTERNAL TABLE m (a int) LOCATION 's3://b/' "
                                       "STORED AS JSONFILE"),
                              &err),
               CP_OK);
    CPT_EQ_INT(cp_catalog_count(c), 1);
    cp_catalog_close(c);
}

CPT_LIST = {
    {"openx_table_with_everything", openx_table_with_everything},
    {"hcatalog_and_minimal_forms", hcatalog_and_minimal_forms},
    {"errors_say_what_and_where", errors_say_what_and_where},
    {"classifies_statements", classifies_statements},
    {"splits_scripts_and_finds_words", splits_scripts_and_finds_words},
    {"catalog_persists_and_locks", catalog_persists_and_locks},
    {0},
};
