/* ctl_main: ddnsctl, the command-line client of the admin API.
 *
 * Owns the command line (global options, one command with its options,
 * --help on every command), the mapping of each command to its API call
 * (docs/ADMIN-API.md), and the choice between tables for people and the
 * API's JSON (--json) for scripts. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ctl_cli.h"
#include "ctl_http.h"
#include "ctl_table.h"
#include "ctl_token.h"

static const char ctl_usage[] =
"NAME\n"
"    ddnsctl - command-line client of the DDNS gateway's admin API\n"
"\n"
"SYNOPSIS\n"
"    ddnsctl [GLOBAL OPTIONS] COMMAND [ARGUMENTS] [--help]\n"
"\n"
"DESCRIPTION\n"
"    Searches and inspects devices, revokes, restores, renames and republishes\n"
"    them, shows the fleet's state and sets the firmware policy, through the\n"
"    admin API on the gateway's admin listener ([admin] listen). Output is an\n"
"    aligned table for people, or with --json the API's JSON answer, one\n"
"    document on one line, for scripts. Every write is recorded by the gateway\n"
"    in its audit log with the token, the time and the client's address.\n"
"\n"
"COMMANDS\n"
"    whoami                      the token in use: id, scope, expiry\n"
"    devices [FILTERS]           search devices (alias: search)\n"
"    show DEVICE                 one device: names, addresses, history, actions\n"
"    revoke DEVICE               refuse its updates, remove its DNS records\n"
"    restore DEVICE              accept its updates again\n"
"    republish DEVICE            queue its current DNS records again\n"
"    add-name DEVICE NAME        give it one more hostname\n"
"    rename DEVICE OLD NEW       rename one of its hostnames\n"
"    ttl DEVICE SECONDS|default  set the TTL of its records\n"
"    reissue DEVICE --kid KID    a new secret generation, under key id KID\n"
"    dyndns2 DEVICE allow|deny   let it use /nic/update, or not\n"
"    fleet [--not-seen-days N]   counts, updates and errors per minute, outbox\n"
"    failing [--limit N]         devices and source addresses failing most\n"
"    policy [show]               the firmware policy\n"
"    policy set [--block MODEL]... [--signed-only MODEL]...\n"
"               [--address-required MODEL]...\n"
"               [--min MODEL=VERSION]...\n"
"                                replace the operators' firmware policy\n"
"    audit [--limit N] [--offset N] [--device DEVICE]\n"
"                                the admin audit log, newest first\n"
"    token list|create|revoke    admin tokens (also directly with --db)\n"
"\n"
"    DEVICE is a MAC in any common form (3C:5A:B4:F0:9A:21, 3c-5a-b4-f0-9a-21,\n"
"    3c5a.b4f0.9a21, 3c5ab4f09a21). 'ddnsctl COMMAND --help' describes each.\n"
"\n"
"GLOBAL OPTIONS\n"
"    -u, --url URL        the admin listener, e.g. http://127.0.0.1:9100\n"
"                         [env DDNSCTL_URL, or 'url' in the configuration file]\n"
"    -t, --token TOKEN    an admin token [env DDNSCTL_TOKEN, or 'token']; prefer\n"
"                         the environment or the file: options are visible to\n"
"                         other users in the process list\n"
"    -c, --config FILE    configuration file [env DDNSCTL_CONFIG, else\n"
"                         $XDG_CONFIG_HOME/ddnsctl.conf or ~/.config/ddnsctl.conf,\n"
"                         else /etc/ddns/ddnsctl.conf]: INI lines url = ...,\n"
"                         token = ..., timeout = SECONDS (default 30)\n"
"    -j, --json           print the API's JSON answer instead of tables\n"
"    -h, --help           this text\n"
"    -V, --version        the version\n"
"\n"
"EXIT STATUS\n"
"    0 done; 1 the API refused (the message says why: 400 bad input with the\n"
"    field, 401 token unknown, expired or revoked, 403 read token, 404 no such\n"
"    device, 409 name taken); 2 usage error; 3 no answer from the API (or\n"
"    from PostgreSQL with --db).\n"
"\n"
"EXAMPLES\n"
"    ddnsctl token create --db 'dbname=ddns' --scope write --expires 30d \\\n"
"        --comment 'ops laptop'           # the first token, straight in the DB\n"
"    export DDNSCTL_URL=http://127.0.0.1:9100 DDNSCTL_TOKEN=ddnsadm_...\n"
"    ddnsctl devices -q 3F:9A:21          # a MAC's end, a hostname, a serial\n"
"    ddnsctl show 3C:5A:B4:F0:9A:21\n"
"    ddnsctl devices --firmware 4.1.0 --status failing\n"
"    ddnsctl revoke 3C:5A:B4:F0:9A:21\n"
"    ddnsctl fleet --json | jq .per_minute\n";

static const char ctl_usage_devices[] =
"Usage: ddnsctl devices [-q TEXT] [FILTERS] [--sort KEY] [--order asc|desc]\n"
"                       [--limit N] [--offset N]\n"
"\n"
"Searches the devices (GET /api/v1/devices) and prints one line per device:\n"
"MAC, serial, model, firmware, key id, status, first name, IPv4 address, last\n"
"seen, last answer; then the number shown and the total.\n"
"\n"
"  -q, --query TEXT     one free-text box: a MAC in any form or its first or\n"
"                       last digits (3F:9A:21), a hostname or its beginning,\n"
"                       a serial or its beginning, or an IP address\n"
"      --mac MAC        a MAC, or its first or last 2 to 12 hex digits\n"
"      --serial S       a serial or its beginning\n"
"      --hostname NAME  a full name, or the beginning of a host label\n"
"      --model M        the model (any case)\n"
"      --firmware V     the firmware version last reported\n"
"      --addr IP        a current IPv4/IPv6 address or the last source address\n"
"      --kid KID        the master key id\n"
"      --batch N        the provisioning batch\n"
"      --status S       active, revoked, failing (last answer was a refusal) or\n"
"                       never (never seen)\n"
"      --seen-after T   last seen at or after T (2026-11-21, 2026-11-21T14:00Z)\n"
"      --seen-before T  last seen before T\n"
"      --sort KEY       device_id (default), mac, serial, model, firmware, kid,\n"
"                       status, batch, last_seen, first_seen, fail_count,\n"
"                       last_result\n"
"      --order O        asc (default) or desc\n"
"      --limit N        1 to 1000 [50]\n"
"      --offset N       skip N devices [0]\n";

static const char ctl_usage_show[] =
"Usage: ddnsctl show DEVICE [--history N]\n"
"\n"
"Prints one device (GET /api/v1/devices/DEVICE): MAC, serial, model, firmware,\n"
"user agent, key id, secret generation, batch, status, whether it may use\n"
"dyndns2, names, current addresses, TTL, first and last seen, last source\n"
"address and answer; then its address changes (newest\n"
"first, N of them, default 50) and the actions taken on it (admin API and\n"
"ddns-provision).\n";

static const char ctl_usage_action[] =
"Usage: ddnsctl revoke DEVICE\n"
"       ddnsctl restore DEVICE\n"
"       ddnsctl republish DEVICE\n"
"\n"
"revoke: the gateway answers the device's updates 'disabled' from now on and\n"
"its DNS records are removed (through the DNS outbox).\n"
"restore: its updates are accepted again; its records come back with its next\n"
"update.\n"
"republish: its current records are queued for the DNS server again (after a\n"
"zone was restored, for example).\n"
"Each needs a token of scope write and is recorded in the audit log.\n";

static const char ctl_usage_names[] =
"Usage: ddnsctl add-name DEVICE NAME\n"
"       ddnsctl rename DEVICE OLD NEW\n"
"\n"
"add-name gives the device another hostname; rename replaces OLD (its full\n"
"name) by NEW. A NAME is a host label (the zone of the device's first name\n"
"is used) or a full name in a zone of the gateway. A name of another device is\n"
"refused (exit 1, HTTP 409). The new name gets the device's current addresses\n"
"at once; a renamed name's old records are removed. Needs scope write.\n";

static const char ctl_usage_ttl[] =
"Usage: ddnsctl ttl DEVICE SECONDS|default\n"
"\n"
"Sets the TTL of all the device's records (1 to 86400 s, or 'default' for\n"
"the zone's default_ttl) and queues its records with the new TTL. Needs scope\n"
"write.\n";

static const char ctl_usage_reissue[] =
"Usage: ddnsctl reissue DEVICE --kid KID\n"
"\n"
"Gives the device a new secret, like 'ddns-provision reissue' without a new\n"
"name: its secret generation goes up by one and it moves to master key id KID\n"
"(which may be the one it has). From now on only a request signed with the\n"
"secret of KID and the new generation is accepted; every earlier secret and\n"
"dyndns2 password gets badauth. The gateways must have KID loaded. The new\n"
"secret is not shown: it is derived from the master key at the flashing\n"
"station ('ddns-provision show --mac DEVICE --db ...'), where the master keys\n"
"are. Needs scope write.\n";

static const char ctl_usage_dyndns2[] =
"Usage: ddnsctl dyndns2 DEVICE allow|deny\n"
"\n"
"deny: the gateway answers the device's dyndns2 updates (GET /nic/update)\n"
"'badauth' from now on, as for a wrong password, for a device that only\n"
"speaks the signed protocol; its signed updates are not affected. allow: they\n"
"are accepted again (POST /api/v1/devices/DEVICE/dyndns2). Needs scope write.\n";

static const char ctl_usage_fleet[] =
"Usage: ddnsctl fleet [--not-seen-days N]\n"
"       ddnsctl failing [--limit N]\n"
"\n"
"fleet: the number of devices by status, model, firmware and key id; the\n"
"devices not seen for N days (default 7); the DNS outbox depth and the age of\n"
"its oldest change; update answers and errors per minute over the last 60\n"
"minutes, summed over every gateway.\n"
"failing: the devices whose recent answers were refusals (most first, N of\n"
"them, default 20) and the source addresses failing most: failed\n"
"authentications from there in the last hour (all gateways), and failing\n"
"devices last seen there.\n";

static const char ctl_usage_policy[] =
"Usage: ddnsctl policy [show]\n"
"       ddnsctl policy set [--block MODEL]... [--signed-only MODEL]...\n"
"                          [--address-required MODEL]... [--min MODEL=VERSION]...\n"
"                          [--clear]\n"
"\n"
"show: the firmware policy set by operators (stored in the database) and the\n"
"rules of the gateway's [firmware] section. Every gateway enforces both: a\n"
"model blocked in either is refused (badagent); a minimum set here replaces the\n"
"configured one of the same model. Gateways pick a change up within 5 s.\n"
"set: replaces the operators' policy by the rules given (--clear, or no rule:\n"
"none). Needs scope write.\n"
"  --block MODEL        refuse every device of MODEL (repeatable)\n"
"  --signed-only MODEL  refuse MODEL's dyndns2 updates (/nic/update): it speaks\n"
"                       the signed protocol only (repeatable)\n"
"  --address-required MODEL\n"
"                       MODEL's signed updates must name their address: one\n"
"                       that names none is answered \"409 moved ADDR\" and SDK\n"
"                       3.3 signs ADDR again at once; switch a model on once its\n"
"                       fleet runs SDK 3.3 or later (repeatable)\n"
"  --min MODEL=VERSION  refuse firmware of MODEL older than VERSION (repeatable)\n";

static const char ctl_usage_audit[] =
"Usage: ddnsctl audit [--limit N] [--offset N] [--device DEVICE]\n"
"\n"
"The admin audit log, newest first: time, token and its comment, action,\n"
"device, client address and details of each write (default 50 entries).\n";


static const ctl_col_t ctl_dev_cols[] = {
    {"MAC", "mac"}, {"SERIAL", "serial"}, {"MODEL", "model"}, {"FIRMWARE", "firmware"},
    {"KID", "kid"}, {"STATUS", "status"}, {"NAMES", "names"}, {"IPV4", "ipv4"},
    {"LAST SEEN", "last_seen"}, {"RESULT", "last_result"},
};

static int ctl_cmd_devices(int argc, char **argv)
{
    CTL_CLI_OPTS({"query", NULL, {0}, 0, 0}, {"mac", NULL, {0}, 0, 0}, {"serial", NULL, {0}, 0, 0},
             {"hostname", NULL, {0}, 0, 0}, {"model", NULL, {0}, 0, 0},
             {"firmware", NULL, {0}, 0, 0}, {"addr", NULL, {0}, 0, 0},
             {"kid", NULL, {0}, 0, 0}, {"batch", NULL, {0}, 0, 0}, {"status", NULL, {0}, 0, 0},
             {"seen-after", NULL, {0}, 0, 0}, {"seen-before", NULL, {0}, 0, 0},
             {"sort", NULL, {0}, 0, 0}, {"order", NULL, {0}, 0, 0}, {"limit", NULL, {0}, 0, 0},
             {"offset", NULL, {0}, 0, 0});
    static const char *const keys[] = {"q", "mac", "serial", "hostname", "model", "firmware",
                                       "addr", "kid", "batch", "status", "seen_after",
                                       "seen_before", "sort", "order", "limit", "offset"};
    char *ops[1];
    int nops;
    int rc = ctl_cli_opts(argc, argv, o, no, ctl_usage_devices, ops, &nops, 1);
    if (rc < 0)
        return rc == -2 ? 0 : CTL_EXIT_USAGE;
    if (nops == 1 && o[0].val == NULL)
        o[0].val = ops[0];      /* 'ddnsctl devices 3F:9A:21' */
    char path[4096] = "/api/v1/devices", esc[1024];
    size_t pl = strlen(path);
    for (int i = 0; i < no; i++)
        if (o[i].val != NULL) {
            ctl_http_escape(o[i].val, esc, sizeof esc);
            pl += (size_t)snprintf(path + pl, sizeof path - pl, "%c%s=%s",
                                   strchr(path, '?') ? '&' : '?', keys[i], esc);
            if (pl >= sizeof path) {
                fprintf(stderr, "ddnsctl devices: the filters are too long\n");
                return CTL_EXIT_USAGE;
            }
        }
    json_t *j;
    if ((rc = ctl_cli_call("GET", path, NULL, &j)) != 0)
        return rc;
    if (ctl_cli_json) {
        ctl_cli_print_json(j);
    } else {
        json_t *d = json_object_get(j, "devices");
        ctl_table_print(d, ctl_dev_cols, (int)(sizeof ctl_dev_cols / sizeof ctl_dev_cols[0]));
        printf("(%zu shown of %" JSON_INTEGER_FORMAT ")\n", json_array_size(d),
               json_integer_value(json_object_get(j, "total")));
    }
    json_decref(j);
    return 0;
}

