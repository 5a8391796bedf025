/* SPDX-License-Identifier: MIT */
/*
 * seglog: an append-only, checksummed, segmented log with group commit. It is the write-ahead
 * change log of the item store (src/cdc) and the storage of every embedded stream shard
 * (src/stream/backends/embedded.c).
 *
 * A record is addressed by its *position*: the logical byte offset of its frame from the start
 * of the log (strictly increasing, never reused, survives trimming). Frame on disk:
 *   u32 payload_len | u32 crc32(ts, payload) | i64 timestamp_ms | payload
 * Segments are files "<first position, 20 digits>.log" in the log's directory; a segment is
 * closed when it reaches opts.segment_bytes. On open, a torn or corrupt tail of the last segment
 * (a crash mid-append) is truncated; corruption anywhere else is CP_ECORRUPT.
 *
 * Threads: one writer at a time (append/sync/trim serialised by the caller or by the log's own
 * lock, see each function); any number of readers concurrently with the writer. Readers only
 * ever see records up to the durable end (after cp_seglog_sync returned).
 */
#ifndef CP_SEGLOG_H
#define CP_SEGLOG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct cp_seglog cp_seglog;

typedef struct cp_seglog_opts {
    size_t segment_bytes; /* roll to a new segment after this many bytes (default 64 MiB) */
    int no_fsync;         /* 1: skip fsync (tests and benchmarks only; never the default) */
} cp_seglog_opts;

/* Open (creating the directory if needed) and recover the log in `dir`. opts may be NULL for
 * defaults. On CP_OK *out is a new log; close it with cp_seglog_close. */
int cp_seglog_open(const char *dir, const cp_seglog_opts *opts, cp_seglog **out, cp_err *err);
/* Close the log; pending unsynced appends are discarded. NULL is a no-op. */
void cp_seglog_close(cp_seglog *log);

/* Buffer n records with timestamp ts_ms (borrowed payloads, copied). *first_pos (optional)
 * receives the position of the first; positions of the rest follow by frame size
 * (cp_seglog_frame_size). Not durable or visible until cp_seglog_sync.
 * CP_ETOOBIG if a payload exceeds 64 MiB (nothing is appended then).
 * ts_ms is clamped up to the last appended timestamp, so timestamps never decrease. The n
 * records are contiguous: the log's own lock is held for the whole call, so it is in fact safe
 * to call from several threads (positions are assigned in lock order); see cp_seglog_sync_to.
 * CP_EIO after an earlier I/O failure. */
int cp_seglog_append(cp_seglog *log, const cp_slice *payloads, size_t n, int64_t ts_ms,
                     uint64_t *first_pos, cp_err *err);
/* Write and fsync everything appended so far, then publish the new durable end to readers.
 * Any thread (internally serialised). On I/O error the log is failed (sticky CP_EIO): nothing
 * past the last good sync is visible, and the process should reopen. */
int cp_seglog_sync(cp_seglog *log, cp_err *err);
/* Group commit: return once every record before position `end` (a value of first_pos plus the
 * frame sizes of an earlier cp_seglog_append) is durable and published. Any thread. Concurrent
 * callers share fsyncs: one leader writes and syncs everything appended so far while the others
 * wait on a condition variable and usually find their records covered when it finishes.
 * CP_EINVAL if `end` is beyond everything appended; CP_EIO (sticky) after an I/O failure.
 * cp_seglog_sync is cp_seglog_sync_to(everything appended so far). */
int cp_seglog_sync_to(cp_seglog *log, uint64_t end, cp_err *err);

/* Bytes a record with this payload length takes (header + payload). */
static inline uint64_t cp_seglog_frame_size(size_t payload_len)
{
    return 16 + (uint64_t) payload_len;
}

/* First retained position (moves forward on trim) and durable end (position after the last
 * durable record). Thread-safe. */
uint64_t cp_seglog_start(cp_seglog *log);
uint64_t cp_seglog_end(cp_seglog *log);
/* Timestamp of the last durable record, or 0 when empty. Thread-safe. */
int64_t cp_seglog_last_ts(cp_seglog *log);

/* Delete whole segments whose records are all older than before_ms, never the segment being
 * written. Thread-safe with respect to readers (they get CP_EEXPIRED for trimmed positions). */
int cp_seglog_trim(cp_seglog *log, int64_t before_ms, cp_err *err);
/* Delete whole segments that end at or before `pos`. Same rules as cp_seglog_trim. */
int cp_seglog_trim_to(cp_seglog *log, uint64_t pos, cp_err *err);

/* A reader: owns a small buffer; one thread at a time. Close every reader before closing the
 * log. Readers share one cached fd per segment (pread), opened on first use. */
typedef struct cp_seglog_reader cp_seglog_reader;

/* New reader positioned at `pos`, which must be a record boundary previously returned by this
 * log (or cp_seglog_start/end). Close with cp_seglog_reader_close. CP_EEXPIRED (and no reader)
 * when pos was already trimmed. A position that is not a boundary makes reads fail with
 * CP_ECORRUPT (bounds or checksum, the latter with a 2^-32 chance of a false match); reads never
 * return bytes from beyond the durable end. */
int cp_seglog_reader_open(cp_seglog *log, uint64_t pos, cp_seglog_reader **out, cp_err *err);
void cp_seglog_reader_close(cp_seglog_reader *r);
/* Next durable record: *payload is valid until the next call on this reader. Returns CP_OK,
 * CP_ENOTFOUND at the durable end (call again later), CP_EEXPIRED when the reader's position was
 * trimmed away, CP_ECORRUPT/-errno on bad data. *pos is the record's position, *ts_ms its
 * timestamp. */
int cp_seglog_read(cp_seglog_reader *r, cp_slice *payload, uint64_t *pos, int64_t *ts_ms,
                   cp_err *err);
/* Position of the reader (the next record it will return). */
uint64_t cp_seglog_reader_pos(const cp_seglog_reader *r);

/* Position of the first record with timestamp >= ts_ms (the durable end if none). Timestamps
 * are non-decreasing per log because appenders stamp with a clamped clock. */
int cp_seglog_seek_time(cp_seglog *log, int64_t ts_ms, uint64_t *pos, cp_err *err);
/* Position of the last durable record (for "what did I write last" recovery); CP_ENOTFOUND when
 * the log holds none. */
int cp_seglog_last(cp_seglog *log, uint64_t *pos, cp_err *err);

#endif
