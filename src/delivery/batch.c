/* SPDX-License-Identifier: MIT */
/* Record batches and their arena (see batch.h). */
#include "delivery/batch.h"

#include <string.h>

#include "core/mem.h"

struct cp_batch_block {
    cp_batch_block *next;
    size_t size;
    _Alignas(16) unsigned char data[];
};

#define BLOCK_MIN (256 * 1024)

void cp_batch_reset(cp_batch *b)
{
    b->n = 0;
    b->arena_bytes = 0;
    /* Keep the newest block only: steady-state batches then allocate nothing. */
    if (b->blocks) {
        cp_batch_block *keep = b->blocks, *p = keep->next;
        while (p) {
            cp_batch_block *next = p->next;
            cp_free(p);
            p = next;
        }
        keep->next = NULL;
    }
    b->used = 0;
}

void cp_batch_free(cp_batch *b)
{
    cp_batch_reset(b);
    cp_free(b->blocks);
    cp_free(b->recs);
    *b = CP_BATCH_INIT;
}

cp_drec *cp_batch_add(cp_batch *b)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 256;
        b->recs = cp_realloc(b->recs, b->cap * sizeof(*b->recs));
    }
    cp_drec *r = &b->recs[b->n++];
    memset(r, 0, sizeof(*r));
    return r;
}

void *cp_batch_alloc(cp_batch *b, size_t n)
{
    n = (n + 15) & ~(size_t) 15;
    if (!b->blocks || b->used + n > b->blocks->size) {
        size_t size = n > BLOCK_MIN ? n : BLOCK_MIN;
        cp_batch_block *blk = cp_malloc(sizeof(*blk) + size);
        blk->size = size;
        blk->next = b->blocks;
        b->blocks = blk;
        b->used = 0;
    }
    void *p = b->blocks->data + b->used;
    b->used += n;
    b->arena_bytes += n;
    return p;
}

cp_slice cp_batch_copy(cp_batch *b, cp_slice s)
{
    if (!s.len) {
        return (cp_slice){"", 0};
    }
    char *p = cp_batch_alloc(b, s.len);
    memcpy(p, s.p, s.len);
    return (cp_slice){p, s.len};
}

void cp_drec_fail(cp_batch *b, cp_drec *r, const char *error_type, const char *error_code,
                  const char *message)
{
    r->result = CP_REC_FAILED;
    r->error_type = error_type;
    r->error_code = error_code;
    r->error_message = cp_batch_copy(b, cp_slice_str(message));
}
