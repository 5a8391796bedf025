/* SPDX-License-Identifier: MIT */
/*
 * Crash test of change capture into a Kinesis stream. A child writes through the store from
 * several threads while the outbox relays into a stream; the parent kills it with SIGKILL at a
 * random moment, reopens everything, lets the relay catch up and checks that the stream holds
 * exactly one record per change record of the log (same set of positions, none twice), in
 * commit order per shard. Repeated on the same directory.
 */
#include "../unit/cpt.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "cdc/outbox.h"
#include "core/mem.h"
#include "core/seglog.h"

enum { THREADS = 4, ROUNDS = 25 };

typedef struct sys {
    cp_db *db;
    cp_streams *streams;
    cp_outbox *ob;
} sys;

static int add_destination(void *ctx, cp_table_info *t, cp_err *err)
{
    (void) ctx;
    (void) err;
    if (t->ndest == 0) {
        snprintf(t->dest[0].stream_name, CP_NAME_MAX, "cdc");
        t->dest[0].active = 1;
        t->ndest = 1;
    }
    return CP_OK;
}

static int sys_open(const char *dir, sys *s)
{
    cp_db_opts o = {.dir = dir};
    if (cp_db_open(&o, &s->db, NULL) != CP_OK ||
        cp_streams_open(dir, NULL, &s->streams, NULL) != CP_OK) {
        return -1;
    }
    cp_table_info t = {0};
    if (cp_db_get_table(s->db, "T", &t, NULL) != CP_OK) {
        snprintf(t.name, sizeof(t.name), "T");
        snprintf(t.key.hash_name, sizeof(t.key.hash_name), "pk");
        t.key.hash_type = CP_AV_S;
        if (cp_db_create_table(s->db, &t, NULL) != CP_OK ||
            cp_streams_create(s->streams, CP_SLICE("cdc"), CP_STREAM_ON_DEMAND, 0, NULL) !=
                CP_OK ||
            cp_db_update_table(s->db, "T", add_destination, NULL, NULL) != CP_OK) {
            return -1;
        }
    }
    cp_table_info_clear(&t);
    return cp_outbox_start(s->db, s->streams, NULL, &s->ob, NULL);
}

typedef struct child_arg {
    cp_db *db;
    int round, thread, fd;
} child_arg;

