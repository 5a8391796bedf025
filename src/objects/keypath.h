/* SPDX-License-Identifier: MIT */
/*
 * keypath: how an S3 object key becomes a relative file path inside its bucket directory, so a
 * person can browse `<data>/buckets/<bucket>/Livestreams/LivestreamID=x/file` directly, while
 * no key can ever name a path outside the bucket.
 *
 * The key is split at '/' into segments; each segment becomes one or more path components:
 *
 *   plain       the segment itself, when it is non-empty, not "." or "..", does not start
 *               with '%', is at most 255 bytes, and (first segment only) does not start with
 *               ".cp-" (names reserved for the store's own hidden directories).
 *   %f<esc>     a segment that cannot be plain, used as the last component (the file);
 *   %d<esc>     ... used as a directory component;
 *   %c<esc>     a piece of a segment longer than one file name allows: the segment continues
 *               in the next component (no '/' between them when decoding).
 *
 * <esc> is the segment with every '%' written as "%25" (a segment never holds '/' or NUL, so
 * nothing else needs escaping). Examples: "a/" -> "a/%f", "../x" -> "%d../x", "." -> "%f.",
 * "%20" -> "%f%2520", ".cp-tmp/x" -> "%d.cp-tmp/x".
 *
 * A plain component may also be replaced by its %f / %d form when the file system already
 * holds the other kind under the plain name: S3 allows both "a" and "a/b" as keys, a
 * directory tree cannot hold a file and a directory both named "a". So one key may have two
 * valid paths (the store records which one it used); every path decodes to exactly one key,
 * so two keys never share a path.
 */
#ifndef CP_OBJECTS_KEYPATH_H
#define CP_OBJECTS_KEYPATH_H

#include "core/buf.h"
#include "core/err.h"

/* Longest key S3 accepts, in bytes of UTF-8. */
#define CP_KEYPATH_MAX_KEY 1024

/* Check an object key: 1..1024 bytes of valid UTF-8 without NUL. Returns CP_OK, CP_ETOOBIG
 * (too long) or CP_EINVAL (empty, NUL, invalid UTF-8), with err->msg set. */
int cp_keypath_check(cp_slice key, cp_err *err);

/* Append the canonical relative path of a checked key to out ("a/b/c", components joined by
 * '/'; never absolute, never containing "." or ".." components). */
void cp_keypath_encode(cp_slice key, cp_buf *out);

/* The component forms for one segment used in a given position. `last` selects %f vs %d.
 * `force_escape` asks for the %f/%d form even when the segment could be plain (the conflict
 * fallback). `first` marks the first segment of the key (reserved ".cp-" names). Appends the
 * components (joined by '/') to out. */
void cp_keypath_encode_segment(cp_slice seg, int first, int last, int force_escape, cp_buf *out);

/* Append the key a relative path decodes to. Returns CP_EINVAL when a component is not a
 * valid encoding (e.g. a stray '%'), CP_OK otherwise. */
int cp_keypath_decode(cp_slice path, cp_buf *out);

#endif
