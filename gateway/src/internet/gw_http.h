/* gw_http: the HTTPS front end.
 *
 * Owns the listening sockets, evhttp over the connections of gw_conn (TLS,
 * PROXY header, connection limits, header clock), the HTTP limits of
 * [limits] (header and body sizes enforced by evhttp with its own 413
 * page), the checks of gw_route before routing (URI length 414, query
 * parameter count 400, methods per known path 405 with Allow),
 * request_timeout as evhttp's read/write inactivity timeout, routing in one
 * generic callback
 * (gw_route's table gives the route, each endpoint registered its handler
 * with gw_http_set_handler, GET /healthz is answered here, everything else
 * 404 notfound), the
 * response format of docs/PROTOCOL.md section 6 (one text line, always
 * Content-Length, Retry-After on 429/503), the per-request context (the
 * client's address and the headers every endpoint reads, parsed once:
 * gw_req_info) and the one access-log line per request, and the graceful stop (stop accepting,
 * let in-flight requests finish). */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "gw_config.h"
#include "gw_route.h"

typedef struct gw_http gw_http_t;
typedef struct gw_req gw_req_t;

/* An endpoint's handler. It must end, now or later, with exactly one
 * gw_req_reply() or gw_req_reply_body(). */
typedef void (*gw_http_handler_fn)(void *arg, gw_req_t *rq);

gw_http_t *gw_http_new(struct event_base *base, const gw_config_t *cfg, SSL_CTX *ssl);
/* New connections use ssl from now on (reload); the caller keeps its
 * reference and frees the old context (connections hold their own). */
void gw_http_set_ssl(gw_http_t *h, SSL_CTX *ssl);
/* Applies cfg's [limits] sizes and request_timeout again (reload). */
void gw_http_apply_settings(gw_http_t *h);
/* Sends every request of route (gw_route's table: its path and methods)
 * to fn(arg, rq); a route without a handler answers 404 notfound. */
void gw_http_set_handler(gw_http_t *h, gw_route_id_t route, gw_http_handler_fn fn, void *arg);
/* Binds every configured listener with SO_REUSEPORT, so that each worker
 * has its own sockets on the same ports and the kernel spreads new
 * connections over them. With first NULL, logs "listening on ADDR:PORT"
 * for each; otherwise binds the ports first got (which matters for port
 * 0). Returns GW_OK or GW_EIO (logged). */
int gw_http_listen(gw_http_t *h, const gw_http_t *first) __attribute__((warn_unused_result));
/* The worker number written in the access log ("worker=N"). */
void gw_http_set_worker(gw_http_t *h, int worker);
/* Closes the listeners; answers from now on carry "Connection: close".
 * drained(arg) runs once no request is in flight any more. */
void gw_http_stop_accepting(gw_http_t *h, void (*drained)(void *), void *arg);
/* Requests in flight; any thread may call it. */
size_t gw_http_inflight(const gw_http_t *h);
/* Frees everything; requests still in flight are abandoned without an
 * answer (their handlers' later gw_req_reply() only logs). */
void gw_http_free(gw_http_t *h);

/* ---- per request -------------------------------------------------------- */

/* What every endpoint reads of a request, parsed once when it arrives. */
typedef struct gw_req_info {
    /* the client's address: the PROXY header's when there was one, never
     * a request header such as X-Forwarded-For */
    const struct sockaddr *peer;
    const char *addr;           /* its text (gw_addr_text); "" when none */
    int family;                 /* AF_INET or AF_INET6 of addr; 0 when none */
    const char *agent;          /* the first User-Agent; NULL when none */
    const char *authorization;  /* the Authorization value; NULL unless exactly one */
    int nauth;                  /* Authorization header fields */
    int has_length;             /* a Content-Length, or Transfer-Encoding: chunked */
} gw_req_info_t;

/* The libevent request, or NULL once the request was abandoned. */
struct evhttp_request *gw_req_evreq(gw_req_t *rq);
const gw_req_info_t *gw_req_info(const gw_req_t *rq);
/* The body ("" when there is none) and its length; NULL when it is longer
 * than max (*len still says how long). */
const uint8_t *gw_req_body(gw_req_t *rq, size_t max, size_t *len);
/* The request target after its '?' ("" when none); a fragment, if the
 * client sent one, follows a '#'. */
const char *gw_req_query(const gw_req_t *rq);
/* Records the device id for the access log. */
void gw_req_set_device(gw_req_t *rq, const char *device_id);
/* Before going asynchronous: watch for the client going away. */
void gw_req_async_begin(gw_req_t *rq);
/* 1 when the client went away (the answer will not be delivered). */
int gw_req_gone(const gw_req_t *rq);
/* An answer an endpoint decides before, or instead of, its real work: the
 * status and the one line (a token and its data words). Endpoints record
 * it with gw_req_refuse() and send it once, with gw_req_reply(). */
typedef struct gw_req_refusal {
    int status;
    int retry_after;
    int delay_ms;               /* > 0: sent this much later (gw_req_reply_refusal) */
    char line[96];
} gw_req_refusal_t;

/* Fills f; returns GW_EINVAL, so that a check reads
 * `return gw_req_refuse(f, 400, 0, "badrequest body");`. */
int gw_req_refuse(gw_req_refusal_t *f, int status, int retry_after, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Marks the refusal f to be held back delay_ms (the answer to a blocked
 * source); returns GW_EINVAL like gw_req_refuse. */
int gw_req_hold(gw_req_refusal_t *f, int delay_ms);

/* Sends f with gw_req_reply, f->delay_ms later when it is set: the answer
 * to a client the limiter blocked is held back, so that one that ignores
 * Retry-After gets one answer per connection per delay (a tarpit) instead
 * of as many as it can send; its connection reads nothing meanwhile. Also
 * sent at once when the loop is stopping. */
void gw_req_reply_refusal(gw_req_t *rq, const gw_req_refusal_t *f);

/* Sends status with body line + LF (line is one token and its data words),
 * adds Retry-After when retry_after > 0, writes the access-log line and
 * frees rq. */
void gw_req_reply(gw_req_t *rq, int status, const char *line, int retry_after);
/* The same with a body of any length (sent as given) and content type
 * (NULL: text/plain; charset=utf-8); token is the result word for the
 * access log. Headers the handler added to the request's output headers
 * beforehand are sent too. */
void gw_req_reply_body(gw_req_t *rq, int status, const char *content_type, const char *body,
                       size_t len, const char *token, int retry_after);

#endif
