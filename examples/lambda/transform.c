/* SPDX-License-Identifier: MIT */
/* The article's transform (see transform.h): change record -> tree -> flat JSON line. */
#include "transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"

/* A parsed JSON value. Strings and numbers keep their raw text (escapes included). */
typedef struct node {
    cp_json_type type; /* OBJ_BEGIN, ARR_BEGIN, STRING, NUMBER, TRUE, FALSE or NULL */
    cp_json_tok tok;   /* the scalar's token */
    cp_json_tok name;  /* member name when the parent is an object */
    struct node *kids;
    size_t n;
} node;

static void node_free(node *x)
{
    for (size_t i = 0; i < x->n; i++) {
        node_free(&x->kids[i]);
    }
    free(x->kids);
}

static int build(cp_json_lexer *lx, const cp_json_tok *first, node *x)
{
    x->type = first->type;
    x->tok = *first;
    if (first->type != CP_JSON_OBJ_BEGIN && first->type != CP_JSON_ARR_BEGIN) {
        return 0;
    }
    size_t cap = 0;
    for (;;) {
        cp_json_tok t, name = {0};
        if (cp_json_next(lx, &t) < 0) {
            return -1;
        }
        if (t.type == CP_JSON_OBJ_END || t.type == CP_JSON_ARR_END) {
            return 0;
        }
        if (t.type == CP_JSON_KEY) {
            name = t;
            if (cp_json_next(lx, &t) < 0) {
                return -1;
            }
        }
        if (x->n == cap) {
            cap = cap ? cap * 2 : 4;
            node *k = realloc(x->kids, cap * sizeof(*k));
            if (!k) {
                abort();
            }
            x->kids = k;
        }
        node *kid = &x->kids[x->n++];
        memset(kid, 0, sizeof(*kid));
        kid->name = name;
        if (build(lx, &t, kid) < 0) {
            return -1;
        }
    }
}

/* Decoded text of a string token. */
static int text(const cp_json_tok *t, cp_buf *scratch, cp_slice *out)
{
    return cp_json_tok_string(t, scratch, out);
}

static int name_is(const node *kid, const char *s)
{
    cp_buf scratch = CP_BUF_INIT;
    cp_slice v;
    int eq = text(&kid->name, &scratch, &v) == 0 && cp_slice_eq(v, cp_slice_str(s));
    cp_buf_free(&scratch);
    return eq;
}

/* The member of an object named s; the last one when repeated, as JSON readers do. */
static const node *member(const node *obj, const char *s)
{
    const node *hit = NULL;
    for (size_t i = 0; obj && obj->type == CP_JSON_OBJ_BEGIN && i < obj->n; i++) {
        if (name_is(&obj->kids[i], s)) {
            hit = &obj->kids[i];
        }
    }
    return hit;
}

static int is_number(cp_slice s)
{
    size_t i = 0, n = s.len;
    const char *p = s.p;
    if (i < n && p[i] == '-') {
        i++;
    }
    if (i == n) {
        return 0;
    }
    if (p[i] == '0') {
        i++;
    } else if (p[i] >= '1' && p[i] <= '9') {
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            i++;
        }
    } else {
        return 0;
    }
    if (i < n && p[i] == '.') {
        size_t d = ++i;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            i++;
        }
        if (i == d) {
            return 0;
        }
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-')) {
            i++;
        }
        size_t d = i;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            i++;
        }
        if (i == d) {
            return 0;
        }
    }
    return i == n;
}

static void quoted(cp_buf *out, cp_slice raw)
{
    cp_buf_putc(out, '"');
    cp_buf_append(out, raw.p, raw.len);
    cp_buf_putc(out, '"');
}

static int flat(const node *v, cp_buf *out, const char **why);

static int flat_object(const node *obj, cp_buf *out, const char **why)
{
    cp_buf_putc(out, '{');
    for (size_t i = 0; i < obj->n; i++) {
        if (i) {
            cp_buf_putc(out, ',');
        }
        quoted(out, obj->kids[i].name.s);
        cp_buf_putc(out, ':');
        if (flat(&obj->kids[i], out, why) < 0) {
            return -1;
        }
    }
    cp_buf_putc(out, '}');
    return 0;
}

