/* SPDX-License-Identifier: MIT */
/*
 * The DynamoDB expression language over binary items (table/item.h): ConditionExpression,
 * FilterExpression, KeyConditionExpression, UpdateExpression and ProjectionExpression, plus the
 * 2012-era parameters (Expected, AttributeUpdates, KeyConditions, QueryFilter/ScanFilter,
 * AttributesToGet) converted into the same compiled form.
 *
 * A request is compiled once (cp_expr_compile validates everything DynamoDB validates without
 * the table, with its exact ValidationException texts), checked against the key schema once
 * the table is known, then evaluated under the store's write lock: evaluation reads items in
 * place and does not allocate per node.
 *
 * Threads: a compiled cp_expr is immutable; any number of threads may evaluate it at once.
 */
#ifndef CP_EXPR_H
#define CP_EXPR_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/json.h"
#include "table/item.h"

#define CP_EXPR_MAX_LEN       4096 /* bytes of one expression string */
#define CP_EXPR_MAX_OPERATORS 300  /* operators + functions in one expression */
#define CP_EXPR_MAX_IN        100  /* operands on the right of IN */

/* The operation whose parameters are compiled; it decides which parameters exist and the
 * wording of the "can only be specified when using expressions" family of errors. */
typedef enum {
    CP_EXPR_OP_GET = 1, /* GetItem, BatchGetItem, TransactGetItems Get */
    CP_EXPR_OP_PUT,     /* PutItem, TransactWriteItems Put */
    CP_EXPR_OP_DELETE,  /* DeleteItem, TransactWriteItems Delete */
    CP_EXPR_OP_UPDATE,  /* UpdateItem, TransactWriteItems Update */
    CP_EXPR_OP_CHECK,   /* TransactWriteItems ConditionCheck */
    CP_EXPR_OP_QUERY,
    CP_EXPR_OP_SCAN,
} cp_expr_op;

/* Legacy ComparisonOperator values. */
typedef enum {
    CP_CMP_EQ = 1,
    CP_CMP_NE,
    CP_CMP_LE,
    CP_CMP_LT,
    CP_CMP_GE,
    CP_CMP_GT,
    CP_CMP_NOT_NULL,
    CP_CMP_NULL,
    CP_CMP_CONTAINS,
    CP_CMP_NOT_CONTAINS,
    CP_CMP_BEGINS_WITH,
    CP_CMP_IN,
    CP_CMP_BETWEEN,
} cp_cmp_op;

/* "EQ" -> CP_CMP_EQ ...; 0 for anything else (the caller reports the enum constraint). */
cp_cmp_op cp_cmp_op_from_name(cp_slice name);
const char *cp_cmp_op_name(cp_cmp_op op);

/* One entry of Expected, KeyConditions, QueryFilter or ScanFilter, as the API layer parsed it.
 * All pointers are borrowed for the duration of cp_expr_compile (values are copied). */
typedef struct cp_legacy_cond {
    cp_slice attr;      /* the map key: a top-level attribute name */
    cp_cmp_op op;       /* ComparisonOperator; 0 when absent */
    int exists;         /* Expected only: -1 absent, 0 false, 1 true */
    const cp_av *value; /* Expected only: Value, or NULL */
    const cp_av *list;  /* AttributeValueList (n_list values), or NULL when absent */
    size_t n_list;
} cp_legacy_cond;

typedef enum {
    CP_LEGACY_PUT = 1, /* also the default when Action is absent */
    CP_LEGACY_ADD,
    CP_LEGACY_DELETE,
} cp_legacy_action;

/* One entry of AttributeUpdates. */
typedef struct cp_legacy_update {
    cp_slice attr;
    cp_legacy_action action;
    const cp_av *value; /* Value, or NULL */
} cp_legacy_update;

typedef enum {
    CP_CONDOP_NONE = 0, /* ConditionalOperator absent (AND) */
    CP_CONDOP_AND,
    CP_CONDOP_OR,
} cp_condop;

