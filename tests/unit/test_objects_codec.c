/* SPDX-License-Identifier: MIT */
/* The objects component's codecs: key <-> path mapping, the XML subset, aws-chunked bodies. */
#include "cpt.h"

#include "core/hash.h"
#include "objects/chunked.h"
#include "objects/keypath.h"
#include "objects/xml.h"

/* ------------------------------------------------------------------------------------------ */
/* keypath                                                                                     */

static void encode(const char *key, cp_buf *out)
{
    cp_buf_reset(out);
    cp_keypath_encode(cp_slice_str(key), out);
}

/* Every component must be a safe file name: non-empty, not "." or "..", <= 255 bytes. */
static void check_safe(cp_slice path)
{
    CPT_CHECK(path.len > 0);
    CPT_CHECK(path.p[0] != '/');
    const char *p = path.p, *end = path.p + path.len;
    for (;;) {
        const char *slash = memchr(p, '/', (size_t) (end - p));
        size_t n = slash ? (size_t) (slash - p) : (size_t) (end - p);
        CPT_CHECK(n > 0 && n <= 255);
        CPT_CHECK(!(n == 1 && p[0] == '.'));
        CPT_CHECK(!(n == 2 && p[0] == '.' && p[1] == '.'));
        CPT_CHECK(memchr(p, 0, n) == NULL);
        if (!slash) {
            break;
        }
        p = slash + 1;
    }
}

static void round_trip(cp_slice key)
{
    cp_buf path = CP_BUF_INIT, back = CP_BUF_INIT;
    cp_keypath_encode(key, &path);
    check_safe(cp_buf_slice(&path));
    CPT_EQ_INT(cp_keypath_decode(cp_buf_slice(&path), &back), CP_OK);
    CPT_EQ_MEM(back.p, back.len, key.p, key.len);
    cp_buf_free(&path);
    cp_buf_free(&back);
}

static void keypath_plain_keys_stay_plain(void)
{
    cp_buf b = CP_BUF_INIT;
    encode("Livestreams/LivestreamID=x/file-1.json", &b);
    CPT_EQ_STR(b.p, "Livestreams/LivestreamID=x/file-1.json");
    encode("a", &b);
    CPT_EQ_STR(b.p, "a");
    encode(".hidden/x", &b);
    CPT_EQ_STR(b.p, ".hidden/x");
    encode("caf\xc3\xa9/\xe2\x82\xac", &b);
    CPT_EQ_STR(b.p, "caf\xc3\xa9/\xe2\x82\xac");
    cp_buf_free(&b);
}

static void keypath_escapes_what_cannot_be_a_path(void)
{
    cp_buf b = CP_BUF_INIT;
    encode("a/", &b);
    CPT_EQ_STR(b.p, "a/%f");
    encode("../x", &b);
    CPT_EQ_STR(b.p, "%d../x");
    encode("../../etc/passwd", &b);
    CPT_EQ_STR(b.p, "%d../%d../etc/passwd");
    encode(".", &b);
    CPT_EQ_STR(b.p, "%f.");
    encode("/abs", &b);
    CPT_EQ_STR(b.p, "%d/abs");
    encode("a//b", &b);
    CPT_EQ_STR(b.p, "a/%d/b");
    encode("%20x", &b);
    CPT_EQ_STR(b.p, "%f%2520x");
    encode(".cp-tmp/x", &b);
    CPT_EQ_STR(b.p, "%d.cp-tmp/x");
    encode("x/.cp-tmp", &b); /* only the bucket root is reserved */
    CPT_EQ_STR(b.p, "x/.cp-tmp");
    encode("a/./b/..", &b);
    CPT_EQ_STR(b.p, "a/%d./b/%f..");
    cp_buf_free(&b);
}

static void keypath_round_trips(void)
{
    const char *keys[] = {"a",
                          "a/",
                          "/",
                          "//",
                          "../x",
                          "./.",
                          "%",
                          "%%",
                          "%f",
                          "%d/x",
                          "%c",
                          "a/%25/b",
                          ".cp-x",
                          ".cp-",
                          "..a",
                          "a..",
                          "x/../y",
                          "a b+c",
                          "\xf0\x9f\x98\x80/emoji",
                          "trailing/slash/",
                          "%2e%2e/x"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        round_trip(cp_slice_str(keys[i]));
    }
    /* Long segments: 1024 bytes of one segment, of '%' (triples when escaped), and UTF-8. */
    char big[1025];
    memset(big, 'x', 1024);
    big[1024] = 0;
    round_trip(cp_slice_of(big, 1024));
    memset(big, '%', 1024);
    round_trip(cp_slice_of(big, 1024));
    for (int i = 0; i + 3 <= 1023; i += 3) {
        memcpy(big + i, "\xe2\x82\xac", 3);
    }
    round_trip(cp_slice_of(big, 1023));
    memset(big, 'y', 1024);
    big[300] = '/';
    big[1023] = '/';
    round_trip(cp_slice_of(big, 1024));
}

