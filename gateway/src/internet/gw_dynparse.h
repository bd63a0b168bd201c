/* gw_dynparse: parsing of a dyndns2 update request (docs/PROTOCOL.md
 * section 10).
 *
 * Owns the syntax of GET /nic/update: the query string (percent-decoding,
 * the parameters hostname, myip, offline and the accepted-and-ignored
 * wildcard, mx, backmx, system), the host name rule (an FQDN, folded to
 * lowercase), the myip forms (IPv4, IPv6, or both as "v4,v6"), and the
 * HTTP Basic credentials (user: the device id or the MAC in another
 * accepted form; password: key reference "." 43 base64url characters).
 * Pure functions, no I/O, no allocation; the password is wiped from every
 * intermediate buffer. The
 * fuzz target gateway/fuzz/fuzz_dyndns.c drives all of them. */
#ifndef GW_DYNPARSE_H
#define GW_DYNPARSE_H

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>

#include "cmn_key.h"
#include "cmn_mac.h"

#define GW_DYN_HOSTS_MAX 100     /* largest [dyndns2] max_hosts */
#define GW_DYN_FQDN_MAX 253
#define GW_DYN_QUERY_MAX 8192

typedef struct gw_dyn_query {
    int have_hostname;          /* the hostname parameter was given */
    size_t nhosts;              /* items listed (also beyond GW_DYN_HOSTS_MAX) */
    /* per item i < min(nhosts, GW_DYN_HOSTS_MAX): the FQDN in canonical form
     * (lowercase, no trailing dot), or "" when the item is not an FQDN */
    char host[GW_DYN_HOSTS_MAX][GW_DYN_FQDN_MAX + 1];
    /* myip: canonical text, "" when not given */
    char ipv4[INET_ADDRSTRLEN];
    char ipv6[INET6_ADDRSTRLEN];
    int offline;                /* offline=YES */
    /* on error: the parameter that is wrong ("myip", "offline", "hostname",
     * ...) or "query" for the encoding */
    char field[40];
} gw_dyn_query_t;

/* Parses the query string (the part after '?', without '#'; NULL or ""
 * for none). Returns 0, or -1 with out->field set. */
int gw_dyn_parse_query(const char *query, gw_dyn_query_t *out);

/* 1 when s[0..len) is a host name this service can hold: at least two
 * labels of [A-Za-z0-9-] (1 to 63 characters, no '-' at either end), at
 * most 253 characters, one trailing dot allowed. out (GW_DYN_FQDN_MAX + 1)
 * receives it in lowercase without the dot. */
int gw_dyn_fqdn(const char *s, size_t len, char *out);

/* Parses one myip value: "", an IPv4 address, an IPv6 address (an
 * IPv4-mapped one counts as IPv4) or one of each separated by ','.
 * Returns 0 or -1. */
int gw_dyn_parse_myip(const char *v, char ipv4[INET_ADDRSTRLEN], char ipv6[INET6_ADDRSTRLEN]);

typedef struct gw_dyn_cred {
    char device_id[CMN_DEVICE_ID_LEN + 1];
    char kid[CMN_KID_MAX + 1];      /* the key id, without the generation */
    uint32_t generation;
    /* the password's 32 bytes after the key reference (generation 0: the
     * device secret; later: the password derived from it) */
    uint8_t password[CMN_SECRET_LEN];
} gw_dyn_cred_t;

/* Parses an Authorization value "Basic <base64(user:password)>" (scheme
 * name in any case). The user is canonicalised with cmn_mac_canon (so
 * "3c5ab4f09a21", "3C-5A-B4-F0-9A-21" and "3c5a.b4f0.9a21" name the same
 * device); the password must be a key reference ("k1", "k1/3"), "." and 43
 * base64url characters (docs/PROTOCOL.md section 3). Whether the password
 * is right is gw_auth_check_password()'s. Returns 0, or -1 (out wiped)
 * for anything else. */
int gw_dyn_parse_basic(const char *authorization, gw_dyn_cred_t *out);

#endif
