/* SPDX-License-Identifier: MIT */
/* Base64 codec (strict: AWS rejects unpadded or non-alphabet input). */
#include "core/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void cp_base64_encode(cp_slice in, cp_buf *out)
{
    const unsigned char *s = (const unsigned char *) in.p;
    size_t n = in.len;
    cp_buf_reserve(out, (n + 2) / 3 * 4);
    char *d = out->p + out->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t) s[i] << 16 | (uint32_t) s[i + 1] << 8 | s[i + 2];
        *d++ = alphabet[v >> 18];
        *d++ = alphabet[(v >> 12) & 63];
        *d++ = alphabet[(v >> 6) & 63];
        *d++ = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t) s[i] << 16 | (i + 1 < n ? (uint32_t) s[i + 1] << 8 : 0);
        *d++ = alphabet[v >> 18];
        *d++ = alphabet[(v >> 12) & 63];
        *d++ = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        *d++ = '=';
    }
    out->len = (size_t) (d - out->p);
    out->p[out->len] = 0;
}

static int decode_char(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

int cp_base64_decode(cp_slice in, cp_buf *out)
{
    const unsigned char *s = (const unsigned char *) in.p;
    size_t n = in.len;
    if (n % 4) {
        return CP_EINVAL;
    }
    cp_buf_reserve(out, n / 4 * 3);
    unsigned char *d = (unsigned char *) out->p + out->len;
    for (size_t i = 0; i < n; i += 4) {
        int pad = 0;
        int v[4];
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = decode_char(s[i + k])) < 0) {
                return CP_EINVAL;
            }
        }
        uint32_t w = (uint32_t) v[0] << 18 | (uint32_t) v[1] << 12 | (uint32_t) v[2] << 6 |
                     (uint32_t) v[3];
        *d++ = (unsigned char) (w >> 16);
        if (pad < 2) {
            *d++ = (unsigned char) (w >> 8);
        }
        if (pad < 1) {
            *d++ = (unsigned char) w;
        }
    }
    out->len = (size_t) ((char *) d - out->p);
    out->p[out->len] = 0;
    return CP_OK;
}
