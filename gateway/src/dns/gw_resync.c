/* gw_resync: 'ddns-gateway resync ZONE' (see gw_resync.h). */
#include "gw_resync.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cmn_text.h"
#include "gw_clock.h"
#include "gw_config.h"
#include "gw_db.h"
#include "gw_dns.h"
#include "gw_err.h"
#include "gw_log.h"
#include "gw_outbox.h"
#include "gw_publish.h"

#define GW_RS_EXIT_OK 0
#define GW_RS_EXIT_CONFIG 1
#define GW_RS_EXIT_USAGE 2
#define GW_RS_EXIT_RUNTIME 3
#define GW_RS_EXIT_HELP 100   /* internal: --help was answered */
#define GW_RS_CHUNK 1000            /* differences queued per transaction */
#define GW_RS_SHOW 20               /* differences listed without --verbose */

/* The zone's A and AAAA records at one owner name. */
struct gw_rs_ent {
    char *fqdn;
    uint32_t ttl[2];                /* [0] A, [1] AAAA */
    uint8_t count[2];               /* records of the type (saturating) */
    uint8_t addr[2][16];            /* the first record of each type */
    uint8_t seen;                   /* the database knows the name */
};

/* Open-addressing hash of owner names. */
struct gw_rs_table {
    struct gw_rs_ent *slots;
    size_t cap, len;
};

enum gw_rs_kind { GW_RS_MISSING, GW_RS_WRONG, GW_RS_EXTRA, GW_RS_REMOVED };

static const char *const gw_rs_kind_name[] = {"missing", "wrong", "extra", "removed"};

/* One record set to repair. */
struct gw_rs_diff {
    char *fqdn;
    char *label;                    /* the names.label it belongs to, or "" */
    int is_aaaa;
    enum gw_rs_kind kind;
    char zone_has[64];              /* what the zone serves, for the report */
    char db_has[64];                /* what the database records */
};

struct gw_resync {
    const gw_zone_conf_t *zone;
    PGconn *pg;
    struct gw_rs_table tab;
    struct gw_rs_diff *diffs;
    size_t ndiffs, capdiffs;
    size_t names, active, unmanaged, counts[4];
    int verbose;
};

static void gw_rs_usage(FILE *f, const char *default_config)
{
    fprintf(f,
"NAME\n"
"    ddns-gateway resync - repair a zone from the database\n"
"\n"
"SYNOPSIS\n"
"    ddns-gateway resync ZONE [-c FILE] [-n] [-v] [--no-publish] [--timeout S]\n"
"\n"
"DESCRIPTION\n"
"    Reads ZONE from its primary server with a zone transfer (AXFR over TCP,\n"
"    signed with the zone's TSIG key; the server must allow transfers for\n"
"    that key) and compares every A and AAAA record with the database:\n"
"\n"
"      missing  the database records an address the zone does not serve\n"
"      wrong    the zone serves another address, several records, or\n"
"               another TTL than the name's (or the zone's default)\n"
"      extra    the zone serves a record for a revoked device, or for a\n"
"               family the device never recorded\n"
"      removed  a name the history table says was published, that no\n"
"               longer exists (for example after a reissue with a new name)\n"
"\n"
"    Records the database never published (the zone's own name servers,\n"
"    records added by hand) are left alone and only counted.\n"
"\n"
"    Every difference is queued in the DNS outbox as the name's current\n"
"    state, read under row locks, so an update a device makes meanwhile\n"
"    stays the newest change. The command then publishes the outbox like a\n"
"    gateway does (safe while gateways run: one publisher per zone at a\n"
"    time) until none of the queued changes is left, printing progress.\n"
"    Use it after the DNS server lost its journal or was restored from an\n"
"    old backup. Running it on a zone that is in sync changes nothing.\n"
"\n"
"OPTIONS\n"
"    -c FILE, --config FILE\n"
"        The gateway's configuration file (default %s): the database, the\n"
"        zone's primary and TSIG key come from it.\n"
"    -n, --dry-run\n"
"        Only compare and report; queue nothing.\n"
"    -v, --verbose\n"
"        List every difference and every record left alone (default: the\n"
"        first %d differences), and log each published batch.\n"
"    --no-publish\n"
"        Queue the repairs and exit; running gateways publish them.\n"
"    --timeout S\n"
"        Seconds to wait for the queued changes to be published (default\n"
"        60). The changes stay queued when the time runs out.\n"
"    -h, --help\n"
"        Print this text.\n"
"\n"
"EXIT STATUS\n"
"    0  the zone was in sync, or every difference was repaired (or queued,\n"
"       with --no-publish)\n"
"    1  configuration problem, or ZONE is not configured\n"
"    2  bad command line\n"
"    3  zone transfer, database or publishing failed, or the timeout ran out\n"
"    4  --dry-run found differences\n",
            default_config, GW_RS_SHOW);
}

