/* SPDX-License-Identifier: MIT */
/* Private glue between server.c (acceptor, HTTP/1.1, worker pool) and h2.c (h2c sessions). */
#ifndef CP_HTTP_SERVER_INT_H
#define CP_HTTP_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "http/server.h"

/* A unit of work for the worker pool. Embedded first in its owner; `run` gets the worker's
 * scratch arena (reset by the pool after run returns). */
typedef struct cp__http_job cp__http_job;
struct cp__http_job {
    cp__http_job *next;
    void (*run)(cp__http_job *job, cp_http_scratch *scratch);
};

typedef struct cp__h2_conn cp__h2_conn;

struct cp_http_server {
    cp_http_cfg cfg; /* defaults filled in */
    char host[64];
    int lfd; /* listening socket, owned by the acceptor thread */
    uint16_t port;
    int epfd;     /* acceptor epoll set */
    int stop_efd; /* wakes the acceptor for shutdown */
    pthread_t acceptor;
    int acceptor_running;
    struct MHD_Daemon *mhd;
    atomic_int stopping; /* quiesce started: no new connections, close keep-alives */

    atomic_uint_fast64_t n_requests, n_requests_h2, n_too_large, n_conns, n_conns_h2;
    atomic_uint n_in_flight;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;  /* signalled when h1_in_flight or h2_count drops */
    unsigned h1_in_flight;
    cp__h2_conn *h2_list; /* live h2c connections */
    unsigned h2_count;

    /* Worker pool for HTTP/2 streams. */
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    cp__http_job *pool_head, *pool_tail;
    unsigned pool_threads, pool_idle;
    int pool_stop;
    pthread_t *pool_tids; /* max_workers slots */
};

/* Queue a job; a new worker starts when none is idle and fewer than max_workers exist. */
void cp__http_pool_submit(cp_http_server *srv, cp__http_job *job);
/* After answering 413 we keep reading (and dropping) the rest of an upload, since some clients
 * lose the answer if the connection or stream is reset under them; past this many bytes we
 * hang up instead. */
size_t cp__http_drain_limit(const cp_http_server *srv);
/* Run the user handler with the 500 fallback. */
void cp__http_call(cp_http_server *srv, const cp_http_req *req, cp_http_resp *resp);

/* h2.c: serve the h2c connection on fd (nonblocking, preface still unread) on a new thread.
 * Takes ownership of fd (also on failure). */
int cp__h2_start(cp_http_server *srv, int fd, const char *remote);
/* h2.c: send GOAWAY on every h2c connection; they exit once their streams are answered. */
void cp__h2_stop_all(cp_http_server *srv);

#endif
