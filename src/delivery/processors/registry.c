/* SPDX-License-Identifier: MIT */
/*
 * The one list of built-in processors, looked up by Firehose processor Type, plus the
 * parameter helpers every processor shares (processors_int.h).
 */
#include "delivery/processor.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "delivery/processors/processors_int.h"

static const cp_processor_ops *const builtins[] = {
    &cp_processor_deagg, &cp_processor_native,    &cp_processor_lambda,
    &cp_processor_jq,    &cp_processor_delimiter,
};

const cp_processor_ops *cp_processor_find(const char *type)
{
    if (!type) {
        return NULL;
    }
    /* Type is an enum in the API model, so matching is exact (case-sensitive). */
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        if (strcmp(builtins[i]->type, type) == 0) {
            return builtins[i];
        }
    }
    return NULL;
}

const char *cp__proc_param(const cp_processor_param *params, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (params[i].name && strcmp(params[i].name, name) == 0) {
            return params[i].value;
        }
    }
    return NULL;
}

static int blank(const char *s)
{
    for (; *s; s++) {
        if (!isspace((unsigned char) *s)) {
            return 0;
        }
    }
    return 1;
}

int cp__proc_check_params(const cp_processor_param *params, size_t n, const char *type,
                          const char *const *allowed, cp_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *name = params[i].name ? params[i].name : "";
        int known = 0;
        for (const char *const *a = allowed; *a && !known; a++) {
            known = strcmp(*a, name) == 0;
        }
        if (!known) {
            return cp_err_set(err, CP_EINVAL,
                              "Parameter %s is not supported for processor type %s.", name, type);
        }
        for (size_t j = 0; j < i; j++) {
            if (params[j].name && strcmp(params[j].name, name) == 0) {
                return cp_err_set(err, CP_EINVAL, "Duplicate parameter %s for processor type %s.",
                                  name, type);
            }
        }
        if (!params[i].value || blank(params[i].value)) {
            return cp_err_set(err, CP_EINVAL,
                              "Parameter %s of processor type %s must not be empty.", name, type);
        }
    }
    return CP_OK;
}

int cp__proc_bool(const char *value, int def, int *out)
{
    if (!value) {
        *out = def;
        return CP_OK;
    }
    if (strcasecmp(value, "true") == 0) {
        *out = 1;
        return CP_OK;
    }
    if (strcasecmp(value, "false") == 0) {
        *out = 0;
        return CP_OK;
    }
    return CP_EINVAL;
}
