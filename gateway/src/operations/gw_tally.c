/* gw_tally: counts written to the database (see gw_tally.h). */
#include "gw_tally.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gw_err.h"
#include "gw_limit.h"
#include "gw_log.h"
#include "gw_metrics.h"

#define GW_TALLY_TIMEOUT_S 10
#define GW_TALLY_COMPACT_TICKS (60 / GW_TALLY_TICK_S)

struct gw_tally {
    gw_db_t *db;
    struct event *tick;
    unsigned long long flushed_updates, flushed_errors;
    unsigned long long sending_updates, sending_errors;
    gw_db_job_t *flush_job;
    gw_db_job_t *compact_job;
    gw_db_job_t *sources_job;
    unsigned ticks;
    char gateway_name[128];
};

static void gw_tally_flush_cb(void *arg, int err, const PGresult *res)
{
    gw_tally_t *t = arg;
    (void)res;
    t->flush_job = NULL;
    if (err == GW_OK) {
        t->flushed_updates = t->sending_updates;
        t->flushed_errors = t->sending_errors;
    }
}

static void gw_tally_compact_cb(void *arg, int err, const PGresult *res)
{
    gw_tally_t *t = arg;
    (void)err;
    (void)res;
    t->compact_job = NULL;
}

static void gw_tally_sources_cb(void *arg, int err, const PGresult *res)
{
    gw_tally_t *t = arg;
    (void)res;
    t->sources_job = NULL;
    if (err != GW_OK)
        gw_warn("failed authentications per source not recorded (database %s)",
                err == GW_ETIMEDOUT ? "did not answer in time" : "error");
}

static void gw_tally_updates(gw_tally_t *t)
{
    unsigned long long u, e;
    gw_metrics_update_totals(&u, &e);
    if (t->flush_job != NULL || (u == t->flushed_updates && e == t->flushed_errors))
        return;
    char du[24], de[24];
    snprintf(du, sizeof du, "%llu", u - t->flushed_updates);
    snprintf(de, sizeof de, "%llu", e - t->flushed_errors);
    t->sending_updates = u;
    t->sending_errors = e;
    const char *p[3] = {t->gateway_name, du, de};
    if (gw_db_query_timed(t->db,
                          "WITH old AS (DELETE FROM update_minutes WHERE minute < "
                          "date_trunc('minute', now()) - interval '7 days') "
                          "INSERT INTO update_minutes (minute, gateway, updates, errors) "
                          "VALUES (date_trunc('minute', now()), $1, $2::bigint, $3::bigint) "
                          "ON CONFLICT (minute, gateway) DO UPDATE SET "
                          "updates = update_minutes.updates + EXCLUDED.updates, "
                          "errors = update_minutes.errors + EXCLUDED.errors",
                          3, p, GW_TALLY_TIMEOUT_S, gw_tally_flush_cb, t,
                          &t->flush_job) != GW_OK)
        t->flush_job = NULL;
}

static void gw_tally_sources(gw_tally_t *t)
{
    if (t->sources_job != NULL)
        return;
    gw_limit_fail_t *f = calloc(GW_TALLY_SOURCES_MAX, sizeof *f);
    size_t n = f ? gw_limit_take_failures(f, GW_TALLY_SOURCES_MAX) : 0;
    char *src = n ? malloc(n * 70 + 3) : NULL, *cnt = n ? malloc(n * 12 + 3) : NULL;
    if (n > 0 && src != NULL && cnt != NULL) {
        size_t so = 0, co = 0;
        src[so++] = '{';
        cnt[co++] = '{';
        for (size_t i = 0; i < n; i++) {
            so += (size_t)sprintf(src + so, "%s\"%s\"", i ? "," : "", f[i].source);
            co += (size_t)sprintf(cnt + co, "%s%d", i ? "," : "", f[i].failures);
        }
        src[so++] = '}';
        src[so] = '\0';
        cnt[co++] = '}';
        cnt[co] = '\0';
        const char *p[2] = {src, cnt};
        if (gw_db_query_timed(t->db,
                              "WITH old AS (DELETE FROM source_failures WHERE minute < "
                              "date_trunc('minute', now()) - interval '1 day') "
                              "INSERT INTO source_failures (minute, source, failures) "
                              "SELECT date_trunc('minute', now()), s, sum(n) "
                              "FROM unnest($1::text[], $2::bigint[]) u(s, n) GROUP BY s "
                              "ON CONFLICT (minute, source) DO UPDATE SET "
                              "failures = source_failures.failures + EXCLUDED.failures",
                              2, p, GW_TALLY_TIMEOUT_S, gw_tally_sources_cb, t,
                              &t->sources_job) != GW_OK)
            t->sources_job = NULL;
    }
    free(src);
    free(cnt);
    free(f);
}

static void gw_tally_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_tally_t *t = arg;
    (void)fd;
    (void)what;
    gw_tally_updates(t);
    gw_tally_sources(t);
    if (t->ticks++ % GW_TALLY_COMPACT_TICKS == 0 && t->compact_job == NULL &&
        gw_db_query_timed(t->db, "SELECT admin_fleet_compact()", 0, NULL, GW_TALLY_TIMEOUT_S,
                          gw_tally_compact_cb, t, &t->compact_job) != GW_OK)
        t->compact_job = NULL;
    struct timeval tv = {GW_TALLY_TICK_S, 0};
    evtimer_add(t->tick, &tv);
}

gw_tally_t *gw_tally_new(struct event_base *base, gw_db_t *db)
{
    gw_tally_t *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->db = db;
    t->tick = evtimer_new(base, gw_tally_tick_cb, t);
    if (t->tick == NULL) {
        free(t);
        return NULL;
    }
    char host[64];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "gateway");
    host[sizeof host - 1] = '\0';
    snprintf(t->gateway_name, sizeof t->gateway_name, "%s/%ld", host, (long)getpid());
    return t;
}

void gw_tally_start(gw_tally_t *t)
{
    struct timeval now = {0, 0};
    evtimer_add(t->tick, &now);
}

void gw_tally_free(gw_tally_t *t)
{
    if (t == NULL)
        return;
    if (t->flush_job != NULL)
        gw_db_cancel(t->flush_job);
    if (t->compact_job != NULL)
        gw_db_cancel(t->compact_job);
    if (t->sources_job != NULL)
        gw_db_cancel(t->sources_job);
    event_free(t->tick);
    free(t);
}
