/* fuzz_http: libFuzzer target for the HTTP request handling of the gateway
 * below TLS and above the database: libevent's evhttp with the gateway's
 * limits and methods (as gw_http sets them), the checks before routing
 * (gw_route_precheck, gw_route_framing), and what each endpoint parses
 * before it asks the database: /v1/update the Authorization value and body
 * (gw_auth_verify) and the User-Agent (gw_policy_check), /nic/update the
 * query, the Basic credentials and the User-Agent (gw_dynparse,
 * gw_policy).
 *
 * Input: the raw bytes a client sends on one connection (one request,
 * several pipelined ones, or garbage). Each input is written to a fresh
 * plain-TCP connection to an evhttp listener on 127.0.0.1 in this process,
 * the client's side is shut for writing, and the event loop runs until the
 * server closes the connection (or 2000 loop turns). Checks: the first
 * answer has a status line HTTP/... with a status from 100 to 599,
 * a request the handler sees has a method, a target within max_uri_length
 * and at most max_body_size bytes of body, and the parsers' verdicts are
 * consistent (as in fuzz_gw_request and fuzz_dyndns). TLS and the
 * connection limits are gw_conn's (covered by the integration tests). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gw_auth.h"
#include "gw_dynparse.h"
#include "gw_policy.h"
#include "gw_route.h"

#define NOW_SKEW 300
#define MAX_HEADERS 2048
#define MAX_BODY 1024
#define MAX_URI 256

static struct event_base *base;
static struct evhttp *http;
static struct sockaddr_in addr;
static gw_policy_t *policy;
static gw_limits_t limits;
static gw_dyn_query_t dq;

static cmn_master_key_t key1 = {.kid = "k1", .key = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                                     1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                                     1, 1}};

static const cmn_master_key_t *lookup(void *ctx, const char *kid, size_t kidlen)
{
    (void)ctx;
    return kidlen == 2 && kid[0] == 'k' && kid[1] == '1' ? &key1 : NULL;
}

static void reply(struct evhttp_request *req, int status, const char *line)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL)
        abort();
    evbuffer_add_printf(b, "%s\n", line);
    evhttp_send_reply(req, status, "X", b);
    evbuffer_free(b);
}

static void handle_update(struct evhttp_request *req, struct evkeyvalq *hdrs)
{
    const char *auth = NULL, *agent = evhttp_find_header(hdrs, "User-Agent");
    int nauth = 0;
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, hdrs, next)
        if (strcasecmp(kv->key, "Authorization") == 0) {
            auth = kv->value;
            nauth++;
        }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = evbuffer_get_length(in);
    if (blen > MAX_BODY)
        abort();
    if (nauth != 1) {
        reply(req, 400, "badrequest authorization");
        return;
    }
    const uint8_t *body = blen ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
    gw_auth_result_t r;
    gw_auth_verify(auth, body, blen, 1700000000, NOW_SKEW, lookup, NULL, &r);
    if (r.verdict == GW_AUTH_BADREQUEST && r.field[0] == '\0')
        abort();
    if (r.verdict == GW_AUTH_OK && strcmp(r.kid, "k1") != 0)
        abort();
    (void)gw_policy_check(policy, agent, NULL);
    reply(req, r.verdict == GW_AUTH_OK ? 200 : 401, "x");
}

static void handle_dyndns(struct evhttp_request *req, struct evkeyvalq *hdrs, const char *uri)
{
    const char *q = strchr(uri, '?');
    if (q != NULL && gw_dyn_parse_query(q + 1, &dq) != 0 && dq.field[0] == '\0')
        abort();
    gw_dyn_cred_t c;
    const char *auth = evhttp_find_header(hdrs, "Authorization");
    if (auth != NULL && gw_dyn_parse_basic(auth, &c) == 0 &&
        (strlen(c.device_id) != 12 || c.kid[0] == '\0' || c.generation > CMN_GENERATION_MAX))
        abort();
    (void)gw_policy_check_dyndns2(policy, evhttp_find_header(hdrs, "User-Agent"), NULL);
    reply(req, 200, "nohost");
}

static void gencb(struct evhttp_request *req, void *arg)
{
    (void)arg;
    const char *uri = evhttp_request_get_uri(req);
    if (uri == NULL)
        abort();
    struct evkeyvalq *hdrs = evhttp_request_get_input_headers(req);
    gw_route_verdict_t v;
    gw_route_precheck(uri, (int)evhttp_request_get_command(req), &limits, &v);
    size_t ncl = 0, nte = 0;
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, hdrs, next) {
        ncl += strcasecmp(kv->key, "Content-Length") == 0;
        nte += strcasecmp(kv->key, "Transfer-Encoding") == 0;
    }
    gw_route_framing(ncl, nte, &v);
    if (v.status != 0) {
        if (v.line == NULL)
            abort();
        reply(req, v.status, v.line);
        return;
    }
    if (strlen(uri) > MAX_URI)
        abort();
    if (v.route == GW_ROUTE_UPDATE)
        handle_update(req, hdrs);
    else if (v.route == GW_ROUTE_DYNDNS)
        handle_dyndns(req, hdrs, uri);
    else
        reply(req, v.known ? 200 : 404, v.known ? "ok" : "notfound");
}

static int setup(void)
{
    event_set_log_callback(NULL);
    base = event_base_new();
    http = base ? evhttp_new(base) : NULL;
    policy = gw_policy_new();
    if (http == NULL || policy == NULL)
        return -1;
    char err[200];
    if (gw_policy_load_blocked(policy, "AcmeCam-X1", err, sizeof err) != 0 ||
        gw_policy_load_minimums(policy, "AcmeCam-X3/2.1.0", err, sizeof err) != 0)
        return -1;
    limits.max_header_size = MAX_HEADERS;
    limits.max_body_size = MAX_BODY;
    limits.max_uri_length = MAX_URI;
    limits.max_query_params = 16;
    evhttp_set_max_headers_size(http, MAX_HEADERS);
    evhttp_set_max_body_size(http, MAX_BODY);
    evhttp_set_timeout(http, 5);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                         EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(http, gencb, NULL);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    if (bs == NULL)
        return -1;
    socklen_t len = sizeof addr;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&addr, &len) != 0)
        return -1;
    return 0;
}

/* The first answer (if any) starts with a status line "HTTP/VERSION SSS "
 * with SSS from 100 to 599. (libevent echoes the request's version as it
 * read it: HTTP/0.1, HTTP/1.21, or an overflowed number.) */
