/* gw_outbox: the DNS outbox on the C side (see gw_outbox.h). */
#include "gw_outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_db.h"
#include "gw_err.h"

const char gw_outbox_wake_sql[] = "SELECT pg_notify('" GW_OUTBOX_CHANNEL "', '')";
const char gw_outbox_stats_sql[] =
    "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 "
    "FROM dns_outbox";

int gw_outbox_ids_add(gw_outbox_ids_t *a, long long id)
{
    size_t need = a->len + 24;
    if (need > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        while (cap < need)
            cap *= 2;
        char *s = realloc(a->s, cap);
        if (s == NULL)
            return GW_ENOMEM;
        a->s = s;
        a->cap = cap;
    }
    a->len += (size_t)snprintf(a->s + a->len, a->cap - a->len, "%s%lld", a->n ? "," : "{", id);
    a->n++;
    return GW_OK;
}

const char *gw_outbox_ids_text(gw_outbox_ids_t *a)
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

void gw_outbox_ids_free(gw_outbox_ids_t *a)
{
    free(a->s);
    memset(a, 0, sizeof *a);
}

int gw_outbox_listen(PGconn *pg, char *err, size_t errlen)
{
    return gw_db_exec(pg, "LISTEN", "LISTEN " GW_OUTBOX_CHANNEL, 0, NULL, NULL, err, errlen);
}

int gw_outbox_take_wakeups(PGconn *pg)
{
    int got = 0;
    if (!PQconsumeInput(pg))
        return GW_EDB;
    for (PGnotify *n; (n = PQnotifies(pg)) != NULL;) {
        got = 1;
        PQfreemem(n);
    }
    return got;
}

int gw_outbox_zone_lock(PGconn *pg, const char *zone, int *got, char *err, size_t errlen)
{
    const char *p[1] = {zone};
    PGresult *r = NULL;
    int rc = gw_db_exec(pg, "advisory lock",
                        "SELECT pg_try_advisory_lock(hashtext('" GW_OUTBOX_CHANNEL ":' || $1))", 1,
                        p, &r, err, errlen);
    if (rc != GW_OK)
        return rc;
    *got = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return GW_OK;
}

int gw_outbox_zone_unlock(PGconn *pg, const char *zone, char *err, size_t errlen)
{
    const char *p[1] = {zone};
    return gw_db_exec(pg, "advisory unlock",
                      "SELECT pg_advisory_unlock(hashtext('" GW_OUTBOX_CHANNEL ":' || $1))", 1, p,
                      NULL, err, errlen);
}

int gw_outbox_read(PGconn *pg, const char *zone, gw_outbox_ids_t *skip, size_t limit,
                   gw_outbox_rows_t *out, char *err, size_t errlen)
{
    char lim[24];
    gw_outbox_ids_t none = {0};
    const char *p[3] = {zone, gw_outbox_ids_text(skip != NULL ? skip : &none), lim};
    int rc = GW_ENOMEM;

    memset(out, 0, sizeof *out);
    snprintf(lim, sizeof lim, "%zu", limit);
    if (p[1] == NULL)
        goto done;
    rc = gw_db_exec(pg, "reading the outbox",
                    "SELECT id, fqdn, rrtype, host(address), ttl FROM dns_outbox "
                    "WHERE zone = $1 AND id <> ALL($2::bigint[]) ORDER BY id LIMIT $3::int",
                    3, p, &out->res, err, errlen);
    if (rc != GW_OK)
        goto done;
    out->n = (size_t)PQntuples(out->res);
    if (out->n > 0 && (out->row = calloc(out->n, sizeof *out->row)) == NULL) {
        gw_outbox_rows_free(out);
        rc = GW_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < out->n; i++) {
        int r = (int)i;
        gw_outbox_row_t *w = &out->row[i];
        w->id = atoll(PQgetvalue(out->res, r, 0));
        w->fqdn = PQgetvalue(out->res, r, 1);
        w->rrtype = PQgetvalue(out->res, r, 2);
        w->address = PQgetisnull(out->res, r, 3) ? NULL : PQgetvalue(out->res, r, 3);
        w->ttl = PQgetisnull(out->res, r, 4) ? 0 : atoi(PQgetvalue(out->res, r, 4));
    }
done:
    if (rc == GW_ENOMEM)
        snprintf(err, errlen, "reading the outbox: out of memory");
    gw_outbox_ids_free(&none);
    return rc;
}

void gw_outbox_rows_free(gw_outbox_rows_t *rows)
{
    PQclear(rows->res);
    free(rows->row);
    memset(rows, 0, sizeof *rows);
}

int gw_outbox_delete(PGconn *pg, gw_outbox_ids_t *ids, char *err, size_t errlen)
{
    const char *p[1] = {gw_outbox_ids_text(ids)};
    if (p[0] == NULL) {
        snprintf(err, errlen, "deleting published rows: out of memory");
        return GW_ENOMEM;
    }
    return gw_db_exec(pg, "deleting published rows",
                      "DELETE FROM dns_outbox WHERE id = ANY($1::bigint[])", 1, p, NULL, err,
                      errlen);
}

