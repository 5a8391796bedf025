/* SPDX-License-Identifier: MIT */
/* backend: helpers shared by stream backends (the caller-owned read batch). */
#include "stream/backend.h"

#include "core/mem.h"

void cp_stream_batch_reset(cp_stream_batch *b)
{
    b->n = 0;
    b->data_bytes = 0;
    b->next_seq = 0;
    cp_buf_reset(&b->bytes);
}

void cp_stream_batch_free(cp_stream_batch *b)
{
    cp_free(b->recs);
    cp_buf_free(&b->bytes);
    *b = CP_STREAM_BATCH_INIT;
}

void cp_stream_batch_add(cp_stream_batch *b, uint64_t seq, int64_t arrival_ms, uint64_t source_id,
                         cp_slice partition_key, cp_slice data)
{
    size_t need = partition_key.len + data.len;
    if (b->bytes.len + need + 1 > b->bytes.cap && b->n > 0) {
        /* The buffer is about to move: turn the records' pointers into offsets while the old
         * memory is still valid, grow, then point them into the new memory. */
        size_t *offs = cp_malloc(2 * b->n * sizeof(*offs));
        for (size_t i = 0; i < b->n; i++) {
            offs[2 * i] = (size_t) (b->recs[i].partition_key.p - b->bytes.p);
            offs[2 * i + 1] = (size_t) (b->recs[i].data.p - b->bytes.p);
        }
        cp_buf_reserve(&b->bytes, need);
        for (size_t i = 0; i < b->n; i++) {
            b->recs[i].partition_key.p = b->bytes.p + offs[2 * i];
            b->recs[i].data.p = b->bytes.p + offs[2 * i + 1];
        }
        cp_free(offs);
    } else {
        cp_buf_reserve(&b->bytes, need);
    }
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->recs = cp_realloc(b->recs, b->cap * sizeof(*b->recs));
    }
    size_t off = b->bytes.len;
    cp_buf_append(&b->bytes, partition_key.p, partition_key.len);
    cp_buf_append(&b->bytes, data.p, data.len);
    cp_stream_rec *r = &b->recs[b->n++];
    r->seq = seq;
    r->arrival_ms = arrival_ms;
    r->source_id = source_id;
    r->partition_key = cp_slice_of(b->bytes.p + off, partition_key.len);
    r->data = cp_slice_of(b->bytes.p + off + partition_key.len, data.len);
    b->data_bytes += need;
}
