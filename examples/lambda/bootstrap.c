/* SPDX-License-Identifier: MIT */
/*
 * bootstrap: the article's Firehose transformation Lambda as a custom runtime (provided.al2023)
 * in C. It speaks the Lambda Runtime API over libcurl: GET /runtime/invocation/next for an
 * event, POST /runtime/invocation/<id>/response with the answer (or .../error when the event
 * itself is unusable), forever.
 *
 * For every Firehose record it (a) base64-decodes the DynamoDB change record and flattens it
 * to the team's JSON (transform.c), (b) returns the LivestreamID (PARTITION_KEY_ATTRIBUTES) in
 * metadata.partitionKeys for dynamic partitioning, (c) appends the newline Athena needs. A
 * record that is not a change record comes back as ProcessingFailed; the rest of the batch is
 * unaffected. Options: see fh_options_from_env in transform.h.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/json.h"
#include "transform.h"

#define API_PREFIX "/2018-06-01/runtime/invocation/"

typedef struct http {
    CURL *curl;
    char base[256]; /* http://<AWS_LAMBDA_RUNTIME_API>/2018-06-01/runtime/invocation/ */
    cp_buf body;
    char request_id[128];
} http;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    cp_buf_append(arg, p, size * n);
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    http *h = arg;
    size_t len = size * n;
    static const char name[] = "Lambda-Runtime-Aws-Request-Id:";
    if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        const char *v = p + sizeof(name) - 1;
        size_t vl = len - (sizeof(name) - 1);
        while (vl && (*v == ' ' || *v == '\t')) {
            v++, vl--;
        }
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ')) {
            vl--;
        }
        snprintf(h->request_id, sizeof(h->request_id), "%.*s", (int) vl, v);
    }
    return len;
}

/* GET .../next: blocks until the next event. Returns 0 with h->body and h->request_id set. */
static int next_event(http *h)
{
    char url[512];
    snprintf(url, sizeof(url), "%snext", h->base);
    cp_buf_reset(&h->body);
    h->request_id[0] = 0;
    curl_easy_reset(h->curl);
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &h->body);
    curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, h);
    /* The runtime API holds /next open until there is work: no timeout. */
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, 0L);
    long status = 0;
    if (curl_easy_perform(h->curl) != CURLE_OK) {
        return -1;
    }
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    return status == 200 && h->request_id[0] ? 0 : -1;
}

static int post(http *h, const char *what, const cp_buf *payload, const char *error_type)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s/%s", h->base, h->request_id, what);
    cp_buf sink = CP_BUF_INIT;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    /* No "Expect: 100-continue" round trip for large answers. */
    hdrs = curl_slist_append(hdrs, "Expect:");
    char et[160];
    if (error_type) {
        snprintf(et, sizeof(et), "Lambda-Runtime-Function-Error-Type: %s", error_type);
        hdrs = curl_slist_append(hdrs, et);
    }
    curl_easy_reset(h->curl);
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, payload->p ? payload->p : "");
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) payload->len);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &sink);
    CURLcode rc = curl_easy_perform(h->curl);
    curl_slist_free_all(hdrs);
    cp_buf_free(&sink);
    return rc == CURLE_OK ? 0 : -1;
}

