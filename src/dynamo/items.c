/* SPDX-License-Identifier: MIT */
/*
 * Single-item operations: PutItem, GetItem, UpdateItem, DeleteItem. Each one reads its request
 * in one pass (items decode straight into the binary encoding), validates in AWS's order
 * (shape, constraints, values, parameter combinations, expressions, then the table and its
 * key schema), and hands one write to the store, whose committer evaluates the condition and
 * applies the update against the current item under its write lock.
 */
#include <string.h>

#include "dynamo/dynamo_int.h"

/* ------------------------------------------------------------------------------------------ */
/* Shared by the write paths (also batch.c)                                                    */

int cp__dynamo_cond_cb(void *ctx, cp_slice cur, cp_err *err)
{
    (void) err;
    return cp_expr_eval_condition(ctx, cur) ? CP_OK : CP_ECONDITION;
}

int cp__dynamo_update_cb(void *ctx, cp_slice cur, cp_buf *out, cp_err *err)
{
    const cp__dynamo_upd *u = ctx;
    return cp_expr_apply_update(u->expr, cur, u->key, out, err);
}

/* UpdateItem's condition: both callbacks share the op's ctx. */
static int upd_cond_cb(void *ctx, cp_slice cur, cp_err *err)
{
    (void) err;
    return cp_expr_eval_condition(((const cp__dynamo_upd *) ctx)->expr, cur) ? CP_OK
                                                                             : CP_ECONDITION;
}

int cp__dynamo_check_key(cp__dynamo_call *c, const cp_table_info *t, cp_slice item, int whole_item)
{
    return cp_db_check_key(&t->key, item, whole_item, &c->err);
}

void cp__dynamo_key_id(const cp_table_info *t, cp_slice item, cp_buf *out)
{
    cp_buf_put_u32le(out, t->id);
    cp_buf kb = CP_BUF_INIT;
    cp_av v;
    if (cp_item_find(item, cp_slice_str(t->key.hash_name), &v)) {
        cp_av_key_bytes(v, &kb);
    }
    cp_buf_put_bytes(out, kb.p, kb.len);
    cp_buf_reset(&kb);
    if (t->key.range_type && cp_item_find(item, cp_slice_str(t->key.range_name), &v)) {
        cp_av_key_bytes(v, &kb);
    }
    cp_buf_put_bytes(out, kb.p, kb.len);
    cp_buf_free(&kb);
}

/* ------------------------------------------------------------------------------------------ */
/* Request                                                                                     */

typedef enum { RV_NONE = 0, RV_ALL_OLD, RV_UPDATED_OLD, RV_ALL_NEW, RV_UPDATED_NEW } rv_kind;

typedef struct item_req {
    const char *item_member; /* "Item" (PutItem) or "Key" */
    cp_slice table;
    int has_table;
    cp_buf item;
    int has_item;
    cp__dynamo_exprs x;
    cp__dynamo_verr verr;
    cp_slice rv, rvf, rcc, ricm;
    int has_rv, has_rvf, has_rcc, has_ricm;
    int consistent;
    /* resolved */
    rv_kind return_values;
    int old_on_fail;
    cp__dynamo_rcc mode;
    cp_expr *expr;
    cp_table_info t;
    int have_t;
} item_req;

static int item_member(cp__dynamo_call *c, cp_slice name, void *ctx)
{
    item_req *r = ctx;
    int have;
    if (cp__dynamo_is(name, "TableName")) {
        return cp__dynamo_str(c, &r->table, &r->has_table);
    }
    if (cp__dynamo_is(name, r->item_member)) {
        cp_buf_reset(&r->item);
        int rc = cp__dynamo_item(c, &r->item);
        r->has_item = rc != 0; /* present even when its value failed (reported later) */
        return rc < 0 ? rc : 1;
    }
    if (cp__dynamo_is(name, "ReturnValues")) {
        return cp__dynamo_str(c, &r->rv, &r->has_rv);
    }
    if (cp__dynamo_is(name, "ReturnValuesOnConditionCheckFailure")) {
        return cp__dynamo_str(c, &r->rvf, &r->has_rvf);
    }
    if (cp__dynamo_is(name, "ReturnConsumedCapacity")) {
        return cp__dynamo_str(c, &r->rcc, &r->has_rcc);
    }
    if (cp__dynamo_is(name, "ReturnItemCollectionMetrics")) {
        return cp__dynamo_str(c, &r->ricm, &r->has_ricm);
    }
    if (cp__dynamo_is(name, "ConsistentRead")) {
        int rc = cp__dynamo_bool(c, &r->consistent, &have);
        if (rc == CP_OK && !have) {
            r->consistent = 0;
        }
        return rc;
    }
    return cp__dynamo_exprs_member(c, name, &r->x, &r->verr);
}

