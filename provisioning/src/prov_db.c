/* prov_db: registering devices (see prov_db.h). */
#include "prov_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cmn_text.h"

struct prov_db {
    PGconn *conn;
};

/* Serialises provisioning runs (batch, register, issue, reissue, revoke,
 * restore) with each other; the gateway never takes it. */
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
        cmn_rtrim(err, "\n");
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

/* The error of a failed result as "database: MESSAGE" (no line end). */
static void prov_db_result_err(const PGresult *r, char *err, size_t errlen)
{
    snprintf(err, errlen, "database: %s", PQresultErrorMessage(r));
    cmn_rtrim(err, "\n");
}

/* Runs one parameterised statement; returns the result or NULL with err set. */
static PGresult *prov_db_exec(prov_db_t *db, const char *sql, int n, const char *const *params,
                              char *err, size_t errlen)
{
    PGresult *r = PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        prov_db_result_err(r, err, errlen);
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

/* Writes the audit row of a single-device command with the device's name
 * label.zone; the caller's transaction commits it. */
static int prov_db_audit_one(prov_db_t *db, prov_audit_t *a, const char *label, const char *zone,
                             long long *audit_id, char *err, size_t errlen)
{
    char fqdn[PROV_LABEL_MAX + 1 + PROV_ZONE_MAX + 1];
    if (label[0] != '\0') {
        snprintf(fqdn, sizeof fqdn, "%s.%s", label, zone);
        a->fqdn = fqdn;
    } else {
        a->fqdn = NULL;
    }
    int rc = prov_db_audit(db, a, audit_id, err, errlen);
    a->fqdn = NULL; /* points into this frame */
    return rc;
}

int prov_db_register(prov_db_t *db, prov_cred_t *c, int label_explicit, const char *label_prefix,
                     const char *serial, const char *model, prov_audit_t *audit,
                     long long *audit_id, char *err, size_t errlen)
{
    int rc = PROV_REG_ERROR;
    PGresult *r = NULL;
    char id_text[24];

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
        /* The credentials are handed out again: that is recorded too. */
        audit->device_id = c->device_id;
        audit->devices_unchanged = 1;
        if (prov_db_audit_one(db, audit, c->label, c->zone, audit_id, err, errlen) != 0)
            goto out;
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
    PQclear(r);
    r = NULL;
    audit->device_id = c->device_id;
    audit->devices_new = 1;
    if (prov_db_audit_one(db, audit, c->label, c->zone, audit_id, err, errlen) != 0)
        goto out;
    snprintf(id_text, sizeof id_text, "%lld", *audit_id);
    const char *p_bid[2] = {c->device_id, id_text};
    r = prov_db_exec(db, "UPDATE devices SET batch_id = $2::bigint WHERE device_id = $1", 2,
                     p_bid, err, errlen);
    if (r == NULL)
        goto out;
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
    cmn_rtrim(err, "\n");
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
    if (rc != 0)
        cmn_rtrim(err, "\n");
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
            prov_db_result_err(r, err, errlen);
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
    char n[7][24];
    snprintf(n[0], sizeof n[0], "%zu", a->input_bytes);
    snprintf(n[1], sizeof n[1], "%zu", a->lines);
    snprintf(n[2], sizeof n[2], "%zu", a->devices_new);
    snprintf(n[3], sizeof n[3], "%zu", a->devices_unchanged);
    snprintf(n[4], sizeof n[4], "%zu", a->lines_rejected);
    snprintf(n[5], sizeof n[5], "%zu", a->devices_changed);
    const char *p[18] = {a->command, a->operator_name, a->kid, a->zone, a->input_name,
                         a->input_sha256, n[0], n[1], n[2], n[3], n[4], a->output_format,
                         a->tool_version, a->device_id, a->previous_kid, a->fqdn,
                         a->previous_fqdn, n[5]};
    PGresult *r = prov_db_exec(db,
                               "INSERT INTO provision_batches (command, operator, kid, zone, "
                               "input_name, input_sha256, input_bytes, lines, devices_new, "
                               "devices_unchanged, lines_rejected, output_format, tool_version, "
                               "device_id, previous_kid, fqdn, previous_fqdn, devices_changed) "
                               "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
                               "$14, $15, $16, $17, $18) RETURNING batch_id", 18, p, err, errlen);
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

/* Copies column col of row 0 into out (size outlen): 0, or -1 when it does
 * not fit. *has receives whether the value is not NULL. */
static int prov_db_copy_col(PGresult *r, int col, char *out, size_t outlen, int *has)
{
    out[0] = '\0';
    *has = !PQgetisnull(r, 0, col);
    if (!*has)
        return 0;
    return (size_t)snprintf(out, outlen, "%s", PQgetvalue(r, 0, col)) < outlen ? 0 : -1;
}

/* Gives one name (name_id) the label new_label and moves its records: the
 * old name's RRsets are deleted and the new name's published, through the
 * outbox, with history rows. *records receives the number of records. */
static int prov_db_rename(prov_db_t *db, const char *name_id, const char *new_label,
                          long long *records, char *err, size_t errlen)
{
    const char *p[2] = {name_id, new_label};
    PGresult *r = prov_db_exec(db,
        "WITH n AS (SELECT * FROM names WHERE name_id = $1::bigint), "
        "rec AS (SELECT n.device_id, n.zone, n.ttl, n.label || '.' || n.zone AS old_fqdn, "
        "        $2 || '.' || n.zone AS new_fqdn, t.rrtype, t.addr "
        "        FROM n, LATERAL (VALUES ('A', n.ipv4), ('AAAA', n.ipv6)) t(rrtype, addr) "
        "        WHERE t.addr IS NOT NULL), "
        "h AS (INSERT INTO history (device_id, fqdn, rrtype, old_address, new_address) "
        "      SELECT device_id, old_fqdn, rrtype, addr, NULL FROM rec "
        "      UNION ALL SELECT device_id, new_fqdn, rrtype, NULL, addr FROM rec), "
        "o AS (INSERT INTO dns_outbox (zone, fqdn, rrtype, address, ttl) "
        "      SELECT zone, old_fqdn, rrtype, NULL, ttl FROM rec "
        "      UNION ALL SELECT zone, new_fqdn, rrtype, addr, ttl FROM rec) "
        "UPDATE names SET label = $2, updated_at = now() WHERE name_id = $1::bigint "
        "RETURNING (SELECT count(*) FROM rec)", 2, p, err, errlen);
    if (r == NULL)
        return -1;
    if (PQntuples(r) != 1) {
        snprintf(err, errlen, "database: name %s vanished", name_id);
        PQclear(r);
        return -1;
    }
    *records = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int prov_db_reissue(prov_db_t *db, const prov_reissue_t *rq, prov_audit_t *audit,
                    long long *audit_id, prov_reissue_result_t *res, char *err, size_t errlen)
{
    int rc = PROV_REG_ERROR, changed = 0, rename = rq->rename, has;
    PGresult *r = NULL, *names = NULL;
    const char *p_dev[1] = {rq->device_id};
    char prev_fqdn[PROV_LABEL_MAX + 1 + PROV_ZONE_MAX + 1];

    memset(res, 0, sizeof *res);
    if (prov_db_begin(db, err, errlen) != 0)
        return PROV_REG_ERROR;
    r = prov_db_exec(db, "SELECT kid, status, serial, model FROM devices WHERE device_id = $1 "
                         "FOR UPDATE", 1, p_dev, err, errlen);
    if (r == NULL)
        goto out;
    if (PQntuples(r) == 0) {
        snprintf(err, errlen, "device %s is not registered (register it with 'issue' or a "
                 "batch)", rq->device_id);
        goto out;
    }
    if (prov_db_copy_col(r, 0, res->previous_kid, sizeof res->previous_kid, &has) != 0 ||
        prov_db_copy_col(r, 2, res->serial, sizeof res->serial, &res->has_serial) != 0 ||
        prov_db_copy_col(r, 3, res->model, sizeof res->model, &res->has_model) != 0) {
        snprintf(err, errlen, "device %s: a recorded key id, serial or model is longer than "
                 "the tool allows", rq->device_id);
        goto out;
    }
    res->revoked = strcmp(PQgetvalue(r, 0, 1), "active") != 0;
    PQclear(r);
    r = NULL;
    /* The names, locked in the order the gateway locks them. */
    names = prov_db_exec(db, "SELECT name_id, label, zone FROM names WHERE device_id = $1 "
                             "ORDER BY name_id FOR UPDATE", 1, p_dev, err, errlen);
    if (names == NULL)
        goto out;
    int n = PQntuples(names);
    if (n > 0) {
        snprintf(res->label, sizeof res->label, "%s", PQgetvalue(names, 0, 1));
        snprintf(res->previous_label, sizeof res->previous_label, "%s", PQgetvalue(names, 0, 1));
        snprintf(res->zone, sizeof res->zone, "%s", PQgetvalue(names, 0, 2));
    }
    if (rename != PROV_RENAME_NONE && n == 0) {
        snprintf(err, errlen, "device %s has no name to replace", rq->device_id);
        goto out;
    }
    if (rename == PROV_RENAME_LABEL && n > 1) {
        snprintf(err, errlen, "device %s has %d names and --name gives one label; --new-name "
                 "gives each of them a new random label", rq->device_id, n);
        goto out;
    }
    if (rename == PROV_RENAME_LABEL && strcmp(res->label, rq->label) == 0)
        rename = PROV_RENAME_NONE; /* already so */

    if (strcmp(res->previous_kid, rq->kid) != 0) {
        const char *p_kid[2] = {rq->device_id, rq->kid};
        r = prov_db_exec(db, "UPDATE devices SET kid = $2 WHERE device_id = $1", 2, p_kid, err,
                         errlen);
        if (r == NULL)
            goto out;
        PQclear(r);
        r = NULL;
        changed = 1;
    }
    for (int i = 0; rename != PROV_RENAME_NONE && i < n; i++) {
        char label[PROV_LABEL_MAX + 1];
        const char *zone = PQgetvalue(names, i, 2);
        long long moved = 0;
        for (int attempt = 0;; attempt++) {
            if (rename == PROV_RENAME_LABEL) {
                snprintf(label, sizeof label, "%s", rq->label);
            } else if (prov_label_random(rq->label_prefix, label) != 0) {
                snprintf(err, errlen, "label prefix '%s' is not usable", rq->label_prefix);
                goto out;
            }
            /* Names are only ever created under the provisioning lock,
             * which this transaction holds: a free name stays free. */
            const char *p_n[2] = {label, zone};
            r = prov_db_exec(db, "SELECT device_id FROM names WHERE label = $1 AND zone = $2", 2,
                             p_n, err, errlen);
            if (r == NULL)
                goto out;
            if (PQntuples(r) == 0)
                break;
            if (rename == PROV_RENAME_LABEL) {
                snprintf(err, errlen, "the name %s.%s belongs to device %s", label, zone,
                         PQgetvalue(r, 0, 0));
                goto out;
            }
            PQclear(r);
            r = NULL;
            if (attempt == 8) {
                snprintf(err, errlen, "could not find a free random name in zone %s", zone);
                goto out;
            }
        }
        PQclear(r);
        r = NULL;
        if (prov_db_rename(db, PQgetvalue(names, i, 0), label, &moved, err, errlen) != 0)
            goto out;
        if (i == 0)
            snprintf(res->label, sizeof res->label, "%s", label);
        res->records += moved;
        res->names++;
        changed = 1;
    }
    if (res->records > 0) {
        r = prov_db_exec(db, "SELECT pg_notify('ddns_outbox', '')", 0, NULL, err, errlen);
        if (r == NULL)
            goto out;
        PQclear(r);
        r = NULL;
    }
    audit->device_id = rq->device_id;
    audit->zone = res->zone;
    audit->previous_kid = res->previous_kid;
    audit->previous_fqdn = NULL;
    if (res->names > 0) {
        snprintf(prev_fqdn, sizeof prev_fqdn, "%s.%s", res->previous_label, res->zone);
        audit->previous_fqdn = prev_fqdn;
    }
    audit->devices_changed = changed ? 1 : 0;
    audit->devices_unchanged = changed ? 0 : 1;
    int arc = prov_db_audit_one(db, audit, res->label, res->zone, audit_id, err, errlen);
    audit->previous_fqdn = NULL; /* points into this frame */
    if (arc != 0)
        goto out;
    rc = changed ? PROV_REG_NEW : PROV_REG_SAME;
out:
    PQclear(r);
    PQclear(names);
    if (rc != PROV_REG_ERROR) {
        if (prov_db_commit(db, err, errlen) != 0)
            rc = PROV_REG_ERROR;
    } else {
        prov_db_rollback(db);
    }
    return rc;
}
