/* SPDX-License-Identifier: MIT */
/*
 * SigV4 canonicalisation, verification and signing (see sigv4.h). The rules follow the AWS
 * "Create a canonical request" page and the public test suite: URI-encode each path segment
 * (twice for everything but S3, because clients encode the already-encoded path), normalise
 * the path except for S3, sort the query by encoded name then value, trim and fold header
 * values, join repeated headers with ','.
 */
#include "aws/sigv4.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/clock.h"
#include "core/hash.h"
#include "core/mem.h"

/* A request with more query parameters than this is refused rather than sorted. */
#define MAX_QUERY_PARAMS 1000

static int sigv4_fail(cp_sigv4_err *err, cp_sigv4_fail kind, const char *fmt, ...) CP_PRINTF(3, 4);

static int sigv4_fail(cp_sigv4_err *err, cp_sigv4_fail kind, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->kind = kind;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return CP_EINVAL;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int slice_ieq(cp_slice a, cp_slice b)
{
    if (a.len != b.len) {
        return 0;
    }
    for (size_t i = 0; i < a.len; i++) {
        if (lower((unsigned char) a.p[i]) != lower((unsigned char) b.p[i])) {
            return 0;
        }
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Encoding                                                                                    */

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

void cp_sigv4_uri_encode(cp_slice in, int keep_slash, cp_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    cp_buf_reserve(out, in.len * 3);
    char *w = out->p + out->len;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char) in.p[i];
        if (unreserved(c) || (c == '/' && keep_slash)) {
            *w++ = (char) c;
        } else {
            *w++ = '%';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        }
    }
    out->len = (size_t) (w - out->p);
    out->p[out->len] = 0;
}

/* Path normalisation for non-S3 services (RFC 3986 dot segments plus collapsing empty
 * segments), keeping a trailing slash: "//example//" -> "/example/", "/a/.." -> "/". */
static void normalize_path(cp_slice path, cp_buf *out)
{
    size_t start = out->len;
    cp_buf_putc(out, '/');
    size_t i = 0;
    while (i < path.len) {
        while (i < path.len && path.p[i] == '/') {
            i++;
        }
        size_t s = i;
        while (i < path.len && path.p[i] != '/') {
            i++;
        }
        size_t n = i - s;
        if (n == 0 || (n == 1 && path.p[s] == '.')) {
            continue;
        }
        if (n == 2 && path.p[s] == '.' && path.p[s + 1] == '.') {
            /* Pop the last segment (never above the root). */
            if (out->len > start + 1) {
                out->len--; /* the '/' after the segment */
                while (out->len > start + 1 && out->p[out->len - 1] != '/') {
                    out->len--;
                }
            }
            out->p[out->len] = 0;
            continue;
        }
        cp_buf_append(out, path.p + s, n);
        cp_buf_putc(out, '/');
    }
    int trailing = path.len > 0 && path.p[path.len - 1] == '/';
    if (out->len > start + 1 && !trailing) {
        out->len--;
        out->p[out->len] = 0;
    }
}

static void pct_decode(cp_slice in, int plus_space, cp_buf *out)
{
    cp_http_pct_decode(in, plus_space, out);
}

void cp_sigv4_canonical_uri(cp_slice raw_path, unsigned flags, cp_buf *out)
{
    if (raw_path.len == 0) {
        cp_buf_putc(out, '/');
        return;
    }
    cp_buf tmp = CP_BUF_INIT;
    if (flags & CP_SIGV4_S3) {
        /* S3 signs the path once-encoded, as sent; decode and re-encode so clients that
         * leave reserved characters raw (or use lower-case escapes) still match. */
        pct_decode(raw_path, 0, &tmp);
    } else {
        normalize_path(raw_path, &tmp);
    }
    cp_sigv4_uri_encode(cp_buf_slice(&tmp), 1, out);
    cp_buf_free(&tmp);
}

typedef struct qparam {
    size_t name_off, name_len, value_off, value_len; /* in the encoded buffer */
    const char *name, *value;                        /* set once the buffer stops moving */
} qparam;

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* Sort by encoded name, then encoded value (byte order). */
static int qparam_cmp(const void *a, const void *b)
{
    const qparam *x = a, *y = b;
    int c = cmp_bytes(x->name, x->name_len, y->name, y->name_len);
    return c ? c : cmp_bytes(x->value, x->value_len, y->value, y->value_len);
}

void cp_sigv4_canonical_query(cp_slice q, unsigned flags, cp_buf *out)
{
    if (q.len == 0) {
        return;
    }
    qparam stack[16];
    qparam *ps = stack;
    size_t n = 0, cap = 16;
    cp_buf enc = CP_BUF_INIT, dec = CP_BUF_INIT;
    const char *p = q.p, *end = q.p + q.len;
    while (p < end && n < MAX_QUERY_PARAMS) {
        const char *amp = memchr(p, '&', (size_t) (end - p));
        const char *stop = amp ? amp : end;
        if (stop > p) {
            const char *eq = memchr(p, '=', (size_t) (stop - p));
            cp_slice name = cp_slice_of(p, (size_t) ((eq ? eq : stop) - p));
            cp_slice value =
                eq ? cp_slice_of(eq + 1, (size_t) (stop - eq - 1)) : cp_slice_of("", 0);
            cp_buf_reset(&dec);
            pct_decode(name, 1, &dec);
            int skip = (flags & CP_SIGV4_PRESIGNED) &&
                       cp_slice_eq(cp_buf_slice(&dec), CP_SLICE("X-Amz-Signature"));
            if (!skip) {
                if (n == cap) {
                    cap *= 2;
                    qparam *np = cp_malloc(cap * sizeof(*np));
                    memcpy(np, ps, n * sizeof(*np));
                    if (ps != stack) {
                        cp_free(ps);
                    }
                    ps = np;
                }
                qparam *qp = &ps[n++];
                qp->name_off = enc.len;
                cp_sigv4_uri_encode(cp_buf_slice(&dec), 0, &enc);
                qp->name_len = enc.len - qp->name_off;
                cp_buf_reset(&dec);
                pct_decode(value, 1, &dec);
                qp->value_off = enc.len;
                cp_sigv4_uri_encode(cp_buf_slice(&dec), 0, &enc);
                qp->value_len = enc.len - qp->value_off;
            }
        }
        p = amp ? amp + 1 : end;
    }
    for (size_t i = 0; i < n; i++) {
        ps[i].name = enc.p + ps[i].name_off;
        ps[i].value = enc.p + ps[i].value_off;
    }
    qsort(ps, n, sizeof(*ps), qparam_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i) {
            cp_buf_putc(out, '&');
        }
        cp_buf_append(out, ps[i].name, ps[i].name_len);
        cp_buf_putc(out, '=');
        cp_buf_append(out, ps[i].value, ps[i].value_len);
    }
    if (ps != stack) {
        cp_free(ps);
    }
    cp_buf_free(&enc);
    cp_buf_free(&dec);
}

