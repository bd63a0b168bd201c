/* ld_run: the load generator's engine (see ld_run.h).
 *
 * Each worker thread owns an event loop, a share of the connections (slots)
 * and of the devices (device i belongs to thread i mod T), and its own
 * counters, so the threads share nothing but a few progress counters and
 * the stop flag. A slot is two small state machines: the connection
 * (none, connecting, open) and the work (free, waiting for a scheduled
 * request, waiting for a free device, backing off after a failed connect,
 * connecting for a request, request in flight, idle ping in flight, done).
 * One timer per slot serves every wait: the connect and request time-outs,
 * the wait for the next second, the back-off and the idle ping. */
#include "ld_run.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define PROG "ddns-load"
#define LD_ANSWER_MAX 65536     /* bytes of one answer, at most */
#define LD_BACKOFF_NS 100000000ull
#define LD_MSG_MAX 3            /* error reasons printed per thread and kind */
#define NS 1000000000ull

enum conn_state { C_NONE, C_CONNECTING, C_OPEN };
enum work_state {
    W_FREE,        /* nothing to do (idle mode: holding the connection) */
    W_WAIT_TOKEN,  /* open loop: waiting for the next scheduled request */
    W_WAIT_DEVICE, /* every device is busy or sent this second */
    W_BACKOFF,     /* after a failed connect */
    W_PENDING,     /* connecting in order to send a request */
    W_BUSY,        /* request sent, reading the answer */
    W_PING,        /* idle mode: GET /healthz sent */
    W_DONE,        /* finished for this phase */
};
enum phase { P_OPEN, P_RUN };

typedef struct ld_thread ld_thread_t;

typedef struct ld_slot {
    ld_thread_t *t;
    struct bufferevent *bev;
    SSL *ssl;                 /* owned by bev */
    SSL_SESSION *sess;        /* last session ticket received (resume) */
    enum conn_state conn;
    enum work_state work;
    ld_device_t *dev;         /* device of the request, busy while set */
    int has_token;            /* a request is due for this slot */
    uint64_t start_ns;        /* when the request was due (latency origin) */
    int fail_errno;           /* connect failed before any callback */
    struct event *timer;
    struct ld_slot *next_wait;
} ld_slot_t;

struct ld_thread {
    const ld_cfg_t *cfg;
    unsigned id;
    pthread_t tid;
    struct event_base *base;
    struct event *tick;
    ld_slot_t *slots;
    unsigned nslots;
    ld_device_t **devs;
    size_t ndevs, cursor;
    /* the phase */
    enum phase phase;
    ld_stats_t *st;
    uint64_t quota, issued, tokens_made;   /* quota UINT64_MAX: none */
    double rate;
    uint64_t t0_ns, deadline_ns, stop_ns, last_ns;
    ld_slot_t *wait_head, *wait_tail;
    int stopping, final, open_end_set;
    unsigned active, connecting, next_open;
    unsigned open_now;
    unsigned msgs_tls, msgs_conn;
    ld_stats_t main, warm;
    /* read by the progress line */
    _Atomic uint64_t p_answers, p_ok, p_errors;
};

static atomic_int ld_stop;
static atomic_uint ld_threads_done;
static _Atomic uint64_t ld_open, ld_open_max;
static atomic_int ld_phase_shown;       /* 0 opening, 1 warm-up, 2 measuring */
static int ld_ssl_idx = -1;
static pthread_barrier_t ld_barrier;
static uint64_t ld_start_wall_ns;       /* measurement start after a warm-up */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void arm(ld_slot_t *s, uint64_t ns)
{
    struct timeval tv = {(time_t)(ns / NS), (suseconds_t)((ns % NS) / 1000)};
    evtimer_add(s->timer, &tv);
}

static uint64_t timeout_ns(const ld_cfg_t *c)
{
    return (uint64_t)(c->timeout * 1e9);
}

static int needs_device(const ld_cfg_t *c)
{
    return c->work.wl != LD_WL_HELLO && c->work.wl != LD_WL_REPLAY;
}

/* --sources: a TCP connection from the slot's loopback source address,
 * connected before libevent sees it (loopback answers at once); -1 with
 * errno on failure. */
