/* gw_db: asynchronous PostgreSQL pool on the event loop (see gw_db.h). */
#include "gw_db.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "gw_err.h"
#include "gw_log.h"
#include "gw_outbox.h"

#define GW_DB_MAX_PARAMS 32
#define GW_DB_QUEUE_MAX 10000
#define GW_DB_BATCH_MAX 1000
#define GW_DB_BACKOFF_MIN_MS 250
#define GW_DB_BACKOFF_MAX_MS 10000
#define GW_DB_CONNECT_TIMEOUT_S 10

enum gw_conn_state {
    GW_CONN_DOWN,       /* closed; the timer re-opens it */
    GW_CONN_CONNECTING, /* PQconnectPoll in progress */
    GW_CONN_IDLE,       /* open, no query */
    GW_CONN_BUSY,       /* one query sent or being sent */
};

struct gw_db_job {
    TAILQ_ENTRY(gw_db_job) next;
    gw_db_t *db;
    const char *sql;            /* own_sql, or a batched statement's (static) text */
    char *own_sql;              /* a plain query's copy of its text */
    int nparams;
    char *values[GW_DB_MAX_PARAMS];
    gw_db_cb cb;                /* NULL once cancelled or timed out */
    gw_db_rows_cb rcb;          /* instead of cb for a batched statement */
    void *arg;
    int queued;
    int batched;                /* sql takes arrays (gw_db_query_batched) */
    int alone;                  /* run in a batch of its own */
    struct event *deadline;     /* gw_db_query_timed, else NULL */
};
TAILQ_HEAD(gw_db_jobq, gw_db_job);

struct gw_db_conn {
    gw_db_t *db;
    int idx;
    atomic_int state;           /* enum gw_conn_state; atomic: gw_db_stats reads it */
    PGconn *pg;
    struct event *ev;           /* I/O on PQsocket */
    int ev_fd;
    short ev_what;
    struct event *timer;        /* reconnect backoff, or connect deadline */
    int backoff_ms;
    int flushing;
    struct event *cancel_done;  /* the cancel thread finished */
    pthread_t cancel_thread;
    PGcancel *cancel_pc;        /* the thread's, made on the loop */
    int cancelling;             /* a cancel thread runs: nothing new is sent */
    char cancel_err[256];       /* written by that thread, read once it ended */
    int cancel_ok;
    gw_db_job_t **jobs;         /* the statement's jobs: one, or a batch */
    int njobs;
    PGresult *result;
};

struct gw_db {
    struct event_base *base;
    char *conninfo;
    struct gw_db_conn *conns;
    int n;
    int batch_max;              /* most jobs in one batched statement */
    atomic_ullong batches, batched, batch_splits;   /* gw_db_stats */
    struct gw_db_jobq queue;
    atomic_size_t qlen;
    unsigned int seed;
    char options[64];           /* libpq "options" of new connections; "" none */
    int cancel_on_deadline;     /* gw_db_set_statement_timeout was called */
    int wake_inflight;          /* a wake-up of the publishers is queued or running */
    int wake_again;             /* changes committed since it was queued */
    char *listen_channel;       /* gw_db_listen, else NULL */
    gw_db_notify_cb listen_cb;
    void *listen_arg;
};

static void gw_conn_io_cb(evutil_socket_t fd, short what, void *arg);
static void gw_conn_start(struct gw_db_conn *c);
static int gw_db_enqueue(gw_db_t *db, const char *sql, int nparams, const char *const *values,
                         int timeout_s, gw_db_cb cb, gw_db_rows_cb rcb, void *arg,
                         gw_db_job_t **jobp, int front);
static void gw_db_dispatch(gw_db_t *db);

void gw_db_conn_params(const char *conninfo, const char *application_name,
                       const char *keywords[3], const char *values[3])
{
    keywords[0] = "application_name";
    values[0] = application_name;
    keywords[1] = "dbname";
    values[1] = conninfo;
    keywords[2] = NULL;
    values[2] = NULL;
}

