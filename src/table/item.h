/* SPDX-License-Identifier: MIT */
/*
 * The item model: DynamoDB AttributeValues (S, N, B, BOOL, NULL, SS, NS, BS, L, M) in a compact
 * binary encoding, read in place without decoding, built with a writer, converted from and to
 * DynamoDB JSON. An *item* is the body of an M value (its top-level attribute map).
 *
 * Encoding (little-endian):
 *   value := u8 type, body
 *   S, N, B   : varint length, bytes          (N holds the canonical decimal text)
 *   BOOL      : u8 0|1
 *   NULL      : (empty)
 *   SS, NS, BS: u32 body_len, u32 count, count x (varint length, bytes)
 *   L         : u32 body_len, u32 count, count x value
 *   M / item  : u32 body_len, u32 count, count x (varint name length, name, value)
 * body_len counts the bytes after itself, so containers can be skipped in O(1).
 * The encoding is deterministic for a given value, so byte-equal values are equal.
 *
 * Nesting levels: an item's top-level L/M values are level 1; DynamoDB allows 32.
 * Threads: every function here is reentrant; readers only borrow the bytes they are given.
 */
#ifndef CP_ITEM_H
#define CP_ITEM_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/json.h"
#include "table/number.h"

typedef enum {
    CP_AV_S = 1,
    CP_AV_N,
    CP_AV_B,
    CP_AV_BOOL,
    CP_AV_NULL,
    CP_AV_SS,
    CP_AV_NS,
    CP_AV_BS,
    CP_AV_L,
    CP_AV_M,
} cp_av_type;

#define CP_ITEM_MAX_SIZE   409600 /* 400 KB, as DynamoDB counts it */
#define CP_ITEM_MAX_DEPTH  32
#define CP_HASH_KEY_MAX    2048
#define CP_RANGE_KEY_MAX   1024

/* A borrowed view of one encoded value: `body` starts right after the type byte and spans the
 * whole body (for containers including the length and count header). */
typedef struct cp_av {
    cp_av_type type;
    cp_slice body;
} cp_av;

/* "S", "N", ... for a type; NULL for an invalid type. */
const char *cp_av_type_name(cp_av_type t);
/* Type from its descriptor text ("SS" -> CP_AV_SS); 0 if unknown. */
cp_av_type cp_av_type_from_name(cp_slice name);

/* ---- Reading (all results borrow the encoded bytes) ---- */

/* Structural check of untrusted or stored bytes: every length in bounds, types valid, depth
 * <= 32. CP_ECORRUPT otherwise. Readers below assume a checked item. Also rejected: BOOL bytes
 * other than 0/1, N text that is not canonical (cp_num_from_stored), empty sets, trailing
 * bytes. Not checked: UTF-8 validity, duplicate names or set members (the decoder prevents
 * those). */
int cp_item_check(cp_slice item);
/* Bytes of an S, N or B value (N: canonical text); an empty slice for other types. */
cp_slice cp_av_bytes(cp_av v);
/* Value of a BOOL. */
int cp_av_bool(cp_av v);
/* Number of elements of a container (sets, L, M); 0 for scalars. */
uint32_t cp_av_count(cp_av v);
/* The whole encoded value (type byte + body) as stored, for copying. Not for set members (they
 * have no type byte in the encoding): copy those with cp_item_put_av. */
cp_slice cp_av_raw(cp_av v);

/* Iterates the elements of an item, M, L or set. For sets, elements are S/N/B views. */
typedef struct cp_av_iter {
    cp_reader r;
    uint32_t left;
    cp_av_type elem_type; /* for sets: the member type; for L/M: 0 */
    int named;            /* M/item: entries carry names */
} cp_av_iter;

void cp_item_iter_init(cp_av_iter *it, cp_slice item);
void cp_av_iter_init(cp_av_iter *it, cp_av container);
/* Next element; *name (may be NULL) is set for items and M (empty slice otherwise). Returns 1,
 * or 0 at the end. A set member's view has type S/N/B and a body shaped like that scalar's. */
int cp_av_iter_next(cp_av_iter *it, cp_slice *name, cp_av *out);

/* Top-level attribute `name` of an item. Returns 1 when found. */
int cp_item_find(cp_slice item, cp_slice name, cp_av *out);
/* Member `name` of an M value. Returns 1 when found. */
int cp_av_map_find(cp_av map, cp_slice name, cp_av *out);
/* Element `index` of an L value. Returns 1 when present. */
int cp_av_list_at(cp_av list, uint32_t index, cp_av *out);
/* Number of top-level attributes. */
uint32_t cp_item_count(cp_slice item);

