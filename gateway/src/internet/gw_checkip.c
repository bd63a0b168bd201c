/* gw_checkip: check-IP endpoints (see gw_checkip.h). */
#include "gw_checkip.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <event2/http.h>

#include "gw_log.h"

/* Answers rq with the caller's address put into fmt (one %s). */
static void gw_checkip_answer(gw_req_t *rq, const char *content_type, const char *fmt)
{
    char body[256];
    const char *addr = gw_req_info(rq)->addr;
    /* other methods were answered 405 by gw_route */
    if (addr[0] == '\0') {
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
