/* SPDX-License-Identifier: MIT */
/*
 * RecordDeAggregation: split one record into its sub-records (firehose.md 5.6), before any
 * other processor. SubRecordType JSON splits consecutive top-level JSON objects, back to back
 * or separated by whitespace/newlines (JSONL); anything else, a JSON array in particular, is
 * invalid input and the record fails (processing-failed). DELIMITED splits on the bytes of the
 * base64 Delimiter. At most 500 sub-records per record, as AWS caps it.
 *
 * Sub-records keep their parent's source position and arrival time; `sub` numbers them
 * (parent.sub * 500 + index), so positions stay unique and Lambda recordIds reproducible. Each
 * sub-record's rawData is its own bytes. Choices where AWS documents nothing: a record with no
 * sub-records at all (empty, only whitespace, only delimiters) is Dropped; empty pieces between
 * delimiters are skipped; more than 500 sub-records fail the whole record.
 */
#include "delivery/processor.h"

#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/json.h"
#include "core/mem.h"
#include "delivery/processors/processors_int.h"

#define DEAGG_MAX 500 /* sub-records per record [DG] */

typedef struct deagg_ctx {
    int json;         /* 1: JSON, 0: DELIMITED */
    cp_buf delimiter; /* decoded delimiter bytes (DELIMITED) */
} deagg_ctx;

static const char *const CODE_INVALID = "RecordDeAggregation.InvalidJson";
static const char *const CODE_LIMIT = "RecordDeAggregation.SubRecordLimitExceeded";

