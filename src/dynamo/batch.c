/* SPDX-License-Identifier: MIT */
/*
 * BatchWriteItem and BatchGetItem. BatchWriteItem is the hot path: its request is read in one
 * pass with every item decoded straight into the binary encoding, validated all or nothing
 * (shape, counts, tables, keys, sizes, duplicates), then handed to the store as one group of
 * independent writes. Each write is atomic, the batch is not (as on AWS). Items the
 * throughput emulation refuses come back in UnprocessedItems in request shape.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "dynamo/dynamo_int.h"

#define BATCH_WRITE_MAX 25
#define BATCH_GET_MAX   100

/* Tables named by a batch request, with their metadata once looked up. */
typedef struct btable {
    cp_slice name;
    size_t count;    /* requests for this table */
    cp_table_info t; /* valid when have_t */
    int have_t;
    double units;       /* consumed capacity */
    cp__dynamo_exprs x; /* BatchGetItem: projection parameters */
    cp_expr *expr;
    int consistent;
    cp_slice projection_raw; /* BatchGetItem: for UnprocessedKeys */
    int has_keys;
} btable;

static void btables_free(btable *tables, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (tables[i].have_t) {
            cp_table_info_clear(&tables[i].t);
        }
        cp__dynamo_exprs_free(&tables[i].x);
        cp_expr_free(tables[i].expr);
    }
    cp_free(tables);
}

/* The Java-style dump of a RequestItems map AWS puts in constraint messages. */
static void map_dump(const btable *tables, size_t n, char *out, size_t cap)
{
    size_t k = (size_t) snprintf(out, cap, "{");
    for (size_t i = 0; i < n && k < cap; i++) {
        k += (size_t) snprintf(out + k, cap - k, "%s%.*s=[...]", i ? ", " : "",
                               (int) (tables[i].name.len < 64 ? tables[i].name.len : 64),
                               tables[i].name.p);
    }
    if (k < cap) {
        snprintf(out + k, cap - k, "}");
    }
}

/* Constraints on the RequestItems map: 1+ tables, valid names, per-table list lengths. */
static void check_request_items(cp__dynamo_verr *v, const btable *tables, size_t n, int present,
                                size_t max_per_table, const char *what)
{
    char dump[400];
    map_dump(tables, n, dump, sizeof(dump));
    if (!present) {
        cp__dynamo_verr_add(v, NULL, "requestItems", "Member must not be null");
        return;
    }
    if (n == 0) {
        cp__dynamo_verr_add(v, dump, "requestItems",
                            "Member must have length greater than or equal to 1");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        cp__dynamo_verr tmp = {0};
        cp__dynamo_check_table_name(&tmp, tables[i].name, 1, "x");
        if (tmp.n) {
            cp__dynamo_verr_add(v, dump, "requestItems",
                                "Map keys must satisfy constraint: [Member must have length less "
                                "than or equal to 255, Member must have length greater than or "
                                "equal to 3, Member must satisfy regular expression pattern: "
                                "[a-zA-Z0-9_.-]+]");
            cp_buf_free(&tmp.msg);
            break;
        }
        cp_buf_free(&tmp.msg);
    }
    for (size_t i = 0; i < n; i++) {
        if (max_per_table && (tables[i].count < 1 || tables[i].count > max_per_table)) {
            char rule[200];
            snprintf(rule, sizeof(rule),
                     "Map value must satisfy constraint: [Member must have length less than or "
                     "equal to %zu, Member must have length greater than or equal to 1]",
                     max_per_table);
            cp__dynamo_verr_add(v, dump, "requestItems", rule);
            break;
        }
    }
    (void) what;
}

/* Look up every table: ResourceNotFoundException when one is missing. */
static int lookup_tables(cp__dynamo_call *c, btable *tables, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = cp__dynamo_table(c, cp__dynamo_table_name(c, tables[i].name), &tables[i].t);
        if (rc < 0) {
            return rc;
        }
        tables[i].have_t = 1;
    }
    return CP_OK;
}

