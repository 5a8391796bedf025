/* SPDX-License-Identifier: MIT */
/*
 * catalog: the tables CREATE EXTERNAL TABLE defined, kept so later queries (and later
 * processes) can name them, like Athena's Glue Data Catalog. One JSON file,
 * <data>/query/catalog.json:
 *
 *   {"version":1,"tables":[{"name":"chat","ddl":"CREATE EXTERNAL TABLE chat (...) ..."}]}
 *
 * Each entry keeps the statement text; it is parsed again on load, so what a table means is
 * defined by one parser. Changes lock <data>/query/catalog.lock (flock), re-read the file,
 * apply, and replace it atomically (temp file, fsync, rename, fsync directory), so two
 * processes creating tables at once both land. Readers notice another process's change on the
 * next cp_catalog_refresh (the file's identity and mtime are compared).
 *
 * A catalog opened with no path lives in memory only (tables last for the session).
 *
 * Threads: a catalog belongs to one thread.
 */
#ifndef CP_QUERY_CATALOG_H
#define CP_QUERY_CATALOG_H

#include <stddef.h>

#include "core/err.h"
#include "query/ddl.h"

typedef struct cp_catalog cp_catalog;

/*
 * Open the catalog stored at `path` (borrowed; NULL = in memory), creating the directory but
 * not the file (a missing file is an empty catalog). On CP_OK *out is new: close with
 * cp_catalog_close(). Errors: CP_ECORRUPT (the file is not a catalog, or an entry no longer
 * parses; err names it), -errno.
 */
int cp_catalog_open(const char *path, cp_catalog **out, cp_err *err);
/* Free the catalog. NULL is a no-op. */
void cp_catalog_close(cp_catalog *c);

/* Re-read the file if another process changed it. Returns CP_OK, or errors as open (the old
 * contents stay in place on error). Invalidates every table pointer when it reloads; *changed
 * (may be NULL) says whether it did. */
int cp_catalog_refresh(cp_catalog *c, int *changed, cp_err *err);

/* Tables in name order. Borrowed: valid until the next add, drop or reloading refresh. */
size_t cp_catalog_count(const cp_catalog *c);
const cp_ddl_table *cp_catalog_at(const cp_catalog *c, size_t i);
/* The table called `name` (case-insensitive), or NULL. Valid as cp_catalog_at. */
const cp_ddl_table *cp_catalog_find(const cp_catalog *c, const char *name);

/*
 * Store table t. Takes ownership of t (also on failure). Returns CP_OK, CP_EEXIST when a table
 * of that name exists (the catalog is unchanged; err says so), -errno when the file cannot be
 * written (nothing changed).
 */
int cp_catalog_add(cp_catalog *c, cp_ddl_table *t, cp_err *err);
/* Remove table `name`. Returns CP_OK, CP_ENOTFOUND, or -errno. */
int cp_catalog_drop(cp_catalog *c, const char *name, cp_err *err);

#endif
