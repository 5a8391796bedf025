/* SPDX-License-Identifier: MIT */
/*
 * Applying an UpdateExpression (or AttributeUpdates) to a binary item: every SET value is first
 * computed from the item as it was (DynamoDB reads all operands before writing anything), then
 * one pass rewrites the item along the trie of target paths, copying untouched members as raw
 * bytes. List positions in the trie are original indexes, so "REMOVE l[0], l[2]" removes the
 * elements that were at 0 and 2, and the later ones shift down.
 */
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "table/expr_int.h"

/* A computed SET value: a view (into the item or the expression) or bytes in the scratch
 * buffer, which may move while values are computed, hence offsets. */
typedef struct uref {
    uint8_t scratch;
    cp_av av;
    size_t off, len;
} uref;

typedef struct uctx {
    const cp_expr *e;
    cp_slice base; /* the item operands are read from */
    cp_buf scratch;
    cp_buf num;
    uref *refs;    /* per action */
    uint8_t *seen; /* per trie node */
    cp_err *err;
} uctx;

static int e_missing(uctx *c)
{
    return cp_err_set(c->err, CP_EINVAL,
                      "The provided expression refers to an attribute that does not exist in "
                      "the item");
}

static int e_type(uctx *c, int legacy)
{
    if (legacy) {
        return cp_err_set(c->err, CP_EINVAL, "Type mismatch for attribute to update");
    }
    return cp_err_set(c->err, CP_EINVAL,
                      "An operand in the update expression has an incorrect data type");
}

static int e_path(uctx *c)
{
    return cp_err_set(c->err, CP_EINVAL,
                      "The document path provided in the update expression is invalid for "
                      "update");
}

static cp_av ref_av(const uctx *c, const uref *r)
{
    if (!r->scratch) {
        return r->av;
    }
    const char *p = c->scratch.p + r->off;
    return (cp_av){(cp_av_type) (unsigned char) p[0], cp_slice_of(p + 1, r->len - 1)};
}

static size_t ref_raw_len(const uref *r)
{
    return r->scratch ? r->len : cp_av_raw(r->av).len;
}

/* Read an N value; a stored number that does not parse counts as a wrong type. */
static int num_of(cp_av v, cp_num *out)
{
    return v.type == CP_AV_N && cp_num_from_stored(cp_av_bytes(v), out) == CP_OK;
}

/* Append an N value to the scratch buffer. */
static void scratch_num(uctx *c, const cp_num *n, uref *out)
{
    cp_buf_reset(&c->num);
    cp_num_format(n, &c->num);
    out->scratch = 1;
    out->off = c->scratch.len;
    cp_buf_put_u8(&c->scratch, CP_AV_N);
    cp_buf_put_bytes(&c->scratch, c->num.p, c->num.len);
    out->len = c->scratch.len - out->off;
}

static int eval_val(uctx *c, const cp__opnd *o, uref *out)
{
    memset(out, 0, sizeof(*out));
    switch (o->kind) {
    case CP__O_VALUE:
        out->av = o->val;
        return CP_OK;
    case CP__O_PATH:
        return cp__expr_resolve(c->base, &o->path, &out->av) ? CP_OK : e_missing(c);
    case CP__O_FUNC:
        break;
    default:
        return e_missing(c);
    }
    uref a, b;
    int rc;
    switch (o->fn) {
    case CP__F_IF_NOT_EXISTS:
        if (o->args[0].kind == CP__O_PATH &&
            cp__expr_resolve(c->base, &o->args[0].path, &out->av)) {
            return CP_OK;
        }
        return eval_val(c, &o->args[1], out);
    case CP__F_PLUS:
    case CP__F_MINUS: {
        cp_num x, y, r;
        if ((rc = eval_val(c, &o->args[0], &a))) {
            return rc;
        }
        if (!num_of(ref_av(c, &a), &x)) {
            return e_type(c, 0);
        }
        if ((rc = eval_val(c, &o->args[1], &b))) {
            return rc;
        }
        if (!num_of(ref_av(c, &b), &y)) {
            return e_type(c, 0);
        }
        rc = o->fn == CP__F_PLUS ? cp_num_add(&x, &y, &r, c->err) : cp_num_sub(&x, &y, &r, c->err);
        if (rc) {
            return rc;
        }
        scratch_num(c, &r, out);
        return CP_OK;
    }
    case CP__F_LIST_APPEND: {
        if ((rc = eval_val(c, &o->args[0], &a))) {
            return rc;
        }
        if (ref_av(c, &a).type != CP_AV_L) {
            return e_type(c, 0);
        }
        if ((rc = eval_val(c, &o->args[1], &b))) {
            return rc;
        }
        if (ref_av(c, &b).type != CP_AV_L) {
            return e_type(c, 0);
        }
        /* Reserve first: a or b may live in the scratch buffer we append to, and must not
         * move while they are copied. */
        cp_buf_reserve(&c->scratch, ref_raw_len(&a) + ref_raw_len(&b) + 16);
        cp_av la = ref_av(c, &a), lb = ref_av(c, &b);
        out->scratch = 1;
        out->off = c->scratch.len;
        cp_buf_put_u8(&c->scratch, CP_AV_L);
        size_t hdr = c->scratch.len;
        cp_buf_put_u32le(&c->scratch, 0);
        cp_buf_put_u32le(&c->scratch, cp_av_count(la) + cp_av_count(lb));
        cp_av lists[2] = {la, lb};
        for (int i = 0; i < 2; i++) {
            cp_av_iter it;
            cp_slice name;
            cp_av el;
            cp_av_iter_init(&it, lists[i]);
            while (cp_av_iter_next(&it, &name, &el)) {
                cp_slice raw = cp_av_raw(el);
                cp_buf_append(&c->scratch, raw.p, raw.len);
            }
        }
        cp_store_u32le(c->scratch.p + hdr, (uint32_t) (c->scratch.len - hdr - 4));
        out->len = c->scratch.len - out->off;
        return CP_OK;
    }
    default:
        return e_missing(c);
    }
}

