/* ddns_request: validation, string to sign and the complete signed update
 * request (PROTOCOL.md section 4).
 *
 * Every output is produced by one writer function per layout (body, string
 * to sign, request) that emits pieces into a sink. A sink either only counts
 * bytes, or copies them into a buffer, and may feed them to an HMAC as well.
 * Builders first run the layout with a counting sink, compare the size with
 * the caller's buffer and only then write, so a short buffer is never
 * touched. */
#include "ddns_internal.h"

#include <string.h>

typedef struct sink {
    uint8_t *buf;             /* NULL: count only */
    size_t len;               /* bytes emitted so far */
    ddns_hmac_sha256_t *hmac; /* non-NULL: bytes are also authenticated */
} sink_t;

static void put(sink_t *s, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (s->buf != NULL)
        memcpy(s->buf + s->len, p, n);
    if (s->hmac != NULL)
        ddns_hmac_sha256_update(s->hmac, p, n);
    s->len += n;
}

#define PUT_LIT(s, lit) put((s), (lit), sizeof(lit) - 1u)

static void put_span(sink_t *s, ddns_span_t sp)
{
    put(s, sp.ptr, sp.len);
}

static void put_dec(sink_t *s, uint64_t v)
{
    uint8_t tmp[20];
    size_t i = sizeof tmp;

    do {
        tmp[--i] = (uint8_t)('0' + (uint8_t)(v % 10u));
        v /= 10u;
    } while (v != 0);
    put(s, tmp + i, sizeof tmp - i);
}

static void put_hex(sink_t *s, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        uint8_t pair[2];
        pair[0] = (uint8_t)ddns__hex_digits[p[i] >> 4];
        pair[1] = (uint8_t)ddns__hex_digits[p[i] & 15u];
        put(s, pair, sizeof pair);
    }
}

/* ---- Validation ----------------------------------------------------------- */

static bool printable(uint8_t c)
{
    return c >= 0x20 && c <= 0x7e;
}

static ddns_err_t check_host(ddns_span_t h)
{
    size_t i;

    if (h.len == 0 || h.len > DDNS_HOST_MAX || h.ptr == NULL)
        return DDNS_E_HOST;
    for (i = 0; i < h.len; i++)
        if (!printable(h.ptr[i]) || h.ptr[i] == ' ')
            return DDNS_E_HOST;
    return DDNS_OK;
}

static ddns_err_t check_user_agent(ddns_span_t ua)
{
    size_t i;

    if (ua.len == 0)
        return DDNS_OK;
    if (ua.len > DDNS_USER_AGENT_MAX || ua.ptr == NULL)
        return DDNS_E_USER_AGENT;
    if (ua.ptr[0] == ' ' || ua.ptr[ua.len - 1] == ' ')
        return DDNS_E_USER_AGENT;
    for (i = 0; i < ua.len; i++)
        if (!printable(ua.ptr[i]))
            return DDNS_E_USER_AGENT;
    return DDNS_OK;
}

ddns_err_t ddns_request_check(const ddns_request_t *req)
{
    ddns_err_t err;

    if (req == NULL)
        return DDNS_E_NULL;
    if ((err = check_host(req->host)) != DDNS_OK)
        return err;
    if ((err = check_user_agent(req->user_agent)) != DDNS_OK)
        return err;
    if ((err = ddns_device_id_check(req->device_id)) != DDNS_OK)
        return err;
    if ((err = ddns_kid_check(req->kid)) != DDNS_OK)
        return err;
    if (req->ts > DDNS_TS_MAX)
        return DDNS_E_TS;
    if (req->ipv4.len > 0 && (err = ddns_ipv4_check(req->ipv4)) != DDNS_OK)
        return err;
    if (req->ipv6.len > 0 && (err = ddns_ipv6_check(req->ipv6)) != DDNS_OK)
        return err;
    return DDNS_OK;
}

/* ---- Layouts -------------------------------------------------------------- */

static void write_body(sink_t *s, const ddns_request_t *req)
{
    if (req->ipv4.len > 0) {
        PUT_LIT(s, "ipv4=");
        put_span(s, req->ipv4);
    }
    if (req->ipv6.len > 0) {
        if (req->ipv4.len > 0)
            PUT_LIT(s, "&");
        PUT_LIT(s, "ipv6=");
        put_span(s, req->ipv6);
    }
}

static void write_string_to_sign(sink_t *s, const ddns_request_t *req)
{
    PUT_LIT(s, "DDNS-HMAC-SHA256\nPOST\n/v1/update\n");
    put_span(s, req->device_id);
    PUT_LIT(s, "\n");
    put_span(s, req->kid);
    PUT_LIT(s, "\n");
    put_dec(s, req->ts);
    PUT_LIT(s, "\n");
    put_hex(s, req->nonce, DDNS_NONCE_LEN);
    PUT_LIT(s, "\n");
    write_body(s, req);
}

