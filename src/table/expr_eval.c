/* SPDX-License-Identifier: MIT */
/*
 * Evaluating compiled expressions against binary items in place: conditions and filters
 * (DynamoDB semantics: a comparison of different types or with a missing attribute is false,
 * never an error), projections, and the checks that need the table's key schema.
 */
#include <string.h>

#include "table/expr_int.h"

int cp__expr_resolve(cp_slice item, const cp__path *p, cp_av *out)
{
    cp_av v;
    if (item.len == 0 || p->n == 0 || p->seg[0].is_index ||
        !cp_item_find(item, p->seg[0].name, &v)) {
        return 0;
    }
    for (uint32_t i = 1; i < p->n; i++) {
        const cp__seg *s = &p->seg[i];
        if (s->is_index) {
            if (v.type != CP_AV_L || !cp_av_list_at(v, s->index, &v)) {
                return 0;
            }
        } else if (v.type != CP_AV_M || !cp_av_map_find(v, s->name, &v)) {
            return 0;
        }
    }
    *out = v;
    return 1;
}

/* ---- Operands ---- */

/* An operand's value: a view into the item or the expression, or a number made by size()
 * held in `num` (varint length + digits, the body of an N). */
typedef struct opval {
    int ok;
    cp_av av;
    char num[24];
} opval;

static void set_count(opval *r, uint64_t n)
{
    char digits[24];
    int k = 0;
    do {
        digits[k++] = (char) ('0' + n % 10);
        n /= 10;
    } while (n);
    r->num[0] = (char) k; /* a one-byte varint: k < 128 */
    for (int i = 0; i < k; i++) {
        r->num[1 + i] = digits[k - 1 - i];
    }
    r->av = (cp_av){CP_AV_N, cp_slice_of(r->num, (size_t) k + 1)};
    r->ok = 1;
}

static void eval_opnd(const cp__opnd *o, cp_slice item, opval *r)
{
    r->ok = 0;
    switch (o->kind) {
    case CP__O_PATH:
        r->ok = cp__expr_resolve(item, &o->path, &r->av);
        break;
    case CP__O_VALUE:
        r->av = o->val;
        r->ok = 1;
        break;
    case CP__O_FUNC: {
        if (o->fn != CP__F_SIZE || o->nargs != 1) {
            break;
        }
        opval a;
        eval_opnd(&o->args[0], item, &a);
        if (!a.ok) {
            break;
        }
        switch (a.av.type) {
        case CP_AV_S:
        case CP_AV_B:
            set_count(r, cp_av_bytes(a.av).len);
            break;
        case CP_AV_SS:
        case CP_AV_NS:
        case CP_AV_BS:
        case CP_AV_L:
        case CP_AV_M:
            set_count(r, cp_av_count(a.av));
            break;
        default:
            break; /* size of a number, boolean or null has no value */
        }
        break;
    }
    }
}

static int ordered(cp_av_type t)
{
    return t == CP_AV_S || t == CP_AV_N || t == CP_AV_B;
}

static int memfind(cp_slice hay, cp_slice needle)
{
    if (needle.len == 0) {
        return 1;
    }
    return hay.len >= needle.len && memmem(hay.p, hay.len, needle.p, needle.len) != NULL;
}

static int contains(cp_av a, cp_av b)
{
    switch (a.type) {
    case CP_AV_S:
    case CP_AV_B:
        return b.type == a.type && memfind(cp_av_bytes(a), cp_av_bytes(b));
    case CP_AV_SS:
    case CP_AV_NS:
    case CP_AV_BS: {
        cp_av_type member = a.type == CP_AV_SS ? CP_AV_S : a.type == CP_AV_NS ? CP_AV_N : CP_AV_B;
        if (b.type != member) {
            return 0;
        }
        cp_av_iter it;
        cp_slice name;
        cp_av m;
        cp_av_iter_init(&it, a);
        while (cp_av_iter_next(&it, &name, &m)) {
            if (cp_av_equal(m, b)) {
                return 1;
            }
        }
        return 0;
    }
    case CP_AV_L: {
        cp_av_iter it;
        cp_slice name;
        cp_av m;
        cp_av_iter_init(&it, a);
        while (cp_av_iter_next(&it, &name, &m)) {
            if (m.type == b.type && cp_av_equal(m, b)) {
                return 1;
            }
        }
        return 0;
    }
    default:
        return 0;
    }
}

