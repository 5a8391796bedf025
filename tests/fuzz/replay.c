/* SPDX-License-Identifier: MIT */
/*
 * gcc-buildable driver for one libFuzzer target (Fluent Bit's local_test.c, SQLite's
 * fuzzcheck): replay every file of tests/fuzz/corpus/<target>/ (or the files and directories
 * named on the command line), then run CP_FUZZ_ITERATIONS rounds of seeded mutations of the
 * corpus. The sanitizers (asan preset) and the targets' own CP_FUZZ_CHECKs are the oracle: the
 * driver never inspects results. On a crash the input in flight is written to
 * tests/fuzz/crashes/<target>-<fnv64 hex> so it can be replayed with `fuzz_<target> <file>`.
 *
 * Run from the source directory (ctest sets WORKING_DIRECTORY). Env: CP_FUZZ_SEED (default
 * fixed, printed), CP_FUZZ_ITERATIONS (default 20000 or the target's
 * cp_fuzz_default_iterations).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

#ifndef CP_FUZZ_TARGET
#error "CP_FUZZ_TARGET must name the target (CMake defines it)"
#endif

#define DEFAULT_ITERATIONS 20000UL
#define DEFAULT_SEED       0x6368616e67657069ULL /* "changepi" */
#define FUZZ_MAX_INPUT          (64u * 1024u)          /* mutants stop growing here */
#define MAX_FILES          4096

typedef struct input {
    unsigned char *p;
    size_t len;
} input;

static input g_corpus[MAX_FILES];
static size_t g_ncorpus;

/* The input being run, for the crash hooks (set before each call, cleared after). */
static const unsigned char *volatile g_cur;
static volatile size_t g_cur_len;

static uint64_t fnv64(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ULL;
    }
    return h;
}

/* Write the input in flight under tests/fuzz/crashes/. Only async-signal-safe calls: it runs
 * from the SIGABRT handler and from the sanitizer death callback. */
static void dump_current(void)
{
    const unsigned char *p = g_cur;
    size_t n = g_cur_len;
    if (!p) {
        return;
    }
    g_cur = NULL;
    static const char hexd[] = "0123456789abcdef";
    char path[256] = "tests/fuzz/crashes/" CP_FUZZ_TARGET "-";
    size_t at = strlen(path);
    uint64_t h = fnv64(p, n);
    for (int i = 15; i >= 0; i--) {
        path[at + (size_t) i] = hexd[h & 15];
        h >>= 4;
    }
    path[at + 16] = '\0';
    (void) mkdir("tests/fuzz/crashes", 0777);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(fd, p + off, n - off);
            if (w <= 0) {
                break;
            }
            off += (size_t) w;
        }
        close(fd);
        static const char msg[] = "fuzz: crashing input saved as ";
        (void) !write(2, msg, sizeof(msg) - 1);
        (void) !write(2, path, strlen(path));
        (void) !write(2, "\n", 1);
    }
}

static void on_abort(int sig)
{
    dump_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ASan/UBSan call this before exiting on a report (weak: absent without sanitizers). */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static void run_one(const unsigned char *p, size_t n)
{
    /* An exact-size heap copy, so reading one byte past the end is an ASan report. */
    unsigned char *copy = malloc(n ? n : 1);
    if (!copy) {
        abort();
    }
    if (n) {
        memcpy(copy, p, n);
    }
    g_cur = copy;
    g_cur_len = n;
    (void) LLVMFuzzerTestOneInput(copy, n);
    g_cur = NULL;
    free(copy);
}

static int read_file(const char *path, input *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    unsigned char *p = malloc(cap);
    size_t r;
    while (p && (r = fread(p + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            cap *= 2;
            p = realloc(p, cap);
        }
    }
    fclose(f);
    if (!p) {
        abort();
    }
    out->p = p;
    out->len = len;
    return 0;
}

static int add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (g_ncorpus == MAX_FILES) {
            return 0;
        }
        return read_file(path, &g_corpus[g_ncorpus]) == 0 ? (g_ncorpus++, 0) : -1;
    }
    struct dirent **ents;
    int n = scandir(path, &ents, NULL, alphasort); /* sorted: the seeded run is reproducible */
    if (n < 0) {
        fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (ents[i]->d_name[0] != '.' && rc == 0) {
            char sub[4096];
            snprintf(sub, sizeof(sub), "%s/%s", path, ents[i]->d_name);
            rc = add_path(sub);
        }
        free(ents[i]);
    }
    free(ents);
    return rc;
}

static uint64_t g_rng;

static uint64_t rnd(void) /* xorshift64* */
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545F4914F6CDD1DULL;
}

static size_t below(size_t n)
{
    return n ? (size_t) (rnd() % n) : 0;
}

/* Bytes the parsers under test treat specially, so random ones land on interesting paths. */
static const unsigned char special[] = {
    '"', '\\', '{', '}', '[', ']', ':', ',', '!', '%', '=', '&', '/', ' ', '#', '(', ')',
    '.', '-', '+', 'e', 'u', '0', '9', 0x00, 0x7f, 0x80, 0xc3, 0xe2, 0xed, 0xf0, 0xff,
};

