/* SPDX-License-Identifier: MIT */
/* Checksums and digests over libdeflate (CRC-32) and OpenSSL libcrypto (MD5, SHA-256). */
#include "core/hash.h"

#include <libdeflate.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

uint32_t cp_crc32(uint32_t crc, const void *p, size_t len)
{
    return libdeflate_crc32(crc, p, len);
}

void cp_md5(const void *p, size_t len, unsigned char out[16])
{
    unsigned int n = 16;
    EVP_Digest(p, len, out, &n, EVP_md5(), NULL);
}

void cp_sha256(const void *p, size_t len, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(p, len, out, &n, EVP_sha256(), NULL);
}

void cp_hmac_sha256(const void *key, size_t keylen, const void *p, size_t len,
                    unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int) keylen, p, len, out, &n);
}

void cp_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

uint64_t cp_fnv1a64(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ b[i]) * 0x100000001b3ULL;
    }
    return h;
}
