/* SPDX-License-Identifier: MIT */
/*
 * How the delivery engine's Lambda processor reaches a function: a function created through
 * our own Lambda API, or any HTTP endpoint that speaks the Lambda Invoke API (e.g. AWS's
 * Runtime Interface Emulator running the team's existing function), mapped by function name
 * in the server configuration: `lambda-endpoints name=http://host:port[,name2=url2]`.
 */
#ifndef CP_INVOKE_H
#define CP_INVOKE_H

#include "core/buf.h"
#include "lambda/lambda.h"

typedef struct cp_invoker cp_invoker;

/* mapping: the lambda-endpoints option text (may be NULL or empty). CP_EINVAL on bad syntax.
 * lambda is borrowed. On CP_OK *out is new; free with cp_invoker_free. */
int cp_invoker_new(cp_lambda *lambda, const char *mapping, cp_invoker **out, cp_err *err);
void cp_invoker_free(cp_invoker *inv);

/* The processor env's invoke callback (ctx = the cp_invoker). Thread-safe. */
int cp_invoker_invoke(void *ctx, const char *function_arn, cp_slice payload, cp_buf *response,
                      int *function_error, cp_err *err);

#endif
