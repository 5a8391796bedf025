/* SPDX-License-Identifier: MIT */
/*
 * Compiling a request's expression parameters: the order of DynamoDB's validations (parameter
 * mixing, legacy shapes, placeholder maps, each expression, unused placeholders, key
 * conditions), the arena every compiled expression lives in, and the path tries the evaluators
 * walk.
 */
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "table/expr_int.h"

/* ---- Arena ---- */

#define CHUNK_HDR                                                                                  \
    ((sizeof(cp__expr_chunk) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))

void *cp__expr_alloc(cp_expr *e, size_t n)
{
    n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    cp__expr_chunk *c = e->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = c ? c->cap * 2 : 2048;
        if (cap > 65536) {
            cap = 65536;
        }
        if (cap < n) {
            cap = n;
        }
        cp__expr_chunk *nc = cp_malloc(CHUNK_HDR + cap);
        nc->cap = cap;
        nc->used = 0;
        if (c && n > 65536 / 2) {
            /* a big block gets its own chunk behind the current one, which stays in use */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            e->chunks = nc;
        }
        c = nc;
    }
    void *p = (char *) c + CHUNK_HDR + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

cp_slice cp__expr_dup(cp_expr *e, cp_slice s)
{
    char *p = cp__expr_alloc(e, s.len + 1);
    if (s.len) {
        memcpy(p, s.p, s.len);
    }
    return cp_slice_of(p, s.len);
}

cp_av cp__expr_dup_av(cp_expr *e, cp_av v)
{
    cp_slice raw = cp__expr_dup(e, cp_av_raw(v));
    /* the raw form is the type byte followed by the body */
    return (cp_av){v.type, cp_slice_of(raw.p + 1, raw.len - 1)};
}

void cp__expr_note_path(cp_expr *e, cp__src src, const cp__path *p)
{
    cp__heads *h = &e->heads[src];
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 8;
        cp_slice *names = cp__expr_alloc(e, cap * sizeof(cp_slice));
        uint8_t *nested = cp__expr_alloc(e, cap);
        if (h->n) {
            memcpy(names, h->name, h->n * sizeof(cp_slice));
            memcpy(nested, h->nested, h->n);
        }
        h->name = names;
        h->nested = nested;
        h->cap = cap;
    }
    h->name[h->n] = p->seg[0].name;
    h->nested[h->n] = p->n > 1;
    h->n++;
}

/* ---- Tries ---- */

static int seg_cmp(const cp__seg *a, const cp__seg *b)
{
    if (a->is_index != b->is_index) {
        return a->is_index ? 1 : -1;
    }
    if (a->is_index) {
        return a->index < b->index ? -1 : a->index > b->index;
    }
    return cp_slice_cmp(a->name, b->name);
}

typedef struct tent {
    const cp__path *p;
    int32_t act;
    uint32_t ord;
} tent;

static int tent_cmp(const void *x, const void *y)
{
    const tent *a = x, *b = y;
    uint32_t n = a->p->n < b->p->n ? a->p->n : b->p->n;
    for (uint32_t i = 0; i < n; i++) {
        int c = seg_cmp(&a->p->seg[i], &b->p->seg[i]);
        if (c) {
            return c;
        }
    }
    if (a->p->n != b->p->n) {
        return a->p->n < b->p->n ? -1 : 1;
    }
    return a->ord < b->ord ? -1 : a->ord > b->ord;
}

static void build(cp_expr *e, cp__tnode *node, const tent *v, uint32_t n, uint32_t depth,
                  uint32_t *ids)
{
    node->id = (*ids)++;
    node->act = -1;
    if (n && v[0].p->n == depth) {
        /* a requested path ends here; anything below it would overlap (rejected earlier) */
        node->act = v[0].act;
        return;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        k += i == 0 || seg_cmp(&v[i].p->seg[depth], &v[i - 1].p->seg[depth]) != 0;
    }
    node->nkids = k;
    node->kids = k ? cp__expr_alloc(e, k * sizeof(cp__tnode)) : NULL;
    uint32_t start = 0;
    for (uint32_t g = 0; g < k; g++) {
        uint32_t end = start + 1;
        while (end < n && seg_cmp(&v[end].p->seg[depth], &v[start].p->seg[depth]) == 0) {
            end++;
        }
        node->kids[g].seg = v[start].p->seg[depth];
        build(e, &node->kids[g], v + start, end - start, depth + 1, ids);
        start = end;
    }
    node->kids_index = k && node->kids[0].seg.is_index;
}

