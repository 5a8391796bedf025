/* SPDX-License-Identifier: MIT */
/*
 * TransactWriteItems and TransactGetItems. A write transaction goes to the store as one
 * CP_WRITE_ATOMIC group: all or nothing, one change record per changed item. AWS checks every
 * condition and reports each failure in CancellationReasons; the store stops at the first
 * failing op, so the condition callbacks here record failures instead of failing, and the last
 * op's callback fails the group when any condition did. Every reason is thus reported, and
 * nothing is written.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "dynamo/dynamo_int.h"

#define TRANSACT_MAX 100

typedef struct tx_item {
    int nactions;
    cp_write_kind kind;
    cp_slice table;
    int has_table;
    cp_buf item;
    int has_item;
    cp__dynamo_exprs x;
    cp_slice rvf;
    int has_rvf, old_on_fail;
    cp_expr *expr;
    cp_table_info t;
    int have_t;
    /* filled on the committer thread */
    int cond_failed;
    cp_buf old;
} tx_item;

typedef struct tx_req {
    int get; /* TransactGetItems */
    tx_item *items;
    size_t n, cap;
    size_t extra; /* actions past the limit, counted only */
    int has_items;
    cp_slice token, rcc, ricm;
    int has_token, has_rcc, has_ricm;
    cp__dynamo_verr verr;
    int any_failed; /* committer thread: some condition failed */
} tx_req;

static const char *const ACTIONS[] = {"ConditionCheck", "Put", "Delete", "Update", NULL};
static const cp_write_kind KINDS[] = {CP_WRITE_CHECK, CP_WRITE_PUT, CP_WRITE_DELETE,
                                      CP_WRITE_UPDATE};

static int read_action(cp__dynamo_call *c, tx_req *r, tx_item *it, cp_write_kind kind)
{
    int rc = cp__dynamo_obj(c, "structure");
    if (rc <= 0) {
        return rc;
    }
    it->nactions++;
    it->kind = kind;
    const char *item_member = kind == CP_WRITE_PUT ? "Item" : "Key";
    cp_slice m;
    while ((rc = cp__dynamo_member(c, &m)) == 1) {
        if (cp__dynamo_is(m, "TableName")) {
            rc = cp__dynamo_str(c, &it->table, &it->has_table);
        } else if (cp__dynamo_is(m, item_member)) {
            cp_buf_reset(&it->item);
            rc = cp__dynamo_item(c, &it->item);
            it->has_item = rc == 1;
        } else if (!r->get && cp__dynamo_is(m, "ReturnValuesOnConditionCheckFailure")) {
            rc = cp__dynamo_str(c, &it->rvf, &it->has_rvf);
        } else if ((rc = cp__dynamo_exprs_member(c, m, &it->x, &r->verr)) == CP__DYNAMO_UNKNOWN) {
            rc = cp__dynamo_skip(c);
        }
        if (rc < 0) {
            return rc;
        }
    }
    return rc;
}

static int tx_member(cp__dynamo_call *c, cp_slice name, void *ctx)
{
    tx_req *r = ctx;
    if (cp__dynamo_is(name, "ClientRequestToken") && !r->get) {
        return cp__dynamo_str(c, &r->token, &r->has_token);
    }
    if (cp__dynamo_is(name, "ReturnConsumedCapacity")) {
        return cp__dynamo_str(c, &r->rcc, &r->has_rcc);
    }
    if (cp__dynamo_is(name, "ReturnItemCollectionMetrics") && !r->get) {
        return cp__dynamo_str(c, &r->ricm, &r->has_ricm);
    }
    if (!cp__dynamo_is(name, "TransactItems")) {
        return CP__DYNAMO_UNKNOWN;
    }
    int rc = cp__dynamo_arr(c);
    r->has_items = rc == 1;
    while (rc == 1 && (rc = cp__dynamo_arr_more(c)) == 1) {
        if ((rc = cp__dynamo_obj(c, "structure")) < 0) {
            return rc;
        }
        if (rc == 0) {
            rc = 1;
            continue;
        }
        if (r->n > TRANSACT_MAX) {
            /* Already too many: count the rest (for the message) without keeping them. */
            r->extra++;
            cp_json_tok t = {.type = CP_JSON_OBJ_BEGIN};
            if (cp_json_skip(&c->lx, &t) < 0) {
                return cp_err_set(&c->err, CP_EINVAL, "SerializationException");
            }
            rc = 1;
            continue;
        }
        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 8;
            r->items = cp_realloc(r->items, r->cap * sizeof(*r->items));
        }
        tx_item *it = &r->items[r->n++];
        memset(it, 0, sizeof(*it));
        cp_slice m;
        while ((rc = cp__dynamo_member(c, &m)) == 1) {
            int a = -1;
            for (int i = 0; ACTIONS[i]; i++) {
                if (r->get ? i == 0 && cp__dynamo_is(m, "Get") : cp__dynamo_is(m, ACTIONS[i])) {
                    a = i;
                }
            }
            rc = a < 0 ? cp__dynamo_skip(c)
                       : read_action(c, r, it, r->get ? CP_WRITE_CHECK : KINDS[a]);
            if (rc < 0) {
                return rc;
            }
        }
        if (rc < 0) {
            return rc;
        }
        rc = 1;
    }
    return rc < 0 ? rc : 1;
}

