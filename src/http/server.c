/* SPDX-License-Identifier: MIT */
/*
 * The listener: our acceptor thread sniffs each new connection for the HTTP/2 preface and hands
 * it to nghttp2 (h2.c) or to libmicrohttpd in thread-per-connection mode (this file), whose
 * access handler buffers the body and calls the one cp_http_handler.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "http/server_int.h"

#define H2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

/* Buffers above this are released between keep-alive requests instead of being reused, so one
 * large upload does not pin memory for the connection's lifetime. */
#define KEEP_BUF_MAX (1u << 20)

static void format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(out, cap, "%s:%u", ip, port);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(out, cap, "[%s]:%u", ip, port);
    } else {
        snprintf(out, cap, "?");
    }
}

size_t cp__http_drain_limit(const cp_http_server *srv)
{
    size_t four = 4 * srv->cfg.max_body;
    return four > (16u << 20) ? four : (16u << 20);
}

void cp__http_call(cp_http_server *srv, const cp_http_req *req, cp_http_resp *resp)
{
    int rc = srv->cfg.handler(srv->cfg.ctx, req, resp);
    if (rc < 0) {
        CP_LOG_ERROR("http", "handler failed for %.*s %.*s: %s", (int) req->method.len,
                     req->method.p, (int) req->path.len, req->path.p, cp_err_name(rc));
        cp_http_resp_reset(resp);
        resp->status = 500;
    }
}

/* ========================================================================================== */
/* Worker pool (HTTP/2 streams)                                                               */

static void *pool_main(void *arg)
{
    cp_http_server *srv = arg;
    cp_http_scratch scratch = CP_HTTP_SCRATCH_INIT;
    pthread_mutex_lock(&srv->pool_mu);
    for (;;) {
        while (!srv->pool_head && !srv->pool_stop) {
            srv->pool_idle++;
            pthread_cond_wait(&srv->pool_cv, &srv->pool_mu);
            srv->pool_idle--;
        }
        if (!srv->pool_head) {
            break; /* stopping and drained */
        }
        cp__http_job *job = srv->pool_head;
        srv->pool_head = job->next;
        if (!srv->pool_head) {
            srv->pool_tail = NULL;
        }
        pthread_mutex_unlock(&srv->pool_mu);
        job->next = NULL;
        job->run(job, &scratch);
        cp_http_scratch_reset(&scratch);
        pthread_mutex_lock(&srv->pool_mu);
    }
    pthread_mutex_unlock(&srv->pool_mu);
    cp_http_scratch_free(&scratch);
    return NULL;
}

void cp__http_pool_submit(cp_http_server *srv, cp__http_job *job)
{
    pthread_mutex_lock(&srv->pool_mu);
    job->next = NULL;
    if (srv->pool_tail) {
        srv->pool_tail->next = job;
    } else {
        srv->pool_head = job;
    }
    srv->pool_tail = job;
    /* Idle workers already counted as waiting may be claimed by earlier jobs; grow when the
     * queue is longer than the idle set so a blocking handler never starves later streams. */
    unsigned queued = 0;
    for (cp__http_job *j = srv->pool_head; j && queued <= srv->pool_idle; j = j->next) {
        queued++;
    }
    if (queued > srv->pool_idle && srv->pool_threads < srv->cfg.max_workers) {
        if (pthread_create(&srv->pool_tids[srv->pool_threads], NULL, pool_main, srv) == 0) {
            srv->pool_threads++;
        } else if (srv->pool_threads == 0) {
            CP_LOG_ERROR("http", "cannot start a worker thread");
        }
    }
    pthread_cond_signal(&srv->pool_cv);
    pthread_mutex_unlock(&srv->pool_mu);
}

static void pool_stop(cp_http_server *srv)
{
    pthread_mutex_lock(&srv->pool_mu);
    srv->pool_stop = 1;
    pthread_cond_broadcast(&srv->pool_cv);
    pthread_mutex_unlock(&srv->pool_mu);
    for (unsigned i = 0; i < srv->pool_threads; i++) {
        pthread_join(srv->pool_tids[i], NULL);
    }
    srv->pool_threads = 0;
}