/* ---- owner name table ---------------------------------------------------- */

static struct gw_rs_ent *gw_rs_find(const struct gw_rs_table *t, const char *fqdn)
{
    if (t->cap == 0)
        return NULL;
    for (size_t i = (size_t)cmn_hash(fqdn) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (t->slots[i].fqdn == NULL)
            return NULL;
        if (strcmp(t->slots[i].fqdn, fqdn) == 0)
            return &t->slots[i];
    }
}

static int gw_rs_grow(struct gw_rs_table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1024;
    struct gw_rs_ent *s = calloc(cap, sizeof *s);
    if (s == NULL)
        return GW_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].fqdn == NULL)
            continue;
        size_t j = (size_t)cmn_hash(t->slots[i].fqdn) & (cap - 1);
        while (s[j].fqdn != NULL)
            j = (j + 1) & (cap - 1);
        s[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = s;
    t->cap = cap;
    return 0;
}

static int gw_rs_add_record(void *arg, const char *owner, int is_aaaa, uint32_t ttl,
                            const uint8_t *addr)
{
    struct gw_rs_table *t = arg;
    struct gw_rs_ent *e = gw_rs_find(t, owner);

    if (e == NULL) {
        if ((t->len + 1) * 2 > t->cap && gw_rs_grow(t) != GW_OK)
            return GW_ENOMEM;
        size_t i = (size_t)cmn_hash(owner) & (t->cap - 1);
        while (t->slots[i].fqdn != NULL)
            i = (i + 1) & (t->cap - 1);
        e = &t->slots[i];
        if ((e->fqdn = strdup(owner)) == NULL)
            return GW_ENOMEM;
        t->len++;
    }
    int k = is_aaaa ? 1 : 0;
    if (e->count[k] == 0) {
        memcpy(e->addr[k], addr, is_aaaa ? 16 : 4);
        e->ttl[k] = ttl;
    }
    if (e->count[k] < UINT8_MAX)
        e->count[k]++;
    return 0;
}

static void gw_rs_table_free(struct gw_rs_table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->slots[i].fqdn);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* ---- comparison -------------------------------------------------------- */

static void gw_rs_zone_text(const struct gw_rs_ent *e, int k, char *out, size_t outlen)
{
    char a[INET6_ADDRSTRLEN];
    if (e == NULL || e->count[k] == 0) {
        snprintf(out, outlen, "-");
        return;
    }
    inet_ntop(k ? AF_INET6 : AF_INET, e->addr[k], a, sizeof a);
    if (e->count[k] > 1)
        snprintf(out, outlen, "%s ttl %u (+%u more)", a, e->ttl[k], e->count[k] - 1u);
    else
        snprintf(out, outlen, "%s ttl %u", a, e->ttl[k]);
}

static int gw_rs_add_diff(struct gw_resync *rs, const char *fqdn, const char *label, int k,
                          enum gw_rs_kind kind, const struct gw_rs_ent *e, const char *db_has)
{
    if (rs->ndiffs == rs->capdiffs) {
        size_t cap = rs->capdiffs ? rs->capdiffs * 2 : 256;
        struct gw_rs_diff *d = realloc(rs->diffs, cap * sizeof *d);
        if (d == NULL)
            return GW_ENOMEM;
        rs->diffs = d;
        rs->capdiffs = cap;
    }
    struct gw_rs_diff *d = &rs->diffs[rs->ndiffs];
    memset(d, 0, sizeof *d);
    d->fqdn = strdup(fqdn);
    d->label = strdup(label);
    if (d->fqdn == NULL || d->label == NULL) {
        free(d->fqdn);
        free(d->label);
        return GW_ENOMEM;
    }
    d->is_aaaa = k;
    d->kind = kind;
    gw_rs_zone_text(e, k, d->zone_has, sizeof d->zone_has);
    snprintf(d->db_has, sizeof d->db_has, "%s", db_has);
    rs->ndiffs++;
    rs->counts[kind]++;
    return 0;
}

