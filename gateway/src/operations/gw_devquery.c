/* gw_devquery: the admin API's device search (see gw_devquery.h). */
#include "gw_devquery.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmn_key.h"
#include "cmn_mac.h"
#include "gw_apiin.h"
#include "gw_err.h"

#define GW_DEVQUERY_WHERE_LEN 4096
#define GW_DEVQUERY_TEXT_MAX 200

/* The search being built: the WHERE clause, its parameters, the verdict. */
typedef struct gw_dq {
    gw_devquery_get_fn get;
    void *arg;
    gw_sql_t *q;
    gw_devquery_fail_t *fail;
    char where[GW_DEVQUERY_WHERE_LEN];
    size_t wlen;
    int err;
} gw_dq_t;

static int gw_dq_fail(gw_dq_t *d, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int gw_dq_fail(gw_dq_t *d, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->fail->msg, sizeof d->fail->msg, fmt, ap);
    va_end(ap);
    d->fail->field = field;
    return GW_EINVAL;
}

/* Appends " AND <condition>" to the WHERE clause; a clause that would not
 * fit fails the whole search. */
static void gw_dq_and(gw_dq_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gw_dq_and(gw_dq_t *d, const char *fmt, ...)
{
    if (d->err != GW_OK)
        return;
    size_t room = sizeof d->where - d->wlen;
    int w = snprintf(d->where + d->wlen, room, " AND ");
    if (w > 0 && (size_t)w < room) {
        va_list ap;
        va_start(ap, fmt);
        int w2 = vsnprintf(d->where + d->wlen + (size_t)w, room - (size_t)w, fmt, ap);
        va_end(ap);
        if (w2 >= 0 && (size_t)w2 < room - (size_t)w) {
            d->wlen += (size_t)w + (size_t)w2;
            return;
        }
    }
    d->where[d->wlen] = '\0';
    d->err = GW_ENOSPC;
}

/* A LIKE pattern "escaped(v)%" as a parameter; its number, or 0. */
static int gw_dq_prefix(gw_dq_t *d, const char *v)
{
    char esc[GW_SQL_PARAM_LEN - 2];
    if (gw_apiin_like(v, esc, sizeof esc) != 0) {
        d->err = GW_ENOSPC;
        return 0;
    }
    return gw_sql_paramf(d->q, "%s%%", esc);
}

/* A decimal integer in [lo, hi] or def when absent. */
static int gw_dq_int(gw_dq_t *d, const char *key, long lo, long hi, long def, long *out)
{
    const char *v = d->get(d->arg, key);
    char *end;
    *out = def;
    if (v == NULL)
        return GW_OK;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || end == v || n < lo || n > hi)
        return gw_dq_fail(d, key, "%s: an integer from %ld to %ld", key, lo, hi);
    *out = n;
    return GW_OK;
}

static void gw_dq_lower(const char *v, char *out, size_t outlen)
{
    size_t i;
    for (i = 0; v[i] && i < outlen - 1; i++)
        out[i] = (char)tolower((unsigned char)v[i]);
    out[i] = '\0';
}

/* The devices holding addr as a name's address or as their last source. */
static void gw_dq_addr(gw_dq_t *d, const char *addr)
{
    int p = gw_sql_param(d->q, addr);
    gw_dq_and(d, "d.device_id IN (SELECT device_id FROM names WHERE ipv4 = $%d::inet "
                 "OR ipv6 = $%d::inet UNION SELECT device_id FROM devices "
                 "WHERE last_source = $%d::inet)", p, p, p);
}

/* The devices with a MAC beginning or ending with the hex digits part. */
static void gw_dq_mac_part(gw_dq_t *d, const char *part, char *sub, size_t sublen)
{
    int pm = gw_sql_paramf(d->q, "%s%%", part);
    int pr = gw_sql_param(d->q, part);
    int n = snprintf(sub, sublen, "SELECT device_id FROM devices WHERE device_id LIKE $%d "
                     "UNION SELECT admin_mac_suffix($%d)", pm, pr);
    if (n < 0 || (size_t)n >= sublen)
        d->err = GW_ENOSPC;
}

static int gw_dq_is_addr(const char *v)
{
    struct in6_addr a6;
    struct in_addr a4;
    return inet_pton(AF_INET, v, &a4) == 1 || inet_pton(AF_INET6, v, &a6) == 1;
}

/* q: a full MAC, an address, or the beginning of a hostname or a serial,
 * or part of a MAC (its beginning or its end). */
