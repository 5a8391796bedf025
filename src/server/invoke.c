/* SPDX-License-Identifier: MIT */
/* Lambda invocation for delivery streams: local functions or mapped HTTP endpoints. */
#include "server/invoke.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"

typedef struct mapping {
    char *name; /* function name */
    char *url;  /* base URL of a Lambda Invoke API */
} mapping;

struct cp_invoker {
    cp_lambda *lambda;
    mapping *maps;
    size_t n;
};

/* "arn:aws:lambda:region:acct:function:NAME[:qualifier]" or "NAME" -> NAME. */
static void function_name(const char *arn, char *out, size_t cap)
{
    const char *p = strstr(arn, ":function:");
    p = p ? p + 10 : arn;
    size_t n = strcspn(p, ":");
    snprintf(out, cap, "%.*s", (int) n, p);
}

int cp_invoker_new(cp_lambda *lambda, const char *text, cp_invoker **out, cp_err *err)
{
    cp_invoker *inv = cp_calloc(1, sizeof(*inv));
    inv->lambda = lambda;
    char *copy = cp_strdup(text ? text : "");
    int rc = CP_OK;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || strncmp(eq + 1, "http", 4) != 0) {
            rc = cp_err_set(err, CP_EINVAL,
                            "--lambda-endpoints expects name=http://host:port[,name=url]");
            break;
        }
        *eq = 0;
        inv->maps = cp_realloc(inv->maps, (inv->n + 1) * sizeof(*inv->maps));
        inv->maps[inv->n++] = (mapping){cp_strdup(tok), cp_strdup(eq + 1)};
    }
    cp_free(copy);
    if (rc != CP_OK) {
        cp_invoker_free(inv);
        return rc;
    }
    *out = inv;
    return CP_OK;
}

void cp_invoker_free(cp_invoker *inv)
{
    if (!inv) {
        return;
    }
    for (size_t i = 0; i < inv->n; i++) {
        cp_free(inv->maps[i].name);
        cp_free(inv->maps[i].url);
    }
    cp_free(inv->maps);
    cp_free(inv);
}

typedef struct hdr_state {
    int function_error;
} hdr_state;

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    if (size * n >= 21 && strncasecmp(p, "X-Amz-Function-Error:", 21) == 0) {
        ((hdr_state *) ud)->function_error = 1;
    }
    return size * n;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    cp_buf_append(ud, p, size * n);
    return size * n;
}

/* POST <url>/2015-03-31/functions/function/invocations, as the Runtime Interface Emulator
 * and the Lambda API both accept. */
static int invoke_http(const char *base, cp_slice payload, cp_buf *response, int *function_error,
                       cp_err *err)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s/2015-03-31/functions/function/invocations", base);
    CURL *h = curl_easy_init();
    hdr_state hs = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload.p);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) payload.len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, response);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L); /* Firehose's limit on a transform */
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK) {
        return cp_err_set(err, CP_EIO, "invoking %s: %s", url, curl_easy_strerror(cc));
    }
    if (status == 429) {
        return cp_err_set(err, CP_EAGAIN, "Rate Exceeded.");
    }
    if (status == 404) {
        return cp_err_set(err, CP_ENOTFOUND, "Function not found: %s", url);
    }
    if (status >= 500 && !hs.function_error) {
        return cp_err_set(err, CP_EIO, "invoking %s: HTTP %ld", url, status);
    }
    *function_error = hs.function_error || status >= 400;
    return CP_OK;
}

int cp_invoker_invoke(void *ctx, const char *function_arn, cp_slice payload, cp_buf *response,
                      int *function_error, cp_err *err)
{
    cp_invoker *inv = ctx;
    char name[256];
    function_name(function_arn, name, sizeof(name));
    *function_error = 0;
    for (size_t i = 0; i < inv->n; i++) {
        if (strcmp(inv->maps[i].name, name) == 0) {
            return invoke_http(inv->maps[i].url, payload, response, function_error, err);
        }
    }
    int rc = cp_lambda_invoke(inv->lambda, function_arn, payload, response, function_error, err);
    /* The processor contract names throttling CP_EAGAIN (Lambda.InvokeLimitExceeded). */
    return rc == CP_ELIMIT ? CP_EAGAIN : rc;
}