static void item_req_free(item_req *r)
{
    cp_buf_free(&r->item);
    cp__dynamo_exprs_free(&r->x);
    cp_buf_free(&r->verr.msg);
    cp_expr_free(r->expr);
    if (r->have_t) {
        cp_table_info_clear(&r->t);
    }
}

/*
 * Read and validate everything up to the table lookup. `op` decides the allowed ReturnValues.
 * On failure the error is replied and < 0 returned.
 */
static int item_prepare(cp__dynamo_call *c, item_req *r, cp_expr_op op)
{
    cp_err deferred;
    int rc = cp__dynamo_read_request(c, item_member, r, &deferred);
    if (rc < 0) {
        return cp__dynamo_fail(c, rc);
    }
    cp__dynamo_check_table_name(&r->verr, r->table, r->has_table, "tableName");
    if (!r->has_item) {
        cp__dynamo_verr_add(&r->verr, NULL, op == CP_EXPR_OP_PUT ? "item" : "key",
                            "Member must not be null");
    }
    if (r->has_rv) {
        static const char *const names[] = {"NONE",    "ALL_OLD",     "UPDATED_OLD",
                                            "ALL_NEW", "UPDATED_NEW", NULL};
        int i = cp__dynamo_check_enum(&r->verr, r->rv, "returnValues", names,
                                      "NONE, ALL_OLD, UPDATED_OLD, ALL_NEW, UPDATED_NEW");
        r->return_values = i < 0 ? RV_NONE : (rv_kind) i;
    }
    if (r->has_rvf) {
        static const char *const names[] = {"ALL_OLD", "NONE", NULL};
        r->old_on_fail =
            cp__dynamo_check_enum(&r->verr, r->rvf, "returnValuesOnConditionCheckFailure", names,
                                  "ALL_OLD, NONE") == 0;
    }
    r->mode = cp__dynamo_rcc_parse(&r->verr, r->rcc, r->has_rcc);
    if (r->has_ricm) {
        static const char *const names[] = {"SIZE", "NONE", NULL};
        cp__dynamo_check_enum(&r->verr, r->ricm, "returnItemCollectionMetrics", names,
                              "SIZE, NONE");
    }
    if ((rc = cp__dynamo_verr_done(&r->verr, c)) < 0) {
        return cp__dynamo_fail(c, rc);
    }
    if (deferred.code != CP_OK) {
        c->err = deferred;
        return cp__dynamo_fail(c, deferred.code);
    }
    if (op == CP_EXPR_OP_PUT && cp_item_size(cp_buf_slice(&r->item)) > CP_ITEM_MAX_SIZE) {
        return cp__dynamo_fail_code(c, "ValidationException",
                                    "Item size has exceeded the maximum allowed size");
    }
    if ((op == CP_EXPR_OP_PUT || op == CP_EXPR_OP_DELETE) && r->return_values != RV_NONE &&
        r->return_values != RV_ALL_OLD) {
        return cp__dynamo_fail_code(c, "ValidationException",
                                    "ReturnValues can only be ALL_OLD or NONE");
    }
    if ((rc = cp__dynamo_exprs_compile(c, &r->x, op, &r->expr)) < 0) {
        return cp__dynamo_fail(c, rc);
    }
    const char *tname = cp__dynamo_table_name(c, r->table);
    if ((rc = cp__dynamo_table(c, tname, &r->t)) < 0) {
        return cp__dynamo_fail(c, rc);
    }
    r->have_t = 1;
    cp_slice item = cp_buf_slice(&r->item);
    if ((rc = cp__dynamo_check_key(c, &r->t, item, op == CP_EXPR_OP_PUT)) < 0) {
        return cp__dynamo_fail(c, rc);
    }
    cp_expr_keys keys = cp__dynamo_expr_keys(&r->t);
    if (op != CP_EXPR_OP_GET && (rc = cp_expr_check_keys(r->expr, &keys, &c->err)) < 0) {
        return cp__dynamo_fail(c, rc);
    }
    return CP_OK;
}