static int begins_with(cp_av a, cp_av b)
{
    if (a.type != b.type || (a.type != CP_AV_S && a.type != CP_AV_B)) {
        return 0;
    }
    cp_slice x = cp_av_bytes(a), y = cp_av_bytes(b);
    return x.len >= y.len && (y.len == 0 || memcmp(x.p, y.p, y.len) == 0);
}

static int equal(const opval *a, const opval *b)
{
    return a->ok && b->ok && a->av.type == b->av.type && cp_av_equal(a->av, b->av);
}

static int compare(int op, const opval *a, const opval *b)
{
    if (op == CP_CMP_EQ) {
        return equal(a, b);
    }
    if (op == CP_CMP_NE) {
        return !equal(a, b);
    }
    if (!a->ok || !b->ok || a->av.type != b->av.type || !ordered(a->av.type)) {
        return 0;
    }
    int c = cp_av_cmp(a->av, b->av);
    switch (op) {
    case CP_CMP_LT:
        return c < 0;
    case CP_CMP_LE:
        return c <= 0;
    case CP_CMP_GT:
        return c > 0;
    default:
        return c >= 0;
    }
}

int cp__expr_eval_cond(const cp__cond *c, cp_slice item)
{
    opval a, b, d;
    switch (c->kind) {
    case CP__C_AND:
        return cp__expr_eval_cond(c->a, item) && cp__expr_eval_cond(c->b, item);
    case CP__C_OR:
        return cp__expr_eval_cond(c->a, item) || cp__expr_eval_cond(c->b, item);
    case CP__C_NOT:
        return !cp__expr_eval_cond(c->a, item);
    case CP__C_TRUE:
        return 1;
    case CP__C_CMP:
        eval_opnd(&c->ops[0], item, &a);
        eval_opnd(&c->ops[1], item, &b);
        return compare(c->op, &a, &b);
    case CP__C_BETWEEN:
        eval_opnd(&c->ops[0], item, &a);
        eval_opnd(&c->ops[1], item, &b);
        eval_opnd(&c->ops[2], item, &d);
        if (!a.ok || !b.ok || !d.ok || !ordered(a.av.type) || a.av.type != b.av.type ||
            a.av.type != d.av.type) {
            return 0;
        }
        return cp_av_cmp(a.av, b.av) >= 0 && cp_av_cmp(a.av, d.av) <= 0;
    case CP__C_IN:
        eval_opnd(&c->ops[0], item, &a);
        if (!a.ok) {
            return 0;
        }
        for (uint32_t i = 1; i < c->nops; i++) {
            eval_opnd(&c->ops[i], item, &b);
            if (equal(&a, &b)) {
                return 1;
            }
        }
        return 0;
    case CP__C_FUNC:
        eval_opnd(&c->ops[0], item, &a);
        switch (c->op) {
        case CP__F_ATTR_EXISTS:
            return a.ok;
        case CP__F_ATTR_NOT_EXISTS:
            return !a.ok;
        case CP__F_ATTR_TYPE:
            return a.ok && a.av.type == c->type_arg;
        case CP__F_BEGINS_WITH:
            eval_opnd(&c->ops[1], item, &b);
            return a.ok && b.ok && begins_with(a.av, b.av);
        case CP__F_CONTAINS:
            eval_opnd(&c->ops[1], item, &b);
            return a.ok && b.ok && contains(a.av, b.av);
        default:
            return 0;
        }
    }
    return 0;
}

int cp_expr_eval_condition(const cp_expr *e, cp_slice item)
{
    return !e->has_cond || cp__expr_eval_cond(e->cond, item);
}

int cp_expr_eval_filter(const cp_expr *e, cp_slice item)
{
    return !e->has_filter || cp__expr_eval_cond(e->filter, item);
}

/* ---- Projection ---- */

