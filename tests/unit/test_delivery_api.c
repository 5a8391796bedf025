/* SPDX-License-Identifier: MIT */
/*
 * Firehose JSON API handlers through cp_aws_dispatch with hand-built, SigV4-signed requests,
 * over an in-memory fake backend: every operation's reply bytes, error types and messages,
 * ListDeliveryStreams paging and type filters, UpdateDestination's optimistic concurrency,
 * PutRecord/PutRecordBatch limits and per-record results, tags.
 */
#include "cpt.h"

#include "aws/proto.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/mem.h"
#include "delivery/api.h"

/* ------------------------------------------------------------------------------------------ */
/* Fake backend                                                                                */

#define MAXS 32

typedef struct fake {
    cp_ds_config *s[MAXS];
    size_t n;
    uint64_t next_pos;
    cp_buf records;     /* every accepted record, "<stream>:<bytes>\n" */
    int throttle_every; /* >0: every k-th record of a batch is refused with CP_EAGAIN */
    int race_update;    /* the next update sees a newer stored version */
} fake;

static fake g_fake;

static int find(fake *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->s[i]->name, name) == 0) {
            return (int) i;
        }
    }
    return -1;
}

static int f_create(void *ctx, cp_ds_config *cfg, cp_err *err)
{
    fake *f = ctx;
    if (find(f, cfg->name) >= 0) {
        cp_ds_config_free(cfg);
        return CP_EEXIST;
    }
    if (cfg->type == CP_DS_KINESIS && strcmp(cfg->source_stream, "missing") == 0) {
        cp_ds_config_free(cfg);
        return cp_err_set(err, CP_EINVAL, "Stream missing under account 123456789012 not found.");
    }
    /* keep names sorted, as the engine lists them */
    size_t at = 0;
    while (at < f->n && strcmp(f->s[at]->name, cfg->name) < 0) {
        at++;
    }
    memmove(&f->s[at + 1], &f->s[at], (f->n - at) * sizeof(f->s[0]));
    f->s[at] = cfg;
    f->n++;
    return CP_OK;
}

static int f_get(void *ctx, const char *name, cp_ds_config **cfg, cp_ds_state *st, cp_err *err)
{
    fake *f = ctx;
    int i = find(f, name);
    if (i < 0) {
        return CP_ENOTFOUND;
    }
    if (st) {
        st->status = CP_DS_ACTIVE;
    }
    return cp_ds_config_copy(f->s[i], cfg, err);
}

static int f_list(void *ctx, const char *after, size_t max, cp_buf *names, size_t *n, cp_err *err)
{
    (void) err;
    fake *f = ctx;
    *n = 0;
    for (size_t i = 0; i < f->n && *n < max; i++) {
        if (after && strcmp(f->s[i]->name, after) <= 0) {
            continue;
        }
        cp_buf_append(names, f->s[i]->name, strlen(f->s[i]->name) + 1);
        (*n)++;
    }
    return CP_OK;
}

static int f_remove(void *ctx, const char *name, int force, cp_err *err)
{
    (void) force;
    (void) err;
    fake *f = ctx;
    int i = find(f, name);
    if (i < 0) {
        return CP_ENOTFOUND;
    }
    cp_ds_config_free(f->s[i]);
    memmove(&f->s[i], &f->s[i + 1], (f->n - (size_t) i - 1) * sizeof(f->s[0]));
    f->n--;
    return CP_OK;
}

static int f_update(void *ctx, const char *name, uint32_t expected, cp_ds_config *next, cp_err *err)
{
    fake *f = ctx;
    int i = find(f, name);
    if (i < 0) {
        cp_ds_config_free(next);
        return CP_ENOTFOUND;
    }
    if (f->race_update) {
        f->race_update = 0;
        f->s[i]->version++; /* someone else's UpdateDestination landed first */
    }
    if (f->s[i]->version != expected) {
        cp_ds_config_free(next);
        return cp_err_set(err, CP_ECONDITION, "version moved");
    }
    cp_ds_config_free(f->s[i]);
    f->s[i] = next;
    return CP_OK;
}

static int f_put(void *ctx, const char *name, const cp_slice *recs, size_t n, uint64_t *pos,
                 int *codes, cp_err *err)
{
    fake *f = ctx;
    int i = find(f, name);
    if (i < 0) {
        return CP_ENOTFOUND;
    }
    if (f->s[i]->type != CP_DS_DIRECT_PUT) {
        return cp_err_set(err, CP_EINVAL, "not DirectPut");
    }
    for (size_t k = 0; k < n; k++) {
        CPT_EQ_INT(codes[k], CP_OK); /* the API hands them in zeroed */
        if (f->throttle_every && (k + 1) % (size_t) f->throttle_every == 0) {
            codes[k] = CP_EAGAIN;
            continue;
        }
        pos[k] = f->next_pos++;
        cp_buf_printf(&f->records, "%s:", name);
        cp_buf_append(&f->records, recs[k].p, recs[k].len);
        cp_buf_putc(&f->records, '\n');
    }
    return CP_OK;
}