const char *gw_db_message(const char *m)
{
    static _Thread_local char buf[512];
    size_t n = 0;
    if (m == NULL)
        return "unknown error";
    for (; *m && n < sizeof buf - 1; m++) {
        if (*m == '\n') {
            if (m[1] != '\0' && n + 2 < sizeof buf - 1) {
                buf[n++] = ';';
                buf[n++] = ' ';
            }
            continue;
        }
        buf[n++] = *m;
    }
    buf[n] = '\0';
    return n ? buf : "unknown error";
}

int gw_db_exec(PGconn *pg, const char *what, const char *sql, int nparams,
               const char *const *values, PGresult **out, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(pg, sql, nparams, NULL, values, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s: %s", what,
                 gw_db_message(r ? PQresultErrorMessage(r) : PQerrorMessage(pg)));
        PQclear(r);
        return GW_EDB;
    }
    if (out != NULL)
        *out = r;
    else
        PQclear(r);
    return GW_OK;
}

static void gw_job_free(gw_db_job_t *job)
{
    for (int i = 0; i < job->nparams; i++)
        free(job->values[i]);
    if (job->deadline != NULL)
        event_free(job->deadline);
    free(job->own_sql);
    free(job);
}

/* The deadline of a query passed: its caller learns now, the answer (when
 * it comes) is dropped. */
/* A thread that sends one cancel request: PQcancel blocks for a round
 * trip to the server (or a connect timeout when it is unreachable). */
static void *gw_cancel_thread(void *arg)
{
    struct gw_db_conn *c = arg;
    c->cancel_ok = PQcancel(c->cancel_pc, c->cancel_err, (int)sizeof c->cancel_err) == 1;
    event_active(c->cancel_done, EV_TIMEOUT, 1);
    return NULL;
}

static void gw_cancel_done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_db_conn *c = arg;
    (void)fd;
    (void)what;
    pthread_join(c->cancel_thread, NULL);
    PQfreeCancel(c->cancel_pc);
    c->cancel_pc = NULL;
    c->cancelling = 0;
    if (c->cancel_ok)
        gw_info("database connection %d: statement past its deadline cancelled", c->idx);
    else
        gw_warn("database connection %d: cannot cancel a statement past its deadline: %s",
                c->idx, gw_db_message(c->cancel_err));
    gw_db_dispatch(c->db);
}

/* Cancels the statement of job if a connection runs it now. A cancel is
 * for a backend, not for one statement (one that arrives while the
 * backend is idle is ignored), so that connection sends nothing more until
 * the server has taken the request. */
static void gw_job_cancel_running(gw_db_job_t *job)
{
    gw_db_t *db = job->db;
    for (int i = 0; i < db->n; i++) {
        struct gw_db_conn *c = &db->conns[i];
        if (c->state != GW_CONN_BUSY || c->njobs != 1 || c->jobs[0] != job || c->cancelling)
            continue;
        if (c->cancel_done == NULL &&
            (c->cancel_done = event_new(db->base, -1, 0, gw_cancel_done_cb, c)) == NULL)
            return;
        c->cancel_pc = PQgetCancel(c->pg);     /* needs no connection afterwards */
        if (c->cancel_pc == NULL)
            return;
        c->cancelling = 1;
        if (pthread_create(&c->cancel_thread, NULL, gw_cancel_thread, c) != 0) {
            c->cancelling = 0;
            PQfreeCancel(c->cancel_pc);
            c->cancel_pc = NULL;
            gw_warn("database connection %d: cannot start the thread that cancels a "
                    "statement past its deadline", c->idx);
        }
        return;
    }
}

static void gw_job_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_db_job_t *job = arg;
    gw_db_cb cb = job->cb;
    gw_db_rows_cb rcb = job->rcb;
    (void)fd;
    (void)what;
    if (job->db->cancel_on_deadline && (cb != NULL || rcb != NULL))
        gw_job_cancel_running(job);
    job->cb = NULL;
    job->rcb = NULL;
    if (cb != NULL)
        cb(job->arg, GW_ETIMEDOUT, NULL);
    else if (rcb != NULL)
        rcb(job->arg, GW_ETIMEDOUT, NULL, 0, 0);
}

/* Tells the caller (rows row0 .. row0 + nrows - 1 of res are its own for a
 * batched job, all of them for another) and frees the job. */
