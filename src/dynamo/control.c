/* SPDX-License-Identifier: MIT */
/*
 * The DynamoDB control plane: CreateTable, DescribeTable, ListTables, DeleteTable and
 * UpdateTable (the Kinesis streaming destinations are in kinesis.c). The store keeps what it needs
 * to run a table (key schema, stream settings, destinations); everything else DescribeTable reports
 * (billing, throughput, attribute definitions, tags, past streams) lives in the table's desc
 * JSON, which this file owns. Tables are ACTIVE as soon as CreateTable returns: creation is
 * synchronous and durable, so no CREATING window is ever visible.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "core/clock.h"
#include "core/mem.h"
#include "dynamo/dynamo_int.h"

/* ------------------------------------------------------------------------------------------ */
/* Table metadata                                                                              */

cJSON *cp__dynamo_desc_parse(const cp_table_info *t)
{
    cJSON *d = t->desc.len ? cJSON_ParseWithLength(t->desc.p, t->desc.len) : NULL;
    if (!cJSON_IsObject(d)) {
        cJSON_Delete(d);
        d = cJSON_CreateObject();
    }
    return d;
}

void cp__dynamo_desc_store(const cJSON *d, cp_table_info *t)
{
    char *s = cJSON_PrintUnformatted(d);
    cp_buf_reset(&t->desc);
    cp_buf_puts(&t->desc, s);
    cJSON_free(s);
}

static int64_t num_member(const cJSON *d, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, name);
    return cJSON_IsNumber(v) ? (int64_t) v->valuedouble : 0;
}

