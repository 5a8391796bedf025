/* SPDX-License-Identifier: MIT */
/* Delivery compression: format table, gzip round trips (ours and zcat), one member, files. */
#include "cpt.h"

#include <fcntl.h>
#include <libdeflate.h>
#include <sys/stat.h>

#include "delivery/compress.h"

static void fill(cp_buf *b, size_t n, unsigned seed)
{
    /* NDJSON-like text with some entropy: compressible, but not trivially. */
    while (b->len < n) {
        seed = seed * 1103515245u + 12345u;
        cp_buf_printf(b, "{\"LivestreamID\":\"live-%u\",\"UID\":%u,\"Text\":\"msg %08x\"}\n",
                      seed % 10, seed, seed ^ 0x5a5a5a5au);
    }
    b->len = n;
    b->p[n] = 0;
}

static void formats_map_to_extensions_and_encodings(void)
{
    cp_compress_format f;
    CPT_EQ_INT(cp_compress_parse(NULL, &f), CP_OK);
    CPT_EQ_INT(f, CP_COMPRESS_NONE);
    CPT_EQ_INT(cp_compress_parse("", &f), CP_OK);
    CPT_EQ_INT(f, CP_COMPRESS_NONE);
    CPT_EQ_INT(cp_compress_parse("UNCOMPRESSED", &f), CP_OK);
    CPT_EQ_STR(cp_compress_extension(f), "");
    CPT_CHECK(cp_compress_content_encoding(f) == NULL);
    CPT_EQ_INT(cp_compress_parse("GZIP", &f), CP_OK);
    CPT_EQ_STR(cp_compress_extension(f), ".gz");
    CPT_EQ_STR(cp_compress_content_encoding(f), "gzip");
    CPT_EQ_STR(cp_compress_name(f), "GZIP");
    CPT_CHECK(cp_compress_supported(f));
    CPT_EQ_INT(cp_compress_parse("Snappy", &f), CP_OK);
    CPT_EQ_STR(cp_compress_extension(f), ".snappy");
    CPT_EQ_STR(cp_compress_content_encoding(f), "snappy-java");
    CPT_CHECK(!cp_compress_supported(f));
    CPT_EQ_INT(cp_compress_parse("HADOOP_SNAPPY", &f), CP_OK);
    CPT_EQ_STR(cp_compress_extension(f), ".snappy"); /* not the docs' .hsnappy */
    CPT_EQ_INT(cp_compress_parse("ZIP", &f), CP_OK);
    CPT_EQ_STR(cp_compress_extension(f), ".zip");
    CPT_EQ_INT(cp_compress_parse("SNAPPY", &f), CP_EINVAL); /* case-sensitive like the API */
    CPT_EQ_INT(cp_compress_parse("gzip", &f), CP_EINVAL);
}

static void gzip_round_trips_as_one_member(void)
{
    cp_buf in = CP_BUF_INIT, gz = CP_BUF_INIT, back = CP_BUF_INIT;
    fill(&in, 300000, 1);
    cp_err err = {0};
    CPT_EQ_INT(cp_gzip_compress(cp_buf_slice(&in), 0, &gz, &err), CP_OK);
    CPT_CHECK(gz.len < in.len / 2);
    CPT_CHECK(gz.len <= cp_gzip_bound(in.len));
    CPT_EQ_INT((unsigned char) gz.p[0], 0x1f);
    CPT_EQ_INT((unsigned char) gz.p[1], 0x8b);
    CPT_EQ_INT(gz.p[2], 8); /* deflate */
    /* Exactly one member: the first member's end is the end of the data. */
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    char *out = malloc(in.len);
    size_t used = 0, produced = 0;
    CPT_EQ_INT(libdeflate_gzip_decompress_ex(d, gz.p, gz.len, out, in.len, &used, &produced),
               LIBDEFLATE_SUCCESS);
    CPT_EQ_INT(used, gz.len);
    CPT_EQ_MEM(out, produced, in.p, in.len);
    free(out);
    libdeflate_free_decompressor(d);
    CPT_EQ_INT(cp_gzip_decompress(cp_buf_slice(&gz), 1 << 30, &back, &err), CP_OK);
    CPT_EQ_MEM(back.p, back.len, in.p, in.len);
    cp_buf_free(&in);
    cp_buf_free(&gz);
    cp_buf_free(&back);
}

