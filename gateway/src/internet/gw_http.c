/* gw_http: HTTPS front end (see gw_http.h). */
#include "gw_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/keyvalq_struct.h>

#include "gw_addr.h"
#include "gw_conn.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_metrics.h"
#include "gw_reply.h"
#include "gw_route.h"

#define GW_HTTP_LISTEN_BACKLOG 1024

struct gw_req {
    TAILQ_ENTRY(gw_req) next;
    gw_http_t *h;
    struct evhttp_request *req;         /* NULL once abandoned */
    struct evhttp_connection *evcon;    /* NULL once the client went away */
    gw_conn_t *conn;                    /* NULL once the client went away */
    int gone;
    int async;
    uint64_t id;
    struct timespec start;
    struct sockaddr_storage peer;
    char peer_text[INET6_ADDRSTRLEN + 8];   /* with the port, for the access log */
    char addr[INET6_ADDRSTRLEN];
    gw_req_info_t info;
    const char *query;
    const char *method;
    char path[128];
    char device[16];
};
TAILQ_HEAD(gw_reqq, gw_req);

struct gw_http {
    struct event_base *base;
    const gw_config_t *cfg;
    SSL_CTX *ssl;
    struct evhttp *http;
    struct evhttp_bound_socket *bound[GW_MAX_LISTEN];
    size_t nbound;
    struct {
        gw_http_handler_fn fn;
        void *arg;
    } handler[GW_ROUTE_COUNT];          /* gw_http_set_handler */
    struct gw_reqq inflight;
    atomic_size_t ninflight;    /* atomic: read by /metrics on the main thread */
    int worker;                 /* worker number, for the access log */
    unsigned short port[GW_MAX_LISTEN];     /* ports bound, per listener */
    int stopping;
    size_t nwriting;            /* answers handed to evhttp, not yet sent */
    struct event *flush_timer;  /* bounds the wait for nwriting to reach 0 */
    void (*drained)(void *);
    void *drained_arg;
};

/* Request ids, unique across the workers. */
static atomic_ullong gw_http_next_id;

/* ---- TLS per connection --------------------------------------------------- */

static struct bufferevent *gw_http_bevcb(struct event_base *base, void *arg)
{
    gw_http_t *h = arg;
    return gw_conn_bev_new(base, h->ssl, h->cfg);
}

/* ---- replies and the access log ------------------------------------------ */

/* Answers up to this size leave as one TLS record (see gw_req_reply_body). */
#define GW_HTTP_JOIN_MAX 4096

static void gw_http_flush_timeout_cb(evutil_socket_t fd, short what, void *arg);

/* While stopping: once no request is in flight and every answer went out
 * (or the flush timer gave up on them), tell the owner. */
static void gw_http_check_drained(gw_http_t *h)
{
    if (!h->stopping || h->drained == NULL || h->ninflight > 0)
        return;
    if (h->nwriting > 0 && h->flush_timer != NULL && evtimer_pending(h->flush_timer, NULL))
        return;
    if (h->nwriting > 0 && h->flush_timer == NULL) {
        h->flush_timer = evtimer_new(h->base, gw_http_flush_timeout_cb, h);
        if (h->flush_timer != NULL) {
            struct timeval tv = {1, 0};
            evtimer_add(h->flush_timer, &tv);
            return;
        }
    }
    void (*fn)(void *) = h->drained;
    h->drained = NULL;
    fn(h->drained_arg);
}

static void gw_http_flush_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_http_check_drained(arg);
}

static void gw_req_sent_cb(struct evhttp_request *req, void *arg)
{
    gw_http_t *h = arg;
    (void)req;
    if (h->nwriting > 0)
        h->nwriting--;
    if (h->nwriting == 0 && h->flush_timer != NULL)
        evtimer_del(h->flush_timer);
    gw_http_check_drained(h);
}

static void gw_req_free(gw_req_t *rq)
{
    gw_http_t *h = rq->h;
    if (h == NULL) {    /* the front end was freed first */
        free(rq);
        return;
    }
    TAILQ_REMOVE(&h->inflight, rq, next);
    h->ninflight--;
    free(rq);
    gw_http_check_drained(h);
}

int gw_req_refuse(gw_req_refusal_t *f, int status, int retry_after, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->line, sizeof f->line, fmt, ap);
    va_end(ap);
    f->status = status;
    f->retry_after = retry_after;
    f->delay_ms = 0;
    return GW_EINVAL;
}

