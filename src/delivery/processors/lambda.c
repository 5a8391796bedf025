/* SPDX-License-Identifier: MIT */
/*
 * Lambda: Firehose's data transformation through a Lambda function (firehose.md 3). apply
 * splits the batch into invocations (at most BufferSizeInMBs of record data each and never a
 * request over Lambda's 6 MiB cap), builds the exact Firehose event for each, invokes the
 * function through env->invoke with up to CP_LAMBDA_MAX_INFLIGHT invocations in flight (a
 * small pool of threads started per apply call; the calling thread works too), and applies
 * the response contract per record:
 *
 *   Ok + data             the decoded bytes replace the record; metadata.partitionKeys become
 *                         its Lambda partition keys (null or "" values are left out)
 *   Dropped               gone, no error document
 *   ProcessingFailed      Lambda.ProcessingFailedStatus
 *   id not returned       Lambda.MissingRecordId (also for every record when "records" is absent)
 *   id returned twice     Lambda.DuplicatedRecordId
 *   Ok without data       Lambda.JsonProcessingException with the service's null-data message
 *   unparseable response, wrong shape, unknown result, bad base64
 *                         Lambda.JsonProcessingException for every record of the invocation
 *   ids not in the batch  ignored
 *
 * Only invocation-level failures are retried, NumberOfRetries times with exponential backoff:
 * a function error (it threw, timed out, or answered over 6 MiB), throttling, a missing
 * function, a transport failure. After the last attempt every record of that invocation fails
 * with the last failure's code. A response the function returned is final however malformed.
 * Every failure is error type processing-failed with attempts = invocations made. apply always
 * returns CP_OK: failures are per record, as Firehose reports them.
 *
 * recordIds are the record's sequence number (stream/seq.h) followed by its sub-record index in
 * 10 digits: unique within a batch and the same on every retry and replay.
 */
#include "delivery/processors/lambda.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/base64.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/mem.h"
#include "delivery/processor.h"
#include "delivery/processors/processors_int.h"
#include "stream/seq.h"

#define RETRIES_MAX 100 /* AWS does not range-check NumberOfRetries; keep a stuck batch finite */
#define ID_MAX      64

static const char *const TYPE_FAILED = "processing-failed";

static const char *const MSG_FUNCTION_ERROR =
    "The Lambda function was successfully invoked but it returned an error result.";
static const char *const MSG_MISSING =
    "One or more record Ids were not returned. Ensure that the Lambda function returns all "
    "received record Ids.";
static const char *const MSG_DUPLICATED =
    "Multiple records were returned with the same record Id. Ensure that the Lambda function "
    "returns a unique record Id for each record.";
static const char *const MSG_PROCESSING_FAILED = "ProcessingFailed status set for record";
static const char *const MSG_JSON =
    "There was an error parsing returned records from the Lambda function. Ensure that the "
    "returned records follow the status model required by Kinesis Firehose.";
static const char *const MSG_NULL_DATA =
    "The data field cannot be null when the SourceType is DirectPut or KinesisStreamAsSource "
    "and processing result is Ok. The value field cannot be null when the SourceType is "
    "MSKAsSource and processing result is Ok.";

typedef struct lambda_ctx {
    char *arn, *role_arn;
    char *stream_arn, *source_arn, *region;
    int kinesis;
    int retries;
    size_t buffer_bytes;
    int interval_s;
    int (*invoke)(void *invoke_ctx, const char *function_arn, cp_slice payload, cp_buf *response,
                  int *function_error, cp_err *err);
    void *invoke_ctx;
} lambda_ctx;

static atomic_int backoff_base_ms = 1000, backoff_max_ms = 10000;

#ifdef CP_TESTING
void cp_processor_lambda_set_backoff(int base_ms, int max_ms)
{
    atomic_store(&backoff_base_ms, base_ms);
    atomic_store(&backoff_max_ms, max_ms);
}
#endif

