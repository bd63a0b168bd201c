/* gw_apireq: one admin API request (see gw_apireq.h). */
#include "gw_apireq.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>

#include "gw_apiin.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_reply.h"

gw_apireq_t *gw_apireq_new(struct evhttp_request *req)
{
    gw_apireq_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->req = req;
    r->cmd = evhttp_request_get_command(req);
    snprintf(r->source, sizeof r->source, "unknown");
    gw_sql_reset(&r->sql);
    return r;
}

static void gw_apireq_free(gw_apireq_t *r)
{
    if (r == NULL)
        return;
    gw_opsconn_unwatch(r->conn);
    if (r->have_query)
        evhttp_clear_headers(&r->query);
    json_decref(r->body);
    cmn_wipe(r->new_token, sizeof r->new_token);
    free(r);
}

static void gw_apireq_gone(void *arg, int closed)
{
    gw_apireq_t *r = arg;
    r->left = 1;
    if (closed) {
        r->gone = 1;
        r->conn = NULL;
    }
    if (r->job != NULL)
        gw_db_expire(r->job);   /* nobody waits for it: the statement is cancelled */
}

void gw_apireq_async_begin(gw_apireq_t *r)
{
    r->conn = gw_opsconn_watch(r->conns, r->req, gw_apireq_gone, r);
}

/* ---- answers --------------------------------------------------------------- */

/* Sends status with body (JSON text), logs the line and frees r. */
static void gw_apireq_send(gw_apireq_t *r, int status, const char *body, size_t len)
{
    struct evhttp_request *req = r->req;
    gw_opsconn_unwatch(r->conn);
    r->conn = NULL;
    gw_info("admin %s %s from %s: %d%s%s", r->cmd == EVHTTP_REQ_GET ? "GET" :
            r->cmd == EVHTTP_REQ_POST ? "POST" : r->cmd == EVHTTP_REQ_PUT ? "PUT" :
            r->cmd == EVHTTP_REQ_DELETE ? "DELETE" : "other", r->path, r->source, status,
            r->token_id > 0 ? " token " : "", r->token_id > 0 ? r->token_id_text : "");
    if (r->gone) {
        evhttp_request_free(req);
    } else {
        if (status == 401)
            evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                              "Bearer realm=\"ddns-admin\"");
        gw_reply_printf(req, status, "application/json", "%.*s\n", (int)len, body);
    }
    gw_apireq_free(r);
}

void gw_apireq_answer_json(gw_apireq_t *r, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s == NULL) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        gw_apireq_send(r, 503, oom, sizeof oom - 1);
        return;
    }
    gw_apireq_send(r, status, s, strlen(s));
    free(s);
}

int gw_apireq_fail(gw_apireq_t *r, int status, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->fail_msg, sizeof r->fail_msg, fmt, ap);
    va_end(ap);
    r->fail_status = status;
    r->fail_field = field;
    return status == 503 ? GW_EDB : GW_EINVAL;
}

void gw_apireq_answer_fail(gw_apireq_t *r)
{
    json_t *j = json_pack("{s:s}", "error", r->fail_msg[0] ? r->fail_msg : "internal error");
    if (j != NULL && r->fail_field != NULL)
        json_object_set_new(j, "field", json_string(r->fail_field));
    gw_apireq_answer_json(r, r->fail_status ? r->fail_status : 503, j);
}

/* ---- input ----------------------------------------------------------------- */

const char *gw_apireq_q(gw_apireq_t *r, const char *key)
{
    if (!r->have_query)
        return NULL;
    const char *v = evhttp_find_header(&r->query, key);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

int gw_apireq_q_int(gw_apireq_t *r, const char *key, long lo, long hi, long def, long *out)
{
    const char *v = gw_apireq_q(r, key);
    char *end;
    *out = def;
    if (v == NULL)
        return GW_OK;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || end == v || n < lo || n > hi)
        return gw_apireq_fail(r, 400, key, "%s: an integer from %ld to %ld", key, lo, hi);
    *out = n;
    return GW_OK;
}

int gw_apireq_body_str(gw_apireq_t *r, const char *key, size_t max, const char **out)
{
    json_t *v = r->body ? json_object_get(r->body, key) : NULL;
    *out = NULL;
    if (v == NULL || !json_is_string(v))
        return gw_apireq_fail(r, 400, key, "%s: a string is required", key);
    const char *s = json_string_value(v);
    if (!gw_apiin_text_ok(s, max))
        return gw_apireq_fail(r, 400, key, "%s: 1 to %zu printable characters", key, max);
    *out = s;
    return GW_OK;
}

