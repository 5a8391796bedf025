/* SPDX-License-Identifier: MIT */
/*
 * delivery/config.h: the input as a CreateDeliveryStream body, lenient and strict. A parsed
 * config must describe itself, persist with cp_ds_config_to_json and load back with
 * cp_ds_config_from_json; a rejection must carry an AWS error type and message.
 */
#include "delivery/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cp_slice in = cp_slice_of((const char *) data, size);
    for (int strict = 0; strict < 2; strict++) {
        cp_ds_parse_opts opts = {.strict = strict, .backup_supported = strict,
                                 .now_ms = 1767225600123LL};
        cp_ds_config *cfg = NULL;
        cp_ds_err err = CP_DS_ERR_INIT;
        int rc = cp_ds_config_parse(in, &opts, &cfg, &err);
        if (rc != CP_OK) {
            CP_FUZZ_CHECK(rc == CP_EINVAL && cfg == NULL);
            CP_FUZZ_CHECK(err.type != NULL && err.msg.len > 0);
            cp_ds_err_free(&err);
            continue;
        }
        CP_FUZZ_CHECK(cfg != NULL);
        cp_buf out = CP_BUF_INIT;
        cp_ds_config_describe(cfg, NULL, 1, &out);
        CP_FUZZ_CHECK(out.len > 0);
        cp_buf_reset(&out);
        cp_ds_config_to_json(cfg, &out);
        cp_ds_config *back = NULL;
        cp_err e2 = {0};
        rc = cp_ds_config_from_json(cp_buf_slice(&out), &back, &e2);
        if (rc != CP_OK) {
            fprintf(stderr, "reload of %.*s failed: %s\n", (int) out.len, out.p, e2.msg);
        }
        CP_FUZZ_CHECK(rc == CP_OK && back != NULL);
        cp_ds_config_free(back);
        cp_buf_free(&out);
        cp_ds_err_free(&err);
        cp_ds_config_free(cfg);
    }
    return 0;
}
