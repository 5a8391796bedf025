/* SPDX-License-Identifier: MIT */
/*
 * delivery/prefix.h: the input as a Prefix and as an ErrorOutputPrefix template (and raw). A
 * compiled template is evaluated with fixed variables: CP_OK, or CP_EINVAL / CP_ETOOBIG with
 * the output restored to its length at entry.
 */
#include <string.h>

#include "delivery/prefix.h"
#include "fuzz.h"

static void eval(const cp_prefix *p)
{
    static char lkey[] = "LivestreamID", lval[] = "42", qkey[] = "k", qval[] = "v/w";
    cp_pkey lk = {cp_slice_str(lkey), cp_slice_str(lval)};
    cp_pkey qk = {cp_slice_str(qkey), cp_slice_str(qval)};
    cp_drec rec = {.lambda_keys = &lk, .nlambda_keys = 1, .query_keys = &qk, .nquery_keys = 1};
    cp_prefix_vars v = {.instant_ms = 1767225600123LL,
                        .error_type = "processing-failed",
                        .rec = &rec,
                        .random_seed = 7};
    CP_FUZZ_CHECK(cp_prefix_text(p) != NULL);
    size_t nkeys = cp_prefix_nkeys(p);
    for (size_t i = 0; i < nkeys; i++) {
        cp_prefix_ns ns;
        const char *name = NULL;
        cp_prefix_key(p, i, &ns, &name);
        CP_FUZZ_CHECK(name != NULL);
    }
    cp_buf out = CP_BUF_INIT;
    cp_buf_puts(&out, "x"); /* a non-empty start shows whether errors restore the length */
    cp_err err = {0};
    int rc = cp_prefix_eval(p, &v, &out, &err);
    CP_FUZZ_CHECK(rc == CP_OK || rc == CP_EINVAL || rc == CP_ETOOBIG);
    if (rc != CP_OK) {
        CP_FUZZ_CHECK(out.len == 1);
    }
    /* Without records or an error type: only clean errors. */
    cp_prefix_vars bare = {.instant_ms = -1};
    out.len = 1;
    rc = cp_prefix_eval(p, &bare, &out, &err);
    CP_FUZZ_CHECK(rc == CP_OK || rc == CP_EINVAL || rc == CP_ETOOBIG);
    if (rc != CP_OK) {
        CP_FUZZ_CHECK(out.len == 1);
    }
    cp_buf_free(&out);
}

static void check(int rc, cp_prefix *p, const cp_err *err)
{
    if (rc == CP_OK) {
        CP_FUZZ_CHECK(p != NULL);
        eval(p);
        cp_prefix_free(p);
    } else {
        CP_FUZZ_CHECK(rc == CP_EINVAL && err->msg[0] != '\0');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1); /* the API takes C strings: the text ends at the first NUL */
    CP_FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    cp_prefix *p = NULL;
    cp_err err = {0};

    /* The raw-slice API gets every byte, NULs included (a NUL inside !{timestamp:...} once
     * made compile_timestamp loop forever: tests/fuzz/corpus/prefix/nul-in-timestamp). */
    int rc = cp_prefix_compile(cp_slice_of(text, size), &p, &err);
    check(rc, p, &err);
    p = NULL;
    rc = cp_prefix_compile_data(text, &p, &err);
    check(rc, p, &err);
    p = NULL;
    rc = cp_prefix_compile_error(text, "data/!{partitionKeyFromQuery:k}/", &p, &err);
    check(rc, p, &err);
    p = NULL;
    rc = cp_prefix_compile_error(NULL, text, &p, &err);
    check(rc, p, &err);
    free(text);
    return 0;
}
