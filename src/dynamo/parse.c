/* SPDX-License-Identifier: MIT */
/*
 * Reading DynamoDB requests in one pass over the JSON lexer (no DOM): typed member readers with
 * the deserialiser's SerializationException wording (dynalite's, as the item decoder uses),
 * AWS's constraint-violation envelope, and the expression parameters of every data-plane
 * operation, including the 2012-era ones (Expected, AttributeUpdates, KeyConditions,
 * QueryFilter, ScanFilter, AttributesToGet) turned into the expression module's input.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "dynamo/dynamo_int.h"

/* ------------------------------------------------------------------------------------------ */
/* Lexer helpers                                                                               */

/* Malformed JSON: AWS answers SerializationException without a message. */
static int malformed(cp__dynamo_call *c)
{
    return cp_err_set(&c->err, CP_EINVAL, "SerializationException");
}

static int shape(cp__dynamo_call *c, const char *msg)
{
    return cp_err_set(&c->err, CP_EINVAL, "SerializationException: %s", msg);
}

static int next(cp__dynamo_call *c, cp_json_tok *t)
{
    return cp_json_next(&c->lx, t) < 0 ? malformed(c) : CP_OK;
}

static int peek(cp__dynamo_call *c, cp_json_tok *t)
{
    cp_json_lexer save = c->lx;
    int rc = next(c, t);
    c->lx = save;
    return rc;
}

/* Jackson's class name for a JSON number, as the deserialiser reports it. */
static const char *number_class(cp_slice s)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*s", (int) (s.len < 63 ? s.len : 63), s.p);
    double v = strtod(buf, NULL);
    if (v != floor(v)) {
        return "java.lang.Double";
    }
    if (v >= -32768 && v <= 32767) {
        return "java.lang.Short";
    }
    if (v >= -2147483648.0 && v <= 2147483647.0) {
        return "java.lang.Integer";
    }
    return "java.lang.Long";
}

/* The SerializationException for a value of the wrong JSON type. `want`: "String", "Boolean",
 * "Integer", "Long" (scalars), or "map", "list", "structure". */
static int wrong_type(cp__dynamo_call *c, const cp_json_tok *t, const char *want)
{
    if (t->type == CP_JSON_OBJ_BEGIN) {
        return shape(c, "Start of structure or map found where not expected.");
    }
    if (t->type == CP_JSON_ARR_BEGIN) {
        return shape(c, "Start of list found where not expected");
    }
    if (strcmp(want, "map") == 0) {
        return shape(c, "Expected map or null");
    }
    if (strcmp(want, "list") == 0) {
        return shape(c, "Expected list or null");
    }
    if (strcmp(want, "structure") == 0) {
        return shape(c, "Expected null");
    }
    char msg[200];
    if (t->type == CP_JSON_TRUE || t->type == CP_JSON_FALSE) {
        snprintf(msg, sizeof(msg), "class java.lang.Boolean can not be converted to an %s", want);
    } else if (t->type == CP_JSON_NUMBER) {
        snprintf(msg, sizeof(msg), "class %s can not be converted to an %s", number_class(t->s),
                 want);
    } else {
        snprintf(msg, sizeof(msg), "class java.lang.String can not be converted to an %s", want);
    }
    return shape(c, msg);
}

cp_slice cp__dynamo_keep(cp__dynamo_call *c, cp_slice s)
{
    char *p = cp_http_scratch_alloc(c->scratch, s.len + 1);
    if (s.len) {
        memcpy(p, s.p, s.len);
    }
    p[s.len] = 0;
    return cp_slice_of(p, s.len);
}

/* A STRING/KEY token's text, decoded into the scratch when it has escapes. */
static int tok_text(cp__dynamo_call *c, const cp_json_tok *t, cp_slice *out)
{
    if (!t->escaped) {
        *out = t->s;
        return CP_OK;
    }
    cp_buf tmp = CP_BUF_INIT;
    if (cp_json_unescape(t->s, &tmp) < 0) {
        cp_buf_free(&tmp);
        return malformed(c);
    }
    *out = cp__dynamo_keep(c, cp_buf_slice(&tmp));
    cp_buf_free(&tmp);
    return CP_OK;
}

