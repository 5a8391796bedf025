/* SPDX-License-Identifier: MIT */
/*
 * JSON without a DOM: a validating pull lexer for request bodies (the hot path parses straight
 * into binary items with it) and writer helpers for responses and change records.
 */
#ifndef CP_JSON_H
#define CP_JSON_H

#include "core/buf.h"

typedef enum {
    CP_JSON_END = 0, /* the document is complete */
    CP_JSON_OBJ_BEGIN,
    CP_JSON_OBJ_END,
    CP_JSON_ARR_BEGIN,
    CP_JSON_ARR_END,
    CP_JSON_KEY,    /* an object member name; s is the raw text between the quotes */
    CP_JSON_STRING, /* s is the raw text between the quotes */
    CP_JSON_NUMBER, /* s is the number text */
    CP_JSON_TRUE,
    CP_JSON_FALSE,
    CP_JSON_NULL,
} cp_json_type;

typedef struct cp_json_tok {
    cp_json_type type;
    cp_slice s;  /* borrows the input */
    int escaped; /* STRING/KEY contains backslash escapes: use cp_json_unescape */
} cp_json_tok;

/* DynamoDB documents nest 32 levels at 2 JSON levels each, inside request envelopes of up to
 * ~6 levels (BatchWriteItem): 128 leaves room for that plus a value that is too deep. */
#define CP_JSON_MAX_DEPTH 128

typedef struct cp_json_lexer {
    const char *p, *end, *start;
    int depth;
    int need_value;                    /* a value must come next (after ':' or at start) */
    int after_value;                   /* a value just ended: expect ',' or a closer */
    unsigned char stack[CP_JSON_MAX_DEPTH]; /* '{' or '[' per open container */
    const char *error;                 /* static text describing the first error */
} cp_json_lexer;

/* Start lexing `in` (borrowed for the lexer's lifetime). */
void cp_json_lexer_init(cp_json_lexer *lx, cp_slice in);
/* Next token. Returns CP_OK, or CP_EINVAL with lx->error set on malformed input (sticky).
 * After the top-level value it returns CP_JSON_END, or CP_EINVAL if trailing bytes follow. */
int cp_json_next(cp_json_lexer *lx, cp_json_tok *tok);
/* Skip the rest of the value whose first token is `first` (already returned by next). */
int cp_json_skip(cp_json_lexer *lx, const cp_json_tok *first);
/* Byte offset of the lexer in its input (for error messages). */
static inline size_t cp_json_offset(const cp_json_lexer *lx)
{
    return (size_t) (lx->p - lx->start);
}

/* Append the decoded UTF-8 of a raw string body to out. CP_EINVAL on a bad escape or a lone
 * surrogate. */
int cp_json_unescape(cp_slice raw, cp_buf *out);
/* The string value of a STRING/KEY token: `raw` itself when unescaped, else decoded into
 * scratch (reset first). The result is valid until scratch changes. */
int cp_json_tok_string(const cp_json_tok *tok, cp_buf *scratch, cp_slice *out);
/* Compare a KEY/STRING token (unescaped) with a C string. */
int cp_json_tok_is(const cp_json_tok *tok, const char *s);

/* Append `s` as a quoted JSON string, escaping what JSON requires (invalid UTF-8 is copied
 * as is; our stored strings were validated on the way in). */
void cp_json_put_str(cp_buf *out, cp_slice s);
/* Append `"key":` */
void cp_json_put_key(cp_buf *out, const char *key);
/* Convenience: "key":"value" without a trailing comma. */
void cp_json_put_kv_str(cp_buf *out, const char *key, cp_slice value);

/* Check that `s` is valid UTF-8 (no overlongs, no surrogates). */
int cp_utf8_valid(cp_slice s);

#endif
