/* SPDX-License-Identifier: MIT */
/*
 * Kinesis Data Streams API, data plane: PutRecord and PutRecords, parsed in one pass with the
 * cp_json lexer (base64 decoded straight into one buffer, no DOM), GetShardIterator and
 * GetRecords with sealed, expiring iterators, and the calls into the throttling hook.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/base64.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "kinesis/api_int.h"

#define PUT_RECORDS_MAX 500

static const char *const hash_key_pattern = "0|([1-9]\\d{0,38})";
static const char *const seq_pattern = "0|([1-9]\\d{0,128})";
static const char *const iter_types[] = {
    "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", NULL};

static int bad_json(const cp_aws_req *req, cp_http_resp *resp)
{
    return cp_aws_reply_error(resp, req->service, "SerializationException", NULL);
}

/* 0|[1-9]\d{0,max_digits-1}: the model's pattern for hash keys and sequence numbers. */
static int decimal_ok(cp_slice s, size_t max_digits)
{
    if (s.len == 1 && s.p[0] == '0') {
        return 1;
    }
    if (s.len == 0 || s.len > max_digits || s.p[0] < '1' || s.p[0] > '9') {
        return 0;
    }
    for (size_t i = 1; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            return 0;
        }
    }
    return 1;
}

/* ================================================================ PutRecord(s): one pass
 *
 * PutRecords carries the load (500 records, 5 MiB): the body is lexed once, Data is base64
 * decoded straight into one buffer and partition keys are borrowed from the body, so a call
 * costs a handful of allocations whatever its size. Shape checks run after the pass, in a
 * fixed order, because AWS deserialises the whole body before validating anything.
 */

typedef struct rec_in {
    cp_slice pk, ehk;          /* borrow the body or the request scratch */
    size_t data_off, data_len; /* in put_req.data (offsets: the buffer grows while parsing) */
    unsigned char has_pk, has_ehk, has_data, is_null;
} rec_in;

typedef struct put_req {
    cp_buf data;  /* every decoded Data blob, back to back */
    rec_in *recs; /* PutRecords entries: the first PUT_RECORDS_MAX */
    size_t n, cap;
    size_t count;              /* entries sent, including any beyond the maximum */
    int records_set;           /* "Records" present and not null */
    rec_in top;                /* PutRecord's record */
    cp__kfield name, arn, seq; /* StreamName, StreamARN, SequenceNumberForOrdering */
} put_req;

static void put_req_free(put_req *p)
{
    cp_buf_free(&p->data);
    cp_free(p->recs);
}

static int blob_error(const cp_aws_req *req, cp_http_resp *resp, cp_slice text, const char *why)
{
    cp_buf m = CP_BUF_INIT;
    cp_buf_putc(&m, '\'');
    cp__kinesis_echo(&m, text);
    cp_buf_printf(&m, "' can not be converted to a Blob: %s", why);
    cp_aws_reply_error(resp, req->service, "SerializationException", m.p);
    cp_buf_free(&m);
    return CP_EFAIL;
}

/* Decode one base64 Data value into p->data, with Coral's messages for bad base64. */
static int decode_data(const cp_aws_req *req, cp_http_resp *resp, const cp_json_tok *t, put_req *p,
                       rec_in *r)
{
    cp_buf tmp = CP_BUF_INIT;
    cp_slice text = t->s;
    int rc = CP_OK;
    if (t->escaped) {
        /* Some encoders escape '/' as "\/": legal JSON, so unescape before decoding. */
        if (cp_json_unescape(t->s, &tmp) != CP_OK) {
            cp_buf_free(&tmp);
            return bad_json(req, resp);
        }
        text = cp_buf_slice(&tmp);
    }
    size_t before = p->data.len;
    if (text.len % 4 != 0) {
        char why[96];
        snprintf(why, sizeof(why),
                 "Base64 encoded length is expected a multiple of 4 bytes but found: %zu",
                 text.len);
        rc = blob_error(req, resp, text, why);
    } else if (cp_base64_decode(text, &p->data) != CP_OK) {
        char why[64] = "Invalid last non-pad Base64 character dectected"; /* (sic), as AWS */
        for (size_t i = 0; i < text.len; i++) {
            char c = text.p[i];
            int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '+' || c == '/' ||
                     (c == '=' && (i + 1 == text.len || text.p[i + 1] == '='));
            if (!ok) {
                snprintf(why, sizeof(why), "Invalid Base64 character: '%c'",
                         (unsigned char) c >= 0x20 && (unsigned char) c < 0x7f ? c : '?');
                break;
            }
        }
        rc = blob_error(req, resp, text, why);
    }
    r->data_off = before;
    r->data_len = p->data.len - before;
    r->has_data = 1;
    cp_buf_free(&tmp);
    return rc;
}

