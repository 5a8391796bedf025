/* SPDX-License-Identifier: MIT */
/* Signed calls to an AWS-compatible endpoint over libcurl (see awsclient.h). */
#include "cli/awsclient.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "aws/sigv4.h"
#include "core/clock.h"

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    cp_buf_append(ud, p, size * n);
    return size * n;
}

static int call(const cp_awsc *c, const char *method, const char *path, const char *service,
                const char *target, const char *ctype, cp_slice body, long *status, cp_buf *out,
                cp_err *err)
{
    char host[256];
    const char *h = strstr(c->endpoint, "://");
    snprintf(host, sizeof(host), "%s", h ? h + 3 : c->endpoint);
    char amz_date[17], hash[65];
    cp_sigv4_amz_date(cp_clock_now_ms() / 1000, amz_date);
    cp_sigv4_sha256_hex(body, hash);
    cp_http_header hdrs[5];
    size_t nh = 0;
    if (ctype) {
        hdrs[nh++] = (cp_http_header){CP_SLICE("content-type"), cp_slice_str(ctype)};
    }
    hdrs[nh++] = (cp_http_header){CP_SLICE("host"), cp_slice_str(host)};
    hdrs[nh++] = (cp_http_header){CP_SLICE("x-amz-content-sha256"), cp_slice_str(hash)};
    hdrs[nh++] = (cp_http_header){CP_SLICE("x-amz-date"), cp_slice_str(amz_date)};
    if (target) {
        hdrs[nh++] = (cp_http_header){CP_SLICE("x-amz-target"), cp_slice_str(target)};
    }
    cp_sigv4_msg m = {cp_slice_str(method), cp_slice_str(path), CP_SLICE(""), hdrs, nh,
                      cp_slice_str(hash)};
    cp_sigv4_signer s = {cp_slice_str(c->access_key), cp_slice_str(c->secret_key),
                         cp_slice_str(c->region), cp_slice_str(service),
                         strcmp(service, "s3") == 0 ? CP_SIGV4_S3 : 0};
    cp_buf authz = CP_BUF_INIT, line = CP_BUF_INIT;
    cp_sigv4_sign(&s, &m, cp_slice_str(amz_date), &authz);
    struct curl_slist *list = NULL;
    for (size_t i = 0; i < nh; i++) {
        if (cp_slice_eq(hdrs[i].name, CP_SLICE("host"))) {
            continue;
        }
        cp_buf_reset(&line);
        cp_buf_printf(&line, "%.*s: %.*s", (int) hdrs[i].name.len, hdrs[i].name.p,
                      (int) hdrs[i].value.len, hdrs[i].value.p);
        list = curl_slist_append(list, line.p);
    }
    cp_buf_reset(&line);
    cp_buf_printf(&line, "Authorization: %s", authz.p);
    list = curl_slist_append(list, line.p);
    list = curl_slist_append(list, "Expect:");
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", c->endpoint, path);
    CURL *e = curl_easy_init();
    cp_buf_reset(out);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
    if (body.len || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.p ? body.p : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) body.len);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 600L);
    CURLcode cc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(e);
    curl_slist_free_all(list);
    cp_buf_free(&authz);
    cp_buf_free(&line);
    if (cc != CURLE_OK) {
        return cp_err_set(err, CP_EIO, "%s %s: %s", method, url, curl_easy_strerror(cc));
    }
    return CP_OK;
}

int cp_awsc_json(const cp_awsc *c, const char *target, const char *service, const char *json,
                 long *status, cp_buf *out, cp_err *err)
{
    const char *ctype = strncmp(target, "DynamoDB", 8) == 0 ? "application/x-amz-json-1.0"
                                                           : "application/x-amz-json-1.1";
    return call(c, "POST", "/", service, target, ctype, cp_slice_str(json), status, out, err);
}

int cp_awsc_rest(const cp_awsc *c, const char *method, const char *path, const char *service,
                 cp_slice body, long *status, cp_buf *out, cp_err *err)
{
    return call(c, method, path, service, NULL, NULL, body, status, out, err);
}