cp__tnode *cp__expr_trie(cp_expr *e, const cp__path *paths, const int32_t *acts, uint32_t n,
                         uint32_t *nodes)
{
    tent *v = cp_malloc((n + 1) * sizeof(tent));
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (paths[i].n == 0) {
            continue;
        }
        v[m++] = (tent){&paths[i], acts ? acts[i] : 1, i};
    }
    qsort(v, m, sizeof(tent), tent_cmp);
    cp__tnode *root = cp__expr_alloc(e, sizeof(*root));
    uint32_t ids = 0;
    build(e, root, v, m, 0, &ids);
    root->act = -1;
    cp_free(v);
    *nodes = ids;
    return root;
}

static const cp__tnode *find(const cp__tnode *t, const cp__seg *probe)
{
    uint32_t lo = 0, hi = t->nkids;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int c = seg_cmp(probe, &t->kids[mid].seg);
        if (c == 0) {
            return &t->kids[mid];
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

const cp__tnode *cp__tnode_find(const cp__tnode *t, cp_slice name)
{
    cp__seg probe = {.name = name};
    return find(t, &probe);
}

const cp__tnode *cp__tnode_find_index(const cp__tnode *t, uint32_t index)
{
    cp__seg probe = {.index = index, .is_index = 1};
    return find(t, &probe);
}

void cp__expr_path_str(const cp__path *p, cp_buf *out)
{
    cp_buf_putc(out, '[');
    for (uint32_t i = 0; i < p->n; i++) {
        if (i) {
            cp_buf_puts(out, ", ");
        }
        if (p->seg[i].is_index) {
            cp_buf_printf(out, "[%u]", p->seg[i].index);
        } else {
            cp_buf_append(out, p->seg[i].name.p, p->seg[i].name.len);
        }
    }
    cp_buf_putc(out, ']');
}

const char *cp__expr_type_word(cp_av_type t)
{
    switch (t) {
    case CP_AV_S:
        return "STRING";
    case CP_AV_N:
        return "NUMBER";
    case CP_AV_B:
        return "BINARY";
    case CP_AV_BOOL:
        return "BOOLEAN";
    case CP_AV_NULL:
        return "NULL";
    case CP_AV_SS:
        return "STRING_SET";
    case CP_AV_NS:
        return "NUMBER_SET";
    case CP_AV_BS:
        return "BINARY_SET";
    case CP_AV_L:
        return "LIST";
    case CP_AV_M:
        return "MAP";
    }
    return "UNKNOWN";
}

/* ---- Comparison operators ---- */

static const char *const cmp_names[] = {
    "",         "EQ",   "NE",       "LE",           "LT",          "GE", "GT",
    "NOT_NULL", "NULL", "CONTAINS", "NOT_CONTAINS", "BEGINS_WITH", "IN", "BETWEEN",
};

cp_cmp_op cp_cmp_op_from_name(cp_slice name)
{
    for (int i = 1; i < (int) (sizeof(cmp_names) / sizeof(cmp_names[0])); i++) {
        if (cp_slice_eq(name, cp_slice_str(cmp_names[i]))) {
            return (cp_cmp_op) i;
        }
    }
    return 0;
}

const char *cp_cmp_op_name(cp_cmp_op op)
{
    return op > 0 && op <= CP_CMP_BETWEEN ? cmp_names[op] : "";
}

/* ---- Placeholder maps ---- */

typedef struct kidx {
    cp_slice key;
    uint32_t idx;
} kidx;

static int kidx_cmp(const void *x, const void *y)
{
    const kidx *a = x, *b = y;
    int c = cp_slice_cmp(a->key, b->key);
    return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

static int valid_key(cp_slice k, char first)
{
    if (k.len < 2 || k.p[0] != first) {
        return 0;
    }
    for (size_t i = 1; i < k.len; i++) {
        char ch = k.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_')) {
            return 0;
        }
    }
    return 1;
}

static int build_pmap(cp_expr *e, cp_slice item, cp__pmap *m, int names, cp_err *err)
{
    const char *what = names ? "ExpressionAttributeNames" : "ExpressionAttributeValues";
    m->present = 1;
    cp_slice copy = cp__expr_dup(e, item);
    uint32_t n = item.len ? cp_item_count(copy) : 0;
    if (n == 0) {
        return cp_err_set(err, CP_EINVAL, "%s must not be empty", what);
    }
    m->n = n;
    m->key = cp__expr_alloc(e, n * sizeof(cp_slice));
    m->sval = names ? cp__expr_alloc(e, n * sizeof(cp_slice)) : NULL;
    m->val = names ? NULL : cp__expr_alloc(e, n * sizeof(cp_av));
    m->order = cp__expr_alloc(e, n * sizeof(uint32_t));
    m->used = cp__expr_alloc(e, n);
    kidx *k = cp_malloc(n * sizeof(kidx));
    cp_av_iter it;
    cp_slice name;
    cp_av v;
    uint32_t i = 0;
    cp_item_iter_init(&it, copy);
    while (i < n && cp_av_iter_next(&it, &name, &v)) {
        if (!valid_key(name, names ? '#' : ':')) {
            cp_free(k);
            return cp_err_set(err, CP_EINVAL,
                              "%s contains invalid key: Syntax error; key: \"%.*s\"", what,
                              (int) name.len, name.p);
        }
        m->key[i] = name;
        if (names) {
            m->sval[i] = v.type == CP_AV_S ? cp_av_bytes(v) : cp_slice_of("", 0);
        } else {
            m->val[i] = v;
        }
        k[i] = (kidx){name, i};
        i++;
    }
    m->n = i;
    qsort(k, i, sizeof(kidx), kidx_cmp);
    for (uint32_t j = 0; j < i; j++) {
        m->order[j] = k[j].idx;
    }
    cp_free(k);
    return CP_OK;
}

static int unused(const cp__pmap *m, const char *what, cp_err *err)
{
    if (!m->present) {
        return CP_OK;
    }
    cp_buf s = CP_BUF_INIT;
    for (uint32_t i = 0; i < m->n; i++) {
        if (!m->used[i]) {
            if (s.len) {
                cp_buf_puts(&s, ", ");
            }
            cp_buf_append(&s, m->key[i].p, m->key[i].len);
        }
    }
    int rc = CP_OK;
    if (s.len) {
        rc = cp_err_set(err, CP_EINVAL, "Value provided in %s unused in expressions: keys: {%s}",
                        what, s.p);
    }
    cp_buf_free(&s);
    return rc;
}

/* ---- Parameter mixing ---- */

typedef struct param {
    const char *name;
    int present;
} param;

static void join(cp_buf *out, const param *ps, int n)
{
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (ps[i].present) {
            cp_buf_puts(out, first ? "" : ", ");
            cp_buf_puts(out, ps[i].name);
            first = 0;
        }
    }
}

#define HAS(s) ((s).p != NULL)

/* DynamoDB's validateExpressionParams: no legacy parameter next to an expression, and the
 * placeholder maps only with expressions. The lists follow each operation's own order. */
static int check_mixing(const cp_expr_input *in, cp_err *err)
{
    param ex[3], nx[4];
    int ne = 0, nn = 0;
    int condop = in->conditional_op != CP_CONDOP_NONE;
    switch (in->op) {
    case CP_EXPR_OP_GET:
        ex[ne++] = (param){"ProjectionExpression", HAS(in->projection)};
        nx[nn++] = (param){"AttributesToGet", in->attributes_to_get != NULL};
        break;
    case CP_EXPR_OP_PUT:
    case CP_EXPR_OP_DELETE:
    case CP_EXPR_OP_CHECK:
        ex[ne++] = (param){"ConditionExpression", HAS(in->condition)};
        nx[nn++] = (param){"Expected", in->expected != NULL};
        nx[nn++] = (param){"ConditionalOperator", condop};
        break;
    case CP_EXPR_OP_UPDATE:
        ex[ne++] = (param){"UpdateExpression", HAS(in->update)};
        ex[ne++] = (param){"ConditionExpression", HAS(in->condition)};
        nx[nn++] = (param){"AttributeUpdates", in->attribute_updates != NULL};
        nx[nn++] = (param){"Expected", in->expected != NULL};
        nx[nn++] = (param){"ConditionalOperator", condop};
        break;
    case CP_EXPR_OP_QUERY:
        ex[ne++] = (param){"ProjectionExpression", HAS(in->projection)};
        ex[ne++] = (param){"FilterExpression", HAS(in->filter)};
        ex[ne++] = (param){"KeyConditionExpression", HAS(in->key_condition)};
        nx[nn++] = (param){"AttributesToGet", in->attributes_to_get != NULL};
        nx[nn++] = (param){"QueryFilter", in->filter_conds != NULL};
        nx[nn++] = (param){"ConditionalOperator", condop};
        /* KeyConditions may go with the other expressions when there is no
         * KeyConditionExpression */
        nx[nn++] = (param){"KeyConditions", in->key_conditions != NULL && HAS(in->key_condition)};
        break;
    case CP_EXPR_OP_SCAN:
        ex[ne++] = (param){"ProjectionExpression", HAS(in->projection)};
        ex[ne++] = (param){"FilterExpression", HAS(in->filter)};
        nx[nn++] = (param){"AttributesToGet", in->attributes_to_get != NULL};
        nx[nn++] = (param){"ScanFilter", in->filter_conds != NULL};
        nx[nn++] = (param){"ConditionalOperator", condop};
        break;
    default:
        return cp_err_set(err, CP_EINVAL, "unknown operation");
    }
    int any_ex = 0, any_nx = 0;
    for (int i = 0; i < ne; i++) {
        any_ex |= ex[i].present;
    }
    for (int i = 0; i < nn; i++) {
        any_nx |= nx[i].present;
    }
    if (any_ex && any_nx) {
        cp_buf a = CP_BUF_INIT, b = CP_BUF_INIT;
        join(&a, nx, nn);
        join(&b, ex, ne);
        int rc = cp_err_set(err, CP_EINVAL,
                            "Can not use both expression and non-expression parameters in the "
                            "same request: Non-expression parameters: {%s} Expression "
                            "parameters: {%s}",
                            a.p, b.p);
        cp_buf_free(&a);
        cp_buf_free(&b);
        return rc;
    }
    if (HAS(in->names) && !any_ex) {
        return cp_err_set(err, CP_EINVAL,
                          "ExpressionAttributeNames can only be specified when using expressions");
    }
    /* ProjectionExpression takes no values */
    int nval = 0, any_val = 0;
    for (int i = 0; i < ne; i++) {
        if (strcmp(ex[i].name, "ProjectionExpression") != 0) {
            nval++;
            any_val |= ex[i].present;
        }
    }
    if (HAS(in->values) && nval && !any_val) {
        cp_buf s = CP_BUF_INIT;
        int k = 0;
        for (int i = 0; i < ne; i++) {
            if (strcmp(ex[i].name, "ProjectionExpression") != 0) {
                cp_buf_puts(&s, k++ ? " and " : "");
                cp_buf_puts(&s, ex[i].name);
            }
        }
        int rc = cp_err_set(err, CP_EINVAL,
                            "ExpressionAttributeValues can only be specified when using "
                            "expressions: %s %s null",
                            s.p, nval > 1 ? "are" : "is");
        cp_buf_free(&s);
        return rc;
    }
    return CP_OK;
}

/* ---- Compile ---- */

static int build_update_tries(cp_expr *e)
{
    if (!e->has_update) {
        return CP_OK;
    }
    cp__path *paths = cp__expr_alloc(e, (e->nacts + 1) * sizeof(cp__path));
    int32_t *acts = cp__expr_alloc(e, (e->nacts + 1) * sizeof(int32_t));
    for (uint32_t i = 0; i < e->nacts; i++) {
        paths[i] = e->acts[i].path;
        acts[i] = (int32_t) i;
    }
    uint32_t nodes;
    e->utree = cp__expr_trie(e, paths, acts, e->nacts, &e->unodes);
    e->uproj = cp__expr_trie(e, paths, NULL, e->nacts, &nodes);
    return CP_OK;
}

static int compile(cp_expr *e, const cp_expr_input *in, cp_err *err)
{
    int rc = check_mixing(in, err);
    if (rc) {
        return rc;
    }
    int op = in->op;
    int reads = op == CP_EXPR_OP_GET || op == CP_EXPR_OP_QUERY || op == CP_EXPR_OP_SCAN;
    int filters = op == CP_EXPR_OP_QUERY || op == CP_EXPR_OP_SCAN;

    /* legacy parameters first, as DynamoDB's per-operation validation does */
    if (filters && (rc = cp__expr_legacy_filter(e, in, err))) {
        return rc;
    }
    if (reads && (rc = cp__expr_legacy_attrs(e, in, err))) {
        return rc;
    }
    if (op == CP_EXPR_OP_QUERY && !in->key_conditions && !HAS(in->key_condition)) {
        return cp_err_set(err, CP_EINVAL,
                          "Either the KeyConditions or KeyConditionExpression parameter must be "
                          "specified in the request.");
    }
    if (op == CP_EXPR_OP_UPDATE && (rc = cp__expr_legacy_updates(e, in, err))) {
        return rc;
    }
    if (!reads && (rc = cp__expr_legacy_expected(e, in, err))) {
        return rc;
    }

    cp__pctx ctx = {.e = e};
    if (HAS(in->names) && (rc = build_pmap(e, in->names, &ctx.names, 1, err))) {
        return rc;
    }
    if (HAS(in->values) && (rc = build_pmap(e, in->values, &ctx.values, 0, err))) {
        return rc;
    }
    if (op == CP_EXPR_OP_UPDATE && HAS(in->update) &&
        (rc = cp__expr_parse_update(&ctx, in->update, err))) {
        return rc;
    }
    if (!reads && HAS(in->condition)) {
        rc = cp__expr_parse_condition(&ctx, in->condition, "ConditionExpression", CP__SRC_CONDITION,
                                      &e->cond, err);
        if (rc) {
            return rc;
        }
        e->has_cond = 1;
    }
    cp__cond *key = NULL;
    if (op == CP_EXPR_OP_QUERY && HAS(in->key_condition)) {
        rc = cp__expr_parse_condition(&ctx, in->key_condition, "KeyConditionExpression",
                                      CP__SRC_KEY, &key, err);
        if (rc) {
            return rc;
        }
    }
    if (filters && HAS(in->filter)) {
        rc = cp__expr_parse_condition(&ctx, in->filter, "FilterExpression", CP__SRC_FILTER,
                                      &e->filter, err);
        if (rc) {
            return rc;
        }
        e->has_filter = 1;
        e->filter_label = "Filter Expression";
    }
    if (reads && HAS(in->projection) &&
        (rc = cp__expr_parse_projection(&ctx, in->projection, err))) {
        return rc;
    }
    if ((rc = unused(&ctx.names, "ExpressionAttributeNames", err)) ||
        (rc = unused(&ctx.values, "ExpressionAttributeValues", err))) {
        return rc;
    }
    if (key && (rc = cp__expr_key_terms(e, key, err))) {
        return rc;
    }
    if (op == CP_EXPR_OP_QUERY && !key && (rc = cp__expr_legacy_check_keyconds(e, in, err))) {
        return rc;
    }
    if (op == CP_EXPR_OP_QUERY && (rc = cp__expr_check_key_terms(e, err))) {
        return rc;
    }
    return build_update_tries(e);
}

int cp_expr_compile(const cp_expr_input *in, cp_expr **out, cp_err *err)
{
    *out = NULL;
    cp_expr *e = cp_calloc(1, sizeof(*e));
    int rc = compile(e, in, err);
    if (rc) {
        cp_expr_free(e);
        return rc;
    }
    *out = e;
    return CP_OK;
}

void cp_expr_free(cp_expr *e)
{
    if (!e) {
        return;
    }
    cp__expr_chunk *c = e->chunks;
    while (c) {
        cp__expr_chunk *next = c->next;
        cp_free(c);
        c = next;
    }
    cp_free(e);
}

int cp_expr_has_condition(const cp_expr *e)
{
    return e->has_cond;
}

int cp_expr_has_filter(const cp_expr *e)
{
    return e->has_filter;
}

int cp_expr_has_update(const cp_expr *e)
{
    return e->has_update;
}

int cp_expr_has_projection(const cp_expr *e)
{
    return e->has_proj;
}

int cp_expr_has_key_condition(const cp_expr *e)
{
    return e->has_key;
}

/* ---- ExpressionAttributeNames from JSON ---- */

static int shape_error(cp_err *err, const cp_json_tok *t)
{
    const char *what = "Expected map or null";
    switch (t->type) {
    case CP_JSON_NUMBER:
        what = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be "
               "converted to an String";
        break;
    case CP_JSON_TRUE:
    case CP_JSON_FALSE:
        what = "class java.lang.Boolean can not be converted to an String";
        break;
    case CP_JSON_OBJ_BEGIN:
        what = "Start of structure or map found where not expected.";
        break;
    case CP_JSON_ARR_BEGIN:
        what = "Start of list found where not expected";
        break;
    default:
        break;
    }
    return cp_err_set(err, CP_EINVAL, "SerializationException: %s", what);
}

int cp_expr_names_from_json(cp_json_lexer *lx, cp_buf *out, cp_err *err)
{
    cp_json_tok t;
    int rc = cp_json_next(lx, &t);
    if (rc) {
        return cp_err_set(err, CP_EINVAL, "SerializationException: %s", lx->error);
    }
    if (t.type != CP_JSON_OBJ_BEGIN) {
        if (t.type == CP_JSON_ARR_BEGIN) {
            return cp_err_set(err, CP_EINVAL,
                              "SerializationException: Start of list found where not expected");
        }
        return cp_err_set(err, CP_EINVAL, "SerializationException: Expected map or null");
    }
    cp_item_builder b;
    cp_buf kbuf = CP_BUF_INIT, vbuf = CP_BUF_INIT;
    cp_item_builder_init(&b, out);
    cp_item_begin(&b);
    for (;;) {
        if ((rc = cp_json_next(lx, &t))) {
            rc = cp_err_set(err, CP_EINVAL, "SerializationException: %s", lx->error);
            break;
        }
        if (t.type == CP_JSON_OBJ_END) {
            cp_item_end(&b);
            break;
        }
        cp_slice key, val;
        if (cp_json_tok_string(&t, &kbuf, &key)) {
            rc = cp_err_set(err, CP_EINVAL, "SerializationException: bad string escape");
            break;
        }
        if ((rc = cp_json_next(lx, &t))) {
            rc = cp_err_set(err, CP_EINVAL, "SerializationException: %s", lx->error);
            break;
        }
        if (t.type == CP_JSON_NULL) {
            continue; /* a null member counts as absent */
        }
        if (t.type != CP_JSON_STRING) {
            rc = shape_error(err, &t);
            break;
        }
        if (cp_json_tok_string(&t, &vbuf, &val)) {
            rc = cp_err_set(err, CP_EINVAL, "SerializationException: bad string escape");
            break;
        }
        cp_item_put_name(&b, key);
        cp_item_put_scalar(&b, CP_AV_S, val);
    }
    cp_buf_free(&kbuf);
    cp_buf_free(&vbuf);
    return rc;
}
