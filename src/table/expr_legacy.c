/* SPDX-License-Identifier: MIT */
/*
 * The 2012-era request parameters the Kinesis Client Library still sends (Expected,
 * AttributeUpdates, KeyConditions, QueryFilter/ScanFilter, AttributesToGet), validated with
 * DynamoDB's messages and converted into the compiled form expressions use, plus the
 * KeyConditionExpression -> key terms conversion both paths share.
 */
#include <string.h>

#include "table/expr_int.h"

#define INVALID "One or more parameter values were invalid: "

/* ---- Building blocks ---- */

static cp__path top_path(cp_expr *e, cp_slice attr)
{
    cp__path p;
    p.seg = cp__expr_alloc(e, sizeof(cp__seg));
    p.seg[0].name = cp__expr_dup(e, attr);
    p.n = 1;
    return p;
}

static cp__opnd *opnds(cp_expr *e, cp__path path, const cp_av *vals, size_t n)
{
    cp__opnd *o = cp__expr_alloc(e, (n + 1) * sizeof(cp__opnd));
    o[0].kind = CP__O_PATH;
    o[0].path = path;
    for (size_t i = 0; i < n; i++) {
        o[i + 1].kind = CP__O_VALUE;
        o[i + 1].val = cp__expr_dup_av(e, vals[i]);
    }
    return o;
}

static cp__cond *node(cp_expr *e, int kind, int op, cp__opnd *ops, uint32_t nops)
{
    cp__cond *c = cp__expr_alloc(e, sizeof(*c));
    c->kind = (uint8_t) kind;
    c->op = (uint8_t) op;
    c->ops = ops;
    c->nops = nops;
    return c;
}

/* The condition one legacy entry stands for: attr <op> values. */
static cp__cond *convert(cp_expr *e, cp_slice attr, cp_cmp_op op, const cp_av *v, size_t n)
{
    cp__path path = top_path(e, attr);
    cp__opnd *o = opnds(e, path, v, n);
    switch (op) {
    case CP_CMP_EQ:
    case CP_CMP_NE:
    case CP_CMP_LE:
    case CP_CMP_LT:
    case CP_CMP_GE:
    case CP_CMP_GT:
        return node(e, CP__C_CMP, op, o, 2);
    case CP_CMP_NOT_NULL:
        return node(e, CP__C_FUNC, CP__F_ATTR_EXISTS, o, 1);
    case CP_CMP_NULL:
        return node(e, CP__C_FUNC, CP__F_ATTR_NOT_EXISTS, o, 1);
    case CP_CMP_CONTAINS:
        return node(e, CP__C_FUNC, CP__F_CONTAINS, o, 2);
    case CP_CMP_NOT_CONTAINS: {
        /* NOT contains(): also true when the attribute is absent or of another type, as
         * DynamoDB's NOT_CONTAINS */
        cp__cond *c = node(e, CP__C_NOT, 0, NULL, 0);
        c->a = node(e, CP__C_FUNC, CP__F_CONTAINS, o, 2);
        return c;
    }
    case CP_CMP_BEGINS_WITH:
        return node(e, CP__C_FUNC, CP__F_BEGINS_WITH, o, 2);
    case CP_CMP_IN:
        return node(e, CP__C_IN, 0, o, (uint32_t) n + 1);
    case CP_CMP_BETWEEN:
        return node(e, CP__C_BETWEEN, 0, o, 3);
    }
    return node(e, CP__C_TRUE, 0, NULL, 0);
}

static cp__cond *combine(cp_expr *e, cp__cond *acc, cp__cond *c, cp_condop how)
{
    if (!acc) {
        return c;
    }
    cp__cond *j = node(e, how == CP_CONDOP_OR ? CP__C_OR : CP__C_AND, 0, NULL, 0);
    j->a = acc;
    j->b = c;
    return j;
}

static size_t want_args(cp_cmp_op op, size_t n)
{
    switch (op) {
    case CP_CMP_NULL:
    case CP_CMP_NOT_NULL:
        return 0;
    case CP_CMP_IN:
        return n ? n : 1;
    case CP_CMP_BETWEEN:
        return 2;
    default:
        return 1;
    }
}

static int type_ok(cp_cmp_op op, cp_av_type t)
{
    int scalar = t == CP_AV_S || t == CP_AV_N || t == CP_AV_B;
    switch (op) {
    case CP_CMP_EQ:
    case CP_CMP_NE:
        return scalar || t == CP_AV_SS || t == CP_AV_NS || t == CP_AV_BS;
    case CP_CMP_BEGINS_WITH:
        return t == CP_AV_S || t == CP_AV_B;
    default:
        return scalar;
    }
}

