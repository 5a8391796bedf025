/* SPDX-License-Identifier: MIT */
/*
 * Delivery-stream configuration: CreateDeliveryStream parsing, the semantic create-time rules
 * (firehose.md 1.8), derived values and persistence (see config.h). The shape pass lives in
 * config_shape.c, Describe in config_describe.c, UpdateDestination and tags in
 * config_update.c.
 */
#include "delivery/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/mem.h"
#include "delivery/config_int.h"
#include "delivery/prefix.h"

#define IAE "InvalidArgumentException"

/* Firehose's own wording where it is known (firehose.md 1.8 and the captures it cites: the
 * prefix envelope, typo included, comes from terraform-provider-aws#13416; the dynamic
 * partitioning texts are the CloudFormation messages aws-cdk quotes). The rest is ours and is
 * listed in docs/delivery.md. */
#define PREFIX_RULE  "Ths supplied prefix(es) do not satisfy the following constraint: "
#define MSG_ONE_DEST "Exactly one destination configuration is supported for a Firehose"
#define MSG_DP_NS                                                                                  \
    "Dynamic Partitioning Namespaces can only be part of a prefix expression "                     \
    "when Dynamic Partitioning is enabled."
#define MSG_DP_PROC "Processing Configuration is not enabled when DataPartitioning is enabled"
#define MSG_DP_PREFIX                                                                              \
    "S3 Prefix should contain Dynamic Partitioning namespaces when Dynamic "                       \
    "Partitioning is enabled"
#define MSG_DP_LAMBDA                                                                              \
    "Lambda should be present when S3 Prefix contains keys from "                                  \
    "partitionKeyFromLambda namespace"
#define MSG_DP_QUERY                                                                               \
    "MetadataExtraction processor should be present when S3 Prefix has "                           \
    "partitionKeyFromQuery namespace"
#define MSG_JQ_KEYS                                                                                \
    "MetaDataExtraction JQ Query can't contain keys that are not present in "                      \
    "the S3 Prefix expression"
#define MSG_JQ_NO_DP                                                                               \
    "class com.amazonaws.services.firehose.internal.model."                                        \
    "MetadataExtractionProcessor can only be present when Dynamic "                                \
    "Partitioning is enabled."
#define MSG_DP_SIZE                                                                                \
    "BufferingHints.SizeInMBs must be at least 64 when Dynamic Partitioning "                      \
    "is enabled."
#define MSG_DP_IVL                                                                                 \
    "BufferingHints.IntervalInSeconds must be at least 60 seconds when "                           \
    "Dynamic Partitioning is enabled."
#define MSG_DP_CHANGE                                                                              \
    "Dynamic Partitioning can only be enabled when a Firehose stream is "                          \
    "created, and cannot be disabled afterwards"

/* ------------------------------------------------------------------------------------------ */
/* Names                                                                                       */

const char *cp_ds_type_name(cp_ds_type t)
{
    return t == CP_DS_KINESIS ? "KinesisStreamAsSource" : "DirectPut";
}

const char *cp_ds_compression_name(cp_ds_compression c)
{
    static const char *const names[] = {"UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"};
    return (unsigned) c < 5 ? names[c] : "UNCOMPRESSED";
}

const char *cp_ds_status_name(cp_ds_status s)
{
    static const char *const names[] = {"CREATING", "CREATING_FAILED", "DELETING",
                                        "DELETING_FAILED", "ACTIVE"};
    return (unsigned) s < 5 ? names[s] : "ACTIVE";
}

const char *cp_ds_error_type_intern(const char *s)
{
    static const char *const known[] = {"processing-failed",
                                        "partitioning-failed",
                                        "format-conversion-failed",
                                        "decompression-failed",
                                        "activePartitionExceeded",
                                        "s3-failed",
                                        "json-validation-failed",
                                        "http-endpoint-failed",
                                        "splunk-failed",
                                        "elasticsearch-failed",
                                        "AmazonOpenSearchService-failed",
                                        NULL};
    for (const char *const *k = known; s && *k; k++) {
        if (strcmp(*k, s) == 0) {
            return *k;
        }
    }
    return NULL;
}

const char *cp_ds_config_lambda_arn(const cp_ds_config *cfg)
{
    for (size_t i = 0; i < cfg->nprocessors; i++) {
        const cp_ds_processor *p = &cfg->processors[i];
        if (strcmp(p->type, "Lambda") != 0) {
            continue;
        }
        for (size_t j = 0; j < p->nparams; j++) {
            if (strcmp(p->params[j].name, "LambdaArn") == 0) {
                return p->params[j].value;
            }
        }
    }
    return NULL;
}

