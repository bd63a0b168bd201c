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
#define GW_XSTR(x) #x
#define GW_STR(x) GW_XSTR(x)

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

static int gw_pub_cmd(struct gw_publish *p, const char *sql)
{
    PGresult *r = PQexec(p->pg, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        gw_warn("publisher: %s failed: %s", sql, gw_pg_line(PQresultErrorMessage(r)));
    PQclear(r);
    return ok ? 0 : -1;
}

/* "{1,2,3}" from the ids (column 0) of the n rows rows[0..n). */
static char *gw_id_array(const PGresult *res, const size_t *rows, size_t n)
{
    size_t cap = 3 + n * 21, len = 0;
    char *s = malloc(cap);
    if (s == NULL)
        return NULL;
    s[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(s + len, cap - len, "%s%s", i ? "," : "",
                         PQgetvalue(res, (int)rows[i], 0));
        if (k < 0 || (size_t)k >= cap - len) {
            free(s);
            return NULL;
        }
        len += (size_t)k;
    }
    s[len++] = '}';
    s[len] = '\0';
    return s;
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

static enum gw_pub_outcome gw_pub_zone(struct gw_publish *p, struct gw_zone_state *zs)
{
    const gw_zone_conf_t *z = zs->zone;
    const char *zp[1] = {z->name};
    PGresult *res = NULL, *r = NULL;
    gw_dns_change_t *ch = NULL;
    char *ids = NULL, err[512];
    size_t *ord = NULL, *grp = NULL;
    enum gw_pub_outcome out = GW_PUB_DBFAIL;
    int in_tx = 0;

    if (gw_pub_cmd(p, "BEGIN") != 0)
        goto done;
    in_tx = 1;
    r = PQexecParams(p->pg, "SELECT pg_try_advisory_xact_lock(hashtext('ddns_outbox:' || $1))",
                     1, NULL, zp, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        gw_warn("publisher: zone %s: advisory lock: %s", z->name, gw_pg_line(PQresultErrorMessage(r)));
        goto done;
    }
    if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        out = GW_PUB_LOCKED;
        goto done;
    }
    PQclear(r);
    r = NULL;
    res = PQexecParams(p->pg,
                       "SELECT id, fqdn, rrtype, host(address), ttl FROM dns_outbox "
                       "WHERE zone = $1 ORDER BY id LIMIT " GW_STR(GW_PUBLISH_BATCH) " FOR UPDATE",
                       1, NULL, zp, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        gw_warn("publisher: zone %s: reading the outbox: %s", z->name,
                gw_pg_line(PQresultErrorMessage(res)));
        goto done;
    }
    size_t n = (size_t)PQntuples(res);
    if (n == 0) {
        out = gw_pub_cmd(p, "COMMIT") == 0 ? GW_PUB_EMPTY : GW_PUB_DBFAIL;
        in_tx = 0;
        if (out == GW_PUB_EMPTY)
            gw_pub_zone_ok(p, zs);
        goto done;
    }
    /* Coalesce: one change per (fqdn, type), the newest row's. */
    ord = malloc(n * sizeof *ord);
    grp = malloc(n * sizeof *grp);
    ch = calloc(n, sizeof *ch);
    if (ord == NULL || grp == NULL || ch == NULL)
        goto done;
    size_t nch = gw_pub_coalesce(res, n, ord, grp);
    for (size_t i = 0; i < nch; i++) {
        int row = (int)ord[i];
        ch[i].fqdn = PQgetvalue(res, row, 1);
        ch[i].is_aaaa = strcmp(PQgetvalue(res, row, 2), "AAAA") == 0;
        ch[i].address = PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3);
        ch[i].ttl = PQgetisnull(res, row, 4) ? 0 : atoi(PQgetvalue(res, row, 4));
    }
    int64_t t0 = gw_now_ms();
    size_t sent = nch;
    int rc = gw_dns_send_update(z, ch, &sent, err, sizeof err);
    int64_t took = gw_now_ms() - t0;
    if (rc == GW_OK) {
        /* Confirmed: the rows of every sent change's group leave the
         * outbox (the sent row and the older ones it superseded). A newer
         * row that arrived after the SELECT is not among them. */
        size_t ndel = 0;
        for (size_t i = 0; i < n; i++)
            if (grp[i] < sent)
                ord[ndel++] = i;
        ids = gw_id_array(res, ord, ndel);
        const char *dp[1] = {ids};
        if (ids == NULL)
            goto done;
        r = PQexecParams(p->pg, "DELETE FROM dns_outbox WHERE id = ANY($1::bigint[])", 1, NULL,
                         dp, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            gw_warn("publisher: zone %s: deleting published rows: %s", z->name,
                    gw_pg_line(PQresultErrorMessage(r)));
            goto done;
        }
        if (gw_pub_cmd(p, "COMMIT") != 0)
            goto done;
        in_tx = 0;
        gw_info("published zone=%s changes=%zu rows=%zu ms=%lld", z->name, sent, ndel,
                (long long)took);
        gw_metrics_inc(GW_M_PUBLISH_OK);
        gw_metrics_add(GW_M_PUBLISH_CHANGES, sent);
        gw_pub_zone_ok(p, zs);
        zs->backoff_ms = GW_PUB_BACKOFF_MIN_MS;
        out = (ndel < n || n == GW_PUBLISH_BATCH) ? GW_PUB_MORE : GW_PUB_DONE;
        goto done;
    }

    /* Not confirmed: nothing may be deleted. Record the attempt. */
    if (gw_pub_cmd(p, "ROLLBACK") != 0)
        goto done;
    in_tx = 0;
    for (size_t i = 0; i < n; i++)
        ord[i] = i;
    ids = gw_id_array(res, ord, n);
    const char *up[2] = {ids, err};
    if (ids == NULL)
        goto done;
    r = PQexecParams(p->pg,
                     "UPDATE dns_outbox SET attempts = attempts + 1, last_error = $2 "
                     "WHERE id = ANY($1::bigint[])",
                     2, NULL, up, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        gw_warn("publisher: zone %s: recording the failed attempt: %s", z->name,
                gw_pg_line(PQresultErrorMessage(r)));
        goto done;
    }
    gw_metrics_inc(GW_M_PUBLISH_FAILED);
    gw_pub_zone_failed(p, zs, err);
    int wait = gw_jitter(p, zs->backoff_ms);
    gw_warn("publisher: zone %s: %zu changes not published (%s); retrying in %d ms", z->name, n,
            err, wait);
    zs->next_ms = gw_now_ms() + wait;
    zs->backoff_ms = zs->backoff_ms * 2 > GW_PUB_BACKOFF_MAX_MS ? GW_PUB_BACKOFF_MAX_MS
                                                                : zs->backoff_ms * 2;
    out = GW_PUB_DNSFAIL;
done:
    if (in_tx && out != GW_PUB_DBFAIL)
        out = gw_pub_cmd(p, "ROLLBACK") == 0 ? out : GW_PUB_DBFAIL;
    else if (in_tx && PQstatus(p->pg) == CONNECTION_OK)
        (void)gw_pub_cmd(p, "ROLLBACK");
    PQclear(r);
    PQclear(res);
    free(ch);
    free(ids);
    free(ord);
    free(grp);
    return out;
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
    free(p->zs);
    free(p);
}