static void check_answers(const char *out, size_t n)
{
    if (n == 0)
        return;
    if (n < 5 || memcmp(out, "HTTP/", 5) != 0)
        abort();
    const char *sp = memchr(out, ' ', n < 40 ? n : 40);
    if (sp == NULL)
        abort();
    size_t i = (size_t)(sp - out);
    if (i + 4 > n)
        return;     /* cut short: only what arrived is checked */
    if (out[i] != ' ')
        abort();
    int status = 0;
    for (size_t k = i + 1; k < i + 4; k++) {
        if (out[k] < '0' || out[k] > '9')
            abort();
        status = status * 10 + (out[k] - '0');
    }
    if (status < 100 || status > 599)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[1 << 16];
    if (base == NULL && setup() != 0)
        abort();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        abort();
    size_t off = 0;
    while (off < size) {    /* the kernel buffers far more than a fuzz input */
        ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    size_t got = 0;
    for (int turn = 0; turn < 2000; turn++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        ssize_t r = recv(fd, out + got, sizeof out - 1 - got, 0);
        if (r == 0)
            break;
        if (r > 0) {
            got += (size_t)r;
            if (got >= sizeof out - 1)
                got = sizeof out / 2;   /* only the first status line matters */
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            break;
        }
    }
    check_answers(out, got);
    close(fd);
    /* let the server see the close and free the connection */
    for (int turn = 0; turn < 4; turn++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    return 0;
}
