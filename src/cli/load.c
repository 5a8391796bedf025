/* SPDX-License-Identifier: MIT */
/*
 * `changepipe load`: the article's JMeter + API server in one command. Sends SigV4-signed
 * BatchWriteItem requests (25 chat items each, one livestream per request) at a fixed request
 * rate over keep-alive connections, resends UnprocessedItems, prints a live progress line, and
 * ends with latency percentiles and the achieved rate. Latency is measured from each request's
 * *scheduled* send time, so a stalled server shows up as latency instead of silently lowering
 * the offered load (no coordinated omission).
 */
#include "cli/load.h"

#include "cli/awsclient.h"
#include "cli/cli.h"
#include "query/query.h"

#include <curl/curl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/mem.h"

enum { ITEMS_PER_REQUEST = 25, MAX_ATTEMPTS = 8 /* then the request counts as an error */ };

static const cp_config_entry load_table[] = {
    {"endpoint", CP_CFG_STRING, "http://127.0.0.1:4566", 0, 0, offsetof(cp_load_opts, endpoint),
     0, "the DynamoDB-compatible endpoint", "URL"},
    {"table", CP_CFG_STRING, "ChatMessages", 0, 0, offsetof(cp_load_opts, table), 0,
     "table to write (partition key LivestreamID S, sort key UID N)", "NAME"},
    {"rate", CP_CFG_DOUBLE, "1000", 0.1, 1e6, offsetof(cp_load_opts, rate), 0,
     "BatchWriteItem requests per second", NULL},
    {"duration", CP_CFG_DURATION, "30s", 100, 86400000, offsetof(cp_load_opts, duration_ms), 0,
     "how long to send", NULL},
    {"livestreams", CP_CFG_INT, "10", 1, 1000000, offsetof(cp_load_opts, livestreams), 0,
     "livestreams the requests rotate over", NULL},
    {"connections", CP_CFG_INT, "64", 1, 4096, offsetof(cp_load_opts, connections), 0,
     "keep-alive connections (the most requests in flight)", NULL},
    {"region", CP_CFG_STRING, "us-east-1", 0, 0, offsetof(cp_load_opts, region), 0,
     "region to sign for", "REGION"},
    {"access-key", CP_CFG_STRING, "AKIDEXAMPLE", 0, 0, offsetof(cp_load_opts, access_key), 0,
     "access key to sign with", "KEY"},
    {"secret-key", CP_CFG_STRING, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 0, 0,
     offsetof(cp_load_opts, secret_key), CP_CFG_SECRET, "secret key to sign with", "SECRET"},
    {"quiet", CP_CFG_BOOL, "false", 0, 0, offsetof(cp_load_opts, quiet), 0,
     "no progress line", NULL},
    {"verify", CP_CFG_BOOL, "false", 0, 0, offsetof(cp_load_opts, verify), 0,
     "then flush the pipeline and check every written item is in the bucket exactly once",
     NULL},
    {"bucket", CP_CFG_STRING, "chat-bucket", 0, 0, offsetof(cp_load_opts, bucket), 0,
     "--verify: bucket of the by-livestream delivery stream", "NAME"},
    {"prefix", CP_CFG_STRING, "Livestreams/", 0, 0, offsetof(cp_load_opts, prefix), 0,
     "--verify: prefix the delivered objects are under (read recursively)", "PREFIX"},
    {0},
};

const cp_config_entry *cp_load_option_table(void)
{
    return load_table;
}

/* ------------------------------------------------------------------------------------------
 * Request bodies.
 * ---------------------------------------------------------------------------------------- */

static const char *const messages[] = {
    "\xec\x95\x88\xeb\x85\x95\xed\x95\x98\xec\x84\xb8\xec\x9a\x94! hello everyone",
    "\xeb\xb0\xa9\xec\x86\xa1 \xec\x9e\xac\xeb\xb0\x8c\xec\x96\xb4\xec\x9a\x94 great stream",
    "\xec\x9d\xb4\xea\xb1\xb0 \xec\x96\xbc\xeb\xa7\x88\xec\x98\x88\xec\x9a\x94? how much is it",
    "\xe3\x85\x8b\xe3\x85\x8b\xe3\x85\x8b lol \xeb\x8c\x80\xeb\xb0\x95",
    "\xea\xb0\x90\xec\x82\xac\xed\x95\xa9\xeb\x8b\x88\xeb\x8b\xa4 thanks for the live",
};