static const cp_firehose_backend g_backend = {CP_FH_BACKEND_ABI, &g_fake,  f_create, f_get, f_list,
                                              f_remove,          f_update, f_put};

static cp_firehose_api_cfg g_api;

static cp_aws_router *make_router(int strict)
{
    memset(&g_fake, 0, sizeof(g_fake));
    g_api = (cp_firehose_api_cfg){&g_backend, "123456789012", {0}};
    g_api.parse.strict = strict;
    cp_aws_router_cfg rc = {NULL, 0, "us-east-1"};
    cp_aws_router *r = cp_aws_router_new(&rc);
    CPT_EQ_INT(cp_firehose_api_register(r, &g_api), CP_OK);
    CPT_EQ_INT(cp_firehose_api_register(r, &g_api), CP_EEXIST);
    return r;
}

static void free_router(cp_aws_router *r)
{
    cp_aws_router_free(r);
    for (size_t i = 0; i < g_fake.n; i++) {
        cp_ds_config_free(g_fake.s[i]);
    }
    cp_buf_free(&g_fake.records);
}

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                    */

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

typedef struct call {
    cp_http_header hdrs[8];
    size_t n;
    char target[96];
    char date[17];
    cp_buf authz;
    cp_http_scratch scratch;
    cp_http_req req;
    cp_http_resp resp;
} call;

/* Dispatch `op` with `body`, signed for firehose in eu-west-1. The reply stays in c->resp. */
static void call_op(cp_aws_router *r, call *c, const char *op, cp_slice body)
{
    memset(c, 0, sizeof(*c));
    cp_sigv4_amz_date(cp_clock_now_ms() / 1000, c->date);
    snprintf(c->target, sizeof(c->target), "Firehose_20150804.%s", op);
    c->hdrs[c->n++] = (cp_http_header){CP_SLICE("Host"), CP_SLICE("127.0.0.1:4566")};
    c->hdrs[c->n++] = (cp_http_header){CP_SLICE("X-Amz-Date"), cp_slice_str(c->date)};
    c->hdrs[c->n++] = (cp_http_header){CP_SLICE("X-Amz-Target"), cp_slice_str(c->target)};
    c->hdrs[c->n++] =
        (cp_http_header){CP_SLICE("Content-Type"), CP_SLICE("application/x-amz-json-1.1")};
    char hash[65];
    cp_sigv4_sha256_hex(body, hash);
    cp_sigv4_msg m = {CP_SLICE("POST"), CP_SLICE("/"), CP_SLICE(""),
                      c->hdrs,          c->n,          cp_slice_of(hash, 64)};
    cp_sigv4_signer s = {CP_SLICE("AKIDEXAMPLE"), CP_SLICE(SECRET), CP_SLICE("eu-west-1"),
                         CP_SLICE("firehose"), 0};
    cp_sigv4_sign(&s, &m, cp_slice_str(c->date), &c->authz);
    c->hdrs[c->n++] = (cp_http_header){CP_SLICE("Authorization"), cp_buf_slice(&c->authz)};
    c->scratch = CP_HTTP_SCRATCH_INIT;
    c->req = (cp_http_req){.method = CP_SLICE("POST"),
                           .target = CP_SLICE("/"),
                           .path = CP_SLICE("/"),
                           .query = CP_SLICE(""),
                           .headers = c->hdrs,
                           .nheaders = c->n,
                           .body = body,
                           .remote = "test",
                           .version = 11,
                           .scratch = &c->scratch};
    cp_http_resp_init(&c->resp);
    CPT_EQ_INT(cp_aws_dispatch(r, &c->req, &c->resp), CP_OK);
}

static void call_free(call *c)
{
    cp_buf_free(&c->authz);
    cp_http_scratch_free(&c->scratch);
    cp_http_resp_free(&c->resp);
}

static const char *body(const call *c)
{
    return c->resp.body.p ? c->resp.body.p : "";
}

