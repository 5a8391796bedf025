/* SPDX-License-Identifier: MIT */
/* `changepipe serve`: the AWS-compatible endpoint until SIGINT/SIGTERM. */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "server/server.h"

static const cp_config_entry serve_table[] = {
    {"listen", CP_CFG_STRING, "127.0.0.1:4566", 0, 0, offsetof(cp_server_cfg, listen), 0,
     "address to listen on; port 0 picks a free port", "HOST:PORT"},
    {"data", CP_CFG_STRING, "./changepipe-data", 0, 0, offsetof(cp_server_cfg, data), 0,
     "data directory (tables, streams, buckets, functions)", "DIR"},
    {"config", CP_CFG_STRING, NULL, 0, 0, offsetof(cp_server_cfg, config), 0,
     "config file of 'option value' lines", "FILE"},
    {"region", CP_CFG_STRING, "us-east-1", 0, 0, offsetof(cp_server_cfg, region), 0,
     "region used in ARNs and change records", "REGION"},
    {"credentials", CP_CFG_STRING, "", 0, 0, offsetof(cp_server_cfg, credentials), CP_CFG_SECRET,
     "verify SigV4 against these keys (AK:SECRET,...); empty accepts any well-formed signature",
     "LIST"},
    {"ready-file", CP_CFG_STRING, NULL, 0, 0, offsetof(cp_server_cfg, ready_file), 0,
     "write HOST:PORT to this file once serving", "FILE"},
    {"log-level", CP_CFG_STRING, "info", 0, 0, offsetof(cp_server_cfg, log_level), 0,
     "error, warn, info or debug", "LEVEL"},
    {"max-body", CP_CFG_SIZE, "32M", 1024, 1073741824.0, offsetof(cp_server_cfg, max_body), 0,
     "largest request body accepted (413 above)", NULL},
    {"idle-timeout", CP_CFG_DURATION, "120s", 1000, 86400000, offsetof(cp_server_cfg, idle_timeout),
     0, "close connections idle this long", NULL},
    {"lambda-concurrency", CP_CFG_INT, "10", 1, 1000,
     offsetof(cp_server_cfg, lambda_concurrency), 0, "instances per Lambda function", NULL},
    {"lambda-endpoints", CP_CFG_STRING, "", 0, 0, offsetof(cp_server_cfg, lambda_endpoints), 0,
     "Lambda functions served elsewhere: name=http://host:port[,...] (Invoke API)", "LIST"},
    {"s3-sinks", CP_CFG_STRING, "", 0, 0, offsetof(cp_server_cfg, s3_sinks), CP_CFG_SECRET,
     "S3-compatible delivery targets a stream can name in ChangepipeOptions.SinkEndpoint: "
     "name=URL[|region|access-key|secret-key][;...]",
     "LIST"},
    {"max-active-partitions", CP_CFG_INT, "500", 1, 10000000,
     offsetof(cp_server_cfg, max_active_partitions), 0,
     "active dynamic partitions per delivery stream (beyond: partitioning-failed)", NULL},
    {"strict", CP_CFG_BOOL, "false", 0, 0, offsetof(cp_server_cfg, strict), 0,
     "enforce every AWS create-time rule for delivery streams", NULL},
    {"emulate-limits", CP_CFG_BOOL, "false", 0, 0, offsetof(cp_server_cfg, emulate_limits), 0,
     "answer AWS's throttling errors beyond the on-demand limits", NULL},
    {0},
};

static int parse_level(const char *s, cp_log_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (cp_log_level) i;
            return 0;
        }
    }
    return -1;
}

static int serve_run(void *arg, char **rest)
{
    (void) rest;
    cp_server_cfg *cfg = arg;
    cp_log_level level;
    if (parse_level(cfg->log_level, &level) != 0) {
        fprintf(stderr, "changepipe serve: --log-level must be error, warn, info or debug\n");
        return 2;
    }
    cp_log_set_level(level);
    /* Every thread inherits the blocked signals; only sigwait below receives them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    cp_server *srv;
    cp_err err = {0};
    if (cp_server_open(cfg, &srv, &err) != CP_OK) {
        fprintf(stderr, "changepipe serve: %s\n", err.msg);
        return 1;
    }
    CP_LOG_INFO("server", "changepipe %s serving on port %u, data in %s", CP_VERSION,
                cp_server_port(srv), cfg->data);
    int sig = 0;
    sigwait(&set, &sig);
    CP_LOG_INFO("server", "%s: finishing in-flight requests", sig == SIGINT ? "SIGINT" : "SIGTERM");
    cp_server_close(srv);
    CP_LOG_INFO("server", "stopped");
    return 0;
}

const cp_cli_command cp_cli_serve = {
    .name = "serve",
    .summary = "run the AWS-compatible endpoint (DynamoDB, DynamoDB Streams, Kinesis, S3, Lambda)",
    .usage = NULL,
    .opts = serve_table,
    .opts_size = sizeof(cp_server_cfg),
    .run = serve_run,
};