void cp_processor_lambda_hints(const void *vctx, cp_lambda_hints *out)
{
    const lambda_ctx *ctx = vctx;
    out->buffer_bytes = ctx->buffer_bytes;
    out->interval_s = ctx->interval_s;
    out->retries = ctx->retries;
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                               */

static void lambda_destroy(void *vctx)
{
    lambda_ctx *ctx = vctx;
    if (!ctx) {
        return;
    }
    cp_free(ctx->arn);
    cp_free(ctx->role_arn);
    cp_free(ctx->stream_arn);
    cp_free(ctx->source_arn);
    cp_free(ctx->region);
    cp_free(ctx);
}

static int parse_uint(const char *s, long max, long *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9') {
        return CP_EINVAL;
    }
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno == ERANGE) {
        return CP_EINVAL;
    }
    *out = v > max ? max : v;
    return CP_OK;
}

static int lambda_init(const cp_processor_param *params, size_t nparams,
                       const cp_processor_env *env, void **out, cp_err *err)
{
    static const char *const allowed[] = {"LambdaArn",       "NumberOfRetries",         "RoleArn",
                                          "BufferSizeInMBs", "BufferIntervalInSeconds", NULL};
    int rc = cp__proc_check_params(params, nparams, "Lambda", allowed, err);
    if (rc < 0) {
        return rc;
    }
    const char *arn = cp__proc_param(params, nparams, "LambdaArn");
    const char *retries = cp__proc_param(params, nparams, "NumberOfRetries");
    const char *size = cp__proc_param(params, nparams, "BufferSizeInMBs");
    const char *interval = cp__proc_param(params, nparams, "BufferIntervalInSeconds");
    if (!arn) {
        return cp_err_set(err, CP_EINVAL, "LambdaArn is required for processor type Lambda.");
    }
    if (!env || !env->invoke || !env->delivery_stream_arn) {
        return cp_err_set(err, CP_EINVAL, "Lambda processing is not available here.");
    }
    long n = 3;
    if (retries && parse_uint(retries, RETRIES_MAX, &n) < 0) {
        return cp_err_set(err, CP_EINVAL, "NumberOfRetries must be a non-negative integer.");
    }
    double mb = 1.0;
    if (size) {
        char *end;
        mb = strtod(size, &end);
        /* The range is 0.2-3 MB; the comparison tolerates the binary form of "0.2". */
        if (end == size || *end || !(mb >= 0.2 - 1e-9 && mb <= 3.0)) {
            return cp_err_set(err, CP_EINVAL,
                              "BufferSizeInMBs must be a number between 0.2 and 3.");
        }
    }
    long secs = 60;
    if (interval && (parse_uint(interval, 901, &secs) < 0 || secs > 900)) {
        return cp_err_set(err, CP_EINVAL,
                          "BufferIntervalInSeconds must be an integer between 0 and 900.");
    }
    lambda_ctx *ctx = cp_calloc(1, sizeof(*ctx));
    ctx->arn = cp_strdup(arn);
    const char *role = cp__proc_param(params, nparams, "RoleArn");
    ctx->role_arn = role ? cp_strdup(role) : NULL;
    ctx->stream_arn = cp_strdup(env->delivery_stream_arn);
    ctx->kinesis = env->kinesis_source && env->source_stream_arn;
    ctx->source_arn = ctx->kinesis ? cp_strdup(env->source_stream_arn) : NULL;
    ctx->region = env->region ? cp_strdup(env->region) : NULL;
    ctx->retries = (int) n;
    ctx->buffer_bytes = (size_t) (mb * 1024 * 1024);
    ctx->interval_s = (int) secs;
    ctx->invoke = env->invoke;
    ctx->invoke_ctx = env->invoke_ctx;
    *out = ctx;
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                    */

typedef struct rid {
    char s[ID_MAX];
    uint8_t len;
} rid;

/* Open-addressing table from recordId to the record's index among the batch's OK records. */
typedef struct id_table {
    uint32_t *slots; /* index + 1; 0 = empty */
    size_t mask;
    const rid *ids;
} id_table;

static void table_init(id_table *t, const rid *ids, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2) {
        cap *= 2;
    }
    t->slots = cp_calloc(cap, sizeof(*t->slots));
    t->mask = cap - 1;
    t->ids = ids;
}

static uint32_t *table_slot(id_table *t, cp_slice key)
{
    size_t h = (size_t) cp_fnv1a64(key.p, key.len) & t->mask;
    for (;; h = (h + 1) & t->mask) {
        uint32_t v = t->slots[h];
        if (!v || cp_slice_eq(cp_slice_of(t->ids[v - 1].s, t->ids[v - 1].len), key)) {
            return &t->slots[h];
        }
    }
}

