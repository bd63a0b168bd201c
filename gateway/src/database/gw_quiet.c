/* gw_quiet: the poll that changes nothing, answered from memory (see
 * gw_quiet.h). */
#include "gw_quiet.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "cmn_text.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_metrics.h"

#define GW_QUIET_PROBES 8           /* slots a device may take */
#define GW_QUIET_MAX_ROWS 1000      /* names of one answer kept */
#define GW_QUIET_TIMEOUT 5          /* seconds a barrier may take */
#define GW_QUIET_PRUNE_TICKS 60     /* ticks (s) between two prunes */
#define GW_QUIET_WORKERS 64         /* workers that can be woken */

static const char gw_quiet_sql[] = "SELECT ddns_changes_since($1::pg_snapshot)";
static const char gw_quiet_prune_sql[] = "SELECT ddns_changes_prune('5 minutes')";

typedef struct gw_quiet_slot {
    char device[13];                /* "": never taken */
    uint8_t valid;                  /* an answer is kept */
    uint8_t dyn;
    uint16_t nrows;
    uint32_t gen;                   /* raised each time the slot changes device */
    uint32_t shape_len;
    uint64_t stamp;                 /* changes below it are in the answer */
    uint64_t changed;               /* largest change reported since the slot was taken */
    int64_t min_ts;
    unsigned char *shape;
} gw_quiet_slot_t;

/* Everything below is guarded by mu. */
static struct {
    pthread_mutex_t mu;
    gw_quiet_slot_t *slot;
    size_t cap;                     /* a power of two; 0: off */
    size_t valid;                   /* slots with an answer */
    uint64_t latest;                /* xmin of the newest barrier snapshot; 0: none yet */
    uint64_t flushes;
    /* the sequence of barriers */
    char *since;                    /* the previous barrier's snapshot; NULL: none */
    int running;                    /* a barrier runs (on runner's pool) */
    int sent;                       /* ... and its statement was sent */
    gw_quiet_t *runner;
    int more;                       /* requests wait for a barrier after the running one */
    uint64_t started, done;         /* numbers of the last barrier started and completed */
    uint64_t last_tick_done;        /* done at the keeper's previous second */
    int64_t db_now;                 /* the database's clock at the last completed one */
    int done_ok;                    /* ... and it read the change log */
    gw_quiet_t *workers[GW_QUIET_WORKERS];
} gw_q = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct gw_quiet {
    struct event_base *base;
    gw_db_t *db;
    int keeper, ticks;
    gw_db_job_t *job;               /* the barrier this worker runs */
    gw_db_job_t *prune_job;         /* the pruning in flight */
    gw_quiet_wait_t *head, **tail;  /* this worker's waiting requests, oldest first */
    struct event *wake;             /* a barrier completed (from any thread) */
    struct event *kick;             /* sends the barrier this worker claimed */
    struct event *tick;             /* keeper: every second */
};

int gw_quiet_init(size_t capacity)
{
    if (gw_q.slot != NULL)
        return GW_EINVAL;
    if (capacity == 0)
        return GW_OK;
    size_t cap = GW_QUIET_PROBES;
    while (cap < capacity)
        cap *= 2;
    gw_q.slot = calloc(cap, sizeof *gw_q.slot);
    if (gw_q.slot == NULL)
        return GW_ENOMEM;
    gw_q.cap = cap;
    gw_q.valid = 0;
    gw_q.latest = 0;
    return GW_OK;
}

void gw_quiet_shutdown(void)
{
    pthread_mutex_lock(&gw_q.mu);
    for (size_t i = 0; i < gw_q.cap; i++)
        free(gw_q.slot[i].shape);
    free(gw_q.slot);
    gw_q.slot = NULL;
    gw_q.cap = 0;
    gw_q.valid = 0;
    free(gw_q.since);
    gw_q.since = NULL;
    gw_q.latest = 0;
    gw_q.running = 0;
    gw_q.runner = NULL;
    pthread_mutex_unlock(&gw_q.mu);
}

size_t gw_quiet_entries(void)
{
    pthread_mutex_lock(&gw_q.mu);
    size_t n = gw_q.valid;
    pthread_mutex_unlock(&gw_q.mu);
    return n;
}

static void gw_quiet_drop(gw_quiet_slot_t *s)
{
    if (s->valid) {
        s->valid = 0;
        gw_q.valid--;
    }
}

