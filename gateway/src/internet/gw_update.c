/* gw_update: POST /v1/update (see gw_update.h). */
#include "gw_update.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gw_addrpol.h"
#include "gw_apply.h"
#include "gw_auth.h"
#include "gw_budget.h"
#include "gw_clock.h"
#include "gw_err.h"
#include "gw_limit.h"
#include "gw_log.h"


/* One update waiting for the key process, then for the database. */
struct gw_upd_job {
    const gw_devctx_t *u;
    gw_req_t *rq;
    gw_auth_result_t ar;
    gw_agent_t ga;
    gw_apply_job_t apply;
};

static void gw_reply_911(gw_req_t *rq)
{
    gw_req_reply(rq, 503, "911", GW_UPDATE_RETRY_AFTER);
}

static void gw_reply_addrs(gw_req_t *rq, const char *token, const gw_apply_answer_t *a)
{
    char line[128];
    snprintf(line, sizeof line, "%s%s%s%s%s", token, a->ipv4[0] ? " " : "", a->ipv4,
             a->ipv6[0] ? " " : "", a->ipv6);
    gw_req_reply(rq, 200, line, 0);
}

static void gw_update_applied(void *arg, int err, const gw_apply_answer_t *a)
{
    struct gw_upd_job *j = arg;
    gw_req_t *rq = j->rq;

    if (err == GW_OK && !a->device_level)
        /* accepted (good, nochg or ratelimit): the marker is now ts */
        gw_budget_accepted(j->ar.device_id, j->ar.generation, j->ar.ts, gw_clock_ms());
    if (err != GW_OK) {
        if (err == GW_ETIMEDOUT)
            gw_warn("database did not answer an update within %d s", j->u->cfg->request_timeout);
        gw_reply_911(rq);
    } else if (a->device_level) {
        switch (a->result) {
        case GW_APPLY_UNKNOWN:
            gw_limit_auth_failed(gw_req_info(rq)->peer);
            gw_req_reply(rq, 401, "badauth", 0);
            break;
        case GW_APPLY_DISABLED:
            gw_budget_disabled(j->ar.device_id, j->ar.generation, gw_clock_ms());
            gw_limit_abuse(gw_req_info(rq)->peer);
            gw_req_reply(rq, 403, "disabled", 0);
            break;
        case GW_APPLY_REPLAY:
            /* the database's marker is at least ts */
            gw_budget_accepted(j->ar.device_id, j->ar.generation, j->ar.ts, gw_clock_ms());
            gw_limit_abuse(gw_req_info(rq)->peer);
            gw_req_reply(rq, 409, "replay", 0);
            break;
        default: gw_reply_addrs(rq, "nochg", a); break;  /* no name */
        }
    } else if (a->ngood + a->nratelimit + gw_apply_count(a, GW_APPLY_NOCHG) != a->n) {
        /* every name of the device was asked for: only these three */
        gw_error("ddns_apply_batch answered for a name that is not the device's");
        gw_reply_911(rq);
    } else if (a->nratelimit > 0) {
        /* one row per name: ratelimit if any was held back, else good if
         * any changed, else nochg */
        char line[32];
        snprintf(line, sizeof line, "ratelimit %d", a->retry_after);
        gw_req_reply(rq, 429, line, a->retry_after);
    } else {
        gw_reply_addrs(rq, a->ngood > 0 ? "good" : "nochg", a);
    }
    free(j);
}

/* The request up to its signature: the source not blocked, one
 * Authorization, a framed body, the syntax, the firmware policy (after the
 * syntax, before the clock) and the clock; s gets what the signature
 * covers, for the key process. */
static int gw_upd_check(const gw_devctx_t *u, gw_req_t *rq, gw_auth_result_t *ar, gw_agent_t *ga,
                        gw_auth_signed_t *s, gw_req_refusal_t *f)
{
    const gw_req_info_t *in = gw_req_info(rq);
    size_t blen;

    /* A source that failed too often is not even looked at. */
    int blocked = gw_limit_auth_blocked(in->peer);
    if (blocked > 0) {
        (void)gw_req_refuse(f, 429, blocked, "ratelimit %d", blocked);
        return gw_req_hold(f, u->cfg->limits.blocked_delay);
    }
    if (in->nauth != 1)
        return gw_req_refuse(f, 400, 0, "badrequest authorization");
    if (!in->has_length)
        return gw_req_refuse(f, 400, 0, "badrequest content-length");
    const uint8_t *body = gw_req_body(rq, GW_AUTH_BODY_MAX, &blen);
    if (body == NULL)
        return gw_req_refuse(f, 400, 0, "badrequest body");
    int64_t now = (int64_t)time(NULL);
    (void)gw_auth_prepare(in->authorization, body, blen, now, u->cfg->clock_skew, ar, s);
    if (ar->device_id[0])
        gw_req_set_device(rq, ar->device_id);
    if (ar->verdict != GW_AUTH_BADREQUEST &&
        gw_policy_check(u->policy, in->agent, ga) != GW_POLICY_ALLOW)
        return gw_req_refuse(f, 403, 0, "badagent");
    switch (ar->verdict) {
    case GW_AUTH_BADREQUEST:
        return gw_req_refuse(f, 400, 0, "badrequest %s", ar->field);
    case GW_AUTH_BADTIME:
        return gw_req_refuse(f, 401, 0, "badtime %" PRId64, now);
    case GW_AUTH_BADAUTH:
        gw_limit_auth_failed(in->peer);
        return gw_req_refuse(f, 401, 0, "badauth");
    case GW_AUTH_OK:
        break;
    }
    return GW_OK;
}

static int gw_upd_apply(struct gw_upd_job *j, gw_req_refusal_t *f);

