/* SPDX-License-Identifier: MIT */
/*
 * Kinesis Data Streams API, control plane: CreateStream, DeleteStream, DescribeStream(Summary),
 * ListStreams, ListShards, the retention calls, UpdateShardCount and the tag calls, plus the
 * operation table. Stream tags live here, in memory (they are not needed by anything but
 * ListTagsForStream, and losing them on restart is the documented difference from AWS).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/mem.h"
#include "kinesis/api_int.h"

#define TAGS_PER_STREAM  50   /* AWS: at most 50 tags per stream */
#define DESCRIBE_MAX     100  /* DescribeStream returns at most 100 shards per call */
#define LIST_STREAMS_MAX 100  /* ListStreams likewise */
#define LIST_SHARDS_MAX  1000 /* ListShards: default and effective maximum */

/* ================================================================ tags (in memory) */

typedef struct tag {
    char *key, *val;
} tag;

/* Tags of one stream incarnation: a stream deleted and created again starts without tags,
 * which created_ms detects even when the delete went around this api. */
struct cp__kinesis_tags {
    char *stream;
    int64_t created_ms;
    tag *t; /* sorted by key */
    size_t n;
};

static void tags_clear(cp__kinesis_tags *e)
{
    for (size_t i = 0; i < e->n; i++) {
        cp_free(e->t[i].key);
        cp_free(e->t[i].val);
    }
    cp_free(e->t);
    e->t = NULL;
    e->n = 0;
}

static char *dup_slice(cp_slice s)
{
    char *p = cp_malloc(s.len + 1);
    if (s.len) {
        memcpy(p, s.p, s.len);
    }
    p[s.len] = 0;
    return p;
}

/* The entry for a stream incarnation, created empty when missing. Caller holds tags_mu. */
static cp__kinesis_tags *tags_get(cp_kinesis_api *api, cp_slice stream, int64_t created_ms)
{
    for (size_t i = 0; i < api->ntags; i++) {
        cp__kinesis_tags *e = &api->tags[i];
        if (cp_slice_eq(cp_slice_str(e->stream), stream)) {
            if (e->created_ms != created_ms) {
                tags_clear(e);
                e->created_ms = created_ms;
            }
            return e;
        }
    }
    api->tags = cp_realloc(api->tags, (api->ntags + 1) * sizeof(*api->tags));
    cp__kinesis_tags *e = &api->tags[api->ntags++];
    *e = (cp__kinesis_tags){dup_slice(stream), created_ms, NULL, 0};
    return e;
}

static void tags_drop(cp_kinesis_api *api, cp_slice stream)
{
    pthread_mutex_lock(&api->tags_mu);
    for (size_t i = 0; i < api->ntags; i++) {
        if (cp_slice_eq(cp_slice_str(api->tags[i].stream), stream)) {
            tags_clear(&api->tags[i]);
            cp_free(api->tags[i].stream);
            api->tags[i] = api->tags[--api->ntags];
            break;
        }
    }
    pthread_mutex_unlock(&api->tags_mu);
}

static size_t tag_find(const cp__kinesis_tags *e, cp_slice key, int *found)
{
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cp_slice_cmp(cp_slice_str(e->t[mid].key), key);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = 0;
    return lo;
}

static void tag_set(cp__kinesis_tags *e, cp_slice key, cp_slice val)
{
    int found;
    size_t at = tag_find(e, key, &found);
    if (found) {
        cp_free(e->t[at].val);
        e->t[at].val = dup_slice(val);
        return;
    }
    e->t = cp_realloc(e->t, (e->n + 1) * sizeof(*e->t));
    memmove(e->t + at + 1, e->t + at, (e->n - at) * sizeof(*e->t));
    e->t[at] = (tag){dup_slice(key), dup_slice(val)};
    e->n++;
}

void cp__kinesis_tags_free(cp_kinesis_api *api)
{
    for (size_t i = 0; i < api->ntags; i++) {
        tags_clear(&api->tags[i]);
        cp_free(api->tags[i].stream);
    }
    cp_free(api->tags);
    api->tags = NULL;
    api->ntags = 0;
}

/* ================================================================ response pieces */

static void put_mode(cp_buf *out, cp_stream_mode m)
{
    cp_buf_puts(out, "\"StreamModeDetails\":{");
    cp_json_put_kv_str(out, "StreamMode", cp_slice_str(cp_stream_mode_name(m)));
    cp_buf_putc(out, '}');
}

static void put_bool(cp_buf *out, const char *key, int v)
{
    cp_json_put_key(out, key);
    cp_buf_puts(out, v ? "true" : "false");
}

/* The members DescribeStream and DescribeStreamSummary share, up to the status. */
static void put_stream_head(cp_buf *out, const cp_kinesis_api *api, const cp_aws_req *req,
                            const cp_stream_desc *d)
{
    cp_json_put_kv_str(out, "StreamName", cp_slice_str(d->name));
    cp_buf_puts(out, ",\"StreamARN\":");
    cp__kinesis_put_arn(out, api, req, cp_slice_str(d->name));
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "StreamStatus", cp_slice_str(cp_stream_status_name(d->status)));
    cp_buf_putc(out, ',');
    put_mode(out, d->mode);
}

