/* prov_db: registering devices (see prov_db.h). */
#include "prov_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

struct prov_db {
    PGconn *conn;
};

/* Serialises provisioning runs (batch, issue) with each other; the gateway
 * never takes it. */
static const char prov_db_lock_sql[] = "SELECT pg_advisory_xact_lock(hashtext('ddns-provision'))";

prov_db_t *prov_db_connect(const char *conninfo, char *err, size_t errlen)
{
    prov_db_t *db = calloc(1, sizeof *db);
    if (db == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    db->conn = PQconnectdb(conninfo ? conninfo : "");
    if (PQstatus(db->conn) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(db->conn));
        size_t n = strlen(err);
        while (n > 0 && err[n - 1] == '\n')
            err[--n] = '\0';
        prov_db_close(db);
        return NULL;
    }
    return db;
}

void prov_db_close(prov_db_t *db)
{
    if (db == NULL)
        return;
    PQfinish(db->conn);
    free(db);
}

/* Runs one parameterised statement; returns the result or NULL with err set. */
static PGresult *prov_db_exec(prov_db_t *db, const char *sql, int n, const char *const *params,
                              char *err, size_t errlen)
{
    PGresult *r = PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "database: %s", PQresultErrorMessage(r));
        size_t len = strlen(err);
        while (len > 0 && err[len - 1] == '\n')
            err[--len] = '\0';
        PQclear(r);
        return NULL;
    }
    return r;
}

static int prov_db_simple(prov_db_t *db, const char *sql, char *err, size_t errlen)
{
    PGresult *r = prov_db_exec(db, sql, 0, NULL, err, errlen);
    if (r == NULL)
        return -1;
    PQclear(r);
    return 0;
}

int prov_db_register(prov_db_t *db, prov_cred_t *c, int label_explicit, const char *label_prefix,
                     const char *serial, const char *model, char *err, size_t errlen)
{
    int rc = PROV_REG_ERROR;
    PGresult *r = NULL;

    if (prov_db_simple(db, "BEGIN", err, errlen) != 0)
        return PROV_REG_ERROR;
    r = prov_db_exec(db, prov_db_lock_sql, 0, NULL, err, errlen);
    if (r == NULL)
        goto out;
    PQclear(r);

    const char *p_dev[1] = {c->device_id};
    r = prov_db_exec(db, "SELECT kid, serial FROM devices WHERE device_id = $1 FOR UPDATE",
                     1, p_dev, err, errlen);
    if (r == NULL)
        goto out;
    if (PQntuples(r) == 1) {
        const char *kid = PQgetvalue(r, 0, 0);
        const char *old_serial = PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1);
        if (strcmp(kid, c->kid) != 0) {
            snprintf(err, errlen, "device %s is already registered under key id '%s', not '%s'",
                     c->device_id, kid, c->kid);
            goto out;
        }
        if (serial != NULL && old_serial != NULL && strcmp(serial, old_serial) != 0) {
            snprintf(err, errlen, "device %s is already registered under serial '%s', not '%s'",
                     c->device_id, old_serial, serial);
            goto out;
        }
        PQclear(r);
        const char *p_name[2] = {c->device_id, c->zone};
        r = prov_db_exec(db, "SELECT label FROM names WHERE device_id = $1 AND zone = $2 "
                             "ORDER BY name_id LIMIT 1", 2, p_name, err, errlen);
        if (r == NULL)
            goto out;
        if (PQntuples(r) == 0) {
            snprintf(err, errlen, "device %s is registered but has no name in zone %s",
                     c->device_id, c->zone);
            goto out;
        }
        if (label_explicit && strcmp(PQgetvalue(r, 0, 0), c->label) != 0) {
            snprintf(err, errlen, "device %s already has the name %s.%s, not %s.%s",
                     c->device_id, PQgetvalue(r, 0, 0), c->zone, c->label, c->zone);
            goto out;
        }
        snprintf(c->label, sizeof c->label, "%s", PQgetvalue(r, 0, 0));
        rc = PROV_REG_SAME;
        goto out;
    }
    PQclear(r);
    const char *p_ins[4] = {c->device_id, c->kid, serial, model};
    r = prov_db_exec(db, "INSERT INTO devices (device_id, kid, serial, model) VALUES ($1, $2, $3, $4)",
                     4, p_ins, err, errlen);
    if (r == NULL)
        goto out;
    for (int attempt = 0;; attempt++) {
        PQclear(r);
        const char *p_n[3] = {c->device_id, c->label, c->zone};
        r = prov_db_exec(db, "INSERT INTO names (device_id, label, zone) VALUES ($1, $2, $3) "
                             "ON CONFLICT (label, zone) DO NOTHING RETURNING name_id",
                         3, p_n, err, errlen);
        if (r == NULL)
            goto out;
        if (PQntuples(r) == 1)
            break;
        if (label_explicit) {
            snprintf(err, errlen, "the name %s.%s belongs to another device", c->label, c->zone);
            goto out;
        }
        if (attempt == 8 || prov_label_random(label_prefix, c->label) != 0) {
            snprintf(err, errlen, "could not find a free random name in zone %s", c->zone);
            goto out;
        }
    }
    rc = PROV_REG_NEW;
