/* SPDX-License-Identifier: MIT */
/*
 * MetadataExtraction: Firehose's inline parsing for dynamic partitioning. The jq program in
 * MetadataExtractionQuery runs on each record's current bytes (after Lambda / the native
 * processor) through libjq 1.6, the engine AWS names (JsonParsingEngine "JQ-1.6"), so
 * partition keys get jq's exact semantics, strftime and friends included.
 *
 * Per record the first output must be an object of at most 50 members; each member becomes a
 * partitionKeyFromQuery key. Values: strings as they are, numbers as jq prints them, booleans
 * as true/false; null, "", arrays and objects fail the record. Input that is not one JSON
 * value, a jq runtime error or a non-object result fail it too. Every such failure is
 * partitioning-failed / DynamicPartitioning.MetadataExtractionFailed, as the service reports.
 *
 * The program is compiled once at init. A jq_state is not thread-safe, so each ctx owns one
 * guarded by a mutex; apply calls on one ctx from several threads serialize on it.
 */
#include "delivery/processor.h"

#include <jq.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "core/mem.h"
#include "delivery/processors/processors_int.h"

#define JQ_MAX_KEYS 50 /* keys per query result [CDK] */

static const char *const TYPE_FAILED = "partitioning-failed";
static const char *const CODE_FAILED = "DynamicPartitioning.MetadataExtractionFailed";

typedef struct jq_ctx {
    pthread_mutex_t mu;
    jq_state *jq;
    cp_buf errors; /* messages jq reported through its callback (compile errors) */
} jq_ctx;

/* jq reports compile errors through this callback; it owns msg. */
static void on_jq_error(void *data, jv msg)
{
    jq_ctx *ctx = data;
    msg = jq_format_error(msg);
    if (jv_get_kind(msg) == JV_KIND_STRING) {
        if (ctx->errors.len) {
            cp_buf_puts(&ctx->errors, "; ");
        }
        cp_buf_puts(&ctx->errors, jv_string_value(msg));
    }
    jv_free(msg);
}

static void jq_destroy(void *vctx)
{
    jq_ctx *ctx = vctx;
    if (!ctx) {
        return;
    }
    if (ctx->jq) {
        jq_teardown(&ctx->jq);
    }
    pthread_mutex_destroy(&ctx->mu);
    cp_buf_free(&ctx->errors);
    cp_free(ctx);
}

static int jq_init_proc(const cp_processor_param *params, size_t nparams,
                        const cp_processor_env *env, void **out, cp_err *err)
{
    static const char *const allowed[] = {"MetadataExtractionQuery", "JsonParsingEngine", NULL};
    (void) env;
    int rc = cp__proc_check_params(params, nparams, "MetadataExtraction", allowed, err);
    if (rc < 0) {
        return rc;
    }
    const char *query = cp__proc_param(params, nparams, "MetadataExtractionQuery");
    const char *engine = cp__proc_param(params, nparams, "JsonParsingEngine");
    if (!query) {
        return cp_err_set(err, CP_EINVAL,
                          "MetadataExtractionQuery is required for processor type "
                          "MetadataExtraction.");
    }
    /* AWS supports exactly one engine; an absent parameter means that one. */
    if (engine && strcmp(engine, "JQ-1.6") != 0) {
        return cp_err_set(err, CP_EINVAL,
                          "JsonParsingEngine %s is not supported; the only supported value is "
                          "JQ-1.6.",
                          engine);
    }
    jq_ctx *ctx = cp_calloc(1, sizeof(*ctx));
    pthread_mutex_init(&ctx->mu, NULL);
    ctx->jq = jq_init();
    if (!ctx->jq) {
        jq_destroy(ctx);
        return cp_err_set(err, CP_ENOMEM, "could not initialise jq");
    }
    jq_set_error_cb(ctx->jq, on_jq_error, ctx);
    if (!jq_compile(ctx->jq, query)) {
        rc = cp_err_set(err, CP_EINVAL, "MetadataExtractionQuery is not a valid jq 1.6 program: %s",
                        ctx->errors.len ? ctx->errors.p : "compile error");
        jq_destroy(ctx);
        return rc;
    }
    *out = ctx;
    return CP_OK;
}

/* The text of an invalid jv's message (consumes inv) into a fixed buffer. */
static void invalid_text(jv inv, char *buf, size_t cap)
{
    jv msg = jv_invalid_get_msg(inv);
    if (jv_get_kind(msg) == JV_KIND_STRING) {
        snprintf(buf, cap, "%s", jv_string_value(msg));
        jv_free(msg);
    } else if (jv_get_kind(msg) == JV_KIND_NULL) {
        snprintf(buf, cap, "no result");
        jv_free(msg);
    } else {
        jv_dump_string_trunc(msg, buf, cap); /* consumes msg */
    }
}

