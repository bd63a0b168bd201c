/* ddns_sha256: the built-in crypto. SHA-256 (FIPS 180-4), HMAC-SHA256
 * (RFC 2104), ddns_request_build(), which signs with them, and
 * ddns_wipe().
 *
 * Written for size and stack rather than speed: bytes enter the block one
 * at a time, the working variables are an array shifted once per round and
 * the message schedule is a 16-word ring. Loads and stores are byte by
 * byte, so there are no alignment or endianness requirements. A platform
 * that signs elsewhere leaves this file out. */
#include "ddns_internal.h"
#include "ddns_sha256.h"

#include <string.h>

static const uint32_t sha256_k[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u,
    0x923f82a4u, 0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u,
    0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u,
    0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u,
    0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u,
    0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au,
    0x5b9cca4fu, 0x682e6ff3u, 0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u,
    0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

static const uint32_t sha256_h0[8] = {
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
    0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
};

void ddns_wipe(void *p, size_t n)
{
    ddns__wipe(p, n);
}

static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32u - n));
}

static void sha256_compress(ddns_sha256_t *ctx)
{
    uint32_t *w = ctx->w, s[8];
    unsigned t, i;

    memcpy(s, ctx->h, sizeof s);
    for (t = 0; t < 64u; t++) {
        uint32_t x = w[t & 15u], e = s[4], a = s[0];
        if (t >= 16u) {
            /* the message schedule, in place over the block */
            uint32_t w15 = w[(t - 15u) & 15u], w2 = w[(t - 2u) & 15u];
            x += (rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3)) + w[(t - 7u) & 15u] +
                 (rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10));
            w[t & 15u] = x;
        }
        x += s[7] + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & s[5]) ^ (~e & s[6])) +
             sha256_k[t];
        for (i = 7; i > 0; i--)
            s[i] = s[i - 1u];
        s[4] += x;
        s[0] = x + (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) +
               ((a & s[2]) ^ (a & s[3]) ^ (s[2] & s[3]));
    }
    for (i = 0; i < 8u; i++)
        ctx->h[i] += s[i];
    ddns_wipe(s, sizeof s);
}

void ddns_sha256_init(ddns_sha256_t *ctx)
{
    memcpy(ctx->h, sha256_h0, sizeof ctx->h);
    ctx->total = 0;
}

void ddns_sha256_update(ddns_sha256_t *ctx, const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;

    while (len-- > 0) {
        /* Bytes shift into the block's words: four make a big-endian word. */
        uint32_t *word = &ctx->w[(ctx->total >> 2) & 15u];
        *word = (*word << 8) | *p++;
        if ((++ctx->total & 63u) == 0)
            sha256_compress(ctx);
    }
}

void ddns_sha256_final(ddns_sha256_t *ctx, uint8_t digest[DDNS_SHA256_LEN])
{
    uint32_t bits[2];
    uint8_t b = 0x80;
    unsigned i;

    bits[0] = ctx->total >> 29;
    bits[1] = ctx->total << 3;
    do {
        ddns_sha256_update(ctx, &b, 1);
        b = 0;
    } while ((ctx->total & 63u) != 56u);
    /* The message length in bits, big-endian, completes the last block. */
    for (i = 0; i < 8u; i++) {
        b = (uint8_t)(bits[i >> 2] >> (24u - 8u * (i & 3u)));
        ddns_sha256_update(ctx, &b, 1);
    }
    for (i = 0; i < DDNS_SHA256_LEN; i++)
        digest[i] = (uint8_t)(ctx->h[i >> 2] >> (24u - 8u * (i & 3u)));
    ddns_wipe(ctx, sizeof *ctx);
}

/* Starts ctx on the HMAC key block: the key (at most a block) XOR pad. */
static void hmac_key(ddns_sha256_t *ctx, const uint8_t *k, size_t key_len, unsigned pad)
{
    size_t i;

    ddns_sha256_init(ctx);
    for (i = 0; i < DDNS_SHA256_BLOCK; i++) {
        uint8_t b = (uint8_t)((i < key_len ? k[i] : 0u) ^ pad);
        ddns_sha256_update(ctx, &b, 1);
    }
}

