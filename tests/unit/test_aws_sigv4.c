/* SPDX-License-Identifier: MIT */
/* SigV4: the public test-suite vectors (tests/data/sigv4), server verification, signing. */
#include "cpt.h"

#include <dirent.h>

#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/hash.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
/* 20150830T123600Z */
#define VECTOR_TIME_S 1440938160LL

static const cp_sigv4_cred g_creds[] = {{"AKIDOTHER", "other-secret"}, {"AKIDEXAMPLE", SECRET}};

static void data_dir(char *out, size_t cap)
{
    /* __FILE__ is tests/unit/test_aws_sigv4.c; the vectors live in tests/data/sigv4. */
    snprintf(out, cap, "%s", __FILE__);
    char *slash = strrchr(out, '/');
    CPT_CHECK(slash != NULL);
    *slash = 0;
    slash = strrchr(out, '/');
    CPT_CHECK(slash != NULL);
    snprintf(slash, cap - (size_t) (slash - out), "/data/sigv4");
}

/* Whole file into b (reset first); 0 when missing. */
static int slurp(const char *dir, const char *name, cp_buf *b)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    cp_buf_reset(b);
    if (!f) {
        return 0;
    }
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        cp_buf_append(b, tmp, n);
    }
    fclose(f);
    return 1;
}

/* A request parsed from the suite's text form; slices point into `raw`. */
typedef struct vreq {
    cp_buf raw;
    cp_http_header hdrs[32];
    cp_http_scratch scratch;
    cp_http_req req;
} vreq;

static void vreq_parse(vreq *v)
{
    char *p = v->raw.p, *end = v->raw.p + v->raw.len;
    char *eol = memchr(p, '\n', (size_t) (end - p));
    char *line_end = eol ? eol : end;
    char *sp1 = memchr(p, ' ', (size_t) (line_end - p));
    char *sp2 = line_end;
    while (sp2 > sp1 && sp2[-1] != ' ') {
        sp2--;
    }
    CPT_CHECK(sp1 && sp2 > sp1 + 1);
    memset(&v->req, 0, sizeof(v->req));
    v->req.method = cp_slice_of(p, (size_t) (sp1 - p));
    v->req.target = cp_slice_of(sp1 + 1, (size_t) (sp2 - 1 - (sp1 + 1)));
    const char *q = memchr(v->req.target.p, '?', v->req.target.len);
    v->req.path = q ? cp_slice_of(v->req.target.p, (size_t) (q - v->req.target.p)) : v->req.target;
    v->req.query =
        q ? cp_slice_of(q + 1, v->req.target.len - v->req.path.len - 1) : cp_slice_of("", 0);
    size_t n = 0;
    p = eol ? eol + 1 : end;
    while (p < end) {
        eol = memchr(p, '\n', (size_t) (end - p));
        line_end = eol ? eol : end;
        if (line_end == p) {
            p = eol ? eol + 1 : end; /* blank line: the body follows */
            break;
        }
        char *colon = memchr(p, ':', (size_t) (line_end - p));
        CPT_CHECK(colon != NULL && n < 32);
        v->hdrs[n++] = (cp_http_header){cp_slice_of(p, (size_t) (colon - p)),
                                        cp_slice_of(colon + 1, (size_t) (line_end - colon - 1))};
        p = eol ? eol + 1 : end;
    }
    v->req.headers = v->hdrs;
    v->req.nheaders = n;
    v->req.body = cp_slice_of(p, (size_t) (end - p));
    v->req.remote = "test";
    v->req.version = 11;
    v->scratch = CP_HTTP_SCRATCH_INIT;
    v->req.scratch = &v->scratch;
}

static void vreq_free(vreq *v)
{
    cp_buf_free(&v->raw);
    cp_http_scratch_free(&v->scratch);
}

/* Verification policy for the vectors: both keys known, checked at 10 s after signing. */
static cp_sigv4_policy policy(unsigned flags)
{
    cp_sigv4_policy pol = {g_creds, 2, "service", 900, flags, VECTOR_TIME_S + 10};
    return pol;
}

