/* gw_db: asynchronous PostgreSQL pool on the event loop (see gw_db.h). */
#include "gw_db.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "gw_err.h"
#include "gw_log.h"

#define GW_DB_MAX_PARAMS 32
#define GW_DB_QUEUE_MAX 10000
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
    const char *sql;            /* a string literal of the caller */
    int nparams;
    char *values[GW_DB_MAX_PARAMS];
    gw_db_cb cb;                /* NULL once cancelled or timed out */
    void *arg;
    int queued;
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
    gw_db_job_t *job;
    PGresult *result;
};

struct gw_db {
    struct event_base *base;
    char *conninfo;
    struct gw_db_conn *conns;
    int n;
    struct gw_db_jobq queue;
    atomic_size_t qlen;
    unsigned int seed;
};

static void gw_conn_io_cb(evutil_socket_t fd, short what, void *arg);
static void gw_conn_start(struct gw_db_conn *c);
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

/* PQerrorMessage on one line. */
static const char *gw_pg_msg(const char *m)
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

static void gw_job_free(gw_db_job_t *job)
{
    for (int i = 0; i < job->nparams; i++)
        free(job->values[i]);
    if (job->deadline != NULL)
        event_free(job->deadline);
    free(job);
}

/* The deadline of a query passed: its caller learns now, the answer (when
 * it comes) is dropped. */
static void gw_job_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_db_job_t *job = arg;
    gw_db_cb cb = job->cb;
    (void)fd;
    (void)what;
    job->cb = NULL;
    if (cb != NULL)
        cb(job->arg, GW_ETIMEDOUT, NULL);
}

static void gw_job_finish(gw_db_job_t *job, int err, const PGresult *res)
{
    if (job->cb != NULL)
        job->cb(job->arg, err, res);
    gw_job_free(job);
}

/* Watches the connection's socket for what (re-registering when the socket
 * or the interest changed). */
