/* gw_keycli: a worker's questions to the key process (see gw_keycli.h). */
#include "gw_keycli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_err.h"
#include "gw_keyproc.h"
#include "gw_log.h"

struct gw_kc_wait {
    uint32_t id;
    gw_keycli_cb cb;
    void *arg;
};

struct gw_keycli {
    int fd;                         /* -1: inline */
    struct event *rev;              /* answers to read */
    struct event *wev;              /* questions the socket did not take yet */
    struct event *flush_ev;         /* the questions of this loop pass */
    const cmn_keyset_t *keys;       /* inline */
    int dead;                       /* the key process is gone */
    uint32_t next_id;
    /* questions not written yet */
    uint8_t *out;
    size_t outlen, outcap;
    /* answers read, not complete yet */
    uint8_t in[64 * sizeof(gw_kp_ans_t)];
    size_t inlen;
    /* the callbacks waiting, in the order asked: a ring */
    struct gw_kc_wait *w;
    size_t cap, head, n;
};

static int gw_kc_push(gw_keycli_t *c, uint32_t id, gw_keycli_cb cb, void *arg)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct gw_kc_wait *w = malloc(cap * sizeof *w);
        if (w == NULL)
            return GW_ENOMEM;
        for (size_t i = 0; i < c->n; i++)
            w[i] = c->w[(c->head + i) % c->cap];
        free(c->w);
        c->w = w;
        c->cap = cap;
        c->head = 0;
    }
    c->w[(c->head + c->n) % c->cap] = (struct gw_kc_wait){id, cb, arg};
    c->n++;
    return GW_OK;
}

static struct gw_kc_wait gw_kc_pop(gw_keycli_t *c)
{
    struct gw_kc_wait w = c->w[c->head];
    c->head = (c->head + 1) % c->cap;
    c->n--;
    return w;
}

/* The key process is gone (or spoke out of turn): no more questions, and
 * every waiting callback gets -1. */
static void gw_kc_lost(gw_keycli_t *c, const char *why)
{
    if (!c->dead && why != NULL)
        gw_error("%s: updates are answered 911", why);
    c->dead = 1;
    if (c->rev != NULL)
        event_del(c->rev);
    if (c->wev != NULL)
        event_del(c->wev);
    c->outlen = 0;
    while (c->n > 0) {
        struct gw_kc_wait w = gw_kc_pop(c);
        w.cb(w.arg, -1);
    }
}

/* Writes what the socket takes; the rest waits for it to be writable. */
static void gw_kc_write(gw_keycli_t *c)
{
    size_t done = 0;
    while (done < c->outlen) {
        ssize_t n = write(c->fd, c->out + done, c->outlen - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            gw_kc_lost(c, "key process gone");
            return;
        }
        done += (size_t)n;
    }
    cmn_wipe(c->out, done);        /* a dyndns2 password was among them */
    memmove(c->out, c->out + done, c->outlen - done);
    c->outlen -= done;
    if (c->outlen > 0)
        event_add(c->wev, NULL);
    else
        event_del(c->wev);
}

static void gw_kc_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_keycli_t *c = arg;
    (void)fd;
    (void)what;
    if (!c->dead && c->outlen > 0 && !event_pending(c->wev, EV_WRITE, NULL))
        gw_kc_write(c);
}

static void gw_kc_write_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_keycli_t *c = arg;
    (void)fd;
    (void)what;
    if (!c->dead)
        gw_kc_write(c);
}

static void gw_kc_read_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_keycli_t *c = arg;
    (void)what;
    ssize_t r = read(fd, c->in + c->inlen, sizeof c->in - c->inlen);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (r <= 0) {
        gw_kc_lost(c, "key process gone");
        return;
    }
    c->inlen += (size_t)r;
    size_t at = 0;
    gw_kp_ans_t a;
    while (c->inlen - at >= sizeof a) {
        memcpy(&a, c->in + at, sizeof a);
        if (a.size != sizeof a || c->n == 0 || c->w[c->head].id != a.id) {
            gw_kc_lost(c, "key process: an answer out of order");
            return;
        }
        at += sizeof a;
        struct gw_kc_wait w = gw_kc_pop(c);
        w.cb(w.arg, a.result == 1);
        if (c->dead)
            return;
    }
    memmove(c->in, c->in + at, c->inlen - at);
    c->inlen -= at;
}

gw_keycli_t *gw_keycli_new(struct event_base *base, int fd)
{
    gw_keycli_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->fd = fd;
    if (evutil_make_socket_nonblocking(fd) != 0 ||
        (c->rev = event_new(base, fd, EV_READ | EV_PERSIST, gw_kc_read_cb, c)) == NULL ||
        (c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, gw_kc_write_cb, c)) == NULL ||
        (c->flush_ev = event_new(base, -1, 0, gw_kc_flush_cb, c)) == NULL ||
        event_add(c->rev, NULL) != 0) {
        gw_keycli_free(c);
        return NULL;
    }
    return c;
}

