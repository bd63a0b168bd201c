/* gw_api: the admin API (see gw_api.h). */
#include "gw_api.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cmn_mac.h"
#include "cmn_token.h"
#include "gw_err.h"
#include "gw_limit.h"
#include "gw_log.h"
#include "gw_metrics.h"

#define GW_API_BODY_MAX 16384
#define GW_API_NPARAMS 24
#define GW_API_PARAM_LEN 512
#define GW_API_TIMEOUT_S 10
#define GW_API_HISTORY 50
#define GW_API_LIMIT_MAX 1000
#define GW_API_COMPACT_TICKS (60 / GW_API_TICK_S)
#define GW_API_SOURCES_MAX 1000

typedef struct gw_api_rule {
    char model[GW_POLICY_MODEL_MAX + 1];
    char version[GW_POLICY_VERSION_MAX + 1];   /* "" : no minimum */
    int blocked;
} gw_api_rule_t;

struct gw_api {
    struct event_base *base;
    const gw_config_t *cfg;
    gw_db_t *db;
    const cmn_keyset_t *keys;
    struct event *tick;
    void (*policy_cb)(void *);
    void *policy_arg;
    /* operator policy */
    gw_api_rule_t *rules;
    size_t nrules;
    long long policy_version;       /* -1: never read */
    gw_db_job_t *policy_job;
    /* per-minute counts */
    unsigned long long flushed_updates, flushed_errors;
    unsigned long long sending_updates, sending_errors;
    gw_db_job_t *flush_job;
    gw_db_job_t *compact_job;
    gw_db_job_t *sources_job;
    unsigned ticks;
    char gateway_name[128];
};

enum gw_api_scope { GW_API_READ = 0, GW_API_WRITE = 1 };

/* How a query's answer becomes the HTTP answer. */
enum gw_api_mode {
    GW_API_JSON,        /* one JSON value; SQL NULL: 404 no such device */
    GW_API_STATUS,      /* (status integer, body jsonb) */
};

struct gw_api_req;
typedef void (*gw_api_fn)(struct gw_api_req *r);

/* One admin request, from its arrival to its answer. */
typedef struct gw_api_req {
    gw_api_t *api;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    int gone;
    gw_db_job_t *job;
    enum evhttp_cmd_type cmd;
    char path[512];
    char seg[6][128];               /* path segments after /api/v1/ */
    int nseg;
    struct evkeyvalq query;
    int have_query;
    json_t *body;
    gw_api_fn fn;
    int scope_needed;
    /* the token */
    long long token_id;
    char scope[8];
    char expires[40];
    char comment[256];
    char actor[300];
    char source[INET6_ADDRSTRLEN];
    char token_id_text[24];
    /* the query */
    enum gw_api_mode mode;
    char params[GW_API_NPARAMS][GW_API_PARAM_LEN];
    const char *pv[GW_API_NPARAMS];
    int np;
    char new_token[CMN_TOKEN_LEN + 1];   /* POST /tokens: answered once */
    int policy_changed;
    char device[CMN_DEVICE_ID_LEN + 1];
} gw_api_req_t;

/* ---- answers --------------------------------------------------------------- */

static void gw_api_req_free(gw_api_req_t *r)
{
    if (r->have_query)
        evhttp_clear_headers(&r->query);
    json_decref(r->body);
    cmn_wipe(r->new_token, sizeof r->new_token);
    free(r);
}

static void gw_api_closecb(struct evhttp_connection *evcon, void *arg)
{
    gw_api_req_t *r = arg;
    (void)evcon;
    r->gone = 1;
    r->evcon = NULL;
}

/* Sends status with body (JSON text) and frees r. */
static void gw_api_send(gw_api_req_t *r, int status, const char *body, size_t len)
{
    struct evhttp_request *req = r->req;
    if (r->evcon != NULL)
        evhttp_connection_set_closecb(r->evcon, NULL, NULL);
    gw_info("admin %s %s from %s: %d%s%s", r->cmd == EVHTTP_REQ_GET ? "GET" :
            r->cmd == EVHTTP_REQ_POST ? "POST" : r->cmd == EVHTTP_REQ_PUT ? "PUT" :
            r->cmd == EVHTTP_REQ_DELETE ? "DELETE" : "other", r->path, r->source, status,
            r->token_id > 0 ? " token " : "", r->token_id > 0 ? r->token_id_text : "");
    if (r->gone) {
        evhttp_request_free(req);
    } else {
        struct evbuffer *b = evbuffer_new();
        struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
        if (b == NULL) {
            evhttp_send_error(req, 503, NULL);
        } else {
            evbuffer_add(b, body, len);
            evbuffer_add(b, "\n", 1);
            evhttp_add_header(oh, "Content-Type", "application/json");
            evhttp_add_header(oh, "Cache-Control", "no-store");
            if (status == 401)
                evhttp_add_header(oh, "WWW-Authenticate", "Bearer realm=\"ddns-admin\"");
            const char *reason = status == 200 ? "OK" : status == 201 ? "Created" :
                                 status == 400 ? "Bad Request" : status == 401 ? "Unauthorized" :
                                 status == 403 ? "Forbidden" : status == 404 ? "Not Found" :
                                 status == 405 ? "Method Not Allowed" :
                                 status == 409 ? "Conflict" : status == 429 ? "Too Many Requests" :
                                 status == 503 ? "Service Unavailable" : "Error";
            evhttp_send_reply(req, status, reason, b);
            evbuffer_free(b);
        }
    }
    gw_api_req_free(r);
}

static void gw_api_json(gw_api_req_t *r, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s == NULL) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        gw_api_send(r, 503, oom, sizeof oom - 1);
        return;
    }
    gw_api_send(r, status, s, strlen(s));
    free(s);
}

