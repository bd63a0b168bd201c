/* prov_dbbatch: the steps of a batch's transaction in PostgreSQL.
 *
 * Owns staging a batch with COPY into a temporary table, checking the
 * staged rows against what is registered (devices, serials, names; random
 * labels that are taken are drawn again) and the set-based insert of the
 * new devices and names. The connection, the transaction and the audit row
 * are prov_db's.
 *
 * Call order: prov_db_begin, prov_dbbatch_stage, prov_dbbatch_check, then
 * either prov_db_rollback, or prov_db_audit, prov_dbbatch_insert_send,
 * prov_dbbatch_insert_wait and prov_db_commit. */
#ifndef PROV_DBBATCH_H
#define PROV_DBBATCH_H

#include <stddef.h>

#include "prov_batch.h"
#include "prov_db.h"

/* Copies every row of b whose fields are valid (PROV_ROW_F_VALID, even when
 * rejected for a duplicate within the file, so that the database checks can
 * add their reasons) into the temporary table prov_in, dropped at the end of
 * the transaction, with COPY. */
int prov_dbbatch_stage(prov_db_t *db, prov_batch_t *b, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Checks the staged rows against the database: registered MACs go to
 * prov_batch_existing() (batch key id kid), serials registered to another
 * device and explicit names that belong to another device are rejected,
 * random labels that are taken are drawn again (prefix). Afterwards only
 * the rows still new are staged. Database failures return -1 with err. */
int prov_dbbatch_check(prov_db_t *db, prov_batch_t *b, const char *kid, const char *prefix,
                       char *err, size_t errlen) __attribute__((warn_unused_result));

/* Starts registering every staged row (device under kid and generation
 * with batch_id, its name in zone) as one set-based statement and returns
 * at once, so that the caller can write the output meanwhile.
 * prov_dbbatch_insert_wait() must follow; it fails unless exactly expect
 * devices were registered. */
int prov_dbbatch_insert_send(prov_db_t *db, long long batch_id, const char *kid,
                             uint32_t generation, const char *zone, char *err, size_t errlen)
    __attribute__((warn_unused_result));
int prov_dbbatch_insert_wait(prov_db_t *db, size_t expect, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
