/* SPDX-License-Identifier: MIT */
/*
 * The article's transform, as a Lambda function would write it: turn one DynamoDB change
 * record (the bytes a Kinesis streaming destination carries) into the team's flat JSON line
 * and pick the attributes that become Firehose partition keys. changepipe's native processor
 * (Type DynamoDBChangeRecord) does the same in-process and must produce the same bytes; the
 * unit tests run both and compare.
 *
 * This file is written separately from src/delivery/processors/native.c on purpose (it reads
 * the record into a small tree first, as a function author would), so the comparison tests
 * two implementations of one specification, not one implementation twice.
 */
#ifndef FH_TRANSFORM_H
#define FH_TRANSFORM_H

#include <stddef.h>

#include "core/buf.h"

#define FH_MAX_KEYS 50

typedef struct fh_options {
    const char *partition_keys[FH_MAX_KEYS]; /* top-level attributes to return as keys */
    size_t npartition_keys;
    int include_event_name;    /* append "eventName" */
    int include_creation_time; /* append "ApproximateCreationDateTime" */
    int append_newline;        /* end the line with "\n" (Athena's JSON SerDe needs it) */
} fh_options;

typedef struct fh_keys {
    size_t n;
    const char *name[FH_MAX_KEYS]; /* borrowed from the options */
    cp_buf value[FH_MAX_KEYS];     /* decoded value text */
} fh_keys;

/* Read options from the environment: PARTITION_KEY_ATTRIBUTES (comma list, default
 * "LivestreamID"; empty for none), INCLUDE_EVENT_NAME, INCLUDE_APPROXIMATE_CREATION_DATE_TIME
 * (default false), APPEND_NEWLINE (default true). The names point into the environment. */
void fh_options_from_env(fh_options *o);

/* Transform one change record. On success out holds the line and keys the partition keys (S
 * and N attributes with a non-empty value). Returns -1 with *why set when the record is not a
 * change record; the function then answers ProcessingFailed for it. */
int fh_transform(const fh_options *o, cp_slice record, cp_buf *out, fh_keys *keys,
                 const char **why);

void fh_keys_free(fh_keys *k);

#endif
