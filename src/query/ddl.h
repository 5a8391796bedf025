/* SPDX-License-Identifier: MIT */
/*
 * ddl: the Athena (Hive) DDL the query engine understands, parsed into table definitions, and
 * the classifier that tells our own statements (CREATE EXTERNAL TABLE, DROP TABLE, SHOW
 * TABLES, SHOW CREATE TABLE, SHOW COLUMNS, SHOW PARTITIONS, DESCRIBE, MSCK REPAIR TABLE) from
 * SQL that SQLite runs against the virtual tables.
 *
 * Accepted CREATE statement (clauses after the column list in any order, each at most once):
 *
 *   CREATE EXTERNAL TABLE [IF NOT EXISTS] [db.]name (col type [COMMENT 'c'], ...)
 *     [COMMENT 'table comment']
 *     [PARTITIONED BY (col type [COMMENT 'c'], ...)]
 *     ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
 *                    | 'org.apache.hive.hcatalog.data.JsonSerDe'
 *       [WITH SERDEPROPERTIES ('k'='v', ...)]
 *     [STORED AS TEXTFILE | JSONFILE | INPUTFORMAT 'text input class' OUTPUTFORMAT '...']
 *     LOCATION 's3://bucket/prefix/'
 *     [TBLPROPERTIES ('k'='v', ...)]
 *
 * Identifiers may be `backquoted`; names are folded to lower case as Hive's metastore does, so
 * column `UID` is column uid. Strings are '...' or "..." (Hive treats both as literals) with
 * backslash escapes or doubled quotes. `-- line` and block comments are skipped. The database
 * qualifier of a table name is accepted and ignored: there is one database.
 *
 * Threads: pure functions; parsed tables are plain data owned by the caller.
 */
#ifndef CP_QUERY_DDL_H
#define CP_QUERY_DDL_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

/* Athena column types. The comments say the SQLite value each becomes (jsonrow.h). */
typedef enum cp_ddl_kind {
    CP_DDL_STRING = 1, /* string: TEXT */
    CP_DDL_VARCHAR,    /* varchar(n): TEXT, cut to n characters */
    CP_DDL_CHAR,       /* char(n): TEXT, cut to n characters */
    CP_DDL_TINYINT,    /* INTEGER, -128..127 */
    CP_DDL_SMALLINT,   /* INTEGER, -32768..32767 */
    CP_DDL_INT,        /* int / integer: INTEGER, 32-bit range */
    CP_DDL_BIGINT,     /* INTEGER, the full 64-bit range, parsed exactly (never via double) */
    CP_DDL_FLOAT,      /* float / real: REAL rounded to single precision */
    CP_DDL_DOUBLE,     /* REAL */
    CP_DDL_DECIMAL,    /* decimal(p,s): INTEGER when s = 0 and it fits, else REAL */
    CP_DDL_BOOLEAN,    /* INTEGER 0/1 (printed true/false) */
    CP_DDL_TIMESTAMP,  /* TEXT 'YYYY-MM-DD HH:MM:SS.mmm' in UTC (SQLite's date functions read it) */
    CP_DDL_DATE,       /* TEXT 'YYYY-MM-DD' */
    CP_DDL_ARRAY,      /* array<T>: the JSON text of the array */
    CP_DDL_MAP,        /* map<K,V>: the JSON text of the object */
    CP_DDL_STRUCT,     /* struct<a:T,...>: the JSON text of the object */
} cp_ddl_kind;

typedef struct cp_ddl_type {
    cp_ddl_kind kind;
    int length;    /* varchar/char: n (0 = unbounded) */
    int precision; /* decimal: p (default 10) */
    int scale;     /* decimal: s (default 0) */
    char *text;    /* canonical lower-case spelling, e.g. "array<struct<a:string,b:int>>" */
} cp_ddl_type;

typedef struct cp_ddl_col {
    char *name; /* lower case */
    cp_ddl_type type;
    char *comment; /* NULL when none */
} cp_ddl_col;

typedef struct cp_ddl_prop {
    char *key;
    char *value;
} cp_ddl_prop;

typedef enum cp_ddl_serde {
    CP_DDL_SERDE_OPENX = 1, /* org.openx.data.jsonserde.JsonSerDe */
    CP_DDL_SERDE_HCATALOG,  /* org.apache.hive.hcatalog.data.JsonSerDe */
} cp_ddl_serde;

/* A parsed CREATE EXTERNAL TABLE. Every pointer is owned by the table. */
typedef struct cp_ddl_table {
    char *name; /* lower case, [a-z0-9_]+ */
    int if_not_exists;
    cp_ddl_col *cols; /* data columns, in order */
    size_t ncols;
    cp_ddl_col *parts; /* PARTITIONED BY columns, in order (path order) */
    size_t nparts;
    cp_ddl_serde serde;
    char *serde_class; /* as written */
    cp_ddl_prop *serde_props;
    size_t nserde_props;
    cp_ddl_prop *tbl_props;
    size_t ntbl_props;
    char *comment;  /* NULL when none */
    char *location; /* as written, e.g. "s3://bucket/Livestreams/" */
    char *bucket;   /* "bucket" */
    char *prefix;   /* "Livestreams/": empty or ending in '/' */
    char *ddl;      /* the statement text, trimmed (what the catalog stores) */
} cp_ddl_table;

