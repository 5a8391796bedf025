/* SPDX-License-Identifier: MIT */
/*
 * vtab: the SQLite virtual-table module that makes a catalog table readable by SQL. One row
 * per non-blank line of every object under the table's LOCATION (recursively), in key order.
 *
 * Columns, in order:
 *   - the declared data columns (jsonrow.h decodes them lazily);
 *   - PARTITIONED BY columns (visible, as in Athena), from `key=value` path segments in
 *     declared order right below LOCATION; objects outside such folders are not part of any
 *     partition and are not read, as Athena ignores them;
 *   - for tables without PARTITIONED BY: partition columns DISCOVERED when the table is opened
 *     (one listing per folder level, following the first folder at each level): every
 *     `key=value` segment name that is not a data column becomes a HIDDEN string column (not
 *     in SELECT *, usable in WHERE and select lists), valued from the first segment with that
 *     key in each object's path, NULL where absent. Disable with TBLPROPERTIES
 *     ('changepipe.partition.discovery'='false'). A key that is also a data column stays a
 *     data column (the JSON value wins; no pruning on it);
 *   - hidden pseudo-columns "$path" ('s3://bucket/key'), "$file_size" and
 *     "$file_modified_time", as Athena has.
 *
 * Pruning: equality and IN constraints on partition columns (and "$path") reach xBestIndex,
 * and the whole IN list is taken at once (sqlite3_vtab_in). The listing then walks folder by
 * folder down to the deepest constrained level, skipping every `key=value` folder whose value
 * cannot match, and every other object is checked against the constraints from its key alone:
 * no object is opened unless its partition values can match. Pruning is conservative (SQLite
 * still checks every constraint on every row), so it can only save work, never change results.
 *
 * Like Hive, files and folders whose names start with '_' or '.' are not read.
 *
 * Where we differ from Athena on purpose: blank lines (a record's trailing newline) are not
 * rows; a line holding two JSON objects back to back ({...}{...}, records delivered without
 * a newline) is malformed, where Athena's OpenX SerDe silently keeps the first object and
 * loses the rest; 'ignore.malformed.json' is honoured for the HCatalog SerDe too.
 *
 * Malformed lines fail the statement with "HIVE_CURSOR_ERROR: ... in s3://bucket/key line N";
 * with SERDEPROPERTIES ('ignore.malformed.json'='true') they read as a row of NULL data
 * columns (partition and pseudo-columns keep their values) and are counted in
 * stats.malformed_ignored. A value that does not fit its column's type fails the statement
 * when that column is read ("HIVE_BAD_DATA: ... in s3://bucket/key line N").
 *
 * Threads: the module is used by the one thread that owns the sqlite3 connection.
 */
#ifndef CP_QUERY_VTAB_H
#define CP_QUERY_VTAB_H

#include <sqlite3.h>
#include <stdint.h>

#include "core/err.h"
#include "query/ddl.h"
#include "query/source.h"

#define CP_VTAB_MODULE "cp_athena_json"

/* Counters over every scan of the connection (cumulative). */
typedef struct cp_vtab_stats {
    uint64_t list_calls;        /* listing requests (one per folder level walked) */
    uint64_t objects_listed;    /* objects seen in listings */
    uint64_t objects_pruned;    /* objects skipped from their key alone (partitions, $path) */
    uint64_t objects_opened;    /* objects actually read */
    uint64_t bytes_read;        /* bytes read from opened objects (compressed size for gzip) */
    uint64_t lines;             /* non-blank lines read */
    uint64_t malformed_ignored; /* malformed lines that became NULL rows */
} cp_vtab_stats;

typedef struct cp_vtab_env {
    /* The definition of table `name` (lower case), or NULL; borrowed for the call. */
    const cp_ddl_table *(*lookup)(void *ctx, const char *name);
    /* The object source, opened on first use; *out is borrowed from the env's owner and must
     * outlive the connection's statements. */
    int (*source)(void *ctx, const cp_source **out, cp_err *err);
    void *ctx;
    cp_vtab_stats stats;
} cp_vtab_env;

/*
 * Register the module on db. env is borrowed and must outlive db. Tables are then made with
 * `CREATE VIRTUAL TABLE <name> USING cp_athena_json` (the name is looked up through env).
 * Returns CP_OK or CP_EIO.
 */
int cp_vtab_register(sqlite3 *db, cp_vtab_env *env);

/*
 * SHOW PARTITIONS: call cb once per distinct partition ("k1=v1/k2=v2", as the path spells the
 * values) of table t, in sorted order. Declared partitions, or discovered ones for tables
 * without PARTITIONED BY. Returns CP_OK, CP_EINVAL when the table has no partition columns,
 * source errors, or cb's non-zero value.
 */
typedef int (*cp_vtab_partition_cb)(void *ctx, const char *partition);
int cp_vtab_partitions(const cp_ddl_table *t, const cp_source *src, cp_vtab_stats *stats,
                       cp_vtab_partition_cb cb, void *ctx, cp_err *err);

#endif