static int same_type(const cp_av *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (v[i].type != v[0].type) {
            return 0;
        }
    }
    return 1;
}

static int between_ok(const cp_av *v)
{
    cp_av_type t = v[0].type;
    if (t != v[1].type || (t != CP_AV_S && t != CP_AV_N && t != CP_AV_B)) {
        return 1;
    }
    return cp_av_cmp(v[0], v[1]) <= 0;
}

/* DynamoDB's checks of one QueryFilter/ScanFilter/KeyConditions entry of n values, of which the
 * first `avail` are at v (key terms keep two). */
static int check_values_n(cp_cmp_op op, const cp_av *v, size_t n, size_t avail, cp_err *err)
{
    if (n != want_args(op, n)) {
        return cp_err_set(err, CP_EINVAL,
                          INVALID "Invalid number of argument(s) for the %s ComparisonOperator",
                          cp_cmp_op_name(op));
    }
    n = n < avail ? n : avail;
    if (n && !same_type(v, n)) {
        return cp_err_set(err, CP_EINVAL,
                          INVALID "AttributeValues inside AttributeValueList must be of same type");
    }
    for (size_t i = 0; i < n; i++) {
        if (!type_ok(op, v[i].type)) {
            const char *tn = cp_av_type_name(v[i].type);
            return cp_err_set(err, CP_EINVAL,
                              INVALID
                              "ComparisonOperator %s is not valid for %s AttributeValue type",
                              cp_cmp_op_name(op), tn ? tn : "?");
        }
    }
    if (op == CP_CMP_BETWEEN && !between_ok(v)) {
        return cp_err_set(err, CP_EINVAL,
                          "The BETWEEN condition was provided a range where the lower bound is "
                          "greater than the upper bound");
    }
    return CP_OK;
}

static int check_values(cp_cmp_op op, const cp_av *v, size_t n, cp_err *err)
{
    return check_values_n(op, v, n, n, err);
}

static int missing_op(const char *param, cp_slice attr, cp_err *err)
{
    return cp_err_set(err, CP_EINVAL,
                      "1 validation error detected: Value null at '%s.%.*s.member."
                      "comparisonOperator' failed to satisfy constraint: Member must not be null",
                      param, (int) attr.len, attr.p);
}

/* ---- Expected ---- */

static int check_expected(const cp_legacy_cond *c, cp_err *err)
{
    int an = (int) c->attr.len;
    const char *ap = c->attr.p;
    if (c->list && c->value) {
        return cp_err_set(err, CP_EINVAL,
                          INVALID "Value and AttributeValueList cannot be used together for "
                                  "Attribute: %.*s",
                          an, ap);
    }
    if (c->op) {
        if (c->exists >= 0) {
            return cp_err_set(err, CP_EINVAL,
                              INVALID "Exists and ComparisonOperator cannot be used together for "
                                      "Attribute: %.*s",
                              an, ap);
        }
        if (c->op != CP_CMP_NULL && c->op != CP_CMP_NOT_NULL && !c->list && !c->value) {
            return cp_err_set(err, CP_EINVAL,
                              INVALID "Value or AttributeValueList must be used with "
                                      "ComparisonOperator: %s for Attribute: %.*s",
                              cp_cmp_op_name(c->op), an, ap);
        }
        const cp_av *v = c->list ? c->list : c->value;
        size_t n = c->list ? c->n_list : c->value ? 1 : 0;
        if (n != want_args(c->op, n)) {
            return cp_err_set(err, CP_EINVAL,
                              INVALID "Invalid number of argument(s) for the %s ComparisonOperator",
                              cp_cmp_op_name(c->op));
        }
        if (n && !same_type(v, n)) {
            return cp_err_set(err, CP_EINVAL,
                              INVALID "AttributeValues inside AttributeValueList must be of same "
                                      "type");
        }
        for (size_t i = 0; i < n; i++) {
            if (!type_ok(c->op, v[i].type)) {
                const char *tn = cp_av_type_name(v[i].type);
                return cp_err_set(err, CP_EINVAL,
                                  INVALID "ComparisonOperator %s is not valid for %s "
                                          "AttributeValue type",
                                  cp_cmp_op_name(c->op), tn ? tn : "?");
            }
        }
        if (c->op == CP_CMP_BETWEEN && !between_ok(v)) {
            return cp_err_set(err, CP_EINVAL,
                              "The BETWEEN condition was provided a range where the lower bound "
                              "is greater than the upper bound");
        }
        return CP_OK;
    }
    if (c->list) {
        return cp_err_set(err, CP_EINVAL,
                          INVALID "AttributeValueList can only be used with a ComparisonOperator "
                                  "for Attribute: %.*s",
                          an, ap);
    }
    if (c->exists != 0 && !c->value) {
        return cp_err_set(err, CP_EINVAL,
                          INVALID "Value must be provided when Exists is %s for Attribute: %.*s",
                          c->exists < 0 ? "null" : "true", an, ap);
    }
    if (c->exists == 0 && c->value) {
        return cp_err_set(err, CP_EINVAL,
                          INVALID "Value cannot be used when Exists is false for Attribute: %.*s",
                          an, ap);
    }
    return CP_OK;
}