/* Reject a second request for the same key (across the whole call). */
static int check_duplicates(cp__dynamo_call *c, cp_buf *ids, const size_t *ends, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t si = i ? ends[i - 1] : 0;
        for (size_t j = 0; j < i; j++) {
            size_t sj = j ? ends[j - 1] : 0;
            if (ends[i] - si == ends[j] - sj &&
                memcmp(ids->p + si, ids->p + sj, ends[i] - si) == 0) {
                return cp_err_set(&c->err, CP_EINVAL,
                                  "Provided list of item keys contains duplicates");
            }
        }
    }
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* BatchWriteItem                                                                              */

typedef struct wreq {
    size_t table;    /* index into tables */
    int kind;        /* CP_WRITE_PUT or CP_WRITE_DELETE; 0 when malformed */
    int nactions;    /* PutRequest/DeleteRequest members present */
    size_t off, len; /* the item/key in items */
    int has_item;
} wreq;

typedef struct bw_req {
    btable *tables;
    size_t ntables, cap;
    int has_items;
    cp__dynamo_vec reqs; /* wreq */
    size_t extra;        /* requests past the limit, counted only */
    cp_buf items;
    cp_slice rcc, ricm;
    int has_rcc, has_ricm;
} bw_req;

static size_t add_table(bw_req *r, cp__dynamo_call *c, cp_slice name)
{
    if (r->ntables == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 4;
        r->tables = cp_realloc(r->tables, r->cap * sizeof(*r->tables));
    }
    btable *t = &r->tables[r->ntables];
    memset(t, 0, sizeof(*t));
    t->name = cp__dynamo_keep(c, name);
    return r->ntables++;
}

/* {"PutRequest":{"Item":{...}}} or {"DeleteRequest":{"Key":{...}}} */
static int read_write_request(cp__dynamo_call *c, bw_req *r, size_t table)
{
    int rc = cp__dynamo_obj(c, "structure");
    if (rc <= 0) {
        return rc;
    }
    r->tables[table].count++;
    if (r->reqs.n > BATCH_WRITE_MAX) {
        /* Already too many: count the rest (for the message) without keeping them. */
        r->extra++;
        cp_json_tok t = {.type = CP_JSON_OBJ_BEGIN};
        return cp_json_skip(&c->lx, &t) < 0
                   ? cp_err_set(&c->err, CP_EINVAL, "SerializationException")
                   : CP_OK;
    }
    wreq *w = cp__dynamo_vec_push(c, &r->reqs);
    w->table = table;
    cp_slice m;
    while ((rc = cp__dynamo_member(c, &m)) == 1) {
        int put = cp__dynamo_is(m, "PutRequest");
        if (!put && !cp__dynamo_is(m, "DeleteRequest")) {
            if ((rc = cp__dynamo_skip(c)) < 0) {
                return rc;
            }
            continue;
        }
        if ((rc = cp__dynamo_obj(c, "structure")) < 0) {
            return rc;
        }
        if (rc == 0) {
            continue;
        }
        w->nactions++;
        w->kind = put ? CP_WRITE_PUT : CP_WRITE_DELETE;
        cp_slice f;
        while ((rc = cp__dynamo_member(c, &f)) == 1) {
            if (cp__dynamo_is(f, put ? "Item" : "Key")) {
                size_t off = r->items.len;
                rc = cp__dynamo_item(c, &r->items);
                if (rc < 0) {
                    return rc;
                }
                w->has_item = rc == 1;
                w->off = off;
                w->len = r->items.len - off;
            } else if ((rc = cp__dynamo_skip(c)) < 0) {
                return rc;
            }
        }
        if (rc < 0) {
            return rc;
        }
    }
    return rc;
}

static int bw_member(cp__dynamo_call *c, cp_slice name, void *ctx)
{
    bw_req *r = ctx;
    if (cp__dynamo_is(name, "ReturnConsumedCapacity")) {
        return cp__dynamo_str(c, &r->rcc, &r->has_rcc);
    }
    if (cp__dynamo_is(name, "ReturnItemCollectionMetrics")) {
        return cp__dynamo_str(c, &r->ricm, &r->has_ricm);
    }
    if (!cp__dynamo_is(name, "RequestItems")) {
        return CP__DYNAMO_UNKNOWN;
    }
    int rc = cp__dynamo_obj(c, "map");
    if (rc <= 0) {
        return rc;
    }
    r->has_items = 1;
    cp_slice tname;
    while ((rc = cp__dynamo_member(c, &tname)) == 1) {
        size_t ti = add_table(r, c, tname);
        if ((rc = cp__dynamo_arr(c)) < 0) {
            return rc;
        }
        while (rc == 1 && (rc = cp__dynamo_arr_more(c)) == 1) {
            if ((rc = read_write_request(c, r, ti)) < 0) {
                return rc;
            }
            rc = 1;
        }
        if (rc < 0) {
            return rc;
        }
    }
    return rc < 0 ? rc : 1;
}

