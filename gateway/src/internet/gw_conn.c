/* gw_conn: connection layer below evhttp (see gw_conn.h). */
#include "gw_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include "gw_err.h"
#include "gw_limit.h"
#include "gw_log.h"
#include "gw_metrics.h"
#include "gw_proxy.h"

enum gw_conn_phase {
    GW_CP_NEW,          /* socket not known yet */
    GW_CP_SNIFF,        /* PROXY listener, untrusted peer: no header allowed */
    GW_CP_EXPECT,       /* PROXY listener, trusted peer: header first */
    GW_CP_OPEN,         /* TLS and HTTP proceed untouched */
    GW_CP_CLOSING,      /* refused or timed out */
};

/* An IPv4 or IPv6 socket address, no larger than it needs to be: one
 * connection record per open connection. */
union gw_conn_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

struct gw_conn {
    const gw_config_t *cfg;
    struct bufferevent *bev;        /* the TLS bufferevent (owned by evhttp) */
    SSL *ssl;
    struct event *start;            /* runs once evhttp has set the socket; then NULL */
    struct event *clock;            /* header_timeout */
    enum gw_conn_phase phase;
    int counted;                    /* gw_limit_conn_open succeeded */
    int have_client;
    union gw_conn_addr peer;        /* TCP peer */
    union gw_conn_addr client;      /* the client (PROXY header or peer) */
};

/* State of the BIO filter that reads the PROXY header below OpenSSL. */
struct gw_pbio {
    gw_conn_t *c;                   /* valid while the SSL object lives */
    unsigned char buf[GW_PROXY_MAX];
    size_t len, off;
    int done;
};

static int gw_conn_idx = -1;
static atomic_size_t gw_conn_n;    /* atomic: safe to read from any thread */
static BIO_METHOD *gw_pbio_method;

/* Log lines about refused connections, per reason: a burst of
 * GW_NOTE_BURST, then GW_NOTE_RATE a second, so that a flood cannot fill
 * the log (the metrics count every one). */
#define GW_NOTE_BURST 50
#define GW_NOTE_RATE 10
/* Input a connection may hold before it stops reading: one largest request
 * (headers, body) and some slack for the TLS records around it. */
#define GW_CONN_INPUT_MAX(cfg) \
    ((size_t)(cfg)->limits.max_header_size + (size_t)(cfg)->limits.max_body_size + 16384u)
enum { GW_NOTE_LIMIT, GW_NOTE_PROXY, GW_NOTE_TIMEOUT, GW_NOTE_N };
static struct {
    double tokens;
    struct timespec last;
    unsigned long suppressed;
    int init;
} gw_conn_notes[GW_NOTE_N];
static pthread_mutex_t gw_conn_notes_mu = PTHREAD_MUTEX_INITIALIZER;    /* every worker */

static void gw_conn_note(int which, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gw_conn_note(int which, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&gw_conn_notes_mu);
    if (!gw_conn_notes[which].init) {
        gw_conn_notes[which].init = 1;
        gw_conn_notes[which].tokens = GW_NOTE_BURST;
    } else {
        double dt = (double)(now.tv_sec - gw_conn_notes[which].last.tv_sec) +
                    (double)(now.tv_nsec - gw_conn_notes[which].last.tv_nsec) / 1e9;
        gw_conn_notes[which].tokens += dt * GW_NOTE_RATE;
        if (gw_conn_notes[which].tokens > GW_NOTE_BURST)
            gw_conn_notes[which].tokens = GW_NOTE_BURST;
    }
    gw_conn_notes[which].last = now;
    if (gw_conn_notes[which].tokens < 1) {
        gw_conn_notes[which].suppressed++;
        pthread_mutex_unlock(&gw_conn_notes_mu);
        return;
    }
    gw_conn_notes[which].tokens -= 1;
    unsigned long suppressed = gw_conn_notes[which].suppressed;
    gw_conn_notes[which].suppressed = 0;
    pthread_mutex_unlock(&gw_conn_notes_mu);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (suppressed > 0)
        gw_warn("%s (and %lu more like it)", msg, suppressed);
    else
        gw_warn("%s", msg);
}

static void gw_conn_addr_text(const union gw_conn_addr *ss, char *out, size_t outlen)
{
    char a[INET6_ADDRSTRLEN];
    if (ss->sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &ss->in.sin_addr, a, sizeof a);
        snprintf(out, outlen, "%s:%u", a, ntohs(ss->in.sin_port));
    } else if (ss->sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &ss->in6.sin6_addr, a, sizeof a);
        snprintf(out, outlen, "[%s]:%u", a, ntohs(ss->in6.sin6_port));
    } else {
        snprintf(out, outlen, "-");
    }
}