int cp__expr_legacy_expected(cp_expr *e, const cp_expr_input *in, cp_err *err)
{
    if (!in->expected) {
        return CP_OK;
    }
    cp__cond *acc = NULL;
    for (size_t i = 0; i < in->n_expected; i++) {
        const cp_legacy_cond *c = &in->expected[i];
        int rc = check_expected(c, err);
        if (rc) {
            return rc;
        }
        cp__cond *one;
        if (c->op) {
            const cp_av *v = c->list ? c->list : c->value;
            size_t n = c->list ? c->n_list : c->value ? 1 : 0;
            one = convert(e, c->attr, c->op, v, n);
        } else if (c->exists == 0) {
            one = convert(e, c->attr, CP_CMP_NULL, NULL, 0);
        } else {
            one = convert(e, c->attr, CP_CMP_EQ, c->value, 1);
        }
        const cp__cond *leaf = one->kind == CP__C_NOT ? one->a : one;
        cp__expr_note_path(e, CP__SRC_CONDITION, &leaf->ops[0].path);
        acc = combine(e, acc, one, in->conditional_op);
    }
    e->cond = acc ? acc : node(e, CP__C_TRUE, 0, NULL, 0);
    e->has_cond = 1;
    return CP_OK;
}

/* ---- QueryFilter / ScanFilter ---- */

int cp__expr_legacy_filter(cp_expr *e, const cp_expr_input *in, cp_err *err)
{
    if (!in->filter_conds) {
        return CP_OK;
    }
    int query = in->op == CP_EXPR_OP_QUERY;
    cp__cond *acc = NULL;
    for (size_t i = 0; i < in->n_filter_conds; i++) {
        const cp_legacy_cond *c = &in->filter_conds[i];
        if (!c->op) {
            return missing_op(query ? "queryFilter" : "scanFilter", c->attr, err);
        }
        size_t n = c->list ? c->n_list : 0;
        int rc = check_values(c->op, c->list, n, err);
        if (rc) {
            return rc;
        }
        cp__cond *one = convert(e, c->attr, c->op, c->list, n);
        cp__path head = top_path(e, c->attr);
        cp__expr_note_path(e, CP__SRC_FILTER, &head);
        acc = combine(e, acc, one, in->conditional_op);
    }
    e->filter = acc ? acc : node(e, CP__C_TRUE, 0, NULL, 0);
    e->has_filter = 1;
    e->filter_label = query ? "QueryFilter" : "ScanFilter";
    return CP_OK;
}

/* ---- AttributesToGet ---- */

int cp__expr_legacy_attrs(cp_expr *e, const cp_expr_input *in, cp_err *err)
{
    if (!in->attributes_to_get) {
        return CP_OK;
    }
    size_t n = in->n_attributes_to_get;
    if (n == 0) {
        return cp_err_set(err, CP_EINVAL,
                          "1 validation error detected: Value '[]' at 'attributesToGet' failed to "
                          "satisfy constraint: Member must have length greater than or equal to 1");
    }
    for (size_t i = 1; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (cp_slice_eq(in->attributes_to_get[i], in->attributes_to_get[j])) {
                return cp_err_set(err, CP_EINVAL, INVALID "Duplicate value in attribute name: %.*s",
                                  (int) in->attributes_to_get[i].len, in->attributes_to_get[i].p);
            }
        }
    }
    cp__path *paths = cp__expr_alloc(e, n * sizeof(cp__path));
    for (size_t i = 0; i < n; i++) {
        paths[i] = top_path(e, in->attributes_to_get[i]);
        cp__expr_note_path(e, CP__SRC_PROJECTION, &paths[i]);
    }
    uint32_t nodes;
    e->proj = cp__expr_trie(e, paths, NULL, (uint32_t) n, &nodes);
    e->has_proj = 1;
    return CP_OK;
}

/* ---- AttributeUpdates ---- */

