/* fuzz_response: libFuzzer target for the answer parsers.
 *
 * Input: byte 0 selects the HTTP status handed to ddns_response_parse()
 * (one of the protocol's statuses, or 0 to 599 taken from bytes 0 and 1),
 * the rest is the body. The whole input is also parsed as a raw HTTP
 * response, and a complete one's body as an answer. Every input is an
 * exact heap copy, so the sanitizers catch any read past its end. Checks:
 * the parsers never fail open (an error leaves result NONE), every span
 * lies inside the input, the data matches the result (addresses with
 * good, nochg and badaddr only, one with moved), and ddns_next() gives a
 * sane decision for every answer and learns the one address of good,
 * nochg and moved when it fits. */
#include "ddns_error.h"
#include "ddns_http.h"
#include "ddns_sdk.h"

#include <stdlib.h>
#include <string.h>

static const unsigned statuses[] = { 200, 400, 401, 403, 404, 409, 429, 503 };

static void check_span(ddns_span_t s, const uint8_t *base, size_t n)
{
    if (s.len > 0 && (s.ptr < base || s.ptr + s.len > base + n))
        abort();
}

static void check_answer(ddns_err_t err, const ddns_response_t *r, const uint8_t *body,
                         size_t n)
{
    const ddns_options_t opt = ddns_options_default();
    ddns_state_t st;
    uint32_t delay;
    ddns_next_t next;

    if (err != DDNS_OK) {
        if (r->result != DDNS_RESULT_NONE || r->naddrs != 0)
            abort();
        return;
    }
    if (r->result == DDNS_RESULT_NONE || r->result > DDNS_RESULT_MOVED)
        abort();
    if ((r->naddrs > 0) != (r->result == DDNS_RESULT_GOOD || r->result == DDNS_RESULT_NOCHG ||
                            r->result == DDNS_RESULT_BADADDR || r->result == DDNS_RESULT_MOVED) ||
        r->naddrs > (r->result == DDNS_RESULT_MOVED ? 1u : 2u))
        abort();
    for (unsigned i = 0; i < 2; i++) {
        check_span(r->addr[i], body, n);
        if ((i < r->naddrs) != (r->addr[i].len > 0))
            abort();
    }
    check_span(r->detail, body, n);
    if ((r->detail.len > 0) != (r->result == DDNS_RESULT_BADREQUEST))
        abort();
    if (ddns_result_token(r->result)[0] == '\0')
        abort();

    memset(&st, 0, sizeof st);
    next = ddns_next(&st, &opt, r, 1700000000u, (uint32_t)n * 2654435761u, &delay);
    /* learnt: the one address of good, nochg and moved, when it fits */
    int learns = r->naddrs == 1 && r->addr[0].len <= DDNS_IPV6_MAX &&
                 r->result != DDNS_RESULT_BADADDR;
    if (st.peer_len != (learns ? r->addr[0].len : 0) ||
        (learns && memcmp(st.peer, r->addr[0].ptr, r->addr[0].len) != 0))
        abort();
    /* moved: at once when learnt (the first failure of a fresh state) */
    if (r->result == DDNS_RESULT_MOVED && (next != DDNS_NEXT_RETRY || (delay == 0) != learns))
        abort();
    if (next == DDNS_NEXT_STOP ? delay != 0
        : next == DDNS_NEXT_IDLE ? delay < opt.keepalive
                                 : delay < 4 && r->result != DDNS_RESULT_MOVED)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ddns_response_t r;
    ddns_http_response_t h;
    unsigned status;
    uint8_t *body, *raw;
    ddns_err_t err;

    if (size == 0)
        return 0;
    status = data[0] < 200 ? statuses[data[0] % 8]
                           : size > 1 ? (((unsigned)data[0] << 8) | data[1]) % 600 : 0;

    /* The answer body alone. */
    body = malloc(size - 1 ? size - 1 : 1);
    if (body == NULL)
        return 0;
    memcpy(body, data + 1, size - 1);
    err = ddns_response_parse(status, ddns_span(body, size - 1), &r);
    check_answer(err, &r, body, size - 1);
    free(body);

    /* The whole input as an HTTP response. */
    raw = malloc(size);
    if (raw == NULL)
        return 0;
    memcpy(raw, data, size);
    err = ddns_http_response_parse(ddns_span(raw, size), &h);
    if (err == DDNS_OK) {
        if (h.total_len > size || h.header_len + h.content_length != h.total_len ||
            h.body.ptr != raw + h.header_len || h.body.len != h.content_length ||
            h.status < 200 || h.status > 599)
            abort();
        err = ddns_response_parse(h.status, h.body, &r);
        check_answer(err, &r, raw, size);
    } else if (err == DDNS_E_HTTP_INCOMPLETE) {
        if (h.header_len > size || (h.header_len > 0 && h.status == 0))
            abort();
    } else if (h.status != 0 || h.header_len != 0) {
        abort();
    }
    if (ddns_strerror(err)[0] == '\0')
        abort();
    free(raw);
    return 0;
}