/* Key checks of one write: a put's missing or mistyped key reads as a schema mismatch here
 * (unlike PutItem's wording). */
static int check_write(cp__dynamo_call *c, const cp_table_info *t, const wreq *w, cp_slice item)
{
    if (w->kind == CP_WRITE_PUT) {
        if (cp_item_size(item) > CP_ITEM_MAX_SIZE) {
            return cp_err_set(&c->err, CP_EINVAL,
                              "Item size has exceeded the maximum allowed size");
        }
        int rc = cp__dynamo_check_key(c, t, item, 1);
        if (rc < 0 &&
            (strstr(c->err.msg, "Missing the key") || strstr(c->err.msg, "Type mismatch"))) {
            cp_err_set(&c->err, CP_EINVAL, "The provided key element does not match the schema");
        }
        return rc;
    }
    return cp__dynamo_check_key(c, t, item, 0);
}

static void put_unprocessed(cp_buf *out, const bw_req *r, const wreq *reqs, const int *skipped)
{
    cp_buf_puts(out, "{\"UnprocessedItems\":{");
    int first_table = 1;
    for (size_t ti = 0; ti < r->ntables; ti++) {
        int first = 1;
        for (size_t i = 0; i < r->reqs.n; i++) {
            if (reqs[i].table != ti || !skipped[i]) {
                continue;
            }
            if (first) {
                cp_buf_puts(out, first_table ? "" : "],");
                cp_json_put_str(out, cp_slice_str(r->tables[ti].t.name));
                cp_buf_puts(out, ":[");
                first_table = 0;
            } else {
                cp_buf_putc(out, ',');
            }
            first = 0;
            cp_slice item = cp_slice_of(r->items.p + reqs[i].off, reqs[i].len);
            cp_buf_puts(out, reqs[i].kind == CP_WRITE_PUT ? "{\"PutRequest\":{\"Item\":"
                                                          : "{\"DeleteRequest\":{\"Key\":");
            cp_item_to_json(item, out);
            cp_buf_puts(out, "}}");
        }
    }
    cp_buf_puts(out, first_table ? "}" : "]}");
}

static void put_capacity_list(cp_buf *out, cp__dynamo_rcc mode, const btable *tables, size_t n)
{
    if (mode == CP__RCC_NONE) {
        return;
    }
    cp_buf_puts(out, ",\"ConsumedCapacity\":[");
    for (size_t i = 0; i < n; i++) {
        cp_buf_puts(out, i ? "," : "");
        cp__dynamo_capacity_entry(out, mode, tables[i].t.name, tables[i].units);
    }
    cp_buf_putc(out, ']');
}

