/* fuzz_route: libFuzzer target for the checks every HTTPS request passes
 * before routing (gw_route_precheck: target length, query parameters,
 * methods per known path).
 *
 * Input: byte 0 picks the method, bytes 1 and 2 the limits
 * (max_uri_length 64 + 4 * byte 1, max_query_params byte 2 % 20), the rest
 * up to the first NUL is the request target, copied to the heap with its
 * exact length. Checks: the verdict is one of route / 400 / 405 / 414 with
 * the matching line, a routed request is within both limits (recounted
 * here), a 405 names a known path and an Allow value that excludes the
 * method, a known path with an allowed method is routed, and the path
 * length lies inside the target. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "gw_route.h"

static const int methods[] = {EVHTTP_REQ_GET, EVHTTP_REQ_POST, EVHTTP_REQ_HEAD,
                              EVHTTP_REQ_PUT, EVHTTP_REQ_DELETE, EVHTTP_REQ_OPTIONS,
                              EVHTTP_REQ_TRACE, EVHTTP_REQ_CONNECT, EVHTTP_REQ_PATCH};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int method = methods[data[0] % (sizeof methods / sizeof methods[0])];
    gw_limits_t lim;
    memset(&lim, 0, sizeof lim);
    lim.max_uri_length = 64 + 4 * data[1];
    lim.max_query_params = data[2] % 20;
    const uint8_t *t = data + 3;
    size_t tl = size - 3;
    const uint8_t *nul = memchr(t, 0, tl);
    if (nul != NULL)
        tl = (size_t)(nul - t);
    char *target = malloc(tl + 1);
    if (target == NULL)
        abort();
    memcpy(target, t, tl);
    target[tl] = '\0';

    gw_route_verdict_t v;
    gw_route_precheck(target, method, &lim, &v);
    if (v.path_len > tl)
        abort();
    size_t params = 0;
    if (target[v.path_len] == '?') {
        params = 1;
        for (const char *c = target + v.path_len + 1; *c && *c != '#'; c++)
            params += *c == '&' || *c == ';';
    }
    int is_update = v.path_len == 10 && memcmp(target, "/v1/update", 10) == 0;
    int is_get = (v.path_len == 8 && memcmp(target, "/healthz", 8) == 0) ||
                 (v.path_len == 8 && memcmp(target, "/checkip", 8) == 0) ||
                 (v.path_len == 12 && memcmp(target, "/nic/checkip", 12) == 0);
    int is_dyndns = v.path_len == 11 && memcmp(target, "/nic/update", 11) == 0;
    int allowed = is_update ? method == EVHTTP_REQ_POST
                : is_get ? (method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD) : 1;
    int known = is_update || is_get || is_dyndns;
    switch (v.status) {
    case 0:
        if (tl > (size_t)lim.max_uri_length || params > (size_t)lim.max_query_params ||
            !allowed || v.known != known || v.line != NULL ||
            (v.route == GW_ROUTE_NONE) == known || (is_update && target[v.path_len] != '\0') ||
            (is_update && v.route != GW_ROUTE_UPDATE) || (is_dyndns && v.route != GW_ROUTE_DYNDNS))
            abort();
        break;
    case 414:
        if (tl <= (size_t)lim.max_uri_length || strcmp(v.line, "badrequest uri") != 0)
            abort();
        break;
    case 400:
        if (strcmp(v.line, "badrequest path") == 0) {
            if (!is_update || !allowed || target[v.path_len] == '\0' || v.route != GW_ROUTE_NONE)
                abort();
        } else if (params <= (size_t)lim.max_query_params ||
                   strcmp(v.line, "badrequest query") != 0) {
            abort();
        }
        break;
    case 405:
        if (!v.known || allowed || v.allow == NULL || strcmp(v.line, "badrequest method") != 0)
            abort();
        break;
    default:
        abort();
    }
    free(target);
    return 0;
}
