/* gw_seen: "last seen" written later, in sorted batches (see gw_seen.h). */
#include "gw_seen.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "cmn_mac.h"
#include "cmn_text.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_metrics.h"

typedef struct gw_seen_entry {
    char device[CMN_DEVICE_ID_LEN + 1];    /* "" for a free slot */
    char source[INET6_ADDRSTRLEN];
    double seen;
} gw_seen_entry_t;

/* The table the workers note into: open addressing, linear probing, at
 * most half full. */
static pthread_mutex_t gw_seen_mu = PTHREAD_MUTEX_INITIALIZER;
static gw_seen_entry_t *gw_seen_slots;
static size_t gw_seen_cap, gw_seen_n;
static int gw_seen_warned;

/* The writer (main loop only). */
static struct {
    gw_db_t *db;
    struct event *timer, *early;
    gw_seen_entry_t *batch;     /* the entries taken, sorted */
    size_t nbatch, pos;         /* pos: the next chunk */
    int busy, stopping;
    void (*done)(void *);
    void *done_arg;
} gw_seen_w;

static const char gw_seen_sql[] =
    "SELECT ddns_record_seen($1::text[], $2::double precision[], $3::inet[])";

/* Inserts or raises the entry of device in slots (cap a power of two, not
 * full). Under the mutex. */
static void gw_seen_put(gw_seen_entry_t *slots, size_t cap, size_t *n, const char *device,
                        const char *source, double seen)
{
    size_t i = (size_t)cmn_hash(device) & (cap - 1);
    while (slots[i].device[0] && strcmp(slots[i].device, device) != 0)
        i = (i + 1) & (cap - 1);
    gw_seen_entry_t *e = &slots[i];
    if (!e->device[0]) {
        snprintf(e->device, sizeof e->device, "%s", device);
        (*n)++;
    } else if (e->seen >= seen) {
        return;
    }
    snprintf(e->source, sizeof e->source, "%s", source);
    e->seen = seen;
}

/* Room for one more entry. Under the mutex. */
static int gw_seen_room(void)
{
    if (gw_seen_n + 1 <= gw_seen_cap / 2)
        return GW_OK;
    size_t cap = gw_seen_cap ? gw_seen_cap * 2 : 4096, n = 0;
    gw_seen_entry_t *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return GW_ENOMEM;
    for (size_t i = 0; i < gw_seen_cap; i++)
        if (gw_seen_slots[i].device[0])
            gw_seen_put(slots, cap, &n, gw_seen_slots[i].device, gw_seen_slots[i].source,
                        gw_seen_slots[i].seen);
    free(gw_seen_slots);
    gw_seen_slots = slots;
    gw_seen_cap = cap;
    return GW_OK;
}

void gw_seen_note(const char *device, const char *source, double now_s)
{
    int ok, early = 0;
    pthread_mutex_lock(&gw_seen_mu);
    ok = gw_seen_room() == GW_OK;
    if (ok) {
        gw_seen_put(gw_seen_slots, gw_seen_cap, &gw_seen_n, device, source, now_s);
        early = gw_seen_n == GW_SEEN_EARLY;
    } else if (!gw_seen_warned) {
        gw_seen_warned = 1;
        gw_warn("out of memory: the last seen time of device %s is not recorded", device);
    }
    pthread_mutex_unlock(&gw_seen_mu);
    if (early && gw_seen_w.early != NULL)
        event_active(gw_seen_w.early, EV_TIMEOUT, 0);
}

size_t gw_seen_pending(void)
{
    pthread_mutex_lock(&gw_seen_mu);
    size_t n = gw_seen_n;
    pthread_mutex_unlock(&gw_seen_mu);
    return n;
}

static int gw_seen_cmp(const void *a, const void *b)
{
    return strcmp(((const gw_seen_entry_t *)a)->device, ((const gw_seen_entry_t *)b)->device);
}

/* Takes the table's entries into the writer's batch, sorted. */
static int gw_seen_take(void)
{
    pthread_mutex_lock(&gw_seen_mu);
    gw_seen_entry_t *slots = gw_seen_slots;
    size_t cap = gw_seen_cap;
    gw_seen_slots = NULL;
    gw_seen_cap = gw_seen_n = 0;
    gw_seen_warned = 0;
    pthread_mutex_unlock(&gw_seen_mu);
    size_t k = 0;
    if (slots == NULL)
        return 0;
    for (size_t i = 0; i < cap; i++)
        if (slots[i].device[0])
            slots[k++] = slots[i];
    qsort(slots, k, sizeof *slots, gw_seen_cmp);
    gw_seen_w.batch = slots;
    gw_seen_w.nbatch = k;
    gw_seen_w.pos = 0;
    return k > 0;
}

static void gw_seen_send(void);

/* Ends the round: drops the batch, and calls done once stopping. */
static void gw_seen_finish(void)
{
    free(gw_seen_w.batch);
    gw_seen_w.batch = NULL;
    gw_seen_w.nbatch = gw_seen_w.pos = 0;
    gw_seen_w.busy = 0;
    if (gw_seen_w.stopping && gw_seen_w.done != NULL) {
        void (*done)(void *) = gw_seen_w.done;
        gw_seen_w.done = NULL;
        done(gw_seen_w.done_arg);
    }
}

