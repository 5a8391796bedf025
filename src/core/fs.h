/* SPDX-License-Identifier: MIT */
/*
 * File-system helpers every durable component shares: creating directory paths, writing a
 * whole buffer, and replacing a small file atomically and durably (temp file, fsync, rename,
 * fsync of the directory), so a crash leaves the old contents or the new, never a mix.
 */
#ifndef CP_FS_H
#define CP_FS_H

#include <stddef.h>

#include "core/err.h"

/* mkdir -p. Returns CP_OK or -errno (-ENAMETOOLONG past 4095 bytes). */
int cp_fs_mkdir_p(const char *dir);
/* write() until all len bytes are written, retrying on EINTR. CP_OK or -errno. */
int cp_fs_write_all(int fd, const void *p, size_t len);
/* fsync a directory (after creating, renaming or deleting entries in it). CP_OK or -errno. */
int cp_fs_fsync_dir(const char *dir);
/* rm -rf: remove a file or a directory tree without following symbolic links. A missing path
 * is CP_OK. -errno when something could not be removed. */
int cp_fs_rm_rf(const char *path);
/* Replace `path` with len bytes of p atomically; durable on return unless no_fsync. The
 * temporary file is "<path>.tmp" in the same directory. -errno with err filled on failure,
 * leaving the old file in place. */
int cp_fs_write_atomic(const char *path, const void *p, size_t len, int no_fsync, cp_err *err);

#endif
