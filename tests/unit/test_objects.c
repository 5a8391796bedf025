/* SPDX-License-Identifier: MIT */
/* The local bucket store: buckets, atomic object writes, listing, multipart, crash intents. */
#include "cpt.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "core/hash.h"
#include "objects/bucket.h"

static cp_bucket_store *open_store_min_part(uint64_t min_part)
{
    cp_bucket_cfg cfg = {cpt_tmpdir(), NULL, 0, min_part};
    cp_bucket_store *s = NULL;
    cp_err err = {0};
    int rc = cp_bucket_store_open(&cfg, &s, &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("open: %s", err.msg);
    }
    return s;
}

static cp_bucket_store *open_store(void)
{
    return open_store_min_part(0);
}

static void put_str(cp_bucket_store *s, const char *b, const char *key, const char *data)
{
    cp_err err = {0};
    int rc = cp_bucket_put(s, b, cp_slice_str(key), cp_slice_str(data), NULL, NULL, &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("put %s: %d %s", key, rc, err.msg);
    }
}

static void expect_content(cp_bucket_store *s, const char *b, const char *key, const char *want)
{
    cp_buf got = CP_BUF_INIT;
    cp_bucket_obj meta = CP_BUCKET_OBJ_INIT;
    cp_err err = {0};
    int rc = cp_bucket_read(s, b, cp_slice_str(key), &got, &meta, &err);
    if (rc != CP_OK) {
        CPT_FAIL_AT("read %s: %d %s", key, rc, err.msg);
    }
    CPT_EQ_MEM(got.p, got.len, want, strlen(want));
    CPT_EQ_INT(meta.size, strlen(want));
    unsigned char md[16];
    char hex[33];
    cp_md5(want, strlen(want), md);
    cp_hex(md, 16, hex);
    CPT_EQ_STR(meta.etag, hex);
    cp_buf_free(&got);
    cp_bucket_obj_free(&meta);
}

static char *path_in(const char *rel)
{
    static char p[4096];
    snprintf(p, sizeof(p), "%s/buckets/%s", cpt_tmpdir(), rel);
    return p;
}

static int file_equals(const char *rel, const char *want)
{
    FILE *f = fopen(path_in(rel), "rb");
    if (!f) {
        return 0;
    }
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    return n == strlen(want) && memcmp(buf, want, n) == 0;
}

static int exists(const char *rel)
{
    struct stat st;
    return lstat(path_in(rel), &st) == 0;
}

/* Entries of a directory other than . and .. */
static int dir_entries(const char *rel)
{
    DIR *d = opendir(path_in(rel));
    if (!d) {
        return -1;
    }
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    }
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------------------------------ */

static int count_bucket(void *ctx, const cp_bucket_info *b)
{
    cp_buf *names = ctx;
    cp_buf_printf(names, "%s@%s,", b->name, b->region);
    CPT_CHECK(b->created_ms > 0);
    return 0;
}

static void buckets_create_list_delete(void)
{
    cp_bucket_store *s = open_store();
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_create(s, "zeta", NULL, &err), CP_OK);
    CPT_EQ_INT(cp_bucket_create(s, "alpha", "ap-northeast-2", &err), CP_OK);
    CPT_EQ_INT(cp_bucket_create(s, "alpha", NULL, &err), CP_EEXIST);
    CPT_EQ_INT(cp_bucket_create(s, "bad", "us east", &err), CP_EINVAL);
    cp_buf names = CP_BUF_INIT;
    CPT_EQ_INT(cp_bucket_list_buckets(s, count_bucket, &names, &err), CP_OK);
    CPT_EQ_STR(names.p, "alpha@ap-northeast-2,zeta@us-east-1,");
    cp_bucket_info info;
    CPT_EQ_INT(cp_bucket_info_get(s, "alpha", &info, &err), CP_OK);
    CPT_EQ_STR(info.region, "ap-northeast-2");
    CPT_EQ_INT(cp_bucket_info_get(s, "nope", NULL, &err), CP_BUCKET_ENOBUCKET);
    CPT_EQ_INT(cp_bucket_info_get(s, "..", NULL, &err), CP_BUCKET_ENOBUCKET);
    CPT_CHECK(exists("alpha/.cp-tmp"));

    put_str(s, "alpha", "k", "v");
    CPT_EQ_INT(cp_bucket_delete(s, "alpha", &err), CP_BUCKET_ENOTEMPTY);
    CPT_EQ_INT(cp_bucket_delete_object(s, "alpha", CP_SLICE("k"), &err), CP_OK);
    char id[CP_BUCKET_UPLOAD_ID_LEN + 1];
    CPT_EQ_INT(cp_bucket_mpu_create(s, "alpha", CP_SLICE("m"), CP_SLICE(""), id, &err), CP_OK);
    CPT_EQ_INT(cp_bucket_delete(s, "alpha", &err), CP_OK); /* uploads go with it */
    CPT_CHECK(!exists("alpha"));
    CPT_EQ_INT(cp_bucket_delete(s, "alpha", &err), CP_BUCKET_ENOBUCKET);
    CPT_EQ_INT(cp_bucket_put(s, "alpha", CP_SLICE("k"), CP_SLICE("v"), NULL, NULL, &err),
               CP_BUCKET_ENOBUCKET);
    /* Recreate: empty again. */
    CPT_EQ_INT(cp_bucket_create(s, "alpha", NULL, &err), CP_OK);
    CPT_EQ_INT(cp_bucket_exists(s, "alpha", CP_SLICE("k"), &err), 0);
    cp_buf_free(&names);
    cp_bucket_store_close(s);
}

