/* SPDX-License-Identifier: MIT */
/*
 * DynamoDBChangeRecord: changepipe's native processor (an extension; AWS has no such Type).
 * It does in-process what the article's Lambda does to each DynamoDB change record that a
 * Kinesis streaming destination carries, so the hot path (25,000 records/s in the article's
 * load test) needs no function invocation:
 *
 *   input   {"eventName":"INSERT", ..., "dynamodb":{"ApproximateCreationDateTime":1767225600123,
 *            "Keys":{...},"NewImage":{"LivestreamID":{"S":"live-7"},"UID":{"N":"1700000000001"},
 *            "Text":{"S":"hi"}},...}, ...}
 *   output  {"LivestreamID":"live-7","UID":1700000000001,"Text":"hi"}\n
 *           plus the partition key LivestreamID=live-7 (as Lambda's metadata.partitionKeys)
 *
 * Image: NewImage for INSERT and MODIFY; for REMOVE the OldImage, or Keys when the stream
 * carries no old image. INSERT/MODIFY without a NewImage fall back to Keys as well.
 * Flattening: S -> string, N -> the number text exactly as the record holds it (never through a
 * double), B -> its base64 string, BOOL -> true/false, NULL -> null, SS/BS -> arrays of strings,
 * NS -> array of numbers, L -> array, M -> object. Members keep the record's order; string and
 * member-name bytes are copied as written (escapes included), so the output is valid JSON
 * whenever the input is.
 *
 * Parameters (all optional):
 *   PartitionKeyAttributes  comma list of top-level attributes; each S or N value becomes a
 *                           partition key of that name (read with partitionKeyFromLambda). A
 *                           missing, empty or non-scalar attribute sets no key, so a prefix
 *                           that needs it sends the record to partitioning-failed.
 *   IncludeEventName        true: append "eventName":"INSERT|MODIFY|REMOVE"       (false)
 *   IncludeApproximateCreationDateTime
 *                           true: append "ApproximateCreationDateTime":<its number> (false)
 *   AppendNewline           true: end each record with "\n" for Athena's JSON SerDe  (true)
 * The appended event fields come after the attributes and are left out when the image has an
 * attribute of the same name (the attribute wins, so no member name is ever duplicated).
 *
 * A record that is not such a change record fails with processing-failed,
 * Native.InvalidChangeRecord. examples/lambda/ is the same transform as a Lambda function;
 * tests hold the two to the same bytes.
 */
#include "delivery/processor.h"

#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "delivery/processors/processors_int.h"

static const char *const CODE_INVALID = "Native.InvalidChangeRecord";

typedef struct native_ctx {
    int include_event_name;
    int include_creation_time;
    int append_newline;
    size_t nkeys;
    char *keys[CP_PKEY_MAX]; /* PartitionKeyAttributes */
} native_ctx;

static void native_destroy(void *vctx)
{
    native_ctx *ctx = vctx;
    if (!ctx) {
        return;
    }
    for (size_t i = 0; i < ctx->nkeys; i++) {
        cp_free(ctx->keys[i]);
    }
    cp_free(ctx);
}

static int parse_key_list(native_ctx *ctx, const char *list, cp_err *err)
{
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *s = p, *e = end;
        while (s < e && (*s == ' ' || *s == '\t')) {
            s++;
        }
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        if (e > s) {
            if (ctx->nkeys == CP_PKEY_MAX) {
                return cp_err_set(err, CP_EINVAL,
                                  "PartitionKeyAttributes names more than %d attributes.",
                                  CP_PKEY_MAX);
            }
            ctx->keys[ctx->nkeys++] = cp_strndup(s, (size_t) (e - s));
        }
        p = comma ? comma + 1 : end;
    }
    return CP_OK;
}

static int native_init(const cp_processor_param *params, size_t nparams,
                       const cp_processor_env *env, void **out, cp_err *err)
{
    static const char *const allowed[] = {"PartitionKeyAttributes", "IncludeEventName",
                                          "IncludeApproximateCreationDateTime", "AppendNewline",
                                          NULL};
    (void) env;
    int rc = cp__proc_check_params(params, nparams, "DynamoDBChangeRecord", allowed, err);
    if (rc < 0) {
        return rc;
    }
    native_ctx *ctx = cp_calloc(1, sizeof(*ctx));
    static const struct {
        const char *name;
        int def;
        size_t off;
    } bools[] = {
        {"IncludeEventName", 0, offsetof(native_ctx, include_event_name)},
        {"IncludeApproximateCreationDateTime", 0, offsetof(native_ctx, include_creation_time)},
        {"AppendNewline", 1, offsetof(native_ctx, append_newline)},
    };
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        int *field = (int *) (void *) ((char *) ctx + bools[i].off);
        if (cp__proc_bool(cp__proc_param(params, nparams, bools[i].name), bools[i].def, field) <
            0) {
            native_destroy(ctx);
            return cp_err_set(err, CP_EINVAL, "%s must be true or false.", bools[i].name);
        }
    }
    const char *keys = cp__proc_param(params, nparams, "PartitionKeyAttributes");
    if (keys && (rc = parse_key_list(ctx, keys, err)) < 0) {
        native_destroy(ctx);
        return rc;
    }
    *out = ctx;
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Flattening                                                                                  */

