/* SPDX-License-Identifier: MIT */
/* A minimal signed AWS client for the CLI's own calls (demo set-up, load --verify). */
#ifndef CP_AWSCLIENT_H
#define CP_AWSCLIENT_H

#include "core/buf.h"

typedef struct cp_awsc {
    const char *endpoint;   /* http://host:port */
    const char *region;
    const char *access_key;
    const char *secret_key;
} cp_awsc;

/* POST an AWS JSON-protocol call: target "DynamoDB_20120810.CreateTable", service the SigV4
 * signing name ("dynamodb", "kinesis", "firehose"). *status gets the HTTP status and `out`
 * (reset first) the response body. Returns CP_OK when the call completed (any status), CP_EIO
 * on transport failure. */
int cp_awsc_json(const cp_awsc *c, const char *target, const char *service, const char *json,
                 long *status, cp_buf *out, cp_err *err);
/* A signed REST call (S3 path-style or the server's admin paths). body may be empty. */
int cp_awsc_rest(const cp_awsc *c, const char *method, const char *path, const char *service,
                 cp_slice body, long *status, cp_buf *out, cp_err *err);

#endif
