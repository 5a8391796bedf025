/* SPDX-License-Identifier: MIT */
/*
 * Query and Scan. A page reads items in key order until Limit items have been *evaluated* or
 * the read size (before FilterExpression and projection) reaches 1 MB, then filters, projects
 * and reports Count (after the filter), ScannedCount (read) and LastEvaluatedKey (the last
 * item read) whenever it stopped early. Like AWS it never looks ahead: a page that stops by
 * Limit exactly on the last item still carries LastEvaluatedKey, and the next page is empty.
 */
#include <stdio.h>
#include <string.h>

#include "dynamo/dynamo_int.h"

typedef struct qs_req {
    int query;
    cp_slice table, index, select, segment_s;
    int has_table, has_index, has_select;
    int64_t limit, segment, total;
    int has_limit, has_segment, has_total;
    int consistent, has_consistent;
    int forward, has_forward;
    cp_buf start;
    int has_start;
    cp_slice rcc;
    int has_rcc;
    cp__dynamo_exprs x;
    cp__dynamo_verr verr;
} qs_req;

static int qs_member(cp__dynamo_call *c, cp_slice name, void *ctx)
{
    qs_req *r = ctx;
    if (cp__dynamo_is(name, "TableName")) {
        return cp__dynamo_str(c, &r->table, &r->has_table);
    }
    if (cp__dynamo_is(name, "IndexName")) {
        return cp__dynamo_str(c, &r->index, &r->has_index);
    }
    if (cp__dynamo_is(name, "Select")) {
        return cp__dynamo_str(c, &r->select, &r->has_select);
    }
    if (cp__dynamo_is(name, "Limit")) {
        return cp__dynamo_int(c, "Integer", &r->limit, &r->has_limit);
    }
    if (cp__dynamo_is(name, "ConsistentRead")) {
        return cp__dynamo_bool(c, &r->consistent, &r->has_consistent);
    }
    if (cp__dynamo_is(name, "ReturnConsumedCapacity")) {
        return cp__dynamo_str(c, &r->rcc, &r->has_rcc);
    }
    if (cp__dynamo_is(name, "ExclusiveStartKey")) {
        cp_buf_reset(&r->start);
        int rc = cp__dynamo_item(c, &r->start);
        if (rc < 0 && strncmp(c->err.msg, "SerializationException", 22) != 0) {
            char msg[sizeof(c->err.msg)];
            snprintf(msg, sizeof(msg), "%s", c->err.msg);
            cp_err_set(&c->err, rc, "The provided starting key is invalid: %s", msg);
        }
        r->has_start = rc == 1;
        return rc < 0 ? rc : 1;
    }
    if (r->query && cp__dynamo_is(name, "ScanIndexForward")) {
        return cp__dynamo_bool(c, &r->forward, &r->has_forward);
    }
    if (!r->query && cp__dynamo_is(name, "Segment")) {
        return cp__dynamo_int(c, "Integer", &r->segment, &r->has_segment);
    }
    if (!r->query && cp__dynamo_is(name, "TotalSegments")) {
        return cp__dynamo_int(c, "Integer", &r->total, &r->has_total);
    }
    return cp__dynamo_exprs_member(c, name, &r->x, &r->verr);
}

static void add_num_error(cp__dynamo_verr *v, int64_t value, const char *path, const char *rule)
{
    char val[32];
    snprintf(val, sizeof(val), "%lld", (long long) value);
    cp__dynamo_verr_add(v, val, path, rule);
}

/* One page being read. */
typedef struct page {
    const cp_expr *expr;
    const cp_key_schema *key;
    int count_only;
    size_t limit;      /* 0: none */
    size_t page_bytes; /* read size that ends a page */
    size_t scanned, count;
    uint64_t bytes; /* DynamoDB size of everything read */
    int stopped;
    cp_buf last_key;
    cp_buf *items; /* Items JSON, comma-separated */
    cp_buf proj;
} page;

/* Runs inside the store's read transaction: no blocking, only building the response. */
static int visit(void *ctx, cp_slice item)
{
    page *p = ctx;
    p->scanned++;
    p->bytes += cp_item_size(item);
    if (cp_expr_eval_filter(p->expr, item)) {
        if (!p->count_only) {
            cp_buf_reset(&p->proj);
            cp_expr_project(p->expr, item, &p->proj);
            cp_buf_puts(p->items, p->count ? "," : "");
            cp_item_to_json(cp_buf_slice(&p->proj), p->items);
        }
        p->count++;
    }
    if ((p->limit && p->scanned >= p->limit) || p->bytes >= p->page_bytes) {
        cp_buf_reset(&p->last_key);
        cp_db_extract_key(p->key, item, &p->last_key);
        p->stopped = 1;
        return 1;
    }
    return 0;
}

