/* SPDX-License-Identifier: MIT */
/* seglog: round trip, recovery of torn tails, rolling, trim, seek by time, concurrency. */
#include "cpt.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "core/seglog.h"

#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        cp_err e_ = {0};                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != CP_OK) {                                                                        \
            CPT_FAIL_AT("%s -> %s (%s)", #expr, cp_err_name(rc_), e_.msg);                         \
        }                                                                                          \
    } while (0)

/* Deterministic payload i: "rec-<i>" followed by i % 50 filler bytes. */
static size_t payload_of(int i, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "rec-%d:", i);
    size_t len = (size_t) n + (size_t) (i % 50);
    for (size_t k = (size_t) n; k < len && k < cap; k++) {
        buf[k] = (char) ('a' + (i + (int) k) % 26);
    }
    return len;
}

static uint64_t append_one(cp_seglog *log, int i, int64_t ts)
{
    char buf[128];
    cp_slice s = cp_slice_of(buf, payload_of(i, buf, sizeof(buf)));
    uint64_t pos = 0;
    cp_err err = {0};
    int rc = cp_seglog_append(log, &s, 1, ts, &pos, &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("append %d: %s %s", i, cp_err_name(rc), err.msg);
    }
    return pos;
}

static void sync_log(cp_seglog *log)
{
    cp_err err = {0};
    int rc = cp_seglog_sync(log, &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("sync: %s %s", cp_err_name(rc), err.msg);
    }
}

/* Read everything from `from` and check records first..first+n-1 come back in order. */
static void expect_records(cp_seglog *log, uint64_t from, int first, int n)
{
    cp_seglog_reader *r;
    cp_err err = {0};
    CPT_EQ_INT(cp_seglog_reader_open(log, from, &r, &err), CP_OK);
    for (int i = first; i < first + n; i++) {
        cp_slice p;
        uint64_t pos;
        int64_t ts;
        int rc = cp_seglog_read(r, &p, &pos, &ts, &err);
        if (rc != CP_OK) {
            CPT_FAIL_AT("read record %d: %s %s", i, cp_err_name(rc), err.msg);
        }
        char buf[128];
        size_t len = payload_of(i, buf, sizeof(buf));
        CPT_EQ_MEM(p.p, p.len, buf, len);
    }
    cp_slice p;
    CPT_EQ_INT(cp_seglog_read(r, &p, NULL, NULL, &err), CP_ENOTFOUND);
    cp_seglog_reader_close(r);
}

static const char *sub(const char *name)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", cpt_tmpdir(), name);
    return path;
}

static int count_segments(const char *dir, char *last_name, size_t cap)
{
    DIR *d = opendir(dir);
    CPT_CHECK(d != NULL);
    int n = 0;
    struct dirent *de;
    if (last_name) {
        last_name[0] = 0;
    }
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".log") == 0) {
            n++;
            if (last_name && strcmp(de->d_name, last_name) > 0) {
                snprintf(last_name, cap, "%s", de->d_name);
            }
        }
    }
    closedir(d);
    return n;
}