static void put_stream_tail(cp_buf *out, const cp_stream_desc *d)
{
    cp_buf_printf(out,
                  ",\"RetentionPeriodHours\":%d,\"StreamCreationTimestamp\":", d->retention_hours);
    cp__kinesis_put_ts(out, d->created_ms);
    cp_buf_puts(out, ",\"EnhancedMonitoring\":[{\"ShardLevelMetrics\":[]}],"
                     "\"EncryptionType\":\"NONE\"");
}

/* ================================================================ control plane */

static const char *const stream_modes[] = {"PROVISIONED", "ON_DEMAND", NULL};

/* Decode and validate the Tags map of CreateStream / AddTagsToStream. */
static int tags_or_reply(const cp_aws_req *req, cp_http_resp *resp, const cp__kfield *f,
                         cp__verr *v, cp__kstr **tags, size_t *n)
{
    *tags = NULL;
    *n = 0;
    if (!f->set) {
        return CP_OK;
    }
    if (cp__kinesis_strings(req, resp, f->s, tags, n) != CP_OK) {
        return CP_EFAIL;
    }
    if (*n < 1 || *n > 200) {
        char c[80];
        snprintf(c, sizeof(c), "Member must have length %s than or equal to %d",
                 *n < 1 ? "greater" : "less", *n < 1 ? 1 : 200);
        cp__verr_raw(v, *n < 1 ? "'{}'" : "'{...}'", "tags", c);
    }
    for (size_t i = 0; i < *n; i++) {
        cp__verr_len(v, (*tags)[i].key, "tags.key", 1, 128);
        cp__verr_len(v, (*tags)[i].val, "tags.value", 0, 256);
    }
    return CP_OK;
}

/* Add tags to a live stream incarnation; InvalidArgumentException beyond 50 per stream. */
static int add_tags_or_reply(cp_kinesis_api *api, const cp_aws_req *req, cp_http_resp *resp,
                             cp_slice stream, int64_t created_ms, const cp__kstr *t, size_t n)
{
    pthread_mutex_lock(&api->tags_mu);
    cp__kinesis_tags *e = tags_get(api, stream, created_ms);
    size_t total = e->n;
    for (size_t i = 0; i < n; i++) {
        int found;
        tag_find(e, t[i].key, &found);
        int dup = 0;
        for (size_t k = 0; k < i; k++) {
            dup |= cp_slice_eq(t[k].key, t[i].key);
        }
        total += !found && !dup;
    }
    if (total > TAGS_PER_STREAM) {
        pthread_mutex_unlock(&api->tags_mu);
        return cp_aws_reply_errorf(resp, req->service, "InvalidArgumentException",
                                   "Failed to add tags to stream %.*s under account %s because "
                                   "a given stream cannot have more than %d tags associated "
                                   "with it.",
                                   (int) stream.len, stream.p, CP_KINESIS_ACCOUNT, TAGS_PER_STREAM);
    }
    for (size_t i = 0; i < n; i++) {
        tag_set(e, t[i].key, t[i].val);
    }
    pthread_mutex_unlock(&api->tags_mu);
    return CP_OK;
}

/* CreateStream. AWS answers {} and shows CREATING for a while; the manager creates streams
 * synchronously and durably, so the stream is ACTIVE by the time we answer and the CLI's
 * `wait stream-exists` returns on its first poll. StreamModeDetails defaults to PROVISIONED;
 * WarmThroughputMiBps and MaxRecordSizeInKiB are newer members we ignore. */
static int op_create_stream(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp_kinesis_api *api = ctx;
    enum { NAME, COUNT, MODE, TAGS };
    cp__kfield f[] = {CP__KF("StreamName", CP__KF_STR), CP__KF("ShardCount", CP__KF_INT),
                      CP__KF("StreamModeDetails", CP__KF_STRUCT), CP__KF("Tags", CP__KF_MAP)};
    cp__kfield m[] = {CP__KF("StreamMode", CP__KF_STR)};
    cp__kstr *tags;
    size_t ntags;
    cp__verr v = CP__VERR_INIT;
    if (cp__kinesis_decode(req, resp, req->body, f, 4) != CP_OK ||
        (f[MODE].set && cp__kinesis_decode(req, resp, f[MODE].s, m, 1) != CP_OK) ||
        tags_or_reply(req, resp, &f[TAGS], &v, &tags, &ntags) != CP_OK) {
        cp_buf_free(&v.b);
        return CP_EFAIL;
    }
    cp__verr_range(&v, &f[COUNT], "shardCount", 1, INT32_MAX);
    if (f[MODE].set && !m[0].set) {
        cp__verr_null(&v, "streamModeDetails.streamMode");
    } else if (f[MODE].set) {
        cp__verr_enum(&v, m[0].s, "streamModeDetails.streamMode", stream_modes);
    }
    if (!f[NAME].set) {
        cp__verr_null(&v, "streamName");
    } else {
        cp__verr_name(&v, f[NAME].s, "streamName");
    }
    if (cp__verr_reply(&v, req, resp) != CP_OK) {
        return CP_EFAIL;
    }
    cp_stream_mode mode = f[MODE].set && cp_slice_eq(m[0].s, CP_SLICE("ON_DEMAND"))
                              ? CP_STREAM_ON_DEMAND
                              : CP_STREAM_PROVISIONED;
    cp_slice name = f[NAME].s;
    cp_err err = {0};
    int rc =
        cp_streams_create(api->streams, name, mode, f[COUNT].set ? (uint32_t) f[COUNT].i : 0, &err);
    if (rc != CP_OK) {
        return cp__kinesis_reply_rc(req, resp, rc, &err);
    }
    /* Drop tags a previous incarnation of this name may have left behind. */
    tags_drop(api, name);
    if (ntags) {
        cp_stream_desc *d = NULL;
        rc = cp_streams_describe(api->streams, name, &d, &err);
        if (rc != CP_OK) {
            return cp__kinesis_reply_rc(req, resp, rc, &err);
        }
        rc = add_tags_or_reply(api, req, resp, name, d->created_ms, tags, ntags);
        cp_stream_desc_free(d);
        return rc;
    }
    return CP_OK;
}

