/* gw_publish: DNS publisher thread (see gw_publish.h). */
#include "gw_publish.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "gw_clock.h"
#include "gw_db.h"
#include "gw_dns.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_metrics.h"
#include "gw_outbox.h"
#include "gw_pubwin.h"

#define GW_PUB_BACKOFF_MIN_MS 200
/* Retries of an unreachable DNS server or database stay this frequent so
 * that the backlog is published within seconds of its return. */
#define GW_PUB_BACKOFF_MAX_MS 2000
#define GW_PUB_SAFETY_MS 1000
/* A zone's turn when other zones wait. */
#define GW_PUB_TURN_MS 1000
/* A change the server refused on its own is set aside (other rows go on
 * being published) and tried again after this long. */
#define GW_PUB_SET_ASIDE_MS 60000
#define GW_PUB_SET_ASIDE_MAX 1000

enum gw_pub_outcome {
    GW_PUB_EMPTY,       /* nothing to publish */
    GW_PUB_DONE,        /* published everything that was there */
    GW_PUB_MORE,        /* published a batch, more rows remain */
    GW_PUB_LOCKED,      /* another gateway holds the zone */
    GW_PUB_DNSFAIL,     /* the DNS server did not confirm; rows marked */
    GW_PUB_DBFAIL,      /* database error: reconnect */
};

struct gw_zone_state {
    const gw_zone_conf_t *zone;
    int64_t next_ms;    /* do not try before (monotonic ms) */
    int backoff_ms;
    int failing;        /* the last batch was not confirmed */
    gw_pubwin_t win;    /* rows per message, messages in flight */
    /* Rows whose change the server refused alone, not sent again before
     * their time (in memory: a restarted publisher finds them again); NULL
     * until the zone's first refusal. */
    struct gw_pub_aside {
        long long id;
        char fqdn[GW_DNAME_MAX + 1];
        char rrtype[8];
        int64_t retry_ms;
    } *aside;
    size_t naside;
};

struct gw_publish {
    const gw_config_t *cfg;
    /* The zones' settings the thread uses (its own copies), and new ones a
     * reload handed over, taken between two runs (guarded by zmu). */
    gw_zone_conf_t *zconf;
    gw_zone_conf_t *pending;
    pthread_mutex_t zmu;
    pthread_t thread;
    int wake[2];        /* self-pipe: a byte means stop */
    atomic_int stop;
    PGconn *pg;
    int db_backoff_ms;
    struct gw_zone_state *zs;
    unsigned int seed;
    gw_publish_health_t *health;    /* read by other threads and processes */
};

/* The publisher's health: written by its thread only, read anywhere (the
 * gateway's process reads the publisher process's through shared memory):
 * why is guarded by a sequence count (odd while it is written). */
struct gw_publish_health {
    atomic_int pg_up;
    atomic_int nfailing;
    atomic_uint seq;
    char why[300];      /* the last failure of a zone still failing */
};

