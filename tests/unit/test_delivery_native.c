/* SPDX-License-Identifier: MIT */
/*
 * The native DynamoDBChangeRecord processor: flattening of all ten attribute types with number
 * text kept, image choice, options, partition keys, failures, and byte-for-byte equality with
 * the example Lambda (examples/lambda): run as a real child process through a Lambda Runtime
 * API served by this test and driven by the Lambda processor, and linked directly for a large
 * set of generated and mutated records.
 */
#include "cpt.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "core/json.h"
#include "delivery/batch.h"
#include "delivery/processor.h"
#include "delivery/processors/lambda.h"
#include "transform.h"

#ifndef CP_EXAMPLE_BOOTSTRAP
#error "CP_EXAMPLE_BOOTSTRAP (path of the example Lambda's bootstrap) must be defined by CMake"
#endif

#define NP(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ------------------------------------------------------------------------------ */

static void *native_ctx(const cp_processor_param *p, size_t n)
{
    void *ctx = NULL;
    cp_err err = {0};
    if (cp_processor_native.init(p, n, NULL, &ctx, &err) != CP_OK) {
        CPT_FAIL_AT("native init: %s", err.msg);
    }
    return ctx;
}

static cp_drec *add(cp_batch *b, cp_slice data, uint64_t seq)
{
    cp_drec *r = cp_batch_add(b);
    r->shard = 1;
    r->seq = seq;
    r->arrival_ms = 1767225600000;
    r->raw = r->data = cp_batch_copy(b, data);
    return r;
}

/* Run the native processor on one record; returns the record (valid until b is freed). */
static cp_drec *run1(void *ctx, cp_batch *b, const char *record)
{
    cp_batch_reset(b);
    add(b, cp_slice_str(record), 1);
    cp_err err = {0};
    CPT_EQ_INT(cp_processor_native.apply(ctx, b, &err), CP_OK);
    return &b->recs[0];
}

static void ok_as(void *ctx, const char *record, const char *want)
{
    cp_batch b = CP_BATCH_INIT;
    cp_drec *r = run1(ctx, &b, record);
    if (r->result != CP_REC_OK) {
        CPT_FAIL_AT("failed: %.*s\n  record %s", (int) r->error_message.len, r->error_message.p,
                    record);
    }
    CPT_EQ_MEM(r->data.p, r->data.len, want, strlen(want));
    cp_batch_free(&b);
}

static void fails(void *ctx, const char *record, const char *msg_part)
{
    cp_batch b = CP_BATCH_INIT;
    cp_drec *r = run1(ctx, &b, record);
    if (r->result != CP_REC_FAILED) {
        CPT_FAIL_AT("accepted: %s -> %.*s", record, (int) r->data.len, r->data.p);
    }
    CPT_EQ_STR(r->error_type, "processing-failed");
    CPT_EQ_STR(r->error_code, "Native.InvalidChangeRecord");
    CPT_EQ_INT(r->attempts, 1);
    char msg[300];
    snprintf(msg, sizeof(msg), "%.*s", (int) r->error_message.len, r->error_message.p);
    if (!strstr(msg, msg_part)) {
        CPT_FAIL_AT("message \"%s\" lacks \"%s\" for %s", msg, msg_part, record);
    }
    CPT_EQ_MEM(r->raw.p, r->raw.len, record, strlen(record));
    cp_batch_free(&b);
}

static const char *key_of(const cp_drec *r, const char *name)
{
    static char v[256];
    for (size_t i = 0; i < r->nlambda_keys; i++) {
        if (cp_slice_eq(r->lambda_keys[i].name, cp_slice_str(name))) {
            snprintf(v, sizeof(v), "%.*s", (int) r->lambda_keys[i].value.len,
                     r->lambda_keys[i].value.p);
            return v;
        }
    }
    return NULL;
}

static char *slurp(const char *name, size_t *len)
{
    /* __FILE__ is tests/unit/test_delivery_native.c; fixtures are in tests/data/delivery. */
    char path[512];
    const char *slash = strrchr(__FILE__, '/');
    snprintf(path, sizeof(path), "%.*s/../data/delivery/%s", (int) (slash - __FILE__), __FILE__,
             name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        CPT_FAIL_AT("cannot open %s", path);
    }
    cp_buf b = CP_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        cp_buf_append(&b, chunk, n);
    }
    fclose(f);
    *len = b.len;
    return b.p;
}

/* Split text into lines (without the newline); returns the count. */
static size_t lines(char *text, char **out, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n < max;
         l = strtok_r(NULL, "\n", &save)) {
        out[n++] = l;
    }
    return n;
}