int gw_req_hold(gw_req_refusal_t *f, int delay_ms)
{
    f->delay_ms = delay_ms;
    return GW_EINVAL;
}

/* A refusal waiting for its time (gw_req_reply_refusal). */
struct gw_req_later {
    gw_req_t *rq;
    gw_req_refusal_t f;
    struct event *ev;
};

static void gw_req_later_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_req_later *l = arg;
    (void)fd;
    (void)what;
    event_free(l->ev);
    gw_req_reply(l->rq, l->f.status, l->f.line, l->f.retry_after);
    free(l);
}

void gw_req_reply_refusal(gw_req_t *rq, const gw_req_refusal_t *f)
{
    struct gw_req_later *l = NULL;
    if (f->delay_ms > 0 && rq->h != NULL && !rq->h->stopping &&
        (l = calloc(1, sizeof *l)) != NULL &&
        (l->ev = evtimer_new(rq->h->base, gw_req_later_cb, l)) != NULL) {
        struct timeval tv = {f->delay_ms / 1000, (f->delay_ms % 1000) * 1000};
        l->rq = rq;
        l->f = *f;
        gw_req_async_begin(rq);
        if (evtimer_add(l->ev, &tv) == 0)
            return;
        event_free(l->ev);
    }
    free(l);
    gw_req_reply(rq, f->status, f->line, f->retry_after);
}

void gw_req_reply(gw_req_t *rq, int status, const char *line, int retry_after)
{
    char body[192], token[24];
    int n = snprintf(body, sizeof body, "%s\n", line);
    if (n < 0 || (size_t)n >= sizeof body)
        n = snprintf(body, sizeof body, "911\n");
    size_t tl = strcspn(line, " ");
    if (tl >= sizeof token)
        tl = sizeof token - 1;
    memcpy(token, line, tl);
    token[tl] = '\0';
    gw_req_reply_body(rq, status, NULL, body, (size_t)n, token, retry_after);
}

void gw_req_reply_body(gw_req_t *rq, int status, const char *content_type, const char *body,
                       size_t len, const char *token, int retry_after)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ms = (double)(now.tv_sec - rq->start.tv_sec) * 1e3 +
                (double)(now.tv_nsec - rq->start.tv_nsec) / 1e6;
    gw_log_request_t lr = {
        .id = rq->id, .peer = rq->peer_text, .method = rq->method, .path = rq->path,
        .status = status, .result = token, .device = rq->device[0] ? rq->device : "-",
        .ms = ms, .worker = rq->h ? rq->h->worker : -1,
        .delivery = rq->req == NULL ? "abandoned" : rq->gone ? "client-gone" : NULL,
    };
    gw_log_request(&lr);
    gw_metrics_request(rq->path, token, ms / 1e3);
    if (strcmp(token, "badauth") == 0)
        gw_metrics_inc(GW_M_AUTH_FAILURES);
    else if (strcmp(token, "ratelimit") == 0 || strcmp(token, "abuse") == 0)
        gw_metrics_inc(GW_M_RATELIMITED);

    struct evhttp_request *req = rq->req;
    if (req != NULL && rq->gone) {
        /* evhttp detached the request from the closed connection and left
         * it to us. */
        evhttp_request_free(req);
    } else if (req != NULL) {
        char num[32];
        if (rq->async && rq->evcon != NULL)
            evhttp_connection_set_closecb(rq->evcon, NULL, NULL);
        struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
        gw_reply_headers(req, status, content_type, retry_after);
        snprintf(num, sizeof num, "%zu", len);
        evhttp_add_header(oh, "Content-Length", num);
        snprintf(num, sizeof num, "%llu", (unsigned long long)rq->id);
        evhttp_add_header(oh, "X-Request-Id", num);
        if (rq->h != NULL && rq->h->stopping)
            evhttp_add_header(oh, "Connection", "close");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
        if (rq->h != NULL) {
            rq->h->nwriting++;
            evhttp_request_set_on_complete_cb(req, gw_req_sent_cb, rq->h);
        }
        struct evhttp_connection *evcon = evhttp_request_get_connection(req);
        struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
        struct evbuffer *out = bev ? bufferevent_get_output(bev) : NULL;
        /* evhttp queues the header and the body as two pieces, and the TLS
         * bufferevent writes each piece as a TLS record of its own (two
         * encryptions, two write(2)s, two segments for the client to read).
         * The answer is sent on a later pass of the loop: join the pieces
         * right after queueing them so that it leaves as one record. Only
         * when nothing else was waiting to be written (a TLS write being
         * retried must find its bytes where they were) and only small
         * answers (a few hundred bytes are copied). evhttp frees the
         * connection only after the write. */
        int join = out != NULL && evbuffer_get_length(out) == 0;
        evhttp_send_reply(req, status, gw_reply_reason(status), NULL);
        if (join && evbuffer_get_length(out) <= GW_HTTP_JOIN_MAX &&
            evbuffer_peek(out, -1, NULL, NULL, 0) > 1)
            (void)evbuffer_pullup(out, -1);
        gw_conn_request_end(rq->conn);
    }
    gw_req_free(rq);
}

