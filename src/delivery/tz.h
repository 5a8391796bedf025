/* SPDX-License-Identifier: MIT */
/*
 * Time zones for Firehose's CustomTimeZone: UTC, or an IANA zone read from a TZif file under
 * /usr/share/zoneinfo (Debian package tzdata). The prefix evaluator and the object-key suffix
 * turn an instant into local calendar fields with it.
 *
 * Our own small TZif reader (RFC 8536: the v2+ 64-bit section, or v1 for old files) plus the
 * POSIX TZ footer rule for instants after the last listed transition. No setenv("TZ") or
 * localtime_r: those go through process-global state, and every delivery stream may use a
 * different zone on a different thread.
 *
 * Threads: a loaded cp_tz is immutable; any number of threads may use it at once.
 */
#ifndef CP_DELIVERY_TZ_H
#define CP_DELIVERY_TZ_H

#include <stdint.h>

#include "core/err.h"

typedef struct cp_tz cp_tz;

#define CP_TZ_DIR "/usr/share/zoneinfo"

/* Local calendar fields of one instant. */
typedef struct cp_tm {
    int year;         /* proleptic Gregorian, e.g. 2026 */
    int month;        /* 1..12 */
    int mday;         /* 1..31 */
    int hour;         /* 0..23 */
    int min;          /* 0..59 */
    int sec;          /* 0..59 */
    int ms;           /* 0..999 */
    int yday;         /* day of year, 1..366 */
    int wday;         /* ISO day of week: 1 = Monday .. 7 = Sunday */
    int32_t offset_s; /* UTC offset in effect, seconds east of Greenwich */
    int64_t days;     /* local days since 1970-01-01 (for week arithmetic) */
} cp_tm;

/* The UTC zone: static, never freed (cp_tz_free ignores it). */
const cp_tz *cp_tz_utc(void);

/* Load zone `name`: "" and "UTC" give cp_tz_utc(); anything else is read from `dir`/name (dir
 * NULL = CP_TZ_DIR). On CP_OK *out is the caller's, to free with cp_tz_free. Errors: CP_EINVAL
 * (a name that is not a zone path: empty component, "..", leading '/', odd characters),
 * CP_ENOTFOUND (no such zone file), CP_ECORRUPT (not a TZif file), -errno (read failure). */
int cp_tz_load(const char *name, const char *dir, cp_tz **out, cp_err *err);

/* Release a zone from cp_tz_load. NULL and cp_tz_utc() are ignored. */
void cp_tz_free(const cp_tz *tz);

/* The name the zone was loaded under ("UTC" for the built-in one). Valid while tz lives. */
const char *cp_tz_name(const cp_tz *tz);

/* UTC offset (seconds east) in effect at `epoch_s`. */
int32_t cp_tz_offset(const cp_tz *tz, int64_t epoch_s);

/* Local calendar fields of `instant_ms` (milliseconds since the epoch, may be negative). */
void cp_tz_localtime(const cp_tz *tz, int64_t instant_ms, cp_tm *out);

/* Calendar helpers (proleptic Gregorian, shared with the prefix evaluator). */
int64_t cp_days_from_civil(int64_t y, int m, int d);
void cp_civil_from_days(int64_t days, int *y, int *m, int *d);

#endif
