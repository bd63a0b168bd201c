/* gw_conn: one client connection of the HTTPS listeners, below HTTP.
 *
 * Owns what happens to a connection before and around evhttp: its TLS
 * bufferevent (bufferevent_openssl as a filter over a socket bufferevent,
 * so that the first bytes can be looked at before OpenSSL reads them), the
 * PROXY protocol header (read and removed before the TLS ClientHello on
 * listeners of [proxy] listeners, from [proxy] trusted peers only; a
 * header from anyone else, a missing header from a trusted peer or a
 * malformed one closes the connection), the client address (the header's,
 * else the TCP peer's), the connection limits of gw_limit (checked when the
 * client address is known; over a limit the connection is closed before
 * TLS, with no answer), and the header clock (header_timeout: a connection
 * must deliver a complete request within that many seconds of its start or
 * of its previous answer, else it is closed; this is what cuts off clients
 * that send a byte at a time, whom evhttp's inactivity timeout keeps), and
 * the bound on unread input (one largest request: evhttp reads on while an
 * answer waits to be written, so a client that pipelines without reading
 * would otherwise fill the gateway's memory).
 *
 * A connection's state lives in the ex_data of its SSL object and is freed
 * with it, which is how the end of every connection is seen (evhttp has no
 * hook for it in libevent 2.1). Connections are closed by shutdown(2) of
 * their socket: evhttp then sees the end of the stream and frees them. */
#ifndef GW_CONN_H
#define GW_CONN_H

#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "gw_config.h"

typedef struct gw_conn gw_conn_t;

/* Registers the SSL ex_data slot. Call once before the first connection;
 * returns GW_OK or GW_ETLS. */
int gw_conn_init(void) __attribute__((warn_unused_result));

/* For evhttp_set_bevcb: the bufferevent of a new connection, TLS over the
 * socket evhttp sets later. cfg must outlive the connection. Never NULL
 * (when TLS state cannot be made, a bufferevent that never delivers data
 * is returned, so that the connection is never served in clear). */
struct bufferevent *gw_conn_bev_new(struct event_base *base, SSL_CTX *ssl,
                                    const gw_config_t *cfg);

/* The connection a request arrived on, or NULL. */
gw_conn_t *gw_conn_of(struct evhttp_connection *evcon);
/* The client's address: from the PROXY header when there was one. NULL
 * before it is known (never once a request arrived). */
const struct sockaddr *gw_conn_client(const gw_conn_t *c);
/* A complete request arrived: the header clock stops. */
void gw_conn_request_begin(gw_conn_t *c);
/* Its answer was handed to evhttp: the clock starts again for the next. */
void gw_conn_request_end(gw_conn_t *c);

/* Frees the BIO method (at exit). */
void gw_conn_shutdown(void);

/* Connections whose state exists (open, or closing). */
size_t gw_conn_count(void);

#endif
