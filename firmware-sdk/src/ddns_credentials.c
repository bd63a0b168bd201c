/* ddns_credentials: device id and key id syntax, and decoding of the text
 * forms of the device secret (PROTOCOL.md sections 1 to 3).
 *
 * The base64url decoder works without table lookups or data-dependent
 * branches on the secret characters, so its timing does not depend on the
 * secret. */
#include "ddns_internal.h"

#include <string.h>

const char ddns__hex_digits[16] = {
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f',
};

ddns_err_t ddns_device_id_check(ddns_span_t device_id)
{
    uint8_t first = 0, any = 0;
    size_t i;

    if (device_id.len != DDNS_DEVICE_ID_LEN || device_id.ptr == NULL)
        return DDNS_E_DEVICE_ID;
    for (i = 0; i < DDNS_DEVICE_ID_LEN; i++) {
        int v = ddns__lower_hex_value(device_id.ptr[i]);
        if (v < 0)
            return DDNS_E_DEVICE_ID;
        if (i == 1)
            first = (uint8_t)v;  /* low nibble of the first octet */
        any |= (uint8_t)v;
    }
    if (any == 0)
        return DDNS_E_DEVICE_ID_ZERO;
    if (first & 1u)
        return DDNS_E_DEVICE_ID_MULTICAST;
    return DDNS_OK;
}

ddns_err_t ddns_device_id_from_mac(const uint8_t mac[DDNS_MAC_LEN],
                                   char out[DDNS_DEVICE_ID_LEN + 1])
{
    uint8_t any = 0;
    size_t i;

    if (mac == NULL || out == NULL)
        return DDNS_E_NULL;
    for (i = 0; i < DDNS_MAC_LEN; i++)
        any |= mac[i];
    if (any == 0)
        return DDNS_E_DEVICE_ID_ZERO;
    if (mac[0] & 1u)
        return DDNS_E_DEVICE_ID_MULTICAST;
    for (i = 0; i < DDNS_MAC_LEN; i++) {
        out[2 * i] = ddns__hex_digits[mac[i] >> 4];
        out[2 * i + 1] = ddns__hex_digits[mac[i] & 15u];
    }
    out[DDNS_DEVICE_ID_LEN] = '\0';
    return DDNS_OK;
}

ddns_err_t ddns_kid_check(ddns_span_t kid)
{
    size_t i;

    if (kid.len == 0 || kid.len > DDNS_KID_MAX || kid.ptr == NULL)
        return DDNS_E_KID;
    for (i = 0; i < kid.len; i++) {
        uint8_t c = kid.ptr[i];
        if (!((c >= 'a' && c <= 'z') || ddns__is_digit(c)))
            return DDNS_E_KID;
    }
    return DDNS_OK;
}

/* All ones when lo <= c <= hi, else zero (all values below 2^16). */
static uint32_t ct_in_range(uint32_t c, uint32_t lo, uint32_t hi)
{
    return ((((c - lo) | (hi - c)) >> 31) & 1u) - 1u;
}

/* 6-bit value of a base64url character; sets *bad to all ones when c is
 * not in the alphabet. */
static uint32_t b64u_value(uint32_t c, uint32_t *bad)
{
    uint32_t v = 0, ok = 0, m;

    m = ct_in_range(c, 'A', 'Z');
    v |= m & (c - 'A');
    ok |= m;
    m = ct_in_range(c, 'a', 'z');
    v |= m & (c - 'a' + 26u);
    ok |= m;
    m = ct_in_range(c, '0', '9');
    v |= m & (c - '0' + 52u);
    ok |= m;
    m = ct_in_range(c, '-', '-');
    v |= m & 62u;
    ok |= m;
    m = ct_in_range(c, '_', '_');
    v |= m & 63u;
    ok |= m;
    *bad |= ~ok;
    return v & 63u;
}

ddns_err_t ddns_secret_decode(ddns_span_t text, uint8_t secret[DDNS_SECRET_LEN])
{
    uint8_t tmp[DDNS_SECRET_LEN];
    uint32_t bad = 0, acc = 0;
    size_t i, o = 0;
    ddns_err_t err = DDNS_E_SECRET;

    if (secret == NULL)
        return DDNS_E_NULL;
    if (text.len != DDNS_SECRET_TEXT_LEN || text.ptr == NULL)
        return DDNS_E_SECRET;

    /* 43 characters = 10 groups of 4 (30 bytes) + 3 characters (2 bytes). */
    for (i = 0; i < DDNS_SECRET_TEXT_LEN; i++) {
        acc = (acc << 6) | b64u_value(text.ptr[i], &bad);
        if ((i & 3u) == 3u) {
            tmp[o++] = (uint8_t)(acc >> 16);
            tmp[o++] = (uint8_t)(acc >> 8);
            tmp[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    /* 18 bits left: 16 data bits and 2 bits that must be zero. */
    tmp[o++] = (uint8_t)(acc >> 10);
    tmp[o++] = (uint8_t)(acc >> 2);
    bad |= acc & 3u;
    if (bad != 0)
        goto out;
    memcpy(secret, tmp, sizeof tmp);
    err = DDNS_OK;
out:
    ddns_wipe(tmp, sizeof tmp);
    return err;
}

ddns_err_t ddns_password_decode(ddns_span_t password, char kid[DDNS_KID_MAX + 1],
                                size_t *kid_len, uint8_t secret[DDNS_SECRET_LEN])
{
    size_t dot;
    ddns_err_t err;

    if (kid == NULL || secret == NULL)
        return DDNS_E_NULL;
    if (password.ptr == NULL)
        return DDNS_E_PASSWORD;
    for (dot = 0; dot < password.len && password.ptr[dot] != '.'; dot++)
        ;
    if (dot == password.len)
        return DDNS_E_PASSWORD;
    err = ddns_kid_check(ddns_span(password.ptr, dot));
    if (err != DDNS_OK)
        return err;
    err = ddns_secret_decode(ddns_span(password.ptr + dot + 1, password.len - dot - 1), secret);
    if (err != DDNS_OK)
        return err;
    memcpy(kid, password.ptr, dot);
    kid[dot] = '\0';
    if (kid_len != NULL)
        *kid_len = dot;
    return DDNS_OK;
}
