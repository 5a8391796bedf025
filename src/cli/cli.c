/* SPDX-License-Identifier: MIT */
/* Subcommand dispatch and help. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int cp_cli_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        printf("usage: changepipe <command> [options]\n");
        return argc < 2;
    }
    fprintf(stderr, "changepipe: unknown command '%s'\n", argv[1]);
    return 2;
}
