/* SPDX-License-Identifier: MIT */
/*
 * Private declarations shared by the dynamo component's files: the api object, the one-pass
 * request reader over the JSON lexer, validation-message accumulation, expression parameters,
 * capacity arithmetic, table metadata (the store's opaque desc JSON) and DynamoDB Streams
 * bookkeeping. Not for other components.
 *
 * Error convention inside the component: helpers return CP_E* and fill a cp_err whose message
 * is the client text. CP_EINVAL is a ValidationException, except when the message starts with
 * "SerializationException" (the item decoder's convention), which becomes that exception
 * (": <text>" after it is the message; nothing after it means no message).
 */
#ifndef CP_DYNAMO_INT_H
#define CP_DYNAMO_INT_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>

#include "core/json.h"
#include "dynamo/dynamo.h"
#include "table/expr.h"

#define CP__DYNAMO_ACCOUNT "000000000000"
#define CP__DYNAMO_DAY_MS  (24 * 3600 * 1000LL)

typedef struct cp__dynamo_stats_entry {
    uint32_t table_id;
    int64_t at_ms;
    uint64_t items, bytes;
} cp__dynamo_stats_entry;

struct cp_dynamo_api {
    cp_db *db;
    cp_streams *streams;
    cp_dynamo_cfg cfg; /* defaults filled in */
    char account[32];
    unsigned char iter_key[32]; /* HMAC key of shard iterators (derived from the store uuid) */
    pthread_mutex_t mu;         /* guards the registry of deleted tables' streams and stats */
    cp__dynamo_stats_entry stats[16];
};

/* One call in progress: everything a handler needs, in one place. */
typedef struct cp__dynamo_call {
    cp_dynamo_api *api;
    const cp_aws_req *req;
    cp_http_resp *resp;
    cp_http_scratch *scratch;
    cp_json_lexer lx;
    cp_err err;
    const char *long_msg; /* full text when err.msg was too short for it (scratch memory) */
} cp__dynamo_call;

/* ---- Replies (api.c) ---- */

/* Reply the error for rc / c->err (see the convention above) and return its result. */
int cp__dynamo_fail(cp__dynamo_call *c, int rc);
/* Like cp_err_set on c->err, keeping the full text for the reply even when it is longer than
 * cp_err's buffer (AWS's messages can be). Returns code. */
int cp__dynamo_set_err(cp__dynamo_call *c, int code, const char *fmt, ...) CP_PRINTF(3, 4);
/* Reply `code` with `msg`. */
int cp__dynamo_fail_code(cp__dynamo_call *c, const char *code, const char *msg);
/* The region for ARNs (from the request's credential scope). NUL-terminated, in the scratch. */
const char *cp__dynamo_region(cp__dynamo_call *c);
/* Resolve TableName (a name or a table ARN) into a NUL-terminated name in the scratch. */
const char *cp__dynamo_table_name(cp__dynamo_call *c, cp_slice name);

/* ---- Request reading (parse.c) ---- */

/* Begin reading the body: it must be a JSON object. */
int cp__dynamo_open(cp__dynamo_call *c);
/* Next member of the current object: 1 with *name set (decoded into the scratch when it had
 * escapes), 0 after the closing brace, < 0 on malformed JSON. */
int cp__dynamo_member(cp__dynamo_call *c, cp_slice *name);
/* Member name test. */
static inline int cp__dynamo_is(cp_slice name, const char *s)
{
    return cp_slice_eq(name, cp_slice_str(s));
}
/* Typed values; each consumes one value. JSON null leaves *present 0 (CP_OK). Wrong JSON type
 * is a SerializationException. Strings are decoded (the result borrows the body or the
 * scratch). Integers take the integral part, clamped to int64. */
int cp__dynamo_str(cp__dynamo_call *c, cp_slice *out, int *present);
int cp__dynamo_int(cp__dynamo_call *c, const char *type, int64_t *out, int *present);
int cp__dynamo_bool(cp__dynamo_call *c, int *out, int *present);
int cp__dynamo_skip(cp__dynamo_call *c);
/* Start of an object / array value: 1 when one starts, 0 for null, < 0 otherwise. `what`
 * names the expected shape for the message ("map", "structure", "list"). */
int cp__dynamo_obj(cp__dynamo_call *c, const char *what);
int cp__dynamo_arr(cp__dynamo_call *c);
/* Inside an array: 1 when another element follows, 0 after the closing bracket. */
int cp__dynamo_arr_more(cp__dynamo_call *c);
/* An AttributeValue map (Item, Key, ExpressionAttributeValues) appended to out as an encoded
 * item; 0 with nothing appended for null, 1 when present. Checks attribute names (non-empty,
 * at most 64 KB). */
int cp__dynamo_item(cp__dynamo_call *c, cp_buf *out);
/* The raw JSON text of the next value (for echoing parameters back), consumed. */
int cp__dynamo_raw(cp__dynamo_call *c, cp_slice *out);
/* A growable array of `size`-byte elements in the scratch (elements move on growth). */
typedef struct cp__dynamo_vec {
    void *p;
    size_t n, cap, size;
} cp__dynamo_vec;
/* Append one zeroed element and return it. */
void *cp__dynamo_vec_push(cp__dynamo_call *c, cp__dynamo_vec *v);
/* Lists in requests that AWS bounds far lower (AttributeDefinitions, AttributeValueList,
 * legacy condition maps...) are refused past this many elements, so a hostile body cannot
 * make us allocate per element of a 16 MB request. */
