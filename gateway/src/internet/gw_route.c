/* gw_route: pre-routing checks and the route table (see gw_route.h). */
#include "gw_route.h"

#include <string.h>

#include <event2/http.h>

#define GW_ROUTE_ANY_METHOD (-1)

/* The device listener's routes: path, the methods it answers, the endpoint. */
static const struct gw_route {
    const char *path;
    int methods;        /* enum evhttp_cmd_type bits */
    const char *allow;
    gw_route_id_t id;
    int no_query;       /* anything after the path is 400 "badrequest path" */
} gw_routes[] = {
    {"/v1/update", EVHTTP_REQ_POST, "POST", GW_ROUTE_UPDATE, 1},
    {"/healthz", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", GW_ROUTE_HEALTHZ, 0},
    {"/checkip", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", GW_ROUTE_CHECKIP, 0},
    {"/nic/checkip", EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", GW_ROUTE_CHECKIP_HTML, 0},
    /* /nic/update checks its method itself: dyndns2 answers badagent */
    {"/nic/update", GW_ROUTE_ANY_METHOD, NULL, GW_ROUTE_DYNDNS, 0},
};

void gw_route_precheck(const char *target, int method, const gw_limits_t *lim,
                       gw_route_verdict_t *v)
{
    memset(v, 0, sizeof *v);
    size_t tl = strlen(target);
    v->path_len = strcspn(target, "?#");
    if (tl > (size_t)lim->max_uri_length) {
        v->status = 414;
        v->line = "badrequest uri";
        return;
    }
    const char *q = target + v->path_len;
    if (*q == '?') {
        long n = 1;
        for (const char *c = q + 1; *c != '\0' && *c != '#'; c++)
            n += *c == '&' || *c == ';';
        if (n > lim->max_query_params) {
            v->status = 400;
            v->line = "badrequest query";
            return;
        }
    }
    for (size_t i = 0; i < sizeof gw_routes / sizeof gw_routes[0]; i++) {
        const struct gw_route *r = &gw_routes[i];
        if (strlen(r->path) != v->path_len || strncmp(target, r->path, v->path_len) != 0)
            continue;
        v->known = 1;
        if ((method & r->methods) == 0) {
            v->status = 405;
            v->line = "badrequest method";
            v->allow = r->allow;
        } else if (r->no_query && target[v->path_len] != '\0') {
            v->status = 400;
            v->line = "badrequest path";
        } else {
            v->route = r->id;
        }
        return;
    }
}

void gw_route_framing(size_t n_length, size_t n_te, gw_route_verdict_t *v)
{
    if (n_length > 1 || n_te > 1 || (n_length > 0 && n_te > 0)) {
        v->status = 400;
        v->line = "badrequest content-length";
        v->allow = NULL;
    }
}