/* Set the record's query keys from the result object; a message on failure. Borrows obj. */
static const char *take_keys(cp_batch *batch, cp_drec *r, jv obj, char *why, size_t cap)
{
    int n = jv_object_length(jv_copy(obj));
    if (n > JQ_MAX_KEYS) {
        snprintf(why, cap,
                 "The metadata extraction query produced %d partition keys; at most %d "
                 "are allowed",
                 n, JQ_MAX_KEYS);
        return why;
    }
    cp_pkey *keys = n ? cp_batch_alloc(batch, (size_t) n * sizeof(cp_pkey)) : NULL;
    int k = 0;
    const char *fail = NULL;
    for (int it = jv_object_iter(obj); jv_object_iter_valid(obj, it) && !fail;
         it = jv_object_iter_next(obj, it)) {
        jv key = jv_object_iter_key(obj, it);
        jv val = jv_object_iter_value(obj, it);
        cp_slice v = {NULL, 0};
        jv dumped = jv_invalid();
        switch (jv_get_kind(val)) {
        case JV_KIND_STRING:
            v = cp_slice_of(jv_string_value(val), (size_t) jv_string_length_bytes(jv_copy(val)));
            break;
        case JV_KIND_NUMBER:
            dumped = jv_dump_string(jv_copy(val), 0);
            v = cp_slice_str(jv_string_value(dumped));
            break;
        case JV_KIND_TRUE:
            v = CP_SLICE("true");
            break;
        case JV_KIND_FALSE:
            v = CP_SLICE("false");
            break;
        case JV_KIND_ARRAY:
        case JV_KIND_OBJECT:
            fail = "partitionKeys values must be strings or numbers";
            break;
        default:
            break;
        }
        if (!fail && v.len == 0) {
            fail = "partitionKeys values must not be null or empty";
        }
        if (!fail) {
            cp_slice name =
                cp_slice_of(jv_string_value(key), (size_t) jv_string_length_bytes(jv_copy(key)));
            keys[k++] = (cp_pkey){cp_batch_copy(batch, name), cp_batch_copy(batch, v)};
        }
        jv_free(dumped);
        jv_free(key);
        jv_free(val);
    }
    if (fail) {
        return fail;
    }
    r->query_keys = keys;
    r->nquery_keys = (uint16_t) k;
    return NULL;
}

static const char *run_one(jq_ctx *ctx, cp_batch *batch, cp_drec *r, char *why, size_t cap)
{
    char msg[200];
    if (r->data.len > INT_MAX) {
        return "Non JSON record provided";
    }
    jv input = jv_parse_sized(r->data.len ? r->data.p : "", (int) r->data.len);
    if (!jv_is_valid(input)) {
        invalid_text(input, msg, sizeof(msg));
        snprintf(why, cap, "Non JSON record provided: %s", msg);
        return why;
    }
    jq_start(ctx->jq, input, 0); /* takes input */
    jv result = jq_next(ctx->jq);
    const char *fail = NULL;
    if (!jv_is_valid(result)) {
        if (jv_invalid_has_msg(jv_copy(result))) {
            invalid_text(result, msg, sizeof(msg));
            snprintf(why, cap, "The metadata extraction query failed: %s", msg);
        } else {
            jv_free(result);
            snprintf(why, cap, "The metadata extraction query produced no result");
        }
        return why;
    }
    if (jv_get_kind(result) != JV_KIND_OBJECT) {
        fail = "The metadata extraction query must produce a JSON object";
    } else {
        fail = take_keys(batch, r, result, why, cap);
    }
    jv_free(result);
    return fail;
}

static int jq_apply(void *vctx, cp_batch *batch, cp_err *err)
{
    jq_ctx *ctx = vctx;
    char why[300];
    (void) err;
    pthread_mutex_lock(&ctx->mu);
    for (size_t i = 0; i < batch->n; i++) {
        cp_drec *r = &batch->recs[i];
        if (r->result != CP_REC_OK) {
            continue;
        }
        r->nquery_keys = 0;
        r->query_keys = NULL;
        const char *fail = run_one(ctx, batch, r, why, sizeof(why));
        if (fail) {
            cp_drec_fail(batch, r, TYPE_FAILED, CODE_FAILED, fail);
            r->attempts = 1; /* one extraction attempt, as the service reports it */
        }
    }
    pthread_mutex_unlock(&ctx->mu);
    return CP_OK;
}

const cp_processor_ops cp_processor_jq = {
    .abi = CP_PROCESSOR_ABI,
    .type = "MetadataExtraction",
    .summary = "partition keys from a jq 1.6 query over each record (libjq)",
    .order = CP__ORDER_JQ,
    .init = jq_init_proc,
    .apply = jq_apply,
    .destroy = jq_destroy,
};
