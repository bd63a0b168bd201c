/* gw_dyndns: GET /nic/update (see gw_dyndns.h). */
#include "gw_dyndns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gw_addrpol.h"
#include "gw_apply.h"
#include "gw_auth.h"
#include "gw_budget.h"
#include "gw_clock.h"
#include "gw_dynparse.h"
#include "gw_err.h"
#include "gw_limit.h"
#include "gw_log.h"


/* Longest answer line: "nochg " IPv4 "," IPv6 LF. */
#define GW_DYN_LINE_MAX (6 + INET_ADDRSTRLEN + 1 + INET6_ADDRSTRLEN + 2)


/* One update waiting for the key process, then for the database. */
struct gw_dyn_job {
    const gw_devctx_t *d;
    gw_req_t *rq;
    gw_dyn_cred_t cred;         /* the secret wiped once asked about */
    gw_agent_t ga;
    gw_apply_job_t apply;
    gw_dyn_query_t q;
    /* request item i -> index (1-based) among the distinct FQDNs sent to
     * the database, 0 for an item that is not an FQDN */
    size_t ord[GW_DYN_HOSTS_MAX];
    size_t nuniq;
    /* the distinct FQDNs as a text[] literal ({a.b,c.d}: no quoting needed) */
    char fqdns[GW_DYN_HOSTS_MAX * (GW_DYN_FQDN_MAX + 1) + 3];
};

/* Sends body (one or more lines) with HTTP 200, the access log naming its
 * first word. */
static void gw_dyn_send(gw_req_t *rq, int status, const char *body, size_t len)
{
    char token[24];
    size_t tl = strcspn(body, " \n");
    if (tl >= sizeof token)
        tl = sizeof token - 1;
    memcpy(token, body, tl);
    token[tl] = '\0';
    gw_req_reply_body(rq, status, NULL, body, len, token, 0);
}

/* "good ADDR" with the addresses of the request ("v4,v6" for both); no
 * address when the request took the names offline. */
static size_t gw_dyn_fmt(char *out, const char *token, const struct gw_dyn_job *j,
                         const gw_apply_answer_t *a)
{
    if (j->q.offline)
        return (size_t)snprintf(out, GW_DYN_LINE_MAX, "%s\n", token);
    return (size_t)snprintf(out, GW_DYN_LINE_MAX, "%s %s%s%s\n", token, a->ipv4,
                            a->ipv4[0] && a->ipv6[0] ? "," : "", a->ipv6);
}

/* The dyndns2 line for one name's result. */
static const char *gw_dyn_token(const gw_devctx_t *d, gw_apply_result_t result)
{
    switch (result) {
    case GW_APPLY_GOOD: return "good";
    case GW_APPLY_NOCHG: return "nochg";
    case GW_APPLY_RATELIMIT: return "abuse";
    case GW_APPLY_FOREIGN: return d->cfg->dyn_not_yours ? "!yours" : "nohost";
    default: return "nohost";
    }
}