/* The DEVICE operand, percent-encoded into out; -1 with usage printed. */
static int ctl_device_path(const char *cmd, int nops, char **ops, const char *usage, char *out,
                           size_t outlen)
{
    if (nops < 1) {
        fprintf(stderr, "ddnsctl %s: the DEVICE (a MAC) is required\n\n%s", cmd, usage);
        return -1;
    }
    char esc[256];
    ctl_http_escape(ops[0], esc, sizeof esc);
    snprintf(out, outlen, "/api/v1/devices/%s", esc);
    return 0;
}

/* The options (o, no) and the one DEVICE operand of a device command, the
 * device's API path into path. Returns 0, -1 after printing --help, or the
 * exit code after printing why. */
static int ctl_device_args(int argc, char **argv, ctl_cli_opt_t *o, int no, const char *usage,
                           char *path, size_t pathlen)
{
    char *ops[1];
    int nops, rc = ctl_cli_opts(argc, argv, o, no, usage, ops, &nops, 1);
    if (rc < 0)
        return rc == -2 ? -1 : CTL_EXIT_USAGE;
    if (ctl_device_path(argv[0], nops, ops, usage, path, pathlen) != 0)
        return CTL_EXIT_USAGE;
    return 0;
}

static int ctl_cmd_show(int argc, char **argv)
{
    CTL_CLI_OPTS({"history", NULL, {0}, 0, 0});
    char path[512];
    int rc = ctl_device_args(argc, argv, o, no, ctl_usage_show, path, sizeof path);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (o[0].val != NULL) {
        char esc[64];
        ctl_http_escape(o[0].val, esc, sizeof esc);
        snprintf(path + strlen(path), sizeof path - strlen(path), "?history=%s", esc);
    }
    json_t *j;
    if ((rc = ctl_cli_call("GET", path, NULL, &j)) != 0)
        return rc;
    if (ctl_cli_json) {
        ctl_cli_print_json(j);
    } else {
        static const ctl_col_t f[] = {
            {"mac", "mac"}, {"device id", "device_id"}, {"serial", "serial"},
            {"model", "model"}, {"firmware", "firmware"}, {"user agent", "user_agent"},
            {"key id", "kid"}, {"generation", "generation"}, {"batch", "batch"},
            {"status", "status"}, {"dyndns2", "dyndns2"}, {"names", "names"},
            {"ipv4", "ipv4"}, {"ipv6", "ipv6"}, {"ttl", "ttl"}, {"first seen", "first_seen"},
            {"last seen", "last_seen"}, {"last source", "last_source"},
            {"last result", "last_result"}, {"result at", "last_result_at"},
            {"failures", "fail_count"},
        };
        static const ctl_col_t h[] = {{"AT", "at"}, {"NAME", "fqdn"}, {"IPV4", "ipv4"},
                                      {"IPV6", "ipv6"}, {"SOURCE", "source"}};
        static const ctl_col_t a[] = {{"AT", "at"}, {"ACTOR", "actor"}, {"ACTION", "action"},
                                      {"SOURCE", "source"}, {"DETAIL", "detail"}};
        ctl_table_fields(j, f, (int)(sizeof f / sizeof f[0]));
        printf("\naddress history (newest first):\n");
        ctl_table_print(json_object_get(j, "history"), h, 5);
        printf("\nactions (newest first):\n");
        ctl_table_print(json_object_get(j, "actions"), a, 5);
    }
    json_decref(j);
    return 0;
}

