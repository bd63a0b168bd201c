/* prov_batchcmd: the batch, derive and register commands (see prov_batchcmd.h). */
#include "prov_batchcmd.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmn_key.h"
#include "prov_batch.h"
#include "prov_cli.h"
#include "prov_csv.h"
#include "prov_db.h"
#include "prov_dbbatch.h"
#include "prov_out.h"

static const char prov_usage_batch[] =
"Usage: ddns-provision batch --csv FILE --zone ZONE --operator NAME [OPTIONS]\n"
"\n"
"Registers a whole production batch of devices from a CSV file (or standard\n"
"input with --csv -) and writes what the factory flashes into each device.\n"
"\n"
"Input. The first line names the columns, in any order: mac, serial, model\n"
"and optionally name. Then one device per line, for example:\n"
"  mac,serial,model,name\n"
"  3C:5A:B4:F0:9A:21,SN0001,IPC-G5,\n"
"  3c-5a-b4-f0-9a-22,SN0002,IPC-G5,front-door\n"
"MACs may be written aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff or\n"
"aabbccddeeff; zero, broadcast and multicast MACs are refused. Serials are 1\n"
"to 64 letters, digits and . _ : / + # -; models 1 to 64 printable ASCII\n"
"characters other than '\"' and '\\'. An empty or missing name gets a random,\n"
"unguessable label (never derived from the MAC or serial). Fields may be\n"
"quoted with '\"'; blank lines are skipped; LF or CRLF line ends.\n"
"\n"
"Checks. Every line is validated before anything is written, and every bad\n"
"line is reported on standard error as FILE:LINE: FIELD 'VALUE': reason.\n"
"Refused: bad MAC syntax or class, bad serial, model or name, the same MAC,\n"
"serial or name twice in the file (all lines involved are reported), a MAC\n"
"already registered under another serial, model or key id, or revoked, a\n"
"serial registered to another device, a name that belongs to another device.\n"
"Unless --reject-file is given, one bad line means nothing is written at all.\n"
"\n"
"New devices are registered at secret generation 1.\n"
"\n"
"Re-runs. A line whose device is already registered exactly so (same key id,\n"
"serial, model and name) changes nothing; its credentials are written again,\n"
"those of the generation it is registered at (the same MAC, key id and\n"
"generation always give the same secret; a reissue raises the generation),\n"
"under its registered name. A batch where every device is registered says\n"
"'nothing changed'.\n"
"\n"
"Loading. In one PostgreSQL transaction: the lines are copied with COPY into\n"
"a temporary table, checked against devices and names with set-based\n"
"queries, registered with two INSERT ... SELECT statements, and the batch is\n"
"recorded in provision_batches (batch id, time, operator, key id, counts and\n"
"the SHA-256 of the input; never a secret). Output files are written under a\n"
"temporary name first and appear under their name only after the commit.\n"
"\n"
"Output (the only place secrets appear):\n"
"  --format jsonl   one JSON object per line, as 'issue' prints it [default]\n"
"  --format csv     device_id,kid,secret,password,fqdn,serial,model (kid: the\n"
"                   key reference the device stores, e.g. k1/1)\n"
"  --format record  the fixed-size 512-byte flash record of docs/PROVISIONING.md\n"
"                   (version 2: with the generation and the dyndns2 password;\n"
"                   CRC-32)\n"
"\n"
"Options:\n"
"      --csv FILE         the input; '-' reads standard input (required)\n"
"  -z, --zone ZONE        DNS zone of the names [env DDNS_ZONE; required]\n"
"      --operator NAME    who runs the batch, recorded in the audit row\n"
"                         [env DDNS_OPERATOR; required]\n"
"      --kid KID          master key id for new devices [default: the newest key]\n"
"  -f, --format FMT       jsonl, csv or record [default jsonl]\n"
"  -o, --out FILE         write the output to FILE, which must not exist;\n"
"                         '-' is standard output [default -; a record output\n"
"                         is not written to a terminal]\n"
"      --out-dir DIR      write one file per device into DIR (which must not\n"
"                         exist): DEVICE_ID.json, .csv or .bin\n"
"      --reject-file FILE register the good lines anyway and write the bad ones\n"
"                         to FILE (CSV: line,reason,input); exit status 3 when\n"
"                         any line was rejected\n"
"      --check            validate everything, including against the database,\n"
"                         and write nothing\n"
"      --label-prefix P   prefix of random labels [default: d]\n"
"  -q, --quiet            no progress lines (errors are still reported)\n"
"  -d, --db CONNINFO      PostgreSQL connection string [env DDNS_DB, else PG*]\n"
"  -k, --key-dir DIR      master key directory [env DDNS_KEY_DIR, default ./keys]\n"
"      --pkcs11 URI       master keys in a PKCS#11 token instead [env DDNS_PKCS11];\n"
"                         every secret is then derived by the token (see\n"
"                         'ddns-provision --help')\n"
"  -h, --help             this text\n"
"\n"
"Progress lines go to standard error every two seconds on long batches, and a\n"
"summary line at the end names the batch id and the counts.\n"
"\n"
"Exit status: 0 done (including 'nothing changed'); 1 refused: bad lines,\n"
"conflicts or a database error, nothing written; 2 usage or key file error;\n"
"3 written with rejected lines (--reject-file); 130 interrupted before the\n"
"commit, nothing written.\n";

