/* SPDX-License-Identifier: MIT */
/* Directory creation and atomic, durable file replacement (see fs.h). */
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cp_fs_mkdir_p(const char *dir)
{
    char tmp[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -ENAMETOOLONG;
    }
    memcpy(tmp, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == 0) {
            char c = tmp[i];
            tmp[i] = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                return -errno;
            }
            tmp[i] = c;
        }
    }
    return CP_OK;
}

int cp_fs_write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        ssize_t w = write(fd, c, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        c += w;
        len -= (size_t) w;
    }
    return CP_OK;
}

int cp_fs_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int rc = fsync(fd) == 0 ? CP_OK : -errno;
    close(fd);
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int cp_fs_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return errno == ENOENT ? CP_OK : -errno;
    }
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        return errno ? -errno : -EIO;
    }
    return CP_OK;
}

int cp_fs_write_atomic(const char *path, const void *p, size_t len, int no_fsync, cp_err *err)
{
    char tmp[4200], dir[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
    } else {
        snprintf(dir, sizeof(dir), ".");
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return cp_err_set(err, -errno, "cannot write %s: %s", path, strerror(errno));
    }
    int rc = cp_fs_write_all(fd, p, len);
    if (rc == CP_OK && !no_fsync && fsync(fd) != 0) {
        rc = -errno;
    }
    if (close(fd) != 0 && rc == CP_OK) {
        rc = -errno;
    }
    if (rc == CP_OK && rename(tmp, path) != 0) {
        rc = -errno;
    }
    if (rc != CP_OK) {
        unlink(tmp);
        return cp_err_set(err, rc, "cannot write %s: %s", path, strerror(-rc));
    }
    rc = no_fsync ? CP_OK : cp_fs_fsync_dir(dir);
    return rc == CP_OK ? CP_OK
                       : cp_err_set(err, rc, "cannot sync the directory of %s: %s", path,
                                    strerror(-rc));
}
