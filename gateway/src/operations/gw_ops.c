/* gw_ops: operations listener (see gw_ops.h). */
#include "gw_ops.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gw_budget.h"
#include "gw_clock.h"
#include "gw_conn.h"
#include "gw_console.h"
#include "gw_err.h"
#include "gw_limit.h"
#include "gw_log.h"
#include "gw_metrics.h"
#include "gw_quiet.h"
#include "gw_opsconn.h"
#include "gw_outbox.h"
#include "gw_reply.h"
#include "gw_seen.h"

#define GW_OPS_PROBE_OK_S 5
#define GW_OPS_PROBE_FAIL_S 1
#define GW_OPS_PROBE_STALE_S 5

struct gw_ops {
    struct event_base *base;
    const gw_config_t *cfg;
    gw_db_t *db;                    /* the probe's pool, on the main loop */
    struct {                        /* the workers', read for /metrics */
        gw_db_t *db;
        gw_http_t *http;
    } w[GW_OPS_WORKERS_MAX];
    size_t nw;
    const gw_publish_health_t *pub_health;   /* the publisher process's */
    gw_api_t *api;
    struct evhttp *evh;
    gw_opsconn_t *oc;               /* its connections' limits and clock */
    struct event *probe_timer;
    gw_db_job_t *probe_job;         /* non-NULL while a probe runs */
    time_t probe_started;           /* monotonic seconds */
    int stopping;
    /* the last probe */
    int probe_ok;
    int probed;                     /* at least one probe finished */
    char probe_why[200];
    long long outbox_rows;
    double outbox_age;
};

/* ---- the probe ----------------------------------------------------------- */

static void gw_ops_probe_arm(gw_ops_t *a)
{
    struct timeval tv = {a->probe_ok ? GW_OPS_PROBE_OK_S : GW_OPS_PROBE_FAIL_S, 0};
    evtimer_add(a->probe_timer, &tv);
}

static void gw_ops_probe_cb(void *arg, int err, const PGresult *res)
{
    gw_ops_t *a = arg;
    a->probe_job = NULL;
    a->probed = 1;
    if (err != GW_OK || PQntuples(res) != 1 || PQnfields(res) != 2) {
        a->probe_ok = 0;
        snprintf(a->probe_why, sizeof a->probe_why, "database: probe query failed");
    } else {
        a->probe_ok = 1;
        a->probe_why[0] = '\0';
        a->outbox_rows = atoll(PQgetvalue(res, 0, 0));
        a->outbox_age = atof(PQgetvalue(res, 0, 1));
    }
    if (err != GW_ECLOSED)
        gw_ops_probe_arm(a);
}

static void gw_ops_probe_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_ops_t *a = arg;
    (void)fd;
    (void)what;
    if (a->probe_job != NULL)
        return;
    a->probe_started = gw_clock_s();
    int rc = gw_db_query(a->db, gw_outbox_stats_sql, 0, NULL, gw_ops_probe_cb, a,
                         &a->probe_job);
    if (rc != GW_OK) {
        a->probe_job = NULL;
        a->probed = 1;
        a->probe_ok = 0;
        snprintf(a->probe_why, sizeof a->probe_why, "database: %s",
                 rc == GW_EDB ? "no connection" : gw_strerror(rc));
        gw_ops_probe_arm(a);
    }
}

/* ---- answers ------------------------------------------------------------- */

static void gw_ops_text(struct evhttp_request *req, int status, const char *line)
{
    gw_reply_printf(req, status, NULL, "%s\n", line);
}

/* NULL when ready, else why not. */
static const char *gw_ops_not_ready(gw_ops_t *a, char *why, size_t whylen)
{
    if (a->stopping)
        return "stopping";
    if (gw_db_connected(a->db) == 0)
        return "database: no connection in the pool";
    if (a->probe_job != NULL && gw_clock_s() - a->probe_started >= GW_OPS_PROBE_STALE_S) {
        snprintf(why, whylen, "database: no answer to the probe for %lld s",
                 (long long)(gw_clock_s() - a->probe_started));
        return why;
    }
    if (!a->probed)
        return "database: not probed yet";
    if (!a->probe_ok) {
        snprintf(why, whylen, "%s", a->probe_why);
        return why;
    }
    if (gw_publish_health(a->pub_health, why, whylen) != GW_OK)
        return why;
    return NULL;
}