static void gw_job_finish_rows(gw_db_job_t *job, int err, const PGresult *res, int row0,
                               int nrows)
{
    if (job->cb != NULL)
        job->cb(job->arg, err, res);
    else if (job->rcb != NULL)
        job->rcb(job->arg, err, res, row0, nrows);
    gw_job_free(job);
}

static void gw_job_finish(gw_db_job_t *job, int err, const PGresult *res)
{
    gw_job_finish_rows(job, err, res, 0, res != NULL ? PQntuples(res) : 0);
}

/* Fails every job of the connection's statement. */
static void gw_conn_fail_jobs(gw_db_job_t **jobs, int njobs, int err)
{
    for (int i = 0; i < njobs; i++)
        gw_job_finish(jobs[i], err, NULL);
}

/* Watches the connection's socket for what (re-registering when the socket
 * or the interest changed). */
static int gw_conn_watch(struct gw_db_conn *c, short what)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return GW_EIO;
    if (c->ev != NULL && c->ev_fd == fd && c->ev_what == what &&
        event_pending(c->ev, EV_READ | EV_WRITE, NULL))
        return 0;
    if (c->ev != NULL) {
        event_free(c->ev);
        c->ev = NULL;
    }
    c->ev = event_new(c->db->base, fd, what, gw_conn_io_cb, c);
    if (c->ev == NULL || event_add(c->ev, NULL) != 0)
        return GW_EIO;
    c->ev_fd = fd;
    c->ev_what = what;
    return 0;
}

static size_t gw_db_usable(const gw_db_t *db)
{
    size_t k = 0;
    for (int i = 0; i < db->n; i++)
        if (db->conns[i].state != GW_CONN_DOWN)
            k++;
    return k;
}

size_t gw_db_connected(const gw_db_t *db)
{
    size_t k = 0;
    for (int i = 0; i < db->n; i++)
        if (db->conns[i].state == GW_CONN_IDLE || db->conns[i].state == GW_CONN_BUSY)
            k++;
    return k;
}

void gw_db_stats(const gw_db_t *db, gw_db_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (db == NULL)
        return;
    for (int i = 0; i < db->n; i++) {
        switch (db->conns[i].state) {
        case GW_CONN_IDLE: out->idle++; break;
        case GW_CONN_BUSY: out->busy++; break;
        case GW_CONN_CONNECTING: out->connecting++; break;
        case GW_CONN_DOWN: out->down++; break;
        }
    }
    out->queued = db->qlen;
    out->batches = db->batches;
    out->batched = db->batched;
    out->batch_splits = db->batch_splits;
}

static void gw_db_fail_queue(gw_db_t *db, int err)
{
    gw_db_job_t *job;
    while ((job = TAILQ_FIRST(&db->queue)) != NULL) {
        TAILQ_REMOVE(&db->queue, job, next);
        db->qlen--;
        job->queued = 0;
        gw_job_finish(job, err, NULL);
    }
}

static void gw_conn_close(struct gw_db_conn *c)
{
    if (c->ev != NULL) {
        event_free(c->ev);
        c->ev = NULL;
    }
    if (c->result != NULL) {
        PQclear(c->result);
        c->result = NULL;
    }
    if (c->pg != NULL) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->flushing = 0;
    c->state = GW_CONN_DOWN;
}

/* The connection broke (or could not be opened): fail its query, close it
 * and schedule a new attempt. */