/* One DynamoDB attribute value {"<type>": value} as plain JSON. */
static int flat(const node *v, cp_buf *out, const char **why)
{
    if (v->type != CP_JSON_OBJ_BEGIN || v->n != 1 || v->kids[0].name.escaped) {
        *why = "attribute value is not {\"<type>\": value}";
        return -1;
    }
    const node *x = &v->kids[0];
    cp_slice ty = x->name.s;
#define IS(t) cp_slice_eq(ty, CP_SLICE(t))
    if (IS("S") || IS("B")) {
        if (x->type != CP_JSON_STRING) {
            goto bad;
        }
        quoted(out, x->tok.s);
    } else if (IS("N")) {
        if (x->type != CP_JSON_STRING || x->tok.escaped || !is_number(x->tok.s)) {
            goto bad;
        }
        cp_buf_append(out, x->tok.s.p, x->tok.s.len);
    } else if (IS("BOOL")) {
        if (x->type != CP_JSON_TRUE && x->type != CP_JSON_FALSE) {
            goto bad;
        }
        cp_buf_puts(out, x->type == CP_JSON_TRUE ? "true" : "false");
    } else if (IS("NULL")) {
        if (x->type != CP_JSON_TRUE) {
            goto bad;
        }
        cp_buf_puts(out, "null");
    } else if (IS("SS") || IS("NS") || IS("BS")) {
        if (x->type != CP_JSON_ARR_BEGIN) {
            goto bad;
        }
        cp_buf_putc(out, '[');
        for (size_t i = 0; i < x->n; i++) {
            const node *e = &x->kids[i];
            if (e->type != CP_JSON_STRING) {
                goto bad;
            }
            if (i) {
                cp_buf_putc(out, ',');
            }
            if (IS("NS")) {
                if (e->tok.escaped || !is_number(e->tok.s)) {
                    goto bad;
                }
                cp_buf_append(out, e->tok.s.p, e->tok.s.len);
            } else {
                quoted(out, e->tok.s);
            }
        }
        cp_buf_putc(out, ']');
    } else if (IS("L")) {
        if (x->type != CP_JSON_ARR_BEGIN) {
            goto bad;
        }
        cp_buf_putc(out, '[');
        for (size_t i = 0; i < x->n; i++) {
            if (i) {
                cp_buf_putc(out, ',');
            }
            if (flat(&x->kids[i], out, why) < 0) {
                return -1;
            }
        }
        cp_buf_putc(out, ']');
    } else if (IS("M")) {
        if (x->type != CP_JSON_OBJ_BEGIN) {
            goto bad;
        }
        return flat_object(x, out, why);
    } else {
        goto bad;
    }
#undef IS
    return 0;
bad:
    *why = "attribute value does not match its type";
    return -1;
}

