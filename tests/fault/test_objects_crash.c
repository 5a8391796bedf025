/* SPDX-License-Identifier: MIT */
/*
 * Crash test of the bucket store's write protocol (intent, rename, commit). A child process
 * puts and deletes objects from several threads, reporting on a pipe when each operation
 * starts and when it is acknowledged; the parent SIGKILLs it after a random number of
 * acknowledgements, reopens the store (recovery) and checks for every key that:
 *   - its state is the last acknowledged one, or the result of the operation that was in
 *     flight on it when the child died (never anything else, never a torn object);
 *   - a present object's bytes match its ETag and its file sits at its key's path;
 *   - nothing is left in the staging directory.
 * Repeated on the same directory, so recovery also runs on recovered state.
 */
#include "../unit/cpt.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "core/hash.h"
#include "objects/bucket.h"

enum { THREADS = 4, KEYS_PER_THREAD = 12, ROUNDS = 40 };
#define NKEYS (THREADS * KEYS_PER_THREAD)

/* One message on the pipe; writes of this size are atomic (< PIPE_BUF). */
typedef struct msg {
    int key;     /* 0..NKEYS-1 */
    int acked;   /* 0: started, 1: acknowledged */
    int version; /* > 0: a put of this version; 0: a delete */
} msg;

static void key_name(int k, char *out, size_t n)
{
    /* Shared directories, and some names that need escaping. */
    switch (k % 4) {
    case 0:
        snprintf(out, n, "Livestreams/LivestreamID=%d/obj.json", k);
        break;
    case 1:
        snprintf(out, n, "flat-%d", k);
        break;
    case 2:
        snprintf(out, n, "deep/a/b/c/%d", k);
        break;
    default:
        snprintf(out, n, "../odd/%d/", k);
    }
}

static void body_of(int k, int version, cp_buf *out)
{
    cp_buf_reset(out);
    cp_buf_printf(out, "key %d version %d ", k, version);
    /* Sizes vary so a torn write would show as a wrong length or digest. */
    for (int i = 0; i < (version * 37 + k) % 3000; i++) {
        cp_buf_putc(out, (char) ('a' + (i + version) % 26));
    }
}

typedef struct child_arg {
    cp_bucket_store *s;
    int thread, fd;
    unsigned seed;
    int start_version;
} child_arg;

static void send_msg(int fd, msg m)
{
    if (write(fd, &m, sizeof(m)) != (ssize_t) sizeof(m)) {
        _exit(3);
    }
}

static void *child_thread(void *p)
{
    child_arg *a = p;
    cp_buf body = CP_BUF_INIT;
    int version = a->start_version;
    for (;;) {
        int k = a->thread * KEYS_PER_THREAD + (int) (rand_r(&a->seed) % KEYS_PER_THREAD);
        char name[128];
        key_name(k, name, sizeof(name));
        cp_err err = {0};
        int del = rand_r(&a->seed) % 5 == 0;
        msg m = {k, 0, del ? 0 : ++version};
        send_msg(a->fd, m);
        int rc;
        if (del) {
            rc = cp_bucket_delete_object(a->s, "crash", cp_slice_str(name), &err);
            rc = rc == CP_ENOTFOUND ? CP_OK : rc;
        } else {
            body_of(k, m.version, &body);
            rc = cp_bucket_put(a->s, "crash", cp_slice_str(name), cp_buf_slice(&body), NULL, NULL,
                               &err);
        }
        if (rc != CP_OK) {
            fprintf(stderr, "child: op on %s failed: %s\n", name, err.msg);
            _exit(4);
        }
        m.acked = 1;
        send_msg(a->fd, m);
    }
    return NULL;
}

static void run_child(const char *dir, int fd, int round)
{
    cp_bucket_cfg cfg = {dir, NULL, 0, 0};
    cp_bucket_store *s;
    cp_err err = {0};
    if (cp_bucket_store_open(&cfg, &s, &err) != CP_OK) {
        fprintf(stderr, "child: open: %s\n", err.msg);
        _exit(2);
    }
    pthread_t th[THREADS];
    child_arg args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        /* Versions are unique per key across rounds: each round starts above the last. */
        args[t] = (child_arg){s, t, fd, (unsigned) (round * 7919 + t), (round + 1) * 1000000};
        pthread_create(&th[t], NULL, child_thread, &args[t]);
    }
    for (;;) {
        pause(); /* until SIGKILL */
    }
}