/* Append a header value trimmed, with internal runs of whitespace folded to one space. */
static void put_trimmed(cp_buf *out, cp_slice v)
{
    size_t i = 0, n = v.len;
    while (i < n && (v.p[i] == ' ' || v.p[i] == '\t')) {
        i++;
    }
    while (n > i && (v.p[n - 1] == ' ' || v.p[n - 1] == '\t')) {
        n--;
    }
    cp_buf_reserve(out, n - i);
    int space = 0;
    for (; i < n; i++) {
        char c = v.p[i];
        if (c == ' ' || c == '\t') {
            space = 1;
            continue;
        }
        if (space) {
            out->p[out->len++] = ' ';
            space = 0;
        }
        out->p[out->len++] = c;
    }
    out->p[out->len] = 0;
}

void cp_sigv4_canonical_request(const cp_sigv4_msg *m, cp_slice signed_headers, unsigned flags,
                                cp_buf *out)
{
    cp_buf_append(out, m->method.p, m->method.len);
    cp_buf_putc(out, '\n');
    cp_sigv4_canonical_uri(m->path, flags, out);
    cp_buf_putc(out, '\n');
    cp_sigv4_canonical_query(m->query, flags, out);
    cp_buf_putc(out, '\n');
    const char *p = signed_headers.p, *end = signed_headers.p + signed_headers.len;
    while (p && p < end) {
        const char *semi = memchr(p, ';', (size_t) (end - p));
        cp_slice name = cp_slice_of(p, (size_t) ((semi ? semi : end) - p));
        for (size_t i = 0; i < name.len; i++) {
            cp_buf_putc(out, (char) lower((unsigned char) name.p[i]));
        }
        cp_buf_putc(out, ':');
        int first = 1;
        for (size_t i = 0; i < m->nheaders; i++) {
            if (slice_ieq(m->headers[i].name, name)) {
                if (!first) {
                    cp_buf_putc(out, ',');
                }
                put_trimmed(out, m->headers[i].value);
                first = 0;
            }
        }
        cp_buf_putc(out, '\n');
        p = semi ? semi + 1 : end;
    }
    cp_buf_putc(out, '\n');
    cp_buf_append(out, signed_headers.p, signed_headers.len);
    cp_buf_putc(out, '\n');
    cp_buf_append(out, m->payload_hash.p, m->payload_hash.len);
}