const char *cp_ds_config_extension(const cp_ds_config *cfg)
{
    if (cfg->file_extension && *cfg->file_extension) {
        return cfg->file_extension; /* replaces the default, never appended (1.3) */
    }
    switch (cfg->compression) {
    case CP_DS_GZIP:
        return ".gz";
    case CP_DS_ZIP:
        return ".zip";
    /* Live AWS names both Snappy flavours .snappy, whatever the docs say (1.5). */
    case CP_DS_SNAPPY:
        return ".snappy";
    case CP_DS_HADOOP_SNAPPY:
        return ".snappy";
    default:
        return "";
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Free                                                                                        */

static void options_clear(cp_ds_options *o)
{
    cp_free(o->sink);
    memset(o, 0, sizeof(*o));
    o->validate_json_lines = -1;
}

void cp_ds_config_free(cp_ds_config *c)
{
    if (!c) {
        return;
    }
    cp_free(c->name);
    cp_free(c->arn);
    cp_free(c->region);
    cp_free(c->account);
    cp_free(c->source_stream_arn);
    cp_free(c->source_stream);
    cp_free(c->source_role_arn);
    cp_free(c->sse_key_type);
    cp_free(c->sse_key_arn);
    cp_ds_s3_clear(&c->s3);
    cp_ds_processors_free(c->processors, c->nprocessors);
    if (c->backup) {
        cp_ds_s3_clear(c->backup);
        cp_free(c->backup);
    }
    cp_free(c->format_conversion);
    cp_free(c->file_extension);
    cp_free(c->custom_time_zone);
    cp_free(c->bucket);
    cp_tz_free(c->tz);
    options_clear(&c->options);
    cp_ds_tags_free(c->tags, c->ntags);
    cp_free(c);
}

/* ------------------------------------------------------------------------------------------ */
/* Derived values                                                                              */

void cp_ds_s3_defaults(cp_ds_s3 *s, int dynamic_partitioning)
{
    if (!s->size_given) {
        /* With dynamic partitioning AWS's console and CDK default to 128 MiB (1.4). */
        s->size_mb = dynamic_partitioning ? CP_DS_DP_DEFAULT_SIZE_MB : CP_DS_DEFAULT_SIZE_MB;
    }
    if (!s->interval_given) {
        s->interval_s = CP_DS_DEFAULT_INTERVAL_S;
    }
    if (!s->compression_given) {
        s->compression = CP_DS_UNCOMPRESSED;
    }
}

static int parse_bool_text(const char *s, int *out)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
        *out = s[0] == 't';
        return 1;
    }
    return 0;
}

/* Effective extension options: defaults, then "changepipe:" tags, then ChangepipeOptions. */
static int effective_options(cp_ds_config *cfg, cp_ds_err *err)
{
    int validate = -1;
    const char *sink = NULL;
    uint32_t maxp = 0;
    for (size_t i = 0; i < cfg->ntags; i++) {
        const char *k = cfg->tags[i].key, *val = cfg->tags[i].value;
        if (strncmp(k, CP_DS_TAG_PREFIX, strlen(CP_DS_TAG_PREFIX)) != 0) {
            continue;
        }
        const char *opt = k + strlen(CP_DS_TAG_PREFIX);
        if (strcmp(opt, "ValidateJsonLines") == 0) {
            if (!parse_bool_text(val, &validate)) {
                return cp_ds_fail(err, IAE, "Tag %s must be true or false", k);
            }
        } else if (strcmp(opt, "SinkEndpoint") == 0) {
            if (!*val) {
                return cp_ds_fail(err, IAE, "Tag %s must name a sink", k);
            }
            sink = val;
        } else if (strcmp(opt, "MaxActivePartitions") == 0) {
            char *e;
            long long x = strtoll(val, &e, 10);
            if (!*val || *e || x < 1 || x > 1000000) {
                return cp_ds_fail(err, IAE, "Tag %s must be an integer from 1 to 1000000", k);
            }
            maxp = (uint32_t) x;
        } else {
            return cp_ds_fail(err, IAE,
                              "Unknown changepipe option tag %s; valid: %sValidateJsonLines, "
                              "%sSinkEndpoint, %sMaxActivePartitions",
                              k, CP_DS_TAG_PREFIX, CP_DS_TAG_PREFIX, CP_DS_TAG_PREFIX);
        }
    }
    if (cfg->options.validate_json_lines >= 0) {
        validate = cfg->options.validate_json_lines;
    }
    if (cfg->options.sink) {
        sink = cfg->options.sink;
    }
    if (cfg->options.max_active_partitions) {
        maxp = cfg->options.max_active_partitions;
    }
    if (validate < 0) {
        /* On by default with the native processor: it promises Athena-safe JSON lines. */
        validate = 0;
        for (size_t i = 0; cfg->processing_enabled && i < cfg->nprocessors; i++) {
            validate |= strcmp(cfg->processors[i].type, CP_DS_NATIVE_PROCESSOR) == 0;
        }
    }
    cfg->validate_json = validate;
    cfg->sink = sink;
    cfg->max_active_partitions = maxp;
    return CP_OK;
}

