/* gw_api: the admin API (/api/v1/..., docs/ADMIN-API.md) on the admin
 * listener, and the two background jobs that feed and follow it.
 *
 * Owns the bearer-token check (SHA-256 of the token looked up in
 * admin_tokens; 401 unknown, expired or revoked; 403 a read token asking to
 * write), the routes, methods and input validation of every endpoint (400
 * with the field), the JSON answers (built by the admin_* SQL functions of
 * db/migrations/0006 and passed through), the admin token format and its
 * generation, and the audit record of each write (the client's address and
 * the token, written by the same SQL function as the change). Every query
 * runs on its own gw_db pool on the main loop, so no admin request ever
 * waits for or blocks the update path.
 *
 * The background jobs, every GW_API_TICK_S seconds:
 *   - the per-minute update counts: the deltas of gw_metrics' update answers
 *     (all, and those other than good/nochg) since the last flush, added to
 *     update_minutes (minute, gateway); a failed flush is retried with the
 *     next one, so no count is lost while the database is reachable again
 *     within the process's life;
 *   - the operator firmware policy: firmware_policy and its version; when
 *     the version changed the rules are kept here and the policy callback
 *     runs, which rebuilds the workers' policy from [firmware] plus these
 *     rules (gw_api_policy_apply);
 *   - the failed authentications per source address (gw_limit), added to
 *     source_failures (minute, source);
 *   - every minute, admin_fleet_compact(): the fleet counts' deltas folded
 *     (one gateway at a time; the others skip). */
#ifndef GW_API_H
#define GW_API_H

#include <event2/event.h>
#include <event2/http.h>

#include "cmn_key.h"
#include "gw_config.h"
#include "gw_db.h"
#include "gw_policy.h"

#define GW_API_TICK_S 5
typedef struct gw_api gw_api_t;

/* db: a pool on base's loop used by nothing else. NULL when out of memory. */
gw_api_t *gw_api_new(struct event_base *base, const gw_config_t *cfg, gw_db_t *db);
/* The master keys a reissue may move a device to (the gateway's own). */
void gw_api_set_keys(gw_api_t *api, const cmn_keyset_t *keys);
/* fn(arg) runs on the main loop each time the operator policy changed. */
void gw_api_set_policy_cb(gw_api_t *api, void (*fn)(void *arg), void *arg);
/* Adds the operator rules last read to p (after the [firmware] rules: a
 * minimum version for the same model replaces the configured one). Returns
 * the number of rules added. */
size_t gw_api_policy_apply(const gw_api_t *api, gw_policy_t *p);
/* Starts the background jobs (the first run at once). */
void gw_api_start(gw_api_t *api);
/* Answers req when its path starts with "/api/" and returns 1; else 0. */
int gw_api_handle(gw_api_t *api, struct evhttp_request *req);
void gw_api_free(gw_api_t *api);

#endif
