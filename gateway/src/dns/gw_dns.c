/* gw_dns: RFC 2136 UPDATE with TSIG (see gw_dns.h). */
#include "gw_dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "gw_clock.h"
#include "gw_err.h"

#define GW_DNS_FUDGE 300
#define GW_DNS_WIRE_MAX 65000

static ldns_rdf *gw_dname(const char *name)
{
    char buf[GW_DNAME_MAX + 2];
    snprintf(buf, sizeof buf, "%s.", name);
    return ldns_dname_new_frm_str(buf);
}

/* Builds the UPDATE message for changes[0..n); NULL with err on failure. */
static ldns_pkt *gw_dns_build(const gw_zone_conf_t *zone, const gw_dns_change_t *changes,
                              size_t n, char *err, size_t errlen)
{
    ldns_rr_list *up = ldns_rr_list_new();
    ldns_rdf *zname = NULL;
    ldns_pkt *pkt = NULL;

    if (up == NULL)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        const gw_dns_change_t *c = &changes[i];
        ldns_rr_type type = c->is_aaaa ? LDNS_RR_TYPE_AAAA : LDNS_RR_TYPE_A;
        /* delete the RRset: class ANY, ttl 0, no rdata */
        ldns_rr *del = ldns_rr_new();
        ldns_rdf *owner = gw_dname(c->fqdn);
        if (del == NULL || owner == NULL) {
            ldns_rr_free(del);
            ldns_rdf_deep_free(owner);
            goto nomem;
        }
        ldns_rr_set_owner(del, owner);
        ldns_rr_set_type(del, type);
        ldns_rr_set_class(del, LDNS_RR_CLASS_ANY);
        ldns_rr_set_ttl(del, 0);
        if (!ldns_rr_list_push_rr(up, del)) {
            ldns_rr_free(del);
            goto nomem;
        }
        if (c->address == NULL)
            continue;
        /* add the new record */
        ldns_rr *add = ldns_rr_new();
        ldns_rdf *owner2 = gw_dname(c->fqdn);
        ldns_rdf *addr = ldns_rdf_new_frm_str(c->is_aaaa ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A,
                                              c->address);
        if (add == NULL || owner2 == NULL || addr == NULL) {
            ldns_rr_free(add);
            ldns_rdf_deep_free(owner2);
            ldns_rdf_deep_free(addr);
            if (addr == NULL && owner2 != NULL) {
                snprintf(err, errlen, "outbox row for %s has a bad address", c->fqdn);
                goto fail;
            }
            goto nomem;
        }
        ldns_rr_set_owner(add, owner2);
        ldns_rr_set_type(add, type);
        ldns_rr_set_class(add, LDNS_RR_CLASS_IN);
        ldns_rr_set_ttl(add, (uint32_t)(c->ttl > 0 ? c->ttl : zone->default_ttl));
        ldns_rr_push_rdf(add, addr);
        if (!ldns_rr_list_push_rr(up, add)) {
            ldns_rr_free(add);
            goto nomem;
        }
    }
    zname = gw_dname(zone->name);
    if (zname == NULL)
        goto nomem;
    pkt = ldns_update_pkt_new(zname, LDNS_RR_CLASS_IN, NULL, up, NULL);
    zname = NULL;   /* owned by pkt (or freed on failure by ldns) */
    if (pkt == NULL)
        goto nomem;
    ldns_pkt_set_rd(pkt, false);
    ldns_pkt_set_random_id(pkt);
    ldns_rr_list_deep_free(up);
    return pkt;
nomem:
    snprintf(err, errlen, "out of memory building the UPDATE message");
fail:
    ldns_rr_list_deep_free(up);
    ldns_rdf_deep_free(zname);
    return NULL;
}

static int gw_dns_sign(const gw_zone_conf_t *zone, ldns_pkt *pkt, char *err, size_t errlen)
{
    ldns_status st = ldns_pkt_tsig_sign(pkt, zone->tsig_key_name, zone->tsig_secret,
                                        GW_DNS_FUDGE, zone->tsig_algorithm, NULL);
    if (st != LDNS_STATUS_OK) {
        snprintf(err, errlen, "cannot sign with TSIG key %s (%s): %s", zone->tsig_key_name,
                 zone->tsig_algorithm, ldns_get_errorstr_by_id(st));
        return GW_EDNS;
    }
    return GW_OK;
}