static const char *str_member(const cJSON *d, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void set_num(cJSON *d, const char *name, double v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(d, name);
    cJSON_AddNumberToObject(d, name, v);
}

static void set_str(cJSON *d, const char *name, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(d, name);
    cJSON_AddStringToObject(d, name, v);
}

void cp__dynamo_table_meta(const cp_table_info *t, cp__dynamo_tmeta *out)
{
    cJSON *d = cp__dynamo_desc_parse(t);
    const char *mode = str_member(d, "BillingMode");
    out->provisioned = mode && strcmp(mode, "PROVISIONED") == 0;
    out->rcu = num_member(d, "RCU");
    out->wcu = num_member(d, "WCU");
    cJSON_Delete(d);
}

cp_expr_keys cp__dynamo_expr_keys(const cp_table_info *t)
{
    return (cp_expr_keys){cp_slice_str(t->key.hash_name), t->key.hash_type,
                          cp_slice_str(t->key.range_name), t->key.range_type};
}

int cp__dynamo_table(cp__dynamo_call *c, const char *name, cp_table_info *out)
{
    int rc = cp_db_get_table(c->api->db, name, out, &c->err);
    if (rc == CP_ENOTFOUND) {
        /* The data plane does not name the table. */
        cp_err_set(&c->err, rc, "Requested resource not found");
    }
    return rc;
}

/* ItemCount / TableSizeBytes. AWS refreshes them about every six hours; a short cache keeps a
 * polling DescribeTable from scanning a large table on every call. */
static void table_stats(cp_dynamo_api *api, uint32_t id, uint64_t *items, uint64_t *bytes)
{
    int64_t now = cp_clock_now_ms();
    size_t slot = id % (sizeof(api->stats) / sizeof(api->stats[0]));
    pthread_mutex_lock(&api->mu);
    cp__dynamo_stats_entry e = api->stats[slot];
    pthread_mutex_unlock(&api->mu);
    if (api->cfg.stats_max_age_ms > 0 && e.table_id == id &&
        now - e.at_ms <= api->cfg.stats_max_age_ms) {
        *items = e.items;
        *bytes = e.bytes;
        return;
    }
    *items = *bytes = 0;
    cp_db_table_stats(api->db, id, items, bytes, NULL);
    pthread_mutex_lock(&api->mu);
    api->stats[slot] = (cp__dynamo_stats_entry){id, now, *items, *bytes};
    pthread_mutex_unlock(&api->mu);
}

/* Epoch seconds with milliseconds, the shape of every DynamoDB timestamp. */
static void put_time(cp_buf *out, int64_t ms)
{
    cp_buf_printf(out, "%lld.%03lld", (long long) (ms / 1000), (long long) (ms % 1000));
}

static void put_table_arn(cp__dynamo_call *c, const char *name, cp_buf *out)
{
    cp_buf arn = CP_BUF_INIT;
    cp_buf_printf(&arn, "arn:aws:dynamodb:%s:%s:table/%s", cp__dynamo_region(c), c->api->account,
                  name);
    cp_json_put_str(out, cp_buf_slice(&arn));
    cp_buf_free(&arn);
}

/* The TableDescription shape shared by Create/Describe/Update/DeleteTable. */
static void put_description(cp__dynamo_call *c, const cp_table_info *t, const char *status,
                            int stats, cp_buf *out)
{
    cJSON *d = cp__dynamo_desc_parse(t);
    const cJSON *defs = cJSON_GetObjectItemCaseSensitive(d, "AttributeDefinitions");
    if (cJSON_IsArray(defs)) {
        char *s = cJSON_PrintUnformatted(defs);
        cp_buf_printf(out, "{\"AttributeDefinitions\":%s", s);
        cJSON_free(s);
    } else {
        cp_buf_printf(out, "{\"AttributeDefinitions\":[{\"AttributeName\":");
        cp_json_put_str(out, cp_slice_str(t->key.hash_name));
        cp_buf_printf(out, ",\"AttributeType\":\"%s\"}", cp_av_type_name(t->key.hash_type));
        if (t->key.range_type) {
            cp_buf_puts(out, ",{\"AttributeName\":");
            cp_json_put_str(out, cp_slice_str(t->key.range_name));
            cp_buf_printf(out, ",\"AttributeType\":\"%s\"}", cp_av_type_name(t->key.range_type));
        }
        cp_buf_putc(out, ']');
    }
    cp_buf_puts(out, ",\"TableName\":");
    cp_json_put_str(out, cp_slice_str(t->name));
    cp_buf_puts(out, ",\"KeySchema\":[{\"AttributeName\":");
    cp_json_put_str(out, cp_slice_str(t->key.hash_name));
    cp_buf_puts(out, ",\"KeyType\":\"HASH\"}");
    if (t->key.range_type) {
        cp_buf_puts(out, ",{\"AttributeName\":");
        cp_json_put_str(out, cp_slice_str(t->key.range_name));
        cp_buf_puts(out, ",\"KeyType\":\"RANGE\"}");
    }
    cp_buf_printf(out, "],\"TableStatus\":\"%s\",\"CreationDateTime\":", status);
    put_time(out, t->created_ms);

    const char *mode = str_member(d, "BillingMode");
    int ppr = !mode || strcmp(mode, "PAY_PER_REQUEST") == 0;
    cp_buf_printf(out, ",\"ProvisionedThroughput\":{");
    if (num_member(d, "LastIncrease")) {
        cp_buf_puts(out, "\"LastIncreaseDateTime\":");
        put_time(out, num_member(d, "LastIncrease"));
        cp_buf_putc(out, ',');
    }
    if (num_member(d, "LastDecrease")) {
        cp_buf_puts(out, "\"LastDecreaseDateTime\":");
        put_time(out, num_member(d, "LastDecrease"));
        cp_buf_putc(out, ',');
    }
    cp_buf_printf(out,
                  "\"NumberOfDecreasesToday\":%lld,\"ReadCapacityUnits\":%lld,"
                  "\"WriteCapacityUnits\":%lld}",
                  (long long) num_member(d, "Decreases"),
                  ppr ? 0LL : (long long) num_member(d, "RCU"),
                  ppr ? 0LL : (long long) num_member(d, "WCU"));
    uint64_t items = 0, bytes = 0;
    if (stats) {
        table_stats(c->api, t->id, &items, &bytes);
    }
    cp_buf_printf(out, ",\"TableSizeBytes\":%llu,\"ItemCount\":%llu,\"TableArn\":",
                  (unsigned long long) bytes, (unsigned long long) items);
    put_table_arn(c, t->name, out);
    const char *id = str_member(d, "TableId");
    if (id) {
        cp_buf_puts(out, ",\"TableId\":");
        cp_json_put_str(out, cp_slice_str(id));
    }
    cp_buf_printf(out, ",\"BillingModeSummary\":{\"BillingMode\":\"%s\"",
                  ppr ? "PAY_PER_REQUEST" : "PROVISIONED");
    if (ppr) {
        cp_buf_puts(out, ",\"LastUpdateToPayPerRequestDateTime\":");
        put_time(out, num_member(d, "BillingTime") ? num_member(d, "BillingTime") : t->created_ms);
    }
    cp_buf_putc(out, '}');

    cp__dynamo_vec streams = {.size = sizeof(cp__dynamo_stream)};
    cp__dynamo_streams_of_table(c, t, &streams);
    if (t->stream_view[0]) {
        cp_buf_printf(out,
                      ",\"StreamSpecification\":{\"StreamEnabled\":true,\"StreamViewType\":"
                      "\"%s\"}",
                      t->stream_view);
    } else if (streams.n) {
        cp_buf_puts(out, ",\"StreamSpecification\":{\"StreamEnabled\":false}");
    }
    if (streams.n) {
        /* The newest stream stays "latest" after it is disabled, as on AWS. */
        const cp__dynamo_stream *s = (const cp__dynamo_stream *) streams.p + (streams.n - 1);
        char label[CP__DYNAMO_LABEL_MAX];
        cp__dynamo_stream_label(s->label_ms, label);
        cp_buf_printf(out, ",\"LatestStreamLabel\":\"%s\",\"LatestStreamArn\":", label);
        cp_buf arn = CP_BUF_INIT;
        cp__dynamo_stream_arn(c, t->name, s->label_ms, &arn);
        cp_json_put_str(out, cp_buf_slice(&arn));
        cp_buf_free(&arn);
    }
    const char *cls = str_member(d, "TableClass");
    if (cls) {
        cp_buf_printf(out, ",\"TableClassSummary\":{\"TableClass\":\"%s\"}", cls);
    }
    cp_buf_printf(
        out, ",\"DeletionProtectionEnabled\":%s",
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "DeletionProtection")) ? "true" : "false");
    /* A table never configured with warm throughput reports the on-demand baseline. */
    cp_buf_puts(out, ",\"WarmThroughput\":{\"ReadUnitsPerSecond\":12000,\"WriteUnitsPerSecond\":"
                     "4000,\"Status\":\"ACTIVE\"}}");
    cJSON_Delete(d);
}

/* ------------------------------------------------------------------------------------------ */
/* Request reading                                                                             */

/* A two-string structure: AttributeDefinition, KeySchemaElement, Tag. */
typedef struct pair {
    cp_slice a, b;
    int has_a, has_b;
} pair;

/* "a, b, c": the first members of n pairs, as AWS lists attribute names in messages. */
static void put_names(cp_buf *m, const pair *p, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        cp_buf_printf(m, "%s%.*s", k ? ", " : "", (int) p[k].a.len, p[k].a.p);
    }
}

