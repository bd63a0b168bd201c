/* prov_db: registering devices (see prov_db.h). */
#include "prov_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_label.h"
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

PGconn *prov_db_pg(prov_db_t *db)
{
    return db->conn;
}

void prov_db_close(prov_db_t *db)
{
    if (db == NULL)
        return;
    PQfinish(db->conn);
    free(db);
}

/* The error of a failed result as "database: MESSAGE" (no line end). */
void prov_db_result_err(const PGresult *r, char *err, size_t errlen)
{
    snprintf(err, errlen, "database: %s", PQresultErrorMessage(r));
    cmn_rtrim(err, "\n");
}

/* Runs one parameterised statement; returns the result or NULL with err set. */
PGresult *prov_db_exec(prov_db_t *db, const char *sql, int n, const char *const *params,
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

int prov_db_simple(prov_db_t *db, const char *sql, char *err, size_t errlen)
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

/* Ends a transaction: commits when commit is set (a failed COMMIT makes the
 * result PROV_REG_ERROR, with err), else rolls back. Returns rc. */
static int prov_db_end(prov_db_t *db, int commit, int rc, char *err, size_t errlen)
{
    if (!commit) {
        prov_db_rollback(db);
        return rc;
    }
    return prov_db_commit(db, err, errlen) == 0 ? rc : PROV_REG_ERROR;
}

/* The device of c is registered already (dev: its kid and serial). When it
 * is so under c->kid (and serial), c->label receives its current name, the
 * audit row is written and the result is PROV_REG_SAME; otherwise
 * PROV_REG_ERROR with the difference in err. */
static int prov_db_register_same(prov_db_t *db, const PGresult *dev, prov_cred_t *c,
                                 int label_explicit, const char *serial, prov_audit_t *audit,
                                 long long *audit_id, uint32_t *generation, char *err,
                                 size_t errlen)
{
    const char *kid = PQgetvalue(dev, 0, 0);
    const char *old_serial = PQgetisnull(dev, 0, 1) ? NULL : PQgetvalue(dev, 0, 1);
    *generation = (uint32_t)strtoul(PQgetvalue(dev, 0, 2), NULL, 10);
    if (strcmp(kid, c->kid) != 0) {
        snprintf(err, errlen, "device %s is already registered under key id '%s', not '%s'",
                 c->device_id, kid, c->kid);
        return PROV_REG_ERROR;
    }
    if (serial != NULL && old_serial != NULL && strcmp(serial, old_serial) != 0) {
        snprintf(err, errlen, "device %s is already registered under serial '%s', not '%s'",
                 c->device_id, old_serial, serial);
        return PROV_REG_ERROR;
    }
    const char *p_name[2] = {c->device_id, c->zone};
    PGresult *r = prov_db_exec(db, "SELECT label FROM names WHERE device_id = $1 AND zone = $2 "
                                   "ORDER BY name_id LIMIT 1", 2, p_name, err, errlen);
    if (r == NULL)
        return PROV_REG_ERROR;
    int rc = PROV_REG_ERROR;
    if (PQntuples(r) == 0) {
        snprintf(err, errlen, "device %s is registered but has no name in zone %s",
                 c->device_id, c->zone);
    } else if (label_explicit && strcmp(PQgetvalue(r, 0, 0), c->label) != 0) {
        snprintf(err, errlen, "device %s already has the name %s.%s, not %s.%s",
                 c->device_id, PQgetvalue(r, 0, 0), c->zone, c->label, c->zone);
    } else {
        snprintf(c->label, sizeof c->label, "%s", PQgetvalue(r, 0, 0));
        /* The credentials are handed out again: that is recorded too. */
        audit->device_id = c->device_id;
        audit->devices_unchanged = 1;
        audit->generation = PQgetvalue(dev, 0, 2);
        if (prov_db_audit_one(db, audit, c->label, c->zone, audit_id, err, errlen) == 0)
            rc = PROV_REG_SAME;
    }
    PQclear(r);
    return rc;
}

int prov_db_label_foreign(prov_db_t *db, const char *label, const char *zone, char *err,
                          size_t errlen)
{
    const char *server = getenv(PROV_DNS_SERVER_ENV);
    char fqdn[PROV_LABEL_MAX + 1 + PROV_ZONE_MAX + 1], why[300];
    if (server == NULL || server[0] == '\0')
        return 0;
    snprintf(fqdn, sizeof fqdn, "%s.%s", label, zone);
    int in_zone = cmn_label_ask(server, fqdn, PROV_DNS_TIMEOUT_MS, why, sizeof why);
    if (in_zone == CMN_LABEL_FREE)
        return 0;
    if (in_zone == CMN_LABEL_NO_ANSWER) {
        snprintf(err, errlen, "cannot tell whether %s already holds records: %s (%s=%s)", fqdn,
                 why, PROV_DNS_SERVER_ENV, server);
        return -1;
    }
    const char *p[2] = {label, zone};
    PGresult *r = prov_db_exec(db, "SELECT 1 FROM names WHERE label = $1 AND zone = $2", 2, p,
                               err, errlen);
    if (r == NULL)
        return -1;
    int device_name = PQntuples(r) > 0;
    PQclear(r);
    if (device_name)
        return 0;
    snprintf(err, errlen, "the name %s is reserved: it already holds records in the zone that "
             "no device published (asked %s)", fqdn, server);
    return -1;
}

/* Inserts the name c->label in c->zone of a new device; when it is taken
 * and not explicit, random labels are drawn (up to 8 more). Returns 0 or
 * -1 with err. */
static int prov_db_insert_name(prov_db_t *db, prov_cred_t *c, int label_explicit,
                               const char *label_prefix, char *err, size_t errlen)
{
    if (label_explicit && prov_db_label_foreign(db, c->label, c->zone, err, errlen) != 0)
        return -1;
    for (int attempt = 0;; attempt++) {
        const char *p_n[3] = {c->device_id, c->label, c->zone};
        PGresult *r = prov_db_exec(db, "INSERT INTO names (device_id, label, zone) VALUES ($1, "
                                       "$2, $3) ON CONFLICT (label, zone) DO NOTHING RETURNING "
                                       "name_id", 3, p_n, err, errlen);
        if (r == NULL)
            return -1;
        int inserted = PQntuples(r) == 1;
        PQclear(r);
        if (inserted)
            return 0;
        if (label_explicit) {
            snprintf(err, errlen, "the name %s.%s belongs to another device", c->label, c->zone);
            return -1;
        }
        if (attempt == 8 || prov_label_random(label_prefix, c->label) != 0) {
            snprintf(err, errlen, "could not find a free random name in zone %s", c->zone);
            return -1;
        }
    }
}

/* Registers a new device with its name and audit row (whose id becomes the
 * device's batch_id). Returns PROV_REG_NEW or PROV_REG_ERROR with err. */
static int prov_db_register_new(prov_db_t *db, prov_cred_t *c, int label_explicit,
                                const char *label_prefix, const char *serial, const char *model,
                                prov_audit_t *audit, long long *audit_id, char *err,
                                size_t errlen)
{
    char id_text[24], gen[12];
    snprintf(gen, sizeof gen, "%lu", (unsigned long)c->generation);
    const char *p_ins[5] = {c->device_id, c->kid, serial, model, gen};
    PGresult *r = prov_db_exec(db, "INSERT INTO devices (device_id, kid, serial, model, "
                                   "generation) VALUES ($1, $2, $3, $4, $5::integer)", 5, p_ins,
                               err, errlen);
    if (r == NULL)
        return PROV_REG_ERROR;
    PQclear(r);
    if (prov_db_insert_name(db, c, label_explicit, label_prefix, err, errlen) != 0)
        return PROV_REG_ERROR;
    audit->device_id = c->device_id;
    audit->devices_new = 1;
    audit->generation = gen;
    int rc = prov_db_audit_one(db, audit, c->label, c->zone, audit_id, err, errlen);
    audit->generation = NULL; /* points into this frame */
    if (rc != 0)
        return PROV_REG_ERROR;
    snprintf(id_text, sizeof id_text, "%lld", *audit_id);
    const char *p_bid[2] = {c->device_id, id_text};
    r = prov_db_exec(db, "UPDATE devices SET batch_id = $2::bigint WHERE device_id = $1", 2,
                     p_bid, err, errlen);
    if (r == NULL)
        return PROV_REG_ERROR;
    PQclear(r);
    return PROV_REG_NEW;
}

int prov_db_register(prov_db_t *db, prov_cred_t *c, int label_explicit, const char *label_prefix,
                     const char *serial, const char *model, prov_audit_t *audit,
                     long long *audit_id, uint32_t *generation, char *err, size_t errlen)
{
    int rc = PROV_REG_ERROR;
    *generation = c->generation;
    if (prov_db_begin(db, err, errlen) != 0)
        return PROV_REG_ERROR;
    const char *p_dev[1] = {c->device_id};
    PGresult *r = prov_db_exec(db, "SELECT kid, serial, generation FROM devices WHERE "
                                   "device_id = $1 FOR UPDATE", 1, p_dev, err, errlen);
    if (r != NULL && PQntuples(r) == 1)
        rc = prov_db_register_same(db, r, c, label_explicit, serial, audit, audit_id,
                                   generation, err, errlen);
    else if (r != NULL)
        rc = prov_db_register_new(db, c, label_explicit, label_prefix, serial, model, audit,
                                  audit_id, err, errlen);
    audit->generation = NULL; /* may point into r */
    PQclear(r);
    return prov_db_end(db, rc != PROV_REG_ERROR, rc, err, errlen);
}

int prov_db_device_key(prov_db_t *db, const char *device_id, char kid[CMN_KID_MAX + 1],
                       uint32_t *generation, char *err, size_t errlen)
{
    const char *p_dev[1] = {device_id};
    PGresult *r = prov_db_exec(db, "SELECT kid, generation FROM devices WHERE device_id = $1",
                               1, p_dev, err, errlen);
    if (r == NULL)
        return -1;
    int found = PQntuples(r) == 1;
    if (found) {
        snprintf(kid, CMN_KID_MAX + 1, "%s", PQgetvalue(r, 0, 0));
        *generation = (uint32_t)strtoul(PQgetvalue(r, 0, 1), NULL, 10);
    }
    PQclear(r);
    return found;
}

/* ---- transactions ------------------------------------------------------ */

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

void prov_db_errmsg(prov_db_t *db, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "database: %s: %s", what, PQerrorMessage(db->conn));
    cmn_rtrim(err, "\n");
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
    snprintf(n[5], sizeof n[5], "%zu", a->devices_changed);
    const char *p[20] = {a->command, a->operator_name, a->kid, a->zone, a->input_name,
                         a->input_sha256, n[0], n[1], n[2], n[3], n[4], a->output_format,
                         a->tool_version, a->device_id, a->previous_kid, a->fqdn,
                         a->previous_fqdn, n[5], a->generation, a->previous_generation};
    PGresult *r = prov_db_exec(db,
                               "INSERT INTO provision_batches (command, operator, kid, zone, "
                               "input_name, input_sha256, input_bytes, lines, devices_new, "
                               "devices_unchanged, lines_rejected, output_format, tool_version, "
                               "device_id, previous_kid, fqdn, previous_fqdn, devices_changed, "
                               "generation, previous_generation) "
                               "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
                               "$14, $15, $16, $17, $18, $19::integer, $20::integer) "
                               "RETURNING batch_id", 20, p, err, errlen);
    if (r == NULL)
        return -1;
    *batch_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
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

/* The audit row of a revoke or restore: the device's key id, generation
 * and first name as they are (dev: status, kid, generation, label, zone). */
static int prov_db_status_audit(prov_db_t *db, PGresult *dev, int changed, prov_audit_t *audit,
                                long long *audit_id, char *err, size_t errlen)
{
    audit->kid = PQgetvalue(dev, 0, 1);
    audit->generation = PQgetvalue(dev, 0, 2);
    audit->zone = PQgetvalue(dev, 0, 4);
    audit->devices_changed = (size_t)changed;
    audit->devices_unchanged = (size_t)!changed;
    int rc = prov_db_audit_one(db, audit, PQgetvalue(dev, 0, 3), audit->zone, audit_id, err,
                               errlen);
    audit->kid = audit->generation = audit->zone = NULL;    /* point into dev */
    return rc;
}

int prov_db_set_status(prov_db_t *db, const char *device_id, int revoke, prov_audit_t *audit,
                       long long *audit_id, long long *records, char *err, size_t errlen)
{
    int rc = PROV_REG_ERROR;
    PGresult *r = NULL, *dev = NULL;
    const char *p[1] = {device_id};
    const char *want = revoke ? "revoked" : "active";

    *records = 0;
    if (prov_db_begin(db, err, errlen) != 0)
        return PROV_REG_ERROR;
    dev = prov_db_exec(db, "SELECT d.status, d.kid, d.generation::text, "
                           "coalesce(n.label, ''), coalesce(n.zone, '') "
                           "FROM devices d LEFT JOIN LATERAL (SELECT label, zone FROM names "
                           "WHERE names.device_id = d.device_id ORDER BY name_id LIMIT 1) n "
                           "ON true WHERE d.device_id = $1 FOR UPDATE OF d", 1, p, err, errlen);
    if (dev == NULL)
        goto out;
    if (PQntuples(dev) == 0) {
        snprintf(err, errlen, "device %s is not registered", device_id);
        goto out;
    }
    audit->device_id = device_id;
    if (strcmp(PQgetvalue(dev, 0, 0), want) == 0) {
        /* nothing to change, but who looked is recorded */
        if (prov_db_status_audit(db, dev, 0, audit, audit_id, err, errlen) == 0)
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
    if (prov_db_status_audit(db, dev, 1, audit, audit_id, err, errlen) == 0)
        rc = PROV_REG_NEW;
out:
    PQclear(r);
    PQclear(dev);
    audit->device_id = NULL;
    return prov_db_end(db, rc != PROV_REG_ERROR, rc, err, errlen);
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

/* Reads the device of rq (locked as the gateway locks it) into res: its
 * key id, status, serial and model. Returns 0 or -1 with err. */
static int prov_db_reissue_device(prov_db_t *db, const prov_reissue_t *rq,
                                  prov_reissue_result_t *res, char *err, size_t errlen)
{
    int rc = -1, has;
    const char *p_dev[1] = {rq->device_id};
    PGresult *r = prov_db_exec(db, "SELECT kid, status, serial, model, generation FROM "
                                   "devices WHERE device_id = $1 FOR UPDATE", 1, p_dev, err,
                               errlen);
    if (r == NULL)
        return -1;
    if (PQntuples(r) == 0) {
        snprintf(err, errlen, "device %s is not registered (register it with 'issue' or a "
                 "batch)", rq->device_id);
    } else if (prov_db_copy_col(r, 0, res->previous_kid, sizeof res->previous_kid, &has) != 0 ||
               prov_db_copy_col(r, 2, res->serial, sizeof res->serial, &res->has_serial) != 0 ||
               prov_db_copy_col(r, 3, res->model, sizeof res->model, &res->has_model) != 0) {
        snprintf(err, errlen, "device %s: a recorded key id, serial or model is longer than "
                 "the tool allows", rq->device_id);
    } else if ((res->previous_generation = (uint32_t)strtoul(PQgetvalue(r, 0, 4), NULL, 10)) >=
               CMN_GENERATION_MAX) {
        snprintf(err, errlen, "device %s has had its last generation (%lu): it cannot be "
                 "reissued", rq->device_id, (unsigned long)res->previous_generation);
    } else {
        res->revoked = strcmp(PQgetvalue(r, 0, 1), "active") != 0;
        res->generation = res->previous_generation + 1;
        rc = 0;
    }
    PQclear(r);
    return rc;
}

/* A free label in zone for a renamed name: rq->label (PROV_RENAME_LABEL)
 * or a random one (up to 9 draws). Returns 0 or -1 with err. */
static int prov_db_free_label(prov_db_t *db, const prov_reissue_t *rq, int rename,
                              const char *zone, char label[PROV_LABEL_MAX + 1], char *err,
                              size_t errlen)
{
    for (int attempt = 0;; attempt++) {
        if (rename == PROV_RENAME_LABEL) {
            snprintf(label, PROV_LABEL_MAX + 1, "%s", rq->label);
        } else if (prov_label_random(rq->label_prefix, label) != 0) {
            snprintf(err, errlen, "label prefix '%s' is not usable", rq->label_prefix);
            return -1;
        }
        /* Names are only ever created under the provisioning lock,
         * which this transaction holds: a free name stays free. */
        const char *p_n[2] = {label, zone};
        PGresult *r = prov_db_exec(db, "SELECT device_id FROM names WHERE label = $1 AND "
                                       "zone = $2", 2, p_n, err, errlen);
        if (r == NULL)
            return -1;
        int taken = PQntuples(r) > 0;
        if (taken && rename == PROV_RENAME_LABEL)
            snprintf(err, errlen, "the name %s.%s belongs to device %s", label, zone,
                     PQgetvalue(r, 0, 0));
        PQclear(r);
        if (!taken)
            return rename == PROV_RENAME_LABEL ? prov_db_label_foreign(db, label, zone, err,
                                                                       errlen) : 0;
        if (rename == PROV_RENAME_LABEL)
            return -1;
        if (attempt == 8) {
            snprintf(err, errlen, "could not find a free random name in zone %s", zone);
            return -1;
        }
    }
}

/* Gives each of the device's names (name_id, label, zone) a new label and
 * moves its records; res counts the names and records and receives the
 * first name's new label. Returns 0 or -1 with err. */
static int prov_db_reissue_names(prov_db_t *db, const prov_reissue_t *rq, int rename,
                                 PGresult *names, prov_reissue_result_t *res, char *err,
                                 size_t errlen)
{
    for (int i = 0; i < PQntuples(names); i++) {
        char label[PROV_LABEL_MAX + 1];
        const char *zone = PQgetvalue(names, i, 2);
        long long moved = 0;
        if (prov_db_free_label(db, rq, rename, zone, label, err, errlen) != 0 ||
            prov_db_rename(db, PQgetvalue(names, i, 0), label, &moved, err, errlen) != 0)
            return -1;
        if (i == 0)
            snprintf(res->label, sizeof res->label, "%s", label);
        res->records += moved;
        res->names++;
    }
    if (res->records > 0) {
        PGresult *r = prov_db_exec(db, "SELECT pg_notify('ddns_outbox', '')", 0, NULL, err,
                                   errlen);
        if (r == NULL)
            return -1;
        PQclear(r);
    }
    return 0;
}

/* The audit row of a reissue. */
static int prov_db_reissue_audit(prov_db_t *db, const prov_reissue_t *rq, prov_audit_t *audit,
                                 long long *audit_id, const prov_reissue_result_t *res,
                                 char *err, size_t errlen)
{
    char prev_fqdn[PROV_LABEL_MAX + 1 + PROV_ZONE_MAX + 1], gen[12], prev_gen[12];
    audit->device_id = rq->device_id;
    audit->zone = res->zone;
    audit->previous_kid = res->previous_kid;
    audit->previous_fqdn = NULL;
    if (res->names > 0) {
        snprintf(prev_fqdn, sizeof prev_fqdn, "%s.%s", res->previous_label, res->zone);
        audit->previous_fqdn = prev_fqdn;
    }
    snprintf(gen, sizeof gen, "%lu", (unsigned long)res->generation);
    snprintf(prev_gen, sizeof prev_gen, "%lu", (unsigned long)res->previous_generation);
    audit->generation = gen;
    audit->previous_generation = prev_gen;
    audit->devices_changed = 1;
    audit->devices_unchanged = 0;
    int rc = prov_db_audit_one(db, audit, res->label, res->zone, audit_id, err, errlen);
    /* these point into this frame */
    audit->previous_fqdn = NULL;
    audit->generation = audit->previous_generation = NULL;
    return rc;
}

int prov_db_reissue(prov_db_t *db, const prov_reissue_t *rq, prov_audit_t *audit,
                    long long *audit_id, prov_reissue_result_t *res, char *err, size_t errlen)
{
    int rc = PROV_REG_ERROR, rename = rq->rename;
    PGresult *names = NULL;
    const char *p_dev[1] = {rq->device_id};

    memset(res, 0, sizeof *res);
    if (prov_db_begin(db, err, errlen) != 0)
        return PROV_REG_ERROR;
    if (prov_db_reissue_device(db, rq, res, err, errlen) != 0)
        goto out;
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
    /* A new generation, whatever the key id: the old secret stops working. */
    char gen[12];
    snprintf(gen, sizeof gen, "%lu", (unsigned long)res->generation);
    const char *p_kid[3] = {rq->device_id, rq->kid, gen};
    PGresult *r = prov_db_exec(db, "UPDATE devices SET kid = $2, generation = $3::integer "
                                   "WHERE device_id = $1", 3, p_kid, err, errlen);
    if (r == NULL)
        goto out;
    PQclear(r);
    if (rename != PROV_RENAME_NONE &&
        prov_db_reissue_names(db, rq, rename, names, res, err, errlen) != 0)
        goto out;
    if (prov_db_reissue_audit(db, rq, audit, audit_id, res, err, errlen) != 0)
        goto out;
    rc = PROV_REG_NEW;
out:
    PQclear(names);
    return prov_db_end(db, rc != PROV_REG_ERROR, rc, err, errlen);
}
