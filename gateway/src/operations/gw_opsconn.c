/* gw_opsconn: the operations listener's connections (see gw_opsconn.h). */
#include "gw_opsconn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>

#include "gw_addr.h"
#include "gw_clock.h"
#include "gw_limit.h"
#include "gw_log.h"

/* One connection, from its bufferevent's creation to its free. */
struct gw_oconn {
    gw_opsconn_t *oc;
    LIST_ENTRY(gw_oconn) link;
    struct bufferevent *bev;        /* evhttp's, with one reference of ours */
    struct event *start;            /* runs once evhttp has set the socket; then NULL */
    struct event *clock;            /* header_timeout */
    struct evhttp_connection *evcon;    /* once evhttp has set it up; NULL once closed */
    void (*gone)(void *, int);      /* gw_opsconn_watch's */
    struct event *watch;            /* EOF from the client while a request waits */
    void *gone_arg;
    struct sockaddr_storage peer;
    int counted;                    /* gw_limit_open_in succeeded */
    int per_source;                 /* and counted the peer (not a trusted proxy) */
    int closing;
};

struct gw_opsconn {
    struct event_base *base;
    const gw_config_t *cfg;
    gw_limit_t *lim;
    LIST_HEAD(, gw_oconn) conns;    /* every connection whose state exists */
    struct event *sweep;            /* every second while there are any */
    int64_t noted[2];               /* last log line per reason (monotonic s) */
    unsigned long unnoted[2];       /* closes since */
};

static void gw_oconn_closecb(struct evhttp_connection *evcon, void *arg);

static void gw_opsconn_limits(const gw_config_t *cfg, gw_limit_conf_t *lc)
{
    memset(lc, 0, sizeof *lc);
    lc->max_connections = cfg->admin_limits.max_connections;
    lc->max_connections_per_source = cfg->admin_limits.max_connections_per_source;
}

/* Ends the connection: evhttp sees the end of the stream and frees it. */
static void gw_oconn_close(struct gw_oconn *c)
{
    c->closing = 1;
    evtimer_del(c->clock);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0)
        (void)shutdown(fd, SHUT_RDWR);
}

/* At most one log line every 10 s per reason: 0 a limit, 1 the clock. */
static void gw_opsconn_note(gw_opsconn_t *oc, const struct gw_oconn *c, int which,
                            const char *why)
{
    int64_t now = gw_clock_s();
    if (now - oc->noted[which] < 10) {
        oc->unnoted[which]++;
        return;
    }
    char ip[INET6_ADDRSTRLEN] = "-";
    if (c->peer.ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&c->peer)->sin_addr, ip, sizeof ip);
    else if (c->peer.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&c->peer)->sin6_addr, ip, sizeof ip);
    gw_warn("admin connection from %s closed: %s (%lu more since the last such line)", ip,
            why, oc->unnoted[which]);
    oc->noted[which] = now;
    oc->unnoted[which] = 0;
}

static void gw_oconn_start_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_oconn *c = arg;
    (void)fd;
    (void)what;
    event_free(c->start);
    c->start = NULL;
    evutil_socket_t s = bufferevent_getfd(c->bev);
    socklen_t pl = sizeof c->peer;
    if (s < 0 || getpeername(s, (struct sockaddr *)&c->peer, &pl) != 0) {
        gw_oconn_close(c);
        return;
    }
    bufferevent_event_cb ecb = NULL;
    void *cbarg = NULL;
    bufferevent_getcb(c->bev, NULL, NULL, &ecb, &cbarg);
    if (ecb != NULL && cbarg != NULL) {     /* evhttp's callbacks take its connection */
        c->evcon = cbarg;
        evhttp_connection_set_closecb(c->evcon, gw_oconn_closecb, c);
    }
    const gw_config_t *cfg = c->oc->cfg;
    int proxy = gw_addr_cidr_match(&cfg->admin_trusted_proxies, (struct sockaddr *)&c->peer);
    int v = gw_limit_open_in(c->oc->lim, proxy ? NULL : (struct sockaddr *)&c->peer);
    if (v == GW_LIMIT_OK) {
        c->counted = 1;
        c->per_source = !proxy;
        return;
    }
    gw_opsconn_note(c->oc, c, 0, v == GW_LIMIT_TOTAL ? "[admin] max_connections reached"
                                                  : "[admin] max_connections_per_source reached");
    gw_oconn_close(c);
}

static void gw_oconn_clock_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_oconn *c = arg;
    (void)fd;
    (void)what;
    bufferevent_event_cb ecb = NULL;
    bufferevent_getcb(c->bev, NULL, NULL, &ecb, NULL);
    if (ecb == NULL)
        return;         /* evhttp has freed it already */
    gw_opsconn_note(c->oc, c, 1, "no complete request within [admin] header_timeout");
    gw_oconn_close(c);
}