/* A list of pairs with member names ka/kb. */
static int read_pairs(cp__dynamo_call *c, const char *ka, const char *kb, cp__dynamo_vec *v,
                      int *present)
{
    v->size = sizeof(pair);
    int rc = cp__dynamo_arr(c);
    *present = rc == 1;
    if (rc <= 0) {
        return rc;
    }
    while ((rc = cp__dynamo_arr_more(c)) == 1) {
        if ((rc = cp__dynamo_obj(c, "structure")) < 0) {
            return rc;
        }
        if (rc == 0) {
            continue;
        }
        if ((rc = cp__dynamo_vec_room(c, v, ka)) < 0) {
            return rc;
        }
        pair *p = cp__dynamo_vec_push(c, v);
        cp_slice m;
        while ((rc = cp__dynamo_member(c, &m)) == 1) {
            if (cp__dynamo_is(m, ka)) {
                rc = cp__dynamo_str(c, &p->a, &p->has_a);
            } else if (cp__dynamo_is(m, kb)) {
                rc = cp__dynamo_str(c, &p->b, &p->has_b);
            } else {
                rc = cp__dynamo_skip(c);
            }
            if (rc < 0) {
                return rc;
            }
        }
        if (rc < 0) {
            return rc;
        }
    }
    return rc;
}

typedef struct table_req {
    cp_slice table;
    int has_table;
    cp__dynamo_vec defs, keys, tags;
    int has_defs, has_keys, has_tags;
    cp_slice billing;
    int has_billing;
    int has_pt, has_rcu, has_wcu;
    int64_t rcu, wcu;
    int has_ss, has_enabled, has_view, enabled;
    cp_slice view;
    int has_gsi, has_lsi, has_gsi_updates, has_sse, has_replicas;
    int dp, has_dp;
    cp_slice table_class;
    int has_class;
    cp_slice start; /* ListTables ExclusiveStartTableName */
    int has_start;
    int64_t limit;
    int has_limit;
} table_req;

static int not_null_obj(cp__dynamo_call *c, int *present)
{
    cp_json_tok t;
    cp_json_lexer save = c->lx;
    if (cp_json_next(&c->lx, &t) < 0) {
        return cp_err_set(&c->err, CP_EINVAL, "SerializationException");
    }
    c->lx = save;
    if (t.type == CP_JSON_NULL) {
        *present = 0;
        return cp__dynamo_skip(c);
    }
    *present = 1;
    return cp__dynamo_skip(c);
}

static int table_member(cp__dynamo_call *c, cp_slice name, void *ctx)
{
    table_req *r = ctx;
    int rc;
    if (cp__dynamo_is(name, "TableName")) {
        return cp__dynamo_str(c, &r->table, &r->has_table);
    }
    if (cp__dynamo_is(name, "AttributeDefinitions")) {
        return read_pairs(c, "AttributeName", "AttributeType", &r->defs, &r->has_defs);
    }
    if (cp__dynamo_is(name, "KeySchema")) {
        return read_pairs(c, "AttributeName", "KeyType", &r->keys, &r->has_keys);
    }
    if (cp__dynamo_is(name, "Tags")) {
        return read_pairs(c, "Key", "Value", &r->tags, &r->has_tags);
    }
    if (cp__dynamo_is(name, "BillingMode")) {
        return cp__dynamo_str(c, &r->billing, &r->has_billing);
    }
    if (cp__dynamo_is(name, "TableClass")) {
        return cp__dynamo_str(c, &r->table_class, &r->has_class);
    }
    if (cp__dynamo_is(name, "DeletionProtectionEnabled")) {
        return cp__dynamo_bool(c, &r->dp, &r->has_dp);
    }
    if (cp__dynamo_is(name, "ExclusiveStartTableName")) {
        return cp__dynamo_str(c, &r->start, &r->has_start);
    }
    if (cp__dynamo_is(name, "Limit")) {
        return cp__dynamo_int(c, "Integer", &r->limit, &r->has_limit);
    }
    if (cp__dynamo_is(name, "GlobalSecondaryIndexes")) {
        return not_null_obj(c, &r->has_gsi);
    }
    if (cp__dynamo_is(name, "LocalSecondaryIndexes")) {
        return not_null_obj(c, &r->has_lsi);
    }
    if (cp__dynamo_is(name, "GlobalSecondaryIndexUpdates")) {
        return not_null_obj(c, &r->has_gsi_updates);
    }
    if (cp__dynamo_is(name, "SSESpecification")) {
        return not_null_obj(c, &r->has_sse);
    }
    if (cp__dynamo_is(name, "ReplicaUpdates")) {
        return not_null_obj(c, &r->has_replicas);
    }
    if (cp__dynamo_is(name, "ProvisionedThroughput")) {
        if ((rc = cp__dynamo_obj(c, "structure")) <= 0) {
            return rc;
        }
        r->has_pt = 1;
        cp_slice m;
        while ((rc = cp__dynamo_member(c, &m)) == 1) {
            if (cp__dynamo_is(m, "ReadCapacityUnits")) {
                rc = cp__dynamo_int(c, "Long", &r->rcu, &r->has_rcu);
            } else if (cp__dynamo_is(m, "WriteCapacityUnits")) {
                rc = cp__dynamo_int(c, "Long", &r->wcu, &r->has_wcu);
            } else {
                rc = cp__dynamo_skip(c);
            }
            if (rc < 0) {
                return rc;
            }
        }
        return rc;
    }
    if (cp__dynamo_is(name, "StreamSpecification")) {
        if ((rc = cp__dynamo_obj(c, "structure")) <= 0) {
            return rc;
        }
        r->has_ss = 1;
        cp_slice m;
        while ((rc = cp__dynamo_member(c, &m)) == 1) {
            if (cp__dynamo_is(m, "StreamEnabled")) {
                rc = cp__dynamo_bool(c, &r->enabled, &r->has_enabled);
            } else if (cp__dynamo_is(m, "StreamViewType")) {
                rc = cp__dynamo_str(c, &r->view, &r->has_view);
            } else {
                rc = cp__dynamo_skip(c);
            }
            if (rc < 0) {
                return rc;
            }
        }
        return rc;
    }
    return CP__DYNAMO_UNKNOWN;
}

