/* SPDX-License-Identifier: MIT */
/*
 * The command-line front end: one table of subcommands, each with its option table
 * (config/config.h) that also produces `changepipe <command> --help`.
 */
#ifndef CP_CLI_H
#define CP_CLI_H

#include "config/config.h"

/* One subcommand. `opts` fills a struct of `opts_size` bytes that `run` receives; `rest` holds
 * positional arguments (NULL-terminated). run returns the process exit status. */
typedef struct cp_cli_command {
    const char *name;
    const char *summary;
    const char *usage; /* arguments after the options, e.g. "[SQL]"; NULL for none */
    const cp_config_entry *opts;
    size_t opts_size;
    int (*run)(void *opts, char **rest);
} cp_cli_command;

/* The commands, each defined in src/cli/<name>.c. */
extern const cp_cli_command cp_cli_demo;
extern const cp_cli_command cp_cli_serve;
extern const cp_cli_command cp_cli_load;
extern const cp_cli_command cp_cli_query;
extern const cp_cli_command cp_cli_replay;

/* Run the command named in argv[1]; returns the process exit status. */
int cp_cli_main(int argc, char **argv);

#endif