static int ctl_cmd_action(int argc, char **argv)
{
    char path[512];
    int rc = ctl_device_args(argc, argv, NULL, 0, ctl_usage_action, path, sizeof path);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    snprintf(path + strlen(path), sizeof path - strlen(path), "/%s", argv[0]);
    return ctl_cli_call_print("POST", path, NULL);
}

static int ctl_cmd_names(int argc, char **argv)
{
    int rename = strcmp(argv[0], "rename") == 0;
    char *ops[3], path[1024], esc[600];
    int nops, rc = ctl_cli_opts(argc, argv, NULL, 0, ctl_usage_names, ops, &nops, 3);
    if (rc < 0)
        return rc == -2 ? 0 : CTL_EXIT_USAGE;
    if (nops != (rename ? 3 : 2)) {
        fprintf(stderr, "ddnsctl %s: %s\n\n%s", argv[0],
                rename ? "DEVICE, OLD and NEW are required" : "DEVICE and NAME are required",
                ctl_usage_names);
        return CTL_EXIT_USAGE;
    }
    ctl_device_path(argv[0], nops, ops, ctl_usage_names, path, sizeof path);
    if (rename) {
        ctl_http_escape(ops[1], esc, sizeof esc);
        snprintf(path + strlen(path), sizeof path - strlen(path), "/names/%s", esc);
    } else {
        snprintf(path + strlen(path), sizeof path - strlen(path), "/names");
    }
    return ctl_cli_call_print(rename ? "PUT" : "POST", path,
                              json_pack("{s:s}", "name", ops[rename ? 2 : 1]));
}

