/* SPDX-License-Identifier: MIT */
/*
 * Shared harness of the dynamo tests: a store and a stream manager in the test's temporary
 * directory, the DynamoDB API registered on an AWS router, and calls through cp_aws_dispatch
 * with SigV4-signed hand-built requests. Request JSON is written with single quotes (turned
 * into double quotes) to stay readable. Results are parsed with cJSON for assertions.
 */
#ifndef TEST_DYNAMO_HARNESS_H
#define TEST_DYNAMO_HARNESS_H

#include "cpt.h"

#include <cjson/cJSON.h>

#include "aws/proto.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/mem.h"
#include "dynamo/dynamo.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

typedef struct env {
    cp_db *db;
    cp_streams *streams;
    cp_dynamo_api *api;
    cp_aws_router *router;
} env;

static inline void env_open_cfg(env *e, const cp_dynamo_cfg *cfg)
{
    memset(e, 0, sizeof(*e));
    cp_err err = {0};
    cp_db_opts o = {.dir = cpt_tmpdir(), .no_fsync = 1};
    if (cp_db_open(&o, &e->db, &err) != CP_OK) {
        CPT_FAIL_AT("db open: %s", err.msg);
    }
    cp_streams_opts so = {.no_fsync = 1};
    if (cp_streams_open(cpt_tmpdir(), &so, &e->streams, &err) != CP_OK) {
        CPT_FAIL_AT("streams open: %s", err.msg);
    }
    cp_dynamo_cfg c = cfg ? *cfg : (cp_dynamo_cfg){0};
    if (!cfg) {
        c.stats_max_age_ms = -1; /* exact ItemCount in tests */
    }
    e->api = cp_dynamo_api_new(e->db, e->streams, &c);
    cp_aws_router_cfg rc = {NULL, 0, "us-east-1"};
    e->router = cp_aws_router_new(&rc);
    CPT_EQ_INT(cp_dynamo_api_register(e->api, e->router), CP_OK);
}

static inline void env_open(env *e)
{
    env_open_cfg(e, NULL);
}

static inline void env_close(env *e)
{
    cp_aws_router_free(e->router);
    cp_dynamo_api_free(e->api);
    cp_streams_close(e->streams);
    cp_db_close(e->db);
}

/* Reopen the store and the API over the same directory (restart). */
static inline void env_reopen(env *e)
{
    env_close(e);
    env_open(e);
}

/* Strings handed to tests; freed at exit so LeakSanitizer stays quiet. */
static char *g_strings[4096];
static int g_nstrings;

static inline void free_strings(void)
{
    for (int i = 0; i < g_nstrings; i++) {
        free(g_strings[i]);
    }
}

static char *keep_str(char *s)
{
    if (g_nstrings == 0) {
        atexit(free_strings);
    }
    CPT_CHECK(g_nstrings < 4096);
    g_strings[g_nstrings++] = s;
    return s;
}