/* One call; check status and exact body. */
static void expect(cp_aws_router *r, const char *op, const char *in, int status, const char *out)
{
    call c;
    call_op(r, &c, op, cp_slice_str(in));
    if (c.resp.status != status || strcmp(body(&c), out) != 0) {
        CPT_FAIL_AT("%s %.300s:\n    got  %d %.600s\n    want %d %.600s", op, in, c.resp.status,
                    body(&c), status, out);
    }
    call_free(&c);
}

/* One call expected to succeed; returns the body (caller frees). */
static char *ok(cp_aws_router *r, const char *op, const char *in)
{
    call c;
    call_op(r, &c, op, cp_slice_str(in));
    if (c.resp.status != 200) {
        CPT_FAIL_AT("%s %.300s: %d %.600s", op, in, c.resp.status, body(&c));
    }
    char *out = cp_strdup(body(&c));
    call_free(&c);
    return out;
}

#define ROLE   "\"RoleARN\":\"arn:aws:iam::123456789012:role/r\""
#define BUCKET "\"BucketARN\":\"arn:aws:s3:::b\""

static char *create_json(const char *name, int kinesis, const char *extra)
{
    cp_buf b = CP_BUF_INIT;
    cp_buf_printf(&b, "{\"DeliveryStreamName\":\"%s\"", name);
    if (kinesis) {
        cp_buf_puts(&b, ",\"DeliveryStreamType\":\"KinesisStreamAsSource\","
                        "\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":"
                        "\"arn:aws:kinesis:eu-west-1:123456789012:stream/src\"," ROLE "}");
    }
    cp_buf_printf(&b, ",\"ExtendedS3DestinationConfiguration\":{" ROLE "," BUCKET "%s}}",
                  extra ? extra : "");
    return b.p;
}

static void create(cp_aws_router *r, const char *name, int kinesis)
{
    char *in = create_json(name, kinesis, NULL);
    char want[256];
    snprintf(want, sizeof(want),
             "{\"DeliveryStreamARN\":\"arn:aws:firehose:eu-west-1:123456789012:deliverystream/"
             "%s\"}",
             name);
    expect(r, "CreateDeliveryStream", in, 200, want);
    cp_free(in);
}

/* ------------------------------------------------------------------------------------------ */
/* Control plane                                                                               */

static void create_and_describe(void)
{
    cp_aws_router *r = make_router(0);
    create(r, "s1", 1);
    CPT_EQ_INT(g_fake.n, 1);
    CPT_EQ_STR(g_fake.s[0]->region, "eu-west-1"); /* from the SigV4 scope */
    char *in = create_json("s1", 0, NULL);
    expect(r, "CreateDeliveryStream", in, 400,
           "{\"__type\":\"ResourceInUseException\",\"message\":\"Firehose s1 under account "
           "123456789012 already exists.\"}");
    cp_free(in);
    expect(r, "CreateDeliveryStream", "{\"DeliveryStreamName\":\"bad name\"}", 400,
           "{\"__type\":\"ValidationException\",\"message\":\"1 validation error detected: Value "
           "'bad name' at 'deliveryStreamName' failed to satisfy constraint: Member must satisfy "
           "regular expression pattern: [a-zA-Z0-9_.-]+\"}");
    in = create_json("s2", 0, ",\"Prefix\":\"!{timestamp:yyyy}/\"");
    expect(r, "CreateDeliveryStream", in, 400,
           "{\"__type\":\"InvalidArgumentException\",\"message\":\"Ths supplied prefix(es) do "
           "not satisfy the following constraint: ErrorOutputPrefix cannot be null or empty when "
           "Prefix contains expressions\"}");
    cp_free(in);
    /* The backend's refusal reaches the client as InvalidArgumentException. */
    expect(r, "CreateDeliveryStream",
           "{\"DeliveryStreamName\":\"s3\",\"DeliveryStreamType\":\"KinesisStreamAsSource\","
           "\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":\"arn:aws:kinesis:"
           "eu-west-1:123456789012:stream/missing\"," ROLE "},"
           "\"ExtendedS3DestinationConfiguration\":{" ROLE "," BUCKET "}}",
           400,
           "{\"__type\":\"InvalidArgumentException\",\"message\":\"Stream missing under account "
           "123456789012 not found.\"}");

    /* Describe is the config rendering, byte for byte. */
    char *d = ok(r, "DescribeDeliveryStream", "{\"DeliveryStreamName\":\"s1\"}");
    cp_buf want = CP_BUF_INIT;
    cp_ds_config_describe(g_fake.s[0], NULL, 1, &want);
    CPT_EQ_STR(d, want.p);
    CPT_CHECK(strstr(d, "\"KinesisStreamARN\":\"arn:aws:kinesis:eu-west-1:123456789012:stream/"
                        "src\"") != NULL);
    cp_free(d);
    cp_buf_reset(&want);
    cp_ds_config_describe(g_fake.s[0], NULL, 0, &want);
    expect(r, "DescribeDeliveryStream",
           "{\"DeliveryStreamName\":\"s1\",\"Limit\":1,"
           "\"ExclusiveStartDestinationId\":\"destinationId-000000000001\"}",
           200, want.p);
    cp_buf_free(&want);
    expect(r, "DescribeDeliveryStream", "{\"DeliveryStreamName\":\"nope\"}", 400,
           "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Firehose nope under account "
           "123456789012 not found.\"}");
    expect(r, "DescribeDeliveryStream", "{\"DeliveryStreamName\":\"s1\",\"Limit\":0}", 400,
           "{\"__type\":\"ValidationException\",\"message\":\"1 validation error detected: Value "
           "'0' at 'limit' failed to satisfy constraint: Member must have value greater than or "
           "equal to 1\"}");
    expect(r, "DescribeDeliveryStream", "{}", 400,
           "{\"__type\":\"ValidationException\",\"message\":\"1 validation error detected: Value "
           "null at 'deliveryStreamName' failed to satisfy constraint: Member must not be "
           "null\"}");
    expect(r, "DescribeDeliveryStream", "{\"DeliveryStreamName\":[]}", 400,
           "{\"__type\":\"SerializationException\",\"message\":\"Start of list found where not "
           "expected\"}");
    free_router(r);
}