/* The JSON number grammar (RFC 8259). N text that is not a JSON number cannot be copied into
 * JSON output as is, and converting it would change the text, so the record fails instead. */
static int json_number(cp_slice s)
{
    const char *p = s.p, *e = s.p + s.len;
    if (p < e && *p == '-') {
        p++;
    }
    if (p >= e) {
        return 0;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    } else {
        return 0;
    }
    if (p < e && *p == '.') {
        if (++p >= e || *p < '0' || *p > '9') {
            return 0;
        }
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= e || *p < '0' || *p > '9') {
            return 0;
        }
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    return p == e;
}

static void put_quoted_raw(cp_buf *out, cp_slice raw)
{
    cp_buf_reserve(out, raw.len + 2);
    out->p[out->len++] = '"';
    memcpy(out->p + out->len, raw.p, raw.len);
    out->len += raw.len;
    out->p[out->len++] = '"';
    out->p[out->len] = 0;
}

typedef struct flat {
    cp_json_lexer lx;
    cp_buf *out;
    const char *why; /* first shape error */
    /* Top-level S/N value of the attribute being flattened (for partition keys). */
    cp_json_tok scalar;
    int scalar_set;
} flat;

static int bad(flat *f, const char *why)
{
    if (!f->why) {
        f->why = why;
    }
    return CP_EINVAL;
}

static int next(flat *f, cp_json_tok *t)
{
    if (cp_json_next(&f->lx, t) < 0) {
        return bad(f, "The record is not valid JSON");
    }
    return CP_OK;
}

/* A string set / number set element list, after its '['. */
static int flatten_set(flat *f, int numbers)
{
    cp_json_tok t;
    int first = 1;
    cp_buf_putc(f->out, '[');
    for (;;) {
        if (next(f, &t) < 0) {
            return CP_EINVAL;
        }
        if (t.type == CP_JSON_ARR_END) {
            break;
        }
        if (t.type != CP_JSON_STRING) {
            return bad(f, "A set element is not a string");
        }
        if (!first) {
            cp_buf_putc(f->out, ',');
        }
        first = 0;
        if (numbers) {
            if (t.escaped || !json_number(t.s)) {
                return bad(f, "An N value is not a number");
            }
            cp_buf_append(f->out, t.s.p, t.s.len);
        } else {
            put_quoted_raw(f->out, t.s);
        }
    }
    cp_buf_putc(f->out, ']');
    return CP_OK;
}

static int flatten_value(flat *f, const cp_json_tok *first, int top);

/* Members of a map (an image or an M value) after its '{': "name":<flattened>, ... */
static int flatten_members(flat *f, int top, void (*on_key)(void *, const cp_json_tok *), void *arg)
{
    cp_json_tok t, v;
    int first = 1;
    cp_buf_putc(f->out, '{');
    for (;;) {
        if (next(f, &t) < 0) {
            return CP_EINVAL;
        }
        if (t.type == CP_JSON_OBJ_END) {
            break;
        }
        /* Inside an object the lexer only yields member names or the closer. */
        if (!first) {
            cp_buf_putc(f->out, ',');
        }
        first = 0;
        put_quoted_raw(f->out, t.s);
        cp_buf_putc(f->out, ':');
        if (next(f, &v) < 0) {
            return CP_EINVAL;
        }
        f->scalar_set = 0;
        if (flatten_value(f, &v, top) < 0) {
            return CP_EINVAL;
        }
        if (on_key) {
            on_key(arg, &t);
        }
    }
    cp_buf_putc(f->out, '}');
    return CP_OK;
}

