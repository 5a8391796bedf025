/* SPDX-License-Identifier: MIT */
/*
 * The DynamoDB Streams API over the store's change log. A table's stream is a window
 * [from, to) of the log (from = where the store started capturing for it, to = where it was
 * disabled, open-ended while enabled); it has exactly one shard, whose records are that
 * window's change records of the table, in log order. Sequence numbers are the log positions
 * (21 digits: "4" and the position zero-padded to 20), so they increase within the shard and
 * resume exactly. Shard iterators carry the position, authenticated with an HMAC keyed from
 * the store's uuid, and expire after 15 minutes.
 *
 * Where stream history lives: the current stream in the table's store record; streams that
 * were disabled while the table lived in its desc (PastStreams); streams of deleted tables in
 * the store's small metadata (key "dynamo.deleted_streams"), so that they stay listable and
 * readable for the 24 hours AWS keeps them.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdc/record.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/mem.h"
#include "dynamo/dynamo_int.h"
#include "table/change.h"

#define REGISTRY_KEY "dynamo.deleted_streams"
#define OPEN_END     UINT64_MAX
#define ITER_VERSION 1
#define ITER_MAC_LEN 16
#define ITER_PAYLOAD                                                                               \
    41 /* u8 version, u32 table id, i64 label, u64 pos, u64 from, i64 issued,                      \
           u32 nonce */
#define RECORDS_BYTES (1u << 20)

/* ------------------------------------------------------------------------------------------ */
/* Names                                                                                       */

void cp__dynamo_stream_label(int64_t ms, char *out)
{
    time_t s = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, CP__DYNAMO_LABEL_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (ms % 1000));
}

static int parse_label(cp_slice s, int64_t *ms)
{
    char buf[32];
    if (s.len != 23) {
        return CP_EINVAL;
    }
    memcpy(buf, s.p, s.len);
    buf[s.len] = 0;
    struct tm tm = {0};
    int msec;
    if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d.%3d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &msec) != 7) {
        return CP_EINVAL;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *ms = (int64_t) timegm(&tm) * 1000 + msec;
    return CP_OK;
}

void cp__dynamo_stream_arn(cp__dynamo_call *c, const char *table, int64_t label_ms, cp_buf *out)
{
    char label[CP__DYNAMO_LABEL_MAX];
    cp__dynamo_stream_label(label_ms, label);
    cp_buf_printf(out, "arn:aws:dynamodb:%s:%s:table/%s/stream/%s", cp__dynamo_region(c),
                  c->api->account, table, label);
}

/* Split a stream ARN into table name and label time. */
static int parse_stream_arn(cp_slice arn, cp_slice *table, int64_t *label_ms)
{
    static const char pre[] = "arn:aws:dynamodb:";
    if (arn.len < sizeof(pre) || memcmp(arn.p, pre, sizeof(pre) - 1) != 0) {
        return CP_EINVAL;
    }
    const char *t = NULL;
    for (size_t i = 0; i + 7 <= arn.len; i++) {
        if (memcmp(arn.p + i, ":table/", 7) == 0) {
            t = arn.p + i + 7;
            break;
        }
    }
    if (!t) {
        return CP_EINVAL;
    }
    const char *end = arn.p + arn.len;
    const char *slash = memchr(t, '/', (size_t) (end - t));
    if (!slash || slash == t || (size_t) (end - slash) < 8 || memcmp(slash, "/stream/", 8) != 0) {
        return CP_EINVAL;
    }
    *table = cp_slice_of(t, (size_t) (slash - t));
    return parse_label(cp_slice_of(slash + 8, (size_t) (end - slash - 8)), label_ms);
}

static void seq_of(uint64_t pos, char out[32])
{
    snprintf(out, 32, "4%020llu", (unsigned long long) pos);
}

static int parse_seq(cp_slice s, uint64_t *pos)
{
    if (s.len != 21 || s.p[0] != '4') {
        return CP_EINVAL;
    }
    uint64_t v = 0;
    for (size_t i = 1; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9' || v > (UINT64_MAX - 9) / 10) {
            return CP_EINVAL;
        }
        v = v * 10 + (uint64_t) (s.p[i] - '0');
    }
    *pos = v;
    return CP_OK;
}

static void shard_id(const cp__dynamo_stream *s, char out[64])
{
    unsigned char in[12], d[16];
    cp_store_u32le(in, s->table_id);
    cp_store_u64le(in + 4, s->from);
    cp_md5(in, sizeof(in), d);
    snprintf(out, 64, "shardId-%020lld-%02x%02x%02x%02x", (long long) s->label_ms, d[0], d[1], d[2],
             d[3]);
}

/* ------------------------------------------------------------------------------------------ */
/* History                                                                                     */

static uint64_t num_u64(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t) v->valuedouble : 0;
}

