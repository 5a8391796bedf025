/* SPDX-License-Identifier: MIT */
/* Delivery processors: the registry, AppendDelimiterToRecord, RecordDeAggregation and
 * MetadataExtraction (jq). Lambda and the native processor have their own test files. */
#include "cpt.h"

#include <pthread.h>

#include "delivery/batch.h"
#include "delivery/processor.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static cp_drec *add(cp_batch *b, const char *data, uint64_t seq)
{
    cp_drec *r = cp_batch_add(b);
    r->shard = 1;
    r->seq = seq;
    r->arrival_ms = 1767225600000 + (int64_t) seq;
    r->raw = r->data = cp_batch_copy(b, cp_slice_str(data));
    return r;
}

static void *init_or_die(const cp_processor_ops *ops, const cp_processor_param *params, size_t n)
{
    void *ctx = NULL;
    cp_err err = {0};
    int rc = ops->init(params, n, NULL, &ctx, &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("%s init: %d %s", ops->type, rc, err.msg);
    }
    return ctx;
}

static int init_fails(const cp_processor_ops *ops, const cp_processor_param *params, size_t n,
                      const char *want_msg_part)
{
    void *ctx = NULL;
    cp_err err = {0};
    int rc = ops->init(params, n, NULL, &ctx, &err);
    if (rc == CP_OK) {
        ops->destroy(ctx);
        return 0;
    }
    if (want_msg_part && !strstr(err.msg, want_msg_part)) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err.msg, want_msg_part);
        return 0;
    }
    return rc == CP_EINVAL;
}

static void eq_slice(cp_slice s, const char *want)
{
    CPT_EQ_MEM(s.p, s.len, want, strlen(want));
}

static const char *msg_of(const cp_drec *r)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "%.*s", (int) r->error_message.len, r->error_message.p);
    return buf;
}

#define NP(a) (sizeof(a) / sizeof((a)[0]))

/* ---- registry ---------------------------------------------------------------------------- */

static void registry_finds_every_type_in_pipeline_order(void)
{
    const char *types[] = {"RecordDeAggregation", "DynamoDBChangeRecord", "Lambda",
                           "MetadataExtraction", "AppendDelimiterToRecord"};
    int last = -1;
    for (size_t i = 0; i < NP(types); i++) {
        const cp_processor_ops *ops = cp_processor_find(types[i]);
        CPT_CHECK(ops != NULL);
        CPT_EQ_STR(ops->type, types[i]);
        CPT_EQ_INT(ops->abi, CP_PROCESSOR_ABI);
        CPT_CHECK(ops->order > last);
        last = ops->order;
    }
    CPT_CHECK(cp_processor_find("lambda") == NULL); /* Type is case-sensitive */
    CPT_CHECK(cp_processor_find("CloudWatchLogProcessing") == NULL);
    CPT_CHECK(cp_processor_find(NULL) == NULL);
    CPT_CHECK(cp_processor_find("Lambda") == &cp_processor_lambda);
}

static void unknown_duplicate_and_blank_parameters_are_rejected(void)
{
    cp_processor_param unknown[] = {{"SubRecordType", "JSON"}, {"LambdaArn", "x"}};
    CPT_CHECK(init_fails(&cp_processor_deagg, unknown, 2, "LambdaArn"));
    cp_processor_param dup[] = {{"SubRecordType", "JSON"}, {"SubRecordType", "JSON"}};
    CPT_CHECK(init_fails(&cp_processor_deagg, dup, 2, "Duplicate"));
    cp_processor_param blank[] = {{"SubRecordType", "  "}};
    CPT_CHECK(init_fails(&cp_processor_deagg, blank, 1, "empty"));
    cp_processor_param any[] = {{"Delimiter", "Cg=="}};
    CPT_CHECK(init_fails(&cp_processor_delimiter, any, 1, "not supported"));
}

/* ---- AppendDelimiterToRecord -------------------------------------------------------------- */