#define INSERT_OF(image)                                                                           \
    "{\"eventName\":\"INSERT\",\"dynamodb\":{\"ApproximateCreationDateTime\":1767225600123,"       \
    "\"NewImage\":" image "}}"

/* ---- flattening --------------------------------------------------------------------------- */

static void flattens_all_ten_types_keeping_number_text(void)
{
    void *ctx = native_ctx(NULL, 0);
    ok_as(ctx, INSERT_OF("{\"s\":{\"S\":\"x\\\"y\\u00e9\"}}"), "{\"s\":\"x\\\"y\\u00e9\"}\n");
    ok_as(ctx, INSERT_OF("{\"n\":{\"N\":\"1.50\"}}"), "{\"n\":1.50}\n");
    ok_as(ctx, INSERT_OF("{\"n\":{\"N\":\"-0.000\"},\"m\":{\"N\":\"1E+125\"}}"),
          "{\"n\":-0.000,\"m\":1E+125}\n");
    ok_as(ctx, INSERT_OF("{\"n\":{\"N\":\"12345678901234567890123456789012345678\"}}"),
          "{\"n\":12345678901234567890123456789012345678}\n");
    ok_as(ctx, INSERT_OF("{\"b\":{\"B\":\"AAEC/w==\"}}"), "{\"b\":\"AAEC/w==\"}\n");
    ok_as(ctx, INSERT_OF("{\"t\":{\"BOOL\":true},\"f\":{\"BOOL\":false}}"),
          "{\"t\":true,\"f\":false}\n");
    ok_as(ctx, INSERT_OF("{\"z\":{\"NULL\":true}}"), "{\"z\":null}\n");
    ok_as(ctx, INSERT_OF("{\"ss\":{\"SS\":[\"a\",\"b\"]},\"e\":{\"SS\":[]}}"),
          "{\"ss\":[\"a\",\"b\"],\"e\":[]}\n");
    ok_as(ctx, INSERT_OF("{\"ns\":{\"NS\":[\"1\",\"2.50\",\"-3e-7\"]}}"),
          "{\"ns\":[1,2.50,-3e-7]}\n");
    ok_as(ctx, INSERT_OF("{\"bs\":{\"BS\":[\"AA==\",\"AQ==\"]}}"),
          "{\"bs\":[\"AA==\",\"AQ==\"]}\n");
    ok_as(ctx,
          INSERT_OF("{\"l\":{\"L\":[{\"S\":\"x\"},{\"N\":\"0.10\"},{\"L\":[{\"NULL\":true}]},"
                    "{\"M\":{\"k\":{\"BOOL\":true}}}]}}"),
          "{\"l\":[\"x\",0.10,[null],{\"k\":true}]}\n");
    ok_as(ctx,
          INSERT_OF("{\"m\":{\"M\":{\"a\":{\"M\":{\"b\":{\"NS\":[\"7\"]}}},\"e\":{\"M\":{}}}}}"),
          "{\"m\":{\"a\":{\"b\":[7]},\"e\":{}}}\n");
    ok_as(ctx, INSERT_OF("{}"), "{}\n");
    /* whitespace in the record does not reach the output */
    ok_as(ctx,
          "{ \"eventName\" : \"INSERT\" , \"dynamodb\" : { \"NewImage\" : { \"a\" : { \"N\" : "
          "\"5\" } , \"b\" : { \"L\" : [ { \"S\" : \"q\" } ] } } } }",
          "{\"a\":5,\"b\":[\"q\"]}\n");
    cp_processor_native.destroy(ctx);
}

static void picks_the_image_by_event(void)
{
    void *ctx = native_ctx(NULL, 0);
    const char *keys = "\"Keys\":{\"k\":{\"S\":\"key\"}}";
    const char *newi = "\"NewImage\":{\"k\":{\"S\":\"new\"}}";
    const char *oldi = "\"OldImage\":{\"k\":{\"S\":\"old\"}}";
    char rec[512];
    snprintf(rec, sizeof(rec), "{\"eventName\":\"MODIFY\",\"dynamodb\":{%s,%s,%s}}", keys, newi,
             oldi);
    ok_as(ctx, rec, "{\"k\":\"new\"}\n");
    snprintf(rec, sizeof(rec), "{\"dynamodb\":{%s,%s,%s},\"eventName\":\"REMOVE\"}", keys, newi,
             oldi);
    ok_as(ctx, rec, "{\"k\":\"old\"}\n");
    snprintf(rec, sizeof(rec), "{\"eventName\":\"REMOVE\",\"dynamodb\":{%s,\"OldImage\":null}}",
             keys);
    ok_as(ctx, rec, "{\"k\":\"key\"}\n");
    snprintf(rec, sizeof(rec), "{\"eventName\":\"INSERT\",\"dynamodb\":{%s}}", keys);
    ok_as(ctx, rec, "{\"k\":\"key\"}\n");
    cp_processor_native.destroy(ctx);
}

