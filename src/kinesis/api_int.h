/* SPDX-License-Identifier: MIT */
/*
 * Private to the kinesis api module (api.c lifecycle and shared helpers, api_control.c control
 * plane, api_data.c data plane, api_token.c sealed tokens). Nothing here is used outside
 * src/kinesis/.
 */
#ifndef CP_KINESIS_API_INT_H
#define CP_KINESIS_API_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/json.h"
#include "kinesis/api.h"

#define CP__KINESIS_TOKEN_EPOCH 8 /* bytes naming the key a token was sealed with */
#define CP__KINESIS_MAX_LIMIT   10000
#define CP__KINESIS_READ_BYTES  ((size_t) 10 << 20) /* GetRecords: 10 MiB per call */

typedef struct cp__kinesis_tags cp__kinesis_tags; /* one stream's tags (api.c) */

struct cp_kinesis_api {
    cp_streams *streams;
    char *region;               /* for ARNs; NULL: the request's signing region */
    cp_kinesis_limiter limiter; /* admit == NULL: no throttling */
    size_t max_record_bytes;
    size_t max_request_bytes;
    int64_t ttl_ms;
    unsigned char key[32];                        /* HMAC key for tokens */
    unsigned char epoch[CP__KINESIS_TOKEN_EPOCH]; /* names `key` inside every token */
    _Atomic uint64_t serial;                      /* makes every sealed token unique */
    pthread_mutex_t tags_mu;                      /* guards tags/ntags */
    cp__kinesis_tags *tags;
    size_t ntags;
};

/* ---------------------------------------------------------------- request decoding */

typedef enum cp__kf_kind {
    CP__KF_STR,    /* JSON string: s = the unescaped value */
    CP__KF_INT,    /* Java Integer: i (range-checked), num = the number text */
    CP__KF_LONG,   /* Java Long */
    CP__KF_BOOL,   /* i = 0/1 */
    CP__KF_TS,     /* epoch seconds with fraction: ms */
    CP__KF_STRUCT, /* s = the raw JSON text of the object */
    CP__KF_LIST,   /* s = the raw JSON text of the array */
    CP__KF_MAP,    /* s = the raw JSON text of the object */
    CP__KF_BLOB,   /* base64 string (decoded by the data plane itself; not for decode) */
} cp__kf_kind;

/* One expected member of a request object. `name` and `kind` are inputs; the rest is filled
 * by cp__kinesis_decode. A member sent as null counts as absent (AWS drops nulls). */
typedef struct cp__kfield {
    const char *name;
    cp__kf_kind kind;
    int set;      /* present and not null */
    cp_slice s;   /* STR value (borrows the body or the request scratch); raw JSON otherwise */
    int64_t i;    /* INT, LONG, BOOL */
    int64_t ms;   /* TS */
    cp_slice num; /* INT, LONG: the number as sent (for validation messages) */
} cp__kfield;

/* A field table entry: CP__KF("StreamName", CP__KF_STR). */
#define CP__KF(n, k)                                                                               \
    {                                                                                              \
        .name = (n), .kind = (k)                                                                   \
    }

/* Decode the members of the JSON object `json` into f[0..n) (unknown members are skipped).
 * A member of the wrong JSON type gets SerializationException with Coral's wording, malformed
 * JSON a bare SerializationException. Returns CP_OK, or CP_EFAIL after replying. */
int cp__kinesis_decode(const cp_aws_req *req, cp_http_resp *resp, cp_slice json, cp__kfield *f,
                       size_t n);

/* Reply SerializationException for a value of JSON type t where `want` was expected. */
int cp__kinesis_type_mismatch(const cp_aws_req *req, cp_http_resp *resp, cp__kf_kind want,
                              const cp_json_tok *t);
/* The value of a STRING token: borrowed from the body, or unescaped into the request scratch;
 * must be valid UTF-8. CP_OK, or CP_EFAIL after replying SerializationException. */
int cp__kinesis_tok_string(const cp_aws_req *req, cp_http_resp *resp, const cp_json_tok *t,
                           cp_slice *out);

/* The string elements of a LIST, or the members of a MAP, decoded by cp__kinesis_decode. */
typedef struct cp__kstr {
    cp_slice key; /* MAP member name; empty for lists */
    cp_slice val; /* the string (empty when null) */
    int is_null;  /* the element was JSON null */
} cp__kstr;

/* Collect them into a new array in the request scratch (*out, *n). An element that is not a
 * string (or null) gets SerializationException. Returns CP_OK, or CP_EFAIL after replying. */
int cp__kinesis_strings(const cp_aws_req *req, cp_http_resp *resp, cp_slice raw, cp__kstr **out,
                        size_t *n);

/* ---------------------------------------------------------------- validation */

/* Collects shape errors into AWS's envelope: "N validation error(s) detected: A; B" (the first
 * 10, as AWS). */
typedef struct cp__verr {
    int n;
    cp_buf b;
} cp__verr;

#define CP__VERR_INIT ((cp__verr){0, CP_BUF_INIT})

/* "Value '<value>' at '<path>' failed to satisfy constraint: <constraint>" (value quoted,
 * truncated and made safe for JSON). */
void cp__verr_value(cp__verr *v, cp_slice value, const char *path, const char *constraint);
/* The same with an unquoted value text (null, a Java object rendering...); value NULL
 * leaves the value out ("Value at '<path>' failed ..."). */
