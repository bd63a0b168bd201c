/* gw_dns: RFC 2136 UPDATE messages signed with TSIG (ldns).
 *
 * Owns the wire side of publishing: one UPDATE message per batch for one
 * zone (zone section: the zone, IN SOA; for every change in order: delete
 * the RRset, then add the new record when there is one), TSIG signing,
 * sending it to the zone's primary (UDP when it fits in 512 bytes, else TCP;
 * 3 s timeout) and checking the answer: same id, a valid TSIG, rcode
 * NOERROR. No database here; the publisher owns the outbox. */
#ifndef GW_DNS_H
#define GW_DNS_H

#include <stddef.h>

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

#endif