static char *dq(const char *s)
{
    char *o = strdup(s);
    for (char *p = o; *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    return keep_str(o);
}

typedef struct reply {
    int status;
    const char *body;
    const char *crc;  /* x-amz-crc32 value or NULL */
    const char *type; /* __type after the '#' on errors */
    const char *msg;  /* message / Message on errors */
} reply;

/* Call Service.Op with a raw body (not quote-converted). */
static inline reply call_raw(env *e, const char *target, const char *body)
{
    cp_http_header hdrs[8];
    size_t n = 0;
    char date[17];
    cp_sigv4_amz_date(cp_clock_now_ms() / 1000, date);
    hdrs[n++] = (cp_http_header){CP_SLICE("Host"), CP_SLICE("127.0.0.1:4566")};
    hdrs[n++] = (cp_http_header){CP_SLICE("X-Amz-Date"), cp_slice_str(date)};
    hdrs[n++] = (cp_http_header){CP_SLICE("X-Amz-Target"), cp_slice_str(target)};
    hdrs[n++] = (cp_http_header){CP_SLICE("Content-Type"), CP_SLICE("application/x-amz-json-1.0")};
    char hash[65];
    cp_sigv4_sha256_hex(cp_slice_str(body), hash);
    cp_sigv4_msg m = {CP_SLICE("POST"),     CP_SLICE("/"), CP_SLICE(""), hdrs, n,
                      cp_slice_of(hash, 64)};
    cp_sigv4_signer s = {CP_SLICE("AKIDEXAMPLE"), CP_SLICE(SECRET), CP_SLICE("us-east-1"),
                         CP_SLICE("dynamodb"), 0};
    cp_buf authz = CP_BUF_INIT;
    cp_sigv4_sign(&s, &m, cp_slice_str(date), &authz);
    hdrs[n++] = (cp_http_header){CP_SLICE("Authorization"), cp_buf_slice(&authz)};
    cp_http_scratch scratch = CP_HTTP_SCRATCH_INIT;
    cp_http_req req = {.method = CP_SLICE("POST"),
                       .target = CP_SLICE("/"),
                       .path = CP_SLICE("/"),
                       .query = CP_SLICE(""),
                       .headers = hdrs,
                       .nheaders = n,
                       .body = cp_slice_str(body),
                       .remote = "test",
                       .version = 11,
                       .scratch = &scratch};
    cp_http_resp resp;
    cp_http_resp_init(&resp);
    CPT_EQ_INT(cp_aws_dispatch(e->router, &req, &resp), CP_OK);
    reply r = {resp.status, keep_str(strndup(resp.body.p ? resp.body.p : "", resp.body.len)), NULL,
               NULL, NULL};
    cp_slice crc = cp_http_resp_header(&resp, "x-amz-crc32");
    if (crc.p) {
        r.crc = keep_str(strndup(crc.p, crc.len));
        /* Every DynamoDB reply carries the CRC-32 of exactly the bytes sent. */
        char want[16];
        snprintf(want, sizeof(want), "%u",
                 cp_crc32(0, resp.body.p ? resp.body.p : "", resp.body.len));
        CPT_EQ_STR(r.crc, want);
    }
    if (r.status >= 400) {
        cJSON *j = cJSON_Parse(r.body);
        if (j) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "__type");
            if (cJSON_IsString(t)) {
                const char *h = strchr(t->valuestring, '#');
                r.type = keep_str(strdup(h ? h + 1 : t->valuestring));
            }
            const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
            if (!msg) {
                msg = cJSON_GetObjectItemCaseSensitive(j, "Message");
            }
            if (cJSON_IsString(msg)) {
                r.msg = keep_str(strdup(msg->valuestring));
            }
            cJSON_Delete(j);
        }
    }
    cp_buf_free(&authz);
    cp_http_scratch_free(&scratch);
    cp_http_resp_free(&resp);
    return r;
}

static inline reply ddb(env *e, const char *op, const char *json_sq)
{
    char target[128];
    snprintf(target, sizeof(target), "DynamoDB_20120810.%s", op);
    return call_raw(e, target, dq(json_sq));
}

static inline reply streams_call(env *e, const char *op, const char *json_sq)
{
    char target[128];
    snprintf(target, sizeof(target), "DynamoDBStreams_20120810.%s", op);
    return call_raw(e, target, dq(json_sq));
}

/* Parsed JSON kept until exit. */
static cJSON *g_json[1024];
static int g_njson;

static inline void free_json(void)
{
    for (int i = 0; i < g_njson; i++) {
        cJSON_Delete(g_json[i]);
    }
}

static cJSON *parse(const char *body)
{
    cJSON *j = cJSON_Parse(body);
    if (!j) {
        CPT_FAIL_AT("not JSON: %s", body);
    }
    if (g_njson == 0) {
        atexit(free_json);
    }
    CPT_CHECK(g_njson < 1024);
    g_json[g_njson++] = j;
    return j;
}

/* Expect success; returns the parsed body. */
#define OK(e, op, json) ok_at(__FILE__, __LINE__, e, op, json)
static cJSON *ok_at(const char *file, int line, env *e, const char *op, const char *json)
{
    reply r = ddb(e, op, json);
    if (r.status != 200) {
        fprintf(stderr, "  %s:%d: %s failed: %d %s\n", file, line, op, r.status, r.body);
        exit(1);
    }
    return parse(r.body);
}