/* DeleteStream: AWS shows DELETING for a while; the manager returns once the stream is gone
 * (a crash half-way is finished on the next open). */
static int op_delete_stream(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp_kinesis_api *api = ctx;
    cp__kfield f[] = {CP__KF("StreamName", CP__KF_STR), CP__KF("StreamARN", CP__KF_STR),
                      CP__KF("EnforceConsumerDeletion", CP__KF_BOOL)};
    cp__verr v = CP__VERR_INIT;
    cp_slice name;
    if (cp__kinesis_decode(req, resp, req->body, f, 3) != CP_OK) {
        return CP_EFAIL;
    }
    cp__verr_stream(&v, &f[0], &f[1]);
    if (cp__verr_reply(&v, req, resp) != CP_OK ||
        cp__kinesis_stream_or_reply(req, resp, &f[0], &f[1], &name) != CP_OK) {
        return CP_EFAIL;
    }
    /* EnforceConsumerDeletion is accepted: there are no registered consumers to refuse over. */
    cp_err err = {0};
    int rc = cp_streams_delete(api->streams, name, &err);
    if (rc != CP_OK) {
        return cp__kinesis_reply_rc(req, resp, rc, &err);
    }
    tags_drop(api, name);
    return CP_OK;
}

/* Decode a request whose first two fields are StreamName and StreamARN and check their shape
 * into v (the caller adds its own checks, then replies and resolves the stream). */
static int stream_args_or_reply(const cp_aws_req *req, cp_http_resp *resp, cp__kfield *f, size_t n,
                                cp__verr *v)
{
    if (cp__kinesis_decode(req, resp, req->body, f, n) != CP_OK) {
        cp_buf_free(&v->b);
        return CP_EFAIL;
    }
    cp__verr_stream(v, &f[0], &f[1]);
    return CP_OK;
}

static int describe_or_reply(cp_kinesis_api *api, const cp_aws_req *req, cp_http_resp *resp,
                             cp_slice name, cp_stream_desc **d)
{
    cp_err err = {0};
    int rc = cp_streams_describe(api->streams, name, d, &err);
    return rc == CP_OK ? CP_OK : cp__kinesis_reply_rc(req, resp, rc, &err);
}

/* DescribeStream: the model allows Limit up to 10000 but AWS returns at most 100 shards and
 * says HasMoreShards; the CLI then pages with ExclusiveStartShardId = the last shard shown.
 * Closed shards past retention are no longer listed (the manager drops them). */
static int op_describe_stream(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp_kinesis_api *api = ctx;
    enum { NAME, ARN, LIMIT, START };
    cp__kfield f[] = {CP__KF("StreamName", CP__KF_STR), CP__KF("StreamARN", CP__KF_STR),
                      CP__KF("Limit", CP__KF_INT), CP__KF("ExclusiveStartShardId", CP__KF_STR)};
    cp__verr v = CP__VERR_INIT;
    cp_slice name;
    if (stream_args_or_reply(req, resp, f, 4, &v) != CP_OK) {
        return CP_EFAIL;
    }
    cp__verr_range(&v, &f[LIMIT], "limit", 1, CP__KINESIS_MAX_LIMIT);
    if (f[START].set) {
        cp__verr_name(&v, f[START].s, "exclusiveStartShardId");
    }
    cp_stream_desc *d = NULL;
    if (cp__verr_reply(&v, req, resp) != CP_OK ||
        cp__kinesis_stream_or_reply(req, resp, &f[NAME], &f[ARN], &name) != CP_OK ||
        describe_or_reply(api, req, resp, name, &d) != CP_OK) {
        return CP_EFAIL;
    }
    size_t limit = f[LIMIT].set && f[LIMIT].i < DESCRIBE_MAX ? (size_t) f[LIMIT].i : DESCRIBE_MAX;
    cp_buf *o = &resp->body;
    cp_buf_puts(o, "{\"StreamDescription\":{");
    put_stream_head(o, api, req, d);
    cp_buf_puts(o, ",\"Shards\":[");
    size_t shown = 0, i = 0;
    for (; i < d->nshards; i++) {
        const cp_stream_shard_desc *sd = &d->shards[i];
        /* Shard ids are fixed-width, so byte order is index order. */
        if (f[START].set && cp_slice_cmp(cp_slice_str(sd->id), f[START].s) <= 0) {
            continue;
        }
        if (shown == limit) {
            break;
        }
        if (shown++) {
            cp_buf_putc(o, ',');
        }
        cp__kinesis_put_shard(o, sd);
    }
    cp_buf_puts(o, "],");
    put_bool(o, "HasMoreShards", i < d->nshards);
    put_stream_tail(o, d);
    cp_buf_puts(o, "}}");
    cp_stream_desc_free(d);
    return CP_OK;
}