static void options_add_event_fields_and_control_the_newline(void)
{
    cp_processor_param p[] = {{"IncludeEventName", "true"},
                              {"IncludeApproximateCreationDateTime", "TRUE"},
                              {"AppendNewline", "false"}};
    void *ctx = native_ctx(p, NP(p));
    ok_as(ctx, INSERT_OF("{\"a\":{\"S\":\"1\"}}"),
          "{\"a\":\"1\",\"eventName\":\"INSERT\",\"ApproximateCreationDateTime\":1767225600123}");
    ok_as(ctx, INSERT_OF("{}"),
          "{\"eventName\":\"INSERT\",\"ApproximateCreationDateTime\":1767225600123}");
    /* an attribute of the same name wins: no duplicate member */
    ok_as(ctx, INSERT_OF("{\"eventName\":{\"S\":\"mine\"}}"),
          "{\"eventName\":\"mine\",\"ApproximateCreationDateTime\":1767225600123}");
    /* no creation time in the record: nothing appended for it */
    ok_as(ctx, "{\"eventName\":\"REMOVE\",\"dynamodb\":{\"Keys\":{\"a\":{\"N\":\"1\"}}}}",
          "{\"a\":1,\"eventName\":\"REMOVE\"}");
    cp_processor_native.destroy(ctx);

    cp_processor_param bad[] = {{"AppendNewline", "yes"}};
    void *c2 = NULL;
    cp_err err = {0};
    CPT_EQ_INT(cp_processor_native.init(bad, 1, NULL, &c2, &err), CP_EINVAL);
    cp_processor_param unknown[] = {{"LambdaArn", "x"}};
    CPT_EQ_INT(cp_processor_native.init(unknown, 1, NULL, &c2, &err), CP_EINVAL);
}

static void chosen_attributes_become_partition_keys(void)
{
    cp_processor_param p[] = {
        {"PartitionKeyAttributes", " LivestreamID , UID,Flag,Empty,Gone,Esc"}};
    void *ctx = native_ctx(p, NP(p));
    cp_batch b = CP_BATCH_INIT;
    cp_drec *r = run1(ctx, &b,
                      INSERT_OF("{\"LivestreamID\":{\"S\":\"live-7\"},\"UID\":{\"N\":\"1.50\"},"
                                "\"Flag\":{\"BOOL\":true},\"Empty\":{\"S\":\"\"},"
                                "\"Esc\":{\"S\":\"a\\\"b\\u00e9\"}}"));
    CPT_EQ_INT(r->result, CP_REC_OK);
    CPT_EQ_INT(r->nlambda_keys, 3);
    CPT_EQ_STR(key_of(r, "LivestreamID"), "live-7");
    CPT_EQ_STR(key_of(r, "UID"), "1.50");
    CPT_EQ_STR(key_of(r, "Esc"), "a\"b\xc3\xa9"); /* decoded, as Lambda's JSON would be */
    CPT_CHECK(key_of(r, "Flag") == NULL);         /* not S or N */
    CPT_CHECK(key_of(r, "Empty") == NULL);        /* empty: partitioning fails later */
    CPT_CHECK(key_of(r, "Gone") == NULL);
    /* nested attributes never count, only top-level ones */
    r = run1(ctx, &b, INSERT_OF("{\"M\":{\"M\":{\"LivestreamID\":{\"S\":\"inner\"}}}}"));
    CPT_EQ_INT(r->result, CP_REC_OK);
    CPT_EQ_INT(r->nlambda_keys, 0);
    cp_batch_free(&b);
    cp_processor_native.destroy(ctx);
}

