/* SPDX-License-Identifier: MIT */
/*
 * Logging for the deciding layers (server, delivery engine, CLI). Low layers fill cp_err and
 * never log. Lines go to stderr: "<ISO time> <LEVEL> [<component>] message".
 */
#ifndef CP_LOG_H
#define CP_LOG_H

#include "core/err.h"

typedef enum { CP_LOG_LEVEL_ERROR, CP_LOG_LEVEL_WARN, CP_LOG_LEVEL_INFO, CP_LOG_LEVEL_DEBUG } cp_log_level;

void cp_log_set_level(cp_log_level level);
void cp_log_write(cp_log_level level, const char *component, const char *fmt, ...) CP_PRINTF(3, 4);

#define CP_LOG_ERROR(c, ...) cp_log_write(CP_LOG_LEVEL_ERROR, c, __VA_ARGS__)
#define CP_LOG_WARN(c, ...)  cp_log_write(CP_LOG_LEVEL_WARN, c, __VA_ARGS__)
#define CP_LOG_INFO(c, ...)  cp_log_write(CP_LOG_LEVEL_INFO, c, __VA_ARGS__)
#define CP_LOG_DEBUG(c, ...) cp_log_write(CP_LOG_LEVEL_DEBUG, c, __VA_ARGS__)

/* Always-on assertion for invariants whose violation could lose or duplicate data. */
#define CP_ASSERT(x)                                                                               \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            cp_log_assert_fail(#x, __FILE__, __LINE__);                                            \
        }                                                                                          \
    } while (0)
_Noreturn void cp_log_assert_fail(const char *expr, const char *file, int line);

#endif
