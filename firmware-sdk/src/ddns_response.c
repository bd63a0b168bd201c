/* ddns_response: the gateway's answer (PROTOCOL.md section 6).
 *
 * The parser only reads inside the given span and checks every index
 * against its length before use. The addresses of good, nochg, badaddr and
 * moved are taken as the words they are; ddns_ipv4_check() and ddns_ipv6_check()
 * (ddns_check.c) check their syntax. */
#include "ddns_internal.h"

#include <string.h>

/* Status byte of a token: the status modulo 256. Every status of the
 * protocol gives one with bit 7 set, which no token character has, and
 * only 200 is below 256. */
#define STATUS_BYTE(status) ((status) & 0xffu)

/* Each token as its text and its status byte, in the order of
 * ddns_result_t from DDNS_RESULT_GOOD. */
static const uint8_t tokens[] = {
    'g', 'o', 'o', 'd', STATUS_BYTE(200),
    'n', 'o', 'c', 'h', 'g', STATUS_BYTE(200),
    'b', 'a', 'd', 'a', 'd', 'd', 'r', STATUS_BYTE(403),
    'b', 'a', 'd', 'r', 'e', 'q', 'u', 'e', 's', 't', STATUS_BYTE(400),
    'b', 'a', 'd', 'a', 'u', 't', 'h', STATUS_BYTE(401),
    'b', 'a', 'd', 't', 'i', 'm', 'e', STATUS_BYTE(401),
    'd', 'i', 's', 'a', 'b', 'l', 'e', 'd', STATUS_BYTE(403),
    'n', 'o', 't', 'f', 'o', 'u', 'n', 'd', STATUS_BYTE(404),
    'r', 'e', 'p', 'l', 'a', 'y', STATUS_BYTE(409),
    'r', 'a', 't', 'e', 'l', 'i', 'm', 'i', 't', STATUS_BYTE(429),
    '9', '1', '1', STATUS_BYTE(503),
    'b', 'a', 'd', 'a', 'g', 'e', 'n', 't', STATUS_BYTE(403),
    'm', 'o', 'v', 'e', 'd', STATUS_BYTE(409),
};

#define NRESULTS 14u

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
    const uint8_t *t = tokens;
    size_t nw = 0, i, start = 0, line = body.len - 1u;
    unsigned r;
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
            if (i == start)
                return DDNS_E_RESP_FORMAT;
            if (nw < 3u)
                w[nw] = ddns_span(p + start, i - start);
            nw++;
            start = i + 1u;
        } else if (!DDNS__IN(c, 0x21, 0x7e)) {
            return DDNS_E_RESP_FORMAT;
        }
    }

    for (r = 1;; r++) {
        if (r == NRESULTS)
            return DDNS_E_RESP_TOKEN;
        /* the word's bytes are below 0x80: a match stops at the status */
        for (i = 0; i < w[0].len && t[i] == w[0].ptr[i]; i++)
            ;
        if (i == w[0].len && t[i] >= 0x80u)
            break;
        while (*t++ < 0x80u)
            ;
    }
    if (status - t[i] != (t[i] == STATUS_BYTE(200) ? 0u : 256u))
        return DDNS_E_RESP_STATUS;

    nw--;  /* data words */
    if (r <= DDNS_RESULT_BADADDR || r == DDNS_RESULT_MOVED) {
        /* one or two addresses (IPv4 first): recorded, or refused; moved:
         * the connection's address */
        if (nw - 1u >= 2u - (r == DDNS_RESULT_MOVED))
            return DDNS_E_RESP_DATA;
        out->naddrs = (unsigned)nw;
        memcpy(out->addr, &w[1], nw * sizeof w[1]);
    } else if (r == DDNS_RESULT_BADTIME || r == DDNS_RESULT_RATELIMIT) {
        if (nw != 1u || !ddns__parse_dec(w[1].ptr, w[1].len, &v))
            return DDNS_E_RESP_DATA;
        if (r == DDNS_RESULT_BADTIME)
            out->server_time = v;
        else if (v > UINT32_MAX)
            return DDNS_E_RESP_DATA;
        else
            out->retry_after = (uint32_t)v;
    } else {
        if (nw != (r == DDNS_RESULT_BADREQUEST))
            return DDNS_E_RESP_DATA;
        memcpy(&out->detail, &w[1], nw * sizeof w[1]);   /* nw is 0 or 1 */
    }
    out->result = (ddns_result_t)r;
    return DDNS_OK;
}