/* {"error": message, "field": field} */
static void gw_api_error(gw_api_req_t *r, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void gw_api_error(gw_api_req_t *r, int status, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *j = json_pack("{s:s}", "error", msg);
    if (j != NULL && field != NULL)
        json_object_set_new(j, "field", json_string(field));
    gw_api_json(r, status, j);
}

/* ---- queries --------------------------------------------------------------- */

/* Adds a text parameter (NULL: SQL NULL); returns its number ("$n"). */
static int gw_api_param(gw_api_req_t *r, const char *v)
{
    int n = r->np++;
    if (v == NULL) {
        r->pv[n] = NULL;
    } else {
        snprintf(r->params[n], GW_API_PARAM_LEN, "%s", v);
        r->pv[n] = r->params[n];
    }
    return n + 1;
}

static int gw_api_paramf(gw_api_req_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int gw_api_paramf(gw_api_req_t *r, const char *fmt, ...)
{
    int n = r->np++;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->params[n], GW_API_PARAM_LEN, fmt, ap);
    va_end(ap);
    r->pv[n] = r->params[n];
    return n + 1;
}

static void gw_api_db_cb(void *arg, int err, const PGresult *res)
{
    gw_api_req_t *r = arg;
    r->job = NULL;
    if (err != GW_OK) {
        gw_warn("admin %s: database %s", r->path,
                err == GW_ETIMEDOUT ? "did not answer in time" : "error");
        gw_api_error(r, 503, NULL, "database %s; try again",
                     err == GW_ETIMEDOUT ? "did not answer in time" : "error");
        return;
    }
    if (r->mode == GW_API_JSON) {
        if (PQntuples(res) != 1 || PQnfields(res) < 1) {
            gw_api_error(r, 503, NULL, "unexpected database answer");
        } else if (PQgetisnull(res, 0, 0)) {
            gw_api_error(r, 404, "device_id", "no such device");
        } else {
            gw_api_send(r, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
        }
        return;
    }
    if (PQntuples(res) != 1 || PQnfields(res) != 2 || PQgetisnull(res, 0, 0)) {
        gw_api_error(r, 503, NULL, "unexpected database answer");
        return;
    }
    int status = atoi(PQgetvalue(res, 0, 0));
    if (r->new_token[0] && status == 201) {
        json_t *j = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
        if (j != NULL)
            json_object_set_new(j, "token", json_string(r->new_token));
        gw_api_json(r, status, j);
        return;
    }
    if (r->policy_changed && status == 200 && r->api->tick != NULL) {
        /* this gateway picks the new policy up at once */
        struct timeval now = {0, 0};
        evtimer_add(r->api->tick, &now);
    }
    gw_api_send(r, status, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1));
}

static void gw_api_run(gw_api_req_t *r, enum gw_api_mode mode, const char *sql)
{
    r->mode = mode;
    int rc = gw_db_query_timed(r->api->db, sql, r->np, r->pv, GW_API_TIMEOUT_S, gw_api_db_cb, r,
                               &r->job);
    if (rc != GW_OK) {
        r->job = NULL;
        gw_api_error(r, 503, NULL, "database %s; try again",
                     rc == GW_EDB ? "not connected" : gw_strerror(rc));
    }
}

/* The first four parameters of every write function: token, actor, source,
 * and (for a device) the device id. */
static void gw_api_who(gw_api_req_t *r)
{
    gw_api_param(r, r->token_id_text);
    gw_api_param(r, r->actor);
    gw_api_param(r, r->source);
}

/* ---- input ----------------------------------------------------------------- */

static const char *gw_api_q(gw_api_req_t *r, const char *key)
{
    if (!r->have_query)
        return NULL;
    const char *v = evhttp_find_header(&r->query, key);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* A decimal integer in [lo, hi] or the default when absent. 0 or -1 (400 sent). */
static int gw_api_q_int(gw_api_req_t *r, const char *key, long lo, long hi, long def, long *out)
{
    const char *v = gw_api_q(r, key);
    char *end;
    *out = def;
    if (v == NULL)
        return 0;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || end == v || n < lo || n > hi) {
        gw_api_error(r, 400, key, "%s: an integer from %ld to %ld", key, lo, hi);
        return -1;
    }
    *out = n;
    return 0;
}

/* A time: YYYY-MM-DD, optionally followed by [T ]HH:MM[:SS[.frac]] and Z or
 * +HH[:MM] / -HH[:MM]. */
static int gw_api_time_valid(const char *s)
{
    int y, mo, d, h, mi, n = 0;
    if (strlen(s) > 35 || sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10 ||
        mo < 1 || mo > 12 || d < 1 || d > 31 || y < 1970)
        return 0;
    s += 10;
    if (*s == '\0')
        return 1;
    if (*s != 'T' && *s != ' ' && *s != 't')
        return 0;
    s++;
    n = 0;
    if (sscanf(s, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5 || h > 23 || mi > 59)
        return 0;
    s += 5;
    if (s[0] == ':') {
        if (!isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]))
            return 0;
        s += 3;
        if (*s == '.') {
            s++;
            if (!isdigit((unsigned char)*s))
                return 0;
            while (isdigit((unsigned char)*s))
                s++;
        }
    }
    if (*s == '\0' || ((*s == 'Z' || *s == 'z') && s[1] == '\0'))
        return 1;
    if (*s != '+' && *s != '-')
        return 0;
    s++;
    for (int i = 0; i < 2; i++)
        if (!isdigit((unsigned char)*s++))
            return 0;
    if (*s == ':')
        s++;
    if (*s == '\0')
        return 1;
    for (int i = 0; i < 2; i++)
        if (!isdigit((unsigned char)*s++))
            return 0;
    return *s == '\0';
}

/* Escapes LIKE's special characters; returns 0, or -1 when it does not fit. */
static int gw_api_like(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *in; in++) {
        if (o + 3 >= outlen) {
            out[o] = '\0';
            return -1;
        }
        if (*in == '%' || *in == '_' || *in == '\\')
            out[o++] = '\\';
        out[o++] = *in;
    }
    out[o] = '\0';
    return 0;
}

/* 1 when s is printable text without control characters, at most max bytes. */
static int gw_api_text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* Hex digits of a MAC fragment (separators ':', '-', '.' dropped, 2 to 12
 * digits, lowercase) into out; 0, or -1 when s is not one. */
static int gw_api_mac_part(const char *s, char *out)
{
    size_t o = 0;
    for (; *s; s++) {
        if (*s == ':' || *s == '-' || *s == '.')
            continue;
        if (!isxdigit((unsigned char)*s) || o == 12)
            return -1;
        out[o++] = (char)tolower((unsigned char)*s);
    }
    out[o] = '\0';
    return o >= 2 ? 0 : -1;
}

/* A DNS label of the names table: 1-63 of [a-z0-9-], no '-' at either end. */
static int gw_api_label_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return 0;
    return 1;
}

/* ---- the handlers ---------------------------------------------------------- */

static void gw_api_whoami(gw_api_req_t *r)
{
    json_t *j = json_pack("{s:I,s:s,s:s}", "token_id", (json_int_t)r->token_id, "scope", r->scope,
                          "comment", r->comment);
    if (j != NULL)
        json_object_set_new(j, "expires", r->expires[0] ? json_string(r->expires) : json_null());
    gw_api_json(r, 200, j);
}

