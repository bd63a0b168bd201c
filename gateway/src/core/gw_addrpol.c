/* gw_addrpol: where a device's name may point (see gw_addrpol.h). */
#include "gw_addrpol.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "gw_addr.h"

/* One block of the table: its range and its name in the answer's log. */
struct gw_addrpol_block {
    gw_cidr_t net;
    const char *name;
};

#define V4(a, b, c, d, len, name) {{AF_INET, {a, b, c, d}, len}, name}
#define V6(len, name, ...) {{AF_INET6, {__VA_ARGS__}, len}, name}

/* The IANA IPv4 Special-Purpose Address Registry
 * (https://www.iana.org/assignments/iana-ipv4-special-registry/, RFC 6890
 * and its updates) and the IPv6 one
 * (https://www.iana.org/assignments/iana-ipv6-special-registry/): the
 * blocks marked "Globally Reachable: True" inside a refused block. They
 * are anycast service addresses, no host of anyone's network. */
static const struct gw_addrpol_block gw_addrpol_reachable[] = {
    V4(192, 0, 0, 9, 32, "192.0.0.9/32 port control protocol anycast"),
    V4(192, 0, 0, 10, 32, "192.0.0.10/32 traversal using relays around NAT anycast"),
    V6(128, "2001:1::1/128 port control protocol anycast", 0x20, 0x01, 0, 1, 0, 0, 0, 0, 0, 0,
       0, 0, 0, 0, 0, 1),
    V6(128, "2001:1::2/128 traversal using relays around NAT anycast", 0x20, 0x01, 0, 1, 0, 0,
       0, 0, 0, 0, 0, 0, 0, 0, 0, 2),
    V6(128, "2001:1::3/128 DNS-SD service registration protocol anycast", 0x20, 0x01, 0, 1, 0,
       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3),
    V6(32, "2001:3::/32 AMT", 0x20, 0x01, 0, 3),
    V6(48, "2001:4:112::/48 AS112-v6", 0x20, 0x01, 0, 4, 0x01, 0x12),
    V6(28, "2001:20::/28 ORCHIDv2", 0x20, 0x01, 0, 0x20),
    V6(28, "2001:30::/28 drone remote ID protocol entity tags", 0x20, 0x01, 0, 0x30),
};

/* The refused blocks: the same registries' blocks marked "Globally
 * Reachable: False", plus what the registries do not cover but a name of a
 * device on the internet must not point at either:
 *   - multicast (224.0.0.0/4, ff00::/8) and the limited broadcast address;
 *   - 192.88.99.0/24 and 2002::/16 (6to4, deprecated by RFC 7526; a 6to4
 *     address embeds any IPv4 address, private ones too) and 2001::/32
 *     (Teredo, registry "N/A": it embeds its server's and client's IPv4
 *     addresses);
 *   - 64:ff9b::/96, which the registry marks globally reachable: it names
 *     the embedded IPv4 address through whichever NAT64 the connecting
 *     side uses, 64:ff9b::a9fe:a9fe being 169.254.169.254 there;
 *   - every IPv6 address outside 2000::/3, the global unicast space of the
 *     IANA IPv6 Address Space registry (gw_addrpol_block).
 * Longer prefixes come before the blocks that hold them, so that an
 * address is named by its most specific block. */
