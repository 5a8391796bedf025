/* SPDX-License-Identifier: MIT */
/*
 * aws-chunked decoding for S3 PutObject/UploadPart bodies (see chunked.h). The framing is
 * checked strictly so a truncated upload can never be stored as a shorter object; the final
 * CRLF after the trailers is optional because some SDKs omit it.
 */
#include "objects/chunked.h"

#include <string.h>
#include <strings.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* The line at *p up to CRLF (excluded); *p moves past the CRLF. CP_EINVAL without CRLF. */
static int take_line(const char **p, const char *end, cp_slice *line)
{
    const char *s = *p;
    for (const char *q = s; q + 1 < end; q++) {
        if (q[0] == '\r' && q[1] == '\n') {
            *line = cp_slice_of(s, (size_t) (q - s));
            *p = q + 2;
            return CP_OK;
        }
    }
    return CP_EINVAL;
}

static cp_slice trim(cp_slice s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++, s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t')) {
        s.len--;
    }
    return s;
}

int cp_chunked_decode(cp_slice in, cp_chunked_sink sink, void *ctx, cp_buf *trailers,
                      uint64_t *decoded_len, cp_err *err)
{
    const char *p = in.p ? in.p : "", *end = p + in.len;
    uint64_t total = 0;
    for (;;) {
        cp_slice line;
        if (take_line(&p, end, &line) < 0) {
            return cp_err_set(err, CP_EINVAL, "aws-chunked: chunk size line not terminated");
        }
        uint64_t n = 0;
        size_t i = 0;
        for (; i < line.len && hexval(line.p[i]) >= 0; i++) {
            if (i >= 15) {
                return cp_err_set(err, CP_EINVAL, "aws-chunked: chunk size too large");
            }
            n = n << 4 | (uint64_t) hexval(line.p[i]);
        }
        if (i == 0 || (i < line.len && line.p[i] != ';')) {
            return cp_err_set(err, CP_EINVAL, "aws-chunked: bad chunk size line");
        }
        if (n == 0) {
            break;
        }
        if ((uint64_t) (end - p) < n + 2) {
            return cp_err_set(err, CP_EINVAL, "aws-chunked: chunk runs past the end of the body");
        }
        if (p[n] != '\r' || p[n + 1] != '\n') {
            return cp_err_set(err, CP_EINVAL, "aws-chunked: chunk not followed by CRLF");
        }
        int rc = sink(ctx, p, (size_t) n);
        if (rc < 0) {
            return rc;
        }
        total += n;
        p += n + 2;
    }
    /* Trailers, then an empty line (optional at the very end). */
    while (p < end) {
        cp_slice line;
        if (take_line(&p, end, &line) < 0) {
            line = cp_slice_of(p, (size_t) (end - p));
            p = end;
        }
        if (line.len == 0) {
            break;
        }
        const char *colon = memchr(line.p, ':', line.len);
        if (!colon) {
            return cp_err_set(err, CP_EINVAL, "aws-chunked: bad trailer line");
        }
        cp_slice name = trim(cp_slice_of(line.p, (size_t) (colon - line.p)));
        cp_slice value = trim(cp_slice_of(colon + 1, line.len - (size_t) (colon + 1 - line.p)));
        if (name.len == 0) {
            return cp_err_set(err, CP_EINVAL, "aws-chunked: bad trailer line");
        }
        if (trailers &&
            !(name.len == 23 && strncasecmp(name.p, "x-amz-trailer-signature", 23) == 0)) {
            for (size_t k = 0; k < name.len; k++) {
                char c = name.p[k];
                cp_buf_putc(trailers, (char) (c >= 'A' && c <= 'Z' ? c + 32 : c));
            }
            cp_buf_putc(trailers, 0);
            cp_buf_append(trailers, value.p, value.len);
            cp_buf_putc(trailers, 0);
        }
    }
    if (p != end) {
        return cp_err_set(err, CP_EINVAL, "aws-chunked: data after the final chunk");
    }
    if (decoded_len) {
        *decoded_len = total;
    }
    return CP_OK;
}

cp_slice cp_chunked_field(cp_slice fields, const char *name)
{
    const char *p = fields.p, *end = fields.p + fields.len;
    size_t nlen = strlen(name);
    while (p && p < end) {
        size_t kl = strnlen(p, (size_t) (end - p));
        const char *v = p + kl + 1;
        if (v > end) {
            break;
        }
        size_t vl = strnlen(v, (size_t) (end - v));
        if (kl == nlen && memcmp(p, name, nlen) == 0) {
            return cp_slice_of(v, vl);
        }
        p = v + vl + 1;
    }
    return (cp_slice){NULL, 0};
}