static void delimiter_appends_newline_to_ok_records_only(void)
{
    void *ctx = init_or_die(&cp_processor_delimiter, NULL, 0);
    cp_batch b = CP_BATCH_INIT;
    add(&b, "{\"a\":1}", 1);
    add(&b, "", 2);
    cp_drec *d = add(&b, "dropped", 3);
    d->result = CP_REC_DROPPED;
    cp_drec *f = add(&b, "failed", 4);
    cp_drec_fail(&b, f, "processing-failed", "X.Y", "m");
    cp_err err = {0};
    CPT_EQ_INT(cp_processor_delimiter.apply(ctx, &b, &err), CP_OK);
    eq_slice(b.recs[0].data, "{\"a\":1}\n");
    eq_slice(b.recs[1].data, "\n");
    eq_slice(b.recs[2].data, "dropped");
    eq_slice(b.recs[3].data, "failed");
    eq_slice(b.recs[0].raw, "{\"a\":1}"); /* rawData stays the original */
    cp_processor_delimiter.destroy(ctx);
    cp_batch_free(&b);
}

/* ---- RecordDeAggregation ------------------------------------------------------------------ */

static void deagg_json_splits_concatenated_and_jsonl_objects(void)
{
    cp_processor_param p[] = {{"SubRecordType", "JSON"}};
    void *ctx = init_or_die(&cp_processor_deagg, p, 1);
    cp_batch b = CP_BATCH_INIT;
    add(&b, "before", 1)->result = CP_REC_DROPPED;
    add(&b, "{\"a\":1}{\"a\":{\"b\":[1,2]}}\n{\"a\":\"}{\"}  \r\n", 2);
    add(&b, " {\"z\":true}", 3);
    cp_err err = {0};
    CPT_EQ_INT(cp_processor_deagg.apply(ctx, &b, &err), CP_OK);
    CPT_EQ_INT(b.n, 5);
    eq_slice(b.recs[0].data, "before");
    CPT_EQ_INT(b.recs[0].result, CP_REC_DROPPED);
    const char *want[] = {"{\"a\":1}", "{\"a\":{\"b\":[1,2]}}", "{\"a\":\"}{\"}"};
    for (int i = 0; i < 3; i++) {
        cp_drec *r = &b.recs[1 + i];
        CPT_EQ_INT(r->result, CP_REC_OK);
        eq_slice(r->data, want[i]);
        eq_slice(r->raw, want[i]);
        CPT_EQ_INT(r->seq, 2);
        CPT_EQ_INT(r->sub, i);
        CPT_EQ_INT(r->shard, 1);
        CPT_EQ_INT(r->arrival_ms, 1767225600002);
    }
    eq_slice(b.recs[4].data, "{\"z\":true}");
    CPT_EQ_INT(b.recs[4].seq, 3);
    CPT_EQ_INT(b.recs[4].sub, 0);
    cp_processor_deagg.destroy(ctx);
    cp_batch_free(&b);
}

static void deagg_json_rejects_arrays_and_non_objects(void)
{
    cp_processor_param p[] = {{"SubRecordType", "JSON"}};
    void *ctx = init_or_die(&cp_processor_deagg, p, 1);
    const char *bad[] = {
        "[{\"a\":1},{\"a\":2}]", "{\"a\":1} 5", "{\"a\":", "{\"a\":1}}", "\"text\"",
        "{\"a\":1},{\"a\":2}"};
    for (size_t i = 0; i < NP(bad); i++) {
        cp_batch b = CP_BATCH_INIT;
        add(&b, bad[i], 7);
        add(&b, "{\"ok\":1}", 8);
        cp_err err = {0};
        CPT_EQ_INT(cp_processor_deagg.apply(ctx, &b, &err), CP_OK);
        CPT_EQ_INT(b.n, 2);
        CPT_EQ_INT(b.recs[0].result, CP_REC_FAILED);
        CPT_EQ_STR(b.recs[0].error_type, "processing-failed");
        CPT_EQ_STR(b.recs[0].error_code, "RecordDeAggregation.InvalidJson");
        CPT_EQ_INT(b.recs[0].attempts, 1);
        eq_slice(b.recs[0].raw, bad[i]); /* the whole original goes to the error output */
        CPT_EQ_INT(b.recs[1].result, CP_REC_OK);
        if (i == 0) {
            CPT_CHECK(strstr(msg_of(&b.recs[0]), "arrays") != NULL);
        }
        cp_batch_free(&b);
    }
    cp_processor_deagg.destroy(ctx);
}

