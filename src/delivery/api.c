/* SPDX-License-Identifier: MIT */
/*
 * Firehose_20150804 operations (see api.h). Control-plane bodies are small and go through
 * cJSON and the shape validator of config_shape.c; PutRecord/PutRecordBatch (up to 4 MiB of
 * base64) are lexed in one pass with cp_json, decoding Data straight into one buffer.
 */
#include "delivery/api.h"

#include <stdio.h>
#include <string.h>

#include "core/base64.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/mem.h"
#include "delivery/config_int.h"

#define IAE "InvalidArgumentException"

typedef const cp_firehose_api_cfg api_cfg;

static const char *account_of(api_cfg *api)
{
    return api->account && *api->account ? api->account : "000000000000";
}

static int reply_derr(const cp_aws_req *req, cp_http_resp *resp, cp_ds_err *e)
{
    int rc = cp_aws_reply_error(resp, req->service, e->type ? e->type : IAE, e->msg.p);
    cp_ds_err_free(e);
    return rc;
}

/* A backend code as the AWS error Firehose answers with. */
static int backend_error(api_cfg *api, const cp_aws_req *req, cp_http_resp *resp, int rc,
                         const char *name, const cp_err *err)
{
    const char *msg = err->msg[0] ? err->msg : NULL;
    switch (rc) {
    case CP_ENOTFOUND:
        return cp_aws_reply_errorf(resp, req->service, "ResourceNotFoundException",
                                   "Firehose %s under account %s not found.", name,
                                   account_of(api));
    case CP_EEXIST:
        return cp_aws_reply_errorf(resp, req->service, "ResourceInUseException",
                                   "Firehose %s under account %s already exists.", name,
                                   account_of(api));
    case CP_EINUSE:
        return cp_aws_reply_error(resp, req->service, "ResourceInUseException", msg);
    case CP_ELIMIT:
        return cp_aws_reply_error(resp, req->service, "LimitExceededException", msg);
    case CP_EINVAL:
        return cp_aws_reply_error(resp, req->service, IAE, msg);
    case CP_EAGAIN:
        return cp_aws_reply_error(resp, req->service, "ServiceUnavailableException", "Slow down.");
    case CP_ECONDITION:
        return cp_aws_reply_error(resp, req->service, "ConcurrentModificationException", msg);
    default:
        return rc < 0 ? rc : CP_EIO;
    }
}

/* Parse the (already well-formed: the dispatcher checked it) body as an object. */
static int body_object(const cp_aws_req *req, cp_http_resp *resp, cJSON **root)
{
    *root = cJSON_ParseWithLength(req->body.p, req->body.len);
    if (!*root || !cJSON_IsObject(*root)) {
        cJSON_Delete(*root);
        *root = NULL;
        return cp_aws_reply_error(resp, req->service, "SerializationException",
                                  "Start of structure or map found where not expected.");
    }
    return CP_OK;
}

/* Finish the shape pass: CP_OK, or the error reply. Frees the root on error. */
static int shape_result(const cp_aws_req *req, cp_http_resp *resp, cp_vctx *v, cJSON *root)
{
    cp_ds_err e = CP_DS_ERR_INIT;
    int rc = cp_v_result(v, &e);
    cp_v_free(v);
    if (rc != CP_OK) {
        cJSON_Delete(root);
        return reply_derr(req, resp, &e);
    }
    return CP_OK;
}

static char *region_of(const cp_aws_req *req)
{
    return req->region.len ? cp_http_scratch_strdup(req->scratch, req->region)
                           : cp_http_scratch_strdup(req->scratch, CP_SLICE("us-east-1"));
}

static void put_str(cp_buf *o, const char *s)
{
    cp_json_put_str(o, cp_slice_str(s));
}

/* ------------------------------------------------------------------------------------------ */
/* Control plane                                                                               */

