/* gw_api: the admin API's routes and tokens (see gw_api.h). */
#include "gw_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "cmn_token.h"
#include "gw_apiep.h"
#include "gw_apiname.h"
#include "gw_apireq.h"
#include "gw_err.h"
#include "gw_limit.h"
#include "gw_opsconn.h"

#define GW_API_BODY_MAX 16384
#define GW_API_PREFIX "/api/v1/"

struct gw_api {
    const gw_config_t *cfg;
    gw_db_t *db;
    const char *kids;
    gw_policydb_t *policydb;
    gw_limit_t *lim;                /* failed logins, apart from the devices' */
    gw_opsconn_t *conns;            /* the listener's connections */
};

enum gw_api_scope { GW_API_READ = 0, GW_API_WRITE = 1 };

typedef struct gw_api_route {
    enum evhttp_cmd_type cmd;
    int nseg;
    const char *seg[4];             /* NULL: any value */
    int scope;
    gw_apireq_fn fn;
} gw_api_route_t;

static const gw_api_route_t gw_api_routes[] = {
    {EVHTTP_REQ_GET, 1, {"whoami"}, GW_API_READ, gw_apiep_whoami},
    {EVHTTP_REQ_GET, 1, {"devices"}, GW_API_READ, gw_apiep_devices},
    {EVHTTP_REQ_GET, 2, {"devices", NULL}, GW_API_READ, gw_apiep_device},
    {EVHTTP_REQ_POST, 3, {"devices", NULL, "revoke"}, GW_API_WRITE, gw_apiep_status_action},
    {EVHTTP_REQ_POST, 3, {"devices", NULL, "restore"}, GW_API_WRITE, gw_apiep_status_action},
    {EVHTTP_REQ_POST, 3, {"devices", NULL, "republish"}, GW_API_WRITE, gw_apiep_status_action},
    {EVHTTP_REQ_POST, 3, {"devices", NULL, "names"}, GW_API_WRITE, gw_apiname_set},
    {EVHTTP_REQ_PUT, 4, {"devices", NULL, "names", NULL}, GW_API_WRITE, gw_apiname_set},
    {EVHTTP_REQ_PUT, 3, {"devices", NULL, "ttl"}, GW_API_WRITE, gw_apiep_ttl},
    {EVHTTP_REQ_POST, 3, {"devices", NULL, "reissue"}, GW_API_WRITE, gw_apiep_reissue},
    {EVHTTP_REQ_POST, 3, {"devices", NULL, "dyndns2"}, GW_API_WRITE, gw_apiep_dyndns2},
    {EVHTTP_REQ_GET, 1, {"fleet"}, GW_API_READ, gw_apiep_fleet},
    {EVHTTP_REQ_GET, 2, {"fleet", "failing"}, GW_API_READ, gw_apiep_failing},
    {EVHTTP_REQ_GET, 1, {"policy"}, GW_API_READ, gw_apiep_policy_get},
    {EVHTTP_REQ_PUT, 1, {"policy"}, GW_API_WRITE, gw_apiep_policy_put},
    {EVHTTP_REQ_GET, 1, {"audit"}, GW_API_READ, gw_apiep_audit},
    {EVHTTP_REQ_GET, 1, {"tokens"}, GW_API_READ, gw_apiep_tokens_get},
    {EVHTTP_REQ_POST, 1, {"tokens"}, GW_API_WRITE, gw_apiep_tokens_post},
    {EVHTTP_REQ_DELETE, 2, {"tokens", NULL}, GW_API_WRITE, gw_apiep_tokens_delete},
};
#define GW_API_NROUTES (sizeof gw_api_routes / sizeof gw_api_routes[0])

/* ---- the request's parts ---------------------------------------------------- */

/* The path, the query string and the segments after /api/v1/. */
static int gw_api_parse_target(gw_apireq_t *r, const char *uri)
{
    size_t pl = strcspn(uri, "?#");
    if (pl >= sizeof r->path)
        return gw_apireq_fail(r, 404, NULL, "no such endpoint");
    memcpy(r->path, uri, pl);
    r->path[pl] = '\0';
    if (uri[pl] == '?') {
        TAILQ_INIT(&r->query);
        r->have_query = 1;
        if (evhttp_parse_query_str(uri + pl + 1, &r->query) != 0)
            return gw_apireq_fail(r, 400, "query", "the query string is not valid");
    }
    if (strncmp(r->path, GW_API_PREFIX, sizeof GW_API_PREFIX - 1) != 0)
        return gw_apireq_fail(r, 404, NULL, "no such endpoint (the API is under /api/v1/)");
    for (const char *s = r->path + sizeof GW_API_PREFIX - 1; *s;) {
        size_t n = strcspn(s, "/");
        if (r->nseg == GW_APIREQ_NSEG || n == 0 || n >= sizeof r->seg[0])
            return gw_apireq_fail(r, 404, NULL, "no such endpoint");
        memcpy(r->seg[r->nseg], s, n);
        r->seg[r->nseg][n] = '\0';
        r->nseg++;
        s += n;
        if (*s == '/')
            s++;
    }
    return GW_OK;
}