int cp_ds_finish(cp_ds_config *cfg, const char *zoneinfo_dir, cp_ds_err *err)
{
    cp_ds_s3_defaults(&cfg->s3, cfg->dynamic_partitioning);
    if (cfg->backup) {
        cp_ds_s3_defaults(cfg->backup, 0);
    }
    if (!cfg->dp_retry_given) {
        cfg->dp_retry_s = CP_DS_DEFAULT_RETRY_S;
    }
    cfg->buffer_bytes = (uint64_t) cfg->size_mb << 20;
    cfg->buffer_interval_ms = (int64_t) cfg->interval_s * 1000;
    cp_free(cfg->bucket);
    const char *b = cfg->bucket_arn ? strstr(cfg->bucket_arn, ":::") : NULL;
    cfg->bucket = cp_strdup(b ? b + 3 : "");
    cp_free(cfg->source_stream);
    cfg->source_stream = NULL;
    if (cfg->source_stream_arn) {
        const char *s = strstr(cfg->source_stream_arn, ":stream/");
        cfg->source_stream = cp_strdup(s ? s + 8 : "");
    }
    cp_tz_free(cfg->tz);
    cfg->tz = NULL;
    cp_tz *tz = NULL;
    cp_err terr = {0};
    if (cp_tz_load(cfg->custom_time_zone, zoneinfo_dir, &tz, &terr) != CP_OK) {
        return cp_ds_fail(err, IAE, "CustomTimeZone %s is not a supported time zone (%s)",
                          cfg->custom_time_zone, terr.msg);
    }
    cfg->tz = tz;
    return effective_options(cfg, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Semantic rules (firehose.md 1.8)                                                            */

static int compile_flags(const char *text, const char *member, unsigned *flags, cp_ds_err *err)
{
    *flags = 0;
    if (!text) {
        return CP_OK;
    }
    cp_prefix *p = NULL;
    cp_err perr = {0};
    if (cp_prefix_compile(cp_slice_str(text), &p, &perr) != CP_OK) {
        return cp_ds_fail(err, IAE, PREFIX_RULE "%s: %s", member, perr.msg);
    }
    *flags = cp_prefix_flags(p);
    cp_prefix_free(p);
    return CP_OK;
}

/* Rules 4-9 for one S3 shape. `dp`: dynamic partitioning applies to this shape. */
static int check_prefixes(const cp_ds_s3 *s, int dp, const char *what, cp_ds_err *err)
{
    unsigned pf, ef;
    const unsigned keys = CP_PREFIX_USES_QUERY | CP_PREFIX_USES_LAMBDA;
    char member[96];
    snprintf(member, sizeof(member), "%sPrefix", what);
    int rc = compile_flags(s->prefix, member, &pf, err);
    if (rc == CP_OK) {
        snprintf(member, sizeof(member), "%sErrorOutputPrefix", what);
        rc = compile_flags(s->error_output_prefix, member, &ef, err);
    }
    if (rc != CP_OK) {
        return rc;
    }
    if ((pf & keys) && !dp) {
        return cp_ds_fail(err, IAE, MSG_DP_NS);
    }
    if ((pf & CP_PREFIX_HAS_EXPR) && (!s->error_output_prefix || !*s->error_output_prefix)) {
        return cp_ds_fail(err, IAE,
                          PREFIX_RULE "ErrorOutputPrefix cannot be null or empty when Prefix "
                                      "contains expressions");
    }
    if ((ef & CP_PREFIX_HAS_EXPR) && !(ef & CP_PREFIX_USES_ERRTYPE)) {
        return cp_ds_fail(err, IAE,
                          PREFIX_RULE "ErrorOutputPrefix must contain at least one instance of "
                                      "!{firehose:error-output-type} when it contains "
                                      "expressions");
    }
    if (pf & CP_PREFIX_USES_ERRTYPE) {
        return cp_ds_fail(err, IAE,
                          PREFIX_RULE "Prefix can't contain "
                                      "!{firehose:error-output-type}");
    }
    if (ef & keys) {
        return cp_ds_fail(err, IAE,
                          PREFIX_RULE "ErrorOutputPrefix can't contain the partitionKeyFromQuery "
                                      "or partitionKeyFromLambda namespaces");
    }
    return CP_OK;
}

static void supported_list(unsigned mask, char *out, size_t cap)
{
    size_t n = 0;
    int count = 0, total = 0;
    for (int c = 0; c < 5; c++) {
        total += (mask >> c) & 1;
    }
    out[0] = 0;
    for (int c = 0; c < 5; c++) {
        if (!((mask >> c) & 1)) {
            continue;
        }
        count++;
        const char *sep = count == 1 ? "" : count == total ? " and " : ", ";
        n += (size_t) snprintf(out + n, n < cap ? cap - n : 0, "%s%s", sep,
                               cp_ds_compression_name((cp_ds_compression) c));
        if (n >= cap) {
            break;
        }
    }
}

/* Rules shared by the destination and its backup: hints (3), encryption, logging,
 * compression support. */
static int check_s3(const cp_ds_s3 *s, const cp_ds_parse_opts *o, cp_ds_err *err)
{
    if (s->size_given != s->interval_given) {
        return cp_ds_fail(err, IAE,
                          "BufferingHints must specify both SizeInMBs and IntervalInSeconds, or "
                          "neither");
    }
    if (s->kms_key_arn) {
        return cp_ds_fail(err, IAE,
                          "changepipe does not encrypt objects with KMS: use "
                          "{\"NoEncryptionConfig\":\"NoEncryption\"} (EncryptionConfiguration."
                          "KMSEncryptionConfig is not supported)");
    }
    if (s->logging.enabled &&
        (!s->logging.group || !*s->logging.group || !s->logging.stream || !*s->logging.stream)) {
        return cp_ds_fail(err, IAE,
                          "LogGroupName and LogStreamName are required when "
                          "CloudWatchLoggingOptions is enabled");
    }
    unsigned mask = o && o->compressions ? o->compressions
                                         : CP_DS_COMP(CP_DS_UNCOMPRESSED) | CP_DS_COMP(CP_DS_GZIP);
    if (s->compression_given && !(mask & CP_DS_COMP(s->compression))) {
        char list[96];
        supported_list(mask, list, sizeof(list));
        return cp_ds_fail(err, IAE, "changepipe supports %s; CompressionFormat %s is not available",
                          list, cp_ds_compression_name(s->compression));
    }
    return CP_OK;
}

static const char *param(const cp_ds_processor *p, const char *name)
{
    for (size_t i = 0; i < p->nparams; i++) {
        if (strcmp(p->params[i].name, name) == 0) {
            return p->params[i].value;
        }
    }
    return NULL;
}

static int check_processors(const cp_ds_config *cfg, cp_ds_err *err)
{
    for (size_t i = 0; i < cfg->nprocessors; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->processors[j].type, cfg->processors[i].type) == 0) {
                return cp_ds_fail(err, IAE, "Only one processor of type %s is supported",
                                  cfg->processors[i].type);
            }
        }
    }
    for (size_t i = 0; i < cfg->nprocessors; i++) {
        const cp_ds_processor *p = &cfg->processors[i];
        for (size_t j = 0; j < p->nparams; j++) {
            for (size_t k = 0; k < j; k++) {
                if (strcmp(p->params[k].name, p->params[j].name) == 0) {
                    return cp_ds_fail(err, IAE, "Duplicate parameter %s for processor %s",
                                      p->params[j].name, p->type);
                }
            }
        }
        if (strcmp(p->type, "Lambda") == 0 && !param(p, "LambdaArn")) {
            return cp_ds_fail(err, IAE, "LambdaArn is required for the Lambda processor");
        }
        if (strcmp(p->type, "MetadataExtraction") == 0) {
            const char *engine = param(p, "JsonParsingEngine");
            if (!param(p, "MetadataExtractionQuery") || !engine) {
                return cp_ds_fail(err, IAE,
                                  "MetadataExtraction needs the parameters "
                                  "MetadataExtractionQuery and JsonParsingEngine");
            }
            if (strcmp(engine, "JQ-1.6") != 0) {
                return cp_ds_fail(err, IAE, "JsonParsingEngine %s is not supported; use JQ-1.6",
                                  engine);
            }
        }
        if (strcmp(p->type, "RecordDeAggregation") == 0) {
            const char *t = param(p, "SubRecordType");
            if (!t || (strcmp(t, "JSON") != 0 && strcmp(t, "DELIMITED") != 0)) {
                return cp_ds_fail(err, IAE,
                                  "RecordDeAggregation needs SubRecordType JSON or DELIMITED");
            }
            if (strcmp(t, "DELIMITED") == 0 && !param(p, "Delimiter")) {
                return cp_ds_fail(err, IAE,
                                  "Delimiter is required when SubRecordType is DELIMITED");
            }
        }
    }
    return CP_OK;
}

