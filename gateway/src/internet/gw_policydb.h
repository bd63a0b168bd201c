/* gw_policydb: the firmware policy as the operators set it in the database.
 *
 * Owns the poll of firmware_policy and firmware_policy_state (every
 * GW_POLICYDB_TICK_S seconds on its own pool connection, at once after
 * gw_policydb_poll_now()), the rules last read, and the callback that
 * tells the owner they changed (only when the version changed, and not at
 * start while the table is empty). gw_policydb_apply() adds the rules to a
 * gw_policy built from [firmware], which is how the workers get them. */
#ifndef GW_POLICYDB_H
#define GW_POLICYDB_H

#include <stddef.h>

#include <event2/event.h>

#include "gw_db.h"
#include "gw_policy.h"

#define GW_POLICYDB_TICK_S 5

typedef struct gw_policydb gw_policydb_t;

/* db: a pool on base's loop. NULL when out of memory. */
gw_policydb_t *gw_policydb_new(struct event_base *base, gw_db_t *db);
/* fn(arg) runs on base's loop each time the operator rules changed. */
void gw_policydb_set_cb(gw_policydb_t *pd, void (*fn)(void *arg), void *arg);
/* Starts polling (the first poll at once). */
void gw_policydb_start(gw_policydb_t *pd);
/* Polls at once (after this gateway changed the rules). */
void gw_policydb_poll_now(gw_policydb_t *pd);
/* Adds the rules last read to p (after the [firmware] rules: a minimum
 * version for the same model replaces the configured one). Returns the
 * number of rules added; 0 for a NULL pd. */
size_t gw_policydb_apply(const gw_policydb_t *pd, gw_policy_t *p);
void gw_policydb_free(gw_policydb_t *pd);

#endif
