/* ddns-client: reference Linux device client of the DDNS device protocol.
 *
 * Sends one signed update to the gateway over TLS and reports the answer
 * (and, when the gateway answers moved, signs once more with the address
 * it names, as the SDK's ddns_next() says).
 * The request is built and the answer parsed by the firmware SDK
 * (libddns_sdk.a), which also keeps the state across attempts (the
 * address learnt from the answers, the clock); this program adds what a
 * device platform provides: the credentials store (a JSON file), the state
 * file, the clock, the random nonce, TCP and TLS (OpenSSL). See --help for
 * usage and exit codes. */
#include "ddns_check.h"
#include "ddns_credentials.h"
#include "ddns_error.h"
#include "ddns_http.h"
#include "ddns_sdk.h"
#include "ddns_sha256.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define PROG "ddns-client"
#define USER_AGENT PROG "/" DDNS_SDK_VERSION

enum exit_code {
    EXIT_UPDATED = 0,  /* good or nochg */
    EXIT_REFUSED = 1,  /* any other valid answer of the gateway (moved after the retry) */
    EXIT_USAGE = 2,    /* command line, credentials file or CA file */
    EXIT_NETWORK = 3,  /* name resolution, TCP, TLS, invalid answer */
};

#define CRED_FILE_MAX 4096
#define STATE_FILE_MAX 64
#define RESPONSE_MAX 4096
#define DEFAULT_TIMEOUT 15

struct options {
    const char *server;
    const char *ca;
    const char *credentials;
    const char *ipv4;
    const char *ipv6;
    const char *peer;
    const char *state;
    const char *host_header;
    const char *request_out;
    long timeout;
    bool have_timestamp;
    uint64_t timestamp;
    bool no_syntax_check;
    bool verbose;
};

struct credentials {
    char device_id[DDNS_DEVICE_ID_LEN + 1];
    char kid[DDNS_KID_MAX + 1];
    uint8_t secret[DDNS_SECRET_LEN];
};