/* A string member the caller identified. null leaves the field absent. */
static int string_member(const cp_aws_req *req, cp_http_resp *resp, cp_json_lexer *lx,
                         cp_slice *out, unsigned char *has)
{
    cp_json_tok t;
    if (cp_json_next(lx, &t) < 0) {
        return bad_json(req, resp);
    }
    *has = 0;
    if (t.type == CP_JSON_NULL) {
        return CP_OK;
    }
    if (t.type != CP_JSON_STRING) {
        return cp__kinesis_type_mismatch(req, resp, CP__KF_STR, &t);
    }
    if (cp__kinesis_tok_string(req, resp, &t, out) != CP_OK) {
        return CP_EFAIL;
    }
    *has = 1;
    return CP_OK;
}

/* Data, PartitionKey or ExplicitHashKey of a record. Returns 1 when `key` was one of them and
 * its value was consumed, 0 when it is some other member, CP_EFAIL after replying. */
static int record_member(const cp_aws_req *req, cp_http_resp *resp, cp_json_lexer *lx,
                         const cp_json_tok *key, put_req *p, rec_in *r)
{
    if (cp_json_tok_is(key, "PartitionKey")) {
        return string_member(req, resp, lx, &r->pk, &r->has_pk) == CP_OK ? 1 : CP_EFAIL;
    }
    if (cp_json_tok_is(key, "ExplicitHashKey")) {
        return string_member(req, resp, lx, &r->ehk, &r->has_ehk) == CP_OK ? 1 : CP_EFAIL;
    }
    if (!cp_json_tok_is(key, "Data")) {
        return 0;
    }
    cp_json_tok t;
    if (cp_json_next(lx, &t) < 0) {
        return bad_json(req, resp);
    }
    if (t.type == CP_JSON_NULL) {
        r->has_data = 0;
        return 1;
    }
    if (t.type != CP_JSON_STRING) {
        return cp__kinesis_type_mismatch(req, resp, CP__KF_BLOB, &t);
    }
    return decode_data(req, resp, &t, p, r) == CP_OK ? 1 : CP_EFAIL;
}

static int skip_value(const cp_aws_req *req, cp_http_resp *resp, cp_json_lexer *lx)
{
    cp_json_tok t;
    if (cp_json_next(lx, &t) < 0 || cp_json_skip(lx, &t) < 0) {
        return bad_json(req, resp);
    }
    return CP_OK;
}

/* The members of one PutRecords entry, after its '{'. */
static int parse_entry(const cp_aws_req *req, cp_http_resp *resp, cp_json_lexer *lx, put_req *p,
                       rec_in *r)
{
    cp_json_tok t;
    for (;;) {
        if (cp_json_next(lx, &t) < 0) {
            return bad_json(req, resp);
        }
        if (t.type == CP_JSON_OBJ_END) {
            return CP_OK;
        }
        int rc = record_member(req, resp, lx, &t, p, r);
        if (rc < 0 || (rc == 0 && skip_value(req, resp, lx) != CP_OK)) {
            return CP_EFAIL;
        }
    }
}

static int parse_records(const cp_aws_req *req, cp_http_resp *resp, cp_json_lexer *lx, put_req *p)
{
    cp_json_tok t;
    if (cp_json_next(lx, &t) < 0) {
        return bad_json(req, resp);
    }
    if (t.type == CP_JSON_NULL) {
        p->records_set = 0;
        return CP_OK;
    }
    if (t.type != CP_JSON_ARR_BEGIN) {
        return cp__kinesis_type_mismatch(req, resp, CP__KF_LIST, &t);
    }
    p->records_set = 1;
    p->n = p->count = 0;
    cp_buf_reset(&p->data); /* a repeated "Records" member replaces the first */
    for (;;) {
        if (cp_json_next(lx, &t) < 0) {
            return bad_json(req, resp);
        }
        if (t.type == CP_JSON_ARR_END) {
            return CP_OK;
        }
        rec_in r = {{NULL, 0}, {NULL, 0}, 0, 0, 0, 0, 0, 0};
        size_t mark = p->data.len;
        if (t.type == CP_JSON_NULL) {
            r.is_null = 1;
        } else if (t.type != CP_JSON_OBJ_BEGIN) {
            return cp__kinesis_type_mismatch(req, resp, CP__KF_STRUCT, &t);
        } else if (parse_entry(req, resp, lx, p, &r) != CP_OK) {
            return CP_EFAIL;
        }
        p->count++;
        if (p->n < PUT_RECORDS_MAX) {
            if (p->n == p->cap) {
                p->cap = p->cap ? 2 * p->cap : 16;
                p->recs = cp_realloc(p->recs, p->cap * sizeof(*p->recs));
            }
            p->recs[p->n++] = r;
        } else {
            /* Over the limit: the request fails validation anyway, but AWS deserialises the
             * whole body first, so keep checking types without keeping the bytes. */
            p->data.len = mark;
            p->data.p[mark] = 0; /* cp_buf stays NUL-terminated */
        }
    }
}

