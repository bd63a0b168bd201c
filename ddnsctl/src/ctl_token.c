/* ctl_token: the token command of ddnsctl (see ctl_token.h). */
#include "ctl_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ctl_cli.h"
#include "ctl_table.h"
#include "ctl_tokendb.h"

static const char ctl_usage_token[] =
"Usage: ddnsctl token list [--db CONNINFO]\n"
"       ddnsctl token create --scope read|write [--expires WHEN] [--comment TEXT]\n"
"                            [--db CONNINFO]\n"
"       ddnsctl token revoke ID [--db CONNINFO]\n"
"\n"
"Admin tokens are stored only as their SHA-256; 'create' prints the token\n"
"once (keep it: it cannot be shown again). A read token may use every GET;\n"
"writing needs scope write.\n"
"\n"
"Through the API these need a token of scope write (list: read). With --db\n"
"CONNINFO (or DDNS_DB set and no URL configured) ddnsctl works directly on\n"
"PostgreSQL instead, which is how the first token is made; the audit row then\n"
"names 'ddnsctl (database) USER@HOST'.\n"
"\n"
"  --scope S       read or write\n"
"  --expires WHEN  a time (2027-01-31, 2027-01-31T12:00:00Z) or a duration\n"
"                  (90m, 12h, 30d); default: never\n"
"  --comment TEXT  who or what it is for (at most 200 characters), shown in\n"
"                  the audit log\n"
"  --db CONNINFO   PostgreSQL connection string\n";

/* --expires: a duration becomes an absolute UTC time. */
static int ctl_expires(const char *s, char *out, size_t outlen)
{
    char *end;
    long n = strtol(s, &end, 10);
    long mul = end == s || n <= 0 ? -1 : *end == '\0' || strcmp(end, "s") == 0 ? 1 :
               strcmp(end, "m") == 0 ? 60 : strcmp(end, "h") == 0 ? 3600 :
               strcmp(end, "d") == 0 ? 86400 : -1;
    if (mul > 0 && n <= 3650L * 86400 / mul) {
        time_t t = time(NULL) + n * mul;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return 0;
    }
    snprintf(out, outlen, "%s", s);
    return 0;
}

/* The answer of a token verb: its status (or -1 with err) and JSON. */
typedef struct ctl_token_answer {
    int status;
    json_t *j;
    char err[1024];
} ctl_token_answer_t;

/* token create: o[] is --scope, --expires, --comment, --db; db is the
 * connection string when the database is used. Returns 0 with the answer
 * in a, or the exit code after printing why. */
static int ctl_token_create(int nops, char **ops, const ctl_cli_opt_t *o, const char *db,
                            ctl_token_answer_t *a)
{
    char when[64];
    if (nops != 1) {
        fprintf(stderr, "ddnsctl token create: unexpected argument '%s'\n", ops[1]);
        return CTL_EXIT_USAGE;
    }
    if (o[0].val == NULL || (strcmp(o[0].val, "read") != 0 && strcmp(o[0].val, "write") != 0)) {
        fprintf(stderr, "ddnsctl token create: --scope read or --scope write is required\n");
        return CTL_EXIT_USAGE;
    }
    if (o[2].val != NULL && strlen(o[2].val) > 200) {
        fprintf(stderr, "ddnsctl token create: --comment: at most 200 characters\n");
        return CTL_EXIT_USAGE;
    }
    if (o[1].val != NULL)
        ctl_expires(o[1].val, when, sizeof when);
    if (db != NULL) {
        a->status = ctl_tokendb_create(db, o[0].val, o[1].val ? when : NULL, o[2].val, &a->j,
                                       a->err, sizeof a->err);
        return 0;
    }
    json_t *body = json_pack("{s:s,s:s}", "scope", o[0].val, "comment", o[2].val ? o[2].val : "");
    if (o[1].val != NULL)
        json_object_set_new(body, "expires", json_string(o[1].val));
    a->status = 201;
    return ctl_cli_call("POST", "/api/v1/tokens", body, &a->j);
}