static void gzip_is_deterministic_and_level_checked(void)
{
    cp_buf in = CP_BUF_INIT, a = CP_BUF_INIT, b = CP_BUF_INIT, c = CP_BUF_INIT;
    fill(&in, 50000, 7);
    cp_err err = {0};
    CPT_EQ_INT(cp_gzip_compress(cp_buf_slice(&in), 6, &a, &err), CP_OK);
    CPT_EQ_INT(cp_gzip_compress(cp_buf_slice(&in), 0, &b, &err), CP_OK);
    CPT_EQ_MEM(a.p, a.len, b.p, b.len); /* same bytes: a re-flush rewrites the same object */
    CPT_EQ_INT(cp_gzip_compress(cp_buf_slice(&in), 1, &c, &err), CP_OK);
    CPT_CHECK(c.len > 0);
    CPT_EQ_INT(cp_gzip_compress(cp_buf_slice(&in), 13, &c, &err), CP_EINVAL);
    cp_buf_free(&in);
    cp_buf_free(&a);
    cp_buf_free(&b);
    cp_buf_free(&c);
}

static void run_zcat(const char *path, cp_buf *out)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "zcat '%s'", path);
    FILE *p = popen(cmd, "r");
    CPT_CHECK(p != NULL);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
        cp_buf_append(out, buf, n);
    }
    CPT_EQ_INT(pclose(p), 0);
}

static void write_file(const char *path, cp_slice s)
{
    FILE *f = fopen(path, "wb");
    CPT_CHECK(f != NULL);
    CPT_EQ_INT(fwrite(s.p, 1, s.len, f), s.len);
    CPT_EQ_INT(fclose(f), 0);
}

static void zcat_reads_what_we_write(void)
{
    const char *dir = cpt_tmpdir();
    char path[300];
    snprintf(path, sizeof(path), "%s/obj.gz", dir);
    cp_buf in = CP_BUF_INIT, gz = CP_BUF_INIT, out = CP_BUF_INIT;
    fill(&in, 123457, 3);
    cp_err err = {0};
    CPT_EQ_INT(cp_gzip_compress(cp_buf_slice(&in), 0, &gz, &err), CP_OK);
    write_file(path, cp_buf_slice(&gz));
    run_zcat(path, &out);
    CPT_EQ_MEM(out.p, out.len, in.p, in.len);

    /* The empty object (a flush of nothing) is a valid gzip file too. */
    cp_buf_reset(&gz);
    cp_buf_reset(&out);
    CPT_EQ_INT(cp_gzip_compress(cp_slice_of(NULL, 0), 0, &gz, &err), CP_OK);
    write_file(path, cp_buf_slice(&gz));
    run_zcat(path, &out);
    CPT_EQ_INT(out.len, 0);
    cp_buf_free(&in);
    cp_buf_free(&gz);
    cp_buf_free(&out);
}