typedef struct livestream {
    char id[32];
    int64_t last_uid;
    uint64_t sent;  /* items acknowledged (not in UnprocessedItems) */
} livestream;

static int64_t next_uid(livestream *ls)
{
    /* UID = millisecond timestamp x 1,000 + counter, strictly increasing per livestream. */
    int64_t uid = cp_clock_now_ms() * 1000;
    if (uid <= ls->last_uid) {
        uid = ls->last_uid + 1;
    }
    ls->last_uid = uid;
    return uid;
}

static void build_body(const cp_load_opts *o, livestream *ls, uint64_t n, cp_buf *out)
{
    cp_buf_reset(out);
    cp_buf_puts(out, "{\"RequestItems\":{");
    cp_json_put_str(out, cp_slice_str(o->table));
    cp_buf_puts(out, ":[");
    char created[40];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
    for (int i = 0; i < ITEMS_PER_REQUEST; i++) {
        uint64_t k = n * ITEMS_PER_REQUEST + (uint64_t) i;
        cp_buf_printf(out,
                      "%s{\"PutRequest\":{\"Item\":{\"LivestreamID\":{\"S\":\"%s\"},"
                      "\"UID\":{\"N\":\"%lld\"},\"UserID\":{\"S\":\"user-%llu\"},"
                      "\"Message\":{\"S\":\"%s\"},\"CreatedAt\":{\"S\":\"%s\"}}}}",
                      i ? "," : "", ls->id, (long long) next_uid(ls),
                      (unsigned long long) (k * 7919 % 100000), messages[k % 5], created);
    }
    cp_buf_puts(out, "]}}");
}

/* ------------------------------------------------------------------------------------------
 * Connections: one curl easy handle per connection, driven by one multi handle.
 * ---------------------------------------------------------------------------------------- */

typedef struct conn {
    CURL *h;
    struct curl_slist *hdrs;
    cp_buf body, resp;
    int busy;
    int64_t scheduled_ns; /* when this request should have been sent */
    livestream *ls;
    int pending_items;    /* items in the request being sent (less when resending) */
    int attempt;          /* resends of this request so far */
    int64_t retry_at_ns;  /* > 0: resend at this time (backoff after throttling) */
} conn;

/* The SDKs' retry shape: exponential backoff from 25 ms, capped at 1 s, with full jitter. */
static int64_t backoff_ns(int attempt)
{
    int64_t cap = 25000000LL << (attempt < 6 ? attempt : 6);
    if (cap > 1000000000LL) {
        cap = 1000000000LL;
    }
    return 1 + rand() % cap;
}

static int throttled(long status, const cp_buf *resp)
{
    const char *b = resp->p ? resp->p : "";
    return status == 503 || (status == 400 && (strstr(b, "ThroughputExceeded") ||
                                               strstr(b, "ThrottlingException") ||
                                               strstr(b, "RequestLimitExceeded")));
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    cp_buf_append(ud, p, size * n);
    return size * n;
}

