/* SPDX-License-Identifier: MIT */
/*
 * The api object, the operation tables of both services, and the error path every handler
 * ends in (cp__dynamo_fail): it turns the component's CP_E* + message convention into AWS's
 * exception names.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"
#include "dynamo/dynamo_int.h"

cp_dynamo_api *cp_dynamo_api_new(cp_db *db, cp_streams *streams, const cp_dynamo_cfg *cfg)
{
    cp_dynamo_api *api = cp_calloc(1, sizeof(*api));
    api->db = db;
    api->streams = streams;
    if (cfg) {
        api->cfg = *cfg;
    }
    snprintf(api->account, sizeof(api->account), "%s",
             api->cfg.account ? api->cfg.account : CP__DYNAMO_ACCOUNT);
    api->cfg.account = api->account;
    if (!api->cfg.page_bytes) {
        api->cfg.page_bytes = 1u << 20;
    }
    if (!api->cfg.batch_get_bytes) {
        api->cfg.batch_get_bytes = 16u << 20;
    }
    if (!api->cfg.stats_max_age_ms) {
        api->cfg.stats_max_age_ms = 60000;
    }
    if (!api->cfg.iterator_ttl_ms) {
        api->cfg.iterator_ttl_ms = 15 * 60 * 1000;
    }
    if (!api->cfg.get_records_scan) {
        api->cfg.get_records_scan = 20000;
    }
    if (api->cfg.throttle && api->cfg.throttle->abi < 1) {
        api->cfg.throttle = NULL;
    }
    /* Iterators must verify after a restart (clients keep them for up to 15 minutes), so the
     * key derives from the store's persistent uuid rather than from process randomness. */
    unsigned char in[48];
    memcpy(in, "changepipe dynamodb streams iterator key v1\0\0\0\0\0", 32);
    memcpy(in + 32, cp_db_uuid(db), 16);
    cp_sha256(in, sizeof(in), api->iter_key);
    pthread_mutex_init(&api->mu, NULL);
    return api;
}

void cp_dynamo_api_free(cp_dynamo_api *api)
{
    if (!api) {
        return;
    }
    pthread_mutex_destroy(&api->mu);
    cp_free(api);
}

/* The hot operations parse their bodies in one pass with the lexer (CP_AWS_OP_RAW_JSON); the
 * control plane is validated by the dispatcher first. Every handler here reads the body with
 * the lexer either way, so the flag only saves the dispatcher's pre-pass. */
static const cp_aws_op ddb_ops[] = {
    {"CreateTable", cp__dynamo_create_table, 0},
    {"DescribeTable", cp__dynamo_describe_table, 0},
    {"ListTables", cp__dynamo_list_tables, 0},
    {"DeleteTable", cp__dynamo_delete_table, 0},
    {"UpdateTable", cp__dynamo_update_table, 0},
    {"EnableKinesisStreamingDestination", cp__dynamo_enable_kinesis, 0},
    {"DisableKinesisStreamingDestination", cp__dynamo_disable_kinesis, 0},
    {"DescribeKinesisStreamingDestination", cp__dynamo_describe_kinesis, 0},
    {"UpdateKinesisStreamingDestination", cp__dynamo_update_kinesis, 0},
    {"PutItem", cp__dynamo_put_item, CP_AWS_OP_RAW_JSON},
    {"GetItem", cp__dynamo_get_item, CP_AWS_OP_RAW_JSON},
    {"UpdateItem", cp__dynamo_update_item, CP_AWS_OP_RAW_JSON},
    {"DeleteItem", cp__dynamo_delete_item, CP_AWS_OP_RAW_JSON},
    {"BatchWriteItem", cp__dynamo_batch_write, CP_AWS_OP_RAW_JSON},
    {"BatchGetItem", cp__dynamo_batch_get, CP_AWS_OP_RAW_JSON},
    {"TransactWriteItems", cp__dynamo_transact_write, CP_AWS_OP_RAW_JSON},
    {"TransactGetItems", cp__dynamo_transact_get, CP_AWS_OP_RAW_JSON},
    {"Query", cp__dynamo_query, CP_AWS_OP_RAW_JSON},
    {"Scan", cp__dynamo_scan, CP_AWS_OP_RAW_JSON},
    {NULL, NULL, 0},
};

