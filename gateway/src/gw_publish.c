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
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "gw_dns.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_metrics.h"

#define GW_PUB_BACKOFF_MIN_MS 200
/* Retries of an unreachable DNS server or database stay this frequent so
 * that the backlog is published within seconds of its return. */
#define GW_PUB_BACKOFF_MAX_MS 2000
#define GW_PUB_SAFETY_MS 1000
/* UPDATE messages of a zone in flight at once. */
#define GW_PUB_WINDOW 2
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
    /* Rows per message: GW_PUBLISH_BATCH, halved after the server refused a
     * message (to find the change it refuses), doubled after a success. */
    size_t limit;
    /* Rows whose change the server refused alone, not sent again before
     * their time (in memory: a restarted publisher finds them again); NULL
     * until the zone's first refusal. */
    struct gw_pub_aside {
        char id[24];
        char fqdn[GW_DNAME_MAX + 1];
        char rrtype[8];
        int64_t retry_ms;
    } *aside;
    size_t naside;
};

struct gw_publish {
    const gw_config_t *cfg;
    pthread_t thread;
    int wake[2];        /* self-pipe: a byte means stop */
    atomic_int stop;
    PGconn *pg;
    int db_backoff_ms;
    struct gw_zone_state *zs;
    unsigned int seed;
    /* health, read by other threads (gw_publish_health) */
    atomic_int pg_up;
    atomic_int nfailing;
    pthread_mutex_t why_mu;
    char why[300];      /* the last failure of a zone still failing */
};

static void gw_pub_zone_ok(struct gw_publish *p, struct gw_zone_state *zs)
{
    if (zs->failing) {
        zs->failing = 0;
        atomic_fetch_sub(&p->nfailing, 1);
    }
}

static void gw_pub_zone_failed(struct gw_publish *p, struct gw_zone_state *zs, const char *err)
{
    if (!zs->failing) {
        zs->failing = 1;
        atomic_fetch_add(&p->nfailing, 1);
    }
    pthread_mutex_lock(&p->why_mu);
    snprintf(p->why, sizeof p->why, "zone %.60s: %.200s", zs->zone->name, err);
    pthread_mutex_unlock(&p->why_mu);
}

int gw_publish_health(gw_publish_t *p, char *why, size_t whylen)
{
    if (p == NULL) {
        snprintf(why, whylen, "publisher not running");
        return GW_ECLOSED;
    }
    if (!atomic_load(&p->pg_up)) {
        snprintf(why, whylen, "publisher: no database connection");
        return GW_EDB;
    }
    if (atomic_load(&p->nfailing) > 0) {
        pthread_mutex_lock(&p->why_mu);
        snprintf(why, whylen, "publisher: %.280s", p->why);
        pthread_mutex_unlock(&p->why_mu);
        return GW_EDNS;
    }
    return GW_OK;
}

static int64_t gw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *gw_pg_line(const char *m)
{
    static __thread char buf[400];
    size_t n = 0;
    if (m == NULL || *m == '\0')
        return "unknown error";
    for (; *m && n < sizeof buf - 1; m++)
        buf[n++] = *m == '\n' ? ' ' : *m;
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
    return buf;
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
    atomic_store(&p->pg_up, 0);
}

static int gw_pub_connect(struct gw_publish *p)
{
    const char *kw[] = {"application_name", "connect_timeout", "dbname", NULL};
    const char *val[] = {"ddns-gateway-publisher", "5", gw_config_publisher_conninfo(p->cfg), NULL};
    PGresult *r = NULL;

    p->pg = PQconnectdbParams(kw, val, 1);
    if (p->pg == NULL || PQstatus(p->pg) != CONNECTION_OK) {
        gw_warn("publisher: cannot connect to the database: %s",
                gw_pg_line(p->pg ? PQerrorMessage(p->pg) : NULL));
        goto fail;
    }
    r = PQexec(p->pg, "LISTEN ddns_outbox");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        gw_warn("publisher: LISTEN failed: %s", gw_pg_line(PQresultErrorMessage(r)));
        goto fail;
    }
    PQclear(r);
    gw_info("publisher: connected to the database, listening on channel ddns_outbox");
    p->db_backoff_ms = GW_PUB_BACKOFF_MIN_MS;
    atomic_store(&p->pg_up, 1);
    return 0;
fail:
    PQclear(r);
    gw_pub_disconnect(p);
    return -1;
}

/* A bigint[] parameter built from outbox ids: "{1,2,3}". */
struct gw_ids {
    char *s;
    size_t len, cap, n;
};