/* Appends to the WHERE clause w (size wl). */
static void gw_api_where(char *w, size_t wl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void gw_api_where(char *w, size_t wl, const char *fmt, ...)
{
    size_t n = strlen(w);
    va_list ap;
    if (n + 6 >= wl)
        return;
    strcat(w, " AND ");
    n += 5;
    va_start(ap, fmt);
    vsnprintf(w + n, wl - n, fmt, ap);
    va_end(ap);
}

/* GET /api/v1/devices. The text searches collect the candidate ids first
 * (d.device_id = ANY (ARRAY(...)), each arm on its index) so that the
 * planner looks the few candidates up by primary key instead of choosing a
 * hash join over the whole table on a rough row estimate. */
static void gw_api_devices(gw_api_req_t *r)
{
    char w[4096] = "true", esc[GW_API_PARAM_LEN - 2], part[16], id[CMN_DEVICE_ID_LEN + 1];
    const char *v;
    long limit, offset;
    int p;

    if (gw_api_q_int(r, "limit", 1, GW_API_LIMIT_MAX, 50, &limit) != 0 ||
        gw_api_q_int(r, "offset", 0, 10000000, 0, &offset) != 0)
        return;
    static const char *const texts[] = {"q", "mac", "serial", "hostname", "model", "firmware",
                                        "addr", "kid", "batch", "status", "seen_after",
                                        "seen_before", "sort", "order"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if ((v = gw_api_q(r, texts[i])) != NULL && !gw_api_text_ok(v, 200)) {
            gw_api_error(r, 400, texts[i], "%s: at most 200 printable characters", texts[i]);
            return;
        }
    if ((v = gw_api_q(r, "q")) != NULL) {
        struct in6_addr a6;
        struct in_addr a4;
        char low[256];
        size_t i;
        for (i = 0; v[i] && i < sizeof low - 1; i++)
            low[i] = (char)tolower((unsigned char)v[i]);
        low[i] = '\0';
        if (cmn_mac_canon(v, strlen(v), id) == CMN_MAC_OK) {
            p = gw_api_param(r, id);
            gw_api_where(w, sizeof w, "d.device_id = $%d", p);
        } else if (inet_pton(AF_INET, v, &a4) == 1 || inet_pton(AF_INET6, v, &a6) == 1) {
            p = gw_api_param(r, v);
            gw_api_where(w, sizeof w,
                         "d.device_id IN (SELECT device_id FROM names WHERE ipv4 = $%d::inet "
                         "OR ipv6 = $%d::inet UNION SELECT device_id FROM devices "
                         "WHERE last_source = $%d::inet)", p, p, p);
        } else {
            /* a hostname or its beginning, a serial or its beginning, or
             * part of a MAC (its beginning or its end) */
            const char *dot = strchr(low, '.');
            gw_api_like(low, esc, sizeof esc);
            int pl = gw_api_paramf(r, "%s%%", esc);
            gw_api_like(v, esc, sizeof esc);
            int ps = gw_api_paramf(r, "%s%%", esc);
            char sub[1400];
            int n = snprintf(sub, sizeof sub,
                             "SELECT device_id FROM names WHERE label LIKE $%d "
                             "UNION SELECT device_id FROM devices WHERE serial LIKE $%d", pl, ps);
            if (dot != NULL && dot != low) {
                int pf = gw_api_param(r, low);
                n += snprintf(sub + n, sizeof sub - (size_t)n,
                              " UNION SELECT device_id FROM names WHERE label = "
                              "split_part($%d, '.', 1) AND zone = substr($%d, strpos($%d, '.') + 1)",
                              pf, pf, pf);
            }
            if (gw_api_mac_part(v, part) == 0) {
                int pm = gw_api_paramf(r, "%s%%", part);
                int pr = gw_api_param(r, part);
                snprintf(sub + n, sizeof sub - (size_t)n,
                         " UNION SELECT device_id FROM devices WHERE device_id LIKE $%d "
                         "UNION SELECT admin_mac_suffix($%d)", pm, pr);
            }
            gw_api_where(w, sizeof w, "d.device_id = ANY (ARRAY(%s))", sub);
        }
    }
    if ((v = gw_api_q(r, "mac")) != NULL) {
        if (cmn_mac_canon(v, strlen(v), id) == CMN_MAC_OK) {
            p = gw_api_param(r, id);
            gw_api_where(w, sizeof w, "d.device_id = $%d", p);
        } else if (gw_api_mac_part(v, part) == 0) {
            int pm = gw_api_paramf(r, "%s%%", part);
            int pr = gw_api_param(r, part);
            gw_api_where(w, sizeof w, "d.device_id = ANY (ARRAY(SELECT device_id FROM devices "
                         "WHERE device_id LIKE $%d UNION SELECT admin_mac_suffix($%d)))", pm, pr);
        } else {
            gw_api_error(r, 400, "mac", "mac: a MAC in any common form, or its first or last "
                         "2 to 12 hex digits");
            return;
        }
    }
    if ((v = gw_api_q(r, "serial")) != NULL) {
        gw_api_like(v, esc, sizeof esc);
        p = gw_api_paramf(r, "%s%%", esc);
        gw_api_where(w, sizeof w, "d.serial LIKE $%d", p);
    }
    if ((v = gw_api_q(r, "hostname")) != NULL) {
        char low[256];
        size_t i;
        for (i = 0; v[i] && i < sizeof low - 1; i++)
            low[i] = (char)tolower((unsigned char)v[i]);
        low[i] = '\0';
        if (strchr(low, '.') != NULL) {
            p = gw_api_param(r, low);
            gw_api_where(w, sizeof w,
                         "d.device_id = ANY (ARRAY(SELECT device_id FROM names WHERE label = "
                         "split_part($%d, '.', 1) AND zone = substr($%d, strpos($%d, '.') + 1)))",
                         p, p, p);
        } else {
            gw_api_like(low, esc, sizeof esc);
            p = gw_api_paramf(r, "%s%%", esc);
            gw_api_where(w, sizeof w,
                         "d.device_id = ANY (ARRAY(SELECT device_id FROM names "
                         "WHERE label LIKE $%d))", p);
        }
    }
    if ((v = gw_api_q(r, "model")) != NULL) {
        p = gw_api_param(r, v);
        gw_api_where(w, sizeof w, "lower(d.model) = lower($%d)", p);
    }
    if ((v = gw_api_q(r, "firmware")) != NULL) {
        p = gw_api_param(r, v);
        gw_api_where(w, sizeof w, "d.firmware = $%d", p);
    }
    if ((v = gw_api_q(r, "addr")) != NULL) {
        struct in6_addr a6;
        struct in_addr a4;
        if (inet_pton(AF_INET, v, &a4) != 1 && inet_pton(AF_INET6, v, &a6) != 1) {
            gw_api_error(r, 400, "addr", "addr: an IPv4 or IPv6 address");
            return;
        }
        p = gw_api_param(r, v);
        gw_api_where(w, sizeof w,
                     "d.device_id IN (SELECT device_id FROM names WHERE ipv4 = $%d::inet "
                     "OR ipv6 = $%d::inet UNION SELECT device_id FROM devices "
                     "WHERE last_source = $%d::inet)", p, p, p);
    }
    if ((v = gw_api_q(r, "kid")) != NULL) {
        if (!cmn_kid_valid(v, strlen(v))) {
            gw_api_error(r, 400, "kid", "kid: 1 to 16 characters of [a-z0-9]");
            return;
        }
        p = gw_api_param(r, v);
        gw_api_where(w, sizeof w, "d.kid = $%d", p);
    }
    if ((v = gw_api_q(r, "batch")) != NULL) {
        long b;
        if (gw_api_q_int(r, "batch", 1, 0x7fffffffL, 0, &b) != 0)
            return;
        p = gw_api_paramf(r, "%ld", b);
        gw_api_where(w, sizeof w, "d.batch_id = $%d::bigint", p);
    }
    if ((v = gw_api_q(r, "status")) != NULL) {
        if (strcmp(v, "active") == 0 || strcmp(v, "revoked") == 0) {
            p = gw_api_param(r, v);
            gw_api_where(w, sizeof w, "d.status = $%d", p);
        } else if (strcmp(v, "failing") == 0) {
            gw_api_where(w, sizeof w, "d.fail_count > 0");
        } else if (strcmp(v, "never") == 0) {
            gw_api_where(w, sizeof w, "d.last_seen IS NULL");
        } else {
            gw_api_error(r, 400, "status", "status: active, revoked, failing or never");
            return;
        }
    }
    static const char *const seen[2] = {"seen_after", "seen_before"};
    for (int i = 0; i < 2; i++)
        if ((v = gw_api_q(r, seen[i])) != NULL) {
            if (!gw_api_time_valid(v)) {
                gw_api_error(r, 400, seen[i], "%s: a time such as 2026-11-21 or "
                             "2026-11-21T14:05:00Z", seen[i]);
                return;
            }
            p = gw_api_param(r, v);
            gw_api_where(w, sizeof w, "d.last_seen %s $%d::timestamptz", i == 0 ? ">=" : "<", p);
        }
    static const char *const sorts[][2] = {
        {"device_id", "d.device_id"}, {"mac", "d.device_id"}, {"serial", "d.serial"},
        {"model", "d.model"}, {"firmware", "d.firmware"}, {"kid", "d.kid"},
        {"status", "d.status"}, {"batch", "d.batch_id"}, {"last_seen", "d.last_seen"},
        {"first_seen", "d.created_at"}, {"fail_count", "d.fail_count"},
        {"last_result", "d.last_result"},
    };
    const char *sortcol = "d.device_id";
    if ((v = gw_api_q(r, "sort")) != NULL) {
        sortcol = NULL;
        for (size_t i = 0; i < sizeof sorts / sizeof sorts[0]; i++)
            if (strcmp(v, sorts[i][0]) == 0)
                sortcol = sorts[i][1];
        if (sortcol == NULL) {
            gw_api_error(r, 400, "sort", "sort: device_id, mac, serial, model, firmware, kid, "
                         "status, batch, last_seen, first_seen, fail_count or last_result");
            return;
        }
    }
    const char *order = "ASC";
    if ((v = gw_api_q(r, "order")) != NULL) {
        if (strcasecmp(v, "asc") == 0)
            order = "ASC";
        else if (strcasecmp(v, "desc") == 0)
            order = "DESC";
        else {
            gw_api_error(r, 400, "order", "order: asc or desc");
            return;
        }
    }
    int plim = gw_api_paramf(r, "%ld", limit), poff = gw_api_paramf(r, "%ld", offset);
    size_t sl = 3 * strlen(w) + 1200;
    char *sql = malloc(sl);
    if (sql == NULL) {
        gw_api_error(r, 503, NULL, "out of memory");
        return;
    }
    const char *nulls = strcmp(sortcol, "d.device_id") == 0 ? "" : " NULLS LAST";
    snprintf(sql, sl,
             "SELECT jsonb_build_object('total', (SELECT count(*) FROM devices d WHERE %s), "
             "'limit', $%d::integer, 'offset', $%d::integer, 'devices', coalesce(("
             "SELECT jsonb_agg(admin_device_json(d) ORDER BY s.k %s%s, s.device_id %s) FROM ("
             "SELECT d.device_id, %s AS k FROM devices d WHERE %s "
             "ORDER BY %s %s%s, d.device_id %s "
             "LIMIT $%d::integer OFFSET $%d::integer) s JOIN devices d USING (device_id)), "
             "'[]'))::text",
             w, plim, poff, order, nulls, order, sortcol, w, sortcol, order, nulls, order, plim,
             poff);
    gw_api_run(r, GW_API_JSON, sql);
    free(sql);
}

/* The {id} segment as a device id; 0, or -1 (400 sent). */
static int gw_api_device_arg(gw_api_req_t *r)
{
    char dec[128];
    char *d = evhttp_uridecode(r->seg[1], 0, NULL);
    snprintf(dec, sizeof dec, "%s", d ? d : "");
    free(d);
    int rc = cmn_mac_canon(dec, strlen(dec), r->device);
    if (rc != CMN_MAC_OK) {
        gw_api_error(r, 400, "device_id", "device id '%.40s': %s", dec, cmn_mac_explain(rc));
        return -1;
    }
    return 0;
}

static void gw_api_device(gw_api_req_t *r)
{
    if (gw_api_device_arg(r) != 0)
        return;
    long hist;
    if (gw_api_q_int(r, "history", 1, 1000, GW_API_HISTORY, &hist) != 0)
        return;
    int p = gw_api_param(r, r->device);
    int ph = gw_api_paramf(r, "%ld", hist);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT admin_device_detail($%d, $%d::integer)::text", p, ph);
    gw_api_run(r, GW_API_JSON, sql);
}

static void gw_api_status_action(gw_api_req_t *r)
{
    if (gw_api_device_arg(r) != 0)
        return;
    gw_api_who(r);
    gw_api_param(r, r->device);
    if (strcmp(r->seg[2], "republish") == 0) {
        gw_api_run(r, GW_API_STATUS,
                   "SELECT status, body::text FROM admin_republish($1::bigint, $2, $3, $4)");
    } else {
        gw_api_param(r, strcmp(r->seg[2], "revoke") == 0 ? "true" : "false");
        gw_api_run(r, GW_API_STATUS, "SELECT status, body::text FROM "
                                     "admin_set_status($1::bigint, $2, $3, $4, $5::boolean)");
    }
}

/* The body's member key as a string; NULL with a 400 sent. */
static const char *gw_api_body_str(gw_api_req_t *r, const char *key, size_t max)
{
    json_t *v = r->body ? json_object_get(r->body, key) : NULL;
    if (v == NULL || !json_is_string(v)) {
        gw_api_error(r, 400, key, "%s: a string is required", key);
        return NULL;
    }
    const char *s = json_string_value(v);
    if (!gw_api_text_ok(s, max)) {
        gw_api_error(r, 400, key, "%s: 1 to %zu printable characters", key, max);
        return NULL;
    }
    return s;
}

static void gw_api_name(gw_api_req_t *r)
{
    char name[300], old[300], label[64];
    const char *zone = NULL;
    if (gw_api_device_arg(r) != 0)
        return;
    const char *v = gw_api_body_str(r, "name", 253);
    if (v == NULL)
        return;
    size_t n = strlen(v);
    for (size_t i = 0; i <= n; i++)
        name[i] = (char)tolower((unsigned char)v[i]);
    if (n > 0 && name[n - 1] == '.')
        name[--n] = '\0';
    const char *dot = strchr(name, '.');
    size_t ll = dot ? (size_t)(dot - name) : n;
    if (!gw_api_label_ok(name, ll)) {
        gw_api_error(r, 400, "name", "name '%s': the host label must be 1 to 63 characters of "
                     "a-z, 0-9 and '-', not starting or ending with '-'", v);
        return;
    }
    memcpy(label, name, ll);
    label[ll] = '\0';
    if (dot != NULL) {
        for (size_t i = 0; i < r->api->cfg->nzones; i++)
            if (strcmp(dot + 1, r->api->cfg->zones[i].name) == 0)
                zone = r->api->cfg->zones[i].name;
        if (zone == NULL) {
            gw_api_error(r, 400, "name", "name '%s': '%s' is not a zone of this gateway", v,
                         dot + 1);
            return;
        }
    }
    old[0] = '\0';
    if (r->cmd == EVHTTP_REQ_PUT) {
        char *d = evhttp_uridecode(r->seg[3], 0, NULL);
        snprintf(old, sizeof old, "%s", d ? d : "");
        free(d);
        for (char *c = old; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        if (strchr(old, '.') == NULL) {
            gw_api_error(r, 400, "name", "the name to rename must be given in full "
                         "(label.zone)");
            return;
        }
    }
    gw_api_who(r);
    gw_api_param(r, r->device);
    gw_api_param(r, old[0] ? old : NULL);
    gw_api_param(r, label);
    gw_api_param(r, zone);
    gw_api_run(r, GW_API_STATUS, "SELECT status, body::text FROM "
                                 "admin_name($1::bigint, $2, $3, $4, $5, $6, $7)");
}

static void gw_api_ttl(gw_api_req_t *r)
{
    if (gw_api_device_arg(r) != 0)
        return;
    json_t *t = r->body ? json_object_get(r->body, "ttl") : NULL;
    char num[16];
    if (t == NULL || (!json_is_null(t) && (!json_is_integer(t) || json_integer_value(t) < 1 ||
                                           json_integer_value(t) > 86400))) {
        gw_api_error(r, 400, "ttl", "ttl: an integer from 1 to 86400 seconds, or null for the "
                     "zone's default");
        return;
    }
    gw_api_who(r);
    gw_api_param(r, r->device);
    if (json_is_null(t)) {
        gw_api_param(r, NULL);
    } else {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(t));
        gw_api_param(r, num);
    }
    gw_api_run(r, GW_API_STATUS, "SELECT status, body::text FROM "
                                 "admin_set_ttl($1::bigint, $2, $3, $4, $5::integer)");
}

static void gw_api_reissue(gw_api_req_t *r)
{
    if (gw_api_device_arg(r) != 0)
        return;
    const char *kid = gw_api_body_str(r, "kid", 16);
    if (kid == NULL)
        return;
    if (!cmn_kid_valid(kid, strlen(kid))) {
        gw_api_error(r, 400, "kid", "kid: 1 to 16 characters of [a-z0-9]");
        return;
    }
    if (r->api->keys == NULL || cmn_keyset_find(r->api->keys, kid, strlen(kid)) == NULL) {
        gw_api_error(r, 400, "kid", "no master key with id '%s' is loaded by this gateway "
                     "(add it to the key directory of every gateway and reload them first)", kid);
        return;
    }
    gw_api_who(r);
    gw_api_param(r, r->device);
    gw_api_param(r, kid);
    gw_api_run(r, GW_API_STATUS, "SELECT status, body::text FROM "
                                 "admin_reissue($1::bigint, $2, $3, $4, $5)");
}

static void gw_api_fleet(gw_api_req_t *r)
{
    long days;
    if (gw_api_q_int(r, "not_seen_days", 1, 3650, 7, &days) != 0)
        return;
    gw_api_paramf(r, "%ld", days);
    gw_api_run(r, GW_API_JSON, "SELECT admin_fleet($1::integer)::text");
}

static void gw_api_failing(gw_api_req_t *r)
{
    long limit;
    if (gw_api_q_int(r, "limit", 1, 1000, 20, &limit) != 0)
        return;
    gw_api_paramf(r, "%ld", limit);
    gw_api_run(r, GW_API_JSON, "SELECT admin_failing($1::integer)::text");
}

static void gw_api_policy_get(gw_api_req_t *r)
{
    /* the configured rules too, as written in [firmware] */
    gw_api_param(r, r->api->cfg->fw_blocked_models ? r->api->cfg->fw_blocked_models : "");
    gw_api_param(r, r->api->cfg->fw_minimum_versions ? r->api->cfg->fw_minimum_versions : "");
    gw_api_run(r, GW_API_JSON, "SELECT (admin_policy_json() || jsonb_build_object('config', "
               "jsonb_build_object('blocked_models', $1::text, 'minimum_versions', $2::text)))"
               "::text");
}

/* Appends s as an element of a PostgreSQL array literal. */
static int gw_api_array_add(char *a, size_t al, const char *s)
{
    size_t n = strlen(a);
    if (n + 2 * strlen(s) + 4 >= al)
        return -1;
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
    return 0;
}

static void gw_api_policy_put(gw_api_req_t *r)
{
    char blocked[GW_API_PARAM_LEN] = "{", models[GW_API_PARAM_LEN] = "{",
         versions[GW_API_PARAM_LEN] = "{";
    json_t *b = r->body ? json_object_get(r->body, "blocked_models") : NULL;
    json_t *m = r->body ? json_object_get(r->body, "min_firmware") : NULL;
    size_t i;
    json_t *v;
    const char *k;
    gw_policy_t *check = gw_policy_new();

    if (check == NULL) {
        gw_api_error(r, 503, NULL, "out of memory");
        return;
    }
    if (b != NULL && !json_is_array(b) && !json_is_null(b)) {
        gw_api_error(r, 400, "blocked_models", "blocked_models: a list of model names");
        goto out;
    }
    if (m != NULL && !json_is_object(m) && !json_is_null(m)) {
        gw_api_error(r, 400, "min_firmware", "min_firmware: an object of model: version");
        goto out;
    }
    json_array_foreach(b, i, v) {
        if (!json_is_string(v) || gw_policy_block(check, json_string_value(v)) != GW_OK ||
            gw_api_array_add(blocked, sizeof blocked - 1, json_string_value(v)) != 0) {
            gw_api_error(r, 400, "blocked_models", "blocked_models[%zu]: a model name of 1 to %d "
                         "printable characters without ',', '/' and blanks", i,
                         GW_POLICY_MODEL_MAX);
            goto out;
        }
    }
    json_object_foreach(m, k, v) {
        if (!json_is_string(v) || !gw_version_valid(json_string_value(v))) {
            gw_api_error(r, 400, "min_firmware", "min_firmware['%.64s']: a version such as "
                         "\"2.1.0\" (a digit first)", k);
            goto out;
        }
        if (gw_policy_set_minimum(check, k, json_string_value(v)) != GW_OK ||
            gw_api_array_add(models, sizeof models - 1, k) != 0 ||
            gw_api_array_add(versions, sizeof versions - 1, json_string_value(v)) != 0) {
            gw_api_error(r, 400, "min_firmware", "min_firmware: '%.64s' is not a model name of "
                         "1 to %d printable characters without ',', '/' and blanks", k,
                         GW_POLICY_MODEL_MAX);
            goto out;
        }
    }
    for (const char *s = blocked; *s; s++)
        if (*s == ' ') {
            gw_api_error(r, 400, "blocked_models", "blocked_models: a model name has no blanks");
            goto out;
        }
    strcat(blocked, "}");
    strcat(models, "}");
    strcat(versions, "}");
    gw_api_who(r);
    gw_api_param(r, blocked);
    gw_api_param(r, models);
    gw_api_param(r, versions);
    r->policy_changed = 1;
    gw_api_run(r, GW_API_STATUS, "SELECT status, body::text FROM "
                                 "admin_policy_set($1::bigint, $2, $3, $4::text[], $5::text[], "
                                 "$6::text[])");
out:
    gw_policy_free(check);
}

static void gw_api_audit(gw_api_req_t *r)
{
    long limit, offset;
    if (gw_api_q_int(r, "limit", 1, GW_API_LIMIT_MAX, 50, &limit) != 0 ||
        gw_api_q_int(r, "offset", 0, 100000000, 0, &offset) != 0)
        return;
    const char *dev = gw_api_q(r, "device");
    char id[CMN_DEVICE_ID_LEN + 1];
    gw_api_paramf(r, "%ld", limit);
    gw_api_paramf(r, "%ld", offset);
    if (dev != NULL) {
        if (cmn_mac_canon(dev, strlen(dev), id) != CMN_MAC_OK) {
            gw_api_error(r, 400, "device", "device: a MAC in any common form");
            return;
        }
        gw_api_param(r, id);
    } else {
        gw_api_param(r, NULL);
    }
    gw_api_run(r, GW_API_JSON,
               "SELECT jsonb_build_object('total', (SELECT count(*) FROM admin_audit WHERE "
               "$3::text IS NULL OR device_id = $3), 'entries', coalesce((SELECT jsonb_agg("
               "jsonb_build_object('id', audit_id, 'at', at, 'token_id', token_id, 'actor', actor,"
               " 'action', action, 'device_id', device_id, 'detail', detail, 'source', source) "
               "ORDER BY audit_id DESC) FROM (SELECT * FROM admin_audit WHERE $3::text IS NULL "
               "OR device_id = $3 ORDER BY audit_id DESC LIMIT $1::integer OFFSET $2::integer) a),"
               " '[]'))::text");
}

static void gw_api_tokens_get(gw_api_req_t *r)
{
    gw_api_run(r, GW_API_JSON, "SELECT admin_tokens_json()::text");
}

/* "30d", "12h", "90m", "3600s" or "3600" into seconds; -1 otherwise. */
static long gw_api_duration(const char *s)
{
    char *end;
    long n = strtol(s, &end, 10);
    if (end == s || n <= 0 || n > 3650L * 86400)
        return -1;
    long mul = *end == '\0' || strcmp(end, "s") == 0 ? 1 : strcmp(end, "m") == 0 ? 60 :
               strcmp(end, "h") == 0 ? 3600 : strcmp(end, "d") == 0 ? 86400 : -1;
    if (mul < 0 || n > 3650L * 86400 / mul)
        return -1;
    return n * mul;
}

static void gw_api_tokens_post(gw_api_req_t *r)
{
    char sha[65], when[40];
    const char *scope = gw_api_body_str(r, "scope", 8);
    if (scope == NULL)
        return;
    if (strcmp(scope, "read") != 0 && strcmp(scope, "write") != 0) {
        gw_api_error(r, 400, "scope", "scope: read or write");
        return;
    }
    json_t *e = json_object_get(r->body, "expires");
    const char *expires = NULL;
    if (e != NULL && !json_is_null(e)) {
        const char *s = json_is_string(e) ? json_string_value(e) : "";
        long secs = gw_api_duration(s);
        if (secs > 0) {
            time_t t = time(NULL) + secs;
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
            expires = when;
        } else if (gw_api_time_valid(s)) {
            expires = s;
        } else {
            gw_api_error(r, 400, "expires", "expires: a time (2027-01-31, 2027-01-31T12:00:00Z) "
                         "or a duration (90m, 12h, 30d), or null for none");
            return;
        }
    }
    json_t *c = json_object_get(r->body, "comment");
    const char *comment = "";
    if (c != NULL && !json_is_null(c)) {
        if (!json_is_string(c) || strlen(json_string_value(c)) > 200 ||
            (json_string_value(c)[0] && !gw_api_text_ok(json_string_value(c), 200))) {
            gw_api_error(r, 400, "comment", "comment: at most 200 printable characters");
            return;
        }
        comment = json_string_value(c);
    }
    if (cmn_token_new(r->new_token, sha) != 0) {
        gw_api_error(r, 503, NULL, "no random bytes for a token");
        return;
    }
    gw_api_who(r);
    gw_api_param(r, sha);
    gw_api_param(r, scope);
    gw_api_param(r, expires);
    gw_api_param(r, comment);
    gw_api_run(r, GW_API_STATUS, "SELECT status, body::text FROM admin_token_add("
                                 "$1::bigint, $2, $3, $4, $5, $6::timestamptz, $7)");
}

static void gw_api_tokens_delete(gw_api_req_t *r)
{
    char *end;
    long long id = strtoll(r->seg[1], &end, 10);
    if (*end != '\0' || end == r->seg[1] || id < 1) {
        gw_api_error(r, 400, "token_id", "token id: a positive integer");
        return;
    }
    gw_api_who(r);
    gw_api_paramf(r, "%lld", id);
    gw_api_run(r, GW_API_STATUS, "SELECT status, body::text FROM "
                                 "admin_token_revoke($1::bigint, $2, $3, $4::bigint)");
}

/* ---- routing and authentication ------------------------------------------- */

typedef struct gw_api_route {
    enum evhttp_cmd_type cmd;
    int nseg;
    const char *seg[4];             /* NULL: any value */
    int scope;
    gw_api_fn fn;
} gw_api_route_t;

static const gw_api_route_t gw_api_routes[] = {
    {EVHTTP_REQ_GET, 1, {"whoami"}, GW_API_READ, gw_api_whoami},
    {EVHTTP_REQ_GET, 1, {"devices"}, GW_API_READ, gw_api_devices},
    {EVHTTP_REQ_GET, 2, {"devices", NULL}, GW_API_READ, gw_api_device},
    {EVHTTP_REQ_POST, 3, {"devices", NULL, "revoke"}, GW_API_WRITE, gw_api_status_action},
    {EVHTTP_REQ_POST, 3, {"devices", NULL, "restore"}, GW_API_WRITE, gw_api_status_action},
    {EVHTTP_REQ_POST, 3, {"devices", NULL, "republish"}, GW_API_WRITE, gw_api_status_action},
    {EVHTTP_REQ_POST, 3, {"devices", NULL, "names"}, GW_API_WRITE, gw_api_name},
    {EVHTTP_REQ_PUT, 4, {"devices", NULL, "names", NULL}, GW_API_WRITE, gw_api_name},
    {EVHTTP_REQ_PUT, 3, {"devices", NULL, "ttl"}, GW_API_WRITE, gw_api_ttl},
    {EVHTTP_REQ_POST, 3, {"devices", NULL, "reissue"}, GW_API_WRITE, gw_api_reissue},
    {EVHTTP_REQ_GET, 1, {"fleet"}, GW_API_READ, gw_api_fleet},
    {EVHTTP_REQ_GET, 2, {"fleet", "failing"}, GW_API_READ, gw_api_failing},
    {EVHTTP_REQ_GET, 1, {"policy"}, GW_API_READ, gw_api_policy_get},
    {EVHTTP_REQ_PUT, 1, {"policy"}, GW_API_WRITE, gw_api_policy_put},
    {EVHTTP_REQ_GET, 1, {"audit"}, GW_API_READ, gw_api_audit},
    {EVHTTP_REQ_GET, 1, {"tokens"}, GW_API_READ, gw_api_tokens_get},
    {EVHTTP_REQ_POST, 1, {"tokens"}, GW_API_WRITE, gw_api_tokens_post},
    {EVHTTP_REQ_DELETE, 2, {"tokens", NULL}, GW_API_WRITE, gw_api_tokens_delete},
};
#define GW_API_NROUTES (sizeof gw_api_routes / sizeof gw_api_routes[0])

/* The client's address as a socket address (for gw_limit); 0 or -1. */
static int gw_api_source_sa(const gw_api_req_t *r, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, r->source, &((struct sockaddr_in *)ss)->sin_addr) == 1)
        ss->ss_family = AF_INET;
    else if (inet_pton(AF_INET6, r->source, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1)
        ss->ss_family = AF_INET6;
    else
        return -1;
    return 0;
}

static void gw_api_auth_cb(void *arg, int err, const PGresult *res)
{
    gw_api_req_t *r = arg;
    r->job = NULL;
    if (err != GW_OK) {
        gw_api_error(r, 503, NULL, "database %s; try again",
                     err == GW_ETIMEDOUT ? "did not answer in time" : "error");
        return;
    }
    if (PQntuples(res) != 1) {
        struct sockaddr_storage ss;
        if (gw_api_source_sa(r, &ss) == 0)
            gw_limit_auth_failed((struct sockaddr *)&ss);
        gw_api_error(r, 401, NULL, "the token is unknown, expired or revoked");
        return;
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
    if (r->scope_needed == GW_API_WRITE && strcmp(r->scope, "write") != 0) {
        gw_api_error(r, 403, NULL, "this token may only read (scope read); writing needs a "
                     "token of scope write");
        return;
    }
    r->np = 0;
    r->fn(r);
}

static void gw_api_source_of(struct evhttp_request *req, char *out, size_t outlen)
{
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    char *host = NULL;
    ev_uint16_t port = 0;
    if (c != NULL)
        evhttp_connection_get_peer(c, &host, &port);
    snprintf(out, outlen, "%s", host ? host : "unknown");
}

int gw_api_handle(gw_api_t *api, struct evhttp_request *req)
{
    const char *uri = evhttp_request_get_uri(req);
    if (uri == NULL || strncmp(uri, "/api/", 5) != 0)
        return 0;
    gw_api_req_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        evhttp_send_error(req, 503, NULL);
        return 1;
    }
    r->api = api;
    r->req = req;
    r->cmd = evhttp_request_get_command(req);
    gw_api_source_of(req, r->source, sizeof r->source);
    size_t pl = strcspn(uri, "?#");
    if (pl >= sizeof r->path) {
        gw_api_error(r, 404, NULL, "no such endpoint");
        return 1;
    }
    memcpy(r->path, uri, pl);
    r->path[pl] = '\0';
    if (uri[pl] == '?') {
        TAILQ_INIT(&r->query);
        r->have_query = 1;
        if (evhttp_parse_query_str(uri + pl + 1, &r->query) != 0) {
            gw_api_error(r, 400, "query", "the query string is not valid");
            return 1;
        }
    }
    /* segments after /api/v1/ */
    if (strncmp(r->path, "/api/v1/", 8) != 0) {
        gw_api_error(r, 404, NULL, "no such endpoint (the API is under /api/v1/)");
        return 1;
    }
    for (const char *s = r->path + 8; *s;) {
        size_t n = strcspn(s, "/");
        if (r->nseg == 6 || n == 0 || n >= sizeof r->seg[0]) {
            gw_api_error(r, 404, NULL, "no such endpoint");
            return 1;
        }
        memcpy(r->seg[r->nseg], s, n);
        r->seg[r->nseg][n] = '\0';
        r->nseg++;
        s += n;
        if (*s == '/')
            s++;
    }
    /* route: path first (404), then method (405) */
    const gw_api_route_t *route = NULL;
    char allow[64] = "";
    for (size_t i = 0; i < GW_API_NROUTES; i++) {
        const gw_api_route_t *t = &gw_api_routes[i];
        int match = t->nseg == r->nseg;
        for (int k = 0; match && k < t->nseg; k++)
            if (t->seg[k] != NULL && strcmp(t->seg[k], r->seg[k]) != 0)
                match = 0;
        if (!match)
            continue;
        const char *m = t->cmd == EVHTTP_REQ_GET ? "GET" : t->cmd == EVHTTP_REQ_POST ? "POST" :
                        t->cmd == EVHTTP_REQ_PUT ? "PUT" : "DELETE";
        if (strstr(allow, m) == NULL)
            snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                     allow[0] ? ", " : "", m);
        if (t->cmd == r->cmd)
            route = t;
    }
    if (allow[0] == '\0') {
        gw_api_error(r, 404, NULL, "no such endpoint");
        return 1;
    }
    if (route == NULL) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        gw_api_error(r, 405, NULL, "method not allowed here (allowed: %s)", allow);
        return 1;
    }
    r->fn = route->fn;
    r->scope_needed = route->scope;

    /* the token: a source that failed too often is not even looked at */
    struct sockaddr_storage ss;
    if (gw_api_source_sa(r, &ss) == 0) {
        int blocked = gw_limit_auth_blocked((struct sockaddr *)&ss);
        if (blocked > 0) {
            char num[16];
            snprintf(num, sizeof num, "%d", blocked);
            evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", num);
            gw_api_error(r, 429, NULL, "too many failed authentications from %s; retry in %d s",
                         r->source, blocked);
            return 1;
        }
    }
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req),
                                          "Authorization");
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0 || auth[7] == '\0') {
        gw_api_error(r, 401, NULL, "an 'Authorization: Bearer TOKEN' header is required");
        return 1;
    }
    const char *tok = auth + 7;
    while (*tok == ' ')
        tok++;
    char sha[65];
    cmn_token_hash(tok, strlen(tok), sha);

    /* the body */
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = evbuffer_get_length(in);
    if (r->cmd == EVHTTP_REQ_POST || r->cmd == EVHTTP_REQ_PUT) {
        if (blen > GW_API_BODY_MAX) {
            gw_api_error(r, 400, "body", "the body is larger than %d bytes", GW_API_BODY_MAX);
            return 1;
        }
        if (blen > 0) {
            json_error_t je;
            r->body = json_loadb((const char *)evbuffer_pullup(in, -1), blen, 0, &je);
            if (r->body == NULL || !json_is_object(r->body)) {
                gw_api_error(r, 400, "body", "the body must be a JSON object (%s)",
                             r->body == NULL ? je.text : "not an object");
                return 1;
            }
        }
    }
    r->evcon = evhttp_request_get_connection(req);
    if (r->evcon != NULL)
        evhttp_connection_set_closecb(r->evcon, gw_api_closecb, r);
    const char *p[1] = {sha};
    int rc = gw_db_query_timed(api->db,
                               "SELECT token_id, scope, comment, expires_at FROM admin_tokens "
                               "WHERE token_sha256 = $1 AND revoked_at IS NULL AND "
                               "(expires_at IS NULL OR expires_at > now())",
                               1, p, GW_API_TIMEOUT_S, gw_api_auth_cb, r, &r->job);
    if (rc != GW_OK) {
        r->job = NULL;
        gw_api_error(r, 503, NULL, "database %s; try again",
                     rc == GW_EDB ? "not connected" : gw_strerror(rc));
    }
    return 1;
}

