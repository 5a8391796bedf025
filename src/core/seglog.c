/* SPDX-License-Identifier: MIT */
/*
 * seglog: append-only, checksummed, segmented log with group commit (see seglog.h). Appenders
 * frame records into an in-memory pending buffer; one syncing "leader" at a time writes it out
 * and fdatasyncs, then publishes the durable end with a release store that readers acquire.
 */
#include "core/seglog.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/hash.h"
#include "core/mem.h"

#define HDR_SIZE        16
#define MAX_PAYLOAD     (64u << 20)
#define DEFAULT_SEGMENT ((size_t) 64 << 20)
#define READ_CHUNK      ((size_t) 64 << 10)
#define NAME_DIGITS     20
#define NO_POS          UINT64_MAX

/* One segment file. Old segments open their fd lazily (a long retention may mean thousands of
 * segments); the fd is shared by all readers through pread, so one open per segment. */
typedef struct seg {
    uint64_t base;    /* position of its first byte */
    int64_t first_ts; /* timestamp of its first record, when has_records */
    int has_records;
    int fd;   /* O_RDWR; -1 until first needed */
    int refs; /* the table's reference plus one per reader; under segs_mu */
} seg;

/* A point inside the pending bytes where the leader must start a segment (create=1), or where
 * the first record enters the empty initial segment (create=0: only its first_ts is learnt). */
typedef struct roll {
    uint64_t pos;
    int64_t ts;
    int create;
} roll;

struct cp_seglog {
    int dirfd;
    size_t segment_bytes;
    int no_fsync;

    /* Segment table, shared by readers, trim and the syncing leader; short sections only. */
    pthread_mutex_t segs_mu;
    seg **segs;
    size_t nsegs, segs_cap;
    pthread_mutex_t trim_mu; /* trims unlink oldest-first, one at a time */

    /* Appender state, under wmu. */
    pthread_mutex_t wmu;
    pthread_cond_t wcv;
    cp_buf pending; /* framed records not yet written; they start at pending_base */
    cp_buf spare;   /* the leader's buffer, swapped with pending */
    uint64_t pending_base;
    uint64_t write_end;   /* position after the last appended frame */
    uint64_t active_base; /* segment that receives appends (may not exist on disk yet) */
    int64_t last_ts;      /* timestamp of the last appended record: the clamp */
    uint64_t app_last_pos;
    roll *rolls, *spare_rolls;
    size_t nrolls, rolls_cap, spare_cap;
    int syncing;         /* a leader is writing; it alone touches `active` */
    int failed;          /* sticky I/O failure */
    uint64_t synced_end; /* durable end as seen by appenders */

    seg *active; /* the last segment on disk; only the leader (or open) writes it */

    /* Published to readers: durable_end first, then the rest (see publish()). */
    _Atomic uint64_t durable_end;
    _Atomic uint64_t start;
    _Atomic int64_t durable_last_ts;
    _Atomic uint64_t last_pos;
};

struct cp_seglog_reader {
    cp_seglog *log;
    uint64_t pos;
    seg *sg;           /* referenced segment containing pos, or NULL */
    uint64_t sg_limit; /* base of the following segment; NO_POS when sg was the last */
    char *buf;
    size_t cap;
    uint64_t buf_pos; /* position of buf[0] */
    size_t buf_len;
};

/* ---------------------------------------------------------------- helpers */

static void seg_name(uint64_t base, char out[32])
{
    snprintf(out, 32, "%020" PRIu64 ".log", base);
}

static int parse_seg_name(const char *name, uint64_t *base)
{
    if (strlen(name) != NAME_DIGITS + 4 || strcmp(name + NAME_DIGITS, ".log") != 0) {
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return 0;
        }
        uint64_t d = (uint64_t) (name[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return 0;
        }
        v = v * 10 + d;
    }
    *base = v;
    return 1;
}

static uint32_t frame_crc(int64_t ts, const void *p, size_t len)
{
    unsigned char t[8];
    cp_store_u64le(t, (uint64_t) ts);
    uint32_t crc = cp_crc32(0, t, 8);
    /* libdeflate treats a NULL buffer as "give me the initial value", so skip empty payloads. */
    return len ? cp_crc32(crc, p, len) : crc;
}