static void malformed_change_records_fail(void)
{
    void *ctx = native_ctx(NULL, 0);
    fails(ctx, "not json", "not a JSON object");
    fails(ctx, "[1]", "not a JSON object");
    fails(ctx, "{\"eventName\":\"INSERT\"", "not valid JSON");
    fails(ctx, "{\"dynamodb\":{\"NewImage\":{}}}", "no eventName");
    fails(ctx, "{\"eventName\":\"UPSERT\",\"dynamodb\":{\"NewImage\":{}}}", "not INSERT");
    fails(ctx, "{\"eventName\":\"INSERT\",\"dynamodb\":{}}", "no image");
    fails(ctx, "{\"eventName\":\"INSERT\",\"dynamodb\":[]}", "dynamodb is not an object");
    fails(ctx, "{\"eventName\":\"INSERT\",\"dynamodb\":{\"NewImage\":5}}", "not an object");
    fails(ctx, INSERT_OF("{\"n\":{\"N\":\"abc\"}}"), "not a number");
    fails(ctx, INSERT_OF("{\"n\":{\"N\":\".5\"}}"), "not a number");
    fails(ctx, INSERT_OF("{\"n\":{\"N\":\"1.\"}}"), "not a number");
    fails(ctx, INSERT_OF("{\"n\":{\"N\":5}}"), "not a number");
    fails(ctx, INSERT_OF("{\"n\":{\"NS\":[\"1\",\"x\"]}}"), "not a number");
    fails(ctx, INSERT_OF("{\"s\":{\"S\":1}}"), "not a string");
    fails(ctx, INSERT_OF("{\"s\":{\"S\":\"a\",\"N\":\"1\"}}"), "more than one");
    fails(ctx, INSERT_OF("{\"s\":{}}"), "no valid type");
    fails(ctx, INSERT_OF("{\"s\":{\"X\":\"y\"}}"), "unknown type");
    fails(ctx, INSERT_OF("{\"s\":\"plain\"}"), "not a typed value");
    fails(ctx, INSERT_OF("{\"z\":{\"NULL\":false}}"), "NULL value");
    fails(ctx, INSERT_OF("{\"l\":{\"L\":[\"raw\"]}}"), "not a typed value");
    fails(ctx, INSERT_OF("{\"ss\":{\"SS\":[1]}}"), "set element");
    cp_processor_native.destroy(ctx);
}

static void fixture_records_flatten_to_the_expected_lines(void)
{
    cp_processor_param p[] = {{"PartitionKeyAttributes", "LivestreamID"}};
    void *ctx = native_ctx(p, NP(p));
    size_t in_len, want_len;
    char *in = slurp("change_records.jsonl", &in_len);
    char *want = slurp("flattened.jsonl", &want_len);
    char *recs[64], *outs[64];
    size_t n = lines(in, recs, 64);
    CPT_EQ_INT(lines(want, outs, 64), n);
    CPT_CHECK(n >= 6);
    cp_batch b = CP_BATCH_INIT;
    for (size_t i = 0; i < n; i++) {
        add(&b, cp_slice_str(recs[i]), i);
    }
    cp_err err = {0};
    CPT_EQ_INT(cp_processor_native.apply(ctx, &b, &err), CP_OK);
    const char *lids[] = {"live-7", "live-7", "live-8", "live-9", "live-7", "live-/10"};
    for (size_t i = 0; i < n; i++) {
        cp_drec *r = &b.recs[i];
        CPT_EQ_INT(r->result, CP_REC_OK);
        CPT_EQ_MEM(r->data.p, r->data.len - 1, outs[i], strlen(outs[i]));
        CPT_EQ_INT(r->data.p[r->data.len - 1], '\n');
        CPT_EQ_STR(key_of(r, "LivestreamID"), lids[i]);
    }
    cp_batch_free(&b);
    free(in);
    free(want);
    cp_processor_native.destroy(ctx);
}

/* ---- a Lambda Runtime API for the example function ----------------------------------------- */

typedef struct runtime {
    int lfd;
    int port;
    pid_t pid;
    int next_id;
    int invocations;
} runtime;

static int wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 20000) == 1;
}

/* Read one HTTP request; returns the request line in line[] and the body in body. */
static int read_request(int fd, char *line, size_t cap, cp_buf *body)
{
    cp_buf in = CP_BUF_INIT;
    char chunk[65536];
    size_t head_end = 0, want = 0;
    for (;;) {
        if (!wait_readable(fd)) {
            cp_buf_free(&in);
            return -1;
        }
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n <= 0) {
            cp_buf_free(&in);
            return -1;
        }
        cp_buf_append(&in, chunk, (size_t) n);
        if (!head_end) {
            char *e = strstr(in.p, "\r\n\r\n");
            if (!e) {
                continue;
            }
            head_end = (size_t) (e - in.p) + 4;
            const char *cl = strcasestr(in.p, "\r\nContent-Length:");
            want = cl && cl < e ? strtoul(cl + 17, NULL, 10) : 0;
            if (strcasestr(in.p, "\r\nExpect: 100-continue") != NULL) {
                const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                CPT_EQ_INT(write(fd, cont, sizeof(cont) - 1), sizeof(cont) - 1);
            }
        }
        if (in.len >= head_end + want) {
            break;
        }
    }
    snprintf(line, cap, "%.*s", (int) strcspn(in.p, "\r"), in.p);
    cp_buf_append(body, in.p + head_end, want);
    cp_buf_free(&in);
    return 0;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        CPT_CHECK(w > 0);
        p += w;
        n -= (size_t) w;
    }
}