gw_publish_health_t *gw_publish_health_new(void)
{
    void *m = mmap(NULL, sizeof(gw_publish_health_t), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    gw_publish_health_t *h = m;
    atomic_init(&h->pg_up, 0);
    atomic_init(&h->nfailing, 0);
    atomic_init(&h->seq, 0);
    return h;
}

void gw_publish_health_free(gw_publish_health_t *h)
{
    if (h != NULL)
        munmap(h, sizeof *h);
}

static void gw_pub_zone_ok(struct gw_publish *p, struct gw_zone_state *zs)
{
    if (zs->failing) {
        zs->failing = 0;
        atomic_fetch_sub(&p->health->nfailing, 1);
    }
}

static void gw_pub_zone_failed(struct gw_publish *p, struct gw_zone_state *zs, const char *err)
{
    if (!zs->failing) {
        zs->failing = 1;
        atomic_fetch_add(&p->health->nfailing, 1);
    }
    gw_publish_health_t *h = p->health;
    atomic_fetch_add(&h->seq, 1);
    atomic_thread_fence(memory_order_release);
    snprintf(h->why, sizeof h->why, "zone %.60s: %.200s", zs->zone->name, err);
    atomic_thread_fence(memory_order_release);
    atomic_fetch_add(&h->seq, 1);
}

int gw_publish_health(const gw_publish_health_t *h, char *why, size_t whylen)
{
    if (h == NULL) {
        snprintf(why, whylen, "publisher not running");
        return GW_ECLOSED;
    }
    if (!atomic_load(&h->pg_up)) {
        snprintf(why, whylen, "publisher: no database connection");
        return GW_EDB;
    }
    if (atomic_load(&h->nfailing) > 0) {
        char copy[sizeof h->why];
        unsigned before, after;
        int tries = 0;
        do {
            before = atomic_load(&h->seq);
            atomic_thread_fence(memory_order_acquire);
            memcpy(copy, (const char *)h->why, sizeof copy);
            atomic_thread_fence(memory_order_acquire);
            after = atomic_load(&h->seq);
        } while ((before != after || (before & 1u)) && ++tries < 100);
        copy[sizeof copy - 1] = '\0';
        snprintf(why, whylen, "publisher: %.280s", copy);
        return GW_EDNS;
    }
    return GW_OK;
}

static int gw_jitter(struct gw_publish *p, int ms)
{
    return ms + (int)(rand_r(&p->seed) % (unsigned)(ms / 4 + 1));
}

/* Waits up to ms for the stop pipe (returns 1) or, when watch_db, for the
 * database socket (returns 0). */
static int gw_pub_wait(struct gw_publish *p, int64_t ms, int watch_db)
{
    struct pollfd fds[2] = {{p->wake[0], POLLIN, 0}, {-1, POLLIN, 0}};
    if (watch_db && p->pg != NULL)
        fds[1].fd = PQsocket(p->pg);
    if (ms > GW_PUB_SAFETY_MS)
        ms = GW_PUB_SAFETY_MS;
    int r = poll(fds, 2, (int)ms);
    if (r < 0 && errno != EINTR)
        gw_warn("publisher: poll: %s", strerror(errno));
    return atomic_load(&p->stop) || (r > 0 && (fds[0].revents & POLLIN));
}

static void gw_pub_disconnect(struct gw_publish *p)
{
    if (p->pg != NULL) {
        PQfinish(p->pg);
        p->pg = NULL;
    }
    atomic_store(&p->health->pg_up, 0);
}

static int gw_pub_connect(struct gw_publish *p)
{
    const char *kw[] = {"application_name", "connect_timeout", "dbname", NULL};
    const char *val[] = {"ddns-gateway-publisher", "5", gw_config_publisher_conninfo(p->cfg), NULL};

    p->pg = PQconnectdbParams(kw, val, 1);
    if (p->pg == NULL || PQstatus(p->pg) != CONNECTION_OK) {
        gw_warn("publisher: cannot connect to the database: %s",
                gw_db_message(p->pg ? PQerrorMessage(p->pg) : NULL));
        goto fail;
    }
    char err[300];
    if (gw_outbox_listen(p->pg, err, sizeof err) != GW_OK) {
        gw_warn("publisher: %s", err);
        goto fail;
    }
    gw_info("publisher: connected to the database, listening on channel " GW_OUTBOX_CHANNEL);
    p->db_backoff_ms = GW_PUB_BACKOFF_MIN_MS;
    atomic_store(&p->health->pg_up, 1);
    return 0;
fail:
    gw_pub_disconnect(p);
    return GW_EDB;
}

/* One UPDATE message of a run: its outbox rows and their coalescing. */
struct gw_pub_msg {
    enum { GW_MSG_FREE, GW_MSG_INFLIGHT, GW_MSG_FAILED } state;
    gw_outbox_rows_t rows;  /* in id order */
    size_t *ord, *grp;      /* gw_outbox_coalesce() */
    size_t nch, sent;       /* changes; changes the message carries */
    char *gone;             /* per row: deleted as superseded by a later message */
    int refused;            /* the server answered, validly signed, with an error */
    uint16_t id;
    int64_t sent_ms;
    char err[256];
};

/* A zone's publishing run: the UPDATE messages in flight on one connection. */
struct gw_pub_run {
    struct gw_publish *p;
    struct gw_zone_state *zs;
    gw_dns_conn_t *conn;
    struct gw_pub_msg m[GW_PUBWIN_MAX];
    size_t ninflight;
    size_t window;          /* gw_pubwin_window() at the run's start */
    int failed;             /* a message failed: send no more */
};

static void gw_pub_msg_free(struct gw_pub_msg *m)
{
    gw_outbox_rows_free(&m->rows);
    free(m->ord);
    free(m->grp);
    free(m->gone);
    memset(m, 0, sizeof *m);
}

/* The ids not to read: every row of the run's messages and the rows set
 * aside. */
static int gw_pub_run_ids(struct gw_pub_run *run, gw_outbox_ids_t *ids)
{
    for (size_t i = 0; i < GW_PUBWIN_MAX; i++)
        for (size_t r = 0; r < run->m[i].rows.n; r++)
            if (gw_outbox_ids_add(ids, run->m[i].rows.row[r].id) != GW_OK)
                return GW_ENOMEM;
    for (size_t i = 0; i < run->zs->naside; i++)
        if (gw_outbox_ids_add(ids, run->zs->aside[i].id) != GW_OK)
            return GW_ENOMEM;
    return GW_OK;
}

/* Every message in flight failed with why (the connection is gone). */
static void gw_pub_run_lost(struct gw_pub_run *run, const char *why)
{
    char err[sizeof run->m[0].err];
    snprintf(err, sizeof err, "%s", why);
    for (size_t i = 0; i < GW_PUBWIN_MAX; i++)
        if (run->m[i].state == GW_MSG_INFLIGHT) {
            run->m[i].state = GW_MSG_FAILED;
            snprintf(run->m[i].err, sizeof run->m[i].err, "%s", err);
        }
    run->ninflight = 0;
    run->failed = 1;
    gw_dns_conn_close(run->conn);
    run->conn = NULL;
}

/* Reads the next rows not in flight and sends them as one UPDATE. Returns
 * 1 when a message was sent, 0 when there were no rows, -1 on a database
 * error; a DNS failure marks the run failed (and returns 1). *full is set
 * when the read was a whole batch (more rows may wait). */
static int gw_pub_run_send(struct gw_pub_run *run, int *full)
{
    struct gw_publish *p = run->p;
    const gw_zone_conf_t *z = run->zs->zone;
    struct gw_pub_msg *m = NULL;
    gw_dns_change_t *ch = NULL;
    gw_outbox_ids_t skip = {0};
    char err[300];
    int rc = -1;

    *full = 0;
    for (size_t i = 0; i < GW_PUBWIN_MAX && m == NULL; i++)
        if (run->m[i].state == GW_MSG_FREE)
            m = &run->m[i];
    if (m == NULL || gw_pub_run_ids(run, &skip) != GW_OK)
        goto out;
    if (gw_outbox_read(p->pg, z->name, &skip, run->zs->win.limit, &m->rows, err,
                       sizeof err) != GW_OK) {
        gw_warn("publisher: zone %s: %s", z->name, err);
        goto out;
    }
    size_t n = m->rows.n;
    if (n == 0) {
        rc = 0;
        goto out;
    }
    *full = n == run->zs->win.limit;
    /* Coalesce: one change per (fqdn, type), the newest row's. */
    m->ord = malloc(n * sizeof *m->ord);
    m->grp = malloc(n * sizeof *m->grp);
    m->gone = calloc(n, 1);
    ch = calloc(n, sizeof *ch);
    if (m->ord == NULL || m->grp == NULL || m->gone == NULL || ch == NULL)
        goto out;
    m->nch = gw_outbox_coalesce(m->rows.row, n, m->ord, m->grp);
    for (size_t i = 0; i < m->nch; i++) {
        const gw_outbox_row_t *w = &m->rows.row[m->ord[i]];
        ch[i].fqdn = w->fqdn;
        ch[i].is_aaaa = strcmp(w->rrtype, "AAAA") == 0;
        ch[i].address = w->address;
        ch[i].ttl = w->ttl;
    }
    rc = 1;
    m->sent = m->nch;
    m->sent_ms = gw_clock_ms();
    m->state = GW_MSG_INFLIGHT;
    run->ninflight++;
    int drc = GW_OK;
    if (run->conn == NULL)
        drc = gw_dns_conn_open(z, &run->conn, m->err, sizeof m->err);
    if (drc == GW_OK)
        drc = gw_dns_conn_send(run->conn, ch, &m->sent, &m->id, m->err, sizeof m->err);
    if (drc != GW_OK)
        gw_pub_run_lost(run, m->err);
out:
    if (m != NULL && (rc < 0 || m->state == GW_MSG_FREE))
        gw_pub_msg_free(m);
    free(ch);
    gw_outbox_ids_free(&skip);
    return rc;
}

/* 1 when a change m sent supersedes the row id of fqdn and rrtype. */
static int gw_pub_supersedes(const struct gw_pub_msg *m, long long id, const char *fqdn,
                             const char *rrtype)
{
    return gw_outbox_supersedes(m->rows.row, m->ord, m->sent, id, fqdn, rrtype);
}

/* The server refused the one change of the failed message f: its rows are
 * set aside so that the others are published meanwhile. The list is made on
 * the first refusal (most zones never need it). */
static void gw_pub_set_aside(struct gw_zone_state *zs, const struct gw_pub_msg *f)
{
    const char *fqdn = f->rows.row[f->ord[0]].fqdn;
    if (zs->aside == NULL)
        zs->aside = calloc(GW_PUB_SET_ASIDE_MAX, sizeof *zs->aside);
    if (zs->aside == NULL) {
        gw_warn("publisher: zone %s: %s refused alone; out of memory to set it aside, "
                "retrying it with the others", zs->zone->name, fqdn);
        return;
    }
    for (size_t i = 0; i < f->rows.n && zs->naside < GW_PUB_SET_ASIDE_MAX; i++) {
        if (f->gone[i] || f->grp[i] >= f->sent)
            continue;
        struct gw_pub_aside *a = &zs->aside[zs->naside++];
        a->id = f->rows.row[i].id;
        snprintf(a->fqdn, sizeof a->fqdn, "%s", f->rows.row[i].fqdn);
        snprintf(a->rrtype, sizeof a->rrtype, "%s", f->rows.row[i].rrtype);
        a->retry_ms = gw_clock_ms() + GW_PUB_SET_ASIDE_MS;
    }
    gw_warn("publisher: zone %s: %s refused alone; set aside for %d s, the other changes go on",
            zs->zone->name, fqdn, GW_PUB_SET_ASIDE_MS / 1000);
}

/* The message m was confirmed: the rows of its sent changes leave the
 * outbox (each sent row and the older rows it superseded), and so do the
 * rows of failed messages that a change of m superseded. 0, or -1 on a
 * database error. */
static int gw_pub_run_confirmed(struct gw_pub_run *run, struct gw_pub_msg *m)
{
    struct gw_publish *p = run->p;
    const gw_zone_conf_t *z = run->zs->zone;
    gw_outbox_ids_t ids = {0};
    char err[300];
    int rc = -1;

    for (size_t i = 0; i < m->rows.n; i++)
        if (m->grp[i] < m->sent && gw_outbox_ids_add(&ids, m->rows.row[i].id) != GW_OK)
            goto out;
    for (size_t k = 0; k < GW_PUBWIN_MAX; k++) {
        struct gw_pub_msg *f = &run->m[k];
        if (f->state != GW_MSG_FAILED)
            continue;
        for (size_t i = 0; i < f->rows.n; i++) {
            const gw_outbox_row_t *w = &f->rows.row[i];
            if (f->gone[i] || !gw_pub_supersedes(m, w->id, w->fqdn, w->rrtype))
                continue;
            f->gone[i] = 1;
            if (gw_outbox_ids_add(&ids, w->id) != GW_OK)
                goto out;
        }
    }
    /* and the rows set aside whose name and type this message published
     * with a newer row */
    struct gw_zone_state *zs = run->zs;
    for (size_t a = 0; a < zs->naside;) {
        if (!gw_pub_supersedes(m, zs->aside[a].id, zs->aside[a].fqdn, zs->aside[a].rrtype)) {
            a++;
            continue;
        }
        if (gw_outbox_ids_add(&ids, zs->aside[a].id) != GW_OK)
            goto out;
        zs->aside[a] = zs->aside[--zs->naside];
    }
    size_t ndel = ids.n;
    if (gw_outbox_delete(p->pg, &ids, err, sizeof err) != GW_OK) {
        gw_warn("publisher: zone %s: %s", z->name, err);
        goto out;
    }
    gw_info("published zone=%s changes=%zu rows=%zu ms=%lld", z->name, m->sent, ndel,
            (long long)(gw_clock_ms() - m->sent_ms));
    gw_metrics_inc(GW_M_PUBLISH_OK);
    gw_metrics_add(GW_M_PUBLISH_CHANGES, m->sent);
    rc = 0;
out:
    gw_outbox_ids_free(&ids);
    return rc;
}

/* After a failed run: the rows of the failed messages that no later
 * message superseded get attempts + 1 and the error, and the zone waits.
 * 0, or -1 on a database error. */
static int gw_pub_run_record_failure(struct gw_pub_run *run)
{
    struct gw_publish *p = run->p;
    struct gw_zone_state *zs = run->zs;
    gw_pubwin_failure_t fail[GW_PUBWIN_MAX];
    struct gw_pub_msg *failed[GW_PUBWIN_MAX];
    int aside[GW_PUBWIN_MAX];
    size_t nf = 0, nrows = 0;
    const char *why = "not confirmed";
    char err[300];

    for (size_t k = 0; k < GW_PUBWIN_MAX; k++) {
        struct gw_pub_msg *f = &run->m[k];
        if (f->state != GW_MSG_FAILED)
            continue;
        gw_outbox_ids_t ids = {0};
        int rc = GW_OK;
        for (size_t i = 0; i < f->rows.n && rc == GW_OK; i++)
            if (!f->gone[i])
                rc = gw_outbox_ids_add(&ids, f->rows.row[i].id);
        size_t cnt = ids.n;
        if (rc == GW_OK && (rc = gw_outbox_mark_failed(p->pg, &ids, f->err, err, sizeof err)) !=
                               GW_OK && rc != GW_ENOMEM)
            gw_warn("publisher: zone %s: %s", zs->zone->name, err);
        gw_outbox_ids_free(&ids);
        if (rc == GW_ENOMEM)
            return GW_ENOMEM;
        gw_metrics_inc(GW_M_PUBLISH_FAILED);
        gw_pub_zone_failed(p, zs, f->err);
        nrows += cnt;
        why = f->err;
        if (rc != GW_OK)
            return GW_EDB;
        fail[nf].sent = f->sent;
        fail[nf].refused = f->refused;
        failed[nf++] = f;
    }
    int seek = gw_pubwin_failed(&zs->win, fail, nf, aside);
    for (size_t i = 0; i < nf; i++)
        if (aside[i])
            gw_pub_set_aside(zs, failed[i]);
    if (seek) {
        zs->next_ms = gw_clock_ms();
        gw_warn("publisher: zone %s: %zu changes not published (%s); looking for the change "
                "refused: %zu rows per message", zs->zone->name, nrows, why, zs->win.limit);
        return 0;
    }
    int wait = gw_jitter(p, zs->backoff_ms);
    gw_warn("publisher: zone %s: %zu changes not published (%s); retrying in %d ms",
            zs->zone->name, nrows, why, wait);
    zs->next_ms = gw_clock_ms() + wait;
    zs->backoff_ms = zs->backoff_ms * 2 > GW_PUB_BACKOFF_MAX_MS ? GW_PUB_BACKOFF_MAX_MS
                                                                : zs->backoff_ms * 2;
    return 0;
}

/* Rows set aside whose time came are tried again, one row at a time
 * first. */
static void gw_pub_retry_aside(struct gw_zone_state *zs)
{
    for (size_t a = 0; a < zs->naside;)
        if (zs->aside[a].retry_ms <= gw_clock_ms()) {
            zs->aside[a] = zs->aside[--zs->naside];
            gw_pubwin_retry_alone(&zs->win);
        } else {
            a++;
        }
}

/* When the oldest message in flight was sent (INT64_MAX: none). */
static int64_t gw_pub_run_oldest(const struct gw_pub_run *run)
{
    int64_t oldest = INT64_MAX;
    for (size_t i = 0; i < GW_PUBWIN_MAX; i++)
        if (run->m[i].state == GW_MSG_INFLIGHT && run->m[i].sent_ms < oldest)
            oldest = run->m[i].sent_ms;
    return oldest;
}

/* Every whole answer received (one read may bring several): a confirmed
 * message's rows leave the outbox, a refused one fails the run, a lost
 * connection loses the messages in flight. Returns 1 when a message was
 * confirmed, 0 when none, -1 when the database failed. */
static int gw_pub_run_answers(struct gw_pub_run *run)
{
    struct gw_publish *p = run->p;
    struct gw_zone_state *zs = run->zs;
    int confirmed = 0;
    while (run->ninflight > 0) {
        char err[256];
        uint16_t id = 0;
        int signed_rcode = -1;
        int rc = gw_dns_conn_recv(run->conn, 0, &id, &signed_rcode, err, sizeof err);
        if (rc == GW_ETIMEDOUT)
            break;
        struct gw_pub_msg *m = NULL;
        for (size_t i = 0; i < GW_PUBWIN_MAX; i++)
            if (run->m[i].state == GW_MSG_INFLIGHT && run->m[i].id == id)
                m = &run->m[i];
        if ((rc != GW_OK && rc != GW_EDNS) || m == NULL) {
            gw_pub_run_lost(run, err);
            break;
        }
        run->ninflight--;
        if (rc == GW_EDNS) {
            m->state = GW_MSG_FAILED;
            m->refused = signed_rcode > 0;
            snprintf(m->err, sizeof m->err, "%s", err);
            run->failed = 1;
            continue;
        }
        if (gw_pub_run_confirmed(run, m) != GW_OK)
            return GW_EDB;
        gw_pub_msg_free(m);
        gw_pubwin_confirmed(&zs->win);
        if (!run->failed) {
            gw_pub_zone_ok(p, zs);
            zs->backoff_ms = GW_PUB_BACKOFF_MIN_MS;
        }
        confirmed = 1;
    }
    return confirmed;
}

/* Publishes the zone's outbox while it has rows: up to GW_PUBWIN_MAX UPDATE
 * messages in flight on one connection, the next one sent as soon as rows
 * are committed (LISTEN) and the window has room, so that the DNS server
 * finds the next message queued when it finishes one. Runs at most
 * GW_PUB_TURN_MS when other zones wait. */
static enum gw_pub_outcome gw_pub_stream(struct gw_publish *p, struct gw_zone_state *zs)
{
    struct gw_pub_run run = {.p = p, .zs = zs};
    enum gw_pub_outcome out = GW_PUB_DBFAIL;
    int want = 1, full = 0, sent_any = 0, stop = 0;
    int64_t turn_end = gw_clock_ms() + GW_PUB_TURN_MS;

    gw_pub_retry_aside(zs);
    run.window = gw_pubwin_window(&zs->win);

    for (;;) {
        if (!run.failed && !stop && want && run.ninflight < run.window) {
            int s = gw_pub_run_send(&run, &full);
            if (s < 0)
                goto done;
            sent_any |= s;
            want = full;
            if (s == 1)
                continue;
        }
        if (run.ninflight == 0)
            break;
        if (p->cfg->nzones > 1 && gw_clock_ms() > turn_end)
            stop = 1;
        /* Wait for an answer, a notification or the stop pipe. */
        int64_t oldest = gw_pub_run_oldest(&run);
        int got = gw_outbox_take_wakeups(p->pg);
        if (got < 0)
            goto done;
        want |= got;
        if (want && !run.failed && !stop && run.ninflight < run.window)
            continue;
        int64_t left = oldest + GW_DNS_TIMEOUT_S * 1000 - gw_clock_ms();
        struct pollfd fds[3] = {{gw_dns_conn_fd(run.conn), POLLIN, 0},
                                {PQsocket(p->pg), POLLIN, 0},
                                {p->wake[0], POLLIN, 0}};
        if (stop)
            fds[2].fd = -1;     /* the stop byte stays in the pipe */
        int r = poll(fds, 3, left < 0 ? 0 : (int)left);
        if (r < 0 && errno != EINTR)
            gw_warn("publisher: poll: %s", strerror(errno));
        if (atomic_load(&p->stop))
            stop = 1;
        if (r > 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP))) {
            int got_answer = gw_pub_run_answers(&run);
            if (got_answer < 0)
                goto done;
            want |= got_answer;
        }
        if (run.ninflight > 0 && gw_clock_ms() >= oldest + GW_DNS_TIMEOUT_S * 1000) {
            char err[256];
            snprintf(err, sizeof err, "no valid answer from %s: no answer within %d s",
                     zs->zone->primary.text, GW_DNS_TIMEOUT_S);
            gw_pub_run_lost(&run, err);
        }
    }
    if (run.failed) {
        out = gw_pub_run_record_failure(&run) == 0 ? GW_PUB_DNSFAIL : GW_PUB_DBFAIL;
        goto done;
    }
    if (!sent_any)
        gw_pub_zone_ok(p, zs);
    out = stop ? GW_PUB_MORE : sent_any ? GW_PUB_DONE : GW_PUB_EMPTY;
