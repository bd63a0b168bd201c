/* gw_apiep: the admin API's endpoints (see gw_apiep.h). */
#include "gw_apiep.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_apiin.h"
#include "gw_devquery.h"
#include "gw_err.h"
#include "gw_policy.h"

#define GW_APIEP_HISTORY 50
#define GW_APIEP_ARRAY_LEN GW_SQL_PARAM_LEN

int gw_apiep_whoami(gw_apireq_t *r)
{
    json_t *j = json_pack("{s:I,s:s,s:s}", "token_id", (json_int_t)r->token_id, "scope", r->scope,
                          "comment", r->comment);
    if (j != NULL)
        json_object_set_new(j, "expires", r->expires[0] ? json_string(r->expires) : json_null());
    gw_apireq_answer_json(r, 200, j);
    return GW_OK;
}

static const char *gw_apiep_get(void *arg, const char *key)
{
    return gw_apireq_q(arg, key);
}

int gw_apiep_devices(gw_apireq_t *r)
{
    gw_devquery_fail_t fail;
    int rc = gw_devquery_build(gw_apiep_get, r, &r->sql, &fail);
    if (rc != GW_OK)
        return gw_apireq_fail(r, 400, fail.field, "%s", fail.msg);
    return gw_apireq_run(r, GW_APIREQ_JSON, r->sql.text);
}

int gw_apiep_device(gw_apireq_t *r)
{
    long hist;
    int rc;
    if ((rc = gw_apireq_device_arg(r, 1)) != GW_OK ||
        (rc = gw_apireq_q_int(r, "history", 1, 1000, GW_APIEP_HISTORY, &hist)) != GW_OK)
        return rc;
    gw_sql_param(&r->sql, r->device);
    gw_sql_paramf(&r->sql, "%ld", hist);
    /* how old last_seen may be: polls that change nothing are recorded
     * every [database] seen_interval (gw_seen) */
    gw_sql_paramf(&r->sql, "%d", r->cfg->db_seen_interval);
    return gw_apireq_run(r, GW_APIREQ_JSON,
                         "SELECT (admin_device_detail($1, $2::integer) || "
                         "jsonb_build_object('last_seen_interval', $3::integer))::text");
}

int gw_apiep_status_action(gw_apireq_t *r)
{
    int rc = gw_apireq_device_arg(r, 1);
    if (rc != GW_OK)
        return rc;
    gw_apireq_who(r);
    gw_sql_param(&r->sql, r->device);
    if (strcmp(r->seg[2], "republish") == 0)
        return gw_apireq_run(r, GW_APIREQ_STATUS, "SELECT status, body::text FROM "
                                                  "admin_republish($1::bigint, $2, $3, $4)");
    gw_sql_param(&r->sql, strcmp(r->seg[2], "revoke") == 0 ? "true" : "false");
    return gw_apireq_run(r, GW_APIREQ_STATUS, "SELECT status, body::text FROM "
                                              "admin_set_status($1::bigint, $2, $3, $4, "
                                              "$5::boolean)");
}

int gw_apiep_ttl(gw_apireq_t *r)
{
    int rc = gw_apireq_device_arg(r, 1);
    if (rc != GW_OK)
        return rc;
    json_t *t = r->body ? json_object_get(r->body, "ttl") : NULL;
    if (t == NULL || (!json_is_null(t) && (!json_is_integer(t) || json_integer_value(t) < 1 ||
                                           json_integer_value(t) > 86400)))
        return gw_apireq_fail(r, 400, "ttl", "ttl: an integer from 1 to 86400 seconds, or null "
                              "for the zone's default");
    gw_apireq_who(r);
    gw_sql_param(&r->sql, r->device);
    if (json_is_null(t))
        gw_sql_param(&r->sql, NULL);
    else
        gw_sql_paramf(&r->sql, "%" JSON_INTEGER_FORMAT, json_integer_value(t));
    return gw_apireq_run(r, GW_APIREQ_STATUS, "SELECT status, body::text FROM "
                                              "admin_set_ttl($1::bigint, $2, $3, $4, "
                                              "$5::integer)");
}

/* 1 when kid is one of the blank-separated key ids of kids. */
static int gw_apiep_kid_loaded(const char *kids, const char *kid)
{
    size_t kl = strlen(kid);
    for (const char *p = kids; p != NULL && *p; p += strspn(p, " ")) {
        size_t n = strcspn(p, " ");
        if (n == kl && memcmp(p, kid, kl) == 0)
            return 1;
        p += n;
    }
    return 0;
}

