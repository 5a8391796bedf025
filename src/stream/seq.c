/* SPDX-License-Identifier: MIT */
/* seq: fixed-width decimal rendering of (shard, per-shard value) sequence numbers. */
#include "stream/seq.h"

#include <inttypes.h>
#include <stdio.h>

void cp_seq_format(uint32_t shard, uint64_t value, char out[CP_SEQ_STR_MAX])
{
    snprintf(out, CP_SEQ_STR_MAX, "4%010" PRIu32 "%020" PRIu64, shard, value);
}

static int bad_seq(cp_slice s, cp_err *err)
{
    int shown = s.len > 64 ? 64 : (int) s.len;
    return cp_err_set(err, CP_EINVAL, "Invalid SequenceNumber %.*s%s.", shown, s.p ? s.p : "",
                      s.len > 64 ? "..." : "");
}

/* Decimal digits s[from, to) into *out, rejecting overflow of `max`. */
static int digits(cp_slice s, size_t from, size_t to, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = from; i < to; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            return -1;
        }
        uint64_t d = (uint64_t) (s.p[i] - '0');
        if (v > (max - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int cp_seq_parse(cp_slice s, uint32_t *shard, uint64_t *value, cp_err *err)
{
    uint64_t sh, v;
    if (s.len != CP_SEQ_DIGITS || s.p[0] != '4' || digits(s, 1, 11, UINT32_MAX, &sh) != 0 ||
        digits(s, 11, CP_SEQ_DIGITS, UINT64_MAX, &v) != 0) {
        return bad_seq(s, err);
    }
    *shard = (uint32_t) sh;
    *value = v;
    return CP_OK;
}
