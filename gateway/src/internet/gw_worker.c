/* gw_worker: the worker threads (see gw_worker.h). */
#include "gw_worker.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_checkip.h"
#include "gw_dyndns.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_update.h"

struct gw_worker {
    gw_workers_t *g;
    int id;
    pthread_t th;
    int started;
    int left;                   /* left its loop (guarded by the group's mu) */
    struct event_base *base;
    gw_db_t *db;
    gw_quiet_t *quiet;          /* dev.quiet */
    gw_devctx_t dev;            /* what both device endpoints read */
    gw_keycli_t *keys;          /* dev.keys */
    gw_http_t *http;
    struct event *reload_ev;    /* activated by the main thread */
    struct event *stop_ev;      /* activated by the main thread */
};

struct gw_workers {
    const gw_config_t *cfg;
    int n;
    struct gw_worker w[GW_WORKERS_MAX];
    struct event *done_ev;      /* on the main loop: a thread left its loop */
    void (*done)(void *);
    void *done_arg;
    atomic_int exited;
    /* reload: guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int parked, switched;
    unsigned gen;               /* a reload's release */
    SSL_CTX *ssl;
    const cmn_keyset_t *keys;
    const gw_policy_t *policy;
};

int gw_workers_count(const gw_config_t *cfg)
{
    long n = cfg->workers;
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > GW_WORKERS_MAX)
        n = GW_WORKERS_MAX;
    return (int)n;
}

/* ---- on a worker's loop --------------------------------------------------- */

static void gw_worker_reload_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;
    gw_workers_t *g = w->g;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&g->mu);
    unsigned gen = g->gen;
    g->parked++;
    pthread_cond_broadcast(&g->cond);
    while (g->gen == gen)
        pthread_cond_wait(&g->cond, &g->mu);
    gw_http_set_ssl(w->http, g->ssl);
    gw_keycli_set_keys(w->keys, g->keys);
    w->dev.policy = g->policy;
    gw_http_apply_settings(w->http);
    gw_db_set_batch_max(w->db, g->cfg->db_batch_size);
    g->switched++;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->mu);
}

static void gw_worker_drained(void *arg)
{
    struct gw_worker *w = arg;
    event_base_loopexit(w->base, NULL);
}

static void gw_worker_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_worker *w = arg;
    (void)fd;
    (void)what;
    gw_http_stop_accepting(w->http, gw_worker_drained, w);
}

static void *gw_worker_main(void *arg)
{
    struct gw_worker *w = arg;
    if (event_base_dispatch(w->base) < 0)
        gw_error("worker %d: event loop failed", w->id);
    /* A reload waiting for this worker to park or switch counts it out. */
    pthread_mutex_lock(&w->g->mu);
    w->left = 1;
    pthread_cond_broadcast(&w->g->cond);
    pthread_mutex_unlock(&w->g->mu);
    atomic_fetch_add(&w->g->exited, 1);
    event_active(w->g->done_ev, EV_READ, 0);
    return NULL;
}

/* ---- on the main loop ----------------------------------------------------- */

static void gw_workers_done_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_workers_t *g = arg;
    (void)fd;
    (void)what;
    if (g->done != NULL)
        g->done(g->done_arg);
}

static int gw_worker_init(gw_workers_t *g, struct gw_worker *w, SSL_CTX *ssl,
                          const gw_worker_keys_t *keys, const gw_policy_t *policy)
{
    const gw_config_t *cfg = g->cfg;
    /* epoll changelist: a request's answer adds the socket's write event
     * and the write removes it again; with the changelist, changes made in
     * one loop iteration reach the kernel as one epoll_ctl (or none). */
    struct event_config *ecfg = event_config_new();
    if (ecfg == NULL)
        return GW_ENOMEM;
    (void)event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(ecfg);
    event_config_free(ecfg);
    if (w->base == NULL)
        return GW_ENOMEM;
    w->db = gw_db_new(w->base, cfg->db_conninfo, cfg->db_pool_size);
    if (w->db != NULL)
        gw_db_set_batch_max(w->db, cfg->db_batch_size);
    if (keys->kp != NULL)
        w->keys = gw_keycli_new(w->base, keys->kp->worker_fd[w->id]);
    else
        w->keys = gw_keycli_new_inline(keys->inline_keys);
    /* the first worker also prunes the change log */
    w->quiet = w->db ? gw_quiet_new(w->base, w->db, w->id == 0) : NULL;
    w->dev = (gw_devctx_t){.cfg = cfg, .keys = w->keys, .db = w->db, .quiet = w->quiet,
                           .policy = policy};
    w->http = w->db && w->keys ? gw_http_new(w->base, cfg, ssl) : NULL;
    w->reload_ev = w->http ? event_new(w->base, -1, 0, gw_worker_reload_cb, w) : NULL;
    w->stop_ev = w->reload_ev ? event_new(w->base, -1, 0, gw_worker_stop_cb, w) : NULL;
    if (w->stop_ev == NULL)
        return GW_ENOMEM;
    gw_http_set_worker(w->http, w->id);
    gw_http_set_handler(w->http, GW_ROUTE_UPDATE, gw_update_handle, &w->dev);
    gw_http_set_handler(w->http, GW_ROUTE_DYNDNS, gw_dyndns_handle, &w->dev);
    gw_http_set_handler(w->http, GW_ROUTE_CHECKIP, gw_checkip_handle_text, NULL);
    gw_http_set_handler(w->http, GW_ROUTE_CHECKIP_HTML, gw_checkip_handle_html, NULL);
    return GW_OK;
}