/* ---- background jobs ------------------------------------------------------ */

static void gw_api_flush_cb(void *arg, int err, const PGresult *res)
{
    gw_api_t *api = arg;
    (void)res;
    api->flush_job = NULL;
    if (err == GW_OK) {
        api->flushed_updates = api->sending_updates;
        api->flushed_errors = api->sending_errors;
    }
}

static void gw_api_compact_cb(void *arg, int err, const PGresult *res)
{
    gw_api_t *api = arg;
    (void)err;
    (void)res;
    api->compact_job = NULL;
}

static void gw_api_sources_cb(void *arg, int err, const PGresult *res)
{
    gw_api_t *api = arg;
    (void)res;
    api->sources_job = NULL;
    if (err != GW_OK)
        gw_warn("failed authentications per source not recorded (database %s)",
                err == GW_ETIMEDOUT ? "did not answer in time" : "error");
}

/* The failed authentications per source since the last flush, added to
 * source_failures (at most GW_API_SOURCES_MAX sources per flush; the others
 * wait for the next). A failed flush loses its counts (they only rank the
 * failing sources). */
static void gw_api_flush_sources(gw_api_t *api)
{
    gw_limit_fail_t *f = calloc(GW_API_SOURCES_MAX, sizeof *f);
    size_t n = f ? gw_limit_take_failures(f, GW_API_SOURCES_MAX) : 0;
    char *src = n ? malloc(n * 70 + 3) : NULL, *cnt = n ? malloc(n * 12 + 3) : NULL;
    if (n > 0 && src != NULL && cnt != NULL) {
        size_t so = 0, co = 0;
        src[so++] = '{';
        cnt[co++] = '{';
        for (size_t i = 0; i < n; i++) {
            so += (size_t)sprintf(src + so, "%s\"%s\"", i ? "," : "", f[i].source);
            co += (size_t)sprintf(cnt + co, "%s%d", i ? "," : "", f[i].failures);
        }
        src[so++] = '}';
        src[so] = '\0';
        cnt[co++] = '}';
        cnt[co] = '\0';
        const char *p[2] = {src, cnt};
        if (gw_db_query_timed(api->db,
                              "WITH old AS (DELETE FROM source_failures WHERE minute < "
                              "date_trunc('minute', now()) - interval '1 day') "
                              "INSERT INTO source_failures (minute, source, failures) "
                              "SELECT date_trunc('minute', now()), s, sum(n) "
                              "FROM unnest($1::text[], $2::bigint[]) u(s, n) GROUP BY s "
                              "ON CONFLICT (minute, source) DO UPDATE SET "
                              "failures = source_failures.failures + EXCLUDED.failures",
                              2, p, GW_API_TIMEOUT_S, gw_api_sources_cb, api,
                              &api->sources_job) != GW_OK)
            api->sources_job = NULL;
    }
    free(src);
    free(cnt);
    free(f);
}

