/* SPDX-License-Identifier: MIT */
/*
 * The item model's binary side: structural checks of stored or untrusted bytes, in-place
 * readers (iterators, lookups, semantic equality, ordering, DynamoDB size accounting) and the
 * builder that writes the encoding described in item.h. Everything the table, expression and
 * CDC layers know about an item's shape goes through here.
 */
#include "table/item.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/mem.h"
#include "table/item_int.h"

static const char *const type_names[] = {
    [CP_AV_S] = "S",       [CP_AV_N] = "N",   [CP_AV_B] = "B",   [CP_AV_BOOL] = "BOOL",
    [CP_AV_NULL] = "NULL", [CP_AV_SS] = "SS", [CP_AV_NS] = "NS", [CP_AV_BS] = "BS",
    [CP_AV_L] = "L",       [CP_AV_M] = "M",
};

const char *cp_av_type_name(cp_av_type t)
{
    return t >= CP_AV_S && t <= CP_AV_M ? type_names[t] : NULL;
}

cp_av_type cp_av_type_from_name(cp_slice name)
{
    for (int t = CP_AV_S; t <= CP_AV_M; t++) {
        if (cp_slice_eq(name, cp_slice_str(type_names[t]))) {
            return (cp_av_type) t;
        }
    }
    return 0;
}

static int is_set(int t)
{
    return t == CP_AV_SS || t == CP_AV_NS || t == CP_AV_BS;
}

static int is_container(int t)
{
    return is_set(t) || t == CP_AV_L || t == CP_AV_M;
}

/* SS -> S, NS -> N, BS -> B. */
static cp_av_type member_type(int set_type)
{
    return (cp_av_type) (set_type - CP_AV_SS + CP_AV_S);
}

/* ------------------------------------------------------------------------------------------ */
/* Structural check                                                                           */
/* ------------------------------------------------------------------------------------------ */

static int check_value(cp_reader *r, int t, int level);

/* A container body at r: u32 body_len, u32 count, count elements filling body_len exactly.
 * `level` is the nesting level of the container itself (the item is 0, its M/L values 1). */
static int check_container(cp_reader *r, int t, int level)
{
    uint32_t len = cp_reader_u32le(r);
    cp_slice body = cp_reader_take(r, len);
    if (r->failed || len < 4) {
        return 0;
    }
    cp_reader sub = cp_reader_of(body);
    uint32_t count = cp_reader_u32le(&sub);
    /* Every element takes at least one byte: bounds the loop on garbage counts. */
    if (count > len - 4 || (is_set(t) && count == 0)) {
        return 0;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (t == CP_AV_M) {
            cp_reader_bytes(&sub);
        }
        if (is_set(t)) {
            if (!check_value(&sub, member_type(t), level)) {
                return 0;
            }
        } else if (!check_value(&sub, cp_reader_u8(&sub), level)) {
            return 0;
        }
        if (sub.failed) {
            return 0;
        }
    }
    return sub.p == sub.end;
}

static int check_value(cp_reader *r, int t, int level)
{
    switch (t) {
    case CP_AV_S:
    case CP_AV_B:
        cp_reader_bytes(r);
        return !r->failed;
    case CP_AV_N: {
        cp_slice s = cp_reader_bytes(r);
        cp_num n;
        return !r->failed && cp_num_from_stored(s, &n) == CP_OK;
    }
    case CP_AV_BOOL: {
        uint8_t v = cp_reader_u8(r);
        return !r->failed && v <= 1;
    }
    case CP_AV_NULL:
        return 1;
    case CP_AV_SS:
    case CP_AV_NS:
    case CP_AV_BS:
        return check_container(r, t, level);
    case CP_AV_L:
    case CP_AV_M:
        return level < CP_ITEM_MAX_DEPTH && check_container(r, t, level + 1);
    default:
        return 0;
    }
}

