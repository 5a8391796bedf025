/* SPDX-License-Identifier: MIT */
/*
 * Zip extraction: archives made by Info-ZIP `zip` at test time (deflate, symlinks, zip64 from a
 * pipe) and hostile archives built byte by byte here (traversal, links out, bad CRC, bombs,
 * encryption, unknown methods, duplicates).
 */
#include "cpt.h"

#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <sys/stat.h>

#include "core/hash.h"
#include "core/mem.h"
#include "lambda/zip.h"

/* ------------------------------------------------------------------------------------------ */
/* A minimal zip writer for crafting archives                                                  */

typedef struct zw {
    cp_buf out; /* local headers + data */
    cp_buf cd;  /* central directory */
    unsigned n;
} zw;

typedef struct zent {
    const char *name;
    const void *data; /* the bytes as stored (already compressed for method 8) */
    size_t len;       /* stored length */
    uint32_t usize;   /* declared uncompressed size */
    uint32_t crc;     /* declared CRC */
    uint16_t method;
    uint16_t flags;
    uint16_t made_by;  /* high byte: 3 = unix, 0 = DOS */
    uint32_t ext_attr; /* external attributes (unix mode << 16) */
} zent;

static void put16(cp_buf *b, uint16_t v)
{
    cp_buf_putc(b, (char) (v & 0xff));
    cp_buf_putc(b, (char) (v >> 8));
}

static void zw_add(zw *w, const zent *e)
{
    uint32_t off = (uint32_t) w->out.len;
    size_t nl = strlen(e->name);
    cp_buf_put_u32le(&w->out, 0x04034b50u);
    put16(&w->out, 20);
    put16(&w->out, e->flags);
    put16(&w->out, e->method);
    put16(&w->out, 0);
    put16(&w->out, 0x21);
    cp_buf_put_u32le(&w->out, e->crc);
    cp_buf_put_u32le(&w->out, (uint32_t) e->len);
    cp_buf_put_u32le(&w->out, e->usize);
    put16(&w->out, (uint16_t) nl);
    put16(&w->out, 0);
    cp_buf_append(&w->out, e->name, nl);
    cp_buf_append(&w->out, e->data, e->len);

    cp_buf_put_u32le(&w->cd, 0x02014b50u);
    put16(&w->cd, e->made_by);
    put16(&w->cd, 20);
    put16(&w->cd, e->flags);
    put16(&w->cd, e->method);
    put16(&w->cd, 0);
    put16(&w->cd, 0x21);
    cp_buf_put_u32le(&w->cd, e->crc);
    cp_buf_put_u32le(&w->cd, (uint32_t) e->len);
    cp_buf_put_u32le(&w->cd, e->usize);
    put16(&w->cd, (uint16_t) nl);
    put16(&w->cd, 0);
    put16(&w->cd, 0);
    put16(&w->cd, 0);
    put16(&w->cd, 0);
    cp_buf_put_u32le(&w->cd, e->ext_attr);
    cp_buf_put_u32le(&w->cd, off);
    cp_buf_append(&w->cd, e->name, nl);
    w->n++;
}

/* A stored unix entry with a correct CRC. */
static void zw_file(zw *w, const char *name, const char *data, uint32_t mode)
{
    size_t len = strlen(data);
    zent e = {name, data, len, (uint32_t) len, cp_crc32(0, data, len), 0, 0, 0x0314, mode << 16};
    zw_add(w, &e);
}

/* Finish: append the central directory and the end record; returns the archive bytes. */
static cp_buf zw_finish(zw *w)
{
    uint32_t cd_off = (uint32_t) w->out.len;
    cp_buf_append(&w->out, w->cd.p, w->cd.len);
    cp_buf_put_u32le(&w->out, 0x06054b50u);
    put16(&w->out, 0);
    put16(&w->out, 0);
    put16(&w->out, (uint16_t) w->n);
    put16(&w->out, (uint16_t) w->n);
    cp_buf_put_u32le(&w->out, (uint32_t) w->cd.len);
    cp_buf_put_u32le(&w->out, cd_off);
    put16(&w->out, 0);
    cp_buf_free(&w->cd);
    return w->out;
}

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                     */

static char *path_in(const char *sub)
{
    static char buf[4][512];
    static int i;
    char *p = buf[i++ & 3];
    snprintf(p, 512, "%s/%s", cpt_tmpdir(), sub);
    return p;
}