int gw_apiep_reissue(gw_apireq_t *r)
{
    const char *kid;
    int rc;
    if ((rc = gw_apireq_device_arg(r, 1)) != GW_OK ||
        (rc = gw_apireq_body_str(r, "kid", 16, &kid)) != GW_OK)
        return rc;
    if (!cmn_kid_valid(kid, strlen(kid)))
        return gw_apireq_fail(r, 400, "kid", "kid: 1 to 16 characters of [a-z0-9]");
    if (!gw_apiep_kid_loaded(*r->kids, kid))
        return gw_apireq_fail(r, 400, "kid", "no master key with id '%s' is loaded by this "
                              "gateway (add it to the key directory of every gateway and "
                              "reload them first)", kid);
    gw_apireq_who(r);
    gw_sql_param(&r->sql, r->device);
    gw_sql_param(&r->sql, kid);
    return gw_apireq_run(r, GW_APIREQ_STATUS, "SELECT status, body::text FROM "
                                              "admin_reissue($1::bigint, $2, $3, $4, $5)");
}

int gw_apiep_dyndns2(gw_apireq_t *r)
{
    int rc = gw_apireq_device_arg(r, 1);
    if (rc != GW_OK)
        return rc;
    json_t *a = r->body ? json_object_get(r->body, "allowed") : NULL;
    if (!json_is_boolean(a))
        return gw_apireq_fail(r, 400, "allowed", "allowed: true (the device may use "
                              "/nic/update) or false (it may not)");
    gw_apireq_who(r);
    gw_sql_param(&r->sql, r->device);
    gw_sql_param(&r->sql, json_is_true(a) ? "true" : "false");
    return gw_apireq_run(r, GW_APIREQ_STATUS, "SELECT status, body::text FROM "
                                              "admin_set_dyndns2($1::bigint, $2, $3, $4, "
                                              "$5::boolean)");
}

int gw_apiep_fleet(gw_apireq_t *r)
{
    long days;
    int rc = gw_apireq_q_int(r, "not_seen_days", 1, 3650, 7, &days);
    if (rc != GW_OK)
        return rc;
    gw_sql_paramf(&r->sql, "%ld", days);
    return gw_apireq_run(r, GW_APIREQ_JSON, "SELECT admin_fleet($1::integer)::text");
}

int gw_apiep_failing(gw_apireq_t *r)
{
    long limit;
    int rc = gw_apireq_q_int(r, "limit", 1, 1000, 20, &limit);
    if (rc != GW_OK)
        return rc;
    gw_sql_paramf(&r->sql, "%ld", limit);
    return gw_apireq_run(r, GW_APIREQ_JSON, "SELECT admin_failing($1::integer)::text");
}

int gw_apiep_policy_get(gw_apireq_t *r)
{
    /* the configured rules too, as written in [firmware] */
    gw_sql_param(&r->sql, r->cfg->fw_blocked_models ? r->cfg->fw_blocked_models : "");
    gw_sql_param(&r->sql, r->cfg->fw_minimum_versions ? r->cfg->fw_minimum_versions : "");
    gw_sql_param(&r->sql, r->cfg->fw_signed_only_models ? r->cfg->fw_signed_only_models : "");
    gw_sql_param(&r->sql, r->cfg->fw_address_required_models
                              ? r->cfg->fw_address_required_models : "");
    return gw_apireq_run(r, GW_APIREQ_JSON,
                         "SELECT (admin_policy_json() || jsonb_build_object('config', "
                         "jsonb_build_object('blocked_models', $1::text, 'minimum_versions', "
                         "$2::text, 'signed_only_models', $3::text, "
                         "'address_required_models', $4::text)))::text");
}

/* Appends s as an element of a PostgreSQL array literal "{...". */
static int gw_apiep_array_add(char *a, size_t al, const char *s)
{
    size_t n = strlen(a);
    if (n + 2 * strlen(s) + 4 >= al)
        return GW_ENOSPC;
    if (n > 1)
        a[n++] = ',';
    a[n++] = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            a[n++] = '\\';
        a[n++] = *s;
    }
    a[n++] = '"';
    a[n] = '\0';
    return GW_OK;
}

/* A list of model names (blocked_models, signed_only_models,
 * address_required_models), checked with
 * add into check, into the array literal out. */
