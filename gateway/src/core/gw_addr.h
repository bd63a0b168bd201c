/* gw_addr: numeric socket addresses and address ranges as the
 * configuration writes them.
 *
 * Owns "addr:port" with IPv6 in brackets (listeners, a zone's primary) and
 * its canonical text, lists of them, and "addr[/prefix]" networks with the
 * test whether a peer (IPv4, IPv6 or IPv4-mapped IPv6) lies in one, and
 * the text form of a peer's address the gateway records. Pure
 * functions, no name lookups. */
#ifndef GW_ADDR_H
#define GW_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define GW_MAX_LISTEN 16

/* A numeric socket address with its canonical text ("1.2.3.4:53",
 * "[::1]:8443"). */
typedef struct gw_sockaddr {
    struct sockaddr_storage ss;
    socklen_t len;
    char text[64];
} gw_sockaddr_t;

typedef struct gw_listen_list {
    gw_sockaddr_t addr[GW_MAX_LISTEN];
    size_t n;
} gw_listen_list_t;

/* One address range: an IPv4 or IPv6 network and its prefix length. */
typedef struct gw_cidr {
    int family;                 /* AF_INET or AF_INET6 */
    unsigned char addr[16];     /* network bytes (4 used for IPv4) */
    int prefix;
} gw_cidr_t;

#define GW_MAX_CIDRS 32

typedef struct gw_cidr_list {
    gw_cidr_t net[GW_MAX_CIDRS];
    size_t n;
} gw_cidr_list_t;

/* Parses "1.2.3.4:53", "[2001:db8::1]:53" (numeric addresses only). When
 * default_port >= 0 the ":port" part may be left out. Returns 0 or -1. */
int gw_addr_parse(const char *s, int default_port, gw_sockaddr_t *out);

/* The address of sa (without the port) as text into out (INET6_ADDRSTRLEN
 * bytes suffice); an IPv4-mapped IPv6 address is an IPv4 address. Returns
 * AF_INET, AF_INET6, or 0 when sa is neither (out then empty). */
int gw_addr_text(const struct sockaddr *sa, char *out, size_t outlen);

/* 1 when sa (IPv4, IPv6 or IPv4-mapped IPv6) lies in one of the ranges. */
int gw_addr_cidr_match(const gw_cidr_list_t *l, const struct sockaddr *sa);

/* 1 when the address a (4 bytes for AF_INET, 16 for AF_INET6) of family
 * lies in the range c. */
int gw_addr_in_cidr(const gw_cidr_t *c, int family, const unsigned char *a);

/* The same for a list: 1 when a lies in one of its ranges. */
int gw_addr_cidr_has(const gw_cidr_list_t *l, int family, const unsigned char *a);

/* "192.0.2.0/24", "2001:db8::/32" or one address (the full prefix). Host
 * bits beyond the prefix must be zero. Returns 0 or -1. */
int gw_addr_parse_cidr(const char *s, gw_cidr_t *out);

#endif