static const char prov_usage_derive[] =
"Usage: ddns-provision derive --csv FILE --zone ZONE --public FILE [OPTIONS]\n"
"\n"
"For an air-gapped flashing station: the flashing output of a batch from a\n"
"CSV file and a master key, with no database at all. The input and its checks\n"
"are those of 'batch' (see 'batch --help'), except that nothing is compared\n"
"with the database: that happens later, when 'register' loads the public\n"
"file on a connected machine.\n"
"\n"
"The public file is a CSV file without any secret,\n"
"  mac,serial,model,name,kid,zone,generation\n"
"one line per device, with the device id, the name drawn for it and the key\n"
"id, zone and secret generation of the batch. Carry it (not the key, not the\n"
"flashing output) to the connected side and run 'ddns-provision register\n"
"--public FILE' there: the devices are registered at that generation.\n"
"\n"
"The devices' secrets are of generation 1 (new devices), or of --generation\n"
"N: to flash devices again offline with the credentials of the generation\n"
"they are registered at ('ddns-provision show --db' names it), or after\n"
"a reissue.\n"
"Random names are drawn anew on every run, so the public file and the flashing\n"
"output of one run belong together: flash and register the same run.\n"
"\n"
"Every file is written under a temporary name and appears only when all of\n"
"them are complete, the public file first; none replaces an existing file.\n"
"\n"
"Options:\n"
"      --csv FILE         the input; '-' reads standard input (required)\n"
"  -z, --zone ZONE        DNS zone of the names [env DDNS_ZONE; required]\n"
"      --public FILE      where to write the public file (required)\n"
"      --kid KID          master key id [default: the newest key]\n"
"      --generation N     the secrets' generation, 0 to 9999999 [default 1]\n"
"  -f, --format FMT       jsonl, csv or record [default jsonl]\n"
"  -o, --out FILE         the flashing output [default -, standard output]\n"
"      --out-dir DIR      one file per device instead\n"
"      --reject-file FILE write the good lines anyway, the bad ones to FILE\n"
"      --check            validate only, write nothing\n"
"      --label-prefix P   prefix of random labels [default: d]\n"
"  -q, --quiet            no progress lines\n"
"  -k, --key-dir DIR      master key directory [env DDNS_KEY_DIR, default ./keys]\n"
"      --pkcs11 URI       master keys in a PKCS#11 token instead [env DDNS_PKCS11];\n"
"                         every secret is then derived by the token (see\n"
"                         'ddns-provision --help')\n"
"  -h, --help             this text\n"
"\n"
"Exit status: 0 done; 1 bad lines, nothing written; 2 usage or key file\n"
"error; 3 written with rejected lines (--reject-file); 130 interrupted,\n"
"nothing written.\n";

static const char prov_usage_register[] =
"Usage: ddns-provision register --public FILE --operator NAME [OPTIONS]\n"
"\n"
"Loads the public file written by 'derive' on an air-gapped station into the\n"
"database: the devices under the file's key id and generation (a file without\n"
"the generation column, written before secret generations, is generation 0),\n"
"their names in its zone. No\n"
"master key is needed and no secret is involved. The checks are those of\n"
"'batch' (see 'batch --help'): every line is validated, the devices and names\n"
"are compared with what is registered, and nothing is written unless every\n"
"line is good (or --reject-file is given). The names are those the devices\n"
"were flashed with, so a name that belongs to another device is an error, not\n"
"drawn again. Loading uses COPY in one transaction with an audit row\n"
"(command 'register'). Registering the same file again changes nothing and\n"
"says so.\n"
"\n"
"Options:\n"
"      --public FILE      the public file; '-' reads standard input (required)\n"
"      --operator NAME    who registers it [env DDNS_OPERATOR; required]\n"
"      --reject-file FILE register the good lines anyway, the bad ones to FILE\n"
"      --check            validate against the database only, write nothing\n"
"  -q, --quiet            no progress lines\n"
"  -d, --db CONNINFO      PostgreSQL connection string [env DDNS_DB, else PG*]\n"
"  -h, --help             this text\n"
"\n"
"Exit status: 0 done (including 'nothing changed'); 1 refused, nothing\n"
"written; 2 usage error; 3 registered with rejected lines (--reject-file);\n"
"130 interrupted, nothing written.\n";

enum prov_mode { PROV_MODE_BATCH, PROV_MODE_DERIVE, PROV_MODE_REGISTER };
static const char *const prov_mode_names[] = {"batch", "derive", "register"};
/* The options each command takes (getopt values of prov_run_getopt). */
static const char *const prov_mode_opts[] = {"czOifoDrCpqdkT", "czPifoDrCpqkgT", "POrCqd"};