static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Drop history entries that ended more than 24 h ago (AWS keeps stream records that long). */
static void prune(cJSON *arr, int64_t now)
{
    for (int i = cJSON_GetArraySize(arr) - 1; i >= 0; i--) {
        const cJSON *e = cJSON_GetArrayItem(arr, i);
        if ((int64_t) num_u64(e, "Ended") + CP__DYNAMO_DAY_MS < now) {
            cJSON_DeleteItemFromArray(arr, i);
        }
    }
}

static cJSON *history_entry(const cp__dynamo_stream *s, int with_table)
{
    cJSON *e = cJSON_CreateObject();
    if (with_table) {
        cJSON_AddStringToObject(e, "Table", s->table);
        cJSON_AddNumberToObject(e, "TableId", s->table_id);
        cJSON_AddStringToObject(e, "Hash", s->key.hash_name);
        cJSON_AddNumberToObject(e, "HashType", s->key.hash_type);
        cJSON_AddStringToObject(e, "Range", s->key.range_name);
        cJSON_AddNumberToObject(e, "RangeType", s->key.range_type);
    }
    cJSON_AddNumberToObject(e, "Label", (double) s->label_ms);
    cJSON_AddStringToObject(e, "View", s->view);
    cJSON_AddNumberToObject(e, "From", (double) s->from);
    cJSON_AddNumberToObject(e, "To", (double) s->to);
    cJSON_AddNumberToObject(e, "Ended", (double) s->ended_ms);
    return e;
}

static void stream_from_entry(const cJSON *e, cp__dynamo_stream *s)
{
    snprintf(s->view, sizeof(s->view), "%s", str_of(e, "View"));
    s->label_ms = (int64_t) num_u64(e, "Label");
    s->from = num_u64(e, "From");
    s->to = num_u64(e, "To");
    s->ended_ms = (int64_t) num_u64(e, "Ended");
}

void cp__dynamo_streams_of_table(cp__dynamo_call *c, const cp_table_info *t, cp__dynamo_vec *out)
{
    out->size = sizeof(cp__dynamo_stream);
    cJSON *d = cp__dynamo_desc_parse(t);
    const cJSON *past = cJSON_GetObjectItemCaseSensitive(d, "PastStreams");
    int64_t now = cp_clock_now_ms();
    const cJSON *e;
    cJSON_ArrayForEach(e, past)
    {
        if ((int64_t) num_u64(e, "Ended") + CP__DYNAMO_DAY_MS < now) {
            continue;
        }
        cp__dynamo_stream *s = cp__dynamo_vec_push(c, out);
        stream_from_entry(e, s);
        snprintf(s->table, sizeof(s->table), "%s", t->name);
        s->table_id = t->id;
        s->key = t->key;
    }
    cJSON_Delete(d);
    if (t->stream_view[0]) {
        cp__dynamo_stream *s = cp__dynamo_vec_push(c, out);
        snprintf(s->table, sizeof(s->table), "%s", t->name);
        s->table_id = t->id;
        s->key = t->key;
        snprintf(s->view, sizeof(s->view), "%s", t->stream_view);
        s->label_ms = t->stream_created_ms;
        s->from = t->stream_from_lsn;
        s->to = OPEN_END;
    }
}

void cp__dynamo_stream_retire(cp_dynamo_api *api, const cp_table_info *t, cJSON *desc)
{
    cJSON *past = cJSON_GetObjectItemCaseSensitive(desc, "PastStreams");
    if (!cJSON_IsArray(past)) {
        cJSON_DeleteItemFromObjectCaseSensitive(desc, "PastStreams");
        past = cJSON_AddArrayToObject(desc, "PastStreams");
    }
    int64_t now = cp_clock_now_ms();
    prune(past, now);
    cp__dynamo_stream s = {0};
    snprintf(s.view, sizeof(s.view), "%s", t->stream_view);
    s.label_ms = t->stream_created_ms;
    s.from = t->stream_from_lsn;
    s.to = cp_seglog_end(cp_db_log(api->db));
    s.ended_ms = now;
    cJSON_AddItemToArray(past, history_entry(&s, 0));
}

/* The registry of deleted tables' streams (an array), read under api->mu. */
static cJSON *registry_load(cp_dynamo_api *api)
{
    cp_buf b = CP_BUF_INIT;
    cJSON *arr = NULL;
    if (cp_db_meta_get(api->db, REGISTRY_KEY, &b, NULL) == CP_OK) {
        arr = cJSON_ParseWithLength(b.p, b.len);
    }
    cp_buf_free(&b);
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        arr = cJSON_CreateArray();
    }
    return arr;
}

