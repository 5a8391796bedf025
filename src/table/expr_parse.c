/* SPDX-License-Identifier: MIT */
/*
 * Parsers for the expression language: a tokenizer, recursive-descent grammars for condition
 * (also filter and key condition), update and projection expressions, and the semantic pass
 * that resolves #name/:value placeholders and produces DynamoDB's validation messages.
 *
 * Two phases keep the messages faithful: the syntax phase builds a tree without side effects
 * (it backtracks, like the PEG grammars emulators validated against DynamoDB) and reports the
 * furthest token it could not accept; the semantic phase then walks the tree left to right and
 * keeps the first error of each category, reporting the category DynamoDB reports first.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/base64.h"
#include "core/mem.h"
#include "table/expr_int.h"

/* ---- Tokens ---- */

typedef enum {
    T_EOF = 0,
    T_IDENT, /* [A-Za-z][A-Za-z0-9_]* */
    T_NAME,  /* #[A-Za-z0-9_]+ */
    T_VALUE, /* :[A-Za-z0-9_]+ */
    T_NUM,   /* [0-9]+ */
    T_LP,
    T_RP,
    T_LB,
    T_RB,
    T_DOT,
    T_COMMA,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_PLUS,
    T_MINUS,
    T_BAD, /* anything else: one character (one UTF-8 sequence) */
} ttype;

typedef struct tok {
    uint8_t t;
    uint32_t off, len;
} tok;

/* Semantic error categories; each grammar reports them in its own priority order. */
enum {
    K_PARENS,
    K_UNKNOWN_FN,
    K_MISUSE,
    K_RESERVED,
    K_SECTION,
    K_ATTRNAME,
    K_ATTRVAL,
    K_OVERLAP,
    K_CONFLICT,
    K_OPERAND,
    K_DISTINCT,
    K_FUNCTION,
    K_N,
};

static const int cond_order[] = {K_PARENS,  K_UNKNOWN_FN, K_MISUSE,   K_RESERVED, K_ATTRNAME,
                                 K_OPERAND, K_DISTINCT,   K_FUNCTION, -1};
static const int update_order[] = {K_PARENS,  K_RESERVED, K_UNKNOWN_FN, K_SECTION, K_ATTRNAME,
                                   K_ATTRVAL, K_OVERLAP,  K_CONFLICT,   K_OPERAND, K_FUNCTION,
                                   -1};
static const int proj_order[] = {K_RESERVED, K_ATTRNAME, K_OVERLAP, K_CONFLICT, -1};

#define MAX_DEPTH 200 /* nesting guard: parentheses and function calls */

typedef struct parser {
    cp__pctx *c;
    cp_expr *e;
    const char *kind; /* "ConditionExpression", ... for messages */
    int update;       /* update grammar: its keywords and functions */
    cp__src src;
    const char *s; /* the expression text (arena copy) */
    size_t len;
    tok *t;
    uint32_t nt; /* tokens including the final T_EOF */
    uint32_t pos;
    uint32_t fail; /* furthest token index that could not be accepted */
    uint32_t depth;
    uint32_t nops; /* operators and functions, for the 300 limit */
    uint8_t has[K_N];
    char msg[K_N][200];
} parser;

static int ident_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

static int utf8_len(unsigned char ch)
{
    if (ch >= 0xF0 && ch < 0xF8) {
        return 4;
    }
    if (ch >= 0xE0) {
        return ch < 0xF0 ? 3 : 1;
    }
    if (ch >= 0xC0) {
        return 2;
    }
    return 1;
}

/* Tokenize the whole text; p->t is cp_malloc'd (freed by the caller). */
static void lex(parser *p)
{
    p->t = cp_malloc((p->len + 1) * sizeof(tok));
    uint32_t n = 0;
    size_t i = 0;
    while (i < p->len) {
        unsigned char ch = (unsigned char) p->s[i];
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            i++;
            continue;
        }
        size_t start = i;
        uint8_t t = T_BAD;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
            while (i < p->len && ident_char((unsigned char) p->s[i])) {
                i++;
            }
            t = T_IDENT;
        } else if (ch >= '0' && ch <= '9') {
            while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9') {
                i++;
            }
            t = T_NUM;
        } else if ((ch == '#' || ch == ':') && i + 1 < p->len &&
                   ident_char((unsigned char) p->s[i + 1])) {
            i++;
            while (i < p->len && ident_char((unsigned char) p->s[i])) {
                i++;
            }
            t = ch == '#' ? T_NAME : T_VALUE;
        } else {
            char nx = i + 1 < p->len ? p->s[i + 1] : 0;
            i++;
            switch (ch) {
            case '(':
                t = T_LP;
                break;
            case ')':
                t = T_RP;
                break;
            case '[':
                t = T_LB;
                break;
            case ']':
                t = T_RB;
                break;
            case '.':
                t = T_DOT;
                break;
            case ',':
                t = T_COMMA;
                break;
            case '=':
                t = T_EQ;
                break;
            case '+':
                t = T_PLUS;
                break;
            case '-':
                t = T_MINUS;
                break;
            case '<':
                t = nx == '=' ? T_LE : nx == '>' ? T_NE : T_LT;
                i += t != T_LT;
                break;
            case '>':
                t = nx == '=' ? T_GE : T_GT;
                i += t == T_GE;
                break;
            default:
                /* keep a multi-byte character whole so the message stays valid UTF-8 */
                for (int k = utf8_len(ch) - 1; k > 0 && i < p->len; k--) {
                    i++;
                }
                break;
            }
        }
        p->t[n++] = (tok){t, (uint32_t) start, (uint32_t) (i - start)};
    }
    p->t[n++] = (tok){T_EOF, (uint32_t) p->len, 0};
    p->nt = n;
}

