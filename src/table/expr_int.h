/* SPDX-License-Identifier: MIT */
/*
 * Private types of the expression module (expr*.c): the compiled form every parser and legacy
 * converter produces and the evaluators consume. Not for use outside src/table/expr*.c.
 *
 * Everything hangs off one cp_expr and lives in its arena: texts, the copied value maps, the
 * trees. Evaluation only reads it.
 */
#ifndef CP_EXPR_INT_H
#define CP_EXPR_INT_H

#include <stddef.h>
#include <stdint.h>

#include "table/expr.h"

/* ---- Arena ---- */

typedef struct cp__expr_chunk {
    struct cp__expr_chunk *next;
    size_t used, cap;
    /* data follows, max_align_t aligned */
} cp__expr_chunk;

/* ---- Document paths ---- */

typedef struct cp__seg {
    cp_slice name;  /* attribute/member name (resolved), or the raw token before resolution */
    uint32_t index; /* list index when is_index */
    uint8_t is_index;
    uint8_t is_alias; /* written as #token (not reserved-word checked) */
} cp__seg;

typedef struct cp__path {
    cp__seg *seg;
    uint32_t n;
} cp__path;

/* ---- Operands and conditions ---- */

typedef enum {
    CP__F_UNKNOWN = 0,
    CP__F_ATTR_EXISTS,
    CP__F_ATTR_NOT_EXISTS,
    CP__F_ATTR_TYPE,
    CP__F_BEGINS_WITH,
    CP__F_CONTAINS,
    CP__F_SIZE,
    CP__F_IF_NOT_EXISTS,
    CP__F_LIST_APPEND,
    CP__F_PLUS,  /* a + b in SET */
    CP__F_MINUS, /* a - b in SET */
} cp__fn;

typedef enum {
    CP__O_PATH = 1,
    CP__O_VALUE,
    CP__O_FUNC,
} cp__okind;

typedef struct cp__opnd {
    uint8_t kind;          /* cp__okind */
    uint8_t fn;            /* CP__O_FUNC: cp__fn */
    uint8_t paren;         /* parentheses directly around it (2+ is "redundant") */
    uint32_t tok;          /* first token (syntax phase), for messages */
    cp_slice text;         /* VALUE: the :token; FUNC: the function name */
    cp__path path;         /* PATH */
    cp_av val;             /* VALUE, once resolved (type 0 while unresolved) */
    struct cp__opnd *args; /* FUNC */
    uint32_t nargs;
} cp__opnd;

typedef enum {
    CP__C_AND = 1,
    CP__C_OR,
    CP__C_NOT,
    CP__C_CMP,     /* op: CP_CMP_EQ/NE/LT/LE/GT/GE; ops[0] op ops[1] */
    CP__C_BETWEEN, /* ops[0] BETWEEN ops[1] AND ops[2] */
    CP__C_IN,      /* ops[0] IN (ops[1..]) */
    CP__C_FUNC,    /* fn(ops...) used as a condition */
    CP__C_TRUE,    /* an empty Expected/QueryFilter map */
} cp__ckind;

typedef struct cp__cond {
    uint8_t kind;           /* cp__ckind */
    uint8_t op;             /* CP__C_CMP: cp_cmp_op; CP__C_FUNC: cp__fn */
    uint8_t paren;          /* parentheses directly around it */
    uint8_t type_arg;       /* attribute_type: the cp_av_type asked for */
    struct cp__cond *a, *b; /* AND/OR/NOT operands */
    cp__opnd *ops;
    uint32_t nops;
    cp_slice fname; /* CP__C_FUNC: the name as written */
} cp__cond;

/* ---- Updates ---- */

typedef enum {
    CP__U_SET = 1,
    CP__U_REMOVE,
    CP__U_ADD,
    CP__U_DELETE,
} cp__ukind;

typedef struct cp__uact {
    uint8_t kind;   /* cp__ukind */
    uint8_t legacy; /* from AttributeUpdates: ADD may append lists, errors use legacy text */
    cp__path path;
    cp__opnd *val; /* SET: the value expression */
    cp_av av;      /* ADD/DELETE operand (resolved) */
} cp__uact;

/* A trie of document paths: the update's targets (act = action index) or a projection
 * (act = 1 at the requested leaves). Children are sorted by name or by index. */
typedef struct cp__tnode {
    cp__seg seg; /* the edge from the parent (unused at the root) */
    struct cp__tnode *kids;
    uint32_t nkids;
    uint32_t id;        /* dense numbering, for per-call scratch flags */
    int32_t act;        /* -1: inner node */
    uint8_t kids_index; /* the children are list indexes */
} cp__tnode;

/* One key condition term: attr op v[0] (v[1]). */
typedef struct cp__keyterm {
    cp_slice attr;
    cp_cmp_op op;
    cp_av v[2];
    uint32_t nv;
} cp__keyterm;

/* Which expression a path came from, for the key checks that need the table. */
typedef enum {
    CP__SRC_UPDATE = 0,
    CP__SRC_CONDITION,
    CP__SRC_KEY,
    CP__SRC_FILTER,
    CP__SRC_PROJECTION,
    CP__SRC_N,
} cp__src;