void cp__dynamo_stream_table_deleted(cp_dynamo_api *api, const cp_table_info *t)
{
    int64_t now = cp_clock_now_ms();
    /* Every record of the table precedes the log end now: the delete ran alone on the
     * committer and later writes to the name fail. */
    uint64_t end = cp_seglog_end(cp_db_log(api->db));
    cJSON *d = cp__dynamo_desc_parse(t);
    const cJSON *past = cJSON_GetObjectItemCaseSensitive(d, "PastStreams");
    if (!t->stream_view[0] && cJSON_GetArraySize(past) == 0) {
        cJSON_Delete(d);
        return;
    }
    pthread_mutex_lock(&api->mu);
    cJSON *reg = registry_load(api);
    prune(reg, now);
    const cJSON *e;
    cp__dynamo_stream s = {0};
    snprintf(s.table, sizeof(s.table), "%s", t->name);
    s.table_id = t->id;
    s.key = t->key;
    cJSON_ArrayForEach(e, past)
    {
        stream_from_entry(e, &s);
        cJSON_AddItemToArray(reg, history_entry(&s, 1));
    }
    if (t->stream_view[0]) {
        snprintf(s.view, sizeof(s.view), "%s", t->stream_view);
        s.label_ms = t->stream_created_ms;
        s.from = t->stream_from_lsn;
        s.to = end;
        s.ended_ms = now;
        cJSON_AddItemToArray(reg, history_entry(&s, 1));
    }
    prune(reg, now);
    char *text = cJSON_PrintUnformatted(reg);
    cp_db_meta_put(api->db, REGISTRY_KEY, cp_slice_str(text), NULL);
    cJSON_free(text);
    cJSON_Delete(reg);
    pthread_mutex_unlock(&api->mu);
    cJSON_Delete(d);
}

/* Streams of deleted tables, optionally only those of table `name`. */
static void deleted_streams(cp__dynamo_call *c, const char *name, cp__dynamo_vec *out)
{
    out->size = sizeof(cp__dynamo_stream);
    pthread_mutex_lock(&c->api->mu);
    cJSON *reg = registry_load(c->api);
    pthread_mutex_unlock(&c->api->mu);
    int64_t now = cp_clock_now_ms();
    const cJSON *e;
    cJSON_ArrayForEach(e, reg)
    {
        if ((int64_t) num_u64(e, "Ended") + CP__DYNAMO_DAY_MS < now) {
            continue;
        }
        if (name && strcmp(str_of(e, "Table"), name) != 0) {
            continue;
        }
        cp__dynamo_stream *s = cp__dynamo_vec_push(c, out);
        stream_from_entry(e, s);
        snprintf(s->table, sizeof(s->table), "%s", str_of(e, "Table"));
        s->table_id = (uint32_t) num_u64(e, "TableId");
        snprintf(s->key.hash_name, sizeof(s->key.hash_name), "%s", str_of(e, "Hash"));
        s->key.hash_type = (cp_av_type) num_u64(e, "HashType");
        snprintf(s->key.range_name, sizeof(s->key.range_name), "%s", str_of(e, "Range"));
        s->key.range_type = (cp_av_type) num_u64(e, "RangeType");
    }
    cJSON_Delete(reg);
}

static int stream_cmp(const void *a, const void *b)
{
    const cp__dynamo_stream *x = a, *y = b;
    int c = strcmp(x->table, y->table);
    if (c) {
        return c;
    }
    return (x->label_ms > y->label_ms) - (x->label_ms < y->label_ms);
}

/* Every stream (of one table when name != NULL), sorted by table then label. */
static void all_streams(cp__dynamo_call *c, const char *name, cp__dynamo_vec *out)
{
    out->size = sizeof(cp__dynamo_stream);
    cp_buf names = CP_BUF_INIT;
    size_t n = 0;
    if (name) {
        cp_buf_append(&names, name, strlen(name) + 1);
        n = 1;
    } else {
        cp_db_list_tables(c->api->db, NULL, SIZE_MAX, &names, &n, NULL);
    }
    const char *p = names.p;
    for (size_t i = 0; i < n; i++, p += strlen(p) + 1) {
        cp_table_info t = {0};
        if (cp_db_get_table(c->api->db, p, &t, NULL) == CP_OK) {
            cp__dynamo_streams_of_table(c, &t, out);
            cp_table_info_clear(&t);
        }
    }
    cp_buf_free(&names);
    cp__dynamo_vec gone = {.size = sizeof(cp__dynamo_stream)};
    deleted_streams(c, name, &gone);
    for (size_t i = 0; i < gone.n; i++) {
        *(cp__dynamo_stream *) cp__dynamo_vec_push(c, out) = ((cp__dynamo_stream *) gone.p)[i];
    }
    if (out->n > 1) {
        qsort(out->p, out->n, out->size, stream_cmp);
    }
}

