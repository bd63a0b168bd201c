/* gw_metrics: the gateway's counters and histograms.
 *
 * Owns every metric the gateway counts itself and their Prometheus text
 * rendering (exposition format 0.0.4): requests by endpoint and result,
 * request latency histograms by endpoint, and event counters (connections
 * accepted and refused, PROXY headers refused, header timeouts,
 * authentication failures, rate-limited answers, DNS batches published or
 * failed). Every value is a process-wide C11 atomic added to with relaxed
 * ordering: any thread may count (the publisher thread does), and several
 * event-loop threads could later count into the same cells without locks.
 * Endpoint and result labels come from fixed lists (anything else counts
 * as "other"), so a client cannot grow the label set. Gauges owned by
 * other modules (open connections, database pool, outbox) are rendered by
 * gw_ops next to these. */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>

struct evbuffer;

enum gw_counter {
    GW_M_CONN_ACCEPTED,         /* connections counted against the limits */
    GW_M_CONN_REFUSED_TOTAL,    /* closed: max_connections reached */
    GW_M_CONN_REFUSED_SOURCE,   /* closed: max_connections_per_source reached */
    GW_M_PROXY_REFUSED,         /* closed: PROXY header missing, bad or untrusted */
    GW_M_HEADER_TIMEOUT,        /* closed: no complete request within header_timeout */
    GW_M_AUTH_FAILURES,         /* badauth answers */
    GW_M_RATELIMITED,           /* ratelimit answers */
    GW_M_PUBLISH_OK,            /* DNS batches confirmed by the primary */
    GW_M_PUBLISH_FAILED,        /* DNS batches that failed (retried later) */
    GW_M_PUBLISH_CHANGES,       /* outbox rows published */
    GW_M_TLS_RELOADS,           /* successful SIGHUP reloads */
    GW_M_TLS_RELOAD_FAILURES,   /* SIGHUP reloads refused (old settings kept) */
    GW_M_NOCHG_UNWRITTEN,       /* nochg answered without a database write */
    GW_M_SEEN_WRITTEN,          /* devices whose last seen gw_seen wrote */
    GW_M_SEEN_FAILED,           /* gw_seen batches that failed (kept for the next) */
    GW_M_QUIET_HITS,            /* nochg answered from memory after a barrier (gw_quiet) */
    GW_M_QUIET_BARRIERS,        /* barrier statements (ddns_changes_since) */
    GW_M_QUIET_DROPPED,         /* answers in memory dropped by a reported change */
    GW_M_QUIET_FLUSHES,         /* times every answer in memory was dropped */
    GW_M_NCOUNTERS
};

/* Moves the event counters (enum gw_counter) into memory shared with the
 * processes forked afterwards, so that the publisher process counts into
 * the gateway's /metrics. 0, or -1 (the counters stay this process's). */
int gw_metrics_share(void);

void gw_metrics_inc(enum gw_counter c);
void gw_metrics_add(enum gw_counter c, unsigned long n);
unsigned long long gw_metrics_get(enum gw_counter c);

/* One answered request: path (the route, or anything: unknown paths count
 * as "other"), the answer's first token, and its duration. */
void gw_metrics_request(const char *path, const char *result, double seconds);

/* Answers of the update endpoints (/v1/update and /nic/update) since the
 * start: all of them, and those whose token is neither good nor nochg
 * (what the admin API counts per minute). */
void gw_metrics_update_totals(unsigned long long *updates, unsigned long long *errors);

/* Appends every metric of this module in Prometheus text format. */
void gw_metrics_render(struct evbuffer *out);

#endif
