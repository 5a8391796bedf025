/* SPDX-License-Identifier: MIT */
/* Core leaf libraries: JSON lexer/writer, base64, varints, digests. */
#include "cpt.h"

#include "core/base64.h"
#include "core/buf.h"
#include "core/hash.h"
#include "core/json.h"

/* Lex a whole document; returns the token types as letters, or "ERR:<reason>". */
static void lex_all(const char *in, char *out, size_t cap)
{
    cp_json_lexer lx;
    cp_json_lexer_init(&lx, cp_slice_str(in));
    size_t n = 0;
    for (;;) {
        cp_json_tok t;
        if (cp_json_next(&lx, &t) < 0) {
            snprintf(out, cap, "ERR:%s", lx.error);
            return;
        }
        static const char letters[] = ".{}[]ksntfz";
        if (n + 1 < cap) {
            out[n++] = letters[t.type];
        }
        if (t.type == CP_JSON_END) {
            break;
        }
    }
    out[n] = 0;
}

static void json_lexer_accepts_valid(void)
{
    char out[128];
    lex_all("{\"a\":[1,\"x\",true,false,null,{}],\"b\":{\"c\":[]}}", out, sizeof(out));
    CPT_EQ_STR(out, "{k[nstfz{}]k{k[]}}.");
    lex_all("  -1.5e+3 ", out, sizeof(out));
    CPT_EQ_STR(out, "n.");
    lex_all("\"\\u00e9\\n\"", out, sizeof(out));
    CPT_EQ_STR(out, "s.");
}

static void json_lexer_rejects_invalid(void)
{
    const char *bad[] = {"{",        "{\"a\"}",   "{\"a\":1,}", "[1,]",     "[1 2]",  "01",
                         "1.",       "tru",       "\"abc",      "{} x",     "{,}",    "[,1]",
                         "\"\\x\"",  "{\"a\" 1}", "",           "\"\x01\"", "{1:2}", "-"};
    char out[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        lex_all(bad[i], out, sizeof(out));
        if (strncmp(out, "ERR:", 4) != 0) {
            CPT_FAIL_AT("accepted invalid JSON %s -> %s", bad[i], out);
        }
    }
}

static void json_unescape_and_escape_round_trip(void)
{
    cp_buf b = CP_BUF_INIT;
    CPT_EQ_INT(cp_json_unescape(CP_SLICE("a\\\"b\\u00e9\\ud83d\\ude00\\n"), &b), CP_OK);
    CPT_EQ_STR(b.p, "a\"b\xc3\xa9\xf0\x9f\x98\x80\n");
    cp_buf out = CP_BUF_INIT;
    cp_json_put_str(&out, cp_buf_slice(&b));
    CPT_EQ_STR(out.p, "\"a\\\"b\xc3\xa9\xf0\x9f\x98\x80\\n\"");
    cp_buf_reset(&b);
    CPT_EQ_INT(cp_json_unescape(CP_SLICE("\\udc00"), &b), CP_EINVAL);
    cp_buf_free(&b);
    cp_buf_free(&out);
}

static void utf8_validation(void)
{
    CPT_CHECK(cp_utf8_valid(CP_SLICE("plain \xed\x95\x9c\xea\xb8\x80")));
    CPT_CHECK(!cp_utf8_valid(CP_SLICE("\xc0\xaf")));     /* overlong */
    CPT_CHECK(!cp_utf8_valid(CP_SLICE("\xed\xa0\x80"))); /* surrogate */
    CPT_CHECK(!cp_utf8_valid(CP_SLICE("\xe2\x82")));     /* truncated */
}

static void base64_round_trip_and_rejects(void)
{
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        cp_buf e = CP_BUF_INIT, d = CP_BUF_INIT;
        cp_base64_encode(cp_slice_str(plain[i]), &e);
        CPT_EQ_STR(e.len ? e.p : "", enc[i]);
        CPT_EQ_INT(cp_base64_decode(cp_slice_str(enc[i]), &d), CP_OK);
        CPT_EQ_MEM(d.p ? d.p : "", d.len, plain[i], strlen(plain[i]));
        cp_buf_free(&e);
        cp_buf_free(&d);
    }
    const char *bad[] = {"Zg=", "Z===", "Zm9v!A==", "Zg==Zg==", "Z=g="};
    for (int i = 0; i < 5; i++) {
        cp_buf d = CP_BUF_INIT;
        if (cp_base64_decode(cp_slice_str(bad[i]), &d) != CP_EINVAL) {
            CPT_FAIL_AT("accepted bad base64 %s", bad[i]);
        }
        cp_buf_free(&d);
    }
}

static void varint_and_reader_bounds(void)
{
    cp_buf b = CP_BUF_INIT;
    uint64_t vals[] = {0, 1, 127, 128, 300, 1ULL << 35, UINT64_MAX};
    for (int i = 0; i < 7; i++) {
        cp_buf_put_varint(&b, vals[i]);
    }
    cp_buf_put_bytes(&b, "xyz", 3);
    cp_reader r = cp_reader_of(cp_buf_slice(&b));
    for (int i = 0; i < 7; i++) {
        CPT_CHECK(cp_reader_varint(&r) == vals[i]);
    }
    cp_slice s = cp_reader_bytes(&r);
    CPT_EQ_MEM(s.p, s.len, "xyz", 3);
    CPT_CHECK(!r.failed);
    cp_reader_u8(&r);
    CPT_CHECK(r.failed);
    cp_buf_free(&b);
}

static void digests_match_known_vectors(void)
{
    unsigned char d[32];
    char hex[65];
    cp_md5("", 0, d);
    cp_hex(d, 16, hex);
    CPT_EQ_STR(hex, "d41d8cd98f00b204e9800998ecf8427e");
    cp_sha256("abc", 3, d);
    cp_hex(d, 32, hex);
    CPT_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* x-amz-crc32 examples from the wire reference. */
    CPT_EQ_INT(cp_crc32(0, "{\"TableNames\":[]}", 17), 1315925753u);
    CPT_EQ_INT(cp_crc32(0, "{}", 2), 2745614147u);
}

CPT_LIST = {
    {"json_lexer_accepts_valid", json_lexer_accepts_valid},
    {"json_lexer_rejects_invalid", json_lexer_rejects_invalid},
    {"json_unescape_and_escape_round_trip", json_unescape_and_escape_round_trip},
    {"utf8_validation", utf8_validation},
    {"base64_round_trip_and_rejects", base64_round_trip_and_rejects},
    {"varint_and_reader_bounds", varint_and_reader_bounds},
    {"digests_match_known_vectors", digests_match_known_vectors},
    {0},
};
