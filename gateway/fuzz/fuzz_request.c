/* fuzz_request: libFuzzer target for the verification of an update request
 * (gw_auth_verify: the Authorization value, the clock window, the signature
 * and the body's parameters).
 *
 * Input: the Authorization value up to the first LF (absent when the input
 * has no LF), then the body. The key lookup knows "k1" and "k2" with fixed
 * keys; the server time is fixed. Every input is an exact heap copy.
 * Checks: the verdict is one of the four, an accepted request has a
 * 12-digit device id, a known key id and a timestamp inside the window, a
 * badrequest names a field, and every text field is terminated. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_auth.h"

#define NOW 1700000000
#define SKEW 300

static cmn_master_key_t keys[2] = {
    {.kid = "k1", .key = {'1', '1', '1', '1', '1', '1', '1', '1', '1', '1', '1', '1', '1', '1',
                          '1', '1', '1', '1', '1', '1', '1', '1', '1', '1', '1', '1', '1', '1',
                          '1', '1', '1', '1'}},
    {.kid = "k2", .key = {'2', '2', '2', '2', '2', '2', '2', '2', '2', '2', '2', '2', '2', '2',
                          '2', '2', '2', '2', '2', '2', '2', '2', '2', '2', '2', '2', '2', '2',
                          '2', '2', '2', '2'}},
};

static const cmn_master_key_t *lookup(void *ctx, const char *kid, size_t kidlen)
{
    (void)ctx;
    if (kidlen == 2 && kid[0] == 'k' && (kid[1] == '1' || kid[1] == '2'))
        return &keys[kid[1] - '1'];
    return NULL;
}

static void terminated(const char *s, size_t n)
{
    if (memchr(s, '\0', n) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *lf = memchr(data, '\n', size);
    char *auth = NULL;
    size_t blen = size;
    const uint8_t *bsrc = data;
    if (lf != NULL) {
        size_t al = (size_t)(lf - data);
        auth = malloc(al + 1);
        if (auth == NULL)
            abort();
        memcpy(auth, data, al);
        auth[al] = '\0';
        bsrc = lf + 1;
        blen = size - al - 1;
    }
    uint8_t *body = malloc(blen ? blen : 1);
    if (body == NULL)
        abort();
    memcpy(body, bsrc, blen);

    gw_auth_result_t r;
    gw_auth_verify(auth, body, blen, NOW, SKEW, lookup, NULL, &r);
    terminated(r.field, sizeof r.field);
    terminated(r.device_id, sizeof r.device_id);
    terminated(r.kid, sizeof r.kid);
    terminated(r.nonce, sizeof r.nonce);
    terminated(r.ipv4, sizeof r.ipv4);
    terminated(r.ipv6, sizeof r.ipv6);
    switch (r.verdict) {
    case GW_AUTH_OK:
        if (strlen(r.device_id) != 12 || (strcmp(r.kid, "k1") != 0 && strcmp(r.kid, "k2") != 0) ||
            r.ts < NOW - SKEW || r.ts > NOW + SKEW)
            abort();
        break;
    case GW_AUTH_BADREQUEST:
        if (r.field[0] == '\0')
            abort();
        break;
    case GW_AUTH_BADTIME:
    case GW_AUTH_BADAUTH:
        break;
    default:
        abort();
    }
    free(auth);
    free(body);
    return 0;
}