static const char *const VIEW_NAMES[] = {"NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES",
                                         "KEYS_ONLY", NULL};
static const char VIEW_SHOWN[] = "NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES, KEYS_ONLY";
static const char *const BILLING_NAMES[] = {"PROVISIONED", "PAY_PER_REQUEST", NULL};

/* Constraint checks shared by CreateTable and UpdateTable. */
static void check_common(cp__dynamo_verr *v, table_req *r)
{
    if (r->has_billing) {
        cp__dynamo_check_enum(v, r->billing, "billingMode", BILLING_NAMES,
                              "PROVISIONED, PAY_PER_REQUEST");
    }
    if (r->has_pt) {
        if (!r->has_wcu) {
            cp__dynamo_verr_add(v, NULL, "provisionedThroughput.writeCapacityUnits",
                                "Member must not be null");
        } else if (r->wcu < 1) {
            char val[32];
            snprintf(val, sizeof(val), "%lld", (long long) r->wcu);
            cp__dynamo_verr_add(v, val, "provisionedThroughput.writeCapacityUnits",
                                "Member must have value greater than or equal to 1");
        }
        if (!r->has_rcu) {
            cp__dynamo_verr_add(v, NULL, "provisionedThroughput.readCapacityUnits",
                                "Member must not be null");
        } else if (r->rcu < 1) {
            char val[32];
            snprintf(val, sizeof(val), "%lld", (long long) r->rcu);
            cp__dynamo_verr_add(v, val, "provisionedThroughput.readCapacityUnits",
                                "Member must have value greater than or equal to 1");
        }
    }
    if (r->has_ss) {
        if (!r->has_enabled) {
            cp__dynamo_verr_add(v, NULL, "streamSpecification.streamEnabled",
                                "Member must not be null");
        }
        if (r->has_view) {
            cp__dynamo_check_enum(v, r->view, "streamSpecification.streamViewType", VIEW_NAMES,
                                  VIEW_SHOWN);
        }
    }
}

static int check_table_class(cp__dynamo_call *c, const table_req *r)
{
    if (r->has_class && !cp_slice_eq(r->table_class, CP_SLICE("STANDARD")) &&
        !cp_slice_eq(r->table_class, CP_SLICE("STANDARD_INFREQUENT_ACCESS"))) {
        return cp_err_set(&c->err, CP_EINVAL,
                          "Invalid table-class parameter provided. Please try again with a valid "
                          "table-class value: [STANDARD, STANDARD_INFREQUENT_ACCESS].");
    }
    return CP_OK;
}

static void random_uuid(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t) sizeof(b)) {
        uint64_t x = (uint64_t) cp_clock_mono_ns() ^ 0x9e3779b97f4a7c15ULL;
        for (int i = 0; i < 16; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[i] = (unsigned char) x;
        }
    }
    b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* ------------------------------------------------------------------------------------------ */
/* CreateTable                                                                                 */

