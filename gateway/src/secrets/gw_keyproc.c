/* gw_keyproc: the key process (see gw_keyproc.h). */
#include "gw_keyproc.h"

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
#include "cmn_secmem.h"
#include "gw_auth.h"
#include "gw_err.h"
#include "gw_log.h"

/* Bytes a peer may have sent that are not answered yet. */
#define GW_KP_INBUF (GW_KP_FRAME_MAX * 8)

int gw_keyproc_decide(const cmn_keyset_t *keys, const gw_kp_req_t *rq, const uint8_t *data)
{
    if (rq->kid_len > CMN_KID_MAX)
        return 0;
    switch (rq->op) {
    case GW_KP_SIGNATURE:
        return gw_auth_check_signature(gw_auth_keyset_lookup, (void *)keys, rq->kid, rq->kid_len,
                                       rq->generation, rq->device_id, data, rq->data_len,
                                       rq->mac);
    case GW_KP_PASSWORD:
        return gw_auth_check_password(gw_auth_keyset_lookup, (void *)keys, rq->device_id,
                                      rq->kid, rq->kid_len, rq->generation, rq->mac);
    default:
        return 0;
    }
}

/* ---- in the key process ---------------------------------------------------- */

struct gw_kp_peer {
    int fd;
    size_t have;
    uint8_t in[GW_KP_INBUF];
};

struct gw_kp_state {
    cmn_keyset_t *keys;
    int nfds;
    struct gw_kp_peer *peer;    /* [0]: the main thread */
    uint8_t *out;               /* the answers of one read */
    size_t outlen, outcap;
};

static int gw_kp_append(struct gw_kp_state *st, const void *p, size_t n)
{
    if (st->outlen + n > st->outcap) {
        size_t cap = st->outcap ? st->outcap * 2 : 16384;
        while (cap < st->outlen + n)
            cap *= 2;
        uint8_t *o = realloc(st->out, cap);
        if (o == NULL)
            return -1;
        st->out = o;
        st->outcap = cap;
    }
    memcpy(st->out + st->outlen, p, n);
    st->outlen += n;
    return 0;
}

/* A question of the main thread: the answer's result and text. */
static int32_t gw_kp_main_op(struct gw_kp_state *st, const gw_kp_req_t *rq, const uint8_t *data,
                             char *text, size_t textlen)
{
    if (rq->op == GW_KP_KIDS)
        return (int32_t)cmn_keyset_ids(st->keys, text, textlen);
    if ((rq->op != GW_KP_LOAD && rq->op != GW_KP_LOAD_TOKEN) || rq->data_len == 0) {
        snprintf(text, textlen, "unknown question %u", rq->op);
        return -1;
    }
    char where[GW_KP_FRAME_MAX];
    memcpy(where, data, rq->data_len);
    where[rq->data_len] = '\0';
    int token = rq->op == GW_KP_LOAD_TOKEN;
    cmn_keyset_t *fresh = token ? cmn_keyset_load_p11(where, text, textlen)
                                : cmn_keyset_load_dir(where, text, textlen);
    if (fresh != NULL && cmn_keyset_count(fresh) == 0) {
        if (token)
            snprintf(text, textlen, "token '%s' holds no master key (create one with "
                     "'ddns-provision keygen --pkcs11 URI')", cmn_keyset_token_label(fresh));
        else
            snprintf(text, textlen, "no *.key file in %.900s", where);
        cmn_keyset_free(fresh);
        fresh = NULL;
    }
    cmn_wipe(where, sizeof where);      /* a URI may hold a pin-value */
    if (fresh == NULL)
        return -1;
    cmn_keyset_free(st->keys);
    st->keys = fresh;
    return (int32_t)cmn_keyset_ids(st->keys, text, textlen);
}

/* Answers every complete frame in peer i's buffer. -1: a frame that
 * cannot be (the peer is not this program): the peer is dropped. */
static int gw_kp_serve(struct gw_kp_state *st, int i)
{
    struct gw_kp_peer *p = &st->peer[i];
    size_t at = 0;
    st->outlen = 0;
    while (p->have - at >= sizeof(gw_kp_req_t)) {
        gw_kp_req_t rq;
        memcpy(&rq, p->in + at, sizeof rq);
        if (rq.size < sizeof rq || rq.size > GW_KP_FRAME_MAX ||
            rq.size != sizeof rq + rq.data_len)
            return -1;
        if (p->have - at < rq.size)
            break;
        const uint8_t *data = p->in + at + sizeof rq;
        char text[1024] = "";
        gw_kp_ans_t a = {.id = rq.id};
        if (i == 0)
            a.result = gw_kp_main_op(st, &rq, data, text, sizeof text);
        else
            a.result = gw_keyproc_decide(st->keys, &rq, data);
        a.data_len = (uint32_t)strlen(text);
        a.size = (uint32_t)sizeof a + a.data_len;
        if (gw_kp_append(st, &a, sizeof a) != 0 || gw_kp_append(st, text, a.data_len) != 0)
            return -1;
        at += rq.size;
    }
    /* what the signatures covered goes too */
    cmn_wipe(p->in, at);
    memmove(p->in, p->in + at, p->have - at);
    p->have -= at;
    return st->outlen == 0 ? 0 : cmn_write_all(p->fd, st->out, st->outlen);
}

