/* ddns-load: load generator for the DDNS gateway and the ddns-hello
 * baseline server.
 *
 * Owns the command line, the checks of its options, the TLS client context
 * (TLS 1.2+, the server certificate verified against --ca and the server
 * name), the file-descriptor limit, and the JSON summary on standard
 * output. The run itself is ld_run's; requests are built and answers parsed
 * by the firmware SDK (ld_work), so the load is signed exactly as devices
 * sign. See --help. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "ld_devices.h"
#include "ld_hist.h"
#include "ld_run.h"
#include "ld_work.h"

#include "ddns_check.h"

#define PROG "ddns-load"
#define LD_VERSION "1.0"

enum exit_code {
    EXIT_RAN = 0,       /* run completed, summary printed */
    EXIT_NOTHING = 1,   /* run completed, summary printed, but nothing succeeded */
    EXIT_USAGE = 2,     /* command line or credentials file */
    EXIT_SETUP = 3,     /* could not start: name, TLS context, descriptors, memory */
};

static const char help_text[] =
"NAME\n"
"    ddns-load - load generator for the DDNS gateway and the ddns-hello server\n"
"\n"
"SYNOPSIS\n"
"    ddns-load --server HOST:PORT (--ca FILE | --plain) --devices FILE\n"
"              [--workload nochg|change|dyndns2|dyndns2-change] [--warmup]\n"
"              [--mode keepalive|new] [--resume] [--connections N] [--threads T]\n"
"              (--duration S | --count N) [--rate R] [options]\n"
"    ddns-load --server HOST:PORT (--ca FILE | --plain) --workload hello\n"
"              [--path PATH] [--mode keepalive|new] ... (--duration S | --count N)\n"
"    ddns-load --server HOST:PORT (--ca FILE | --plain) --mode idle\n"
"              --connections N [--duration S] [--idle-ping S]\n"
"    ddns-load --help | --version\n"
"\n"
"DESCRIPTION\n"
"    ddns-load keeps N connections busy against a server and reports what the\n"
"    server answered and how fast. Each connection takes the next device\n"
"    round robin from a credentials file and sends the request a device of\n"
"    that identity would send: signed updates are built by the firmware SDK\n"
"    (libddns_sdk.a) with the device secret, the current time as ts and a\n"
"    random nonce, and answers are parsed by the SDK's HTTP and response\n"
"    parsers. Every answer, valid or not, is counted; nothing the server\n"
"    sends stops the run.\n"
"\n"
"    The gateway accepts a device's update only with a ts greater than the\n"
"    last it accepted from that device, so no device is used twice within\n"
"    one second, nor while its previous request is in flight: such devices\n"
"    are passed over (\"skipped\"), and when no device is free a connection\n"
"    waits for the next second (\"device_waits\"). The rate of accepted\n"
"    updates is therefore at most the number of devices per second: use\n"
"    more devices than the rate you expect.\n"
"\n"
"    Progress goes to standard error once a second; at the end one JSON\n"
"    object (one line) goes to standard output (see OUTPUT).\n"
"\n"
"WORKLOADS (--workload)\n"
"    nochg    POST /v1/update with ipv4= the device's own fixed address\n"
"             (198.18.0.0/15 by its position in the file, then 10.0.0.0/8):\n"
"             the first request of a fresh device is answered good, every\n"
"             later one nochg. --warmup sends the first round unmeasured.\n"
"    change   POST /v1/update with a new ipv4 address (100.64.0.0/10) every\n"
"             time: every answer should be good. Each one is a database\n"
"             write, a history row and a DNS update to publish.\n"
"    dyndns2  GET /nic/update?hostname=FQDN&myip=ADDR with HTTP Basic\n"
"             credentials device_id and kid.secret (PROTOCOL.md section 3),\n"
"             the fixed address as in nochg; answers are read by their first\n"
"             word (good, nochg, badauth, nohost, notfqdn, 911, ...).\n"
"    dyndns2-change\n"
"             the same with a new address every time.\n"
"    hello    GET PATH (--path, default /); a 200 answer is a success. For\n"
"             the ddns-hello baseline server; needs no --devices.\n"
"    replay   sends the bytes of --request FILE (one whole HTTP request, at\n"
"             most 1024 bytes, such as `ddns-client --request-out` writes)\n"
"             again and again, and reads the answers as /v1/update answers:\n"
"             an attacker replaying one captured signed request. No success\n"
"             is expected (exit status 1 when none); needs no --devices.\n"
"\n"
"MODES (--mode)\n"
"    keepalive  (default) the connections are opened first (not measured,\n"
"             at most --connect-burst handshakes at a time), then every\n"
"             request reuses its connection (HTTP/1.1 keep-alive). A\n"
"             connection the server closes is opened again when next used.\n"
"    new      every request opens a new connection (TCP and TLS handshake,\n"
"             both part of its latency) and closes it after the answer.\n"
"             --resume resumes the TLS session of the connection's previous\n"
"             handshake (session tickets).\n"
"    idle     opens N connections, completes their handshakes and holds them\n"
"             without requests until --duration has passed after the last\n"
"             one opened (or until SIGINT/SIGTERM), printing how many are\n"
"             open each second; a connection the server closes is opened\n"
"             again. For memory measurements of the server. --idle-ping S\n"
"             sends GET /healthz on each connection every S seconds, which\n"
"             keeps connections open past a server's idle time-out (the\n"
"             gateway closes idle connections after its request_timeout);\n"
"             pings start as soon as a connection is open. Choose S at most\n"
"             a third of the time-out: while thousands of handshakes load\n"
"             the machine, pings and their answers can be seconds late.\n"
"\n"
"OPTIONS\n"
"    --server HOST:PORT\n"
"        Server to connect to: an IPv4 address, [IPv6] or a name (resolved\n"
"        once at start; the first address is used).\n"
"    --ca FILE\n"
"        PEM certificate(s) the server certificate must chain to; the server\n"
"        name (HOST, or --host-header) must match it. TLS 1.2 or later.\n"
"    --plain\n"
"        Plain HTTP instead of TLS (ddns-hello without --tls).\n"
"    --tls-max 1.2|1.3\n"
"        Highest TLS version to offer (default 1.3).\n"
"    --request FILE\n"
"        The request of the replay workload.\n"
"    --sources N\n"
"        Connection i connects from 127.0.0.(2 + i mod N) instead of the\n"
"        system's choice: N loopback sources (1 to 250) for a server on\n"
"        127.0.0.1 (TLS only). For per-source limits.\n"
"    --host-header NAME\n"
"        Host header and certificate name, when they differ from HOST.\n"
"    --devices FILE\n"
"        Credentials, one JSON object per line as `ddns-provision batch\n"
"        --format jsonl` writes them: device_id and either kid and secret or\n"
"        password (kid.secret); fqdn for the dyndns2 workloads. Other\n"
"        members are ignored. \"-\" reads standard input.\n"
"    --workload NAME\n"
"        See WORKLOADS (default nochg).\n"
"    --path PATH\n"
"        Request target of the hello workload (default /).\n"
"    --mode keepalive|new|idle\n"
"        See MODES (default keepalive).\n"
"    --resume\n"
"        With --mode new: resume TLS sessions.\n"
"    --connections N\n"
"        Concurrent connections (default 16).\n"
"    --threads T\n"
"        Event loops (threads) to spread connections and devices over\n"
"        (default 1). Each thread owns every T-th device.\n"
"    --duration S\n"
"        Stop starting requests after S seconds (decimals allowed); the\n"
"        requests in flight are still awaited.\n"
"    --count N\n"
"        Stop after N requests. With --duration, whichever comes first.\n"
"    --rate R\n"
"        Open loop: start R requests per second in total, evenly spaced,\n"
"        whatever the answers' speed; latency is then measured from the\n"
"        time a request was due, so queueing shows in it. The schedule is\n"
"        kept by a 1 ms timer on precise (not coarse) monotonic time, so a\n"
"        request starts at most about 1 ms after it was due. A request that\n"
"        finds no free connection waits for one (\"backlog_max\"). Without\n"
"        --rate: closed loop, each connection sends its next request as\n"
"        soon as the previous one is answered.\n"
"    --warmup\n"
"        Before measuring, send one request per device (not counted in the\n"
"        summary but in its \"warmup\" member), then start measuring at the\n"
"        next full second. With nochg this makes every measured answer\n"
"        nochg even for fresh devices.\n"
"    --timeout S\n"
"        Limit for a connect (with the handshake) and for each answer\n"
"        (default 10).\n"
"    --connect-burst N\n"
"        Handshakes in progress at once while opening connections in the\n"
"        keepalive and idle modes (default 256).\n"
"    --idle-ping S\n"
"        Idle mode: see MODES.\n"
"    -q, --quiet\n"
"        No progress lines.\n"
"    -h, --help\n"
"        Show this text.\n"
"    -V, --version\n"
"        Show the version.\n"
"\n"
"OUTPUT\n"
"    One JSON object on one line, for example (abridged):\n"
"      {\"tool\": \"ddns-load\", \"mode\": \"keepalive\", \"workload\": \"nochg\",\n"
"       \"tls\": true, \"connections\": 64, \"requests\": 20113, \"ok\": 20113,\n"
"       \"results\": {\"good\": 0, \"nochg\": 20113, ...}, \"http_status\": {\"200\":\n"
"       20113}, \"errors\": {\"connect\": 0, \"tls\": 0, \"closed\": 0, \"timeout\":\n"
"       0, \"http\": 0, \"total\": 0}, \"skipped\": 0, \"device_waits\": 0,\n"
"       \"elapsed_s\": 10.0, \"rate_per_s\": 2011.3, \"ok_per_s\": 2011.3,\n"
"       \"latency_ms\": {\"count\": 20113, \"min\": 9.1, \"mean\": 31.7, \"p50\": 30.2,\n"
"       \"p90\": 41.0, \"p99\": 60.3, \"p99.9\": 80.1, \"max\": 95.5}, ...}\n"
"    requests      requests started (a connection failure of a request counts)\n"
"    ok            good + nochg answers (hello: 200 answers)\n"
"    results       valid answers by result token (every token is listed)\n"
"    http_status   complete HTTP answers by status\n"
"    errors        connect: TCP connect failed or the connection ended in the\n"
"                  handshake; tls: TLS handshake failed (certificate\n"
"                  verification, protocol); closed: connection closed before\n"
"                  the whole answer; timeout: no answer in --timeout; http: an\n"
"                  answer that is not HTTP/1.x with Content-Length, or whose\n"
"                  body is not a valid answer of the workload\n"
"                  requests = sum(results) + errors.total, except for\n"
"                  failures while opening connections before measuring\n"
"    elapsed_s     from the start of measuring to the last answer (or to the\n"
"                  stop, whichever is later)\n"
"    rate_per_s    valid answers per second; ok_per_s: ok per second\n"
"    latency_ms    of valid answers: from sending (closed loop) or from when\n"
"                  the request was due (--rate) to the whole answer; in new\n"
"                  mode it includes connect and handshake. Log-linear\n"
"                  buckets: quantiles within 0.4 %, min, max exact.\n"
"    connections_opened, handshakes_resumed, closed_by_peer, open_max,\n"
"    open_end, open_phase_s (time to open the connections first)\n"
"    skipped, device_waits   see DESCRIPTION\n"
"    rate_unsent, backlog_max  --rate only\n"
"    warmup        requests and results of the --warmup round\n"
"    cpu_s         user and system CPU seconds of ddns-load itself, the whole\n"
"                  run: when it nears elapsed_s times the cores it may use,\n"
"                  the load generator, not the server, is the limit\n"
"    interrupted   true when SIGINT or SIGTERM ended the run early\n"
"\n"
"FILE DESCRIPTORS\n"
"    Each connection needs one descriptor. ddns-load raises its soft\n"
"    RLIMIT_NOFILE up to the hard limit as needed and refuses to start when\n"
"    the hard limit is too low (raise it with `ulimit -Hn` as root,\n"
"    LimitNOFILE= in systemd, or /etc/security/limits.conf). The server\n"
"    needs as many: start it with a high enough limit too.\n"
"\n"
"SIGNALS\n"
"    SIGINT, SIGTERM  stop starting requests, await those in flight, print\n"
"                     the summary (\"interrupted\": true), exit 0. A second\n"
"                     signal exits at once with status 130.\n"
"\n"
"EXIT STATUS\n"
"    0   the run completed and the summary was printed.\n"
"    1   the summary was printed but nothing succeeded: no ok answer (idle:\n"
"        no connection open at the end).\n"
"    2   usage error, or an unreadable or invalid credentials or CA file.\n"
"    3   could not start: server name, TLS set-up, file descriptors, memory.\n"
"\n"
"EXAMPLES\n"
"    ddns-provision batch --csv devices.csv --zone ddns.example.test \\\n"
"        --out devices.jsonl\n"
"    ddns-load --server 127.0.0.1:8443 --host-header localhost --ca ca.crt \\\n"
"        --devices devices.jsonl --workload nochg --warmup --connections 64 \\\n"
"        --duration 10\n"
"    ddns-load --server 127.0.0.1:8443 --ca ca.crt --host-header localhost \\\n"
"        --devices devices.jsonl --workload change --mode new --resume \\\n"
"        --connections 32 --rate 500 --duration 30\n"
"    ddns-hello --listen 127.0.0.1:9443 --tls server.crt server.key &\n"
"    ddns-load --server 127.0.0.1:9443 --ca ca.crt --host-header localhost \\\n"
"        --workload hello --connections 64 --duration 10\n"
"    ddns-load --server 127.0.0.1:8443 --ca ca.crt --host-header localhost \\\n"
"        --mode idle --connections 10000 --duration 60\n";

