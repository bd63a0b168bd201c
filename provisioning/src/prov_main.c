/* ddns-provision: the factory line's tool. Command-line front end: parses
 * options, runs keygen, issue, show, revoke and restore, and hands batch,
 * derive, register, reissue and keys to their modules. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/rand.h>

#include "cmn_key.h"
#include "cmn_label.h"
#include "cmn_secmem.h"
#include "prov_batchcmd.h"
#include "prov_cli.h"
#include "prov_cred.h"
#include "prov_db.h"
#include "prov_keys.h"
#include "prov_reissue.h"

enum { EXIT_USAGE = PROV_EXIT_USAGE, EXIT_REFUSED = PROV_EXIT_REFUSED };

static const char prov_usage[] =
"Usage: ddns-provision COMMAND [OPTIONS]\n"
"\n"
"The factory tool of the DDNS backend: creates master keys, derives each\n"
"device's secret from its MAC address, registers devices in PostgreSQL and\n"
"prints what the factory flashes into each device.\n"
"\n"
"Commands:\n"
"  keygen   create a new 256-bit master key file (mode 0600)\n"
"  keys     list master keys (never the key itself), retire a key id\n"
"  issue    register one device and print its credentials as one JSON line\n"
"  batch    register a production batch from CSV, all lines or none, and\n"
"           write the flashing output (JSON lines, CSV or binary records)\n"
"  derive   the flashing output of a batch without a database (air-gapped\n"
"           stations), with a public file for 'register'\n"
"  register load the public file of 'derive' into the database (no key)\n"
"  show     print one device's credentials again (its key id and generation\n"
"           from the database, or given)\n"
"  reissue  give a device a new secret (a new generation, optionally another\n"
"           master key id) for refurbished or resold devices, optionally under\n"
"           a new name; prints its new credentials\n"
"  revoke   refuse a device's updates from now on and remove its DNS records\n"
"  restore  let a revoked device update again\n"
"\n"
"Common options:\n"
"  -k, --key-dir DIR   directory of master key files (*.key)\n"
"                      [env DDNS_KEY_DIR, default ./keys]\n"
"      --pkcs11 URI    master keys in a PKCS#11 token (HSM) instead [env\n"
"                      DDNS_PKCS11, used unless --key-dir is given]\n"
"  -h, --help          this text; 'ddns-provision COMMAND --help' for a command\n"
"  -V, --version       print the version\n"
"\n"
"Reserved labels. No device may be named after the zone's own hosts: a\n"
"label (given with --name, in a CSV, or drawn at random) that matches one of\n"
"the glob patterns of DDNS_RESERVED_LABELS is refused (random ones are drawn\n"
"again). Unset, the list is the gateway's [admin] reserved_labels default:\n"
"  " CMN_LABEL_RESERVED_DEFAULT "\n"
"set to empty, nothing is reserved. With DDNS_DNS_SERVER=ADDR[:PORT] (the\n"
"zones' primary), issue --name and reissue --name also refuse a label that\n"
"already holds records in the zone without being a device's name.\n"
"\n"
"Exit status: 0 success, 1 refused (bad MAC, conflict, database error;\n"
"nothing written), 2 usage or key file error, 3 batch written with rejected\n"
"lines (batch --reject-file), 130 interrupted (nothing written).\n"
"\n"
"Master keys in a PKCS#11 token. With --pkcs11 the master keys are secret\n"
"key objects of a token (an HSM, or SoftHSM2), made there by 'keygen\n"
"--pkcs11' as sensitive, non-extractable HMAC keys labelled with their key\n"
"id; every derivation is a C_Sign (CKM_SHA256_HMAC) by the token, and no\n"
"master key is ever in this program's memory. keygen, keys list, issue,\n"
"show, batch, derive and reissue take it. The URI (RFC 7512) names the\n"
"token and the module to load, and where the PIN is:\n"
"  pkcs11:token=ddns?module-path=/usr/lib/softhsm/libsofthsm2.so\n"
"      &pin-source=/etc/ddns/token.pin\n"
"Path attributes (before '?', separated by ';'): token (label), serial,\n"
"manufacturer, model, slot-id, slot-description select the token (exactly\n"
"one must match); object=KID selects one key; type=secret-key. Query\n"
"attributes (after '?', separated by '&'): module-path (required, absolute),\n"
"pin-source (a file holding the PIN on its first line; mode 0600 or\n"
"stricter, like key files) or pin-value (the PIN itself, which then sits\n"
"in shell histories and process lists: prefer pin-source). Values are\n"
"%-encoded. Errors name the token, key or file at fault, never the PIN.\n"
"\n"
"Secrets appear only in the flashing output: standard output of 'issue',\n"
"'reissue' and 'show', the output of 'batch'. They are never written to the database, to\n"
"standard error or to any log. docs/PROVISIONING.md describes the factory\n"
"workflow, the CSV input and the flash record.\n";

static const char prov_usage_keygen[] =
"Usage: ddns-provision keygen [--kid KID] [--key-dir DIR | --pkcs11 URI]\n"
"\n"
"Creates DIR/KID.key holding 32 random bytes from the OpenSSL CSPRNG, with\n"
"file mode 0600. An existing file is never overwritten. New devices are\n"
"issued under the newest key unless 'issue --kid' says otherwise.\n"
"\n"
"With --pkcs11 the key is generated inside the token instead (C_GenerateKey,\n"
"CKM_GENERIC_SECRET_KEY_GEN, 32 bytes): a token object labelled KID,\n"
"private, sensitive, never extractable, usable for signing (HMAC) only, its\n"
"creation time in CKA_ID and its date in CKA_START_DATE. Its value never\n"
"leaves the token: back it up with the token's own means (an HSM's\n"
"key backup or cloning to a second HSM). A key labelled KID in the token is\n"
"never replaced. The URI must allow writing (a read-write session).\n"
"\n"
"  --kid KID           key id, 1 to 16 characters of [a-z0-9]\n"
"                      [default: k followed by today's date, e.g. k20261121;\n"
"                      with --pkcs11, the URI's object= when it has one]\n"
"  -k, --key-dir DIR   where to write the key [env DDNS_KEY_DIR, default ./keys];\n"
"                      created with mode 0700 if missing\n"
PROV_USAGE_PKCS11
"\n"
"Prints the key id, the file or token and a fingerprint, never the key: the\n"
"first 16 hex digits of the SHA-256 of a key file's key, or of\n"
"HMAC-SHA256(key, \"ddns-key-fingerprint-v1\") computed by the token for a\n"
"token key.\n";

static const char prov_usage_issue[] =
"Usage: ddns-provision issue --mac MAC --zone ZONE --operator NAME [OPTIONS]\n"
"\n"
"Registers one device in PostgreSQL with a hostname LABEL.ZONE at secret\n"
"generation 1 and prints its credentials as one JSON line on standard output:\n"
"  {\"device_id\":\"3c5ab4f09a21\",\"kid\":\"k1/1\",\"generation\":1,\"secret\":\"...\",\n"
"   \"password\":\"k1/1....\",\"fqdn\":\"dxxxx.ddns.example.com\"}\n"
"(with \"serial\" and \"model\" when given). \"kid\" is the key reference the\n"
"device stores and sends (key id and generation); \"secret\" is the 32-byte\n"
"device secret in base64url, for signed updates; \"password\" is the HTTP\n"
"Basic password for dyndns2 clients, derived from the secret (it does not\n"
"contain it; docs/PROTOCOL.md section 3).\n"
"Running it again for the same device changes nothing and prints its\n"
"credentials again (of its current generation, which a reissue raises); a\n"
"device registered under another key id or serial, or a name\n"
"that belongs to another device, is refused ('reissue' moves a device to\n"
"another key id). Every run that prints credentials is recorded in the audit\n"
"table provision_batches (command 'issue', the operator, key id, generation,\n"
"device id and name; never the secret), in the transaction that registers\n"
"the device.\n"
"\n"
"  -m, --mac MAC       the device's MAC: aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff,\n"
"                      aabb.ccdd.eeff or aabbccddeeff (not zero, broadcast or multicast)\n"
"  -n, --name LABEL    hostname label [default: random, e.g. dq3x7kd2mv5ab4]\n"
"  -z, --zone ZONE     DNS zone of the name [env DDNS_ZONE; required]\n"
"      --operator NAME who issues it, recorded in the audit row: 1 to 64\n"
"                      printable ASCII characters [env DDNS_OPERATOR; required]\n"
"      --kid KID       master key id [default: the newest key in the key directory]\n"
"      --serial TEXT   the device's serial number (recorded): 1 to 64 characters\n"
"                      of A-Z a-z 0-9 . _ : / + # -, starting with a letter or digit\n"
"      --model TEXT    the device's model (recorded): 1 to 64 printable ASCII\n"
"                      characters other than '\"' and '\\'\n"
"      --label-prefix P  prefix of random labels [default: d]\n"
"  -d, --db CONNINFO   PostgreSQL connection string [env DDNS_DB, else PG* variables]\n"
"  -k, --key-dir DIR   master key directory [env DDNS_KEY_DIR, default ./keys]\n"
PROV_USAGE_PKCS11
"  -h, --help          this text\n"
"\n"
"Exit status: 0 registered or already registered so; 1 refused (bad MAC,\n"
"conflict, database error; nothing written); 2 usage or key file error.\n";

static const char prov_usage_show[] =
"Usage: ddns-provision show --mac MAC [--db CONNINFO | --kid KID --generation N]\n"
"                          [--key-dir DIR | --pkcs11 URI]\n"
"\n"
"Derives and prints one device's credentials (device_id, kid, generation,\n"
"secret, password) as one JSON line, as 'issue' prints them, without changing\n"
"anything. For re-flashing a repaired device.\n"
"\n"
"With a database (--db, or DDNS_DB) the key id and the generation are the\n"
"ones the device is registered under (a device that is not registered is an\n"
"error). Without one, or with --generation, they are --kid (default: the\n"
"newest key) and --generation (default 1, a device issued and never\n"
"reissued; 0 for a device provisioned before secret generations).\n"
"\n"
"  -m, --mac MAC       the device's MAC in any accepted form\n"
"      --kid KID       master key id (without a database)\n"
"      --generation N  the secret's generation, 0 to 9999999 (without a database)\n"
"  -d, --db CONNINFO   read the key id and generation from PostgreSQL [env DDNS_DB]\n"
"  -k, --key-dir DIR   master key directory [env DDNS_KEY_DIR, default ./keys]\n"
PROV_USAGE_PKCS11
"  -h, --help          this text\n"
"\n"
"Exit status: 0 printed; 1 bad MAC, not registered, database error; 2 usage\n"
"or key error.\n";

static const char prov_usage_revoke[] =
"Usage: ddns-provision revoke --mac MAC --operator NAME [--db CONNINFO]\n"
"       ddns-provision restore --mac MAC --operator NAME [--db CONNINFO]\n"
"\n"
"revoke: the gateway answers every further update of the device 'disabled'\n"
"(docs/PROTOCOL.md section 4.4), and the DNS records of all its names are\n"
"removed: in one transaction the device is marked revoked, its recorded\n"
"addresses are cleared (with history rows) and the removals are queued in the\n"
"DNS outbox, which the gateway's publisher sends to the DNS server. For a\n"
"stolen, returned or scrapped device.\n"
"\n"
"restore: marks a revoked device active again. Its names keep their labels;\n"
"their records come back with the device's next accepted update.\n"
"\n"
"Running either again changes nothing and says so. Each run, also one that\n"
"changes nothing, is recorded in the audit table provision_batches (command\n"
"'revoke' or 'restore', the operator, the device, its key id, generation and\n"
"first name) in the same transaction. Neither touches a secret;\n"
"a device whose secret leaked needs a 'reissue' (a new secret), not a\n"
"restore.\n"
"\n"
"  -m, --mac MAC       the device's MAC in any accepted form\n"
"      --operator NAME who does it, recorded in the audit row: 1 to 64\n"
"                      printable ASCII characters [env DDNS_OPERATOR]\n"
"  -d, --db CONNINFO   PostgreSQL connection string [env DDNS_DB, else PG*]\n"
"  -h, --help          this text\n"
"\n"
"Exit status: 0 done or nothing to change, 1 not registered or database\n"
"error, 2 usage error.\n";

static int prov_cmd_status(int argc, char **argv, int revoke)
{
    static const struct option opts[] = {
        {"mac", required_argument, NULL, 'm'},
        {"operator", required_argument, NULL, 'O'},
        {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = revoke ? "revoke" : "restore";
    const char *mac = NULL, *db_info = prov_env("DDNS_DB", NULL), *operator_name = NULL;
    char id[CMN_DEVICE_ID_LEN + 1], err[1024], in_name[32], in_sha[65];
    long long records = 0, audit_id = 0;
    int c;

    while ((c = getopt_long(argc, argv, "m:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': mac = optarg; break;
        case 'O': operator_name = optarg; break;
        case 'd': db_info = optarg; break;
        case 'h': fputs(prov_usage_revoke, stdout); return 0;
        default: fputs(prov_usage_revoke, stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc || mac == NULL) {
        fprintf(stderr, "ddns-provision %s: exactly --mac MAC is expected (see --help)\n", cmd);
        return EXIT_USAGE;
    }
    if (!prov_mac_ok(cmd, mac, id))
        return EXIT_USAGE;
    if ((operator_name = prov_operator(cmd, operator_name)) == NULL)
        return EXIT_USAGE;
    prov_db_t *db = prov_db_connect(db_info, err, sizeof err);
    if (db == NULL) {
        fprintf(stderr, "ddns-provision %s: %s\n", cmd, err);
        return EXIT_REFUSED;
    }
    prov_single_input(id, in_name, in_sha);
    prov_audit_t audit = {
        .command = cmd, .operator_name = operator_name, .input_name = in_name,
        .input_sha256 = in_sha, .input_bytes = PROV_SINGLE_INPUT_BYTES, .lines = 1,
        .output_format = "text", .tool_version = PROV_VERSION,
    };
    int rc = prov_db_set_status(db, id, revoke, &audit, &audit_id, &records, err, sizeof err);
    prov_db_close(db);
    if (rc == PROV_REG_ERROR) {
        fprintf(stderr, "ddns-provision %s: %s\n", cmd, err);
        return EXIT_REFUSED;
    }
    if (rc == PROV_REG_SAME)
        printf("device %s is already %s; nothing changed\n", id, revoke ? "revoked" : "active");
    else if (revoke)
        printf("device %s revoked: its updates are answered 'disabled' from now on; %lld DNS "
               "record%s queued for removal\n", id, records, records == 1 ? "" : "s");
    else
        printf("device %s restored: its next update is accepted and publishes its names again\n",
               id);
    return 0;
}

static int prov_cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"kid", required_argument, NULL, 'i'},
        {"key-dir", required_argument, NULL, 'k'},
        {"pkcs11", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    prov_keysrc_t src;
    char kid[CMN_KID_MAX + 1] = "";
    char err[512], path[4096];
    int c;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);

    prov_keysrc_init(&src);
    while ((c = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (!prov_kid_ok("keygen", optarg))
                return EXIT_USAGE;
            snprintf(kid, sizeof kid, "%s", optarg);
            break;
        case 'k': prov_keysrc_opt_dir(&src, optarg); break;
        case 'T': prov_keysrc_opt_uri(&src, optarg); break;
        case 'h': fputs(prov_usage_keygen, stdout); return 0;
        default: fputs(prov_usage_keygen, stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "ddns-provision keygen: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (prov_keysrc_resolve("keygen", &src) != 0)
        return EXIT_USAGE;
    char created[32];
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (src.uri != NULL)
        return prov_keygen_token(src.uri, kid[0] ? kid : NULL, created);
    const char *dir = src.dir;
    if (kid[0] == '\0')
        strftime(kid, sizeof kid, "k%Y%m%d", &tm);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "ddns-provision keygen: cannot create %s: %s\n", dir, strerror(errno));
        return EXIT_USAGE;
    }
    snprintf(path, sizeof path, "%s/%s.key", dir, kid);

    cmn_master_key_t key = {0};
    snprintf(key.kid, sizeof key.kid, "%s", kid);
    snprintf(key.created, sizeof key.created, "%s", created);
    if (RAND_bytes(key.key, CMN_KEY_LEN) != 1) {
        fprintf(stderr, "ddns-provision keygen: the random generator failed\n");
        return EXIT_USAGE;
    }
    int rc = cmn_keyfile_write(path, &key, err, sizeof err);
    char fphex[17];
    prov_key_fingerprint(&key, fphex);
    cmn_wipe(&key, sizeof key);
    if (rc != 0) {
        fprintf(stderr, "ddns-provision keygen: %s%s\n", err,
                errno == EEXIST ? " (choose another --kid)" : "");
        return EXIT_USAGE;
    }
    printf("created master key '%s' in %s (mode 0600, fingerprint %s)\n", kid, path, fphex);
    return 0;
}

/* The options of issue and show. */
typedef struct prov_issue_opts {
    int show_only;
    const char *cmd, *usage;
    const char *mac, *name, *kid, *serial, *model, *zone, *db_info, *prefix;
    const char *operator_name, *generation;
    prov_keysrc_t keys;
} prov_issue_opts_t;