static int gw_kp_loop(struct gw_kp_state *st)
{
    struct pollfd pfd[GW_KP_WORKERS_MAX + 1];
    int live = st->nfds;
    for (;;) {
        for (int i = 0; i < st->nfds; i++)
            pfd[i] = (struct pollfd){.fd = st->peer[i].fd, .events = POLLIN};
        if (poll(pfd, (nfds_t)st->nfds, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (int i = 0; i < st->nfds; i++) {
            struct gw_kp_peer *p = &st->peer[i];
            if (p->fd < 0 || pfd[i].revents == 0)
                continue;
            ssize_t n = read(p->fd, p->in + p->have, sizeof p->in - p->have);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0 || (p->have += (size_t)n, gw_kp_serve(st, i) != 0)) {
                if (i == 0)
                    return 0;       /* the main thread closed: leave */
                close(p->fd);
                p->fd = -1;         /* poll ignores negative descriptors */
                live--;
            }
        }
        if (live == 0)
            return 0;
    }
}

/* The child: fds[0] the main thread's end, fds[1..n] the workers'. */
static void gw_kp_child(const int *fds, int n)
{
    static const int ignored[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
    struct gw_kp_state st = {.nfds = n + 1};
    /* Stops are the parent's: it closes the main socket when it is done
     * with its requests in flight (a SIGTERM to the whole group would
     * otherwise end this process first). */
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        signal(ignored[i], SIG_IGN);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() == 1)
        _exit(1);
    (void)prctl(PR_SET_NAME, "ddns-keys", 0, 0, 0);
    st.peer = cmn_secmem_alloc(sizeof *st.peer * (size_t)(n + 1), NULL);
    if (st.peer == NULL) {
        gw_error("key process: out of memory");
        _exit(1);
    }
    for (int i = 0; i <= n; i++)
        st.peer[i].fd = fds[i];
    int rc = gw_kp_loop(&st);
    cmn_keyset_free(st.keys);
    cmn_secmem_free(st.peer, sizeof *st.peer * (size_t)(n + 1));
    free(st.out);
    _exit(rc == 0 ? 0 : 1);
}

/* ---- in the parent ----------------------------------------------------------- */

int gw_keyproc_start(gw_keyproc_t *kp, int nworkers, void (*in_child)(void *), void *arg)
{
    int mine[GW_KP_WORKERS_MAX + 1], theirs[GW_KP_WORKERS_MAX + 1], made = 0, rc = GW_EIO;
    memset(kp, 0, sizeof *kp);
    kp->pid = -1;
    kp->main_fd = -1;
    if (nworkers < 1 || nworkers > GW_KP_WORKERS_MAX)
        return GW_EINVAL;
    for (; made <= nworkers; made++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            gw_error("key process: socketpair: %s", strerror(errno));
            goto out;
        }
        mine[made] = sv[0];
        theirs[made] = sv[1];
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        gw_error("key process: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        for (int i = 0; i < made; i++)
            close(mine[i]);
        if (in_child != NULL)
            in_child(arg);
        gw_kp_child(theirs, nworkers);
    }
    kp->pid = pid;
    kp->main_fd = mine[0];
    kp->nworkers = nworkers;
    for (int i = 0; i < nworkers; i++)
        kp->worker_fd[i] = mine[i + 1];
    for (int i = 0; i < made; i++)
        close(theirs[i]);
    return GW_OK;
out:
    for (int i = 0; i < made; i++) {
        close(mine[i]);
        close(theirs[i]);
    }
    return rc;
}

/* Reads exactly n bytes within the key process's answer time. */
static int gw_kp_read_all(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, 10000);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int gw_keyproc_ask(gw_keyproc_t *kp, enum gw_kp_op op, const char *dir, char *text,
                   size_t textlen)
{
    static uint32_t next_id;
    uint8_t frame[GW_KP_FRAME_MAX];
    size_t dl = dir ? strlen(dir) : 0;
    gw_kp_ans_t a;
    snprintf(text, textlen, "the key process does not answer");
    if (kp->main_fd < 0 || sizeof(gw_kp_req_t) + dl > sizeof frame) {
        snprintf(text, textlen, "the key directory or token URI is too long (at most %zu bytes)",
                 sizeof frame - sizeof(gw_kp_req_t));
        return -1;
    }
    gw_kp_req_t rq = {.size = (uint32_t)(sizeof rq + dl), .id = ++next_id, .op = (uint8_t)op,
                      .data_len = (uint16_t)dl};
    memcpy(frame, &rq, sizeof rq);
    if (dl > 0)
        memcpy(frame + sizeof rq, dir, dl);
    if (cmn_write_all(kp->main_fd, frame, rq.size) != 0 ||
        gw_kp_read_all(kp->main_fd, &a, sizeof a) != 0 || a.id != rq.id ||
        a.data_len >= sizeof frame || gw_kp_read_all(kp->main_fd, frame, a.data_len) != 0)
        return -1;
    frame[a.data_len] = '\0';
    snprintf(text, textlen, "%s", (const char *)frame);
    return a.result;
}

void gw_keyproc_stop(gw_keyproc_t *kp)
{
    if (kp->pid <= 0)
        return;
    if (kp->main_fd >= 0)
        close(kp->main_fd);
    kp->main_fd = -1;
    for (int i = 0; i < kp->nworkers; i++)
        if (kp->worker_fd[i] >= 0)
            close(kp->worker_fd[i]);
    kp->nworkers = 0;
    if (kp->pid > 0) {
        int st;
        while (waitpid(kp->pid, &st, 0) < 0 && errno == EINTR)
            ;
        kp->pid = -1;
    }
}