static cp_slice ttext(const parser *p, uint32_t i)
{
    return cp_slice_of(p->s + p->t[i].off, p->t[i].len);
}

static int word_is(cp_slice s, const char *w)
{
    size_t n = strlen(w);
    if (s.len != n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s.p[i];
        if (ch >= 'a' && ch <= 'z') {
            ch = (char) (ch - 'a' + 'A');
        }
        if (ch != w[i]) {
            return 0;
        }
    }
    return 1;
}

/* Keywords are case-insensitive and never attribute names or functions. */
static int is_kw(const parser *p, uint32_t i)
{
    if (p->t[i].t != T_IDENT) {
        return 0;
    }
    cp_slice s = ttext(p, i);
    if (p->update) {
        return word_is(s, "SET") || word_is(s, "REMOVE") || word_is(s, "ADD") ||
               word_is(s, "DELETE");
    }
    return word_is(s, "AND") || word_is(s, "OR") || word_is(s, "NOT") || word_is(s, "BETWEEN") ||
           word_is(s, "IN");
}

static int at_kw(const parser *p, const char *w)
{
    return p->t[p->pos].t == T_IDENT && word_is(ttext(p, p->pos), w);
}

static int at(const parser *p, ttype t)
{
    return p->t[p->pos].t == t;
}

/* Record that the token at `i` could not be accepted; returns 0 for `return fail_at(...)`. */
static int fail_at(parser *p, uint32_t i)
{
    if (i > p->fail) {
        p->fail = i;
    }
    return 0;
}

static int syntax_error(parser *p, cp_err *err)
{
    uint32_t i = p->fail < p->nt ? p->fail : p->nt - 1;
    const tok *t = &p->t[i];
    if (t->t == T_EOF) {
        cp_slice prev = i > 0 ? ttext(p, i - 1) : cp_slice_of("", 0);
        return cp_err_set(err, CP_EINVAL,
                          "Invalid %s: Syntax error; token: \"<EOF>\", near: \"%.*s\"", p->kind,
                          (int) prev.len, prev.p);
    }
    /* DynamoDB shows the previous token through the next one */
    size_t start = i > 0 ? p->t[i - 1].off : t->off;
    size_t end = p->t[i + 1].t != T_EOF ? p->t[i + 1].off + p->t[i + 1].len : t->off + t->len;
    return cp_err_set(err, CP_EINVAL, "Invalid %s: Syntax error; token: \"%.*s\", near: \"%.*s\"",
                      p->kind, (int) t->len, p->s + t->off, (int) (end - start), p->s + start);
}

static void sem_err(parser *p, int cat, const char *fmt, ...) CP_PRINTF(3, 4);

static void sem_err(parser *p, int cat, const char *fmt, ...)
{
    if (cat == K_ATTRVAL && !p->update) {
        cat = K_ATTRNAME; /* conditions report the first undefined placeholder of either kind */
    }
    if (p->has[cat]) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg[cat], sizeof(p->msg[cat]), fmt, ap);
    va_end(ap);
    p->has[cat] = 1;
}

static int report(parser *p, const int *order, cp_err *err)
{
    for (int i = 0; order[i] >= 0; i++) {
        if (p->has[order[i]]) {
            return cp_err_set(err, CP_EINVAL, "Invalid %s: %s", p->kind, p->msg[order[i]]);
        }
    }
    return CP_OK;
}

/* ---- A growable temporary array (cp_malloc'd, copied into the arena when done) ---- */

typedef struct vec {
    void *p;
    uint32_t n, cap;
    size_t size;
} vec;

static void *vec_push(vec *v)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 4;
        v->p = cp_realloc(v->p, v->cap * v->size);
    }
    void *slot = (char *) v->p + v->n++ * v->size;
    memset(slot, 0, v->size);
    return slot;
}

static void *vec_to_arena(cp_expr *e, vec *v)
{
    void *out = v->n ? cp__expr_alloc(e, v->n * v->size) : NULL;
    if (v->n) {
        memcpy(out, v->p, v->n * v->size);
    }
    cp_free(v->p);
    v->p = NULL;
    return out;
}

/* ---- Syntax: paths and operands ---- */

static int path_part(const parser *p, uint32_t i)
{
    return (p->t[i].t == T_IDENT && !is_kw(p, i)) || p->t[i].t == T_NAME;
}

static uint32_t parse_index(cp_slice s)
{
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        v = v * 10 + (uint64_t) (s.p[i] - '0');
        if (v > UINT32_MAX) {
            return UINT32_MAX; /* past any list: reads miss, SET appends */
        }
    }
    return (uint32_t) v;
}

/* path := part ( '.' part | '[' NUM ']' )* */
static int p_path(parser *p, cp__path *out)
{
    if (!path_part(p, p->pos)) {
        return fail_at(p, p->pos);
    }
    uint32_t n = 1, i = p->pos + 1;
    for (;;) {
        if (p->t[i].t == T_DOT) {
            if (!path_part(p, i + 1)) {
                fail_at(p, i + 1);
                break;
            }
            i += 2;
        } else if (p->t[i].t == T_LB) {
            if (p->t[i + 1].t != T_NUM) {
                fail_at(p, i + 1);
                break;
            }
            if (p->t[i + 2].t != T_RB) {
                fail_at(p, i + 2);
                break;
            }
            i += 3;
        } else {
            break;
        }
        n++;
    }
    out->seg = cp__expr_alloc(p->e, n * sizeof(cp__seg));
    out->n = n;
    uint32_t k = 0;
    for (uint32_t j = p->pos; j < i;) {
        cp__seg *s = &out->seg[k++];
        if (p->t[j].t == T_LB) {
            s->is_index = 1;
            s->index = parse_index(ttext(p, j + 1));
            j += 3;
            continue;
        }
        if (p->t[j].t == T_DOT) {
            j++;
        }
        s->name = ttext(p, j);
        s->is_alias = p->t[j].t == T_NAME;
        j++;
    }
    p->pos = i;
    return 1;
}