/* The stream an ARN names: CP_EINVAL for a malformed ARN, CP_ENOTFOUND for an unknown one. */
static int find_stream(cp__dynamo_call *c, cp_slice arn, cp__dynamo_stream *out)
{
    cp_slice table;
    int64_t label;
    if (parse_stream_arn(arn, &table, &label) < 0 || table.len >= CP_NAME_MAX) {
        return CP_EINVAL;
    }
    const char *name = cp_http_scratch_strdup(c->scratch, table);
    cp__dynamo_vec v = {.size = sizeof(cp__dynamo_stream)};
    all_streams(c, name, &v);
    /* Newest match first: a stream re-enabled within the same millisecond shadows the old. */
    for (size_t i = v.n; i-- > 0;) {
        const cp__dynamo_stream *s = (const cp__dynamo_stream *) v.p + i;
        if (s->label_ms == label) {
            *out = *s;
            return CP_OK;
        }
    }
    return CP_ENOTFOUND;
}

static int fail_no_stream(cp__dynamo_call *c, cp_slice arn)
{
    return cp_aws_reply_errorf(c->resp, c->req->service, "ResourceNotFoundException",
                               "Requested resource not found: Stream: %.*s not found",
                               (int) (arn.len < 1024 ? arn.len : 1024), arn.p);
}

/* ------------------------------------------------------------------------------------------ */
/* Requests                                                                                    */

typedef struct streams_req {
    cp_slice table, arn, start, shard, type, seq, iterator;
    int has_table, has_arn, has_start, has_shard, has_type, has_seq, has_iterator;
    int64_t limit;
    int has_limit;
} streams_req;

static int streams_member(cp__dynamo_call *c, cp_slice name, void *ctx)
{
    streams_req *r = ctx;
    if (cp__dynamo_is(name, "TableName")) {
        return cp__dynamo_str(c, &r->table, &r->has_table);
    }
    if (cp__dynamo_is(name, "StreamArn")) {
        return cp__dynamo_str(c, &r->arn, &r->has_arn);
    }
    if (cp__dynamo_is(name, "ExclusiveStartStreamArn") ||
        cp__dynamo_is(name, "ExclusiveStartShardId")) {
        return cp__dynamo_str(c, &r->start, &r->has_start);
    }
    if (cp__dynamo_is(name, "ShardId")) {
        return cp__dynamo_str(c, &r->shard, &r->has_shard);
    }
    if (cp__dynamo_is(name, "ShardIteratorType")) {
        return cp__dynamo_str(c, &r->type, &r->has_type);
    }
    if (cp__dynamo_is(name, "SequenceNumber")) {
        return cp__dynamo_str(c, &r->seq, &r->has_seq);
    }
    if (cp__dynamo_is(name, "ShardIterator")) {
        return cp__dynamo_str(c, &r->iterator, &r->has_iterator);
    }
    if (cp__dynamo_is(name, "Limit")) {
        return cp__dynamo_int(c, "Integer", &r->limit, &r->has_limit);
    }
    return CP__DYNAMO_UNKNOWN;
}

static int read_streams_req(cp__dynamo_call *c, streams_req *r, cp__dynamo_verr *v,
                            int64_t max_limit)
{
    cp_err deferred;
    int rc = cp__dynamo_read_request(c, streams_member, r, &deferred);
    if (rc < 0) {
        return rc;
    }
    if (r->has_limit && (r->limit < 1 || r->limit > max_limit)) {
        char val[32], rule[80];
        snprintf(val, sizeof(val), "%lld", (long long) r->limit);
        if (r->limit < 1) {
            snprintf(rule, sizeof(rule), "Member must have value greater than or equal to 1");
        } else {
            snprintf(rule, sizeof(rule), "Member must have value less than or equal to %lld",
                     (long long) max_limit);
        }
        cp__dynamo_verr_add(v, val, "limit", rule);
    }
    return CP_OK;
}

static void check_arn(cp__dynamo_verr *v, cp_slice arn, int present, const char *path)
{
    if (!present) {
        cp__dynamo_verr_add(v, NULL, path, "Member must not be null");
    } else if (arn.len < 37 || arn.len > 1024) {
        cp__dynamo_verr_add_s(v, arn, path,
                              arn.len < 37 ? "Member must have length greater than or equal to 37"
                                           : "Member must have length less than or equal to 1024");
    }
}

/* ------------------------------------------------------------------------------------------ */
/* ListStreams, DescribeStream                                                                 */

