/* gw_main: the ddns-gateway program.
 *
 * Owns the command line, loading and checking everything the configuration
 * names (key directory, TLS files, TSIG secrets), the main event loop (the
 * worker threads of gw_worker serve the HTTPS listeners), signal
 * handling through the loop (SIGINT/SIGTERM: graceful stop; SIGHUP: reload
 * of the TLS files, the master keys and the reloadable settings, all or
 * nothing, reaching every worker; SIGPIPE ignored), start-up and shut-down order, and the exit
 * codes. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>

#include "cmn_key.h"
#include "cmn_secmem.h"
#include "gw_api.h"
#include "gw_budget.h"
#include "gw_quiet.h"
#include "gw_seen.h"
#include "gw_checkip.h"
#include "gw_config.h"
#include "gw_conn.h"
#include "gw_db.h"
#include "gw_dns.h"
#include "gw_dyndns.h"
#include "gw_err.h"
#include "gw_http.h"
#include "gw_keyproc.h"
#include "gw_limit.h"
#include "gw_log.h"
#include "gw_metrics.h"
#include "gw_notify.h"
#include "gw_ops.h"
#include "gw_policy.h"
#include "gw_policydb.h"
#include "gw_publish.h"
#include "gw_pubproc.h"
#include "gw_resync.h"
#include "gw_tally.h"
#include "gw_tls.h"
#include "gw_update.h"
#include "gw_worker.h"

#define GW_VERSION "0.1.0"
#define GW_DEFAULT_CONFIG "/etc/ddns/gateway.conf"

enum gw_exit {
    GW_EXIT_OK = 0,         /* clean stop, or --check-config found no problem */
    GW_EXIT_CONFIG = 1,     /* configuration, key, TLS or TSIG problem */
    GW_EXIT_USAGE = 2,      /* bad command line */
    GW_EXIT_RUNTIME = 3,    /* cannot listen, cannot start, or failed while running */
};

struct gw_app {
    gw_config_t *cfg;
    cmn_keyset_t *keys;         /* without a key process only */
    gw_keyproc_t kp;            /* kp.pid > 0: the key process holds the keys */
    gw_pubproc_t pp;            /* pp.pid > 0: the publisher process */
    struct event *kp_ev;        /* the key process's end closed */
    struct event *pp_ev;        /* the publisher process's end closed */
    size_t nkeys;
    char kids[1024];            /* their ids, for the admin API */
    SSL_CTX *ssl;
    struct event_base *base;
    gw_db_t *db;                /* the admin probe's pool, on the main loop */
    gw_db_t *watch_db;          /* LISTENs for devices' status changes (gw_budget),
                                 * on the publisher's conninfo: a session of its own */
    gw_workers_t *workers;
    gw_ops_t *admin;
    gw_db_t *api_db;            /* the admin API's pool, on the main loop */
    gw_api_t *api;
    gw_policydb_t *policydb;    /* the operators' firmware rules, on api_db */
    gw_tally_t *tally;          /* the counts the console reads, on api_db */
    gw_policy_t *policy;
    struct event *sig[3];
    struct event *deadline;
    int stopping;
    int failed;                 /* a worker left its loop unasked */
};