static void write_request(sink_t *s, const ddns_request_t *req,
                          const uint8_t mac[DDNS_SHA256_LEN])
{
    sink_t count = { NULL, 0, NULL };

    write_body(&count, req);

    PUT_LIT(s, "POST /v1/update HTTP/1.1\r\nHost: ");
    put_span(s, req->host);
    PUT_LIT(s, "\r\n");
    if (req->user_agent.len > 0) {
        PUT_LIT(s, "User-Agent: ");
        put_span(s, req->user_agent);
        PUT_LIT(s, "\r\n");
    }
    PUT_LIT(s, "Authorization: DDNS-HMAC-SHA256 id=");
    put_span(s, req->device_id);
    PUT_LIT(s, ",kid=");
    put_span(s, req->kid);
    PUT_LIT(s, ",ts=");
    put_dec(s, req->ts);
    PUT_LIT(s, ",nonce=");
    put_hex(s, req->nonce, DDNS_NONCE_LEN);
    PUT_LIT(s, ",sig=");
    put_hex(s, mac, DDNS_SHA256_LEN);
    PUT_LIT(s, "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ");
    put_dec(s, count.len);
    PUT_LIT(s, "\r\n\r\n");
    write_body(s, req);
}

/* ---- Public functions ----------------------------------------------------- */

/* Common argument checks of the buffer-writing functions. */
static ddns_err_t check_out(const ddns_request_t *req, const uint8_t *out, size_t out_size,
                            size_t *out_len)
{
    if (out_len == NULL)
        return DDNS_E_NULL;
    *out_len = 0;
    if (req == NULL || (out == NULL && out_size > 0))
        return DDNS_E_NULL;
    return ddns_request_check(req);
}

static void sign_checked(const ddns_request_t *req, const uint8_t secret[DDNS_SECRET_LEN],
                         uint8_t mac[DDNS_SHA256_LEN])
{
    ddns_hmac_sha256_t hmac;
    sink_t s = { NULL, 0, NULL };

    ddns_hmac_sha256_init(&hmac, secret, DDNS_SECRET_LEN);
    s.hmac = &hmac;
    write_string_to_sign(&s, req);
    ddns_hmac_sha256_final(&hmac, mac);  /* also wipes hmac */
}

static size_t request_size_checked(const ddns_request_t *req)
{
    static const uint8_t no_mac[DDNS_SHA256_LEN] = { 0 };
    sink_t s = { NULL, 0, NULL };

    write_request(&s, req, no_mac);
    return s.len;
}

ddns_err_t ddns_request_string_to_sign(const ddns_request_t *req, uint8_t *out,
                                       size_t out_size, size_t *out_len)
{
    sink_t s = { NULL, 0, NULL };
    ddns_err_t err = check_out(req, out, out_size, out_len);

    if (err != DDNS_OK)
        return err;
    write_string_to_sign(&s, req);
    *out_len = s.len;
    if (s.len > out_size)
        return DDNS_E_BUFFER;
    s.buf = out;
    s.len = 0;
    write_string_to_sign(&s, req);
    return DDNS_OK;
}

ddns_err_t ddns_request_sign(const ddns_request_t *req, const uint8_t secret[DDNS_SECRET_LEN],
                             uint8_t mac[DDNS_SHA256_LEN])
{
    ddns_err_t err;

    if (req == NULL || secret == NULL || mac == NULL)
        return DDNS_E_NULL;
    err = ddns_request_check(req);
    if (err != DDNS_OK)
        return err;
    sign_checked(req, secret, mac);
    return DDNS_OK;
}

ddns_err_t ddns_request_size(const ddns_request_t *req, size_t *needed)
{
    ddns_err_t err = check_out(req, NULL, 0, needed);

    if (err != DDNS_OK)
        return err;
    *needed = request_size_checked(req);
    return DDNS_OK;
}

ddns_err_t ddns_request_build_presigned(const ddns_request_t *req,
                                        const uint8_t mac[DDNS_SHA256_LEN], uint8_t *out,
                                        size_t out_size, size_t *out_len)
{
    sink_t s = { NULL, 0, NULL };
    ddns_err_t err = check_out(req, out, out_size, out_len);

    if (err != DDNS_OK)
        return err;
    if (mac == NULL)
        return DDNS_E_NULL;
    *out_len = request_size_checked(req);
    if (*out_len > out_size)
        return DDNS_E_BUFFER;
    s.buf = out;
    write_request(&s, req, mac);
    return DDNS_OK;
}

ddns_err_t ddns_request_build(const ddns_request_t *req, const uint8_t secret[DDNS_SECRET_LEN],
                              uint8_t *out, size_t out_size, size_t *out_len)
{
    uint8_t mac[DDNS_SHA256_LEN];
    sink_t s = { NULL, 0, NULL };
    ddns_err_t err = check_out(req, out, out_size, out_len);

    if (err != DDNS_OK)
        return err;
    if (secret == NULL)
        return DDNS_E_NULL;
    *out_len = request_size_checked(req);
    if (*out_len > out_size)
        return DDNS_E_BUFFER;
    sign_checked(req, secret, mac);
    s.buf = out;
    write_request(&s, req, mac);
    ddns_wipe(mac, sizeof mac);
    return DDNS_OK;
}