int gw_dns_check_tsig(const gw_zone_conf_t *zone, char *err, size_t errlen)
{
    gw_dns_change_t probe = {zone->name, 0, NULL, 0};
    ldns_pkt *pkt = gw_dns_build(zone, &probe, 1, err, errlen);
    if (pkt == NULL)
        return GW_ENOMEM;
    int rc = gw_dns_sign(zone, pkt, err, errlen);
    ldns_pkt_free(pkt);
    return rc;
}

/* A resolver for the zone's primary over TCP, verifying answers with the
 * zone's TSIG key (the zone transfer). */
static ldns_resolver *gw_dns_resolver(const gw_zone_conf_t *zone, char *err,
                                      size_t errlen)
{
    ldns_resolver *res = ldns_resolver_new();
    ldns_rdf *ns = NULL;
    char ip[INET6_ADDRSTRLEN];
    uint16_t port;

    if (res == NULL)
        goto nomem;
    if (zone->primary.ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&zone->primary.ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        ns = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_AAAA, ip);
        port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&zone->primary.ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        ns = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, ip);
        port = ntohs(s4->sin_port);
    }
    if (ns == NULL || ldns_resolver_push_nameserver(res, ns) != LDNS_STATUS_OK)
        goto nomem;
    ldns_rdf_deep_free(ns);
    ldns_resolver_set_port(res, port);
    ldns_resolver_set_recursive(res, false);
    ldns_resolver_set_dnssec(res, false);
    ldns_resolver_set_usevc(res, true);
    ldns_resolver_set_fallback(res, false);    /* would resend with EDNS: breaks TSIG */
    ldns_resolver_set_retry(res, 1);
    ldns_resolver_set_retrans(res, 0);
    ldns_resolver_set_timeout(res, (struct timeval){GW_DNS_TIMEOUT_S, 0});
    /* The keys the answer's TSIG is verified with. */
    ldns_resolver_set_tsig_keyname(res, zone->tsig_key_name);
    ldns_resolver_set_tsig_keydata(res, zone->tsig_secret);
    ldns_resolver_set_tsig_algorithm(res, zone->tsig_algorithm);
    return res;
nomem:
    ldns_rdf_deep_free(ns);
    if (res != NULL)
        ldns_resolver_deep_free(res);
    snprintf(err, errlen, "out of memory preparing the resolver");
    return NULL;
}

/* A message's frame on TCP: two length bytes, then the message. */
#define GW_DNS_FRAME_MAX (2 + 65535)

struct gw_dns_inflight {
    int used;
    uint16_t id;
    ldns_rdf *mac;          /* the request's TSIG MAC: the answer's TSIG covers it */
};

struct gw_dns_conn {
    const gw_zone_conf_t *zone;
    int fd;
    struct gw_dns_inflight fl[GW_DNS_MAX_INFLIGHT];
    uint8_t *buf;           /* bytes received, not yet a whole answer */
    size_t len;
};

/* Waits up to ms for events on fd; returns poll's revents, 0 on time-out,
 * -1 on error. */
static int gw_dns_poll(int fd, short events, int64_t ms)
{
    struct pollfd pfd = {fd, events, 0};
    int r;
    do
        r = poll(&pfd, 1, ms < 0 ? 0 : (int)ms);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : r == 0 ? 0 : pfd.revents;
}

