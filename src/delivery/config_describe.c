/* SPDX-License-Identifier: MIT */
/*
 * DescribeDeliveryStream rendering (firehose.md 1.9): what AWS echoes for an extended S3
 * destination, defaults filled in, both description shapes, Lambda parameters that equal their
 * defaults left out (AWS does not store them; terraform-provider-aws#35137).
 */
#include "delivery/config.h"

#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "delivery/config_int.h"

static void kv(cp_buf *o, const char *key, const char *value)
{
    cp_buf_putc(o, ',');
    cp_json_put_kv_str(o, key, cp_slice_str(value));
}

static int num_is(const char *s, double want)
{
    char *e;
    double d = strtod(s, &e);
    return e != s && !*e && d == want;
}

/* Firehose drops Lambda parameters that equal their defaults before storing them. */
static int default_param(const cp_ds_config *cfg, const cp_ds_processor *p,
                         const cp_processor_param *prm)
{
    if (strcmp(p->type, "Lambda") != 0) {
        return 0;
    }
    if (strcmp(prm->name, "NumberOfRetries") == 0) {
        return num_is(prm->value, 3);
    }
    if (strcmp(prm->name, "RoleArn") == 0) {
        return cfg->role_arn && strcmp(prm->value, cfg->role_arn) == 0;
    }
    if (strcmp(prm->name, "BufferSizeInMBs") == 0) {
        return num_is(prm->value, 1);
    }
    if (strcmp(prm->name, "BufferIntervalInSeconds") == 0) {
        return num_is(prm->value, 60);
    }
    return 0;
}

/* The members S3DestinationDescription and ExtendedS3DestinationDescription share, with
 * defaults filled; leaves the object open. */
static void s3_common(cp_buf *o, const cp_ds_s3 *s)
{
    cp_buf_putc(o, '{');
    cp_json_put_kv_str(o, "RoleARN", cp_slice_str(s->role_arn ? s->role_arn : ""));
    kv(o, "BucketARN", s->bucket_arn ? s->bucket_arn : "");
    kv(o, "Prefix", s->prefix ? s->prefix : "");
    if (s->error_output_prefix) {
        kv(o, "ErrorOutputPrefix", s->error_output_prefix);
    }
    cp_buf_printf(o, ",\"BufferingHints\":{\"SizeInMBs\":%u,\"IntervalInSeconds\":%u}", s->size_mb,
                  s->interval_s);
    kv(o, "CompressionFormat", cp_ds_compression_name(s->compression));
    if (s->kms_key_arn) {
        cp_buf_puts(o, ",\"EncryptionConfiguration\":{\"KMSEncryptionConfig\":{");
        cp_json_put_kv_str(o, "AWSKMSKeyARN", cp_slice_str(s->kms_key_arn));
        cp_buf_puts(o, "}}");
    } else {
        cp_buf_puts(o, ",\"EncryptionConfiguration\":{\"NoEncryptionConfig\":\"NoEncryption\"}");
    }
    cp_buf_printf(o, ",\"CloudWatchLoggingOptions\":{\"Enabled\":%s",
                  s->logging.enabled ? "true" : "false");
    if (s->logging.group) {
        kv(o, "LogGroupName", s->logging.group);
    }
    if (s->logging.stream) {
        kv(o, "LogStreamName", s->logging.stream);
    }
    cp_buf_putc(o, '}');
}

static void processing(cp_buf *o, const cp_ds_config *cfg)
{
    cp_buf_printf(o, ",\"ProcessingConfiguration\":{\"Enabled\":%s,\"Processors\":[",
                  cfg->processing_enabled ? "true" : "false");
    for (size_t i = 0; i < cfg->nprocessors; i++) {
        const cp_ds_processor *p = &cfg->processors[i];
        cp_buf_puts(o, i ? ",{" : "{");
        cp_json_put_kv_str(o, "Type", cp_slice_str(p->type));
        cp_buf_puts(o, ",\"Parameters\":[");
        int first = 1;
        for (size_t j = 0; j < p->nparams; j++) {
            if (default_param(cfg, p, &p->params[j])) {
                continue;
            }
            cp_buf_puts(o, first ? "{" : ",{");
            first = 0;
            cp_json_put_kv_str(o, "ParameterName", cp_slice_str(p->params[j].name));
            kv(o, "ParameterValue", p->params[j].value);
            cp_buf_putc(o, '}');
        }
        cp_buf_puts(o, "]}");
    }
    cp_buf_puts(o, "]}");
}