/* Compares one names row with the zone. db_addr: the recorded address text
 * or NULL; active: the device may have records. */
static int gw_rs_compare(struct gw_resync *rs, const char *label, const char *fqdn, int k,
                         const char *db_addr, int active, int ttl)
{
    struct gw_rs_ent *e = gw_rs_find(&rs->tab, fqdn);
    int zone_has = e != NULL && e->count[k] > 0;
    char db_has[64];
    uint8_t want[16];

    if (e != NULL)
        e->seen = 1;
    if (!active || db_addr == NULL) {
        if (!zone_has)
            return 0;
        snprintf(db_has, sizeof db_has, "%s", active ? "no address" : "device revoked");
        return gw_rs_add_diff(rs, fqdn, label, k, GW_RS_EXTRA, e, db_has);
    }
    snprintf(db_has, sizeof db_has, "%s ttl %d", db_addr, ttl);
    if (inet_pton(k ? AF_INET6 : AF_INET, db_addr, want) != 1) {
        gw_error("resync: the database holds an unusable address '%s' for %s", db_addr, fqdn);
        return GW_EDB;
    }
    if (!zone_has)
        return gw_rs_add_diff(rs, fqdn, label, k, GW_RS_MISSING, e, db_has);
    if (e->count[k] != 1 || memcmp(e->addr[k], want, k ? 16 : 4) != 0 ||
        e->ttl[k] != (uint32_t)ttl)
        return gw_rs_add_diff(rs, fqdn, label, k, GW_RS_WRONG, e, db_has);
    return 0;
}

static const char *gw_rs_pgerr(PGconn *pg, const PGresult *r)
{
    return gw_db_message(r ? PQresultErrorMessage(r) : PQerrorMessage(pg));
}

/* Streams the zone's names from the database and compares each. */
static int gw_rs_compare_db(struct gw_resync *rs)
{
    const char *p[1] = {rs->zone->name};
    PGresult *r;
    int rc = GW_OK;
    char fqdn[GW_DNAME_MAX + 2];

    if (!PQsendQueryParams(rs->pg,
                           "SELECT n.label, host(n.ipv4), host(n.ipv6), n.ttl, d.status "
                           "FROM names n JOIN devices d ON d.device_id = n.device_id "
                           "WHERE n.zone = $1",
                           1, NULL, p, NULL, NULL, 0) ||
        !PQsetSingleRowMode(rs->pg)) {
        fprintf(stderr, "ddns-gateway resync: reading the names: %s\n", gw_rs_pgerr(rs->pg, NULL));
        return GW_EDB;
    }
    while ((r = PQgetResult(rs->pg)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE && rc == GW_OK) {
            const char *label = PQgetvalue(r, 0, 0);
            int active = strcmp(PQgetvalue(r, 0, 4), "active") == 0;
            int ttl = PQgetisnull(r, 0, 3) ? rs->zone->default_ttl : atoi(PQgetvalue(r, 0, 3));
            snprintf(fqdn, sizeof fqdn, "%s.%s", label, rs->zone->name);
            rs->names++;
            rs->active += (size_t)active;
            for (int k = 0; k < 2 && rc == GW_OK; k++) {
                const char *a = PQgetisnull(r, 0, 1 + k) ? NULL : PQgetvalue(r, 0, 1 + k);
                if (gw_rs_compare(rs, label, fqdn, k, a, active, ttl) != 0)
                    rc = GW_ENOMEM;
            }
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && rc == GW_OK) {
            fprintf(stderr, "ddns-gateway resync: reading the names: %s\n", gw_rs_pgerr(rs->pg, r));
            rc = GW_EDB;
        }
        PQclear(r);
    }
    return rc;
}

/* Owner names the database does not know: names it published once (the
 * history table) are 'removed'; the others are left alone. */