/* DescribeStreamSummary: what the KCL polls; ConsumerCount is 0 (no enhanced fan-out). */
static int op_describe_stream_summary(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp_kinesis_api *api = ctx;
    cp__kfield f[] = {CP__KF("StreamName", CP__KF_STR), CP__KF("StreamARN", CP__KF_STR)};
    cp__verr v = CP__VERR_INIT;
    cp_slice name;
    cp_stream_desc *d = NULL;
    if (stream_args_or_reply(req, resp, f, 2, &v) != CP_OK ||
        cp__verr_reply(&v, req, resp) != CP_OK ||
        cp__kinesis_stream_or_reply(req, resp, &f[0], &f[1], &name) != CP_OK ||
        describe_or_reply(api, req, resp, name, &d) != CP_OK) {
        return CP_EFAIL;
    }
    cp_buf *o = &resp->body;
    cp_buf_puts(o, "{\"StreamDescriptionSummary\":{");
    put_stream_head(o, api, req, d);
    put_stream_tail(o, d);
    cp_buf_printf(o, ",\"OpenShardCount\":%zu,\"ConsumerCount\":0}}", d->open_shards);
    cp_stream_desc_free(d);
    return CP_OK;
}

/* ListStreams: names in byte order, at most 100 per call. Newer clients page with NextToken
 * (the CLI's paginator stops when it is absent), older ones with ExclusiveStartStreamName;
 * both are served. The token is sealed like an iterator but does not expire. */
static int op_list_streams(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp_kinesis_api *api = ctx;
    enum { LIMIT, START, TOKEN };
    cp__kfield f[] = {CP__KF("Limit", CP__KF_INT), CP__KF("ExclusiveStartStreamName", CP__KF_STR),
                      CP__KF("NextToken", CP__KF_STR)};
    cp__verr v = CP__VERR_INIT;
    if (cp__kinesis_decode(req, resp, req->body, f, 3) != CP_OK) {
        return CP_EFAIL;
    }
    cp__verr_range(&v, &f[LIMIT], "limit", 1, CP__KINESIS_MAX_LIMIT);
    if (f[START].set) {
        cp__verr_name(&v, f[START].s, "exclusiveStartStreamName");
    }
    if (f[TOKEN].set) {
        cp__verr_len(&v, f[TOKEN].s, "nextToken", 1, 1048576);
    }
    if (cp__verr_reply(&v, req, resp) != CP_OK) {
        return CP_EFAIL;
    }
    cp_buf after = CP_BUF_INIT;
    int has_after = 0;
    if (f[TOKEN].set) {
        int64_t issued;
        if (cp__kinesis_unseal(api, CP__KINESIS_TOK_STREAMS, f[TOKEN].s, &after, &issued) !=
            CP_OK) {
            cp_buf_free(&after);
            return cp_aws_reply_error(resp, req->service, "InvalidArgumentException",
                                      "Invalid NextToken.");
        }
        has_after = 1;
    } else if (f[START].set) {
        cp_buf_append(&after, f[START].s.p, f[START].s.len);
        has_after = 1;
    }
    cp_stream_summary *all = NULL;
    size_t n = 0;
    cp_err err = {0};
    int rc = cp_streams_list(api->streams, &all, &n, &err);
    if (rc != CP_OK) {
        cp_buf_free(&after);
        return cp__kinesis_reply_rc(req, resp, rc, &err);
    }
    size_t limit =
        f[LIMIT].set && f[LIMIT].i < LIST_STREAMS_MAX ? (size_t) f[LIMIT].i : LIST_STREAMS_MAX;
    size_t first = 0;
    while (has_after && first < n &&
           cp_slice_cmp(cp_slice_str(all[first].name), cp_buf_slice(&after)) <= 0) {
        first++;
    }
    size_t end = first + limit < n ? first + limit : n;
    cp_buf *o = &resp->body;
    cp_buf_puts(o, "{\"StreamNames\":[");
    for (size_t i = first; i < end; i++) {
        if (i > first) {
            cp_buf_putc(o, ',');
        }
        cp_json_put_str(o, cp_slice_str(all[i].name));
    }
    cp_buf_puts(o, "],");
    put_bool(o, "HasMoreStreams", end < n);
    if (end < n) {
        cp_buf_puts(o, ",\"NextToken\":\"");
        cp__kinesis_seal(api, CP__KINESIS_TOK_STREAMS, cp_clock_now_ms(),
                         cp_slice_str(all[end - 1].name), o);
        cp_buf_putc(o, '"');
    }
    cp_buf_puts(o, ",\"StreamSummaries\":[");
    for (size_t i = first; i < end; i++) {
        cp_buf_puts(o, i > first ? ",{" : "{");
        cp_json_put_kv_str(o, "StreamName", cp_slice_str(all[i].name));
        cp_buf_puts(o, ",\"StreamARN\":");
        cp__kinesis_put_arn(o, api, req, cp_slice_str(all[i].name));
        cp_buf_putc(o, ',');
        cp_json_put_kv_str(o, "StreamStatus", cp_slice_str(cp_stream_status_name(all[i].status)));
        cp_buf_putc(o, ',');
        put_mode(o, all[i].mode);
        cp_buf_puts(o, ",\"StreamCreationTimestamp\":");
        cp__kinesis_put_ts(o, all[i].created_ms);
        cp_buf_putc(o, '}');
    }
    cp_buf_puts(o, "]}");
    cp_free(all);
    cp_buf_free(&after);
    return CP_OK;
}