static evutil_socket_t conn_from_source(const ld_slot_t *s)
{
    const ld_cfg_t *c = s->t->cfg;
    unsigned i = (unsigned)(s - s->t->slots) * c->threads + s->t->id;
    struct sockaddr_in src;
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl((127u << 24) + 2u + i % c->sources);
    evutil_socket_t fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (const struct sockaddr *)&src, sizeof src) != 0 ||
        connect(fd, (const struct sockaddr *)&c->addr, c->addrlen) != 0 ||
        evutil_make_socket_nonblocking(fd) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* ---- TLS ------------------------------------------------------------------ */

/* Keeps the newest session of each connection for the next one (resume). */
static int ld_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    ld_slot_t *s = SSL_get_ex_data(ssl, ld_ssl_idx);
    if (s == NULL)
        return 0;
    if (s->sess != NULL)
        SSL_SESSION_free(s->sess);
    s->sess = sess;
    return 1;
}

int ld_run_tls_init(SSL_CTX *ctx, int resume)
{
    ld_ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    if (ld_ssl_idx < 0)
        return -1;
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION |
                             SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (resume) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                                SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, ld_new_session_cb);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    return 0;
}

/* ---- connections ---------------------------------------------------------- */

static void slot_next(ld_slot_t *s);
static void send_request(ld_slot_t *s);
static void read_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short events, void *arg);

static void count_error(ld_thread_t *t, uint64_t *counter)
{
    (*counter)++;
    atomic_fetch_add_explicit(&t->p_errors, 1, memory_order_relaxed);
}

/* Closes the connection. clean: send close_notify first, which also keeps
 * the session resumable. */
static void conn_close(ld_slot_t *s, int clean)
{
    if (s->bev == NULL) {
        s->conn = C_NONE;
        return;
    }
    if (s->ssl != NULL) {
        if (clean && s->conn == C_OPEN)
            (void)SSL_shutdown(s->ssl);
        ERR_clear_error();
    }
    bufferevent_free(s->bev);
    s->bev = NULL;
    s->ssl = NULL;
    if (s->conn == C_OPEN) {
        s->t->open_now--;
        atomic_fetch_sub_explicit(&ld_open, 1, memory_order_relaxed);
    }
    s->conn = C_NONE;
}

static void release_device(ld_slot_t *s)
{
    if (s->dev != NULL) {
        s->dev->busy = false;
        s->dev = NULL;
    }
}

/* Starts a TCP connection (and the TLS handshake). On a failure before any
 * callback the slot timer fires at once and reports it. */
static void conn_open(ld_slot_t *s)
{
    ld_thread_t *t = s->t;
    const ld_cfg_t *c = t->cfg;
    struct bufferevent *bev = NULL;
    SSL *ssl = NULL;

    s->fail_errno = 0;
    s->conn = C_CONNECTING;
    if (c->ssl != NULL) {
        ssl = SSL_new(c->ssl);
        if (ssl == NULL)
            goto fail;
        SSL_set_ex_data(ssl, ld_ssl_idx, s);
        int ok;
        if (c->verify_is_ip) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->verify_name);
        } else {
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set1_host(ssl, c->verify_name) &&
                 SSL_set_tlsext_host_name(ssl, c->verify_name);
        }
        if (ok != 1)
            goto fail;
        if (c->resume && s->sess != NULL)
            (void)SSL_set_session(ssl, s->sess);
        evutil_socket_t sfd = -1;
        if (c->sources > 0 && (sfd = conn_from_source(s)) < 0) {
            s->fail_errno = errno ? errno : EIO;
            SSL_free(ssl);
            evtimer_del(s->timer);
            event_active(s->timer, EV_TIMEOUT, 0);
            return;
        }
        bev = bufferevent_openssl_socket_new(t->base, sfd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        ssl = NULL; /* owned (or already freed) by libevent now */
        if (bev == NULL)
            goto fail;
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(t->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL)
            goto fail;
    }
    bufferevent_setcb(bev, read_cb, NULL, event_cb, s);
    s->bev = bev;
    s->ssl = bufferevent_openssl_get_ssl(bev);
    errno = 0;
    if (bufferevent_getfd(bev) < 0 &&
        bufferevent_socket_connect(bev, (const struct sockaddr *)&c->addr, (int)c->addrlen) !=
        0) {
        s->fail_errno = errno ? errno : EIO;
        conn_close(s, 0);
        s->conn = C_CONNECTING;
        evtimer_del(s->timer);
        event_active(s->timer, EV_TIMEOUT, 0);
        return;
    }
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    arm(s, timeout_ns(c));
    return;