/* The slot of device; with take, one is given to it (an empty one of its
 * probes, else the first probe's, whose device loses its answer). NULL
 * when the table is off or, without take, device has none. Under the
 * mutex. */
static gw_quiet_slot_t *gw_quiet_find(const char *device, int take)
{
    if (gw_q.cap == 0 || strlen(device) >= sizeof gw_q.slot[0].device)
        return NULL;
    uint64_t x = cmn_hash(device);
    size_t h = (size_t)(x ^ (x >> 29)), empty = SIZE_MAX;
    for (size_t p = 0; p < GW_QUIET_PROBES; p++) {
        size_t i = (h + p) & (gw_q.cap - 1);
        if (strcmp(gw_q.slot[i].device, device) == 0)
            return &gw_q.slot[i];
        if (empty == SIZE_MAX && gw_q.slot[i].device[0] == '\0')
            empty = i;
    }
    if (!take)
        return NULL;
    gw_quiet_slot_t *s = &gw_q.slot[empty != SIZE_MAX ? empty : h & (gw_q.cap - 1)];
    gw_quiet_drop(s);
    memcpy(s->device, device, strlen(device) + 1);
    s->gen++;
    s->changed = 0;
    s->stamp = 0;
    return s;
}

/* The answer of s is the one for k. Under the mutex. */
static int gw_quiet_matches(const gw_quiet_slot_t *s, const gw_quiet_key_t *k)
{
    return s != NULL && s->valid && s->dyn == (k->dyn != 0) && s->shape_len == k->shape_len &&
           memcmp(s->shape, k->shape, k->shape_len) == 0 && (k->dyn || k->ts >= s->min_ts);
}

int gw_quiet_candidate(const gw_quiet_key_t *k)
{
    pthread_mutex_lock(&gw_q.mu);
    int hit = gw_quiet_matches(gw_quiet_find(k->device, 0), k);
    pthread_mutex_unlock(&gw_q.mu);
    return hit;
}

void gw_quiet_ticket(const gw_quiet_key_t *k, gw_quiet_ticket_t *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_lock(&gw_q.mu);
    gw_quiet_slot_t *s = gw_quiet_find(k->device, 1);
    if (s != NULL && gw_q.latest != 0) {
        t->slot = (uint32_t)(s - gw_q.slot);
        t->gen = s->gen;
        t->stamp = gw_q.latest;
        t->flushes = gw_q.flushes;
        t->ok = 1;
    }
    pthread_mutex_unlock(&gw_q.mu);
}

void gw_quiet_learn(const gw_quiet_ticket_t *t, const gw_quiet_key_t *k, unsigned nrows)
{
    if (!t->ok || nrows == 0 || nrows > GW_QUIET_MAX_ROWS || k->shape_len > UINT32_MAX)
        return;
    pthread_mutex_lock(&gw_q.mu);
    gw_quiet_slot_t *s = t->slot < gw_q.cap ? &gw_q.slot[t->slot] : NULL;
    /* the slot still the device's, nothing dropped everything, and no
     * change of the device reported that the answer may not have seen */
    if (s != NULL && s->gen == t->gen && gw_q.flushes == t->flushes && s->changed < t->stamp) {
        if (s->shape_len != k->shape_len) {
            unsigned char *p = realloc(s->shape, k->shape_len ? k->shape_len : 1);
            if (p == NULL) {
                gw_quiet_drop(s);
                goto out;
            }
            s->shape = p;
        }
        memcpy(s->shape, k->shape, k->shape_len);
        s->shape_len = (uint32_t)k->shape_len;
        s->dyn = k->dyn != 0;
        s->min_ts = k->ts;
        s->nrows = (uint16_t)nrows;
        s->stamp = t->stamp;
        if (!s->valid) {
            s->valid = 1;
            gw_q.valid++;
        }
    }
out:
    pthread_mutex_unlock(&gw_q.mu);
}

/* Drops every answer; tickets taken before are refused. Under the mutex. */
static void gw_quiet_flush(void)
{
    for (size_t i = 0; i < gw_q.cap && gw_q.valid > 0; i++)
        if (gw_q.slot[i].valid) {
            gw_q.slot[i].valid = 0;
            gw_q.valid--;
        }
    gw_q.flushes++;
    gw_metrics_inc(GW_M_QUIET_FLUSHES);
}

