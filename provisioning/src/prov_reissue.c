/* prov_reissue: the reissue command (see prov_reissue.h). */
#include "prov_reissue.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmn_key.h"
#include "cmn_mac.h"
#include "prov_cli.h"
#include "prov_cred.h"
#include "prov_db.h"

static const char prov_usage_reissue[] =
"Usage: ddns-provision reissue [--mac] MAC --operator NAME [--kid KID]\n"
"                              [--new-name | --name LABEL] [OPTIONS]\n"
"\n"
"Gives a registered device a new secret, for a refurbished or resold device\n"
"whose old secret must stop working, and prints its new credentials as one\n"
"JSON line on standard output, exactly as 'issue' does:\n"
"  {\"device_id\":\"3c5ab4f09a21\",\"kid\":\"k2/4\",\"generation\":4,\"secret\":\"...\",\n"
"   \"password\":\"k2/4....\",\"fqdn\":\"...\",\"serial\":\"...\",\"model\":\"...\"}\n"
"Every run raises the device's secret generation by one and moves it to the\n"
"master key id KID (which may be the one it has). The gateway accepts an\n"
"update only under the key id and generation recorded for the device, so\n"
"from the commit on a request signed with any earlier secret, and the\n"
"dyndns2 password of any earlier generation, is answered 'badauth', and the\n"
"new credentials are accepted. No secret the device had comes back, also\n"
"when it returns to an earlier key id. The gateways must have KID loaded:\n"
"after 'keygen', restart them before reissuing devices to the new key id.\n"
"\n"
"With --new-name the device also gets a new random hostname label (the\n"
"generator of 'issue', unique in its zone), so that a previous owner cannot\n"
"keep following it: in the same transaction the old name's DNS records are\n"
"deleted and the new name is published with the device's current addresses\n"
"through the gateway's DNS outbox. --name LABEL gives a chosen label instead.\n"
"The device keeps its status (a revoked device stays revoked, and says so),\n"
"serial, model, addresses and replay counter. Every run is recorded in the\n"
"audit table provision_batches (command 'reissue', operator, old and new key\n"
"id, generation and name; never the secret).\n"
"\n"
"  -m, --mac MAC       the device's MAC in any accepted form (or as the only\n"
"                      argument)\n"
"      --kid KID       the key id to move the device to [default: the newest\n"
"                      key in the key directory, which is then named]; an\n"
"                      unknown or retired key id is refused\n"
"      --new-name      a new random hostname label in the same zone\n"
"  -n, --name LABEL    the new hostname label (a name of another device is\n"
"                      refused)\n"
"      --operator NAME who reissues it, recorded in the audit row: 1 to 64\n"
"                      printable ASCII characters [env DDNS_OPERATOR; required]\n"
"      --label-prefix P  prefix of random labels [default: d]\n"
"  -d, --db CONNINFO   PostgreSQL connection string [env DDNS_DB, else PG*]\n"
"  -k, --key-dir DIR   master key directory [env DDNS_KEY_DIR, default ./keys]\n"
PROV_USAGE_PKCS11
"  -h, --help          this text\n"
"\n"
"Exit status: 0 reissued; 1 refused (device not registered, name taken, the\n"
"last generation reached, database error; nothing changed); 2 usage error,\n"
"bad MAC, unknown or retired key id, key file error.\n";

/* Picks the key: kid, or the newest. Refuses an unknown or retired key id
 * with the reason. Returns the key set or NULL. */
static cmn_keyset_t *prov_reissue_key(const prov_keysrc_t *src, const char *kid,
                                      const cmn_master_key_t **key)
{
    char retired[4096], where[128];
    struct stat st;
    const char *dir = src->dir;
    cmn_keyset_t *ks = prov_keysrc_load("reissue", src);
    if (ks == NULL)
        return NULL;
    prov_keysrc_name(src, ks, where, sizeof where);
    if (kid == NULL) {
        *key = cmn_keyset_newest(ks);
        if (*key != NULL) {
            fprintf(stderr, "ddns-provision reissue: no --kid given: using the newest key id "
                    "'%s'\n", (*key)->kid);
            return ks;
        }
        fprintf(stderr, "ddns-provision reissue: no master key in %s (run 'ddns-provision "
                "keygen')\n", where);
    } else {
        *key = cmn_keyset_find(ks, kid, strlen(kid));
        if (*key != NULL)
            return ks;
        if (dir != NULL)
            snprintf(retired, sizeof retired, "%s/retired/%s.key", dir, kid);
        if (dir != NULL && stat(retired, &st) == 0)
            fprintf(stderr, "ddns-provision reissue: key id '%s' is retired (%s): the gateway "
                    "does not load it, so the device could not authenticate; choose a current "
                    "key id ('ddns-provision keys list')\n", kid, retired);
        else
            fprintf(stderr, "ddns-provision reissue: no key with id '%s' in %s "
                    "('ddns-provision keys list' shows the key ids)\n", kid, where);
    }
    cmn_keyset_free(ks);
    return NULL;
}