static void gw_usage(FILE *f)
{
    fprintf(f,
"NAME\n"
"    ddns-gateway - device-authenticated dynamic DNS gateway\n"
"\n"
"SYNOPSIS\n"
"    ddns-gateway [-c FILE | --config FILE] [--check-config]\n"
"    ddns-gateway resync ZONE [-c FILE] [OPTIONS]   (see resync --help)\n"
"    ddns-gateway --help | --version\n"
"\n"
"DESCRIPTION\n"
"    Serves the signed device update protocol (docs/PROTOCOL.md) and the\n"
"    dyndns2 update API over HTTPS, records accepted updates in PostgreSQL\n"
"    (ddns_apply_request's rules per request; requests that wait for a\n"
"    database connection go together in one ddns_apply_batch call) and\n"
"    publishes\n"
"    the resulting DNS changes from the dns_outbox table to each zone's\n"
"    primary server with RFC 2136 UPDATE messages signed by TSIG.\n"
"\n"
"    Endpoints (HTTPS listeners):\n"
"      POST /v1/update   signed update; answers one text line: good, nochg,\n"
"                        badrequest FIELD, badauth, badtime SERVER_TIME,\n"
"                        disabled, badagent, badaddr ADDR (403: a name may\n"
"                        not point there), replay, ratelimit SECONDS (429,\n"
"                        with Retry-After), 911 (503, with Retry-After)\n"
"      GET  /nic/update  dyndns2 update for stock clients (ddclient, inadyn,\n"
"                        routers): HTTP Basic auth with the device id and\n"
"                        its password (key reference \".\" 43 characters;\n"
"                        docs/PROTOCOL.md section 3); hostname=FQDN[,...],\n"
"                        myip=V4|V6|V4,V6, offline=YES; answers HTTP 200\n"
"                        with one line per host: good IP, nochg IP, badauth,\n"
"                        badagent, notfqdn, nohost, !yours, numhost, abuse\n"
"                        (also: the address may not be pointed at),\n"
"                        911 (and badrequest PARAM for a malformed query);\n"
"                        no Authorization header: 401 with a Basic challenge\n"
"      GET  /checkip     the caller's address, one line of plain text\n"
"      GET  /nic/checkip the same as the dyndns HTML page \"Current IP\n"
"                        Address: ADDR\"\n"
"      GET  /healthz     200 \"ok\" while the gateway runs\n"
"      anything else     404 \"notfound\"; a known path with another method\n"
"                        answers 405 \"badrequest method\" with Allow; a\n"
"                        target over max_uri_length 414 \"badrequest uri\",\n"
"                        too many query parameters 400 \"badrequest query\"\n"
"\n"
"    Rate limit: a device may change its records at most once per\n"
"    [limits] min_change_interval seconds; an answer nochg does not count.\n"
"\n"
"    Firmware policy: the User-Agent names the model and firmware version,\n"
"    as \"Vendor-Model/1.2.3\" (or dyndns2's \"Vendor - Model - 1.2.3\");\n"
"    [firmware] blocked_models and minimum_versions refuse models and old\n"
"    firmware with badagent, together with the operators' rules stored in\n"
"    the database through the admin API (read every 5 s). /nic/update also\n"
"    refuses a request without a User-Agent, and the models of\n"
"    signed_only_models. address_required_models answer a signed update\n"
"    that names no address \"409 moved ADDR\" (the device signs ADDR again).\n"
"\n"
"    Admin listener ([admin] listen, plain HTTP, keep it on loopback):\n"
"      GET  /healthz     200 \"ok\"\n"
"      GET  /readyz      200 \"ready\", or 503 \"notready REASON\" while stopping,\n"
"                        while the database is unreachable or while the DNS\n"
"                        publisher has no database or a zone's last UPDATE\n"
"                        failed\n"
"      GET  /metrics     Prometheus text format (docs/OPERATIONS.md)\n"
"      /api/v1/...       the admin API for the operations team: JSON, bearer\n"
"                        tokens (scope read or write), every write audited;\n"
"                        device search and actions, fleet counts, firmware\n"
"                        policy, tokens (docs/ADMIN-API.md; client: ddnsctl)\n"
"      GET  /console/    the web console: static files of [admin]\n"
"                        console_dir (docs/OPERATIONS.md, \"Web console\")\n"
"    Its connections have caps and a header deadline of their own, and the\n"
"    admin API a failed-login limiter of its own ([admin] max_connections,\n"
"    max_connections_per_source, header_timeout, auth_fail_limit); behind\n"
"    [admin] trusted_proxies the client is the right-most address of\n"
"    [admin] client_address_header. Admin statements are cancelled after\n"
"    [admin] statement_timeout (answer 504).\n"
"\n"
"    Threads: [gateway] workers event loops serve the HTTPS listeners, each\n"
"    with its own sockets on every listener (SO_REUSEPORT), its own database\n"
"    pool of pool_size connections and its own handlers; the main thread\n"
"    handles signals, the admin listener and reload/stop.\n"
"\n"
"    Processes: two more are forked at start, before anything secret is\n"
"    loaded. The key process (\"ddns-keys\") alone reads and holds the\n"
"    master keys: the workers ask it whether a signature or a dyndns2\n"
"    password is right ([keys] separate_process). The publisher process\n"
"    (\"ddns-publish\") alone reads the zones' TSIG secrets and publishes\n"
"    DNS changes. If either ends, the gateway stops with status 3.\n"
"\n"
"    Connections: over max_connections or max_connections_per_source a new\n"
"    connection is closed at once, before TLS; one that has not delivered a\n"
"    complete request within header_timeout is closed. On [proxy] listeners\n"
"    the peers of [proxy] trusted send a PROXY protocol header (v1 or v2)\n"
"    before TLS and its address is the client's; a header from anyone else\n"
"    closes the connection. X-Forwarded-For is never used. After\n"
"    auth_fail_limit badauth answers within auth_fail_window from one source\n"
"    (IPv4 address or IPv6 /64), that source gets 429 \"ratelimit SECONDS\" for\n"
"    auth_block_time seconds without any credential check.\n"
"\n"
"OPTIONS\n"
"    -c FILE, --config FILE\n"
"        Configuration file (default " GW_DEFAULT_CONFIG "). Relative paths in\n"
"        it are relative to the file's directory; a path that begins with\n"
"        $CREDENTIALS_DIRECTORY is taken from the directory of that name the\n"
"        service manager gives a unit with LoadCredential= (systemd).\n"
"    --check-config\n"
"        Load the configuration, the master keys of the key directory, the\n"
"        TLS certificates, keys and OCSP responses, the [firmware] lists and\n"
"        every zone's TSIG secret; print each problem as\n"
"        FILE:LINE: [section] key: reason;\n"
"        exit 0 when there is none. Nothing is started and the database is\n"
"        not contacted.\n"
"    -h, --help\n"
"        Print this text.\n"
"    -V, --version\n"
"        Print the version.\n"
"\n"
"CONFIGURATION FILE\n"
"    INI format: [section] headers, key = value lines, comments start with\n"
"    ';' or '#' at the beginning of a line, or with ' ;' after a value.\n"
"    Unknown sections and keys are errors. Lines are at most 198 characters.\n"
"    Booleans are yes/no (also true/false, on/off, 1/0).\n"
"\n");
    gw_config_print_reference(f);
    fprintf(f,
"\n"
"LOGGING\n"
"    One line per event on standard error: UTC time, level, message; with\n"
"    log_format = json one JSON object per line (time, level, msg). Each\n"
"    HTTP request logs one line: req (request id, also sent as X-Request-Id),\n"
"    peer (the client; from the PROXY header when there was one), method,\n"
"    path, status, result token, device id (once parsed), duration in ms\n"
"    and the worker thread that served it, worker=N (JSON: event \"request\"\n"
"    and those members). Each published DNS batch\n"
"    logs zone, changes and ms. Secrets, signatures and Authorization headers\n"
"    are never logged.\n"
"\n"
"SYSTEMD\n"
"    With NOTIFY_SOCKET set, READY=1 is sent once the gateway listens,\n"
"    RELOADING=1 and READY=1 around each SIGHUP reload, STOPPING=1 when it\n"
"    begins to stop (Type=notify-reload, or Type=notify with\n"
"    ExecReload=/bin/kill -HUP $MAINPID).\n"
"\n"
"SIGNALS\n"
"    SIGINT, SIGTERM  every worker stops accepting connections (/readyz answers 503), let\n"
"                     the requests in flight finish (at most request_timeout\n"
"                     + 2 s), stop the publisher after its current batch,\n"
"                     exit 0. A second signal stops at once.\n"
"    SIGHUP           reload: the configuration file, TLS certificates,\n"
"                     keys and OCSP responses, master keys and TSIG secrets\n"
"                     are read again, all or nothing (a problem is logged\n"
"                     and the running ones stay). New connections get the\n"
"                     new certificates; open ones are not touched. Every\n"
"                     key marked 'SIGHUP applies it' below takes effect,\n"
"                     each worker switching on its own loop, and a zone's\n"
"                     primary and TSIG key from the publisher's next run;\n"
"                     a changed key marked 'needs a restart' is named in a\n"
"                     warning and keeps its running value.\n"
"    SIGPIPE          ignored.\n"
"\n"
"EXIT STATUS\n"
"    0  clean stop, or --check-config found no problem\n"
"    1  configuration problem (file, key directory or token, TLS files, TSIG\n"
"       secrets)\n"
"    2  bad command line\n"
"    3  start-up or run-time failure (for example cannot listen)\n");
}