static void gw_ops_metrics(gw_ops_t *a, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, 503, NULL);
        return;
    }
    gw_metrics_render(b);
    gw_db_stats_t st;
    memset(&st, 0, sizeof st);
    size_t inflight = 0;
    for (size_t i = 0; i < a->nw; i++) {
        gw_db_stats_t one;
        gw_db_stats(a->w[i].db, &one);
        st.busy += one.busy;
        st.idle += one.idle;
        st.connecting += one.connecting;
        st.down += one.down;
        st.queued += one.queued;
        st.batches += one.batches;
        st.batched += one.batched;
        st.batch_splits += one.batch_splits;
        inflight += gw_http_inflight(a->w[i].http);
    }
    char why[300];
    evbuffer_add_printf(b,
        "# HELP ddns_connections_open HTTPS connections open now (counted against the limits).\n"
        "# TYPE ddns_connections_open gauge\nddns_connections_open %zu\n"
        "# HELP ddns_connections_state HTTPS connections whose state exists, counted or not.\n"
        "# TYPE ddns_connections_state gauge\nddns_connections_state %zu\n"
        "# HELP ddns_admin_connections_open Admin listener connections open now.\n"
        "# TYPE ddns_admin_connections_open gauge\nddns_admin_connections_open %zu\n"
        "# HELP ddns_requests_in_flight Requests received and not yet answered.\n"
        "# TYPE ddns_requests_in_flight gauge\nddns_requests_in_flight %zu\n"
        "# HELP ddns_db_pool_connections Request pool connections by state.\n"
        "# TYPE ddns_db_pool_connections gauge\n"
        "ddns_db_pool_connections{state=\"busy\"} %d\n"
        "ddns_db_pool_connections{state=\"idle\"} %d\n"
        "ddns_db_pool_connections{state=\"connecting\"} %d\n"
        "ddns_db_pool_connections{state=\"down\"} %d\n"
        "# HELP ddns_db_pool_queued Queries waiting for a pool connection.\n"
        "# TYPE ddns_db_pool_queued gauge\nddns_db_pool_queued %zu\n"
        "# HELP ddns_db_batches_total Batched statements of device requests sent.\n"
        "# TYPE ddns_db_batches_total counter\nddns_db_batches_total %llu\n"
        "# HELP ddns_db_batched_requests_total Device requests those statements carried.\n"
        "# TYPE ddns_db_batched_requests_total counter\nddns_db_batched_requests_total %llu\n"
        "# HELP ddns_db_batch_splits_total Batches that failed and ran again request by "
        "request.\n"
        "# TYPE ddns_db_batch_splits_total counter\nddns_db_batch_splits_total %llu\n"
        "# HELP ddns_db_probe_ok 1 when the last database probe (every 5 s) succeeded.\n"
        "# TYPE ddns_db_probe_ok gauge\nddns_db_probe_ok %d\n"
        "# HELP ddns_publisher_healthy 1 when the publisher has its database connection "
        "and no zone's last batch failed.\n"
        "# TYPE ddns_publisher_healthy gauge\nddns_publisher_healthy %d\n",
        gw_limit_connections(), gw_conn_count(), gw_opsconn_open(a->oc), inflight,
        st.busy, st.idle, st.connecting, st.down, st.queued, st.batches, st.batched,
        st.batch_splits, a->probe_ok,
        gw_publish_health(a->pub_health, why, sizeof why) == GW_OK);
    evbuffer_add_printf(b,
        "# HELP ddns_device_memory_answers_total Verified device requests answered from "
        "this gateway's memory, without the database (gw_budget).\n"
        "# TYPE ddns_device_memory_answers_total counter\n"
        "ddns_device_memory_answers_total{answer=\"ratelimit\"} %llu\n"
        "ddns_device_memory_answers_total{answer=\"replay\"} %llu\n"
        "ddns_device_memory_answers_total{answer=\"disabled\"} %llu\n",
        gw_budget_answers(GW_BUDGET_RATELIMIT), gw_budget_answers(GW_BUDGET_REPLAY),
        gw_budget_answers(GW_BUDGET_DISABLED));
    evbuffer_add_printf(b,
        "# HELP ddns_seen_pending Devices whose last seen time waits for the next batch "
        "([database] seen_interval).\n"
        "# TYPE ddns_seen_pending gauge\nddns_seen_pending %zu\n", gw_seen_pending());
    evbuffer_add_printf(b,
        "# HELP ddns_quiet_entries Devices whose last quiet nochg answer is kept in memory "
        "([database] quiet_cache).\n"
        "# TYPE ddns_quiet_entries gauge\nddns_quiet_entries %zu\n", gw_quiet_entries());
    if (a->probe_ok)
        evbuffer_add_printf(b,
            "# HELP ddns_outbox_rows DNS changes waiting in dns_outbox (at the last probe).\n"
            "# TYPE ddns_outbox_rows gauge\nddns_outbox_rows %lld\n"
            "# HELP ddns_outbox_oldest_age_seconds Age of the oldest dns_outbox row (at the "
            "last probe; 0 when empty).\n"
            "# TYPE ddns_outbox_oldest_age_seconds gauge\nddns_outbox_oldest_age_seconds %.3f\n",
            a->outbox_rows, a->outbox_age);
    gw_reply_buffer(req, 200, "text/plain; version=0.0.4; charset=utf-8", b);
    evbuffer_free(b);
}

