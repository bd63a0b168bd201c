/* ddns_sha256.h: the built-in crypto of the firmware SDK (ddns_sha256.c):
 * SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104), the request and the
 * Authorization value signed with the device secret, and ddns_wipe().
 * Firmware whose platform signs (a crypto library, a hardware engine or a
 * secure element) leaves this module out and signs the bytes of
 * ddns_request_string_to_sign() (ddns_sdk.h). */
#ifndef DDNS_SHA256_H
#define DDNS_SHA256_H

#include "ddns_sdk.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Complete HTTP/1.1 request signed with the device secret by the built-in
 * HMAC-SHA256: the bytes of ddns_request_build_presigned() with the MAC of
 * ddns_request_string_to_sign(). At most DDNS_REQUEST_MAX bytes.
 * @param[in]  req       the request
 * @param[in]  secret    the 32-byte device secret
 * @param[out] out       buffer, or NULL with out_size 0 for a size query
 * @param[in]  out_size  bytes available at out
 * @param[out] out_len   bytes written, or needed on DDNS_E_BUFFER
 * @return DDNS_OK, DDNS_E_NULL, DDNS_E_BUFFER or the first field error
 */
DDNS_MUST_CHECK ddns_err_t ddns_request_build(const ddns_request_t *req,
                                              const uint8_t secret[DDNS_SECRET_LEN],
                                              uint8_t *out, size_t out_size, size_t *out_len);

/**
 * Value of the Authorization header signed with the device secret by the
 * built-in HMAC-SHA256, for firmware whose own HTTP client sends the
 * request; the body comes from ddns_request_body(). The bytes of
 * ddns_request_authorization_presigned() with the MAC of
 * ddns_request_string_to_sign(), at most DDNS_AUTHORIZATION_MAX bytes.
 * The checks are the string to sign's (device id, kid, ts, then ipv4 and
 * ipv6, which the MAC covers); out is also where the string to sign is
 * hashed, in two pieces, so it needs no more than the value itself.
 * @param[in]  req       the request
 * @param[in]  secret    the 32-byte device secret
 * @param[out] out       buffer, or NULL with out_size 0 for a size query
 * @param[in]  out_size  bytes available at out
 * @param[out] out_len   bytes written, or needed on DDNS_E_BUFFER
 * @return DDNS_OK, DDNS_E_NULL, DDNS_E_BUFFER or the first field error
 */
DDNS_MUST_CHECK ddns_err_t ddns_request_authorization(const ddns_request_t *req,
                                                      const uint8_t secret[DDNS_SECRET_LEN],
                                                      uint8_t *out, size_t out_size,
                                                      size_t *out_len);

/**
 * Wipes n bytes at p in a way the compiler does not remove.
 * @param[out] p  the bytes
 * @param[in]  n  their number
 */
void ddns_wipe(void *p, size_t n);

/* SHA-256 and HMAC-SHA256. These cannot fail; pointers must be valid (data
 * may be NULL when len is 0). A message is at most 2^32 - 1 bytes. The
 * final functions wipe the context. */

typedef struct ddns_sha256 {
    uint32_t h[8];
    uint32_t w[16];                  /* the block being filled, as words */
    uint32_t total;                  /* bytes hashed so far */
} ddns_sha256_t;

/**
 * Starts a SHA-256 computation.
 * @param[out] ctx  the context
 */
void ddns_sha256_init(ddns_sha256_t *ctx);

/**
 * Hashes len more bytes.
 * @param[in,out] ctx   the context
 * @param[in]     data  the bytes (may be NULL when len is 0)
 * @param[in]     len   their number
 */
void ddns_sha256_update(ddns_sha256_t *ctx, const void *data, size_t len);

/**
 * Completes the computation and wipes the context.
 * @param[in,out] ctx     the context (wiped)
 * @param[out]    digest  the 32-byte digest
 */
void ddns_sha256_final(ddns_sha256_t *ctx, uint8_t digest[DDNS_SHA256_LEN]);

/**
 * HMAC-SHA256 of data under key; mac may be where data is.
 * @param[in]  key      the key (hashed first when longer than a block)
 * @param[in]  key_len  its length
 * @param[in]  data     the message (may be NULL when len is 0)
 * @param[in]  len      its length
 * @param[out] mac      the 32-byte MAC
 */
void ddns_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                      uint8_t mac[DDNS_SHA256_LEN]);

#ifdef __cplusplus
}
#endif

#endif /* DDNS_SHA256_H */
