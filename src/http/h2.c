/* SPDX-License-Identifier: MIT */
/*
 * h2c with prior knowledge (RFC 9113 section 3.3): one thread per connection runs an nghttp2
 * server session over the nonblocking socket; each complete request stream becomes a job on
 * the server's worker pool, and finished responses come back through an eventfd. The AWS JS
 * v3 Kinesis client multiplexes every call over one such connection.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/server_int.h"

enum { ST_RECEIVING, ST_IN_WORKER, ST_RESPONDING };

typedef struct h2_stream h2_stream;
struct h2_stream {
    cp__http_job job; /* first: the pool hands it back */
    cp__h2_conn *conn;
    h2_stream *prev, *next; /* conn->streams */
    h2_stream *done_next;   /* conn->done (under conn->mu) */
    int32_t id;
    int state;
    int closed; /* nghttp2 closed the stream while a worker had it */
    int too_big, hdr_too_big, is_head;
    size_t discarded;  /* body bytes dropped after a 413 */
    uint64_t declared; /* content-length header, 0 when absent */
    cp_buf meta;       /* "name\0value\0" pairs as received */
    size_t nmeta, hdr_bytes;
    cp_buf body;
    cp_http_resp resp;
    uint64_t sent; /* response body bytes handed to nghttp2 */
};

struct cp__h2_conn {
    cp_http_server *srv;
    cp__h2_conn *prev, *next; /* srv->h2_list (under srv->mu) */
    int fd, efd;
    char remote[64];
    nghttp2_session *ses;
    h2_stream *streams; /* every stream we hold, conn thread only */
    unsigned nstreams;
    unsigned busy;      /* streams in the worker pool, conn thread only */
    pthread_mutex_t mu; /* guards done */
    h2_stream *done;    /* answered by a worker, waiting to be submitted */
    int goaway;
};

static void stream_free(cp__h2_conn *c, h2_stream *st)
{
    if (st->prev) {
        st->prev->next = st->next;
    } else {
        c->streams = st->next;
    }
    if (st->next) {
        st->next->prev = st->prev;
    }
    c->nstreams--;
    cp_buf_free(&st->meta);
    cp_buf_free(&st->body);
    cp_http_resp_free(&st->resp);
    cp_free(st);
}

/* ------------------------------------------------------------------------------------------ */
/* Worker side                                                                                 */

static void meta_next(const char **p, cp_slice *name, cp_slice *value)
{
    size_t nl = strlen(*p);
    *name = cp_slice_of(*p, nl);
    *p += nl + 1;
    size_t vl = strlen(*p);
    *value = cp_slice_of(*p, vl);
    *p += vl + 1;
}

