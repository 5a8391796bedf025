/* SPDX-License-Identifier: MIT */
/* Object compression for delivery (see compress.h): format table and gzip via libdeflate. */
#include "delivery/compress.h"

#include <errno.h>
#include <libdeflate.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/mem.h"

static const struct {
    const char *name, *ext, *encoding;
    int supported;
} formats[] = {
    [CP_COMPRESS_NONE] = {"UNCOMPRESSED", "", NULL, 1},
    [CP_COMPRESS_GZIP] = {"GZIP", ".gz", "gzip", 1},
    [CP_COMPRESS_ZIP] = {"ZIP", ".zip", "zip", 0},
    [CP_COMPRESS_SNAPPY] = {"Snappy", ".snappy", "snappy-java", 0},
    [CP_COMPRESS_HADOOP_SNAPPY] = {"HADOOP_SNAPPY", ".snappy", "hadoop-snappy", 0},
};

#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

int cp_compress_parse(const char *name, cp_compress_format *out)
{
    if (!name || !*name) {
        *out = CP_COMPRESS_NONE;
        return CP_OK;
    }
    for (size_t i = 0; i < NFORMATS; i++) {
        if (strcmp(name, formats[i].name) == 0) {
            *out = (cp_compress_format) i;
            return CP_OK;
        }
    }
    return CP_EINVAL;
}

const char *cp_compress_name(cp_compress_format f)
{
    return (size_t) f < NFORMATS ? formats[f].name : "UNCOMPRESSED";
}

int cp_compress_supported(cp_compress_format f)
{
    return (size_t) f < NFORMATS && formats[f].supported;
}

const char *cp_compress_extension(cp_compress_format f)
{
    return (size_t) f < NFORMATS ? formats[f].ext : "";
}

const char *cp_compress_content_encoding(cp_compress_format f)
{
    return (size_t) f < NFORMATS ? formats[f].encoding : NULL;
}

/* A NULL compressor asks libdeflate for the bound across every level it could be built with. */
size_t cp_gzip_bound(size_t len)
{
    return libdeflate_gzip_compress_bound(NULL, len);
}

static int level_or_default(int level, cp_err *err, int *out)
{
    if (level == 0) {
        level = CP_GZIP_LEVEL_DEFAULT;
    }
    if (level < 1 || level > 12) {
        return cp_err_set(err, CP_EINVAL, "gzip level %d is outside 1..12", level);
    }
    *out = level;
    return CP_OK;
}

int cp_gzip_compress(cp_slice in, int level, cp_buf *out, cp_err *err)
{
    int rc = level_or_default(level, err, &level);
    if (rc < 0) {
        return rc;
    }
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
    if (!c) {
        return cp_err_set(err, CP_ENOMEM, "out of memory for the gzip compressor");
    }
    size_t bound = libdeflate_gzip_compress_bound(c, in.len);
    cp_buf_reserve(out, bound);
    size_t n = libdeflate_gzip_compress(c, in.len ? in.p : "", in.len, out->p + out->len, bound);
    libdeflate_free_compressor(c);
    /* The bound is exact for libdeflate: a 0 here would be a library bug, not an input case. */
    if (n == 0) {
        return cp_err_set(err, CP_EIO, "gzip compression did not fit its bound");
    }
    out->len += n;
    out->p[out->len] = 0;
    return CP_OK;
}

