/* SPDX-License-Identifier: MIT */
/*
 * stream: the Kinesis stream manager (see stream.h). Metadata lives in memory under a
 * per-stream writer-preferring rwlock (puts/reads share it; resharding and retention changes
 * take it exclusively) and on disk as stream.json; record storage goes through the backend ops.
 */
#include "stream/stream.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"
#include "stream/backends/embedded.h"
#include "stream/stream_int.h"

#define META_FILE       "stream.json"
#define CKPT_FILE       "checkpoints.json"
#define DEF_SHARD_LIMIT 500
#define DEF_RECORD_MAX  ((size_t) 1 << 20)
#define HOUR_MS         INT64_C(3600000)

/* ---------------------------------------------------------------- file helpers (stream_int.h) */

int cp__stream_rmtree(const char *path, cp_err *err)
{
    int rc = cp_fs_rm_rf(path);
    return rc == CP_OK ? CP_OK
                       : cp_err_set(err, rc, "could not remove stream storage: %s", strerror(-rc));
}

int cp__stream_write_atomic(const char *dir, const char *name, const void *p, size_t len,
                            int no_fsync, cp_err *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return cp_fs_write_atomic(path, p, len, no_fsync, err);
}

/* ---------------------------------------------------------------- names */

const char *cp_stream_status_name(cp_stream_status s)
{
    switch (s) {
    case CP_STREAM_CREATING:
        return "CREATING";
    case CP_STREAM_ACTIVE:
        return "ACTIVE";
    case CP_STREAM_UPDATING:
        return "UPDATING";
    case CP_STREAM_DELETING:
        return "DELETING";
    }
    return "ACTIVE";
}

const char *cp_stream_mode_name(cp_stream_mode m)
{
    return m == CP_STREAM_ON_DEMAND ? "ON_DEMAND" : "PROVISIONED";
}

static const char *const iter_names[] = {"TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER",
                                         "AFTER_SEQUENCE_NUMBER", "AT_TIMESTAMP"};

const char *cp_stream_iter_type_name(cp_stream_iter_type t)
{
    return (unsigned) t < 5 ? iter_names[t] : "TRIM_HORIZON";
}

int cp_stream_iter_type_parse(cp_slice s, cp_stream_iter_type *out)
{
    for (int i = 0; i < 5; i++) {
        if (cp_slice_eq(s, cp_slice_str(iter_names[i]))) {
            *out = (cp_stream_iter_type) i;
            return CP_OK;
        }
    }
    return CP_EINVAL;
}

int cp_stream_name_check(cp_slice name, cp_err *err)
{
    int ok = name.len >= 1 && name.len <= CP_STREAM_NAME_MAX;
    for (size_t i = 0; ok && i < name.len; i++) {
        char c = name.p[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '-';
    }
    /* "." and ".." match the AWS pattern but would name the directories themselves. */
    if (ok && (cp_slice_eq(name, CP_SLICE(".")) || cp_slice_eq(name, CP_SLICE("..")))) {
        ok = 0;
    }
    if (!ok) {
        int shown = name.len > 140 ? 140 : (int) name.len;
        return cp_err_set(err, CP_EINVAL,
                          "1 validation error detected: Value '%.*s' at 'streamName' failed to "
                          "satisfy constraint: Member must satisfy regular expression pattern: "
                          "[a-zA-Z0-9_.-]+ and have length between 1 and 128",
                          shown, name.p ? name.p : "");
    }
    return CP_OK;
}

/* ---------------------------------------------------------------- model */

typedef struct shard_meta {
    uint32_t index;
    cp_hashkey start, end;
    int open;
    int expired;         /* closed and past retention: storage dropped, no longer listed */
    uint64_t ending_seq; /* when closed */
    int64_t closed_ms;
    uint32_t *parents;
    uint32_t nparents;
} shard_meta;

typedef struct ckpt {
    char *consumer;
    uint32_t shard;
    uint64_t seq;
} ckpt;

typedef struct stream {
    char name[CP_STREAM_NAME_MAX + 1];
    char *dir;
    cp_stream_mode mode;
    int64_t created_ms;
    cp_stream_status status; /* under the manager's mu */
    int refs;                /* under the manager's mu */
    size_t open_count;       /* under the manager's mu (shard limit accounting) */

    pthread_rwlock_t lock; /* shards, map, retention */
    int retention_hours;
    uint32_t next_index;
    shard_meta *shards;
    size_t nshards;
    cp_shard_map *map; /* the open shards */
    void *bctx;        /* backend context; NULL until opened */

    pthread_mutex_t ckpt_mu;
    ckpt *ckpts;
    size_t nckpts, ckpt_cap;
} stream;

struct cp_streams {
    char *root;
    cp_streams_opts o;
    const cp_stream_backend_ops *ops;
    pthread_mutex_t mu; /* streams[], statuses, refs, open_total */
    pthread_cond_t cv;  /* a ref was dropped */
    stream **streams;   /* by name */
    size_t n, cap;
    size_t open_total;
};

static void shards_free(shard_meta *sh, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cp_free(sh[i].parents);
    }
    cp_free(sh);
}

static void stream_free(stream *st)
{
    if (!st) {
        return;
    }
    shards_free(st->shards, st->nshards);
    cp_shard_map_free(st->map);
    for (size_t i = 0; i < st->nckpts; i++) {
        cp_free(st->ckpts[i].consumer);
    }
    cp_free(st->ckpts);
    cp_free(st->dir);
    pthread_rwlock_destroy(&st->lock);
    pthread_mutex_destroy(&st->ckpt_mu);
    cp_free(st);
}

static stream *stream_new(cp_streams *s, cp_slice name)
{
    stream *st = cp_calloc(1, sizeof(*st));
    memcpy(st->name, name.p, name.len);
    st->name[name.len] = 0;
    size_t dl = strlen(s->root) + name.len + 2;
    st->dir = cp_malloc(dl);
    snprintf(st->dir, dl, "%s/%s", s->root, st->name);
    st->retention_hours = CP_STREAM_RETENTION_DEF;
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* glibc prefers readers by default; a steady stream of puts must not starve a reshard. */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&st->lock, &a);
    pthread_rwlockattr_destroy(&a);
    pthread_mutex_init(&st->ckpt_mu, NULL);
    return st;
}

static shard_meta *shard_get(stream *st, uint32_t index)
{
    for (size_t i = 0; i < st->nshards; i++) {
        if (st->shards[i].index == index && !st->shards[i].expired) {
            return &st->shards[i];
        }
    }
    return NULL;
}

static int no_shard(const stream *st, uint32_t index, cp_err *err)
{
    char id[CP_SHARD_ID_MAX];
    cp_shard_id_format(index, id);
    return cp_err_set(err, CP_ENOTFOUND,
                      "Shard %s in stream %s under account 000000000000 does not exist", id,
                      st->name);
}

static int rebuild_map(stream *st, cp_err *err)
{
    size_t n = 0;
    cp_shard_range *r = cp_malloc((st->nshards ? st->nshards : 1) * sizeof(*r));
    for (size_t i = 0; i < st->nshards; i++) {
        if (st->shards[i].open) {
            r[n++] = (cp_shard_range){st->shards[i].index, st->shards[i].start, st->shards[i].end};
        }
    }
    cp_shard_map *m;
    int rc = cp_shard_map_from(r, n, &m, err);
    cp_free(r);
    if (rc == CP_OK) {
        cp_shard_map_free(st->map);
        st->map = m;
    }
    return rc;
}

