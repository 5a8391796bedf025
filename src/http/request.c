/* SPDX-License-Identifier: MIT */
/* Request/response helpers and the per-request scratch arena (see request.h). */
#include "http/request.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/mem.h"

/* ------------------------------------------------------------------------------------------ */
/* Scratch arena                                                                               */

/* 16 KiB covers the decoding temporaries of a typical 8 KB JSON request in one block. */
#define SCRATCH_BLOCK 16384

struct cp_http_scratch_block {
    cp_http_scratch_block *next;
    size_t cap;
    _Alignas(16) unsigned char data[];
};

void *cp_http_scratch_alloc(cp_http_scratch *s, size_t n)
{
    n = (n + 15) & ~(size_t) 15;
    if (!s->head || s->head->cap - s->used < n) {
        size_t cap = n > SCRATCH_BLOCK ? n : SCRATCH_BLOCK;
        cp_http_scratch_block *b = cp_malloc(sizeof(*b) + cap);
        b->cap = cap;
        b->next = s->head;
        s->head = b;
        s->used = 0;
    }
    void *p = s->head->data + s->used;
    s->used += n;
    s->total += n;
    return p;
}

char *cp_http_scratch_strdup(cp_http_scratch *s, cp_slice v)
{
    char *p = cp_http_scratch_alloc(s, v.len + 1);
    if (v.len) {
        memcpy(p, v.p, v.len);
    }
    p[v.len] = 0;
    return p;
}

void cp_http_scratch_reset(cp_http_scratch *s)
{
    /* Keep the oldest block (the list tail) only if it is a standard-size one; an oversized
     * block from one big request should not stay pinned for the connection's life. */
    cp_http_scratch_block *b = s->head, *keep = NULL;
    while (b) {
        cp_http_scratch_block *next = b->next;
        if (!next && b->cap == SCRATCH_BLOCK) {
            keep = b;
        } else {
            cp_free(b);
        }
        b = next;
    }
    if (keep) {
        keep->next = NULL;
    }
    s->head = keep;
    s->used = 0;
    s->total = 0;
}

void cp_http_scratch_free(cp_http_scratch *s)
{
    cp_http_scratch_reset(s);
    cp_free(s->head);
    *s = CP_HTTP_SCRATCH_INIT;
}

/* ------------------------------------------------------------------------------------------ */
/* Request                                                                                     */

int cp_http_slice_ieq(cp_slice a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && (n == 0 || strncasecmp(a.p, b, n) == 0);
}

cp_slice cp_http_req_header(const cp_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (cp_http_slice_ieq(req->headers[i].name, name)) {
            return req->headers[i].value;
        }
    }
    return (cp_slice){NULL, 0};
}

static int hexval(int c)
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

void cp_http_pct_decode(cp_slice in, int plus_space, cp_buf *out)
{
    cp_buf_reserve(out, in.len);
    for (size_t i = 0; i < in.len; i++) {
        char c = in.p[i];
        if (c == '%' && i + 2 < in.len) {
            int hi = hexval((unsigned char) in.p[i + 1]), lo = hexval((unsigned char) in.p[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out->p[out->len++] = (char) (hi << 4 | lo);
                i += 2;
                continue;
            }
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        out->p[out->len++] = c;
    }
    out->p[out->len] = 0;
}

int cp_http_req_query_param(const cp_http_req *req, const char *name, cp_slice *out)
{
    size_t nlen = strlen(name);
    const char *p = req->query.p, *end = req->query.p + req->query.len;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t) (end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t) (stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t) (kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            cp_slice raw = eq ? cp_slice_of(eq + 1, (size_t) (stop - eq - 1)) : cp_slice_of("", 0);
            cp_buf tmp = CP_BUF_INIT;
            cp_http_pct_decode(raw, 1, &tmp);
            *out = cp_slice_of(cp_http_scratch_strdup(req->scratch, cp_buf_slice(&tmp)), tmp.len);
            cp_buf_free(&tmp);
            return CP_OK;
        }
        p = amp ? amp + 1 : end;
    }
    return CP_ENOTFOUND;
}

/* ------------------------------------------------------------------------------------------ */
/* Response                                                                                    */

void cp_http_resp_init(cp_http_resp *r)
{
    r->status = 200;
    r->body = CP_BUF_INIT;
    r->hdrs = CP_BUF_INIT;
    r->nhdrs = 0;
    r->file_fd = -1;
    r->file_off = 0;
    r->file_len = 0;
    r->close = 0;
}

void cp_http_resp_reset(cp_http_resp *r)
{
    r->status = 200;
    cp_buf_reset(&r->body);
    cp_buf_reset(&r->hdrs);
    r->nhdrs = 0;
    if (r->file_fd >= 0) {
        close(r->file_fd);
    }
    r->file_fd = -1;
    r->file_off = r->file_len = 0;
    r->close = 0;
}

void cp_http_resp_free(cp_http_resp *r)
{
    cp_http_resp_reset(r);
    cp_buf_free(&r->body);
    cp_buf_free(&r->hdrs);
}

void cp_http_resp_add_header(cp_http_resp *r, const char *name, cp_slice value)
{
    cp_buf_append(&r->hdrs, name, strlen(name) + 1);
    cp_buf_append(&r->hdrs, value.p ? value.p : "", value.len);
    cp_buf_putc(&r->hdrs, 0);
    r->nhdrs++;
}

void cp_http_resp_add_headerf(cp_http_resp *r, const char *name, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
    }
    cp_http_resp_add_header(
        r, name, cp_slice_of(tmp, (size_t) n < sizeof(tmp) ? (size_t) n : sizeof(tmp) - 1));
}

void cp_http_resp_clear_headers(cp_http_resp *r)
{
    cp_buf_reset(&r->hdrs);
    r->nhdrs = 0;
}

int cp_http_resp_next_header(const cp_http_resp *r, size_t *pos, cp_slice *name, cp_slice *value)
{
    if (*pos >= r->hdrs.len) {
        return 0;
    }
    const char *p = r->hdrs.p + *pos;
    size_t nl = strlen(p);
    const char *v = p + nl + 1;
    size_t vl = strlen(v);
    *name = cp_slice_of(p, nl);
    *value = cp_slice_of(v, vl);
    *pos += nl + 1 + vl + 1;
    return 1;
}

cp_slice cp_http_resp_header(const cp_http_resp *r, const char *name)
{
    size_t pos = 0;
    cp_slice n, v;
    while (cp_http_resp_next_header(r, &pos, &n, &v)) {
        if (cp_http_slice_ieq(n, name)) {
            return v;
        }
    }
    return (cp_slice){NULL, 0};
}

void cp_http_resp_set(cp_http_resp *r, int status, const char *content_type, cp_slice body)
{
    r->status = status;
    cp_buf_reset(&r->body);
    if (body.len) {
        cp_buf_append(&r->body, body.p, body.len);
    }
    if (content_type) {
        cp_http_resp_add_header(r, "Content-Type", cp_slice_str(content_type));
    }
}

void cp_http_resp_set_file(cp_http_resp *r, int fd, uint64_t off, uint64_t len)
{
    if (r->file_fd >= 0) {
        close(r->file_fd);
    }
    r->file_fd = fd;
    r->file_off = off;
    r->file_len = len;
}

void cp_http_date(int64_t epoch_s, char out[30])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char mons[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t) epoch_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    char tmp[64]; /* wide enough for any int the compiler imagines */
    snprintf(tmp, sizeof(tmp), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
             tm.tm_mday, mons[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    memcpy(out, tmp, 29);
    out[29] = 0;
}
