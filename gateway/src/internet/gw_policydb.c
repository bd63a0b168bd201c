/* gw_policydb: the operators' firmware policy (see gw_policydb.h). */
#include "gw_policydb.h"

#include <stdio.h>
#include <stdlib.h>

#include "gw_err.h"
#include "gw_log.h"

#define GW_POLICYDB_TIMEOUT_S 10

typedef struct gw_policydb_rule {
    char model[GW_POLICY_MODEL_MAX + 1];
    char version[GW_POLICY_VERSION_MAX + 1];   /* "" : no minimum */
    int blocked;
    int signed_only;
    int address_required;
} gw_policydb_rule_t;

struct gw_policydb {
    gw_db_t *db;
    struct event *timer;
    gw_db_job_t *job;
    void (*cb)(void *);
    void *cb_arg;
    gw_policydb_rule_t *rules;
    size_t nrules;
    long long version;              /* -1: never read */
    int again;                      /* poll again as soon as this one ends */
};

static void gw_policydb_arm(gw_policydb_t *pd, int secs)
{
    struct timeval tv = {secs, 0};
    evtimer_add(pd->timer, &tv);
}

static void gw_policydb_cb(void *arg, int err, const PGresult *res)
{
    gw_policydb_t *pd = arg;
    pd->job = NULL;
    if (err != GW_ECLOSED)
        gw_policydb_arm(pd, pd->again ? 0 : GW_POLICYDB_TICK_S);
    pd->again = 0;
    if (err != GW_OK || PQnfields(res) != 6 || PQntuples(res) < 1)
        return;
    long long version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    if (version == pd->version)
        return;
    size_t n = 0, rows = (size_t)PQntuples(res);
    gw_policydb_rule_t *rules = calloc(rows, sizeof *rules);
    if (rules == NULL)
        return;
    for (int row = 0; row < (int)rows; row++) {
        if (PQgetisnull(res, row, 1))
            continue;
        snprintf(rules[n].model, sizeof rules[n].model, "%s", PQgetvalue(res, row, 1));
        rules[n].blocked = PQgetvalue(res, row, 2)[0] == 't';
        snprintf(rules[n].version, sizeof rules[n].version, "%s",
                 PQgetisnull(res, row, 3) ? "" : PQgetvalue(res, row, 3));
        rules[n].signed_only = PQgetvalue(res, row, 4)[0] == 't';
        rules[n].address_required = PQgetvalue(res, row, 5)[0] == 't';
        n++;
    }
    free(pd->rules);
    pd->rules = rules;
    pd->nrules = n;
    int first = pd->version < 0;
    pd->version = version;
    if (first && n == 0)
        return;
    gw_info("firmware policy from the database: version %lld, %zu model rule(s)", version, n);
    if (pd->cb != NULL)
        pd->cb(pd->cb_arg);
}

static void gw_policydb_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_policydb_t *pd = arg;
    (void)fd;
    (void)what;
    if (pd->job != NULL)
        return;
    if (gw_db_query_timed(pd->db, "SELECT s.version, p.model, p.blocked, p.min_version, "
                          "p.signed_only, p.address_required "
                          "FROM firmware_policy_state s LEFT JOIN firmware_policy p ON true "
                          "ORDER BY p.model", 0, NULL, GW_POLICYDB_TIMEOUT_S, gw_policydb_cb,
                          pd, &pd->job) != GW_OK) {
        pd->job = NULL;
        gw_policydb_arm(pd, GW_POLICYDB_TICK_S);
    }
}

gw_policydb_t *gw_policydb_new(struct event_base *base, gw_db_t *db)
{
    gw_policydb_t *pd = calloc(1, sizeof *pd);
    if (pd == NULL)
        return NULL;
    pd->db = db;
    pd->version = -1;
    pd->timer = evtimer_new(base, gw_policydb_timer_cb, pd);
    if (pd->timer == NULL) {
        free(pd);
        return NULL;
    }
    return pd;
}

void gw_policydb_set_cb(gw_policydb_t *pd, void (*fn)(void *arg), void *arg)
{
    pd->cb = fn;
    pd->cb_arg = arg;
}

void gw_policydb_start(gw_policydb_t *pd)
{
    gw_policydb_arm(pd, 0);
}

void gw_policydb_poll_now(gw_policydb_t *pd)
{
    if (pd == NULL)
        return;
    if (pd->job != NULL)
        pd->again = 1;      /* the poll running may have read the old rules */
    else
        gw_policydb_arm(pd, 0);
}

size_t gw_policydb_apply(const gw_policydb_t *pd, gw_policy_t *p)
{
    size_t n = 0;
    if (pd == NULL)
        return 0;
    for (size_t i = 0; i < pd->nrules; i++) {
        const gw_policydb_rule_t *r = &pd->rules[i];
        if (r->blocked && gw_policy_block(p, r->model) == GW_OK)
            n++;
        if (r->signed_only && gw_policy_signed_only(p, r->model) == GW_OK)
            n++;
        if (r->address_required && gw_policy_address_required(p, r->model) == GW_OK)
            n++;
        if (r->version[0] && gw_policy_set_minimum(p, r->model, r->version) == GW_OK)
            n++;
    }
    return n;
}

void gw_policydb_free(gw_policydb_t *pd)
{
    if (pd == NULL)
        return;
    if (pd->job != NULL)
        gw_db_cancel(pd->job);
    event_free(pd->timer);
    free(pd->rules);
    free(pd);
}