static void bucket_name_rules(void)
{
    const char *good[] = {
        "abc", "my-bucket", "my.bucket.1",
        "0ab", "a-b-c",     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    const char *bad[] = {
        "ab",          "ABC",
        "a_b",         "-ab",
        "ab-",         ".ab",
        "ab.",         "a..b",
        "192.168.5.4", "xn--abc",
        "sthree-ab",   "abc-s3alias",
        "abc--ol-s3",  "a b",
        "../x",        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cp_err err = {0};
        if (cp_bucket_name_check(cp_slice_str(good[i]), &err) != CP_OK) {
            CPT_FAIL_AT("refused %s: %s", good[i], err.msg);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cp_bucket_name_check(cp_slice_str(bad[i]), NULL) != CP_EINVAL) {
            CPT_FAIL_AT("accepted %s", bad[i]);
        }
    }
}

static void objects_are_plain_files(void)
{
    cp_bucket_store *s = open_store();
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_create(s, "data", NULL, &err), CP_OK);
    put_str(s, "data", "Livestreams/LivestreamID=x/file-1.json", "{\"a\":1}\n");
    CPT_CHECK(file_equals("data/Livestreams/LivestreamID=x/file-1.json", "{\"a\":1}\n"));
    expect_content(s, "data", "Livestreams/LivestreamID=x/file-1.json", "{\"a\":1}\n");

    /* Overwrite: same file, new bytes, new ETag; metadata replaced. */
    char hdrs[] = "content-type\0text/plain\0x-amz-meta-who\0me\0";
    cp_bucket_put_opts opts = {cp_slice_of(hdrs, sizeof(hdrs) - 1), NULL};
    cp_bucket_obj o = CP_BUCKET_OBJ_INIT;
    CPT_EQ_INT(cp_bucket_put(s, "data", CP_SLICE("Livestreams/LivestreamID=x/file-1.json"),
                             CP_SLICE("second"), &opts, &o, &err),
               CP_OK);
    CPT_EQ_STR(o.etag, "a9f0e61a137d86aa9db53465e0801612");
    CPT_CHECK(file_equals("data/Livestreams/LivestreamID=x/file-1.json", "second"));
    cp_bucket_obj m = CP_BUCKET_OBJ_INIT;
    CPT_EQ_INT(cp_bucket_get(s, "data", CP_SLICE("Livestreams/LivestreamID=x/file-1.json"), &m,
                             NULL, &err),
               CP_OK);
    cp_slice ct = cp_bucket_obj_header(&m, "content-type");
    CPT_EQ_MEM(ct.p, ct.len, "text/plain", 10);
    cp_slice who = cp_bucket_obj_header(&m, "x-amz-meta-who");
    CPT_EQ_MEM(who.p, who.len, "me", 2);
    CPT_CHECK(m.mtime_ms > 0);
    CPT_EQ_INT(dir_entries("data/.cp-tmp"), 0);

    /* Empty objects are objects. */
    put_str(s, "data", "empty", "");
    expect_content(s, "data", "empty", "");

    /* Delete removes the file and the directories it leaves empty, not the bucket. */
    CPT_EQ_INT(cp_bucket_delete_object(s, "data",
                                       CP_SLICE("Livestreams/LivestreamID=x/file-1.json"), &err),
               CP_OK);
    CPT_CHECK(!exists("data/Livestreams"));
    CPT_CHECK(exists("data/empty"));
    CPT_EQ_INT(cp_bucket_delete_object(s, "data",
                                       CP_SLICE("Livestreams/LivestreamID=x/file-1.json"), &err),
               CP_ENOTFOUND);
    CPT_EQ_INT(cp_bucket_get(s, "data", CP_SLICE("nope"), NULL, NULL, &err), CP_ENOTFOUND);
    CPT_EQ_INT(cp_bucket_get(s, "nobucket", CP_SLICE("k"), NULL, NULL, &err), CP_BUCKET_ENOBUCKET);
    cp_bucket_obj_free(&o);
    cp_bucket_obj_free(&m);
    cp_bucket_store_close(s);
}

static void hostile_keys_stay_inside_the_bucket(void)
{
    cp_bucket_store *s = open_store();
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_create(s, "safe", NULL, &err), CP_OK);
    CPT_EQ_INT(cp_bucket_create(s, "other", NULL, &err), CP_OK);
    const char *keys[] = {
        "../other/stolen", "../../escape", "/etc/passwd", "a/../../../x", "..",       ".", "./.",
        ".cp-tmp/evil",    ".cp-index.db", "%2e%2e/x",    "a//b",         "trailing/"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        put_str(s, "safe", keys[i], keys[i]);
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        expect_content(s, "safe", keys[i], keys[i]);
    }
    /* Nothing appeared outside the bucket directory. */
    CPT_EQ_INT(dir_entries("other"), 2); /* .cp-tmp and .cp-uploads only */
    CPT_CHECK(!exists("escape"));
    char outside[4096];
    snprintf(outside, sizeof(outside), "%s/escape", cpt_tmpdir());
    struct stat st;
    CPT_CHECK(lstat(outside, &st) != 0);
    CPT_EQ_INT(dir_entries("safe/.cp-tmp"), 0);
    CPT_CHECK(file_equals("safe/%d../other/stolen", "../other/stolen"));
    CPT_CHECK(file_equals("safe/%d.cp-tmp/evil", ".cp-tmp/evil"));
    /* Keys the store refuses outright. */
    CPT_EQ_INT(cp_bucket_put(s, "safe", cp_slice_of("a\0b", 3), CP_SLICE("x"), NULL, NULL, &err),
               CP_EINVAL);
    CPT_EQ_INT(cp_bucket_put(s, "safe", CP_SLICE(""), CP_SLICE("x"), NULL, NULL, &err), CP_EINVAL);
    char big[1025];
    memset(big, 'a', sizeof(big));
    CPT_EQ_INT(cp_bucket_put(s, "safe", cp_slice_of(big, 1025), CP_SLICE("x"), NULL, NULL, &err),
               CP_ETOOBIG);
    /* Bucket names are never paths. */
    CPT_EQ_INT(cp_bucket_put(s, "..", CP_SLICE("x"), CP_SLICE("x"), NULL, NULL, &err),
               CP_BUCKET_ENOBUCKET);
    cp_bucket_store_close(s);
}

