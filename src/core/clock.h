/* SPDX-License-Identifier: MIT */
/* Wall and monotonic clocks. Tests may pin the wall clock (CP_TESTING only). */
#ifndef CP_CLOCK_H
#define CP_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (UTC). */
int64_t cp_clock_now_ms(void);
/* Monotonic nanoseconds, for durations and deadlines. */
int64_t cp_clock_mono_ns(void);

#ifdef CP_TESTING
/* Pin the wall clock to `ms` (0 releases it). Test seam only. */
void cp_clock_pin_ms(int64_t ms);
#endif

#endif