static int ctl_cmd_ttl(int argc, char **argv)
{
    char *ops[2], path[512], *end;
    int nops, rc = ctl_cli_opts(argc, argv, NULL, 0, ctl_usage_ttl, ops, &nops, 2);
    if (rc < 0)
        return rc == -2 ? 0 : CTL_EXIT_USAGE;
    if (nops != 2) {
        fprintf(stderr, "ddnsctl ttl: DEVICE and SECONDS (or 'default') are required\n\n%s",
                ctl_usage_ttl);
        return CTL_EXIT_USAGE;
    }
    json_t *body;
    if (strcmp(ops[1], "default") == 0) {
        body = json_pack("{s:n}", "ttl");
    } else {
        long t = strtol(ops[1], &end, 10);
        if (*end != '\0' || end == ops[1]) {
            fprintf(stderr, "ddnsctl ttl: '%s': a number of seconds or 'default'\n", ops[1]);
            return CTL_EXIT_USAGE;
        }
        body = json_pack("{s:I}", "ttl", (json_int_t)t);
    }
    ctl_device_path("ttl", nops, ops, ctl_usage_ttl, path, sizeof path);
    strcat(path, "/ttl");
    return ctl_cli_call_print("PUT", path, body);
}

static int ctl_cmd_reissue(int argc, char **argv)
{
    CTL_CLI_OPTS({"kid", NULL, {0}, 0, 0});
    char path[512];
    int rc = ctl_device_args(argc, argv, o, no, ctl_usage_reissue, path, sizeof path);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (o[0].val == NULL) {
        fprintf(stderr, "ddnsctl reissue: --kid KID is required\n");
        return CTL_EXIT_USAGE;
    }
    strcat(path, "/reissue");
    return ctl_cli_call_print("POST", path, json_pack("{s:s}", "kid", o[0].val));
}

