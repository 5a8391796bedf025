/* SPDX-License-Identifier: MIT */
/*
 * DynamoDB numbers: exact decimals of up to 38 significant digits with magnitudes 1E-130 to
 * 9.99..E+125 (and zero). Parsed once, stored as canonical text ("01.50" -> "1.5",
 * "1E1" -> "10"), compared numerically, encoded into order-preserving key bytes.
 */
#ifndef CP_NUMBER_H
#define CP_NUMBER_H

#include <stdint.h>

#include "core/buf.h"

#define CP_NUM_MAX_DIGITS 38
/* Longest canonical text plus a NUL: "-0." + 129 zeros + 38 digits = 170 characters. */
#define CP_NUM_TEXT_MAX 172
/* Longest cp_num_key output: class byte, exponent byte, 38 digit bytes, terminator. */
#define CP_NUM_KEY_MAX (CP_NUM_MAX_DIGITS + 3)

typedef struct cp_num {
    int neg;                         /* 1 for negative numbers (never for zero) */
    int exp;                         /* value = 0.d1d2...dn x 10^exp; 0 for zero */
    int ndigits;                     /* significant digits, no trailing zeros; 0 for zero */
    char digits[CP_NUM_MAX_DIGITS];  /* ASCII '0'..'9', digits[0] != '0' */
} cp_num;

/* Parse decimal text (optional sign, digits, optional fraction, optional exponent; no
 * whitespace; "+1", "1." and ".5" are accepted as Java's BigDecimal accepts them). Leading and
 * trailing zeros are not significant; zero in any spelling ("-0", "0e99") is zero.
 * CP_EINVAL with AWS's ValidationException message in err:
 * "The parameter cannot be converted to a numeric value: <text>",
 * "Attempting to store more than 38 significant digits in a Number",
 * "Number overflow. Attempting to store a number with magnitude larger than supported range",
 * "Number underflow. Attempting to store a number with magnitude smaller than supported range"
 * (checked in dynalite's order: syntax, overflow, underflow, digits). err may be NULL. */
int cp_num_parse(cp_slice text, cp_num *out, cp_err *err);
/* Append the canonical text: plain notation, no exponent, no redundant zeros ("-0.001", "1500"). */
void cp_num_format(const cp_num *n, cp_buf *out);
/* Write the canonical text into dst (at least CP_NUM_TEXT_MAX bytes), NUL-terminated; returns its
 * length. For hot paths that must not allocate. */
size_t cp_num_format_to(const cp_num *n, char *dst);
/* Numeric comparison: <0, 0, >0. */
int cp_num_cmp(const cp_num *a, const cp_num *b);
/* Append bytes whose memcmp order equals numeric order (for sort keys). The encoding is
 * prefix-free (no key is a prefix of another), so it can be followed by more key bytes:
 *   zero: 0x02;  positive: 0x03, exp+129, (digit+1)..., 0x00;
 *   negative: 0x01, 126-exp, (10-digit)..., 0xFF   (exp as in cp_num, -129..126). */
void cp_num_key(const cp_num *n, cp_buf *out);
/* Exact a + b and a - b; CP_EINVAL with the overflow/underflow/38-digit message on failure. */
int cp_num_add(const cp_num *a, const cp_num *b, cp_num *out, cp_err *err);
int cp_num_sub(const cp_num *a, const cp_num *b, cp_num *out, cp_err *err);
/* DynamoDB's storage size of the number in bytes (item-size accounting), dynalite's formula:
 * 1 for zero, else 1 (exponent byte) + the number of base-100 digits the mantissa occupies when
 * aligned on even powers of ten (ceil(digits/2), +1 when both the digit count and the
 * scientific exponent are even) + 1 for negatives (their terminator byte). */
size_t cp_num_size(const cp_num *n);
/* Parse canonical text that we stored ourselves; CP_ECORRUPT when it is not a number in canonical
 * form (what cp_num_format produces). */
int cp_num_from_stored(cp_slice text, cp_num *out);

#endif