/* ---- Sets ---- */

/* Membership tests against a set: a linear scan for small sets, binary search over sorted
 * member bytes for big ones (ADD/DELETE of many members to a large set). */
typedef struct setidx {
    cp_av set;
    cp_slice *sorted; /* NULL: linear */
    uint32_t n;
} setidx;

static int slice_cmp(const void *a, const void *b)
{
    return cp_slice_cmp(*(const cp_slice *) a, *(const cp_slice *) b);
}

static void setidx_init(setidx *s, cp_av set, uint32_t probes)
{
    s->set = set;
    s->sorted = NULL;
    s->n = cp_av_count(set);
    if ((uint64_t) s->n * probes <= 1024) {
        return;
    }
    s->sorted = cp_malloc(s->n * sizeof(cp_slice));
    cp_av_iter it;
    cp_slice name;
    cp_av m;
    uint32_t i = 0;
    cp_av_iter_init(&it, set);
    while (i < s->n && cp_av_iter_next(&it, &name, &m)) {
        s->sorted[i++] = cp_av_bytes(m);
    }
    s->n = i;
    qsort(s->sorted, s->n, sizeof(cp_slice), slice_cmp);
}

/* Set members are S/N/B bytes; numbers are stored canonical, so bytes decide equality. */
static int setidx_has(const setidx *s, cp_slice m)
{
    if (s->sorted) {
        return bsearch(&m, s->sorted, s->n, sizeof(cp_slice), slice_cmp) != NULL;
    }
    cp_av_iter it;
    cp_slice name;
    cp_av x;
    cp_av_iter_init(&it, s->set);
    while (cp_av_iter_next(&it, &name, &x)) {
        if (cp_slice_eq(cp_av_bytes(x), m)) {
            return 1;
        }
    }
    return 0;
}

static void setidx_free(setidx *s)
{
    cp_free(s->sorted);
}

static int is_set(cp_av_type t)
{
    return t == CP_AV_SS || t == CP_AV_NS || t == CP_AV_BS;
}

static void put_prefix(cp_item_builder *b, int in_map, cp_slice name)
{
    if (in_map) {
        cp_item_put_name(b, name);
    }
}

static void emit_union(cp_item_builder *b, cp_av old, cp_av add)
{
    setidx idx;
    setidx_init(&idx, old, cp_av_count(add));
    cp_item_begin_container(b, old.type);
    cp_av_iter it;
    cp_slice name;
    cp_av m;
    cp_av_iter_init(&it, old);
    while (cp_av_iter_next(&it, &name, &m)) {
        cp_item_put_set_member(b, cp_av_bytes(m));
    }
    cp_av_iter_init(&it, add);
    while (cp_av_iter_next(&it, &name, &m)) {
        if (!setidx_has(&idx, cp_av_bytes(m))) {
            cp_item_put_set_member(b, cp_av_bytes(m));
        }
    }
    cp_item_end(b);
    setidx_free(&idx);
}