int cp__dynamo_open(cp__dynamo_call *c)
{
    cp_json_lexer_init(&c->lx, c->req->body);
    cp_json_tok t;
    if (next(c, &t) < 0) {
        return CP_EINVAL;
    }
    if (t.type != CP_JSON_OBJ_BEGIN) {
        return malformed(c);
    }
    return CP_OK;
}

int cp__dynamo_member(cp__dynamo_call *c, cp_slice *name)
{
    cp_json_tok t;
    if (next(c, &t) < 0) {
        return CP_EINVAL;
    }
    if (t.type == CP_JSON_OBJ_END) {
        if (c->lx.depth == 0) {
            /* The request object ended: nothing may follow it. */
            if (next(c, &t) < 0 || t.type != CP_JSON_END) {
                return malformed(c);
            }
        }
        return 0;
    }
    if (t.type != CP_JSON_KEY) {
        return malformed(c);
    }
    return tok_text(c, &t, name) < 0 ? CP_EINVAL : 1;
}

int cp__dynamo_str(cp__dynamo_call *c, cp_slice *out, int *present)
{
    cp_json_tok t;
    *present = 0;
    if (next(c, &t) < 0) {
        return CP_EINVAL;
    }
    if (t.type == CP_JSON_NULL) {
        return CP_OK;
    }
    if (t.type != CP_JSON_STRING) {
        return wrong_type(c, &t, "String");
    }
    if (tok_text(c, &t, out) < 0) {
        return CP_EINVAL;
    }
    if (!out->p) {
        out->p = ""; /* present but empty: keep p non-NULL */
    }
    *present = 1;
    return CP_OK;
}

int cp__dynamo_int(cp__dynamo_call *c, const char *type, int64_t *out, int *present)
{
    cp_json_tok t;
    *present = 0;
    if (next(c, &t) < 0) {
        return CP_EINVAL;
    }
    if (t.type == CP_JSON_NULL) {
        return CP_OK;
    }
    if (t.type != CP_JSON_NUMBER) {
        return wrong_type(c, &t, type);
    }
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*s", (int) (t.s.len < 63 ? t.s.len : 63), t.s.p);
    double v = floor(strtod(buf, NULL));
    if (v >= 9.2e18) {
        *out = INT64_MAX;
    } else if (v <= -9.2e18) {
        *out = INT64_MIN;
    } else {
        *out = (int64_t) v;
    }
    *present = 1;
    return CP_OK;
}

int cp__dynamo_bool(cp__dynamo_call *c, int *out, int *present)
{
    cp_json_tok t;
    *present = 0;
    if (next(c, &t) < 0) {
        return CP_EINVAL;
    }
    if (t.type == CP_JSON_NULL) {
        return CP_OK;
    }
    if (t.type == CP_JSON_TRUE || t.type == CP_JSON_FALSE) {
        *out = t.type == CP_JSON_TRUE;
        *present = 1;
        return CP_OK;
    }
    if (t.type == CP_JSON_STRING) {
        /* Jackson shows the offending string upper-cased. */
        char msg[200];
        int n = (int) (t.s.len < 100 ? t.s.len : 100);
        int k = snprintf(msg, sizeof(msg), "'");
        for (int i = 0; i < n; i++) {
            char ch = t.s.p[i];
            msg[k++] = ch >= 'a' && ch <= 'z' ? (char) (ch - 32) : ch;
        }
        snprintf(msg + k, sizeof(msg) - (size_t) k, "' can not be converted to an Boolean");
        return shape(c, msg);
    }
    if (t.type == CP_JSON_NUMBER) {
        /* Jackson accepts fractional numbers as booleans and refuses integral ones. */
        const char *cls = number_class(t.s);
        if (strcmp(cls, "java.lang.Double") == 0) {
            char buf[64];
            snprintf(buf, sizeof(buf), "%.*s", (int) (t.s.len < 63 ? t.s.len : 63), t.s.p);
            *out = fabs(strtod(buf, NULL)) >= 1;
            *present = 1;
            return CP_OK;
        }
        char msg[120];
        snprintf(msg, sizeof(msg), "class %s can not be converted to an Boolean", cls);
        return shape(c, msg);
    }
    return wrong_type(c, &t, "Boolean");
}

int cp__dynamo_skip(cp__dynamo_call *c)
{
    cp_json_tok t;
    if (next(c, &t) < 0) {
        return CP_EINVAL;
    }
    return cp_json_skip(&c->lx, &t) < 0 ? malformed(c) : CP_OK;
}

