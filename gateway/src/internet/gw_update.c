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

#include "gw_apply.h"
#include "gw_auth.h"
#include "gw_checkip.h"
#include "gw_err.h"
#include "gw_limit.h"
#include "gw_log.h"

struct gw_update {
    const gw_config_t *cfg;
    const cmn_keyset_t *keys;
    gw_db_t *db;
    const gw_policy_t *policy;
};

/* One update waiting for the database. */
struct gw_upd_job {
    gw_update_t *u;
    gw_req_t *rq;
    gw_apply_job_t apply;
    char ipv4[INET_ADDRSTRLEN];
    char ipv6[INET6_ADDRSTRLEN];
};

gw_update_t *gw_update_new(const gw_config_t *cfg,
                           const cmn_keyset_t *keys, gw_db_t *db, const gw_policy_t *policy)
{
    gw_update_t *u = calloc(1, sizeof *u);
    if (u == NULL)
        return NULL;
    u->cfg = cfg;
    u->keys = keys;
    u->db = db;
    u->policy = policy;
    return u;
}

void gw_update_set_keys(gw_update_t *u, const cmn_keyset_t *keys)
{
    u->keys = keys;
}

void gw_update_set_policy(gw_update_t *u, const gw_policy_t *policy)
{
    u->policy = policy;
}

void gw_update_free(gw_update_t *u)
{
    free(u);
}

static void gw_reply_911(gw_req_t *rq)
{
    gw_req_reply(rq, 503, "911", GW_UPDATE_RETRY_AFTER);
}

static void gw_reply_addrs(gw_req_t *rq, const char *token, const char *v4, const char *v6)
{
    char line[128];
    snprintf(line, sizeof line, "%s%s%s%s%s", token, v4[0] ? " " : "", v4, v6[0] ? " " : "", v6);
    gw_req_reply(rq, 200, line, 0);
}


