/* prov_dbbatch: the batch transaction in PostgreSQL (see prov_dbbatch.h). */
#include "prov_dbbatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cmn_text.h"

/* Appends s to a COPY text-format line, escaping what the format needs. */
static size_t prov_copy_text(char *out, const char *s)
{
    size_t o = 0;
    for (; *s; s++) {
        switch (*s) {
        case '\\': out[o++] = '\\'; out[o++] = '\\'; break;
        case '\t': out[o++] = '\\'; out[o++] = 't'; break;
        case '\n': out[o++] = '\\'; out[o++] = 'n'; break;
        case '\r': out[o++] = '\\'; out[o++] = 'r'; break;
        default: out[o++] = *s; break;
        }
    }
    return o;
}

#define PROV_COPY_BUF (256u * 1024u)

int prov_dbbatch_stage(prov_db_t *db, prov_batch_t *b, char *err, size_t errlen)
{
    PGconn *conn = prov_db_pg(db);
    int rc = -1;
    char *buf = NULL;
    size_t used = 0;
    PGresult *r = NULL;

    if (prov_db_simple(db, "CREATE TEMP TABLE prov_in (idx integer NOT NULL, "
                           "device_id text NOT NULL, serial text NOT NULL, model text NOT NULL, "
                           "label text NOT NULL) ON COMMIT DROP", err, errlen) != 0)
        return -1;
    r = PQexec(conn, "COPY prov_in (idx, device_id, serial, model, label) FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        snprintf(err, errlen, "database: COPY: %s", PQresultErrorMessage(r));
        goto out;
    }
    PQclear(r);
    r = NULL;
    buf = malloc(PROV_COPY_BUF);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        PQputCopyEnd(conn, "out of memory");
        goto drain;
    }
    for (size_t i = 0, n = prov_batch_count(b); i < n; i++) {
        const prov_row_t *row = prov_batch_row_c(b, i);
        char id[CMN_DEVICE_ID_LEN + 1];
        if (!(row->flags & PROV_ROW_F_VALID))
            continue;
        /* worst case: every character escaped */
        if (used + 2 * (3 * 64 + PROV_LABEL_MAX + 64) > PROV_COPY_BUF) {
            if (PQputCopyData(conn, buf, (int)used) != 1) {
                prov_db_errmsg(db, "COPY", err, errlen);
                goto drain;
            }
            used = 0;
        }
        prov_row_device_id(row, id);
        used += (size_t)sprintf(buf + used, "%zu\t%s\t", i, id);
        used += prov_copy_text(buf + used, prov_batch_str(b, row->serial));
        buf[used++] = '\t';
        used += prov_copy_text(buf + used, prov_batch_str(b, row->model));
        buf[used++] = '\t';
        used += prov_copy_text(buf + used, prov_batch_str(b, row->label));
        buf[used++] = '\n';
    }
    if ((used > 0 && PQputCopyData(conn, buf, (int)used) != 1) ||
        PQputCopyEnd(conn, NULL) != 1) {
        prov_db_errmsg(db, "COPY", err, errlen);
        goto drain;
    }
    rc = 0;
drain:
    while ((r = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0) {
            snprintf(err, errlen, "database: COPY: %s", PQresultErrorMessage(r));
            rc = -1;
        }
        PQclear(r);
    }
    if (rc == 0 && prov_db_simple(db, "ANALYZE prov_in", err, errlen) != 0)
        rc = -1;
out:
    PQclear(r);
    free(buf);
    if (rc != 0)
        cmn_rtrim(err, "\n");
    return rc;
}

typedef struct prov_check_ctx {
    prov_db_t *db;
    prov_batch_t *b;
    const char *kid;
    const char *zone;
    const char *prefix;
    size_t relabelled;
    char *err;
    size_t errlen;
} prov_check_ctx_t;

/* Handles one result row about the batch row i (column 0 of the answer);
 * returns 0 to go on. */
typedef int (*prov_row_fn)(prov_check_ctx_t *cx, size_t i, PGresult *row);

/* Runs a query about the staged rows and hands each result row to fn
 * (single-row mode, so large answers are never held whole). */
static int prov_dbbatch_each(prov_check_ctx_t *cx, const char *sql, int n,
                             const char *const *params, prov_row_fn fn)
{
    PGconn *conn = prov_db_pg(cx->db);
    int rc = 0;
    PGresult *r;
    if (PQsendQueryParams(conn, sql, n, NULL, params, NULL, NULL, 0) != 1 ||
        PQsetSingleRowMode(conn) != 1) {
        prov_db_errmsg(cx->db, "query", cx->err, cx->errlen);
        while ((r = PQgetResult(conn)) != NULL)
            PQclear(r);
        return -1;
    }
    while ((r = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE) {
            unsigned long long i = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
            if (rc == 0 && (i >= prov_batch_count(cx->b) || fn(cx, (size_t)i, r) != 0)) {
                snprintf(cx->err, cx->errlen, "out of memory");
                rc = -1;
            }
        } else if (st != PGRES_TUPLES_OK && rc == 0) {
            prov_db_result_err(r, cx->err, cx->errlen);
            rc = -1;
        }
        PQclear(r);
    }
    return rc;
}

