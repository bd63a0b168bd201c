/* ddns-hello: the baseline server of the benchmarks.
 *
 * A minimal libevent evhttp server that answers GET / with a short text
 * body, in plain HTTP or over TLS with the gateway's own TLS policy
 * (gateway/src/internet/gw_tls.c: TLS 1.2+, AEAD suites, session tickets), and the
 * same evhttp set-up as the gateway (TLS bufferevent per connection,
 * TCP_NODELAY, listen backlog, time-out). It does no logging, no
 * signature check and no database work, so ddns-load against it measures
 * what the machine's HTTP and TLS stack can do at all. See --help. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>

#include "gw_tls.h"

#define PROG "ddns-hello"
#define HELLO_BODY "hello\n"
#define HELLO_BACKLOG 1024
#define HELLO_MAX_HEADERS 8192
#define HELLO_MAX_BODY 4096

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static const char help_text[] =
"NAME\n"
"    ddns-hello - minimal HTTP/HTTPS \"hello\" server, the benchmarks' baseline\n"
"\n"
"SYNOPSIS\n"
"    ddns-hello [--listen ADDR:PORT] [--tls CERT KEY] [--timeout S]\n"
"    ddns-hello --help\n"
"\n"
"DESCRIPTION\n"
"    ddns-hello answers GET / (and HEAD /) with status 200 and the body\n"
"    \"hello\" and a newline, any other path with 404 and other methods with\n"
"    405, over HTTP/1.1 with keep-alive. It uses the gateway's HTTP stack\n"
"    (libevent evhttp, one event loop, one OpenSSL bufferevent per\n"
"    connection, TCP_NODELAY) and, with --tls, the gateway's TLS policy\n"
"    (TLS 1.2 and 1.3 only, forward-secret AEAD suites, session tickets), but\n"
"    does no logging and no work per request. ddns-load --workload hello\n"
"    against it measures the rate the machine's HTTP and TLS stack reaches\n"
"    at all, the ceiling for the gateway on the same machine.\n"
"\n"
"    When it listens, it prints one line on standard output:\n"
"        ddns-hello: listening on 127.0.0.1:8443 tls pid 1234\n"
"    (\"plain\" instead of \"tls\"; the port actually bound when PORT is 0).\n"
"\n"
"OPTIONS\n"
"    --listen ADDR:PORT\n"
"        Address and port to listen on: IPv4 or [IPv6] (default\n"
"        127.0.0.1:8080). Port 0 picks a free port.\n"
"    --tls CERT KEY\n"
"        Serve HTTPS with the PEM certificate chain CERT and private key KEY.\n"
"    --timeout S\n"
"        Close a connection idle or stalled for S seconds (default 10, as the\n"
"        gateway's request_timeout).\n"
"    -h, --help\n"
"        Show this text.\n"
"\n"
"FILE DESCRIPTORS\n"
"    The soft RLIMIT_NOFILE is raised to the hard limit at start, so that\n"
"    as many connections as the hard limit allows can be held.\n"
"\n"
"SIGNALS\n"
"    SIGINT, SIGTERM  stop listening, close every connection, exit 0.\n"
"    SIGPIPE          ignored.\n"
"\n"
"EXIT STATUS\n"
"    0   stopped by a signal.\n"
"    1   cannot load the certificate or key, or cannot listen.\n"
"    2   usage error.\n";

struct hello {
    struct event_base *base;
    SSL_CTX *ssl;
};

/* Every connection gets its own TLS state; evhttp owns the bufferevent. */
static struct bufferevent *hello_bevcb(struct event_base *base, void *arg)
{
    struct hello *h = arg;
    SSL *ssl = SSL_new(h->ssl);
    if (ssl != NULL) {
        struct bufferevent *bev = bufferevent_openssl_socket_new(
            base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
        if (bev != NULL) {
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
            return bev;
        }
    }
    /* NULL would make evhttp serve the connection in clear: hand it one end
     * of a pair whose other end is gone, as the gateway does. */
    struct bufferevent *pair[2];
    if (bufferevent_pair_new(base, 0, pair) != 0)
        abort();
    bufferevent_free(pair[1]);
    return pair[0];
}

static void hello_reply(struct evhttp_request *req, int status, const char *reason,
                        const char *body)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_add_header(oh, "Content-Type", "text/plain; charset=utf-8");
    evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    evhttp_send_reply(req, status, reason, NULL);
}

static void hello_gencb(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon != NULL) {
        struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
        evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
        if (fd >= 0) {
            int one = 1;
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
    }
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *uri = evhttp_request_get_uri(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)
        hello_reply(req, 405, "Method Not Allowed", "method\n");
    else if (uri == NULL || strcmp(uri, "/") != 0)
        hello_reply(req, 404, "Not Found", "notfound\n");
    else
        hello_reply(req, 200, "OK", HELLO_BODY);
}

static void hello_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct hello *h = arg;
    (void)sig;
    (void)what;
    event_base_loopexit(h->base, NULL);
}

/* Parses ADDR:PORT or [ADDR]:PORT. */
static int parse_listen(const char *in, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *p;
    size_t hl;
    int v6 = in[0] == '[';

    if (v6) {
        const char *close = strchr(in, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        hl = (size_t)(close - in - 1);
        if (hl >= sizeof host)
            return -1;
        memcpy(host, in + 1, hl);
        p = close + 2;
    } else {
        const char *colon = strrchr(in, ':');
        if (colon == NULL)
            return -1;
        hl = (size_t)(colon - in);
        if (hl >= sizeof host)
            return -1;
        memcpy(host, in, hl);
        p = colon + 1;
    }
    host[hl] = '\0';
    char *end;
    long port = strtol(p, &end, 10);
    if (*p == '\0' || *end != '\0' || port < 0 || port > 65535)
        return -1;
    memset(ss, 0, sizeof *ss);
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return -1;
        *len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return -1;
        *len = sizeof *s4;
    }
    return 0;
}

