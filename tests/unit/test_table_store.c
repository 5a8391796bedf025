/* SPDX-License-Identifier: MIT */
/* The item store: tables, writes with conditions, change records, queries, scans, reopen. */
#include "cpt.h"

#include <pthread.h>

#include "core/mem.h"
#include "core/seglog.h"
#include "table/change.h"
#include "table/store.h"

/* Build an item from DynamoDB JSON (test convenience). */
static cp_buf item_json(const char *json)
{
    cp_buf out = CP_BUF_INIT;
    cp_item_builder b;
    cp_item_builder_init(&b, &out);
    cp_json_lexer lx;
    cp_json_lexer_init(&lx, cp_slice_str(json));
    cp_err err = {0};
    if (cp_item_from_json(&lx, &b, &err) != CP_OK) {
        CPT_FAIL_AT("bad test item %s: %s", json, err.msg);
    }
    return out;
}

/* Strings handed out by to_json, freed at exit so LeakSanitizer stays quiet. */
static char *strings[1024];
static int nstrings;

static void free_strings(void)
{
    for (int i = 0; i < nstrings; i++) {
        free(strings[i]);
    }
}

static char *to_json(cp_slice item)
{
    cp_buf out = CP_BUF_INIT;
    cp_item_to_json(item, &out);
    if (nstrings == 0) {
        atexit(free_strings);
    }
    CPT_CHECK(nstrings < 1024);
    strings[nstrings++] = out.p;
    return out.p;
}

static cp_db *open_db(void)
{
    cp_db *db = NULL;
    cp_err err = {0};
    cp_db_opts o = {.dir = cpt_tmpdir()};
    if (cp_db_open(&o, &db, &err) != CP_OK) {
        CPT_FAIL_AT("open: %s", err.msg);
    }
    return db;
}

static void create_table(cp_db *db, const char *name, cp_av_type range_type)
{
    cp_table_info t = {0};
    snprintf(t.name, sizeof(t.name), "%s", name);
    snprintf(t.key.hash_name, sizeof(t.key.hash_name), "pk");
    t.key.hash_type = CP_AV_S;
    if (range_type) {
        snprintf(t.key.range_name, sizeof(t.key.range_name), "sk");
        t.key.range_type = range_type;
    }
    cp_err err = {0};
    CPT_EQ_INT(cp_db_create_table(db, &t, &err), CP_OK);
    cp_table_info_clear(&t);
}

static int write1(cp_db *db, cp_write_kind kind, const char *json, cp_write_op *out)
{
    cp_buf item = item_json(json);
    cp_write_op op = {.kind = kind, .table = "T", .item = cp_buf_slice(&item), .want_images = 1};
    cp_err err = {0};
    CPT_EQ_INT(cp_db_write(db, &op, 1, 0, &err), CP_OK);
    int rc = op.rc;
    if (out) {
        *out = op;
    } else {
        cp_write_op_clear(&op);
    }
    cp_buf_free(&item);
    return rc;
}

/* Read every change record in the log. */
typedef struct changes {
    int n;
    cp_change_event ev[64];
    char *keys[64], *new_img[64], *old_img[64];
} changes;

static void read_changes(cp_db *db, changes *out)
{
    memset(out, 0, sizeof(*out));
    cp_seglog_reader *r;
    cp_err err = {0};
    CPT_EQ_INT(cp_seglog_reader_open(cp_db_log(db), cp_seglog_start(cp_db_log(db)), &r, &err),
               CP_OK);
    cp_slice p;
    uint64_t pos;
    int64_t ts;
    while (cp_seglog_read(r, &p, &pos, &ts, &err) == CP_OK && out->n < 64) {
        cp_change c;
        CPT_EQ_INT(cp_change_decode(p, &c), CP_OK);
        out->ev[out->n] = c.event;
        out->keys[out->n] = to_json(c.keys);
        out->new_img[out->n] = c.new_image.len ? to_json(c.new_image) : NULL;
        out->old_img[out->n] = c.old_image.len ? to_json(c.old_image) : NULL;
        out->n++;
    }
    cp_seglog_reader_close(r);
}