static void list_pages_and_filters(void)
{
    cp_aws_router *r = make_router(0);
    create(r, "a", 0);
    create(r, "b", 1);
    create(r, "c", 0);
    create(r, "d", 1);
    create(r, "e", 0);
    expect(r, "ListDeliveryStreams", "{}", 200,
           "{\"DeliveryStreamNames\":[\"a\",\"b\",\"c\",\"d\",\"e\"],"
           "\"HasMoreDeliveryStreams\":false}");
    expect(r, "ListDeliveryStreams", "{\"Limit\":2}", 200,
           "{\"DeliveryStreamNames\":[\"a\",\"b\"],\"HasMoreDeliveryStreams\":true}");
    expect(r, "ListDeliveryStreams", "{\"Limit\":2,\"ExclusiveStartDeliveryStreamName\":\"b\"}",
           200, "{\"DeliveryStreamNames\":[\"c\",\"d\"],\"HasMoreDeliveryStreams\":true}");
    expect(r, "ListDeliveryStreams", "{\"Limit\":3,\"ExclusiveStartDeliveryStreamName\":\"b\"}",
           200, "{\"DeliveryStreamNames\":[\"c\",\"d\",\"e\"],\"HasMoreDeliveryStreams\":false}");
    expect(r, "ListDeliveryStreams", "{\"DeliveryStreamType\":\"KinesisStreamAsSource\"}", 200,
           "{\"DeliveryStreamNames\":[\"b\",\"d\"],\"HasMoreDeliveryStreams\":false}");
    expect(r, "ListDeliveryStreams", "{\"DeliveryStreamType\":\"DirectPut\",\"Limit\":2}", 200,
           "{\"DeliveryStreamNames\":[\"a\",\"c\"],\"HasMoreDeliveryStreams\":true}");
    expect(r, "ListDeliveryStreams", "{\"DeliveryStreamType\":\"MSKAsSource\"}", 200,
           "{\"DeliveryStreamNames\":[],\"HasMoreDeliveryStreams\":false}");
    expect(r, "ListDeliveryStreams", "{\"Limit\":10001}", 400,
           "{\"__type\":\"ValidationException\",\"message\":\"1 validation error detected: Value "
           "'10001' at 'limit' failed to satisfy constraint: Member must have value less than or "
           "equal to 10000\"}");
    /* Many streams: the handler pages through the backend. */
    for (int i = 0; i < 25; i++) {
        char name[16];
        snprintf(name, sizeof(name), "z%02d", i);
        create(r, name, 0);
    }
    char *out = ok(r, "ListDeliveryStreams", "{\"Limit\":10000}");
    CPT_CHECK(strstr(out, "\"z24\"],\"HasMoreDeliveryStreams\":false}") != NULL);
    cp_free(out);
    free_router(r);
}

static void delete_stream(void)
{
    cp_aws_router *r = make_router(0);
    create(r, "gone", 0);
    expect(r, "DeleteDeliveryStream", "{\"DeliveryStreamName\":\"gone\",\"AllowForceDelete\":true}",
           200, "{}");
    CPT_EQ_INT(g_fake.n, 0);
    expect(r, "DeleteDeliveryStream", "{\"DeliveryStreamName\":\"gone\"}", 400,
           "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Firehose gone under account "
           "123456789012 not found.\"}");
    free_router(r);
}