/* One header-signed vector: canonical request, string to sign, signature, our own signing, and
 * the server verification path (good and tampered). */
static void run_vector(const char *dir, const char *name)
{
    char cdir[1400];
    snprintf(cdir, sizeof(cdir), "%s/%s", dir, name);
    vreq v = {0};
    CPT_CHECK(slurp(cdir, "request.txt", &v.raw));
    vreq_parse(&v);
    cp_buf want = CP_BUF_INIT, got = CP_BUF_INIT, mode = CP_BUF_INIT, authz = CP_BUF_INIT;
    unsigned flags = slurp(cdir, "mode.txt", &mode) && strcmp(mode.p, "s3") == 0 ? CP_SIGV4_S3 : 0;
    CPT_CHECK(slurp(cdir, "authorization.txt", &authz));
    cp_sigv4_auth a;
    cp_sigv4_err err;
    if (cp_sigv4_parse_header(cp_buf_slice(&authz), &a, &err) != CP_OK) {
        CPT_FAIL_AT("%s: cannot parse its own authorization: %s", name, err.msg);
    }
    char body_hash[65];
    cp_sigv4_sha256_hex(v.req.body, body_hash);
    cp_sigv4_msg m = {v.req.method,  v.req.path,     v.req.query,
                      v.req.headers, v.req.nheaders, cp_slice_of(body_hash, 64)};

    cp_sigv4_canonical_request(&m, a.signed_headers, flags, &got);
    if (slurp(cdir, "canonical-request.txt", &want) && strcmp(want.p, got.p) != 0) {
        CPT_FAIL_AT("%s canonical request:\n%s\n--- want ---\n%s", name, got.p, want.p);
    }
    cp_buf sts = CP_BUF_INIT;
    cp_sigv4_string_to_sign(CP_SLICE("20150830T123600Z"), a.scope, cp_buf_slice(&got), &sts);
    if (slurp(cdir, "string-to-sign.txt", &want) && strcmp(want.p, sts.p) != 0) {
        CPT_FAIL_AT("%s string to sign:\n%s\n--- want ---\n%s", name, sts.p, want.p);
    }
    unsigned char key[32];
    char sig[65];
    cp_sigv4_signing_key(CP_SLICE(SECRET), a.date, a.region, a.service, key);
    cp_sigv4_signature(key, cp_buf_slice(&sts), sig);
    if (!cp_slice_eq(cp_slice_of(sig, 64), a.signature)) {
        CPT_FAIL_AT("%s signature %s, want %.*s", name, sig, (int) a.signature.len, a.signature.p);
    }

    /* Signing: with exactly the signed headers, our signer reproduces the header value. */
    cp_http_header only[32];
    size_t n = 0;
    for (size_t i = 0; i < v.req.nheaders; i++) {
        char lname[128];
        size_t l = v.req.headers[i].name.len < 127 ? v.req.headers[i].name.len : 127;
        for (size_t j = 0; j < l; j++) {
            char c = v.req.headers[i].name.p[j];
            lname[j] = (char) (c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        lname[l] = 0;
        char needle[130];
        snprintf(needle, sizeof(needle), ";%s;", lname);
        char hay[600];
        snprintf(hay, sizeof(hay), ";%.*s;", (int) a.signed_headers.len, a.signed_headers.p);
        if (strstr(hay, needle)) {
            only[n++] = v.req.headers[i];
        }
    }
    cp_sigv4_msg ms = m;
    ms.headers = only;
    ms.nheaders = n;
    cp_sigv4_signer signer = {CP_SLICE("AKIDEXAMPLE"), CP_SLICE(SECRET), CP_SLICE("us-east-1"),
                              CP_SLICE("service"), flags};
    cp_buf signed_authz = CP_BUF_INIT;
    cp_sigv4_sign(&signer, &ms, CP_SLICE("20150830T123600Z"), &signed_authz);
    if (strcmp(signed_authz.p, authz.p) != 0) {
        CPT_FAIL_AT("%s signer:\n%s\n--- want ---\n%s", name, signed_authz.p, authz.p);
    }

    /* Server path: the request with its Authorization header verifies... */
    v.hdrs[v.req.nheaders] = (cp_http_header){CP_SLICE("Authorization"), cp_buf_slice(&authz)};
    v.req.nheaders++;
    cp_sigv4_policy pol = policy(flags);
    if (cp_sigv4_verify(&v.req, &pol, &a, &err) != CP_OK) {
        CPT_FAIL_AT("%s: verify failed: %s", name, err.msg);
    }
    /* ...and a one-character change of the signature does not. */
    char *last = authz.p + authz.len - 1;
    *last = *last == '0' ? '1' : '0';
    CPT_EQ_INT(cp_sigv4_verify(&v.req, &pol, &a, &err), CP_EINVAL);
    CPT_EQ_INT(err.kind, CP_SIGV4_MISMATCH);
    CPT_CHECK(strstr(err.msg, got.p) != NULL); /* AWS shows the expected canonical request */

    cp_buf_free(&want);
    cp_buf_free(&got);
    cp_buf_free(&mode);
    cp_buf_free(&authz);
    cp_buf_free(&sts);
    cp_buf_free(&signed_authz);
    vreq_free(&v);
}

static void run_presigned(const char *dir, const char *name)
{
    char cdir[1400];
    snprintf(cdir, sizeof(cdir), "%s/%s", dir, name);
    vreq v = {0};
    CPT_CHECK(slurp(cdir, "presigned-request.txt", &v.raw));
    vreq_parse(&v);
    cp_buf mode = CP_BUF_INIT;
    unsigned flags = slurp(cdir, "mode.txt", &mode) && strcmp(mode.p, "s3") == 0 ? CP_SIGV4_S3 : 0;
    cp_sigv4_policy pol = policy(flags);
    cp_sigv4_auth a;
    cp_sigv4_err err;
    /* These vectors sign the empty-body hash even in S3 mode, so send it explicitly. */
    v.hdrs[v.req.nheaders++] =
        (cp_http_header){CP_SLICE("X-Amz-Content-Sha256"), CP_SLICE(CP_SIGV4_EMPTY_SHA256)};
    if (cp_sigv4_verify(&v.req, &pol, &a, &err) != CP_OK) {
        CPT_FAIL_AT("%s: presigned verify failed: %s", name, err.msg);
    }
    CPT_CHECK(a.presigned);
    CPT_EQ_INT(a.expires_s, 3600);
    /* Past X-Amz-Expires the URL is refused. */
    pol.now_s = VECTOR_TIME_S + 3601;
    CPT_EQ_INT(cp_sigv4_verify(&v.req, &pol, &a, &err), CP_EINVAL);
    CPT_EQ_INT(err.kind, CP_SIGV4_EXPIRED);
    cp_buf_free(&mode);
    vreq_free(&v);
}

static void test_suite_vectors(void)
{
    char dir[1024];
    data_dir(dir, sizeof(dir));
    DIR *d = opendir(dir);
    if (!d) {
        CPT_FAIL_AT("no vectors at %s", dir);
    }
    int header_cases = 0, presigned_cases = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strchr(e->d_name, '.')) {
            continue; /* ".", "..", README.md */
        }
        char probe[1400];
        snprintf(probe, sizeof(probe), "%s/%s/presigned-request.txt", dir, e->d_name);
        FILE *f = fopen(probe, "r");
        if (f) {
            fclose(f);
            run_presigned(dir, e->d_name);
            presigned_cases++;
        } else {
            run_vector(dir, e->d_name);
            header_cases++;
        }
    }
    closedir(d);
    CPT_CHECK(header_cases >= 30);
    CPT_CHECK(presigned_cases >= 2);
}

