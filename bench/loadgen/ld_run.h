/* ld_run: the load generator's engine.
 *
 * Owns the worker threads (one libevent loop each), the connections and
 * their state machine (connect, TLS handshake with verification and
 * optional session resumption, send, read the answer, time-out, close),
 * the assignment of devices to requests (round robin, never a device twice
 * in one second or while its previous request is in flight), the open-loop
 * rate schedule, the phases of a run (opening connections, warm-up round,
 * measurement), the counters and the once-a-second progress line, and the
 * handling of SIGINT and SIGTERM (stop and report). */
#ifndef LD_RUN_H
#define LD_RUN_H

#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "ld_devices.h"
#include "ld_hist.h"
#include "ld_work.h"

typedef enum ld_mode {
    LD_MODE_KEEPALIVE,   /* connections opened first, then reused */
    LD_MODE_NEW,         /* one new connection per request */
    LD_MODE_IDLE,        /* connections opened and held, no requests */
} ld_mode_t;

typedef struct ld_cfg {
    struct sockaddr_storage addr;  /* the server */
    socklen_t addrlen;
    const char *server_text;       /* for messages */
    SSL_CTX *ssl;                  /* NULL: plain TCP */
    const char *verify_name;       /* certificate name or IP literal */
    int verify_is_ip;
    int resume;                    /* new mode: resume with the last ticket */
    ld_mode_t mode;
    ld_work_t work;
    ld_device_t *devices;          /* NULL for hello and idle */
    size_t ndevices;
    unsigned connections;
    unsigned threads;
    double rate;                   /* requests/s in total; 0: closed loop */
    double duration;               /* seconds; 0: none */
    uint64_t count;                /* requests; 0: none */
    double timeout;                /* seconds per connect and per request */
    double idle_ping;              /* idle: seconds between pings; 0: none */
    unsigned connect_burst;        /* handshakes in progress while opening */
    int warmup;                    /* one unmeasured request per device first */
    unsigned sources;              /* IPv4 server: connection i binds to
                                      127.0.0.(2 + i mod sources); 0: no bind */
    int quiet;                     /* no progress lines */
} ld_cfg_t;

typedef struct ld_stats {
    uint64_t requests;             /* attempts: a request was due */
    uint64_t results[LD_R_COUNT];  /* valid answers by result */
    uint64_t ok;                   /* good + nochg + hello */
    uint64_t status[600];          /* complete HTTP answers by status */
    uint64_t err_connect;          /* TCP connect (or handshake, not a TLS error) failed */
    uint64_t err_tls;              /* TLS handshake failed (verification, protocol) */
    uint64_t err_closed;           /* connection closed before the whole answer */
    uint64_t err_timeout;          /* no whole answer (or connection) in time */
    uint64_t err_http;             /* answer not HTTP, or not a protocol answer */
    uint64_t skipped;              /* devices passed over (in flight, or sent this second) */
    uint64_t device_waits;         /* waits for the next second: no device free */
    uint64_t opened;               /* connections established */
    uint64_t resumed;              /* of which with a resumed TLS session */
    uint64_t closed_by_peer;       /* open, idle connections the server closed */
    uint64_t rate_unsent;          /* open loop: scheduled requests never sent */
    uint64_t backlog_max;          /* open loop: most scheduled requests waiting */
    uint64_t pings;                /* idle: pings answered */
    uint64_t open_end;             /* connections open when the run ended */
    uint64_t open_max;
    double elapsed_s;              /* measurement time */
    double open_phase_s;           /* time to open the connections first */
    ld_hist_t hist;                /* latency of valid answers */
} ld_stats_t;

/* Runs the load described by cfg and fills *out (its warm-up round, if
 * any, into *warm). Returns 0, or -1 after printing why when the run could
 * not start. A SIGINT or SIGTERM ends the run early (a second one exits at
 * once with status 130); *interrupted tells. */
int ld_run(const ld_cfg_t *cfg, ld_stats_t *out, ld_stats_t *warm, int *interrupted);

/* Client-side TLS set-up for ld_run: called once on the SSL_CTX. */
int ld_run_tls_init(SSL_CTX *ctx, int resume);

#endif
