/* SPDX-License-Identifier: MIT */
/* Private helpers shared by the files of the stream component (not part of its API). */
#ifndef CP_STREAM_STREAM_INT_H
#define CP_STREAM_STREAM_INT_H

#include <stddef.h>

#include "core/err.h"

/* Remove `path` and everything below it (no symlinks followed). A missing path is CP_OK. */
int cp__stream_rmtree(const char *path, cp_err *err);

/* Replace dir/name with `len` bytes atomically: write dir/name.tmp, fsync it, rename over
 * dir/name, fsync dir (fsyncs skipped when no_fsync). Borrows everything. */
int cp__stream_write_atomic(const char *dir, const char *name, const void *p, size_t len,
                            int no_fsync, cp_err *err);

#endif
