/* ddns_error: descriptions of the SDK error codes. Kept in an object of its
 * own so that firmware that never prints errors does not link the texts. */
#include "ddns_internal.h"

const char *ddns_strerror(ddns_err_t err)
{
    switch (err) {
    case DDNS_OK:
        return "success";
    case DDNS_E_NULL:
        return "required pointer argument is NULL";
    case DDNS_E_BUFFER:
        return "output buffer too small";
    case DDNS_E_HOST:
        return "invalid host (empty, too long, blank or non-printable byte)";
    case DDNS_E_USER_AGENT:
        return "invalid user agent (too long, non-printable byte or edge blank)";
    case DDNS_E_DEVICE_ID:
        return "device id is not 12 lowercase hexadecimal digits";
    case DDNS_E_DEVICE_ID_ZERO:
        return "device id is the all-zero address";
    case DDNS_E_DEVICE_ID_MULTICAST:
        return "device id is a multicast or broadcast address";
    case DDNS_E_KID:
        return "key id is not 1 to 16 characters of [a-z0-9]";
    case DDNS_E_TS:
        return "timestamp above 999999999999";
    case DDNS_E_IPV4:
        return "invalid IPv4 address";
    case DDNS_E_IPV6:
        return "invalid IPv6 address";
    case DDNS_E_SECRET:
        return "secret is not 43 base64url characters";
    case DDNS_E_PASSWORD:
        return "password is not of the form kid.secret";
    case DDNS_E_RESP_FORMAT:
        return "answer is not one printable line ended by LF of at most 128 bytes";
    case DDNS_E_RESP_TOKEN:
        return "answer has an unknown result token";
    case DDNS_E_RESP_STATUS:
        return "answer token does not match the HTTP status";
    case DDNS_E_RESP_DATA:
        return "answer data words missing, extra or malformed";
    case DDNS_E_HTTP_INCOMPLETE:
        return "HTTP response incomplete";
    case DDNS_E_HTTP_SYNTAX:
        return "malformed HTTP response";
    case DDNS_E_HTTP_LENGTH:
        return "HTTP response without valid Content-Length";
    }
    return "unknown error";
}