static void gw_ops_healthz(gw_ops_t *a, struct evhttp_request *req)
{
    (void)a;
    gw_ops_text(req, 200, "ok");
}

static void gw_ops_readyz(gw_ops_t *a, struct evhttp_request *req)
{
    char why[300], line[360];
    const char *bad = gw_ops_not_ready(a, why, sizeof why);
    if (bad == NULL) {
        gw_ops_text(req, 200, "ready");
        return;
    }
    snprintf(line, sizeof line, "notready %s", bad);
    gw_ops_text(req, 503, line);
}

static void gw_ops_api(gw_ops_t *a, struct evhttp_request *req)
{
    if (a->api == NULL || !gw_api_handle(a->api, req))
        gw_ops_text(req, 404, "notfound");
}

static void gw_ops_console(gw_ops_t *a, struct evhttp_request *req)
{
    gw_console_serve(a->cfg->admin_console_dir, req);
}

/* How a route's path matches a request's. */
enum gw_ops_match {
    GW_OPS_EXACT,       /* the path itself */
    GW_OPS_PREFIX,      /* any path that begins with it */
    GW_OPS_TREE,        /* the path, or anything below it ("/console", "/console/x") */
};

/* The operations listener's one route table: the path and how it
 * matches, whether it takes only GET and HEAD, the handler. */
static const struct gw_ops_route {
    const char *path;
    enum gw_ops_match match;
    int get_only;
    void (*fn)(gw_ops_t *a, struct evhttp_request *req);
} gw_ops_routes[] = {
    {"/api/", GW_OPS_PREFIX, 0, gw_ops_api},
    {GW_CONSOLE_PREFIX, GW_OPS_TREE, 0, gw_ops_console},   /* checks its method itself */
    {"/healthz", GW_OPS_EXACT, 1, gw_ops_healthz},
    {"/readyz", GW_OPS_EXACT, 1, gw_ops_readyz},
    {"/metrics", GW_OPS_EXACT, 1, gw_ops_metrics},
};

static int gw_ops_route_match(const struct gw_ops_route *r, const char *path, size_t pl)
{
    size_t n = strlen(r->path);
    if (pl < n || strncmp(path, r->path, n) != 0)
        return 0;
    return r->match == GW_OPS_PREFIX || pl == n || (r->match == GW_OPS_TREE && path[n] == '/');
}

static void gw_ops_gencb(struct evhttp_request *req, void *arg)
{
    gw_ops_t *a = arg;
    const char *uri = evhttp_request_get_uri(req);
    const char *path = uri ? uri : "";
    size_t pl = strcspn(path, "?");
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    gw_opsconn_request(a->oc, req);
    for (size_t i = 0; i < sizeof gw_ops_routes / sizeof gw_ops_routes[0]; i++) {
        const struct gw_ops_route *r = &gw_ops_routes[i];
        if (!gw_ops_route_match(r, path, pl))
            continue;
        if (r->get_only && cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
            gw_ops_text(req, 405, "badrequest method");
            return;
        }
        r->fn(a, req);
        return;
    }
    gw_ops_text(req, 404, "notfound");
}

