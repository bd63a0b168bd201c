/* ddns_request: the string to sign and the complete signed update request
 * (PROTOCOL.md section 4).
 *
 * Both layouts are templates: literal text with one-byte codes for the
 * fields, interpreted by ddns_request_build_presigned(), which either counts
 * the bytes or writes them; the string to sign is the same function with
 * the marker SIGN for the MAC. It checks each field when it first meets it
 * while counting, compares the count with the caller's buffer and only then
 * writes, so a short buffer is never touched.
 *
 * The builders check every field for what keeps the HTTP message intact:
 * lengths and the range of its bytes (no CR or LF can enter a header, no
 * blank, ',' or '&' a field of the Authorization header or the body).
 * ddns_request_check() (ddns_check.c) checks the full syntax of every
 * field.
 *
 * Template codes are the bytes from 0x80 (the literal text is ASCII):
 *   0x80 to 0x85  the span host, user_agent, device_id, kid, ipv4, ipv6
 *   0x86          ts in decimal
 *   0x87          Content-Length: the length of the body, in decimal
 *   0x88          nonce in lowercase hex
 *   0x89          MAC in lowercase hex (the sig field)
 *   0x8a          continue with the body (BODY, the end of tpl_request)
 *   0x90 to 0x95  skip to the next 0x9f when span 0x80 to 0x85 is empty
 *   0x9f          end of such a section
 */
#include "ddns_internal.h"

#include <string.h>

#define C_IF   0x90u
#define C_END  0x9fu

/* The body: "ipv4=" and "ipv6=" for the addresses given, "&" between
 * them when both are. It ends the request layout, and the string to sign
 * continues with it. */
#define BODY "\x94" "ipv4=\x84\x9f" "\x94\x95&\x9f" "\x95" "ipv6=\x85\x9f"

static const char tpl_sign[] =
    "DDNS-HMAC-SHA256\nPOST\n/v1/update\n\x82\n\x83\n\x86\n\x88\n\x8a";

/* The MAC argument that selects the string to sign: no caller can pass the
 * address of this file's template. */
#define SIGN ((const uint8_t *)tpl_sign)

static const char tpl_request[] =
    "POST /v1/update HTTP/1.1\r\nHost: \x80\r\n"
    "\x91" "User-Agent: \x81\r\n\x9f"
    "Authorization: DDNS-HMAC-SHA256 id=\x82,kid=\x83,ts=\x86,nonce=\x88,sig=\x89\r\n"
    "Content-Type: application/x-www-form-urlencoded\r\n"
    "Content-Length: \x87\r\n\r\n" BODY;

/* Per span of the request, in code order: the fewest bytes, the most
 * bytes, the error, and the lowest byte allowed (the highest is '~').
 * Printable ASCII ends no line early; from '.' up there is no blank, ','
 * or '&' to add a field to the Authorization header or a parameter to the
 * body. */
static const uint8_t limits[6][4] = {
    { 1, DDNS_HOST_MAX, DDNS_E_HOST, '!' },
    { 0, DDNS_USER_AGENT_MAX, DDNS_E_USER_AGENT, ' ' },
    { DDNS_DEVICE_ID_LEN, DDNS_DEVICE_ID_LEN, DDNS_E_DEVICE_ID, '.' },
    { 1, DDNS_KID_MAX, DDNS_E_KID, '.' },
    { 0, DDNS_IPV4_MAX, DDNS_E_IPV4, '.' },
    { 0, DDNS_IPV6_MAX, DDNS_E_IPV6, '.' },
};

/* The six spans open ddns_request_t, in code order. */
typedef char spans_first[offsetof(ddns_request_t, ipv6) == 5 * sizeof(ddns_span_t) ? 1 : -1];

/* Writes v (below 2^40) in decimal at the end of tmp[12]; returns where
 * the digits start. Each digit is the remainder of a long division by 10,
 * one bit at a time, so there is no division instruction or library call:
 * in the 40 bits of hi (the top 8) and lo, the dividend leaves at the top
 * (bit 7 of hi) while the quotient enters at the bottom, so after 40 steps
 * the quotient is in place for the next digit. Two 32-bit words rather
 * than one 64-bit one keep the shifts short on Cortex-M0. */