static int deagg_init(const cp_processor_param *params, size_t nparams, const cp_processor_env *env,
                      void **out, cp_err *err)
{
    static const char *const allowed[] = {"SubRecordType", "Delimiter", NULL};
    (void) env;
    int rc = cp__proc_check_params(params, nparams, "RecordDeAggregation", allowed, err);
    if (rc < 0) {
        return rc;
    }
    const char *type = cp__proc_param(params, nparams, "SubRecordType");
    const char *delim = cp__proc_param(params, nparams, "Delimiter");
    /* CDK emits upper case, the DG prose says "Delimited": accept either spelling. */
    int json;
    if (type && strcasecmp(type, "JSON") == 0) {
        json = 1;
    } else if (type && strcasecmp(type, "DELIMITED") == 0) {
        json = 0;
    } else if (!type) {
        return cp_err_set(err, CP_EINVAL,
                          "SubRecordType is required for processor type RecordDeAggregation.");
    } else {
        return cp_err_set(err, CP_EINVAL,
                          "SubRecordType %s is not supported; use JSON or DELIMITED.", type);
    }
    deagg_ctx *ctx = cp_calloc(1, sizeof(*ctx));
    ctx->json = json;
    if (!json) {
        if (!delim) {
            cp_free(ctx);
            return cp_err_set(err, CP_EINVAL,
                              "Delimiter is required when SubRecordType is DELIMITED.");
        }
        if (cp_base64_decode(cp_slice_str(delim), &ctx->delimiter) < 0 || ctx->delimiter.len == 0) {
            cp_buf_free(&ctx->delimiter);
            cp_free(ctx);
            return cp_err_set(err, CP_EINVAL,
                              "Delimiter must be the base64 encoding of a non-empty delimiter.");
        }
    }
    *out = ctx;
    return CP_OK;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Split `in` into JSON objects; returns the count (> DEAGG_MAX means too many), or -1 with
 * *why set for invalid input. subs gets at most DEAGG_MAX slices. */
static int split_json(cp_slice in, cp_slice *subs, const char **why)
{
    const char *p = in.p, *e = in.p + in.len;
    int n = 0;
    for (;;) {
        while (p < e && is_ws(*p)) {
            p++;
        }
        if (p == e) {
            return n;
        }
        if (*p != '{') {
            *why = *p == '[' ? "JSON arrays are not valid input for de-aggregation; send objects "
                               "back to back or one per line"
                             : "The record is not a sequence of JSON objects";
            return -1;
        }
        /* The lexer wants one document: lex just this object and stop at its closing brace
         * (asking for the next token would reject the objects that follow as trailing). */
        cp_json_lexer lx;
        cp_json_tok t;
        cp_json_lexer_init(&lx, (cp_slice){p, (size_t) (e - p)});
        if (cp_json_next(&lx, &t) < 0 || cp_json_skip(&lx, &t) < 0) {
            *why = "The record is not a sequence of JSON objects";
            return -1;
        }
        if (n < DEAGG_MAX) {
            subs[n] = (cp_slice){p, (size_t) (lx.p - p)};
        }
        n++;
        if (n > DEAGG_MAX) {
            return n;
        }
        p = lx.p;
    }
}

static int split_delimited(cp_slice in, cp_slice delim, cp_slice *subs)
{
    const char *p = in.p, *e = in.p + in.len;
    int n = 0;
    while (p < e) {
        const char *q = memmem(p, (size_t) (e - p), delim.p, delim.len);
        const char *end = q ? q : e;
        if (end > p) {
            if (n < DEAGG_MAX) {
                subs[n] = (cp_slice){p, (size_t) (end - p)};
            }
            if (++n > DEAGG_MAX) {
                return n;
            }
        }
        p = q ? q + delim.len : e;
    }
    return n;
}

static int deagg_apply(void *vctx, cp_batch *batch, cp_err *err)
{
    deagg_ctx *ctx = vctx;
    (void) err;
    cp_slice *subs = cp_malloc(DEAGG_MAX * sizeof(*subs));
    size_t cap = batch->n + 16, n = 0;
    cp_drec *out = cp_malloc(cap * sizeof(*out));
    for (size_t i = 0; i < batch->n; i++) {
        cp_drec r = batch->recs[i];
        int k = 1;
        const char *why = NULL;
        if (r.result == CP_REC_OK) {
            k = ctx->json ? split_json(r.data, subs, &why)
                          : split_delimited(r.data, cp_buf_slice(&ctx->delimiter), subs);
            if (k < 0) {
                cp_drec_fail(batch, &r, "processing-failed", CODE_INVALID, why);
                r.attempts = 1;
                k = 1;
            } else if (k > DEAGG_MAX) {
                cp_drec_fail(batch, &r, "processing-failed", CODE_LIMIT,
                             "Record de-aggregation is capped at 500 sub-records per record");
                r.attempts = 1;
                k = 1;
            } else if (k == 0) {
                r.result = CP_REC_DROPPED;
                k = 1;
            } else {
                if (n + (size_t) k > cap) {
                    cap = (n + (size_t) k) * 2;
                    out = cp_realloc(out, cap * sizeof(*out));
                }
                for (int j = 0; j < k; j++) {
                    cp_drec s = r;
                    s.sub = r.sub * DEAGG_MAX + (uint32_t) j;
                    s.data = s.raw = subs[j];
                    out[n++] = s;
                }
                continue;
            }
        }
        if (n + 1 > cap) {
            cap *= 2;
            out = cp_realloc(out, cap * sizeof(*out));
        }
        out[n++] = r;
    }
    cp_free(subs);
    /* Swap in the rebuilt array; batch.c frees recs with cp_free and grows it by cap. */
    cp_free(batch->recs);
    batch->recs = out;
    batch->n = n;
    batch->cap = cap;
    return CP_OK;
}

static void deagg_destroy(void *vctx)
{
    deagg_ctx *ctx = vctx;
    if (ctx) {
        cp_buf_free(&ctx->delimiter);
        cp_free(ctx);
    }
}

const cp_processor_ops cp_processor_deagg = {
    .abi = CP_PROCESSOR_ABI,
    .type = "RecordDeAggregation",
    .summary = "split records into JSON objects or on a delimiter (at most 500 each)",
    .order = CP__ORDER_DEAGG,
    .init = deagg_init,
    .apply = deagg_apply,
    .destroy = deagg_destroy,
};
