/* ddns_response: the gateway's answer (PROTOCOL.md section 6).
 *
 * The parser only reads inside the given span and checks every index
 * against its length before use. Addresses are checked for their character
 * sets (ddns_ipv4_check() and ddns_ipv6_check() check the full syntax). */
#include "ddns_internal.h"

#include <string.h>

const char ddns__tokens[] =
    "good\0nochg\0badrequest\0badauth\0badtime\0disabled\0notfound\0replay\0ratelimit\0" "911";

/* HTTP status of each result, indexed by ddns_result_t. */
static const uint16_t statuses[] = { 0, 200, 200, 400, 401, 401, 403, 404, 409, 429, 503 };

#define NRESULTS 11u

bool ddns__parse_dec(const uint8_t *p, size_t n, uint64_t *value)
{
    /* In two 32-bit halves: v * 10 as v * 8 + v * 2 with the carries, so
     * that no 64-bit multiplication (a library call on Cortex-M0) is
     * needed. */
    uint32_t hi = 0, lo = 0, d, x2, sum;
    size_t i;

    if (n - 1u >= 19u)  /* 1 to 19 digits: no overflow */
        return false;
    for (i = 0; i < n; i++) {
        d = (uint32_t)p[i] - '0';
        if (d > 9u)
            return false;
        x2 = lo << 1;
        sum = x2 + (lo << 3);
        hi = (hi << 3) + (hi << 1) + (lo >> 29) + (lo >> 31) + (sum < x2);
        lo = sum + d;
        hi += lo < d;
    }
    *value = ((uint64_t)hi << 32) | lo;
    return true;
}

ddns_err_t ddns_response_parse(unsigned status, ddns_span_t body, ddns_response_t *out)
{
    ddns_span_t w[4];   /* token, two data words, and a fourth to see extra ones */
    const uint8_t *p = body.ptr;
    const char *t = ddns__tokens;
    size_t nw = 0, i, start = 0, line = body.len - 1u;
    unsigned r;
    uint64_t v = 0;
    bool ok;

    if (out == NULL)
        return DDNS_E_NULL;
    memset(out, 0, sizeof *out);
    if (p == NULL && body.len > 0)
        return DDNS_E_NULL;
    /* One line of printable ASCII ended by LF, words separated by single
     * spaces (an empty word is a format error). */
    if (line >= DDNS_RESPONSE_BODY_MAX || p[line] != '\n')
        return DDNS_E_RESP_FORMAT;
    for (i = 0; i <= line; i++) {
        if (i < line && DDNS__IN(p[i], 0x21, 0x7e))
            continue;
        if (i == start || (i < line && p[i] != ' '))
            return DDNS_E_RESP_FORMAT;
        if (nw < 4u)
            w[nw++] = ddns_span(p + start, i - start);
        start = i + 1u;
    }

    for (r = 1; r < NRESULTS; r++) {
        for (i = 0; i < w[0].len && (uint8_t)t[i] == w[0].ptr[i]; i++)
            ;
        if (i == w[0].len && t[i] == '\0')
            break;
        while (*t++ != '\0')
            ;
    }
    if (r == NRESULTS)
        return DDNS_E_RESP_TOKEN;
    if (statuses[r] != status)
        return DDNS_E_RESP_STATUS;

    nw--;  /* data words */
    if (r <= DDNS_RESULT_NOCHG)
        /* an IPv4 or an IPv6 address, or both in this order */
        ok = nw - 1u < 2u &&
             (ddns__text_ok(w[1], 5) || (nw == 1u && ddns__text_ok(w[1], 6))) &&
             (nw == 1u || ddns__text_ok(w[2], 6));
    else if (r == DDNS_RESULT_BADTIME || r == DDNS_RESULT_RATELIMIT)
        ok = nw == 1u && ddns__parse_dec(w[1].ptr, w[1].len, &v) &&
             (r == DDNS_RESULT_BADTIME || v <= UINT32_MAX);
    else
        ok = nw == (r == DDNS_RESULT_BADREQUEST);
    if (!ok)
        return DDNS_E_RESP_DATA;
    out->result = (ddns_result_t)r;
    if (r <= DDNS_RESULT_NOCHG) {
        out->naddrs = (unsigned)nw;
        out->addr[0] = w[1];
        if (nw == 2u)
            out->addr[1] = w[2];
    }
    if (r == DDNS_RESULT_BADREQUEST)
        out->detail = w[1];
    if (r == DDNS_RESULT_BADTIME)
        out->server_time = v;
    if (r == DDNS_RESULT_RATELIMIT)
        out->retry_after = (uint32_t)v;
    return DDNS_OK;
}
