/* gw_reply: how the listeners answer (see gw_reply.h). */
#include "gw_reply.h"

#include <stdarg.h>
#include <stdio.h>

#include <event2/keyvalq_struct.h>

const char *gw_reply_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return "Status";
    }
}

void gw_reply_headers(struct evhttp_request *req, int status, const char *content_type,
                      int retry_after)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_add_header(oh, "Content-Type",
                      content_type ? content_type : "text/plain; charset=utf-8");
    if (evhttp_find_header(oh, "Cache-Control") == NULL)
        evhttp_add_header(oh, "Cache-Control", "no-store");
    if (retry_after > 0 && (status == 429 || status == 503)) {
        char num[16];
        snprintf(num, sizeof num, "%d", retry_after);
        evhttp_add_header(oh, "Retry-After", num);
    }
}

void gw_reply_buffer(struct evhttp_request *req, int status, const char *content_type,
                     struct evbuffer *body)
{
    gw_reply_headers(req, status, content_type, 0);
    evhttp_send_reply(req, status, gw_reply_reason(status), body);
}

void gw_reply_printf(struct evhttp_request *req, int status, const char *content_type,
                     const char *fmt, ...)
{
    struct evbuffer *b = evbuffer_new();
    va_list ap;
    va_start(ap, fmt);
    int n = b ? evbuffer_add_vprintf(b, fmt, ap) : -1;
    va_end(ap);
    if (n < 0)
        evhttp_send_error(req, 503, NULL);
    else
        gw_reply_buffer(req, status, content_type, b);
    if (b != NULL)
        evbuffer_free(b);
}