static int gw_ids_add(struct gw_ids *a, const char *id)
{
    size_t need = a->len + strlen(id) + 3;
    if (need > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        while (cap < need)
            cap *= 2;
        char *s = realloc(a->s, cap);
        if (s == NULL)
            return -1;
        a->s = s;
        a->cap = cap;
    }
    a->len += (size_t)sprintf(a->s + a->len, "%s%s", a->n ? "," : "{", id);
    a->n++;
    return 0;
}

/* The finished array text ("{}" when empty), or NULL when out of memory.
 * Call once. */
static const char *gw_ids_text(struct gw_ids *a)
{
    if (a->cap < a->len + 3) {
        char *s = realloc(a->s, a->len + 3);
        if (s == NULL)
            return NULL;
        a->s = s;
        a->cap = a->len + 3;
    }
    size_t len = a->len;
    if (a->n == 0)
        a->s[len++] = '{';
    a->s[len] = '}';
    a->s[len + 1] = '\0';
    return a->s;
}

/* 1 when outbox rows ra and rb of res are for the same name and type. */
static int gw_pub_same_rrset(const PGresult *res, size_t ra, size_t rb)
{
    return strcmp(PQgetvalue(res, (int)ra, 1), PQgetvalue(res, (int)rb, 1)) == 0 &&
           strcmp(PQgetvalue(res, (int)ra, 2), PQgetvalue(res, (int)rb, 2)) == 0;
}

/* qsort_r order of outbox row numbers: by name, type, then row number
 * (rows come in id order, so the row number orders by id). */
static int gw_pub_row_cmp(const void *a, const void *b, void *arg)
{
    const PGresult *res = arg;
    int ra = (int)*(const size_t *)a, rb = (int)*(const size_t *)b;
    int c = strcmp(PQgetvalue(res, ra, 1), PQgetvalue(res, rb, 1));
    if (c == 0)
        c = strcmp(PQgetvalue(res, ra, 2), PQgetvalue(res, rb, 2));
    return c != 0 ? c : (ra > rb) - (ra < rb);
}

static int gw_pub_size_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Coalesces the n outbox rows of res (in id order) to one change per
 * (fqdn, rrtype): the newest row. On return ord[0..k) are the row numbers
 * of the k newest rows in id order, and grp[row] is the position in ord of
 * the change that supersedes (or is) the row. Returns k. */
static size_t gw_pub_coalesce(const PGresult *res, size_t n, size_t *ord, size_t *grp)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        ord[i] = i;
    qsort_r(ord, n, sizeof *ord, gw_pub_row_cmp, (void *)res);
    /* the last row of each run of equal (fqdn, rrtype) is the newest;
     * until the final numbering, grp holds the newest row's number */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && gw_pub_same_rrset(res, ord[i], ord[j + 1]))
            j++;
        for (size_t m = i; m <= j; m++)
            grp[ord[m]] = ord[j];
        ord[k++] = ord[j];
        i = j + 1;
    }
    qsort(ord, k, sizeof *ord, gw_pub_size_cmp);
    /* newest row number -> its position in ord */
    for (size_t i = 0; i < n; i++) {
        size_t lo = 0, hi = k;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (ord[mid] < grp[i])
                lo = mid + 1;
            else
                hi = mid;
        }
        grp[i] = lo;
    }
    return k;
}

/* Takes the notifications libpq holds; 1 when there was one. */
static int gw_pub_drain_notifies(struct gw_publish *p)
{
    int got = 0;
    if (!PQconsumeInput(p->pg))
        return -1;
    for (PGnotify *n; (n = PQnotifies(p->pg)) != NULL;) {
        got = 1;
        PQfreemem(n);
    }
    return got;
}

/* One UPDATE message of a run: its outbox rows and their coalescing. */
struct gw_pub_msg {
    enum { GW_MSG_FREE, GW_MSG_INFLIGHT, GW_MSG_FAILED } state;
    PGresult *res;          /* id, fqdn, rrtype, host(address), ttl; id order */
    size_t n;               /* rows */
    size_t *ord, *grp;      /* gw_pub_coalesce() */
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
    struct gw_pub_msg m[GW_PUB_WINDOW];
    size_t ninflight;
    size_t window;          /* GW_PUB_WINDOW, or 1 while a refused change is sought */
    int failed;             /* a message failed: send no more */
};

static void gw_pub_msg_free(struct gw_pub_msg *m)
{
    PQclear(m->res);
    free(m->ord);
    free(m->grp);
    free(m->gone);
    memset(m, 0, sizeof *m);
}

