/* SPDX-License-Identifier: MIT */
/*
 * Delivery-stream configuration: the typed, owned form of one Firehose delivery stream, parsed
 * from exactly the JSON `aws firehose create-delivery-stream --cli-input-json` sends
 * (firehose.md section 1), validated the way Firehose validates it, rendered back for
 * DescribeDeliveryStream, merged by UpdateDestination, and persisted by the engine.
 *
 * Validation runs in two passes (firehose.md 1.1, 1.8, 9):
 *   1. shape: JSON types (SerializationException), then every model constraint - required
 *      members, lengths, patterns, enums, ranges - collected into one ValidationException
 *      ("N validation errors detected: Value ... at '<path>' failed to satisfy constraint:
 *      <rule>", joined with "; ");
 *   2. semantics: destinations, buffering hints, prefix expressions, dynamic partitioning and
 *      processors (InvalidArgumentException with Firehose's wording).
 * By default the full Firehose ranges apply to every stream (1-128 MiB, 0-900 s, also with
 * dynamic partitioning); cp_ds_parse_opts.strict adds every AWS create-time rule, including
 * the dynamic-partitioning minimums (64 MiB, 60 s), so a configuration that passes strict
 * mode also passes in AWS.
 *
 * changepipe extensions (docs/delivery.md): a top-level "ChangepipeOptions" member, and the
 * same options as tags "changepipe:<Option>" (those pass unchanged through the aws CLI, which
 * refuses unknown members). The processor Type "DynamoDBChangeRecord" (the native processor)
 * is accepted besides AWS's types.
 *
 * Ownership: a cp_ds_config owns every string and array it points to; free it with
 * cp_ds_config_free. Threads: a config is a plain value; share it read-only or copy it.
 */
#ifndef CP_DELIVERY_CONFIG_H
#define CP_DELIVERY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "delivery/processor.h"
#include "delivery/tz.h"

typedef enum {
    CP_DS_DIRECT_PUT = 0, /* DirectPut: PutRecord / PutRecordBatch */
    CP_DS_KINESIS = 1,    /* KinesisStreamAsSource */
} cp_ds_type;

typedef enum {
    CP_DS_UNCOMPRESSED = 0,
    CP_DS_GZIP,
    CP_DS_ZIP,
    CP_DS_SNAPPY,
    CP_DS_HADOOP_SNAPPY,
} cp_ds_compression;

/* Bit of a compression in cp_ds_parse_opts.compressions. */
#define CP_DS_COMP(c) (1u << (c))

typedef enum {
    CP_DS_CREATING = 0,
    CP_DS_CREATING_FAILED,
    CP_DS_DELETING,
    CP_DS_DELETING_FAILED,
    CP_DS_ACTIVE,
} cp_ds_status;

/* Defaults and limits (firehose.md 1.3, 1.4, 5.5). */
#define CP_DS_DEFAULT_SIZE_MB    5
#define CP_DS_DEFAULT_INTERVAL_S 300
#define CP_DS_DP_DEFAULT_SIZE_MB 128 /* dynamic partitioning without BufferingHints */
#define CP_DS_DP_MIN_SIZE_MB     64  /* strict mode */
#define CP_DS_DP_MIN_INTERVAL_S  60  /* strict mode */
#define CP_DS_DEFAULT_RETRY_S    300
#define CP_DS_MAX_TAGS           50
#define CP_DS_MAX_JQ_KEYS        50
#define CP_DS_DESTINATION_ID     "destinationId-000000000001"
#define CP_DS_NATIVE_PROCESSOR   "DynamoDBChangeRecord"
#define CP_DS_TAG_PREFIX         "changepipe:"

/* One ProcessingConfiguration processor: Type and its parameters in the order given. The
 * param strings are owned by the config (cp_processor_param only says const for plugins). */
typedef struct cp_ds_processor {
    char *type;
    cp_processor_param *params;
    size_t nparams;
} cp_ds_processor;

typedef struct cp_ds_tag {
    char *key;
    char *value; /* "" when the request had no Value */
} cp_ds_tag;

/* CloudWatchLoggingOptions: kept for Describe; changepipe logs locally instead. */
typedef struct cp_ds_logging {
    int given;
    int enabled;
    char *group;  /* NULL: not given */
    char *stream; /* NULL: not given */
} cp_ds_logging;

/* The members every S3 destination shape shares (S3DestinationConfiguration, the Extended
 * one, their Update forms, S3BackupConfiguration). String members are NULL when not given. */
#define CP_DS_S3_MEMBERS                                                                           \
    char *role_arn;                                                                                \
    char *bucket_arn;                                                                              \
    char *prefix;              /* as given; NULL = absent (the default prefix applies) */          \
    char *error_output_prefix; /* as given; NULL = absent */                                       \
    int size_given;            /* BufferingHints.SizeInMBs given */                                \
    int interval_given;        /* BufferingHints.IntervalInSeconds given */                        \
    uint32_t size_mb;          /* effective (default applied) */                                   \
    uint32_t interval_s;       /* effective */                                                     \
    int compression_given;                                                                         \
    cp_ds_compression compression; /* effective */                                                 \
    int encryption_given;                                                                          \
    char *kms_key_arn; /* KMSEncryptionConfig.AWSKMSKeyARN; NULL = NoEncryption */                 \
    cp_ds_logging logging;

