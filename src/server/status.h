/* SPDX-License-Identifier: MIT */
/* The status page at GET /: plain HTML + JS served by the binary, no external assets. */
#ifndef CP_STATUS_H
#define CP_STATUS_H

#include "http/request.h"

/* cp_http_handler serving the page; it polls /status.json once a second and charts per-stage
 * throughput and success rates like the AWS console graphs the article shows. */
int cp_status_page(void *ctx, const cp_http_req *req, cp_http_resp *resp);

#endif