static void symlinks_are_not_followed(void)
{
    cp_bucket_store *s = open_store();
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_create(s, "sym", NULL, &err), CP_OK);
    char target[4096], link[4096];
    snprintf(target, sizeof(target), "%s/outside", cpt_tmpdir());
    CPT_EQ_INT(mkdir(target, 0755), 0);
    snprintf(link, sizeof(link), "%s", path_in("sym/dir"));
    CPT_EQ_INT(symlink(target, link), 0);
    /* "dir" is a symlink, not a directory: the key goes to the escaped directory instead. */
    put_str(s, "sym", "dir/x", "payload");
    expect_content(s, "sym", "dir/x", "payload");
    CPT_EQ_INT(dir_entries("../outside"), 0);
    CPT_CHECK(file_equals("sym/%ddir/x", "payload"));
    cp_bucket_store_close(s);
}

static void file_and_directory_under_one_name(void)
{
    cp_bucket_store *s = open_store();
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_create(s, "fdc", NULL, &err), CP_OK);
    /* S3 allows all of these at once; a directory tree needs the escaped forms. */
    put_str(s, "fdc", "a", "file a");
    put_str(s, "fdc", "a/b", "file a/b");
    put_str(s, "fdc", "a/", "folder marker");
    put_str(s, "fdc", "x/y", "file x/y");
    put_str(s, "fdc", "x", "file x");
    expect_content(s, "fdc", "a", "file a");
    expect_content(s, "fdc", "a/b", "file a/b");
    expect_content(s, "fdc", "a/", "folder marker");
    expect_content(s, "fdc", "x/y", "file x/y");
    expect_content(s, "fdc", "x", "file x");
    CPT_CHECK(file_equals("fdc/a", "file a"));
    CPT_CHECK(file_equals("fdc/%da/b", "file a/b"));
    CPT_CHECK(file_equals("fdc/x/y", "file x/y"));
    CPT_CHECK(file_equals("fdc/%fx", "file x"));
    /* Overwrites keep their place. */
    put_str(s, "fdc", "x", "file x v2");
    expect_content(s, "fdc", "x", "file x v2");
    CPT_EQ_INT(cp_bucket_delete_object(s, "fdc", CP_SLICE("a"), &err), CP_OK);
    CPT_EQ_INT(cp_bucket_delete_object(s, "fdc", CP_SLICE("x/y"), &err), CP_OK);
    expect_content(s, "fdc", "a/b", "file a/b");
    expect_content(s, "fdc", "x", "file x v2");
    /* With "a" gone, a new "a/c" takes the plain directory again. */
    put_str(s, "fdc", "a/c", "file a/c");
    CPT_CHECK(file_equals("fdc/a/c", "file a/c"));
    put_str(s, "fdc", "a", "file a again"); /* "a" is a directory now: escaped file */
    CPT_CHECK(file_equals("fdc/%fa", "file a again"));
    expect_content(s, "fdc", "a", "file a again");
    cp_bucket_store_close(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Listing                                                                                     */

typedef struct collected {
    cp_buf text; /* "K:key\n" or "P:prefix\n" per entry */
    int n;
} collected;

static int collect_cb(void *ctx, const cp_bucket_entry *e)
{
    collected *c = ctx;
    cp_buf_printf(c->text.p ? &c->text : &c->text, "%c:%.*s\n", e->is_prefix ? 'P' : 'K',
                  (int) e->key.len, e->key.p);
    c->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    const char *x = *(const char *const *) a, *y = *(const char *const *) b;
    return cp_slice_cmp(cp_slice_str(x), cp_slice_str(y));
}

static void listing_pages_in_s3_order(void)
{
    cp_bucket_store *s = open_store();
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_create(s, "lst", NULL, &err), CP_OK);
    /* 300 keys over a few "directories", including names that sort around '/'
     * ('-' < '/' < '0'), so directory order and key order differ. */
    enum { N = 300 };
    char *keys[N];
    for (int i = 0; i < N; i++) {
        char k[64];
        switch (i % 5) {
        case 0:
            snprintf(k, sizeof(k), "logs/2024/%03d.json", i);
            break;
        case 1:
            snprintf(k, sizeof(k), "logs-old/%03d", i);
            break;
        case 2:
            snprintf(k, sizeof(k), "logs0/%03d", i);
            break;
        case 3:
            snprintf(k, sizeof(k), "logs/%03d", i);
            break;
        default:
            snprintf(k, sizeof(k), "top-%03d", i);
        }
        keys[i] = strdup(k);
        put_str(s, "lst", k, k);
    }
    qsort(keys, N, sizeof(keys[0]), cmp_str);

    /* Full listing in pages of 7 equals the sorted key list. */
    collected c = {CP_BUF_INIT, 0};
    cp_bucket_list_res res = CP_BUCKET_LIST_RES_INIT;
    cp_buf resume = CP_BUF_INIT;
    int pages = 0;
    do {
        cp_bucket_list_req rq = {{NULL, 0}, {NULL, 0}, {NULL, 0}, cp_buf_slice(&resume), 7};
        CPT_EQ_INT(cp_bucket_list(s, "lst", &rq, collect_cb, &c, &res, &err), CP_OK);
        CPT_CHECK(res.count <= 7);
        CPT_CHECK(res.truncated ? res.count == 7 : 1);
        cp_buf_reset(&resume);
        cp_buf_append(&resume, res.next.p, res.next.len);
        pages++;
    } while (res.truncated);
    CPT_EQ_INT(c.n, N);
    CPT_EQ_INT(pages, (N + 6) / 7);
    cp_buf want = CP_BUF_INIT;
    for (int i = 0; i < N; i++) {
        cp_buf_printf(&want, "K:%s\n", keys[i]);
    }
    CPT_EQ_STR(c.text.p, want.p);

    /* Delimiter at the top: the common prefixes and the top-level keys, in order. */
    cp_buf_reset(&c.text);
    c.n = 0;
    cp_bucket_list_req rq = {{NULL, 0}, CP_SLICE("/"), {NULL, 0}, {NULL, 0}, 1000};
    CPT_EQ_INT(cp_bucket_list(s, "lst", &rq, collect_cb, &c, &res, &err), CP_OK);
    CPT_CHECK(!res.truncated);
    CPT_CHECK(strncmp(c.text.p, "P:logs-old/\nP:logs/\nP:logs0/\nK:top-004\n", 39) == 0);
    CPT_EQ_INT(c.n, 3 + N / 5);

    /* Prefix + delimiter + pagination across prefixes: page size 1 still visits each prefix
     * once. */
    cp_buf_reset(&c.text);
    c.n = 0;
    cp_buf_reset(&resume);
    do {
        cp_bucket_list_req r2 = {
            CP_SLICE("logs"), CP_SLICE("/"), {NULL, 0}, cp_buf_slice(&resume), 1};
        CPT_EQ_INT(cp_bucket_list(s, "lst", &r2, collect_cb, &c, &res, &err), CP_OK);
        cp_buf_reset(&resume);
        cp_buf_append(&resume, res.next.p, res.next.len);
    } while (res.truncated);
    CPT_EQ_STR(c.text.p, "P:logs-old/\nP:logs/\nP:logs0/\n");

    /* Inside one prefix, with StartAfter. */
    cp_buf_reset(&c.text);
    c.n = 0;
    cp_bucket_list_req r3 = {
        CP_SLICE("logs/"), CP_SLICE("/"), CP_SLICE("logs/2024/"), {NULL, 0}, 1000};
    CPT_EQ_INT(cp_bucket_list(s, "lst", &r3, collect_cb, &c, &res, &err), CP_OK);
    /* Keys up to logs/198 sort before the StartAfter; logs/2024/... rolls up again. */
    CPT_EQ_INT(c.n, 1 + 20);
    CPT_CHECK(strncmp(c.text.p, "P:logs/2024/\nK:logs/203\n", 24) == 0);
    CPT_EQ_STR(res.last.p, "logs/298");

    /* Max keys 0 returns nothing, not truncated; a missing bucket is an error. */
    cp_bucket_list_req r4 = {{NULL, 0}, {NULL, 0}, {NULL, 0}, {NULL, 0}, 0};
    CPT_EQ_INT(cp_bucket_list(s, "lst", &r4, collect_cb, &c, &res, &err), CP_OK);
    CPT_EQ_INT(res.count, 0);
    CPT_EQ_INT(res.truncated, 0);
    CPT_EQ_INT(cp_bucket_list(s, "nope", &r4, collect_cb, &c, &res, &err), CP_BUCKET_ENOBUCKET);

    /* Recursive walk by prefix. */
    cp_buf_reset(&c.text);
    c.n = 0;
    CPT_EQ_INT(cp_bucket_walk(s, "lst", CP_SLICE("logs/2024/"), collect_cb, &c, &err), CP_OK);
    CPT_EQ_INT(c.n, N / 5);
    CPT_CHECK(strncmp(c.text.p, "K:logs/2024/000.json\nK:logs/2024/005.json\n", 42) == 0);

    for (int i = 0; i < N; i++) {
        free(keys[i]);
    }
    cp_buf_free(&want);
    cp_buf_free(&resume);
    cp_buf_free(&c.text);
    cp_bucket_list_res_free(&res);
    cp_bucket_store_close(s);
}