static const char *gw_api_method(enum evhttp_cmd_type cmd)
{
    return cmd == EVHTTP_REQ_GET ? "GET" : cmd == EVHTTP_REQ_POST ? "POST" :
           cmd == EVHTTP_REQ_PUT ? "PUT" : "DELETE";
}

/* The route of the path and method into r (its endpoint and whether it
 * writes): 404 when no route has the path, 405 (with Allow) when none of
 * the path's routes has the method. */
static int gw_api_route(gw_apireq_t *r)
{
    char allow[64] = "";
    r->endpoint = NULL;
    for (size_t i = 0; i < GW_API_NROUTES; i++) {
        const gw_api_route_t *t = &gw_api_routes[i];
        int match = t->nseg == r->nseg;
        for (int k = 0; match && k < t->nseg; k++)
            if (t->seg[k] != NULL && strcmp(t->seg[k], r->seg[k]) != 0)
                match = 0;
        if (!match)
            continue;
        const char *m = gw_api_method(t->cmd);
        if (strstr(allow, m) == NULL)
            snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                     allow[0] ? ", " : "", m);
        if (t->cmd == r->cmd) {
            r->endpoint = t->fn;
            r->needs_write = t->scope == GW_API_WRITE;
        }
    }
    if (allow[0] == '\0')
        return gw_apireq_fail(r, 404, NULL, "no such endpoint");
    if (r->endpoint == NULL) {
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", allow);
        return gw_apireq_fail(r, 405, NULL, "method not allowed here (allowed: %s)", allow);
    }
    return GW_OK;
}

/* The body of a POST or PUT: nothing, or a JSON object. */
static int gw_api_body(gw_apireq_t *r)
{
    if (r->cmd != EVHTTP_REQ_POST && r->cmd != EVHTTP_REQ_PUT)
        return GW_OK;
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t blen = evbuffer_get_length(in);
    if (blen > GW_API_BODY_MAX)
        return gw_apireq_fail(r, 400, "body", "the body is larger than %d bytes",
                              GW_API_BODY_MAX);
    if (blen == 0)
        return GW_OK;
    json_error_t je;
    r->body = json_loadb((const char *)evbuffer_pullup(in, -1), blen, 0, &je);
    if (r->body == NULL || !json_is_object(r->body))
        return gw_apireq_fail(r, 400, "body", "the body must be a JSON object (%s)",
                              r->body == NULL ? je.text : "not an object");
    return GW_OK;
}

/* ---- the token ------------------------------------------------------------------ */

/* A source that failed too often is not even looked at (429). */
static int gw_api_not_blocked(gw_api_t *api, gw_apireq_t *r)
{
    struct sockaddr_storage ss;
    if (gw_opsconn_sa(r->source, &ss) != 0)
        return GW_OK;
    int blocked = gw_limit_blocked_in(api->lim, (struct sockaddr *)&ss);
    if (blocked <= 0)
        return GW_OK;
    char num[16];
    snprintf(num, sizeof num, "%d", blocked);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", num);
    return gw_apireq_fail(r, 429, NULL, "too many failed authentications from %s; retry in %d s",
                          r->source, blocked);
}

/* The token's row: who the request acts as, and whether it may. */
static int gw_api_token_row(gw_apireq_t *r, const PGresult *res)
{
    if (PQntuples(res) != 1) {
        struct sockaddr_storage ss;
        if (gw_opsconn_sa(r->source, &ss) == 0) {
            gw_limit_failed_in(r->api_lim, (struct sockaddr *)&ss);
            gw_limit_failure_listed((struct sockaddr *)&ss);  /* the failing sources */
        }
        return gw_apireq_fail(r, 401, NULL, "the token is unknown, expired or revoked");
    }
    r->token_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(r->token_id_text, sizeof r->token_id_text, "%lld", r->token_id);
    snprintf(r->scope, sizeof r->scope, "%s", PQgetvalue(res, 0, 1));
    snprintf(r->comment, sizeof r->comment, "%s", PQgetvalue(res, 0, 2));
    snprintf(r->expires, sizeof r->expires, "%s",
             PQgetisnull(res, 0, 3) ? "" : PQgetvalue(res, 0, 3));
    if (r->comment[0])
        snprintf(r->actor, sizeof r->actor, "token %lld (%s)", r->token_id, r->comment);
    else
        snprintf(r->actor, sizeof r->actor, "token %lld", r->token_id);
    if (r->needs_write && strcmp(r->scope, "write") != 0)
        return gw_apireq_fail(r, 403, NULL, "this token may only read (scope read); writing "
                              "needs a token of scope write");
    return GW_OK;
}