/* The ids of the keys this process holds, for the admin API. */
static void gw_app_kids_from_keys(struct gw_app *app)
{
    app->nkeys = cmn_keyset_ids(app->keys, app->kids, sizeof app->kids);
}

/* The key process loads the master keys cfg names (again): the key
 * directory or the PKCS#11 token. 0, or -1 with the reason recorded
 * against the [keys] key that names them. */
static int gw_app_keyproc_load(struct gw_app *app, gw_config_t *cfg, gw_config_msgs_t *msgs)
{
    char text[sizeof app->kids];
    int token = cfg->keys_pkcs11 != NULL;
    int n = gw_keyproc_ask(&app->kp, token ? GW_KP_LOAD_TOKEN : GW_KP_LOAD,
                           token ? cfg->keys_pkcs11 : cfg->keys_directory, text, sizeof text);
    if (n < 0) {
        gw_config_key_error(cfg, msgs, "keys", token ? "pkcs11" : "directory", "%s", text);
        return -1;
    }
    app->nkeys = (size_t)n;
    memcpy(app->kids, text, sizeof app->kids);
    return 0;
}

/* Loads the configuration and everything it names; the master keys too
 * when keys_here (no key process holds them), the zones' TSIG secrets when
 * secrets_here (no publisher process reads them). */
