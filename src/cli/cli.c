/* SPDX-License-Identifier: MIT */
/* Subcommand dispatch and help for every command in the table. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

static const cp_cli_command *const commands[] = {
    &cp_cli_demo,
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "changepipe %s: DynamoDB -> Kinesis -> Firehose -> S3 -> Athena in one program\n\n"
               "usage: changepipe <command> [options]\n\ncommands:\n",
            CP_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    }
    fprintf(f, "\nRun 'changepipe <command> --help' for a command's options. Every option can also\n"
               "be set as CHANGEPIPE_<OPTION> in the environment or in a --config file.\n");
}

static void command_help(const cp_cli_command *c)
{
    printf("usage: changepipe %s [options]%s%s\n\n%s\n\noptions:\n", c->name,
           c->usage ? " " : "", c->usage ? c->usage : "", c->summary);
    cp_config_print_help(c->opts, stdout);
    printf("  %-28s %s\n", "--help", "show this help");
}

int cp_cli_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("changepipe %s\n", CP_VERSION);
        return 0;
    }
    const cp_cli_command *c = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(argv[1], commands[i]->name) == 0) {
            c = commands[i];
        }
    }
    if (!c) {
        fprintf(stderr, "changepipe: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            command_help(c);
            return 0;
        }
    }
    void *opts = cp_calloc(1, c->opts_size);
    char **rest = NULL;
    cp_err err = {0};
    if (cp_config_load(c->opts, opts, argc - 2, argv + 2, c->usage ? &rest : NULL, &err) != CP_OK) {
        fprintf(stderr, "changepipe %s: %s\n", c->name, err.msg);
        cp_config_free(c->opts, opts);
        cp_free(opts);
        return 2;
    }
    int status = c->run(opts, rest);
    free(rest);
    cp_config_free(c->opts, opts);
    cp_free(opts);
    return status;
}