static void gzip_fd_compresses_a_spill_file_without_copies(void)
{
    const char *dir = cpt_tmpdir();
    char in_path[300], out_path[300];
    snprintf(in_path, sizeof(in_path), "%s/spill", dir);
    snprintf(out_path, sizeof(out_path), "%s/spill.gz", dir);
    cp_buf in = CP_BUF_INIT, whole = CP_BUF_INIT, out = CP_BUF_INIT;
    fill(&in, 3 * 1024 * 1024 + 17, 11);
    /* The spill file holds more than the committed length: only `len` bytes count. */
    cp_buf_puts(&in, "uncommitted tail");
    write_file(in_path, cp_buf_slice(&in));
    size_t len = in.len - strlen("uncommitted tail");
    int ifd = open(in_path, O_RDONLY);
    int ofd = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CPT_CHECK(ifd >= 0 && ofd >= 0);
    uint64_t out_len = 0;
    cp_err err = {0};
    CPT_EQ_INT(cp_gzip_compress_fd(ifd, len, 0, ofd, &out_len, &err), CP_OK);
    struct stat st;
    CPT_EQ_INT(fstat(ofd, &st), 0);
    CPT_EQ_INT(st.st_size, out_len);
    close(ifd);
    close(ofd);
    run_zcat(out_path, &out);
    CPT_EQ_MEM(out.p, out.len, in.p, len);
    /* Same bytes as the in-memory API. */
    CPT_EQ_INT(cp_gzip_compress(cp_slice_of(in.p, len), 0, &whole, &err), CP_OK);
    FILE *f = fopen(out_path, "rb");
    char *file = malloc(out_len);
    CPT_EQ_INT(fread(file, 1, out_len, f), out_len);
    fclose(f);
    CPT_EQ_MEM(file, out_len, whole.p, whole.len);
    free(file);

    /* Empty input. */
    ifd = open(in_path, O_RDONLY);
    ofd = open(out_path, O_RDWR | O_TRUNC);
    CPT_EQ_INT(cp_gzip_compress_fd(ifd, 0, 0, ofd, &out_len, &err), CP_OK);
    close(ifd);
    close(ofd);
    cp_buf_reset(&out);
    run_zcat(out_path, &out);
    CPT_EQ_INT(out.len, 0);
    cp_buf_reset(&whole);
    CPT_EQ_INT(cp_gzip_compress(cp_slice_of(NULL, 0), 0, &whole, &err), CP_OK);
    CPT_EQ_INT(out_len, whole.len);
    cp_buf_free(&in);
    cp_buf_free(&whole);
    cp_buf_free(&out);
}

static void gunzip_rejects_corrupt_data_and_bombs(void)
{
    cp_buf in = CP_BUF_INIT, gz = CP_BUF_INIT, out = CP_BUF_INIT;
    fill(&in, 100000, 5);
    cp_err err = {0};
    CPT_EQ_INT(cp_gzip_compress(cp_buf_slice(&in), 0, &gz, &err), CP_OK);
    CPT_EQ_INT(cp_gzip_decompress(cp_buf_slice(&gz), 1000, &out, &err), CP_ETOOBIG);
    cp_buf_reset(&out);
    CPT_EQ_INT(cp_gzip_decompress(cp_slice_of(gz.p, gz.len - 5), 1 << 30, &out, &err), CP_EINVAL);
    cp_buf_reset(&out);
    gz.p[gz.len / 2] ^= 0x55;
    CPT_EQ_INT(cp_gzip_decompress(cp_buf_slice(&gz), 1 << 30, &out, &err), CP_EINVAL);
    cp_buf_reset(&out);
    CPT_EQ_INT(cp_gzip_decompress(CP_SLICE("plain text, not gzip"), 1 << 30, &out, &err),
               CP_EINVAL);
    /* Two members (what `cat a.gz b.gz` makes) decompress to both, as zcat does. */
    cp_buf two = CP_BUF_INIT;
    CPT_EQ_INT(cp_gzip_compress(CP_SLICE("first\n"), 0, &two, &err), CP_OK);
    CPT_EQ_INT(cp_gzip_compress(CP_SLICE("second\n"), 0, &two, &err), CP_OK);
    cp_buf_reset(&out);
    CPT_EQ_INT(cp_gzip_decompress(cp_buf_slice(&two), 1 << 20, &out, &err), CP_OK);
    CPT_EQ_STR(out.p, "first\nsecond\n");
    cp_buf_free(&two);
    cp_buf_free(&in);
    cp_buf_free(&gz);
    cp_buf_free(&out);
}

CPT_LIST = {
    {"formats_map_to_extensions_and_encodings", formats_map_to_extensions_and_encodings},
    {"gzip_round_trips_as_one_member", gzip_round_trips_as_one_member},
    {"gzip_is_deterministic_and_level_checked", gzip_is_deterministic_and_level_checked},
    {"zcat_reads_what_we_write", zcat_reads_what_we_write},
    {"gzip_fd_compresses_a_spill_file_without_copies",
     gzip_fd_compresses_a_spill_file_without_copies},
    {"gunzip_rejects_corrupt_data_and_bombs", gunzip_rejects_corrupt_data_and_bombs},
    {0},
};