static int gw_load_all(const char *path, struct gw_app *app, gw_config_msgs_t *msgs,
                       int keys_here, int secrets_here)
{
    char err[1024];
    int bad = 0;

    if (gw_config_load_flags(path, &app->cfg, msgs,
                             secrets_here ? 0 : GW_CONFIG_SECRETS_ELSEWHERE) != GW_OK &&
        app->cfg == NULL)
        return GW_ECONFIG;
    gw_config_t *cfg = app->cfg;
    if (cfg == NULL)
        return GW_ECONFIG;
    /* Check what the file names even when it had errors, so that one run
     * of --check-config reports everything it can. */
    if (keys_here && cfg->keys_directory != NULL && cfg->keys_pkcs11 == NULL) {
        app->keys = cmn_keyset_load_dir(cfg->keys_directory, err, sizeof err);
        if (app->keys == NULL)
            gw_config_key_error(cfg, msgs, "keys", "directory", "%s", err);
        else if (cmn_keyset_count(app->keys) == 0)
            gw_config_key_error(cfg, msgs, "keys", "directory", "no *.key file in %s",
                                cfg->keys_directory);
    } else if (keys_here && cfg->keys_pkcs11 != NULL && cfg->keys_directory == NULL) {
        /* The token's sessions belong to this process (cmn_keyset_load_p11):
         * a process forked from here calls cmn_keyset_after_fork first.
         * The key process, forked before, opens its own. */
        app->keys = cmn_keyset_load_p11(cfg->keys_pkcs11, err, sizeof err);
        if (app->keys == NULL)
            gw_config_key_error(cfg, msgs, "keys", "pkcs11", "%s", err);
        else if (cmn_keyset_count(app->keys) == 0)
            gw_config_key_error(cfg, msgs, "keys", "pkcs11", "token '%s' holds no master key "
                                "(create one with 'ddns-provision keygen --pkcs11 URI')",
                                cmn_keyset_token_label(app->keys));
    }
    if (cfg->tls_certificate != NULL && cfg->tls_private_key != NULL) {
        static const char *const which[] = {"certificate", "certificate", "private_key",
                                            "certificate2", "private_key2", "ocsp_response",
                                            "ocsp_response2"};
        const gw_tls_files_t files = {
            cfg->tls_certificate, cfg->tls_private_key, cfg->tls_certificate2,
            cfg->tls_private_key2, cfg->tls_ocsp_response, cfg->tls_ocsp_response2};
        app->ssl = gw_tls_ctx_new(&files, err, sizeof err, &bad);
        if (app->ssl == NULL)
            gw_config_key_error(cfg, msgs, "tls", which[bad >= 0 && bad <= 6 ? bad : 0], "%s",
                                err);
    }
    app->policy = gw_policy_new();
    if (app->policy == NULL)
        return GW_ENOMEM;
    if (gw_policy_load_blocked(app->policy, cfg->fw_blocked_models, err, sizeof err) != GW_OK)
        gw_config_key_error(cfg, msgs, "firmware", "blocked_models", "%s", err);
    if (gw_policy_load_minimums(app->policy, cfg->fw_minimum_versions, err, sizeof err) != GW_OK)
        gw_config_key_error(cfg, msgs, "firmware", "minimum_versions", "%s", err);
    if (gw_policy_load_signed_only(app->policy, cfg->fw_signed_only_models, err,
                                   sizeof err) != GW_OK)
        gw_config_key_error(cfg, msgs, "firmware", "signed_only_models", "%s", err);
    if (gw_policy_load_address_required(app->policy, cfg->fw_address_required_models, err,
                                        sizeof err) != GW_OK)
        gw_config_key_error(cfg, msgs, "firmware", "address_required_models", "%s", err);
    for (size_t i = 0; i < cfg->nzones; i++) {
        const gw_zone_conf_t *z = &cfg->zones[i];
        if (z->tsig_secret == NULL || z->tsig_key_name == NULL || z->tsig_algorithm == NULL)
            continue;
        if (gw_dns_check_tsig(z, err, sizeof err) != GW_OK)
            gw_config_zone_error(cfg, msgs, z, "tsig_secret_file", "%s", err);
    }
    return msgs->nerrors ? GW_ECONFIG : GW_OK;
}

static void gw_app_free(struct gw_app *app)
{
    if (app->pp_ev != NULL)
        event_free(app->pp_ev);
    gw_pubproc_stop(&app->pp);      /* after its current batch */
    if (app->workers != NULL && gw_workers_running(app->workers) > 0)
        gw_workers_break(app->workers);
    gw_workers_free(app->workers);   /* joins the threads first */
    gw_quiet_shutdown();             /* after the workers' barriers */
    if (app->kp_ev != NULL)
        event_free(app->kp_ev);
    gw_keyproc_stop(&app->kp);      /* after the workers: they ask it */
    gw_db_free(app->api_db);         /* answers admin API requests in flight */
    gw_api_free(app->api);
    gw_policydb_free(app->policydb);
    gw_tally_free(app->tally);
    gw_ops_free(app->admin);
    gw_db_free(app->db);             /* fails a last seen batch in flight */
    gw_seen_free();
    gw_db_free(app->watch_db);
    gw_policy_free(app->policy);
    for (int i = 0; i < 3; i++)
        if (app->sig[i] != NULL)
            event_free(app->sig[i]);
    if (app->deadline != NULL)
        event_free(app->deadline);
    if (app->base != NULL)
        event_base_free(app->base);
    SSL_CTX_free(app->ssl);
    gw_limit_shutdown();
    gw_budget_shutdown();
    gw_conn_shutdown();
    gw_tls_cleanup();
    cmn_keyset_free(app->keys);
    gw_config_free(app->cfg);
}

static void gw_begin_stop(struct gw_app *app);

/* The last seen times are written (or failed): the main loop ends. */
static void gw_seen_written(void *arg)
{
    struct gw_app *app = arg;
    event_base_loopexit(app->base, NULL);
}

/* A worker thread left its loop: once all have, the last seen times
 * waiting are written and the main loop ends. */
static void gw_worker_exited(void *arg)
{
    struct gw_app *app = arg;
    if (!app->stopping) {
        gw_error("a worker thread stopped unexpectedly: stopping");
        app->failed = 1;
        gw_begin_stop(app);
    }
    if (gw_workers_running(app->workers) == 0) {
        gw_info("no request in flight: stopping");
        size_t n = gw_seen_pending();
        if (n > 0)
            gw_info("writing the last seen time of %zu device(s)", n);
        gw_seen_stop(gw_seen_written, app);
    }
}

static void gw_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_app *app = arg;
    (void)fd;
    (void)what;
    gw_warn("%zu request(s) still in flight after the grace period: stopping anyway",
            gw_workers_inflight(app->workers));
    gw_workers_break(app->workers);
    event_base_loopbreak(app->base);
}

static void gw_limit_conf_from(const gw_config_t *cfg, gw_limit_conf_t *lc)
{
    lc->max_connections = cfg->limits.max_connections;
    lc->max_connections_per_source = cfg->limits.max_connections_per_source;
    lc->auth_fail_limit = cfg->limits.auth_fail_limit;
    lc->auth_fail_window = cfg->limits.auth_fail_window;
    lc->auth_block_time = cfg->limits.auth_block_time;
}

static void gw_budget_conf_from(const gw_config_t *cfg, gw_budget_conf_t *bc)
{
    bc->rate = cfg->limits.device_rate;
    bc->burst = cfg->limits.device_burst;
    bc->entries = (size_t)cfg->limits.device_memory;
}