int cp__dynamo_raw(cp__dynamo_call *c, cp_slice *out)
{
    const char *start = c->lx.p;
    while (start < c->lx.end &&
           (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n' || *start == ':')) {
        start++;
    }
    if (cp__dynamo_skip(c) < 0) {
        return CP_EINVAL;
    }
    *out = cp_slice_of(start, (size_t) (c->lx.p - start));
    return CP_OK;
}

int cp__dynamo_obj(cp__dynamo_call *c, const char *what)
{
    cp_json_tok t;
    if (next(c, &t) < 0) {
        return CP_EINVAL;
    }
    if (t.type == CP_JSON_NULL) {
        return 0;
    }
    if (t.type != CP_JSON_OBJ_BEGIN) {
        return wrong_type(c, &t, what);
    }
    return 1;
}

int cp__dynamo_arr(cp__dynamo_call *c)
{
    cp_json_tok t;
    if (next(c, &t) < 0) {
        return CP_EINVAL;
    }
    if (t.type == CP_JSON_NULL) {
        return 0;
    }
    if (t.type != CP_JSON_ARR_BEGIN) {
        return wrong_type(c, &t, "list");
    }
    return 1;
}

int cp__dynamo_arr_more(cp__dynamo_call *c)
{
    cp_json_tok t;
    if (peek(c, &t) < 0) {
        return CP_EINVAL;
    }
    if (t.type == CP_JSON_ARR_END) {
        next(c, &t);
        return 0;
    }
    return 1;
}

int cp__dynamo_item(cp__dynamo_call *c, cp_buf *out)
{
    size_t mark = out->len;
    cp_item_builder b;
    cp_item_builder_init(&b, out);
    int rc = cp_item_from_json(&c->lx, &b, &c->err);
    if (rc == CP_ENOTFOUND) {
        return 0;
    }
    if (rc < 0) {
        return rc;
    }
    /* Names are the caller's to check (the decoder does values). */
    cp_av_iter it;
    cp_item_iter_init(&it, cp_slice_of(out->p + mark, out->len - mark));
    cp_slice name;
    cp_av v;
    while (cp_av_iter_next(&it, &name, &v)) {
        if (name.len == 0) {
            out->len = mark;
            return cp_err_set(&c->err, CP_EINVAL,
                              "One or more parameter values were invalid: An attribute name "
                              "cannot be empty");
        }
        if (name.len > 65535) {
            out->len = mark;
            return cp_err_set(&c->err, CP_EINVAL,
                              "One or more parameter values were invalid: Attribute name is too "
                              "long");
        }
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Constraint violations                                                                       */

#define VERR_MAX 10 /* AWS stops listing after ten */

void cp__dynamo_verr_add(cp__dynamo_verr *v, const char *value, const char *path, const char *rule)
{
    if (v->n >= VERR_MAX) {
        return;
    }
    if (v->n++) {
        cp_buf_puts(&v->msg, "; ");
    }
    if (value) {
        cp_buf_printf(&v->msg, "Value '%s' at '%s' failed to satisfy constraint: %s", value, path,
                      rule);
    } else {
        cp_buf_printf(&v->msg, "Value null at '%s' failed to satisfy constraint: %s", path, rule);
    }
}

void cp__dynamo_verr_add_s(cp__dynamo_verr *v, cp_slice value, const char *path, const char *rule)
{
    char buf[300];
    snprintf(buf, sizeof(buf), "%.*s", (int) (value.len < 280 ? value.len : 280),
             value.p ? value.p : "");
    cp__dynamo_verr_add(v, buf, path, rule);
}

int cp__dynamo_verr_done(cp__dynamo_verr *v, cp__dynamo_call *c)
{
    int rc = CP_OK;
    if (v->n) {
        rc = cp__dynamo_set_err(c, CP_EINVAL, "%d validation error%s detected: %s", v->n,
                                v->n > 1 ? "s" : "", v->msg.p);
    }
    cp_buf_free(&v->msg);
    v->n = 0;
    return rc;
}

void cp__dynamo_check_table_name(cp__dynamo_verr *v, cp_slice name, int present, const char *path)
{
    if (!present) {
        cp__dynamo_verr_add(v, NULL, path, "Member must not be null");
        return;
    }
    if (name.len > 4 && memcmp(name.p, "arn:", 4) == 0) {
        /* A table ARN stands for the name (checked once resolved). */
        if (name.len > 1024) {
            cp__dynamo_verr_add_s(v, name, path,
                                  "Member must have length less than or equal to 1024");
        }
        return;
    }
    int ok = 1;
    for (size_t i = 0; i < name.len; i++) {
        char ch = name.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-')) {
            ok = 0;
        }
    }
    if (!ok || name.len == 0) {
        cp__dynamo_verr_add_s(v, name, path,
                              "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+");
    }
    if (name.len < 3) {
        cp__dynamo_verr_add_s(v, name, path, "Member must have length greater than or equal to 3");
    }
    if (name.len > 255) {
        cp__dynamo_verr_add_s(v, name, path, "Member must have length less than or equal to 255");
    }
}

int cp__dynamo_check_enum(cp__dynamo_verr *v, cp_slice s, const char *path, const char *const *list,
                          const char *shown)
{
    for (int i = 0; list[i]; i++) {
        if (cp_slice_eq(s, cp_slice_str(list[i]))) {
            return i;
        }
    }
    char rule[400];
    snprintf(rule, sizeof(rule), "Member must satisfy enum value set: [%s]", shown);
    cp__dynamo_verr_add_s(v, s, path, rule);
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Expression parameters                                                                       */

/* One AttributeValue ({"S":"x"}) copied into the scratch as a standalone value. */
static int read_av(cp__dynamo_call *c, cp_av **out)
{
    cp_buf tmp = CP_BUF_INIT;
    cp_item_builder b;
    cp_item_builder_init(&b, &tmp);
    int rc = cp_av_from_json(&c->lx, &b, &c->err);
    if (rc < 0) {
        cp_buf_free(&tmp);
        return rc;
    }
    cp_slice kept = cp__dynamo_keep(c, cp_buf_slice(&tmp));
    cp_buf_free(&tmp);
    cp_av *v = cp_http_scratch_alloc(c->scratch, sizeof(*v));
    v->type = (cp_av_type) (unsigned char) kept.p[0];
    v->body = cp_slice_of(kept.p + 1, kept.len - 1);
    *out = v;
    return CP_OK;
}

/* AttributeValueList: an array of AttributeValues into a scratch array. */
static int read_av_list(cp__dynamo_call *c, const cp_av **out, size_t *n)
{
    int rc = cp__dynamo_arr(c);
    if (rc <= 0) {
        return rc;
    }
    size_t cap = 4, cnt = 0;
    cp_av *arr = cp_http_scratch_alloc(c->scratch, cap * sizeof(*arr));
    while ((rc = cp__dynamo_arr_more(c)) == 1) {
        cp_json_tok t;
        if (peek(c, &t) < 0) {
            return CP_EINVAL;
        }
        if (t.type == CP_JSON_NULL) {
            next(c, &t); /* a null element is dropped, as the deserialiser does */
            continue;
        }
        cp_av *v;
        if ((rc = read_av(c, &v)) < 0) {
            return rc;
        }
        if (cnt == CP__DYNAMO_LIST_MAX) {
            return cp_err_set(&c->err, CP_EINVAL,
                              "One or more parameter values were invalid: AttributeValueList has "
                              "more than %d elements",
                              CP__DYNAMO_LIST_MAX);
        }
        if (cnt == cap) {
            cp_av *bigger = cp_http_scratch_alloc(c->scratch, 2 * cap * sizeof(*arr));
            memcpy(bigger, arr, cap * sizeof(*arr));
            arr = bigger;
            cap *= 2;
        }
        arr[cnt++] = *v;
    }
    if (rc < 0) {
        return rc;
    }
    *out = arr;
    *n = cnt;
    return 1;
}

static const char *const CMP_NAMES[] = {
    "EQ",   "NE",       "LE",           "LT",          "GE", "GT",      "NOT_NULL",
    "NULL", "CONTAINS", "NOT_CONTAINS", "BEGINS_WITH", "IN", "BETWEEN", NULL};
static const char CMP_SHOWN[] =
    "IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS";

int cp__dynamo_vec_room(cp__dynamo_call *c, const cp__dynamo_vec *v, const char *what)
{
    if (v->n < CP__DYNAMO_LIST_MAX) {
        return CP_OK;
    }
    return cp_err_set(&c->err, CP_EINVAL,
                      "One or more parameter values were invalid: %s has more than %d elements",
                      what, CP__DYNAMO_LIST_MAX);
}

void *cp__dynamo_vec_push(cp__dynamo_call *c, cp__dynamo_vec *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void *bigger = cp_http_scratch_alloc(c->scratch, cap * v->size);
        if (v->n) {
            memcpy(bigger, v->p, v->n * v->size);
        }
        v->p = bigger;
        v->cap = cap;
    }
    void *e = (char *) v->p + v->n++ * v->size;
    memset(e, 0, v->size);
    return e;
}

/*
 * Expected / KeyConditions / QueryFilter / ScanFilter / AttributeUpdates: a map of attribute
 * name to a condition (or update) structure. `updates` selects the AttributeUpdates shape.
 */
static int read_legacy_map(cp__dynamo_call *c, cp__dynamo_verr *verr, const char *param,
                           int expected, int updates, cp__dynamo_vec *out, int *present)
{
    int rc = cp__dynamo_obj(c, "map");
    *present = rc == 1;
    if (rc <= 0) {
        return rc;
    }
    cp_slice attr;
    while ((rc = cp__dynamo_member(c, &attr)) == 1) {
        cp_json_tok t;
        if (peek(c, &t) < 0) {
            return CP_EINVAL;
        }
        if (t.type == CP_JSON_NULL) {
            next(c, &t);
            continue;
        }
        if ((rc = cp__dynamo_obj(c, "structure")) < 0 ||
            (rc = cp__dynamo_vec_room(c, out, param)) < 0) {
            return rc;
        }
        cp_legacy_cond *cond = updates ? NULL : cp__dynamo_vec_push(c, out);
        cp_legacy_update *up = updates ? cp__dynamo_vec_push(c, out) : NULL;
        if (cond) {
            cond->attr = cp__dynamo_keep(c, attr);
            cond->exists = -1;
        } else {
            up->attr = cp__dynamo_keep(c, attr);
            up->action = CP_LEGACY_PUT;
        }
        char path[400];
        cp_slice m;
        while ((rc = cp__dynamo_member(c, &m)) == 1) {
            int have = 0;
            if (cp__dynamo_is(m, "Value") && (expected || updates)) {
                if (peek(c, &t) < 0) {
                    return CP_EINVAL;
                }
                if (t.type == CP_JSON_NULL) {
                    next(c, &t);
                    continue;
                }
                cp_av *v;
                if ((rc = read_av(c, &v)) < 0) {
                    return rc;
                }
                if (cond) {
                    cond->value = v;
                } else {
                    up->value = v;
                }
            } else if (cp__dynamo_is(m, "Exists") && expected) {
                int b;
                if ((rc = cp__dynamo_bool(c, &b, &have)) < 0) {
                    return rc;
                }
                if (have) {
                    cond->exists = b;
                }
            } else if (cp__dynamo_is(m, "ComparisonOperator") && cond) {
                cp_slice s;
                if ((rc = cp__dynamo_str(c, &s, &have)) < 0) {
                    return rc;
                }
                if (have) {
                    snprintf(path, sizeof(path), "%s.%.*s.member.comparisonOperator", param,
                             (int) (attr.len < 255 ? attr.len : 255), attr.p);
                    int i = cp__dynamo_check_enum(verr, s, path, CMP_NAMES, CMP_SHOWN);
                    cond->op = i < 0 ? 0 : cp_cmp_op_from_name(s);
                }
            } else if (cp__dynamo_is(m, "AttributeValueList") && cond) {
                if ((rc = read_av_list(c, &cond->list, &cond->n_list)) < 0) {
                    return rc;
                }
                if (rc == 1 && !cond->list) {
                    cond->list = cp_http_scratch_alloc(c->scratch, sizeof(cp_av));
                }
            } else if (cp__dynamo_is(m, "Action") && up) {
                cp_slice s;
                if ((rc = cp__dynamo_str(c, &s, &have)) < 0) {
                    return rc;
                }
                if (have) {
                    static const char *const actions[] = {"ADD", "PUT", "DELETE", NULL};
                    snprintf(path, sizeof(path), "attributeUpdates.%.*s.member.action",
                             (int) (attr.len < 255 ? attr.len : 255), attr.p);
                    int i = cp__dynamo_check_enum(verr, s, path, actions, "ADD, PUT, DELETE");
                    up->action = i == 0 ? CP_LEGACY_ADD : i == 2 ? CP_LEGACY_DELETE : CP_LEGACY_PUT;
                }
            } else if ((rc = cp__dynamo_skip(c)) < 0) {
                return rc;
            }
        }
        if (rc < 0) {
            return rc;
        }
    }
    if (rc < 0) {
        return rc;
    }
    if (!out->p) {
        out->p = cp_http_scratch_alloc(c->scratch, out->size); /* present but empty */
    }
    return 1;
}

static int read_expr_string(cp__dynamo_call *c, cp_slice *out)
{
    int have;
    int rc = cp__dynamo_str(c, out, &have);
    if (rc == CP_OK && !have) {
        *out = (cp_slice){NULL, 0};
    }
    return rc;
}

int cp__dynamo_exprs_member(cp__dynamo_call *c, cp_slice name, cp__dynamo_exprs *x,
                            cp__dynamo_verr *verr)
{
    cp_expr_input *in = &x->in;
    int rc;
    if (cp__dynamo_is(name, "ConditionExpression")) {
        rc = read_expr_string(c, &in->condition);
    } else if (cp__dynamo_is(name, "UpdateExpression")) {
        rc = read_expr_string(c, &in->update);
    } else if (cp__dynamo_is(name, "KeyConditionExpression")) {
        rc = read_expr_string(c, &in->key_condition);
    } else if (cp__dynamo_is(name, "FilterExpression")) {
        rc = read_expr_string(c, &in->filter);
    } else if (cp__dynamo_is(name, "ProjectionExpression")) {
        rc = read_expr_string(c, &in->projection);
    } else if (cp__dynamo_is(name, "ExpressionAttributeNames")) {
        cp_json_tok t;
        if (peek(c, &t) < 0) {
            return CP_EINVAL;
        }
        if (t.type == CP_JSON_NULL) {
            return next(c, &t) < 0 ? CP_EINVAL : 1;
        }
        const char *start = c->lx.p;
        cp_buf_reset(&x->names);
        rc = cp_expr_names_from_json(&c->lx, &x->names, &c->err);
        if (rc == CP_OK) {
            while (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n') {
                start++;
            }
            x->names_raw = cp_slice_of(start, (size_t) (c->lx.p - start));
            in->names = cp_buf_slice(&x->names);
        }
    } else if (cp__dynamo_is(name, "ExpressionAttributeValues")) {
        cp_buf_reset(&x->values);
        rc = cp__dynamo_item(c, &x->values);
        if (rc == 1) {
            in->values = cp_buf_slice(&x->values);
        }
        rc = rc < 0 ? rc : CP_OK;
    } else if (cp__dynamo_is(name, "AttributesToGet")) {
        rc = cp__dynamo_arr(c);
        if (rc == 1) {
            cp__dynamo_vec v = {.size = sizeof(cp_slice)};
            while ((rc = cp__dynamo_arr_more(c)) == 1) {
                cp_slice s;
                int have;
                if ((rc = cp__dynamo_str(c, &s, &have)) < 0) {
                    return rc;
                }
                if (have && (rc = cp__dynamo_vec_room(c, &v, "AttributesToGet")) < 0) {
                    return rc;
                }
                if (have) {
                    *(cp_slice *) cp__dynamo_vec_push(c, &v) = cp__dynamo_keep(c, s);
                }
            }
            if (rc == 0) {
                in->attributes_to_get =
                    v.p ? v.p : cp_http_scratch_alloc(c->scratch, sizeof(cp_slice));
                in->n_attributes_to_get = v.n;
            }
        }
    } else if (cp__dynamo_is(name, "ConditionalOperator")) {
        cp_slice s;
        int have;
        rc = cp__dynamo_str(c, &s, &have);
        if (rc == CP_OK && have) {
            static const char *const ops[] = {"AND", "OR", NULL};
            int i = cp__dynamo_check_enum(verr, s, "conditionalOperator", ops, "AND, OR");
            in->conditional_op = i == 1 ? CP_CONDOP_OR : CP_CONDOP_AND;
        }
    } else {
        int expected = cp__dynamo_is(name, "Expected");
        int updates = cp__dynamo_is(name, "AttributeUpdates");
        int keyconds = cp__dynamo_is(name, "KeyConditions");
        int filter = cp__dynamo_is(name, "QueryFilter") || cp__dynamo_is(name, "ScanFilter");
        if (!expected && !updates && !keyconds && !filter) {
            return CP__DYNAMO_UNKNOWN;
        }
        cp__dynamo_vec v = {.size = updates ? sizeof(cp_legacy_update) : sizeof(cp_legacy_cond)};
        int present = 0;
        const char *param = expected                                       ? "expected"
                            : keyconds                                     ? "keyConditions"
                            : filter && cp__dynamo_is(name, "QueryFilter") ? "queryFilter"
                                                                           : "scanFilter";
        rc = read_legacy_map(c, verr, param, expected, updates, &v, &present);
        if (rc >= 0 && present) {
            if (expected) {
                in->expected = v.p;
                in->n_expected = v.n;
            } else if (updates) {
                in->attribute_updates = v.p;
                in->n_attribute_updates = v.n;
            } else if (keyconds) {
                in->key_conditions = v.p;
                in->n_key_conditions = v.n;
            } else {
                in->filter_conds = v.p;
                in->n_filter_conds = v.n;
                x->filter_from_query = cp__dynamo_is(name, "QueryFilter");
            }
        }
    }
    return rc < 0 ? rc : 1;
}

int cp__dynamo_exprs_compile(cp__dynamo_call *c, cp__dynamo_exprs *x, cp_expr_op op, cp_expr **out)
{
    /* Members an operation does not have are unknown members to AWS: ignored. */
    cp_expr_input *in = &x->in;
    int get = op == CP_EXPR_OP_GET, query = op == CP_EXPR_OP_QUERY, scan = op == CP_EXPR_OP_SCAN;
    int write = op == CP_EXPR_OP_PUT || op == CP_EXPR_OP_DELETE || op == CP_EXPR_OP_UPDATE;
    if (op != CP_EXPR_OP_UPDATE) {
        in->update = (cp_slice){NULL, 0};
        in->attribute_updates = NULL;
        in->n_attribute_updates = 0;
    }
    if (!write && op != CP_EXPR_OP_CHECK) {
        in->condition = (cp_slice){NULL, 0};
    }
    if (!write) {
        in->expected = NULL;
        in->n_expected = 0;
    }
    if (!query) {
        in->key_condition = (cp_slice){NULL, 0};
        in->key_conditions = NULL;
        in->n_key_conditions = 0;
    }
    if (!(query || scan) || (query && !x->filter_from_query) || (scan && x->filter_from_query)) {
        in->filter_conds = NULL;
        in->n_filter_conds = 0;
    }
    if (!(query || scan)) {
        in->filter = (cp_slice){NULL, 0};
    }
    if (!(get || query || scan)) {
        in->projection = (cp_slice){NULL, 0};
        in->attributes_to_get = NULL;
        in->n_attributes_to_get = 0;
    }
    if (get || op == CP_EXPR_OP_CHECK) {
        in->conditional_op = CP_CONDOP_NONE;
    }
    if (get) {
        in->values = (cp_slice){NULL, 0};
    }
    x->in.op = op;
    *out = NULL;
    return cp_expr_compile(&x->in, out, &c->err);
}

void cp__dynamo_exprs_free(cp__dynamo_exprs *x)
{
    cp_buf_free(&x->names);
    cp_buf_free(&x->values);
}

/* ------------------------------------------------------------------------------------------ */
/* The request loop                                                                            */

int cp__dynamo_read_request(cp__dynamo_call *c, cp__dynamo_member_fn fn, void *ctx,
                            cp_err *deferred)
{
    int rc = cp__dynamo_open(c);
    if (rc < 0) {
        return rc;
    }
    deferred->code = CP_OK;
    cp_slice name;
    while ((rc = cp__dynamo_member(c, &name)) == 1) {
        rc = fn(c, name, ctx);
        if (rc == CP__DYNAMO_UNKNOWN) {
            rc = cp__dynamo_skip(c);
        }
        if (rc >= 0) {
            continue;
        }
        /* A value that failed validation but was read whole (the decoders consume it) leaves
         * the lexer right after a top-level member: keep reading, because a later
         * SerializationException takes precedence in AWS's order of checks. */
        int serialization = strncmp(c->err.msg, "SerializationException", 22) == 0;
        if (serialization || c->lx.error || c->lx.depth != 1 || !c->lx.after_value) {
            return rc;
        }
        if (deferred->code == CP_OK) {
            *deferred = c->err;
            deferred->code = rc;
        }
    }
    return rc;
}