out:
    PQclear(r);
    if (rc == PROV_REG_ERROR) {
        PGresult *rb = PQexec(db->conn, "ROLLBACK");
        PQclear(rb);
    } else {
        char cerr[256];
        if (prov_db_simple(db, "COMMIT", cerr, sizeof cerr) != 0) {
            snprintf(err, errlen, "%s", cerr);
            rc = PROV_REG_ERROR;
        }
    }
    return rc;
}

/* ---- batches ----------------------------------------------------------- */

int prov_db_begin(prov_db_t *db, char *err, size_t errlen)
{
    if (prov_db_simple(db, "BEGIN", err, errlen) != 0)
        return -1;
    if (prov_db_simple(db, prov_db_lock_sql, err, errlen) != 0) {
        prov_db_rollback(db);
        return -1;
    }
    return 0;
}

int prov_db_commit(prov_db_t *db, char *err, size_t errlen)
{
    return prov_db_simple(db, "COMMIT", err, errlen);
}

void prov_db_rollback(prov_db_t *db)
{
    PGresult *r = PQexec(db->conn, "ROLLBACK");
    PQclear(r);
}

static void prov_db_errmsg(prov_db_t *db, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "database: %s: %s", what, PQerrorMessage(db->conn));
    size_t len = strlen(err);
    while (len > 0 && err[len - 1] == '\n')
        err[--len] = '\0';
}

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

