/* SPDX-License-Identifier: MIT */
/*
 * DynamoDB numbers as exact decimals: parsing with DynamoDB's limits and messages, canonical
 * text, comparison, order-preserving key bytes, exact addition and the size DynamoDB bills.
 * The item model stores numbers as canonical text; everything numeric goes through cp_num.
 */
#include "table/number.h"

#include <stdint.h>
#include <string.h>

/* cp_num keeps value = 0.d1d2..dn x 10^exp, so 1E-130 has exp -129 and 9.99..E+125 has 126.
 * (dynalite checks Big.js's exponent, which is exp - 1, against -130 and 125.) */
#define EXP_MIN (-129)
#define EXP_MAX 126

/* ValidationException texts, as AWS (recorded by dynalite) words them. */
static const char MSG_NAN[] = "The parameter cannot be converted to a numeric value";
static const char MSG_DIGITS[] = "Attempting to store more than 38 significant digits in a Number";
static const char MSG_OVERFLOW[] = "Number overflow. Attempting to store a number with magnitude "
                                   "larger than supported range";
static const char MSG_UNDERFLOW[] = "Number underflow. Attempting to store a number with magnitude "
                                    "smaller than supported range";

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The offending text goes into a 256-byte message; cut it at a UTF-8 boundary so the reply
 * stays valid UTF-8. */