static void update_destination(void)
{
    cp_aws_router *r = make_router(0);
    create(r, "u", 0);
    expect(r, "UpdateDestination",
           "{\"DeliveryStreamName\":\"u\",\"CurrentDeliveryStreamVersionId\":\"1\","
           "\"DestinationId\":\"destinationId-000000000001\",\"ExtendedS3DestinationUpdate\":{"
           "\"CompressionFormat\":\"GZIP\",\"Prefix\":\"v2/\"}}",
           200, "{}");
    CPT_EQ_INT(g_fake.s[0]->version, 2);
    CPT_EQ_STR(g_fake.s[0]->prefix, "v2/");
    char *d = ok(r, "DescribeDeliveryStream", "{\"DeliveryStreamName\":\"u\"}");
    CPT_CHECK(strstr(d, "\"VersionId\":\"2\"") && strstr(d, "\"LastUpdateTimestamp\":"));
    CPT_CHECK(strstr(d, "\"CompressionFormat\":\"GZIP\""));
    cp_free(d);
    expect(r, "UpdateDestination",
           "{\"DeliveryStreamName\":\"u\",\"CurrentDeliveryStreamVersionId\":\"1\","
           "\"DestinationId\":\"destinationId-000000000001\",\"S3DestinationUpdate\":{}}",
           400,
           "{\"__type\":\"ConcurrentModificationException\",\"message\":\"Cannot update "
           "firehose: u since the current version id: 2 and specified version id: 1 do not "
           "match\"}");
    /* Another update lands between our read and write. */
    g_fake.race_update = 1;
    expect(r, "UpdateDestination",
           "{\"DeliveryStreamName\":\"u\",\"CurrentDeliveryStreamVersionId\":\"2\","
           "\"DestinationId\":\"destinationId-000000000001\",\"S3DestinationUpdate\":{}}",
           400,
           "{\"__type\":\"ConcurrentModificationException\",\"message\":\"Cannot update "
           "firehose: u since the current version id has changed from 2\"}");
    expect(r, "UpdateDestination",
           "{\"DeliveryStreamName\":\"nope\",\"CurrentDeliveryStreamVersionId\":\"1\","
           "\"DestinationId\":\"destinationId-000000000001\",\"S3DestinationUpdate\":{}}",
           400,
           "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Firehose nope under account "
           "123456789012 not found.\"}");
    expect(r, "UpdateDestination", "{\"DeliveryStreamName\":\"u\"}", 400,
           "{\"__type\":\"ValidationException\",\"message\":\"2 validation errors detected: Value "
           "null at 'currentDeliveryStreamVersionId' failed to satisfy constraint: Member must "
           "not be null; Value null at 'destinationId' failed to satisfy constraint: Member must "
           "not be null\"}");
    free_router(r);
}