static void run(const char *cmd)
{
    if (system(cmd) != 0) {
        CPT_FAIL_AT("command failed: %s", cmd);
    }
}

static cp_buf slurp(const char *path)
{
    cp_buf b = CP_BUF_INIT;
    FILE *f = fopen(path, "rb");
    if (!f) {
        CPT_FAIL_AT("open %s: %s", path, strerror(errno));
    }
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        cp_buf_append(&b, tmp, n);
    }
    fclose(f);
    return b;
}

/* Extract into a fresh directory `sub`; returns the status and leaves the message in *err. */
static int extract(cp_buf zip, const char *sub, const cp_zip_limits *lim, cp_zip_stats *st,
                   cp_err *err)
{
    const char *d = path_in(sub);
    CPT_EQ_INT(mkdir(d, 0755), 0);
    return cp_zip_extract(cp_buf_slice(&zip), d, lim, st, err);
}

static int exists(const char *sub)
{
    struct stat sb;
    return lstat(path_in(sub), &sb) == 0;
}

static mode_t mode_of(const char *sub)
{
    struct stat sb;
    CPT_EQ_INT(lstat(path_in(sub), &sb), 0);
    return sb.st_mode;
}

#define CHECK_MSG(err, needle)                                                                     \
    do {                                                                                           \
        if (!strstr((err).msg, (needle))) {                                                        \
            CPT_FAIL_AT("message \"%s\" lacks \"%s\"", (err).msg, (needle));                       \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Archives made by the zip tool                                                               */

static void zip_tool_archive(void)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "cd %s && mkdir -p src/lib/sub src/empty && printf '#!/bin/sh\\necho hi\\n' > "
             "src/bootstrap && chmod 755 src/bootstrap && printf 'plain' > src/lib/sub/f.txt && "
             "chmod 600 src/lib/sub/f.txt && seq 1 20000 > src/lib/big.txt && "
             "ln -s big.txt src/lib/link && cd src && zip -q -r -y ../fn.zip .",
             cpt_tmpdir());
    run(cmd);
    cp_buf zip = slurp(path_in("fn.zip"));
    cp_zip_stats st;
    cp_err err = {0};
    CPT_EQ_INT(extract(zip, "out", NULL, &st, &err), CP_OK);
    CPT_EQ_INT(st.files, 3);
    CPT_EQ_INT(st.symlinks, 1);
    CPT_CHECK(st.dirs >= 3);
    CPT_EQ_INT(mode_of("out/bootstrap") & 0777, 0755);
    CPT_EQ_INT(mode_of("out/lib/sub/f.txt") & 0777, 0644);
    CPT_CHECK(S_ISDIR(mode_of("out/empty")));
    CPT_CHECK(S_ISLNK(mode_of("out/lib/link")));
    char target[64] = {0};
    CPT_EQ_INT(readlink(path_in("out/lib/link"), target, sizeof(target) - 1), 7);
    CPT_EQ_STR(target, "big.txt");
    cp_buf a = slurp(path_in("src/lib/big.txt")), b = slurp(path_in("out/lib/big.txt"));
    CPT_EQ_MEM(a.p, a.len, b.p, b.len);
    CPT_EQ_INT(st.bytes, a.len + 5 + 18 + 7);
    cp_buf c = slurp(path_in("out/lib/sub/f.txt"));
    CPT_EQ_STR(c.p, "plain");
    /* The deflate path really ran: the big file is stored compressed. */
    CPT_CHECK(zip.len < a.len / 2);
    cp_buf_free(&a);
    cp_buf_free(&b);
    cp_buf_free(&c);
    cp_buf_free(&zip);
}

/* Info-ZIP writes zip64 records and a data descriptor when it reads from a pipe. */
static void zip64_from_pipe(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cd %s && seq 1 5000 | zip -q s.zip - && seq 1 5000 > want",
             cpt_tmpdir());
    run(cmd);
    cp_buf zip = slurp(path_in("s.zip"));
    cp_err err = {0};
    CPT_EQ_INT(extract(zip, "out", NULL, NULL, &err), CP_OK);
    cp_buf a = slurp(path_in("want")), b = slurp(path_in("out/-"));
    CPT_EQ_MEM(a.p, a.len, b.p, b.len);
    cp_buf_free(&a);
    cp_buf_free(&b);
    cp_buf_free(&zip);
}

/* ------------------------------------------------------------------------------------------ */
/* Hostile archives                                                                            */