/* ------------------------------------------------------------------------------------------ */
/* Server-side failure modes                                                                   */

typedef struct signed_req {
    cp_http_header hdrs[8];
    cp_buf authz;
    cp_http_scratch scratch;
    cp_http_req req;
} signed_req;

/* A DynamoDB-like POST signed by AKIDEXAMPLE at `amz_date` for `service`. */
static void make_signed(signed_req *s, const char *amz_date, const char *service, const char *body,
                        const char *content_sha)
{
    memset(s, 0, sizeof(*s));
    size_t n = 0;
    s->hdrs[n++] = (cp_http_header){CP_SLICE("Host"), CP_SLICE("127.0.0.1:4566")};
    s->hdrs[n++] = (cp_http_header){CP_SLICE("X-Amz-Date"), cp_slice_str(amz_date)};
    s->hdrs[n++] =
        (cp_http_header){CP_SLICE("X-Amz-Target"), CP_SLICE("DynamoDB_20120810.ListTables")};
    s->hdrs[n++] =
        (cp_http_header){CP_SLICE("Content-Type"), CP_SLICE("application/x-amz-json-1.0")};
    if (content_sha) {
        s->hdrs[n++] =
            (cp_http_header){CP_SLICE("X-Amz-Content-Sha256"), cp_slice_str(content_sha)};
    }
    char hash[65];
    cp_sigv4_sha256_hex(cp_slice_str(body), hash);
    cp_sigv4_msg m = {CP_SLICE("POST"),
                      CP_SLICE("/"),
                      CP_SLICE(""),
                      s->hdrs,
                      n,
                      content_sha ? cp_slice_str(content_sha) : cp_slice_of(hash, 64)};
    cp_sigv4_signer signer = {CP_SLICE("AKIDEXAMPLE"), CP_SLICE(SECRET), CP_SLICE("us-east-1"),
                              cp_slice_str(service), 0};
    s->authz = CP_BUF_INIT;
    cp_sigv4_sign(&signer, &m, cp_slice_str(amz_date), &s->authz);
    s->hdrs[n++] = (cp_http_header){CP_SLICE("Authorization"), cp_buf_slice(&s->authz)};
    s->scratch = CP_HTTP_SCRATCH_INIT;
    s->req = (cp_http_req){.method = CP_SLICE("POST"),
                           .target = CP_SLICE("/"),
                           .path = CP_SLICE("/"),
                           .query = CP_SLICE(""),
                           .headers = s->hdrs,
                           .nheaders = n,
                           .body = cp_slice_str(body),
                           .scratch = &s->scratch};
}

