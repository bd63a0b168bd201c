/* ddns_addr: syntax of IPv4 and IPv6 address text, matching what
 * inet_pton() accepts, so that the SDK refuses exactly the addresses the
 * gateway would answer with "badrequest ipv4" / "badrequest ipv6". */
#include "ddns_internal.h"

static bool is_hex(uint8_t c)
{
    return ddns__is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Four decimal parts of 1 to 3 digits, each at most 255, no leading zeros. */
static bool is_ipv4(const uint8_t *p, size_t n)
{
    unsigned parts = 0;
    size_t i = 0;

    if (n > DDNS_IPV4_MAX)
        return false;
    for (;;) {
        unsigned value = 0;
        size_t start = i;
        while (i < n && ddns__is_digit(p[i]) && i - start < 3) {
            value = value * 10u + (unsigned)(p[i] - '0');
            i++;
        }
        if (i == start || value > 255u || (i - start > 1 && p[start] == '0'))
            return false;
        parts++;
        if (i == n)
            break;
        if (p[i] != '.' || parts == 4)
            return false;
        i++;
    }
    return parts == 4;
}

/* Groups of 1 to 4 hex digits separated by ":", at most one "::" standing
 * for at least one zero group, optionally ending in a dotted quad worth two
 * groups (RFC 4291 section 2.2). */
static bool is_ipv6(const uint8_t *p, size_t n)
{
    unsigned groups = 0;
    bool dcolon = false;
    size_t i = 0;

    if (n < 2 || n > DDNS_IPV6_MAX)
        return false;
    if (p[0] == ':') {
        if (p[1] != ':')
            return false;
        dcolon = true;
        i = 2;
    }
    while (i < n) {
        size_t start = i;
        while (i < n && is_hex(p[i]))
            i++;
        if (i < n && p[i] == '.') {
            if (groups > 6 || !is_ipv4(p + start, n - start))
                return false;
            groups += 2;
            break;
        }
        if (i == start || i - start > 4)
            return false;
        groups++;
        if (i == n)
            break;
        if (p[i] != ':')
            return false;
        i++;
        if (i == n)
            return false; /* a single trailing colon */
        if (p[i] == ':') {
            if (dcolon)
                return false;
            dcolon = true;
            i++;
        }
    }
    return dcolon ? groups <= 7 : groups == 8;
}

ddns_err_t ddns_ipv4_check(ddns_span_t text)
{
    if (text.ptr == NULL || !is_ipv4(text.ptr, text.len))
        return DDNS_E_IPV4;
    return DDNS_OK;
}

ddns_err_t ddns_ipv6_check(ddns_span_t text)
{
    if (text.ptr == NULL || !is_ipv6(text.ptr, text.len))
        return DDNS_E_IPV6;
    return DDNS_OK;
}
