/* SPDX-License-Identifier: MIT */
/* The load generator behind `changepipe load` and `changepipe demo` (see load.c). */
#ifndef CP_LOAD_H
#define CP_LOAD_H

#include <stdint.h>
#include <stdio.h>

#include "config/config.h"

typedef struct cp_load_opts {
    char *endpoint;
    char *table;
    double rate;         /* requests per second */
    int64_t duration_ms;
    int64_t livestreams;
    int64_t connections;
    char *region;
    char *access_key;
    char *secret_key;
    int quiet;
    /* `changepipe load` only */
    int verify;
    char *bucket;        /* bucket the delivery writes to, for --verify */
    char *prefix;        /* prefix of the by-livestream delivery, for --verify */
} cp_load_opts;

typedef struct cp_load_result {
    uint64_t requests, items, errors, unprocessed_retries, throttled;
    uint64_t *per_livestream; /* items acknowledged per livestream */
    double seconds;
    double p50_ms, p99_ms, p999_ms, max_ms;
} cp_load_result;

/* The options of the generator itself (shared by load and demo). */
const cp_config_entry *cp_load_option_table(void);

/* Run the load; fills *res (free with cp_load_result_free). Returns 0 when no request failed. */
int cp_load_run(const cp_load_opts *o, cp_load_result *res);
void cp_load_result_free(cp_load_result *r);
void cp_load_print(const cp_load_opts *o, const cp_load_result *r, FILE *f);

#endif