/* The chunk from first on was not written (err): its entries and the
 * rest of the batch are noted again for the next round, which ends this
 * one. */
static void gw_seen_failed(size_t first, int err)
{
    gw_metrics_inc(GW_M_SEEN_FAILED);
    gw_warn("last seen times of %zu device(s) not written (%s): kept for the next round",
            gw_seen_w.nbatch - first, gw_strerror(err));
    for (size_t i = first; i < gw_seen_w.nbatch; i++)
        gw_seen_note(gw_seen_w.batch[i].device, gw_seen_w.batch[i].source,
                     gw_seen_w.batch[i].seen);
    gw_seen_finish();
}

static void gw_seen_sent(void *arg, int err, const PGresult *res)
{
    size_t first = (size_t)(uintptr_t)arg;
    if (err == GW_OK && PQntuples(res) == 1) {
        gw_metrics_add(GW_M_SEEN_WRITTEN, strtoul(PQgetvalue(res, 0, 0), NULL, 10));
        gw_seen_send();
    } else {
        gw_seen_failed(first, err == GW_OK ? GW_EDB : err);
    }
}

/* Sends the next chunk of the batch, or finishes. */
static void gw_seen_send(void)
{
    size_t first = gw_seen_w.pos, end = first + GW_SEEN_CHUNK;
    if (end > gw_seen_w.nbatch)
        end = gw_seen_w.nbatch;
    if (first == end) {
        gw_seen_finish();
        return;
    }
    /* the three array literals, each NUL-terminated in its buffer */
    struct evbuffer *b[3] = {evbuffer_new(), evbuffer_new(), evbuffer_new()};
    const char *params[3];
    int rc = GW_ENOMEM;
    for (int k = 0; k < 3; k++)
        if (b[k] == NULL)
            goto out;
    for (size_t i = first; i < end; i++) {
        const gw_seen_entry_t *e = &gw_seen_w.batch[i];
        const char *sep = i == first ? "{" : ",";
        if (evbuffer_add_printf(b[0], "%s%s", sep, e->device) < 0 ||
            evbuffer_add_printf(b[1], "%s%.3f", sep, e->seen) < 0 ||
            evbuffer_add_printf(b[2], "%s%s", sep, e->source) < 0)
            goto out;
    }
    for (int k = 0; k < 3; k++)
        if (evbuffer_add(b[k], "}", 2) != 0 ||
            (params[k] = (const char *)evbuffer_pullup(b[k], -1)) == NULL)
            goto out;
    gw_seen_w.pos = end;
    rc = gw_db_query_timed(gw_seen_w.db, gw_seen_sql, 3, params, 30, gw_seen_sent,
                           (void *)(uintptr_t)first, NULL);
out:
    for (int k = 0; k < 3; k++)
        if (b[k] != NULL)
            evbuffer_free(b[k]);
    if (rc != GW_OK)
        gw_seen_failed(first, rc);
}

/* Takes what waits and sends it; ends the round at once when nothing
 * waits. */
static void gw_seen_begin(void)
{
    if (gw_seen_w.db == NULL || !gw_seen_take()) {
        gw_seen_finish();
        return;
    }
    gw_seen_w.busy = 1;
    gw_seen_send();
}

/* A round: takes what waits and sends it, unless a round is running. */
static void gw_seen_round(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (!gw_seen_w.busy)
        gw_seen_begin();
}

int gw_seen_start(struct event_base *base, gw_db_t *db, int interval_s)
{
    struct timeval tv = {interval_s, 0};
    gw_seen_w.db = db;
    gw_seen_w.timer = event_new(base, -1, EV_PERSIST, gw_seen_round, NULL);
    gw_seen_w.early = event_new(base, -1, 0, gw_seen_round, NULL);
    if (gw_seen_w.timer == NULL || gw_seen_w.early == NULL || evtimer_add(gw_seen_w.timer, &tv) != 0)
        return GW_ENOMEM;
    return GW_OK;
}

void gw_seen_stop(void (*done)(void *), void *arg)
{
    gw_seen_w.stopping = 1;
    gw_seen_w.done = done;
    gw_seen_w.done_arg = arg;
    if (gw_seen_w.timer != NULL)
        evtimer_del(gw_seen_w.timer);
    if (!gw_seen_w.busy)     /* else the round running calls done */
        gw_seen_begin();
}

void gw_seen_free(void)
{
    if (gw_seen_w.timer != NULL)
        event_free(gw_seen_w.timer);
    if (gw_seen_w.early != NULL)
        event_free(gw_seen_w.early);
    free(gw_seen_w.batch);
    memset(&gw_seen_w, 0, sizeof gw_seen_w);
    pthread_mutex_lock(&gw_seen_mu);
    free(gw_seen_slots);
    gw_seen_slots = NULL;
    gw_seen_cap = gw_seen_n = 0;
    pthread_mutex_unlock(&gw_seen_mu);
}
