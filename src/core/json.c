/* SPDX-License-Identifier: MIT */
/* Validating pull lexer and writer helpers for JSON (RFC 8259). */
#include "core/json.h"

#include <string.h>

void cp_json_lexer_init(cp_json_lexer *lx, cp_slice in)
{
    memset(lx, 0, sizeof(*lx));
    lx->p = lx->start = in.p;
    lx->end = in.p + in.len;
    lx->need_value = 1;
}

static int fail(cp_json_lexer *lx, const char *why)
{
    if (!lx->error) {
        lx->error = why;
    }
    return CP_EINVAL;
}

static void skip_ws(cp_json_lexer *lx)
{
    while (lx->p < lx->end &&
           (*lx->p == ' ' || *lx->p == '\n' || *lx->p == '\r' || *lx->p == '\t')) {
        lx->p++;
    }
}

/* Scan a string body starting after the opening quote. */
static int scan_string(cp_json_lexer *lx, cp_json_tok *tok)
{
    const char *s = lx->p;
    int escaped = 0;
    while (lx->p < lx->end) {
        unsigned char c = (unsigned char) *lx->p;
        if (c == '"') {
            tok->s = (cp_slice){s, (size_t) (lx->p - s)};
            tok->escaped = escaped;
            lx->p++;
            return CP_OK;
        }
        if (c == '\\') {
            escaped = 1;
            lx->p++;
            if (lx->p >= lx->end) {
                break;
            }
            c = (unsigned char) *lx->p;
            if (c == 'u') {
                if (lx->end - lx->p < 5) {
                    return fail(lx, "truncated \\u escape");
                }
                for (int i = 1; i <= 4; i++) {
                    char h = lx->p[i];
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') ||
                          (h >= 'A' && h <= 'F'))) {
                        return fail(lx, "bad \\u escape");
                    }
                }
                lx->p += 5;
                continue;
            }
            if (!strchr("\"\\/bfnrt", c) || c == 0) {
                return fail(lx, "bad escape");
            }
            lx->p++;
            continue;
        }
        if (c < 0x20) {
            return fail(lx, "control character in string");
        }
        lx->p++;
    }
    return fail(lx, "unterminated string");
}

static int scan_number(cp_json_lexer *lx, cp_json_tok *tok)
{
    const char *s = lx->p, *e = lx->end, *p = s;
    if (p < e && *p == '-') {
        p++;
    }
    if (p >= e) {
        return fail(lx, "bad number");
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    } else {
        return fail(lx, "bad number");
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') {
            return fail(lx, "bad number");
        }
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= e || *p < '0' || *p > '9') {
            return fail(lx, "bad number");
        }
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    tok->type = CP_JSON_NUMBER;
    tok->s = (cp_slice){s, (size_t) (p - s)};
    lx->p = p;
    return CP_OK;
}

static int literal(cp_json_lexer *lx, const char *word, cp_json_type type, cp_json_tok *tok)
{
    size_t n = strlen(word);
    if ((size_t) (lx->end - lx->p) < n || memcmp(lx->p, word, n) != 0) {
        return fail(lx, "unexpected character");
    }
    tok->type = type;
    tok->s = (cp_slice){lx->p, n};
    lx->p += n;
    return CP_OK;
}