/* Parse a PutRecord (many = 0) or PutRecords (many = 1) body in one pass. */
static int parse_put(const cp_aws_req *req, cp_http_resp *resp, put_req *p, int many)
{
    cp_json_lexer lx;
    cp_json_tok t;
    cp_json_lexer_init(&lx, req->body);
    /* Decoded data is at most 3/4 of the body: usually one allocation for the whole call
     * (records keep offsets, so a reallocation would still be harmless). */
    cp_buf_reserve(&p->data, req->body.len / 4 * 3 + 4);
    if (cp_json_next(&lx, &t) < 0 || t.type != CP_JSON_OBJ_BEGIN) {
        return bad_json(req, resp);
    }
    for (;;) {
        if (cp_json_next(&lx, &t) < 0) {
            return bad_json(req, resp);
        }
        if (t.type == CP_JSON_OBJ_END) {
            break;
        }
        unsigned char has = 0;
        int rc = CP_OK;
        if (cp_json_tok_is(&t, "StreamName")) {
            rc = string_member(req, resp, &lx, &p->name.s, &has);
            p->name.set = has;
        } else if (cp_json_tok_is(&t, "StreamARN")) {
            rc = string_member(req, resp, &lx, &p->arn.s, &has);
            p->arn.set = has;
        } else if (many && cp_json_tok_is(&t, "Records")) {
            rc = parse_records(req, resp, &lx, p);
        } else if (!many && cp_json_tok_is(&t, "SequenceNumberForOrdering")) {
            rc = string_member(req, resp, &lx, &p->seq.s, &has);
            p->seq.set = has;
        } else if (!many) {
            int r = record_member(req, resp, &lx, &t, p, &p->top);
            rc = r < 0 ? CP_EFAIL : r == 0 ? skip_value(req, resp, &lx) : CP_OK;
        } else {
            rc = skip_value(req, resp, &lx);
        }
        if (rc != CP_OK) {
            return CP_EFAIL;
        }
    }
    if (cp_json_next(&lx, &t) < 0 || t.type != CP_JSON_END) {
        return bad_json(req, resp);
    }
    return CP_OK;
}

/* Shape checks of one record; `prefix` is "" (PutRecord) or "records.N.member.". The model
 * limits Data to 1 MiB on its own; the manager separately refuses a record whose key plus data
 * exceed the stream's record limit (InvalidArgumentException). */
static void verr_record(cp__verr *v, const cp_kinesis_api *api, const rec_in *r, const char *prefix)
{
    char path[64];
    snprintf(path, sizeof(path), "%spartitionKey", prefix);
    if (!r->has_pk) {
        cp__verr_null(v, path);
    } else {
        cp__verr_len(v, r->pk, path, 1, CP_STREAM_PK_MAX_CHARS);
    }
    snprintf(path, sizeof(path), "%sexplicitHashKey", prefix);
    if (r->has_ehk && !decimal_ok(r->ehk, 39)) {
        char c[96];
        snprintf(c, sizeof(c), "Member must satisfy regular expression pattern: %s",
                 hash_key_pattern);
        cp__verr_value(v, r->ehk, path, c);
    }
    snprintf(path, sizeof(path), "%sdata", prefix);
    if (!r->has_data) {
        cp__verr_null(v, path);
    } else if (r->data_len > api->max_record_bytes) {
        /* Coral renders a blob as the Java ByteBuffer it was decoded into. */
        char val[96], c[96];
        snprintf(val, sizeof(val), "'java.nio.HeapByteBuffer[pos=0 lim=%zu cap=%zu]'", r->data_len,
                 r->data_len);
        snprintf(c, sizeof(c), "Member must have length less than or equal to %zu",
                 api->max_record_bytes);
        cp__verr_raw(v, val, path, c);
    }
}

static cp_stream_put to_put(const put_req *p, const rec_in *r)
{
    return (cp_stream_put){r->pk, cp_slice_of(p->data.p + r->data_off, r->data_len),
                           r->has_ehk ? r->ehk : cp_slice_of(NULL, 0), 0};
}

/* Ask the limiter about every record; refused ones get code CP_EAGAIN and their shard in res
 * and are marked in `refused`. The routing uses the open shards of a fresh describe. */
static int admit_puts(cp_kinesis_api *api, cp_slice name, const cp_stream_put *recs, size_t n,
                      cp_stream_put_result *res, unsigned char *refused, size_t *nrefused,
                      cp_err *err)
{
    cp_stream_desc *d = NULL;
    int rc = cp_streams_describe(api->streams, name, &d, err);
    if (rc != CP_OK) {
        return rc;
    }
    cp_shard_range *ranges = cp_malloc((d->nshards ? d->nshards : 1) * sizeof(*ranges));
    size_t k = 0;
    for (size_t i = 0; i < d->nshards; i++) {
        if (d->shards[i].open) {
            ranges[k++] =
                (cp_shard_range){d->shards[i].index, d->shards[i].start, d->shards[i].end};
        }
    }
    cp_shard_map *map = NULL;
    rc = cp_shard_map_from(ranges, k, &map, err);
    for (size_t i = 0; rc == CP_OK && i < n; i++) {
        cp_hashkey hk;
        if (recs[i].explicit_hash_key.len) {
            if (cp_hashkey_parse(recs[i].explicit_hash_key, &hk, NULL) != CP_OK) {
                continue; /* the put itself refuses the whole request */
            }
        } else {
            hk = cp_hashkey_of_partition_key(recs[i].partition_key);
        }
        uint32_t shard = cp_shard_find_key(map, hk);
        cp_kinesis_usage u = {CP_KINESIS_USAGE_PUT,
                              name,
                              d->mode,
                              shard,
                              recs[i].partition_key,
                              1,
                              recs[i].partition_key.len + recs[i].data.len};
        if (api->limiter.admit(api->limiter.ctx, &u) != 0) {
            refused[i] = 1;
            res[i] = (cp_stream_put_result){CP_EAGAIN, shard, 0, 0};
            (*nrefused)++;
        }
    }
    cp_shard_map_free(map);
    cp_free(ranges);
    cp_stream_desc_free(d);
    return rc;
}