/* ---- per-request accessors ------------------------------------------------ */

struct evhttp_request *gw_req_evreq(gw_req_t *rq)
{
    return rq->gone ? NULL : rq->req;
}

const gw_req_info_t *gw_req_info(const gw_req_t *rq)
{
    return &rq->info;
}

const uint8_t *gw_req_body(gw_req_t *rq, size_t max, size_t *len)
{
    struct evbuffer *in = rq->req ? evhttp_request_get_input_buffer(rq->req) : NULL;
    *len = in ? evbuffer_get_length(in) : 0;
    if (*len > max)
        return NULL;
    return *len ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
}

const char *gw_req_query(const gw_req_t *rq)
{
    return rq->query;
}

void gw_req_set_device(gw_req_t *rq, const char *device_id)
{
    snprintf(rq->device, sizeof rq->device, "%s", device_id);
}

int gw_req_gone(const gw_req_t *rq)
{
    return rq->gone || rq->req == NULL;
}

static void gw_req_closecb(struct evhttp_connection *evcon, void *arg)
{
    gw_req_t *rq = arg;
    (void)evcon;
    rq->gone = 1;
    rq->evcon = NULL;
    rq->conn = NULL;
}

void gw_req_async_begin(gw_req_t *rq)
{
    if (rq->evcon != NULL) {
        rq->async = 1;
        evhttp_connection_set_closecb(rq->evcon, gw_req_closecb, rq);
    }
}

/* ---- routing -------------------------------------------------------------- */

static void gw_peer_text(const struct sockaddr *sa, char *out, size_t outlen)
{
    char a[INET6_ADDRSTRLEN];
    if (sa != NULL && sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s->sin_addr, a, sizeof a);
        snprintf(out, outlen, "%s:%u", a, ntohs(s->sin_port));
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof a);
        snprintf(out, outlen, "[%s]:%u", a, ntohs(s->sin6_port));
    } else {
        snprintf(out, outlen, "-");
    }
}

static const char *gw_method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

/* One pass over the headers: what gw_req_info gives the endpoints, and the
 * number of Content-Length and Transfer-Encoding fields (the framing). */
static void gw_req_headers(gw_req_t *rq, struct evhttp_request *req, size_t *n_length,
                           size_t *n_te)
{
    struct evkeyval *kv;
    const char *auth = NULL;
    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next) {
        if (strcasecmp(kv->key, "Authorization") == 0) {
            auth = kv->value;
            rq->info.nauth++;
        } else if (strcasecmp(kv->key, "User-Agent") == 0) {
            if (rq->info.agent == NULL)
                rq->info.agent = kv->value;
        } else if (strcasecmp(kv->key, "Content-Length") == 0) {
            (*n_length)++;
            rq->info.has_length = 1;
        } else if (strcasecmp(kv->key, "Transfer-Encoding") == 0) {
            (*n_te)++;
            if (strcasecmp(kv->value, "chunked") == 0)
                rq->info.has_length = 1;
        }
    }
    rq->info.authorization = rq->info.nauth == 1 ? auth : NULL;
}

/* The checks every request passes before routing (gw_route): GW_OK with
 * the route, or GW_EINVAL with the refusal in f (and the headers it needs
 * already added). */
