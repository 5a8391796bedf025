/* SPDX-License-Identifier: MIT */
/* DynamoDB numbers: parsing limits and messages, canonical text, ordering, key bytes, exact
 * arithmetic and size accounting. */
#include "cpt.h"

#include "table/number.h"

static const char MSG_DIGITS[] = "Attempting to store more than 38 significant digits in a Number";
static const char MSG_OVERFLOW[] = "Number overflow. Attempting to store a number with magnitude "
                                   "larger than supported range";
static const char MSG_UNDERFLOW[] = "Number underflow. Attempting to store a number with "
                                    "magnitude smaller than supported range";

static cp_num num(const char *s)
{
    cp_num n;
    cp_err err = {0};
    if (cp_num_parse(cp_slice_str(s), &n, &err) != CP_OK) {
        CPT_FAIL_AT("cannot parse %s: %s", s, err.msg);
    }
    return n;
}

/* Canonical text of s, in a static buffer. */
static const char *canon(const char *s)
{
    static char out[CP_NUM_TEXT_MAX];
    cp_num n = num(s);
    size_t len = cp_num_format_to(&n, out);
    CPT_EQ_INT(len, strlen(out));
    /* The cp_buf variant must agree. */
    cp_buf b = CP_BUF_INIT;
    cp_num_format(&n, &b);
    CPT_EQ_STR(b.p, out);
    cp_buf_free(&b);
    return out;
}

static void expect_error(const char *s, const char *msg)
{
    cp_num n;
    cp_err err = {0};
    int rc = cp_num_parse(cp_slice_str(s), &n, &err);
    if (rc != CP_EINVAL) {
        CPT_FAIL_AT("%s: expected CP_EINVAL, got %d", s, rc);
    }
    CPT_EQ_INT(err.code, CP_EINVAL);
    CPT_EQ_STR(err.msg, msg);
}

static void normalises_to_canonical_text(void)
{
    const char *tens[] = {"10", "10.0", "1E1", "1.0e+1", "+10", "010", ".1e2", "100e-1", "10."};
    for (size_t i = 0; i < sizeof(tens) / sizeof(tens[0]); i++) {
        CPT_EQ_STR(canon(tens[i]), "10");
    }
    CPT_EQ_STR(canon("-0"), "0");
    CPT_EQ_STR(canon("0.000"), "0");
    CPT_EQ_STR(canon("-0.0e-999999999999"), "0");
    CPT_EQ_STR(canon("0e99999"), "0");
    CPT_EQ_STR(canon("0.0001e4"), "1");
    CPT_EQ_STR(canon("01.50"), "1.5");
    CPT_EQ_STR(canon("1.5E3"), "1500");
    CPT_EQ_STR(canon("-0.001"), "-0.001");
    CPT_EQ_STR(canon("-1E-3"), "-0.001");
    CPT_EQ_STR(canon("123.456"), "123.456");
    CPT_EQ_STR(canon("123456e-3"), "123.456");
    CPT_EQ_STR(canon("0.5"), "0.5");
    CPT_EQ_STR(canon(".5"), "0.5");
    CPT_EQ_STR(canon("-12345678901234567890123456789012345678"),
               "-12345678901234567890123456789012345678");
    /* Trailing zeros are not significant: 1 followed by 50 zeros is one digit. */
    CPT_EQ_STR(canon("1e50"), "100000000000000000000000000000000000000000000000000");
    CPT_EQ_STR(canon("100000000000000000000000000000000000000000000000000.000"),
               "100000000000000000000000000000000000000000000000000");

    /* The extremes of the range print in full. */
    char tiny[200] = "0.";
    memset(tiny + 2, '0', 129);
    strcpy(tiny + 131, "1");
    CPT_EQ_STR(canon("1E-130"), tiny);
    tiny[0] = '-';
    memmove(tiny + 1, tiny, strlen(tiny) + 1);
    tiny[1] = '0';
    CPT_EQ_STR(canon("-1e-130"), tiny);
    /* The longest canonical text fits CP_NUM_TEXT_MAX. */
    const char *longest = "-1.2345678901234567890123456789012345678E-130";
    CPT_CHECK(strlen(canon(longest)) == 170);

    cp_num n = num("1.5e3");
    CPT_EQ_INT(n.neg, 0);
    CPT_EQ_INT(n.exp, 4);
    CPT_EQ_INT(n.ndigits, 2);
    n = num("-0");
    CPT_EQ_INT(n.neg, 0);
    CPT_EQ_INT(n.ndigits, 0);
}