/* Put n records, honouring the limiter. Per-record outcomes in res (CP_EAGAIN: throttled);
 * *failed counts records that did not go in. A non-OK return fails the whole request. */
static int do_put(cp_kinesis_api *api, cp_slice name, const cp_stream_put *recs, size_t n,
                  cp_stream_put_result *res, size_t *failed, cp_err *err)
{
    *failed = 0;
    unsigned char *refused = cp_calloc(n, 1);
    size_t nrefused = 0;
    int rc = CP_OK;
    if (api->limiter.admit) {
        rc = admit_puts(api, name, recs, n, res, refused, &nrefused, err);
    }
    if (rc == CP_OK && nrefused == 0) {
        rc = cp_streams_put(api->streams, name, recs, n, res, failed, err);
    } else if (rc == CP_OK && nrefused < n) {
        cp_stream_put *sub = cp_malloc((n - nrefused) * sizeof(*sub));
        cp_stream_put_result *sres = cp_malloc((n - nrefused) * sizeof(*sres));
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (!refused[i]) {
                sub[m++] = recs[i];
            }
        }
        rc = cp_streams_put(api->streams, name, sub, m, sres, failed, err);
        for (size_t i = 0, j = 0; rc == CP_OK && i < n; i++) {
            if (!refused[i]) {
                res[i] = sres[j++];
            }
        }
        cp_free(sub);
        cp_free(sres);
    }
    *failed += nrefused;
    cp_free(refused);
    return rc;
}

static void put_seq(cp_buf *o, const cp_stream_put_result *r)
{
    char seq[CP_SEQ_STR_MAX];
    cp_seq_format(r->shard, r->seq, seq);
    cp_json_put_kv_str(o, "SequenceNumber", cp_slice_str(seq));
}

int cp__kinesis_op_put_record(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp_kinesis_api *api = ctx;
    put_req p = {0};
    cp__verr v = CP__VERR_INIT;
    int rc = parse_put(req, resp, &p, 0);
    if (rc == CP_OK) {
        if (p.seq.set && !decimal_ok(p.seq.s, 129)) {
            char c[96];
            snprintf(c, sizeof(c), "Member must satisfy regular expression pattern: %s",
                     seq_pattern);
            cp__verr_value(&v, p.seq.s, "sequenceNumberForOrdering", c);
        }
        verr_record(&v, api, &p.top, "");
        cp__verr_stream(&v, &p.name, &p.arn);
        rc = cp__verr_reply(&v, req, resp);
    }
    cp_slice name;
    if (rc == CP_OK) {
        rc = cp__kinesis_stream_or_reply(req, resp, &p.name, &p.arn, &name);
    }
    if (rc != CP_OK) {
        cp_buf_free(&v.b);
        put_req_free(&p);
        return CP_EFAIL;
    }
    /* SequenceNumberForOrdering needs no work: one key always lands on one shard, and a
     * shard's sequence numbers strictly increase in append order. */
    cp_stream_put rec = to_put(&p, &p.top);
    cp_stream_put_result res = {0};
    size_t failed = 0;
    cp_err err = {0};
    rc = do_put(api, name, &rec, 1, &res, &failed, &err);
    if (rc == CP_OK && res.code == CP_EAGAIN) {
        rc = cp__kinesis_reply_throttled(req, resp, name, res.shard);
    } else if (rc != CP_OK || res.code != CP_OK) {
        rc = cp__kinesis_reply_rc(req, resp, rc != CP_OK ? rc : res.code, &err);
    } else {
        cp_buf *o = &resp->body;
        cp_buf_puts(o, "{\"ShardId\":");
        cp__kinesis_put_shard_id(o, res.shard);
        cp_buf_putc(o, ',');
        put_seq(o, &res);
        cp_buf_puts(o, ",\"EncryptionType\":\"NONE\"}");
    }
    put_req_free(&p);
    return rc;
}

/* PutRecords. Shape errors and an unknown stream fail the whole call; after that, failures
 * are per record (ErrorCode/ErrorMessage in place of ShardId/SequenceNumber, counted in
 * FailedRecordCount) while the other records are durable: a throttled record from the
 * limiter, or InternalFailure when its shard's append failed. */