static int accept_one(runtime *rt)
{
    if (!wait_readable(rt->lfd)) {
        return -1;
    }
    return accept(rt->lfd, NULL, NULL);
}

/* env->invoke: hand the event to the function's /next and wait for its /response. */
static int runtime_invoke(void *vctx, const char *arn, cp_slice payload, cp_buf *response,
                          int *ferr, cp_err *err)
{
    runtime *rt = vctx;
    char line[512], hdr[512];
    cp_buf ignored = CP_BUF_INIT;
    (void) arn;
    *ferr = 0;
    int fd = accept_one(rt);
    if (fd < 0 || read_request(fd, line, sizeof(line), &ignored) < 0) {
        cp_buf_free(&ignored);
        return cp_err_set(err, CP_EIO, "the function did not ask for work");
    }
    CPT_CHECK(strncmp(line, "GET /2018-06-01/runtime/invocation/next ", 40) == 0);
    int id = ++rt->next_id;
    snprintf(hdr, sizeof(hdr),
             "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: req-%d\r\n"
             "Lambda-Runtime-Deadline-Ms: 9999999999999\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
             id, payload.len);
    write_all(fd, hdr, strlen(hdr));
    write_all(fd, payload.p, payload.len);
    close(fd);
    cp_buf_free(&ignored);

    fd = accept_one(rt);
    if (fd < 0 || read_request(fd, line, sizeof(line), response) < 0) {
        return cp_err_set(err, CP_EIO, "the function did not answer");
    }
    char want[128];
    snprintf(want, sizeof(want), "POST /2018-06-01/runtime/invocation/req-%d/", id);
    CPT_CHECK(strncmp(line, want, strlen(want)) == 0);
    *ferr = strncmp(line + strlen(want), "error", 5) == 0;
    const char ok[] = "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    write_all(fd, ok, sizeof(ok) - 1);
    close(fd);
    rt->invocations++;
    return CP_OK;
}

static void runtime_start(runtime *rt, const char *const *env)
{
    memset(rt, 0, sizeof(*rt));
    rt->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    CPT_EQ_INT(bind(rt->lfd, (struct sockaddr *) &a, sizeof(a)), 0);
    CPT_EQ_INT(listen(rt->lfd, 8), 0);
    CPT_EQ_INT(getsockname(rt->lfd, (struct sockaddr *) &a, &alen), 0);
    rt->port = ntohs(a.sin_port);
    fflush(NULL);
    rt->pid = fork();
    CPT_CHECK(rt->pid >= 0);
    if (rt->pid == 0) {
        char api[64];
        snprintf(api, sizeof(api), "127.0.0.1:%d", rt->port);
        setenv("AWS_LAMBDA_RUNTIME_API", api, 1);
        for (size_t i = 0; env[i]; i += 2) {
            setenv(env[i], env[i + 1], 1);
        }
        execl(CP_EXAMPLE_BOOTSTRAP, "bootstrap", (char *) NULL);
        _exit(127);
    }
}

static void runtime_stop(runtime *rt)
{
    kill(rt->pid, SIGTERM);
    int st;
    waitpid(rt->pid, &st, 0);
    close(rt->lfd);
}

/* ---- native == Lambda ---------------------------------------------------------------------- */

typedef struct variant {
    const char *const *env;           /* the function's environment */
    const cp_processor_param *params; /* the native processor's parameters */
    size_t nparams;
} variant;

static const char *const env_default[] = {"PARTITION_KEY_ATTRIBUTES", "LivestreamID", NULL};
static const cp_processor_param p_default[] = {{"PartitionKeyAttributes", "LivestreamID"}};
static const char *const env_all[] = {"PARTITION_KEY_ATTRIBUTES",
                                      "LivestreamID, UID,Message",
                                      "INCLUDE_EVENT_NAME",
                                      "true",
                                      "INCLUDE_APPROXIMATE_CREATION_DATE_TIME",
                                      "true",
                                      "APPEND_NEWLINE",
                                      "false",
                                      NULL};
static const cp_processor_param p_all[] = {{"PartitionKeyAttributes", "LivestreamID, UID,Message"},
                                           {"IncludeEventName", "true"},
                                           {"IncludeApproximateCreationDateTime", "true"},
                                           {"AppendNewline", "false"}};

