/* ctl_tokendb: admin tokens straight in PostgreSQL, for the first token.
 *
 * Owns 'ddnsctl token create|list|revoke --db CONNINFO': the same SQL
 * functions the gateway's admin API calls (admin_token_add,
 * admin_tokens_json, admin_token_revoke of db/functions/), with the
 * actor "ddnsctl (database) USER@HOST" and the source "database" in the
 * audit row, and the gateway's token form and hash (common/cmn_token: only
 * the token's SHA-256 is stored). */
#ifndef CTL_TOKENDB_H
#define CTL_TOKENDB_H

#include <stddef.h>

#include <jansson.h>

/* Each returns the HTTP-like status of the SQL function (200, 201, 404)
 * and *out its JSON answer, or -1 with the reason in err. expires is NULL
 * or a PostgreSQL timestamptz text. */
int ctl_tokendb_create(const char *conninfo, const char *scope, const char *expires,
                       const char *comment, json_t **out, char *err, size_t errlen);
int ctl_tokendb_list(const char *conninfo, json_t **out, char *err, size_t errlen);
int ctl_tokendb_revoke(const char *conninfo, long long id, json_t **out, char *err,
                       size_t errlen);

#endif