/* ListShards' ShardFilter types. */
static const char *const filter_types[] = {"AFTER_SHARD_ID",
                                           "AT_TRIM_HORIZON",
                                           "FROM_TRIM_HORIZON",
                                           "AT_LATEST",
                                           "AT_TIMESTAMP",
                                           "FROM_TIMESTAMP",
                                           NULL};
enum { F_NONE = -1, F_AFTER_SHARD_ID, F_AT_TRIM_HORIZON, F_FROM_TRIM_HORIZON, F_AT_LATEST };

/* The ListShards cursor inside a NextToken: where the last page stopped, and the filter that
 * must keep applying (AT_LATEST hides closed shards). */
typedef struct shard_cursor {
    cp_slice stream;
    uint32_t last;
    int filter;
} shard_cursor;

static void cursor_encode(const shard_cursor *c, cp_buf *out)
{
    cp_buf_put_bytes(out, c->stream.p, c->stream.len);
    cp_buf_put_u32le(out, c->last);
    cp_buf_put_u8(out, (uint8_t) (c->filter + 1));
}

static int cursor_decode(cp_slice raw, shard_cursor *c)
{
    cp_reader r = cp_reader_of(raw);
    c->stream = cp_reader_bytes(&r);
    c->last = cp_reader_u32le(&r);
    c->filter = (int) cp_reader_u8(&r) - 1;
    return r.failed || r.p != r.end ? CP_EINVAL : CP_OK;
}

/* ListShards, the KCL's way to discover shards: pages of up to 1000 with a sealed NextToken
 * that expires like AWS's (ExpiredNextTokenException after 300 s). */
