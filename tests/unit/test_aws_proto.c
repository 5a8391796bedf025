/* SPDX-License-Identifier: MIT */
/*
 * AWS JSON dispatch: X-Amz-Target routing, framing and auth errors with their exact bytes,
 * response headers (x-amz-crc32, request id, content type), and an in-process server driven
 * by libcurl over HTTP/1.1 keep-alive and h2c with SigV4-signed requests.
 */
#include "cpt.h"

#include <ctype.h>
#include <curl/curl.h>

#include "aws/proto.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/json.h"
#include "http/router.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static const cp_sigv4_cred g_creds[] = {{"AKIDEXAMPLE", SECRET}};

/* ------------------------------------------------------------------------------------------ */
/* Operations                                                                                  */

static int op_list_tables(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    (void) ctx;
    (void) req;
    cp_buf_puts(&resp->body, "{\"TableNames\":[]}");
    return CP_OK;
}

/* Echo the body and what the dispatcher told us. */
static int op_echo(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    (void) ctx;
    cp_buf_puts(&resp->body, "{\"Op\":");
    cp_json_put_str(&resp->body, req->op);
    cp_buf_puts(&resp->body, ",\"Region\":");
    cp_json_put_str(&resp->body, req->region);
    cp_buf_puts(&resp->body, ",\"Key\":");
    cp_json_put_str(&resp->body, req->access_key);
    cp_buf_puts(&resp->body, ",\"Body\":");
    cp_buf_append(&resp->body, req->body.p, req->body.len);
    cp_buf_putc(&resp->body, '}');
    return CP_OK;
}

static int op_empty(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    (void) ctx;
    (void) req;
    (void) resp;
    return CP_OK; /* no output: the dispatcher sends {} */
}

static int op_not_found(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    (void) ctx;
    cp_buf_puts(&resp->body, "partial output that must disappear");
    return cp_aws_reply_error(resp, req->service, "ResourceNotFoundException",
                              "Requested resource not found");
}

static int op_crash(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    (void) ctx;
    (void) req;
    (void) resp;
    return CP_EIO;
}

/* A hot-path op with its own parser: sees bodies the dispatcher did not validate. */
static int op_raw(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    (void) ctx;
    if (req->body.len && req->body.p[0] != '{') {
        return cp_aws_reply_error(resp, req->service, "SerializationException",
                                  "Start of structure or map found where not expected");
    }
    return CP_OK;
}

static const cp_aws_op ddb_ops[] = {
    {"ListTables", op_list_tables, 0},
    {"Echo", op_echo, 0},
    {"Empty", op_empty, 0},
    {"DescribeTable", op_not_found, 0},
    {"Crash", op_crash, 0},
    {"BatchWriteItem", op_raw, CP_AWS_OP_RAW_JSON},
    {NULL, NULL, 0},
};

static const cp_aws_op kinesis_ops[] = {
    {"PutRecords", op_echo, 0},
    {"DescribeStream", op_not_found, 0},
    {"Crash", op_crash, 0},
    {NULL, NULL, 0},
};

static cp_aws_router *make_router(int with_creds)
{
    cp_aws_router_cfg cfg = {with_creds ? g_creds : NULL, with_creds ? 1 : 0, "eu-west-1"};
    cp_aws_router *r = cp_aws_router_new(&cfg);
    CPT_EQ_INT(cp_aws_register_service(r, "DynamoDB_20120810", NULL, NULL, ddb_ops, NULL), CP_OK);
    CPT_EQ_INT(cp_aws_register_service(r, "DynamoDBStreams_20120810", NULL, NULL, ddb_ops, NULL),
               CP_OK);
    CPT_EQ_INT(cp_aws_register_service(r, "Kinesis_20131202", NULL, NULL, kinesis_ops, NULL),
               CP_OK);
    CPT_EQ_INT(cp_aws_register_service(r, "Kinesis_20131202", NULL, NULL, kinesis_ops, NULL),
               CP_EEXIST);
    return r;
}

/* ------------------------------------------------------------------------------------------ */
/* Direct dispatch                                                                             */