/* Per key: the acknowledged state and the possible effect of an unacknowledged operation. */
typedef struct key_state {
    int acked;    /* version present, 0 = absent */
    int inflight; /* -1: none; else the started op's result (version, 0 = absent) */
} key_state;

static int staging_entries(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/buckets/crash/.cp-tmp", dir);
    DIR *d = opendir(p);
    if (!d) {
        return -1;
    }
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        n += de->d_name[0] != '.' || (de->d_name[1] && strcmp(de->d_name, "..") != 0);
    }
    closedir(d);
    return n;
}

static void check_store(const char *dir, key_state *ks)
{
    cp_bucket_cfg cfg = {dir, NULL, 0, 0};
    cp_bucket_store *s;
    cp_err err = {0};
    if (cp_bucket_store_open(&cfg, &s, &err) != CP_OK) {
        CPT_FAIL_AT("reopen: %s", err.msg);
    }
    CPT_EQ_INT(staging_entries(dir), 0);
    cp_buf got = CP_BUF_INIT, want = CP_BUF_INIT;
    for (int k = 0; k < NKEYS; k++) {
        char name[128];
        key_name(k, name, sizeof(name));
        cp_bucket_obj meta = CP_BUCKET_OBJ_INIT;
        cp_buf_reset(&got);
        int rc = cp_bucket_read(s, "crash", cp_slice_str(name), &got, &meta, &err);
        int present = 0;
        if (rc == CP_OK) {
            int v = 0;
            if (sscanf(got.p, "key %*d version %d ", &v) != 1) {
                CPT_FAIL_AT("key %s: unreadable content", name);
            }
            body_of(k, v, &want);
            CPT_EQ_MEM(got.p, got.len, want.p, want.len);
            unsigned char md[16];
            char hex[33];
            cp_md5(got.p, got.len, md);
            cp_hex(md, 16, hex);
            CPT_EQ_STR(meta.etag, hex);
            present = v;
        } else {
            CPT_EQ_INT(rc, CP_ENOTFOUND);
        }
        if (present != ks[k].acked && present != ks[k].inflight) {
            CPT_FAIL_AT("key %s: found version %d, acked %d, in flight %d", name, present,
                        ks[k].acked, ks[k].inflight);
        }
        ks[k].acked = present;
        ks[k].inflight = -1;
        cp_bucket_obj_free(&meta);
    }
    cp_buf_free(&got);
    cp_buf_free(&want);
    cp_bucket_store_close(s);
}

static void crash_rounds(void)
{
    const char *dir = cpt_tmpdir();
    {
        cp_bucket_cfg cfg = {dir, NULL, 0, 0};
        cp_bucket_store *s;
        CPT_EQ_INT(cp_bucket_store_open(&cfg, &s, NULL), CP_OK);
        CPT_EQ_INT(cp_bucket_create(s, "crash", NULL, NULL), CP_OK);
        cp_bucket_store_close(s);
    }
    key_state ks[NKEYS];
    for (int k = 0; k < NKEYS; k++) {
        ks[k] = (key_state){0, -1};
    }
    unsigned seed = (unsigned) time(NULL);
    printf("  seed %u\n", seed);
    int total_acks = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        CPT_EQ_INT(pipe(fds), 0);
        pid_t pid = fork();
        CPT_CHECK(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            run_child(dir, fds[1], round);
        }
        close(fds[1]);
        int target = 1 + (int) (rand_r(&seed) % 120), acks = 0;
        msg m;
        while (acks < target && read(fds[0], &m, sizeof(m)) == (ssize_t) sizeof(m)) {
            if (m.acked) {
                ks[m.key].acked = m.version;
                ks[m.key].inflight = -1;
                acks++;
            } else {
                ks[m.key].inflight = m.version;
            }
        }
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        if (!WIFSIGNALED(st)) {
            CPT_FAIL_AT("child exited on its own (status %d) in round %d", WEXITSTATUS(st), round);
        }
        /* Messages written before the kill are still in the pipe. */
        while (read(fds[0], &m, sizeof(m)) == (ssize_t) sizeof(m)) {
            if (m.acked) {
                ks[m.key].acked = m.version;
                ks[m.key].inflight = -1;
                acks++;
            } else {
                ks[m.key].inflight = m.version;
            }
        }
        close(fds[0]);
        total_acks += acks;
        check_store(dir, ks);
    }
    printf("  %d rounds, %d acknowledged operations checked\n", ROUNDS, total_acks);
}

CPT_LIST = {
    {"crash_rounds", crash_rounds},
    {0},
};