/* Binds and listens; writes the bound address to text. Returns the socket
 * or -1 with errno set. */
static int hello_bind(const struct sockaddr_storage *ss, socklen_t len, char *text,
                      size_t textlen)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (ss->ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0))
        goto fail;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, HELLO_BACKLOG) != 0)
        goto fail;
    struct sockaddr_storage b;
    socklen_t bl = sizeof b;
    char ip[INET6_ADDRSTRLEN];
    if (getsockname(fd, (struct sockaddr *)&b, &bl) != 0)
        goto fail;
    if (b.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&b;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        snprintf(text, textlen, "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&b;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        snprintf(text, textlen, "%s:%u", ip, ntohs(s4->sin_port));
    }
    return fd;
fail:
    {
        int e = errno;
        close(fd);
        errno = e;
    }
    return -1;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"tls", required_argument, NULL, 't'},
        {"timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *listen_text = "127.0.0.1:8080", *cert = NULL, *key = NULL;
    long timeout = 10;
    struct hello h = {NULL, NULL};
    struct evhttp *http = NULL;
    struct event *sigint = NULL, *sigterm = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    char bound[INET6_ADDRSTRLEN + 16], err[512];
    int c, rc = EXIT_USAGE, fd = -1;

    signal(SIGPIPE, SIG_IGN);
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'l': listen_text = optarg; break;
        case 't':
            cert = optarg;
            if (optind >= argc || argv[optind][0] == '-') {
                fprintf(stderr, "%s: --tls needs two values: CERT KEY\n", PROG);
                goto usage;
            }
            key = argv[optind++];
            break;
        case 'T': {
            char *end;
            errno = 0;
            timeout = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || timeout < 1 || timeout > 3600) {
                fprintf(stderr, "%s: --timeout: expected 1 to 3600 seconds\n", PROG);
                goto usage;
            }
            break;
        }
        case 'h':
            fputs(help_text, stdout);
            return EXIT_OK;
        case ':':
            fprintf(stderr, "%s: option %s needs a value\n", PROG, argv[optind - 1]);
            goto usage;
        default:
            fprintf(stderr, "%s: unknown option %s\n", PROG, argv[optind - 1]);
            goto usage;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", PROG, argv[optind]);
        goto usage;
    }
    if (parse_listen(listen_text, &ss, &sslen) != 0) {
        fprintf(stderr, "%s: --listen: expected IPV4:PORT or [IPV6]:PORT, got '%s'\n", PROG,
                listen_text);
        goto usage;
    }

    rc = EXIT_RUNTIME;
    raise_nofile();
    if (cert != NULL) {
        int bad_key = 0;
        const gw_tls_files_t files = {cert, key, NULL, NULL, NULL, NULL};
        h.ssl = gw_tls_ctx_new(&files, err, sizeof err, &bad_key);
        if (h.ssl == NULL) {
            fprintf(stderr, "%s: %s\n", PROG, err);
            goto out;
        }
    }
    h.base = event_base_new();
    http = h.base ? evhttp_new(h.base) : NULL;
    if (http == NULL) {
        fprintf(stderr, "%s: cannot create the event loop\n", PROG);
        goto out;
    }
    if (h.ssl != NULL)
        evhttp_set_bevcb(http, hello_bevcb, &h);
    evhttp_set_gencb(http, hello_gencb, &h);
    evhttp_set_max_headers_size(http, HELLO_MAX_HEADERS);
    evhttp_set_max_body_size(http, HELLO_MAX_BODY);
    evhttp_set_timeout(http, (int)timeout);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    fd = hello_bind(&ss, sslen, bound, sizeof bound);
    if (fd < 0) {
        fprintf(stderr, "%s: cannot listen on %s: %s\n", PROG, listen_text, strerror(errno));
        goto out;
    }
    if (evhttp_accept_socket_with_handle(http, fd) == NULL) {
        fprintf(stderr, "%s: cannot accept on %s\n", PROG, bound);
        close(fd);
        goto out;
    }
    sigint = evsignal_new(h.base, SIGINT, hello_signal_cb, &h);
    sigterm = evsignal_new(h.base, SIGTERM, hello_signal_cb, &h);
    if (sigint == NULL || sigterm == NULL || evsignal_add(sigint, NULL) != 0 ||
        evsignal_add(sigterm, NULL) != 0) {
        fprintf(stderr, "%s: cannot handle signals\n", PROG);
        goto out;
    }
    printf("%s: listening on %s %s pid %ld\n", PROG, bound, h.ssl ? "tls" : "plain",
           (long)getpid());
    fflush(stdout);
    event_base_dispatch(h.base);
    rc = EXIT_OK;
out:
    if (sigint != NULL)
        event_free(sigint);
    if (sigterm != NULL)
        event_free(sigterm);
    if (http != NULL)
        evhttp_free(http); /* closes the listener and every connection */
    if (h.base != NULL)
        event_base_free(h.base);
    SSL_CTX_free(h.ssl);
    return rc;
usage:
    fprintf(stderr, "Try '%s --help' for more information.\n", PROG);
    return EXIT_USAGE;
}
