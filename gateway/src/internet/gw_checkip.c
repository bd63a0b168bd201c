/* gw_checkip: check-IP endpoints (see gw_checkip.h). */
#include "gw_checkip.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <event2/http.h>

#include "gw_log.h"

int gw_checkip_peer_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        return inet_ntop(AF_INET, &s->sin_addr, out, (socklen_t)outlen) ? AF_INET : 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr))
            return inet_ntop(AF_INET, &s->sin6_addr.s6_addr[12], out, (socklen_t)outlen) ? AF_INET : 0;
        return inet_ntop(AF_INET6, &s->sin6_addr, out, (socklen_t)outlen) ? AF_INET6 : 0;
    }
    return 0;
}

void gw_checkip_default_addr(int fam, const char *source, char ipv4[INET_ADDRSTRLEN],
                             char ipv6[INET6_ADDRSTRLEN])
{
    if (ipv4[0] || ipv6[0])
        return;
    size_t sl = strlen(source);
    if (fam == AF_INET && sl < INET_ADDRSTRLEN)
        memcpy(ipv4, source, sl + 1);
    else if (fam == AF_INET6 && sl < INET6_ADDRSTRLEN)
        memcpy(ipv6, source, sl + 1);
}

/* Answers rq with the caller's address put into fmt (one %s). */
static void gw_checkip_answer(gw_req_t *rq, const char *content_type, const char *fmt)
{
    char addr[INET6_ADDRSTRLEN], body[256];
    /* other methods were answered 405 by gw_route */
    if (gw_checkip_peer_addr(gw_req_peer(rq), addr, sizeof addr) == 0) {
        gw_error("check-IP request without a peer address");
        gw_req_reply(rq, 503, "911", 30);
        return;
    }
    int n = snprintf(body, sizeof body, fmt, addr);
    if (n < 0 || (size_t)n >= sizeof body) {
        gw_req_reply(rq, 503, "911", 30);
        return;
    }
    gw_req_reply_body(rq, 200, content_type, body, (size_t)n, "ip", 0);
}

void gw_checkip_handle_text(void *arg, gw_req_t *rq)
{
    (void)arg;
    gw_checkip_answer(rq, NULL, "%s\n");
}

void gw_checkip_handle_html(void *arg, gw_req_t *rq)
{
    (void)arg;
    gw_checkip_answer(rq, "text/html; charset=utf-8",
                      "<html><head><title>Current IP Check</title></head>"
                      "<body>Current IP Address: %s</body></html>\n");
}