static int gw_rs_compare_unknown(struct gw_resync *rs)
{
    char **batch = NULL;
    size_t nb = 0;
    int rc = GW_OK;
    size_t zl = strlen(rs->zone->name);

    batch = calloc(GW_RS_CHUNK, sizeof *batch);
    if (batch == NULL)
        return GW_ENOMEM;
    for (size_t i = 0; i <= rs->tab.cap && rc == GW_OK; i++) {
        struct gw_rs_ent *e = i < rs->tab.cap ? &rs->tab.slots[i] : NULL;
        if (e != NULL && (e->fqdn == NULL || e->seen))
            continue;
        if (e != NULL)
            batch[nb++] = e->fqdn;
        if (nb == 0 || (e != NULL && nb < GW_RS_CHUNK))
            continue;
        /* {"a","b"} with the names quoted (they are DNS names: no quote
         * or backslash can occur, ldns escapes such bytes) */
        size_t cap = 3, len = 0;
        for (size_t j = 0; j < nb; j++)
            cap += strlen(batch[j]) + 3;
        char *arr = malloc(cap);
        if (arr == NULL) {
            rc = GW_ENOMEM;
            break;
        }
        arr[len++] = '{';
        for (size_t j = 0; j < nb; j++)
            len += (size_t)sprintf(arr + len, "%s\"%s\"", j ? "," : "", batch[j]);
        arr[len++] = '}';
        arr[len] = '\0';
        const char *p[1] = {arr};
        PGresult *r = PQexecParams(rs->pg,
                                   "SELECT DISTINCT fqdn FROM history WHERE fqdn = ANY($1::text[])",
                                   1, NULL, p, NULL, NULL, 0);
        free(arr);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "ddns-gateway resync: reading the history: %s\n",
                    gw_rs_pgerr(rs->pg, r));
            PQclear(r);
            rc = GW_EDB;
            break;
        }
        for (size_t j = 0; j < nb && rc == GW_OK; j++) {
            struct gw_rs_ent *u = gw_rs_find(&rs->tab, batch[j]);
            int published = 0;
            for (int row = 0; row < PQntuples(r) && !published; row++)
                published = strcmp(PQgetvalue(r, row, 0), batch[j]) == 0;
            if (!published) {
                rs->unmanaged += (size_t)(u->count[0] + u->count[1]);
                if (rs->verbose)
                    printf("  left alone  %s (not published by the gateway)\n", batch[j]);
                continue;
            }
            /* the label, when the name is one label below the zone */
            size_t fl = strlen(batch[j]);
            char label[64] = "";
            if (fl > zl + 1 && fl - zl - 1 < sizeof label && batch[j][fl - zl - 1] == '.') {
                memcpy(label, batch[j], fl - zl - 1);
                label[fl - zl - 1] = '\0';
                if (strchr(label, '.') != NULL)
                    label[0] = '\0';
            }
            for (int k = 0; k < 2 && rc == GW_OK; k++)
                if (u->count[k] > 0 &&
                    gw_rs_add_diff(rs, batch[j], label, k, GW_RS_REMOVED, u, "no such name") != 0)
                    rc = GW_ENOMEM;
        }
        PQclear(r);
        nb = 0;
    }
    free(batch);
    return rc;
}

/* ---- repair ------------------------------------------------------------ */

static int gw_rs_exec(PGconn *pg, const char *sql, int n, const char *const *p, PGresult **out)
{
    char err[300];
    int rc = gw_db_exec(pg, "queuing the repairs", sql, n, p, out, err, sizeof err);
    if (rc != GW_OK)
        fprintf(stderr, "ddns-gateway resync: %s\n", err);
    return rc;
}

/* Appends the quoted array element s to buf (NUL-terminated, room known). */
static size_t gw_rs_arr_put(char *buf, size_t len, size_t j, const char *s)
{
    return len + (size_t)sprintf(buf + len, "%s\"%s\"", j ? "," : "", s);
}

/* Queues diffs[from..to) in one transaction; *max_id gets the largest
 * outbox id queued. */
