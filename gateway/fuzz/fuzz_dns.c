/* fuzz_dns: libFuzzer target for what a DNS server sends back on the
 * publisher's connection (gw_dns_conn_recv: TCP framing, the answer's
 * parse, id, TSIG and rcode checks).
 *
 * Each input is one connection: the target listens on 127.0.0.1, opens a
 * gw_dns connection to itself, sends one signed UPDATE (read and dropped
 * on the server side), writes the input as the server's bytes and closes
 * the server side. When the input is long enough, its first frame carries
 * the id of the UPDATE sent, so that the checks after the id match run.
 * gw_dns_conn_recv is then called until it reports anything but an
 * answer. Checks: a result is one of those gw_dns.h names, an answer (good
 * or refused) always names the UPDATE sent and comes at most once, an
 * error always says why, and no unsigned or wrongly signed answer is ever
 * taken as confirmed or as a signed refusal (the fuzzer never has the
 * key's MAC right). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gw_config.h"
#include "gw_dns.h"
#include "gw_err.h"

static int listener = -1;
static gw_zone_conf_t zone;

static void setup(void)
{
    struct sockaddr_in *sa = (struct sockaddr_in *)&zone.primary.ss;
    socklen_t sl = sizeof *sa;

    listener = socket(AF_INET, SOCK_STREAM, 0);
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listener < 0 || bind(listener, (struct sockaddr *)sa, sl) != 0 || listen(listener, 4) != 0 ||
        getsockname(listener, (struct sockaddr *)sa, &sl) != 0)
        abort();
    snprintf(zone.primary.text, sizeof zone.primary.text, "127.0.0.1:%u", ntohs(sa->sin_port));
    zone.name = "ddns.example.test";
    zone.tsig_key_name = "ddns-update";
    zone.tsig_algorithm = "hmac-sha256";
    zone.tsig_secret = "MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE=";
    zone.default_ttl = 60;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_dns_conn_t *c = NULL;
    char err[256];
    uint8_t *bytes = NULL, drop[4096];
    uint16_t id = 0, got = 0;
    int server = -1, answers = 0;

    if (listener < 0)
        setup();
    if (gw_dns_conn_open(&zone, &c, err, sizeof err) != GW_OK)
        abort();
    if ((server = accept(listener, NULL, NULL)) < 0)
        abort();
    gw_dns_change_t ch = {"cam-1.ddns.example.test", 0, "192.0.2.1", 0};
    size_t n = 1;
    if (gw_dns_conn_send(c, &ch, &n, &id, err, sizeof err) != GW_OK || n != 1)
        abort();
    if (recv(server, drop, sizeof drop, 0) <= 0)
        abort();
    bytes = malloc(size ? size : 1);
    if (bytes == NULL)
        abort();
    memcpy(bytes, data, size);
    if (size >= 4) {
        bytes[2] = (uint8_t)(id >> 8);
        bytes[3] = (uint8_t)id;
    }
    for (size_t off = 0; off < size;) {
        ssize_t w = send(server, bytes + off, size - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(server);
    for (;;) {
        err[0] = '\0';
        int signed_rcode = 0;
        int rc = gw_dns_conn_recv(c, 100, &got, &signed_rcode, err, sizeof err);
        if (rc == GW_OK || signed_rcode != -1)
            abort();            /* nothing here is signed with the key */
        if (rc == GW_EDNS) {
            if (got != id || ++answers > 1 || err[0] == '\0')
                abort();
            continue;
        }
        if (rc == GW_ETIMEDOUT)
            break;
        if (rc != GW_EIO || err[0] == '\0')
            abort();
        break;
    }
    free(bytes);
    gw_dns_conn_close(c);
    return 0;
}
