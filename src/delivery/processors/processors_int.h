/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the built-in processors (src/delivery/processors/): parameter lookup and
 * validation in the words Firehose's InvalidArgumentException uses. Private to the delivery
 * component.
 */
#ifndef CP_PROCESSORS_INT_H
#define CP_PROCESSORS_INT_H

#include <stddef.h>

#include "core/err.h"
#include "delivery/processor.h"

/* Pipeline positions (cp_processor_ops.order), Firehose's fixed order (firehose.md 5.3). The
 * native processor sits before Lambda so that a Lambda configured next to it receives the
 * flattened JSON. */
#define CP__ORDER_DEAGG     100
#define CP__ORDER_NATIVE    150
#define CP__ORDER_LAMBDA    200
#define CP__ORDER_JQ        300
#define CP__ORDER_DELIMITER 500 /* after prefix evaluation and buffering */

/* The value of parameter `name`, or NULL. Borrowed from params. */
const char *cp__proc_param(const cp_processor_param *params, size_t n, const char *name);

/* CP_EINVAL (err: InvalidArgumentException text) when a parameter name is not in `allowed`
 * (NULL-terminated) or appears twice, or a value is empty or blank (the model's ^(?!\s*$).+). */
int cp__proc_check_params(const cp_processor_param *params, size_t n, const char *type,
                          const char *const *allowed, cp_err *err);

/* Parse "true"/"false" (any case) into *out; NULL keeps `def`. CP_EINVAL otherwise. */
int cp__proc_bool(const char *value, int def, int *out);

#endif
