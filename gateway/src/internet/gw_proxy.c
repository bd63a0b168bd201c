/* gw_proxy: PROXY protocol v1 and v2 parser (see gw_proxy.h). */
#include "gw_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GW_PROXY_V1_MAX 107

static const unsigned char gw_proxy_v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static int gw_proxy_bad(gw_proxy_hdr_t *out, const char *why)
{
    out->why = why;
    return GW_PROXY_BAD;
}

/* Decimal port 0..65535 without sign or leading zeros. */
static int gw_proxy_port(const char *s, size_t n, uint16_t *port)
{
    unsigned long v = 0;
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

static int gw_proxy_v1(const unsigned char *buf, size_t len, size_t *used, gw_proxy_hdr_t *out)
{
    const unsigned char *end = memchr(buf, '\n', len < GW_PROXY_V1_MAX ? len : GW_PROXY_V1_MAX);
    if (end == NULL)
        return len >= GW_PROXY_V1_MAX ? gw_proxy_bad(out, "v1 line longer than 107 bytes")
                                      : GW_PROXY_MORE;
    size_t ll = (size_t)(end - buf);
    if (ll < 1 || buf[ll - 1] != '\r')
        return gw_proxy_bad(out, "v1 line does not end with CRLF");
    char line[GW_PROXY_V1_MAX + 1];
    memcpy(line, buf, ll - 1);
    line[ll - 1] = '\0';
    if (memchr(line, '\0', ll - 1) != NULL)
        return gw_proxy_bad(out, "v1 line holds a NUL byte");
    /* PROXY <proto> [<src> <dst> <sport> <dport>] */
    char *words[7];
    size_t nw = 0;
    char *p = line;
    while (*p != '\0') {
        if (nw == 7)
            return gw_proxy_bad(out, "v1 line has too many fields");
        words[nw++] = p;
        char *sp = strchr(p, ' ');
        if (sp == NULL)
            break;
        *sp = '\0';
        p = sp + 1;
        if (*p == ' ' || *p == '\0')
            return gw_proxy_bad(out, "v1 fields must be separated by single spaces");
    }
    if (nw < 2 || strcmp(words[0], "PROXY") != 0)
        return gw_proxy_bad(out, "v1 line does not start with 'PROXY <proto>'");
    out->version = 1;
    *used = ll + 1;
    if (strcmp(words[1], "UNKNOWN") == 0) {
        out->local = 1;     /* the rest of the line is ignored (spec 2.1) */
        return GW_PROXY_OK;
    }
    int fam = strcmp(words[1], "TCP4") == 0 ? AF_INET
            : strcmp(words[1], "TCP6") == 0 ? AF_INET6 : 0;
    if (fam == 0)
        return gw_proxy_bad(out, "v1 protocol is not TCP4, TCP6 or UNKNOWN");
    if (nw != 6)
        return gw_proxy_bad(out, "v1 line needs 6 fields");
    uint16_t sport, dport;
    if (gw_proxy_port(words[4], strlen(words[4]), &sport) != 0 ||
        gw_proxy_port(words[5], strlen(words[5]), &dport) != 0)
        return gw_proxy_bad(out, "v1 port is not a number from 0 to 65535");
    memset(&out->src, 0, sizeof out->src);
    if (fam == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct in_addr d;
        if (inet_pton(AF_INET, words[2], &s->sin_addr) != 1 ||
            inet_pton(AF_INET, words[3], &d) != 1)
            return gw_proxy_bad(out, "v1 TCP4 address is not a dotted quad");
        s->sin_family = AF_INET;
        s->sin_port = htons(sport);
        out->srclen = sizeof *s;
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        struct in6_addr d;
        if (inet_pton(AF_INET6, words[2], &s->sin6_addr) != 1 ||
            inet_pton(AF_INET6, words[3], &d) != 1)
            return gw_proxy_bad(out, "v1 TCP6 address is not an IPv6 address");
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(sport);
        out->srclen = sizeof *s;
    }
    return GW_PROXY_OK;
}

static int gw_proxy_v2(const unsigned char *buf, size_t len, size_t *used, gw_proxy_hdr_t *out)
{
    if (len < 16)
        return GW_PROXY_MORE;
    unsigned ver = buf[12] >> 4, cmd = buf[12] & 0x0f;
    unsigned fam = buf[13] >> 4, proto = buf[13] & 0x0f;
    size_t alen = ((size_t)buf[14] << 8) | buf[15];
    if (ver != 2)
        return gw_proxy_bad(out, "v2 version is not 2");
    if (cmd > 1)
        return gw_proxy_bad(out, "v2 command is not LOCAL or PROXY");
    if (16 + alen > GW_PROXY_MAX)
        return gw_proxy_bad(out, "v2 header longer than 1024 bytes");
    if (len < 16 + alen)
        return GW_PROXY_MORE;
    out->version = 2;
    *used = 16 + alen;
    const unsigned char *a = buf + 16;
    if (cmd == 0) {         /* LOCAL: the proxy's own connection (health check) */
        out->local = 1;
        return GW_PROXY_OK;
    }
    if (fam == 0) {         /* AF_UNSPEC */
        out->local = 1;
        return GW_PROXY_OK;
    }
    if (proto != 1)
        return gw_proxy_bad(out, "v2 transport is not STREAM");
    memset(&out->src, 0, sizeof out->src);
    if (fam == 1) {
        if (alen < 12)
            return gw_proxy_bad(out, "v2 INET address block shorter than 12 bytes");
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        s->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&s->sin_port, a + 8, 2);
        out->srclen = sizeof *s;
        return GW_PROXY_OK;
    }
    if (fam == 2) {
        if (alen < 36)
            return gw_proxy_bad(out, "v2 INET6 address block shorter than 36 bytes");
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        s->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        out->srclen = sizeof *s;
        return GW_PROXY_OK;
    }
    return gw_proxy_bad(out, "v2 address family is not INET or INET6");
}

int gw_proxy_parse(const unsigned char *buf, size_t len, size_t *used, gw_proxy_hdr_t *out)
{
    static const char v1sig[6] = "PROXY ";
    memset(out, 0, sizeof *out);
    *used = 0;
    if (len == 0)
        return GW_PROXY_MORE;
    size_t n = len < 12 ? len : 12;
    if (memcmp(buf, gw_proxy_v2_sig, n) == 0)
        return len < 12 ? GW_PROXY_MORE : gw_proxy_v2(buf, len, used, out);
    n = len < 6 ? len : 6;
    if (memcmp(buf, v1sig, n) == 0)
        return len < 6 ? GW_PROXY_MORE : gw_proxy_v1(buf, len, used, out);
    return GW_PROXY_NONE;
}
