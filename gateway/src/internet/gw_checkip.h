/* gw_checkip: the check-IP endpoints (docs/PROTOCOL.md section 12).
 *
 * Owns the answer to "which address do you see me at": GET (or HEAD)
 * /checkip gives the caller's address as one line of plain text, GET
 * /nic/checkip the dyndns-compatible HTML page ("Current IP Address: x").
 * No authentication, no database. Also owns the text form of a peer
 * address that the update endpoints record (an IPv4-mapped IPv6 address is
 * an IPv4 address). */
#ifndef GW_CHECKIP_H
#define GW_CHECKIP_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "gw_http.h"

#define GW_CHECKIP_PATH "/checkip"
#define GW_CHECKIP_HTML_PATH "/nic/checkip"

/* The address of sa as text into out (INET6_ADDRSTRLEN bytes suffice);
 * IPv4-mapped IPv6 addresses become IPv4. Returns AF_INET, AF_INET6, or 0
 * when sa is neither. */
int gw_checkip_peer_addr(const struct sockaddr *sa, char *out, size_t outlen);

/* "Use my connection's address": when the request named no address
 * (ipv4 and ipv6 both empty), the peer's address source (of family fam, as
 * gw_checkip_peer_addr gave it) becomes the request's A or AAAA address. */
void gw_checkip_default_addr(int fam, const char *source, char ipv4[INET_ADDRSTRLEN],
                             char ipv6[INET6_ADDRSTRLEN]);

/* gw_http_handler_fn for GW_CHECKIP_PATH; arg unused. */
void gw_checkip_handle_text(void *arg, gw_req_t *rq);
/* gw_http_handler_fn for GW_CHECKIP_HTML_PATH; arg unused. */
void gw_checkip_handle_html(void *arg, gw_req_t *rq);

#endif
