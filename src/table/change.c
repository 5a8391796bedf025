/* SPDX-License-Identifier: MIT */
/* Binary change records: the payload of the store's change log (see change.h). */
#include "table/change.h"

#define CHANGE_VERSION 1

void cp_change_encode(const cp_change *c, cp_buf *out)
{
    cp_buf_put_u8(out, CHANGE_VERSION);
    cp_buf_put_u8(out, (uint8_t) c->event);
    cp_buf_put_u32le(out, c->table_id);
    cp_buf_put_u64le(out, (uint64_t) c->ts_us);
    cp_buf_put_bytes(out, c->keys.p, c->keys.len);
    cp_buf_put_bytes(out, c->new_image.p, c->new_image.len);
    cp_buf_put_bytes(out, c->old_image.p, c->old_image.len);
}

int cp_change_decode(cp_slice payload, cp_change *out)
{
    cp_reader r = cp_reader_of(payload);
    if (cp_reader_u8(&r) != CHANGE_VERSION) {
        return CP_ECORRUPT;
    }
    out->event = (cp_change_event) cp_reader_u8(&r);
    out->table_id = cp_reader_u32le(&r);
    out->ts_us = (int64_t) cp_reader_u64le(&r);
    out->keys = cp_reader_bytes(&r);
    out->new_image = cp_reader_bytes(&r);
    out->old_image = cp_reader_bytes(&r);
    if (r.failed || r.p != r.end || out->event < CP_CHANGE_INSERT ||
        out->event > CP_CHANGE_REMOVE) {
        return CP_ECORRUPT;
    }
    return CP_OK;
}

const char *cp_change_event_name(cp_change_event e)
{
    switch (e) {
    case CP_CHANGE_INSERT: return "INSERT";
    case CP_CHANGE_MODIFY: return "MODIFY";
    case CP_CHANGE_REMOVE: return "REMOVE";
    }
    return "?";
}
