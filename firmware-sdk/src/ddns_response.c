/* ddns_response: the gateway's answer (PROTOCOL.md section 6).
 *
 * The parser only reads inside the given span and checks every index
 * against its length before use. Addresses are checked for their character
 * sets (ddns_ipv4_check() and ddns_ipv6_check() check the full syntax). */
#include "ddns_internal.h"

#include <string.h>

/* Status byte of a token: the hundreds in the top three bits, the rest
 * (below 32 for every status of the protocol) in the low five. */
#define STATUS_BYTE(status) (((status) / 100u) << 5 | (status) % 100u)

/* Each token as its length, its status byte, its text and a NUL. */
const uint8_t ddns__tokens[] = {
    4, STATUS_BYTE(200), 'g', 'o', 'o', 'd', 0,
    5, STATUS_BYTE(200), 'n', 'o', 'c', 'h', 'g', 0,
    10, STATUS_BYTE(400), 'b', 'a', 'd', 'r', 'e', 'q', 'u', 'e', 's', 't', 0,
    7, STATUS_BYTE(401), 'b', 'a', 'd', 'a', 'u', 't', 'h', 0,
    7, STATUS_BYTE(401), 'b', 'a', 'd', 't', 'i', 'm', 'e', 0,
    8, STATUS_BYTE(403), 'd', 'i', 's', 'a', 'b', 'l', 'e', 'd', 0,
    8, STATUS_BYTE(404), 'n', 'o', 't', 'f', 'o', 'u', 'n', 'd', 0,
    6, STATUS_BYTE(409), 'r', 'e', 'p', 'l', 'a', 'y', 0,
    9, STATUS_BYTE(429), 'r', 'a', 't', 'e', 'l', 'i', 'm', 'i', 't', 0,
    3, STATUS_BYTE(503), '9', '1', '1', 0,
    8, STATUS_BYTE(403), 'b', 'a', 'd', 'a', 'g', 'e', 'n', 't', 0,
};

#define NRESULTS 12u

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
    ddns_span_t w[3];   /* the token and up to two data words */
    const uint8_t *p = body.ptr;
    const uint8_t *t = ddns__tokens;
    size_t nw = 0, i, start = 0, line = body.len - 1u;
    unsigned r, prev = ' ';
    uint64_t v;

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
        unsigned c = p[i];
        if (c == ' ' || i == line) {
            if (prev == ' ')
                return DDNS_E_RESP_FORMAT;
            if (nw < 3u)
                w[nw] = ddns_span(p + start, i - start);
            nw++;
            start = i + 1u;
        } else if (!DDNS__IN(c, 0x21, 0x7e)) {
            return DDNS_E_RESP_FORMAT;
        }
        prev = c;
    }

    for (r = 1;; r++) {
        if (r == NRESULTS)
            return DDNS_E_RESP_TOKEN;
        for (i = 0; i < w[0].len && t[2 + i] == w[0].ptr[i]; i++)
            ;
        if (t[0] == i && i == w[0].len)
            break;
        t += t[0] + 3u;
    }
    if ((t[1] >> 5) * 100u + (t[1] & 31u) != status)
        return DDNS_E_RESP_STATUS;

    nw--;  /* data words */
    if (r <= DDNS_RESULT_NOCHG) {
        /* an IPv4 or an IPv6 address, or both in this order (the IPv4
         * characters are a subset of the IPv6 ones) */
        if (nw - 1u >= 2u || !ddns__text_ok(w[nw], 5) || (nw == 2u && !ddns__text_ok(w[1], 4)))
            return DDNS_E_RESP_DATA;
        out->naddrs = (unsigned)nw;
        memcpy(out->addr, &w[1], nw * sizeof w[1]);
    } else if (r == DDNS_RESULT_BADTIME || r == DDNS_RESULT_RATELIMIT) {
        if (nw != 1u || !ddns__parse_dec(w[1].ptr, w[1].len, &v) ||
            (r == DDNS_RESULT_RATELIMIT && v > UINT32_MAX))
            return DDNS_E_RESP_DATA;
        if (r == DDNS_RESULT_BADTIME)
            out->server_time = v;
        else
            out->retry_after = (uint32_t)v;
    } else {
        if (nw != (r == DDNS_RESULT_BADREQUEST))
            return DDNS_E_RESP_DATA;
        if (nw > 0)
            out->detail = w[1];
    }
    out->result = (ddns_result_t)r;
    return DDNS_OK;
}