static void listing_never_shows_staging_files(void)
{
    cp_bucket_store *s = open_store();
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_create(s, "stg", NULL, &err), CP_OK);
    cp_bucket_writer *w;
    CPT_EQ_INT(cp_bucket_writer_open(s, "stg", CP_SLICE("big"), &w, &err), CP_OK);
    CPT_EQ_INT(cp_bucket_writer_write(w, "partial", 7, &err), CP_OK);
    CPT_EQ_INT(cp_bucket_writer_size(w), 7);
    /* Mid-write: the staging file exists, the object does not. */
    CPT_EQ_INT(dir_entries("stg/.cp-tmp"), 1);
    CPT_EQ_INT(cp_bucket_exists(s, "stg", CP_SLICE("big"), &err), 0);
    collected c = {CP_BUF_INIT, 0};
    CPT_EQ_INT(cp_bucket_walk(s, "stg", CP_SLICE(""), collect_cb, &c, &err), CP_OK);
    CPT_EQ_INT(c.n, 0);
    CPT_CHECK(!exists("stg/big"));
    cp_bucket_writer_abort(w);
    CPT_EQ_INT(dir_entries("stg/.cp-tmp"), 0);
    CPT_CHECK(!exists("stg/big"));
    cp_buf_free(&c.text);
    cp_bucket_store_close(s);
}

