/* ddns_credentials.h: the credentials in text form (ddns_credentials.c,
 * optional): the device id of a MAC address and the text forms of the
 * device secret, for firmware that stores the secret as text. */
#ifndef DDNS_CREDENTIALS_H
#define DDNS_CREDENTIALS_H

#include "ddns_sdk.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Formats the 6 octets of a MAC address as the canonical device id.
 * Refuses zero and multicast; nothing is written on error.
 * @param[in]  mac  the 6 octets
 * @param[out] out  12 lowercase hex digits and a NUL
 * @return DDNS_OK, DDNS_E_NULL, DDNS_E_DEVICE_ID_ZERO or
 *         DDNS_E_DEVICE_ID_MULTICAST
 */
DDNS_MUST_CHECK ddns_err_t ddns_device_id_from_mac(const uint8_t mac[DDNS_MAC_LEN],
                                                   char out[DDNS_DEVICE_ID_LEN + 1]);

/**
 * Decodes the text form of the secret (base64url, no padding, exactly 43
 * characters, canonical last character), without branches or table
 * lookups on the secret characters. Nothing is written on error.
 * @param[in]  text    the 43 characters
 * @param[out] secret  the 32 bytes
 * @return DDNS_OK, DDNS_E_NULL or DDNS_E_SECRET
 */
DDNS_MUST_CHECK ddns_err_t ddns_secret_decode(ddns_span_t text,
                                              uint8_t secret[DDNS_SECRET_LEN]);

/**
 * Decodes the password form kid "." secret of a secret of generation 0
 * (PROTOCOL.md section 3). A password whose key reference has a generation
 * ("k1/3.") is derived from the secret and does not carry it: it is
 * refused (DDNS_E_PASSWORD); such a device keeps its key reference as its
 * kid and its secret's own text (ddns_secret_decode()). Nothing is written
 * on error.
 * @param[in]  password  the text
 * @param[out] kid       the key id and a NUL
 * @param[out] kid_len   its length (may be NULL)
 * @param[out] secret    the 32 bytes
 * @return DDNS_OK, DDNS_E_NULL, DDNS_E_PASSWORD (no ".", or a generation),
 *         DDNS_E_KID or DDNS_E_SECRET
 */
DDNS_MUST_CHECK ddns_err_t ddns_password_decode(ddns_span_t password,
                                                char kid[DDNS_KID_MAX + 1], size_t *kid_len,
                                                uint8_t secret[DDNS_SECRET_LEN]);

#ifdef __cplusplus
}
#endif

#endif /* DDNS_CREDENTIALS_H */
