/* SPDX-License-Identifier: MIT */
/*
 * cp_buf: owned growable bytes, always NUL-terminated. cp_slice: a borrowed view, shaped like
 * LMDB's MDB_val. Plus little-endian/varint codecs used by every binary format we store.
 */
#ifndef CP_BUF_H
#define CP_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"

typedef struct cp_slice {
    const char *p;
    size_t len;
} cp_slice;

#define CP_SLICE(s) ((cp_slice){(s), sizeof(s) - 1})

static inline cp_slice cp_slice_of(const char *p, size_t len)
{
    return (cp_slice){p, len};
}

static inline cp_slice cp_slice_str(const char *s)
{
    return (cp_slice){s, s ? strlen(s) : 0};
}

static inline int cp_slice_eq(cp_slice a, cp_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Byte-wise order (memcmp, then shorter first): the order of S and B keys. */
int cp_slice_cmp(cp_slice a, cp_slice b);

typedef struct cp_buf {
    char *p;
    size_t len, cap;
} cp_buf;

#define CP_BUF_INIT ((cp_buf){NULL, 0, 0})

/* Make room for `extra` more bytes (plus the NUL). Aborts on OOM. */
void cp_buf_reserve(cp_buf *b, size_t extra);
void cp_buf_append(cp_buf *b, const void *p, size_t len);
void cp_buf_putc(cp_buf *b, char c);
void cp_buf_puts(cp_buf *b, const char *s);
void cp_buf_printf(cp_buf *b, const char *fmt, ...) CP_PRINTF(2, 3);
void cp_buf_put_u8(cp_buf *b, uint8_t v);
void cp_buf_put_u32le(cp_buf *b, uint32_t v);
void cp_buf_put_u64le(cp_buf *b, uint64_t v);
void cp_buf_put_u32be(cp_buf *b, uint32_t v);
void cp_buf_put_u64be(cp_buf *b, uint64_t v);
void cp_buf_put_varint(cp_buf *b, uint64_t v);
/* Varint length followed by the bytes. */
void cp_buf_put_bytes(cp_buf *b, const void *p, size_t len);
/* Forget the contents, keep the memory. */
static inline void cp_buf_reset(cp_buf *b)
{
    b->len = 0;
    if (b->p) {
        b->p[0] = 0;
    }
}
/* Release the memory; the buffer is CP_BUF_INIT afterwards. cp_buf_free on an empty buf is a no-op. */
void cp_buf_free(cp_buf *b);
static inline cp_slice cp_buf_slice(const cp_buf *b)
{
    return (cp_slice){b->p, b->len};
}

/* A bounded reader over borrowed bytes. Every get fails (returns < 0) once it would read past
 * the end, and stays failed, so decoders check once at the end. */
typedef struct cp_reader {
    const unsigned char *p, *end;
    int failed;
} cp_reader;

static inline cp_reader cp_reader_of(cp_slice s)
{
    return (cp_reader){(const unsigned char *) s.p, (const unsigned char *) s.p + s.len, 0};
}
uint8_t cp_reader_u8(cp_reader *r);
uint32_t cp_reader_u32le(cp_reader *r);
uint64_t cp_reader_u64le(cp_reader *r);
uint64_t cp_reader_varint(cp_reader *r);
/* A varint-length-prefixed byte string, borrowed from the reader's memory. */
cp_slice cp_reader_bytes(cp_reader *r);
/* Exactly n bytes, borrowed. */
cp_slice cp_reader_take(cp_reader *r, size_t n);

static inline uint32_t cp_load_u32be(const void *p)
{
    const unsigned char *b = p;
    return (uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3];
}
static inline uint64_t cp_load_u64be(const void *p)
{
    const unsigned char *b = p;
    return (uint64_t) cp_load_u32be(b) << 32 | cp_load_u32be(b + 4);
}
static inline uint32_t cp_load_u32le(const void *p)
{
    const unsigned char *b = p;
    return (uint32_t) b[3] << 24 | (uint32_t) b[2] << 16 | (uint32_t) b[1] << 8 | b[0];
}
static inline uint64_t cp_load_u64le(const void *p)
{
    const unsigned char *b = p;
    return (uint64_t) cp_load_u32le(b + 4) << 32 | cp_load_u32le(b);
}
static inline void cp_store_u32le(void *p, uint32_t v)
{
    unsigned char *b = p;
    b[0] = (unsigned char) v;
    b[1] = (unsigned char) (v >> 8);
    b[2] = (unsigned char) (v >> 16);
    b[3] = (unsigned char) (v >> 24);
}
static inline void cp_store_u64le(void *p, uint64_t v)
{
    cp_store_u32le(p, (uint32_t) v);
    cp_store_u32le((unsigned char *) p + 4, (uint32_t) (v >> 32));
}

#endif