static void gw_dyn_applied(void *arg, int err, const gw_apply_answer_t *a)
{
    struct gw_dyn_job *j = arg;
    gw_req_t *rq = j->rq;
    char *body = NULL;

    if (err == GW_ETIMEDOUT)
        gw_warn("database did not answer a dyndns2 update within %d s",
                j->d->cfg->request_timeout);
    if (err != GW_OK)
        goto fail;
    if (a->device_level) {
        if (a->result == GW_APPLY_UNKNOWN || a->result == GW_APPLY_DISABLED) {
            if (a->result == GW_APPLY_DISABLED)
                gw_budget_disabled(j->cred.device_id, j->cred.generation, gw_clock_ms());
            gw_limit_auth_failed(gw_req_info(rq)->peer);
            gw_req_reply(rq, 200, "badauth", 0);
        } else if (a->result == GW_APPLY_NOHOST) {
            gw_req_reply(rq, 200, "nohost", 0);
        } else {    /* replay: dyndns2 sends no timestamp */
            gw_error("ddns_apply_batch answered a dyndns2 update with a replay");
            goto fail;
        }
        goto out;
    }
    size_t lines = j->q.have_hostname ? j->q.nhosts : 1, len = 0;
    body = malloc(lines * GW_DYN_LINE_MAX + 1);
    if (body == NULL)
        goto fail;
    if (!j->q.have_hostname) {
        /* every name of the device: one line for all of them */
        if (a->nratelimit > 0)
            len = (size_t)snprintf(body, GW_DYN_LINE_MAX, "abuse\n");
        else
            len = gw_dyn_fmt(body, a->ngood > 0 ? "good" : "nochg", j, a);
    } else {
        for (size_t i = 0; i < j->q.nhosts; i++) {
            size_t o = j->ord[i];   /* 0: not a host name; else the name's row */
            if (o > a->n) {
                gw_error("ddns_apply_batch answered %zu names for %zu", a->n, j->nuniq);
                goto fail;
            }
            const char *t = o == 0 ? "notfqdn" : gw_dyn_token(j->d, a->name[o - 1]);
            if (strcmp(t, "good") == 0 || strcmp(t, "nochg") == 0)
                len += gw_dyn_fmt(body + len, t, j, a);
            else
                len += (size_t)snprintf(body + len, GW_DYN_LINE_MAX, "%s\n", t);
        }
    }
    gw_dyn_send(rq, 200, body, len);
    goto out;
fail:
    gw_req_reply(rq, 200, "911", 0);
out:
    free(body);
    free(j);
}

/* 1. the method and the User-Agent (the firmware policy) */
static int gw_dyn_check_agent(const gw_devctx_t *d, gw_req_t *rq, gw_agent_t *ga,
                              gw_req_refusal_t *f)
{
    const char *agent = gw_req_info(rq)->agent;
    if (evhttp_request_get_command(gw_req_evreq(rq)) != EVHTTP_REQ_GET ||
        agent == NULL || agent[0] == '\0' ||
        gw_policy_check_dyndns2(d->policy, agent, ga) != GW_POLICY_ALLOW)
        return gw_req_refuse(f, 200, 0, "badagent");
    return GW_OK;
}

/* dyndns2 answers abuse with HTTP 200: the seconds to wait go in a
 * Retry-After header only. */
static void gw_dyn_retry_after(gw_req_t *rq, int seconds)
{
    char ra[16];
    snprintf(ra, sizeof ra, "%d", seconds);
    evhttp_add_header(evhttp_request_get_output_headers(gw_req_evreq(rq)), "Retry-After", ra);
}

/* 2. the credentials' form; a source that failed too often is not even
 * looked at (dyndns2's abuse: the client stops until a person acts). The
 * key process decides whether the password is right (gw_dyn_verified). */
static int gw_dyn_check_credentials(const gw_devctx_t *d, gw_req_t *rq, gw_dyn_cred_t *cred,
                                    gw_req_refusal_t *f)
{
    const gw_req_info_t *in = gw_req_info(rq);
    struct evkeyvalq *oh = evhttp_request_get_output_headers(gw_req_evreq(rq));
    int blocked = gw_limit_auth_blocked(in->peer);
    if (blocked > 0) {
        gw_dyn_retry_after(rq, blocked);
        (void)gw_req_refuse(f, 200, 0, "abuse");
        return gw_req_hold(f, d->cfg->limits.blocked_delay);
    }
    if (in->nauth == 0) {
        evhttp_add_header(oh, "WWW-Authenticate", "Basic realm=\"ddns\", charset=\"UTF-8\"");
        return gw_req_refuse(f, 401, 0, "badauth");
    }
    if (in->authorization == NULL || gw_dyn_parse_basic(in->authorization, cred) != 0) {
        gw_limit_auth_failed(in->peer);
        return gw_req_refuse(f, 200, 0, "badauth");
    }
    gw_req_set_device(rq, cred->device_id);
    return GW_OK;
}