static void gw_api_policy_cb(void *arg, int err, const PGresult *res)
{
    gw_api_t *api = arg;
    api->policy_job = NULL;
    if (err != GW_OK || PQnfields(res) != 4 || PQntuples(res) < 1)
        return;
    long long version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    if (version == api->policy_version)
        return;
    size_t n = 0, rows = (size_t)PQntuples(res);
    gw_api_rule_t *rules = calloc(rows, sizeof *rules);
    if (rules == NULL)
        return;
    for (size_t i = 0; i < rows; i++) {
        int row = (int)i;
        if (PQgetisnull(res, row, 1))
            continue;
        snprintf(rules[n].model, sizeof rules[n].model, "%s", PQgetvalue(res, row, 1));
        rules[n].blocked = PQgetvalue(res, row, 2)[0] == 't';
        snprintf(rules[n].version, sizeof rules[n].version, "%s",
                 PQgetisnull(res, row, 3) ? "" : PQgetvalue(res, row, 3));
        n++;
    }
    free(api->rules);
    api->rules = rules;
    api->nrules = n;
    int first = api->policy_version < 0;
    api->policy_version = version;
    if (!first || n > 0)
        gw_info("firmware policy from the database: version %lld, %zu model rule(s)", version, n);
    if (api->policy_cb != NULL && (!first || n > 0))
        api->policy_cb(api->policy_arg);
}

