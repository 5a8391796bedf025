/* SPDX-License-Identifier: MIT */
/*
 * DynamoDB JSON <-> the binary item encoding. Decoding runs straight off the pull lexer into
 * the builder's buffer (no DOM; BatchWriteItem's hot path), applying every check DynamoDB
 * makes on attribute values. Encoding writes AttributeValue JSON for responses and records.
 *
 * Error precedence follows AWS: a request first fails deserialisation (SerializationException:
 * malformed JSON, a member of the wrong JSON type, bad base64, bad UTF-8), and only then
 * validation (ValidationException). So after a validation failure we remember the first one
 * and keep lexing to the end of the value, where a later shape error still takes precedence.
 */
#include "table/item.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "core/mem.h"
#include "table/item_int.h"

/* ---- Messages (one table, so wording can be corrected against live AWS in one place) ---- */

/* ValidationException; wording as recorded by dynalite unless marked. */
static const char MSG_AV_EMPTY[] =
    "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";
static const char MSG_AV_MANY[] = "Supplied AttributeValue has more than one datatypes set, "
                                  "must contain exactly one of the supported datatypes";
static const char MSG_NULL_FALSE[] = "One or more parameter values were invalid: "
                                     "Null attribute value types must have the value of true";
static const char MSG_SS_EMPTY[] =
    "One or more parameter values were invalid: An string set  may not be empty";
static const char MSG_NS_EMPTY[] =
    "One or more parameter values were invalid: An number set  may not be empty";
static const char MSG_BS_EMPTY[] =
    "One or more parameter values were invalid: Binary sets should not be empty";
/* Null set members: NS/BS as dynalite words them; the SS text is ours (unverified). */
static const char MSG_SS_NULL[] =
    "One or more parameter values were invalid: An string set may not have a null member";
static const char MSG_NS_NULL[] = "The parameter cannot be converted to a numeric value";
static const char MSG_BS_NULL[] =
    "One or more parameter values were invalid: Binary sets may not contain null or empty values";
static const char MSG_DUP_PREFIX[] = "One or more parameter values were invalid: Input collection ";
/* AWS's text for documents nested deeper than 32 levels. */
static const char MSG_NESTING[] = "Nesting Levels have exceeded supported limits";

/* SerializationException (deserialisation of the request shape), dynalite's wording. */
static const char MSG_START_MAP[] = "Start of structure or map found where not expected.";
static const char MSG_START_LIST[] = "Start of list found where not expected";
static const char MSG_BAD_UTF8[] = "Invalid UTF-8 in a string value";    /* ours */
static const char MSG_BAD_ESCAPE[] = "Invalid escape in a string value"; /* ours */

/* The Java shape a JSON value must deserialise into; decides the wrong-type message. */
typedef enum { J_STRING, J_BLOB, J_BOOLEAN, J_LIST, J_MAP, J_STRUCT } jshape;

typedef struct jctx {
    cp_json_lexer *lx;
    cp_item_builder *b;
    cp_err *err;
    int verr;   /* a ValidationException is pending; the first one is in err */
    cp_buf tmp; /* rare paths only: escaped base64/numbers/type names, error text */
} jctx;

/* Up to this many members, duplicate detection is a nested loop; above it, a sort. */
#define SMALL_N 16
/* Element arrays up to this size live on the stack. */
#define STACK_N 32

/* A deserialisation failure: ends parsing at once. */
static int shape(jctx *c, const char *fmt, ...) CP_PRINTF(2, 3);
static int shape(jctx *c, const char *fmt, ...)
{
    char msg[232];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return cp_err_set(c->err, CP_EINVAL, "SerializationException: %s", msg);
}

/* A validation failure: keep the first, carry on lexing (see the file comment). */
static int vfail(jctx *c, const char *fmt, ...) CP_PRINTF(2, 3);
static int vfail(jctx *c, const char *fmt, ...)
{
    if (!c->verr) {
        c->verr = 1;
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        cp_err_set(c->err, CP_EINVAL, "%s", msg);
    }
    return CP_OK;
}

static int next(jctx *c, cp_json_tok *t)
{
    if (cp_json_next(c->lx, t) < 0) {
        return shape(c, "%s", c->lx->error ? c->lx->error : "malformed JSON");
    }
    return CP_OK;
}