static void deagg_empty_records_are_dropped(void)
{
    cp_processor_param p[] = {{"SubRecordType", "JSON"}};
    void *ctx = init_or_die(&cp_processor_deagg, p, 1);
    cp_batch b = CP_BATCH_INIT;
    add(&b, "", 1);
    add(&b, " \n\t", 2);
    cp_err err = {0};
    CPT_EQ_INT(cp_processor_deagg.apply(ctx, &b, &err), CP_OK);
    CPT_EQ_INT(b.n, 2);
    CPT_EQ_INT(b.recs[0].result, CP_REC_DROPPED);
    CPT_EQ_INT(b.recs[1].result, CP_REC_DROPPED);
    cp_processor_deagg.destroy(ctx);
    cp_batch_free(&b);
}

static void deagg_caps_sub_records_at_500(void)
{
    cp_processor_param p[] = {{"SubRecordType", "JSON"}};
    void *ctx = init_or_die(&cp_processor_deagg, p, 1);
    cp_buf s500 = CP_BUF_INIT, s501 = CP_BUF_INIT;
    for (int i = 0; i < 500; i++) {
        cp_buf_printf(&s500, "{\"i\":%d}\n", i);
    }
    cp_buf_append(&s501, s500.p, s500.len);
    cp_buf_puts(&s501, "{\"i\":500}");
    cp_batch b = CP_BATCH_INIT;
    add(&b, s500.p, 1);
    add(&b, s501.p, 2);
    cp_err err = {0};
    CPT_EQ_INT(cp_processor_deagg.apply(ctx, &b, &err), CP_OK);
    CPT_EQ_INT(b.n, 501);
    eq_slice(b.recs[499].data, "{\"i\":499}");
    CPT_EQ_INT(b.recs[499].sub, 499);
    CPT_EQ_INT(b.recs[500].result, CP_REC_FAILED);
    CPT_EQ_STR(b.recs[500].error_code, "RecordDeAggregation.SubRecordLimitExceeded");
    CPT_EQ_INT(b.recs[500].seq, 2);
    cp_buf_free(&s500);
    cp_buf_free(&s501);
    cp_processor_deagg.destroy(ctx);
    cp_batch_free(&b);
}

static void deagg_delimited_splits_on_decoded_bytes(void)
{
    /* "####" in base64, as the DG example gives it. */
    cp_processor_param p[] = {{"SubRecordType", "DELIMITED"}, {"Delimiter", "IyMjIw=="}};
    void *ctx = init_or_die(&cp_processor_deagg, p, 2);
    cp_batch b = CP_BATCH_INIT;
    add(&b, "a####b####", 1);
    add(&b, "a###b####c", 2);
    add(&b, "########", 3);
    add(&b, "single", 4);
    cp_err err = {0};
    CPT_EQ_INT(cp_processor_deagg.apply(ctx, &b, &err), CP_OK);
    CPT_EQ_INT(b.n, 6);
    eq_slice(b.recs[0].data, "a");
    eq_slice(b.recs[1].data, "b");
    CPT_EQ_INT(b.recs[1].sub, 1);
    eq_slice(b.recs[2].data, "a###b");
    eq_slice(b.recs[3].data, "c");
    CPT_EQ_INT(b.recs[4].result, CP_REC_DROPPED);
    eq_slice(b.recs[5].data, "single");
    cp_processor_deagg.destroy(ctx);
    cp_batch_free(&b);

    /* DG prose spells it "Delimited". */
    cp_processor_param q[] = {{"SubRecordType", "Delimited"}, {"Delimiter", "Cg=="}};
    ctx = init_or_die(&cp_processor_deagg, q, 2);
    cp_processor_deagg.destroy(ctx);
}

static void deagg_init_validates_parameters(void)
{
    CPT_CHECK(init_fails(&cp_processor_deagg, NULL, 0, "SubRecordType is required"));
    cp_processor_param t[] = {{"SubRecordType", "XML"}};
    CPT_CHECK(init_fails(&cp_processor_deagg, t, 1, "XML"));
    cp_processor_param d[] = {{"SubRecordType", "DELIMITED"}};
    CPT_CHECK(init_fails(&cp_processor_deagg, d, 1, "Delimiter is required"));
    cp_processor_param bad[] = {{"SubRecordType", "DELIMITED"}, {"Delimiter", "###"}};
    CPT_CHECK(init_fails(&cp_processor_deagg, bad, 2, "base64"));
}

