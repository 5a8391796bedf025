/* SPDX-License-Identifier: MIT */
/*
 * Kinesis Data Streams API, lifecycle and shared helpers: request decoding with Coral's type
 * errors, the ValidationException envelope, stream identification by name or ARN, the
 * manager-code -> AWS-exception mapping and response writers. The operations are in
 * api_control.c (streams, shards, tags) and api_data.c (PutRecord(s), GetShardIterator,
 * GetRecords); sealed tokens in api_token.c.
 */
#include "kinesis/api.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "kinesis/api_int.h"

#define ECHO_MAX 1024 /* longest client value quoted back in a message */

static const char *const name_pattern = "[a-zA-Z0-9_.-]+";
static const char *const arn_pattern = "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+";

/* ================================================================ decoding
 *
 * Requests are decoded with the cp_json lexer through a small field table rather than a DOM:
 * it sees each member's JSON type where Coral does (so type errors get Coral's wording), keeps
 * strings with embedded NULs intact (cJSON would cut them), and costs one pass. AWS checks in
 * this order, and so do the handlers: JSON types (SerializationException), then shapes
 * (ValidationException, all errors at once), then semantics and lookups.
 */

static int serialization(const cp_aws_req *req, cp_http_resp *resp, const char *msg)
{
    return cp_aws_reply_error(resp, req->service, "SerializationException", msg);
}

/* Coral's (Jackson's) wording when a member has the wrong JSON type; kinesalite recorded these
 * from AWS, grammar included ("an String"). */
int cp__kinesis_type_mismatch(const cp_aws_req *req, cp_http_resp *resp, cp__kf_kind want,
                              const cp_json_tok *t)
{
    if (t->type == CP_JSON_OBJ_BEGIN) {
        return serialization(req, resp, "Start of structure or map found where not expected.");
    }
    if (t->type == CP_JSON_ARR_BEGIN) {
        return serialization(req, resp, "Start of list found where not expected");
    }
    switch (want) {
    case CP__KF_STRUCT:
        return serialization(req, resp, "Expected null");
    case CP__KF_LIST:
        return serialization(req, resp, "Expected list or null");
    case CP__KF_MAP:
        return serialization(req, resp, "Expected map or null");
    default:
        break;
    }
    int is_bool = t->type == CP_JSON_TRUE || t->type == CP_JSON_FALSE;
    const char *from = is_bool                     ? "class java.lang.Boolean"
                       : t->type == CP_JSON_NUMBER ? "class java.math.BigDecimal"
                                                   : "class java.lang.String";
    const char *to = want == CP__KF_BLOB   ? "a Blob"
                     : want == CP__KF_STR  ? "an String"
                     : want == CP__KF_INT  ? "an Integer"
                     : want == CP__KF_LONG ? "an Long"
                     : want == CP__KF_BOOL ? "an Boolean"
                                           : "milliseconds since epoch";
    return cp_aws_reply_errorf(resp, req->service, "SerializationException",
                               "%s can not be converted to %s", from, to);
}

/* The string value of a STRING token: borrowed from the body, or unescaped into the scratch.
 * Strings must be valid UTF-8: they are stored and echoed back in JSON. */
int cp__kinesis_tok_string(const cp_aws_req *req, cp_http_resp *resp, const cp_json_tok *t,
                           cp_slice *out)
{
    if (!t->escaped) {
        *out = t->s;
    } else {
        cp_buf tmp = CP_BUF_INIT;
        if (cp_json_unescape(t->s, &tmp) != CP_OK) {
            cp_buf_free(&tmp);
            return serialization(req, resp, NULL);
        }
        char *p = cp_http_scratch_alloc(req->scratch, tmp.len + 1);
        memcpy(p, tmp.p ? tmp.p : "", tmp.len + 1);
        *out = cp_slice_of(p, tmp.len);
        cp_buf_free(&tmp);
    }
    if (!cp_utf8_valid(*out)) {
        return serialization(req, resp, "Invalid UTF-8 start byte");
    }
    return CP_OK;
}