static int sys_err(cp_err *err, const char *what)
{
    int e = errno ? errno : EIO;
    return cp_err_set(err, -e, "seglog: %s: %s", what, strerror(e));
}

static int pwrite_all(int fd, const char *p, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, (off_t) off);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        len -= (size_t) w;
        off += (uint64_t) w;
    }
    return 0;
}

/* Read exactly len bytes; returns bytes read (short only at end of file) or -1. */
static ssize_t pread_full(int fd, char *p, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, p + got, len - got, (off_t) (off + got));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (r == 0) {
            break;
        }
        got += (size_t) r;
    }
    return (ssize_t) got;
}


static int sync_dir(cp_seglog *log)
{
    return log->no_fsync ? 0 : fsync(log->dirfd);
}

static int data_sync(cp_seglog *log, int fd)
{
    return log->no_fsync ? 0 : fdatasync(fd);
}

static seg *seg_new(uint64_t base, int fd)
{
    seg *s = cp_calloc(1, sizeof(*s));
    s->base = base;
    s->fd = fd;
    s->refs = 1;
    return s;
}

/* Drop one reference; the caller holds segs_mu. */
static void seg_unref_locked(seg *s)
{
    if (--s->refs == 0) {
        if (s->fd >= 0) {
            close(s->fd);
        }
        cp_free(s);
    }
}

static void segs_push(cp_seglog *log, seg *s)
{
    if (log->nsegs == log->segs_cap) {
        log->segs_cap = log->segs_cap ? log->segs_cap * 2 : 8;
        log->segs = cp_realloc(log->segs, log->segs_cap * sizeof(*log->segs));
    }
    log->segs[log->nsegs++] = s;
}