static int create_validate(cp__dynamo_call *c, table_req *r)
{
    cp__dynamo_verr v = {0};
    if (!r->has_defs) {
        cp__dynamo_verr_add(&v, NULL, "attributeDefinitions", "Member must not be null");
    }
    const pair *defs = r->defs.p, *keys = r->keys.p;
    for (size_t i = 0; i < r->defs.n; i++) {
        char path[96];
        snprintf(path, sizeof(path), "attributeDefinitions.%zu.member.attributeName", i + 1);
        if (!defs[i].has_a) {
            cp__dynamo_verr_add(&v, NULL, path, "Member must not be null");
        }
        snprintf(path, sizeof(path), "attributeDefinitions.%zu.member.attributeType", i + 1);
        if (!defs[i].has_b) {
            cp__dynamo_verr_add(&v, NULL, path, "Member must not be null");
        } else {
            static const char *const types[] = {"B", "N", "S", NULL};
            cp__dynamo_check_enum(&v, defs[i].b, path, types, "B, N, S");
        }
    }
    cp__dynamo_check_table_name(&v, r->table, r->has_table, "tableName");
    check_common(&v, r);
    if (!r->has_keys) {
        cp__dynamo_verr_add(&v, NULL, "keySchema", "Member must not be null");
    } else if (r->keys.n < 1 || r->keys.n > 2) {
        cp__dynamo_verr_add(&v, r->keys.n ? "[...]" : "[]", "keySchema",
                            r->keys.n < 1 ? "Member must have length greater than or equal to 1"
                                          : "Member must have length less than or equal to 2");
    }
    for (size_t i = 0; i < r->keys.n; i++) {
        char path[96];
        snprintf(path, sizeof(path), "keySchema.%zu.member.attributeName", i + 1);
        if (!keys[i].has_a) {
            cp__dynamo_verr_add(&v, NULL, path, "Member must not be null");
        } else if (keys[i].a.len < 1 || keys[i].a.len > 255) {
            cp__dynamo_verr_add_s(&v, keys[i].a, path,
                                  keys[i].a.len < 1
                                      ? "Member must have length greater than or equal to 1"
                                      : "Member must have length less than or equal to 255");
        }
        snprintf(path, sizeof(path), "keySchema.%zu.member.keyType", i + 1);
        if (!keys[i].has_b) {
            cp__dynamo_verr_add(&v, NULL, path, "Member must not be null");
        } else {
            static const char *const types[] = {"HASH", "RANGE", NULL};
            cp__dynamo_check_enum(&v, keys[i].b, path, types, "HASH, RANGE");
        }
    }
    int rc = cp__dynamo_verr_done(&v, c);
    if (rc < 0) {
        return rc;
    }

    /* Semantic rules, in dynalite's (AWS's) order. */
    int ppr = r->has_billing && cp_slice_eq(r->billing, CP_SLICE("PAY_PER_REQUEST"));
    if (ppr && r->has_pt) {
        return cp_err_set(&c->err, CP_EINVAL,
                          "One or more parameter values were invalid: Neither ReadCapacityUnits "
                          "nor WriteCapacityUnits can be specified when BillingMode is "
                          "PAY_PER_REQUEST");
    }
    if (!ppr && !r->has_pt) {
        return cp_err_set(&c->err, CP_EINVAL,
                          "One or more parameter values were invalid: ReadCapacityUnits and "
                          "WriteCapacityUnits must both be specified when BillingMode is "
                          "PROVISIONED");
    }
    if (!ppr && (r->rcu > 1000000000000LL || r->wcu > 1000000000000LL)) {
        return cp_err_set(&c->err, CP_EINVAL, "Given value %lld for %s is out of bounds",
                          (long long) (r->rcu > 1000000000000LL ? r->rcu : r->wcu),
                          r->rcu > 1000000000000LL ? "ReadCapacityUnits" : "WriteCapacityUnits");
    }
    for (size_t i = 0; i < r->defs.n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (cp_slice_eq(defs[i].a, defs[j].a)) {
                return cp_err_set(&c->err, CP_EINVAL, "Attribute Name is duplicated: %.*s",
                                  (int) defs[i].a.len, defs[i].a.p);
            }
        }
    }
    if (r->keys.n > r->defs.n) {
        return cp_err_set(&c->err, CP_EINVAL,
                          "Invalid KeySchema: Some index key attribute have no definition");
    }
    for (size_t i = 0; i < r->keys.n; i++) {
        int found = 0;
        for (size_t j = 0; j < r->defs.n; j++) {
            found |= cp_slice_eq(keys[i].a, defs[j].a);
        }
        if (!found) {
            cp_buf m = CP_BUF_INIT;
            cp_buf_puts(&m, "One or more parameter values were invalid: Some index key attributes "
                            "are not defined in AttributeDefinitions. Keys: [");
            put_names(&m, keys, r->keys.n);
            cp_buf_puts(&m, "], AttributeDefinitions: [");
            put_names(&m, defs, r->defs.n);
            cp_buf_putc(&m, ']');
            cp__dynamo_set_err(c, CP_EINVAL, "%s", m.p);
            cp_buf_free(&m);
            return CP_EINVAL;
        }
    }
    if (r->keys.n == 2 && cp_slice_eq(keys[0].a, keys[1].a)) {
        return cp_err_set(&c->err, CP_EINVAL,
                          "Both the Hash Key and the Range Key element in the KeySchema have the "
                          "same name");
    }
    if (!cp_slice_eq(keys[0].b, CP_SLICE("HASH"))) {
        return cp_err_set(&c->err, CP_EINVAL,
                          "Invalid KeySchema: The first KeySchemaElement is not a HASH key type");
    }
    if (r->keys.n == 2 && !cp_slice_eq(keys[1].b, CP_SLICE("RANGE"))) {
        return cp_err_set(&c->err, CP_EINVAL,
                          "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type");
    }
    if (r->has_gsi || r->has_lsi) {
        return cp_err_set(&c->err, CP_EINVAL, "changepipe does not support secondary indexes yet");
    }
    if (r->defs.n != r->keys.n) {
        cp_buf m = CP_BUF_INIT;
        cp_buf_puts(&m, "One or more parameter values were invalid: Some AttributeDefinitions are "
                        "not used. AttributeDefinitions: [");
        put_names(&m, defs, r->defs.n);
        cp_buf_puts(&m, "], keys used: [");
        put_names(&m, keys, r->keys.n);
        cp_buf_putc(&m, ']');
        cp__dynamo_set_err(c, CP_EINVAL, "%s", m.p);
        cp_buf_free(&m);
        return CP_EINVAL;
    }
    if (r->has_ss && r->enabled && !r->has_view) {
        return cp_err_set(&c->err, CP_EINVAL,
                          "One or more parameter values were invalid: Table is being created with "
                          "a stream enabled, UpdateViewType is required");
    }
    if (r->has_ss && !r->enabled && r->has_view) {
        return cp_err_set(&c->err, CP_EINVAL,
                          "One or more parameter values were invalid: Table is being created with "
                          "a stream disabled, UpdateViewType should not be specified");
    }
    if ((rc = check_table_class(c, r)) < 0) {
        return rc;
    }
    const pair *tags = r->tags.p;
    if (r->tags.n > 50) {
        return cp_err_set(&c->err, CP_EINVAL,
                          "Number of Tags exceed the current limit for the provided ResourceArn");
    }
    for (size_t i = 0; i < r->tags.n; i++) {
        if (!tags[i].has_a || tags[i].a.len < 1 || tags[i].a.len > 128 ||
            (tags[i].a.len >= 4 && memcmp(tags[i].a.p, "aws:", 4) == 0)) {
            return cp_err_set(&c->err, CP_EINVAL, "The Tag Key provided is invalid, Key: %.*s",
                              (int) tags[i].a.len, tags[i].a.p ? tags[i].a.p : "null");
        }
        if (!tags[i].has_b || tags[i].b.len > 256) {
            return cp_err_set(&c->err, CP_EINVAL, "The Tag Value provided is invalid, Value: %.*s",
                              (int) tags[i].b.len, tags[i].has_b ? tags[i].b.p : "null");
        }
        for (size_t j = 0; j < i; j++) {
            if (cp_slice_eq(tags[i].a, tags[j].a)) {
                return cp_err_set(&c->err, CP_EINVAL,
                                  "Duplicate Tag Keys provided as input: Duplicate Tag Key found "
                                  "%.*s",
                                  (int) tags[i].a.len, tags[i].a.p);
            }
        }
    }
    return CP_OK;
}