/* Everything expression-related in one request. A cp_slice with p == NULL and an array pointer
 * == NULL mean "parameter absent" (an empty string or an empty map is present). Borrowed for
 * the duration of cp_expr_compile only. */
typedef struct cp_expr_input {
    cp_expr_op op;
    cp_slice update;        /* UpdateExpression */
    cp_slice condition;     /* ConditionExpression */
    cp_slice key_condition; /* KeyConditionExpression */
    cp_slice filter;        /* FilterExpression */
    cp_slice projection;    /* ProjectionExpression */
    /* ExpressionAttributeNames as an encoded item whose attributes are "#tokens" holding S
     * values (see cp_expr_names_from_json); ExpressionAttributeValues as an encoded item whose
     * attributes are ":tokens" (cp_item_from_json of the request map). */
    cp_slice names;
    cp_slice values;

    const cp_legacy_cond *expected; /* Expected */
    size_t n_expected;
    const cp_legacy_cond *key_conditions; /* KeyConditions */
    size_t n_key_conditions;
    const cp_legacy_cond *filter_conds; /* QueryFilter (QUERY) or ScanFilter (SCAN) */
    size_t n_filter_conds;
    cp_condop conditional_op;                  /* ConditionalOperator */
    const cp_legacy_update *attribute_updates; /* AttributeUpdates */
    size_t n_attribute_updates;
    const cp_slice *attributes_to_get; /* AttributesToGet */
    size_t n_attributes_to_get;
} cp_expr_input;

typedef struct cp_expr cp_expr;

/*
 * Validate and compile all expression parameters of one request. On CP_OK *out is a new
 * cp_expr (one allocation arena; free with cp_expr_free) that owns copies of everything it
 * needs, so `in` and the buffers it points to may go away.
 *
 * Returns CP_EINVAL with err->msg holding the ValidationException text DynamoDB gives (syntax
 * errors, undefined/unused placeholders, reserved words, overlapping paths, size and operator
 * limits, legacy/expression mixing, legacy parameter shape errors, ...).
 */
int cp_expr_compile(const cp_expr_input *in, cp_expr **out, cp_err *err);
/* Release a compiled expression. NULL is a no-op. */
void cp_expr_free(cp_expr *e);

/* What the request asked for (after legacy conversion). */
int cp_expr_has_condition(const cp_expr *e);  /* ConditionExpression or Expected */
int cp_expr_has_filter(const cp_expr *e);     /* FilterExpression, QueryFilter or ScanFilter */
int cp_expr_has_update(const cp_expr *e);     /* UpdateExpression or AttributeUpdates */
int cp_expr_has_projection(const cp_expr *e); /* ProjectionExpression or AttributesToGet */
int cp_expr_has_key_condition(const cp_expr *e);

/* ---- Checks that need the table ---- */

/* The key schema of the table (or of the index a Query reads). Names are borrowed. */
typedef struct cp_expr_keys {
    cp_slice hash_name;
    cp_av_type hash_type;  /* CP_AV_S, CP_AV_N or CP_AV_B */
    cp_slice range_name;   /* len 0 when there is no sort key */
    cp_av_type range_type; /* 0 when there is no sort key */
} cp_expr_keys;

/*
 * Writes: the update must not touch key attributes ("One or more parameter values were
 * invalid: Cannot update attribute pk. This attribute is part of the key") and no document
 * path of the update, condition or projection may dereference a key attribute ("Key attributes
 * must be scalars; ..."). CP_EINVAL with DynamoDB's text, else CP_OK.
 */
int cp_expr_check_keys(const cp_expr *e, const cp_expr_keys *keys, cp_err *err);

