/* SPDX-License-Identifier: MIT */
/*
 * The Lambda processor against a scripted env->invoke: the exact invocation event, every
 * outcome of the response contract (firehose.md 3.4), retries with attempts counted, the
 * BufferSizeInMBs / 6 MiB split and the invocation concurrency.
 */
#include "cpt.h"

#include <pthread.h>
#include <time.h>

#include "core/base64.h"
#include "core/json.h"
#include "delivery/batch.h"
#include "delivery/processor.h"
#include "delivery/processors/lambda.h"
#include "stream/seq.h"

#define STREAM_ARN "arn:aws:firehose:eu-west-1:111122223333:deliverystream/by-livestream"
#define SOURCE_ARN "arn:aws:kinesis:eu-west-1:111122223333:stream/chat-cdc"
#define FN_ARN     "arn:aws:lambda:eu-west-1:111122223333:function:flatten"

/* ---- the fake Lambda ---------------------------------------------------------------------- */

#define MAXR 40000

/* One parsed invocation event. */
typedef struct req {
    size_t n;
    char (*ids)[64];
    cp_buf *data; /* decoded */
    size_t raw_bytes;
} req;

typedef enum {
    P_OK,     /* Ok, data upper-cased, partition key */
    P_DROP,   /* Dropped */
    P_FAIL,   /* ProcessingFailed */
    P_OMIT,   /* not returned */
    P_DUP,    /* returned twice */
    P_BADB64, /* Ok with data that is not base64 */
    P_NODATA, /* Ok without data */
    P_BADRES, /* result outside the enum */
} policy;

typedef struct fake fake;
struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Answer one call (0-based); returns the invoke status. */
    int (*respond)(fake *f, const req *rq, int call, cp_buf *resp, int *ferr);
    policy (*per_record)(size_t i);
    const char *fixed; /* a literal response body */
    int calls;
    cp_buf first_payload;
    size_t npayloads;
    size_t payload_sizes[64];
    size_t raw_sizes[64];
    size_t records_per_call[64];
    int inflight, max_inflight, wait_for_inflight;
};

static void parse_request(cp_slice payload, req *rq)
{
    cp_json_lexer lx;
    cp_json_tok t;
    cp_buf scratch = CP_BUF_INIT;
    memset(rq, 0, sizeof(*rq));
    rq->ids = calloc(MAXR, sizeof(*rq->ids));
    rq->data = calloc(MAXR, sizeof(*rq->data));
    cp_json_lexer_init(&lx, payload);
    int depth = 0, in_records = 0;
    const char *last_key = "";
    while (cp_json_next(&lx, &t) == CP_OK && t.type != CP_JSON_END) {
        if (t.type == CP_JSON_OBJ_BEGIN || t.type == CP_JSON_ARR_BEGIN) {
            depth++;
            if (depth == 2 && strcmp(last_key, "records") == 0) {
                in_records = 1;
            }
            if (in_records && depth == 3) {
                rq->n++;
            }
        } else if (t.type == CP_JSON_OBJ_END || t.type == CP_JSON_ARR_END) {
            depth--;
        } else if (t.type == CP_JSON_KEY) {
            last_key = t.s.len == 7 && memcmp(t.s.p, "records", 7) == 0    ? "records"
                       : t.s.len == 8 && memcmp(t.s.p, "recordId", 8) == 0 ? "recordId"
                       : t.s.len == 4 && memcmp(t.s.p, "data", 4) == 0     ? "data"
                                                                           : "";
        } else if (t.type == CP_JSON_STRING && in_records && depth == 3) {
            if (strcmp(last_key, "recordId") == 0) {
                snprintf(rq->ids[rq->n - 1], 64, "%.*s", (int) t.s.len, t.s.p);
            } else if (strcmp(last_key, "data") == 0) {
                CPT_EQ_INT(cp_base64_decode(t.s, &rq->data[rq->n - 1]), CP_OK);
                rq->raw_bytes += rq->data[rq->n - 1].len;
            }
        }
    }
    CPT_CHECK(lx.error == NULL);
    cp_buf_free(&scratch);
}

static void req_free(req *rq)
{
    for (size_t i = 0; i < rq->n; i++) {
        cp_buf_free(&rq->data[i]);
    }
    free(rq->data);
    free(rq->ids);
}