typedef struct cp__heads {
    cp_slice *name;  /* path heads (first segment) */
    uint8_t *nested; /* 1 when the path goes below the head */
    uint32_t n, cap;
} cp__heads;

struct cp_expr {
    cp__expr_chunk *chunks;

    cp__cond *cond;   /* ConditionExpression / Expected */
    cp__cond *filter; /* FilterExpression / QueryFilter / ScanFilter */
    int has_cond, has_filter;
    const char *filter_label; /* "Filter Expression", "QueryFilter" or "ScanFilter" */

    cp__keyterm *kterms;
    uint32_t nkterms, kcap;
    int has_key;

    cp__uact *acts;
    uint32_t nacts;
    int has_update;
    cp__tnode *utree; /* targets of the update */
    uint32_t unodes;  /* node count of utree */
    cp__tnode *uproj; /* the same paths as a projection (UPDATED_OLD/NEW) */

    cp__tnode *proj;
    int has_proj;

    cp__heads heads[CP__SRC_N];
};

/* ---- Shared helpers (expr.c) ---- */

/* Zeroed memory from the expression's arena (aborts on OOM like cp_malloc). */
void *cp__expr_alloc(cp_expr *e, size_t n);
/* Copy bytes / a value into the arena. */
cp_slice cp__expr_dup(cp_expr *e, cp_slice s);
cp_av cp__expr_dup_av(cp_expr *e, cp_av v);
/* Remember the head of a document path for the key checks. */
void cp__expr_note_path(cp_expr *e, cp__src src, const cp__path *p);
/* Build a sorted trie from n paths; acts[i] is stored at the leaf of paths[i] (or 1 when acts
 * is NULL). The paths must not overlap. *nodes receives the node count. */
cp__tnode *cp__expr_trie(cp_expr *e, const cp__path *paths, const int32_t *acts, uint32_t n,
                         uint32_t *nodes);
/* Child of a trie node by name / by index, or NULL. */
const cp__tnode *cp__tnode_find(const cp__tnode *t, cp_slice name);
const cp__tnode *cp__tnode_find_index(const cp__tnode *t, uint32_t index);

/* "[a, b, [3]]" as DynamoDB prints document paths in messages. */
void cp__expr_path_str(const cp__path *p, cp_buf *out);
/* DynamoDB's long type words ("STRING", "LIST", ...) used by some operand-type messages. */
const char *cp__expr_type_word(cp_av_type t);

/* ---- Reserved words (expr_words.c) ---- */

/* 1 when `name` is one of DynamoDB's reserved words (case-insensitive). */
int cp__expr_is_reserved(cp_slice name);

/* ---- Parsing (expr_parse.c) ---- */

/* The placeholder maps of one request with their "used" marks. */
typedef struct cp__pmap {
    cp_slice *key;   /* sorted by key */
    cp_slice *sval;  /* names: the substituted name */
    cp_av *val;      /* values: the value */
    uint32_t *order; /* request order -> sorted index, for the unused-keys message */
    uint8_t *used;   /* per sorted index */
    uint32_t n;
    int present;
} cp__pmap;

typedef struct cp__pctx {
    cp_expr *e;
    cp__pmap names, values;
} cp__pctx;

/* Parse one expression of the given kind; CP_EINVAL with the "Invalid <Kind>: ..." text. */
int cp__expr_parse_condition(cp__pctx *c, cp_slice text, const char *kind, cp__src src,
                             cp__cond **out, cp_err *err);
int cp__expr_parse_update(cp__pctx *c, cp_slice text, cp_err *err);
int cp__expr_parse_projection(cp__pctx *c, cp_slice text, cp_err *err);

/* ---- Legacy parameters (expr_legacy.c) ---- */

int cp__expr_legacy_expected(cp_expr *e, const cp_expr_input *in, cp_err *err);
int cp__expr_legacy_filter(cp_expr *e, const cp_expr_input *in, cp_err *err);
int cp__expr_legacy_check_keyconds(cp_expr *e, const cp_expr_input *in, cp_err *err);
int cp__expr_legacy_updates(cp_expr *e, const cp_expr_input *in, cp_err *err);
int cp__expr_legacy_attrs(cp_expr *e, const cp_expr_input *in, cp_err *err);
/* Turn a parsed KeyConditionExpression into key terms (DynamoDB's structural checks). */
int cp__expr_key_terms(cp_expr *e, const cp__cond *c, cp_err *err);
/* Validate key terms as DynamoDB validates KeyConditions (counts, types, BETWEEN order). */
int cp__expr_check_key_terms(const cp_expr *e, cp_err *err);

/* ---- Evaluation (expr_eval.c) ---- */

/* Resolve a document path in an item; 1 when found. */
int cp__expr_resolve(cp_slice item, const cp__path *p, cp_av *out);
int cp__expr_eval_cond(const cp__cond *c, cp_slice item);
void cp__expr_project_trie(const cp__tnode *t, cp_slice item, cp_buf *out);

#endif
