/* platform.h: what the example DDNS task needs from the device platform.
 * Firmware implements these with its own RTC, RNG, TLS stack and storage;
 * fake_platform.c implements them for the test that runs the example. */
#ifndef PLATFORM_H
#define PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include "ddns_sdk.h"

typedef struct device_config {      /* from secure storage, written at the factory */
    const char *host;               /* gateway host name */
    char device_id[DDNS_DEVICE_ID_LEN];
    char kid[DDNS_KID_MAX];
    size_t kid_len;
    uint8_t secret[DDNS_SECRET_LEN];
} device_config_t;

uint64_t platform_time(void);                   /* device clock, s since 1970 */
void platform_random(void *buf, size_t n);      /* hardware RNG / seeded DRBG */
/* TLS 1.2+ to host:443, certificate verified against the pinned CA and the
 * host name: one exchange, returns the bytes received or -1. recv is
 * called until it returns 0 (done) or -1. */
int platform_tls_open(const char *host);
int platform_tls_send(int conn, const void *buf, size_t len);
long platform_tls_recv(int conn, void *buf, size_t len);
void platform_tls_close(int conn);
void platform_sleep(uint32_t seconds);
/* Returns when the WAN address changed (not before min_s) or after max_s. */
void platform_wait_address_change(uint32_t min_s, uint32_t max_s);
void platform_alert(const ddns_response_t *answer);  /* tell a person */

#endif
