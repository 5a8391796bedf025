/* SPDX-License-Identifier: MIT */
/* Change capture end to end: store writes -> change log -> outbox relay -> Kinesis stream. */
#include "cpt.h"

#include "cdc/outbox.h"
#include "cdc/record.h"
#include "core/json.h"
#include "core/mem.h"
#include "table/change.h"

typedef struct env {
    cp_db *db;
    cp_streams *streams;
    cp_outbox *ob;
} env;

static int add_destination(void *ctx, cp_table_info *t, cp_err *err)
{
    (void) err;
    snprintf(t->dest[t->ndest].stream_name, CP_NAME_MAX, "%s", (const char *) ctx);
    t->dest[t->ndest].active = 1;
    t->ndest++;
    return CP_OK;
}

static void env_open(env *e, int create)
{
    cp_err err = {0};
    cp_db_opts o = {.dir = cpt_tmpdir()};
    CPT_EQ_INT(cp_db_open(&o, &e->db, &err), CP_OK);
    CPT_EQ_INT(cp_streams_open(cpt_tmpdir(), NULL, &e->streams, &err), CP_OK);
    if (create) {
        cp_table_info t = {0};
        snprintf(t.name, sizeof(t.name), "Chat");
        snprintf(t.key.hash_name, sizeof(t.key.hash_name), "LivestreamID");
        t.key.hash_type = CP_AV_S;
        snprintf(t.key.range_name, sizeof(t.key.range_name), "UID");
        t.key.range_type = CP_AV_N;
        CPT_EQ_INT(cp_db_create_table(e->db, &t, &err), CP_OK);
        cp_table_info_clear(&t);
        CPT_EQ_INT(cp_streams_create(e->streams, CP_SLICE("cdc"), CP_STREAM_ON_DEMAND, 0, &err),
                   CP_OK);
        CPT_EQ_INT(cp_db_update_table(e->db, "Chat", add_destination, "cdc", &err), CP_OK);
    }
    CPT_EQ_INT(cp_outbox_start(e->db, e->streams, NULL, &e->ob, &err), CP_OK);
}

static void env_close(env *e)
{
    cp_outbox_stop(e->ob);
    cp_streams_close(e->streams);
    cp_db_close(e->db);
}

static void put_chat(cp_db *db, int live, int uid, const char *msg, cp_write_kind kind)
{
    char l[32], u[32];
    snprintf(l, sizeof(l), "live-%d", live);
    snprintf(u, sizeof(u), "%d", uid);
    cp_buf item = CP_BUF_INIT;
    cp_item_builder b;
    cp_item_builder_init(&b, &item);
    cp_item_begin(&b);
    cp_item_put_name(&b, CP_SLICE("LivestreamID"));
    cp_item_put_scalar(&b, CP_AV_S, cp_slice_str(l));
    cp_item_put_name(&b, CP_SLICE("UID"));
    cp_item_put_scalar(&b, CP_AV_N, cp_slice_str(u));
    if (msg) {
        cp_item_put_name(&b, CP_SLICE("Message"));
        cp_item_put_scalar(&b, CP_AV_S, cp_slice_str(msg));
    }
    cp_item_end(&b);
    cp_write_op op = {.kind = kind, .table = "Chat", .item = cp_buf_slice(&item)};
    CPT_EQ_INT(cp_db_write(db, &op, 1, 0, NULL), CP_OK);
    CPT_EQ_INT(op.rc, CP_OK);
    cp_buf_free(&item);
}

/* Every record of the stream: source ids (must be unique) and a tally of event names. */
typedef struct tally {
    uint64_t *sources;
    size_t n;
    int insert, modify, remove;
} tally;