static void keypath_long_segment_pieces_keep_utf8_whole(void)
{
    char big[1024];
    for (int i = 0; i < 1023; i += 3) {
        memcpy(big + i, "\xe2\x82\xac", 3);
    }
    cp_buf b = CP_BUF_INIT;
    cp_keypath_encode(cp_slice_of(big, 1023), &b);
    CPT_CHECK(strncmp(b.p, "%c", 2) == 0);
    /* Every component's payload starts on a UTF-8 lead byte. */
    for (const char *p = b.p; p; p = strchr(p, '/')) {
        if (*p == '/') {
            p++;
        }
        const char *payload = p[0] == '%' ? p + 2 : p;
        CPT_CHECK(((unsigned char) payload[0] & 0xC0) != 0x80);
    }
    cp_buf_free(&b);
}

static void keypath_forced_escape_and_decode_rejects(void)
{
    cp_buf b = CP_BUF_INIT, k = CP_BUF_INIT;
    cp_keypath_encode_segment(CP_SLICE("a"), 1, 1, 1, &b);
    CPT_EQ_STR(b.p, "%fa");
    cp_buf_reset(&b);
    cp_keypath_encode_segment(CP_SLICE("a"), 1, 0, 1, &b);
    CPT_EQ_STR(b.p, "%da");
    /* The plain and the forced forms decode to the same key. */
    CPT_EQ_INT(cp_keypath_decode(CP_SLICE("%da/b"), &k), CP_OK);
    CPT_EQ_STR(k.p, "a/b");
    const char *bad[] = {"",    "%",    "%x",  "%cabc", "a/..",  ".", "%fa/b",
                         "%da", "a//b", "%f%", "%f%2",  "%f%20", "/a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cp_buf_reset(&k);
        if (cp_keypath_decode(cp_slice_str(bad[i]), &k) != CP_EINVAL) {
            CPT_FAIL_AT("decoded invalid path '%s'", bad[i]);
        }
    }
    cp_buf_free(&b);
    cp_buf_free(&k);
}

static void keypath_check_limits(void)
{
    char big[1026];
    memset(big, 'k', sizeof(big));
    CPT_EQ_INT(cp_keypath_check(cp_slice_of(big, 1024), NULL), CP_OK);
    CPT_EQ_INT(cp_keypath_check(cp_slice_of(big, 1025), NULL), CP_ETOOBIG);
    CPT_EQ_INT(cp_keypath_check(cp_slice_of("", 0), NULL), CP_EINVAL);
    CPT_EQ_INT(cp_keypath_check(cp_slice_of("a\0b", 3), NULL), CP_EINVAL);
    CPT_EQ_INT(cp_keypath_check(CP_SLICE("\xff"), NULL), CP_EINVAL);
    CPT_EQ_INT(cp_keypath_check(CP_SLICE("\xc0\xaf"), NULL), CP_EINVAL);     /* overlong '/' */
    CPT_EQ_INT(cp_keypath_check(CP_SLICE("\xed\xa0\x80"), NULL), CP_EINVAL); /* surrogate */
    CPT_EQ_INT(cp_keypath_check(CP_SLICE("\xe2\x82"), NULL), CP_EINVAL);     /* truncated */
    CPT_EQ_INT(cp_keypath_check(CP_SLICE("\xf0\x9f\x98\x80"), NULL), CP_OK);
}

/* ------------------------------------------------------------------------------------------ */
/* xml                                                                                         */