static int gw_rs_queue_chunk(struct gw_resync *rs, size_t from, size_t to, long long *max_id)
{
    size_t cap = 8;
    char *fq = NULL, *lb = NULL, *ty = NULL;
    int rc = GW_ENOMEM, in_tx = 0;

    for (size_t i = from; i < to; i++)
        cap += strlen(rs->diffs[i].fqdn) + 3;
    fq = malloc(cap);
    lb = malloc(cap);
    ty = malloc(8 + (to - from) * 8);
    if (fq == NULL || lb == NULL || ty == NULL)
        goto out;
    size_t lf = 1, ll = 1, lt = 1;
    fq[0] = lb[0] = ty[0] = '{';
    for (size_t i = from; i < to; i++) {
        const struct gw_rs_diff *d = &rs->diffs[i];
        lf = gw_rs_arr_put(fq, lf, i - from, d->fqdn);
        ll = gw_rs_arr_put(lb, ll, i - from, d->label);
        lt = gw_rs_arr_put(ty, lt, i - from, d->is_aaaa ? "AAAA" : "A");
    }
    memcpy(fq + lf, "}", 2);
    memcpy(lb + ll, "}", 2);
    memcpy(ty + lt, "}", 2);
    if ((rc = gw_rs_exec(rs->pg, "BEGIN", 0, NULL, NULL)) != GW_OK)
        goto out;
    in_tx = 1;
    /* Lock order as in ddns_apply_request: the devices first, then their
     * names; what is read below is then the committed current state, and
     * a racing update commits its own, newer outbox row after ours. */
    rc = gw_rs_exec(rs->pg,
                    "SELECT 1 FROM devices WHERE device_id IN "
                    "(SELECT device_id FROM names WHERE zone = $1 AND label = ANY($2::text[])) "
                    "ORDER BY device_id FOR SHARE",
                    2, (const char *const[]){rs->zone->name, lb}, NULL);
    if (rc != GW_OK)
        goto out;
    char err[300];
    rc = gw_outbox_requeue(rs->pg, rs->zone->name, fq, lb, ty, max_id, err, sizeof err);
    if (rc != GW_OK) {
        fprintf(stderr, "ddns-gateway resync: %s\n", err);
        goto out;
    }
    rc = gw_rs_exec(rs->pg, "COMMIT", 0, NULL, NULL);
    in_tx = rc != GW_OK;
out:
    if (in_tx)
        PQclear(PQexec(rs->pg, "ROLLBACK"));
    free(fq);
    free(lb);
    free(ty);
    return rc;
}

/* Waits until no outbox row of the zone up to max_id is left. */
static int gw_rs_wait(struct gw_resync *rs, long long max_id, int timeout_s)
{
    int64_t start = gw_clock_ms(), last_print = start;

    for (;;) {
        long long left = 0;
        char lasterr[256], err[300];
        if (gw_outbox_left(rs->pg, rs->zone->name, max_id, &left, lasterr, sizeof lasterr, err,
                           sizeof err) != GW_OK) {
            fprintf(stderr, "ddns-gateway resync: %s\n", err);
            return GW_EDB;
        }
        int64_t now = gw_clock_ms();
        if (left == 0) {
            printf("resync %s: published (%.1f s)\n", rs->zone->name,
                   (double)(now - start) / 1000.0);
            return GW_OK;
        }
        if (now - start >= (int64_t)timeout_s * 1000) {
            fprintf(stderr,
                    "ddns-gateway resync: %lld change(s) of zone %s still queued after %d s%s%s; "
                    "they stay in the outbox and a running gateway publishes them\n",
                    left, rs->zone->name, timeout_s, lasterr[0] ? ", last error: " : "", lasterr);
            return GW_ETIMEDOUT;
        }
        if (now - last_print >= 1000) {
            printf("resync %s: %lld change(s) waiting to be published%s%s\n", rs->zone->name,
                   left, lasterr[0] ? " (last error: " : "", lasterr[0] ? lasterr : "");
            if (lasterr[0])
                printf(")\n");
            fflush(stdout);
            last_print = now;
        }
        usleep(100 * 1000);
    }
}

static void gw_rs_free(struct gw_resync *rs)
{
    for (size_t i = 0; i < rs->ndiffs; i++) {
        free(rs->diffs[i].fqdn);
        free(rs->diffs[i].label);
    }
    free(rs->diffs);
    gw_rs_table_free(&rs->tab);
    if (rs->pg != NULL)
        PQfinish(rs->pg);
}

/* What the command line asked for. */
typedef struct gw_rs_args {
    const char *path;
    int dry_run, publish, timeout_s, verbose;
    char zone[GW_DNAME_MAX + 2];    /* lowercase, no trailing dot */
} gw_rs_args_t;

