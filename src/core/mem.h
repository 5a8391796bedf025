/* SPDX-License-Identifier: MIT */
/*
 * Allocation wrappers. cp_malloc & co abort on OOM (durability comes from fsync'd storage and
 * restart, not from limping on). Client-sized allocations go through cp_try_malloc, which
 * returns NULL so the caller can answer 4xx/5xx.
 */
#ifndef CP_MEM_H
#define CP_MEM_H

#include <stddef.h>

void *cp_malloc(size_t n);
void *cp_calloc(size_t n, size_t size);
void *cp_realloc(void *p, size_t n);
char *cp_strdup(const char *s);
char *cp_strndup(const char *s, size_t n);
/* Returns NULL on failure instead of aborting. */
void *cp_try_malloc(size_t n);
void cp_free(void *p);

#endif