static void tables_create_list_delete(void)
{
    cp_db *db = open_db();
    create_table(db, "b", 0);
    create_table(db, "a", CP_AV_N);
    cp_table_info t = {0};
    snprintf(t.name, sizeof(t.name), "a");
    snprintf(t.key.hash_name, sizeof(t.key.hash_name), "pk");
    t.key.hash_type = CP_AV_S;
    cp_err err = {0};
    CPT_EQ_INT(cp_db_create_table(db, &t, &err), CP_EEXIST);
    cp_buf names = CP_BUF_INIT;
    size_t n = 0;
    CPT_EQ_INT(cp_db_list_tables(db, NULL, 10, &names, &n, &err), CP_OK);
    CPT_EQ_INT(n, 2);
    CPT_EQ_STR(names.p, "a");
    CPT_EQ_STR(names.p + 2, "b");
    cp_buf_reset(&names);
    CPT_EQ_INT(cp_db_list_tables(db, "a", 10, &names, &n, &err), CP_OK);
    CPT_EQ_INT(n, 1);
    CPT_EQ_STR(names.p, "b");
    cp_table_info got = {0};
    CPT_EQ_INT(cp_db_get_table(db, "a", &got, &err), CP_OK);
    CPT_EQ_INT(got.key.range_type, CP_AV_N);
    cp_table_info_clear(&got);
    /* Deleting the table's last items empties the whole items database. */
    cp_buf it = item_json("{\"pk\":{\"S\":\"x\"},\"sk\":{\"N\":\"1\"}}");
    cp_write_op op = {.kind = CP_WRITE_PUT, .table = "a", .item = cp_buf_slice(&it)};
    CPT_EQ_INT(cp_db_write(db, &op, 1, 0, &err), CP_OK);
    CPT_EQ_INT(op.rc, CP_OK);
    cp_buf_free(&it);
    CPT_EQ_INT(cp_db_delete_table(db, "a", NULL, &err), CP_OK);
    CPT_EQ_INT(cp_db_get_table(db, "a", &got, &err), CP_ENOTFOUND);
    cp_db_close(db);
    db = open_db(); /* survives reopen */
    CPT_EQ_INT(cp_db_get_table(db, "b", &got, &err), CP_OK);
    cp_table_info_clear(&got);
    CPT_EQ_INT(cp_db_get_table(db, "a", &got, &err), CP_ENOTFOUND);
    cp_buf_free(&names);
    cp_db_close(db);
}

static void key_validation_messages(void)
{
    cp_db *db = open_db();
    create_table(db, "T", CP_AV_N);
    cp_write_op op;
    CPT_EQ_INT(write1(db, CP_WRITE_PUT, "{\"pk\":{\"S\":\"a\"}}", &op), CP_EINVAL);
    CPT_EQ_STR(op.err.msg, "One or more parameter values were invalid: Missing the key sk in the "
                           "item");
    cp_write_op_clear(&op);
    CPT_EQ_INT(write1(db, CP_WRITE_PUT, "{\"pk\":{\"N\":\"1\"},\"sk\":{\"N\":\"1\"}}", &op),
               CP_EINVAL);
    CPT_EQ_STR(op.err.msg, "One or more parameter values were invalid: Type mismatch for key pk "
                           "expected: S actual: N");
    cp_write_op_clear(&op);
    CPT_EQ_INT(write1(db, CP_WRITE_DELETE, "{\"pk\":{\"S\":\"a\"}}", &op), CP_EINVAL);
    CPT_EQ_STR(op.err.msg, "The provided key element does not match the schema");
    cp_write_op_clear(&op);
    CPT_EQ_INT(write1(db, CP_WRITE_PUT, "{\"pk\":{\"S\":\"\"},\"sk\":{\"N\":\"1\"}}", &op),
               CP_EINVAL);
    CPT_CHECK(strstr(op.err.msg, "empty string value. Key: pk") != NULL);
    cp_write_op_clear(&op);
    cp_buf none = CP_BUF_INIT;
    CPT_EQ_INT(cp_db_get(db, "nope", cp_slice_str(""), &none, NULL), CP_ENOTFOUND);
    changes ch;
    read_changes(db, &ch);
    CPT_EQ_INT(ch.n, 0);
    cp_db_close(db);
}