/* Ends the connection: evhttp sees the end of the stream and frees it. */
static void gw_conn_close(gw_conn_t *c)
{
    c->phase = GW_CP_CLOSING;
    if (c->clock != NULL)
        evtimer_del(c->clock);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0)
        (void)shutdown(fd, SHUT_RDWR);
}

/* The client is known: count it. Returns 0, or -1 when it was refused
 * (and the connection is closing). */
static int gw_conn_admit(gw_conn_t *c)
{
    c->have_client = 1;
    int v = gw_limit_conn_open(&c->client.sa);
    if (v == GW_LIMIT_OK) {
        c->counted = 1;
        gw_metrics_inc(GW_M_CONN_ACCEPTED);
        return 0;
    }
    char text[80];
    gw_conn_addr_text(&c->client, text, sizeof text);
    gw_metrics_inc(v == GW_LIMIT_TOTAL ? GW_M_CONN_REFUSED_TOTAL : GW_M_CONN_REFUSED_SOURCE);
    gw_conn_note(GW_NOTE_LIMIT, "connection from %s closed: %s reached", text,
                 v == GW_LIMIT_TOTAL ? "max_connections" : "max_connections_per_source");
    gw_conn_close(c);
    return -1;
}

static void gw_conn_refuse_proxy(gw_conn_t *c, const char *why)
{
    char text[80];
    gw_conn_addr_text(&c->peer, text, sizeof text);
    gw_metrics_inc(GW_M_PROXY_REFUSED);
    gw_conn_note(GW_NOTE_PROXY, "connection from %s closed: %s", text, why);
    gw_conn_close(c);
}

/* Does the local address of fd belong to a [proxy] listeners entry? */
static int gw_conn_on_proxy_listener(const gw_conn_t *c, evutil_socket_t fd)
{
    struct sockaddr_storage local;
    socklen_t ll = sizeof local;
    if (c->cfg->proxy_listeners.n == 0 ||
        getsockname(fd, (struct sockaddr *)&local, &ll) != 0)
        return 0;
    for (size_t i = 0; i < c->cfg->proxy_listeners.n; i++) {
        const struct sockaddr_storage *l = &c->cfg->proxy_listeners.addr[i].ss;
        if (l->ss_family != local.ss_family)
            continue;
        if (l->ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)l;
            const struct sockaddr_in *b = (const struct sockaddr_in *)&local;
            if (a->sin_port == b->sin_port &&
                (a->sin_addr.s_addr == htonl(INADDR_ANY) || a->sin_addr.s_addr == b->sin_addr.s_addr))
                return 1;
        } else {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)l;
            const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)&local;
            if (a->sin6_port == b->sin6_port &&
                (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr) ||
                 memcmp(&a->sin6_addr, &b->sin6_addr, sizeof b->sin6_addr) == 0))
                return 1;
        }
    }
    return 0;
}

static struct bufferevent *gw_conn_dead_bev(struct event_base *base)
{
    /* Returning NULL would make evhttp serve the connection in clear. Hand
     * it one end of a pair whose other end is gone instead: nothing the
     * client sends is ever read, and the connection ends at the timeout. */
    struct bufferevent *pair[2];
    if (bufferevent_pair_new(base, 0, pair) != 0)
        abort(); /* cannot refuse the connection safely */
    bufferevent_free(pair[1]);
    return pair[0];
}

/* ---- the PROXY header BIO ------------------------------------------------ */

/* Called with the bytes received so far; returns 1 when they hold the
 * complete header (or, when sniffing, when they are not one), 0 when more
 * are needed, -1 when the connection was refused. */
static int gw_conn_header(gw_conn_t *c, struct gw_pbio *st)
{
    gw_proxy_hdr_t hdr;
    size_t used = 0;
    int rc = gw_proxy_parse(st->buf, st->len, &used, &hdr);
    if (c->phase == GW_CP_SNIFF) {
        if (rc == GW_PROXY_NONE) {
            c->phase = GW_CP_OPEN;
            return 1;
        }
        gw_conn_refuse_proxy(c, "PROXY header from an address not in [proxy] trusted");
        return -1;
    }
    if (rc == GW_PROXY_MORE && st->len < sizeof st->buf)
        return 0;
    if (rc != GW_PROXY_OK) {
        char why[160];
        snprintf(why, sizeof why, "bad PROXY header from a trusted peer: %s",
                 rc == GW_PROXY_NONE ? "none sent (the listener expects one)"
                 : rc == GW_PROXY_MORE ? "longer than 1024 bytes" : hdr.why);
        gw_conn_refuse_proxy(c, why);
        return -1;
    }
    st->off = used;
    if (hdr.local)
        c->client = c->peer;
    else
        memcpy(&c->client, &hdr.src, hdr.srclen < sizeof c->client ? hdr.srclen
                                                                   : sizeof c->client);
    c->phase = GW_CP_OPEN;
    return gw_conn_admit(c) == 0 ? 1 : -1;
}

