/* SPDX-License-Identifier: MIT */
/*
 * Private to the Firehose control plane (config*.c, api.c): the shape validator that turns a
 * cJSON request into typed values while collecting Smithy-style constraint violations, and the
 * config internals shared by parse, update and describe.
 */
#ifndef CP_DELIVERY_CONFIG_INT_H
#define CP_DELIVERY_CONFIG_INT_H

#include <cjson/cJSON.h>

#include "delivery/config.h"

/* Violations of one request, in the order found. */
typedef struct cp_vctx {
    cp_buf msgs;    /* "Value ... failed to satisfy constraint: ..." joined with "; " */
    int n;          /* violations */
    int serr;       /* a JSON type mismatch: SerializationException wins over violations */
    char smsg[160]; /* its message */
    int redact;     /* "Value at '<path>'" without the value (Firehose prints destination
                     * members that way, firehose.md 1.1 / floci probes) */
    char sem[300];  /* the first semantic problem noticed while parsing (reported as
                     * InvalidArgumentException once the shape is valid) */
} cp_vctx;

void cp_v_init(cp_vctx *v);
void cp_v_free(cp_vctx *v);
/* Record a violation. value NULL prints "Value null at" (unless redacting). */
void cp_v_add(cp_vctx *v, const char *value, const char *path, const char *rule, ...)
    CP_PRINTF(4, 5);
/* A violation printed without a value ("Value at '<path>'"): lists. */
void cp_v_add_bare(cp_vctx *v, const char *path, const char *fmt, ...) CP_PRINTF(3, 4);
/* CP_OK when nothing was recorded; else CP_EINVAL with err filled (SerializationException or
 * ValidationException with the "N validation error(s) detected: " header). */
int cp_v_result(const cp_vctx *v, cp_ds_err *err);
/* Set err to (type, formatted message) and return CP_EINVAL. */
int cp_ds_fail(cp_ds_err *err, const char *type, const char *fmt, ...) CP_PRINTF(3, 4);

/* "<parent>.<member>" with the member in lowerCamelCase, as Smithy paths print it. */
void cp_v_path(char *out, size_t cap, const char *parent, const char *member);

/* Constraints of a string member. */
typedef struct cp_strspec {
    int required;
    size_t min, max;             /* length in UTF-16 units, as Java counts; max 0 = none */
    int (*match)(const char *s); /* the pattern, or NULL */
    const char *pattern;         /* pattern text as AWS prints it */
    const char *const *enums;    /* NULL-terminated enum values, or NULL */
    const char *enum_set;        /* "[A, B, C]" as AWS prints it */
} cp_strspec;

/* Check a string value at `path` against a spec (not its required flag). */
void cp_v_check(cp_vctx *v, const char *value, const char *path, const cp_strspec *spec);
/* A member of object `obj` (NULL when absent or JSON null). */
const cJSON *cp_v_member(const cJSON *obj, const char *name);
/* String member: returns 1 and sets *out (borrowed from the cJSON tree) when present (even if
 * it violates the spec), 0 when absent. Type mismatches set serr. */
int cp_v_string(cp_vctx *v, const cJSON *obj, const char *name, const char *parent,
                const cp_strspec *spec, const char **out);
/* Integer member with a range check (min/max inclusive). */
int cp_v_int(cp_vctx *v, const cJSON *obj, const char *name, const char *parent, int required,
             int64_t min, int64_t max, int64_t *out);
int cp_v_bool(cp_vctx *v, const cJSON *obj, const char *name, int *out);
/* Object / array member: NULL when absent (a violation when required), or on a type mismatch. */
const cJSON *cp_v_object(cp_vctx *v, const cJSON *obj, const char *name, const char *parent,
                         int required);
const cJSON *cp_v_array(cp_vctx *v, const cJSON *obj, const char *name, const char *parent,
                        int required, int min, int max);

/* Shared string specs. */
extern const cp_strspec cp_spec_stream_name;     /* DeliveryStreamName, required */
extern const cp_strspec cp_spec_stream_name_opt; /* ... optional (ExclusiveStart...) */
extern const cp_strspec cp_spec_stream_type;     /* DeliveryStreamType */
extern const cp_strspec cp_spec_tag_key;
extern const cp_strspec cp_spec_tag_value;

extern const cp_strspec cp_spec_version_id;         /* CurrentDeliveryStreamVersionId */
extern const cp_strspec cp_spec_destination_id;     /* DestinationId, required */
extern const cp_strspec cp_spec_destination_id_opt; /* ExclusiveStartDestinationId */

/* Tags list members (TagDeliveryStream.Tags, CreateDeliveryStream.Tags): parsed and checked;
 * returns the count or -1 (violations recorded). *tags owned by the caller. */
int cp_v_tags(cp_vctx *v, const cJSON *arr, const char *path, cp_ds_tag **tags);
void cp_ds_tags_free(cp_ds_tag *tags, size_t n);

/* Parse the destination-shaped members of `obj` into cfg (create or update shape). */
void cp_ds_parse_destination(cp_vctx *v, const cJSON *obj, const char *path, int extended,
                             int update, cp_ds_config *cfg);
/* KinesisStreamSourceConfiguration, DeliveryStreamEncryptionConfigurationInput and
 * DirectPutSourceConfiguration of a create request. */
void cp_ds_parse_source(cp_vctx *v, const cJSON *root, cp_ds_config *cfg, int *has_kinesis);
/* The ChangepipeOptions member. */
void cp_ds_parse_options(cp_vctx *v, const cJSON *o, cp_ds_options *opt);
/* Semantic rules (1.8) on a complete config. `prev` is the stored config for an update,
 * NULL at create. CP_OK or CP_EINVAL with InvalidArgumentException. */
int cp_ds_validate(const cp_ds_config *cfg, const cp_ds_config *prev, const cp_ds_parse_opts *o,
                   cp_ds_err *err);
/* Compute the derived members (bucket, buffer sizes, tz, effective options). CP_EINVAL with
 * InvalidArgumentException for an unknown CustomTimeZone or a bad changepipe: tag value. */
int cp_ds_finish(cp_ds_config *cfg, const char *zoneinfo_dir, cp_ds_err *err);
/* Deep-copy helpers. */
cp_ds_s3 *cp_ds_s3_dup(const cp_ds_s3 *s);
void cp_ds_s3_clear(cp_ds_s3 *s);
void cp_ds_processors_free(cp_ds_processor *p, size_t n);
cp_ds_processor *cp_ds_processors_dup(const cp_ds_processor *p, size_t n);
char *cp_ds_strdup(const char *s); /* NULL-safe */
/* Apply the S3 defaults to the effective members (size, interval, compression). */
void cp_ds_s3_defaults(cp_ds_s3 *s, int dynamic_partitioning);

/* Epoch seconds with a fraction, as Firehose prints timestamps ("1767225600.123"). */
void cp_ds_put_time(cp_buf *out, int64_t ms);

#endif
