/* SPDX-License-Identifier: MIT */
/*
 * Named S3-compatible sinks from the server configuration, for delivery streams whose
 * ChangepipeOptions.SinkEndpoint names one:
 *   --s3-sinks "name=URL[|REGION|ACCESS_KEY|SECRET_KEY][;name2=...]"
 */
#ifndef CP_SINKS_H
#define CP_SINKS_H

#include "delivery/sink.h"

typedef struct cp_sinks cp_sinks;

/* Parse the option text (NULL/empty: no sinks). CP_EINVAL with the reason on bad syntax. */
int cp_sinks_new(const char *text, cp_sinks **out, cp_err *err);
void cp_sinks_free(cp_sinks *s);
/* The engine's sink_for callback (ctx = the cp_sinks). */
int cp_sinks_find(void *ctx, const char *name, const cp_sink_ops **ops, void **sink_ctx);

#endif
