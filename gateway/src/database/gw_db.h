/* gw_db: the request path's PostgreSQL connection pool.
 *
 * Owns pool_size libpq connections driven entirely by the event loop
 * (PQconnectStartParams + PQconnectPoll, PQsetnonblocking,
 * PQsendQueryParams, PQflush, PQconsumeInput/PQisBusy/PQgetResult): no call
 * here ever blocks the loop. Queries wait in a FIFO while every connection
 * is busy. A broken connection fails its query (the caller answers 911) and
 * is re-opened after a backoff of 250 ms doubling to 10 s, with jitter.
 * Each query is one statement run in autocommit mode, optionally with a
 * deadline after which its caller is told GW_ETIMEDOUT. Batched statements
 * (gw_db_query_batched) that wait together go out as one statement, one
 * round trip and one transaction. Also owns the coalesced wake-up of the
 * DNS publishers after changes commit, and LISTEN on a pool of one
 * (gw_db_listen). */
#ifndef GW_DB_H
#define GW_DB_H

#include <stddef.h>

#include <event2/event.h>
#include <libpq-fe.h>

typedef struct gw_db gw_db_t;
typedef struct gw_db_job gw_db_job_t;

/* Called exactly once per query that was not cancelled, on the event loop.
 * err is GW_OK with res (valid only during the call), or GW_EDB (SQL error
 * or broken connection) / GW_ETIMEDOUT (no answer within the query's
 * deadline; the statement may still run) / GW_ECLOSED (pool freed) with res
 * NULL. */
typedef void (*gw_db_cb)(void *arg, int err, const PGresult *res);

/* The callback of a batched statement: rows row0 .. row0 + nrows - 1 of
 * res are the caller's (column 0 is its index in the batch); otherwise as
 * gw_db_cb (res NULL and nrows 0 on an error). */
typedef void (*gw_db_rows_cb)(void *arg, int err, const PGresult *res, int row0, int nrows);

gw_db_t *gw_db_new(struct event_base *base, const char *conninfo, int pool_size);
/* Most requests in one batched statement (1 to 1000; 1, the default,
 * sends each alone). */
void gw_db_set_batch_max(gw_db_t *db, int batch_max);
/* Starts connecting every connection. */
void gw_db_start(gw_db_t *db);
/* Fails every pending query with GW_ECLOSED, closes the connections. */
void gw_db_free(gw_db_t *db);

/* Queues one statement with text parameters (NULL means SQL NULL; the
 * statement and the values are copied). Returns GW_OK and, if job is not NULL, a handle valid until the
 * callback runs; GW_EDB when no connection is up or being opened; GW_EBUSY
 * when the queue is full; GW_ENOMEM. */
int gw_db_query(gw_db_t *db, const char *sql, int nparams, const char *const *values,
                gw_db_cb cb, void *arg, gw_db_job_t **job) __attribute__((warn_unused_result));
/* The same with a deadline: when no answer came within timeout_s seconds,
 * the callback runs with GW_ETIMEDOUT and the answer, if one comes later,
 * is dropped. */
int gw_db_query_timed(gw_db_t *db, const char *sql, int nparams, const char *const *values,
                      int timeout_s, gw_db_cb cb, void *arg, gw_db_job_t **job)
    __attribute__((warn_unused_result));

/* Queues one request of a batched statement. sql takes, for each of the
 * nparams parameters, an array: the values of that parameter over the
 * requests of the batch, in the order they were queued. It returns rows
 * whose first column is the request's index in those arrays (1-based);
 * the rows of one request must be adjacent. Requests queued while every
 * connection is busy go out together when one becomes free (up to the
 * batch size), so a batch grows only when the database is the bottleneck.
 * When a batch of several fails (an SQL error: its transaction changed
 * nothing), each request runs again in a batch of its own, so that only
 * the one that fails fails. The values are copied; sql is not (it must
 * live as long as the pool: requests are batched by the address of their
 * statement, so pass one static string per statement); timeout_s as in
 * gw_db_query_timed (0: none). Returns as gw_db_query. */