static void run_stream(cp__http_job *job, cp_http_scratch *scratch)
{
    h2_stream *st = (h2_stream *) job;
    cp__h2_conn *c = st->conn;
    cp_http_req req = {0};
    req.version = 20;
    req.remote = c->remote;
    req.scratch = scratch;
    req.body = st->body.p ? cp_buf_slice(&st->body) : cp_slice_of("", 0);
    req.query = cp_slice_of("", 0);
    cp_http_header *hs = cp_http_scratch_alloc(scratch, (st->nmeta + 2) * sizeof(*hs));
    size_t nh = 0;
    int have_host = 0;
    cp_slice authority = {NULL, 0};
    const char *p = st->meta.p;
    for (size_t i = 0; i < st->nmeta; i++) {
        cp_slice n, v;
        meta_next(&p, &n, &v);
        if (n.len && n.p[0] == ':') {
            if (cp_slice_eq(n, CP_SLICE(":method"))) {
                req.method = v;
            } else if (cp_slice_eq(n, CP_SLICE(":path"))) {
                req.target = v;
            } else if (cp_slice_eq(n, CP_SLICE(":authority"))) {
                /* Kept as a header: the AWS JS v3 SDK signs ":authority" over HTTP/2. */
                authority = v;
                hs[nh++] = (cp_http_header){n, v};
            }
            continue;
        }
        have_host |= cp_slice_eq(n, CP_SLICE("host"));
        hs[nh++] = (cp_http_header){n, v};
    }
    /* HTTP/2 carries the host in :authority; SigV4 signs it as "host". */
    if (!have_host && authority.p) {
        hs[nh++] = (cp_http_header){CP_SLICE("host"), authority};
    }
    req.headers = hs;
    req.nheaders = nh;
    const char *q = memchr(req.target.p, '?', req.target.len);
    if (q) {
        req.path = cp_slice_of(req.target.p, (size_t) (q - req.target.p));
        req.query = cp_slice_of(q + 1, req.target.len - req.path.len - 1);
    } else {
        req.path = req.target;
    }
    cp__http_call(c->srv, &req, &st->resp);

    /* Publish under the lock and signal inside it: once the conn thread has drained the last
     * busy stream it may tear down, and its teardown takes this lock first. */
    pthread_mutex_lock(&c->mu);
    st->done_next = c->done;
    c->done = st;
    uint64_t one = 1;
    if (write(c->efd, &one, sizeof(one)) < 0) {
        CP_LOG_WARN("http", "h2 eventfd write: %s", strerror(errno));
    }
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------------------------------------ */
/* Connection thread: nghttp2 callbacks                                                        */

static ssize_t read_body(nghttp2_session *ses, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void) ses;
    (void) id;
    (void) user;
    h2_stream *st = src->ptr;
    cp_http_resp *r = &st->resp;
    uint64_t total = r->file_fd >= 0 ? r->file_len : r->body.len;
    uint64_t left = total - st->sent;
    size_t n = left < length ? (size_t) left : length;
    if (r->file_fd >= 0) {
        ssize_t got = pread(r->file_fd, buf, n, (off_t) (r->file_off + st->sent));
        if (got <= 0) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets just this stream */
        }
        n = (size_t) got;
    } else if (n) {
        memcpy(buf, r->body.p + st->sent, n);
    }
    st->sent += n;
    if (st->sent == total) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t) n;
}

/* Headers that mean something only to HTTP/1.1 and are forbidden in HTTP/2. */
static int hop_by_hop(cp_slice n)
{
    return cp_http_slice_ieq(n, "connection") || cp_http_slice_ieq(n, "keep-alive") ||
           cp_http_slice_ieq(n, "transfer-encoding") || cp_http_slice_ieq(n, "upgrade") ||
           cp_http_slice_ieq(n, "content-length") || cp_http_slice_ieq(n, "proxy-connection");
}