static void round_trip(void)
{
    const char *dir = sub("log");
    cp_seglog *log;
    cp_err err = {0};
    CHECK_OK(cp_seglog_open(dir, NULL, &log, &e_));
    CPT_EQ_INT(cp_seglog_end(log), 0);
    uint64_t last;
    CPT_EQ_INT(cp_seglog_last(log, &last, &err), CP_ENOTFOUND);

    uint64_t expect = 0, lastpos = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t pos = append_one(log, i, 1000 + i);
        CPT_EQ_INT(pos, expect);
        char buf[128];
        lastpos = pos;
        expect += cp_seglog_frame_size(payload_of(i, buf, sizeof(buf)));
    }
    /* Appended but unsynced records are invisible. */
    CPT_EQ_INT(cp_seglog_end(log), 0);
    sync_log(log);
    CPT_EQ_INT(cp_seglog_end(log), expect);
    CPT_EQ_INT(cp_seglog_start(log), 0);
    CPT_EQ_INT(cp_seglog_last_ts(log), 1199);
    CPT_EQ_INT(cp_seglog_last(log, &last, &err), CP_OK);
    CPT_EQ_INT(last, lastpos);
    expect_records(log, 0, 0, 200);
    expect_records(log, lastpos, 199, 1);

    /* A batch append is contiguous and an empty payload is a valid record. */
    cp_slice batch[3] = {CP_SLICE("x"), cp_slice_of(NULL, 0), CP_SLICE("zz")};
    uint64_t first;
    CHECK_OK(cp_seglog_append(log, batch, 3, 5000, &first, &e_));
    CPT_EQ_INT(first, expect);
    sync_log(log);
    CPT_EQ_INT(cp_seglog_end(log), expect + 16 * 3 + 3);
    cp_seglog_reader *r;
    CHECK_OK(cp_seglog_reader_open(log, first, &r, &e_));
    cp_slice p;
    uint64_t pos;
    CHECK_OK(cp_seglog_read(r, &p, &pos, NULL, &e_));
    CPT_EQ_MEM(p.p, p.len, "x", 1);
    CHECK_OK(cp_seglog_read(r, &p, &pos, NULL, &e_));
    CPT_EQ_INT(p.len, 0);
    CPT_EQ_INT(pos, first + 17);
    CHECK_OK(cp_seglog_read(r, &p, &pos, NULL, &e_));
    CPT_EQ_MEM(p.p, p.len, "zz", 2);
    CPT_EQ_INT(cp_seglog_reader_pos(r), cp_seglog_end(log));
    cp_seglog_reader_close(r);
    cp_seglog_close(log);
}

static void timestamps_are_clamped(void)
{
    cp_seglog *log;
    CHECK_OK(cp_seglog_open(sub("log"), NULL, &log, &e_));
    append_one(log, 0, 500);
    append_one(log, 1, 300); /* a clock stepping back */
    append_one(log, 2, 700);
    sync_log(log);
    cp_seglog_reader *r;
    CHECK_OK(cp_seglog_reader_open(log, 0, &r, &e_));
    int64_t want[] = {500, 500, 700};
    for (int i = 0; i < 3; i++) {
        cp_slice p;
        int64_t ts;
        CHECK_OK(cp_seglog_read(r, &p, NULL, &ts, &e_));
        CPT_EQ_INT(ts, want[i]);
    }
    cp_seglog_reader_close(r);
    cp_seglog_close(log);
}

static void reopen_keeps_records(void)
{
    const char *dir = sub("log");
    cp_seglog *log;
    CHECK_OK(cp_seglog_open(dir, NULL, &log, &e_));
    for (int i = 0; i < 50; i++) {
        append_one(log, i, 100 + i);
    }
    sync_log(log);
    uint64_t end = cp_seglog_end(log);
    append_one(log, 999, 900); /* never synced: discarded on close */
    cp_seglog_close(log);

    CHECK_OK(cp_seglog_open(dir, NULL, &log, &e_));
    CPT_EQ_INT(cp_seglog_end(log), end);
    CPT_EQ_INT(cp_seglog_last_ts(log), 149);
    uint64_t pos = append_one(log, 50, 150);
    CPT_EQ_INT(pos, end);
    sync_log(log);
    expect_records(log, 0, 0, 51);
    cp_seglog_close(log);
}