/* NOTIFY ddns_device_status, or the LISTEN (re-)established: no device is
 * known revoked any more (db/functions/60_status_announce.sql). */
static void gw_status_changed(void *arg, const char *payload)
{
    (void)arg;
    (void)payload;
    gw_budget_forget_disabled();
}

/* Moves the keys a SIGHUP applies from the fresh configuration (arg: its
 * gw_app) into the running one (gw_reload_cur); runs while every worker is
 * parked. */
static gw_config_t *gw_reload_cur;
static void gw_apply_settings(void *arg)
{
    const struct gw_app *fresh = arg;
    gw_config_apply_reload(gw_reload_cur, fresh->cfg);
}

/* The configuration's warnings, one log line each. */
static void gw_reload_warnings(const gw_config_msgs_t *msgs)
{
    if (msgs->warnings == NULL)
        return;
    for (const char *l = msgs->warnings, *e; *l; l = e + 1) {
        e = strchr(l, '\n');
        if (e == NULL)
            break;
        gw_warn("reload: %.*s", (int)(e - l), l);
    }
}

/* SIGHUP: loads the configuration file and everything it names again. With
 * any problem nothing changes (each problem is logged). Otherwise new
 * connections get the new TLS context (open ones keep theirs), updates are
 * verified with the new master keys, and the settings that can change
 * while running take effect; the others are reported as needing a
 * restart. */
static void gw_reload(struct gw_app *app)
{
    struct gw_app fresh;
    gw_config_msgs_t msgs;
    memset(&fresh, 0, sizeof fresh);
    memset(&msgs, 0, sizeof msgs);
    char note[96];
    struct timespec mono;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    snprintf(note, sizeof note, "RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=reloading",
             (long long)mono.tv_sec * 1000000LL + mono.tv_nsec / 1000);
    (void)gw_notify(note);
    int rc = gw_load_all(app->cfg->path, &fresh, &msgs, app->kp.pid <= 0, app->pp.pid <= 0);
    /* the publisher process checks the TSIG secrets; last, the key process
     * switches to the new keys when it could load them (nothing after this
     * can refuse the reload), then the publisher to its new zone settings */
    int checked = 0;
    if (rc == GW_OK && app->pp.pid > 0 &&
        !(checked = gw_pubproc_ask(&app->pp, "check", &msgs) == GW_OK))
        rc = GW_ECONFIG;
    if (rc == GW_OK && app->kp.pid > 0 && gw_app_keyproc_load(app, fresh.cfg, &msgs) != 0)
        rc = GW_ECONFIG;
    if (checked && gw_pubproc_ask(&app->pp, rc == GW_OK ? "apply" : "abort", &msgs) != GW_OK)
        rc = GW_ECONFIG;
    if (rc != GW_OK) {
        for (char *l = msgs.errors, *e; l != NULL && *l; l = e + 1) {
            e = strchr(l, '\n');
            if (e == NULL)
                break;
            gw_error("reload refused: %.*s", (int)(e - l), l);
        }
        gw_error("reload refused: %d problem(s); the running configuration, certificates "
                 "and keys stay in use", msgs.nerrors);
        gw_metrics_inc(GW_M_TLS_RELOAD_FAILURES);
        goto out;
    }
    gw_config_t *cur = app->cfg, *nc = fresh.cfg;
    gw_reload_cur = cur;
    char restart[1024];
    if (gw_config_restart_keys(cur, nc, restart, sizeof restart) > 0)
        gw_warn("reload: %s changed: needs a restart; the running value(s) stay in use",
                restart);

    /* Every worker switches to the new TLS context (new connections only),
     * master keys and firmware policy on its own loop; the settings read on
     * each use change while all of them are parked. The old objects are
     * freed once every worker has switched. */
    gw_policydb_apply(app->policydb, fresh.policy);
    gw_workers_reload(app->workers, fresh.ssl, fresh.keys, fresh.policy, gw_apply_settings,
                      &fresh);
    SSL_CTX_free(app->ssl);
    app->ssl = fresh.ssl;
    fresh.ssl = NULL;
    if (app->kp.pid <= 0) {
        cmn_keyset_free(app->keys);
        app->keys = fresh.keys;
        fresh.keys = NULL;
        gw_app_kids_from_keys(app);
    }
    gw_policy_free(app->policy);
    app->policy = fresh.policy;
    fresh.policy = NULL;
    gw_ops_apply_settings(app->admin);
    gw_api_apply_settings(app->api);
    gw_log_set_level(cur->log_level);
    gw_log_set_format(cur->log_format);
    gw_limit_conf_t lc;
    gw_limit_conf_from(cur, &lc);
    gw_budget_conf_t bc;
    gw_budget_conf_from(cur, &bc);
    if (gw_limit_init(&lc) != GW_OK || gw_budget_init(&bc) != GW_OK)
        gw_warn("reload: the limits could not be updated");
    gw_metrics_inc(GW_M_TLS_RELOADS);
    gw_info("reloaded %s: TLS certificate(s), %zu master key(s), firmware policy, zones, "
            "limits and the other settings a SIGHUP applies",
            cur->path, app->nkeys);
out:
    (void)gw_notify(rc == GW_OK ? "READY=1\nSTATUS=serving (reloaded)"
                                : "READY=1\nSTATUS=serving (reload refused: see the log)");
    gw_reload_warnings(&msgs);
    SSL_CTX_free(fresh.ssl);
    cmn_keyset_free(fresh.keys);
    gw_policy_free(fresh.policy);
    gw_config_free(fresh.cfg);
    gw_config_msgs_clear(&msgs);
}

