/* SPDX-License-Identifier: MIT */
/*
 * The binary change record: what the item store appends to its change log for every mutation
 * that changes an item, and what change capture (src/cdc) renders as DynamoDB Streams and
 * Kinesis-destination JSON. It always carries full images; view types are applied when
 * rendering.
 *
 * Payload: u8 version(1) | u8 event | u32 table_id | i64 ts_us | bytes keys | bytes new | bytes old
 * (bytes = varint length + encoded item; empty when absent).
 */
#ifndef CP_CHANGE_H
#define CP_CHANGE_H

#include <stdint.h>

#include "core/buf.h"

typedef enum { CP_CHANGE_INSERT = 1, CP_CHANGE_MODIFY, CP_CHANGE_REMOVE } cp_change_event;

typedef struct cp_change {
    cp_change_event event;
    uint32_t table_id;
    int64_t ts_us;      /* commit time, microseconds since the epoch */
    cp_slice keys;      /* key attributes (an encoded item) */
    cp_slice new_image; /* empty for REMOVE */
    cp_slice old_image; /* empty for INSERT */
} cp_change;

/* Append the payload of c to out. */
void cp_change_encode(const cp_change *c, cp_buf *out);
/* Decode a payload; slices borrow `payload`. CP_ECORRUPT on bad bytes. */
int cp_change_decode(cp_slice payload, cp_change *out);
/* "INSERT", "MODIFY", "REMOVE". */
const char *cp_change_event_name(cp_change_event e);

#endif