done:
    for (size_t i = 0; i < GW_PUBWIN_MAX; i++)
        gw_pub_msg_free(&run.m[i]);
    gw_dns_conn_close(run.conn);
    return out;
}

/* One turn of a zone: the zone's advisory lock (another gateway publishing
 * it means GW_PUB_LOCKED), then gw_pub_stream(). */
static enum gw_pub_outcome gw_pub_zone(struct gw_publish *p, struct gw_zone_state *zs)
{
    char err[300];
    int locked = 0;
    if (gw_outbox_zone_lock(p->pg, zs->zone->name, &locked, err, sizeof err) != GW_OK) {
        gw_warn("publisher: zone %s: %s", zs->zone->name, err);
        return GW_PUB_DBFAIL;
    }
    if (!locked)
        return GW_PUB_LOCKED;
    enum gw_pub_outcome out = gw_pub_stream(p, zs);
    if (out == GW_PUB_DBFAIL)
        return out;     /* the session, and with it the lock, is closed */
    if (gw_outbox_zone_unlock(p->pg, zs->zone->name, err, sizeof err) != GW_OK) {
        gw_warn("publisher: zone %s: %s", zs->zone->name, err);
        out = GW_PUB_DBFAIL;
    }
    return out;
}

/* Takes the zone settings a reload handed over, if any: the next runs
 * connect to the new primary and sign with the new TSIG key. */
