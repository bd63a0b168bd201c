/* gw_reply: the one way the gateway's listeners answer HTTP.
 *
 * Owns the reason phrase of every status the gateway sends and the headers
 * every answer carries: Content-Type (text/plain; charset=utf-8 unless
 * said otherwise), Cache-Control: no-store (unless the caller set its
 * own), and Retry-After on a 429 or 503 that has one. The device listener
 * (gw_http) adds its request id, access log and one-record send on top;
 * the operations listener, the admin API and the console send through
 * gw_reply_printf() and gw_reply_buffer() as they are. */
#ifndef GW_REPLY_H
#define GW_REPLY_H

#include <event2/buffer.h>
#include <event2/http.h>

/* "OK", "Not Found", ...; "Status" for a status the gateway never sends. */
const char *gw_reply_reason(int status);
/* Adds the common headers to req's output headers. content_type NULL:
 * text/plain; charset=utf-8; retry_after <= 0: none. */
void gw_reply_headers(struct evhttp_request *req, int status, const char *content_type,
                      int retry_after);
/* Sends status with the common headers and body (evhttp sets its length). */
void gw_reply_buffer(struct evhttp_request *req, int status, const char *content_type,
                     struct evbuffer *body);
/* The same with a formatted body; a bare 503 when out of memory. */
void gw_reply_printf(struct evhttp_request *req, int status, const char *content_type,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