static int skip(jctx *c, const cp_json_tok *first)
{
    if (cp_json_skip(c->lx, first) < 0) {
        return shape(c, "%s", c->lx->error ? c->lx->error : "malformed JSON");
    }
    return CP_OK;
}

/* At most n bytes of s, cut back to a UTF-8 boundary, for quoting inputs in messages. */
static int quote_len(cp_slice s, size_t n)
{
    if (s.len <= n) {
        return (int) s.len;
    }
    while (n > 0 && ((unsigned char) s.p[n] & 0xC0) == 0x80) {
        n--;
    }
    return (int) n;
}

/* dynalite's classForNumber: the Java boxed type Jackson would have produced. */
static const char *number_class(jctx *c, cp_slice s, double *val)
{
    cp_buf_reset(&c->tmp);
    cp_buf_append(&c->tmp, s.p, s.len);
    double v = strtod(c->tmp.p, NULL);
    *val = v;
    if (!(fmod(v, 1.0) == 0.0)) {
        return "java.lang.Double";
    }
    if (v >= -32768.0 && v <= 32767.0) {
        return "java.lang.Short";
    }
    if (v >= -2147483648.0 && v <= 2147483647.0) {
        return "java.lang.Integer";
    }
    return "java.lang.Long";
}

/* The SerializationException for a JSON value of the wrong type for `want`. */
static int wrong_type(jctx *c, jshape want, const cp_json_tok *t)
{
    static const char *const article[] = {
        [J_STRING] = "an String", [J_BLOB] = "a Blob", [J_BOOLEAN] = "an Boolean"};
    /* Only called on a mismatch, so a container here is never the wanted one. */
    if (t->type == CP_JSON_OBJ_BEGIN) {
        return shape(c, "%s", MSG_START_MAP);
    }
    if (t->type == CP_JSON_ARR_BEGIN) {
        return shape(c, "%s", MSG_START_LIST);
    }
    switch (want) {
    case J_LIST:
        return shape(c, "Expected list or null");
    case J_MAP:
        return shape(c, "Expected map or null");
    case J_STRUCT:
        return shape(c, "Expected null");
    default:
        break;
    }
    if (t->type == CP_JSON_TRUE || t->type == CP_JSON_FALSE) {
        return shape(c, "class java.lang.Boolean can not be converted to %s", article[want]);
    }
    if (t->type == CP_JSON_NUMBER) {
        double v;
        return shape(c, "class %s can not be converted to %s", number_class(c, t->s, &v),
                     article[want]);
    }
    /* A string where a Boolean belongs; Jackson's message shows it upper-cased. */
    char up[120];
    int n = quote_len(t->s, sizeof(up) - 1);
    for (int i = 0; i < n; i++) {
        char ch = t->s.p[i];
        up[i] = ch >= 'a' && ch <= 'z' ? (char) (ch - 'a' + 'A') : ch;
    }
    return shape(c, "'%.*s' can not be converted to %s", n, up, article[want]);
}

/* ---- Scalars ---- */

static size_t put_varint_at(char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (char) (v | 0x80);
        v >>= 7;
    }
    p[n++] = (char) v;
    return n;
}

/*
 * Append varint length + the decoded string of a STRING/KEY token, checking UTF-8. Escaped
 * strings are decoded in place: reserve the varint for the raw length (the decoded text is
 * never longer), decode after it, then slide the text down if its varint came out shorter.
 */
static int put_str(jctx *c, const cp_json_tok *t)
{
    cp_buf *out = c->b->out;
    if (!t->escaped) {
        if (!cp_utf8_valid(t->s)) {
            return shape(c, "%s", MSG_BAD_UTF8);
        }
        cp_buf_put_bytes(out, t->s.p, t->s.len);
        return CP_OK;
    }
    size_t pos = out->len, vmax = cp__varint_len(t->s.len);
    cp_buf_reserve(out, vmax);
    out->len += vmax;
    size_t data = out->len;
    if (cp_json_unescape(t->s, out) < 0) {
        return shape(c, "%s", MSG_BAD_ESCAPE);
    }
    size_t n = out->len - data;
    if (!cp_utf8_valid(cp_slice_of(out->p + data, n))) {
        return shape(c, "%s", MSG_BAD_UTF8);
    }
    size_t vl = cp__varint_len(n);
    if (vl < vmax) {
        memmove(out->p + pos + vl, out->p + data, n);
    }
    put_varint_at(out->p + pos, n);
    out->len = pos + vl + n;
    out->p[out->len] = 0;
    return CP_OK;
}