static void gw_pub_take_zones(struct gw_publish *p)
{
    pthread_mutex_lock(&p->zmu);
    gw_zone_conf_t *z = p->pending;
    p->pending = NULL;
    pthread_mutex_unlock(&p->zmu);
    if (z == NULL)
        return;
    for (size_t i = 0; i < p->cfg->nzones; i++) {
        gw_zone_conf_clear(&p->zconf[i]);
        p->zconf[i] = z[i];
    }
    free(z);
    gw_info("publisher: zone settings reloaded (primary, TSIG key, default TTL)");
}

static void gw_zones_free(gw_zone_conf_t *z, size_t n)
{
    for (size_t i = 0; z != NULL && i < n; i++)
        gw_zone_conf_clear(&z[i]);
    free(z);
}

int gw_publish_set_zones(gw_publish_t *p, const gw_zone_conf_t *zones, size_t n)
{
    if (p == NULL)
        return GW_OK;
    if (n != p->cfg->nzones)
        return GW_EINVAL;
    gw_zone_conf_t *z = calloc(n ? n : 1, sizeof *z);
    if (z == NULL)
        return GW_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (gw_zone_conf_copy(&z[i], &zones[i]) != GW_OK) {
            gw_zones_free(z, i);
            return GW_ENOMEM;
        }
    pthread_mutex_lock(&p->zmu);
    gw_zone_conf_t *old = p->pending;
    p->pending = z;
    pthread_mutex_unlock(&p->zmu);
    gw_zones_free(old, n);
    return GW_OK;
}