/* old minus del; nothing at all when that leaves the set empty (the attribute goes away). */
static void emit_difference(cp_item_builder *b, int in_map, cp_slice name, cp_av old, cp_av del)
{
    setidx idx;
    setidx_init(&idx, del, cp_av_count(old));
    cp_av_iter it;
    cp_slice nm;
    cp_av m;
    uint32_t keep = 0;
    cp_av_iter_init(&it, old);
    while (cp_av_iter_next(&it, &nm, &m)) {
        keep += !setidx_has(&idx, cp_av_bytes(m));
    }
    if (keep) {
        put_prefix(b, in_map, name);
        cp_item_begin_container(b, old.type);
        cp_av_iter_init(&it, old);
        while (cp_av_iter_next(&it, &nm, &m)) {
            if (!setidx_has(&idx, cp_av_bytes(m))) {
                cp_item_put_set_member(b, cp_av_bytes(m));
            }
        }
        cp_item_end(b);
    }
    setidx_free(&idx);
}

/* ---- The rewrite ---- */

static int apply_add(uctx *c, cp_item_builder *b, const cp__uact *a, const cp_av *old, int in_map,
                     cp_slice name)
{
    cp_av v = a->av;
    if (!old) {
        /* ADD to a missing attribute: 0 + n, or the empty set plus the given one */
        put_prefix(b, in_map, name);
        cp_item_put_av(b, v);
        return CP_OK;
    }
    if (old->type != v.type) {
        return e_type(c, a->legacy);
    }
    if (v.type == CP_AV_N) {
        cp_num x, y, r;
        if (!num_of(*old, &x) || !num_of(v, &y)) {
            return e_type(c, a->legacy);
        }
        int rc = cp_num_add(&x, &y, &r, c->err);
        if (rc) {
            return rc;
        }
        cp_buf_reset(&c->num);
        cp_num_format(&r, &c->num);
        put_prefix(b, in_map, name);
        cp_item_put_scalar(b, CP_AV_N, cp_buf_slice(&c->num));
        return CP_OK;
    }
    if (is_set(v.type)) {
        put_prefix(b, in_map, name);
        emit_union(b, *old, v);
        return CP_OK;
    }
    if (a->legacy && v.type == CP_AV_L) {
        /* AttributeUpdates ADD of a list appends its elements */
        put_prefix(b, in_map, name);
        cp_item_begin_container(b, CP_AV_L);
        cp_av lists[2] = {*old, v};
        for (int i = 0; i < 2; i++) {
            cp_av_iter it;
            cp_slice nm;
            cp_av el;
            cp_av_iter_init(&it, lists[i]);
            while (cp_av_iter_next(&it, &nm, &el)) {
                cp_item_put_av(b, el);
            }
        }
        cp_item_end(b);
        return CP_OK;
    }
    return e_type(c, a->legacy);
}

static int apply_action(uctx *c, cp_item_builder *b, uint32_t idx, const cp_av *old, int in_map,
                        cp_slice name)
{
    const cp__uact *a = &c->e->acts[idx];
    switch (a->kind) {
    case CP__U_SET:
        put_prefix(b, in_map, name);
        cp_item_put_av(b, ref_av(c, &c->refs[idx]));
        return CP_OK;
    case CP__U_REMOVE:
        return CP_OK;
    case CP__U_ADD:
        return apply_add(c, b, a, old, in_map, name);
    case CP__U_DELETE:
        if (!old) {
            return CP_OK;
        }
        if (old->type != a->av.type || !is_set(old->type)) {
            return e_type(c, a->legacy);
        }
        emit_difference(b, in_map, name, *old, a->av);
        return CP_OK;
    }
    return CP_OK;
}

static int rewrite(uctx *c, cp_item_builder *b, const cp__tnode *t, cp_av_iter *it, int list);

static int apply_node(uctx *c, cp_item_builder *b, const cp__tnode *t, const cp_av *old, int in_map,
                      cp_slice name)
{
    if (t->act >= 0) {
        return apply_action(c, b, (uint32_t) t->act, old, in_map, name);
    }
    /* a path through this node: the map or list must already be there */
    cp_av_type want = t->kids_index ? CP_AV_L : CP_AV_M;
    if (!old || old->type != want) {
        return e_path(c);
    }
    put_prefix(b, in_map, name);
    cp_item_begin_container(b, want);
    cp_av_iter it;
    cp_av_iter_init(&it, *old);
    int rc = rewrite(c, b, t, &it, want == CP_AV_L);
    cp_item_end(b);
    return rc;
}