static int gw_http_check_request(gw_http_t *h, gw_req_t *rq, struct evhttp_request *req,
                                 const char *uri, enum evhttp_cmd_type cmd,
                                 gw_route_id_t *route, gw_req_refusal_t *f)
{
    gw_route_verdict_t v;
    size_t n_length = 0, n_te = 0;
    gw_route_precheck(uri, (int)cmd, &h->cfg->limits, &v);
    gw_req_headers(rq, req, &n_length, &n_te);
    gw_route_framing(n_length, n_te, &v);
    if (v.status == 400 && v.line != NULL && strcmp(v.line, "badrequest content-length") == 0)
        /* what follows on the connection is not trusted */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    *route = v.route;
    if (v.status == 0)
        return GW_OK;
    if (v.allow != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", v.allow);
    return gw_req_refuse(f, v.status, 0, "%s", v.line);
}

static void gw_http_gencb(struct evhttp_request *req, void *arg)
{
    gw_http_t *h = arg;
    gw_req_t *rq = calloc(1, sizeof *rq);
    if (rq == NULL) {
        gw_error("out of memory for a request");
        evhttp_send_error(req, 503, NULL);
        return;
    }
    rq->h = h;
    rq->req = req;
    rq->id = atomic_fetch_add(&gw_http_next_id, 1) + 1;
    clock_gettime(CLOCK_MONOTONIC, &rq->start);
    TAILQ_INSERT_TAIL(&h->inflight, rq, next);
    h->ninflight++;

    rq->evcon = evhttp_request_get_connection(req);
    if (rq->evcon != NULL) {
        /* The client's address: the PROXY header's when there was one
         * (gw_conn); never a request header such as X-Forwarded-For. */
        rq->conn = gw_conn_of(rq->evcon);
        gw_conn_request_begin(rq->conn);
        const struct sockaddr *sa = gw_conn_client(rq->conn);
        if (sa == NULL)
            sa = evhttp_connection_get_addr(rq->evcon);
        if (sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6))
            memcpy(&rq->peer, sa, sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                           : sizeof(struct sockaddr_in6));
    }
    gw_peer_text((const struct sockaddr *)&rq->peer, rq->peer_text, sizeof rq->peer_text);
    rq->info.peer = (const struct sockaddr *)&rq->peer;
    rq->info.family = gw_addr_text(rq->info.peer, rq->addr, sizeof rq->addr);
    rq->info.addr = rq->addr;

    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    rq->method = gw_method_name(cmd);
    const char *uri = evhttp_request_get_uri(req);
    if (uri == NULL)
        uri = "";
    size_t pl = strcspn(uri, "?#");
    rq->query = uri[pl] == '?' ? uri + pl + 1 : "";
    snprintf(rq->path, sizeof rq->path, "%.*s", (int)(pl < 100 ? pl : 100), uri);
    for (char *c = rq->path; *c; c++)
        if (*c == ' ' || (unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
            *c = '?';

    gw_route_id_t route;
    gw_req_refusal_t f;
    if (gw_http_check_request(h, rq, req, uri, cmd, &route, &f) != GW_OK)
        gw_req_reply(rq, f.status, f.line, f.retry_after);
    else if (route == GW_ROUTE_HEALTHZ)
        gw_req_reply(rq, 200, "ok", 0);
    else if (route != GW_ROUTE_NONE && h->handler[route].fn != NULL)
        h->handler[route].fn(h->handler[route].arg, rq);
    else
        gw_req_reply(rq, 404, "notfound", 0);
}

/* ---- life cycle ----------------------------------------------------------- */

void gw_http_apply_settings(gw_http_t *h)
{
    evhttp_set_max_headers_size(h->http, (ev_ssize_t)h->cfg->limits.max_header_size);
    evhttp_set_max_body_size(h->http, (ev_ssize_t)h->cfg->limits.max_body_size);
    evhttp_set_timeout(h->http, h->cfg->request_timeout);
}

void gw_http_set_ssl(gw_http_t *h, SSL_CTX *ssl)
{
    h->ssl = ssl;
}

gw_http_t *gw_http_new(struct event_base *base, const gw_config_t *cfg, SSL_CTX *ssl)
{
    gw_http_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->base = base;
    h->cfg = cfg;
    h->ssl = ssl;
    TAILQ_INIT(&h->inflight);
    h->http = evhttp_new(base);
    if (h->http == NULL) {
        free(h);
        return NULL;
    }
    evhttp_set_bevcb(h->http, gw_http_bevcb, h);
    evhttp_set_gencb(h->http, gw_http_gencb, h);
    gw_http_apply_settings(h);
    /* Every method libevent can parse reaches our router, which answers
     * "badrequest method" itself (one line) instead of libevent's HTML 501. */
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(h->http, "text/plain; charset=utf-8");
    return h;
}

void gw_http_set_handler(gw_http_t *h, gw_route_id_t route, gw_http_handler_fn fn, void *arg)
{
    if (route > GW_ROUTE_NONE && route < GW_ROUTE_COUNT) {
        h->handler[route].fn = fn;
        h->handler[route].arg = arg;
    }
}

static int gw_http_bind_one(const gw_sockaddr_t *a, unsigned short port, char *text,
                            size_t textlen, unsigned short *bound_port)
{
    gw_sockaddr_t at = *a;
    if (port != 0) {
        if (at.ss.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&at.ss)->sin6_port = htons(port);
        else if (at.ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&at.ss)->sin_port = htons(port);
    }
    a = &at;
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        goto fail;
    if (a->ss.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
        goto fail;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 ||
        listen(fd, GW_HTTP_LISTEN_BACKLOG) != 0)
        goto fail;
    /* report the port actually bound (port 0 picks one) */
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char ip[INET6_ADDRSTRLEN];
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        snprintf(text, textlen, "[%s]:%u", ip, ntohs(s6->sin6_port));
        *bound_port = ntohs(s6->sin6_port);
    } else if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        snprintf(text, textlen, "%s:%u", ip, ntohs(s4->sin_port));
        *bound_port = ntohs(s4->sin_port);
    } else {
        snprintf(text, textlen, "%s", a->text);
    }
    return fd;
fail:
    {
        int e = errno;
        close(fd);
        errno = e;
    }
    return -1;
}

