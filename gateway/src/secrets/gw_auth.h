/* gw_auth: the device credentials before the database: a signed update
 * request (docs/PROTOCOL.md 4.1-4.4, steps 1 to 3) and a dyndns2 password
 * (section 10).
 *
 * Pure functions, no I/O: parse the Authorization header value (strict
 * field order; the kid field is a key reference, key id and generation),
 * parse the body, check the clock window, re-derive the device secret of
 * the generation from the master key named by the key id, and compare the
 * HMAC-SHA256 signature, or the password derived from the secret, in
 * constant time. The two questions that need a master key are one function
 * each, gw_auth_check_signature() and gw_auth_check_password(). An unknown
 * key id costs the same work as a known one. Secrets and MACs are wiped
 * before returning. */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>

#include "cmn_key.h"
#include "cmn_mac.h"

#define GW_AUTH_SCHEME "DDNS-HMAC-SHA256"
#define GW_AUTH_BODY_MAX 512
#define GW_AUTH_NONCE_LEN 16
#define GW_AUTH_SIG_LEN 64

typedef enum gw_verdict {
    GW_AUTH_OK = 0,
    GW_AUTH_BADREQUEST,
    GW_AUTH_BADTIME,
    GW_AUTH_BADAUTH,
} gw_verdict_t;

typedef struct gw_auth_result {
    gw_verdict_t verdict;
    /* GW_AUTH_BADREQUEST: what is wrong ("authorization", "body", "ipv4",
     * "ipv6", "peer" or the name of another parameter). */
    char field[40];
    /* Filled once the Authorization value parsed (also for badtime and
     * badauth); empty strings before that. */
    char device_id[CMN_DEVICE_ID_LEN + 1];
    char kid[CMN_KID_MAX + 1];      /* the key id, without the generation */
    uint32_t generation;            /* of the kid field's key reference */
    char nonce[GW_AUTH_NONCE_LEN + 1];
    int64_t ts;
    /* Filled once the body parsed: canonical text, "" when absent. */
    char ipv4[INET_ADDRSTRLEN];
    char ipv6[INET6_ADDRSTRLEN];
    /* peer: the address the device says its requests come from (either
     * family), never together with ipv4 or ipv6 */
    char peer[INET6_ADDRSTRLEN];
} gw_auth_result_t;

/* Finds the master key of kid[0..kidlen), or NULL when there is no such
 * key. */
typedef const cmn_master_key_t *(*gw_auth_key_lookup_fn)(void *ctx, const char *kid,
                                                        size_t kidlen);

/* Lookup over a cmn_keyset_t (ctx). */
const cmn_master_key_t *gw_auth_keyset_lookup(void *ctx, const char *kid, size_t kidlen);

/* Derives the secret of device_id (CMN_DEVICE_ID_LEN characters) and
 * generation under the master key of kid that lookup finds or, for a key
 * id it does not know, under a zero key: the same work either way, so that
 * the time taken does not tell known key ids from unknown ones. Returns 1
 * when the key id was found, 0 when not (the secret is then nobody's), -1
 * when the derivation failed. */
int gw_auth_derive(gw_auth_key_lookup_fn lookup, void *lookup_ctx, const char *kid, size_t kidlen,
                   uint32_t generation, const char *device_id, uint8_t secret[CMN_SECRET_LEN]);

/* What a signature covers: the string to sign (docs/PROTOCOL.md 4.3) and
 * the signature the request carries. */
#define GW_AUTH_STS_MAX (sizeof GW_AUTH_SCHEME + 64 + CMN_DEVICE_ID_LEN + CMN_KEYREF_MAX + 13 + \
                         GW_AUTH_NONCE_LEN + 8 + GW_AUTH_BODY_MAX)
typedef struct gw_auth_signed {
    uint8_t sts[GW_AUTH_STS_MAX];
    size_t sts_len;
    uint8_t sig[32];
} gw_auth_signed_t;

/* Steps 1 and 2 (no secret involved): the syntax and the clock window.
 * Returns 0 with out->verdict GW_AUTH_OK and s filled (the string to sign
 * carries the key reference as sent), ready for gw_auth_check_signature();
 * otherwise -1 with the verdict (badrequest, badtime) in out.
 * authorization may be NULL (header absent). */
int gw_auth_prepare(const char *authorization, const uint8_t *body, size_t body_len,
                    int64_t server_time, int64_t skew, gw_auth_result_t *out, gw_auth_signed_t *s);

/* Step 3: 1 when sig is the HMAC of sts[0..sts_len) under the secret of
 * device_id and generation derived from the master key of kid, compared
 * in constant time; 0 otherwise (also for an unknown key id, after the
 * same work). */
int gw_auth_check_signature(gw_auth_key_lookup_fn lookup, void *lookup_ctx, const char *kid,
                            size_t kidlen, uint32_t generation, const char *device_id,
                            const uint8_t *sts, size_t sts_len, const uint8_t sig[32]);

/* Whether password (the 32 bytes after the key reference in the Basic
 * password) is the dyndns2 password of device_id under kid and generation
 * (cmn_dyndns2_password of its secret: the secret itself for generation 0,
 * never from generation 1 on), compared in constant time. 1 when it is, 0
 * otherwise (also for an unknown key id, after the same work). */
int gw_auth_check_password(gw_auth_key_lookup_fn lookup, void *lookup_ctx,
                           const char *device_id, const char *kid, size_t kidlen,
                           uint32_t generation, const uint8_t password[CMN_SECRET_LEN]);

/* Decides on one request: gw_auth_prepare() and gw_auth_check_signature()
 * in one call. authorization may be NULL (header absent). */
void gw_auth_verify(const char *authorization, const uint8_t *body, size_t body_len,
                    int64_t server_time, int64_t skew, gw_auth_key_lookup_fn lookup,
                    void *lookup_ctx, gw_auth_result_t *out);

/* Step 1 alone: parses the Authorization value into out (device_id, kid,
 * generation, ts, nonce) and the raw signature. Returns 0 or -1. */
int gw_auth_parse_authorization(const char *value, gw_auth_result_t *out,
                                uint8_t sig[32]);

/* Step 1 alone: parses the body into out->ipv4/ipv6/peer. Returns 0, or -1 with
 * out->field naming the problem. */
int gw_auth_parse_body(const uint8_t *body, size_t len, gw_auth_result_t *out);

const char *gw_verdict_name(gw_verdict_t v);

#endif