/* The Firehose response for one event. Returns -1 when the event is not a Firehose event. */
static int handle(const fh_options *o, cp_slice event, cp_buf *resp)
{
    cp_json_lexer lx;
    cp_json_tok t, v;
    cp_buf data = CP_BUF_INIT, line = CP_BUF_INIT, scratch = CP_BUF_INIT;
    fh_keys keys = {0};
    int rc = -1, nrec = 0;
    cp_buf_reset(resp);
    cp_buf_puts(resp, "{\"records\":[");
    cp_json_lexer_init(&lx, event);
    if (cp_json_next(&lx, &t) < 0 || t.type != CP_JSON_OBJ_BEGIN) {
        goto done;
    }
    for (;;) {
        if (cp_json_next(&lx, &t) < 0) {
            goto done;
        }
        if (t.type == CP_JSON_OBJ_END) {
            break;
        }
        if (cp_json_next(&lx, &v) < 0) {
            goto done;
        }
        if (!cp_json_tok_is(&t, "records") || v.type != CP_JSON_ARR_BEGIN) {
            if (cp_json_skip(&lx, &v) < 0) {
                goto done;
            }
            continue;
        }
        for (;;) {
            cp_json_tok id = {0}, b64 = {0};
            if (cp_json_next(&lx, &v) < 0) {
                goto done;
            }
            if (v.type == CP_JSON_ARR_END) {
                break;
            }
            if (v.type != CP_JSON_OBJ_BEGIN) {
                goto done;
            }
            for (;;) {
                cp_json_tok k, x;
                if (cp_json_next(&lx, &k) < 0) {
                    goto done;
                }
                if (k.type == CP_JSON_OBJ_END) {
                    break;
                }
                if (cp_json_next(&lx, &x) < 0) {
                    goto done;
                }
                if (cp_json_tok_is(&k, "recordId") && x.type == CP_JSON_STRING) {
                    id = x;
                } else if (cp_json_tok_is(&k, "data") && x.type == CP_JSON_STRING) {
                    b64 = x;
                } else if (cp_json_skip(&lx, &x) < 0) {
                    goto done;
                }
            }
            if (id.type != CP_JSON_STRING) {
                goto done;
            }
            const char *why = NULL;
            cp_slice text;
            cp_buf_reset(&data);
            int ok = b64.type == CP_JSON_STRING && cp_json_tok_string(&b64, &scratch, &text) == 0 &&
                     cp_base64_decode(text, &data) == 0 &&
                     fh_transform(o, cp_buf_slice(&data), &line, &keys, &why) == 0;
            /* The id goes back exactly as it came (raw text, escapes and all). */
            cp_buf_puts(resp, nrec++ ? ",{\"recordId\":\"" : "{\"recordId\":\"");
            cp_buf_append(resp, id.s.p, id.s.len);
            if (!ok) {
                cp_buf_puts(resp, "\",\"result\":\"ProcessingFailed\",\"data\":\"");
                cp_buf_append(resp, b64.s.p, b64.s.len);
                cp_buf_puts(resp, "\"}");
                continue;
            }
            cp_buf_puts(resp, "\",\"result\":\"Ok\",\"data\":\"");
            cp_base64_encode(cp_buf_slice(&line), resp);
            cp_buf_putc(resp, '"');
            if (keys.n) {
                cp_buf_puts(resp, ",\"metadata\":{\"partitionKeys\":{");
                for (size_t i = 0; i < keys.n; i++) {
                    if (i) {
                        cp_buf_putc(resp, ',');
                    }
                    cp_json_put_kv_str(resp, keys.name[i], cp_buf_slice(&keys.value[i]));
                }
                cp_buf_puts(resp, "}}");
            }
            cp_buf_putc(resp, '}');
        }
    }
    cp_buf_puts(resp, "]}");
    rc = 0;
done:
    cp_buf_free(&data);
    cp_buf_free(&line);
    cp_buf_free(&scratch);
    fh_keys_free(&keys);
    return rc;
}

int main(void)
{
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    if (!api || !*api) {
        fprintf(stderr, "bootstrap: AWS_LAMBDA_RUNTIME_API is not set\n");
        return 1;
    }
    fh_options opts;
    fh_options_from_env(&opts);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    http h = {.curl = curl_easy_init()};
    snprintf(h.base, sizeof(h.base), "http://%s" API_PREFIX, api);
    cp_buf resp = CP_BUF_INIT;
    /* The runtime is killed when the environment shuts down; a failed /next means the API is
     * gone, so exit and let the platform restart us. */
    while (next_event(&h) == 0) {
        if (handle(&opts, cp_buf_slice(&h.body), &resp) == 0) {
            post(&h, "response", &resp, NULL);
        } else {
            cp_buf_reset(&resp);
            cp_buf_puts(&resp, "{\"errorMessage\":\"the event is not a Firehose transformation "
                               "event\",\"errorType\":\"InvalidEvent\"}");
            post(&h, "error", &resp, "InvalidEvent");
        }
    }
    cp_buf_free(&resp);
    cp_buf_free(&h.body);
    curl_easy_cleanup(h.curl);
    curl_global_cleanup();
    return 0;
}