/* ========================================================================================== */
/* HTTP/1.1 through libmicrohttpd                                                              */

/* Per-connection state, reused by each request on the keep-alive connection (one request at a
 * time in thread-per-connection mode), so steady traffic allocates nothing per request. */
typedef struct h1_conn {
    cp_http_server *srv;
    char remote[64];
    cp_buf uri; /* raw request target of the current request */
    cp_buf body;
    cp_http_header *hdrs;
    size_t nhdrs, hcap;
    cp_http_scratch scratch;
    cp_http_resp resp; /* body memory is handed to MHD as a persistent buffer */
    size_t discarded;  /* body bytes dropped after the limit was hit */
    int started;       /* the first access-handler call of this request happened */
    int counted;       /* counted in h1_in_flight */
    int too_big;
} h1_conn;

static void trim_buf(cp_buf *b)
{
    if (b->cap > KEEP_BUF_MAX) {
        cp_buf_free(b);
    } else {
        cp_buf_reset(b);
    }
}

static void h1_end_request(h1_conn *c)
{
    if (c->counted) {
        cp_http_server *srv = c->srv;
        c->counted = 0;
        atomic_fetch_sub(&srv->n_in_flight, 1);
        atomic_fetch_add(&srv->n_requests, 1);
        pthread_mutex_lock(&srv->mu);
        if (--srv->h1_in_flight == 0) {
            pthread_cond_broadcast(&srv->cv);
        }
        pthread_mutex_unlock(&srv->mu);
    }
}

static void h1_reset(h1_conn *c)
{
    trim_buf(&c->uri);
    trim_buf(&c->body);
    c->nhdrs = 0;
    cp_http_scratch_reset(&c->scratch);
    cp_http_resp_reset(&c->resp);
    if (c->resp.body.cap > KEEP_BUF_MAX) {
        cp_buf_free(&c->resp.body);
    }
    c->discarded = 0;
    c->started = 0;
    c->too_big = 0;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    cp_http_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        h1_conn *c = cp_calloc(1, sizeof(*c));
        c->srv = srv;
        cp_http_resp_init(&c->resp);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        format_addr(ci ? ci->client_addr : NULL, c->remote, sizeof(c->remote));
        *socket_ctx = c;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        h1_conn *c = *socket_ctx;
        if (c) {
            h1_end_request(c);
            cp_buf_free(&c->uri);
            cp_buf_free(&c->body);
            cp_free(c->hdrs);
            cp_http_scratch_free(&c->scratch);
            cp_http_resp_free(&c->resp);
            cp_free(c);
            *socket_ctx = NULL;
        }
    }
}

/* Called with the raw request target before MHD parses (and unescapes) it: the only place
 * the exact bytes SigV4 signed are available. Starts the connection's next request. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    (void) cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    h1_conn *c = ci ? ci->socket_context : NULL;
    if (!c) {
        return NULL;
    }
    h1_end_request(c);
    h1_reset(c);
    cp_buf_append(&c->uri, uri, strlen(uri));
    return c;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **req_ctx,
                         enum MHD_RequestTerminationCode toe)
{
    (void) cls;
    (void) mc;
    (void) toe;
    h1_conn *c = *req_ctx;
    if (c) {
        h1_end_request(c);
        /* Drop per-request temporaries now rather than at the next request. */
        cp_http_scratch_reset(&c->scratch);
    }
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    (void) kind;
    h1_conn *c = cls;
    if (c->nhdrs == c->hcap) {
        c->hcap = c->hcap ? c->hcap * 2 : 32;
        c->hdrs = cp_realloc(c->hdrs, c->hcap * sizeof(*c->hdrs));
    }
    c->hdrs[c->nhdrs++] =
        (cp_http_header){cp_slice_of(key, key_size), cp_slice_of(value ? value : "", value_size)};
    return MHD_YES;
}

/* Grow the body buffer to hold `need` bytes. The size comes from the client (already checked
 * against max_body), so allocation failure is an answer (503), not an abort. */
