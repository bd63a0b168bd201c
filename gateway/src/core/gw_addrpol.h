/* gw_addrpol: where a device's name may point.
 *
 * Owns the table of the address blocks a device's name must not point at
 * (the blocks of the IANA IPv4 and IPv6 Special-Purpose Address
 * Registries that are not globally reachable, multicast, the IPv4-mapped,
 * translation, 6to4 and Teredo prefixes, and everything outside the IPv6
 * global unicast space), the lifting of it by a zone's allow list
 * ([zone NAME] allow_addresses), and the decision for the addresses of one
 * update request, for /v1/update and /nic/update alike. Pure functions
 * (verdicts 1/0), no I/O. */
#ifndef GW_ADDRPOL_H
#define GW_ADDRPOL_H

#include <netinet/in.h>
#include <stddef.h>

#include "gw_config.h"

/* NULL when the address a (4 bytes for AF_INET, 16 for AF_INET6) is a
 * globally reachable unicast address; otherwise the block that holds it as
 * text, such as "10.0.0.0/8 private-use". */
const char *gw_addrpol_block(int family, const unsigned char *a);

/* The zone of cfg that holds fqdn (lowercase, no trailing dot): the
 * longest zone name that fqdn ends with at a label boundary; NULL when
 * none does. */
const gw_zone_conf_t *gw_addrpol_zone(const gw_config_t *cfg, const char *fqdn);

/* What refused a request: the refused addresses as sent, IPv4 first,
 * separated by a space, and the block of the first. */
typedef struct gw_addrpol_refusal {
    char addr[2 * INET6_ADDRSTRLEN];
    const char *block;
} gw_addrpol_refusal_t;

/* The addresses of one update request. ipv4/ipv6: the addresses it names
 * (NULL or "": none); when it names neither it publishes source, the
 * address its connection comes from (gw_apply's rule); offline requests
 * publish nothing and are not checked. hosts: nhosts names of stride bytes
 * each (an array of char[stride]; "" items are skipped), the names the
 * request changes; hosts NULL: every name of the device. */
typedef struct gw_addrpol_req {
    const char *ipv4, *ipv6, *source;
    const char *hosts;
    size_t nhosts, stride;
} gw_addrpol_req_t;

/* 1 when every address the request publishes may be published: it is
 * globally reachable (gw_addrpol_block), or it lies in the allow list of
 * the zone of every name the request changes. A name in no zone of cfg
 * allows nothing more. Since the zones of "every name of the device" are
 * not known before the database, such a request needs the allow list of
 * every zone of cfg (of one zone, in the usual set-up). 0 and *out
 * otherwise, also for an address that is not an address. */
int gw_addrpol_check(const gw_config_t *cfg, const gw_addrpol_req_t *rq,
                     gw_addrpol_refusal_t *out);

#endif