static int op_create(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    api_cfg *api = ctx;
    cp_ds_parse_opts o = api->parse;
    o.region = region_of(req);
    o.account = account_of(api);
    o.now_ms = 0;
    cp_ds_config *cfg = NULL;
    cp_ds_err e = CP_DS_ERR_INIT;
    if (cp_ds_config_parse(req->body, &o, &cfg, &e) != CP_OK) {
        return reply_derr(req, resp, &e);
    }
    char *arn = cp_http_scratch_strdup(req->scratch, cp_slice_str(cfg->arn));
    char *name = cp_http_scratch_strdup(req->scratch, cp_slice_str(cfg->name));
    cp_err err = {0};
    int rc = api->backend->create(api->backend->ctx, cfg, &err);
    if (rc != CP_OK) {
        return backend_error(api, req, resp, rc, name, &err);
    }
    cp_buf_puts(&resp->body, "{\"DeliveryStreamARN\":");
    put_str(&resp->body, arn);
    cp_buf_putc(&resp->body, '}');
    return CP_OK;
}

/* The DeliveryStreamName member of a control-plane request, copied into the scratch. */
static char *name_member(const cp_aws_req *req, cp_vctx *v, const cJSON *root)
{
    const char *s = NULL;
    cp_v_string(v, root, "DeliveryStreamName", "", &cp_spec_stream_name, &s);
    return s ? cp_http_scratch_strdup(req->scratch, cp_slice_str(s)) : NULL;
}

static int op_describe(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    api_cfg *api = ctx;
    cJSON *root;
    int rc = body_object(req, resp, &root);
    if (rc != CP_OK) {
        return rc;
    }
    cp_vctx v;
    cp_v_init(&v);
    char *name = name_member(req, &v, root);
    int64_t limit;
    cp_v_int(&v, root, "Limit", "", 0, 1, 10000, &limit);
    const char *start = NULL;
    cp_v_string(&v, root, "ExclusiveStartDestinationId", "", &cp_spec_destination_id_opt, &start);
    /* The only destination is past when the caller starts after it. */
    int destinations = !(start && strcmp(start, CP_DS_DESTINATION_ID) == 0);
    if ((rc = shape_result(req, resp, &v, root)) != CP_OK) {
        return rc;
    }
    cJSON_Delete(root);
    cp_ds_config *cfg = NULL;
    cp_ds_state st;
    memset(&st, 0, sizeof(st));
    st.status = CP_DS_ACTIVE;
    cp_err err = {0};
    rc = api->backend->get(api->backend->ctx, name, &cfg, &st, &err);
    if (rc != CP_OK) {
        return backend_error(api, req, resp, rc, name, &err);
    }
    cp_ds_config_describe(cfg, &st, destinations, &resp->body);
    cp_ds_config_free(cfg);
    return CP_OK;
}

static int op_list(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    api_cfg *api = ctx;
    cJSON *root;
    int rc = body_object(req, resp, &root);
    if (rc != CP_OK) {
        return rc;
    }
    cp_vctx v;
    cp_v_init(&v);
    int64_t limit = 10;
    cp_v_int(&v, root, "Limit", "", 0, 1, 10000, &limit);
    const char *type = NULL, *start = NULL;
    cp_v_string(&v, root, "DeliveryStreamType", "", &cp_spec_stream_type, &type);
    cp_v_string(&v, root, "ExclusiveStartDeliveryStreamName", "", &cp_spec_stream_name_opt, &start);
    char *cursor = start ? cp_strdup(start) : NULL;
    char *want = type ? cp_strdup(type) : NULL;
    if ((rc = shape_result(req, resp, &v, root)) != CP_OK) {
        cp_free(cursor);
        cp_free(want);
        return rc;
    }
    cJSON_Delete(root);
    /* Collect limit+1 matches to know whether more exist. With a type filter, each name costs
     * a config lookup: control plane, and streams are few. */
    cp_buf out = CP_BUF_INIT, names = CP_BUF_INIT;
    size_t found = 0;
    cp_err err = {0};
    for (;;) {
        size_t n = 0;
        cp_buf_reset(&names);
        rc = api->backend->list(api->backend->ctx, cursor, 100, &names, &n, &err);
        if (rc != CP_OK) {
            break;
        }
        const char *p = names.p;
        for (size_t i = 0; i < n && found <= (size_t) limit; i++, p += strlen(p) + 1) {
            int match = !want;
            if (want) {
                cp_ds_config *cfg = NULL;
                cp_err gerr = {0};
                if (api->backend->get(api->backend->ctx, p, &cfg, NULL, &gerr) == CP_OK) {
                    match = strcmp(cp_ds_type_name(cfg->type), want) == 0;
                    cp_ds_config_free(cfg);
                }
            }
            if (match && found++ < (size_t) limit) {
                cp_buf_puts(&out, out.len ? "," : "");
                put_str(&out, p);
            }
            cp_free(cursor);
            cursor = cp_strdup(p);
        }
        if (n < 100 || found > (size_t) limit) {
            break;
        }
    }
    cp_free(cursor);
    cp_free(want);
    cp_buf_free(&names);
    if (rc != CP_OK) {
        cp_buf_free(&out);
        return backend_error(api, req, resp, rc, "", &err);
    }
    cp_buf_puts(&resp->body, "{\"DeliveryStreamNames\":[");
    cp_buf_append(&resp->body, out.p, out.len);
    cp_buf_printf(&resp->body, "],\"HasMoreDeliveryStreams\":%s}",
                  found > (size_t) limit ? "true" : "false");
    cp_buf_free(&out);
    return CP_OK;
}

