/* ctl_tokendb: tokens directly in the database (see ctl_tokendb.h). */
#include "ctl_tokendb.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cmn_key.h"
#include "cmn_text.h"
#include "cmn_token.h"

/* Runs sql with params; status column 0 (or 200 when one column), JSON
 * column 1 (or 0). */
static int ctl_tokendb_run(const char *conninfo, const char *sql, int n, const char *const *p,
                           json_t **out, char *err, size_t errlen)
{
    int status = -1;
    PGresult *r = NULL;
    *out = NULL;
    PGconn *c = PQconnectdb(conninfo ? conninfo : "");
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(c));
        goto out;
    }
    r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        snprintf(err, errlen, "%s", PQerrorMessage(c));
        cmn_rtrim(err, "\n ");
        goto out;
    }
    int jc = PQnfields(r) == 2 ? 1 : 0;
    *out = json_loads(PQgetvalue(r, 0, jc), 0, NULL);
    if (*out == NULL) {
        snprintf(err, errlen, "unexpected answer from the database");
        goto out;
    }
    status = jc ? atoi(PQgetvalue(r, 0, 0)) : 200;
out:
    PQclear(r);
    PQfinish(c);
    return status;
}

static void ctl_tokendb_actor(char *out, size_t outlen)
{
    char host[64] = "localhost";
    struct passwd *pw = getpwuid(getuid());
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    snprintf(out, outlen, "ddnsctl (database) %s@%s", pw ? pw->pw_name : "?", host);
}

int ctl_tokendb_create(const char *conninfo, const char *scope, const char *expires,
                       const char *comment, json_t **out, char *err, size_t errlen)
{
    char token[CMN_TOKEN_LEN + 1], sha[CMN_TOKEN_SHA_LEN + 1], actor[160];
    if (cmn_token_new(token, sha) != 0) {
        snprintf(err, errlen, "no random bytes for a token");
        return -1;
    }
    ctl_tokendb_actor(actor, sizeof actor);
    const char *p[6] = {actor, sha, scope, expires, comment ? comment : ""};
    int st = ctl_tokendb_run(conninfo,
                             "SELECT status, body::text FROM admin_token_add(NULL, $1, "
                             "'database', $2, $3, $4::timestamptz, $5)",
                             5, p, out, err, errlen);
    if (st == 201)
        json_object_set_new(*out, "token", json_string(token));
    cmn_wipe(token, sizeof token);
    return st;
}

int ctl_tokendb_list(const char *conninfo, json_t **out, char *err, size_t errlen)
{
    return ctl_tokendb_run(conninfo, "SELECT admin_tokens_json()::text", 0, NULL, out, err,
                           errlen);
}

int ctl_tokendb_revoke(const char *conninfo, long long id, json_t **out, char *err,
                       size_t errlen)
{
    char actor[160], num[24];
    ctl_tokendb_actor(actor, sizeof actor);
    snprintf(num, sizeof num, "%lld", id);
    const char *p[2] = {actor, num};
    return ctl_tokendb_run(conninfo,
                           "SELECT status, body::text FROM admin_token_revoke(NULL, $1, "
                           "'database', $2::bigint)",
                           2, p, out, err, errlen);
}
