/* prov_db: registering devices and their names in PostgreSQL.
 *
 * Owns the provisioning tool's database connection, the registration
 * transaction of one device ('issue'), moving a device to another key id
 * or name ('reissue', with its DNS changes through the outbox), revoking and
 * restoring, the audit rows of all of these, and the transaction and
 * audit row of a batch (whose steps are prov_dbbatch's). Provisioning runs
 * serialise on one advisory lock so that two stations never register the
 * same device or name at once; the gateway is never blocked. Only public data reaches the database (device
 * id, key id, serial, model, name); never a secret. */
#ifndef PROV_DB_H
#define PROV_DB_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "prov_batch.h"
#include "prov_cred.h"

typedef struct prov_db prov_db_t;

enum prov_reg {
    PROV_REG_ERROR = -1,
    PROV_REG_NEW = 0,      /* device and name created */
    PROV_REG_SAME = 1,     /* already registered exactly so: nothing changed */
};

/* Connects (conninfo NULL or "": libpq's PG* environment). */
prov_db_t *prov_db_connect(const char *conninfo, char *err, size_t errlen);
void prov_db_close(prov_db_t *db);

typedef struct prov_audit prov_audit_t;

/* Registers c->device_id under c->kid and c->generation with a name
 * c->label in c->zone, in one transaction. When label_explicit is 0 and the
 * random label is taken, a new random label is drawn. An existing device
 * under the same key id (and serial, when both are known) is PROV_REG_SAME,
 * c->label receives its current name and *generation its generation (which
 * a reissue may have raised: its credentials are those of that
 * generation); any other conflict is PROV_REG_ERROR with the reason in err.
 * Unless it fails, the same transaction records audit (command 'issue';
 * device_id, fqdn, generation and the counts are filled in here) in
 * provision_batches, *audit_id receives its id, and a new device's batch_id
 * names it. */
int prov_db_register(prov_db_t *db, prov_cred_t *c, int label_explicit, const char *label_prefix,
                     const char *serial, const char *model, prov_audit_t *audit,
                     long long *audit_id, uint32_t *generation, char *err, size_t errlen);

/* The zones' primary DNS server (addr[:port]) that ddns-provision asks
 * whether an explicit label already holds records (cmn_label); unset: it
 * is not asked. */
#define PROV_DNS_SERVER_ENV "DDNS_DNS_SERVER"
#define PROV_DNS_TIMEOUT_MS 2000

/* With DDNS_DNS_SERVER set: -1 with err when label.zone already holds
 * records there and is no device's name (the zone's own hosts), or when the
 * server gives no answer; otherwise 0 (also without DDNS_DNS_SERVER). */
int prov_db_label_foreign(prov_db_t *db, const char *label, const char *zone, char *err,
                          size_t errlen) __attribute__((warn_unused_result));

/* The key id and generation device_id is registered under: 1 and both,
 * 0 when it is not registered, -1 with err. */