/* Damage the last record on disk with `how`, reopen, and check recovery. */
static void torn_tail_case(int how)
{
    const char *dir = sub("log");
    cp_seglog *log;
    CHECK_OK(cp_seglog_open(dir, NULL, &log, &e_));
    uint64_t last = 0;
    for (int i = 0; i < 10; i++) {
        last = append_one(log, i, 10 + i);
    }
    sync_log(log);
    uint64_t end = cp_seglog_end(log);
    cp_seglog_close(log);

    char path[600];
    snprintf(path, sizeof(path), "%s/%020d.log", dir, 0);
    int fd = open(path, O_RDWR);
    CPT_CHECK(fd >= 0);
    if (how == 0) {
        /* crash mid-record: half of the last frame reached the disk */
        CPT_EQ_INT(ftruncate(fd, (off_t) (last + (end - last) / 2)), 0);
    } else if (how == 1) {
        /* a flipped byte in the last record's payload */
        char c;
        CPT_EQ_INT(pread(fd, &c, 1, (off_t) end - 1), 1);
        c ^= 0x40;
        CPT_EQ_INT(pwrite(fd, &c, 1, (off_t) end - 1), 1);
    } else {
        /* garbage after the last good record (a torn header) */
        CPT_EQ_INT(pwrite(fd, "\x05\x00\x00", 3, (off_t) end), 3);
    }
    close(fd);

    CHECK_OK(cp_seglog_open(dir, NULL, &log, &e_));
    uint64_t want_end = how == 2 ? end : last;
    CPT_EQ_INT(cp_seglog_end(log), want_end);
    struct stat st;
    CPT_EQ_INT(stat(path, &st), 0);
    CPT_EQ_INT(st.st_size, want_end); /* the tail was cut off on disk too */
    int kept = how == 2 ? 10 : 9;
    expect_records(log, 0, 0, kept);
    uint64_t lp;
    cp_err err = {0};
    CPT_EQ_INT(cp_seglog_last(log, &lp, &err), CP_OK);
    char b8[128];
    CPT_EQ_INT(lp, how == 2 ? last : last - cp_seglog_frame_size(payload_of(8, b8, sizeof(b8))));

    /* Appends continue exactly where the good data ends, and survive another reopen. */
    uint64_t pos = append_one(log, kept, 100);
    CPT_EQ_INT(pos, want_end);
    append_one(log, kept + 1, 101);
    sync_log(log);
    cp_seglog_close(log);
    CHECK_OK(cp_seglog_open(dir, NULL, &log, &e_));
    expect_records(log, 0, 0, kept + 2);
    cp_seglog_close(log);
}

static void torn_tail_truncated(void)
{
    torn_tail_case(0);
}

static void torn_tail_flipped_byte(void)
{
    torn_tail_case(1);
}

static void torn_tail_partial_header(void)
{
    torn_tail_case(2);
}

static void segments_roll(void)
{
    const char *dir = sub("log");
    cp_seglog_opts o = {.segment_bytes = 512};
    cp_seglog *log;
    CHECK_OK(cp_seglog_open(dir, &o, &log, &e_));
    for (int i = 0; i < 300; i++) {
        append_one(log, i, i);
        if (i % 7 == 0) {
            sync_log(log); /* rolls happen both inside one sync and between syncs */
        }
    }
    sync_log(log);
    int nseg = count_segments(dir, NULL, 0);
    CPT_CHECK(nseg > 10);
    expect_records(log, 0, 0, 300);
    uint64_t end = cp_seglog_end(log);
    cp_seglog_close(log);

    CHECK_OK(cp_seglog_open(dir, &o, &log, &e_));
    CPT_EQ_INT(cp_seglog_end(log), end);
    expect_records(log, 0, 0, 300);
    cp_seglog_close(log);
}

static void empty_trailing_segment_is_dropped(void)
{
    const char *dir = sub("log");
    cp_seglog_opts o = {.segment_bytes = 256};
    cp_seglog *log;
    CHECK_OK(cp_seglog_open(dir, &o, &log, &e_));
    for (int i = 0; i < 40; i++) {
        append_one(log, i, i);
    }
    sync_log(log);
    uint64_t end = cp_seglog_end(log);
    cp_seglog_close(log);
    /* A crash right after a roll created the next file, before any record reached it. */
    char path[600];
    snprintf(path, sizeof(path), "%s/%020llu.log", dir, (unsigned long long) end);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    CPT_CHECK(fd >= 0);
    close(fd);
    CHECK_OK(cp_seglog_open(dir, &o, &log, &e_));
    CPT_EQ_INT(cp_seglog_end(log), end);
    CPT_EQ_INT(access(path, F_OK), -1);
    CPT_EQ_INT(append_one(log, 40, 40), end);
    sync_log(log);
    expect_records(log, 0, 0, 41);
    cp_seglog_close(log);
}