static size_t count_open(const shard_meta *sh, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        k += sh[i].open != 0;
    }
    return k;
}

/* ---------------------------------------------------------------- metadata file */

static void put_u64_str(cp_buf *b, const char *key, uint64_t v)
{
    char tmp[24];
    snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    cp_json_put_kv_str(b, key, cp_slice_str(tmp));
}

/* u64 and ms values are written as strings: cJSON keeps numbers as doubles. */
static int write_meta(cp_streams *s, stream *st, cp_stream_status status, const shard_meta *sh,
                      size_t nsh, cp_err *err)
{
    cp_buf b = CP_BUF_INIT;
    cp_buf_puts(&b, "{\"version\":1,");
    cp_json_put_kv_str(&b, "name", cp_slice_str(st->name));
    cp_buf_putc(&b, ',');
    cp_json_put_kv_str(&b, "mode", cp_slice_str(cp_stream_mode_name(st->mode)));
    cp_buf_putc(&b, ',');
    cp_json_put_kv_str(&b, "status", cp_slice_str(cp_stream_status_name(status)));
    cp_buf_putc(&b, ',');
    put_u64_str(&b, "created_ms", (uint64_t) st->created_ms);
    cp_buf_printf(&b, ",\"retention_hours\":%d,\"next_index\":%" PRIu32 ",\"shards\":[",
                  st->retention_hours, st->next_index);
    for (size_t i = 0; i < nsh; i++) {
        char a[CP_HASHKEY_STR_MAX], z[CP_HASHKEY_STR_MAX];
        cp_hashkey_format(sh[i].start, a);
        cp_hashkey_format(sh[i].end, z);
        cp_buf_printf(&b, "%s{\"index\":%" PRIu32 ",", i ? "," : "", sh[i].index);
        cp_json_put_kv_str(&b, "start", cp_slice_str(a));
        cp_buf_putc(&b, ',');
        cp_json_put_kv_str(&b, "end", cp_slice_str(z));
        cp_buf_printf(&b, ",\"open\":%s,\"expired\":%s,", sh[i].open ? "true" : "false",
                      sh[i].expired ? "true" : "false");
        put_u64_str(&b, "ending_seq", sh[i].ending_seq);
        cp_buf_putc(&b, ',');
        put_u64_str(&b, "closed_ms", (uint64_t) sh[i].closed_ms);
        cp_buf_puts(&b, ",\"parents\":[");
        for (uint32_t k = 0; k < sh[i].nparents; k++) {
            cp_buf_printf(&b, "%s%" PRIu32, k ? "," : "", sh[i].parents[k]);
        }
        cp_buf_puts(&b, "]}");
    }
    cp_buf_puts(&b, "]}\n");
    int rc = cp__stream_write_atomic(st->dir, META_FILE, b.p, b.len, s->o.no_fsync, err);
    cp_buf_free(&b);
    return rc;
}

static int json_u64(const cJSON *obj, const char *key, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v) || !v->valuestring[0]) {
        return -1;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v->valuestring, &end, 10);
    if (errno || *end || v->valuestring[0] == '-') {
        return -1;
    }
    *out = x;
    return 0;
}

static int json_int(const cJSON *obj, const char *key, long long lo, long long hi, long long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < (double) lo || v->valuedouble > (double) hi) {
        return -1;
    }
    *out = (long long) v->valuedouble;
    return 0;
}

static const char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int read_file(const char *path, cp_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    char tmp[8192];
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof(tmp));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (r == 0) {
            break;
        }
        cp_buf_append(out, tmp, (size_t) r);
    }
    close(fd);
    return CP_OK;
}

/* Parse stream.json into st; *status gets the persisted status. */
static int parse_meta(stream *st, cp_slice text, cp_stream_status *status, cp_err *err)
{
    cJSON *j = cJSON_ParseWithLength(text.p, text.len);
    int ok = j != NULL;
    long long ver = 0, ret = 0, next = 0;
    uint64_t created = 0;
    const char *mode = NULL, *stat = NULL, *name = NULL;
    const cJSON *arr = NULL;
    if (ok) {
        name = json_str(j, "name");
        mode = json_str(j, "mode");
        stat = json_str(j, "status");
        arr = cJSON_GetObjectItemCaseSensitive(j, "shards");
        ok = json_int(j, "version", 1, 1, &ver) == 0 &&
             json_int(j, "retention_hours", CP_STREAM_RETENTION_MIN, CP_STREAM_RETENTION_MAX,
                      &ret) == 0 &&
             json_int(j, "next_index", 0, UINT32_MAX, &next) == 0 &&
             json_u64(j, "created_ms", &created) == 0 && name && strcmp(name, st->name) == 0 &&
             mode && stat && cJSON_IsArray(arr);
    }
    if (ok) {
        st->mode = strcmp(mode, "ON_DEMAND") == 0 ? CP_STREAM_ON_DEMAND : CP_STREAM_PROVISIONED;
        *status = strcmp(stat, "DELETING") == 0 ? CP_STREAM_DELETING : CP_STREAM_ACTIVE;
        st->retention_hours = (int) ret;
        st->next_index = (uint32_t) next;
        st->created_ms = (int64_t) created;
        int n = cJSON_GetArraySize(arr);
        st->shards = cp_calloc((size_t) (n ? n : 1), sizeof(*st->shards));
        for (int i = 0; ok && i < n; i++) {
            const cJSON *o = cJSON_GetArrayItem(arr, i);
            shard_meta *m = &st->shards[st->nshards++];
            long long idx = 0;
            const char *a = json_str(o, "start"), *z = json_str(o, "end");
            const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "open");
            const cJSON *ex = cJSON_GetObjectItemCaseSensitive(o, "expired");
            const cJSON *par = cJSON_GetObjectItemCaseSensitive(o, "parents");
            uint64_t closed = 0;
            ok = json_int(o, "index", 0, UINT32_MAX, &idx) == 0 && a && z &&
                 cp_hashkey_parse(cp_slice_str(a), &m->start, NULL) == CP_OK &&
                 cp_hashkey_parse(cp_slice_str(z), &m->end, NULL) == CP_OK && cJSON_IsBool(op) &&
                 cJSON_IsBool(ex) && cJSON_IsArray(par) &&
                 json_u64(o, "ending_seq", &m->ending_seq) == 0 &&
                 json_u64(o, "closed_ms", &closed) == 0;
            if (!ok) {
                break;
            }
            m->index = (uint32_t) idx;
            m->open = cJSON_IsTrue(op);
            m->expired = cJSON_IsTrue(ex);
            m->closed_ms = (int64_t) closed;
            int np = cJSON_GetArraySize(par);
            m->parents = cp_calloc((size_t) (np ? np : 1), sizeof(*m->parents));
            for (int k = 0; ok && k < np; k++) {
                const cJSON *pv = cJSON_GetArrayItem(par, k);
                ok = cJSON_IsNumber(pv) && pv->valuedouble >= 0 && pv->valuedouble <= UINT32_MAX;
                if (ok) {
                    m->parents[m->nparents++] = (uint32_t) pv->valuedouble;
                }
            }
        }
    }
    cJSON_Delete(j);
    if (!ok) {
        return cp_err_set(err, CP_ECORRUPT, "stream %s: metadata file is malformed", st->name);
    }
    return rebuild_map(st, err) == CP_OK
               ? CP_OK
               : cp_err_set(err, CP_ECORRUPT, "stream %s: open shards do not cover the key space",
                            st->name);
}

