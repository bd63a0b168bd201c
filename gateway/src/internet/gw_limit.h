/* gw_limit: per-source-address limits.
 *
 * Owns tables keyed by source (an IPv4 address, or the /64 prefix of an
 * IPv6 address, since one IPv6 client holds a whole /64): the number of
 * open connections per source and in all, and the failed authentication
 * limiter (after auth_fail_limit failures within auth_fail_window seconds
 * from one source, that source is blocked for auth_block_time seconds:
 * requests are answered "ratelimit <s>" (429 on the admin API) without
 * checking credentials). A table is a gw_limit_t; the device listeners share
 * one process-wide table (gw_limit_init and the functions without a table
 * argument), the operations listener and the admin API have their own
 * (gw_limit_new), so that a flood on one side never locks out the other.
 * Each table is guarded by a mutex, so any thread may call these
 * functions; entries with nothing to remember are dropped. A table holds at
 * most max_sources entries: a new source past that evicts the least
 * recently seen source that has no open connection (its failure count and
 * block are forgotten; an attacker who cycles through that many sources
 * frees the oldest, never the sources he keeps hammering, and the newest
 * source is limited like any other). Entries with open connections are
 * never evicted, so every connection count stays exact; there are no more
 * of them than open connections, and while every entry has one the table
 * grows past max_sources. The device table also counts failed
 * authentications per source until they are taken (gw_limit_take_failures),
 * for the admin API's failing sources. */
#ifndef GW_LIMIT_H
#define GW_LIMIT_H

#include <stddef.h>
#include <sys/socket.h>

#define GW_LIMIT_MAX_SOURCES 262144

typedef struct gw_limit gw_limit_t;

typedef struct gw_limit_conf {
    int max_connections;            /* 0: no limit */
    int max_connections_per_source; /* 0: no limit */
    int auth_fail_limit;            /* 0: limiter off */
    int auth_fail_window;           /* seconds */
    int auth_block_time;            /* seconds */
} gw_limit_conf_t;

enum gw_limit_verdict {
    GW_LIMIT_OK = 0,
    GW_LIMIT_TOTAL = 1,         /* max_connections reached */
    GW_LIMIT_SOURCE = 2,        /* max_connections_per_source reached */
};

/* Creates the table (or replaces the settings of the existing one, keeping
 * its counts: used on reload). Returns GW_OK or GW_ENOMEM. */
int gw_limit_init(const gw_limit_conf_t *conf) __attribute__((warn_unused_result));
void gw_limit_shutdown(void);

/* A new connection from sa. GW_LIMIT_OK: counted, and the caller must call
 * gw_limit_conn_close() with the same address once it ends. Otherwise
 * nothing is counted and the caller closes the connection. */
int gw_limit_conn_open(const struct sockaddr *sa);
void gw_limit_conn_close(const struct sockaddr *sa);
/* Open connections in all. */
size_t gw_limit_connections(void);

/* Records one failed authentication from sa (call it on every badauth). */
void gw_limit_auth_failed(const struct sockaddr *sa);
/* Records a suspicious result for sa that is not a failed authentication
 * (a replayed request, a revoked device's credential): it counts towards
 * auth_fail_limit and the block exactly as gw_limit_auth_failed does, but
 * not in the failing sources of gw_limit_take_failures. */
void gw_limit_abuse(const struct sockaddr *sa);
/* Lists a failed authentication of sa among the failing sources of
 * gw_limit_take_failures without counting it towards the device table's
 * block: for the admin API, whose failed logins have a limiter of their
 * own but show among the failing sources all the same. */
void gw_limit_failure_listed(const struct sockaddr *sa);
/* Seconds sa stays blocked (at least 1), or 0 when it may try. */
int gw_limit_auth_blocked(const struct sockaddr *sa);

/* ---- tables of their own ---------------------------------------------------
 * A table with the settings conf and room for max_sources entries (0:
 * GW_LIMIT_MAX_SOURCES); what names it in the log ("admin API"). NULL when
 * out of memory. */
gw_limit_t *gw_limit_new(const gw_limit_conf_t *conf, size_t max_sources, const char *what);
void gw_limit_free(gw_limit_t *l);
/* New settings, counts kept (a reload). */
void gw_limit_configure(gw_limit_t *l, const gw_limit_conf_t *conf);
/* The process-wide table of the device listeners (NULL before
 * gw_limit_init). */
gw_limit_t *gw_limit_device(void);
/* The functions above, on table l (NULL: no limit, nothing counted). */
int gw_limit_open_in(gw_limit_t *l, const struct sockaddr *sa);
void gw_limit_close_in(gw_limit_t *l, const struct sockaddr *sa);
size_t gw_limit_connections_in(gw_limit_t *l);
void gw_limit_failed_in(gw_limit_t *l, const struct sockaddr *sa);
int gw_limit_blocked_in(gw_limit_t *l, const struct sockaddr *sa);
/* Entries the table holds now. */
size_t gw_limit_sources_in(gw_limit_t *l);

/* Failed authentications of one source since the last take. */
typedef struct gw_limit_fail {
    char source[64];            /* as gw_limit_source_text() writes it */
    int failures;
} gw_limit_fail_t;
/* Moves up to max sources with failures recorded since the previous call
 * into out and forgets them there; returns how many. Failures are counted
 * per source from the first call on (whether or not the limiter is on), so
 * that a process which never takes them keeps no extra entries. Any thread
 * may call it (the admin API flushes them to the database). */
size_t gw_limit_take_failures(gw_limit_fail_t *out, size_t max);

/* The source key of sa as text ("192.0.2.1", "2001:db8:1:2::/64"). */
void gw_limit_source_text(const struct sockaddr *sa, char *out, size_t outlen);

#endif
