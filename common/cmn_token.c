/* cmn_token: admin API tokens (see cmn_token.h). */
#include "cmn_token.h"

#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cmn_key.h"

int cmn_token_hash(const char *token, size_t len, char *sha)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    int rc = 0;
    if (EVP_Digest(token, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        memset(md, 0, sizeof md);
        rc = -1;
    }
    cmn_hex(md, sizeof md, sha);
    return rc;
}

int cmn_token_new(char *token, char *sha)
{
    uint8_t raw[32];
    char b64[64];
    const size_t plen = sizeof CMN_TOKEN_PREFIX - 1;
    int rc = -1;

    if (RAND_bytes(raw, sizeof raw) != 1 ||
        cmn_b64url_encode(raw, sizeof raw, b64, sizeof b64) != CMN_TOKEN_LEN - plen)
        goto out;
    memcpy(token, CMN_TOKEN_PREFIX, plen);
    memcpy(token + plen, b64, CMN_TOKEN_LEN - plen + 1);     /* and the NUL */
    rc = cmn_token_hash(token, CMN_TOKEN_LEN, sha);
out:
    if (rc != 0)
        cmn_wipe(token, CMN_TOKEN_LEN + 1);
    cmn_wipe(raw, sizeof raw);
    cmn_wipe(b64, sizeof b64);
    return rc;
}