#define CP__DYNAMO_LIST_MAX 4096
/* CP_OK, or CP_EINVAL (with the message in c) once v holds CP__DYNAMO_LIST_MAX elements. */
int cp__dynamo_vec_room(cp__dynamo_call *c, const cp__dynamo_vec *v, const char *what);
/* Copy bytes into the scratch (stable for the request). */
cp_slice cp__dynamo_keep(cp__dynamo_call *c, cp_slice s);

/* What a member reader returns for a member it does not know (the value is then skipped). */
#define CP__DYNAMO_UNKNOWN 2
/* Called per member of the request object: read the value and return 0 or 1, or return
 * CP__DYNAMO_UNKNOWN to have it skipped, or < 0 on error (c->err). */
typedef int (*cp__dynamo_member_fn)(cp__dynamo_call *c, cp_slice name, void *ctx);
/* Read the whole request object. A validation error of a value that was read whole is kept in
 * *deferred (code != CP_OK) and reading goes on, so that a later SerializationException wins
 * (AWS checks the shape first); other errors end reading (< 0, c->err). */
int cp__dynamo_read_request(cp__dynamo_call *c, cp__dynamo_member_fn fn, void *ctx,
                            cp_err *deferred);

/* Validation errors in AWS's "N validation errors detected: ..." envelope. */
typedef struct cp__dynamo_verr {
    int n;
    cp_buf msg;
} cp__dynamo_verr;

/* Add "Value '<value>' at '<path>' failed to satisfy constraint: <rule>" (value NULL: null). */
void cp__dynamo_verr_add(cp__dynamo_verr *v, const char *value, const char *path, const char *rule);
/* Same with a slice value. */
void cp__dynamo_verr_add_s(cp__dynamo_verr *v, cp_slice value, const char *path, const char *rule);
/* CP_OK when nothing was added, else CP_EINVAL with the envelope in c's error. Frees v. */
int cp__dynamo_verr_done(cp__dynamo_verr *v, cp__dynamo_call *c);
/* Table-name constraints (3..255 of [a-zA-Z0-9_.-]) for `path`; value absent when !present. */
void cp__dynamo_check_table_name(cp__dynamo_verr *v, cp_slice name, int present, const char *path);
/* Enum constraint: index of s in the NULL-terminated list, or -1 after adding the error
 * ("Member must satisfy enum value set: [...]", list printed as given in `shown`). */
int cp__dynamo_check_enum(cp__dynamo_verr *v, cp_slice s, const char *path, const char *const *list,
                          const char *shown);

/* ---- Expression parameters (parse.c) ---- */

typedef struct cp__dynamo_exprs {
    cp_expr_input in;
    cp_buf names, values;  /* encoded maps behind in.names / in.values */
    cp_slice names_raw;    /* raw JSON of ExpressionAttributeNames, for echoing */
    int filter_from_query; /* filter_conds came from QueryFilter (else ScanFilter) */
} cp__dynamo_exprs;

/* If `name` is an expression-related member (ConditionExpression, UpdateExpression,
 * KeyConditionExpression, FilterExpression, ProjectionExpression, ExpressionAttributeNames,
 * ExpressionAttributeValues, Expected, AttributeUpdates, KeyConditions, QueryFilter,
 * ScanFilter, ConditionalOperator, AttributesToGet), read its value into x and return 1;
 * CP__DYNAMO_UNKNOWN when it is not one (nothing consumed); < 0 on error. Enum violations are added
 * to verr. */
int cp__dynamo_exprs_member(cp__dynamo_call *c, cp_slice name, cp__dynamo_exprs *x,
                            cp__dynamo_verr *verr);
/* Compile (err filled on failure). *out is NULL-safe to free. */
int cp__dynamo_exprs_compile(cp__dynamo_call *c, cp__dynamo_exprs *x, cp_expr_op op, cp_expr **out);
void cp__dynamo_exprs_free(cp__dynamo_exprs *x);

/* ---- Tables (control.c) ---- */

/* Billing settings and other metadata kept in cp_table_info.desc. */
typedef struct cp__dynamo_tmeta {
    int provisioned;
    int64_t rcu, wcu;
} cp__dynamo_tmeta;

/* Look the table up for a data-plane call: ResourceNotFoundException text on CP_ENOTFOUND.
 * On CP_OK *out must be cleared with cp_table_info_clear. */
int cp__dynamo_table(cp__dynamo_call *c, const char *name, cp_table_info *out);
/* Billing mode from the table's desc. */
void cp__dynamo_table_meta(const cp_table_info *t, cp__dynamo_tmeta *out);
/* Key schema in the expression module's shape (borrows t). */
cp_expr_keys cp__dynamo_expr_keys(const cp_table_info *t);

/* ---- Capacity (capacity.c) ---- */