/* ---- MetadataExtraction (jq) -------------------------------------------------------------- */

static void *jq_ctx(const char *query)
{
    cp_processor_param p[] = {{"MetadataExtractionQuery", query}, {"JsonParsingEngine", "JQ-1.6"}};
    return init_or_die(&cp_processor_jq, p, 2);
}

static void key_is(const cp_drec *r, const char *name, const char *value)
{
    for (size_t i = 0; i < r->nquery_keys; i++) {
        if (cp_slice_eq(r->query_keys[i].name, cp_slice_str(name))) {
            eq_slice(r->query_keys[i].value, value);
            return;
        }
    }
    CPT_FAIL_AT("no query key %s", name);
}

static void jq_extracts_keys_with_strftime(void)
{
    void *ctx = jq_ctx("{customer_id:.customer_id, year:.ts|strftime(\"%Y\"), "
                       "day:.ts|strftime(\"%Y-%m-%d\"), up:.customer_id|ascii_upcase}");
    cp_batch b = CP_BATCH_INIT;
    add(&b, "{\"customer_id\":\"c-17\",\"ts\":1425599621}\n", 1); /* trailing newline: Lambda */
    cp_err err = {0};
    CPT_EQ_INT(cp_processor_jq.apply(ctx, &b, &err), CP_OK);
    CPT_EQ_INT(b.recs[0].result, CP_REC_OK);
    CPT_EQ_INT(b.recs[0].nquery_keys, 4);
    key_is(&b.recs[0], "customer_id", "c-17");
    key_is(&b.recs[0], "year", "2015");
    key_is(&b.recs[0], "day", "2015-03-05");
    key_is(&b.recs[0], "up", "C-17");
    eq_slice(b.recs[0].data, "{\"customer_id\":\"c-17\",\"ts\":1425599621}\n"); /* untouched */
    cp_processor_jq.destroy(ctx);
    cp_batch_free(&b);
}

static void jq_renders_numbers_and_booleans_as_json_text(void)
{
    void *ctx = jq_ctx("{n:.n, f:.f, big:.big, t:.t}");
    cp_batch b = CP_BATCH_INIT;
    add(&b, "{\"n\":100,\"f\":1.5,\"big\":12345678901,\"t\":false}", 1);
    cp_err err = {0};
    CPT_EQ_INT(cp_processor_jq.apply(ctx, &b, &err), CP_OK);
    CPT_EQ_INT(b.recs[0].result, CP_REC_OK);
    key_is(&b.recs[0], "n", "100");
    key_is(&b.recs[0], "f", "1.5");
    key_is(&b.recs[0], "big", "12345678901");
    key_is(&b.recs[0], "t", "false");
    cp_processor_jq.destroy(ctx);
    cp_batch_free(&b);
}

static void jq_failures_are_partitioning_failed(void)
{
    void *ctx = jq_ctx("{k:.k}");
    const struct {
        const char *data, *msg;
    } cases[] = {
        {"{\"k\":null}", "partitionKeys values must not be null or empty"},
        {"{\"other\":1}", "partitionKeys values must not be null or empty"},
        {"{\"k\":\"\"}", "partitionKeys values must not be null or empty"},
        {"{\"k\":{\"a\":1}}", "partitionKeys values must be strings or numbers"},
        {"{\"k\":[1]}", "partitionKeys values must be strings or numbers"},
        {"not json", "Non JSON record provided"},
        {"{\"k\":1} {\"k\":2}", "Non JSON record provided"},
        {"", "Non JSON record provided"},
    };
    for (size_t i = 0; i < NP(cases); i++) {
        cp_batch b = CP_BATCH_INIT;
        add(&b, cases[i].data, 1);
        add(&b, "{\"k\":\"fine\"}", 2);
        cp_err err = {0};
        CPT_EQ_INT(cp_processor_jq.apply(ctx, &b, &err), CP_OK);
        if (b.recs[0].result != CP_REC_FAILED) {
            CPT_FAIL_AT("case %zu (%s) did not fail", i, cases[i].data);
        }
        CPT_EQ_STR(b.recs[0].error_type, "partitioning-failed");
        CPT_EQ_STR(b.recs[0].error_code, "DynamicPartitioning.MetadataExtractionFailed");
        CPT_EQ_INT(b.recs[0].attempts, 1);
        if (!strstr(msg_of(&b.recs[0]), cases[i].msg)) {
            CPT_FAIL_AT("case %zu: message %s", i, msg_of(&b.recs[0]));
        }
        CPT_EQ_INT(b.recs[1].result, CP_REC_OK);
        key_is(&b.recs[1], "k", "fine");
        cp_batch_free(&b);
    }
    cp_processor_jq.destroy(ctx);
}