static const cp_aws_op streams_ops[] = {
    {"ListStreams", cp__dynamo_list_streams, 0},
    {"DescribeStream", cp__dynamo_describe_stream, 0},
    {"GetShardIterator", cp__dynamo_get_shard_iterator, 0},
    {"GetRecords", cp__dynamo_get_records, 0},
    {NULL, NULL, 0},
};

int cp_dynamo_api_register(cp_dynamo_api *api, cp_aws_router *router)
{
    if (cp_aws_router_service(router, "DynamoDB_20120810") ||
        cp_aws_router_service(router, "DynamoDBStreams_20120810")) {
        return CP_EEXIST;
    }
    int rc = cp_aws_register_service(router, "DynamoDB_20120810", NULL, NULL, ddb_ops, api);
    if (rc == CP_OK) {
        rc = cp_aws_register_service(router, "DynamoDBStreams_20120810", NULL, NULL, streams_ops,
                                     api);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                      */

int cp__dynamo_fail_code(cp__dynamo_call *c, const char *code, const char *msg)
{
    return cp_aws_reply_error(c->resp, c->req->service, code, msg);
}

int cp__dynamo_set_err(cp__dynamo_call *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cp_buf b = CP_BUF_INIT;
    char first[8];
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(first, sizeof(first), fmt, aq);
    va_end(aq);
    cp_buf_reserve(&b, (size_t) (n > 0 ? n : 0) + 1);
    vsnprintf(b.p, (size_t) n + 1, fmt, ap);
    va_end(ap);
    b.len = (size_t) n;
    cp_err_set(&c->err, code, "%s", b.p);
    c->long_msg = cp_http_scratch_strdup(c->scratch, cp_buf_slice(&b));
    cp_buf_free(&b);
    return code;
}

int cp__dynamo_fail(cp__dynamo_call *c, int rc)
{
    /* A long message is only valid while err still holds the error it was made with. */
    const char *msg = c->long_msg && strncmp(c->long_msg, c->err.msg, sizeof(c->err.msg) - 1) == 0
                          ? c->long_msg
                          : c->err.msg;
    static const char ser[] = "SerializationException";
    if (strncmp(msg, ser, sizeof(ser) - 1) == 0) {
        const char *m = msg + sizeof(ser) - 1;
        if (m[0] == ':') {
            m += m[1] == ' ' ? 2 : 1;
        }
        return cp__dynamo_fail_code(c, ser, m[0] ? m : NULL);
    }
    switch (rc) {
    case CP_EINVAL:
    case CP_ETOOBIG:
        return cp__dynamo_fail_code(c, "ValidationException", msg);
    case CP_ENOTFOUND:
        return cp__dynamo_fail_code(c, "ResourceNotFoundException",
                                    msg[0] ? msg : "Requested resource not found");
    case CP_ECONDITION:
        return cp__dynamo_fail_code(c, "ConditionalCheckFailedException",
                                    "The conditional request failed");
    case CP_EEXIST:
    case CP_EINUSE:
        return cp__dynamo_fail_code(c, "ResourceInUseException", msg);
    case CP_ELIMIT:
        return cp__dynamo_fail_code(c, "LimitExceededException", msg);
    case CP_ECLOSED:
    case CP_EAGAIN:
        return cp__dynamo_fail_code(c, "ServiceUnavailable", "The service is shutting down");
    default:
        return cp__dynamo_fail_code(c, c->req->service->internal_error, "Internal server error");
    }
}

const char *cp__dynamo_region(cp__dynamo_call *c)
{
    return cp_http_scratch_strdup(c->scratch, c->req->region);
}

/* DynamoDB accepts a table ARN wherever it takes a TableName (arn:...:table/<name>). */
const char *cp__dynamo_table_name(cp__dynamo_call *c, cp_slice name)
{
    static const char arn[] = "arn:";
    if (name.len > 4 && memcmp(name.p, arn, 4) == 0) {
        for (size_t i = 0; i + 7 <= name.len; i++) {
            if (memcmp(name.p + i, ":table/", 7) == 0) {
                cp_slice rest = cp_slice_of(name.p + i + 7, name.len - i - 7);
                const char *slash = memchr(rest.p, '/', rest.len);
                if (slash) {
                    rest.len = (size_t) (slash - rest.p);
                }
                return cp_http_scratch_strdup(c->scratch, rest);
            }
        }
    }
    return cp_http_scratch_strdup(c->scratch, name);
}