int cp__kinesis_op_put_records(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp_kinesis_api *api = ctx;
    put_req p = {0};
    cp__verr v = CP__VERR_INIT;
    int rc = parse_put(req, resp, &p, 1);
    if (rc == CP_OK) {
        if (!p.records_set) {
            cp__verr_null(&v, "records");
        } else if (p.count == 0) {
            cp__verr_value(&v, CP_SLICE("[]"), "records",
                           "Member must have length greater than or equal to 1");
        } else if (p.count > PUT_RECORDS_MAX) {
            cp__verr_raw(&v, NULL, "records", "Member must have length less than or equal to 500");
        }
        for (size_t i = 0; i < p.n; i++) {
            char prefix[48];
            snprintf(prefix, sizeof(prefix), "records.%zu.member", i + 1);
            if (p.recs[i].is_null) {
                cp__verr_null(&v, prefix);
                continue;
            }
            strcat(prefix, ".");
            verr_record(&v, api, &p.recs[i], prefix);
        }
        cp__verr_stream(&v, &p.name, &p.arn);
        rc = cp__verr_reply(&v, req, resp);
    }
    size_t total = 0;
    for (size_t i = 0; rc == CP_OK && i < p.n; i++) {
        total += p.recs[i].pk.len + p.recs[i].data_len;
    }
    if (rc == CP_OK && total > api->max_request_bytes) {
        rc = cp_aws_reply_error(resp, req->service, "InvalidArgumentException",
                                "Records size exceeds 5 MB limit");
    }
    cp_slice name;
    if (rc == CP_OK) {
        rc = cp__kinesis_stream_or_reply(req, resp, &p.name, &p.arn, &name);
    }
    if (rc != CP_OK) {
        cp_buf_free(&v.b);
        put_req_free(&p);
        return CP_EFAIL;
    }
    cp_stream_put *recs = cp_malloc(p.n * sizeof(*recs));
    cp_stream_put_result *res = cp_calloc(p.n, sizeof(*res));
    for (size_t i = 0; i < p.n; i++) {
        recs[i] = to_put(&p, &p.recs[i]);
    }
    size_t failed = 0;
    cp_err err = {0};
    rc = do_put(api, name, recs, p.n, res, &failed, &err);
    if (rc != CP_OK) {
        rc = cp__kinesis_reply_rc(req, resp, rc, &err);
    } else {
        /* PutRecords reports failures per record, never as a request failure. */
        cp_buf *o = &resp->body;
        cp_buf_reserve(o, 64 + p.n * 100);
        cp_buf_printf(o, "{\"FailedRecordCount\":%zu,\"Records\":[", failed);
        int internal = 0;
        for (size_t i = 0; i < p.n; i++) {
            cp_buf_puts(o, i ? ",{" : "{");
            if (res[i].code == CP_OK) {
                put_seq(o, &res[i]);
                cp_buf_puts(o, ",\"ShardId\":");
                cp__kinesis_put_shard_id(o, res[i].shard);
            } else if (res[i].code == CP_EAGAIN) {
                cp_buf m = CP_BUF_INIT;
                cp__kinesis_throttle_msg(&m, name, res[i].shard);
                cp_json_put_kv_str(o, "ErrorCode",
                                   CP_SLICE("ProvisionedThroughputExceededException"));
                cp_buf_putc(o, ',');
                cp_json_put_kv_str(o, "ErrorMessage", cp_buf_slice(&m));
                cp_buf_free(&m);
            } else {
                internal = 1;
                cp_json_put_kv_str(o, "ErrorCode", CP_SLICE("InternalFailure"));
                cp_buf_putc(o, ',');
                cp_json_put_kv_str(o, "ErrorMessage", CP_SLICE("Internal service failure."));
            }
            cp_buf_putc(o, '}');
        }
        cp_buf_puts(o, "],\"EncryptionType\":\"NONE\"}");
        if (internal) {
            CP_LOG_ERROR("kinesis", "PutRecords to %.*s: some records failed: %s", (int) name.len,
                         name.p, err.msg[0] ? err.msg : "no detail");
        }
    }
    cp_free(recs);
    cp_free(res);
    put_req_free(&p);
    return rc;
}

/* ================================================================ iterators
 *
 * A ShardIterator is a sealed (stream, shard, read position) issued at a time (api_token.c):
 * opaque, tamper-proof, valid for 5 minutes. Positions are the manager's, so an iterator keeps
 * working across resharding (a closed shard stays readable) and retention (a trimmed position
 * resumes at the trim horizon).
 */

static void iter_encode(cp_buf *out, cp_slice stream, uint32_t shard, uint64_t pos)
{
    cp_buf_put_u32le(out, shard);
    cp_buf_put_u64le(out, pos);
    cp_buf_put_bytes(out, stream.p, stream.len);
}

static int iter_decode(cp_slice raw, cp_slice *stream, uint32_t *shard, uint64_t *pos)
{
    cp_reader r = cp_reader_of(raw);
    *shard = cp_reader_u32le(&r);
    *pos = cp_reader_u64le(&r);
    *stream = cp_reader_bytes(&r);
    if (r.failed || r.p != r.end || cp_stream_name_check(*stream, NULL) != CP_OK) {
        return CP_EINVAL;
    }
    return CP_OK;
}