static void jq_runtime_errors_and_non_objects_fail_the_record(void)
{
    void *ctx = jq_ctx("{y:.ts|strftime(\"%Y\")}");
    cp_batch b = CP_BATCH_INIT;
    add(&b, "{\"ts\":\"yesterday\"}", 1);
    cp_err err = {0};
    CPT_EQ_INT(cp_processor_jq.apply(ctx, &b, &err), CP_OK);
    CPT_EQ_INT(b.recs[0].result, CP_REC_FAILED);
    CPT_CHECK(strstr(msg_of(&b.recs[0]), "strftime") != NULL);
    cp_processor_jq.destroy(ctx);
    cp_batch_free(&b);

    ctx = jq_ctx(".k");
    b = CP_BATCH_INIT;
    add(&b, "{\"k\":\"v\"}", 1);
    CPT_EQ_INT(cp_processor_jq.apply(ctx, &b, &err), CP_OK);
    CPT_EQ_INT(b.recs[0].result, CP_REC_FAILED);
    CPT_CHECK(strstr(msg_of(&b.recs[0]), "must produce a JSON object") != NULL);
    cp_processor_jq.destroy(ctx);
    cp_batch_free(&b);

    ctx = jq_ctx("empty");
    b = CP_BATCH_INIT;
    add(&b, "{}", 1);
    CPT_EQ_INT(cp_processor_jq.apply(ctx, &b, &err), CP_OK);
    CPT_EQ_INT(b.recs[0].result, CP_REC_FAILED);
    CPT_CHECK(strstr(msg_of(&b.recs[0]), "no result") != NULL);
    cp_processor_jq.destroy(ctx);
    cp_batch_free(&b);
}

static void jq_allows_50_keys_not_51(void)
{
    for (int n = 50; n <= 51; n++) {
        cp_buf q = CP_BUF_INIT;
        cp_buf_putc(&q, '{');
        for (int i = 0; i < n; i++) {
            cp_buf_printf(&q, "%sk%d:.v", i ? "," : "", i);
        }
        cp_buf_putc(&q, '}');
        void *ctx = jq_ctx(q.p);
        cp_batch b = CP_BATCH_INIT;
        add(&b, "{\"v\":\"x\"}", 1);
        cp_err err = {0};
        CPT_EQ_INT(cp_processor_jq.apply(ctx, &b, &err), CP_OK);
        CPT_EQ_INT(b.recs[0].result, n == 50 ? CP_REC_OK : CP_REC_FAILED);
        if (n == 50) {
            CPT_EQ_INT(b.recs[0].nquery_keys, 50);
            key_is(&b.recs[0], "k49", "x");
        }
        cp_processor_jq.destroy(ctx);
        cp_batch_free(&b);
        cp_buf_free(&q);
    }
}

static void jq_init_rejects_bad_programs_and_engines(void)
{
    cp_processor_param bad[] = {{"MetadataExtractionQuery", "{a:.a"},
                                {"JsonParsingEngine", "JQ-1.6"}};
    CPT_CHECK(init_fails(&cp_processor_jq, bad, 2, "not a valid jq 1.6 program"));
    cp_processor_param undefined[] = {{"MetadataExtractionQuery", "{a:nosuchfn}"}};
    CPT_CHECK(init_fails(&cp_processor_jq, undefined, 1, "nosuchfn"));
    cp_processor_param engine[] = {{"MetadataExtractionQuery", "{a:.a}"},
                                   {"JsonParsingEngine", "JQ-1.5"}};
    CPT_CHECK(init_fails(&cp_processor_jq, engine, 2, "JQ-1.5"));
    CPT_CHECK(init_fails(&cp_processor_jq, NULL, 0, "MetadataExtractionQuery is required"));
}