static void xml_parses_complete_multipart_upload(void)
{
    const char *in = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                     "<!-- c --><Part><ETag>&quot;abc&quot;</ETag><PartNumber>1</PartNumber></Part>"
                     "<Part><PartNumber>2</PartNumber><ETag><![CDATA[\"d<e\"]]></ETag></Part>"
                     "</CompleteMultipartUpload>";
    cp_xml_doc d = CP_XML_DOC_INIT;
    cp_err err = {0};
    CPT_EQ_INT(cp_xml_parse(cp_slice_str(in), 0, &d, &err), CP_OK);
    CPT_CHECK(cp_slice_eq(cp_xml_name(&d, 0), CP_SLICE("CompleteMultipartUpload")));
    int p1 = cp_xml_child(&d, 0, "Part");
    CPT_CHECK(p1 > 0);
    cp_slice e1 = cp_xml_text(&d, cp_xml_child(&d, p1, "ETag"));
    CPT_EQ_MEM(e1.p, e1.len, "\"abc\"", 5);
    int p2 = cp_xml_next_same(&d, p1);
    CPT_CHECK(p2 > p1);
    cp_slice n2 = cp_xml_text(&d, cp_xml_child(&d, p2, "PartNumber"));
    CPT_EQ_MEM(n2.p, n2.len, "2", 1);
    cp_slice e2 = cp_xml_text(&d, cp_xml_child(&d, p2, "ETag"));
    CPT_EQ_MEM(e2.p, e2.len, "\"d<e\"", 5);
    CPT_EQ_INT(cp_xml_next_same(&d, p2), -1);
    CPT_EQ_INT(cp_xml_child(&d, 0, "Nope"), -1);
    cp_xml_doc_free(&d);
}

static void xml_entities_prefixes_and_mixed_text(void)
{
    cp_xml_doc d = CP_XML_DOC_INIT;
    CPT_EQ_INT(cp_xml_parse(CP_SLICE("<s3:Delete xmlns:s3='x'><s3:Object><Key>a&amp;b&#x20;"
                                     "&#233;&lt;</Key></s3:Object>tail<Quiet/>x</s3:Delete>"),
                            0, &d, NULL),
               CP_OK);
    int o = cp_xml_child(&d, 0, "Object");
    cp_slice k = cp_xml_text(&d, cp_xml_child(&d, o, "Key"));
    CPT_EQ_MEM(k.p, k.len, "a&b \xc3\xa9<", 7);
    cp_slice t = cp_xml_text(&d, 0);
    CPT_EQ_MEM(t.p, t.len, "tailx", 5);
    CPT_CHECK(cp_xml_child(&d, 0, "Quiet") > 0);
    cp_xml_doc_free(&d);
}

static void xml_rejects_malformed(void)
{
    const char *bad[] = {"",
                         "<a>",
                         "<a></b>",
                         "<a><b></a></b>",
                         "<a>x</a><b/>",
                         "text",
                         "<a>&unknown;</a>",
                         "<a>&#0;</a>",
                         "<a>&#xD800;</a>",
                         "<a b=c/>",
                         "<a b='1'c='2'/>",
                         "<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
                         "<a><!-- unterminated </a>",
                         "<a><![CDATA[x</a>",
                         "<1a/>",
                         "<a>&amp</a>",
                         "<a/>trailing"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cp_xml_doc d = CP_XML_DOC_INIT;
        cp_err err = {0};
        if (cp_xml_parse(cp_slice_str(bad[i]), 0, &d, &err) != CP_EINVAL) {
            CPT_FAIL_AT("accepted malformed XML: %s", bad[i]);
        }
        CPT_CHECK(strstr(err.msg, "XML") != NULL);
        cp_xml_doc_free(&d);
    }
}

static void xml_limits_depth_and_nodes(void)
{
    cp_buf in = CP_BUF_INIT;
    for (int i = 0; i < CP_XML_MAX_DEPTH + 1; i++) {
        cp_buf_puts(&in, "<a>");
    }
    for (int i = 0; i < CP_XML_MAX_DEPTH + 1; i++) {
        cp_buf_puts(&in, "</a>");
    }
    cp_xml_doc d = CP_XML_DOC_INIT;
    CPT_EQ_INT(cp_xml_parse(cp_buf_slice(&in), 0, &d, NULL), CP_EINVAL);
    CPT_EQ_INT(cp_xml_parse(CP_SLICE("<a><b/><b/><b/></a>"), 3, &d, NULL), CP_EINVAL);
    CPT_EQ_INT(cp_xml_parse(CP_SLICE("<a><b/><b/><b/></a>"), 4, &d, NULL), CP_OK);
    cp_xml_doc_free(&d);
    cp_buf_free(&in);
}

static void xml_escape(void)
{
    cp_buf b = CP_BUF_INIT;
    cp_xml_put_elem(&b, "Key", CP_SLICE("a<b>&\"'\r\x01z"));
    CPT_EQ_STR(b.p, "<Key>a&lt;b&gt;&amp;&quot;&apos;&#xD;&#x1;z</Key>");
    /* What we escape, we parse back. */
    cp_xml_doc d = CP_XML_DOC_INIT;
    CPT_EQ_INT(cp_xml_parse(cp_buf_slice(&b), 0, &d, NULL), CP_OK);
    cp_slice t = cp_xml_text(&d, 0);
    CPT_EQ_MEM(t.p, t.len, "a<b>&\"'\r\x01z", 10);
    cp_xml_doc_free(&d);
    cp_buf_free(&b);
}