static int body_reserve(cp_buf *b, size_t need)
{
    if (need + 1 <= b->cap) {
        return CP_OK;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need + 1) {
        cap *= 2;
    }
    char *p = cp_try_malloc(cap);
    if (!p) {
        return CP_ENOMEM;
    }
    if (b->len) {
        memcpy(p, b->p, b->len);
    }
    p[b->len] = 0;
    cp_free(b->p);
    b->p = p;
    b->cap = cap;
    return CP_OK;
}

static enum MHD_Result h1_send(h1_conn *c, struct MHD_Connection *mc)
{
    cp_http_resp *resp = &c->resp;
    struct MHD_Response *r;
    if (resp->file_fd >= 0) {
        r = MHD_create_response_from_fd_at_offset64(resp->file_len, resp->file_fd, resp->file_off);
        if (r) {
            resp->file_fd = -1; /* MHD closes it when the response is destroyed */
        }
    } else {
        r = MHD_create_response_from_buffer(resp->body.len, resp->body.p ? resp->body.p : "",
                                            MHD_RESPMEM_PERSISTENT);
    }
    if (!r) {
        return MHD_NO;
    }
    size_t pos = 0;
    cp_slice n, v;
    while (cp_http_resp_next_header(resp, &pos, &n, &v)) {
        /* Names and values are NUL-terminated inside resp->hdrs. */
        MHD_add_response_header(r, n.p, v.p);
    }
    if (resp->close || atomic_load(&c->srv->stopping)) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    enum MHD_Result ret = MHD_queue_response(mc, (unsigned) resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result h1_reply_status(h1_conn *c, struct MHD_Connection *mc, int status)
{
    cp_http_resp_reset(&c->resp);
    c->resp.status = status;
    c->resp.close = 1;
    return h1_send(c, mc);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **req_ctx)
{
    cp_http_server *srv = cls;
    (void) url;
    h1_conn *c = *req_ctx;
    if (!c) {
        return MHD_NO; /* no socket context: cannot happen with NOTIFY_CONNECTION set */
    }
    if (!c->started) {
        c->started = 1;
        c->counted = 1;
        atomic_fetch_add(&srv->n_in_flight, 1);
        pthread_mutex_lock(&srv->mu);
        srv->h1_in_flight++;
        pthread_mutex_unlock(&srv->mu);
        const char *cl =
            MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            unsigned long long n = strtoull(cl, &end, 10);
            if (n > srv->cfg.max_body) {
                /* Refuse before reading (and before "100 Continue"): the body never arrives. */
                atomic_fetch_add(&srv->n_too_large, 1);
                c->too_big = 1;
                return h1_reply_status(c, mc, 413);
            }
            if (n > 0 && body_reserve(&c->body, (size_t) n) < 0) {
                return h1_reply_status(c, mc, 503);
            }
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (c->too_big) {
            /* Chunked upload past the limit: drain a bounded amount, then hang up. */
            c->discarded += n;
            return c->discarded > cp__http_drain_limit(srv) ? MHD_NO : MHD_YES;
        }
        if (c->body.len + n > srv->cfg.max_body) {
            atomic_fetch_add(&srv->n_too_large, 1);
            c->too_big = 1;
            c->discarded = c->body.len + n;
            trim_buf(&c->body);
            return MHD_YES;
        }
        if (body_reserve(&c->body, c->body.len + n) < 0) {
            return MHD_NO;
        }
        memcpy(c->body.p + c->body.len, upload_data, n);
        c->body.len += n;
        c->body.p[c->body.len] = 0;
        return MHD_YES;
    }
    if (c->too_big) {
        return h1_reply_status(c, mc, 413);
    }

    /* The whole request is here: build the transport-neutral view. */
    c->nhdrs = 0;
    MHD_get_connection_values_n(mc, MHD_HEADER_KIND, collect_header, c);
    cp_http_req req = {0};
    req.method = cp_slice_str(method);
    req.target = cp_buf_slice(&c->uri);
    const char *q = memchr(c->uri.p ? c->uri.p : "", '?', c->uri.len);
    if (q) {
        req.path = cp_slice_of(c->uri.p, (size_t) (q - c->uri.p));
        req.query = cp_slice_of(q + 1, c->uri.len - (size_t) (q - c->uri.p) - 1);
    } else {
        req.path = req.target;
        req.query = cp_slice_of("", 0);
    }
    if (req.path.len == 0) {
        req.path = CP_SLICE("/");
    }
    req.headers = c->hdrs;
    req.nheaders = c->nhdrs;
    req.body = c->body.p ? cp_buf_slice(&c->body) : cp_slice_of("", 0);
    req.remote = c->remote;
    req.version = version && strcmp(version, MHD_HTTP_VERSION_1_0) == 0 ? 10 : 11;
    req.scratch = &c->scratch;
    cp_http_resp_reset(&c->resp);
    cp__http_call(srv, &req, &c->resp);
    return h1_send(c, mc);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void) cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = 0;
    }
    CP_LOG_DEBUG("http", "libmicrohttpd: %s", msg);
}

