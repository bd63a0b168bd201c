/* gw_outbox: the DNS outbox (table dns_outbox) as the gateway's C code
 * knows it.
 *
 * The rows are written by SQL, in the transaction of the change they
 * publish (ddns_apply_batch(), the admin functions, resync's re-queueing
 * below); this module owns everything the C side does with them:
 *
 *  - the channel that wakes the publishers (GW_OUTBOX_CHANNEL), its LISTEN
 *    and the statement that notifies it (gw_outbox_wake_sql, sent by the
 *    request path after its commit, and by resync in its transaction);
 *  - reading a zone's next rows, deleting published rows, recording a
 *    failed attempt, counting what is left, the per-zone publishing lock;
 *  - coalescing rows into changes (one per name and type, the newest row's)
 *    and deciding which rows a published change supersedes: pure functions
 *    over rows, unit tested without a database.
 *
 * Functions that talk to PostgreSQL are blocking (the publisher's and
 * resync's own connection) and return GW_OK or GW_EDB / GW_ENOMEM, with the
 * server's message on one line in err. */
#ifndef GW_OUTBOX_H
#define GW_OUTBOX_H

#include <stddef.h>

#include <libpq-fe.h>

#define GW_OUTBOX_CHANNEL "ddns_outbox"

/* NOTIFY that wakes every publisher listening on GW_OUTBOX_CHANNEL. */
extern const char gw_outbox_wake_sql[];
/* One row: (rows, age in seconds of the oldest row), for the operations
 * listener's readiness probe and metrics. */
extern const char gw_outbox_stats_sql[];

/* One outbox row, pointing into the result it was read from. */
typedef struct gw_outbox_row {
    long long id;           /* rows are read in id order: newer rows, higher ids */
    const char *fqdn;
    const char *rrtype;     /* "A" or "AAAA" */
    const char *address;    /* NULL: the name's records of this type go */
    int ttl;                /* 0: the zone's default */
} gw_outbox_row_t;

typedef struct gw_outbox_rows {
    PGresult *res;
    gw_outbox_row_t *row;
    size_t n;
} gw_outbox_rows_t;

/* A set of row ids, as the bigint[] parameter text the statements take. */
typedef struct gw_outbox_ids {
    char *s;
    size_t len, cap, n;
} gw_outbox_ids_t;

/* Adds id; GW_OK or GW_ENOMEM. */
int gw_outbox_ids_add(gw_outbox_ids_t *ids, long long id);
/* The array text ("{}" when empty), or NULL when out of memory. */
const char *gw_outbox_ids_text(gw_outbox_ids_t *ids);
void gw_outbox_ids_free(gw_outbox_ids_t *ids);

/* LISTEN on GW_OUTBOX_CHANNEL. */
int gw_outbox_listen(PGconn *pg, char *err, size_t errlen);
/* Takes the notifications libpq holds: 1 when there was one, 0 when not,
 * GW_EDB when the connection failed. */
int gw_outbox_take_wakeups(PGconn *pg);

/* The publishing lock of a zone (a session advisory lock: released by
 * gw_outbox_zone_unlock or with the session). *got is 1 when this session
 * holds it, 0 when another does. */
int gw_outbox_zone_lock(PGconn *pg, const char *zone, int *got, char *err, size_t errlen);
int gw_outbox_zone_unlock(PGconn *pg, const char *zone, char *err, size_t errlen);

/* Reads up to limit of the zone's rows in id order, leaving out the ids in
 * skip (may be NULL). */
int gw_outbox_read(PGconn *pg, const char *zone, gw_outbox_ids_t *skip, size_t limit,
                   gw_outbox_rows_t *out, char *err, size_t errlen);
void gw_outbox_rows_free(gw_outbox_rows_t *rows);

/* Deletes the rows ids (published, or superseded by a published row). */
int gw_outbox_delete(PGconn *pg, gw_outbox_ids_t *ids, char *err, size_t errlen);
/* Records a failed attempt on the rows ids: attempts + 1, last_error why. */
int gw_outbox_mark_failed(PGconn *pg, gw_outbox_ids_t *ids, const char *why, char *err,
                          size_t errlen);

/* Re-queues the zone's names fqdns[i] (label labels[i], type rrtypes[i];
 * three text[] literals) with the address the database holds for each (a
 * deletion for a revoked device or a name that no longer exists), in the
 * caller's transaction, and notifies the publishers at its commit. *max_id
 * is raised to the highest id queued. */
int gw_outbox_requeue(PGconn *pg, const char *zone, const char *fqdns, const char *labels,
                      const char *rrtypes, long long *max_id, char *err, size_t errlen);
/* Rows of the zone up to max_id still queued, and the newest last_error
 * among them (empty when none). */
int gw_outbox_left(PGconn *pg, const char *zone, long long max_id, long long *left,
                   char *last_error, size_t lelen, char *err, size_t errlen);

/* Coalesces the n rows (in id order) to one change per (fqdn, rrtype): the
 * newest row. On return ord[0..k) are the row numbers of the k newest rows
 * in id order, and grp[row] is the position in ord of the change that
 * supersedes (or is) the row. Returns k. */
size_t gw_outbox_coalesce(const gw_outbox_row_t *row, size_t n, size_t *ord, size_t *grp);
/* 1 when one of the first nch changes ord[] picks from row is for fqdn and
 * rrtype and comes from a row newer than id: publishing it made a row id of
 * that name and type obsolete. */
int gw_outbox_supersedes(const gw_outbox_row_t *row, const size_t *ord, size_t nch, long long id,
                         const char *fqdn, const char *rrtype);

#endif
