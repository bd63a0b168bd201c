/* cmn_mac: device identity (docs/PROTOCOL.md section 1).
 *
 * Owns the MAC input forms a person or a CSV file may use, the canonical
 * device id (12 lowercase hex digits) and the rules that reject addresses
 * which never identify a device (zero, broadcast, multicast). Used by the
 * gateway and the provisioning tool. */
#ifndef CMN_MAC_H
#define CMN_MAC_H

#include <stddef.h>

#define CMN_DEVICE_ID_LEN 12

enum cmn_mac_err {
    CMN_MAC_OK = 0,
    CMN_MAC_SYNTAX,
    CMN_MAC_ZERO,
    CMN_MAC_BROADCAST,
    CMN_MAC_MULTICAST,
};

/* Canonicalises one MAC in any accepted form (surrounding blanks ignored)
 * into out (CMN_DEVICE_ID_LEN digits plus NUL). Returns a cmn_mac_err. */
int cmn_mac_canon(const char *in, size_t len, char out[CMN_DEVICE_ID_LEN + 1])
    __attribute__((warn_unused_result));

/* The one-word reason for an error: "syntax", "zero", "broadcast", "multicast". */
const char *cmn_mac_reason(int err);

/* Value of one hexadecimal digit (either case), or -1. */
int cmn_hexval(char c);

/* A longer, human explanation of the same error. */
const char *cmn_mac_explain(int err);

/* Checks that s is already a canonical device id that may identify a device.
 * Returns a cmn_mac_err. */
int cmn_device_id_check(const char *s, size_t len) __attribute__((warn_unused_result));

#endif