/* ---------------------------------------------------------------- checkpoint file */

static int write_ckpts(cp_streams *s, stream *st, cp_err *err)
{
    cp_buf b = CP_BUF_INIT;
    cp_buf_puts(&b, "{\"version\":1,\"checkpoints\":[");
    for (size_t i = 0; i < st->nckpts; i++) {
        cp_buf_puts(&b, i ? ",{" : "{");
        cp_json_put_kv_str(&b, "consumer", cp_slice_str(st->ckpts[i].consumer));
        cp_buf_printf(&b, ",\"shard\":%" PRIu32 ",", st->ckpts[i].shard);
        put_u64_str(&b, "seq", st->ckpts[i].seq);
        cp_buf_putc(&b, '}');
    }
    cp_buf_puts(&b, "]}\n");
    int rc = cp__stream_write_atomic(st->dir, CKPT_FILE, b.p, b.len, s->o.no_fsync, err);
    cp_buf_free(&b);
    return rc;
}

static void ckpt_put(stream *st, const char *consumer, size_t len, uint32_t shard, uint64_t seq)
{
    for (size_t i = 0; i < st->nckpts; i++) {
        if (st->ckpts[i].shard == shard && strlen(st->ckpts[i].consumer) == len &&
            memcmp(st->ckpts[i].consumer, consumer, len) == 0) {
            st->ckpts[i].seq = seq;
            return;
        }
    }
    if (st->nckpts == st->ckpt_cap) {
        st->ckpt_cap = st->ckpt_cap ? st->ckpt_cap * 2 : 8;
        st->ckpts = cp_realloc(st->ckpts, st->ckpt_cap * sizeof(*st->ckpts));
    }
    st->ckpts[st->nckpts++] = (ckpt){cp_strndup(consumer, len), shard, seq};
}

static int load_ckpts(stream *st, cp_err *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", st->dir, CKPT_FILE);
    cp_buf b = CP_BUF_INIT;
    int rc = read_file(path, &b);
    if (rc == -ENOENT) {
        cp_buf_free(&b);
        return CP_OK;
    }
    if (rc != CP_OK) {
        cp_buf_free(&b);
        return cp_err_set(err, rc, "stream %s: cannot read checkpoints", st->name);
    }
    cJSON *j = cJSON_ParseWithLength(b.p, b.len);
    const cJSON *arr = j ? cJSON_GetObjectItemCaseSensitive(j, "checkpoints") : NULL;
    int ok = cJSON_IsArray(arr);
    for (int i = 0; ok && i < cJSON_GetArraySize(arr); i++) {
        const cJSON *o = cJSON_GetArrayItem(arr, i);
        const char *c = json_str(o, "consumer");
        long long shard;
        uint64_t seq;
        ok = c && c[0] && json_int(o, "shard", 0, UINT32_MAX, &shard) == 0 &&
             json_u64(o, "seq", &seq) == 0;
        if (ok) {
            ckpt_put(st, c, strlen(c), (uint32_t) shard, seq);
        }
    }
    cJSON_Delete(j);
    cp_buf_free(&b);
    return ok ? CP_OK
              : cp_err_set(err, CP_ECORRUPT, "stream %s: checkpoint file is malformed", st->name);
}

/* ---------------------------------------------------------------- registry */

/* Position of name in s->streams (or where it would go); *found set. mu held. */
static size_t find_pos(cp_streams *s, cp_slice name, int *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cp_slice_cmp(cp_slice_str(s->streams[mid]->name), name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = 0;
    return lo;
}

static void insert_at(cp_streams *s, size_t at, stream *st)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->streams = cp_realloc(s->streams, s->cap * sizeof(*s->streams));
    }
    memmove(s->streams + at + 1, s->streams + at, (s->n - at) * sizeof(*s->streams));
    s->streams[at] = st;
    s->n++;
}

static void remove_stream(cp_streams *s, stream *st)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->streams[i] == st) {
            memmove(s->streams + i, s->streams + i + 1, (s->n - i - 1) * sizeof(*s->streams));
            s->n--;
            return;
        }
    }
}

static int not_found(cp_slice name, cp_err *err)
{
    return cp_err_set(err, CP_ENOTFOUND, "Stream %.*s under account 000000000000 not found.",
                      (int) (name.len > 128 ? 128 : name.len), name.p ? name.p : "");
}

/* Take a reference on an ACTIVE (or, with allow_deleting, DELETING) stream. */
static int acquire(cp_streams *s, cp_slice name, int allow_deleting, stream **out, cp_err *err)
{
    pthread_mutex_lock(&s->mu);
    int found;
    size_t at = find_pos(s, name, &found);
    stream *st = found ? s->streams[at] : NULL;
    if (!st || st->status == CP_STREAM_CREATING ||
        (st->status == CP_STREAM_DELETING && !allow_deleting)) {
        pthread_mutex_unlock(&s->mu);
        return not_found(name, err);
    }
    st->refs++;
    pthread_mutex_unlock(&s->mu);
    *out = st;
    return CP_OK;
}

