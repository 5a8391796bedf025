/* SPDX-License-Identifier: MIT */
/*
 * cpt: changepipe's unit-test harness. Each test runs in a forked child with a timeout
 * (--no-fork runs in-process for gdb); assertions print both operands. A test file defines
 * CPT_LIST = { {"name", fn}, ..., {0} }; `test_x [name...]` runs all or the named tests. The run
 * ends with "N passed, N failed".
 */
#ifndef CPT_H
#define CPT_H

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct cpt_case {
    const char *name;
    void (*fn)(void);
} cpt_case;

extern const cpt_case cpt_cases[];
#define CPT_LIST const cpt_case cpt_cases[]

static int cpt_failures;

#define CPT_FAIL_AT(...)                                                                           \
    do {                                                                                           \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                          \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        cpt_failures++;                                                                            \
        exit(1);                                                                                   \
    } while (0)

#define CPT_CHECK(x)                                                                               \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            CPT_FAIL_AT("check failed: %s", #x);                                                   \
        }                                                                                          \
    } while (0)

#define CPT_EQ_INT(a, b)                                                                           \
    do {                                                                                           \
        long long cpt_a = (long long) (a), cpt_b = (long long) (b);                                \
        if (cpt_a != cpt_b) {                                                                      \
            CPT_FAIL_AT("%s == %s: %lld != %lld", #a, #b, cpt_a, cpt_b);                           \
        }                                                                                          \
    } while (0)

#define CPT_EQ_STR(a, b)                                                                           \
    do {                                                                                           \
        const char *cpt_a = (a), *cpt_b = (b);                                                     \
        if (!cpt_a || !cpt_b || strcmp(cpt_a, cpt_b) != 0) {                                       \
            CPT_FAIL_AT("%s == %s:\n    \"%s\"\n != \"%s\"", #a, #b, cpt_a ? cpt_a : "(null)",     \
                        cpt_b ? cpt_b : "(null)");                                                 \
        }                                                                                          \
    } while (0)

#define CPT_EQ_MEM(a, alen, b, blen)                                                               \
    do {                                                                                           \
        size_t cpt_al = (alen), cpt_bl = (blen);                                                   \
        if (cpt_al != cpt_bl || memcmp((a), (b), cpt_al) != 0) {                                   \
            CPT_FAIL_AT("%s == %s: \"%.*s\" (%zu) != \"%.*s\" (%zu)", #a, #b, (int) cpt_al,        \
                        (const char *) (a), cpt_al, (int) cpt_bl, (const char *) (b), cpt_bl);     \
        }                                                                                          \
    } while (0)

/* A fresh temporary directory for the current test; removed by the runner afterwards. */
static char cpt_tmpdir_path[256];
static inline const char *cpt_tmpdir(void)
{
    if (!cpt_tmpdir_path[0]) {
        snprintf(cpt_tmpdir_path, sizeof(cpt_tmpdir_path), "/tmp/cpt-XXXXXX");
        if (!mkdtemp(cpt_tmpdir_path)) {
            CPT_FAIL_AT("mkdtemp failed");
        }
    }
    return cpt_tmpdir_path;
}

static void cpt_rm_tmpdir(void)
{
    if (cpt_tmpdir_path[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cpt_tmpdir_path);
        if (system(cmd) != 0) {
            fprintf(stderr, "  could not remove %s\n", cpt_tmpdir_path);
        }
        cpt_tmpdir_path[0] = 0;
    }
}

static int cpt_run_one(const cpt_case *c, int fork_tests, int timeout_s)
{
    if (!fork_tests) {
        c->fn();
        cpt_rm_tmpdir();
        return 0;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        alarm((unsigned) timeout_s);
        c->fn();
        cpt_rm_tmpdir();
        exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "  killed by signal %d%s\n", WTERMSIG(st),
                WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
        return 1;
    }
    return WEXITSTATUS(st) != 0;
}

int main(int argc, char **argv)
{
    int fork_tests = 1, passed = 0, failed = 0;
    int timeout_s = getenv("CPT_TIMEOUT") ? atoi(getenv("CPT_TIMEOUT")) : 120;
    int named = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-fork") == 0) {
            fork_tests = 0;
        } else {
            named = 1;
        }
    }
    for (const cpt_case *c = cpt_cases; c->name; c++) {
        if (named) {
            int want = 0;
            for (int i = 1; i < argc; i++) {
                want |= strcmp(argv[i], c->name) == 0;
            }
            if (!want) {
                continue;
            }
        }
        int bad = cpt_run_one(c, fork_tests, timeout_s);
        printf("%s %s\n", bad ? "FAIL" : "ok  ", c->name);
        bad ? failed++ : passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    (void) cpt_failures;
    return failed != 0;
}

#endif