/* Index of the last segment with base <= pos (segs_mu held, nsegs > 0, pos >= segs[0]). */
static size_t seg_find_locked(cp_seglog *log, uint64_t pos)
{
    size_t lo = 0, hi = log->nsegs;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (log->segs[mid]->base <= pos) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static int seg_open_fd_locked(cp_seglog *log, seg *s)
{
    if (s->fd < 0) {
        char name[32];
        seg_name(s->base, name);
        s->fd = openat(log->dirfd, name, O_RDWR | O_CLOEXEC);
        if (s->fd < 0) {
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- recovery */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

typedef struct scan_result {
    uint64_t valid; /* bytes of whole, checksummed frames from the start of the segment */
    uint64_t last_off;
    int64_t first_ts, last_ts;
    int nrec;
} scan_result;

/* Walk the frames of one segment file and stop at the first torn or corrupt one. */
static int scan_segment(int fd, uint64_t size, scan_result *out, cp_err *err)
{
    memset(out, 0, sizeof(*out));
    cp_buf b = CP_BUF_INIT;
    uint64_t off = 0;
    for (;;) {
        char hdr[HDR_SIZE];
        if (size - off < HDR_SIZE) {
            break;
        }
        ssize_t r = pread_full(fd, hdr, HDR_SIZE, off);
        if (r < 0) {
            cp_buf_free(&b);
            return sys_err(err, "read during recovery");
        }
        if (r < HDR_SIZE) {
            break;
        }
        uint32_t len = cp_load_u32le(hdr);
        uint32_t crc = cp_load_u32le(hdr + 4);
        int64_t ts = (int64_t) cp_load_u64le(hdr + 8);
        if (len > MAX_PAYLOAD || size - off - HDR_SIZE < len) {
            break;
        }
        cp_buf_reset(&b);
        cp_buf_reserve(&b, len);
        r = pread_full(fd, b.p, len, off + HDR_SIZE);
        if (r < 0) {
            cp_buf_free(&b);
            return sys_err(err, "read during recovery");
        }
        if ((uint32_t) r < len || frame_crc(ts, b.p, len) != crc) {
            break;
        }
        if (out->nrec > 0 && ts < out->last_ts) {
            break; /* timestamps never go backwards: treat as a corrupt tail */
        }
        if (out->nrec == 0) {
            out->first_ts = ts;
        }
        out->last_off = off;
        out->last_ts = ts;
        out->nrec++;
        off += HDR_SIZE + (uint64_t) len;
    }
    out->valid = off;
    cp_buf_free(&b);
    return CP_OK;
}

static int file_size(int dirfd, const char *name, uint64_t *size)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, 0) != 0) {
        return -1;
    }
    *size = (uint64_t) st.st_size;
    return 0;
}

static int recover(cp_seglog *log, cp_err *err)
{
    DIR *d = fdopendir(dup(log->dirfd));
    if (!d) {
        return sys_err(err, "list log directory");
    }
    uint64_t *bases = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t base;
        if (parse_seg_name(de->d_name, &base)) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                bases = cp_realloc(bases, cap * sizeof(*bases));
            }
            bases[n++] = base;
        }
    }
    closedir(d);
    if (n > 1) {
        qsort(bases, n, sizeof(*bases), cmp_u64);
    }

    int rc = CP_OK;
    char name[32];
    if (n == 0) {
        seg_name(0, name);
        int fd = openat(log->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || sync_dir(log) != 0) {
            rc = sys_err(err, "create first segment");
            if (fd >= 0) {
                close(fd);
            }
            goto out;
        }
        segs_push(log, seg_new(0, fd));
        log->active = log->segs[0];
        goto out;
    }

    /* Whole segments before the last were fdatasynced before their successor was created, so
     * their sizes must chain exactly; anything else is damage we must not paper over. */
    for (size_t i = 0; i + 1 < n; i++) {
        uint64_t size;
        seg_name(bases[i], name);
        if (file_size(log->dirfd, name, &size) != 0) {
            rc = sys_err(err, "stat segment");
            goto out;
        }
        if (size != bases[i + 1] - bases[i]) {
            rc = cp_err_set(err, CP_ECORRUPT,
                            "seglog: segment %020" PRIu64 " has %" PRIu64
                            " bytes, expected %" PRIu64,
                            bases[i], size, bases[i + 1] - bases[i]);
            goto out;
        }
    }

    /* Scan the last segment; a torn or corrupt tail is cut off. If nothing valid is left and
     * an earlier segment exists, the empty file was created by a roll that never got its first
     * record durable: remove it and recover the previous one instead. */
    scan_result sr;
    uint64_t size = 0;
    int fd = -1;
    for (;;) {
        seg_name(bases[n - 1], name);
        fd = openat(log->dirfd, name, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            rc = sys_err(err, "open last segment");
            goto out;
        }
        struct stat st;
        if (fstat(fd, &st) != 0) {
            rc = sys_err(err, "stat last segment");
            close(fd);
            goto out;
        }
        size = (uint64_t) st.st_size;
        rc = scan_segment(fd, size, &sr, err);
        if (rc != CP_OK) {
            close(fd);
            goto out;
        }
        if (sr.valid < size) {
            if (ftruncate(fd, (off_t) sr.valid) != 0 || data_sync(log, fd) != 0) {
                rc = sys_err(err, "truncate torn tail");
                close(fd);
                goto out;
            }
        }
        if (sr.nrec == 0 && n > 1) {
            close(fd);
            if (unlinkat(log->dirfd, name, 0) != 0 || sync_dir(log) != 0) {
                rc = sys_err(err, "remove empty segment");
                goto out;
            }
            n--;
            continue;
        }
        break;
    }

    for (size_t i = 0; i + 1 < n; i++) {
        seg *s = seg_new(bases[i], -1);
        char hdr[HDR_SIZE];
        seg_name(bases[i], name);
        int sfd = openat(log->dirfd, name, O_RDONLY | O_CLOEXEC);
        ssize_t r = sfd >= 0 ? pread_full(sfd, hdr, HDR_SIZE, 0) : -1;
        if (sfd >= 0) {
            close(sfd);
        }
        if (r != HDR_SIZE) {
            cp_free(s);
            close(fd);
            rc = r < 0 ? sys_err(err, "read segment header")
                       : cp_err_set(err, CP_ECORRUPT, "seglog: segment %020" PRIu64 " is too short",
                                    bases[i]);
            goto out;
        }
        s->first_ts = (int64_t) cp_load_u64le(hdr + 8);
        s->has_records = 1;
        segs_push(log, s);
    }
    seg *last = seg_new(bases[n - 1], fd);
    last->has_records = sr.nrec > 0;
    last->first_ts = sr.first_ts;
    segs_push(log, last);
    log->active = last;

    uint64_t end = last->base + sr.valid;
    log->write_end = log->pending_base = log->synced_end = end;
    log->active_base = last->base;
    atomic_store(&log->durable_end, end);
    if (sr.nrec > 0) {
        log->last_ts = sr.last_ts;
        log->app_last_pos = last->base + sr.last_off;
        atomic_store(&log->durable_last_ts, sr.last_ts);
        atomic_store(&log->last_pos, last->base + sr.last_off);
    }