static const char help_text[] =
"NAME\n"
"    ddns-client - send one signed dynamic DNS update for this device\n"
"\n"
"SYNOPSIS\n"
"    ddns-client --server HOST:PORT --ca CA_FILE --credentials FILE\n"
"                [--ipv4 ADDR] [--ipv6 ADDR] [--peer ADDR] [--state FILE]\n"
"                [--host-header NAME] [--timeout SECONDS] [--timestamp SECONDS]\n"
"                [--no-syntax-check] [--verbose]\n"
"    ddns-client --credentials FILE --request-out FILE [--server HOST:PORT]\n"
"                [--ipv4 ADDR] [--ipv6 ADDR] [--peer ADDR] [--state FILE]\n"
"                [--timestamp SECONDS]\n"
"    ddns-client --help\n"
"\n"
"DESCRIPTION\n"
"    ddns-client is the reference device client of the DDNS device protocol\n"
"    (docs/PROTOCOL.md). It connects to the gateway over TLS 1.2 or later,\n"
"    sends one update request signed with the device secret (HMAC-SHA256 over\n"
"    the request fields, the current time and a random nonce) and prints the\n"
"    gateway's one-line answer on standard output, for example\n"
"    \"good 192.0.2.10\". Requests are built and answers parsed by the firmware\n"
"    SDK, so this program also serves as an example of its use.\n"
"\n"
"    Without --ipv4 and --ipv6 the gateway records the address the connection\n"
"    comes from (A record for an IPv4 connection, AAAA for IPv6). Such a\n"
"    request may name the address the gateway saw last (--peer, or the one\n"
"    learnt in --state): it then records the connection's address on\n"
"    condition that it is that one, so that a poll from an unchanged address\n"
"    is answered nochg without the gateway writing anything. When the\n"
"    connection comes from another address the gateway answers\n"
"    \"moved ADDR\" and records nothing; ddns-client then signs the request\n"
"    again at once with peer=ADDR and sends it once more, printing both\n"
"    answers (the firmware SDK's ddns_next() decides this retry, and a\n"
"    second moved in a row is not retried).\n"
"\n"
"OPTIONS\n"
"    --server HOST:PORT\n"
"        Gateway to connect to. HOST is a DNS name, an IPv4 address or an IPv6\n"
"        address in brackets ([2001:db8::1]:8443). PORT defaults to 443.\n"
"    --ca CA_FILE\n"
"        PEM file with the certificate(s) the gateway certificate must chain\n"
"        to. The system trust store is not used.\n"
"    --credentials FILE\n"
"        Credentials file of this device, as printed by the provisioning tool\n"
"        (see CREDENTIALS FILE).\n"
"    --ipv4 ADDR\n"
"        IPv4 address to record (dotted quad), instead of the connection's.\n"
"    --ipv6 ADDR\n"
"        IPv6 address to record, instead of the connection's.\n"
"    --peer ADDR\n"
"        Record the connection's address on condition that it is ADDR (IPv4\n"
"        or IPv6): sends the body parameter peer=ADDR. Not with --ipv4 or\n"
"        --ipv6. Overrides the address read from --state.\n"
"    --state FILE\n"
"        Keep the address learnt from the gateway's answers in FILE (see\n"
"        STATE FILE): a run without --ipv4, --ipv6 and --peer sends the\n"
"        address FILE holds as peer, and after a good, nochg or moved\n"
"        answer the address learnt is written back. A FILE that does not\n"
"        exist yet holds no address.\n"
"    --host-header NAME\n"
"        Name sent in the Host header and checked against the gateway\n"
"        certificate, when it differs from the HOST of --server (for example\n"
"        when connecting to an address). A \":port\" suffix is ignored for the\n"
"        certificate check.\n"
"    --timeout SECONDS\n"
"        Limit for connecting and for each send or receive (default 15).\n"
"    --timestamp SECONDS\n"
"        Sign with this time (seconds since the epoch) instead of the system\n"
"        clock: for testing the gateway's clock window and replay rule.\n"
"    --no-syntax-check\n"
"        Send what the SDK's request builder accepts without first checking\n"
"        the full syntax of the addresses (ddns_request_check): for testing\n"
"        the gateway's own checks.\n"
"    --request-out FILE\n"
"        Write the signed request, byte for byte, to FILE (mode 0600) and exit\n"
"        without connecting. --server (for the Host header, default\n"
"        localhost) and --ca are optional in this mode.\n"
"    -v, --verbose\n"
"        Describe each step on standard error (the secret is never shown).\n"
"    -h, --help\n"
"        Show this text.\n"
"\n"
"STATE FILE\n"
"    One line of text: the address learnt (IPv4 dotted quad or IPv6 text)\n"
"    and a newline, or nothing. It is replaced as a whole, mode 0600.\n"
"\n"
"CREDENTIALS FILE\n"
"    One JSON object, as printed by the provisioning tool:\n"
"        {\"device_id\":\"3c5ab4f09a21\",\"kid\":\"k1/2\",\"secret\":\"<43 characters>\",\n"
"         \"password\":\"k1/2.<43 characters>\",\"fqdn\":\"cam1.example.net\"}\n"
"    device_id is required, and kid (the key reference, sent as it is) and\n"
"    secret (base64url). A device provisioned before secret generations (a\n"
"    kid without \"/\") may have password (kid.secret) instead. When both\n"
"    are present they must agree: from generation 1 on the password is the\n"
"    dyndns2 password derived from the secret (docs/PROTOCOL.md section 3).\n"
"    Other members are ignored. The file should be readable by its owner\n"
"    only; a warning is printed otherwise.\n"
"\n"
"ANSWER\n"
"    After every attempt one line on standard error shows the answer as the\n"
"    SDK parsed it and what the SDK's retry rules say to do next (from a\n"
"    fresh state at the start of the run):\n"
"        ddns-client: answer: result=good addr=192.0.2.10 next=idle delay=97012\n"
"    with addr= (good, nochg, badaddr, moved), detail= (badrequest),\n"
"    server_time= and clock_offset= (badtime) or retry_after= (ratelimit);\n"
"    result=none when there was no valid answer (exit status 3). next is\n"
"    idle (update on change, else keep-alive after delay seconds), retry\n"
"    (after delay seconds) or stop (until a person acts). A moved answer\n"
"    followed by the retry gives two answer lines on standard output and\n"
"    two of these lines.\n"
"\n"
"EXIT STATUS\n"
"    0   the gateway answered good or nochg: the addresses are recorded.\n"
"    1   the gateway refused the update (badrequest, badauth, badtime,\n"
"        disabled, badagent, badaddr, notfound, replay, ratelimit, 911), or\n"
"        answered moved again after the one retry. The token and a short\n"
"        explanation are printed on standard error; for badtime the offset of\n"
"        the device clock from the gateway's. After a moved answer and its\n"
"        retry the status is the second answer's.\n"
"    2   usage error, or unreadable or invalid credentials or CA file.\n"
"    3   network or TLS failure (name resolution, connection, certificate\n"
"        verification, time-out), or an answer that is not valid protocol.\n"
"\n"
"EXAMPLES\n"
"    ddns-client --server ddns.example.com:443 --ca /etc/ddns/ca.pem \\\n"
"                --credentials /etc/ddns/device.json\n"
"    ddns-client --server 127.0.0.1:8443 --host-header ddns.example.test \\\n"
"                --ca ca.pem --credentials device.json --ipv4 192.0.2.10 -v\n"
"    ddns-client --server ddns.example.com:443 --ca /etc/ddns/ca.pem \\\n"
"                --credentials /etc/ddns/device.json --state /var/lib/ddns/peer\n";

/* Descriptions of the SDK error codes for people (the SDK itself only
 * names them, for logs). */
static const char *describe(ddns_err_t err)
{
    switch (err) {
    case DDNS_OK: return "success";
    case DDNS_E_NULL: return "required pointer argument is NULL";
    case DDNS_E_BUFFER: return "output buffer too small";
    case DDNS_E_HOST: return "invalid host (empty, too long, blank or non-printable byte)";
    case DDNS_E_USER_AGENT: return "invalid user agent (too long, non-printable byte or edge blank)";
    case DDNS_E_DEVICE_ID: return "device id is not 12 lowercase hexadecimal digits";
    case DDNS_E_DEVICE_ID_ZERO: return "device id is the all-zero address";
    case DDNS_E_DEVICE_ID_MULTICAST: return "device id is a multicast or broadcast address";
    case DDNS_E_KID: return "kid is not a key reference (1 to 16 characters of [a-z0-9], "
                            "optionally \"/\" and a generation)";
    case DDNS_E_TS: return "timestamp above 999999999999";
    case DDNS_E_IPV4: return "invalid IPv4 address";
    case DDNS_E_IPV6: return "invalid IPv6 address";
    case DDNS_E_SECRET: return "secret is not 43 base64url characters";
    case DDNS_E_PASSWORD: return "password is not of the form kid.secret (from generation 1 "
                                 "on it does not carry the secret: give kid and secret)";
    case DDNS_E_RESP_FORMAT: return "answer is not one printable line ended by LF of at most 128 bytes";
    case DDNS_E_RESP_TOKEN: return "answer has an unknown result token";
    case DDNS_E_RESP_STATUS: return "answer token does not match the HTTP status";
    case DDNS_E_RESP_DATA: return "answer data words missing, extra or malformed";
    case DDNS_E_HTTP_INCOMPLETE: return "HTTP response incomplete";
    case DDNS_E_HTTP_SYNTAX: return "malformed HTTP response";
    case DDNS_E_HTTP_LENGTH: return "HTTP response without valid Content-Length";
    case DDNS_E_OPTIONS: return "options of ddns_next() out of their ranges";
    case DDNS_E_PEER: return "the address to send as peer is not an IPv4 or IPv6 address";
    }
    return ddns_strerror(err);
}

