/* gw_route: what the HTTPS router decides before any endpoint runs.
 *
 * Owns the device listener's one route table (each known path, the
 * methods it answers and the endpoint it goes to), and the
 * checks every request passes before routing: the request target's length
 * ([limits] max_uri_length: 414 "badrequest uri"), the number of query
 * parameters ([limits] max_query_params: 400 "badrequest query") and the
 * method of a known path (405 "badrequest method" with the Allow value),
 * and the framing of the body (one Content-Length or one Transfer-Encoding,
 * never both: 400 "badrequest content-length").
 * A pure function over the request line's target and method, so that it
 * can be fuzzed; gw_http applies the verdict and dispatches by route to
 * the handler each endpoint registered (gw_http_set_handler). A new
 * endpoint adds its row to gw_routes in gw_route.c and its id here; no
 * other module knows a path. */
#ifndef GW_ROUTE_H
#define GW_ROUTE_H

#include <stddef.h>

#include "gw_config.h"

/* The endpoints of the device listener. */
typedef enum gw_route_id {
    GW_ROUTE_NONE = 0,      /* not a known path: 404 notfound */
    GW_ROUTE_UPDATE,        /* POST /v1/update (no query string: 400 badrequest path) */
    GW_ROUTE_HEALTHZ,       /* GET /healthz, answered by gw_http itself */
    GW_ROUTE_CHECKIP,       /* GET /checkip */
    GW_ROUTE_CHECKIP_HTML,  /* GET /nic/checkip */
    GW_ROUTE_DYNDNS,        /* /nic/update, any method (dyndns2 answers badagent itself) */
    GW_ROUTE_COUNT
} gw_route_id_t;

typedef struct gw_route_verdict {
    size_t path_len;        /* bytes of target before '?' or '#' */
    int status;             /* 0: route the request; else answer with it */
    const char *line;       /* the answer's line when status != 0 */
    const char *allow;      /* the Allow header's value for 405, else NULL */
    int known;              /* the path is in the table */
    gw_route_id_t route;    /* the endpoint when status is 0 (GW_ROUTE_NONE: 404) */
} gw_route_verdict_t;

/* method: the libevent enum evhttp_cmd_type value of the request. */
void gw_route_precheck(const char *target, int method, const gw_limits_t *lim,
                       gw_route_verdict_t *v);

/* The body's framing (RFC 9112 section 6.3): n_length Content-Length and
 * n_te Transfer-Encoding header fields. More than one of either, or both
 * kinds, make the body's length ambiguous (the shape of request
 * smuggling): v gets 400 "badrequest content-length" and the connection is
 * to be closed. Leaves v alone when the framing is clear. */
void gw_route_framing(size_t n_length, size_t n_te, gw_route_verdict_t *v);

#endif