static int ctl_cmd_dyndns2(int argc, char **argv)
{
    char *ops[2], path[512];
    int nops, rc = ctl_cli_opts(argc, argv, NULL, 0, ctl_usage_dyndns2, ops, &nops, 2);
    if (rc < 0)
        return rc == -2 ? 0 : CTL_EXIT_USAGE;
    if (nops != 2 || (strcmp(ops[1], "allow") != 0 && strcmp(ops[1], "deny") != 0)) {
        fprintf(stderr, "ddnsctl dyndns2: DEVICE and allow or deny are required\n\n%s",
                ctl_usage_dyndns2);
        return CTL_EXIT_USAGE;
    }
    ctl_device_path("dyndns2", nops, ops, ctl_usage_dyndns2, path, sizeof path);
    strcat(path, "/dyndns2");
    return ctl_cli_call_print("POST", path,
                              json_pack("{s:b}", "allowed", strcmp(ops[1], "allow") == 0));
}

/* {"a": 3, "b": 1} as "  a  3" lines, largest first. */
static void ctl_print_counts(const char *title, const json_t *obj)
{
    const char *k;
    json_t *v;
    size_t w = 0, n = json_object_size(obj), i = 0;
    printf("%s:\n", title);
    if (n == 0) {
        printf("  -\n");
        return;
    }
    const char **keys = calloc(n, sizeof *keys);
    if (keys == NULL)
        return;
    json_object_foreach((json_t *)obj, k, v) {
        keys[i++] = k;
        if (strlen(k) > w)
            w = strlen(k);
    }
    /* largest count first */
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++)
            if (json_integer_value(json_object_get(obj, keys[b])) >
                json_integer_value(json_object_get(obj, keys[a]))) {
                const char *t = keys[a];
                keys[a] = keys[b];
                keys[b] = t;
            }
    for (i = 0; i < n; i++)
        printf("  %-*s  %" JSON_INTEGER_FORMAT "\n", (int)w, keys[i][0] ? keys[i] : "(none)",
               json_integer_value(json_object_get(obj, keys[i])));
    free(keys);
}

/* A command that is one GET of base, with ?key=VALUE when its one option
 * (--opt VALUE) is given. Returns an exit code; on 0, *j is the answer to
 * print as a table, or NULL when nothing is left to do (--help, or --json
 * printed it). */
