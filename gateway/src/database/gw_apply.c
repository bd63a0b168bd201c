/* gw_apply: one device request in the database (see gw_apply.h). */
#include "gw_apply.h"

#include <inttypes.h>
#include <stddef.h>
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

/* A request gw_quiet may answer: its parameters (for the database, when
 * memory cannot answer) and its shape (gw_quiet_key_t), in one block. */
struct gw_apply_kept {
    const char *params[GW_APPLY_NPARAMS];
    unsigned char data[];
};

/* Notes the poll answered without a write (gw_seen). */
static void gw_apply_unwritten(const gw_apply_job_t *j)
{
    if (j->source[0] == '\0')
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    gw_seen_note(j->device, j->source, (double)now.tv_sec + (double)now.tv_nsec / 1e9);
    gw_metrics_inc(GW_M_NOCHG_UNWRITTEN);
}

/* Hands the answer to the caller and frees what the request kept. */
static void gw_apply_finish(gw_apply_job_t *j, int err, const gw_apply_answer_t *a)
{
    struct gw_apply_kept *kept = j->kept;
    j->cb(j->arg, err, err == GW_OK ? a : NULL);   /* may free j */
    free(kept);
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
    if (err == GW_OK && a.unwritten) {
        gw_apply_unwritten(j);
        if (j->kept != NULL)
            gw_quiet_learn(&j->ticket, &j->wait.key, (unsigned)a.n);
    }
    gw_apply_finish(j, err, &a);
    if (name != local)
        free(name);
}

/* After the barrier the request waited for: nochg from memory, or the
 * database. */
static void gw_apply_quiet_done(gw_quiet_wait_t *w, int err, unsigned nrows)
{
    gw_apply_job_t *j = (gw_apply_job_t *)((char *)w - offsetof(gw_apply_job_t, wait));
    if (err == GW_OK && nrows == 0) {
        gw_quiet_ticket(&j->wait.key, &j->ticket);
        err = gw_db_query_batched(j->db, gw_apply_sql, GW_APPLY_NPARAMS, j->kept->params,
                                  j->timeout_s, gw_apply_db_cb, j);
        if (err == GW_OK)
            return;
    }
    gw_apply_result_t local[32], *name = local;
    gw_apply_answer_t a = {.n = nrows, .ipv4 = j->ipv4, .ipv6 = j->ipv6, .unwritten = 1};
    if (err == GW_OK && nrows > 32 && (name = calloc(nrows, sizeof *name)) == NULL)
        err = GW_ENOMEM;
    if (err == GW_OK) {
        for (unsigned i = 0; i < nrows; i++)
            name[i] = GW_APPLY_NOCHG;
        a.name = name;
        gw_metrics_inc(GW_M_QUIET_HITS);
        gw_apply_unwritten(j);
    }
    gw_apply_finish(j, err, &a);
    if (name != local)
        free(name);
}

/* Copies the parameters into j->kept and sets the shape of the request in
 * j->wait.key: what a kept answer must match (device, kid, generation,
 * dyndns2 or not, addresses, names, User-Agent, firmware). GW_OK or
 * GW_ENOMEM. */
static int gw_apply_keep(gw_apply_job_t *j, const char *const *params)
{
    static const int shape_of[] = {0, 1, 2, 4, 5, 7, 10, 11};  /* and ts NULL or not */
    size_t shape_len = 1, text_len = 0;
    for (size_t i = 0; i < sizeof shape_of / sizeof shape_of[0]; i++)
        shape_len += 1 + (params[shape_of[i]] ? strlen(params[shape_of[i]]) + 1 : 0);
    for (int i = 0; i < GW_APPLY_NPARAMS; i++)
        text_len += params[i] ? strlen(params[i]) + 1 : 0;
    struct gw_apply_kept *k = malloc(sizeof *k + shape_len + text_len);
    if (k == NULL)
        return GW_ENOMEM;
    unsigned char *p = k->data;
    *p++ = params[3] == NULL;
    for (size_t i = 0; i < sizeof shape_of / sizeof shape_of[0]; i++) {
        const char *v = params[shape_of[i]];
        *p++ = v != NULL;
        if (v != NULL) {
            size_t n = strlen(v) + 1;
            memcpy(p, v, n);
            p += n;
        }
    }
    char *t = (char *)p;
    for (int i = 0; i < GW_APPLY_NPARAMS; i++) {
        k->params[i] = NULL;
        if (params[i] != NULL) {
            size_t n = strlen(params[i]) + 1;
            memcpy(t, params[i], n);
            k->params[i] = t;
            t += n;
        }
    }
    j->kept = k;
    j->wait.key = (gw_quiet_key_t){
        .device = j->device, .shape = k->data, .shape_len = shape_len,
        .ts = params[3] ? strtoll(params[3], NULL, 10) : 0, .dyn = params[3] == NULL};
    return GW_OK;
}

size_t gw_apply_count(const gw_apply_answer_t *a, gw_apply_result_t r)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++)
        n += a->name[i] == r;
    return n;
}

int gw_apply(gw_db_t *db, gw_quiet_t *quiet, const gw_apply_req_t *rq, int timeout_s,
             gw_apply_job_t *j, gw_apply_cb cb, void *arg)
{
    char interval[16];
    j->db = db;
    j->cb = cb;
    j->arg = arg;
    j->timeout_s = timeout_s;
    j->kept = NULL;
    j->ticket.ok = 0;
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
    /* a poll that may change nothing: from memory if it can */
    if (quiet != NULL && rq->own && !rq->offline && (j->ipv4[0] || j->ipv6[0]) &&
        gw_apply_keep(j, params) == GW_OK) {
        if (gw_quiet_candidate(&j->wait.key)) {
            j->wait.done = gw_apply_quiet_done;
            gw_quiet_wait(quiet, &j->wait);     /* may answer at once */
            return GW_OK;
        }
        gw_quiet_ticket(&j->wait.key, &j->ticket);
    }
    int rc = gw_db_query_batched(db, gw_apply_sql, GW_APPLY_NPARAMS, params, timeout_s,
                                 gw_apply_db_cb, j);
    if (rc != GW_OK) {
        free(j->kept);
        j->kept = NULL;
    }
    return rc;
}