int gw_outbox_mark_failed(PGconn *pg, gw_outbox_ids_t *ids, const char *why, char *err,
                          size_t errlen)
{
    const char *p[2] = {gw_outbox_ids_text(ids), why};
    if (p[0] == NULL) {
        snprintf(err, errlen, "recording the failed attempt: out of memory");
        return GW_ENOMEM;
    }
    return gw_db_exec(pg, "recording the failed attempt",
                      "UPDATE dns_outbox SET attempts = attempts + 1, last_error = $2 "
                      "WHERE id = ANY($1::bigint[])",
                      2, p, NULL, err, errlen);
}

int gw_outbox_requeue(PGconn *pg, const char *zone, const char *fqdns, const char *labels,
                      const char *rrtypes, long long *max_id, char *err, size_t errlen)
{
    const char *p[4] = {zone, fqdns, labels, rrtypes};
    PGresult *r = NULL;
    int rc = gw_db_exec(
        pg, "queuing the repairs",
        "WITH t AS (SELECT * FROM unnest($2::text[], $3::text[], $4::text[]) "
        "           AS t(fqdn, label, rrtype)), "
        "cur AS (SELECT n.label, n.ipv4, n.ipv6, n.ttl, d.status FROM names n "
        "        JOIN devices d ON d.device_id = n.device_id "
        "        WHERE n.zone = $1 AND n.label IN (SELECT label FROM t) "
        "        FOR UPDATE OF n) "
        "INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl) "
        "SELECT $1, t.fqdn, t.rrtype, "
        "       CASE WHEN c.status = 'active' THEN "
        "            CASE t.rrtype WHEN 'A' THEN c.ipv4 ELSE c.ipv6 END END, "
        "       c.ttl "
        "FROM t LEFT JOIN cur c ON c.label = t.label ORDER BY t.fqdn, t.rrtype "
        "RETURNING id",
        4, p, &r, err, errlen);
    if (rc != GW_OK)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        long long id = atoll(PQgetvalue(r, i, 0));
        if (id > *max_id)
            *max_id = id;
    }
    PQclear(r);
    return gw_db_exec(pg, "waking the publishers", gw_outbox_wake_sql, 0, NULL, NULL, err, errlen);
}

int gw_outbox_left(PGconn *pg, const char *zone, long long max_id, long long *left,
                   char *last_error, size_t lelen, char *err, size_t errlen)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%lld", max_id);
    const char *p[2] = {zone, idbuf};
    PGresult *r = NULL;
    int rc = gw_db_exec(pg, "watching the outbox",
                        "SELECT count(*), max(last_error) FROM dns_outbox "
                        "WHERE zone = $1 AND id <= $2::bigint",
                        2, p, &r, err, errlen);
    if (rc != GW_OK)
        return rc;
    *left = atoll(PQgetvalue(r, 0, 0));
    snprintf(last_error, lelen, "%s", PQgetisnull(r, 0, 1) ? "" : PQgetvalue(r, 0, 1));
    PQclear(r);
    return GW_OK;
}

/* ---- pure: coalescing ------------------------------------------------------ */

static int gw_outbox_same_rrset(const gw_outbox_row_t *a, const gw_outbox_row_t *b)
{
    return strcmp(a->fqdn, b->fqdn) == 0 && strcmp(a->rrtype, b->rrtype) == 0;
}

/* qsort_r order of row numbers: by name, type, then row number (rows come
 * in id order, so the row number orders by id). */
static int gw_outbox_row_cmp(const void *a, const void *b, void *arg)
{
    const gw_outbox_row_t *row = arg;
    size_t ra = *(const size_t *)a, rb = *(const size_t *)b;
    int c = strcmp(row[ra].fqdn, row[rb].fqdn);
    if (c == 0)
        c = strcmp(row[ra].rrtype, row[rb].rrtype);
    return c != 0 ? c : (ra > rb) - (ra < rb);
}

static int gw_outbox_size_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

size_t gw_outbox_coalesce(const gw_outbox_row_t *row, size_t n, size_t *ord, size_t *grp)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        ord[i] = i;
    qsort_r(ord, n, sizeof *ord, gw_outbox_row_cmp, (void *)row);
    /* the last row of each run of equal (fqdn, rrtype) is the newest;
     * until the final numbering, grp holds the newest row's number */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && gw_outbox_same_rrset(&row[ord[i]], &row[ord[j + 1]]))
            j++;
        for (size_t m = i; m <= j; m++)
            grp[ord[m]] = ord[j];
        ord[k++] = ord[j];
        i = j + 1;
    }
    qsort(ord, k, sizeof *ord, gw_outbox_size_cmp);
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

int gw_outbox_supersedes(const gw_outbox_row_t *row, const size_t *ord, size_t nch, long long id,
                         const char *fqdn, const char *rrtype)
{
    for (size_t c = 0; c < nch; c++) {
        const gw_outbox_row_t *w = &row[ord[c]];
        if (strcmp(fqdn, w->fqdn) == 0 && strcmp(rrtype, w->rrtype) == 0 && id < w->id)
            return 1;
    }
    return 0;
}
