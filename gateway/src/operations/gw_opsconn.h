/* gw_opsconn: the operations listener's connections, below HTTP.
 *
 * Owns what happens to a connection of [admin] listen before and around
 * evhttp, so that a slow or flooding client there cannot take the file
 * descriptors the device listeners need: the connection limits of a
 * gw_limit table of its own ([admin] max_connections and
 * max_connections_per_source, apart from the devices' [limits]; a peer in
 * [admin] trusted_proxies counts towards the total only, since every
 * operator behind it shares its address; over a limit the connection is
 * closed before anything is read from it), and the header clock ([admin]
 * header_timeout: a connection must deliver a complete request within that
 * many seconds of its start or of its previous answer, else it is closed;
 * evhttp's own timeout keeps a client that sends a byte at a time).
 * A connection is uncounted when evhttp closes it (its close callback,
 * which gw_opsconn_watch shares with the request waiting on it). Its
 * bufferevent also carries one reference of ours, so that it outlives
 * evhttp's free of it: a sweep every second while connections exist finds
 * those evhttp has freed (their callbacks are gone), uncounts any whose
 * close was not seen and drops the reference, which closes the socket.
 *
 * Also owns the admin client's address: the TCP peer's, or, from a peer
 * in [admin] trusted_proxies, the right-most address of [admin]
 * client_address_header (the one that proxy appended). */
#ifndef GW_OPSCONN_H
#define GW_OPSCONN_H

#include <stddef.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/http.h>

#include "gw_config.h"

typedef struct gw_opsconn gw_opsconn_t;
typedef struct gw_oconn gw_oconn_t;

/* NULL when out of memory. cfg is read on each use (reloads apply). */
gw_opsconn_t *gw_opsconn_new(struct event_base *base, const gw_config_t *cfg);
/* Every new connection of evh goes through oc from now on. evh must be
 * freed before oc. */
void gw_opsconn_attach(gw_opsconn_t *oc, struct evhttp *evh);
/* After a reload: the limits take the new settings. */
void gw_opsconn_apply_settings(gw_opsconn_t *oc);
/* A complete request arrived: its connection's clock stops until the
 * answer has been written, then starts again for the next one. */
void gw_opsconn_request(gw_opsconn_t *oc, struct evhttp_request *req);
/* For a request answered later, whose client may leave meanwhile, until
 * gw_opsconn_unwatch: gone(arg, 0) runs when the client is seen to have
 * closed its end (the connection and the request still exist: answer as
 * usual, evhttp discards it), gone(arg, 1) once when evhttp has closed the
 * connection (the request is the caller's to free). Returns the
 * connection, valid until then, or NULL when it is unknown (gone is then
 * never called). */
gw_oconn_t *gw_opsconn_watch(gw_opsconn_t *oc, struct evhttp_request *req,
                             void (*gone)(void *, int), void *arg);
void gw_opsconn_unwatch(gw_oconn_t *c);
/* Connections counted against the limits now. */
size_t gw_opsconn_open(const gw_opsconn_t *oc);
void gw_opsconn_free(gw_opsconn_t *oc);

/* The client's address of req as text (see above) into out
 * (INET6_ADDRSTRLEN); "unknown" when there is none. */
void gw_opsconn_client(const gw_config_t *cfg, struct evhttp_request *req, char *out,
                       size_t outlen);
/* A numeric IPv4 or IPv6 address as a socket address: 0, or -1. */
int gw_opsconn_sa(const char *text, struct sockaddr_storage *ss);

#endif