static cp_av_type def_type(const table_req *r, cp_slice name)
{
    const pair *defs = r->defs.p;
    for (size_t i = 0; i < r->defs.n; i++) {
        if (cp_slice_eq(defs[i].a, name)) {
            return cp_av_type_from_name(defs[i].b);
        }
    }
    return 0;
}

static cJSON *str_item(cp_slice s)
{
    char *tmp = cp_strndup(s.p ? s.p : "", s.len);
    cJSON *j = cJSON_CreateString(tmp);
    cp_free(tmp);
    return j;
}

int cp__dynamo_create_table(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    table_req r = {0};
    cp_err deferred;
    int rc = cp__dynamo_read_request(&c, table_member, &r, &deferred);
    if (rc >= 0) {
        rc = create_validate(&c, &r);
    }
    if (rc < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    const pair *keys = r.keys.p, *defs = r.defs.p, *tags = r.tags.p;
    cp_table_info t = {0};
    snprintf(t.name, sizeof(t.name), "%.*s", (int) r.table.len, r.table.p);
    snprintf(t.key.hash_name, sizeof(t.key.hash_name), "%.*s", (int) keys[0].a.len, keys[0].a.p);
    t.key.hash_type = def_type(&r, keys[0].a);
    if (r.keys.n == 2) {
        snprintf(t.key.range_name, sizeof(t.key.range_name), "%.*s", (int) keys[1].a.len,
                 keys[1].a.p);
        t.key.range_type = def_type(&r, keys[1].a);
    }
    if (r.has_ss && r.enabled) {
        snprintf(t.stream_view, sizeof(t.stream_view), "%.*s", (int) r.view.len, r.view.p);
    }
    int ppr = r.has_billing && cp_slice_eq(r.billing, CP_SLICE("PAY_PER_REQUEST"));
    cJSON *d = cJSON_CreateObject();
    char uuid[37];
    random_uuid(uuid);
    cJSON_AddStringToObject(d, "TableId", uuid);
    cJSON_AddStringToObject(d, "BillingMode", ppr ? "PAY_PER_REQUEST" : "PROVISIONED");
    cJSON_AddNumberToObject(d, "RCU", ppr ? 0 : (double) r.rcu);
    cJSON_AddNumberToObject(d, "WCU", ppr ? 0 : (double) r.wcu);
    cJSON *arr = cJSON_AddArrayToObject(d, "AttributeDefinitions");
    for (size_t i = 0; i < r.defs.n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "AttributeName", str_item(defs[i].a));
        cJSON_AddItemToObject(o, "AttributeType", str_item(defs[i].b));
        cJSON_AddItemToArray(arr, o);
    }
    if (r.tags.n) {
        arr = cJSON_AddArrayToObject(d, "Tags");
        for (size_t i = 0; i < r.tags.n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "Key", str_item(tags[i].a));
            cJSON_AddItemToObject(o, "Value", str_item(tags[i].b));
            cJSON_AddItemToArray(arr, o);
        }
    }
    if (r.has_dp && r.dp) {
        cJSON_AddTrueToObject(d, "DeletionProtection");
    }
    if (r.has_class) {
        cJSON_AddItemToObject(d, "TableClass", str_item(r.table_class));
    }
    cp__dynamo_desc_store(d, &t);
    cJSON_Delete(d);
    rc = cp_db_create_table(c.api->db, &t, &c.err);
    if (rc == CP_OK) {
        /* Created synchronously and durably: ACTIVE at once (waiters simply succeed). */
        cp_buf_puts(&resp->body, "{\"TableDescription\":");
        put_description(&c, &t, "ACTIVE", 0, &resp->body);
        cp_buf_putc(&resp->body, '}');
    } else {
        rc = cp__dynamo_fail(&c, rc);
    }
    cp_table_info_clear(&t);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* DescribeTable, ListTables, DeleteTable                                                      */

/* Read a request whose only required member is TableName and look the table up (the control
 * plane names the table in ResourceNotFoundException). */
static int named_table(cp__dynamo_call *c, table_req *r, cp_table_info *t)
{
    cp_err deferred;
    int rc = cp__dynamo_read_request(c, table_member, r, &deferred);
    if (rc < 0) {
        return rc;
    }
    cp__dynamo_verr v = {0};
    cp__dynamo_check_table_name(&v, r->table, r->has_table, "tableName");
    if ((rc = cp__dynamo_verr_done(&v, c)) < 0) {
        return rc;
    }
    return cp_db_get_table(c->api->db, cp__dynamo_table_name(c, r->table), t, &c->err);
}