/* The ids not to read: every row of the run's messages and the rows set
 * aside. */
static const char *gw_pub_run_ids(struct gw_pub_run *run, struct gw_ids *ids)
{
    for (size_t i = 0; i < GW_PUB_WINDOW; i++)
        for (size_t r = 0; r < run->m[i].n; r++)
            if (gw_ids_add(ids, PQgetvalue(run->m[i].res, (int)r, 0)) != 0)
                return NULL;
    for (size_t i = 0; i < run->zs->naside; i++)
        if (gw_ids_add(ids, run->zs->aside[i].id) != 0)
            return NULL;
    return gw_ids_text(ids);
}

/* Every message in flight failed with why (the connection is gone). */
static void gw_pub_run_lost(struct gw_pub_run *run, const char *why)
{
    char err[sizeof run->m[0].err];
    snprintf(err, sizeof err, "%s", why);
    for (size_t i = 0; i < GW_PUB_WINDOW; i++)
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
    struct gw_ids ids = {0};
    char limit[24];
    const char *sp[3] = {z->name, NULL, limit};
    int rc = -1;

    *full = 0;
    snprintf(limit, sizeof limit, "%zu", run->zs->limit);
    for (size_t i = 0; i < GW_PUB_WINDOW && m == NULL; i++)
        if (run->m[i].state == GW_MSG_FREE)
            m = &run->m[i];
    if (m == NULL || (sp[1] = gw_pub_run_ids(run, &ids)) == NULL)
        goto out;
    m->res = PQexecParams(p->pg,
                          "SELECT id, fqdn, rrtype, host(address), ttl FROM dns_outbox "
                          "WHERE zone = $1 AND id <> ALL($2::bigint[]) "
                          "ORDER BY id LIMIT $3::int",
                          3, NULL, sp, NULL, NULL, 0);
    if (PQresultStatus(m->res) != PGRES_TUPLES_OK) {
        gw_warn("publisher: zone %s: reading the outbox: %s", z->name,
                gw_pg_line(PQresultErrorMessage(m->res)));
        goto out;
    }
    m->n = (size_t)PQntuples(m->res);
    if (m->n == 0) {
        rc = 0;
        goto out;
    }
    *full = m->n == run->zs->limit;
    /* Coalesce: one change per (fqdn, type), the newest row's. */
    m->ord = malloc(m->n * sizeof *m->ord);
    m->grp = malloc(m->n * sizeof *m->grp);
    m->gone = calloc(m->n, 1);
    ch = calloc(m->n, sizeof *ch);
    if (m->ord == NULL || m->grp == NULL || m->gone == NULL || ch == NULL)
        goto out;
    m->nch = gw_pub_coalesce(m->res, m->n, m->ord, m->grp);
    for (size_t i = 0; i < m->nch; i++) {
        int row = (int)m->ord[i];
        ch[i].fqdn = PQgetvalue(m->res, row, 1);
        ch[i].is_aaaa = strcmp(PQgetvalue(m->res, row, 2), "AAAA") == 0;
        ch[i].address = PQgetisnull(m->res, row, 3) ? NULL : PQgetvalue(m->res, row, 3);
        ch[i].ttl = PQgetisnull(m->res, row, 4) ? 0 : atoi(PQgetvalue(m->res, row, 4));
    }
    rc = 1;
    m->sent = m->nch;
    m->sent_ms = gw_now_ms();
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
    free(ids.s);
    return rc;
}

/* 1 when a change m sent is for fqdn and rrtype and comes from a row newer
 * than id. */
static int gw_pub_supersedes(const struct gw_pub_msg *m, const char *id, const char *fqdn,
                             const char *rrtype)
{
    for (size_t c = 0; c < m->sent; c++) {
        int row = (int)m->ord[c];
        if (strcmp(fqdn, PQgetvalue(m->res, row, 1)) == 0 &&
            strcmp(rrtype, PQgetvalue(m->res, row, 2)) == 0 &&
            atoll(id) < atoll(PQgetvalue(m->res, row, 0)))
            return 1;
    }
    return 0;
}

/* The server refused the one change of the failed message f: its rows are
 * set aside so that the others are published meanwhile. The list is made on
 * the first refusal (most zones never need it). */