static int op_list_shards(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp_kinesis_api *api = ctx;
    enum { NAME, ARN, TOKEN, START, MAX, CREATED, FILTER };
    cp__kfield f[] = {
        CP__KF("StreamName", CP__KF_STR),    CP__KF("StreamARN", CP__KF_STR),
        CP__KF("NextToken", CP__KF_STR),     CP__KF("ExclusiveStartShardId", CP__KF_STR),
        CP__KF("MaxResults", CP__KF_INT),    CP__KF("StreamCreationTimestamp", CP__KF_TS),
        CP__KF("ShardFilter", CP__KF_STRUCT)};
    enum { FTYPE, FSHARD, FTS };
    cp__kfield sf[] = {CP__KF("Type", CP__KF_STR), CP__KF("ShardId", CP__KF_STR),
                       CP__KF("Timestamp", CP__KF_TS)};
    cp__verr v = CP__VERR_INIT;
    cp_slice name = {NULL, 0};
    if (stream_args_or_reply(req, resp, f, 7, &v) != CP_OK) {
        return CP_EFAIL;
    }
    if (f[FILTER].set && cp__kinesis_decode(req, resp, f[FILTER].s, sf, 3) != CP_OK) {
        cp_buf_free(&v.b);
        return CP_EFAIL;
    }
    if (f[TOKEN].set) {
        cp__verr_len(&v, f[TOKEN].s, "nextToken", 1, 1048576);
    }
    if (f[START].set) {
        cp__verr_name(&v, f[START].s, "exclusiveStartShardId");
    }
    cp__verr_range(&v, &f[MAX], "maxResults", 1, CP__KINESIS_MAX_LIMIT);
    if (f[FILTER].set && !sf[FTYPE].set) {
        cp__verr_null(&v, "shardFilter.type");
    } else if (f[FILTER].set) {
        cp__verr_enum(&v, sf[FTYPE].s, "shardFilter.type", filter_types);
    }
    if (f[FILTER].set && sf[FSHARD].set) {
        cp__verr_name(&v, sf[FSHARD].s, "shardFilter.shardId");
    }
    if (cp__verr_reply(&v, req, resp) != CP_OK) {
        return CP_EFAIL;
    }

    shard_cursor cur = {{NULL, 0}, 0, F_NONE};
    int has_cursor = 0;
    cp_buf tokbuf = CP_BUF_INIT;
    if (f[TOKEN].set) {
        /* The CLI's paginator resends StreamName with NextToken (spec 1.7): the token wins and
         * the other identifying members are ignored rather than refused. */
        int64_t issued = 0;
        int rc = cp__kinesis_unseal(api, CP__KINESIS_TOK_SHARDS, f[TOKEN].s, &tokbuf, &issued);
        if (rc == CP_OK && cursor_decode(cp_buf_slice(&tokbuf), &cur) != CP_OK) {
            rc = CP_EINVAL;
        }
        if (rc == CP_OK && cp_clock_now_ms() - issued > api->ttl_ms) {
            rc = CP_EEXPIRED;
        }
        if (rc != CP_OK) {
            cp_buf_free(&tokbuf);
            return rc == CP_EEXPIRED
                       ? cp_aws_reply_error(resp, req->service, "ExpiredNextTokenException",
                                            "The NextToken has expired. Request a new one with "
                                            "StreamName or StreamARN.")
                       : cp_aws_reply_error(resp, req->service, "InvalidArgumentException",
                                            "Invalid NextToken.");
        }
        name = cur.stream;
        has_cursor = 1;
    } else {
        if (cp__kinesis_stream_or_reply(req, resp, &f[NAME], &f[ARN], &name) != CP_OK) {
            return CP_EFAIL;
        }
        if (f[FILTER].set) {
            for (int i = 0; filter_types[i]; i++) {
                if (cp_slice_eq(sf[FTYPE].s, cp_slice_str(filter_types[i]))) {
                    cur.filter = i;
                }
            }
            const char *miss = NULL;
            if (cur.filter == F_AFTER_SHARD_ID && !sf[FSHARD].set) {
                miss = "ShardId must be supplied in a ShardFilter with a Type of AFTER_SHARD_ID";
            } else if ((cp_slice_eq(sf[FTYPE].s, CP_SLICE("AT_TIMESTAMP")) ||
                        cp_slice_eq(sf[FTYPE].s, CP_SLICE("FROM_TIMESTAMP"))) &&
                       !sf[FTS].set) {
                miss = "Timestamp must be supplied in a ShardFilter with a Type of "
                       "FROM_TIMESTAMP or AT_TIMESTAMP";
            }
            if (miss) {
                return cp_aws_reply_error(resp, req->service, "InvalidArgumentException", miss);
            }
        }
    }

    cp_stream_desc *d = NULL;
    if (describe_or_reply(api, req, resp, name, &d) != CP_OK) {
        cp_buf_free(&tokbuf);
        return CP_EFAIL;
    }
    size_t limit = f[MAX].set && f[MAX].i < LIST_SHARDS_MAX ? (size_t) f[MAX].i : LIST_SHARDS_MAX;
    cp_buf *o = &resp->body;
    cp_buf_puts(o, "{\"Shards\":[");
    size_t shown = 0;
    int more = 0;
    uint32_t last = 0;
    for (size_t i = 0; i < d->nshards; i++) {
        const cp_stream_shard_desc *sd = &d->shards[i];
        if (has_cursor && sd->index <= cur.last) {
            continue;
        }
        if (!has_cursor && f[START].set && cp_slice_cmp(cp_slice_str(sd->id), f[START].s) <= 0) {
            continue;
        }
        if (!has_cursor && cur.filter == F_AFTER_SHARD_ID &&
            cp_slice_cmp(cp_slice_str(sd->id), sf[FSHARD].s) <= 0) {
            continue;
        }
        /* AT_LATEST: only open shards. The trim-horizon and timestamp filters list every shard
         * still within retention (expired ones are already gone): a superset of AWS's answer
         * for the timestamp filters, which consumers resolve through parent links. */
        if (cur.filter == F_AT_LATEST && !sd->open) {
            continue;
        }
        if (shown == limit) {
            more = 1;
            break;
        }
        if (shown++) {
            cp_buf_putc(o, ',');
        }
        cp__kinesis_put_shard(o, sd);
        last = sd->index;
    }
    cp_buf_putc(o, ']');
    if (more) {
        cp_buf payload = CP_BUF_INIT;
        shard_cursor next = {cp_slice_str(d->name), last, cur.filter};
        cursor_encode(&next, &payload);
        cp_buf_puts(o, ",\"NextToken\":\"");
        cp__kinesis_seal(api, CP__KINESIS_TOK_SHARDS, cp_clock_now_ms(), cp_buf_slice(&payload), o);
        cp_buf_putc(o, '"');
        cp_buf_free(&payload);
    }
    cp_buf_putc(o, '}');
    cp_stream_desc_free(d);
    cp_buf_free(&tokbuf);
    return CP_OK;
}

/* Increase/DecreaseStreamRetentionPeriod. The model puts no bounds on the hours, so 24..8760
 * and the direction are semantic checks (InvalidArgumentException, worded by the manager). */
static int retention(void *ctx, const cp_aws_req *req, cp_http_resp *resp, int increase)
{
    cp_kinesis_api *api = ctx;
    cp__kfield f[] = {CP__KF("StreamName", CP__KF_STR), CP__KF("StreamARN", CP__KF_STR),
                      CP__KF("RetentionPeriodHours", CP__KF_INT)};
    cp__verr v = CP__VERR_INIT;
    cp_slice name;
    if (stream_args_or_reply(req, resp, f, 3, &v) != CP_OK) {
        return CP_EFAIL;
    }
    if (!f[2].set) {
        cp__verr_null(&v, "retentionPeriodHours");
    }
    if (cp__verr_reply(&v, req, resp) != CP_OK ||
        cp__kinesis_stream_or_reply(req, resp, &f[0], &f[1], &name) != CP_OK) {
        return CP_EFAIL;
    }
    cp_err err = {0};
    int rc = increase ? cp_streams_increase_retention(api->streams, name, (int) f[2].i, &err)
                      : cp_streams_decrease_retention(api->streams, name, (int) f[2].i, &err);
    return rc == CP_OK ? CP_OK : cp__kinesis_reply_rc(req, resp, rc, &err);
}