static void usage_hint(void)
{
    fprintf(stderr, "Try '%s --help' for more information.\n", PROG);
}

/* Returns 0 to run, 1 when --help was given, -1 on a usage error. */
static int parse_args(int argc, char **argv, struct options *o)
{
    enum { O_SERVER = 256, O_CA, O_CRED, O_IPV4, O_IPV6, O_PEER, O_STATE, O_HOST, O_TIMEOUT, O_TS,
           O_REQ_OUT, O_NO_CHECK };
    static const struct option longopts[] = {
        { "server", required_argument, NULL, O_SERVER },
        { "ca", required_argument, NULL, O_CA },
        { "credentials", required_argument, NULL, O_CRED },
        { "ipv4", required_argument, NULL, O_IPV4 },
        { "ipv6", required_argument, NULL, O_IPV6 },
        { "peer", required_argument, NULL, O_PEER },
        { "state", required_argument, NULL, O_STATE },
        { "host-header", required_argument, NULL, O_HOST },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "timestamp", required_argument, NULL, O_TS },
        { "request-out", required_argument, NULL, O_REQ_OUT },
        { "no-syntax-check", no_argument, NULL, O_NO_CHECK },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    memset(o, 0, sizeof *o);
    o->timeout = DEFAULT_TIMEOUT;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":vh", longopts, NULL)) != -1) {
        switch (c) {
        case O_SERVER: o->server = optarg; break;
        case O_CA: o->ca = optarg; break;
        case O_CRED: o->credentials = optarg; break;
        case O_IPV4: o->ipv4 = optarg; break;
        case O_IPV6: o->ipv6 = optarg; break;
        case O_PEER: o->peer = optarg; break;
        case O_STATE: o->state = optarg; break;
        case O_HOST: o->host_header = optarg; break;
        case O_TIMEOUT: {
            char *end;
            errno = 0;
            o->timeout = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || o->timeout < 1 || o->timeout > 3600) {
                fprintf(stderr, "%s: --timeout: expected 1 to 3600 seconds\n", PROG);
                return -1;
            }
            break;
        }
        case O_TS: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || optarg[0] < '0' || optarg[0] > '9' ||
                v > 999999999999ULL) {
                fprintf(stderr, "%s: --timestamp: expected seconds since the epoch\n", PROG);
                return -1;
            }
            o->timestamp = (uint64_t)v;
            o->have_timestamp = true;
            break;
        }
        case O_REQ_OUT: o->request_out = optarg; break;
        case O_NO_CHECK: o->no_syntax_check = true; break;
        case 'v': o->verbose = true; break;
        case 'h': return 1;
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
    if (o->peer != NULL && (o->ipv4 != NULL || o->ipv6 != NULL)) {
        fprintf(stderr, "%s: --peer is sent alone: not with --ipv4 or --ipv6\n", PROG);
        return -1;
    }
    if (o->request_out != NULL && o->server == NULL)
        o->server = "localhost";
    if (o->request_out != NULL && o->credentials == NULL) {
        fprintf(stderr, "%s: --request-out needs --credentials\n", PROG);
        return -1;
    }
    if (o->request_out == NULL && (o->server == NULL || o->ca == NULL || o->credentials == NULL)) {
        fprintf(stderr, "%s: --server, --ca and --credentials are required\n", PROG);
        return -1;
    }
    return 0;
}

/* Splits "name:port", "[v6]:port", "name" or "[v6]" into host and port
 * (default 443). Returns false on a syntax error. */