/* "Attributes":{...} (with a leading comma when `comma`), omitted for an empty item. */
static int put_attributes(cp_buf *out, cp_slice item, int comma)
{
    if (!item.len || cp_item_count(item) == 0) {
        return 0;
    }
    if (comma) {
        cp_buf_putc(out, ',');
    }
    cp_buf_puts(out, "\"Attributes\":");
    cp_item_to_json(item, out);
    return 1;
}

/* The ConditionalCheckFailedException, with the current item when the request asked. */
static int fail_condition(cp__dynamo_call *c, const item_req *r, const cp_write_op *op)
{
    if (r->old_on_fail && op->old_item.len) {
        cp_buf extra = CP_BUF_INIT;
        cp_buf_puts(&extra, ",\"Item\":");
        cp_item_to_json(cp_buf_slice(&op->old_item), &extra);
        int rc =
            cp_aws_reply_error_extra(c->resp, c->req->service, "ConditionalCheckFailedException",
                                     "The conditional request failed", cp_buf_slice(&extra));
        cp_buf_free(&extra);
        return rc;
    }
    return cp__dynamo_fail(c, CP_ECONDITION);
}

/* Run one write and reply its errors; CP_OK when the write went through. */
static int write_one(cp__dynamo_call *c, const item_req *r, cp_write_op *op)
{
    int rc = cp_db_write(c->api->db, op, 1, 0, &c->err);
    if (rc < 0) {
        return cp__dynamo_fail(c, rc);
    }
    if (op->rc == CP_ECONDITION) {
        return fail_condition(c, r, op);
    }
    if (op->rc < 0) {
        c->err = op->err;
        return cp__dynamo_fail(c, op->rc);
    }
    return CP_OK;
}

static size_t max_size(const cp_write_op *op)
{
    size_t a = op->old_item.len ? cp_item_size(cp_buf_slice(&op->old_item)) : 0;
    size_t b = op->new_item.len ? cp_item_size(cp_buf_slice(&op->new_item)) : 0;
    return a > b ? a : b;
}

/* ------------------------------------------------------------------------------------------ */
/* Operations                                                                                  */

/* PutItem and DeleteItem: one write, an optional condition, ALL_OLD, consumed capacity. */
static int put_or_delete(void *ctx, const cp_aws_req *req, cp_http_resp *resp,
                         cp_write_kind kind)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    item_req r = {.item_member = kind == CP_WRITE_PUT ? "Item" : "Key"};
    int rc = item_prepare(&c, &r, kind == CP_WRITE_PUT ? CP_EXPR_OP_PUT : CP_EXPR_OP_DELETE);
    /* Admission estimates: a put costs its new item, a delete at least one unit. */
    if (rc == CP_OK &&
        cp__dynamo_admit(&c, &r.t, cp_buf_slice(&r.item), 0,
                         kind == CP_WRITE_PUT
                             ? cp__dynamo_write_units(cp_item_size(cp_buf_slice(&r.item)))
                             : 1)) {
        rc = cp__dynamo_fail_throttled(&c, &r.t);
    }
    if (rc == CP_OK) {
        cp_write_op op = {.kind = kind,
                          .table = r.t.name,
                          .item = cp_buf_slice(&r.item),
                          .condition = cp_expr_has_condition(r.expr) ? cp__dynamo_cond_cb : NULL,
                          .ctx = r.expr,
                          .want_images = r.return_values != RV_NONE || r.mode != CP__RCC_NONE};
        rc = write_one(&c, &r, &op);
        if (rc == CP_OK) {
            cp_buf *out = &resp->body;
            cp_buf_putc(out, '{');
            int comma = 0;
            if (r.return_values == RV_ALL_OLD) {
                comma = put_attributes(out, cp_buf_slice(&op.old_item), 0);
            }
            cp__dynamo_put_capacity(out, r.mode, r.t.name, cp__dynamo_write_units(max_size(&op)),
                                    comma);
            cp_buf_putc(out, '}');
        }
        cp_write_op_clear(&op);
    }
    item_req_free(&r);
    return rc;
}