/* The device's budget, its replay marker and revocation as this gateway
 * remembers them: a request they settle never reaches the database, and a
 * replay or a revoked credential counts against its source. */
static int gw_upd_budget(struct gw_upd_job *j, gw_req_refusal_t *f)
{
    int retry = 0;
    const struct sockaddr *peer = gw_req_info(j->rq)->peer;
    switch (gw_budget_check(j->ar.device_id, j->ar.generation, j->ar.ts, gw_clock_ms(), &retry)) {
    case GW_BUDGET_RATELIMIT:
        return gw_req_refuse(f, 429, retry, "ratelimit %d", retry);
    case GW_BUDGET_REPLAY:
        gw_limit_abuse(peer);
        return gw_req_refuse(f, 409, 0, "replay");
    case GW_BUDGET_DISABLED:
        gw_limit_abuse(peer);
        return gw_req_refuse(f, 403, 0, "disabled");
    default:
        return GW_OK;
    }
}

/* The key process's answer on the signature. */
static void gw_update_verified(void *arg, int answer)
{
    struct gw_upd_job *j = arg;
    gw_req_refusal_t f;
    if (answer < 0) {
        gw_req_refuse(&f, 503, GW_UPDATE_RETRY_AFTER, "911");
    } else if (answer == 0) {
        gw_limit_auth_failed(gw_req_info(j->rq)->peer);
        gw_req_refuse(&f, 401, 0, "badauth");
    } else if (gw_upd_budget(j, &f) == GW_OK && gw_upd_apply(j, &f) == GW_OK) {
        return;
    }
    gw_req_reply(j->rq, f.status, f.line, f.retry_after);
    free(j);
}

/* Hands the verified request to gw_apply: every name of the device (fqdns
 * NULL), never offline. On GW_OK the database's callback owns j. */
static int gw_upd_apply(struct gw_upd_job *j, gw_req_refusal_t *f)
{
    const gw_devctx_t *u = j->u;
    const gw_auth_result_t *ar = &j->ar;
    const gw_agent_t *ga = &j->ga;
    const gw_req_info_t *in = gw_req_info(j->rq);
    char tsbuf[24], agent_text[201];
    if (in->family == 0) {
        gw_error("request without a peer address");
        return gw_req_refuse(f, 503, GW_UPDATE_RETRY_AFTER, "911");
    }
    /* Where the names would point: refused before the database */
    const gw_addrpol_req_t pq = {.ipv4 = ar->ipv4, .ipv6 = ar->ipv6, .source = in->addr};
    gw_addrpol_refusal_t pr;
    if (!gw_addrpol_check(u->cfg, &pq, &pr)) {
        gw_info("device %s: update refused: %s is in %s", ar->device_id, pr.addr, pr.block);
        return gw_req_refuse(f, 403, 0, "badaddr %s", pr.addr);
    }
    /* peer: the connection's address, if it is the one signed; else the
     * device learns where its requests come from and signs again. An
     * address-less request of a model that must sign its address learns
     * it the same way. */
    int own = ar->ipv4[0] || ar->ipv6[0];
    if ((ar->peer[0] && strcmp(ar->peer, in->addr) != 0) ||
        (!own && !ar->peer[0] && gw_policy_needs_address(u->policy, ga)))
        return gw_req_refuse(f, 409, 0, "moved %s", in->addr);
    if (ar->peer[0])
        own = 1;
    snprintf(tsbuf, sizeof tsbuf, "%" PRId64, ar->ts);
    gw_agent_printable(in->agent, agent_text, sizeof agent_text);
    const gw_apply_req_t ap = {
        .device = ar->device_id, .kid = ar->kid, .generation = ar->generation, .ts = tsbuf,
        .ipv4 = ar->ipv4[0] ? ar->ipv4 : NULL, .ipv6 = ar->ipv6[0] ? ar->ipv6 : NULL,
        .source = in->addr, .min_interval = u->cfg->min_change_interval,
        .agent = in->agent != NULL ? agent_text : NULL,
        .firmware = ga->version[0] ? ga->version : NULL,
        .own = own,
    };
    /* From here on the callback may run at any time (even before gw_apply
     * returns) and frees j and rq. */
    int rc = gw_apply(u->db, u->quiet, &ap, u->cfg->request_timeout, &j->apply, gw_update_applied, j);
    if (rc != GW_OK) {
        gw_warn("update not queued: %s", gw_strerror(rc));
        return gw_req_refuse(f, 503, GW_UPDATE_RETRY_AFTER, "911");
    }
    return GW_OK;
}

void gw_update_handle(void *arg, gw_req_t *rq)
{
    const gw_devctx_t *u = arg;
    gw_auth_signed_t s;
    gw_req_refusal_t f;
    struct gw_upd_job *j = calloc(1, sizeof *j);

    if (j == NULL) {
        gw_req_reply(rq, 503, "911", GW_UPDATE_RETRY_AFTER);
        return;
    }
    j->u = u;
    j->rq = rq;
    if (gw_upd_check(u, rq, &j->ar, &j->ga, &s, &f) == GW_OK) {
        gw_req_async_begin(rq);
        /* From here on the key process's answer may come at any time (even
         * before the call returns) and own j. */
        int rc = gw_keycli_signature(u->keys, j->ar.kid, strlen(j->ar.kid), j->ar.generation,
                                     j->ar.device_id, s.sts, s.sts_len, s.sig,
                                     gw_update_verified, j);
        if (rc == GW_OK)
            return;
        gw_warn("update not verified: the key process cannot be asked: %s", gw_strerror(rc));
        gw_req_refuse(&f, 503, GW_UPDATE_RETRY_AFTER, "911");
    }
    gw_req_reply_refusal(rq, &f);
    free(j);
}