gw_workers_t *gw_workers_new(struct event_base *main_base, int n, const gw_config_t *cfg,
                             SSL_CTX *ssl, const gw_worker_keys_t *keys,
                             const gw_policy_t *policy, void (*done)(void *), void *arg)
{
    if (n < 1 || n > GW_WORKERS_MAX || (keys->kp != NULL && keys->kp->nworkers < n))
        return NULL;
    gw_workers_t *g = calloc(1, sizeof *g);
    if (g == NULL) {
        gw_error("out of memory at start-up");
        return NULL;
    }
    g->cfg = cfg;
    g->done = done;
    g->done_arg = arg;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->done_ev = event_new(main_base, -1, 0, gw_workers_done_cb, g);
    if (g->done_ev == NULL) {
        gw_error("out of memory at start-up");
        gw_workers_free(g);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        struct gw_worker *w = &g->w[i];
        w->g = g;
        w->id = i;
        g->n = i + 1;
        if (gw_worker_init(g, w, ssl, keys, policy) != GW_OK) {
            gw_error("out of memory at start-up");
            gw_workers_free(g);
            return NULL;
        }
        if (gw_http_listen(w->http, i == 0 ? NULL : g->w[0].http) != GW_OK) {
            gw_workers_free(g);
            return NULL;
        }
    }
    return g;
}

int gw_workers_start(gw_workers_t *g)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = GW_OK;
    for (int i = 0; i < g->n; i++) {
        gw_db_start(g->w[i].db);
        if (pthread_create(&g->w[i].th, NULL, gw_worker_main, &g->w[i]) != 0) {
            gw_error("cannot start worker thread %d", i);
            rc = GW_EIO;
            break;
        }
        g->w[i].started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != GW_OK)
        gw_workers_break(g);
    return rc;
}

int gw_workers_n(const gw_workers_t *g)
{
    return g->n;
}

gw_db_t *gw_workers_db(gw_workers_t *g, int i)
{
    return g->w[i].db;
}

gw_http_t *gw_workers_http(gw_workers_t *g, int i)
{
    return g->w[i].http;
}

int gw_workers_running(const gw_workers_t *g)
{
    int started = 0;
    for (int i = 0; i < g->n; i++)
        started += g->w[i].started;
    return started - atomic_load(&g->exited);
}

size_t gw_workers_inflight(const gw_workers_t *g)
{
    size_t n = 0;
    for (int i = 0; i < g->n; i++)
        n += gw_http_inflight(g->w[i].http);
    return n;
}

/* With mu held: workers started and still in their loops. A worker that
 * leaves its loop (a failing loop, a stop) before it parks or switches no
 * longer counts, so a reload never waits for it. */
static int gw_workers_live(const gw_workers_t *g)
{
    int n = 0;
    for (int i = 0; i < g->n; i++)
        n += g->w[i].started && !g->w[i].left;
    return n;
}

void gw_workers_reload(gw_workers_t *g, SSL_CTX *ssl, const cmn_keyset_t *keys,
                       const gw_policy_t *policy, void (*apply)(void *), void *arg)
{
    pthread_mutex_lock(&g->mu);
    g->parked = g->switched = 0;
    for (int i = 0; i < g->n; i++)
        if (g->w[i].started && !g->w[i].left)
            event_active(g->w[i].reload_ev, EV_READ, 0);
    while (g->parked < gw_workers_live(g))
        pthread_cond_wait(&g->cond, &g->mu);
    /* Every running worker waits on cond: nothing reads the settings. */
    apply(arg);
    g->ssl = ssl;
    g->keys = keys;
    g->policy = policy;
    g->gen++;
    pthread_cond_broadcast(&g->cond);
    while (g->switched < gw_workers_live(g))
        pthread_cond_wait(&g->cond, &g->mu);
    pthread_mutex_unlock(&g->mu);
    /* Workers not running yet get the new objects directly. */
    for (int i = 0; i < g->n; i++)
        if (!g->w[i].started) {
            struct gw_worker *w = &g->w[i];
            gw_http_set_ssl(w->http, ssl);
            gw_keycli_set_keys(w->keys, keys);
            w->dev.policy = policy;
            gw_http_apply_settings(w->http);
        }
}

void gw_workers_stop(gw_workers_t *g)
{
    for (int i = 0; i < g->n; i++)
        if (g->w[i].started)
            event_active(g->w[i].stop_ev, EV_READ, 0);
}

void gw_workers_break(gw_workers_t *g)
{
    for (int i = 0; i < g->n; i++)
        if (g->w[i].started)
            event_base_loopbreak(g->w[i].base);
}

void gw_workers_free(gw_workers_t *g)
{
    if (g == NULL)
        return;
    for (int i = 0; i < g->n; i++)
        if (g->w[i].started) {
            pthread_join(g->w[i].th, NULL);
            g->w[i].started = 0;
        }
    for (int i = 0; i < g->n; i++) {
        struct gw_worker *w = &g->w[i];
        /* Fails questions and queries still pending: their requests get
         * 911 while the front end still exists. */
        gw_keycli_free(w->keys);
        gw_quiet_free(w->quiet);
        gw_db_free(w->db);
        gw_http_free(w->http);
        if (w->reload_ev != NULL)
            event_free(w->reload_ev);
        if (w->stop_ev != NULL)
            event_free(w->stop_ev);
        if (w->base != NULL)
            event_base_free(w->base);
    }
    if (g->done_ev != NULL)
        event_free(g->done_ev);
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->mu);
    free(g);
}