static int gw_conn_watch(struct gw_db_conn *c, short what)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -1;
    if (c->ev != NULL && c->ev_fd == fd && c->ev_what == what &&
        event_pending(c->ev, EV_READ | EV_WRITE, NULL))
        return 0;
    if (c->ev != NULL) {
        event_free(c->ev);
        c->ev = NULL;
    }
    c->ev = event_new(c->db->base, fd, what, gw_conn_io_cb, c);
    if (c->ev == NULL || event_add(c->ev, NULL) != 0)
        return -1;
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
            gw_pg_msg(c->pg ? PQerrorMessage(c->pg) : NULL));
    gw_db_job_t *job = c->job;
    c->job = NULL;
    gw_conn_close(c);

    int jitter = c->backoff_ms / 4 > 0 ? (int)(rand_r(&db->seed) % (unsigned)(c->backoff_ms / 4 + 1)) : 0;
    struct timeval tv = {(c->backoff_ms + jitter) / 1000, ((c->backoff_ms + jitter) % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    c->backoff_ms = c->backoff_ms * 2 > GW_DB_BACKOFF_MAX_MS ? GW_DB_BACKOFF_MAX_MS : c->backoff_ms * 2;

    if (job != NULL)
        gw_job_finish(job, GW_EDB, NULL);
    if (gw_db_usable(db) == 0)
        gw_db_fail_queue(db, GW_EDB);
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
    const char *kw[3], *val[3];
    gw_db_conn_params(c->db->conninfo, "ddns-gateway", kw, val);
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

static void gw_conn_complete(struct gw_db_conn *c)
{
    gw_db_job_t *job = c->job;
    PGresult *res = c->result;
    int err = GW_OK;

    c->job = NULL;
    c->result = NULL;
    c->state = GW_CONN_IDLE;
    if (res == NULL) {
        err = GW_EDB;
        gw_warn("database connection %d: query returned no result", c->idx);
    } else if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        err = GW_EDB;
        gw_warn("database connection %d: query failed: %s", c->idx,
                gw_pg_msg(PQresultErrorMessage(res)));
    }
    if (job != NULL)
        gw_job_finish(job, err, err == GW_OK ? res : NULL);
    if (res != NULL)
        PQclear(res);
    if (c->state == GW_CONN_IDLE && c->pg != NULL) {
        if (PQstatus(c->pg) == CONNECTION_BAD) {
            gw_conn_fail(c, "connection lost");
            return;
        }
        if (gw_conn_watch(c, EV_READ | EV_PERSIST) != 0) {
            gw_conn_fail(c, "cannot watch socket");
            return;
        }
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
        return -1;
    }
    c->flushing = r == 1;
    if (gw_conn_watch(c, c->flushing ? EV_READ | EV_WRITE | EV_PERSIST : EV_READ | EV_PERSIST) != 0) {
        gw_conn_fail(c, "cannot watch socket");
        return -1;
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
        for (PGnotify *n; (n = PQnotifies(c->pg)) != NULL;)
            PQfreemem(n);
        return;
    case GW_CONN_BUSY:
        if ((what & EV_READ) && !PQconsumeInput(c->pg)) {
            gw_conn_fail(c, "connection lost during a query");
            return;
        }
        if (c->flushing && gw_conn_flush(c) != 0)
            return;
        gw_conn_collect(c);
        return;
    case GW_CONN_DOWN:
        return;
    }
}

static void gw_conn_send(struct gw_db_conn *c, gw_db_job_t *job)
{
    c->job = job;
    c->state = GW_CONN_BUSY;
    if (!PQsendQueryParams(c->pg, job->sql, job->nparams, NULL,
                           (const char *const *)job->values, NULL, NULL, 0)) {
        if (PQstatus(c->pg) == CONNECTION_BAD) {
            gw_conn_fail(c, "cannot send query");
            return;
        }
        gw_warn("database connection %d: cannot send query: %s", c->idx,
                gw_pg_msg(PQerrorMessage(c->pg)));
        c->job = NULL;
        c->state = GW_CONN_IDLE;
        gw_job_finish(job, GW_EDB, NULL);
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
        if (c->state != GW_CONN_IDLE)
            continue;
        gw_db_job_t *job = TAILQ_FIRST(&db->queue);
        TAILQ_REMOVE(&db->queue, job, next);
        db->qlen--;
        job->queued = 0;
        gw_conn_send(c, job);
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
    for (int i = 0; i < pool_size; i++) {
        struct gw_db_conn *c = &db->conns[i];
        c->db = db;
        c->idx = i;
        c->state = GW_CONN_DOWN;
        c->backoff_ms = GW_DB_BACKOFF_MIN_MS;
        c->timer = evtimer_new(base, gw_conn_timer_cb, c);
        if (c->timer == NULL)
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
        gw_db_job_t *job = c->job;
        c->job = NULL;
        gw_conn_close(c);
        if (c->timer != NULL)
            event_free(c->timer);
        if (job != NULL)
            gw_job_finish(job, GW_ECLOSED, NULL);
    }
    free(db->conns);
    if (db->conninfo != NULL) {
        memset(db->conninfo, 0, strlen(db->conninfo));
        free(db->conninfo);
    }
    free(db);
}

int gw_db_query(gw_db_t *db, const char *sql, int nparams, const char *const *values,
                gw_db_cb cb, void *arg, gw_db_job_t **jobp)
{
    return gw_db_query_timed(db, sql, nparams, values, 0, cb, arg, jobp);
}

int gw_db_query_timed(gw_db_t *db, const char *sql, int nparams, const char *const *values,
                      int timeout_s, gw_db_cb cb, void *arg, gw_db_job_t **jobp)
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
    job->sql = sql;
    job->cb = cb;
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
    TAILQ_INSERT_TAIL(&db->queue, job, next);
    db->qlen++;
    job->queued = 1;
    if (jobp != NULL)
        *jobp = job;
    gw_db_dispatch(db);
    return GW_OK;
}

void gw_db_cancel(gw_db_job_t *job)
{
    job->cb = NULL;
}