static void jq_leaves_failed_records_alone(void)
{
    void *ctx = jq_ctx("{k:.k}");
    cp_batch b = CP_BATCH_INIT;
    cp_drec *r = add(&b, "{\"k\":\"v\"}", 1);
    cp_drec_fail(&b, r, "processing-failed", "Lambda.FunctionError", "m");
    cp_err err = {0};
    CPT_EQ_INT(cp_processor_jq.apply(ctx, &b, &err), CP_OK);
    CPT_EQ_STR(b.recs[0].error_type, "processing-failed");
    CPT_EQ_INT(b.recs[0].nquery_keys, 0);
    cp_processor_jq.destroy(ctx);
    cp_batch_free(&b);
}

typedef struct jq_thread_arg {
    void *ctx;
    int id;
    int ok;
} jq_thread_arg;

static void *jq_thread(void *p)
{
    jq_thread_arg *a = p;
    cp_batch b = CP_BATCH_INIT;
    char data[64], want[32];
    for (int i = 0; i < 200; i++) {
        snprintf(data, sizeof(data), "{\"k\":\"t%d-%d\"}", a->id, i);
        add(&b, data, (uint64_t) i);
    }
    cp_err err = {0};
    a->ok = cp_processor_jq.apply(a->ctx, &b, &err) == CP_OK;
    for (int i = 0; i < 200 && a->ok; i++) {
        snprintf(want, sizeof(want), "t%d-%d", a->id, i);
        a->ok = b.recs[i].result == CP_REC_OK && b.recs[i].nquery_keys == 1 &&
                cp_slice_eq(b.recs[i].query_keys[0].value, cp_slice_str(want));
    }
    cp_batch_free(&b);
    return NULL;
}

static void jq_one_ctx_serves_several_threads(void)
{
    void *ctx = jq_ctx("{k:.k}");
    pthread_t th[4];
    jq_thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (jq_thread_arg){ctx, i, 0};
        CPT_EQ_INT(pthread_create(&th[i], NULL, jq_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CPT_CHECK(args[i].ok);
    }
    cp_processor_jq.destroy(ctx);
}

CPT_LIST = {
    {"registry_finds_every_type_in_pipeline_order", registry_finds_every_type_in_pipeline_order},
    {"unknown_duplicate_and_blank_parameters_are_rejected",
     unknown_duplicate_and_blank_parameters_are_rejected},
    {"delimiter_appends_newline_to_ok_records_only", delimiter_appends_newline_to_ok_records_only},
    {"deagg_json_splits_concatenated_and_jsonl_objects",
     deagg_json_splits_concatenated_and_jsonl_objects},
    {"deagg_json_rejects_arrays_and_non_objects", deagg_json_rejects_arrays_and_non_objects},
    {"deagg_empty_records_are_dropped", deagg_empty_records_are_dropped},
    {"deagg_caps_sub_records_at_500", deagg_caps_sub_records_at_500},
    {"deagg_delimited_splits_on_decoded_bytes", deagg_delimited_splits_on_decoded_bytes},
    {"deagg_init_validates_parameters", deagg_init_validates_parameters},
    {"jq_extracts_keys_with_strftime", jq_extracts_keys_with_strftime},
    {"jq_renders_numbers_and_booleans_as_json_text", jq_renders_numbers_and_booleans_as_json_text},
    {"jq_failures_are_partitioning_failed", jq_failures_are_partitioning_failed},
    {"jq_runtime_errors_and_non_objects_fail_the_record",
     jq_runtime_errors_and_non_objects_fail_the_record},
    {"jq_allows_50_keys_not_51", jq_allows_50_keys_not_51},
    {"jq_init_rejects_bad_programs_and_engines", jq_init_rejects_bad_programs_and_engines},
    {"jq_leaves_failed_records_alone", jq_leaves_failed_records_alone},
    {"jq_one_ctx_serves_several_threads", jq_one_ctx_serves_several_threads},
    {0},
};