int cp__dynamo_describe_table(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    table_req r = {0};
    cp_table_info t = {0};
    int rc = named_table(&c, &r, &t);
    if (rc < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    cp_buf_puts(&resp->body, "{\"Table\":");
    put_description(&c, &t, "ACTIVE", 1, &resp->body);
    cp_buf_putc(&resp->body, '}');
    cp_table_info_clear(&t);
    return CP_OK;
}

int cp__dynamo_list_tables(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    table_req r = {0};
    cp_err deferred;
    int rc = cp__dynamo_read_request(&c, table_member, &r, &deferred);
    if (rc < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    cp__dynamo_verr v = {0};
    if (r.has_start) {
        cp__dynamo_check_table_name(&v, r.start, 1, "exclusiveStartTableName");
    }
    if (r.has_limit && (r.limit < 1 || r.limit > 100)) {
        char val[32];
        snprintf(val, sizeof(val), "%lld", (long long) r.limit);
        cp__dynamo_verr_add(&v, val, "limit",
                            r.limit < 1 ? "Member must have value greater than or equal to 1"
                                        : "Member must have value less than or equal to 100");
    }
    if ((rc = cp__dynamo_verr_done(&v, &c)) < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    size_t limit = r.has_limit ? (size_t) r.limit : 100;
    cp_buf names = CP_BUF_INIT;
    size_t n = 0;
    const char *after = r.has_start ? cp_http_scratch_strdup(c.scratch, r.start) : NULL;
    /* One extra name tells whether LastEvaluatedTableName is needed. */
    cp_db_list_tables(c.api->db, after, limit + 1, &names, &n, NULL);
    cp_buf *out = &resp->body;
    cp_buf_puts(out, "{\"TableNames\":[");
    const char *p = names.p, *last = NULL;
    for (size_t i = 0; i < n && i < limit; i++) {
        cp_buf_puts(out, i ? "," : "");
        cp_json_put_str(out, cp_slice_str(p));
        last = p;
        p += strlen(p) + 1;
    }
    cp_buf_putc(out, ']');
    if (n > limit && last) {
        cp_buf_puts(out, ",\"LastEvaluatedTableName\":");
        cp_json_put_str(out, cp_slice_str(last));
    }
    cp_buf_putc(out, '}');
    cp_buf_free(&names);
    return CP_OK;
}

int cp__dynamo_delete_table(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    table_req r = {0};
    cp_table_info t = {0};
    int rc = named_table(&c, &r, &t);
    if (rc < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    cJSON *d = cp__dynamo_desc_parse(&t);
    int protected = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "DeletionProtection"));
    cJSON_Delete(d);
    cp_table_info_clear(&t);
    if (protected) {
        return cp__dynamo_fail_code(
            &c, "ValidationException",
            "Resource cannot be deleted as it is currently protected against "
            "deletion. Disable deletion protection first.");
    }
    memset(&t, 0, sizeof(t));
    rc = cp_db_delete_table(c.api->db, cp__dynamo_table_name(&c, r.table), &t, &c.err);
    if (rc < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    cp__dynamo_stream_table_deleted(c.api, &t);
    cp_buf_puts(&resp->body, "{\"TableDescription\":");
    put_description(&c, &t, "DELETING", 0, &resp->body);
    cp_buf_putc(&resp->body, '}');
    cp_table_info_clear(&t);
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* UpdateTable                                                                                 */

typedef struct update_ctx {
    cp_dynamo_api *api;
    table_req *r;
    int same_throughput; /* refused: the requested throughput equals the current one */
    int64_t cur_rcu, cur_wcu;
} update_ctx;

/* Runs on the store's committer thread with the current table: must not block. */
static int update_edit(void *arg, cp_table_info *t, cp_err *err)
{
    update_ctx *u = arg;
    table_req *r = u->r;
    cJSON *d = cp__dynamo_desc_parse(t);
    int rc = CP_OK;
    const char *mode = str_member(d, "BillingMode");
    int was_ppr = !mode || strcmp(mode, "PAY_PER_REQUEST") == 0;
    int ppr = r->has_billing ? cp_slice_eq(r->billing, CP_SLICE("PAY_PER_REQUEST")) : was_ppr;
    int64_t now = cp_clock_now_ms();
    if (r->has_billing || r->has_pt) {
        if (ppr && r->has_pt) {
            rc = cp_err_set(
                err, CP_EINVAL,
                r->has_billing ? "One or more parameter values were invalid: Neither "
                                 "ReadCapacityUnits nor WriteCapacityUnits can be specified when "
                                 "BillingMode is PAY_PER_REQUEST"
                               : "One or more parameter values were invalid: ProvisionedThroughput "
                                 "cannot be specified when BillingMode is PAY_PER_REQUEST");
        } else if (!ppr && was_ppr && !r->has_pt) {
            rc = cp_err_set(err, CP_EINVAL,
                            "One or more parameter values were invalid: ProvisionedThroughput "
                            "must be specified when BillingMode is PROVISIONED");
        } else if (!ppr && r->has_pt && !was_ppr && r->rcu == num_member(d, "RCU") &&
                   r->wcu == num_member(d, "WCU") && !r->has_ss) {
            /* The message outgrows cp_err: the handler words it from these. */
            u->same_throughput = 1;
            u->cur_rcu = num_member(d, "RCU");
            u->cur_wcu = num_member(d, "WCU");
            rc = cp_err_set(err, CP_EINVAL,
                            "The provisioned throughput for the table will not "
                            "change.");
        } else {
            if (ppr != was_ppr) {
                set_str(d, "BillingMode", ppr ? "PAY_PER_REQUEST" : "PROVISIONED");
                if (ppr) {
                    set_num(d, "BillingTime", (double) now);
                }
            }
            if (!ppr && r->has_pt) {
                int64_t old_r = num_member(d, "RCU"), old_w = num_member(d, "WCU");
                if (!was_ppr && (r->rcu < old_r || r->wcu < old_w)) {
                    set_num(d, "LastDecrease", (double) now);
                    set_num(d, "Decreases", (double) (num_member(d, "Decreases") + 1));
                }
                if (!was_ppr && (r->rcu > old_r || r->wcu > old_w)) {
                    set_num(d, "LastIncrease", (double) now);
                }
                set_num(d, "RCU", (double) r->rcu);
                set_num(d, "WCU", (double) r->wcu);
            }
        }
    }
    if (rc == CP_OK && r->has_ss) {
        if (r->enabled && t->stream_view[0]) {
            rc = cp_err_set(err, CP_EINVAL, "Table already has an enabled stream: TableName: %s",
                            t->name);
        } else if (!r->enabled && !t->stream_view[0]) {
            rc = cp_err_set(err, CP_EINVAL, "Table has no stream to disable: TableName: %s",
                            t->name);
        } else if (r->enabled) {
            /* The store starts the new stream at the next log position. */
            snprintf(t->stream_view, sizeof(t->stream_view), "%.*s", (int) r->view.len, r->view.p);
        } else {
            cp__dynamo_stream_retire(u->api, t, d);
            t->stream_view[0] = 0;
        }
    }
    if (rc == CP_OK && r->has_dp) {
        cJSON_DeleteItemFromObjectCaseSensitive(d, "DeletionProtection");
        cJSON_AddBoolToObject(d, "DeletionProtection", r->dp);
    }
    if (rc == CP_OK && r->has_class) {
        cJSON_DeleteItemFromObjectCaseSensitive(d, "TableClass");
        cJSON_AddItemToObject(d, "TableClass", str_item(r->table_class));
    }
    if (rc == CP_OK) {
        cp__dynamo_desc_store(d, t);
    }
    cJSON_Delete(d);
    return rc;
}

int cp__dynamo_update_table(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    table_req r = {0};
    cp_err deferred;
    int rc = cp__dynamo_read_request(&c, table_member, &r, &deferred);
    if (rc < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    cp__dynamo_verr v = {0};
    cp__dynamo_check_table_name(&v, r.table, r.has_table, "tableName");
    check_common(&v, &r);
    if ((rc = cp__dynamo_verr_done(&v, &c)) < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    if (!r.has_billing && !r.has_pt && !r.has_ss && !r.has_gsi_updates && !r.has_sse &&
        !r.has_replicas && !r.has_dp && !r.has_class) {
        return cp__dynamo_fail_code(&c, "ValidationException",
                                    "At least one of ProvisionedThroughput, BillingMode, "
                                    "UpdateStreamEnabled, GlobalSecondaryIndexUpdates, "
                                    "SSESpecification, ReplicaUpdates, MultiAccountReplicaReady, "
                                    "ReplicaTransitRoleArn, MultiRegionConsistency, "
                                    "DeletionProtectionEnabled, OnDemandThroughput, WarmThroughput "
                                    "or TableClass is required");
    }
    int others = r.has_billing || r.has_pt || r.has_ss || r.has_gsi_updates;
    if (r.has_dp && (others || r.has_class)) {
        return cp__dynamo_fail_code(&c, "ValidationException",
                                    "One or more parameter values were invalid: DeletionProtection "
                                    "modification must be the only operation in the request");
    }
    if (r.has_class && others) {
        return cp__dynamo_fail_code(&c, "ValidationException",
                                    "One or more parameter values were invalid: TableClass "
                                    "modification must be the only operation in the request");
    }
    if (r.has_gsi_updates) {
        return cp__dynamo_fail_code(&c, "ValidationException",
                                    "changepipe does not support secondary indexes yet");
    }
    if (r.has_ss && r.enabled && !r.has_view) {
        return cp__dynamo_fail_code(&c, "ValidationException",
                                    "One or more parameter values were invalid: If stream is being "
                                    "enabled then UpdateViewType is required");
    }
    if (r.has_ss && !r.enabled && r.has_view) {
        return cp__dynamo_fail_code(&c, "ValidationException",
                                    "One or more parameter values were invalid: If stream is being "
                                    "disabled, then UpdateViewType must not be specified");
    }
    if ((rc = check_table_class(&c, &r)) < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    const char *name = cp__dynamo_table_name(&c, r.table);
    update_ctx u = {c.api, &r, 0, 0, 0};
    rc = cp_db_update_table(c.api->db, name, update_edit, &u, &c.err);
    if (rc < 0 && u.same_throughput) {
        return cp_aws_reply_errorf(
            resp, req->service, "ValidationException",
            "The provisioned throughput for the table will not change. The requested value "
            "equals the current value. Current ReadCapacityUnits provisioned for the table: "
            "%lld. Requested ReadCapacityUnits: %lld. Current WriteCapacityUnits provisioned for "
            "the table: %lld. Requested WriteCapacityUnits: %lld. Refer to the Amazon DynamoDB "
            "Developer Guide for current limits and how to request higher limits.",
            (long long) u.cur_rcu, (long long) r.rcu, (long long) u.cur_wcu, (long long) r.wcu);
    }
    if (rc < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    cp_table_info t = {0};
    if ((rc = cp_db_get_table(c.api->db, name, &t, &c.err)) < 0) {
        return cp__dynamo_fail(&c, rc); /* deleted meanwhile */
    }
    cp_buf_puts(&resp->body, "{\"TableDescription\":");
    put_description(&c, &t, "ACTIVE", 1, &resp->body);
    cp_buf_putc(&resp->body, '}');
    cp_table_info_clear(&t);
    return CP_OK;
}