static void read_stream(cp_streams *s, tally *t)
{
    memset(t, 0, sizeof(*t));
    cp_stream_desc *d;
    CPT_EQ_INT(cp_streams_describe(s, CP_SLICE("cdc"), &d, NULL), CP_OK);
    for (size_t i = 0; i < d->nshards; i++) {
        uint64_t pos;
        CPT_EQ_INT(cp_streams_iterator(s, CP_SLICE("cdc"), d->shards[i].index,
                                       CP_ITER_TRIM_HORIZON, CP_SLICE(""), 0, &pos, NULL),
                   CP_OK);
        cp_stream_read r = CP_STREAM_READ_INIT;
        uint64_t last_source = 0;
        for (;;) {
            CPT_EQ_INT(cp_streams_read(s, CP_SLICE("cdc"), d->shards[i].index, pos, 1000,
                                       1 << 20, &r, NULL),
                       CP_OK);
            if (r.batch.n == 0) {
                break;
            }
            for (size_t k = 0; k < r.batch.n; k++) {
                const cp_stream_rec *rec = &r.batch.recs[k];
                /* Within a shard, changes arrive in commit order. */
                CPT_CHECK(rec->source_id > last_source);
                last_source = rec->source_id;
                t->sources = cp_realloc(t->sources, (t->n + 1) * sizeof(uint64_t));
                t->sources[t->n++] = rec->source_id;
                cp_slice data = rec->data;
                if (memmem(data.p, data.len, "\"eventName\":\"INSERT\"", 20)) {
                    t->insert++;
                } else if (memmem(data.p, data.len, "\"eventName\":\"MODIFY\"", 20)) {
                    t->modify++;
                } else if (memmem(data.p, data.len, "\"eventName\":\"REMOVE\"", 20)) {
                    t->remove++;
                }
                CPT_EQ_INT(rec->partition_key.len, 32);
            }
            pos = r.next_pos;
        }
        cp_stream_read_free(&r);
    }
    cp_stream_desc_free(d);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

static void assert_unique(tally *t)
{
    qsort(t->sources, t->n, sizeof(uint64_t), cmp_u64);
    for (size_t i = 1; i < t->n; i++) {
        CPT_CHECK(t->sources[i] != t->sources[i - 1]);
    }
}

static void relays_every_change_once(void)
{
    env e;
    env_open(&e, 1);
    for (int i = 0; i < 300; i++) {
        put_chat(e.db, i % 10, i, "hello \xec\x95\x88\xeb\x85\x95", CP_WRITE_PUT);
    }
    for (int i = 0; i < 50; i++) {
        put_chat(e.db, i % 10, i, "edited", CP_WRITE_PUT);
    }
    for (int i = 0; i < 20; i++) {
        put_chat(e.db, i % 10, i, NULL, CP_WRITE_DELETE);
    }
    CPT_EQ_INT(cp_outbox_sync(e.ob, 10000), CP_OK);
    tally t;
    read_stream(e.streams, &t);
    CPT_EQ_INT(t.n, 370);
    CPT_EQ_INT(t.insert, 300);
    CPT_EQ_INT(t.modify, 50);
    CPT_EQ_INT(t.remove, 20);
    assert_unique(&t);
    cp_free(t.sources);
    cp_outbox_stats st;
    cp_outbox_stats_get(e.ob, &st);
    CPT_EQ_INT(st.forwarded, 370);
    env_close(&e);
}

static void restart_with_stale_cursor_skips_duplicates(void)
{
    env e;
    env_open(&e, 1);
    for (int i = 0; i < 200; i++) {
        put_chat(e.db, i % 7, i, "x", CP_WRITE_PUT);
    }
    CPT_EQ_INT(cp_outbox_sync(e.ob, 10000), CP_OK);
    env_close(&e);
    /* Simulate a crash before the cursor was persisted: rewind it to the start. */
    {
        cp_db *db;
        cp_db_opts o = {.dir = cpt_tmpdir()};
        CPT_EQ_INT(cp_db_open(&o, &db, NULL), CP_OK);
        unsigned char zero[8] = {0};
        CPT_EQ_INT(cp_db_meta_put(db, "outbox.cursor", cp_slice_of((char *) zero, 8), NULL),
                   CP_OK);
        cp_db_close(db);
    }
    env_open(&e, 0);
    for (int i = 200; i < 250; i++) {
        put_chat(e.db, i % 7, i, "y", CP_WRITE_PUT);
    }
    CPT_EQ_INT(cp_outbox_sync(e.ob, 10000), CP_OK);
    cp_outbox_stats st;
    cp_outbox_stats_get(e.ob, &st);
    CPT_EQ_INT(st.duplicates, 200);
    CPT_EQ_INT(st.forwarded, 50);
    tally t;
    read_stream(e.streams, &t);
    CPT_EQ_INT(t.n, 250);
    assert_unique(&t);
    cp_free(t.sources);
    env_close(&e);
}

static void changes_before_enabling_are_not_sent(void)
{
    env e;
    cp_err err = {0};
    cp_db_opts o = {.dir = cpt_tmpdir()};
    CPT_EQ_INT(cp_db_open(&o, &e.db, &err), CP_OK);
    CPT_EQ_INT(cp_streams_open(cpt_tmpdir(), NULL, &e.streams, &err), CP_OK);
    cp_table_info t = {0};
    snprintf(t.name, sizeof(t.name), "Chat");
    snprintf(t.key.hash_name, sizeof(t.key.hash_name), "LivestreamID");
    t.key.hash_type = CP_AV_S;
    snprintf(t.key.range_name, sizeof(t.key.range_name), "UID");
    t.key.range_type = CP_AV_N;
    CPT_EQ_INT(cp_db_create_table(e.db, &t, &err), CP_OK);
    cp_table_info_clear(&t);
    CPT_EQ_INT(cp_outbox_start(e.db, e.streams, NULL, &e.ob, &err), CP_OK);
    for (int i = 0; i < 10; i++) {
        put_chat(e.db, 1, i, "before", CP_WRITE_PUT);
    }
    CPT_EQ_INT(cp_streams_create(e.streams, CP_SLICE("cdc"), CP_STREAM_ON_DEMAND, 0, &err),
               CP_OK);
    CPT_EQ_INT(cp_db_update_table(e.db, "Chat", add_destination, "cdc", &err), CP_OK);
    for (int i = 10; i < 15; i++) {
        put_chat(e.db, 1, i, "after", CP_WRITE_PUT);
    }
    CPT_EQ_INT(cp_outbox_sync(e.ob, 10000), CP_OK);
    tally ta;
    read_stream(e.streams, &ta);
    CPT_EQ_INT(ta.n, 5);
    cp_free(ta.sources);
    /* A deleted stream: changes are dropped, the relay keeps going. */
    CPT_EQ_INT(cp_streams_delete(e.streams, CP_SLICE("cdc"), &err), CP_OK);
    put_chat(e.db, 1, 99, "gone", CP_WRITE_PUT);
    CPT_EQ_INT(cp_outbox_sync(e.ob, 10000), CP_OK);
    cp_outbox_stats st;
    cp_outbox_stats_get(e.ob, &st);
    CPT_EQ_INT(st.dropped, 1);
    env_close(&e);
}

static void kinesis_record_shape(void)
{
    /* Render one record and check the exact field set DynamoDB emits. */
    cp_buf keys = CP_BUF_INIT, img = CP_BUF_INIT, out = CP_BUF_INIT;
    cp_item_builder b;
    cp_item_builder_init(&b, &keys);
    cp_item_begin(&b);
    cp_item_put_name(&b, CP_SLICE("pk"));
    cp_item_put_scalar(&b, CP_AV_S, CP_SLICE("a"));
    cp_item_end(&b);
    cp_item_builder_init(&b, &img);
    cp_item_begin(&b);
    cp_item_put_name(&b, CP_SLICE("pk"));
    cp_item_put_scalar(&b, CP_AV_S, CP_SLICE("a"));
    cp_item_put_name(&b, CP_SLICE("qty"));
    cp_item_put_scalar(&b, CP_AV_N, CP_SLICE("3"));
    cp_item_end(&b);
    unsigned char uuid[16] = {1, 2, 3};
    cp_cdc_source src = {"Orders", "us-east-1", uuid};
    cp_change c = {CP_CHANGE_INSERT, 1, 1764132051199123, cp_buf_slice(&keys), cp_buf_slice(&img),
                   {NULL, 0}};
    cp_cdc_render_kinesis(&src, &c, 42, 0, &out);
    const char *p = strstr(out.p, "\"eventID\":\"");
    CPT_CHECK(p != NULL);
    /* 8-4-4-4-12 UUID with version 4 */
    CPT_EQ_INT(p[11 + 8], '-');
    CPT_EQ_INT(p[11 + 14], '4');
    char expect_tail[] = "\"eventName\":\"INSERT\",\"userIdentity\":null,\"recordFormat\":"
                         "\"application/json\",\"tableName\":\"Orders\",\"dynamodb\":{"
                         "\"ApproximateCreationDateTime\":1764132051199,\"Keys\":{\"pk\":{\"S\":"
                         "\"a\"}},\"NewImage\":{\"pk\":{\"S\":\"a\"},\"qty\":{\"N\":\"3\"}},"
                         "\"SizeBytes\":";
    CPT_CHECK(strstr(out.p, expect_tail) != NULL);
    CPT_CHECK(strncmp(out.p, "{\"awsRegion\":\"us-east-1\",\"eventID\":", 35) == 0);
    CPT_CHECK(strstr(out.p, "},\"eventSource\":\"aws:dynamodb\"}") != NULL);
    CPT_CHECK(strstr(out.p, "OldImage") == NULL);
    /* Same position, same bytes: re-rendering after a crash is identical. */
    cp_buf again = CP_BUF_INIT;
    cp_cdc_render_kinesis(&src, &c, 42, 0, &again);
    CPT_EQ_STR(again.p, out.p);
    cp_buf_reset(&again);
    cp_cdc_render_kinesis(&src, &c, 43, 0, &again);
    CPT_CHECK(strcmp(again.p, out.p) != 0); /* another position, another eventID */
    /* The document is valid JSON. */
    cp_json_lexer lx;
    cp_json_lexer_init(&lx, cp_buf_slice(&out));
    cp_json_tok tok;
    do {
        CPT_EQ_INT(cp_json_next(&lx, &tok), CP_OK);
    } while (tok.type != CP_JSON_END);
    char pk1[33], pk2[33];
    cp_cdc_partition_key("Orders", cp_buf_slice(&keys), pk1);
    cp_cdc_partition_key("Other", cp_buf_slice(&keys), pk2);
    CPT_EQ_INT(strlen(pk1), 32);
    CPT_CHECK(strcmp(pk1, pk2) != 0);
    for (int i = 0; i < 32; i++) {
        CPT_CHECK((pk1[i] >= '0' && pk1[i] <= '9') || (pk1[i] >= 'A' && pk1[i] <= 'F'));
    }
    cp_buf_free(&keys);
    cp_buf_free(&img);
    cp_buf_free(&out);
    cp_buf_free(&again);
}

CPT_LIST = {
    {"relays_every_change_once", relays_every_change_once},
    {"restart_with_stale_cursor_skips_duplicates", restart_with_stale_cursor_skips_duplicates},
    {"changes_before_enabling_are_not_sent", changes_before_enabling_are_not_sent},
    {"kinesis_record_shape", kinesis_record_shape},
    {0},
};
