/* SPDX-License-Identifier: MIT */
/*
 * Crash test of the transactional outbox. A child process writes through the store from
 * several threads and reports each acknowledged write on a pipe; the parent kills it with
 * SIGKILL after a random number of acknowledgements, reopens the store (recovery) and checks:
 *   - replaying the change log from its start reproduces exactly the items in LMDB (no write
 *     without its record, no record without its write, no record twice);
 *   - every acknowledged write is reflected (its version or a later one of the same key).
 * Repeated many times on the same directory, so recovery also runs on recovered state.
 */
#include "../unit/cpt.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "core/mem.h"
#include "core/seglog.h"
#include "table/change.h"
#include "core/hash.h"
#include "table/store.h"

enum { THREADS = 4, ROUNDS = 60 };

/* Each key has a fixed script derived from its number: 1 + n % 4 puts (versions 1..), then a
 * delete when n % 3 == 0. So the checker knows what may legitimately follow an ack. */
static int script_puts(int n)
{
    return 1 + n % 4;
}

static int script_deletes(int n)
{
    return n % 3 == 0;
}

static void build_item(cp_buf *out, int round, int thread, int n, int version)
{
    char pk[64];
    snprintf(pk, sizeof(pk), "r%d-t%d-k%d", round, thread, n);
    cp_item_builder b;
    cp_item_builder_init(&b, out);
    cp_item_begin(&b);
    cp_item_put_name(&b, CP_SLICE("pk"));
    cp_item_put_scalar(&b, CP_AV_S, cp_slice_str(pk));
    if (version > 0) {
        char v[16];
        snprintf(v, sizeof(v), "%d", version);
        cp_item_put_name(&b, CP_SLICE("v"));
        cp_item_put_scalar(&b, CP_AV_N, cp_slice_str(v));
        cp_item_put_name(&b, CP_SLICE("pad"));
        cp_item_put_scalar(&b, CP_AV_S, CP_SLICE("0123456789abcdef0123456789abcdef"));
    }
    cp_item_end(&b);
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
        int steps = script_puts(n) + script_deletes(n);
        for (int s = 1; s <= steps; s++) {
            int del = s > script_puts(n);
            cp_buf_reset(&item);
            build_item(&item, a->round, a->thread, n, del ? 0 : s);
            cp_write_op op = {.kind = del ? CP_WRITE_DELETE : CP_WRITE_PUT, .table = "T",
                              .item = cp_buf_slice(&item)};
            if (cp_db_write(a->db, &op, 1, 0, NULL) != CP_OK || op.rc != CP_OK) {
                _exit(3);
            }
            char line[64];
            int len = snprintf(line, sizeof(line), "%d %d %d %d\n", a->round, a->thread, n,
                               del ? -1 : s);
            if (write(a->fd, line, (size_t) len) != len) {
                _exit(4);
            }
        }
    }
    return NULL;
}

static void run_child(const char *dir, int round, int fd)
{
    cp_db *db;
    cp_db_opts o = {.dir = dir};
    if (cp_db_open(&o, &db, NULL) != CP_OK) {
        _exit(2);
    }
    cp_table_info t = {0};
    if (cp_db_get_table(db, "T", &t, NULL) != CP_OK) {
        snprintf(t.name, sizeof(t.name), "T");
        snprintf(t.key.hash_name, sizeof(t.key.hash_name), "pk");
        t.key.hash_type = CP_AV_S;
        if (cp_db_create_table(db, &t, NULL) != CP_OK) {
            _exit(2);
        }
    }
    cp_table_info_clear(&t);
    pthread_t th[THREADS];
    child_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (child_arg){db, round, i, fd};
        pthread_create(&th[i], NULL, child_writer, &args[i]);
    }
    pthread_join(th[0], NULL); /* never returns: the parent kills us */
    _exit(5);
}

/* The model: key -> latest encoded item, rebuilt from the change log. A simple open-addressed
 * table keyed by the pk string. */
typedef struct entry {
    char *pk;
    cp_buf item; /* empty when deleted */
    int acked;   /* highest acknowledged version; -1 when an ack said deleted */
    int has_ack;
} entry;

typedef struct model {
    entry *e;
    size_t cap, n;
} model;

static entry *model_get(model *m, cp_slice pk, int create)
{
    if (m->n * 2 >= m->cap) {
        model old = *m;
        m->cap = m->cap ? m->cap * 2 : 4096;
        m->e = cp_calloc(m->cap, sizeof(entry));
        m->n = 0;
        for (size_t i = 0; i < old.cap; i++) {
            if (old.e[i].pk) {
                entry *d = model_get(m, cp_slice_str(old.e[i].pk), 1);
                free(d->pk);
                *d = old.e[i];
            }
        }
        cp_free(old.e);
    }
    size_t h = cp_fnv1a64(pk.p, pk.len) & (m->cap - 1);
    while (m->e[h].pk) {
        if (strlen(m->e[h].pk) == pk.len && memcmp(m->e[h].pk, pk.p, pk.len) == 0) {
            return &m->e[h];
        }
        h = (h + 1) & (m->cap - 1);
    }
    if (!create) {
        return NULL;
    }
    m->e[h].pk = cp_strndup(pk.p, pk.len);
    m->n++;
    return &m->e[h];
}

