/* prov_db: registering devices (see prov_db.h). */
#include "prov_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

struct prov_db {
    PGconn *conn;
};

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