/* The unescaped text of a STRING token; escaped ones are decoded into c->tmp. */
static int tok_text(jctx *c, const cp_json_tok *t, cp_slice *s)
{
    if (cp_json_tok_string(t, &c->tmp, s) < 0) {
        return shape(c, "%s", MSG_BAD_ESCAPE);
    }
    return CP_OK;
}

/* An N value (member = 0) or NS member (member = 1), stored as canonical text. */
static int put_num(jctx *c, const cp_json_tok *t, int member)
{
    cp_slice s;
    int rc = tok_text(c, t, &s);
    if (rc < 0) {
        return rc;
    }
    cp_num n;
    cp_err e;
    if (cp_num_parse(s, &n, &e) < 0) {
        return vfail(c, "%s", e.msg);
    }
    char txt[CP_NUM_TEXT_MAX];
    cp_slice canon = cp_slice_of(txt, cp_num_format_to(&n, txt));
    if (member) {
        cp_item_put_set_member(c->b, canon);
    } else {
        cp_item_put_scalar(c->b, CP_AV_N, canon);
    }
    return CP_OK;
}

static int b64_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z') {
        return ch - 'A';
    }
    if (ch >= 'a' && ch <= 'z') {
        return ch - 'a' + 26;
    }
    if (ch >= '0' && ch <= '9') {
        return ch - '0' + 52;
    }
    return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/*
 * A B value or BS member. Base64 problems are deserialisation errors in AWS (the blob never
 * reaches validation), checked in dynalite's order: length, alphabet (with '=' only as a
 * trailing run), then canonical form (unused trailing bits must be zero, at most two '=').
 */
static int put_blob(jctx *c, const cp_json_tok *t, int member)
{
    cp_slice s;
    int rc = tok_text(c, t, &s);
    if (rc < 0) {
        return rc;
    }
    int ql = quote_len(s, 100);
    if (s.len % 4) {
        return shape(c,
                     "'%.*s' can not be converted to a Blob: Base64 encoded length is expected a "
                     "multiple of 4 bytes but found: %zu",
                     ql, s.p, s.len);
    }
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.p[i];
        if ((ch != '=' && b64_value(ch) < 0) || (ch == '=' && i + 1 < s.len && s.p[i + 1] != '=')) {
            return shape(c, "'%.*s' can not be converted to a Blob: Invalid Base64 character: '%c'",
                         ql, s.p, ch);
        }
    }
    size_t pad = 0;
    while (pad < s.len && s.p[s.len - 1 - pad] == '=') {
        pad++;
    }
    int canonical = pad <= 2;
    if (canonical && pad == 1) {
        canonical = (b64_value(s.p[s.len - 2]) & 3) == 0;
    } else if (canonical && pad == 2) {
        canonical = (b64_value(s.p[s.len - 3]) & 15) == 0;
    }
    if (!canonical) {
        /* (sic) "dectected", as AWS spells it. */
        return shape(c,
                     "'%.*s' can not be converted to a Blob: Invalid last non-pad Base64 "
                     "character dectected",
                     ql, s.p);
    }
    cp__item_note_value(c->b);
    if (!member) {
        cp_buf_put_u8(c->b->out, CP_AV_B);
    }
    cp_buf_put_varint(c->b->out, s.len / 4 * 3 - pad);
    if (cp_base64_decode(s, c->b->out) < 0) {
        return shape(c, "'%.*s' can not be converted to a Blob", ql, s.p); /* not reached */
    }
    return CP_OK;
}

/* BOOL and NULL take a Java Boolean: true/false, and (dynalite) a fractional number counts as
 * true when its magnitude is at least 1. */
static int to_bool(jctx *c, const cp_json_tok *t, int *out)
{
    if (t->type == CP_JSON_TRUE || t->type == CP_JSON_FALSE) {
        *out = t->type == CP_JSON_TRUE;
        return CP_OK;
    }
    if (t->type == CP_JSON_NUMBER) {
        double v;
        const char *cls = number_class(c, t->s, &v);
        if (strcmp(cls, "java.lang.Double") == 0) {
            *out = fabs(v) >= 1.0;
            return CP_OK;
        }
    }
    return wrong_type(c, J_BOOLEAN, t);
}