static void gw_oconn_uncount(struct gw_oconn *c)
{
    gw_opsconn_t *oc = c->oc;
    if (c->counted)
        gw_limit_close_in(oc->lim, c->per_source ? (struct sockaddr *)&c->peer : NULL);
    c->counted = 0;
}

/* evhttp closes the connection: it is uncounted at once (a client that
 * sends one request per connection is not refused for connections that
 * are already gone), and whoever watches it learns. */
static void gw_oconn_closecb(struct evhttp_connection *evcon, void *arg)
{
    struct gw_oconn *c = arg;
    (void)evcon;
    gw_oconn_uncount(c);
    c->evcon = NULL;
    c->closing = 1;
    evtimer_del(c->clock);
    void (*gone)(void *, int) = c->gone;
    c->gone = NULL;
    if (c->watch != NULL)
        event_del(c->watch);
    if (gone != NULL)
        gone(c->gone_arg, 1);
}

/* Frees the events of c and c itself. */
static void gw_oconn_drop(struct gw_oconn *c)
{
    struct event *evs[3] = {c->start, c->watch, c->clock};
    for (size_t i = 0; i < 3; i++)
        if (evs[i] != NULL)
            event_free(evs[i]);
    free(c);
}

/* evhttp has freed the connection (bufferevent_free took its callbacks):
 * uncount it if its close was not seen, and drop the last reference, which
 * closes the socket. */
static void gw_oconn_end(struct gw_oconn *c)
{
    gw_oconn_uncount(c);
    LIST_REMOVE(c, link);
    struct bufferevent *bev = c->bev;
    gw_oconn_drop(c);           /* its events first: the socket is still open */
    bufferevent_decref(bev);
}

/* Finds the connections evhttp has freed. evhttp_connection_free has no
 * hook of its own for connections that never sent a request, so each
 * connection's bufferevent carries a reference of ours: evhttp's free then
 * only takes its callbacks (the error callback is set for the whole life
 * of a connection, from the moment evhttp takes the bufferevent). */
static void gw_opsconn_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_opsconn_t *oc = arg;
    (void)fd;
    (void)what;
    for (struct gw_oconn *c = LIST_FIRST(&oc->conns), *next; c != NULL; c = next) {
        next = LIST_NEXT(c, link);
        bufferevent_event_cb ecb = NULL;
        bufferevent_getcb(c->bev, NULL, NULL, &ecb, NULL);
        if (c->start == NULL && ecb == NULL)
            gw_oconn_end(c);
    }
    if (LIST_EMPTY(&oc->conns))
        evtimer_del(oc->sweep);
}

static void gw_oconn_arm(struct gw_oconn *c)
{
    struct timeval tv = {c->oc->cfg->admin_limits.header_timeout, 0};
    evtimer_add(c->clock, &tv);
}

static struct bufferevent *gw_opsconn_bevcb(struct event_base *base, void *arg)
{
    gw_opsconn_t *oc = arg;
    struct gw_oconn *c = calloc(1, sizeof *c);
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (c == NULL || bev == NULL)
        goto fail;
    c->oc = oc;
    c->bev = bev;
    c->start = event_new(base, -1, 0, gw_oconn_start_cb, c);
    c->clock = evtimer_new(base, gw_oconn_clock_cb, c);
    if (c->start == NULL || c->clock == NULL)
        goto fail;
    bufferevent_incref(bev);
    LIST_INSERT_HEAD(&oc->conns, c, link);
    if (!evtimer_pending(oc->sweep, NULL)) {
        struct timeval sec = {1, 0};
        evtimer_add(oc->sweep, &sec);
    }
    gw_oconn_arm(c);
    /* evhttp sets the socket and its callbacks right after this returns */
    event_active(c->start, EV_TIMEOUT, 1);
    return bev;
fail:
    if (c != NULL)
        gw_oconn_drop(c);
    if (bev == NULL)
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    gw_error("cannot create the state of a new admin connection: it is not counted");
    return bev;     /* NULL only when out of memory: evhttp then drops it */
}

gw_opsconn_t *gw_opsconn_new(struct event_base *base, const gw_config_t *cfg)
{
    gw_opsconn_t *oc = calloc(1, sizeof *oc);
    if (oc == NULL)
        return NULL;
    gw_limit_conf_t lc;
    gw_opsconn_limits(cfg, &lc);
    oc->base = base;
    oc->cfg = cfg;
    LIST_INIT(&oc->conns);
    oc->noted[0] = oc->noted[1] = -1000;
    oc->lim = gw_limit_new(&lc, 0, "admin listener");
    oc->sweep = event_new(base, -1, EV_PERSIST, gw_opsconn_sweep_cb, oc);
    if (oc->lim == NULL || oc->sweep == NULL) {
        gw_limit_free(oc->lim);
        if (oc->sweep != NULL)
            event_free(oc->sweep);
        free(oc);
        return NULL;
    }
    return oc;
}

