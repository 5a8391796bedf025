/* SPDX-License-Identifier: MIT */
/* Request routing by header, exact path, longest path prefix, then fallback (see router.h). */
#include "http/router.h"

#include "core/mem.h"

typedef struct route {
    char *method; /* NULL = any */
    char *path;   /* path, or header name for header routes */
    size_t path_len;
    unsigned flags;
    cp_http_handler h;
    void *ctx;
} route;

struct cp_http_router {
    route *paths;
    size_t npaths;
    route *headers;
    size_t nheaders;
    cp_http_handler fallback;
    void *fallback_ctx;
};

cp_http_router *cp_http_router_new(void)
{
    return cp_calloc(1, sizeof(cp_http_router));
}

static void free_routes(route *rs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cp_free(rs[i].method);
        cp_free(rs[i].path);
    }
    cp_free(rs);
}

void cp_http_router_free(cp_http_router *r)
{
    if (!r) {
        return;
    }
    free_routes(r->paths, r->npaths);
    free_routes(r->headers, r->nheaders);
    cp_free(r);
}

static void push(route **rs, size_t *n, route add)
{
    *rs = cp_realloc(*rs, (*n + 1) * sizeof(**rs));
    (*rs)[(*n)++] = add;
}

void cp_http_router_add(cp_http_router *r, const char *method, const char *path, unsigned flags,
                        cp_http_handler h, void *ctx)
{
    route add = {method ? cp_strdup(method) : NULL, cp_strdup(path), strlen(path), flags, h, ctx};
    push(&r->paths, &r->npaths, add);
}

void cp_http_router_add_header(cp_http_router *r, const char *name, cp_http_handler h, void *ctx)
{
    route add = {NULL, cp_strdup(name), strlen(name), 0, h, ctx};
    push(&r->headers, &r->nheaders, add);
}

void cp_http_router_set_fallback(cp_http_router *r, cp_http_handler h, void *ctx)
{
    r->fallback = h;
    r->fallback_ctx = ctx;
}

/* Length of the match of route `rt` on `path`, or 0 when it does not match. */
static size_t match(const route *rt, cp_slice path)
{
    if (!(rt->flags & CP_HTTP_ROUTE_PREFIX)) {
        return path.len == rt->path_len && memcmp(path.p, rt->path, path.len) == 0 ? path.len : 0;
    }
    if (path.len < rt->path_len || memcmp(path.p, rt->path, rt->path_len) != 0) {
        return 0;
    }
    if (path.len == rt->path_len || rt->path[rt->path_len - 1] == '/' ||
        path.p[rt->path_len] == '/') {
        return rt->path_len;
    }
    return 0;
}

int cp_http_router_handle(void *router, const cp_http_req *req, cp_http_resp *resp)
{
    cp_http_router *r = router;
    for (size_t i = 0; i < r->nheaders; i++) {
        if (cp_http_req_header(req, r->headers[i].path).p) {
            return r->headers[i].h(r->headers[i].ctx, req, resp);
        }
    }
    const route *best = NULL;
    size_t best_len = 0;
    int best_exact = 0, path_matched = 0;
    for (size_t i = 0; i < r->npaths; i++) {
        const route *rt = &r->paths[i];
        size_t m = match(rt, req->path);
        if (!m && !(rt->path_len == 0 && (rt->flags & CP_HTTP_ROUTE_PREFIX))) {
            continue;
        }
        path_matched = 1;
        if (rt->method && !cp_http_slice_ieq(req->method, rt->method)) {
            continue;
        }
        int exact = !(rt->flags & CP_HTTP_ROUTE_PREFIX);
        if (!best || (exact && !best_exact) || (exact == best_exact && m > best_len)) {
            best = rt;
            best_len = m;
            best_exact = exact;
        }
    }
    if (best) {
        return best->h(best->ctx, req, resp);
    }
    if (r->fallback) {
        return r->fallback(r->fallback_ctx, req, resp);
    }
    resp->status = path_matched ? 405 : 404;
    return CP_OK;
}