typedef struct call {
    cp_http_header hdrs[8];
    size_t n;
    cp_buf authz;
    cp_http_scratch scratch;
    cp_http_req req;
    cp_http_resp resp;
} call;

/* Build a request; `sign_service` NULL leaves it unsigned, "" adds a bogus signature. */
static void call_init(call *c, const char *method, const char *target, const char *body,
                      const char *sign_service)
{
    memset(c, 0, sizeof(*c));
    static char date[17];
    cp_sigv4_amz_date(cp_clock_now_ms() / 1000, date);
    c->hdrs[c->n++] = (cp_http_header){CP_SLICE("Host"), CP_SLICE("127.0.0.1:4566")};
    c->hdrs[c->n++] = (cp_http_header){CP_SLICE("X-Amz-Date"), cp_slice_str(date)};
    if (target) {
        c->hdrs[c->n++] = (cp_http_header){CP_SLICE("X-Amz-Target"), cp_slice_str(target)};
    }
    c->hdrs[c->n++] =
        (cp_http_header){CP_SLICE("Content-Type"), CP_SLICE("application/x-amz-json-1.0")};
    if (sign_service) {
        char hash[65];
        cp_sigv4_sha256_hex(cp_slice_str(body), hash);
        cp_sigv4_msg m = {cp_slice_str(method), CP_SLICE("/"), CP_SLICE(""), c->hdrs, c->n,
                          cp_slice_of(hash, 64)};
        cp_sigv4_signer s = {CP_SLICE("AKIDEXAMPLE"), CP_SLICE(SECRET), CP_SLICE("us-west-2"),
                             cp_slice_str(sign_service[0] ? sign_service : "dynamodb"), 0};
        cp_sigv4_sign(&s, &m, cp_slice_str(date), &c->authz);
        if (!sign_service[0]) {
            c->authz.p[c->authz.len - 1] ^= 1; /* break the signature */
        }
        c->hdrs[c->n++] = (cp_http_header){CP_SLICE("Authorization"), cp_buf_slice(&c->authz)};
    }
    c->scratch = CP_HTTP_SCRATCH_INIT;
    c->req = (cp_http_req){.method = cp_slice_str(method),
                           .target = CP_SLICE("/"),
                           .path = CP_SLICE("/"),
                           .query = CP_SLICE(""),
                           .headers = c->hdrs,
                           .nheaders = c->n,
                           .body = cp_slice_str(body),
                           .remote = "test",
                           .version = 11,
                           .scratch = &c->scratch};
    cp_http_resp_init(&c->resp);
}

static void call_free(call *c)
{
    cp_buf_free(&c->authz);
    cp_http_scratch_free(&c->scratch);
    cp_http_resp_free(&c->resp);
}

static const char *hdr(call *c, const char *name, char *buf, size_t cap)
{
    cp_slice v = cp_http_resp_header(&c->resp, name);
    if (!v.p) {
        return NULL;
    }
    snprintf(buf, cap, "%.*s", (int) v.len, v.p);
    return buf;
}

static const char *body(call *c)
{
    return c->resp.body.p ? c->resp.body.p : "";
}

/* Dispatch and check status and exact body. */
static void expect(cp_aws_router *r, const char *method, const char *target, const char *in,
                   const char *sign, int status, const char *out)
{
    call c;
    call_init(&c, method, target, in, sign);
    CPT_EQ_INT(cp_aws_dispatch(r, &c.req, &c.resp), CP_OK);
    if (c.resp.status != status || strcmp(body(&c), out) != 0) {
        CPT_FAIL_AT("%s %s: got %d %s, want %d %s", method, target ? target : "(none)",
                    c.resp.status, body(&c), status, out);
    }
    /* Every reply carries a request id, a Date and the JSON content type. */
    char v[128];
    CPT_CHECK(hdr(&c, "x-amzn-RequestId", v, sizeof(v)) != NULL);
    CPT_CHECK(hdr(&c, "Date", v, sizeof(v)) != NULL);
    CPT_CHECK(hdr(&c, "Content-Type", v, sizeof(v)) != NULL);
    call_free(&c);
}