static void traversal_refused(void)
{
    const char *bad[] = {"../evil", "/abs/evil", "a/../../evil", "a\\..\\..\\evil", "ok/../.."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        zw w = {0};
        zw_file(&w, "fine.txt", "x", 0100644);
        zw_file(&w, bad[i], "pwned", 0100644);
        cp_buf zip = zw_finish(&w);
        char sub[32];
        snprintf(sub, sizeof(sub), "t%zu/in", i);
        char parent[32];
        snprintf(parent, sizeof(parent), "t%zu", i);
        CPT_EQ_INT(mkdir(path_in(parent), 0755), 0);
        cp_err err = {0};
        int rc = extract(zip, sub, NULL, NULL, &err);
        CPT_EQ_INT(rc, CP_EINVAL);
        CPT_CHECK(strstr(err.msg, "escapes") || strstr(err.msg, "absolute"));
        /* Validation precedes writing: not even the harmless first entry was written. */
        char fine[64];
        snprintf(fine, sizeof(fine), "%s/fine.txt", sub);
        CPT_CHECK(!exists(fine));
        char evil[64];
        snprintf(evil, sizeof(evil), "t%zu/evil", i);
        CPT_CHECK(!exists(evil));
        CPT_CHECK(!exists("evil"));
        cp_buf_free(&zip);
    }
}

static void symlinks_checked(void)
{
    /* A link out of the directory. */
    zw w = {0};
    zw_file(&w, "a/link", "../../etc", 0120777);
    cp_buf zip = zw_finish(&w);
    cp_err err = {0};
    CPT_EQ_INT(extract(zip, "o1", NULL, NULL, &err), CP_EINVAL);
    CHECK_MSG(err, "symlink points outside");
    CPT_CHECK(!exists("o1/a/link"));
    cp_buf_free(&zip);

    /* Absolute targets. */
    w = (zw){0};
    zw_file(&w, "abs", "/etc/passwd", 0120777);
    zip = zw_finish(&w);
    CPT_EQ_INT(extract(zip, "o2", NULL, NULL, &err), CP_EINVAL);
    CHECK_MSG(err, "absolute");
    cp_buf_free(&zip);

    /* A link that stays inside is fine, but nothing may be written through a link. */
    w = (zw){0};
    zw_file(&w, "lib/x/up", "../sibling", 0120777);
    zw_file(&w, "dirlink", "lib", 0120777);
    zw_file(&w, "dirlink/escape", "data", 0100644);
    zip = zw_finish(&w);
    CPT_EQ_INT(extract(zip, "o3", NULL, NULL, &err), CP_EINVAL);
    CHECK_MSG(err, "parent is a symlink");
    CPT_CHECK(S_ISLNK(mode_of("o3/lib/x/up")));
    CPT_CHECK(!exists("o3/lib/escape"));
    cp_buf_free(&zip);
}

static void bad_crc(void)
{
    zw w = {0};
    zent e = {"f", "hello", 5, 5, cp_crc32(0, "hellO", 5), 0, 0, 0x0314, 0100644u << 16};
    zw_add(&w, &e);
    cp_buf zip = zw_finish(&w);
    cp_err err = {0};
    CPT_EQ_INT(extract(zip, "o", NULL, NULL, &err), CP_EINVAL);
    CHECK_MSG(err, "CRC-32 mismatch");
    CHECK_MSG(err, "\"f\"");
    cp_buf_free(&zip);
}

static cp_buf deflate(const void *p, size_t len)
{
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
    cp_buf out = CP_BUF_INIT;
    size_t bound = libdeflate_deflate_compress_bound(c, len);
    cp_buf_reserve(&out, bound);
    out.len = libdeflate_deflate_compress(c, p, len, out.p, bound);
    CPT_CHECK(out.len > 0);
    libdeflate_free_compressor(c);
    return out;
}