static const char *prov_val(PGresult *r, int col)
{
    return PQgetisnull(r, 0, col) ? NULL : PQgetvalue(r, 0, col);
}

static int prov_on_existing(prov_check_ctx_t *cx, size_t i, PGresult *r)
{
    prov_existing_t e = {prov_val(r, 1), prov_val(r, 6), prov_val(r, 2), prov_val(r, 3),
                         prov_val(r, 4), prov_val(r, 5)};
    prov_batch_existing(cx->b, i, cx->kid, &e);
    return 0;
}

static int prov_on_serial(prov_check_ctx_t *cx, size_t i, PGresult *r)
{
    const prov_row_t *row = prov_batch_row_c(cx->b, i);
    prov_batch_reject(cx->b, i, "serial '%s': already registered to device %s",
                      prov_batch_str(cx->b, row->serial), PQgetvalue(r, 0, 1));
    return 0;
}

static int prov_on_name(prov_check_ctx_t *cx, size_t i, PGresult *r)
{
    prov_row_t *row = prov_batch_row(cx->b, i);
    if (row->label_explicit) {
        prov_batch_reject(cx->b, i, "name '%s': %s.%s belongs to device %s",
                          prov_batch_str(cx->b, row->label), prov_batch_str(cx->b, row->label),
                          cx->zone, PQgetvalue(r, 0, 1));
        return 0;
    }
    if (row->state != PROV_ROW_NEW)
        return 0;
    /* A random label that is taken: draw again; the staging table is
     * updated once the answer has been read. */
    if (prov_batch_relabel(cx->b, i, cx->prefix) != 0)
        return -1;
    cx->relabelled++;
    return 0;
}

/* Writes the new labels of relabelled rows back into the staging table. */
static int prov_dbbatch_update_labels(prov_check_ctx_t *cx, const size_t *rows, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        char idx[24];
        const prov_row_t *row = prov_batch_row_c(cx->b, rows[k]);
        snprintf(idx, sizeof idx, "%zu", rows[k]);
        const char *p[2] = {prov_batch_str(cx->b, row->label), idx};
        PGresult *r = prov_db_exec(cx->db, "UPDATE prov_in SET label = $1 WHERE idx = $2::integer",
                                   2, p, cx->err, cx->errlen);
        if (r == NULL)
            return -1;
        PQclear(r);
    }
    return 0;
}

/* Names: explicit ones that are taken are errors, random ones are drawn
 * again until none is taken (a collision of 65 random bits is rare). */
static int prov_dbbatch_names(prov_check_ctx_t *cx)
{
    int rc = -1;
    size_t n = prov_batch_count(cx->b), *moved = malloc((n ? n : 1) * sizeof *moved), nmoved;
    uint32_t *old_label = malloc((n ? n : 1) * sizeof *old_label);
    const char *p_zone[1] = {cx->zone};

    if (old_label == NULL || moved == NULL) {
        snprintf(cx->err, cx->errlen, "out of memory");
        goto out;
    }
    for (int round = 0;; round++) {
        for (size_t i = 0; i < n; i++)
            old_label[i] = prov_batch_row_c(cx->b, i)->label;
        cx->relabelled = 0;
        if (prov_dbbatch_each(cx,
                              "SELECT i.idx, n.device_id FROM prov_in i JOIN names n "
                              "ON n.label = i.label AND n.zone = $1 "
                              "WHERE NOT EXISTS (SELECT 1 FROM devices d "
                              "WHERE d.device_id = i.device_id) ORDER BY i.idx",
                              1, p_zone, prov_on_name) != 0)
            goto out;
        if (cx->relabelled == 0)
            break;
        if (round == 8) {
            snprintf(cx->err, cx->errlen, "could not find free random names in zone %s",
                     cx->zone);
            goto out;
        }
        nmoved = 0;
        for (size_t i = 0; i < n; i++)
            if (prov_batch_row_c(cx->b, i)->label != old_label[i] &&
                prov_batch_row_c(cx->b, i)->state == PROV_ROW_NEW)
                moved[nmoved++] = i;
        if (prov_dbbatch_update_labels(cx, moved, nmoved) != 0)
            goto out;
    }
    rc = 0;
out:
    free(moved);
    free(old_label);
    return rc;
}