static void gw_conn_fail(struct gw_db_conn *c, const char *what)
{
    gw_db_t *db = c->db;
    gw_warn("database connection %d: %s: %s", c->idx, what,
            gw_db_message(c->pg ? PQerrorMessage(c->pg) : NULL));
    int njobs = c->njobs;
    int was_open = c->state == GW_CONN_IDLE || c->state == GW_CONN_BUSY;
    c->njobs = 0;
    gw_conn_close(c);
    if (was_open && db->listen_cb != NULL)
        db->listen_cb(db->listen_arg, NULL);   /* announcements may be missed now */

    int jitter = c->backoff_ms / 4 > 0 ? (int)(rand_r(&db->seed) % (unsigned)(c->backoff_ms / 4 + 1)) : 0;
    struct timeval tv = {(c->backoff_ms + jitter) / 1000, ((c->backoff_ms + jitter) % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    c->backoff_ms = c->backoff_ms * 2 > GW_DB_BACKOFF_MAX_MS ? GW_DB_BACKOFF_MAX_MS : c->backoff_ms * 2;

    /* c->jobs stays untouched until the next send: a callback may queue */
    gw_conn_fail_jobs(c->jobs, njobs, GW_EDB);
    if (gw_db_usable(db) == 0)
        gw_db_fail_queue(db, GW_EDB);
}

/* Hands every notification that arrived to the gw_db_listen callback. */
static void gw_conn_notifies(struct gw_db_conn *c)
{
    gw_db_t *db = c->db;
    for (PGnotify *n; (n = PQnotifies(c->pg)) != NULL;) {
        if (db->listen_cb != NULL && strcmp(n->relname, db->listen_channel) == 0)
            db->listen_cb(db->listen_arg, n->extra != NULL ? n->extra : "");
        PQfreemem(n);
    }
}

static void gw_db_listening_cb(void *arg, int err, const PGresult *res)
{
    gw_db_t *db = arg;
    (void)res;
    if (err != GW_OK) {
        gw_warn("database: LISTEN %s failed; notifications are not received until the "
                "connection is re-opened", db->listen_channel);
        return;
    }
    /* from here on nothing is missed: whatever happened before is unknown */
    db->listen_cb(db->listen_arg, NULL);
}

static void gw_conn_ready(struct gw_db_conn *c)
{
    evtimer_del(c->timer);
    if (PQsetnonblocking(c->pg, 1) != 0) {
        gw_conn_fail(c, "cannot switch to non-blocking mode");
        return;
    }
    c->state = GW_CONN_IDLE;
    c->backoff_ms = GW_DB_BACKOFF_MIN_MS;
    if (gw_conn_watch(c, EV_READ | EV_PERSIST) != 0) {
        gw_conn_fail(c, "cannot watch socket");
        return;
    }
    gw_info("database connection %d ready", c->idx);
    if (c->db->listen_channel != NULL) {
        char sql[96];   /* the channel is an identifier: at most 63 bytes */
        snprintf(sql, sizeof sql, "LISTEN %s", c->db->listen_channel);
        if (gw_db_enqueue(c->db, sql, 0, NULL, 0, gw_db_listening_cb, NULL, c->db, NULL, 1) !=
            GW_OK)
            gw_warn("database: cannot queue LISTEN %s", c->db->listen_channel);
    }
    gw_db_dispatch(c->db);
}

static void gw_conn_connect_step(struct gw_db_conn *c, PostgresPollingStatusType r)
{
    switch (r) {
    case PGRES_POLLING_READING:
        if (gw_conn_watch(c, EV_READ) != 0)
            gw_conn_fail(c, "cannot watch socket");
        return;
    case PGRES_POLLING_WRITING:
        if (gw_conn_watch(c, EV_WRITE) != 0)
            gw_conn_fail(c, "cannot watch socket");
        return;
    case PGRES_POLLING_OK:
        gw_conn_ready(c);
        return;
    default:
        gw_conn_fail(c, "cannot connect");
        return;
    }
}

static void gw_conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_db_conn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == GW_CONN_DOWN)
        gw_conn_start(c);
    else if (c->state == GW_CONN_CONNECTING)
        gw_conn_fail(c, "connection attempt timed out");
}

static void gw_conn_start(struct gw_db_conn *c)
{
    const char *kw[4], *val[4];
    gw_db_conn_params(c->db->conninfo, "ddns-gateway", kw, val);
    if (c->db->options[0] != '\0') {
        /* before the conninfo (kw[1]), which may override it */
        kw[3] = NULL;
        val[3] = NULL;
        kw[2] = kw[1];
        val[2] = val[1];
        kw[1] = "options";
        val[1] = c->db->options;
    }
    c->pg = PQconnectStartParams(kw, val, 1);
    c->state = GW_CONN_CONNECTING;
    if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        gw_conn_fail(c, "cannot start connection");
        return;
    }
    struct timeval tv = {GW_DB_CONNECT_TIMEOUT_S, 0};
    evtimer_add(c->timer, &tv);
    /* As documented for PQconnectStart: first wait until writable. */
    gw_conn_connect_step(c, PGRES_POLLING_WRITING);
}