static void gw_api_auth_cb(void *arg, int err, const PGresult *res)
{
    gw_apireq_t *r = arg;
    r->job = NULL;
    int rc;
    if (err != GW_OK)
        rc = gw_apireq_db_fail(r, err);
    else if ((rc = gw_api_token_row(r, res)) == GW_OK)
        rc = r->endpoint(r);
    if (rc != GW_OK)
        gw_apireq_answer_fail(r);
}

/* The bearer token's SHA-256 (hex) into sha. */
static int gw_api_bearer(gw_apireq_t *r, char sha[65])
{
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(r->req),
                                          "Authorization");
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0 || auth[7] == '\0')
        return gw_apireq_fail(r, 401, NULL, "an 'Authorization: Bearer TOKEN' header is "
                              "required");
    const char *tok = auth + 7;
    while (*tok == ' ')
        tok++;
    cmn_token_hash(tok, strlen(tok), sha);
    return GW_OK;
}

/* Looks the token up; the route's endpoint runs when it is good. */
static int gw_api_authenticate(gw_apireq_t *r, const char *sha)
{
    gw_apireq_async_begin(r);
    const char *p[1] = {sha};
    return gw_apireq_query(r, "SELECT token_id, scope, comment, expires_at FROM admin_tokens "
                              "WHERE token_sha256 = $1 AND revoked_at IS NULL AND "
                              "(expires_at IS NULL OR expires_at > now())",
                           1, p, gw_api_auth_cb);
}

int gw_api_handle(gw_api_t *api, struct evhttp_request *req)
{
    const char *uri = evhttp_request_get_uri(req);
    if (uri == NULL || strncmp(uri, "/api/", 5) != 0)
        return 0;
    gw_apireq_t *r = gw_apireq_new(req);
    if (r == NULL) {
        evhttp_send_error(req, 503, NULL);
        return 1;
    }
    r->cfg = api->cfg;
    r->kids = &api->kids;
    r->policydb = api->policydb;
    r->db = api->db;
    r->api_lim = api->lim;
    r->conns = api->conns;
    gw_opsconn_client(api->cfg, req, r->source, sizeof r->source);
    char sha[65];
    if (gw_api_parse_target(r, uri) != GW_OK || gw_api_route(r) != GW_OK ||
        gw_api_not_blocked(api, r) != GW_OK || gw_api_bearer(r, sha) != GW_OK ||
        gw_api_body(r) != GW_OK || gw_api_authenticate(r, sha) != GW_OK)
        gw_apireq_answer_fail(r);
    return 1;
}

/* ---- life cycle ------------------------------------------------------------ */

static void gw_api_limits(const gw_config_t *cfg, gw_limit_conf_t *lc)
{
    memset(lc, 0, sizeof *lc);
    lc->auth_fail_limit = cfg->admin_limits.auth_fail_limit;
    lc->auth_fail_window = cfg->admin_limits.auth_fail_window;
    lc->auth_block_time = cfg->admin_limits.auth_block_time;
}

gw_api_t *gw_api_new(const gw_config_t *cfg, gw_db_t *db)
{
    gw_api_t *api = calloc(1, sizeof *api);
    if (api == NULL)
        return NULL;
    api->cfg = cfg;
    api->db = db;
    gw_limit_conf_t lc;
    gw_api_limits(cfg, &lc);
    api->lim = gw_limit_new(&lc, 0, "admin API");
    if (api->lim == NULL) {
        free(api);
        return NULL;
    }
    return api;
}

void gw_api_apply_settings(gw_api_t *api)
{
    gw_limit_conf_t lc;
    if (api == NULL)
        return;
    gw_api_limits(api->cfg, &lc);
    gw_limit_configure(api->lim, &lc);
}

void gw_api_set_kids(gw_api_t *api, const char *kids)
{
    api->kids = kids;
}

void gw_api_set_conns(gw_api_t *api, gw_opsconn_t *conns)
{
    api->conns = conns;
}

void gw_api_set_policydb(gw_api_t *api, gw_policydb_t *pd)
{
    api->policydb = pd;
}

void gw_api_free(gw_api_t *api)
{
    if (api != NULL)
        gw_limit_free(api->lim);
    free(api);
}
