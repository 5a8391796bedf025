/* SPDX-License-Identifier: MIT */
/* The item model: DynamoDB JSON <-> binary round trips, validation messages, equality, size
 * accounting, builder and readers, and cp_item_check against damaged bytes. */
#include "cpt.h"

#include "table/item.h"

/* Parse an item; on success also checks that the lexer is at the end and the bytes check. */
static int parse(const char *json, cp_buf *out, cp_err *err)
{
    cp_json_lexer lx;
    cp_json_lexer_init(&lx, cp_slice_str(json));
    cp_item_builder b;
    cp_item_builder_init(&b, out);
    size_t before = out->len;
    int rc = cp_item_from_json(&lx, &b, err);
    CPT_EQ_INT(b.depth, 0);
    if (rc == CP_OK) {
        cp_json_tok t;
        CPT_EQ_INT(cp_json_next(&lx, &t), CP_OK);
        CPT_EQ_INT(t.type, CP_JSON_END);
        CPT_EQ_INT(cp_item_check(cp_slice_of(out->p + before, out->len - before)), CP_OK);
    } else {
        CPT_EQ_INT(out->len, before); /* nothing appended on failure */
    }
    return rc;
}

static void item_of(const char *json, cp_buf *out)
{
    cp_err err = {0};
    cp_buf_reset(out);
    if (parse(json, out, &err) != CP_OK) {
        CPT_FAIL_AT("parse failed: %s\n    for %s", err.msg, json);
    }
}

/* JSON -> binary -> JSON gives `want`; `want` parses back to the same bytes. */
static void expect_json(const char *in, const char *want)
{
    cp_buf bin = CP_BUF_INIT, js = CP_BUF_INIT, bin2 = CP_BUF_INIT;
    item_of(in, &bin);
    cp_item_to_json(cp_buf_slice(&bin), &js);
    CPT_EQ_STR(js.p, want);
    item_of(js.p, &bin2);
    CPT_EQ_MEM(bin.p, bin.len, bin2.p, bin2.len);
    cp_buf_free(&bin);
    cp_buf_free(&js);
    cp_buf_free(&bin2);
}

static void expect_err(const char *in, const char *msg)
{
    cp_buf bin = CP_BUF_INIT;
    cp_err err = {0};
    int rc = parse(in, &bin, &err);
    if (rc != CP_EINVAL) {
        CPT_FAIL_AT("%s: expected CP_EINVAL, got %d", in, rc);
    }
    CPT_EQ_INT(err.code, CP_EINVAL);
    CPT_EQ_STR(err.msg, msg);
    cp_buf_free(&bin);
}

static const char ALL_TYPES[] =
    "{\"s\":{\"S\":\"h\\u00e9llo \\\"q\\\"\"},\"n\":{\"N\":\"01.50\"},\"b\":{\"B\":\"AAECAw==\"},"
    "\"t\":{\"BOOL\":true},\"f\":{\"BOOL\":false},\"z\":{\"NULL\":true},"
    "\"ss\":{\"SS\":[\"a\",\"b\"]},\"ns\":{\"NS\":[\"1\",\"2.50\",\"-1e-3\"]},"
    "\"bs\":{\"BS\":[\"AA==\",\"AQ==\"]},\"l\":{\"L\":[{\"N\":\"1E1\"},{\"S\":\"x\"},{\"L\":[]}]},"
    "\"m\":{\"M\":{\"k\":{\"S\":\"v\"},\"e\":{\"M\":{}},\"deep\":{\"M\":{\"x\":{\"NULL\":true}}}}},"
    "\"es\":{\"S\":\"\"},\"eb\":{\"B\":\"\"}}";

static const char ALL_TYPES_OUT[] =
    "{\"s\":{\"S\":\"h\xc3\xa9llo \\\"q\\\"\"},\"n\":{\"N\":\"1.5\"},\"b\":{\"B\":\"AAECAw==\"},"
    "\"t\":{\"BOOL\":true},\"f\":{\"BOOL\":false},\"z\":{\"NULL\":true},"
    "\"ss\":{\"SS\":[\"a\",\"b\"]},\"ns\":{\"NS\":[\"1\",\"2.5\",\"-0.001\"]},"
    "\"bs\":{\"BS\":[\"AA==\",\"AQ==\"]},\"l\":{\"L\":[{\"N\":\"10\"},{\"S\":\"x\"},{\"L\":[]}]},"
    "\"m\":{\"M\":{\"k\":{\"S\":\"v\"},\"e\":{\"M\":{}},\"deep\":{\"M\":{\"x\":{\"NULL\":true}}}}},"
    "\"es\":{\"S\":\"\"},\"eb\":{\"B\":\"\"}}";

static void round_trips_every_type(void)
{
    expect_json(ALL_TYPES, ALL_TYPES_OUT);
    expect_json("{}", "{}");

    /* Each value on its own through cp_av_from_json / cp_av_to_json. */
    const char *vals[][2] = {
        {"{\"S\":\"x\"}", "{\"S\":\"x\"}"},
        {"{\"N\":\"-0\"}", "{\"N\":\"0\"}"},
        {"{\"B\":\"/+8=\"}", "{\"B\":\"/+8=\"}"},
        {"{\"BOOL\":false}", "{\"BOOL\":false}"},
        {"{\"NULL\":true}", "{\"NULL\":true}"},
        {"{\"SS\":[\"\",\"x\"]}", "{\"SS\":[\"\",\"x\"]}"},
        {"{\"NS\":[\"1.0e2\"]}", "{\"NS\":[\"100\"]}"},
        {"{\"BS\":[\"\",\"AA==\"]}", "{\"BS\":[\"\",\"AA==\"]}"},
        {"{\"L\":[{\"NULL\":true},{\"M\":{}}]}", "{\"L\":[{\"NULL\":true},{\"M\":{}}]}"},
        {"{\"M\":{\"a\":{\"L\":[{\"N\":\"1\"}]}}}", "{\"M\":{\"a\":{\"L\":[{\"N\":\"1\"}]}}}"},
    };
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        cp_buf bin = CP_BUF_INIT, js = CP_BUF_INIT;
        cp_json_lexer lx;
        cp_json_lexer_init(&lx, cp_slice_str(vals[i][0]));
        cp_item_builder b;
        cp_item_builder_init(&b, &bin);
        cp_err err = {0};
        if (cp_av_from_json(&lx, &b, &err) != CP_OK) {
            CPT_FAIL_AT("%s: %s", vals[i][0], err.msg);
        }
        cp_av v = {(cp_av_type) (unsigned char) bin.p[0], cp_slice_of(bin.p + 1, bin.len - 1)};
        cp_av_to_json(v, &js);
        CPT_EQ_STR(js.p, vals[i][1]);
        CPT_EQ_MEM(cp_av_raw(v).p, cp_av_raw(v).len, bin.p, bin.len);
        cp_buf_free(&bin);
        cp_buf_free(&js);
    }
}

