/* SPDX-License-Identifier: MIT */
/* Checksums and digests: CRC-32 (x-amz-crc32, log records), MD5 (Kinesis routing), SHA-256. */
#ifndef CP_HASH_H
#define CP_HASH_H

#include <stddef.h>
#include <stdint.h>

/* IEEE CRC-32 (zlib's crc32), continuing from `crc` (start with 0). */
uint32_t cp_crc32(uint32_t crc, const void *p, size_t len);
/* 16-byte MD5 digest into out. */
void cp_md5(const void *p, size_t len, unsigned char out[16]);
/* 32-byte SHA-256 digest into out. */
void cp_sha256(const void *p, size_t len, unsigned char out[32]);
/* HMAC-SHA256 into out (32 bytes). */
void cp_hmac_sha256(const void *key, size_t keylen, const void *p, size_t len,
                    unsigned char out[32]);
/* Lower-case hex of n bytes into out (2n+1 bytes with the NUL). */
void cp_hex(const unsigned char *in, size_t n, char *out);
/* 64-bit FNV-1a, for in-memory hash tables only (not stored). */
uint64_t cp_fnv1a64(const void *p, size_t len);

#endif