/* A device id as the change log holds it: 12 lowercase hex digits. */
static int gw_quiet_device_ok(const char *d)
{
    size_t n = strspn(d, "0123456789abcdef");
    return n == 12 && d[n] == '\0';
}

/* A decimal transaction id; UINT64_MAX when the text is not one. */
static uint64_t gw_quiet_xid(const char *t)
{
    if (t == NULL || t[0] == '\0' || strspn(t, "0123456789") != strlen(t) || strlen(t) > 19)
        return UINT64_MAX;
    return strtoull(t, NULL, 10);
}

/* Applies a barrier's answer (see ddns_changes_since()): drops what it
 * reports and keeps its snapshot for the next. GW_OK; GW_EDB for an
 * answer of another form (every answer is dropped: what changed is
 * unknown); GW_ENOMEM. Under the mutex. */
static int gw_quiet_apply(const char *line)
{
    char *copy = strdup(line), *save = NULL;
    if (copy == NULL)
        return GW_ENOMEM;
    const char *snap = strtok_r(copy, " ", &save);
    const char *now = strtok_r(NULL, " ", &save);
    const char *complete = strtok_r(NULL, " ", &save);
    char *end = NULL;
    uint64_t xmin = snap ? strtoull(snap, &end, 10) : 0;
    if (snap == NULL || now == NULL || complete == NULL || end == snap || *end != ':' ||
        strspn(now, "0123456789") != strlen(now) ||
        (strcmp(complete, "t") != 0 && strcmp(complete, "f") != 0)) {
        free(copy);
        gw_quiet_flush();
        gw_error("ddns_changes_since returned an answer of another form: '%.80s'", line);
        return GW_EDB;
    }
    char *since = strdup(snap);
    if (since == NULL) {
        free(copy);
        return GW_ENOMEM;
    }
    if (complete[0] == 'f')
        gw_quiet_flush();
    const char *device;
    int rc = GW_OK;
    while ((device = strtok_r(NULL, " ", &save)) != NULL) {
        uint64_t x = gw_quiet_xid(strtok_r(NULL, " ", &save));
        if (x == UINT64_MAX || (strcmp(device, "*") != 0 && !gw_quiet_device_ok(device))) {
            gw_quiet_flush();
            gw_error("ddns_changes_since returned a change of another form: device '%.20s'",
                     device);
            rc = GW_EDB;
            break;
        }
        if (device[0] == '*') {     /* a provisioning batch: every device */
            gw_quiet_flush();
            continue;
        }
        gw_quiet_slot_t *s = gw_quiet_find(device, 0);
        if (s == NULL)
            continue;
        if (x > s->changed)
            s->changed = x;
        if (s->valid && s->stamp <= x) {
            gw_quiet_drop(s);
            gw_metrics_inc(GW_M_QUIET_DROPPED);
        }
    }
    if (rc != GW_OK) {
        free(since);
        free(copy);
        return rc;
    }
    if (xmin > gw_q.latest)
        gw_q.latest = xmin;
    gw_q.db_now = strtoll(now, NULL, 10);
    free(gw_q.since);
    gw_q.since = since;
    free(copy);
    return GW_OK;
}

int gw_quiet_changes(const char *line)
{
    pthread_mutex_lock(&gw_q.mu);
    int rc = gw_quiet_apply(line);
    pthread_mutex_unlock(&gw_q.mu);
    return rc;
}

static void gw_quiet_done(void *arg, int err, const PGresult *res);
static void gw_quiet_answer(gw_quiet_t *q);

/* Wakes every worker but q that has requests waiting, to answer what the
 * last barrier covered. Under the mutex. */
static void gw_quiet_wake_others(const gw_quiet_t *q)
{
    for (int i = 0; i < GW_QUIET_WORKERS; i++)
        if (gw_q.workers[i] != NULL && gw_q.workers[i] != q && gw_q.workers[i]->head != NULL)
            event_active(gw_q.workers[i]->wake, EV_READ, 0);
}

/* The running barrier ended without reading anything: the requests it
 * covered are answered by the database. The answers kept stay: the next
 * barrier reads from the same snapshot and drops what changed before any
 * request is answered from memory again (so that a database that cannot
 * be reached costs no walk over the table per request). Under the mutex. */
