/* SPDX-License-Identifier: MIT */
/* X-Amz-Target dispatch for the AWS JSON protocol (see proto.h). */
#include "aws/proto.h"

#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"

typedef struct svc_entry {
    cp_aws_service desc; /* copy of the built-in descriptor, with overrides */
    char *prefix, *json_version, *signing_name;
    cp_aws_op *ops; /* sorted by name for binary search */
    size_t nops;
    void *ctx;
} svc_entry;

struct cp_aws_router {
    cp_sigv4_cred *creds;
    size_t ncreds;
    char *default_region;
    svc_entry *svcs;
    size_t nsvcs;
};

cp_aws_router *cp_aws_router_new(const cp_aws_router_cfg *cfg)
{
    cp_aws_router *r = cp_calloc(1, sizeof(*r));
    if (cfg && cfg->ncreds) {
        r->creds = cp_calloc(cfg->ncreds, sizeof(*r->creds));
        for (size_t i = 0; i < cfg->ncreds; i++) {
            r->creds[i].access_key = cp_strdup(cfg->creds[i].access_key);
            r->creds[i].secret_key = cp_strdup(cfg->creds[i].secret_key);
        }
        r->ncreds = cfg->ncreds;
    }
    r->default_region = cp_strdup(cfg && cfg->default_region ? cfg->default_region : "us-east-1");
    return r;
}

void cp_aws_router_free(cp_aws_router *r)
{
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->ncreds; i++) {
        cp_free((char *) r->creds[i].access_key);
        cp_free((char *) r->creds[i].secret_key);
    }
    cp_free(r->creds);
    for (size_t i = 0; i < r->nsvcs; i++) {
        cp_free(r->svcs[i].prefix);
        cp_free(r->svcs[i].json_version);
        cp_free(r->svcs[i].signing_name);
        cp_free(r->svcs[i].ops);
    }
    cp_free(r->svcs);
    cp_free(r->default_region);
    cp_free(r);
}

static int op_cmp(const void *a, const void *b)
{
    return strcmp(((const cp_aws_op *) a)->name, ((const cp_aws_op *) b)->name);
}

int cp_aws_register_service(cp_aws_router *r, const char *prefix, const char *json_version,
                            const char *signing_name, const cp_aws_op *ops, void *ctx)
{
    if (cp_aws_router_service(r, prefix)) {
        return CP_EEXIST;
    }
    /* Descriptors hold pointers into entries: grow by reallocating only before serving. */
    r->svcs = cp_realloc(r->svcs, (r->nsvcs + 1) * sizeof(*r->svcs));
    svc_entry *e = &r->svcs[r->nsvcs];
    memset(e, 0, sizeof(*e));
    const cp_aws_service *builtin = cp_aws_service_builtin(cp_slice_str(prefix));
    if (builtin) {
        e->desc = *builtin;
    } else {
        e->desc = cp_aws_kinesis; /* bare style, JSON 1.1, 5 min skew */
        e->desc.crc32 = 0;
    }
    e->prefix = cp_strdup(prefix);
    e->json_version = cp_strdup(json_version ? json_version : e->desc.json_version);
    e->signing_name = cp_strdup(signing_name ? signing_name : e->desc.signing_name);
    e->desc.prefix = e->prefix;
    e->desc.json_version = e->json_version;
    e->desc.signing_name = e->signing_name;
    for (const cp_aws_op *o = ops; o && o->name; o++) {
        e->nops++;
    }
    e->ops = cp_calloc(e->nops ? e->nops : 1, sizeof(*e->ops));
    memcpy(e->ops, ops, e->nops * sizeof(*e->ops));
    qsort(e->ops, e->nops, sizeof(*e->ops), op_cmp);
    e->ctx = ctx;
    r->nsvcs++;
    /* Entries moved: re-point every descriptor at its own strings. */
    for (size_t i = 0; i < r->nsvcs; i++) {
        r->svcs[i].desc.prefix = r->svcs[i].prefix;
        r->svcs[i].desc.json_version = r->svcs[i].json_version;
        r->svcs[i].desc.signing_name = r->svcs[i].signing_name;
    }
    return CP_OK;
}

static svc_entry *find_svc(const cp_aws_router *r, cp_slice prefix)
{
    for (size_t i = 0; i < r->nsvcs; i++) {
        if (cp_slice_eq(prefix, cp_slice_str(r->svcs[i].prefix))) {
            return &r->svcs[i];
        }
    }
    return NULL;
}

const cp_aws_service *cp_aws_router_service(const cp_aws_router *r, const char *prefix)
{
    svc_entry *e = find_svc(r, cp_slice_str(prefix));
    return e ? &e->desc : NULL;
}