out:
    if (rc == CP_OK) {
        atomic_store(&log->start, log->segs[0]->base);
    }
    cp_free(bases);
    return rc;
}

/* ---------------------------------------------------------------- open / close */

int cp_seglog_open(const char *dir, const cp_seglog_opts *opts, cp_seglog **out, cp_err *err)
{
    *out = NULL;
    if (cp_fs_mkdir_p(dir) != CP_OK) {
        return sys_err(err, "create log directory");
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        return sys_err(err, "open log directory");
    }
    cp_seglog *log = cp_calloc(1, sizeof(*log));
    log->dirfd = dfd;
    log->segment_bytes = opts && opts->segment_bytes ? opts->segment_bytes : DEFAULT_SEGMENT;
    log->no_fsync = opts ? opts->no_fsync : 0;
    pthread_mutex_init(&log->segs_mu, NULL);
    pthread_mutex_init(&log->trim_mu, NULL);
    pthread_mutex_init(&log->wmu, NULL);
    pthread_cond_init(&log->wcv, NULL);
    atomic_init(&log->durable_end, 0);
    atomic_init(&log->start, 0);
    atomic_init(&log->durable_last_ts, 0);
    atomic_init(&log->last_pos, NO_POS);
    int rc = recover(log, err);
    if (rc != CP_OK) {
        cp_seglog_close(log);
        return rc;
    }
    *out = log;
    return CP_OK;
}

void cp_seglog_close(cp_seglog *log)
{
    if (!log) {
        return;
    }
    for (size_t i = 0; i < log->nsegs; i++) {
        seg_unref_locked(log->segs[i]);
    }
    cp_free(log->segs);
    cp_buf_free(&log->pending);
    cp_buf_free(&log->spare);
    cp_free(log->rolls);
    cp_free(log->spare_rolls);
    pthread_mutex_destroy(&log->segs_mu);
    pthread_mutex_destroy(&log->trim_mu);
    pthread_mutex_destroy(&log->wmu);
    pthread_cond_destroy(&log->wcv);
    close(log->dirfd);
    cp_free(log);
}

/* ---------------------------------------------------------------- append / sync */

static void push_roll(cp_seglog *log, uint64_t pos, int64_t ts, int create)
{
    if (log->nrolls == log->rolls_cap) {
        log->rolls_cap = log->rolls_cap ? log->rolls_cap * 2 : 4;
        log->rolls = cp_realloc(log->rolls, log->rolls_cap * sizeof(*log->rolls));
    }
    log->rolls[log->nrolls++] = (roll){pos, ts, create};
}

int cp_seglog_append(cp_seglog *log, const cp_slice *payloads, size_t n, int64_t ts_ms,
                     uint64_t *first_pos, cp_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (payloads[i].len > MAX_PAYLOAD) {
            return cp_err_set(err, CP_ETOOBIG, "seglog: record of %zu bytes exceeds 64 MiB",
                              payloads[i].len);
        }
    }
    pthread_mutex_lock(&log->wmu);
    if (log->failed) {
        pthread_mutex_unlock(&log->wmu);
        return cp_err_set(err, CP_EIO, "seglog: log failed on an earlier I/O error");
    }
    /* Readers binary-search segments by first timestamp and scan forward, which is only right
     * if timestamps never decrease: a clock stepping back is clamped to the last stamp. */
    if (ts_ms < log->last_ts) {
        ts_ms = log->last_ts;
    }
    if (first_pos) {
        *first_pos = log->write_end;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t fill = log->write_end - log->active_base;
        if (fill > 0 && fill >= log->segment_bytes) {
            log->active_base = log->write_end;
            push_roll(log, log->write_end, ts_ms, 1);
        } else if (fill == 0) {
            /* The very first record of an empty (initial) segment: only learn its first_ts. */
            push_roll(log, log->write_end, ts_ms, 0);
        }
        char hdr[HDR_SIZE];
        cp_store_u32le(hdr, (uint32_t) payloads[i].len);
        cp_store_u32le(hdr + 4, frame_crc(ts_ms, payloads[i].p, payloads[i].len));
        cp_store_u64le(hdr + 8, (uint64_t) ts_ms);
        cp_buf_append(&log->pending, hdr, HDR_SIZE);
        if (payloads[i].len) {
            cp_buf_append(&log->pending, payloads[i].p, payloads[i].len);
        }
        log->app_last_pos = log->write_end;
        log->write_end += cp_seglog_frame_size(payloads[i].len);
    }
    if (n > 0) {
        log->last_ts = ts_ms;
    }
    pthread_mutex_unlock(&log->wmu);
    return CP_OK;
}