int gw_dns_conn_open(const gw_zone_conf_t *zone, gw_dns_conn_t **out, char *err, size_t errlen)
{
    gw_dns_conn_t *c = calloc(1, sizeof *c);
    const struct sockaddr_storage *ss = &zone->primary.ss;
    socklen_t sl = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in);
    int one = 1, soerr = 0;
    socklen_t el = sizeof soerr;

    *out = NULL;
    if (c == NULL || (c->buf = malloc(GW_DNS_FRAME_MAX)) == NULL) {
        if (c != NULL)
            free(c);
        snprintf(err, errlen, "out of memory opening a connection to %s", zone->primary.text);
        return GW_ENOMEM;
    }
    c->zone = zone;
    c->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(err, errlen, "cannot create a socket for %s: %s", zone->primary.text,
                 strerror(errno));
        goto fail;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (const struct sockaddr *)ss, sl) != 0) {
        if (errno != EINPROGRESS) {
            snprintf(err, errlen, "cannot connect to %s: %s", zone->primary.text, strerror(errno));
            goto fail;
        }
        int r = gw_dns_poll(c->fd, POLLOUT, GW_DNS_TIMEOUT_S * 1000);
        if (r == 0) {
            snprintf(err, errlen, "cannot connect to %s: no answer within %d s",
                     zone->primary.text, GW_DNS_TIMEOUT_S);
            goto fail;
        }
        if (r < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &el) != 0 || soerr != 0) {
            snprintf(err, errlen, "cannot connect to %s: %s", zone->primary.text,
                     strerror(soerr ? soerr : errno));
            goto fail;
        }
    }
    *out = c;
    return GW_OK;
fail:
    gw_dns_conn_close(c);
    return GW_EDNS;
}

void gw_dns_conn_close(gw_dns_conn_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < GW_DNS_MAX_INFLIGHT; i++)
        ldns_rdf_deep_free(c->fl[i].mac);
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c);
}

int gw_dns_conn_fd(const gw_dns_conn_t *c)
{
    return c->fd;
}

/* Writes all of buf (time-out GW_DNS_TIMEOUT_S). */
static int gw_dns_write_all(gw_dns_conn_t *c, const uint8_t *buf, size_t len, char *err,
                            size_t errlen)
{
    int64_t deadline = gw_clock_ms() + GW_DNS_TIMEOUT_S * 1000;
    while (len > 0) {
        ssize_t w = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (w > 0) {
            buf += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(err, errlen, "cannot send to %s: %s", c->zone->primary.text,
                     strerror(errno));
            return GW_EDNS;
        }
        if (gw_dns_poll(c->fd, POLLOUT, deadline - gw_clock_ms()) <= 0) {
            snprintf(err, errlen, "cannot send to %s: not accepted within %d s",
                     c->zone->primary.text, GW_DNS_TIMEOUT_S);
            return GW_EDNS;
        }
    }
    return GW_OK;
}

static int gw_dns_id_in_flight(const gw_dns_conn_t *c, uint16_t id)
{
    for (size_t i = 0; i < GW_DNS_MAX_INFLIGHT; i++)
        if (c->fl[i].used && c->fl[i].id == id)
            return 1;
    return 0;
}