static const cp_ds_processor *find_processor(const cp_ds_config *cfg, const char *type)
{
    for (size_t i = 0; i < cfg->nprocessors; i++) {
        if (strcmp(cfg->processors[i].type, type) == 0) {
            return &cfg->processors[i];
        }
    }
    return NULL;
}

/* Rules 10-13 with dynamic partitioning on. */
static int check_dynamic_partitioning(const cp_ds_config *cfg, const cp_ds_parse_opts *o,
                                      cp_ds_err *err)
{
    const cp_ds_processor *jq = find_processor(cfg, "MetadataExtraction");
    /* The native processor sets keys the way a Lambda does (partitionKeyFromLambda). */
    int lambda = find_processor(cfg, "Lambda") || find_processor(cfg, CP_DS_NATIVE_PROCESSOR);
    if (!cfg->processing_enabled || (!jq && !lambda)) {
        return cp_ds_fail(err, IAE, MSG_DP_PROC);
    }
    cp_prefix *p = NULL;
    cp_err perr = {0};
    if (!cfg->prefix || cp_prefix_compile(cp_slice_str(cfg->prefix), &p, &perr) != CP_OK) {
        return cp_ds_fail(err, IAE, MSG_DP_PREFIX);
    }
    unsigned f = cp_prefix_flags(p);
    int rc = CP_OK;
    if (!(f & (CP_PREFIX_USES_QUERY | CP_PREFIX_USES_LAMBDA))) {
        rc = cp_ds_fail(err, IAE, MSG_DP_PREFIX);
    } else if ((f & CP_PREFIX_USES_LAMBDA) && !lambda) {
        rc = cp_ds_fail(err, IAE, MSG_DP_LAMBDA);
    } else if ((f & CP_PREFIX_USES_QUERY) && !jq) {
        rc = cp_ds_fail(err, IAE, MSG_DP_QUERY);
    }
    if (rc == CP_OK && jq) {
        char *names[CP_DS_MAX_JQ_KEYS + 1] = {0};
        int n =
            cp_prefix_jq_keys(param(jq, "MetadataExtractionQuery"), names, CP_DS_MAX_JQ_KEYS + 1);
        if (n > CP_DS_MAX_JQ_KEYS) {
            rc = cp_ds_fail(err, IAE, "MetadataExtraction JQ Query can't contain more than %d keys",
                            CP_DS_MAX_JQ_KEYS);
        }
        /* Rule 11: every key the query produces must be used by the Prefix. */
        for (int i = 0; rc == CP_OK && i < n && i <= CP_DS_MAX_JQ_KEYS; i++) {
            int used = 0;
            for (size_t k = 0; k < cp_prefix_nkeys(p) && !used; k++) {
                cp_prefix_ns ns;
                const char *name;
                cp_prefix_key(p, k, &ns, &name);
                used = ns == CP_PREFIX_NS_QUERY && strcmp(name, names[i]) == 0;
            }
            if (!used) {
                rc = cp_ds_fail(err, IAE, MSG_JQ_KEYS);
            }
        }
        for (int i = 0; i < n && i <= CP_DS_MAX_JQ_KEYS; i++) {
            cp_free(names[i]);
        }
    }
    cp_prefix_free(p);
    if (rc == CP_OK && o && o->strict) {
        if (cfg->size_mb < CP_DS_DP_MIN_SIZE_MB) {
            rc = cp_ds_fail(err, IAE, MSG_DP_SIZE);
        } else if (cfg->interval_s < CP_DS_DP_MIN_INTERVAL_S) {
            rc = cp_ds_fail(err, IAE, MSG_DP_IVL);
        }
    }
    return rc;
}

static int format_conversion_enabled(const cp_ds_config *cfg)
{
    if (!cfg->format_conversion) {
        return 0;
    }
    cJSON *fc = cJSON_Parse(cfg->format_conversion);
    const cJSON *en = fc ? cJSON_GetObjectItemCaseSensitive(fc, "Enabled") : NULL;
    int on = !cJSON_IsFalse(en); /* the API documents Enabled as defaulting to true */
    cJSON_Delete(fc);
    return on;
}

