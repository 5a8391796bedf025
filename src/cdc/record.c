/* SPDX-License-Identifier: MIT */
/* Change records as AWS JSON: Kinesis streaming destination and DynamoDB Streams shapes. */
#include "cdc/record.h"

#include <stdio.h>
#include <string.h>

#include "core/hash.h"
#include "core/json.h"
#include "table/item.h"

/* 16 bytes derived from the store's uuid and the log position: unique and reproducible. */
static void event_digest(const cp_cdc_source *src, uint64_t lsn, unsigned char d[16])
{
    unsigned char in[24];
    memcpy(in, src->uuid, 16);
    cp_store_u64le(in + 16, lsn);
    cp_md5(in, sizeof(in), d);
}

size_t cp_cdc_size_bytes(const cp_change *c)
{
    size_t n = cp_item_size(c->keys);
    if (c->new_image.len) {
        n += cp_item_size(c->new_image);
    }
    if (c->old_image.len) {
        n += cp_item_size(c->old_image);
    }
    return n;
}

static void put_images(const cp_change *c, int keys, int new_img, int old_img, cp_buf *out)
{
    if (keys) {
        cp_buf_puts(out, "\"Keys\":");
        cp_item_to_json(c->keys, out);
        cp_buf_putc(out, ',');
    }
    if (new_img && c->new_image.len) {
        cp_buf_puts(out, "\"NewImage\":");
        cp_item_to_json(c->new_image, out);
        cp_buf_putc(out, ',');
    }
    if (old_img && c->old_image.len) {
        cp_buf_puts(out, "\"OldImage\":");
        cp_item_to_json(c->old_image, out);
        cp_buf_putc(out, ',');
    }
}

void cp_cdc_render_kinesis(const cp_cdc_source *src, const cp_change *c, uint64_t lsn, int micro,
                           cp_buf *out)
{
    unsigned char d[16];
    event_digest(src, lsn, d);
    d[6] = (unsigned char) ((d[6] & 0x0f) | 0x40); /* UUID version 4 layout */
    d[8] = (unsigned char) ((d[8] & 0x3f) | 0x80);
    char hex[33];
    cp_hex(d, 16, hex);
    cp_buf_puts(out, "{\"awsRegion\":");
    cp_json_put_str(out, cp_slice_str(src->region));
    cp_buf_printf(out, ",\"eventID\":\"%.8s-%.4s-%.4s-%.4s-%.12s\",\"eventName\":\"%s\"", hex,
                  hex + 8, hex + 12, hex + 16, hex + 20, cp_change_event_name(c->event));
    cp_buf_puts(out, ",\"userIdentity\":null,\"recordFormat\":\"application/json\",\"tableName\":");
    cp_json_put_str(out, cp_slice_str(src->table));
    cp_buf_printf(out, ",\"dynamodb\":{\"ApproximateCreationDateTime\":%lld,",
                  (long long) (micro ? c->ts_us : c->ts_us / 1000));
    put_images(c, 1, 1, 1, out);
    cp_buf_printf(out, "\"SizeBytes\":%zu},\"eventSource\":\"aws:dynamodb\"}",
                  cp_cdc_size_bytes(c));
}

void cp_cdc_render_streams(const cp_cdc_source *src, const cp_change *c, uint64_t lsn,
                           const char *view, const char *seq, cp_buf *out)
{
    unsigned char d[16];
    event_digest(src, lsn, d);
    char hex[33];
    cp_hex(d, 16, hex);
    int new_img = strcmp(view, "NEW_IMAGE") == 0 || strcmp(view, "NEW_AND_OLD_IMAGES") == 0;
    int old_img = strcmp(view, "OLD_IMAGE") == 0 || strcmp(view, "NEW_AND_OLD_IMAGES") == 0;
    cp_buf_printf(out, "{\"eventID\":\"%s\",\"eventName\":\"%s\",\"eventVersion\":\"1.1\","
                       "\"eventSource\":\"aws:dynamodb\",\"awsRegion\":",
                  hex, cp_change_event_name(c->event));
    cp_json_put_str(out, cp_slice_str(src->region));
    /* Streams report whole seconds ("1764132051.0"): the KCL adapter parses no fraction. */
    cp_buf_printf(out, ",\"dynamodb\":{\"ApproximateCreationDateTime\":%lld.0,",
                  (long long) (c->ts_us / 1000000));
    put_images(c, 1, new_img, old_img, out);
    cp_buf_printf(out, "\"SequenceNumber\":\"%s\",\"SizeBytes\":%zu,\"StreamViewType\":\"%s\"}}",
                  seq, cp_cdc_size_bytes(c), view);
}

void cp_cdc_partition_key(const char *table, cp_slice keys, char out[33])
{
    cp_buf b = CP_BUF_INIT;
    cp_buf_append(&b, table, strlen(table) + 1);
    cp_buf_append(&b, keys.p, keys.len);
    unsigned char d[16];
    cp_md5(b.p, b.len, d);
    cp_buf_free(&b);
    static const char digits[] = "0123456789ABCDEF";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[32] = 0;
}
