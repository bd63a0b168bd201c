/* fuzz_request: libFuzzer target for the request builders.
 *
 * Input: 8 bytes ts (little-endian), 8 bytes nonce, then host, user agent,
 * device id, kid, ipv4, ipv6 and the address learnt in the state (peer),
 * each as one length byte and that many bytes (cut short at the end of
 * the input; the peer's bytes beyond its 46 are not stored, its length is
 * kept). Each field is an exact heap copy, and the state too, so the
 * sanitizers catch any read past a span or the state.
 *
 * Checks: every builder agrees on the error (the string to sign, which has
 * no host and no user agent, on the others); the full check refuses what
 * the builders refuse, with the same or an earlier field's error; the
 * size query matches; a buffer one byte short is refused and left
 * untouched; an exact buffer is filled completely; the request carries
 * exactly the fields given (no byte of them can add a header line, an
 * Authorization field or a body parameter; peer alone, and only when it
 * is 1 to 45 bytes of '.' to '~'), its Content-Length is the
 * body's length, its sig is the HMAC of the string to sign, and the
 * presigned path gives the same bytes, as do the Authorization value and
 * the body laid out on their own. */
#include "ddns_check.h"
#include "ddns_sdk.h"
#include "ddns_sha256.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t secret[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31 };

static size_t count(const uint8_t *p, size_t n, const char *needle)
{
    size_t k = strlen(needle), c = 0;
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, needle, k) == 0)
            c++;
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ddns_request_t req;
    ddns_span_t *fields[6];
    uint8_t *copies[6] = { 0 };
    ddns_state_t *st = NULL;
    int peer_sent = 0;
    uint8_t *out = NULL, *out2 = NULL, *sts = NULL, mac[32];
    size_t pos = 16, needed = 0, len = 0, sts_len = 0;
    ddns_err_t err, strict;

    if (size < 16)
        return 0;
    memset(&req, 0, sizeof req);
    for (int i = 0; i < 8; i++)
        req.ts |= (uint64_t)data[i] << (8 * i);
    if (data[7] & 0x80)
        req.ts &= 0xffffffffffULL;  /* mostly plausible times */
    memcpy(req.nonce, data + 8, 8);
    fields[0] = &req.host;
    fields[1] = &req.user_agent;
    fields[2] = &req.device_id;
    fields[3] = &req.kid;
    fields[4] = &req.ipv4;
    fields[5] = &req.ipv6;
    for (int i = 0; i < 6 && pos < size; i++) {
        size_t n = data[pos++];
        if (n > size - pos)
            n = size - pos;
        copies[i] = malloc(n ? n : 1);
        if (copies[i] == NULL)
            goto out;
        memcpy(copies[i], data + pos, n);
        *fields[i] = ddns_span(n ? copies[i] : NULL, n);
        pos += n;
    }
    if (pos < size) {
        size_t n = data[pos++];
        if (n > size - pos)
            n = size - pos;
        st = malloc(sizeof *st);
        if (st == NULL)
            goto out;
        memset(st, 0, sizeof *st);
        memcpy(st->peer, data + pos, n < sizeof st->peer ? n : sizeof st->peer);
        st->peer_len = (uint8_t)n;
        req.state = st;
        pos += n;
        /* sent when the request names no address and the body can carry it */
        peer_sent = req.ipv4.len == 0 && req.ipv6.len == 0 && n >= 1 && n <= DDNS_IPV6_MAX;
        for (size_t i = 0; peer_sent && i < n; i++)
            peer_sent = st->peer[i] >= '.' && st->peer[i] <= '~';
    }

    err = ddns_request_size(&req, &needed);
    strict = ddns_request_check(&req);
    if (strict == DDNS_OK && err != DDNS_OK)
        abort();
    if (err != DDNS_OK) {
        uint8_t probe[4] = { 0xa5, 0xa5, 0xa5, 0xa5 };
        ddns_err_t sts_err;
        /* errors are listed in the order of the fields */
        if (strict == DDNS_OK || strict > err || needed != 0 ||
            ddns_request_build(&req, secret, probe, sizeof probe, &len) != err || len != 0 ||
            ddns_request_build_presigned(&req, secret, probe, sizeof probe, &len) != err ||
            len != 0)
            abort();
        sts_err = ddns_request_string_to_sign(&req, probe, sizeof probe, &len);
        if (err > DDNS_E_USER_AGENT ? sts_err != err || len != 0
                                    : sts_err != DDNS_E_BUFFER && sts_err <= DDNS_E_USER_AGENT)
            abort();
        if (probe[0] != 0xa5)
            abort();
        goto out;
    }
    if (needed == 0 || needed > DDNS_REQUEST_MAX)
        abort();

    /* One byte short: refused, nothing written. */
    out = malloc(needed);
    out2 = malloc(needed);
    sts = malloc(DDNS_STRING_TO_SIGN_MAX);
    if (out == NULL || out2 == NULL || sts == NULL)
        goto out;
    memset(out, 0xa5, needed);
    if (ddns_request_build(&req, secret, out, needed - 1, &len) != DDNS_E_BUFFER ||
        len != needed)
        abort();
    for (size_t i = 0; i < needed; i++)
        if (out[i] != 0xa5)
            abort();

    /* Exact buffer. */
    if (ddns_request_build(&req, secret, out, needed, &len) != DDNS_OK || len != needed)
        abort();
    if (ddns_request_string_to_sign(&req, sts, DDNS_STRING_TO_SIGN_MAX, &sts_len) != DDNS_OK ||
        sts_len == 0)
        abort();
    ddns_hmac_sha256(secret, sizeof secret, sts, sts_len, mac);
    if (ddns_request_build_presigned(&req, mac, out2, needed, &len) != DDNS_OK ||
        len != needed || memcmp(out, out2, needed) != 0)
        abort();

    /* Shape: the header lines and body parameters are exactly the ones the
     * template has, whatever the fields hold. */
    {
        const uint8_t *end = out + needed;
        const uint8_t *hdr_end = NULL;
        for (const uint8_t *p = out; p + 4 <= end; p++)
            if (memcmp(p, "\r\n\r\n", 4) == 0) {
                hdr_end = p;
                break;
            }
        if (hdr_end == NULL)
            abort();
        size_t head = (size_t)(hdr_end - out) + 4, body = needed - head;
        size_t lines = count(out, head, "\r\n");
        if (lines != (req.user_agent.len > 0 ? 7u : 6u) || count(out, needed, "\n") != lines)
            abort();
        /* the body is exactly the parameters given */
        uint8_t expect[128];
        size_t e = 0;
        if (req.ipv4.len > 0) {
            memcpy(expect, "ipv4=", 5);
            memcpy(expect + 5, req.ipv4.ptr, req.ipv4.len);
            e = 5 + req.ipv4.len;
        }
        if (req.ipv4.len > 0 && req.ipv6.len > 0)
            expect[e++] = '&';
        if (req.ipv6.len > 0) {
            memcpy(expect + e, "ipv6=", 5);
            memcpy(expect + e + 5, req.ipv6.ptr, req.ipv6.len);
            e += 5 + req.ipv6.len;
        }
        if (peer_sent) {
            memcpy(expect, "peer=", 5);
            memcpy(expect + 5, st->peer, st->peer_len);
            e = 5 + st->peer_len;
        }
        if (body != e || memcmp(out + head, expect, e) != 0 ||
            count(out + head, body, "&") != (req.ipv4.len > 0 && req.ipv6.len > 0))
            abort();
        /* the Authorization header has its five fields and no blank */
        static const char auth[] = "\r\nAuthorization: DDNS-HMAC-SHA256 ";
        const uint8_t *a = NULL;
        for (const uint8_t *p = out; p + sizeof auth - 1 <= out + head; p++)
            if (memcmp(p, auth, sizeof auth - 1) == 0) {
                a = p + sizeof auth - 1;
                break;
            }
        if (a == NULL)
            abort();
        size_t alen = 0;
        while (a[alen] != '\r')
            alen++;
        if (count(a, alen, ",") != 4 || count(a, alen, " ") != 0 || count(a, alen, "=") < 5)
            abort();
        /* the parts on their own are the request's bytes */
        a -= sizeof "DDNS-HMAC-SHA256 " - 1;
        alen += sizeof "DDNS-HMAC-SHA256 " - 1;
        if (ddns_request_authorization(&req, secret, out2, alen, &len) != DDNS_OK ||
            len != alen || memcmp(out2, a, alen) != 0 ||
            ddns_request_authorization_presigned(&req, mac, out2, alen, &len) != DDNS_OK ||
            len != alen || memcmp(out2, a, alen) != 0 ||
            ddns_request_body(&req, out2, body, &len) != DDNS_OK || len != body ||
            memcmp(out2, out + head, body) != 0)
            abort();
        char cl[32];
        int k = 0;
        size_t b = body;
        char rev[24];
        do {
            rev[k++] = (char)('0' + b % 10);
            b /= 10;
        } while (b > 0);
        memcpy(cl, "Content-Length: ", 16);
        for (int i = 0; i < k; i++)
            cl[16 + i] = rev[k - 1 - i];
        memcpy(cl + 16 + k, "\r\n\r\n", 4);
        if (memcmp(hdr_end - 16 - k, cl, (size_t)(16 + k)) != 0 || hdr_end[-17 - k] != '\n')
            abort();
    }
out:
    for (int i = 0; i < 6; i++)
        free(copies[i]);
    free(st);
    free(out);
    free(out2);
    free(sts);
    return 0;
}