static int gw_pbio_read(BIO *b, char *out, int outl)
{
    struct gw_pbio *st = BIO_get_data(b);
    BIO *next = BIO_next(b);
    BIO_clear_retry_flags(b);
    if (st == NULL || next == NULL || outl <= 0)
        return 0;
    if (!st->done) {
        if (st->c == NULL || st->c->phase == GW_CP_CLOSING)
            return -1;
        int n = BIO_read(next, st->buf + st->len, (int)(sizeof st->buf - st->len));
        if (n <= 0) {
            BIO_copy_next_retry(b);
            return n;
        }
        st->len += (size_t)n;
        int r = gw_conn_header(st->c, st);
        if (r < 0)
            return -1;
        if (r == 0) {
            BIO_set_retry_read(b);
            return -1;
        }
        st->done = 1;
    }
    if (st->off < st->len) {
        size_t k = st->len - st->off;
        if (k > (size_t)outl)
            k = (size_t)outl;
        memcpy(out, st->buf + st->off, k);
        st->off += k;
        return (int)k;
    }
    int n = BIO_read(next, out, outl);
    BIO_copy_next_retry(b);
    return n;
}

static int gw_pbio_write(BIO *b, const char *in, int inl)
{
    BIO *next = BIO_next(b);
    BIO_clear_retry_flags(b);
    if (next == NULL)
        return 0;
    int n = BIO_write(next, in, inl);
    BIO_copy_next_retry(b);
    return n;
}

static long gw_pbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct gw_pbio *st = BIO_get_data(b);
    BIO *next = BIO_next(b);
    if (next == NULL)
        return 0;
    long r = BIO_ctrl(next, cmd, num, ptr);
    if (cmd == BIO_CTRL_PENDING && st != NULL && r >= 0)
        r += (long)(st->len - st->off);
    return r;
}

static int gw_pbio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int gw_pbio_destroy(BIO *b)
{
    free(BIO_get_data(b));     /* never touches the connection: it is gone */
    BIO_set_data(b, NULL);
    return 1;
}

/* Puts the PROXY filter between OpenSSL and the socket. GW_OK or
 * GW_ENOMEM. */
static int gw_conn_push_filter(gw_conn_t *c)
{
    struct gw_pbio *st = calloc(1, sizeof *st);
    BIO *f = gw_pbio_method ? BIO_new(gw_pbio_method) : NULL;
    BIO *sock = SSL_get_rbio(c->ssl);
    if (st == NULL || f == NULL || sock == NULL || BIO_up_ref(sock) != 1) {
        free(st);
        BIO_free(f);
        return GW_ENOMEM;
    }
    st->c = c;
    BIO_set_data(f, st);
    BIO_push(f, sock);
    SSL_set0_rbio(c->ssl, f);   /* takes f, drops one reference to sock */
    return GW_OK;
}

/* ---- connection life ------------------------------------------------------ */

/* Runs once evhttp has set the socket, before anything is read from it:
 * who is on the other end, and what do we expect from them first. */
static void gw_conn_begin(gw_conn_t *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    socklen_t pl = sizeof c->peer;
    if (fd < 0 || getpeername(fd, &c->peer.sa, &pl) != 0) {
        if (fd >= 0)
            gw_conn_close(c);
        c->phase = GW_CP_CLOSING;
        return;
    }
    if (gw_conn_on_proxy_listener(c, fd)) {
        c->phase = gw_addr_cidr_match(&c->cfg->proxy_trusted, &c->peer.sa)
                       ? GW_CP_EXPECT : GW_CP_SNIFF;
        if (gw_conn_push_filter(c) != 0) {
            gw_conn_refuse_proxy(c, "out of memory");
            return;
        }
        if (c->phase == GW_CP_EXPECT)
            return;     /* counted once the header names the client */
    } else {
        c->phase = GW_CP_OPEN;
    }
    c->client = c->peer;
    (void)gw_conn_admit(c);
}

static void gw_conn_start_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_conn_t *c = arg;
    (void)fd;
    (void)what;
    /* runs once: its memory is not kept for the connection's life (and
     * gw_conn_begin may end the connection) */
    event_free(c->start);
    c->start = NULL;
    gw_conn_begin(c);
}

