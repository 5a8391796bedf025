/* SPDX-License-Identifier: MIT */
/*
 * core/json.h: the pull lexer over arbitrary bytes, cp_json_unescape on every string and key
 * token, and cp_json_skip from every token of a second pass.
 */
#include "core/json.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cp_slice in = cp_slice_of((const char *) data, size);
    cp_buf scratch = CP_BUF_INIT;
    cp_json_lexer lx;
    cp_json_tok tok;
    cp_json_lexer_init(&lx, in);
    /* Every token but END consumes input, so more tokens than bytes means the lexer spins. */
    size_t ntok = 0;
    for (;;) {
        int rc = cp_json_next(&lx, &tok);
        if (rc != CP_OK) {
            CP_FUZZ_CHECK(rc == CP_EINVAL && lx.error != NULL);
            /* Sticky: the same error again. */
            CP_FUZZ_CHECK(cp_json_next(&lx, &tok) == CP_EINVAL);
            break;
        }
        CP_FUZZ_CHECK(cp_json_offset(&lx) <= size);
        CP_FUZZ_CHECK(lx.depth >= 0 && lx.depth <= CP_JSON_MAX_DEPTH);
        if (tok.type == CP_JSON_END) {
            break;
        }
        CP_FUZZ_CHECK(++ntok <= size);
        if (tok.type == CP_JSON_STRING || tok.type == CP_JSON_KEY ||
            tok.type == CP_JSON_NUMBER) {
            CP_FUZZ_CHECK(tok.s.p >= in.p && tok.s.p + tok.s.len <= in.p + size);
        }
        if (tok.type == CP_JSON_STRING || tok.type == CP_JSON_KEY) {
            cp_buf_reset(&scratch);
            int urc = cp_json_unescape(tok.s, &scratch);
            CP_FUZZ_CHECK(urc == CP_OK || urc == CP_EINVAL);
            if (!tok.escaped && urc == CP_OK) {
                /* Without escapes decoding is the identity. */
                CP_FUZZ_CHECK(cp_slice_eq(cp_buf_slice(&scratch), tok.s));
            }
            cp_slice v;
            int src = cp_json_tok_string(&tok, &scratch, &v);
            CP_FUZZ_CHECK(src == urc);
        }
    }

    /* Second pass: skip each top-level-or-nested value as soon as it starts. */
    cp_json_lexer_init(&lx, in);
    for (size_t n = 0; n <= size; n++) {
        if (cp_json_next(&lx, &tok) != CP_OK || tok.type == CP_JSON_END) {
            break;
        }
        if (tok.type != CP_JSON_KEY && tok.type != CP_JSON_OBJ_END &&
            tok.type != CP_JSON_ARR_END && cp_json_skip(&lx, &tok) != CP_OK) {
            break;
        }
    }
    cp_buf_free(&scratch);
    return 0;
}