static bool split_host_port(const char *in, char *host, size_t host_size, char *port,
                            size_t port_size)
{
    const char *h = in, *p = NULL;
    size_t hlen;

    if (in[0] == '[') {
        const char *close = strchr(in, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return false;
        h = in + 1;
        hlen = (size_t)(close - h);
        if (close[1] == ':')
            p = close + 2;
    } else {
        const char *colon = strchr(in, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL)
            return false; /* bare IPv6 literal: brackets are required */
        hlen = colon ? (size_t)(colon - in) : strlen(in);
        if (colon != NULL)
            p = colon + 1;
    }
    if (hlen == 0 || hlen >= host_size)
        return false;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (p == NULL)
        p = "443";
    char *end;
    long v = strtol(p, &end, 10);
    if (*p == '\0' || *end != '\0' || v < 1 || v > 65535)
        return false;
    snprintf(port, port_size, "%ld", v);
    return true;
}

static bool is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Wipes a JSON string value in place before the object is freed. */
static void wipe_json_string(json_t *v)
{
    if (json_is_string(v))
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

static const char *json_text(json_t *root, const char *key, size_t *len)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

/* Reads and checks the credentials file. Returns 0 or EXIT_USAGE. */
/* Whether password (len bytes) is the dyndns2 password of the secret of
 * key reference kid (docs/PROTOCOL.md section 3): kid "." base64url of the
 * secret itself for generation 0, of HMAC-SHA256(secret,
 * "ddns-dyndns2-password-v1") from generation 1 on. */
static bool password_matches(const char *kid, const uint8_t secret[DDNS_SECRET_LEN],
                             const char *password, size_t len)
{
    static const char label[] = "ddns-dyndns2-password-v1";
    uint8_t pw[DDNS_SECRET_LEN];
    char b64[48], want[DDNS_KID_MAX + 1 + sizeof b64];
    unsigned int pwlen = DDNS_SECRET_LEN;
    bool same = false;

    if (strchr(kid, '/') == NULL)
        memcpy(pw, secret, sizeof pw);
    else if (HMAC(EVP_sha256(), secret, DDNS_SECRET_LEN, (const uint8_t *)label,
                  sizeof label - 1, pw, &pwlen) == NULL)
        goto out;
    /* base64url without padding from OpenSSL's base64 */
    EVP_EncodeBlock((unsigned char *)b64, pw, sizeof pw);
    for (char *c = b64; *c; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    b64[DDNS_SECRET_TEXT_LEN] = '\0';
    int n = snprintf(want, sizeof want, "%s.%s", kid, b64);
    same = n > 0 && (size_t)n == len && CRYPTO_memcmp(want, password, len) == 0;
    OPENSSL_cleanse(want, sizeof want);
out:
    OPENSSL_cleanse(pw, sizeof pw);
    OPENSSL_cleanse(b64, sizeof b64);
    return same;
}

static int load_credentials(const char *path, struct credentials *cred)
{
    char *text = NULL;
    json_t *root = NULL;
    json_error_t jerr;
    struct stat st;
    int fd = -1, rc = EXIT_USAGE;
    ssize_t n = 0;
    size_t used = 0, len;
    const char *s;
    ddns_err_t err;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "%s: credentials file %s: %s\n", PROG, path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CRED_FILE_MAX) {
        fprintf(stderr, "%s: credentials file %s: not a regular file of at most %d bytes\n",
                PROG, path, CRED_FILE_MAX);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        fprintf(stderr, "%s: warning: credentials file %s is accessible by group or others\n",
                PROG, path);
    text = malloc(CRED_FILE_MAX + 1);
    if (text == NULL) {
        fprintf(stderr, "%s: out of memory\n", PROG);
        goto out;
    }
    while (used < CRED_FILE_MAX && (n = read(fd, text + used, CRED_FILE_MAX - used)) > 0)
        used += (size_t)n;
    if (n < 0) {
        fprintf(stderr, "%s: credentials file %s: %s\n", PROG, path, strerror(errno));
        goto out;
    }
    root = json_loadb(text, used, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        fprintf(stderr, "%s: credentials file %s: line %d: %s\n", PROG, path, jerr.line,
                jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        fprintf(stderr, "%s: credentials file %s: not a JSON object\n", PROG, path);
        goto out;
    }

    s = json_text(root, "device_id", &len);
    if (s == NULL) {
        fprintf(stderr, "%s: credentials file %s: missing device_id\n", PROG, path);
        goto out;
    }
    if ((err = ddns_device_id_check(ddns_span(s, len))) != DDNS_OK) {
        fprintf(stderr, "%s: credentials file %s: device_id: %s\n", PROG, path,
                describe(err));
        goto out;
    }
    memcpy(cred->device_id, s, len + 1);

    bool have = false;
    size_t pw_len = 0;
    const char *pw = json_text(root, "password", &pw_len);
    if (pw != NULL && json_object_get(root, "kid") == NULL) {
        /* the password alone: the legacy kid.secret of generation 0 */
        size_t kid_len;
        err = ddns_password_decode(ddns_span(pw, pw_len), cred->kid, &kid_len, cred->secret);
        if (err != DDNS_OK) {
            fprintf(stderr, "%s: credentials file %s: password: %s\n", PROG, path,
                    describe(err));
            goto out;
        }
        have = true;
    }
    const char *kid = json_text(root, "kid", &len);
    size_t kid_len = len;
    s = json_text(root, "secret", &len);
    if (kid != NULL || s != NULL) {
        uint8_t secret[DDNS_SECRET_LEN];
        if (kid == NULL || s == NULL) {
            fprintf(stderr, "%s: credentials file %s: kid and secret go together\n", PROG, path);
            goto out;
        }
        if ((err = ddns_kid_check(ddns_span(kid, kid_len))) != DDNS_OK ||
            (err = ddns_secret_decode(ddns_span(s, len), secret)) != DDNS_OK) {
            fprintf(stderr, "%s: credentials file %s: %s\n", PROG, path, describe(err));
            goto out;
        }
        if (pw != NULL && !password_matches(kid, secret, pw, pw_len)) {
            OPENSSL_cleanse(secret, sizeof secret);
            fprintf(stderr, "%s: credentials file %s: password does not match kid and secret\n",
                    PROG, path);
            goto out;
        }
        memcpy(cred->kid, kid, kid_len + 1);
        memcpy(cred->secret, secret, sizeof secret);
        OPENSSL_cleanse(secret, sizeof secret);
        have = true;
    }
    if (!have) {
        fprintf(stderr, "%s: credentials file %s: needs kid and secret, or password\n", PROG,
                path);
        goto out;
    }
    rc = 0;
out:
    if (root != NULL) {
        wipe_json_string(json_object_get(root, "secret"));
        wipe_json_string(json_object_get(root, "password"));
        json_decref(root);
    }
    if (text != NULL) {
        OPENSSL_cleanse(text, CRED_FILE_MAX + 1);
        free(text);
    }
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        OPENSSL_cleanse(cred, sizeof *cred);
    return rc;
}

/* Connects to host:port within the time-out. Returns the socket or -1. */
static int connect_tcp(const char *host, const char *port, long timeout, bool verbose)
{
    struct addrinfo hints, *res = NULL, *ai;
    struct timeval tv = { .tv_sec = timeout, .tv_usec = 0 };
    int fd = -1, gai, saved = 0;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "%s: cannot resolve %s: %s\n", PROG, host, gai_strerror(gai));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        char addr[INET6_ADDRSTRLEN] = "?";
        getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST);
        if (verbose)
            fprintf(stderr, "%s: connecting to %s port %s\n", PROG, addr, port);
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        /* On Linux SO_SNDTIMEO also bounds connect(). */
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        saved = errno;
        if (verbose)
            fprintf(stderr, "%s: %s port %s: %s\n", PROG, addr, port, strerror(saved));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "%s: cannot connect to %s port %s: %s\n", PROG, host, port,
                saved == EINPROGRESS || saved == EAGAIN ? "connection timed out"
                                                         : strerror(saved));
    return fd;
}

/* Prints the reason of a failed TLS operation (ret: its return value). */
static void tls_error(SSL *ssl, int ret, const char *what)
{
    int kind = SSL_get_error(ssl, ret), saved = errno;
    unsigned long e = ERR_peek_last_error();
    long verify = SSL_get_verify_result(ssl);
    char buf[256];

    if (verify != X509_V_OK) {
        fprintf(stderr, "%s: %s: certificate verification failed: %s\n", PROG, what,
                X509_verify_cert_error_string(verify));
    } else if (kind == SSL_ERROR_WANT_READ || kind == SSL_ERROR_WANT_WRITE ||
               (kind == SSL_ERROR_SYSCALL && (saved == EAGAIN || saved == EWOULDBLOCK))) {
        fprintf(stderr, "%s: %s: timed out\n", PROG, what);
    } else if (kind == SSL_ERROR_ZERO_RETURN ||
               (kind == SSL_ERROR_SYSCALL && saved == 0 && e == 0) ||
               ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        fprintf(stderr, "%s: %s: connection closed by the server\n", PROG, what);
    } else if (kind == SSL_ERROR_SYSCALL && saved != 0) {
        fprintf(stderr, "%s: %s: %s\n", PROG, what, strerror(saved));
    } else if (e != 0) {
        ERR_error_string_n(e, buf, sizeof buf);
        fprintf(stderr, "%s: %s: %s\n", PROG, what, buf);
    } else {
        fprintf(stderr, "%s: %s: TLS error %d\n", PROG, what, kind);
    }
    ERR_clear_error();
}

/* Reads one complete HTTP response into buf. Returns 0 or EXIT_NETWORK. */
static int read_response(SSL *ssl, uint8_t *buf, size_t size, ddns_http_response_t *http)
{
    size_t used = 0;
    ddns_err_t err = DDNS_E_HTTP_INCOMPLETE;

    while (err == DDNS_E_HTTP_INCOMPLETE) {
        int n;
        if (used == size) {
            fprintf(stderr, "%s: answer larger than %zu bytes\n", PROG, size);
            return EXIT_NETWORK;
        }
        errno = 0;
        n = SSL_read(ssl, buf + used, (int)(size - used));
        if (n <= 0) {
            tls_error(ssl, n, used == 0 ? "waiting for the answer"
                                        : "answer incomplete");
            return EXIT_NETWORK;
        }
        used += (size_t)n;
        err = ddns_http_response_parse(ddns_span(buf, used), http);
    }
    if (err != DDNS_OK) {
        fprintf(stderr, "%s: invalid HTTP answer: %s\n", PROG, describe(err));
        return EXIT_NETWORK;
    }
    return 0;
}

/* Reads the address learnt before from the state file (--state) into st:
 * one line, or nothing; a file that does not exist yet holds no address.
 * Returns 0 or EXIT_USAGE. */
static int load_state(const char *path, ddns_state_t *st)
{
    char text[STATE_FILE_MAX + 1];
    size_t used = 0, len;
    ssize_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0) {
        fprintf(stderr, "%s: state file %s: %s\n", PROG, path, strerror(errno));
        return EXIT_USAGE;
    }
    while (used < sizeof text && (n = read(fd, text + used, sizeof text - used)) > 0)
        used += (size_t)n;
    close(fd);
    if (n < 0) {
        fprintf(stderr, "%s: state file %s: %s\n", PROG, path, strerror(errno));
        return EXIT_USAGE;
    }
    len = used > 0 && text[used - 1] == '\n' ? used - 1 : used;
    if (len > 0 && (len > DDNS_IPV6_MAX ||
                    (ddns_ipv4_check(ddns_span(text, len)) != DDNS_OK &&
                     ddns_ipv6_check(ddns_span(text, len)) != DDNS_OK))) {
        fprintf(stderr, "%s: state file %s: not one line with an IPv4 or IPv6 address\n", PROG,
                path);
        return EXIT_USAGE;
    }
    memcpy(st->peer, text, len);
    st->peer_len = (uint8_t)len;
    return 0;
}