/* A failed batch of several jobs: each runs again in a batch of its own,
 * first in the queue and in the same order, so that one request that fails
 * fails alone. */
static void gw_conn_split_batch(struct gw_db_conn *c)
{
    gw_db_t *db = c->db;
    db->batch_splits++;
    for (int i = c->njobs - 1; i >= 0; i--) {
        gw_db_job_t *job = c->jobs[i];
        if (job->cb == NULL && job->rcb == NULL) {
            gw_job_free(job);       /* cancelled or timed out */
            continue;
        }
        job->alone = 1;
        job->queued = 1;
        TAILQ_INSERT_HEAD(&db->queue, job, next);
        db->qlen++;
    }
    c->njobs = 0;
}

/* Hands each job of a batch its rows: the first column is the job's index
 * in the batch (1-based), the rows of one job are adjacent. A job the
 * answer has no rows for gets GW_EDB. */
static void gw_conn_deal_rows(struct gw_db_conn *c, const PGresult *res)
{
    int rows = PQntuples(res);
    for (int r = 0; r < rows;) {
        long item = PQgetisnull(res, r, 0) ? 0 : strtol(PQgetvalue(res, r, 0), NULL, 10);
        int n = 1;
        while (r + n < rows && strcmp(PQgetvalue(res, r + n, 0), PQgetvalue(res, r, 0)) == 0)
            n++;
        if (item < 1 || item > c->njobs || c->jobs[item - 1] == NULL) {
            gw_warn("database connection %d: batch answer with an unexpected item in row %d",
                    c->idx, r);
        } else {
            gw_job_finish_rows(c->jobs[item - 1], GW_OK, res, r, n);
            c->jobs[item - 1] = NULL;
        }
        r += n;
    }
    for (int i = 0; i < c->njobs; i++)
        if (c->jobs[i] != NULL) {
            gw_warn("database connection %d: batch answer without rows for item %d", c->idx,
                    i + 1);
            gw_job_finish(c->jobs[i], GW_EDB, NULL);
        }
}

static void gw_conn_complete(struct gw_db_conn *c)
{
    PGresult *res = c->result;
    int err = GW_OK;

    c->result = NULL;
    if (res == NULL) {
        err = GW_EDB;
        gw_warn("database connection %d: query returned no result", c->idx);
    } else if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        /* query_canceled: statement_timeout, or a cancel past the deadline */
        err = c->db->cancel_on_deadline && state != NULL && strcmp(state, "57014") == 0
                  ? GW_ETIMEDOUT : GW_EDB;
        gw_warn("database connection %d: %s failed: %s", c->idx,
                c->njobs > 1 ? "batch" : "query", gw_db_message(PQresultErrorMessage(res)));
    }
    /* The connection stays busy while the callbacks run: what they queue
     * is dispatched below. */
    if (err != GW_OK && c->njobs > 1)
        gw_conn_split_batch(c);
    else if (err == GW_OK && c->njobs > 0 && c->jobs[0]->batched)
        gw_conn_deal_rows(c, res);
    else
        for (int i = 0; i < c->njobs; i++)
            gw_job_finish(c->jobs[i], err, err == GW_OK ? res : NULL);
    c->njobs = 0;
    c->state = GW_CONN_IDLE;
    if (res != NULL)
        PQclear(res);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        gw_conn_fail(c, "connection lost");
        return;
    }
    if (gw_conn_watch(c, EV_READ | EV_PERSIST) != 0) {
        gw_conn_fail(c, "cannot watch socket");
        return;
    }
    gw_db_dispatch(c->db);
}

/* Reads every result that is complete; completes the job when the last one
 * (NULL) arrived. */
static void gw_conn_collect(struct gw_db_conn *c)
{
    while (!PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (res == NULL) {
            gw_conn_complete(c);
            return;
        }
        if (c->result == NULL)
            c->result = res;
        else
            PQclear(res);
    }
}

static int gw_conn_flush(struct gw_db_conn *c)
{
    int r = PQflush(c->pg);
    if (r < 0) {
        gw_conn_fail(c, "cannot send query");
        return GW_EIO;
    }
    c->flushing = r == 1;
    if (gw_conn_watch(c, c->flushing ? EV_READ | EV_WRITE | EV_PERSIST : EV_READ | EV_PERSIST) != 0) {
        gw_conn_fail(c, "cannot watch socket");
        return GW_EIO;
    }
    return 0;
}