/* ========================================================================================== */
/* Acceptor: sniff the first bytes, then hand off                                              */

typedef struct pending {
    struct pending *prev, *next;
    int fd;
    int64_t deadline_ns;
    struct sockaddr_storage addr;
    socklen_t alen;
} pending;

static void pending_unlink(pending **list, pending *p)
{
    if (p->prev) {
        p->prev->next = p->next;
    } else {
        *list = p->next;
    }
    if (p->next) {
        p->next->prev = p->prev;
    }
}

static void hand_off(cp_http_server *srv, pending **list, pending *p, int h2)
{
    epoll_ctl(srv->epfd, EPOLL_CTL_DEL, p->fd, NULL);
    pending_unlink(list, p);
    if (h2) {
        char remote[64];
        format_addr((struct sockaddr *) &p->addr, remote, sizeof(remote));
        atomic_fetch_add(&srv->n_conns_h2, 1);
        cp__h2_start(srv, p->fd, remote);
    } else if (MHD_add_connection(srv->mhd, p->fd, (struct sockaddr *) &p->addr, p->alen) !=
               MHD_YES) {
        /* MHD closed the socket (connection limit or allocation failure). */
        CP_LOG_WARN("http", "connection refused by libmicrohttpd");
    }
    cp_free(p);
}

static void drop(cp_http_server *srv, pending **list, pending *p)
{
    epoll_ctl(srv->epfd, EPOLL_CTL_DEL, p->fd, NULL);
    pending_unlink(list, p);
    close(p->fd);
    cp_free(p);
}

/* Decide HTTP/1.1 vs h2c from the bytes available so far; wait while they are a strict prefix
 * of the preface (edge-triggered epoll reports the next arrival). */
static void sniff(cp_http_server *srv, pending **list, pending *p)
{
    char b[H2_PREFACE_LEN];
    ssize_t n = recv(p->fd, b, sizeof(b), MSG_PEEK);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            drop(srv, list, p);
        }
        return;
    }
    if (n == 0) {
        drop(srv, list, p);
        return;
    }
    if (memcmp(b, H2_PREFACE, (size_t) n) != 0) {
        hand_off(srv, list, p, 0);
    } else if (n == H2_PREFACE_LEN) {
        hand_off(srv, list, p, 1);
    }
}

static void accept_all(cp_http_server *srv, pending **list)
{
    for (;;) {
        pending *p = cp_calloc(1, sizeof(*p));
        p->alen = sizeof(p->addr);
        int fd =
            accept4(srv->lfd, (struct sockaddr *) &p->addr, &p->alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            cp_free(p);
            if (e == EINTR || e == ECONNABORTED) {
                continue;
            }
            if (e != EAGAIN && e != EWOULDBLOCK) {
                CP_LOG_WARN("http", "accept: %s", strerror(e));
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        atomic_fetch_add(&srv->n_conns, 1);
        p->fd = fd;
        p->deadline_ns = cp_clock_mono_ns() + (int64_t) srv->cfg.idle_timeout_s * 1000000000;
        p->next = *list;
        if (*list) {
            (*list)->prev = p;
        }
        *list = p;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = p};
        if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            drop(srv, list, p);
        }
    }
}