static void tags(void)
{
    cp_aws_router *r = make_router(0);
    create(r, "t", 0);
    expect(r, "TagDeliveryStream",
           "{\"DeliveryStreamName\":\"t\",\"Tags\":[{\"Key\":\"b\",\"Value\":\"2\"},"
           "{\"Key\":\"a\",\"Value\":\"1\"},{\"Key\":\"c\"}]}",
           200, "{}");
    CPT_EQ_INT(g_fake.s[0]->version, 1); /* tags are not a destination change */
    expect(r, "ListTagsForDeliveryStream", "{\"DeliveryStreamName\":\"t\"}", 200,
           "{\"Tags\":[{\"Key\":\"a\",\"Value\":\"1\"},{\"Key\":\"b\",\"Value\":\"2\"},"
           "{\"Key\":\"c\",\"Value\":\"\"}],\"HasMoreTags\":false}");
    expect(r, "ListTagsForDeliveryStream", "{\"DeliveryStreamName\":\"t\",\"Limit\":1}", 200,
           "{\"Tags\":[{\"Key\":\"a\",\"Value\":\"1\"}],\"HasMoreTags\":true}");
    expect(r, "ListTagsForDeliveryStream",
           "{\"DeliveryStreamName\":\"t\",\"Limit\":1,\"ExclusiveStartTagKey\":\"a\"}", 200,
           "{\"Tags\":[{\"Key\":\"b\",\"Value\":\"2\"}],\"HasMoreTags\":true}");
    expect(r, "UntagDeliveryStream", "{\"DeliveryStreamName\":\"t\",\"TagKeys\":[\"b\",\"zz\"]}",
           200, "{}");
    expect(r, "ListTagsForDeliveryStream", "{\"DeliveryStreamName\":\"t\"}", 200,
           "{\"Tags\":[{\"Key\":\"a\",\"Value\":\"1\"},{\"Key\":\"c\",\"Value\":\"\"}],"
           "\"HasMoreTags\":false}");
    expect(r, "TagDeliveryStream", "{\"DeliveryStreamName\":\"t\",\"Tags\":[]}", 400,
           "{\"__type\":\"ValidationException\",\"message\":\"1 validation error detected: Value "
           "at 'tags' failed to satisfy constraint: Member must have length greater than or equal "
           "to 1\"}");
    expect(r, "UntagDeliveryStream", "{\"DeliveryStreamName\":\"t\",\"TagKeys\":[\"aws:x\"]}", 400,
           "{\"__type\":\"ValidationException\",\"message\":\"1 validation error detected: Value "
           "'aws:x' at 'tagKeys.1.member' failed to satisfy constraint: Member must satisfy "
           "regular expression pattern: ^(?!aws:)[\\\\p{L}\\\\p{Z}\\\\p{N}_.:\\\\/=+\\\\-@%]*$\"}");
    /* An UpdateDestination racing a tag change: the tag change retries on the new version. */
    g_fake.race_update = 1;
    expect(r, "TagDeliveryStream",
           "{\"DeliveryStreamName\":\"t\",\"Tags\":[{\"Key\":\"changepipe:ValidateJsonLines\","
           "\"Value\":\"true\"}]}",
           200, "{}");
    CPT_EQ_INT(g_fake.s[0]->validate_json, 1);
    CPT_EQ_INT(g_fake.s[0]->ntags, 3);
    expect(r, "TagDeliveryStream",
           "{\"DeliveryStreamName\":\"t\",\"Tags\":[{\"Key\":\"changepipe:SinkEndpoint\","
           "\"Value\":\"\"}]}",
           400,
           "{\"__type\":\"InvalidArgumentException\",\"message\":\"Tag changepipe:SinkEndpoint "
           "must name a sink\"}");
    expect(r, "ListTagsForDeliveryStream", "{\"DeliveryStreamName\":\"x\"}", 400,
           "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Firehose x under account "
           "123456789012 not found.\"}");
    free_router(r);
}

/* ------------------------------------------------------------------------------------------ */
/* Data plane                                                                                  */

