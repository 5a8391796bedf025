/* SPDX-License-Identifier: MIT */
/*
 * AWS Signature Version 4: parse what a client sent (Authorization header or presigned query),
 * rebuild the canonical request exactly as the client did, and verify it with a constant-time
 * compare; and sign our own outbound requests (S3 sink, Lambda, load generator) the same way.
 * Checked against the public SigV4 test suite (tests/data/sigv4/).
 *
 * Threads: every function is reentrant; nothing here keeps state.
 */
#ifndef CP_AWS_SIGV4_H
#define CP_AWS_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/request.h"

#define CP_SIGV4_ALGORITHM        "AWS4-HMAC-SHA256"
#define CP_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
/* SHA-256 of the empty string: the payload hash of a request without a body. */
#define CP_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Canonicalisation flags. CP_SIGV4_S3: S3 rules (the path is neither normalised nor
 * double-encoded). CP_SIGV4_PRESIGNED: X-Amz-Signature stays out of the canonical query. */
#define CP_SIGV4_S3        1u
#define CP_SIGV4_PRESIGNED 2u

/* What a request is signed over, transport-neutral. All slices are borrowed. */
typedef struct cp_sigv4_msg {
    cp_slice method;               /* "GET", "POST", ... */
    cp_slice path;                 /* raw path as on the wire (percent-encoded) */
    cp_slice query;                /* raw query without '?' (may be empty) */
    const cp_http_header *headers; /* any case; repeated names are joined with ',' */
    size_t nheaders;
    cp_slice payload_hash; /* 64 lower-case hex, or a literal such as UNSIGNED-PAYLOAD */
} cp_sigv4_msg;

/* The parsed authentication of one request. Slices borrow the request (or date_buf). */
typedef struct cp_sigv4_auth {
    int presigned;       /* came from X-Amz-* query parameters */
    cp_slice algorithm;  /* "AWS4-HMAC-SHA256" */
    cp_slice credential; /* the whole "AKID/date/region/service/aws4_request" */
    cp_slice access_key;
    cp_slice date; /* yyyymmdd of the credential scope */
    cp_slice region;
    cp_slice service;
    cp_slice terminator;     /* "aws4_request" */
    cp_slice scope;          /* "date/region/service/aws4_request" */
    cp_slice signed_headers; /* "host;x-amz-date", as sent */
    cp_slice signature;      /* hex as sent */
    cp_slice amz_date;       /* ISO 8601 basic "20150830T123600Z" */
    cp_slice security_token; /* X-Amz-Security-Token, empty when absent */
    int64_t expires_s;       /* presigned X-Amz-Expires; 0 otherwise */
    char date_buf[17];       /* amz_date converted from a Date header when X-Amz-Date is absent */
} cp_sigv4_auth;

/* Why a request failed authentication; the caller maps it to the service's exception
 * (JSON services: see aws/proto.c; S3: AccessDenied, SignatureDoesNotMatch, ...). */
typedef enum cp_sigv4_fail {
    CP_SIGV4_OK = 0,
    CP_SIGV4_MISSING,       /* no Authorization header and no X-Amz-Algorithm query parameter */
    CP_SIGV4_INCOMPLETE,    /* a required part is missing or malformed */
    CP_SIGV4_INVALID,       /* well-formed but inconsistent (scope, host unsigned, both forms) */
    CP_SIGV4_UNKNOWN_KEY,   /* access key not among the configured credentials */
    CP_SIGV4_MISMATCH,      /* the signature does not match */
    CP_SIGV4_SKEW,          /* X-Amz-Date too far from the server clock */
    CP_SIGV4_EXPIRED,       /* presigned URL past X-Amz-Expires */
    CP_SIGV4_HASH_MISMATCH, /* x-amz-content-sha256 disagrees with the body */
} cp_sigv4_fail;

typedef struct cp_sigv4_err {
    cp_sigv4_fail kind;
    char msg[2048]; /* AWS's wording; long enough for the expected canonical request */
} cp_sigv4_err;

typedef struct cp_sigv4_cred {
    const char *access_key;
    const char *secret_key;
} cp_sigv4_cred;

/* ------------------------------------------------------------------------------------------ */
/* Building blocks                                                                             */

/* Append the canonical request for m, signing the headers named in `signed_headers`
 * (';'-separated lower-case names). A signed header the message lacks canonicalises with an
 * empty value (the signature then fails, as at AWS). */