/* ------------------------------------------------------------------------------------------ */
/* aws-chunked                                                                                 */

static int to_buf(void *ctx, const char *p, size_t len)
{
    cp_buf_append(ctx, p, len);
    return CP_OK;
}

static void chunked_decodes_signed_chunks(void)
{
    /* The shape of the AWS SigV4 streaming example (64 KiB + 1 KiB + final chunk). */
    cp_buf in = CP_BUF_INIT, want = CP_BUF_INIT, out = CP_BUF_INIT, tr = CP_BUF_INIT;
    const char *sig = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
    size_t sizes[] = {65536, 1024};
    for (size_t c = 0; c < 2; c++) {
        cp_buf_printf(&in, "%zx;chunk-signature=%s\r\n", sizes[c], sig);
        for (size_t i = 0; i < sizes[c]; i++) {
            char ch = (char) ('a' + (i * 7 + c) % 26);
            cp_buf_putc(&in, ch);
            cp_buf_putc(&want, ch);
        }
        cp_buf_puts(&in, "\r\n");
    }
    cp_buf_printf(&in, "0;chunk-signature=%s\r\n\r\n", sig);
    uint64_t n = 0;
    CPT_EQ_INT(cp_chunked_decode(cp_buf_slice(&in), to_buf, &out, &tr, &n, NULL), CP_OK);
    CPT_EQ_INT(n, 66560);
    CPT_EQ_MEM(out.p, out.len, want.p, want.len);
    CPT_EQ_INT(tr.len, 0);
    cp_buf_free(&in);
    cp_buf_free(&want);
    cp_buf_free(&out);
    cp_buf_free(&tr);
}

static void chunked_unsigned_with_trailer(void)
{
    cp_buf out = CP_BUF_INIT, tr = CP_BUF_INIT;
    const char *in = "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Amz-Checksum-Crc32 : NhCmhg==\r\n"
                     "x-amz-trailer-signature:abc\r\n\r\n";
    CPT_EQ_INT(cp_chunked_decode(cp_slice_str(in), to_buf, &out, &tr, NULL, NULL), CP_OK);
    CPT_EQ_STR(out.p, "hello world");
    cp_slice v = cp_chunked_field(cp_buf_slice(&tr), "x-amz-checksum-crc32");
    CPT_EQ_MEM(v.p, v.len, "NhCmhg==", 8);
    CPT_CHECK(cp_chunked_field(cp_buf_slice(&tr), "x-amz-trailer-signature").p == NULL);
    /* Final CRLF omitted, as some SDKs do. */
    cp_buf_reset(&out);
    CPT_EQ_INT(cp_chunked_decode(CP_SLICE("3\r\nabc\r\n0\r\nx-amz-checksum-sha256:x\r\n"), to_buf,
                                 &out, NULL, NULL, NULL),
               CP_OK);
    CPT_EQ_STR(out.p, "abc");
    cp_buf_free(&out);
    cp_buf_free(&tr);
}

static void chunked_rejects_bad_framing(void)
{
    const char *bad[] = {"",
                         "5\r\nhello\r\n",           /* no final chunk */
                         "5\r\nhell",                /* truncated */
                         "5\r\nhelloXX0\r\n\r\n",    /* no CRLF after data */
                         "z\r\nhello\r\n0\r\n\r\n",  /* bad size */
                         "5x\r\nhello\r\n0\r\n\r\n", /* junk after size */
                         "10000000000000000\r\n",    /* absurd size */
                         "0\r\n\r\nextra",           /* data after the end */
                         "0\r\nno-colon\r\n\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cp_buf out = CP_BUF_INIT;
        if (cp_chunked_decode(cp_slice_str(bad[i]), to_buf, &out, NULL, NULL, NULL) != CP_EINVAL) {
            CPT_FAIL_AT("accepted bad aws-chunked body #%zu", i);
        }
        cp_buf_free(&out);
    }
}

static int stop_sink(void *ctx, const char *p, size_t len)
{
    (void) ctx, (void) p, (void) len;
    return CP_ETOOBIG;
}

static void chunked_sink_error_stops(void)
{
    CPT_EQ_INT(
        cp_chunked_decode(CP_SLICE("1\r\na\r\n0\r\n\r\n"), stop_sink, NULL, NULL, NULL, NULL),
        CP_ETOOBIG);
}

/* ------------------------------------------------------------------------------------------ */
/* Properties over random inputs (deterministic seed)                                          */