static void change_records_per_mutation(void)
{
    cp_db *db = open_db();
    create_table(db, "T", 0);
    CPT_EQ_INT(write1(db, CP_WRITE_PUT, "{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"1\"}}", NULL), 0);
    /* Identical put: no change, no record. */
    CPT_EQ_INT(write1(db, CP_WRITE_PUT, "{\"v\":{\"N\":\"1.0\"},\"pk\":{\"S\":\"a\"}}", NULL), 0);
    CPT_EQ_INT(write1(db, CP_WRITE_PUT, "{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"2\"}}", NULL), 0);
    CPT_EQ_INT(write1(db, CP_WRITE_DELETE, "{\"pk\":{\"S\":\"a\"}}", NULL), 0);
    CPT_EQ_INT(write1(db, CP_WRITE_DELETE, "{\"pk\":{\"S\":\"a\"}}", NULL), 0); /* missing */
    changes ch;
    read_changes(db, &ch);
    CPT_EQ_INT(ch.n, 3);
    CPT_EQ_INT(ch.ev[0], CP_CHANGE_INSERT);
    CPT_EQ_STR(ch.keys[0], "{\"pk\":{\"S\":\"a\"}}");
    CPT_EQ_STR(ch.new_img[0], "{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"1\"}}");
    CPT_CHECK(ch.old_img[0] == NULL);
    CPT_EQ_INT(ch.ev[1], CP_CHANGE_MODIFY);
    CPT_EQ_STR(ch.new_img[1], "{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"2\"}}");
    CPT_EQ_STR(ch.old_img[1], "{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"1\"}}");
    CPT_EQ_INT(ch.ev[2], CP_CHANGE_REMOVE);
    CPT_CHECK(ch.new_img[2] == NULL);
    CPT_EQ_STR(ch.old_img[2], "{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"2\"}}");
    cp_db_close(db);
}

static int refuse_if_present(void *ctx, cp_slice cur, cp_err *err)
{
    (void) ctx;
    return cur.len ? cp_err_set(err, CP_ECONDITION, "The conditional request failed") : CP_OK;
}

/* Update: add 1 to attribute "n" (as text), keeping the key. */
static int bump(void *ctx, cp_slice cur, cp_buf *out, cp_err *err)
{
    (void) ctx;
    (void) err;
    cp_item_builder b;
    cp_item_builder_init(&b, out);
    cp_item_begin(&b);
    cp_item_put_name(&b, CP_SLICE("pk"));
    cp_item_put_scalar(&b, CP_AV_S, CP_SLICE("a"));
    cp_av n;
    int v = cur.len && cp_item_find(cur, CP_SLICE("n"), &n) ? atoi(cp_av_bytes(n).p) : 0;
    char text[16];
    snprintf(text, sizeof(text), "%d", v + 1);
    cp_item_put_name(&b, CP_SLICE("n"));
    cp_item_put_scalar(&b, CP_AV_N, cp_slice_str(text));
    cp_item_end(&b);
    return CP_OK;
}