static void tx_req_free(tx_req *r)
{
    for (size_t i = 0; i < r->n; i++) {
        tx_item *it = &r->items[i];
        cp_buf_free(&it->item);
        cp_buf_free(&it->old);
        cp__dynamo_exprs_free(&it->x);
        cp_expr_free(it->expr);
        if (it->have_t) {
            cp_table_info_clear(&it->t);
        }
    }
    cp_free(r->items);
    cp_buf_free(&r->verr.msg);
}

static const char *kind_path(const tx_req *r, cp_write_kind k)
{
    if (r->get) {
        return "get";
    }
    switch (k) {
    case CP_WRITE_CHECK:
        return "conditionCheck";
    case CP_WRITE_PUT:
        return "put";
    case CP_WRITE_DELETE:
        return "delete";
    case CP_WRITE_UPDATE:
        return "update";
    }
    return "put";
}

/* Everything up to the store call: constraints, actions, expressions, tables, keys, duplicates. */
static int tx_prepare(cp__dynamo_call *c, tx_req *r, cp__dynamo_rcc *mode)
{
    cp_err deferred;
    int rc = cp__dynamo_read_request(c, tx_member, r, &deferred);
    if (rc < 0) {
        return rc;
    }
    cp__dynamo_verr *v = &r->verr;
    if (!r->has_items) {
        cp__dynamo_verr_add(v, NULL, "transactItems", "Member must not be null");
    } else if (r->n < 1 || r->n + r->extra > TRANSACT_MAX) {
        cp__dynamo_verr_add(v, "[...]", "transactItems",
                            r->n < 1 ? "Member must have length greater than or equal to 1"
                                     : "Member must have length less than or equal to 100");
    }
    for (size_t i = 0; i < r->n && r->n <= TRANSACT_MAX; i++) {
        tx_item *it = &r->items[i];
        if (it->nactions != 1) {
            continue;
        }
        char path[128];
        snprintf(path, sizeof(path), "transactItems.%zu.member.%s.tableName", i + 1,
                 kind_path(r, it->kind));
        cp__dynamo_check_table_name(v, it->table, it->has_table, path);
        if (!it->has_item) {
            snprintf(path, sizeof(path), "transactItems.%zu.member.%s.%s", i + 1,
                     kind_path(r, it->kind), it->kind == CP_WRITE_PUT ? "item" : "key");
            cp__dynamo_verr_add(v, NULL, path, "Member must not be null");
        }
        if (it->has_rvf) {
            static const char *const names[] = {"ALL_OLD", "NONE", NULL};
            snprintf(path, sizeof(path),
                     "transactItems.%zu.member.%s.returnValuesOnConditionCheckFailure", i + 1,
                     kind_path(r, it->kind));
            it->old_on_fail = cp__dynamo_check_enum(v, it->rvf, path, names, "ALL_OLD, NONE") == 0;
        }
    }
    if (r->has_token && (r->token.len < 1 || r->token.len > 36)) {
        cp__dynamo_verr_add_s(v, r->token, "clientRequestToken",
                              r->token.len < 1
                                  ? "Member must have length greater than or equal to 1"
                                  : "Member must have length less than or equal to 36");
    }
    *mode = cp__dynamo_rcc_parse(v, r->rcc, r->has_rcc);
    if (r->has_ricm) {
        static const char *const names[] = {"SIZE", "NONE", NULL};
        cp__dynamo_check_enum(v, r->ricm, "returnItemCollectionMetrics", names, "SIZE, NONE");
    }
    if ((rc = cp__dynamo_verr_done(v, c)) < 0) {
        return rc;
    }
    if (deferred.code != CP_OK) {
        c->err = deferred;
        return deferred.code;
    }
    for (size_t i = 0; i < r->n; i++) {
        tx_item *it = &r->items[i];
        if (it->nactions == 0) {
            return cp_err_set(&c->err, CP_EINVAL,
                              "The action or operation requested is invalid. Verify that the "
                              "action is typed correctly.");
        }
        if (it->nactions > 1) {
            return cp_err_set(&c->err, CP_EINVAL,
                              "TransactItems can only contain one of Check, Put, Update or "
                              "Delete");
        }
        if (it->kind == CP_WRITE_PUT && cp_item_size(cp_buf_slice(&it->item)) > CP_ITEM_MAX_SIZE) {
            return cp_err_set(&c->err, CP_EINVAL,
                              "Item size has exceeded the maximum allowed size");
        }
        cp_expr_op op = r->get                        ? CP_EXPR_OP_GET
                        : it->kind == CP_WRITE_CHECK  ? CP_EXPR_OP_CHECK
                        : it->kind == CP_WRITE_PUT    ? CP_EXPR_OP_PUT
                        : it->kind == CP_WRITE_DELETE ? CP_EXPR_OP_DELETE
                                                      : CP_EXPR_OP_UPDATE;
        if ((rc = cp__dynamo_exprs_compile(c, &it->x, op, &it->expr)) < 0) {
            return rc;
        }
        if (op == CP_EXPR_OP_CHECK && !cp_expr_has_condition(it->expr)) {
            return cp_err_set(&c->err, CP_EINVAL,
                              "The ConditionExpression parameter is required for a "
                              "ConditionCheck");
        }
    }
    cp_buf ids = CP_BUF_INIT;
    size_t *ends = cp_calloc(r->n + 1, sizeof(*ends));
    for (size_t i = 0; rc >= 0 && i < r->n; i++) {
        tx_item *it = &r->items[i];
        if ((rc = cp__dynamo_table(c, cp__dynamo_table_name(c, it->table), &it->t)) < 0) {
            break;
        }
        it->have_t = 1;
        cp_slice item = cp_buf_slice(&it->item);
        if ((rc = cp__dynamo_check_key(c, &it->t, item, it->kind == CP_WRITE_PUT)) < 0) {
            break;
        }
        cp_expr_keys keys = cp__dynamo_expr_keys(&it->t);
        if (!r->get && (rc = cp_expr_check_keys(it->expr, &keys, &c->err)) < 0) {
            break;
        }
        cp__dynamo_key_id(&it->t, item, &ids);
        ends[i] = ids.len;
        for (size_t j = 0; j < i; j++) {
            size_t si = i ? ends[i - 1] : 0, sj = j ? ends[j - 1] : 0;
            if (ends[i] - si == ends[j] - sj && memcmp(ids.p + si, ids.p + sj, ends[i] - si) == 0) {
                rc = cp_err_set(&c->err, CP_EINVAL,
                                "Transaction request cannot include multiple operations on one "
                                "item");
            }
        }
    }
    cp_buf_free(&ids);
    cp_free(ends);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* TransactWriteItems                                                                          */

typedef struct tx_op {
    tx_req *r;
    size_t i;
    cp__dynamo_upd upd;
} tx_op;

/* Committer thread. Records a failed condition and lets the group go on, so every condition is
 * evaluated; the last op fails the group if any did. */
static int tx_cond(void *ctx, cp_slice cur, cp_err *err)
{
    (void) err;
    tx_op *o = ctx;
    tx_item *it = &o->r->items[o->i];
    if (!cp_expr_eval_condition(it->expr, cur)) {
        it->cond_failed = 1;
        cp_buf_reset(&it->old);
        cp_buf_append(&it->old, cur.p, cur.len);
        o->r->any_failed = 1;
    }
    return o->i + 1 == o->r->n && o->r->any_failed ? CP_ECONDITION : CP_OK;
}

static int tx_update(void *ctx, cp_slice cur, cp_buf *out, cp_err *err)
{
    tx_op *o = ctx;
    if (o->r->items[o->i].cond_failed) {
        /* Doomed group: write something valid and skip the update's own errors. */
        cp_slice keep = cur.len ? cur : o->upd.key;
        cp_buf_append(out, keep.p, keep.len);
        return CP_OK;
    }
    return cp__dynamo_update_cb(&o->upd, cur, out, err);
}

static void put_reason(cp_buf *out, const char *code, const char *msg, cp_slice item)
{
    cp_buf_printf(out, "{\"Code\":\"%s\"", code);
    if (msg) {
        cp_buf_puts(out, ",\"Message\":");
        cp_json_put_str(out, cp_slice_str(msg));
    }
    if (item.len) {
        cp_buf_puts(out, ",\"Item\":");
        cp_item_to_json(item, out);
    }
    cp_buf_putc(out, '}');
}

/* TransactionCanceledException with one reason per action, codes[i] NULL meaning "None". */
static int fail_canceled(cp__dynamo_call *c, tx_req *r, const char *const *codes,
                         const char *const *msgs)
{
    cp_buf extra = CP_BUF_INIT, msg = CP_BUF_INIT;
    cp_buf_puts(&msg, "Transaction cancelled, please refer cancellation reasons for specific "
                      "reasons [");
    cp_buf_puts(&extra, ",\"CancellationReasons\":[");
    for (size_t i = 0; i < r->n; i++) {
        const tx_item *it = &r->items[i];
        const char *code = codes[i] ? codes[i] : "None";
        cp_buf_printf(&msg, "%s%s", i ? ", " : "", code);
        cp_buf_puts(&extra, i ? "," : "");
        cp_slice item =
            it->cond_failed && it->old_on_fail ? cp_buf_slice(&it->old) : (cp_slice){NULL, 0};
        put_reason(&extra, code, codes[i] ? msgs[i] : NULL, item);
    }
    cp_buf_putc(&msg, ']');
    cp_buf_putc(&extra, ']');
    int rc = cp_aws_reply_error_extra(c->resp, c->req->service, "TransactionCanceledException",
                                      msg.p, cp_buf_slice(&extra));
    cp_buf_free(&extra);
    cp_buf_free(&msg);
    return rc;
}

/* ConsumedCapacity list: one entry per table, in first-use order. */
static void put_tx_capacity(cp_buf *out, cp__dynamo_rcc mode, const tx_req *r, const double *units)
{
    if (mode == CP__RCC_NONE) {
        return;
    }
    cp_buf_puts(out, ",\"ConsumedCapacity\":[");
    int first = 1;
    for (size_t i = 0; i < r->n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++) {
            seen |= strcmp(r->items[j].t.name, r->items[i].t.name) == 0;
        }
        if (seen) {
            continue;
        }
        double sum = 0;
        for (size_t j = i; j < r->n; j++) {
            if (strcmp(r->items[j].t.name, r->items[i].t.name) == 0) {
                sum += units[j];
            }
        }
        cp_buf_puts(out, first ? "" : ",");
        cp__dynamo_capacity_entry(out, mode, r->items[i].t.name, sum);
        first = 0;
    }
    cp_buf_putc(out, ']');
}