static cp__fn fn_of(const parser *p, cp_slice name)
{
    static const struct {
        const char *name;
        cp__fn fn;
        int update;
    } fns[] = {
        {"attribute_exists", CP__F_ATTR_EXISTS, 0},
        {"attribute_not_exists", CP__F_ATTR_NOT_EXISTS, 0},
        {"attribute_type", CP__F_ATTR_TYPE, 0},
        {"begins_with", CP__F_BEGINS_WITH, 0},
        {"contains", CP__F_CONTAINS, 0},
        {"size", CP__F_SIZE, 0},
        {"if_not_exists", CP__F_IF_NOT_EXISTS, 1},
        {"list_append", CP__F_LIST_APPEND, 1},
    };
    /* function names are case-sensitive, and each grammar knows only its own */
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        if (fns[i].update == p->update && cp_slice_eq(name, cp_slice_str(fns[i].name))) {
            return fns[i].fn;
        }
    }
    return CP__F_UNKNOWN;
}

static cp__opnd *p_operand(parser *p);

/* name '(' operand {',' operand} ')' with pos at the name */
static cp__opnd *p_func(parser *p)
{
    cp__opnd *o = cp__expr_alloc(p->e, sizeof(*o));
    o->kind = CP__O_FUNC;
    o->tok = p->pos;
    o->text = ttext(p, p->pos);
    o->fn = (uint8_t) fn_of(p, o->text);
    p->pos += 2;
    vec args = {.size = sizeof(cp__opnd)};
    for (;;) {
        cp__opnd *a = p_operand(p);
        if (!a) {
            cp_free(args.p);
            return NULL;
        }
        *(cp__opnd *) vec_push(&args) = *a;
        if (at(p, T_COMMA)) {
            p->pos++;
            continue;
        }
        if (at(p, T_RP)) {
            p->pos++;
            break;
        }
        fail_at(p, p->pos);
        cp_free(args.p);
        return NULL;
    }
    o->nargs = args.n;
    o->args = vec_to_arena(p->e, &args);
    p->nops++;
    return o;
}

/* operand := '(' operand ')' | function | :value | path */
static cp__opnd *p_operand(parser *p)
{
    if (++p->depth > MAX_DEPTH) {
        p->depth--;
        fail_at(p, p->pos);
        return NULL;
    }
    cp__opnd *o = NULL;
    uint32_t save = p->pos;
    if (at(p, T_LP)) {
        p->pos++;
        o = p_operand(p);
        if (o && at(p, T_RP)) {
            p->pos++;
            o->paren++;
        } else {
            if (o) {
                fail_at(p, p->pos);
            }
            o = NULL;
            p->pos = save;
        }
    } else if (at(p, T_VALUE)) {
        o = cp__expr_alloc(p->e, sizeof(*o));
        o->kind = CP__O_VALUE;
        o->tok = p->pos;
        o->text = ttext(p, p->pos);
        p->pos++;
    } else if (at(p, T_IDENT) && !is_kw(p, p->pos) && p->t[p->pos + 1].t == T_LP) {
        o = p_func(p);
        if (!o) {
            p->pos = save;
        }
    } else {
        cp__path path;
        if (p_path(p, &path)) {
            o = cp__expr_alloc(p->e, sizeof(*o));
            o->kind = CP__O_PATH;
            o->tok = save;
            o->path = path;
        }
    }
    p->depth--;
    return o;
}

/* ---- Syntax: conditions ---- */

static cp__cond *new_cond(parser *p, int kind)
{
    cp__cond *c = cp__expr_alloc(p->e, sizeof(*c));
    c->kind = (uint8_t) kind;
    return c;
}

static cp__cond *p_or(parser *p);

static int cmp_of(ttype t)
{
    switch (t) {
    case T_EQ:
        return CP_CMP_EQ;
    case T_NE:
        return CP_CMP_NE;
    case T_LT:
        return CP_CMP_LT;
    case T_LE:
        return CP_CMP_LE;
    case T_GT:
        return CP_CMP_GT;
    case T_GE:
        return CP_CMP_GE;
    default:
        return 0;
    }
}

/* predicate := operand cmp operand | operand BETWEEN operand AND operand
 *            | operand IN '(' operand {',' operand} ')' | function */