/* Append `"ShardIterator-ish":"<token>"` for a position; issued now. */
static void put_iterator(cp_kinesis_api *api, cp_buf *o, const char *key, cp_slice stream,
                         uint32_t shard, uint64_t pos)
{
    cp_buf payload = CP_BUF_INIT;
    iter_encode(&payload, stream, shard, pos);
    cp_json_put_key(o, key);
    cp_buf_putc(o, '"');
    cp__kinesis_seal(api, CP__KINESIS_TOK_ITERATOR, cp_clock_now_ms(), cp_buf_slice(&payload), o);
    cp_buf_putc(o, '"');
    cp_buf_free(&payload);
}

/* Ask the limiter about a read-side call (GetShardIterator, GetRecords). *mode is set for a
 * later charge. CP_OK to proceed, CP_EFAIL after replying. */
static int admit_read(cp_kinesis_api *api, const cp_aws_req *req, cp_http_resp *resp,
                      cp_slice stream, uint32_t shard, cp_kinesis_usage_op op, cp_stream_mode *mode)
{
    *mode = CP_STREAM_PROVISIONED;
    if (!api->limiter.admit) {
        return CP_OK;
    }
    cp_stream_desc *d = NULL;
    cp_err err = {0};
    int rc = cp_streams_describe(api->streams, stream, &d, &err);
    if (rc != CP_OK) {
        return cp__kinesis_reply_rc(req, resp, rc, &err);
    }
    *mode = d->mode;
    cp_stream_desc_free(d);
    cp_kinesis_usage u = {op, stream, *mode, shard, {NULL, 0}, 0, 0};
    if (api->limiter.admit(api->limiter.ctx, &u) != 0) {
        return cp__kinesis_reply_throttled(req, resp, stream, shard);
    }
    return CP_OK;
}

/* GetShardIterator: all five types; Timestamp in epoch seconds with a fraction. */
int cp__kinesis_op_get_shard_iterator(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp_kinesis_api *api = ctx;
    enum { NAME, ARN, SHARD, TYPE, SEQ, TS };
    cp__kfield f[] = {CP__KF("StreamName", CP__KF_STR),
                      CP__KF("StreamARN", CP__KF_STR),
                      CP__KF("ShardId", CP__KF_STR),
                      CP__KF("ShardIteratorType", CP__KF_STR),
                      CP__KF("StartingSequenceNumber", CP__KF_STR),
                      CP__KF("Timestamp", CP__KF_TS)};
    cp__verr v = CP__VERR_INIT;
    if (cp__kinesis_decode(req, resp, req->body, f, 6) != CP_OK) {
        return CP_EFAIL;
    }
    if (!f[SHARD].set) {
        cp__verr_null(&v, "shardId");
    } else {
        cp__verr_name(&v, f[SHARD].s, "shardId");
    }
    if (!f[TYPE].set) {
        cp__verr_null(&v, "shardIteratorType");
    } else {
        cp__verr_enum(&v, f[TYPE].s, "shardIteratorType", iter_types);
    }
    if (f[SEQ].set && !decimal_ok(f[SEQ].s, 129)) {
        char c[96];
        snprintf(c, sizeof(c), "Member must satisfy regular expression pattern: %s", seq_pattern);
        cp__verr_value(&v, f[SEQ].s, "startingSequenceNumber", c);
    }
    cp__verr_stream(&v, &f[NAME], &f[ARN]);
    cp_slice name;
    if (cp__verr_reply(&v, req, resp) != CP_OK ||
        cp__kinesis_stream_or_reply(req, resp, &f[NAME], &f[ARN], &name) != CP_OK) {
        return CP_EFAIL;
    }
    uint32_t shard;
    /* A shard id that is not "shardId-" + 12 digits cannot name any shard. */
    if (cp_shard_id_parse(f[SHARD].s, &shard) != CP_OK) {
        return cp_aws_reply_errorf(resp, req->service, "ResourceNotFoundException",
                                   "Could not find shard %.*s in stream %.*s under account %s.",
                                   (int) f[SHARD].s.len, f[SHARD].s.p, (int) name.len, name.p,
                                   CP_KINESIS_ACCOUNT);
    }
    cp_stream_iter_type type = CP_ITER_LATEST;
    cp_stream_iter_type_parse(f[TYPE].s, &type); /* the enum check above passed */
    int by_seq = type == CP_ITER_AT_SEQUENCE_NUMBER || type == CP_ITER_AFTER_SEQUENCE_NUMBER;
    if (type == CP_ITER_AT_TIMESTAMP && !f[TS].set) {
        return cp_aws_reply_error(resp, req->service, "InvalidArgumentException",
                                  "Must specify timestampInMillis parameter for iterator of "
                                  "type AT_TIMESTAMP. Current request has no timestamp "
                                  "parameter.");
    }
    if (by_seq && f[SEQ].set) {
        uint32_t seq_shard;
        uint64_t value;
        if (cp_seq_parse(f[SEQ].s, &seq_shard, &value, NULL) != CP_OK) {
            char id[CP_SHARD_ID_MAX];
            cp_shard_id_format(shard, id);
            return cp_aws_reply_errorf(resp, req->service, "InvalidArgumentException",
                                       "StartingSequenceNumber %.*s used in GetShardIterator on "
                                       "shard %s in stream %.*s under account %s is invalid.",
                                       (int) f[SEQ].s.len, f[SEQ].s.p, id, (int) name.len, name.p,
                                       CP_KINESIS_ACCOUNT);
        }
    }
    cp_stream_mode mode;
    if (admit_read(api, req, resp, name, shard, CP_KINESIS_USAGE_GET_ITERATOR, &mode) != CP_OK) {
        return CP_EFAIL;
    }
    uint64_t pos = 0;
    cp_err err = {0};
    /* The manager owns the remaining rules (a sequence number with TRIM_HORIZON/LATEST, one of
     * another shard, a future timestamp) and words them as AWS does. */
    int rc = cp_streams_iterator(api->streams, name, shard, type,
                                 f[SEQ].set ? f[SEQ].s : cp_slice_of(NULL, 0),
                                 type == CP_ITER_AT_TIMESTAMP ? f[TS].ms : 0, &pos, &err);
    if (rc != CP_OK) {
        return cp__kinesis_reply_rc(req, resp, rc, &err);
    }
    cp_buf_putc(&resp->body, '{');
    put_iterator(api, &resp->body, "ShardIterator", name, shard, pos);
    cp_buf_putc(&resp->body, '}');
    return CP_OK;
}