static void submit_response(cp__h2_conn *c, h2_stream *st)
{
    cp_http_resp *r = &st->resp;
    st->state = ST_RESPONDING;
    st->sent = 0;
    size_t cap = r->nhdrs + 3;
    nghttp2_nv *nva = cp_malloc(cap * sizeof(*nva));
    cp_buf names = CP_BUF_INIT; /* lower-cased names: HTTP/2 forbids upper case */
    cp_buf_reserve(&names, r->hdrs.len + 1);
    char status[8], clen[24], date[30];
    snprintf(status, sizeof(status), "%d", r->status);
    size_t n = 0;
    nva[n++] = (nghttp2_nv){(uint8_t *) ":status", (uint8_t *) status, 7, strlen(status),
                            NGHTTP2_NV_FLAG_NONE};
    size_t pos = 0;
    cp_slice hn, hv;
    int have_date = 0;
    while (cp_http_resp_next_header(r, &pos, &hn, &hv)) {
        if (hop_by_hop(hn)) {
            continue;
        }
        have_date |= cp_http_slice_ieq(hn, "date");
        char *lower = names.p + names.len;
        for (size_t i = 0; i < hn.len; i++) {
            char ch = hn.p[i];
            lower[i] = (char) (ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        names.len += hn.len;
        nva[n++] =
            (nghttp2_nv){(uint8_t *) lower, (uint8_t *) hv.p, hn.len, hv.len, NGHTTP2_NV_FLAG_NONE};
    }
    uint64_t total = r->file_fd >= 0 ? r->file_len : r->body.len;
    snprintf(clen, sizeof(clen), "%llu", (unsigned long long) total);
    nva[n++] = (nghttp2_nv){(uint8_t *) "content-length", (uint8_t *) clen, 14, strlen(clen),
                            NGHTTP2_NV_FLAG_NONE};
    if (!have_date) {
        cp_http_date(cp_clock_now_ms() / 1000, date);
        nva[n++] = (nghttp2_nv){(uint8_t *) "date", (uint8_t *) date, 4, strlen(date),
                                NGHTTP2_NV_FLAG_NONE};
    }
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
    int has_body = total > 0 && !st->is_head;
    int rv = nghttp2_submit_response(c->ses, st->id, nva, n, has_body ? &prd : NULL);
    if (rv != 0) {
        nghttp2_submit_rst_stream(c->ses, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    }
    cp_free(nva);
    cp_buf_free(&names);
}

static void reply_status(cp__h2_conn *c, h2_stream *st, int status)
{
    cp_http_resp_reset(&st->resp);
    st->resp.status = status;
    submit_response(c, st);
}

static int on_begin_headers(nghttp2_session *ses, const nghttp2_frame *frame, void *user)
{
    cp__h2_conn *c = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    h2_stream *st = cp_calloc(1, sizeof(*st));
    st->conn = c;
    st->id = frame->hd.stream_id;
    st->job.run = run_stream;
    cp_http_resp_init(&st->resp);
    st->next = c->streams;
    if (c->streams) {
        c->streams->prev = st;
    }
    c->streams = st;
    c->nstreams++;
    nghttp2_session_set_stream_user_data(ses, st->id, st);
    return 0;
}

static int on_header(nghttp2_session *ses, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void) flags;
    cp__h2_conn *c = user;
    h2_stream *st = nghttp2_session_get_stream_user_data(ses, frame->hd.stream_id);
    if (!st || st->state != ST_RECEIVING) {
        return 0;
    }
    st->hdr_bytes += namelen + valuelen + 32; /* RFC 9113 header list size accounting */
    if (st->hdr_bytes > c->srv->cfg.max_header_bytes) {
        st->hdr_too_big = 1;
        return 0;
    }
    cp_buf_append(&st->meta, name, namelen);
    cp_buf_putc(&st->meta, 0);
    cp_buf_append(&st->meta, value, valuelen);
    cp_buf_putc(&st->meta, 0);
    st->nmeta++;
    if (namelen == 14 && memcmp(name, "content-length", 14) == 0) {
        char tmp[24];
        size_t n = valuelen < sizeof(tmp) - 1 ? valuelen : sizeof(tmp) - 1;
        memcpy(tmp, value, n);
        tmp[n] = 0;
        st->declared = strtoull(tmp, NULL, 10);
    }
    if (namelen == 7 && memcmp(name, ":method", 7) == 0 && valuelen == 4 &&
        memcmp(value, "HEAD", 4) == 0) {
        st->is_head = 1;
    }
    return 0;
}

static int on_data(nghttp2_session *ses, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *user)
{
    (void) flags;
    cp__h2_conn *c = user;
    h2_stream *st = nghttp2_session_get_stream_user_data(ses, id);
    size_t max = c->srv->cfg.max_body;
    if (st && st->too_big) {
        /* The 413 is out; drain what the client still sends (resetting the stream makes some
         * clients drop the answer), but only up to a bound. */
        st->discarded += len;
        if (st->discarded > cp__http_drain_limit(c->srv)) {
            nghttp2_submit_rst_stream(ses, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        }
        return 0;
    }
    if (!st || st->state != ST_RECEIVING) {
        return 0;
    }
    if (st->body.len + len > max) {
        st->too_big = 1;
        st->discarded = st->body.len + len;
        cp_buf_free(&st->body);
        atomic_fetch_add(&c->srv->n_too_large, 1);
        reply_status(c, st, 413); /* answer before the upload ends (RFC 9113 section 8.1) */
        return 0;
    }
    if (st->body.cap < st->body.len + len + 1) {
        /* Client-sized: grow without aborting, like the HTTP/1.1 path. */
        size_t cap = st->body.cap ? st->body.cap : 4096;
        while (cap < st->body.len + len + 1) {
            cap *= 2;
        }
        char *p = cp_try_malloc(cap);
        if (!p) {
            nghttp2_submit_rst_stream(ses, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
            st->too_big = 1;
            return 0;
        }
        if (st->body.len) {
            memcpy(p, st->body.p, st->body.len);
        }
        cp_free(st->body.p);
        st->body.p = p;
        st->body.cap = cap;
    }
    memcpy(st->body.p + st->body.len, data, len);
    st->body.len += len;
    st->body.p[st->body.len] = 0;
    return 0;
}

static void dispatch(cp__h2_conn *c, h2_stream *st)
{
    if (st->too_big) {
        return; /* already answered 413 */
    }
    if (st->hdr_too_big) {
        reply_status(c, st, 431);
        return;
    }
    st->state = ST_IN_WORKER;
    c->busy++;
    atomic_fetch_add(&c->srv->n_in_flight, 1);
    cp__http_pool_submit(c->srv, &st->job);
}

static int on_frame_recv(nghttp2_session *ses, const nghttp2_frame *frame, void *user)
{
    cp__h2_conn *c = user;
    if (frame->hd.type == NGHTTP2_HEADERS && !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        /* A declared body over the limit is refused before any of it arrives. */
        h2_stream *st = nghttp2_session_get_stream_user_data(ses, frame->hd.stream_id);
        if (st && st->state == ST_RECEIVING && st->declared > c->srv->cfg.max_body) {
            st->too_big = 1;
            atomic_fetch_add(&c->srv->n_too_large, 1);
            reply_status(c, st, 413);
        }
        return 0;
    }
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        h2_stream *st = nghttp2_session_get_stream_user_data(ses, frame->hd.stream_id);
        if (st && st->state == ST_RECEIVING) {
            dispatch(c, st);
        }
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ses, int32_t id, uint32_t error_code, void *user)
{
    (void) error_code;
    cp__h2_conn *c = user;
    h2_stream *st = nghttp2_session_get_stream_user_data(ses, id);
    if (!st) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(ses, id, NULL);
    if (st->state == ST_IN_WORKER) {
        st->closed = 1; /* the worker still writes into it; freed when it comes back */
    } else {
        stream_free(c, st);
    }
    return 0;
}

static ssize_t on_send(nghttp2_session *ses, const uint8_t *data, size_t len, int flags, void *user)
{
    (void) ses;
    (void) flags;
    cp__h2_conn *c = user;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return NGHTTP2_ERR_WOULDBLOCK;
        }
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return n;
}

static ssize_t on_recv(nghttp2_session *ses, uint8_t *buf, size_t len, int flags, void *user)
{
    (void) ses;
    (void) flags;
    cp__h2_conn *c = user;
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return NGHTTP2_ERR_WOULDBLOCK;
        }
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (n == 0) {
        return NGHTTP2_ERR_EOF;
    }
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Connection thread: the loop                                                                 */

/* Submit every response the workers finished. */
static void drain_done(cp__h2_conn *c)
{
    uint64_t v;
    if (read(c->efd, &v, sizeof(v)) < 0 && errno != EAGAIN) {
        CP_LOG_WARN("http", "h2 eventfd read: %s", strerror(errno));
    }
    pthread_mutex_lock(&c->mu);
    h2_stream *list = c->done;
    c->done = NULL;
    pthread_mutex_unlock(&c->mu);
    while (list) {
        h2_stream *st = list;
        list = st->done_next;
        c->busy--;
        atomic_fetch_sub(&c->srv->n_in_flight, 1);
        atomic_fetch_add(&c->srv->n_requests, 1);
        atomic_fetch_add(&c->srv->n_requests_h2, 1);
        if (st->closed || !c->ses) {
            stream_free(c, st);
        } else {
            submit_response(c, st);
        }
    }
}

static void conn_loop(cp__h2_conn *c)
{
    cp_http_server *srv = c->srv;
    int64_t idle_ms = (int64_t) srv->cfg.idle_timeout_s * 1000;
    for (;;) {
        if (atomic_load(&srv->stopping) && !c->goaway) {
            /* Streams up to the last one we saw still get answered. */
            nghttp2_submit_goaway(c->ses, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(c->ses), NGHTTP2_NO_ERROR,
                                  NULL, 0);
            c->goaway = 1;
        }
        if (nghttp2_session_send(c->ses) != 0) {
            return;
        }
        int want_read = nghttp2_session_want_read(c->ses);
        int want_write = nghttp2_session_want_write(c->ses);
        if (!want_read && !want_write && c->busy == 0) {
            return;
        }
        if (c->goaway && c->nstreams == 0 && c->busy == 0 && !want_write) {
            return;
        }
        struct pollfd pfd[2] = {
            {.fd = c->fd,
             .events = (short) ((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0))},
            {.fd = c->efd, .events = POLLIN},
        };
        int timeout = c->nstreams == 0 && c->busy == 0 ? (int) idle_ms : -1;
        int n = poll(pfd, 2, timeout);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        if (n == 0) {
            /* Idle: say goodbye politely, then leave. */
            nghttp2_submit_goaway(c->ses, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(c->ses), NGHTTP2_NO_ERROR,
                                  NULL, 0);
            nghttp2_session_send(c->ses);
            return;
        }
        if (pfd[1].revents & POLLIN) {
            drain_done(c);
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (nghttp2_session_recv(c->ses) != 0) {
                return;
            }
        }
    }
}

static void *conn_main(void *arg)
{
    cp__h2_conn *c = arg;
    cp_http_server *srv = c->srv;
    conn_loop(c);
    /* Wait for streams still held by workers; their answers are dropped. */
    while (c->busy > 0) {
        struct pollfd pfd = {.fd = c->efd, .events = POLLIN};
        if (poll(&pfd, 1, -1) > 0) {
            nghttp2_session *ses = c->ses;
            c->ses = NULL; /* drain_done frees instead of submitting */
            drain_done(c);
            c->ses = ses;
        }
    }
    pthread_mutex_lock(&c->mu); /* the last worker has left its critical section */
    pthread_mutex_unlock(&c->mu);
    /* Leave the server's list before closing efd: cp__h2_stop_all writes to it under srv->mu. */
    pthread_mutex_lock(&srv->mu);
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        srv->h2_list = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    pthread_mutex_unlock(&srv->mu);
    nghttp2_session_del(c->ses);
    while (c->streams) {
        stream_free(c, c->streams);
    }
    close(c->fd);
    close(c->efd);
    pthread_mutex_destroy(&c->mu);
    cp_free(c);
    /* Last touch of srv: close() may free it as soon as the count drops. */
    pthread_mutex_lock(&srv->mu);
    srv->h2_count--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

int cp__h2_start(cp_http_server *srv, int fd, const char *remote)
{
    cp__h2_conn *c = cp_calloc(1, sizeof(*c));
    c->srv = srv;
    c->fd = fd;
    snprintf(c->remote, sizeof(c->remote), "%s", remote);
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&c->mu, NULL);

    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_callbacks_set_recv_callback(cbs, on_recv);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    int rv = nghttp2_session_server_new(&c->ses, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0 || c->efd < 0) {
        goto fail;
    }
    /* Big windows: an 8 KB PutRecords body must never wait for a WINDOW_UPDATE round trip. */
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, srv->cfg.h2_max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t) srv->cfg.max_header_bytes},
    };
    if (nghttp2_submit_settings(c->ses, NGHTTP2_FLAG_NONE, iv, 3) != 0 ||
        nghttp2_session_set_local_window_size(c->ses, NGHTTP2_FLAG_NONE, 0, 16 << 20) != 0) {
        goto fail;
    }
    pthread_mutex_lock(&srv->mu);
    c->next = srv->h2_list;
    if (srv->h2_list) {
        srv->h2_list->prev = c;
    }
    srv->h2_list = c;
    srv->h2_count++;
    pthread_mutex_unlock(&srv->mu);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t tid;
    rv = pthread_create(&tid, &attr, conn_main, c);
    pthread_attr_destroy(&attr);
    if (rv != 0) {
        pthread_mutex_lock(&srv->mu);
        srv->h2_list = c->next;
        if (c->next) {
            c->next->prev = NULL;
        }
        srv->h2_count--;
        pthread_mutex_unlock(&srv->mu);
        goto fail;
    }
    return CP_OK;
fail:
    CP_LOG_WARN("http", "cannot start an h2c session for %s", remote);
    if (c->ses) {
        nghttp2_session_del(c->ses);
    }
    if (c->efd >= 0) {
        close(c->efd);
    }
    close(fd);
    pthread_mutex_destroy(&c->mu);
    cp_free(c);
    return CP_EIO;
}

void cp__h2_stop_all(cp_http_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    for (cp__h2_conn *c = srv->h2_list; c; c = c->next) {
        uint64_t one = 1;
        if (write(c->efd, &one, sizeof(one)) < 0) {
            CP_LOG_WARN("http", "h2 eventfd write: %s", strerror(errno));
        }
    }
    pthread_mutex_unlock(&srv->mu);
}
