/* prov_db: registering devices and their names in PostgreSQL.
 *
 * Owns the provisioning tool's database connection and the registration
 * transaction. Only public data reaches the database (device id, key id,
 * serial, model, name); never a secret. */
#ifndef PROV_DB_H
#define PROV_DB_H

#include <stddef.h>

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

#endif
