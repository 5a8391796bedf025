/* SPDX-License-Identifier: MIT */
/* Firehose API operations mapped onto the delivery engine. */
#include "server/firehose.h"

#include <string.h>

#include "core/mem.h"

static int fh_create(void *ctx, cp_ds_config *cfg, cp_err *err)
{
    int rc = cp_delivery_create(ctx, cfg, err);
    /* The API answers a missing source stream with InvalidArgumentException. */
    return rc == CP_ENOTFOUND ? CP_EINVAL : rc;
}

static int fh_get(void *ctx, const char *name, cp_ds_config **cfg, cp_ds_state *state,
                  cp_err *err)
{
    int rc = cp_delivery_config(ctx, name, cfg, err);
    if (rc == CP_OK && state) {
        memset(state, 0, sizeof(*state));
        state->status = CP_DS_ACTIVE; /* creation is synchronous here */
    }
    return rc;
}

static int fh_list(void *ctx, const char *after, size_t max, cp_buf *names, size_t *n,
                   cp_err *err)
{
    return cp_delivery_list(ctx, after, max, names, n, err);
}

static int fh_remove(void *ctx, const char *name, int allow_force, cp_err *err)
{
    (void) allow_force;
    return cp_delivery_delete(ctx, name, err);
}

static int fh_update(void *ctx, const char *name, uint32_t expected_version, cp_ds_config *next,
                     cp_err *err)
{
    cp_ds_config *cur = NULL;
    int rc = cp_delivery_config(ctx, name, &cur, err);
    if (rc == CP_OK && cur->version != expected_version) {
        rc = cp_err_set(err, CP_ECONDITION, "version mismatch");
    }
    cp_ds_config_free(cur);
    if (rc != CP_OK) {
        cp_ds_config_free(next);
        return rc;
    }
    return cp_delivery_update(ctx, next, err);
}

static int fh_put(void *ctx, const char *name, const cp_slice *records, size_t n,
                  uint64_t *positions, int *codes, cp_err *err)
{
    (void) codes; /* the intake accepts all records or none */
    return cp_delivery_put(ctx, name, records, n, positions, err);
}

void cp_firehose_backend_init(cp_firehose_backend *out, cp_delivery *d)
{
    *out = (cp_firehose_backend){
        .abi = CP_FH_BACKEND_ABI,
        .ctx = d,
        .create = fh_create,
        .get = fh_get,
        .list = fh_list,
        .remove = fh_remove,
        .update = fh_update,
        .put = fh_put,
    };
}