/* Java's Date.toString() in UTC, as AWS prints times in ExpiredIteratorException. */
static void java_date(int64_t ms, char out[48])
{
    time_t t = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 48, "%a %b %d %H:%M:%S UTC %Y", &tm);
}

/* ChildShards of a closed shard read to its end: id, every parent, hash range. */
static int put_children(cp_kinesis_api *api, const cp_aws_req *req, cp_http_resp *resp,
                        cp_slice stream, const cp_stream_read *rd)
{
    cp_stream_desc *d = NULL;
    cp_err err = {0};
    int rc = cp_streams_describe(api->streams, stream, &d, &err);
    if (rc != CP_OK) {
        return cp__kinesis_reply_rc(req, resp, rc, &err);
    }
    cp_buf *o = &resp->body;
    cp_buf_puts(o, ",\"ChildShards\":[");
    size_t shown = 0;
    for (size_t c = 0; c < rd->nchildren; c++) {
        for (size_t i = 0; i < d->nshards; i++) {
            const cp_stream_shard_desc *sd = &d->shards[i];
            if (sd->index != rd->children[c]) {
                continue;
            }
            cp_buf_puts(o, shown++ ? ",{" : "{");
            cp_json_put_kv_str(o, "ShardId", cp_slice_str(sd->id));
            cp_buf_puts(o, ",\"ParentShards\":[");
            uint32_t np = sd->nparents < 8 ? sd->nparents : 8;
            for (uint32_t k = 0; k < np; k++) {
                if (k) {
                    cp_buf_putc(o, ',');
                }
                cp__kinesis_put_shard_id(o, sd->parents[k]);
            }
            cp_buf_puts(o, "],\"HashKeyRange\":{");
            cp_json_put_kv_str(o, "StartingHashKey", cp_slice_str(sd->start_key));
            cp_buf_putc(o, ',');
            cp_json_put_kv_str(o, "EndingHashKey", cp_slice_str(sd->end_key));
            cp_buf_puts(o, "}}");
        }
    }
    cp_buf_putc(o, ']');
    cp_stream_desc_free(d);
    return CP_OK;
}

/* GetRecords: up to Limit (default and maximum 10000) records and about 10 MiB from the
 * iterator's position, never waiting for new ones. An empty page with a NextShardIterator is
 * normal; MillisBehindLatest says how far the page ends behind the shard's newest record. */