static void put_entry(cp_buf *b, const req *rq, size_t i, policy p)
{
    if (b->p[b->len - 1] != '[') {
        cp_buf_putc(b, ',');
    }
    cp_buf_printf(b, "{\"recordId\":\"%s\",\"result\":", rq->ids[i]);
    switch (p) {
    case P_DROP:
        cp_buf_puts(b, "\"Dropped\"}");
        return;
    case P_FAIL:
        cp_buf_puts(b, "\"ProcessingFailed\",\"data\":\"eA==\"}");
        return;
    case P_BADB64:
        cp_buf_puts(b, "\"Ok\",\"data\":\"!!not base64!!\"}");
        return;
    case P_NODATA:
        cp_buf_puts(b, "\"Ok\"}");
        return;
    case P_BADRES:
        cp_buf_puts(b, "\"TRANSFORMED_STATE_OK\",\"data\":\"eA==\"}");
        return;
    default:
        break;
    }
    cp_buf up = CP_BUF_INIT;
    for (size_t k = 0; k < rq->data[i].len; k++) {
        char c = rq->data[i].p[k];
        cp_buf_putc(&up, c >= 'a' && c <= 'z' ? (char) (c - 32) : c);
    }
    cp_buf_puts(&up, "\n");
    cp_buf_puts(b, "\"Ok\",\"data\":\"");
    cp_base64_encode(cp_buf_slice(&up), b);
    cp_buf_printf(b,
                  "\",\"metadata\":{\"partitionKeys\":{\"LivestreamID\":\"live-%zu\","
                  "\"n\":%zu,\"empty\":\"\",\"nul\":null}}}",
                  i % 3, i);
    cp_buf_free(&up);
}

static policy all_ok(size_t i)
{
    (void) i;
    return P_OK;
}

/* Build the response from per_record (default: every record Ok). */
static int respond_records(fake *f, const req *rq, int call, cp_buf *resp, int *ferr)
{
    (void) call;
    (void) ferr;
    if (f->fixed) {
        cp_buf_puts(resp, f->fixed);
        return CP_OK;
    }
    policy (*pol)(size_t) = f->per_record ? f->per_record : all_ok;
    cp_buf_puts(resp, "{\"records\":[");
    for (size_t i = 0; i < rq->n; i++) {
        policy p = pol(i);
        if (p == P_OMIT) {
            continue;
        }
        put_entry(resp, rq, i, p == P_DUP ? P_OK : p);
        if (p == P_DUP) {
            put_entry(resp, rq, i, P_DROP);
        }
    }
    cp_buf_puts(resp, "]}");
    return CP_OK;
}

static int fake_invoke(void *vctx, const char *arn, cp_slice payload, cp_buf *response, int *ferr,
                       cp_err *err)
{
    fake *f = vctx;
    (void) err;
    CPT_EQ_STR(arn, FN_ARN);
    *ferr = 0;
    req rq;
    parse_request(payload, &rq);
    pthread_mutex_lock(&f->mu);
    int call = f->calls++;
    if (call == 0) {
        cp_buf_append(&f->first_payload, payload.p, payload.len);
    }
    if (f->npayloads < 64) {
        f->payload_sizes[f->npayloads] = payload.len;
        f->raw_sizes[f->npayloads] = rq.raw_bytes;
        f->records_per_call[f->npayloads++] = rq.n;
    }
    f->inflight++;
    if (f->inflight > f->max_inflight) {
        f->max_inflight = f->inflight;
    }
    pthread_cond_broadcast(&f->cv);
    if (f->wait_for_inflight && call < f->wait_for_inflight) {
        /* Hold the first calls until they are all in flight together (or give up after 5 s):
         * proves the calls overlap without timing assumptions. */
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 5;
        while (f->inflight < f->wait_for_inflight &&
               pthread_cond_timedwait(&f->cv, &f->mu, &dl) == 0) {
        }
    }
    pthread_mutex_unlock(&f->mu);
    int rc = f->respond(f, &rq, call, response, ferr);
    pthread_mutex_lock(&f->mu);
    f->inflight--;
    pthread_mutex_unlock(&f->mu);
    req_free(&rq);
    return rc;
}