/* Start a new segment file at `pos` and make it the active one (leader only). The previous
 * segment is fdatasynced first, so recovery may assume every non-last segment is complete. */
static int roll_segment(cp_seglog *log, uint64_t pos, int64_t ts, cp_err *err)
{
    if (data_sync(log, log->active->fd) != 0) {
        return sys_err(err, "fdatasync segment");
    }
    char name[32];
    seg_name(pos, name);
    int fd = openat(log->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        return sys_err(err, "create segment");
    }
    if (sync_dir(log) != 0) {
        close(fd);
        return sys_err(err, "fsync log directory");
    }
    seg *s = seg_new(pos, fd);
    s->first_ts = ts;
    s->has_records = 1;
    pthread_mutex_lock(&log->segs_mu);
    segs_push(log, s);
    pthread_mutex_unlock(&log->segs_mu);
    log->active = s;
    return CP_OK;
}

static int write_out(cp_seglog *log, const cp_buf *b, uint64_t base, const roll *rolls,
                     size_t nrolls, cp_err *err)
{
    uint64_t pos = base, end = base + b->len;
    size_t ri = 0;
    while (pos < end) {
        for (; ri < nrolls && rolls[ri].pos == pos; ri++) {
            if (rolls[ri].create) {
                int rc = roll_segment(log, pos, rolls[ri].ts, err);
                if (rc != CP_OK) {
                    return rc;
                }
            } else {
                pthread_mutex_lock(&log->segs_mu);
                log->active->first_ts = rolls[ri].ts;
                log->active->has_records = 1;
                pthread_mutex_unlock(&log->segs_mu);
            }
        }
        uint64_t stop = ri < nrolls ? rolls[ri].pos : end;
        if (pwrite_all(log->active->fd, b->p + (pos - base), stop - pos, pos - log->active->base) !=
            0) {
            return sys_err(err, "write segment");
        }
        pos = stop;
    }
    if (data_sync(log, log->active->fd) != 0) {
        return sys_err(err, "fdatasync segment");
    }
    return CP_OK;
}

/* Make everything up to `target` durable. Leader/follower group commit: whoever finds no sync
 * in flight takes the whole pending buffer (its own frames and everyone else's), writes and
 * syncs it without holding wmu, so appenders keep filling a fresh buffer meanwhile; the others
 * wait on wcv and usually find their frames covered by the leader's sync. Called with wmu. */
static int sync_to_locked(cp_seglog *log, uint64_t target, cp_err *err)
{
    while (log->synced_end < target) {
        if (log->failed) {
            return cp_err_set(err, CP_EIO, "seglog: log failed on an earlier I/O error");
        }
        if (log->syncing) {
            pthread_cond_wait(&log->wcv, &log->wmu);
            continue;
        }
        cp_buf b = log->pending;
        log->pending = log->spare;
        log->spare = CP_BUF_INIT;
        roll *rolls = log->rolls;
        size_t nrolls = log->nrolls, rcap = log->rolls_cap;
        log->rolls = log->spare_rolls;
        log->rolls_cap = log->spare_cap;
        log->spare_rolls = NULL;
        log->spare_cap = 0;
        log->nrolls = 0;
        uint64_t base = log->pending_base;
        uint64_t new_end = log->write_end;
        uint64_t new_last = log->app_last_pos;
        int64_t new_ts = log->last_ts;
        log->pending_base = new_end;
        log->syncing = 1;
        pthread_mutex_unlock(&log->wmu);

        int rc = write_out(log, &b, base, rolls, nrolls, err);

        pthread_mutex_lock(&log->wmu);
        cp_buf_reset(&b);
        log->spare = b;
        log->spare_rolls = rolls;
        log->spare_cap = rcap;
        log->syncing = 0;
        if (rc != CP_OK) {
            log->failed = 1;
        } else {
            log->synced_end = new_end;
            /* durable_end first: a reader that sees the new last_pos also sees the end. */
            atomic_store_explicit(&log->durable_end, new_end, memory_order_release);
            atomic_store_explicit(&log->durable_last_ts, new_ts, memory_order_release);
            atomic_store_explicit(&log->last_pos, new_last, memory_order_release);
        }
        pthread_cond_broadcast(&log->wcv);
        if (rc != CP_OK) {
            return rc;
        }
    }
    return CP_OK;
}

