/* gw_apply: one device request in the database (see gw_apply.h). */
#include "gw_apply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_err.h"
#include "gw_log.h"
#include "gw_metrics.h"
#include "gw_seen.h"

static const char gw_apply_sql[] =
    "SELECT item, ord, result, retry_after FROM ddns_apply_batch($1::text[], $2::text[], "
    "$3::integer[], $4::bigint[], $5::inet[], $6::inet[], $7::inet[], $8::text[], "
    "$9::boolean[], $10::integer[], $11::text[], $12::text[], $13::boolean[])";
#define GW_APPLY_NPARAMS 13
#define GW_APPLY_NFIELDS 4      /* item, ord, result, retry_after */

static const char *const gw_apply_names[] = {
    [GW_APPLY_GOOD] = "good", [GW_APPLY_NOCHG] = "nochg", [GW_APPLY_RATELIMIT] = "ratelimit",
    [GW_APPLY_NOHOST] = "nohost", [GW_APPLY_FOREIGN] = "foreign", [GW_APPLY_UNKNOWN] = "unknown",
    [GW_APPLY_DISABLED] = "disabled", [GW_APPLY_REPLAY] = "replay",
};

/* The result named t; -1 when there is no such result. */
static int gw_apply_result_of(const char *t)
{
    for (size_t i = 0; i < sizeof gw_apply_names / sizeof gw_apply_names[0]; i++)
        if (strcmp(t, gw_apply_names[i]) == 0)
            return (int)i;
    return -1;
}

/* Decodes the request's rows into a; the names into name[rows]. GW_OK, or
 * GW_EDB with the reason logged. */
static int gw_apply_decode(const PGresult *res, int row0, int rows, gw_apply_answer_t *a,
                           gw_apply_result_t *name)
{
    memset(a, 0, sizeof *a);
    if (rows < 1 || PQnfields(res) != GW_APPLY_NFIELDS || PQgetisnull(res, row0, 2)) {
        gw_error("ddns_apply_batch returned %d rows", rows);
        return GW_EDB;
    }
    int first = gw_apply_result_of(PQgetvalue(res, row0, 2));
    if (PQgetisnull(res, row0, 1)) {
        /* an answer about the whole request */
        if (rows != 1 || (first != GW_APPLY_UNKNOWN && first != GW_APPLY_DISABLED &&
                          first != GW_APPLY_REPLAY && first != GW_APPLY_NOHOST)) {
            gw_error("ddns_apply_batch returned unexpected result '%.20s'",
                     PQgetvalue(res, row0, 2));
            return GW_EDB;
        }
        a->device_level = 1;
        a->result = (gw_apply_result_t)first;
        return GW_OK;
    }
    for (int r = 0; r < rows; r++) {
        int row = row0 + r;
        int k = PQgetisnull(res, row, 2) ? -1 : gw_apply_result_of(PQgetvalue(res, row, 2));
        if (PQgetisnull(res, row, 1) || strtol(PQgetvalue(res, row, 1), NULL, 10) != r + 1 ||
            k < 0 || k > GW_APPLY_FOREIGN) {
            gw_error("ddns_apply_batch returned an unexpected row %d ('%.20s')", r,
                     PQgetvalue(res, row, 2));
            return GW_EDB;
        }
        name[r] = (gw_apply_result_t)k;
        /* retry_after 0 on nochg: answered without a write (only ever all
         * the rows of a request) */
        if (k == GW_APPLY_NOCHG && r == 0 && !PQgetisnull(res, row, 3))
            a->unwritten = 1;
        if (k == GW_APPLY_GOOD)
            a->ngood++;
        if (k == GW_APPLY_RATELIMIT) {
            long w = PQgetisnull(res, row, 3) ? 1 : strtol(PQgetvalue(res, row, 3), NULL, 10);
            int wait = w < 1 ? 1 : w > 86400 ? 86400 : (int)w;
            if (wait > a->retry_after)
                a->retry_after = wait;
            a->nratelimit++;
        }
    }
    a->n = (size_t)rows;
    a->name = name;
    return GW_OK;
}

static void gw_apply_db_cb(void *arg, int err, const PGresult *res, int row0, int rows)
{
    gw_apply_job_t *j = arg;
    gw_apply_answer_t a;
    /* a device has a few names: their results fit here, more are allocated */
    gw_apply_result_t local[32], *name = local;

    if (err == GW_OK && rows > 32 && (name = calloc((size_t)rows, sizeof *name)) == NULL)
        err = GW_ENOMEM;
    if (err == GW_OK)
        err = gw_apply_decode(res, row0, rows, &a, name);
    a.ipv4 = j->ipv4;
    a.ipv6 = j->ipv6;
    if (err == GW_OK && a.ngood > 0)
        gw_db_wake_publishers(j->db);   /* committed: outbox rows wait */
    if (err == GW_OK && a.unwritten && j->source[0]) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        gw_seen_note(j->device, j->source, (double)now.tv_sec + (double)now.tv_nsec / 1e9);
        gw_metrics_inc(GW_M_NOCHG_UNWRITTEN);
    }
    j->cb(j->arg, err, err == GW_OK ? &a : NULL);   /* may free j */
    if (name != local)
        free(name);
}

size_t gw_apply_count(const gw_apply_answer_t *a, gw_apply_result_t r)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++)
        n += a->name[i] == r;
    return n;
}

int gw_apply(gw_db_t *db, const gw_apply_req_t *rq, int timeout_s, gw_apply_job_t *j,
             gw_apply_cb cb, void *arg)
{
    char interval[16];
    j->db = db;
    j->cb = cb;
    j->arg = arg;
    snprintf(j->ipv4, sizeof j->ipv4, "%s", rq->ipv4 ? rq->ipv4 : "");
    snprintf(j->ipv6, sizeof j->ipv6, "%s", rq->ipv6 ? rq->ipv6 : "");
    if (j->ipv4[0] == '\0' && j->ipv6[0] == '\0' && rq->source != NULL) {
        /* no address named: the one the request comes from */
        if (strchr(rq->source, ':') != NULL)
            snprintf(j->ipv6, sizeof j->ipv6, "%s", rq->source);
        else
            snprintf(j->ipv4, sizeof j->ipv4, "%s", rq->source);
    }
    snprintf(interval, sizeof interval, "%d", rq->min_interval);
    snprintf(j->generation, sizeof j->generation, "%" PRIu32, rq->generation);
    snprintf(j->device, sizeof j->device, "%s", rq->device);
    snprintf(j->source, sizeof j->source, "%s", rq->source ? rq->source : "");
    /* in the order of ddns_apply_batch()'s arrays */
    const char *params[GW_APPLY_NPARAMS] = {rq->device, rq->kid, j->generation, rq->ts,
                                            j->ipv4[0] ? j->ipv4 : NULL,
                                            j->ipv6[0] ? j->ipv6 : NULL,
                                            rq->source, rq->fqdns,
                                            rq->offline ? "true" : "false", interval, rq->agent,
                                            rq->firmware, rq->own ? "true" : "false"};
    return gw_db_query_batched(db, gw_apply_sql, GW_APPLY_NPARAMS, params, timeout_s,
                               gw_apply_db_cb, j);
}