static void decodes_escapes_in_place(void)
{
    /* 30 escapes: 180 raw bytes (2-byte varint reserved), 60 decoded (1-byte varint). */
    char in[512] = "{\"a\":{\"S\":\"", want[512] = "{\"a\":{\"S\":\"";
    for (int i = 0; i < 30; i++) {
        strcat(in, "\\u00e9");
        strcat(want, "\xc3\xa9");
    }
    strcat(in, "\"}}");
    strcat(want, "\"}}");
    expect_json(in, want);

    cp_buf bin = CP_BUF_INIT;
    item_of(in, &bin);
    cp_av v;
    CPT_CHECK(cp_item_find(cp_buf_slice(&bin), CP_SLICE("a"), &v));
    CPT_EQ_INT(cp_av_bytes(v).len, 60);
    CPT_EQ_INT(v.body.len, 61);

    /* Escaped names and escaped type descriptors are decoded too. */
    item_of("{\"\\u0061\\n\":{\"\\u0053\":\"\\/x\\u0000\"}}", &bin);
    CPT_CHECK(cp_item_find(cp_buf_slice(&bin), CP_SLICE("a\n"), &v));
    CPT_EQ_INT(v.type, CP_AV_S);
    CPT_EQ_MEM(cp_av_bytes(v).p, cp_av_bytes(v).len, "/x\0", 3);
    /* Base64 written with escaped slashes (some encoders do that). */
    item_of("{\"b\":{\"B\":\"\\/+8=\"}}", &bin);
    CPT_CHECK(cp_item_find(cp_buf_slice(&bin), CP_SLICE("b"), &v));
    CPT_EQ_MEM(cp_av_bytes(v).p, cp_av_bytes(v).len, "\xff\xef", 2);
    cp_buf_free(&bin);
}

/* {"a":{"M":{"a":{"M":...{"S":"x"}}}}} with `levels` nested containers (M or L). */
static char *nested(int levels, int list)
{
    cp_buf b = CP_BUF_INIT;
    cp_buf_puts(&b, "{\"a\":");
    for (int i = 0; i < levels; i++) {
        cp_buf_puts(&b, list ? "{\"L\":[" : "{\"M\":{\"a\":");
    }
    cp_buf_puts(&b, "{\"S\":\"x\"}");
    for (int i = 0; i < levels; i++) {
        cp_buf_puts(&b, list ? "]}" : "}}");
    }
    cp_buf_puts(&b, "}");
    return b.p;
}

static void limits_nesting_to_32_levels(void)
{
    for (int list = 0; list <= 1; list++) {
        char *ok = nested(32, list), *deep = nested(33, list), *deeper = nested(50, list);
        cp_buf bin = CP_BUF_INIT, js = CP_BUF_INIT;
        item_of(ok, &bin);
        cp_item_to_json(cp_buf_slice(&bin), &js);
        CPT_EQ_STR(js.p, ok);
        expect_err(deep, "Nesting Levels have exceeded supported limits");
        expect_err(deeper, "Nesting Levels have exceeded supported limits");
        free(ok);
        free(deep);
        free(deeper);
        cp_buf_free(&bin);
        cp_buf_free(&js);
    }
}

static void rejects_invalid_values_with_aws_text(void)
{
    const char *inv = "One or more parameter values were invalid: ";
    char m[300];
    expect_err("{\"a\":{}}",
               "Supplied AttributeValue is empty, must contain exactly one of the supported "
               "datatypes");
    expect_err("{\"a\":null}",
               "Supplied AttributeValue is empty, must contain exactly one of the supported "
               "datatypes");
    expect_err("{\"a\":{\"S\":null}}",
               "Supplied AttributeValue is empty, must contain exactly one of the supported "
               "datatypes");
    expect_err("{\"a\":{\"X\":\"1\"}}",
               "Supplied AttributeValue is empty, must contain exactly one of the supported "
               "datatypes");
    expect_err("{\"a\":{\"L\":[null]}}",
               "Supplied AttributeValue is empty, must contain exactly one of the supported "
               "datatypes");
    expect_err("{\"a\":{\"S\":\"x\",\"N\":\"1\"}}",
               "Supplied AttributeValue has more than one datatypes set, must contain exactly one "
               "of the supported datatypes");
    snprintf(m, sizeof(m), "%sNull attribute value types must have the value of true", inv);
    expect_err("{\"a\":{\"NULL\":false}}", m);
    snprintf(m, sizeof(m), "%sAn string set  may not be empty", inv);
    expect_err("{\"a\":{\"SS\":[]}}", m);
    snprintf(m, sizeof(m), "%sAn number set  may not be empty", inv);
    expect_err("{\"a\":{\"NS\":[]}}", m);
    snprintf(m, sizeof(m), "%sBinary sets should not be empty", inv);
    expect_err("{\"a\":{\"BS\":[]}}", m);
    snprintf(m, sizeof(m), "%sInput collection [a, b, a] contains duplicates.", inv);
    expect_err("{\"a\":{\"SS\":[\"a\",\"b\",\"a\"]}}", m);
    snprintf(m, sizeof(m), "%sInput collection [1, 1] contains duplicates.", inv);
    expect_err("{\"a\":{\"NS\":[\"1\",\"1.0\"]}}", m);
    snprintf(m, sizeof(m), "%sInput collection [YQ==, YQ==]of type BS contains duplicates.", inv);
    expect_err("{\"a\":{\"BS\":[\"YQ==\",\"YQ==\"]}}", m);
    expect_err("{\"a\":{\"N\":\"abc\"}}",
               "The parameter cannot be converted to a numeric value: abc");
    expect_err("{\"a\":{\"N\":\"\"}}", "The parameter cannot be converted to a numeric value");
    expect_err("{\"a\":{\"NS\":[\"1\",\"x\"]}}",
               "The parameter cannot be converted to a numeric value: x");
    expect_err("{\"a\":{\"N\":\"1E126\"}}", "Number overflow. Attempting to store a number with "
                                            "magnitude larger than supported range");
    expect_err("{\"a\":{\"N\":\"1E-131\"}}", "Number underflow. Attempting to store a number "
                                             "with magnitude smaller than supported range");
    expect_err("{\"a\":{\"N\":\"1234567890123456789012345678901234567890\"}}",
               "Attempting to store more than 38 significant digits in a Number");

    /* A big set goes through the sorting duplicate check. */
    cp_buf big = CP_BUF_INIT;
    cp_buf_puts(&big, "{\"a\":{\"SS\":[");
    for (int i = 0; i < 40; i++) {
        cp_buf_printf(&big, "\"m%d\",", i);
    }
    cp_buf_puts(&big, "\"m7\"]}}");
    cp_buf bin = CP_BUF_INIT;
    cp_err err = {0};
    CPT_EQ_INT(parse(big.p, &bin, &err), CP_EINVAL);
    CPT_CHECK(strstr(err.msg, "Input collection [m0, m1, m2,") != NULL);
    CPT_CHECK(strstr(err.msg, "contains duplicates.") != NULL);
    big.len -= strlen("\"m7\"]}}") + 1;
    cp_buf_puts(&big, "]}}");
    item_of(big.p, &bin);
    cp_buf_free(&big);
    cp_buf_free(&bin);

    /* The first validation error wins... */
    expect_err("{\"a\":{\"N\":\"x\"},\"b\":{}}",
               "The parameter cannot be converted to a numeric value: x");
}

