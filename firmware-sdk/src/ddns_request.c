/* ddns_request: the string to sign and the complete signed update request
 * (PROTOCOL.md section 4), and ddns_wipe().
 *
 * Both layouts are templates: literal text with one-byte codes for the
 * fields, interpreted by one function that either counts the bytes or
 * writes them. Builders first check the fields and count, compare with the
 * caller's buffer and only then write, so a short buffer is never touched.
 *
 * The builders check every field for what keeps the HTTP message intact:
 * lengths and character sets (no CR, LF, blank or '&' can enter a header
 * or the body). ddns_request_check() (ddns_check.c) adds the full syntax of
 * the device id and the addresses.
 *
 * Template codes (never CR or LF, which are literal text):
 *   0x01 to 0x06  the span host, user_agent, device_id, kid, ipv4, ipv6
 *   0x07          ts in decimal
 *   0x08          Content-Length: the length of the body, in decimal
 *   0x09          nonce in lowercase hex
 *   0x0b          MAC in lowercase hex (the sig field)
 *   0x0c          "&" when ipv4 is present (separates ipv4 from ipv6)
 *   0x0e          continue with the body template
 *   0x11 to 0x16  skip to the next 0x1f when span 0x01 to 0x06 is empty
 *   0x1f          end of such a section */
#include "ddns_internal.h"

#include <string.h>

#define C_TS    7u
#define C_CLEN  8u
#define C_NONCE 9u
#define C_SIG   11u
#define C_AMP   12u
#define C_BODY  14u
#define C_IF    16u  /* 0x10 + span code */
#define C_END   31u

static const char tpl_body[] =
    "\x15" "ipv4=\x05\x1f"
    "\x16\x0c" "ipv6=\x06\x1f";

const char ddns__tpl_sign[] =
    "DDNS-HMAC-SHA256\nPOST\n/v1/update\n\x03\n\x04\n\x07\n\x09\n\x0e";

const char ddns__tpl_request[] =
    "POST /v1/update HTTP/1.1\r\nHost: \x01\r\n"
    "\x12" "User-Agent: \x02\r\n\x1f"
    "Authorization: DDNS-HMAC-SHA256 id=\x03,kid=\x04,ts=\x07,nonce=\x09,sig=\x0b\r\n"
    "Content-Type: application/x-www-form-urlencoded\r\n"
    "Content-Length: \x08\r\n\r\n\x0e";

/* Per span of the request, in code order: length limits, allowed byte
 * range, a range inside it that is not allowed (none when the first is
 * above the second) and the error. */
static const uint8_t rules[6][7] = {
    { 1, DDNS_HOST_MAX, 0x21, 0x7e, 1, 0, DDNS_E_HOST },
    { 0, DDNS_USER_AGENT_MAX, 0x20, 0x7e, 1, 0, DDNS_E_USER_AGENT },
    { DDNS_DEVICE_ID_LEN, DDNS_DEVICE_ID_LEN, '0', 'f', ':', '`', DDNS_E_DEVICE_ID },
    { 1, DDNS_KID_MAX, '0', 'z', ':', '`', DDNS_E_KID },
    /* the addresses are checked with '.' as '0' and A-F as a-f */
    { 0, DDNS_IPV4_MAX, '0', '9', 1, 0, DDNS_E_IPV4 },
    { 0, DDNS_IPV6_MAX, '0', 'f', ';', '`', DDNS_E_IPV6 },
};

/* The six spans open ddns_request_t, in code order. */
typedef char spans_first[offsetof(ddns_request_t, ipv6) == 5 * sizeof(ddns_span_t) ? 1 : -1];

static const ddns_span_t *span_of(const ddns_request_t *req, unsigned code)
{
    return (const ddns_span_t *)(const void *)((const uint8_t *)req +
                                                (code - 1u) * sizeof(ddns_span_t));
}

void ddns_wipe(void *p, size_t n)
{
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (n-- > 0)
        *v++ = 0;
}

bool ddns__text_ok(ddns_span_t s, unsigned code)
{
    const uint8_t *r = rules[code - 1u];
    size_t i;

    if (s.len < r[0] || s.len > r[1] || (s.ptr == NULL && s.len > 0))
        return false;
    for (i = 0; i < s.len; i++) {
        unsigned c = s.ptr[i];
        if (code >= 5u && (c == '.' || DDNS__IN(c, 'A', 'F')))
            c = c == '.' ? '0' : c | 0x20u;
        if (!DDNS__IN(c, r[2], r[3]) || (c >= r[4] && c <= r[5]) ||
            /* no blank at either end of the user agent */
            (c == ' ' && (i == 0 || i == s.len - 1u)))
            return false;
    }
    return true;
}