/* Java-style integer conversion (kinesalite's recording of AWS: fractions are floored): fractions
 * are truncated, values outside the type fail. */
static int tok_int(const cp_aws_req *req, cp_http_resp *resp, const cp_json_tok *t, int is_long,
                   int64_t *out)
{
    char num[64];
    int ok = t->s.len < sizeof(num);
    double d = 0;
    if (ok) {
        memcpy(num, t->s.p, t->s.len);
        num[t->s.len] = 0;
        if (strpbrk(num, ".eE")) {
            d = floor(strtod(num, NULL));
            ok = d >= -9.2e18 && d <= 9.2e18;
            *out = ok ? (int64_t) d : 0;
        } else {
            errno = 0;
            long long v = strtoll(num, NULL, 10);
            ok = errno == 0;
            *out = v;
        }
    }
    if (ok && !is_long && (*out < INT32_MIN || *out > INT32_MAX)) {
        ok = 0;
    }
    if (!ok) {
        return cp_aws_reply_errorf(
            resp, req->service, "SerializationException", "Numeric value (%.*s) out of range of %s",
            (int) (t->s.len > 40 ? 40 : t->s.len), t->s.p, is_long ? "long" : "int");
    }
    return CP_OK;
}

/* Epoch seconds (fraction allowed, as AWS JSON timestamps are) to milliseconds. */
static int64_t tok_ts(const cp_json_tok *t)
{
    char num[64];
    size_t n = t->s.len < sizeof(num) - 1 ? t->s.len : sizeof(num) - 1;
    memcpy(num, t->s.p, n);
    num[n] = 0;
    double s = strtod(num, NULL);
    if (s > 1e13) {
        s = 1e13; /* far future; keeps the multiplication in range */
    } else if (s < -1e13) {
        s = -1e13;
    }
    return (int64_t) llround(s * 1000.0);
}