static void gw_update_applied(void *arg, int err, const gw_apply_answer_t *a)
{
    struct gw_upd_job *j = arg;
    gw_req_t *rq = j->rq;

    if (err != GW_OK) {
        if (err == GW_ETIMEDOUT)
            gw_warn("database did not answer an update within %d s", j->u->cfg->request_timeout);
        gw_reply_911(rq);
    } else if (a->device_level) {
        switch (a->result) {
        case GW_APPLY_UNKNOWN:
            gw_limit_auth_failed(gw_req_peer(rq));
            gw_req_reply(rq, 401, "badauth", 0);
            break;
        case GW_APPLY_DISABLED: gw_req_reply(rq, 403, "disabled", 0); break;
        case GW_APPLY_REPLAY: gw_req_reply(rq, 409, "replay", 0); break;
        default: gw_reply_addrs(rq, "nochg", j->ipv4, j->ipv6); break;  /* no name */
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
        gw_reply_addrs(rq, a->ngood > 0 ? "good" : "nochg", j->ipv4, j->ipv6);
    }
    free(j);
}

void gw_update_handle(void *arg, gw_req_t *rq)
{
    gw_update_t *u = arg;
    struct evhttp_request *req = gw_req_evreq(rq);
    struct evkeyvalq *hdrs = evhttp_request_get_input_headers(req);
    struct evkeyval *kv;
    const char *auth = NULL, *agent = NULL;
    int nauth = 0, have_length = 0;
    gw_auth_result_t ar;
    char line[96], source[INET6_ADDRSTRLEN], tsbuf[24];

    /* A source that failed too often is not even looked at. */
    int blocked = gw_limit_auth_blocked(gw_req_peer(rq));
    if (blocked > 0) {
        snprintf(line, sizeof line, "ratelimit %d", blocked);
        gw_req_reply(rq, 429, line, blocked);
        return;
    }
    TAILQ_FOREACH(kv, hdrs, next) {
        if (strcasecmp(kv->key, "Authorization") == 0) {
            auth = kv->value;
            nauth++;
        } else if (strcasecmp(kv->key, "User-Agent") == 0) {
            if (agent == NULL)
                agent = kv->value;
        } else if (strcasecmp(kv->key, "Content-Length") == 0 ||
                   (strcasecmp(kv->key, "Transfer-Encoding") == 0 &&
                    strcasecmp(kv->value, "chunked") == 0)) {
            have_length = 1;
        }
    }
    if (nauth != 1) {
        gw_req_reply(rq, 400, "badrequest authorization", 0);
        return;
    }
    if (!have_length) {
        gw_req_reply(rq, 400, "badrequest content-length", 0);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = evbuffer_get_length(in);
    if (blen > GW_AUTH_BODY_MAX) {
        gw_req_reply(rq, 400, "badrequest body", 0);
        return;
    }
    const uint8_t *body = blen ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
    int64_t now = (int64_t)time(NULL);
    gw_auth_verify(auth, body, blen, now, u->cfg->clock_skew, gw_auth_keyset_lookup,
                   (void *)u->keys, &ar);
    if (ar.device_id[0])
        gw_req_set_device(rq, ar.device_id);
    /* After the syntax, before the clock: the firmware policy. */
    gw_agent_t ga;
    memset(&ga, 0, sizeof ga);
    if (ar.verdict != GW_AUTH_BADREQUEST &&
        gw_policy_check(u->policy, agent, &ga) != GW_POLICY_ALLOW) {
        gw_req_reply(rq, 403, "badagent", 0);
        return;
    }
    switch (ar.verdict) {
    case GW_AUTH_BADREQUEST:
        snprintf(line, sizeof line, "badrequest %s", ar.field);
        gw_req_reply(rq, 400, line, 0);
        return;
    case GW_AUTH_BADTIME:
        snprintf(line, sizeof line, "badtime %" PRId64, now);
        gw_req_reply(rq, 401, line, 0);
        return;
    case GW_AUTH_BADAUTH:
        gw_limit_auth_failed(gw_req_peer(rq));
        gw_req_reply(rq, 401, "badauth", 0);
        return;
    case GW_AUTH_OK:
        break;
    }

    int fam = gw_checkip_peer_addr(gw_req_peer(rq), source, sizeof source);
    if (fam == 0) {
        gw_error("request without a peer address");
        gw_reply_911(rq);
        return;
    }
    struct gw_upd_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        gw_reply_911(rq);
        return;
    }
    j->u = u;
    j->rq = rq;
    memcpy(j->ipv4, ar.ipv4, sizeof j->ipv4);
    memcpy(j->ipv6, ar.ipv6, sizeof j->ipv6);
    gw_checkip_default_addr(fam, source, j->ipv4, j->ipv6);
    snprintf(tsbuf, sizeof tsbuf, "%" PRId64, ar.ts);
    char agent_text[201];
    gw_agent_printable(agent, agent_text, sizeof agent_text);
    /* every name of the device (fqdns NULL), never offline */
    const gw_apply_req_t ap = {
        .device = ar.device_id, .kid = ar.kid, .ts = tsbuf,
        .ipv4 = j->ipv4[0] ? j->ipv4 : NULL, .ipv6 = j->ipv6[0] ? j->ipv6 : NULL,
        .source = source, .min_interval = u->cfg->min_change_interval,
        .agent = agent != NULL ? agent_text : NULL,
        .firmware = ga.version[0] ? ga.version : NULL,
    };
    gw_req_async_begin(rq);
    /* From here on the callback may run at any time (even before gw_apply
     * returns) and frees j and rq. */
    int rc = gw_apply(u->db, &ap, u->cfg->request_timeout, &j->apply, gw_update_applied, j);
    if (rc != GW_OK) {
        gw_warn("update not queued: %s", gw_strerror(rc));
        free(j);
        gw_reply_911(rq);
    }
}
