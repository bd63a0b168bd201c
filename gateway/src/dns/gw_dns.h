/* gw_dns: RFC 2136 UPDATE messages signed with TSIG (ldns).
 *
 * Owns the wire side of publishing: a TCP connection to a zone's primary
 * that carries UPDATE messages (zone section: the zone, IN SOA; for every
 * change in order: delete the RRset, then add the new record when there is
 * one), TSIG-signed, several in flight at once (a server reads the messages
 * of one connection in order); and checking each answer: an id in flight, a
 * valid TSIG over the request's MAC, rcode NOERROR. Also reads a zone back
 * with a TSIG-signed AXFR over TCP (for resync). No database here; the
 * publisher owns the outbox. */
#ifndef GW_DNS_H
#define GW_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "gw_config.h"

#define GW_DNS_TIMEOUT_S 3

/* One outbox row. address NULL: delete only. ttl 0: the zone's default. */
typedef struct gw_dns_change {
    const char *fqdn;           /* without the trailing dot */
    int is_aaaa;
    const char *address;
    int ttl;
} gw_dns_change_t;

/* Checks that the zone's TSIG key (name, algorithm, secret) can sign a
 * message. Returns GW_OK, or an error with a message in err. */
int gw_dns_check_tsig(const gw_zone_conf_t *zone, char *err, size_t errlen);

/* UPDATE messages one connection may have unanswered at once. */
#define GW_DNS_MAX_INFLIGHT 4

typedef struct gw_dns_conn gw_dns_conn_t;

/* Connects to the zone's primary over TCP (time-out GW_DNS_TIMEOUT_S).
 * Returns GW_OK, or an error with a reason in err. zone must outlive the
 * connection. */
int gw_dns_conn_open(const gw_zone_conf_t *zone, gw_dns_conn_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Closes it; UPDATE messages still unanswered stay unconfirmed. NULL is a
 * no-op. */
void gw_dns_conn_close(gw_dns_conn_t *c);
/* The socket, to wait for answers with poll(). */
int gw_dns_conn_fd(const gw_dns_conn_t *c);

/* Builds, signs and sends one UPDATE carrying changes[0..*n). When the
 * message would be too large for DNS, fewer changes are sent: *n is set to
 * the number sent. *id identifies the message's answer. Returns GW_OK once
 * it is written; GW_EBUSY with GW_DNS_MAX_INFLIGHT unanswered; otherwise an
 * error with a reason in err (no secret in it), after which the connection
 * is unusable. */
int gw_dns_conn_send(gw_dns_conn_t *c, const gw_dns_change_t *changes, size_t *n, uint16_t *id,
                     char *err, size_t errlen) __attribute__((warn_unused_result));

/* Reads the next answer, waiting up to timeout_ms for it. GW_OK: the UPDATE
 * *id was answered NOERROR with a valid TSIG. GW_EDNS: the UPDATE *id was
 * refused or its answer's TSIG is wrong (reason in err). GW_ETIMEDOUT: no
 * whole answer yet. GW_EIO: the connection is broken or the server sent
 * something that answers nothing sent (reason in err); it is unusable.
 * *signed_rcode is the answer's rcode when its TSIG is valid (0 with GW_OK,
 * the refusal's rcode with GW_EDNS), and NOTAUTH for Knot's refusal by its
 * ACL (NOTAUTH with the TSIG error BADKEY, unsigned: the key's update rules
 * refuse a record of the message); otherwise -1. */
#define GW_DNS_TSIG_BADKEY 17
int gw_dns_conn_recv(gw_dns_conn_t *c, int timeout_ms, uint16_t *id, int *signed_rcode,
                     char *err, size_t errlen) __attribute__((warn_unused_result));

/* One A or AAAA record of a zone transfer: owner in lowercase without the
 * trailing dot, addr 4 or 16 bytes. Returns 0, or -1 to abort (out of
 * memory). */
typedef int (*gw_dns_axfr_cb)(void *arg, const char *owner, int is_aaaa, uint32_t ttl,
                              const uint8_t *addr);

typedef struct gw_dns_axfr_stats {
    size_t records;             /* every record of the transfer */
    size_t addresses;           /* A and AAAA records passed to the callback */
} gw_dns_axfr_stats_t;

/* Transfers the zone from its primary (AXFR over TCP, query signed with the
 * zone's TSIG key) and calls cb for every A and AAAA record. Returns GW_OK
 * after a complete transfer (SOA first and last); otherwise an error with a
 * reason in err. */
int gw_dns_axfr(const gw_zone_conf_t *zone, gw_dns_axfr_cb cb, void *arg,
                gw_dns_axfr_stats_t *stats, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
