/* SPDX-License-Identifier: MIT */
/*
 * UpdateDestination (firehose.md 1.9): optimistic concurrency on VersionId, then the members
 * given are merged into the stored destination and the result passes the create rules again.
 * Plus the tag operations, which change no version.
 */
#include "delivery/config.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/mem.h"
#include "delivery/config_int.h"

#define IAE "InvalidArgumentException"

struct cp_ds_update {
    char *name;
    char *version;
    char *destination_id;
    int extended;          /* ExtendedS3DestinationUpdate (else S3DestinationUpdate) */
    cp_ds_config *partial; /* only the members given (see the *_given flags) */
};

static const char *const other_updates[] = {"RedshiftDestinationUpdate",
                                            "ElasticsearchDestinationUpdate",
                                            "AmazonopensearchserviceDestinationUpdate",
                                            "SplunkDestinationUpdate",
                                            "HttpEndpointDestinationUpdate",
                                            "AmazonOpenSearchServerlessDestinationUpdate",
                                            "SnowflakeDestinationUpdate",
                                            "IcebergDestinationUpdate",
                                            NULL};

void cp_ds_update_free(cp_ds_update *u)
{
    if (!u) {
        return;
    }
    cp_free(u->name);
    cp_free(u->version);
    cp_free(u->destination_id);
    cp_ds_config_free(u->partial);
    cp_free(u);
}

const char *cp_ds_update_name(const cp_ds_update *u)
{
    return u->name;
}

int cp_ds_update_parse(cp_slice json, cp_ds_update **out, cp_ds_err *err)
{
    *out = NULL;
    cJSON *root = cJSON_ParseWithLength(json.p, json.len);
    if (!root) {
        return cp_ds_fail(err, "SerializationException", "Malformed JSON request body");
    }
    cp_vctx v;
    cp_v_init(&v);
    cp_ds_update *u = cp_calloc(1, sizeof(*u));
    u->partial = cp_calloc(1, sizeof(*u->partial));
    u->partial->options.validate_json_lines = -1;
    u->partial->dynamic_partitioning = -1; /* stays -1 unless Enabled is given */
    const char *s;
    if (cp_v_string(&v, root, "DeliveryStreamName", "", &cp_spec_stream_name, &s)) {
        u->name = cp_strdup(s);
    }
    if (cp_v_string(&v, root, "CurrentDeliveryStreamVersionId", "", &cp_spec_version_id, &s)) {
        u->version = cp_strdup(s);
    }
    if (cp_v_string(&v, root, "DestinationId", "", &cp_spec_destination_id, &s)) {
        u->destination_id = cp_strdup(s);
    }
    const cJSON *ext = cp_v_object(&v, root, "ExtendedS3DestinationUpdate", "", 0);
    const cJSON *legacy = cp_v_object(&v, root, "S3DestinationUpdate", "", 0);
    if (ext) {
        u->extended = 1;
        cp_ds_parse_destination(&v, ext, "extendedS3DestinationUpdate", 1, 1, u->partial);
    } else if (legacy) {
        cp_ds_parse_destination(&v, legacy, "s3DestinationUpdate", 0, 1, u->partial);
    }
    const char *other = NULL;
    for (const char *const *d = other_updates; *d && !other; d++) {
        other = cp_v_member(root, *d) ? *d : NULL;
    }
    int rc = cp_v_result(&v, err);
    if (rc == CP_OK && v.sem[0]) {
        rc = cp_ds_fail(err, IAE, "%s", v.sem);
    }
    if (rc == CP_OK && other) {
        rc = cp_ds_fail(err, IAE, "changepipe supports S3 destinations only, not %s", other);
    } else if (rc == CP_OK && ext && legacy) {
        rc = cp_ds_fail(err, IAE,
                        "Only one of ExtendedS3DestinationUpdate and S3DestinationUpdate can be "
                        "given");
    } else if (rc == CP_OK && !ext && !legacy) {
        rc = cp_ds_fail(err, IAE,
                        "UpdateDestination needs ExtendedS3DestinationUpdate or "
                        "S3DestinationUpdate");
    }
    cp_v_free(&v);
    cJSON_Delete(root);
    if (rc != CP_OK) {
        cp_ds_update_free(u);
        return rc;
    }
    *out = u;
    return CP_OK;
}

