/* SPDX-License-Identifier: MIT */
/*
 * Kinesis Data Streams API: every operation driven through cp_aws_dispatch with hand-built,
 * SigV4-signed requests over a cp_streams manager on a temporary directory. Covers pagination,
 * all iterator types, expired/tampered/foreign iterators, PutRecords per-record failures
 * (throttling hook and an injected storage failure), size limits, AWS's exact error types and
 * messages, malformed JSON and wrong member types.
 */
#include "cpt.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <time.h>

#include "aws/proto.h"
#include "core/base64.h"
#include "core/clock.h"
#include "kinesis/api.h"
#include "stream/backends/embedded.h"

/* The wall-clock seam exists only in CP_TESTING builds; release builds skip what needs it. */
#ifdef CP_TESTING
#define PIN(ms)         cp_clock_pin_ms(ms)
#define HAVE_CLOCK_SEAM 1
#else
#define PIN(ms)         ((void) (ms))
#define HAVE_CLOCK_SEAM 0
#endif

#define NEEDS_CLOCK_SEAM()                                                                         \
    do {                                                                                           \
        if (!HAVE_CLOCK_SEAM) {                                                                    \
            printf("  skipped: needs the clock seam (CP_TESTING)\n");                              \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Environment                                                                                 */

typedef struct env {
    cp_streams *s;
    cp_kinesis_api *api;
    cp_aws_router *r;
} env;

static cp_embedded_opts g_emb = {.segment_bytes = 0, .no_fsync = 1};

static void env_open_with(env *e, const cp_kinesis_api_cfg *cfg, const cp_stream_backend_ops *be)
{
    cp_streams_opts so = {.backend = be, .backend_opts = &g_emb, .no_fsync = 1};
    cp_err err = {0};
    CPT_EQ_INT(cp_streams_open(cpt_tmpdir(), &so, &e->s, &err), CP_OK);
    e->api = cp_kinesis_api_new(e->s, cfg);
    e->r = cp_aws_router_new(NULL);
    CPT_EQ_INT(cp_kinesis_api_register(e->api, e->r), CP_OK);
    CPT_EQ_INT(cp_kinesis_api_register(e->api, e->r), CP_EEXIST);
}

static void env_open(env *e)
{
    env_open_with(e, NULL, NULL);
}

static void env_close(env *e)
{
    cp_aws_router_free(e->r);
    cp_kinesis_api_free(e->api);
    cp_streams_close(e->s);
}

/* One call's outcome: status, body, the parsed JSON and, for errors, __type and message. */
typedef struct reply {
    int status;
    char *body;
    cJSON *json;
    char type[128];
    char msg[4096];
} reply;

static void reply_free(reply *r)
{
    cJSON_Delete(r->json);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* Dispatch Kinesis_20131202.<op> with `body` (length given: bodies may be large). */
static reply call_n(env *e, const char *op, const char *body, size_t len)
{
    char target[128], date[17];
    snprintf(target, sizeof(target), "Kinesis_20131202.%s", op);
    cp_sigv4_amz_date((int64_t) time(NULL), date);
    cp_http_header h[6];
    size_t n = 0;
    h[n++] = (cp_http_header){CP_SLICE("Host"), CP_SLICE("127.0.0.1:4566")};
    h[n++] = (cp_http_header){CP_SLICE("X-Amz-Date"), cp_slice_str(date)};
    h[n++] = (cp_http_header){CP_SLICE("X-Amz-Target"), cp_slice_str(target)};
    h[n++] = (cp_http_header){CP_SLICE("Content-Type"), CP_SLICE("application/x-amz-json-1.1")};
    char hash[65];
    cp_sigv4_sha256_hex(cp_slice_of(body, len), hash);
    cp_sigv4_msg m = {CP_SLICE("POST"), CP_SLICE("/"), CP_SLICE(""), h, n, cp_slice_of(hash, 64)};
    cp_sigv4_signer sg = {CP_SLICE("AKIDEXAMPLE"), CP_SLICE("secret"), CP_SLICE("us-east-1"),
                          CP_SLICE("kinesis"), 0};
    cp_buf authz = CP_BUF_INIT;
    cp_sigv4_sign(&sg, &m, cp_slice_str(date), &authz);
    h[n++] = (cp_http_header){CP_SLICE("Authorization"), cp_buf_slice(&authz)};
    cp_http_scratch scratch = CP_HTTP_SCRATCH_INIT;
    cp_http_req req = {.method = CP_SLICE("POST"),
                       .target = CP_SLICE("/"),
                       .path = CP_SLICE("/"),
                       .query = CP_SLICE(""),
                       .headers = h,
                       .nheaders = n,
                       .body = cp_slice_of(body, len),
                       .remote = "test",
                       .version = 11,
                       .scratch = &scratch};
    cp_http_resp resp;
    cp_http_resp_init(&resp);
    CPT_EQ_INT(cp_aws_dispatch(e->r, &req, &resp), CP_OK);
    reply r;
    memset(&r, 0, sizeof(r));
    r.status = resp.status;
    r.body = strndup(resp.body.p ? resp.body.p : "", resp.body.len);
    if (resp.body.len) {
        r.json = cJSON_ParseWithLength(resp.body.p, resp.body.len);
        if (!r.json) {
            CPT_FAIL_AT("%s: reply is not JSON: %.300s", op, r.body);
        }
    }
    cp_slice ct = cp_http_resp_header(&resp, "Content-Type");
    CPT_CHECK(cp_slice_eq(ct, CP_SLICE("application/x-amz-json-1.1")));
    if (r.status >= 400 && r.json) {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(r.json, "__type");
        cJSON *mm = cJSON_GetObjectItemCaseSensitive(r.json, "message");
        snprintf(r.type, sizeof(r.type), "%s", cJSON_IsString(t) ? t->valuestring : "");
        snprintf(r.msg, sizeof(r.msg), "%s", cJSON_IsString(mm) ? mm->valuestring : "");
    }
    cp_buf_free(&authz);
    cp_http_scratch_free(&scratch);
    cp_http_resp_free(&resp);
    return r;
}

static reply call(env *e, const char *op, const char *body)
{
    return call_n(e, op, body, strlen(body));
}

/* Printf-style body. */
static reply callf(env *e, const char *op, const char *fmt, ...) CP_PRINTF(3, 4);
static reply callf(env *e, const char *op, const char *fmt, ...)
{
    char *b = NULL;
    va_list ap;
    va_start(ap, fmt);
    CPT_CHECK(vasprintf(&b, fmt, ap) >= 0);
    va_end(ap);
    reply r = call(e, op, b);
    free(b);
    return r;
}

/* Navigate "A.B.0.C" through objects and arrays. */
static cJSON *jget(const reply *r, const char *path)
{
    cJSON *j = r->json;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok && j;
         tok = strtok_r(NULL, ".", &save)) {
        if (cJSON_IsArray(j)) {
            j = cJSON_GetArrayItem(j, atoi(tok));
        } else {
            j = cJSON_GetObjectItemCaseSensitive(j, tok);
        }
    }
    return j;
}

static const char *jstr(const reply *r, const char *path)
{
    cJSON *j = jget(r, path);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

static double jnum(const reply *r, const char *path)
{
    cJSON *j = jget(r, path);
    return cJSON_IsNumber(j) ? j->valuedouble : -1e300;
}

static int jsize(const reply *r, const char *path)
{
    cJSON *j = jget(r, path);
    return cJSON_IsArray(j) ? cJSON_GetArraySize(j) : -1;
}

static int jtrue(const reply *r, const char *path)
{
    return cJSON_IsTrue(jget(r, path));
}

#define OK_CALL(r)                                                                                 \
    do {                                                                                           \
        if ((r).status != 200) {                                                                   \
            CPT_FAIL_AT("expected 200, got %d %s", (r).status, (r).body);                          \
        }                                                                                          \
    } while (0)

/* The call fails with exactly this status, type and message (msg NULL: not checked). */
static void expect_err(int line, reply r, int st, const char *ty, const char *ms)
{
    if (r.status != st || strcmp(r.type, ty) != 0 || (ms && strcmp(r.msg, ms) != 0)) {
        CPT_FAIL_AT("(line %d) want %d %s \"%s\"\n    got  %d %s", line, st, ty, ms ? ms : "*",
                    r.status, r.body);
    }
    reply_free(&r);
}
#define EXPECT_ERR(r, st, ty, ms) expect_err(__LINE__, (r), (st), (ty), (ms))

static void ok(env *e, const char *op, const char *body)
{
    reply r = call(e, op, body);
    OK_CALL(r);
    reply_free(&r);
}

static void create(env *e, const char *name, int shards)
{
    reply r = callf(e, "CreateStream", "{\"StreamName\":\"%s\",\"ShardCount\":%d}", name, shards);
    OK_CALL(r);
    CPT_EQ_STR(r.body, "{}");
    reply_free(&r);
}

static char *b64(const char *s, size_t n)
{
    cp_buf b = CP_BUF_INIT;
    cp_base64_encode(cp_slice_of(s, n), &b);
    char *out = strdup(b.p ? b.p : "");
    cp_buf_free(&b);
    return out;
}

/* PutRecord; returns the sequence number (caller frees) and the shard id in shard_out. */
static char *put(env *e, const char *stream, const char *pk, const char *data, char *shard_out)
{
    char *d = b64(data, strlen(data));
    reply r =
        callf(e, "PutRecord", "{\"StreamName\":\"%s\",\"PartitionKey\":\"%s\",\"Data\":\"%s\"}",
              stream, pk, d);
    free(d);
    OK_CALL(r);
    CPT_EQ_STR(jstr(&r, "EncryptionType"), "NONE");
    if (shard_out) {
        strcpy(shard_out, jstr(&r, "ShardId"));
    }
    char *seq = strdup(jstr(&r, "SequenceNumber"));
    reply_free(&r);
    return seq;
}

static char *iterator(env *e, const char *stream, const char *shard, const char *type,
                      const char *extra)
{
    reply r = callf(e, "GetShardIterator",
                    "{\"StreamName\":\"%s\",\"ShardId\":\"%s\",\"ShardIteratorType\":\"%s\"%s}",
                    stream, shard, type, extra ? extra : "");
    OK_CALL(r);
    const char *it = jstr(&r, "ShardIterator");
    CPT_CHECK(it != NULL && strlen(it) <= 512);
    char *out = strdup(it);
    reply_free(&r);
    return out;
}

static reply get_records(env *e, const char *it, int limit)
{
    if (limit > 0) {
        return callf(e, "GetRecords", "{\"ShardIterator\":\"%s\",\"Limit\":%d}", it, limit);
    }
    return callf(e, "GetRecords", "{\"ShardIterator\":\"%s\"}", it);
}

/* The decoded Data of record i of a GetRecords reply. */
static char *rec_data(const reply *r, int i)
{
    char path[64];
    snprintf(path, sizeof(path), "Records.%d.Data", i);
    const char *d = jstr(r, path);
    CPT_CHECK(d != NULL);
    cp_buf b = CP_BUF_INIT;
    CPT_EQ_INT(cp_base64_decode(cp_slice_str(d), &b), CP_OK);
    char *out = strndup(b.p ? b.p : "", b.len);
    cp_buf_free(&b);
    return out;
}

static void expect_data(const reply *r, int i, const char *want)
{
    char *d = rec_data(r, i);
    CPT_EQ_STR(d, want);
    free(d);
}

/* ------------------------------------------------------------------------------------------ */
/* Control plane                                                                               */

static void create_describe_list_delete(void)
{
    env e;
    env_open(&e);
    create(&e, "orders", 3);
    reply r = call(&e, "DescribeStream", "{\"StreamName\":\"orders\"}");
    OK_CALL(r);
    CPT_EQ_STR(jstr(&r, "StreamDescription.StreamName"), "orders");
    CPT_EQ_STR(jstr(&r, "StreamDescription.StreamARN"),
               "arn:aws:kinesis:us-east-1:000000000000:stream/orders");
    CPT_EQ_STR(jstr(&r, "StreamDescription.StreamStatus"), "ACTIVE");
    CPT_EQ_STR(jstr(&r, "StreamDescription.StreamModeDetails.StreamMode"), "PROVISIONED");
    CPT_EQ_INT(jsize(&r, "StreamDescription.Shards"), 3);
    CPT_CHECK(!jtrue(&r, "StreamDescription.HasMoreShards"));
    CPT_EQ_INT(jnum(&r, "StreamDescription.RetentionPeriodHours"), 24);
    CPT_EQ_STR(jstr(&r, "StreamDescription.EncryptionType"), "NONE");
    CPT_EQ_INT(jsize(&r, "StreamDescription.EnhancedMonitoring.0.ShardLevelMetrics"), 0);
    double created = jnum(&r, "StreamDescription.StreamCreationTimestamp");
    CPT_CHECK(fabs(created - (double) cp_clock_now_ms() / 1000.0) < 60);
    /* The boundaries real AWS gives a 3-shard stream (spec 5.3). */
    CPT_EQ_STR(jstr(&r, "StreamDescription.Shards.0.ShardId"), "shardId-000000000000");
    CPT_EQ_STR(jstr(&r, "StreamDescription.Shards.0.HashKeyRange.EndingHashKey"),
               "113427455640312821154458202477256070484");
    CPT_EQ_STR(jstr(&r, "StreamDescription.Shards.1.HashKeyRange.StartingHashKey"),
               "113427455640312821154458202477256070485");
    CPT_EQ_STR(jstr(&r, "StreamDescription.Shards.2.HashKeyRange.EndingHashKey"),
               "340282366920938463463374607431768211455");
    CPT_CHECK(jstr(&r, "StreamDescription.Shards.0.SequenceNumberRange.StartingSequenceNumber"));
    CPT_CHECK(!jget(&r, "StreamDescription.Shards.0.SequenceNumberRange.EndingSequenceNumber"));
    CPT_CHECK(!jget(&r, "StreamDescription.Shards.0.ParentShardId"));
    reply_free(&r);

    r = call(&e, "DescribeStreamSummary", "{\"StreamName\":\"orders\"}");
    OK_CALL(r);
    CPT_EQ_INT(jnum(&r, "StreamDescriptionSummary.OpenShardCount"), 3);
    CPT_EQ_INT(jnum(&r, "StreamDescriptionSummary.ConsumerCount"), 0);
    CPT_EQ_STR(jstr(&r, "StreamDescriptionSummary.StreamStatus"), "ACTIVE");
    CPT_EQ_STR(jstr(&r, "StreamDescriptionSummary.StreamARN"),
               "arn:aws:kinesis:us-east-1:000000000000:stream/orders");
    reply_free(&r);

    r = call(&e, "ListStreams", "{}");
    OK_CALL(r);
    CPT_EQ_INT(jsize(&r, "StreamNames"), 1);
    CPT_EQ_STR(jstr(&r, "StreamNames.0"), "orders");
    CPT_CHECK(!jtrue(&r, "HasMoreStreams"));
    CPT_CHECK(!jget(&r, "NextToken"));
    CPT_EQ_STR(jstr(&r, "StreamSummaries.0.StreamStatus"), "ACTIVE");
    reply_free(&r);

    EXPECT_ERR(call(&e, "CreateStream", "{\"StreamName\":\"orders\",\"ShardCount\":1}"), 400,
               "ResourceInUseException",
               "Stream orders under account 000000000000 already exists.");
    /* EnforceConsumerDeletion is accepted. */
    ok(&e, "DeleteStream", "{\"StreamName\":\"orders\",\"EnforceConsumerDeletion\":true}");
    EXPECT_ERR(call(&e, "DescribeStream", "{\"StreamName\":\"orders\"}"), 400,
               "ResourceNotFoundException", "Stream orders under account 000000000000 not found.");
    EXPECT_ERR(call(&e, "DeleteStream", "{\"StreamName\":\"orders\"}"), 400,
               "ResourceNotFoundException", "Stream orders under account 000000000000 not found.");
    r = call(&e, "ListStreams", "{}");
    CPT_EQ_INT(jsize(&r, "StreamNames"), 0);
    reply_free(&r);
    env_close(&e);
}

static void on_demand_streams(void)
{
    env e;
    env_open(&e);
    /* What `aws kinesis create-stream --stream-name S --stream-mode-details
     * StreamMode=ON_DEMAND` sends. */
    ok(&e, "CreateStream",
       "{\"StreamName\":\"S\",\"StreamModeDetails\":{\"StreamMode\":\"ON_DEMAND\"}}");
    reply r = call(&e, "DescribeStreamSummary", "{\"StreamName\":\"S\"}");
    OK_CALL(r);
    CPT_EQ_STR(jstr(&r, "StreamDescriptionSummary.StreamModeDetails.StreamMode"), "ON_DEMAND");
    CPT_EQ_INT(jnum(&r, "StreamDescriptionSummary.OpenShardCount"), 4);
    reply_free(&r);
    r = call(&e, "ListStreams", "{}");
    CPT_EQ_STR(jstr(&r, "StreamSummaries.0.StreamModeDetails.StreamMode"), "ON_DEMAND");
    reply_free(&r);
    EXPECT_ERR(call(&e, "CreateStream",
                    "{\"StreamName\":\"T\",\"ShardCount\":2,"
                    "\"StreamModeDetails\":{\"StreamMode\":\"ON_DEMAND\"}}"),
               400, "InvalidArgumentException",
               "ShardCount is not expected when StreamMode=ON_DEMAND");
    EXPECT_ERR(
        call(&e, "UpdateShardCount",
             "{\"StreamName\":\"S\",\"TargetShardCount\":8,\"ScalingType\":\"UNIFORM_SCALING\"}"),
        400, "ValidationException",
        "Request is invalid. Stream S under account 000000000000 is in On-Demand mode.");
    /* PROVISIONED spelled out works too. */
    ok(&e, "CreateStream",
       "{\"StreamName\":\"P\",\"ShardCount\":1,\"StreamModeDetails\":{\"StreamMode\":"
       "\"PROVISIONED\"}}");
    env_close(&e);
}

static void validation_messages(void)
{
    env e;
    env_open(&e);
    EXPECT_ERR(call(&e, "CreateStream", "{\"ShardCount\":1}"), 400, "ValidationException",
               "1 validation error detected: Value null at 'streamName' failed to satisfy "
               "constraint: Member must not be null");
    EXPECT_ERR(call(&e, "CreateStream", "{\"StreamName\":\"\",\"ShardCount\":1}"), 400,
               "ValidationException",
               "2 validation errors detected: Value '' at 'streamName' failed to satisfy "
               "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; "
               "Value '' at 'streamName' failed to satisfy constraint: Member must have length "
               "greater than or equal to 1");
    char name[130];
    memset(name, 'a', 129);
    name[129] = 0;
    char want[512];
    snprintf(want, sizeof(want),
             "1 validation error detected: Value '%s' at 'streamName' failed to satisfy "
             "constraint: Member must have length less than or equal to 128",
             name);
    EXPECT_ERR(callf(&e, "DescribeStream", "{\"StreamName\":\"%s\"}", name), 400,
               "ValidationException", want);
    EXPECT_ERR(call(&e, "CreateStream", "{\"StreamName\":\"a b\",\"ShardCount\":0}"), 400,
               "ValidationException",
               "2 validation errors detected: Value '0' at 'shardCount' failed to satisfy "
               "constraint: Member must have value greater than or equal to 1; Value 'a b' at "
               "'streamName' failed to satisfy constraint: Member must satisfy regular "
               "expression pattern: [a-zA-Z0-9_.-]+");
    EXPECT_ERR(call(&e, "CreateStream",
                    "{\"StreamName\":\"x\",\"StreamModeDetails\":{\"StreamMode\":\"FAST\"}}"),
               400, "ValidationException",
               "1 validation error detected: Value 'FAST' at 'streamModeDetails.streamMode' "
               "failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, "
               "ON_DEMAND]");
    EXPECT_ERR(call(&e, "CreateStream", "{\"StreamName\":\"x\",\"StreamModeDetails\":{}}"), 400,
               "ValidationException",
               "1 validation error detected: Value null at 'streamModeDetails.streamMode' failed "
               "to satisfy constraint: Member must not be null");
    EXPECT_ERR(call(&e, "DescribeStream", "{\"StreamName\":\"x\",\"Limit\":0}"), 400,
               "ValidationException",
               "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
               "Member must have value greater than or equal to 1");
    EXPECT_ERR(call(&e, "ListStreams", "{\"Limit\":10001}"), 400, "ValidationException",
               "1 validation error detected: Value '10001' at 'limit' failed to satisfy "
               "constraint: Member must have value less than or equal to 10000");
    EXPECT_ERR(call(&e, "DescribeStream", "{\"StreamARN\":\"arn:aws:s3:::bucket\"}"), 400,
               "ValidationException",
               "1 validation error detected: Value 'arn:aws:s3:::bucket' at 'streamARN' failed "
               "to satisfy constraint: Member must satisfy regular expression pattern: "
               "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+");
    /* Neither identifier: a semantic error, not a shape error. */
    EXPECT_ERR(call(&e, "DescribeStreamSummary", "{}"), 400, "InvalidArgumentException",
               "Neither streamArn or streamName was provided");
    EXPECT_ERR(call(&e, "IncreaseStreamRetentionPeriod", "{\"StreamName\":\"x\"}"), 400,
               "ValidationException",
               "1 validation error detected: Value null at 'retentionPeriodHours' failed to "
               "satisfy constraint: Member must not be null");
    EXPECT_ERR(call(&e, "UpdateShardCount",
                    "{\"StreamName\":\"x\",\"TargetShardCount\":2,"
                    "\"ScalingType\":\"EXPONENTIAL\"}"),
               400, "ValidationException",
               "1 validation error detected: Value 'EXPONENTIAL' at 'scalingType' failed to "
               "satisfy constraint: Member must satisfy enum value set: [UNIFORM_SCALING]");
    /* At most 10 errors are listed, and the count says 10. */
    cp_buf many = CP_BUF_INIT;
    cp_buf_puts(&many, "{\"StreamName\":\"s\",\"Records\":[");
    for (int i = 0; i < 12; i++) {
        cp_buf_printf(&many, "%s{\"Data\":\"\"}", i ? "," : "");
    }
    cp_buf_puts(&many, "]}");
    reply r = call(&e, "PutRecords", many.p);
    CPT_EQ_INT(r.status, 400);
    CPT_EQ_STR(r.type, "ValidationException");
    CPT_CHECK(strncmp(r.msg,
                      "10 validation errors detected: Value null at "
                      "'records.1.member.partitionKey'",
                      75) == 0);
    CPT_CHECK(strstr(r.msg, "records.10.member.partitionKey") != NULL);
    CPT_CHECK(strstr(r.msg, "records.11.member") == NULL);
    reply_free(&r);
    cp_buf_free(&many);
    env_close(&e);
}

static void serialization_errors(void)
{
    env e;
    env_open(&e);
    create(&e, "s", 1);
    /* Malformed JSON: control plane (dispatcher) and the one-pass hot paths alike. */
    EXPECT_ERR(call(&e, "CreateStream", "{\"StreamName\":"), 400, "SerializationException", "");
    EXPECT_ERR(call(&e, "PutRecords", "{\"StreamName\":\"s\",\"Records\":[{\"Data\":"), 400,
               "SerializationException", "");
    EXPECT_ERR(call(&e, "PutRecord", "{\"StreamName\":\"s\"} x"), 400, "SerializationException",
               "");
    EXPECT_ERR(call(&e, "PutRecord", "[1]"), 400, "SerializationException", "");
    EXPECT_ERR(call(&e, "PutRecords", "{\"Records\":[],}"), 400, "SerializationException", "");
    EXPECT_ERR(call(&e, "PutRecords", ""), 400, "SerializationException", "");
    /* Wrong member types, in Coral's words. */
    EXPECT_ERR(call(&e, "DescribeStream", "{\"StreamName\":5}"), 400, "SerializationException",
               "class java.math.BigDecimal can not be converted to an String");
    EXPECT_ERR(call(&e, "DescribeStream", "{\"StreamName\":true}"), 400, "SerializationException",
               "class java.lang.Boolean can not be converted to an String");
    EXPECT_ERR(call(&e, "DescribeStream", "{\"StreamName\":{}}"), 400, "SerializationException",
               "Start of structure or map found where not expected.");
    EXPECT_ERR(call(&e, "DescribeStream", "{\"StreamName\":[]}"), 400, "SerializationException",
               "Start of list found where not expected");
    EXPECT_ERR(call(&e, "CreateStream", "{\"StreamName\":\"x\",\"ShardCount\":\"2\"}"), 400,
               "SerializationException",
               "class java.lang.String can not be converted to an Integer");
    EXPECT_ERR(call(&e, "CreateStream", "{\"StreamName\":\"x\",\"ShardCount\":99999999999}"), 400,
               "SerializationException", "Numeric value (99999999999) out of range of int");
    EXPECT_ERR(
        call(&e, "CreateStream", "{\"StreamName\":\"x\",\"StreamModeDetails\":\"ON_DEMAND\"}"), 400,
        "SerializationException", "Expected null");
    EXPECT_ERR(
        call(&e, "DeleteStream", "{\"StreamName\":\"x\",\"EnforceConsumerDeletion\":\"maybe\"}"),
        400, "SerializationException", "'MAYBE' can not be converted to an Boolean");
    EXPECT_ERR(call(&e, "ListShards", "{\"StreamName\":\"s\",\"StreamCreationTimestamp\":\"x\"}"),
               400, "SerializationException",
               "class java.lang.String can not be converted to milliseconds since epoch");
    EXPECT_ERR(call(&e, "AddTagsToStream", "{\"StreamName\":\"s\",\"Tags\":[\"a\"]}"), 400,
               "SerializationException", "Start of list found where not expected");
    EXPECT_ERR(call(&e, "RemoveTagsFromStream", "{\"StreamName\":\"s\",\"TagKeys\":\"a\"}"), 400,
               "SerializationException", "Expected list or null");
    EXPECT_ERR(call(&e, "PutRecords", "{\"StreamName\":\"s\",\"Records\":{}}"), 400,
               "SerializationException", "Start of structure or map found where not expected.");
    EXPECT_ERR(call(&e, "PutRecords", "{\"StreamName\":\"s\",\"Records\":[\"x\"]}"), 400,
               "SerializationException", "Expected null");
    EXPECT_ERR(call(&e, "PutRecords", "{\"StreamName\":\"s\",\"Records\":[{\"Data\":1}]}"), 400,
               "SerializationException",
               "class java.math.BigDecimal can not be converted to a Blob");
    EXPECT_ERR(call(&e, "PutRecord", "{\"StreamName\":\"s\",\"PartitionKey\":7,\"Data\":\"\"}"),
               400, "SerializationException",
               "class java.math.BigDecimal can not be converted to an String");
    EXPECT_ERR(
        call(&e, "PutRecord", "{\"StreamName\":\"s\",\"PartitionKey\":\"k\",\"Data\":\"abc\"}"),
        400, "SerializationException",
        "'abc' can not be converted to a Blob: Base64 encoded length is expected a "
        "multiple of 4 bytes but found: 3");
    EXPECT_ERR(
        call(&e, "PutRecord", "{\"StreamName\":\"s\",\"PartitionKey\":\"k\",\"Data\":\"ab*d\"}"),
        400, "SerializationException",
        "'ab*d' can not be converted to a Blob: Invalid Base64 character: '*'");
    EXPECT_ERR(
        call(&e, "PutRecord", "{\"StreamName\":\"s\",\"PartitionKey\":\"k\",\"Data\":\"a=bc\"}"),
        400, "SerializationException",
        "'a=bc' can not be converted to a Blob: Invalid Base64 character: '='");
    /* Unknown members are ignored; null members count as absent; escaped base64 decodes. */
    reply r = call(&e, "PutRecord",
                   "{\"StreamName\":\"s\",\"StreamId\":\"x\",\"ExplicitHashKey\":null,"
                   "\"PartitionKey\":\"k\",\"Extra\":{\"a\":[1,{}]},\"Data\":\"Pz8\\/\"}");
    OK_CALL(r);
    reply_free(&r);
    char *it = iterator(&e, "s", "shardId-000000000000", "TRIM_HORIZON", NULL);
    r = get_records(&e, it, 0);
    OK_CALL(r);
    expect_data(&r, 0, "???");
    reply_free(&r);
    free(it);
    env_close(&e);
}

static void unknown_stream_everywhere(void)
{
    env e;
    env_open(&e);
    static const char *const ops[][2] = {
        {"DeleteStream", "{\"StreamName\":\"nope\"}"},
        {"DescribeStream", "{\"StreamName\":\"nope\"}"},
        {"DescribeStreamSummary", "{\"StreamName\":\"nope\"}"},
        {"ListShards", "{\"StreamName\":\"nope\"}"},
        {"PutRecord", "{\"StreamName\":\"nope\",\"PartitionKey\":\"a\",\"Data\":\"\"}"},
        {"PutRecords",
         "{\"StreamName\":\"nope\",\"Records\":[{\"PartitionKey\":\"a\",\"Data\":\"\"}]}"},
        {"IncreaseStreamRetentionPeriod", "{\"StreamName\":\"nope\",\"RetentionPeriodHours\":48}"},
        {"DecreaseStreamRetentionPeriod", "{\"StreamName\":\"nope\",\"RetentionPeriodHours\":24}"},
        {"UpdateShardCount",
         "{\"StreamName\":\"nope\",\"TargetShardCount\":2,\"ScalingType\":\"UNIFORM_SCALING\"}"},
        {"AddTagsToStream", "{\"StreamName\":\"nope\",\"Tags\":{\"a\":\"b\"}}"},
        {"ListTagsForStream", "{\"StreamName\":\"nope\"}"},
        {"RemoveTagsFromStream", "{\"StreamName\":\"nope\",\"TagKeys\":[\"a\"]}"},
        {"DescribeStream",
         "{\"StreamARN\":\"arn:aws:kinesis:us-east-1:000000000000:stream/nope\"}"},
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        reply r = call(&e, ops[i][0], ops[i][1]);
        if (r.status != 400 || strcmp(r.type, "ResourceNotFoundException") != 0 ||
            strcmp(r.msg, "Stream nope under account 000000000000 not found.") != 0) {
            CPT_FAIL_AT("%s: %d %s", ops[i][0], r.status, r.body);
        }
        reply_free(&r);
    }
    EXPECT_ERR(call(&e, "GetShardIterator",
                    "{\"StreamName\":\"nope\",\"ShardId\":\"shardId-000000000000\","
                    "\"ShardIteratorType\":\"LATEST\"}"),
               400, "ResourceNotFoundException",
               "Stream nope under account 000000000000 not found.");
    env_close(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Data plane                                                                                  */

static void put_and_get_roundtrip(void)
{
    env e;
    env_open(&e);
    create(&e, "s", 1);
    char shard[32];
    char *s1 = put(&e, "s", "user-42", "first", shard);
    CPT_EQ_STR(shard, "shardId-000000000000");
    reply r = call(&e, "PutRecords",
                   "{\"StreamName\":\"s\",\"Records\":["
                   "{\"Data\":\"c2Vjb25k\",\"PartitionKey\":\"a\"},"
                   "{\"Data\":\"\",\"PartitionKey\":\"b\"},"
                   "{\"Data\":\"dGhpcmQ=\",\"PartitionKey\":\"c\",\"ExplicitHashKey\":\"0\"}]}");
    OK_CALL(r);
    CPT_EQ_INT(jnum(&r, "FailedRecordCount"), 0);
    CPT_EQ_INT(jsize(&r, "Records"), 3);
    CPT_EQ_STR(jstr(&r, "Records.2.ShardId"), "shardId-000000000000");
    CPT_EQ_STR(jstr(&r, "EncryptionType"), "NONE");
    /* Sequence numbers increase within the shard, in request order. */
    CPT_CHECK(strcmp(s1, jstr(&r, "Records.0.SequenceNumber")) < 0);
    CPT_CHECK(strcmp(jstr(&r, "Records.0.SequenceNumber"), jstr(&r, "Records.1.SequenceNumber")) <
              0);
    char *s4 = strdup(jstr(&r, "Records.2.SequenceNumber"));
    reply_free(&r);

    char *it = iterator(&e, "s", "shardId-000000000000", "TRIM_HORIZON", NULL);
    r = get_records(&e, it, 0);
    OK_CALL(r);
    CPT_EQ_INT(jsize(&r, "Records"), 4);
    expect_data(&r, 0, "first");
    expect_data(&r, 1, "second");
    expect_data(&r, 2, "");
    expect_data(&r, 3, "third");
    CPT_EQ_STR(jstr(&r, "Records.0.PartitionKey"), "user-42");
    CPT_EQ_STR(jstr(&r, "Records.0.SequenceNumber"), s1);
    CPT_EQ_STR(jstr(&r, "Records.3.SequenceNumber"), s4);
    CPT_CHECK(!jget(&r, "Records.0.EncryptionType"));
    /* Arrival time: epoch seconds with a millisecond fraction, not milliseconds. */
    double at = jnum(&r, "Records.0.ApproximateArrivalTimestamp");
    CPT_CHECK(fabs(at - (double) cp_clock_now_ms() / 1000.0) < 60);
    CPT_CHECK(strstr(r.body, "\"ApproximateArrivalTimestamp\":") != NULL);
    const char *ts = strstr(r.body, "\"ApproximateArrivalTimestamp\":") + 30;
    const char *dot = strchr(ts, '.');
    CPT_CHECK(dot && dot - ts == 10 && dot[4] == ',');
    CPT_EQ_INT(jnum(&r, "MillisBehindLatest"), 0);
    CPT_CHECK(!jget(&r, "ChildShards"));
    /* A new iterator every call, never the caller's. */
    const char *next = jstr(&r, "NextShardIterator");
    CPT_CHECK(next && strcmp(next, it) != 0);
    char *it2 = strdup(next);
    reply_free(&r);
    r = get_records(&e, it2, 0);
    OK_CALL(r);
    CPT_EQ_INT(jsize(&r, "Records"), 0);
    CPT_CHECK(jstr(&r, "NextShardIterator") && strcmp(jstr(&r, "NextShardIterator"), it2) != 0);
    reply_free(&r);
    /* Even within one millisecond, at the same position, each call gets its own iterator. */
    PIN(cp_clock_now_ms()); /* (without the seam: usually the same millisecond anyway) */
    reply a = get_records(&e, it2, 0), b2 = get_records(&e, it2, 0);
    PIN(0);
    CPT_CHECK(jstr(&a, "NextShardIterator") && jstr(&b2, "NextShardIterator"));
    CPT_CHECK(strcmp(jstr(&a, "NextShardIterator"), jstr(&b2, "NextShardIterator")) != 0);
    reply_free(&a);
    reply_free(&b2);
    /* The old iterator still reads from its own position. */
    r = get_records(&e, it, 1);
    CPT_EQ_INT(jsize(&r, "Records"), 1);
    expect_data(&r, 0, "first");
    reply_free(&r);
    free(it);
    free(it2);
    free(s1);
    free(s4);
    env_close(&e);
}

static void get_records_limit_and_behind(void)
{
    NEEDS_CLOCK_SEAM();
    env e;
    env_open(&e);
    create(&e, "s", 1);
    int64_t t0 = cp_clock_now_ms();
    for (int i = 0; i < 5; i++) {
        PIN(t0 + i * 1000);
        char d[8];
        snprintf(d, sizeof(d), "r%d", i);
        free(put(&e, "s", "k", d, NULL));
    }
    PIN(t0 + 5000);
    char *it = iterator(&e, "s", "shardId-000000000000", "TRIM_HORIZON", NULL);
    reply r = get_records(&e, it, 2);
    OK_CALL(r);
    CPT_EQ_INT(jsize(&r, "Records"), 2);
    expect_data(&r, 0, "r0");
    expect_data(&r, 1, "r1");
    /* The newest record arrived 3 s after the last one returned. */
    CPT_EQ_INT(jnum(&r, "MillisBehindLatest"), 3000);
    char *next = strdup(jstr(&r, "NextShardIterator"));
    reply_free(&r);
    r = get_records(&e, next, 0);
    CPT_EQ_INT(jsize(&r, "Records"), 3);
    expect_data(&r, 0, "r2");
    expect_data(&r, 2, "r4");
    CPT_EQ_INT(jnum(&r, "MillisBehindLatest"), 0);
    reply_free(&r);
    EXPECT_ERR(get_records(&e, next, 10001), 400, "ValidationException",
               "1 validation error detected: Value '10001' at 'limit' failed to satisfy "
               "constraint: Member must have value less than or equal to 10000");
    EXPECT_ERR(call(&e, "GetRecords", "{}"), 400, "ValidationException",
               "1 validation error detected: Value null at 'shardIterator' failed to satisfy "
               "constraint: Member must not be null");
    PIN(0);
    free(it);
    free(next);
    env_close(&e);
}

static void iterator_types(void)
{
    NEEDS_CLOCK_SEAM();
    env e;
    env_open(&e);
    create(&e, "s", 2);
    int64_t t0 = cp_clock_now_ms() - 10000;
    const char *sh0 = "shardId-000000000000";
    char *seq[3];
    for (int i = 0; i < 3; i++) {
        PIN(t0 + i * 1000);
        char d[8];
        snprintf(d, sizeof(d), "r%d", i);
        /* ExplicitHashKey 0 pins every record to shard 0. */
        char *b = b64(d, strlen(d));
        reply r = callf(&e, "PutRecord",
                        "{\"StreamName\":\"s\",\"PartitionKey\":\"k\",\"ExplicitHashKey\":\"0\","
                        "\"Data\":\"%s\"}",
                        b);
        free(b);
        OK_CALL(r);
        seq[i] = strdup(jstr(&r, "SequenceNumber"));
        reply_free(&r);
    }
    PIN(0);

    char extra[256];
    snprintf(extra, sizeof(extra), ",\"StartingSequenceNumber\":\"%s\"", seq[1]);
    char *it = iterator(&e, "s", sh0, "AT_SEQUENCE_NUMBER", extra);
    reply r = get_records(&e, it, 0);
    CPT_EQ_INT(jsize(&r, "Records"), 2);
    expect_data(&r, 0, "r1");
    reply_free(&r);
    free(it);

    it = iterator(&e, "s", sh0, "AFTER_SEQUENCE_NUMBER", extra);
    r = get_records(&e, it, 0);
    CPT_EQ_INT(jsize(&r, "Records"), 1);
    expect_data(&r, 0, "r2");
    reply_free(&r);
    free(it);

    /* AT_TIMESTAMP: epoch seconds with a fraction; the first record at or after it. */
    snprintf(extra, sizeof(extra), ",\"Timestamp\":%lld.%03lld", (long long) ((t0 + 500) / 1000),
             (long long) ((t0 + 500) % 1000));
    it = iterator(&e, "s", sh0, "AT_TIMESTAMP", extra);
    r = get_records(&e, it, 0);
    CPT_EQ_INT(jsize(&r, "Records"), 2);
    expect_data(&r, 0, "r1");
    reply_free(&r);
    free(it);

    /* LATEST sees only later records. */
    it = iterator(&e, "s", sh0, "LATEST", NULL);
    r = get_records(&e, it, 0);
    CPT_EQ_INT(jsize(&r, "Records"), 0);
    char *next = strdup(jstr(&r, "NextShardIterator"));
    reply_free(&r);
    reply p = call(&e, "PutRecord",
                   "{\"StreamName\":\"s\",\"PartitionKey\":\"k\","
                   "\"ExplicitHashKey\":\"0\",\"Data\":\"bmV3\"}");
    OK_CALL(p);
    reply_free(&p);
    r = get_records(&e, next, 0);
    CPT_EQ_INT(jsize(&r, "Records"), 1);
    expect_data(&r, 0, "new");
    reply_free(&r);
    free(it);
    free(next);

    /* The shard's StartingSequenceNumber is accepted before any record exists (shard 1). */
    r = call(&e, "DescribeStream", "{\"StreamName\":\"s\"}");
    snprintf(extra, sizeof(extra), ",\"StartingSequenceNumber\":\"%s\"",
             jstr(&r, "StreamDescription.Shards.1.SequenceNumberRange.StartingSequenceNumber"));
    reply_free(&r);
    free(iterator(&e, "s", "shardId-000000000001", "AFTER_SEQUENCE_NUMBER", extra));

    /* Errors, in AWS's words. */
    EXPECT_ERR(callf(&e, "GetShardIterator",
                     "{\"StreamName\":\"s\",\"ShardId\":\"%s\","
                     "\"ShardIteratorType\":\"AT_SEQUENCE_NUMBER\"}",
                     sh0),
               400, "InvalidArgumentException",
               "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and "
               "StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no "
               "StartingSequenceNumber. Request specified AT_SEQUENCE_NUMBER and no "
               "StartingSequenceNumber.");
    EXPECT_ERR(callf(&e, "GetShardIterator",
                     "{\"StreamName\":\"s\",\"ShardId\":\"%s\","
                     "\"ShardIteratorType\":\"TRIM_HORIZON\","
                     "\"StartingSequenceNumber\":\"%s\"}",
                     sh0, seq[0]),
               400, "InvalidArgumentException",
               "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and "
               "StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no "
               "StartingSequenceNumber. Request specified TRIM_HORIZON and also a "
               "StartingSequenceNumber.");
    EXPECT_ERR(callf(&e, "GetShardIterator",
                     "{\"StreamName\":\"s\",\"ShardId\":\"%s\","
                     "\"ShardIteratorType\":\"AT_TIMESTAMP\"}",
                     sh0),
               400, "InvalidArgumentException",
               "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. "
               "Current request has no timestamp parameter.");
    EXPECT_ERR(callf(&e, "GetShardIterator",
                     "{\"StreamName\":\"s\",\"ShardId\":"
                     "\"shardId-000000000001\",\"ShardIteratorType\":"
                     "\"AT_SEQUENCE_NUMBER\",\"StartingSequenceNumber\":"
                     "\"%s\"}",
                     seq[0]),
               400, "InvalidArgumentException",
               "Invalid StartingSequenceNumber. It encodes shardId-000000000000, while it was "
               "used in a call to a shard with shardId-000000000001");
    EXPECT_ERR(callf(&e, "GetShardIterator",
                     "{\"StreamName\":\"s\",\"ShardId\":\"%s\","
                     "\"ShardIteratorType\":\"AT_SEQUENCE_NUMBER\","
                     "\"StartingSequenceNumber\":\"12345\"}",
                     sh0),
               400, "InvalidArgumentException",
               "StartingSequenceNumber 12345 used in GetShardIterator on shard "
               "shardId-000000000000 in stream s under account 000000000000 is invalid.");
    EXPECT_ERR(callf(&e, "GetShardIterator",
                     "{\"StreamName\":\"s\",\"ShardId\":\"%s\","
                     "\"ShardIteratorType\":\"AT_SEQUENCE_NUMBER\","
                     "\"StartingSequenceNumber\":\"01\"}",
                     sh0),
               400, "ValidationException",
               "1 validation error detected: Value '01' at 'startingSequenceNumber' failed to "
               "satisfy constraint: Member must satisfy regular expression pattern: "
               "0|([1-9]\\d{0,128})");
    EXPECT_ERR(call(&e, "GetShardIterator",
                    "{\"StreamName\":\"s\",\"ShardId\":"
                    "\"shardId-000000000009\",\"ShardIteratorType\":"
                    "\"LATEST\"}"),
               400, "ResourceNotFoundException",
               "Shard shardId-000000000009 in stream s under account 000000000000 does not exist");
    EXPECT_ERR(call(&e, "GetShardIterator",
                    "{\"StreamName\":\"s\",\"ShardId\":\"shard7\","
                    "\"ShardIteratorType\":\"LATEST\"}"),
               400, "ResourceNotFoundException",
               "Could not find shard shard7 in stream s under account 000000000000.");
    EXPECT_ERR(
        call(&e, "GetShardIterator", "{\"StreamName\":\"s\",\"ShardIteratorType\":\"NEXT\"}"), 400,
        "ValidationException",
        "2 validation errors detected: Value null at 'shardId' failed to satisfy "
        "constraint: Member must not be null; Value 'NEXT' at 'shardIteratorType' failed "
        "to satisfy constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, "
        "AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]");
    for (int i = 0; i < 3; i++) {
        free(seq[i]);
    }
    env_close(&e);
}

static void java_date(int64_t ms, char out[48])
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 48, "%a %b %d %H:%M:%S UTC %Y", &tm);
}

static void iterators_expire_and_resist_tampering(void)
{
    NEEDS_CLOCK_SEAM();
    env e;
    env_open(&e);
    create(&e, "s", 1);
    free(put(&e, "s", "k", "x", NULL));
    int64_t t0 = cp_clock_now_ms();
    PIN(t0);
    char *it = iterator(&e, "s", "shardId-000000000000", "TRIM_HORIZON", NULL);
    /* Exactly 5 minutes old: still good. */
    PIN(t0 + 300000);
    reply r = get_records(&e, it, 0);
    OK_CALL(r);
    CPT_EQ_INT(jsize(&r, "Records"), 1);
    reply_free(&r);
    PIN(t0 + 300001);
    char a[48], b[48], want[512];
    java_date(t0, a);
    java_date(t0 + 300001, b);
    snprintf(want, sizeof(want),
             "Iterator expired. The iterator was created at time %s while right now it is %s "
             "which is further in the future than the tolerated delay of 300000 milliseconds.",
             a, b);
    EXPECT_ERR(get_records(&e, it, 0), 400, "ExpiredIteratorException", want);
    PIN(0);

    /* Tampering: every single-character change is refused. */
    char *fresh = iterator(&e, "s", "shardId-000000000000", "TRIM_HORIZON", NULL);
    size_t n = strlen(fresh);
    for (size_t i = 0; i < n; i += 7) {
        char *bad = strdup(fresh);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        reply t = get_records(&e, bad, 0);
        if (t.status != 400 || (strcmp(t.type, "InvalidArgumentException") != 0 &&
                                strcmp(t.type, "ExpiredIteratorException") != 0)) {
            CPT_FAIL_AT("tampered at %zu accepted: %d %s", i, t.status, t.body);
        }
        /* Only the epoch bytes (which name the key) may turn it into "expired". */
        if (strcmp(t.type, "ExpiredIteratorException") == 0) {
            CPT_CHECK(i >= 2 && i < 16);
        }
        reply_free(&t);
        free(bad);
    }
    EXPECT_ERR(get_records(&e, "AAAA", 0), 400, "InvalidArgumentException",
               "Invalid ShardIterator.");
    EXPECT_ERR(get_records(&e, "not base64!", 0), 400, "InvalidArgumentException",
               "Invalid ShardIterator.");
    char longit[600];
    memset(longit, 'A', 513);
    longit[513] = 0;
    reply lr = get_records(&e, longit, 0);
    CPT_EQ_INT(lr.status, 400);
    CPT_EQ_STR(lr.type, "ValidationException");
    CPT_CHECK(strstr(lr.msg, "at 'shardIterator' failed to satisfy constraint: Member must have "
                             "length less than or equal to 512") != NULL);
    reply_free(&lr);
    /* An ARN naming another stream than the iterator's. */
    reply o = callf(&e, "GetRecords",
                    "{\"ShardIterator\":\"%s\",\"StreamARN\":"
                    "\"arn:aws:kinesis:us-east-1:000000000000:stream/other\"}",
                    fresh);
    EXPECT_ERR(o, 400, "InvalidArgumentException", "Invalid ShardIterator.");
    r = callf(&e, "GetRecords",
              "{\"ShardIterator\":\"%s\",\"StreamARN\":"
              "\"arn:aws:kinesis:us-east-1:000000000000:stream/s\"}",
              fresh);
    OK_CALL(r);
    reply_free(&r);

    /* An iterator from another process (another random key) reads as expired; a configured
     * key makes iterators survive a restart. */
    cp_kinesis_api *other = cp_kinesis_api_new(e.s, NULL);
    cp_aws_router *r2 = cp_aws_router_new(NULL);
    CPT_EQ_INT(cp_kinesis_api_register(other, r2), CP_OK);
    env e2 = {e.s, other, r2};
    EXPECT_ERR(get_records(&e2, fresh, 0), 400, "ExpiredIteratorException", NULL);
    cp_aws_router_free(r2);
    cp_kinesis_api_free(other);

    static const unsigned char key[] = "configured key";
    cp_kinesis_api_cfg cfg = {.token_key = key, .token_key_len = sizeof(key) - 1};
    cp_kinesis_api *k1 = cp_kinesis_api_new(e.s, &cfg), *k2 = cp_kinesis_api_new(e.s, &cfg);
    cp_aws_router *ra = cp_aws_router_new(NULL), *rb = cp_aws_router_new(NULL);
    cp_kinesis_api_register(k1, ra);
    cp_kinesis_api_register(k2, rb);
    env ea = {e.s, k1, ra}, eb = {e.s, k2, rb};
    char *kit = iterator(&ea, "s", "shardId-000000000000", "TRIM_HORIZON", NULL);
    r = get_records(&eb, kit, 0);
    OK_CALL(r);
    CPT_EQ_INT(jsize(&r, "Records"), 1);
    reply_free(&r);
    EXPECT_ERR(get_records(&e, kit, 0), 400, "ExpiredIteratorException", NULL);
    free(kit);
    cp_aws_router_free(ra);
    cp_aws_router_free(rb);
    cp_kinesis_api_free(k1);
    cp_kinesis_api_free(k2);
    free(fresh);
    free(it);
    env_close(&e);
}

/* A limiter that refuses everything on one shard and records what it was asked. */
typedef struct refuse_shard {
    uint32_t shard;
    int puts, reads, iters;
    size_t charged_bytes, charged_records;
    int saw_pk;
} refuse_shard;

static int refuse_admit(void *ctx, const cp_kinesis_usage *u)
{
    refuse_shard *rs = ctx;
    CPT_CHECK(cp_slice_eq(u->stream, CP_SLICE("t")));
    CPT_EQ_INT(u->mode, CP_STREAM_PROVISIONED);
    switch (u->op) {
    case CP_KINESIS_USAGE_PUT:
        rs->puts++;
        CPT_EQ_INT(u->records, 1);
        rs->saw_pk |= cp_slice_eq(u->partition_key, CP_SLICE("hot"));
        CPT_EQ_INT(u->bytes, u->partition_key.len + 4);
        break;
    case CP_KINESIS_USAGE_GET_RECORDS:
        rs->reads++;
        break;
    case CP_KINESIS_USAGE_GET_ITERATOR:
        rs->iters++;
        break;
    }
    return u->shard == rs->shard;
}

static void refuse_charge(void *ctx, const cp_kinesis_usage *u)
{
    refuse_shard *rs = ctx;
    CPT_EQ_INT(u->op, CP_KINESIS_USAGE_GET_RECORDS);
    rs->charged_bytes += u->bytes;
    rs->charged_records += u->records;
}

static void put_records_throttled_per_record(void)
{
    refuse_shard rs = {.shard = 1};
    cp_kinesis_limiter lim = {&rs, refuse_admit, refuse_charge};
    cp_kinesis_api_cfg cfg = {.limiter = &lim};
    env e;
    env_open_with(&e, &cfg, NULL);
    create(&e, "t", 2);
    /* "0" routes to shard 0, 2^128-1 to shard 1 (refused), "hot" by MD5. */
    reply r = call(&e, "PutRecords",
                   "{\"StreamName\":\"t\",\"Records\":["
                   "{\"Data\":\"YWFhYQ==\",\"PartitionKey\":\"a\",\"ExplicitHashKey\":\"0\"},"
                   "{\"Data\":\"YmJiYg==\",\"PartitionKey\":\"b\",\"ExplicitHashKey\":"
                   "\"340282366920938463463374607431768211455\"},"
                   "{\"Data\":\"Y2NjYw==\",\"PartitionKey\":\"hot\",\"ExplicitHashKey\":\"1\"}]}");
    OK_CALL(r);
    CPT_EQ_INT(jnum(&r, "FailedRecordCount"), 1);
    CPT_EQ_INT(jsize(&r, "Records"), 3);
    CPT_CHECK(jstr(&r, "Records.0.SequenceNumber") != NULL);
    CPT_EQ_STR(jstr(&r, "Records.1.ErrorCode"), "ProvisionedThroughputExceededException");
    CPT_EQ_STR(jstr(&r, "Records.1.ErrorMessage"),
               "Rate exceeded for shard shardId-000000000001 in stream t under account "
               "000000000000.");
    CPT_CHECK(!jget(&r, "Records.1.SequenceNumber"));
    CPT_EQ_STR(jstr(&r, "Records.2.ShardId"), "shardId-000000000000");
    reply_free(&r);
    CPT_EQ_INT(rs.puts, 3);
    CPT_CHECK(rs.saw_pk);

    /* PutRecord to the refused shard fails the call. */
    EXPECT_ERR(call(&e, "PutRecord",
                    "{\"StreamName\":\"t\",\"PartitionKey\":\"b\",\"Data\":"
                    "\"YmJiYg==\",\"ExplicitHashKey\":"
                    "\"340282366920938463463374607431768211455\"}"),
               400, "ProvisionedThroughputExceededException",
               "Rate exceeded for shard shardId-000000000001 in stream t under account "
               "000000000000.");
    /* Reads: shard 1 refused, shard 0 admitted and charged with what it returned. */
    EXPECT_ERR(call(&e, "GetShardIterator",
                    "{\"StreamName\":\"t\",\"ShardId\":"
                    "\"shardId-000000000001\",\"ShardIteratorType\":"
                    "\"LATEST\"}"),
               400, "ProvisionedThroughputExceededException", NULL);
    char *it = iterator(&e, "t", "shardId-000000000000", "TRIM_HORIZON", NULL);
    r = get_records(&e, it, 0);
    OK_CALL(r);
    CPT_EQ_INT(jsize(&r, "Records"), 2); /* the refused record never went in */
    expect_data(&r, 0, "aaaa");
    expect_data(&r, 1, "cccc");
    reply_free(&r);
    CPT_EQ_INT(rs.charged_records, 2);
    CPT_EQ_INT(rs.charged_bytes, 1 + 4 + 3 + 4);
    CPT_EQ_INT(rs.iters, 2);
    CPT_EQ_INT(rs.reads, 1);
    /* Everything refused: nothing goes in, every record reports the throttle. */
    rs.shard = 0;
    r = call(&e, "PutRecords",
             "{\"StreamName\":\"t\",\"Records\":[{\"Data\":\"YWFhYQ==\","
             "\"PartitionKey\":\"a\",\"ExplicitHashKey\":\"5\"}]}");
    OK_CALL(r);
    CPT_EQ_INT(jnum(&r, "FailedRecordCount"), 1);
    reply_free(&r);
    free(it);
    env_close(&e);
}

/* A backend whose appends to shard 1 fail: PutRecords' InternalFailure per record. */
static cp_stream_backend_ops g_failing;

static int failing_append(void *ctx, uint32_t shard, const cp_stream_rec *recs, size_t n,
                          int64_t now_ms, uint64_t *seqs, int64_t *stamped_ms, cp_err *err)
{
    if (shard == 1) {
        return cp_err_set(err, CP_EIO, "injected append failure");
    }
    return cp_stream_backend_embedded.append(ctx, shard, recs, n, now_ms, seqs, stamped_ms, err);
}

static void put_records_internal_failure(void)
{
    g_failing = cp_stream_backend_embedded;
    g_failing.append = failing_append;
    env e;
    env_open_with(&e, NULL, &g_failing);
    create(&e, "s", 2);
    reply r = call(&e, "PutRecords",
                   "{\"StreamName\":\"s\",\"Records\":["
                   "{\"Data\":\"YQ==\",\"PartitionKey\":\"a\",\"ExplicitHashKey\":"
                   "\"340282366920938463463374607431768211455\"},"
                   "{\"Data\":\"Yg==\",\"PartitionKey\":\"b\",\"ExplicitHashKey\":\"0\"}]}");
    OK_CALL(r);
    CPT_EQ_INT(jnum(&r, "FailedRecordCount"), 1);
    CPT_EQ_STR(jstr(&r, "Records.0.ErrorCode"), "InternalFailure");
    CPT_EQ_STR(jstr(&r, "Records.0.ErrorMessage"), "Internal service failure.");
    CPT_EQ_STR(jstr(&r, "Records.1.ShardId"), "shardId-000000000000");
    reply_free(&r);
    /* PutRecord to the failing shard: a 500 with no detail leaked. */
    EXPECT_ERR(call(&e, "PutRecord",
                    "{\"StreamName\":\"s\",\"PartitionKey\":\"a\",\"Data\":\"\","
                    "\"ExplicitHashKey\":\"340282366920938463463374607431768211455\"}"),
               500, "InternalFailureException", "Internal service failure.");
    env_close(&e);
}

static void size_limits(void)
{
    env e;
    env_open(&e);
    create(&e, "s", 1);
    /* Data over 1 MiB: a shape error with the Java rendering of the blob. */
    size_t big = (1u << 20) + 1;
    char *raw = malloc(big);
    memset(raw, 'x', big);
    char *d = b64(raw, big);
    reply r =
        callf(&e, "PutRecord", "{\"StreamName\":\"s\",\"PartitionKey\":\"k\",\"Data\":\"%s\"}", d);
    EXPECT_ERR(r, 400, "ValidationException",
               "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1048577 "
               "cap=1048577]' at 'data' failed to satisfy constraint: Member must have length "
               "less than or equal to 1048576");
    free(d);
    /* Exactly 1 MiB of data plus a key: over the per-record limit, which counts the key. */
    d = b64(raw, big - 1);
    r = callf(&e, "PutRecord", "{\"StreamName\":\"s\",\"PartitionKey\":\"k\",\"Data\":\"%s\"}", d);
    CPT_EQ_INT(r.status, 400);
    CPT_EQ_STR(r.type, "InvalidArgumentException");
    reply_free(&r);
    free(d);
    /* 1 MiB minus the key is fine. */
    d = b64(raw, big - 2);
    r = callf(&e, "PutRecord", "{\"StreamName\":\"s\",\"PartitionKey\":\"k\",\"Data\":\"%s\"}", d);
    OK_CALL(r);
    reply_free(&r);
    free(d);

    /* More than 5 MiB in one PutRecords (while the body stays under the 7 MiB cap). */
    size_t each = 874000;
    d = b64(raw, each);
    cp_buf body = CP_BUF_INIT;
    cp_buf_puts(&body, "{\"StreamName\":\"s\",\"Records\":[");
    for (int i = 0; i < 6; i++) {
        cp_buf_printf(&body, "%s{\"PartitionKey\":\"k\",\"Data\":\"%s\"}", i ? "," : "", d);
    }
    cp_buf_puts(&body, "]}");
    EXPECT_ERR(call_n(&e, "PutRecords", body.p, body.len), 400, "InvalidArgumentException",
               "Records size exceeds 5 MB limit");
    /* Five of them (4.2 MiB) go in. */
    cp_buf_reset(&body);
    cp_buf_puts(&body, "{\"StreamName\":\"s\",\"Records\":[");
    for (int i = 0; i < 5; i++) {
        cp_buf_printf(&body, "%s{\"PartitionKey\":\"k\",\"Data\":\"%s\"}", i ? "," : "", d);
    }
    cp_buf_puts(&body, "]}");
    r = call_n(&e, "PutRecords", body.p, body.len);
    OK_CALL(r);
    CPT_EQ_INT(jnum(&r, "FailedRecordCount"), 0);
    reply_free(&r);
    free(d);
    free(raw);

    /* 501 records. */
    cp_buf_reset(&body);
    cp_buf_puts(&body, "{\"StreamName\":\"s\",\"Records\":[");
    for (int i = 0; i < 501; i++) {
        cp_buf_printf(&body, "%s{\"PartitionKey\":\"k\",\"Data\":\"\"}", i ? "," : "");
    }
    cp_buf_puts(&body, "]}");
    EXPECT_ERR(call_n(&e, "PutRecords", body.p, body.len), 400, "ValidationException",
               "1 validation error detected: Value at 'records' failed to satisfy constraint: "
               "Member must have length less than or equal to 500");
    /* ...but a type error anywhere still wins over the count. */
    body.len -= 2;
    cp_buf_puts(&body, ",{\"Data\":true}]}");
    EXPECT_ERR(call_n(&e, "PutRecords", body.p, body.len), 400, "SerializationException",
               "class java.lang.Boolean can not be converted to a Blob");
    cp_buf_free(&body);
    EXPECT_ERR(call(&e, "PutRecords", "{\"StreamName\":\"s\",\"Records\":[]}"), 400,
               "ValidationException",
               "1 validation error detected: Value '[]' at 'records' failed to satisfy "
               "constraint: Member must have length greater than or equal to 1");
    EXPECT_ERR(call(&e, "PutRecords", "{\"StreamName\":\"s\"}"), 400, "ValidationException",
               "1 validation error detected: Value null at 'records' failed to satisfy "
               "constraint: Member must not be null");

    /* Partition keys: 1..256 characters (UTF-16 units, as Java counts). */
    char pk[300];
    memset(pk, 'p', 257);
    pk[257] = 0;
    char want[800];
    snprintf(want, sizeof(want),
             "1 validation error detected: Value '%s' at 'records.1.member.partitionKey' failed "
             "to satisfy constraint: Member must have length less than or equal to 256",
             pk);
    EXPECT_ERR(callf(&e, "PutRecords",
                     "{\"StreamName\":\"s\",\"Records\":[{\"PartitionKey\":"
                     "\"%s\",\"Data\":\"\"}]}",
                     pk),
               400, "ValidationException", want);
    pk[256] = 0;
    r = callf(&e, "PutRecord", "{\"StreamName\":\"s\",\"PartitionKey\":\"%s\",\"Data\":\"\"}", pk);
    OK_CALL(r);
    reply_free(&r);
    EXPECT_ERR(call(&e, "PutRecord", "{\"StreamName\":\"s\",\"PartitionKey\":\"\",\"Data\":\"\"}"),
               400, "ValidationException",
               "1 validation error detected: Value '' at 'partitionKey' failed to satisfy "
               "constraint: Member must have length greater than or equal to 1");
    EXPECT_ERR(call(&e, "PutRecord", "{\"StreamName\":\"s\"}"), 400, "ValidationException",
               "2 validation errors detected: Value null at 'partitionKey' failed to satisfy "
               "constraint: Member must not be null; Value null at 'data' failed to satisfy "
               "constraint: Member must not be null");
    EXPECT_ERR(call(&e, "PutRecord",
                    "{\"StreamName\":\"s\",\"PartitionKey\":\"k\",\"Data\":\"\","
                    "\"ExplicitHashKey\":\"-1\",\"SequenceNumberForOrdering\":\"x\"}"),
               400, "ValidationException",
               "2 validation errors detected: Value 'x' at 'sequenceNumberForOrdering' failed to "
               "satisfy constraint: Member must satisfy regular expression pattern: "
               "0|([1-9]\\d{0,128}); Value '-1' at 'explicitHashKey' failed to satisfy "
               "constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})");
    EXPECT_ERR(call(&e, "PutRecord",
                    "{\"StreamName\":\"s\",\"PartitionKey\":\"k\",\"Data\":\"\","
                    "\"ExplicitHashKey\":\"340282366920938463463374607431768211456\"}"),
               400, "InvalidArgumentException",
               "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. "
               "Specified value was 340282366920938463463374607431768211456.");
    /* SequenceNumberForOrdering is accepted and the order holds. */
    r = call(&e, "PutRecord",
             "{\"StreamName\":\"s\",\"PartitionKey\":\"k\",\"Data\":\"\","
             "\"SequenceNumberForOrdering\":\"1\"}");
    OK_CALL(r);
    reply_free(&r);
    env_close(&e);
}

static void describe_and_list_shards_pagination(void)
{
    env e;
    env_open(&e);
    create(&e, "s", 5);
    reply r = call(&e, "DescribeStream", "{\"StreamName\":\"s\",\"Limit\":2}");
    OK_CALL(r);
    CPT_EQ_INT(jsize(&r, "StreamDescription.Shards"), 2);
    CPT_CHECK(jtrue(&r, "StreamDescription.HasMoreShards"));
    CPT_EQ_STR(jstr(&r, "StreamDescription.Shards.1.ShardId"), "shardId-000000000001");
    reply_free(&r);
    /* The CLI paginates with the last shard id. */
    r = call(
        &e, "DescribeStream",
        "{\"StreamName\":\"s\",\"Limit\":2,\"ExclusiveStartShardId\":\"shardId-000000000001\"}");
    CPT_EQ_INT(jsize(&r, "StreamDescription.Shards"), 2);
    CPT_EQ_STR(jstr(&r, "StreamDescription.Shards.0.ShardId"), "shardId-000000000002");
    CPT_CHECK(jtrue(&r, "StreamDescription.HasMoreShards"));
    reply_free(&r);
    r = call(
        &e, "DescribeStream",
        "{\"StreamName\":\"s\",\"Limit\":2,\"ExclusiveStartShardId\":\"shardId-000000000003\"}");
    CPT_EQ_INT(jsize(&r, "StreamDescription.Shards"), 1);
    CPT_CHECK(!jtrue(&r, "StreamDescription.HasMoreShards"));
    reply_free(&r);

    /* ListShards: NextToken pages, with StreamName resent as the CLI does. */
    r = call(&e, "ListShards", "{\"StreamName\":\"s\",\"MaxResults\":2}");
    OK_CALL(r);
    CPT_EQ_INT(jsize(&r, "Shards"), 2);
    int total = 2;
    char *tok = strdup(jstr(&r, "NextToken"));
    reply_free(&r);
    while (tok) {
        r = callf(&e, "ListShards", "{\"StreamName\":\"s\",\"MaxResults\":2,\"NextToken\":\"%s\"}",
                  tok);
        OK_CALL(r);
        char path[32];
        snprintf(path, sizeof(path), "Shards.0.ShardId");
        char want[32];
        snprintf(want, sizeof(want), "shardId-%012d", total);
        CPT_EQ_STR(jstr(&r, path), want);
        total += jsize(&r, "Shards");
        free(tok);
        tok = jstr(&r, "NextToken") ? strdup(jstr(&r, "NextToken")) : NULL;
        reply_free(&r);
    }
    CPT_EQ_INT(total, 5);
    r = call(&e, "ListShards",
             "{\"StreamName\":\"s\",\"ExclusiveStartShardId\":\"shardId-000000000003\"}");
    CPT_EQ_INT(jsize(&r, "Shards"), 1);
    CPT_CHECK(!jget(&r, "NextToken"));
    reply_free(&r);
    r = call(&e, "ListShards",
             "{\"StreamName\":\"s\",\"ShardFilter\":{\"Type\":\"AFTER_SHARD_ID\","
             "\"ShardId\":\"shardId-000000000000\"}}");
    CPT_EQ_INT(jsize(&r, "Shards"), 4);
    reply_free(&r);
    EXPECT_ERR(call(&e, "ListShards",
                    "{\"StreamName\":\"s\",\"ShardFilter\":{\"Type\":\"AFTER_SHARD_ID\"}}"),
               400, "InvalidArgumentException",
               "ShardId must be supplied in a ShardFilter with a Type of AFTER_SHARD_ID");
    EXPECT_ERR(call(&e, "ListShards",
                    "{\"StreamName\":\"s\",\"ShardFilter\":{\"Type\":\"AT_TIMESTAMP\"}}"),
               400, "InvalidArgumentException",
               "Timestamp must be supplied in a ShardFilter with a Type of FROM_TIMESTAMP or "
               "AT_TIMESTAMP");
    EXPECT_ERR(call(&e, "ListShards", "{\"StreamName\":\"s\",\"ShardFilter\":{\"Type\":\"SOME\"}}"),
               400, "ValidationException",
               "1 validation error detected: Value 'SOME' at 'shardFilter.type' failed to satisfy "
               "constraint: Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, "
               "FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]");
    r = call(&e, "ListShards",
             "{\"StreamName\":\"s\",\"ShardFilter\":{\"Type\":\"FROM_TIMESTAMP\","
             "\"Timestamp\":1.5}}");
    CPT_EQ_INT(jsize(&r, "Shards"), 5);
    reply_free(&r);

    /* Tokens: tampered, of the wrong kind, expired. */
    r = call(&e, "ListShards", "{\"StreamName\":\"s\",\"MaxResults\":1}");
    char *t1 = strdup(jstr(&r, "NextToken"));
    reply_free(&r);
    char *bad = strdup(t1);
    bad[20] = bad[20] == 'A' ? 'B' : 'A';
    EXPECT_ERR(callf(&e, "ListShards", "{\"NextToken\":\"%s\"}", bad), 400,
               "InvalidArgumentException", "Invalid NextToken.");
    char *it = iterator(&e, "s", "shardId-000000000000", "LATEST", NULL);
    EXPECT_ERR(callf(&e, "ListShards", "{\"NextToken\":\"%s\"}", it), 400,
               "InvalidArgumentException", "Invalid NextToken.");
    EXPECT_ERR(callf(&e, "GetRecords", "{\"ShardIterator\":\"%s\"}", t1), 400,
               "InvalidArgumentException", "Invalid ShardIterator.");
    if (HAVE_CLOCK_SEAM) {
        PIN(cp_clock_now_ms() + 300001);
        EXPECT_ERR(callf(&e, "ListShards", "{\"NextToken\":\"%s\"}", t1), 400,
                   "ExpiredNextTokenException", NULL);
        PIN(0);
    }
    r = callf(&e, "ListShards", "{\"NextToken\":\"%s\"}", t1);
    OK_CALL(r);
    CPT_EQ_INT(jsize(&r, "Shards"), 4);
    reply_free(&r);
    free(it);
    free(bad);
    free(t1);
    env_close(&e);
}

static void list_streams_pagination(void)
{
    env e;
    env_open(&e);
    const char *names[] = {"e", "a", "d", "b", "c"};
    for (int i = 0; i < 5; i++) {
        create(&e, names[i], 1);
    }
    reply r = call(&e, "ListStreams", "{\"Limit\":2}");
    OK_CALL(r);
    CPT_EQ_INT(jsize(&r, "StreamNames"), 2);
    CPT_EQ_STR(jstr(&r, "StreamNames.0"), "a");
    CPT_EQ_STR(jstr(&r, "StreamNames.1"), "b");
    CPT_CHECK(jtrue(&r, "HasMoreStreams"));
    CPT_EQ_INT(jsize(&r, "StreamSummaries"), 2);
    CPT_EQ_STR(jstr(&r, "StreamSummaries.1.StreamARN"),
               "arn:aws:kinesis:us-east-1:000000000000:stream/b");
    CPT_CHECK(jnum(&r, "StreamSummaries.0.StreamCreationTimestamp") > 1e9);
    char *tok = strdup(jstr(&r, "NextToken"));
    reply_free(&r);
    r = callf(&e, "ListStreams", "{\"Limit\":2,\"NextToken\":\"%s\"}", tok);
    CPT_EQ_STR(jstr(&r, "StreamNames.0"), "c");
    CPT_EQ_STR(jstr(&r, "StreamNames.1"), "d");
    CPT_CHECK(jtrue(&r, "HasMoreStreams"));
    free(tok);
    tok = strdup(jstr(&r, "NextToken"));
    reply_free(&r);
    r = callf(&e, "ListStreams", "{\"Limit\":2,\"NextToken\":\"%s\"}", tok);
    CPT_EQ_INT(jsize(&r, "StreamNames"), 1);
    CPT_EQ_STR(jstr(&r, "StreamNames.0"), "e");
    CPT_CHECK(!jtrue(&r, "HasMoreStreams"));
    CPT_CHECK(!jget(&r, "NextToken"));
    reply_free(&r);
    free(tok);
    r = call(&e, "ListStreams", "{\"ExclusiveStartStreamName\":\"c\"}");
    CPT_EQ_INT(jsize(&r, "StreamNames"), 2);
    CPT_EQ_STR(jstr(&r, "StreamNames.0"), "d");
    reply_free(&r);
    EXPECT_ERR(call(&e, "ListStreams", "{\"NextToken\":\"garbage\"}"), 400,
               "InvalidArgumentException", "Invalid NextToken.");
    env_close(&e);
}

static void resharding_and_child_shards(void)
{
    env e;
    env_open(&e);
    create(&e, "s", 1);
    free(put(&e, "s", "k", "before", NULL));
    char *it = iterator(&e, "s", "shardId-000000000000", "TRIM_HORIZON", NULL);
    reply r = call(&e, "UpdateShardCount",
                   "{\"StreamName\":\"s\",\"TargetShardCount\":2,"
                   "\"ScalingType\":\"UNIFORM_SCALING\"}");
    OK_CALL(r);
    CPT_EQ_STR(jstr(&r, "StreamName"), "s");
    CPT_EQ_INT(jnum(&r, "CurrentShardCount"), 1);
    CPT_EQ_INT(jnum(&r, "TargetShardCount"), 2);
    CPT_EQ_STR(jstr(&r, "StreamARN"), "arn:aws:kinesis:us-east-1:000000000000:stream/s");
    reply_free(&r);
    free(put(&e, "s", "k", "after", NULL));

    r = call(&e, "DescribeStream", "{\"StreamName\":\"s\"}");
    CPT_EQ_INT(jsize(&r, "StreamDescription.Shards"), 3);
    CPT_CHECK(jstr(&r, "StreamDescription.Shards.0.SequenceNumberRange.EndingSequenceNumber"));
    CPT_EQ_STR(jstr(&r, "StreamDescription.Shards.1.ParentShardId"), "shardId-000000000000");
    CPT_EQ_STR(jstr(&r, "StreamDescription.Shards.2.ParentShardId"), "shardId-000000000000");
    char c1_end[64];
    snprintf(c1_end, sizeof(c1_end), "%s",
             jstr(&r, "StreamDescription.Shards.1.HashKeyRange.EndingHashKey"));
    reply_free(&r);

    /* Reading the closed parent to its end: no NextShardIterator, ChildShards instead. */
    r = get_records(&e, it, 0);
    OK_CALL(r);
    CPT_EQ_INT(jsize(&r, "Records"), 1);
    expect_data(&r, 0, "before");
    CPT_CHECK(!jget(&r, "NextShardIterator"));
    CPT_EQ_INT(jsize(&r, "ChildShards"), 2);
    CPT_EQ_STR(jstr(&r, "ChildShards.0.ShardId"), "shardId-000000000001");
    CPT_EQ_STR(jstr(&r, "ChildShards.0.ParentShards.0"), "shardId-000000000000");
    CPT_EQ_STR(jstr(&r, "ChildShards.0.HashKeyRange.EndingHashKey"), c1_end);
    CPT_EQ_STR(jstr(&r, "ChildShards.1.HashKeyRange.EndingHashKey"),
               "340282366920938463463374607431768211455");
    reply_free(&r);

    /* ListShards AT_LATEST: the open children only. */
    r = call(&e, "ListShards", "{\"StreamName\":\"s\",\"ShardFilter\":{\"Type\":\"AT_LATEST\"}}");
    CPT_EQ_INT(jsize(&r, "Shards"), 2);
    CPT_EQ_STR(jstr(&r, "Shards.0.ShardId"), "shardId-000000000001");
    reply_free(&r);
    r = call(&e, "ListShards",
             "{\"StreamName\":\"s\",\"ShardFilter\":{\"Type\":\"AT_TRIM_HORIZON\"}}");
    CPT_EQ_INT(jsize(&r, "Shards"), 3);
    reply_free(&r);
    r = call(&e, "DescribeStreamSummary", "{\"StreamName\":\"s\"}");
    CPT_EQ_INT(jnum(&r, "StreamDescriptionSummary.OpenShardCount"), 2);
    reply_free(&r);
    /* Out of range: more than double. */
    r = call(&e, "UpdateShardCount",
             "{\"StreamName\":\"s\",\"TargetShardCount\":5,"
             "\"ScalingType\":\"UNIFORM_SCALING\"}");
    CPT_EQ_INT(r.status, 400);
    CPT_EQ_STR(r.type, "InvalidArgumentException");
    reply_free(&r);
    free(it);
    env_close(&e);
}

static void retention_periods(void)
{
    env e;
    env_open(&e);
    create(&e, "s", 1);
    ok(&e, "IncreaseStreamRetentionPeriod", "{\"StreamName\":\"s\",\"RetentionPeriodHours\":48}");
    reply r = call(&e, "DescribeStreamSummary", "{\"StreamName\":\"s\"}");
    CPT_EQ_INT(jnum(&r, "StreamDescriptionSummary.RetentionPeriodHours"), 48);
    reply_free(&r);
    EXPECT_ERR(call(&e, "IncreaseStreamRetentionPeriod",
                    "{\"StreamName\":\"s\",\"RetentionPeriodHours\":36}"),
               400, "InvalidArgumentException",
               "Requested retention period (36 hours) for stream s can not be shorter than "
               "existing retention period (48 hours). Use DecreaseRetentionPeriod API.");
    EXPECT_ERR(call(&e, "DecreaseStreamRetentionPeriod",
                    "{\"StreamName\":\"s\",\"RetentionPeriodHours\":12}"),
               400, "InvalidArgumentException",
               "Minimum allowed retention period is 24 hours. Requested retention period (12 "
               "hours) is too short.");
    EXPECT_ERR(call(&e, "IncreaseStreamRetentionPeriod",
                    "{\"StreamName\":\"s\",\"RetentionPeriodHours\":9000}"),
               400, "InvalidArgumentException",
               "Maximum allowed retention period is 8760 hours. Requested retention period (9000 "
               "hours) is too long.");
    ok(&e, "DecreaseStreamRetentionPeriod",
       "{\"StreamARN\":\"arn:aws:kinesis:us-east-1:"
       "000000000000:stream/s\",\"RetentionPeriodHours\":24}");
    r = call(&e, "DescribeStream", "{\"StreamName\":\"s\"}");
    CPT_EQ_INT(jnum(&r, "StreamDescription.RetentionPeriodHours"), 24);
    reply_free(&r);
    env_close(&e);
}

static void tags(void)
{
    env e;
    env_open(&e);
    ok(&e, "CreateStream", "{\"StreamName\":\"s\",\"ShardCount\":1,\"Tags\":{\"team\":\"data\"}}");
    ok(&e, "AddTagsToStream", "{\"StreamName\":\"s\",\"Tags\":{\"env\":\"dev\",\"cost\":\"\"}}");
    ok(&e, "AddTagsToStream", "{\"StreamName\":\"s\",\"Tags\":{\"env\":\"prod\"}}");
    reply r = call(&e, "ListTagsForStream", "{\"StreamName\":\"s\"}");
    OK_CALL(r);
    CPT_EQ_INT(jsize(&r, "Tags"), 3);
    CPT_EQ_STR(jstr(&r, "Tags.0.Key"), "cost");
    CPT_EQ_STR(jstr(&r, "Tags.0.Value"), "");
    CPT_EQ_STR(jstr(&r, "Tags.1.Key"), "env");
    CPT_EQ_STR(jstr(&r, "Tags.1.Value"), "prod");
    CPT_EQ_STR(jstr(&r, "Tags.2.Key"), "team");
    CPT_CHECK(!jtrue(&r, "HasMoreTags"));
    reply_free(&r);
    r = call(&e, "ListTagsForStream",
             "{\"StreamName\":\"s\",\"Limit\":1,\"ExclusiveStartTagKey\":\"cost\"}");
    CPT_EQ_INT(jsize(&r, "Tags"), 1);
    CPT_EQ_STR(jstr(&r, "Tags.0.Key"), "env");
    CPT_CHECK(jtrue(&r, "HasMoreTags"));
    reply_free(&r);
    ok(&e, "RemoveTagsFromStream", "{\"StreamName\":\"s\",\"TagKeys\":[\"env\",\"absent\"]}");
    r = call(&e, "ListTagsForStream",
             "{\"StreamARN\":\"arn:aws:kinesis:eu-west-1:000000000000:stream/s\"}");
    CPT_EQ_INT(jsize(&r, "Tags"), 2);
    reply_free(&r);
    /* 50 tags per stream at most. */
    cp_buf b = CP_BUF_INIT;
    cp_buf_puts(&b, "{\"StreamName\":\"s\",\"Tags\":{");
    for (int i = 0; i < 49; i++) {
        cp_buf_printf(&b, "%s\"k%02d\":\"v\"", i ? "," : "", i);
    }
    cp_buf_puts(&b, "}}");
    EXPECT_ERR(call(&e, "AddTagsToStream", b.p), 400, "InvalidArgumentException",
               "Failed to add tags to stream s under account 000000000000 because a given stream "
               "cannot have more than 50 tags associated with it.");
    cp_buf_free(&b);
    EXPECT_ERR(call(&e, "AddTagsToStream", "{\"StreamName\":\"s\",\"Tags\":{}}"), 400,
               "ValidationException",
               "1 validation error detected: Value '{}' at 'tags' failed to satisfy constraint: "
               "Member must have length greater than or equal to 1");
    EXPECT_ERR(call(&e, "RemoveTagsFromStream", "{\"StreamName\":\"s\"}"), 400,
               "ValidationException",
               "1 validation error detected: Value null at 'tagKeys' failed to satisfy "
               "constraint: Member must not be null");
    /* A recreated stream starts without tags. */
    ok(&e, "DeleteStream", "{\"StreamName\":\"s\"}");
    create(&e, "s", 1);
    r = call(&e, "ListTagsForStream", "{\"StreamName\":\"s\"}");
    CPT_EQ_INT(jsize(&r, "Tags"), 0);
    reply_free(&r);
    env_close(&e);
}

static void stream_arn_everywhere(void)
{
    env e;
    env_open(&e);
    create(&e, "s", 1);
    const char *arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
    reply r = callf(&e, "PutRecord",
                    "{\"StreamARN\":\"%s\",\"PartitionKey\":\"k\",\"Data\":\"eA==\"}", arn);
    OK_CALL(r);
    reply_free(&r);
    r = callf(&e, "PutRecords",
              "{\"StreamARN\":\"%s\",\"Records\":[{\"PartitionKey\":\"k\",\"Data\":\"eQ==\"}]}",
              arn);
    OK_CALL(r);
    reply_free(&r);
    r = callf(&e, "GetShardIterator",
              "{\"StreamARN\":\"%s\",\"ShardId\":\"shardId-000000000000\","
              "\"ShardIteratorType\":\"TRIM_HORIZON\"}",
              arn);
    OK_CALL(r);
    char *it = strdup(jstr(&r, "ShardIterator"));
    reply_free(&r);
    r = get_records(&e, it, 0);
    CPT_EQ_INT(jsize(&r, "Records"), 2);
    reply_free(&r);
    free(it);
    r = callf(&e, "ListShards", "{\"StreamARN\":\"%s\"}", arn);
    CPT_EQ_INT(jsize(&r, "Shards"), 1);
    reply_free(&r);
    /* The ARN wins over a StreamName. */
    r = callf(&e, "DescribeStreamSummary", "{\"StreamName\":\"zzz\",\"StreamARN\":\"%s\"}", arn);
    OK_CALL(r);
    reply_free(&r);
    EXPECT_ERR(call(&e, "DescribeStream",
                    "{\"StreamARN\":\"arn:aws:kinesis:us-east-1:123456789012:stream/s\"}"),
               400, "ResourceNotFoundException", "Stream s under account 123456789012 not found.");
    ok(&e, "UpdateShardCount",
       "{\"StreamARN\":\"arn:aws-cn:kinesis:cn-north-1:000000000000:stream/s\","
       "\"TargetShardCount\":2,\"ScalingType\":\"UNIFORM_SCALING\"}");
    ok(&e, "DeleteStream", "{\"StreamARN\":\"arn:aws:kinesis:us-east-1:000000000000:stream/s\"}");
    env_close(&e);
}

/* Every prefix of a valid body, and single-byte mutations of it, for every operation: the reply
 * is always well-formed JSON (call_n checks) with a 200 or a 4xx, never a crash or a 500. */
static void hostile_bodies(void)
{
    env e;
    env_open(&e);
    create(&e, "s", 2);
    char *it = iterator(&e, "s", "shardId-000000000000", "TRIM_HORIZON", NULL);
    char getrec[512];
    snprintf(getrec, sizeof(getrec), "{\"ShardIterator\":\"%s\",\"Limit\":5}", it);
    const char *const cases[][2] = {
        {"PutRecords", "{\"StreamName\":\"s\",\"Records\":[{\"Data\":\"YWJj\",\"PartitionKey\":"
                       "\"k\\u00e9\",\"ExplicitHashKey\":\"7\"},null,{\"Data\":\"\"}]}"},
        {"PutRecord", "{\"StreamName\":\"s\",\"Data\":\"YWJjZA==\",\"PartitionKey\":\"k\","
                      "\"SequenceNumberForOrdering\":\"1\"}"},
        {"CreateStream", "{\"StreamName\":\"n\",\"StreamModeDetails\":{\"StreamMode\":"
                         "\"ON_DEMAND\"},\"Tags\":{\"a\":\"b\"}}"},
        {"ListShards", "{\"StreamName\":\"s\",\"MaxResults\":1,\"ShardFilter\":{\"Type\":"
                       "\"AT_TIMESTAMP\",\"Timestamp\":1.25}}"},
        {"GetShardIterator", "{\"StreamName\":\"s\",\"ShardId\":\"shardId-000000000001\","
                             "\"ShardIteratorType\":\"AT_TIMESTAMP\",\"Timestamp\":1e3}"},
        {"GetRecords", getrec},
        {"AddTagsToStream", "{\"StreamName\":\"s\",\"Tags\":{\"x\":\"y\",\"z\":null}}"},
        {"RemoveTagsFromStream", "{\"StreamARN\":\"arn:aws:kinesis:r:000000000000:stream/s\","
                                 "\"TagKeys\":[\"x\",null]}"},
        {"ListStreams", "{\"Limit\":1,\"ExclusiveStartStreamName\":\"a\"}"},
    };
    static const char junk[] = "\"{}[],:0-e.\\ntx\x01\xff";
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const char *op = cases[c][0], *body = cases[c][1];
        size_t n = strlen(body);
        char *buf = malloc(n + 1);
        for (size_t len = 0; len <= n; len++) {
            reply r = call_n(&e, op, body, len);
            if (r.status != 200 && (r.status < 400 || r.status >= 500)) {
                CPT_FAIL_AT("%s prefix %zu: %d %s", op, len, r.status, r.body);
            }
            reply_free(&r);
        }
        for (size_t i = 0; i < n; i++) {
            memcpy(buf, body, n + 1);
            buf[i] = junk[i % (sizeof(junk) - 1)];
            reply r = call_n(&e, op, buf, n);
            if (r.status != 200 && (r.status < 400 || r.status >= 500)) {
                CPT_FAIL_AT("%s mutated at %zu: %d %s", op, i, r.status, r.body);
            }
            reply_free(&r);
        }
        free(buf);
    }
    free(it);
    env_close(&e);
}

static void configured_region_in_arns(void)
{
    cp_kinesis_api_cfg cfg = {.region = "ap-northeast-2"};
    env e;
    env_open_with(&e, &cfg, NULL);
    create(&e, "s", 1);
    reply r = call(&e, "DescribeStreamSummary", "{\"StreamName\":\"s\"}");
    CPT_EQ_STR(jstr(&r, "StreamDescriptionSummary.StreamARN"),
               "arn:aws:kinesis:ap-northeast-2:000000000000:stream/s");
    reply_free(&r);
    r = call(&e, "ListStreams", "{}");
    CPT_EQ_STR(jstr(&r, "StreamSummaries.0.StreamARN"),
               "arn:aws:kinesis:ap-northeast-2:000000000000:stream/s");
    reply_free(&r);
    env_close(&e);
}

CPT_LIST = {
    {"create_describe_list_delete", create_describe_list_delete},
    {"on_demand_streams", on_demand_streams},
    {"validation_messages", validation_messages},
    {"serialization_errors", serialization_errors},
    {"unknown_stream_everywhere", unknown_stream_everywhere},
    {"put_and_get_roundtrip", put_and_get_roundtrip},
    {"get_records_limit_and_behind", get_records_limit_and_behind},
    {"iterator_types", iterator_types},
    {"iterators_expire_and_resist_tampering", iterators_expire_and_resist_tampering},
    {"put_records_throttled_per_record", put_records_throttled_per_record},
    {"put_records_internal_failure", put_records_internal_failure},
    {"size_limits", size_limits},
    {"describe_and_list_shards_pagination", describe_and_list_shards_pagination},
    {"list_streams_pagination", list_streams_pagination},
    {"resharding_and_child_shards", resharding_and_child_shards},
    {"retention_periods", retention_periods},
    {"tags", tags},
    {"stream_arn_everywhere", stream_arn_everywhere},
    {"configured_region_in_arns", configured_region_in_arns},
    {"hostile_bodies", hostile_bodies},
    {0},
};