fail:
    SSL_free(ssl);
    if (bev != NULL)
        bufferevent_free(bev);
    s->bev = NULL;
    s->ssl = NULL;
    s->fail_errno = ENOMEM;
    evtimer_del(s->timer);
    event_active(s->timer, EV_TIMEOUT, 0);
}

/* Opening phase: keeps up to connect_burst handshakes in progress. */
static void open_more(ld_thread_t *t)
{
    unsigned burst = t->cfg->connect_burst / t->cfg->threads;
    if (burst == 0)
        burst = 1;
    if (t->phase != P_OPEN)
        return;
    if (atomic_load(&ld_stop))
        t->next_open = t->nslots;
    while (t->connecting < burst && t->next_open < t->nslots) {
        ld_slot_t *s = &t->slots[t->next_open++];
        t->connecting++;
        conn_open(s);
    }
    if (t->connecting == 0 && t->next_open == t->nslots)
        event_base_loopbreak(t->base);
}

static void on_connected(ld_slot_t *s)
{
    ld_thread_t *t = s->t;
    const ld_cfg_t *c = t->cfg;

    evtimer_del(s->timer);
    s->conn = C_OPEN;
    t->st->opened++;
    t->open_now++;
    uint64_t open = atomic_fetch_add_explicit(&ld_open, 1, memory_order_relaxed) + 1;
    uint64_t max = atomic_load_explicit(&ld_open_max, memory_order_relaxed);
    while (open > max &&
           !atomic_compare_exchange_weak_explicit(&ld_open_max, &max, open,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
    if (s->ssl != NULL && SSL_session_reused(s->ssl))
        t->st->resumed++;
    if (t->phase == P_OPEN) {
        t->connecting--;
        /* idle connections are pinged from the start: opening many can
         * take longer than the server's idle time-out */
        if (c->mode == LD_MODE_IDLE && c->idle_ping > 0)
            arm(s, (uint64_t)(c->idle_ping * 1e9));
        open_more(t);
        return;
    }
    if (s->work == W_PENDING)
        send_request(s);    /* already counted as a request */
    else if (c->mode == LD_MODE_IDLE && s->work == W_FREE)
        slot_next(s);
}

/* The connect or handshake failed (or timed out: timed_out). */
static void conn_failed(ld_slot_t *s, int timed_out)
{
    ld_thread_t *t = s->t;
    const ld_cfg_t *c = t->cfg;
    unsigned long e = 0;
    long vr = X509_V_OK;
    int sockerr = s->fail_errno ? s->fail_errno : EVUTIL_SOCKET_ERROR();
    char why[300];

    if (s->bev != NULL && s->ssl != NULL) {
        e = bufferevent_get_openssl_error(s->bev);
        vr = SSL_get_verify_result(s->ssl);
    }
    int tls = !timed_out && (e != 0 || vr != X509_V_OK);
    if (tls) {
        char reason[256] = "";
        if (e != 0)
            ERR_error_string_n(e, reason, sizeof reason);
        if (vr != X509_V_OK)
            snprintf(why, sizeof why, "TLS handshake: certificate verification failed: %s",
                     X509_verify_cert_error_string(vr));
        else
            snprintf(why, sizeof why, "TLS handshake failed: %s", reason);
        count_error(t, &t->st->err_tls);
        if (t->msgs_tls++ < LD_MSG_MAX)
            fprintf(stderr, "%s: %s: %s\n", PROG, c->server_text, why);
    } else {
        if (timed_out)
            snprintf(why, sizeof why, "connection timed out");
        else if (s->fail_errno == ENOMEM)
            snprintf(why, sizeof why, "cannot set up the connection (out of memory?)");
        else if (sockerr != 0)
            snprintf(why, sizeof why, "cannot connect: %s", strerror(sockerr));
        else
            snprintf(why, sizeof why, "connection closed during the handshake");
        count_error(t, &t->st->err_connect);
        if (t->msgs_conn++ < LD_MSG_MAX)
            fprintf(stderr, "%s: %s: %s\n", PROG, c->server_text, why);
    }
    ERR_clear_error();
    conn_close(s, 0);
    evtimer_del(s->timer);
    if (t->phase == P_OPEN) {
        t->connecting--;
        open_more(t);
        return;
    }
    release_device(s);
    if (s->work == W_DONE)
        return;
    s->work = W_BACKOFF;
    arm(s, LD_BACKOFF_NS);
}

/* ---- the phase: stopping and finishing ------------------------------------- */

static void slot_finish(ld_slot_t *s)
{
    ld_thread_t *t = s->t;
    const ld_cfg_t *c = t->cfg;

    if (s->work == W_DONE)
        return;
    if (!t->open_end_set) {
        t->st->open_end = t->open_now;
        t->open_end_set = 1;
    }
    evtimer_del(s->timer);
    release_device(s);
    if (s->has_token) {
        t->st->rate_unsent++;
        s->has_token = 0;
    }
    if (t->final || c->mode == LD_MODE_NEW || s->conn == C_CONNECTING)
        conn_close(s, 1);
    s->work = W_DONE;
    if (--t->active == 0)
        event_base_loopbreak(t->base);
}

static void stop_phase(ld_thread_t *t)
{
    if (t->stopping)
        return;
    t->stopping = 1;
    t->stop_ns = now_ns();
    if (t->rate > 0 && t->tokens_made > t->issued)
        t->st->rate_unsent += t->tokens_made - t->issued;
    t->wait_head = t->wait_tail = NULL;
    for (unsigned i = 0; i < t->nslots; i++) {
        ld_slot_t *s = &t->slots[i];
        if (t->cfg->mode == LD_MODE_IDLE || s->work == W_FREE || s->work == W_WAIT_TOKEN ||
            s->work == W_WAIT_DEVICE || s->work == W_BACKOFF)
            slot_finish(s);
    }
}

/* --rate: the requests due by now (one ahead) become tokens. */
static void tokens_refill(ld_thread_t *t, uint64_t now)
{
    uint64_t due = (uint64_t)((double)(now - t->t0_ns) * t->rate / 1e9) + 1;
    if (due > t->quota)
        due = t->quota;
    if (due > t->tokens_made)
        t->tokens_made = due;
    if (t->tokens_made - t->issued > t->st->backlog_max)
        t->st->backlog_max = t->tokens_made - t->issued;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    ld_thread_t *t = arg;
    (void)fd;
    (void)what;
    if (t->phase == P_OPEN) {
        if (atomic_load(&ld_stop))
            open_more(t);
        return;
    }
    uint64_t now = now_ns();
    if (!t->stopping && (atomic_load(&ld_stop) || (t->deadline_ns && now >= t->deadline_ns))) {
        stop_phase(t);
        return;
    }
    if (t->rate <= 0 || t->stopping)
        return;
    /* --count reached: the connections waiting for a token get none */
    if (t->issued >= t->quota) {
        stop_phase(t);
        return;
    }
    tokens_refill(t, now);
    while (t->wait_head != NULL && t->tokens_made > t->issued) {
        ld_slot_t *s = t->wait_head;
        t->wait_head = s->next_wait;
        if (t->wait_head == NULL)
            t->wait_tail = NULL;
        s->next_wait = NULL;
        s->work = W_FREE;
        slot_next(s);
    }
}

/* ---- requests ---------------------------------------------------------------- */

static ld_device_t *pick_device(ld_thread_t *t, uint64_t now_s)
{
    for (size_t i = 0; i < t->ndevs; i++) {
        ld_device_t *d = t->devs[t->cursor];
        t->cursor = t->cursor + 1 == t->ndevs ? 0 : t->cursor + 1;
        if (!d->busy && d->last_ts < now_s)
            return d;
        t->st->skipped++;
    }
    return NULL;
}

static void send_bytes(ld_slot_t *s, const uint8_t *buf, size_t len, enum work_state w)
{
    bufferevent_write(s->bev, buf, len);
    s->work = w;
    arm(s, timeout_ns(s->t->cfg));
}

static void send_request(ld_slot_t *s)
{
    ld_thread_t *t = s->t;
    const ld_cfg_t *c = t->cfg;
    uint8_t buf[LD_REQUEST_MAX], nonce[DDNS_NONCE_LEN];
    size_t len = 0;
    uint64_t ts = wall_ns() / NS;

    if (RAND_bytes(nonce, (int)sizeof nonce) != 1 ||
        ld_work_build(&c->work, s->dev, ts, nonce, buf, &len) != 0) {
        fprintf(stderr, "%s: cannot build a request (no random bytes, or the SDK refused "
                "it); stopping\n", PROG);
        atomic_store(&ld_stop, 1);
        release_device(s);
        slot_finish(s);
        return;
    }
    if (s->dev != NULL)
        s->dev->last_ts = ts;
    send_bytes(s, buf, len, W_BUSY);
}

static void send_ping(ld_slot_t *s)
{
    char buf[LD_REQUEST_MAX];
    int n = snprintf(buf, sizeof buf, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n",
                     s->t->cfg->work.host);
    send_bytes(s, (const uint8_t *)buf, (size_t)n, W_PING);
}

/* The slot is free: start its next request, or wait, or finish. */
static void slot_next(ld_slot_t *s)
{
    ld_thread_t *t = s->t;
    const ld_cfg_t *c = t->cfg;

    if (s->work == W_DONE)
        return;
    s->work = W_FREE;
    if (t->stopping) {
        slot_finish(s);
        return;
    }
    if (c->mode == LD_MODE_IDLE) {
        if (s->conn == C_NONE)
            conn_open(s);
        else if (s->conn == C_OPEN && c->idle_ping > 0)
            arm(s, (uint64_t)(c->idle_ping * 1e9));
        return;
    }
    if (!s->has_token) {
        if (t->issued >= t->quota) {
            slot_finish(s);
            return;
        }
        if (t->rate > 0) {
            /* a connection that comes free takes a request that fell due
             * since the last tick at once, instead of waiting for the
             * next tick */
            if (t->tokens_made <= t->issued && !t->stopping)
                tokens_refill(t, now_ns());
            if (t->tokens_made <= t->issued) {
                s->work = W_WAIT_TOKEN;
                if (t->wait_tail != NULL)
                    t->wait_tail->next_wait = s;
                else
                    t->wait_head = s;
                t->wait_tail = s;
                return;
            }
            s->start_ns = t->t0_ns + (uint64_t)((double)t->issued * 1e9 / t->rate);
        }
        t->issued++;
        s->has_token = 1;
    }
    if (needs_device(c) && s->dev == NULL) {
        uint64_t w = wall_ns();
        ld_device_t *d = pick_device(t, w / NS);
        if (d == NULL) {
            s->work = W_WAIT_DEVICE;
            t->st->device_waits++;
            arm(s, NS - w % NS + 1000000);
            return;
        }
        d->busy = true;
        s->dev = d;
    }
    if (t->rate <= 0)
        s->start_ns = now_ns();
    s->has_token = 0;
    t->st->requests++;
    if (s->conn == C_OPEN) {
        send_request(s);
    } else {
        s->work = W_PENDING;
        if (s->conn == C_NONE)
            conn_open(s);
    }
}

/* Reads the answer of the request in flight. Returns 0 while incomplete,
 * 1 for a complete answer (counted), -1 for garbage (counted: close). */
static int take_answer(ld_slot_t *s)
{
    ld_thread_t *t = s->t;
    const ld_cfg_t *c = t->cfg;
    ld_stats_t *st = t->st;
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t len = evbuffer_get_length(in);
    ld_answer_t a;

    if (len == 0)
        return 0;
    const uint8_t *data = evbuffer_pullup(in, -1);
    ld_work_parse(s->work == W_PING ? LD_WL_HELLO : c->work.wl, data, len, &a);
    if (a.kind == LD_ANS_INCOMPLETE && len <= LD_ANSWER_MAX)
        return 0;
    uint64_t now = now_ns();
    evtimer_del(s->timer);
    if (a.kind == LD_ANS_INCOMPLETE || a.kind == LD_ANS_GARBAGE) {
        count_error(t, &st->err_http);
        release_device(s);
        s->work = W_FREE;
        return -1;
    }
    evbuffer_drain(in, a.total_len);
    if (s->work == W_PING) {
        st->pings++;
        s->work = W_FREE;
        return 1;
    }
    if (a.status < 600)
        st->status[a.status]++;
    atomic_fetch_add_explicit(&t->p_answers, 1, memory_order_relaxed);
    if (a.kind == LD_ANS_VALID) {
        st->results[a.result]++;
        ld_hist_add(&st->hist, now > s->start_ns ? (now - s->start_ns) / 1000 : 0);
        if (ld_result_ok(a.result)) {
            st->ok++;
            atomic_fetch_add_explicit(&t->p_ok, 1, memory_order_relaxed);
        }
    } else {
        count_error(t, &st->err_http);
    }
    t->last_ns = now;
    release_device(s);
    s->work = W_FREE;
    return 1;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    ld_slot_t *s = arg;
    (void)bev;
    if (s->work != W_BUSY && s->work != W_PING) {
        struct evbuffer *in = bufferevent_get_input(s->bev);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    int r = take_answer(s);
    if (r == 0)
        return;
    if (r < 0 || s->t->cfg->mode == LD_MODE_NEW)
        conn_close(s, r > 0);
    slot_next(s);
}

/* An open connection ended (EOF or error). */
static void conn_lost(ld_slot_t *s)
{
    ld_thread_t *t = s->t;
    enum work_state w = s->work;
    int r = 0;

    if (w == W_BUSY || w == W_PING)
        r = take_answer(s);
    conn_close(s, 0);
    if (w == W_BUSY || w == W_PING) {
        if (r == 0) {
            evtimer_del(s->timer);
            if (w == W_BUSY)
                count_error(t, &t->st->err_closed);
            else
                t->st->closed_by_peer++;
            release_device(s);
            s->work = W_FREE;
        }
        slot_next(s);
        return;
    }
    t->st->closed_by_peer++;
    if (w == W_FREE && t->phase == P_RUN)
        slot_next(s);
}

static void event_cb(struct bufferevent *bev, short events, void *arg)
{
    ld_slot_t *s = arg;
    (void)bev;
    if (events & BEV_EVENT_CONNECTED) {
        on_connected(s);
        return;
    }
    if (!(events & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
        return;
    if (s->conn == C_CONNECTING)
        conn_failed(s, 0);
    else
        conn_lost(s);
}

static void slot_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    ld_slot_t *s = arg;
    ld_thread_t *t = s->t;
    (void)fd;
    (void)what;

    if (s->conn == C_CONNECTING) {      /* connect time-out or early failure */
        conn_failed(s, s->fail_errno == 0);
        return;
    }
    switch (s->work) {
    case W_BUSY:
    case W_PING:
        count_error(t, &t->st->err_timeout);
        release_device(s);
        conn_close(s, 0);
        s->work = W_FREE;
        slot_next(s);
        break;
    case W_WAIT_DEVICE:
    case W_BACKOFF:
        s->work = W_FREE;
        slot_next(s);
        break;
    case W_FREE:
        if (s->conn == C_OPEN && t->cfg->mode == LD_MODE_IDLE && !t->stopping)
            send_ping(s);
        break;
    default:
        break;
    }
}

/* ---- threads and phases ------------------------------------------------------ */

/* Runs one phase on the thread's loop: requests until the quota (UINT64_MAX:
 * none)
 * is used up or the duration (0: none) has passed or a stop is asked. */
static void run_phase(ld_thread_t *t, ld_stats_t *st, uint64_t quota, double duration,
                      double rate, int final)
{
    const ld_cfg_t *c = t->cfg;

    t->phase = P_RUN;
    t->st = st;
    t->quota = quota;
    t->issued = t->tokens_made = 0;
    t->rate = rate;
    t->stopping = 0;
    t->final = final;
    t->open_end_set = 0;
    t->stop_ns = t->last_ns = 0;
    t->wait_head = t->wait_tail = NULL;
    t->active = t->nslots;
    t->t0_ns = now_ns();
    t->deadline_ns = duration > 0 ? t->t0_ns + (uint64_t)(duration * 1e9) : 0;
    for (unsigned i = 0; i < t->nslots; i++) {
        t->slots[i].work = W_FREE;
        t->slots[i].has_token = 0;
    }
    /* The pacing tick of --rate: 1 ms, so a request starts at most about
     * 1 ms after it was due. A finer tick costs the load generator CPU
     * that the server under test shares (0.2 ms doubled it at 5,000/s). */
    struct timeval tv = {0, rate > 0 ? 1000 : 50000};
    event_add(t->tick, &tv);
    if (!atomic_load(&ld_stop)) {
        for (unsigned i = 0; i < t->nslots; i++)
            slot_next(&t->slots[i]);
    } else {
        stop_phase(t);
    }
    if (t->active > 0)
        event_base_loop(t->base, 0);
    event_del(t->tick);
    uint64_t end = t->stop_ns > t->last_ns ? t->stop_ns : t->last_ns;
    if (end == 0 || c->mode == LD_MODE_IDLE)
        end = t->stop_ns ? t->stop_ns : now_ns();
    st->elapsed_s = (double)(end - t->t0_ns) / 1e9;
}

static uint64_t share(uint64_t total, unsigned parts, unsigned i)
{
    return total / parts + (i < total % parts ? 1 : 0);
}

static void *thread_main(void *arg)
{
    ld_thread_t *t = arg;
    const ld_cfg_t *c = t->cfg;

    /* Opening: keepalive and idle connections are established first. */
    t->st = &t->main;
    if (c->mode != LD_MODE_NEW) {
        uint64_t t0 = now_ns();
        t->phase = P_OPEN;
        struct timeval tv = {0, 50000};
        event_add(t->tick, &tv);
        open_more(t);
        if (t->connecting > 0 || t->next_open < t->nslots)
            event_base_loop(t->base, 0);
        event_del(t->tick);
        t->main.open_phase_s = (double)(now_ns() - t0) / 1e9;
    }
    pthread_barrier_wait(&ld_barrier);
    if (t->id == 0)
        atomic_store(&ld_phase_shown, 1);

    /* Warm-up: every device once, unmeasured; measuring starts at the
     * next full second so that no device has sent in it. */
    if (c->warmup && needs_device(c) && c->mode != LD_MODE_IDLE) {
        run_phase(t, &t->warm, t->ndevs, 0, 0, 0);
        if (pthread_barrier_wait(&ld_barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
            ld_start_wall_ns = (wall_ns() / NS + 1) * NS;
        pthread_barrier_wait(&ld_barrier);
        struct timespec until = {(time_t)(ld_start_wall_ns / NS), 0};
        while (!atomic_load(&ld_stop) &&
               clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &until, NULL) == EINTR)
            ;
    }
    if (t->id == 0)
        atomic_store(&ld_phase_shown, 2);
    run_phase(t, &t->main, c->count ? share(c->count, c->threads, t->id) : UINT64_MAX,
              c->duration,
              c->rate / c->threads, 1);
    for (unsigned i = 0; i < t->nslots; i++)
        conn_close(&t->slots[i], 1);
    atomic_fetch_add(&ld_threads_done, 1);
    return NULL;
}

static void stats_merge(ld_stats_t *into, const ld_stats_t *s)
{
    into->requests += s->requests;
    for (unsigned r = 0; r < LD_R_COUNT; r++)
        into->results[r] += s->results[r];
    into->ok += s->ok;
    for (unsigned i = 0; i < 600; i++)
        into->status[i] += s->status[i];
    into->err_connect += s->err_connect;
    into->err_tls += s->err_tls;
    into->err_closed += s->err_closed;
    into->err_timeout += s->err_timeout;
    into->err_http += s->err_http;
    into->skipped += s->skipped;
    into->device_waits += s->device_waits;
    into->opened += s->opened;
    into->resumed += s->resumed;
    into->closed_by_peer += s->closed_by_peer;
    into->rate_unsent += s->rate_unsent;
    into->backlog_max += s->backlog_max;
    into->pings += s->pings;
    into->open_end += s->open_end;
    if (s->elapsed_s > into->elapsed_s)
        into->elapsed_s = s->elapsed_s;
    if (s->open_phase_s > into->open_phase_s)
        into->open_phase_s = s->open_phase_s;
    ld_hist_merge(&into->hist, &s->hist);
}

static void thread_free(ld_thread_t *t)
{
    for (unsigned i = 0; t->slots != NULL && i < t->nslots; i++) {
        ld_slot_t *s = &t->slots[i];
        conn_close(s, 0);
        if (s->timer != NULL)
            event_free(s->timer);
        if (s->sess != NULL)
            SSL_SESSION_free(s->sess);
    }
    free(t->slots);
    free(t->devs);
    if (t->tick != NULL)
        event_free(t->tick);
    if (t->base != NULL)
        event_base_free(t->base);
}

static int thread_init(ld_thread_t *t, const ld_cfg_t *c, unsigned id)
{
    memset(t, 0, sizeof *t);
    t->cfg = c;
    t->id = id;
    ld_hist_init(&t->main.hist);
    ld_hist_init(&t->warm.hist);
    t->nslots = (unsigned)share(c->connections, c->threads, id);
    t->ndevs = c->ndevices ? share(c->ndevices, c->threads, id) : 0;
    /* Precise timers: libevent otherwise reads CLOCK_MONOTONIC_COARSE, whose
     * resolution is the kernel's tick (4 ms at HZ=250), and the pacing tick
     * of --rate would release requests up to 4 ms late, a delay that would
     * count in every latency measured from the time a request was due. */
    struct event_config *ecfg = event_config_new();
    if (ecfg == NULL || event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER) != 0) {
        if (ecfg != NULL)
            event_config_free(ecfg);
        return -1;
    }
    t->base = event_base_new_with_config(ecfg);
    event_config_free(ecfg);
    t->slots = calloc(t->nslots, sizeof *t->slots);
    t->devs = calloc(t->ndevs ? t->ndevs : 1, sizeof *t->devs);
    if (t->base == NULL || t->slots == NULL || t->devs == NULL)
        return -1;
    t->tick = event_new(t->base, -1, EV_PERSIST, tick_cb, t);
    if (t->tick == NULL)
        return -1;
    for (size_t i = 0; i < t->ndevs; i++)
        t->devs[i] = &c->devices[id + i * c->threads];
    for (unsigned i = 0; i < t->nslots; i++) {
        t->slots[i].t = t;
        t->slots[i].timer = evtimer_new(t->base, slot_timer_cb, &t->slots[i]);
        if (t->slots[i].timer == NULL)
            return -1;
    }
    return 0;
}

static void progress(const ld_cfg_t *c, ld_thread_t *th, double secs, uint64_t *last)
{
    static const char *const names[] = {"opening", "warm-up", "measuring"};
    uint64_t answers = 0, ok = 0, errors = 0;
    for (unsigned i = 0; i < c->threads; i++) {
        answers += atomic_load_explicit(&th[i].p_answers, memory_order_relaxed);
        ok += atomic_load_explicit(&th[i].p_ok, memory_order_relaxed);
        errors += atomic_load_explicit(&th[i].p_errors, memory_order_relaxed);
    }
    int phase = atomic_load(&ld_phase_shown);
    fprintf(stderr, "%s: %4.0f s %-9s %7llu answers/s  answers %llu  ok %llu  errors %llu  "
            "open %llu\n", PROG, secs,
            c->mode == LD_MODE_IDLE && phase == 2 ? "holding" : names[phase],
            (unsigned long long)(answers - *last), (unsigned long long)answers,
            (unsigned long long)ok, (unsigned long long)errors,
            (unsigned long long)atomic_load(&ld_open));
    *last = answers;
}

int ld_run(const ld_cfg_t *c, ld_stats_t *out, ld_stats_t *warm, int *interrupted)
{
    ld_thread_t *th = calloc(c->threads, sizeof *th);
    sigset_t set, old;
    unsigned started = 0;
    int rc = -1;

    *interrupted = 0;
    memset(out, 0, sizeof *out);
    memset(warm, 0, sizeof *warm);
    ld_hist_init(&out->hist);
    ld_hist_init(&warm->hist);
    atomic_store(&ld_stop, 0);
    atomic_store(&ld_threads_done, 0);
    atomic_store(&ld_open, 0);
    atomic_store(&ld_open_max, 0);
    atomic_store(&ld_phase_shown, 0);
    if (th == NULL) {
        fprintf(stderr, "%s: out of memory\n", PROG);
        return -1;
    }
    for (unsigned i = 0; i < c->threads; i++) {
        if (thread_init(&th[i], c, i) != 0) {
            fprintf(stderr, "%s: cannot set up the event loops (out of memory?)\n", PROG);
            goto out;
        }
    }
    /* Signals go to this thread only, which turns them into the stop flag. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    pthread_barrier_init(&ld_barrier, NULL, c->threads);
    for (; started < c->threads; started++) {
        if (pthread_create(&th[started].tid, NULL, thread_main, &th[started]) != 0) {
            fprintf(stderr, "%s: cannot start thread %u\n", PROG, started);
            _exit(1); /* threads already waiting at the barrier */
        }
    }
    uint64_t begin = now_ns(), next = begin + NS, last = 0;
    while (atomic_load(&ld_threads_done) < c->threads) {
        struct timespec wait = {0, 50000000};
        int sig = sigtimedwait(&set, NULL, &wait);
        if (sig == SIGINT || sig == SIGTERM) {
            if (*interrupted)
                _exit(130);
            *interrupted = 1;
            atomic_store(&ld_stop, 1);
            fprintf(stderr, "%s: stopping (signal %d); again to exit at once\n", PROG, sig);
        }
        uint64_t now = now_ns();
        if (now >= next) {
            if (!c->quiet)
                progress(c, th, (double)(now - begin) / 1e9, &last);
            next += NS;
        }
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i].tid, NULL);
    pthread_barrier_destroy(&ld_barrier);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    for (unsigned i = 0; i < c->threads; i++) {
        stats_merge(out, &th[i].main);
        stats_merge(warm, &th[i].warm);
    }
    out->open_max = atomic_load(&ld_open_max);
    rc = 0;
out:
    for (unsigned i = 0; i < c->threads; i++)
        thread_free(&th[i]);
    free(th);
    return rc;
}
