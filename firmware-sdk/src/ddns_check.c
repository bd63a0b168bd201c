/* ddns_check: the full syntax checks (optional module). The device id
 * (PROTOCOL.md section 1), the key reference (section 3), IPv4 / IPv6
 * address text as
 * inet_pton() accepts it, and every field of a request, so that firmware
 * can refuse exactly the inputs the gateway would answer with "badrequest"
 * or "badauth" for. The request builders themselves check only what keeps
 * the HTTP message intact. */
#include "ddns_internal.h"
#include "ddns_check.h"

/* True when every byte of s is a digit or a lowercase letter up to last. */
static bool lower_alnum(ddns_span_t s, unsigned last)
{
    size_t i;

    if (s.ptr == NULL)
        return false;
    for (i = 0; i < s.len; i++)
        if (!DDNS__IN(s.ptr[i], '0', '9') && !DDNS__IN(s.ptr[i], 'a', last))
            return false;
    return true;
}

ddns_err_t ddns_device_id_check(ddns_span_t device_id)
{
    unsigned any = 0, c;
    size_t i;

    if (device_id.len != DDNS_DEVICE_ID_LEN || !lower_alnum(device_id, 'f'))
        return DDNS_E_DEVICE_ID;
    for (i = 0; i < DDNS_DEVICE_ID_LEN; i++)
        any |= device_id.ptr[i] ^ (unsigned)'0';
    if (any == 0)
        return DDNS_E_DEVICE_ID_ZERO;
    /* The low bit of the first octet is the multicast bit; the value of a
     * digit a-f has the opposite parity of its character code. */
    c = device_id.ptr[1];
    return ((c ^ (c > '9')) & 1u) ? DDNS_E_DEVICE_ID_MULTICAST : DDNS_OK;
}

ddns_err_t ddns_kid_check(ddns_span_t kid)
{
    size_t n = 0, digits;

    if (kid.ptr == NULL)
        return DDNS_E_KID;
    while (n < kid.len && kid.ptr[n] != '/')
        n++;
    /* the key id: 1 to 16 of [a-z0-9] */
    if (n - 1u >= 16u || !lower_alnum(ddns_span(kid.ptr, n), 'z'))
        return DDNS_E_KID;
    if (n == kid.len)
        return DDNS_OK;
    /* "/" and a generation of 1 to 7 digits, no leading zero */
    digits = kid.len - n - 1u;
    if (digits - 1u >= 7u || kid.ptr[n + 1u] == '0')
        return DDNS_E_KID;
    while (++n < kid.len)
        if (!DDNS__IN(kid.ptr[n], '0', '9'))
            return DDNS_E_KID;
    return DDNS_OK;
}

/* Four decimal parts of 1 to 3 digits, each at most 255, no leading zeros. */
static bool is_ipv4(const uint8_t *p, size_t n)
{
    unsigned parts = 0;
    size_t i = 0;

    for (;;) {
        unsigned value = 0;
        size_t start = i;
        while (i < n && DDNS__IN(p[i], '0', '9') && i - start < 3u)
            value = value * 10u + (unsigned)(p[i++] - '0');
        if (i == start || value > 255u || (i - start > 1u && p[start] == '0'))
            return false;
        if (++parts == 4u)
            return i == n;
        if (i == n || p[i] != '.')
            return false;
        i++;
    }
}

/* Groups of 1 to 4 hex digits separated by ":", at most one "::" standing
 * for at least one zero group, optionally ending in a dotted quad worth two
 * groups (RFC 4291 section 2.2). */
static bool is_ipv6(const uint8_t *p, size_t n)
{
    unsigned groups = 0;
    bool dcolon = false;
    size_t i = 0;

    if (n < 2u || n > DDNS_IPV6_MAX)
        return false;
    if (p[0] == ':') {
        if (p[1] != ':')
            return false;
        dcolon = true;
        i = 2;
    }
    while (i < n) {
        size_t start = i;
        while (i < n && (DDNS__IN(p[i], '0', '9') || DDNS__IN(p[i] | 0x20u, 'a', 'f')))
            i++;
        if (i < n && p[i] == '.')
            return is_ipv4(p + start, n - start) && (dcolon ? groups <= 5u : groups == 6u);
        if (i == start || i - start > 4u)
            return false;
        groups++;
        if (i == n)
            break;
        if (p[i] != ':' || ++i == n)
            return false; /* a bad character or a single trailing colon */
        if (p[i] == ':') {
            if (dcolon)
                return false;
            dcolon = true;
            i++;
        }
    }
    return dcolon ? groups <= 7u : groups == 8u;
}

ddns_err_t ddns_ipv4_check(ddns_span_t text)
{
    return text.ptr != NULL && is_ipv4(text.ptr, text.len) ? DDNS_OK : DDNS_E_IPV4;
}

ddns_err_t ddns_ipv6_check(ddns_span_t text)
{
    return text.ptr != NULL && is_ipv6(text.ptr, text.len) ? DDNS_OK : DDNS_E_IPV6;
}

ddns_err_t ddns_request_check(const ddns_request_t *req)
{
    size_t n;
    ddns_err_t err = ddns_request_size(req, &n), more[6];
    const ddns_state_t *st;
    ddns_span_t ua, peer;
    unsigned i;

    if (err == DDNS_E_NULL)
        return err;
    /* Beyond the builders' checks: a user agent without a blank at either
     * end, then the syntax of each field. ddns_err_t lists the errors of
     * the fields in their order, so the smallest is the first field's. */
    ua = req->user_agent;
    more[0] = ua.ptr != NULL && ua.len > 0 && (ua.ptr[0] == ' ' || ua.ptr[ua.len - 1u] == ' ')
                  ? DDNS_E_USER_AGENT : DDNS_OK;
    more[1] = ddns_device_id_check(req->device_id);
    more[2] = ddns_kid_check(req->kid);
    more[3] = req->ipv4.len > 0 ? ddns_ipv4_check(req->ipv4) : DDNS_OK;
    more[4] = req->ipv6.len > 0 ? ddns_ipv6_check(req->ipv6) : DDNS_OK;
    /* the learnt address, when the body is to carry it */
    st = req->state;
    more[5] = DDNS_OK;
    if (st != NULL && (req->ipv4.len | req->ipv6.len) == 0 && st->peer_len > 0) {
        peer = ddns_span(st->peer, st->peer_len);
        if (st->peer_len > DDNS_IPV6_MAX ||
            (ddns_ipv4_check(peer) != DDNS_OK && ddns_ipv6_check(peer) != DDNS_OK))
            more[5] = DDNS_E_PEER;
    }
    for (i = 0; i < 6u; i++)
        if (more[i] != DDNS_OK && (err == DDNS_OK || more[i] < err))
            err = more[i];
    return err;
}

ddns_err_t ddns_options_check(const ddns_options_t *opt)
{
    uint32_t min;

    if (opt == NULL)
        return DDNS_E_NULL;
    min = opt->min_interval;
    return min >= 1u && min <= opt->backoff_first && opt->backoff_first <= opt->backoff_max &&
                   opt->backoff_max <= DDNS_DELAY_MAX && min <= opt->keepalive &&
                   opt->keepalive <= DDNS_DELAY_MAX && min <= opt->retry_after_max &&
                   opt->retry_after_max <= DDNS_DELAY_MAX &&
                   opt->badtime_retry <= DDNS_DELAY_MAX
               ? DDNS_OK
               : DDNS_E_OPTIONS;
}
