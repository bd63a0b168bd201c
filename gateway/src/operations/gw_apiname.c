/* gw_apiname: the admin API's name endpoint (see gw_apiname.h). */
#include "gw_apiname.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
#include <openssl/rand.h>

#include "cmn_label.h"
#include "gw_apiin.h"
#include "gw_err.h"
#include "gw_log.h"

#define GW_APINAME_MSG_MAX 512

typedef struct gw_apiname gw_apiname_t;

/* One zone's question: its primary, the message id, the answer. */
typedef struct gw_apiname_probe {
    gw_apiname_t *n;
    char zone[256];
    uint16_t id;
    int fd;
    int answer;                 /* enum cmn_label_zone */
} gw_apiname_probe_t;

/* The request while its zones are asked. */
struct gw_apiname {
    gw_apireq_t *r;
    char label[64];
    size_t nprobes, pending;
    gw_apiname_probe_t probes[];
};

/* The zone of a full name's rest (after the label): one of this gateway's. */
static const char *gw_apiname_zone(const gw_apireq_t *r, const char *rest)
{
    for (size_t i = 0; i < r->cfg->nzones; i++)
        if (strcmp(rest, r->cfg->zones[i].name) == 0)
            return r->cfg->zones[i].name;
    return NULL;
}

/* PUT .../names/{old}: the name to rename, in full, lowercase. */
static int gw_apiname_old(gw_apireq_t *r, char *old, size_t oldlen)
{
    char *d = evhttp_uridecode(r->seg[3], 0, NULL);
    snprintf(old, oldlen, "%s", d ? d : "");
    free(d);
    for (char *c = old; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (strchr(old, '.') == NULL)
        return gw_apireq_fail(r, 400, "name", "the name to rename must be given in full "
                              "(label.zone)");
    return GW_OK;
}

/* A PostgreSQL text[] literal of the zones whose answer is want. */
static void gw_apiname_zones(const gw_apiname_t *n, int want, char *out, size_t outlen)
{
    size_t len = (size_t)snprintf(out, outlen, "{");
    for (size_t i = 0; i < n->nprobes && len < outlen; i++)
        if (n->probes[i].answer == want)
            len += (size_t)snprintf(out + len, outlen - len, "%s\"%s\"", len > 1 ? "," : "",
                                    n->probes[i].zone);
    if (len < outlen)
        snprintf(out + len, outlen - len, "}");
}

/* Every zone answered (or not): the statement runs with the answers. */
static void gw_apiname_run(gw_apiname_t *n)
{
    gw_apireq_t *r = n->r;
    char in_zone[GW_SQL_PARAM_LEN], unanswered[GW_SQL_PARAM_LEN];
    gw_apiname_zones(n, CMN_LABEL_IN_ZONE, in_zone, sizeof in_zone);
    gw_apiname_zones(n, CMN_LABEL_NO_ANSWER, unanswered, sizeof unanswered);
    free(n);
    gw_sql_param(&r->sql, in_zone);
    gw_sql_param(&r->sql, unanswered);
    if (gw_apireq_run(r, GW_APIREQ_STATUS, "SELECT status, body::text FROM "
                      "admin_name_checked($1::bigint, $2, $3, $4, $5, $6, $7, $8::text[], "
                      "$9::text[])") != GW_OK)
        gw_apireq_answer_fail(r);
}

static void gw_apiname_done(gw_apiname_probe_t *p, int answer, const char *why)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->answer = answer;
    if (answer == CMN_LABEL_NO_ANSWER)
        gw_warn("admin: cannot tell whether %s.%s holds records: %s", p->n->label, p->zone, why);
    if (--p->n->pending == 0)
        gw_apiname_run(p->n);
}

static void gw_apiname_cb(evutil_socket_t fd, short what, void *arg)
{
    gw_apiname_probe_t *p = arg;
    uint8_t msg[GW_APINAME_MSG_MAX];
    char why[200] = "";
    if ((what & EV_READ) == 0) {
        gw_apiname_done(p, CMN_LABEL_NO_ANSWER, "the zone's primary did not answer in time");
        return;
    }
    ssize_t got = recv(fd, msg, sizeof msg, 0);
    if (got < 0) {
        snprintf(why, sizeof why, "%s", strerror(errno));
        gw_apiname_done(p, CMN_LABEL_NO_ANSWER, why);
        return;
    }
    int answer = cmn_label_answer(p->id, msg, (size_t)got, why, sizeof why);
    gw_apiname_done(p, answer, why);
}

/* Sends p's question to the primary of zone z; its answer comes to
 * gw_apiname_cb. On failure the probe is done (no answer). */