/* Whether any requested leaf below trie node t exists in container v. */
static int proj_any(const cp__tnode *t, cp_av v)
{
    if (t->act >= 0) {
        return 1;
    }
    if (t->kids_index ? v.type != CP_AV_L : v.type != CP_AV_M) {
        return 0;
    }
    for (uint32_t i = 0; i < t->nkids; i++) {
        const cp__tnode *k = &t->kids[i];
        cp_av x;
        int found = k->seg.is_index ? cp_av_list_at(v, k->seg.index, &x)
                                    : cp_av_map_find(v, k->seg.name, &x);
        if (found && proj_any(k, x)) {
            return 1;
        }
    }
    return 0;
}

static void proj_container(const cp__tnode *t, cp_av v, cp_item_builder *b);

/* Emit value v for trie node k (the name, if any, was put by the caller). */
static void proj_value(const cp__tnode *k, cp_av v, cp_item_builder *b)
{
    if (k->act >= 0) {
        cp_item_put_av(b, v);
        return;
    }
    cp_item_begin_container(b, v.type);
    proj_container(k, v, b);
    cp_item_end(b);
}

/* The members of map/list v that trie node t asks for, in the container's own order (which
 * also compacts list elements in index order). */
static void proj_container(const cp__tnode *t, cp_av v, cp_item_builder *b)
{
    cp_av_iter it;
    cp_slice name;
    cp_av x;
    uint32_t i = 0;
    cp_av_iter_init(&it, v);
    while (cp_av_iter_next(&it, &name, &x)) {
        const cp__tnode *k = t->kids_index ? cp__tnode_find_index(t, i) : cp__tnode_find(t, name);
        i++;
        if (!k || !proj_any(k, x)) {
            continue;
        }
        if (!t->kids_index) {
            cp_item_put_name(b, name);
        }
        proj_value(k, x, b);
    }
}

void cp__expr_project_trie(const cp__tnode *t, cp_slice item, cp_buf *out)
{
    cp_item_builder b;
    cp_item_builder_init(&b, out);
    cp_item_begin(&b);
    if (item.len) {
        cp_av_iter it;
        cp_slice name;
        cp_av x;
        cp_item_iter_init(&it, item);
        while (cp_av_iter_next(&it, &name, &x)) {
            const cp__tnode *k = cp__tnode_find(t, name);
            if (k && proj_any(k, x)) {
                cp_item_put_name(&b, name);
                proj_value(k, x, &b);
            }
        }
    }
    cp_item_end(&b);
}

static void copy_item(cp_slice item, cp_buf *out)
{
    if (item.len) {
        cp_buf_append(out, item.p, item.len);
        return;
    }
    cp_item_builder b;
    cp_item_builder_init(&b, out);
    cp_item_begin(&b);
    cp_item_end(&b);
}

void cp_expr_project(const cp_expr *e, cp_slice item, cp_buf *out)
{
    if (!e->has_proj) {
        copy_item(item, out);
        return;
    }
    cp__expr_project_trie(e->proj, item, out);
}

void cp_expr_project_updated(const cp_expr *e, cp_slice item, cp_buf *out)
{
    if (!e->has_update) {
        cp_item_builder b;
        cp_item_builder_init(&b, out);
        cp_item_begin(&b);
        cp_item_end(&b);
        return;
    }
    cp__expr_project_trie(e->uproj, item, out);
}

/* ---- Key schema checks ---- */

/* "Key attributes must be scalars": no '.' or '[]' below a key attribute. */
static int nested_keys(const cp_expr *e, cp__src src, const cp_expr_keys *k, cp_err *err)
{
    const cp__heads *h = &e->heads[src];
    cp_slice names[2] = {k->hash_name, k->range_name};
    for (int j = 0; j < 2; j++) {
        if (!names[j].len) {
            continue;
        }
        for (uint32_t i = 0; i < h->n; i++) {
            if (h->nested[i] && cp_slice_eq(h->name[i], names[j])) {
                return cp_err_set(err, CP_EINVAL,
                                  "Key attributes must be scalars; list random access '[]' and map "
                                  "lookup '.' are not allowed: Key: %.*s",
                                  (int) names[j].len, names[j].p);
            }
        }
    }
    return CP_OK;
}

