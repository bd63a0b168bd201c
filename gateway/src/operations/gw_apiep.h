/* gw_apiep: the endpoints of the admin API (docs/ADMIN-API.md).
 *
 * Owns what each endpoint accepts (the validation of its path segment,
 * query and body, with the field at fault) and the statement it runs: the
 * admin_* SQL functions that read, change and audit in one transaction,
 * and the device search of gw_devquery. Each endpoint returns GW_OK once
 * its statement runs (the answer follows from gw_apireq), or the fault it
 * recorded with gw_apireq_fail() for the dispatcher to answer. The token
 * check and the routing are gw_api's. */
#ifndef GW_APIEP_H
#define GW_APIEP_H

#include "gw_apireq.h"

int gw_apiep_whoami(gw_apireq_t *r);
int gw_apiep_devices(gw_apireq_t *r);
int gw_apiep_device(gw_apireq_t *r);
/* POST devices/{id}/revoke, restore, republish */
int gw_apiep_status_action(gw_apireq_t *r);
int gw_apiep_ttl(gw_apireq_t *r);
int gw_apiep_reissue(gw_apireq_t *r);
/* POST devices/{id}/dyndns2 {"allowed": true|false} */
int gw_apiep_dyndns2(gw_apireq_t *r);
int gw_apiep_fleet(gw_apireq_t *r);
int gw_apiep_failing(gw_apireq_t *r);
int gw_apiep_policy_get(gw_apireq_t *r);
int gw_apiep_policy_put(gw_apireq_t *r);
int gw_apiep_audit(gw_apireq_t *r);
int gw_apiep_tokens_get(gw_apireq_t *r);
int gw_apiep_tokens_post(gw_apireq_t *r);
int gw_apiep_tokens_delete(gw_apireq_t *r);

#endif