static void *gw_pub_main(void *arg)
{
    struct gw_publish *p = arg;

    while (!atomic_load(&p->stop)) {
        gw_pub_take_zones(p);
        if (p->pg == NULL && gw_pub_connect(p) != 0) {
            int wait = gw_jitter(p, p->db_backoff_ms);
            p->db_backoff_ms = p->db_backoff_ms * 2 > GW_PUB_BACKOFF_MAX_MS
                                   ? GW_PUB_BACKOFF_MAX_MS : p->db_backoff_ms * 2;
            for (int64_t until = gw_clock_ms() + wait; gw_clock_ms() < until;)
                if (gw_pub_wait(p, until - gw_clock_ms(), 0))
                    goto out;
            continue;
        }
        int64_t wait_ms = GW_PUB_SAFETY_MS;
        for (size_t i = 0; i < p->cfg->nzones && p->pg != NULL && !atomic_load(&p->stop); i++) {
            struct gw_zone_state *zs = &p->zs[i];
            int64_t now = gw_clock_ms();
            if (now < zs->next_ms) {
                if (zs->next_ms - now < wait_ms)
                    wait_ms = zs->next_ms - now;
                continue;
            }
            switch (gw_pub_zone(p, zs)) {
            case GW_PUB_MORE:
                wait_ms = 0;
                break;
            case GW_PUB_DNSFAIL:
                if (zs->next_ms - gw_clock_ms() < wait_ms)
                    wait_ms = zs->next_ms - gw_clock_ms();
                break;
            case GW_PUB_DBFAIL:
                gw_pub_disconnect(p);
                break;
            default:
                break;
            }
        }
        if (p->pg == NULL)
            continue;
        int got = gw_outbox_take_wakeups(p->pg);
        if (got < 0) {
            gw_warn("publisher: database connection lost: %s", gw_db_message(PQerrorMessage(p->pg)));
            gw_pub_disconnect(p);
            continue;
        }
        if (got || wait_ms <= 0)
            continue;
        if (gw_pub_wait(p, wait_ms, 1))
            break;
    }
out:
    gw_pub_disconnect(p);
    return NULL;
}