static void keypath_random_round_trip(void)
{
    /* An alphabet rich in the characters the mapping treats specially. */
    static const char *const atoms[] = {"a",  ".",   "/", "%",    "\xc3\xa9",     "c", "f", "d",
                                        "..", "%25", "-", ".cp-", "\xe2\x82\xac", " "};
    unsigned seed = 12345;
    char key[1100];
    for (int iter = 0; iter < 5000; iter++) {
        size_t len = 0, target = 1 + rand_r(&seed) % (iter % 10 == 0 ? 1024 : 40);
        while (len < target) {
            const char *a = atoms[rand_r(&seed) % (sizeof(atoms) / sizeof(atoms[0]))];
            size_t n = strlen(a);
            if (len + n > 1024) {
                break;
            }
            memcpy(key + len, a, n);
            len += n;
        }
        if (len == 0) {
            continue;
        }
        CPT_EQ_INT(cp_keypath_check(cp_slice_of(key, len), NULL), CP_OK);
        round_trip(cp_slice_of(key, len));
    }
}

static int drop(void *ctx, const char *p, size_t len)
{
    (void) ctx, (void) p, (void) len;
    return CP_OK;
}

static void parsers_survive_mutations(void)
{
    const char *xml = "<?xml version=\"1.0\"?><CompleteMultipartUpload xmlns=\"x\"><Part>"
                      "<PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part><!-- c -->"
                      "<Part><![CDATA[<x>]]><PartNumber>2</PartNumber></Part>"
                      "</CompleteMultipartUpload>";
    const char *chunked = "5;chunk-signature=abc\r\nhello\r\n3\r\nabc\r\n0\r\n"
                          "x-amz-checksum-crc32:AAAAAA==\r\n\r\n";
    const char *docs[] = {xml, chunked};
    unsigned seed = 777;
    char buf[512];
    for (int iter = 0; iter < 20000; iter++) {
        const char *src = docs[iter % 2];
        size_t n = strlen(src);
        memcpy(buf, src, n);
        /* Flip, delete or truncate a few bytes. */
        int edits = 1 + rand_r(&seed) % 4;
        for (int e = 0; e < edits && n > 0; e++) {
            size_t at = rand_r(&seed) % n;
            switch (rand_r(&seed) % 3) {
            case 0:
                buf[at] = (char) (rand_r(&seed) & 0xFF);
                break;
            case 1:
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
                break;
            default:
                n = at;
            }
        }
        /* Exact-size heap copy so ASan sees any read past the end. */
        char *in = malloc(n ? n : 1);
        memcpy(in, buf, n);
        if (iter % 2 == 0) {
            cp_xml_doc d = CP_XML_DOC_INIT;
            if (cp_xml_parse(cp_slice_of(in, n), 0, &d, NULL) == CP_OK) {
                for (size_t i = 0; i < d.n; i++) {
                    cp_slice t = cp_xml_text(&d, (int) i);
                    CPT_CHECK(t.len == 0 || t.p != NULL);
                }
            }
            cp_xml_doc_free(&d);
        } else {
            cp_buf tr = CP_BUF_INIT;
            (void) cp_chunked_decode(cp_slice_of(in, n), drop, NULL, &tr, NULL, NULL);
            cp_buf_free(&tr);
        }
        free(in);
    }
}

CPT_LIST = {
    {"keypath_plain_keys_stay_plain", keypath_plain_keys_stay_plain},
    {"keypath_escapes_what_cannot_be_a_path", keypath_escapes_what_cannot_be_a_path},
    {"keypath_round_trips", keypath_round_trips},
    {"keypath_long_segment_pieces_keep_utf8_whole", keypath_long_segment_pieces_keep_utf8_whole},
    {"keypath_forced_escape_and_decode_rejects", keypath_forced_escape_and_decode_rejects},
    {"keypath_check_limits", keypath_check_limits},
    {"xml_parses_complete_multipart_upload", xml_parses_complete_multipart_upload},
    {"xml_entities_prefixes_and_mixed_text", xml_entities_prefixes_and_mixed_text},
    {"xml_rejects_malformed", xml_rejects_malformed},
    {"xml_limits_depth_and_nodes", xml_limits_depth_and_nodes},
    {"xml_escape", xml_escape},
    {"chunked_decodes_signed_chunks", chunked_decodes_signed_chunks},
    {"chunked_unsigned_with_trailer", chunked_unsigned_with_trailer},
    {"chunked_rejects_bad_framing", chunked_rejects_bad_framing},
    {"chunked_sink_error_stops", chunked_sink_error_stops},
    {"keypath_random_round_trip", keypath_random_round_trip},
    {"parsers_survive_mutations", parsers_survive_mutations},
    {0},
};