static void signed_free(signed_req *s)
{
    cp_buf_free(&s->authz);
    cp_http_scratch_free(&s->scratch);
}

static int verify_kind(const cp_http_req *req, const cp_sigv4_policy *pol, cp_sigv4_err *err)
{
    cp_sigv4_auth a;
    int rc = cp_sigv4_verify(req, pol, &a, err);
    return rc == CP_OK ? CP_SIGV4_OK : (int) err->kind;
}

static void verify_outcomes(void)
{
    cp_sigv4_policy pol = {g_creds, 2, "dynamodb", 900, 0, VECTOR_TIME_S};
    cp_sigv4_err err;
    signed_req s;
    make_signed(&s, "20150830T123600Z", "dynamodb", "{}", NULL);
    CPT_EQ_INT(verify_kind(&s.req, &pol, &err), CP_SIGV4_OK);

    /* The body is covered: a different body fails. */
    s.req.body = CP_SLICE("{\"x\":1}");
    CPT_EQ_INT(verify_kind(&s.req, &pol, &err), CP_SIGV4_MISMATCH);
    CPT_CHECK(strncmp(err.msg, "The request signature we calculated does not match", 50) == 0);
    s.req.body = CP_SLICE("{}");

    /* Wrong service in the scope. */
    pol.service = "kinesis";
    CPT_EQ_INT(verify_kind(&s.req, &pol, &err), CP_SIGV4_INVALID);
    CPT_EQ_STR(err.msg, "Credential should be scoped to correct service: 'kinesis'. ");
    pol.service = "dynamodb";

    /* Unknown key. */
    cp_sigv4_policy only_other = {g_creds, 1, "dynamodb", 900, 0, VECTOR_TIME_S};
    CPT_EQ_INT(verify_kind(&s.req, &only_other, &err), CP_SIGV4_UNKNOWN_KEY);
    CPT_EQ_STR(err.msg, "The security token included in the request is invalid.");

    /* Clock skew both ways, with AWS's wording. */
    pol.now_s = VECTOR_TIME_S + 20 * 60;
    CPT_EQ_INT(verify_kind(&s.req, &pol, &err), CP_SIGV4_SKEW);
    CPT_EQ_STR(err.msg, "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z "
                        "(20150830T125600Z - 15 min.)");
    pol.now_s = VECTOR_TIME_S - 20 * 60;
    CPT_EQ_INT(verify_kind(&s.req, &pol, &err), CP_SIGV4_SKEW);
    CPT_EQ_STR(err.msg, "Signature not yet current: 20150830T123600Z is still later than "
                        "20150830T123100Z (20150830T121600Z + 15 min.)");
    /* Within the window is fine. */
    pol.now_s = VECTOR_TIME_S + 14 * 60;
    CPT_EQ_INT(verify_kind(&s.req, &pol, &err), CP_SIGV4_OK);

    /* Without credentials any well-formed signature passes, even a wrong one... */
    cp_sigv4_policy any = {NULL, 0, "dynamodb", 900, 0, 0};
    s.req.body = CP_SLICE("tampered");
    CPT_EQ_INT(verify_kind(&s.req, &any, &err), CP_SIGV4_OK);
    signed_free(&s);

    /* ...but malformed ones still fail the same way. */
    cp_http_header h[3] = {{CP_SLICE("Host"), CP_SLICE("x")},
                           {CP_SLICE("X-Amz-Date"), CP_SLICE("20150830T123600Z")},
                           {CP_SLICE("Authorization"),
                            CP_SLICE("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
                                     "dynamodb/aws4_request, SignedHeaders=host;x-amz-date")}};
    cp_http_scratch sc = CP_HTTP_SCRATCH_INIT;
    cp_http_req req = {.method = CP_SLICE("POST"),
                       .path = CP_SLICE("/"),
                       .query = CP_SLICE(""),
                       .headers = h,
                       .nheaders = 3,
                       .scratch = &sc};
    CPT_EQ_INT(verify_kind(&req, &any, &err), CP_SIGV4_INCOMPLETE);
    CPT_EQ_STR(err.msg, "Authorization header requires 'Signature' parameter. Authorization="
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/dynamodb/"
                        "aws4_request, SignedHeaders=host;x-amz-date");
    /* Missing date is reported too. */
    h[1].name = CP_SLICE("X-Other");
    CPT_EQ_INT(verify_kind(&req, &any, &err), CP_SIGV4_INCOMPLETE);
    CPT_CHECK(strstr(err.msg, "Authorization header requires 'Signature' parameter. "
                              "Authorization header requires existence of either a 'X-Amz-Date' "
                              "or a 'Date' header. Authorization=AWS4") == err.msg);
    /* Not AWS4 at all, or no header: missing token. */
    h[2].value = CP_SLICE("Basic dXNlcjpwYXNz");
    CPT_EQ_INT(verify_kind(&req, &any, &err), CP_SIGV4_MISSING);
    req.nheaders = 2;
    CPT_EQ_INT(verify_kind(&req, &any, &err), CP_SIGV4_MISSING);
    CPT_EQ_STR(err.msg, "Request is missing Authentication Token");
    /* Another algorithm. */
    req.nheaders = 3;
    h[2].value = CP_SLICE("AWS4-ECDSA-P256-SHA256 Credential=a/b/c/d/aws4_request, "
                          "SignedHeaders=host, Signature=00");
    CPT_EQ_INT(verify_kind(&req, &any, &err), CP_SIGV4_INCOMPLETE);
    /* Both header and query authentication. */
    h[2].value = CP_SLICE("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/dynamodb/"
                          "aws4_request, SignedHeaders=host, Signature=00");
    req.query = CP_SLICE("X-Amz-Algorithm=AWS4-HMAC-SHA256");
    CPT_EQ_INT(verify_kind(&req, &any, &err), CP_SIGV4_INVALID);
    /* Presigned with parts missing. */
    req.nheaders = 2;
    CPT_EQ_INT(verify_kind(&req, &any, &err), CP_SIGV4_INCOMPLETE);
    CPT_CHECK(strstr(err.msg, "AWS query-string parameters must include 'X-Amz-Credential'. ") !=
              NULL);
    /* Host must be signed (checked with credentials). */
    req.query = CP_SLICE("");
    req.nheaders = 3;
    h[1].name = CP_SLICE("X-Amz-Date");
    h[2].value = CP_SLICE("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/dynamodb/"
                          "aws4_request, SignedHeaders=x-amz-date, Signature=00");
    CPT_EQ_INT(verify_kind(&req, &pol, &err), CP_SIGV4_INVALID);
    CPT_EQ_STR(err.msg, "'Host' must be a 'SignedHeader' in the AWS Authorization.");
    /* Scope date must match X-Amz-Date. */
    h[2].value = CP_SLICE("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/dynamodb/"
                          "aws4_request, SignedHeaders=host;x-amz-date, Signature=00");
    CPT_EQ_INT(verify_kind(&req, &pol, &err), CP_SIGV4_INVALID);
    CPT_CHECK(strstr(err.msg, "'20150831' != '20150830'") != NULL);
    cp_http_scratch_free(&sc);
}