static void gw_apiname_ask(struct event_base *base, gw_apiname_probe_t *p,
                           const gw_zone_conf_t *z)
{
    uint8_t q[GW_APINAME_MSG_MAX];
    char fqdn[330], why[200];
    snprintf(fqdn, sizeof fqdn, "%s.%s", p->n->label, p->zone);
    size_t qlen = cmn_label_query(p->id, fqdn, q, sizeof q);
    if (z == NULL) {
        gw_apiname_done(p, CMN_LABEL_NO_ANSWER, "not a zone of this gateway");
        return;
    }
    p->fd = socket(z->primary.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct timeval tv = {GW_APINAME_TIMEOUT_MS / 1000, (GW_APINAME_TIMEOUT_MS % 1000) * 1000};
    if (qlen == 0 || p->fd < 0 ||
        connect(p->fd, (const struct sockaddr *)&z->primary.ss, z->primary.len) != 0 ||
        send(p->fd, q, qlen, 0) != (ssize_t)qlen ||
        event_base_once(base, p->fd, EV_READ, gw_apiname_cb, p, &tv) != 0) {
        snprintf(why, sizeof why, "cannot ask %s: %s", z->primary.text,
                 qlen == 0 ? "not a domain name" : strerror(errno));
        gw_apiname_done(p, CMN_LABEL_NO_ANSWER, why);
    }
}

/* Asks the primary of zone (or, for a bare label, of every zone: the
 * database knows which one the device's name is in) about label. */
static int gw_apiname_probe(gw_apireq_t *r, const char *label, const char *zone)
{
    struct evhttp_connection *c = evhttp_request_get_connection(r->req);
    struct event_base *base = c ? evhttp_connection_get_base(c) : NULL;
    size_t nz = zone ? 1 : r->cfg->nzones;
    if (base == NULL)
        return gw_apireq_fail(r, 503, NULL, "the client went away");
    gw_apiname_t *n = calloc(1, sizeof *n + nz * sizeof n->probes[0]);
    if (n == NULL)
        return gw_apireq_fail(r, 503, NULL, "out of memory");
    n->r = r;
    snprintf(n->label, sizeof n->label, "%s", label);
    n->nprobes = n->pending = nz;
    for (size_t i = 0; i < nz; i++) {
        n->probes[i].n = n;
        n->probes[i].fd = -1;
        snprintf(n->probes[i].zone, sizeof n->probes[i].zone, "%s",
                 zone ? zone : r->cfg->zones[i].name);
        if (RAND_bytes((unsigned char *)&n->probes[i].id, sizeof n->probes[i].id) != 1)
            n->probes[i].id = (uint16_t)i;
    }
    /* the last probe done runs the statement and frees n; probe i is not
     * done before it is asked, so n lives until the last is asked */
    for (size_t i = 0; i < nz; i++) {
        const gw_zone_conf_t *z = NULL;
        for (size_t k = 0; k < r->cfg->nzones && z == NULL; k++)
            if (strcmp(r->cfg->zones[k].name, n->probes[i].zone) == 0)
                z = &r->cfg->zones[k];
        gw_apiname_ask(base, &n->probes[i], z);
    }
    return GW_OK;
}

int gw_apiname_set(gw_apireq_t *r)
{
    char name[300], old[300] = "", label[64], pat[CMN_LABEL_PATTERN_MAX + 1];
    const char *zone = NULL, *v;
    int rc;
    if ((rc = gw_apireq_device_arg(r, 1)) != GW_OK ||
        (rc = gw_apireq_body_str(r, "name", 253, &v)) != GW_OK)
        return rc;
    size_t n = strlen(v);
    for (size_t i = 0; i <= n; i++)
        name[i] = (char)tolower((unsigned char)v[i]);
    if (n > 0 && name[n - 1] == '.')
        name[--n] = '\0';
    const char *dot = strchr(name, '.');
    size_t ll = dot ? (size_t)(dot - name) : n;
    if (!gw_apiin_label_ok(name, ll))
        return gw_apireq_fail(r, 400, "name", "name '%s': the host label must be 1 to 63 "
                              "characters of a-z, 0-9 and '-', not starting or ending with "
                              "'-'", v);
    memcpy(label, name, ll);
    label[ll] = '\0';
    if (dot != NULL && (zone = gw_apiname_zone(r, dot + 1)) == NULL)
        return gw_apireq_fail(r, 400, "name", "name '%s': '%s' is not a zone of this gateway",
                              v, dot + 1);
    if (cmn_label_reserved(r->cfg->admin_reserved_labels, label, pat, sizeof pat))
        return gw_apireq_fail(r, 400, "name", "name '%s': the label '%s' is reserved for the "
                              "zone's own hosts (pattern '%s' of [admin] reserved_labels)", v,
                              label, pat);
    if (r->cmd == EVHTTP_REQ_PUT && (rc = gw_apiname_old(r, old, sizeof old)) != GW_OK)
        return rc;
    gw_apireq_who(r);
    gw_sql_param(&r->sql, r->device);
    gw_sql_param(&r->sql, old[0] ? old : NULL);
    gw_sql_param(&r->sql, label);
    gw_sql_param(&r->sql, zone);
    return gw_apiname_probe(r, label, zone);
}