/* ---- Containers ---- */

static int parse_av_tok(jctx *c, const cp_json_tok *t, int level);

typedef struct elem {
    cp_slice key;      /* member bytes (sets) or name (maps); points into the output buffer */
    size_t start, end; /* map entries: byte range of name + value in the output buffer */
    size_t pos;        /* original position */
    int drop;
} elem;

static int elem_cmp(const void *a, const void *b)
{
    const elem *x = a, *y = b;
    int c = cp_slice_cmp(x->key, y->key);
    if (c) {
        return c;
    }
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int elem_pos_cmp(const void *a, const void *b)
{
    const elem *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Read the elements of the innermost open container (a set, or a map/item when named) back
 * from the output buffer. Returns the array (stack or heap) and sets *n. */
static elem *read_elems(jctx *c, int named, elem *stackbuf, uint32_t *n)
{
    cp_item_builder *b = c->b;
    size_t hdr = b->hdr[b->depth - 1];
    uint32_t count = b->count[b->depth - 1];
    elem *e = count <= STACK_N ? stackbuf : cp_malloc(sizeof(elem) * count);
    cp_reader r = cp_reader_of(cp_slice_of(b->out->p + hdr + 8, b->out->len - hdr - 8));
    uint32_t i = 0;
    for (; i < count; i++) {
        size_t start = (size_t) ((const char *) r.p - b->out->p);
        cp_slice key = cp_reader_bytes(&r);
        if (named) {
            cp_av v;
            int t = cp_reader_u8(&r);
            if (r.failed || !cp__item_read_body(&r, t, &v)) {
                break;
            }
        }
        if (r.failed) {
            break;
        }
        e[i] = (elem){key, start, (size_t) ((const char *) r.p - b->out->p), i, 0};
    }
    *n = i;
    return e;
}

/* Marks all but the last of each run of equal keys; returns how many were marked. Leaves the
 * array in original order. */
static uint32_t mark_dups(elem *e, uint32_t n)
{
    uint32_t dropped = 0;
    if (n <= SMALL_N) {
        for (uint32_t i = 0; i < n; i++) {
            for (uint32_t j = i + 1; j < n && !e[i].drop; j++) {
                if (cp_slice_eq(e[i].key, e[j].key)) {
                    e[i].drop = 1;
                    dropped++;
                }
            }
        }
        return dropped;
    }
    qsort(e, n, sizeof(elem), elem_cmp);
    for (uint32_t i = 0; i + 1 < n; i++) {
        if (cp_slice_eq(e[i].key, e[i + 1].key)) {
            e[i].drop = 1;
            dropped++;
        }
    }
    qsort(e, n, sizeof(elem), elem_pos_cmp);
    return dropped;
}

/*
 * JSON objects may repeat a name; Jackson (AWS's parser) keeps the last value, and so do we:
 * earlier entries are squeezed out of the open map before its header is patched. Nothing
 * after this map is in the buffer yet, so moving bytes down is safe.
 */
static void dedupe_names(jctx *c)
{
    cp_item_builder *b = c->b;
    if (b->count[b->depth - 1] < 2) {
        return;
    }
    elem stackbuf[STACK_N];
    uint32_t n;
    elem *e = read_elems(c, 1, stackbuf, &n);
    /* n < count only if the buffer were damaged; then leave it alone rather than cut it. */
    uint32_t dropped = n == b->count[b->depth - 1] ? mark_dups(e, n) : 0;
    if (dropped) {
        uint32_t i = 0;
        while (!e[i].drop) {
            i++;
        }
        size_t w = e[i].start;
        for (; i < n; i++) {
            if (!e[i].drop) {
                size_t len = e[i].end - e[i].start;
                memmove(b->out->p + w, b->out->p + e[i].start, len);
                w += len;
            }
        }
        b->out->len = w;
        b->out->p[w] = 0;
        b->count[b->depth - 1] -= dropped;
    }
    if (e != stackbuf) {
        cp_free(e);
    }
}

/* Duplicate members make the whole set invalid. NS members are canonical text by now, so
 * "1" and "1.0" collide as DynamoDB says they should. */
static void check_set_dups(jctx *c, cp_av_type type)
{
    elem stackbuf[STACK_N];
    uint32_t n;
    elem *e = read_elems(c, 0, stackbuf, &n);
    if (mark_dups(e, n)) {
        /* "[a, b, a]" in input order; BS members shown as base64 (dynalite's valueStr). */
        cp_buf *m = &c->tmp;
        cp_buf_reset(m);
        cp_buf_putc(m, '[');
        for (uint32_t i = 0; i < n && m->len < 150; i++) {
            if (i) {
                cp_buf_puts(m, ", ");
            }
            if (type == CP_AV_BS) {
                cp_base64_encode(e[i].key, m);
            } else {
                cp_buf_append(m, e[i].key.p, e[i].key.len);
            }
        }
        if (m->len >= 150) {
            m->len = (size_t) quote_len(cp_buf_slice(m), 150);
            cp_buf_puts(m, "...");
        }
        cp_buf_putc(m, ']');
        vfail(c, "%s%s%s", MSG_DUP_PREFIX, m->p,
              type == CP_AV_BS ? "of type BS contains duplicates." : " contains duplicates.");
    }
    if (e != stackbuf) {
        cp_free(e);
    }
}

static int parse_set(jctx *c, cp_av_type type, const cp_json_tok *t)
{
    if (t->type != CP_JSON_ARR_BEGIN) {
        return wrong_type(c, J_LIST, t);
    }
    cp_item_begin_container(c->b, type);
    for (;;) {
        cp_json_tok m;
        int rc = next(c, &m);
        if (rc < 0) {
            return rc;
        }
        if (m.type == CP_JSON_ARR_END) {
            break;
        }
        if (m.type == CP_JSON_NULL) {
            vfail(c, "%s",
                  type == CP_AV_SS   ? MSG_SS_NULL
                  : type == CP_AV_NS ? MSG_NS_NULL
                                     : MSG_BS_NULL);
            continue;
        }
        if (m.type != CP_JSON_STRING) {
            return wrong_type(c, type == CP_AV_BS ? J_BLOB : J_STRING, &m);
        }
        if (type == CP_AV_SS) {
            cp__item_note_value(c->b);
            rc = put_str(c, &m);
        } else if (type == CP_AV_NS) {
            rc = put_num(c, &m, 1);
        } else {
            rc = put_blob(c, &m, 1);
        }
        if (rc < 0) {
            return rc;
        }
    }
    if (c->b->count[c->b->depth - 1] == 0) {
        vfail(c, "%s",
              type == CP_AV_SS   ? MSG_SS_EMPTY
              : type == CP_AV_NS ? MSG_NS_EMPTY
                                 : MSG_BS_EMPTY);
    } else if (!c->verr) {
        /* After a validation failure the buffer may hold partial values: don't read it. */
        check_set_dups(c, type);
    }
    cp_item_end(c->b);
    return CP_OK;
}

/* Entries of a map or item up to its '}': name, then an AttributeValue at `level`. */
static int parse_entries(jctx *c, int level)
{
    for (;;) {
        cp_json_tok k, v;
        int rc = next(c, &k);
        if (rc < 0) {
            return rc;
        }
        if (k.type == CP_JSON_OBJ_END) {
            break;
        }
        if ((rc = put_str(c, &k)) < 0 || (rc = next(c, &v)) < 0 ||
            (rc = parse_av_tok(c, &v, level)) < 0) {
            return rc;
        }
    }
    if (!c->verr) {
        dedupe_names(c);
    }
    return CP_OK;
}

/* An L or M at nesting `level` (1 for a top-level attribute's value). */
static int parse_doc(jctx *c, cp_av_type type, const cp_json_tok *t, int level)
{
    int is_list = type == CP_AV_L;
    if (t->type != (is_list ? CP_JSON_ARR_BEGIN : CP_JSON_OBJ_BEGIN)) {
        return wrong_type(c, is_list ? J_LIST : J_MAP, t);
    }
    if (level > CP_ITEM_MAX_DEPTH) {
        vfail(c, "%s", MSG_NESTING);
        return skip(c, t);
    }
    cp_item_begin_container(c->b, type);
    int rc = CP_OK;
    if (is_list) {
        for (;;) {
            cp_json_tok e;
            if ((rc = next(c, &e)) < 0) {
                return rc;
            }
            if (e.type == CP_JSON_ARR_END) {
                break;
            }
            if ((rc = parse_av_tok(c, &e, level + 1)) < 0) {
                return rc;
            }
        }
    } else if ((rc = parse_entries(c, level + 1)) < 0) {
        return rc;
    }
    cp_item_end(c->b);
    return CP_OK;
}

/* The value of descriptor `type` (token t already read). */
static int parse_typed(jctx *c, cp_av_type type, const cp_json_tok *t, int level)
{
    int v;
    int rc;
    switch (type) {
    case CP_AV_S:
        if (t->type != CP_JSON_STRING) {
            return wrong_type(c, J_STRING, t);
        }
        cp__item_note_value(c->b);
        cp_buf_put_u8(c->b->out, CP_AV_S);
        return put_str(c, t);
    case CP_AV_N:
        return t->type == CP_JSON_STRING ? put_num(c, t, 0) : wrong_type(c, J_STRING, t);
    case CP_AV_B:
        return t->type == CP_JSON_STRING ? put_blob(c, t, 0) : wrong_type(c, J_BLOB, t);
    case CP_AV_BOOL:
        if ((rc = to_bool(c, t, &v)) < 0) {
            return rc;
        }
        cp_item_put_bool(c->b, v);
        return CP_OK;
    case CP_AV_NULL:
        if ((rc = to_bool(c, t, &v)) < 0) {
            return rc;
        }
        if (!v) {
            vfail(c, "%s", MSG_NULL_FALSE);
        }
        cp_item_put_null(c->b);
        return CP_OK;
    case CP_AV_SS:
    case CP_AV_NS:
    case CP_AV_BS:
        return parse_set(c, type, t);
    case CP_AV_L:
    case CP_AV_M:
        return parse_doc(c, type, t, level);
    default:
        return shape(c, "unknown type");
    }
}

static cp_av_type key_type(jctx *c, const cp_json_tok *k)
{
    if (!k->escaped) {
        return cp_av_type_from_name(k->s);
    }
    cp_slice s;
    return cp_json_tok_string(k, &c->tmp, &s) < 0 ? 0 : cp_av_type_from_name(s);
}

/*
 * One AttributeValue object. Members are handled as AWS's deserialiser does: unknown names
 * are ignored, a null member counts as absent, and a repeated descriptor keeps its last value.
 * Then exactly one descriptor must remain.
 */
static int parse_av_tok(jctx *c, const cp_json_tok *t, int level)
{
    if (t->type == CP_JSON_NULL) {
        return vfail(c, "%s", MSG_AV_EMPTY);
    }
    if (t->type != CP_JSON_OBJ_BEGIN) {
        return wrong_type(c, J_STRUCT, t);
    }
    cp_item_builder *b = c->b;
    size_t start = b->out->len;
    uint32_t saved = b->depth ? b->count[b->depth - 1] : 0;
    int ntypes = 0;
    cp_av_type seen = 0;
    for (;;) {
        cp_json_tok k, v;
        int rc = next(c, &k);
        if (rc < 0) {
            return rc;
        }
        if (k.type == CP_JSON_OBJ_END) {
            break;
        }
        cp_av_type type = key_type(c, &k);
        if ((rc = next(c, &v)) < 0) {
            return rc;
        }
        if (!type) {
            if ((rc = skip(c, &v)) < 0) {
                return rc;
            }
            continue;
        }
        if (v.type == CP_JSON_NULL) {
            continue;
        }
        if (ntypes == 1 && type == seen) {
            b->out->len = start;
            if (b->out->p) { /* NULL if the first value failed before writing anything */
                b->out->p[start] = 0;
            }
            if (b->depth) {
                b->count[b->depth - 1] = saved;
            }
            ntypes = 0;
        }
        ntypes++;
        seen = type;
        if ((rc = parse_typed(c, type, &v, level)) < 0) {
            return rc;
        }
    }
    if (ntypes == 0) {
        return vfail(c, "%s", MSG_AV_EMPTY);
    }
    if (ntypes > 1) {
        return vfail(c, "%s", MSG_AV_MANY);
    }
    return CP_OK;
}

/* Entry points share the bookkeeping: on any failure the builder and its buffer are put back
 * as they were, so a caller can report the error and keep using b. */
typedef struct saved_builder {
    size_t len;
    int depth;
    uint32_t count;
} saved_builder;

static saved_builder save(const cp_item_builder *b)
{
    return (saved_builder){b->out->len, b->depth, b->depth ? b->count[b->depth - 1] : 0};
}

static int finish(jctx *c, const saved_builder *s, int rc)
{
    if (rc == CP_OK && c->verr) {
        rc = CP_EINVAL;
    }
    if (rc < 0) {
        cp_item_builder *b = c->b;
        b->out->len = s->len;
        if (b->out->p) {
            b->out->p[s->len] = 0;
        }
        b->depth = s->depth;
        if (b->depth) {
            b->count[b->depth - 1] = s->count;
        }
    }
    cp_buf_free(&c->tmp);
    return rc;
}

int cp_item_from_json(cp_json_lexer *lx, cp_item_builder *b, cp_err *err)
{
    jctx c = {lx, b, err, 0, CP_BUF_INIT};
    saved_builder s = save(b);
    cp_json_tok t;
    int rc = next(&c, &t);
    if (rc == CP_OK && t.type == CP_JSON_NULL) {
        return finish(&c, &s, CP_ENOTFOUND);
    }
    if (rc == CP_OK && t.type != CP_JSON_OBJ_BEGIN) {
        rc = wrong_type(&c, J_MAP, &t);
    }
    if (rc == CP_OK) {
        cp_item_begin(b);
        rc = parse_entries(&c, 1);
        if (rc == CP_OK) {
            cp_item_end(b);
        }
    }
    return finish(&c, &s, rc);
}

int cp_av_from_json(cp_json_lexer *lx, cp_item_builder *b, cp_err *err)
{
    jctx c = {lx, b, err, 0, CP_BUF_INIT};
    saved_builder s = save(b);
    cp_json_tok t;
    int rc = next(&c, &t);
    if (rc == CP_OK) {
        rc = parse_av_tok(&c, &t, 1);
    }
    return finish(&c, &s, rc);
}

/* ---- Binary -> JSON ---- */

static void map_to_json(cp_slice body, cp_buf *out)
{
    cp_av_iter it;
    cp_item_iter_init(&it, body);
    cp_slice name;
    cp_av v;
    cp_buf_putc(out, '{');
    for (int first = 1; cp_av_iter_next(&it, &name, &v); first = 0) {
        if (!first) {
            cp_buf_putc(out, ',');
        }
        cp_json_put_str(out, name);
        cp_buf_putc(out, ':');
        cp_av_to_json(v, out);
    }
    cp_buf_putc(out, '}');
}

/* One S/N/B scalar as a JSON string: N is canonical text (no escaping needed), B base64. */
static void scalar_to_json(cp_av_type t, cp_slice bytes, cp_buf *out)
{
    if (t == CP_AV_S) {
        cp_json_put_str(out, bytes);
        return;
    }
    cp_buf_putc(out, '"');
    if (t == CP_AV_B) {
        cp_base64_encode(bytes, out);
    } else {
        cp_buf_append(out, bytes.p, bytes.len);
    }
    cp_buf_putc(out, '"');
}

void cp_item_to_json(cp_slice item, cp_buf *out)
{
    map_to_json(item, out);
}

void cp_av_to_json(cp_av v, cp_buf *out)
{
    const char *name = cp_av_type_name(v.type);
    if (!name) {
        cp_buf_puts(out, "{}");
        return;
    }
    cp_buf_putc(out, '{');
    cp_json_put_key(out, name);
    cp_av_iter it;
    cp_av e;
    switch (v.type) {
    case CP_AV_S:
    case CP_AV_N:
    case CP_AV_B:
        scalar_to_json(v.type, cp_av_bytes(v), out);
        break;
    case CP_AV_BOOL:
        cp_buf_puts(out, cp_av_bool(v) ? "true" : "false");
        break;
    case CP_AV_NULL:
        cp_buf_puts(out, "true");
        break;
    case CP_AV_SS:
    case CP_AV_NS:
    case CP_AV_BS:
    case CP_AV_L:
        cp_av_iter_init(&it, v);
        cp_buf_putc(out, '[');
        for (int first = 1; cp_av_iter_next(&it, NULL, &e); first = 0) {
            if (!first) {
                cp_buf_putc(out, ',');
            }
            if (v.type == CP_AV_L) {
                cp_av_to_json(e, out);
            } else {
                scalar_to_json(e.type, cp_av_bytes(e), out);
            }
        }
        cp_buf_putc(out, ']');
        break;
    case CP_AV_M:
        map_to_json(v.body, out);
        break;
    default:
        break;
    }
    cp_buf_putc(out, '}');
}