static void gw_pub_set_aside(struct gw_zone_state *zs, const struct gw_pub_msg *f)
{
    const char *fqdn = PQgetvalue(f->res, (int)f->ord[0], 1);
    if (zs->aside == NULL)
        zs->aside = calloc(GW_PUB_SET_ASIDE_MAX, sizeof *zs->aside);
    if (zs->aside == NULL) {
        gw_warn("publisher: zone %s: %s refused alone; out of memory to set it aside, "
                "retrying it with the others", zs->zone->name, fqdn);
        return;
    }
    for (size_t i = 0; i < f->n && zs->naside < GW_PUB_SET_ASIDE_MAX; i++) {
        if (f->gone[i] || f->grp[i] >= f->sent)
            continue;
        struct gw_pub_aside *a = &zs->aside[zs->naside++];
        snprintf(a->id, sizeof a->id, "%s", PQgetvalue(f->res, (int)i, 0));
        snprintf(a->fqdn, sizeof a->fqdn, "%s", PQgetvalue(f->res, (int)i, 1));
        snprintf(a->rrtype, sizeof a->rrtype, "%s", PQgetvalue(f->res, (int)i, 2));
        a->retry_ms = gw_now_ms() + GW_PUB_SET_ASIDE_MS;
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
    struct gw_ids ids = {0};
    const char *dp[1] = {NULL};
    PGresult *r = NULL;
    int rc = -1;

    for (size_t i = 0; i < m->n; i++)
        if (m->grp[i] < m->sent && gw_ids_add(&ids, PQgetvalue(m->res, (int)i, 0)) != 0)
            goto out;
    for (size_t k = 0; k < GW_PUB_WINDOW; k++) {
        struct gw_pub_msg *f = &run->m[k];
        if (f->state != GW_MSG_FAILED)
            continue;
        for (size_t i = 0; i < f->n; i++) {
            const char *id = PQgetvalue(f->res, (int)i, 0);
            if (f->gone[i] || !gw_pub_supersedes(m, id, PQgetvalue(f->res, (int)i, 1),
                                                 PQgetvalue(f->res, (int)i, 2)))
                continue;
            f->gone[i] = 1;
            if (gw_ids_add(&ids, id) != 0)
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
        if (gw_ids_add(&ids, zs->aside[a].id) != 0)
            goto out;
        zs->aside[a] = zs->aside[--zs->naside];
    }
    size_t ndel = ids.n;
    if ((dp[0] = gw_ids_text(&ids)) == NULL)
        goto out;
    r = PQexecParams(p->pg, "DELETE FROM dns_outbox WHERE id = ANY($1::bigint[])", 1, NULL, dp,
                     NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        gw_warn("publisher: zone %s: deleting published rows: %s", z->name,
                gw_pg_line(PQresultErrorMessage(r)));
        goto out;
    }
    gw_info("published zone=%s changes=%zu rows=%zu ms=%lld", z->name, m->sent, ndel,
            (long long)(gw_now_ms() - m->sent_ms));
    gw_metrics_inc(GW_M_PUBLISH_OK);
    gw_metrics_add(GW_M_PUBLISH_CHANGES, m->sent);
    rc = 0;
out:
    PQclear(r);
    free(ids.s);
    return rc;
}

/* After a failed run: the rows of the failed messages that no later
 * message superseded get attempts + 1 and the error, and the zone waits.
 * 0, or -1 on a database error. */
static int gw_pub_run_record_failure(struct gw_pub_run *run)
{
    struct gw_publish *p = run->p;
    struct gw_zone_state *zs = run->zs;
    int rc = 0, other = 0;
    size_t nrows = 0, halve = 0;
    const char *why = "not confirmed";

    for (size_t k = 0; k < GW_PUB_WINDOW; k++) {
        struct gw_pub_msg *f = &run->m[k];
        if (f->state != GW_MSG_FAILED)
            continue;
        struct gw_ids ids = {0};
        const char *up[2] = {NULL, f->err};
        int oom = 0;
        for (size_t i = 0; i < f->n && !oom; i++)
            oom = !f->gone[i] && gw_ids_add(&ids, PQgetvalue(f->res, (int)i, 0)) != 0;
        size_t cnt = ids.n;
        if (oom || (up[0] = gw_ids_text(&ids)) == NULL) {
            free(ids.s);
            return -1;
        }
        PGresult *r = PQexecParams(p->pg,
                                   "UPDATE dns_outbox SET attempts = attempts + 1, last_error = $2 "
                                   "WHERE id = ANY($1::bigint[])",
                                   2, NULL, up, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            gw_warn("publisher: zone %s: recording the failed attempt: %s", zs->zone->name,
                    gw_pg_line(PQresultErrorMessage(r)));
            rc = -1;
        }
        PQclear(r);
        free(ids.s);
        gw_metrics_inc(GW_M_PUBLISH_FAILED);
        gw_pub_zone_failed(p, zs, f->err);
        nrows += cnt;
        why = f->err;
        if (rc != 0)
            return rc;
        if (f->refused && f->sent > 1) {
            /* The server refused one message with several changes: send
             * fewer at a time, one message in flight, to find the change it
             * refuses (the server may apply queued messages together). */
            if (halve == 0 || f->sent / 2 < halve)
                halve = f->sent / 2;
        } else if (f->refused) {
            gw_pub_set_aside(zs, f);
            other = 1;
        } else {
            other = 1;
        }
    }
    if (halve > 0 && !other) {
        zs->limit = halve;
        zs->next_ms = gw_now_ms();
        gw_warn("publisher: zone %s: %zu changes not published (%s); looking for the change "
                "refused: %zu rows per message", zs->zone->name, nrows, why, zs->limit);
        return 0;
    }
    if (halve > 0)
        zs->limit = halve;
    int wait = gw_jitter(p, zs->backoff_ms);
    gw_warn("publisher: zone %s: %zu changes not published (%s); retrying in %d ms",
            zs->zone->name, nrows, why, wait);
    zs->next_ms = gw_now_ms() + wait;
    zs->backoff_ms = zs->backoff_ms * 2 > GW_PUB_BACKOFF_MAX_MS ? GW_PUB_BACKOFF_MAX_MS
                                                                : zs->backoff_ms * 2;
    return 0;
}

/* Publishes the zone's outbox while it has rows: up to GW_PUB_WINDOW UPDATE
 * messages in flight on one connection, the next one sent as soon as rows
 * are committed (LISTEN) and the window has room, so that the DNS server
 * finds the next message queued when it finishes one. Runs at most
 * GW_PUB_TURN_MS when other zones wait. */
static enum gw_pub_outcome gw_pub_stream(struct gw_publish *p, struct gw_zone_state *zs)
{
    struct gw_pub_run run = {.p = p, .zs = zs};
    enum gw_pub_outcome out = GW_PUB_DBFAIL;
    int want = 1, full = 0, sent_any = 0, stop = 0;
    int64_t turn_end = gw_now_ms() + GW_PUB_TURN_MS;

    /* Rows set aside whose time came are tried again, one row at a time
     * first. */
    for (size_t a = 0; a < zs->naside;)
        if (zs->aside[a].retry_ms <= gw_now_ms()) {
            zs->aside[a] = zs->aside[--zs->naside];
            zs->limit = 1;
        } else {
            a++;
        }
    run.window = zs->limit < GW_PUBLISH_BATCH ? 1 : GW_PUB_WINDOW;

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
        if (p->cfg->nzones > 1 && gw_now_ms() > turn_end)
            stop = 1;
        /* Wait for an answer, a notification or the stop pipe. */
        int64_t oldest = INT64_MAX;
        for (size_t i = 0; i < GW_PUB_WINDOW; i++)
            if (run.m[i].state == GW_MSG_INFLIGHT && run.m[i].sent_ms < oldest)
                oldest = run.m[i].sent_ms;
        int got = gw_pub_drain_notifies(p);
        if (got < 0)
            goto done;
        want |= got;
        if (want && !run.failed && !stop && run.ninflight < run.window)
            continue;
        int64_t left = oldest + GW_DNS_TIMEOUT_S * 1000 - gw_now_ms();
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
        /* Every whole answer received (one read may bring several). */
        while (r > 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) && run.ninflight > 0) {
            char err[256];
            uint16_t id = 0;
            int signed_rcode = -1;
            int rc = gw_dns_conn_recv(run.conn, 0, &id, &signed_rcode, err, sizeof err);
            if (rc == GW_ETIMEDOUT)
                break;
            struct gw_pub_msg *m = NULL;
            for (size_t i = 0; i < GW_PUB_WINDOW; i++)
                if (run.m[i].state == GW_MSG_INFLIGHT && run.m[i].id == id)
                    m = &run.m[i];
            if ((rc != GW_OK && rc != GW_EDNS) || m == NULL) {
                gw_pub_run_lost(&run, err);
                break;
            }
            run.ninflight--;
            if (rc == GW_EDNS) {
                m->state = GW_MSG_FAILED;
                m->refused = signed_rcode > 0;
                snprintf(m->err, sizeof m->err, "%s", err);
                run.failed = 1;
                continue;
            }
            if (gw_pub_run_confirmed(&run, m) != 0)
                goto done;
            gw_pub_msg_free(m);
            if (zs->limit < GW_PUBLISH_BATCH)
                zs->limit = zs->limit * 2 < GW_PUBLISH_BATCH ? zs->limit * 2 : GW_PUBLISH_BATCH;
            if (!run.failed) {
                gw_pub_zone_ok(p, zs);
                zs->backoff_ms = GW_PUB_BACKOFF_MIN_MS;
            }
            want = 1;
        }
        if (run.ninflight > 0 && gw_now_ms() >= oldest + GW_DNS_TIMEOUT_S * 1000) {
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
    for (size_t i = 0; i < GW_PUB_WINDOW; i++)
        gw_pub_msg_free(&run.m[i]);
    gw_dns_conn_close(run.conn);
    return out;
}

/* One turn of a zone: the zone's advisory lock (another gateway publishing
 * it means GW_PUB_LOCKED), then gw_pub_stream(). */
static enum gw_pub_outcome gw_pub_zone(struct gw_publish *p, struct gw_zone_state *zs)
{
    const char *zp[1] = {zs->zone->name};
    PGresult *r = PQexecParams(p->pg, "SELECT pg_try_advisory_lock(hashtext('ddns_outbox:' || $1))",
                               1, NULL, zp, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        gw_warn("publisher: zone %s: advisory lock: %s", zs->zone->name,
                gw_pg_line(PQresultErrorMessage(r)));
        PQclear(r);
        return GW_PUB_DBFAIL;
    }
    int locked = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!locked)
        return GW_PUB_LOCKED;
    enum gw_pub_outcome out = gw_pub_stream(p, zs);
    if (out == GW_PUB_DBFAIL)
        return out;     /* the session, and with it the lock, is closed */
    r = PQexecParams(p->pg, "SELECT pg_advisory_unlock(hashtext('ddns_outbox:' || $1))", 1, NULL,
                     zp, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        gw_warn("publisher: zone %s: advisory unlock: %s", zs->zone->name,
                gw_pg_line(PQresultErrorMessage(r)));
        out = GW_PUB_DBFAIL;
    }
    PQclear(r);
    return out;
}

static void *gw_pub_main(void *arg)
{
    struct gw_publish *p = arg;

    while (!atomic_load(&p->stop)) {
        if (p->pg == NULL && gw_pub_connect(p) != 0) {
            int wait = gw_jitter(p, p->db_backoff_ms);
            p->db_backoff_ms = p->db_backoff_ms * 2 > GW_PUB_BACKOFF_MAX_MS
                                   ? GW_PUB_BACKOFF_MAX_MS : p->db_backoff_ms * 2;
            for (int64_t until = gw_now_ms() + wait; gw_now_ms() < until;)
                if (gw_pub_wait(p, until - gw_now_ms(), 0))
                    goto out;
            continue;
        }
        int64_t wait_ms = GW_PUB_SAFETY_MS;
        for (size_t i = 0; i < p->cfg->nzones && p->pg != NULL && !atomic_load(&p->stop); i++) {
            struct gw_zone_state *zs = &p->zs[i];
            int64_t now = gw_now_ms();
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
                if (zs->next_ms - gw_now_ms() < wait_ms)
                    wait_ms = zs->next_ms - gw_now_ms();
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
        int got = gw_pub_drain_notifies(p);
        if (got < 0) {
            gw_warn("publisher: database connection lost: %s", gw_pg_line(PQerrorMessage(p->pg)));
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

int gw_publish_start(const gw_config_t *cfg, gw_publish_t **out)
{
    gw_publish_t *p = calloc(1, sizeof *p);
    sigset_t all, old;
    int rc = GW_ENOMEM;

    *out = NULL;
    if (p == NULL)
        return GW_ENOMEM;
    p->cfg = cfg;
    p->wake[0] = p->wake[1] = -1;
    p->db_backoff_ms = GW_PUB_BACKOFF_MIN_MS;
    p->seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    pthread_mutex_init(&p->why_mu, NULL);
    p->zs = calloc(cfg->nzones ? cfg->nzones : 1, sizeof *p->zs);
    if (p->zs == NULL)
        goto fail;
    for (size_t i = 0; i < cfg->nzones; i++) {
        p->zs[i].zone = &cfg->zones[i];
        p->zs[i].backoff_ms = GW_PUB_BACKOFF_MIN_MS;
        p->zs[i].limit = GW_PUBLISH_BATCH;
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
    free(p);
}
