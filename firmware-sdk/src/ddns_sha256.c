/* ddns_sha256: SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104).
 *
 * Straightforward portable implementation: big-endian loads and stores are
 * done byte by byte, so the code has no alignment or endianness
 * requirements. The message schedule is kept as a 16-word ring to keep the
 * stack small. */
#include "ddns_internal.h"

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

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define CH(x, y, z) (((x) & (y)) ^ (~(x) & (z)))
#define MAJ(x, y, z) (((x) & (y)) ^ ((x) & (z)) ^ ((y) & (z)))
#define BSIG0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BSIG1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SSIG0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))

static uint32_t load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
           (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void sha256_compress(uint32_t h[8], const uint8_t block[DDNS_SHA256_BLOCK])
{
    uint32_t w[16];
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    uint32_t e = h[4], f = h[5], g = h[6], hh = h[7];
    unsigned t;

    for (t = 0; t < 64; t++) {
        uint32_t wt, t1, t2;
        if (t < 16) {
            wt = load_be32(block + 4 * t);
        } else {
            wt = SSIG1(w[(t - 2) & 15]) + w[(t - 7) & 15] + SSIG0(w[(t - 15) & 15]) +
                 w[(t - 16) & 15];
        }
        w[t & 15] = wt;
        t1 = hh + BSIG1(e) + CH(e, f, g) + sha256_k[t] + wt;
        t2 = BSIG0(a) + MAJ(a, b, c);
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
    ddns_wipe(w, sizeof w);
}

void ddns_wipe(void *p, size_t n)
{
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (n--)
        *v++ = 0;
}

void ddns_sha256_init(ddns_sha256_t *ctx)
{
    memcpy(ctx->h, sha256_h0, sizeof ctx->h);
    ctx->total = 0;
    ctx->used = 0;
}

void ddns_sha256_update(ddns_sha256_t *ctx, const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;

    if (len == 0)
        return;
    ctx->total += len;
    if (ctx->used > 0) {
        size_t take = DDNS_SHA256_BLOCK - ctx->used;
        if (take > len)
            take = len;
        memcpy(ctx->block + ctx->used, p, take);
        ctx->used += take;
        p += take;
        len -= take;
        if (ctx->used < DDNS_SHA256_BLOCK)
            return;
        sha256_compress(ctx->h, ctx->block);
        ctx->used = 0;
    }
    while (len >= DDNS_SHA256_BLOCK) {
        sha256_compress(ctx->h, p);
        p += DDNS_SHA256_BLOCK;
        len -= DDNS_SHA256_BLOCK;
    }
    if (len > 0) {
        memcpy(ctx->block, p, len);
        ctx->used = len;
    }
}

void ddns_sha256_final(ddns_sha256_t *ctx, uint8_t digest[DDNS_SHA256_LEN])
{
    uint64_t bits = ctx->total * 8u;
    unsigned i;

    ctx->block[ctx->used++] = 0x80;
    if (ctx->used > DDNS_SHA256_BLOCK - 8) {
        memset(ctx->block + ctx->used, 0, DDNS_SHA256_BLOCK - ctx->used);
        sha256_compress(ctx->h, ctx->block);
        ctx->used = 0;
    }
    memset(ctx->block + ctx->used, 0, DDNS_SHA256_BLOCK - 8 - ctx->used);
    store_be32(ctx->block + 56, (uint32_t)(bits >> 32));
    store_be32(ctx->block + 60, (uint32_t)bits);
    sha256_compress(ctx->h, ctx->block);
    for (i = 0; i < 8; i++)
        store_be32(digest + 4 * i, ctx->h[i]);
    ddns_wipe(ctx, sizeof *ctx);
}

void ddns_sha256(const void *data, size_t len, uint8_t digest[DDNS_SHA256_LEN])
{
    ddns_sha256_t ctx;
    ddns_sha256_init(&ctx);
    ddns_sha256_update(&ctx, data, len);
    ddns_sha256_final(&ctx, digest);
}

void ddns_hmac_sha256_init(ddns_hmac_sha256_t *ctx, const void *key, size_t key_len)
{
    uint8_t pad[DDNS_SHA256_BLOCK];
    unsigned i;

    memset(pad, 0, sizeof pad);
    if (key_len > DDNS_SHA256_BLOCK)
        ddns_sha256(key, key_len, pad);
    else if (key_len > 0)
        memcpy(pad, key, key_len);

    for (i = 0; i < DDNS_SHA256_BLOCK; i++)
        pad[i] ^= 0x36u;
    ddns_sha256_init(&ctx->inner);
    ddns_sha256_update(&ctx->inner, pad, sizeof pad);

    for (i = 0; i < DDNS_SHA256_BLOCK; i++)
        pad[i] ^= 0x36u ^ 0x5cu;
    ddns_sha256_init(&ctx->outer);
    ddns_sha256_update(&ctx->outer, pad, sizeof pad);

    ddns_wipe(pad, sizeof pad);
}

void ddns_hmac_sha256_update(ddns_hmac_sha256_t *ctx, const void *data, size_t len)
{
    ddns_sha256_update(&ctx->inner, data, len);
}

void ddns_hmac_sha256_final(ddns_hmac_sha256_t *ctx, uint8_t mac[DDNS_SHA256_LEN])
{
    uint8_t inner[DDNS_SHA256_LEN];

    ddns_sha256_final(&ctx->inner, inner);
    ddns_sha256_update(&ctx->outer, inner, sizeof inner);
    ddns_sha256_final(&ctx->outer, mac);
    ddns_wipe(inner, sizeof inner);
}

void ddns_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                      uint8_t mac[DDNS_SHA256_LEN])
{
    ddns_hmac_sha256_t ctx;
    ddns_hmac_sha256_init(&ctx, key, key_len);
    ddns_hmac_sha256_update(&ctx, data, len);
    ddns_hmac_sha256_final(&ctx, mac);
}