/* ------------------------------------------------------------------------------------------ */
/* Crypto                                                                                      */

void cp_sigv4_sha256_hex(cp_slice data, char hex[65])
{
    unsigned char d[32];
    cp_sha256(data.p ? data.p : "", data.len, d);
    cp_hex(d, 32, hex);
}

void cp_sigv4_string_to_sign(cp_slice amz_date, cp_slice scope, cp_slice creq, cp_buf *out)
{
    char hex[65];
    cp_sigv4_sha256_hex(creq, hex);
    cp_buf_puts(out, CP_SIGV4_ALGORITHM "\n");
    cp_buf_append(out, amz_date.p, amz_date.len);
    cp_buf_putc(out, '\n');
    cp_buf_append(out, scope.p, scope.len);
    cp_buf_putc(out, '\n');
    cp_buf_append(out, hex, 64);
}

void cp_sigv4_signing_key(cp_slice secret, cp_slice date, cp_slice region, cp_slice service,
                          unsigned char key[32])
{
    unsigned char k[32];
    char first[4 + 256];
    size_t flen = secret.len < 256 ? secret.len : 256;
    memcpy(first, "AWS4", 4);
    memcpy(first + 4, secret.p, flen);
    cp_hmac_sha256(first, 4 + flen, date.p, date.len, k);
    cp_hmac_sha256(k, 32, region.p, region.len, k);
    cp_hmac_sha256(k, 32, service.p, service.len, k);
    cp_hmac_sha256(k, 32, "aws4_request", 12, key);
}

void cp_sigv4_signature(const unsigned char key[32], cp_slice sts, char hex[65])
{
    unsigned char d[32];
    cp_hmac_sha256(key, 32, sts.p, sts.len, d);
    cp_hex(d, 32, hex);
}

int cp_sigv4_ct_equal(cp_slice a, cp_slice b)
{
    if (a.len != b.len) {
        return 0;
    }
    unsigned char acc = 0;
    for (size_t i = 0; i < a.len; i++) {
        acc |= (unsigned char) (a.p[i] ^ b.p[i]);
    }
    return acc == 0;
}