void cp__verr_raw(cp__verr *v, const char *value, const char *path, const char *constraint);
/* "Value null at '<path>' failed to satisfy constraint: Member must not be null". */
void cp__verr_null(cp__verr *v, const char *path);
/* Integer bounds on a decoded INT/LONG field (absent is fine). */
void cp__verr_range(cp__verr *v, const cp__kfield *f, const char *path, int64_t min, int64_t max);
/* String length bounds in characters (UTF-16 units, as Java counts). */
void cp__verr_len(cp__verr *v, cp_slice s, const char *path, size_t min, size_t max);
/* Stream/shard name shape: pattern [a-zA-Z0-9_.-]+ and length 1..128. */
void cp__verr_name(cp__verr *v, cp_slice s, const char *path);
/* StreamARN shape (pattern arn:aws.*:kinesis:.*:\d{12}:stream/\S+, length 1..2048). */
void cp__verr_arn(cp__verr *v, cp_slice s, const char *path);
/* Enum membership; `names` NULL-terminated, shown as "[A, B]". */
void cp__verr_enum(cp__verr *v, cp_slice s, const char *path, const char *const *names);
/* Shape of the StreamName / StreamARN pair (either may be NULL or absent). */
void cp__verr_stream(cp__verr *v, const cp__kfield *name, const cp__kfield *arn);
/* Reply ValidationException when anything was collected (CP_EFAIL), else CP_OK. Frees v. */
int cp__verr_reply(cp__verr *v, const cp_aws_req *req, cp_http_resp *resp);

/* Append a client value for a message: at most 1 KiB, and valid UTF-8 (JSON-safe). */
void cp__kinesis_echo(cp_buf *out, cp_slice v);

/* Length of a string in UTF-16 code units (Java's String.length()). */
size_t cp__kinesis_chars(cp_slice s);

/* ---------------------------------------------------------------- shared replies */

/* After shape validation: the stream a request names through StreamName and/or StreamARN
 * (the ARN wins when both are sent). Neither → InvalidArgumentException; an ARN of another
 * account → ResourceNotFoundException. Returns CP_OK with *out set, or CP_EFAIL after
 * replying. *out borrows the request. */
int cp__kinesis_stream_or_reply(const cp_aws_req *req, cp_http_resp *resp, const cp__kfield *name,
                                const cp__kfield *arn, cp_slice *out);

/* Map a manager code to the AWS exception (CP_ENOTFOUND → ResourceNotFoundException,
 * CP_EEXIST/CP_EINUSE → ResourceInUseException, CP_ELIMIT → LimitExceededException,
 * CP_EINVAL/CP_ETOOBIG → InvalidArgumentException, anything else logged once and answered
 * InternalFailureException) with err's message. Returns CP_EFAIL. */
int cp__kinesis_reply_rc(const cp_aws_req *req, cp_http_resp *resp, int rc, const cp_err *err);

/* "Rate exceeded for shard shardId-... in stream S under account 000000000000." */
int cp__kinesis_reply_throttled(const cp_aws_req *req, cp_http_resp *resp, cp_slice stream,
                                uint32_t shard);
void cp__kinesis_throttle_msg(cp_buf *out, cp_slice stream, uint32_t shard);

/* ---------------------------------------------------------------- response writing */

/* Epoch seconds with a millisecond fraction: 1764132051.016 */
void cp__kinesis_put_ts(cp_buf *out, int64_t ms);
/* arn:aws:kinesis:<region>:000000000000:stream/<name> as a JSON string; the configured region,
 * else the request's. */
void cp__kinesis_put_arn(cp_buf *out, const cp_kinesis_api *api, const cp_aws_req *req,
                         cp_slice name);
/* {"ShardId":...,"HashKeyRange":{...},"SequenceNumberRange":{...}} with the parents. */
void cp__kinesis_put_shard(cp_buf *out, const cp_stream_shard_desc *d);
/* "shardId-%012u" for any index, as a JSON string. */
void cp__kinesis_put_shard_id(cp_buf *out, uint32_t index);

/* ---------------------------------------------------------------- sealed tokens (api_token.c) */

enum {
    CP__KINESIS_TOK_ITERATOR = 1, /* ShardIterator */
    CP__KINESIS_TOK_SHARDS = 2,   /* ListShards NextToken */
    CP__KINESIS_TOK_STREAMS = 3,  /* ListStreams NextToken */
};

/* Derive epoch from the configured key, or draw a random key and epoch. */
void cp__kinesis_token_init(cp_kinesis_api *api, const unsigned char *key, size_t key_len);
/* Append the base64 token: version, kind, epoch, issued_ms, a serial (unique per process),
 * payload, HMAC (16 bytes). Any thread. */
void cp__kinesis_seal(cp_kinesis_api *api, int kind, int64_t issued_ms, cp_slice payload,
                      cp_buf *out);
/* Check and open a token of `kind`: CP_OK with the payload appended to *payload and the issue
 * time in *issued_ms; CP_EEXPIRED when it is well-formed but names another key (an earlier
 * server process); CP_EINVAL when malformed, of another kind, or tampered with. */
int cp__kinesis_unseal(const cp_kinesis_api *api, int kind, cp_slice token, cp_buf *payload,
                       int64_t *issued_ms);

/* ---------------------------------------------------------------- operations */

/* The operation table (api_control.c), NULL-terminated. */
extern const cp_aws_op cp__kinesis_ops[];
/* Release the tag table (api_control.c). */
void cp__kinesis_tags_free(cp_kinesis_api *api);

/* Data plane (api_data.c). */

int cp__kinesis_op_put_record(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__kinesis_op_put_records(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__kinesis_op_get_shard_iterator(void *ctx, const cp_aws_req *req, cp_http_resp *resp);
int cp__kinesis_op_get_records(void *ctx, const cp_aws_req *req, cp_http_resp *resp);

#endif