static const char THROTTLED[] =
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically "
    "scaling your table or index so please try again shortly.";

int cp__dynamo_transact_write(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    tx_req r = {0};
    cp__dynamo_rcc mode = CP__RCC_NONE;
    int rc = tx_prepare(&c, &r, &mode);
    if (rc < 0) {
        rc = cp__dynamo_fail(&c, rc);
        tx_req_free(&r);
        return rc;
    }
    const char **codes = cp_calloc(r.n, sizeof(*codes));
    const char **msgs = cp_calloc(r.n, sizeof(*msgs));
    double *units = cp_calloc(r.n, sizeof(*units));
    cp_write_op *ops = cp_calloc(r.n, sizeof(*ops));
    tx_op *octx = cp_calloc(r.n, sizeof(*octx));
    int throttled = 0;
    for (size_t i = 0; i < r.n; i++) {
        tx_item *it = &r.items[i];
        cp_slice item = cp_buf_slice(&it->item);
        double w = 2 * (it->kind == CP_WRITE_PUT ? cp__dynamo_write_units(cp_item_size(item)) : 1);
        if (cp__dynamo_admit(&c, &it->t, item, 0, w) != CP_OK) {
            codes[i] = "ThrottlingError";
            msgs[i] = THROTTLED;
            throttled = 1;
        }
        octx[i] = (tx_op){&r, i, {it->expr, item}};
        ops[i] = (cp_write_op){.kind = it->kind,
                               .table = it->t.name,
                               .item = item,
                               .condition = tx_cond,
                               .update = it->kind == CP_WRITE_UPDATE ? tx_update : NULL,
                               .ctx = &octx[i],
                               .want_images = mode != CP__RCC_NONE};
    }
    if (throttled) {
        rc = fail_canceled(&c, &r, codes, msgs);
        goto out;
    }
    rc = cp_db_write(c.api->db, ops, r.n, CP_WRITE_ATOMIC, &c.err);
    if (rc < 0) {
        rc = cp__dynamo_fail(&c, rc);
        goto out;
    }
    int failed = r.any_failed;
    for (size_t i = 0; i < r.n; i++) {
        if (r.items[i].cond_failed) {
            codes[i] = "ConditionalCheckFailed";
            msgs[i] = "The conditional request failed";
        } else if (ops[i].rc < 0 && ops[i].rc != CP_ETXN && ops[i].rc != CP_ECONDITION) {
            /* A runtime validation failure (update operand types, item size...). */
            codes[i] = "ValidationError";
            msgs[i] = cp_http_scratch_strdup(c.scratch, cp_slice_str(ops[i].err.msg));
            failed = 1;
        }
    }
    if (failed) {
        rc = fail_canceled(&c, &r, codes, msgs);
        goto out;
    }
    for (size_t i = 0; i < r.n; i++) {
        size_t a = ops[i].old_item.len ? cp_item_size(cp_buf_slice(&ops[i].old_item)) : 0;
        size_t b = ops[i].new_item.len ? cp_item_size(cp_buf_slice(&ops[i].new_item)) : 0;
        units[i] = 2 * cp__dynamo_write_units(a > b ? a : b);
    }
    cp_buf_putc(&resp->body, '{');
    put_tx_capacity(&resp->body, mode, &r, units);
    if (resp->body.len > 1) {
        /* put_tx_capacity starts with a comma: drop it */
        memmove(resp->body.p + 1, resp->body.p + 2, resp->body.len - 2);
        resp->body.len--;
    }
    cp_buf_putc(&resp->body, '}');
    rc = CP_OK;
out:
    for (size_t i = 0; i < r.n; i++) {
        cp_write_op_clear(&ops[i]);
    }
    cp_free(ops);
    cp_free(octx);
    cp_free(codes);
    cp_free(msgs);
    cp_free(units);
    tx_req_free(&r);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* TransactGetItems                                                                            */

int cp__dynamo_transact_get(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    tx_req r = {.get = 1};
    cp__dynamo_rcc mode = CP__RCC_NONE;
    int rc = tx_prepare(&c, &r, &mode);
    if (rc < 0) {
        rc = cp__dynamo_fail(&c, rc);
        tx_req_free(&r);
        return rc;
    }
    const char **codes = cp_calloc(r.n, sizeof(*codes));
    const char **msgs = cp_calloc(r.n, sizeof(*msgs));
    double *units = cp_calloc(r.n, sizeof(*units));
    int throttled = 0;
    for (size_t i = 0; i < r.n; i++) {
        if (cp__dynamo_admit(&c, &r.items[i].t, cp_buf_slice(&r.items[i].item), 2, 0) != CP_OK) {
            codes[i] = "ThrottlingError";
            msgs[i] = THROTTLED;
            throttled = 1;
        }
    }
    if (throttled) {
        rc = fail_canceled(&c, &r, codes, msgs);
    } else {
        /* Items are read one by one: not a snapshot across items (see the report). */
        cp_buf item = CP_BUF_INIT, proj = CP_BUF_INIT;
        cp_buf *out = &resp->body;
        cp_buf_puts(out, "{\"Responses\":[");
        for (size_t i = 0; i < r.n && rc == CP_OK; i++) {
            tx_item *it = &r.items[i];
            int grc = cp_db_get(c.api->db, it->t.name, cp_buf_slice(&it->item), &item, &c.err);
            cp_buf_puts(out, i ? "," : "");
            if (grc == CP_ENOTFOUND) {
                cp_buf_puts(out, "{}");
                units[i] = 2 * cp__dynamo_read_units(0, 1);
            } else if (grc < 0) {
                rc = cp__dynamo_fail(&c, grc);
            } else {
                cp_buf_reset(&proj);
                cp_expr_project(it->expr, cp_buf_slice(&item), &proj);
                cp_buf_puts(out, "{\"Item\":");
                cp_item_to_json(cp_buf_slice(&proj), out);
                cp_buf_putc(out, '}');
                units[i] = 2 * cp__dynamo_read_units(cp_item_size(cp_buf_slice(&item)), 1);
            }
        }
        if (rc == CP_OK) {
            cp_buf_putc(out, ']');
            put_tx_capacity(out, mode, &r, units);
            cp_buf_putc(out, '}');
        }
        cp_buf_free(&item);
        cp_buf_free(&proj);
    }
    cp_free(codes);
    cp_free(msgs);
    cp_free(units);
    tx_req_free(&r);
    return rc;
}