/* ---- life cycle ----------------------------------------------------------- */

gw_ops_t *gw_ops_new(struct event_base *base, const gw_config_t *cfg, gw_db_t *db)
{
    gw_ops_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->base = base;
    a->cfg = cfg;
    a->db = db;
    a->probe_timer = evtimer_new(base, gw_ops_probe_timer_cb, a);
    if (a->probe_timer == NULL) {
        free(a);
        return NULL;
    }
    return a;
}

int gw_ops_add_worker(gw_ops_t *a, gw_db_t *db, gw_http_t *http)
{
    if (a->nw == GW_OPS_WORKERS_MAX)
        return GW_EINVAL;
    a->w[a->nw].db = db;
    a->w[a->nw].http = http;
    a->nw++;
    return GW_OK;
}

void gw_ops_set_publisher(gw_ops_t *a, const gw_publish_health_t *health)
{
    a->pub_health = health;
}

void gw_ops_set_api(gw_ops_t *a, gw_api_t *api)
{
    a->api = api;
}

void gw_ops_set_stopping(gw_ops_t *a)
{
    if (a != NULL)
        a->stopping = 1;
}

void gw_ops_apply_settings(gw_ops_t *a)
{
    if (a != NULL && a->evh != NULL)
        evhttp_set_timeout(a->evh, a->cfg->request_timeout);
    if (a != NULL)
        gw_opsconn_apply_settings(a->oc);
}

int gw_ops_listen(gw_ops_t *a)
{
    /* The probe also feeds nothing but /readyz and /metrics: without a
     * listener there is no reason to run it. */
    if (a->cfg->admin_listen.n == 0)
        return GW_OK;
    a->evh = evhttp_new(a->base);
    a->oc = gw_opsconn_new(a->base, a->cfg);
    if (a->evh == NULL || a->oc == NULL)
        return GW_EIO;
    gw_opsconn_attach(a->oc, a->evh);
    if (a->api != NULL)
        gw_api_set_conns(a->api, a->oc);
    evhttp_set_gencb(a->evh, gw_ops_gencb, a);
    evhttp_set_timeout(a->evh, a->cfg->request_timeout);
    evhttp_set_max_headers_size(a->evh, 8192);
    evhttp_set_max_body_size(a->evh, 65536);
    evhttp_set_allowed_methods(a->evh, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                           EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                           EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    for (size_t i = 0; i < a->cfg->admin_listen.n; i++) {
        const gw_sockaddr_t *l = &a->cfg->admin_listen.addr[i];
        int fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        char text[80], ip[INET6_ADDRSTRLEN];
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
            (l->ss.ss_family == AF_INET6 &&
             setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
            bind(fd, (const struct sockaddr *)&l->ss, l->len) != 0 || listen(fd, 64) != 0 ||
            getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
            gw_error("cannot listen on %s (admin): %s", l->text, strerror(errno));
            if (fd >= 0)
                close(fd);
            return GW_EIO;
        }
        if (evhttp_accept_socket_with_handle(a->evh, fd) == NULL) {
            close(fd);
            gw_error("cannot accept on %s (admin)", l->text);
            return GW_EIO;
        }
        if (ss.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
            snprintf(text, sizeof text, "[%s]:%u", ip,
                     ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
        } else {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
            snprintf(text, sizeof text, "%s:%u", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
        }
        gw_info("admin listening on %s (plain HTTP: /healthz /readyz /metrics /api/v1/ /console/)", text);
    }
    struct timeval now = {0, 0};
    evtimer_add(a->probe_timer, &now);
    return GW_OK;
}

void gw_ops_free(gw_ops_t *a)
{
    if (a == NULL)
        return;
    if (a->probe_job != NULL)
        gw_db_cancel(a->probe_job);
    if (a->evh != NULL)
        evhttp_free(a->evh);        /* frees the connections, then their limits */
    gw_opsconn_free(a->oc);
    event_free(a->probe_timer);
    free(a);
}
