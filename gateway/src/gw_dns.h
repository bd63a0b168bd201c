/* gw_dns: RFC 2136 UPDATE messages signed with TSIG (ldns).
 *
 * Owns the wire side of publishing: one UPDATE message per batch for one
 * zone (zone section: the zone, IN SOA; for every change in order: delete
 * the RRset, then add the new record when there is one), TSIG signing,
 * sending it to the zone's primary (UDP when it fits in 512 bytes, else TCP;
 * 3 s timeout) and checking the answer: same id, a valid TSIG, rcode
 * NOERROR; and reading a zone back with a TSIG-signed AXFR over TCP (for
 * resync). No database here; the publisher owns the outbox. */
#ifndef GW_DNS_H
#define GW_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "gw_config.h"

#define GW_DNS_TIMEOUT_S 3

/* One outbox row. address NULL: delete only. ttl 0: the zone's default. */
typedef struct gw_dns_change {
    const char *fqdn;           /* without the trailing dot */
    int is_aaaa;
    const char *address;
    int ttl;
} gw_dns_change_t;

/* Checks that the zone's TSIG key (name, algorithm, secret) can sign a
 * message. Returns GW_OK, or an error with a message in err. */
int gw_dns_check_tsig(const gw_zone_conf_t *zone, char *err, size_t errlen);

/* Builds, signs and sends one UPDATE carrying changes[0..*n). When the
 * message would be too large for DNS, fewer changes are sent: *n is set to
 * the number the server confirmed. Returns GW_OK once the server answered
 * NOERROR with a valid TSIG; otherwise an error with a reason in err (no
 * secret in it). */
int gw_dns_send_update(const gw_zone_conf_t *zone, const gw_dns_change_t *changes, size_t *n,
                       char *err, size_t errlen) __attribute__((warn_unused_result));

/* One A or AAAA record of a zone transfer: owner in lowercase without the
 * trailing dot, addr 4 or 16 bytes. Returns 0, or -1 to abort (out of
 * memory). */
typedef int (*gw_dns_axfr_cb)(void *arg, const char *owner, int is_aaaa, uint32_t ttl,
                              const uint8_t *addr);

typedef struct gw_dns_axfr_stats {
    size_t records;             /* every record of the transfer */
    size_t addresses;           /* A and AAAA records passed to the callback */
} gw_dns_axfr_stats_t;

/* Transfers the zone from its primary (AXFR over TCP, query signed with the
 * zone's TSIG key) and calls cb for every A and AAAA record. Returns GW_OK
 * after a complete transfer (SOA first and last); otherwise an error with a
 * reason in err. */
int gw_dns_axfr(const gw_zone_conf_t *zone, gw_dns_axfr_cb cb, void *arg,
                gw_dns_axfr_stats_t *stats, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
