/* gw_quiet: the poll that changes nothing, answered from memory (see
 * gw_quiet.h). */
#include "gw_quiet.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "gw_err.h"
#include "gw_log.h"
#include "gw_metrics.h"

#define GW_QUIET_PROBES 8           /* slots a device may take */
#define GW_QUIET_MAX_ROWS 1000      /* names of one answer kept */
#define GW_QUIET_TIMEOUT 5          /* seconds a barrier may take */
#define GW_QUIET_PRUNE_TICKS 60     /* ticks (s) between two prunes */

static const char gw_quiet_sql[] =
    "SELECT snap::text, db_now, complete, device, xid::text "
    "FROM ddns_changes_since($1::pg_snapshot)";
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

static struct {
    pthread_mutex_t mu;
    gw_quiet_slot_t *slot;
    size_t cap;                     /* a power of two; 0: off */
    size_t valid;                   /* slots with an answer */
    uint64_t latest;                /* xmin of the newest barrier snapshot; 0: none yet */
    uint64_t flushes;
} gw_q = {.mu = PTHREAD_MUTEX_INITIALIZER};

struct gw_quiet {
    struct event_base *base;
    gw_db_t *db;
    char *since;                    /* the previous barrier's snapshot; NULL: none */
    gw_db_job_t *job;               /* the barrier in flight */
    gw_db_job_t *prune_job;         /* the pruning in flight */
    int running, ran, prune, ticks, pruning;
    gw_quiet_wait_t *riding;        /* waiting for the barrier in flight */
    gw_quiet_wait_t *next, **next_tail; /* waiting for the next one */
    struct event *tick;
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
    pthread_mutex_unlock(&gw_q.mu);
}

size_t gw_quiet_entries(void)
{
    pthread_mutex_lock(&gw_q.mu);
    size_t n = gw_q.valid;
    pthread_mutex_unlock(&gw_q.mu);
    return n;
}

