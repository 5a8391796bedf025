/* SPDX-License-Identifier: MIT */
/* The option engine: types, units, bounds, precedence and unknown keys. */
#include "cpt.h"

#include <stddef.h>

#include "config/config.h"

typedef struct opts {
    char *listen;
    char *config;
    int64_t port, size, wait;
    int strict;
    double rate;
} opts;

static const cp_config_entry table[] = {
    {"listen", CP_CFG_STRING, "127.0.0.1:4566", 0, 0, offsetof(opts, listen), 0, "address", 0},
    {"config", CP_CFG_STRING, NULL, 0, 0, offsetof(opts, config), 0, "config file", 0},
    {"port", CP_CFG_INT, "10", 1, 100, offsetof(opts, port), 0, "a port", 0},
    {"size", CP_CFG_SIZE, "1M", 0, 0, offsetof(opts, size), 0, "a size", 0},
    {"wait", CP_CFG_DURATION, "2s", 0, 0, offsetof(opts, wait), 0, "a duration", 0},
    {"strict", CP_CFG_BOOL, "false", 0, 0, offsetof(opts, strict), 0, "a flag", 0},
    {"rate", CP_CFG_DOUBLE, "1.5", 0, 0, offsetof(opts, rate), 0, "a rate", 0},
    {0},
};

static void defaults_and_units(void)
{
    opts o = {0};
    char *argv[] = {"--size=64M", "--wait", "500ms", "--strict", "pos", "--rate=2.25"};
    char **rest = NULL;
    cp_err err = {0};
    CPT_EQ_INT(cp_config_load(table, &o, 6, argv, &rest, &err), CP_OK);
    CPT_EQ_STR(o.listen, "127.0.0.1:4566");
    CPT_EQ_INT(o.port, 10);
    CPT_EQ_INT(o.size, 64 << 20);
    CPT_EQ_INT(o.wait, 500);
    CPT_EQ_INT(o.strict, 1);
    CPT_CHECK(o.rate == 2.25);
    CPT_EQ_STR(rest[0], "pos");
    CPT_CHECK(rest[1] == NULL);
    free(rest);
    cp_config_free(table, &o);
}

static void precedence_file_env_flags(void)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/c.conf", cpt_tmpdir());
    FILE *f = fopen(path, "w");
    fprintf(f, "# comment\nport 20\nwait 3\nlisten 0.0.0.0:1\n");
    fclose(f);
    setenv("CHANGEPIPE_PORT", "30", 1);
    opts o = {0};
    char cfg[320];
    snprintf(cfg, sizeof(cfg), "--config=%s", path);
    char *argv[] = {cfg, "--listen=h:2"};
    cp_err err = {0};
    CPT_EQ_INT(cp_config_load(table, &o, 2, argv, NULL, &err), CP_OK);
    CPT_EQ_INT(o.port, 30);          /* env beats file */
    CPT_EQ_INT(o.wait, 3000);        /* file beats default; bare number = seconds */
    CPT_EQ_STR(o.listen, "h:2");     /* flag beats file */
    cp_config_free(table, &o);
    unsetenv("CHANGEPIPE_PORT");
}

static void errors_name_the_problem(void)
{
    opts o = {0};
    cp_err err = {0};
    char *a1[] = {"--bogus=1"};
    CPT_EQ_INT(cp_config_load(table, &o, 1, a1, NULL, &err), CP_EINVAL);
    CPT_CHECK(strstr(err.msg, "unknown option 'bogus'") && strstr(err.msg, "listen, config"));
    cp_config_free(table, &o);
    char *a2[] = {"--port=500"};
    CPT_EQ_INT(cp_config_load(table, &o, 1, a2, NULL, &err), CP_EINVAL);
    CPT_CHECK(strstr(err.msg, "out of range") != NULL);
    cp_config_free(table, &o);
    char *a3[] = {"--size=12Q"};
    CPT_EQ_INT(cp_config_load(table, &o, 1, a3, NULL, &err), CP_EINVAL);
    cp_config_free(table, &o);
    char *a4[] = {"stray"};
    CPT_EQ_INT(cp_config_load(table, &o, 1, a4, NULL, &err), CP_EINVAL);
    cp_config_free(table, &o);
}

CPT_LIST = {
    {"defaults_and_units", defaults_and_units},
    {"precedence_file_env_flags", precedence_file_env_flags},
    {"errors_name_the_problem", errors_name_the_problem},
    {0},
};
