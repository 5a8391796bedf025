/* SPDX-License-Identifier: MIT */
/* Wall and monotonic clocks. */
#include "core/clock.h"

#include <stdatomic.h>
#include <time.h>

#ifdef CP_TESTING
static _Atomic int64_t pinned_ms;
void cp_clock_pin_ms(int64_t ms)
{
    atomic_store(&pinned_ms, ms);
}
#endif

int64_t cp_clock_now_ms(void)
{
#ifdef CP_TESTING
    int64_t p = atomic_load(&pinned_ms);
    if (p) {
        return p;
    }
#endif
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cp_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}