/* One typed attribute value {"<type>": <value>} whose '{' is `first`. */
static int flatten_value(flat *f, const cp_json_tok *first, int top)
{
    cp_json_tok t, v;
    if (first->type != CP_JSON_OBJ_BEGIN) {
        return bad(f, "An attribute value is not a typed value object");
    }
    if (next(f, &t) < 0) {
        return CP_EINVAL;
    }
    if (t.type != CP_JSON_KEY || t.escaped || t.s.len == 0 || t.s.len > 4) {
        return bad(f, "An attribute value has no valid type descriptor");
    }
    if (next(f, &v) < 0) {
        return CP_EINVAL;
    }
    char ty[5] = {0};
    memcpy(ty, t.s.p, t.s.len);
    if (strcmp(ty, "S") == 0 || strcmp(ty, "B") == 0) {
        if (v.type != CP_JSON_STRING) {
            return bad(f, "An S or B value is not a string");
        }
        put_quoted_raw(f->out, v.s);
        if (top && ty[0] == 'S') {
            f->scalar = v;
            f->scalar_set = 1;
        }
    } else if (strcmp(ty, "N") == 0) {
        if (v.type != CP_JSON_STRING || v.escaped || !json_number(v.s)) {
            return bad(f, "An N value is not a number");
        }
        cp_buf_append(f->out, v.s.p, v.s.len);
        if (top) {
            f->scalar = v;
            f->scalar_set = 1;
        }
    } else if (strcmp(ty, "BOOL") == 0) {
        if (v.type != CP_JSON_TRUE && v.type != CP_JSON_FALSE) {
            return bad(f, "A BOOL value is not true or false");
        }
        cp_buf_puts(f->out, v.type == CP_JSON_TRUE ? "true" : "false");
    } else if (strcmp(ty, "NULL") == 0) {
        if (v.type != CP_JSON_TRUE) {
            return bad(f, "A NULL value is not true");
        }
        cp_buf_puts(f->out, "null");
    } else if (strcmp(ty, "SS") == 0 || strcmp(ty, "NS") == 0 || strcmp(ty, "BS") == 0) {
        if (v.type != CP_JSON_ARR_BEGIN) {
            return bad(f, "A set value is not an array");
        }
        if (flatten_set(f, ty[0] == 'N') < 0) {
            return CP_EINVAL;
        }
    } else if (strcmp(ty, "L") == 0) {
        if (v.type != CP_JSON_ARR_BEGIN) {
            return bad(f, "An L value is not an array");
        }
        cp_buf_putc(f->out, '[');
        for (int n = 0;; n++) {
            cp_json_tok e;
            if (next(f, &e) < 0) {
                return CP_EINVAL;
            }
            if (e.type == CP_JSON_ARR_END) {
                break;
            }
            if (n) {
                cp_buf_putc(f->out, ',');
            }
            if (flatten_value(f, &e, 0) < 0) {
                return CP_EINVAL;
            }
        }
        cp_buf_putc(f->out, ']');
    } else if (strcmp(ty, "M") == 0) {
        if (v.type != CP_JSON_OBJ_BEGIN) {
            return bad(f, "An M value is not an object");
        }
        if (flatten_members(f, 0, NULL, NULL) < 0) {
            return CP_EINVAL;
        }
    } else {
        return bad(f, "An attribute value has an unknown type descriptor");
    }
    if (next(f, &t) < 0) {
        return CP_EINVAL;
    }
    if (t.type != CP_JSON_OBJ_END) {
        return bad(f, "An attribute value has more than one type descriptor");
    }
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* One change record                                                                           */

typedef struct change {
    cp_json_tok event_name;              /* STRING, or type END when absent */
    cp_slice new_image, old_image, keys; /* raw object text; p NULL when absent */
    cp_slice creation_time;              /* number text; p NULL when absent */
} change;

/* The raw text of the object whose '{' was just returned: from that brace to its closer. */
static int object_text(cp_json_lexer *lx, const cp_json_tok *open, cp_slice *out)
{
    const char *start = lx->p - 1;
    if (cp_json_skip(lx, open) < 0) {
        return CP_EINVAL;
    }
    *out = (cp_slice){start, (size_t) (lx->p - start)};
    return CP_OK;
}

/* A KEY/STRING token equals s after unescaping (a generic JSON reader, such as the one a Lambda
 * function uses, would see "event\u004eame" as eventName too). */
static int tok_eq(const cp_json_tok *t, const char *s)
{
    if (!t->escaped) {
        return cp_json_tok_is(t, s);
    }
    cp_buf b = CP_BUF_INIT;
    int eq = cp_json_unescape(t->s, &b) == CP_OK && cp_slice_eq(cp_buf_slice(&b), cp_slice_str(s));
    cp_buf_free(&b);
    return eq;
}

/* Pick out the members we need in one pass; everything else is validated and skipped. When a
 * member repeats, the last one counts, as in any JSON object reader. */
static int scan_change(cp_slice in, change *c, const char **why)
{
    cp_json_lexer lx;
    cp_json_tok t, v;
    int ddb_bad = 0, img_bad[3] = {0, 0, 0};
    memset(c, 0, sizeof(*c));
    cp_json_lexer_init(&lx, in);
    if (cp_json_next(&lx, &t) < 0 || t.type != CP_JSON_OBJ_BEGIN) {
        *why = "The record is not a JSON object";
        return CP_EINVAL;
    }
    for (;;) {
        if (cp_json_next(&lx, &t) < 0) {
            goto invalid;
        }
        if (t.type == CP_JSON_OBJ_END) {
            break;
        }
        if (cp_json_next(&lx, &v) < 0) {
            goto invalid;
        }
        if (tok_eq(&t, "eventName")) {
            c->event_name = v; /* checked for STRING once the last one is known */
            if (cp_json_skip(&lx, &v) < 0) {
                goto invalid;
            }
            continue;
        }
        if (!tok_eq(&t, "dynamodb")) {
            if (cp_json_skip(&lx, &v) < 0) {
                goto invalid;
            }
            continue;
        }
        /* A later "dynamodb" replaces an earlier one entirely. */
        c->new_image = c->old_image = c->keys = c->creation_time = (cp_slice){0};
        img_bad[0] = img_bad[1] = img_bad[2] = 0;
        ddb_bad = v.type != CP_JSON_OBJ_BEGIN;
        if (ddb_bad) {
            if (cp_json_skip(&lx, &v) < 0) {
                goto invalid;
            }
            continue;
        }
        for (;;) {
            cp_json_tok k, w;
            if (cp_json_next(&lx, &k) < 0) {
                goto invalid;
            }
            if (k.type == CP_JSON_OBJ_END) {
                break;
            }
            if (cp_json_next(&lx, &w) < 0) {
                goto invalid;
            }
            int which = tok_eq(&k, "NewImage")   ? 0
                        : tok_eq(&k, "OldImage") ? 1
                        : tok_eq(&k, "Keys")     ? 2
                                                 : -1;
            cp_slice *img = which == 0   ? &c->new_image
                            : which == 1 ? &c->old_image
                            : which == 2 ? &c->keys
                                         : NULL;
            if (img) {
                *img = (cp_slice){0};
                img_bad[which] = w.type != CP_JSON_OBJ_BEGIN && w.type != CP_JSON_NULL;
                if (w.type == CP_JSON_OBJ_BEGIN) {
                    if (object_text(&lx, &w, img) < 0) {
                        goto invalid;
                    }
                    continue;
                }
            } else if (tok_eq(&k, "ApproximateCreationDateTime")) {
                c->creation_time = w.type == CP_JSON_NUMBER ? w.s : (cp_slice){0};
            }
            if (cp_json_skip(&lx, &w) < 0) {
                goto invalid;
            }
        }
    }
    if (cp_json_next(&lx, &t) < 0) {
        goto invalid;
    }
    if (ddb_bad) {
        *why = "dynamodb is not an object";
        return CP_EINVAL;
    }
    if (img_bad[0] || img_bad[1] || img_bad[2]) {
        *why = "An image in the dynamodb object is not an object";
        return CP_EINVAL;
    }
    return CP_OK;
invalid:
    *why = "The record is not valid JSON";
    return CP_EINVAL;
}

typedef struct key_scan {
    const native_ctx *ctx;
    flat *f;
    cp_json_tok *hits; /* per configured key: the S/N token, type END when none */
    int has_event_name, has_creation_time;
    cp_buf *scratch;
} key_scan;

static int key_equals(key_scan *ks, const cp_json_tok *key, const char *name)
{
    if (!key->escaped) {
        return cp_json_tok_is(key, name);
    }
    cp_slice s;
    return cp_json_tok_string(key, ks->scratch, &s) == CP_OK && cp_slice_eq(s, cp_slice_str(name));
}

static void on_top_key(void *arg, const cp_json_tok *key)
{
    key_scan *ks = arg;
    ks->has_event_name |= key_equals(ks, key, "eventName");
    ks->has_creation_time |= key_equals(ks, key, "ApproximateCreationDateTime");
    for (size_t i = 0; i < ks->ctx->nkeys; i++) {
        if (key_equals(ks, key, ks->ctx->keys[i])) {
            /* Last occurrence wins, like every JSON object reader the Lambda might use. */
            ks->hits[i] = ks->f->scalar_set ? ks->f->scalar : (cp_json_tok){0};
        }
    }
}

/* Transform one record into out (reset first). hits[i] gets the value token of ctx->keys[i]. */
static int transform(const native_ctx *ctx, cp_slice in, cp_buf *out, cp_buf *scratch,
                     cp_json_tok *hits, const char **why)
{
    change c;
    cp_buf_reset(out);
    if (scan_change(in, &c, why) < 0) {
        return CP_EINVAL;
    }
    if (c.event_name.type != CP_JSON_STRING) {
        *why = "The record has no eventName";
        return CP_EINVAL;
    }
    cp_slice image;
    if (tok_eq(&c.event_name, "INSERT") || tok_eq(&c.event_name, "MODIFY")) {
        image = c.new_image.p ? c.new_image : c.keys;
    } else if (tok_eq(&c.event_name, "REMOVE")) {
        image = c.old_image.p ? c.old_image : c.keys;
    } else {
        *why = "eventName is not INSERT, MODIFY or REMOVE";
        return CP_EINVAL;
    }
    if (!image.p) {
        *why = "The record has no image and no Keys";
        return CP_EINVAL;
    }
    for (size_t i = 0; i < ctx->nkeys; i++) {
        hits[i] = (cp_json_tok){0};
    }
    flat f = {.out = out};
    key_scan ks = {.ctx = ctx, .f = &f, .hits = hits, .scratch = scratch};
    cp_json_tok t;
    cp_json_lexer_init(&f.lx, image);
    if (next(&f, &t) < 0 || flatten_members(&f, 1, on_top_key, &ks) < 0) {
        *why = f.why ? f.why : "The record is not valid JSON";
        return CP_EINVAL;
    }
    /* Reopen the object to append the event fields. */
    int empty = out->len == 2;
    out->len--;
    if (ctx->include_event_name && !ks.has_event_name) {
        cp_buf_puts(out, empty ? "\"eventName\":" : ",\"eventName\":");
        put_quoted_raw(out, c.event_name.s);
        empty = 0;
    }
    if (ctx->include_creation_time && !ks.has_creation_time && c.creation_time.p) {
        cp_buf_puts(out, empty ? "\"ApproximateCreationDateTime\":"
                               : ",\"ApproximateCreationDateTime\":");
        cp_buf_append(out, c.creation_time.p, c.creation_time.len);
    }
    cp_buf_putc(out, '}');
    if (ctx->append_newline) {
        cp_buf_putc(out, '\n');
    }
    return CP_OK;
}

static int native_apply(void *vctx, cp_batch *batch, cp_err *err)
{
    const native_ctx *ctx = vctx;
    cp_buf out = CP_BUF_INIT, scratch = CP_BUF_INIT;
    cp_json_tok hits[CP_PKEY_MAX];
    cp_slice names[CP_PKEY_MAX];
    (void) err;
    /* Key names go into the arena once per batch and are shared by its records. */
    for (size_t i = 0; i < ctx->nkeys; i++) {
        names[i] = cp_batch_copy(batch, cp_slice_str(ctx->keys[i]));
    }
    for (size_t i = 0; i < batch->n; i++) {
        cp_drec *r = &batch->recs[i];
        if (r->result != CP_REC_OK) {
            continue;
        }
        const char *why = NULL;
        if (transform(ctx, r->data, &out, &scratch, hits, &why) < 0) {
            cp_drec_fail(batch, r, "processing-failed", CODE_INVALID, why);
            r->attempts = 1;
            continue;
        }
        r->data = cp_batch_copy(batch, cp_buf_slice(&out));
        r->nlambda_keys = 0;
        r->lambda_keys = NULL;
        for (size_t k = 0; k < ctx->nkeys; k++) {
            cp_slice v;
            if (hits[k].type != CP_JSON_STRING || cp_json_tok_string(&hits[k], &scratch, &v) < 0 ||
                v.len == 0) {
                continue; /* absent, not S/N, or empty: no key (partitioning fails later) */
            }
            if (!r->lambda_keys) {
                r->lambda_keys = cp_batch_alloc(batch, ctx->nkeys * sizeof(cp_pkey));
            }
            r->lambda_keys[r->nlambda_keys++] = (cp_pkey){names[k], cp_batch_copy(batch, v)};
        }
    }
    cp_buf_free(&out);
    cp_buf_free(&scratch);
    return CP_OK;
}

const cp_processor_ops cp_processor_native = {
    .abi = CP_PROCESSOR_ABI,
    .type = "DynamoDBChangeRecord",
    .summary = "flatten DynamoDB change records to plain JSON in-process (changepipe extension)",
    .order = CP__ORDER_NATIVE,
    .init = native_init,
    .apply = native_apply,
    .destroy = native_destroy,
};