/* Replaces the state file with the address learnt in st (mode 0600,
 * written to FILE.tmp and renamed). A failure is a warning: the update
 * itself is done, and the next run learns the address again. */
static void save_state(const char *path, const ddns_state_t *st)
{
    size_t n = strlen(path) + sizeof ".tmp";
    char *tmp = malloc(n), line[DDNS_IPV6_MAX + 2];
    size_t len = st->peer_len;
    int fd = -1, ok = 0;

    if (tmp != NULL) {
        snprintf(tmp, n, "%s.tmp", path);
        memcpy(line, st->peer, len);
        line[len++] = '\n';
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ok = fd >= 0 && fchmod(fd, 0600) == 0 && write(fd, line, len) == (ssize_t)len;
        if (fd >= 0 && close(fd) != 0)
            ok = 0;
        if (ok && rename(tmp, path) != 0)
            ok = 0;
    }
    if (!ok) {
        fprintf(stderr, "%s: warning: cannot write state file %s: %s\n", PROG, path,
                strerror(errno));
        if (fd >= 0)
            unlink(tmp);
    }
    free(tmp);
}

/* Prints the answer as the SDK parsed it and what the SDK says to do next,
 * as one line on stderr: "ddns-client: answer: result=TOKEN [data...]
 * next=idle|retry|stop delay=SECONDS". r is NULL when there was no valid
 * answer. st is the run's state, which ddns_next() updates (the learnt
 * address, the clock offset, the failures in a row). device_now is the
 * clock the request was signed with (--timestamp or the system clock), so
 * a badtime answer shows that clock's offset. Returns the decision; its
 * delay in *delay. */