int cp_seglog_sync(cp_seglog *log, cp_err *err)
{
    pthread_mutex_lock(&log->wmu);
    int rc = log->failed ? cp_err_set(err, CP_EIO, "seglog: log failed on an earlier I/O error")
                         : sync_to_locked(log, log->write_end, err);
    pthread_mutex_unlock(&log->wmu);
    return rc;
}

int cp_seglog_sync_to(cp_seglog *log, uint64_t end, cp_err *err)
{
    pthread_mutex_lock(&log->wmu);
    int rc = end > log->write_end
                 ? cp_err_set(err, CP_EINVAL, "seglog: sync target beyond the appended end")
                 : sync_to_locked(log, end, err);
    pthread_mutex_unlock(&log->wmu);
    return rc;
}

/* ---------------------------------------------------------------- state */

uint64_t cp_seglog_start(cp_seglog *log)
{
    return atomic_load_explicit(&log->start, memory_order_acquire);
}

uint64_t cp_seglog_end(cp_seglog *log)
{
    return atomic_load_explicit(&log->durable_end, memory_order_acquire);
}

int64_t cp_seglog_last_ts(cp_seglog *log)
{
    return atomic_load_explicit(&log->durable_last_ts, memory_order_acquire);
}

int cp_seglog_last(cp_seglog *log, uint64_t *pos, cp_err *err)
{
    uint64_t p = atomic_load_explicit(&log->last_pos, memory_order_acquire);
    if (p == NO_POS) {
        return cp_err_set(err, CP_ENOTFOUND, "seglog: the log holds no records");
    }
    *pos = p;
    return CP_OK;
}

/* ---------------------------------------------------------------- trim */

/* Detach the first k segments (segs_mu held); the new start is published before any file
 * goes, so a reader either sees CP_EEXPIRED or still holds a reference to an open fd. */
static seg **detach_locked(cp_seglog *log, size_t k)
{
    seg **gone = cp_malloc(k * sizeof(*gone));
    memcpy(gone, log->segs, k * sizeof(*gone));
    memmove(log->segs, log->segs + k, (log->nsegs - k) * sizeof(*log->segs));
    log->nsegs -= k;
    atomic_store_explicit(&log->start, log->segs[0]->base, memory_order_release);
    return gone;
}

/* mode 0: by time (before_ms); mode 1: by position. */
static int trim_impl(cp_seglog *log, int by_pos, int64_t before_ms, uint64_t pos, cp_err *err)
{
    pthread_mutex_lock(&log->trim_mu);
    pthread_mutex_lock(&log->segs_mu);
    uint64_t end = cp_seglog_end(log);
    size_t k = 0;
    /* Segment k may go when its successor is durable and proves k's records are old: timestamps
     * never decrease, so every record of k is <= the successor's first timestamp. */
    while (k + 1 < log->nsegs && log->segs[k + 1]->base < end) {
        const seg *next = log->segs[k + 1];
        if (by_pos ? next->base > pos : !(next->has_records && next->first_ts < before_ms)) {
            break;
        }
        k++;
    }
    seg **gone = k ? detach_locked(log, k) : NULL;
    pthread_mutex_unlock(&log->segs_mu);

    int rc = CP_OK;
    for (size_t i = 0; i < k; i++) {
        char name[32];
        seg_name(gone[i]->base, name);
        /* Oldest first with a directory sync each, so a crash leaves a contiguous suffix. */
        if (rc == CP_OK && (unlinkat(log->dirfd, name, 0) != 0 || sync_dir(log) != 0)) {
            rc = sys_err(err, "remove trimmed segment");
        }
        pthread_mutex_lock(&log->segs_mu);
        seg_unref_locked(gone[i]);
        pthread_mutex_unlock(&log->segs_mu);
    }
    cp_free(gone);
    pthread_mutex_unlock(&log->trim_mu);
    return rc;
}