static cp__cond *p_predicate(parser *p)
{
    cp__opnd *a = p_operand(p);
    if (!a) {
        return NULL;
    }
    int cmp = cmp_of((ttype) p->t[p->pos].t);
    if (cmp) {
        p->pos++;
        cp__opnd *b = p_operand(p);
        if (!b) {
            return NULL;
        }
        cp__cond *c = new_cond(p, CP__C_CMP);
        c->op = (uint8_t) cmp;
        c->nops = 2;
        c->ops = cp__expr_alloc(p->e, 2 * sizeof(cp__opnd));
        c->ops[0] = *a;
        c->ops[1] = *b;
        p->nops++;
        return c;
    }
    if (at_kw(p, "BETWEEN")) {
        p->pos++;
        cp__opnd *lo = p_operand(p);
        if (!lo) {
            return NULL;
        }
        if (!at_kw(p, "AND")) {
            fail_at(p, p->pos);
            return NULL;
        }
        p->pos++;
        cp__opnd *hi = p_operand(p);
        if (!hi) {
            return NULL;
        }
        cp__cond *c = new_cond(p, CP__C_BETWEEN);
        c->nops = 3;
        c->ops = cp__expr_alloc(p->e, 3 * sizeof(cp__opnd));
        c->ops[0] = *a;
        c->ops[1] = *lo;
        c->ops[2] = *hi;
        p->nops++;
        return c;
    }
    if (at_kw(p, "IN")) {
        p->pos++;
        if (!at(p, T_LP)) {
            fail_at(p, p->pos);
            return NULL;
        }
        p->pos++;
        vec ops = {.size = sizeof(cp__opnd)};
        *(cp__opnd *) vec_push(&ops) = *a;
        for (;;) {
            cp__opnd *o = p_operand(p);
            if (!o) {
                cp_free(ops.p);
                return NULL;
            }
            *(cp__opnd *) vec_push(&ops) = *o;
            if (at(p, T_COMMA)) {
                p->pos++;
                continue;
            }
            if (at(p, T_RP)) {
                p->pos++;
                break;
            }
            fail_at(p, p->pos);
            cp_free(ops.p);
            return NULL;
        }
        cp__cond *c = new_cond(p, CP__C_IN);
        c->nops = ops.n;
        c->ops = vec_to_arena(p->e, &ops);
        p->nops++;
        return c;
    }
    if (a->kind == CP__O_FUNC && a->paren == 0) {
        cp__cond *c = new_cond(p, CP__C_FUNC);
        c->op = a->fn;
        c->fname = a->text;
        c->ops = a->args;
        c->nops = a->nargs;
        return c;
    }
    fail_at(p, p->pos);
    return NULL;
}

/* primary := predicate | '(' or ')' */
static cp__cond *p_primary(parser *p)
{
    uint32_t save = p->pos;
    cp__cond *c = p_predicate(p);
    if (c) {
        return c;
    }
    p->pos = save;
    if (!at(p, T_LP)) {
        fail_at(p, p->pos);
        return NULL;
    }
    p->pos++;
    c = p_or(p);
    if (!c) {
        p->pos = save;
        return NULL;
    }
    if (!at(p, T_RP)) {
        fail_at(p, p->pos);
        p->pos = save;
        return NULL;
    }
    p->pos++;
    c->paren++;
    return c;
}

/* not := NOT not | primary (NOT binds tighter than AND) */
static cp__cond *p_not(parser *p)
{
    if (at_kw(p, "NOT")) {
        p->pos++;
        cp__cond *a = p_not(p);
        if (!a) {
            return NULL;
        }
        cp__cond *c = new_cond(p, CP__C_NOT);
        c->a = a;
        p->nops++;
        return c;
    }
    return p_primary(p);
}

static cp__cond *p_and(parser *p)
{
    cp__cond *a = p_not(p);
    while (a && at_kw(p, "AND")) {
        p->pos++;
        cp__cond *b = p_not(p);
        if (!b) {
            return NULL;
        }
        cp__cond *c = new_cond(p, CP__C_AND);
        c->a = a;
        c->b = b;
        p->nops++;
        a = c;
    }
    return a;
}

static cp__cond *p_or(parser *p)
{
    if (++p->depth > MAX_DEPTH) {
        p->depth--;
        fail_at(p, p->pos);
        return NULL;
    }
    cp__cond *a = p_and(p);
    while (a && at_kw(p, "OR")) {
        p->pos++;
        cp__cond *b = p_and(p);
        if (!b) {
            a = NULL;
            break;
        }
        cp__cond *c = new_cond(p, CP__C_OR);
        c->a = a;
        c->b = b;
        p->nops++;
        a = c;
    }
    p->depth--;
    return a;
}

/* ---- Semantics: placeholders, names, functions ---- */