static const cp_aws_op *find_op(const svc_entry *e, cp_slice name)
{
    size_t lo = 0, hi = e->nops;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *n = e->ops[mid].name;
        size_t nl = strlen(n);
        int c = memcmp(n, name.p, nl < name.len ? nl : name.len);
        if (c == 0) {
            c = (nl > name.len) - (nl < name.len);
        }
        if (c == 0) {
            return &e->ops[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

const char *cp_aws_sigv4_exception(cp_sigv4_fail kind)
{
    switch (kind) {
    case CP_SIGV4_MISSING:
        return "MissingAuthenticationTokenException";
    case CP_SIGV4_INCOMPLETE:
        return "IncompleteSignatureException";
    case CP_SIGV4_UNKNOWN_KEY:
        return "UnrecognizedClientException";
    case CP_SIGV4_OK: /* fallthrough: not an error, but never leave the caller without a name */
    case CP_SIGV4_INVALID:
    case CP_SIGV4_MISMATCH:
    case CP_SIGV4_SKEW:
    case CP_SIGV4_EXPIRED:
    case CP_SIGV4_HASH_MISMATCH:
        break;
    }
    return "InvalidSignatureException";
}

int cp_aws_authenticate(const cp_aws_router *r, const cp_http_req *req, const char *service,
                        int64_t max_skew_s, unsigned flags, cp_sigv4_auth *auth, cp_sigv4_err *err)
{
    cp_sigv4_policy pol = {r->creds, r->ncreds, service, max_skew_s, flags, 0};
    return cp_sigv4_verify(req, &pol, auth, err);
}

/* For errors before the service is known: guess the family from the credential scope so a
 * Kinesis client with a typo still gets a Kinesis-shaped answer. */
static const cp_aws_service *guess_service(const cp_http_req *req)
{
    cp_sigv4_auth a;
    cp_slice authz = cp_http_req_header(req, "Authorization");
    if (authz.p && cp_sigv4_parse_header(authz, &a, NULL) == CP_OK) {
        if (cp_slice_eq(a.service, CP_SLICE("kinesis"))) {
            return &cp_aws_kinesis;
        }
        if (cp_slice_eq(a.service, CP_SLICE("firehose"))) {
            return &cp_aws_firehose;
        }
    }
    return &cp_aws_dynamodb;
}

/* A complete JSON value and nothing else. Request bodies of every operation are objects. */
static int valid_json_object(cp_slice body)
{
    cp_json_lexer lx;
    cp_json_tok t;
    cp_json_lexer_init(&lx, body);
    if (cp_json_next(&lx, &t) < 0 || t.type != CP_JSON_OBJ_BEGIN) {
        return 0;
    }
    if (cp_json_skip(&lx, &t) < 0) {
        return 0;
    }
    return cp_json_next(&lx, &t) == CP_OK && t.type == CP_JSON_END;
}

static int only_whitespace(cp_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            return 0;
        }
    }
    return 1;
}

/* The dispatcher's own error replies are complete answers for the HTTP layer. */
static int replied(int rc)
{
    (void) rc;
    return CP_OK;
}

int cp_aws_dispatch(void *router, const cp_http_req *req, cp_http_resp *resp)
{
    cp_aws_router *r = router;
    cp_slice target = cp_http_req_header(req, "X-Amz-Target");
    const char *dot = target.p ? memchr(target.p, '.', target.len) : NULL;
    svc_entry *e = dot ? find_svc(r, cp_slice_of(target.p, (size_t) (dot - target.p))) : NULL;
    if (!e) {
        /* AWS sends no message for an unknown target (dynalite/kinesalite agree). */
        return replied(
            cp_aws_reply_error(resp, guess_service(req), "UnknownOperationException", NULL));
    }
    const cp_aws_service *svc = &e->desc;
    cp_slice opname = cp_slice_of(dot + 1, target.len - (size_t) (dot + 1 - target.p));
    const cp_aws_op *op = find_op(e, opname);
    if (!op || !cp_slice_eq(req->method, CP_SLICE("POST"))) {
        return replied(cp_aws_reply_error(resp, svc, "UnknownOperationException", NULL));
    }
    if (req->body.len > svc->max_body) {
        /* AWS answers an oversized request with 413 and an empty body. */
        cp_http_resp_reset(resp);
        resp->status = 413;
        cp_aws_finish(resp, svc);
        return CP_OK;
    }
    if (only_whitespace(req->body) ||
        (!(op->flags & CP_AWS_OP_RAW_JSON) && !valid_json_object(req->body))) {
        return replied(cp_aws_reply_error(resp, svc, "SerializationException", NULL));
    }

    cp_sigv4_auth auth;
    cp_sigv4_err err;
    if (cp_aws_authenticate(r, req, svc->signing_name, svc->max_skew_s, 0, &auth, &err) < 0) {
        const char *code = cp_aws_sigv4_exception(err.kind);
        return replied(cp_aws_reply_error(
            resp, svc, code, err.kind == CP_SIGV4_MISSING ? svc->missing_token : err.msg));
    }

    cp_aws_req areq = {
        .http = req,
        .service = svc,
        .op = opname,
        .body = req->body,
        .access_key = auth.access_key,
        .region = auth.region.len ? auth.region : cp_slice_str(r->default_region),
        .scratch = req->scratch,
    };
    int rc = op->handler(e->ctx, &areq, resp);
    if (resp->status >= 400 && cp_http_resp_header(resp, "x-amzn-RequestId").p) {
        return CP_OK; /* the op replied an error through cp_aws_reply_error */
    }
    if (rc < 0) {
        return replied(cp_aws_reply_error(resp, svc, svc->internal_error, "Internal server error"));
    }
    if (resp->body.len == 0) {
        cp_buf_puts(&resp->body, "{}");
    }
    cp_aws_finish(resp, svc);
    return CP_OK;
}

void cp_aws_mount(cp_aws_router *aws, cp_http_router *http)
{
    cp_http_router_add_header(http, "X-Amz-Target", cp_aws_dispatch, aws);
    cp_http_router_add(http, "POST", "/", 0, cp_aws_dispatch, aws);
}
