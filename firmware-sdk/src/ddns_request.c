/* ddns_request: the layouts of the signed update request (PROTOCOL.md
 * section 4): the complete HTTP/1.1 request, the Authorization header
 * value, the body and the string to sign.
 *
 * All of them are one template: literal text with one-byte codes for the
 * fields, interpreted by ddns__request_layout(), which either counts the
 * bytes or writes them. Each part starts at its own place in the template:
 * the complete request contains the Authorization value and the body as
 * they are laid out on their own, and the string to sign continues with
 * the same body. The layout checks each field when it first meets it
 * while counting, compares the count with the caller's buffer and only
 * then writes, so a short buffer is never touched.
 *
 * The layouts check every field for what keeps the HTTP message intact:
 * lengths and the range of its bytes (no CR or LF can enter a header, no
 * blank, ',' or '&' a field of the Authorization header or the body).
 * ddns_request_check() (ddns_check.c) checks the full syntax of every
 * field.
 *
 * Template codes are the bytes from 0x80 (the literal text is ASCII):
 *   0x80 to 0x86  the field host, user_agent, device_id, kid, ipv4, ipv6,
 *                 peer (the address learnt in req->state, when the request
 *                 names neither ipv4 nor ipv6)
 *   0x87          ts in decimal
 *   0x88          Content-Length: the length of the body, in decimal
 *   0x89          nonce in lowercase hex
 *   0x8a          MAC in lowercase hex (the sig field)
 *   0x8a + p      the end of part p, where its layout stops:
 *   0x8b            the Authorization value (p = DDNS__PART_AUTHORIZATION)
 *   0x8e            the head of the string to sign (p =
 *                   DDNS__PART_SIGN_HEAD); the string to sign continues
 *                   with the body
 *   0xa0 to 0xa6  skip to the next 0xaf when field 0x80 to 0x86 is empty
 *   0xaf          end of such a section
 */
#include "ddns_internal.h"

#include <string.h>

#define C_IF    0xa0u
#define C_END   0xafu

/* The parts, in the order of the template. The complete request contains
 * the Authorization value (which also checks the body's fields, as the MAC
 * covers them) and ends with the body. */
#define TPL_REQUEST_HEAD                                                 \
    "POST /v1/update HTTP/1.1\r\nHost: \x80\r\n"                         \
    "\xa1" "User-Agent: \x81\r\n\xaf" "Authorization: "
#define TPL_AUTHORIZATION                                                \
    "DDNS-HMAC-SHA256 id=\x82,kid=\x83,ts=\x87,nonce=\x89,sig=\x8a\x8b"
#define TPL_REQUEST_TAIL                                                 \
    "\r\nContent-Type: application/x-www-form-urlencoded\r\n"            \
    "Content-Length: \x88\r\n\r\n"
/* "ipv4=" and "ipv6=" for the addresses given, "&" between them when both
 * are; "peer=" for the learnt address when neither is. */
#define TPL_BODY                                                         \
    "\xa4" "ipv4=\x84\xaf" "\xa4\xa5&\xaf" "\xa5" "ipv6=\x85\xaf" "\xa6" "peer=\x86\xaf"
#define TPL_SIGN "DDNS-HMAC-SHA256\nPOST\n/v1/update\n\x82\n\x83\n\x87\n\x89\n\x8e"

static const char tpl[] =
    TPL_REQUEST_HEAD TPL_AUTHORIZATION TPL_REQUEST_TAIL TPL_BODY "\0" TPL_SIGN;

#define AT_BODY (sizeof(TPL_REQUEST_HEAD TPL_AUTHORIZATION TPL_REQUEST_TAIL) - 1u)
#define AT_SIGN (sizeof(TPL_REQUEST_HEAD TPL_AUTHORIZATION TPL_REQUEST_TAIL TPL_BODY))

/* Where each part starts in tpl, by uint32_t. */
static const uint8_t starts[DDNS__PART_SIGN_HEAD + 1] = {
    0, sizeof(TPL_REQUEST_HEAD) - 1u, AT_BODY, AT_SIGN, AT_SIGN,
};

/* Per field of the request, in code order: the fewest bytes, the most
 * bytes, the error, the lowest byte allowed (the highest is '~') and the
 * field's place in ddns_request_t (not used for the peer, whose error only
 * marks a learnt address the body cannot carry, which is left out).
 * Printable ASCII ends no line early; from '.' up there is no blank, ','
 * or '&' to add a field to the Authorization header or a parameter to the
 * body. */