static void replace(char **dst, const char *src)
{
    if (src) {
        cp_free(*dst);
        *dst = cp_strdup(src);
    }
}

static void merge_s3(cp_ds_s3 *d, const cp_ds_s3 *s)
{
    replace(&d->role_arn, s->role_arn);
    replace(&d->bucket_arn, s->bucket_arn);
    replace(&d->prefix, s->prefix);
    replace(&d->error_output_prefix, s->error_output_prefix);
    if (s->size_given) {
        d->size_given = 1;
        d->size_mb = s->size_mb;
    }
    if (s->interval_given) {
        d->interval_given = 1;
        d->interval_s = s->interval_s;
    }
    if (s->compression_given) {
        d->compression_given = 1;
        d->compression = s->compression;
    }
    if (s->encryption_given) {
        d->encryption_given = 1;
        cp_free(d->kms_key_arn);
        d->kms_key_arn = cp_ds_strdup(s->kms_key_arn);
    }
    if (s->logging.given) {
        cp_free(d->logging.group);
        cp_free(d->logging.stream);
        d->logging = s->logging;
        d->logging.group = cp_ds_strdup(s->logging.group);
        d->logging.stream = cp_ds_strdup(s->logging.stream);
    }
}

static void merge(cp_ds_config *d, const cp_ds_config *s, int extended)
{
    merge_s3(&d->s3, &s->s3);
    if (!extended) {
        return;
    }
    d->legacy_s3 = 0; /* an extended update turns a legacy destination into an extended one */
    if (s->processing_given) {
        cp_ds_processors_free(d->processors, d->nprocessors);
        d->processors = cp_ds_processors_dup(s->processors, s->nprocessors);
        d->nprocessors = s->nprocessors;
        d->processing_given = 1;
        d->processing_enabled = s->processing_enabled;
    }
    if (s->backup_mode_given) {
        d->backup_mode_given = 1;
        d->backup_enabled = s->backup_enabled;
    }
    if (s->backup) {
        if (!d->backup) {
            d->backup = cp_calloc(1, sizeof(*d->backup));
        }
        merge_s3(d->backup, s->backup);
    }
    replace(&d->format_conversion, s->format_conversion);
    if (s->dp_given) {
        d->dp_given = 1;
        if (s->dynamic_partitioning >= 0) {
            d->dynamic_partitioning = s->dynamic_partitioning;
        }
        if (s->dp_retry_given) {
            d->dp_retry_given = 1;
            d->dp_retry_s = s->dp_retry_s;
        }
    }
    replace(&d->file_extension, s->file_extension);
    replace(&d->custom_time_zone, s->custom_time_zone);
}