void cp_sigv4_amz_date(int64_t epoch_s, char out[17])
{
    time_t t = (time_t) epoch_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static int digits(const char *p, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

int cp_sigv4_parse_amz_date(cp_slice s, int64_t *epoch_s)
{
    int Y, M, D, h, m, sec;
    if (s.len != 16 || s.p[8] != 'T' || s.p[15] != 'Z' || !digits(s.p, 4, &Y) ||
        !digits(s.p + 4, 2, &M) || !digits(s.p + 6, 2, &D) || !digits(s.p + 9, 2, &h) ||
        !digits(s.p + 11, 2, &m) || !digits(s.p + 13, 2, &sec) || M < 1 || M > 12 || D < 1 ||
        D > 31 || h > 23 || m > 59 || sec > 60) {
        return CP_EINVAL;
    }
    struct tm tm = {.tm_year = Y - 1900,
                    .tm_mon = M - 1,
                    .tm_mday = D,
                    .tm_hour = h,
                    .tm_min = m,
                    .tm_sec = sec};
    *epoch_s = (int64_t) timegm(&tm);
    return CP_OK;
}

/* An RFC 7231 Date header ("Sun, 30 Aug 2015 12:36:00 GMT") as ISO basic. */
static int http_date_to_amz(cp_slice v, char out[17])
{
    char tmp[64];
    if (v.len >= sizeof(tmp)) {
        return CP_EINVAL;
    }
    memcpy(tmp, v.p, v.len);
    tmp[v.len] = 0;
    struct tm tm = {0};
    const char *end = strptime(tmp, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) {
        return CP_EINVAL;
    }
    cp_sigv4_amz_date((int64_t) timegm(&tm), out);
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing                                                                                     */

/* Split "AKID/date/region/service/aws4_request" into the auth fields. */
static int split_credential(cp_sigv4_auth *a)
{
    cp_slice parts[5];
    size_t n = 0;
    const char *p = a->credential.p, *end = p + a->credential.len;
    while (n < 5) {
        const char *slash = n < 4 ? memchr(p, '/', (size_t) (end - p)) : NULL;
        const char *stop = slash ? slash : end;
        parts[n++] = cp_slice_of(p, (size_t) (stop - p));
        if (!slash) {
            break;
        }
        p = slash + 1;
    }
    if (n != 5 || memchr(parts[4].p, '/', parts[4].len)) {
        return CP_EINVAL;
    }
    a->access_key = parts[0];
    a->date = parts[1];
    a->region = parts[2];
    a->service = parts[3];
    a->terminator = parts[4];
    a->scope = cp_slice_of(parts[1].p, (size_t) (end - parts[1].p));
    return CP_OK;
}

int cp_sigv4_parse_header(cp_slice authz, cp_sigv4_auth *out, cp_sigv4_err *err)
{
    memset(out, 0, sizeof(*out));
    size_t i = 0;
    while (i < authz.len && authz.p[i] == ' ') {
        i++;
    }
    cp_slice rest = cp_slice_of(authz.p + i, authz.len - i);
    if (rest.len < 5 || memcmp(rest.p, "AWS4-", 5) != 0) {
        return sigv4_fail(err, CP_SIGV4_MISSING, "Request is missing Authentication Token");
    }
    const char *sp = memchr(rest.p, ' ', rest.len);
    out->algorithm = cp_slice_of(rest.p, sp ? (size_t) (sp - rest.p) : rest.len);
    if (!cp_slice_eq(out->algorithm, CP_SLICE(CP_SIGV4_ALGORITHM))) {
        return sigv4_fail(err, CP_SIGV4_INCOMPLETE, "Unsupported AWS 'algorithm': '%.*s'",
                          (int) out->algorithm.len, out->algorithm.p);
    }
    /* "Credential=..., SignedHeaders=..., Signature=..." separated by ',' and/or spaces. */
    const char *p = sp ? sp : rest.p + rest.len, *end = rest.p + rest.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ',')) {
            p++;
        }
        const char *s = p;
        while (p < end && *p != ' ' && *p != ',') {
            p++;
        }
        cp_slice kv = cp_slice_of(s, (size_t) (p - s));
        const char *eq = memchr(kv.p, '=', kv.len);
        if (!eq) {
            continue;
        }
        cp_slice k = cp_slice_of(kv.p, (size_t) (eq - kv.p));
        cp_slice v = cp_slice_of(eq + 1, kv.len - k.len - 1);
        if (cp_slice_eq(k, CP_SLICE("Credential"))) {
            out->credential = v;
        } else if (cp_slice_eq(k, CP_SLICE("SignedHeaders"))) {
            out->signed_headers = v;
        } else if (cp_slice_eq(k, CP_SLICE("Signature"))) {
            out->signature = v;
        }
    }
    char msg[512] = "";
    size_t ml = 0;
    if (!out->credential.len) {
        ml += (size_t) snprintf(msg + ml, sizeof(msg) - ml,
                                "Authorization header requires 'Credential' parameter. ");
    }
    if (!out->signature.len) {
        ml += (size_t) snprintf(msg + ml, sizeof(msg) - ml,
                                "Authorization header requires 'Signature' parameter. ");
    }
    if (!out->signed_headers.len) {
        ml += (size_t) snprintf(msg + ml, sizeof(msg) - ml,
                                "Authorization header requires 'SignedHeaders' parameter. ");
    }
    if (ml) {
        return sigv4_fail(err, CP_SIGV4_INCOMPLETE, "%sAuthorization=%.*s", msg,
                          (int) (authz.len > 1024 ? 1024 : authz.len), authz.p);
    }
    if (split_credential(out) < 0) {
        return sigv4_fail(err, CP_SIGV4_INCOMPLETE,
                          "Credential should be scoped to a valid region, not '%.*s'. ",
                          (int) out->credential.len, out->credential.p);
    }
    return CP_OK;
}

