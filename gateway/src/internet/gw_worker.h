/* gw_worker: the worker threads that serve the HTTPS listeners.
 *
 * Owns [gateway] workers threads, each with its own event loop and
 * everything the request path needs on it: its own sockets on every
 * listener (SO_REUSEPORT, so the kernel spreads new connections over the
 * workers), its evhttp front end (gw_http, whose access-log lines carry
 * "worker=N"), its database pool of [database] pool_size connections
 * (gw_db) and its update handlers (gw_update, gw_dyndns). A request stays
 * on the worker whose socket accepted its connection from start to end.
 *
 * The main thread drives the workers through the group: a reload parks
 * every worker in a callback on its own loop, lets the caller change the
 * shared settings while none runs, then each worker switches to the new
 * TLS context, master keys and firmware policy on its own loop; the call
 * returns once every worker has switched, so the caller may free the old
 * objects. A stop makes each worker close its listeners and exit its loop
 * once no request is in flight; done(arg) then runs on the main loop.
 * A reload waits for every worker still in its loop; one that leaves its
 * loop meanwhile (its loop failed, or it drained after a stop) is no longer
 * waited for. */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include <stddef.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "cmn_key.h"
#include "gw_config.h"
#include "gw_db.h"
#include "gw_http.h"
#include "gw_keyproc.h"
#include "gw_policy.h"

#define GW_WORKERS_MAX 64

typedef struct gw_workers gw_workers_t;

/* The number of workers cfg asks for: [gateway] workers, or with 0 the
 * online CPUs, within 1 and GW_WORKERS_MAX. */
int gw_workers_count(const gw_config_t *cfg);

/* Where the workers' questions about signatures and passwords go: the key
 * process (kp), or, without one, keys in this process. */
typedef struct gw_worker_keys {
    gw_keyproc_t *kp;
    const cmn_keyset_t *inline_keys;
} gw_worker_keys_t;

/* Creates n workers (not running) and binds their listeners. done(arg)
 * runs on main_base's loop after worker threads left their loops (see
 * gw_workers_running).
 * NULL on failure (logged). The objects given must outlive the group or
 * be replaced through gw_workers_reload(). */
gw_workers_t *gw_workers_new(struct event_base *main_base, int n, const gw_config_t *cfg,
                             SSL_CTX *ssl, const gw_worker_keys_t *keys,
                             const gw_policy_t *policy, void (*done)(void *), void *arg);
/* Starts the threads (with every signal blocked: the main thread gets
 * them). Returns GW_OK or GW_EIO (logged; the ones started are stopped). */
int gw_workers_start(gw_workers_t *g) __attribute__((warn_unused_result));
int gw_workers_n(const gw_workers_t *g);
gw_db_t *gw_workers_db(gw_workers_t *g, int i);
gw_http_t *gw_workers_http(gw_workers_t *g, int i);
/* Requests in flight in all workers (any thread). */
/* Worker threads started and still in their loops. */
int gw_workers_running(const gw_workers_t *g);
size_t gw_workers_inflight(const gw_workers_t *g);

/* Parks every worker, runs apply(arg) while none runs (for the settings
 * the workers read from the shared configuration), then has each worker
 * switch to ssl, keys (used without a key process only) and policy and
 * apply the [limits] sizes and request_timeout again. Returns once every worker has switched. */
void gw_workers_reload(gw_workers_t *g, SSL_CTX *ssl, const cmn_keyset_t *keys,
                       const gw_policy_t *policy, void (*apply)(void *), void *arg);
/* Each worker closes its listeners and leaves its loop once no request is
 * in flight (see gw_http_stop_accepting). */
void gw_workers_stop(gw_workers_t *g);
/* Each worker leaves its loop now. */
void gw_workers_break(gw_workers_t *g);
/* Waits for the threads to end, then frees everything. */
void gw_workers_free(gw_workers_t *g);

#endif
