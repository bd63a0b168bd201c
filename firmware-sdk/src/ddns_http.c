/* ddns_http: HTTP/1.1 response framing (optional module), for firmware
 * that talks to the gateway over a plain TLS connection. Firmware with an
 * HTTP client of its own hands its status and body to
 * ddns_response_parse() directly.
 *
 * Only the status line, Content-Length and Transfer-Encoding are
 * interpreted; other header lines are skipped. Every index is checked
 * against the length of the input before use. */
#include "ddns_internal.h"
#include "ddns_http.h"

#include <string.h>

/* True when the line p (n bytes) starts with "name:" in any case; name is
 * lowercase letters and '-'. */
static bool header_is(const uint8_t *p, size_t n, const char *name)
{
    size_t i;

    for (i = 0; name[i] != '\0'; i++)
        if (i == n || (p[i] | 0x20u) != (uint8_t)name[i])
            return false;
    return true;
}

ddns_err_t ddns_http_response_parse(ddns_span_t raw, ddns_http_response_t *out)
{
    const uint8_t *p = raw.ptr;
    size_t pos = 0, length = SIZE_MAX, eol, i, n;
    uint64_t v;
    unsigned status = 0;

    if (out == NULL)
        return DDNS_E_NULL;
    memset(out, 0, sizeof *out);
    if (p == NULL && raw.len > 0)
        return DDNS_E_NULL;

    /* Refuse garbage before a whole line has arrived. */
    for (i = 0; i < raw.len && i < 7u; i++)
        if (p[i] != (uint8_t)"HTTP/1."[i])
            return DDNS_E_HTTP_SYNTAX;

    for (;; pos = eol + 1u) {
        const uint8_t *line = p + pos;
        for (eol = pos; eol < raw.len && p[eol] != '\n'; eol++)
            ;
        if (eol == raw.len)
            return DDNS_E_HTTP_INCOMPLETE;
        n = eol - pos;
        if (n > 0 && line[n - 1u] == '\r')
            n--;
        if (pos == 0) {
            /* "HTTP/1." DIGIT SP 3DIGIT [SP reason-phrase] */
            if (n < 12u || !DDNS__IN(line[7], '0', '9') || line[8] != ' ' ||
                (n > 12u && line[12] != ' ') || !ddns__parse_dec(line + 9, 3, &v) ||
                !DDNS__IN(v, 200, 599))
                return DDNS_E_HTTP_SYNTAX;
            status = (unsigned)v;
        } else if (n == 0) {
            break;  /* blank line: end of the header section */
        } else if (header_is(line, n, "transfer-encoding:")) {
            return DDNS_E_HTTP_LENGTH;
        } else if (header_is(line, n, "content-length:")) {
            /* OWS 1*18DIGIT OWS, fitting size_t, the same when repeated */
            size_t vs = 15;
            while (vs < n && (line[vs] == ' ' || line[vs] == '\t'))
                vs++;
            while (n > vs && (line[n - 1u] == ' ' || line[n - 1u] == '\t'))
                n--;
            if (n - vs > 18u || !ddns__parse_dec(line + vs, n - vs, &v) || v != (size_t)v ||
                v == SIZE_MAX || (length != SIZE_MAX && length != v))
                return DDNS_E_HTTP_LENGTH;
            length = (size_t)v;
        }
    }

    pos = eol + 1u;
    if (length == SIZE_MAX || length > SIZE_MAX - pos)
        return DDNS_E_HTTP_LENGTH;
    out->status = status;
    out->header_len = pos;
    out->content_length = length;
    out->total_len = pos + length;
    if (raw.len < out->total_len)
        return DDNS_E_HTTP_INCOMPLETE;
    out->body = ddns_span(p + pos, length);
    return DDNS_OK;
}