static void gw_signal_cb(evutil_socket_t signo, short what, void *arg)
{
    struct gw_app *app = arg;
    (void)what;
    if (signo == SIGHUP) {
        if (app->stopping) {
            gw_info("received SIGHUP while stopping: ignored");
            return;
        }
        gw_info("received SIGHUP: reloading %s", app->cfg->path);
        gw_reload(app);
        return;
    }
    if (app->stopping) {
        gw_warn("received %s again: stopping now", signo == SIGINT ? "SIGINT" : "SIGTERM");
        gw_workers_break(app->workers);
        event_base_loopbreak(app->base);
        return;
    }
    gw_info("received %s: stopping (%zu request(s) in flight)",
            signo == SIGINT ? "SIGINT" : "SIGTERM", gw_workers_inflight(app->workers));
    gw_begin_stop(app);
}

/* Every worker stops accepting and leaves its loop once its requests in
 * flight are answered; the deadline cuts the wait short. */
static void gw_begin_stop(struct gw_app *app)
{
    app->stopping = 1;
    struct timeval tv = {app->cfg->request_timeout + 2, 0};
    app->deadline = evtimer_new(app->base, gw_deadline_cb, app);
    if (app->deadline != NULL)
        evtimer_add(app->deadline, &tv);
    (void)gw_notify("STOPPING=1\nSTATUS=stopping: draining requests in flight");
    gw_ops_set_stopping(app->admin);
    gw_workers_stop(app->workers);
}

static void gw_apply_nothing(void *arg)
{
    (void)arg;
}

/* The operator policy in the database changed (gw_policydb): the workers switch
 * to [firmware] plus the database rules. */
static void gw_policy_changed(void *arg)
{
    struct gw_app *app = arg;
    char err[256];
    if (app->stopping)
        return;
    gw_policy_t *p = gw_policy_new();
    if (p == NULL || gw_policy_load_blocked(p, app->cfg->fw_blocked_models, err,
                                            sizeof err) != GW_OK ||
        gw_policy_load_minimums(p, app->cfg->fw_minimum_versions, err, sizeof err) != GW_OK ||
        gw_policy_load_signed_only(p, app->cfg->fw_signed_only_models, err,
                                   sizeof err) != GW_OK ||
        gw_policy_load_address_required(p, app->cfg->fw_address_required_models, err,
                                        sizeof err) != GW_OK) {
        gw_error("firmware policy from the database not applied: out of memory");
        gw_policy_free(p);
        return;
    }
    size_t n = gw_policydb_apply(app->policydb, p);
    gw_workers_reload(app->workers, app->ssl, app->keys, p, gw_apply_nothing, NULL);
    gw_policy_free(app->policy);
    app->policy = p;
    gw_info("firmware policy applied: %zu rule(s), %zu of them from the database",
            gw_policy_count(p), n);
}

/* The main thread's end of a socket to the key or the publisher process:
 * only ever readable when the process ended (each answers only what it is
 * asked, and the main thread reads those answers itself). Without the key
 * process no update can be verified, without the publisher no change
 * reaches the DNS: the gateway stops. */
static void gw_child_gone(struct gw_app *app, evutil_socket_t fd, struct event *ev,
                          const char *what)
{
    char c;
    if (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
        return;
    event_del(ev);
    gw_error("the %s process ended: stopping", what);
    if (!app->stopping) {
        app->failed = 1;
        gw_begin_stop(app);
    }
}

static void gw_keyproc_gone_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_app *app = arg;
    (void)what;
    gw_child_gone(app, fd, app->kp_ev, "key");
}

static void gw_pubproc_gone_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gw_app *app = arg;
    (void)what;
    gw_child_gone(app, fd, app->pp_ev, "publisher");
}

/* Started as root: takes [gateway] user's identity (no supplementary
 * groups) once the listeners are bound and before any worker runs. The
 * key and publisher processes, forked before, keep theirs. */
static int gw_drop_privileges(const gw_config_t *cfg)
{
    if (geteuid() != 0)
        return GW_OK;
    if (cfg->user == NULL || cfg->user[0] == '\0') {
        gw_warn("running as root: set [gateway] user (or run under a service user) so that "
                "the request parsers do not");
        return GW_OK;
    }
    errno = 0;
    const struct passwd *pw = getpwnam(cfg->user);
    if (pw == NULL) {
        gw_error("[gateway] user %s: %s", cfg->user, errno ? strerror(errno) : "no such user");
        return GW_ECONFIG;
    }
    if (pw->pw_uid == 0) {
        gw_error("[gateway] user %s: is root", cfg->user);
        return GW_ECONFIG;
    }
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0 ||
        setuid(0) == 0) {
        gw_error("cannot become user %s: %s", cfg->user, strerror(errno));
        return GW_EIO;
    }
    gw_info("running as user %s (uid %u, gid %u)", cfg->user, (unsigned)pw->pw_uid,
            (unsigned)pw->pw_gid);
    return GW_OK;
}