int cp__kinesis_decode(const cp_aws_req *req, cp_http_resp *resp, cp_slice json, cp__kfield *f,
                       size_t n)
{
    /* A repeated member overwrites the earlier one, as Jackson does. */
    for (size_t i = 0; i < n; i++) {
        f[i].set = 0;
    }
    cp_json_lexer lx;
    cp_json_tok t;
    cp_json_lexer_init(&lx, json);
    if (cp_json_next(&lx, &t) < 0 || t.type != CP_JSON_OBJ_BEGIN) {
        return serialization(req, resp, NULL);
    }
    for (;;) {
        if (cp_json_next(&lx, &t) < 0) {
            return serialization(req, resp, NULL);
        }
        if (t.type == CP_JSON_OBJ_END) {
            break;
        }
        cp__kfield *fd = NULL;
        for (size_t i = 0; i < n && !fd; i++) {
            if (cp_json_tok_is(&t, f[i].name)) {
                fd = &f[i];
            }
        }
        if (cp_json_next(&lx, &t) < 0) {
            return serialization(req, resp, NULL);
        }
        if (!fd || t.type == CP_JSON_NULL) {
            if (cp_json_skip(&lx, &t) < 0) {
                return serialization(req, resp, NULL);
            }
            continue;
        }
        int rc = CP_OK;
        switch (fd->kind) {
        case CP__KF_STR:
        case CP__KF_BLOB: /* kept as its base64 text */
            rc = t.type == CP_JSON_STRING ? cp__kinesis_tok_string(req, resp, &t, &fd->s)
                                          : cp__kinesis_type_mismatch(req, resp, fd->kind, &t);
            break;
        case CP__KF_INT:
        case CP__KF_LONG:
            fd->num = t.s;
            rc = t.type == CP_JSON_NUMBER ? tok_int(req, resp, &t, fd->kind == CP__KF_LONG, &fd->i)
                                          : cp__kinesis_type_mismatch(req, resp, fd->kind, &t);
            break;
        case CP__KF_BOOL:
            if (t.type == CP_JSON_TRUE || t.type == CP_JSON_FALSE) {
                fd->i = t.type == CP_JSON_TRUE;
            } else if (t.type == CP_JSON_STRING && !t.escaped && /* Jackson coerces these */
                       (cp_http_slice_ieq(t.s, "true") || cp_http_slice_ieq(t.s, "false"))) {
                fd->i = cp_http_slice_ieq(t.s, "true");
            } else if (t.type == CP_JSON_STRING) {
                char up[64];
                size_t k = 0;
                for (; k < t.s.len && k < sizeof(up) - 1; k++) {
                    char c = t.s.p[k];
                    up[k] = (char) (c >= 'a' && c <= 'z' ? c - 32 : c);
                }
                up[k] = 0;
                rc = cp_aws_reply_errorf(resp, req->service, "SerializationException",
                                         "'%s' can not be converted to an Boolean", up);
            } else {
                rc = cp__kinesis_type_mismatch(req, resp, fd->kind, &t);
            }
            break;
        case CP__KF_TS:
            if (t.type == CP_JSON_NUMBER) {
                fd->ms = tok_ts(&t);
            } else {
                rc = cp__kinesis_type_mismatch(req, resp, fd->kind, &t);
            }
            break;
        case CP__KF_STRUCT:
        case CP__KF_MAP:
        case CP__KF_LIST: {
            cp_json_type want = fd->kind == CP__KF_LIST ? CP_JSON_ARR_BEGIN : CP_JSON_OBJ_BEGIN;
            if (t.type != want) {
                rc = cp__kinesis_type_mismatch(req, resp, fd->kind, &t);
                break;
            }
            const char *start = lx.p - 1; /* the lexer consumed exactly the opening bracket */
            if (cp_json_skip(&lx, &t) < 0) {
                return serialization(req, resp, NULL);
            }
            fd->s = cp_slice_of(start, (size_t) (lx.p - start));
            break;
        }
        }
        if (rc != CP_OK) {
            return CP_EFAIL;
        }
        fd->set = 1;
    }
    if (cp_json_next(&lx, &t) < 0 || t.type != CP_JSON_END) {
        return serialization(req, resp, NULL);
    }
    return CP_OK;
}

int cp__kinesis_strings(const cp_aws_req *req, cp_http_resp *resp, cp_slice raw, cp__kstr **out,
                        size_t *n)
{
    *out = NULL;
    *n = 0;
    int is_map = raw.len && raw.p[0] == '{';
    size_t cap = 0;
    for (size_t i = 0; i < raw.len; i++) {
        cap += raw.p[i] == ','; /* an upper bound on the element count */
    }
    cp__kstr *v = cp_http_scratch_alloc(req->scratch, (cap + 1) * sizeof(*v));
    cp_json_lexer lx;
    cp_json_tok t;
    cp_json_lexer_init(&lx, raw);
    if (cp_json_next(&lx, &t) < 0) {
        return serialization(req, resp, NULL);
    }
    for (;;) {
        if (cp_json_next(&lx, &t) < 0) {
            return serialization(req, resp, NULL);
        }
        if (t.type == CP_JSON_OBJ_END || t.type == CP_JSON_ARR_END) {
            break;
        }
        cp__kstr e = {{NULL, 0}, {NULL, 0}, 0};
        if (is_map) {
            cp_json_tok k = t;
            k.type = CP_JSON_STRING;
            if (cp__kinesis_tok_string(req, resp, &k, &e.key) != CP_OK ||
                cp_json_next(&lx, &t) < 0) {
                return CP_EFAIL;
            }
        }
        if (t.type == CP_JSON_NULL) {
            e.is_null = 1;
        } else if (t.type != CP_JSON_STRING) {
            return cp__kinesis_type_mismatch(req, resp, CP__KF_STR, &t);
        } else if (cp__kinesis_tok_string(req, resp, &t, &e.val) != CP_OK) {
            return CP_EFAIL;
        }
        v[(*n)++] = e;
    }
    *out = v;
    return CP_OK;
}

