/* SPDX-License-Identifier: MIT */
/* The command-line front end: one table of subcommands, each with its options and --help. */
#ifndef CP_CLI_H
#define CP_CLI_H

/* Run the command named in argv[1]; returns the process exit status. */
int cp_cli_main(int argc, char **argv);

#endif