static void failed_writes_leave_nothing(void)
{
    cp_bucket_cfg cfg = {cpt_tmpdir(), NULL, 16, 0};
    cp_bucket_store *s = NULL;
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_store_open(&cfg, &s, &err), CP_OK);
    CPT_EQ_INT(cp_bucket_create(s, "fwb", NULL, &err), CP_OK);
    put_str(s, "fwb", "k", "old");
    /* Too large: refused, the old object intact, nothing staged. */
    CPT_EQ_INT(
        cp_bucket_put(s, "fwb", CP_SLICE("k"), CP_SLICE("0123456789abcdefX"), NULL, NULL, &err),
        CP_ETOOBIG);
    expect_content(s, "fwb", "k", "old");
    /* Wrong Content-MD5: refused the same way. */
    unsigned char md[16];
    cp_md5("other", 5, md);
    cp_bucket_put_opts opts = {{NULL, 0}, md};
    CPT_EQ_INT(cp_bucket_put(s, "fwb", CP_SLICE("k"), CP_SLICE("new"), &opts, NULL, &err),
               CP_BUCKET_EBADDIGEST);
    expect_content(s, "fwb", "k", "old");
    CPT_EQ_INT(cp_bucket_put(s, "fwb", CP_SLICE("k2"), CP_SLICE("new"), &opts, NULL, &err),
               CP_BUCKET_EBADDIGEST);
    CPT_EQ_INT(cp_bucket_exists(s, "fwb", CP_SLICE("k2"), &err), 0);
    CPT_CHECK(!exists("fwb/k2"));
    /* The right one is accepted. */
    cp_md5("new", 3, md);
    CPT_EQ_INT(cp_bucket_put(s, "fwb", CP_SLICE("k"), CP_SLICE("new"), &opts, NULL, &err), CP_OK);
    expect_content(s, "fwb", "k", "new");
    CPT_EQ_INT(dir_entries("fwb/.cp-tmp"), 0);
    /* A writer whose bucket vanished before commit stores nothing. */
    cp_bucket_writer *w;
    CPT_EQ_INT(cp_bucket_create(s, "gone", NULL, &err), CP_OK);
    CPT_EQ_INT(cp_bucket_writer_open(s, "gone", CP_SLICE("k"), &w, &err), CP_OK);
    CPT_EQ_INT(cp_bucket_writer_write(w, "x", 1, &err), CP_OK);
    CPT_EQ_INT(cp_bucket_delete(s, "gone", &err), CP_OK);
    CPT_EQ_INT(cp_bucket_writer_commit(w, NULL, NULL, &err), CP_BUCKET_ENOBUCKET);
    CPT_CHECK(!exists("gone"));
    cp_bucket_store_close(s);
}

static void second_open_is_refused(void)
{
    cp_bucket_store *s = open_store();
    cp_bucket_cfg cfg = {cpt_tmpdir(), NULL, 0, 0};
    cp_bucket_store *t = NULL;
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_store_open(&cfg, &t, &err), CP_EINUSE);
    CPT_CHECK(t == NULL);
    cp_bucket_store_close(s);
    CPT_EQ_INT(cp_bucket_store_open(&cfg, &t, &err), CP_OK);
    cp_bucket_store_close(t);
}