static void gw_api_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_api_t *api = arg;
    (void)fd;
    (void)what;
    if (api->policy_job == NULL &&
        gw_db_query_timed(api->db, "SELECT s.version, p.model, p.blocked, p.min_version "
                          "FROM firmware_policy_state s LEFT JOIN firmware_policy p ON true "
                          "ORDER BY p.model", 0, NULL, GW_API_TIMEOUT_S, gw_api_policy_cb, api,
                          &api->policy_job) != GW_OK)
        api->policy_job = NULL;
    unsigned long long u, e;
    gw_metrics_update_totals(&u, &e);
    if (api->flush_job == NULL && (u != api->flushed_updates || e != api->flushed_errors)) {
        char du[24], de[24];
        snprintf(du, sizeof du, "%llu", u - api->flushed_updates);
        snprintf(de, sizeof de, "%llu", e - api->flushed_errors);
        api->sending_updates = u;
        api->sending_errors = e;
        const char *p[3] = {api->gateway_name, du, de};
        if (gw_db_query_timed(api->db,
                              "WITH old AS (DELETE FROM update_minutes WHERE minute < "
                              "date_trunc('minute', now()) - interval '7 days') "
                              "INSERT INTO update_minutes (minute, gateway, updates, errors) "
                              "VALUES (date_trunc('minute', now()), $1, $2::bigint, $3::bigint) "
                              "ON CONFLICT (minute, gateway) DO UPDATE SET "
                              "updates = update_minutes.updates + EXCLUDED.updates, "
                              "errors = update_minutes.errors + EXCLUDED.errors",
                              3, p, GW_API_TIMEOUT_S, gw_api_flush_cb, api,
                              &api->flush_job) != GW_OK)
            api->flush_job = NULL;
    }
    if (api->sources_job == NULL)
        gw_api_flush_sources(api);
    /* every minute: fold the fleet counts (one gateway at a time) */
    if (api->ticks++ % GW_API_COMPACT_TICKS == 0 && api->compact_job == NULL &&
        gw_db_query_timed(api->db, "SELECT admin_fleet_compact()", 0, NULL, GW_API_TIMEOUT_S,
                          gw_api_compact_cb, api, &api->compact_job) != GW_OK)
        api->compact_job = NULL;
    struct timeval tv = {GW_API_TICK_S, 0};
    evtimer_add(api->tick, &tv);
}