int prov_db_stage(prov_db_t *db, prov_batch_t *b, char *err, size_t errlen)
{
    int rc = -1;
    char *buf = NULL;
    size_t used = 0;
    PGresult *r = NULL;

    if (prov_db_simple(db, "CREATE TEMP TABLE prov_in (idx integer NOT NULL, "
                           "device_id text NOT NULL, serial text NOT NULL, model text NOT NULL, "
                           "label text NOT NULL) ON COMMIT DROP", err, errlen) != 0)
        return -1;
    r = PQexec(db->conn, "COPY prov_in (idx, device_id, serial, model, label) FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        snprintf(err, errlen, "database: COPY: %s", PQresultErrorMessage(r));
        goto out;
    }
    PQclear(r);
    r = NULL;
    buf = malloc(PROV_COPY_BUF);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        PQputCopyEnd(db->conn, "out of memory");
        goto drain;
    }
    for (size_t i = 0, n = prov_batch_count(b); i < n; i++) {
        const prov_row_t *row = prov_batch_row_c(b, i);
        char id[CMN_DEVICE_ID_LEN + 1];
        if (!(row->flags & PROV_ROW_F_VALID))
            continue;
        /* worst case: every character escaped */
        if (used + 2 * (3 * 64 + PROV_LABEL_MAX + 64) > PROV_COPY_BUF) {
            if (PQputCopyData(db->conn, buf, (int)used) != 1) {
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
    if ((used > 0 && PQputCopyData(db->conn, buf, (int)used) != 1) ||
        PQputCopyEnd(db->conn, NULL) != 1) {
        prov_db_errmsg(db, "COPY", err, errlen);
        goto drain;
    }
    rc = 0;
drain:
    while ((r = PQgetResult(db->conn)) != NULL) {
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
    if (rc != 0) {
        size_t len = strlen(err);
        while (len > 0 && err[len - 1] == '\n')
            err[--len] = '\0';
    }
    return rc;
}

/* Runs a query and hands each result row to fn (single-row mode, so large
 * answers are never held whole). fn returns 0 to go on. */
typedef int (*prov_row_fn)(void *ctx, PGresult *row);

static int prov_db_each(prov_db_t *db, const char *sql, int n, const char *const *params,
                        prov_row_fn fn, void *ctx, char *err, size_t errlen)
{
    int rc = 0;
    PGresult *r;
    if (PQsendQueryParams(db->conn, sql, n, NULL, params, NULL, NULL, 0) != 1 ||
        PQsetSingleRowMode(db->conn) != 1) {
        prov_db_errmsg(db, "query", err, errlen);
        while ((r = PQgetResult(db->conn)) != NULL)
            PQclear(r);
        return -1;
    }
    while ((r = PQgetResult(db->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE) {
            if (rc == 0 && fn(ctx, r) != 0) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
            }
        } else if (st != PGRES_TUPLES_OK && rc == 0) {
            snprintf(err, errlen, "database: %s", PQresultErrorMessage(r));
            size_t len = strlen(err);
            while (len > 0 && err[len - 1] == '\n')
                err[--len] = '\0';
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

typedef struct prov_check_ctx {
    prov_db_t *db;
    prov_batch_t *b;
    const char *kid;
    const char *zone;
    const char *prefix;
    size_t relabelled;
    int failed;
    char *err;
    size_t errlen;
} prov_check_ctx_t;

static int prov_row_index(prov_check_ctx_t *cx, PGresult *r, size_t *i)
{
    unsigned long long v = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    if (v >= prov_batch_count(cx->b))
        return -1;
    *i = (size_t)v;
    return 0;
}

static int prov_on_existing(void *ctx, PGresult *r)
{
    prov_check_ctx_t *cx = ctx;
    size_t i;
    if (prov_row_index(cx, r, &i) != 0)
        return -1;
    prov_existing_t e = {prov_val(r, 1), prov_val(r, 2), prov_val(r, 3), prov_val(r, 4),
                         prov_val(r, 5)};
    prov_batch_existing(cx->b, i, cx->kid, &e);
    return 0;
}

static int prov_on_serial(void *ctx, PGresult *r)
{
    prov_check_ctx_t *cx = ctx;
    size_t i;
    if (prov_row_index(cx, r, &i) != 0)
        return -1;
    const prov_row_t *row = prov_batch_row_c(cx->b, i);
    prov_batch_reject(cx->b, i, "serial '%s': already registered to device %s",
                      prov_batch_str(cx->b, row->serial), PQgetvalue(r, 0, 1));
    return 0;
}

static int prov_on_name(void *ctx, PGresult *r)
{
    prov_check_ctx_t *cx = ctx;
    size_t i;
    if (prov_row_index(cx, r, &i) != 0)
        return -1;
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
static int prov_db_update_labels(prov_check_ctx_t *cx, const size_t *rows, size_t n)
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

int prov_db_check(prov_db_t *db, prov_batch_t *b, const char *kid, const char *prefix,
                  char *err, size_t errlen)
{
    char zone[PROV_ZONE_MAX + 1];
    int rc = -1;
    size_t n = prov_batch_count(b), *moved = NULL, nmoved = 0;
    char *arr = NULL;
    uint32_t *old_label = NULL;
    prov_check_ctx_t cx = {db, b, kid, zone, prefix, 0, 0, err, errlen};
    const char *p_zone[1] = {zone};

    snprintf(zone, sizeof zone, "%s", prov_batch_zone(b));

    if (prov_db_each(db,
                     "SELECT i.idx, d.kid, d.status, d.serial, d.model, "
                     "(SELECT n.label FROM names n WHERE n.device_id = d.device_id "
                     "AND n.zone = $1 ORDER BY n.name_id LIMIT 1) "
                     "FROM prov_in i JOIN devices d ON d.device_id = i.device_id",
                     1, p_zone, prov_on_existing, &cx, err, errlen) != 0)
        goto out;
    if (prov_db_each(db,
                     "SELECT i.idx, d.device_id FROM prov_in i JOIN devices d "
                     "ON d.serial = i.serial AND d.device_id <> i.device_id ORDER BY i.idx",
                     0, NULL, prov_on_serial, &cx, err, errlen) != 0)
        goto out;
    /* Names: explicit ones that are taken are errors, random ones are drawn
     * again until none is taken (a collision of 65 random bits is rare). */
    old_label = malloc((n ? n : 1) * sizeof *old_label);
    moved = malloc((n ? n : 1) * sizeof *moved);
    if (old_label == NULL || moved == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int round = 0;; round++) {
        for (size_t i = 0; i < n; i++)
            old_label[i] = prov_batch_row_c(b, i)->label;
        cx.relabelled = 0;
        if (prov_db_each(db,
                         "SELECT i.idx, n.device_id FROM prov_in i JOIN names n "
                         "ON n.label = i.label AND n.zone = $1 "
                         "WHERE NOT EXISTS (SELECT 1 FROM devices d "
                         "WHERE d.device_id = i.device_id) ORDER BY i.idx",
                         1, p_zone, prov_on_name, &cx, err, errlen) != 0)
            goto out;
        if (cx.relabelled == 0)
            break;
        if (round == 8) {
            snprintf(err, errlen, "could not find free random names in zone %s", zone);
            goto out;
        }
        nmoved = 0;
        for (size_t i = 0; i < n; i++)
            if (prov_batch_row_c(b, i)->label != old_label[i] &&
                prov_batch_row_c(b, i)->state == PROV_ROW_NEW)
                moved[nmoved++] = i;
        if (prov_db_update_labels(&cx, moved, nmoved) != 0)
            goto out;
    }
    /* Only new rows stay staged. */
    PGresult *r = prov_db_exec(db, "DELETE FROM prov_in i USING devices d "
                                   "WHERE d.device_id = i.device_id", 0, NULL, err, errlen);
    if (r == NULL)
        goto out;
    PQclear(r);
    size_t cap = 3, len = 0;
    for (size_t i = 0; i < n; i++)
        if (prov_batch_row_c(b, i)->state == PROV_ROW_BAD)
            cap += 12;
    arr = malloc(cap);
    if (arr == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
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
    if (r == NULL)
        goto out;
    PQclear(r);
    rc = 0;
out:
    free(arr);
    free(moved);
    free(old_label);
    return rc;
}

int prov_db_audit(prov_db_t *db, const prov_audit_t *a, long long *batch_id, char *err,
                  size_t errlen)
{
    char n[6][24];
    snprintf(n[0], sizeof n[0], "%zu", a->input_bytes);
    snprintf(n[1], sizeof n[1], "%zu", a->lines);
    snprintf(n[2], sizeof n[2], "%zu", a->devices_new);
    snprintf(n[3], sizeof n[3], "%zu", a->devices_unchanged);
    snprintf(n[4], sizeof n[4], "%zu", a->lines_rejected);
    const char *p[13] = {a->command, a->operator_name, a->kid, a->zone, a->input_name,
                         a->input_sha256, n[0], n[1], n[2], n[3], n[4], a->output_format,
                         a->tool_version};
    PGresult *r = prov_db_exec(db,
                               "INSERT INTO provision_batches (command, operator, kid, zone, "
                               "input_name, input_sha256, input_bytes, lines, devices_new, "
                               "devices_unchanged, lines_rejected, output_format, tool_version) "
                               "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
                               "RETURNING batch_id", 13, p, err, errlen);
    if (r == NULL)
        return -1;
    *batch_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int prov_db_insert_send(prov_db_t *db, long long batch_id, const char *kid, const char *zone,
                        char *err, size_t errlen)
{
    char bid[24];
    snprintf(bid, sizeof bid, "%lld", batch_id);
    const char *p[3] = {kid, bid, zone};
    /* One statement: the devices in a data-modifying WITH, the names in the
     * main part; the names' foreign key is checked at its end. */
    if (PQsendQueryParams(db->conn,
                          "WITH d AS (INSERT INTO devices (device_id, kid, serial, model, batch_id) "
                          "SELECT device_id, $1, serial, model, $2::bigint FROM prov_in) "
                          "INSERT INTO names (device_id, label, zone) "
                          "SELECT device_id, label, $3 FROM prov_in",
                          3, NULL, p, NULL, NULL, 0) != 1) {
        prov_db_errmsg(db, "insert", err, errlen);
        return -1;
    }
    return 0;
}

int prov_db_insert_wait(prov_db_t *db, size_t expect, char *err, size_t errlen)
{
    int rc = -1, seen = 0;
    PGresult *r;
    while ((r = PQgetResult(db->conn)) != NULL) {
        if (!seen) {
            seen = 1;
            if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                snprintf(err, errlen, "database: %s", PQresultErrorMessage(r));
                size_t len = strlen(err);
                while (len > 0 && err[len - 1] == '\n')
                    err[--len] = '\0';
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

int prov_db_kid_counts(prov_db_t *db, void (*fn)(void *ctx, const char *kid, long long total,
                                                 long long active),
                       void *ctx, char *err, size_t errlen)
{
    PGresult *r = prov_db_exec(db, "SELECT kid, count(*), count(*) FILTER (WHERE status = 'active') "
                                   "FROM devices GROUP BY kid ORDER BY kid", 0, NULL, err, errlen);
    if (r == NULL)
        return -1;
    for (int i = 0; i < PQntuples(r); i++)
        fn(ctx, PQgetvalue(r, i, 0), strtoll(PQgetvalue(r, i, 1), NULL, 10),
           strtoll(PQgetvalue(r, i, 2), NULL, 10));
    PQclear(r);
    return 0;
}

int prov_db_set_status(prov_db_t *db, const char *device_id, int revoke, long long *records,
                       char *err, size_t errlen)
{
    int rc = PROV_REG_ERROR;
    PGresult *r = NULL;
    const char *p[1] = {device_id};
    const char *want = revoke ? "revoked" : "active";

    *records = 0;
    if (prov_db_begin(db, err, errlen) != 0)
        return PROV_REG_ERROR;
    r = prov_db_exec(db, "SELECT status FROM devices WHERE device_id = $1 FOR UPDATE", 1, p, err,
                     errlen);
    if (r == NULL)
        goto out;
    if (PQntuples(r) == 0) {
        snprintf(err, errlen, "device %s is not registered", device_id);
        goto out;
    }
    if (strcmp(PQgetvalue(r, 0, 0), want) == 0) {
        rc = PROV_REG_SAME;
        goto out;
    }
    PQclear(r);
    const char *p_st[2] = {device_id, want};
    r = prov_db_exec(db, "UPDATE devices SET status = $2 WHERE device_id = $1", 2, p_st, err,
                     errlen);
    if (r == NULL)
        goto out;
    if (revoke) {
        /* Remove the records of every name: history, outbox (address NULL
         * deletes the RRset), then the recorded addresses. */
        static const char *const sql[] = {
            "INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address) "
            "SELECT device_id, label || '.' || zone, t.rrtype, t.addr, NULL "
            "FROM names, LATERAL (VALUES ('A', ipv4), ('AAAA', ipv6)) t(rrtype, addr) "
            "WHERE device_id = $1 AND t.addr IS NOT NULL",
            "INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl) "
            "SELECT zone, label || '.' || zone, t.rrtype, NULL, ttl "
            "FROM names, LATERAL (VALUES ('A', ipv4), ('AAAA', ipv6)) t(rrtype, addr) "
            "WHERE device_id = $1 AND t.addr IS NOT NULL",
            "UPDATE names SET ipv4 = NULL, ipv6 = NULL, updated_at = now() "
            "WHERE device_id = $1 AND (ipv4 IS NOT NULL OR ipv6 IS NOT NULL)",
        };
        for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
            PQclear(r);
            r = prov_db_exec(db, sql[i], 1, p, err, errlen);
            if (r == NULL)
                goto out;
            if (i == 1)
                *records = strtoll(PQcmdTuples(r), NULL, 10);
        }
        if (*records > 0) {
            PQclear(r);
            r = prov_db_exec(db, "SELECT pg_notify('ddns_outbox', '')", 0, NULL, err, errlen);
            if (r == NULL)
                goto out;
        }
    }
    rc = PROV_REG_NEW;
out:
    PQclear(r);
    if (rc == PROV_REG_NEW) {
        if (prov_db_commit(db, err, errlen) != 0)
            rc = PROV_REG_ERROR;
    } else {
        prov_db_rollback(db);
    }
    return rc;
}