int fh_transform(const fh_options *o, cp_slice record, cp_buf *out, fh_keys *keys, const char **why)
{
    cp_json_lexer lx;
    cp_json_tok t;
    node root = {0};
    int rc = -1;
    cp_buf scratch = CP_BUF_INIT;
    cp_buf_reset(out);
    keys->n = 0;
    cp_json_lexer_init(&lx, record);
    if (cp_json_next(&lx, &t) < 0 || build(&lx, &t, &root) < 0 || cp_json_next(&lx, &t) < 0) {
        *why = "record is not JSON";
        goto done;
    }
    if (root.type != CP_JSON_OBJ_BEGIN) {
        *why = "record is not a JSON object";
        goto done;
    }
    const node *event = member(&root, "eventName");
    const node *ddb = member(&root, "dynamodb");
    if (!event || event->type != CP_JSON_STRING) {
        *why = "no eventName";
        goto done;
    }
    if (ddb && ddb->type != CP_JSON_OBJ_BEGIN) {
        *why = "dynamodb is not an object";
        goto done;
    }
    const node *img[3] = {member(ddb, "NewImage"), member(ddb, "OldImage"), member(ddb, "Keys")};
    for (int i = 0; i < 3; i++) {
        if (img[i] && img[i]->type == CP_JSON_NULL) {
            img[i] = NULL;
        } else if (img[i] && img[i]->type != CP_JSON_OBJ_BEGIN) {
            *why = "an image is not an object";
            goto done;
        }
    }
    cp_slice ev;
    if (text(&event->tok, &scratch, &ev) < 0) {
        goto done;
    }
    const node *image;
    if (cp_slice_eq(ev, CP_SLICE("INSERT")) || cp_slice_eq(ev, CP_SLICE("MODIFY"))) {
        image = img[0] ? img[0] : img[2];
    } else if (cp_slice_eq(ev, CP_SLICE("REMOVE"))) {
        image = img[1] ? img[1] : img[2];
    } else {
        *why = "unknown eventName";
        goto done;
    }
    if (!image) {
        *why = "no image";
        goto done;
    }
    if (flat_object(image, out, why) < 0) {
        goto done;
    }
    /* Optional event fields go after the attributes unless an attribute has the name. */
    out->len--;
    int empty = image->n == 0;
    const node *when = member(ddb, "ApproximateCreationDateTime");
    if (o->include_event_name && !member(image, "eventName")) {
        cp_buf_puts(out, empty ? "" : ",");
        cp_buf_puts(out, "\"eventName\":");
        quoted(out, event->tok.s);
        empty = 0;
    }
    if (o->include_creation_time && !member(image, "ApproximateCreationDateTime") && when &&
        when->type == CP_JSON_NUMBER) {
        cp_buf_puts(out, empty ? "" : ",");
        cp_buf_puts(out, "\"ApproximateCreationDateTime\":");
        cp_buf_append(out, when->tok.s.p, when->tok.s.len);
    }
    cp_buf_putc(out, '}');
    if (o->append_newline) {
        cp_buf_putc(out, '\n');
    }
    for (size_t k = 0; k < o->npartition_keys; k++) {
        const node *a = member(image, o->partition_keys[k]);
        const node *v = a && a->type == CP_JSON_OBJ_BEGIN && a->n == 1 ? &a->kids[0] : NULL;
        cp_slice s;
        if (!v || v->type != CP_JSON_STRING || !(name_is(v, "S") || name_is(v, "N")) ||
            text(&v->tok, &scratch, &s) < 0 || s.len == 0) {
            continue;
        }
        cp_buf *val = &keys->value[keys->n];
        cp_buf_reset(val);
        cp_buf_append(val, s.p, s.len);
        keys->name[keys->n++] = o->partition_keys[k];
    }
    rc = 0;
done:
    cp_buf_free(&scratch);
    node_free(&root);
    return rc;
}

void fh_keys_free(fh_keys *k)
{
    for (size_t i = 0; i < FH_MAX_KEYS; i++) {
        cp_buf_free(&k->value[i]);
    }
    k->n = 0;
}

static int env_bool(const char *name, int def)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        return def;
    }
    return strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0;
}

void fh_options_from_env(fh_options *o)
{
    static char list[4096];
    memset(o, 0, sizeof(*o));
    const char *keys = getenv("PARTITION_KEY_ATTRIBUTES");
    snprintf(list, sizeof(list), "%s", keys ? keys : "LivestreamID");
    /* Comma-separated; blanks around a name are not part of it. */
    for (char *p = list; *p && o->npartition_keys < FH_MAX_KEYS;) {
        char *comma = strchr(p, ',');
        char *end = comma ? comma : p + strlen(p);
        char *next = comma ? comma + 1 : end;
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }
        while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }
        if (end > p) {
            *end = 0;
            o->partition_keys[o->npartition_keys++] = p;
        }
        p = next;
    }
    o->include_event_name = env_bool("INCLUDE_EVENT_NAME", 0);
    o->include_creation_time = env_bool("INCLUDE_APPROXIMATE_CREATION_DATE_TIME", 0);
    o->append_newline = env_bool("APPEND_NEWLINE", 1);
}