static void sign_request(const cp_load_opts *o, conn *c, const char *host)
{
    char amz_date[17];
    cp_sigv4_amz_date(cp_clock_now_ms() / 1000, amz_date);
    char hash[65];
    cp_sigv4_sha256_hex(cp_buf_slice(&c->body), hash);
    cp_http_header h[4] = {
        {CP_SLICE("content-type"), CP_SLICE("application/x-amz-json-1.0")},
        {CP_SLICE("host"), cp_slice_str(host)},
        {CP_SLICE("x-amz-date"), cp_slice_str(amz_date)},
        {CP_SLICE("x-amz-target"), CP_SLICE("DynamoDB_20120810.BatchWriteItem")},
    };
    cp_sigv4_msg m = {CP_SLICE("POST"), CP_SLICE("/"), CP_SLICE(""), h, 4, cp_slice_str(hash)};
    cp_sigv4_signer s = {cp_slice_str(o->access_key), cp_slice_str(o->secret_key),
                         cp_slice_str(o->region), CP_SLICE("dynamodb"), 0};
    cp_buf authz = CP_BUF_INIT, line = CP_BUF_INIT;
    cp_sigv4_sign(&s, &m, cp_slice_str(amz_date), &authz);
    curl_slist_free_all(c->hdrs);
    c->hdrs = NULL;
    c->hdrs = curl_slist_append(c->hdrs, "Content-Type: application/x-amz-json-1.0");
    c->hdrs = curl_slist_append(c->hdrs, "X-Amz-Target: DynamoDB_20120810.BatchWriteItem");
    cp_buf_printf(&line, "X-Amz-Date: %s", amz_date);
    c->hdrs = curl_slist_append(c->hdrs, line.p);
    cp_buf_reset(&line);
    cp_buf_printf(&line, "Authorization: %s", authz.p);
    c->hdrs = curl_slist_append(c->hdrs, line.p);
    c->hdrs = curl_slist_append(c->hdrs, "Expect:");
    cp_buf_free(&authz);
    cp_buf_free(&line);
}

static void start_request(CURLM *multi, const cp_load_opts *o, conn *c, const char *host)
{
    sign_request(o, c, host);
    cp_buf_reset(&c->resp);
    curl_easy_setopt(c->h, CURLOPT_URL, o->endpoint);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, c->body.p);
    curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long) c->body.len);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->resp);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
    curl_multi_add_handle(multi, c->h);
    c->busy = 1;
}

/* After a 200: turn UnprocessedItems for our table back into a request body. Returns the
 * number of items left unprocessed. */
static int unprocessed(const cp_load_opts *o, conn *c)
{
    const char *u = strstr(c->resp.p ? c->resp.p : "", "\"UnprocessedItems\":{");
    if (!u || u[20] == '}') {
        return 0;
    }
    /* Resend exactly the server's UnprocessedItems map: it is a RequestItems value. */
    const char *start = u + 19;
    cp_json_lexer lx;
    cp_json_lexer_init(&lx, cp_slice_of(start, strlen(start)));
    cp_json_tok t;
    if (cp_json_next(&lx, &t) != CP_OK || cp_json_skip(&lx, &t) != CP_OK) {
        return 0;
    }
    size_t len = cp_json_offset(&lx);
    int items = 0;
    for (const char *p = start; p < start + len; p++) {
        items += strncmp(p, "\"PutRequest\"", 12) == 0;
    }
    cp_buf next = CP_BUF_INIT;
    cp_buf_puts(&next, "{\"RequestItems\":");
    cp_buf_append(&next, start, len);
    cp_buf_putc(&next, '}');
    cp_buf_free(&c->body);
    c->body = next;
    (void) o;
    return items;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return (x > y) - (x < y);
}

static double pct(const int64_t *v, size_t n, double p)
{
    if (!n) {
        return 0;
    }
    size_t i = (size_t) ceil(p * (double) n) - 1;
    return (double) v[i < n ? i : n - 1] / 1e6;
}

