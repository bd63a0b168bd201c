/* gw_pubproc: the publisher process (see gw_pubproc.h). */
#include "gw_pubproc.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmn_io.h"
#include "gw_dns.h"
#include "gw_err.h"
#include "gw_log.h"

/* Longest answer. */
#define GW_PP_ANSWER_MAX 8192

/* ---- in the publisher process ------------------------------------------- */

/* The answer: "ok", or "error" and the problems, then a NUL. */
static void gw_pp_answer(int fd, const char *errors)
{
    char a[GW_PP_ANSWER_MAX];
    int n = errors == NULL ? snprintf(a, sizeof a, "ok\n")
                           : snprintf(a, sizeof a, "error\n%.8000s", errors);
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof a ? sizeof a - 1 : (size_t)n;
    (void)cmn_write_all(fd, a, len + 1);     /* with the NUL */
}

/* Loads path with its secrets and checks every zone's TSIG key: the
 * configuration, or NULL with the problems in msgs. */
static gw_config_t *gw_pp_load(const char *path, gw_config_msgs_t *msgs)
{
    gw_config_t *cfg = NULL;
    char err[512];
    if (gw_config_load(path, &cfg, msgs) != GW_OK) {
        gw_config_free(cfg);
        return NULL;
    }
    for (size_t i = 0; i < cfg->nzones; i++) {
        const gw_zone_conf_t *z = &cfg->zones[i];
        if (gw_dns_check_tsig(z, err, sizeof err) != GW_OK)
            gw_config_zone_error(cfg, msgs, z, "tsig_secret_file", "%s", err);
    }
    if (msgs->nerrors > 0) {
        gw_config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Reads one question line; 0 at EOF or on error. */
static size_t gw_pp_read_line(int fd, char *buf, size_t len)
{
    size_t n = 0;
    while (n + 1 < len) {
        ssize_t r = read(fd, buf + n, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return n + 1;
}

/* Answers the gateway's questions until it closes the socket. */
static void gw_pp_serve(int fd, const gw_config_t *cfg, gw_publish_t *pub)
{
    gw_config_t *pending = NULL;
    char q[64];
    while (gw_pp_read_line(fd, q, sizeof q) > 0) {
        gw_config_msgs_t msgs;
        memset(&msgs, 0, sizeof msgs);
        if (strcmp(q, "check") == 0) {
            gw_config_free(pending);
            pending = gw_pp_load(cfg->path, &msgs);
            gw_pp_answer(fd, pending ? NULL : msgs.errors ? msgs.errors : "out of memory\n");
        } else if (strcmp(q, "apply") == 0) {
            /* zones added or removed need a restart (the gateway says so) */
            if (pending != NULL && gw_config_same_zones(cfg, pending) &&
                gw_publish_set_zones(pub, pending->zones, pending->nzones) != GW_OK)
                gw_warn("publisher: out of memory: the zones' previous settings stay");
            if (pending != NULL)
                gw_log_set_level(pending->log_level);
            gw_config_free(pending);
            pending = NULL;
            gw_pp_answer(fd, NULL);
        } else if (strcmp(q, "abort") == 0) {
            gw_config_free(pending);
            pending = NULL;
            gw_pp_answer(fd, NULL);
        } else {
            gw_pp_answer(fd, "unknown question\n");
        }
        gw_config_msgs_clear(&msgs);
    }
    gw_config_free(pending);
}

static void gw_pp_child(int fd, const char *path, gw_publish_health_t *health)
{
    static const int ignored[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        signal(ignored[i], SIG_IGN);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() == 1)
        _exit(1);
    (void)prctl(PR_SET_NAME, "ddns-publish", 0, 0, 0);
    gw_config_msgs_t msgs;
    memset(&msgs, 0, sizeof msgs);
    gw_config_t *cfg = gw_pp_load(path, &msgs);
    gw_publish_t *pub = NULL;
    if (cfg == NULL) {
        gw_pp_answer(fd, msgs.errors ? msgs.errors : "out of memory\n");
        _exit(1);
    }
    gw_log_set_level(cfg->log_level);
    gw_log_set_format(cfg->log_format);
    if (gw_publish_start(cfg, health, &pub) != GW_OK) {
        gw_pp_answer(fd, "the DNS publisher could not start\n");
        _exit(1);
    }
    gw_pp_answer(fd, NULL);
    gw_pp_serve(fd, cfg, pub);
    gw_publish_stop(pub);       /* after its current batch */
    gw_config_free(cfg);
    gw_config_msgs_clear(&msgs);
    _exit(0);
}

/* ---- in the gateway --------------------------------------------------------- */

int gw_pubproc_start(gw_pubproc_t *pp, const char *path)
{
    int sv[2];
    pp->pid = -1;
    pp->fd = -1;
    pp->health = gw_publish_health_new();
    if (pp->health == NULL)
        return GW_ENOMEM;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        gw_error("publisher process: socketpair: %s", strerror(errno));
        return GW_EIO;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        gw_error("publisher process: fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return GW_EIO;
    }
    if (pid == 0) {
        close(sv[0]);
        gw_pp_child(sv[1], path, pp->health);
    }
    close(sv[1]);
    pp->pid = pid;
    pp->fd = sv[0];
    return GW_OK;
}

/* Reads one answer (up to its NUL): GW_OK, or the problems into msgs. */
static int gw_pp_read_answer(gw_pubproc_t *pp, gw_config_msgs_t *msgs)
{
    char a[GW_PP_ANSWER_MAX];
    size_t n = 0;
    for (;;) {
        struct pollfd pfd = {.fd = pp->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 30000);
        if (pr < 0 && errno == EINTR)
            continue;
        ssize_t r = pr > 0 ? read(pp->fd, a + n, sizeof a - 1 - n) : -1;
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || n + (size_t)r >= sizeof a - 1) {
            gw_config_error(msgs, "the publisher process does not answer");
            return GW_EIO;
        }
        n += (size_t)r;
        if (memchr(a, '\0', n) != NULL)
            break;
    }
    if (strncmp(a, "ok\n", 3) == 0)
        return GW_OK;
    const char *l = strchr(a, '\n');
    for (l = l ? l + 1 : a + strlen(a); *l; ) {
        size_t len = strcspn(l, "\n");
        if (len > 0)
            gw_config_error(msgs, "%.*s", (int)len, l);
        l += len + (l[len] == '\n');
    }
    return GW_ECONFIG;
}

int gw_pubproc_started(gw_pubproc_t *pp, gw_config_msgs_t *msgs)
{
    return pp->pid > 0 ? gw_pp_read_answer(pp, msgs) : GW_ECLOSED;
}

int gw_pubproc_ask(gw_pubproc_t *pp, const char *question, gw_config_msgs_t *msgs)
{
    char q[64];
    int n = snprintf(q, sizeof q, "%s\n", question);
    if (pp->pid <= 0 || n < 0 || cmn_write_all(pp->fd, q, (size_t)n) != 0) {
        gw_config_error(msgs, "the publisher process does not answer");
        return GW_EIO;
    }
    return gw_pp_read_answer(pp, msgs);
}

void gw_pubproc_stop(gw_pubproc_t *pp)
{
    if (pp->pid <= 0) {
        gw_publish_health_free(pp->health);
        pp->health = NULL;
        return;
    }
    if (pp->fd >= 0)
        close(pp->fd);
    pp->fd = -1;
    int st;
    while (waitpid(pp->pid, &st, 0) < 0 && errno == EINTR)
        ;
    pp->pid = -1;
    gw_publish_health_free(pp->health);
    pp->health = NULL;
}