static void rejects_wrong_shapes_as_serialization_errors(void)
{
    struct {
        const char *in, *msg;
    } cases[] = {
        {"{\"a\":{\"S\":1}}", "class java.lang.Short can not be converted to an String"},
        {"{\"a\":{\"S\":100000}}", "class java.lang.Integer can not be converted to an String"},
        {"{\"a\":{\"S\":1e10}}", "class java.lang.Long can not be converted to an String"},
        {"{\"a\":{\"N\":1.5}}", "class java.lang.Double can not be converted to an String"},
        {"{\"a\":{\"S\":true}}", "class java.lang.Boolean can not be converted to an String"},
        {"{\"a\":{\"S\":{}}}", "Start of structure or map found where not expected."},
        {"{\"a\":{\"S\":[]}}", "Start of list found where not expected"},
        {"{\"a\":{\"B\":false}}", "class java.lang.Boolean can not be converted to a Blob"},
        {"{\"a\":{\"B\":\"abc\"}}", "'abc' can not be converted to a Blob: Base64 encoded length "
                                    "is expected a multiple of 4 bytes but found: 3"},
        {"{\"a\":{\"B\":\"ab!=\"}}",
         "'ab!=' can not be converted to a Blob: Invalid Base64 character: '!'"},
        {"{\"a\":{\"B\":\"a=bc\"}}",
         "'a=bc' can not be converted to a Blob: Invalid Base64 character: '='"},
        {"{\"a\":{\"B\":\"YR==\"}}", "'YR==' can not be converted to a Blob: Invalid last non-pad "
                                     "Base64 character dectected"},
        {"{\"a\":{\"B\":\"YWJ=\"}}", "'YWJ=' can not be converted to a Blob: Invalid last non-pad "
                                     "Base64 character dectected"},
        {"{\"a\":{\"B\":\"A===\"}}", "'A===' can not be converted to a Blob: Invalid last non-pad "
                                     "Base64 character dectected"},
        {"{\"a\":{\"BOOL\":\"yes\"}}", "'YES' can not be converted to an Boolean"},
        {"{\"a\":{\"BOOL\":1}}", "class java.lang.Short can not be converted to an Boolean"},
        {"{\"a\":{\"NULL\":[]}}", "Start of list found where not expected"},
        {"{\"a\":{\"L\":\"x\"}}", "Expected list or null"},
        {"{\"a\":{\"L\":{}}}", "Start of structure or map found where not expected."},
        {"{\"a\":{\"M\":[]}}", "Start of list found where not expected"},
        {"{\"a\":{\"M\":1}}", "Expected map or null"},
        {"{\"a\":\"x\"}", "Expected null"},
        {"{\"a\":[]}", "Start of list found where not expected"},
        {"{\"a\":{\"SS\":\"x\"}}", "Expected list or null"},
        {"{\"a\":{\"SS\":[1]}}", "class java.lang.Short can not be converted to an String"},
        {"{\"a\":{\"BS\":[true]}}", "class java.lang.Boolean can not be converted to a Blob"},
        {"{\"a\":{\"S\":\"\xff\"}}", "Invalid UTF-8 in a string value"},
        {"{\"\xc3\x28\":{\"S\":\"x\"}}", "Invalid UTF-8 in a string value"},
        {"{\"a\":{\"SS\":[\"\\ud800\"]}}", "Invalid escape in a string value"},
        {"{\"a\":{\"S\":\"x\"}", "unexpected end of input"},
        {"[]", "Start of list found where not expected"},
        {"1", "Expected map or null"},
        /* Shape errors win over an earlier validation error, as in AWS. */
        {"{\"a\":{\"N\":\"abc\"},\"b\":{\"S\":1}}",
         "class java.lang.Short can not be converted to an String"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char m[300];
        snprintf(m, sizeof(m), "SerializationException: %s", cases[i].msg);
        expect_err(cases[i].in, m);
    }

    /* Fractional numbers are Booleans by magnitude (dynalite's observation of AWS). */
    expect_json("{\"a\":{\"BOOL\":1.5},\"b\":{\"BOOL\":0.5}}",
                "{\"a\":{\"BOOL\":true},\"b\":{\"BOOL\":false}}");
    /* A null item is "absent", for the caller to word. */
    cp_buf bin = CP_BUF_INIT;
    cp_err err = {0};
    CPT_EQ_INT(parse("null", &bin, &err), CP_ENOTFOUND);
    cp_buf_free(&bin);
}

static void follows_the_deserialiser_on_odd_members(void)
{
    /* Unknown members are ignored, null members are absent, a repeated descriptor keeps its
     * last value, and a repeated attribute name keeps its last value. */
    expect_json("{\"a\":{\"S\":\"x\",\"X\":{\"y\":[1]},\"N\":null}}", "{\"a\":{\"S\":\"x\"}}");
    expect_json("{\"a\":{\"S\":\"1\",\"S\":\"2\"}}", "{\"a\":{\"S\":\"2\"}}");
    expect_json("{\"a\":{\"M\":{\"x\":{\"N\":\"1\"}}},\"a\":{\"M\":{\"y\":{\"N\":\"2\"}}}}",
                "{\"a\":{\"M\":{\"y\":{\"N\":\"2\"}}}}");
    expect_json("{\"a\":{\"S\":\"1\"},\"b\":{\"S\":\"2\"},\"a\":{\"S\":\"3\"},\"c\":{\"S\":\"4\"}}",
                "{\"b\":{\"S\":\"2\"},\"a\":{\"S\":\"3\"},\"c\":{\"S\":\"4\"}}");
    expect_json("{\"m\":{\"M\":{\"k\":{\"S\":\"1\"},\"k\":{\"BOOL\":true}}}}",
                "{\"m\":{\"M\":{\"k\":{\"BOOL\":true}}}}");

    /* A big map with repeats goes through the sorting path. */
    cp_buf in = CP_BUF_INIT, want = CP_BUF_INIT;
    cp_buf_puts(&in, "{");
    for (int i = 0; i < 50; i++) {
        cp_buf_printf(&in, "\"k%d\":{\"N\":\"%d\"},", i % 30, i);
    }
    in.len--;
    cp_buf_puts(&in, "}");
    cp_buf_puts(&want, "{");
    for (int i = 20; i < 50; i++) {
        cp_buf_printf(&want, "%s\"k%d\":{\"N\":\"%d\"}", i > 20 ? "," : "", i % 30, i);
    }
    cp_buf_puts(&want, "}");
    expect_json(in.p, want.p);
    cp_buf bin = CP_BUF_INIT;
    item_of(in.p, &bin);
    CPT_EQ_INT(cp_item_count(cp_buf_slice(&bin)), 30);
    cp_buf_free(&in);
    cp_buf_free(&want);
    cp_buf_free(&bin);
}

static int items_equal(const char *a, const char *b)
{
    cp_buf x = CP_BUF_INIT, y = CP_BUF_INIT;
    item_of(a, &x);
    item_of(b, &y);
    int eq = cp_item_equal(cp_buf_slice(&x), cp_buf_slice(&y));
    CPT_EQ_INT(cp_item_equal(cp_buf_slice(&y), cp_buf_slice(&x)), eq);
    cp_buf_free(&x);
    cp_buf_free(&y);
    return eq;
}

static void equality_ignores_set_and_map_order(void)
{
    CPT_CHECK(items_equal(ALL_TYPES, ALL_TYPES_OUT));
    CPT_CHECK(items_equal("{\"a\":{\"S\":\"1\"},\"b\":{\"N\":\"2\"}}",
                          "{\"b\":{\"N\":\"2.0\"},\"a\":{\"S\":\"1\"}}"));
    CPT_CHECK(items_equal("{\"s\":{\"SS\":[\"a\",\"b\",\"c\"]}}",
                          "{\"s\":{\"SS\":[\"c\",\"a\",\"b\"]}}"));
    CPT_CHECK(items_equal("{\"s\":{\"NS\":[\"1\",\"20\"]}}", "{\"s\":{\"NS\":[\"2E1\",\"1.0\"]}}"));
    CPT_CHECK(items_equal("{\"s\":{\"BS\":[\"AA==\",\"AQ==\"]}}",
                          "{\"s\":{\"BS\":[\"AQ==\",\"AA==\"]}}"));
    CPT_CHECK(items_equal("{\"m\":{\"M\":{\"x\":{\"N\":\"1\"},\"y\":{\"M\":{\"p\":{\"S\":\"q\"},"
                          "\"r\":{\"NULL\":true}}}}}}",
                          "{\"m\":{\"M\":{\"y\":{\"M\":{\"r\":{\"NULL\":true},\"p\":{\"S\":\"q\"}}}"
                          ",\"x\":{\"N\":\"1\"}}}}"));
    CPT_CHECK(items_equal("{}", "{}"));

    CPT_CHECK(!items_equal("{\"l\":{\"L\":[{\"N\":\"1\"},{\"N\":\"2\"}]}}",
                           "{\"l\":{\"L\":[{\"N\":\"2\"},{\"N\":\"1\"}]}}"));
    CPT_CHECK(!items_equal("{\"a\":{\"S\":\"1\"}}", "{\"a\":{\"N\":\"1\"}}"));
    CPT_CHECK(!items_equal("{\"a\":{\"S\":\"1\"}}", "{\"b\":{\"S\":\"1\"}}"));
    CPT_CHECK(!items_equal("{\"a\":{\"S\":\"1\"}}", "{\"a\":{\"S\":\"1\"},\"b\":{\"S\":\"1\"}}"));
    CPT_CHECK(!items_equal("{\"s\":{\"SS\":[\"a\",\"b\"]}}", "{\"s\":{\"SS\":[\"a\",\"c\"]}}"));
    CPT_CHECK(!items_equal("{\"s\":{\"SS\":[\"a\",\"b\"]}}", "{\"s\":{\"SS\":[\"a\"]}}"));
    CPT_CHECK(!items_equal("{\"b\":{\"BOOL\":true}}", "{\"b\":{\"BOOL\":false}}"));
    CPT_CHECK(!items_equal("{\"m\":{\"M\":{\"x\":{\"N\":\"1\"}}}}",
                           "{\"m\":{\"M\":{\"x\":{\"N\":\"2\"}}}}"));
    CPT_CHECK(!items_equal("{\"m\":{\"M\":{\"x\":{\"N\":\"1\"}}}}",
                           "{\"m\":{\"M\":{\"y\":{\"N\":\"1\"}}}}"));

    /* Beyond 16 elements both sides are sorted: same again with big sets and maps. */
    cp_buf a = CP_BUF_INIT, b = CP_BUF_INIT, c = CP_BUF_INIT;
    cp_buf_puts(&a, "{\"s\":{\"NS\":[");
    cp_buf_puts(&b, "{\"s\":{\"NS\":[");
    cp_buf_puts(&c, "{\"s\":{\"NS\":[");
    for (int i = 0; i < 40; i++) {
        cp_buf_printf(&a, "%s\"%d\"", i ? "," : "", i);
        cp_buf_printf(&b, "%s\"%d.0\"", i ? "," : "", 39 - i);
        cp_buf_printf(&c, "%s\"%d\"", i ? "," : "", i == 17 ? 1000 : i);
    }
    cp_buf_puts(&a, "]},");
    cp_buf_puts(&b, "]},");
    cp_buf_puts(&c, "]},");
    for (int i = 0; i < 40; i++) {
        cp_buf_printf(&a, "%s\"k%d\":{\"N\":\"%d\"}", i ? "," : "", i, i);
        cp_buf_printf(&b, "%s\"k%d\":{\"N\":\"%d\"}", i ? "," : "", 39 - i, 39 - i);
        cp_buf_printf(&c, "%s\"k%d\":{\"N\":\"%d\"}", i ? "," : "", i, i);
    }
    cp_buf_puts(&a, "}");
    cp_buf_puts(&b, "}");
    cp_buf_puts(&c, "}");
    CPT_CHECK(items_equal(a.p, b.p));
    CPT_CHECK(!items_equal(a.p, c.p));
    cp_buf_free(&a);
    cp_buf_free(&b);
    cp_buf_free(&c);
}

/* The value of attribute `name` in a one-off item. */
static cp_av find(cp_buf *bin, const char *json, const char *name)
{
    item_of(json, bin);
    cp_av v;
    if (!cp_item_find(cp_buf_slice(bin), cp_slice_str(name), &v)) {
        CPT_FAIL_AT("no %s in %s", name, json);
    }
    return v;
}

static void compares_scalars_by_type_rules(void)
{
    cp_buf x = CP_BUF_INIT, y = CP_BUF_INIT;
    struct {
        const char *a, *b;
        int want;
    } cases[] = {
        {"{\"v\":{\"N\":\"9\"}}", "{\"v\":{\"N\":\"10\"}}", -1},
        {"{\"v\":{\"N\":\"-10\"}}", "{\"v\":{\"N\":\"-9\"}}", -1},
        {"{\"v\":{\"N\":\"1.50\"}}", "{\"v\":{\"N\":\"15e-1\"}}", 0},
        {"{\"v\":{\"S\":\"b\"}}", "{\"v\":{\"S\":\"ab\"}}", 1},
        {"{\"v\":{\"S\":\"a\"}}", "{\"v\":{\"S\":\"ab\"}}", -1},
        {"{\"v\":{\"S\":\"\xc3\xa9\"}}", "{\"v\":{\"S\":\"z\"}}", 1}, /* UTF-8 byte order */
        {"{\"v\":{\"B\":\"/w==\"}}", "{\"v\":{\"B\":\"AA==\"}}", 1},  /* unsigned bytes */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cp_av a = find(&x, cases[i].a, "v"), b = find(&y, cases[i].b, "v");
        CPT_EQ_INT(cp_av_cmp(a, b), cases[i].want);
        CPT_EQ_INT(cp_av_cmp(b, a), -cases[i].want);
        CPT_EQ_INT(cp_av_equal(a, b), cases[i].want == 0);
        /* Key bytes order the same way. */
        cp_buf ka = CP_BUF_INIT, kb = CP_BUF_INIT;
        cp_av_key_bytes(a, &ka);
        cp_av_key_bytes(b, &kb);
        int c = cp_slice_cmp(cp_buf_slice(&ka), cp_buf_slice(&kb));
        CPT_EQ_INT((c > 0) - (c < 0), cases[i].want);
        cp_buf_free(&ka);
        cp_buf_free(&kb);
    }
    /* S and B keys are the raw bytes; N keys are cp_num_key. */
    cp_buf k = CP_BUF_INIT;
    cp_av_key_bytes(find(&x, "{\"v\":{\"B\":\"AAEC\"}}", "v"), &k);
    CPT_EQ_MEM(k.p, k.len, "\0\1\2", 3);
    cp_buf_reset(&k);
    cp_av_key_bytes(find(&x, "{\"v\":{\"S\":\"k\xc3\xa9\"}}", "v"), &k);
    CPT_EQ_STR(k.p, "k\xc3\xa9");
    cp_buf_reset(&k);
    cp_av_key_bytes(find(&x, "{\"v\":{\"N\":\"-1.5\"}}", "v"), &k);
    cp_buf want = CP_BUF_INIT;
    cp_num n;
    CPT_EQ_INT(cp_num_parse(CP_SLICE("-1.5"), &n, NULL), CP_OK);
    cp_num_key(&n, &want);
    CPT_EQ_MEM(k.p, k.len, want.p, want.len);
    cp_buf_free(&k);
    cp_buf_free(&want);
    cp_buf_free(&x);
    cp_buf_free(&y);
}

static size_t item_size(const char *json)
{
    cp_buf bin = CP_BUF_INIT;
    item_of(json, &bin);
    size_t n = cp_item_size(cp_buf_slice(&bin));
    cp_buf_free(&bin);
    return n;
}

static void accounts_sizes_like_dynamodb(void)
{
    /* The wire reference's example: 11+1+10+1. */
    CPT_EQ_INT(item_size("{\"shirt-color\":{\"S\":\"R\"},\"shirt-size\":{\"S\":\"M\"}}"), 23);
    CPT_EQ_INT(item_size("{}"), 0);
    CPT_EQ_INT(item_size("{\"a\":{\"S\":\"h\xc3\xa9llo\"}}"), 1 + 6); /* UTF-8 bytes */
    CPT_EQ_INT(item_size("{\"\xc3\xa9\":{\"S\":\"\"}}"), 2);
    CPT_EQ_INT(item_size("{\"bb\":{\"B\":\"AAECAw==\"}}"), 2 + 4); /* decoded bytes */
    CPT_EQ_INT(item_size("{\"n\":{\"N\":\"123\"}}"), 1 + 3);
    CPT_EQ_INT(item_size("{\"n\":{\"N\":\"-1.2\"}}"), 1 + 4);
    CPT_EQ_INT(item_size("{\"n\":{\"N\":\"0\"}}"), 1 + 1);
    CPT_EQ_INT(item_size("{\"t\":{\"BOOL\":true}}"), 1 + 1);
    CPT_EQ_INT(item_size("{\"z\":{\"NULL\":true}}"), 1 + 1);
    CPT_EQ_INT(item_size("{\"l\":{\"L\":[{\"S\":\"ab\"},{\"N\":\"1\"}]}}"), 1 + 3 + 3 + 3);
    CPT_EQ_INT(item_size("{\"l\":{\"L\":[]}}"), 1 + 3);
    CPT_EQ_INT(item_size("{\"m\":{\"M\":{\"k\":{\"S\":\"ab\"},\"kk\":{\"NULL\":true}}}}"),
               1 + 3 + (1 + 1 + 2) + (1 + 2 + 1));
    CPT_EQ_INT(item_size("{\"m\":{\"M\":{}}}"), 1 + 3);
    CPT_EQ_INT(item_size("{\"m\":{\"M\":{\"l\":{\"L\":[{\"M\":{}}]}}}}"),
               1 + 3 + (1 + 1 + (3 + (1 + 3))));
    CPT_EQ_INT(item_size("{\"ss\":{\"SS\":[\"a\",\"bc\"]}}"), 2 + 3);
    CPT_EQ_INT(item_size("{\"ns\":{\"NS\":[\"1\",\"-1.2\"]}}"), 2 + 2 + 4);
    CPT_EQ_INT(item_size("{\"bs\":{\"BS\":[\"AA==\",\"AAE=\"]}}"), 2 + 1 + 2);
}

static void readers_walk_the_encoding(void)
{
    cp_buf bin = CP_BUF_INIT;
    item_of(ALL_TYPES, &bin);
    cp_slice item = cp_buf_slice(&bin);
    CPT_EQ_INT(cp_item_count(item), 13);

    cp_av_iter it;
    cp_item_iter_init(&it, item);
    cp_slice name;
    cp_av v;
    const char *names[] = {"s", "n", "b", "t", "f", "z", "ss", "ns", "bs", "l", "m", "es", "eb"};
    cp_av_type types[] = {CP_AV_S,  CP_AV_N,  CP_AV_B, CP_AV_BOOL, CP_AV_BOOL, CP_AV_NULL, CP_AV_SS,
                          CP_AV_NS, CP_AV_BS, CP_AV_L, CP_AV_M,    CP_AV_S,    CP_AV_B};
    size_t i = 0;
    while (cp_av_iter_next(&it, &name, &v)) {
        CPT_CHECK(i < 13);
        CPT_EQ_MEM(name.p, name.len, names[i], strlen(names[i]));
        CPT_EQ_INT(v.type, types[i]);
        CPT_EQ_STR(cp_av_type_name(v.type), cp_av_type_name(types[i]));
        CPT_EQ_INT(cp_av_type_from_name(cp_slice_str(cp_av_type_name(v.type))), v.type);
        i++;
    }
    CPT_EQ_INT(i, 13);
    CPT_EQ_INT(cp_av_type_from_name(CP_SLICE("X")), 0);
    CPT_CHECK(cp_av_type_name(0) == NULL);

    CPT_CHECK(cp_item_find(item, CP_SLICE("t"), &v) && cp_av_bool(v));
    CPT_CHECK(cp_item_find(item, CP_SLICE("f"), &v) && !cp_av_bool(v));
    CPT_CHECK(!cp_item_find(item, CP_SLICE("nope"), &v));
    CPT_CHECK(cp_item_find(item, CP_SLICE("n"), &v));
    CPT_EQ_MEM(cp_av_bytes(v).p, cp_av_bytes(v).len, "1.5", 3);
    CPT_EQ_INT(cp_av_count(v), 0);

    CPT_CHECK(cp_item_find(item, CP_SLICE("ns"), &v));
    CPT_EQ_INT(cp_av_count(v), 3);
    cp_av_iter_init(&it, v);
    const char *members[] = {"1", "2.5", "-0.001"};
    for (i = 0; cp_av_iter_next(&it, &name, &v); i++) {
        CPT_EQ_INT(v.type, CP_AV_N);
        CPT_EQ_INT(name.len, 0);
        CPT_EQ_MEM(cp_av_bytes(v).p, cp_av_bytes(v).len, members[i], strlen(members[i]));
    }
    CPT_EQ_INT(i, 3);

    cp_av l, m, e;
    CPT_CHECK(cp_item_find(item, CP_SLICE("l"), &l));
    CPT_EQ_INT(cp_av_count(l), 3);
    CPT_CHECK(cp_av_list_at(l, 1, &e) && e.type == CP_AV_S);
    CPT_CHECK(cp_av_list_at(l, 2, &e) && e.type == CP_AV_L && cp_av_count(e) == 0);
    CPT_CHECK(!cp_av_list_at(l, 3, &e));
    CPT_CHECK(!cp_av_list_at(e, 0, &e));
    CPT_CHECK(cp_item_find(item, CP_SLICE("m"), &m));
    CPT_CHECK(cp_av_map_find(m, CP_SLICE("deep"), &e));
    CPT_CHECK(cp_av_map_find(e, CP_SLICE("x"), &e) && e.type == CP_AV_NULL);
    CPT_CHECK(!cp_av_map_find(m, CP_SLICE("x"), &e));
    CPT_CHECK(!cp_av_map_find(l, CP_SLICE("x"), &e));

    /* Scalars iterate as empty containers. */
    CPT_CHECK(cp_item_find(item, CP_SLICE("s"), &v));
    cp_av_iter_init(&it, v);
    CPT_CHECK(!cp_av_iter_next(&it, &name, &e));
    /* An empty slice reads as an empty item. */
    cp_item_iter_init(&it, cp_slice_of("", 0));
    CPT_CHECK(!cp_av_iter_next(&it, &name, &e));
    CPT_EQ_INT(cp_item_count(cp_slice_of("", 0)), 0);
    cp_buf_free(&bin);
}

static void builder_back_patches_containers(void)
{
    cp_buf out = CP_BUF_INIT, js = CP_BUF_INIT, src = CP_BUF_INIT;
    cp_buf_puts(&out, "prefix"); /* the builder appends */
    cp_item_builder b;
    cp_item_builder_init(&b, &out);
    cp_item_begin(&b);
    cp_item_put_name(&b, CP_SLICE("pk"));
    cp_item_put_scalar(&b, CP_AV_S, CP_SLICE("user#1"));
    cp_item_put_name(&b, CP_SLICE("n"));
    cp_item_put_scalar(&b, CP_AV_N, CP_SLICE("-2.5"));
    cp_item_put_name(&b, CP_SLICE("doc"));
    cp_item_begin_container(&b, CP_AV_M);
    cp_item_put_name(&b, CP_SLICE("tags"));
    cp_item_begin_container(&b, CP_AV_SS);
    cp_item_put_set_member(&b, CP_SLICE("x"));
    cp_item_put_set_member(&b, CP_SLICE("y"));
    cp_item_end(&b);
    cp_item_put_name(&b, CP_SLICE("list"));
    cp_item_begin_container(&b, CP_AV_L);
    cp_item_put_bool(&b, 1);
    cp_item_put_null(&b);
    cp_item_put_scalar(&b, CP_AV_B, cp_slice_of("\0\1", 2));
    cp_item_end(&b);
    cp_item_end(&b);

    /* Copy values out of another item, including a set member as a standalone value. */
    item_of("{\"src\":{\"NS\":[\"7\",\"8\"]},\"m\":{\"M\":{\"q\":{\"L\":[]}}}}", &src);
    cp_av ns, mm, member;
    CPT_CHECK(cp_item_find(cp_buf_slice(&src), CP_SLICE("src"), &ns));
    CPT_CHECK(cp_item_find(cp_buf_slice(&src), CP_SLICE("m"), &mm));
    cp_av_iter it;
    cp_av_iter_init(&it, ns);
    CPT_CHECK(cp_av_iter_next(&it, NULL, &member) && cp_av_iter_next(&it, NULL, &member));
    cp_item_put_name(&b, CP_SLICE("copy"));
    cp_item_put_av(&b, mm);
    cp_item_put_name(&b, CP_SLICE("eight"));
    cp_item_put_av(&b, member);
    cp_item_end(&b);
    CPT_EQ_INT(b.depth, 0);

    cp_slice item = cp_slice_of(out.p + 6, out.len - 6);
    CPT_EQ_MEM(out.p, 6, "prefix", 6);
    CPT_EQ_INT(cp_item_check(item), CP_OK);
    CPT_EQ_INT(cp_load_u32le(item.p), item.len - 4);
    cp_item_to_json(item, &js);
    CPT_EQ_STR(
        js.p,
        "{\"pk\":{\"S\":\"user#1\"},\"n\":{\"N\":\"-2.5\"},\"doc\":{\"M\":{\"tags\":{\"SS\":"
        "[\"x\",\"y\"]},\"list\":{\"L\":[{\"BOOL\":true},{\"NULL\":true},{\"B\":\"AAE=\"}]}}},"
        "\"copy\":{\"M\":{\"q\":{\"L\":[]}}},\"eight\":{\"N\":\"8\"}}");

    /* cp_av_from_json into an open item; a failure leaves the builder as it was. */
    cp_buf_reset(&out);
    cp_item_begin(&b);
    cp_item_put_name(&b, CP_SLICE("a"));
    size_t len = out.len;
    cp_json_lexer lx;
    cp_json_lexer_init(&lx, CP_SLICE("{\"L\":[{\"S\":\"x\"},{\"NS\":[]}]}"));
    cp_err err = {0};
    CPT_EQ_INT(cp_av_from_json(&lx, &b, &err), CP_EINVAL);
    CPT_EQ_STR(err.msg,
               "One or more parameter values were invalid: An number set  may not be empty");
    CPT_EQ_INT(out.len, len);
    CPT_EQ_INT(b.depth, 1);
    CPT_EQ_INT(b.count[0], 0);
    cp_json_lexer_init(&lx, CP_SLICE("{\"L\":[{\"S\":\"x\"},{\"NS\":[\"5\"]}]}"));
    CPT_EQ_INT(cp_av_from_json(&lx, &b, &err), CP_OK);
    cp_item_end(&b);
    CPT_EQ_INT(cp_item_check(cp_buf_slice(&out)), CP_OK);
    cp_buf_reset(&js);
    cp_item_to_json(cp_buf_slice(&out), &js);
    CPT_EQ_STR(js.p, "{\"a\":{\"L\":[{\"S\":\"x\"},{\"NS\":[\"5\"]}]}}");
    cp_buf_free(&out);

    /* A repeated descriptor whose first value failed, into a never-used buffer. */
    cp_item_builder_init(&b, &out);
    cp_json_lexer_init(&lx, CP_SLICE("{\"N\":\"x\",\"N\":\"1\"}"));
    CPT_EQ_INT(cp_av_from_json(&lx, &b, &err), CP_EINVAL);
    CPT_EQ_STR(err.msg, "The parameter cannot be converted to a numeric value: x");
    CPT_EQ_INT(out.len, 0);
    cp_json_lexer_init(&lx, CP_SLICE("{\"N\":\"2\",\"N\":\"1\"}"));
    CPT_EQ_INT(cp_av_from_json(&lx, &b, &err), CP_OK);
    CPT_EQ_MEM(out.p, out.len,
               "\x02\x01"
               "1",
               3);
    cp_buf_free(&out);
    cp_buf_free(&js);
    cp_buf_free(&src);
}

/* An item of `levels` nested maps built directly (bypassing the JSON decoder's limit). */
static void build_nested(cp_buf *out, int levels)
{
    cp_item_builder b;
    cp_item_builder_init(&b, out);
    cp_item_begin(&b);
    for (int i = 0; i < levels; i++) {
        cp_item_put_name(&b, CP_SLICE("a"));
        cp_item_begin_container(&b, CP_AV_M);
    }
    while (b.depth > 0) {
        cp_item_end(&b);
    }
}

static void check_rejects_damaged_bytes(void)
{
    cp_buf bin = CP_BUF_INIT;
    item_of(ALL_TYPES, &bin);
    size_t n = bin.len;

    /* Every proper prefix and every extension is damaged. */
    for (size_t len = 0; len < n; len++) {
        char *p = malloc(len ? len : 1);
        memcpy(p, bin.p, len);
        if (cp_item_check(cp_slice_of(p, len)) != CP_ECORRUPT) {
            CPT_FAIL_AT("prefix of %zu bytes accepted", len);
        }
        free(p);
    }
    cp_buf_putc(&bin, 0);
    CPT_EQ_INT(cp_item_check(cp_buf_slice(&bin)), CP_ECORRUPT);
    bin.len = n;

    /* Specific damage: bad type, bad BOOL, non-canonical N, empty set, too deep. */
    struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"\x07\0\0\0\1\0\0\0\1a\x0b", 11},     /* type 11 */
        {"\x07\0\0\0\1\0\0\0\1a\x00", 11},     /* type 0 */
        {"\x08\0\0\0\1\0\0\0\1a\x04\x02", 12}, /* BOOL 2 */
        {"\x0b\0\0\0\1\0\0\0\1a\x02\x03"
         "1.0",
         15}, /* N not canonical */
        {"\x0b\0\0\0\1\0\0\0\1a\x02\x03"
         "abc",
         15},
        {"\x0f\0\0\0\1\0\0\0\1a\x06\x04\0\0\0\0\0\0\0", 19}, /* empty SS */
        {"\x07\0\0\0\2\0\0\0\1a\x05", 11},                   /* count says 2 */
        {"\x03\0\0\0\0\0\0", 7},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cp_item_check(cp_slice_of(bad[i].bytes, bad[i].len)) != CP_ECORRUPT) {
            CPT_FAIL_AT("damaged case %zu accepted", i);
        }
    }
    CPT_EQ_INT(cp_item_check(cp_slice_of("\x04\0\0\0\0\0\0\0", 8)), CP_OK); /* empty item */
    CPT_EQ_INT(cp_item_check(cp_slice_of("\x09\0\0\0\1\0\0\0\1a\x02\x01"
                                         "7",
                                         13)),
               CP_OK);

    cp_buf deep = CP_BUF_INIT;
    build_nested(&deep, 32);
    CPT_EQ_INT(cp_item_check(cp_buf_slice(&deep)), CP_OK);
    cp_buf_reset(&deep);
    build_nested(&deep, 33);
    CPT_EQ_INT(cp_item_check(cp_buf_slice(&deep)), CP_ECORRUPT);
    cp_buf_free(&deep);
    cp_buf_free(&bin);
}