static void copy_object(void)
{
    cp_bucket_store *s = open_store();
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_create(s, "src", NULL, &err), CP_OK);
    CPT_EQ_INT(cp_bucket_create(s, "dst", NULL, &err), CP_OK);
    char hdrs[] = "content-type\0application/json\0";
    cp_bucket_put_opts opts = {cp_slice_of(hdrs, sizeof(hdrs) - 1), NULL};
    CPT_EQ_INT(cp_bucket_put(s, "src", CP_SLICE("a/b"), CP_SLICE("{}"), &opts, NULL, &err), CP_OK);
    cp_bucket_obj o = CP_BUCKET_OBJ_INIT;
    CPT_EQ_INT(cp_bucket_copy(s, "src", CP_SLICE("a/b"), "dst", CP_SLICE("c"), NULL, &o, &err),
               CP_OK);
    expect_content(s, "dst", "c", "{}");
    cp_slice ct = cp_bucket_obj_header(&o, "content-type");
    CPT_EQ_MEM(ct.p, ct.len, "application/json", 16);
    CPT_EQ_INT(cp_bucket_copy(s, "src", CP_SLICE("nope"), "dst", CP_SLICE("c"), NULL, &o, &err),
               CP_ENOTFOUND);
    cp_bucket_obj_free(&o);
    cp_bucket_store_close(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Multipart                                                                                   */

static void multipart_upload(void)
{
    cp_bucket_store *s = open_store_min_part(8);
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_create(s, "mpu", NULL, &err), CP_OK);
    char id[CP_BUCKET_UPLOAD_ID_LEN + 1];
    char hdrs[] = "content-type\0text/csv\0";
    CPT_EQ_INT(cp_bucket_mpu_create(s, "mpu", CP_SLICE("big.csv"),
                                    cp_slice_of(hdrs, sizeof(hdrs) - 1), id, &err),
               CP_OK);
    CPT_EQ_INT(strlen(id), 32);
    const char *data[3] = {"part-one-", "part-two-", "end"};
    cp_bucket_part parts[3];
    /* Upload out of order, and part 2 twice (the second wins). */
    int order[4] = {2, 1, 3, 2};
    for (int i = 0; i < 4; i++) {
        int p = order[i];
        const char *d = i == 0 ? "stale-part-two" : data[p - 1];
        parts[p - 1].number = p;
        CPT_EQ_INT(cp_bucket_mpu_put_part(s, "mpu", CP_SLICE("big.csv"), id, p, cp_slice_str(d),
                                          NULL, parts[p - 1].etag, &err),
                   CP_OK);
    }
    /* Nothing visible before completion. */
    CPT_EQ_INT(cp_bucket_exists(s, "mpu", CP_SLICE("big.csv"), &err), 0);
    /* The expected ETag: MD5 of the binary part MD5s, "-3". */
    unsigned char md[48], all[16];
    for (int i = 0; i < 3; i++) {
        cp_md5(data[i], strlen(data[i]), md + 16 * i);
        char hex[33];
        cp_hex(md + 16 * i, 16, hex);
        CPT_EQ_STR(parts[i].etag, hex);
    }
    cp_md5(md, 48, all);
    char want_etag[48];
    cp_hex(all, 16, want_etag);
    strcat(want_etag, "-3");

    /* Error cases first: order, unknown part, wrong ETag. */
    cp_bucket_part bad[2] = {parts[1], parts[0]};
    CPT_EQ_INT(cp_bucket_mpu_complete(s, "mpu", CP_SLICE("big.csv"), id, bad, 2, NULL, &err),
               CP_BUCKET_EPARTORDER);
    cp_bucket_part unknown[2] = {parts[0], {7, "00000000000000000000000000000000", 0, 0}};
    CPT_EQ_INT(cp_bucket_mpu_complete(s, "mpu", CP_SLICE("big.csv"), id, unknown, 2, NULL, &err),
               CP_BUCKET_EBADPART);
    cp_bucket_part wrong = parts[0];
    wrong.etag[0] = wrong.etag[0] == 'a' ? 'b' : 'a';
    CPT_EQ_INT(cp_bucket_mpu_complete(s, "mpu", CP_SLICE("big.csv"), id, &wrong, 1, NULL, &err),
               CP_BUCKET_EBADPART);
    CPT_EQ_INT(cp_bucket_mpu_complete(s, "mpu", CP_SLICE("other"), id, parts, 3, NULL, &err),
               CP_BUCKET_ENOUPLOAD);
    cp_bucket_part small[2] = {parts[2], parts[2]};
    small[1].number = 4;
    CPT_EQ_INT(cp_bucket_mpu_put_part(s, "mpu", CP_SLICE("big.csv"), id, 4, CP_SLICE("x"), NULL,
                                      small[1].etag, &err),
               CP_OK);
    CPT_EQ_INT(cp_bucket_mpu_complete(s, "mpu", CP_SLICE("big.csv"), id, small, 2, NULL, &err),
               CP_BUCKET_ETOOSMALL);
    CPT_EQ_INT(cp_bucket_mpu_complete(s, "mpu", CP_SLICE("big.csv"), id, parts, 0, NULL, &err),
               CP_EINVAL);

    cp_bucket_obj o = CP_BUCKET_OBJ_INIT;
    CPT_EQ_INT(cp_bucket_mpu_complete(s, "mpu", CP_SLICE("big.csv"), id, parts, 3, &o, &err),
               CP_OK);
    CPT_EQ_STR(o.etag, want_etag);
    cp_buf got = CP_BUF_INIT;
    cp_bucket_obj m = CP_BUCKET_OBJ_INIT;
    CPT_EQ_INT(cp_bucket_read(s, "mpu", CP_SLICE("big.csv"), &got, &m, &err), CP_OK);
    CPT_EQ_STR(got.p, "part-one-part-two-end");
    CPT_EQ_STR(m.etag, want_etag);
    cp_slice ct = cp_bucket_obj_header(&m, "content-type");
    CPT_EQ_MEM(ct.p, ct.len, "text/csv", 8);
    CPT_CHECK(file_equals("mpu/big.csv", "part-one-part-two-end"));
    /* The upload is gone with its parts. */
    CPT_EQ_INT(cp_bucket_mpu_complete(s, "mpu", CP_SLICE("big.csv"), id, parts, 3, NULL, &err),
               CP_BUCKET_ENOUPLOAD);
    CPT_EQ_INT(cp_bucket_mpu_put_part(s, "mpu", CP_SLICE("big.csv"), id, 1, CP_SLICE("x"), NULL,
                                      parts[0].etag, &err),
               CP_BUCKET_ENOUPLOAD);
    CPT_EQ_INT(dir_entries("mpu/.cp-uploads"), 0);
    CPT_EQ_INT(dir_entries("mpu/.cp-tmp"), 0);

    /* Abort. */
    CPT_EQ_INT(cp_bucket_mpu_create(s, "mpu", CP_SLICE("x"), CP_SLICE(""), id, &err), CP_OK);
    CPT_EQ_INT(cp_bucket_mpu_put_part(s, "mpu", CP_SLICE("x"), id, 1, CP_SLICE("abc"), NULL,
                                      parts[0].etag, &err),
               CP_OK);
    CPT_EQ_INT(dir_entries("mpu/.cp-uploads"), 1);
    CPT_EQ_INT(cp_bucket_mpu_abort(s, "mpu", CP_SLICE("x"), id, &err), CP_OK);
    CPT_EQ_INT(dir_entries("mpu/.cp-uploads"), 0);
    CPT_EQ_INT(cp_bucket_mpu_abort(s, "mpu", CP_SLICE("x"), id, &err), CP_BUCKET_ENOUPLOAD);
    CPT_EQ_INT(cp_bucket_mpu_abort(s, "mpu", CP_SLICE("x"), "../../etc", &err),
               CP_BUCKET_ENOUPLOAD);
    CPT_EQ_INT(cp_bucket_exists(s, "mpu", CP_SLICE("x"), &err), 0);
    cp_buf_free(&got);
    cp_bucket_obj_free(&o);
    cp_bucket_obj_free(&m);
    cp_bucket_store_close(s);
}