static void *acceptor_main(void *arg)
{
    cp_http_server *srv = arg;
    pending *list = NULL;
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(srv->epfd, evs, 64, 1000);
        if (n < 0 && errno != EINTR) {
            CP_LOG_ERROR("http", "epoll_wait: %s", strerror(errno));
            break;
        }
        int stop = 0;
        for (int i = 0; i < n; i++) {
            void *ptr = evs[i].data.ptr;
            if (ptr == &srv->lfd) {
                accept_all(srv, &list);
            } else if (ptr == &srv->stop_efd) {
                stop = 1;
            } else {
                sniff(srv, &list, ptr);
            }
        }
        if (stop) {
            break;
        }
        /* Connections that never sent a byte are closed after the idle timeout. */
        int64_t now = cp_clock_mono_ns();
        for (pending *p = list, *next; p; p = next) {
            next = p->next;
            if (p->deadline_ns < now) {
                drop(srv, &list, p);
            }
        }
    }
    while (list) {
        drop(srv, &list, list);
    }
    close(srv->lfd);
    srv->lfd = -1;
    return NULL;
}

/* ========================================================================================== */
/* Lifecycle                                                                                  */

static int listen_on(cp_http_server *srv, cp_err *err)
{
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned) srv->cfg.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(srv->host, port, &hints, &res);
    if (gai != 0) {
        return cp_err_set(err, CP_EINVAL, "cannot resolve listen address %s: %s", srv->host,
                          gai_strerror(gai));
    }
    int rc = CP_EINVAL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
            rc = -errno;
            close(fd);
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        getsockname(fd, (struct sockaddr *) &ss, &sl);
        srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                                   : ((struct sockaddr_in *) &ss)->sin_port);
        srv->lfd = fd;
        rc = CP_OK;
        break;
    }
    freeaddrinfo(res);
    if (rc < 0) {
        return cp_err_set(err, rc, "cannot listen on %s:%u: %s", srv->host,
                          (unsigned) srv->cfg.port, strerror(-rc > 0 && -rc < 1000 ? -rc : EINVAL));
    }
    return CP_OK;
}

static void server_free(cp_http_server *srv)
{
    if (srv->mhd) {
        MHD_stop_daemon(srv->mhd);
    }
    if (srv->lfd >= 0) {
        close(srv->lfd);
    }
    if (srv->epfd >= 0) {
        close(srv->epfd);
    }
    if (srv->stop_efd >= 0) {
        close(srv->stop_efd);
    }
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->cv);
    pthread_mutex_destroy(&srv->pool_mu);
    pthread_cond_destroy(&srv->pool_cv);
    cp_free(srv->pool_tids);
    cp_free(srv);
}

int cp_http_server_open(const cp_http_cfg *cfg, cp_http_server **out, cp_err *err)
{
    *out = NULL;
    if (!cfg->handler) {
        return cp_err_set(err, CP_EINVAL, "http server needs a handler");
    }
    cp_http_server *srv = cp_calloc(1, sizeof(*srv));
    srv->cfg = *cfg;
    snprintf(srv->host, sizeof(srv->host), "%s", cfg->host ? cfg->host : "127.0.0.1");
    srv->cfg.host = srv->host;
    srv->cfg.max_body = cfg->max_body ? cfg->max_body : 32u << 20;
    srv->cfg.max_header_bytes = cfg->max_header_bytes ? cfg->max_header_bytes : 64u << 10;
    srv->cfg.idle_timeout_s = cfg->idle_timeout_s ? cfg->idle_timeout_s : 120;
    srv->cfg.max_connections = cfg->max_connections ? cfg->max_connections : 4096;
    srv->cfg.max_workers = cfg->max_workers ? cfg->max_workers : 64;
    srv->cfg.h2_max_streams = cfg->h2_max_streams ? cfg->h2_max_streams : 128;
    srv->cfg.drain_timeout_s = cfg->drain_timeout_s ? cfg->drain_timeout_s : 30;
    srv->lfd = srv->epfd = srv->stop_efd = -1;
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cv, NULL);
    pthread_mutex_init(&srv->pool_mu, NULL);
    pthread_cond_init(&srv->pool_cv, NULL);
    srv->pool_tids = cp_calloc(srv->cfg.max_workers, sizeof(pthread_t));

    int rc = listen_on(srv, err);
    if (rc < 0) {
        server_free(srv);
        return rc;
    }
    /* MHD's per-connection pool holds the request line, headers and the read buffer; the body
     * is copied out as it arrives, so headers get most of it. */
    size_t pool = srv->cfg.max_header_bytes + 16384;
    srv->mhd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO_INTERNAL_THREAD |
                                    MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC | MHD_USE_ERROR_LOG,
                                0, NULL, NULL, on_request, srv, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                pool, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned) srv->cfg.idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
                                (unsigned) srv->cfg.max_connections, MHD_OPTION_NOTIFY_CONNECTION,
                                on_connection, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                                MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
                                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv, MHD_OPTION_END);
    if (!srv->mhd) {
        server_free(srv);
        return cp_err_set(err, CP_EIO, "libmicrohttpd failed to start");
    }
    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    srv->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (srv->epfd < 0 || srv->stop_efd < 0) {
        rc = -errno;
        server_free(srv);
        return cp_err_set(err, rc, "epoll/eventfd: %s", strerror(-rc));
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &srv->lfd};
    epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->lfd, &ev);
    ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &srv->stop_efd};
    epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->stop_efd, &ev);
    if (pthread_create(&srv->acceptor, NULL, acceptor_main, srv) != 0) {
        server_free(srv);
        return cp_err_set(err, CP_EIO, "cannot start the acceptor thread");
    }
    srv->acceptor_running = 1;
    *out = srv;
    return CP_OK;
}

