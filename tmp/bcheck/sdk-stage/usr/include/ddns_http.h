/* ddns_http.h: HTTP/1.1 response framing (ddns_http.c, optional), for
 * firmware that talks to the gateway over a plain TLS connection. Firmware
 * with an HTTP client of its own hands its status and body to
 * ddns_response_parse() (ddns_sdk.h) directly. */
#ifndef DDNS_HTTP_H
#define DDNS_HTTP_H

#include "ddns_sdk.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ddns_http_response {
    unsigned status;          /* 200 to 599 */
    size_t header_len;        /* status line + headers + blank line */
    size_t content_length;
    size_t total_len;         /* header_len + content_length */
    ddns_span_t body;         /* points into raw */
} ddns_http_response_t;

/**
 * Parses the status line, headers and body of a raw HTTP/1.1 response.
 * Only the status line ("HTTP/1.x NNN", status 200 to 599), Content-Length
 * (required, at most 18 digits, equal when repeated) and Transfer-Encoding
 * (refused) are interpreted; other header lines are skipped. Bytes after
 * total_len are ignored.
 * @param[in]  raw  the bytes received so far
 * @param[out] out  cleared first; once the headers are complete, status,
 *                  header_len, content_length and total_len are set (also
 *                  with DDNS_E_HTTP_INCOMPLETE, so the caller knows how much
 *                  remains); body on DDNS_OK, pointing into raw
 * @return DDNS_OK, DDNS_E_NULL, DDNS_E_HTTP_INCOMPLETE (read more),
 *         DDNS_E_HTTP_SYNTAX or DDNS_E_HTTP_LENGTH
 */
DDNS_MUST_CHECK ddns_err_t ddns_http_response_parse(ddns_span_t raw, ddns_http_response_t *out);

#ifdef __cplusplus
}
#endif

#endif /* DDNS_HTTP_H */