/* Over HTTP/2 the AWS JS v3 SDK signs ":authority" instead of "host" (observed on
 * @aws-sdk/client-kinesis 3.x): SignedHeaders=:authority;amz-sdk-invocation-id;... */
static void h2_authority_signed_instead_of_host(void)
{
    cp_http_header hs[5] = {{CP_SLICE(":authority"), CP_SLICE("127.0.0.1:4566")},
                            {CP_SLICE("content-type"), CP_SLICE("application/x-amz-json-1.1")},
                            {CP_SLICE("x-amz-date"), CP_SLICE("20150830T123600Z")},
                            {CP_SLICE("x-amz-target"), CP_SLICE("Kinesis_20131202.ListStreams")}};
    char hash[65];
    cp_sigv4_sha256_hex(CP_SLICE("{}"), hash);
    cp_sigv4_msg m = {CP_SLICE("POST"), CP_SLICE("/"), CP_SLICE(""), hs, 4, cp_slice_of(hash, 64)};
    cp_sigv4_signer signer = {CP_SLICE("AKIDEXAMPLE"), CP_SLICE(SECRET), CP_SLICE("us-east-1"),
                              CP_SLICE("kinesis"), 0};
    cp_buf authz = CP_BUF_INIT;
    cp_sigv4_sign(&signer, &m, CP_SLICE("20150830T123600Z"), &authz);
    CPT_CHECK(strstr(authz.p, "SignedHeaders=:authority;content-type;x-amz-date;x-amz-target,"));
    hs[4] = (cp_http_header){CP_SLICE("authorization"), cp_buf_slice(&authz)};
    cp_http_scratch sc = CP_HTTP_SCRATCH_INIT;
    cp_http_req req = {.method = CP_SLICE("POST"),
                       .path = CP_SLICE("/"),
                       .query = CP_SLICE(""),
                       .headers = hs,
                       .nheaders = 5,
                       .body = CP_SLICE("{}"),
                       .scratch = &sc};
    cp_sigv4_policy pol = {g_creds, 2, "kinesis", 300, 0, VECTOR_TIME_S};
    cp_sigv4_err err;
    CPT_EQ_INT(verify_kind(&req, &pol, &err), CP_SIGV4_OK);
    req.body = CP_SLICE("{ }");
    CPT_EQ_INT(verify_kind(&req, &pol, &err), CP_SIGV4_MISMATCH);
    cp_http_scratch_free(&sc);
    cp_buf_free(&authz);
}

