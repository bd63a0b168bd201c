/* fake_platform.c: runs the example DDNS task (example_loop.c) against a
 * scripted gateway and checks every request it sends and every wait it
 * chooses. The platform functions of platform.h are implemented here with
 * a simulated clock; the "gateway" checks each request by rebuilding it
 * with the SDK from the fields it carries (so the signature is checked
 * too), checks the body the script expects (no address, or the peer
 * learnt from the previous answers) and answers from the script. Prints
 * one line and exits 0 when all is as expected. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddns_sha256.h"
#include "platform.h"

void ddns_task(const device_config_t *cfg);

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "example loop: step %d: check failed: %s (line %d)\n", step, \
                    #cond, __LINE__);                                                  \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#define SERVER_OFFSET 1699999900u   /* gateway clock minus the device clock */

static const device_config_t config = {
    "ddns.example.test", "3c5ab4f09a21", "k1", 2,
    { 0x67, 0xe5, 0x19, 0xad, 0x8c, 0x15, 0x93, 0x95, 0xba, 0x13, 0x8e, 0xf8, 0x1a, 0x5e, 0x7d,
      0x7c, 0xf5, 0x0f, 0xaf, 0x27, 0xc9, 0x1f, 0xc9, 0xc0, 0x33, 0x7e, 0x0f, 0x54, 0xf3, 0xdb,
      0xd7, 0x6d },
};

/* What the gateway does at each step, and what the task must do next. */
static const struct {
    const char *body;    /* the body the request must have */
    const char *answer;  /* raw HTTP response; NULL: the connection fails */
    unsigned chunks;     /* delivered in this many pieces */
    char wait;           /* 's' sleep, 'w' wait for an address change, 'a' alert */
    uint32_t min, max;   /* the wait in seconds */
} script[] = {
    { "", "HTTP/1.1 401 Unauthorized\r\nContent-Length: 19\r\n\r\nbadtime 1700000000\n", 1,
      's', 4, 5 },
    { "", "HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\ngood 198.51.100.7\n", 1, 'w', 86400,
      129599 },
    { "", NULL, 0, 's', 300, 449 },
    /* the address learnt from good is named as peer from now on */
    { "peer=198.51.100.7",
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 19\r\n\r\n"
      "nochg 198.51.100.7\n", 3, 'w', 86400, 129599 },
    /* the connection comes from elsewhere now: sign again at once */
    { "peer=198.51.100.7", "HTTP/1.1 409 Conflict\r\nContent-Length: 18\r\n\r\nmoved 203.0.113.9\n",
      1, 's', 0, 0 },
    { "peer=203.0.113.9", "HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\ngood 203.0.113.9\n", 1,
      'w', 86400, 129599 },
    { "peer=203.0.113.9", "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 600\r\n"
      "Content-Length: 14\r\n\r\nratelimit 600\n", 2, 's', 600, 899 },
    { "peer=203.0.113.9", "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\ndisabled\n", 1,
      'a', 0, 0 },
};
#define NSTEPS ((int)(sizeof script / sizeof script[0]))

static int step;
static uint64_t device_clock = 100;   /* the RTC restarted at the epoch */
static uint64_t last_ts;              /* the time of the previous request */
static uint32_t rng = 12345;
static size_t sent_at, recv_pos;
static unsigned chunks_left;

uint64_t platform_time(void) { return device_clock; }

void platform_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n--) {
        rng = rng * 1664525u + 1013904223u;
        *p++ = (uint8_t)(rng >> 24);
    }
}

int platform_tls_open(const char *host)
{
    CHECK(step < NSTEPS);
    CHECK(strcmp(host, config.host) == 0);
    if (script[step].answer == NULL) {
        /* a failed connection is the end of this attempt */
        return -1;
    }
    return 7;
}

/* The gateway's check: the request is exactly what the SDK builds from the
 * ts and nonce it carries and the body the script expects, so the
 * signature is right; its ts is the gateway's time once the clock was
 * corrected, and always later than the previous one. */
int platform_tls_send(int conn, const void *buf, size_t len)
{
    const char *req = buf, *ts = strstr(req, ",ts="), *nonce = strstr(req, ",nonce=");
    const char *body = script[step].body;
    ddns_request_t expect;
    ddns_state_t peer;
    uint8_t again[DDNS_REQUEST_MAX];
    size_t again_len, body_len = strlen(body);
    uint64_t now;

    CHECK(conn == 7 && ts != NULL && nonce != NULL && len < sizeof again);
    memset(&expect, 0, sizeof expect);
    memset(&peer, 0, sizeof peer);
    if (body_len > 5) {
        memcpy(peer.peer, body + 5, body_len - 5);   /* "peer=..." */
        peer.peer_len = (uint8_t)(body_len - 5);
        expect.state = &peer;
    }
    expect.host = ddns_span(config.host, strlen(config.host));
    expect.device_id = ddns_span(config.device_id, DDNS_DEVICE_ID_LEN);
    expect.kid = ddns_span(config.kid, config.kid_len);
    expect.ts = strtoull(ts + 4, NULL, 10);
    for (int i = 0; i < 8; i++) {
        unsigned v;
        CHECK(sscanf(nonce + 7 + 2 * i, "%2x", &v) == 1);
        expect.nonce[i] = (uint8_t)v;
    }
    CHECK(ddns_request_build(&expect, config.secret, again, sizeof again, &again_len) == DDNS_OK);
    CHECK(again_len == len && memcmp(again, buf, len) == 0);
    CHECK(memcmp(req + len - body_len - 4, "\r\n\r\n", 4) == 0);
    now = step == 0 ? device_clock                    /* not corrected yet */
                    : device_clock + SERVER_OFFSET;   /* corrected by badtime */
    CHECK(expect.ts == (now > last_ts ? now : last_ts + 1));
    last_ts = expect.ts;
    recv_pos = 0;
    chunks_left = script[step].chunks;
    sent_at = 1;
    return 0;
}

long platform_tls_recv(int conn, void *buf, size_t len)
{
    const char *answer = script[step].answer;
    size_t total = strlen(answer), n;

    CHECK(conn == 7 && sent_at == 1);
    if (recv_pos == total)
        return 0;
    n = chunks_left > 1 ? (total - recv_pos) / chunks_left : total - recv_pos;
    chunks_left--;
    if (n > len)
        n = len;
    memcpy(buf, answer + recv_pos, n);
    recv_pos += n;
    return (long)n;
}

void platform_tls_close(int conn)
{
    CHECK(conn == 7);
    sent_at = 0;
}

static void waited(char kind, uint32_t seconds)
{
    CHECK(script[step].wait == kind);
    CHECK(seconds >= script[step].min && seconds <= script[step].max);
    device_clock += seconds;
    step++;
}

void platform_sleep(uint32_t seconds) { waited('s', seconds); }

void platform_wait_address_change(uint32_t min_s, uint32_t max_s)
{
    CHECK(min_s == ddns_options_default().min_interval);
    waited('w', max_s);
}

void platform_alert(const ddns_response_t *answer)
{
    CHECK(answer != NULL && answer->result == DDNS_RESULT_DISABLED);
    waited('a', 0);
}

int main(void)
{
    ddns_task(&config);
    CHECK(step == NSTEPS);
    printf("example loop: %d exchanges as expected (badtime, good, no connection, nochg, "
           "moved, good, ratelimit, disabled)\n", NSTEPS);
    return 0;
}