/* The range part of a key condition; values match cp_range_op in table/store.h. */
typedef enum {
    CP_KEY_RANGE_NONE = 0,
    CP_KEY_RANGE_EQ,
    CP_KEY_RANGE_LT,
    CP_KEY_RANGE_LE,
    CP_KEY_RANGE_GT,
    CP_KEY_RANGE_GE,
    CP_KEY_RANGE_BETWEEN,
    CP_KEY_RANGE_BEGINS_WITH,
} cp_key_range_op;

/* A resolved key condition. The views borrow the cp_expr: valid until cp_expr_free. */
typedef struct cp_key_cond {
    cp_av hash;         /* the partition key value */
    cp_key_range_op op; /* sort key condition, NONE when absent */
    cp_av r1, r2;       /* its operands (r2 for BETWEEN) */
} cp_key_cond;

/*
 * Query: resolve KeyConditionExpression / KeyConditions against the key schema being queried
 * ("Query condition missed key schema element: pk", "Query key condition not supported",
 * "One or more parameter values were invalid: Condition parameter type does not match schema
 * type", ...), and check that the filter uses no key attribute ("Filter Expression can only
 * contain non-primary key attributes: Primary key attribute: sk") and that no path dereferences
 * a key. CP_EINVAL with DynamoDB's text, CP_ENOTFOUND when the request has no key condition
 * ("Either the KeyConditions or KeyConditionExpression parameter must be specified in the
 * request.").
 */
int cp_expr_key_condition(const cp_expr *e, const cp_expr_keys *keys, cp_key_cond *out,
                          cp_err *err);

/* ---- Evaluation (no allocation, no failure) ---- */

/* Evaluate the ConditionExpression / Expected against an item (len 0: absent, which behaves as
 * an item without attributes). 1 when it holds or when there is no condition, else 0. */
int cp_expr_eval_condition(const cp_expr *e, cp_slice item);
/* Same for FilterExpression / QueryFilter / ScanFilter. */
int cp_expr_eval_filter(const cp_expr *e, cp_slice item);

/*
 * UpdateItem: write the new item into *out (appended) from the current one (`old`, len 0 when
 * absent) and `key`, an item holding exactly the request's key attributes: it seeds a new
 * item and names the attributes the update may not touch. Every operand is read from the item
 * as it was before the update, as DynamoDB does. Without an update the result is the old item
 * (or the key).
 *
 * Returns CP_EINVAL with DynamoDB's text for runtime errors, which (unlike parse errors) carry
 * no "Invalid UpdateExpression: " prefix: "The provided expression refers to an attribute that
 * does not exist in the item", "An operand in the update expression has an incorrect data
 * type", "The document path provided in the update expression is invalid for update", number
 * overflow, "Type mismatch for attribute to update" (AttributeUpdates), "Item size to update
 * has exceeded the maximum allowed size", "One or more parameter values were invalid: Cannot
 * update attribute pk. This attribute is part of the key".
 * *out may then hold partial bytes the caller discards. Allocates scratch memory only per call.
 */
int cp_expr_apply_update(const cp_expr *e, cp_slice old, cp_slice key, cp_buf *out, cp_err *err);

/*
 * ProjectionExpression / AttributesToGet: append to *out an item with only the projected paths
 * of `item` (nested maps keep their requested members, list elements are compacted in index
 * order, paths that do not resolve are left out). Without a projection the item is copied.
 */
void cp_expr_project(const cp_expr *e, cp_slice item, cp_buf *out);
/* ReturnValues UPDATED_OLD / UPDATED_NEW: project the paths the update touched. */
void cp_expr_project_updated(const cp_expr *e, cp_slice item, cp_buf *out);

/* ---- Helpers for the API layer ---- */

/*
 * Parse an ExpressionAttributeNames JSON object ({"#n":"name",...}) from the lexer (next token
 * must be OBJ_BEGIN) into an encoded item of S values appended to *out, ready for
 * cp_expr_input.names. CP_EINVAL with a SerializationException-style message when a member is
 * not a string.
 */
int cp_expr_names_from_json(cp_json_lexer *lx, cp_buf *out, cp_err *err);

#endif
