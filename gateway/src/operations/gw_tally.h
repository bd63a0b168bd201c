/* gw_tally: the figures the admin API and the console read, written to the
 * database by every gateway.
 *
 * Owns three jobs, every GW_TALLY_TICK_S seconds on the admin pool:
 *   - the per-minute update counts: the deltas of gw_metrics' update
 *     answers (all, and those other than good/nochg) since the last flush,
 *     added to update_minutes (minute, gateway); a failed flush is retried
 *     with the next one, so no count is lost while the database is
 *     reachable again within the process's life;
 *   - the failed authentications per source address (gw_limit), added to
 *     source_failures (minute, source), at most GW_TALLY_SOURCES_MAX
 *     sources per flush (the others wait for the next; a failed flush loses
 *     its counts, which only rank the failing sources);
 *   - every minute, admin_fleet_compact(): the fleet counts' deltas folded
 *     (one gateway at a time; the others skip). */
#ifndef GW_TALLY_H
#define GW_TALLY_H

#include <event2/event.h>

#include "gw_db.h"

#define GW_TALLY_TICK_S 5
#define GW_TALLY_SOURCES_MAX 1000

typedef struct gw_tally gw_tally_t;

/* db: a pool on base's loop. NULL when out of memory. */
gw_tally_t *gw_tally_new(struct event_base *base, gw_db_t *db);
/* Starts the jobs (the first run at once). */
void gw_tally_start(gw_tally_t *t);
void gw_tally_free(gw_tally_t *t);

#endif
