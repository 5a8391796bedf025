/* SPDX-License-Identifier: MIT */
/* `changepipe replay`: re-deliver a time range of a delivery stream into the same keys. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/awsclient.h"
#include "cli/cli.h"

typedef struct replay_opts {
    char *endpoint;
    char *stream;
    int64_t from_ms;
    int64_t to_ms;
    char *access_key;
    char *secret_key;
} replay_opts;

static const cp_config_entry replay_table[] = {
    {"endpoint", CP_CFG_STRING, "http://127.0.0.1:4566", 0, 0, offsetof(replay_opts, endpoint), 0,
     "the changepipe server", "URL"},
    {"stream", CP_CFG_STRING, NULL, 0, 0, offsetof(replay_opts, stream), 0,
     "delivery stream to replay (required)", "NAME"},
    {"from", CP_CFG_INT, "0", 0, 0, offsetof(replay_opts, from_ms), 0,
     "first arrival time to include, epoch milliseconds", "MS"},
    {"to", CP_CFG_INT, "9223372036854775807", 0, 0, offsetof(replay_opts, to_ms), 0,
     "last arrival time to include, epoch milliseconds", "MS"},
    {"access-key", CP_CFG_STRING, "AKIDEXAMPLE", 0, 0, offsetof(replay_opts, access_key), 0,
     "access key to sign with (servers run with --credentials check it)", "KEY"},
    {"secret-key", CP_CFG_STRING, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 0, 0,
     offsetof(replay_opts, secret_key), CP_CFG_SECRET, "secret key to sign with", "SECRET"},
    {0},
};

static int replay_run(void *arg, char **rest)
{
    (void) rest;
    replay_opts *o = arg;
    if (!o->stream) {
        fprintf(stderr, "changepipe replay: --stream is required\n");
        return 2;
    }
    char path[512];
    snprintf(path, sizeof(path), "/changepipe/v1/replay?stream=%s&from=%lld&to=%lld", o->stream,
             (long long) o->from_ms, (long long) o->to_ms);
    cp_awsc c = {o->endpoint, "us-east-1", o->access_key, o->secret_key};
    cp_buf out = CP_BUF_INIT;
    long status = 0;
    cp_err err = {0};
    int rc = cp_awsc_rest(&c, "POST", path, "s3", CP_SLICE(""), &status, &out, &err);
    if (rc != CP_OK || status != 200) {
        fprintf(stderr, "changepipe replay: %s%s\n", rc != CP_OK ? err.msg : "",
                out.p ? out.p : "");
        cp_buf_free(&out);
        return 1;
    }
    printf("%s\n", out.p);
    cp_buf_free(&out);
    return 0;
}

const cp_cli_command cp_cli_replay = {
    .name = "replay",
    .summary = "re-deliver the objects of a delivery stream whose records arrived in a time "
               "range, into the same keys (backfills, fixing a transform)",
    .usage = NULL,
    .opts = replay_table,
    .opts_size = sizeof(replay_opts),
    .run = replay_run,
};