int cp_load_run(const cp_load_opts *o, cp_load_result *res)
{
    memset(res, 0, sizeof(*res));
    char host[300];
    const char *h = strstr(o->endpoint, "://");
    snprintf(host, sizeof(host), "%s", h ? h + 3 : o->endpoint);
    char *slash = strchr(host, '/');
    if (slash) {
        *slash = 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) o->connections);
    size_t nconn = (size_t) o->connections;
    conn *conns = cp_calloc(nconn, sizeof(*conns));
    for (size_t i = 0; i < nconn; i++) {
        conns[i].h = curl_easy_init();
        curl_easy_setopt(conns[i].h, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(conns[i].h, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
    }
    livestream *ls = cp_calloc((size_t) o->livestreams, sizeof(*ls));
    for (int64_t i = 0; i < o->livestreams; i++) {
        snprintf(ls[i].id, sizeof(ls[i].id), "live-%lld", (long long) i);
    }
    res->per_livestream = cp_calloc((size_t) o->livestreams, sizeof(uint64_t));
    size_t lat_cap = (size_t) (o->rate * (double) o->duration_ms / 1000.0) + 16, nlat = 0;
    int64_t *lat = cp_malloc(lat_cap * sizeof(int64_t));
    int64_t interval_ns = (int64_t) (1e9 / o->rate);
    int64_t start = cp_clock_mono_ns(), end = start + o->duration_ms * 1000000;
    uint64_t scheduled = 0, in_flight = 0, last_done = 0;
    int64_t last_report = start;
    int tty = !o->quiet && isatty(2);
    for (;;) {
        int64_t now = cp_clock_mono_ns();
        /* Issue every request whose scheduled time has come, while a connection is free. */
        while (now < end && start + (int64_t) scheduled * interval_ns <= now) {
            conn *c = NULL;
            for (size_t i = 0; i < nconn && !c; i++) {
                c = conns[i].busy ? NULL : &conns[i];
            }
            if (!c) {
                break; /* all busy: the schedule slips, and latency shows it */
            }
            c->ls = &ls[scheduled % (uint64_t) o->livestreams];
            c->scheduled_ns = start + (int64_t) scheduled * interval_ns;
            c->pending_items = ITEMS_PER_REQUEST;
            c->attempt = 0;
            c->retry_at_ns = 0;
            build_body(o, c->ls, scheduled, &c->body);
            start_request(multi, o, c, host);
            scheduled++;
            in_flight++;
            res->requests++;
        }
        if (now >= end && in_flight == 0) {
            break;
        }
        for (size_t i = 0; i < nconn; i++) {
            if (conns[i].retry_at_ns && conns[i].retry_at_ns <= now) {
                conns[i].retry_at_ns = 0;
                start_request(multi, o, &conns[i], host);
            }
        }
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            conn *c;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &c);
            long status = 0;
            curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
            curl_multi_remove_handle(multi, c->h);
            int ok = msg->data.result == CURLE_OK && status == 200;
            int left_items = ok ? unprocessed(o, c) : 0;
            if (ok) {
                uint64_t acked = (uint64_t) (c->pending_items - left_items);
                c->ls->sent += acked;
                res->items += acked;
            }
            if (ok && left_items && c->attempt < MAX_ATTEMPTS) {
                /* Resend the rest after a backoff, as the SDKs do. */
                res->unprocessed_retries++;
                c->pending_items = left_items;
                c->retry_at_ns = cp_clock_mono_ns() + backoff_ns(c->attempt++);
                continue;
            }
            if (!ok && msg->data.result == CURLE_OK && throttled(status, &c->resp) &&
                c->attempt < MAX_ATTEMPTS) {
                res->throttled++;
                c->retry_at_ns = cp_clock_mono_ns() + backoff_ns(c->attempt++);
                continue;
            }
            if (!ok || left_items) {
                res->errors++;
                if (!o->quiet && res->errors <= 3) {
                    fprintf(stderr, "\n  request failed: HTTP %ld %s %.200s\n", status,
                            curl_easy_strerror(msg->data.result), c->resp.p ? c->resp.p : "");
                }
            }
            if (nlat < lat_cap) {
                lat[nlat++] = cp_clock_mono_ns() - c->scheduled_ns;
            }
            c->busy = 0;
            in_flight--;
        }
        now = cp_clock_mono_ns();
        if (tty && now - last_report >= 1000000000) {
            uint64_t done = res->requests - in_flight;
            fprintf(stderr, "\r  %5.1fs  %7.0f req/s  %8.0f items/s  in flight %-4llu errors %llu   ",
                    (double) (now - start) / 1e9,
                    (double) (done - last_done) * 1e9 / (double) (now - last_report),
                    (double) (done - last_done) * ITEMS_PER_REQUEST * 1e9 /
                        (double) (now - last_report),
                    (unsigned long long) in_flight, (unsigned long long) res->errors);
            last_done = done;
            last_report = now;
        }
        /* Sleep until the next scheduled send, a due resend, or socket activity. */
        int64_t next = start + (int64_t) scheduled * interval_ns - cp_clock_mono_ns();
        for (size_t i = 0; i < nconn; i++) {
            if (conns[i].retry_at_ns && conns[i].retry_at_ns - cp_clock_mono_ns() < next) {
                next = conns[i].retry_at_ns - cp_clock_mono_ns();
            }
        }
        int wait_ms = now >= end ? 50 : (int) (next > 0 ? next / 1000000 : 0);
        curl_multi_poll(multi, NULL, 0, wait_ms > 50 ? 50 : wait_ms, NULL);
    }
    if (tty) {
        fprintf(stderr, "\r%90s\r", "");
    }
    res->seconds = (double) (cp_clock_mono_ns() - start) / 1e9;
    qsort(lat, nlat, sizeof(int64_t), cmp_i64);
    res->p50_ms = pct(lat, nlat, 0.50);
    res->p99_ms = pct(lat, nlat, 0.99);
    res->p999_ms = pct(lat, nlat, 0.999);
    res->max_ms = nlat ? (double) lat[nlat - 1] / 1e6 : 0;
    for (int64_t i = 0; i < o->livestreams; i++) {
        res->per_livestream[i] = ls[i].sent;
    }
    for (size_t i = 0; i < nconn; i++) {
        curl_easy_cleanup(conns[i].h);
        curl_slist_free_all(conns[i].hdrs);
        cp_buf_free(&conns[i].body);
        cp_buf_free(&conns[i].resp);
    }
    curl_multi_cleanup(multi);
    cp_free(conns);
    cp_free(ls);
    cp_free(lat);
    return res->errors ? 1 : 0;
}