static int ctl_get_with_option(int argc, char **argv, const char *opt, const char *base,
                               const char *key, json_t **j)
{
    CTL_CLI_OPTS({opt, NULL, {0}, 0, 0});
    char *ops[1], path[256], esc[64];
    int nops, rc = ctl_cli_opts(argc, argv, o, no, ctl_usage_fleet, ops, &nops, 0);
    *j = NULL;
    if (rc < 0)
        return rc == -2 ? 0 : CTL_EXIT_USAGE;
    if (o[0].val == NULL) {
        snprintf(path, sizeof path, "%s", base);
    } else {
        ctl_http_escape(o[0].val, esc, sizeof esc);
        snprintf(path, sizeof path, "%s?%s=%s", base, key, esc);
    }
    if ((rc = ctl_cli_call("GET", path, NULL, j)) != 0)
        return rc;
    if (ctl_cli_json) {
        ctl_cli_print_json(*j);
        json_decref(*j);
        *j = NULL;
    }
    return 0;
}

static int ctl_cmd_fleet(int argc, char **argv)
{
    json_t *j;
    int rc = ctl_get_with_option(argc, argv, "not-seen-days", "/api/v1/fleet", "not_seen_days",
                                 &j);
    if (rc != 0 || j == NULL)
        return rc;
    json_t *ob = json_object_get(j, "outbox"), *ns = json_object_get(j, "not_seen");
    printf("devices: %" JSON_INTEGER_FORMAT "\n", json_integer_value(json_object_get(j, "devices")));
    ctl_print_counts("by status", json_object_get(j, "by_status"));
    ctl_print_counts("by model", json_object_get(j, "by_model"));
    ctl_print_counts("by firmware", json_object_get(j, "by_firmware"));
    ctl_print_counts("by key id", json_object_get(j, "by_kid"));
    printf("not seen for %" JSON_INTEGER_FORMAT " days: %" JSON_INTEGER_FORMAT "\n",
           json_integer_value(json_object_get(ns, "days")),
           json_integer_value(json_object_get(ns, "count")));
    printf("outbox: %" JSON_INTEGER_FORMAT " change(s) waiting, oldest %.1f s\n",
           json_integer_value(json_object_get(ob, "depth")),
           json_number_value(json_object_get(ob, "oldest_age_s")));
    /* the last 60 minutes: one line per minute that had answers */
    json_t *pm = json_object_get(j, "per_minute"), *m;
    size_t i;
    json_int_t tu = 0, te = 0;
    json_array_foreach(pm, i, m) {
        tu += json_integer_value(json_object_get(m, "updates"));
        te += json_integer_value(json_object_get(m, "errors"));
    }
    printf("updates in the last 60 minutes: %" JSON_INTEGER_FORMAT " (errors %"
           JSON_INTEGER_FORMAT ")\n", tu, te);
    if (tu > 0) {
        printf("  %-16s  %8s  %8s\n", "MINUTE", "UPDATES", "ERRORS");
        json_array_foreach(pm, i, m) {
            json_int_t u = json_integer_value(json_object_get(m, "updates"));
            if (u == 0)
                continue;
            char t[64];
            ctl_table_text(json_object_get(m, "minute"), t, sizeof t);
            printf("  %-16.16s  %8" JSON_INTEGER_FORMAT "  %8" JSON_INTEGER_FORMAT "\n", t, u,
                   json_integer_value(json_object_get(m, "errors")));
        }
    }
    json_decref(j);
    return 0;
}

static int ctl_cmd_failing(int argc, char **argv)
{
    json_t *j;
    int rc = ctl_get_with_option(argc, argv, "limit", "/api/v1/fleet/failing", "limit", &j);
    if (rc != 0 || j == NULL)
        return rc;
    static const ctl_col_t d[] = {{"MAC", "mac"}, {"MODEL", "model"},
                                  {"FIRMWARE", "firmware"}, {"STATUS", "status"},
                                  {"FAILURES", "fail_count"}, {"RESULT", "last_result"},
                                  {"AT", "last_result_at"}, {"SOURCE", "last_source"}};
    static const ctl_col_t s[] = {{"SOURCE", "source"}, {"AUTH FAILURES", "auth_failures"},
                                  {"FAILING DEVICES", "devices"}, {"FAILURES", "failures"}};
    printf("failing devices:\n");
    ctl_table_print(json_object_get(j, "devices"), d, 8);
    printf("\nsource addresses failing most (authentications in the last hour, "
           "failing devices):\n");
    ctl_table_print(json_object_get(j, "sources"), s, 4);
    json_decref(j);
    return 0;
}

