/* SPDX-License-Identifier: MIT */
/*
 * jsonrow: one line of a delivered object -> one row of a table, the way Athena's JSON SerDes
 * read it. Parsing is split in two, like Hive's lazy object inspectors: cp_jsonrow_parse lexes
 * the whole line once (a syntax error fails the row) and remembers where each declared
 * column's value is; cp_jsonrow_get converts one column on demand (a value that does not fit
 * its type fails only when that column is read). COUNT(*) therefore never converts anything.
 *
 * Matching (SerDe properties):
 *   - JSON keys match column names case-insensitively ('case.insensitive'='false' makes it
 *     exact; column names are lower case, so mixed-case keys then need a mapping);
 *   - 'mapping.<column>'='<json key>' reads that key for the column;
 *   - 'dots.in.keys'='true' lets key "a.b" match column a_b (OpenX);
 *   - keys that match no column are skipped (but still validated); absent keys are NULL;
 *   - with the OpenX SerDe a key given twice for one column fails the row ("Duplicate key",
 *     as Athena reports); with the HCatalog SerDe the last one wins.
 *
 * Conversions (ddl.h lists the SQLite value per type):
 *   - JSON null, and "" for any non-string type, are NULL;
 *   - integers are parsed digit by digit into int64 (never through double), range-checked per
 *     type; numbers with a fraction or exponent are accepted for integer columns only when
 *     they are integral and below 2^53; quoted numbers ("42") are accepted;
 *   - strings take numbers and booleans as their JSON text and objects/arrays as JSON text;
 *   - boolean takes true/false and the strings "true"/"false" (any case);
 *   - timestamp takes 'YYYY-MM-DD[ T]HH:MM[:SS[.fff]][Z|+HH:MM]' (converted to UTC) or a
 *     number of epoch seconds (milliseconds when its magnitude is at least 1e11);
 *   - array/map/struct take a JSON array/object and keep its text.
 *
 * Threads: a cp_jsonrow belongs to one thread.
 */
#ifndef CP_QUERY_JSONROW_H
#define CP_QUERY_JSONROW_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "query/ddl.h"

typedef enum cp_jsonrow_vtype {
    CP_JV_NULL = 0,
    CP_JV_INT,
    CP_JV_REAL,
    CP_JV_TEXT,
} cp_jsonrow_vtype;

typedef struct cp_jsonrow_value {
    cp_jsonrow_vtype type;
    int64_t i;  /* CP_JV_INT */
    double d;   /* CP_JV_REAL */
    cp_slice s; /* CP_JV_TEXT: valid until the next parse/get/convert on the same row */
} cp_jsonrow_value;

typedef struct cp_jsonrow cp_jsonrow;

/* A decoder for table t's data columns (t->cols) and SerDe properties. t is borrowed and must
 * outlive the decoder. Returns a new decoder: free with cp_jsonrow_free(). */
cp_jsonrow *cp_jsonrow_new(const cp_ddl_table *t);
void cp_jsonrow_free(cp_jsonrow *r);

/*
 * Lex one line (borrowed; it must stay valid until the row's values have been read). Returns
 * CP_OK, or CP_EINVAL with err->msg "HIVE_CURSOR_ERROR: Row is not a valid JSON Object -
 * <reason> at character <n>" (1-based). After an error the row reads as all NULL.
 */
int cp_jsonrow_parse(cp_jsonrow *r, cp_slice line, cp_err *err);
/* Make the current row all NULL (a malformed line under 'ignore.malformed.json'). */
void cp_jsonrow_set_null(cp_jsonrow *r);

/*
 * Convert data column `col` of the current row into *out. Returns CP_OK, or CP_EINVAL with
 * err->msg "HIVE_BAD_DATA: Error parsing field value '<v>' for field <col>: <reason>".
 */
int cp_jsonrow_get(cp_jsonrow *r, size_t col, cp_jsonrow_value *out, cp_err *err);

/*
 * Convert a plain string (a partition value from an object path) with `type`, as if it were a
 * JSON string. scratch holds converted text (out->s may point into it or into text). Errors
 * as cp_jsonrow_get, naming `field`.
 */
int cp_jsonrow_convert_text(const cp_ddl_type *type, const char *field, cp_slice text,
                            cp_buf *scratch, cp_jsonrow_value *out, cp_err *err);

/* Epoch milliseconds as Athena prints a timestamp: "YYYY-MM-DD HH:MM:SS.mmm" (UTC), into
 * buf (at least 32 bytes). Returns the length. */
size_t cp_jsonrow_format_ts(int64_t ms, char *buf);

/* Parse an Athena-style timestamp string into epoch milliseconds. Returns CP_OK or
 * CP_EINVAL. */
int cp_jsonrow_parse_ts(cp_slice s, int64_t *ms);

#endif