static void put_record(void)
{
    cp_aws_router *r = make_router(0);
    create(r, "dp", 0);
    create(r, "ks", 1);
    g_fake.next_pos = 41;
    char id[CP_FH_RECORD_ID_SIZE], want[256];
    cp_firehose_record_id("dp", 41, id);
    CPT_EQ_INT(strlen(id), 80);
    snprintf(want, sizeof(want), "{\"RecordId\":\"%s\",\"Encrypted\":false}", id);
    /* "hello" */
    expect(r, "PutRecord", "{\"DeliveryStreamName\":\"dp\",\"Record\":{\"Data\":\"aGVsbG8=\"}}",
           200, want);
    CPT_EQ_STR(g_fake.records.p, "dp:hello\n");
    /* Record ids are stable per (stream, position) and differ between them. */
    char id2[CP_FH_RECORD_ID_SIZE], id3[CP_FH_RECORD_ID_SIZE];
    cp_firehose_record_id("dp", 41, id2);
    cp_firehose_record_id("dp", 42, id3);
    CPT_EQ_STR(id2, id);
    CPT_CHECK(strcmp(id3, id) != 0);
    cp_firehose_record_id("dq", 41, id3);
    CPT_CHECK(strcmp(id3, id) != 0);

    expect(r, "PutRecord", "{\"DeliveryStreamName\":\"ks\",\"Record\":{\"Data\":\"aGVsbG8K\"}}",
           400,
           "{\"__type\":\"InvalidArgumentException\",\"message\":\"This operation is not "
           "permitted on KinesisStreamAsSource delivery stream type.\"}");
    expect(r, "PutRecord", "{\"DeliveryStreamName\":\"no\",\"Record\":{\"Data\":\"aGVsbG8K\"}}",
           400,
           "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Firehose no under account "
           "123456789012 not found.\"}");
    expect(r, "PutRecord", "{\"DeliveryStreamName\":\"dp\"}", 400,
           "{\"__type\":\"ValidationException\",\"message\":\"1 validation error detected: Value "
           "null at 'record' failed to satisfy constraint: Member must not be null\"}");
    expect(r, "PutRecord", "{\"DeliveryStreamName\":\"dp\",\"Record\":{}}", 400,
           "{\"__type\":\"ValidationException\",\"message\":\"1 validation error detected: Value "
           "null at 'record.data' failed to satisfy constraint: Member must not be null\"}");
    expect(r, "PutRecord", "{\"DeliveryStreamName\":\"dp\",\"Record\":{\"Data\":\"a\"}}", 400,
           "{\"__type\":\"SerializationException\",\"message\":\"Unable to decode the base64 "
           "Data of a record (1 characters)\"}");
    expect(r, "PutRecord", "{\"DeliveryStreamName\":5,\"Record\":{\"Data\":\"\"}}", 400,
           "{\"__type\":\"SerializationException\",\"message\":\"class java.math.BigDecimal can "
           "not be converted to an String\"}");
    expect(r, "PutRecord", "{\"DeliveryStreamName\":\"dp\",\"Record\":[]}", 400,
           "{\"__type\":\"SerializationException\",\"message\":\"Start of list found where not "
           "expected\"}");
    /* The record size limit is on the decoded bytes: 1,024,000 passes, one more does not. */
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = CP_FH_MAX_RECORD_BYTES + (size_t) extra;
        char *raw = cp_malloc(n);
        memset(raw, 'x', n);
        cp_buf in = CP_BUF_INIT;
        cp_buf_puts(&in, "{\"Record\":{\"Data\":\"");
        cp_base64_encode(cp_slice_of(raw, n), &in);
        cp_buf_puts(&in, "\"},\"DeliveryStreamName\":\"dp\"}");
        call c;
        call_op(r, &c, "PutRecord", cp_buf_slice(&in));
        if (!extra) {
            CPT_EQ_INT(c.resp.status, 200);
        } else {
            CPT_EQ_STR(body(&c), "{\"__type\":\"ValidationException\",\"message\":\"1 validation "
                                 "error detected: Value 'java.nio.HeapByteBuffer[pos=0 "
                                 "lim=1024001 cap=1024001]' at 'record.data' failed to satisfy "
                                 "constraint: Member must have length less than or equal to "
                                 "1024000\"}");
        }
        call_free(&c);
        cp_buf_free(&in);
        cp_free(raw);
    }
    free_router(r);
}

static char *batch_json(const char *name, size_t n, size_t bytes)
{
    cp_buf in = CP_BUF_INIT;
    char *raw = cp_malloc(bytes + 1);
    cp_buf_printf(&in, "{\"DeliveryStreamName\":\"%s\",\"Records\":[", name);
    for (size_t i = 0; i < n; i++) {
        memset(raw, 'a' + (int) (i % 26), bytes);
        cp_buf_puts(&in, i ? ",{\"Data\":\"" : "{\"Data\":\"");
        cp_base64_encode(cp_slice_of(raw, bytes), &in);
        cp_buf_puts(&in, "\"}");
    }
    cp_buf_puts(&in, "]}");
    cp_free(raw);
    return in.p;
}