static void conditions_updates_and_transactions(void)
{
    cp_db *db = open_db();
    create_table(db, "T", 0);
    cp_buf a = item_json("{\"pk\":{\"S\":\"a\"}}");
    cp_write_op op = {.kind = CP_WRITE_PUT, .table = "T", .item = cp_buf_slice(&a),
                      .condition = refuse_if_present};
    CPT_EQ_INT(cp_db_write(db, &op, 1, 0, NULL), CP_OK);
    CPT_EQ_INT(op.rc, CP_OK);
    CPT_EQ_INT(cp_db_write(db, &op, 1, 0, NULL), CP_OK);
    CPT_EQ_INT(op.rc, CP_ECONDITION);
    CPT_EQ_STR(to_json(cp_buf_slice(&op.old_item)), "{\"pk\":{\"S\":\"a\"}}");
    CPT_EQ_INT(op.changed, 0);
    cp_write_op_clear(&op);

    cp_write_op up = {.kind = CP_WRITE_UPDATE, .table = "T", .item = cp_buf_slice(&a),
                      .update = bump, .want_images = 1};
    CPT_EQ_INT(cp_db_write(db, &up, 1, 0, NULL), CP_OK);
    CPT_EQ_INT(up.rc, CP_OK);
    CPT_EQ_STR(to_json(cp_buf_slice(&up.new_item)), "{\"pk\":{\"S\":\"a\"},\"n\":{\"N\":\"1\"}}");
    cp_write_op_clear(&up);

    /* Transaction: the second op's condition fails, so the first is not applied either. */
    cp_buf b = item_json("{\"pk\":{\"S\":\"b\"}}");
    cp_write_op tx[2] = {
        {.kind = CP_WRITE_PUT, .table = "T", .item = cp_buf_slice(&b)},
        {.kind = CP_WRITE_UPDATE, .table = "T", .item = cp_buf_slice(&a), .update = bump,
         .condition = refuse_if_present},
    };
    CPT_EQ_INT(cp_db_write(db, tx, 2, CP_WRITE_ATOMIC, NULL), CP_OK);
    CPT_EQ_INT(tx[0].rc, CP_ETXN);
    CPT_EQ_INT(tx[1].rc, CP_ECONDITION);
    cp_buf got = CP_BUF_INIT;
    CPT_EQ_INT(cp_db_get(db, "T", cp_buf_slice(&b), &got, NULL), CP_ENOTFOUND);
    cp_write_op_clear(&tx[0]);
    cp_write_op_clear(&tx[1]);
    tx[1].condition = NULL;
    CPT_EQ_INT(cp_db_write(db, tx, 2, CP_WRITE_ATOMIC, NULL), CP_OK);
    CPT_EQ_INT(tx[0].rc, CP_OK);
    CPT_EQ_INT(tx[1].rc, CP_OK);
    CPT_EQ_INT(cp_db_get(db, "T", cp_buf_slice(&b), &got, NULL), CP_OK);
    CPT_EQ_INT(cp_db_get(db, "T", cp_buf_slice(&a), &got, NULL), CP_OK);
    CPT_EQ_STR(to_json(cp_buf_slice(&got)), "{\"pk\":{\"S\":\"a\"},\"n\":{\"N\":\"2\"}}");
    changes ch;
    read_changes(db, &ch);
    CPT_EQ_INT(ch.n, 4); /* insert a, modify a, insert b, modify a */
    CPT_EQ_INT(ch.ev[2], CP_CHANGE_INSERT);
    CPT_EQ_INT(ch.ev[3], CP_CHANGE_MODIFY);
    cp_write_op_clear(&tx[0]);
    cp_write_op_clear(&tx[1]);
    cp_buf_free(&a);
    cp_buf_free(&b);
    cp_buf_free(&got);
    cp_db_close(db);
}

typedef struct collect {
    char out[2048];
    int n, stop_after;
} collect;