static int pmap_find(const cp__pmap *m, cp_slice key)
{
    uint32_t lo = 0, hi = m->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int c = cp_slice_cmp(key, m->key[m->order[mid]]);
        if (c == 0) {
            return (int) m->order[mid];
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return -1;
}

static void sem_path(parser *p, cp__path *path)
{
    for (uint32_t i = 0; i < path->n; i++) {
        cp__seg *s = &path->seg[i];
        if (s->is_index) {
            continue;
        }
        if (!s->is_alias) {
            if (cp__expr_is_reserved(s->name)) {
                sem_err(p, K_RESERVED,
                        "Attribute name is a reserved keyword; reserved keyword: %.*s",
                        (int) s->name.len, s->name.p);
            }
            continue;
        }
        int k = pmap_find(&p->c->names, s->name);
        if (k < 0) {
            sem_err(p, K_ATTRNAME,
                    "An expression attribute name used in the document path is not defined; "
                    "attribute name: %.*s",
                    (int) s->name.len, s->name.p);
            continue;
        }
        p->c->names.used[k] = 1;
        s->name = p->c->names.sval[k];
        s->is_alias = 0;
    }
    cp__expr_note_path(p->e, p->src, path);
}

static void sem_value(parser *p, cp__opnd *o)
{
    int k = pmap_find(&p->c->values, o->text);
    if (k < 0) {
        sem_err(p, K_ATTRVAL,
                "An expression attribute value used in expression is not defined; attribute "
                "value: %.*s",
                (int) o->text.len, o->text.p);
        return;
    }
    p->c->values.used[k] = 1;
    o->val = p->c->values.val[k];
}

/* The static type of an operand as DynamoDB's validator sees it: a value's type, a function's
 * result type, 0 for a path (unknown until evaluation). */
static cp_av_type type_of(const cp__opnd *o)
{
    if (o->kind == CP__O_VALUE) {
        return o->val.type;
    }
    if (o->kind != CP__O_FUNC) {
        return 0;
    }
    switch (o->fn) {
    case CP__F_SIZE:
    case CP__F_PLUS:
    case CP__F_MINUS:
        return CP_AV_N;
    case CP__F_LIST_APPEND:
        return CP_AV_L;
    case CP__F_IF_NOT_EXISTS:
        return o->nargs == 2 ? type_of(&o->args[1]) : 0;
    case CP__F_UNKNOWN:
        return 0;
    default:
        return CP_AV_BOOL;
    }
}

static const char *tname(cp_av_type t)
{
    const char *n = cp_av_type_name(t);
    return n ? n : "?";
}

static int path_eq(const cp__path *a, const cp__path *b)
{
    if (a->n != b->n) {
        return 0;
    }
    for (uint32_t i = 0; i < a->n; i++) {
        if (a->seg[i].is_index != b->seg[i].is_index ||
            (a->seg[i].is_index ? a->seg[i].index != b->seg[i].index
                                : !cp_slice_eq(a->seg[i].name, b->seg[i].name))) {
            return 0;
        }
    }
    return 1;
}

static void distinct(parser *p, const char *op, int oplen, const cp__opnd *a, const cp__opnd *b)
{
    if (a->kind != CP__O_PATH || b->kind != CP__O_PATH || !path_eq(&a->path, &b->path) ||
        p->has[K_DISTINCT]) {
        return;
    }
    cp_buf s = CP_BUF_INIT;
    cp__expr_path_str(&a->path, &s);
    sem_err(p, K_DISTINCT,
            "The first operand must be distinct from the remaining operands for this operator or "
            "function; operator: %.*s, first operand: %s",
            oplen, op, s.p);
    cp_buf_free(&s);
}

static void misuse(parser *p, const cp__opnd *ops, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ops[i].kind == CP__O_FUNC && ops[i].fn != CP__F_SIZE) {
            sem_err(p, K_MISUSE,
                    "The function is not allowed to be used this way in an expression; function: "
                    "%.*s",
                    (int) ops[i].text.len, ops[i].text.p);
        }
    }
}

static int valid_type_name(cp_slice s, uint8_t *out)
{
    static const char *const names[] = {"S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "L", "M"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (cp_slice_eq(s, cp_slice_str(names[i]))) {
            *out = (uint8_t) cp_av_type_from_name(s);
            return 1;
        }
    }
    return 0;
}

static void sem_opnd(parser *p, cp__opnd *o);

/* Checks of one function call (condition or operand position). *type_arg receives the type
 * asked for by attribute_type. */
static void sem_func(parser *p, cp_slice name, int fn, cp__opnd *args, uint32_t nargs,
                     uint8_t *type_arg)
{
    for (uint32_t i = 0; i < nargs; i++) {
        sem_opnd(p, &args[i]);
    }
    if (!p->update) {
        misuse(p, args, nargs);
    }
    int nm = (int) name.len;
    if (fn == CP__F_UNKNOWN) {
        sem_err(p, K_UNKNOWN_FN, "Invalid function name; function: %.*s", nm, name.p);
        return;
    }
    uint32_t want =
        (fn == CP__F_ATTR_EXISTS || fn == CP__F_ATTR_NOT_EXISTS || fn == CP__F_SIZE) ? 1 : 2;
    if (nargs != want) {
        sem_err(p, p->update ? K_FUNCTION : K_OPERAND,
                "Incorrect number of operands for operator or function; operator or function: "
                "%.*s, number of operands: %u",
                nm, name.p, nargs);
        return;
    }
    if (!p->update && nargs == 2) {
        distinct(p, name.p, nm, &args[0], &args[1]);
    }
    cp_av_type t;
    switch (fn) {
    case CP__F_ATTR_EXISTS:
    case CP__F_ATTR_NOT_EXISTS:
    case CP__F_IF_NOT_EXISTS:
        if (args[0].kind != CP__O_PATH) {
            sem_err(p, K_FUNCTION,
                    "Operator or function requires a document path; operator or function: %.*s", nm,
                    name.p);
        }
        break;
    case CP__F_BEGINS_WITH:
        for (uint32_t i = 0; i < nargs; i++) {
            t = type_of(&args[i]);
            if (t && t != CP_AV_S && t != CP_AV_B) {
                sem_err(p, K_FUNCTION,
                        "Incorrect operand type for operator or function; operator or function: "
                        "%.*s, operand type: %s",
                        nm, name.p, tname(t));
                break;
            }
        }
        break;
    case CP__F_ATTR_TYPE:
        t = type_of(&args[1]);
        if (t != CP_AV_S) {
            sem_err(p, K_FUNCTION,
                    "Incorrect operand type for operator or function; operator or function: %.*s, "
                    "operand type: %s",
                    nm, name.p, t ? tname(t) : "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}");
        } else if (args[1].kind == CP__O_VALUE &&
                   !valid_type_name(cp_av_bytes(args[1].val), type_arg)) {
            cp_slice s = cp_av_bytes(args[1].val);
            sem_err(p, K_FUNCTION,
                    "Invalid attribute type name found; type: %.*s, valid types: "
                    "{B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
                    (int) s.len, s.p);
        }
        break;
    case CP__F_SIZE:
        t = type_of(&args[0]);
        if (t == CP_AV_N || t == CP_AV_BOOL || t == CP_AV_NULL) {
            sem_err(p, K_FUNCTION,
                    "Incorrect operand type for operator or function; operator or function: %.*s, "
                    "operand type: %s",
                    nm, name.p, tname(t));
        }
        break;
    case CP__F_LIST_APPEND:
    case CP__F_PLUS:
    case CP__F_MINUS:
        for (uint32_t i = 0; i < nargs; i++) {
            t = args[i].kind == CP__O_VALUE ? args[i].val.type : 0;
            cp_av_type want_t = fn == CP__F_LIST_APPEND ? CP_AV_L : CP_AV_N;
            if (t && t != want_t) {
                sem_err(p, K_FUNCTION,
                        "Incorrect operand type for operator or function; operator or function: "
                        "%.*s, operand type: %s",
                        nm, name.p, tname(t));
                break;
            }
        }
        break;
    default:
        break;
    }
}