static void damaged_middle_segment_is_corrupt(void)
{
    const char *dir = sub("log");
    cp_seglog_opts o = {.segment_bytes = 256};
    cp_seglog *log;
    CHECK_OK(cp_seglog_open(dir, &o, &log, &e_));
    for (int i = 0; i < 40; i++) {
        append_one(log, i, i);
    }
    sync_log(log);
    cp_seglog_close(log);
    char path[600];
    snprintf(path, sizeof(path), "%s/%020d.log", dir, 0);
    CPT_EQ_INT(truncate(path, 100), 0);
    cp_err err = {0};
    CPT_EQ_INT(cp_seglog_open(dir, &o, &log, &err), CP_ECORRUPT);
    CPT_CHECK(log == NULL);
}

static void trim_and_expired_reader(void)
{
    const char *dir = sub("log");
    cp_seglog_opts o = {.segment_bytes = 300};
    cp_seglog *log;
    CHECK_OK(cp_seglog_open(dir, &o, &log, &e_));
    uint64_t pos[100];
    for (int i = 0; i < 100; i++) {
        pos[i] = append_one(log, i, 1000 + i * 10); /* ts: 1000, 1010, ... 1990 */
    }
    sync_log(log);
    int before = count_segments(dir, NULL, 0);

    cp_seglog_reader *old;
    CHECK_OK(cp_seglog_reader_open(log, 0, &old, &e_));
    cp_slice p;
    CHECK_OK(cp_seglog_read(old, &p, NULL, NULL, &e_)); /* holds segment 0 open */

    CHECK_OK(cp_seglog_trim(log, 1500, &e_));
    uint64_t start = cp_seglog_start(log);
    CPT_CHECK(start > 0);
    CPT_CHECK(count_segments(dir, NULL, 0) < before);
    /* Nothing at or after the cutoff was removed; everything before start is < the cutoff. */
    int first_kept = -1;
    for (int i = 0; i < 100; i++) {
        if (pos[i] == start) {
            first_kept = i;
        }
    }
    CPT_CHECK(first_kept >= 0);
    CPT_CHECK(1000 + first_kept * 10 <= 1500);
    expect_records(log, start, first_kept, 100 - first_kept);

    cp_err err = {0};
    CPT_EQ_INT(cp_seglog_read(old, &p, NULL, NULL, &err), CP_EEXPIRED);
    cp_seglog_reader_close(old);
    cp_seglog_reader *r;
    CPT_EQ_INT(cp_seglog_reader_open(log, 0, &r, &err), CP_EEXPIRED);

    /* Trimming never removes the segment being written, even when everything is old. */
    CHECK_OK(cp_seglog_trim(log, 1 << 30, &e_));
    CPT_EQ_INT(count_segments(dir, NULL, 0), 1);
    uint64_t lp;
    CHECK_OK(cp_seglog_last(log, &lp, &e_));
    CPT_EQ_INT(lp, pos[99]);
    int k = -1;
    for (int i = 0; i < 100; i++) {
        if (pos[i] == cp_seglog_start(log)) {
            k = i;
        }
    }
    CPT_CHECK(k > first_kept);
    expect_records(log, pos[k], k, 100 - k);
    cp_seglog_close(log);

    /* The trimmed start survives reopen. */
    CHECK_OK(cp_seglog_open(dir, &o, &log, &e_));
    CPT_CHECK(cp_seglog_start(log) > start);
    CPT_EQ_INT(cp_seglog_reader_open(log, 0, &r, &err), CP_EEXPIRED);
    cp_seglog_close(log);
}

static void trim_to_position(void)
{
    const char *dir = sub("log");
    cp_seglog_opts o = {.segment_bytes = 200};
    cp_seglog *log;
    CHECK_OK(cp_seglog_open(dir, &o, &log, &e_));
    uint64_t pos[60];
    for (int i = 0; i < 60; i++) {
        pos[i] = append_one(log, i, i);
    }
    sync_log(log);
    CHECK_OK(cp_seglog_trim_to(log, pos[30], &e_));
    uint64_t start = cp_seglog_start(log);
    CPT_CHECK(start > 0 && start <= pos[30]);
    int first = -1;
    for (int i = 0; i < 60; i++) {
        if (pos[i] == start) {
            first = i;
        }
    }
    CPT_CHECK(first > 0);
    expect_records(log, start, first, 60 - first);
    cp_seglog_close(log);
}