int cp__dynamo_list_streams(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    streams_req r = {0};
    cp__dynamo_verr v = {0};
    int rc = read_streams_req(&c, &r, &v, 100);
    if (rc == CP_OK && r.has_table) {
        cp__dynamo_check_table_name(&v, r.table, 1, "tableName");
    }
    if (rc == CP_OK && r.has_start) {
        check_arn(&v, r.start, 1, "exclusiveStartStreamArn");
    }
    if (rc == CP_OK) {
        rc = cp__dynamo_verr_done(&v, &c);
    }
    cp_buf_free(&v.msg);
    if (rc < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    const char *name = r.has_table ? cp__dynamo_table_name(&c, r.table) : NULL;
    cp__dynamo_vec all = {.size = sizeof(cp__dynamo_stream)};
    all_streams(&c, name, &all);
    size_t limit = r.has_limit ? (size_t) r.limit : 100, i = 0, shown = 0;
    const cp__dynamo_stream *s = all.p;
    if (r.has_start) {
        cp_slice st;
        int64_t label;
        if (parse_stream_arn(r.start, &st, &label) == CP_OK) {
            /* Resume after the named stream in (table, label) order. */
            while (i < all.n) {
                int cmp = strncmp(s[i].table, st.p, st.len);
                if (cmp == 0 && s[i].table[st.len]) {
                    cmp = 1;
                }
                if (cmp > 0 || (cmp == 0 && s[i].label_ms > label)) {
                    break;
                }
                i++;
            }
        }
    }
    cp_buf *out = &resp->body;
    cp_buf_puts(out, "{\"Streams\":[");
    cp_buf arn = CP_BUF_INIT;
    for (; i < all.n && shown < limit; i++, shown++) {
        char label[CP__DYNAMO_LABEL_MAX];
        cp__dynamo_stream_label(s[i].label_ms, label);
        cp_buf_reset(&arn);
        cp__dynamo_stream_arn(&c, s[i].table, s[i].label_ms, &arn);
        cp_buf_puts(out, shown ? ",{\"StreamArn\":" : "{\"StreamArn\":");
        cp_json_put_str(out, cp_buf_slice(&arn));
        cp_buf_puts(out, ",\"TableName\":");
        cp_json_put_str(out, cp_slice_str(s[i].table));
        cp_buf_printf(out, ",\"StreamLabel\":\"%s\"}", label);
    }
    cp_buf_putc(out, ']');
    if (i < all.n && shown) {
        cp_buf_puts(out, ",\"LastEvaluatedStreamArn\":");
        cp_json_put_str(out, cp_buf_slice(&arn));
    }
    cp_buf_putc(out, '}');
    cp_buf_free(&arn);
    return CP_OK;
}

/* First position of the stream still in the log. */
static uint64_t stream_start(cp__dynamo_call *c, const cp__dynamo_stream *s)
{
    uint64_t start = cp_seglog_start(cp_db_log(c->api->db));
    return s->from > start ? s->from : start;
}

int cp__dynamo_describe_stream(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    streams_req r = {0};
    cp__dynamo_verr v = {0};
    int rc = read_streams_req(&c, &r, &v, 100);
    if (rc == CP_OK) {
        check_arn(&v, r.arn, r.has_arn, "streamArn");
        if (r.has_start && (r.start.len < 28 || r.start.len > 65)) {
            cp__dynamo_verr_add_s(&v, r.start, "exclusiveStartShardId",
                                  r.start.len < 28
                                      ? "Member must have length greater than or equal to 28"
                                      : "Member must have length less than or equal to 65");
        }
        rc = cp__dynamo_verr_done(&v, &c);
    }
    cp_buf_free(&v.msg);
    if (rc < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    cp__dynamo_stream s;
    if (find_stream(&c, r.arn, &s) < 0) {
        return fail_no_stream(&c, r.arn);
    }
    char label[CP__DYNAMO_LABEL_MAX], id[64], seq[32];
    cp__dynamo_stream_label(s.label_ms, label);
    shard_id(&s, id);
    cp_buf *out = &resp->body;
    cp_buf_puts(out, "{\"StreamDescription\":{\"StreamArn\":");
    cp_json_put_str(out, r.arn);
    cp_buf_printf(out,
                  ",\"StreamLabel\":\"%s\",\"StreamStatus\":\"%s\",\"StreamViewType\":\"%s\","
                  "\"CreationRequestDateTime\":%lld.%03lld,\"TableName\":",
                  label, s.to == OPEN_END ? "ENABLED" : "DISABLED", s.view,
                  (long long) (s.label_ms / 1000), (long long) (s.label_ms % 1000));
    cp_json_put_str(out, cp_slice_str(s.table));
    cp_buf_puts(out, ",\"KeySchema\":[{\"AttributeName\":");
    cp_json_put_str(out, cp_slice_str(s.key.hash_name));
    cp_buf_puts(out, ",\"KeyType\":\"HASH\"}");
    if (s.key.range_type) {
        cp_buf_puts(out, ",{\"AttributeName\":");
        cp_json_put_str(out, cp_slice_str(s.key.range_name));
        cp_buf_puts(out, ",\"KeyType\":\"RANGE\"}");
    }
    cp_buf_puts(out, "],\"Shards\":[");
    /* One shard; paging past it (ExclusiveStartShardId = its id) yields none. */
    if (!(r.has_start && cp_slice_eq(r.start, cp_slice_str(id)))) {
        uint64_t start = stream_start(&c, &s);
        seq_of(start, seq);
        cp_buf_printf(out,
                      "{\"ShardId\":\"%s\",\"SequenceNumberRange\":{"
                      "\"StartingSequenceNumber\":\"%s\"",
                      id, seq);
        if (s.to != OPEN_END) {
            /* Closed: everything of the shard lies below `to`. */
            seq_of(s.to > start ? s.to - 1 : start, seq);
            cp_buf_printf(out, ",\"EndingSequenceNumber\":\"%s\"", seq);
        }
        cp_buf_puts(out, "}}");
    }
    cp_buf_puts(out, "]}}");
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Iterators                                                                                   */

typedef struct iter_state {
    uint32_t table_id;
    int64_t label_ms;
    uint64_t pos, from;
    int64_t issued_ms;
} iter_state;

static void iter_mac(cp_dynamo_api *api, cp_slice arn, const unsigned char *payload,
                     unsigned char mac[32])
{
    cp_buf in = CP_BUF_INIT;
    cp_buf_append(&in, arn.p, arn.len);
    cp_buf_append(&in, payload, ITER_PAYLOAD);
    cp_hmac_sha256(api->iter_key, sizeof(api->iter_key), in.p, in.len, mac);
    cp_buf_free(&in);
}

static void iter_encode(cp__dynamo_call *c, cp_slice arn, const iter_state *st, cp_buf *out)
{
    unsigned char raw[ITER_PAYLOAD + ITER_MAC_LEN], mac[32];
    raw[0] = ITER_VERSION;
    cp_store_u32le(raw + 1, st->table_id);
    cp_store_u64le(raw + 5, (uint64_t) st->label_ms);
    cp_store_u64le(raw + 13, st->pos);
    cp_store_u64le(raw + 21, st->from);
    cp_store_u64le(raw + 29, (uint64_t) st->issued_ms);
    /* Two iterators for the same position never read alike: consumers that compare them
     * (the DynamoDB Streams Kinesis adapter) expect a new one from every GetRecords. */
    static _Atomic uint32_t nonce;
    cp_store_u32le(raw + 37, atomic_fetch_add(&nonce, 1));
    iter_mac(c->api, arn, raw, mac);
    memcpy(raw + ITER_PAYLOAD, mac, ITER_MAC_LEN);
    cp_buf_append(out, arn.p, arn.len);
    cp_buf_puts(out, "|1|");
    cp_base64_encode(cp_slice_of((const char *) raw, sizeof(raw)), out);
}

/* CP_OK, CP_EINVAL (not ours / tampered). *arn borrows `it`. */
static int iter_decode(cp__dynamo_call *c, cp_slice it, cp_slice *arn, iter_state *st)
{
    const char *bar = memchr(it.p, '|', it.len);
    if (!bar || (size_t) (it.p + it.len - bar) < 4 || memcmp(bar, "|1|", 3) != 0) {
        return CP_EINVAL;
    }
    *arn = cp_slice_of(it.p, (size_t) (bar - it.p));
    cp_buf raw = CP_BUF_INIT;
    int rc = cp_base64_decode(cp_slice_of(bar + 3, (size_t) (it.p + it.len - bar - 3)), &raw);
    if (rc == CP_OK && raw.len != ITER_PAYLOAD + ITER_MAC_LEN) {
        rc = CP_EINVAL;
    }
    if (rc == CP_OK) {
        const unsigned char *p = (const unsigned char *) raw.p;
        unsigned char mac[32], diff = 0;
        iter_mac(c->api, *arn, p, mac);
        for (int i = 0; i < ITER_MAC_LEN; i++) {
            diff |= (unsigned char) (mac[i] ^ p[ITER_PAYLOAD + i]);
        }
        if (diff || p[0] != ITER_VERSION) {
            rc = CP_EINVAL;
        } else {
            st->table_id = cp_load_u32le(p + 1);
            st->label_ms = (int64_t) cp_load_u64le(p + 5);
            st->pos = cp_load_u64le(p + 13);
            st->from = cp_load_u64le(p + 21);
            st->issued_ms = (int64_t) cp_load_u64le(p + 29);
        }
    }
    cp_buf_free(&raw);
    return rc;
}

/* The record at `pos` must be one of this stream's: its table's, inside the window. On CP_OK
 * *after is the position after it. CP_EEXPIRED when trimmed, CP_EINVAL otherwise. */
static int check_record(cp__dynamo_call *c, const cp__dynamo_stream *s, uint64_t pos,
                        uint64_t *after)
{
    cp_seglog *log = cp_db_log(c->api->db);
    if (pos < s->from || pos >= s->to || pos >= cp_seglog_end(log)) {
        return CP_EINVAL;
    }
    if (pos < cp_seglog_start(log)) {
        return CP_EEXPIRED;
    }
    cp_seglog_reader *rd;
    int rc = cp_seglog_reader_open(log, pos, &rd, NULL);
    if (rc < 0) {
        return rc == CP_EEXPIRED ? rc : CP_EINVAL;
    }
    cp_slice payload;
    uint64_t at;
    int64_t ts;
    cp_change ch;
    rc = cp_seglog_read(rd, &payload, &at, &ts, NULL);
    if (rc == CP_OK &&
        (at != pos || cp_change_decode(payload, &ch) != CP_OK || ch.table_id != s->table_id)) {
        rc = CP_EINVAL;
    }
    if (rc == CP_OK) {
        *after = cp_seglog_reader_pos(rd);
    } else if (rc != CP_EEXPIRED) {
        rc = CP_EINVAL;
    }
    cp_seglog_reader_close(rd);
    return rc;
}

int cp__dynamo_get_shard_iterator(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    streams_req r = {0};
    cp__dynamo_verr v = {0};
    int rc = read_streams_req(&c, &r, &v, 1000);
    static const char *const types[] = {"TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER",
                                        "AFTER_SEQUENCE_NUMBER", NULL};
    int type = -1;
    if (rc == CP_OK) {
        check_arn(&v, r.arn, r.has_arn, "streamArn");
        if (!r.has_shard) {
            cp__dynamo_verr_add(&v, NULL, "shardId", "Member must not be null");
        } else if (r.shard.len < 28 || r.shard.len > 65) {
            cp__dynamo_verr_add_s(&v, r.shard, "shardId",
                                  r.shard.len < 28
                                      ? "Member must have length greater than or equal to 28"
                                      : "Member must have length less than or equal to 65");
        }
        if (!r.has_type) {
            cp__dynamo_verr_add(&v, NULL, "shardIteratorType", "Member must not be null");
        } else {
            type = cp__dynamo_check_enum(&v, r.type, "shardIteratorType", types,
                                         "TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER, "
                                         "AFTER_SEQUENCE_NUMBER");
        }
        if (r.has_seq && (r.seq.len < 21 || r.seq.len > 40)) {
            cp__dynamo_verr_add_s(&v, r.seq, "sequenceNumber",
                                  r.seq.len < 21
                                      ? "Member must have length greater than or equal to 21"
                                      : "Member must have length less than or equal to 40");
        }
        rc = cp__dynamo_verr_done(&v, &c);
    }
    cp_buf_free(&v.msg);
    if (rc < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    int by_seq = type == 2 || type == 3;
    if (by_seq != r.has_seq) {
        return cp_aws_reply_errorf(resp, req->service, "ValidationException",
                                   by_seq ? "Must provide SequenceNumber for ShardIteratorType %s"
                                          : "SequenceNumber must not be provided for "
                                            "ShardIteratorType %s",
                                   types[type]);
    }
    cp__dynamo_stream s;
    if (find_stream(&c, r.arn, &s) < 0) {
        return fail_no_stream(&c, r.arn);
    }
    char id[64];
    shard_id(&s, id);
    if (!cp_slice_eq(r.shard, cp_slice_str(id))) {
        return cp_aws_reply_errorf(resp, req->service, "ResourceNotFoundException",
                                   "Requested resource not found: Shard: %.*s in Stream: %.*s "
                                   "not found",
                                   (int) r.shard.len, r.shard.p, (int) r.arn.len, r.arn.p);
    }
    cp_seglog *log = cp_db_log(c.api->db);
    uint64_t end = cp_seglog_end(log);
    iter_state st = {s.table_id, s.label_ms, 0, s.from, cp_clock_now_ms()};
    switch (type) {
    case 0:
        st.pos = stream_start(&c, &s);
        break;
    case 1:
        st.pos = s.to == OPEN_END || s.to > end ? end : s.to;
        break;
    default: {
        uint64_t pos, after;
        if (parse_seq(r.seq, &pos) < 0) {
            return cp_aws_reply_errorf(resp, req->service, "ValidationException",
                                       "Invalid SequenceNumber: %.*s", (int) r.seq.len, r.seq.p);
        }
        rc = check_record(&c, &s, pos, &after);
        if (rc == CP_EEXPIRED) {
            return cp__dynamo_fail_code(&c, "TrimmedDataAccessException",
                                        "The operation attempted to read past the oldest stream "
                                        "record in a shard.");
        }
        if (rc < 0) {
            return cp_aws_reply_errorf(resp, req->service, "ValidationException",
                                       "Invalid SequenceNumber: %.*s is not a record of shard %s",
                                       (int) r.seq.len, r.seq.p, id);
        }
        st.pos = type == 2 ? pos : after;
        break;
    }
    }
    cp_buf *out = &resp->body;
    cp_buf_puts(out, "{\"ShardIterator\":\"");
    cp_buf it = CP_BUF_INIT;
    iter_encode(&c, r.arn, &st, &it);
    cp_buf_append(out, it.p, it.len); /* ARN and base64: nothing to escape */
    cp_buf_free(&it);
    cp_buf_puts(out, "\"}");
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* GetRecords                                                                                  */

int cp__dynamo_get_records(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    streams_req r = {0};
    cp__dynamo_verr v = {0};
    int rc = read_streams_req(&c, &r, &v, 1000);
    if (rc == CP_OK) {
        if (!r.has_iterator) {
            cp__dynamo_verr_add(&v, NULL, "shardIterator", "Member must not be null");
        } else if (r.iterator.len < 1 || r.iterator.len > 2048) {
            cp__dynamo_verr_add_s(&v, r.iterator, "shardIterator",
                                  r.iterator.len < 1
                                      ? "Member must have length greater than or equal to 1"
                                      : "Member must have length less than or equal to 2048");
        }
        rc = cp__dynamo_verr_done(&v, &c);
    }
    cp_buf_free(&v.msg);
    if (rc < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    cp_slice arn;
    iter_state st = {0};
    if (iter_decode(&c, r.iterator, &arn, &st) < 0) {
        return cp__dynamo_fail_code(&c, "ValidationException", "Invalid ShardIterator");
    }
    int64_t now = cp_clock_now_ms();
    if (now - st.issued_ms > c.api->cfg.iterator_ttl_ms) {
        return cp_aws_reply_errorf(resp, req->service, "ExpiredIteratorException",
                                   "Iterator expired. The iterator was created at time %lld "
                                   "while right now it is time %lld which is further in the "
                                   "future than the tolerated delay of %lld milliseconds.",
                                   (long long) st.issued_ms, (long long) now,
                                   (long long) c.api->cfg.iterator_ttl_ms);
    }
    cp__dynamo_stream s;
    if (find_stream(&c, arn, &s) < 0 || s.table_id != st.table_id || s.from != st.from) {
        return fail_no_stream(&c, arn);
    }
    cp_seglog *log = cp_db_log(c.api->db);
    cp_seglog_reader *rd = NULL;
    rc = st.pos < cp_seglog_start(log) ? CP_EEXPIRED : CP_OK;
    if (rc == CP_OK && st.pos < cp_seglog_end(log)) {
        rc = cp_seglog_reader_open(log, st.pos, &rd, NULL);
    }
    if (rc == CP_EEXPIRED) {
        return cp__dynamo_fail_code(&c, "TrimmedDataAccessException",
                                    "The operation attempted to read past the oldest stream record "
                                    "in a shard.");
    }
    if (rc < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    size_t limit = r.has_limit ? (size_t) r.limit : 1000, count = 0, scanned = 0;
    cp_cdc_source src = {s.table, cp__dynamo_region(&c), cp_db_uuid(c.api->db)};
    cp_buf *out = &resp->body;
    cp_buf_puts(out, "{\"Records\":[");
    uint64_t next = st.pos;
    int ended = s.to != OPEN_END && next >= s.to;
    rc = CP_OK;
    while (rd && !ended && count < limit && scanned < c.api->cfg.get_records_scan &&
           out->len < RECORDS_BYTES) {
        cp_slice payload;
        uint64_t at;
        int64_t ts;
        rc = cp_seglog_read(rd, &payload, &at, &ts, NULL);
        if (rc == CP_ENOTFOUND) {
            rc = CP_OK;
            break;
        }
        if (rc < 0) {
            break;
        }
        if (at >= s.to) {
            ended = 1;
            break;
        }
        next = cp_seglog_reader_pos(rd);
        scanned++;
        cp_change ch;
        if (cp_change_decode(payload, &ch) != CP_OK) {
            rc = CP_ECORRUPT;
            break;
        }
        if (ch.table_id != s.table_id) {
            continue;
        }
        char seq[32];
        seq_of(at, seq);
        cp_buf_puts(out, count ? "," : "");
        cp_cdc_render_streams(&src, &ch, at, s.view, seq, out);
        count++;
    }
    cp_seglog_reader_close(rd);
    if (rc == CP_EEXPIRED) {
        return cp__dynamo_fail_code(&c, "TrimmedDataAccessException",
                                    "The operation attempted to read past the oldest stream record "
                                    "in a shard.");
    }
    if (rc < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    if (s.to != OPEN_END && next >= s.to) {
        ended = 1;
    }
    cp_buf_putc(out, ']');
    if (!ended) {
        /* Always a fresh iterator on an open shard, even with no records (kinesis-mock #260). */
        st.pos = next;
        st.issued_ms = now;
        cp_buf_puts(out, ",\"NextShardIterator\":\"");
        iter_encode(&c, arn, &st, out);
        cp_buf_putc(out, '"');
    }
    cp_buf_putc(out, '}');
    return CP_OK;
}
