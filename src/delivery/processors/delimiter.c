/* SPDX-License-Identifier: MIT */
/*
 * AppendDelimiterToRecord: a "\n" after every record. The engine runs it late, after prefix
 * evaluation and buffering (firehose.md 5.3), so partition keys see the record without it.
 * Firehose gives the processor no parameters; any parameter is rejected.
 */
#include "delivery/processor.h"

#include <string.h>

#include "delivery/processors/processors_int.h"

static int delim_init(const cp_processor_param *params, size_t nparams, const cp_processor_env *env,
                      void **ctx, cp_err *err)
{
    static const char *const allowed[] = {NULL};
    (void) env;
    int rc = cp__proc_check_params(params, nparams, "AppendDelimiterToRecord", allowed, err);
    if (rc < 0) {
        return rc;
    }
    *ctx = NULL;
    return CP_OK;
}

static int delim_apply(void *ctx, cp_batch *batch, cp_err *err)
{
    (void) ctx;
    (void) err;
    for (size_t i = 0; i < batch->n; i++) {
        cp_drec *r = &batch->recs[i];
        if (r->result != CP_REC_OK) {
            continue;
        }
        /* The old bytes stay in the arena (blocks never move); only the slice changes. */
        char *p = cp_batch_alloc(batch, r->data.len + 1);
        if (r->data.len) {
            memcpy(p, r->data.p, r->data.len);
        }
        p[r->data.len] = '\n';
        r->data = (cp_slice){p, r->data.len + 1};
    }
    return CP_OK;
}

static void delim_destroy(void *ctx)
{
    (void) ctx;
}

const cp_processor_ops cp_processor_delimiter = {
    .abi = CP_PROCESSOR_ABI,
    .type = "AppendDelimiterToRecord",
    .summary = "append a newline to every record",
    .order = CP__ORDER_DELIMITER,
    .init = delim_init,
    .apply = delim_apply,
    .destroy = delim_destroy,
};