static void gw_dq_text(gw_dq_t *d, const char *v)
{
    char low[256], part[16], id[CMN_DEVICE_ID_LEN + 1], sub[1400], mac[400];
    gw_dq_lower(v, low, sizeof low);
    if (cmn_mac_canon(v, strlen(v), id) == CMN_MAC_OK) {
        gw_dq_and(d, "d.device_id = $%d", gw_sql_param(d->q, id));
        return;
    }
    if (gw_dq_is_addr(v)) {
        gw_dq_addr(d, v);
        return;
    }
    const char *dot = strchr(low, '.');
    int pl = gw_dq_prefix(d, low);
    int ps = gw_dq_prefix(d, v);
    char full[300] = "";
    if (dot != NULL && dot != low) {
        int pf = gw_sql_param(d->q, low);
        snprintf(full, sizeof full, " UNION SELECT device_id FROM names WHERE label = "
                 "split_part($%d, '.', 1) AND zone = substr($%d, strpos($%d, '.') + 1)",
                 pf, pf, pf);
    }
    mac[0] = '\0';
    if (gw_apiin_mac_part(v, part) == 0) {
        char arm[360];
        gw_dq_mac_part(d, part, arm, sizeof arm);
        snprintf(mac, sizeof mac, " UNION %s", arm);
    }
    int n = snprintf(sub, sizeof sub, "SELECT device_id FROM names WHERE label LIKE $%d "
                     "UNION SELECT device_id FROM devices WHERE serial LIKE $%d%s%s",
                     pl, ps, full, mac);
    if (n < 0 || (size_t)n >= sizeof sub)
        d->err = GW_ENOSPC;
    gw_dq_and(d, "d.device_id = ANY (ARRAY(%s))", sub);
}

static int gw_dq_mac(gw_dq_t *d, const char *v)
{
    char part[16], id[CMN_DEVICE_ID_LEN + 1], sub[360];
    if (cmn_mac_canon(v, strlen(v), id) == CMN_MAC_OK) {
        gw_dq_and(d, "d.device_id = $%d", gw_sql_param(d->q, id));
        return GW_OK;
    }
    if (gw_apiin_mac_part(v, part) != 0)
        return gw_dq_fail(d, "mac", "mac: a MAC in any common form, or its first or last "
                          "2 to 12 hex digits");
    gw_dq_mac_part(d, part, sub, sizeof sub);
    gw_dq_and(d, "d.device_id = ANY (ARRAY(%s))", sub);
    return GW_OK;
}

static void gw_dq_hostname(gw_dq_t *d, const char *v)
{
    char low[256];
    gw_dq_lower(v, low, sizeof low);
    if (strchr(low, '.') != NULL) {
        int p = gw_sql_param(d->q, low);
        gw_dq_and(d, "d.device_id = ANY (ARRAY(SELECT device_id FROM names WHERE label = "
                     "split_part($%d, '.', 1) AND zone = substr($%d, strpos($%d, '.') + 1)))",
                  p, p, p);
    } else {
        gw_dq_and(d, "d.device_id = ANY (ARRAY(SELECT device_id FROM names "
                     "WHERE label LIKE $%d))", gw_dq_prefix(d, low));
    }
}

static int gw_dq_status(gw_dq_t *d, const char *v)
{
    if (strcmp(v, "active") == 0 || strcmp(v, "revoked") == 0)
        gw_dq_and(d, "d.status = $%d", gw_sql_param(d->q, v));
    else if (strcmp(v, "failing") == 0)
        gw_dq_and(d, "d.fail_count > 0");
    else if (strcmp(v, "never") == 0)
        gw_dq_and(d, "d.last_seen IS NULL");
    else
        return gw_dq_fail(d, "status", "status: active, revoked, failing or never");
    return GW_OK;
}

/* The filters of the parameters other than q and mac. */
static int gw_dq_filters(gw_dq_t *d)
{
    const char *v;
    int rc = GW_OK;
    if ((v = d->get(d->arg, "serial")) != NULL)
        gw_dq_and(d, "d.serial LIKE $%d", gw_dq_prefix(d, v));
    if ((v = d->get(d->arg, "hostname")) != NULL)
        gw_dq_hostname(d, v);
    if ((v = d->get(d->arg, "model")) != NULL)
        gw_dq_and(d, "lower(d.model) = lower($%d)", gw_sql_param(d->q, v));
    if ((v = d->get(d->arg, "firmware")) != NULL)
        gw_dq_and(d, "d.firmware = $%d", gw_sql_param(d->q, v));
    if ((v = d->get(d->arg, "addr")) != NULL) {
        if (!gw_dq_is_addr(v))
            return gw_dq_fail(d, "addr", "addr: an IPv4 or IPv6 address");
        gw_dq_addr(d, v);
    }
    if ((v = d->get(d->arg, "kid")) != NULL) {
        if (!cmn_kid_valid(v, strlen(v)))
            return gw_dq_fail(d, "kid", "kid: 1 to 16 characters of [a-z0-9]");
        gw_dq_and(d, "d.kid = $%d", gw_sql_param(d->q, v));
    }
    long b;
    if ((rc = gw_dq_int(d, "batch", 1, 0x7fffffffL, 0, &b)) != GW_OK)
        return rc;
    if (b != 0)
        gw_dq_and(d, "d.batch_id = $%d::bigint", gw_sql_paramf(d->q, "%ld", b));
    if ((v = d->get(d->arg, "status")) != NULL && (rc = gw_dq_status(d, v)) != GW_OK)
        return rc;
    static const char *const seen[2] = {"seen_after", "seen_before"};
    for (int i = 0; i < 2; i++) {
        if ((v = d->get(d->arg, seen[i])) == NULL)
            continue;
        if (!gw_apiin_time_ok(v))
            return gw_dq_fail(d, seen[i], "%s: a time such as 2026-11-21 or "
                              "2026-11-21T14:05:00Z", seen[i]);
        gw_dq_and(d, "d.last_seen %s $%d::timestamptz", i == 0 ? ">=" : "<",
                  gw_sql_param(d->q, v));
    }
    return GW_OK;
}