int cp__kinesis_op_get_records(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp_kinesis_api *api = ctx;
    enum { ITER, LIMIT, ARN };
    cp__kfield f[] = {CP__KF("ShardIterator", CP__KF_STR), CP__KF("Limit", CP__KF_INT),
                      CP__KF("StreamARN", CP__KF_STR)};
    cp__verr v = CP__VERR_INIT;
    if (cp__kinesis_decode(req, resp, req->body, f, 3) != CP_OK) {
        return CP_EFAIL;
    }
    if (!f[ITER].set) {
        cp__verr_null(&v, "shardIterator");
    } else {
        cp__verr_len(&v, f[ITER].s, "shardIterator", 1, 512);
    }
    cp__verr_range(&v, &f[LIMIT], "limit", 1, CP__KINESIS_MAX_LIMIT);
    cp__verr_stream(&v, NULL, &f[ARN]);
    if (cp__verr_reply(&v, req, resp) != CP_OK) {
        return CP_EFAIL;
    }

    cp_buf payload = CP_BUF_INIT;
    int64_t issued = 0, now = cp_clock_now_ms();
    cp_slice stream = {NULL, 0};
    uint32_t shard = 0;
    uint64_t pos = 0;
    int rc = cp__kinesis_unseal(api, CP__KINESIS_TOK_ITERATOR, f[ITER].s, &payload, &issued);
    if (rc == CP_OK) {
        rc = iter_decode(cp_buf_slice(&payload), &stream, &shard, &pos);
    }
    /* Sealed with another key: issued before a restart (the key is per process unless
     * configured). Expired, not invalid, so clients fetch a new iterator and carry on. */
    if (rc == CP_EEXPIRED) {
        cp_buf_free(&payload);
        return cp_aws_reply_error(resp, req->service, "ExpiredIteratorException",
                                  "Iterator expired. The iterator was issued before the server "
                                  "restarted; request a new one with GetShardIterator.");
    }
    if (rc == CP_OK && f[ARN].set) {
        /* An ARN naming another stream than the iterator's is a malformed call. */
        cp_slice arn_name;
        cp__kfield none = CP__KF("StreamName", CP__KF_STR);
        rc = cp__kinesis_stream_or_reply(req, resp, &none, &f[ARN], &arn_name);
        if (rc != CP_OK) {
            cp_buf_free(&payload);
            return CP_EFAIL;
        }
        rc = cp_slice_eq(arn_name, stream) ? CP_OK : CP_EINVAL;
    }
    if (rc != CP_OK) {
        cp_buf_free(&payload);
        return cp_aws_reply_error(resp, req->service, "InvalidArgumentException",
                                  "Invalid ShardIterator.");
    }
    /* Same wording as AWS, times in Java's Date.toString() form. */
    if (now - issued > api->ttl_ms) {
        char at[48], then[48];
        java_date(issued, then);
        java_date(now, at);
        rc = cp_aws_reply_errorf(resp, req->service, "ExpiredIteratorException",
                                 "Iterator expired. The iterator was created at time %s while "
                                 "right now it is %s which is further in the future than the "
                                 "tolerated delay of %" PRId64 " milliseconds.",
                                 then, at, api->ttl_ms);
        cp_buf_free(&payload);
        return rc;
    }
    cp_stream_mode mode;
    if (admit_read(api, req, resp, stream, shard, CP_KINESIS_USAGE_GET_RECORDS, &mode) != CP_OK) {
        cp_buf_free(&payload);
        return CP_EFAIL;
    }

    cp_stream_read rd = CP_STREAM_READ_INIT;
    cp_err err = {0};
    size_t limit = f[LIMIT].set ? (size_t) f[LIMIT].i : CP__KINESIS_MAX_LIMIT;
    rc =
        cp_streams_read(api->streams, stream, shard, pos, limit, CP__KINESIS_READ_BYTES, &rd, &err);
    if (rc != CP_OK) {
        rc = cp__kinesis_reply_rc(req, resp, rc, &err);
        goto out;
    }
    const cp_stream_batch *b = &rd.batch;
    cp_buf *o = &resp->body;
    cp_buf_reserve(o, b->data_bytes / 3 * 4 + b->n * 160 + 1024);
    cp_buf_puts(o, "{\"Records\":[");
    for (size_t i = 0; i < b->n; i++) {
        const cp_stream_rec *r = &b->recs[i];
        char seq[CP_SEQ_STR_MAX];
        cp_seq_format(shard, r->seq, seq);
        cp_buf_puts(o, i ? ",{" : "{");
        cp_json_put_kv_str(o, "SequenceNumber", cp_slice_str(seq));
        cp_buf_puts(o, ",\"ApproximateArrivalTimestamp\":");
        cp__kinesis_put_ts(o, r->arrival_ms);
        cp_buf_puts(o, ",\"Data\":\"");
        cp_base64_encode(r->data, o);
        cp_buf_puts(o, "\",");
        cp_json_put_kv_str(o, "PartitionKey", r->partition_key);
        cp_buf_putc(o, '}');
    }
    cp_buf_putc(o, ']');
    /* A fresh iterator on every call (never the caller's), absent only once a closed shard
     * has been read to its end: then ChildShards tells the consumer where to go. */
    if (!rd.shard_end) {
        cp_buf_putc(o, ',');
        put_iterator(api, o, "NextShardIterator", stream, shard, rd.next_pos);
    }
    cp_buf_printf(o, ",\"MillisBehindLatest\":%" PRId64, rd.millis_behind);
    if (rd.shard_end && (rc = put_children(api, req, resp, stream, &rd)) != CP_OK) {
        goto out;
    }
    cp_buf_putc(o, '}');
    if (api->limiter.charge) {
        cp_kinesis_usage u = {
            CP_KINESIS_USAGE_GET_RECORDS, stream, mode, shard, {NULL, 0}, b->n, b->data_bytes};
        api->limiter.charge(api->limiter.ctx, &u);
    }
out:
    cp_stream_read_free(&rd);
    cp_buf_free(&payload);
    return rc;
}
