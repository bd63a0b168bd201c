/* gw_dyndns: the dyndns2 endpoint GET /nic/update (docs/PROTOCOL.md
 * section 10), for devices and routers that carry a stock DDNS client.
 *
 * Owns the request-level decisions of a dyndns2 update, in this order: the
 * method (GET only) and the User-Agent (present, and allowed by gw_policy)
 * give badagent; HTTP Basic credentials (gw_dynparse) are checked by
 * re-deriving the device secret and comparing it in constant time (an
 * unknown key id costs the same work; no Authorization header at all gets
 * 401 with a Basic challenge, for clients that wait for one); then the
 * query (badrequest, notfqdn, numhost), the one database request
 * (gw_apply) with the host list, the offline flag and the minimum change
 * interval, and the answer: one line per requested host in request order,
 * HTTP 200 for every dyndns2 result. */
#ifndef GW_DYNDNS_H
#define GW_DYNDNS_H

#include <event2/event.h>

#include "cmn_key.h"
#include "gw_config.h"
#include "gw_db.h"
#include "gw_http.h"
#include "gw_policy.h"


typedef struct gw_dyndns gw_dyndns_t;

gw_dyndns_t *gw_dyndns_new(const gw_config_t *cfg,
                           const cmn_keyset_t *keys, gw_db_t *db, const gw_policy_t *policy);
/* Verifies with keys and applies policy from now on (reload); the caller
 * frees the old ones. */
void gw_dyndns_set_keys(gw_dyndns_t *d, const cmn_keyset_t *keys);
void gw_dyndns_set_policy(gw_dyndns_t *d, const gw_policy_t *policy);
void gw_dyndns_free(gw_dyndns_t *d);

/* gw_http_handler_fn for GW_ROUTE_DYNDNS; arg is the gw_dyndns_t. */
void gw_dyndns_handle(void *arg, gw_req_t *rq);

#endif