int cp_json_next(cp_json_lexer *lx, cp_json_tok *tok)
{
    tok->escaped = 0;
    tok->s = (cp_slice){NULL, 0};
    if (lx->error) {
        return CP_EINVAL;
    }
    skip_ws(lx);
    if (lx->depth == 0 && lx->after_value) {
        if (lx->p != lx->end) {
            return fail(lx, "trailing characters after the document");
        }
        tok->type = CP_JSON_END;
        return CP_OK;
    }
    if (lx->p >= lx->end) {
        return fail(lx, "unexpected end of input");
    }
    char c = *lx->p;
    unsigned char top = lx->depth ? lx->stack[lx->depth - 1] : 0;

    if (lx->after_value) {
        /* Between members/elements: ',' or the closer of the current container. */
        if (c == ',') {
            lx->p++;
            lx->after_value = 0;
            skip_ws(lx);
            if (lx->p >= lx->end) {
                return fail(lx, "unexpected end of input");
            }
            c = *lx->p;
            if (top == '[') {
                lx->need_value = 1;
            } else if (c != '"') {
                return fail(lx, "expected a member name");
            }
        } else if ((c == '}' && top == '{') || (c == ']' && top == '[')) {
            lx->p++;
            lx->depth--;
            tok->type = c == '}' ? CP_JSON_OBJ_END : CP_JSON_ARR_END;
            lx->after_value = 1;
            return CP_OK;
        } else {
            return fail(lx, "expected ',' or a closing bracket");
        }
    }

    if (top == '{' && !lx->need_value) {
        /* A member name, or '}' right after '{'. */
        if (c == '}') {
            lx->p++;
            lx->depth--;
            tok->type = CP_JSON_OBJ_END;
            lx->after_value = 1;
            return CP_OK;
        }
        if (c != '"') {
            return fail(lx, "expected a member name");
        }
        lx->p++;
        if (scan_string(lx, tok) < 0) {
            return CP_EINVAL;
        }
        skip_ws(lx);
        if (lx->p >= lx->end || *lx->p != ':') {
            return fail(lx, "expected ':'");
        }
        lx->p++;
        tok->type = CP_JSON_KEY;
        lx->need_value = 1;
        return CP_OK;
    }

    if (top == '[' && c == ']' && !lx->after_value && lx->need_value == 2) {
        lx->p++;
        lx->depth--;
        tok->type = CP_JSON_ARR_END;
        lx->after_value = 1;
        lx->need_value = 0;
        return CP_OK;
    }

    /* A value. */
    lx->need_value = 0;
    int rc = CP_OK;
    switch (c) {
    case '{':
    case '[':
        if (lx->depth >= CP_JSON_MAX_DEPTH) {
            return fail(lx, "nesting too deep");
        }
        lx->stack[lx->depth++] = (unsigned char) c;
        lx->p++;
        tok->type = c == '{' ? CP_JSON_OBJ_BEGIN : CP_JSON_ARR_BEGIN;
        lx->after_value = 0;
        lx->need_value = c == '[' ? 2 : 0; /* 2: a value or an immediate ']' */
        return CP_OK;
    case '"':
        lx->p++;
        rc = scan_string(lx, tok);
        tok->type = CP_JSON_STRING;
        break;
    case 't':
        rc = literal(lx, "true", CP_JSON_TRUE, tok);
        break;
    case 'f':
        rc = literal(lx, "false", CP_JSON_FALSE, tok);
        break;
    case 'n':
        rc = literal(lx, "null", CP_JSON_NULL, tok);
        break;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            rc = scan_number(lx, tok);
        } else {
            rc = fail(lx, "unexpected character");
        }
    }
    if (rc == CP_OK) {
        lx->after_value = 1;
    }
    return rc;
}

int cp_json_skip(cp_json_lexer *lx, const cp_json_tok *first)
{
    if (first->type != CP_JSON_OBJ_BEGIN && first->type != CP_JSON_ARR_BEGIN) {
        return CP_OK;
    }
    int target = lx->depth - 1;
    cp_json_tok t;
    while (lx->depth > target) {
        if (cp_json_next(lx, &t) < 0) {
            return CP_EINVAL;
        }
    }
    return CP_OK;
}

static int hexval(char h)
{
    if (h >= '0' && h <= '9') {
        return h - '0';
    }
    if (h >= 'a' && h <= 'f') {
        return h - 'a' + 10;
    }
    return h - 'A' + 10;
}

static void put_utf8(cp_buf *out, uint32_t cp)
{
    char t[4];
    size_t n;
    if (cp < 0x80) {
        t[0] = (char) cp;
        n = 1;
    } else if (cp < 0x800) {
        t[0] = (char) (0xC0 | cp >> 6);
        t[1] = (char) (0x80 | (cp & 63));
        n = 2;
    } else if (cp < 0x10000) {
        t[0] = (char) (0xE0 | cp >> 12);
        t[1] = (char) (0x80 | ((cp >> 6) & 63));
        t[2] = (char) (0x80 | (cp & 63));
        n = 3;
    } else {
        t[0] = (char) (0xF0 | cp >> 18);
        t[1] = (char) (0x80 | ((cp >> 12) & 63));
        t[2] = (char) (0x80 | ((cp >> 6) & 63));
        t[3] = (char) (0x80 | (cp & 63));
        n = 4;
    }
    cp_buf_append(out, t, n);
}

