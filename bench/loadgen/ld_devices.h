/* ld_devices: the device credentials the load generator signs with.
 *
 * Owns reading a JSON-lines credentials file (one object per line, as
 * `ddns-provision batch --format jsonl` and `issue` write them), checking
 * every field with the firmware SDK's rules, the decoded per-device secret,
 * the HTTP Basic credentials of the dyndns2 workload, and each device's
 * run state (last timestamp sent, request in flight, change counter).
 * Secrets are wiped when the table is freed and never printed. */
#ifndef LD_DEVICES_H
#define LD_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ddns_sdk.h"

typedef struct ld_device {
    char device_id[DDNS_DEVICE_ID_LEN + 1];
    char kid[DDNS_KID_MAX + 1];
    uint8_t secret[DDNS_SECRET_LEN];
    char *fqdn;            /* NULL when the line has none */
    char *basic;           /* "Basic base64(device_id:password)"; NULL for a device of
                              generation 1 or later given without its password */
    uint32_t index;        /* line order, from 0 */
    /* run state, owned by the thread the device is assigned to */
    uint64_t last_ts;      /* ts of the last request sent; 0 before */
    uint64_t changes;      /* change workload: requests sent */
    bool busy;             /* a request of this device is in flight */
} ld_device_t;

/* Reads path ("-" for standard input). Every line must be a JSON object
 * with device_id and either kid (the key reference) and secret, or, for a
 * device of generation 0, password (kid.secret); when both forms are
 * present they must agree (from generation 1 on the password is the
 * dyndns2 password, sent as it is, and its key reference must be the kid).
 * fqdn, and for generation 1 on the password, are required when need_fqdn.
 * Blank lines are skipped. On error returns -1 with "FILE:LINE: reason" in
 * err and nothing allocated; on success 0 with *out (free with
 * ld_devices_free) and *n > 0. */
int ld_devices_load(const char *path, bool need_fqdn, ld_device_t **out, size_t *n, char *err,
                    size_t errlen);

void ld_devices_free(ld_device_t *d, size_t n);

#endif