/*
 * Parse one CREATE EXTERNAL TABLE statement (a trailing ';' is allowed). `sql` is borrowed.
 * On CP_OK *out is a new table: free with cp_ddl_table_free(). Returns CP_EINVAL with a message
 * naming the line and column ("line 3:5: expected ')' but found 'LOCATION'") for syntax errors,
 * unknown types, duplicate columns, unsupported SerDes or storage formats, and bad LOCATIONs.
 */
int cp_ddl_parse_create(cp_slice sql, cp_ddl_table **out, cp_err *err);
/* Free a table and everything it owns. NULL is a no-op. */
void cp_ddl_table_free(cp_ddl_table *t);

/* Value of property `key` (ASCII case-insensitive), or NULL. Valid while t lives. */
const char *cp_ddl_serde_prop(const cp_ddl_table *t, const char *key);
const char *cp_ddl_tbl_prop(const cp_ddl_table *t, const char *key);
/* 1 when the property is "true" (any case), 0 when absent or anything else. */
int cp_ddl_prop_true(const char *value);

/* Parse a type on its own ("bigint", "map<string,array<int>>"). On CP_OK *out is filled and
 * out->text is owned by the caller (free()). Errors as cp_ddl_parse_create. */
int cp_ddl_parse_type(cp_slice text, cp_ddl_type *out, cp_err *err);

/* The declared type SQLite sees for a column of this kind: it fixes the column's affinity
 * (INTEGER, REAL or TEXT) and keeps the Athena name for output ("BOOLEAN INT", "BIGINT",
 * "ARRAY JSON TEXT"...). Static. */
const char *cp_ddl_sqlite_type(cp_ddl_kind kind);

/* ------------------------------------------------------------------------------------------ */
/* Statement classification                                                                    */

typedef enum cp_ddl_stmt_kind {
    CP_DDL_SQL = 0,         /* anything else: SQLite runs it */
    CP_DDL_CREATE,          /* CREATE EXTERNAL TABLE ... (parse with cp_ddl_parse_create) */
    CP_DDL_DROP,            /* DROP TABLE [IF EXISTS] name */
    CP_DDL_SHOW_TABLES,     /* SHOW TABLES [IN db] ['pattern'] */
    CP_DDL_SHOW_CREATE,     /* SHOW CREATE TABLE name */
    CP_DDL_SHOW_COLUMNS,    /* SHOW COLUMNS {IN|FROM} name */
    CP_DDL_SHOW_PARTITIONS, /* SHOW PARTITIONS name */
    CP_DDL_DESCRIBE,        /* DESCRIBE|DESC [FORMATTED|EXTENDED] name */
    CP_DDL_MSCK,            /* MSCK REPAIR TABLE name (a no-op: partitions come from listing) */
    CP_DDL_UNSUPPORTED,     /* ALTER TABLE (a message in err) */
} cp_ddl_stmt_kind;

typedef struct cp_ddl_stmt {
    cp_ddl_stmt_kind kind;
    char name[256];    /* the table named (lower case), or "" */
    int if_exists;     /* DROP ... IF EXISTS */
    char pattern[256]; /* SHOW TABLES pattern, or "" */
} cp_ddl_stmt;

/*
 * Classify one statement by its leading keywords. Fills *out; returns CP_OK, or CP_EINVAL
 * (with a message) when the statement is one of ours but malformed, or unsupported.
 * Statements that are not ours are CP_DDL_SQL, including CREATE TABLE without EXTERNAL.
 */
int cp_ddl_classify(cp_slice sql, cp_ddl_stmt *out, cp_err *err);

/*
 * Split a script into statements at ';' outside strings, quoted identifiers and comments.
 * Calls cb for each non-empty statement (borrowed slice of script, without the ';'). A
 * non-zero return from cb stops the split and is returned.
 */
typedef int (*cp_ddl_stmt_cb)(void *ctx, cp_slice stmt);
int cp_ddl_split(cp_slice script, cp_ddl_stmt_cb cb, void *ctx);

/*
 * Call cb for every identifier-like word of an SQL statement (bare words, "quoted",
 * `backquoted`, [bracketed]), skipping strings and comments: the session uses it to find the
 * catalog tables a statement names. `word` is borrowed for the call (unquoted).
 */
typedef void (*cp_ddl_word_cb)(void *ctx, cp_slice word);
void cp_ddl_words(cp_slice sql, cp_ddl_word_cb cb, void *ctx);

/* 1 when `s` matches an Athena SHOW TABLES pattern: '*' is any run of characters, '|'
 * separates alternatives, case-insensitive. */
int cp_ddl_pattern_match(const char *pattern, const char *s);

#endif