/* 3. the query: its hosts, their distinct FQDNs (j->ord, j->fqdns). */
static int gw_dyn_parse(const gw_devctx_t *d, gw_req_t *rq, struct gw_dyn_job *j,
                        gw_req_refusal_t *f)
{
    const char *query = gw_req_query(rq);
    size_t qn = strcspn(query, "#"), fl = 0;
    if (qn > GW_DYN_QUERY_MAX)
        return gw_req_refuse(f, 200, 0, "badrequest query");
    char *text = strndup(query, qn);
    if (text == NULL)
        return gw_req_refuse(f, 200, 0, "911");
    int rc = gw_dyn_parse_query(text, &j->q);
    free(text);
    if (rc != 0)
        return gw_req_refuse(f, 200, 0, "badrequest %s", j->q.field);
    if (j->q.have_hostname && j->q.nhosts > (size_t)d->cfg->dyn_max_hosts)
        return gw_req_refuse(f, 200, 0, "numhost");
    j->fqdns[fl++] = '{';
    for (size_t i = 0; j->q.have_hostname && i < j->q.nhosts; i++) {
        const char *h = j->q.host[i];
        if (h[0] == '\0')
            continue;
        for (size_t k = 0; k < i && j->ord[i] == 0; k++)
            if (strcmp(j->q.host[k], h) == 0)
                j->ord[i] = j->ord[k];
        if (j->ord[i] != 0)
            continue;
        j->ord[i] = ++j->nuniq;
        if (j->nuniq > 1)
            j->fqdns[fl++] = ',';
        size_t hl = strlen(h);
        memcpy(j->fqdns + fl, h, hl);
        fl += hl;
    }
    j->fqdns[fl++] = '}';
    j->fqdns[fl] = '\0';
    return GW_OK;
}

/* An answer without the database: "notfqdn" for each item of the hostname
 * list that is not an FQDN, token for the others (one line when the
 * request names no host). */
static void gw_dyn_answer_each(gw_req_t *rq, const struct gw_dyn_job *j, const char *token)
{
    size_t len = 0, lines = j->q.have_hostname ? j->q.nhosts : 1;
    char *body = malloc(lines * 9 + 1);
    if (body == NULL) {
        gw_req_reply(rq, 200, "911", 0);
        return;
    }
    for (size_t i = 0; i < lines; i++)
        len += (size_t)snprintf(body + len, 9, "%s\n",
                                j->q.have_hostname && j->ord[i] == 0 ? "notfqdn" : token);
    gw_dyn_send(rq, 200, body, len);
    free(body);
}

/* 3b. where the names would point (gw_addrpol), before the database: an
 * address a name must not point at is dyndns2's "abuse" for every host. */
static int gw_dyn_check_addresses(struct gw_dyn_job *j)
{
    const gw_req_info_t *in = gw_req_info(j->rq);
    if (j->q.offline)
        return GW_OK;
    const gw_addrpol_req_t pq = {
        .ipv4 = j->q.ipv4, .ipv6 = j->q.ipv6, .source = in->addr,
        .hosts = j->q.have_hostname ? j->q.host[0] : NULL, .nhosts = j->q.nhosts,
        .stride = sizeof j->q.host[0],
    };
    gw_addrpol_refusal_t pr;
    if (gw_addrpol_check(j->d->cfg, &pq, &pr))
        return GW_OK;
    gw_info("device %s: dyndns2 update refused: %s is in %s", j->cred.device_id, pr.addr,
            pr.block);
    return GW_EINVAL;
}

/* 4. the database; no timestamp: dyndns2 has no replay token, so a poll
 * that changes nothing may write nothing (own), and a change raises the
 * replay marker of the signed protocol (docs/PROTOCOL.md section 5.1). The
 * addresses are myip's, or the connection's (gw_apply). On GW_OK the
 * database's callback owns j. */