/* Options and the one ZONE; GW_OK, or the exit code of a usage error or
 * of --help (as a positive number). */
static int gw_rs_args(int argc, char **argv, const char *default_config, gw_rs_args_t *a)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"dry-run", no_argument, NULL, 'n'},
        {"verbose", no_argument, NULL, 'v'},
        {"no-publish", no_argument, NULL, 'P'},
        {"timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    char *end;
    *a = (gw_rs_args_t){.path = default_config, .publish = 1, .timeout_s = 60};
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:nvh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': a->path = optarg; break;
        case 'n': a->dry_run = 1; break;
        case 'v': a->verbose = 1; break;
        case 'P': a->publish = 0; break;
        case 'T': {
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 1 || v > 86400) {
                fprintf(stderr, "ddns-gateway resync: --timeout wants seconds from 1 to 86400, "
                        "not '%s'\n", optarg);
                return GW_RS_EXIT_USAGE;
            }
            a->timeout_s = (int)v;
            break;
        }
        case 'h': gw_rs_usage(stdout, default_config); return GW_RS_EXIT_HELP;
        default:
            fprintf(stderr, "Try 'ddns-gateway resync --help'.\n");
            return GW_RS_EXIT_USAGE;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "ddns-gateway resync: %s\nTry 'ddns-gateway resync --help'.\n",
                optind < argc ? "exactly one ZONE expected" : "which ZONE? (none given)");
        return GW_RS_EXIT_USAGE;
    }
    snprintf(a->zone, sizeof a->zone, "%s", argv[optind]);
    size_t zl = strlen(a->zone);
    if (zl > 0 && a->zone[zl - 1] == '.')
        a->zone[--zl] = '\0';
    for (size_t i = 0; i < zl; i++)
        if (a->zone[i] >= 'A' && a->zone[i] <= 'Z')
            a->zone[i] = (char)(a->zone[i] + 32);
    return GW_OK;
}

/* The configuration and the zone's section in it; GW_OK or an exit code. */
static int gw_rs_load(const gw_rs_args_t *a, gw_config_t **cfg, gw_config_msgs_t *msgs,
                      struct gw_resync *rs)
{
    if (gw_config_load(a->path, cfg, msgs) != GW_OK) {
        fputs(msgs->errors ? msgs->errors : "configuration error\n", stderr);
        fprintf(stderr, "ddns-gateway resync: %s: %d problem(s) found\n", a->path,
                msgs->nerrors);
        return GW_RS_EXIT_CONFIG;
    }
    gw_log_set_level(rs->verbose ? GW_LOG_INFO : GW_LOG_WARN);
    for (size_t i = 0; i < (*cfg)->nzones; i++)
        if (strcmp((*cfg)->zones[i].name, a->zone) == 0)
            rs->zone = &(*cfg)->zones[i];
    if (rs->zone == NULL) {
        fprintf(stderr, "ddns-gateway resync: zone '%s' is not configured in %s (no [zone %s] "
                "section)\n", a->zone, a->path, a->zone);
        return GW_RS_EXIT_CONFIG;
    }
    return GW_OK;
}

