/* SPDX-License-Identifier: MIT */
/*
 * Capacity units as DynamoDB computes them (wire reference 3.13) and the throughput-emulation
 * hook. Reads cost one unit per started 4 KB (half when eventually consistent), writes one per
 * started 1 KB; an operation always costs at least one step, even on a missing item.
 */
#include <math.h>
#include <string.h>

#include "dynamo/dynamo_int.h"

cp__dynamo_rcc cp__dynamo_rcc_parse(cp__dynamo_verr *v, cp_slice s, int present)
{
    static const char *const names[] = {"INDEXES", "TOTAL", "NONE", NULL};
    if (!present) {
        return CP__RCC_NONE;
    }
    int i = cp__dynamo_check_enum(v, s, "returnConsumedCapacity", names, "INDEXES, TOTAL, NONE");
    return i == 0 ? CP__RCC_INDEXES : i == 1 ? CP__RCC_TOTAL : CP__RCC_NONE;
}

double cp__dynamo_read_units(size_t bytes, int consistent)
{
    double steps = bytes ? ceil((double) bytes / 4096.0) : 1;
    return steps * (consistent ? 1.0 : 0.5);
}

double cp__dynamo_write_units(size_t bytes)
{
    return bytes ? ceil((double) bytes / 1024.0) : 1;
}

/* Units are multiples of 0.5, so one decimal is exact ("1.0", "0.5", "12.5"). */
static void put_units(cp_buf *out, double units)
{
    cp_buf_printf(out, "%.1f", units);
}

void cp__dynamo_capacity_entry(cp_buf *out, cp__dynamo_rcc mode, const char *table, double units)
{
    cp_buf_puts(out, "{\"TableName\":");
    cp_json_put_str(out, cp_slice_str(table));
    cp_buf_puts(out, ",\"CapacityUnits\":");
    put_units(out, units);
    if (mode == CP__RCC_INDEXES) {
        /* No secondary indexes: the table carries everything. */
        cp_buf_puts(out, ",\"Table\":{\"CapacityUnits\":");
        put_units(out, units);
        cp_buf_putc(out, '}');
    }
    cp_buf_putc(out, '}');
}

void cp__dynamo_put_capacity(cp_buf *out, cp__dynamo_rcc mode, const char *table, double units,
                             int comma)
{
    if (mode == CP__RCC_NONE) {
        return;
    }
    if (comma) {
        cp_buf_putc(out, ',');
    }
    cp_buf_puts(out, "\"ConsumedCapacity\":");
    cp__dynamo_capacity_entry(out, mode, table, units);
}

int cp__dynamo_admit(cp__dynamo_call *c, const cp_table_info *t, cp_slice item, double read_units,
                     double write_units)
{
    const cp_dynamo_throttle *th = c->api->cfg.throttle;
    if (!th || !th->admit) {
        return CP_OK;
    }
    cp__dynamo_tmeta meta;
    cp__dynamo_table_meta(t, &meta);
    cp_buf hk = CP_BUF_INIT;
    cp_av v;
    if (item.len && cp_item_find(item, cp_slice_str(t->key.hash_name), &v)) {
        cp_av_key_bytes(v, &hk);
    }
    cp_dynamo_usage u = {t->name, cp_buf_slice(&hk), read_units, write_units, meta.provisioned};
    int rc = th->admit(th->ctx, &u);
    cp_buf_free(&hk);
    return rc == CP_EAGAIN ? CP_EAGAIN : CP_OK;
}

int cp__dynamo_fail_throttled(cp__dynamo_call *c, const cp_table_info *t)
{
    cp__dynamo_tmeta meta;
    cp__dynamo_table_meta(t, &meta);
    if (meta.provisioned) {
        return cp__dynamo_fail_code(
            c, "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table "
            "was exceeded. Consider increasing your provisioning level with "
            "the UpdateTable API.");
    }
    return cp__dynamo_fail_code(c, "ThrottlingException",
                                "Throughput exceeds the current capacity of your table or index. "
                                "DynamoDB is automatically scaling your table or index so please "
                                "try again shortly. If exceptions persist, check if you have a hot "
                                "key: https://docs.aws.amazon.com/amazondynamodb/latest/"
                                "developerguide/bp-partition-key-design.html");
}