/* Completes HMAC from the inner hash in ctx: mac = H(key ^ opad || inner).
 * mac may be where the message was. */
static void hmac_finish(ddns_sha256_t *ctx, const uint8_t *k, size_t key_len,
                        uint8_t mac[DDNS_SHA256_LEN])
{
    uint8_t inner[DDNS_SHA256_LEN];

    ddns_sha256_final(ctx, inner);
    hmac_key(ctx, k, key_len, 0x5c);
    ddns_sha256_update(ctx, inner, sizeof inner);
    ddns_sha256_final(ctx, mac);
    ddns_wipe(inner, sizeof inner);
}

void ddns_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                      uint8_t mac[DDNS_SHA256_LEN])
{
    ddns_sha256_t ctx;
    uint8_t hashed_key[DDNS_SHA256_LEN];
    const uint8_t *k = (const uint8_t *)key;

    if (key_len > DDNS_SHA256_BLOCK) {
        ddns_sha256_init(&ctx);
        ddns_sha256_update(&ctx, key, key_len);
        ddns_sha256_final(&ctx, hashed_key);
        k = hashed_key;
        key_len = DDNS_SHA256_LEN;
    }
    hmac_key(&ctx, k, key_len, 0x36);
    ddns_sha256_update(&ctx, data, len);
    hmac_finish(&ctx, k, key_len, mac);
    ddns_wipe(hashed_key, sizeof hashed_key);
}

/* Lays out part (the request or the Authorization value) signed with the
 * secret. First without writing: the part's checks, then, for the
 * Authorization value, which does not contain the body its MAC covers,
 * the body's; then laid out with an all-zero signature, which checks the
 * buffer and writes only when it fits. The string to sign is then laid
 * out in out in two pieces, its head and its body, each shorter than the
 * part, and hashed piece by piece; the signed part overwrites them and
 * sets *out_len again. Once the part was written the other layouts
 * cannot fail. */
static ddns_err_t build_signed(const ddns_request_t *req, uint32_t part,
                               const uint8_t secret[DDNS_SECRET_LEN], uint8_t *out,
                               size_t out_size, size_t *out_len)
{
    uint8_t mac[DDNS_SHA256_LEN] = { 0 };
    ddns_sha256_t ctx;
    uint32_t piece = DDNS__PART_SIGN_HEAD;
    size_t n;
    ddns_err_t err = secret == NULL ? DDNS_E_NULL
                                    : ddns__request_layout(req, part, mac, NULL, 0, out_len);

    if (err == DDNS_E_BUFFER && part == DDNS__PART_AUTHORIZATION) {
        err = ddns__request_layout(req, DDNS__PART_BODY, NULL, NULL, 0, &n);
        if (err == DDNS_OK)
            err = DDNS_E_BUFFER;   /* an empty body */
        else if (err != DDNS_E_BUFFER)
            *out_len = 0;
    }
    if (err == DDNS_E_BUFFER)
        err = ddns__request_layout(req, part, mac, out, out_size, out_len);
    if (err == DDNS_OK) {
        hmac_key(&ctx, secret, DDNS_SECRET_LEN, 0x36);
        for (;;) {
            if (ddns__request_layout(req, piece, NULL, out, out_size, &n) == DDNS_OK)
                ddns_sha256_update(&ctx, out, n);
            if (piece == DDNS__PART_BODY)
                break;
            piece = DDNS__PART_BODY;
        }
        hmac_finish(&ctx, secret, DDNS_SECRET_LEN, mac);
        err = ddns__request_layout(req, part, mac, out, out_size, out_len);
        ddns_wipe(mac, sizeof mac);
    }
    return err;
}

ddns_err_t ddns_request_build(const ddns_request_t *req, const uint8_t secret[DDNS_SECRET_LEN],
                              uint8_t *out, size_t out_size, size_t *out_len)
{
    return build_signed(req, DDNS__PART_REQUEST, secret, out, out_size, out_len);
}

ddns_err_t ddns_request_authorization(const ddns_request_t *req,
                                      const uint8_t secret[DDNS_SECRET_LEN], uint8_t *out,
                                      size_t out_size, size_t *out_len)
{
    return build_signed(req, DDNS__PART_AUTHORIZATION, secret, out, out_size, out_len);
}