typedef struct prov_batch_opts {
    int mode;
    const char *cmd;
    const char *csv, *zone_in, *operator_name, *kid, *out, *out_dir, *reject_file, *public_path;
    const char *prefix, *db_info, *fmt_name, *generation_text;
    prov_keysrc_t keys;
    int fmt, check_only, quiet;
    uint32_t generation;
} prov_batch_opts_t;

/* Reads the options of command mode into o (defaults from the
 * environment). Returns 0, -1 after printing --help, or an exit code after
 * printing why. */
static int prov_run_getopt(int mode, int argc, char **argv, prov_batch_opts_t *o)
{
    static const struct option opts[] = {
        {"csv", required_argument, NULL, 'c'},
        {"zone", required_argument, NULL, 'z'},
        {"operator", required_argument, NULL, 'O'},
        {"kid", required_argument, NULL, 'i'},
        {"format", required_argument, NULL, 'f'},
        {"out", required_argument, NULL, 'o'},
        {"out-dir", required_argument, NULL, 'D'},
        {"reject-file", required_argument, NULL, 'r'},
        {"public", required_argument, NULL, 'P'},
        {"check", no_argument, NULL, 'C'},
        {"label-prefix", required_argument, NULL, 'p'},
        {"quiet", no_argument, NULL, 'q'},
        {"db", required_argument, NULL, 'd'},
        {"key-dir", required_argument, NULL, 'k'},
        {"generation", required_argument, NULL, 'g'},
        {"pkcs11", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *usage = mode == PROV_MODE_BATCH    ? prov_usage_batch
                        : mode == PROV_MODE_DERIVE ? prov_usage_derive
                                                   : prov_usage_register;
    const char *cmd = prov_mode_names[mode];
    int c;

    memset(o, 0, sizeof *o);
    o->mode = mode;
    o->cmd = cmd;
    o->zone_in = prov_env("DDNS_ZONE", NULL);
    o->operator_name = prov_env("DDNS_OPERATOR", NULL);
    o->db_info = prov_env("DDNS_DB", NULL);
    prov_keysrc_init(&o->keys);
    o->prefix = "d";
    o->fmt_name = "jsonl";
    while ((c = getopt_long(argc, argv, "z:f:o:qd:k:h", opts, NULL)) != -1) {
        if (c != 'h' && c != '?' && c != ':' && strchr(prov_mode_opts[mode], c) == NULL) {
            const char *name = "?";
            for (const struct option *op = opts; op->name != NULL; op++)
                if (op->val == c)
                    name = op->name;
            fprintf(stderr, "ddns-provision %s: --%s is not an option of '%s' (see --help)\n",
                    cmd, name, cmd);
            return PROV_EXIT_USAGE;
        }
        switch (c) {
        case 'c': o->csv = optarg; break;
        case 'z': o->zone_in = optarg; break;
        case 'O': o->operator_name = optarg; break;
        case 'i': o->kid = optarg; break;
        case 'f': o->fmt_name = optarg; break;
        case 'o': o->out = optarg; break;
        case 'D': o->out_dir = optarg; break;
        case 'r': o->reject_file = optarg; break;
        case 'P': o->public_path = optarg; break;
        case 'C': o->check_only = 1; break;
        case 'p': o->prefix = optarg; break;
        case 'q': o->quiet = 1; break;
        case 'd': o->db_info = optarg; break;
        case 'k': prov_keysrc_opt_dir(&o->keys, optarg); break;
        case 'T': prov_keysrc_opt_uri(&o->keys, optarg); break;
        case 'g': o->generation_text = optarg; break;
        case 'h': fputs(usage, stdout); return -1;
        default: fputs(usage, stderr); return PROV_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "ddns-provision %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return PROV_EXIT_USAGE;
    }
    return 0;
}

/* Reads and checks the options of command mode into o. Returns 0, -1
 * after printing --help, or an exit code after printing why. */
static int prov_run_args(int mode, int argc, char **argv, prov_batch_opts_t *o)
{
    const char *cmd = prov_mode_names[mode];
    int rc = prov_run_getopt(mode, argc, argv, o);
    if (rc != 0)
        return rc;
    if (mode == PROV_MODE_REGISTER) {
        /* the public file is the input; there is no flashing output */
        o->csv = o->public_path;
        o->public_path = NULL;
        if (o->csv == NULL) {
            fprintf(stderr, "ddns-provision register: --public FILE is required ('-' for "
                    "standard input)\n");
            return PROV_EXIT_USAGE;
        }
    } else {
        if (o->csv == NULL) {
            fprintf(stderr, "ddns-provision %s: --csv FILE is required ('-' for standard "
                    "input)\n", cmd);
            return PROV_EXIT_USAGE;
        }
        if (o->zone_in == NULL) {
            fprintf(stderr, "ddns-provision %s: --zone (or DDNS_ZONE) is required\n", cmd);
            return PROV_EXIT_USAGE;
        }
    }
    if (mode == PROV_MODE_DERIVE && o->public_path == NULL && !o->check_only) {
        fprintf(stderr, "ddns-provision derive: --public FILE is required: it is what "
                "'register' loads into the database later\n");
        return PROV_EXIT_USAGE;
    }
    if (mode != PROV_MODE_DERIVE) {
        o->operator_name = prov_operator(cmd, o->operator_name);
        if (o->operator_name == NULL)
            return PROV_EXIT_USAGE;
    }
    if (!prov_kid_ok(cmd, o->kid) || prov_keysrc_resolve(cmd, &o->keys) != 0)
        return PROV_EXIT_USAGE;
    o->generation = PROV_GENERATION_NEW;
    if (o->generation_text != NULL) {
        char *end;
        unsigned long g = strtoul(o->generation_text, &end, 10);
        if (*end != '\0' || end == o->generation_text || o->generation_text[0] == '-' ||
            g > CMN_GENERATION_MAX) {
            fprintf(stderr, "ddns-provision %s: --generation '%s': a number from 0 to %u\n",
                    cmd, o->generation_text, CMN_GENERATION_MAX);
            return PROV_EXIT_USAGE;
        }
        o->generation = (uint32_t)g;
    }
    o->fmt = prov_fmt_parse(o->fmt_name);
    if (o->fmt < 0) {
        fprintf(stderr, "ddns-provision %s: --format '%s': use jsonl, csv or record\n", cmd,
                o->fmt_name);
        return PROV_EXIT_USAGE;
    }
    if (o->out != NULL && o->out_dir != NULL) {
        fprintf(stderr, "ddns-provision %s: --out and --out-dir exclude each other\n", cmd);
        return PROV_EXIT_USAGE;
    }
    if (mode != PROV_MODE_REGISTER && o->out == NULL && o->out_dir == NULL)
        o->out = "-";
    if (o->check_only && o->reject_file != NULL) {
        fprintf(stderr, "ddns-provision %s: --check writes nothing; --reject-file makes no "
                "sense with it\n", cmd);
        return PROV_EXIT_USAGE;
    }
    if (!o->check_only && o->out != NULL && strcmp(o->out, "-") == 0 &&
        o->fmt == PROV_FMT_RECORD && isatty(STDOUT_FILENO)) {
        fprintf(stderr, "ddns-provision %s: binary records are not written to a terminal; "
                "use --out FILE or --out-dir DIR\n", cmd);
        return PROV_EXIT_USAGE;
    }
    if ((o->reject_file != NULL && strcmp(o->reject_file, "-") == 0) ||
        (o->public_path != NULL && strcmp(o->public_path, "-") == 0)) {
        fprintf(stderr, "ddns-provision %s: --reject-file and --public need a file name, "
                "not '-'\n", cmd);
        return PROV_EXIT_USAGE;
    }
    return 0;
}

/* Prints every recorded reason as NAME:LINE: reason. */
static void prov_report_errors(const prov_batch_t *b, const char *name)
{
    for (size_t k = 0, n = prov_batch_nerrors(b); k < n; k++) {
        const char *text = prov_batch_error_text(b, k);
        fprintf(stderr, "%s:%u: ", name, prov_batch_row_c(b, prov_batch_error_row(b, k))->line);
        prov_print_safe(stderr, text, strlen(text));
        fputc('\n', stderr);
    }
}

/* Number of lines with at least one reason. */
static size_t prov_bad_lines(const prov_batch_t *b)
{
    return prov_batch_count_state(b, PROV_ROW_BAD);
}

/* Writes the reject file: line,reason,input for every rejected line. */
static int prov_write_rejects(prov_out_t *o, const prov_batch_t *b, char *err, size_t errlen)
{
    static const char header[] = "line,reason,input\n";
    int rc = -1;
    char *reason = NULL, *field = NULL;
    size_t k = 0, nerr = prov_batch_nerrors(b), cap = 0;

    if (prov_out_write_raw(o, header, strlen(header), err, errlen) != 0)
        return -1;
    while (k < nerr) {
        size_t row = prov_batch_error_row(b, k), rlen = 0, raw_len = 0, n = 0;
        const char *raw = prov_batch_raw(b, row, &raw_len);
        size_t need = 2 * raw_len + 64;
        for (size_t j = k; j < nerr && prov_batch_error_row(b, j) == row; j++)
            need += 2 * strlen(prov_batch_error_text(b, j)) + 8;
        if (need > cap) {
            free(reason);
            free(field);
            reason = malloc(need);
            field = malloc(need);
            cap = need;
            if (reason == NULL || field == NULL) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
        }
        for (; k < nerr && prov_batch_error_row(b, k) == row; k++) {
            const char *t = prov_batch_error_text(b, k);
            rlen += (size_t)snprintf(reason + rlen, cap - rlen, "%s%s", rlen ? "; " : "", t);
        }
        n = (size_t)snprintf(field, cap, "%u,", prov_batch_row_c(b, row)->line);
        size_t w = 0;
        if (prov_csv_field(reason, field + n, cap - n, &w) != 0)
            goto toolong;
        n += w;
        field[n++] = ',';
        memcpy(reason, raw, raw_len);
        reason[raw_len] = '\0';
        if (prov_csv_field(reason, field + n, cap - n - 1, &w) != 0)
            goto toolong;
        n += w;
        field[n++] = '\n';
        if (prov_out_write_raw(o, field, n, err, errlen) != 0)
            goto out;
    }
    rc = 0;
    goto out;
toolong:
    snprintf(err, errlen, "reject file: a line is too long to quote");
out:
    free(reason);
    free(field);
    return rc;
}

/* Derives and writes the credentials of every row that is new or already
 * registered, in input order. */
static int prov_write_output(prov_out_t *o, prov_batch_t *b, const cmn_master_key_t *key,
                             prov_progress_t *pg, char *err, size_t errlen)
{
    int rc = -1;
    prov_cred_t c;
    size_t n = prov_batch_count(b);

    memset(&c, 0, sizeof c);
    for (size_t i = 0; i < n; i++) {
        const prov_row_t *r = prov_batch_row_c(b, i);
        char id[CMN_DEVICE_ID_LEN + 1];
        if (r->state == PROV_ROW_BAD)
            continue;
        if ((i & 0xfff) == 0 && prov_interrupted()) {
            snprintf(err, errlen, "interrupted");
            goto out;
        }
        prov_row_device_id(r, id);
        if (prov_cred_derive(&c, id, key, r->generation, err, errlen) != 0)
            goto out;
        snprintf(c.label, sizeof c.label, "%s", prov_batch_str(b, r->label));
        snprintf(c.zone, sizeof c.zone, "%s", prov_batch_zone(b));
        if (prov_out_write(o, &c, prov_batch_str(b, r->serial), prov_batch_str(b, r->model), err,
                           errlen) != 0)
            goto out;
        if ((i & 0xffff) == 0xffff)
            prov_progress_cb(pg, "wrote the output of", i + 1, n);
    }
    if (prov_out_finish(o, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    prov_cred_wipe(&c);
    return rc;
}

/* Writes the public file of 'derive': every row not rejected, with its
 * name, the key id, the zone and the generation; no secret. */
static int prov_write_public(prov_out_t *o, const prov_batch_t *b, const char *kid, char *err,
                             size_t errlen)
{
    static const char header[] = "mac,serial,model,name,kid,zone,generation\n";
    char line[1024], gen[12];
    if (prov_out_write_raw(o, header, strlen(header), err, errlen) != 0)
        return -1;
    snprintf(gen, sizeof gen, "%lu", (unsigned long)prov_batch_generation(b));
    for (size_t i = 0, n = prov_batch_count(b); i < n; i++) {
        const prov_row_t *r = prov_batch_row_c(b, i);
        char id[CMN_DEVICE_ID_LEN + 1];
        const char *f[7] = {id, prov_batch_str(b, r->serial), prov_batch_str(b, r->model),
                            prov_batch_str(b, r->label), kid, prov_batch_zone(b), gen};
        size_t len = 0, w = 0;
        if (r->state == PROV_ROW_BAD)
            continue;
        prov_row_device_id(r, id);
        for (int k = 0; k < 7; k++) {
            if (k > 0)
                line[len++] = ',';
            if (prov_csv_field(f[k], line + len, sizeof line - len - 2, &w) != 0) {
                snprintf(err, errlen, "public file: line for %s too long", id);
                return -1;
            }
            len += w;
        }
        line[len++] = '\n';
        if (prov_out_write_raw(o, line, len, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* The state of one run of batch, derive or register. */
typedef struct prov_run {
    prov_batch_opts_t o;
    prov_progress_t pg;
    char zone[PROV_ZONE_MAX + 1];
    char err[1024];
    const char *cmd, *in_name;
    int mode, use_db, use_key, in_tx, to_stdout;
    prov_batch_t *b;
    prov_db_t *db;
    prov_out_t *out, *rej, *pub;
    cmn_keyset_t *ks;
    const cmn_master_key_t *key;
    const char *kid;
    long long batch_id;
    size_t lines, n_bad, n_new, n_same;
} prov_run_t;

/* What a step of prov_run returns to go on; anything else is the exit code. */
#define PROV_RUN_ON (-1)

/* Prints "ddns-provision CMD: [WHAT: ]ERR" and returns rc. */
static int prov_run_fail(const prov_run_t *r, const char *what, int rc)
{
    fprintf(stderr, "ddns-provision %s: %s%s%s\n", r->cmd, what ? what : "", what ? ": " : "",
            r->err);
    return rc;
}

static int prov_run_interrupted(const prov_run_t *r)
{
    fprintf(stderr, "ddns-provision %s: interrupted; nothing written\n", r->cmd);
    return PROV_EXIT_INTERRUPTED;
}

/* The options, the zone, progress and the interrupt flag. */
static int prov_run_start(prov_run_t *r, int mode, int argc, char **argv)
{
    memset(r, 0, sizeof *r);
    r->mode = mode;
    r->cmd = prov_mode_names[mode];
    r->use_db = mode != PROV_MODE_DERIVE;
    r->use_key = mode != PROV_MODE_REGISTER;
    int arc = prov_run_args(mode, argc, argv, &r->o);
    if (arc != 0)
        return arc < 0 ? PROV_EXIT_OK : arc;
    if (r->o.zone_in != NULL && mode != PROV_MODE_REGISTER &&
        prov_zone_check(r->o.zone_in, r->zone, r->err, sizeof r->err) != 0)
        return prov_run_fail(r, NULL, PROV_EXIT_USAGE);
    r->in_name = strcmp(r->o.csv, "-") == 0 ? "<stdin>" : r->o.csv;
    prov_progress_init(&r->pg, r->cmd, r->o.quiet);
    prov_interrupt_install();
    return PROV_RUN_ON;
}

/* The master key, then the output names: claimed first, so that a name in
 * use is reported before any work is done. */
static int prov_run_open(prov_run_t *r)
{
    const prov_batch_opts_t *o = &r->o;
    if (r->use_key) {
        r->ks = prov_key_pick(r->cmd, &o->keys, o->kid, &r->key);
        if (r->ks == NULL)
            return PROV_EXIT_USAGE;
        r->kid = r->key->kid;
    }
    if (o->check_only)
        return PROV_RUN_ON;
    if (r->mode != PROV_MODE_REGISTER) {
        r->out = prov_out_open(o->fmt, o->out_dir ? o->out_dir : o->out, o->out_dir != NULL,
                               r->err, sizeof r->err);
        if (r->out == NULL)
            return prov_run_fail(r, NULL, PROV_EXIT_USAGE);
    }
    if (o->public_path != NULL) {
        r->pub = prov_out_open(PROV_FMT_RAW, o->public_path, 0, r->err, sizeof r->err);
        if (r->pub == NULL)
            return prov_run_fail(r, "--public", PROV_EXIT_USAGE);
    }
    if (o->reject_file != NULL) {
        r->rej = prov_out_open(PROV_FMT_RAW, o->reject_file, 0, r->err, sizeof r->err);
        if (r->rej == NULL)
            return prov_run_fail(r, "--reject-file", PROV_EXIT_USAGE);
    }
    return PROV_RUN_ON;
}

/* Reads and validates the input; labels (or, for register, the key id and
 * zone of the public file). */
static int prov_run_load(prov_run_t *r)
{
    r->b = prov_batch_new(r->zone);
    if (r->b == NULL) {
        fprintf(stderr, "ddns-provision %s: out of memory\n", r->cmd);
        return PROV_EXIT_REFUSED;
    }
    if (r->mode == PROV_MODE_REGISTER)
        prov_batch_set_public(r->b);
    else
        prov_batch_set_generation(r->b, r->o.generation);
    prov_batch_set_progress(r->b, prov_progress_cb, &r->pg);
    if (prov_batch_read(r->b, r->o.csv, r->err, sizeof r->err) != 0)
        return prov_interrupted() ? prov_run_interrupted(r)
                                  : prov_run_fail(r, NULL, PROV_EXIT_REFUSED);
    if (prov_batch_parse(r->b, r->err, sizeof r->err) != 0) {
        fprintf(stderr, "%s: ", r->in_name);
        prov_print_safe(stderr, r->err, strlen(r->err));
        fprintf(stderr, "\nddns-provision %s: nothing written\n", r->cmd);
        return PROV_EXIT_REFUSED;
    }
    if (r->mode == PROV_MODE_REGISTER) {
        r->kid = prov_batch_kid(r->b);
        snprintf(r->zone, sizeof r->zone, "%s", prov_batch_zone(r->b));
        if (r->kid[0] == '\0' || r->zone[0] == '\0') {
            prov_batch_sort_errors(r->b);
            prov_report_errors(r->b, r->in_name);
            fprintf(stderr, "ddns-provision register: no line has a valid key id and zone; "
                    "nothing written\n");
            return PROV_EXIT_REFUSED;
        }
    } else if (prov_batch_labels(r->b, r->o.prefix, r->err, sizeof r->err) != 0) {
        return prov_run_fail(r, NULL, PROV_EXIT_USAGE);
    }
    r->lines = prov_batch_count(r->b);
    prov_progress_say(&r->pg, "read %zu device lines from %s (%zu bytes, sha256 %.16s...)",
                      r->lines, r->in_name, prov_batch_input_size(r->b), prov_batch_sha256(r->b));
    return prov_interrupted() ? prov_run_interrupted(r) : PROV_RUN_ON;
}

/* Checks the lines against the database (inside the transaction, which
 * stays open), reports every bad line and counts the verdicts. */
static int prov_run_check(prov_run_t *r)
{
    if (r->use_db) {
        r->db = prov_db_connect(r->o.db_info, r->err, sizeof r->err);
        int ok = r->db != NULL && prov_db_begin(r->db, r->err, sizeof r->err) == 0;
        if (ok) {
            r->in_tx = 1;
            ok = prov_dbbatch_stage(r->db, r->b, r->err, sizeof r->err) == 0 &&
                 prov_dbbatch_check(r->db, r->b, r->kid, r->o.prefix, r->err, sizeof r->err) == 0;
        }
        if (!ok) {
            prov_run_fail(r, NULL, PROV_EXIT_REFUSED);
            /* The lines already known to be bad are still worth reporting. */
            prov_batch_sort_errors(r->b);
            prov_report_errors(r->b, r->in_name);
            fprintf(stderr, "ddns-provision %s: nothing written\n", r->cmd);
            return PROV_EXIT_REFUSED;
        }
        prov_progress_say(&r->pg, "checked %zu lines against the database", r->lines);
    }
    prov_batch_sort_errors(r->b);
    prov_report_errors(r->b, r->in_name);
    r->n_bad = prov_bad_lines(r->b);
    r->n_new = prov_batch_count_state(r->b, PROV_ROW_NEW);
    r->n_same = prov_batch_count_state(r->b, PROV_ROW_SAME);
    return PROV_RUN_ON;
}

/* --check ends here; bad lines end the run unless --reject-file is given. */
static int prov_run_verdict(prov_run_t *r)
{
    if (r->o.check_only) {
        if (r->n_bad > 0)
            fprintf(stderr, "ddns-provision %s: check: %zu of %zu lines have errors\n", r->cmd,
                    r->n_bad, r->lines);
        else if (r->use_db)
            fprintf(stderr, "ddns-provision %s: check: all %zu lines are good: %zu new, "
                    "%zu already registered; nothing written\n", r->cmd, r->lines, r->n_new,
                    r->n_same);
        else
            fprintf(stderr, "ddns-provision %s: check: all %zu lines are good; nothing "
                    "written\n", r->cmd, r->lines);
        return r->n_bad > 0 ? PROV_EXIT_REFUSED : PROV_EXIT_OK;
    }
    if (r->n_bad > 0 && r->rej == NULL) {
        fprintf(stderr, "ddns-provision %s: %zu of %zu lines have errors; nothing written "
                "(fix them, or use --reject-file to %s the good lines)\n", r->cmd, r->n_bad,
                r->lines, r->mode == PROV_MODE_DERIVE ? "write" : "register");
        return PROV_EXIT_REFUSED;
    }
    return prov_interrupted() ? prov_run_interrupted(r) : PROV_RUN_ON;
}

/* The audit row and the start of the set-based insert. */
static int prov_run_insert(prov_run_t *r)
{
    const prov_batch_opts_t *o = &r->o;
    char gen[12];
    snprintf(gen, sizeof gen, "%lu", (unsigned long)prov_batch_generation(r->b));
    prov_audit_t audit = {
        .command = r->cmd, .operator_name = o->operator_name, .kid = r->kid, .zone = r->zone,
        .generation = gen,
        .input_name = strcmp(o->csv, "-") == 0 ? "-" : o->csv,
        .input_sha256 = prov_batch_sha256(r->b), .input_bytes = prov_batch_input_size(r->b),
        .lines = r->lines, .devices_new = r->n_new, .devices_unchanged = r->n_same,
        .lines_rejected = r->n_bad,
        .output_format = r->mode == PROV_MODE_REGISTER ? "none" : prov_fmt_name(o->fmt),
        .tool_version = PROV_VERSION,
    };
    if (prov_db_audit(r->db, &audit, &r->batch_id, r->err, sizeof r->err) != 0 ||
        prov_dbbatch_insert_send(r->db, r->batch_id, r->kid, prov_batch_generation(r->b),
                                 r->zone, r->err, sizeof r->err) != 0)
        return prov_run_fail(r, NULL, PROV_EXIT_REFUSED);
    return PROV_RUN_ON;
}

/* Registers the devices and, meanwhile, writes the output (to a temporary
 * name); then the public file and the reject file. Nothing is committed. */
static int prov_run_write(prov_run_t *r)
{
    int rc;
    if (r->use_db && (rc = prov_run_insert(r)) != PROV_RUN_ON)
        return rc;
    r->to_stdout = r->out != NULL && r->o.out != NULL && strcmp(r->o.out, "-") == 0;
    int wrote = (r->out == NULL || r->to_stdout)
                    ? 0 : prov_write_output(r->out, r->b, r->key, &r->pg, r->err, sizeof r->err);
    if (r->use_db) {
        char ierr[1024];
        if (prov_dbbatch_insert_wait(r->db, r->n_new, ierr, sizeof ierr) != 0) {
            fprintf(stderr, "ddns-provision %s: %s\n", r->cmd, ierr);
            return PROV_EXIT_REFUSED;
        }
    }
    if (wrote != 0)
        return prov_interrupted() ? prov_run_interrupted(r)
                                  : prov_run_fail(r, NULL, PROV_EXIT_REFUSED);
    prov_progress_say(&r->pg, "%s %zu devices%s (not yet committed)",
                      r->use_db ? "registered" : "derived",
                      r->use_db ? r->n_new : r->n_new + r->n_same,
                      r->out != NULL && !r->to_stdout ? " and wrote the output" : "");
    if (r->pub != NULL && (prov_write_public(r->pub, r->b, r->kid, r->err, sizeof r->err) != 0 ||
                           prov_out_finish(r->pub, r->err, sizeof r->err) != 0))
        return prov_run_fail(r, "--public", PROV_EXIT_REFUSED);
    if (r->rej != NULL && (prov_write_rejects(r->rej, r->b, r->err, sizeof r->err) != 0 ||
                           prov_out_finish(r->rej, r->err, sizeof r->err) != 0))
        return prov_run_fail(r, "--reject-file", PROV_EXIT_REFUSED);
    return prov_interrupted() ? prov_run_interrupted(r) : PROV_RUN_ON;
}

/* Commits, then puts the files in place. From the commit on the devices
 * are registered (or, for derive, the public file is in place); an output
 * that cannot be put in place is written again by re-running the batch. */
static int prov_run_commit(prov_run_t *r)
{
    if (r->use_db) {
        r->in_tx = 0;
        if (prov_db_commit(r->db, r->err, sizeof r->err) != 0) {
            fprintf(stderr, "ddns-provision %s: %s; nothing written\n", r->cmd, r->err);
            return PROV_EXIT_REFUSED;
        }
    }
    if (r->pub != NULL && prov_out_commit(r->pub, r->err, sizeof r->err) != 0) {
        fprintf(stderr, "ddns-provision %s: --public: %s; nothing written\n", r->cmd, r->err);
        return PROV_EXIT_REFUSED;
    }
    if (r->out != NULL && !r->to_stdout && prov_out_commit(r->out, r->err, sizeof r->err) != 0) {
        if (r->mode == PROV_MODE_DERIVE)
            fprintf(stderr, "ddns-provision derive: %s; the public file %s was written but "
                    "belongs to no flashing output: delete it and run derive again\n", r->err,
                    r->o.public_path);
        else
            fprintf(stderr, "ddns-provision %s: batch %lld is registered, but %s; run the same "
                    "batch again to write the output\n", r->cmd, r->batch_id, r->err);
        return PROV_EXIT_REFUSED;
    }
    if (r->rej != NULL && prov_out_commit(r->rej, r->err, sizeof r->err) != 0)
        return prov_run_fail(r, "the output is written, but --reject-file", PROV_EXIT_REFUSED);
    if (r->to_stdout && prov_write_output(r->out, r->b, r->key, &r->pg, r->err,
                                          sizeof r->err) != 0) {
        fprintf(stderr, "ddns-provision %s: standard output failed: %s%s\n", r->cmd, r->err,
                r->mode == PROV_MODE_BATCH ? "; the batch is registered: run it again to write "
                                             "the output" : "");
        return PROV_EXIT_REFUSED;
    }
    return PROV_RUN_ON;
}

/* The summary line; returns the exit code of a run that went through. */
static int prov_run_summary(const prov_run_t *r)
{
    if (r->mode == PROV_MODE_DERIVE)
        fprintf(stderr, "ddns-provision derive: %zu devices derived, %zu lines rejected; key id "
                "%s, generation %lu, zone %s; public file %s (register it with "
                "'ddns-provision register')\n", r->n_new, r->n_bad, r->kid,
                (unsigned long)prov_batch_generation(r->b), r->zone, r->o.public_path);
    else if (r->n_new == 0 && r->n_bad == 0)
        fprintf(stderr, "ddns-provision %s: batch %lld: nothing changed: all %zu devices are "
                "already registered exactly so%s\n", r->cmd, r->batch_id, r->n_same,
                r->out != NULL ? "; their credentials were written again" : "");
    else
        fprintf(stderr, "ddns-provision %s: batch %lld: %zu devices registered, %zu already "
                "registered (unchanged), %zu lines rejected; key id %s, zone %s, %.1f s\n",
                r->cmd, r->batch_id, r->n_new, r->n_same, r->n_bad, r->kid, r->zone,
                prov_progress_elapsed(&r->pg));
    return r->n_bad > 0 ? PROV_EXIT_PARTIAL : PROV_EXIT_OK;
}

/* The batch, derive and register commands: one pipeline, three modes.
 *   batch:    key, CSV, database, flashing output, audit
 *   derive:   key, CSV, flashing output and public file; no database
 *   register: public file, database, audit; no key, no secret */
static int prov_run(int mode, int argc, char **argv)
{
    static int (*const steps[])(prov_run_t *) = {
        prov_run_open, prov_run_load, prov_run_check, prov_run_verdict, prov_run_write,
        prov_run_commit,
    };
    prov_run_t r;
    int rc = prov_run_start(&r, mode, argc, argv);
    if (rc != PROV_RUN_ON)
        return rc;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && rc == PROV_RUN_ON; i++)
        rc = steps[i](&r);
    if (rc == PROV_RUN_ON)
        rc = prov_run_summary(&r);
    if (r.in_tx)
        prov_db_rollback(r.db);
    prov_out_free(r.out); /* discards what was not committed */
    prov_out_free(r.pub);
    prov_out_free(r.rej);
    prov_db_close(r.db);
    prov_batch_free(r.b);
    cmn_keyset_free(r.ks);
    return rc;
}

int prov_cmd_batch(int argc, char **argv)
{
    return prov_run(PROV_MODE_BATCH, argc, argv);
}

int prov_cmd_derive(int argc, char **argv)
{
    return prov_run(PROV_MODE_DERIVE, argc, argv);
}

int prov_cmd_register(int argc, char **argv)
{
    return prov_run(PROV_MODE_REGISTER, argc, argv);
}