struct options {
    const char *server, *ca, *host_header, *devices, *path, *request;
    int plain, resume, warmup, quiet, tls_max;
    ld_mode_t mode;
    ld_workload_t wl;
    int wl_given;
    unsigned long connections, threads, connect_burst, sources;
    double duration, rate, timeout, idle_ping;
    unsigned long long count;
};

static const char *const workload_names[] = {"nochg", "change", "dyndns2", "dyndns2-change",
                                             "hello", "replay"};
static const char *const mode_names[] = {"keepalive", "new", "idle"};

static void usage_hint(void)
{
    fprintf(stderr, "Try '%s --help' for more information.\n", PROG);
}

static int parse_ulong(const char *opt, const char *v, unsigned long min, unsigned long max,
                       unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || v[0] == '-' || x < min || x > max) {
        fprintf(stderr, "%s: %s: expected a whole number from %lu to %lu, got '%s'\n", PROG,
                opt, min, max, v);
        return -1;
    }
    *out = (unsigned long)x;
    return 0;
}

static int parse_double(const char *opt, const char *v, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !isfinite(x) || x < min || x > max) {
        fprintf(stderr, "%s: %s: expected a number from %g to %g, got '%s'\n", PROG, opt, min,
                max, v);
        return -1;
    }
    *out = x;
    return 0;
}