static int gw_apiep_models(gw_apireq_t *r, const char *member, gw_policy_t *check,
                           int (*add)(gw_policy_t *, const char *), char *out, size_t len)
{
    json_t *b = r->body ? json_object_get(r->body, member) : NULL, *v;
    size_t i;
    if (b != NULL && !json_is_array(b) && !json_is_null(b))
        return gw_apireq_fail(r, 400, member, "%s: a list of model names", member);
    json_array_foreach(b, i, v) {
        if (!json_is_string(v) || add(check, json_string_value(v)) != GW_OK ||
            gw_apiep_array_add(out, len - 1, json_string_value(v)) != GW_OK)
            return gw_apireq_fail(r, 400, member, "%s[%zu]: a model name of 1 to %d printable "
                                  "characters without ',', '/' and blanks", member, i,
                                  GW_POLICY_MODEL_MAX);
    }
    if (strchr(out, ' ') != NULL)
        return gw_apireq_fail(r, 400, member, "%s: a model name has no blanks", member);
    strcat(out, "}");
    return GW_OK;
}

/* min_firmware: {model: version}, into the array literals models, versions. */
static int gw_apiep_minimums(gw_apireq_t *r, gw_policy_t *check, char *models, char *versions,
                             size_t len)
{
    json_t *m = r->body ? json_object_get(r->body, "min_firmware") : NULL, *v;
    const char *k;
    if (m != NULL && !json_is_object(m) && !json_is_null(m))
        return gw_apireq_fail(r, 400, "min_firmware", "min_firmware: an object of model: "
                              "version");
    json_object_foreach(m, k, v) {
        if (!json_is_string(v) || !gw_version_valid(json_string_value(v)))
            return gw_apireq_fail(r, 400, "min_firmware", "min_firmware['%.64s']: a version "
                                  "such as \"2.1.0\" (a digit first)", k);
        if (gw_policy_set_minimum(check, k, json_string_value(v)) != GW_OK ||
            gw_apiep_array_add(models, len - 1, k) != GW_OK ||
            gw_apiep_array_add(versions, len - 1, json_string_value(v)) != GW_OK)
            return gw_apireq_fail(r, 400, "min_firmware", "min_firmware: '%.64s' is not a model "
                                  "name of 1 to %d printable characters without ',', '/' and "
                                  "blanks", k, GW_POLICY_MODEL_MAX);
    }
    strcat(models, "}");
    strcat(versions, "}");
    return GW_OK;
}

int gw_apiep_policy_put(gw_apireq_t *r)
{
    char blocked[GW_APIEP_ARRAY_LEN] = "{", models[GW_APIEP_ARRAY_LEN] = "{",
         versions[GW_APIEP_ARRAY_LEN] = "{", signed_only[GW_APIEP_ARRAY_LEN] = "{",
         address_required[GW_APIEP_ARRAY_LEN] = "{";
    gw_policy_t *check = gw_policy_new();
    int rc;
    if (check == NULL)
        return gw_apireq_fail(r, 503, NULL, "out of memory");
    /* the body's rules are checked as the workers will read them */
    if ((rc = gw_apiep_models(r, "blocked_models", check, gw_policy_block, blocked,
                              sizeof blocked)) == GW_OK &&
        (rc = gw_apiep_models(r, "signed_only_models", check, gw_policy_signed_only,
                              signed_only, sizeof signed_only)) == GW_OK &&
        (rc = gw_apiep_models(r, "address_required_models", check,
                              gw_policy_address_required, address_required,
                              sizeof address_required)) == GW_OK &&
        (rc = gw_apiep_minimums(r, check, models, versions, sizeof models)) == GW_OK) {
        gw_apireq_who(r);
        gw_sql_param(&r->sql, blocked);
        gw_sql_param(&r->sql, models);
        gw_sql_param(&r->sql, versions);
        gw_sql_param(&r->sql, signed_only);
        gw_sql_param(&r->sql, address_required);
        r->policy_changed = 1;
        rc = gw_apireq_run(r, GW_APIREQ_STATUS, "SELECT status, body::text FROM "
                                                "admin_policy_set($1::bigint, $2, $3, "
                                                "$4::text[], $5::text[], $6::text[], "
                                                "$7::text[], $8::text[])");
    }
    gw_policy_free(check);
    return rc;
}