static size_t gw_quiet_hash(const char *device)
{
    uint64_t h = 14695981039346656037u;
    for (const char *p = device; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    return (size_t)(h ^ (h >> 29));
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
    size_t h = gw_quiet_hash(device), empty = SIZE_MAX;
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
    for (size_t i = 0; i < gw_q.cap; i++)
        gw_q.slot[i].valid = 0;
    gw_q.valid = 0;
    gw_q.flushes++;
    gw_metrics_inc(GW_M_QUIET_FLUSHES);
}

static int gw_quiet_start(gw_quiet_t *q);

/* Answers the requests that rode the barrier: from memory when their
 * entry survived it and the timestamp is not ahead of the database's
 * clock by more than 1 s (as ddns_apply_batch() would), else nrows 0. */
static void gw_quiet_answer(gw_quiet_wait_t *w, int err, int ok, int64_t db_now)
{
    while (w != NULL) {
        gw_quiet_wait_t *next = w->next;
        unsigned nrows = 0;
        if (ok) {
            pthread_mutex_lock(&gw_q.mu);
            const gw_quiet_slot_t *s = gw_quiet_find(w->key.device, 0);
            if (gw_quiet_matches(s, &w->key) && (w->key.dyn || w->key.ts <= db_now + 1))
                nrows = s->nrows;
            pthread_mutex_unlock(&gw_q.mu);
        }
        w->done(w, err, nrows);   /* may free w */
        w = next;
    }
}

/* Applies a barrier's rows: GW_OK with its snapshot and clock, or GW_EDB. */
static int gw_quiet_apply(gw_quiet_t *q, const PGresult *res, int64_t *db_now)
{
    int n = PQntuples(res);
    if (n < 1 || PQnfields(res) != 5 || PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1)) {
        gw_error("ddns_changes_since returned %d rows", n);
        return GW_EDB;
    }
    const char *snap = PQgetvalue(res, 0, 0);
    char *end;
    uint64_t xmin = strtoull(snap, &end, 10);
    if (end == snap || *end != ':') {
        gw_error("ddns_changes_since returned an unexpected snapshot");
        return GW_EDB;
    }
    char *since = strdup(snap);
    if (since == NULL)
        return GW_ENOMEM;
    *db_now = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    int complete = PQgetvalue(res, 0, 2)[0] == 't';
    pthread_mutex_lock(&gw_q.mu);
    if (!complete) {
        gw_quiet_flush();
    } else {
        for (int r = 0; r < n; r++) {
            if (PQgetisnull(res, r, 3))
                continue;
            const char *device = PQgetvalue(res, r, 3);
            uint64_t x = PQgetisnull(res, r, 4) ? UINT64_MAX
                                                : strtoull(PQgetvalue(res, r, 4), NULL, 10);
            if (device[0] == '\0') {    /* a provisioning batch: every device */
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
    }
    if (xmin > gw_q.latest)
        gw_q.latest = xmin;
    pthread_mutex_unlock(&gw_q.mu);
    free(q->since);
    q->since = since;
    return GW_OK;
}

static void gw_quiet_done(void *arg, int err, const PGresult *res)
{
    gw_quiet_t *q = arg;
    int64_t db_now = 0;
    q->job = NULL;
    q->running = 0;
    gw_metrics_inc(GW_M_QUIET_BARRIERS);
    if (err == GW_OK)
        err = gw_quiet_apply(q, res, &db_now);
    else
        gw_warn("quiet cache: barrier failed (%s): polls read the database",
                gw_strerror(err));
    gw_quiet_wait_t *w = q->riding;
    q->riding = NULL;
    if (q->next != NULL)
        (void)gw_quiet_start(q);
    gw_quiet_answer(w, GW_OK, err == GW_OK, db_now);
}

/* Starts a barrier for the requests waiting; they are answered without
 * memory (nrows 0) when it cannot be sent. */
static int gw_quiet_start(gw_quiet_t *q)
{
    const char *params[1] = {q->since};
    q->riding = q->next;
    q->next = NULL;
    q->next_tail = &q->next;
    q->running = 1;
    q->ran = 1;
    int rc = gw_db_query_timed(q->db, gw_quiet_sql, 1, params, GW_QUIET_TIMEOUT, gw_quiet_done,
                               q, &q->job);
    if (rc != GW_OK) {
        q->running = 0;
        q->job = NULL;
        gw_quiet_wait_t *w = q->riding;
        q->riding = NULL;
        gw_quiet_answer(w, GW_OK, 0, 0);
    }
    return rc;
}

void gw_quiet_wait(gw_quiet_t *q, gw_quiet_wait_t *w)
{
    w->next = NULL;
    *q->next_tail = w;
    q->next_tail = &w->next;
    if (!q->running)
        (void)gw_quiet_start(q);
}

static void gw_quiet_pruned(void *arg, int err, const PGresult *res)
{
    gw_quiet_t *q = arg;
    (void)res;
    q->pruning = 0;
    q->prune_job = NULL;
    if (err != GW_OK)
        gw_warn("quiet cache: pruning the change log failed (%s)", gw_strerror(err));
}

/* Every second: a barrier when none ran (so that an idle worker's
 * snapshot stays recent and its next read short), and the pruning. */
static void gw_quiet_tick(evutil_socket_t fd, short what, void *arg)
{
    gw_quiet_t *q = arg;
    (void)fd;
    (void)what;
    if (!q->running && !q->ran && gw_db_connected(q->db) > 0)
        (void)gw_quiet_start(q);
    q->ran = 0;
    if (q->prune && ++q->ticks >= GW_QUIET_PRUNE_TICKS && !q->pruning &&
        gw_db_connected(q->db) > 0) {
        q->ticks = 0;
        if (gw_db_query_timed(q->db, gw_quiet_prune_sql, 0, NULL, 30, gw_quiet_pruned, q,
                              &q->prune_job) == GW_OK)
            q->pruning = 1;
    }
}

gw_quiet_t *gw_quiet_new(struct event_base *base, gw_db_t *db, int prune)
{
    if (gw_q.cap == 0)
        return NULL;
    gw_quiet_t *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    q->base = base;
    q->db = db;
    q->prune = prune;
    q->next_tail = &q->next;
    q->tick = event_new(base, -1, EV_PERSIST, gw_quiet_tick, q);
    const struct timeval one = {1, 0};
    if (q->tick == NULL || event_add(q->tick, &one) != 0) {
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
    if (q->job != NULL)
        gw_db_cancel(q->job);
    if (q->prune_job != NULL)
        gw_db_cancel(q->prune_job);
    event_free(q->tick);
    gw_quiet_wait_t *w = q->riding;
    q->riding = NULL;
    gw_quiet_answer(w, GW_ECLOSED, 0, 0);
    w = q->next;
    q->next = NULL;
    gw_quiet_answer(w, GW_ECLOSED, 0, 0);
    free(q->since);
    free(q);
}