static fake *fake_new(void)
{
    fake *f = calloc(1, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->respond = respond_records;
    return f;
}

static void fake_free(fake *f)
{
    cp_buf_free(&f->first_payload);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
}

/* ---- setup -------------------------------------------------------------------------------- */

static void *lambda_ctx(fake *f, int kinesis, const char *retries, const char *size)
{
    cp_processor_param p[3] = {{"LambdaArn", FN_ARN}};
    size_t n = 1;
    if (retries) {
        p[n++] = (cp_processor_param){"NumberOfRetries", retries};
    }
    if (size) {
        p[n++] = (cp_processor_param){"BufferSizeInMBs", size};
    }
    cp_processor_env env = {
        .delivery_stream_arn = STREAM_ARN,
        .source_stream_arn = kinesis ? SOURCE_ARN : NULL,
        .region = "eu-west-1",
        .kinesis_source = kinesis,
        .invoke = fake_invoke,
        .invoke_ctx = f,
    };
    void *ctx = NULL;
    cp_err err = {0};
    int rc = cp_processor_lambda.init(p, n, &env, &ctx, &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("init: %s", err.msg);
    }
    cp_processor_lambda_set_backoff(1, 4); /* keep retry tests fast */
    return ctx;
}

static void make_batch(cp_batch *b, size_t n)
{
    char data[32], pk[32];
    for (size_t i = 0; i < n; i++) {
        cp_drec *r = cp_batch_add(b);
        r->shard = 3;
        r->seq = 100 + i;
        r->arrival_ms = 1767225600000 + (int64_t) i;
        snprintf(data, sizeof(data), "rec-%zu", i);
        snprintf(pk, sizeof(pk), "pk-%zu", i);
        r->raw = r->data = cp_batch_copy(b, cp_slice_str(data));
        r->source_pk = cp_batch_copy(b, cp_slice_str(pk));
    }
}

static void apply(void *ctx, cp_batch *b)
{
    cp_err err = {0};
    CPT_EQ_INT(cp_processor_lambda.apply(ctx, b, &err), CP_OK);
}

static void eq_slice(cp_slice s, const char *want)
{
    CPT_EQ_MEM(s.p, s.len, want, strlen(want));
}

static void failed_with(const cp_drec *r, const char *code, const char *msg_part, int attempts)
{
    CPT_EQ_INT(r->result, CP_REC_FAILED);
    CPT_EQ_STR(r->error_type, "processing-failed");
    CPT_EQ_STR(r->error_code, code);
    char msg[600];
    snprintf(msg, sizeof(msg), "%.*s", (int) r->error_message.len, r->error_message.p);
    if (!strstr(msg, msg_part)) {
        CPT_FAIL_AT("message \"%s\" lacks \"%s\"", msg, msg_part);
    }
    CPT_EQ_INT(r->attempts, attempts);
}

static const char *key_of(const cp_drec *r, const char *name)
{
    static char v[128];
    for (size_t i = 0; i < r->nlambda_keys; i++) {
        if (cp_slice_eq(r->lambda_keys[i].name, cp_slice_str(name))) {
            snprintf(v, sizeof(v), "%.*s", (int) r->lambda_keys[i].value.len,
                     r->lambda_keys[i].value.p);
            return v;
        }
    }
    return NULL;
}

/* ---- the event ---------------------------------------------------------------------------- */

static void event_is_firehose_shape_for_kinesis_sources(void)
{
    fake *f = fake_new();
    void *ctx = lambda_ctx(f, 1, NULL, NULL);
    cp_batch b = CP_BATCH_INIT;
    make_batch(&b, 2);
    b.recs[1].sub = 7; /* a de-aggregated sub-record */
    b.recs[1].source_pk = cp_batch_copy(&b, CP_SLICE("pk \"quoted\""));
    apply(ctx, &b);
    CPT_EQ_INT(f->calls, 1);
    char s0[CP_SEQ_STR_MAX], s1[CP_SEQ_STR_MAX];
    cp_seq_format(3, 100, s0);
    cp_seq_format(3, 101, s1);
    cp_buf want = CP_BUF_INIT;
    cp_buf_printf(&want,
                  "{\"invocationId\":\"%.36s\",\"deliveryStreamArn\":\"" STREAM_ARN "\","
                  "\"sourceKinesisStreamArn\":\"" SOURCE_ARN "\",\"region\":\"eu-west-1\","
                  "\"records\":["
                  "{\"recordId\":\"%s0000000000\",\"approximateArrivalTimestamp\":1767225600000,"
                  "\"data\":\"cmVjLTA=\",\"kinesisRecordMetadata\":{\"shardId\":"
                  "\"shardId-000000000003\",\"partitionKey\":\"pk-0\","
                  "\"approximateArrivalTimestamp\":1767225600000,\"sequenceNumber\":\"%s\","
                  "\"subsequenceNumber\":0}},"
                  "{\"recordId\":\"%s0000000007\",\"approximateArrivalTimestamp\":1767225600001,"
                  "\"data\":\"cmVjLTE=\",\"kinesisRecordMetadata\":{\"shardId\":"
                  "\"shardId-000000000003\",\"partitionKey\":\"pk \\\"quoted\\\"\","
                  "\"approximateArrivalTimestamp\":1767225600001,\"sequenceNumber\":\"%s\","
                  "\"subsequenceNumber\":7}}]}",
                  f->first_payload.p + 17, s0, s0, s1, s1);
    CPT_EQ_STR(f->first_payload.p, want.p);
    /* invocationId: a version-4 UUID */
    const char *u = f->first_payload.p + 17;
    CPT_CHECK(u[8] == '-' && u[13] == '-' && u[14] == '4' && u[18] == '-' && u[23] == '-');
    CPT_CHECK(strchr("89ab", u[19]) != NULL);
    CPT_EQ_INT(b.recs[0].result, CP_REC_OK);
    eq_slice(b.recs[0].data, "REC-0\n");
    eq_slice(b.recs[0].raw, "rec-0");
    cp_buf_free(&want);
    cp_batch_free(&b);
    cp_processor_lambda.destroy(ctx);
    fake_free(f);
}

static void event_for_direct_put_has_no_kinesis_metadata(void)
{
    fake *f = fake_new();
    void *ctx = lambda_ctx(f, 0, NULL, NULL);
    cp_batch b = CP_BATCH_INIT;
    make_batch(&b, 1);
    b.recs[0].shard = 0;
    apply(ctx, &b);
    CPT_CHECK(strstr(f->first_payload.p, "sourceKinesisStreamArn") == NULL);
    CPT_CHECK(strstr(f->first_payload.p, "kinesisRecordMetadata") == NULL);
    CPT_CHECK(strstr(f->first_payload.p, "\"deliveryStreamArn\":\"" STREAM_ARN "\"") != NULL);
    CPT_EQ_INT(b.recs[0].result, CP_REC_OK);
    cp_batch_free(&b);
    cp_processor_lambda.destroy(ctx);
    fake_free(f);
}

static void record_ids_are_reproducible_and_unique(void)
{
    fake *f = fake_new();
    void *ctx = lambda_ctx(f, 1, NULL, NULL);
    cp_buf first = CP_BUF_INIT;
    for (int round = 0; round < 2; round++) {
        cp_batch b = CP_BATCH_INIT;
        make_batch(&b, 3);
        b.recs[2].seq = 101; /* same position as recs[1] (never from our sources) */
        apply(ctx, &b);
        for (int i = 0; i < 3; i++) {
            CPT_EQ_INT(b.recs[i].result, CP_REC_OK);
        }
        const char *p = strstr(f->first_payload.p, "\"records\"");
        if (round == 0) {
            cp_buf_puts(&first, p);
        } else {
            CPT_EQ_STR(p, first.p); /* same ids, same bytes on a retry or a replay */
        }
        cp_buf_reset(&f->first_payload);
        f->calls = 0;
        cp_batch_free(&b);
    }
    cp_buf_free(&first);
    cp_processor_lambda.destroy(ctx);
    fake_free(f);
}

/* ---- per-record outcomes ------------------------------------------------------------------ */

static policy mixed(size_t i)
{
    static const policy p[] = {P_OK, P_DROP, P_FAIL, P_OMIT, P_DUP, P_NODATA, P_OK};
    return p[i % 7];
}

static void outcomes_follow_the_response_contract(void)
{
    fake *f = fake_new();
    f->per_record = mixed;
    void *ctx = lambda_ctx(f, 1, NULL, NULL);
    cp_batch b = CP_BATCH_INIT;
    make_batch(&b, 7);
    apply(ctx, &b);
    CPT_EQ_INT(f->calls, 1);
    /* Ok: new bytes, keys (null and "" left out, a number taken as text) */
    CPT_EQ_INT(b.recs[0].result, CP_REC_OK);
    eq_slice(b.recs[0].data, "REC-0\n");
    CPT_EQ_INT(b.recs[0].nlambda_keys, 2);
    CPT_EQ_STR(key_of(&b.recs[0], "LivestreamID"), "live-0");
    CPT_EQ_STR(key_of(&b.recs[0], "n"), "0");
    CPT_CHECK(key_of(&b.recs[0], "empty") == NULL);
    CPT_CHECK(key_of(&b.recs[0], "nul") == NULL);
    CPT_EQ_INT(b.recs[1].result, CP_REC_DROPPED);
    failed_with(&b.recs[2], "Lambda.ProcessingFailedStatus",
                "ProcessingFailed status set for record", 1);
    eq_slice(b.recs[2].raw, "rec-2"); /* rawData: the original bytes */
    failed_with(&b.recs[3], "Lambda.MissingRecordId", "One or more record Ids were not returned",
                1);
    failed_with(&b.recs[4], "Lambda.DuplicatedRecordId",
                "Multiple records were returned with the same record Id", 1);
    failed_with(&b.recs[5], "Lambda.JsonProcessingException", "The data field cannot be null", 1);
    CPT_EQ_INT(b.recs[6].result, CP_REC_OK);
    CPT_EQ_STR(key_of(&b.recs[6], "LivestreamID"), "live-0");
    cp_batch_free(&b);
    cp_processor_lambda.destroy(ctx);
    fake_free(f);
}

static void extra_ids_are_ignored_and_escaped_ids_match(void)
{
    fake *f = fake_new();
    void *ctx = lambda_ctx(f, 0, NULL, NULL);
    cp_batch b = CP_BATCH_INIT;
    make_batch(&b, 1);
    b.recs[0].shard = 0;
    b.recs[0].seq = 5;
    char seq[CP_SEQ_STR_MAX];
    cp_seq_format(0, 5, seq);
    /* The id's first digit written as \u0034 ("4"): the same id after unescaping. */
    cp_buf body = CP_BUF_INIT;
    cp_buf_printf(&body,
                  "{\"records\":[{\"recordId\":\"nope\",\"result\":\"Ok\",\"data\":\"eA==\"},"
                  "{\"recordId\":\"\\u0034%s0000000000\",\"result\":\"Ok\",\"data\":\"eQ==\","
                  "\"extra\":{\"ignored\":[1,2]}}],\"unknown\":true}",
                  seq + 1);
    f->fixed = body.p;
    apply(ctx, &b);
    CPT_EQ_INT(b.recs[0].result, CP_REC_OK);
    eq_slice(b.recs[0].data, "y");
    cp_buf_free(&body);
    cp_batch_free(&b);
    cp_processor_lambda.destroy(ctx);
    fake_free(f);
}

static void malformed_responses_fail_the_whole_invocation(void)
{
    const char *bodies[] = {
        "oops",
        "[]",
        "{\"records\":{}}",
        "{\"records\":[1]}",
        "{\"records\":[{}], ",
        "{\"records\":[{\"recordId\":7,\"result\":\"Ok\"}]}",
        "{\"records\":[{\"recordId\":\"x\",\"result\":\"Ok\",\"metadata\":{\"partitionKeys\":[]}}]"
        "}",
        "{\"records\":[{\"recordId\":\"x\",\"result\":\"Ok\",\"metadata\":"
        "{\"partitionKeys\":{\"k\":{}}}}]}",
    };
    for (size_t k = 0; k < sizeof(bodies) / sizeof(bodies[0]); k++) {
        fake *f = fake_new();
        f->fixed = bodies[k];
        void *ctx = lambda_ctx(f, 1, NULL, NULL);
        cp_batch b = CP_BATCH_INIT;
        make_batch(&b, 3);
        apply(ctx, &b);
        CPT_EQ_INT(f->calls, 1); /* a returned response is final: no retry */
        for (int i = 0; i < 3; i++) {
            failed_with(&b.recs[i], "Lambda.JsonProcessingException",
                        "There was an error parsing returned records", 1);
        }
        cp_batch_free(&b);
        cp_processor_lambda.destroy(ctx);
        fake_free(f);
    }
}

static policy second_bad_b64(size_t i)
{
    return i == 1 ? P_BADB64 : P_OK;
}

static policy second_bad_result(size_t i)
{
    return i == 1 ? P_BADRES : P_OK;
}

static void one_bad_entry_spoils_the_response(void)
{
    policy (*pols[])(size_t) = {second_bad_b64, second_bad_result};
    for (int k = 0; k < 2; k++) {
        fake *f = fake_new();
        f->per_record = pols[k];
        void *ctx = lambda_ctx(f, 1, NULL, NULL);
        cp_batch b = CP_BATCH_INIT;
        make_batch(&b, 3);
        apply(ctx, &b);
        CPT_EQ_INT(f->calls, 1);
        for (int i = 0; i < 3; i++) {
            failed_with(&b.recs[i], "Lambda.JsonProcessingException", "error parsing", 1);
            CPT_EQ_MEM(b.recs[i].data.p, b.recs[i].data.len, b.recs[i].raw.p,
                       b.recs[i].raw.len); /* nothing half-applied */
        }
        cp_batch_free(&b);
        cp_processor_lambda.destroy(ctx);
        fake_free(f);
    }
}

static void no_records_member_means_every_id_is_missing(void)
{
    const char *bodies[] = {"{}", "{\"records\":null}"};
    for (int k = 0; k < 2; k++) {
        fake *f = fake_new();
        f->fixed = bodies[k];
        void *ctx = lambda_ctx(f, 1, NULL, NULL);
        cp_batch b = CP_BATCH_INIT;
        make_batch(&b, 2);
        apply(ctx, &b);
        for (int i = 0; i < 2; i++) {
            failed_with(&b.recs[i], "Lambda.MissingRecordId", "were not returned", 1);
        }
        cp_batch_free(&b);
        cp_processor_lambda.destroy(ctx);
        fake_free(f);
    }
}

static void records_already_failed_or_dropped_are_not_sent(void)
{
    fake *f = fake_new();
    void *ctx = lambda_ctx(f, 1, NULL, NULL);
    cp_batch b = CP_BATCH_INIT;
    make_batch(&b, 3);
    b.recs[0].result = CP_REC_DROPPED;
    cp_drec_fail(&b, &b.recs[1], "processing-failed", "RecordDeAggregation.InvalidJson", "x");
    apply(ctx, &b);
    CPT_EQ_INT(f->calls, 1);
    CPT_EQ_INT(f->records_per_call[0], 1);
    CPT_EQ_INT(b.recs[0].result, CP_REC_DROPPED);
    CPT_EQ_STR(b.recs[1].error_code, "RecordDeAggregation.InvalidJson");
    CPT_EQ_INT(b.recs[2].result, CP_REC_OK);

    /* Nothing left to send: no invocation at all. */
    cp_batch c = CP_BATCH_INIT;
    make_batch(&c, 1);
    c.recs[0].result = CP_REC_DROPPED;
    apply(ctx, &c);
    CPT_EQ_INT(f->calls, 1);
    cp_batch_free(&b);
    cp_batch_free(&c);
    cp_processor_lambda.destroy(ctx);
    fake_free(f);
}

/* ---- invocation failures and retries ------------------------------------------------------ */

static int fail_first(fake *f, const req *rq, int call, cp_buf *resp, int *ferr)
{
    if (call == 0) {
        *ferr = 1;
        cp_buf_puts(resp, "{\"errorMessage\":\"boom\",\"errorType\":\"Error\"}");
        return CP_OK;
    }
    return respond_records(f, rq, call, resp, ferr);
}

static void function_error_then_success_is_retried(void)
{
    fake *f = fake_new();
    f->respond = fail_first;
    void *ctx = lambda_ctx(f, 1, NULL, NULL);
    cp_batch b = CP_BATCH_INIT;
    make_batch(&b, 2);
    apply(ctx, &b);
    CPT_EQ_INT(f->calls, 2);
    CPT_EQ_INT(b.recs[0].result, CP_REC_OK);
    CPT_EQ_INT(b.recs[1].result, CP_REC_OK);
    eq_slice(b.recs[1].data, "REC-1\n");
    cp_batch_free(&b);
    cp_processor_lambda.destroy(ctx);
    fake_free(f);
}

static int mode_rc;
static const char *mode_body;
static int mode_ferr;
static size_t mode_size;
static int mode_until; /* calls that fail before success; INT32_MAX: always */

static int scripted(fake *f, const req *rq, int call, cp_buf *resp, int *ferr)
{
    if (call >= mode_until) {
        return respond_records(f, rq, call, resp, ferr);
    }
    *ferr = mode_ferr;
    if (mode_body) {
        cp_buf_puts(resp, mode_body);
    }
    if (mode_size) {
        cp_buf_puts(resp, "{\"records\":[");
        while (resp->len < mode_size) {
            cp_buf_puts(resp, "{\"recordId\":\"padding\",\"result\":\"Dropped\"},");
        }
        resp->len--;
        cp_buf_puts(resp, "]}");
    }
    return mode_rc;
}

static void run_failing(int rc, int ferr, const char *body, size_t size, const char *retries,
                        int until, int want_calls, const char *code, const char *msg)
{
    fake *f = fake_new();
    f->respond = scripted;
    mode_rc = rc, mode_ferr = ferr, mode_body = body, mode_size = size, mode_until = until;
    void *ctx = lambda_ctx(f, 1, retries, NULL);
    cp_batch b = CP_BATCH_INIT;
    make_batch(&b, 3);
    apply(ctx, &b);
    CPT_EQ_INT(f->calls, want_calls);
    for (int i = 0; i < 3; i++) {
        if (code) {
            failed_with(&b.recs[i], code, msg, want_calls);
            CPT_EQ_MEM(b.recs[i].data.p, b.recs[i].data.len, b.recs[i].raw.p, b.recs[i].raw.len);
        } else {
            CPT_EQ_INT(b.recs[i].result, CP_REC_OK);
        }
    }
    cp_batch_free(&b);
    cp_processor_lambda.destroy(ctx);
    fake_free(f);
}

static void always_failing_function_ends_in_error_output_after_retries(void)
{
    /* NumberOfRetries 3 (default): four invocations, attemptsMade 4. */
    run_failing(CP_OK, 1, "{\"errorMessage\":\"boom\"}", 0, NULL, INT32_MAX, 4,
                "Lambda.FunctionError",
                "The Lambda function was successfully invoked but it returned an error result.");
    run_failing(CP_OK, 1, "{\"errorMessage\":\"boom\"}", 0, "0", INT32_MAX, 1,
                "Lambda.FunctionError", "returned an error result");
    run_failing(CP_OK, 1, "{\"errorMessage\":\"boom\"}", 0, "5", INT32_MAX, 6,
                "Lambda.FunctionError", "returned an error result");
}

static void timeouts_throttling_and_missing_functions_are_retried(void)
{
    run_failing(CP_OK, 1,
                "{\"errorMessage\":\"2026-01-01T00:00:00.000Z 1f2e Task timed out after 3.00 "
                "seconds\"}",
                0, "2", INT32_MAX, 3, "Lambda.FunctionError", "Task timed out after 3.00 seconds");
    run_failing(CP_EAGAIN, 0, NULL, 0, "1", INT32_MAX, 2, "Lambda.InvokeLimitExceeded",
                "The Lambda concurrent execution limit is exceeded.");
    run_failing(CP_EAGAIN, 0, NULL, 0, "3", 2, 3, NULL, NULL); /* throttled twice, then fine */
    run_failing(CP_ENOTFOUND, 0, NULL, 0, "1", INT32_MAX, 2, "Lambda.ResourceNotFound",
                "The specified Lambda function does not exist.");
    run_failing(-ECONNREFUSED, 0, NULL, 0, "1", INT32_MAX, 2, "Lambda.FunctionError",
                "could not be invoked");
    run_failing(-EACCES, 0, NULL, 0, "0", INT32_MAX, 1, "Lambda.InvokeAccessDenied",
                "Access was denied");
}

static void oversize_responses_count_as_function_errors(void)
{
    run_failing(CP_OK, 0, NULL, CP_LAMBDA_PAYLOAD_MAX + 100, "1", INT32_MAX, 2,
                "Lambda.FunctionError", "Response payload size exceeded maximum allowed");
    run_failing(CP_ETOOBIG, 0, NULL, 0, "1", INT32_MAX, 2, "Lambda.FunctionError",
                "Response payload size exceeded");
    run_failing(CP_OK, 0, NULL, CP_LAMBDA_PAYLOAD_MAX + 100, "2", 1, 2, NULL, NULL);
}

/* ---- splitting and concurrency ------------------------------------------------------------ */

static void batches_split_at_buffer_size_in_order(void)
{
    fake *f = fake_new();
    void *ctx = lambda_ctx(f, 1, NULL, "0.2"); /* 0.2 MiB = 209715 bytes of records */
    cp_batch b = CP_BATCH_INIT;
    cp_buf big = CP_BUF_INIT;
    for (int i = 0; i < 50000; i++) {
        cp_buf_putc(&big, (char) ('a' + i % 26));
    }
    for (size_t i = 0; i < 10; i++) {
        cp_drec *r = cp_batch_add(&b);
        r->shard = 1;
        r->seq = i;
        r->raw = r->data = cp_batch_copy(&b, cp_buf_slice(&big));
    }
    apply(ctx, &b);
    CPT_EQ_INT(f->calls, 3);
    size_t total = 0;
    for (size_t i = 0; i < f->npayloads; i++) {
        CPT_CHECK(f->raw_sizes[i] <= 209715);
        total += f->records_per_call[i];
    }
    CPT_EQ_INT(total, 10);
    for (size_t i = 0; i < 10; i++) {
        CPT_EQ_INT(b.recs[i].result, CP_REC_OK);
        CPT_EQ_INT(b.recs[i].data.len, 50001);
        CPT_EQ_INT(b.recs[i].data.p[0], 'A');
    }
    cp_lambda_hints h;
    cp_processor_lambda_hints(ctx, &h);
    CPT_EQ_INT(h.buffer_bytes, 209715);
    CPT_EQ_INT(h.interval_s, 60);
    CPT_EQ_INT(h.retries, 3);
    cp_buf_free(&big);
    cp_batch_free(&b);
    cp_processor_lambda.destroy(ctx);
    fake_free(f);
}

static void requests_never_exceed_six_mib(void)
{
    /* 3 MB of one-byte records: the per-record envelope, not the data, fills the request. */
    fake *f = fake_new();
    void *ctx = lambda_ctx(f, 1, NULL, "3");
    cp_batch b = CP_BATCH_INIT;
    size_t n = 30000;
    for (size_t i = 0; i < n; i++) {
        cp_drec *r = cp_batch_add(&b);
        r->shard = 2;
        r->seq = i;
        r->raw = r->data = cp_batch_copy(&b, CP_SLICE("x"));
        r->source_pk = cp_batch_copy(&b, CP_SLICE("0123456789abcdef0123456789abcdef"));
    }
    apply(ctx, &b);
    CPT_CHECK(f->calls >= 2);
    size_t total = 0;
    for (size_t i = 0; i < f->npayloads; i++) {
        CPT_CHECK(f->payload_sizes[i] <= CP_LAMBDA_PAYLOAD_MAX);
        total += f->records_per_call[i];
    }
    CPT_EQ_INT(total, n);
    for (size_t i = 0; i < n; i++) {
        CPT_EQ_INT(b.recs[i].result, CP_REC_OK);
    }
    cp_batch_free(&b);
    cp_processor_lambda.destroy(ctx);
    fake_free(f);
}

static void invocations_run_concurrently_up_to_five(void)
{
    fake *f = fake_new();
    f->wait_for_inflight = 2;
    void *ctx = lambda_ctx(f, 1, NULL, "0.2");
    cp_batch b = CP_BATCH_INIT;
    cp_buf big = CP_BUF_INIT;
    for (int i = 0; i < 150000; i++) {
        cp_buf_putc(&big, 'q');
    }
    for (size_t i = 0; i < 12; i++) { /* one record per invocation */
        cp_drec *r = cp_batch_add(&b);
        r->shard = 1;
        r->seq = i;
        r->raw = r->data = cp_batch_copy(&b, cp_buf_slice(&big));
    }
    apply(ctx, &b);
    CPT_EQ_INT(f->calls, 12);
    CPT_CHECK(f->max_inflight >= 2);
    CPT_CHECK(f->max_inflight <= CP_LAMBDA_MAX_INFLIGHT);
    for (size_t i = 0; i < 12; i++) {
        CPT_EQ_INT(b.recs[i].result, CP_REC_OK);
    }
    cp_buf_free(&big);
    cp_batch_free(&b);
    cp_processor_lambda.destroy(ctx);
    fake_free(f);
}

/* ---- configuration ------------------------------------------------------------------------ */

static int init_rc(const cp_processor_param *p, size_t n, int with_invoke, char *msg)
{
    cp_processor_env env = {.delivery_stream_arn = STREAM_ARN,
                            .region = "eu-west-1",
                            .invoke = with_invoke ? fake_invoke : NULL};
    void *ctx = NULL;
    cp_err err = {0};
    int rc = cp_processor_lambda.init(p, n, &env, &ctx, &err);
    if (rc == CP_OK) {
        cp_processor_lambda.destroy(ctx);
    }
    snprintf(msg, 256, "%s", err.msg);
    return rc;
}

static void init_validates_parameters(void)
{
    char msg[256];
    cp_processor_param none[] = {{"NumberOfRetries", "3"}};
    CPT_EQ_INT(init_rc(none, 1, 1, msg), CP_EINVAL);
    CPT_CHECK(strstr(msg, "LambdaArn is required") != NULL);
    const char *bad[][2] = {
        {"BufferSizeInMBs", "0.1"},        {"BufferSizeInMBs", "3.5"},
        {"BufferSizeInMBs", "abc"},        {"BufferIntervalInSeconds", "901"},
        {"BufferIntervalInSeconds", "-1"}, {"NumberOfRetries", "x"},
        {"NumberOfRetries", "-2"},         {"SubRecordType", "JSON"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cp_processor_param p[] = {{"LambdaArn", FN_ARN}, {bad[i][0], bad[i][1]}};
        if (init_rc(p, 2, 1, msg) != CP_EINVAL) {
            CPT_FAIL_AT("%s=%s accepted", bad[i][0], bad[i][1]);
        }
    }
    cp_processor_param good[] = {{"LambdaArn", FN_ARN},
                                 {"NumberOfRetries", "9"},
                                 {"RoleArn", "arn:aws:iam::111122223333:role/fh"},
                                 {"BufferSizeInMBs", "0.2"},
                                 {"BufferIntervalInSeconds", "0"}};
    CPT_EQ_INT(init_rc(good, 5, 1, msg), CP_OK);
    /* Without an invoke function (no Lambda service wired) the processor cannot work. */
    cp_processor_param arn[] = {{"LambdaArn", FN_ARN}};
    CPT_EQ_INT(init_rc(arn, 1, 0, msg), CP_EINVAL);
}

CPT_LIST = {
    {"event_is_firehose_shape_for_kinesis_sources", event_is_firehose_shape_for_kinesis_sources},
    {"event_for_direct_put_has_no_kinesis_metadata", event_for_direct_put_has_no_kinesis_metadata},
    {"record_ids_are_reproducible_and_unique", record_ids_are_reproducible_and_unique},
    {"outcomes_follow_the_response_contract", outcomes_follow_the_response_contract},
    {"extra_ids_are_ignored_and_escaped_ids_match", extra_ids_are_ignored_and_escaped_ids_match},
    {"malformed_responses_fail_the_whole_invocation",
     malformed_responses_fail_the_whole_invocation},
    {"one_bad_entry_spoils_the_response", one_bad_entry_spoils_the_response},
    {"no_records_member_means_every_id_is_missing", no_records_member_means_every_id_is_missing},
    {"records_already_failed_or_dropped_are_not_sent",
     records_already_failed_or_dropped_are_not_sent},
    {"function_error_then_success_is_retried", function_error_then_success_is_retried},
    {"always_failing_function_ends_in_error_output_after_retries",
     always_failing_function_ends_in_error_output_after_retries},
    {"timeouts_throttling_and_missing_functions_are_retried",
     timeouts_throttling_and_missing_functions_are_retried},
    {"oversize_responses_count_as_function_errors", oversize_responses_count_as_function_errors},
    {"batches_split_at_buffer_size_in_order", batches_split_at_buffer_size_in_order},
    {"requests_never_exceed_six_mib", requests_never_exceed_six_mib},
    {"invocations_run_concurrently_up_to_five", invocations_run_concurrently_up_to_five},
    {"init_validates_parameters", init_validates_parameters},
    {0},
};
