/* SPDX-License-Identifier: MIT */
/* Named S3-compatible sinks (see sinks.h). */
#include "server/sinks.h"

#include <string.h>

#include "core/mem.h"
#include "delivery/s3client.h"

typedef struct named_sink {
    char *name;
    void *ctx;
} named_sink;

struct cp_sinks {
    named_sink *v;
    size_t n;
};

void cp_sinks_free(cp_sinks *s)
{
    if (!s) {
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        cp_sink_s3.destroy(s->v[i].ctx);
        cp_free(s->v[i].name);
    }
    cp_free(s->v);
    cp_free(s);
}

static int add_sink(cp_sinks *s, char *entry, cp_err *err)
{
    char *eq = strchr(entry, '=');
    if (!eq || eq == entry) {
        return cp_err_set(err, CP_EINVAL,
                          "--s3-sinks expects name=URL[|region|access-key|secret-key][;...]");
    }
    *eq = 0;
    char *fields[4] = {eq + 1, NULL, NULL, NULL};
    for (int i = 1; i < 4; i++) {
        char *bar = strchr(fields[i - 1], '|');
        if (!bar) {
            break;
        }
        *bar = 0;
        fields[i] = bar + 1;
    }
    cp_s3_sink_cfg cfg = CP_S3_SINK_CFG_INIT;
    cfg.endpoint = fields[0];
    cfg.region = fields[1] ? fields[1] : "us-east-1";
    cfg.access_key = fields[2] ? fields[2] : "";
    cfg.secret_key = fields[3] ? fields[3] : "";
    void *ctx = NULL;
    int rc = cp_s3_sink_new(&cfg, &ctx, err);
    if (rc != CP_OK) {
        return rc;
    }
    s->v = cp_realloc(s->v, (s->n + 1) * sizeof(*s->v));
    s->v[s->n++] = (named_sink){cp_strdup(entry), ctx};
    return CP_OK;
}

int cp_sinks_new(const char *text, cp_sinks **out, cp_err *err)
{
    cp_sinks *s = cp_calloc(1, sizeof(*s));
    char *copy = cp_strdup(text ? text : "");
    int rc = CP_OK;
    for (char *save = NULL, *tok = strtok_r(copy, ";", &save); tok && rc == CP_OK;
         tok = strtok_r(NULL, ";", &save)) {
        rc = add_sink(s, tok, err);
    }
    cp_free(copy);
    if (rc != CP_OK) {
        cp_sinks_free(s);
        return rc;
    }
    *out = s;
    return CP_OK;
}

int cp_sinks_find(void *ctx, const char *name, const cp_sink_ops **ops, void **sink_ctx)
{
    cp_sinks *s = ctx;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->v[i].name, name) == 0) {
            *ops = &cp_sink_s3;
            *sink_ctx = s->v[i].ctx;
            return CP_OK;
        }
    }
    return CP_ENOTFOUND;
}