static void rejects_non_numbers_with_aws_text(void)
{
    const char *bad[] = {"abc", "1e", "1.2.3", "--1", " 1",  "1 ",  "0x10", "Infinity", "NaN",
                         "e5",  ".",  "+",     "1e+", "1,5", "1_0", "- 1",  "1e1.5",    "١"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char msg[300];
        snprintf(msg, sizeof(msg), "The parameter cannot be converted to a numeric value: %s",
                 bad[i]);
        expect_error(bad[i], msg);
    }
    expect_error("", "The parameter cannot be converted to a numeric value");
    /* err may be NULL. */
    cp_num n;
    CPT_EQ_INT(cp_num_parse(CP_SLICE("x"), &n, NULL), CP_EINVAL);
}

static void enforces_digits_and_range(void)
{
    /* 38 significant digits pass, 39 fail; zeros at either end do not count. */
    canon("12345678901234567890123456789012345678");
    canon("0.00012345678901234567890123456789012345678");
    canon("123456789012345678901234567890123456780000");
    expect_error("123456789012345678901234567890123456789", MSG_DIGITS);
    expect_error("1.23456789012345678901234567890123456789", MSG_DIGITS);
    expect_error("-0.000123456789012345678901234567890123456789", MSG_DIGITS);

    canon("9.9999999999999999999999999999999999999E+125");
    canon("-9.9999999999999999999999999999999999999E+125");
    canon("1E-130");
    canon("-1E-130");
    expect_error("1E126", MSG_OVERFLOW);
    expect_error("-1E126", MSG_OVERFLOW);
    expect_error("10E125", MSG_OVERFLOW);
    expect_error("1e999999999999999999", MSG_OVERFLOW);
    expect_error("1E-131", MSG_UNDERFLOW);
    expect_error("-0.1E-130", MSG_UNDERFLOW);
    expect_error("1e-999999999999999999", MSG_UNDERFLOW);
    /* dynalite's order: range before precision. */
    expect_error("123456789012345678901234567890123456789E200", MSG_OVERFLOW);
}

/* Ascending; equal neighbours never appear. */
static const char *const sorted[] = {
    "-9.9999999999999999999999999999999999999E+125",
    "-1E125",
    "-12345678901234567890",
    "-1E10",
    "-123.45",
    "-123.4",
    "-12",
    "-10.5",
    "-10",
    "-9.99",
    "-1.01",
    "-1",
    "-0.99999999999999999999999999999999999999",
    "-0.5",
    "-0.12",
    "-0.1",
    "-0.0999",
    "-1E-129",
    "-1.5E-130",
    "-1E-130",
    "0",
    "1E-130",
    "1.5E-130",
    "1E-129",
    "0.0999",
    "0.1",
    "0.12",
    "0.5",
    "0.99999999999999999999999999999999999999",
    "1",
    "1.01",
    "9.99",
    "10",
    "10.5",
    "12",
    "123.4",
    "123.45",
    "1E10",
    "12345678901234567890",
    "1E125",
    "9.9999999999999999999999999999999999999E+125",
};
#define NSORTED (sizeof(sorted) / sizeof(sorted[0]))

static cp_buf key_of(const char *s)
{
    cp_buf b = CP_BUF_INIT;
    cp_num n = num(s);
    cp_num_key(&n, &b);
    CPT_CHECK(b.len <= CP_NUM_KEY_MAX);
    return b;
}

static int sgn(int v)
{
    return (v > 0) - (v < 0);
}

static void compare_and_keys_follow_numeric_order(void)
{
    cp_buf keys[NSORTED];
    for (size_t i = 0; i < NSORTED; i++) {
        keys[i] = key_of(sorted[i]);
    }
    for (size_t i = 0; i < NSORTED; i++) {
        for (size_t j = 0; j < NSORTED; j++) {
            cp_num a = num(sorted[i]), b = num(sorted[j]);
            int want = i < j ? -1 : i > j;
            if (cp_num_cmp(&a, &b) != want) {
                CPT_FAIL_AT("cp_num_cmp(%s, %s) != %d", sorted[i], sorted[j], want);
            }
            /* Plain memcmp over the shorter length already decides: the keys are prefix-free. */
            size_t n = keys[i].len < keys[j].len ? keys[i].len : keys[j].len;
            int c = sgn(memcmp(keys[i].p, keys[j].p, n));
            if (i != j && c != want) {
                CPT_FAIL_AT("key order of %s vs %s: %d, want %d", sorted[i], sorted[j], c, want);
            }
        }
    }
    for (size_t i = 0; i < NSORTED; i++) {
        cp_buf_free(&keys[i]);
    }

    /* Equal values, equal keys, whatever the spelling. */
    const char *same[][2] = {{"10", "1E1"}, {"-0", "0"}, {"0.50", "5e-1"}, {"-1.0", "-1"}};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        cp_buf a = key_of(same[i][0]), b = key_of(same[i][1]);
        CPT_EQ_MEM(a.p, a.len, b.p, b.len);
        cp_num x = num(same[i][0]), y = num(same[i][1]);
        CPT_EQ_INT(cp_num_cmp(&x, &y), 0);
        cp_buf_free(&a);
        cp_buf_free(&b);
    }
}

