/* SPDX-License-Identifier: MIT */
/*
 * Table-driven options. Each command declares a static table of cp_config_entry; one engine
 * fills the command's typed struct from every source (built-in default < config file <
 * environment CHANGEPIPE_<KEY> < command line --key=value), rejects unknown keys listing the
 * valid ones, and prints --help.
 */
#ifndef CP_CONFIG_H
#define CP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

typedef enum {
    CP_CFG_END = 0,
    CP_CFG_BOOL,     /* int: "true/false/1/0/yes/no"; a bare --flag means true */
    CP_CFG_INT,      /* int64_t */
    CP_CFG_SIZE,     /* int64_t bytes: "64M", "1G", "512K", "100" */
    CP_CFG_DURATION, /* int64_t milliseconds: "60s", "500ms", "5m", "2h", "100" (= seconds) */
    CP_CFG_STRING,   /* char *: owned by the struct; free with cp_config_free */
    CP_CFG_DOUBLE,   /* double */
} cp_config_type;

#define CP_CFG_SECRET 1u /* never printed with its value */

typedef struct cp_config_entry {
    const char *name;   /* "listen", "data" (as --name and CHANGEPIPE_NAME) */
    cp_config_type type;
    const char *def;    /* default as text, NULL for none */
    double min, max;    /* bounds for numbers (both 0: unbounded) */
    size_t offset;      /* offsetof(struct, field) */
    unsigned flags;
    const char *help;   /* one line */
    const char *metavar; /* e.g. "HOST:PORT"; NULL derives from the type */
} cp_config_entry;

/* Fill `out` from defaults, then the file named by the option "config" if the table has one and
 * it is set, then the environment, then argv (argv[0] is the first argument, not the program).
 * Positional arguments (not starting with --) are collected into *rest (NULL-terminated array
 * pointing into argv; free the array with free()) when rest is not NULL, else refused.
 * CP_EINVAL with a message naming the problem and the valid keys. */
int cp_config_load(const cp_config_entry *table, void *out, int argc, char **argv, char ***rest,
                   cp_err *err);
/* Free the strings cp_config_load stored in out. */
void cp_config_free(const cp_config_entry *table, void *out);
/* Print the options of a table as --help lines. */
void cp_config_print_help(const cp_config_entry *table, FILE *stream);

#endif
