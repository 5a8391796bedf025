/* SPDX-License-Identifier: MIT */
/*
 * Private helpers shared by the item model's files (item.c: reader and builder; itemjson.c:
 * DynamoDB JSON). Not for other modules.
 */
#ifndef CP_ITEM_INT_H
#define CP_ITEM_INT_H

#include "table/item.h"

/* Count one more value in the innermost open container (no-op for a standalone value). The
 * JSON decoder writes some bodies straight into the buffer and calls this instead of a put. */
static inline void cp__item_note_value(cp_item_builder *b)
{
    if (b->depth > 0) {
        b->count[b->depth - 1]++;
    }
}

/* Bytes an unsigned varint of v takes. */
static inline size_t cp__varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Read the body of a value of type t at r (after its type byte) into *out. Returns 1, or 0 when
 * the bytes run out or t is not a type (r is then failed). */
int cp__item_read_body(cp_reader *r, int t, cp_av *out);

#endif