/* ================================================================ validation
 *
 * The ValidationException text is Coral's: "Value '<v>' at '<path>' failed to satisfy
 * constraint: <rule>", paths in lowerCamelCase ("records.3.member.partitionKey"), joined with
 * "; " under "N validation error(s) detected: ". Lengths count UTF-16 units, as Java does.
 */

size_t cp__kinesis_chars(cp_slice s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char) s.p[i];
        if ((c & 0xC0) != 0x80) {
            n += c >= 0xF0 ? 2 : 1; /* outside the BMP: a surrogate pair in Java */
        }
    }
    return n;
}

/* Quote a client value into a message: bounded, and valid UTF-8 so the reply is valid JSON. */
void cp__kinesis_echo(cp_buf *out, cp_slice v)
{
    size_t n = v.len;
    if (n > ECHO_MAX) {
        n = ECHO_MAX;
        while (n > 0 && ((unsigned char) v.p[n] & 0xC0) == 0x80) {
            n--; /* do not cut a character in two */
        }
    }
    cp_slice cut = cp_slice_of(v.p, n);
    if (cp_utf8_valid(cut)) {
        cp_buf_append(out, cut.p, cut.len);
    } else {
        for (size_t i = 0; i < n; i++) {
            cp_buf_putc(out, (unsigned char) v.p[i] < 0x80 ? v.p[i] : '?');
        }
    }
    if (n < v.len) {
        cp_buf_puts(out, "...");
    }
}

/* AWS reports at most 10 shape errors per request. Returns 0 when this one is dropped. */
static int verr_begin(cp__verr *v)
{
    if (v->n >= 10) {
        return 0;
    }
    if (v->n++ > 0) {
        cp_buf_puts(&v->b, "; ");
    }
    return 1;
}

void cp__verr_value(cp__verr *v, cp_slice value, const char *path, const char *constraint)
{
    if (!verr_begin(v)) {
        return;
    }
    cp_buf_puts(&v->b, "Value '");
    cp__kinesis_echo(&v->b, value);
    cp_buf_printf(&v->b, "' at '%s' failed to satisfy constraint: %s", path, constraint);
}

void cp__verr_raw(cp__verr *v, const char *value, const char *path, const char *constraint)
{
    if (!verr_begin(v)) {
        return;
    }
    cp_buf_printf(&v->b, "Value %s%sat '%s' failed to satisfy constraint: %s", value ? value : "",
                  value ? " " : "", path, constraint);
}

void cp__verr_null(cp__verr *v, const char *path)
{
    cp__verr_raw(v, "null", path, "Member must not be null");
}

void cp__verr_range(cp__verr *v, const cp__kfield *f, const char *path, int64_t min, int64_t max)
{
    if (!f->set) {
        return;
    }
    char c[96];
    if (f->i < min) {
        snprintf(c, sizeof(c), "Member must have value greater than or equal to %" PRId64, min);
    } else if (f->i > max) {
        snprintf(c, sizeof(c), "Member must have value less than or equal to %" PRId64, max);
    } else {
        return;
    }
    char val[32];
    snprintf(val, sizeof(val), "%" PRId64, f->i);
    cp__verr_value(v, cp_slice_str(val), path, c);
}

void cp__verr_len(cp__verr *v, cp_slice s, const char *path, size_t min, size_t max)
{
    size_t n = cp__kinesis_chars(s);
    char c[96];
    if (n < min) {
        snprintf(c, sizeof(c), "Member must have length greater than or equal to %zu", min);
    } else if (n > max) {
        snprintf(c, sizeof(c), "Member must have length less than or equal to %zu", max);
    } else {
        return;
    }
    cp__verr_value(v, s, path, c);
}

