/* SPDX-License-Identifier: MIT */
/*
 * Firehose's S3 prefix language (firehose.md section 2) and object-key naming (section 2.6).
 * A Prefix / ErrorOutputPrefix template is compiled once per delivery-stream version into a
 * list of literal and expression segments:
 *
 *   !{timestamp:<Java DateTimeFormatter pattern>}   the object's instant in the stream's zone
 *   !{firehose:random-string}                       11 chars, new per occurrence
 *   !{firehose:error-output-type}                   processing-failed, partitioning-failed, ...
 *   !{partitionKeyFromQuery:<key>}                  a MetadataExtraction (jq) key of the record
 *   !{partitionKeyFromLambda:<key>}                 a metadata.partitionKeys key from the Lambda
 *
 * Compilation rejects malformed `!{`, unknown namespaces and unknown pattern letters (the
 * create-time InvalidArgumentException); evaluation renders one prefix for one object or record.
 *
 * random-string is deterministic: occurrence k of an evaluation gets hex from MD5(seed, k), so
 * the engine gets the same key for the same object after a crash (exactly-once) while distinct
 * occurrences and distinct seeds still differ.
 *
 * Threads: a compiled cp_prefix is immutable; evaluate it from any number of threads.
 */
#ifndef CP_DELIVERY_PREFIX_H
#define CP_DELIVERY_PREFIX_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "delivery/batch.h"
#include "delivery/tz.h"

typedef struct cp_prefix cp_prefix;

/* Evaluated Prefix / ErrorOutputPrefix limit (characters), firehose.md 2.5. */
#define CP_PREFIX_EVAL_MAX 512
/* The default template for the time part: Prefix absent, empty or static. */
#define CP_PREFIX_DEFAULT_TIME "!{timestamp:yyyy/MM/dd/HH/}"
/* errorCode the engine writes for records whose prefix cannot be evaluated. */
#define CP_PREFIX_ERROR_CODE "DynamicPartitioning.MetadataExtractionFailed"

/* Properties of a compiled template (cp_prefix_flags). */
#define CP_PREFIX_HAS_EXPR       0x01u /* at least one !{...} */
#define CP_PREFIX_USES_TIMESTAMP 0x02u
#define CP_PREFIX_USES_RANDOM    0x04u
#define CP_PREFIX_USES_ERRTYPE   0x08u
#define CP_PREFIX_USES_QUERY     0x10u /* partitionKeyFromQuery */
#define CP_PREFIX_USES_LAMBDA    0x20u /* partitionKeyFromLambda */

typedef enum {
    CP_PREFIX_NS_QUERY,  /* partitionKeyFromQuery */
    CP_PREFIX_NS_LAMBDA, /* partitionKeyFromLambda */
} cp_prefix_ns;

/* Compile a template exactly as written (nothing appended). On CP_OK *out is the caller's, to
 * free with cp_prefix_free. CP_EINVAL with a message naming the bad expression otherwise
 * (the caller words it as InvalidArgumentException). */
int cp_prefix_compile(cp_slice tmpl, cp_prefix **out, cp_err *err);

/* The data prefix with Firehose's defaults (2.5): `prefix` NULL or "" -> yyyy/MM/dd/HH/;
 * static (no !{) -> prefix + yyyy/MM/dd/HH/, concatenated with no '/' added; with expressions
 * -> as written. Errors as cp_prefix_compile. */
int cp_prefix_compile_data(const char *prefix, cp_prefix **out, cp_err *err);

/* The error prefix with defaults: `error_prefix` with expressions -> as written; static
 * non-empty -> error_prefix + yyyy/MM/dd/HH/; NULL or "" -> data prefix (if static, else "")
 * + <error-output-type>/yyyy/MM/dd/HH/. CP_EINVAL when error_prefix is absent but `prefix` has
 * expressions (rule 5 of the create-time checks), or as cp_prefix_compile. */
int cp_prefix_compile_error(const char *error_prefix, const char *prefix, cp_prefix **out,
                            cp_err *err);

/* Release a compiled template (NULL is ignored). */
void cp_prefix_free(cp_prefix *p);

/* The effective template text (defaults applied); valid while p lives. */
const char *cp_prefix_text(const cp_prefix *p);
/* CP_PREFIX_* bits of the effective template. */
unsigned cp_prefix_flags(const cp_prefix *p);
/* Distinct partition keys the template references, in first-use order: count, and the i-th
 * (name valid while p lives). */
size_t cp_prefix_nkeys(const cp_prefix *p);
void cp_prefix_key(const cp_prefix *p, size_t i, cp_prefix_ns *ns, const char **name);

/* Inputs of one evaluation (all borrowed for the call). */
typedef struct cp_prefix_vars {
    int64_t instant_ms;     /* arrival time of the oldest record of the object (2.4) */
    const cp_tz *tz;        /* CustomTimeZone; NULL = UTC */
    const char *error_type; /* for !{firehose:error-output-type}; NULL if not an error prefix */
    const cp_drec *rec;     /* partition keys (query_keys / lambda_keys); NULL if none */
    uint64_t random_seed;   /* random-string occurrence k = f(seed, k): same seed, same text */
} cp_prefix_vars;

/* Append the evaluated prefix to `out`. Returns CP_OK; CP_EINVAL when a referenced partition
 * key is missing or empty (the engine's partitioning-failed, err->msg is the errorMessage), or
 * the template needs error_type and none was given; CP_ETOOBIG when the result is longer than
 * CP_PREFIX_EVAL_MAX characters. On error `out` is restored to its length at entry. */
int cp_prefix_eval(const cp_prefix *p, const cp_prefix_vars *v, cp_buf *out, cp_err *err);

/* Append an object key (2.6):
 *   <prefix><stream>-<version>-yyyy-MM-dd-HH-mm-ss-<uuid 8-4-4-4-12 lower hex><ext>
 * with the time fields of instant_ms in tz (NULL = UTC). ext may be NULL or "". */
void cp_object_key(cp_buf *out, cp_slice evaluated_prefix, const char *stream, uint32_t version,
                   int64_t instant_ms, const cp_tz *tz, const unsigned char uuid16[16],
                   const char *ext);

/* Keys a jq MetadataExtractionQuery produces, when it is a plain object construction such as
 * {customer:.id, "day":.ts|strftime("%d")} (static analysis, no jq run). Returns the number
 * of keys and fills names[] (up to cap, copies the caller frees with cp_free), or -1 when the
 * query's keys cannot be known without running it (the create-time key checks are skipped). */
int cp_prefix_jq_keys(const char *query, char **names, int cap);

#endif
