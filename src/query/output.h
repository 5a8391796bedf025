/* SPDX-License-Identifier: MIT */
/*
 * output: result sets as text. TABLE buffers a result set to size its columns (display width
 * counts East Asian wide characters, such as Korean chat messages, as two cells) and ends with
 * "(N rows)"; CSV and JSONL stream row by row.
 *
 * Values print as Athena shows them: booleans (declared type BOOLEAN) as true/false, reals in
 * their shortest round-trip form with a ".0" for integral values, 64-bit integers exactly,
 * NULL as "NULL" in TABLE, an empty field in CSV and null in JSONL. JSONL writes columns
 * declared as array/map/struct as JSON (not as strings) when their text is valid JSON, and
 * blobs as base64 strings.
 *
 * Threads: an output belongs to one thread.
 */
#ifndef CP_QUERY_OUTPUT_H
#define CP_QUERY_OUTPUT_H

#include <stdint.h>
#include <stdio.h>

#include "query/query.h"

typedef struct cp_output cp_output;

/* An output writing to `out` (borrowed) in format fmt (not AUTO). header: CSV header line.
 * Returns a new output: free with cp_output_free(). */
cp_output *cp_output_new(FILE *out, cp_query_format fmt, int header);
void cp_output_free(cp_output *o);

/* Start a result set (res borrowed for the call; names and types are copied). */
void cp_output_begin(cp_output *o, const cp_query_result *res);
/* One row (borrowed). */
void cp_output_row(cp_output *o, const cp_query_value *row);
/* End the result set: TABLE prints everything now. */
void cp_output_end(cp_output *o);

/* Number of terminal cells the UTF-8 text takes (wide characters count 2, combining marks 0). */
size_t cp_output_width(cp_slice s);

#endif
