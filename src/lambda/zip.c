/* SPDX-License-Identifier: MIT */
/*
 * Zip extraction for Lambda deployment packages: central directory first (it is the archive's
 * table of contents; local headers are only trusted for the data offset), every entry validated
 * before the first byte is written, then one entry at a time inflated into memory and written
 * below the target directory without ever following a symlink.
 */
#include "lambda/zip.h"

#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/hash.h"
#include "core/mem.h"

#define SIG_LOCAL   0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD    0x06054b50u
#define SIG_EOCD64  0x06064b50u
#define SIG_LOC64   0x07064b50u

#define EOCD_LEN    22u
#define CENTRAL_LEN 46u
#define LOCAL_LEN   30u
#define EOCD64_LEN  56u
#define LOC64_LEN   20u

#define MADE_BY_UNIX           3u
#define FLAG_ENCRYPTED         0x0001u
#define FLAG_STRONG_ENCRYPTION 0x0040u
#define METHOD_STORED          0u
#define METHOD_DEFLATE         8u
#define METHOD_AES             99u
#define DOS_DIR_ATTR           0x10u

typedef enum { KIND_FILE, KIND_DIR, KIND_SYMLINK } entry_kind;

typedef struct entry {
    const char *raw; /* name as stored (borrows the archive) */
    size_t raw_len;
    char *path; /* normalised relative path, '/'-separated, no ".", "..", or "" parts */
    entry_kind kind;
    mode_t mode; /* 0755 or 0644 for files */
    uint16_t method;
    uint32_t crc;
    uint64_t csize, usize, local_off;
} entry;

typedef struct zipper {
    const unsigned char *p;
    uint64_t len;
    uint64_t cd_off; /* local data must end before the central directory */
    cp_err *err;
} zipper;

static uint16_t ld16(const unsigned char *p)
{
    return (uint16_t) (p[0] | p[1] << 8);
}

/* A printable, bounded copy of an entry name for error messages: names come from the client
 * and may hold control bytes or invalid UTF-8, which would spoil the JSON error reply. */
static const char *shown(const char *raw, size_t len, char out[80])
{
    size_t n = 0;
    for (size_t i = 0; i < len && n < 75; i++) {
        unsigned char c = (unsigned char) raw[i];
        out[n++] = c >= 0x20 && c < 0x7f ? raw[i] : '?';
    }
    if (len > 75) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = 0;
    return out;
}

static int fail_entry(cp_err *err, int code, const entry *e, const char *what)
{
    char name[80];
    return cp_err_set(err, code, "entry \"%s\": %s", shown(e->raw, e->raw_len, name), what);
}

/* ------------------------------------------------------------------------------------------ */
/* Central directory                                                                           */

typedef struct dir_info {
    uint64_t n;    /* entries */
    uint64_t off;  /* central directory offset */
    uint64_t size; /* central directory size */
    uint64_t end;  /* where the central directory must end (the first end record) */
} dir_info;

static int find_end(const zipper *z, dir_info *d)
{
    if (z->len < EOCD_LEN) {
        return cp_err_set(z->err, CP_EINVAL, "not a zip file (too short)");
    }
    /* The end record sits in the last 22 bytes plus a comment of up to 64 KiB; scan backwards
     * for a signature whose comment length reaches exactly the end of the data. */
    uint64_t lo = z->len > EOCD_LEN + 0xffff ? z->len - EOCD_LEN - 0xffff : 0;
    uint64_t at = UINT64_MAX;
    for (uint64_t i = z->len - EOCD_LEN + 1; i-- > lo;) {
        if (cp_load_u32le(z->p + i) == SIG_EOCD && i + EOCD_LEN + ld16(z->p + i + 20) == z->len) {
            at = i;
            break;
        }
    }
    if (at == UINT64_MAX) {
        return cp_err_set(z->err, CP_EINVAL, "not a zip file (no end of central directory)");
    }
    const unsigned char *e = z->p + at;
    int multi = ld16(e + 4) != 0 || ld16(e + 6) != 0 || ld16(e + 8) != ld16(e + 10);
    d->n = ld16(e + 10);
    d->size = cp_load_u32le(e + 12);
    d->off = cp_load_u32le(e + 16);
    d->end = at;
    if (d->n == 0xffff || d->size == 0xffffffffu || d->off == 0xffffffffu) {
        /* zip64: the locator right before the end record points at the 64-bit end record. */
        if (at < LOC64_LEN || cp_load_u32le(z->p + at - LOC64_LEN) != SIG_LOC64) {
            return cp_err_set(z->err, CP_EINVAL, "zip64 archive without its locator");
        }
        const unsigned char *l = z->p + at - LOC64_LEN;
        uint64_t off64 = cp_load_u64le(l + 8);
        if (off64 > at - LOC64_LEN || at - LOC64_LEN - off64 < EOCD64_LEN ||
            cp_load_u32le(z->p + off64) != SIG_EOCD64) {
            return cp_err_set(z->err, CP_EINVAL, "corrupt zip64 end of central directory");
        }
        const unsigned char *r = z->p + off64;
        d->n = cp_load_u64le(r + 32);
        d->size = cp_load_u64le(r + 40);
        d->off = cp_load_u64le(r + 48);
        d->end = off64;
        multi = cp_load_u32le(l + 4) != 0 || cp_load_u32le(l + 16) > 1 ||
                cp_load_u32le(r + 16) != 0 || cp_load_u32le(r + 20) != 0 ||
                cp_load_u64le(r + 24) != d->n;
    }
    if (multi) {
        return cp_err_set(z->err, CP_EINVAL, "multi-disk zip archives are not supported");
    }
    if (d->off > d->end || d->size > d->end - d->off) {
        return cp_err_set(z->err, CP_EINVAL, "corrupt zip: central directory out of bounds");
    }
    if (d->n > d->size / CENTRAL_LEN) {
        return cp_err_set(z->err, CP_EINVAL, "corrupt zip: entry count exceeds the directory");
    }
    return CP_OK;
}

