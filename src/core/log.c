/* SPDX-License-Identifier: MIT */
/* Logging to stderr with a level filter. */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Atomic int current_level = CP_LOG_LEVEL_INFO;
static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void cp_log_set_level(cp_log_level level)
{
    atomic_store(&current_level, (int) level);
}

void cp_log_write(cp_log_level level, const char *component, const char *fmt, ...)
{
    if ((int) level > atomic_load(&current_level)) {
        return;
    }
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], component);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t) n < sizeof(line)) {
        vsnprintf(line + n, sizeof(line) - (size_t) n, fmt, ap);
    }
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}

void cp_log_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "changepipe: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
