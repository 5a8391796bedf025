/* SPDX-License-Identifier: MIT */
/* AWS JSON service descriptors and the one error reply path (see errors.h). */
#include "aws/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "core/base64.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/json.h"

/* dynalite answers 413 above 16 MiB for DynamoDB; kinesalite above 7 MiB (a 5 MiB PutRecords
 * payload is ~6.7 MiB once base64-encoded). Firehose PutRecordBatch: 4 MiB of data. */
const cp_aws_service cp_aws_dynamodb = {"DynamoDB_20120810",
                                        "1.0",
                                        "dynamodb",
                                        CP_AWS_STYLE_DYNAMODB,
                                        1,
                                        15 * 60,
                                        16u << 20,
                                        "Request is missing Authentication Token",
                                        "InternalServerError"};
const cp_aws_service cp_aws_dynamodb_streams = {"DynamoDBStreams_20120810",
                                                "1.0",
                                                "dynamodb",
                                                CP_AWS_STYLE_DYNAMODB,
                                                1,
                                                15 * 60,
                                                16u << 20,
                                                "Request is missing Authentication Token",
                                                "InternalServerError"};
const cp_aws_service cp_aws_kinesis = {"Kinesis_20131202",
                                       "1.1",
                                       "kinesis",
                                       CP_AWS_STYLE_BARE,
                                       0,
                                       5 * 60,
                                       7u << 20,
                                       "Missing Authentication Token",
                                       "InternalFailureException"};
const cp_aws_service cp_aws_firehose = {"Firehose_20150804",
                                        "1.1",
                                        "firehose",
                                        CP_AWS_STYLE_BARE,
                                        0,
                                        5 * 60,
                                        7u << 20,
                                        "Missing Authentication Token",
                                        "ServiceUnavailableException"};

/* Used when the target service is unknown and for cp_aws_reply_error(..., NULL, ...). */
static const cp_aws_service generic = {"",
                                       "1.1",
                                       "",
                                       CP_AWS_STYLE_BARE,
                                       0,
                                       5 * 60,
                                       7u << 20,
                                       "Missing Authentication Token",
                                       "InternalFailureException"};