int cp_seglog_trim(cp_seglog *log, int64_t before_ms, cp_err *err)
{
    return trim_impl(log, 0, before_ms, 0, err);
}

int cp_seglog_trim_to(cp_seglog *log, uint64_t pos, cp_err *err)
{
    return trim_impl(log, 1, 0, pos, err);
}

/* ---------------------------------------------------------------- readers */

int cp_seglog_reader_open(cp_seglog *log, uint64_t pos, cp_seglog_reader **out, cp_err *err)
{
    *out = NULL;
    if (pos < cp_seglog_start(log)) {
        return cp_err_set(err, CP_EEXPIRED, "seglog: position %" PRIu64 " was trimmed", pos);
    }
    cp_seglog_reader *r = cp_calloc(1, sizeof(*r));
    r->log = log;
    r->pos = pos;
    *out = r;
    return CP_OK;
}

static void reader_release(cp_seglog_reader *r)
{
    if (r->sg) {
        pthread_mutex_lock(&r->log->segs_mu);
        seg_unref_locked(r->sg);
        pthread_mutex_unlock(&r->log->segs_mu);
        r->sg = NULL;
    }
    r->buf_len = 0;
}

void cp_seglog_reader_close(cp_seglog_reader *r)
{
    if (!r) {
        return;
    }
    reader_release(r);
    cp_free(r->buf);
    cp_free(r);
}

uint64_t cp_seglog_reader_pos(const cp_seglog_reader *r)
{
    return r->pos;
}

/* Point r->sg at the segment holding r->pos. */
static int reader_locate(cp_seglog_reader *r, cp_err *err)
{
    cp_seglog *log = r->log;
    if (r->sg && r->pos >= r->sg->base && r->pos < r->sg_limit) {
        return CP_OK;
    }
    reader_release(r);
    pthread_mutex_lock(&log->segs_mu);
    if (r->pos < cp_seglog_start(log)) {
        pthread_mutex_unlock(&log->segs_mu);
        return cp_err_set(err, CP_EEXPIRED, "seglog: position %" PRIu64 " was trimmed", r->pos);
    }
    size_t i = seg_find_locked(log, r->pos);
    seg *s = log->segs[i];
    if (seg_open_fd_locked(log, s) != 0) {
        pthread_mutex_unlock(&log->segs_mu);
        return sys_err(err, "open segment");
    }
    s->refs++;
    r->sg = s;
    r->sg_limit = i + 1 < log->nsegs ? log->segs[i + 1]->base : NO_POS;
    pthread_mutex_unlock(&log->segs_mu);
    return CP_OK;
}

/* Make at least `need` bytes from r->pos available in r->buf, reading ahead up to a chunk but
 * never past the durable end or the segment's end. */
static int reader_fill(cp_seglog_reader *r, uint64_t end, size_t need, cp_err *err)
{
    if (r->pos >= r->buf_pos && r->pos + need <= r->buf_pos + r->buf_len && r->buf_len) {
        return CP_OK;
    }
    /* The segment that was last when located may have been followed by a new one since. */
    if (r->sg && r->sg_limit == NO_POS) {
        reader_release(r);
    }
    int rc = reader_locate(r, err);
    if (rc != CP_OK) {
        return rc;
    }
    uint64_t limit = end < r->sg_limit ? end : r->sg_limit;
    if (limit - r->pos < need) {
        return cp_err_set(err, CP_ECORRUPT, "seglog: frame at %" PRIu64 " crosses its bounds",
                          r->pos);
    }
    size_t want = need > READ_CHUNK ? need : READ_CHUNK;
    if (want > limit - r->pos) {
        want = (size_t) (limit - r->pos);
    }
    if (r->cap < want) {
        cp_free(r->buf);
        r->buf = cp_malloc(want);
        r->cap = want;
    }
    ssize_t got = pread_full(r->sg->fd, r->buf, want, r->pos - r->sg->base);
    if (got < 0) {
        r->buf_len = 0;
        return sys_err(err, "read segment");
    }
    if ((size_t) got < want) {
        r->buf_len = 0;
        return cp_err_set(err, CP_ECORRUPT, "seglog: segment shorter than its durable end");
    }
    r->buf_pos = r->pos;
    r->buf_len = want;
    return CP_OK;
}