static void sem_opnd(parser *p, cp__opnd *o)
{
    if (o->paren >= 2) {
        sem_err(p, K_PARENS, "The expression has redundant parentheses;");
    }
    switch (o->kind) {
    case CP__O_PATH:
        sem_path(p, &o->path);
        break;
    case CP__O_VALUE:
        sem_value(p, o);
        break;
    case CP__O_FUNC: {
        uint8_t ignored = 0;
        sem_func(p, o->text, o->fn, o->args, o->nargs, &ignored);
        break;
    }
    }
}

/* Print a bound of BETWEEN the way DynamoDB's message does: {N:5}. */
static void bound_str(cp_av v, cp_buf *out)
{
    cp_buf_printf(out, "{%s:", tname(v.type));
    if (v.type == CP_AV_S || v.type == CP_AV_N) {
        cp_slice b = cp_av_bytes(v);
        cp_buf_append(out, b.p, b.len);
    } else if (v.type == CP_AV_B) {
        cp_base64_encode(cp_av_bytes(v), out);
    }
    cp_buf_putc(out, '}');
}

static const char *cmp_sym(int op)
{
    switch (op) {
    case CP_CMP_EQ:
        return "=";
    case CP_CMP_NE:
        return "<>";
    case CP_CMP_LT:
        return "<";
    case CP_CMP_LE:
        return "<=";
    case CP_CMP_GT:
        return ">";
    default:
        return ">=";
    }
}

static void sem_cond(parser *p, cp__cond *c)
{
    if (c->paren >= 2) {
        sem_err(p, K_PARENS, "The expression has redundant parentheses;");
    }
    switch (c->kind) {
    case CP__C_AND:
    case CP__C_OR:
        sem_cond(p, c->a);
        sem_cond(p, c->b);
        break;
    case CP__C_NOT:
        sem_cond(p, c->a);
        break;
    case CP__C_CMP: {
        sem_opnd(p, &c->ops[0]);
        sem_opnd(p, &c->ops[1]);
        misuse(p, c->ops, 2);
        const char *sym = cmp_sym(c->op);
        distinct(p, sym, (int) strlen(sym), &c->ops[0], &c->ops[1]);
        if (c->op != CP_CMP_EQ && c->op != CP_CMP_NE) {
            /* ordering needs S, N or B: a constant of another type can never compare */
            for (int i = 0; i < 2; i++) {
                cp_av_type t = c->ops[i].kind == CP__O_VALUE ? c->ops[i].val.type : 0;
                if (t && t != CP_AV_S && t != CP_AV_N && t != CP_AV_B) {
                    sem_err(p, K_FUNCTION,
                            "Incorrect operand type for operator or function; operator or "
                            "function: %s, operand type: %s",
                            sym, cp__expr_type_word(t));
                    break;
                }
            }
        }
        break;
    }
    case CP__C_BETWEEN: {
        for (int i = 0; i < 3; i++) {
            sem_opnd(p, &c->ops[i]);
        }
        misuse(p, c->ops, 3);
        const cp__opnd *lo = &c->ops[1], *hi = &c->ops[2];
        if (lo->kind == CP__O_VALUE && hi->kind == CP__O_VALUE && lo->val.type && hi->val.type &&
            !p->has[K_FUNCTION]) {
            int same = lo->val.type == hi->val.type;
            int ordered =
                lo->val.type == CP_AV_S || lo->val.type == CP_AV_N || lo->val.type == CP_AV_B;
            if (!same || (ordered && cp_av_cmp(lo->val, hi->val) > 0)) {
                cp_buf a = CP_BUF_INIT, b = CP_BUF_INIT;
                bound_str(lo->val, &a);
                bound_str(hi->val, &b);
                sem_err(p, K_FUNCTION,
                        "The BETWEEN operator requires %s; lower bound operand: AttributeValue: "
                        "%s, upper bound operand: AttributeValue: %s",
                        same ? "upper bound to be greater than or equal to lower bound"
                             : "same data type for lower and upper bounds",
                        a.p, b.p);
                cp_buf_free(&a);
                cp_buf_free(&b);
            }
        }
        break;
    }
    case CP__C_IN:
        for (uint32_t i = 0; i < c->nops; i++) {
            sem_opnd(p, &c->ops[i]);
        }
        misuse(p, c->ops, c->nops);
        break;
    case CP__C_FUNC:
        sem_func(p, c->fname, c->op, c->ops, c->nops, &c->type_arg);
        if (c->op == CP__F_SIZE) {
            /* size() yields a number, not a condition */
            sem_err(p, K_MISUSE,
                    "The function is not allowed to be used this way in an expression; function: "
                    "%.*s",
                    (int) c->fname.len, c->fname.p);
        }
        break;
    default:
        break;
    }
}

