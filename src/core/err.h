/* SPDX-License-Identifier: MIT */
/*
 * Status codes and the client-safe error detail that travels with them. Every fallible
 * function returns CP_OK or a negative CP_E* (system errors are -errno, as in libuv).
 */
#ifndef CP_ERR_H
#define CP_ERR_H

#include <errno.h>

#define CP_PRINTF(f, a) __attribute__((format(printf, f, a)))

enum {
    CP_OK = 0,
    /* Internal codes sit below -1000 so they never collide with -errno. */
    CP_ENOTFOUND = -1001,  /* expected miss: key, table, stream absent */
    CP_ECONDITION = -1002, /* a condition evaluated to false */
    CP_EAGAIN = -1003,     /* try again later (backpressure, throttling) */
    CP_EINVAL = -1004,     /* the caller's input is invalid */
    CP_ECORRUPT = -1005,   /* stored bytes failed their checksum or shape check */
    CP_ETXN = -1006,       /* sticky: an earlier step of this batch already failed */
    CP_EEXIST = -1007,     /* create of something that already exists */
    CP_ETOOBIG = -1008,    /* a size limit was exceeded */
    CP_ECLOSED = -1009,    /* the object is shutting down */
    CP_EEXPIRED = -1010,   /* an iterator or position is past retention */
    CP_EINUSE = -1011,     /* resource busy in a conflicting state */
    CP_ELIMIT = -1012,     /* a configured quota was reached */
    CP_RETRY = -1013,      /* plugin result: transient, retry the same input */
    CP_EFAIL = -1014,      /* plugin result: permanent failure for this input */
    CP_EIO = -EIO,
    CP_ENOMEM = -ENOMEM,
};

typedef struct cp_err {
    int code;      /* CP_E*; CP_OK when nothing happened */
    char msg[256]; /* client-safe text, no secrets or paths */
} cp_err;

/* Fill *err (if not NULL) and return `code`, so callers can `return cp_err_set(...)`.
 * The single place errors are born: one breakpoint finds them all. */
int cp_err_set(cp_err *err, int code, const char *fmt, ...) CP_PRINTF(3, 4);

/* Short constant name of a code ("CP_ENOTFOUND", "ENOSPC"...). Never NULL. */
const char *cp_err_name(int code);

#endif
