/* gw_dynparse: dyndns2 request parsing (see gw_dynparse.h). */
#include "gw_dynparse.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "cmn_mac.h"

#define GW_DYN_NAME_MAX 32
#define GW_DYN_AUTH_MAX 256


/* Decodes application/x-www-form-urlencoded text in[0..len) into out
 * (cap bytes plus NUL). Returns the length, or -1 for a bad escape, a
 * decoded NUL or a result longer than cap. */
static long gw_urldecode(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = cmn_hexval(in[i + 1]), lo = cmn_hexval(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            if (c == '\0')
                return -1;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (o >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (long)o;
}

int gw_dyn_fqdn(const char *s, size_t len, char *out)
{
    size_t lab = 0, labels = 0;
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > GW_DYN_FQDN_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c == '.') {
            if (lab == 0 || out[i - 1] == '-')
                return 0;
            labels++;
            lab = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            if ((c == '-' && lab == 0) || ++lab > 63)
                return 0;
        } else {
            return 0;
        }
        out[i] = c;
    }
    if (lab == 0 || out[len - 1] == '-' || labels == 0)
        return 0;
    out[len] = '\0';
    return 1;
}

/* [b, e) without surrounding blanks. */
static void gw_trim(const char **b, const char **e)
{
    while (*b < *e && (**b == ' ' || **b == '\t'))
        (*b)++;
    while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
}

int gw_dyn_parse_myip(const char *v, char ipv4[INET_ADDRSTRLEN], char ipv6[INET6_ADDRSTRLEN])
{
    char v4[INET_ADDRSTRLEN] = "", v6[INET6_ADDRSTRLEN] = "";
    const char *s = v;
    int items = 0;

    if (v[0] == '\0') {
        ipv4[0] = ipv6[0] = '\0';
        return 0;
    }
    for (;;) {
        const char *e = s + strcspn(s, ","), *b = s;
        char text[INET6_ADDRSTRLEN + 1];
        gw_trim(&b, &e);
        size_t n = (size_t)(e - b);
        if (n == 0 || n >= sizeof text || ++items > 2)
            return -1;
        memcpy(text, b, n);
        text[n] = '\0';
        struct in_addr a4;
        struct in6_addr a6;
        if (inet_pton(AF_INET, text, &a4) == 1) {
            if (v4[0] != '\0')
                return -1;
            inet_ntop(AF_INET, &a4, v4, sizeof v4);
        } else if (inet_pton(AF_INET6, text, &a6) == 1) {
            if (IN6_IS_ADDR_V4MAPPED(&a6)) {
                if (v4[0] != '\0')
                    return -1;
                inet_ntop(AF_INET, &a6.s6_addr[12], v4, sizeof v4);
            } else {
                if (v6[0] != '\0')
                    return -1;
                inet_ntop(AF_INET6, &a6, v6, sizeof v6);
            }
        } else {
            return -1;
        }
        s += strcspn(s, ",");
        if (*s == '\0')
            break;
        s++;
    }
    memcpy(ipv4, v4, sizeof v4);
    memcpy(ipv6, v6, sizeof v6);
    return 0;
}

static void gw_dyn_hostnames(const char *v, gw_dyn_query_t *out)
{
    const char *s = v;
    out->have_hostname = 1;
    out->nhosts = 0;
    for (;;) {
        const char *b = s, *e = s + strcspn(s, ",");
        gw_trim(&b, &e);
        if (out->nhosts < GW_DYN_HOSTS_MAX) {
            char *h = out->host[out->nhosts];
            if (!gw_dyn_fqdn(b, (size_t)(e - b), h))
                h[0] = '\0';
        }
        out->nhosts++;
        s += strcspn(s, ",");
        if (*s == '\0')
            break;
        s++;
    }
}

static void gw_set_field(gw_dyn_query_t *out, const char *f)
{
    snprintf(out->field, sizeof out->field, "%s", f);
}