/* Only new rows stay staged: the registered ones and the rejected ones
 * are deleted from the staging table. */
static int prov_dbbatch_unstage(prov_db_t *db, const prov_batch_t *b, char *err, size_t errlen)
{
    size_t n = prov_batch_count(b), cap = 3, len = 0;
    PGresult *r = prov_db_exec(db, "DELETE FROM prov_in i USING devices d "
                                   "WHERE d.device_id = i.device_id", 0, NULL, err, errlen);
    if (r == NULL)
        return -1;
    PQclear(r);
    for (size_t i = 0; i < n; i++)
        if (prov_batch_row_c(b, i)->state == PROV_ROW_BAD)
            cap += 12;
    char *arr = malloc(cap);
    if (arr == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    arr[len++] = '{';
    for (size_t i = 0; i < n; i++)
        if (prov_batch_row_c(b, i)->state == PROV_ROW_BAD)
            len += (size_t)snprintf(arr + len, cap - len, "%s%zu", len > 1 ? "," : "", i);
    arr[len++] = '}';
    arr[len] = '\0';
    const char *p_arr[1] = {arr};
    r = prov_db_exec(db, "DELETE FROM prov_in WHERE idx = ANY ($1::integer[])", 1, p_arr, err,
                     errlen);
    free(arr);
    if (r == NULL)
        return -1;
    PQclear(r);
    return 0;
}

int prov_dbbatch_check(prov_db_t *db, prov_batch_t *b, const char *kid, const char *prefix,
                       char *err, size_t errlen)
{
    char zone[PROV_ZONE_MAX + 1];
    prov_check_ctx_t cx = {db, b, kid, zone, prefix, 0, err, errlen};
    const char *p_zone[1] = {zone};

    snprintf(zone, sizeof zone, "%s", prov_batch_zone(b));
    if (prov_dbbatch_each(&cx,
                          "SELECT i.idx, d.kid, d.status, d.serial, d.model, "
                          "(SELECT n.label FROM names n WHERE n.device_id = d.device_id "
                          "AND n.zone = $1 ORDER BY n.name_id LIMIT 1), d.generation "
                          "FROM prov_in i JOIN devices d ON d.device_id = i.device_id",
                          1, p_zone, prov_on_existing) != 0 ||
        prov_dbbatch_each(&cx,
                          "SELECT i.idx, d.device_id FROM prov_in i JOIN devices d "
                          "ON d.serial = i.serial AND d.device_id <> i.device_id ORDER BY i.idx",
                          0, NULL, prov_on_serial) != 0 ||
        prov_dbbatch_names(&cx) != 0)
        return -1;
    return prov_dbbatch_unstage(db, b, err, errlen);
}

int prov_dbbatch_insert_send(prov_db_t *db, long long batch_id, const char *kid,
                             uint32_t generation, const char *zone, char *err, size_t errlen)
{
    char bid[24], gen[12];
    snprintf(bid, sizeof bid, "%lld", batch_id);
    snprintf(gen, sizeof gen, "%lu", (unsigned long)generation);
    const char *p[4] = {kid, bid, zone, gen};
    /* One statement: the devices in a data-modifying WITH, the names in the
     * main part; the names' foreign key is checked at its end. */
    if (PQsendQueryParams(prov_db_pg(db),
                          "WITH d AS (INSERT INTO devices (device_id, kid, serial, model, batch_id, "
                          "generation) SELECT device_id, $1, serial, model, $2::bigint, "
                          "$4::integer FROM prov_in) "
                          "INSERT INTO names (device_id, label, zone) "
                          "SELECT device_id, label, $3 FROM prov_in",
                          4, NULL, p, NULL, NULL, 0) != 1) {
        prov_db_errmsg(db, "insert", err, errlen);
        return -1;
    }
    return 0;
}

int prov_dbbatch_insert_wait(prov_db_t *db, size_t expect, char *err, size_t errlen)
{
    PGconn *conn = prov_db_pg(db);
    int rc = -1, seen = 0;
    PGresult *r;
    while ((r = PQgetResult(conn)) != NULL) {
        if (!seen) {
            seen = 1;
            if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                prov_db_result_err(r, err, errlen);
            } else {
                unsigned long long got = strtoull(PQcmdTuples(r), NULL, 10);
                if (got == expect)
                    rc = 0;
                else
                    snprintf(err, errlen, "database: %llu devices registered, %zu expected",
                             got, expect);
            }
        }
        PQclear(r);
    }
    if (!seen)
        prov_db_errmsg(db, "insert", err, errlen);
    return rc;
}