/* Records for the comparisons: the fixtures plus failures and corner cases. */
static size_t corpus(char **out, size_t max, char **owned)
{
    size_t len;
    *owned = slurp("change_records.jsonl", &len);
    size_t n = lines(*owned, out, max);
    static const char *extra[] = {
        INSERT_OF("{\"n\":{\"N\":\"abc\"}}"),
        "{\"eventName\":\"REMOVE\",\"dynamodb\":{\"Keys\":{\"LivestreamID\":{\"S\":\"\"}}}}",
        "not json at all",
        "{\"eventName\":\"MODIFY\",\"dynamodb\":{\"NewImage\":{\"UID\":{\"BOOL\":true},"
        "\"LivestreamID\":{\"N\":\"7\"}}}}",
        INSERT_OF("{\"ApproximateCreationDateTime\":{\"S\":\"mine\"},\"x\":{\"NULL\":true}}"),
    };
    for (size_t i = 0; i < NP(extra) && n < max; i++) {
        out[n++] = (char *) extra[i];
    }
    return n;
}

static void same_outcome(const cp_drec *nat, const cp_drec *lam, size_t i)
{
    if (nat->result == CP_REC_FAILED) {
        if (lam->result != CP_REC_FAILED) {
            CPT_FAIL_AT("record %zu: native failed, the Lambda did not", i);
        }
        CPT_EQ_STR(lam->error_code, "Lambda.ProcessingFailedStatus");
        return;
    }
    if (lam->result != CP_REC_OK) {
        CPT_FAIL_AT("record %zu: the Lambda failed (%s), native did not", i,
                    lam->error_code ? lam->error_code : "?");
    }
    CPT_EQ_MEM(nat->data.p, nat->data.len, lam->data.p, lam->data.len);
    CPT_EQ_INT(nat->nlambda_keys, lam->nlambda_keys);
    for (size_t k = 0; k < nat->nlambda_keys; k++) {
        CPT_CHECK(cp_slice_eq(nat->lambda_keys[k].name, lam->lambda_keys[k].name));
        CPT_CHECK(cp_slice_eq(nat->lambda_keys[k].value, lam->lambda_keys[k].value));
    }
}

static void native_matches_the_example_lambda_run_through_the_runtime_api(void)
{
    const variant vs[] = {{env_default, p_default, NP(p_default)}, {env_all, p_all, NP(p_all)}};
    char *recs[64], *owned;
    size_t n = corpus(recs, 64, &owned);
    for (size_t v = 0; v < NP(vs); v++) {
        runtime rt;
        runtime_start(&rt, vs[v].env);
        cp_processor_param lp[] = {{"LambdaArn", "arn:aws:lambda:eu-west-1:000000000000:"
                                                 "function:changepipe-flatten"}};
        cp_processor_env env = {.delivery_stream_arn = "arn:aws:firehose:eu-west-1:000000000000:"
                                                       "deliverystream/by-livestream",
                                .source_stream_arn = "arn:aws:kinesis:eu-west-1:000000000000:"
                                                     "stream/chat",
                                .region = "eu-west-1",
                                .kinesis_source = 1,
                                .invoke = runtime_invoke,
                                .invoke_ctx = &rt};
        void *lctx = NULL, *nctx = native_ctx(vs[v].params, vs[v].nparams);
        cp_err err = {0};
        CPT_EQ_INT(cp_processor_lambda.init(lp, 1, &env, &lctx, &err), CP_OK);
        cp_processor_lambda_set_backoff(1, 1);
        cp_batch nb = CP_BATCH_INIT, lb = CP_BATCH_INIT;
        for (size_t i = 0; i < n; i++) {
            add(&nb, cp_slice_str(recs[i]), i);
            add(&lb, cp_slice_str(recs[i]), i);
        }
        CPT_EQ_INT(cp_processor_native.apply(nctx, &nb, &err), CP_OK);
        CPT_EQ_INT(cp_processor_lambda.apply(lctx, &lb, &err), CP_OK);
        CPT_EQ_INT(rt.invocations, 1);
        size_t ok = 0;
        for (size_t i = 0; i < n; i++) {
            same_outcome(&nb.recs[i], &lb.recs[i], i);
            ok += nb.recs[i].result == CP_REC_OK;
        }
        CPT_CHECK(ok >= 6);
        cp_batch_free(&nb);
        cp_batch_free(&lb);
        cp_processor_lambda.destroy(lctx);
        cp_processor_native.destroy(nctx);
        runtime_stop(&rt);
    }
    free(owned);
}

