/* gw_checkip: the check-IP endpoints (docs/PROTOCOL.md section 12).
 *
 * Owns the answer to "which address do you see me at": GET (or HEAD)
 * /checkip gives the caller's address as one line of plain text, GET
 * /nic/checkip the dyndns-compatible HTML page ("Current IP Address: x").
 * No authentication, no database. The address is the request's
 * (gw_req_info: an IPv4-mapped IPv6 address is an IPv4 address). */
#ifndef GW_CHECKIP_H
#define GW_CHECKIP_H

#include "gw_http.h"

/* gw_http_handler_fn for GW_ROUTE_CHECKIP; arg unused. */
void gw_checkip_handle_text(void *arg, gw_req_t *rq);
/* gw_http_handler_fn for GW_ROUTE_CHECKIP_HTML; arg unused. */
void gw_checkip_handle_html(void *arg, gw_req_t *rq);

#endif