static void gw_conn_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_db_conn *c = arg;
    (void)fd;

    switch (c->state) {
    case GW_CONN_CONNECTING:
        gw_conn_connect_step(c, PQconnectPoll(c->pg));
        return;
    case GW_CONN_IDLE:
        /* Nothing is expected: either a notice or the server closing. */
        if (!PQconsumeInput(c->pg) || PQstatus(c->pg) == CONNECTION_BAD) {
            gw_conn_fail(c, "connection lost while idle");
            return;
        }
        gw_conn_notifies(c);
        return;
    case GW_CONN_BUSY:
        if ((what & EV_READ) && !PQconsumeInput(c->pg)) {
            gw_conn_fail(c, "connection lost during a query");
            return;
        }
        if (c->flushing && gw_conn_flush(c) != 0)
            return;
        gw_conn_notifies(c);
        gw_conn_collect(c);
        return;
    case GW_CONN_DOWN:
        return;
    }
}

/* The array literal of parameter p over the jobs of a batch, every
 * element quoted ({"a","b\"c",NULL}); NULL when out of memory. */
static char *gw_db_array_literal(gw_db_job_t *const *jobs, int njobs, int p)
{
    size_t len = 3;
    for (int i = 0; i < njobs; i++)
        len += jobs[i]->values[p] != NULL ? 2 * strlen(jobs[i]->values[p]) + 3 : 5;
    char *out = malloc(len), *o = out;
    if (out == NULL)
        return NULL;
    *o++ = '{';
    for (int i = 0; i < njobs; i++) {
        const char *v = jobs[i]->values[p];
        if (i > 0)
            *o++ = ',';
        if (v == NULL) {
            memcpy(o, "NULL", 4);
            o += 4;
            continue;
        }
        *o++ = '"';
        for (; *v; v++) {
            if (*v == '"' || *v == '\\')
                *o++ = '\\';
            *o++ = *v;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
    return out;
}

/* Sends the statement of c->jobs: the query of a single job, or the batched
 * statement with each parameter's array over the jobs. */
static int gw_conn_send_statement(struct gw_db_conn *c)
{
    gw_db_job_t *job = c->jobs[0];
    if (!job->batched)
        return PQsendQueryParams(c->pg, job->sql, job->nparams, NULL,
                                 (const char *const *)job->values, NULL, NULL, 0);
    char *arrays[GW_DB_MAX_PARAMS] = {NULL};
    int ok = 0;
    for (int p = 0; p < job->nparams; p++)
        if ((arrays[p] = gw_db_array_literal(c->jobs, c->njobs, p)) == NULL)
            goto out;
    ok = PQsendQueryParams(c->pg, job->sql, job->nparams, NULL, (const char *const *)arrays,
                           NULL, NULL, 0);
    if (ok) {
        c->db->batches++;
        c->db->batched += (unsigned long long)c->njobs;
    }
out:
    for (int p = 0; p < job->nparams; p++)
        free(arrays[p]);
    return ok;
}

static void gw_conn_send(struct gw_db_conn *c)
{
    c->state = GW_CONN_BUSY;
    if (!gw_conn_send_statement(c)) {
        if (PQstatus(c->pg) == CONNECTION_BAD) {
            gw_conn_fail(c, "cannot send query");
            return;
        }
        gw_warn("database connection %d: cannot send query: %s", c->idx,
                gw_db_message(PQerrorMessage(c->pg)));
        /* busy while the callbacks run (what they queue is dispatched
         * by the caller) */
        gw_conn_fail_jobs(c->jobs, c->njobs, GW_EDB);
        c->njobs = 0;
        c->state = GW_CONN_IDLE;
        return;
    }
    if (gw_conn_flush(c) != 0)
        return;
    /* The answer may already be there. */
    if (!c->flushing && PQconsumeInput(c->pg))
        gw_conn_collect(c);
}

static void gw_db_dispatch(gw_db_t *db)
{
    for (int i = 0; i < db->n && !TAILQ_EMPTY(&db->queue); i++) {
        struct gw_db_conn *c = &db->conns[i];
        if (c->state != GW_CONN_IDLE || c->cancelling)
            continue;
        gw_db_job_t *job = TAILQ_FIRST(&db->queue);
        TAILQ_REMOVE(&db->queue, job, next);
        db->qlen--;
        job->queued = 0;
        c->jobs[0] = job;
        c->njobs = 1;
        /* a batched statement takes every waiting job of the same statement */
        for (gw_db_job_t *j = TAILQ_FIRST(&db->queue), *nx;
             j != NULL && job->batched && !job->alone && c->njobs < db->batch_max; j = nx) {
            nx = TAILQ_NEXT(j, next);
            if (!j->batched || j->alone || j->sql != job->sql || j->nparams != job->nparams)
                continue;
            TAILQ_REMOVE(&db->queue, j, next);
            db->qlen--;
            j->queued = 0;
            c->jobs[c->njobs++] = j;
        }
        gw_conn_send(c);
        i = -1; /* the callback may have changed any state: scan again */
    }
}

gw_db_t *gw_db_new(struct event_base *base, const char *conninfo, int pool_size)
{
    gw_db_t *db = calloc(1, sizeof *db);
    if (db == NULL)
        goto fail;
    db->base = base;
    TAILQ_INIT(&db->queue);
    db->seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)db;
    db->conninfo = strdup(conninfo);
    db->conns = calloc((size_t)pool_size, sizeof *db->conns);
    if (db->conninfo == NULL || db->conns == NULL)
        goto fail;
    db->n = pool_size;
    db->batch_max = 1;
    for (int i = 0; i < pool_size; i++) {
        struct gw_db_conn *c = &db->conns[i];
        c->db = db;
        c->idx = i;
        c->state = GW_CONN_DOWN;
        c->backoff_ms = GW_DB_BACKOFF_MIN_MS;
        c->timer = evtimer_new(base, gw_conn_timer_cb, c);
        c->jobs = calloc(GW_DB_BATCH_MAX, sizeof *c->jobs);
        if (c->timer == NULL || c->jobs == NULL)
            goto fail;
    }
    return db;
fail:
    gw_db_free(db);
    return NULL;
}

void gw_db_start(gw_db_t *db)
{
    for (int i = 0; i < db->n; i++)
        if (db->conns[i].state == GW_CONN_DOWN)
            gw_conn_start(&db->conns[i]);
}

void gw_db_free(gw_db_t *db)
{
    if (db == NULL)
        return;
    gw_db_fail_queue(db, GW_ECLOSED);
    for (int i = 0; db->conns != NULL && i < db->n; i++) {
        struct gw_db_conn *c = &db->conns[i];
        int njobs = c->njobs;
        c->njobs = 0;
        if (c->cancelling) {
            pthread_join(c->cancel_thread, NULL);   /* it writes to c */
            PQfreeCancel(c->cancel_pc);
        }
        if (c->cancel_done != NULL)
            event_free(c->cancel_done);
        gw_conn_close(c);
        if (c->timer != NULL)
            event_free(c->timer);
        gw_conn_fail_jobs(c->jobs, njobs, GW_ECLOSED);
        free(c->jobs);
    }
    free(db->conns);
    free(db->listen_channel);
    if (db->conninfo != NULL) {
        memset(db->conninfo, 0, strlen(db->conninfo));
        free(db->conninfo);
    }
    free(db);
}

static void gw_db_wake_cb(void *arg, int err, const PGresult *res)
{
    gw_db_t *db = arg;
    (void)res;
    if (err == GW_ECLOSED)
        return;     /* the pool is being freed */
    db->wake_inflight = 0;
    if (db->wake_again) {
        db->wake_again = 0;
        gw_db_wake_publishers(db);
    }
}

void gw_db_wake_publishers(gw_db_t *db)
{
    if (db->wake_inflight) {
        db->wake_again = 1;
        return;
    }
    /* Set first: the answer may come (and the callback run) before
     * gw_db_query returns. Without a connection nothing is sent: the
     * publishers' own timer finds the rows. */
    db->wake_inflight = 1;
    if (gw_db_query(db, gw_outbox_wake_sql, 0, NULL, gw_db_wake_cb, db, NULL) != GW_OK)
        db->wake_inflight = 0;
}

int gw_db_query(gw_db_t *db, const char *sql, int nparams, const char *const *values,
                gw_db_cb cb, void *arg, gw_db_job_t **jobp)
{
    return gw_db_query_timed(db, sql, nparams, values, 0, cb, arg, jobp);
}

void gw_db_set_batch_max(gw_db_t *db, int batch_max)
{
    db->batch_max = batch_max < 1 ? 1 : batch_max > GW_DB_BATCH_MAX ? GW_DB_BATCH_MAX : batch_max;
}

/* Queues a job: cb for a plain statement, rcb for a batched one. */
static int gw_db_enqueue(gw_db_t *db, const char *sql, int nparams, const char *const *values,
                         int timeout_s, gw_db_cb cb, gw_db_rows_cb rcb, void *arg,
                         gw_db_job_t **jobp, int front)
{
    if (nparams < 0 || nparams > GW_DB_MAX_PARAMS)
        return GW_EINVAL;
    if (gw_db_usable(db) == 0)
        return GW_EDB;
    if (db->qlen >= GW_DB_QUEUE_MAX)
        return GW_EBUSY;
    gw_db_job_t *job = calloc(1, sizeof *job);
    if (job == NULL)
        return GW_ENOMEM;
    /* A plain query may wait in the queue after its caller's text is gone;
     * a batched statement's text is static and compared by address. */
    job->sql = rcb != NULL ? sql : (job->own_sql = strdup(sql));
    if (job->sql == NULL) {
        free(job);
        return GW_ENOMEM;
    }
    job->db = db;
    job->cb = cb;
    job->rcb = rcb;
    job->batched = rcb != NULL;
    job->arg = arg;
    for (int i = 0; i < nparams; i++, job->nparams++) {
        if (values[i] == NULL)
            continue;
        job->values[i] = strdup(values[i]);
        if (job->values[i] == NULL) {
            job->nparams++;
            gw_job_free(job);
            return GW_ENOMEM;
        }
    }
    if (timeout_s > 0) {
        struct timeval tv = {timeout_s, 0};
        job->deadline = evtimer_new(db->base, gw_job_deadline_cb, job);
        if (job->deadline == NULL || evtimer_add(job->deadline, &tv) != 0) {
            gw_job_free(job);
            return GW_ENOMEM;
        }
    }
    if (front)
        TAILQ_INSERT_HEAD(&db->queue, job, next);
    else
        TAILQ_INSERT_TAIL(&db->queue, job, next);
    db->qlen++;
    job->queued = 1;
    if (jobp != NULL)
        *jobp = job;
    gw_db_dispatch(db);
    return GW_OK;
}

int gw_db_query_timed(gw_db_t *db, const char *sql, int nparams, const char *const *values,
                      int timeout_s, gw_db_cb cb, void *arg, gw_db_job_t **jobp)
{
    return gw_db_enqueue(db, sql, nparams, values, timeout_s, cb, NULL, arg, jobp, 0);
}

int gw_db_query_batched(gw_db_t *db, const char *sql, int nparams, const char *const *values,
                        int timeout_s, gw_db_rows_cb cb, void *arg)
{
    return gw_db_enqueue(db, sql, nparams, values, timeout_s, NULL, cb, arg, NULL, 0);
}

int gw_db_listen(gw_db_t *db, const char *channel, gw_db_notify_cb cb, void *arg)
{
    if (db->n != 1 || cb == NULL || db->listen_channel != NULL || strlen(channel) > 63)
        return GW_EINVAL;
    if ((db->listen_channel = strdup(channel)) == NULL)
        return GW_ENOMEM;
    db->listen_cb = cb;
    db->listen_arg = arg;
    return GW_OK;
}

void gw_db_set_statement_timeout(gw_db_t *db, int seconds)
{
    snprintf(db->options, sizeof db->options, "-c statement_timeout=%ds", seconds);
    db->cancel_on_deadline = 1;
}

void gw_db_expire(gw_db_job_t *job)
{
    if (job->deadline != NULL && (job->cb != NULL || job->rcb != NULL))
        event_active(job->deadline, EV_TIMEOUT, 1);
}

void gw_db_cancel(gw_db_job_t *job)
{
    job->cb = NULL;
    job->rcb = NULL;
}