static void extended(cp_buf *o, const cp_ds_config *cfg)
{
    s3_common(o, &cfg->s3);
    processing(o, cfg);
    kv(o, "S3BackupMode", cfg->backup_enabled ? "Enabled" : "Disabled");
    if (cfg->backup) {
        cp_buf_puts(o, ",\"S3BackupDescription\":");
        s3_common(o, cfg->backup);
        cp_buf_putc(o, '}');
    }
    if (cfg->format_conversion) {
        cp_buf_printf(o, ",\"DataFormatConversionConfiguration\":%s", cfg->format_conversion);
    }
    if (cfg->dp_given) {
        cp_buf_printf(o, ",\"DynamicPartitioningConfiguration\":{\"Enabled\":%s",
                      cfg->dynamic_partitioning ? "true" : "false");
        if (cfg->dynamic_partitioning || cfg->dp_retry_given) {
            cp_buf_printf(o, ",\"RetryOptions\":{\"DurationInSeconds\":%u}", cfg->dp_retry_s);
        }
        cp_buf_putc(o, '}');
    }
    if (cfg->file_extension && *cfg->file_extension) {
        kv(o, "FileExtension", cfg->file_extension);
    }
    if (cfg->custom_time_zone && *cfg->custom_time_zone) {
        kv(o, "CustomTimeZone", cfg->custom_time_zone);
    }
    cp_buf_putc(o, '}');
}

void cp_ds_config_describe(const cp_ds_config *cfg, const cp_ds_state *state, int destinations,
                           cp_buf *o)
{
    cp_ds_status status = state ? state->status : CP_DS_ACTIVE;
    cp_buf_puts(o, "{\"DeliveryStreamDescription\":{");
    cp_json_put_kv_str(o, "DeliveryStreamName", cp_slice_str(cfg->name));
    kv(o, "DeliveryStreamARN", cfg->arn ? cfg->arn : "");
    kv(o, "DeliveryStreamStatus", cp_ds_status_name(status));
    if (state && state->failure_type[0]) {
        cp_buf_puts(o, ",\"FailureDescription\":{");
        cp_json_put_kv_str(o, "Type", cp_slice_str(state->failure_type));
        kv(o, "Details", state->failure_details);
        cp_buf_putc(o, '}');
    }
    if (cfg->sse_key_type && *cfg->sse_key_type) {
        cp_buf_puts(o, ",\"DeliveryStreamEncryptionConfiguration\":{");
        if (cfg->sse_key_arn) {
            cp_json_put_kv_str(o, "KeyARN", cp_slice_str(cfg->sse_key_arn));
            cp_buf_putc(o, ',');
        }
        cp_json_put_kv_str(o, "KeyType", cp_slice_str(cfg->sse_key_type));
        cp_buf_puts(o, ",\"Status\":\"ENABLED\"}");
    } else {
        cp_buf_puts(o, ",\"DeliveryStreamEncryptionConfiguration\":{\"Status\":\"DISABLED\"}");
    }
    kv(o, "DeliveryStreamType", cp_ds_type_name(cfg->type));
    cp_buf_printf(o, ",\"VersionId\":\"%u\",\"CreateTimestamp\":", cfg->version);
    cp_ds_put_time(o, cfg->create_ms);
    if (cfg->update_ms) {
        cp_buf_puts(o, ",\"LastUpdateTimestamp\":");
        cp_ds_put_time(o, cfg->update_ms);
    }
    if (cfg->type == CP_DS_KINESIS) {
        cp_buf_puts(o, ",\"Source\":{\"KinesisStreamSourceDescription\":{");
        cp_json_put_kv_str(o, "KinesisStreamARN", cp_slice_str(cfg->source_stream_arn));
        kv(o, "RoleARN", cfg->source_role_arn ? cfg->source_role_arn : "");
        cp_buf_puts(o, ",\"DeliveryStartTimestamp\":");
        cp_ds_put_time(o, cfg->start_ms);
        cp_buf_puts(o, "}}");
    }
    cp_buf_puts(o, ",\"Destinations\":[");
    if (destinations) {
        cp_buf_puts(o, "{\"DestinationId\":\"" CP_DS_DESTINATION_ID
                       "\",\"ExtendedS3DestinationDescription\":");
        extended(o, cfg);
        cp_buf_puts(o, ",\"S3DestinationDescription\":");
        s3_common(o, &cfg->s3);
        cp_buf_puts(o, "}}");
    }
    cp_buf_puts(o, "],\"HasMoreDestinations\":false}}");
}