static void payload_hash_header(void)
{
    cp_sigv4_policy pol = {g_creds, 2, NULL, 900, CP_SIGV4_S3, VECTOR_TIME_S};
    cp_sigv4_err err;
    signed_req s;
    /* UNSIGNED-PAYLOAD is signed literally: any body passes. */
    make_signed(&s, "20150830T123600Z", "s3", "anything", CP_SIGV4_UNSIGNED_PAYLOAD);
    CPT_EQ_INT(verify_kind(&s.req, &pol, &err), CP_SIGV4_OK);
    signed_free(&s);
    /* A hex hash must match the body. */
    char h[65];
    cp_sigv4_sha256_hex(CP_SLICE("body"), h);
    make_signed(&s, "20150830T123600Z", "s3", "body", h);
    CPT_EQ_INT(verify_kind(&s.req, &pol, &err), CP_SIGV4_OK);
    s.req.body = CP_SLICE("b0dy");
    CPT_EQ_INT(verify_kind(&s.req, &pol, &err), CP_SIGV4_HASH_MISMATCH);
    signed_free(&s);
}

static void canonical_parts(void)
{
    cp_buf b = CP_BUF_INIT;
    /* Non-S3: double encoding of an already-encoded path, and normalisation. */
    cp_sigv4_canonical_uri(CP_SLICE("/a%20b/./c/../d"), 0, &b);
    CPT_EQ_STR(b.p, "/a%2520b/d");
    cp_buf_reset(&b);
    /* S3: once-encoded as sent, no normalisation; lower-case escapes and raw reserved bytes
     * come out in canonical form. */
    cp_sigv4_canonical_uri(CP_SLICE("/bucket/a%2fb/./k%e1(x)"), CP_SIGV4_S3, &b);
    CPT_EQ_STR(b.p, "/bucket/a/b/./k%E1%28x%29");
    cp_buf_reset(&b);
    cp_sigv4_canonical_uri(CP_SLICE(""), 0, &b);
    CPT_EQ_STR(b.p, "/");
    cp_buf_reset(&b);
    /* Query: sorted after encoding, valueless keys get '=', '+' is a space, the presigned
     * signature is left out. */
    cp_sigv4_canonical_query(CP_SLICE("b=2&a=x+y&uploads&X-Amz-Signature=ff&a=%2F"),
                             CP_SIGV4_PRESIGNED, &b);
    CPT_EQ_STR(b.p, "a=%2F&a=x%20y&b=2&uploads=");
    cp_buf_reset(&b);
    cp_sigv4_canonical_query(CP_SLICE("&&list-type=2&prefix=a%2Fb&"), 0, &b);
    CPT_EQ_STR(b.p, "list-type=2&prefix=a%2Fb");
    cp_buf_free(&b);

    char d[17];
    cp_sigv4_amz_date(VECTOR_TIME_S, d);
    CPT_EQ_STR(d, "20150830T123600Z");
    int64_t t = 0;
    CPT_EQ_INT(cp_sigv4_parse_amz_date(CP_SLICE("20150830T123600Z"), &t), CP_OK);
    CPT_EQ_INT(t, VECTOR_TIME_S);
    CPT_EQ_INT(cp_sigv4_parse_amz_date(CP_SLICE("2015-08-30T12:36:00Z"), &t), CP_EINVAL);
    CPT_CHECK(cp_sigv4_ct_equal(CP_SLICE("abc"), CP_SLICE("abc")));
    CPT_CHECK(!cp_sigv4_ct_equal(CP_SLICE("abc"), CP_SLICE("abd")));
    CPT_CHECK(!cp_sigv4_ct_equal(CP_SLICE("abc"), CP_SLICE("ab")));

    /* The signing key of spec section 2.8. */
    unsigned char key[32];
    char hex[65];
    cp_sigv4_signing_key(CP_SLICE(SECRET), CP_SLICE("20150830"), CP_SLICE("us-east-1"),
                         CP_SLICE("service"), key);
    cp_hex(key, 32, hex);
    CPT_EQ_STR(hex, "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75");
}

CPT_LIST = {
    {"test_suite_vectors", test_suite_vectors},
    {"verify_outcomes", verify_outcomes},
    {"payload_hash_header", payload_hash_header},
    {"h2_authority_signed_instead_of_host", h2_authority_signed_instead_of_host},
    {"canonical_parts", canonical_parts},
    {0},
};