static int count_part(void *ctx, const cp_bucket_part *p)
{
    cp_buf *b = ctx;
    cp_buf_printf(b, "%d:%llu,", p->number, (unsigned long long) p->size);
    return 0;
}

static void multipart_list_parts(void)
{
    cp_bucket_store *s = open_store();
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_create(s, "lsp", NULL, &err), CP_OK);
    char id[CP_BUCKET_UPLOAD_ID_LEN + 1], etag[48];
    CPT_EQ_INT(cp_bucket_mpu_create(s, "lsp", CP_SLICE("k"), CP_SLICE(""), id, &err), CP_OK);
    for (int p = 1; p <= 5; p++) {
        CPT_EQ_INT(cp_bucket_mpu_put_part(s, "lsp", CP_SLICE("k"), id, p * 2, CP_SLICE("abcd"),
                                          NULL, etag, &err),
                   CP_OK);
    }
    cp_buf b = CP_BUF_INIT;
    int trunc = 0;
    CPT_EQ_INT(
        cp_bucket_mpu_list_parts(s, "lsp", CP_SLICE("k"), id, 2, 3, count_part, &b, &trunc, &err),
        CP_OK);
    CPT_EQ_STR(b.p, "4:4,6:4,8:4,");
    CPT_EQ_INT(trunc, 1);
    cp_buf_reset(&b);
    CPT_EQ_INT(
        cp_bucket_mpu_list_parts(s, "lsp", CP_SLICE("k"), id, 8, 3, count_part, &b, &trunc, &err),
        CP_OK);
    CPT_EQ_STR(b.p, "10:4,");
    CPT_EQ_INT(trunc, 0);
    CPT_EQ_INT(cp_bucket_writer_open_part(s, "lsp", CP_SLICE("k"), id, 10001,
                                          &(cp_bucket_writer *){0}, &err),
               CP_EINVAL);
    cp_buf_free(&b);
    cp_bucket_store_close(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Concurrency                                                                                 */

typedef struct worker {
    cp_bucket_store *s;
    int id;
    int failures;
} worker;

enum { THREADS = 6, PER_THREAD = 25 };

static void *put_worker(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char key[64], val[64];
        /* Distinct keys in shared directories, plus one key every thread overwrites. */
        snprintf(key, sizeof(key), "dir%d/t%d-%d", i % 3, w->id, i);
        snprintf(val, sizeof(val), "value %d %d", w->id, i);
        cp_err err = {0};
        if (cp_bucket_put(w->s, "ccc", cp_slice_str(key), cp_slice_str(val), NULL, NULL, &err) !=
            CP_OK) {
            w->failures++;
        }
        snprintf(val, sizeof(val), "shared by %d", w->id);
        if (cp_bucket_put(w->s, "ccc", CP_SLICE("shared"), cp_slice_str(val), NULL, NULL, &err) !=
            CP_OK) {
            w->failures++;
        }
        /* Deletes race with puts into the same directories. */
        if (i % 4 == 3) {
            snprintf(key, sizeof(key), "dir%d/t%d-%d", (i - 1) % 3, w->id, i - 1);
            if (cp_bucket_delete_object(w->s, "ccc", cp_slice_str(key), &err) != CP_OK) {
                w->failures++;
            }
        }
    }
    return NULL;
}

static void concurrent_puts(void)
{
    cp_bucket_store *s = open_store();
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_create(s, "ccc", NULL, &err), CP_OK);
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){s, i, 0};
        pthread_create(&th[i], NULL, put_worker, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CPT_EQ_INT(w[i].failures, 0);
    }
    int expected = 0;
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            char key[64], val[64];
            snprintf(key, sizeof(key), "dir%d/t%d-%d", i % 3, t, i);
            snprintf(val, sizeof(val), "value %d %d", t, i);
            int deleted = i % 4 == 2 && i + 1 < PER_THREAD;
            CPT_EQ_INT(cp_bucket_exists(s, "ccc", cp_slice_str(key), &err), !deleted);
            if (!deleted) {
                expect_content(s, "ccc", key, val);
                expected++;
            }
        }
    }
    cp_buf shared = CP_BUF_INIT;
    CPT_EQ_INT(cp_bucket_read(s, "ccc", CP_SLICE("shared"), &shared, NULL, &err), CP_OK);
    CPT_CHECK(strncmp(shared.p, "shared by ", 10) == 0);
    expect_content(s, "ccc", "shared", shared.p);
    collected c = {CP_BUF_INIT, 0};
    CPT_EQ_INT(cp_bucket_walk(s, "ccc", CP_SLICE(""), collect_cb, &c, &err), CP_OK);
    CPT_EQ_INT(c.n, expected + 1);
    CPT_EQ_INT(dir_entries("ccc/.cp-tmp"), 0);
    cp_buf_free(&shared);
    cp_buf_free(&c.text);
    cp_bucket_store_close(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Crash intents                                                                               */

/* Write `content` as a new file (new inode) at rel, returning its inode. */
static uint64_t replace_file(const char *rel, const char *content)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.new", path_in(rel));
    FILE *f = fopen(tmp, "wb");
    CPT_CHECK(f != NULL);
    fwrite(content, 1, strlen(content), f);
    fclose(f);
    CPT_EQ_INT(rename(tmp, path_in(rel)), 0);
    struct stat st;
    CPT_EQ_INT(stat(path_in(rel), &st), 0);
    return (uint64_t) st.st_ino;
}