static int ctl_cmd_policy(int argc, char **argv)
{
    CTL_CLI_OPTS({"block", NULL, {0}, 0, 0}, {"min", NULL, {0}, 0, 0}, {"clear", NULL, {0}, 0, 1},
                 {"signed-only", NULL, {0}, 0, 0}, {"address-required", NULL, {0}, 0, 0});
    char *ops[1];
    int nops, rc = ctl_cli_opts(argc, argv, o, no, ctl_usage_policy, ops, &nops, 1);
    if (rc < 0)
        return rc == -2 ? 0 : CTL_EXIT_USAGE;
    int set = nops == 1 && strcmp(ops[0], "set") == 0;
    if (nops == 1 && !set && strcmp(ops[0], "show") != 0) {
        fprintf(stderr, "ddnsctl policy: '%s': show or set\n", ops[0]);
        return CTL_EXIT_USAGE;
    }
    if (!set && (o[0].nmulti || o[1].nmulti || o[2].val || o[3].nmulti || o[4].nmulti)) {
        fprintf(stderr, "ddnsctl policy: --block, --signed-only, --address-required, --min and "
                "--clear belong to 'policy set'\n");
        return CTL_EXIT_USAGE;
    }
    json_t *j;
    if (set) {
        json_t *blocked = json_array(), *min = json_object(), *signed_only = json_array(),
               *address_required = json_array();
        for (int i = 0; i < o[0].nmulti; i++)
            json_array_append_new(blocked, json_string(o[0].multi[i]));
        for (int i = 0; i < o[3].nmulti; i++)
            json_array_append_new(signed_only, json_string(o[3].multi[i]));
        for (int i = 0; i < o[4].nmulti; i++)
            json_array_append_new(address_required, json_string(o[4].multi[i]));
        for (int i = 0; i < o[1].nmulti; i++) {
            const char *eq = strchr(o[1].multi[i], '=');
            if (eq == NULL || eq == o[1].multi[i] || eq[1] == '\0') {
                fprintf(stderr, "ddnsctl policy set: --min '%s': MODEL=VERSION\n",
                        o[1].multi[i]);
                json_decref(blocked);
                json_decref(min);
                json_decref(signed_only);
                json_decref(address_required);
                return CTL_EXIT_USAGE;
            }
            char model[128];
            snprintf(model, sizeof model, "%.*s", (int)(eq - o[1].multi[i]), o[1].multi[i]);
            json_object_set_new(min, model, json_string(eq + 1));
        }
        json_t *body = json_pack("{s:o,s:o,s:o,s:o}", "blocked_models", blocked, "min_firmware",
                                 min, "signed_only_models", signed_only,
                                 "address_required_models", address_required);
        rc = ctl_cli_call("PUT", "/api/v1/policy", body, &j);
    } else {
        rc = ctl_cli_call("GET", "/api/v1/policy", NULL, &j);
    }
    if (rc != 0)
        return rc;
    if (ctl_cli_json) {
        ctl_cli_print_json(j);
    } else {
        char text[1024];
        ctl_table_text(json_object_get(j, "blocked_models"), text, sizeof text);
        printf("blocked models (database): %s\n", text);
        ctl_table_text(json_object_get(j, "signed_only_models"), text, sizeof text);
        printf("signed-only models, refused on /nic/update (database): %s\n", text);
        ctl_table_text(json_object_get(j, "address_required_models"), text, sizeof text);
        printf("address-required models, address-less updates answered moved (database): %s\n",
               text);
        printf("minimum firmware (database):");
        const char *k;
        json_t *v;
        if (json_object_size(json_object_get(j, "min_firmware")) == 0)
            printf(" -");
        json_object_foreach(json_object_get(j, "min_firmware"), k, v)
            printf(" %s>=%s", k, json_string_value(v));
        printf("\npolicy version: %" JSON_INTEGER_FORMAT "\n",
               json_integer_value(json_object_get(j, "version")));
        json_t *cfg = json_object_get(j, "config");
        if (cfg != NULL) {
            const char *b = json_string_value(json_object_get(cfg, "blocked_models"));
            const char *m = json_string_value(json_object_get(cfg, "minimum_versions"));
            printf("blocked models ([firmware] of this gateway): %s\n", b && *b ? b : "-");
            printf("minimum versions ([firmware] of this gateway): %s\n", m && *m ? m : "-");
            const char *so = json_string_value(json_object_get(cfg, "signed_only_models"));
            printf("signed-only models ([firmware] of this gateway): %s\n",
                   so && *so ? so : "-");
            const char *ar = json_string_value(json_object_get(cfg, "address_required_models"));
            printf("address-required models ([firmware] of this gateway): %s\n",
                   ar && *ar ? ar : "-");
        }
    }
    json_decref(j);
    return 0;
}