int gw_dns_conn_send(gw_dns_conn_t *c, const gw_dns_change_t *changes, size_t *n, uint16_t *id,
                     char *err, size_t errlen)
{
    const gw_zone_conf_t *zone = c->zone;
    ldns_pkt *pkt = NULL;
    uint8_t *wire = NULL, *frame = NULL;
    size_t wlen = 0, count = *n, slot = GW_DNS_MAX_INFLIGHT;
    int rc = GW_EDNS;

    for (size_t i = 0; i < GW_DNS_MAX_INFLIGHT; i++)
        if (!c->fl[i].used) {
            slot = i;
            break;
        }
    if (slot == GW_DNS_MAX_INFLIGHT) {
        snprintf(err, errlen, "too many UPDATE messages in flight");
        return GW_EBUSY;
    }
    /* Build, halving the batch until the signed message fits. */
    for (;;) {
        pkt = gw_dns_build(zone, changes, count, err, errlen);
        if (pkt == NULL) {
            rc = GW_ENOMEM;
            goto out;
        }
        while (gw_dns_id_in_flight(c, ldns_pkt_id(pkt)))
            ldns_pkt_set_random_id(pkt);
        if ((rc = gw_dns_sign(zone, pkt, err, errlen)) != GW_OK)
            goto out;
        rc = GW_EDNS;
        if (ldns_pkt2wire(&wire, pkt, &wlen) != LDNS_STATUS_OK) {
            snprintf(err, errlen, "cannot encode the UPDATE message");
            goto out;
        }
        if (wlen <= GW_DNS_WIRE_MAX || count == 1)
            break;
        free(wire);
        wire = NULL;
        ldns_pkt_free(pkt);
        pkt = NULL;
        count /= 2;
    }
    if (wlen > GW_DNS_WIRE_MAX) {
        snprintf(err, errlen, "UPDATE message too large");
        goto out;
    }
    frame = malloc(wlen + 2);
    if (frame == NULL) {
        snprintf(err, errlen, "out of memory sending the UPDATE message");
        rc = GW_ENOMEM;
        goto out;
    }
    frame[0] = (uint8_t)(wlen >> 8);
    frame[1] = (uint8_t)wlen;
    memcpy(frame + 2, wire, wlen);
    c->fl[slot].mac = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(pkt), 3));
    if (c->fl[slot].mac == NULL) {
        snprintf(err, errlen, "out of memory sending the UPDATE message");
        rc = GW_ENOMEM;
        goto out;
    }
    if ((rc = gw_dns_write_all(c, frame, wlen + 2, err, errlen)) != GW_OK) {
        ldns_rdf_deep_free(c->fl[slot].mac);
        c->fl[slot].mac = NULL;
        goto out;
    }
    c->fl[slot].used = 1;
    c->fl[slot].id = ldns_pkt_id(pkt);
    *id = c->fl[slot].id;
    *n = count;
    rc = GW_OK;
out:
    free(frame);
    free(wire);
    if (pkt != NULL)
        ldns_pkt_free(pkt);
    return rc;
}

/* 1 when answer is how Knot DNS refuses an UPDATE its ACL does not allow
 * (an update-type or update-owner rule): NOTAUTH with an unsigned TSIG
 * record carrying the error BADKEY. The same answer comes for a key name
 * the server does not know; a wrong secret is BADSIG. */
static int gw_dns_acl_refusal(const ldns_pkt *answer)
{
    const ldns_rr *tsig = ldns_pkt_tsig(answer);
    const ldns_rdf *error = tsig != NULL ? ldns_rr_rdf(tsig, 5) : NULL;
    return ldns_pkt_get_rcode(answer) == LDNS_RCODE_NOTAUTH && error != NULL &&
           ldns_rdf_size(error) == 2 && ldns_rdf2native_int16(error) == GW_DNS_TSIG_BADKEY;
}

/* Checks one whole answer; sets *id to the UPDATE it answers and *signed_rcode
 * to its rcode when its TSIG is valid, or when it is an ACL refusal
 * (gw_dns_acl_refusal): a refusal of what the message holds, which the
 * publisher narrows down to the change refused, as for a signed one. */
