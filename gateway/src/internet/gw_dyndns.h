/* gw_dyndns: the dyndns2 endpoint GET /nic/update (docs/PROTOCOL.md
 * section 10), for devices and routers that carry a stock DDNS client.
 *
 * Owns the request-level decisions of a dyndns2 update, in this order: the
 * method (GET only) and the User-Agent (present, and allowed by gw_policy,
 * including its signed-only models) give badagent; HTTP Basic credentials
 * (parsed by gw_dynparse) are checked by gw_auth_check_password() (no
 * Authorization header at all gets 401 with a Basic challenge, for clients
 * that wait for one); then the
 * query (badrequest, notfqdn, numhost), the address policy (gw_addrpol:
 * "abuse" for every host, nothing sent to the database), the one database
 * request (gw_apply) with the host list, the offline flag and the minimum
 * change interval, and the answer: one line per requested host in request order,
 * HTTP 200 for every dyndns2 result. */
#ifndef GW_DYNDNS_H
#define GW_DYNDNS_H

#include <event2/event.h>

#include "gw_devctx.h"
#include "gw_http.h"


/* gw_http_handler_fn for GW_ROUTE_DYNDNS; arg is the worker's gw_devctx_t. */
void gw_dyndns_handle(void *arg, gw_req_t *rq);

#endif