static void make_id(const cp_drec *r, rid *out)
{
    char seq[CP_SEQ_STR_MAX];
    cp_seq_format(r->shard, r->seq, seq);
    out->len = (uint8_t) snprintf(out->s, sizeof(out->s), "%s%010" PRIu32, seq, r->sub);
}

static void put_uuid(char out[36])
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b)) {
        /* getrandom on 16 bytes does not fail short on Linux; fall back to the clock anyway */
        uint64_t t = (uint64_t) time(NULL) ^ (uint64_t) clock();
        memcpy(b, &t, 8);
        memcpy(b + 8, &t, 8);
    }
    b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);
    char hex[33];
    cp_hex(b, 16, hex);
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
}

#define INVOCATION_ID_AT 17 /* strlen("{\"invocationId\":\"") */

typedef struct chunk {
    size_t first, count; /* a range of the batch's OK records */
    cp_buf payload;
    cp_buf response;
    int attempts;
    const char *code; /* NULL: the last attempt returned a response */
    char msg[256];
} chunk;

static void begin_payload(const lambda_ctx *ctx, cp_buf *b)
{
    cp_buf_puts(b, "{\"invocationId\":\"00000000-0000-0000-0000-000000000000\"");
    cp_buf_putc(b, ',');
    cp_json_put_kv_str(b, "deliveryStreamArn", cp_slice_str(ctx->stream_arn));
    if (ctx->kinesis) {
        cp_buf_putc(b, ',');
        cp_json_put_kv_str(b, "sourceKinesisStreamArn", cp_slice_str(ctx->source_arn));
    }
    if (ctx->region) {
        cp_buf_putc(b, ',');
        cp_json_put_kv_str(b, "region", cp_slice_str(ctx->region));
    }
    cp_buf_puts(b, ",\"records\":[");
}