int cp__dynamo_batch_write(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    bw_req r = {.reqs = {.size = sizeof(wreq)}};
    cp_err deferred;
    cp_write_op *ops = NULL;
    int *skipped = NULL;
    cp_buf ids = CP_BUF_INIT;
    size_t *ends = NULL;
    int rc = cp__dynamo_read_request(&c, bw_member, &r, &deferred);
    cp__dynamo_verr v = {0};
    cp__dynamo_rcc mode = CP__RCC_NONE;
    wreq *reqs = r.reqs.p;
    if (rc >= 0) {
        check_request_items(&v, r.tables, r.ntables, r.has_items, BATCH_WRITE_MAX,
                            "BatchWriteItem");
        mode = cp__dynamo_rcc_parse(&v, r.rcc, r.has_rcc);
        if (r.has_ricm) {
            static const char *const names[] = {"SIZE", "NONE", NULL};
            cp__dynamo_check_enum(&v, r.ricm, "returnItemCollectionMetrics", names, "SIZE, NONE");
        }
        rc = cp__dynamo_verr_done(&v, &c);
    }
    if (rc >= 0 && deferred.code != CP_OK) {
        c.err = deferred;
        rc = deferred.code;
    }
    if (rc >= 0 && r.reqs.n + r.extra > BATCH_WRITE_MAX) {
        rc = cp_err_set(&c.err, CP_EINVAL, "Too many items requested for the BatchWriteItem call");
    }
    for (size_t i = 0; rc >= 0 && i < r.reqs.n; i++) {
        if (reqs[i].nactions != 1) {
            rc = cp_err_set(&c.err, CP_EINVAL,
                            "Supplied AttributeValue has more than one datatypes set, must "
                            "contain exactly one of the supported datatypes");
        } else if (!reqs[i].has_item) {
            char path[400];
            snprintf(path, sizeof(path), "requestItems.%.*s.member.%s",
                     (int) (r.tables[reqs[i].table].name.len < 255
                                ? r.tables[reqs[i].table].name.len
                                : 255),
                     r.tables[reqs[i].table].name.p,
                     reqs[i].kind == CP_WRITE_PUT ? "putRequest.item" : "deleteRequest.key");
            cp__dynamo_verr_add(&v, NULL, path, "Member must not be null");
            rc = cp__dynamo_verr_done(&v, &c);
        }
    }
    if (rc >= 0) {
        rc = lookup_tables(&c, r.tables, r.ntables);
    }
    if (rc >= 0) {
        ends = cp_calloc(r.reqs.n + 1, sizeof(*ends));
        for (size_t i = 0; rc >= 0 && i < r.reqs.n; i++) {
            const cp_table_info *t = &r.tables[reqs[i].table].t;
            cp_slice item = cp_slice_of(r.items.p + reqs[i].off, reqs[i].len);
            rc = check_write(&c, t, &reqs[i], item);
            cp__dynamo_key_id(t, item, &ids);
            ends[i] = ids.len;
        }
    }
    if (rc >= 0) {
        rc = check_duplicates(&c, &ids, ends, r.reqs.n);
    }
    if (rc < 0) {
        rc = cp__dynamo_fail(&c, rc);
        goto out;
    }

    ops = cp_calloc(r.reqs.n + 1, sizeof(*ops));
    skipped = cp_calloc(r.reqs.n + 1, sizeof(*skipped));
    size_t nops = 0, nskipped = 0;
    size_t *op_req = cp_calloc(r.reqs.n + 1, sizeof(*op_req));
    for (size_t i = 0; i < r.reqs.n; i++) {
        btable *bt = &r.tables[reqs[i].table];
        cp_slice item = cp_slice_of(r.items.p + reqs[i].off, reqs[i].len);
        double units =
            reqs[i].kind == CP_WRITE_PUT ? cp__dynamo_write_units(cp_item_size(item)) : 1;
        if (cp__dynamo_admit(&c, &bt->t, item, 0, units) != CP_OK) {
            skipped[i] = 1;
            nskipped++;
            continue;
        }
        op_req[nops] = i;
        ops[nops++] = (cp_write_op){.kind = reqs[i].kind,
                                    .table = bt->t.name,
                                    .item = item,
                                    .want_images = mode != CP__RCC_NONE};
    }
    if (nops == 0) {
        /* Nothing could be processed: the call itself is throttled. */
        rc = cp__dynamo_fail_throttled(&c, &r.tables[reqs[0].table].t);
        cp_free(op_req);
        goto out;
    }
    rc = cp_db_write(c.api->db, ops, nops, 0, &c.err);
    if (rc < 0) {
        rc = cp__dynamo_fail(&c, rc);
        cp_free(op_req);
        goto out;
    }
    for (size_t k = 0; k < nops; k++) {
        if (ops[k].rc < 0) {
            /* Validation ran before the write, so this is a store-side refusal. */
            c.err = ops[k].err;
            rc = cp__dynamo_fail(&c, ops[k].rc);
            cp_free(op_req);
            goto out;
        }
        size_t a = ops[k].old_item.len ? cp_item_size(cp_buf_slice(&ops[k].old_item)) : 0;
        size_t b = ops[k].new_item.len ? cp_item_size(cp_buf_slice(&ops[k].new_item)) : 0;
        r.tables[reqs[op_req[k]].table].units += cp__dynamo_write_units(a > b ? a : b);
    }
    cp_free(op_req);
    put_unprocessed(&resp->body, &r, reqs, skipped);
    put_capacity_list(&resp->body, mode, r.tables, r.ntables);
    cp_buf_putc(&resp->body, '}');
    rc = CP_OK;
out:
    for (size_t k = 0; ops && k < r.reqs.n; k++) {
        cp_write_op_clear(&ops[k]);
    }
    cp_free(ops);
    cp_free(skipped);
    cp_free(ends);
    cp_buf_free(&ids);
    cp_buf_free(&v.msg);
    cp_buf_free(&r.items);
    btables_free(r.tables, r.ntables);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* BatchGetItem                                                                                */

typedef struct gkey {
    size_t table;
    size_t off, len;
} gkey;

typedef struct bg_req {
    btable *tables;
    size_t ntables, cap;
    int has_items;
    cp__dynamo_vec keys; /* gkey */
    size_t extra;        /* keys past the limit, counted only */
    cp_buf items;
    cp__dynamo_verr verr;
    cp_slice rcc;
    int has_rcc;
} bg_req;

static int bg_table(cp__dynamo_call *c, bg_req *r, size_t ti)
{
    int rc = cp__dynamo_obj(c, "structure");
    if (rc <= 0) {
        return rc;
    }
    btable *bt = &r->tables[ti];
    cp_slice m;
    while ((rc = cp__dynamo_member(c, &m)) == 1) {
        bt = &r->tables[ti];
        int have;
        if (cp__dynamo_is(m, "Keys")) {
            if ((rc = cp__dynamo_arr(c)) < 0) {
                return rc;
            }
            bt->has_keys = rc == 1;
            while (rc == 1 && (rc = cp__dynamo_arr_more(c)) == 1) {
                size_t off = r->items.len;
                if (r->keys.n > BATCH_GET_MAX) {
                    /* Already too many: count the rest without keeping them. */
                    r->extra++;
                    bt->count++;
                    if ((rc = cp__dynamo_skip(c)) < 0) {
                        return rc;
                    }
                    rc = 1;
                    continue;
                }
                if ((rc = cp__dynamo_item(c, &r->items)) < 0) {
                    return rc;
                }
                if (rc == 1) {
                    gkey *k = cp__dynamo_vec_push(c, &r->keys);
                    *k = (gkey){ti, off, r->items.len - off};
                    bt->count++;
                }
                rc = 1;
            }
        } else if (cp__dynamo_is(m, "ConsistentRead")) {
            rc = cp__dynamo_bool(c, &bt->consistent, &have);
        } else if (cp__dynamo_is(m, "ProjectionExpression")) {
            const char *start = c->lx.p;
            rc = cp__dynamo_exprs_member(c, m, &bt->x, &r->verr);
            while (start < c->lx.p &&
                   (*start == ' ' || *start == '\n' || *start == '\t' || *start == '\r')) {
                start++;
            }
            bt->projection_raw = cp_slice_of(start, (size_t) (c->lx.p - start));
        } else {
            rc = cp__dynamo_exprs_member(c, m, &bt->x, &r->verr);
            if (rc == CP__DYNAMO_UNKNOWN) {
                rc = cp__dynamo_skip(c);
            }
        }
        if (rc < 0) {
            return rc;
        }
    }
    return rc;
}

static int bg_member(cp__dynamo_call *c, cp_slice name, void *ctx)
{
    bg_req *r = ctx;
    if (cp__dynamo_is(name, "ReturnConsumedCapacity")) {
        return cp__dynamo_str(c, &r->rcc, &r->has_rcc);
    }
    if (!cp__dynamo_is(name, "RequestItems")) {
        return CP__DYNAMO_UNKNOWN;
    }
    int rc = cp__dynamo_obj(c, "map");
    if (rc <= 0) {
        return rc;
    }
    r->has_items = 1;
    cp_slice tname;
    while ((rc = cp__dynamo_member(c, &tname)) == 1) {
        if (r->ntables == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 4;
            r->tables = cp_realloc(r->tables, r->cap * sizeof(*r->tables));
        }
        btable *bt = &r->tables[r->ntables++];
        memset(bt, 0, sizeof(*bt));
        bt->name = cp__dynamo_keep(c, tname);
        if ((rc = bg_table(c, r, r->ntables - 1)) < 0) {
            return rc;
        }
    }
    return rc < 0 ? rc : 1;
}

/* UnprocessedKeys entry for a table: the keys plus the read parameters, in request shape. */
static void put_unprocessed_keys(cp_buf *out, const bg_req *r, size_t ti, const gkey *keys,
                                 const int *left)
{
    const btable *bt = &r->tables[ti];
    cp_json_put_str(out, cp_slice_str(bt->t.name));
    cp_buf_puts(out, ":{\"Keys\":[");
    int first = 1;
    for (size_t i = 0; i < r->keys.n; i++) {
        if (keys[i].table == ti && left[i]) {
            cp_buf_puts(out, first ? "" : ",");
            cp_item_to_json(cp_slice_of(r->items.p + keys[i].off, keys[i].len), out);
            first = 0;
        }
    }
    cp_buf_putc(out, ']');
    if (bt->projection_raw.len) {
        cp_buf_puts(out, ",\"ProjectionExpression\":");
        cp_buf_append(out, bt->projection_raw.p, bt->projection_raw.len);
    }
    if (bt->x.names_raw.len) {
        cp_buf_puts(out, ",\"ExpressionAttributeNames\":");
        cp_buf_append(out, bt->x.names_raw.p, bt->x.names_raw.len);
    }
    if (bt->x.in.attributes_to_get) {
        cp_buf_puts(out, ",\"AttributesToGet\":[");
        for (size_t i = 0; i < bt->x.in.n_attributes_to_get; i++) {
            cp_buf_puts(out, i ? "," : "");
            cp_json_put_str(out, bt->x.in.attributes_to_get[i]);
        }
        cp_buf_putc(out, ']');
    }
    if (bt->consistent) {
        cp_buf_puts(out, ",\"ConsistentRead\":true");
    }
    cp_buf_putc(out, '}');
}

int cp__dynamo_batch_get(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    bg_req r = {.keys = {.size = sizeof(gkey)}};
    cp_err deferred;
    cp_buf ids = CP_BUF_INIT, item = CP_BUF_INIT, proj = CP_BUF_INIT;
    size_t *ends = NULL;
    int *left = NULL;
    cp_buf *body = NULL;
    int rc = cp__dynamo_read_request(&c, bg_member, &r, &deferred);
    cp__dynamo_rcc mode = CP__RCC_NONE;
    gkey *keys = r.keys.p;
    if (rc >= 0) {
        check_request_items(&r.verr, r.tables, r.ntables, r.has_items, 0, "BatchGetItem");
        for (size_t i = 0; i < r.ntables; i++) {
            char path[400];
            snprintf(path, sizeof(path), "requestItems.%.*s.member.keys",
                     (int) (r.tables[i].name.len < 255 ? r.tables[i].name.len : 255),
                     r.tables[i].name.p);
            if (!r.tables[i].has_keys) {
                cp__dynamo_verr_add(&r.verr, NULL, path, "Member must not be null");
            } else if (r.tables[i].count < 1 || r.tables[i].count > BATCH_GET_MAX) {
                cp__dynamo_verr_add(&r.verr, "[...]", path,
                                    r.tables[i].count < 1
                                        ? "Member must have length greater than or equal to 1"
                                        : "Member must have length less than or equal to 100");
            }
        }
        mode = cp__dynamo_rcc_parse(&r.verr, r.rcc, r.has_rcc);
        rc = cp__dynamo_verr_done(&r.verr, &c);
    }
    if (rc >= 0 && deferred.code != CP_OK) {
        c.err = deferred;
        rc = deferred.code;
    }
    if (rc >= 0 && r.keys.n + r.extra > BATCH_GET_MAX) {
        rc = cp_err_set(&c.err, CP_EINVAL, "Too many items requested for the BatchGetItem call");
    }
    for (size_t i = 0; rc >= 0 && i < r.ntables; i++) {
        rc = cp__dynamo_exprs_compile(&c, &r.tables[i].x, CP_EXPR_OP_GET, &r.tables[i].expr);
    }
    if (rc >= 0) {
        rc = lookup_tables(&c, r.tables, r.ntables);
    }
    if (rc >= 0) {
        ends = cp_calloc(r.keys.n + 1, sizeof(*ends));
        for (size_t i = 0; rc >= 0 && i < r.keys.n; i++) {
            const cp_table_info *t = &r.tables[keys[i].table].t;
            cp_slice key = cp_slice_of(r.items.p + keys[i].off, keys[i].len);
            rc = cp__dynamo_check_key(&c, t, key, 0);
            cp__dynamo_key_id(t, key, &ids);
            ends[i] = ids.len;
        }
    }
    if (rc >= 0) {
        rc = check_duplicates(&c, &ids, ends, r.keys.n);
    }
    if (rc < 0) {
        rc = cp__dynamo_fail(&c, rc);
        goto out;
    }

    /* One response array per table, filled in request order, then stitched together. */
    body = cp_calloc(r.ntables, sizeof(*body));
    left = cp_calloc(r.keys.n + 1, sizeof(*left));
    size_t total = 0, nleft = 0;
    for (size_t i = 0; i < r.keys.n; i++) {
        btable *bt = &r.tables[keys[i].table];
        cp_slice key = cp_slice_of(r.items.p + keys[i].off, keys[i].len);
        if (total >= c.api->cfg.batch_get_bytes ||
            cp__dynamo_admit(&c, &bt->t, key, cp__dynamo_read_units(0, bt->consistent), 0) !=
                CP_OK) {
            left[i] = 1;
            nleft++;
            continue;
        }
        int grc = cp_db_get(c.api->db, bt->t.name, key, &item, &c.err);
        if (grc == CP_ENOTFOUND) {
            bt->units += cp__dynamo_read_units(0, bt->consistent);
            continue;
        }
        if (grc < 0) {
            rc = cp__dynamo_fail(&c, grc);
            goto out;
        }
        bt->units += cp__dynamo_read_units(cp_item_size(cp_buf_slice(&item)), bt->consistent);
        cp_buf_reset(&proj);
        cp_expr_project(bt->expr, cp_buf_slice(&item), &proj);
        cp_buf *b = &body[keys[i].table];
        cp_buf_puts(b, b->len ? "," : "");
        size_t before = b->len;
        cp_item_to_json(cp_buf_slice(&proj), b);
        total += b->len - before;
    }
    if (nleft == r.keys.n) {
        rc = cp__dynamo_fail_throttled(&c, &r.tables[0].t);
        goto out;
    }
    cp_buf *out = &resp->body;
    cp_buf_puts(out, "{\"Responses\":{");
    for (size_t ti = 0; ti < r.ntables; ti++) {
        cp_buf_puts(out, ti ? "," : "");
        cp_json_put_str(out, cp_slice_str(r.tables[ti].t.name));
        cp_buf_putc(out, ':');
        cp_buf_putc(out, '[');
        cp_buf_append(out, body[ti].p, body[ti].len);
        cp_buf_putc(out, ']');
    }
    cp_buf_puts(out, "},\"UnprocessedKeys\":{");
    int first = 1;
    for (size_t ti = 0; ti < r.ntables && nleft; ti++) {
        int any = 0;
        for (size_t i = 0; i < r.keys.n; i++) {
            any |= keys[i].table == ti && left[i];
        }
        if (any) {
            cp_buf_puts(out, first ? "" : ",");
            put_unprocessed_keys(out, &r, ti, keys, left);
            first = 0;
        }
    }
    cp_buf_putc(out, '}');
    put_capacity_list(out, mode, r.tables, r.ntables);
    cp_buf_putc(out, '}');
    rc = CP_OK;
out:
    for (size_t i = 0; body && i < r.ntables; i++) {
        cp_buf_free(&body[i]);
    }
    cp_free(body);
    cp_free(left);
    cp_free(ends);
    cp_buf_free(&ids);
    cp_buf_free(&item);
    cp_buf_free(&proj);
    cp_buf_free(&r.verr.msg);
    cp_buf_free(&r.items);
    btables_free(r.tables, r.ntables);
    return rc;
}