static int op_delete(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    api_cfg *api = ctx;
    cJSON *root;
    int rc = body_object(req, resp, &root);
    if (rc != CP_OK) {
        return rc;
    }
    cp_vctx v;
    cp_v_init(&v);
    char *name = name_member(req, &v, root);
    int force = 0;
    cp_v_bool(&v, root, "AllowForceDelete", &force);
    if ((rc = shape_result(req, resp, &v, root)) != CP_OK) {
        return rc;
    }
    cJSON_Delete(root);
    cp_err err = {0};
    rc = api->backend->remove(api->backend->ctx, name, force, &err);
    if (rc != CP_OK) {
        return backend_error(api, req, resp, rc, name, &err);
    }
    cp_buf_puts(&resp->body, "{}");
    return CP_OK;
}

static int op_update(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    api_cfg *api = ctx;
    cp_ds_update *u = NULL;
    cp_ds_err e = CP_DS_ERR_INIT;
    if (cp_ds_update_parse(req->body, &u, &e) != CP_OK) {
        return reply_derr(req, resp, &e);
    }
    char *name = cp_http_scratch_strdup(req->scratch, cp_slice_str(cp_ds_update_name(u)));
    cp_ds_config *cur = NULL, *next = NULL;
    cp_err err = {0};
    int rc = api->backend->get(api->backend->ctx, name, &cur, NULL, &err);
    if (rc != CP_OK) {
        cp_ds_update_free(u);
        return backend_error(api, req, resp, rc, name, &err);
    }
    cp_ds_parse_opts o = api->parse;
    o.region = cur->region;
    o.account = cur->account;
    o.now_ms = 0;
    rc = cp_ds_config_apply_update(cur, u, &o, &next, &e);
    uint32_t version = cur->version;
    cp_ds_config_free(cur);
    cp_ds_update_free(u);
    if (rc != CP_OK) {
        return reply_derr(req, resp, &e);
    }
    rc = api->backend->update(api->backend->ctx, name, version, next, &err);
    if (rc == CP_ECONDITION) {
        /* Another update won between our read and our write: the caller's version is stale. */
        return cp_aws_reply_errorf(resp, req->service, "ConcurrentModificationException",
                                   "Cannot update firehose: %s since the current version id has "
                                   "changed from %u",
                                   name, version);
    }
    if (rc != CP_OK) {
        return backend_error(api, req, resp, rc, name, &err);
    }
    cp_buf_puts(&resp->body, "{}");
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Tags                                                                                        */

/* Read-modify-write of the tag list; retried when an UpdateDestination moves the version in
 * between (tags themselves do not change it). */
static int change_tags(api_cfg *api, const cp_aws_req *req, cp_http_resp *resp, const char *name,
                       const cp_ds_tag *add, size_t nadd, const char *const *keys, size_t nkeys)
{
    for (int attempt = 0;; attempt++) {
        cp_ds_config *cur = NULL, *next = NULL;
        cp_err err = {0};
        int rc = api->backend->get(api->backend->ctx, name, &cur, NULL, &err);
        if (rc != CP_OK) {
            return backend_error(api, req, resp, rc, name, &err);
        }
        cp_ds_err e = CP_DS_ERR_INIT;
        rc = keys ? cp_ds_config_untag(cur, keys, nkeys, &next, &e)
                  : cp_ds_config_tag(cur, add, nadd, &next, &e);
        uint32_t version = cur->version;
        cp_ds_config_free(cur);
        if (rc != CP_OK) {
            return reply_derr(req, resp, &e);
        }
        rc = api->backend->update(api->backend->ctx, name, version, next, &err);
        if (rc == CP_ECONDITION && attempt < 4) {
            continue;
        }
        if (rc != CP_OK) {
            return backend_error(api, req, resp, rc, name, &err);
        }
        cp_buf_puts(&resp->body, "{}");
        return CP_OK;
    }
}

static int op_tag(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cJSON *root;
    int rc = body_object(req, resp, &root);
    if (rc != CP_OK) {
        return rc;
    }
    cp_vctx v;
    cp_v_init(&v);
    char *name = name_member(req, &v, root);
    const cJSON *arr = cp_v_array(&v, root, "Tags", "", 1, 1, CP_DS_MAX_TAGS);
    cp_ds_tag *tags = NULL;
    int n = arr ? cp_v_tags(&v, arr, "tags", &tags) : 0;
    if ((rc = shape_result(req, resp, &v, root)) == CP_OK) {
        cJSON_Delete(root);
        rc = change_tags(ctx, req, resp, name, tags, (size_t) (n > 0 ? n : 0), NULL, 0);
    }
    cp_ds_tags_free(tags, (size_t) (n > 0 ? n : 0));
    return rc;
}

static int op_untag(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    cJSON *root;
    int rc = body_object(req, resp, &root);
    if (rc != CP_OK) {
        return rc;
    }
    cp_vctx v;
    cp_v_init(&v);
    char *name = name_member(req, &v, root);
    const cJSON *arr = cp_v_array(&v, root, "TagKeys", "", 1, 1, CP_DS_MAX_TAGS);
    int n = arr ? cJSON_GetArraySize(arr) : 0;
    const char **keys = cp_http_scratch_alloc(req->scratch, (size_t) (n + 1) * sizeof(*keys));
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *it = cJSON_GetArrayItem(arr, i);
        char path[64];
        snprintf(path, sizeof(path), "tagKeys.%d.member", i + 1);
        if (!cJSON_IsString(it)) {
            if (!v.serr && !cJSON_IsNull(it)) {
                v.serr = 1;
                snprintf(v.smsg, sizeof(v.smsg), "Unexpected value type in TagKeys");
            }
            continue;
        }
        cp_v_check(&v, it->valuestring, path, &cp_spec_tag_key);
        keys[k++] = cp_http_scratch_strdup(req->scratch, cp_slice_str(it->valuestring));
    }
    if ((rc = shape_result(req, resp, &v, root)) != CP_OK) {
        return rc;
    }
    cJSON_Delete(root);
    return change_tags(ctx, req, resp, name, NULL, 0, keys, k);
}