int cp_seglog_read(cp_seglog_reader *r, cp_slice *payload, uint64_t *pos, int64_t *ts_ms,
                   cp_err *err)
{
    cp_seglog *log = r->log;
    if (r->pos < cp_seglog_start(log)) {
        return cp_err_set(err, CP_EEXPIRED, "seglog: position %" PRIu64 " was trimmed", r->pos);
    }
    uint64_t end = cp_seglog_end(log);
    if (r->pos >= end) {
        return CP_ENOTFOUND;
    }
    int rc = reader_fill(r, end, HDR_SIZE, err);
    if (rc != CP_OK) {
        return rc;
    }
    const char *h = r->buf + (r->pos - r->buf_pos);
    uint32_t len = cp_load_u32le(h);
    uint32_t crc = cp_load_u32le(h + 4);
    int64_t ts = (int64_t) cp_load_u64le(h + 8);
    if (len > MAX_PAYLOAD) {
        return cp_err_set(err, CP_ECORRUPT, "seglog: bad frame length at %" PRIu64, r->pos);
    }
    rc = reader_fill(r, end, HDR_SIZE + (size_t) len, err);
    if (rc != CP_OK) {
        return rc;
    }
    h = r->buf + (r->pos - r->buf_pos);
    if (frame_crc(ts, h + HDR_SIZE, len) != crc) {
        return cp_err_set(err, CP_ECORRUPT, "seglog: checksum mismatch at %" PRIu64, r->pos);
    }
    *payload = cp_slice_of(h + HDR_SIZE, len);
    if (pos) {
        *pos = r->pos;
    }
    if (ts_ms) {
        *ts_ms = ts;
    }
    r->pos += cp_seglog_frame_size(len);
    return CP_OK;
}

/* ---------------------------------------------------------------- seek by time */

int cp_seglog_seek_time(cp_seglog *log, int64_t ts_ms, uint64_t *pos, cp_err *err)
{
    for (;;) {
        uint64_t end = cp_seglog_end(log);
        pthread_mutex_lock(&log->segs_mu);
        /* Durable segments with records, whose first timestamps never decrease: find the last
         * one starting before ts_ms; the answer is inside it or at its successor's base. */
        size_t m = 0;
        while (m < log->nsegs && log->segs[m]->base < end && log->segs[m]->has_records) {
            m++;
        }
        size_t lo = 0, hi = m; /* invariant: segs[<lo] start before ts_ms, segs[>=hi] don't */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (log->segs[mid]->first_ts < ts_ms) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (lo == 0) {
            *pos = log->segs[0]->base < end ? log->segs[0]->base : end;
            pthread_mutex_unlock(&log->segs_mu);
            return CP_OK;
        }
        uint64_t from = log->segs[lo - 1]->base;
        uint64_t limit = lo < log->nsegs && log->segs[lo]->base < end ? log->segs[lo]->base : end;
        pthread_mutex_unlock(&log->segs_mu);

        cp_seglog_reader *r;
        int rc = cp_seglog_reader_open(log, from, &r, err);
        if (rc == CP_EEXPIRED) {
            continue; /* trimmed under us: search again from the new start */
        }
        if (rc != CP_OK) {
            return rc;
        }
        *pos = limit;
        for (;;) {
            cp_slice p;
            uint64_t at;
            int64_t ts;
            if (cp_seglog_reader_pos(r) >= limit) {
                break;
            }
            rc = cp_seglog_read(r, &p, &at, &ts, err);
            if (rc == CP_ENOTFOUND) {
                rc = CP_OK;
                break;
            }
            if (rc != CP_OK) {
                break;
            }
            if (ts >= ts_ms) {
                *pos = at;
                break;
            }
        }
        cp_seglog_reader_close(r);
        if (rc == CP_EEXPIRED) {
            continue;
        }
        return rc;
    }
}