static void seek_by_time(void)
{
    const char *dir = sub("log");
    cp_seglog_opts o = {.segment_bytes = 256};
    cp_seglog *log;
    CHECK_OK(cp_seglog_open(dir, &o, &log, &e_));
    uint64_t pos[120], got;
    CHECK_OK(cp_seglog_seek_time(log, 5, &got, &e_));
    CPT_EQ_INT(got, 0); /* empty log: the end */
    for (int i = 0; i < 120; i++) {
        pos[i] = append_one(log, i, 100 + (i / 3) * 10); /* three records per timestamp */
    }
    sync_log(log);
    CPT_CHECK(count_segments(dir, NULL, 0) > 5);
    for (int i = 0; i < 120; i += 3) {
        int64_t ts = 100 + (i / 3) * 10;
        CHECK_OK(cp_seglog_seek_time(log, ts, &got, &e_));
        CPT_EQ_INT(got, pos[i]); /* the first of equal timestamps */
        CHECK_OK(cp_seglog_seek_time(log, ts - 5, &got, &e_));
        CPT_EQ_INT(got, pos[i]);
    }
    CHECK_OK(cp_seglog_seek_time(log, 0, &got, &e_));
    CPT_EQ_INT(got, 0);
    CHECK_OK(cp_seglog_seek_time(log, 100000, &got, &e_));
    CPT_EQ_INT(got, cp_seglog_end(log));
    /* After a trim the answer for old timestamps is the new start. */
    CHECK_OK(cp_seglog_trim(log, 300, &e_));
    CHECK_OK(cp_seglog_seek_time(log, 0, &got, &e_));
    CPT_EQ_INT(got, cp_seglog_start(log));
    cp_seglog_close(log);
}

/* ---------------------------------------------------------------- concurrency */

typedef struct wctx {
    cp_seglog *log;
    int n;
    int id;
} wctx;

static void *writer_main(void *arg)
{
    wctx *w = arg;
    for (int i = 0; i < w->n; i++) {
        append_one(w->log, i, i);
        if (i % 5 == 4 || i == w->n - 1) {
            sync_log(w->log);
        }
    }
    return NULL;
}

static void concurrent_reader_and_writer(void)
{
    cp_seglog_opts o = {.segment_bytes = 4096, .no_fsync = 1};
    cp_seglog *log;
    CHECK_OK(cp_seglog_open(sub("log"), &o, &log, &e_));
    wctx w = {log, 3000, 0};
    pthread_t t;
    CPT_EQ_INT(pthread_create(&t, NULL, writer_main, &w), 0);
    cp_seglog_reader *r;
    CHECK_OK(cp_seglog_reader_open(log, 0, &r, &e_));
    int next = 0;
    int64_t last_ts = -1;
    while (next < w.n) {
        cp_slice p;
        int64_t ts;
        cp_err err = {0};
        int rc = cp_seglog_read(r, &p, NULL, &ts, &err);
        if (rc == CP_ENOTFOUND) {
            /* Poll the durable end rather than sleeping: spin until it moves. */
            uint64_t at = cp_seglog_reader_pos(r);
            while (cp_seglog_end(log) <= at) {
                sched_yield();
            }
            continue;
        }
        if (rc != CP_OK) {
            CPT_FAIL_AT("read: %s %s", cp_err_name(rc), err.msg);
        }
        CPT_CHECK(cp_seglog_reader_pos(r) <= cp_seglog_end(log));
        char buf[128];
        size_t len = payload_of(next, buf, sizeof(buf));
        CPT_EQ_MEM(p.p, p.len, buf, len);
        CPT_CHECK(ts >= last_ts);
        last_ts = ts;
        next++;
    }
    pthread_join(t, NULL);
    cp_slice p;
    cp_err err = {0};
    CPT_EQ_INT(cp_seglog_read(r, &p, NULL, NULL, &err), CP_ENOTFOUND);
    cp_seglog_reader_close(r);
    cp_seglog_close(log);
}

