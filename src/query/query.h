/* SPDX-License-Identifier: MIT */
/*
 * query: `changepipe query` as a library. Athena-style SQL over delivered objects, run by
 * SQLite through a virtual-table module (vtab.h):
 *
 *   CREATE EXTERNAL TABLE chat (livestreamid string, uid bigint, userid string,
 *                               message string, createdat string)
 *   ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
 *   LOCATION 's3://chat-bucket/Livestreams/';
 *   SELECT livestreamid, COUNT(*) FROM chat GROUP BY livestreamid ORDER BY 1;
 *
 * Statements of our own (ddl.h): CREATE EXTERNAL TABLE, DROP TABLE, SHOW TABLES, SHOW CREATE
 * TABLE, SHOW COLUMNS, SHOW PARTITIONS, DESCRIBE, MSCK REPAIR TABLE (a no-op). Every other
 * statement is SQLite's SQL, run against the catalog tables it names (SELECT with WHERE,
 * GROUP BY, COUNT(*), ORDER BY, joins, CTEs, window functions, json_extract, ...). Tables are
 * kept in the catalog (catalog.h) under the data directory, so later runs can name them.
 * Objects come from the local bucket store or an S3-compatible endpoint (source.h).
 *
 * Usage: cp_query_run() for one shot, or a session (cp_query_open, cp_query_exec /
 * cp_query_each, cp_query_close) when several scripts share one catalog and source, e.g. the
 * load generator's --verify running its checks in the server's process.
 *
 * Threads: a session belongs to one thread, except cp_query_interrupt.
 */
#ifndef CP_QUERY_QUERY_H
#define CP_QUERY_QUERY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/buf.h"
#include "core/err.h"

typedef struct cp_bucket_store cp_bucket_store;

typedef enum cp_query_format {
    CP_QUERY_FORMAT_AUTO = 0, /* TABLE when `out` is a terminal, CSV otherwise */
    CP_QUERY_FORMAT_TABLE,    /* aligned columns, "(N rows)" footer */
    CP_QUERY_FORMAT_CSV,      /* RFC 4180, header line first (unless no_header) */
    CP_QUERY_FORMAT_JSONL,    /* one JSON object per row */
} cp_query_format;

/* "table", "csv", "json" / "jsonl" / "json-lines" (case-insensitive) -> format. CP_OK or
 * CP_EINVAL. */
int cp_query_format_parse(const char *name, cp_query_format *out);

typedef struct cp_query_opts {
    /* The data directory: the catalog lives in <data_dir>/query/catalog.json and, when neither
     * store nor endpoint is given, objects are read from <data_dir>/buckets. */
    const char *data_dir;
    /* Overrides the catalog file; NULL = derive from data_dir; both NULL = a catalog in memory
     * for this session only. */
    const char *catalog_path;
    /* An open local store (borrowed, must outlive the session): in-process callers pass the
     * server's, since a store directory can be opened by one process at a time. */
    cp_bucket_store *store;
    /* Read from an S3-compatible endpoint instead (http[s]://host:port, path-style, SigV4
     * with the credentials below); takes precedence over store and the data directory's
     * buckets. The catalog still lives under data_dir / catalog_path. */
    const char *endpoint;
    const char *region; /* NULL = us-east-1 */
    const char *access_key;
    const char *secret_key;
    const char *session_token;
    cp_query_format format;
    int no_header; /* CSV: leave out the header line */
    /* Notes for a person, one line each, e.g. "1 malformed line ignored", "Table chat
     * created". NULL = none. */
    FILE *diag;
} cp_query_opts;

/* One value of a result row. */
typedef enum cp_query_vtype {
    CP_QUERY_NULL = 0,
    CP_QUERY_INT,  /* i: exact 64-bit integer (bigint, int, boolean 0/1, ...) */
    CP_QUERY_REAL, /* d */
    CP_QUERY_TEXT, /* s: UTF-8 */
    CP_QUERY_BLOB, /* s */
} cp_query_vtype;

typedef struct cp_query_value {
    cp_query_vtype type;
    int64_t i;
    double d;
    cp_slice s; /* TEXT/BLOB: borrowed for the callback */
} cp_query_value;

/* The shape of a result set; borrowed for the callback. */
typedef struct cp_query_result {
    size_t ncols;
    const char *const *names;     /* column names */
    const char *const *decltypes; /* declared types (e.g. "BIGINT", "BOOLEAN INT"); entries may
                                   * be NULL for expressions */
} cp_query_result;

/* Called once per result row; a non-zero return stops the script and is returned. */
typedef int (*cp_query_row_cb)(void *ctx, const cp_query_result *res, const cp_query_value *row);

typedef struct cp_query_stats {
    uint64_t statements;        /* statements run */
    uint64_t rows;              /* result rows produced */
    uint64_t list_calls;        /* listing requests */
    uint64_t objects_listed;    /* objects seen in listings */
    uint64_t objects_pruned;    /* objects skipped by partition/$path constraints, unopened */
    uint64_t objects_opened;    /* objects read */
    uint64_t bytes_read;        /* bytes read from objects (compressed size for gzip) */
    uint64_t lines;             /* non-blank lines decoded */
    uint64_t malformed_ignored; /* malformed lines read as NULL rows ('ignore.malformed.json') */
} cp_query_stats;

typedef struct cp_query cp_query;

/*
 * Start a session: load the catalog, prepare SQLite. Objects are not touched until a
 * statement reads a table. opts and its strings are copied (store is borrowed). On CP_OK *out
 * is new: close with cp_query_close(). Errors: CP_ECORRUPT (catalog file), -errno.
 */
int cp_query_open(const cp_query_opts *opts, cp_query **out, cp_err *err);
void cp_query_close(cp_query *q);

/*
 * Run a script (statements separated by ';') and print each result set to `out` in the
 * session's format (a blank line between result sets). Stops at the first failing statement.
 * Returns CP_OK, or CP_EINVAL (bad SQL or DDL, missing table, malformed data: err->msg is
 * Athena-like, e.g. "HIVE_CURSOR_ERROR: Row is not a valid JSON Object - ... in
 * s3://bucket/key line 7"), CP_EEXIST (CREATE of an existing table), CP_ENOTFOUND (DROP of
 * a missing table, or the LOCATION's bucket is missing), CP_EINUSE (the data directory
 * belongs to a running server), -errno. err->msg is cut at 255 bytes; cp_query_errmsg() has
 * the whole text.
 */
int cp_query_exec(cp_query *q, const char *sql, FILE *out, cp_err *err);
/* As cp_query_exec, but every result row goes to cb instead of being printed. */
int cp_query_each(cp_query *q, const char *sql, cp_query_row_cb cb, void *ctx, cp_err *err);

/* The full message of the last failure ("" if none). Valid until the next call on q. */
const char *cp_query_errmsg(const cp_query *q);
/* Counters since the session started (cumulative over statements). */
void cp_query_get_stats(const cp_query *q, cp_query_stats *out);
/* Make the running statement fail with "interrupted" as soon as possible. Any thread. */
void cp_query_interrupt(cp_query *q);

/*
 * One shot: open a session with opts, run the script printing to out (notes to opts->diag),
 * close. Returns as cp_query_exec, with the message in err (cut at 255 bytes: a session and
 * cp_query_errmsg give the whole text when object keys are very long). Nothing is logged.
 */
int cp_query_run(const cp_query_opts *opts, const char *sql, FILE *out, cp_err *err);

/* "1 malformed line ignored" / "N malformed lines ignored" into buf. Returns buf. */
const char *cp_query_malformed_note(uint64_t n, char *buf, size_t cap);

#endif