static void target_routing_and_success_headers(void)
{
    cp_aws_router *r = make_router(0);
    call c;
    call_init(&c, "POST", "DynamoDB_20120810.ListTables", "{}", "dynamodb");
    CPT_EQ_INT(cp_aws_dispatch(r, &c.req, &c.resp), CP_OK);
    CPT_EQ_INT(c.resp.status, 200);
    CPT_EQ_STR(body(&c), "{\"TableNames\":[]}");
    char v[128];
    /* The value quoted in the spec for this exact body. */
    CPT_EQ_STR(hdr(&c, "x-amz-crc32", v, sizeof(v)), "1315925753");
    CPT_EQ_STR(hdr(&c, "Content-Type", v, sizeof(v)), "application/x-amz-json-1.0");
    hdr(&c, "x-amzn-RequestId", v, sizeof(v));
    CPT_EQ_INT(strlen(v), 52);
    for (size_t i = 0; i < 52; i++) {
        CPT_CHECK(isupper((unsigned char) v[i]) || isdigit((unsigned char) v[i]));
    }
    call_free(&c);

    /* No output -> {} with its CRC. */
    call_init(&c, "POST", "DynamoDBStreams_20120810.Empty", "{}", "dynamodb");
    CPT_EQ_INT(cp_aws_dispatch(r, &c.req, &c.resp), CP_OK);
    CPT_EQ_STR(body(&c), "{}");
    CPT_EQ_STR(hdr(&c, "x-amz-crc32", v, sizeof(v)), "2745614147");
    call_free(&c);

    /* Kinesis: JSON 1.1, UUID request id, x-amz-id-2, no CRC; op/region/key reach the op. */
    call_init(&c, "POST", "Kinesis_20131202.PutRecords", "{\"Records\":[]}", "kinesis");
    CPT_EQ_INT(cp_aws_dispatch(r, &c.req, &c.resp), CP_OK);
    CPT_EQ_STR(body(&c), "{\"Op\":\"PutRecords\",\"Region\":\"us-west-2\",\"Key\":\"AKIDEXAMPLE\","
                         "\"Body\":{\"Records\":[]}}");
    CPT_EQ_STR(hdr(&c, "Content-Type", v, sizeof(v)), "application/x-amz-json-1.1");
    CPT_CHECK(hdr(&c, "x-amz-crc32", v, sizeof(v)) == NULL);
    CPT_CHECK(hdr(&c, "x-amz-id-2", v, sizeof(v)) != NULL);
    hdr(&c, "x-amzn-RequestId", v, sizeof(v));
    CPT_EQ_INT(strlen(v), 36);
    CPT_CHECK(v[8] == '-' && v[13] == '-' && v[14] == '4' && v[18] == '-' && v[23] == '-');
    call_free(&c);

    /* Unsigned request in accept-any mode: missing auth is still refused, and the default
     * region applies when a request does carry a signature without... (covered above). */
    cp_aws_router_free(r);
}