static int gw_run(struct gw_app *app)
{
    const gw_config_t *cfg = app->cfg;
    static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};

    if (evthread_use_pthreads() != 0 || (app->base = event_base_new()) == NULL) {
        gw_error("cannot create the event loop");
        return GW_EXIT_RUNTIME;
    }
    gw_limit_conf_t lc;
    gw_limit_conf_from(cfg, &lc);
    gw_budget_conf_t bc;
    gw_budget_conf_from(cfg, &bc);
    if (gw_conn_init() != GW_OK || gw_limit_init(&lc) != GW_OK || gw_budget_init(&bc) != GW_OK ||
        gw_quiet_init((size_t)cfg->db_quiet_cache) != GW_OK) {
        gw_error("out of memory at start-up");
        return GW_EXIT_RUNTIME;
    }
    int nworkers = gw_workers_count(cfg);
    app->db = gw_db_new(app->base, cfg->db_conninfo, 1);
    app->watch_db = gw_db_new(app->base, gw_config_publisher_conninfo(cfg), 1);
    if (app->watch_db == NULL ||
        gw_db_listen(app->watch_db, GW_BUDGET_CHANNEL, gw_status_changed, app) != GW_OK) {
        gw_error("out of memory at start-up");
        return GW_EXIT_RUNTIME;
    }
    app->admin = app->db ? gw_ops_new(app->base, cfg, app->db) : NULL;
    app->api_db = gw_db_new(app->base, cfg->db_conninfo, 2);
    app->api = app->api_db ? gw_api_new(cfg, app->api_db) : NULL;
    app->policydb = app->api_db ? gw_policydb_new(app->base, app->api_db) : NULL;
    app->tally = app->api_db ? gw_tally_new(app->base, app->api_db) : NULL;
    if (app->admin == NULL || app->api == NULL || app->policydb == NULL || app->tally == NULL) {
        gw_error("out of memory at start-up");
        return GW_EXIT_RUNTIME;
    }
    if ((app->kp.pid > 0 &&
         ((app->kp_ev = event_new(app->base, app->kp.main_fd, EV_READ | EV_PERSIST,
                                  gw_keyproc_gone_cb, app)) == NULL ||
          event_add(app->kp_ev, NULL) != 0)) ||
        (app->pp.pid > 0 &&
         ((app->pp_ev = event_new(app->base, app->pp.fd, EV_READ | EV_PERSIST,
                                  gw_pubproc_gone_cb, app)) == NULL ||
          event_add(app->pp_ev, NULL) != 0))) {
        gw_error("out of memory at start-up");
        return GW_EXIT_RUNTIME;
    }
    for (int i = 0; i < 3; i++) {
        app->sig[i] = evsignal_new(app->base, sigs[i], gw_signal_cb, app);
        if (app->sig[i] == NULL || evsignal_add(app->sig[i], NULL) != 0) {
            gw_error("cannot install signal handlers");
            return GW_EXIT_RUNTIME;
        }
    }
    const gw_worker_keys_t wk = {.kp = app->kp.pid > 0 ? &app->kp : NULL,
                                 .inline_keys = app->keys};
    app->workers = gw_workers_new(app->base, nworkers, cfg, app->ssl, &wk, app->policy,
                                  gw_worker_exited, app);
    if (app->workers == NULL)
        return GW_EXIT_RUNTIME;
    for (int i = 0; i < nworkers; i++)
        if (gw_ops_add_worker(app->admin, gw_workers_db(app->workers, i),
                                gw_workers_http(app->workers, i)) != GW_OK)
            return GW_EXIT_RUNTIME;
    gw_api_set_kids(app->api, app->kids);
    gw_api_set_policydb(app->api, app->policydb);
    gw_policydb_set_cb(app->policydb, gw_policy_changed, app);
    gw_ops_set_api(app->admin, app->api);
    if (gw_ops_listen(app->admin) != GW_OK)
        return GW_EXIT_RUNTIME;
    /* every socket is bound: nothing below needs root */
    int drop = gw_drop_privileges(cfg);
    if (drop != GW_OK)
        return drop == GW_ECONFIG ? GW_EXIT_CONFIG : GW_EXIT_RUNTIME;
    gw_db_start(app->db);
    gw_db_start(app->watch_db);
    if (gw_seen_start(app->base, app->db, cfg->db_seen_interval) != GW_OK) {
        gw_error("out of memory at start-up");
        return GW_EXIT_RUNTIME;
    }
    gw_db_set_statement_timeout(app->api_db, cfg->admin_limits.statement_timeout);
    gw_db_start(app->api_db);
    gw_policydb_start(app->policydb);
    gw_tally_start(app->tally);
    if (gw_workers_start(app->workers) != GW_OK)
        return GW_EXIT_RUNTIME;
    gw_ops_set_publisher(app->admin, app->pp.health);
    (void)gw_notify("READY=1\nSTATUS=serving");
    gw_info("ddns-gateway %s running: %d worker(s), %zu master key(s), %zu zone(s), database "
            "pool of %d per worker, clock skew %d s, min change interval %d s, %zu firmware "
            "rule(s)%s", GW_VERSION, nworkers,
            app->nkeys, cfg->nzones, cfg->db_pool_size, cfg->clock_skew,
            cfg->min_change_interval, gw_policy_count(app->policy),
            app->kp.pid > 0 ? "; master keys in the key process" : "");
    if (event_base_dispatch(app->base) < 0) {
        gw_error("event loop failed");
        return GW_EXIT_RUNTIME;
    }
    return app->failed ? GW_EXIT_RUNTIME : GW_EXIT_OK;
}