int cp_item_check(cp_slice item)
{
    cp_reader r = cp_reader_of(item);
    if (!check_container(&r, CP_AV_M, 0) || r.p != r.end) {
        return CP_ECORRUPT;
    }
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Readers                                                                                    */
/* ------------------------------------------------------------------------------------------ */

int cp__item_read_body(cp_reader *r, int t, cp_av *out)
{
    const unsigned char *start = r->p;
    switch (t) {
    case CP_AV_S:
    case CP_AV_N:
    case CP_AV_B:
        cp_reader_bytes(r);
        break;
    case CP_AV_BOOL:
        cp_reader_u8(r);
        break;
    case CP_AV_NULL:
        break;
    case CP_AV_SS:
    case CP_AV_NS:
    case CP_AV_BS:
    case CP_AV_L:
    case CP_AV_M: {
        uint32_t len = cp_reader_u32le(r);
        cp_reader_take(r, len);
        break;
    }
    default:
        r->failed = 1;
    }
    if (r->failed) {
        return 0;
    }
    out->type = (cp_av_type) t;
    out->body = cp_slice_of((const char *) start, (size_t) (r->p - start));
    return 1;
}

cp_slice cp_av_bytes(cp_av v)
{
    if (v.type != CP_AV_S && v.type != CP_AV_N && v.type != CP_AV_B) {
        return cp_slice_of("", 0);
    }
    cp_reader r = cp_reader_of(v.body);
    cp_slice s = cp_reader_bytes(&r);
    return r.failed ? cp_slice_of("", 0) : s;
}

int cp_av_bool(cp_av v)
{
    return v.type == CP_AV_BOOL && v.body.len >= 1 && v.body.p[0] != 0;
}

uint32_t cp_av_count(cp_av v)
{
    if (!is_container(v.type) || v.body.len < 8) {
        return 0;
    }
    return cp_load_u32le(v.body.p + 4);
}

cp_slice cp_av_raw(cp_av v)
{
    return cp_slice_of(v.body.p - 1, v.body.len + 1);
}

static void iter_body(cp_av_iter *it, cp_slice body, cp_av_type elem_type, int named)
{
    it->r = cp_reader_of(body);
    cp_reader_u32le(&it->r);
    it->left = cp_reader_u32le(&it->r);
    if (it->r.failed) {
        it->left = 0;
    }
    it->elem_type = elem_type;
    it->named = named;
}

void cp_item_iter_init(cp_av_iter *it, cp_slice item)
{
    iter_body(it, item, 0, 1);
}

void cp_av_iter_init(cp_av_iter *it, cp_av container)
{
    if (!is_container(container.type)) {
        iter_body(it, cp_slice_of("", 0), 0, 0);
        return;
    }
    iter_body(it, container.body, is_set(container.type) ? member_type(container.type) : 0,
              container.type == CP_AV_M);
}

int cp_av_iter_next(cp_av_iter *it, cp_slice *name, cp_av *out)
{
    if (it->left == 0) {
        return 0;
    }
    cp_slice nm = cp_slice_of("", 0);
    if (it->named) {
        nm = cp_reader_bytes(&it->r);
    }
    int t = it->elem_type ? (int) it->elem_type : cp_reader_u8(&it->r);
    if (it->r.failed || !cp__item_read_body(&it->r, t, out)) {
        it->left = 0;
        return 0;
    }
    it->left--;
    if (name) {
        *name = nm;
    }
    return 1;
}

static int find_in(cp_slice map_body, cp_slice name, cp_av *out)
{
    cp_av_iter it;
    iter_body(&it, map_body, 0, 1);
    cp_slice nm;
    cp_av v;
    while (cp_av_iter_next(&it, &nm, &v)) {
        if (cp_slice_eq(nm, name)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

int cp_item_find(cp_slice item, cp_slice name, cp_av *out)
{
    return find_in(item, name, out);
}

int cp_av_map_find(cp_av map, cp_slice name, cp_av *out)
{
    return map.type == CP_AV_M && find_in(map.body, name, out);
}

int cp_av_list_at(cp_av list, uint32_t index, cp_av *out)
{
    if (list.type != CP_AV_L || index >= cp_av_count(list)) {
        return 0;
    }
    cp_av_iter it;
    cp_av_iter_init(&it, list);
    cp_av v;
    for (uint32_t i = 0; cp_av_iter_next(&it, NULL, &v); i++) {
        if (i == index) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

uint32_t cp_item_count(cp_slice item)
{
    return item.len >= 8 ? cp_load_u32le(item.p + 4) : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Equality and ordering                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Up to this many elements, unordered comparison is a nested loop (no allocation); above it
 * both sides are sorted. */
#define SMALL_N 16

typedef struct ent {
    cp_slice key; /* map: the name; set: the member bytes */
    cp_av v;
} ent;

static int ent_cmp(const void *a, const void *b)
{
    return cp_slice_cmp(((const ent *) a)->key, ((const ent *) b)->key);
}

/* Collect up to n elements; returns how many were read (fewer only on damaged input). */
static uint32_t collect(cp_av_iter *it, ent *e, uint32_t n)
{
    uint32_t i = 0;
    cp_slice nm;
    cp_av v;
    while (i < n && cp_av_iter_next(it, &nm, &v)) {
        e[i].key = it->named ? nm : cp_av_bytes(v);
        e[i].v = v;
        i++;
    }
    return i;
}

/* Unordered comparison of two maps (named) or sets of the same type: same size, and every
 * element of a has an equal partner in b. Neither side holds duplicate keys (maps are deduped
 * on the way in, sets reject duplicates), so inclusion plus equal counts is equality. */
static int unordered_equal(cp_slice a_body, cp_slice b_body, cp_av_type elem_type, int named)
{
    cp_av_iter ia, ib;
    iter_body(&ia, a_body, elem_type, named);
    iter_body(&ib, b_body, elem_type, named);
    uint32_t n = ia.left;
    if (n != ib.left) {
        return 0;
    }
    if (n <= SMALL_N) {
        cp_slice ka;
        cp_av va;
        while (cp_av_iter_next(&ia, &ka, &va)) {
            cp_av_iter jb;
            iter_body(&jb, b_body, elem_type, named);
            cp_slice kb;
            cp_av vb;
            int found = 0;
            while (!found && cp_av_iter_next(&jb, &kb, &vb)) {
                if (named) {
                    found = cp_slice_eq(ka, kb);
                    if (found && !cp_av_equal(va, vb)) {
                        return 0;
                    }
                } else {
                    found = cp_av_equal(va, vb);
                }
            }
            if (!found) {
                return 0;
            }
        }
        return 1;
    }
    /* Counts come from checked bytes, where each element takes at least one byte. */
    if (n > a_body.len || n > b_body.len) {
        return 0;
    }
    ent *ea = cp_malloc(sizeof(ent) * n * 2), *eb = ea + n;
    int eq = collect(&ia, ea, n) == n && collect(&ib, eb, n) == n;
    if (eq) {
        qsort(ea, n, sizeof(ent), ent_cmp);
        qsort(eb, n, sizeof(ent), ent_cmp);
        for (uint32_t i = 0; eq && i < n; i++) {
            eq = cp_slice_eq(ea[i].key, eb[i].key) && (!named || cp_av_equal(ea[i].v, eb[i].v));
        }
    }
    cp_free(ea);
    return eq;
}

static int num_text_cmp(cp_slice a, cp_slice b)
{
    if (cp_slice_eq(a, b)) {
        return 0;
    }
    cp_num x, y;
    if (cp_num_from_stored(a, &x) < 0 || cp_num_from_stored(b, &y) < 0) {
        return cp_slice_cmp(a, b); /* damaged bytes: any consistent order */
    }
    return cp_num_cmp(&x, &y);
}

int cp_av_equal(cp_av a, cp_av b)
{
    if (a.type != b.type) {
        return 0;
    }
    /* The encoding is deterministic, so identical bytes are equal values: the common case when
     * a write leaves an item unchanged. */
    if (cp_slice_eq(a.body, b.body)) {
        return 1;
    }
    switch (a.type) {
    case CP_AV_S:
    case CP_AV_B:
        return 0; /* bytes differ */
    case CP_AV_N:
        return num_text_cmp(cp_av_bytes(a), cp_av_bytes(b)) == 0;
    case CP_AV_BOOL:
        return cp_av_bool(a) == cp_av_bool(b);
    case CP_AV_NULL:
        return 1;
    case CP_AV_SS:
    case CP_AV_NS:
    case CP_AV_BS:
        /* NS members are canonical text, so byte equality is numeric equality. */
        return unordered_equal(a.body, b.body, member_type(a.type), 0);
    case CP_AV_M:
        return unordered_equal(a.body, b.body, 0, 1);
    case CP_AV_L: {
        if (cp_av_count(a) != cp_av_count(b)) {
            return 0;
        }
        cp_av_iter ia, ib;
        cp_av_iter_init(&ia, a);
        cp_av_iter_init(&ib, b);
        cp_av va, vb;
        while (cp_av_iter_next(&ia, NULL, &va)) {
            if (!cp_av_iter_next(&ib, NULL, &vb) || !cp_av_equal(va, vb)) {
                return 0;
            }
        }
        return !cp_av_iter_next(&ib, NULL, &vb);
    }
    default:
        return 0;
    }
}

int cp_item_equal(cp_slice a, cp_slice b)
{
    return cp_slice_eq(a, b) || unordered_equal(a, b, 0, 1);
}

int cp_av_cmp(cp_av a, cp_av b)
{
    if (a.type != b.type) {
        return a.type < b.type ? -1 : 1;
    }
    switch (a.type) {
    case CP_AV_N: {
        int c = num_text_cmp(cp_av_bytes(a), cp_av_bytes(b));
        return c < 0 ? -1 : c > 0;
    }
    case CP_AV_S:
    case CP_AV_B: {
        int c = cp_slice_cmp(cp_av_bytes(a), cp_av_bytes(b));
        return c < 0 ? -1 : c > 0;
    }
    case CP_AV_BOOL:
        return cp_av_bool(a) - cp_av_bool(b);
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Size accounting (wire reference 3.3, dynalite's valSize without "compress")                */
/* ------------------------------------------------------------------------------------------ */

static size_t num_text_size(cp_slice text)
{
    cp_num n;
    return cp_num_from_stored(text, &n) == CP_OK ? cp_num_size(&n) : text.len;
}

size_t cp_av_size(cp_av v)
{
    cp_av_iter it;
    cp_slice name;
    cp_av e;
    size_t size = 0;
    switch (v.type) {
    case CP_AV_S:
    case CP_AV_B:
        return cp_av_bytes(v).len;
    case CP_AV_N:
        return num_text_size(cp_av_bytes(v));
    case CP_AV_BOOL:
    case CP_AV_NULL:
        return 1;
    case CP_AV_SS:
    case CP_AV_BS:
    case CP_AV_NS:
        cp_av_iter_init(&it, v);
        while (cp_av_iter_next(&it, NULL, &e)) {
            size += v.type == CP_AV_NS ? num_text_size(cp_av_bytes(e)) : cp_av_bytes(e).len;
        }
        return size;
    case CP_AV_L:
        /* 3 bytes of list overhead, 1 per element. */
        cp_av_iter_init(&it, v);
        size = 3;
        while (cp_av_iter_next(&it, NULL, &e)) {
            size += 1 + cp_av_size(e);
        }
        return size;
    case CP_AV_M:
        /* 3 bytes of map overhead, 1 per entry, plus names as in an item. */
        cp_av_iter_init(&it, v);
        size = 3;
        while (cp_av_iter_next(&it, &name, &e)) {
            size += 1 + name.len + cp_av_size(e);
        }
        return size;
    default:
        return 0;
    }
}

size_t cp_item_size(cp_slice item)
{
    cp_av_iter it;
    cp_item_iter_init(&it, item);
    cp_slice name;
    cp_av v;
    size_t size = 0;
    while (cp_av_iter_next(&it, &name, &v)) {
        size += name.len + cp_av_size(v);
    }
    return size;
}

/* ------------------------------------------------------------------------------------------ */
/* Builder                                                                                    */
/* ------------------------------------------------------------------------------------------ */

void cp_item_builder_init(cp_item_builder *b, cp_buf *out)
{
    memset(b, 0, sizeof(*b));
    b->out = out;
}

/* Open a container whose header starts here; its length and count are patched on close. */
static void open_header(cp_item_builder *b)
{
    CP_ASSERT(b->depth < CP_ITEM_BUILDER_DEPTH);
    b->hdr[b->depth] = b->out->len;
    b->count[b->depth] = 0;
    b->depth++;
    cp_buf_put_u64le(b->out, 0);
}

void cp_item_begin(cp_item_builder *b)
{
    open_header(b);
}

void cp_item_end(cp_item_builder *b)
{
    CP_ASSERT(b->depth > 0);
    b->depth--;
    size_t hdr = b->hdr[b->depth];
    size_t body_len = b->out->len - hdr - 4;
    CP_ASSERT(body_len <= UINT32_MAX);
    cp_store_u32le(b->out->p + hdr, (uint32_t) body_len);
    cp_store_u32le(b->out->p + hdr + 4, b->count[b->depth]);
}

void cp_item_put_name(cp_item_builder *b, cp_slice name)
{
    cp_buf_put_bytes(b->out, name.p, name.len);
}

void cp_item_put_scalar(cp_item_builder *b, cp_av_type t, cp_slice bytes)
{
    cp__item_note_value(b);
    cp_buf_put_u8(b->out, (uint8_t) t);
    cp_buf_put_bytes(b->out, bytes.p, bytes.len);
}

void cp_item_put_bool(cp_item_builder *b, int v)
{
    cp__item_note_value(b);
    cp_buf_put_u8(b->out, CP_AV_BOOL);
    cp_buf_put_u8(b->out, v ? 1 : 0);
}

void cp_item_put_null(cp_item_builder *b)
{
    cp__item_note_value(b);
    cp_buf_put_u8(b->out, CP_AV_NULL);
}

void cp_item_begin_container(cp_item_builder *b, cp_av_type t)
{
    cp__item_note_value(b);
    cp_buf_put_u8(b->out, (uint8_t) t);
    open_header(b);
}

void cp_item_put_set_member(cp_item_builder *b, cp_slice bytes)
{
    cp__item_note_value(b);
    cp_buf_put_bytes(b->out, bytes.p, bytes.len);
}

void cp_item_put_av(cp_item_builder *b, cp_av v)
{
    /* Written from type + body rather than cp_av_raw so set members (which have no type byte
     * of their own in the encoding) can be copied as standalone S/N/B values too. */
    cp__item_note_value(b);
    cp_buf_put_u8(b->out, (uint8_t) v.type);
    cp_buf_append(b->out, v.body.p, v.body.len);
}

/* ------------------------------------------------------------------------------------------ */
/* Keys                                                                                       */
/* ------------------------------------------------------------------------------------------ */

void cp_av_key_bytes(cp_av v, cp_buf *out)
{
    cp_slice s = cp_av_bytes(v);
    if (v.type == CP_AV_N) {
        cp_num n;
        if (cp_num_from_stored(s, &n) == CP_OK) {
            cp_num_key(&n, out);
        }
        return;
    }
    cp_buf_append(out, s.p, s.len);
}