int cp_ds_validate(const cp_ds_config *cfg, const cp_ds_config *prev, const cp_ds_parse_opts *o,
                   cp_ds_err *err)
{
    if (prev && prev->dynamic_partitioning != cfg->dynamic_partitioning) {
        return cp_ds_fail(err, IAE, MSG_DP_CHANGE); /* rule 17, before what would follow */
    }
    int rc = check_s3(&cfg->s3, o, err);
    if (rc == CP_OK) {
        rc = check_prefixes(&cfg->s3, cfg->dynamic_partitioning, "", err);
    }
    if (rc == CP_OK) {
        rc = check_processors(cfg, err);
    }
    if (rc == CP_OK && cfg->dynamic_partitioning) {
        rc = check_dynamic_partitioning(cfg, o, err);
    }
    if (rc == CP_OK && !cfg->dynamic_partitioning && find_processor(cfg, "MetadataExtraction")) {
        rc = cp_ds_fail(err, IAE, MSG_JQ_NO_DP); /* rule 13 */
    }
    if (rc == CP_OK && format_conversion_enabled(cfg)) {
        /* Rule 16, then our own limit: no Parquet/ORC writer. */
        if (cfg->compression != CP_DS_UNCOMPRESSED) {
            rc = cp_ds_fail(err, IAE,
                            "CompressionFormat must be UNCOMPRESSED when data format conversion "
                            "is enabled");
        } else if (o && o->strict && cfg->size_mb < 64) {
            rc = cp_ds_fail(err, IAE,
                            "BufferingHints.SizeInMBs must be at least 64 when data format "
                            "conversion is enabled.");
        } else {
            rc = cp_ds_fail(err, IAE,
                            "changepipe does not support DataFormatConversionConfiguration "
                            "(Parquet/ORC conversion); set Enabled to false or remove it");
        }
    }
    if (rc == CP_OK && prev && prev->backup_enabled && !cfg->backup_enabled) {
        rc = cp_ds_fail(err, IAE,
                        "S3 backup cannot be disabled once it is enabled for a Firehose stream");
    }
    if (rc == CP_OK && cfg->backup_enabled && !cfg->backup) {
        rc = cp_ds_fail(err, IAE, "S3BackupConfiguration is required when S3BackupMode is Enabled");
    }
    if (rc == CP_OK && cfg->backup) {
        rc = check_s3(cfg->backup, o, err);
        if (rc == CP_OK) {
            rc = check_prefixes(cfg->backup, 0, "S3BackupConfiguration.", err);
        }
    }
    if (rc == CP_OK && cfg->backup_enabled && !(o && o->backup_supported)) {
        rc = cp_ds_fail(err, IAE,
                        "changepipe does not support S3BackupMode Enabled (source record "
                        "backup) yet; use Disabled");
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* CreateDeliveryStream                                                                        */

static const char *const other_destinations[] = {
    "RedshiftDestinationConfiguration",
    "ElasticsearchDestinationConfiguration",
    "AmazonopensearchserviceDestinationConfiguration",
    "SplunkDestinationConfiguration",
    "HttpEndpointDestinationConfiguration",
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
    NULL};

static int tag_cmp(const void *a, const void *b)
{
    return strcmp(((const cp_ds_tag *) a)->key, ((const cp_ds_tag *) b)->key);
}

/* Sort tags by key; a key given twice keeps its last value. */
static size_t tags_normalize(cp_ds_tag *tags, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < k && strcmp(tags[j].key, tags[i].key) != 0) {
            j++;
        }
        if (j < k) {
            cp_free(tags[j].value);
            tags[j].value = tags[i].value;
            cp_free(tags[i].key);
        } else {
            tags[k++] = tags[i];
        }
    }
    qsort(tags, k, sizeof(*tags), tag_cmp);
    return k;
}

/* arn:<partition>:kinesis:<region>:... names `region`. */
static int same_region(const char *arn, const char *region)
{
    char needle[80];
    snprintf(needle, sizeof(needle), ":kinesis:%s:", region);
    return strstr(arn, needle) != NULL;
}