/* Apply the zip64 extended-information extra field: each 64-bit value is present only when
 * the 32-bit field holds its 0xffffffff marker, in the fixed order usize, csize, offset. */
static int apply_zip64(const unsigned char *x, size_t xlen, entry *e, uint32_t u32, uint32_t c32,
                       uint32_t o32)
{
    while (xlen >= 4) {
        uint16_t id = ld16(x), sz = ld16(x + 2);
        if ((size_t) sz > xlen - 4) {
            return CP_EINVAL;
        }
        if (id == 0x0001) {
            const unsigned char *v = x + 4;
            size_t left = sz;
            uint64_t *fields[3] = {&e->usize, &e->csize, &e->local_off};
            int need[3] = {u32 == 0xffffffffu, c32 == 0xffffffffu, o32 == 0xffffffffu};
            for (int i = 0; i < 3; i++) {
                if (!need[i]) {
                    continue;
                }
                if (left < 8) {
                    return CP_EINVAL;
                }
                *fields[i] = cp_load_u64le(v);
                v += 8;
                left -= 8;
            }
            return CP_OK;
        }
        x += 4 + sz;
        xlen -= 4 + (size_t) sz;
    }
    return u32 == 0xffffffffu || c32 == 0xffffffffu || o32 == 0xffffffffu ? CP_EINVAL : CP_OK;
}

/* Turn the stored name into a safe relative path. Backslashes count as separators (some
 * Windows tools write them), so "..\x" is caught like "../x". */
static int normalise(entry *e, cp_err *err)
{
    if (memchr(e->raw, 0, e->raw_len)) {
        return fail_entry(err, CP_EINVAL, e, "name contains a NUL byte");
    }
    if (e->raw_len == 0) {
        return cp_err_set(err, CP_EINVAL, "an entry has an empty name");
    }
    if (e->raw[0] == '/' || e->raw[0] == '\\') {
        return fail_entry(err, CP_EINVAL, e, "absolute path refused");
    }
    cp_buf out = CP_BUF_INIT;
    size_t i = 0;
    while (i < e->raw_len) {
        size_t j = i;
        while (j < e->raw_len && e->raw[j] != '/' && e->raw[j] != '\\') {
            j++;
        }
        size_t n = j - i;
        if (n == 2 && e->raw[i] == '.' && e->raw[i + 1] == '.') {
            cp_buf_free(&out);
            return fail_entry(err, CP_EINVAL, e, "path escapes the function directory (\"..\")");
        }
        if (n > 255) {
            cp_buf_free(&out);
            return fail_entry(err, CP_EINVAL, e, "path component longer than 255 bytes");
        }
        if (n > 0 && !(n == 1 && e->raw[i] == '.')) {
            if (out.len) {
                cp_buf_putc(&out, '/');
            }
            cp_buf_append(&out, e->raw + i, n);
        }
        i = j + 1;
    }
    if (out.len > 4000) {
        cp_buf_free(&out);
        return fail_entry(err, CP_EINVAL, e, "path too long");
    }
    e->path = out.p; /* NULL when the name was only "./" */
    return CP_OK;
}