static int key_cmp(const void *a, const void *b)
{
    return cp_slice_cmp(cp_buf_slice(a), cp_buf_slice(b));
}

static void keys_sort_a_shuffled_list(void)
{
    cp_buf keys[NSORTED];
    size_t order[NSORTED];
    for (size_t i = 0; i < NSORTED; i++) {
        order[i] = i;
    }
    srand(7);
    for (size_t i = NSORTED - 1; i > 0; i--) {
        size_t j = (size_t) rand() % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t i = 0; i < NSORTED; i++) {
        keys[i] = key_of(sorted[order[i]]);
    }
    qsort(keys, NSORTED, sizeof(cp_buf), key_cmp);
    for (size_t i = 0; i < NSORTED; i++) {
        cp_buf want = key_of(sorted[i]);
        if (!cp_slice_eq(cp_buf_slice(&want), cp_buf_slice(&keys[i]))) {
            CPT_FAIL_AT("position %zu is not %s", i, sorted[i]);
        }
        cp_buf_free(&want);
        cp_buf_free(&keys[i]);
    }
}

static const char *arith(const char *a, const char *op, const char *b)
{
    static char out[CP_NUM_TEXT_MAX + 300];
    cp_num x = num(a), y = num(b), r;
    cp_err err = {0};
    int rc = op[0] == '+' ? cp_num_add(&x, &y, &r, &err) : cp_num_sub(&x, &y, &r, &err);
    if (rc < 0) {
        snprintf(out, sizeof(out), "ERR:%s", err.msg);
        return out;
    }
    cp_num_format_to(&r, out);
    return out;
}

static void add_and_sub_are_exact(void)
{
    CPT_EQ_STR(arith("0.1", "+", "0.2"), "0.3");
    CPT_EQ_STR(arith("0.3", "-", "0.1"), "0.2");
    CPT_EQ_STR(arith("0.999", "+", "0.001"), "1");
    CPT_EQ_STR(arith("99999999999999999999999999999999999999", "+", "1"),
               "100000000000000000000000000000000000000");
    CPT_EQ_STR(arith("1", "-", "0.0000001"), "0.9999999");
    CPT_EQ_STR(arith("1000", "-", "0.001"), "999.999");
    CPT_EQ_STR(arith("1.5", "-", "1.5"), "0");
    CPT_EQ_STR(arith("-1.5", "+", "1.5"), "0");
    CPT_EQ_STR(arith("-5", "-", "3"), "-8");
    CPT_EQ_STR(arith("3", "-", "5"), "-2");
    CPT_EQ_STR(arith("-3", "-", "-5"), "2");
    CPT_EQ_STR(arith("0", "-", "7"), "-7");
    CPT_EQ_STR(arith("7", "-", "0"), "7");
    CPT_EQ_STR(arith("0", "+", "0"), "0");
    CPT_EQ_STR(arith("0", "-", "0"), "0");
    CPT_EQ_STR(arith("-0.5", "+", "0.25"), "-0.25");
    char big[130] = "2";
    memset(big + 1, '0', 125);
    big[126] = 0;
    CPT_EQ_STR(arith("1E125", "+", "1E125"), big);
    CPT_EQ_STR(arith("2E-130", "-", "1E-130"), arith("0", "+", "1E-130"));
    CPT_EQ_STR(arith("1E-129", "-", "9E-130"), arith("0", "+", "1E-130"));
    CPT_EQ_STR(arith("12345678901234567890123456789012345678", "-",
                     "12345678901234567890123456789012345677"),
               "1");
    CPT_EQ_STR(arith("9E125", "+", "1E125"), "ERR:Number overflow. Attempting to store a number "
                                             "with magnitude larger than supported range");
    CPT_EQ_STR(arith("-9E125", "-", "1E125"), "ERR:Number overflow. Attempting to store a number "
                                              "with magnitude larger than supported range");
    CPT_EQ_STR(arith("1.000000000000000000000000000000000001E-130", "-", "1E-130"),
               "ERR:Number underflow. Attempting to store a number with magnitude smaller than "
               "supported range");
    CPT_EQ_STR(arith("1E20", "+", "1E-20"),
               "ERR:Attempting to store more than 38 significant digits in a Number");
    CPT_EQ_STR(arith("12345678901234567890123456789012345678", "+", "0.5"),
               "ERR:Attempting to store more than 38 significant digits in a Number");
    /* Cancellation can bring a long operand back under 38 digits. */
    CPT_EQ_STR(arith("1.0000000000000000000000000000000000001", "-",
                     "0.0000000000000000000000000000000000001"),
               "1");
}

