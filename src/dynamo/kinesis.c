/* SPDX-License-Identifier: MIT */
/*
 * Kinesis streaming destinations of a table: Enable/Disable/Update/
 * DescribeKinesisStreamingDestination. The store keeps the destinations (stream name, active,
 * precision, and the log position forwarding starts at) and the outbox relay (cdc/outbox.h)
 * forwards change records to them; this file only validates and flips them. Enabling takes
 * effect at the next write, so a destination is reported ACTIVE at once.
 */
#include <stdio.h>
#include <string.h>

#include "dynamo/dynamo_int.h"

typedef struct kin_req {
    cp_slice table, arn, precision;
    int has_table, has_arn, has_config, has_precision;
} kin_req;

static int kin_member(cp__dynamo_call *c, cp_slice name, void *ctx)
{
    kin_req *r = ctx;
    if (cp__dynamo_is(name, "TableName")) {
        return cp__dynamo_str(c, &r->table, &r->has_table);
    }
    if (cp__dynamo_is(name, "StreamArn")) {
        return cp__dynamo_str(c, &r->arn, &r->has_arn);
    }
    if (cp__dynamo_is(name, "EnableKinesisStreamingConfiguration") ||
        cp__dynamo_is(name, "UpdateKinesisStreamingConfiguration")) {
        int rc = cp__dynamo_obj(c, "structure");
        if (rc <= 0) {
            return rc;
        }
        r->has_config = 1;
        cp_slice m;
        while ((rc = cp__dynamo_member(c, &m)) == 1) {
            if (cp__dynamo_is(m, "ApproximateCreationDateTimePrecision")) {
                rc = cp__dynamo_str(c, &r->precision, &r->has_precision);
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

/* The stream name of arn:aws:kinesis:<region>:<account>:stream/<name>, or an empty slice. */
static cp_slice kinesis_stream_name(cp_slice arn)
{
    static const char pre[] = "arn:aws:kinesis:";
    if (arn.len <= sizeof(pre) - 1 || memcmp(arn.p, pre, sizeof(pre) - 1) != 0) {
        return (cp_slice){NULL, 0};
    }
    for (size_t i = sizeof(pre) - 1; i + 8 <= arn.len; i++) {
        if (memcmp(arn.p + i, ":stream/", 8) == 0) {
            cp_slice name = cp_slice_of(arn.p + i + 8, arn.len - i - 8);
            if (name.len == 0 || name.len > CP_STREAM_NAME_MAX || memchr(name.p, '/', name.len)) {
                return (cp_slice){NULL, 0};
            }
            return name;
        }
    }
    return (cp_slice){NULL, 0};
}

typedef enum { KIN_ENABLE, KIN_DISABLE, KIN_UPDATE } kin_action;

typedef struct kin_ctx {
    kin_action action;
    cp_slice stream;
    int micro, has_precision;
    const char *arn;
} kin_ctx;

static int find_dest(cp_table_info *t, cp_slice stream)
{
    for (int i = 0; i < t->ndest; i++) {
        if (cp_slice_eq(cp_slice_str(t->dest[i].stream_name), stream)) {
            return i;
        }
    }
    return -1;
}

/* Committer thread: flip the destination; the store stamps from_lsn on enabling. */
static int kin_edit(void *arg, cp_table_info *t, cp_err *err)
{
    kin_ctx *k = arg;
    int i = find_dest(t, k->stream);
    switch (k->action) {
    case KIN_ENABLE: {
        if (i >= 0 && t->dest[i].active) {
            return cp_err_set(err, CP_EINVAL,
                              "Table is not in a valid state to enable Kinesis Streaming "
                              "Destination: EnableKinesisStreamingDestination must be DISABLED or "
                              "ENABLE_FAILED to perform ENABLE operation.");
        }
        if (i < 0) {
            /* Reuse the slot of a disabled destination when the table is full. */
            if (t->ndest < CP_MAX_DESTINATIONS) {
                i = t->ndest++;
            } else {
                for (int j = 0; j < t->ndest && i < 0; j++) {
                    if (!t->dest[j].active) {
                        i = j;
                    }
                }
            }
            if (i < 0) {
                return cp_err_set(err, CP_ELIMIT,
                                  "Subscriber limit exceeded: a table can stream to at most %d "
                                  "Kinesis data streams",
                                  CP_MAX_DESTINATIONS);
            }
            memset(&t->dest[i], 0, sizeof(t->dest[i]));
            snprintf(t->dest[i].stream_name, sizeof(t->dest[i].stream_name), "%.*s",
                     (int) k->stream.len, k->stream.p);
        }
        t->dest[i].active = 1;
        t->dest[i].micro_precision = k->micro;
        return CP_OK;
    }
    case KIN_DISABLE:
        if (i < 0 || !t->dest[i].active) {
            return cp_err_set(err, CP_EINVAL,
                              "Table is not in a valid state to enable Kinesis Streaming "
                              "Destination: KinesisStreamingDestination must be ACTIVE to perform "
                              "DISABLE operation.");
        }
        t->dest[i].active = 0;
        return CP_OK;
    case KIN_UPDATE:
        if (i < 0 || !t->dest[i].active) {
            return cp_err_set(err, CP_EINVAL,
                              "Table is not in a valid state to enable Kinesis Streaming "
                              "Destination: Kinesis streaming is not in ACTIVE state. Updates "
                              "are only allowed in ACTIVE state. TableName: %s, kdsArn: %s",
                              t->name, k->arn);
        }
        if (t->dest[i].micro_precision == k->micro) {
            cJSON *d = cp__dynamo_desc_parse(t);
            const cJSON *idv = cJSON_GetObjectItemCaseSensitive(d, "TableId");
            const char *id = cJSON_IsString(idv) ? idv->valuestring : NULL;
            cp_err_set(err, CP_EINVAL,
                       "Invalid Request: Precision is already set to the desired value of %s for "
                       "tableId: %s, kdsArn: %s",
                       k->micro ? "MICROSECOND" : "MILLISECOND", id ? id : "", k->arn);
            cJSON_Delete(d);
            return CP_EINVAL;
        }
        t->dest[i].micro_precision = k->micro;
        return CP_OK;
    }
    return CP_EINVAL;
}

static int kinesis_op(cp__dynamo_call *c, kin_action action)
{
    kin_req r = {0};
    cp_err deferred;
    int rc = cp__dynamo_read_request(c, kin_member, &r, &deferred);
    if (rc < 0) {
        return cp__dynamo_fail(c, rc);
    }
    cp__dynamo_verr v = {0};
    cp__dynamo_check_table_name(&v, r.table, r.has_table, "tableName");
    if (!r.has_arn) {
        cp__dynamo_verr_add(&v, NULL, "streamArn", "Member must not be null");
    } else if (r.arn.len < 37 || r.arn.len > 1024) {
        cp__dynamo_verr_add_s(&v, r.arn, "streamArn",
                              r.arn.len < 37
                                  ? "Member must have length greater than or equal to 37"
                                  : "Member must have length less than or equal to 1024");
    }
    int micro = 0;
    if (r.has_precision) {
        static const char *const names[] = {"MILLISECOND", "MICROSECOND", NULL};
        micro = cp__dynamo_check_enum(&v, r.precision,
                                      action == KIN_UPDATE ? "updateKinesisStreamingConfiguration."
                                                             "approximateCreationDateTimePrecision"
                                                           : "enableKinesisStreamingConfiguration."
                                                             "approximateCreationDateTimePrecision",
                                      names, "MILLISECOND, MICROSECOND") == 1;
    }
    if ((rc = cp__dynamo_verr_done(&v, c)) < 0) {
        return cp__dynamo_fail(c, rc);
    }
    if (action == KIN_UPDATE && !r.has_precision) {
        return cp__dynamo_fail_code(
            c, "ValidationException",
            "Streaming destination cannot be updated with given parameters: "
            "UpdateKinesisStreamingConfiguration cannot be null or contain "
            "only null values");
    }
    if (action == KIN_DISABLE && r.has_config) {
        return cp__dynamo_fail_code(c, "ValidationException",
                                    "Stream cannot be disabled using "
                                    "EnableKinesisStreamingConfiguration parameters");
    }
    cp_slice stream = kinesis_stream_name(r.arn);
    const char *arn = cp_http_scratch_strdup(c->scratch, r.arn);
    if (!stream.len) {
        return cp__dynamo_fail_code(c, "ValidationException",
                                    "Invalid StreamArn: the Kinesis data stream ARN must look like "
                                    "arn:aws:kinesis:<region>:<account>:stream/<name>");
    }
    const char *table = cp__dynamo_table_name(c, r.table);
    cp_table_info t = {0};
    if ((rc = cp_db_get_table(c->api->db, table, &t, &c->err)) < 0) {
        return cp__dynamo_fail(c, rc);
    }
    cp_table_info_clear(&t);
    if (action == KIN_ENABLE && c->api->streams) {
        cp_stream_desc *sd = NULL;
        cp_err serr = {0};
        if (cp_streams_describe(c->api->streams, stream, &sd, &serr) < 0) {
            return cp__dynamo_fail_code(c, "ResourceNotFoundException", serr.msg);
        }
        cp_stream_desc_free(sd);
    }
    kin_ctx k = {action, stream, micro, r.has_precision, arn};
    if ((rc = cp_db_update_table(c->api->db, table, kin_edit, &k, &c->err)) < 0) {
        return cp__dynamo_fail(c, rc);
    }
    cp_buf *out = &c->resp->body;
    cp_buf_puts(out, "{\"TableName\":");
    cp_json_put_str(out, cp_slice_str(table));
    cp_buf_puts(out, ",\"StreamArn\":");
    cp_json_put_str(out, r.arn);
    cp_buf_printf(out, ",\"DestinationStatus\":\"%s\"",
                  action == KIN_ENABLE    ? "ENABLING"
                  : action == KIN_DISABLE ? "DISABLING"
                                          : "UPDATING");
    if (r.has_precision) {
        cp_buf_printf(out,
                      ",\"%sKinesisStreamingConfiguration\":{"
                      "\"ApproximateCreationDateTimePrecision\":\"%s\"}",
                      action == KIN_UPDATE ? "Update" : "Enable",
                      micro ? "MICROSECOND" : "MILLISECOND");
    }
    cp_buf_putc(out, '}');
    return CP_OK;
}

int cp__dynamo_enable_kinesis(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    return kinesis_op(&c, KIN_ENABLE);
}

int cp__dynamo_disable_kinesis(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    return kinesis_op(&c, KIN_DISABLE);
}

int cp__dynamo_update_kinesis(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    return kinesis_op(&c, KIN_UPDATE);
}

int cp__dynamo_describe_kinesis(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cp__dynamo_call c = {.api = ctx, .req = req, .resp = resp, .scratch = req->scratch};
    kin_req r = {0};
    cp_err deferred;
    int rc = cp__dynamo_read_request(&c, kin_member, &r, &deferred);
    cp__dynamo_verr v = {0};
    if (rc == CP_OK) {
        cp__dynamo_check_table_name(&v, r.table, r.has_table, "tableName");
        rc = cp__dynamo_verr_done(&v, &c);
    }
    cp_table_info t = {0};
    if (rc == CP_OK) {
        rc = cp_db_get_table(c.api->db, cp__dynamo_table_name(&c, r.table), &t, &c.err);
    }
    if (rc < 0) {
        return cp__dynamo_fail(&c, rc);
    }
    cp_buf *out = &resp->body;
    cp_buf_puts(out, "{\"TableName\":");
    cp_json_put_str(out, cp_slice_str(t.name));
    cp_buf_puts(out, ",\"KinesisDataStreamDestinations\":[");
    const char *region = cp__dynamo_region(&c);
    for (int i = 0; i < t.ndest; i++) {
        cp_buf arn = CP_BUF_INIT;
        cp_buf_printf(&arn, "arn:aws:kinesis:%s:%s:stream/%s", region, c.api->account,
                      t.dest[i].stream_name);
        cp_buf_puts(out, i ? ",{\"StreamArn\":" : "{\"StreamArn\":");
        cp_json_put_str(out, cp_buf_slice(&arn));
        /* Enabling is synchronous here, so a destination is ACTIVE at once (the CLI waiter
         * kinesis-streaming-destination-active polls for exactly that). */
        cp_buf_printf(out,
                      ",\"DestinationStatus\":\"%s\","
                      "\"ApproximateCreationDateTimePrecision\":\"%s\"}",
                      t.dest[i].active ? "ACTIVE" : "DISABLED",
                      t.dest[i].micro_precision ? "MICROSECOND" : "MILLISECOND");
        cp_buf_free(&arn);
    }
    cp_buf_puts(out, "]}");
    cp_table_info_clear(&t);
    return CP_OK;
}