/* IN allows at most 100 operands on its right. */
static int check_in(parser *p, const cp__cond *c, cp_err *err)
{
    if (!c) {
        return CP_OK;
    }
    if (c->kind == CP__C_IN && c->nops - 1 > CP_EXPR_MAX_IN) {
        return cp_err_set(err, CP_EINVAL,
                          "Invalid %s: The IN operator is provided with too many operands; number "
                          "of operands: %u",
                          p->kind, c->nops - 1);
    }
    int rc = check_in(p, c->a, err);
    return rc ? rc : check_in(p, c->b, err);
}

/* ---- Driver ---- */

/* Copy the text, apply the length and emptiness rules, tokenize. */
static int begin(parser *p, cp__pctx *c, cp_slice text, const char *kind, int update, cp__src src,
                 cp_err *err)
{
    memset(p, 0, sizeof(*p));
    p->c = c;
    p->e = c->e;
    p->kind = kind;
    p->update = update;
    p->src = src;
    if (text.len > CP_EXPR_MAX_LEN) {
        return cp_err_set(err, CP_EINVAL,
                          "Invalid %s: Expression size has exceeded the maximum allowed size;",
                          kind);
    }
    cp_slice copy = cp__expr_dup(c->e, text);
    p->s = copy.p;
    p->len = copy.len;
    lex(p);
    if (p->nt == 1) {
        cp_free(p->t);
        p->t = NULL;
        return cp_err_set(err, CP_EINVAL, "Invalid %s: The expression can not be empty;", kind);
    }
    return CP_OK;
}

static int too_many_ops(parser *p, cp_err *err)
{
    if (p->nops > CP_EXPR_MAX_OPERATORS) {
        return cp_err_set(err, CP_EINVAL,
                          "Invalid %s: The expression contains too many operators; operator "
                          "count: %u",
                          p->kind, p->nops);
    }
    return CP_OK;
}

int cp__expr_parse_condition(cp__pctx *c, cp_slice text, const char *kind, cp__src src,
                             cp__cond **out, cp_err *err)
{
    parser p;
    int rc = begin(&p, c, text, kind, 0, src, err);
    if (rc) {
        return rc;
    }
    cp__cond *cond = p_or(&p);
    if (cond && !at(&p, T_EOF)) {
        fail_at(&p, p.pos);
        cond = NULL;
    }
    if (!cond) {
        rc = syntax_error(&p, err);
    } else if (!(rc = too_many_ops(&p, err)) && !(rc = check_in(&p, cond, err))) {
        sem_cond(&p, cond);
        rc = report(&p, cond_order, err);
    }
    cp_free(p.t);
    *out = rc ? NULL : cond;
    return rc;
}

/* Paths of one update or projection, for the overlap rules. */
static void check_overlap(parser *p, const cp__path *paths, uint32_t n)
{
    for (uint32_t j = 1; j < n; j++) {
        for (uint32_t i = 0; i < j; i++) {
            const cp__path *a = &paths[i], *b = &paths[j];
            uint32_t k = 0, m = a->n < b->n ? a->n : b->n;
            int differ = 0, conflict = 0;
            for (; k < m; k++) {
                const cp__seg *x = &a->seg[k], *y = &b->seg[k];
                if (x->is_alias || y->is_alias) {
                    differ = 1; /* unresolved: already an error */
                    break;
                }
                if (x->is_index != y->is_index) {
                    conflict = 1;
                    break;
                }
                if (x->is_index ? x->index != y->index : !cp_slice_eq(x->name, y->name)) {
                    differ = 1;
                    break;
                }
            }
            if (differ || (conflict && p->has[K_CONFLICT]) || (!conflict && p->has[K_OVERLAP])) {
                continue;
            }
            cp_buf s1 = CP_BUF_INIT, s2 = CP_BUF_INIT;
            cp__expr_path_str(a, &s1);
            cp__expr_path_str(b, &s2);
            sem_err(p, conflict ? K_CONFLICT : K_OVERLAP,
                    "Two document paths %s with each other; must remove or rewrite one of these "
                    "paths; path one: %s, path two: %s",
                    conflict ? "conflict" : "overlap", s1.p, s2.p);
            cp_buf_free(&s1);
            cp_buf_free(&s2);
        }
    }
}

static const char *const section_names[] = {"", "SET", "REMOVE", "ADD", "DELETE"};

/* SET value := '(' inner ')' | inner;  inner := operand [('+' | '-') operand] */
static cp__opnd *p_setval_inner(parser *p)
{
    cp__opnd *a = p_operand(p);
    if (!a) {
        return NULL;
    }
    if (!at(p, T_PLUS) && !at(p, T_MINUS)) {
        return a;
    }
    cp__opnd *o = cp__expr_alloc(p->e, sizeof(*o));
    o->kind = CP__O_FUNC;
    o->fn = at(p, T_PLUS) ? CP__F_PLUS : CP__F_MINUS;
    o->text = ttext(p, p->pos);
    o->tok = p->pos;
    p->pos++;
    cp__opnd *b = p_operand(p);
    if (!b) {
        return NULL;
    }
    o->nargs = 2;
    o->args = cp__expr_alloc(p->e, 2 * sizeof(cp__opnd));
    o->args[0] = *a;
    o->args[1] = *b;
    p->nops++;
    return o;
}

static cp__opnd *p_setval(parser *p)
{
    uint32_t save = p->pos, end1 = 0;
    cp__opnd *v1 = NULL;
    if (at(p, T_LP)) {
        p->pos++;
        v1 = p_setval_inner(p);
        if (v1 && at(p, T_RP)) {
            p->pos++;
            end1 = p->pos;
        } else {
            if (v1) {
                fail_at(p, p->pos);
            }
            v1 = NULL;
        }
        p->pos = save;
    }
    cp__opnd *v2 = p_setval_inner(p);
    /* take whichever reading gets further: "(a + :b)" and "(a) + :b" are both values */
    if (v1 && (!v2 || end1 >= p->pos)) {
        p->pos = end1;
        return v1;
    }
    return v2;
}

