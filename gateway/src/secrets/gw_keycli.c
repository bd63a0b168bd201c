/* gw_keycli: a worker's questions to the key process (see gw_keycli.h). */
#include "gw_keycli.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "gw_err.h"
#include "gw_keyproc.h"
#include "gw_log.h"

struct gw_kc_wait {
    uint32_t id;
    gw_keycli_cb cb;
    void *arg;
};

struct gw_keycli {
    struct bufferevent *bev;        /* NULL: inline */
    const cmn_keyset_t *keys;       /* inline */
    int dead;                       /* the key process is gone */
    uint32_t next_id;
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

/* Every waiting callback gets -1. */
static void gw_kc_fail_all(gw_keycli_t *c)
{
    while (c->n > 0) {
        struct gw_kc_wait w = gw_kc_pop(c);
        w.cb(w.arg, -1);
    }
}

static void gw_kc_read_cb(struct bufferevent *bev, void *arg)
{
    gw_keycli_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    gw_kp_ans_t a;
    while (evbuffer_get_length(in) >= sizeof a) {
        evbuffer_copyout(in, &a, sizeof a);
        if (a.size != sizeof a || c->n == 0 || c->w[c->head].id != a.id) {
            gw_error("key process: an answer out of order: no more questions to it");
            c->dead = 1;
            bufferevent_disable(bev, EV_READ | EV_WRITE);
            gw_kc_fail_all(c);
            return;
        }
        evbuffer_drain(in, sizeof a);
        struct gw_kc_wait w = gw_kc_pop(c);
        w.cb(w.arg, a.result == 1);
    }
}

static void gw_kc_event_cb(struct bufferevent *bev, short what, void *arg)
{
    gw_keycli_t *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (!c->dead)
            gw_error("key process gone: updates are answered 911");
        c->dead = 1;
        bufferevent_disable(bev, EV_READ | EV_WRITE);
        gw_kc_fail_all(c);
    }
}

gw_keycli_t *gw_keycli_new(struct event_base *base, int fd)
{
    gw_keycli_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    if (evutil_make_socket_nonblocking(fd) != 0 ||
        (c->bev = bufferevent_socket_new(base, fd, 0)) == NULL) {
        free(c);
        return NULL;
    }
    bufferevent_setcb(c->bev, gw_kc_read_cb, NULL, gw_kc_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return c;
}

gw_keycli_t *gw_keycli_new_inline(const cmn_keyset_t *keys)
{
    gw_keycli_t *c = calloc(1, sizeof *c);
    if (c != NULL)
        c->keys = keys;
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
    gw_kc_fail_all(c);
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    free(c->w);
    free(c);
}

size_t gw_keycli_waiting(const gw_keycli_t *c)
{
    return c->n;
}

/* Sends rq and data (or decides inline). */
static int gw_kc_ask(gw_keycli_t *c, gw_kp_req_t *rq, const uint8_t *data, gw_keycli_cb cb,
                     void *arg)
{
    if (c->bev == NULL) {
        int yes = gw_keyproc_decide(c->keys, rq, data);
        cmn_wipe(rq, sizeof *rq);
        cb(arg, yes);
        return GW_OK;
    }
    if (c->dead)
        return GW_EIO;
    rq->id = ++c->next_id;
    rq->size = (uint32_t)(sizeof *rq + rq->data_len);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int rc = gw_kc_push(c, rq->id, cb, arg);
    if (rc == GW_OK && (evbuffer_add(out, rq, sizeof *rq) != 0 ||
                        evbuffer_add(out, data, rq->data_len) != 0)) {
        /* the frame may be half written: the stream is lost */
        c->n--;            /* not asked after all */
        c->dead = 1;
        gw_error("key process: out of memory while asking: no more questions to it");
        rc = GW_ENOMEM;
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