static void *child_writer(void *p)
{
    child_arg *a = p;
    cp_buf item = CP_BUF_INIT;
    for (int n = 0;; n++) {
        char pk[64];
        /* A few keys are rewritten so MODIFY records interleave with INSERTs. */
        snprintf(pk, sizeof(pk), "r%d-t%d-k%d", a->round, a->thread, n % 3 == 2 ? n - 1 : n);
        cp_buf_reset(&item);
        cp_item_builder b;
        cp_item_builder_init(&b, &item);
        cp_item_begin(&b);
        cp_item_put_name(&b, CP_SLICE("pk"));
        cp_item_put_scalar(&b, CP_AV_S, cp_slice_str(pk));
        char v[16];
        snprintf(v, sizeof(v), "%d", n);
        cp_item_put_name(&b, CP_SLICE("v"));
        cp_item_put_scalar(&b, CP_AV_N, cp_slice_str(v));
        cp_item_end(&b);
        cp_write_op op = {.kind = CP_WRITE_PUT, .table = "T", .item = cp_buf_slice(&item)};
        if (cp_db_write(a->db, &op, 1, 0, NULL) != CP_OK || op.rc != CP_OK) {
            _exit(3);
        }
        if (write(a->fd, "a", 1) != 1) {
            _exit(4);
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x > y) - (x < y);
}

/* Positions (+1) of every change record the relay must have sent. */
static uint64_t *log_sources(sys *s, size_t *n)
{
    cp_table_info t;
    CPT_EQ_INT(cp_db_get_table(s->db, "T", &t, NULL), CP_OK);
    uint64_t from = t.dest[0].from_lsn;
    cp_table_info_clear(&t);
    uint64_t *out = NULL;
    size_t cap = 0;
    *n = 0;
    cp_seglog_reader *r;
    CPT_EQ_INT(cp_seglog_reader_open(cp_db_log(s->db), 0, &r, NULL), CP_OK);
    cp_slice p;
    uint64_t pos;
    int64_t ts;
    while (cp_seglog_read(r, &p, &pos, &ts, NULL) == CP_OK) {
        if (pos < from) {
            continue;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 1024;
            out = cp_realloc(out, cap * sizeof(*out));
        }
        out[(*n)++] = pos + 1;
    }
    cp_seglog_reader_close(r);
    return out;
}

static uint64_t *stream_sources(sys *s, size_t *n)
{
    uint64_t *out = NULL;
    size_t cap = 0;
    *n = 0;
    cp_stream_desc *d;
    CPT_EQ_INT(cp_streams_describe(s->streams, CP_SLICE("cdc"), &d, NULL), CP_OK);
    for (size_t i = 0; i < d->nshards; i++) {
        uint64_t pos, last = 0;
        CPT_EQ_INT(cp_streams_iterator(s->streams, CP_SLICE("cdc"), d->shards[i].index,
                                       CP_ITER_TRIM_HORIZON, CP_SLICE(""), 0, &pos, NULL),
                   CP_OK);
        cp_stream_read r = CP_STREAM_READ_INIT;
        for (;;) {
            CPT_EQ_INT(cp_streams_read(s->streams, CP_SLICE("cdc"), d->shards[i].index, pos,
                                       5000, 8 << 20, &r, NULL),
                       CP_OK);
            if (r.batch.n == 0) {
                break;
            }
            for (size_t k = 0; k < r.batch.n; k++) {
                CPT_CHECK(r.batch.recs[k].source_id > last); /* commit order per shard */
                last = r.batch.recs[k].source_id;
                if (*n == cap) {
                    cap = cap ? cap * 2 : 1024;
                    out = cp_realloc(out, cap * sizeof(*out));
                }
                out[(*n)++] = last;
            }
            pos = r.next_pos;
        }
        cp_stream_read_free(&r);
    }
    cp_stream_desc_free(d);
    qsort(out, *n, sizeof(*out), cmp_u64);
    return out;
}

static void relay_survives_kill_9(void)
{
    const char *dir = cpt_tmpdir();
    unsigned seed = (unsigned) time(NULL);
    printf("seed %u\n", seed);
    srand(seed);
    long checked = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        CPT_EQ_INT(pipe(fds), 0);
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            sys s;
            if (sys_open(dir, &s) != 0) {
                _exit(2);
            }
            pthread_t th[THREADS];
            child_arg args[THREADS];
            for (int i = 0; i < THREADS; i++) {
                args[i] = (child_arg){s.db, round, i, fds[1]};
                pthread_create(&th[i], NULL, child_writer, &args[i]);
            }
            pthread_join(th[0], NULL);
            _exit(5);
        }
        close(fds[1]);
        int kill_after = 1 + rand() % 2000, seen = 0;
        char c;
        while (read(fds[0], &c, 1) == 1) {
            if (++seen == kill_after) {
                kill(pid, SIGKILL);
            }
        }
        close(fds[0]);
        int st;
        waitpid(pid, &st, 0);
        CPT_CHECK(WIFSIGNALED(st));

        sys s;
        CPT_EQ_INT(sys_open(dir, &s), 0);
        CPT_EQ_INT(cp_outbox_sync(s.ob, 30000), CP_OK);
        size_t nlog, nstream;
        uint64_t *want = log_sources(&s, &nlog);
        uint64_t *got = stream_sources(&s, &nstream);
        if (nlog != nstream) {
            CPT_FAIL_AT("round %d: %zu change records but %zu stream records", round, nlog,
                        nstream);
        }
        for (size_t i = 0; i < nlog; i++) {
            if (want[i] != got[i]) {
                CPT_FAIL_AT("round %d: change %llu missing or duplicated", round,
                            (unsigned long long) want[i]);
            }
        }
        checked = (long) nlog;
        cp_free(want);
        cp_free(got);
        cp_outbox_stop(s.ob);
        cp_streams_close(s.streams);
        cp_db_close(s.db);
    }
    printf("%d crashes, %ld change records in the stream exactly once\n", ROUNDS, checked);
}

CPT_LIST = {
    {"relay_survives_kill_9", relay_survives_kill_9},
    {0},
};