static int parse_entry(const zipper *z, const unsigned char *c, size_t avail, entry *e,
                       size_t *used)
{
    if (avail < CENTRAL_LEN || cp_load_u32le(c) != SIG_CENTRAL) {
        return cp_err_set(z->err, CP_EINVAL, "corrupt zip: bad central directory entry");
    }
    uint16_t made_by = ld16(c + 4), flags = ld16(c + 8);
    size_t n = ld16(c + 28), x = ld16(c + 30), k = ld16(c + 32);
    if (CENTRAL_LEN + n + x + k > avail) {
        return cp_err_set(z->err, CP_EINVAL, "corrupt zip: central directory entry truncated");
    }
    uint32_t c32 = cp_load_u32le(c + 20), u32 = cp_load_u32le(c + 24);
    uint32_t ext = cp_load_u32le(c + 38), o32 = cp_load_u32le(c + 42);
    e->raw = (const char *) c + CENTRAL_LEN;
    e->raw_len = n;
    e->method = ld16(c + 10);
    e->crc = cp_load_u32le(c + 16);
    e->csize = c32;
    e->usize = u32;
    e->local_off = o32;
    *used = CENTRAL_LEN + n + x + k;
    if (apply_zip64(c + CENTRAL_LEN + n, x, e, u32, c32, o32) != CP_OK) {
        return fail_entry(z->err, CP_EINVAL, e, "corrupt zip64 extra field");
    }
    if ((flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) || e->method == METHOD_AES) {
        return fail_entry(z->err, CP_EINVAL, e, "encrypted entries are not supported");
    }
    if (e->method != METHOD_STORED && e->method != METHOD_DEFLATE) {
        char what[96];
        snprintf(what, sizeof(what),
                 "compression method %u is not supported (only stored and deflate)", e->method);
        return fail_entry(z->err, CP_EINVAL, e, what);
    }
    if (e->method == METHOD_STORED && e->csize != e->usize) {
        return fail_entry(z->err, CP_EINVAL, e, "stored entry with differing sizes");
    }
    int rc = normalise(e, z->err);
    if (rc != CP_OK) {
        return rc;
    }
    /* Kind and mode: unix attributes when the archive was made on unix, else the DOS
     * directory bit and the trailing slash. */
    mode_t umode = (made_by >> 8) == MADE_BY_UNIX ? (mode_t) (ext >> 16) : 0;
    int slash = e->raw[e->raw_len - 1] == '/' || e->raw[e->raw_len - 1] == '\\';
    if (umode && S_ISLNK(umode)) {
        e->kind = KIND_SYMLINK;
    } else if (slash || (umode && S_ISDIR(umode)) || (!umode && (ext & DOS_DIR_ATTR))) {
        e->kind = KIND_DIR;
    } else {
        /* Regular files, and also fifo or device entries: Info-ZIP records stdin as a fifo
         * when it archives a pipe. Their bytes are written as a plain file, as unzip does;
         * no special file is ever created. */
        e->kind = KIND_FILE;
    }
    if (e->kind != KIND_DIR && !e->path) {
        return fail_entry(z->err, CP_EINVAL, e, "file entry without a name");
    }
    if (e->kind == KIND_FILE) {
        if (umode) {
            e->mode = (umode & 0100) ? 0755 : 0644;
        } else {
            e->mode = strcmp(e->path, "bootstrap") == 0 ? 0755 : 0644;
        }
    }
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Writing                                                                                     */

/* Open the directory holding `path`'s last component, creating missing parents, never
 * following a symlink (O_NOFOLLOW at each step), so no entry can write through a link that an
 * earlier entry created. Returns a new fd (or root itself when the entry is top-level). */
static int open_parent(int root, const entry *e, const char **leaf, cp_err *err)
{
    int fd = root;
    const char *p = e->path;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash) {
            *leaf = p;
            return fd;
        }
        char comp[256];
        size_t n = (size_t) (slash - p);
        memcpy(comp, p, n);
        comp[n] = 0;
        int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT) {
            if (mkdirat(fd, comp, 0755) != 0 && errno != EEXIST) {
                int e2 = errno;
                if (fd != root) {
                    close(fd);
                }
                return fail_entry(err, -e2, e, "cannot create a parent directory");
            }
            next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        int e2 = errno;
        if (fd != root) {
            close(fd);
        }
        if (next < 0) {
            if (e2 == ELOOP || e2 == ENOTDIR) {
                return fail_entry(err, CP_EINVAL, e, "a parent is a symlink or a file");
            }
            return fail_entry(err, -e2, e, "cannot open a parent directory");
        }
        fd = next;
        p = slash + 1;
    }
}

