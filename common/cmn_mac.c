/* cmn_mac: device identity (see cmn_mac.h). */
#include "cmn_mac.h"

#include <string.h>

int cmn_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Classifies six octets given as 12 lowercase hex digits. */
static int cmn_mac_classify(const char hex[CMN_DEVICE_ID_LEN])
{
    int first = cmn_hexval(hex[0]) * 16 + cmn_hexval(hex[1]);
    int zero = 1, ones = 1;
    for (int i = 0; i < CMN_DEVICE_ID_LEN; i++) {
        if (hex[i] != '0')
            zero = 0;
        if (hex[i] != 'f')
            ones = 0;
    }
    if (zero)
        return CMN_MAC_ZERO;
    if (ones)
        return CMN_MAC_BROADCAST;
    if (first & 1)
        return CMN_MAC_MULTICAST;
    return CMN_MAC_OK;
}

int cmn_mac_canon(const char *in, size_t len, char out[CMN_DEVICE_ID_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    char hex[CMN_DEVICE_ID_LEN];
    size_t n = 0;

    out[0] = '\0';
    while (len > 0 && (in[0] == ' ' || in[0] == '\t')) {
        in++;
        len--;
    }
    while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\t' ||
                       in[len - 1] == '\r' || in[len - 1] == '\n'))
        len--;

    /* Work out the form from the length and the separator positions. */
    size_t group, stride;
    char sep = 0;
    if (len == 12) {
        group = 12;
        stride = 12;
    } else if (len == 17 && (in[2] == ':' || in[2] == '-')) {
        group = 2;
        stride = 3;
        sep = in[2];
    } else if (len == 14 && in[4] == '.') {
        group = 4;
        stride = 5;
        sep = '.';
    } else {
        return CMN_MAC_SYNTAX;
    }
    for (size_t i = 0; i < len; i++) {
        if (sep != 0 && i % stride == group) {
            if (in[i] != sep)
                return CMN_MAC_SYNTAX;
            continue;
        }
        int v = cmn_hexval(in[i]);
        if (v < 0 || n >= CMN_DEVICE_ID_LEN)
            return CMN_MAC_SYNTAX;
        hex[n++] = digits[v];
    }
    if (n != CMN_DEVICE_ID_LEN)
        return CMN_MAC_SYNTAX;
    int rc = cmn_mac_classify(hex);
    if (rc != CMN_MAC_OK)
        return rc;
    memcpy(out, hex, CMN_DEVICE_ID_LEN);
    out[CMN_DEVICE_ID_LEN] = '\0';
    return CMN_MAC_OK;
}

int cmn_device_id_check(const char *s, size_t len)
{
    if (len != CMN_DEVICE_ID_LEN)
        return CMN_MAC_SYNTAX;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return CMN_MAC_SYNTAX;
    return cmn_mac_classify(s);
}

const char *cmn_mac_reason(int err)
{
    switch (err) {
    case CMN_MAC_OK: return "ok";
    case CMN_MAC_ZERO: return "zero";
    case CMN_MAC_BROADCAST: return "broadcast";
    case CMN_MAC_MULTICAST: return "multicast";
    default: return "syntax";
    }
}

const char *cmn_mac_explain(int err)
{
    switch (err) {
    case CMN_MAC_OK: return "valid MAC address";
    case CMN_MAC_ZERO: return "the all-zero MAC address never identifies a device";
    case CMN_MAC_BROADCAST: return "the broadcast MAC address never identifies a device";
    case CMN_MAC_MULTICAST: return "a multicast MAC address (first octet odd) never identifies a device";
    default: return "not a MAC address: expected six hex octets as aa:bb:cc:dd:ee:ff, "
                    "aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff or aabbccddeeff";
    }
}