static void put_record_batch(void)
{
    cp_aws_router *r = make_router(0);
    create(r, "dp", 0);
    create(r, "ks", 1);
    /* Three records in order, each with its id. */
    char *out = ok(r, "PutRecordBatch",
                   "{\"DeliveryStreamName\":\"dp\",\"Records\":[{\"Data\":\"YQ==\"},"
                   "{\"Data\":\"Yg==\",\"Extra\":[1,{\"x\":2}]},{\"Data\":\"Yw==\"}],\"Other\":1}");
    char ids[3][CP_FH_RECORD_ID_SIZE];
    for (int i = 0; i < 3; i++) {
        cp_firehose_record_id("dp", (uint64_t) i, ids[i]);
    }
    cp_buf want = CP_BUF_INIT;
    cp_buf_printf(&want,
                  "{\"FailedPutCount\":0,\"Encrypted\":false,\"RequestResponses\":[{\"RecordId\":"
                  "\"%s\"},{\"RecordId\":\"%s\"},{\"RecordId\":\"%s\"}]}",
                  ids[0], ids[1], ids[2]);
    CPT_EQ_STR(out, want.p);
    CPT_EQ_STR(g_fake.records.p, "dp:a\ndp:b\ndp:c\n");
    cp_free(out);
    /* Per-record refusals: answered per record, never a request failure. */
    g_fake.throttle_every = 2;
    out = ok(r, "PutRecordBatch",
             "{\"DeliveryStreamName\":\"dp\",\"Records\":[{\"Data\":\"YQ==\"},{\"Data\":\"Yg==\"},"
             "{\"Data\":\"Yw==\"}]}");
    cp_firehose_record_id("dp", 3, ids[0]);
    cp_firehose_record_id("dp", 4, ids[1]);
    cp_buf_reset(&want);
    cp_buf_printf(&want,
                  "{\"FailedPutCount\":1,\"Encrypted\":false,\"RequestResponses\":[{\"RecordId\":"
                  "\"%s\"},{\"ErrorCode\":\"ServiceUnavailableException\",\"ErrorMessage\":\"Slow "
                  "down.\"},{\"RecordId\":\"%s\"}]}",
                  ids[0], ids[1]);
    CPT_EQ_STR(out, want.p);
    cp_free(out);
    g_fake.throttle_every = 0;
    cp_buf_free(&want);

    expect(r, "PutRecordBatch", "{\"DeliveryStreamName\":\"ks\",\"Records\":[{\"Data\":\"YQ==\"}]}",
           400,
           "{\"__type\":\"InvalidArgumentException\",\"message\":\"This operation is not "
           "permitted on KinesisStreamAsSource delivery stream type.\"}");
    expect(r, "PutRecordBatch", "{\"DeliveryStreamName\":\"dp\"}", 400,
           "{\"__type\":\"ValidationException\",\"message\":\"1 validation error detected: Value "
           "null at 'records' failed to satisfy constraint: Member must not be null\"}");
    expect(r, "PutRecordBatch", "{\"DeliveryStreamName\":\"dp\",\"Records\":[]}", 400,
           "{\"__type\":\"ValidationException\",\"message\":\"1 validation error detected: Value "
           "at 'records' failed to satisfy constraint: Member must have length greater than or "
           "equal to 1\"}");
    expect(r, "PutRecordBatch",
           "{\"DeliveryStreamName\":\"dp\",\"Records\":[{\"Data\":\"YQ==\"},{},null]}", 400,
           "{\"__type\":\"ValidationException\",\"message\":\"2 validation errors detected: Value "
           "null at 'records.2.member.data' failed to satisfy constraint: Member must not be "
           "null; Value null at 'records.3.member' failed to satisfy constraint: Member must not "
           "be null\"}");
    expect(r, "PutRecordBatch", "{\"DeliveryStreamName\":\"dp\",\"Records\":{}}", 400,
           "{\"__type\":\"SerializationException\",\"message\":\"Start of structure or map found "
           "where not expected.\"}");
    /* 500 records pass, 501 do not. */
    char *in = batch_json("dp", 500, 3);
    out = ok(r, "PutRecordBatch", in);
    CPT_CHECK(strstr(out, "\"FailedPutCount\":0,") != NULL);
    cp_free(out);
    cp_free(in);
    in = batch_json("dp", 501, 3);
    expect(r, "PutRecordBatch", in, 400,
           "{\"__type\":\"ValidationException\",\"message\":\"1 validation error detected: Value "
           "at 'records' failed to satisfy constraint: Member must have length less than or equal "
           "to 500\"}");
    cp_free(in);
    /* 4 MiB of data per call: 4 records of 1,024,000 bytes pass, 5 of 900,000 do not. */
    in = batch_json("dp", 4, CP_FH_MAX_RECORD_BYTES);
    out = ok(r, "PutRecordBatch", in);
    cp_free(out);
    cp_free(in);
    in = batch_json("dp", 5, 900000);
    expect(r, "PutRecordBatch", in, 400,
           "{\"__type\":\"InvalidArgumentException\",\"message\":\"Records size exceeds 4 MB "
           "limit\"}");
    cp_free(in);
    in = batch_json("dp", 2, CP_FH_MAX_RECORD_BYTES + 1);
    expect(r, "PutRecordBatch", in, 400,
           "{\"__type\":\"ValidationException\",\"message\":\"2 validation errors detected: Value "
           "'java.nio.HeapByteBuffer[pos=0 lim=1024001 cap=1024001]' at 'records.1.member.data' "
           "failed to satisfy constraint: Member must have length less than or equal to 1024000; "
           "Value 'java.nio.HeapByteBuffer[pos=0 lim=1024001 cap=1024001]' at "
           "'records.2.member.data' failed to satisfy constraint: Member must have length less "
           "than or equal to 1024000\"}");
    cp_free(in);
    free_router(r);
}

CPT_LIST = {
    {"create_and_describe", create_and_describe},
    {"list_pages_and_filters", list_pages_and_filters},
    {"delete_stream", delete_stream},
    {"update_destination", update_destination},
    {"tags", tags},
    {"put_record", put_record},
    {"put_record_batch", put_record_batch},
    {0},
};