/* The shape pass and, unless `trusted`, the semantic rules. */
static int parse_root(const cJSON *root, const cp_ds_parse_opts *o, int trusted, cp_ds_config **out,
                      cp_ds_err *err)
{
    *out = NULL;
    cp_vctx v;
    cp_v_init(&v);
    cp_ds_config *cfg = cp_calloc(1, sizeof(*cfg));
    options_clear(&cfg->options);
    const char *s, *type = "DirectPut";
    if (!cJSON_IsObject(root)) {
        v.serr = 1;
        snprintf(v.smsg, sizeof(v.smsg), "Start of structure or map expected");
    }
    if (cp_v_string(&v, root, "DeliveryStreamName", "", &cp_spec_stream_name, &s)) {
        cfg->name = cp_strdup(s);
    }
    cp_v_string(&v, root, "DeliveryStreamType", "", &cp_spec_stream_type, &type);
    cfg->type = strcmp(type, "KinesisStreamAsSource") == 0 ? CP_DS_KINESIS : CP_DS_DIRECT_PUT;
    int has_kinesis = 0;
    cp_ds_parse_source(&v, root, cfg, &has_kinesis);
    const cJSON *ext = cp_v_object(&v, root, "ExtendedS3DestinationConfiguration", "", 0);
    const cJSON *legacy = cp_v_object(&v, root, "S3DestinationConfiguration", "", 0);
    int ndest = !!ext + !!legacy;
    const char *other = NULL;
    for (const char *const *d = other_destinations; *d; d++) {
        if (cp_v_member(root, *d)) {
            ndest++;
            other = other ? other : *d;
        }
    }
    if (ext) {
        cp_ds_parse_destination(&v, ext, "extendedS3DestinationConfiguration", 1, 0, cfg);
    } else if (legacy) {
        cfg->legacy_s3 = 1;
        cp_ds_parse_destination(&v, legacy, "s3DestinationConfiguration", 0, 0, cfg);
    }
    const cJSON *tags = cp_v_array(&v, root, "Tags", "", 0, 1, CP_DS_MAX_TAGS);
    if (tags) {
        int n = cp_v_tags(&v, tags, "tags", &cfg->tags);
        cfg->ntags = tags_normalize(cfg->tags, (size_t) (n > 0 ? n : 0));
    }
    const cJSON *opts = cp_v_object(&v, root, "ChangepipeOptions", "", 0);
    if (opts) {
        cp_ds_parse_options(&v, opts, &cfg->options);
    }
    int rc = cp_v_result(&v, err);
    if (rc == CP_OK && v.sem[0]) {
        rc = cp_ds_fail(err, IAE, "%s", v.sem);
    }
    cp_v_free(&v);
    if (rc == CP_OK && !trusted) {
        if (strcmp(type, "MSKAsSource") == 0 || strcmp(type, "DatabaseAsSource") == 0) {
            rc = cp_ds_fail(err, IAE,
                            "changepipe supports the DirectPut and KinesisStreamAsSource "
                            "delivery stream types, not %s",
                            type);
        } else if (ndest != 1) {
            rc = cp_ds_fail(err, IAE, MSG_ONE_DEST);
        } else if (other) {
            rc = cp_ds_fail(err, IAE,
                            "changepipe supports S3 destinations only "
                            "(ExtendedS3DestinationConfiguration or S3DestinationConfiguration), "
                            "not %s",
                            other);
        } else if (cfg->type == CP_DS_KINESIS && !has_kinesis) {
            rc = cp_ds_fail(err, IAE,
                            "KinesisStreamSourceConfiguration is required when "
                            "DeliveryStreamType is KinesisStreamAsSource");
        } else if (cfg->type != CP_DS_KINESIS && has_kinesis) {
            rc = cp_ds_fail(err, IAE,
                            "KinesisStreamSourceConfiguration is only allowed when "
                            "DeliveryStreamType is KinesisStreamAsSource");
        } else if (cfg->sse_key_type && cfg->type == CP_DS_KINESIS) {
            rc = cp_ds_fail(err, IAE,
                            "Server-side encryption (DeliveryStreamEncryptionConfigurationInput) "
                            "is only supported for DirectPut delivery streams; the source "
                            "stream's encryption applies to KinesisStreamAsSource");
        } else if (cfg->sse_key_type && strcmp(cfg->sse_key_type, "CUSTOMER_MANAGED_CMK") == 0 &&
                   !cfg->sse_key_arn) {
            rc = cp_ds_fail(err, IAE, "KeyARN is required when KeyType is CUSTOMER_MANAGED_CMK");
        } else if (cfg->sse_key_type && strcmp(cfg->sse_key_type, "AWS_OWNED_CMK") == 0 &&
                   cfg->sse_key_arn) {
            rc = cp_ds_fail(err, IAE, "KeyARN must not be given when KeyType is AWS_OWNED_CMK");
        } else if (o && o->strict && cfg->source_stream_arn && o->region &&
                   !same_region(cfg->source_stream_arn, o->region)) {
            rc = cp_ds_fail(err, IAE,
                            "The source stream %s must be in the Firehose stream's region %s",
                            cfg->source_stream_arn, o->region);
        } else {
            cp_ds_s3_defaults(&cfg->s3, cfg->dynamic_partitioning);
            rc = cp_ds_validate(cfg, NULL, o, err);
        }
    }
    if (rc == CP_OK) {
        rc = cp_ds_finish(cfg, o ? o->zoneinfo_dir : NULL, err);
    }
    if (rc != CP_OK) {
        cp_ds_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return CP_OK;
}

static void set_identity(cp_ds_config *cfg, const char *region, const char *account)
{
    cp_free(cfg->region);
    cp_free(cfg->account);
    cp_free(cfg->arn);
    cfg->region = cp_strdup(region && *region ? region : "us-east-1");
    cfg->account = cp_strdup(account && *account ? account : "000000000000");
    cp_buf arn = CP_BUF_INIT;
    cp_buf_printf(&arn, "arn:aws:firehose:%s:%s:deliverystream/%s", cfg->region, cfg->account,
                  cfg->name ? cfg->name : "");
    cfg->arn = arn.p;
}

int cp_ds_config_parse(cp_slice json, const cp_ds_parse_opts *opts, cp_ds_config **out,
                       cp_ds_err *err)
{
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(json.p, json.len);
    if (!root) {
        return cp_ds_fail(err, "SerializationException", "Malformed JSON request body");
    }
    int rc = parse_root(root, opts, 0, out, err);
    cJSON_Delete(root);
    if (rc != CP_OK) {
        return rc;
    }
    cp_ds_config *cfg = *out;
    set_identity(cfg, opts ? opts->region : NULL, opts ? opts->account : NULL);
    cfg->version = 1;
    cfg->create_ms = opts && opts->now_ms ? opts->now_ms : cp_clock_now_ms();
    cfg->start_ms = cfg->create_ms; /* a Kinesis source is read from LATEST at creation */
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Persistence                                                                                 */

static void put_kv(cp_buf *o, int *first, const char *key, const char *value)
{
    if (!value) {
        return;
    }
    if (!*first) {
        cp_buf_putc(o, ',');
    }
    *first = 0;
    cp_json_put_kv_str(o, key, cp_slice_str(value));
}

static void put_key(cp_buf *o, int *first, const char *key)
{
    if (!*first) {
        cp_buf_putc(o, ',');
    }
    *first = 0;
    cp_json_put_key(o, key);
}

/* An S3 shape with the members that were given, as given; `open` leaves the object open for
 * more members. */
static void persist_s3(cp_buf *o, const cp_ds_s3 *s, int open)
{
    int first = 1;
    cp_buf_putc(o, '{');
    put_kv(o, &first, "RoleARN", s->role_arn);
    put_kv(o, &first, "BucketARN", s->bucket_arn);
    put_kv(o, &first, "Prefix", s->prefix);
    put_kv(o, &first, "ErrorOutputPrefix", s->error_output_prefix);
    if (s->size_given || s->interval_given) {
        put_key(o, &first, "BufferingHints");
        int f2 = 1;
        cp_buf_putc(o, '{');
        if (s->size_given) {
            put_key(o, &f2, "SizeInMBs");
            cp_buf_printf(o, "%u", s->size_mb);
        }
        if (s->interval_given) {
            put_key(o, &f2, "IntervalInSeconds");
            cp_buf_printf(o, "%u", s->interval_s);
        }
        cp_buf_putc(o, '}');
    }
    if (s->compression_given) {
        put_kv(o, &first, "CompressionFormat", cp_ds_compression_name(s->compression));
    }
    if (s->encryption_given) {
        put_key(o, &first, "EncryptionConfiguration");
        if (s->kms_key_arn) {
            cp_buf_puts(o, "{\"KMSEncryptionConfig\":{");
            cp_json_put_kv_str(o, "AWSKMSKeyARN", cp_slice_str(s->kms_key_arn));
            cp_buf_puts(o, "}}");
        } else {
            cp_buf_puts(o, "{\"NoEncryptionConfig\":\"NoEncryption\"}");
        }
    }
    if (s->logging.given) {
        put_key(o, &first, "CloudWatchLoggingOptions");
        int f2 = 1;
        cp_buf_putc(o, '{');
        put_key(o, &f2, "Enabled");
        cp_buf_puts(o, s->logging.enabled ? "true" : "false");
        put_kv(o, &f2, "LogGroupName", s->logging.group);
        put_kv(o, &f2, "LogStreamName", s->logging.stream);
        cp_buf_putc(o, '}');
    }
    if (!open) {
        cp_buf_putc(o, '}');
    }
}

void cp_ds_config_to_json(const cp_ds_config *cfg, cp_buf *o)
{
    int first = 1;
    cp_buf_putc(o, '{');
    put_kv(o, &first, "DeliveryStreamName", cfg->name);
    put_kv(o, &first, "DeliveryStreamType", cp_ds_type_name(cfg->type));
    if (cfg->source_stream_arn) {
        put_key(o, &first, "KinesisStreamSourceConfiguration");
        int f2 = 1;
        cp_buf_putc(o, '{');
        put_kv(o, &f2, "KinesisStreamARN", cfg->source_stream_arn);
        put_kv(o, &f2, "RoleARN", cfg->source_role_arn);
        cp_buf_putc(o, '}');
    }
    if (cfg->sse_key_type) {
        put_key(o, &first, "DeliveryStreamEncryptionConfigurationInput");
        int f2 = 1;
        cp_buf_putc(o, '{');
        put_kv(o, &f2, "KeyType", cfg->sse_key_type);
        put_kv(o, &f2, "KeyARN", cfg->sse_key_arn);
        cp_buf_putc(o, '}');
    }
    put_key(o, &first,
            cfg->legacy_s3 ? "S3DestinationConfiguration" : "ExtendedS3DestinationConfiguration");
    persist_s3(o, &cfg->s3, !cfg->legacy_s3);
    if (!cfg->legacy_s3) {
        if (cfg->processing_given) {
            cp_buf_printf(o, ",\"ProcessingConfiguration\":{\"Enabled\":%s,\"Processors\":[",
                          cfg->processing_enabled ? "true" : "false");
            for (size_t i = 0; i < cfg->nprocessors; i++) {
                const cp_ds_processor *p = &cfg->processors[i];
                cp_buf_puts(o, i ? ",{" : "{");
                cp_json_put_kv_str(o, "Type", cp_slice_str(p->type));
                cp_buf_puts(o, ",\"Parameters\":[");
                for (size_t j = 0; j < p->nparams; j++) {
                    cp_buf_puts(o, j ? ",{" : "{");
                    cp_json_put_kv_str(o, "ParameterName", cp_slice_str(p->params[j].name));
                    cp_buf_putc(o, ',');
                    cp_json_put_kv_str(o, "ParameterValue", cp_slice_str(p->params[j].value));
                    cp_buf_putc(o, '}');
                }
                cp_buf_puts(o, "]}");
            }
            cp_buf_puts(o, "]}");
        }
        if (cfg->backup_mode_given) {
            cp_buf_printf(o, ",\"S3BackupMode\":\"%s\"",
                          cfg->backup_enabled ? "Enabled" : "Disabled");
        }
        if (cfg->backup) {
            cp_buf_puts(o, ",\"S3BackupConfiguration\":");
            persist_s3(o, cfg->backup, 0);
        }
        if (cfg->format_conversion) {
            cp_buf_printf(o, ",\"DataFormatConversionConfiguration\":%s", cfg->format_conversion);
        }
        if (cfg->dp_given) {
            cp_buf_printf(o, ",\"DynamicPartitioningConfiguration\":{\"Enabled\":%s",
                          cfg->dynamic_partitioning ? "true" : "false");
            if (cfg->dp_retry_given) {
                cp_buf_printf(o, ",\"RetryOptions\":{\"DurationInSeconds\":%u}", cfg->dp_retry_s);
            }
            cp_buf_putc(o, '}');
        }
        if (cfg->file_extension) {
            cp_buf_putc(o, ',');
            cp_json_put_kv_str(o, "FileExtension", cp_slice_str(cfg->file_extension));
        }
        if (cfg->custom_time_zone) {
            cp_buf_putc(o, ',');
            cp_json_put_kv_str(o, "CustomTimeZone", cp_slice_str(cfg->custom_time_zone));
        }
        cp_buf_putc(o, '}');
    }
    if (cfg->ntags) {
        put_key(o, &first, "Tags");
        cp_buf_putc(o, '[');
        for (size_t i = 0; i < cfg->ntags; i++) {
            cp_buf_puts(o, i ? ",{" : "{");
            cp_json_put_kv_str(o, "Key", cp_slice_str(cfg->tags[i].key));
            cp_buf_putc(o, ',');
            cp_json_put_kv_str(o, "Value", cp_slice_str(cfg->tags[i].value));
            cp_buf_putc(o, '}');
        }
        cp_buf_putc(o, ']');
    }
    const cp_ds_options *op = &cfg->options;
    if (op->validate_json_lines >= 0 || op->sink || op->max_active_partitions) {
        put_key(o, &first, "ChangepipeOptions");
        int f2 = 1;
        cp_buf_putc(o, '{');
        if (op->validate_json_lines >= 0) {
            put_key(o, &f2, "ValidateJsonLines");
            cp_buf_puts(o, op->validate_json_lines ? "true" : "false");
        }
        put_kv(o, &f2, "SinkEndpoint", op->sink);
        if (op->max_active_partitions) {
            put_key(o, &f2, "MaxActivePartitions");
            cp_buf_printf(o, "%u", op->max_active_partitions);
        }
        cp_buf_putc(o, '}');
    }
    put_key(o, &first, "ChangepipeState");
    cp_buf_puts(o, "{\"Format\":1");
    cp_buf_putc(o, ',');
    cp_json_put_kv_str(o, "Region", cp_slice_str(cfg->region ? cfg->region : ""));
    cp_buf_putc(o, ',');
    cp_json_put_kv_str(o, "Account", cp_slice_str(cfg->account ? cfg->account : ""));
    cp_buf_printf(o,
                  ",\"VersionId\":%u,\"CreateTimestamp\":%lld,\"LastUpdateTimestamp\":%lld,"
                  "\"DeliveryStartTimestamp\":%lld}",
                  cfg->version, (long long) cfg->create_ms, (long long) cfg->update_ms,
                  (long long) cfg->start_ms);
    cp_buf_putc(o, '}');
}

static int64_t state_int(const cJSON *st, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(st, name);
    return cJSON_IsNumber(m) ? (int64_t) m->valuedouble : 0;
}

int cp_ds_config_from_json(cp_slice json, cp_ds_config **out, cp_err *err)
{
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(json.p, json.len);
    const cJSON *st = root ? cJSON_GetObjectItemCaseSensitive(root, "ChangepipeState") : NULL;
    if (!cJSON_IsObject(st)) {
        cJSON_Delete(root);
        return cp_err_set(err, CP_ECORRUPT, "not a saved delivery stream configuration");
    }
    cp_ds_err derr = CP_DS_ERR_INIT;
    cp_ds_config *cfg = NULL;
    int rc = parse_root(root, NULL, 1, &cfg, &derr);
    if (rc == CP_OK) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(st, "Region");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(st, "Account");
        set_identity(cfg, cJSON_IsString(r) ? r->valuestring : NULL,
                     cJSON_IsString(a) ? a->valuestring : NULL);
        cfg->version = (uint32_t) state_int(st, "VersionId");
        cfg->create_ms = state_int(st, "CreateTimestamp");
        cfg->update_ms = state_int(st, "LastUpdateTimestamp");
        cfg->start_ms = state_int(st, "DeliveryStartTimestamp");
        *out = cfg;
    } else {
        /* Only the time zone can go missing between save and load; all else is corruption. */
        int tz = derr.msg.p && strstr(derr.msg.p, "CustomTimeZone");
        rc = cp_err_set(err, tz ? CP_ENOTFOUND : CP_ECORRUPT, "saved delivery stream: %s",
                        derr.msg.p ? derr.msg.p : "invalid");
    }
    cp_ds_err_free(&derr);
    cJSON_Delete(root);
    return rc;
}

int cp_ds_config_copy(const cp_ds_config *cfg, cp_ds_config **out, cp_err *err)
{
    cp_buf json = CP_BUF_INIT;
    cp_ds_config_to_json(cfg, &json);
    int rc = cp_ds_config_from_json(cp_buf_slice(&json), out, err);
    cp_buf_free(&json);
    return rc;
}

void cp_ds_put_time(cp_buf *out, int64_t ms)
{
    int64_t s = ms / 1000;
    int frac = (int) (ms % 1000);
    if (frac < 0) {
        frac += 1000;
        s--;
    }
    if (frac == 0) {
        cp_buf_printf(out, "%lld.0", (long long) s);
        return;
    }
    char f[4];
    snprintf(f, sizeof(f), "%03d", frac);
    int n = 3;
    while (f[n - 1] == '0') {
        n--;
    }
    cp_buf_printf(out, "%lld.%.*s", (long long) s, n, f);
}