typedef enum { CP__RCC_NONE = 0, CP__RCC_TOTAL, CP__RCC_INDEXES } cp__dynamo_rcc;

/* Parse ReturnConsumedCapacity (constraint error added to v when unknown). */
cp__dynamo_rcc cp__dynamo_rcc_parse(cp__dynamo_verr *v, cp_slice s, int present);
/* Units for one item of `bytes` (reads: 4 KB steps, halved when eventually consistent, at least
 * one step; writes: 1 KB steps, at least one). */
double cp__dynamo_read_units(size_t bytes, int consistent);
double cp__dynamo_write_units(size_t bytes);
/* Append ,"ConsumedCapacity":{...} for one table (nothing for NONE). */
void cp__dynamo_put_capacity(cp_buf *out, cp__dynamo_rcc mode, const char *table, double units,
                             int comma);
/* One {"TableName":..,"CapacityUnits":..} entry of a ConsumedCapacity list. */
void cp__dynamo_capacity_entry(cp_buf *out, cp__dynamo_rcc mode, const char *table, double units);
/* Ask the throttle hook; CP_OK or CP_EAGAIN. */
int cp__dynamo_admit(cp__dynamo_call *c, const cp_table_info *t, cp_slice item, double read_units,
                     double write_units);
/* Reply the throttling exception for the table's billing mode. */
int cp__dynamo_fail_throttled(cp__dynamo_call *c, const cp_table_info *t);

/* ---- Items (items.c) ---- */

/* The condition / update callbacks the store runs (ctx = cp_expr *, resp. cp__dynamo_upd *). */
int cp__dynamo_cond_cb(void *ctx, cp_slice cur, cp_err *err);
typedef struct cp__dynamo_upd {
    const cp_expr *expr;
    cp_slice key;
} cp__dynamo_upd;
int cp__dynamo_update_cb(void *ctx, cp_slice cur, cp_buf *out, cp_err *err);
/* Key check for a Key parameter (exact key attributes) or an Item (whole_item). */
int cp__dynamo_check_key(cp__dynamo_call *c, const cp_table_info *t, cp_slice item, int whole_item);
/* Append the identity of an item's key (table id + key bytes) for duplicate detection. */
void cp__dynamo_key_id(const cp_table_info *t, cp_slice item, cp_buf *out);

/* ---- Operations ---- */

int cp__dynamo_create_table(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_describe_table(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_list_tables(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_delete_table(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_update_table(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_enable_kinesis(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_disable_kinesis(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_describe_kinesis(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_update_kinesis(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_put_item(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_get_item(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_update_item(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_delete_item(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_batch_write(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_batch_get(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_transact_write(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_transact_get(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_query(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_scan(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_list_streams(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_describe_stream(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_get_shard_iterator(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__dynamo_get_records(void *ctx, const cp_aws_req *req, cp_http_resp *resp);

/* ---- DynamoDB Streams bookkeeping (streams.c) ---- */

/* A DynamoDB stream of a table: the window [from, to) of the change log it covers. */
typedef struct cp__dynamo_stream {
    char table[CP_NAME_MAX];
    uint32_t table_id;
    cp_key_schema key;
    char view[32];
    int64_t label_ms;  /* creation time: the StreamLabel */
    uint64_t from, to; /* to = UINT64_MAX while enabled */
    int64_t ended_ms;  /* when it was disabled (0 while enabled) */
} cp__dynamo_stream;

#define CP__DYNAMO_LABEL_MAX 96 /* room for any int fields, though labels are 23 characters */
/* "2026-11-26T04:40:00.123" for a label time into out[CP__DYNAMO_LABEL_MAX]. */
void cp__dynamo_stream_label(int64_t ms, char *out);
/* arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label> */
void cp__dynamo_stream_arn(cp__dynamo_call *c, const char *table, int64_t label_ms, cp_buf *out);
/* UpdateTable turning the stream off: record the table's current stream in desc's
 * PastStreams, ended at the log end. Runs inside the store's table edit (committer thread,
 * nothing else writing), where the log end is exactly where the stream stops. */
void cp__dynamo_stream_retire(cp_dynamo_api *api, const cp_table_info *t, cJSON *desc);
/* After DeleteTable (t as it was): keep the table's streams listable for 24 h. */
void cp__dynamo_stream_table_deleted(cp_dynamo_api *api, const cp_table_info *t);
/* The table's streams, oldest first (past ones from desc, then the current one). Appended to
 * out (cp__dynamo_stream elements, scratch). */
void cp__dynamo_streams_of_table(cp__dynamo_call *c, const cp_table_info *t, cp__dynamo_vec *out);

/* ---- Table desc JSON (control.c) ---- */

/* The table's desc as a cJSON object (an empty one when unset or unreadable); free with
 * cJSON_Delete. Members: TableId, BillingMode, RCU, WCU, BillingTime, Decreases,
 * AttributeDefinitions, Tags, DeletionProtection, TableClass, PastStreams. */
cJSON *cp__dynamo_desc_parse(const cp_table_info *t);
/* Replace t->desc with d's text. */
void cp__dynamo_desc_store(const cJSON *d, cp_table_info *t);

#endif