/* A link target is acceptable when it is relative and, resolved lexically from the link's own
 * directory, never climbs above the function directory. Extraction never follows links, so
 * the lexical check is exact for everything this archive creates. */
static int check_link(const entry *e, const unsigned char *t, uint64_t len, cp_err *err)
{
    if (len == 0 || len > 4000 || memchr(t, 0, len)) {
        return fail_entry(err, CP_EINVAL, e, "invalid symlink target");
    }
    if (t[0] == '/') {
        return fail_entry(err, CP_EINVAL, e, "symlink to an absolute path refused");
    }
    long depth = 0;
    for (const char *s = e->path; *s; s++) {
        depth += *s == '/';
    }
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && t[j] != '/') {
            j++;
        }
        size_t n = j - i;
        if (n == 2 && t[i] == '.' && t[i + 1] == '.') {
            if (--depth < 0) {
                return fail_entry(err, CP_EINVAL, e,
                                  "symlink points outside the function directory");
            }
        } else if (n > 0 && !(n == 1 && t[i] == '.')) {
            depth++;
        }
        i = j + 1;
    }
    return CP_OK;
}

/* The entry's bytes: a view into the archive for stored entries, a new buffer (*owned) for
 * deflate. Checks the local header, the declared size and the CRC. */
static int entry_data(const zipper *z, struct libdeflate_decompressor *dc, const entry *e,
                      const unsigned char **out, unsigned char **owned)
{
    *owned = NULL;
    if (e->local_off > z->cd_off || z->cd_off - e->local_off < LOCAL_LEN ||
        cp_load_u32le(z->p + e->local_off) != SIG_LOCAL) {
        return fail_entry(z->err, CP_EINVAL, e, "bad local header");
    }
    const unsigned char *l = z->p + e->local_off;
    uint64_t data = e->local_off + LOCAL_LEN + ld16(l + 26) + ld16(l + 28);
    if (data > z->cd_off || e->csize > z->cd_off - data) {
        return fail_entry(z->err, CP_EINVAL, e, "data runs past the end of the archive");
    }
    const unsigned char *in = z->p + data;
    if (e->method == METHOD_STORED) {
        *out = in;
    } else {
        unsigned char *buf = cp_try_malloc(e->usize ? (size_t) e->usize : 1);
        if (!buf) {
            return fail_entry(z->err, CP_ENOMEM, e, "out of memory");
        }
        enum libdeflate_result r =
            libdeflate_deflate_decompress(dc, in, (size_t) e->csize, buf, (size_t) e->usize, NULL);
        if (r != LIBDEFLATE_SUCCESS) {
            cp_free(buf);
            return fail_entry(z->err, CP_EINVAL, e,
                              r == LIBDEFLATE_INSUFFICIENT_SPACE ? "inflates past its declared size"
                              : r == LIBDEFLATE_SHORT_OUTPUT ? "inflates short of its declared size"
                                                             : "corrupt deflate data");
        }
        *owned = buf;
        *out = buf;
    }
    if (cp_crc32(0, *out, (size_t) e->usize) != e->crc) {
        cp_free(*owned);
        *owned = NULL;
        return fail_entry(z->err, CP_EINVAL, e, "CRC-32 mismatch");
    }
    return CP_OK;
}

