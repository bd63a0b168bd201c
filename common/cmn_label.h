/* cmn_label: which host labels may name a device, for every tool that
 * gives a device a name (ddns-provision, the gateway's admin API).
 *
 * Owns the reserved-label rule: a list of glob patterns (fnmatch(3):
 * '*', '?', '[...]'), comma- or blank-separated, with the default list
 * below, that names labels a device may never take (the zone's name
 * servers, web and mail hosts, service labels); and the question whether a
 * label already holds records in its zone: a plain DNS query (A, class IN)
 * for LABEL.ZONE to the zone's primary, whose answer NXDOMAIN means the
 * name holds nothing, NOERROR that it holds records or names below it (a
 * record the caller did not create when no device has that name). The
 * message is built and its answer read here; sending it is the caller's
 * (cmn_label_ask does it blocking, for the command-line tools). */
#ifndef CMN_LABEL_H
#define CMN_LABEL_H

#include <stddef.h>
#include <stdint.h>

/* The labels no device may take unless the operator says otherwise:
 * [admin] reserved_labels of the gateway and DDNS_RESERVED_LABELS of
 * ddns-provision. */
#define CMN_LABEL_RESERVED_DEFAULT \
    "ns*, dns*, www, www[0-9]*, mail*, mx*, smtp*, imap*, pop, pop3, ftp, sftp, " \
    "webmail, autodiscover, autoconfig, wpad, isatap, localhost, _*, api, admin, " \
    "hostmaster, postmaster, webmaster, abuse, ddns, gateway, update, checkip"

#define CMN_LABEL_PATTERN_MAX 63

/* Checks a reserved-label list: every pattern 1 to 63 characters of
 * a-z 0-9 - _ * ? [ ] !, brackets balanced. 0, or -1 with the pattern at
 * fault in err. An empty list reserves nothing. */
int cmn_label_list_check(const char *list, char *err, size_t errlen);

/* 1 when the (lowercase) label matches a pattern of list, with the first
 * such pattern copied into pat (patlen bytes, may be NULL); else 0. */
int cmn_label_reserved(const char *list, const char *label, char *pat, size_t patlen);

/* The query for fqdn's A records (no trailing dot) with message id id into
 * buf: its length, or 0 when fqdn is not a name or buf too small. */
size_t cmn_label_query(uint16_t id, const char *fqdn, uint8_t *buf, size_t cap);

enum cmn_label_zone {
    CMN_LABEL_FREE = 0,         /* NXDOMAIN: the name holds nothing */
    CMN_LABEL_IN_ZONE = 1,      /* NOERROR: it holds records (or names below it) */
    CMN_LABEL_NO_ANSWER = -1,   /* no usable answer (err says why) */
};

/* Reads the answer to the query with id id: CMN_LABEL_FREE,
 * CMN_LABEL_IN_ZONE, or CMN_LABEL_NO_ANSWER with the reason in err (a
 * message that answers something else, another rcode). */
int cmn_label_answer(uint16_t id, const uint8_t *msg, size_t len, char *err, size_t errlen);

/* Asks server ("addr" or "addr:port", "[v6]:port"; port 53 by default)
 * over UDP whether fqdn holds records, waiting up to timeout_ms. */
int cmn_label_ask(const char *server, const char *fqdn, int timeout_ms, char *err,
                  size_t errlen);

#endif