static void error_shapes_exact_bytes(void)
{
    cp_aws_router *r = make_router(0);
    /* Service error from an op: its partial output is replaced. */
    expect(r, "POST", "DynamoDB_20120810.DescribeTable", "{}", "dynamodb", 400,
           "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException\","
           "\"message\":\"Requested resource not found\"}");
    expect(r, "POST", "Kinesis_20131202.DescribeStream", "{}", "kinesis", 400,
           "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Requested resource not "
           "found\"}");
    /* Framing: unknown op, unknown prefix, no target, wrong method. */
    expect(r, "POST", "DynamoDB_20120810.Nope", "{}", "dynamodb", 400,
           "{\"__type\":\"com.amazon.coral.service#UnknownOperationException\"}");
    expect(r, "POST", "Kinesis_20131202.Nope", "{}", "kinesis", 400,
           "{\"__type\":\"UnknownOperationException\"}");
    expect(r, "POST", "Nope_2020.ListTables", "{}", "kinesis", 400,
           "{\"__type\":\"UnknownOperationException\"}");
    expect(r, "POST", "NoDotHere", "{}", "dynamodb", 400,
           "{\"__type\":\"com.amazon.coral.service#UnknownOperationException\"}");
    expect(r, "POST", NULL, "{}", "dynamodb", 400,
           "{\"__type\":\"com.amazon.coral.service#UnknownOperationException\"}");
    expect(r, "GET", "DynamoDB_20120810.ListTables", "", "dynamodb", 400,
           "{\"__type\":\"com.amazon.coral.service#UnknownOperationException\"}");
    /* Body: empty, not JSON, not an object, trailing garbage. */
    expect(r, "POST", "DynamoDB_20120810.ListTables", "", "dynamodb", 400,
           "{\"__type\":\"com.amazon.coral.service#SerializationException\"}");
    expect(r, "POST", "DynamoDB_20120810.ListTables", "{\"a\":", "dynamodb", 400,
           "{\"__type\":\"com.amazon.coral.service#SerializationException\"}");
    expect(r, "POST", "DynamoDB_20120810.ListTables", "[1]", "dynamodb", 400,
           "{\"__type\":\"com.amazon.coral.service#SerializationException\"}");
    expect(r, "POST", "Kinesis_20131202.PutRecords", "{} {}", "kinesis", 400,
           "{\"__type\":\"SerializationException\"}");
    /* A raw-JSON op sees what the dispatcher did not validate; DynamoDB's capital Message. */
    expect(r, "POST", "DynamoDB_20120810.BatchWriteItem", "nonsense", "dynamodb", 400,
           "{\"__type\":\"com.amazon.coral.service#SerializationException\","
           "\"Message\":\"Start of structure or map found where not expected\"}");
    expect(r, "POST", "DynamoDB_20120810.BatchWriteItem", "  ", "dynamodb", 400,
           "{\"__type\":\"com.amazon.coral.service#SerializationException\"}");
    /* An op failing without replying: the service's 500. */
    expect(r, "POST", "DynamoDB_20120810.Crash", "{}", "dynamodb", 500,
           "{\"__type\":\"com.amazonaws.dynamodb.v20120810#InternalServerError\","
           "\"message\":\"Internal server error\"}");
    expect(r, "POST", "Kinesis_20131202.Crash", "{}", "kinesis", 500,
           "{\"__type\":\"InternalFailureException\",\"message\":\"Internal server error\"}");
    /* Missing auth, even in accept-any mode. */
    expect(r, "POST", "DynamoDB_20120810.ListTables", "{}", NULL, 400,
           "{\"__type\":\"com.amazon.coral.service#MissingAuthenticationTokenException\","
           "\"message\":\"Request is missing Authentication Token\"}");
    expect(r, "POST", "Kinesis_20131202.PutRecords", "{}", NULL, 400,
           "{\"__type\":\"MissingAuthenticationTokenException\","
           "\"message\":\"Missing Authentication Token\"}");
    /* A wrong signature passes without credentials. */
    expect(r, "POST", "DynamoDB_20120810.ListTables", "{}", "", 200, "{\"TableNames\":[]}");

    /* The error path by itself: namespaces, casing, statuses, extra members, CRC. */
    cp_http_resp resp;
    cp_http_resp_init(&resp);
    CPT_EQ_INT(cp_aws_reply_error(&resp, &cp_aws_dynamodb, "ValidationException",
                                  "1 validation error detected"),
               CP_EFAIL);
    CPT_EQ_INT(resp.status, 400);
    CPT_EQ_STR(resp.body.p, "{\"__type\":\"com.amazon.coral.validate#ValidationException\","
                            "\"message\":\"1 validation error detected\"}");
    char crc[16];
    snprintf(crc, sizeof(crc), "%u", cp_crc32(0, resp.body.p, resp.body.len));
    CPT_EQ_MEM(cp_http_resp_header(&resp, "x-amz-crc32").p,
               cp_http_resp_header(&resp, "x-amz-crc32").len, crc, strlen(crc));
    cp_aws_reply_error_extra(&resp, &cp_aws_dynamodb, "TransactionCanceledException",
                             "Transaction cancelled, please refer cancellation reasons for "
                             "specific reasons [None]",
                             CP_SLICE(",\"CancellationReasons\":[{\"Code\":\"None\"}]"));
    CPT_EQ_STR(resp.body.p,
               "{\"__type\":\"com.amazonaws.dynamodb.v20120810#TransactionCanceledException\","
               "\"Message\":\"Transaction cancelled, please refer cancellation reasons for "
               "specific reasons [None]\",\"CancellationReasons\":[{\"Code\":\"None\"}]}");
    cp_aws_reply_errorf(&resp, &cp_aws_dynamodb, "ThrottlingException", "Rate of %s", "x\"y");
    CPT_EQ_STR(resp.body.p, "{\"__type\":\"com.amazon.coral.availability#ThrottlingException\","
                            "\"message\":\"Rate of x\\\"y\"}");
    cp_aws_reply_error(&resp, &cp_aws_dynamodb, "ServiceUnavailable", NULL);
    CPT_EQ_INT(resp.status, 503);
    cp_aws_reply_error(&resp, &cp_aws_firehose, "ServiceUnavailableException", "busy");
    CPT_EQ_INT(resp.status, 503);
    CPT_EQ_STR(resp.body.p, "{\"__type\":\"ServiceUnavailableException\",\"message\":\"busy\"}");
    CPT_CHECK(cp_http_resp_header(&resp, "x-amz-crc32").p == NULL);
    /* Exactly one of each standard header after repeated replies on one response. */
    size_t pos = 0, n_id = 0;
    cp_slice hn, hv;
    while (cp_http_resp_next_header(&resp, &pos, &hn, &hv)) {
        n_id += cp_http_slice_ieq(hn, "x-amzn-RequestId");
    }
    CPT_EQ_INT(n_id, 1);
    cp_http_resp_free(&resp);
    cp_aws_router_free(r);
}