static ddns_next_t report(ddns_state_t *st, const ddns_response_t *r, uint64_t device_now,
                          uint32_t *delay)
{
    static const char *const next_names[] = { "idle", "retry", "stop" };
    const ddns_options_t opt = ddns_options_default();
    uint32_t rnd = 0;
    unsigned i;

    if (RAND_bytes((unsigned char *)&rnd, (int)sizeof rnd) != 1)
        rnd = (uint32_t)getpid();
    ddns_next_t next = ddns_next(st, &opt, r, device_now, rnd, delay);
    fprintf(stderr, "%s: answer: result=%s", PROG,
            r != NULL ? ddns_result_token(r->result) : "none");
    for (i = 0; r != NULL && i < r->naddrs; i++)
        fprintf(stderr, " addr=%.*s", (int)r->addr[i].len, (const char *)r->addr[i].ptr);
    if (r != NULL && r->result == DDNS_RESULT_BADREQUEST)
        fprintf(stderr, " detail=%.*s", (int)r->detail.len, (const char *)r->detail.ptr);
    if (r != NULL && r->result == DDNS_RESULT_BADTIME)
        fprintf(stderr, " server_time=%" PRIu64 " clock_offset=%" PRId64, r->server_time,
                st->clock_offset);
    if (r != NULL && r->result == DDNS_RESULT_RATELIMIT)
        fprintf(stderr, " retry_after=%" PRIu32, r->retry_after);
    fprintf(stderr, " next=%s delay=%" PRIu32 "\n", next_names[next], *delay);
    return next;
}

/* Explains a refusal on stderr. */
static void explain(const ddns_response_t *r, uint64_t ts)
{
    const char *tok = ddns_result_token(r->result);

    switch (r->result) {
    case DDNS_RESULT_BADREQUEST:
        fprintf(stderr, "%s: %s: the gateway found the request malformed (%.*s); "
                "this is a software fault, do not retry unchanged\n", PROG, tok,
                (int)r->detail.len, (const char *)r->detail.ptr);
        break;
    case DDNS_RESULT_BADAUTH:
        fprintf(stderr, "%s: %s: signature, key id or device not accepted; "
                "check the credentials, do not retry\n", PROG, tok);
        break;
    case DDNS_RESULT_BADTIME: {
        long long off = (long long)(r->server_time - ts);
        fprintf(stderr, "%s: %s: the device clock is %lld s %s the gateway's "
                "(server time %" PRIu64 "); correct the clock and retry\n", PROG, tok,
                off < 0 ? -off : off, off < 0 ? "ahead of" : "behind", r->server_time);
        break;
    }
    case DDNS_RESULT_DISABLED:
        fprintf(stderr, "%s: %s: this device has been revoked; do not retry\n", PROG, tok);
        break;
    case DDNS_RESULT_BADAGENT:
        fprintf(stderr, "%s: %s: the gateway refuses this model or firmware version "
                "(User-Agent); update the firmware, do not retry\n", PROG, tok);
        break;
    case DDNS_RESULT_BADADDR:
        fprintf(stderr, "%s: %s: the gateway does not point names at %.*s (not a globally "
                "reachable address); nothing was recorded, do not retry with it\n", PROG, tok,
                (int)r->addr[0].len, (const char *)r->addr[0].ptr);
        break;
    case DDNS_RESULT_NOTFOUND:
        fprintf(stderr, "%s: %s: the server has no update endpoint; check --server\n", PROG,
                tok);
        break;
    case DDNS_RESULT_REPLAY:
        fprintf(stderr, "%s: %s: timestamp not newer than the last accepted update; "
                "retry later\n", PROG, tok);
        break;
    case DDNS_RESULT_RATELIMIT:
        fprintf(stderr, "%s: %s: too many updates; retry in %" PRIu32 " s\n", PROG, tok,
                r->retry_after);
        break;
    case DDNS_RESULT_SERVERERROR:
        fprintf(stderr, "%s: %s: server-side failure; retry later with backoff\n", PROG, tok);
        break;
    case DDNS_RESULT_MOVED:
        fprintf(stderr, "%s: %s: the gateway sees the connection come from %.*s, not from "
                "the address sent as peer; nothing was recorded, retry later\n", PROG, tok,
                (int)r->addr[0].len, (const char *)r->addr[0].ptr);
        break;
    default:
        fprintf(stderr, "%s: %s\n", PROG, tok);
        break;
    }
}

/* Sets req->ts from the state's clock (--timestamp or the system clock,
 * never earlier than the time signed before in this run) and a fresh
 * random nonce. */
