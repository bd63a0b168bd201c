/* gw_update: the POST /v1/update handler (docs/PROTOCOL.md section 4).
 *
 * Owns the request-level decisions: a source blocked by the failed
 * authentication limiter (gw_limit) gets 429 "ratelimit <s>" before
 * anything else is looked at, every badauth counts against its source;
 * exactly one Authorization header, a
 * Content-Length, verification through gw_auth (syntax, clock window,
 * signature) with the firmware policy (gw_policy) between syntax and clock,
 * the connection's address when the body names none (IPv4-mapped IPv6
 * peers count as IPv4), the address policy after the signature
 * (gw_addrpol: 403 "badaddr <addr> [<addr>]", nothing sent to the
 * database), the one database request (gw_apply, for every name of the
 * device, with the minimum change interval) with a deadline of
 * request_timeout, and the mapping of its typed answer to the
 * answer: good/nochg 200, unknown 401 badauth (the same answer as a wrong
 * signature), disabled 403, badagent 403, replay 409, ratelimit 429 with
 * Retry-After, database failure 503 911 with Retry-After. */
#ifndef GW_UPDATE_H
#define GW_UPDATE_H

#include <event2/event.h>

#include "gw_devctx.h"
#include "gw_http.h"

#define GW_UPDATE_RETRY_AFTER 30

/* gw_http_handler_fn for GW_ROUTE_UPDATE; arg is the worker's gw_devctx_t. */
void gw_update_handle(void *arg, gw_req_t *rq);

#endif