static cp_slice pk_of(cp_slice item)
{
    cp_av v;
    CPT_CHECK(cp_item_find(item, CP_SLICE("pk"), &v));
    return cp_av_bytes(v);
}

static int version_of(cp_slice item)
{
    cp_av v;
    CPT_CHECK(cp_item_find(item, CP_SLICE("v"), &v));
    return atoi(cp_av_bytes(v).p);
}

static void replay_log(cp_db *db, model *m)
{
    cp_seglog_reader *r;
    CPT_EQ_INT(cp_seglog_reader_open(cp_db_log(db), 0, &r, NULL), CP_OK);
    cp_slice p;
    uint64_t pos;
    int64_t ts;
    while (cp_seglog_read(r, &p, &pos, &ts, NULL) == CP_OK) {
        cp_change c;
        CPT_EQ_INT(cp_change_decode(p, &c), CP_OK);
        entry *e = model_get(m, pk_of(c.keys), 1);
        switch (c.event) {
        case CP_CHANGE_INSERT:
            CPT_CHECK(e->item.len == 0); /* a second INSERT would be a duplicate record */
            break;
        case CP_CHANGE_MODIFY:
        case CP_CHANGE_REMOVE:
            /* The old image must be exactly what the log said before: no record missing. */
            CPT_CHECK(e->item.len > 0);
            CPT_CHECK(cp_item_equal(cp_buf_slice(&e->item), c.old_image));
            break;
        }
        cp_buf_reset(&e->item);
        if (c.event != CP_CHANGE_REMOVE) {
            cp_buf_append(&e->item, c.new_image.p, c.new_image.len);
        }
    }
    cp_seglog_reader_close(r);
}

static int check_visit(void *ctx, cp_slice item)
{
    model *m = ctx;
    entry *e = model_get(m, pk_of(item), 0);
    if (!e || !cp_item_equal(cp_buf_slice(&e->item), item)) {
        CPT_FAIL_AT("LMDB holds an item the change log does not explain");
    }
    e->has_ack |= 2; /* seen in LMDB */
    return 0;
}

static void crash_and_recover_many_times(void)
{
    const char *dir = cpt_tmpdir();
    unsigned seed = (unsigned) time(NULL);
    printf("seed %u\n", seed);
    srand(seed);
    model acks = {0};
    long total_acks = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        CPT_EQ_INT(pipe(fds), 0);
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            run_child(dir, round, fds[1]);
        }
        close(fds[1]);
        FILE *f = fdopen(fds[0], "r");
        int kill_after = 1 + rand() % 1500, seen = 0, killed = 0;
        int r, t, n, v;
        while (fscanf(f, "%d %d %d %d\n", &r, &t, &n, &v) == 4) {
            char pk[64];
            snprintf(pk, sizeof(pk), "r%d-t%d-k%d", r, t, n);
            entry *e = model_get(&acks, cp_slice_str(pk), 1);
            e->acked = v;
            e->has_ack = 1;
            total_acks++;
            if (++seen == kill_after && !killed) {
                kill(pid, SIGKILL); /* acks already in the pipe are still read below */
                killed = 1;
            }
        }
        fclose(f);
        int st;
        waitpid(pid, &st, 0);
        CPT_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

        cp_db *db;
        cp_db_opts o = {.dir = dir};
        cp_err err = {0};
        if (cp_db_open(&o, &db, &err) != CP_OK) {
            CPT_FAIL_AT("reopen after crash %d: %s", round, err.msg);
        }
        model m = {0};
        replay_log(db, &m);
        cp_db_scan s = {.table = "T"};
        CPT_EQ_INT(cp_db_scan_items(db, &s, check_visit, &m, NULL), CP_OK);
        for (size_t i = 0; i < m.cap; i++) {
            entry *e = &m.e[i];
            if (e->pk && e->item.len && !(e->has_ack & 2)) {
                CPT_FAIL_AT("change log has %s but LMDB lost it", e->pk);
            }
        }
        /* Every acknowledged write is there, or a later step of the same key's script. */
        for (size_t i = 0; i < acks.cap; i++) {
            entry *a = &acks.e[i];
            if (!a->pk) {
                continue;
            }
            entry *e = model_get(&m, cp_slice_str(a->pk), 0);
            CPT_CHECK(e != NULL);
            int kn = atoi(strrchr(a->pk, 'k') + 1);
            if (e->item.len == 0) {
                CPT_CHECK(a->acked == -1 || script_deletes(kn));
            } else {
                CPT_CHECK(a->acked != -1);
                CPT_CHECK(version_of(cp_buf_slice(&e->item)) >= a->acked);
            }
        }
        for (size_t i = 0; i < m.cap; i++) {
            free(m.e[i].pk);
            cp_buf_free(&m.e[i].item);
        }
        cp_free(m.e);
        cp_db_close(db);
    }
    printf("%d crashes, %ld acknowledged writes verified\n", ROUNDS, total_acks);
    for (size_t i = 0; i < acks.cap; i++) {
        free(acks.e[i].pk);
        cp_buf_free(&acks.e[i].item);
    }
    cp_free(acks.e);
}

CPT_LIST = {
    {"crash_and_recover_many_times", crash_and_recover_many_times},
    {0},
};