static void auth_errors_with_credentials(void)
{
    cp_aws_router *r = make_router(1);
    expect(r, "POST", "DynamoDB_20120810.ListTables", "{}", "dynamodb", 200, "{\"TableNames\":[]}");
    call c;
    call_init(&c, "POST", "DynamoDB_20120810.ListTables", "{}", "");
    cp_aws_dispatch(r, &c.req, &c.resp);
    CPT_EQ_INT(c.resp.status, 400);
    CPT_CHECK(strncmp(body(&c),
                      "{\"__type\":\"com.amazon.coral.service#InvalidSignatureException\","
                      "\"message\":\"The request signature we calculated does not match "
                      "the signature you provided.",
                      150) == 0);
    call_free(&c);
    /* Signed for the wrong service. */
    call_init(&c, "POST", "DynamoDB_20120810.ListTables", "{}", "kinesis");
    cp_aws_dispatch(r, &c.req, &c.resp);
    CPT_EQ_STR(body(&c), "{\"__type\":\"com.amazon.coral.service#InvalidSignatureException\","
                         "\"message\":\"Credential should be scoped to correct service: "
                         "'dynamodb'. \"}");
    call_free(&c);
    /* Unknown access key. */
    cp_sigv4_cred other[] = {{"AKIDOTHER", "x"}};
    cp_aws_router_cfg cfg = {other, 1, NULL};
    cp_aws_router *r2 = cp_aws_router_new(&cfg);
    cp_aws_register_service(r2, "Kinesis_20131202", NULL, NULL, kinesis_ops, NULL);
    expect(r2, "POST", "Kinesis_20131202.PutRecords", "{}", "kinesis", 400,
           "{\"__type\":\"UnrecognizedClientException\",\"message\":\"The security token "
           "included in the request is invalid.\"}");
    cp_aws_router_free(r2);
    /* Malformed: no Signature. */
    call_init(&c, "POST", "DynamoDB_20120810.ListTables", "{}", NULL);
    c.hdrs[c.n++] = (cp_http_header){
        CP_SLICE("Authorization"),
        CP_SLICE("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/dynamodb/aws4_request,"
                 " SignedHeaders=host")};
    c.req.nheaders = c.n;
    cp_aws_dispatch(r, &c.req, &c.resp);
    CPT_EQ_STR(body(&c), "{\"__type\":\"com.amazon.coral.service#IncompleteSignatureException\","
                         "\"message\":\"Authorization header requires 'Signature' parameter. "
                         "Authorization=AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
                         "us-east-1/dynamodb/aws4_request, SignedHeaders=host\"}");
    call_free(&c);
#ifdef CP_TESTING
    /* Clock skew beyond 15 minutes (DynamoDB); needs the clock seam. */
    int64_t now = cp_clock_now_ms();
    call_init(&c, "POST", "DynamoDB_20120810.ListTables", "{}", "dynamodb");
    cp_clock_pin_ms(now + 16 * 60 * 1000);
    cp_aws_dispatch(r, &c.req, &c.resp);
    CPT_EQ_INT(c.resp.status, 400);
    CPT_CHECK(strstr(body(&c), "InvalidSignatureException\",\"message\":\"Signature expired: ") !=
              NULL);
    CPT_CHECK(strstr(body(&c), " - 15 min.)\"}") != NULL);
    cp_clock_pin_ms(0);
    call_free(&c);
#endif
    /* Oversized: 413 with an empty body. */
    char *big = malloc((16u << 20) + 2);
    memset(big, ' ', (16u << 20) + 1);
    big[(16u << 20) + 1] = 0;
    call_init(&c, "POST", "DynamoDB_20120810.ListTables", big, NULL);
    cp_aws_dispatch(r, &c.req, &c.resp);
    CPT_EQ_INT(c.resp.status, 413);
    CPT_EQ_INT(c.resp.body.len, 0);
    call_free(&c);
    free(big);
    cp_aws_router_free(r);
}

