/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the delivery engine's files: engine.c (settings, partitions and spill
 * files, sources, rounds, flushing, recovery, the worker), engine_api.c (the public API) and
 * engine_replay.c (replay). Not part of the engine's API.
 */
#ifndef CP_ENGINE_INT_H
#define CP_ENGINE_INT_H

#include <lmdb.h>
#include <pthread.h>

#include "core/seglog.h"
#include "delivery/engine.h"
#include "delivery/prefix.h"

#define ROUND_MAX_RECORDS  10000
#define ROUND_MAX_BYTES    (8u << 20)
#define IDLE_WAIT_MS       50
#define SHARD_REFRESH_MS   2000
#define MAX_OPEN_FILES     256
#define DEFAULT_PARTITIONS 500
#define INTAKE_SHARD       0

typedef struct proc_inst {
    const cp_processor_ops *ops;
    void *ctx;
} proc_inst;

typedef struct settings {
    cp_ds_config *cfg; /* owned */
    const cp_sink_ops *sink; /* where this stream's objects go */
    void *sink_ctx;
    cp_prefix *prefix, *error_prefix;
    proc_inst procs[8];
    size_t nprocs;
    char arn[256], source_arn[256];
} settings;

typedef struct range {
    uint32_t shard;
    uint64_t lo, hi; /* first and last source position in the partition's generation */
} range;

typedef struct partition {
    char *id;               /* data: evaluated prefix ("" without dynamic partitioning);
                             * errors: "\x01" + error type */
    const char *error_type; /* NULL for data partitions */
    char hash[33];          /* hex MD5 of the id: the spill file name stem */
    uint64_t gen;
    uint64_t len;           /* committed bytes */
    uint64_t pending;       /* bytes appended this round, not committed yet */
    uint64_t records, pending_records;
    int64_t first_arrival_ms; /* oldest record arrival: the object's timestamp */
    int64_t opened_ms;        /* wall time the generation got its first record */
    int64_t last_arrival_ms;
    uint32_t version;         /* config version when the generation opened */
    range *ranges;
    uint32_t nranges;
    int fd;
    int touched;
    struct partition *next_touched;
} partition;

typedef struct ptable {
    partition **slots;
    size_t cap, n;
    size_t open_fds;
} ptable;

typedef struct shard_src {
    uint32_t index;
    uint64_t pos; /* next position to read */
    int done;     /* closed and fully read */
} shard_src;

typedef struct dstream dstream;

struct cp_delivery {
    cp_delivery_opts o;
    char dir[4096];
    MDB_env *env;
    MDB_dbi ckpt, parts, manifest, streams_db, stats_db;
    pthread_mutex_t mu; /* guards the list below */
    dstream **list;
    size_t n;
};

struct dstream {
    cp_delivery *d;
    char name[128];
    char dir[4200];
    pthread_mutex_t mu; /* guards settings swaps, drain and stop flags, stats */
    pthread_cond_t cv;
    settings set;
    pthread_t thread;
    int running, stop;
    int flush_all;         /* a drain asked for every buffer to be flushed */
    uint64_t drain_gen;    /* bumped when a requested flush-all completed */
    uint64_t catchup_req;  /* bumped by each drain that waits for the source's end */
    uint64_t catchup_seen; /* catchup_req as it was when the last empty read began */
    cp_seglog *intake;     /* DirectPut */
    shard_src *shards;
    size_t nshards;
    uint64_t rounds;       /* rounds read, for rotating the first shard */
    int64_t shards_refreshed_ms;
    ptable parts;
    partition *touched;
    cp_delivery_stats st;  /* the worker's working counters */
    cp_delivery_stats pub; /* the last committed state, published under mu for readers */
    cp_batch batch;
    cp_stream_read rd;
    cp_buf scratch;
};

void cp__engine_run_processors(dstream *ds);
void cp__engine_route_record(dstream *ds, cp_drec *r, cp_buf *id);
void cp__engine_error_document(const dstream *ds, const cp_drec *r, cp_buf *out);
int cp__engine_object_key(dstream *ds, const partition *p, cp_buf *key, cp_err *err);
int cp__engine_partition_decode(cp_slice in, partition *p);
void cp__engine_dstream_stop(dstream *ds);
int cp__engine_dstream_start(cp_delivery *d, cp_ds_config *cfg, int fresh, dstream **out,
                         cp_err *err);
void cp__engine_dstream_free(dstream *ds);
dstream *cp__engine_find_locked(cp_delivery *d, const char *name, size_t *at);
int cp__engine_save_config(cp_delivery *d, const cp_ds_config *cfg, cp_err *err);
void *cp__engine_worker_main(void *arg);
int cp__engine_mdb_err(cp_err *err, int mrc, const char *what);
int cp__engine_put_kv(MDB_txn *txn, MDB_dbi dbi, cp_slice k, cp_slice v);
int cp__engine_del_prefix(MDB_txn *txn, MDB_dbi dbi, const char *stream);
void cp__engine_publish(dstream *ds);
void cp__engine_stats_decode(cp_slice in, cp_delivery_stats *s);

#endif
