/* prov_db: registering devices and their names in PostgreSQL.
 *
 * Owns the provisioning tool's database connection, the registration
 * transaction of one device, and the batch transaction: staging a batch
 * with COPY, checking it against what is registered, the audit row and the
 * set-based inserts. Provisioning runs serialise on one advisory lock so
 * that two stations never register the same device or name at once; the
 * gateway is never blocked. Only public data reaches the database (device
 * id, key id, serial, model, name); never a secret. */
#ifndef PROV_DB_H
#define PROV_DB_H

#include <stddef.h>

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

/* Registers c->device_id under c->kid with a name c->label in c->zone, in one
 * transaction. When label_explicit is 0 and the random label is taken, a new
 * random label is drawn. An existing device under the same key id (and
 * serial, when both are known) is PROV_REG_SAME and c->label receives its
 * current name; any other conflict is PROV_REG_ERROR with the reason in err. */
int prov_db_register(prov_db_t *db, prov_cred_t *c, int label_explicit, const char *label_prefix,
                     const char *serial, const char *model, char *err, size_t errlen);

/* Revokes (revoke = 1) or restores (revoke = 0) a device in one
 * transaction. Revoking sets the status the gateway answers 'disabled' to,
 * clears the addresses of all its names and queues the removal of their
 * DNS records in the outbox (with history rows); *records receives the
 * number of records removed. Restoring makes it active again; its records
 * come back with its next update. Returns PROV_REG_NEW when the status
 * changed, PROV_REG_SAME when it already was so, PROV_REG_ERROR with err
 * (also for a device that is not registered). */
int prov_db_set_status(prov_db_t *db, const char *device_id, int revoke, long long *records,
                       char *err, size_t errlen);

/* Hands every key id that devices are registered under to fn with the
 * number of devices and of active ones. */
int prov_db_kid_counts(prov_db_t *db, void (*fn)(void *ctx, const char *kid, long long total,
                                                 long long active),
                       void *ctx, char *err, size_t errlen) __attribute__((warn_unused_result));

/* ---- batches ----------------------------------------------------------
 * Call order: prov_db_begin, prov_db_stage, prov_db_check, then either
 * prov_db_rollback, or prov_db_audit, prov_db_insert_send,
 * prov_db_insert_wait and prov_db_commit. */

/* BEGIN and the provisioning lock. */
int prov_db_begin(prov_db_t *db, char *err, size_t errlen) __attribute__((warn_unused_result));
int prov_db_commit(prov_db_t *db, char *err, size_t errlen) __attribute__((warn_unused_result));
void prov_db_rollback(prov_db_t *db);

/* Copies every row of b whose fields are valid (PROV_ROW_F_VALID, even when
 * rejected for a duplicate within the file, so that the database checks can
 * add their reasons) into the temporary table prov_in, dropped at the end of
 * the transaction, with COPY. */
int prov_db_stage(prov_db_t *db, prov_batch_t *b, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Checks the staged rows against the database: registered MACs go to
 * prov_batch_existing() (batch key id kid), serials registered to another
 * device and explicit names that belong to another device are rejected,
 * random labels that are taken are drawn again (prefix). Afterwards only
 * the rows still new are staged. Database failures return -1 with err. */
int prov_db_check(prov_db_t *db, prov_batch_t *b, const char *kid, const char *prefix,
                  char *err, size_t errlen) __attribute__((warn_unused_result));

typedef struct prov_audit {
    const char *command;       /* "batch" */
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
} prov_audit_t;

/* Records the batch in provision_batches; *batch_id receives its id. */
int prov_db_audit(prov_db_t *db, const prov_audit_t *a, long long *batch_id, char *err,
                  size_t errlen) __attribute__((warn_unused_result));

/* Starts registering every staged row (device under kid with batch_id, its
 * name in zone) as one set-based statement and returns at once, so that
 * the caller can write the output meanwhile. prov_db_insert_wait() must
 * follow; it fails unless exactly expect devices were registered. */
int prov_db_insert_send(prov_db_t *db, long long batch_id, const char *kid, const char *zone,
                        char *err, size_t errlen) __attribute__((warn_unused_result));
int prov_db_insert_wait(prov_db_t *db, size_t expect, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