int cp__expr_legacy_updates(cp_expr *e, const cp_expr_input *in, cp_err *err)
{
    if (!in->attribute_updates) {
        return CP_OK;
    }
    size_t n = in->n_attribute_updates;
    for (size_t i = 0; i < n; i++) {
        const cp_legacy_update *u = &in->attribute_updates[i];
        cp_legacy_action act = u->action ? u->action : CP_LEGACY_PUT;
        const char *tn = u->value ? cp_av_type_name(u->value->type) : NULL;
        cp_av_type t = u->value ? u->value->type : 0;
        if (!u->value && act != CP_LEGACY_DELETE) {
            return cp_err_set(err, CP_EINVAL,
                              INVALID "Only DELETE action is allowed when no attribute value is "
                                      "specified");
        }
        if (u->value && act == CP_LEGACY_DELETE && t != CP_AV_SS && t != CP_AV_NS &&
            t != CP_AV_BS) {
            return cp_err_set(err, CP_EINVAL,
                              INVALID "DELETE action with value is not supported for the type %s",
                              tn ? tn : "?");
        }
        if (u->value && act == CP_LEGACY_ADD && t != CP_AV_L && t != CP_AV_SS && t != CP_AV_NS &&
            t != CP_AV_BS && t != CP_AV_N) {
            return cp_err_set(err, CP_EINVAL, INVALID "ADD action is not supported for the type %s",
                              tn ? tn : "?");
        }
    }
    e->acts = cp__expr_alloc(e, (n + 1) * sizeof(cp__uact));
    e->nacts = (uint32_t) n;
    for (size_t i = 0; i < n; i++) {
        const cp_legacy_update *u = &in->attribute_updates[i];
        cp__uact *a = &e->acts[i];
        cp_legacy_action act = u->action ? u->action : CP_LEGACY_PUT;
        a->legacy = 1;
        a->path = top_path(e, u->attr);
        if (u->value) {
            a->av = cp__expr_dup_av(e, *u->value);
        }
        if (act == CP_LEGACY_PUT) {
            a->kind = CP__U_SET;
            a->val = cp__expr_alloc(e, sizeof(cp__opnd));
            a->val->kind = CP__O_VALUE;
            a->val->val = a->av;
        } else if (act == CP_LEGACY_ADD) {
            a->kind = CP__U_ADD;
        } else {
            a->kind = u->value ? CP__U_DELETE : CP__U_REMOVE;
        }
        cp__expr_note_path(e, CP__SRC_UPDATE, &a->path);
    }
    e->has_update = 1;
    return CP_OK;
}

/* ---- Key conditions ---- */

static cp__keyterm *add_term(cp_expr *e, cp_slice attr)
{
    if (e->nkterms == e->kcap) {
        uint32_t cap = e->kcap ? e->kcap * 2 : 2;
        cp__keyterm *t = cp__expr_alloc(e, cap * sizeof(cp__keyterm));
        if (e->nkterms) {
            memcpy(t, e->kterms, e->nkterms * sizeof(cp__keyterm));
        }
        e->kterms = t;
        e->kcap = cap;
    }
    cp__keyterm *t = &e->kterms[e->nkterms++];
    memset(t, 0, sizeof(*t));
    t->attr = attr;
    return t;
}

static int has_term(const cp_expr *e, cp_slice attr)
{
    for (uint32_t i = 0; i < e->nkterms; i++) {
        if (cp_slice_eq(e->kterms[i].attr, attr)) {
            return 1;
        }
    }
    return 0;
}

int cp__expr_legacy_check_keyconds(cp_expr *e, const cp_expr_input *in, cp_err *err)
{
    if (!in->key_conditions) {
        return CP_OK;
    }
    for (size_t i = 0; i < in->n_key_conditions; i++) {
        const cp_legacy_cond *c = &in->key_conditions[i];
        if (!c->op) {
            return missing_op("keyConditions", c->attr, err);
        }
        cp__keyterm *t = add_term(e, cp__expr_dup(e, c->attr));
        t->op = c->op;
        size_t n = c->list ? c->n_list : 0;
        /* only the first two matter; the count is checked with the others */
        for (size_t k = 0; k < n && k < 2; k++) {
            t->v[k] = cp__expr_dup_av(e, c->list[k]);
        }
        t->nv = (uint32_t) n;
    }
    e->has_key = 1;
    return CP_OK;
}