/* Whatever cp_item_check accepts, every reader must handle. */
static void exercise_readers(cp_slice item)
{
    cp_buf js = CP_BUF_INIT;
    cp_item_to_json(item, &js);
    (void) cp_item_size(item);
    CPT_CHECK(cp_item_equal(item, item));
    cp_av_iter it;
    cp_item_iter_init(&it, item);
    cp_slice name;
    cp_av v;
    while (cp_av_iter_next(&it, &name, &v)) {
        cp_av w;
        CPT_CHECK(cp_item_find(item, name, &w));
        (void) cp_av_cmp(v, w);
        cp_buf_reset(&js);
        cp_av_key_bytes(v, &js);
    }
    cp_buf_free(&js);
}

static void check_survives_random_mutations(void)
{
    cp_buf bin = CP_BUF_INIT;
    item_of(ALL_TYPES, &bin);
    srand(1234);
    int accepted = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = bin.len;
        char *p = malloc(len + 16);
        memcpy(p, bin.p, len);
        int edits = 1 + rand() % 4;
        for (int k = 0; k < edits; k++) {
            size_t at = (size_t) rand() % len;
            switch (rand() % 5) {
            case 0:
                p[at] = (char) rand();
                break;
            case 1:
                p[at] ^= (char) (1 << (rand() % 8));
                break;
            case 2:
                len = at;
                break; /* truncate */
            case 3:
                memmove(p + at, p + at + 1, len - at - 1);
                len--;
                break; /* delete */
            default:
                if (len + 1 < bin.len + 16) { /* insert */
                    memmove(p + at + 1, p + at, len - at);
                    p[at] = (char) rand();
                    len++;
                }
            }
            if (len == 0) {
                break;
            }
        }
        /* An exact-size copy so ASan sees any read past the end. */
        char *q = malloc(len ? len : 1);
        memcpy(q, p, len);
        if (cp_item_check(cp_slice_of(q, len)) == CP_OK) {
            accepted++;
            exercise_readers(cp_slice_of(q, len));
        }
        free(q);
        free(p);
    }
    /* Most single-byte changes inside string bodies keep the structure valid. */
    CPT_CHECK(accepted > 0 && accepted < 20000);
    cp_buf_free(&bin);
}

