/* SPDX-License-Identifier: MIT */
/*
 * table/item.h: cp_item_from_json on the input as an AttributeValue map. A parsed item must
 * pass cp_item_check, print with cp_item_to_json and parse back to an equal item; a rejected
 * one must leave the builder's buffer untouched.
 */
#include "fuzz.h"
#include "table/item.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cp_json_lexer lx;
    cp_json_lexer_init(&lx, cp_slice_of((const char *) data, size));
    cp_buf item = CP_BUF_INIT, json = CP_BUF_INIT, again = CP_BUF_INIT;
    cp_item_builder b;
    cp_err err = {0};
    cp_item_builder_init(&b, &item);
    int rc = cp_item_from_json(&lx, &b, &err);
    if (rc != CP_OK) {
        CP_FUZZ_CHECK(rc == CP_EINVAL || rc == CP_ENOTFOUND);
        CP_FUZZ_CHECK(item.len == 0);
        goto out;
    }
    cp_slice s = cp_buf_slice(&item);
    CP_FUZZ_CHECK(cp_item_check(s) == CP_OK);
    cp_item_to_json(s, &json);

    cp_json_lexer lx2;
    cp_item_builder b2;
    cp_json_lexer_init(&lx2, cp_buf_slice(&json));
    cp_item_builder_init(&b2, &again);
    rc = cp_item_from_json(&lx2, &b2, &err);
    if (rc != CP_OK) {
        fprintf(stderr, "re-parse of %.*s failed: %s\n", (int) json.len, json.p, err.msg);
    }
    CP_FUZZ_CHECK(rc == CP_OK);
    CP_FUZZ_CHECK(cp_item_equal(s, cp_buf_slice(&again)));
out:
    cp_buf_free(&item);
    cp_buf_free(&json);
    cp_buf_free(&again);
    return 0;
}