/* The options of reissue, checked. */
typedef struct prov_reissue_opts {
    const char *mac, *kid, *name, *operator_name, *prefix, *db_info;
    prov_keysrc_t keys;
    int new_name;
    char id[CMN_DEVICE_ID_LEN + 1];  /* the device id of mac */
    char label[PROV_LABEL_MAX + 1];  /* --name, checked */
} prov_reissue_opts_t;

/* Parses and checks the command line into o. Returns 0, -1 after printing
 * --help, or an exit code after printing why. */
static int prov_reissue_args(int argc, char **argv, prov_reissue_opts_t *o)
{
    static const struct option opts[] = {
        {"mac", required_argument, NULL, 'm'},
        {"kid", required_argument, NULL, 'i'},
        {"new-name", no_argument, NULL, 'N'},
        {"name", required_argument, NULL, 'n'},
        {"operator", required_argument, NULL, 'O'},
        {"label-prefix", required_argument, NULL, 'p'},
        {"db", required_argument, NULL, 'd'},
        {"key-dir", required_argument, NULL, 'k'},
        {"pkcs11", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char err[1024], probe[PROV_LABEL_MAX + 1];
    int c;

    memset(o, 0, sizeof *o);
    o->prefix = "d";
    o->db_info = prov_env("DDNS_DB", NULL);
    prov_keysrc_init(&o->keys);
    while ((c = getopt_long(argc, argv, "m:n:d:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->mac = optarg; break;
        case 'i': o->kid = optarg; break;
        case 'N': o->new_name = 1; break;
        case 'n': o->name = optarg; break;
        case 'O': o->operator_name = optarg; break;
        case 'p': o->prefix = optarg; break;
        case 'd': o->db_info = optarg; break;
        case 'k': prov_keysrc_opt_dir(&o->keys, optarg); break;
        case 'T': prov_keysrc_opt_uri(&o->keys, optarg); break;
        case 'h': fputs(prov_usage_reissue, stdout); return -1;
        default: fputs(prov_usage_reissue, stderr); return PROV_EXIT_USAGE;
        }
    }
    if (o->mac == NULL && optind < argc)
        o->mac = argv[optind++];
    if (optind != argc) {
        fprintf(stderr, "ddns-provision reissue: unexpected argument '%s'\n", argv[optind]);
        return PROV_EXIT_USAGE;
    }
    if (o->mac == NULL) {
        fprintf(stderr, "ddns-provision reissue: the device's MAC is required (see --help)\n");
        return PROV_EXIT_USAGE;
    }
    if (!prov_mac_ok("reissue", o->mac, o->id) || prov_keysrc_resolve("reissue", &o->keys) != 0)
        return PROV_EXIT_USAGE;
    o->operator_name = prov_operator("reissue", o->operator_name);
    if (o->operator_name == NULL || !prov_kid_ok("reissue", o->kid))
        return PROV_EXIT_USAGE;
    if (o->new_name && o->name != NULL) {
        fprintf(stderr, "ddns-provision reissue: --new-name and --name exclude each other\n");
        return PROV_EXIT_USAGE;
    }
    if (o->name != NULL && prov_label_check(o->name, o->label, err, sizeof err) != 0) {
        fprintf(stderr, "ddns-provision reissue: %s\n", err);
        return PROV_EXIT_USAGE;
    }
    if (o->new_name && (prov_label_random(o->prefix, probe) != 0 ||
                        prov_label_check(probe, probe, err, sizeof err) != 0)) {
        fprintf(stderr, "ddns-provision reissue: --label-prefix '%s' is not usable\n", o->prefix);
        return PROV_EXIT_USAGE;
    }
    return 0;
}

/* Says on standard error what the reissue of device id did. */
static void prov_reissue_report(const char *id, const prov_cred_t *cred,
                                const prov_reissue_result_t *res, long long audit_id)
{
    if (strcmp(res->previous_kid, cred->kid) != 0)
        fprintf(stderr, "ddns-provision reissue: device %s moved from key id '%s' (generation "
                "%lu) to '%s' (generation %lu)", id, res->previous_kid,
                (unsigned long)res->previous_generation, cred->kid,
                (unsigned long)res->generation);
    else
        fprintf(stderr, "ddns-provision reissue: device %s keeps key id '%s', generation %lu "
                "to %lu", id, cred->kid, (unsigned long)res->previous_generation,
                (unsigned long)res->generation);
    fprintf(stderr, ": updates signed with its old secret are refused from now on");
    if (res->names > 0)
        fprintf(stderr, "; name %s.%s replaced by %s.%s%s (%lld DNS record%s moved)",
                res->previous_label, res->zone, res->label, res->zone,
                res->names > 1 ? " and its other names" : "", res->records,
                res->records == 1 ? "" : "s");
    fprintf(stderr, " (audit row %lld)\n", audit_id);
    if (res->revoked)
        fprintf(stderr, "ddns-provision reissue: device %s stays revoked: its updates are "
                "answered 'disabled' until 'ddns-provision restore'\n", id);
}

/* Runs the database change of the reissue with its audit row; on success
 * cred receives the device's name and *res what was done (its new
 * generation). Returns PROV_REG_* (PROV_REG_ERROR after printing why). */
static int prov_reissue_db(const prov_reissue_opts_t *o, prov_cred_t *cred,
                           prov_reissue_result_t *res, long long *audit_id)
{
    char err[1024], in_name[32], in_sha[65];
    prov_db_t *db = prov_db_connect(o->db_info, err, sizeof err);
    if (db == NULL) {
        fprintf(stderr, "ddns-provision reissue: %s\n", err);
        return PROV_REG_ERROR;
    }
    prov_single_input(o->id, in_name, in_sha);
    prov_audit_t audit = {
        .command = "reissue", .operator_name = o->operator_name, .kid = cred->kid, .zone = "",
        .input_name = in_name, .input_sha256 = in_sha, .input_bytes = PROV_SINGLE_INPUT_BYTES,
        .lines = 1, .output_format = "jsonl", .tool_version = PROV_VERSION,
    };
    prov_reissue_t rq = {
        .device_id = o->id, .kid = cred->kid,
        .rename = o->new_name ? PROV_RENAME_RANDOM : o->name != NULL ? PROV_RENAME_LABEL
                                                                   : PROV_RENAME_NONE,
        .label = o->label, .label_prefix = o->prefix,
    };
    int reg = prov_db_reissue(db, &rq, &audit, audit_id, res, err, sizeof err);
    prov_db_close(db);
    if (reg == PROV_REG_ERROR) {
        fprintf(stderr, "ddns-provision reissue: %s; nothing changed\n", err);
        return PROV_REG_ERROR;
    }
    snprintf(cred->label, sizeof cred->label, "%s", res->label);
    snprintf(cred->zone, sizeof cred->zone, "%s", res->zone);
    return reg;
}

int prov_cmd_reissue(int argc, char **argv)
{
    prov_reissue_opts_t o;
    char err[1024];
    int rc = PROV_EXIT_REFUSED;
    prov_cred_t cred;
    const cmn_master_key_t *key = NULL;
    prov_reissue_result_t res;
    long long audit_id = 0;

    memset(&cred, 0, sizeof cred);
    int arc = prov_reissue_args(argc, argv, &o);
    if (arc != 0)
        return arc < 0 ? PROV_EXIT_OK : arc;
    cmn_keyset_t *ks = prov_reissue_key(&o.keys, o.kid, &key);
    if (ks == NULL)
        return PROV_EXIT_USAGE;
    /* The key works before anything changes; the generation is the
     * database's. */
    if (prov_cred_derive(&cred, o.id, key, PROV_GENERATION_NEW, err, sizeof err) != 0) {
        fprintf(stderr, "ddns-provision reissue: %s\n", err);
        rc = PROV_EXIT_USAGE;
        goto out;
    }
    if (prov_reissue_db(&o, &cred, &res, &audit_id) == PROV_REG_ERROR)
        goto out;
    prov_reissue_report(o.id, &cred, &res, audit_id);
    rc = PROV_EXIT_OK;
    if (prov_cred_regenerate(&cred, key, res.generation, err, sizeof err) != 0 ||
        prov_print_cred(&cred, res.has_serial ? res.serial : NULL,
                        res.has_model ? res.model : NULL) != 0) {
        fprintf(stderr, "ddns-provision reissue: the device is reissued (generation %lu), but "
                "its credentials could not be written; 'ddns-provision show --mac %s --db ...' "
                "prints them\n", (unsigned long)res.generation, o.id);
        rc = PROV_EXIT_REFUSED;
    }
out:
    prov_cred_wipe(&cred);
    cmn_keyset_free(ks);
    return rc;
}