int cp__expr_parse_update(cp__pctx *c, cp_slice text, cp_err *err)
{
    parser p;
    int rc = begin(&p, c, text, "UpdateExpression", 1, CP__SRC_UPDATE, err);
    if (rc) {
        return rc;
    }
    vec acts = {.size = sizeof(cp__uact)};
    vec secs = {.size = sizeof(uint32_t)}; /* per section: kind << 24 | first action */
    int ok = 1;
    while (ok && !at(&p, T_EOF)) {
        int kind = at_kw(&p, "SET")      ? CP__U_SET
                   : at_kw(&p, "REMOVE") ? CP__U_REMOVE
                   : at_kw(&p, "ADD")    ? CP__U_ADD
                   : at_kw(&p, "DELETE") ? CP__U_DELETE
                                         : 0;
        if (!kind) {
            ok = fail_at(&p, p.pos);
            break;
        }
        *(uint32_t *) vec_push(&secs) = (uint32_t) kind << 24 | acts.n;
        p.pos++;
        for (;;) {
            cp__uact a = {.kind = (uint8_t) kind};
            if (!p_path(&p, &a.path)) {
                ok = 0;
                break;
            }
            if (kind == CP__U_SET) {
                if (!at(&p, T_EQ)) {
                    ok = fail_at(&p, p.pos);
                    break;
                }
                p.pos++;
                if (!(a.val = p_setval(&p))) {
                    ok = 0;
                    break;
                }
            } else if (kind == CP__U_ADD || kind == CP__U_DELETE) {
                if (!at(&p, T_VALUE)) {
                    ok = fail_at(&p, p.pos);
                    break;
                }
                a.val = cp__expr_alloc(p.e, sizeof(cp__opnd));
                a.val->kind = CP__O_VALUE;
                a.val->text = ttext(&p, p.pos);
                p.pos++;
            }
            *(cp__uact *) vec_push(&acts) = a;
            if (!at(&p, T_COMMA)) {
                break;
            }
            p.pos++;
        }
    }
    if (!ok) {
        rc = syntax_error(&p, err);
    } else {
        rc = too_many_ops(&p, err);
    }
    if (!rc) {
        cp__uact *act = acts.p;
        const uint32_t *sec = secs.p;
        cp__path *paths = cp_malloc((acts.n + 1) * sizeof(cp__path));
        int seen[5] = {0};
        for (uint32_t s = 0; s < secs.n; s++) {
            int kind = (int) (sec[s] >> 24);
            uint32_t from = sec[s] & 0xffffff, to = s + 1 < secs.n ? sec[s + 1] & 0xffffff : acts.n;
            for (uint32_t i = from; i < to; i++) {
                sem_path(&p, &act[i].path);
                if (act[i].kind == CP__U_SET) {
                    sem_opnd(&p, act[i].val);
                } else if (act[i].val) {
                    sem_value(&p, act[i].val);
                    act[i].av = act[i].val->val;
                    cp_av_type t = act[i].av.type;
                    int okt = t == CP_AV_SS || t == CP_AV_NS || t == CP_AV_BS || t == 0 ||
                              (act[i].kind == CP__U_ADD && t == CP_AV_N);
                    if (!okt) {
                        sem_err(&p, K_OPERAND,
                                "Incorrect operand type for operator or function; operator: %s, "
                                "operand type: %s",
                                section_names[act[i].kind], cp__expr_type_word(t));
                    }
                    act[i].val = NULL;
                }
                paths[i] = act[i].path;
            }
            if (seen[kind]) {
                sem_err(&p, K_SECTION,
                        "The \"%s\" section can only be used once in an update expression;",
                        section_names[kind]);
            }
            seen[kind] = 1;
        }
        check_overlap(&p, paths, acts.n);
        cp_free(paths);
        rc = report(&p, update_order, err);
    }
    cp_free(secs.p);
    if (!rc) {
        c->e->nacts = acts.n;
        c->e->acts = vec_to_arena(c->e, &acts);
        c->e->has_update = 1;
    } else {
        cp_free(acts.p);
    }
    cp_free(p.t);
    return rc;
}

int cp__expr_parse_projection(cp__pctx *c, cp_slice text, cp_err *err)
{
    parser p;
    int rc = begin(&p, c, text, "ProjectionExpression", 0, CP__SRC_PROJECTION, err);
    if (rc) {
        return rc;
    }
    vec paths = {.size = sizeof(cp__path)};
    int ok = 1;
    for (;;) {
        cp__path path;
        if (!p_path(&p, &path)) {
            ok = 0;
            break;
        }
        *(cp__path *) vec_push(&paths) = path;
        if (!at(&p, T_COMMA)) {
            break;
        }
        p.pos++;
    }
    if (ok && !at(&p, T_EOF)) {
        ok = fail_at(&p, p.pos);
    }
    if (!ok) {
        rc = syntax_error(&p, err);
    } else {
        cp__path *pp = paths.p;
        for (uint32_t i = 0; i < paths.n; i++) {
            sem_path(&p, &pp[i]);
        }
        check_overlap(&p, pp, paths.n);
        rc = report(&p, proj_order, err);
    }
    if (!rc) {
        uint32_t n = paths.n, nodes = 0;
        cp__path *pp = vec_to_arena(c->e, &paths);
        c->e->proj = cp__expr_trie(c->e, pp, NULL, n, &nodes);
        c->e->has_proj = 1;
    } else {
        cp_free(paths.p);
    }
    cp_free(p.t);
    return rc;
}