/* In the key process, right after the fork: what it inherited and does
 * not need goes (the configuration, without secrets but with the
 * database's conninfo, and the socket to the publisher process). */
struct gw_keyproc_inherited {
    gw_config_t *cfg;
    int pp_fd;
};

static void gw_keyproc_child_cleanup(void *arg)
{
    struct gw_keyproc_inherited *in = arg;
    gw_config_free(in->cfg);
    if (in->pp_fd >= 0)
        close(in->pp_fd);
}

/* Forks the publisher process and, when the configuration asks for one
 * (the default), the key process, before anything else is loaded or any
 * thread runs: they inherit nothing but the configuration read without its
 * secrets. A configuration with errors starts neither: gw_load_all() then
 * reports everything, keys and TSIG secrets included. */
static int gw_children_begin(const char *path, struct gw_app *app)
{
    gw_config_msgs_t pm;
    gw_config_t *pre = NULL;
    memset(&pm, 0, sizeof pm);
    int rc = GW_OK;
    if (gw_config_load_flags(path, &pre, &pm, GW_CONFIG_SECRETS_ELSEWHERE) == GW_OK &&
        pre != NULL) {
        int keys_named = pre->keys_directory != NULL || pre->keys_pkcs11 != NULL;
        if (gw_metrics_share() != 0)
            gw_warn("the publisher's counters stay out of /metrics: %s", strerror(errno));
        rc = gw_pubproc_start(&app->pp, path);
        if (rc != GW_OK)
            gw_error("cannot start the publisher process");
        if (rc == GW_OK && pre->keys_process && keys_named) {
            struct gw_keyproc_inherited in = {pre, app->pp.fd};
            rc = gw_keyproc_start(&app->kp, gw_workers_count(pre), gw_keyproc_child_cleanup,
                                  &in);
            if (rc != GW_OK)
                gw_error("cannot start the key process");
        }
    }
    gw_config_free(pre);
    gw_config_msgs_clear(&pm);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *path = GW_DEFAULT_CONFIG;
    int check_only = 0, opt, code;
    struct gw_app app;
    gw_config_msgs_t msgs;

    memset(&app, 0, sizeof app);
    memset(&msgs, 0, sizeof msgs);
    if (argc > 1 && strcmp(argv[1], "resync") == 0)
        return gw_resync_main(argc - 1, argv + 1, GW_DEFAULT_CONFIG);
    while ((opt = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'C': check_only = 1; break;
        case 'h': gw_usage(stdout); return GW_EXIT_OK;
        case 'V': printf("ddns-gateway %s\n", GW_VERSION); return GW_EXIT_OK;
        default:
            fprintf(stderr, "Try 'ddns-gateway --help'.\n");
            return GW_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ddns-gateway: unexpected argument '%s'\nTry 'ddns-gateway --help'.\n",
                argv[optind]);
        return GW_EXIT_USAGE;
    }

    signal(SIGPIPE, SIG_IGN);
    /* Before any key is read: no core file, no ptrace or /proc/PID/mem
     * for other users; the keys themselves live in cmn_secmem. */
    if (cmn_secmem_protect_process() != 0)
        gw_warn("cannot make the process non-dumpable: %s", strerror(errno));
    /* The gateway runs no other program: nothing it could exec gains
     * privileges (setuid bits, file capabilities) either. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        gw_warn("cannot set no_new_privs: %s", strerror(errno));
    if (!check_only && gw_children_begin(path, &app) != GW_OK) {
        code = GW_EXIT_RUNTIME;
        goto out;
    }
    int rc = gw_load_all(path, &app, &msgs, app.kp.pid <= 0, app.pp.pid <= 0);
    if (app.pp.pid > 0 && gw_pubproc_started(&app.pp, &msgs) != GW_OK)
        rc = GW_ECONFIG;
    if (rc == GW_OK && app.kp.pid > 0 && gw_app_keyproc_load(&app, app.cfg, &msgs) != 0)
        rc = GW_ECONFIG;
    if (app.kp.pid <= 0)
        gw_app_kids_from_keys(&app);
    if (msgs.warnings != NULL) {
        for (char *l = msgs.warnings, *e; *l; l = e + 1) {
            e = strchr(l, '\n');
            if (check_only)
                fprintf(stderr, "warning: %.*s\n", (int)(e - l), l);
            else
                gw_warn("%.*s", (int)(e - l), l);
        }
    }
    if (rc != GW_OK) {
        fputs(msgs.errors ? msgs.errors : "configuration error\n", stderr);
        fprintf(stderr, "ddns-gateway: %s: %d problem(s) found\n", path, msgs.nerrors);
        code = GW_EXIT_CONFIG;
        goto out;
    }
    if (check_only) {
        printf("ddns-gateway: %s is valid: %zu listener(s), %zu master key(s), %zu zone(s)\n",
               path, app.cfg->listen.n, cmn_keyset_count(app.keys), app.cfg->nzones);
        code = GW_EXIT_OK;
        goto out;
    }
    gw_log_set_level(app.cfg->log_level);
    gw_log_set_format(app.cfg->log_format);
    gw_log_hook_libevent();
    code = gw_run(&app);
out:
    gw_app_free(&app);
    gw_config_msgs_clear(&msgs);
    if (code == GW_EXIT_OK && !check_only)
        gw_info("stopped");
    return code;
}
