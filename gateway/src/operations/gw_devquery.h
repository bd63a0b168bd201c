/* gw_devquery: the device search of the admin API (GET /api/v1/devices).
 *
 * Owns the search's query parameters (q, mac, serial, hostname, model,
 * firmware, addr, kid, batch, status, seen_after, seen_before, sort, order,
 * limit, offset; docs/ADMIN-API.md), their validation, and the one
 * statement that answers them: the filters ANDed, every value a parameter,
 * the total and one page of admin_device_json() rows as one JSON text.
 * The text searches collect the candidate ids first
 * (d.device_id = ANY (ARRAY(...)), each arm on its index) so that the
 * planner looks the few candidates up by primary key instead of choosing a
 * hash join over the whole table on a rough row estimate.
 *
 * Pure: the parameters come through a getter, the statement goes into a
 * gw_sql_t, and a search that does not fit fails as a whole; no filter is
 * ever dropped. */
#ifndef GW_DEVQUERY_H
#define GW_DEVQUERY_H

#include <stddef.h>

#include "gw_sql.h"

#define GW_DEVQUERY_LIMIT_MAX 1000

/* The value of query parameter key, or NULL when absent or empty. */
typedef const char *(*gw_devquery_get_fn)(void *arg, const char *key);

/* What was wrong with a search. */
typedef struct gw_devquery_fail {
    const char *field;      /* the parameter at fault (NULL: the whole search) */
    char msg[256];
} gw_devquery_fail_t;

/* Builds the statement of the search get(arg, ...) describes into q (reset
 * first). Returns GW_OK; GW_EINVAL with fail naming the parameter and what
 * it must be; or GW_ENOSPC when the search is too large for the statement
 * (fail says so). */
int gw_devquery_build(gw_devquery_get_fn get, void *arg, gw_sql_t *q, gw_devquery_fail_t *fail)
    __attribute__((warn_unused_result));

#endif