typedef struct cp_ds_s3 {
    CP_DS_S3_MEMBERS
} cp_ds_s3;

/* changepipe's extension options ("ChangepipeOptions" member or "changepipe:" tags). */
typedef struct cp_ds_options {
    int validate_json_lines;        /* -1 unset, 0, 1 */
    char *sink;                     /* NULL unset: the name of an S3-compatible sink in the
                                     * server configuration (default: the local bucket store) */
    uint32_t max_active_partitions; /* 0 unset */
} cp_ds_options;

typedef struct cp_ds_config {
    /* Identity */
    char *name;
    char *arn; /* arn:aws:firehose:<region>:<account>:deliverystream/<name> */
    char *region;
    char *account;
    cp_ds_type type;

    /* KinesisStreamSourceConfiguration (type CP_DS_KINESIS; NULL otherwise) */
    char *source_stream_arn;
    char *source_stream; /* the stream name parsed from the ARN */
    char *source_role_arn;
    /* DeliveryStreamEncryptionConfigurationInput (DirectPut; kept for Describe) */
    char *sse_key_type; /* NULL: not given */
    char *sse_key_arn;

    /* The destination. `s3` and the flat members are the same storage, so code shared with
     * the backup configuration takes &cfg->s3 and the engine reads cfg->prefix. */
    int legacy_s3; /* created with S3DestinationConfiguration */
    union {
        cp_ds_s3 s3;
        struct {
            CP_DS_S3_MEMBERS
        };
    };
    int processing_given;
    int processing_enabled;
    cp_ds_processor *processors;
    size_t nprocessors;
    int backup_mode_given;
    int backup_enabled;       /* S3BackupMode Enabled */
    cp_ds_s3 *backup;         /* S3BackupConfiguration; NULL when not given */
    char *format_conversion;  /* DataFormatConversionConfiguration as JSON text, or NULL */
    int dp_given;             /* DynamicPartitioningConfiguration present */
    int dynamic_partitioning; /* ... .Enabled */
    int dp_retry_given;
    uint32_t dp_retry_s;    /* RetryOptions.DurationInSeconds, effective (default 300) */
    char *file_extension;   /* FileExtension as given; NULL = absent ("" = not set) */
    char *custom_time_zone; /* CustomTimeZone as given; NULL = absent */

    /* Derived when the config is built (parse, from_json, update) */
    char *bucket;                   /* bucket name from BucketARN */
    uint64_t buffer_bytes;          /* size_mb in bytes */
    int64_t buffer_interval_ms;     /* interval_s in ms */
    const cp_tz *tz;                /* CustomTimeZone (UTC by default); owned (cp_tz_free) */
    int validate_json;              /* effective ValidateJsonLines (default: on with the
                                     * DynamoDBChangeRecord processor, else off) */
    const char *sink;               /* effective SinkEndpoint or NULL (points into options/tags) */
    uint32_t max_active_partitions; /* effective; 0 = the engine's default */

    cp_ds_options options; /* ChangepipeOptions member as given */
    cp_ds_tag *tags;       /* sorted by key */
    size_t ntags;

    uint32_t version;  /* VersionId: 1 at create, +1 per UpdateDestination */
    int64_t create_ms; /* CreateTimestamp */
    int64_t update_ms; /* LastUpdateTimestamp; 0 = never updated */
    int64_t start_ms;  /* DeliveryStartTimestamp (Kinesis source: reading starts here) */
} cp_ds_config;

/* A client error: the AWS error type and its message. */
typedef struct cp_ds_err {
    const char *type; /* "ValidationException", "InvalidArgumentException", ... (static) */
    cp_buf msg;
} cp_ds_err;

#define CP_DS_ERR_INIT ((cp_ds_err){NULL, CP_BUF_INIT})
void cp_ds_err_free(cp_ds_err *e);

typedef struct cp_ds_parse_opts {
    int strict;               /* enforce every AWS create-time rule (serve --strict) */
    const char *region;       /* for the ARN; NULL = "us-east-1" */
    const char *account;      /* 12 digits for the ARN; NULL = "000000000000" */
    unsigned compressions;    /* CP_DS_COMP bits accepted; 0 = UNCOMPRESSED and GZIP */
    int backup_supported;     /* accept S3BackupMode Enabled (else InvalidArgumentException) */
    const char *zoneinfo_dir; /* NULL = CP_TZ_DIR */
    int64_t now_ms;           /* create/update time; 0 = the wall clock */
} cp_ds_parse_opts;