gw_keycli_t *gw_keycli_new_inline(const cmn_keyset_t *keys)
{
    gw_keycli_t *c = calloc(1, sizeof *c);
    if (c != NULL) {
        c->fd = -1;
        c->keys = keys;
    }
    return c;
}

void gw_keycli_set_keys(gw_keycli_t *c, const cmn_keyset_t *keys)
{
    c->keys = keys;
}

void gw_keycli_free(gw_keycli_t *c)
{
    if (c == NULL)
        return;
    gw_kc_lost(c, NULL);
    if (c->rev != NULL)
        event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    if (c->flush_ev != NULL)
        event_free(c->flush_ev);
    if (c->out != NULL)
        cmn_wipe(c->out, c->outcap);
    free(c->out);
    free(c->w);
    free(c);
}

size_t gw_keycli_waiting(const gw_keycli_t *c)
{
    return c->n;
}

/* Room for n more bytes of questions. */
static int gw_kc_room(gw_keycli_t *c, size_t n)
{
    if (c->outlen + n <= c->outcap)
        return GW_OK;
    size_t cap = c->outcap ? c->outcap * 2 : 16384;
    while (cap < c->outlen + n)
        cap *= 2;
    uint8_t *o = malloc(cap);
    if (o == NULL)
        return GW_ENOMEM;
    if (c->outlen > 0)
        memcpy(o, c->out, c->outlen);
    if (c->out != NULL)
        cmn_wipe(c->out, c->outcap);
    free(c->out);
    c->out = o;
    c->outcap = cap;
    return GW_OK;
}

/* Queues rq and data for this loop pass's write (or decides inline). */
static int gw_kc_ask(gw_keycli_t *c, gw_kp_req_t *rq, const uint8_t *data, gw_keycli_cb cb,
                     void *arg)
{
    if (c->fd < 0) {
        int yes = gw_keyproc_decide(c->keys, rq, data);
        cmn_wipe(rq, sizeof *rq);
        cb(arg, yes);
        return GW_OK;
    }
    if (c->dead)
        return GW_EIO;
    rq->id = ++c->next_id;
    rq->size = (uint32_t)(sizeof *rq + rq->data_len);
    int rc = gw_kc_room(c, rq->size);
    if (rc == GW_OK)
        rc = gw_kc_push(c, rq->id, cb, arg);
    if (rc == GW_OK) {
        /* the first question of a loop pass schedules the write after
         * every callback this pass has queued */
        if (c->outlen == 0)
            event_active(c->flush_ev, EV_WRITE, 0);
        memcpy(c->out + c->outlen, rq, sizeof *rq);
        if (rq->data_len > 0)
            memcpy(c->out + c->outlen + sizeof *rq, data, rq->data_len);
        c->outlen += rq->size;
    }
    cmn_wipe(rq, sizeof *rq);
    return rc;
}

static int gw_kc_fill(gw_kp_req_t *rq, enum gw_kp_op op, const char *kid, size_t kidlen,
                      uint32_t generation, const char *device_id)
{
    memset(rq, 0, sizeof *rq);
    if (kidlen > sizeof rq->kid)
        return GW_EINVAL;
    rq->op = (uint8_t)op;
    rq->kid_len = (uint8_t)kidlen;
    rq->generation = generation;
    memcpy(rq->kid, kid, kidlen);
    memcpy(rq->device_id, device_id, sizeof rq->device_id);
    return GW_OK;
}

int gw_keycli_signature(gw_keycli_t *c, const char *kid, size_t kidlen, uint32_t generation,
                        const char *device_id, const uint8_t *sts, size_t sts_len,
                        const uint8_t sig[32], gw_keycli_cb cb, void *arg)
{
    gw_kp_req_t rq;
    if (sts_len > GW_KP_FRAME_MAX - sizeof rq ||
        gw_kc_fill(&rq, GW_KP_SIGNATURE, kid, kidlen, generation, device_id) != GW_OK)
        return GW_EINVAL;
    rq.data_len = (uint16_t)sts_len;
    memcpy(rq.mac, sig, sizeof rq.mac);
    return gw_kc_ask(c, &rq, sts, cb, arg);
}

int gw_keycli_password(gw_keycli_t *c, const char *kid, size_t kidlen, uint32_t generation,
                       const char *device_id, const uint8_t password[CMN_SECRET_LEN],
                       gw_keycli_cb cb, void *arg)
{
    gw_kp_req_t rq;
    if (gw_kc_fill(&rq, GW_KP_PASSWORD, kid, kidlen, generation, device_id) != GW_OK)
        return GW_EINVAL;
    memcpy(rq.mac, password, sizeof rq.mac);
    return gw_kc_ask(c, &rq, NULL, cb, arg);
}