static int op_list_tags(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    api_cfg *api = ctx;
    cJSON *root;
    int rc = body_object(req, resp, &root);
    if (rc != CP_OK) {
        return rc;
    }
    cp_vctx v;
    cp_v_init(&v);
    char *name = name_member(req, &v, root);
    int64_t limit = 50;
    cp_v_int(&v, root, "Limit", "", 0, 1, 50, &limit);
    const char *start = NULL;
    cp_strspec spec = cp_spec_tag_key;
    spec.required = 0;
    cp_v_string(&v, root, "ExclusiveStartTagKey", "", &spec, &start);
    char *after = start ? cp_http_scratch_strdup(req->scratch, cp_slice_str(start)) : NULL;
    if ((rc = shape_result(req, resp, &v, root)) != CP_OK) {
        return rc;
    }
    cJSON_Delete(root);
    cp_ds_config *cfg = NULL;
    cp_err err = {0};
    rc = api->backend->get(api->backend->ctx, name, &cfg, NULL, &err);
    if (rc != CP_OK) {
        return backend_error(api, req, resp, rc, name, &err);
    }
    cp_buf_puts(&resp->body, "{\"Tags\":[");
    int64_t shown = 0;
    int more = 0;
    for (size_t i = 0; i < cfg->ntags; i++) { /* sorted by key */
        const cp_ds_tag *t = &cfg->tags[i];
        if (after && strcmp(t->key, after) <= 0) {
            continue;
        }
        if (shown == limit) {
            more = 1;
            break;
        }
        cp_buf_puts(&resp->body, shown++ ? ",{\"Key\":" : "{\"Key\":");
        put_str(&resp->body, t->key);
        cp_buf_puts(&resp->body, ",\"Value\":");
        put_str(&resp->body, t->value);
        cp_buf_putc(&resp->body, '}');
    }
    cp_buf_printf(&resp->body, "],\"HasMoreTags\":%s}", more ? "true" : "false");
    cp_ds_config_free(cfg);
    return CP_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* PutRecord / PutRecordBatch                                                                  */

typedef struct rec_in {
    size_t off, len; /* in put_in.data: offsets, since the buffer grows while parsing */
    unsigned char has_data, is_null;
} rec_in;

typedef struct put_in {
    cp_slice name;
    int has_name;
    int has_records; /* "Record" / "Records" present and not null */
    cp_buf data;
    rec_in *recs;
    size_t n, cap;
    size_t count; /* entries sent, including those past the maximum */
    cp_buf tmp;
} put_in;

static int serialization(const cp_aws_req *req, cp_http_resp *resp, const char *msg)
{
    return cp_aws_reply_error(resp, req->service, "SerializationException", msg);
}

/* The Coral messages for a token of the wrong JSON type (as src/kinesis). */
static int mismatch(const cp_aws_req *req, cp_http_resp *resp, const cp_json_tok *t,
                    const char *want)
{
    if (t->type == CP_JSON_OBJ_BEGIN) {
        return serialization(req, resp, "Start of structure or map found where not expected.");
    }
    if (t->type == CP_JSON_ARR_BEGIN) {
        return serialization(req, resp, "Start of list found where not expected");
    }
    if (strcmp(want, "struct") == 0) {
        return serialization(req, resp, "Expected null");
    }
    if (strcmp(want, "list") == 0) {
        return serialization(req, resp, "Expected list or null");
    }
    const char *from = t->type == CP_JSON_TRUE || t->type == CP_JSON_FALSE
                           ? "class java.lang.Boolean"
                       : t->type == CP_JSON_NUMBER ? "class java.math.BigDecimal"
                                                   : "class java.lang.String";
    return cp_aws_reply_errorf(resp, req->service, "SerializationException",
                               "%s can not be converted to %s", from, want);
}

static int decode_data(const cp_aws_req *req, cp_http_resp *resp, const cp_json_tok *t, put_in *p,
                       rec_in *r)
{
    cp_slice text = t->s;
    if (t->escaped) {
        cp_buf_reset(&p->tmp);
        if (cp_json_unescape(t->s, &p->tmp) != CP_OK) {
            return serialization(req, resp, NULL);
        }
        text = cp_buf_slice(&p->tmp);
    }
    r->off = p->data.len;
    if (text.len % 4 != 0 || cp_base64_decode(text, &p->data) != CP_OK) {
        p->data.len = r->off;
        return cp_aws_reply_errorf(resp, req->service, "SerializationException",
                                   "Unable to decode the base64 Data of a record (%zu characters)",
                                   text.len);
    }
    r->len = p->data.len - r->off;
    r->has_data = 1;
    return CP_OK;
}

/* One record object after its '{'. */
static int parse_record(const cp_aws_req *req, cp_http_resp *resp, cp_json_lexer *lx, put_in *p,
                        rec_in *r)
{
    cp_json_tok t;
    for (;;) {
        if (cp_json_next(lx, &t) < 0) {
            return serialization(req, resp, NULL);
        }
        if (t.type == CP_JSON_OBJ_END) {
            return CP_OK;
        }
        int data = cp_json_tok_is(&t, "Data");
        if (cp_json_next(lx, &t) < 0) {
            return serialization(req, resp, NULL);
        }
        int rc = CP_OK;
        if (!data) {
            rc = cp_json_skip(lx, &t) == CP_OK ? CP_OK : serialization(req, resp, NULL);
        } else if (t.type == CP_JSON_STRING) {
            rc = decode_data(req, resp, &t, p, r);
        } else if (t.type != CP_JSON_NULL) {
            rc = mismatch(req, resp, &t, "a Blob");
        }
        if (rc != CP_OK) {
            return rc;
        }
    }
}

static rec_in *add_rec(put_in *p)
{
    p->count++;
    if (p->n >= CP_FH_MAX_BATCH + 1) {
        return NULL; /* over the limit: keep checking types, not bytes */
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 16;
        p->recs = cp_realloc(p->recs, p->cap * sizeof(*p->recs));
    }
    rec_in *r = &p->recs[p->n++];
    memset(r, 0, sizeof(*r));
    return r;
}

static int parse_put(const cp_aws_req *req, cp_http_resp *resp, put_in *p, int batch)
{
    cp_json_lexer lx;
    cp_json_tok t;
    cp_json_lexer_init(&lx, req->body);
    cp_buf_reserve(&p->data, req->body.len / 4 * 3 + 4);
    if (cp_json_next(&lx, &t) < 0 || t.type != CP_JSON_OBJ_BEGIN) {
        return serialization(req, resp, NULL);
    }
    for (;;) {
        if (cp_json_next(&lx, &t) < 0) {
            return serialization(req, resp, NULL);
        }
        if (t.type == CP_JSON_OBJ_END) {
            break;
        }
        int is_name = cp_json_tok_is(&t, "DeliveryStreamName");
        int is_recs = cp_json_tok_is(&t, batch ? "Records" : "Record");
        if (cp_json_next(&lx, &t) < 0) {
            return serialization(req, resp, NULL);
        }
        int rc = CP_OK;
        if (is_name) {
            if (t.type == CP_JSON_STRING) {
                cp_buf_reset(&p->tmp);
                cp_slice s;
                if (cp_json_tok_string(&t, &p->tmp, &s) != CP_OK) {
                    return serialization(req, resp, NULL);
                }
                p->name = cp_slice_of(cp_http_scratch_strdup(req->scratch, s), s.len);
                p->has_name = 1;
            } else if (t.type != CP_JSON_NULL) {
                rc = mismatch(req, resp, &t, "an String");
            }
        } else if (is_recs && t.type == CP_JSON_NULL) {
            p->has_records = 0;
        } else if (is_recs && !batch) {
            if (t.type != CP_JSON_OBJ_BEGIN) {
                rc = mismatch(req, resp, &t, "struct");
            } else {
                p->has_records = 1;
                p->n = p->count = 0;
                cp_buf_reset(&p->data);
                rc = parse_record(req, resp, &lx, p, add_rec(p));
            }
        } else if (is_recs) {
            if (t.type != CP_JSON_ARR_BEGIN) {
                rc = mismatch(req, resp, &t, "list");
            } else {
                p->has_records = 1;
                p->n = p->count = 0;
                cp_buf_reset(&p->data); /* a repeated member replaces the first */
                for (;;) {
                    if (cp_json_next(&lx, &t) < 0) {
                        return serialization(req, resp, NULL);
                    }
                    if (t.type == CP_JSON_ARR_END) {
                        break;
                    }
                    size_t mark = p->data.len;
                    rec_in scratch_rec, *r = add_rec(p);
                    if (!r) {
                        memset(&scratch_rec, 0, sizeof(scratch_rec));
                        r = &scratch_rec;
                    }
                    if (t.type == CP_JSON_NULL) {
                        r->is_null = 1;
                    } else if (t.type != CP_JSON_OBJ_BEGIN) {
                        return mismatch(req, resp, &t, "struct");
                    } else if ((rc = parse_record(req, resp, &lx, p, r)) != CP_OK) {
                        return rc;
                    }
                    if (r == &scratch_rec) {
                        p->data.len = mark;
                    }
                }
            }
        } else {
            rc = cp_json_skip(&lx, &t) == CP_OK ? CP_OK : serialization(req, resp, NULL);
        }
        if (rc != CP_OK) {
            return rc;
        }
    }
    return CP_OK;
}

/* Shape checks after the whole body was read (AWS deserialises before it validates). */
static int check_put(const cp_aws_req *req, cp_http_resp *resp, const put_in *p, int batch)
{
    cp_vctx v;
    cp_v_init(&v);
    if (!p->has_name) {
        cp_v_add(&v, NULL, "deliveryStreamName", "Member must not be null");
    } else {
        cp_v_check(&v, p->name.p, "deliveryStreamName", &cp_spec_stream_name);
    }
    const char *list = batch ? "records" : "record";
    if (!p->has_records) {
        cp_v_add(&v, NULL, list, "Member must not be null");
    } else if (batch && p->count < 1) {
        cp_v_add_bare(&v, list, "Member must have length greater than or equal to 1");
    } else if (batch && p->count > CP_FH_MAX_BATCH) {
        cp_v_add_bare(&v, list, "Member must have length less than or equal to %d",
                      CP_FH_MAX_BATCH);
    } else {
        for (size_t i = 0; i < p->n; i++) {
            const rec_in *r = &p->recs[i];
            char path[64];
            if (batch) {
                snprintf(path, sizeof(path), "records.%zu.member%s", i + 1,
                         r->is_null ? "" : ".data");
            } else {
                snprintf(path, sizeof(path), "record.data");
            }
            if (r->is_null || !r->has_data) {
                cp_v_add(&v, NULL, path, "Member must not be null");
            } else if (r->len > CP_FH_MAX_RECORD_BYTES) {
                /* Coral renders a blob as the Java ByteBuffer it was decoded into. */
                char val[96];
                snprintf(val, sizeof(val), "java.nio.HeapByteBuffer[pos=0 lim=%zu cap=%zu]", r->len,
                         r->len);
                cp_v_add(&v, val, path, "Member must have length less than or equal to %d",
                         CP_FH_MAX_RECORD_BYTES);
            }
        }
    }
    cp_ds_err e = CP_DS_ERR_INIT;
    int rc = cp_v_result(&v, &e);
    cp_v_free(&v);
    if (rc != CP_OK) {
        return reply_derr(req, resp, &e);
    }
    if (batch && p->data.len > CP_FH_MAX_BATCH_BYTES) {
        return cp_aws_reply_error(resp, req->service, IAE, "Records size exceeds 4 MB limit");
    }
    return CP_OK;
}

void cp_firehose_record_id(const char *stream, uint64_t position, char out[CP_FH_RECORD_ID_SIZE])
{
    unsigned char in[8], md[32];
    cp_buf b = CP_BUF_INIT;
    cp_store_u64le(in, position);
    cp_buf_puts(&b, "changepipe-firehose-record:");
    cp_buf_puts(&b, stream);
    cp_buf_putc(&b, 0);
    cp_buf_append(&b, in, 8);
    cp_sha256(b.p, b.len, md);
    cp_buf_free(&b);
    /* 64 hex of the digest, then the position itself: unique within the stream. */
    cp_hex(md, 32, out);
    snprintf(out + 64, CP_FH_RECORD_ID_SIZE - 64, "%016llx", (unsigned long long) position);
}

static int do_put(void *ctx, const cp_aws_req *req, cp_http_resp *resp, int batch)
{
    api_cfg *api = ctx;
    put_in p;
    memset(&p, 0, sizeof(p));
    int rc = parse_put(req, resp, &p, batch);
    if (rc == CP_OK) {
        rc = check_put(req, resp, &p, batch);
    }
    if (rc != CP_OK) {
        goto out;
    }
    cp_slice *recs = cp_http_scratch_alloc(req->scratch, p.n * sizeof(*recs));
    uint64_t *pos = cp_http_scratch_alloc(req->scratch, p.n * sizeof(*pos));
    int *codes = cp_http_scratch_alloc(req->scratch, p.n * sizeof(*codes));
    for (size_t i = 0; i < p.n; i++) {
        recs[i] = cp_slice_of(p.data.p + p.recs[i].off, p.recs[i].len);
        pos[i] = 0;
        codes[i] = CP_OK;
    }
    const char *name = p.name.p;
    cp_err err = {0};
    rc = api->backend->put(api->backend->ctx, name, recs, p.n, pos, codes, &err);
    if (rc == CP_EINVAL) {
        /* Only DirectPut streams take records (firehose.md 1.9). */
        rc = cp_aws_reply_error(resp, req->service, IAE, CP_FH_MSG_KINESIS_PUT);
        goto out;
    }
    if (rc != CP_OK) {
        rc = backend_error(api, req, resp, rc, name, &err);
        goto out;
    }
    char id[CP_FH_RECORD_ID_SIZE];
    if (!batch) {
        if (codes[0] != CP_OK) {
            rc =
                cp_aws_reply_error(resp, req->service, "ServiceUnavailableException", "Slow down.");
            goto out;
        }
        cp_firehose_record_id(name, pos[0], id);
        cp_buf_printf(&resp->body, "{\"RecordId\":\"%s\",\"Encrypted\":false}", id);
        goto out;
    }
    size_t failed = 0;
    for (size_t i = 0; i < p.n; i++) {
        failed += codes[i] != CP_OK;
    }
    cp_buf_printf(&resp->body,
                  "{\"FailedPutCount\":%zu,\"Encrypted\":false,"
                  "\"RequestResponses\":[",
                  failed);
    for (size_t i = 0; i < p.n; i++) {
        cp_buf_puts(&resp->body, i ? "," : "");
        if (codes[i] == CP_OK) {
            cp_firehose_record_id(name, pos[i], id);
            cp_buf_printf(&resp->body, "{\"RecordId\":\"%s\"}", id);
        } else if (codes[i] == CP_EAGAIN) {
            cp_buf_puts(&resp->body, "{\"ErrorCode\":\"ServiceUnavailableException\","
                                     "\"ErrorMessage\":\"Slow down.\"}");
        } else {
            cp_buf_puts(&resp->body, "{\"ErrorCode\":\"InternalFailure\","
                                     "\"ErrorMessage\":\"Internal service failure.\"}");
        }
    }
    cp_buf_puts(&resp->body, "]}");
out:
    cp_buf_free(&p.data);
    cp_buf_free(&p.tmp);
    cp_free(p.recs);
    return rc;
}

static int op_put_record(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    return do_put(ctx, req, resp, 0);
}

static int op_put_record_batch(void *ctx, const cp_aws_req *req, cp_http_resp *resp)
{
    return do_put(ctx, req, resp, 1);
}

/* ------------------------------------------------------------------------------------------ */

static const cp_aws_op ops[] = {
    {"CreateDeliveryStream", op_create, 0},
    {"DescribeDeliveryStream", op_describe, 0},
    {"ListDeliveryStreams", op_list, 0},
    {"DeleteDeliveryStream", op_delete, 0},
    {"UpdateDestination", op_update, 0},
    {"PutRecord", op_put_record, CP_AWS_OP_RAW_JSON},
    {"PutRecordBatch", op_put_record_batch, CP_AWS_OP_RAW_JSON},
    {"TagDeliveryStream", op_tag, 0},
    {"UntagDeliveryStream", op_untag, 0},
    {"ListTagsForDeliveryStream", op_list_tags, 0},
    {NULL, NULL, 0},
};

int cp_firehose_api_register(cp_aws_router *r, const cp_firehose_api_cfg *cfg)
{
    return cp_aws_register_service(r, "Firehose_20150804", NULL, NULL, ops, (void *) cfg);
}