static void put_record(const lambda_ctx *ctx, const cp_drec *r, const rid *id, cp_buf *b)
{
    cp_json_put_kv_str(b, "recordId", cp_slice_of(id->s, id->len));
    cp_buf_printf(b, ",\"approximateArrivalTimestamp\":%" PRId64 ",\"data\":\"", r->arrival_ms);
    cp_base64_encode(r->data, b);
    cp_buf_putc(b, '"');
    if (ctx->kinesis) {
        char seq[CP_SEQ_STR_MAX];
        cp_seq_format(r->shard, r->seq, seq);
        cp_buf_printf(b, ",\"kinesisRecordMetadata\":{\"shardId\":\"shardId-%012" PRIu32 "\",",
                      r->shard);
        cp_json_put_kv_str(b, "partitionKey", r->source_pk);
        cp_buf_printf(b,
                      ",\"approximateArrivalTimestamp\":%" PRId64 ",\"sequenceNumber\":\"%s\","
                      "\"subsequenceNumber\":%" PRIu32 "}",
                      r->arrival_ms, seq, r->sub);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Invocation with retries                                                                     */

static void backoff(int attempt)
{
    long ms = atomic_load(&backoff_base_ms);
    long max = atomic_load(&backoff_max_ms);
    for (int i = 1; i < attempt && ms < max; i++) {
        ms *= 2;
    }
    if (ms > max) {
        ms = max;
    }
    if (ms <= 0) {
        return;
    }
    /* Jitter (up to +25%) keeps throttled concurrent invocations from retrying in lockstep. */
    unsigned char j = 0;
    if (getrandom(&j, 1, 0) == 1) {
        ms += ms * j / 1024;
    }
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Classify one attempt; returns 1 when a response is final (success or not retryable). */
static int attempt_once(const lambda_ctx *ctx, chunk *c)
{
    cp_err err = {0};
    int ferr = 0;
    char uuid[36];
    put_uuid(uuid);
    memcpy(c->payload.p + INVOCATION_ID_AT, uuid, 36);
    cp_buf_reset(&c->response);
    int rc = ctx->invoke(ctx->invoke_ctx, ctx->arn, cp_buf_slice(&c->payload), &c->response, &ferr,
                         &err);
    c->attempts++;
    c->code = "Lambda.FunctionError";
    if (rc == CP_OK && !ferr && c->response.len <= CP_LAMBDA_PAYLOAD_MAX) {
        c->code = NULL;
        return 1;
    }
    if ((rc == CP_OK && !ferr) || rc == CP_ETOOBIG) {
        /* Lambda itself fails an oversized response as a function error. */
        snprintf(c->msg, sizeof(c->msg),
                 "Response payload size exceeded maximum allowed payload size (%zu bytes).",
                 CP_LAMBDA_PAYLOAD_MAX);
    } else if (rc == CP_OK) {
        const char *to =
            memmem(c->response.p ? c->response.p : "", c->response.len, "Task timed out", 14);
        if (to) {
            /* Lambda's timeout text ("Task timed out after 3.00 seconds") is what users search
             * their logs for; keep it rather than the generic sentence. */
            size_t n = strcspn(to, "\"");
            snprintf(c->msg, sizeof(c->msg), "%.*s", (int) (n < 200 ? n : 200), to);
        } else {
            snprintf(c->msg, sizeof(c->msg), "%s", MSG_FUNCTION_ERROR);
        }
    } else if (rc == CP_ENOTFOUND) {
        c->code = "Lambda.ResourceNotFound";
        snprintf(c->msg, sizeof(c->msg), "%s",
                 "The specified Lambda function does not exist. Use a different function that "
                 "does exist.");
    } else if (rc == CP_EAGAIN || rc == CP_ELIMIT) {
        c->code = "Lambda.InvokeLimitExceeded";
        snprintf(c->msg, sizeof(c->msg), "%s",
                 "The Lambda concurrent execution limit is exceeded. Increase the concurrent "
                 "execution limit.");
    } else if (rc == -EACCES || rc == -EPERM) {
        c->code = "Lambda.InvokeAccessDenied";
        snprintf(c->msg, sizeof(c->msg), "%s",
                 "Access was denied. Ensure that the access policy allows access to the Lambda "
                 "function.");
    } else {
        /* A transport failure (endpoint down, network timeout). AWS documents no code for it;
         * it is retried like a function error and reported as one. */
        snprintf(c->msg, sizeof(c->msg), "The Lambda function could not be invoked: %.200s",
                 err.msg[0] ? err.msg : cp_err_name(rc));
    }
    return 0;
}

static void run_chunk(const lambda_ctx *ctx, chunk *c)
{
    for (int attempt = 1;; attempt++) {
        if (attempt_once(ctx, c) || attempt > ctx->retries) {
            return;
        }
        backoff(attempt);
    }
}

typedef struct pool {
    const lambda_ctx *ctx;
    chunk **chunks;
    size_t n;
    atomic_size_t next;
} pool;

static void *pool_worker(void *arg)
{
    pool *p = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n) {
            return NULL;
        }
        run_chunk(p->ctx, p->chunks[i]);
    }
}

static void run_all(const lambda_ctx *ctx, chunk **chunks, size_t n)
{
    pool p = {.ctx = ctx, .chunks = chunks, .n = n};
    atomic_init(&p.next, 0);
    pthread_t th[CP_LAMBDA_MAX_INFLIGHT - 1];
    size_t nth = 0;
    size_t want = n < CP_LAMBDA_MAX_INFLIGHT ? n : CP_LAMBDA_MAX_INFLIGHT;
    /* The calling thread is one of the workers; a failed pthread_create only lowers the
     * concurrency, never the result. */
    while (nth + 1 < want && pthread_create(&th[nth], NULL, pool_worker, &p) == 0) {
        nth++;
    }
    pool_worker(&p);
    for (size_t i = 0; i < nth; i++) {
        pthread_join(th[i], NULL);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Responses                                                                                   */

typedef struct entry {
    size_t pos;              /* OK-record index, or SIZE_MAX when the id is not ours */
    int result;              /* CP_REC_OK / DROPPED / FAILED */
    cp_json_tok data;        /* STRING, or type END when absent or null */
    cp_slice pkeys;          /* raw text of metadata.partitionKeys, p NULL when absent */
    uint16_t nkeys;          /* usable keys in pkeys */
    size_t dec_off, dec_len; /* decoded data in the scratch buffer */
} entry;

typedef struct response {
    entry *v;
    size_t n, cap;
    int has_records;
} response;

static int tok_text(const cp_json_tok *t, cp_buf *scratch, cp_slice *out)
{
    return cp_json_tok_string(t, scratch, out);
}

/* Validate metadata.partitionKeys (apply 0: *count gets the usable keys) or set them on r
 * (apply 1, after validation; r->lambda_keys must have room for *count). */
static int parse_partition_keys(cp_slice raw, cp_batch *batch, cp_drec *r, cp_buf *scratch,
                                int apply, uint16_t *count)
{
    cp_json_lexer lx;
    cp_json_tok k, v;
    cp_json_lexer_init(&lx, raw);
    if (cp_json_next(&lx, &k) < 0 || k.type != CP_JSON_OBJ_BEGIN) {
        return CP_EINVAL;
    }
    for (int n = 0;;) {
        if (cp_json_next(&lx, &k) < 0) {
            return CP_EINVAL;
        }
        if (k.type == CP_JSON_OBJ_END) {
            return CP_OK;
        }
        if (cp_json_next(&lx, &v) < 0) {
            return CP_EINVAL;
        }
        /* partitionKeys is a map of string to string; a number is taken as its text, as a
         * lenient JSON binder would. */
        if (v.type != CP_JSON_STRING && v.type != CP_JSON_NUMBER && v.type != CP_JSON_NULL) {
            return CP_EINVAL;
        }
        if (++n > CP_PKEY_MAX) {
            return CP_EINVAL;
        }
        if (v.type == CP_JSON_NULL || (v.type == CP_JSON_STRING && v.s.len == 0)) {
            continue; /* null or "" is no key: a prefix that needs it fails partitioning */
        }
        if (!apply) {
            ++*count;
            continue;
        }
        cp_slice val, name;
        if (tok_text(&v, scratch, &val) < 0) {
            return CP_EINVAL;
        }
        val = cp_batch_copy(batch, val);
        if (tok_text(&k, scratch, &name) < 0) {
            return CP_EINVAL;
        }
        r->lambda_keys[r->nlambda_keys++] = (cp_pkey){cp_batch_copy(batch, name), val};
    }
}

/* One element of "records". CP_EINVAL for a shape error (the whole response is rejected). */
static int parse_entry(cp_json_lexer *lx, id_table *ids, cp_buf *scratch, response *resp)
{
    cp_json_tok k, v, id = {0}, result = {0};
    entry e = {.pos = SIZE_MAX};
    for (;;) {
        if (cp_json_next(lx, &k) < 0) {
            return CP_EINVAL;
        }
        if (k.type == CP_JSON_OBJ_END) {
            break;
        }
        if (cp_json_next(lx, &v) < 0) {
            return CP_EINVAL;
        }
        if (cp_json_tok_is(&k, "recordId")) {
            if (v.type != CP_JSON_STRING && v.type != CP_JSON_NULL) {
                return CP_EINVAL;
            }
            id = v;
        } else if (cp_json_tok_is(&k, "result")) {
            if (v.type != CP_JSON_STRING && v.type != CP_JSON_NULL) {
                return CP_EINVAL;
            }
            result = v;
        } else if (cp_json_tok_is(&k, "data")) {
            if (v.type != CP_JSON_STRING && v.type != CP_JSON_NULL) {
                return CP_EINVAL;
            }
            e.data = v.type == CP_JSON_STRING ? v : (cp_json_tok){0};
        } else if (cp_json_tok_is(&k, "metadata") && v.type == CP_JSON_OBJ_BEGIN) {
            for (;;) {
                cp_json_tok mk, mv;
                if (cp_json_next(lx, &mk) < 0) {
                    return CP_EINVAL;
                }
                if (mk.type == CP_JSON_OBJ_END) {
                    break;
                }
                if (cp_json_next(lx, &mv) < 0) {
                    return CP_EINVAL;
                }
                if (cp_json_tok_is(&mk, "partitionKeys") && mv.type == CP_JSON_OBJ_BEGIN) {
                    const char *start = lx->p - 1;
                    if (cp_json_skip(lx, &mv) < 0) {
                        return CP_EINVAL;
                    }
                    e.pkeys = (cp_slice){start, (size_t) (lx->p - start)};
                } else if (cp_json_tok_is(&mk, "partitionKeys") && mv.type != CP_JSON_NULL) {
                    return CP_EINVAL;
                } else if (cp_json_skip(lx, &mv) < 0) {
                    return CP_EINVAL;
                }
            }
        } else if (cp_json_tok_is(&k, "metadata") && v.type != CP_JSON_NULL) {
            return CP_EINVAL;
        } else if (cp_json_skip(lx, &v) < 0) {
            return CP_EINVAL;
        }
    }
    if (id.type != CP_JSON_STRING) {
        return CP_OK; /* no id: the entry accounts for no record */
    }
    if (cp_json_tok_is(&result, "Ok")) {
        e.result = CP_REC_OK;
    } else if (cp_json_tok_is(&result, "Dropped")) {
        e.result = CP_REC_DROPPED;
    } else if (cp_json_tok_is(&result, "ProcessingFailed")) {
        e.result = CP_REC_FAILED;
    } else {
        return CP_EINVAL; /* result is an enum: anything else fails deserialization */
    }
    if (e.pkeys.p && parse_partition_keys(e.pkeys, NULL, NULL, scratch, 0, &e.nkeys) < 0) {
        return CP_EINVAL;
    }
    cp_slice key;
    if (tok_text(&id, scratch, &key) < 0) {
        return CP_EINVAL;
    }
    if (key.len < ID_MAX) {
        uint32_t *slot = table_slot(ids, key);
        if (*slot) {
            e.pos = *slot - 1;
        }
    }
    if (resp->n == resp->cap) {
        resp->cap = resp->cap ? resp->cap * 2 : 64;
        resp->v = cp_realloc(resp->v, resp->cap * sizeof(*resp->v));
    }
    resp->v[resp->n++] = e;
    return CP_OK;
}

static int parse_response(cp_slice body, id_table *ids, cp_buf *scratch, response *resp)
{
    cp_json_lexer lx;
    cp_json_tok t, v;
    cp_json_lexer_init(&lx, body);
    if (cp_json_next(&lx, &t) < 0 || t.type != CP_JSON_OBJ_BEGIN) {
        return CP_EINVAL;
    }
    for (;;) {
        if (cp_json_next(&lx, &t) < 0) {
            return CP_EINVAL;
        }
        if (t.type == CP_JSON_OBJ_END) {
            break;
        }
        if (cp_json_next(&lx, &v) < 0) {
            return CP_EINVAL;
        }
        if (!cp_json_tok_is(&t, "records")) {
            if (cp_json_skip(&lx, &v) < 0) {
                return CP_EINVAL;
            }
            continue;
        }
        if (v.type == CP_JSON_NULL) {
            continue;
        }
        if (v.type != CP_JSON_ARR_BEGIN) {
            return CP_EINVAL;
        }
        resp->has_records = 1;
        for (;;) {
            if (cp_json_next(&lx, &v) < 0) {
                return CP_EINVAL;
            }
            if (v.type == CP_JSON_ARR_END) {
                break;
            }
            if (v.type != CP_JSON_OBJ_BEGIN || parse_entry(&lx, ids, scratch, resp) < 0) {
                return CP_EINVAL;
            }
        }
    }
    return cp_json_next(&lx, &t);
}

static void fail_range(cp_batch *batch, const size_t *ok, const chunk *c, const char *code,
                       const char *msg)
{
    for (size_t j = c->first; j < c->first + c->count; j++) {
        cp_drec *r = &batch->recs[ok[j]];
        cp_drec_fail(batch, r, TYPE_FAILED, code, msg);
        r->attempts = (uint32_t) c->attempts;
    }
}

/* Apply one chunk's final response to its records. */
static void settle(cp_batch *batch, const size_t *ok, const chunk *c, id_table *ids, uint32_t *seen,
                   size_t *first_entry, cp_buf *scratch, cp_buf *dec)
{
    if (c->code) {
        fail_range(batch, ok, c, c->code, c->msg);
        return;
    }
    response resp = {0};
    cp_buf_reset(dec);
    int rc = parse_response(cp_buf_slice(&c->response), ids, scratch, &resp);
    for (size_t j = c->first; j < c->first + c->count; j++) {
        seen[j] = 0;
    }
    /* Count every id of this invocation first: a duplicate fails the record whatever the
     * first occurrence said. Ids of other invocations of this batch are foreign here. */
    for (size_t i = 0; rc == CP_OK && i < resp.n; i++) {
        entry *e = &resp.v[i];
        if (e->pos == SIZE_MAX || e->pos < c->first || e->pos >= c->first + c->count) {
            e->pos = SIZE_MAX;
            continue;
        }
        if (seen[e->pos]++ == 0) {
            first_entry[e->pos] = i;
        }
    }
    /* Decode every data that will be used before changing any record: bad base64 anywhere
     * rejects the whole response, like a failed deserialization. */
    for (size_t i = 0; rc == CP_OK && i < resp.n; i++) {
        entry *e = &resp.v[i];
        if (e->pos == SIZE_MAX || seen[e->pos] != 1 || e->result != CP_REC_OK ||
            e->data.type != CP_JSON_STRING) {
            continue;
        }
        cp_slice b64;
        e->dec_off = dec->len;
        if (tok_text(&e->data, scratch, &b64) < 0 || cp_base64_decode(b64, dec) < 0) {
            rc = CP_EINVAL;
        }
        e->dec_len = dec->len - e->dec_off;
    }
    if (rc < 0) {
        fail_range(batch, ok, c, "Lambda.JsonProcessingException", MSG_JSON);
    } else if (!resp.has_records) {
        fail_range(batch, ok, c, "Lambda.MissingRecordId", MSG_MISSING);
    } else {
        for (size_t j = c->first; j < c->first + c->count; j++) {
            cp_drec *r = &batch->recs[ok[j]];
            const char *code = NULL, *msg = NULL;
            if (seen[j] == 0) {
                code = "Lambda.MissingRecordId", msg = MSG_MISSING;
            } else if (seen[j] > 1) {
                code = "Lambda.DuplicatedRecordId", msg = MSG_DUPLICATED;
            } else {
                entry *e = &resp.v[first_entry[j]];
                if (e->result == CP_REC_DROPPED) {
                    r->result = CP_REC_DROPPED;
                } else if (e->result == CP_REC_FAILED) {
                    code = "Lambda.ProcessingFailedStatus", msg = MSG_PROCESSING_FAILED;
                } else if (e->data.type != CP_JSON_STRING) {
                    code = "Lambda.JsonProcessingException", msg = MSG_NULL_DATA;
                } else {
                    r->data = cp_batch_copy(batch, cp_slice_of(dec->p + e->dec_off, e->dec_len));
                    r->nlambda_keys = 0;
                    r->lambda_keys = NULL;
                    if (e->nkeys) {
                        r->lambda_keys = cp_batch_alloc(batch, e->nkeys * sizeof(cp_pkey));
                        parse_partition_keys(e->pkeys, batch, r, scratch, 1, NULL);
                    }
                }
            }
            if (code) {
                cp_drec_fail(batch, r, TYPE_FAILED, code, msg);
                r->attempts = (uint32_t) c->attempts;
            }
        }
    }
    cp_free(resp.v);
}

/* ------------------------------------------------------------------------------------------ */
/* apply                                                                                       */

static int lambda_apply(void *vctx, cp_batch *batch, cp_err *err)
{
    const lambda_ctx *ctx = vctx;
    (void) err;
    size_t m = 0;
    for (size_t i = 0; i < batch->n; i++) {
        m += batch->recs[i].result == CP_REC_OK;
    }
    if (m == 0) {
        return CP_OK;
    }
    size_t *ok = cp_malloc(m * sizeof(*ok));
    rid *ids = cp_malloc(m * sizeof(*ids));
    id_table table;
    table_init(&table, ids, m);
    m = 0;
    for (size_t i = 0; i < batch->n; i++) {
        if (batch->recs[i].result != CP_REC_OK) {
            continue;
        }
        ok[m] = i;
        make_id(&batch->recs[i], &ids[m]);
        uint32_t *slot = table_slot(&table, cp_slice_of(ids[m].s, ids[m].len));
        if (*slot) {
            /* Two records at one position (not produced by our sources): keep ids unique. */
            ids[m].len += (uint8_t) snprintf(ids[m].s + ids[m].len, ID_MAX - ids[m].len, "-%zu", m);
            slot = table_slot(&table, cp_slice_of(ids[m].s, ids[m].len));
        }
        *slot = (uint32_t) m + 1;
        m++;
    }

    /* Split into invocations: a chunk closes before the record that would take its record
     * bytes past BufferSizeInMBs or its request past the 6 MiB cap. */
    size_t nchunks = 0, cap = 4;
    chunk *chunks = cp_calloc(cap, sizeof(*chunks));
    size_t raw = 0;
    for (size_t j = 0; j < m; j++) {
        const cp_drec *r = &batch->recs[ok[j]];
        chunk *c = nchunks ? &chunks[nchunks - 1] : NULL;
        for (int pass = 0; pass < 2; pass++) {
            if (!c) {
                if (nchunks == cap) {
                    cap *= 2;
                    chunks = cp_realloc(chunks, cap * sizeof(*chunks));
                    memset(chunks + nchunks, 0, (cap - nchunks) * sizeof(*chunks));
                }
                c = &chunks[nchunks++];
                c->first = j;
                begin_payload(ctx, &c->payload);
                raw = 0;
            }
            size_t mark = c->payload.len;
            if (c->count) {
                cp_buf_putc(&c->payload, ',');
            }
            cp_buf_putc(&c->payload, '{');
            put_record(ctx, r, &ids[j], &c->payload);
            cp_buf_putc(&c->payload, '}');
            int over =
                raw + r->data.len > ctx->buffer_bytes || c->payload.len + 2 > CP_LAMBDA_PAYLOAD_MAX;
            if (over && c->count) {
                c->payload.len = mark; /* roll back and retry in a fresh chunk */
                c->payload.p[mark] = 0;
                c = NULL;
                continue;
            }
            c->count++;
            raw += r->data.len;
            break;
        }
    }
    for (size_t i = 0; i < nchunks; i++) {
        cp_buf_puts(&chunks[i].payload, "]}");
    }

    /* A record whose request alone exceeds the cap cannot be sent at all. */
    for (size_t i = 0; i < nchunks; i++) {
        chunk *c = &chunks[i];
        if (c->payload.len > CP_LAMBDA_PAYLOAD_MAX) {
            c->code = "Lambda.RequestTooLarge";
            snprintf(c->msg, sizeof(c->msg),
                     "The record does not fit in one Lambda request of at most %zu bytes.",
                     CP_LAMBDA_PAYLOAD_MAX);
        }
    }
    /* Invoke (in parallel), then settle in batch order on this thread: the batch arena is
     * single-threaded. Oversized chunks were never sent. */
    chunk **todo = cp_malloc(nchunks * sizeof(*todo));
    size_t nt = 0;
    for (size_t i = 0; i < nchunks; i++) {
        if (!chunks[i].code) {
            todo[nt++] = &chunks[i];
        }
    }
    run_all(ctx, todo, nt);
    cp_free(todo);

    uint32_t *seen = cp_malloc(m * sizeof(*seen));
    size_t *first_entry = cp_malloc(m * sizeof(*first_entry));
    cp_buf scratch = CP_BUF_INIT, dec = CP_BUF_INIT;
    for (size_t i = 0; i < nchunks; i++) {
        settle(batch, ok, &chunks[i], &table, seen, first_entry, &scratch, &dec);
        cp_buf_free(&chunks[i].payload);
        cp_buf_free(&chunks[i].response);
    }
    cp_buf_free(&scratch);
    cp_buf_free(&dec);
    cp_free(seen);
    cp_free(first_entry);
    cp_free(chunks);
    cp_free(table.slots);
    cp_free(ids);
    cp_free(ok);
    return CP_OK;
}

const cp_processor_ops cp_processor_lambda = {
    .abi = CP_PROCESSOR_ABI,
    .type = "Lambda",
    .summary = "transform records with a Lambda function (Firehose's invocation contract)",
    .order = CP__ORDER_LAMBDA,
    .init = lambda_init,
    .apply = lambda_apply,
    .destroy = lambda_destroy,
};