static void insert_intent(int op, const char *key, const char *path, const char *content,
                          uint64_t ino)
{
    char db[4096];
    snprintf(db, sizeof(db), "%s/buckets/.cp-index.db", cpt_tmpdir());
    sqlite3 *h;
    CPT_EQ_INT(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *st;
    CPT_EQ_INT(sqlite3_prepare_v2(h,
                                  "INSERT INTO pending(op, bucket, key, path, size, mtime_ms, "
                                  "etag, headers, ino) VALUES(?, 'crs', ?, ?, ?, 1, ?, x'', ?)",
                                  -1, &st, NULL),
               SQLITE_OK);
    unsigned char md[16];
    char hex[33];
    cp_md5(content, strlen(content), md);
    cp_hex(md, 16, hex);
    sqlite3_bind_int(st, 1, op);
    sqlite3_bind_blob(st, 2, key, (int) strlen(key), SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 3, path, (int) strlen(path), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, (int64_t) strlen(content));
    sqlite3_bind_text(st, 5, hex, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, (int64_t) ino);
    CPT_EQ_INT(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(h);
}

static void recovery_settles_intents(void)
{
    cp_bucket_store *s = open_store();
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_create(s, "crs", NULL, &err), CP_OK);
    put_str(s, "crs", "renamed", "old bytes");
    put_str(s, "crs", "not-renamed", "kept bytes");
    put_str(s, "crs", "deleting/x", "doomed");
    cp_bucket_store_close(s);

    /* Crash after the rename of a put: the file has the intent's inode -> the new object. */
    uint64_t ino = replace_file("crs/renamed", "new bytes");
    insert_intent(1, "renamed", "renamed", "new bytes", ino);
    /* Crash before the rename: the file is still the old one -> the intent is dropped. */
    insert_intent(1, "not-renamed", "not-renamed", "lost bytes", ino + 1000000);
    /* A put of a new key that crashed before its rename leaves no object. */
    insert_intent(1, "never", "never", "never", 12345);
    /* Crash in the middle of a delete -> the delete completes. */
    insert_intent(2, "deleting/x", "deleting/x", "", 0);
    /* And a staging file from a write that never committed. */
    FILE *f = fopen(path_in("crs/.cp-tmp/abandoned.tmp"), "wb");
    CPT_CHECK(f != NULL);
    fclose(f);

    s = open_store();
    expect_content(s, "crs", "renamed", "new bytes");
    expect_content(s, "crs", "not-renamed", "kept bytes");
    CPT_EQ_INT(cp_bucket_exists(s, "crs", CP_SLICE("never"), &err), 0);
    CPT_EQ_INT(cp_bucket_exists(s, "crs", CP_SLICE("deleting/x"), &err), 0);
    CPT_CHECK(!exists("crs/deleting/x"));
    CPT_EQ_INT(dir_entries("crs/.cp-tmp"), 0);
    /* Intents are gone: the bucket can be emptied and deleted. */
    CPT_EQ_INT(cp_bucket_delete_object(s, "crs", CP_SLICE("renamed"), &err), CP_OK);
    CPT_EQ_INT(cp_bucket_delete_object(s, "crs", CP_SLICE("not-renamed"), &err), CP_OK);
    CPT_EQ_INT(cp_bucket_delete(s, "crs", &err), CP_OK);
    cp_bucket_store_close(s);
}

static void hand_edits_do_not_confuse_reads(void)
{
    cp_bucket_store *s = open_store();
    cp_err err = {0};
    CPT_EQ_INT(cp_bucket_create(s, "hed", NULL, &err), CP_OK);
    put_str(s, "hed", "a/b", "12345");
    /* A file dropped in by hand is not an object. */
    FILE *f = fopen(path_in("hed/a/dropped"), "wb");
    CPT_CHECK(f != NULL);
    fclose(f);
    CPT_EQ_INT(cp_bucket_exists(s, "hed", CP_SLICE("a/dropped"), &err), 0);
    /* An object file removed by hand reads as missing. */
    CPT_EQ_INT(unlink(path_in("hed/a/b")), 0);
    int fd = -1;
    CPT_EQ_INT(cp_bucket_get(s, "hed", CP_SLICE("a/b"), NULL, &fd, &err), CP_ENOTFOUND);
    CPT_EQ_INT(fd, -1);
    /* And can be written again. */
    put_str(s, "hed", "a/b", "back");
    expect_content(s, "hed", "a/b", "back");
    cp_bucket_store_close(s);
}

CPT_LIST = {
    {"buckets_create_list_delete", buckets_create_list_delete},
    {"bucket_name_rules", bucket_name_rules},
    {"objects_are_plain_files", objects_are_plain_files},
    {"hostile_keys_stay_inside_the_bucket", hostile_keys_stay_inside_the_bucket},
    {"symlinks_are_not_followed", symlinks_are_not_followed},
    {"file_and_directory_under_one_name", file_and_directory_under_one_name},
    {"listing_pages_in_s3_order", listing_pages_in_s3_order},
    {"listing_never_shows_staging_files", listing_never_shows_staging_files},
    {"failed_writes_leave_nothing", failed_writes_leave_nothing},
    {"second_open_is_refused", second_open_is_refused},
    {"copy_object", copy_object},
    {"multipart_upload", multipart_upload},
    {"multipart_list_parts", multipart_list_parts},
    {"concurrent_puts", concurrent_puts},
    {"recovery_settles_intents", recovery_settles_intents},
    {"hand_edits_do_not_confuse_reads", hand_edits_do_not_confuse_reads},
    {0},
};