static int key_leaf(cp_expr *e, const cp__cond *c, cp_err *err)
{
    cp_slice attr = {0};
    int ix = -1;
    for (uint32_t i = 0; i < c->nops; i++) {
        const cp__opnd *o = &c->ops[i];
        if (o->kind == CP__O_PATH) {
            if (ix >= 0) {
                return cp_err_set(err, CP_EINVAL,
                                  "Invalid condition in KeyConditionExpression: Multiple attribute "
                                  "names used in one condition");
            }
            if (o->path.n > 1) {
                return cp_err_set(err, CP_EINVAL,
                                  "KeyConditionExpressions cannot have conditions on nested "
                                  "attributes");
            }
            attr = o->path.seg[0].name;
            ix = (int) i;
        } else if (o->kind == CP__O_FUNC) {
            return cp_err_set(err, CP_EINVAL,
                              "KeyConditionExpressions cannot contain nested operations");
        }
    }
    if (ix < 0) {
        return cp_err_set(err, CP_EINVAL,
                          "Invalid condition in KeyConditionExpression: No key attribute "
                          "specified");
    }
    if (has_term(e, attr)) {
        return cp_err_set(err, CP_EINVAL,
                          "KeyConditionExpressions must only contain one condition per key");
    }
    cp_cmp_op op;
    if (c->kind == CP__C_BETWEEN) {
        op = CP_CMP_BETWEEN;
    } else if (c->kind == CP__C_FUNC) {
        op = CP_CMP_BEGINS_WITH;
    } else {
        op = (cp_cmp_op) c->op;
        if (ix != 0) {
            /* ":v < sk" is "sk > :v" */
            static const cp_cmp_op flip[] = {
                [CP_CMP_EQ] = CP_CMP_EQ, [CP_CMP_LT] = CP_CMP_GT, [CP_CMP_LE] = CP_CMP_GE,
                [CP_CMP_GT] = CP_CMP_LT, [CP_CMP_GE] = CP_CMP_LE,
            };
            op = flip[op];
        }
    }
    cp__keyterm *t = add_term(e, attr);
    t->op = op;
    for (uint32_t i = 0; i < c->nops; i++) {
        if ((int) i != ix && t->nv < 2) {
            t->v[t->nv++] = c->ops[i].val;
        }
    }
    return CP_OK;
}

static int key_walk(cp_expr *e, const cp__cond *c, cp_err *err)
{
    const char *bad = NULL;
    switch (c->kind) {
    case CP__C_OR:
        bad = "OR";
        break;
    case CP__C_NOT:
        bad = "NOT";
        break;
    case CP__C_IN:
        bad = "IN";
        break;
    case CP__C_CMP:
        bad = c->op == CP_CMP_NE ? "<>" : NULL;
        break;
    case CP__C_FUNC:
        if (c->op != CP__F_BEGINS_WITH) {
            return cp_err_set(err, CP_EINVAL,
                              "Invalid operator used in KeyConditionExpression: %.*s",
                              (int) c->fname.len, c->fname.p);
        }
        if (c->ops[0].kind != CP__O_PATH) {
            return cp_err_set(err, CP_EINVAL,
                              "Invalid condition in KeyConditionExpression: begins_with operator "
                              "must have the key attribute as its first operand");
        }
        break;
    case CP__C_BETWEEN:
        if (c->ops[0].kind != CP__O_PATH) {
            return cp_err_set(err, CP_EINVAL,
                              "Invalid condition in KeyConditionExpression: BETWEEN operator must "
                              "have the key attribute as its first operand");
        }
        break;
    case CP__C_AND: {
        int rc = key_walk(e, c->a, err);
        return rc ? rc : key_walk(e, c->b, err);
    }
    default:
        break;
    }
    if (bad) {
        return cp_err_set(err, CP_EINVAL, "Invalid operator used in KeyConditionExpression: %s",
                          bad);
    }
    return key_leaf(e, c, err);
}

int cp__expr_key_terms(cp_expr *e, const cp__cond *c, cp_err *err)
{
    int rc = key_walk(e, c, err);
    if (!rc) {
        e->has_key = 1;
    }
    return rc;
}

int cp__expr_check_key_terms(const cp_expr *e, cp_err *err)
{
    for (uint32_t i = 0; i < e->nkterms; i++) {
        const cp__keyterm *t = &e->kterms[i];
        /* terms keep at most two values; a longer list fails the count check anyway */
        int rc = check_values_n(t->op, t->v, t->nv, 2, err);
        if (rc) {
            return rc;
        }
    }
    if (e->nkterms != 1 && e->nkterms != 2) {
        return cp_err_set(err, CP_EINVAL, "Conditions can be of length 1 or 2 only");
    }
    return CP_OK;
}
