/* SPDX-License-Identifier: MIT */
/*
 * Object key <-> relative file path mapping for the local bucket store (see keypath.h for the
 * grammar). The invariants that keep the store safe: no produced component is empty, ".",
 * "..", longer than NAME_MAX, or contains '/' or NUL; and decoding is a function, so distinct
 * keys can never land on the same path.
 */
#include "objects/keypath.h"

#include <string.h>

#define NAME_MAX_BYTES 255
/* Payload budget of a "%c" piece: the tag takes two bytes of the file name. */
#define PIECE_BUDGET (NAME_MAX_BYTES - 2)

static int utf8_valid(cp_slice s)
{
    const unsigned char *p = (const unsigned char *) s.p, *end = p + s.len;
    while (p < end) {
        unsigned c = *p;
        size_t n;
        unsigned min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if ((size_t) (end - p) < n) {
            return 0;
        }
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xC0) != 0x80) {
                return 0;
            }
            c = c << 6 | (p[i] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
            return 0;
        }
        p += n;
    }
    return 1;
}

int cp_keypath_check(cp_slice key, cp_err *err)
{
    if (key.len == 0) {
        return cp_err_set(err, CP_EINVAL, "The key must not be empty");
    }
    if (key.len > CP_KEYPATH_MAX_KEY) {
        return cp_err_set(err, CP_ETOOBIG, "Your key is too long");
    }
    if (memchr(key.p, 0, key.len)) {
        return cp_err_set(err, CP_EINVAL, "The key must not contain NUL characters");
    }
    if (!utf8_valid(key)) {
        return cp_err_set(err, CP_EINVAL, "The key must be valid UTF-8");
    }
    return CP_OK;
}

static int plain_ok(cp_slice seg, int first)
{
    if (seg.len == 0 || seg.len > NAME_MAX_BYTES || seg.p[0] == '%') {
        return 0;
    }
    if ((seg.len == 1 && seg.p[0] == '.') || (seg.len == 2 && memcmp(seg.p, "..", 2) == 0)) {
        return 0;
    }
    if (first && seg.len >= 4 && memcmp(seg.p, ".cp-", 4) == 0) {
        return 0;
    }
    return 1;
}

static size_t esc_len(cp_slice s)
{
    size_t n = s.len;
    for (size_t i = 0; i < s.len; i++) {
        n += s.p[i] == '%' ? 2 : 0;
    }
    return n;
}

static void put_esc(cp_buf *out, cp_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] == '%') {
            cp_buf_append(out, "%25", 3);
        } else {
            cp_buf_putc(out, s.p[i]);
        }
    }
}

void cp_keypath_encode_segment(cp_slice seg, int first, int last, int force_escape, cp_buf *out)
{
    for (;;) {
        if (!force_escape && plain_ok(seg, first)) {
            cp_buf_append(out, seg.p, seg.len);
            return;
        }
        if (2 + esc_len(seg) <= NAME_MAX_BYTES) {
            cp_buf_append(out, last ? "%f" : "%d", 2);
            put_esc(out, seg);
            return;
        }
        /* Too long for one file name: peel off a piece, never splitting a UTF-8 sequence so
         * the pieces stay readable when browsing. */
        size_t take = 0, used = 0;
        while (take < seg.len) {
            size_t w = seg.p[take] == '%' ? 3 : 1;
            if (used + w > PIECE_BUDGET) {
                break;
            }
            used += w;
            take++;
        }
        while (take > 1 && ((unsigned char) seg.p[take] & 0xC0) == 0x80) {
            take--;
        }
        cp_buf_append(out, "%c", 2);
        put_esc(out, cp_slice_of(seg.p, take));
        cp_buf_putc(out, '/');
        seg = cp_slice_of(seg.p + take, seg.len - take);
        first = 0;
    }
}

void cp_keypath_encode(cp_slice key, cp_buf *out)
{
    const char *p = key.p, *end = key.p + key.len;
    int first = 1;
    for (;;) {
        const char *slash = memchr(p, '/', (size_t) (end - p));
        const char *stop = slash ? slash : end;
        cp_keypath_encode_segment(cp_slice_of(p, (size_t) (stop - p)), first, !slash, 0, out);
        if (!slash) {
            break;
        }
        cp_buf_putc(out, '/');
        p = slash + 1;
        first = 0;
    }
}

/* Append the unescaped payload; only "%25" may appear as an escape. */
static int put_unesc(cp_buf *out, cp_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] == '%') {
            if (s.len - i < 3 || memcmp(s.p + i, "%25", 3) != 0) {
                return CP_EINVAL;
            }
            cp_buf_putc(out, '%');
            i += 2;
        } else {
            cp_buf_putc(out, s.p[i]);
        }
    }
    return CP_OK;
}

int cp_keypath_decode(cp_slice path, cp_buf *out)
{
    const char *p = path.p, *end = path.p + path.len;
    int in_piece = 0;
    if (path.len == 0) {
        return CP_EINVAL;
    }
    for (;;) {
        const char *slash = memchr(p, '/', (size_t) (end - p));
        const char *stop = slash ? slash : end;
        cp_slice c = cp_slice_of(p, (size_t) (stop - p));
        if (c.len == 0 || c.len > NAME_MAX_BYTES) {
            return CP_EINVAL;
        }
        if (c.p[0] != '%') {
            if ((c.len == 1 && c.p[0] == '.') || (c.len == 2 && memcmp(c.p, "..", 2) == 0)) {
                return CP_EINVAL;
            }
            cp_buf_append(out, c.p, c.len);
            in_piece = 0;
        } else {
            char tag = c.len >= 2 ? c.p[1] : 0;
            if (tag != 'f' && tag != 'd' && tag != 'c') {
                return CP_EINVAL;
            }
            if (tag == 'c' && c.len == 2) {
                return CP_EINVAL; /* pieces are never empty */
            }
            if (put_unesc(out, cp_slice_of(c.p + 2, c.len - 2)) < 0) {
                return CP_EINVAL;
            }
            in_piece = tag == 'c';
            if ((tag == 'f' && slash) || (tag == 'd' && !slash)) {
                return CP_EINVAL;
            }
        }
        if (!slash) {
            break;
        }
        if (!in_piece) {
            cp_buf_putc(out, '/');
        }
        p = slash + 1;
    }
    return in_piece ? CP_EINVAL : CP_OK;
}