static unsigned char rnd_byte(void)
{
    return (rnd() & 1) ? special[below(sizeof(special))] : (unsigned char) rnd();
}

/* One mutation of buf (len bytes, room for FUZZ_MAX_INPUT); returns the new length. */
static size_t mutate(unsigned char *buf, size_t len)
{
    switch (below(len ? 7 : 2)) {
    case 0: /* insert 1..8 bytes */
    case 1: {
        size_t k = 1 + below(8);
        if (len + k > FUZZ_MAX_INPUT) {
            return len;
        }
        size_t at = below(len + 1);
        memmove(buf + at + k, buf + at, len - at);
        for (size_t i = 0; i < k; i++) {
            buf[at + i] = rnd_byte();
        }
        return len + k;
    }
    case 2: /* flip one bit */
        buf[below(len)] ^= (unsigned char) (1u << below(8));
        return len;
    case 3: /* overwrite a byte */
        buf[below(len)] = rnd_byte();
        return len;
    case 4: { /* delete a range */
        size_t at = below(len);
        size_t k = 1 + below(len - at < 16 ? len - at : 16);
        memmove(buf + at, buf + at + k, len - at - k);
        return len - k;
    }
    case 5: { /* duplicate a chunk in place (repeats, deeper nesting) */
        size_t at = below(len), k = 1 + below(len - at);
        if (len + k > FUZZ_MAX_INPUT) {
            return len;
        }
        size_t to = below(len + 1);
        unsigned char tmp[FUZZ_MAX_INPUT];
        memcpy(tmp, buf + at, k);
        memmove(buf + to + k, buf + to, len - to);
        memcpy(buf + to, tmp, k);
        return len + k;
    }
    default: { /* splice: keep a prefix, continue with the tail of another corpus file */
        const input *o = &g_corpus[below(g_ncorpus)];
        size_t cut = below(len + 1), from = below(o->len + 1);
        size_t k = o->len - from;
        if (cut + k > FUZZ_MAX_INPUT) {
            k = FUZZ_MAX_INPUT - cut;
        }
        memcpy(buf + cut, o->p + from, k);
        return cut + k;
    }
    }
}

static unsigned long env_ulong(const char *name, unsigned long dflt, int *set)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        return dflt;
    }
    char *end;
    unsigned long x = strtoul(v, &end, 0);
    if (*end) {
        fprintf(stderr, "fuzz: %s=%s is not a number\n", name, v);
        exit(2);
    }
    if (set) {
        *set = 1;
    }
    return x;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    signal(SIGABRT, on_abort);
    if (__sanitizer_set_death_callback) {
        __sanitizer_set_death_callback(dump_current);
    }
    int explicit_files = argc > 1;
    if (explicit_files) {
        for (int i = 1; i < argc; i++) {
            if (add_path(argv[i]) != 0) {
                return 2;
            }
        }
    } else if (add_path("tests/fuzz/corpus/" CP_FUZZ_TARGET) != 0) {
        fprintf(stderr, "fuzz: run from the source directory\n");
        return 2;
    }
    if (g_ncorpus == 0) {
        fprintf(stderr, "fuzz: empty corpus\n");
        return 2;
    }

    double t0 = now_s();
    unsigned long passed = 0;
    for (size_t i = 0; i < g_ncorpus; i++) {
        run_one(g_corpus[i].p, g_corpus[i].len);
        passed++;
    }

    /* Files named on the command line are a replay of known inputs: no mutation by default. */
    unsigned long dflt = explicit_files ? 0
                         : &cp_fuzz_default_iterations ? cp_fuzz_default_iterations
                                                       : DEFAULT_ITERATIONS;
    unsigned long iters = env_ulong("CP_FUZZ_ITERATIONS", dflt, NULL);
    uint64_t seed = env_ulong("CP_FUZZ_SEED", DEFAULT_SEED, NULL);
    printf("fuzz_%s: %zu corpus files, %lu mutation rounds, seed 0x%llx\n", CP_FUZZ_TARGET,
           g_ncorpus, iters, (unsigned long long) seed);
    fflush(stdout);
    g_rng = seed ? seed : 1;

    static unsigned char buf[FUZZ_MAX_INPUT];
    for (unsigned long it = 0; it < iters; it++) {
        const input *base = &g_corpus[below(g_ncorpus)];
        size_t len = base->len < FUZZ_MAX_INPUT ? base->len : FUZZ_MAX_INPUT;
        memcpy(buf, base->p, len);
        for (size_t m = 1 + below(4); m > 0; m--) {
            len = mutate(buf, len);
        }
        run_one(buf, len);
        passed++;
    }
    for (size_t i = 0; i < g_ncorpus; i++) {
        free(g_corpus[i].p);
    }
    printf("fuzz_%s: %.1f s\n", CP_FUZZ_TARGET, now_s() - t0);
    printf("%lu passed, 0 failed\n", passed);
    return 0;
}
