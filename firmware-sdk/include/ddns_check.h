/* ddns_check.h: full syntax checks of the firmware SDK (ddns_check.c,
 * optional): every field of a request, the device id, key reference and
 * address text, and the options of ddns_next(). The layouts of ddns_sdk.h
 * check only what keeps the HTTP message intact; these refuse exactly what
 * the gateway would answer with "badrequest" or "badauth". */
#ifndef DDNS_CHECK_H
#define DDNS_CHECK_H

#include "ddns_sdk.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Checks every field of req with the full syntax: the layouts' checks,
 * then the user agent (no blank at either end), the device id (12 of
 * [0-9a-f], DDNS_E_DEVICE_ID_ZERO, DDNS_E_DEVICE_ID_MULTICAST), the kid
 * (a key reference, ddns_kid_check()), the address syntax (DDNS_E_IPV4,
 * DDNS_E_IPV6) and, when the request names neither address, that of the
 * address learnt in req->state (DDNS_E_PEER: not an IPv4 or IPv6 address,
 * which the gateway would refuse as badrequest peer).
 * @param[in] req  the request
 * @return DDNS_OK, DDNS_E_NULL or the first error in the order of the fields
 */
DDNS_MUST_CHECK ddns_err_t ddns_request_check(const ddns_request_t *req);

/**
 * Checks a canonical device id: 12 lowercase hex digits, not all-zero, not
 * multicast/broadcast.
 * @param[in] device_id  the text
 * @return DDNS_OK, DDNS_E_DEVICE_ID, DDNS_E_DEVICE_ID_ZERO or
 *         DDNS_E_DEVICE_ID_MULTICAST
 */
DDNS_MUST_CHECK ddns_err_t ddns_device_id_check(ddns_span_t device_id);

/**
 * Checks the kid field, a key reference (PROTOCOL.md section 3): a key id
 * of 1 to 16 characters of [a-z0-9], optionally followed by "/" and the
 * generation of the secret, 1 to 9999999 in decimal without a leading zero
 * ("k1", "k1/3"; never "k1/0" or "k1/03"). At most DDNS_KID_MAX characters.
 * @param[in] kid  the text
 * @return DDNS_OK or DDNS_E_KID
 */
DDNS_MUST_CHECK ddns_err_t ddns_kid_check(ddns_span_t kid);

/**
 * Checks IPv4 text: a dotted quad as inet_pton(AF_INET) accepts it (four
 * decimal parts 0 to 255, no leading zeros).
 * @param[in] text  the text
 * @return DDNS_OK or DDNS_E_IPV4
 */
DDNS_MUST_CHECK ddns_err_t ddns_ipv4_check(ddns_span_t text);

/**
 * Checks IPv6 text in any RFC 4291 form as inet_pton(AF_INET6) accepts it
 * (hex groups, at most one "::", optional trailing dotted quad).
 * @param[in] text  the text
 * @return DDNS_OK or DDNS_E_IPV6
 */
DDNS_MUST_CHECK ddns_err_t ddns_ipv6_check(ddns_span_t text);

/**
 * Checks the options of ddns_next() against the ranges of ddns_options_t:
 * 1 <= min_interval <= backoff_first <= backoff_max <= DDNS_DELAY_MAX,
 * min_interval <= keepalive <= DDNS_DELAY_MAX, min_interval <=
 * retry_after_max <= DDNS_DELAY_MAX, badtime_retry <= DDNS_DELAY_MAX.
 * @param[in] opt  the options
 * @return DDNS_OK, DDNS_E_NULL or DDNS_E_OPTIONS
 */
DDNS_MUST_CHECK ddns_err_t ddns_options_check(const ddns_options_t *opt);

#ifdef __cplusplus
}
#endif

#endif /* DDNS_CHECK_H */
