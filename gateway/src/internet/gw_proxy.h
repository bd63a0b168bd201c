/* gw_proxy: the PROXY protocol header (HAProxy, versions 1 and 2).
 *
 * Owns the parsing of the header a load balancer sends before the TLS
 * ClientHello ("send-proxy" / "send-proxy-v2"): the v1 text line
 * "PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n" (at most 107 bytes) and
 * the v2 binary header (12-byte signature, version/command, family,
 * length, addresses, TLVs; at most GW_PROXY_MAX bytes in all here). The
 * parser is a pure function over a byte buffer, so it can be fuzzed; the
 * connection layer (gw_conn) decides who may send a header. */
#ifndef GW_PROXY_H
#define GW_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

/* Longest header accepted (v2 with TLVs included). */
#define GW_PROXY_MAX 1024

enum gw_proxy_rc {
    GW_PROXY_NONE = 0,      /* the data does not start with a PROXY header */
    GW_PROXY_MORE = 1,      /* a header has begun: more bytes are needed */
    GW_PROXY_OK = 2,        /* complete header; *used bytes belong to it */
    GW_PROXY_BAD = -1,      /* malformed, unsupported or too long */
};

typedef struct gw_proxy_hdr {
    int version;                    /* 1 or 2 */
    int local;                      /* v2 LOCAL command or v1 UNKNOWN: no address */
    struct sockaddr_storage src;    /* the client, valid unless local */
    socklen_t srclen;
    const char *why;                /* for GW_PROXY_BAD: what is wrong */
} gw_proxy_hdr_t;

/* Looks at the first len bytes received on a connection. With
 * GW_PROXY_OK, *used is the header's length and *out its content. With
 * GW_PROXY_BAD, out->why says why. */
int gw_proxy_parse(const unsigned char *buf, size_t len, size_t *used, gw_proxy_hdr_t *out);

#endif