/* Several threads append and group-commit; each sees its own records durable on return. */
typedef struct gctx {
    cp_seglog *log;
    int id, n;
    int bad;
} gctx;

static void *group_main(void *arg)
{
    gctx *g = arg;
    for (int i = 0; i < g->n; i++) {
        char buf[32];
        int len = snprintf(buf, sizeof(buf), "%d:%d", g->id, i);
        cp_slice s = cp_slice_of(buf, (size_t) len);
        uint64_t pos;
        cp_err err = {0};
        if (cp_seglog_append(g->log, &s, 1, i, &pos, &err) != CP_OK ||
            cp_seglog_sync_to(g->log, pos + cp_seglog_frame_size(s.len), &err) != CP_OK ||
            cp_seglog_end(g->log) < pos + cp_seglog_frame_size(s.len)) {
            g->bad++;
        }
    }
    return NULL;
}

static void group_commit_from_many_threads(void)
{
    cp_seglog_opts o = {.segment_bytes = 2048, .no_fsync = 1};
    cp_seglog *log;
    CHECK_OK(cp_seglog_open(sub("log"), &o, &log, &e_));
    enum { T = 4, N = 500 };
    gctx g[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        g[i] = (gctx){log, i, N, 0};
        CPT_EQ_INT(pthread_create(&t[i], NULL, group_main, &g[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(t[i], NULL);
        CPT_EQ_INT(g[i].bad, 0);
    }
    /* Every record exactly once, each thread's records in its own order. */
    int next[T] = {0};
    cp_seglog_reader *r;
    CHECK_OK(cp_seglog_reader_open(log, 0, &r, &e_));
    int total = 0;
    for (;;) {
        cp_slice p;
        cp_err err = {0};
        int rc = cp_seglog_read(r, &p, NULL, NULL, &err);
        if (rc == CP_ENOTFOUND) {
            break;
        }
        CPT_EQ_INT(rc, CP_OK);
        int id, i;
        char buf[32];
        snprintf(buf, sizeof(buf), "%.*s", (int) p.len, p.p);
        CPT_EQ_INT(sscanf(buf, "%d:%d", &id, &i), 2);
        CPT_CHECK(id >= 0 && id < T);
        CPT_EQ_INT(i, next[id]);
        next[id]++;
        total++;
    }
    CPT_EQ_INT(total, T * N);
    cp_seglog_reader_close(r);
    cp_seglog_close(log);
}

static void oversized_record_rejected(void)
{
    cp_seglog *log;
    CHECK_OK(cp_seglog_open(sub("log"), NULL, &log, &e_));
    cp_slice s[2] = {CP_SLICE("ok"), cp_slice_of("x", (64u << 20) + 1)};
    cp_err err = {0};
    CPT_EQ_INT(cp_seglog_append(log, s, 2, 1, NULL, &err), CP_ETOOBIG);
    sync_log(log);
    CPT_EQ_INT(cp_seglog_end(log), 0); /* all or nothing */
    cp_seglog_close(log);
}

CPT_LIST = {
    {"round_trip", round_trip},
    {"timestamps_are_clamped", timestamps_are_clamped},
    {"reopen_keeps_records", reopen_keeps_records},
    {"torn_tail_truncated", torn_tail_truncated},
    {"torn_tail_flipped_byte", torn_tail_flipped_byte},
    {"torn_tail_partial_header", torn_tail_partial_header},
    {"segments_roll", segments_roll},
    {"empty_trailing_segment_is_dropped", empty_trailing_segment_is_dropped},
    {"damaged_middle_segment_is_corrupt", damaged_middle_segment_is_corrupt},
    {"trim_and_expired_reader", trim_and_expired_reader},
    {"trim_to_position", trim_to_position},
    {"seek_by_time", seek_by_time},
    {"concurrent_reader_and_writer", concurrent_reader_and_writer},
    {"group_commit_from_many_threads", group_commit_from_many_threads},
    {"oversized_record_rejected", oversized_record_rejected},
    {0},
};