static void gw_quiet_abandon(const gw_quiet_t *q)
{
    gw_q.done_ok = 0;
    gw_q.running = 0;
    gw_q.runner = NULL;
    gw_q.done = gw_q.started;
    gw_quiet_wake_others(q);
}

/* Makes q the runner of the next barrier, sent at the end of the current
 * turn of q's loop (gw_quiet_kick): the requests whose bytes arrived in
 * the same turn wait for it too, instead of the one after. Under the
 * mutex, with none running, on q's thread. */
static void gw_quiet_claim(gw_quiet_t *q)
{
    gw_q.running = 1;
    gw_q.sent = 0;
    gw_q.runner = q;
    event_active(q->kick, EV_TIMEOUT, 0);
}

/* Sends the barrier q claimed: it covers every request waiting now (the
 * snapshot it reads is taken after they arrived). */
static void gw_quiet_send(gw_quiet_t *q)
{
    pthread_mutex_lock(&gw_q.mu);
    gw_q.started++;
    gw_q.sent = 1;
    gw_q.more = 0;
    char *since = gw_q.since != NULL ? strdup(gw_q.since) : NULL;
    int rc = gw_q.since != NULL && since == NULL ? GW_ENOMEM : GW_OK;
    pthread_mutex_unlock(&gw_q.mu);
    const char *params[1] = {since};
    if (rc == GW_OK)
        rc = gw_db_query_timed(q->db, gw_quiet_sql, 1, params, GW_QUIET_TIMEOUT, gw_quiet_done,
                               q, &q->job);
    free(since);
    if (rc == GW_OK)
        return;
    q->job = NULL;
    pthread_mutex_lock(&gw_q.mu);
    gw_quiet_abandon(q);
    pthread_mutex_unlock(&gw_q.mu);
    gw_quiet_answer(q);
}

/* Answers this worker's requests that a completed barrier covers: from
 * memory when their entry survived it and the timestamp is not ahead of
 * the database's clock by more than 1 s (as ddns_apply_batch() would),
 * else nrows 0; and starts a barrier for the rest if none runs. */
static void gw_quiet_answer(gw_quiet_t *q)
{
    gw_quiet_wait_t *ready = NULL, **rtail = &ready;
    pthread_mutex_lock(&gw_q.mu);
    while (q->head != NULL && q->head->after < gw_q.done) {
        gw_quiet_wait_t *w = q->head;
        q->head = w->next;
        if (q->head == NULL)
            q->tail = &q->head;
        const gw_quiet_slot_t *s = gw_quiet_find(w->key.device, 0);
        w->nrows = gw_q.done_ok && gw_quiet_matches(s, &w->key) &&
                           (w->key.dyn || w->key.ts <= gw_q.db_now + 1)
                       ? s->nrows : 0;
        w->next = NULL;
        *rtail = w;
        rtail = &w->next;
    }
    if (q->head != NULL && !gw_q.running)
        gw_quiet_claim(q);
    pthread_mutex_unlock(&gw_q.mu);
    while (ready != NULL) {
        gw_quiet_wait_t *w = ready;
        ready = w->next;
        w->done(w, GW_OK, w->nrows);   /* may free w */
    }
}

static void gw_quiet_done(void *arg, int err, const PGresult *res)
{
    gw_quiet_t *q = arg;
    q->job = NULL;
    gw_metrics_inc(GW_M_QUIET_BARRIERS);
    if (err == GW_OK && (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
                         PQnfields(res) != 1 || PQgetisnull(res, 0, 0)))
        err = GW_EDB;
    pthread_mutex_lock(&gw_q.mu);
    if (err == GW_OK)
        err = gw_quiet_apply(PQgetvalue(res, 0, 0));
    if (err != GW_OK) {
        /* the next barrier reads from the same snapshot again */
        gw_warn("quiet cache: barrier failed (%s): polls read the database",
                gw_strerror(err));
        gw_quiet_abandon(q);
    } else {
        gw_q.done_ok = 1;
        gw_q.running = 0;
        gw_q.runner = NULL;
        gw_q.done = gw_q.started;
        gw_quiet_wake_others(q);
    }
    if (gw_q.more)
        gw_quiet_claim(q);
    pthread_mutex_unlock(&gw_q.mu);
    gw_quiet_answer(q);
}