int cp_gzip_compress_fd(int in_fd, uint64_t len, int level, int out_fd, uint64_t *out_len,
                        cp_err *err)
{
    int rc = level_or_default(level, err, &level);
    if (rc < 0) {
        return rc;
    }
    if (len > SIZE_MAX / 2) {
        return cp_err_set(err, CP_ETOOBIG, "input of %llu bytes is too large to compress",
                          (unsigned long long) len);
    }
    void *in = NULL, *outp = NULL;
    size_t bound = cp_gzip_bound((size_t) len);
    struct libdeflate_compressor *c = NULL;
    if (len) {
        in = mmap(NULL, (size_t) len, PROT_READ, MAP_SHARED, in_fd, 0);
        if (in == MAP_FAILED) {
            return cp_err_set(err, -errno, "mmap of the buffer file failed: %s", strerror(errno));
        }
    }
    /* Size the output file to the bound, compress straight into its mapping, then cut it to
     * the real size: no heap copy of either side. */
    if (ftruncate(out_fd, (off_t) bound) < 0) {
        rc = cp_err_set(err, -errno, "ftruncate of the output file failed: %s", strerror(errno));
        goto out;
    }
    outp = mmap(NULL, bound, PROT_READ | PROT_WRITE, MAP_SHARED, out_fd, 0);
    if (outp == MAP_FAILED) {
        outp = NULL;
        rc = cp_err_set(err, -errno, "mmap of the output file failed: %s", strerror(errno));
        goto out;
    }
    c = libdeflate_alloc_compressor(level);
    if (!c) {
        rc = cp_err_set(err, CP_ENOMEM, "out of memory for the gzip compressor");
        goto out;
    }
    size_t n = libdeflate_gzip_compress(c, in ? in : "", (size_t) len, outp, bound);
    if (n == 0) {
        rc = cp_err_set(err, CP_EIO, "gzip compression did not fit its bound");
        goto out;
    }
    if (msync(outp, n, MS_SYNC) < 0) {
        rc = cp_err_set(err, -errno, "msync of the output file failed: %s", strerror(errno));
        goto out;
    }
    if (ftruncate(out_fd, (off_t) n) < 0) {
        rc = cp_err_set(err, -errno, "ftruncate of the output file failed: %s", strerror(errno));
        goto out;
    }
    *out_len = n;
out:
    libdeflate_free_compressor(c);
    if (outp) {
        munmap(outp, bound);
    }
    if (in) {
        munmap(in, (size_t) len);
    }
    return rc;
}

int cp_gzip_decompress(cp_slice in, size_t max, cp_buf *out, cp_err *err)
{
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    if (!d) {
        return cp_err_set(err, CP_ENOMEM, "out of memory for the gzip decompressor");
    }
    const unsigned char *p = (const unsigned char *) in.p;
    size_t left = in.len, total = 0;
    int rc = CP_OK;
    if (left == 0) {
        rc = cp_err_set(err, CP_EINVAL, "empty gzip stream");
    }
    while (rc == CP_OK && left > 0) {
        if (left < 18) {
            rc = cp_err_set(err, CP_EINVAL, "truncated gzip member");
            break;
        }
        /* ISIZE (the member's trailer) is only a hint: it is the size mod 2^32 and we do not
         * know where this member ends, so start from it and grow on INSUFFICIENT_SPACE. */
        size_t guess = in.len * 4 + 64;
        for (;;) {
            if (guess > max - total) {
                guess = max - total;
            }
            cp_buf_reserve(out, guess);
            size_t used_in = 0, produced = 0;
            enum libdeflate_result r = libdeflate_gzip_decompress_ex(d, p, left, out->p + out->len,
                                                                     guess, &used_in, &produced);
            if (r == LIBDEFLATE_SUCCESS) {
                out->len += produced;
                out->p[out->len] = 0;
                total += produced;
                p += used_in;
                left -= used_in;
                break;
            }
            if (r != LIBDEFLATE_INSUFFICIENT_SPACE) {
                rc = cp_err_set(err, CP_EINVAL, "corrupt gzip data");
                break;
            }
            if (guess >= max - total) {
                rc = cp_err_set(err, CP_ETOOBIG, "gzip data expands beyond %zu bytes", max);
                break;
            }
            guess = guess > SIZE_MAX / 2 ? SIZE_MAX : guess * 2;
        }
    }
    libdeflate_free_decompressor(d);
    return rc;
}
