/* SPDX-License-Identifier: MIT */
/* `changepipe query`: Athena-style SQL over delivered objects (src/query). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "query/query.h"

typedef struct query_opts {
    char *data;
    char *endpoint;
    char *region;
    char *access_key;
    char *secret_key;
    char *format;
    int no_header;
} query_opts;

static const cp_config_entry query_table[] = {
    {"data", CP_CFG_STRING, "./changepipe-data", 0, 0, offsetof(query_opts, data), 0,
     "data directory: the table catalog, and the buckets unless --endpoint is given", "DIR"},
    {"endpoint", CP_CFG_STRING, NULL, 0, 0, offsetof(query_opts, endpoint), 0,
     "read objects from this S3-compatible endpoint instead of the local buckets", "URL"},
    {"region", CP_CFG_STRING, "us-east-1", 0, 0, offsetof(query_opts, region), 0,
     "region to sign S3 requests for", "REGION"},
    {"access-key", CP_CFG_STRING, "AKIDEXAMPLE", 0, 0, offsetof(query_opts, access_key), 0,
     "S3 access key", "KEY"},
    {"secret-key", CP_CFG_STRING, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 0, 0,
     offsetof(query_opts, secret_key), CP_CFG_SECRET, "S3 secret key", "SECRET"},
    {"format", CP_CFG_STRING, "auto", 0, 0, offsetof(query_opts, format), 0,
     "table, csv, jsonl, or auto (table on a terminal, else csv)", "FORMAT"},
    {"no-header", CP_CFG_BOOL, "false", 0, 0, offsetof(query_opts, no_header), 0,
     "CSV without the header line", NULL},
    {0},
};

static int query_run(void *arg, char **rest)
{
    query_opts *o = arg;
    cp_buf sql = CP_BUF_INIT;
    for (size_t i = 0; rest && rest[i]; i++) {
        cp_buf_printf(&sql, "%s%s", i ? " " : "", rest[i]);
    }
    if (!sql.len) {
        /* No SQL argument: read the script from standard input. */
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
            cp_buf_append(&sql, chunk, n);
        }
    }
    cp_query_opts qo = {.data_dir = o->data,
                        .endpoint = o->endpoint,
                        .region = o->region,
                        .access_key = o->access_key,
                        .secret_key = o->secret_key,
                        .no_header = o->no_header,
                        .diag = stderr};
    if (cp_query_format_parse(o->format, &qo.format) != CP_OK) {
        fprintf(stderr, "changepipe query: --format must be table, csv, jsonl or auto\n");
        cp_buf_free(&sql);
        return 2;
    }
    cp_err err = {0};
    int rc = cp_query_run(&qo, sql.p ? sql.p : "", stdout, &err);
    cp_buf_free(&sql);
    if (rc != CP_OK) {
        fprintf(stderr, "changepipe query: %s\n", err.msg);
        return 1;
    }
    return 0;
}

const cp_cli_command cp_cli_query = {
    .name = "query",
    .summary = "run Athena-style SQL (CREATE EXTERNAL TABLE ... LOCATION 's3://...', SELECT) "
               "over delivered objects",
    .usage = "[SQL]",
    .opts = query_table,
    .opts_size = sizeof(query_opts),
    .run = query_run,
};