/* Expect an error with this exception and message (msg NULL: any). */
#define ERR(e, op, json, type, msg) err_at(__FILE__, __LINE__, e, op, json, type, msg)
static inline reply err_at(const char *file, int line, env *e, const char *op, const char *json,
                           const char *type, const char *msg)
{
    reply r = ddb(e, op, json);
    if (r.status != 400 || !r.type || strcmp(r.type, type) != 0 ||
        (msg && (!r.msg || strcmp(r.msg, msg) != 0))) {
        fprintf(stderr, "  %s:%d: %s: got %d %s\n   want %s: %s\n", file, line, op, r.status,
                r.body, type, msg ? msg : "(any)");
        exit(1);
    }
    return r;
}

/* Path lookup: "Table.KeySchema.0.AttributeName". */
static const cJSON *jget(const cJSON *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && j; tok = strtok_r(NULL, ".", &save)) {
        if (cJSON_IsArray(j) && tok[0] >= '0' && tok[0] <= '9') {
            j = cJSON_GetArrayItem(j, atoi(tok));
        } else {
            j = cJSON_GetObjectItemCaseSensitive(j, tok);
        }
    }
    return j;
}

static const char *jstr(const cJSON *j, const char *path)
{
    const cJSON *v = jget(j, path);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static inline double jnum(const cJSON *j, const char *path)
{
    const cJSON *v = jget(j, path);
    if (!cJSON_IsNumber(v)) {
        return -12345;
    }
    return v->valuedouble;
}

/* Compact JSON text of a member (for exact comparisons). */
static const char *jtext(const cJSON *j, const char *path)
{
    const cJSON *v = path ? jget(j, path) : j;
    if (!v) {
        return NULL;
    }
    return keep_str(cJSON_PrintUnformatted(v));
}

/* Member equal to the (single-quoted) JSON, ignoring member order. */
#define SAME(j, path, text) same_at(__FILE__, __LINE__, j, path, text)
static inline void same_at(const char *file, int line, const cJSON *j, const char *path,
                           const char *text)
{
    const cJSON *v = path ? jget(j, path) : j;
    cJSON *want = parse(dq(text));
    if (!v || !cJSON_Compare(v, want, 1)) {
        fprintf(stderr, "  %s:%d: %s: got %s want %s\n", file, line, path ? path : "(root)",
                v ? jtext(v, NULL) : "(missing)", jtext(want, NULL));
        exit(1);
    }
}

static inline void create_table(env *e, const char *name, const char *range_type,
                                const char *stream)
{
    char body[1024];
    if (range_type) {
        snprintf(body, sizeof(body),
                 "{'TableName':'%s','AttributeDefinitions':[{'AttributeName':'pk',"
                 "'AttributeType':'S'},{'AttributeName':'sk','AttributeType':'%s'}],"
                 "'KeySchema':[{'AttributeName':'pk','KeyType':'HASH'},{'AttributeName':'sk',"
                 "'KeyType':'RANGE'}],'BillingMode':'PAY_PER_REQUEST'%s%s%s}",
                 name, range_type,
                 stream ? ",'StreamSpecification':{'StreamEnabled':true,"
                          "'StreamViewType':'"
                        : "",
                 stream ? stream : "", stream ? "'}" : "");
    } else {
        snprintf(body, sizeof(body),
                 "{'TableName':'%s','AttributeDefinitions':[{'AttributeName':'pk',"
                 "'AttributeType':'S'}],'KeySchema':[{'AttributeName':'pk','KeyType':'HASH'}],"
                 "'BillingMode':'PAY_PER_REQUEST'%s%s%s}",
                 name,
                 stream ? ",'StreamSpecification':{'StreamEnabled':true,"
                          "'StreamViewType':'"
                        : "",
                 stream ? stream : "", stream ? "'}" : "");
    }
    OK(e, "CreateTable", body);
}

#endif