/* token revoke ID: as ctl_token_create. */
static int ctl_token_revoke(int nops, char **ops, const char *db, ctl_token_answer_t *a)
{
    char *end, path[64];
    long long id = nops == 2 ? strtoll(ops[1], &end, 10) : 0;
    if (nops != 2 || *end != '\0' || id < 1) {
        fprintf(stderr, "ddnsctl token revoke: the token ID (a number, see 'token list') is "
                "required\n");
        return CTL_EXIT_USAGE;
    }
    if (db != NULL) {
        a->status = ctl_tokendb_revoke(db, id, &a->j, a->err, sizeof a->err);
        return 0;
    }
    snprintf(path, sizeof path, "/api/v1/tokens/%lld", id);
    a->status = 200;
    return ctl_cli_call("DELETE", path, NULL, &a->j);
}

/* Prints the answer of a verb that went through. */
static void ctl_token_print(const char *verb, const json_t *j)
{
    if (ctl_cli_json) {
        ctl_cli_print_json(j);
    } else if (strcmp(verb, "list") == 0) {
        static const ctl_col_t c[] = {{"ID", "token_id"}, {"SCOPE", "scope"},
                                      {"STATE", "state"}, {"EXPIRES", "expires"},
                                      {"CREATED", "created"}, {"BY", "created_by"},
                                      {"COMMENT", "comment"}};
        ctl_table_print(json_object_get(j, "tokens"), c, 7);
    } else if (strcmp(verb, "create") == 0) {
        char t[64];
        ctl_table_text(json_object_get(j, "expires"), t, sizeof t);
        fprintf(stderr, "ddnsctl: token %" JSON_INTEGER_FORMAT " (scope %s, expires %s) "
                "created; it is shown only now:\n",
                json_integer_value(json_object_get(j, "token_id")),
                json_string_value(json_object_get(j, "scope")), t);
        printf("%s\n", json_string_value(json_object_get(j, "token")));
    } else {
        ctl_cli_print_result(j);
    }
}

int ctl_cmd_token(int argc, char **argv)
{
    CTL_CLI_OPTS({"scope", NULL, {0}, 0, 0}, {"expires", NULL, {0}, 0, 0},
                 {"comment", NULL, {0}, 0, 0}, {"db", NULL, {0}, 0, 0});
    char *ops[2];
    int nops, rc = ctl_cli_opts(argc, argv, o, no, ctl_usage_token, ops, &nops, 2);
    ctl_token_answer_t a = {-1, NULL, ""};
    if (rc < 0)
        return rc == -2 ? 0 : CTL_EXIT_USAGE;
    if (nops < 1) {
        fprintf(stderr, "ddnsctl token: list, create or revoke\n\n%s", ctl_usage_token);
        return CTL_EXIT_USAGE;
    }
    const char *verb = ops[0], *db = o[3].val;
    if (db == NULL && ctl_cli_conf.url[0] == '\0' && getenv("DDNS_DB") != NULL)
        db = getenv("DDNS_DB");
    if (strcmp(verb, "create") == 0) {
        rc = ctl_token_create(nops, ops, o, db, &a);
    } else if (strcmp(verb, "list") == 0) {
        if (db != NULL) {
            a.status = ctl_tokendb_list(db, &a.j, a.err, sizeof a.err);
        } else {
            a.status = 200;
            rc = ctl_cli_call("GET", "/api/v1/tokens", NULL, &a.j);
        }
    } else if (strcmp(verb, "revoke") == 0) {
        rc = ctl_token_revoke(nops, ops, db, &a);
    } else {
        fprintf(stderr, "ddnsctl token: '%s': list, create or revoke\n", verb);
        return CTL_EXIT_USAGE;
    }
    if (rc != 0)
        return rc;
    if (a.status < 0) {
        fprintf(stderr, "ddnsctl token %s: %s\n", verb, a.err);
        return CTL_EXIT_CONNECT;
    }
    if (a.status >= 300) {
        rc = ctl_cli_refused(a.status, a.j);
        json_decref(a.j);
        return rc;
    }
    ctl_token_print(verb, a.j);
    json_decref(a.j);
    return 0;
}
