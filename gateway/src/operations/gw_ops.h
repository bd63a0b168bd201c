/* gw_ops: the operations listener (plain HTTP, [admin] listen).
 *
 * Owns the admin endpoints and the probes behind them:
 *   GET /healthz  200 "ok" while the process runs;
 *   GET /readyz   200 "ready", or 503 "notready <reason>" while stopping,
 *                 while the database is unreachable (no pool connection, or
 *                 the last probe failed or has had no answer for 5 s), or
 *                 while the publisher has no database connection or a
 *                 zone's last DNS UPDATE failed;
 *   GET /metrics  Prometheus text: gw_metrics' counters and histograms and
 *                 the gauges read here (open connections, requests in
 *                 flight, database pool by state and queue, outbox rows and
 *                 age of the oldest row, probe results);
 *   /console/...  handed to gw_console (the web console's static files).
 * The outbox numbers come from a probe query run on a pool of its own (one
 * connection on the main loop) every 5 s (every second while it fails), so that scraping never loads
 * the database. Admin requests are not counted in ddns_requests_total.
 * Paths under /api/ go to gw_api (the admin API), when one is set. Its
 * connections go through gw_opsconn (their caps and header clock). */
#ifndef GW_OPS_H
#define GW_OPS_H

#include <event2/event.h>

#include "gw_api.h"
#include "gw_config.h"
#include "gw_db.h"
#include "gw_http.h"
#include "gw_publish.h"

typedef struct gw_ops gw_ops_t;

#define GW_OPS_WORKERS_MAX 64

/* NULL when out of memory. Nothing listens before gw_ops_listen(). db is
 * the pool of the readiness probe, on base's loop. */
gw_ops_t *gw_ops_new(struct event_base *base, const gw_config_t *cfg, gw_db_t *db);
/* A worker's request pool and front end, summed in /metrics (their
 * gw_db_stats and gw_http_inflight, which any thread may read). Returns
 * GW_OK, or GW_EINVAL past GW_OPS_WORKERS_MAX. */
int gw_ops_add_worker(gw_ops_t *a, gw_db_t *db, gw_http_t *http)
    __attribute__((warn_unused_result));
/* Binds [admin] listen (nothing when unset) and starts the probe. Returns
 * GW_OK or GW_EIO (logged). */
int gw_ops_listen(gw_ops_t *a) __attribute__((warn_unused_result));
void gw_ops_set_publisher(gw_ops_t *a, const gw_publish_health_t *health);
/* Requests under /api/ are answered by api (without one: 404). */
void gw_ops_set_api(gw_ops_t *a, gw_api_t *api);
/* After a reload: the operations listener takes request_timeout again. */
void gw_ops_apply_settings(gw_ops_t *a);
/* From now on /readyz answers 503 "notready stopping". */
void gw_ops_set_stopping(gw_ops_t *a);
void gw_ops_free(gw_ops_t *a);

#endif