int cp_json_unescape(cp_slice raw, cp_buf *out)
{
    const char *p = raw.p, *e = raw.p + raw.len;
    cp_buf_reserve(out, raw.len);
    while (p < e) {
        const char *q = memchr(p, '\\', (size_t) (e - p));
        if (!q) {
            cp_buf_append(out, p, (size_t) (e - p));
            break;
        }
        cp_buf_append(out, p, (size_t) (q - p));
        p = q + 1;
        if (p >= e) {
            return CP_EINVAL;
        }
        char c = *p++;
        switch (c) {
        case '"': cp_buf_putc(out, '"'); break;
        case '\\': cp_buf_putc(out, '\\'); break;
        case '/': cp_buf_putc(out, '/'); break;
        case 'b': cp_buf_putc(out, '\b'); break;
        case 'f': cp_buf_putc(out, '\f'); break;
        case 'n': cp_buf_putc(out, '\n'); break;
        case 'r': cp_buf_putc(out, '\r'); break;
        case 't': cp_buf_putc(out, '\t'); break;
        case 'u': {
            if (e - p < 4) {
                return CP_EINVAL;
            }
            uint32_t cp = 0;
            for (int i = 0; i < 4; i++) {
                cp = cp << 4 | (uint32_t) hexval(p[i]);
            }
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (e - p < 6 || p[0] != '\\' || p[1] != 'u') {
                    return CP_EINVAL;
                }
                uint32_t lo = 0;
                for (int i = 2; i < 6; i++) {
                    lo = lo << 4 | (uint32_t) hexval(p[i]);
                }
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    return CP_EINVAL;
                }
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return CP_EINVAL;
            }
            put_utf8(out, cp);
            break;
        }
        default: return CP_EINVAL;
        }
    }
    return CP_OK;
}

int cp_json_tok_string(const cp_json_tok *tok, cp_buf *scratch, cp_slice *out)
{
    if (!tok->escaped) {
        *out = tok->s;
        return CP_OK;
    }
    cp_buf_reset(scratch);
    int rc = cp_json_unescape(tok->s, scratch);
    *out = cp_buf_slice(scratch);
    return rc;
}

int cp_json_tok_is(const cp_json_tok *tok, const char *s)
{
    size_t n = strlen(s);
    return !tok->escaped && tok->s.len == n && memcmp(tok->s.p, s, n) == 0;
}

void cp_json_put_str(cp_buf *out, cp_slice s)
{
    static const char hex[] = "0123456789abcdef";
    cp_buf_reserve(out, s.len + 2);
    out->p[out->len++] = '"';
    const unsigned char *p = (const unsigned char *) s.p, *e = p + s.len;
    while (p < e) {
        const unsigned char *run = p;
        while (p < e && *p >= 0x20 && *p != '"' && *p != '\\') {
            p++;
        }
        if (p > run) {
            cp_buf_append(out, run, (size_t) (p - run));
        }
        if (p >= e) {
            break;
        }
        unsigned char c = *p++;
        char esc[7] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        cp_buf_append(out, esc, n);
    }
    cp_buf_putc(out, '"');
}

void cp_json_put_key(cp_buf *out, const char *key)
{
    cp_json_put_str(out, cp_slice_str(key));
    cp_buf_putc(out, ':');
}

void cp_json_put_kv_str(cp_buf *out, const char *key, cp_slice value)
{
    cp_json_put_key(out, key);
    cp_json_put_str(out, value);
}

int cp_utf8_valid(cp_slice s)
{
    const unsigned char *p = (const unsigned char *) s.p, *e = p + s.len;
    while (p < e) {
        unsigned char c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) {
            n = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if ((size_t) (e - p) < n) {
            return 0;
        }
        for (size_t i = 1; i < n; i++) {
            if ((p[i] & 0xC0) != 0x80) {
                return 0;
            }
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return 0;
        }
        p += n;
    }
    return 1;
}