/* ------------------------------------------------------------------------------------------ */
/* Through a real server                                                                       */

typedef struct reply {
    long status, version;
    cp_buf body, headers;
} reply;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    cp_buf_append(ud, p, size * n);
    return size * n;
}

static int has_header(const reply *r, const char *line)
{
    return r->headers.p && strcasestr(r->headers.p, line) != NULL;
}

static void post(uint16_t port, CURL *h, int h2, const char *target, const char *service,
                 const char *json, size_t len, reply *r)
{
    char host[64], date[17], url[128];
    snprintf(host, sizeof(host), "127.0.0.1:%u", (unsigned) port);
    snprintf(url, sizeof(url), "http://%s/", host);
    cp_sigv4_amz_date(cp_clock_now_ms() / 1000, date);
    cp_http_header hs[4] = {{CP_SLICE("Host"), cp_slice_str(host)},
                            {CP_SLICE("X-Amz-Date"), cp_slice_str(date)},
                            {CP_SLICE("X-Amz-Target"), cp_slice_str(target)},
                            {CP_SLICE("Content-Type"), CP_SLICE("application/x-amz-json-1.0")}};
    char hash[65];
    cp_sigv4_sha256_hex(cp_slice_of(json, len), hash);
    cp_sigv4_msg m = {CP_SLICE("POST"), CP_SLICE("/"), CP_SLICE(""), hs, 4, cp_slice_of(hash, 64)};
    cp_sigv4_signer s = {CP_SLICE("AKIDEXAMPLE"), CP_SLICE(SECRET), CP_SLICE("us-east-1"),
                         cp_slice_str(service), 0};
    cp_buf authz = CP_BUF_INIT, line = CP_BUF_INIT;
    cp_buf_puts(&authz, "Authorization: ");
    cp_sigv4_sign(&s, &m, cp_slice_str(date), &authz);
    struct curl_slist *l = curl_slist_append(NULL, authz.p);
    cp_buf_printf(&line, "X-Amz-Date: %s", date);
    l = curl_slist_append(l, line.p);
    cp_buf_reset(&line);
    cp_buf_printf(&line, "X-Amz-Target: %s", target);
    l = curl_slist_append(l, line.p);
    l = curl_slist_append(l, "Content-Type: application/x-amz-json-1.0");
    l = curl_slist_append(l, "Expect:");
    memset(r, 0, sizeof(*r));
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                     h2 ? (long) CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                        : (long) CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    CPT_EQ_INT(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &r->version);
    curl_slist_free_all(l);
    cp_buf_free(&authz);
    cp_buf_free(&line);
}

