/* SPDX-License-Identifier: MIT */
/* Allocation wrappers: abort with a message on OOM. */
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *check(void *p, size_t n)
{
    if (!p && n) {
        fprintf(stderr, "changepipe: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return p;
}

void *cp_malloc(size_t n)
{
    return check(malloc(n ? n : 1), n);
}

void *cp_calloc(size_t n, size_t size)
{
    return check(calloc(n ? n : 1, size ? size : 1), n * size);
}

void *cp_realloc(void *p, size_t n)
{
    return check(realloc(p, n ? n : 1), n);
}

char *cp_strdup(const char *s)
{
    return cp_strndup(s, strlen(s));
}

char *cp_strndup(const char *s, size_t n)
{
    char *d = cp_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void *cp_try_malloc(size_t n)
{
    return malloc(n ? n : 1);
}

void cp_free(void *p)
{
    free(p);
}