static int op_increase_retention(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    return retention(ctx, req, resp, 1);
}

static int op_decrease_retention(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    return retention(ctx, req, resp, 0);
}

/* UpdateShardCount (UNIFORM_SCALING only, as AWS). AWS performs it as a series of splits and
 * merges over minutes; the manager closes every open shard and opens the target number of
 * children at once, so the stream is ACTIVE again when we answer. Refused for on-demand
 * streams, which AWS scales by itself. */
static int op_update_shard_count(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp_kinesis_api *api = ctx;
    enum { NAME, ARN, TARGET, SCALING };
    cp__kfield f[] = {CP__KF("StreamName", CP__KF_STR), CP__KF("StreamARN", CP__KF_STR),
                      CP__KF("TargetShardCount", CP__KF_INT), CP__KF("ScalingType", CP__KF_STR)};
    static const char *const scaling[] = {"UNIFORM_SCALING", NULL};
    cp__verr v = CP__VERR_INIT;
    cp_slice name;
    if (stream_args_or_reply(req, resp, f, 4, &v) != CP_OK) {
        return CP_EFAIL;
    }
    if (!f[SCALING].set) {
        cp__verr_null(&v, "scalingType");
    } else {
        cp__verr_enum(&v, f[SCALING].s, "scalingType", scaling);
    }
    if (!f[TARGET].set) {
        cp__verr_null(&v, "targetShardCount");
    } else {
        cp__verr_range(&v, &f[TARGET], "targetShardCount", 1, INT32_MAX);
    }
    cp_stream_desc *d = NULL;
    if (cp__verr_reply(&v, req, resp) != CP_OK ||
        cp__kinesis_stream_or_reply(req, resp, &f[NAME], &f[ARN], &name) != CP_OK ||
        describe_or_reply(api, req, resp, name, &d) != CP_OK) {
        return CP_EFAIL;
    }
    size_t current = d->open_shards; /* CurrentShardCount: open shards before the update */
    int on_demand = d->mode == CP_STREAM_ON_DEMAND;
    cp_stream_desc_free(d);
    if (on_demand) {
        return cp_aws_reply_errorf(resp, req->service, "ValidationException",
                                   "Request is invalid. Stream %.*s under account %s is in "
                                   "On-Demand mode.",
                                   (int) name.len, name.p, CP_KINESIS_ACCOUNT);
    }
    cp_err err = {0};
    int rc = cp_streams_update_shard_count(api->streams, name, (uint32_t) f[TARGET].i, &err);
    if (rc != CP_OK) {
        return cp__kinesis_reply_rc(req, resp, rc, &err);
    }
    cp_buf *o = &resp->body;
    cp_buf_putc(o, '{');
    cp_json_put_kv_str(o, "StreamName", name);
    cp_buf_printf(o, ",\"CurrentShardCount\":%zu,\"TargetShardCount\":%" PRId64 ",\"StreamARN\":",
                  current, f[TARGET].i);
    cp__kinesis_put_arn(o, api, req, name);
    cp_buf_putc(o, '}');
    return CP_OK;
}

/* AddTagsToStream: existing keys take the new value; 50 tags per stream at most. */
static int op_add_tags(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp_kinesis_api *api = ctx;
    cp__kfield f[] = {CP__KF("StreamName", CP__KF_STR), CP__KF("StreamARN", CP__KF_STR),
                      CP__KF("Tags", CP__KF_MAP)};
    cp__verr v = CP__VERR_INIT;
    cp_slice name;
    cp__kstr *tags;
    size_t n;
    if (stream_args_or_reply(req, resp, f, 3, &v) != CP_OK) {
        return CP_EFAIL;
    }
    if (tags_or_reply(req, resp, &f[2], &v, &tags, &n) != CP_OK) {
        cp_buf_free(&v.b);
        return CP_EFAIL;
    }
    if (!f[2].set) {
        cp__verr_null(&v, "tags");
    }
    cp_stream_desc *d = NULL;
    if (cp__verr_reply(&v, req, resp) != CP_OK ||
        cp__kinesis_stream_or_reply(req, resp, &f[0], &f[1], &name) != CP_OK ||
        describe_or_reply(api, req, resp, name, &d) != CP_OK) {
        return CP_EFAIL;
    }
    int rc = add_tags_or_reply(api, req, resp, name, d->created_ms, tags, n);
    cp_stream_desc_free(d);
    return rc;
}

/* ListTagsForStream: keys in byte order after ExclusiveStartTagKey, Limit (1..50) at a time.
 * Without a Limit every tag fits in one page (a stream has at most 50). */