void cp_load_result_free(cp_load_result *r)
{
    cp_free(r->per_livestream);
    r->per_livestream = NULL;
}

void cp_load_print(const cp_load_opts *o, const cp_load_result *r, FILE *f)
{
    fprintf(f,
            "  sent %llu BatchWriteItem requests (%llu items) in %.1f s: %.0f requests/s, "
            "%.0f items/s (target %.0f requests/s)\n"
            "  latency from scheduled send: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n"
            "  errors %llu, UnprocessedItems resent %llu times, throttled requests retried %llu "
            "times\n",
            (unsigned long long) r->requests, (unsigned long long) r->items, r->seconds,
            (double) r->requests / r->seconds, (double) r->items / r->seconds, o->rate,
            r->p50_ms, r->p99_ms, r->p999_ms, r->max_ms, (unsigned long long) r->errors,
            (unsigned long long) r->unprocessed_retries, (unsigned long long) r->throttled);
}

/* ------------------------------------------------------------------------------------------
 * The `load` command.
 * ---------------------------------------------------------------------------------------- */

typedef struct verify_rows {
    const cp_load_opts *o;
    uint64_t *rows, *distinct;
} verify_rows;

static int verify_row(void *ctx, const cp_query_result *res, const cp_query_value *row)
{
    verify_rows *v = ctx;
    (void) res;
    if (row[0].s.len > 5 && memcmp(row[0].s.p, "live-", 5) == 0) {
        long long i = atoll(row[0].s.p + 5);
        if (i >= 0 && i < v->o->livestreams) {
            v->rows[i] += (uint64_t) row[1].i;
            v->distinct[i] += (uint64_t) row[2].i;
        }
    }
    return 0;
}

/* Flush the pipeline, then count every livestream's rows in the bucket with the query engine
 * (reading through the endpoint's S3 API, as Athena reads S3). Returns 0 when nothing was lost
 * or duplicated. */