const cp_aws_service *cp_aws_service_builtin(cp_slice prefix)
{
    static const cp_aws_service *const all[] = {&cp_aws_dynamodb, &cp_aws_dynamodb_streams,
                                                &cp_aws_kinesis, &cp_aws_firehose};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (cp_slice_eq(prefix, cp_slice_str(all[i]->prefix))) {
            return all[i];
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Code table                                                                                  */

static int code_in(const char *code, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(code, *list) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Errors raised by AWS's request framework (Coral) rather than by DynamoDB itself: DynamoDB
 * reports them under com.amazon.coral.service (dynalite reproduces the same split). */
static const char *const coral_service[] = {"SerializationException",
                                            "UnknownOperationException",
                                            "MissingAuthenticationTokenException",
                                            "IncompleteSignatureException",
                                            "InvalidSignatureException",
                                            "UnrecognizedClientException",
                                            "AccessDeniedException",
                                            "InvalidClientTokenId",
                                            "RequestExpired",
                                            "MissingParameter",
                                            "InvalidParameterCombination",
                                            "OptInRequired",
                                            NULL};

/* DynamoDB uses a capital-M "Message" for these (spec section 1.5). */
static const char *const capital_message[] = {"SerializationException",
                                              "TransactionCanceledException", NULL};

static const char *namespace_of(const cp_aws_service *svc, const char *code)
{
    if (svc->style != CP_AWS_STYLE_DYNAMODB) {
        return "";
    }
    if (strcmp(code, "ValidationException") == 0) {
        return "com.amazon.coral.validate#";
    }
    if (strcmp(code, "ThrottlingException") == 0) {
        return "com.amazon.coral.availability#";
    }
    if (code_in(code, coral_service)) {
        return "com.amazon.coral.service#";
    }
    return "com.amazonaws.dynamodb.v20120810#";
}

int cp_aws_error_status(const cp_aws_service *svc, const char *code)
{
    (void) svc;
    static const char *const s500[] = {"InternalServerError", "InternalFailureException",
                                       "InternalFailure", NULL};
    static const char *const s503[] = {"ServiceUnavailable", "ServiceUnavailableException", NULL};
    if (code_in(code, s500)) {
        return 500;
    }
    if (code_in(code, s503)) {
        return 503;
    }
    return 400;
}

void cp_aws_error_body(const cp_aws_service *svc, const char *code, const char *msg, cp_slice extra,
                       cp_buf *out)
{
    if (!svc) {
        svc = &generic;
    }
    cp_buf_puts(out, "{\"__type\":\"");
    cp_buf_puts(out, namespace_of(svc, code));
    cp_buf_puts(out, code);
    cp_buf_putc(out, '"');
    if (msg) {
        int cap = svc->style == CP_AWS_STYLE_DYNAMODB && code_in(code, capital_message);
        cp_buf_puts(out, cap ? ",\"Message\":" : ",\"message\":");
        cp_json_put_str(out, cp_slice_str(msg));
    }
    if (extra.len) {
        cp_buf_append(out, extra.p, extra.len);
    }
    cp_buf_putc(out, '}');
}

/* ------------------------------------------------------------------------------------------ */
/* Replies                                                                                     */

/* Per-thread xorshift generator for request ids (not secrets: uniqueness is what matters). */
static uint64_t next_random(void)
{
    static _Thread_local uint64_t s;
    if (s == 0) {
        if (getrandom(&s, sizeof(s), 0) != (ssize_t) sizeof(s) || s == 0) {
            s = (uint64_t) cp_clock_mono_ns() ^ (uint64_t) (uintptr_t) &s ^ 0x9e3779b97f4a7c15ULL;
        }
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

void cp_aws_request_id(const cp_aws_service *svc, char out[64])
{
    if (svc && svc->style == CP_AWS_STYLE_DYNAMODB) {
        static const char alnum[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        for (int i = 0; i < 52; i++) {
            out[i] = alnum[next_random() % 36];
        }
        out[52] = 0;
        return;
    }
    uint64_t a = next_random(), b = next_random();
    /* RFC 4122 version 4 layout. */
    snprintf(out, 64, "%08x-%04x-4%03x-%04x-%012llx", (unsigned) (a >> 32),
             (unsigned) (a >> 16) & 0xffff, (unsigned) a & 0xfff,
             (unsigned) (0x8000 | ((b >> 48) & 0x3fff)),
             (unsigned long long) (b & 0xffffffffffffULL));
}

void cp_aws_finish(cp_http_resp *resp, const cp_aws_service *svc)
{
    if (!svc) {
        svc = &generic;
    }
    char id[64];
    cp_aws_request_id(svc, id);
    cp_http_resp_add_header(resp, "x-amzn-RequestId", cp_slice_str(id));
    if (svc->style == CP_AWS_STYLE_BARE) {
        /* Kinesis adds an opaque extended id; clients log it, nobody parses it. */
        unsigned char raw[54];
        for (size_t i = 0; i < sizeof(raw); i += 8) {
            uint64_t r = next_random();
            memcpy(raw + i, &r, sizeof(raw) - i < 8 ? sizeof(raw) - i : 8);
        }
        cp_buf id2 = CP_BUF_INIT;
        cp_base64_encode(cp_slice_of((const char *) raw, sizeof(raw)), &id2);
        cp_http_resp_add_header(resp, "x-amz-id-2", cp_buf_slice(&id2));
        cp_buf_free(&id2);
    }
    char date[30];
    cp_http_date(cp_clock_now_ms() / 1000, date);
    cp_http_resp_add_header(resp, "Date", cp_slice_str(date));
    cp_http_resp_add_headerf(resp, "Content-Type", "application/x-amz-json-%s", svc->json_version);
    if (svc->crc32) {
        uint32_t crc = cp_crc32(0, resp->body.p ? resp->body.p : "", resp->body.len);
        cp_http_resp_add_headerf(resp, "x-amz-crc32", "%u", crc);
    }
}

int cp_aws_reply_error_extra(cp_http_resp *resp, const cp_aws_service *svc, const char *code,
                             const char *msg, cp_slice extra)
{
    if (!svc) {
        svc = &generic;
    }
    /* An error replaces whatever the handler had started to write. */
    cp_http_resp_reset(resp);
    resp->status = cp_aws_error_status(svc, code);
    cp_aws_error_body(svc, code, msg, extra, &resp->body);
    cp_aws_finish(resp, svc);
    return CP_EFAIL;
}

int cp_aws_reply_error(cp_http_resp *resp, const cp_aws_service *svc, const char *code,
                       const char *msg)
{
    return cp_aws_reply_error_extra(resp, svc, code, msg, cp_slice_of("", 0));
}

int cp_aws_reply_errorf(cp_http_resp *resp, const cp_aws_service *svc, const char *code,
                        const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return cp_aws_reply_error(resp, svc, code, msg);
}