static int sign_time_and_nonce(const struct options *o, ddns_state_t *st, ddns_request_t *req)
{
    time_t now = time(NULL);
    if (now < 0 || RAND_bytes(req->nonce, (int)sizeof req->nonce) != 1) {
        fprintf(stderr, "%s: no clock or no random source\n", PROG);
        return -1;
    }
    req->ts = ddns_clock(st, o->have_timestamp ? o->timestamp : (uint64_t)now);
    return 0;
}

/* --request-out: signs the request and writes its exact bytes to a file. */
static int write_request(const struct options *o, ddns_state_t *st, ddns_request_t *req,
                         const struct credentials *cred)
{
    uint8_t buf[DDNS_REQUEST_MAX];
    size_t len;
    int rc = EXIT_USAGE, fd = -1;
    ddns_err_t err;

    if (sign_time_and_nonce(o, st, req) != 0)
        goto out;
    err = ddns_request_build(req, cred->secret, buf, sizeof buf, &len);
    if (err != DDNS_OK) {
        fprintf(stderr, "%s: cannot build the request: %s\n", PROG, describe(err));
        goto out;
    }
    fd = open(o->request_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) != 0) {
        fprintf(stderr, "%s: --request-out %s: %s\n", PROG, o->request_out, strerror(errno));
        fd = -1;
        goto out;
    }
    fd = -1;
    rc = EXIT_UPDATED;
out:
    if (fd >= 0)
        close(fd);
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

static const char *request_error_option(ddns_err_t err)
{
    switch (err) {
    case DDNS_E_IPV4: return "--ipv4";
    case DDNS_E_IPV6: return "--ipv6";
    case DDNS_E_PEER: return "--peer/--state";
    case DDNS_E_HOST: return "--host-header/--server";
    default: return "request";
    }
}

/* Where to connect and what to verify (from --server and --host-header). */
struct target {
    char host[256], port[8], verify_name[256];
};

/* One attempt: connects, signs req just before sending so that ts is
 * fresh, sends it and reads and parses the answer into *answer (its spans
 * point into response). Returns 0, EXIT_NETWORK (also for an invalid
 * answer) or EXIT_USAGE (the request cannot be built). */
static int attempt(const struct options *o, SSL_CTX *ctx, const struct target *tg,
                   const struct credentials *cred, ddns_state_t *st, ddns_request_t *req,
                   uint8_t *response, size_t response_size, ddns_response_t *answer)
{
    uint8_t request[DDNS_REQUEST_MAX];
    ddns_http_response_t http;
    SSL *ssl = NULL;
    int fd, rc = EXIT_NETWORK, ret;
    size_t len;
    ddns_err_t err;

    fd = connect_tcp(tg->host, tg->port, o->timeout, o->verbose);
    if (fd < 0)
        goto out;
    ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        fprintf(stderr, "%s: cannot set up TLS\n", PROG);
        goto out;
    }
    if (is_ip_literal(tg->verify_name)) {
        ret = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), tg->verify_name);
    } else {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ret = SSL_set1_host(ssl, tg->verify_name) &&
              SSL_set_tlsext_host_name(ssl, tg->verify_name);
    }
    if (ret != 1) {
        fprintf(stderr, "%s: cannot set the expected server name %s\n", PROG, tg->verify_name);
        goto out;
    }
    errno = 0;
    ret = SSL_connect(ssl);
    if (ret != 1) {
        tls_error(ssl, ret, "TLS handshake");
        goto out;
    }
    if (o->verbose)
        fprintf(stderr, "%s: %s with %s, certificate verified for %s\n", PROG,
                SSL_get_version(ssl), SSL_get_cipher_name(ssl), tg->verify_name);

    if (sign_time_and_nonce(o, st, req) != 0)
        goto out;
    err = ddns_request_build(req, cred->secret, request, sizeof request, &len);
    if (err != DDNS_OK) {
        fprintf(stderr, "%s: cannot build the request: %s\n", PROG, describe(err));
        rc = EXIT_USAGE;
        goto out;
    }
    if (o->verbose)
        fprintf(stderr, "%s: sending:\n%.*s\n", PROG, (int)len, (const char *)request);
    errno = 0;
    ret = SSL_write(ssl, request, (int)len);
    if (ret <= 0 || (size_t)ret != len) {
        tls_error(ssl, ret, "sending the request");
        goto out;
    }

    if (read_response(ssl, response, response_size, &http) != 0)
        goto out;
    if (o->verbose)
        fprintf(stderr, "%s: HTTP status %u, %zu byte body\n", PROG, http.status,
                http.content_length);
    err = ddns_response_parse(http.status, http.body, answer);
    if (err != DDNS_OK) {
        fprintf(stderr, "%s: invalid answer from the gateway (HTTP %u): %s\n", PROG,
                http.status, describe(err));
        goto out;
    }
    /* A valid body is one printable line ended by LF. */
    fwrite(http.body.ptr, 1, http.body.len, stdout);
    fflush(stdout);
    SSL_shutdown(ssl);
    rc = 0;
out:
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    OPENSSL_cleanse(request, sizeof request);
    return rc;
}