int gw_publish_start(const gw_config_t *cfg, gw_publish_health_t *health, gw_publish_t **out)
{
    gw_publish_t *p = calloc(1, sizeof *p);
    sigset_t all, old;
    int rc = GW_ENOMEM;

    *out = NULL;
    if (p == NULL)
        return GW_ENOMEM;
    p->cfg = cfg;
    p->health = health;
    atomic_store(&health->pg_up, 0);
    atomic_store(&health->nfailing, 0);
    p->wake[0] = p->wake[1] = -1;
    p->db_backoff_ms = GW_PUB_BACKOFF_MIN_MS;
    p->seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    pthread_mutex_init(&p->zmu, NULL);
    p->zs = calloc(cfg->nzones ? cfg->nzones : 1, sizeof *p->zs);
    p->zconf = calloc(cfg->nzones ? cfg->nzones : 1, sizeof *p->zconf);
    if (p->zs == NULL || p->zconf == NULL)
        goto fail;
    for (size_t i = 0; i < cfg->nzones; i++) {
        if (gw_zone_conf_copy(&p->zconf[i], &cfg->zones[i]) != GW_OK)
            goto fail;
        p->zs[i].zone = &p->zconf[i];
        p->zs[i].backoff_ms = GW_PUB_BACKOFF_MIN_MS;
        gw_pubwin_init(&p->zs[i].win, GW_PUBLISH_BATCH);
    }
    if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = GW_EIO;
        goto fail;
    }
    /* Signals are for the event loop's thread only. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&p->thread, NULL, gw_pub_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        gw_error("cannot start the publisher thread: %s", strerror(e));
        rc = GW_EIO;
        goto fail;
    }
    *out = p;
    return GW_OK;
fail:
    if (p->wake[0] >= 0) {
        close(p->wake[0]);
        close(p->wake[1]);
    }
    for (size_t i = 0; p->zs != NULL && i < cfg->nzones; i++)
        free(p->zs[i].aside);
    free(p->zs);
    gw_zones_free(p->zconf, cfg->nzones);
    free(p);
    return rc;
}

void gw_publish_stop(gw_publish_t *p)
{
    if (p == NULL)
        return;
    atomic_store(&p->stop, 1);
    ssize_t w = write(p->wake[1], "x", 1);
    (void)w;
    pthread_join(p->thread, NULL);
    close(p->wake[0]);
    close(p->wake[1]);
    for (size_t i = 0; i < p->cfg->nzones; i++)
        free(p->zs[i].aside);
    free(p->zs);
    gw_zones_free(p->zconf, p->cfg->nzones);
    gw_zones_free(p->pending, p->cfg->nzones);
    pthread_mutex_destroy(&p->zmu);
    free(p);
}