static int op_list_tags(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp_kinesis_api *api = ctx;
    enum { NAME, ARN, START, LIMIT };
    cp__kfield f[] = {CP__KF("StreamName", CP__KF_STR), CP__KF("StreamARN", CP__KF_STR),
                      CP__KF("ExclusiveStartTagKey", CP__KF_STR), CP__KF("Limit", CP__KF_INT)};
    cp__verr v = CP__VERR_INIT;
    cp_slice name;
    if (stream_args_or_reply(req, resp, f, 4, &v) != CP_OK) {
        return CP_EFAIL;
    }
    if (f[START].set) {
        cp__verr_len(&v, f[START].s, "exclusiveStartTagKey", 1, 128);
    }
    cp__verr_range(&v, &f[LIMIT], "limit", 1, TAGS_PER_STREAM);
    cp_stream_desc *d = NULL;
    if (cp__verr_reply(&v, req, resp) != CP_OK ||
        cp__kinesis_stream_or_reply(req, resp, &f[NAME], &f[ARN], &name) != CP_OK ||
        describe_or_reply(api, req, resp, name, &d) != CP_OK) {
        return CP_EFAIL;
    }
    size_t limit = f[LIMIT].set ? (size_t) f[LIMIT].i : TAGS_PER_STREAM;
    cp_buf *o = &resp->body;
    cp_buf_puts(o, "{\"Tags\":[");
    pthread_mutex_lock(&api->tags_mu);
    cp__kinesis_tags *e = tags_get(api, name, d->created_ms);
    size_t i = 0, shown = 0;
    if (f[START].set) {
        int found;
        i = tag_find(e, f[START].s, &found);
        i += found;
    }
    for (; i < e->n && shown < limit; i++, shown++) {
        cp_buf_puts(o, shown ? ",{" : "{");
        cp_json_put_kv_str(o, "Key", cp_slice_str(e->t[i].key));
        cp_buf_putc(o, ',');
        cp_json_put_kv_str(o, "Value", cp_slice_str(e->t[i].val));
        cp_buf_putc(o, '}');
    }
    cp_buf_puts(o, "],");
    put_bool(o, "HasMoreTags", i < e->n);
    cp_buf_putc(o, '}');
    pthread_mutex_unlock(&api->tags_mu);
    cp_stream_desc_free(d);
    return CP_OK;
}

/* RemoveTagsFromStream: unknown keys are ignored, as AWS does. */
static int op_remove_tags(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp_kinesis_api *api = ctx;
    cp__kfield f[] = {CP__KF("StreamName", CP__KF_STR), CP__KF("StreamARN", CP__KF_STR),
                      CP__KF("TagKeys", CP__KF_LIST)};
    cp__verr v = CP__VERR_INIT;
    cp_slice name;
    cp__kstr *keys = NULL;
    size_t n = 0;
    if (stream_args_or_reply(req, resp, f, 3, &v) != CP_OK) {
        return CP_EFAIL;
    }
    if (f[2].set && cp__kinesis_strings(req, resp, f[2].s, &keys, &n) != CP_OK) {
        cp_buf_free(&v.b);
        return CP_EFAIL;
    }
    if (!f[2].set) {
        cp__verr_null(&v, "tagKeys");
    } else if (n < 1 || n > 50) {
        cp__verr_raw(&v, n < 1 ? "'[]'" : "'[...]'", "tagKeys",
                     n < 1 ? "Member must have length greater than or equal to 1"
                           : "Member must have length less than or equal to 50");
    }
    for (size_t i = 0; i < n; i++) {
        cp__verr_len(&v, keys[i].val, "tagKeys.member", 1, 128);
    }
    cp_stream_desc *d = NULL;
    if (cp__verr_reply(&v, req, resp) != CP_OK ||
        cp__kinesis_stream_or_reply(req, resp, &f[0], &f[1], &name) != CP_OK ||
        describe_or_reply(api, req, resp, name, &d) != CP_OK) {
        return CP_EFAIL;
    }
    pthread_mutex_lock(&api->tags_mu);
    cp__kinesis_tags *e = tags_get(api, name, d->created_ms);
    for (size_t i = 0; i < n; i++) {
        int found;
        size_t at = tag_find(e, keys[i].val, &found);
        if (found) {
            cp_free(e->t[at].key);
            cp_free(e->t[at].val);
            memmove(e->t + at, e->t + at + 1, (e->n - at - 1) * sizeof(*e->t));
            e->n--;
        }
    }
    pthread_mutex_unlock(&api->tags_mu);
    cp_stream_desc_free(d);
    return CP_OK;
}

/* ================================================================ operation table */

const cp_aws_op cp__kinesis_ops[] = {
    {"AddTagsToStream", op_add_tags, 0},
    {"CreateStream", op_create_stream, 0},
    {"DecreaseStreamRetentionPeriod", op_decrease_retention, 0},
    {"DeleteStream", op_delete_stream, 0},
    {"DescribeStream", op_describe_stream, 0},
    {"DescribeStreamSummary", op_describe_stream_summary, 0},
    {"GetRecords", cp__kinesis_op_get_records, 0},
    {"GetShardIterator", cp__kinesis_op_get_shard_iterator, 0},
    {"IncreaseStreamRetentionPeriod", op_increase_retention, 0},
    {"ListShards", op_list_shards, 0},
    {"ListStreams", op_list_streams, 0},
    {"ListTagsForStream", op_list_tags, 0},
    /* The hot paths validate their own JSON in the one pass that decodes them. */
    {"PutRecord", cp__kinesis_op_put_record, CP_AWS_OP_RAW_JSON},
    {"PutRecords", cp__kinesis_op_put_records, CP_AWS_OP_RAW_JSON},
    {"RemoveTagsFromStream", op_remove_tags, 0},
    {"UpdateShardCount", op_update_shard_count, 0},
    {NULL, NULL, 0},
};