/* 1. the zone as its primary serves it; 2. the database's names against it. */
static int gw_rs_transfer_compare(const gw_config_t *cfg, const char *zname, struct gw_resync *rs)
{
    gw_dns_axfr_stats_t st;
    char err[512];
    int64_t t0 = gw_clock_ms();
    if (gw_dns_axfr(rs->zone, gw_rs_add_record, &rs->tab, &st, err, sizeof err) != GW_OK) {
        fprintf(stderr, "ddns-gateway resync: %s\n", err);
        return GW_EDNS;
    }
    printf("resync %s: zone transfer from %s: %zu records, %zu A/AAAA at %zu names (%.1f s)\n",
           zname, rs->zone->primary.text, st.records, st.addresses, rs->tab.len,
           (double)(gw_clock_ms() - t0) / 1000.0);
    fflush(stdout);
    const char *kw[3], *val[3];
    gw_db_conn_params(cfg->db_conninfo, "ddns-gateway-resync", kw, val);
    rs->pg = PQconnectdbParams(kw, val, 1);
    if (PQstatus(rs->pg) != CONNECTION_OK) {
        fprintf(stderr, "ddns-gateway resync: cannot connect to the database: %s\n",
                gw_rs_pgerr(rs->pg, NULL));
        return GW_EDB;
    }
    if (gw_rs_compare_db(rs) != GW_OK || gw_rs_compare_unknown(rs) != GW_OK)
        return GW_EDB;
    printf("resync %s: database: %zu names (%zu of active devices); differences: %zu missing, "
           "%zu wrong, %zu extra, %zu removed; %zu record(s) not published by the gateway "
           "left alone\n",
           zname, rs->names, rs->active, rs->counts[GW_RS_MISSING], rs->counts[GW_RS_WRONG],
           rs->counts[GW_RS_EXTRA], rs->counts[GW_RS_REMOVED], rs->unmanaged);
    for (size_t i = 0; i < rs->ndiffs && (rs->verbose || i < GW_RS_SHOW); i++) {
        const struct gw_rs_diff *d = &rs->diffs[i];
        printf("  %-8s %-4s %s  zone: %s  database: %s\n", gw_rs_kind_name[d->kind],
               d->is_aaaa ? "AAAA" : "A", d->fqdn, d->zone_has, d->db_has);
    }
    if (!rs->verbose && rs->ndiffs > GW_RS_SHOW)
        printf("  ... and %zu more (--verbose lists all)\n", rs->ndiffs - GW_RS_SHOW);
    return GW_OK;
}

/* 3. the repairs into the outbox, in chunks, with progress. */
static int gw_rs_queue(struct gw_resync *rs, const char *zname, long long *max_id)
{
    *max_id = 0;
    for (size_t from = 0; from < rs->ndiffs; from += GW_RS_CHUNK) {
        size_t to = from + GW_RS_CHUNK < rs->ndiffs ? from + GW_RS_CHUNK : rs->ndiffs;
        if (gw_rs_queue_chunk(rs, from, to, max_id) != GW_OK)
            return GW_EDB;
        if (rs->ndiffs > GW_RS_CHUNK) {
            printf("resync %s: queued %zu of %zu\n", zname, to, rs->ndiffs);
            fflush(stdout);
        }
    }
    printf("resync %s: %zu change(s) queued in the outbox\n", zname, rs->ndiffs);
    fflush(stdout);
    return GW_OK;
}

int gw_resync_main(int argc, char **argv, const char *default_config)
{
    gw_rs_args_t a;
    gw_config_t *cfg = NULL;
    gw_config_msgs_t msgs;
    gw_publish_t *pub = NULL;
    gw_publish_health_t *health = NULL;
    struct gw_resync rs;
    long long max_id;
    int code;

    memset(&rs, 0, sizeof rs);
    memset(&msgs, 0, sizeof msgs);
    if ((code = gw_rs_args(argc, argv, default_config, &a)) != GW_OK)
        return code == GW_RS_EXIT_HELP ? GW_RS_EXIT_OK : code;
    rs.verbose = a.verbose;
    if ((code = gw_rs_load(&a, &cfg, &msgs, &rs)) != GW_OK)
        goto out;
    code = GW_RS_EXIT_RUNTIME;
    if (gw_rs_transfer_compare(cfg, a.zone, &rs) != GW_OK)
        goto out;
    if (rs.ndiffs == 0) {
        printf("resync %s: in sync, nothing to do\n", a.zone);
        code = GW_RS_EXIT_OK;
    } else if (a.dry_run) {
        printf("resync %s: --dry-run: %zu change(s) would be queued\n", a.zone, rs.ndiffs);
        code = GW_RESYNC_EXIT_DIFFERENT;
    } else if (gw_rs_queue(&rs, a.zone, &max_id) == GW_OK) {
        /* 4. publish them like a gateway does */
        if (!a.publish)
            code = GW_RS_EXIT_OK;
        else if ((health = gw_publish_health_new()) != NULL &&
                 gw_publish_start(cfg, health, &pub) == GW_OK &&
                 gw_rs_wait(&rs, max_id, a.timeout_s) == GW_OK)
            code = GW_RS_EXIT_OK;
    }
out:
    gw_publish_stop(pub);
    gw_publish_health_free(health);
    gw_rs_free(&rs);
    gw_config_free(cfg);
    gw_config_msgs_clear(&msgs);
    return code;
}