static int gw_dyn_apply(struct gw_dyn_job *j, gw_req_refusal_t *f)
{
    const gw_devctx_t *d = j->d;
    const gw_req_info_t *in = gw_req_info(j->rq);
    char agent_text[201];
    if (in->family == 0) {
        gw_error("request without a peer address");
        return gw_req_refuse(f, 200, 0, "911");
    }
    gw_agent_printable(in->agent, agent_text, sizeof agent_text);
    const gw_apply_req_t ap = {
        .device = j->cred.device_id, .kid = j->cred.kid, .generation = j->cred.generation,
        .ipv4 = j->q.ipv4[0] ? j->q.ipv4 : NULL, .ipv6 = j->q.ipv6[0] ? j->q.ipv6 : NULL,
        .source = in->addr, .fqdns = j->q.have_hostname ? j->fqdns : NULL,
        .offline = j->q.offline, .min_interval = d->cfg->min_change_interval,
        .agent = agent_text, .firmware = j->ga.version[0] ? j->ga.version : NULL,
        .own = 1,
    };
    /* From here on the callback may run at any time and frees j and rq. */
    int rc = gw_apply(d->db, d->quiet, &ap, d->cfg->request_timeout, &j->apply, gw_dyn_applied, j);
    if (rc != GW_OK) {
        gw_warn("dyndns2 update not queued: %s", gw_strerror(rc));
        return gw_req_refuse(f, 200, 0, "911");
    }
    return GW_OK;
}

/* The device's budget and revocation as this gateway remembers them
 * (gw_budget): over the budget is dyndns2's abuse with a Retry-After, a
 * revoked device badauth, as the database would answer. */
static int gw_dyn_budget(struct gw_dyn_job *j, gw_req_refusal_t *f)
{
    int retry = 0;
    switch (gw_budget_check(j->cred.device_id, j->cred.generation, -1, gw_clock_ms(), &retry)) {
    case GW_BUDGET_RATELIMIT:
        gw_dyn_retry_after(j->rq, retry);
        return gw_req_refuse(f, 200, 0, "abuse");
    case GW_BUDGET_DISABLED:
        gw_limit_auth_failed(gw_req_info(j->rq)->peer);
        return gw_req_refuse(f, 200, 0, "badauth");
    default:
        return GW_OK;
    }
}

/* The key process's answer on the password; then 3. and 4. */
static void gw_dyn_verified(void *arg, int answer)
{
    struct gw_dyn_job *j = arg;
    gw_req_refusal_t f;
    cmn_wipe(j->cred.password, sizeof j->cred.password);
    if (answer < 0) {
        gw_req_refuse(&f, 200, 0, "911");
    } else if (answer == 0) {
        gw_limit_auth_failed(gw_req_info(j->rq)->peer);
        gw_req_refuse(&f, 200, 0, "badauth");
    } else if (gw_dyn_parse(j->d, j->rq, j, &f) == GW_OK) {
        if (j->q.have_hostname && j->nuniq == 0) {
            gw_dyn_answer_each(j->rq, j, "notfqdn");
            free(j);
            return;
        }
        /* the budget first, as on /v1/update: a flood of refused
         * addresses costs its device's budget too */
        if (gw_dyn_budget(j, &f) == GW_OK) {
            if (gw_dyn_check_addresses(j) != GW_OK) {
                gw_dyn_answer_each(j->rq, j, "abuse");
                free(j);
                return;
            }
            if (gw_dyn_apply(j, &f) == GW_OK)
                return;
        }
    }
    gw_req_reply(j->rq, f.status, f.line, 0);
    free(j);
}

void gw_dyndns_handle(void *arg, gw_req_t *rq)
{
    const gw_devctx_t *d = arg;
    gw_req_refusal_t f;
    struct gw_dyn_job *j = calloc(1, sizeof *j);

    if (j == NULL) {
        gw_req_reply(rq, 200, "911", 0);
        return;
    }
    j->d = d;
    j->rq = rq;
    if (gw_dyn_check_agent(d, rq, &j->ga, &f) == GW_OK &&
        gw_dyn_check_credentials(d, rq, &j->cred, &f) == GW_OK) {
        gw_req_async_begin(rq);
        /* From here on the key process's answer may come at any time (even
         * before the call returns) and own j. */
        int rc = gw_keycli_password(d->keys, j->cred.kid, strlen(j->cred.kid),
                                    j->cred.generation, j->cred.device_id, j->cred.password,
                                    gw_dyn_verified, j);
        if (rc == GW_OK)
            return;
        gw_warn("dyndns2 update not verified: the key process cannot be asked: %s",
                gw_strerror(rc));
        gw_req_refuse(&f, 200, 0, "911");
    }
    gw_req_reply_refusal(rq, &f);
    cmn_wipe(j->cred.password, sizeof j->cred.password);
    free(j);
}
