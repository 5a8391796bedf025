/* SPDX-License-Identifier: MIT */
/*
 * aws/sigv4.h: the input as an Authorization header value, as a presigned query string (the
 * whole request parse), and through the query/URI canonicalisation. Parsed slices must borrow
 * the input (or the auth's own date buffer).
 */
#include <string.h>

#include "aws/sigv4.h"
#include "fuzz.h"

static int inside(cp_slice s, const void *base, size_t size, const cp_sigv4_auth *a)
{
    const char *b = base;
    if (s.len == 0) {
        return 1;
    }
    if (s.p >= b && s.p + s.len <= b + size) {
        return 1;
    }
    return s.p >= a->date_buf && s.p + s.len <= a->date_buf + sizeof(a->date_buf);
}

static void check_auth(const cp_sigv4_auth *a, const void *base, size_t size)
{
    const cp_slice parts[] = {a->algorithm, a->credential, a->access_key,     a->date,
                              a->region,    a->service,    a->terminator,     a->scope,
                              a->signed_headers, a->signature};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        CP_FUZZ_CHECK(inside(parts[i], base, size, a));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cp_slice in = cp_slice_of((const char *) data, size);
    cp_sigv4_auth a;
    cp_sigv4_err err;
    memset(&a, 0, sizeof(a));
    memset(&err, 0, sizeof(err));
    int rc = cp_sigv4_parse_header(in, &a, &err);
    if (rc == CP_OK) {
        check_auth(&a, data, size);
    } else {
        CP_FUZZ_CHECK(rc == CP_EINVAL);
        CP_FUZZ_CHECK(err.kind == CP_SIGV4_MISSING || err.kind == CP_SIGV4_INCOMPLETE);
    }

    /* The same bytes as the query of GET /bucket/key (a presigned URL). */
    cp_http_header hdrs[] = {{CP_SLICE("Host"), CP_SLICE("localhost:4566")}};
    cp_http_scratch scratch = CP_HTTP_SCRATCH_INIT;
    cp_http_req req = {.method = CP_SLICE("GET"),
                       .target = CP_SLICE("/bucket/key"),
                       .path = CP_SLICE("/bucket/key"),
                       .query = in,
                       .headers = hdrs,
                       .nheaders = 1,
                       .body = cp_slice_of("", 0),
                       .remote = "fuzz",
                       .version = 11,
                       .scratch = &scratch};
    memset(&a, 0, sizeof(a));
    memset(&err, 0, sizeof(err));
    rc = cp_sigv4_parse(&req, &a, &err);
    CP_FUZZ_CHECK(rc == CP_OK || (rc == CP_EINVAL && err.kind != CP_SIGV4_OK));
    /* With no credentials configured verify accepts any well-formed signature. */
    cp_sigv4_policy pol = {.flags = CP_SIGV4_S3, .now_s = 1440938160};
    rc = cp_sigv4_verify(&req, &pol, &a, &err);
    CP_FUZZ_CHECK(rc == CP_OK || rc == CP_EINVAL);
    cp_http_scratch_free(&scratch);

    cp_buf out = CP_BUF_INIT;
    for (unsigned flags = 0; flags < 4; flags++) {
        cp_buf_reset(&out);
        cp_sigv4_canonical_query(in, flags, &out);
        cp_buf_reset(&out);
        cp_sigv4_canonical_uri(in, flags, &out);
    }
    cp_buf_free(&out);
    return 0;
}