static void reply_free(reply *r)
{
    cp_buf_free(&r->body);
    cp_buf_free(&r->headers);
}

static void served(int h2)
{
    cp_aws_router *aws = make_router(1);
    cp_http_router *http = cp_http_router_new();
    cp_aws_mount(aws, http);
    cp_http_cfg cfg = {0};
    cfg.handler = cp_http_router_handle;
    cfg.ctx = http;
    cfg.max_body = 64 * 1024;
    cp_http_server *srv = NULL;
    cp_err err;
    CPT_EQ_INT(cp_http_server_open(&cfg, &srv, &err), CP_OK);
    uint16_t port = cp_http_server_port(srv);
    CURL *h = curl_easy_init();
    reply r;
    for (int i = 0; i < 3; i++) {
        if (h2 && i) {
            curl_easy_cleanup(h); /* libcurl 7.88.1 cannot reuse h2c (curl issue #10634) */
            h = curl_easy_init();
        }
        char json[64];
        int n = snprintf(json, sizeof(json), "{\"Records\":[%d]}", i);
        post(port, h, h2, "Kinesis_20131202.PutRecords", "kinesis", json, (size_t) n, &r);
        CPT_EQ_INT(r.status, 200);
        CPT_EQ_INT(r.version, h2 ? CURL_HTTP_VERSION_2_0 : CURL_HTTP_VERSION_1_1);
        char want[160];
        snprintf(want, sizeof(want),
                 "{\"Op\":\"PutRecords\",\"Region\":\"us-east-1\",\"Key\":\"AKIDEXAMPLE\","
                 "\"Body\":%s}",
                 json);
        CPT_EQ_MEM(r.body.p, r.body.len, want, strlen(want));
        CPT_CHECK(has_header(&r, "content-type: application/x-amz-json-1.1\r\n"));
        CPT_CHECK(has_header(&r, "x-amzn-RequestId: "));
        CPT_CHECK(!has_header(&r, "x-amz-crc32"));
        reply_free(&r);
    }
    if (h2) {
        curl_easy_cleanup(h);
        h = curl_easy_init();
    }
    post(port, h, h2, "DynamoDB_20120810.ListTables", "dynamodb", "{}", 2, &r);
    CPT_EQ_INT(r.status, 200);
    CPT_EQ_MEM(r.body.p, r.body.len, "{\"TableNames\":[]}", 17);
    CPT_CHECK(has_header(&r, "x-amz-crc32: 1315925753\r\n"));
    reply_free(&r);
    /* Oversized body: the listener refuses it, and the server stays healthy. */
    char *big = malloc(100 * 1024);
    memset(big, ' ', 100 * 1024);
    CURL *h2h = curl_easy_init();
    post(port, h2h, h2, "DynamoDB_20120810.ListTables", "dynamodb", big, 100 * 1024, &r);
    CPT_EQ_INT(r.status, 413);
    reply_free(&r);
    curl_easy_cleanup(h2h);
    h2h = curl_easy_init();
    post(port, h2h, h2, "DynamoDB_20120810.Nope", "dynamodb", "{}", 2, &r);
    CPT_EQ_INT(r.status, 400);
    const char *unknown = "{\"__type\":\"com.amazon.coral.service#UnknownOperationException\"}";
    CPT_EQ_MEM(r.body.p, r.body.len, unknown, strlen(unknown));
    reply_free(&r);
    free(big);
    curl_easy_cleanup(h);
    curl_easy_cleanup(h2h);
    cp_http_server_close(srv);
    cp_http_router_free(http);
    cp_aws_router_free(aws);
}

static void served_http1(void)
{
    served(0);
}

static void served_h2c(void)
{
    served(1);
}

CPT_LIST = {
    {"target_routing_and_success_headers", target_routing_and_success_headers},
    {"error_shapes_exact_bytes", error_shapes_exact_bytes},
    {"auth_errors_with_credentials", auth_errors_with_credentials},
    {"served_http1", served_http1},
    {"served_h2c", served_h2c},
    {0},
};
