/* gw_publish: the DNS publisher thread.
 *
 * Owns the dns_outbox consumer: its own blocking PostgreSQL connection
 * (off the request path), LISTEN ddns_outbox, a wait on the connection's
 * socket and a self-pipe (1 s timeout as a safety net), and for every zone
 * one transaction per batch: pg_try_advisory_xact_lock (a zone another
 * gateway is publishing is skipped), up to 1000 rows in id order FOR
 * UPDATE, coalesced to one change per (name, type) (the newest row), one
 * signed RFC 2136 UPDATE through gw_dns, and the DELETE of the rows of the
 * changes the server confirmed (the sent row and the older rows it
 * superseded; a newer row committed meanwhile stays queued). A failed
 * batch is rolled back, its rows get attempts + 1 and last_error, and the
 * zone waits (200 ms doubling to 2 s, with jitter) before the next try. Its
 * health (database connection up, zones whose last batch failed) and the
 * batch counters of gw_metrics can be read from any thread. */
#ifndef GW_PUBLISH_H
#define GW_PUBLISH_H

#include <stddef.h>

#include "gw_config.h"

#define GW_PUBLISH_BATCH 1000

typedef struct gw_publish gw_publish_t;

/* Starts the thread. cfg must outlive gw_publish_stop(). */
int gw_publish_start(const gw_config_t *cfg, gw_publish_t **out) __attribute__((warn_unused_result));
/* GW_OK when the publisher has its database connection and no zone's last
 * batch failed; otherwise an error code and the reason in why. */
int gw_publish_health(gw_publish_t *p, char *why, size_t whylen);
/* Wakes the thread, waits for it to finish its current batch and exit. */
void gw_publish_stop(gw_publish_t *p);

#endif