static const uint8_t fields[7][5] = {
    { 1, DDNS_HOST_MAX, DDNS_E_HOST, '!', offsetof(ddns_request_t, host) },
    { 0, DDNS_USER_AGENT_MAX, DDNS_E_USER_AGENT, ' ', offsetof(ddns_request_t, user_agent) },
    { DDNS_DEVICE_ID_LEN, DDNS_DEVICE_ID_LEN, DDNS_E_DEVICE_ID, '.',
      offsetof(ddns_request_t, device_id) },
    { 1, DDNS_KID_MAX, DDNS_E_KID, '.', offsetof(ddns_request_t, kid) },
    { 0, DDNS_IPV4_MAX, DDNS_E_IPV4, '.', offsetof(ddns_request_t, ipv4) },
    { 0, DDNS_IPV6_MAX, DDNS_E_IPV6, '.', offsetof(ddns_request_t, ipv6) },
    { 0, DDNS_IPV6_MAX, DDNS_E_PEER, '.', 0 },
};

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

/* The layouts' check of field k (see fields). */
static ddns_err_t field_check(ddns_span_t s, unsigned k)
{
    const uint8_t *l = fields[k];
    size_t i;

    if (s.len < l[0] || s.len > l[1] || (s.ptr == NULL && s.len > 0))
        return (ddns_err_t)l[2];
    for (i = 0; i < s.len; i++)
        if (!DDNS__IN(s.ptr[i], l[3], '~'))
            return (ddns_err_t)l[2];
    return DDNS_OK;
}

/* Field k of req: the member at the place fields[k] gives, or (peer) the
 * address learnt in req->state when req names neither ipv4 nor ipv6. */
static ddns_span_t field(const ddns_request_t *req, unsigned k)
{
    const ddns_state_t *st = req->state;

    if (k < 6u)
        return *(const ddns_span_t *)(const void *)((const uint8_t *)req + fields[k][4]);
    if (st == NULL || (req->ipv4.len | req->ipv6.len) != 0)
        return ddns_span(NULL, 0);
    return ddns_span(st->peer, st->peer_len);
}

ddns_err_t ddns__request_layout(const ddns_request_t *req, uint32_t part,
                               const uint8_t mac[DDNS_SHA256_LEN], uint8_t *out,
                               size_t out_size, size_t *out_len)
{
    /* Three passes: the body's length (for Content-Length), the part's
     * length and its checks, then writing. */
    unsigned pass = 0;
    size_t body_len = 0;

    if (out_len == NULL)
        return DDNS_E_NULL;
    *out_len = 0;
    /* mac is read only when writing a part that carries it */
    if (req == NULL ||
        (out_size > 0 && (out == NULL || (mac == NULL && part < DDNS__PART_BODY))))
        return DDNS_E_NULL;
    for (;;) {
        const uint8_t *t = (const uint8_t *)tpl + starts[pass == 0u ? DDNS__PART_BODY : part];
        size_t n = 0;
        unsigned c;

        while ((c = *t++) != 0) {
            uint8_t tmp[12];
            const uint8_t *src = t - 1;   /* literal: the byte itself */
            size_t len = 1, i;
            unsigned hex = 0, k = c & 15u;

            if (c >= 0x80u) {
                len = 0;
                if (k < 7u) {
                    ddns_span_t s = field(req, k);
                    ddns_err_t err = field_check(s, k);
                    if (c >= C_IF) {
                        /* an empty field's section is left out, and so is
                         * a learnt address the body cannot carry */
                        if (s.len == 0 || err == DDNS_E_PEER)
                            while (*t != C_END)
                                t++;
                    } else {
                        /* the fields in the order of their errors: each
                         * part has them in the order of ddns_request_t */
                        if (err != DDNS_OK && pass > 0u)
                            return err;
                        src = s.ptr;
                        len = s.len;
                    }
                } else if (k < 9u) {
                    uint64_t v = req->ts;
                    if (k == 8u) {
                        v = body_len;
                    } else if (v > DDNS_TS_MAX) {
                        return DDNS_E_TS;
                    }
                    src = decimal(tmp, v);
                    len = (size_t)(tmp + 12 - src);
                } else if (k < 11u) {
                    /* the nonce or the MAC, in hex when written */
                    src = k == 9u ? req->nonce : mac;
                    len = k == 9u ? 2u * DDNS_NONCE_LEN : 2u * DDNS_SHA256_LEN;
                    hex = 1;
                } else if (k == part + 10u) {
                    break;   /* the end of this part: 0x8b or 0x8e */
                } else if (k == 14u) {
                    t = (const uint8_t *)tpl + AT_BODY;
                }
            }
            for (i = 0; pass == 2u && i < len; i++) {
                /* in hex, the high nibble of each byte first */
                unsigned nibble = (unsigned)src[i >> 1] >> ((~i & 1u) * 4u) & 15u;
                out[n + i] = hex ? ddns__hex_digit(nibble) : src[i];
            }
            n += len;
        }
        if (pass++ == 0u) {
            body_len = n;
            continue;
        }
        if (pass == 3u)
            return DDNS_OK;
        *out_len = n;
        if (n > out_size)
            return DDNS_E_BUFFER;
    }
}