/* sort and order: the column and the direction. */
static int gw_dq_order(gw_dq_t *d, const char **col, const char **order)
{
    static const char *const sorts[][2] = {
        {"device_id", "d.device_id"}, {"mac", "d.device_id"}, {"serial", "d.serial"},
        {"model", "d.model"}, {"firmware", "d.firmware"}, {"kid", "d.kid"},
        {"status", "d.status"}, {"batch", "d.batch_id"}, {"last_seen", "d.last_seen"},
        {"first_seen", "d.created_at"}, {"fail_count", "d.fail_count"},
        {"last_result", "d.last_result"},
    };
    const char *v;
    *col = "d.device_id";
    *order = "ASC";
    if ((v = d->get(d->arg, "sort")) != NULL) {
        *col = NULL;
        for (size_t i = 0; i < sizeof sorts / sizeof sorts[0]; i++)
            if (strcmp(v, sorts[i][0]) == 0)
                *col = sorts[i][1];
        if (*col == NULL)
            return gw_dq_fail(d, "sort", "sort: device_id, mac, serial, model, firmware, kid, "
                              "status, batch, last_seen, first_seen, fail_count or last_result");
    }
    if ((v = d->get(d->arg, "order")) != NULL) {
        if (strcasecmp(v, "asc") == 0)
            *order = "ASC";
        else if (strcasecmp(v, "desc") == 0)
            *order = "DESC";
        else
            return gw_dq_fail(d, "order", "order: asc or desc");
    }
    return GW_OK;
}

int gw_devquery_build(gw_devquery_get_fn get, void *arg, gw_sql_t *q, gw_devquery_fail_t *fail)
{
    static const char *const texts[] = {"q", "mac", "serial", "hostname", "model", "firmware",
                                        "addr", "kid", "batch", "status", "seen_after",
                                        "seen_before", "sort", "order"};
    gw_dq_t d = {.get = get, .arg = arg, .q = q, .fail = fail, .where = "true", .wlen = 4};
    const char *v, *col, *order;
    long limit, offset;
    int rc;

    gw_sql_reset(q);
    fail->field = NULL;
    fail->msg[0] = '\0';
    if ((rc = gw_dq_int(&d, "limit", 1, GW_DEVQUERY_LIMIT_MAX, 50, &limit)) != GW_OK ||
        (rc = gw_dq_int(&d, "offset", 0, 10000000, 0, &offset)) != GW_OK)
        return rc;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if ((v = get(arg, texts[i])) != NULL && !gw_apiin_text_ok(v, GW_DEVQUERY_TEXT_MAX))
            return gw_dq_fail(&d, texts[i], "%s: at most %d printable characters", texts[i],
                              GW_DEVQUERY_TEXT_MAX);
    if ((v = get(arg, "q")) != NULL)
        gw_dq_text(&d, v);
    if ((v = get(arg, "mac")) != NULL && (rc = gw_dq_mac(&d, v)) != GW_OK)
        return rc;
    if ((rc = gw_dq_filters(&d)) != GW_OK || (rc = gw_dq_order(&d, &col, &order)) != GW_OK)
        return rc;
    int plim = gw_sql_paramf(q, "%ld", limit), poff = gw_sql_paramf(q, "%ld", offset);
    const char *nulls = strcmp(col, "d.device_id") == 0 ? "" : " NULLS LAST";
    const char *w = d.where;
    gw_sql_addf(q,
                "SELECT jsonb_build_object('total', (SELECT count(*) FROM devices d WHERE %s), "
                "'limit', $%d::integer, 'offset', $%d::integer, 'devices', coalesce(("
                "SELECT jsonb_agg(admin_device_json(d) ORDER BY s.k %s%s, s.device_id %s) FROM ("
                "SELECT d.device_id, %s AS k FROM devices d WHERE %s "
                "ORDER BY %s %s%s, d.device_id %s "
                "LIMIT $%d::integer OFFSET $%d::integer) s JOIN devices d USING (device_id)), "
                "'[]'))::text",
                w, plim, poff, order, nulls, order, col, w, col, order, nulls, order, plim, poff);
    if (d.err != GW_OK || gw_sql_err(q) != GW_OK) {
        fail->field = NULL;
        snprintf(fail->msg, sizeof fail->msg, "the search is too large (too many or too long "
                 "terms); narrow it");
        return GW_ENOSPC;
    }
    return GW_OK;
}