static int collect_sk(void *ctx, cp_slice item)
{
    collect *c = ctx;
    cp_av v;
    CPT_CHECK(cp_item_find(item, CP_SLICE("sk"), &v));
    cp_slice b = cp_av_bytes(v);
    size_t len = strlen(c->out);
    snprintf(c->out + len, sizeof(c->out) - len, "%s%.*s", c->n ? "," : "", (int) b.len, b.p);
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static const char *query(cp_db *db, const char *pk, cp_range_op op, const char *v1,
                         const char *v2, int backward, const char *start, int limit)
{
    static collect c;
    memset(&c, 0, sizeof(c));
    c.stop_after = limit;
    char json[256];
    snprintf(json, sizeof(json), "{\"h\":{\"S\":\"%s\"},\"a\":{\"N\":\"%s\"},\"b\":{\"N\":\"%s\"}}",
             pk, v1 ? v1 : "0", v2 ? v2 : "0");
    cp_buf vals = item_json(json);
    cp_db_query q = {.table = "T", .op = op, .backward = backward};
    cp_item_find(cp_buf_slice(&vals), CP_SLICE("h"), &q.hash);
    cp_item_find(cp_buf_slice(&vals), CP_SLICE("a"), &q.r1);
    cp_item_find(cp_buf_slice(&vals), CP_SLICE("b"), &q.r2);
    cp_buf sk = CP_BUF_INIT;
    if (start) {
        snprintf(json, sizeof(json), "{\"pk\":{\"S\":\"%s\"},\"sk\":{\"N\":\"%s\"}}", pk, start);
        sk = item_json(json);
        q.start_key = cp_buf_slice(&sk);
    }
    cp_err err = {0};
    CPT_EQ_INT(cp_db_query_items(db, &q, collect_sk, &c, &err), CP_OK);
    cp_buf_free(&vals);
    cp_buf_free(&sk);
    return c.out;
}

static void query_sort_key_conditions(void)
{
    cp_db *db = open_db();
    create_table(db, "T", CP_AV_N);
    const char *nums[] = {"-5", "-0.5", "0", "1", "2", "10", "10.5", "100", "1E3"};
    for (int i = 0; i < 9; i++) {
        char json[128];
        snprintf(json, sizeof(json), "{\"pk\":{\"S\":\"p\"},\"sk\":{\"N\":\"%s\"}}", nums[i]);
        CPT_EQ_INT(write1(db, CP_WRITE_PUT, json, NULL), 0);
        snprintf(json, sizeof(json), "{\"pk\":{\"S\":\"q\"},\"sk\":{\"N\":\"%s\"}}", nums[i]);
        CPT_EQ_INT(write1(db, CP_WRITE_PUT, json, NULL), 0);
    }
    CPT_EQ_STR(query(db, "p", CP_RANGE_NONE, 0, 0, 0, 0, 0), "-5,-0.5,0,1,2,10,10.5,100,1000");
    CPT_EQ_STR(query(db, "p", CP_RANGE_NONE, 0, 0, 1, 0, 0), "1000,100,10.5,10,2,1,0,-0.5,-5");
    CPT_EQ_STR(query(db, "p", CP_RANGE_EQ, "10.0", 0, 0, 0, 0), "10");
    CPT_EQ_STR(query(db, "p", CP_RANGE_LT, "1", 0, 0, 0, 0), "-5,-0.5,0");
    CPT_EQ_STR(query(db, "p", CP_RANGE_LE, "1", 0, 1, 0, 0), "1,0,-0.5,-5");
    CPT_EQ_STR(query(db, "p", CP_RANGE_GT, "10", 0, 0, 0, 0), "10.5,100,1000");
    CPT_EQ_STR(query(db, "p", CP_RANGE_GE, "10", 0, 1, 0, 0), "1000,100,10.5,10");
    CPT_EQ_STR(query(db, "p", CP_RANGE_BETWEEN, "-0.5", "10", 0, 0, 0), "-0.5,0,1,2,10");
    CPT_EQ_STR(query(db, "p", CP_RANGE_BETWEEN, "-0.5", "10", 1, 0, 0), "10,2,1,0,-0.5");
    CPT_EQ_STR(query(db, "p", CP_RANGE_NONE, 0, 0, 0, 0, 3), "-5,-0.5,0");
    CPT_EQ_STR(query(db, "p", CP_RANGE_NONE, 0, 0, 0, "0", 3), "1,2,10");
    CPT_EQ_STR(query(db, "p", CP_RANGE_NONE, 0, 0, 1, "0", 0), "-0.5,-5");
    CPT_EQ_STR(query(db, "p", CP_RANGE_GT, "1", 0, 0, "10", 0), "10.5,100,1000");
    CPT_EQ_STR(query(db, "zz", CP_RANGE_NONE, 0, 0, 0, 0, 0), "");
    cp_db_close(db);
}

static void query_begins_with_on_strings(void)
{
    cp_db *db = open_db();
    create_table(db, "T", CP_AV_S);
    const char *sks[] = {"a", "ab", "abc", "abd", "b", "a\xff", "ac"};
    for (int i = 0; i < 7; i++) {
        char json[128];
        snprintf(json, sizeof(json), "{\"pk\":{\"S\":\"p\"},\"sk\":{\"S\":\"%s\"}}", sks[i]);
        cp_buf it = CP_BUF_INIT;
        cp_item_builder b;
        cp_item_builder_init(&b, &it);
        cp_item_begin(&b);
        cp_item_put_name(&b, CP_SLICE("pk"));
        cp_item_put_scalar(&b, CP_AV_S, CP_SLICE("p"));
        cp_item_put_name(&b, CP_SLICE("sk"));
        cp_item_put_scalar(&b, CP_AV_S, cp_slice_str(sks[i])); /* raw bytes, even 0xff */
        cp_item_end(&b);
        cp_write_op op = {.kind = CP_WRITE_PUT, .table = "T", .item = cp_buf_slice(&it)};
        CPT_EQ_INT(cp_db_write(db, &op, 1, 0, NULL), CP_OK);
        CPT_EQ_INT(op.rc, CP_OK);
        cp_buf_free(&it);
    }
    cp_buf vals = item_json("{\"h\":{\"S\":\"p\"},\"a\":{\"S\":\"ab\"}}");
    cp_db_query q = {.table = "T", .op = CP_RANGE_BEGINS_WITH};
    cp_item_find(cp_buf_slice(&vals), CP_SLICE("h"), &q.hash);
    cp_item_find(cp_buf_slice(&vals), CP_SLICE("a"), &q.r1);
    collect c = {{0}, 0, 0};
    CPT_EQ_INT(cp_db_query_items(db, &q, collect_sk, &c, NULL), CP_OK);
    CPT_EQ_STR(c.out, "ab,abc,abd");
    memset(&c, 0, sizeof(c));
    q.backward = 1;
    CPT_EQ_INT(cp_db_query_items(db, &q, collect_sk, &c, NULL), CP_OK);
    CPT_EQ_STR(c.out, "abd,abc,ab");
    cp_buf_free(&vals);
    cp_db_close(db);
}

static int count_visit(void *ctx, cp_slice item)
{
    (void) item;
    (*(int *) ctx)++;
    return 0;
}

static void scan_segments_partition_the_table(void)
{
    cp_db *db = open_db();
    create_table(db, "T", 0);
    create_table(db, "U", 0);
    enum { N = 500 };
    cp_write_op *ops = cp_calloc(N, sizeof(*ops));
    cp_buf *items = cp_calloc(N, sizeof(*items));
    for (int i = 0; i < N; i++) {
        char json[64];
        snprintf(json, sizeof(json), "{\"pk\":{\"S\":\"k%d\"}}", i);
        items[i] = item_json(json);
        ops[i] = (cp_write_op){.kind = CP_WRITE_PUT, .table = i % 5 ? "T" : "U",
                               .item = cp_buf_slice(&items[i])};
    }
    CPT_EQ_INT(cp_db_write(db, ops, N, 0, NULL), CP_OK);
    int all = 0;
    cp_db_scan s = {.table = "T"};
    CPT_EQ_INT(cp_db_scan_items(db, &s, count_visit, &all, NULL), CP_OK);
    CPT_EQ_INT(all, N * 4 / 5);
    int sum = 0, nonempty = 0;
    for (uint32_t seg = 0; seg < 7; seg++) {
        int n = 0;
        s = (cp_db_scan){.table = "T", .segment = seg, .total_segments = 7};
        CPT_EQ_INT(cp_db_scan_items(db, &s, count_visit, &n, NULL), CP_OK);
        sum += n;
        nonempty += n > 0;
    }
    CPT_EQ_INT(sum, all);
    CPT_EQ_INT(nonempty, 7); /* hashed partitions spread over every segment */
    s = (cp_db_scan){.table = "T", .segment = 7, .total_segments = 7};
    CPT_EQ_INT(cp_db_scan_items(db, &s, count_visit, &sum, NULL), CP_EINVAL);
    uint64_t cnt = 0, bytes = 0;
    cp_table_info t = {0};
    CPT_EQ_INT(cp_db_get_table(db, "U", &t, NULL), CP_OK);
    CPT_EQ_INT(cp_db_table_stats(db, t.id, &cnt, &bytes, NULL), CP_OK);
    CPT_EQ_INT(cnt, N / 5);
    cp_table_info_clear(&t);
    for (int i = 0; i < N; i++) {
        cp_buf_free(&items[i]);
    }
    cp_free(items);
    cp_free(ops);
    cp_db_close(db);
}

/* Many threads writing at once: every acknowledged write is present and logged once. */
typedef struct writer_arg {
    cp_db *db;
    int id, n;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        char json[96];
        snprintf(json, sizeof(json), "{\"pk\":{\"S\":\"t%d-%d\"},\"v\":{\"N\":\"%d\"}}", a->id, i,
                 i);
        cp_buf it = item_json(json);
        cp_write_op op = {.kind = CP_WRITE_PUT, .table = "T", .item = cp_buf_slice(&it)};
        if (cp_db_write(a->db, &op, 1, 0, NULL) != CP_OK || op.rc != CP_OK) {
            CPT_FAIL_AT("write failed");
        }
        cp_buf_free(&it);
    }
    return NULL;
}