/* Parses the command line of issue or show into o. Returns 0, -1 after
 * printing --help, or an exit code after printing why. */
static int prov_issue_args(int argc, char **argv, int show_only, prov_issue_opts_t *o)
{
    static const struct option opts[] = {
        {"mac", required_argument, NULL, 'm'},
        {"name", required_argument, NULL, 'n'},
        {"zone", required_argument, NULL, 'z'},
        {"kid", required_argument, NULL, 'i'},
        {"serial", required_argument, NULL, 's'},
        {"model", required_argument, NULL, 'M'},
        {"label-prefix", required_argument, NULL, 'p'},
        {"operator", required_argument, NULL, 'O'},
        {"generation", required_argument, NULL, 'g'},
        {"db", required_argument, NULL, 'd'},
        {"key-dir", required_argument, NULL, 'k'},
        {"pkcs11", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(o, 0, sizeof *o);
    o->show_only = show_only;
    o->cmd = show_only ? "show" : "issue";
    o->usage = show_only ? prov_usage_show : prov_usage_issue;
    o->zone = prov_env("DDNS_ZONE", NULL);
    o->db_info = prov_env("DDNS_DB", NULL);
    prov_keysrc_init(&o->keys);
    o->prefix = "d";
    while ((c = getopt_long(argc, argv, "m:n:z:d:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->mac = optarg; break;
        case 'n': o->name = optarg; break;
        case 'z': o->zone = optarg; break;
        case 'i': o->kid = optarg; break;
        case 's': o->serial = optarg; break;
        case 'M': o->model = optarg; break;
        case 'p': o->prefix = optarg; break;
        case 'O': o->operator_name = optarg; break;
        case 'g': o->generation = optarg; break;
        case 'd': o->db_info = optarg; break;
        case 'k': prov_keysrc_opt_dir(&o->keys, optarg); break;
        case 'T': prov_keysrc_opt_uri(&o->keys, optarg); break;
        case 'h': fputs(o->usage, stdout); return -1;
        default: fputs(o->usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "ddns-provision %s: unexpected argument '%s'\n", o->cmd, argv[optind]);
        return EXIT_USAGE;
    }
    if (o->mac == NULL) {
        fprintf(stderr, "ddns-provision %s: --mac is required\n", o->cmd);
        return EXIT_USAGE;
    }
    if (prov_keysrc_resolve(o->cmd, &o->keys) != 0)
        return EXIT_USAGE;
    if (show_only && o->operator_name != NULL) {
        fprintf(stderr, "ddns-provision show: --operator is not an option of 'show' (it writes "
                "nothing)\n");
        return EXIT_USAGE;
    }
    if (!show_only && o->generation != NULL) {
        fprintf(stderr, "ddns-provision issue: --generation is not an option of 'issue' (new "
                "devices start at generation %u; 'reissue' raises it)\n", PROV_GENERATION_NEW);
        return EXIT_USAGE;
    }
    return 0;
}

/* Checks what issue records (operator, zone, name, serial, model) and puts
 * the zone and the label (given or random) into cred. Returns 0 or an exit
 * code after printing why. */
static int prov_issue_check(prov_issue_opts_t *o, prov_cred_t *cred)
{
    char err[1024];

    o->operator_name = prov_operator(o->cmd, o->operator_name);
    if (o->operator_name == NULL)
        return EXIT_USAGE;
    if (o->zone == NULL) {
        fprintf(stderr, "ddns-provision issue: --zone (or DDNS_ZONE) is required\n");
        return EXIT_USAGE;
    }
    if (prov_zone_check(o->zone, cred->zone, err, sizeof err) != 0 ||
        (o->name != NULL && prov_label_check(o->name, cred->label, err, sizeof err) != 0)) {
        fprintf(stderr, "ddns-provision issue: %s\n", err);
        return EXIT_USAGE;
    }
    if ((o->serial && prov_serial_check(o->serial, err, sizeof err) != 0) ||
        (o->model && prov_model_check(o->model, err, sizeof err) != 0)) {
        fprintf(stderr, "ddns-provision issue: --%s\n", err);
        return EXIT_USAGE;
    }
    if (o->name == NULL && prov_label_random(o->prefix, cred->label) != 0) {
        fprintf(stderr, "ddns-provision issue: --label-prefix '%s' is not usable\n", o->prefix);
        return EXIT_USAGE;
    }
    if (o->name == NULL && prov_label_check(cred->label, cred->label, err, sizeof err) != 0) {
        fprintf(stderr, "ddns-provision issue: --label-prefix: %s\n", err);
        return EXIT_USAGE;
    }
    return 0;
}

/* Prints the credentials; returns an exit code. */
static int prov_issue_print(const prov_cred_t *cred, const char *serial, const char *model)
{
    int prc = prov_print_cred(cred, serial, model);
    if (prc == -1)
        fprintf(stderr, "ddns-provision: out of memory\n");
    return prc == 0 ? 0 : EXIT_REFUSED;
}

/* Registers the device of cred (with its audit row) and prints its
 * credentials, of the generation it is registered at. Returns an exit
 * code. */
static int prov_issue_register(const prov_issue_opts_t *o, const cmn_master_key_t *key,
                               prov_cred_t *cred)
{
    char err[1024], in_name[32], in_sha[65];
    long long audit_id = 0;
    uint32_t generation = cred->generation;
    int rc = EXIT_REFUSED;
    prov_db_t *db = prov_db_connect(o->db_info, err, sizeof err);

    if (db == NULL) {
        fprintf(stderr, "ddns-provision issue: %s\n", err);
        return EXIT_REFUSED;
    }
    prov_single_input(cred->device_id, in_name, in_sha);
    prov_audit_t audit = {
        .command = "issue", .operator_name = o->operator_name, .kid = cred->kid,
        .zone = cred->zone, .input_name = in_name, .input_sha256 = in_sha,
        .input_bytes = PROV_SINGLE_INPUT_BYTES, .lines = 1, .output_format = "jsonl",
        .tool_version = PROV_VERSION,
    };
    int reg = prov_db_register(db, cred, o->name != NULL, o->prefix, o->serial, o->model, &audit,
                               &audit_id, &generation, err, sizeof err);
    if (reg == PROV_REG_ERROR) {
        fprintf(stderr, "ddns-provision issue: %s\n", err);
        goto out;
    }
    if (generation != cred->generation &&
        prov_cred_regenerate(cred, key, generation, err, sizeof err) != 0) {
        fprintf(stderr, "ddns-provision issue: %s\n", err);
        goto out;
    }
    fprintf(stderr, "ddns-provision issue: device %s %s %s.%s (key id %s, generation %lu)%s; "
            "audit row %lld\n", cred->device_id,
            reg == PROV_REG_NEW ? "registered as" : "is already registered as", cred->label,
            cred->zone, cred->kid, (unsigned long)cred->generation,
            reg == PROV_REG_NEW ? "" : "; nothing changed", audit_id);
    rc = prov_issue_print(cred, o->serial, o->model);
out:
    prov_db_close(db);
    return rc;
}

/* show: the key id and generation to derive under, from the database
 * when one is named and --generation is not given, else from the options
 * (kid NULL: the newest key). Returns 0 or an exit code after printing
 * why. */
static int prov_show_key(prov_issue_opts_t *o, char kid[CMN_KID_MAX + 1], uint32_t *generation)
{
    char err[1024], id[CMN_DEVICE_ID_LEN + 1];
    unsigned long g = PROV_GENERATION_NEW;
    if (o->generation != NULL) {
        char *end;
        g = strtoul(o->generation, &end, 10);
        if (*end != '\0' || end == o->generation || o->generation[0] == '-' ||
            g > CMN_GENERATION_MAX) {
            fprintf(stderr, "ddns-provision show: --generation '%s': a number from 0 to %u\n",
                    o->generation, CMN_GENERATION_MAX);
            return EXIT_USAGE;
        }
    }
    *generation = (uint32_t)g;
    if (o->generation != NULL || o->db_info == NULL)
        return 0;
    if (!prov_mac_ok("show", o->mac, id))
        return EXIT_USAGE;
    prov_db_t *db = prov_db_connect(o->db_info, err, sizeof err);
    int found = db == NULL ? -1 : prov_db_device_key(db, id, kid, generation, err, sizeof err);
    prov_db_close(db);
    if (found < 0) {
        fprintf(stderr, "ddns-provision show: %s\n", err);
        return EXIT_REFUSED;
    }
    if (found == 0) {
        fprintf(stderr, "ddns-provision show: device %s is not registered (without a database, "
                "--kid and --generation name what to derive)\n", id);
        return EXIT_REFUSED;
    }
    if (o->kid != NULL && strcmp(o->kid, kid) != 0) {
        fprintf(stderr, "ddns-provision show: device %s is registered under key id '%s', not "
                "'%s'\n", id, kid, o->kid);
        return EXIT_REFUSED;
    }
    o->kid = kid;
    return 0;
}

static int prov_cmd_issue(int argc, char **argv, int show_only)
{
    prov_issue_opts_t o;
    char err[1024], kid[CMN_KID_MAX + 1];
    int rc;
    uint32_t generation = PROV_GENERATION_NEW;
    prov_cred_t cred;
    cmn_keyset_t *ks = NULL;
    const cmn_master_key_t *key = NULL;

    memset(&cred, 0, sizeof cred);
    rc = prov_issue_args(argc, argv, show_only, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (!show_only && (rc = prov_issue_check(&o, &cred)) != 0)
        return rc;
    if (show_only && (rc = prov_show_key(&o, kid, &generation)) != 0)
        return rc;
    ks = prov_key_pick(o.cmd, &o.keys, o.kid, &key);
    if (ks == NULL)
        return EXIT_USAGE;
    if (prov_cred_derive(&cred, o.mac, key, generation, err, sizeof err) != 0) {
        fprintf(stderr, "ddns-provision %s: %s\n", o.cmd, err);
        rc = EXIT_REFUSED;
    } else if (show_only) {
        rc = prov_issue_print(&cred, NULL, NULL); /* no label: no fqdn member */
    } else {
        rc = prov_issue_register(&o, key, &cred);
    }
    prov_cred_wipe(&cred);
    cmn_keyset_free(ks);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(prov_usage, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(prov_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("ddns-provision %s\n", PROV_VERSION);
        return 0;
    }
    /* Before any key is read or made: no core file, no ptrace or
     * /proc/PID/mem for other users (the keys live in cmn_secmem). */
    if (cmn_secmem_protect_process() != 0)
        fprintf(stderr, "ddns-provision: warning: cannot make the process non-dumpable: %s\n",
                strerror(errno));
    if (strcmp(cmd, "keygen") == 0)
        return prov_cmd_keygen(argc - 1, argv + 1);
    if (strcmp(cmd, "issue") == 0)
        return prov_cmd_issue(argc - 1, argv + 1, 0);
    if (strcmp(cmd, "show") == 0)
        return prov_cmd_issue(argc - 1, argv + 1, 1);
    if (strcmp(cmd, "batch") == 0)
        return prov_cmd_batch(argc - 1, argv + 1);
    if (strcmp(cmd, "derive") == 0)
        return prov_cmd_derive(argc - 1, argv + 1);
    if (strcmp(cmd, "register") == 0)
        return prov_cmd_register(argc - 1, argv + 1);
    if (strcmp(cmd, "keys") == 0)
        return prov_cmd_keys(argc - 1, argv + 1);
    if (strcmp(cmd, "reissue") == 0)
        return prov_cmd_reissue(argc - 1, argv + 1);
    if (strcmp(cmd, "revoke") == 0 || strcmp(cmd, "restore") == 0)
        return prov_cmd_status(argc - 1, argv + 1, strcmp(cmd, "revoke") == 0);
    fprintf(stderr, "ddns-provision: unknown command '%s' (commands: keygen, keys, issue, batch, "
            "derive, register, show, reissue, revoke, restore; see --help)\n", cmd);
    return EXIT_USAGE;
}