int gw_apiep_audit(gw_apireq_t *r)
{
    long limit, offset;
    int rc;
    if ((rc = gw_apireq_q_int(r, "limit", 1, GW_DEVQUERY_LIMIT_MAX, 50, &limit)) != GW_OK ||
        (rc = gw_apireq_q_int(r, "offset", 0, 100000000, 0, &offset)) != GW_OK)
        return rc;
    const char *dev = gw_apireq_q(r, "device");
    char id[CMN_DEVICE_ID_LEN + 1];
    gw_sql_paramf(&r->sql, "%ld", limit);
    gw_sql_paramf(&r->sql, "%ld", offset);
    if (dev != NULL && cmn_mac_canon(dev, strlen(dev), id) != CMN_MAC_OK)
        return gw_apireq_fail(r, 400, "device", "device: a MAC in any common form");
    gw_sql_param(&r->sql, dev != NULL ? id : NULL);
    return gw_apireq_run(r, GW_APIREQ_JSON,
        "SELECT jsonb_build_object('total', (SELECT count(*) FROM admin_audit WHERE "
        "$3::text IS NULL OR device_id = $3), 'entries', coalesce((SELECT jsonb_agg("
        "jsonb_build_object('id', audit_id, 'at', at, 'token_id', token_id, 'actor', actor,"
        " 'action', action, 'device_id', device_id, 'detail', detail, 'source', source) "
        "ORDER BY audit_id DESC) FROM (SELECT * FROM admin_audit WHERE $3::text IS NULL "
        "OR device_id = $3 ORDER BY audit_id DESC LIMIT $1::integer OFFSET $2::integer) a),"
        " '[]'))::text");
}

int gw_apiep_tokens_get(gw_apireq_t *r)
{
    return gw_apireq_run(r, GW_APIREQ_JSON, "SELECT admin_tokens_json()::text");
}

/* expires: a time, a duration from now, or null; *out NULL for none. */
static int gw_apiep_expires(gw_apireq_t *r, char *when, size_t whenlen, const char **out)
{
    json_t *e = json_object_get(r->body, "expires");
    *out = NULL;
    if (e == NULL || json_is_null(e))
        return GW_OK;
    const char *s = json_is_string(e) ? json_string_value(e) : "";
    long secs = gw_apiin_duration(s);
    if (secs > 0) {
        time_t t = time(NULL) + secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, whenlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
        *out = when;
    } else if (gw_apiin_time_ok(s)) {
        *out = s;
    } else {
        return gw_apireq_fail(r, 400, "expires", "expires: a time (2027-01-31, "
                              "2027-01-31T12:00:00Z) or a duration (90m, 12h, 30d), or null "
                              "for none");
    }
    return GW_OK;
}

int gw_apiep_tokens_post(gw_apireq_t *r)
{
    char sha[65], when[40];
    const char *scope, *expires;
    int rc;
    if ((rc = gw_apireq_body_str(r, "scope", 8, &scope)) != GW_OK)
        return rc;
    if (strcmp(scope, "read") != 0 && strcmp(scope, "write") != 0)
        return gw_apireq_fail(r, 400, "scope", "scope: read or write");
    if ((rc = gw_apiep_expires(r, when, sizeof when, &expires)) != GW_OK)
        return rc;
    json_t *c = json_object_get(r->body, "comment");
    const char *comment = "";
    if (c != NULL && !json_is_null(c)) {
        if (!json_is_string(c) || strlen(json_string_value(c)) > 200 ||
            (json_string_value(c)[0] && !gw_apiin_text_ok(json_string_value(c), 200)))
            return gw_apireq_fail(r, 400, "comment", "comment: at most 200 printable "
                                  "characters");
        comment = json_string_value(c);
    }
    if (cmn_token_new(r->new_token, sha) != 0)
        return gw_apireq_fail(r, 503, NULL, "no random bytes for a token");
    gw_apireq_who(r);
    gw_sql_param(&r->sql, sha);
    gw_sql_param(&r->sql, scope);
    gw_sql_param(&r->sql, expires);
    gw_sql_param(&r->sql, comment);
    return gw_apireq_run(r, GW_APIREQ_STATUS, "SELECT status, body::text FROM admin_token_add("
                                              "$1::bigint, $2, $3, $4, $5, $6::timestamptz, "
                                              "$7)");
}

int gw_apiep_tokens_delete(gw_apireq_t *r)
{
    char *end;
    long long id = strtoll(r->seg[1], &end, 10);
    if (*end != '\0' || end == r->seg[1] || id < 1)
        return gw_apireq_fail(r, 400, "token_id", "token id: a positive integer");
    gw_apireq_who(r);
    gw_sql_paramf(&r->sql, "%lld", id);
    return gw_apireq_run(r, GW_APIREQ_STATUS, "SELECT status, body::text FROM "
                                              "admin_token_revoke($1::bigint, $2, $3, "
                                              "$4::bigint)");
}