DDNS__NOINLINE static uint8_t *decimal(uint8_t tmp[12], uint64_t v)
{
    uint32_t hi = (uint32_t)(v >> 32), lo = (uint32_t)v;
    uint8_t *n = tmp + 12;

    do {
        unsigned rem = 0, i;
        for (i = 0; i < 40u; i++) {
            rem = rem * 2u + (hi >> 7 & 1u);
            hi = hi << 1 | lo >> 31;
            lo <<= 1;
            if (rem >= 10u) {
                rem -= 10u;
                lo |= 1u;
            }
        }
        hi &= 0xffu;
        *--n = (uint8_t)('0' + rem);
    } while ((hi | lo) != 0);
    return n;
}

/* The builders' check of span k (see limits). */
static ddns_err_t span_check(ddns_span_t s, unsigned k)
{
    const uint8_t *l = limits[k];
    size_t i;

    if (s.len < l[0] || s.len > l[1] || (s.ptr == NULL && s.len > 0))
        return (ddns_err_t)l[2];
    for (i = 0; i < s.len; i++)
        if (!DDNS__IN(s.ptr[i], l[3], '~'))
            return (ddns_err_t)l[2];
    return DDNS_OK;
}

ddns_err_t ddns_request_build_presigned(const ddns_request_t *req,
                                        const uint8_t mac[DDNS_SHA256_LEN], uint8_t *out,
                                        size_t out_size, size_t *out_len)
{
    const ddns_span_t *spans = (const ddns_span_t *)(const void *)req;
    uint8_t *dst = NULL;   /* first counting, then writing */

    if (out_len == NULL)
        return DDNS_E_NULL;
    *out_len = 0;
    if (req == NULL || mac == NULL || (out == NULL && out_size > 0))
        return DDNS_E_NULL;
    for (;;) {
        const uint8_t *t = (const uint8_t *)(mac == SIGN ? tpl_sign : tpl_request);
        size_t n = 0;
        unsigned c;

        while ((c = *t++) != 0) {
            uint8_t tmp[12];
            const uint8_t *src = t - 1;   /* literal: the byte itself */
            size_t len = 1, i;
            unsigned hex = 0, k = c & 15u;

            if (c >= 0x80u) {
                len = 0;
                if (k < 6u) {
                    if (c >= C_IF) {
                        if (spans[k].len == 0)
                            while (*t != C_END)
                                t++;
                    } else {
                        /* the fields in the order of their errors: each
                         * layout has them in the order of ddns_request_t
                         * (the string to sign from the device id on) */
                        ddns_err_t err = span_check(spans[k], k);
                        if (err != DDNS_OK)
                            return err;
                        src = spans[k].ptr;
                        len = spans[k].len;
                    }
                } else if (k < 8u) {
                    uint64_t v = req->ts;
                    if (k == 7u) {
                        /* the body: "ipv4=" a, "ipv6=" b, "&" between them */
                        size_t a = req->ipv4.len, b = req->ipv6.len;
                        v = (a > 0 ? a + 5u : 0u) + (b > 0 ? b + 5u + (a > 0) : 0u);
                    } else if (v > DDNS_TS_MAX) {
                        return DDNS_E_TS;
                    }
                    src = decimal(tmp, v);
                    len = (size_t)(tmp + 12 - src);
                } else if (k < 10u) {
                    /* the nonce or the MAC, in hex when written */
                    src = k == 8u ? req->nonce : mac;
                    len = k == 8u ? 2u * DDNS_NONCE_LEN : 2u * DDNS_SHA256_LEN;
                    hex = 1;
                } else if (k == 10u) {
                    t = (const uint8_t *)tpl_request + sizeof tpl_request - sizeof BODY;
                }
            }
            for (i = 0; dst != NULL && i < len; i++, n++) {
                /* in hex, the high nibble of each byte first */
                unsigned nibble = (unsigned)src[i >> 1] >> ((~i & 1u) * 4u) & 15u;
                dst[n] = hex ? ddns__hex_digit(nibble) : src[i];
            }
            if (dst == NULL)
                n += len;
        }
        if (dst != NULL)
            return DDNS_OK;
        *out_len = n;
        if (n > out_size)
            return DDNS_E_BUFFER;
        dst = out;
    }
}

ddns_err_t ddns_request_string_to_sign(const ddns_request_t *req, uint8_t *out,
                                       size_t out_size, size_t *out_len)
{
    return ddns_request_build_presigned(req, SIGN, out, out_size, out_len);
}
