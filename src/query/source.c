/* SPDX-License-Identifier: MIT */
/*
 * Object sources for the query engine (local bucket store, S3-compatible endpoint) and the
 * streaming line reader with transparent gzip.
 */
#include "query/source.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/mem.h"
#include "delivery/s3client.h"
#include "objects/bucket.h"
#include "query/jsonrow.h"

void cp_source_free(cp_source *s)
{
    if (s && s->ops && s->ops->destroy) {
        s->ops->destroy(s->ctx);
    }
    if (s) {
        s->ops = NULL;
        s->ctx = NULL;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Local bucket store                                                                          */

typedef struct local_src {
    cp_bucket_store *store;
    int owned;
} local_src;

typedef struct local_list_ctx {
    cp_source_entry_cb cb;
    void *cb_ctx;
} local_list_ctx;

static int local_entry(void *ctx, const cp_bucket_entry *e)
{
    local_list_ctx *lc = ctx;
    cp_source_entry se = {e->key, e->is_prefix, e->size, e->mtime_ms};
    return lc->cb(lc->cb_ctx, &se);
}

static int local_list(void *ctx, const char *bucket, cp_slice prefix, cp_slice delimiter,
                      cp_source_entry_cb cb, void *cb_ctx, cp_err *err)
{
    local_src *ls = ctx;
    local_list_ctx lc = {cb, cb_ctx};
    cp_bucket_list_res res = CP_BUCKET_LIST_RES_INIT;
    cp_buf resume = CP_BUF_INIT;
    int rc;
    for (;;) {
        cp_bucket_list_req rq = {prefix, delimiter, {NULL, 0}, cp_buf_slice(&resume), 1000};
        rc = cp_bucket_list(ls->store, bucket, &rq, local_entry, &lc, &res, err);
        if (rc != CP_OK || !res.truncated) {
            break;
        }
        cp_buf_reset(&resume);
        cp_buf_append(&resume, res.next.p, res.next.len);
    }
    cp_buf_free(&resume);
    cp_bucket_list_res_free(&res);
    if (rc == CP_BUCKET_ENOBUCKET) {
        return cp_err_set(err, CP_ENOTFOUND, "The specified bucket does not exist: %s", bucket);
    }
    return rc;
}

typedef struct local_rd {
    int fd;
} local_rd;

static int local_open(void *ctx, const char *bucket, cp_slice key, void **rd, cp_err *err)
{
    local_src *ls = ctx;
    int fd = -1;
    int rc = cp_bucket_get(ls->store, bucket, key, NULL, &fd, err);
    if (rc == CP_BUCKET_ENOBUCKET) {
        return cp_err_set(err, CP_ENOTFOUND, "The specified bucket does not exist: %s", bucket);
    }
    if (rc < 0) {
        return rc;
    }
    local_rd *r = cp_malloc(sizeof(*r));
    r->fd = fd;
    *rd = r;
    return CP_OK;
}

static int local_read(void *rd, void *buf, size_t cap, size_t *got, cp_err *err)
{
    local_rd *r = rd;
    for (;;) {
        ssize_t n = read(r->fd, buf, cap);
        if (n >= 0) {
            *got = (size_t) n;
            return CP_OK;
        }
        if (errno != EINTR) {
            return cp_err_set(err, -errno, "reading an object failed: %s", strerror(errno));
        }
    }
}

static void local_close(void *rd)
{
    local_rd *r = rd;
    if (r) {
        close(r->fd);
        cp_free(r);
    }
}

static void local_destroy(void *ctx)
{
    local_src *ls = ctx;
    if (ls && ls->owned) {
        cp_bucket_store_close(ls->store);
    }
    cp_free(ls);
}

static const cp_source_ops local_ops = {
    CP_SOURCE_ABI, "local", local_list, local_open, local_read, local_close, local_destroy,
};

int cp_source_local_new(cp_bucket_store *store, const char *data_dir, cp_source *out, cp_err *err)
{
    local_src *ls = cp_calloc(1, sizeof(*ls));
    if (store) {
        ls->store = store;
    } else {
        if (!data_dir) {
            cp_free(ls);
            return cp_err_set(err, CP_EINVAL, "no data directory to read objects from");
        }
        cp_bucket_cfg cfg = {data_dir, NULL, 0, 0};
        int rc = cp_bucket_store_open(&cfg, &ls->store, err);
        if (rc == CP_EINUSE) {
            cp_free(ls);
            return cp_err_set(err, CP_EINUSE,
                              "the data directory is in use by a running server: query it "
                              "through its S3 endpoint with --endpoint instead");
        }
        if (rc < 0) {
            cp_free(ls);
            return rc;
        }
        ls->owned = 1;
    }
    out->ops = &local_ops;
    out->ctx = ls;
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* S3-compatible endpoint                                                                      */

#define S3_CHUNK_DEFAULT (8u * 1024 * 1024)
#define S3_ATTEMPTS      3

typedef struct s3_src {
    cp_s3client *client;
    size_t chunk;
} s3_src;

/* Transient failures (CP_RETRY: connection, 5xx, SlowDown) get two more tries with a short
 * backoff: a query is interactive, so it fails soon rather than waiting like delivery does. */
static void backoff(int attempt)
{
    struct timespec ts = {0, (long) attempt * 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static int no_bucket(const cp_s3_status *st, int rc)
{
    return rc == CP_EFAIL && strcmp(st->code, "NoSuchBucket") == 0;
}

typedef struct s3_list_ctx {
    cp_source_entry_cb cb;
    void *cb_ctx;
} s3_list_ctx;

static int s3_entry(void *ctx, const cp_s3_list_entry *e)
{
    s3_list_ctx *lc = ctx;
    int64_t ms = 0;
    if (!e->is_prefix && cp_jsonrow_parse_ts(e->last_modified, &ms) < 0) {
        ms = 0;
    }
    cp_source_entry se = {e->key, e->is_prefix, e->size, ms};
    return lc->cb(lc->cb_ctx, &se);
}

static int s3_list(void *ctx, const char *bucket, cp_slice prefix, cp_slice delimiter,
                   cp_source_entry_cb cb, void *cb_ctx, cp_err *err)
{
    s3_src *ss = ctx;
    s3_list_ctx lc = {cb, cb_ctx};
    cp_s3_list_res res = CP_S3_LIST_RES_INIT;
    cp_buf token = CP_BUF_INIT;
    int rc;
    for (;;) {
        cp_s3_list_req rq = {prefix, delimiter, {NULL, 0}, cp_buf_slice(&token), 1000};
        cp_s3_status st;
        for (int attempt = 1;; attempt++) {
            memset(&st, 0, sizeof(st));
            rc = cp_s3client_list(ss->client, bucket, &rq, s3_entry, &lc, &res, &st, err);
            /* Retry only a page that delivered nothing, so no entry is seen twice. */
            if (rc != CP_RETRY || res.count > 0 || attempt == S3_ATTEMPTS) {
                break;
            }
            backoff(attempt);
        }
        if (no_bucket(&st, rc)) {
            rc = cp_err_set(err, CP_ENOTFOUND, "The specified bucket does not exist: %s", bucket);
        }
        if (rc != CP_OK || !res.truncated || res.next_token.len == 0) {
            break;
        }
        cp_buf_reset(&token);
        cp_buf_append(&token, res.next_token.p, res.next_token.len);
    }
    cp_buf_free(&res.next_token);
    cp_buf_free(&token);
    return rc;
}

/* An object read in ranged GETs of `chunk` bytes: memory stays bounded for any object size. */
typedef struct s3_rd {
    s3_src *src;
    char *bucket;
    cp_buf key;
    uint64_t off;  /* next byte to fetch */
    uint64_t size; /* the object's size, known after the first answer */
    int known;
    cp_buf data; /* fetched, not yet consumed: [pos, len) */
    size_t pos;
} s3_rd;

static int s3_open(void *ctx, const char *bucket, cp_slice key, void **rd, cp_err *err)
{
    (void) err;
    s3_rd *r = cp_calloc(1, sizeof(*r));
    r->src = ctx;
    r->bucket = cp_strdup(bucket);
    cp_buf_append(&r->key, key.p, key.len);
    *rd = r;
    return CP_OK;
}

static int s3_fetch(s3_rd *r, cp_err *err)
{
    cp_buf_reset(&r->data);
    r->pos = 0;
    cp_s3_obj_info info;
    cp_s3_status st;
    int rc;
    for (int attempt = 1;; attempt++) {
        memset(&st, 0, sizeof(st));
        cp_buf_reset(&r->data);
        rc = cp_s3client_get(r->src->client, r->bucket, cp_buf_slice(&r->key), r->off,
                             r->src->chunk, r->src->chunk + 1024, &r->data, &info, &st, err);
        if (rc != CP_RETRY || attempt == S3_ATTEMPTS) {
            break;
        }
        backoff(attempt);
    }
    if (rc != CP_OK && st.http_status == 416 && r->off == 0) {
        /* S3 refuses any range of an empty object. */
        r->known = 1;
        r->size = 0;
        return CP_OK;
    }
    if (no_bucket(&st, rc)) {
        return cp_err_set(err, CP_ENOTFOUND, "The specified bucket does not exist: %s", r->bucket);
    }
    if (rc < 0) {
        return rc;
    }
    if (!r->known) {
        r->known = 1;
        r->size = info.size;
    }
    r->off += r->data.len;
    if (r->data.len == 0 && r->off < r->size) {
        return cp_err_set(err, CP_EIO, "the object shrank while it was read");
    }
    return CP_OK;
}

static int s3_read(void *rd, void *buf, size_t cap, size_t *got, cp_err *err)
{
    s3_rd *r = rd;
    *got = 0;
    if (r->pos >= r->data.len) {
        if (r->known && r->off >= r->size) {
            return CP_OK;
        }
        int rc = s3_fetch(r, err);
        if (rc < 0) {
            return rc;
        }
    }
    size_t n = r->data.len - r->pos;
    n = n < cap ? n : cap;
    if (n) {
        memcpy(buf, r->data.p + r->pos, n);
    }
    r->pos += n;
    *got = n;
    return CP_OK;
}

static void s3_close(void *rd)
{
    s3_rd *r = rd;
    if (r) {
        cp_free(r->bucket);
        cp_buf_free(&r->key);
        cp_buf_free(&r->data);
        cp_free(r);
    }
}

static void s3_destroy(void *ctx)
{
    s3_src *ss = ctx;
    if (ss) {
        cp_s3client_free(ss->client);
        cp_free(ss);
    }
}

static const cp_source_ops s3_ops = {
    CP_SOURCE_ABI, "s3", s3_list, s3_open, s3_read, s3_close, s3_destroy,
};

int cp_source_s3_new(const cp_source_s3_cfg *cfg, cp_source *out, cp_err *err)
{
    cp_s3_sink_cfg sc = CP_S3_SINK_CFG_INIT;
    sc.endpoint = cfg->endpoint;
    sc.region = cfg->region;
    sc.access_key = cfg->access_key;
    sc.secret_key = cfg->secret_key;
    sc.session_token = cfg->session_token;
    s3_src *ss = cp_calloc(1, sizeof(*ss));
    ss->chunk = cfg->chunk ? cfg->chunk : S3_CHUNK_DEFAULT;
    int rc = cp_s3client_new(&sc, &ss->client, err);
    if (rc < 0) {
        cp_free(ss);
        return rc;
    }
    out->ops = &s3_ops;
    out->ctx = ss;
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Lines                                                                                       */

#define IN_CHUNK    (256u * 1024)
#define BUF_INITIAL (1024u * 1024)
#define MAX_LINE    (256u * 1024 * 1024)

enum { MODE_UNKNOWN, MODE_PLAIN, MODE_GZIP };

struct cp_source_lines {
    const cp_source *src;
    void *rd;
    int mode;
    /* raw bytes from the source (gzip input, or the sniffed first chunk of a plain object) */
    unsigned char *in;
    size_t in_pos, in_len;
    int in_eof;
    z_stream z;
    int z_init;
    /* decoded bytes: the current window is [start, end), scanned for '\n' up to scan */
    char *buf;
    size_t cap, start, end, scan;
    int dec_eof;
    int first_line;
    uint64_t bytes;
};

cp_source_lines *cp_source_lines_new(void)
{
    cp_source_lines *l = cp_calloc(1, sizeof(*l));
    l->in = cp_malloc(IN_CHUNK);
    l->cap = BUF_INITIAL;
    l->buf = cp_malloc(l->cap);
    return l;
}

void cp_source_lines_close(cp_source_lines *l)
{
    if (l->rd) {
        l->src->ops->close(l->rd);
        l->rd = NULL;
    }
    if (l->z_init) {
        inflateEnd(&l->z);
        l->z_init = 0;
    }
    l->mode = MODE_UNKNOWN;
    l->in_pos = l->in_len = 0;
    l->in_eof = 0;
    l->start = l->end = l->scan = 0;
    l->dec_eof = 1;
}

void cp_source_lines_free(cp_source_lines *l)
{
    if (!l) {
        return;
    }
    cp_source_lines_close(l);
    cp_free(l->in);
    cp_free(l->buf);
    cp_free(l);
}

int cp_source_lines_open(cp_source_lines *l, const cp_source *src, const char *bucket, cp_slice key,
                         cp_err *err)
{
    cp_source_lines_close(l);
    l->src = src;
    int rc = src->ops->open(src->ctx, bucket, key, &l->rd, err);
    if (rc < 0) {
        l->rd = NULL;
        return rc;
    }
    l->dec_eof = 0;
    l->first_line = 1;
    l->bytes = 0;
    return CP_OK;
}

uint64_t cp_source_lines_bytes(const cp_source_lines *l)
{
    return l->bytes;
}

/* Refill l->in from the source (only when it is used up). */
static int fill_in(cp_source_lines *l, cp_err *err)
{
    size_t got = 0;
    int rc = l->src->ops->read(l->rd, l->in, IN_CHUNK, &got, err);
    if (rc < 0) {
        return rc;
    }
    l->in_pos = 0;
    l->in_len = got;
    l->bytes += got;
    if (got == 0) {
        l->in_eof = 1;
    }
    return CP_OK;
}

/* Look at the first bytes and pick plain or gzip. */
static int sniff(cp_source_lines *l, cp_err *err)
{
    int rc = fill_in(l, err);
    if (rc < 0) {
        return rc;
    }
    /* A short first read may hold a single byte: top it up so the magic is complete. */
    while (l->in_len < 4 && !l->in_eof) {
        size_t got = 0;
        rc = l->src->ops->read(l->rd, l->in + l->in_len, IN_CHUNK - l->in_len, &got, err);
        if (rc < 0) {
            return rc;
        }
        if (got == 0) {
            l->in_eof = 1;
        }
        l->in_len += got;
        l->bytes += got;
    }
    const unsigned char *p = l->in;
    if (l->in_len >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
        memset(&l->z, 0, sizeof(l->z));
        /* 16 + MAX_WBITS: gzip framing only (a JSON object never starts with 0x1f). */
        if (inflateInit2(&l->z, 16 + MAX_WBITS) != Z_OK) {
            return cp_err_set(err, CP_ENOMEM, "cannot start gzip decompression");
        }
        l->z_init = 1;
        l->mode = MODE_GZIP;
        return CP_OK;
    }
    if (l->in_len >= 4 && p[0] == 0xff && p[1] == 0x06 && p[2] == 0 && p[3] == 0) {
        return cp_err_set(err, CP_ECORRUPT,
                          "the object is Snappy-compressed, which the query engine cannot read "
                          "(use GZIP or UNCOMPRESSED delivery)");
    }
    if (l->in_len >= 4 && p[0] == 'P' && p[1] == 'K' && p[2] == 3 && p[3] == 4) {
        return cp_err_set(err, CP_ECORRUPT,
                          "the object is a ZIP archive, which the query engine cannot read "
                          "(use GZIP or UNCOMPRESSED delivery)");
    }
    l->mode = MODE_PLAIN;
    return CP_OK;
}

/* Decode more bytes into dst[0..cap). *got = 0 means the object is finished. */
static int decode(cp_source_lines *l, char *dst, size_t cap, size_t *got, cp_err *err)
{
    int rc;
    *got = 0;
    if (l->mode == MODE_UNKNOWN && (rc = sniff(l, err)) < 0) {
        return rc;
    }
    if (l->mode == MODE_PLAIN) {
        if (l->in_pos < l->in_len) {
            size_t n = l->in_len - l->in_pos < cap ? l->in_len - l->in_pos : cap;
            memcpy(dst, l->in + l->in_pos, n);
            l->in_pos += n;
            *got = n;
            return CP_OK;
        }
        if (l->in_eof) {
            return CP_OK;
        }
        /* Straight into the line buffer: no copy for plain objects. */
        rc = l->src->ops->read(l->rd, dst, cap, got, err);
        if (rc == CP_OK) {
            l->bytes += *got;
            if (*got == 0) {
                l->in_eof = 1;
            }
        }
        return rc;
    }
    /* gzip */
    l->z.next_out = (Bytef *) dst;
    const uInt want = (uInt) (cap > (1u << 30) ? (1u << 30) : cap);
    l->z.avail_out = want;
    while (l->z.avail_out == want) {
        if (l->in_pos >= l->in_len) {
            if (l->in_eof) {
                if (l->z_init == 2) {
                    return CP_OK; /* the last member ended exactly at the end */
                }
                return cp_err_set(err, CP_ECORRUPT, "the gzip stream is truncated");
            }
            if ((rc = fill_in(l, err)) < 0) {
                return rc;
            }
            continue;
        }
        if (l->z_init == 2) {
            /* Between members: another member, or trailing zero padding, or garbage. */
            if (l->in[l->in_pos] == 0) {
                l->in_pos++;
                continue;
            }
            if (l->in[l->in_pos] != 0x1f) {
                return cp_err_set(err, CP_ECORRUPT, "garbage after the gzip stream");
            }
            inflateReset(&l->z);
            l->z_init = 1;
        }
        l->z.next_in = l->in + l->in_pos;
        l->z.avail_in = (uInt) (l->in_len - l->in_pos);
        int zr = inflate(&l->z, Z_NO_FLUSH);
        l->in_pos = l->in_len - l->z.avail_in;
        if (zr == Z_STREAM_END) {
            l->z_init = 2; /* member done; zcat reads concatenated members */
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            return cp_err_set(err, CP_ECORRUPT, "corrupt gzip data (%s)",
                              l->z.msg ? l->z.msg : "inflate failed");
        }
    }
    *got = want - l->z.avail_out;
    return CP_OK;
}

int cp_source_lines_next(cp_source_lines *l, cp_slice *line, cp_err *err)
{
    for (;;) {
        char *nl = l->scan < l->end ? memchr(l->buf + l->scan, '\n', l->end - l->scan) : NULL;
        size_t ls = l->start, le;
        if (nl) {
            le = (size_t) (nl - l->buf);
            l->start = l->scan = le + 1;
        } else if (l->dec_eof) {
            if (l->start >= l->end) {
                return 0;
            }
            le = l->end;
            l->start = l->scan = l->end;
        } else {
            /* Need more: slide the partial line to the front, grow if it fills the buffer. */
            if (l->start > 0) {
                memmove(l->buf, l->buf + l->start, l->end - l->start);
                l->end -= l->start;
                l->start = 0;
            }
            l->scan = l->end;
            if (l->end == l->cap) {
                if (l->cap >= MAX_LINE) {
                    return cp_err_set(err, CP_ETOOBIG, "a line is longer than %u MiB",
                                      MAX_LINE >> 20);
                }
                l->cap *= 2;
                l->buf = cp_realloc(l->buf, l->cap);
            }
            size_t got = 0;
            int rc = decode(l, l->buf + l->end, l->cap - l->end, &got, err);
            if (rc < 0) {
                return rc;
            }
            if (got == 0) {
                l->dec_eof = 1;
            }
            l->end += got;
            continue;
        }
        if (le > ls && l->buf[le - 1] == '\r') {
            le--;
        }
        if (l->first_line) {
            l->first_line = 0;
            if (le - ls >= 3 && memcmp(l->buf + ls, "\xEF\xBB\xBF", 3) == 0) {
                ls += 3; /* a UTF-8 byte order mark is not part of the first record */
            }
        }
        *line = cp_slice_of(l->buf + ls, le - ls);
        return 1;
    }
}
