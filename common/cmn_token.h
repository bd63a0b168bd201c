/* cmn_token: the admin API's bearer tokens, made by the gateway (POST
 * /v1/admin/tokens) and by ddnsctl directly in the database (the first
 * token).
 *
 * Owns the token's form, "ddnsadm_" and 43 base64url characters of 32
 * random bytes from the OpenSSL CSPRNG, and its record: the lowercase hex
 * SHA-256 of the token text, which is all the database ever holds. */
#ifndef CMN_TOKEN_H
#define CMN_TOKEN_H

#include <stddef.h>

#define CMN_TOKEN_PREFIX "ddnsadm_"
#define CMN_TOKEN_LEN 51        /* characters, prefix included */
#define CMN_TOKEN_SHA_LEN 64    /* hex characters of its SHA-256 */

/* A new token into token (CMN_TOKEN_LEN + 1 bytes) and its hash into sha
 * (CMN_TOKEN_SHA_LEN + 1 bytes). 0, or -1 when the random generator or the
 * digest failed (nothing usable is left in token). */
int cmn_token_new(char *token, char *sha) __attribute__((warn_unused_result));
/* The hash of token[0..len) into sha (CMN_TOKEN_SHA_LEN + 1 bytes). 0, or
 * -1 when the digest failed (sha is then the hash of nothing any token
 * has: 64 zeros). */
int cmn_token_hash(const char *token, size_t len, char *sha);

#endif