static void deflate_entries(void)
{
    size_t n = 300000;
    char *text = cp_malloc(n);
    for (size_t i = 0; i < n; i++) {
        text[i] = (char) ('a' + (i * 7 + i / 13) % 26);
    }
    cp_buf z = deflate(text, n);
    zw w = {0};
    zent e = {"d/data", z.p, z.len,  (uint32_t) n,  cp_crc32(0, text, n),
              8,        0,   0x0314, 0100755u << 16};
    zw_add(&w, &e);
    cp_buf zip = zw_finish(&w);
    cp_err err = {0};
    cp_zip_stats st;
    CPT_EQ_INT(extract(zip, "o", NULL, &st, &err), CP_OK);
    CPT_EQ_INT(st.bytes, n);
    CPT_EQ_INT(mode_of("o/d/data") & 0777, 0755);
    cp_buf got = slurp(path_in("o/d/data"));
    CPT_EQ_MEM(got.p, got.len, text, n);
    cp_buf_free(&got);
    cp_buf_free(&zip);

    /* Corrupt deflate data. */
    z.p[z.len / 2] ^= 0x55;
    z.p[z.len / 2 + 1] ^= 0x55;
    w = (zw){0};
    zw_add(&w, &e);
    zip = zw_finish(&w);
    int rc = extract(zip, "o2", NULL, NULL, &err);
    CPT_EQ_INT(rc, CP_EINVAL);
    CPT_CHECK(strstr(err.msg, "deflate") || strstr(err.msg, "CRC") || strstr(err.msg, "declared"));
    cp_buf_free(&zip);
    cp_buf_free(&z);
    cp_free(text);
}

static void bombs(void)
{
    /* Declared sizes over the limit: refused before inflating anything. */
    zw w = {0};
    zw_file(&w, "small", "abc", 0100644);
    zent big = {"big", "x", 1, 600u * 1024 * 1024, 0, 8, 0, 0x0314, 0100644u << 16};
    zw_add(&w, &big);
    cp_buf zip = zw_finish(&w);
    cp_err err = {0};
    CPT_EQ_INT(extract(zip, "o1", NULL, NULL, &err), CP_ETOOBIG);
    CHECK_MSG(err, "Unzipped size must be smaller than 262144000 bytes");
    CPT_CHECK(!exists("o1/small"));
    cp_buf_free(&zip);

    /* A configured limit, summed over entries. */
    cp_zip_limits lim = {1000, 0};
    char kb[601];
    memset(kb, 'k', 600);
    kb[600] = 0;
    w = (zw){0};
    zw_file(&w, "a", kb, 0100644);
    zw_file(&w, "b", kb, 0100644);
    zip = zw_finish(&w);
    CPT_EQ_INT(extract(zip, "o2", &lim, NULL, &err), CP_ETOOBIG);
    CHECK_MSG(err, "smaller than 1000 bytes");
    cp_buf_free(&zip);

    /* An entry that lies about its size: 4 MiB of zeros declared as 1000 bytes. */
    size_t n = 4u << 20;
    char *zeros = cp_calloc(1, n);
    cp_buf z = deflate(zeros, n);
    CPT_CHECK(z.len < 64 * 1024);
    w = (zw){0};
    zent liar = {"liar", z.p, z.len, 1000, cp_crc32(0, zeros, 1000), 8, 0, 0x0314, 0100644u << 16};
    zw_add(&w, &liar);
    zip = zw_finish(&w);
    CPT_EQ_INT(extract(zip, "o3", NULL, NULL, &err), CP_EINVAL);
    CHECK_MSG(err, "inflates past its declared size");
    CPT_CHECK(!exists("o3/liar"));
    cp_buf_free(&zip);
    cp_buf_free(&z);
    cp_free(zeros);

    /* Entry count limit. */
    cp_zip_limits few = {0, 2};
    w = (zw){0};
    zw_file(&w, "1", "1", 0100644);
    zw_file(&w, "2", "2", 0100644);
    zw_file(&w, "3", "3", 0100644);
    zip = zw_finish(&w);
    CPT_EQ_INT(extract(zip, "o4", &few, NULL, &err), CP_ETOOBIG);
    CHECK_MSG(err, "3 entries");
    cp_buf_free(&zip);
}