int prov_db_device_key(prov_db_t *db, const char *device_id, char kid[CMN_KID_MAX + 1],
                       uint32_t *generation, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Moving a registered device to another master key id ('reissue'). */
typedef struct prov_reissue {
    const char *device_id;
    const char *kid;          /* the key id the device is moved to */
    int rename;               /* PROV_RENAME_* */
    const char *label;        /* PROV_RENAME_LABEL: the new label (checked) */
    const char *label_prefix; /* PROV_RENAME_RANDOM: prefix of the random labels */
} prov_reissue_t;

enum prov_rename {
    PROV_RENAME_NONE = 0,     /* names stay */
    PROV_RENAME_RANDOM,       /* every name gets a new random label in its zone */
    PROV_RENAME_LABEL,        /* the device's only name gets the given label */
};

/* What a reissue found and did. Text fields are empty when unknown. */
typedef struct prov_reissue_result {
    char previous_kid[CMN_KID_MAX + 1];
    uint32_t previous_generation;
    uint32_t generation;                /* the device's generation afterwards */
    char label[PROV_LABEL_MAX + 1];    /* the device's first name afterwards */
    char zone[PROV_ZONE_MAX + 1];
    char previous_label[PROV_LABEL_MAX + 1]; /* its first name before */
    char serial[PROV_SERIAL_MAX + 1];
    char model[PROV_MODEL_MAX + 1];
    int has_serial, has_model;
    int revoked;              /* the device is (and stays) revoked */
    long long names;          /* names that got a new label */
    long long records;        /* DNS records moved from old to new names */
} prov_reissue_result_t;

/* In one transaction under the provisioning lock, with the device row
 * locked as the gateway locks it: sets the device's key id to r->kid,
 * raises its generation by one (also when the key id stays, so that every
 * secret it had is refused from the commit on) and, when asked, gives its
 * names new labels (unique in their zone). For each
 * renamed name with recorded addresses, the old name's records are deleted
 * and the new name's published through dns_outbox (address NULL deletes
 * the RRset), with history rows, and pg_notify('ddns_outbox') wakes the
 * publisher. The device keeps its status, addresses and last_ts (the replay
 * rule compares timestamps only, so the new secret works at once). The
 * audit row (command 'reissue'; device_id, kids, names and counts filled in
 * here) is written in the same transaction. Returns PROV_REG_NEW, or
 * PROV_REG_ERROR with err (also for a device that is not registered, a name
 * that is taken, or a device at the last generation). */
int prov_db_reissue(prov_db_t *db, const prov_reissue_t *r, prov_audit_t *audit,
                    long long *audit_id, prov_reissue_result_t *res, char *err, size_t errlen);

/* Revokes (revoke = 1) or restores (revoke = 0) a device in one
 * transaction. Revoking sets the status the gateway answers 'disabled' to,
 * clears the addresses of all its names and queues the removal of their
 * DNS records in the outbox (with history rows); *records receives the
 * number of records removed. Restoring makes it active again; its records
 * come back with its next update. Returns PROV_REG_NEW when the status
 * changed, PROV_REG_SAME when it already was so, PROV_REG_ERROR with err
 * (also for a device that is not registered). Either way but the last, the
 * same transaction records audit (command 'revoke' or 'restore'; device_id,
 * kid, generation, zone, fqdn and the counts filled in here) and *audit_id
 * receives its id. */
int prov_db_set_status(prov_db_t *db, const char *device_id, int revoke, prov_audit_t *audit,
                       long long *audit_id, long long *records,
                       char *err, size_t errlen);

/* Hands every key id that devices are registered under to fn with the
 * number of devices and of active ones. */
int prov_db_kid_counts(prov_db_t *db, void (*fn)(void *ctx, const char *kid, long long total,
                                                 long long active),
                       void *ctx, char *err, size_t errlen) __attribute__((warn_unused_result));

/* ---- transactions (the batch steps are in prov_dbbatch.h) -------------- */

/* BEGIN and the provisioning lock. */
int prov_db_begin(prov_db_t *db, char *err, size_t errlen) __attribute__((warn_unused_result));
int prov_db_commit(prov_db_t *db, char *err, size_t errlen) __attribute__((warn_unused_result));
void prov_db_rollback(prov_db_t *db);

struct prov_audit {
    const char *command;       /* batch, register, issue, reissue, revoke, restore */
    const char *operator_name;
    const char *kid;
    const char *zone;
    const char *input_name;
    const char *input_sha256;
    size_t input_bytes;
    size_t lines;
    size_t devices_new;
    size_t devices_unchanged;
    size_t lines_rejected;
    const char *output_format;
    const char *tool_version;
    /* single-device commands (issue, reissue); NULL and 0 for batches */
    const char *device_id;
    const char *previous_kid;  /* reissue: the key id before */
    const char *fqdn;          /* the device's name afterwards */
    const char *previous_fqdn; /* reissue with a new name: the name before */
    size_t devices_changed;    /* reissue: 1 when the device changed */
    const char *generation;    /* the generation the devices are at afterwards */
    const char *previous_generation; /* reissue: the generation before */
};

/* Records the batch (or single-device command) in provision_batches;
 * *batch_id receives its id. */
int prov_db_audit(prov_db_t *db, const prov_audit_t *a, long long *batch_id, char *err,
                  size_t errlen) __attribute__((warn_unused_result));

/* ---- for the modules that run their own statements (prov_dbbatch) ------ */

/* The libpq connection. */
PGconn *prov_db_pg(prov_db_t *db);
/* Runs one parameterised statement; returns the result (the caller clears
 * it) or NULL with err set ("database: MESSAGE"). */
PGresult *prov_db_exec(prov_db_t *db, const char *sql, int n, const char *const *params,
                       char *err, size_t errlen);
/* Runs a statement without parameters or result; 0 or -1 with err set. */
int prov_db_simple(prov_db_t *db, const char *sql, char *err, size_t errlen);
/* err = "database: WHAT: " and the connection's last error message. */
void prov_db_errmsg(prov_db_t *db, const char *what, char *err, size_t errlen);
/* err = "database: " and the error message of the failed result r. */
void prov_db_result_err(const PGresult *r, char *err, size_t errlen);

#endif