/* ---- native == the example's transform, on generated and mutated records ------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t) (rng_state % n);
}

static const char *pick(const char *const *v, size_t n)
{
    return v[rnd((uint32_t) n)];
}

static void gen_value(cp_buf *b, int depth);
static void gen_image(cp_buf *b, int depth);

static void gen_string(cp_buf *b)
{
    static const char *const s[] = {"\"\"",           "\"live-7\"",      "\"a\\\"b\"",
                                    "\"\\u00e9\\n\"", "\"caf\xc3\xa9\"", "\"x\\/y\"",
                                    "\"1.50\""};
    cp_buf_puts(b, pick(s, NP(s)));
}

static void gen_number_text(cp_buf *b)
{
    static const char *const s[] = {"\"0\"",   "\"1.50\"", "\"-0.0\"", "\"1E+125\"", "\"17\"",
                                    "\"abc\"", "\".5\"",   "\"1.\"",   "\"007\"",    "\"-\""};
    cp_buf_puts(b, pick(s, NP(s)));
}

static void gen_typed(cp_buf *b, int depth)
{
    uint32_t t = rnd(depth > 2 ? 8 : 12);
    cp_buf_putc(b, '{');
    switch (t) {
    case 0:
        cp_buf_puts(b, "\"S\":"), gen_string(b);
        break;
    case 1:
        cp_buf_puts(b, "\"N\":"), gen_number_text(b);
        break;
    case 2:
        cp_buf_puts(b, "\"B\":\"AAEC\"");
        break;
    case 3:
        cp_buf_puts(b, rnd(2) ? "\"BOOL\":true" : "\"BOOL\":false");
        break;
    case 4:
        cp_buf_puts(b, rnd(8) ? "\"NULL\":true" : "\"NULL\":false");
        break;
    case 5:
        cp_buf_puts(b, "\"SS\":[");
        for (uint32_t i = 0, k = rnd(3); i < k; i++) {
            if (i) {
                cp_buf_putc(b, ',');
            }
            gen_string(b);
        }
        cp_buf_putc(b, ']');
        break;
    case 6:
        cp_buf_puts(b, "\"NS\":[");
        for (uint32_t i = 0, k = rnd(3); i < k; i++) {
            if (i) {
                cp_buf_putc(b, ',');
            }
            gen_number_text(b);
        }
        cp_buf_putc(b, ']');
        break;
    case 7: {
        static const char *const odd[] = {"\"S\":1", "\"X\":\"y\"",       "\"S\":\"a\",\"N\":\"1\"",
                                          "",        "\"BS\":[\"AA==\"]", "\"S\":null"};
        cp_buf_puts(b, pick(odd, NP(odd)));
        break;
    }
    case 8:
    case 9:
        cp_buf_puts(b, "\"L\":[");
        for (uint32_t i = 0, k = rnd(4); i < k; i++) {
            if (i) {
                cp_buf_putc(b, ',');
            }
            gen_value(b, depth + 1);
        }
        cp_buf_putc(b, ']');
        break;
    default:
        cp_buf_puts(b, "\"M\":");
        gen_image(b, depth + 1);
        break;
    }
    cp_buf_putc(b, '}');
}

static void gen_image(cp_buf *b, int depth)
{
    static const char *const names[] = {"\"LivestreamID\"",
                                        "\"UID\"",
                                        "\"Message\"",
                                        "\"eventName\"",
                                        "\"ApproximateCreationDateTime\"",
                                        "\"a\"",
                                        "\"\\u004civestreamID\""};
    cp_buf_putc(b, '{');
    for (uint32_t i = 0, k = rnd(5); i < k; i++) {
        if (i) {
            cp_buf_putc(b, ',');
        }
        cp_buf_puts(b, pick(names, NP(names)));
        cp_buf_putc(b, ':');
        gen_typed(b, depth);
    }
    cp_buf_putc(b, '}');
}

static void gen_value(cp_buf *b, int depth)
{
    gen_typed(b, depth);
}

static void gen_record(cp_buf *b)
{
    static const char *const events[] = {"\"INSERT\"", "\"MODIFY\"",       "\"REMOVE\"",
                                         "\"FOO\"",    "\"INS\\u0045RT\"", "null"};
    static const char *const images[] = {"\"NewImage\"", "\"OldImage\"", "\"Keys\"",
                                         "\"New\\u0049mage\""};
    cp_buf_reset(b);
    cp_buf_puts(b, "{\"awsRegion\":\"eu-west-1\",");
    if (rnd(10)) {
        cp_buf_printf(b, "\"eventName\":%s,", pick(events, NP(events)));
    }
    cp_buf_puts(b, "\"dynamodb\":{");
    int any = 0;
    if (rnd(4)) {
        cp_buf_puts(b, rnd(6) ? "\"ApproximateCreationDateTime\":1767225600123"
                              : "\"ApproximateCreationDateTime\":\"later\"");
        any = 1;
    }
    for (uint32_t i = 0, k = rnd(4); i < k; i++) {
        cp_buf_puts(b, any ? "," : "");
        any = 1;
        cp_buf_puts(b, pick(images, NP(images)));
        cp_buf_putc(b, ':');
        uint32_t kind = rnd(12);
        if (kind == 0) {
            cp_buf_puts(b, "null");
        } else if (kind == 1) {
            cp_buf_puts(b, "5");
        } else {
            gen_image(b, 0);
        }
    }
    cp_buf_puts(b, "},\"eventSource\":\"aws:dynamodb\"}");
}

static void compare_direct(void *nctx, const fh_options *o, cp_slice rec, cp_batch *b, cp_buf *line,
                           fh_keys *keys, size_t *nok)
{
    cp_batch_reset(b);
    add(b, rec, 1);
    cp_err err = {0};
    CPT_EQ_INT(cp_processor_native.apply(nctx, b, &err), CP_OK);
    const cp_drec *r = &b->recs[0];
    const char *why = NULL;
    int lam = fh_transform(o, rec, line, keys, &why);
    if ((r->result == CP_REC_OK) != (lam == 0)) {
        CPT_FAIL_AT("outcomes differ (native %s, lambda %s) for\n  %.*s",
                    r->result == CP_REC_OK ? "ok" : "failed", lam == 0 ? "ok" : why, (int) rec.len,
                    rec.p);
    }
    if (lam != 0) {
        return;
    }
    (*nok)++;
    if (!cp_slice_eq(r->data, cp_buf_slice(line))) {
        CPT_FAIL_AT("bytes differ for\n  %.*s\n  native %.*s\n  lambda %s", (int) rec.len, rec.p,
                    (int) r->data.len, r->data.p, line->p);
    }
    CPT_EQ_INT(r->nlambda_keys, keys->n);
    for (size_t k = 0; k < keys->n; k++) {
        CPT_CHECK(cp_slice_eq(r->lambda_keys[k].name, cp_slice_str(keys->name[k])));
        CPT_CHECK(cp_slice_eq(r->lambda_keys[k].value, cp_buf_slice(&keys->value[k])));
    }
}

static void native_matches_the_example_transform_on_generated_records(void)
{
    const variant vs[] = {{env_default, p_default, NP(p_default)}, {env_all, p_all, NP(p_all)}};
    cp_buf rec = CP_BUF_INIT, line = CP_BUF_INIT;
    fh_keys keys = {0};
    cp_batch b = CP_BATCH_INIT;
    for (size_t v = 0; v < NP(vs); v++) {
        for (size_t i = 0; vs[v].env[i]; i += 2) {
            setenv(vs[v].env[i], vs[v].env[i + 1], 1);
        }
        fh_options o;
        fh_options_from_env(&o);
        void *nctx = native_ctx(vs[v].params, vs[v].nparams);
        size_t nok = 0, total = 0;
        for (int i = 0; i < 4000; i++) {
            gen_record(&rec);
            compare_direct(nctx, &o, cp_buf_slice(&rec), &b, &line, &keys, &nok);
            total++;
            /* and a few byte-level mutations of it */
            for (int m = 0; m < 2; m++) {
                size_t at = rnd((uint32_t) rec.len);
                static const char junk[] = "{}[]\",:\\ 0a";
                char saved = rec.p[at];
                rec.p[at] = junk[rnd(sizeof(junk) - 1)];
                compare_direct(nctx, &o, cp_buf_slice(&rec), &b, &line, &keys, &nok);
                rec.p[at] = saved;
                total++;
            }
        }
        /* the generator must reach both outcomes often, or the comparison says little */
        CPT_CHECK(nok > total / 10);
        CPT_CHECK(nok < total - total / 10);
        cp_processor_native.destroy(nctx);
    }
    cp_batch_free(&b);
    cp_buf_free(&rec);
    cp_buf_free(&line);
    fh_keys_free(&keys);
}

CPT_LIST = {
    {"flattens_all_ten_types_keeping_number_text", flattens_all_ten_types_keeping_number_text},
    {"picks_the_image_by_event", picks_the_image_by_event},
    {"options_add_event_fields_and_control_the_newline",
     options_add_event_fields_and_control_the_newline},
    {"chosen_attributes_become_partition_keys", chosen_attributes_become_partition_keys},
    {"malformed_change_records_fail", malformed_change_records_fail},
    {"fixture_records_flatten_to_the_expected_lines",
     fixture_records_flatten_to_the_expected_lines},
    {"native_matches_the_example_lambda_run_through_the_runtime_api",
     native_matches_the_example_lambda_run_through_the_runtime_api},
    {"native_matches_the_example_transform_on_generated_records",
     native_matches_the_example_transform_on_generated_records},
    {0},
};