static void release(cp_streams *s, stream *st)
{
    pthread_mutex_lock(&s->mu);
    st->refs--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- open / close */

static int backend_open(cp_streams *s, stream *st, cp_err *err)
{
    cp_stream_backend_args a = {st->dir, st->name, s->o.backend_opts};
    return s->ops->open(&a, &st->bctx, err);
}


/* Reopen one stream directory, or remove it when it is the leftover of an uncommitted create or
 * finish its interrupted delete. */
static int load_stream(cp_streams *s, const char *name, cp_err *err)
{
    stream *st = stream_new(s, cp_slice_str(name));
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", st->dir, META_FILE);
    cp_buf b = CP_BUF_INIT;
    int rc = read_file(path, &b);
    if (rc == -ENOENT) {
        /* No metadata: a create that never committed. Nothing was acknowledged from it. */
        cp_buf_free(&b);
        rc = cp__stream_rmtree(st->dir, err);
        stream_free(st);
        return rc;
    }
    cp_stream_status status = CP_STREAM_ACTIVE;
    if (rc != CP_OK) {
        rc = cp_err_set(err, rc, "stream %s: cannot read metadata", name);
    } else {
        rc = parse_meta(st, cp_buf_slice(&b), &status, err);
    }
    cp_buf_free(&b);
    if (rc == CP_OK) {
        rc = backend_open(s, st, err);
    }
    if (rc == CP_OK && status == CP_STREAM_DELETING) {
        /* An interrupted DeleteStream: finish it. */
        void *ctx = st->bctx;
        st->bctx = NULL;
        rc = s->ops->destroy(ctx, err);
        if (rc == CP_OK) {
            rc = cp__stream_rmtree(st->dir, err);
        }
        stream_free(st);
        return rc;
    }
    for (size_t i = 0; rc == CP_OK && i < st->nshards; i++) {
        if (!st->shards[i].expired) {
            rc = s->ops->add_shard(st->bctx, st->shards[i].index, err);
        }
    }
    if (rc == CP_OK) {
        rc = load_ckpts(st, err);
    }
    if (rc != CP_OK) {
        if (st->bctx) {
            s->ops->close(st->bctx);
        }
        stream_free(st);
        return rc;
    }
    st->status = CP_STREAM_ACTIVE;
    st->open_count = count_open(st->shards, st->nshards);
    int found;
    size_t at = find_pos(s, cp_slice_str(st->name), &found);
    insert_at(s, at, st);
    s->open_total += st->open_count;
    return CP_OK;
}

int cp_streams_open(const char *data_dir, const cp_streams_opts *opts, cp_streams **out,
                    cp_err *err)
{
    *out = NULL;
    cp_streams *s = cp_calloc(1, sizeof(*s));
    if (opts) {
        s->o = *opts;
    }
    s->ops = s->o.backend ? s->o.backend : &cp_stream_backend_embedded;
    if (s->ops->abi < 1 || !s->ops->open || !s->ops->add_shard || !s->ops->append ||
        !s->ops->read || !s->ops->seek_time || !s->ops->state || !s->ops->last_source ||
        !s->ops->destroy || !s->ops->close) {
        cp_free(s);
        return cp_err_set(err, CP_EINVAL, "stream backend is missing required callbacks");
    }
    if (!s->o.shard_limit) {
        s->o.shard_limit = DEF_SHARD_LIMIT;
    }
    if (!s->o.max_record_bytes) {
        s->o.max_record_bytes = DEF_RECORD_MAX;
    }
    size_t rl = strlen(data_dir) + sizeof("/streams");
    s->root = cp_malloc(rl);
    snprintf(s->root, rl, "%s/streams", data_dir);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);

    int rc = CP_OK;
    if (cp_fs_mkdir_p(s->root) != CP_OK) {
        rc = cp_err_set(err, -errno, "cannot create the streams directory: %s", strerror(errno));
    }
    DIR *d = rc == CP_OK ? opendir(s->root) : NULL;
    if (rc == CP_OK && !d) {
        rc = cp_err_set(err, -errno, "cannot list the streams directory: %s", strerror(errno));
    }
    struct dirent *de;
    while (rc == CP_OK && (de = readdir(d)) != NULL) {
        if (cp_stream_name_check(cp_slice_str(de->d_name), NULL) != CP_OK) {
            continue;
        }
        char p[4096];
        struct stat sb;
        snprintf(p, sizeof(p), "%s/%s", s->root, de->d_name);
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            rc = load_stream(s, de->d_name, err);
        }
    }
    if (d) {
        closedir(d);
    }
    if (rc != CP_OK) {
        cp_streams_close(s);
        return rc;
    }
    *out = s;
    return CP_OK;
}

void cp_streams_close(cp_streams *s)
{
    if (!s) {
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (s->streams[i]->bctx) {
            s->ops->close(s->streams[i]->bctx);
        }
        stream_free(s->streams[i]);
    }
    cp_free(s->streams);
    cp_free(s->root);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    cp_free(s);
}

/* ---------------------------------------------------------------- create / delete */

static int limit_error(cp_streams *s, size_t want, cp_err *err)
{
    return cp_err_set(err, CP_ELIMIT,
                      "This request would exceed the shard limit for the account 000000000000 "
                      "in local. Current shard count for the account: %zu. Limit: %" PRIu32
                      ". Number of additional shards that would have resulted from this "
                      "request: %zu.",
                      s->open_total, s->o.shard_limit, want);
}

int cp_streams_create(cp_streams *s, cp_slice name, cp_stream_mode mode, uint32_t shard_count,
                      cp_err *err)
{
    int rc = cp_stream_name_check(name, err);
    if (rc != CP_OK) {
        return rc;
    }
    if (mode == CP_STREAM_ON_DEMAND) {
        if (shard_count != 0) {
            return cp_err_set(err, CP_EINVAL,
                              "ShardCount is not expected when "
                              "StreamMode=ON_DEMAND");
        }
        shard_count = CP_STREAM_ON_DEMAND_SHARDS;
    } else if (shard_count == 0) {
        return cp_err_set(err, CP_EINVAL,
                          "ShardCount must be at least 1 for PROVISIONED "
                          "streams.");
    }

    pthread_mutex_lock(&s->mu);
    int found;
    size_t at = find_pos(s, name, &found);
    if (found) {
        pthread_mutex_unlock(&s->mu);
        return cp_err_set(err, CP_EEXIST,
                          "Stream %.*s under account 000000000000 already "
                          "exists.",
                          (int) name.len, name.p);
    }
    if (s->open_total + shard_count > s->o.shard_limit) {
        rc = limit_error(s, shard_count, err);
        pthread_mutex_unlock(&s->mu);
        return rc;
    }
    /* A CREATING placeholder reserves the name and the shards while we work unlocked. */
    stream *st = stream_new(s, name);
    st->status = CP_STREAM_CREATING;
    st->refs = 1;
    st->open_count = shard_count;
    st->mode = mode;
    st->created_ms = cp_clock_now_ms();
    insert_at(s, at, st);
    s->open_total += shard_count;
    pthread_mutex_unlock(&s->mu);

    st->nshards = shard_count;
    st->next_index = shard_count;
    st->shards = cp_calloc(shard_count, sizeof(*st->shards));
    for (uint32_t i = 0; i < shard_count; i++) {
        st->shards[i].index = i;
        st->shards[i].open = 1;
        cp_shard_even_range(shard_count, i, &st->shards[i].start, &st->shards[i].end);
    }
    rc = rebuild_map(st, err);
    /* A directory without stream.json is a create that never committed; clear it. */
    if (rc == CP_OK) {
        rc = cp__stream_rmtree(st->dir, err);
    }
    if (rc == CP_OK && mkdir(st->dir, 0755) != 0) {
        rc = cp_err_set(err, -errno, "cannot create stream directory: %s", strerror(errno));
    }
    if (rc == CP_OK) {
        rc = backend_open(s, st, err);
    }
    for (uint32_t i = 0; rc == CP_OK && i < shard_count; i++) {
        rc = s->ops->add_shard(st->bctx, i, err);
    }
    if (rc == CP_OK) {
        rc = write_meta(s, st, CP_STREAM_ACTIVE, st->shards, st->nshards, err); /* commit */
    }
    if (rc != CP_OK) {
        if (st->bctx) {
            s->ops->destroy(st->bctx, NULL);
            st->bctx = NULL;
        }
        cp__stream_rmtree(st->dir, NULL);
    }
    pthread_mutex_lock(&s->mu);
    st->refs--;
    if (rc == CP_OK) {
        st->status = CP_STREAM_ACTIVE;
    } else {
        remove_stream(s, st);
        s->open_total -= shard_count;
    }
    pthread_mutex_unlock(&s->mu);
    if (rc != CP_OK) {
        stream_free(st);
    }
    return rc;
}