static int verify(const cp_load_opts *o, const cp_load_result *r)
{
    cp_awsc c = {o->endpoint, o->region, o->access_key, o->secret_key};
    cp_buf body = CP_BUF_INIT;
    long status = 0;
    cp_err err = {0};
    char path[64];
    snprintf(path, sizeof(path), "/changepipe/v1/drain");
    int64_t t0 = cp_clock_mono_ns();
    if (cp_awsc_rest(&c, "POST", path, "s3", CP_SLICE(""), &status, &body, &err) != CP_OK ||
        status != 200) {
        fprintf(stderr, "changepipe load: the server could not flush the pipeline: %s %s\n",
                err.msg, body.p ? body.p : "");
        cp_buf_free(&body);
        return 1;
    }
    cp_buf_free(&body);
    printf("  pipeline flushed in %.2f s\n", (double) (cp_clock_mono_ns() - t0) / 1e9);
    cp_query_opts qo = {.endpoint = o->endpoint, .region = o->region,
                        .access_key = o->access_key, .secret_key = o->secret_key};
    cp_query *q;
    if (cp_query_open(&qo, &q, &err) != CP_OK) {
        fprintf(stderr, "changepipe load: %s\n", err.msg);
        return 1;
    }
    cp_buf sql = CP_BUF_INIT;
    cp_buf_printf(&sql,
                  "CREATE EXTERNAL TABLE verify_chat (LivestreamID string, UID bigint) ROW FORMAT "
                  "SERDE 'org.openx.data.jsonserde.JsonSerDe' LOCATION 's3://%s/%s';"
                  "SELECT LivestreamID, count(*), count(DISTINCT UID) FROM verify_chat "
                  "GROUP BY LivestreamID",
                  o->bucket, o->prefix);
    verify_rows v = {o, cp_calloc((size_t) o->livestreams, sizeof(uint64_t)),
                     cp_calloc((size_t) o->livestreams, sizeof(uint64_t))};
    int rc = cp_query_each(q, sql.p, verify_row, &v, &err);
    cp_query_close(q);
    cp_buf_free(&sql);
    uint64_t lost = 0, dup = 0;
    if (rc == CP_OK) {
        for (int64_t i = 0; i < o->livestreams; i++) {
            lost += r->per_livestream[i] > v.distinct[i] ? r->per_livestream[i] - v.distinct[i] : 0;
            dup += v.rows[i] - v.distinct[i];
            if (i < 20) {
                printf("  live-%-8lld written %10llu  in bucket %10llu  distinct %10llu\n",
                       (long long) i, (unsigned long long) r->per_livestream[i],
                       (unsigned long long) v.rows[i], (unsigned long long) v.distinct[i]);
            }
        }
        printf("  lost = %llu, duplicated = %llu\n", (unsigned long long) lost,
               (unsigned long long) dup);
    } else {
        fprintf(stderr, "changepipe load: verification query failed: %s\n", err.msg);
    }
    cp_free(v.rows);
    cp_free(v.distinct);
    return rc == CP_OK && lost == 0 && dup == 0 ? 0 : 1;
}

static int load_cmd(void *arg, char **rest)
{
    (void) rest;
    cp_load_opts *o = arg;
    printf("changepipe load: %.0f BatchWriteItem requests/s x %d items for %.1f s over %lld "
           "livestreams -> %s (table %s)\n",
           o->rate, ITEMS_PER_REQUEST, (double) o->duration_ms / 1000, (long long) o->livestreams,
           o->endpoint, o->table);
    cp_load_result r;
    int status = cp_load_run(o, &r);
    cp_load_print(o, &r, stdout);
    if (o->verify) {
        status |= verify(o, &r);
    }
    cp_load_result_free(&r);
    return status;
}

const cp_cli_command cp_cli_load = {
    .name = "load",
    .summary = "send the article's load: BatchWriteItem requests of 25 chat items at a fixed rate",
    .usage = NULL,
    .opts = load_table,
    .opts_size = sizeof(cp_load_opts),
    .run = load_cmd,
};