static int pick(const char *opt, const char *v, const char *const *names, size_t n, int *out)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = (int)i;
            return 0;
        }
    }
    fprintf(stderr, "%s: %s: unknown value '%s' (one of:", PROG, opt, v);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %s", names[i]);
    fprintf(stderr, ")\n");
    return -1;
}

/* Returns 0 to run, 1 for --help, 2 for --version, -1 on a usage error. */
static int parse_args(int argc, char **argv, struct options *o)
{
    enum { O_SERVER = 256, O_CA, O_PLAIN, O_TLSMAX, O_HOST, O_DEVICES, O_WORKLOAD, O_PATH,
           O_MODE, O_RESUME, O_CONNS, O_THREADS, O_DURATION, O_COUNT, O_RATE, O_WARMUP,
           O_TIMEOUT, O_BURST, O_PING, O_REQUEST, O_SOURCES };
    static const struct option longopts[] = {
        {"server", required_argument, NULL, O_SERVER},
        {"ca", required_argument, NULL, O_CA},
        {"plain", no_argument, NULL, O_PLAIN},
        {"tls-max", required_argument, NULL, O_TLSMAX},
        {"host-header", required_argument, NULL, O_HOST},
        {"devices", required_argument, NULL, O_DEVICES},
        {"workload", required_argument, NULL, O_WORKLOAD},
        {"path", required_argument, NULL, O_PATH},
        {"request", required_argument, NULL, O_REQUEST},
        {"sources", required_argument, NULL, O_SOURCES},
        {"mode", required_argument, NULL, O_MODE},
        {"resume", no_argument, NULL, O_RESUME},
        {"connections", required_argument, NULL, O_CONNS},
        {"threads", required_argument, NULL, O_THREADS},
        {"duration", required_argument, NULL, O_DURATION},
        {"count", required_argument, NULL, O_COUNT},
        {"rate", required_argument, NULL, O_RATE},
        {"warmup", no_argument, NULL, O_WARMUP},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"connect-burst", required_argument, NULL, O_BURST},
        {"idle-ping", required_argument, NULL, O_PING},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c, v;
    unsigned long ul;

    memset(o, 0, sizeof *o);
    o->mode = LD_MODE_KEEPALIVE;
    o->wl = LD_WL_NOCHG;
    o->path = "/";
    o->connections = 16;
    o->threads = 1;
    o->connect_burst = 256;
    o->timeout = 10;
    o->tls_max = 13;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qhV", longopts, NULL)) != -1) {
        switch (c) {
        case O_SERVER: o->server = optarg; break;
        case O_CA: o->ca = optarg; break;
        case O_PLAIN: o->plain = 1; break;
        case O_TLSMAX:
            if (strcmp(optarg, "1.2") == 0) {
                o->tls_max = 12;
            } else if (strcmp(optarg, "1.3") == 0) {
                o->tls_max = 13;
            } else {
                fprintf(stderr, "%s: --tls-max: expected 1.2 or 1.3\n", PROG);
                return -1;
            }
            break;
        case O_HOST: o->host_header = optarg; break;
        case O_DEVICES: o->devices = optarg; break;
        case O_WORKLOAD:
            if (pick("--workload", optarg, workload_names, 6, &v) != 0)
                return -1;
            o->wl = (ld_workload_t)v;
            o->wl_given = 1;
            break;
        case O_REQUEST: o->request = optarg; break;
        case O_SOURCES:
            if (parse_ulong("--sources", optarg, 1, 250, &o->sources) != 0)
                return -1;
            break;
        case O_PATH:
            if (optarg[0] != '/' || strlen(optarg) > 200 ||
                strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789-._~/?&=%+:@!$'()*,;") != strlen(optarg)) {
                fprintf(stderr, "%s: --path: expected /... of at most 200 URL characters\n",
                        PROG);
                return -1;
            }
            o->path = optarg;
            break;
        case O_MODE:
            if (pick("--mode", optarg, mode_names, 3, &v) != 0)
                return -1;
            o->mode = (ld_mode_t)v;
            break;
        case O_RESUME: o->resume = 1; break;
        case O_CONNS:
            if (parse_ulong("--connections", optarg, 1, 1000000, &o->connections) != 0)
                return -1;
            break;
        case O_THREADS:
            if (parse_ulong("--threads", optarg, 1, 256, &o->threads) != 0)
                return -1;
            break;
        case O_DURATION:
            if (parse_double("--duration", optarg, 0.001, 31536000, &o->duration) != 0)
                return -1;
            break;
        case O_COUNT:
            if (parse_ulong("--count", optarg, 1, 4000000000UL, &ul) != 0)
                return -1;
            o->count = ul;
            break;
        case O_RATE:
            if (parse_double("--rate", optarg, 0.001, 10000000, &o->rate) != 0)
                return -1;
            break;
        case O_WARMUP: o->warmup = 1; break;
        case O_TIMEOUT:
            if (parse_double("--timeout", optarg, 0.001, 3600, &o->timeout) != 0)
                return -1;
            break;
        case O_BURST:
            if (parse_ulong("--connect-burst", optarg, 1, 100000, &o->connect_burst) != 0)
                return -1;
            break;
        case O_PING:
            if (parse_double("--idle-ping", optarg, 0.01, 86400, &o->idle_ping) != 0)
                return -1;
            break;
        case 'q': o->quiet = 1; break;
        case 'h': return 1;
        case 'V': return 2;
        case ':':
            fprintf(stderr, "%s: option %s needs a value\n", PROG, argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "%s: unknown option %s\n", PROG, argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", PROG, argv[optind]);
        return -1;
    }
    const char *why = NULL;
    int device_wl = o->wl != LD_WL_HELLO && o->wl != LD_WL_REPLAY;
    if (o->server == NULL)
        why = "--server is required";
    else if (!o->plain && o->ca == NULL)
        why = "--ca is required (or --plain for plain HTTP)";
    else if (o->plain && o->ca != NULL)
        why = "--ca and --plain exclude each other";
    else if (o->mode != LD_MODE_IDLE && o->duration == 0 && o->count == 0)
        why = "--duration or --count is required";
    else if (o->mode == LD_MODE_IDLE && (o->count != 0 || o->rate > 0 || o->warmup))
        why = "--mode idle takes no --count, --rate or --warmup";
    else if (o->mode == LD_MODE_IDLE && o->wl_given)
        why = "--mode idle sends no requests: --workload does not apply";
    else if (o->mode != LD_MODE_IDLE && device_wl && o->devices == NULL)
        why = "--devices is required for this workload";
    else if (o->resume && (o->mode != LD_MODE_NEW || o->plain))
        why = "--resume needs --mode new and TLS";
    else if (o->warmup && !device_wl)
        why = "--warmup applies to the device workloads only";
    else if (o->idle_ping > 0 && o->mode != LD_MODE_IDLE)
        why = "--idle-ping applies to --mode idle only";
    else if ((o->wl == LD_WL_REPLAY) != (o->request != NULL))
        why = "--request FILE goes with --workload replay, and only with it";
    else if (o->sources > 0 && o->plain)
        why = "--sources needs TLS";
    else if (o->threads > o->connections)
        why = "--threads cannot exceed --connections";
    if (why != NULL) {
        fprintf(stderr, "%s: %s\n", PROG, why);
        return -1;
    }
    return 0;
}

/* Splits "name:port", "[v6]:port" into host and port. */
static int split_host_port(const char *in, char *host, size_t host_size, char *port,
                           size_t port_size)
{
    const char *h = in, *p = NULL;
    size_t hlen;

    if (in[0] == '[') {
        const char *close = strchr(in, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        h = in + 1;
        hlen = (size_t)(close - h);
        p = close + 2;
    } else {
        const char *colon = strrchr(in, ':');
        if (colon == NULL || strchr(in, ':') != colon)
            return -1;
        hlen = (size_t)(colon - in);
        p = colon + 1;
    }
    if (hlen == 0 || hlen >= host_size)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    char *end;
    long v = strtol(p, &end, 10);
    if (*p == '\0' || *end != '\0' || v < 1 || v > 65535)
        return -1;
    snprintf(port, port_size, "%ld", v);
    return 0;
}

static int is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Raises the soft descriptor limit to cover need. */
static int raise_nofile(rlim_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        fprintf(stderr, "%s: %llu connections need about %llu file descriptors, but the hard "
                "limit is %llu: raise it (ulimit -Hn as root, LimitNOFILE=, or "
                "/etc/security/limits.conf)\n", PROG, (unsigned long long)(need - 64),
                (unsigned long long)need, (unsigned long long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "%s: cannot raise the file descriptor limit to %llu: %s\n", PROG,
                (unsigned long long)need, strerror(errno));
        return -1;
    }
    return 0;
}

static json_t *ms(double us)
{
    return json_real(round(us) / 1000.0);
}

static json_t *results_json(const ld_stats_t *s)
{
    json_t *r = json_object();
    for (unsigned i = 0; i < LD_R_COUNT; i++)
        json_object_set_new(r, ld_result_name((ld_result_t)i), json_integer((json_int_t)s->results[i]));
    return r;
}

static uint64_t errors_total(const ld_stats_t *s)
{
    return s->err_connect + s->err_tls + s->err_closed + s->err_timeout + s->err_http;
}

static json_t *summary(const struct options *o, const ld_stats_t *s, const ld_stats_t *w,
                       size_t ndevices, int interrupted)
{
    json_t *j = json_object();
#define SETI(obj, k, v) json_object_set_new((obj), (k), json_integer((json_int_t)(v)))
    json_object_set_new(j, "tool", json_string(PROG));
    json_object_set_new(j, "version", json_string(LD_VERSION));
    json_object_set_new(j, "server", json_string(o->server));
    json_object_set_new(j, "tls", json_boolean(!o->plain));
    json_object_set_new(j, "mode", json_string(mode_names[o->mode]));
    json_object_set_new(j, "workload", o->mode == LD_MODE_IDLE
                                           ? json_null() : json_string(workload_names[o->wl]));
    json_object_set_new(j, "resume", json_boolean(o->resume));
    SETI(j, "connections", o->connections);
    SETI(j, "threads", o->threads);
    SETI(j, "devices", ndevices);
    json_object_set_new(j, "rate_target", o->rate > 0 ? json_real(o->rate) : json_null());
    json_object_set_new(j, "duration_s", o->duration > 0 ? json_real(o->duration) : json_null());
    json_object_set_new(j, "count", o->count > 0 ? json_integer((json_int_t)o->count) : json_null());
    SETI(j, "requests", s->requests);
    SETI(j, "ok", s->ok);
    json_object_set_new(j, "results", results_json(s));
    json_t *st = json_object();
    for (unsigned i = 0; i < 600; i++) {
        if (s->status[i] != 0) {
            char k[8];
            snprintf(k, sizeof k, "%u", i);
            SETI(st, k, s->status[i]);
        }
    }
    json_object_set_new(j, "http_status", st);
    json_t *e = json_object();
    SETI(e, "connect", s->err_connect);
    SETI(e, "tls", s->err_tls);
    SETI(e, "closed", s->err_closed);
    SETI(e, "timeout", s->err_timeout);
    SETI(e, "http", s->err_http);
    SETI(e, "total", errors_total(s));
    json_object_set_new(j, "errors", e);
    SETI(j, "skipped", s->skipped);
    SETI(j, "device_waits", s->device_waits);
    json_object_set_new(j, "elapsed_s", json_real(s->elapsed_s));
    uint64_t valid = 0;
    for (unsigned i = 0; i < LD_R_COUNT; i++)
        valid += s->results[i];
    double el = s->elapsed_s > 0 ? s->elapsed_s : 1e-9;
    json_object_set_new(j, "rate_per_s", json_real((double)valid / el));
    json_object_set_new(j, "ok_per_s", json_real((double)s->ok / el));
    json_t *l = json_object();
    SETI(l, "count", s->hist.count);
    json_object_set_new(l, "min", ms(s->hist.count ? (double)s->hist.min_us : 0));
    json_object_set_new(l, "mean", ms(s->hist.count ? s->hist.sum_us / (double)s->hist.count : 0));
    json_object_set_new(l, "p50", ms(ld_hist_quantile(&s->hist, 0.50)));
    json_object_set_new(l, "p90", ms(ld_hist_quantile(&s->hist, 0.90)));
    json_object_set_new(l, "p99", ms(ld_hist_quantile(&s->hist, 0.99)));
    json_object_set_new(l, "p99.9", ms(ld_hist_quantile(&s->hist, 0.999)));
    json_object_set_new(l, "max", ms((double)s->hist.max_us));
    json_object_set_new(j, "latency_ms", l);
    SETI(j, "connections_opened", s->opened);
    SETI(j, "handshakes_resumed", s->resumed);
    SETI(j, "closed_by_peer", s->closed_by_peer);
    SETI(j, "open_max", s->open_max);
    SETI(j, "open_end", s->open_end);
    json_object_set_new(j, "open_phase_s", json_real(s->open_phase_s));
    if (o->rate > 0) {
        SETI(j, "rate_unsent", s->rate_unsent);
        SETI(j, "backlog_max", s->backlog_max);
    }
    if (o->mode == LD_MODE_IDLE)
        SETI(j, "pings", s->pings);
    if (o->warmup) {
        json_t *wj = json_object();
        SETI(wj, "requests", w->requests);
        SETI(wj, "ok", w->ok);
        json_object_set_new(wj, "results", results_json(w));
        SETI(wj, "errors", errors_total(w));
        json_object_set_new(wj, "elapsed_s", json_real(w->elapsed_s));
        json_object_set_new(j, "warmup", wj);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        json_t *cpu = json_object();
        json_object_set_new(cpu, "user", json_real((double)ru.ru_utime.tv_sec +
                                                   (double)ru.ru_utime.tv_usec / 1e6));
        json_object_set_new(cpu, "system", json_real((double)ru.ru_stime.tv_sec +
                                                     (double)ru.ru_stime.tv_usec / 1e6));
        json_object_set_new(j, "cpu_s", cpu);
    }
    json_object_set_new(j, "interrupted", json_boolean(interrupted));
#undef SETI
    return j;
}

/* --request FILE: one whole request of at most LD_REQUEST_MAX bytes. */
static int read_request(const char *path, uint8_t *buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: --request %s: %s\n", PROG, path, strerror(errno));
        return -1;
    }
    *len = fread(buf, 1, LD_REQUEST_MAX, f);
    int more = fgetc(f) != EOF, bad = ferror(f);
    fclose(f);
    if (bad || more || *len == 0) {
        fprintf(stderr, "%s: --request %s: %s\n", PROG, path,
                bad ? "read error" : more ? "longer than 1024 bytes" : "empty");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options opt;
    ld_cfg_t cfg;
    ld_stats_t *st = NULL, *warm = NULL;
    ld_device_t *devs = NULL;
    size_t ndev = 0;
    SSL_CTX *ctx = NULL;
    struct addrinfo hints, *res = NULL;
    char host[256], port[8], verify[256], host_header[DDNS_HOST_MAX + 1], err[512];
    char server_text[300];
    static uint8_t replay[LD_REQUEST_MAX];
    size_t replay_len = 0;
    int rc = EXIT_USAGE, interrupted = 0;

    signal(SIGPIPE, SIG_IGN);
    memset(&cfg, 0, sizeof cfg);
    int r = parse_args(argc, argv, &opt);
    if (r != 0) {
        if (r == 1) {
            fputs(help_text, stdout);
            rc = EXIT_RAN;
        } else if (r == 2) {
            printf("%s %s (firmware SDK %s)\n", PROG, LD_VERSION, DDNS_SDK_VERSION);
            rc = EXIT_RAN;
        } else {
            usage_hint();
        }
        goto out;
    }
    if (split_host_port(opt.server, host, sizeof host, port, sizeof port) != 0) {
        fprintf(stderr, "%s: --server: expected HOST:PORT or [IPV6]:PORT\n", PROG);
        usage_hint();
        goto out;
    }
    if (opt.host_header != NULL) {
        size_t hl = strlen(opt.host_header);
        char ignored[8];
        if (hl == 0 || hl > DDNS_HOST_MAX ||
            ddns_request_check(&(ddns_request_t){
                .host = ddns_span(opt.host_header, hl),
                .device_id = DDNS_SPAN_LITERAL("020000000001"),
                .kid = DDNS_SPAN_LITERAL("k1")}) != DDNS_OK) {
            fprintf(stderr, "%s: --host-header: expected a host name of visible characters\n",
                    PROG);
            goto out;
        }
        snprintf(host_header, sizeof host_header, "%s", opt.host_header);
        if (split_host_port(opt.host_header, verify, sizeof verify, ignored, sizeof ignored) != 0)
            snprintf(verify, sizeof verify, "%s", opt.host_header);
    } else {
        size_t hl = strlen(host);
        snprintf(verify, sizeof verify, "%s", host);
        if (hl + 2 > DDNS_HOST_MAX) {
            fprintf(stderr, "%s: --server: host name too long\n", PROG);
            goto out;
        }
        if (strchr(host, ':') != NULL) {    /* IPv6 literal: brackets */
            host_header[0] = '[';
            memcpy(host_header + 1, host, hl);
            memcpy(host_header + 1 + hl, "]", 2);
        } else {
            memcpy(host_header, host, hl + 1);
        }
    }

    int device_wl = opt.mode != LD_MODE_IDLE && opt.wl != LD_WL_HELLO && opt.wl != LD_WL_REPLAY;
    if (opt.request != NULL && read_request(opt.request, replay, &replay_len) != 0)
        goto out;
    if (device_wl) {
        if (ld_devices_load(opt.devices, opt.wl == LD_WL_DYNDNS2 ||
                                             opt.wl == LD_WL_DYNDNS2_CHANGE,
                            &devs, &ndev, err, sizeof err) != 0) {
            fprintf(stderr, "%s: --devices %s\n", PROG, err);
            goto out;
        }
        if (ndev < opt.threads) {
            fprintf(stderr, "%s: %zu devices for %lu threads: each thread needs a device\n",
                    PROG, ndev, opt.threads);
            goto out;
        }
    }

    if (!opt.plain) {
        ctx = SSL_CTX_new(TLS_client_method());
        if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
            SSL_CTX_set_max_proto_version(ctx, opt.tls_max == 12 ? TLS1_2_VERSION
                                                                 : TLS1_3_VERSION) != 1 ||
            ld_run_tls_init(ctx, opt.resume) != 0) {
            fprintf(stderr, "%s: cannot set up TLS\n", PROG);
            rc = EXIT_SETUP;
            goto out;
        }
        if (SSL_CTX_load_verify_locations(ctx, opt.ca, NULL) != 1) {
            const char *why = ERR_reason_error_string(ERR_peek_last_error());
            fprintf(stderr, "%s: --ca %s: cannot load CA certificates: %s\n", PROG, opt.ca,
                    why != NULL ? why : "unknown error");
            goto out;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }

    rc = EXIT_SETUP;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0 || res == NULL) {
        fprintf(stderr, "%s: --server %s: %s\n", PROG, host, gai_strerror(gai));
        goto out;
    }
    if (opt.sources > 0 && res->ai_family != AF_INET) {
        fprintf(stderr, "%s: --sources needs an IPv4 server address\n", PROG);
        goto out;
    }
    memcpy(&cfg.addr, res->ai_addr, res->ai_addrlen);
    cfg.addrlen = res->ai_addrlen;
    if (raise_nofile((rlim_t)opt.connections + 64) != 0)
        goto out;

    snprintf(server_text, sizeof server_text, "%s", opt.server);
    cfg.server_text = server_text;
    cfg.ssl = ctx;
    cfg.verify_name = verify;
    cfg.verify_is_ip = is_ip_literal(verify);
    cfg.resume = opt.resume;
    cfg.mode = opt.mode;
    cfg.work.wl = opt.mode == LD_MODE_IDLE ? LD_WL_HELLO : opt.wl;
    cfg.work.host = host_header;
    cfg.work.path = opt.path;
    cfg.work.replay = replay;
    cfg.work.replay_len = replay_len;
    cfg.sources = (unsigned)opt.sources;
    if (RAND_bytes((unsigned char *)&cfg.work.change_base, sizeof cfg.work.change_base) != 1)
        cfg.work.change_base = (uint32_t)time(NULL);
    cfg.devices = devs;
    cfg.ndevices = ndev;
    cfg.connections = (unsigned)opt.connections;
    cfg.threads = (unsigned)opt.threads;
    cfg.rate = opt.rate;
    cfg.duration = opt.duration;
    cfg.count = opt.count;
    cfg.timeout = opt.timeout;
    cfg.idle_ping = opt.idle_ping;
    cfg.connect_burst = (unsigned)opt.connect_burst;
    cfg.warmup = opt.warmup;
    cfg.quiet = opt.quiet;

    if (!opt.quiet) {
        fprintf(stderr, "%s: %lu connection(s), %lu thread(s), %s %s, mode %s", PROG,
                opt.connections, opt.threads, opt.server, opt.plain ? "plain" : "TLS",
                mode_names[opt.mode]);
        if (opt.mode != LD_MODE_IDLE)
            fprintf(stderr, ", workload %s", workload_names[opt.wl]);
        if (ndev > 0)
            fprintf(stderr, ", %zu devices", ndev);
        if (opt.rate > 0)
            fprintf(stderr, ", %g requests/s", opt.rate);
        if (opt.duration > 0)
            fprintf(stderr, ", %g s", opt.duration);
        if (opt.count > 0)
            fprintf(stderr, ", %llu requests", opt.count);
        fprintf(stderr, "\n");
    }
    st = malloc(sizeof *st);
    warm = malloc(sizeof *warm);
    if (st == NULL || warm == NULL) {
        fprintf(stderr, "%s: out of memory\n", PROG);
        goto out;
    }
    if (ld_run(&cfg, st, warm, &interrupted) != 0)
        goto out;

    json_t *j = summary(&opt, st, warm, ndev, interrupted);
    if (j == NULL || json_dumpf(j, stdout, JSON_REAL_PRECISION(7)) != 0) {
        fprintf(stderr, "%s: cannot write the summary\n", PROG);
        json_decref(j);
        goto out;
    }
    json_decref(j);
    fputc('\n', stdout);
    fflush(stdout);
    if (opt.mode == LD_MODE_IDLE)
        rc = st->open_end > 0 ? EXIT_RAN : EXIT_NOTHING;
    else
        rc = st->ok > 0 ? EXIT_RAN : EXIT_NOTHING;
out:
    free(st);
    free(warm);
    if (res != NULL)
        freeaddrinfo(res);
    SSL_CTX_free(ctx);
    ld_devices_free(devs, ndev);
    return rc;
}