size_t ddns__emit(const ddns_request_t *req, const char *tpl, const uint8_t *mac, uint8_t *out)
{
    size_t n = 0;

    for (;;) {
        unsigned c = (uint8_t)*tpl++;
        uint8_t tmp[2 * DDNS_SHA256_LEN];
        const uint8_t *src = (const uint8_t *)tpl - 1;   /* literal: the byte itself */
        size_t len = 1, i;

        if (c == 0)
            return n;
        if (c < 0x20 && c != '\r' && c != '\n') {
            len = 0;
            if (c <= 6u) {
                /* Counting also checks: every span is counted before it is
                 * written, in the order of the request template. */
                if (out == NULL && !ddns__text_ok(*span_of(req, c), c))
                    return DDNS__EMIT_ERROR(rules[c - 1u][6]);
                src = span_of(req, c)->ptr;
                len = span_of(req, c)->len;
            } else if (c <= C_CLEN) {
                /* Binary to decimal by doubling a 12-digit decimal number
                 * once per bit (no division); every value is below 2^40. */
                uint64_t v = req->ts;
                if (v > DDNS_TS_MAX)
                    return DDNS__EMIT_ERROR(DDNS_E_TS);
                if (c == C_CLEN) {
                    v = req->ipv4.len > 0 ? req->ipv4.len + 5u : 0u;
                    if (req->ipv6.len > 0)
                        v += req->ipv6.len + 5u + (req->ipv4.len > 0);
                }
                for (i = 0; i < 12u; i++)
                    tmp[i] = '0';
                for (len = 0; len < 40u; len++, v <<= 1) {
                    unsigned carry = (unsigned)(v >> 39) & 1u;
                    for (i = 12; i-- > 0;) {
                        unsigned d = (tmp[i] - (unsigned)'0') * 2u + carry;
                        carry = d >= 10u;
                        tmp[i] = (uint8_t)('0' + d - 10u * carry);
                    }
                }
                for (src = tmp; src < tmp + 11 && *src == '0'; src++)
                    ;
                len = (size_t)(tmp + 12 - src);
            } else if (c <= C_SIG) {
                const uint8_t *bytes = c == C_NONCE ? req->nonce : mac;
                len = c == C_NONCE ? 2u * DDNS_NONCE_LEN : 2u * DDNS_SHA256_LEN;
                src = tmp;
                if (out != NULL)
                    for (i = 0; i < len; i++)
                        tmp[i] = ddns__hex_digit(((unsigned)bytes[i >> 1] >> ((~i & 1u) * 4u)) & 15u);
            } else if (c == C_AMP) {
                src = (const uint8_t *)"&";
                len = req->ipv4.len > 0;
            } else if (c == C_BODY) {
                tpl = tpl_body;
            } else if (c - C_IF - 1u < 6u && span_of(req, c - C_IF)->len == 0) {
                while (*tpl != C_END)
                    tpl++;
            }
        }
        if (out != NULL && len > 0)
            memcpy(out + n, src, len);
        n += len;
    }
}

ddns_err_t ddns__write(const ddns_request_t *req, const char *tpl, const uint8_t *mac,
                       uint8_t *out, size_t out_size, size_t *out_len)
{
    size_t n;

    if (out_len == NULL)
        return DDNS_E_NULL;
    *out_len = 0;
    if (req == NULL || (out == NULL && out_size > 0))
        return DDNS_E_NULL;
    /* Counting the request checks every field. */
    n = ddns__emit(req, ddns__tpl_request, NULL, NULL);
    if (n >= DDNS__EMIT_ERROR(DDNS_E_HTTP_LENGTH))
        return (ddns_err_t)(0u - n);
    if (tpl != ddns__tpl_request)
        n = ddns__emit(req, tpl, NULL, NULL);
    *out_len = n;
    if (n > out_size)
        return DDNS_E_BUFFER;
    if (tpl != ddns__tpl_request || mac != NULL)
        ddns__emit(req, tpl, mac, out);
    return DDNS_OK;
}

ddns_err_t ddns_request_size(const ddns_request_t *req, size_t *needed)
{
    ddns_err_t err = ddns__write(req, ddns__tpl_request, NULL, NULL, 0, needed);
    return err == DDNS_E_BUFFER ? DDNS_OK : err;
}

ddns_err_t ddns_request_string_to_sign(const ddns_request_t *req, uint8_t *out,
                                       size_t out_size, size_t *out_len)
{
    return ddns__write(req, ddns__tpl_sign, NULL, out, out_size, out_len);
}

ddns_err_t ddns_request_build_presigned(const ddns_request_t *req,
                                        const uint8_t mac[DDNS_SHA256_LEN], uint8_t *out,
                                        size_t out_size, size_t *out_len)
{
    return mac == NULL ? DDNS_E_NULL : ddns__write(req, ddns__tpl_request, mac, out, out_size,
                                                   out_len);
}
