/* ddns_credentials: the device id of a MAC address and the text forms of
 * the device secret (PROTOCOL.md sections 1 to 3). Optional module: for
 * firmware that stores the secret as text rather than as 32 bytes. The
 * secret of generation 1 and later is stored as its own text (with the key
 * reference as the kid): the dyndns2 password of those generations does
 * not carry it.
 *
 * The base64url decoder works without data-dependent branches or lookups
 * indexed by the secret characters, so its timing does not depend on the
 * secret. */
#include "ddns_internal.h"
#include "ddns_check.h"
#include "ddns_credentials.h"

#include <string.h>

ddns_err_t ddns_device_id_from_mac(const uint8_t mac[DDNS_MAC_LEN],
                                   char out[DDNS_DEVICE_ID_LEN + 1])
{
    char id[DDNS_DEVICE_ID_LEN + 1];
    unsigned i;
    ddns_err_t err;

    if (mac == NULL || out == NULL)
        return DDNS_E_NULL;
    for (i = 0; i < DDNS_DEVICE_ID_LEN; i++)
        id[i] = (char)ddns__hex_digit(((unsigned)mac[i >> 1] >> ((~i & 1u) * 4u)) & 15u);
    id[DDNS_DEVICE_ID_LEN] = '\0';
    err = ddns_device_id_check(ddns_span(id, DDNS_DEVICE_ID_LEN));
    if (err == DDNS_OK)
        memcpy(out, id, sizeof id);
    return err;
}

/* Base64url alphabet as ranges: first, last, value of first. */
static const uint8_t b64u_ranges[15] = {
    'A', 'Z', 0, 'a', 'z', 26, '0', '9', 52, '-', '-', 62, '_', '_', 63,
};

ddns_err_t ddns_secret_decode(ddns_span_t text, uint8_t secret[DDNS_SECRET_LEN])
{
    uint8_t tmp[DDNS_SECRET_LEN + 1];
    uint32_t bad = 0, acc = 0;
    size_t i, k;

    if (secret == NULL)
        return DDNS_E_NULL;
    if (text.len != DDNS_SECRET_TEXT_LEN || text.ptr == NULL)
        return DDNS_E_SECRET;

    /* 43 characters give 258 bits: 32 bytes and 2 bits that must be zero.
     * Every fourth character completes 3 bytes; a 44th character 'A'
     * (value 0) completes the last group. */
    for (i = 0; i <= DDNS_SECRET_TEXT_LEN; i++) {
        uint32_t c = i < DDNS_SECRET_TEXT_LEN ? text.ptr[i] : 'A', v = 0, ok = 0;
        for (k = 0; k < sizeof b64u_ranges; k += 3) {
            /* all ones when c is in the range, else zero */
            uint32_t in = ((((c - b64u_ranges[k]) | (b64u_ranges[k + 1] - c)) >> 31) & 1u) - 1u;
            v |= in & (c - b64u_ranges[k] + b64u_ranges[k + 2]);
            ok |= in;
        }
        bad |= ~ok;
        acc = (acc << 6) | v;
        if ((i & 3u) == 3u)
            for (k = 0; k < 3u; k++)
                tmp[i / 4u * 3u + k] = (uint8_t)(acc >> (16u - 8u * k));
    }
    /* The last character's two low bits are beyond the 256 bits. */
    bad |= (acc >> 6) & 3u;
    if (bad == 0)
        memcpy(secret, tmp, DDNS_SECRET_LEN);
    ddns__wipe(tmp, sizeof tmp);
    return bad == 0 ? DDNS_OK : DDNS_E_SECRET;
}

ddns_err_t ddns_password_decode(ddns_span_t password, char kid[DDNS_KID_MAX + 1],
                                size_t *kid_len, uint8_t secret[DDNS_SECRET_LEN])
{
    size_t dot = 0;
    ddns_err_t err;

    if (kid == NULL || secret == NULL)
        return DDNS_E_NULL;
    if (password.ptr == NULL)
        return DDNS_E_PASSWORD;
    /* From generation 1 on ("k1/3.") the password is derived from the
     * secret and does not carry it: a "/" before the "." refuses it. */
    while (dot < password.len && password.ptr[dot] != '.' && password.ptr[dot] != '/')
        dot++;
    if (dot == password.len || password.ptr[dot] == '/')
        return DDNS_E_PASSWORD;
    err = ddns_kid_check(ddns_span(password.ptr, dot));
    if (err == DDNS_OK)
        err = ddns_secret_decode(ddns_span(password.ptr + dot + 1, password.len - dot - 1),
                                 secret);
    if (err == DDNS_OK) {
        memcpy(kid, password.ptr, dot);
        kid[dot] = '\0';
        if (kid_len != NULL)
            *kid_len = dot;
    }
    return err;
}