/* [a-zA-Z0-9_.-]+: the model's pattern for stream names and shard ids. */
static int name_chars_ok(cp_slice s)
{
    if (s.len == 0) {
        return 0;
    }
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

void cp__verr_name(cp__verr *v, cp_slice s, const char *path)
{
    if (!name_chars_ok(s)) {
        char c[96];
        snprintf(c, sizeof(c), "Member must satisfy regular expression pattern: %s", name_pattern);
        cp__verr_value(v, s, path, c);
    }
    cp__verr_len(v, s, path, 1, 128);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Match arn:aws.*:kinesis:.*:\d{12}:stream/\S+ (whole string, as Java's matches()); on a match
 * return 1 with the 12-digit account and the name after "stream/". */
static int arn_parse(cp_slice s, cp_slice *account, cp_slice *name)
{
    static const char kin[] = ":kinesis:", st[] = ":stream/";
    const char *p = s.p, *e = s.p + s.len;
    if (s.len < 7 || memcmp(p, "arn:aws", 7) != 0) {
        return 0;
    }
    for (const char *k = p + 7; k + 9 <= e; k++) {
        if (memcmp(k, kin, 9) != 0) {
            continue;
        }
        for (const char *c = k + 9; c + 1 + 12 + 8 < e; c++) {
            if (*c != ':' || memcmp(c + 13, st, 8) != 0) {
                continue;
            }
            int digits = 1;
            for (int i = 1; i <= 12; i++) {
                digits &= c[i] >= '0' && c[i] <= '9';
            }
            const char *n = c + 21;
            int nonspace = n < e;
            for (const char *q = n; q < e; q++) {
                nonspace &= !is_space(*q);
            }
            if (digits && nonspace) {
                *account = cp_slice_of(c + 1, 12);
                *name = cp_slice_of(n, (size_t) (e - n));
                return 1;
            }
        }
    }
    return 0;
}

void cp__verr_arn(cp__verr *v, cp_slice s, const char *path)
{
    cp_slice acct, name;
    if (!arn_parse(s, &acct, &name)) {
        char c[128];
        snprintf(c, sizeof(c), "Member must satisfy regular expression pattern: %s", arn_pattern);
        cp__verr_value(v, s, path, c);
    }
    cp__verr_len(v, s, path, 1, 2048);
}

void cp__verr_enum(cp__verr *v, cp_slice s, const char *path, const char *const *names)
{
    for (const char *const *n = names; *n; n++) {
        if (cp_slice_eq(s, cp_slice_str(*n))) {
            return;
        }
    }
    cp_buf c = CP_BUF_INIT;
    cp_buf_puts(&c, "Member must satisfy enum value set: [");
    for (const char *const *n = names; *n; n++) {
        cp_buf_printf(&c, "%s%s", n == names ? "" : ", ", *n);
    }
    cp_buf_putc(&c, ']');
    cp__verr_value(v, s, path, c.p);
    cp_buf_free(&c);
}

/* One reply for every shape error found, as AWS lists them all rather than the first. */
int cp__verr_reply(cp__verr *v, const cp_aws_req *req, cp_http_resp *resp)
{
    if (v->n == 0) {
        cp_buf_free(&v->b);
        return CP_OK;
    }
    cp_buf m = CP_BUF_INIT;
    cp_buf_printf(&m, "%d validation error%s detected: ", v->n, v->n > 1 ? "s" : "");
    cp_buf_append(&m, v->b.p, v->b.len);
    cp_aws_reply_error(resp, req->service, "ValidationException", m.p);
    cp_buf_free(&m);
    cp_buf_free(&v->b);
    v->n = 0;
    return CP_EFAIL;
}

/* Shape checks for the StreamName/StreamARN pair every stream operation takes. */
void cp__verr_stream(cp__verr *v, const cp__kfield *name, const cp__kfield *arn)
{
    if (arn && arn->set) {
        cp__verr_arn(v, arn->s, "streamARN");
    }
    if (name && name->set) {
        cp__verr_name(v, name->s, "streamName");
    }
}

/* ================================================================ shared replies */

/* AWS now recommends StreamARN over StreamName. The ARN's region is not checked (one server
 * answers for whichever region a client signs for); its account must be ours, since a foreign
 * account's stream cannot exist here. */
int cp__kinesis_stream_or_reply(const cp_aws_req *req, cp_http_resp *resp, const cp__kfield *name,
                                const cp__kfield *arn, cp_slice *out)
{
    if (arn && arn->set) {
        cp_slice acct, n;
        if (!arn_parse(arn->s, &acct, &n)) {
            return cp_aws_reply_error(resp, req->service, "InvalidArgumentException",
                                      "Invalid StreamARN.");
        }
        if (!cp_slice_eq(acct, CP_SLICE(CP_KINESIS_ACCOUNT)) ||
            cp_stream_name_check(n, NULL) != CP_OK) {
            cp_buf m = CP_BUF_INIT;
            cp_buf_puts(&m, "Stream ");
            cp__kinesis_echo(&m, n);
            cp_buf_puts(&m, " under account ");
            cp_buf_append(&m, acct.p, acct.len);
            cp_buf_puts(&m, " not found.");
            cp_aws_reply_error(resp, req->service, "ResourceNotFoundException", m.p);
            cp_buf_free(&m);
            return CP_EFAIL;
        }
        *out = n;
        return CP_OK;
    }
    if (name && name->set) {
        *out = name->s;
        return CP_OK;
    }
    /* Both members are optional in the model, so this is a semantic error, not a shape one
     * (wording as kinesis-mock, which tracks AWS). */
    return cp_aws_reply_error(resp, req->service, "InvalidArgumentException",
                              "Neither streamArn or streamName was provided");
}

int cp__kinesis_reply_rc(const cp_aws_req *req, cp_http_resp *resp, int rc, const cp_err *err)
{
    const char *code;
    switch (rc) {
    case CP_ENOTFOUND:
        code = "ResourceNotFoundException";
        break;
    case CP_EEXIST:
    case CP_EINUSE:
        code = "ResourceInUseException";
        break;
    case CP_ELIMIT:
        code = "LimitExceededException";
        break;
    case CP_EINVAL:
    case CP_ETOOBIG:
        code = "InvalidArgumentException";
        break;
    case CP_EAGAIN:
        code = "ProvisionedThroughputExceededException";
        break;
    default:
        /* A storage failure: the deciding layer logs it, once; the client sees no detail. */
        CP_LOG_ERROR("kinesis", "%.*s failed: %s (%s)", (int) req->op.len, req->op.p,
                     err && err->msg[0] ? err->msg : "no detail", cp_err_name(rc));
        return cp_aws_reply_error(resp, req->service, "InternalFailureException",
                                  "Internal service failure.");
    }
    return cp_aws_reply_error(resp, req->service, code, err && err->msg[0] ? err->msg : NULL);
}

void cp__kinesis_throttle_msg(cp_buf *out, cp_slice stream, uint32_t shard)
{
    char id[CP_SHARD_ID_MAX];
    cp_shard_id_format(shard, id);
    cp_buf_printf(out, "Rate exceeded for shard %s in stream %.*s under account %s.", id,
                  (int) stream.len, stream.p, CP_KINESIS_ACCOUNT);
}

int cp__kinesis_reply_throttled(const cp_aws_req *req, cp_http_resp *resp, cp_slice stream,
                                uint32_t shard)
{
    cp_buf m = CP_BUF_INIT;
    cp__kinesis_throttle_msg(&m, stream, shard);
    cp_aws_reply_error(resp, req->service, "ProvisionedThroughputExceededException", m.p);
    cp_buf_free(&m);
    return CP_EFAIL;
}

/* ================================================================ response writing */

/* Timestamps are epoch seconds in AWS JSON; writing milliseconds there (LocalStack #7372) or
 * dropping the fraction breaks consumers that order by arrival time. */
void cp__kinesis_put_ts(cp_buf *out, int64_t ms)
{
    if (ms < 0) {
        ms = 0;
    }
    cp_buf_printf(out, "%" PRId64 ".%03d", ms / 1000, (int) (ms % 1000));
}

void cp__kinesis_put_arn(cp_buf *out, const cp_kinesis_api *api, const cp_aws_req *req,
                         cp_slice name)
{
    cp_slice region = api->region ? cp_slice_str(api->region) : req->region;
    cp_buf a = CP_BUF_INIT;
    cp_buf_printf(&a, "arn:aws:kinesis:%.*s:%s:stream/%.*s", (int) region.len, region.p,
                  CP_KINESIS_ACCOUNT, (int) name.len, name.p);
    cp_json_put_str(out, cp_buf_slice(&a));
    cp_buf_free(&a);
}

void cp__kinesis_put_shard_id(cp_buf *out, uint32_t index)
{
    char id[CP_SHARD_ID_MAX];
    cp_shard_id_format(index, id);
    cp_json_put_str(out, cp_slice_str(id));
}

void cp__kinesis_put_shard(cp_buf *out, const cp_stream_shard_desc *d)
{
    cp_buf_puts(out, "{");
    cp_json_put_kv_str(out, "ShardId", cp_slice_str(d->id));
    if (d->parent >= 0) {
        cp_buf_puts(out, ",\"ParentShardId\":");
        cp__kinesis_put_shard_id(out, (uint32_t) d->parent);
    }
    if (d->adjacent_parent >= 0) {
        cp_buf_puts(out, ",\"AdjacentParentShardId\":");
        cp__kinesis_put_shard_id(out, (uint32_t) d->adjacent_parent);
    }
    cp_buf_puts(out, ",\"HashKeyRange\":{");
    cp_json_put_kv_str(out, "StartingHashKey", cp_slice_str(d->start_key));
    cp_buf_putc(out, ',');
    cp_json_put_kv_str(out, "EndingHashKey", cp_slice_str(d->end_key));
    cp_buf_puts(out, "},\"SequenceNumberRange\":{");
    cp_json_put_kv_str(out, "StartingSequenceNumber", cp_slice_str(d->starting_seq));
    if (d->ending_seq[0]) {
        cp_buf_putc(out, ',');
        cp_json_put_kv_str(out, "EndingSequenceNumber", cp_slice_str(d->ending_seq));
    }
    cp_buf_puts(out, "}}");
}

/* ================================================================ lifecycle */

/* The defaults are AWS's classic limits: 1 MiB per record, 5 MiB per PutRecords call, and
 * iterators (and ListShards tokens) valid for 5 minutes. */
cp_kinesis_api *cp_kinesis_api_new(cp_streams *streams, const cp_kinesis_api_cfg *cfg)
{
    cp_kinesis_api_cfg def = {0};
    if (!cfg) {
        cfg = &def;
    }
    cp_kinesis_api *api = cp_calloc(1, sizeof(*api));
    api->streams = streams;
    api->region = cfg->region ? cp_strdup(cfg->region) : NULL;
    if (cfg->limiter && cfg->limiter->admit) {
        api->limiter = *cfg->limiter;
    }
    api->max_record_bytes = cfg->max_record_bytes ? cfg->max_record_bytes : (size_t) 1 << 20;
    api->max_request_bytes = cfg->max_request_bytes ? cfg->max_request_bytes : (size_t) 5 << 20;
    api->ttl_ms = cfg->iterator_ttl_ms > 0 ? cfg->iterator_ttl_ms : 300000;
    cp__kinesis_token_init(api, cfg->token_key, cfg->token_key_len);
    pthread_mutex_init(&api->tags_mu, NULL);
    return api;
}

int cp_kinesis_api_register(cp_kinesis_api *api, cp_aws_router *router)
{
    return cp_aws_register_service(router, "Kinesis_20131202", NULL, NULL, cp__kinesis_ops, api);
}

void cp_kinesis_api_free(cp_kinesis_api *api)
{
    if (!api) {
        return;
    }
    cp__kinesis_tags_free(api);
    cp_free(api->region);
    pthread_mutex_destroy(&api->tags_mu);
    cp_free(api);
}