void gw_quiet_wait(gw_quiet_t *q, gw_quiet_wait_t *w)
{
    pthread_mutex_lock(&gw_q.mu);
    w->after = gw_q.started;
    w->next = NULL;
    *q->tail = w;
    q->tail = &w->next;
    if (!gw_q.running)
        gw_quiet_claim(q);
    else if (gw_q.sent)
        gw_q.more = 1;      /* else the claimed barrier, not sent yet, covers it */
    pthread_mutex_unlock(&gw_q.mu);
}

static void gw_quiet_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_quiet_send(arg);
}

static void gw_quiet_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_quiet_answer(arg);
}

static void gw_quiet_pruned(void *arg, int err, const PGresult *res)
{
    gw_quiet_t *q = arg;
    (void)res;
    q->prune_job = NULL;
    if (err != GW_OK)
        gw_warn("quiet cache: pruning the change log failed (%s)", gw_strerror(err));
}

/* The keeper's second: a barrier when none ran (so that the snapshot
 * stays recent and the next read short), and the pruning. */
static void gw_quiet_tick(evutil_socket_t fd, short what, void *arg)
{
    gw_quiet_t *q = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&gw_q.mu);
    if (!gw_q.running && gw_q.done == gw_q.last_tick_done && gw_db_connected(q->db) > 0)
        gw_quiet_claim(q);
    gw_q.last_tick_done = gw_q.done;
    pthread_mutex_unlock(&gw_q.mu);
    if (++q->ticks >= GW_QUIET_PRUNE_TICKS && q->prune_job == NULL &&
        gw_db_connected(q->db) > 0) {
        q->ticks = 0;
        if (gw_db_query_timed(q->db, gw_quiet_prune_sql, 0, NULL, 30, gw_quiet_pruned, q,
                              &q->prune_job) != GW_OK)
            q->prune_job = NULL;
    }
}

gw_quiet_t *gw_quiet_new(struct event_base *base, gw_db_t *db, int keeper)
{
    if (gw_q.cap == 0)
        return NULL;
    gw_quiet_t *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    q->base = base;
    q->db = db;
    q->keeper = keeper;
    q->tail = &q->head;
    q->wake = event_new(base, -1, 0, gw_quiet_wake, q);
    q->kick = event_new(base, -1, 0, gw_quiet_kick, q);
    q->tick = keeper ? event_new(base, -1, EV_PERSIST, gw_quiet_tick, q) : NULL;
    const struct timeval one = {1, 0};
    int slot = -1;
    pthread_mutex_lock(&gw_q.mu);
    for (int i = 0; i < GW_QUIET_WORKERS && slot < 0; i++)
        if (gw_q.workers[i] == NULL)
            slot = i;
    if (slot >= 0 && q->wake != NULL && q->kick != NULL && (!keeper || (q->tick != NULL &&
                                                     event_add(q->tick, &one) == 0)))
        gw_q.workers[slot] = q;
    else
        slot = -1;
    pthread_mutex_unlock(&gw_q.mu);
    if (slot < 0) {
        if (q->wake != NULL)
            event_free(q->wake);
        if (q->kick != NULL)
            event_free(q->kick);
        if (q->tick != NULL)
            event_free(q->tick);
        free(q);
        return NULL;
    }
    return q;
}

void gw_quiet_free(gw_quiet_t *q)
{
    if (q == NULL)
        return;
    if (q->prune_job != NULL)
        gw_db_cancel(q->prune_job);
    pthread_mutex_lock(&gw_q.mu);
    for (int i = 0; i < GW_QUIET_WORKERS; i++)
        if (gw_q.workers[i] == q)
            gw_q.workers[i] = NULL;
    if (gw_q.running && gw_q.runner == q) {
        /* its barrier will not complete: the requests it covered are
         * answered by the database, another worker starts the next */
        if (q->job != NULL)
            gw_db_cancel(q->job);
        q->job = NULL;
        gw_quiet_abandon(q);
    }
    gw_quiet_wait_t *w = q->head;
    q->head = NULL;
    q->tail = &q->head;
    pthread_mutex_unlock(&gw_q.mu);
    while (w != NULL) {
        gw_quiet_wait_t *next = w->next;
        w->done(w, GW_ECLOSED, 0);
        w = next;
    }
    if (q->tick != NULL)
        event_free(q->tick);
    event_free(q->wake);
    event_free(q->kick);
    free(q);
}