static int rewrite(uctx *c, cp_item_builder *b, const cp__tnode *t, cp_av_iter *it, int list)
{
    cp_slice name;
    cp_av v;
    uint32_t i = 0;
    int rc;
    while (it && cp_av_iter_next(it, &name, &v)) {
        const cp__tnode *k = list ? cp__tnode_find_index(t, i) : cp__tnode_find(t, name);
        i++;
        if (!k) {
            put_prefix(b, !list, name);
            cp_item_put_av(b, v);
            continue;
        }
        c->seen[k->id] = 1;
        if ((rc = apply_node(c, b, k, &v, !list, name))) {
            return rc;
        }
    }
    /* targets that were not there: new members, or list positions past the end (appended in
     * index order) */
    for (uint32_t j = 0; j < t->nkids; j++) {
        const cp__tnode *k = &t->kids[j];
        if (c->seen[k->id]) {
            continue;
        }
        if (k->seg.is_index != list) {
            return e_path(c);
        }
        if ((rc = apply_node(c, b, k, NULL, !list, k->seg.name))) {
            return rc;
        }
    }
    return CP_OK;
}

/* Nesting depth of a value (scalars 0). */
static int depth_of(cp_av v, int limit)
{
    if (v.type != CP_AV_L && v.type != CP_AV_M) {
        return 0;
    }
    if (limit <= 0) {
        return 1;
    }
    int d = 0;
    cp_av_iter it;
    cp_slice name;
    cp_av x;
    cp_av_iter_init(&it, v);
    while (cp_av_iter_next(&it, &name, &x)) {
        int k = depth_of(x, limit - 1);
        if (k > d) {
            d = k;
        }
    }
    return d + 1;
}

static int too_deep(cp_slice item)
{
    cp_av_iter it;
    cp_slice name;
    cp_av x;
    cp_item_iter_init(&it, item);
    while (cp_av_iter_next(&it, &name, &x)) {
        if (depth_of(x, CP_ITEM_MAX_DEPTH) > CP_ITEM_MAX_DEPTH) {
            return 1;
        }
    }
    return 0;
}

int cp_expr_apply_update(const cp_expr *e, cp_slice old, cp_slice key, cp_buf *out, cp_err *err)
{
    cp_slice base = old.len ? old : key;
    size_t start = out->len;
    if (!e->has_update) {
        if (base.len) {
            cp_buf_append(out, base.p, base.len);
        } else {
            cp_item_builder b;
            cp_item_builder_init(&b, out);
            cp_item_begin(&b);
            cp_item_end(&b);
        }
        return CP_OK;
    }
    if (key.len) {
        cp_av_iter it;
        cp_slice name;
        cp_av v;
        cp_item_iter_init(&it, key);
        while (cp_av_iter_next(&it, &name, &v)) {
            if (cp__tnode_find(e->utree, name)) {
                return cp_err_set(err, CP_EINVAL,
                                  "One or more parameter values were invalid: Cannot update "
                                  "attribute %.*s. This attribute is part of the key",
                                  (int) name.len, name.p);
            }
        }
    }
    uctx c = {.e = e, .base = base, .err = err};
    /* scratch of this call: a value slot per action and a flag per trie node */
    c.refs = cp_calloc(e->nacts + 1, sizeof(uref));
    uint8_t *seen = cp_calloc(e->unodes + 1, 1);
    c.seen = seen;
    int rc = CP_OK, nested_set = 0;
    for (uint32_t i = 0; i < e->nacts && !rc; i++) {
        if (e->acts[i].kind == CP__U_SET) {
            rc = eval_val(&c, e->acts[i].val, &c.refs[i]);
        }
        nested_set |= e->acts[i].path.n > 1;
    }
    if (!rc) {
        cp_item_builder b;
        cp_item_builder_init(&b, out);
        cp_item_begin(&b);
        cp_av_iter it;
        if (base.len) {
            cp_item_iter_init(&it, base);
        }
        rc = rewrite(&c, &b, e->utree, base.len ? &it : NULL, 0);
        cp_item_end(&b);
    }
    if (!rc) {
        cp_slice item = cp_slice_of(out->p + start, out->len - start);
        if (cp_item_size(item) > CP_ITEM_MAX_SIZE) {
            rc = cp_err_set(err, CP_EINVAL,
                            "Item size to update has exceeded the maximum allowed size");
        } else if (nested_set && too_deep(item)) {
            rc = cp_err_set(err, CP_EINVAL, "Nesting Levels have exceeded supported limits");
        }
    }
    cp_free(seen);
    cp_free(c.refs);
    cp_buf_free(&c.scratch);
    cp_buf_free(&c.num);
    return rc;
}