/* Decimal text of v / 1000 for checking against integer arithmetic. */
static void milli_text(long long v, char *out)
{
    long long a = v < 0 ? -v : v;
    sprintf(out, "%s%lld.%03lld", v < 0 ? "-" : "", a / 1000, a % 1000);
}

static void add_sub_match_integer_arithmetic(void)
{
    srand(11);
    for (int i = 0; i < 20000; i++) {
        long long a = ((long long) rand() << 16 ^ rand()) % 2000000000000LL - 1000000000000LL;
        long long b = ((long long) rand() << 16 ^ rand()) % 2000000000000LL - 1000000000000LL;
        if (i % 7 == 0) {
            b = -a + (rand() % 3 - 1); /* near-cancellation */
        }
        char ta[64], tb[64], want[64];
        milli_text(a, ta);
        milli_text(b, tb);
        milli_text(a + b, want);
        CPT_EQ_STR(arith(ta, "+", tb), canon(want));
        milli_text(a - b, want);
        CPT_EQ_STR(arith(ta, "-", tb), canon(want));
    }
}

static size_t size_of(const char *s)
{
    cp_num n = num(s);
    return cp_num_size(&n);
}

static void size_follows_dynalite(void)
{
    CPT_EQ_INT(size_of("0"), 1);
    CPT_EQ_INT(size_of("1"), 2);
    CPT_EQ_INT(size_of("100"), 2);
    CPT_EQ_INT(size_of("12"), 2);   /* one base-100 digit */
    CPT_EQ_INT(size_of("1.2"), 3);  /* 01|20 */
    CPT_EQ_INT(size_of("123"), 3);  /* 01|23 */
    CPT_EQ_INT(size_of("12.3"), 3); /* 12|30 */
    CPT_EQ_INT(size_of("1234"), 3);
    CPT_EQ_INT(size_of("0.12"), 2);
    CPT_EQ_INT(size_of("0.012"), 3);
    CPT_EQ_INT(size_of("-1"), 3);
    CPT_EQ_INT(size_of("-1.2"), 4);
    CPT_EQ_INT(size_of("12345678901234567890123456789012345678"), 20);
    CPT_EQ_INT(size_of("1.2345678901234567890123456789012345678"), 21);
    CPT_EQ_INT(size_of("-1.2345678901234567890123456789012345678"), 22);
}

static void from_stored_accepts_only_canonical_text(void)
{
    cp_num n;
    CPT_EQ_INT(cp_num_from_stored(CP_SLICE("1.5"), &n), CP_OK);
    CPT_EQ_INT(n.exp, 1);
    CPT_EQ_INT(cp_num_from_stored(CP_SLICE("-0.001"), &n), CP_OK);
    CPT_EQ_INT(cp_num_from_stored(CP_SLICE("0"), &n), CP_OK);
    const char *bad[] = {"", "1.50", "01", "-0", "1e3", "+1", ".5", "abc", "1."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cp_num_from_stored(cp_slice_str(bad[i]), &n) != CP_ECORRUPT) {
            CPT_FAIL_AT("accepted stored %s", bad[i]);
        }
    }
}

CPT_LIST = {
    {"normalises_to_canonical_text", normalises_to_canonical_text},
    {"rejects_non_numbers_with_aws_text", rejects_non_numbers_with_aws_text},
    {"enforces_digits_and_range", enforces_digits_and_range},
    {"compare_and_keys_follow_numeric_order", compare_and_keys_follow_numeric_order},
    {"keys_sort_a_shuffled_list", keys_sort_a_shuffled_list},
    {"add_and_sub_are_exact", add_and_sub_are_exact},
    {"add_sub_match_integer_arithmetic", add_sub_match_integer_arithmetic},
    {"size_follows_dynalite", size_follows_dynalite},
    {"from_stored_accepts_only_canonical_text", from_stored_accepts_only_canonical_text},
    {0},
};
