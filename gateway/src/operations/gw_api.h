/* gw_api: the admin API (/api/v1/..., docs/ADMIN-API.md) on the
 * operations listener.
 *
 * Owns the one route table of the API (path segments and method to
 * endpoint and the scope it needs: 404 for an unknown path, 405 with Allow
 * for a known path's other methods), the bearer-token check (SHA-256 of
 * the token looked up in admin_tokens; 401 unknown, expired or revoked;
 * 403 a read token asking to write; 429 for a client that failed too
 * often, through a gw_limit table of its own, [admin] auth_fail_limit,
 * keyed on the client's address of gw_opsconn_client), the parsing of the query string and of the
 * JSON body, and the answer of every fault an endpoint records. The
 * endpoints are gw_apiep's, the request gw_apireq's. Every statement runs
 * on the admin pool on the main loop, so no admin request ever waits for
 * or blocks the update path. */
#ifndef GW_API_H
#define GW_API_H

#include <event2/http.h>

#include "cmn_key.h"
#include "gw_config.h"
#include "gw_db.h"
#include "gw_opsconn.h"
#include "gw_policydb.h"

typedef struct gw_api gw_api_t;

/* db: the admin pool, on the loop of the listener. NULL when out of memory. */
gw_api_t *gw_api_new(const gw_config_t *cfg, gw_db_t *db);
/* The key ids a reissue may move a device to (the gateway's own master
 * keys), one blank between them; the text must outlive the API or be
 * replaced. */
void gw_api_set_kids(gw_api_t *api, const char *kids);
/* The listener's connections, which tell a request whose client left. */
void gw_api_set_conns(gw_api_t *api, gw_opsconn_t *conns);
/* The operator policy, polled at once after a change through the API. */
void gw_api_set_policydb(gw_api_t *api, gw_policydb_t *pd);
/* Answers req when its path starts with "/api/" and returns 1; else 0. */
int gw_api_handle(gw_api_t *api, struct evhttp_request *req);
/* After a reload: the failed-login limiter takes the new settings. */
void gw_api_apply_settings(gw_api_t *api);
void gw_api_free(gw_api_t *api);

#endif