void gw_opsconn_attach(gw_opsconn_t *oc, struct evhttp *evh)
{
    evhttp_set_bevcb(evh, gw_opsconn_bevcb, oc);
}

void gw_opsconn_apply_settings(gw_opsconn_t *oc)
{
    gw_limit_conf_t lc;
    if (oc == NULL)
        return;
    gw_opsconn_limits(oc->cfg, &lc);
    gw_limit_configure(oc->lim, &lc);
}

static struct gw_oconn *gw_opsconn_find(gw_opsconn_t *oc, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    struct gw_oconn *c;
    if (bev == NULL)
        return NULL;
    LIST_FOREACH(c, &oc->conns, link)
        if (c->bev == bev)
            return c;
    return NULL;
}

static void gw_opsconn_done_cb(struct evhttp_request *req, void *arg)
{
    struct gw_oconn *c = gw_opsconn_find(arg, req);
    if (c != NULL && !c->closing)
        gw_oconn_arm(c);
}

void gw_opsconn_request(gw_opsconn_t *oc, struct evhttp_request *req)
{
    struct gw_oconn *c = oc ? gw_opsconn_find(oc, req) : NULL;
    if (c == NULL)
        return;
    evtimer_del(c->clock);
    evhttp_request_set_on_complete_cb(req, gw_opsconn_done_cb, oc);
}

/* The socket of a connection whose request waits became readable: the
 * end of the stream (or an error) means that the client left. evhttp does
 * not read while a request waits for its answer, so it would only see that
 * when it writes. Anything else (a pipelined request) is left to evhttp. */
static void gw_oconn_watch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_oconn *c = arg;
    char b;
    (void)what;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if ((n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) &&
        c->gone != NULL)
        c->gone(c->gone_arg, 0);
}

gw_oconn_t *gw_opsconn_watch(gw_opsconn_t *oc, struct evhttp_request *req,
                             void (*gone)(void *, int), void *arg)
{
    struct gw_oconn *c = oc ? gw_opsconn_find(oc, req) : NULL;
    if (c == NULL || c->evcon == NULL)
        return NULL;
    c->gone = gone;
    c->gone_arg = arg;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0) {
        if (c->watch == NULL)
            c->watch = event_new(oc->base, fd, EV_READ, gw_oconn_watch_cb, c);
        if (c->watch != NULL)
            event_add(c->watch, NULL);
    }
    return c;
}

void gw_opsconn_unwatch(gw_oconn_t *c)
{
    if (c == NULL)
        return;
    c->gone = NULL;
    if (c->watch != NULL)
        event_del(c->watch);
}

size_t gw_opsconn_open(const gw_opsconn_t *oc)
{
    return oc ? gw_limit_connections_in(oc->lim) : 0;
}

void gw_opsconn_free(gw_opsconn_t *oc)
{
    if (oc == NULL)
        return;
    while (!LIST_EMPTY(&oc->conns))     /* evhttp freed them all before */
        gw_oconn_end(LIST_FIRST(&oc->conns));
    event_free(oc->sweep);
    gw_limit_free(oc->lim);
    free(oc);
}

/* ---- the client's address ------------------------------------------------- */

int gw_opsconn_sa(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr) == 1)
        ss->ss_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1)
        ss->ss_family = AF_INET6;
    else
        return -1;
    return 0;
}

/* The right-most address of a header value ("a, b, c": c) into out;
 * 0, or -1 when it is not a numeric address. */
static int gw_opsconn_last_hop(const char *value, char *out, size_t outlen)
{
    const char *s = strrchr(value, ',');
    s = s ? s + 1 : value;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strcspn(s, " \t");
    if (n == 0 || n >= outlen || s[n + strspn(s + n, " \t")] != '\0')
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    struct sockaddr_storage ss;
    return gw_opsconn_sa(out, &ss);
}

void gw_opsconn_client(const gw_config_t *cfg, struct evhttp_request *req, char *out,
                       size_t outlen)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    char *host = NULL;
    ev_uint16_t port = 0;
    if (evcon != NULL)
        evhttp_connection_get_peer(evcon, &host, &port);
    snprintf(out, outlen, "%s", host ? host : "unknown");
    const char *name = cfg->admin_client_address_header;
    struct sockaddr_storage peer;
    if (name == NULL || name[0] == '\0' || host == NULL || gw_opsconn_sa(host, &peer) != 0 ||
        !gw_addr_cidr_match(&cfg->admin_trusted_proxies, (struct sockaddr *)&peer))
        return;
    const char *value = evhttp_find_header(evhttp_request_get_input_headers(req), name);
    char hop[INET6_ADDRSTRLEN];
    if (value != NULL && gw_opsconn_last_hop(value, hop, sizeof hop) == 0)
        snprintf(out, outlen, "%s", hop);
}
