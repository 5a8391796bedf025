/* SPDX-License-Identifier: MIT */
/* changepipe entry point: hands argv to the command table in src/cli. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return cp_cli_main(argc, argv);
}