static void gw_conn_clock_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_conn_t *c = arg;
    (void)fd;
    (void)what;
    char text[80];
    gw_conn_addr_text(c->have_client ? &c->client : &c->peer, text, sizeof text);
    gw_metrics_inc(GW_M_HEADER_TIMEOUT);
    gw_conn_note(GW_NOTE_TIMEOUT, "connection from %s closed: no complete request within "
                 "header_timeout (%d s)", text, c->cfg->limits.header_timeout);
    gw_conn_close(c);
}

/* Frees a connection's state together with its SSL object. */
static void gw_conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                            void *argp)
{
    gw_conn_t *c = ptr;
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (c == NULL)
        return;
    if (c->counted)
        gw_limit_conn_close(&c->client.sa);
    if (c->start != NULL)
        event_free(c->start);
    event_free(c->clock);
    gw_conn_n--;
    free(c);
}

int gw_conn_init(void)
{
    if (gw_conn_idx >= 0)
        return GW_OK;
    gw_pbio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "ddns PROXY header");
    if (gw_pbio_method == NULL || BIO_meth_set_read(gw_pbio_method, gw_pbio_read) != 1 ||
        BIO_meth_set_write(gw_pbio_method, gw_pbio_write) != 1 ||
        BIO_meth_set_ctrl(gw_pbio_method, gw_pbio_ctrl) != 1 ||
        BIO_meth_set_create(gw_pbio_method, gw_pbio_create) != 1 ||
        BIO_meth_set_destroy(gw_pbio_method, gw_pbio_destroy) != 1)
        return GW_ETLS;
    gw_conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, gw_conn_ex_free);
    return gw_conn_idx >= 0 ? GW_OK : GW_ETLS;
}

void gw_conn_shutdown(void)
{
    BIO_meth_free(gw_pbio_method);
    gw_pbio_method = NULL;
}

struct bufferevent *gw_conn_bev_new(struct event_base *base, SSL_CTX *ctx, const gw_config_t *cfg)
{
    gw_conn_t *c = calloc(1, sizeof *c);
    SSL *ssl = NULL;
    if (c == NULL || gw_conn_idx < 0)
        goto fail;
    c->cfg = cfg;
    c->start = event_new(base, -1, 0, gw_conn_start_cb, c);
    c->clock = evtimer_new(base, gw_conn_clock_cb, c);
    ssl = SSL_new(ctx);
    if (c->start == NULL || c->clock == NULL || ssl == NULL)
        goto fail;
    if (SSL_set_ex_data(ssl, gw_conn_idx, c) != 1)
        goto fail;
    /* From here on c belongs to ssl (freed with it). */
    gw_conn_n++;
    c->ssl = ssl;
    c->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        SSL_free(ssl);
        gw_error("cannot create TLS state for a new connection: dropping it");
        return gw_conn_dead_bev(base);
    }
    /* evhttp keeps reading while an answer waits to be written, so a
     * client that pipelines requests and never reads would grow the input
     * buffer without bound: stop reading once it holds more than the
     * largest request, until evhttp has taken some of it. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, GW_CONN_INPUT_MAX(cfg));
    struct timeval tv = {cfg->limits.header_timeout, 0};
    evtimer_add(c->clock, &tv);
    /* evhttp sets the socket right after this returns; the handshake reads
     * only once the loop polls again, after this event. */
    event_active(c->start, EV_TIMEOUT, 1);
    return c->bev;
fail:
    if (ssl != NULL && SSL_get_ex_data(ssl, gw_conn_idx) == c) {
        gw_conn_n++;
        SSL_free(ssl);      /* frees c */
    } else {
        if (ssl != NULL)
            SSL_free(ssl);
        if (c != NULL) {
            if (c->start != NULL)
                event_free(c->start);
            if (c->clock != NULL)
                event_free(c->clock);
            free(c);
        }
    }
    gw_error("cannot create TLS state for a new connection: dropping it");
    return gw_conn_dead_bev(base);
}

gw_conn_t *gw_conn_of(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    return ssl != NULL && gw_conn_idx >= 0 ? SSL_get_ex_data(ssl, gw_conn_idx) : NULL;
}

const struct sockaddr *gw_conn_client(const gw_conn_t *c)
{
    return c != NULL && c->have_client ? &c->client.sa : NULL;
}

void gw_conn_request_begin(gw_conn_t *c)
{
    if (c != NULL && c->clock != NULL)
        evtimer_del(c->clock);
}

void gw_conn_request_end(gw_conn_t *c)
{
    if (c == NULL || c->clock == NULL || c->phase == GW_CP_CLOSING)
        return;
    struct timeval tv = {c->cfg->limits.header_timeout, 0};
    evtimer_add(c->clock, &tv);
}

size_t gw_conn_count(void)
{
    return atomic_load(&gw_conn_n);
}
