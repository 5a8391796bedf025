/* SPDX-License-Identifier: MIT */
/*
 * Zip extraction for Lambda deployment packages (CreateFunction's Code.ZipFile): the archive is
 * read from memory through its central directory and written below one directory. Stored and
 * deflate entries (libdeflate, with the declared uncompressed size), CRC-32 checked, zip64
 * records understood, the unix mode kept so `bootstrap` stays executable.
 *
 * Hostile archives are refused before anything escapes the target: absolute names, ".."
 * components, symlinks whose target leaves the directory, writes through a symlink, and zip
 * bombs (the sum of declared sizes is checked before any byte is inflated, and no entry may
 * inflate past its declared size).
 */
#ifndef CP_ZIP_H
#define CP_ZIP_H

#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* Lambda's limit on a function's unzipped size ("Unzipped size must be smaller than
 * 262144000 bytes"). */
#define CP_ZIP_DEFAULT_MAX_TOTAL   (250ull * 1024 * 1024)
#define CP_ZIP_DEFAULT_MAX_ENTRIES 100000u

typedef struct cp_zip_limits {
    uint64_t max_total;   /* sum of uncompressed sizes; 0 = CP_ZIP_DEFAULT_MAX_TOTAL */
    uint32_t max_entries; /* central directory entries; 0 = CP_ZIP_DEFAULT_MAX_ENTRIES */
} cp_zip_limits;

typedef struct cp_zip_stats {
    uint32_t files;    /* regular files written */
    uint32_t dirs;     /* directory entries (implicit parents are not counted) */
    uint32_t symlinks; /* symbolic links created */
    uint64_t bytes;    /* uncompressed bytes written (files and link targets) */
} cp_zip_stats;

/*
 * Extract the archive `zip` (borrowed for the call) into the existing directory `dir`, which
 * should be empty: an entry that already exists there is refused as a duplicate. `lim` may be
 * NULL for the defaults; `st` may be NULL.
 *
 * File modes: an entry made on unix keeps its permission bits reduced to 0755 or 0644 (the
 * owner-execute bit decides); an entry without unix attributes gets 0644, except a top-level
 * `bootstrap`, which gets 0755 so archives made on Windows still run.
 *
 * Returns CP_OK, or:
 *   CP_EINVAL   not a zip, truncated or inconsistent records, bad CRC, corrupt deflate data,
 *               encrypted entries, methods other than stored/deflate, multi-disk archives,
 *               names or symlinks that escape `dir`, duplicates;
 *   CP_ETOOBIG  more than max_total uncompressed bytes or more than max_entries entries;
 *   CP_ENOMEM   an entry buffer could not be allocated;
 *   -errno      from the file system (err names the entry).
 * err->msg is client-safe (entry names, never the target path). On failure `dir` may hold a
 * partial tree: extract into a scratch directory and remove it on error.
 */
int cp_zip_extract(cp_slice zip, const char *dir, const cp_zip_limits *lim, cp_zip_stats *st,
                   cp_err *err);

#endif