int cp__dynamo_put_item(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    return put_or_delete(ctx, req, resp, CP_WRITE_PUT);
}

int cp__dynamo_delete_item(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    return put_or_delete(ctx, req, resp, CP_WRITE_DELETE);
}

int cp__dynamo_update_item(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    item_req r = {.item_member = "Key"};
    int rc = item_prepare(&c, &r, CP_EXPR_OP_UPDATE);
    if (rc == CP_OK && cp__dynamo_admit(&c, &r.t, cp_buf_slice(&r.item), 0, 1)) {
        rc = cp__dynamo_fail_throttled(&c, &r.t);
    }
    if (rc == CP_OK) {
        cp__dynamo_upd u = {r.expr, cp_buf_slice(&r.item)};
        /* The condition runs first, then the update, both against the current item. */
        cp_write_op op = {.kind = CP_WRITE_UPDATE,
                          .table = r.t.name,
                          .item = cp_buf_slice(&r.item),
                          .condition = cp_expr_has_condition(r.expr) ? upd_cond_cb : NULL,
                          .update = cp__dynamo_update_cb,
                          .ctx = &u,
                          .want_images = r.return_values != RV_NONE || r.mode != CP__RCC_NONE};
        rc = write_one(&c, &r, &op);
        if (rc == CP_OK) {
            cp_buf *out = &resp->body;
            cp_buf_putc(out, '{');
            int comma = 0;
            cp_buf proj = CP_BUF_INIT;
            switch (r.return_values) {
            case RV_ALL_OLD:
                comma = put_attributes(out, cp_buf_slice(&op.old_item), 0);
                break;
            case RV_ALL_NEW:
                comma = put_attributes(out, cp_buf_slice(&op.new_item), 0);
                break;
            case RV_UPDATED_OLD:
            case RV_UPDATED_NEW: {
                cp_slice src =
                    cp_buf_slice(r.return_values == RV_UPDATED_OLD ? &op.old_item : &op.new_item);
                if (src.len) {
                    cp_expr_project_updated(r.expr, src, &proj);
                    comma = put_attributes(out, cp_buf_slice(&proj), 0);
                }
                break;
            }
            case RV_NONE:
                break;
            }
            cp_buf_free(&proj);
            cp__dynamo_put_capacity(out, r.mode, r.t.name, cp__dynamo_write_units(max_size(&op)),
                                    comma);
            cp_buf_putc(out, '}');
        }
        cp_write_op_clear(&op);
    }
    item_req_free(&r);
    return rc;
}

int cp__dynamo_get_item(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    item_req r = {.item_member = "Key"};
    int rc = item_prepare(&c, &r, CP_EXPR_OP_GET);
    if (rc == CP_OK && cp__dynamo_admit(&c, &r.t, cp_buf_slice(&r.item),
                                        cp__dynamo_read_units(0, r.consistent), 0)) {
        rc = cp__dynamo_fail_throttled(&c, &r.t);
    }
    if (rc == CP_OK) {
        cp_buf item = CP_BUF_INIT;
        rc = cp_db_get(c.api->db, r.t.name, cp_buf_slice(&r.item), &item, &c.err);
        if (rc == CP_OK || rc == CP_ENOTFOUND) {
            int found = rc == CP_OK;
            rc = CP_OK;
            cp_buf *out = &resp->body;
            cp_buf_putc(out, '{');
            int comma = 0;
            if (found) {
                cp_buf proj = CP_BUF_INIT;
                cp_expr_project(r.expr, cp_buf_slice(&item), &proj);
                cp_buf_puts(out, "\"Item\":");
                cp_item_to_json(cp_buf_slice(&proj), out);
                cp_buf_free(&proj);
                comma = 1;
            }
            cp__dynamo_put_capacity(
                out, r.mode, r.t.name,
                cp__dynamo_read_units(found ? cp_item_size(cp_buf_slice(&item)) : 0, r.consistent),
                comma);
            cp_buf_putc(out, '}');
        } else {
            rc = cp__dynamo_fail(&c, rc);
        }
        cp_buf_free(&item);
    }
    item_req_free(&r);
    return rc;
}