static int nan_error(cp_slice text, cp_err *err)
{
    if (text.len == 0) {
        /* dynalite: an empty string fails its truthiness test before Big() sees it. */
        return cp_err_set(err, CP_EINVAL, "%s", MSG_NAN);
    }
    size_t n = text.len < 180 ? text.len : 180;
    if (n < text.len) {
        while (n > 0 && ((unsigned char) text.p[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    return cp_err_set(err, CP_EINVAL, "%s: %.*s", MSG_NAN, (int) n, text.p);
}

/* Range and precision checks in dynalite's order: overflow, underflow, then digits. */
static int check_limits(int64_t exp, int64_t ndigits, cp_err *err)
{
    if (exp > EXP_MAX) {
        return cp_err_set(err, CP_EINVAL, "%s", MSG_OVERFLOW);
    }
    if (exp < EXP_MIN) {
        return cp_err_set(err, CP_EINVAL, "%s", MSG_UNDERFLOW);
    }
    if (ndigits > CP_NUM_MAX_DIGITS) {
        return cp_err_set(err, CP_EINVAL, "%s", MSG_DIGITS);
    }
    return CP_OK;
}

/*
 * Grammar (Java BigDecimal's, which DynamoDB uses): [+-] then digits with at most one '.', at
 * least one digit ("1.", ".5" are fine), then optionally [eE][+-]digits. No whitespace, no
 * hex, no Infinity/NaN. Significant digits run from the first to the last non-zero digit, so
 * leading and trailing zeros never count against the 38.
 */
int cp_num_parse(cp_slice text, cp_num *out, cp_err *err)
{
    const char *p = text.p, *end = text.p + text.len;
    cp_num n = {0};
    int neg = 0;
    if (p < end && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
    }
    int64_t idx = 0, first = -1, last = -1, point = -1;
    for (; p < end; p++) {
        char c = *p;
        if (is_digit(c)) {
            if (c != '0') {
                if (first < 0) {
                    first = idx;
                }
                last = idx;
            }
            if (first >= 0 && idx - first < CP_NUM_MAX_DIGITS) {
                n.digits[idx - first] = c;
            }
            idx++;
        } else if (c == '.' && point < 0) {
            point = idx;
        } else {
            break;
        }
    }
    if (idx == 0) {
        return nan_error(text, err);
    }
    if (point < 0) {
        point = idx;
    }
    int64_t e10 = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p >= end || !is_digit(*p)) {
            return nan_error(text, err);
        }
        for (; p < end && is_digit(*p); p++) {
            /* Saturate: anything this large is out of range whatever the mantissa. */
            if (e10 < 1000000000) {
                e10 = e10 * 10 + (*p - '0');
            }
        }
        if (eneg) {
            e10 = -e10;
        }
    }
    if (p != end) {
        return nan_error(text, err);
    }
    if (first < 0) {
        *out = n; /* zero, whatever its sign or exponent: "-0", "0e999" */
        return CP_OK;
    }
    int64_t exp = point - first + e10;
    int rc = check_limits(exp, last - first + 1, err);
    if (rc < 0) {
        return rc;
    }
    n.neg = neg;
    n.exp = (int) exp;
    n.ndigits = (int) (last - first + 1);
    *out = n;
    return CP_OK;
}

size_t cp_num_format_to(const cp_num *n, char *dst)
{
    char *o = dst;
    if (n->ndigits == 0) {
        *o++ = '0';
        *o = 0;
        return 1;
    }
    if (n->neg) {
        *o++ = '-';
    }
    int nd = n->ndigits, exp = n->exp;
    if (exp >= nd) {
        memcpy(o, n->digits, (size_t) nd);
        o += nd;
        memset(o, '0', (size_t) (exp - nd));
        o += exp - nd;
    } else if (exp > 0) {
        memcpy(o, n->digits, (size_t) exp);
        o += exp;
        *o++ = '.';
        memcpy(o, n->digits + exp, (size_t) (nd - exp));
        o += nd - exp;
    } else {
        *o++ = '0';
        *o++ = '.';
        memset(o, '0', (size_t) -exp);
        o += -exp;
        memcpy(o, n->digits, (size_t) nd);
        o += nd;
    }
    *o = 0;
    return (size_t) (o - dst);
}

void cp_num_format(const cp_num *n, cp_buf *out)
{
    char tmp[CP_NUM_TEXT_MAX];
    size_t len = cp_num_format_to(n, tmp);
    cp_buf_append(out, tmp, len);
}

static int sign_of(const cp_num *n)
{
    return n->ndigits == 0 ? 0 : n->neg ? -1 : 1;
}

/* |a| vs |b| for non-zero numbers: normalised mantissas make the exponent decide first. */
static int cmp_mag(const cp_num *a, const cp_num *b)
{
    if (a->exp != b->exp) {
        return a->exp < b->exp ? -1 : 1;
    }
    int n = a->ndigits < b->ndigits ? a->ndigits : b->ndigits;
    int c = memcmp(a->digits, b->digits, (size_t) n);
    if (c) {
        return c < 0 ? -1 : 1;
    }
    return a->ndigits < b->ndigits ? -1 : a->ndigits > b->ndigits;
}

int cp_num_cmp(const cp_num *a, const cp_num *b)
{
    int sa = sign_of(a), sb = sign_of(b);
    if (sa != sb) {
        return sa < sb ? -1 : 1;
    }
    if (sa == 0) {
        return 0;
    }
    int m = cmp_mag(a, b);
    return sa > 0 ? m : -m;
}

/*
 * Negatives invert every byte's sense (exponent and digits) so that a bigger magnitude sorts
 * first, and end with 0xFF so that a shorter digit string (smaller magnitude, hence larger
 * value) sorts after its extensions. Positives end with 0x00 for the mirror reason.
 */
void cp_num_key(const cp_num *n, cp_buf *out)
{
    unsigned char k[CP_NUM_KEY_MAX];
    size_t len = 0;
    if (n->ndigits == 0) {
        k[len++] = 0x02;
    } else if (!n->neg) {
        k[len++] = 0x03;
        k[len++] = (unsigned char) (n->exp - EXP_MIN);
        for (int i = 0; i < n->ndigits; i++) {
            k[len++] = (unsigned char) (n->digits[i] - '0' + 1);
        }
        k[len++] = 0x00;
    } else {
        k[len++] = 0x01;
        k[len++] = (unsigned char) (EXP_MAX - n->exp);
        for (int i = 0; i < n->ndigits; i++) {
            k[len++] = (unsigned char) (10 - (n->digits[i] - '0'));
        }
        k[len++] = 0xFF;
    }
    cp_buf_append(out, k, len);
}

/* Digit positions spanned by two in-range operands: exponents 126 down to -129-38, plus a carry. */
#define SPAN (EXP_MAX - (EXP_MIN - CP_NUM_MAX_DIGITS) + 2)

/* Place the digits of n into d[], where d[k] holds the digit of power (hi - k). */
static void spread(const cp_num *n, int hi, unsigned char *d)
{
    for (int i = 0; i < n->ndigits; i++) {
        d[hi - (n->exp - 1 - i)] = (unsigned char) (n->digits[i] - '0');
    }
}

/* a + (sign_b) * |b|: schoolbook arithmetic over the exact aligned digits, then one
 * normalisation and the same limit checks as parsing. */
static int add_signed(const cp_num *a, const cp_num *b, int b_neg, cp_num *out, cp_err *err)
{
    if (b->ndigits == 0) {
        *out = *a;
        return CP_OK;
    }
    if (a->ndigits == 0) {
        *out = *b;
        out->neg = b_neg;
        return CP_OK;
    }
    int hi = a->exp > b->exp ? a->exp : b->exp;
    int lo_a = a->exp - a->ndigits, lo_b = b->exp - b->ndigits;
    int lo = lo_a < lo_b ? lo_a : lo_b;
    int width = hi - lo + 1; /* index 0 is the carry slot (power hi) */
    unsigned char da[SPAN] = {0}, db[SPAN] = {0}, r[SPAN] = {0};
    spread(a, hi, da);
    spread(b, hi, db);
    int neg;
    if (a->neg == b_neg) {
        int carry = 0;
        for (int k = width - 1; k >= 0; k--) {
            int s = da[k] + db[k] + carry;
            r[k] = (unsigned char) (s % 10);
            carry = s / 10;
        }
        neg = a->neg;
    } else {
        int m = cmp_mag(a, b);
        if (m == 0) {
            *out = (cp_num){0};
            return CP_OK;
        }
        const unsigned char *x = m > 0 ? da : db, *y = m > 0 ? db : da;
        int borrow = 0;
        for (int k = width - 1; k >= 0; k--) {
            int s = x[k] - y[k] - borrow;
            borrow = s < 0;
            r[k] = (unsigned char) (s + (borrow ? 10 : 0));
        }
        neg = m > 0 ? a->neg : b_neg;
    }
    int f = 0, l = width - 1;
    while (f < width && r[f] == 0) {
        f++;
    }
    while (l > f && r[l] == 0) {
        l--;
    }
    int64_t exp = (int64_t) (hi - f) + 1;
    int rc = check_limits(exp, l - f + 1, err);
    if (rc < 0) {
        return rc;
    }
    cp_num n = {0};
    n.neg = neg;
    n.exp = (int) exp;
    n.ndigits = l - f + 1;
    for (int i = 0; i < n.ndigits; i++) {
        n.digits[i] = (char) ('0' + r[f + i]);
    }
    *out = n;
    return CP_OK;
}

int cp_num_add(const cp_num *a, const cp_num *b, cp_num *out, cp_err *err)
{
    return add_signed(a, b, b->neg, out, err);
}

int cp_num_sub(const cp_num *a, const cp_num *b, cp_num *out, cp_err *err)
{
    return add_signed(a, b, !b->neg, out, err);
}

/*
 * DynamoDB stores numbers like Oracle's NUMBER: one exponent byte, base-100 mantissa digits
 * aligned on even powers of ten, and a terminator byte for negatives. dynalite's formula
 * counts exactly that: with Big.js's exponent e (= exp - 1), an even digit count starting on
 * an even power straddles one extra base-100 digit ("1.2" is 01|20, "12" is 12).
 */
size_t cp_num_size(const cp_num *n)
{
    if (n->ndigits == 0) {
        return 1;
    }
    int e = n->exp - 1;
    size_t size = 1 + (size_t) (n->ndigits + 1) / 2;
    if (n->ndigits % 2 == 0 && e % 2 == 0) {
        size++;
    }
    if (n->neg) {
        size++;
    }
    return size;
}

int cp_num_from_stored(cp_slice text, cp_num *out)
{
    if (text.len == 0 || text.len >= CP_NUM_TEXT_MAX || cp_num_parse(text, out, NULL) < 0) {
        return CP_ECORRUPT;
    }
    /* Stored numbers are canonical; anything else means the bytes are not ours. */
    char tmp[CP_NUM_TEXT_MAX];
    size_t len = cp_num_format_to(out, tmp);
    if (len != text.len || memcmp(tmp, text.p, len) != 0) {
        return CP_ECORRUPT;
    }
    return CP_OK;
}