int main(int argc, char **argv)
{
    struct options opt;
    struct credentials cred;
    struct target tg;
    char host_header[DDNS_HOST_MAX + 1];
    uint8_t response[RESPONSE_MAX];
    ddns_request_t req;
    ddns_state_t st;
    ddns_response_t answer;
    SSL_CTX *ctx = NULL;
    int rc = EXIT_USAGE, ret, tries;
    ddns_err_t err;

    memset(&cred, 0, sizeof cred);
    memset(&st, 0, sizeof st);
    signal(SIGPIPE, SIG_IGN);

    ret = parse_args(argc, argv, &opt);
    if (ret != 0) {
        if (ret > 0) {
            fputs(help_text, stdout);
            rc = EXIT_UPDATED;
        } else {
            usage_hint();
        }
        goto out;
    }
    if (!split_host_port(opt.server, tg.host, sizeof tg.host, tg.port, sizeof tg.port)) {
        fprintf(stderr, "%s: --server: expected HOST:PORT, [IPV6]:PORT or HOST\n", PROG);
        goto out;
    }
    /* Host header and certificate name: --host-header, else the server host. */
    if (opt.host_header != NULL) {
        char ignored[8];
        if (strlen(opt.host_header) > DDNS_HOST_MAX ||
            !split_host_port(opt.host_header, tg.verify_name, sizeof tg.verify_name, ignored,
                             sizeof ignored)) {
            fprintf(stderr, "%s: --host-header: expected NAME or NAME:PORT\n", PROG);
            goto out;
        }
        snprintf(host_header, sizeof host_header, "%s", opt.host_header);
    } else {
        if (strlen(tg.host) + 2 > DDNS_HOST_MAX) {
            fprintf(stderr, "%s: --server: host name too long\n", PROG);
            goto out;
        }
        size_t hl = strlen(tg.host);
        snprintf(tg.verify_name, sizeof tg.verify_name, "%s", tg.host);
        if (strchr(tg.host, ':') != NULL) {   /* IPv6 literal: brackets */
            host_header[0] = '[';
            memcpy(host_header + 1, tg.host, hl);
            host_header[hl + 1] = ']';
            host_header[hl + 2] = '\0';
        } else {
            memcpy(host_header, tg.host, hl + 1);
        }
    }

    rc = load_credentials(opt.credentials, &cred);
    if (rc != 0)
        goto out;
    /* The address learnt before (--state), or the one given (--peer). */
    if (opt.state != NULL && (rc = load_state(opt.state, &st)) != 0)
        goto out;
    rc = EXIT_USAGE;
    if (opt.peer != NULL) {
        size_t n = strlen(opt.peer);
        if (n == 0 || n > DDNS_IPV6_MAX) {
            fprintf(stderr, "%s: --peer: expected an IPv4 or IPv6 address\n", PROG);
            goto out;
        }
        memcpy(st.peer, opt.peer, n);
        st.peer_len = (uint8_t)n;
    }

    memset(&req, 0, sizeof req);
    req.host = ddns_span(host_header, strlen(host_header));
    req.device_id = ddns_span(cred.device_id, strlen(cred.device_id));
    req.kid = ddns_span(cred.kid, strlen(cred.kid));
    req.user_agent = ddns_span(USER_AGENT, strlen(USER_AGENT));
    req.state = &st;   /* without --ipv4 and --ipv6: peer=<learnt address> */
    if (opt.ipv4 != NULL)
        req.ipv4 = ddns_span(opt.ipv4, strlen(opt.ipv4));
    if (opt.ipv6 != NULL)
        req.ipv6 = ddns_span(opt.ipv6, strlen(opt.ipv6));
    if ((opt.ipv4 && !*opt.ipv4) || (opt.ipv6 && !*opt.ipv6)) {
        fprintf(stderr, "%s: --ipv4/--ipv6 need a non-empty address\n", PROG);
        goto out;
    }
    if (!opt.no_syntax_check && (err = ddns_request_check(&req)) != DDNS_OK) {
        fprintf(stderr, "%s: %s: %s\n", PROG, request_error_option(err), describe(err));
        goto out;
    }

    if (opt.request_out != NULL) {
        rc = write_request(&opt, &st, &req, &cred);
        goto out;
    }

    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        fprintf(stderr, "%s: cannot set up TLS\n", PROG);
        rc = EXIT_NETWORK;
        goto out;
    }
    if (SSL_CTX_load_verify_locations(ctx, opt.ca, NULL) != 1) {
        const char *why = ERR_reason_error_string(ERR_peek_last_error());
        fprintf(stderr, "%s: --ca %s: cannot load CA certificates: %s\n", PROG, opt.ca,
                why != NULL ? why : "unknown error");
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

    /* One attempt, and one more when the SDK says to sign again at once
     * (moved: the connection comes from another address than the peer
     * sent, which ddns_next() has learnt). */
    for (tries = 1;; tries++) {
        uint32_t delay = 0;
        ddns_next_t next;

        rc = attempt(&opt, ctx, &tg, &cred, &st, &req, response, sizeof response, &answer);
        if (rc != 0) {
            if (rc == EXIT_NETWORK)
                report(&st, NULL, req.ts, &delay);
            break;
        }
        next = report(&st, &answer, req.ts, &delay);
        if (opt.state != NULL && (answer.result == DDNS_RESULT_GOOD ||
                                  answer.result == DDNS_RESULT_NOCHG ||
                                  answer.result == DDNS_RESULT_MOVED))
            save_state(opt.state, &st);
        if (answer.result == DDNS_RESULT_GOOD || answer.result == DDNS_RESULT_NOCHG) {
            rc = EXIT_UPDATED;
            break;
        }
        if (answer.result == DDNS_RESULT_MOVED && next == DDNS_NEXT_RETRY && delay == 0 &&
            tries == 1 && req.ipv4.len == 0 && req.ipv6.len == 0) {
            fprintf(stderr, "%s: %s: the connection comes from %.*s; signing again with "
                    "peer=%.*s\n", PROG, ddns_result_token(answer.result), (int)st.peer_len,
                    st.peer, (int)st.peer_len, st.peer);
            continue;
        }
        explain(&answer, req.ts);
        rc = EXIT_REFUSED;
        break;
    }

out:
    SSL_CTX_free(ctx);
    OPENSSL_cleanse(&cred, sizeof cred);
    return rc;
}