int gw_dyn_parse_query(const char *query, gw_dyn_query_t *out)
{
    char name[GW_DYN_NAME_MAX + 1], value[GW_DYN_QUERY_MAX + 1];
    int seen_host = 0, seen_ip = 0, seen_off = 0;
    size_t qlen = query ? strlen(query) : 0, pos = 0;

    memset(out, 0, sizeof *out);
    if (qlen > GW_DYN_QUERY_MAX) {
        gw_set_field(out, "query");
        return -1;
    }
    while (pos < qlen) {
        const char *seg = query + pos;
        size_t sl = strcspn(seg, "&");
        pos += sl + 1;
        if (sl == 0)
            continue;   /* "a=1&&b=2", a trailing '&' */
        const char *eq = memchr(seg, '=', sl);
        size_t nl = eq ? (size_t)(eq - seg) : sl;
        long n = nl <= GW_DYN_NAME_MAX * 3 ? gw_urldecode(seg, nl, name, GW_DYN_NAME_MAX) : -2;
        if (n == -2)
            continue;   /* a name this long is no parameter of ours */
        if (n < 0) {
            gw_set_field(out, "query");
            return -1;
        }
        const char *val = eq ? eq + 1 : seg + sl;
        if (gw_urldecode(val, (size_t)(seg + sl - val), value, GW_DYN_QUERY_MAX) < 0) {
            gw_set_field(out, "query");
            return -1;
        }
        int *seen = NULL;
        if (strcmp(name, "hostname") == 0)
            seen = &seen_host;
        else if (strcmp(name, "myip") == 0)
            seen = &seen_ip;
        else if (strcmp(name, "offline") == 0)
            seen = &seen_off;
        if (seen == NULL)
            continue;   /* wildcard, mx, backmx, system and the unknown: ignored */
        if (*seen) {
            gw_set_field(out, name);
            return -1;
        }
        *seen = 1;
        if (seen == &seen_host) {
            gw_dyn_hostnames(value, out);
        } else if (seen == &seen_ip) {
            if (gw_dyn_parse_myip(value, out->ipv4, out->ipv6) != 0) {
                gw_set_field(out, "myip");
                return -1;
            }
        } else {
            if (strcasecmp(value, "yes") == 0)
                out->offline = 1;
            else if (strcasecmp(value, "no") == 0 || value[0] == '\0')
                out->offline = 0;
            else {
                gw_set_field(out, "offline");
                return -1;
            }
        }
    }
    return 0;
}

int gw_dyn_parse_basic(const char *authorization, gw_dyn_cred_t *out)
{
    uint8_t raw[GW_DYN_AUTH_MAX];
    char text[GW_DYN_AUTH_MAX + 1];
    gw_dyn_cred_t c;
    int rc = -1;

    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);
    if (authorization == NULL || strncasecmp(authorization, "Basic ", 6) != 0)
        goto out;
    const char *b = authorization + 6, *e = b + strlen(b);
    gw_trim(&b, &e);
    size_t n = (size_t)(e - b), pad = 0;
    if (n == 0 || n % 4 != 0 || n > GW_DYN_AUTH_MAX)
        goto out;
    for (size_t i = 0; i < n; i++) {
        char ch = b[i];
        if (ch == '=') {
            if (i < n - 2)
                goto out;
            pad++;
        } else if (pad > 0 || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                                (ch >= '0' && ch <= '9') || ch == '+' || ch == '/')) {
            goto out;
        }
    }
    int dl = EVP_DecodeBlock(raw, (const unsigned char *)b, (int)n);
    if (dl < 0 || (size_t)dl < pad)
        goto out;
    size_t rl = (size_t)dl - pad;
    if (rl >= sizeof text)
        goto out;
    memcpy(text, raw, rl);
    text[rl] = '\0';
    if (strlen(text) != rl)     /* a NUL inside */
        goto out;
    char *colon = strchr(text, ':');
    if (colon == NULL)
        goto out;
    size_t ul = (size_t)(colon - text);
    if (ul == 0 || ul > 32 || cmn_mac_canon(text, ul, c.device_id) != CMN_MAC_OK)
        goto out;
    const char *pw = colon + 1, *dot = strchr(pw, '.');
    size_t kidlen;
    if (dot == NULL || cmn_keyref_parse(pw, (size_t)(dot - pw), &kidlen, &c.generation) != 0)
        goto out;
    memcpy(c.kid, pw, kidlen);
    if (strlen(dot + 1) != CMN_SECRET_B64_LEN ||
        cmn_b64url_decode(dot + 1, CMN_SECRET_B64_LEN, c.password, sizeof c.password) !=
            CMN_SECRET_LEN)
        goto out;
    *out = c;
    rc = 0;
out:
    cmn_wipe(raw, sizeof raw);
    cmn_wipe(text, sizeof text);
    cmn_wipe(&c, sizeof c);
    return rc;
}
