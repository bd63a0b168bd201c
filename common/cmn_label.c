/* cmn_label: the reserved-label rule and the zone question (see cmn_label.h). */
#include "cmn_label.h"

#include <errno.h>
#include <fnmatch.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "cmn_text.h"

#define CMN_LABEL_SEP ", \t"
#define CMN_LABEL_MSG_MAX 512

/* The next pattern of *p into pat (NUL-terminated); 0 at the end of the
 * list, -1 for a pattern too long. */
static int cmn_label_next(const char **p, char pat[CMN_LABEL_PATTERN_MAX + 1])
{
    *p += strspn(*p, CMN_LABEL_SEP);
    size_t n = strcspn(*p, CMN_LABEL_SEP);
    if (n == 0)
        return 0;
    int rc = n <= CMN_LABEL_PATTERN_MAX ? 1 : -1;
    size_t keep = rc == 1 ? n : CMN_LABEL_PATTERN_MAX;
    memcpy(pat, *p, keep);
    pat[keep] = '\0';
    *p += n;
    return rc;
}

int cmn_label_list_check(const char *list, char *err, size_t errlen)
{
    char pat[CMN_LABEL_PATTERN_MAX + 1];
    const char *p = list;
    int rc;
    while ((rc = cmn_label_next(&p, pat)) != 0) {
        if (rc < 0) {
            cmn_errf(err, errlen, "pattern '%s...' is longer than %d characters", pat,
                     CMN_LABEL_PATTERN_MAX);
            return -1;
        }
        int depth = 0;
        for (const char *c = pat; *c; c++) {
            if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                  strchr("-_*?[]!", *c) != NULL)) {
                cmn_errf(err, errlen, "pattern '%s': '%c' is not allowed (patterns are "
                         "lowercase labels with the wildcards * ? [...])", pat, *c);
                return -1;
            }
            depth += *c == '[' ? 1 : *c == ']' ? -1 : 0;
            if (depth < 0 || depth > 1)
                break;
        }
        if (depth != 0) {
            cmn_errf(err, errlen, "pattern '%s': unbalanced '[' ']'", pat);
            return -1;
        }
    }
    return 0;
}

int cmn_label_reserved(const char *list, const char *label, char *pat, size_t patlen)
{
    char one[CMN_LABEL_PATTERN_MAX + 1];
    const char *p = list;
    int rc;
    while ((rc = cmn_label_next(&p, one)) != 0) {
        if (rc > 0 && fnmatch(one, label, 0) == 0) {
            if (pat != NULL && patlen > 0)
                snprintf(pat, patlen, "%s", one);
            return 1;
        }
    }
    return 0;
}

size_t cmn_label_query(uint16_t id, const char *fqdn, uint8_t *buf, size_t cap)
{
    size_t len = strlen(fqdn), at = 12;
    if (len == 0 || len > 253 || cap < 12 + len + 2 + 4)
        return 0;
    memset(buf, 0, 12);
    buf[0] = (uint8_t)(id >> 8);
    buf[1] = (uint8_t)id;
    buf[5] = 1;                                 /* QDCOUNT; no recursion asked */
    for (const char *l = fqdn; *l;) {
        size_t n = strcspn(l, ".");
        if (n == 0 || n > 63)
            return 0;
        buf[at++] = (uint8_t)n;
        memcpy(buf + at, l, n);
        at += n;
        l += n;
        if (*l == '.' && *++l == '\0')
            return 0;
    }
    buf[at++] = 0;
    buf[at++] = 0;                              /* QTYPE A */
    buf[at++] = 1;
    buf[at++] = 0;                              /* QCLASS IN */
    buf[at++] = 1;
    return at;
}

int cmn_label_answer(uint16_t id, const uint8_t *msg, size_t len, char *err, size_t errlen)
{
    static const char *const rcodes[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                         "NOTIMP", "REFUSED"};
    if (len < 12 || msg[0] != (uint8_t)(id >> 8) || msg[1] != (uint8_t)id ||
        (msg[2] & 0x80) == 0 || (msg[2] & 0x78) != 0) {
        cmn_errf(err, errlen, "the server's message is not an answer to the query");
        return CMN_LABEL_NO_ANSWER;
    }
    unsigned rcode = msg[3] & 0x0fu;
    if (rcode == 3)
        return CMN_LABEL_FREE;
    if (rcode == 0)
        return CMN_LABEL_IN_ZONE;
    if (rcode < sizeof rcodes / sizeof rcodes[0])
        cmn_errf(err, errlen, "the server answered %s", rcodes[rcode]);
    else
        cmn_errf(err, errlen, "the server answered rcode %u", rcode);
    return CMN_LABEL_NO_ANSWER;
}

/* A numeric "addr", "addr:port" or "[v6]:port" into res (port 53 by default). */
static int cmn_label_server(const char *server, struct addrinfo **res, char *err, size_t errlen)
{
    char host[256], port[8] = "53";
    const char *colon = strrchr(server, ':');
    if (server[0] == '[') {
        const char *end = strchr(server, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
            cmn_errf(err, errlen, "'%s' is not addr[:port]", server);
            return -1;
        }
        snprintf(host, sizeof host, "%.*s", (int)(end - server - 1), server + 1);
        if (end[1] == ':')
            snprintf(port, sizeof port, "%s", end + 2);
    } else if (colon != NULL && strchr(server, ':') == colon) {
        snprintf(host, sizeof host, "%.*s", (int)(colon - server), server);
        snprintf(port, sizeof port, "%s", colon + 1);
    } else {
        snprintf(host, sizeof host, "%s", server);
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    if (getaddrinfo(host, port, &hints, res) != 0) {
        cmn_errf(err, errlen, "'%s' is not a numeric address with an optional port", server);
        return -1;
    }
    return 0;
}

int cmn_label_ask(const char *server, const char *fqdn, int timeout_ms, char *err,
                  size_t errlen)
{
    uint8_t q[CMN_LABEL_MSG_MAX], a[CMN_LABEL_MSG_MAX];
    uint16_t id = 0;
    struct addrinfo *ai = NULL;
    int fd = -1, rc = CMN_LABEL_NO_ANSWER;
    if (RAND_bytes((unsigned char *)&id, sizeof id) != 1) {
        cmn_errf(err, errlen, "the random generator failed");
        return rc;
    }
    size_t qlen = cmn_label_query(id, fqdn, q, sizeof q);
    if (qlen == 0) {
        cmn_errf(err, errlen, "'%s' is not a domain name", fqdn);
        return rc;
    }
    if (cmn_label_server(server, &ai, err, errlen) != 0)
        return rc;
    fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        send(fd, q, qlen, 0) != (ssize_t)qlen) {
        cmn_errf(err, errlen, "cannot ask %s: %s", server, strerror(errno));
        goto out;
    }
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = poll(&pfd, 1, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            cmn_errf(err, errlen, "%s did not answer within %d ms", server, timeout_ms);
            goto out;
        }
        ssize_t got = recv(fd, a, sizeof a, 0);
        if (got < 0) {
            cmn_errf(err, errlen, "no answer from %s: %s", server, strerror(errno));
            goto out;
        }
        rc = cmn_label_answer(id, a, (size_t)got, err, errlen);
        break;
    }
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}