int gw_apireq_device_arg(gw_apireq_t *r, int i)
{
    char dec[128];
    char *d = evhttp_uridecode(r->seg[i], 0, NULL);
    snprintf(dec, sizeof dec, "%s", d ? d : "");
    free(d);
    int rc = cmn_mac_canon(dec, strlen(dec), r->device);
    if (rc != CMN_MAC_OK)
        return gw_apireq_fail(r, 400, "device_id", "device id '%.40s': %s", dec,
                              cmn_mac_explain(rc));
    return GW_OK;
}

/* ---- the statement --------------------------------------------------------- */

void gw_apireq_who(gw_apireq_t *r)
{
    gw_sql_param(&r->sql, r->token_id_text);
    gw_sql_param(&r->sql, r->actor);
    gw_sql_param(&r->sql, r->source);
}

/* A (status, body) answer of an admin_* write function. */
static void gw_apireq_status_answer(gw_apireq_t *r, const PGresult *res)
{
    int status = atoi(PQgetvalue(res, 0, 0));
    if (r->new_token[0] && status == 201) {
        json_t *j = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
        if (j != NULL)
            json_object_set_new(j, "token", json_string(r->new_token));
        gw_apireq_answer_json(r, status, j);
        return;
    }
    if (r->policy_changed && status == 200)
        gw_policydb_poll_now(r->policydb);      /* this gateway follows at once */
    gw_apireq_send(r, status, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1));
}

int gw_apireq_db_fail(gw_apireq_t *r, int err)
{
    if (err == GW_ETIMEDOUT && r->left)
        return gw_apireq_fail(r, 504, NULL, "the client went away; the statement was "
                              "cancelled");
    if (err == GW_ETIMEDOUT) {
        gw_warn("admin %s from %s: the statement ran longer than [admin] statement_timeout "
                "(%d s) and was cancelled", r->path, r->source,
                r->cfg->admin_limits.statement_timeout);
        return gw_apireq_fail(r, 504, NULL, "the database did not answer within %d s; the "
                              "statement was cancelled",
                              r->cfg->admin_limits.statement_timeout);
    }
    gw_warn("admin %s: database error", r->path);
    return gw_apireq_fail(r, 503, NULL, "database error; try again");
}

int gw_apireq_query(gw_apireq_t *r, const char *sql, int nparams, const char *const *values,
                    gw_db_cb cb)
{
    /* one second after the server's own statement_timeout, in case it
     * did not apply (a pooler that drops the startup option) */
    int rc = gw_db_query_timed(r->db, sql, nparams, values,
                               r->cfg->admin_limits.statement_timeout + 1, cb, r, &r->job);
    if (rc != GW_OK) {
        r->job = NULL;
        return gw_apireq_fail(r, 503, NULL, "database %s; try again",
                              rc == GW_EDB ? "not connected" : gw_strerror(rc));
    }
    return GW_OK;
}

static void gw_apireq_db_cb(void *arg, int err, const PGresult *res)
{
    gw_apireq_t *r = arg;
    r->job = NULL;
    if (err != GW_OK) {
        gw_apireq_db_fail(r, err);
    } else if (r->mode == GW_APIREQ_JSON) {
        if (PQntuples(res) != 1 || PQnfields(res) < 1)
            gw_apireq_fail(r, 503, NULL, "unexpected database answer");
        else if (PQgetisnull(res, 0, 0))
            gw_apireq_fail(r, 404, "device_id", "no such device");
        else {
            gw_apireq_send(r, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
            return;
        }
    } else if (PQntuples(res) != 1 || PQnfields(res) != 2 || PQgetisnull(res, 0, 0)) {
        gw_apireq_fail(r, 503, NULL, "unexpected database answer");
    } else {
        gw_apireq_status_answer(r, res);
        return;
    }
    gw_apireq_answer_fail(r);
}

int gw_apireq_run(gw_apireq_t *r, gw_apireq_mode_t mode, const char *sql)
{
    if (gw_sql_err(&r->sql) != GW_OK)
        return gw_apireq_fail(r, 400, NULL, "a value of the request is too large");
    r->mode = mode;
    return gw_apireq_query(r, sql, r->sql.np, r->sql.pv, gw_apireq_db_cb);
}