int cp_expr_check_keys(const cp_expr *e, const cp_expr_keys *k, cp_err *err)
{
    if (e->has_update) {
        cp_slice names[2] = {k->hash_name, k->range_name};
        for (int j = 0; j < 2; j++) {
            if (names[j].len && cp__tnode_find(e->utree, names[j])) {
                return cp_err_set(err, CP_EINVAL,
                                  "One or more parameter values were invalid: Cannot update "
                                  "attribute %.*s. This attribute is part of the key",
                                  (int) names[j].len, names[j].p);
            }
        }
    }
    int rc = nested_keys(e, CP__SRC_UPDATE, k, err);
    return rc ? rc : nested_keys(e, CP__SRC_PROJECTION, k, err);
}

static const cp__keyterm *term(const cp_expr *e, cp_slice name)
{
    for (uint32_t i = 0; i < e->nkterms; i++) {
        if (cp_slice_eq(e->kterms[i].attr, name)) {
            return &e->kterms[i];
        }
    }
    return NULL;
}

int cp_expr_key_condition(const cp_expr *e, const cp_expr_keys *k, cp_key_cond *out, cp_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!e->has_key) {
        return cp_err_set(err, CP_ENOTFOUND,
                          "Either the KeyConditions or KeyConditionExpression parameter must be "
                          "specified in the request.");
    }
    cp_slice names[2] = {k->hash_name, k->range_name};
    cp_av_type types[2] = {k->hash_type, k->range_type};
    int nkeys = k->range_name.len ? 2 : 1;
    /* DynamoDB walks the key schema, hash first */
    for (int j = 0; j < nkeys; j++) {
        int hash = j == 0;
        if (hash && nkeys == 1 && e->nkterms > 1) {
            return cp_err_set(err, CP_EINVAL, "Query key condition not supported");
        }
        const cp__keyterm *t = term(e, names[j]);
        if (!t) {
            if (hash || e->nkterms > 1) {
                return cp_err_set(err, CP_EINVAL, "Query condition missed key schema element: %.*s",
                                  (int) names[j].len, names[j].p);
            }
            continue;
        }
        switch (t->op) {
        case CP_CMP_NULL:
        case CP_CMP_NOT_NULL:
        case CP_CMP_NE:
        case CP_CMP_CONTAINS:
        case CP_CMP_NOT_CONTAINS:
        case CP_CMP_IN:
            return cp_err_set(err, CP_EINVAL,
                              "Attempted conditional constraint is not an indexable operation");
        default:
            break;
        }
        for (uint32_t i = 0; i < t->nv && i < 2; i++) {
            if (t->v[i].type != types[j]) {
                return cp_err_set(err, CP_EINVAL,
                                  "One or more parameter values were invalid: Condition parameter "
                                  "type does not match schema type");
            }
        }
        if (hash && t->op != CP_CMP_EQ) {
            return cp_err_set(err, CP_EINVAL, "Query key condition not supported");
        }
        if (hash) {
            out->hash = t->v[0];
            continue;
        }
        static const cp_key_range_op map[] = {
            [CP_CMP_EQ] = CP_KEY_RANGE_EQ,
            [CP_CMP_LT] = CP_KEY_RANGE_LT,
            [CP_CMP_LE] = CP_KEY_RANGE_LE,
            [CP_CMP_GT] = CP_KEY_RANGE_GT,
            [CP_CMP_GE] = CP_KEY_RANGE_GE,
            [CP_CMP_BEGINS_WITH] = CP_KEY_RANGE_BEGINS_WITH,
            [CP_CMP_BETWEEN] = CP_KEY_RANGE_BETWEEN,
        };
        out->op = map[t->op];
        out->r1 = t->v[0];
        out->r2 = t->nv > 1 ? t->v[1] : t->v[0];
    }
    int rc = nested_keys(e, CP__SRC_PROJECTION, k, err);
    if (rc) {
        return rc;
    }
    const cp__heads *h = &e->heads[CP__SRC_FILTER];
    for (int j = 0; j < nkeys; j++) {
        for (uint32_t i = 0; i < h->n; i++) {
            if (cp_slice_eq(h->name[i], names[j])) {
                return cp_err_set(err, CP_EINVAL,
                                  "%s can only contain non-primary key attributes: Primary key "
                                  "attribute: %.*s",
                                  e->filter_label ? e->filter_label : "Filter Expression",
                                  (int) names[j].len, names[j].p);
            }
        }
    }
    return nested_keys(e, CP__SRC_FILTER, k, err);
}