void cp_sigv4_canonical_request(const cp_sigv4_msg *m, cp_slice signed_headers, unsigned flags,
                                cp_buf *out);
/* The canonical URI / query parts alone (appended). */
void cp_sigv4_canonical_uri(cp_slice raw_path, unsigned flags, cp_buf *out);
void cp_sigv4_canonical_query(cp_slice raw_query, unsigned flags, cp_buf *out);
/* AWS URI encoding of bytes: unreserved A-Z a-z 0-9 - _ . ~ kept, '/' kept when keep_slash,
 * everything else %XX upper-case (appended). */
void cp_sigv4_uri_encode(cp_slice in, int keep_slash, cp_buf *out);

/* Append "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256(creq)>". */
void cp_sigv4_string_to_sign(cp_slice amz_date, cp_slice scope, cp_slice creq, cp_buf *out);
/* kSigning = HMAC chain over ("AWS4"+secret, date, region, service, "aws4_request"). */
void cp_sigv4_signing_key(cp_slice secret, cp_slice date, cp_slice region, cp_slice service,
                          unsigned char key[32]);
/* Lower-case hex HMAC-SHA256(key, sts) into hex[65]. */
void cp_sigv4_signature(const unsigned char key[32], cp_slice sts, char hex[65]);
/* Lower-case hex SHA-256 of data into hex[65]. */
void cp_sigv4_sha256_hex(cp_slice data, char hex[65]);
/* Constant-time equality of two byte strings (length is not secret). */
int cp_sigv4_ct_equal(cp_slice a, cp_slice b);
/* ISO 8601 basic "YYYYMMDDTHHMMSSZ" for epoch seconds into out[17]; and back (CP_EINVAL when
 * malformed). */
void cp_sigv4_amz_date(int64_t epoch_s, char out[17]);
int cp_sigv4_parse_amz_date(cp_slice s, int64_t *epoch_s);

/* ------------------------------------------------------------------------------------------ */
/* Server side                                                                                 */

/* Parse an Authorization header value. CP_OK, or CP_EINVAL with err->kind MISSING (not AWS4-*)
 * or INCOMPLETE. Does not look at X-Amz-Date (see cp_sigv4_parse). */
int cp_sigv4_parse_header(cp_slice authz, cp_sigv4_auth *out, cp_sigv4_err *err);

/* Find and parse the request's authentication (header or presigned query, including the date
 * and token), without checking the signature. CP_OK or CP_EINVAL with err filled.
 * `out` borrows the request: valid until the handler returns. */
int cp_sigv4_parse(const cp_http_req *req, cp_sigv4_auth *out, cp_sigv4_err *err);

typedef struct cp_sigv4_policy {
    const cp_sigv4_cred *creds; /* known keys; none: any well-formed signature is accepted */
    size_t ncreds;
    const char *service; /* required scope service (NULL = any), checked with creds */
    int64_t max_skew_s;  /* allowed |X-Amz-Date - now|; 0 = no clock check */
    unsigned flags;      /* CP_SIGV4_S3 for S3 requests */
    int64_t now_s;       /* server time to check against; 0 = the clock */
} cp_sigv4_policy;

/* Authenticate a request. Always parses (so malformed auth fails the same way in both modes);
 * with credentials configured also checks scope, clock, key and signature. On CP_OK *auth is
 * the parsed authentication (borrowing req). On CP_EINVAL err says why, in AWS's words. */
int cp_sigv4_verify(const cp_http_req *req, const cp_sigv4_policy *policy, cp_sigv4_auth *auth,
                    cp_sigv4_err *err);

/* ------------------------------------------------------------------------------------------ */
/* Client side                                                                                 */

typedef struct cp_sigv4_signer {
    cp_slice access_key;
    cp_slice secret_key;
    cp_slice region;
    cp_slice service;
    unsigned flags; /* CP_SIGV4_S3 for S3 */
} cp_sigv4_signer;

/* Append the Authorization header value for m, signed at amz_date ("YYYYMMDDTHHMMSSZ"). Every
 * header in m is signed except Authorization, so m must already carry Host, X-Amz-Date and
 * whatever else the request sends that should be covered (X-Amz-Content-Sha256,
 * X-Amz-Security-Token, X-Amz-Target...). */
void cp_sigv4_sign(const cp_sigv4_signer *s, const cp_sigv4_msg *m, cp_slice amz_date,
                   cp_buf *authz_out);

#endif