int cp_streams_delete(cp_streams *s, cp_slice name, cp_err *err)
{
    pthread_mutex_lock(&s->mu);
    int found;
    size_t at = find_pos(s, name, &found);
    stream *st = found ? s->streams[at] : NULL;
    if (!st || st->status != CP_STREAM_ACTIVE) {
        pthread_mutex_unlock(&s->mu);
        return not_found(name, err);
    }
    st->status = CP_STREAM_DELETING; /* from now on acquire() refuses it */
    st->refs++;
    pthread_mutex_unlock(&s->mu);

    /* Persist the intent first: a crash from here on finishes the delete at the next open. */
    pthread_rwlock_wrlock(&st->lock);
    int rc = write_meta(s, st, CP_STREAM_DELETING, st->shards, st->nshards, err);
    pthread_rwlock_unlock(&st->lock);
    if (rc != CP_OK) {
        pthread_mutex_lock(&s->mu);
        st->status = CP_STREAM_ACTIVE;
        st->refs--;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return rc;
    }

    /* Wait until every call that took a reference before the status flip has finished. */
    pthread_mutex_lock(&s->mu);
    while (st->refs > 1) {
        pthread_cond_wait(&s->cv, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);

    void *ctx = st->bctx;
    st->bctx = NULL;
    rc = s->ops->destroy(ctx, err);
    int rc2 = cp__stream_rmtree(st->dir, rc == CP_OK ? err : NULL);
    pthread_mutex_lock(&s->mu);
    remove_stream(s, st);
    s->open_total -= st->open_count;
    pthread_mutex_unlock(&s->mu);
    stream_free(st);
    return rc != CP_OK ? rc : rc2;
}

int cp_streams_list(cp_streams *s, cp_stream_summary **out, size_t *n, cp_err *err)
{
    (void) err;
    pthread_mutex_lock(&s->mu);
    *n = 0;
    *out = s->n ? cp_calloc(s->n, sizeof(**out)) : NULL;
    for (size_t i = 0; i < s->n; i++) {
        const stream *st = s->streams[i];
        if (st->status == CP_STREAM_CREATING) {
            continue; /* not committed yet */
        }
        cp_stream_summary *d = &(*out)[(*n)++];
        snprintf(d->name, sizeof(d->name), "%s", st->name);
        d->status = st->status;
        d->mode = st->mode;
        d->created_ms = st->created_ms;
    }
    pthread_mutex_unlock(&s->mu);
    return CP_OK;
}

/* ---------------------------------------------------------------- describe */

int cp_streams_describe(cp_streams *s, cp_slice name, cp_stream_desc **out, cp_err *err)
{
    *out = NULL;
    stream *st;
    int rc = acquire(s, name, 1, &st, err);
    if (rc != CP_OK) {
        return rc;
    }
    cp_stream_desc *d = cp_calloc(1, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%s", st->name);
    pthread_mutex_lock(&s->mu);
    d->status = st->status;
    pthread_mutex_unlock(&s->mu);
    d->mode = st->mode;
    d->created_ms = st->created_ms;

    pthread_rwlock_rdlock(&st->lock);
    d->retention_hours = st->retention_hours;
    d->shards = cp_calloc(st->nshards ? st->nshards : 1, sizeof(*d->shards));
    for (size_t i = 0; i < st->nshards; i++) {
        const shard_meta *m = &st->shards[i];
        if (m->expired) {
            continue; /* AWS omits closed shards past retention */
        }
        cp_stream_shard_desc *x = &d->shards[d->nshards++];
        x->index = m->index;
        cp_shard_id_format(m->index, x->id);
        x->start = m->start;
        x->end = m->end;
        cp_hashkey_format(m->start, x->start_key);
        cp_hashkey_format(m->end, x->end_key);
        cp_seq_format(m->index, 0, x->starting_seq);
        if (!m->open) {
            cp_seq_format(m->index, m->ending_seq, x->ending_seq);
        }
        x->open = m->open;
        d->open_shards += m->open != 0;
        x->nparents = m->nparents;
        for (uint32_t k = 0; k < m->nparents && k < 8; k++) {
            x->parents[k] = m->parents[k];
        }
        x->parent = m->nparents > 0 ? (int64_t) m->parents[0] : -1;
        x->adjacent_parent = m->nparents > 1 ? (int64_t) m->parents[1] : -1;
    }
    pthread_rwlock_unlock(&st->lock);
    release(s, st);
    *out = d;
    return CP_OK;
}

void cp_stream_desc_free(cp_stream_desc *d)
{
    if (d) {
        cp_free(d->shards);
        cp_free(d);
    }
}

/* ---------------------------------------------------------------- retention */

static int set_retention(cp_streams *s, cp_slice name, int hours, int increase, cp_err *err)
{
    if (hours < CP_STREAM_RETENTION_MIN) {
        return cp_err_set(err, CP_EINVAL,
                          "Minimum allowed retention period is %d hours. "
                          "Requested retention period (%d hours) is too short.",
                          CP_STREAM_RETENTION_MIN, hours);
    }
    if (hours > CP_STREAM_RETENTION_MAX) {
        return cp_err_set(err, CP_EINVAL,
                          "Maximum allowed retention period is %d hours. "
                          "Requested retention period (%d hours) is too long.",
                          CP_STREAM_RETENTION_MAX, hours);
    }
    stream *st;
    int rc = acquire(s, name, 0, &st, err);
    if (rc != CP_OK) {
        return rc;
    }
    pthread_rwlock_wrlock(&st->lock);
    int old = st->retention_hours;
    if (increase && hours < old) {
        rc = cp_err_set(err, CP_EINVAL,
                        "Requested retention period (%d hours) for stream %s "
                        "can not be shorter than existing retention period (%d hours). Use "
                        "DecreaseRetentionPeriod API.",
                        hours, st->name, old);
    } else if (!increase && hours > old) {
        rc = cp_err_set(err, CP_EINVAL,
                        "Requested retention period (%d hours) for stream %s "
                        "can not be longer than existing retention period (%d hours). Use "
                        "IncreaseRetentionPeriod API.",
                        hours, st->name, old);
    } else if (hours != old) {
        st->retention_hours = hours;
        rc = write_meta(s, st, CP_STREAM_ACTIVE, st->shards, st->nshards, err);
        if (rc != CP_OK) {
            st->retention_hours = old;
        }
    }
    pthread_rwlock_unlock(&st->lock);
    release(s, st);
    return rc;
}

int cp_streams_increase_retention(cp_streams *s, cp_slice name, int hours, cp_err *err)
{
    return set_retention(s, name, hours, 1, err);
}

int cp_streams_decrease_retention(cp_streams *s, cp_slice name, int hours, cp_err *err)
{
    return set_retention(s, name, hours, 0, err);
}

/* Trim one stream and expire its closed shards that are entirely past retention. */
static int trim_stream(cp_streams *s, stream *st, int64_t now_ms, cp_err *err)
{
    int rc = CP_OK;
    pthread_rwlock_rdlock(&st->lock);
    int64_t before = now_ms - st->retention_hours * HOUR_MS;
    int expire = 0;
    for (size_t i = 0; i < st->nshards; i++) {
        shard_meta *m = &st->shards[i];
        if (m->expired) {
            continue;
        }
        if (s->ops->trim) {
            int r = s->ops->trim(st->bctx, m->index, before, err);
            rc = rc == CP_OK ? r : rc;
        }
        cp_stream_shard_state ss;
        if (!m->open && m->closed_ms < before &&
            s->ops->state(st->bctx, m->index, &ss, NULL) == CP_OK && ss.last_ms < before) {
            expire = 1;
        }
    }
    pthread_rwlock_unlock(&st->lock);
    if (!expire) {
        return rc;
    }

    pthread_rwlock_wrlock(&st->lock);
    size_t n = st->nshards;
    shard_meta *next = cp_malloc(n * sizeof(*next));
    memcpy(next, st->shards, n * sizeof(*next));
    int changed = 0;
    for (size_t i = 0; i < n; i++) {
        cp_stream_shard_state ss;
        if (next[i].open || next[i].expired || next[i].closed_ms >= before ||
            s->ops->state(st->bctx, next[i].index, &ss, NULL) != CP_OK || ss.last_ms >= before) {
            continue;
        }
        /* Drop storage before recording the expiry: a crash in between leaves an empty closed
         * shard that simply expires again on the next trim. */
        if (s->ops->drop_shard && s->ops->drop_shard(st->bctx, next[i].index, err) != CP_OK) {
            rc = rc == CP_OK ? CP_EIO : rc;
            continue;
        }
        next[i].expired = 1;
        changed = 1;
    }
    if (changed) {
        int r = write_meta(s, st, CP_STREAM_ACTIVE, next, n, err);
        if (r == CP_OK) {
            for (size_t i = 0; i < n; i++) {
                st->shards[i].expired = next[i].expired;
            }
        } else {
            rc = r;
        }
    }
    cp_free(next);
    pthread_rwlock_unlock(&st->lock);
    return rc;
}

int cp_streams_trim(cp_streams *s, int64_t now_ms, cp_err *err)
{
    if (now_ms == 0) {
        now_ms = cp_clock_now_ms();
    }
    pthread_mutex_lock(&s->mu);
    size_t n = 0;
    stream **list = cp_malloc((s->n ? s->n : 1) * sizeof(*list));
    for (size_t i = 0; i < s->n; i++) {
        if (s->streams[i]->status == CP_STREAM_ACTIVE) {
            s->streams[i]->refs++;
            list[n++] = s->streams[i];
        }
    }
    pthread_mutex_unlock(&s->mu);
    int rc = CP_OK;
    for (size_t i = 0; i < n; i++) {
        int r = trim_stream(s, list[i], now_ms, err);
        rc = rc == CP_OK ? r : rc;
        release(s, list[i]);
    }
    cp_free(list);
    return rc;
}

/* ---------------------------------------------------------------- resharding */

int cp_streams_update_shard_count(cp_streams *s, cp_slice name, uint32_t target, cp_err *err)
{
    stream *st;
    int rc = acquire(s, name, 0, &st, err);
    if (rc != CP_OK) {
        return rc;
    }
    if (st->mode == CP_STREAM_ON_DEMAND) {
        release(s, st);
        return cp_err_set(err, CP_EINVAL,
                          "UpdateShardCount is not supported for streams in "
                          "ON_DEMAND mode.");
    }
    /* Exclusive: waits for in-flight puts, so every parent's last record is final. */
    pthread_rwlock_wrlock(&st->lock);
    size_t open = count_open(st->shards, st->nshards);
    if (target < 1 || target < (open + 1) / 2 || target > 2 * open) {
        rc = cp_err_set(err, CP_EINVAL,
                        "UpdateShardCount to %" PRIu32 " shards: the target "
                        "must be between half and double the current %zu open shards.",
                        target, open);
        goto out;
    }
    pthread_mutex_lock(&s->mu);
    if (st->status != CP_STREAM_ACTIVE) {
        rc = cp_err_set(err, CP_EINUSE,
                        "Stream %s under account 000000000000 not ACTIVE, "
                        "instead in state %s",
                        st->name, cp_stream_status_name(st->status));
    } else if (s->open_total - open + target > s->o.shard_limit) {
        rc = target > open ? limit_error(s, target - open, err) : CP_OK;
    }
    if (rc == CP_OK) {
        s->open_total = s->open_total - open + target; /* reserve */
    }
    pthread_mutex_unlock(&s->mu);
    if (rc != CP_OK) {
        goto out;
    }

    int64_t now = cp_clock_now_ms();
    size_t n = st->nshards + target;
    shard_meta *next = cp_calloc(n, sizeof(*next));
    for (size_t i = 0; i < st->nshards; i++) {
        next[i] = st->shards[i];
        next[i].parents =
            cp_malloc((next[i].nparents ? next[i].nparents : 1) * sizeof(*next[i].parents));
        if (next[i].nparents) {
            memcpy(next[i].parents, st->shards[i].parents,
                   next[i].nparents * sizeof(*next[i].parents));
        }
        if (next[i].open) {
            cp_stream_shard_state ss;
            rc = s->ops->state(st->bctx, next[i].index, &ss, err);
            if (rc != CP_OK) {
                break;
            }
            next[i].open = 0;
            next[i].ending_seq = ss.last_seq; /* 0 (the starting number) when empty */
            next[i].closed_ms = now;
        }
    }
    for (uint32_t j = 0; rc == CP_OK && j < target; j++) {
        shard_meta *c = &next[st->nshards + j];
        c->index = st->next_index + j;
        c->open = 1;
        cp_shard_even_range(target, j, &c->start, &c->end);
        c->parents = cp_malloc(open * sizeof(*c->parents));
        /* Parents: the closed shards whose ranges overlap the child's, by ascending start. */
        for (size_t k = 0; k < st->nshards; k++) {
            const shard_meta *p = &st->shards[k];
            if (p->open && cp_hashkey_cmp(p->start, c->end) <= 0 &&
                cp_hashkey_cmp(c->start, p->end) <= 0) {
                c->parents[c->nparents++] = p->index;
            }
        }
        rc = s->ops->add_shard(st->bctx, c->index, err);
    }
    if (rc == CP_OK) {
        uint32_t old_next = st->next_index;
        st->next_index += target;
        rc = write_meta(s, st, CP_STREAM_ACTIVE, next, n, err); /* commit */
        if (rc != CP_OK) {
            st->next_index = old_next;
        }
    }
    if (rc == CP_OK) {
        shards_free(st->shards, st->nshards);
        st->shards = next;
        st->nshards = n;
        /* Even children tile the key space by construction; anything else would misroute. */
        rc = rebuild_map(st, err);
        CP_ASSERT(rc == CP_OK);
    } else {
        shards_free(next, n);
    }
    pthread_mutex_lock(&s->mu);
    if (rc == CP_OK) {
        st->open_count = target;
    } else {
        s->open_total = s->open_total - target + open; /* release the reservation */
    }
    pthread_mutex_unlock(&s->mu);
out:
    pthread_rwlock_unlock(&st->lock);
    release(s, st);
    return rc;
}

/* ---------------------------------------------------------------- puts */

static size_t utf8_chars(cp_slice s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        n += ((unsigned char) s.p[i] & 0xC0) != 0x80;
    }
    return n;
}

typedef struct routed {
    uint32_t shard;
    size_t i;
} routed;

static int cmp_routed(const void *a, const void *b)
{
    const routed *x = a, *y = b;
    if (x->shard != y->shard) {
        return x->shard < y->shard ? -1 : 1;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

int cp_streams_put(cp_streams *s, cp_slice name, const cp_stream_put *recs, size_t n,
                   cp_stream_put_result *res, size_t *failed, cp_err *err)
{
    if (failed) {
        *failed = 0;
    }
    if (n == 0) {
        return cp_err_set(err, CP_EINVAL, "at least one record is required");
    }
    /* Whole-request validation first (a shape error fails the call, not single records). */
    cp_hashkey *keys = cp_malloc(n * sizeof(*keys));
    int rc = CP_OK;
    for (size_t i = 0; i < n && rc == CP_OK; i++) {
        size_t chars = utf8_chars(recs[i].partition_key);
        if (chars < 1 || chars > CP_STREAM_PK_MAX_CHARS) {
            rc = cp_err_set(err, CP_EINVAL,
                            "1 validation error detected: Value at "
                            "'records.%zu.member.partitionKey' failed to satisfy constraint: "
                            "Member must have length between 1 and 256",
                            i + 1);
        } else if (recs[i].partition_key.len + recs[i].data.len > s->o.max_record_bytes) {
            rc = cp_err_set(err, CP_ETOOBIG,
                            "Record %zu: the size of data plus partition key "
                            "(%zu bytes) exceeds the limit of %zu bytes.",
                            i, recs[i].partition_key.len + recs[i].data.len, s->o.max_record_bytes);
        } else if (recs[i].explicit_hash_key.len) {
            rc = cp_hashkey_parse(recs[i].explicit_hash_key, &keys[i], err);
        } else {
            keys[i] = cp_hashkey_of_partition_key(recs[i].partition_key);
        }
    }
    stream *st = NULL;
    if (rc == CP_OK) {
        rc = acquire(s, name, 0, &st, err);
    }
    if (rc != CP_OK) {
        cp_free(keys);
        return rc;
    }

    pthread_rwlock_rdlock(&st->lock);
    routed *order = cp_malloc(n * sizeof(*order));
    for (size_t i = 0; i < n; i++) {
        order[i] = (routed){cp_shard_find_key(st->map, keys[i]), i};
    }
    /* Group by shard, keeping request order inside each group. */
    qsort(order, n, sizeof(*order), cmp_routed);
    cp_stream_rec *group = cp_malloc(n * sizeof(*group));
    uint64_t *seqs = cp_malloc(n * sizeof(*seqs));
    int64_t now = cp_clock_now_ms();
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && order[b].shard == order[a].shard) {
            const cp_stream_put *p = &recs[order[b].i];
            group[b - a] = (cp_stream_rec){0, 0, p->source_id, p->partition_key, p->data};
            b++;
        }
        int64_t stamp = now;
        cp_err gerr = {0};
        int grc = s->ops->append(st->bctx, order[a].shard, group, b - a, now, seqs, &stamp, &gerr);
        for (size_t k = a; k < b; k++) {
            cp_stream_put_result *r = &res[order[k].i];
            r->code = grc;
            r->shard = order[k].shard;
            r->seq = grc == CP_OK ? seqs[k - a] : 0;
            r->arrival_ms = grc == CP_OK ? stamp : 0;
        }
        if (grc != CP_OK) {
            if (failed) {
                *failed += b - a;
            }
            if (err && err->code == CP_OK) {
                *err = gerr; /* the first failure's detail, for the caller's log */
            }
        }
        a = b;
    }
    pthread_rwlock_unlock(&st->lock);
    release(s, st);
    cp_free(seqs);
    cp_free(group);
    cp_free(order);
    cp_free(keys);
    return CP_OK;
}

/* ---------------------------------------------------------------- iterators and reads */

int cp_streams_iterator(cp_streams *s, cp_slice name, uint32_t shard, cp_stream_iter_type type,
                        cp_slice seq, int64_t ts_ms, uint64_t *pos, cp_err *err)
{
    int by_seq = type == CP_ITER_AT_SEQUENCE_NUMBER || type == CP_ITER_AFTER_SEQUENCE_NUMBER;
    if (by_seq && seq.len == 0) {
        return cp_err_set(err, CP_EINVAL,
                          "Must either specify (1) AT_SEQUENCE_NUMBER or "
                          "AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON "
                          "or LATEST and no StartingSequenceNumber. Request specified %s and no "
                          "StartingSequenceNumber.",
                          cp_stream_iter_type_name(type));
    }
    if (!by_seq && seq.len != 0) {
        return cp_err_set(err, CP_EINVAL,
                          "Must either specify (1) AT_SEQUENCE_NUMBER or "
                          "AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON "
                          "or LATEST and no StartingSequenceNumber. Request specified %s and "
                          "also a StartingSequenceNumber.",
                          cp_stream_iter_type_name(type));
    }
    uint32_t seq_shard = 0;
    uint64_t v = 0;
    if (by_seq) {
        int rc = cp_seq_parse(seq, &seq_shard, &v, err);
        if (rc != CP_OK) {
            return cp_err_set(err, CP_EINVAL,
                              "StartingSequenceNumber %.*s used in "
                              "GetShardIterator on shard is invalid.",
                              (int) (seq.len > 64 ? 64 : seq.len), seq.p);
        }
    }
    if (type == CP_ITER_AT_TIMESTAMP && ts_ms > cp_clock_now_ms()) {
        return cp_err_set(err, CP_EINVAL, "The timestamp %" PRId64 " is in the future.", ts_ms);
    }
    stream *st;
    int rc = acquire(s, name, 0, &st, err);
    if (rc != CP_OK) {
        return rc;
    }
    pthread_rwlock_rdlock(&st->lock);
    cp_stream_shard_state ss;
    cp_stream_batch b = CP_STREAM_BATCH_INIT;
    if (!shard_get(st, shard)) {
        rc = no_shard(st, shard, err);
        goto out;
    }
    if (by_seq && seq_shard != shard) {
        char want[CP_SHARD_ID_MAX], got[CP_SHARD_ID_MAX];
        cp_shard_id_format(seq_shard, got);
        cp_shard_id_format(shard, want);
        rc = cp_err_set(err, CP_EINVAL,
                        "Invalid StartingSequenceNumber. It encodes %s, while "
                        "it was used in a call to a shard with %s",
                        got, want);
        goto out;
    }
    rc = s->ops->state(st->bctx, shard, &ss, err);
    if (rc != CP_OK) {
        goto out;
    }
    switch (type) {
    case CP_ITER_TRIM_HORIZON:
        *pos = ss.first_seq;
        break;
    case CP_ITER_LATEST:
        *pos = ss.end_seq;
        break;
    case CP_ITER_AT_TIMESTAMP:
        rc = s->ops->seek_time(st->bctx, shard, ts_ms, pos, err);
        break;
    case CP_ITER_AT_SEQUENCE_NUMBER:
    case CP_ITER_AFTER_SEQUENCE_NUMBER:
        if (v < ss.first_seq) {
            /* The StartingSequenceNumber (0), or a record already trimmed away. */
            *pos = ss.first_seq;
            break;
        }
        if (v >= ss.end_seq) {
            rc = CP_EINVAL;
        } else {
            /* Prove a record has exactly this number before handing out a position for it;
             * the embedded backend could not otherwise tell a record boundary from a guess. */
            cp_err rerr = {0};
            int r = s->ops->read(st->bctx, shard, v, 1, SIZE_MAX, &b, &rerr);
            if (r == CP_OK && b.n == 1 && b.recs[0].seq == v) {
                *pos = type == CP_ITER_AT_SEQUENCE_NUMBER ? v : b.next_seq;
            } else if (s->ops->state(st->bctx, shard, &ss, NULL) == CP_OK && v < ss.first_seq) {
                *pos = ss.first_seq; /* trimmed while we looked */
            } else {
                rc = CP_EINVAL;
            }
        }
        if (rc == CP_EINVAL) {
            rc = cp_err_set(err, CP_EINVAL,
                            "Invalid StartingSequenceNumber. No record with "
                            "sequence number %.*s exists in the shard.",
                            (int) seq.len, seq.p);
        }
        break;
    }
out:
    cp_stream_batch_free(&b);
    pthread_rwlock_unlock(&st->lock);
    release(s, st);
    return rc;
}

void cp_stream_read_free(cp_stream_read *r)
{
    cp_stream_batch_free(&r->batch);
    *r = CP_STREAM_READ_INIT;
}

int cp_streams_read(cp_streams *s, cp_slice name, uint32_t shard, uint64_t pos, size_t max_records,
                    size_t max_bytes, cp_stream_read *out, cp_err *err)
{
    out->next_pos = pos;
    out->millis_behind = 0;
    out->shard_end = 0;
    out->nchildren = 0;
    cp_stream_batch_reset(&out->batch);
    if (max_records == 0) {
        return cp_err_set(err, CP_EINVAL, "Limit must be at least 1");
    }
    stream *st;
    int rc = acquire(s, name, 0, &st, err);
    if (rc != CP_OK) {
        return rc;
    }
    pthread_rwlock_rdlock(&st->lock);
    const shard_meta *m = shard_get(st, shard);
    cp_stream_shard_state ss;
    if (!m) {
        rc = no_shard(st, shard, err);
    } else {
        rc = s->ops->read(st->bctx, shard, pos, max_records, max_bytes, &out->batch, err);
    }
    if (rc == CP_OK) {
        rc = s->ops->state(st->bctx, shard, &ss, err);
    }
    if (rc == CP_OK) {
        const cp_stream_batch *b = &out->batch;
        out->next_pos = b->next_seq;
        if (b->next_seq < ss.end_seq && b->n > 0) {
            int64_t behind = ss.last_ms - b->recs[b->n - 1].arrival_ms;
            out->millis_behind = behind > 0 ? behind : 0;
        }
        if (!m->open && b->next_seq >= ss.end_seq) {
            /* A closed shard read to its end: the consumer moves on to the children. */
            out->shard_end = 1;
            for (size_t i = 0; i < st->nshards && out->nchildren < 16; i++) {
                for (uint32_t k = 0; k < st->shards[i].nparents; k++) {
                    if (st->shards[i].parents[k] == shard && !st->shards[i].expired) {
                        out->children[out->nchildren++] = st->shards[i].index;
                        break;
                    }
                }
            }
        }
    }
    pthread_rwlock_unlock(&st->lock);
    release(s, st);
    return rc;
}

/* ---------------------------------------------------------------- recovery and consumers */

int cp_streams_last_source(cp_streams *s, cp_slice name, uint32_t shard, uint64_t *source_id,
                           cp_err *err)
{
    stream *st;
    int rc = acquire(s, name, 0, &st, err);
    if (rc != CP_OK) {
        return rc;
    }
    pthread_rwlock_rdlock(&st->lock);
    rc = shard_get(st, shard) ? s->ops->last_source(st->bctx, shard, source_id, err)
                              : no_shard(st, shard, err);
    pthread_rwlock_unlock(&st->lock);
    release(s, st);
    return rc;
}

static int check_consumer(cp_slice consumer, cp_err *err)
{
    if (consumer.len == 0 || consumer.len > CP_STREAM_CONSUMER_MAX ||
        memchr(consumer.p, 0, consumer.len)) {
        return cp_err_set(err, CP_EINVAL, "consumer name must be 1..%d bytes without NUL",
                          CP_STREAM_CONSUMER_MAX);
    }
    return CP_OK;
}

int cp_streams_checkpoint_set(cp_streams *s, cp_slice name, cp_slice consumer, uint32_t shard,
                              uint64_t seq, cp_err *err)
{
    int rc = check_consumer(consumer, err);
    stream *st;
    if (rc != CP_OK || (rc = acquire(s, name, 0, &st, err)) != CP_OK) {
        return rc;
    }
    pthread_rwlock_rdlock(&st->lock);
    int known = shard_get(st, shard) != NULL;
    pthread_rwlock_unlock(&st->lock);
    if (!known) {
        rc = no_shard(st, shard, err);
    } else {
        pthread_mutex_lock(&st->ckpt_mu);
        uint64_t old = 0;
        int had = 0;
        for (size_t i = 0; i < st->nckpts; i++) {
            if (st->ckpts[i].shard == shard &&
                cp_slice_eq(cp_slice_str(st->ckpts[i].consumer), consumer)) {
                old = st->ckpts[i].seq;
                had = 1;
            }
        }
        ckpt_put(st, consumer.p, consumer.len, shard, seq);
        rc = write_ckpts(s, st, err);
        if (rc != CP_OK) {
            /* Keep memory equal to disk: undo the in-memory change. */
            if (had) {
                ckpt_put(st, consumer.p, consumer.len, shard, old);
            } else {
                cp_free(st->ckpts[--st->nckpts].consumer);
            }
        }
        pthread_mutex_unlock(&st->ckpt_mu);
    }
    release(s, st);
    return rc;
}

int cp_streams_checkpoint_get(cp_streams *s, cp_slice name, cp_slice consumer, uint32_t shard,
                              uint64_t *seq, cp_err *err)
{
    int rc = check_consumer(consumer, err);
    stream *st;
    if (rc != CP_OK || (rc = acquire(s, name, 0, &st, err)) != CP_OK) {
        return rc;
    }
    rc = CP_ENOTFOUND;
    pthread_mutex_lock(&st->ckpt_mu);
    for (size_t i = 0; i < st->nckpts; i++) {
        if (st->ckpts[i].shard == shard &&
            cp_slice_eq(cp_slice_str(st->ckpts[i].consumer), consumer)) {
            *seq = st->ckpts[i].seq;
            rc = CP_OK;
        }
    }
    pthread_mutex_unlock(&st->ckpt_mu);
    release(s, st);
    if (rc == CP_ENOTFOUND) {
        cp_err_set(err, CP_ENOTFOUND, "no checkpoint for this consumer and shard");
    }
    return rc;
}

int cp_streams_checkpoint_delete(cp_streams *s, cp_slice name, cp_slice consumer, cp_err *err)
{
    int rc = check_consumer(consumer, err);
    stream *st;
    if (rc != CP_OK || (rc = acquire(s, name, 0, &st, err)) != CP_OK) {
        return rc;
    }
    pthread_mutex_lock(&st->ckpt_mu);
    size_t kept = 0, n = st->nckpts;
    ckpt *removed = cp_malloc((n ? n : 1) * sizeof(*removed));
    size_t nremoved = 0;
    for (size_t i = 0; i < n; i++) {
        if (cp_slice_eq(cp_slice_str(st->ckpts[i].consumer), consumer)) {
            removed[nremoved++] = st->ckpts[i];
        } else {
            st->ckpts[kept++] = st->ckpts[i];
        }
    }
    if (nremoved) {
        st->nckpts = kept;
        rc = write_ckpts(s, st, err);
        if (rc != CP_OK) {
            for (size_t i = 0; i < nremoved; i++) {
                st->ckpts[st->nckpts++] = removed[i]; /* order does not matter */
            }
            nremoved = 0;
        }
    }
    for (size_t i = 0; i < nremoved; i++) {
        cp_free(removed[i].consumer);
    }
    cp_free(removed);
    pthread_mutex_unlock(&st->ckpt_mu);
    release(s, st);
    return rc;
}