static const struct gw_addrpol_block gw_addrpol_refused[] = {
    V4(0, 0, 0, 0, 8, "0.0.0.0/8 this network"),
    V4(10, 0, 0, 0, 8, "10.0.0.0/8 private-use"),
    V4(100, 64, 0, 0, 10, "100.64.0.0/10 shared address space"),
    V4(127, 0, 0, 0, 8, "127.0.0.0/8 loopback"),
    V4(169, 254, 0, 0, 16, "169.254.0.0/16 link-local"),
    V4(172, 16, 0, 0, 12, "172.16.0.0/12 private-use"),
    V4(192, 0, 0, 0, 24, "192.0.0.0/24 IETF protocol assignments"),
    V4(192, 0, 2, 0, 24, "192.0.2.0/24 documentation (TEST-NET-1)"),
    V4(192, 88, 99, 0, 24, "192.88.99.0/24 6to4 relay anycast (deprecated)"),
    V4(192, 168, 0, 0, 16, "192.168.0.0/16 private-use"),
    V4(198, 18, 0, 0, 15, "198.18.0.0/15 benchmarking"),
    V4(198, 51, 100, 0, 24, "198.51.100.0/24 documentation (TEST-NET-2)"),
    V4(203, 0, 113, 0, 24, "203.0.113.0/24 documentation (TEST-NET-3)"),
    V4(224, 0, 0, 0, 4, "224.0.0.0/4 multicast"),
    V4(255, 255, 255, 255, 32, "255.255.255.255/32 limited broadcast"),
    V4(240, 0, 0, 0, 4, "240.0.0.0/4 reserved"),
    V6(128, "::/128 unspecified address", 0),
    V6(128, "::1/128 loopback", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
    V6(96, "::ffff:0:0/96 IPv4-mapped", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff),
    V6(96, "64:ff9b::/96 IPv4/IPv6 translation", 0, 0x64, 0xff, 0x9b),
    V6(48, "64:ff9b:1::/48 local-use IPv4/IPv6 translation", 0, 0x64, 0xff, 0x9b, 0, 1),
    V6(64, "100::/64 discard-only", 0x01, 0),
    V6(64, "100:0:0:1::/64 dummy IPv6 prefix", 0x01, 0, 0, 0, 0, 0, 0, 1),
    V6(32, "2001::/32 Teredo", 0x20, 0x01, 0, 0),
    V6(48, "2001:2::/48 benchmarking", 0x20, 0x01, 0, 2, 0, 0),
    V6(28, "2001:10::/28 ORCHID (deprecated)", 0x20, 0x01, 0, 0x10),
    V6(23, "2001::/23 IETF protocol assignments", 0x20, 0x01),
    V6(32, "2001:db8::/32 documentation", 0x20, 0x01, 0x0d, 0xb8),
    V6(16, "2002::/16 6to4", 0x20, 0x02),
    V6(20, "3fff::/20 documentation", 0x3f, 0xff),
    V6(16, "5f00::/16 segment routing SIDs", 0x5f, 0x00),
    V6(7, "fc00::/7 unique-local", 0xfc),
    V6(10, "fe80::/10 link-local", 0xfe, 0x80),
    V6(8, "ff00::/8 multicast", 0xff),
};

static const struct gw_addrpol_block gw_addrpol_unicast6 =
    V6(3, "outside the IPv6 global unicast space 2000::/3", 0x20);

#define GW_NELEM(a) (sizeof (a) / sizeof (a)[0])

const char *gw_addrpol_block(int family, const unsigned char *a)
{
    for (size_t i = 0; i < GW_NELEM(gw_addrpol_reachable); i++)
        if (gw_addr_in_cidr(&gw_addrpol_reachable[i].net, family, a))
            return NULL;
    for (size_t i = 0; i < GW_NELEM(gw_addrpol_refused); i++)
        if (gw_addr_in_cidr(&gw_addrpol_refused[i].net, family, a))
            return gw_addrpol_refused[i].name;
    if (family == AF_INET6 && !gw_addr_in_cidr(&gw_addrpol_unicast6.net, family, a))
        return gw_addrpol_unicast6.name;
    if (family != AF_INET && family != AF_INET6)
        return "not an IP address";
    return NULL;
}

const gw_zone_conf_t *gw_addrpol_zone(const gw_config_t *cfg, const char *fqdn)
{
    const gw_zone_conf_t *best = NULL;
    size_t fl = strlen(fqdn), bl = 0;
    for (size_t i = 0; i < cfg->nzones; i++) {
        const char *zn = cfg->zones[i].name;
        size_t zl = strlen(zn);
        if (zl > fl || zl <= bl || strcmp(fqdn + fl - zl, zn) != 0)
            continue;
        if (zl < fl && fqdn[fl - zl - 1] != '.')
            continue;
        best = &cfg->zones[i];
        bl = zl;
    }
    return best;
}

/* 1 when the zones of the request's names all allow a (family, bytes). */
static int gw_addrpol_zones_allow(const gw_config_t *cfg, const gw_addrpol_req_t *rq, int family,
                                  const unsigned char *a)
{
    size_t checked = 0;
    if (rq->hosts == NULL) {
        for (size_t i = 0; i < cfg->nzones; i++)
            if (!gw_addr_cidr_has(&cfg->zones[i].allow_addresses, family, a))
                return 0;
        return cfg->nzones > 0;
    }
    for (size_t i = 0; i < rq->nhosts; i++) {
        const char *h = rq->hosts + i * rq->stride;
        if (h[0] == '\0')
            continue;
        const gw_zone_conf_t *z = gw_addrpol_zone(cfg, h);
        if (z == NULL || !gw_addr_cidr_has(&z->allow_addresses, family, a))
            return 0;
        checked++;
    }
    return checked > 0;
}

/* 1 when the address text may be published; else it is added to *out. */
static int gw_addrpol_one(const gw_config_t *cfg, const gw_addrpol_req_t *rq, const char *text,
                          gw_addrpol_refusal_t *out)
{
    unsigned char a[16];
    int family = strchr(text, ':') != NULL ? AF_INET6 : AF_INET;
    const char *block = "not an IP address";
    if (inet_pton(family, text, a) == 1) {
        block = gw_addrpol_block(family, a);
        if (block == NULL || gw_addrpol_zones_allow(cfg, rq, family, a))
            return 1;
    }
    size_t len = strlen(out->addr);
    snprintf(out->addr + len, sizeof out->addr - len, "%s%s", len ? " " : "", text);
    if (out->block == NULL)
        out->block = block;
    return 0;
}

int gw_addrpol_check(const gw_config_t *cfg, const gw_addrpol_req_t *rq,
                     gw_addrpol_refusal_t *out)
{
    int named = 0, ok = 1;
    const char *addrs[2] = {rq->ipv4, rq->ipv6};
    out->addr[0] = '\0';
    out->block = NULL;
    for (size_t i = 0; i < 2; i++) {
        if (addrs[i] == NULL || addrs[i][0] == '\0')
            continue;
        named = 1;
        ok &= gw_addrpol_one(cfg, rq, addrs[i], out);
    }
    if (named || rq->source == NULL || rq->source[0] == '\0')
        return ok;
    return gw_addrpol_one(cfg, rq, rq->source, out);
}