static void json_decoder_survives_random_mutations(void)
{
    size_t n = strlen(ALL_TYPES);
    srand(99);
    cp_buf bin = CP_BUF_INIT;
    int accepted = 0;
    for (int round = 0; round < 20000; round++) {
        char *p = malloc(n);
        memcpy(p, ALL_TYPES, n);
        size_t len = n;
        int edits = 1 + rand() % 3;
        for (int k = 0; k < edits; k++) {
            size_t at = (size_t) rand() % len;
            static const char alphabet[] = "{}[]\",:0123456789eE.-+ SNBLMtruefalsn\\u=A/";
            if (rand() % 4 == 0) {
                len = at ? at : 1;
            } else {
                p[at] = alphabet[rand() % (sizeof(alphabet) - 1)];
            }
        }
        cp_json_lexer lx;
        cp_json_lexer_init(&lx, cp_slice_of(p, len));
        cp_item_builder b;
        cp_buf_reset(&bin);
        cp_item_builder_init(&b, &bin);
        cp_err err = {0};
        int rc = cp_item_from_json(&lx, &b, &err);
        if (rc == CP_OK) {
            accepted++;
            CPT_EQ_INT(cp_item_check(cp_buf_slice(&bin)), CP_OK);
            exercise_readers(cp_buf_slice(&bin));
        } else {
            CPT_EQ_INT(bin.len, 0);
            CPT_CHECK(rc == CP_ENOTFOUND || err.msg[0] != 0);
        }
        free(p);
    }
    CPT_CHECK(accepted > 0);
    cp_buf_free(&bin);
}

CPT_LIST = {
    {"round_trips_every_type", round_trips_every_type},
    {"decodes_escapes_in_place", decodes_escapes_in_place},
    {"limits_nesting_to_32_levels", limits_nesting_to_32_levels},
    {"rejects_invalid_values_with_aws_text", rejects_invalid_values_with_aws_text},
    {"rejects_wrong_shapes_as_serialization_errors", rejects_wrong_shapes_as_serialization_errors},
    {"follows_the_deserialiser_on_odd_members", follows_the_deserialiser_on_odd_members},
    {"equality_ignores_set_and_map_order", equality_ignores_set_and_map_order},
    {"compares_scalars_by_type_rules", compares_scalars_by_type_rules},
    {"accounts_sizes_like_dynamodb", accounts_sizes_like_dynamodb},
    {"readers_walk_the_encoding", readers_walk_the_encoding},
    {"builder_back_patches_containers", builder_back_patches_containers},
    {"check_rejects_damaged_bytes", check_rejects_damaged_bytes},
    {"check_survives_random_mutations", check_survives_random_mutations},
    {"json_decoder_survives_random_mutations", json_decoder_survives_random_mutations},
    {0},
};