int gw_db_query_batched(gw_db_t *db, const char *sql, int nparams, const char *const *values,
                        int timeout_s, gw_db_rows_cb cb, void *arg)
    __attribute__((warn_unused_result));

/* Wakes the DNS publishers of every gateway (NOTIFY ddns_outbox) after a
 * statement that queued outbox rows has committed, so that those
 * transactions need not NOTIFY themselves (PostgreSQL serialises the
 * commits of notifying transactions). Coalesced: while one NOTIFY is queued
 * or running, further calls send exactly one more after it, which covers
 * every commit before it. When the pool is down nothing is sent (the
 * publishers' safety timer finds the rows). */
void gw_db_wake_publishers(gw_db_t *db);

/* A notification on the channel of gw_db_listen: its payload (""
 * when none), or NULL when the connection was lost and again once the
 * pool LISTENs on a new one: what was announced meanwhile is unknown. */
typedef void (*gw_db_notify_cb)(void *arg, const char *payload);
/* Makes a pool of one connection LISTEN on channel (an SQL identifier the
 * caller controls, at most 63 bytes) each time it opens, before any query,
 * and hands every notification on it to cb, on the event loop. Call before
 * gw_db_start. GW_OK, GW_EINVAL (a pool of more than one, called twice, or
 * a longer channel) or GW_ENOMEM. */
int gw_db_listen(gw_db_t *db, const char *channel, gw_db_notify_cb cb, void *arg)
    __attribute__((warn_unused_result));

/* The callback of job will not be called (the statement may still run). */
void gw_db_cancel(gw_db_job_t *job);

/* For a pool whose statements must not outlive their callers (the admin
 * API's): connections opened from now on run with PostgreSQL's
 * statement_timeout of seconds (the libpq "options" startup parameter,
 * before the conninfo, which may override it), and a statement whose
 * deadline (gw_db_query_timed) passes while it runs is cancelled on the
 * server (PQcancel, on the loop: one round trip). A statement the server
 * cancelled, for either reason, is reported GW_ETIMEDOUT. */
void gw_db_set_statement_timeout(gw_db_t *db, int seconds);
/* The deadline of job (gw_db_query_timed) passes now, on the next turn of
 * the loop: its callback runs with GW_ETIMEDOUT and, on a pool of
 * gw_db_set_statement_timeout, its statement is cancelled if it runs (for
 * a caller whose client went away). Nothing for a job without deadline. */
void gw_db_expire(gw_db_job_t *job);

/* Connections currently open and ready or busy. */
size_t gw_db_connected(const gw_db_t *db);

/* The pool's state for /metrics: connections by state, queries waiting. */
typedef struct gw_db_stats {
    int busy, idle, connecting, down;
    size_t queued;
    unsigned long long batches;         /* batched statements sent */
    unsigned long long batched;         /* requests they carried */
    unsigned long long batch_splits;    /* batches that failed and ran again one by one */
} gw_db_stats_t;
/* Reads atomics only: any thread may call it (the admin listener does). */
void gw_db_stats(const gw_db_t *db, gw_db_stats_t *out);

/* Builds the keyword/value arrays used to open a connection from a
 * conninfo string: application_name first (so that the string may override
 * it), then the string itself expanded as dbname. */
/* A libpq message (PQerrorMessage, PQresultErrorMessage) on one line: its
 * lines joined by "; ", without the final newline; "unknown error" for NULL
 * or an empty message. The text stays in a buffer of the calling thread
 * until its next call. For every connection of the gateway, blocking ones
 * (publisher, resync) included. */
const char *gw_db_message(const char *msg);

/* One statement on a blocking connection (the publisher's, resync's):
 * GW_OK with the result in *out (cleared when out is NULL), or GW_EDB with
 * "what: " and the server's message in err. */
int gw_db_exec(PGconn *pg, const char *what, const char *sql, int nparams,
               const char *const *values, PGresult **out, char *err, size_t errlen);

void gw_db_conn_params(const char *conninfo, const char *application_name,
                       const char *keywords[3], const char *values[3]);

#endif
