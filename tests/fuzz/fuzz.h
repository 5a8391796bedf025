/* SPDX-License-Identifier: MIT */
/*
 * Shared declarations of the fuzz targets (tests/fuzz/<component>_<target>_fuzz.c). Each target
 * defines only the libFuzzer entry point, so the same file builds with clang -fsanitize=fuzzer
 * and, linked with replay.c, with gcc for the fuzz-regress ctest label.
 */
#ifndef CP_FUZZ_H
#define CP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The input is borrowed for the call; targets return 0 and abort on a broken invariant. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Optional, per target: mutation rounds when CP_FUZZ_ITERATIONS is unset (replay.c's default
 * otherwise). Weak so libFuzzer builds, which never read it, need not define it. */
extern const unsigned long cp_fuzz_default_iterations __attribute__((weak));

/* A target's own invariant: abort (and so dump the input, see replay.c) instead of returning,
 * because the driver never looks at results. */
#define CP_FUZZ_CHECK(x)                                                                           \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #x, __FILE__, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