static int gw_dns_answer(gw_dns_conn_t *c, const uint8_t *wire, size_t len, uint16_t *id,
                         int *signed_rcode, char *err, size_t errlen)
{
    const gw_zone_conf_t *zone = c->zone;
    const char *srv = zone->primary.text;
    ldns_pkt *answer = NULL;
    struct gw_dns_inflight *f = NULL;
    int rc = GW_EIO;

    if (ldns_wire2pkt(&answer, wire, len) != LDNS_STATUS_OK) {
        snprintf(err, errlen, "malformed answer from %s", srv);
        goto out;
    }
    for (size_t i = 0; i < GW_DNS_MAX_INFLIGHT; i++)
        if (c->fl[i].used && c->fl[i].id == ldns_pkt_id(answer))
            f = &c->fl[i];
    if (f == NULL || !ldns_pkt_qr(answer)) {
        snprintf(err, errlen, "answer from %s does not match an UPDATE sent", srv);
        goto out;
    }
    *id = f->id;
    rc = GW_EDNS;
    ldns_pkt_rcode rcode = ldns_pkt_get_rcode(answer);
    ldns_rr *tsig = ldns_pkt_tsig(answer);
    int valid = tsig != NULL &&
                ldns_pkt_tsig_verify(answer, wire, len, zone->tsig_key_name, zone->tsig_secret,
                                     f->mac);
    /* ldns leaves the TSIG record out of the packet when it cannot compute
     * the MAC (an unknown algorithm): give it back so that it is freed */
    if (tsig != NULL && ldns_pkt_tsig(answer) == NULL)
        ldns_pkt_set_tsig(answer, tsig);
    if (!valid && gw_dns_acl_refusal(answer)) {
        *signed_rcode = (int)rcode;
        snprintf(err, errlen, "%s refused the UPDATE: NOTAUTH with TSIG error BADKEY (the "
                 "server's access rules for the key refuse a record of it, or it does not "
                 "know the key)", srv);
    } else if (!valid) {
        char *rs = ldns_pkt_rcode2str(rcode);
        snprintf(err, errlen, "no valid answer from %s: TSIG of the answer is missing or wrong "
                 "(rcode %s)", srv, rs ? rs : "?");
        free(rs);
    } else if (rcode != LDNS_RCODE_NOERROR) {
        char *rs = ldns_pkt_rcode2str(rcode);
        *signed_rcode = (int)rcode;
        snprintf(err, errlen, "%s refused the UPDATE: %s", srv, rs ? rs : "error");
        free(rs);
    } else {
        *signed_rcode = 0;
        rc = GW_OK;
    }
    ldns_rdf_deep_free(f->mac);
    f->mac = NULL;
    f->used = 0;
out:
    if (answer != NULL)
        ldns_pkt_free(answer);
    return rc;
}

int gw_dns_conn_recv(gw_dns_conn_t *c, int timeout_ms, uint16_t *id, int *signed_rcode,
                     char *err, size_t errlen)
{
    int64_t deadline = gw_clock_ms() + timeout_ms;
    *signed_rcode = -1;
    for (;;) {
        if (c->len >= 2) {
            size_t mlen = (size_t)c->buf[0] << 8 | c->buf[1];
            if (c->len >= 2 + mlen) {
                int rc = gw_dns_answer(c, c->buf + 2, mlen, id, signed_rcode, err, errlen);
                memmove(c->buf, c->buf + 2 + mlen, c->len - 2 - mlen);
                c->len -= 2 + mlen;
                return rc;
            }
        }
        ssize_t r = recv(c->fd, c->buf + c->len, GW_DNS_FRAME_MAX - c->len, MSG_DONTWAIT);
        if (r > 0) {
            c->len += (size_t)r;
            continue;
        }
        if (r == 0) {
            snprintf(err, errlen, "%s closed the connection", c->zone->primary.text);
            return GW_EIO;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(err, errlen, "cannot read from %s: %s", c->zone->primary.text,
                     strerror(errno));
            return GW_EIO;
        }
        int64_t left = deadline - gw_clock_ms();
        if (left <= 0 || gw_dns_poll(c->fd, POLLIN, left) == 0)
            return GW_ETIMEDOUT;
    }
}

/* One A or AAAA record of a transfer, handed to cb with its owner in
 * lowercase without the final dot. GW_OK, GW_EDNS (unusable) or GW_ENOMEM. */
static int gw_dns_axfr_address(const gw_zone_conf_t *zone, ldns_rr *rr, gw_dns_axfr_cb cb,
                               void *arg, char *err, size_t errlen)
{
    char owner[GW_DNAME_MAX + 2];
    int aaaa = ldns_rr_get_type(rr) == LDNS_RR_TYPE_AAAA;
    char *o = ldns_rdf2str(ldns_rr_owner(rr));
    const ldns_rdf *rd = ldns_rr_rdf(rr, 0);
    size_t ol = o ? strlen(o) : 0;
    if (o == NULL || ol == 0 || ol > GW_DNAME_MAX + 1) {
        free(o);
        snprintf(err, errlen, "zone transfer of %s: unusable owner name", zone->name);
        return GW_EDNS;
    }
    if (o[ol - 1] == '.')
        o[--ol] = '\0';
    for (size_t i = 0; i < ol; i++)
        owner[i] = (o[i] >= 'A' && o[i] <= 'Z') ? (char)(o[i] + 32) : o[i];
    owner[ol] = '\0';
    free(o);
    if (ldns_rdf_size(rd) != (aaaa ? 16u : 4u)) {
        snprintf(err, errlen, "zone transfer of %s: malformed %s record at %s", zone->name,
                 aaaa ? "AAAA" : "A", owner);
        return GW_EDNS;
    }
    if (cb(arg, owner, aaaa, ldns_rr_ttl(rr), ldns_rdf_data(rd)) != 0) {
        snprintf(err, errlen, "out of memory reading the zone transfer");
        return GW_ENOMEM;
    }
    return GW_OK;
}