int cp_ds_config_apply_update(const cp_ds_config *cur, const cp_ds_update *u,
                              const cp_ds_parse_opts *opts, cp_ds_config **next, cp_ds_err *err)
{
    *next = NULL;
    char *end;
    unsigned long long given = strtoull(u->version, &end, 10);
    if (*end || given != cur->version) {
        cp_ds_fail(err, "ConcurrentModificationException",
                   "Cannot update firehose: %s since the current version id: %u and specified "
                   "version id: %s do not match",
                   cur->name, cur->version, u->version);
        return CP_ECONDITION;
    }
    if (strcmp(u->destination_id, CP_DS_DESTINATION_ID) != 0) {
        return cp_ds_fail(err, IAE, "Destination Id %s not found for Firehose stream %s",
                          u->destination_id, cur->name);
    }
    cp_ds_config *n = NULL;
    cp_err cerr = {0};
    if (cp_ds_config_copy(cur, &n, &cerr) != CP_OK) {
        return cp_ds_fail(err, IAE, "%s", cerr.msg);
    }
    int was_backup = cur->backup != NULL;
    merge(n, u->partial, u->extended);
    int rc = CP_OK;
    if (!was_backup && n->backup && (!n->backup->role_arn || !n->backup->bucket_arn)) {
        rc = cp_ds_fail(err, IAE,
                        "S3BackupUpdate must include RoleARN and BucketARN when the Firehose "
                        "stream has no S3 backup configuration yet");
    }
    if (rc == CP_OK) {
        cp_ds_s3_defaults(&n->s3, n->dynamic_partitioning);
        rc = cp_ds_validate(n, cur, opts, err);
    }
    if (rc == CP_OK) {
        rc = cp_ds_finish(n, opts ? opts->zoneinfo_dir : NULL, err);
    }
    if (rc != CP_OK) {
        cp_ds_config_free(n);
        return rc;
    }
    n->version = cur->version + 1;
    n->update_ms = opts && opts->now_ms ? opts->now_ms : cp_clock_now_ms();
    *next = n;
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Tags                                                                                        */

static int tag_cmp(const void *a, const void *b)
{
    return strcmp(((const cp_ds_tag *) a)->key, ((const cp_ds_tag *) b)->key);
}

static int retag(cp_ds_config *n, cp_ds_config **next, cp_ds_err *err)
{
    qsort(n->tags, n->ntags, sizeof(*n->tags), tag_cmp);
    int rc = cp_ds_finish(n, NULL, err); /* re-derives the changepipe: options */
    if (rc != CP_OK) {
        cp_ds_config_free(n);
        return rc;
    }
    *next = n;
    return CP_OK;
}

int cp_ds_config_tag(const cp_ds_config *cur, const cp_ds_tag *tags, size_t count,
                     cp_ds_config **next, cp_ds_err *err)
{
    *next = NULL;
    cp_ds_config *n = NULL;
    cp_err cerr = {0};
    if (cp_ds_config_copy(cur, &n, &cerr) != CP_OK) {
        return cp_ds_fail(err, IAE, "%s", cerr.msg);
    }
    n->tags = cp_realloc(n->tags, (n->ntags + count + 1) * sizeof(*n->tags));
    for (size_t i = 0; i < count; i++) {
        size_t j = 0;
        while (j < n->ntags && strcmp(n->tags[j].key, tags[i].key) != 0) {
            j++;
        }
        if (j < n->ntags) {
            cp_free(n->tags[j].value);
        } else {
            n->tags[n->ntags++].key = cp_strdup(tags[i].key);
        }
        n->tags[j].value = cp_strdup(tags[i].value ? tags[i].value : "");
    }
    if (n->ntags > CP_DS_MAX_TAGS) {
        cp_ds_config_free(n);
        cp_ds_fail(err, "LimitExceededException",
                   "A Firehose stream can have at most %d tags; the request would leave it "
                   "with more",
                   CP_DS_MAX_TAGS);
        return CP_ELIMIT;
    }
    return retag(n, next, err);
}

int cp_ds_config_untag(const cp_ds_config *cur, const char *const *keys, size_t count,
                       cp_ds_config **next, cp_ds_err *err)
{
    *next = NULL;
    cp_ds_config *n = NULL;
    cp_err cerr = {0};
    if (cp_ds_config_copy(cur, &n, &cerr) != CP_OK) {
        return cp_ds_fail(err, IAE, "%s", cerr.msg);
    }
    size_t k = 0;
    for (size_t i = 0; i < n->ntags; i++) {
        int drop = 0;
        for (size_t j = 0; j < count && !drop; j++) {
            drop = strcmp(n->tags[i].key, keys[j]) == 0;
        }
        if (drop) {
            cp_free(n->tags[i].key);
            cp_free(n->tags[i].value);
        } else {
            n->tags[k++] = n->tags[i];
        }
    }
    n->ntags = k;
    return retag(n, next, err);
}