static int ctl_cmd_audit(int argc, char **argv)
{
    CTL_CLI_OPTS({"limit", NULL, {0}, 0, 0}, {"offset", NULL, {0}, 0, 0},
             {"device", NULL, {0}, 0, 0});
    static const char *const keys[] = {"limit", "offset", "device"};
    char *ops[1], path[512] = "/api/v1/audit", esc[128];
    int nops, rc = ctl_cli_opts(argc, argv, o, no, ctl_usage_audit, ops, &nops, 0);
    if (rc < 0)
        return rc == -2 ? 0 : CTL_EXIT_USAGE;
    for (int i = 0; i < no; i++)
        if (o[i].val != NULL) {
            ctl_http_escape(o[i].val, esc, sizeof esc);
            snprintf(path + strlen(path), sizeof path - strlen(path), "%c%s=%s",
                     strchr(path, '?') ? '&' : '?', keys[i], esc);
        }
    json_t *j;
    if ((rc = ctl_cli_call("GET", path, NULL, &j)) != 0)
        return rc;
    if (ctl_cli_json) {
        ctl_cli_print_json(j);
    } else {
        static const ctl_col_t c[] = {{"ID", "id"}, {"AT", "at"}, {"ACTOR", "actor"},
                                      {"ACTION", "action"}, {"DEVICE", "device_id"},
                                      {"SOURCE", "source"}, {"DETAIL", "detail"}};
        ctl_table_print(json_object_get(j, "entries"), c, 7);
        printf("(%zu shown of %" JSON_INTEGER_FORMAT ")\n",
               json_array_size(json_object_get(j, "entries")),
               json_integer_value(json_object_get(j, "total")));
    }
    json_decref(j);
    return 0;
}

static int ctl_cmd_whoami(int argc, char **argv)
{
    char *ops[1];
    int nops, rc = ctl_cli_opts(argc, argv, NULL, 0,
                                "Usage: ddnsctl whoami\n\nThe token in use: its id, scope, "
                                "comment and expiry (GET /api/v1/whoami).\n", ops, &nops, 0);
    if (rc < 0)
        return rc == -2 ? 0 : CTL_EXIT_USAGE;
    return ctl_cli_call_print("GET", "/api/v1/whoami", NULL);
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
} ctl_cmds[] = {
    {"whoami", ctl_cmd_whoami}, {"devices", ctl_cmd_devices}, {"search", ctl_cmd_devices},
    {"show", ctl_cmd_show}, {"revoke", ctl_cmd_action}, {"restore", ctl_cmd_action},
    {"republish", ctl_cmd_action}, {"add-name", ctl_cmd_names}, {"rename", ctl_cmd_names},
    {"ttl", ctl_cmd_ttl}, {"reissue", ctl_cmd_reissue}, {"dyndns2", ctl_cmd_dyndns2},
    {"fleet", ctl_cmd_fleet},
    {"failing", ctl_cmd_failing}, {"policy", ctl_cmd_policy}, {"audit", ctl_cmd_audit},
    {"token", ctl_cmd_token},
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'}, {"token", required_argument, NULL, 't'},
        {"config", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL, *token = NULL, *config = NULL;
    char err[1024];
    int c;
    /* global options stop at the command */
    while ((c = getopt_long(argc, argv, "+u:t:c:jhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'u': url = optarg; break;
        case 't': token = optarg; break;
        case 'c': config = optarg; break;
        case 'j': ctl_cli_json = 1; break;
        case 'h': fputs(ctl_usage, stdout); return 0;
        case 'V': printf("ddnsctl %s\n", CTL_VERSION); return 0;
        default: fprintf(stderr, "ddnsctl: see 'ddnsctl --help'\n"); return CTL_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs(ctl_usage, stderr);
        return CTL_EXIT_USAGE;
    }
    /* --json may also follow the command */
    int nargc = 0;
    char **nargv = calloc((size_t)(argc - optind + 1), sizeof *nargv);
    if (nargv == NULL)
        return CTL_EXIT_CONNECT;
    for (int i = optind; i < argc; i++) {
        if (i > optind && (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0))
            ctl_cli_json = 1;
        else
            nargv[nargc++] = argv[i];
    }
    if (ctl_conf_load(&ctl_cli_conf, config, url, token, err, sizeof err) != 0) {
        fprintf(stderr, "ddnsctl: %s\n", err);
        free(nargv);
        return CTL_EXIT_USAGE;
    }
    int rc = -1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++)
        if (strcmp(nargv[0], ctl_cmds[i].name) == 0) {
            rc = ctl_cmds[i].fn(nargc, nargv);
            break;
        }
    if (rc == -1) {
        fprintf(stderr, "ddnsctl: unknown command '%s' (see 'ddnsctl --help')\n", nargv[0]);
        rc = CTL_EXIT_USAGE;
    }
    curl_global_cleanup();
    memset(&ctl_cli_conf, 0, sizeof ctl_cli_conf);
    free(nargv);
    return rc;
}
