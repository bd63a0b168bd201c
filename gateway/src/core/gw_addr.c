/* gw_addr: socket addresses and networks (see gw_addr.h). */
#include "gw_addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gw_addr_parse(const char *s, int default_port, gw_sockaddr_t *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *portp = NULL;
    size_t hl;
    long port;

    memset(out, 0, sizeof *out);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL)
            return -1;
        hl = (size_t)(close - s - 1);
        if (hl == 0 || hl >= sizeof host)
            return -1;
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        if (close[1] == ':')
            portp = close + 2;
        else if (close[1] != '\0')
            return -1;
    } else {
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL)
            return -1;  /* bare IPv6 address: needs brackets */
        hl = colon ? (size_t)(colon - s) : strlen(s);
        if (hl == 0 || hl >= sizeof host)
            return -1;
        memcpy(host, s, hl);
        host[hl] = '\0';
        if (colon != NULL)
            portp = colon + 1;
    }
    if (portp != NULL) {
        char *end;
        if (!isdigit((unsigned char)portp[0]) || strlen(portp) > 5)
            return -1;
        errno = 0;
        port = strtol(portp, &end, 10);
        if (*end != '\0' || port < 0 || port > 65535)
            return -1;
    } else if (default_port >= 0) {
        port = default_port;
    } else {
        return -1;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
    char canon[INET6_ADDRSTRLEN];
    if (s[0] != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        out->len = sizeof *sin;
        inet_ntop(AF_INET, &sin->sin_addr, canon, sizeof canon);
        snprintf(out->text, sizeof out->text, "%s:%ld", canon, port);
        return 0;
    }
    if (s[0] == '[' && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        out->len = sizeof *sin6;
        inet_ntop(AF_INET6, &sin6->sin6_addr, canon, sizeof canon);
        snprintf(out->text, sizeof out->text, "[%s]:%ld", canon, port);
        return 0;
    }
    return -1;
}

int gw_addr_parse_cidr(const char *s, gw_cidr_t *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    long prefix = -1;
    memset(out, 0, sizeof *out);
    if (hl == 0 || hl >= sizeof host)
        return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    if (slash != NULL) {
        char *end;
        if (!isdigit((unsigned char)slash[1]) || strlen(slash + 1) > 3)
            return -1;
        prefix = strtol(slash + 1, &end, 10);
        if (*end != '\0')
            return -1;
    }
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        if (prefix > 32)
            return -1;
        out->prefix = prefix < 0 ? 32 : (int)prefix;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        if (prefix > 128)
            return -1;
        out->prefix = prefix < 0 ? 128 : (int)prefix;
    } else {
        return -1;
    }
    int bytes = out->family == AF_INET ? 4 : 16;
    for (int bit = out->prefix; bit < bytes * 8; bit++)
        if (out->addr[bit / 8] & (0x80 >> (bit % 8)))
            return -1;
    return 0;
}

int gw_addr_cidr_match(const gw_cidr_list_t *l, const struct sockaddr *sa)
{
    unsigned char a[16];
    int fam;
    if (sa->sa_family == AF_INET) {
        fam = AF_INET;
        memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            fam = AF_INET;
            memcpy(a, &a6->s6_addr[12], 4);
        } else {
            fam = AF_INET6;
            memcpy(a, a6, 16);
        }
    } else {
        return 0;
    }
    return gw_addr_cidr_has(l, fam, a);
}

int gw_addr_cidr_has(const gw_cidr_list_t *l, int family, const unsigned char *a)
{
    for (size_t i = 0; i < l->n; i++)
        if (gw_addr_in_cidr(&l->net[i], family, a))
            return 1;
    return 0;
}

int gw_addr_in_cidr(const gw_cidr_t *c, int family, const unsigned char *a)
{
    if (c->family != family)
        return 0;
    int full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(a, c->addr, (size_t)full) != 0)
        return 0;
    return rest == 0 || ((a[full] ^ c->addr[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}


int gw_addr_text(const struct sockaddr *sa, char *out, size_t outlen)
{
    int fam = 0;
    if (sa != NULL && sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        fam = inet_ntop(AF_INET, &s->sin_addr, out, (socklen_t)outlen) ? AF_INET : 0;
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr))
            fam = inet_ntop(AF_INET, &s->sin6_addr.s6_addr[12], out, (socklen_t)outlen) ?
                  AF_INET : 0;
        else
            fam = inet_ntop(AF_INET6, &s->sin6_addr, out, (socklen_t)outlen) ? AF_INET6 : 0;
    }
    if (fam == 0 && outlen > 0)
        out[0] = '\0';
    return fam;
}
