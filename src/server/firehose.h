/* SPDX-License-Identifier: MIT */
/* The Firehose API's backend (delivery/api.h) over the delivery engine. */
#ifndef CP_FIREHOSE_H
#define CP_FIREHOSE_H

#include "delivery/api.h"
#include "delivery/engine.h"

/* Fill `out` to serve the Firehose API from `d` (borrowed for the backend's lifetime). */
void cp_firehose_backend_init(cp_firehose_backend *out, cp_delivery *d);

#endif
