/* SPDX-License-Identifier: MIT */
/*
 * Delivery-stream configuration: the article's two streams (parse, derived values, exact
 * DescribeDeliveryStream output), every create-time rule of firehose.md 1.8 in default and
 * strict mode, persistence round trips, UpdateDestination merges and tags.
 */
#include "cpt.h"

#include "core/mem.h"
#include "delivery/config.h"

#define NOW 1767225600123LL

/* ------------------------------------------------------------------------------------------ */
/* The article's delivery streams                                                              */

#define ROLE_S3    "arn:aws:iam::123456789012:role/firehose-s3-role"
#define ROLE_KDS   "arn:aws:iam::123456789012:role/firehose-kinesis-role"
#define STREAM_ARN "arn:aws:kinesis:ap-northeast-2:123456789012:stream/livestream-comments"
#define BUCKET_ARN "arn:aws:s3:::livestream-comments-bucket"
#define LAMBDA_ARN "arn:aws:lambda:ap-northeast-2:123456789012:function:flatten:$LATEST"

/* By LivestreamID: dynamic partitioning with the key from the Lambda. */
static const char by_id[] =
    "{\"DeliveryStreamName\":\"livestream-comments-by-id\","
    "\"DeliveryStreamType\":\"KinesisStreamAsSource\","
    "\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":\"" STREAM_ARN "\","
    "\"RoleARN\":\"" ROLE_KDS "\"},"
    "\"ExtendedS3DestinationConfiguration\":{\"RoleARN\":\"" ROLE_S3 "\","
    "\"BucketARN\":\"" BUCKET_ARN "\","
    "\"Prefix\":\"Livestreams/LivestreamID=!{partitionKeyFromLambda:LivestreamID}/\","
    "\"ErrorOutputPrefix\":\"errors/!{firehose:error-output-type}/\","
    "\"BufferingHints\":{\"SizeInMBs\":64,\"IntervalInSeconds\":60},"
    "\"CompressionFormat\":\"UNCOMPRESSED\","
    "\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":[{\"Type\":\"Lambda\","
    "\"Parameters\":[{\"ParameterName\":\"LambdaArn\",\"ParameterValue\":\"" LAMBDA_ARN "\"},"
    "{\"ParameterName\":\"NumberOfRetries\",\"ParameterValue\":\"3\"},"
    "{\"ParameterName\":\"RoleArn\",\"ParameterValue\":\"" ROLE_S3 "\"},"
    "{\"ParameterName\":\"BufferSizeInMBs\",\"ParameterValue\":\"1\"},"
    "{\"ParameterName\":\"BufferIntervalInSeconds\",\"ParameterValue\":\"60\"}]}]},"
    "\"DynamicPartitioningConfiguration\":{\"Enabled\":true,"
    "\"RetryOptions\":{\"DurationInSeconds\":300}}}}";

/* By time: no dynamic partitioning, timestamp prefix, gzip, Seoul time. */
static const char by_time[] =
    "{\"DeliveryStreamName\":\"livestream-comments-by-time\","
    "\"DeliveryStreamType\":\"KinesisStreamAsSource\","
    "\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":\"" STREAM_ARN "\","
    "\"RoleARN\":\"" ROLE_KDS "\"},"
    "\"ExtendedS3DestinationConfiguration\":{\"RoleARN\":\"" ROLE_S3 "\","
    "\"BucketARN\":\"" BUCKET_ARN "\","
    "\"Prefix\":\"Livestreams/!{timestamp:yyyy/MM/dd/HH/mm/ss/}\","
    "\"ErrorOutputPrefix\":\"errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/\","
    "\"BufferingHints\":{\"SizeInMBs\":5,\"IntervalInSeconds\":60},"
    "\"CompressionFormat\":\"GZIP\","
    "\"EncryptionConfiguration\":{\"NoEncryptionConfig\":\"NoEncryption\"},"
    "\"CloudWatchLoggingOptions\":{\"Enabled\":true,"
    "\"LogGroupName\":\"/aws/kinesisfirehose/livestream-comments-by-time\","
    "\"LogStreamName\":\"DestinationDelivery\"},"
    "\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":[{\"Type\":\"Lambda\","
    "\"Parameters\":[{\"ParameterName\":\"LambdaArn\",\"ParameterValue\":\"" LAMBDA_ARN "\"},"
    "{\"ParameterName\":\"NumberOfRetries\",\"ParameterValue\":\"5\"},"
    "{\"ParameterName\":\"RoleArn\",\"ParameterValue\":\"" ROLE_KDS "\"},"
    "{\"ParameterName\":\"BufferSizeInMBs\",\"ParameterValue\":\"1.0\"}]}]},"
    "\"FileExtension\":\".json.gz\",\"CustomTimeZone\":\"Asia/Seoul\"},"
    "\"Tags\":[{\"Key\":\"team\",\"Value\":\"live\"},{\"Key\":\"changepipe:ValidateJsonLines\","
    "\"Value\":\"true\"}]}";

static cp_ds_parse_opts opts(int strict)
{
    cp_ds_parse_opts o = {0};
    o.strict = strict;
    o.region = "ap-northeast-2";
    o.account = "123456789012";
    o.now_ms = NOW;
    return o;
}

static cp_ds_config *parse_ok(const char *json, int strict)
{
    cp_ds_parse_opts o = opts(strict);
    cp_ds_config *cfg = NULL;
    cp_ds_err e = CP_DS_ERR_INIT;
    int rc = cp_ds_config_parse(cp_slice_str(json), &o, &cfg, &e);
    if (rc != CP_OK) {
        CPT_FAIL_AT("parse failed: %s: %s", e.type, e.msg.p);
    }
    cp_ds_err_free(&e);
    return cfg;
}

static void article_by_id_parses(void)
{
    cp_ds_config *c = parse_ok(by_id, 1); /* passes AWS's own rules too */
    CPT_EQ_STR(c->name, "livestream-comments-by-id");
    CPT_EQ_INT(c->type, CP_DS_KINESIS);
    CPT_EQ_STR(c->source_stream, "livestream-comments");
    CPT_EQ_STR(c->bucket, "livestream-comments-bucket");
    CPT_EQ_STR(c->prefix, "Livestreams/LivestreamID=!{partitionKeyFromLambda:LivestreamID}/");
    CPT_EQ_INT(c->buffer_bytes, 64ull << 20);
    CPT_EQ_INT(c->buffer_interval_ms, 60000);
    CPT_EQ_INT(c->dynamic_partitioning, 1);
    CPT_EQ_INT(c->dp_retry_s, 300);
    CPT_EQ_INT(c->compression, CP_DS_UNCOMPRESSED);
    CPT_EQ_STR(cp_ds_config_extension(c), "");
    CPT_EQ_STR(cp_ds_config_lambda_arn(c), LAMBDA_ARN);
    CPT_EQ_INT(c->processing_enabled, 1);
    CPT_EQ_INT(c->nprocessors, 1);
    CPT_EQ_INT(c->processors[0].nparams, 5); /* all kept; Describe hides the defaults */
    CPT_EQ_STR(cp_tz_name(c->tz), "UTC");
    CPT_EQ_INT(c->validate_json, 0);
    CPT_EQ_INT(c->version, 1);
    CPT_EQ_INT(c->create_ms, NOW);
    CPT_EQ_INT(c->start_ms, NOW);
    CPT_EQ_STR(
        c->arn,
        "arn:aws:firehose:ap-northeast-2:123456789012:deliverystream/livestream-comments-by-id");
    cp_ds_config_free(c);
}

static void article_by_id_describe(void)
{
    cp_ds_config *c = parse_ok(by_id, 0);
    cp_buf out = CP_BUF_INIT;
    cp_ds_config_describe(c, NULL, 1, &out);
    CPT_EQ_STR(
        out.p,
        "{\"DeliveryStreamDescription\":{\"DeliveryStreamName\":\"livestream-comments-by-id\","
        "\"DeliveryStreamARN\":\"arn:aws:firehose:ap-northeast-2:123456789012:deliverystream/"
        "livestream-comments-by-id\",\"DeliveryStreamStatus\":\"ACTIVE\","
        "\"DeliveryStreamEncryptionConfiguration\":{\"Status\":\"DISABLED\"},"
        "\"DeliveryStreamType\":\"KinesisStreamAsSource\",\"VersionId\":\"1\","
        "\"CreateTimestamp\":1767225600.123,"
        "\"Source\":{\"KinesisStreamSourceDescription\":{\"KinesisStreamARN\":\"" STREAM_ARN
        "\",\"RoleARN\":\"" ROLE_KDS "\",\"DeliveryStartTimestamp\":1767225600.123}},"
        "\"Destinations\":[{\"DestinationId\":\"destinationId-000000000001\","
        "\"ExtendedS3DestinationDescription\":{\"RoleARN\":\"" ROLE_S3 "\","
        "\"BucketARN\":\"" BUCKET_ARN "\","
        "\"Prefix\":\"Livestreams/LivestreamID=!{partitionKeyFromLambda:LivestreamID}/\","
        "\"ErrorOutputPrefix\":\"errors/!{firehose:error-output-type}/\","
        "\"BufferingHints\":{\"SizeInMBs\":64,\"IntervalInSeconds\":60},"
        "\"CompressionFormat\":\"UNCOMPRESSED\","
        "\"EncryptionConfiguration\":{\"NoEncryptionConfig\":\"NoEncryption\"},"
        "\"CloudWatchLoggingOptions\":{\"Enabled\":false},"
        "\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":[{\"Type\":\"Lambda\","
        "\"Parameters\":[{\"ParameterName\":\"LambdaArn\",\"ParameterValue\":\"" LAMBDA_ARN
        "\"}]}]},\"S3BackupMode\":\"Disabled\","
        "\"DynamicPartitioningConfiguration\":{\"Enabled\":true,"
        "\"RetryOptions\":{\"DurationInSeconds\":300}}},"
        "\"S3DestinationDescription\":{\"RoleARN\":\"" ROLE_S3 "\","
        "\"BucketARN\":\"" BUCKET_ARN "\","
        "\"Prefix\":\"Livestreams/LivestreamID=!{partitionKeyFromLambda:LivestreamID}/\","
        "\"ErrorOutputPrefix\":\"errors/!{firehose:error-output-type}/\","
        "\"BufferingHints\":{\"SizeInMBs\":64,\"IntervalInSeconds\":60},"
        "\"CompressionFormat\":\"UNCOMPRESSED\","
        "\"EncryptionConfiguration\":{\"NoEncryptionConfig\":\"NoEncryption\"},"
        "\"CloudWatchLoggingOptions\":{\"Enabled\":false}}}],\"HasMoreDestinations\":false}}");
    /* Past the only destination; and a status from the engine. */
    cp_buf_reset(&out);
    cp_ds_state st = {CP_DS_CREATING_FAILED, "RETIRE_KMS_GRANT_FAILED", "gone"};
    cp_ds_config_describe(c, &st, 0, &out);
    CPT_CHECK(strstr(out.p, "\"DeliveryStreamStatus\":\"CREATING_FAILED\","
                            "\"FailureDescription\":{\"Type\":\"RETIRE_KMS_GRANT_FAILED\","
                            "\"Details\":\"gone\"}") != NULL);
    CPT_CHECK(strstr(out.p, "\"Destinations\":[],\"HasMoreDestinations\":false}}") != NULL);
    cp_buf_free(&out);
    cp_ds_config_free(c);
}

static void article_by_time_parses_and_describes(void)
{
    cp_ds_config *c = parse_ok(by_time, 1);
    CPT_EQ_INT(c->dynamic_partitioning, 0);
    CPT_EQ_INT(c->compression, CP_DS_GZIP);
    CPT_EQ_STR(cp_ds_config_extension(c), ".json.gz"); /* replaces .gz */
    CPT_EQ_STR(cp_tz_name(c->tz), "Asia/Seoul");
    CPT_EQ_INT(c->buffer_bytes, 5u << 20);
    CPT_EQ_INT(c->validate_json, 1); /* from the changepipe: tag */
    CPT_EQ_INT(c->ntags, 2);
    CPT_EQ_STR(c->tags[0].key, "changepipe:ValidateJsonLines"); /* sorted */
    cp_buf out = CP_BUF_INIT;
    cp_ds_config_describe(c, NULL, 1, &out);
    const char *ext_start = strstr(out.p, "\"ExtendedS3DestinationDescription\":");
    const char *s3_start = strstr(out.p, ",\"S3DestinationDescription\":");
    CPT_CHECK(ext_start && s3_start);
    cp_buf ext = CP_BUF_INIT;
    cp_buf_append(&ext, ext_start, (size_t) (s3_start - ext_start));
    CPT_EQ_STR(
        ext.p,
        "\"ExtendedS3DestinationDescription\":{\"RoleARN\":\"" ROLE_S3 "\","
        "\"BucketARN\":\"" BUCKET_ARN "\","
        "\"Prefix\":\"Livestreams/!{timestamp:yyyy/MM/dd/HH/mm/ss/}\","
        "\"ErrorOutputPrefix\":\"errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/\","
        "\"BufferingHints\":{\"SizeInMBs\":5,\"IntervalInSeconds\":60},"
        "\"CompressionFormat\":\"GZIP\","
        "\"EncryptionConfiguration\":{\"NoEncryptionConfig\":\"NoEncryption\"},"
        "\"CloudWatchLoggingOptions\":{\"Enabled\":true,"
        "\"LogGroupName\":\"/aws/kinesisfirehose/livestream-comments-by-time\","
        "\"LogStreamName\":\"DestinationDelivery\"},"
        "\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":[{\"Type\":\"Lambda\","
        "\"Parameters\":[{\"ParameterName\":\"LambdaArn\",\"ParameterValue\":\"" LAMBDA_ARN "\"},"
        "{\"ParameterName\":\"NumberOfRetries\",\"ParameterValue\":\"5\"},"
        "{\"ParameterName\":\"RoleArn\",\"ParameterValue\":\"" ROLE_KDS "\"}]}]},"
        "\"S3BackupMode\":\"Disabled\",\"FileExtension\":\".json.gz\","
        "\"CustomTimeZone\":\"Asia/Seoul\"}");
    CPT_CHECK(strstr(out.p, "\"S3DestinationDescription\":{\"RoleARN\":\"" ROLE_S3 "\","
                            "\"BucketARN\":\"" BUCKET_ARN "\","
                            "\"Prefix\":\"Livestreams/!{timestamp:yyyy/MM/dd/HH/mm/ss/}\","
                            "\"ErrorOutputPrefix\":") != NULL);
    cp_buf_free(&ext);
    cp_buf_free(&out);
    cp_ds_config_free(c);
}

/* The exact bytes `aws firehose create-delivery-stream --cli-input-json` sent (aws-cli 1.45,
 * captured), with the extension options as tags since the CLI refuses unknown members. */
static void aws_cli_request_bytes(void)
{
    const char *cli =
        "{\"DeliveryStreamName\": \"livestream-comments-by-id\", \"DeliveryStreamType\": "
        "\"KinesisStreamAsSource\", \"KinesisStreamSourceConfiguration\": {\"KinesisStreamARN\": "
        "\"arn:aws:kinesis:us-east-1:000000000000:stream/livestream-comments\", \"RoleARN\": "
        "\"arn:aws:iam::000000000000:role/firehose\"}, \"ExtendedS3DestinationConfiguration\": "
        "{\"RoleARN\": \"arn:aws:iam::000000000000:role/firehose\", \"BucketARN\": "
        "\"arn:aws:s3:::comments\", \"Prefix\": "
        "\"Livestreams/LivestreamID=!{partitionKeyFromLambda:LivestreamID}/\", "
        "\"ErrorOutputPrefix\": \"errors/!{firehose:error-output-type}/\", \"BufferingHints\": "
        "{\"SizeInMBs\": 64, \"IntervalInSeconds\": 60}, \"ProcessingConfiguration\": "
        "{\"Enabled\": true, \"Processors\": [{\"Type\": \"Lambda\", \"Parameters\": "
        "[{\"ParameterName\": \"LambdaArn\", \"ParameterValue\": "
        "\"arn:aws:lambda:us-east-1:000000000000:function:flatten\"}]}]}, "
        "\"DynamicPartitioningConfiguration\": {\"Enabled\": true, \"RetryOptions\": "
        "{\"DurationInSeconds\": 300}}}, \"Tags\": [{\"Key\": \"changepipe:ValidateJsonLines\", "
        "\"Value\": \"true\"}]}";
    cp_ds_config *c = parse_ok(cli, 0); /* strict would want the test region, ap-northeast-2 */
    CPT_EQ_STR(c->source_stream, "livestream-comments");
    CPT_EQ_INT(c->dynamic_partitioning, 1);
    CPT_EQ_INT(c->validate_json, 1);
    CPT_EQ_STR(cp_ds_config_lambda_arn(c),
               "arn:aws:lambda:us-east-1:000000000000:function:flatten");
    cp_ds_config_free(c);
}

static void defaults_filled(void)
{
    const char *json = "{\"DeliveryStreamName\":\"plain\",\"S3DestinationConfiguration\":{"
                       "\"RoleARN\":\"arn:aws:iam::123456789012:role/r\","
                       "\"BucketARN\":\"arn:aws:s3:::b\"}}";
    cp_ds_config *c = parse_ok(json, 1);
    CPT_EQ_INT(c->type, CP_DS_DIRECT_PUT);
    CPT_EQ_INT(c->legacy_s3, 1);
    CPT_CHECK(c->prefix == NULL && c->error_output_prefix == NULL && c->file_extension == NULL);
    CPT_EQ_INT(c->size_mb, 5);
    CPT_EQ_INT(c->interval_s, 300);
    CPT_EQ_INT(c->buffer_bytes, 5u << 20);
    CPT_EQ_INT(c->buffer_interval_ms, 300000);
    CPT_CHECK(c->source_stream == NULL);
    cp_buf out = CP_BUF_INIT;
    cp_ds_config_describe(c, NULL, 1, &out);
    CPT_CHECK(strstr(out.p, "\"DeliveryStreamType\":\"DirectPut\",\"VersionId\":\"1\","
                            "\"CreateTimestamp\":1767225600.123,\"Destinations\"") != NULL);
    CPT_CHECK(strstr(out.p, "\"ExtendedS3DestinationDescription\":{\"RoleARN\":"
                            "\"arn:aws:iam::123456789012:role/r\",\"BucketARN\":\"arn:aws:s3:::b\","
                            "\"Prefix\":\"\",\"BufferingHints\":{\"SizeInMBs\":5,"
                            "\"IntervalInSeconds\":300},\"CompressionFormat\":\"UNCOMPRESSED\","
                            "\"EncryptionConfiguration\":{\"NoEncryptionConfig\":\"NoEncryption\"},"
                            "\"CloudWatchLoggingOptions\":{\"Enabled\":false},"
                            "\"ProcessingConfiguration\":{\"Enabled\":false,\"Processors\":[]},"
                            "\"S3BackupMode\":\"Disabled\"}") != NULL);
    cp_buf_free(&out);
    cp_ds_config_free(c);

    /* Dynamic partitioning without BufferingHints: 128 MiB, as AWS's console and CDK. */
    c = parse_ok(
        "{\"DeliveryStreamName\":\"dp\",\"ExtendedS3DestinationConfiguration\":{"
        "\"RoleARN\":\"arn:aws:iam::123456789012:role/r\",\"BucketARN\":\"arn:aws:s3:::b\","
        "\"Prefix\":\"k=!{partitionKeyFromQuery:k}/\","
        "\"ErrorOutputPrefix\":\"e/!{firehose:error-output-type}/\","
        "\"ProcessingConfiguration\":{\"Processors\":[{\"Type\":\"MetadataExtraction\","
        "\"Parameters\":[{\"ParameterName\":\"MetadataExtractionQuery\","
        "\"ParameterValue\":\"{k:.k}\"},{\"ParameterName\":\"JsonParsingEngine\","
        "\"ParameterValue\":\"JQ-1.6\"}]}]},"
        "\"DynamicPartitioningConfiguration\":{\"Enabled\":true}}}",
        1);
    CPT_EQ_INT(c->size_mb, 128);
    CPT_EQ_INT(c->dp_retry_s, 300);
    CPT_EQ_INT(c->processing_enabled, 1); /* Enabled omitted with processors listed */
    cp_ds_config_free(c);
}

static void native_processor_and_options(void)
{
    const char *json =
        "{\"DeliveryStreamName\":\"n\",\"ExtendedS3DestinationConfiguration\":{"
        "\"RoleARN\":\"arn:aws:iam::123456789012:role/r\",\"BucketARN\":\"arn:aws:s3:::b\","
        "\"Prefix\":\"L/id=!{partitionKeyFromLambda:LivestreamID}/\","
        "\"ErrorOutputPrefix\":\"e/!{firehose:error-output-type}/\","
        "\"BufferingHints\":{\"SizeInMBs\":1,\"IntervalInSeconds\":1},"
        "\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":[{\"Type\":"
        "\"DynamoDBChangeRecord\",\"Parameters\":[{\"ParameterName\":\"PartitionKeyAttributes\","
        "\"ParameterValue\":\"LivestreamID\"}]}]},"
        "\"DynamicPartitioningConfiguration\":{\"Enabled\":true}},"
        "\"ChangepipeOptions\":{\"SinkEndpoint\":\"minio\",\"MaxActivePartitions\":20000}}";
    /* Default mode: 1 MiB / 1 s with dynamic partitioning, so local pipelines flush fast. */
    cp_ds_config *c = parse_ok(json, 0);
    CPT_EQ_INT(c->buffer_interval_ms, 1000);
    CPT_EQ_INT(c->validate_json, 1); /* on by default with the native processor */
    CPT_EQ_STR(c->sink, "minio");
    CPT_EQ_INT(c->max_active_partitions, 20000);
    cp_buf j = CP_BUF_INIT;
    cp_ds_config_to_json(c, &j);
    CPT_CHECK(strstr(j.p, "\"ChangepipeOptions\":{\"SinkEndpoint\":\"minio\","
                          "\"MaxActivePartitions\":20000}") != NULL);
    cp_buf_free(&j);
    cp_ds_config_free(c);
    /* Strict mode enforces AWS's dynamic-partitioning minimums. */
    cp_ds_parse_opts o = opts(1);
    cp_ds_err e = CP_DS_ERR_INIT;
    CPT_EQ_INT(cp_ds_config_parse(cp_slice_str(json), &o, &c, &e), CP_EINVAL);
    CPT_EQ_STR(e.msg.p, "BufferingHints.SizeInMBs must be at least 64 when Dynamic Partitioning "
                        "is enabled.");
    cp_ds_err_free(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Create-time rules (firehose.md 1.8)                                                         */

#define NAME   "\"DeliveryStreamName\":\"s1\""
#define ROLE   "\"RoleARN\":\"arn:aws:iam::123456789012:role/r\""
#define BUCKET "\"BucketARN\":\"arn:aws:s3:::b\""
/* An extended destination with extra members (each starting with ','). */
#define EXT(members)                                                                               \
    "{" NAME ",\"ExtendedS3DestinationConfiguration\":{" ROLE "," BUCKET members "}}"
#define EP ",\"ErrorOutputPrefix\":\"e/!{firehose:error-output-type}/\""
#define DP ",\"DynamicPartitioningConfiguration\":{\"Enabled\":true}"
#define LAMBDA                                                                                     \
    ",\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":[{\"Type\":\"Lambda\","         \
    "\"Parameters\":[{\"ParameterName\":\"LambdaArn\",\"ParameterValue\":\"arn:aws:lambda:"        \
    "us-east-1:123456789012:function:f\"}]}]}"
#define JQ(q)                                                                                      \
    ",\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":[{\"Type\":"                    \
    "\"MetadataExtraction\",\"Parameters\":[{\"ParameterName\":\"MetadataExtractionQuery\","       \
    "\"ParameterValue\":\"" q "\"},{\"ParameterName\":\"JsonParsingEngine\","                      \
    "\"ParameterValue\":\"JQ-1.6\"}]}]}"
#define HINTS(s, i) ",\"BufferingHints\":{\"SizeInMBs\":" #s ",\"IntervalInSeconds\":" #i "}"
#define PREFIX(p)   ",\"Prefix\":\"" p "\""
#define KIN_SRC                                                                                    \
    ",\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":\"arn:aws:kinesis:us-east-1:"     \
    "123456789012:stream/src\",\"RoleARN\":\"arn:aws:iam::123456789012:role/r\"}"
#define PREFIX_RULE "Ths supplied prefix(es) do not satisfy the following constraint: "
#define VE          "ValidationException"
#define IAE         "InvalidArgumentException"
#define SE          "SerializationException"
#define OK          NULL

enum { BOTH, DEFAULT_ONLY, STRICT_ONLY };

typedef struct rule_case {
    const char *rule; /* firehose.md 1.8 row */
    int mode;         /* which mode the expectation is for */
    const char *json;
    const char *type; /* NULL: accepted */
    const char *msg;
} rule_case;

static const rule_case rules[] = {
    /* 1: model constraints, Smithy envelope */
    {"1", BOTH, "{\"ExtendedS3DestinationConfiguration\":{" ROLE "," BUCKET "}}", VE,
     "1 validation error detected: Value null at 'deliveryStreamName' failed to satisfy "
     "constraint: Member must not be null"},
    {"1", BOTH, "{\"DeliveryStreamName\":\"bad name!\"}", VE,
     "1 validation error detected: Value 'bad name!' at 'deliveryStreamName' failed to satisfy "
     "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"},
    {"1", BOTH, "{\"DeliveryStreamName\":\"\"}", VE,
     "2 validation errors detected: Value '' at 'deliveryStreamName' failed to satisfy "
     "constraint: Member must have length greater than or equal to 1; Value '' at "
     "'deliveryStreamName' failed to satisfy constraint: Member must satisfy regular expression "
     "pattern: [a-zA-Z0-9_.-]+"},
    {"1", BOTH,
     "{\"DeliveryStreamName\":\"a123456789a123456789a123456789a123456789a123456789a123456789"
     "abcde\"}",
     VE,
     "1 validation error detected: Value 'a123456789a123456789a123456789a123456789a123456789"
     "a123456789abcde' at 'deliveryStreamName' failed to satisfy constraint: Member must have "
     "length less than or equal to 64"},
    {"1", BOTH, "{" NAME ",\"DeliveryStreamType\":\"Firehose\"}", VE,
     "1 validation error detected: Value 'Firehose' at 'deliveryStreamType' failed to satisfy "
     "constraint: Member must satisfy enum value set: [DirectPut, KinesisStreamAsSource, "
     "MSKAsSource, DatabaseAsSource]"},
    {"1", BOTH, EXT(",\"CompressionFormat\":\"SNAPPY\""), VE,
     "1 validation error detected: Value at 'extendedS3DestinationConfiguration."
     "compressionFormat' failed to satisfy constraint: Member must satisfy enum value set: [ZIP, "
     "HADOOP_SNAPPY, Snappy, GZIP, UNCOMPRESSED]"},
    {"1", BOTH, EXT(HINTS(129, 901)), VE,
     "2 validation errors detected: Value at 'extendedS3DestinationConfiguration.bufferingHints."
     "sizeInMBs' failed to satisfy constraint: Member must have value less than or equal to 128; "
     "Value at 'extendedS3DestinationConfiguration.bufferingHints.intervalInSeconds' failed to "
     "satisfy constraint: Member must have value less than or equal to 900"},
    {"1", BOTH, EXT(HINTS(0, -1)), VE,
     "2 validation errors detected: Value at 'extendedS3DestinationConfiguration.bufferingHints."
     "sizeInMBs' failed to satisfy constraint: Member must have value greater than or equal to 1; "
     "Value at 'extendedS3DestinationConfiguration.bufferingHints.intervalInSeconds' failed to "
     "satisfy constraint: Member must have value greater than or equal to 0"},
    {"1", BOTH,
     EXT(",\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":[{\"Type\":\"Bogus\"}]}"),
     VE,
     "1 validation error detected: Value at 'extendedS3DestinationConfiguration."
     "processingConfiguration.processors.1.member.type' failed to satisfy constraint: Member "
     "must satisfy enum value set: [Decompression, Lambda, RecordDeAggregation, "
     "MetadataExtraction, AppendDelimiterToRecord, CloudWatchLogProcessing]"},
    {"1", BOTH,
     EXT(",\"ProcessingConfiguration\":{\"Processors\":[{\"Type\":\"Lambda\",\"Parameters\":[{"
         "\"ParameterName\":\"LambdaArn\",\"ParameterValue\":\"x\"},{\"ParameterName\":\"Bogus\","
         "\"ParameterValue\":\"x\"}]}]}"),
     VE,
     "1 validation error detected: Value at 'extendedS3DestinationConfiguration."
     "processingConfiguration.processors.1.member.parameters.2.member.parameterName' failed to "
     "satisfy constraint: Member must satisfy enum value set: [DataMessageExtraction, "
     "NumberOfRetries, Delimiter, RoleArn, JsonParsingEngine, SubRecordType, "
     "MetadataExtractionQuery, BufferIntervalInSeconds, LambdaArn, BufferSizeInMBs, "
     "CompressionFormat]"},
    {"1", BOTH,
     EXT(",\"ProcessingConfiguration\":{\"Processors\":[{\"Type\":\"Lambda\",\"Parameters\":[{"
         "\"ParameterName\":\"LambdaArn\",\"ParameterValue\":\"\"}]}]}"),
     VE,
     "2 validation errors detected: Value at 'extendedS3DestinationConfiguration."
     "processingConfiguration.processors.1.member.parameters.1.member.parameterValue' failed to "
     "satisfy constraint: Member must have length greater than or equal to 1; Value at "
     "'extendedS3DestinationConfiguration.processingConfiguration.processors.1.member.parameters."
     "1.member.parameterValue' failed to satisfy constraint: Member must satisfy regular "
     "expression pattern: ^(?!\\s*$).+"},
    {"1", BOTH, EXT(",\"ProcessingConfiguration\":{\"Processors\":[{\"Parameters\":[]}]}"), VE,
     "1 validation error detected: Value at 'extendedS3DestinationConfiguration."
     "processingConfiguration.processors.1.member.type' failed to satisfy constraint: Member "
     "must not be null"},
    {"1", BOTH, EXT(",\"FileExtension\":\"abc.def\""), VE,
     "1 validation error detected: Value at 'extendedS3DestinationConfiguration.fileExtension' "
     "failed to satisfy constraint: Member must satisfy regular expression pattern: "
     "^(|\\.[0-9a-z!\\-_.*'()]+)$"},
    {"1", BOTH, EXT(",\"FileExtension\":\".Custom\""), VE,
     "1 validation error detected: Value at 'extendedS3DestinationConfiguration.fileExtension' "
     "failed to satisfy constraint: Member must satisfy regular expression pattern: "
     "^(|\\.[0-9a-z!\\-_.*'()]+)$"},
    {"1", BOTH, EXT(",\"CustomTimeZone\":\"Etc/GMT+5\""), VE,
     "1 validation error detected: Value at 'extendedS3DestinationConfiguration.customTimeZone' "
     "failed to satisfy constraint: Member must satisfy regular expression pattern: "
     "^$|[a-zA-Z/_]+"},
    {"1", BOTH, "{" NAME ",\"ExtendedS3DestinationConfiguration\":{" BUCKET "}}", VE,
     "1 validation error detected: Value at 'extendedS3DestinationConfiguration.roleARN' failed "
     "to satisfy constraint: Member must not be null"},
    {"1", BOTH,
     "{" NAME
     ",\"ExtendedS3DestinationConfiguration\":{\"RoleARN\":\"arn:aws:iam::1:role/r\"," BUCKET "}}",
     VE,
     "1 validation error detected: Value at 'extendedS3DestinationConfiguration.roleARN' failed "
     "to satisfy constraint: Member must satisfy regular expression pattern: "
     "arn:.*:iam::\\d{12}:role/[a-zA-Z_0-9+=,.@\\-_/]+"},
    {"1", BOTH,
     "{" NAME ",\"DeliveryStreamType\":\"KinesisStreamAsSource\","
     "\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":\"arn:aws:kinesis:x\","
     "\"RoleARN\":\"arn:aws:iam::123456789012:role/r\"}}",
     VE,
     "1 validation error detected: Value 'arn:aws:kinesis:x' at 'kinesisStreamSourceConfiguration."
     "kinesisStreamARN' failed to satisfy constraint: Member must satisfy regular expression "
     "pattern: arn:.*:kinesis:[a-zA-Z0-9\\-]+:\\d{12}:stream/[a-zA-Z0-9_.-]+"},
    {"1", BOTH, "{" NAME ",\"Tags\":[{\"Key\":\"aws:owner\",\"Value\":\"x\"}]}", VE,
     "1 validation error detected: Value 'aws:owner' at 'tags.1.member.key' failed to satisfy "
     "constraint: Member must satisfy regular expression pattern: "
     "^(?!aws:)[\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@%]*$"},
    {"1", BOTH, "{" NAME ",\"Tags\":[]}", VE,
     "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must "
     "have length greater than or equal to 1"},
    {"1", BOTH,
     EXT(",\"DynamicPartitioningConfiguration\":{\"RetryOptions\":{"
         "\"DurationInSeconds\":7201}}"),
     VE,
     "1 validation error detected: Value at 'extendedS3DestinationConfiguration."
     "dynamicPartitioningConfiguration.retryOptions.durationInSeconds' failed to satisfy "
     "constraint: Member must have value less than or equal to 7200"},
    /* JSON types fail first, as SerializationException */
    {"1", BOTH, EXT(",\"BufferingHints\":{\"SizeInMBs\":\"5\"}"), SE,
     "class java.lang.String can not be converted to an Integer"},
    {"1", BOTH, "{\"DeliveryStreamName\":7}", SE,
     "class java.math.BigDecimal can not be converted to an String"},
    {"1", BOTH, EXT(",\"Prefix\":[\"a\"]"), SE, "Start of list found where not expected"},
    {"1", BOTH, EXT(",\"DynamicPartitioningConfiguration\":{\"Enabled\":\"yes\"}"), SE,
     "'YES' can not be converted to an Boolean"},
    /* 2: exactly one destination */
    {"2", BOTH, "{" NAME "}", IAE,
     "Exactly one destination configuration is supported for a Firehose"},
    {"2", BOTH,
     "{" NAME ",\"ExtendedS3DestinationConfiguration\":{" ROLE "," BUCKET "},"
     "\"S3DestinationConfiguration\":{" ROLE "," BUCKET "}}",
     IAE, "Exactly one destination configuration is supported for a Firehose"},
    {"2", BOTH, "{" NAME ",\"SplunkDestinationConfiguration\":{}}", IAE,
     "changepipe supports S3 destinations only (ExtendedS3DestinationConfiguration or "
     "S3DestinationConfiguration), not SplunkDestinationConfiguration"},
    /* 3: both buffering hints or neither */
    {"3", BOTH, EXT(",\"BufferingHints\":{\"SizeInMBs\":5}"), IAE,
     "BufferingHints must specify both SizeInMBs and IntervalInSeconds, or neither"},
    {"3", BOTH, EXT(",\"BufferingHints\":{}"), OK, NULL},
    /* 4: well-formed expressions with known namespaces */
    {"4", BOTH, EXT(PREFIX("a/!{foo:bar}/") EP), IAE,
     PREFIX_RULE "Prefix: !{foo:bar} has an unknown namespace; valid namespaces are firehose, "
                 "timestamp, partitionKeyFromQuery and partitionKeyFromLambda"},
    {"4", BOTH, EXT(PREFIX("a/!{timestamp:yyyy") EP), IAE,
     PREFIX_RULE "Prefix: the sequence !{ at character 3 does not start a !{namespace:value} "
                 "expression"},
    {"4", BOTH, EXT(PREFIX("a/!{timestamp:yyyy-bb}/") EP), IAE,
     PREFIX_RULE "Prefix: Unknown pattern letter: b in !{timestamp:yyyy-bb}"},
    {"4", BOTH, EXT(",\"ErrorOutputPrefix\":\"e/!{firehose:error-output-tipe}/\""), IAE,
     PREFIX_RULE "ErrorOutputPrefix: !{firehose:error-output-tipe} is not valid: the firehose "
                 "namespace takes random-string or error-output-type"},
    /* 5: expressions in Prefix need ErrorOutputPrefix */
    {"5", BOTH, EXT(PREFIX("!{timestamp:yyyy}/")), IAE,
     PREFIX_RULE "ErrorOutputPrefix cannot be null or empty when Prefix contains expressions"},
    {"5", BOTH, EXT(PREFIX("!{timestamp:yyyy}/") ",\"ErrorOutputPrefix\":\"\""), IAE,
     PREFIX_RULE "ErrorOutputPrefix cannot be null or empty when Prefix contains expressions"},
    {"5", BOTH, EXT(PREFIX("static/")), OK, NULL},
    /* 6: expressions in ErrorOutputPrefix need error-output-type */
    {"6", BOTH, EXT(",\"ErrorOutputPrefix\":\"e/!{timestamp:yyyy}/\""), IAE,
     PREFIX_RULE "ErrorOutputPrefix must contain at least one instance of "
                 "!{firehose:error-output-type} when it contains expressions"},
    {"6", BOTH, EXT(",\"ErrorOutputPrefix\":\"static-errors/\""), OK, NULL},
    /* 7: Prefix without error-output-type */
    {"7", BOTH, EXT(PREFIX("p/!{firehose:error-output-type}/") EP), IAE,
     PREFIX_RULE "Prefix can't contain !{firehose:error-output-type}"},
    /* 8: ErrorOutputPrefix without partition keys */
    {"8", BOTH,
     EXT(",\"ErrorOutputPrefix\":\"e/!{firehose:error-output-type}/!{partitionKeyFromLambda:k}/\""),
     IAE,
     PREFIX_RULE "ErrorOutputPrefix can't contain the partitionKeyFromQuery or "
                 "partitionKeyFromLambda namespaces"},
    /* 9: partition keys in Prefix only with dynamic partitioning */
    {"9", BOTH, EXT(PREFIX("k=!{partitionKeyFromLambda:k}/") EP LAMBDA), IAE,
     "Dynamic Partitioning Namespaces can only be part of a prefix expression when Dynamic "
     "Partitioning is enabled."},
    /* 10: dynamic partitioning needs processors, keys in Prefix, ErrorOutputPrefix */
    {"10", BOTH, EXT(PREFIX("k=!{partitionKeyFromLambda:k}/") EP DP), IAE,
     "Processing Configuration is not enabled when DataPartitioning is enabled"},
    {"10", BOTH,
     EXT(PREFIX("k=!{partitionKeyFromLambda:k}/") EP DP
         ",\"ProcessingConfiguration\":{\"Enabled\":false,\"Processors\":[{\"Type\":\"Lambda\","
         "\"Parameters\":[{\"ParameterName\":\"LambdaArn\",\"ParameterValue\":\"x\"}]}]}"),
     IAE, "Processing Configuration is not enabled when DataPartitioning is enabled"},
    {"10", BOTH, EXT(PREFIX("static/") EP DP LAMBDA), IAE,
     "S3 Prefix should contain Dynamic Partitioning namespaces when Dynamic Partitioning is "
     "enabled"},
    {"10", BOTH, EXT(PREFIX("k=!{partitionKeyFromLambda:k}/") EP DP JQ("{k:.k}")), IAE,
     "Lambda should be present when S3 Prefix contains keys from partitionKeyFromLambda "
     "namespace"},
    {"10", BOTH, EXT(PREFIX("k=!{partitionKeyFromQuery:k}/") EP DP LAMBDA), IAE,
     "MetadataExtraction processor should be present when S3 Prefix has partitionKeyFromQuery "
     "namespace"},
    {"10", BOTH, EXT(PREFIX("k=!{partitionKeyFromLambda:k}/") DP LAMBDA), IAE,
     PREFIX_RULE "ErrorOutputPrefix cannot be null or empty when Prefix contains expressions"},
    {"10", DEFAULT_ONLY, EXT(PREFIX("k=!{partitionKeyFromLambda:k}/") EP DP LAMBDA), OK, NULL},
    /* 11: every jq key used by the Prefix */
    {"11", BOTH, EXT(PREFIX("a=!{partitionKeyFromQuery:a}/") EP DP JQ("{a:.a,b:.b}")), IAE,
     "MetaDataExtraction JQ Query can't contain keys that are not present in the S3 Prefix "
     "expression"},
    {"11", DEFAULT_ONLY,
     EXT(PREFIX("a=!{partitionKeyFromQuery:a}/b=!{partitionKeyFromQuery:b}/")
             EP DP JQ("{a:.a,b:.b}")),
     OK, NULL},
    /* 12: dynamic-partitioning minimums, strict mode only */
    {"12", DEFAULT_ONLY, EXT(PREFIX("k=!{partitionKeyFromLambda:k}/") EP DP LAMBDA HINTS(1, 0)), OK,
     NULL},
    {"12", STRICT_ONLY, EXT(PREFIX("k=!{partitionKeyFromLambda:k}/") EP DP LAMBDA HINTS(1, 0)), IAE,
     "BufferingHints.SizeInMBs must be at least 64 when Dynamic Partitioning is enabled."},
    {"12", STRICT_ONLY, EXT(PREFIX("k=!{partitionKeyFromLambda:k}/") EP DP LAMBDA HINTS(64, 59)),
     IAE,
     "BufferingHints.IntervalInSeconds must be at least 60 seconds when Dynamic Partitioning is "
     "enabled."},
    {"12", STRICT_ONLY, EXT(PREFIX("k=!{partitionKeyFromLambda:k}/") EP DP LAMBDA HINTS(64, 60)),
     OK, NULL},
    {"12", STRICT_ONLY, EXT(PREFIX("k=!{partitionKeyFromLambda:k}/") EP DP LAMBDA), OK, NULL},
    /* 13: MetadataExtraction only with dynamic partitioning, at most 50 keys */
    {"13", BOTH, EXT(JQ("{k:.k}")), IAE,
     "class com.amazonaws.services.firehose.internal.model.MetadataExtractionProcessor can only "
     "be present when Dynamic Partitioning is enabled."},
    {"13", BOTH,
     EXT(PREFIX("k=!{partitionKeyFromQuery:k0}/") EP DP JQ(
         "{k0:1,k1:1,k2:1,k3:1,k4:1,k5:1,k6:1,k7:1,k8:1,k9:1,k10:1,k11:1,k12:1,k13:1,k14:1,"
         "k15:1,k16:1,k17:1,k18:1,k19:1,k20:1,k21:1,k22:1,k23:1,k24:1,k25:1,k26:1,k27:1,"
         "k28:1,k29:1,k30:1,k31:1,k32:1,k33:1,k34:1,k35:1,k36:1,k37:1,k38:1,k39:1,k40:1,"
         "k41:1,k42:1,k43:1,k44:1,k45:1,k46:1,k47:1,k48:1,k49:1,k50:1}")),
     IAE, "MetadataExtraction JQ Query can't contain more than 50 keys"},
    /* 14: DELIMITED needs a Delimiter */
    {"14", BOTH,
     EXT(",\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":[{\"Type\":"
         "\"RecordDeAggregation\",\"Parameters\":[{\"ParameterName\":\"SubRecordType\","
         "\"ParameterValue\":\"DELIMITED\"}]}]}"),
     IAE, "Delimiter is required when SubRecordType is DELIMITED"},
    {"14", BOTH,
     EXT(",\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":[{\"Type\":"
         "\"RecordDeAggregation\",\"Parameters\":[{\"ParameterName\":\"SubRecordType\","
         "\"ParameterValue\":\"DELIMITED\"},{\"ParameterName\":\"Delimiter\","
         "\"ParameterValue\":\"IyMjIw==\"}]}]}"),
     OK, NULL},
    /* 15 is a runtime rule: see test_delivery_prefix evaluated_length_limit. */
    /* 16: format conversion */
    {"16", BOTH,
     EXT(",\"CompressionFormat\":\"GZIP\",\"DataFormatConversionConfiguration\":{\"Enabled\":"
         "true}"),
     IAE, "CompressionFormat must be UNCOMPRESSED when data format conversion is enabled"},
    {"16", STRICT_ONLY, EXT(",\"DataFormatConversionConfiguration\":{}"), IAE,
     "BufferingHints.SizeInMBs must be at least 64 when data format conversion is enabled."},
    {"16", DEFAULT_ONLY, EXT(",\"DataFormatConversionConfiguration\":{}"), IAE,
     "changepipe does not support DataFormatConversionConfiguration (Parquet/ORC conversion); "
     "set Enabled to false or remove it"},
    {"16", BOTH, EXT(",\"DataFormatConversionConfiguration\":{\"Enabled\":false}"), OK, NULL},
    /* Sources and types */
    {"src", BOTH,
     "{" NAME ",\"DeliveryStreamType\":\"KinesisStreamAsSource\","
     "\"ExtendedS3DestinationConfiguration\":{" ROLE "," BUCKET "}}",
     IAE,
     "KinesisStreamSourceConfiguration is required when DeliveryStreamType is "
     "KinesisStreamAsSource"},
    {"src", BOTH, "{" NAME KIN_SRC ",\"ExtendedS3DestinationConfiguration\":{" ROLE "," BUCKET "}}",
     IAE,
     "KinesisStreamSourceConfiguration is only allowed when DeliveryStreamType is "
     "KinesisStreamAsSource"},
    {"src", BOTH,
     "{" NAME
     ",\"DeliveryStreamType\":\"MSKAsSource\",\"ExtendedS3DestinationConfiguration\":{" ROLE
     "," BUCKET "}}",
     IAE,
     "changepipe supports the DirectPut and KinesisStreamAsSource delivery stream types, not "
     "MSKAsSource"},
    {"src", BOTH,
     "{" NAME ",\"DeliveryStreamType\":\"KinesisStreamAsSource\"" KIN_SRC
     ",\"DeliveryStreamEncryptionConfigurationInput\":{\"KeyType\":\"AWS_OWNED_CMK\"},"
     "\"ExtendedS3DestinationConfiguration\":{" ROLE "," BUCKET "}}",
     IAE,
     "Server-side encryption (DeliveryStreamEncryptionConfigurationInput) is only supported for "
     "DirectPut delivery streams; the source stream's encryption applies to "
     "KinesisStreamAsSource"},
    {"src", STRICT_ONLY,
     "{\"DeliveryStreamName\":\"s1\",\"DeliveryStreamType\":\"KinesisStreamAsSource\"" KIN_SRC
     ",\"ExtendedS3DestinationConfiguration\":{" ROLE "," BUCKET "}}",
     IAE,
     "The source stream arn:aws:kinesis:us-east-1:123456789012:stream/src must be in the "
     "Firehose stream's region ap-northeast-2"},
    {"src", DEFAULT_ONLY,
     "{\"DeliveryStreamName\":\"s1\",\"DeliveryStreamType\":\"KinesisStreamAsSource\"" KIN_SRC
     ",\"ExtendedS3DestinationConfiguration\":{" ROLE "," BUCKET "}}",
     OK, NULL},
    /* changepipe's limits, each with a clear message */
    {"cp", BOTH, EXT(",\"CompressionFormat\":\"ZIP\""), IAE,
     "changepipe supports UNCOMPRESSED and GZIP; CompressionFormat ZIP is not available"},
    {"cp", BOTH,
     EXT(",\"EncryptionConfiguration\":{\"KMSEncryptionConfig\":{\"AWSKMSKeyARN\":"
         "\"arn:aws:kms:us-east-1:123456789012:key/k\"}}"),
     IAE,
     "changepipe does not encrypt objects with KMS: use {\"NoEncryptionConfig\":\"NoEncryption\"} "
     "(EncryptionConfiguration.KMSEncryptionConfig is not supported)"},
    {"cp", BOTH, EXT(",\"S3BackupMode\":\"Enabled\""), IAE,
     "S3BackupConfiguration is required when S3BackupMode is Enabled"},
    {"cp", BOTH,
     EXT(",\"S3BackupMode\":\"Enabled\",\"S3BackupConfiguration\":{" ROLE "," BUCKET "}"), IAE,
     "changepipe does not support S3BackupMode Enabled (source record backup) yet; use Disabled"},
    {"cp", BOTH, EXT(",\"S3BackupConfiguration\":{" BUCKET "}"), VE,
     "1 validation error detected: Value at 'extendedS3DestinationConfiguration."
     "s3BackupConfiguration.roleARN' failed to satisfy constraint: Member must not be null"},
    {"cp", BOTH, EXT(",\"CloudWatchLoggingOptions\":{\"Enabled\":true}"), IAE,
     "LogGroupName and LogStreamName are required when CloudWatchLoggingOptions is enabled"},
    {"cp", BOTH, EXT(",\"CustomTimeZone\":\"Mars/Olympus\""), IAE,
     "CustomTimeZone Mars/Olympus is not a supported time zone (unknown time zone)"},
    {"cp", BOTH, EXT(",\"CustomTimeZone\":\"\""), OK, NULL},
    {"cp", BOTH,
     "{" NAME ",\"Tags\":[{\"Key\":\"changepipe:ValidateJsonLines\",\"Value\":\"maybe\"}],"
     "\"ExtendedS3DestinationConfiguration\":{" ROLE "," BUCKET "}}",
     IAE, "Tag changepipe:ValidateJsonLines must be true or false"},
    {"cp", BOTH,
     "{" NAME ",\"Tags\":[{\"Key\":\"changepipe:Nope\",\"Value\":\"1\"}],"
     "\"ExtendedS3DestinationConfiguration\":{" ROLE "," BUCKET "}}",
     IAE,
     "Unknown changepipe option tag changepipe:Nope; valid: changepipe:ValidateJsonLines, "
     "changepipe:SinkEndpoint, changepipe:MaxActivePartitions"},
    {"cp", BOTH,
     EXT(",\"ProcessingConfiguration\":{\"Processors\":[{\"Type\":\"Lambda\",\"Parameters\":[]},"
         "{\"Type\":\"Lambda\",\"Parameters\":[]}]}"),
     IAE, "Only one processor of type Lambda is supported"},
    {"cp", BOTH, EXT(",\"ProcessingConfiguration\":{\"Processors\":[{\"Type\":\"Lambda\"}]}"), IAE,
     "LambdaArn is required for the Lambda processor"},
    {"cp", BOTH,
     EXT(",\"EncryptionConfiguration\":{\"NoEncryptionConfig\":\"NoEncryption\","
         "\"KMSEncryptionConfig\":{\"AWSKMSKeyARN\":\"arn:aws:kms:us-east-1:123456789012:key/"
         "k\"}}"),
     IAE,
     "EncryptionConfiguration accepts either NoEncryptionConfig or KMSEncryptionConfig, not both"},
    /* Unknown members are ignored, as AWS-compatible parsers must. */
    {"ok", BOTH, EXT(",\"SomethingNew\":{\"x\":1}"), OK, NULL},
};

static void create_rules_table(void)
{
    int bad = 0;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        const rule_case *c = &rules[i];
        for (int strict = 0; strict <= 1; strict++) {
            if ((c->mode == DEFAULT_ONLY && strict) || (c->mode == STRICT_ONLY && !strict)) {
                continue;
            }
            cp_ds_parse_opts o = opts(strict);
            cp_ds_config *cfg = NULL;
            cp_ds_err e = CP_DS_ERR_INIT;
            int rc = cp_ds_config_parse(cp_slice_str(c->json), &o, &cfg, &e);
            const char *type = rc == CP_OK ? NULL : e.type;
            const char *msg = rc == CP_OK ? NULL : e.msg.p;
            int same = c->type
                           ? (type && strcmp(type, c->type) == 0 && msg && strcmp(msg, c->msg) == 0)
                           : rc == CP_OK;
            if (!same) {
                fprintf(stderr, "  rule %s (%s, case %zu):\n    got  %s: %s\n    want %s: %s\n",
                        c->rule, strict ? "strict" : "default", i, type ? type : "OK",
                        msg ? msg : "", c->type ? c->type : "OK", c->msg ? c->msg : "");
                bad++;
            }
            CPT_CHECK((rc == CP_OK) == (cfg != NULL));
            cp_ds_config_free(cfg);
            cp_ds_err_free(&e);
        }
    }
    CPT_EQ_INT(bad, 0);
}

static void extra_compressions_when_enabled(void)
{
    cp_ds_parse_opts o = opts(0);
    o.compressions =
        CP_DS_COMP(CP_DS_UNCOMPRESSED) | CP_DS_COMP(CP_DS_GZIP) | CP_DS_COMP(CP_DS_ZIP);
    cp_ds_config *cfg = NULL;
    cp_ds_err e = CP_DS_ERR_INIT;
    CPT_EQ_INT(
        cp_ds_config_parse(cp_slice_str(EXT(",\"CompressionFormat\":\"ZIP\"")), &o, &cfg, &e),
        CP_OK);
    CPT_EQ_STR(cp_ds_config_extension(cfg), ".zip");
    cp_ds_config_free(cfg);
    CPT_EQ_INT(
        cp_ds_config_parse(cp_slice_str(EXT(",\"CompressionFormat\":\"Snappy\"")), &o, &cfg, &e),
        CP_EINVAL);
    CPT_EQ_STR(e.msg.p,
               "changepipe supports UNCOMPRESSED, GZIP and ZIP; CompressionFormat Snappy is not "
               "available");
    cp_ds_err_free(&e);
    /* Backup supported by the engine: accepted, and described. */
    o.backup_supported = 1;
    CPT_EQ_INT(cp_ds_config_parse(cp_slice_str(EXT(",\"S3BackupMode\":\"Enabled\","
                                                   "\"S3BackupConfiguration\":{" ROLE "," BUCKET
                                                   ",\"Prefix\":\"backup/\"}")),
                                  &o, &cfg, &e),
               CP_OK);
    cp_buf out = CP_BUF_INIT;
    cp_ds_config_describe(cfg, NULL, 1, &out);
    CPT_CHECK(strstr(out.p, "\"S3BackupMode\":\"Enabled\",\"S3BackupDescription\":{\"RoleARN\":"
                            "\"arn:aws:iam::123456789012:role/r\",\"BucketARN\":\"arn:aws:s3:::b\","
                            "\"Prefix\":\"backup/\",\"BufferingHints\":{\"SizeInMBs\":5,"
                            "\"IntervalInSeconds\":300}") != NULL);
    cp_buf_free(&out);
    cp_ds_config_free(cfg);
}

/* ------------------------------------------------------------------------------------------ */
/* Persistence                                                                                 */

static void persistence_round_trip(void)
{
    const char *inputs[] = {by_id, by_time,
                            "{\"DeliveryStreamName\":\"plain\",\"S3DestinationConfiguration\":{"
                            "\"RoleARN\":\"arn:aws:iam::123456789012:role/r\","
                            "\"BucketARN\":\"arn:aws:s3:::b\",\"Prefix\":\"legacy\"}}"};
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        cp_ds_config *a = parse_ok(inputs[i], 0), *b = NULL, *c = NULL;
        a->version = 7;
        a->update_ms = NOW + 5000;
        cp_buf ja = CP_BUF_INIT, jb = CP_BUF_INIT, da = CP_BUF_INIT, db = CP_BUF_INIT;
        cp_ds_config_to_json(a, &ja);
        cp_err err = {0};
        CPT_EQ_INT(cp_ds_config_from_json(cp_buf_slice(&ja), &b, &err), CP_OK);
        cp_ds_config_to_json(b, &jb);
        CPT_EQ_STR(jb.p, ja.p);
        cp_ds_config_describe(a, NULL, 1, &da);
        cp_ds_config_describe(b, NULL, 1, &db);
        CPT_EQ_STR(db.p, da.p);
        CPT_CHECK(strstr(db.p, "\"VersionId\":\"7\"") != NULL);
        CPT_CHECK(strstr(db.p, "\"LastUpdateTimestamp\":1767225605.123") != NULL);
        CPT_EQ_INT(b->buffer_bytes, a->buffer_bytes);
        CPT_EQ_INT(b->validate_json, a->validate_json);
        CPT_EQ_STR(cp_tz_name(b->tz), cp_tz_name(a->tz));
        CPT_EQ_STR(b->arn, a->arn);
        CPT_EQ_INT(cp_ds_config_copy(b, &c, &err), CP_OK);
        CPT_CHECK(c != b && c->name != b->name);
        CPT_EQ_STR(c->name, b->name);
        cp_ds_config_free(a);
        cp_ds_config_free(b);
        cp_ds_config_free(c);
        cp_buf_free(&ja);
        cp_buf_free(&jb);
        cp_buf_free(&da);
        cp_buf_free(&db);
    }
    cp_ds_config *x = NULL;
    cp_err err = {0};
    CPT_EQ_INT(cp_ds_config_from_json(CP_SLICE("{\"DeliveryStreamName\":\"x\"}"), &x, &err),
               CP_ECORRUPT);
    CPT_EQ_INT(cp_ds_config_from_json(CP_SLICE("not json"), &x, &err), CP_ECORRUPT);
    CPT_CHECK(x == NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* UpdateDestination                                                                           */

static int update(const cp_ds_config *cur, const char *json, int strict, cp_ds_config **next,
                  cp_ds_err *e)
{
    cp_ds_update *u = NULL;
    int rc = cp_ds_update_parse(cp_slice_str(json), &u, e);
    if (rc != CP_OK) {
        return rc;
    }
    cp_ds_parse_opts o = opts(strict);
    o.now_ms = NOW + 60000;
    rc = cp_ds_config_apply_update(cur, u, &o, next, e);
    cp_ds_update_free(u);
    return rc;
}

#define UPD(ver, body)                                                                             \
    "{\"DeliveryStreamName\":\"livestream-comments-by-id\",\"CurrentDeliveryStreamVersionId\":"    \
    "\"" ver "\",\"DestinationId\":\"destinationId-000000000001\"" body "}"

static void update_merges_and_bumps_version(void)
{
    cp_ds_config *cur = parse_ok(by_id, 0), *next = NULL, *next2 = NULL;
    cp_ds_err e = CP_DS_ERR_INIT;
    CPT_EQ_INT(update(cur,
                      UPD("1", ",\"ExtendedS3DestinationUpdate\":{\"BufferingHints\":{"
                               "\"IntervalInSeconds\":120},\"CompressionFormat\":\"GZIP\","
                               "\"Prefix\":\"L2/id=!{partitionKeyFromLambda:LivestreamID}/\"}"),
                      0, &next, &e),
               CP_OK);
    CPT_EQ_INT(next->version, 2);
    CPT_EQ_INT(next->update_ms, NOW + 60000);
    CPT_EQ_INT(next->create_ms, NOW);
    CPT_EQ_INT(next->size_mb, 64); /* kept: the hints merge per member */
    CPT_EQ_INT(next->interval_s, 120);
    CPT_EQ_INT(next->buffer_interval_ms, 120000);
    CPT_EQ_INT(next->compression, CP_DS_GZIP);
    CPT_EQ_STR(cp_ds_config_extension(next), ".gz");
    CPT_EQ_STR(next->prefix, "L2/id=!{partitionKeyFromLambda:LivestreamID}/");
    CPT_EQ_STR(next->error_output_prefix, "errors/!{firehose:error-output-type}/"); /* kept */
    CPT_EQ_INT(next->nprocessors, 1);                                               /* kept */
    CPT_EQ_INT(cur->version, 1); /* the current config is untouched */
    /* A stale version is a ConcurrentModificationException. */
    CPT_EQ_INT(update(next, UPD("1", ",\"S3DestinationUpdate\":{\"Prefix\":\"x\"}"), 0, &next2, &e),
               CP_ECONDITION);
    CPT_EQ_STR(e.type, "ConcurrentModificationException");
    CPT_EQ_STR(e.msg.p, "Cannot update firehose: livestream-comments-by-id since the current "
                        "version id: 2 and specified version id: 1 do not match");
    /* Processors replace the list as a whole. */
    CPT_EQ_INT(
        update(next,
               UPD("2", ",\"ExtendedS3DestinationUpdate\":{\"ProcessingConfiguration\":{"
                        "\"Enabled\":true,\"Processors\":[{\"Type\":\"DynamoDBChangeRecord\","
                        "\"Parameters\":[{\"ParameterName\":\"PartitionKeyAttributes\","
                        "\"ParameterValue\":\"LivestreamID\"}]}]}}"),
               0, &next2, &e),
        CP_OK);
    CPT_EQ_INT(next2->version, 3);
    CPT_EQ_STR(next2->processors[0].type, "DynamoDBChangeRecord");
    CPT_EQ_INT(next2->validate_json, 1);
    CPT_CHECK(cp_ds_config_lambda_arn(next2) == NULL);
    cp_ds_config_free(next2);
    cp_ds_config_free(next);
    cp_ds_config_free(cur);
    cp_ds_err_free(&e);
}

static void update_rules(void)
{
    cp_ds_config *dp = parse_ok(by_id, 0), *plain = parse_ok(by_time, 0), *next = NULL;
    cp_ds_err e = CP_DS_ERR_INIT;
    /* Rule 17: neither disable nor enable dynamic partitioning. */
    CPT_EQ_INT(update(dp,
                      UPD("1", ",\"ExtendedS3DestinationUpdate\":{"
                               "\"DynamicPartitioningConfiguration\":{\"Enabled\":false}}"),
                      0, &next, &e),
               CP_EINVAL);
    CPT_EQ_STR(e.type, "InvalidArgumentException");
    CPT_EQ_STR(e.msg.p, "Dynamic Partitioning can only be enabled when a Firehose stream is "
                        "created, and cannot be disabled afterwards");
    CPT_EQ_INT(update(plain,
                      "{\"DeliveryStreamName\":\"livestream-comments-by-time\","
                      "\"CurrentDeliveryStreamVersionId\":\"1\",\"DestinationId\":"
                      "\"destinationId-000000000001\",\"ExtendedS3DestinationUpdate\":{"
                      "\"Prefix\":\"k=!{partitionKeyFromLambda:k}/\","
                      "\"DynamicPartitioningConfiguration\":{\"Enabled\":true}}}",
                      0, &next, &e),
               CP_EINVAL);
    CPT_EQ_STR(e.msg.p, "Dynamic Partitioning can only be enabled when a Firehose stream is "
                        "created, and cannot be disabled afterwards");
    /* The retry duration can change. */
    CPT_EQ_INT(update(dp,
                      UPD("1", ",\"ExtendedS3DestinationUpdate\":{"
                               "\"DynamicPartitioningConfiguration\":{\"RetryOptions\":{"
                               "\"DurationInSeconds\":60}}}"),
                      0, &next, &e),
               CP_OK);
    CPT_EQ_INT(next->dp_retry_s, 60);
    CPT_EQ_INT(next->dynamic_partitioning, 1);
    cp_ds_config_free(next);
    /* The merged result passes the create rules again (strict minimums included). */
    CPT_EQ_INT(update(dp,
                      UPD("1", ",\"ExtendedS3DestinationUpdate\":{\"BufferingHints\":{"
                               "\"SizeInMBs\":1}}"),
                      1, &next, &e),
               CP_EINVAL);
    CPT_EQ_STR(e.msg.p, "BufferingHints.SizeInMBs must be at least 64 when Dynamic Partitioning "
                        "is enabled.");
    CPT_EQ_INT(update(dp, UPD("1", ",\"ExtendedS3DestinationUpdate\":{\"ErrorOutputPrefix\":\"\"}"),
                      0, &next, &e),
               CP_EINVAL);
    CPT_EQ_STR(e.msg.p, PREFIX_RULE "ErrorOutputPrefix cannot be null or empty when Prefix "
                                    "contains expressions");
    /* Shape errors name the update's own member path. */
    CPT_EQ_INT(update(dp,
                      UPD("1", ",\"ExtendedS3DestinationUpdate\":{\"CompressionFormat\":"
                               "\"BROTLI\"}"),
                      0, &next, &e),
               CP_EINVAL);
    CPT_EQ_STR(e.type, "ValidationException");
    CPT_EQ_STR(e.msg.p, "1 validation error detected: Value at 'extendedS3DestinationUpdate."
                        "compressionFormat' failed to satisfy constraint: Member must satisfy "
                        "enum value set: [ZIP, HADOOP_SNAPPY, Snappy, GZIP, UNCOMPRESSED]");
    CPT_EQ_INT(update(dp,
                      "{\"DeliveryStreamName\":\"x\",\"CurrentDeliveryStreamVersionId\":\"v1\","
                      "\"DestinationId\":\"destinationId-000000000001\"}",
                      0, &next, &e),
               CP_EINVAL);
    CPT_EQ_STR(e.msg.p, "1 validation error detected: Value 'v1' at "
                        "'currentDeliveryStreamVersionId' failed to satisfy constraint: Member "
                        "must satisfy regular expression pattern: [0-9]+");
    CPT_EQ_INT(update(dp, UPD("1", ""), 0, &next, &e), CP_EINVAL);
    CPT_EQ_STR(e.msg.p, "UpdateDestination needs ExtendedS3DestinationUpdate or "
                        "S3DestinationUpdate");
    CPT_EQ_INT(update(dp,
                      "{\"DeliveryStreamName\":\"x\",\"CurrentDeliveryStreamVersionId\":\"1\","
                      "\"DestinationId\":\"destinationId-000000000002\","
                      "\"S3DestinationUpdate\":{}}",
                      0, &next, &e),
               CP_EINVAL);
    CPT_EQ_STR(e.msg.p, "Destination Id destinationId-000000000002 not found for Firehose stream "
                        "livestream-comments-by-id");
    /* A legacy destination becomes extended through an extended update. */
    cp_ds_config *legacy = parse_ok(
        "{\"DeliveryStreamName\":\"old\",\"S3DestinationConfiguration\":{" ROLE "," BUCKET "}}", 0);
    CPT_EQ_INT(update(legacy,
                      "{\"DeliveryStreamName\":\"old\",\"CurrentDeliveryStreamVersionId\":\"1\","
                      "\"DestinationId\":\"destinationId-000000000001\","
                      "\"ExtendedS3DestinationUpdate\":{\"FileExtension\":\".log\"}}",
                      0, &next, &e),
               CP_OK);
    CPT_EQ_INT(next->legacy_s3, 0);
    CPT_EQ_STR(cp_ds_config_extension(next), ".log");
    cp_ds_config_free(next);
    cp_ds_config_free(legacy);
    cp_ds_config_free(dp);
    cp_ds_config_free(plain);
    cp_ds_err_free(&e);
}

/* ------------------------------------------------------------------------------------------ */
/* Tags                                                                                        */

static void tags_change_options_not_version(void)
{
    cp_ds_config *cur = parse_ok(by_id, 0), *next = NULL, *next2 = NULL;
    cp_ds_err e = CP_DS_ERR_INIT;
    cp_ds_tag add[] = {{"owner", "ops"},
                       {"changepipe:MaxActivePartitions", "9000"},
                       {"changepipe:SinkEndpoint", "minio"}};
    CPT_EQ_INT(cp_ds_config_tag(cur, add, 3, &next, &e), CP_OK);
    CPT_EQ_INT(next->version, 1);
    CPT_EQ_INT(next->ntags, 3);
    CPT_EQ_STR(next->tags[2].key, "owner");
    CPT_EQ_INT(next->max_active_partitions, 9000);
    CPT_EQ_STR(next->sink, "minio");
    cp_ds_tag repl[] = {{"owner", "data"}};
    CPT_EQ_INT(cp_ds_config_tag(next, repl, 1, &next2, &e), CP_OK);
    CPT_EQ_INT(next2->ntags, 3);
    CPT_EQ_STR(next2->tags[2].value, "data");
    cp_ds_config_free(next2);
    const char *keys[] = {"changepipe:SinkEndpoint", "absent"};
    CPT_EQ_INT(cp_ds_config_untag(next, keys, 2, &next2, &e), CP_OK);
    CPT_EQ_INT(next2->ntags, 2);
    CPT_CHECK(next2->sink == NULL);
    cp_ds_config_free(next2);
    cp_ds_tag bad[] = {{"changepipe:MaxActivePartitions", "0"}};
    CPT_EQ_INT(cp_ds_config_tag(next, bad, 1, &next2, &e), CP_EINVAL);
    CPT_EQ_STR(e.msg.p, "Tag changepipe:MaxActivePartitions must be an integer from 1 to 1000000");
    /* 50 tags at most. */
    cp_ds_tag many[50];
    char names[50][16];
    for (int i = 0; i < 50; i++) {
        snprintf(names[i], sizeof(names[i]), "k%02d", i);
        many[i] = (cp_ds_tag){names[i], ""};
    }
    CPT_EQ_INT(cp_ds_config_tag(cur, many, 50, &next2, &e), CP_OK);
    cp_ds_config_free(next2);
    CPT_EQ_INT(cp_ds_config_tag(next, many, 50, &next2, &e), CP_ELIMIT);
    CPT_EQ_STR(e.type, "LimitExceededException");
    cp_ds_config_free(next);
    cp_ds_config_free(cur);
    cp_ds_err_free(&e);
}

static void names_and_error_types(void)
{
    CPT_EQ_STR(cp_ds_status_name(CP_DS_ACTIVE), "ACTIVE");
    CPT_EQ_STR(cp_ds_status_name(CP_DS_DELETING_FAILED), "DELETING_FAILED");
    CPT_EQ_STR(cp_ds_compression_name(CP_DS_HADOOP_SNAPPY), "HADOOP_SNAPPY");
    CPT_EQ_STR(cp_ds_type_name(CP_DS_KINESIS), "KinesisStreamAsSource");
    char buf[32];
    snprintf(buf, sizeof(buf), "%s", "partitioning-failed");
    const char *t = cp_ds_error_type_intern(buf);
    CPT_CHECK(t != NULL && t != buf);
    CPT_EQ_STR(t, "partitioning-failed");
    CPT_CHECK(cp_ds_error_type_intern("nope") == NULL);
}

CPT_LIST = {
    {"article_by_id_parses", article_by_id_parses},
    {"article_by_id_describe", article_by_id_describe},
    {"article_by_time_parses_and_describes", article_by_time_parses_and_describes},
    {"aws_cli_request_bytes", aws_cli_request_bytes},
    {"defaults_filled", defaults_filled},
    {"native_processor_and_options", native_processor_and_options},
    {"create_rules_table", create_rules_table},
    {"extra_compressions_when_enabled", extra_compressions_when_enabled},
    {"persistence_round_trip", persistence_round_trip},
    {"update_merges_and_bumps_version", update_merges_and_bumps_version},
    {"update_rules", update_rules},
    {"tags_change_options_not_version", tags_change_options_not_version},
    {"names_and_error_types", names_and_error_types},
    {0},
};