static void concurrent_writers_group_commit(void)
{
    cp_db *db = open_db();
    create_table(db, "T", 0);
    enum { THREADS = 8, EACH = 300 };
    pthread_t th[THREADS];
    writer_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (writer_arg){db, i, EACH};
        pthread_create(&th[i], NULL, writer, &args[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    cp_db_close(db);
    db = open_db();
    int n = 0;
    cp_db_scan s = {.table = "T"};
    CPT_EQ_INT(cp_db_scan_items(db, &s, count_visit, &n, NULL), CP_OK);
    CPT_EQ_INT(n, THREADS * EACH);
    cp_seglog_reader *r;
    CPT_EQ_INT(cp_seglog_reader_open(cp_db_log(db), 0, &r, NULL), CP_OK);
    cp_slice p;
    uint64_t pos;
    int64_t ts, last_ts = 0;
    int records = 0;
    while (cp_seglog_read(r, &p, &pos, &ts, NULL) == CP_OK) {
        cp_change c;
        CPT_EQ_INT(cp_change_decode(p, &c), CP_OK);
        CPT_EQ_INT(c.event, CP_CHANGE_INSERT);
        CPT_CHECK(c.ts_us / 1000 >= last_ts);
        last_ts = c.ts_us / 1000;
        records++;
    }
    cp_seglog_reader_close(r);
    CPT_EQ_INT(records, THREADS * EACH);
    cp_db_close(db);
}

static void opens_nested_and_refuses_files(void)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/a/b/c", cpt_tmpdir());
    cp_db *db = NULL;
    cp_err err = {0};
    cp_db_opts o = {.dir = dir};
    CPT_EQ_INT(cp_db_open(&o, &db, &err), CP_OK); /* like mkdir -p */
    cp_db_close(db);
    char file[512];
    snprintf(file, sizeof(file), "%s/plain", cpt_tmpdir());
    FILE *f = fopen(file, "w");
    fclose(f);
    snprintf(dir, sizeof(dir), "%s/plain/x", cpt_tmpdir());
    o.dir = dir;
    CPT_EQ_INT(cp_db_open(&o, &db, &err), -ENOTDIR);
    CPT_CHECK(strstr(err.msg, "Not a directory") != NULL);
}

CPT_LIST = {
    {"opens_nested_and_refuses_files", opens_nested_and_refuses_files},
    {"tables_create_list_delete", tables_create_list_delete},
    {"key_validation_messages", key_validation_messages},
    {"change_records_per_mutation", change_records_per_mutation},
    {"conditions_updates_and_transactions", conditions_updates_and_transactions},
    {"query_sort_key_conditions", query_sort_key_conditions},
    {"query_begins_with_on_strings", query_begins_with_on_strings},
    {"scan_segments_partition_the_table", scan_segments_partition_the_table},
    {"concurrent_writers_group_commit", concurrent_writers_group_commit},
    {0},
};