/* Parse and validate a CreateDeliveryStream request body. On CP_OK *out is a new config
 * (version 1, timestamps = now) owned by the caller. On CP_EINVAL err has the AWS type and
 * message (SerializationException, ValidationException, InvalidArgumentException). CP_ENOMEM
 * never (allocation aborts). */
int cp_ds_config_parse(cp_slice json, const cp_ds_parse_opts *opts, cp_ds_config **out,
                       cp_ds_err *err);

/* Release a config (NULL is ignored). */
void cp_ds_config_free(cp_ds_config *cfg);

/* Deep copy. CP_OK, or the errors of cp_ds_config_from_json (the zone file vanished). Copies
 * and loaded configs read their CustomTimeZone from CP_TZ_DIR. */
int cp_ds_config_copy(const cp_ds_config *cfg, cp_ds_config **out, cp_err *err);

/* Persistence: the create request as given plus a "ChangepipeState" member (ARN, version,
 * timestamps). from_json restores exactly what to_json saved, without re-running the create
 * rules (a stored stream stays loadable when validation gets stricter). from_json: CP_OK,
 * CP_ECORRUPT (not a saved config), CP_ENOTFOUND (its time zone is gone). */
void cp_ds_config_to_json(const cp_ds_config *cfg, cp_buf *out);
int cp_ds_config_from_json(cp_slice json, cp_ds_config **out, cp_err *err);

/* LambdaArn of the (first) Lambda processor, or NULL. Valid while cfg lives. */
const char *cp_ds_config_lambda_arn(const cp_ds_config *cfg);
/* Object-key extension: FileExtension when given and non-empty (it replaces the default),
 * else the compression's (".gz", ".zip", ".snappy"; "" for UNCOMPRESSED). Static or owned by
 * cfg. */
const char *cp_ds_config_extension(const cp_ds_config *cfg);
/* AWS spellings (static strings). */
const char *cp_ds_type_name(cp_ds_type t);
const char *cp_ds_compression_name(cp_ds_compression c);
const char *cp_ds_status_name(cp_ds_status s);
/* The static copy of a known error-output-type ("processing-failed", "partitioning-failed",
 * "format-conversion-failed", "decompression-failed", "activePartitionExceeded"...), so
 * engines can keep `const char *` types across restarts; NULL for unknown text. */
const char *cp_ds_error_type_intern(const char *s);

/* ------------------------------------------------------------------------------------------ */
/* DescribeDeliveryStream                                                                      */

typedef struct cp_ds_state {
    cp_ds_status status;
    char failure_type[64];     /* FailureDescription.Type, "" for none */
    char failure_details[256]; /* FailureDescription.Details */
} cp_ds_state;

/* Append {"DeliveryStreamDescription":{...}} (firehose.md 1.9): both the Extended and the
 * legacy S3 destination descriptions with defaults filled, DestinationId
 * destinationId-000000000001, Lambda parameters equal to their defaults omitted as AWS does,
 * timestamps as epoch seconds with a fraction. `destinations` 0 leaves Destinations empty
 * (ExclusiveStartDestinationId already past the only one). state NULL = ACTIVE. */
void cp_ds_config_describe(const cp_ds_config *cfg, const cp_ds_state *state, int destinations,
                           cp_buf *out);

/* ------------------------------------------------------------------------------------------ */
/* UpdateDestination and tags                                                                  */

typedef struct cp_ds_update cp_ds_update;

/* Parse an UpdateDestination request (shape pass only). On CP_OK *out is the caller's. */
int cp_ds_update_parse(cp_slice json, cp_ds_update **out, cp_ds_err *err);
void cp_ds_update_free(cp_ds_update *u);
const char *cp_ds_update_name(const cp_ds_update *u);

/* Merge an update into the current config (members given replace, others are kept; nested
 * BufferingHints merge per member), validate the result as create does (plus: dynamic
 * partitioning can be neither enabled nor disabled, S3 backup cannot be disabled), and return
 * the new config with version + 1. CP_ECONDITION with ConcurrentModificationException when
 * CurrentDeliveryStreamVersionId is not cur->version; CP_EINVAL otherwise. */
int cp_ds_config_apply_update(const cp_ds_config *cur, const cp_ds_update *u,
                              const cp_ds_parse_opts *opts, cp_ds_config **next, cp_ds_err *err);

/* Tags: a new config with `tags` added/replaced, or with `keys` removed (same version: tags
 * are not part of the destination). changepipe: tags re-derive the extension options.
 * CP_ELIMIT (LimitExceededException) beyond 50 tags; CP_EINVAL for a bad extension value. */
int cp_ds_config_tag(const cp_ds_config *cur, const cp_ds_tag *tags, size_t n, cp_ds_config **next,
                     cp_ds_err *err);
int cp_ds_config_untag(const cp_ds_config *cur, const char *const *keys, size_t n,
                       cp_ds_config **next, cp_ds_err *err);

#endif