static int query_or_scan(cp__dynamo_call *c, int query)
{
    qs_req r = {.query = query, .forward = 1};
    cp_expr *expr = NULL;
    cp_table_info t = {0};
    int have_t = 0;
    cp_err deferred;
    page p = {0};
    cp_buf items = CP_BUF_INIT;
    int rc = cp__dynamo_read_request(c, qs_member, &r, &deferred);
    if (rc < 0) {
        goto fail;
    }
    cp__dynamo_verr *v = &r.verr;
    cp__dynamo_check_table_name(v, r.table, r.has_table, "tableName");
    if (r.has_index) {
        cp__dynamo_check_table_name(v, r.index, 1, "indexName");
    }
    static const char *const selects[] = {"SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES",
                                          "ALL_PROJECTED_ATTRIBUTES", NULL};
    int select = -1;
    if (r.has_select) {
        select = cp__dynamo_check_enum(v, r.select, "select", selects,
                                       "SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, "
                                       "ALL_PROJECTED_ATTRIBUTES");
    }
    if (r.has_limit && r.limit < 1) {
        add_num_error(v, r.limit, "limit", "Member must have value greater than or equal to 1");
    }
    if (r.has_segment && (r.segment < 0 || r.segment > 999999)) {
        add_num_error(v, r.segment, "segment",
                      r.segment < 0 ? "Member must have value greater than or equal to 0"
                                    : "Member must have value less than or equal to 999999");
    }
    if (r.has_total && (r.total < 1 || r.total > 1000000)) {
        add_num_error(v, r.total, "totalSegments",
                      r.total < 1 ? "Member must have value greater than or equal to 1"
                                  : "Member must have value less than or equal to 1000000");
    }
    cp__dynamo_rcc mode = cp__dynamo_rcc_parse(v, r.rcc, r.has_rcc);
    if ((rc = cp__dynamo_verr_done(v, c)) < 0) {
        goto fail;
    }
    if (deferred.code != CP_OK) {
        c->err = deferred;
        rc = deferred.code;
        goto fail;
    }
    if (r.has_segment && !r.has_total) {
        rc = cp_err_set(&c->err, CP_EINVAL,
                        "The TotalSegments parameter is required but was not present in the "
                        "request when Segment parameter is present");
        goto fail;
    }
    if (r.has_total && !r.has_segment) {
        rc = cp_err_set(&c->err, CP_EINVAL,
                        "The Segment parameter is required but was not present in the request "
                        "when parameter TotalSegments is present");
        goto fail;
    }
    if (r.has_segment && r.segment >= r.total) {
        rc = cp_err_set(&c->err, CP_EINVAL,
                        "The Segment parameter is zero-based and must be less than parameter "
                        "TotalSegments: Segment: %lld is not less than TotalSegments: %lld",
                        (long long) r.segment, (long long) r.total);
        goto fail;
    }
    int has_proj = r.x.in.projection.p != NULL, has_atg = r.x.in.attributes_to_get != NULL;
    if (select == 0 && !has_proj && !has_atg) {
        rc = cp_err_set(&c->err, CP_EINVAL,
                        "Must specify the AttributesToGet or ProjectionExpression when choosing "
                        "to get SPECIFIC_ATTRIBUTES");
        goto fail;
    }
    if (select > 0 && (has_proj || has_atg)) {
        rc = cp_err_set(&c->err, CP_EINVAL, "Cannot specify the %s when choosing to get %s",
                        has_proj ? "ProjectionExpression" : "AttributesToGet",
                        select == 1 ? "only the Count" : selects[select]);
        goto fail;
    }
    if (select == 3 && !r.has_index) {
        rc = cp_err_set(&c->err, CP_EINVAL,
                        "ALL_PROJECTED_ATTRIBUTES can be used only when %s using an IndexName",
                        query ? "Querying" : "Scanning");
        goto fail;
    }
    if ((rc = cp__dynamo_exprs_compile(c, &r.x, query ? CP_EXPR_OP_QUERY : CP_EXPR_OP_SCAN,
                                       &expr)) < 0) {
        goto fail;
    }
    if (query && !cp_expr_has_key_condition(expr)) {
        rc = cp_err_set(&c->err, CP_EINVAL,
                        "Either the KeyConditions or KeyConditionExpression parameter must be "
                        "specified in the request.");
        goto fail;
    }
    if ((rc = cp__dynamo_table(c, cp__dynamo_table_name(c, r.table), &t)) < 0) {
        goto fail;
    }
    have_t = 1;
    if (r.has_index) {
        /* No secondary indexes exist in changepipe yet, so every index is unknown. */
        rc = cp_err_set(&c->err, CP_EINVAL, "The table does not have the specified index: %.*s",
                        (int) r.index.len, r.index.p);
        goto fail;
    }
    cp_expr_keys keys = cp__dynamo_expr_keys(&t);
    cp_key_cond kc = {0};
    if (query && (rc = cp_expr_key_condition(expr, &keys, &kc, &c->err)) < 0) {
        goto fail;
    }
    cp_slice start = r.has_start ? cp_buf_slice(&r.start) : (cp_slice){NULL, 0};
    if (r.has_start) {
        if ((rc = cp__dynamo_check_key(c, &t, start, 0)) < 0) {
            char msg[sizeof(c->err.msg)];
            snprintf(msg, sizeof(msg), "%s", c->err.msg);
            rc = cp_err_set(&c->err, CP_EINVAL, "The provided starting key is invalid: %s", msg);
            goto fail;
        }
        cp_av h;
        if (query &&
            (!cp_item_find(start, cp_slice_str(t.key.hash_name), &h) || !cp_av_equal(h, kc.hash))) {
            rc = cp_err_set(&c->err, CP_EINVAL,
                            "The provided starting key is outside query boundaries based on "
                            "provided conditions");
            goto fail;
        }
    }
    if (cp__dynamo_admit(c, &t, (cp_slice){NULL, 0}, cp__dynamo_read_units(0, r.consistent), 0)) {
        rc = cp__dynamo_fail_throttled(c, &t);
        goto out;
    }

    p.expr = expr;
    p.key = &t.key;
    p.count_only = select == 1;
    p.limit = r.has_limit ? (size_t) r.limit : 0;
    p.page_bytes = c->api->cfg.page_bytes;
    p.items = &items;
    if (query) {
        cp_db_query q = {t.name, kc.hash, (cp_range_op) kc.op, kc.r1, kc.r2, !r.forward, start};
        rc = cp_db_query_items(c->api->db, &q, visit, &p, &c->err);
    } else {
        cp_db_scan s = {t.name, r.has_segment ? (uint32_t) r.segment : 0,
                        r.has_total ? (uint32_t) r.total : 0, start};
        rc = cp_db_scan_items(c->api->db, &s, visit, &p, &c->err);
    }
    if (rc < 0) {
        goto fail;
    }
    cp_buf *out = &c->resp->body;
    cp_buf_putc(out, '{');
    if (!p.count_only) {
        cp_buf_puts(out, "\"Items\":[");
        cp_buf_append(out, items.p, items.len);
        cp_buf_puts(out, "],");
    }
    cp_buf_printf(out, "\"Count\":%zu,\"ScannedCount\":%zu", p.count, p.scanned);
    if (p.stopped) {
        cp_buf_puts(out, ",\"LastEvaluatedKey\":");
        cp_item_to_json(cp_buf_slice(&p.last_key), out);
    }
    cp__dynamo_put_capacity(out, mode, t.name,
                            cp__dynamo_read_units((size_t) p.bytes, r.consistent), 1);
    cp_buf_putc(out, '}');
    rc = CP_OK;
    goto out;
fail:
    rc = cp__dynamo_fail(c, rc);
out:
    cp_buf_free(&items);
    cp_buf_free(&p.proj);
    cp_buf_free(&p.last_key);
    cp_buf_free(&r.start);
    cp_buf_free(&r.verr.msg);
    cp__dynamo_exprs_free(&r.x);
    cp_expr_free(expr);
    if (have_t) {
        cp_table_info_clear(&t);
    }
    return rc;
}

int cp__dynamo_query(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    return query_or_scan(&c, 1);
}

int cp__dynamo_scan(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    return query_or_scan(&c, 0);
}
