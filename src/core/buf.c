/* SPDX-License-Identifier: MIT */
/* Growable byte buffers and bounded readers for our binary formats. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>

#include "core/mem.h"

int cp_slice_cmp(cp_slice a, cp_slice b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    if (c) {
        return c;
    }
    return a.len < b.len ? -1 : a.len > b.len;
}

void cp_buf_reserve(cp_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        cap *= 2;
    }
    b->p = cp_realloc(b->p, cap);
    b->cap = cap;
}

void cp_buf_append(cp_buf *b, const void *p, size_t len)
{
    cp_buf_reserve(b, len);
    if (len) {
        memcpy(b->p + b->len, p, len);
    }
    b->len += len;
    b->p[b->len] = 0;
}

void cp_buf_putc(cp_buf *b, char c)
{
    cp_buf_reserve(b, 1);
    b->p[b->len++] = c;
    b->p[b->len] = 0;
}

void cp_buf_puts(cp_buf *b, const char *s)
{
    cp_buf_append(b, s, strlen(s));
}

void cp_buf_printf(cp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t) n < sizeof(tmp)) {
        cp_buf_append(b, tmp, (size_t) n);
        return;
    }
    cp_buf_reserve(b, (size_t) n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
}

void cp_buf_put_u8(cp_buf *b, uint8_t v)
{
    cp_buf_putc(b, (char) v);
}

void cp_buf_put_u32le(cp_buf *b, uint32_t v)
{
    unsigned char t[4];
    cp_store_u32le(t, v);
    cp_buf_append(b, t, 4);
}

void cp_buf_put_u64le(cp_buf *b, uint64_t v)
{
    unsigned char t[8];
    cp_store_u64le(t, v);
    cp_buf_append(b, t, 8);
}

void cp_buf_put_u32be(cp_buf *b, uint32_t v)
{
    unsigned char t[4] = {(unsigned char) (v >> 24), (unsigned char) (v >> 16),
                          (unsigned char) (v >> 8), (unsigned char) v};
    cp_buf_append(b, t, 4);
}

void cp_buf_put_u64be(cp_buf *b, uint64_t v)
{
    cp_buf_put_u32be(b, (uint32_t) (v >> 32));
    cp_buf_put_u32be(b, (uint32_t) v);
}

void cp_buf_put_varint(cp_buf *b, uint64_t v)
{
    unsigned char t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (unsigned char) (v | 0x80);
        v >>= 7;
    }
    t[n++] = (unsigned char) v;
    cp_buf_append(b, t, n);
}

void cp_buf_put_bytes(cp_buf *b, const void *p, size_t len)
{
    cp_buf_put_varint(b, len);
    cp_buf_append(b, p, len);
}

void cp_buf_free(cp_buf *b)
{
    cp_free(b->p);
    *b = CP_BUF_INIT;
}

static int need(cp_reader *r, size_t n)
{
    if (r->failed || (size_t) (r->end - r->p) < n) {
        r->failed = 1;
        return 0;
    }
    return 1;
}

uint8_t cp_reader_u8(cp_reader *r)
{
    return need(r, 1) ? *r->p++ : 0;
}

uint32_t cp_reader_u32le(cp_reader *r)
{
    if (!need(r, 4)) {
        return 0;
    }
    uint32_t v = cp_load_u32le(r->p);
    r->p += 4;
    return v;
}

uint64_t cp_reader_u64le(cp_reader *r)
{
    if (!need(r, 8)) {
        return 0;
    }
    uint64_t v = cp_load_u64le(r->p);
    r->p += 8;
    return v;
}

uint64_t cp_reader_varint(cp_reader *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (!need(r, 1)) {
            return 0;
        }
        uint8_t c = *r->p++;
        v |= (uint64_t) (c & 0x7f) << shift;
        if (!(c & 0x80)) {
            return v;
        }
    }
    r->failed = 1;
    return 0;
}

cp_slice cp_reader_take(cp_reader *r, size_t n)
{
    if (!need(r, n)) {
        return (cp_slice){NULL, 0};
    }
    cp_slice s = {(const char *) r->p, n};
    r->p += n;
    return s;
}

cp_slice cp_reader_bytes(cp_reader *r)
{
    uint64_t n = cp_reader_varint(r);
    if (r->failed || n > (uint64_t) (r->end - r->p)) {
        r->failed = 1;
        return (cp_slice){NULL, 0};
    }
    return cp_reader_take(r, (size_t) n);
}
