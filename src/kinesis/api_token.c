/* SPDX-License-Identifier: MIT */
/*
 * Sealed tokens for the Kinesis api: ShardIterator and the NextTokens of ListShards and
 * ListStreams. A token carries a read position (or a page cursor) back to us through the
 * client, so it must be opaque and tamper-proof: base64 of
 *
 *     version(1) | kind(1) | epoch(8) | issued_ms(8, LE) | serial(8, LE) | payload | HMAC[0..16)
 *
 * keyed with a per-process random key (or a configured one). `epoch` names the key, so a token
 * from an earlier process can be told apart from a forged one and answered as expired. The
 * serial makes every token unique: two empty GetRecords in the same millisecond still hand out
 * different NextShardIterators, as AWS does.
 */
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>

#include "core/base64.h"
#include "core/clock.h"
#include "core/hash.h"
#include "kinesis/api_int.h"

#define TOKEN_VERSION 1
#define MAC_LEN       16
#define HEADER_LEN    (2 + CP__KINESIS_TOKEN_EPOCH + 8 + 8)

void cp__kinesis_token_init(cp_kinesis_api *api, const unsigned char *key, size_t key_len)
{
    if (key && key_len) {
        /* A configured key: tokens survive restarts; the epoch is derived, never random. */
        unsigned char h[32];
        cp_sha256(key, key_len, api->key);
        cp_hmac_sha256(api->key, sizeof(api->key), "epoch", 5, h);
        memcpy(api->epoch, h, sizeof(api->epoch));
        return;
    }
    unsigned char r[sizeof(api->key) + sizeof(api->epoch)];
    size_t got = 0;
    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
        if (n <= 0) {
            break;
        }
        got += (size_t) n;
    }
    if (got < sizeof(r)) {
        /* getrandom cannot fail on Linux >= 3.17 once the pool is initialised; if it ever
         * does, mix what is at hand rather than run with a zero key. */
        int64_t seed[3] = {cp_clock_now_ms(), cp_clock_mono_ns(), (int64_t) (uintptr_t) api};
        unsigned char e[32];
        cp_sha256(seed, sizeof(seed), r);
        cp_hmac_sha256(r, 32, seed, sizeof(seed), e);
        memcpy(r + 32, e, sizeof(api->epoch));
    }
    memcpy(api->key, r, sizeof(api->key));
    memcpy(api->epoch, r + sizeof(api->key), sizeof(api->epoch));
}

void cp__kinesis_seal(cp_kinesis_api *api, int kind, int64_t issued_ms, cp_slice payload,
                      cp_buf *out)
{
    cp_buf raw = CP_BUF_INIT;
    cp_buf_put_u8(&raw, TOKEN_VERSION);
    cp_buf_put_u8(&raw, (uint8_t) kind);
    cp_buf_append(&raw, api->epoch, sizeof(api->epoch));
    cp_buf_put_u64le(&raw, (uint64_t) issued_ms);
    cp_buf_put_u64le(&raw, atomic_fetch_add(&api->serial, 1));
    cp_buf_append(&raw, payload.p, payload.len);
    unsigned char mac[32];
    cp_hmac_sha256(api->key, sizeof(api->key), raw.p, raw.len, mac);
    cp_buf_append(&raw, mac, MAC_LEN);
    cp_base64_encode(cp_buf_slice(&raw), out);
    cp_buf_free(&raw);
}

int cp__kinesis_unseal(const cp_kinesis_api *api, int kind, cp_slice token, cp_buf *payload,
                       int64_t *issued_ms)
{
    cp_buf raw = CP_BUF_INIT;
    int rc = CP_EINVAL;
    if (token.len > 4096 || cp_base64_decode(token, &raw) != CP_OK ||
        raw.len < HEADER_LEN + MAC_LEN) {
        goto out;
    }
    const unsigned char *p = (const unsigned char *) raw.p;
    if (p[0] != TOKEN_VERSION || p[1] != kind) {
        goto out;
    }
    if (memcmp(p + 2, api->epoch, sizeof(api->epoch)) != 0) {
        rc = CP_EEXPIRED;
        goto out;
    }
    size_t body = raw.len - MAC_LEN;
    unsigned char mac[32];
    cp_hmac_sha256(api->key, sizeof(api->key), p, body, mac);
    unsigned char diff = 0;
    for (size_t i = 0; i < MAC_LEN; i++) {
        diff |= (unsigned char) (mac[i] ^ p[body + i]);
    }
    if (diff != 0) {
        goto out;
    }
    *issued_ms = (int64_t) cp_load_u64le(p + 2 + sizeof(api->epoch));
    cp_buf_append(payload, p + HEADER_LEN, body - HEADER_LEN);
    rc = CP_OK;
out:
    cp_buf_free(&raw);
    return rc;
}