static void unsupported_entries(void)
{
    cp_err err = {0};
    zw w = {0};
    zent enc = {"secret", "xxxx", 4, 4, 0, 0, 1, 0x0314, 0100644u << 16};
    zw_add(&w, &enc);
    cp_buf zip = zw_finish(&w);
    CPT_EQ_INT(extract(zip, "o1", NULL, NULL, &err), CP_EINVAL);
    CHECK_MSG(err, "encrypted");
    cp_buf_free(&zip);

    w = (zw){0};
    zent bz = {"b", "BZh9", 4, 10, 0, 12, 0, 0x0314, 0100644u << 16};
    zw_add(&w, &bz);
    zip = zw_finish(&w);
    CPT_EQ_INT(extract(zip, "o2", NULL, NULL, &err), CP_EINVAL);
    CHECK_MSG(err, "compression method 12 is not supported");
    cp_buf_free(&zip);

    /* A fifo entry (Info-ZIP archiving stdin) becomes a plain file, never a fifo. */
    w = (zw){0};
    zent fifo = {"pipe", "ab", 2, 2, cp_crc32(0, "ab", 2), 0, 0, 0x0314, 0010644u << 16};
    zw_add(&w, &fifo);
    zip = zw_finish(&w);
    CPT_EQ_INT(extract(zip, "o3", NULL, NULL, &err), CP_OK);
    CPT_CHECK(S_ISREG(mode_of("o3/pipe")));
    cp_buf_free(&zip);

    w = (zw){0};
    zw_file(&w, "same", "1", 0100644);
    zw_file(&w, "./same", "2", 0100644);
    zip = zw_finish(&w);
    CPT_EQ_INT(extract(zip, "o4", NULL, NULL, &err), CP_EINVAL);
    CHECK_MSG(err, "duplicate entry");
    cp_buf_free(&zip);
}

static void not_a_zip(void)
{
    cp_err err = {0};
    cp_buf junk = CP_BUF_INIT;
    cp_buf_puts(&junk, "this is not a zip archive at all, just text.............");
    CPT_EQ_INT(extract(junk, "o1", NULL, NULL, &err), CP_EINVAL);
    CHECK_MSG(err, "not a zip");
    cp_buf_free(&junk);

    /* Truncate a valid archive at every length: always a clean CP_EINVAL, never a crash. */
    zw w = {0};
    zw_file(&w, "bootstrap", "#!/bin/sh\n", 0100755);
    zw_file(&w, "lib/x", "data", 0100644);
    cp_buf zip = zw_finish(&w);
    for (size_t cut = 0; cut < zip.len; cut++) {
        char sub[32];
        snprintf(sub, sizeof(sub), "cut%zu", cut);
        cp_buf part = CP_BUF_INIT;
        cp_buf_append(&part, zip.p, cut);
        CPT_EQ_INT(extract(part, sub, NULL, NULL, &err), CP_EINVAL);
        cp_buf_free(&part);
    }
    /* Flip every byte of the central directory and end record: never a crash, never a
     * write outside the directory. */
    size_t cd = zip.len - 22 - (46 + 9) - (46 + 5);
    for (size_t i = cd; i < zip.len; i++) {
        char sub[32];
        snprintf(sub, sizeof(sub), "flip%zu", i);
        zip.p[i] ^= 0xff;
        (void) extract(zip, sub, NULL, NULL, &err);
        zip.p[i] ^= 0xff;
    }
    CPT_CHECK(!exists("bootstrap"));
    cp_buf_free(&zip);
}

/* Without unix attributes (archives made on Windows) bootstrap still becomes executable. */
static void dos_archive(void)
{
    zw w = {0};
    zent b = {"bootstrap", "#!/bin/sh\n", 10,  10, cp_crc32(0, "#!/bin/sh\n", 10), 0,
              0,           0x0014,        0x20};
    zent o = {"other", "#!/bin/sh\n", 10, 10, cp_crc32(0, "#!/bin/sh\n", 10), 0, 0, 0x0014, 0x20};
    zent d = {"dir\\", "", 0, 0, 0, 0, 0, 0x0014, 0x10};
    zw_add(&w, &b);
    zw_add(&w, &o);
    zw_add(&w, &d);
    cp_buf zip = zw_finish(&w);
    cp_err err = {0};
    CPT_EQ_INT(extract(zip, "o", NULL, NULL, &err), CP_OK);
    CPT_EQ_INT(mode_of("o/bootstrap") & 0777, 0755);
    CPT_EQ_INT(mode_of("o/other") & 0777, 0644);
    CPT_CHECK(S_ISDIR(mode_of("o/dir")));
    cp_buf_free(&zip);
}

CPT_LIST = {
    {"zip_tool_archive", zip_tool_archive},
    {"zip64_from_pipe", zip64_from_pipe},
    {"traversal_refused", traversal_refused},
    {"symlinks_checked", symlinks_checked},
    {"bad_crc", bad_crc},
    {"deflate_entries", deflate_entries},
    {"bombs", bombs},
    {"unsupported_entries", unsupported_entries},
    {"not_a_zip", not_a_zip},
    {"dos_archive", dos_archive},
    {0},
};
