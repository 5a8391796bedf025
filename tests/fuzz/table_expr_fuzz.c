/* SPDX-License-Identifier: MIT */
/*
 * table/expr.h: the input as a ConditionExpression and as an UpdateExpression, each with no
 * placeholders and with a small fixed ExpressionAttributeNames/Values set (unused placeholders
 * are an error, so both are needed to reach the evaluator). A compiled expression is evaluated
 * against a small item; a successful update must produce a structurally valid item.
 */
#include <string.h>

#include "fuzz.h"
#include "table/expr.h"

static cp_buf g_names, g_values, g_item, g_key;

static void parse_item(const char *json, cp_buf *out)
{
    cp_json_lexer lx;
    cp_item_builder b;
    cp_err err = {0};
    cp_json_lexer_init(&lx, cp_slice_str(json));
    cp_item_builder_init(&b, out);
    CP_FUZZ_CHECK(cp_item_from_json(&lx, &b, &err) == CP_OK);
}

static void setup(void)
{
    if (g_item.len) {
        return;
    }
    cp_json_lexer lx;
    cp_err err = {0};
    cp_json_lexer_init(&lx, cp_slice_str("{\"#n\":\"name\",\"#l\":\"list\",\"#m\":\"map\"}"));
    CP_FUZZ_CHECK(cp_expr_names_from_json(&lx, &g_names, &err) == CP_OK);
    parse_item("{\":s\":{\"S\":\"x\"},\":n\":{\"N\":\"1\"},\":l\":{\"L\":[{\"N\":\"2\"}]},"
               "\":ss\":{\"SS\":[\"a\",\"b\"]}}",
               &g_values);
    parse_item("{\"pk\":{\"S\":\"k\"},\"name\":{\"S\":\"x\"},\"n\":{\"N\":\"5\"},"
               "\"list\":{\"L\":[{\"N\":\"1\"},{\"S\":\"y\"}]},"
               "\"map\":{\"M\":{\"a\":{\"BOOL\":true},\"b\":{\"NULL\":true}}},"
               "\"ss\":{\"SS\":[\"a\"]},\"bin\":{\"B\":\"AAE=\"}}",
               &g_item);
    parse_item("{\"pk\":{\"S\":\"k\"}}", &g_key);
}

static void run(cp_expr_op op, int is_update, cp_slice text, int with_placeholders)
{
    cp_expr_input in = {.op = op};
    if (is_update) {
        in.update = text;
    } else {
        in.condition = text;
    }
    if (with_placeholders) {
        in.names = cp_buf_slice(&g_names);
        in.values = cp_buf_slice(&g_values);
    }
    cp_expr *e = NULL;
    cp_err err = {0};
    int rc = cp_expr_compile(&in, &e, &err);
    if (rc != CP_OK) {
        CP_FUZZ_CHECK(rc == CP_EINVAL && e == NULL && err.msg[0] != '\0');
        return;
    }
    CP_FUZZ_CHECK(e != NULL);
    int c1 = cp_expr_eval_condition(e, cp_buf_slice(&g_item));
    int c2 = cp_expr_eval_condition(e, cp_slice_of("", 0));
    CP_FUZZ_CHECK((c1 == 0 || c1 == 1) && (c2 == 0 || c2 == 1));
    if (is_update) {
        cp_buf out = CP_BUF_INIT;
        rc = cp_expr_apply_update(e, cp_buf_slice(&g_item), cp_buf_slice(&g_key), &out, &err);
        CP_FUZZ_CHECK(rc == CP_OK || rc == CP_EINVAL);
        if (rc == CP_OK) {
            CP_FUZZ_CHECK(cp_item_check(cp_buf_slice(&out)) == CP_OK);
            cp_buf proj = CP_BUF_INIT;
            cp_expr_project_updated(e, cp_buf_slice(&out), &proj);
            CP_FUZZ_CHECK(cp_item_check(cp_buf_slice(&proj)) == CP_OK);
            cp_buf_free(&proj);
        }
        cp_buf_reset(&out);
        /* No old item: the key seeds a new one. */
        rc = cp_expr_apply_update(e, cp_slice_of("", 0), cp_buf_slice(&g_key), &out, &err);
        CP_FUZZ_CHECK(rc == CP_OK || rc == CP_EINVAL);
        if (rc == CP_OK) {
            CP_FUZZ_CHECK(cp_item_check(cp_buf_slice(&out)) == CP_OK);
        }
        cp_buf_free(&out);
    }
    cp_expr_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    cp_slice text = cp_slice_of((const char *) data, size);
    for (int ph = 0; ph < 2; ph++) {
        run(CP_EXPR_OP_PUT, 0, text, ph);
        run(CP_EXPR_OP_UPDATE, 1, text, ph);
    }
    return 0;
}