/* Semantic equality: sets and maps compare regardless of order, N numerically, L in order. */
int cp_av_equal(cp_av a, cp_av b);
/* Items equal as attribute sets (used to detect no-op writes). */
int cp_item_equal(cp_slice a, cp_slice b);
/* Ordering of two scalars of the same type S, N or B (N numeric, S/B bytewise, unsigned).
 * Returns -1, 0 or 1. Different types order by type code; BOOL false < true; other types 0. */
int cp_av_cmp(cp_av a, cp_av b);

/* DynamoDB's size accounting (section 3.3 of the wire reference, dynalite's formulas): S and B
 * their bytes, N cp_num_size, BOOL/NULL 1, sets the sum of their members, L 3 + sum(1 + elem),
 * M 3 + sum(1 + name + value); an item the sum of (name + value). */
size_t cp_av_size(cp_av v);
size_t cp_item_size(cp_slice item);

/* ---- Building ---- */

#define CP_ITEM_BUILDER_DEPTH (CP_ITEM_MAX_DEPTH + 2)

/* Writes an encoded item/value into a caller-owned cp_buf (appending). Containers are opened
 * and closed explicitly; the builder back-patches their length and count. With no container
 * open, a put writes one standalone value (type byte + body). Misuse (closing more than was
 * opened, nesting past CP_ITEM_BUILDER_DEPTH) is a CP_ASSERT failure. */
typedef struct cp_item_builder {
    cp_buf *out;
    int depth;
    size_t hdr[CP_ITEM_BUILDER_DEPTH];   /* offset of each open container's header */
    uint32_t count[CP_ITEM_BUILDER_DEPTH];
} cp_item_builder;

void cp_item_builder_init(cp_item_builder *b, cp_buf *out);
/* Start the top-level item (an M body, no type byte). */
void cp_item_begin(cp_item_builder *b);
/* Close the innermost container or the item. */
void cp_item_end(cp_item_builder *b);
/* Inside an item or M: the next value's name. */
void cp_item_put_name(cp_item_builder *b, cp_slice name);
void cp_item_put_scalar(cp_item_builder *b, cp_av_type t, cp_slice bytes); /* S, N (canonical), B */
void cp_item_put_bool(cp_item_builder *b, int v);
void cp_item_put_null(cp_item_builder *b);
/* Open SS/NS/BS/L/M; set members are added with cp_item_put_set_member. */
void cp_item_begin_container(cp_item_builder *b, cp_av_type t);
void cp_item_put_set_member(cp_item_builder *b, cp_slice bytes);
/* Copy an existing encoded value (any type, including a set member, which becomes a standalone
 * S/N/B) as the next value. */
void cp_item_put_av(cp_item_builder *b, cp_av v);

/* ---- DynamoDB JSON ---- */

/* Parse an AttributeValue map ({"name":{"S":"x"},...}) from the lexer, whose next token must be
 * OBJ_BEGIN, appending a complete item to b's buffer (cp_item_begin/end done here). Validates
 * everything DynamoDB validates on values (types, numbers, base64, empty/duplicate sets, NULL
 * must be true, nesting, UTF-8); returns CP_EINVAL with AWS's ValidationException text, or
 * CP_EINVAL with err->msg starting "SerializationException: " for shape errors (wrong JSON
 * type for a member).
 *
 * Like AWS's deserialiser: a repeated attribute name keeps its last value, unknown members of
 * an AttributeValue are ignored, null members count as absent. N values are stored canonical.
 * Returns CP_ENOTFOUND (err untouched) when the value is JSON null: the caller words "missing".
 * On any failure nothing is appended and b is as before. After a ValidationException the
 * lexer has consumed the whole value (a later shape error in the value takes precedence, as
 * in AWS); after a SerializationException it stopped mid-value. Attribute-name and key-size
 * limits are the caller's (they depend on the operation). */
int cp_item_from_json(cp_json_lexer *lx, cp_item_builder *b, cp_err *err);
/* Parse one AttributeValue object ({"S":"x"}) as the next value of b (nesting level 1), same
 * rules and error contract as cp_item_from_json; JSON null is CP_EINVAL ("Supplied
 * AttributeValue is empty..."). */
int cp_av_from_json(cp_json_lexer *lx, cp_item_builder *b, cp_err *err);
/* Append the DynamoDB JSON of an item ({"a":{"S":"x"}}) / of one value ({"S":"x"}). */
void cp_item_to_json(cp_slice item, cp_buf *out);
void cp_av_to_json(cp_av v, cp_buf *out);

/* ---- Keys ---- */

/* Append order-preserving bytes for a key value (S/B raw bytes, N via cp_num_key). Appends
 * nothing for other types. S/B bytes are not prefix-free: a composite key must delimit them. */
void cp_av_key_bytes(cp_av v, cp_buf *out);

#endif