static int extract_one(const zipper *z, struct libdeflate_decompressor *dc, int root,
                       const entry *e, cp_zip_stats *st)
{
    if (e->kind == KIND_DIR && !e->path) {
        return CP_OK; /* "./" */
    }
    const unsigned char *data = NULL;
    unsigned char *owned = NULL;
    int rc = CP_OK;
    if (e->kind != KIND_DIR) {
        rc = entry_data(z, dc, e, &data, &owned);
        if (rc == CP_OK && e->kind == KIND_SYMLINK) {
            rc = check_link(e, data, e->usize, z->err);
        }
        if (rc != CP_OK) {
            return rc;
        }
    }
    const char *leaf = NULL;
    int dir = open_parent(root, e, &leaf, z->err);
    if (dir < 0 || !leaf) {
        cp_free(owned);
        return dir < 0 ? dir : fail_entry(z->err, CP_EINVAL, e, "file entry without a name");
    }
    if (e->kind == KIND_DIR) {
        /* A directory may already exist as the implicit parent of an earlier entry. */
        struct stat sb;
        if (mkdirat(dir, leaf, 0755) != 0 && errno != EEXIST) {
            rc = fail_entry(z->err, -errno, e, "cannot create directory");
        } else if (fstatat(dir, leaf, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(sb.st_mode)) {
            rc = fail_entry(z->err, CP_EINVAL, e, "directory conflicts with an earlier entry");
        } else {
            st->dirs++;
        }
    } else if (e->kind == KIND_SYMLINK) {
        char target[4001];
        memcpy(target, data, (size_t) e->usize);
        target[e->usize] = 0;
        if (symlinkat(target, dir, leaf) != 0) {
            rc = errno == EEXIST ? fail_entry(z->err, CP_EINVAL, e, "duplicate entry")
                                 : fail_entry(z->err, -errno, e, "cannot create symlink");
        } else {
            st->symlinks++;
            st->bytes += e->usize;
        }
    } else {
        int fd = openat(dir, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            rc = errno == EEXIST ? fail_entry(z->err, CP_EINVAL, e, "duplicate entry")
                                 : fail_entry(z->err, -errno, e, "cannot create file");
        } else {
            int w = cp_fs_write_all(fd, data, (size_t) e->usize);
            /* fchmod, not the open mode: the umask must not strip bootstrap's execute bit. */
            if (w == CP_OK && fchmod(fd, e->mode) != 0) {
                w = -errno;
            }
            if (close(fd) != 0 && w == CP_OK) {
                w = -errno;
            }
            if (w != CP_OK) {
                rc = fail_entry(z->err, w, e, "cannot write file");
            } else {
                st->files++;
                st->bytes += e->usize;
            }
        }
    }
    if (dir != root) {
        close(dir);
    }
    cp_free(owned);
    return rc;
}

int cp_zip_extract(cp_slice zip, const char *dir, const cp_zip_limits *lim, cp_zip_stats *st,
                   cp_err *err)
{
    uint64_t max_total = lim && lim->max_total ? lim->max_total : CP_ZIP_DEFAULT_MAX_TOTAL;
    uint32_t max_entries = lim && lim->max_entries ? lim->max_entries : CP_ZIP_DEFAULT_MAX_ENTRIES;
    cp_zip_stats local = {0};
    if (!st) {
        st = &local;
    }
    memset(st, 0, sizeof(*st));
    zipper z = {(const unsigned char *) zip.p, zip.len, 0, err};
    dir_info d = {0};
    int rc = find_end(&z, &d);
    if (rc != CP_OK) {
        return rc;
    }
    if (d.n > max_entries) {
        return cp_err_set(err, CP_ETOOBIG, "zip has %llu entries, more than the limit of %u",
                          (unsigned long long) d.n, max_entries);
    }
    z.cd_off = d.off;
    entry *es = cp_calloc(d.n ? (size_t) d.n : 1, sizeof(entry));
    size_t parsed = 0;
    uint64_t pos = d.off, total = 0;
    for (; parsed < d.n; parsed++) {
        size_t used = 0;
        rc = parse_entry(&z, z.p + pos, (size_t) (d.off + d.size - pos), &es[parsed], &used);
        if (rc != CP_OK) {
            cp_free(es[parsed].path);
            break;
        }
        pos += used;
        /* The bomb check happens here, over declared sizes, before anything is inflated;
         * libdeflate is then held to each declared size exactly. */
        if (es[parsed].usize > max_total - total) {
            parsed++;
            rc = cp_err_set(err, CP_ETOOBIG, "Unzipped size must be smaller than %llu bytes",
                            (unsigned long long) max_total);
            break;
        }
        total += es[parsed].usize;
    }
    if (rc == CP_OK) {
        int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root < 0) {
            rc = cp_err_set(err, -errno, "cannot open the extraction directory");
        } else {
            struct libdeflate_decompressor *dc = libdeflate_alloc_decompressor();
            if (!dc) {
                rc = cp_err_set(err, CP_ENOMEM, "out of memory");
            }
            for (size_t i = 0; rc == CP_OK && i < parsed; i++) {
                rc = extract_one(&z, dc, root, &es[i], st);
            }
            libdeflate_free_decompressor(dc);
            close(root);
        }
    }
    for (size_t i = 0; i < parsed; i++) {
        cp_free(es[i].path);
    }
    cp_free(es);
    return rc;
}