/* ---- life cycle ------------------------------------------------------------ */

gw_api_t *gw_api_new(struct event_base *base, const gw_config_t *cfg, gw_db_t *db)
{
    gw_api_t *api = calloc(1, sizeof *api);
    if (api == NULL)
        return NULL;
    api->base = base;
    api->cfg = cfg;
    api->db = db;
    api->policy_version = -1;
    api->tick = evtimer_new(base, gw_api_tick_cb, api);
    if (api->tick == NULL) {
        free(api);
        return NULL;
    }
    char host[64];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "gateway");
    host[sizeof host - 1] = '\0';
    snprintf(api->gateway_name, sizeof api->gateway_name, "%s/%ld", host, (long)getpid());
    return api;
}

void gw_api_set_keys(gw_api_t *api, const cmn_keyset_t *keys)
{
    api->keys = keys;
}

void gw_api_set_policy_cb(gw_api_t *api, void (*fn)(void *arg), void *arg)
{
    api->policy_cb = fn;
    api->policy_arg = arg;
}

size_t gw_api_policy_apply(const gw_api_t *api, gw_policy_t *p)
{
    size_t n = 0;
    if (api == NULL)
        return 0;
    for (size_t i = 0; i < api->nrules; i++) {
        const gw_api_rule_t *r = &api->rules[i];
        if (r->blocked && gw_policy_block(p, r->model) == GW_OK)
            n++;
        if (r->version[0] && gw_policy_set_minimum(p, r->model, r->version) == GW_OK)
            n++;
    }
    return n;
}

void gw_api_start(gw_api_t *api)
{
    struct timeval now = {0, 0};
    evtimer_add(api->tick, &now);
}

void gw_api_free(gw_api_t *api)
{
    if (api == NULL)
        return;
    if (api->policy_job != NULL)
        gw_db_cancel(api->policy_job);
    if (api->flush_job != NULL)
        gw_db_cancel(api->flush_job);
    if (api->compact_job != NULL)
        gw_db_cancel(api->compact_job);
    if (api->sources_job != NULL)
        gw_db_cancel(api->sources_job);
    event_free(api->tick);
    free(api->rules);
    free(api);
}