/* The raw (still encoded) value of query parameter `name`, or {NULL,0}. */
static cp_slice raw_query_param(cp_slice q, const char *name)
{
    size_t nl = strlen(name);
    const char *p = q.p, *end = q.p + q.len;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t) (end - p));
        const char *stop = amp ? amp : end;
        if ((size_t) (stop - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
            return cp_slice_of(p + nl + 1, (size_t) (stop - p - (ptrdiff_t) nl - 1));
        }
        p = amp ? amp + 1 : end;
    }
    return (cp_slice){NULL, 0};
}

/* Decode a query value into the request scratch. */
static cp_slice decoded(const cp_http_req *req, cp_slice raw)
{
    cp_buf tmp = CP_BUF_INIT;
    cp_http_pct_decode(raw, 1, &tmp);
    cp_slice out = cp_slice_of(cp_http_scratch_strdup(req->scratch, cp_buf_slice(&tmp)), tmp.len);
    cp_buf_free(&tmp);
    return out;
}

static int parse_presigned(const cp_http_req *req, cp_sigv4_auth *out, cp_sigv4_err *err)
{
    static const char *const names[] = {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature",
                                        "X-Amz-SignedHeaders", "X-Amz-Date"};
    cp_slice v[5];
    char msg[512] = "";
    size_t ml = 0;
    for (int i = 0; i < 5; i++) {
        cp_slice raw = raw_query_param(req->query, names[i]);
        v[i] = raw.p ? decoded(req, raw) : raw;
        if (!v[i].len) {
            ml += (size_t) snprintf(msg + ml, sizeof(msg) - ml,
                                    "AWS query-string parameters must include '%s'. ", names[i]);
        }
    }
    if (ml) {
        return sigv4_fail(err, CP_SIGV4_INCOMPLETE, "%sRe-examine the query-string parameters.",
                          msg);
    }
    memset(out, 0, sizeof(*out));
    out->presigned = 1;
    out->algorithm = v[0];
    out->credential = v[1];
    out->signature = v[2];
    out->signed_headers = v[3];
    out->amz_date = v[4];
    if (!cp_slice_eq(out->algorithm, CP_SLICE(CP_SIGV4_ALGORITHM))) {
        return sigv4_fail(err, CP_SIGV4_INCOMPLETE,
                          "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
    }
    if (split_credential(out) < 0) {
        return sigv4_fail(err, CP_SIGV4_INCOMPLETE,
                          "Credential should be scoped to a valid region, not '%.*s'. ",
                          (int) out->credential.len, out->credential.p);
    }
    cp_slice exp = raw_query_param(req->query, "X-Amz-Expires");
    if (exp.p) {
        char tmp[24];
        size_t n = exp.len < sizeof(tmp) - 1 ? exp.len : sizeof(tmp) - 1;
        memcpy(tmp, exp.p, n);
        tmp[n] = 0;
        char *e = NULL;
        long long x = strtoll(tmp, &e, 10);
        if (n == 0 || *e || x < 0) {
            return sigv4_fail(err, CP_SIGV4_INCOMPLETE, "X-Amz-Expires should be a number");
        }
        out->expires_s = x;
    }
    cp_slice tok = raw_query_param(req->query, "X-Amz-Security-Token");
    if (tok.p) {
        out->security_token = decoded(req, tok);
    }
    return CP_OK;
}

int cp_sigv4_parse(const cp_http_req *req, cp_sigv4_auth *out, cp_sigv4_err *err)
{
    cp_slice authz = cp_http_req_header(req, "Authorization");
    int has_query = raw_query_param(req->query, "X-Amz-Algorithm").p != NULL;
    if (authz.p && has_query) {
        return sigv4_fail(err, CP_SIGV4_INVALID,
                          "Found both 'X-Amz-Algorithm' as a query-string param and "
                          "'Authorization' as HTTP header.");
    }
    if (has_query) {
        return parse_presigned(req, out, err);
    }
    if (!authz.p) {
        memset(out, 0, sizeof(*out));
        return sigv4_fail(err, CP_SIGV4_MISSING, "Request is missing Authentication Token");
    }
    int rc = cp_sigv4_parse_header(authz, out, err);
    cp_slice xdate = cp_http_req_header(req, "X-Amz-Date");
    cp_slice date = cp_http_req_header(req, "Date");
    if (rc == CP_OK && !xdate.p && !date.p) {
        return sigv4_fail(err, CP_SIGV4_INCOMPLETE,
                          "Authorization header requires existence of either a 'X-Amz-Date' or "
                          "a 'Date' header. Authorization=%.*s",
                          (int) (authz.len > 1024 ? 1024 : authz.len), authz.p);
    }
    if (rc != CP_OK) {
        /* The date requirement is reported together with the missing parameters. */
        if (err && err->kind == CP_SIGV4_INCOMPLETE && !xdate.p && !date.p &&
            strncmp(err->msg, "Authorization header requires '", 31) == 0) {
            char *a = strstr(err->msg, "Authorization=");
            if (a) {
                char tail[1100];
                snprintf(tail, sizeof(tail), "%s", a);
                snprintf(a, sizeof(err->msg) - (size_t) (a - err->msg),
                         "Authorization header requires existence of either a 'X-Amz-Date' or "
                         "a 'Date' header. %s",
                         tail);
            }
        }
        return rc;
    }
    if (xdate.p) {
        out->amz_date = xdate;
    } else if (http_date_to_amz(date, out->date_buf) == CP_OK) {
        out->amz_date = cp_slice_of(out->date_buf, 16);
    } else {
        out->amz_date = date;
    }
    out->security_token = cp_http_req_header(req, "X-Amz-Security-Token");
    if (!out->security_token.p) {
        out->security_token = cp_slice_of("", 0);
    }
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Verification                                                                                */

static int has_signed(cp_slice list, const char *name)
{
    size_t nl = strlen(name);
    const char *p = list.p, *end = list.p + list.len;
    while (p && p < end) {
        const char *semi = memchr(p, ';', (size_t) (end - p));
        const char *stop = semi ? semi : end;
        if ((size_t) (stop - p) == nl && strncasecmp(p, name, nl) == 0) {
            return 1;
        }
        p = semi ? semi + 1 : end;
    }
    return 0;
}

static int is_hex64(cp_slice s)
{
    if (s.len != 64) {
        return 0;
    }
    for (size_t i = 0; i < 64; i++) {
        char c = s.p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

static int check_clock(const cp_sigv4_auth *a, const cp_sigv4_policy *pol, cp_sigv4_err *err)
{
    int64_t t;
    if (cp_sigv4_parse_amz_date(a->amz_date, &t) < 0) {
        return sigv4_fail(err, CP_SIGV4_INCOMPLETE,
                          "Date must be in ISO-8601 'basic format'. Got '%.*s'. See "
                          "http://en.wikipedia.org/wiki/ISO_8601",
                          (int) a->amz_date.len, a->amz_date.p);
    }
    int64_t now = pol->now_s ? pol->now_s : cp_clock_now_ms() / 1000;
    char snow[17], sbound[17];
    cp_sigv4_amz_date(now, snow);
    if (a->presigned) {
        if (now + pol->max_skew_s < t) {
            cp_sigv4_amz_date(now + pol->max_skew_s, sbound);
            return sigv4_fail(err, CP_SIGV4_SKEW, "Request is not yet valid");
        }
        if (now > t + a->expires_s) {
            return sigv4_fail(err, CP_SIGV4_EXPIRED, "Request has expired");
        }
        return CP_OK;
    }
    long mins = (long) (pol->max_skew_s / 60);
    if (t < now - pol->max_skew_s) {
        cp_sigv4_amz_date(now - pol->max_skew_s, sbound);
        return sigv4_fail(err, CP_SIGV4_SKEW,
                          "Signature expired: %.*s is now earlier than %s (%s - %ld min.)",
                          (int) a->amz_date.len, a->amz_date.p, sbound, snow, mins);
    }
    if (t > now + pol->max_skew_s) {
        cp_sigv4_amz_date(now + pol->max_skew_s, sbound);
        return sigv4_fail(err, CP_SIGV4_SKEW,
                          "Signature not yet current: %.*s is still later than %s (%s + %ld min.)",
                          (int) a->amz_date.len, a->amz_date.p, sbound, snow, mins);
    }
    return CP_OK;
}

int cp_sigv4_verify(const cp_http_req *req, const cp_sigv4_policy *pol, cp_sigv4_auth *a,
                    cp_sigv4_err *err)
{
    if (err) {
        err->kind = CP_SIGV4_OK;
        err->msg[0] = 0;
    }
    int rc = cp_sigv4_parse(req, a, err);
    if (rc < 0) {
        return rc;
    }
    if (!pol->ncreds) {
        return CP_OK; /* emulator mode: any well-formed signature */
    }
    if (!cp_slice_eq(a->terminator, CP_SLICE("aws4_request"))) {
        return sigv4_fail(err, CP_SIGV4_INVALID,
                          "Credential should be scoped with a valid terminator: 'aws4_request', "
                          "not '%.*s'. ",
                          (int) a->terminator.len, a->terminator.p);
    }
    if (pol->service && !cp_slice_eq(a->service, cp_slice_str(pol->service))) {
        return sigv4_fail(err, CP_SIGV4_INVALID,
                          "Credential should be scoped to correct service: '%s'. ", pol->service);
    }
    if (a->amz_date.len < 8 || a->date.len != 8 || memcmp(a->date.p, a->amz_date.p, 8) != 0) {
        return sigv4_fail(err, CP_SIGV4_INVALID,
                          "Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
                          "of date from HTTP: '%.*s' != '%.*s', from '%.*s'.",
                          (int) a->date.len, a->date.p,
                          (int) (a->amz_date.len < 8 ? a->amz_date.len : 8), a->amz_date.p,
                          (int) a->amz_date.len, a->amz_date.p);
    }
    /* Over HTTP/2 the JS v3 SDK signs ":authority" instead of "host". */
    if (!has_signed(a->signed_headers, "host") && !has_signed(a->signed_headers, ":authority")) {
        return sigv4_fail(err, CP_SIGV4_INVALID,
                          "'Host' must be a 'SignedHeader' in the AWS Authorization.");
    }
    if (pol->max_skew_s > 0 || a->presigned) {
        rc = check_clock(a, pol, err);
        if (rc < 0) {
            return rc;
        }
    }
    const cp_sigv4_cred *cred = NULL;
    for (size_t i = 0; i < pol->ncreds; i++) {
        if (cp_slice_eq(a->access_key, cp_slice_str(pol->creds[i].access_key))) {
            cred = &pol->creds[i];
            break;
        }
    }
    if (!cred) {
        return sigv4_fail(err, CP_SIGV4_UNKNOWN_KEY,
                          "The security token included in the request is invalid.");
    }

    /* Payload hash: a literal (UNSIGNED-PAYLOAD, STREAMING-...) is signed as sent; a hex hash
     * must match the body we received. */
    char body_hash[65];
    cp_slice claimed = cp_http_req_header(req, "X-Amz-Content-Sha256");
    cp_slice payload;
    if (claimed.p && !is_hex64(claimed)) {
        payload = claimed;
    } else if (!claimed.p && a->presigned && (pol->flags & CP_SIGV4_S3)) {
        payload = CP_SLICE(CP_SIGV4_UNSIGNED_PAYLOAD);
    } else {
        cp_sigv4_sha256_hex(req->body, body_hash);
        if (claimed.p && !slice_ieq(claimed, cp_slice_of(body_hash, 64))) {
            return sigv4_fail(err, CP_SIGV4_HASH_MISMATCH,
                              "The provided 'x-amz-content-sha256' header does not match what "
                              "was computed.");
        }
        payload = claimed.p ? claimed : cp_slice_of(body_hash, 64);
    }
    cp_sigv4_msg m = {req->method, req->path, req->query, req->headers, req->nheaders, payload};
    cp_buf creq = CP_BUF_INIT, sts = CP_BUF_INIT;
    cp_sigv4_canonical_request(&m, a->signed_headers,
                               pol->flags | (a->presigned ? CP_SIGV4_PRESIGNED : 0), &creq);
    cp_sigv4_string_to_sign(a->amz_date, a->scope, cp_buf_slice(&creq), &sts);
    unsigned char key[32];
    char sig[65];
    cp_sigv4_signing_key(cp_slice_str(cred->secret_key), a->date, a->region, a->service, key);
    cp_sigv4_signature(key, cp_buf_slice(&sts), sig);
    rc = CP_OK;
    if (!cp_sigv4_ct_equal(cp_slice_of(sig, 64), a->signature)) {
        /* AWS appends what it expected: the quickest way for a user to find the difference. */
        rc = sigv4_fail(err, CP_SIGV4_MISMATCH,
                        "The request signature we calculated does not match the signature you "
                        "provided. Check your AWS Secret Access Key and signing method. Consult "
                        "the service documentation for details.\n\nThe Canonical String for this "
                        "request should have been\n'%.*s'\n\nThe String-to-Sign should have "
                        "been\n'%s'\n",
                        (int) (creq.len > 1400 ? 1400 : creq.len), creq.p, sts.p);
    }
    cp_buf_free(&creq);
    cp_buf_free(&sts);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Signing                                                                                     */

typedef struct hname {
    const char *p;
    size_t len;
} hname;

static int hname_cmp(const void *a, const void *b)
{
    const hname *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    for (size_t i = 0; i < n; i++) {
        int c = lower((unsigned char) x->p[i]) - lower((unsigned char) y->p[i]);
        if (c) {
            return c;
        }
    }
    return x->len < y->len ? -1 : x->len > y->len;
}

void cp_sigv4_sign(const cp_sigv4_signer *s, const cp_sigv4_msg *m, cp_slice amz_date,
                   cp_buf *authz_out)
{
    /* Signed headers: every distinct name except Authorization, lower-cased and sorted. */
    hname *names = cp_malloc((m->nheaders + 1) * sizeof(*names));
    size_t n = 0;
    for (size_t i = 0; i < m->nheaders; i++) {
        cp_slice nm = m->headers[i].name;
        if (slice_ieq(nm, CP_SLICE("authorization"))) {
            continue;
        }
        names[n++] = (hname){nm.p, nm.len};
    }
    qsort(names, n, sizeof(*names), hname_cmp);
    cp_buf sh = CP_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && hname_cmp(&names[i - 1], &names[i]) == 0) {
            continue;
        }
        if (sh.len) {
            cp_buf_putc(&sh, ';');
        }
        for (size_t j = 0; j < names[i].len; j++) {
            cp_buf_putc(&sh, (char) lower((unsigned char) names[i].p[j]));
        }
    }
    cp_free(names);

    cp_buf scope = CP_BUF_INIT, creq = CP_BUF_INIT, sts = CP_BUF_INIT;
    cp_buf_append(&scope, amz_date.p, amz_date.len < 8 ? amz_date.len : 8);
    cp_buf_putc(&scope, '/');
    cp_buf_append(&scope, s->region.p, s->region.len);
    cp_buf_putc(&scope, '/');
    cp_buf_append(&scope, s->service.p, s->service.len);
    cp_buf_puts(&scope, "/aws4_request");
    cp_sigv4_canonical_request(m, cp_buf_slice(&sh), s->flags, &creq);
    cp_sigv4_string_to_sign(amz_date, cp_buf_slice(&scope), cp_buf_slice(&creq), &sts);
    unsigned char key[32];
    char sig[65];
    cp_sigv4_signing_key(s->secret_key, cp_slice_of(amz_date.p, 8), s->region, s->service, key);
    cp_sigv4_signature(key, cp_buf_slice(&sts), sig);
    cp_buf_puts(authz_out, CP_SIGV4_ALGORITHM " Credential=");
    cp_buf_append(authz_out, s->access_key.p, s->access_key.len);
    cp_buf_putc(authz_out, '/');
    cp_buf_append(authz_out, scope.p, scope.len);
    cp_buf_puts(authz_out, ", SignedHeaders=");
    cp_buf_append(authz_out, sh.p, sh.len);
    cp_buf_puts(authz_out, ", Signature=");
    cp_buf_append(authz_out, sig, 64);
    cp_buf_free(&sh);
    cp_buf_free(&scope);
    cp_buf_free(&creq);
    cp_buf_free(&sts);
}