int gw_http_listen(gw_http_t *h, const gw_http_t *first)
{
    for (size_t i = 0; i < h->cfg->listen.n; i++) {
        const gw_sockaddr_t *a = &h->cfg->listen.addr[i];
        char text[80];
        int fd = gw_http_bind_one(a, first ? first->port[i] : 0, text, sizeof text,
                                  &h->port[i]);
        if (fd < 0) {
            gw_error("cannot listen on %s: %s", a->text, strerror(errno));
            return GW_EIO;
        }
        h->bound[h->nbound] = evhttp_accept_socket_with_handle(h->http, fd);
        if (h->bound[h->nbound] == NULL) {
            close(fd);
            gw_error("cannot accept on %s", a->text);
            return GW_EIO;
        }
        h->nbound++;
        if (first == NULL)
            gw_info("listening on %s", text);
    }
    return GW_OK;
}

void gw_http_stop_accepting(gw_http_t *h, void (*drained)(void *), void *arg)
{
    for (size_t i = 0; i < h->nbound; i++)
        evhttp_del_accept_socket(h->http, h->bound[i]);
    h->nbound = 0;
    h->stopping = 1;
    h->drained = drained;
    h->drained_arg = arg;
    gw_http_check_drained(h);
}

size_t gw_http_inflight(const gw_http_t *h)
{
    return atomic_load(&h->ninflight);
}

void gw_http_set_worker(gw_http_t *h, int worker)
{
    h->worker = worker;
}

void gw_http_free(gw_http_t *h)
{
    if (h == NULL)
        return;
    h->drained = NULL;
    /* Abandon what is still in flight: evhttp_free() frees the requests. */
    gw_req_t *rq;
    TAILQ_FOREACH(rq, &h->inflight, next) {
        if (rq->async && rq->evcon != NULL && !rq->gone)
            evhttp_connection_set_closecb(rq->evcon, NULL, NULL);
        if (rq->gone && rq->req != NULL)
            evhttp_request_free(rq->req);   /* detached: ours to free */
        rq->req = NULL;
        rq->evcon = NULL;
        rq->conn = NULL;
    }
    evhttp_free(h->http);
    h->http = NULL;
    if (h->flush_timer != NULL)
        event_free(h->flush_timer);
    /* The handlers still own their gw_req_t; they reply (log only) when
     * their query ends, which the caller guarantees happens before or right
     * after this (gw_db_free fails pending queries). Detach them from h. */
    while ((rq = TAILQ_FIRST(&h->inflight)) != NULL) {
        TAILQ_REMOVE(&h->inflight, rq, next);
        h->ninflight--;
        rq->h = NULL;
    }
    free(h);
}
