/* gw_publish: the DNS publisher thread.
 *
 * Owns the dns_outbox consumer: its own blocking PostgreSQL connection
 * (off the request path), LISTEN ddns_outbox, a wait on the connection's
 * socket and a self-pipe (1 s timeout as a safety net), and for every zone
 * with rows a run under pg_try_advisory_lock (a zone another gateway is
 * publishing is skipped): up to 1000 rows in id order, coalesced to one
 * change per (name, type) (the newest row), one signed RFC 2136 UPDATE
 * through gw_dns, and while it is unanswered the rows committed meanwhile
 * as a second message on the same connection (GW_PUBWIN_MAX in flight, gw_pubwin). A
 * confirmed message deletes the rows of its changes (the sent row and the
 * older rows it superseded, in any message of the run; a newer row
 * committed meanwhile stays queued). A failed message stops the run, its
 * rows get attempts + 1 and last_error, and the zone waits (200 ms doubling
 * to 2 s, with jitter) before the next try. A message the server refused
 * (a validly signed error) halves the rows per message, one in flight,
 * until the refused change is alone; its rows are then set aside for 60 s
 * so that the others are published. Its health (database connection
 * up, zones whose last message failed) and the publish counters of
 * gw_metrics can be read from any thread, and from another process when
 * both are in shared memory (gw_publish_health_new, gw_metrics_share). */
#ifndef GW_PUBLISH_H
#define GW_PUBLISH_H

#include <stddef.h>

#include "gw_config.h"

#define GW_PUBLISH_BATCH 1000

typedef struct gw_publish gw_publish_t;
typedef struct gw_publish_health gw_publish_health_t;

/* A health record in memory shared with the processes forked afterwards
 * (the publisher runs in a process of its own, the gateway's /readyz and
 * /metrics read it). NULL when out of memory. */
gw_publish_health_t *gw_publish_health_new(void);
void gw_publish_health_free(gw_publish_health_t *h);

/* Starts the thread, which keeps its health in health. cfg and health
 * must outlive gw_publish_stop(). */
int gw_publish_start(const gw_config_t *cfg, gw_publish_health_t *health, gw_publish_t **out)
    __attribute__((warn_unused_result));
/* GW_OK when the publisher has its database connection and no zone's last
 * batch failed; otherwise an error code and the reason in why (h NULL:
 * no publisher). Any thread of any process that shares h. */
int gw_publish_health(const gw_publish_health_t *h, char *why, size_t whylen);
/* SIGHUP: hands the thread new settings for its zones (the same zones in
 * the same order as at the start: primary, TSIG key name, algorithm and
 * secret, default TTL), copied; the thread takes them before its next run.
 * GW_OK, GW_EINVAL (another number of zones) or GW_ENOMEM. */
int gw_publish_set_zones(gw_publish_t *p, const gw_zone_conf_t *zones, size_t n);
/* Wakes the thread, waits for it to finish its current batch and exit. */
void gw_publish_stop(gw_publish_t *p);

#endif