uint16_t cp_http_server_port(const cp_http_server *srv)
{
    return srv->port;
}

void cp_http_server_stats(const cp_http_server *srv, cp_http_stats *out)
{
    cp_http_server *s = (cp_http_server *) srv; /* atomics are read-only here */
    out->requests = atomic_load(&s->n_requests);
    out->requests_h2 = atomic_load(&s->n_requests_h2);
    out->too_large = atomic_load(&s->n_too_large);
    out->connections = atomic_load(&s->n_conns);
    out->connections_h2 = atomic_load(&s->n_conns_h2);
    out->in_flight = atomic_load(&s->n_in_flight);
}

int cp_http_server_stopping(const cp_http_server *srv)
{
    return atomic_load(&((cp_http_server *) srv)->stopping);
}

void cp_http_server_quiesce(cp_http_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    int first = !atomic_exchange(&srv->stopping, 1);
    pthread_mutex_unlock(&srv->mu);
    if (!first) {
        return;
    }
    uint64_t one = 1;
    if (write(srv->stop_efd, &one, sizeof(one)) < 0) {
        CP_LOG_WARN("http", "cannot wake the acceptor: %s", strerror(errno));
    }
    pthread_join(srv->acceptor, NULL);
    srv->acceptor_running = 0;
    cp__h2_stop_all(srv);
}

static void wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
    pthread_cond_timedwait(cv, mu, &ts);
}

void cp_http_server_close(cp_http_server *srv)
{
    if (!srv) {
        return;
    }
    cp_http_server_quiesce(srv);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t deadline = (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000 +
                       (int64_t) srv->cfg.drain_timeout_s * 1000;
    pthread_mutex_lock(&srv->mu);
    while (srv->h1_in_flight > 0) {
        clock_gettime(CLOCK_REALTIME, &now);
        if ((int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000 >= deadline) {
            CP_LOG_WARN("http", "%u HTTP/1.1 requests still running at shutdown",
                        srv->h1_in_flight);
            break;
        }
        wait_until(&srv->cv, &srv->mu, deadline);
    }
    pthread_mutex_unlock(&srv->mu);
    /* Closes idle keep-alive connections and joins their threads. */
    MHD_stop_daemon(srv->mhd);
    srv->mhd = NULL;
    /* h2c connections exit on their own once their last stream is answered. */
    pthread_mutex_lock(&srv->mu);
    while (srv->h2_count > 0) {
        pthread_cond_wait(&srv->cv, &srv->mu);
    }
    pthread_mutex_unlock(&srv->mu);
    pool_stop(srv);
    server_free(srv);
}