/* Why a transfer did not complete: the server's refusal, or an end
 * without the closing SOA. */
static void gw_dns_axfr_incomplete(ldns_resolver *res, const gw_zone_conf_t *zone, char *err,
                                   size_t errlen)
{
    ldns_pkt *last = ldns_axfr_last_pkt(res);
    if (last != NULL && ldns_pkt_get_rcode(last) != LDNS_RCODE_NOERROR) {
        char *rcode = ldns_pkt_rcode2str(ldns_pkt_get_rcode(last));
        snprintf(err, errlen, "%s refused the zone transfer of %s: %s (is transfer allowed "
                 "for key %s?)", zone->primary.text, zone->name, rcode ? rcode : "error",
                 zone->tsig_key_name);
        free(rcode);
    } else {
        snprintf(err, errlen, "zone transfer of %s from %s did not complete", zone->name,
                 zone->primary.text);
    }
}

int gw_dns_axfr(const gw_zone_conf_t *zone, gw_dns_axfr_cb cb, void *arg,
                gw_dns_axfr_stats_t *stats, char *err, size_t errlen)
{
    ldns_resolver *res = NULL;
    ldns_rdf *zname = NULL;
    ldns_rr *rr = NULL;
    int rc = GW_EDNS, soa_seen = 0;

    memset(stats, 0, sizeof *stats);
    res = gw_dns_resolver(zone, err, errlen);
    zname = gw_dname(zone->name);
    if (res == NULL || zname == NULL) {
        snprintf(err, errlen, "out of memory preparing the zone transfer");
        rc = GW_ENOMEM;
        goto out;
    }
    /* The request is TSIG-signed with the zone's key (ldns signs an AXFR
     * query when the resolver has a key). */
    ldns_status st = ldns_axfr_start(res, zname, LDNS_RR_CLASS_IN);
    if (st != LDNS_STATUS_OK) {
        snprintf(err, errlen, "zone transfer of %s from %s failed to start: %s", zone->name,
                 zone->primary.text, ldns_get_errorstr_by_id(st));
        goto out;
    }
    while ((rr = ldns_axfr_next(res)) != NULL) {
        ldns_rr_type t = ldns_rr_get_type(rr);
        stats->records++;
        if (t == LDNS_RR_TYPE_SOA)
            soa_seen++;
        int addr = (t == LDNS_RR_TYPE_A || t == LDNS_RR_TYPE_AAAA) && ldns_rr_rd_count(rr) == 1;
        if (addr && (rc = gw_dns_axfr_address(zone, rr, cb, arg, err, errlen)) != GW_OK)
            goto out;
        stats->addresses += (size_t)addr;
        rc = GW_EDNS;
        ldns_rr_free(rr);
        rr = NULL;
    }
    /* A complete transfer starts and ends with the SOA. */
    if (!ldns_axfr_complete(res) || soa_seen < 2) {
        gw_dns_axfr_incomplete(res, zone, err, errlen);
        goto out;
    }
    rc = GW_OK;
out:
    if (rr != NULL)
        ldns_rr_free(rr);
    if (rc != GW_OK && res != NULL)
        ldns_axfr_abort(res);
    ldns_rdf_deep_free(zname);
    if (res != NULL)
        ldns_resolver_deep_free(res);
    return rc;
}
