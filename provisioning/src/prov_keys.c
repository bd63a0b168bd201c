/* prov_keys: the 'keys' command (see prov_keys.h). */
#include "prov_keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "cmn_p11.h"
#include "prov_cli.h"
#include "prov_db.h"

#define PROV_RETIRED_DIR "retired"

static const char prov_usage_keys[] =
"Usage: ddns-provision keys list [--key-dir DIR | --pkcs11 URI] [--db CONNINFO]\n"
"       ddns-provision keys retire KID [--key-dir DIR] [--db CONNINFO] [--force]\n"
"       ddns-provision keys unretire KID [--key-dir DIR]\n"
"\n"
"Master keys and their life cycle. Each key file DIR/KID.key holds one\n"
"256-bit master key (docs/PROTOCOL.md section 2); new batches and devices are\n"
"issued under the newest key (latest 'created' time), so rotating keys is:\n"
"'ddns-provision keygen --kid NEW', then restart the gateways so that they\n"
"load it. Older key ids keep verifying their devices until they are retired.\n"
"\n"
"keys list\n"
"  One line per key file in DIR and in DIR/retired: key id, creation time,\n"
"  fingerprint (the first 16 hex digits of the SHA-256 of the key; never the\n"
"  key), file, state, and with a database the number of devices registered\n"
"  under the key id (all, and active ones). States: 'newest' (used for new\n"
"  devices), 'active' (verifies its devices), 'retired' (in DIR/retired, no\n"
"  longer loaded), 'unusable' (the file is refused, with the reason), and\n"
"  'missing' for a key id devices are registered under but no file holds.\n"
"  With --pkcs11, the master keys of the token instead (secret keys labelled\n"
"  with a key id; see 'ddns-provision --help'), where the file column says\n"
"  whether the key was generated in the token or imported into it, and\n"
"  'unusable' gives the reason (for example, a key that can be read out).\n"
"\n"
"keys retire KID\n"
"  Retires a key id: says how many devices still use it, then moves its file\n"
"  to DIR/retired/. The gateway loads only the *.key files directly in its\n"
"  key directory, so once each gateway has been restarted, updates signed\n"
"  with secrets of this key id are refused (badauth) and such devices must be\n"
"  moved to another key id ('ddns-provision reissue') to work again. Refused\n"
"  when active devices still use the key id (unless --force), and when it is\n"
"  the last key in DIR (the gateway does not start without one). Needs the\n"
"  database to count.\n"
"\n"
"keys unretire KID\n"
"  Moves a retired key file back into DIR; after a gateway restart its\n"
"  devices verify again.\n"
"\n"
"retire and unretire move key files; a token's keys are retired with the\n"
"token's own tools (relabel or destroy the object; the gateway loads only\n"
"objects labelled with a key id).\n"
"\n"
"Options:\n"
"  -k, --key-dir DIR   master key directory [env DDNS_KEY_DIR, default ./keys]\n"
PROV_USAGE_PKCS11
"  -d, --db CONNINFO   PostgreSQL connection string [env DDNS_DB]; 'list'\n"
"                      shows device counts only with a database\n"
"      --force         retire even though active devices still use the key id\n"
"  -h, --help          this text\n"
"\n"
"Exit status: 0 done; 1 refused (devices still use the key, no such key,\n"
"database error); 2 usage error.\n";

#define PROV_FINGERPRINT_LABEL "ddns-key-fingerprint-v1"

int prov_key_fingerprint(const cmn_master_key_t *key, char out[17])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    int rc = 0;
    if (cmn_key_in_token(key))
        rc = cmn_key_hmac(key, PROV_FINGERPRINT_LABEL, sizeof PROV_FINGERPRINT_LABEL - 1, md);
    else
        SHA256(key->key, CMN_KEY_LEN, md);
    if (rc == 0)
        cmn_hex(md, 8, out);
    else
        snprintf(out, 17, "-");
    cmn_wipe(md, sizeof md);
    return rc;
}

int prov_keygen_token(const char *uri, const char *kid, const char *created)
{
    cmn_p11_uri_t u;
    cmn_p11_token_t *t = NULL;
    cmn_p11_key_t *have = NULL;
    size_t nhave = 0;
    char err[1024], id[CMN_KID_MAX + 1], fp[17];
    int rc = PROV_EXIT_USAGE;

    if (cmn_p11_uri_parse(uri, &u, err, sizeof err) != 0) {
        fprintf(stderr, "ddns-provision keygen: --pkcs11: %s\n", err);
        return PROV_EXIT_USAGE;
    }
    if (kid != NULL && u.object[0] != '\0' && strcmp(kid, u.object) != 0) {
        fprintf(stderr, "ddns-provision keygen: --kid '%s' and the URI's object='%s' differ\n",
                kid, u.object);
        goto out;
    }
    if (kid == NULL && u.object[0] != '\0')
        kid = u.object;
    if (!prov_kid_ok("keygen", kid))
        goto out;
    if (kid == NULL)
        snprintf(id, sizeof id, "k%.4s%.2s%.2s", created, created + 5, created + 8);
    else
        snprintf(id, sizeof id, "%.16s", kid);
    t = cmn_p11_open(&u, 1, err, sizeof err);
    if (t == NULL) {
        fprintf(stderr, "ddns-provision keygen: %s\n", err);
        goto out;
    }
    if (cmn_p11_list(t, id, &have, &nhave, err, sizeof err) != 0) {
        fprintf(stderr, "ddns-provision keygen: %s\n", err);
        goto out;
    }
    if (nhave > 0) {
        fprintf(stderr, "ddns-provision keygen: token '%s' already holds a key labelled '%s' "
                "(choose another --kid)\n", cmn_p11_token_label(t), id);
        goto out;
    }
    cmn_master_key_t key = {.token = t};
    snprintf(key.kid, sizeof key.kid, "%s", id);
    if (cmn_p11_keygen(t, id, created, NULL, 0, &key.handle, err, sizeof err) != 0) {
        fprintf(stderr, "ddns-provision keygen: %s\n", err);
        goto out;
    }
    prov_key_fingerprint(&key, fp);
    printf("created master key '%s' in token '%s' (generated inside the token: sensitive, "
           "never extractable; fingerprint %s)\n", id, cmn_p11_token_label(t), fp);
    rc = PROV_EXIT_OK;
out:
    free(have);
    cmn_p11_close(t);
    cmn_p11_uri_clear(&u);
    return rc;
}

/* One key file as listed. */
typedef struct prov_keyinfo {
    char kid[CMN_KID_MAX + 1];
    char created[32];
    char fp[17];
    char file[4096 + 256 + 2];
    char problem[512];   /* non-empty: the file is unusable */
    int retired;
    long long total, active; /* -1: unknown */
} prov_keyinfo_t;

typedef struct prov_keylist {
    prov_keyinfo_t *k;
    size_t n;
} prov_keylist_t;

static prov_keyinfo_t *prov_keylist_add(prov_keylist_t *l)
{
    prov_keyinfo_t *grown = realloc(l->k, (l->n + 1) * sizeof *grown);
    if (grown == NULL)
        return NULL;
    l->k = grown;
    memset(&l->k[l->n], 0, sizeof l->k[l->n]);
    l->k[l->n].total = l->k[l->n].active = -1;
    return &l->k[l->n++];
}

/* Reads every *.key file of dir into l. A missing retired/ is no error. */
static int prov_keylist_scan(prov_keylist_t *l, const char *dir, int retired)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    if (d == NULL) {
        if (retired && errno == ENOENT)
            return 0;
        fprintf(stderr, "ddns-provision keys: %s: cannot open key directory: %s\n", dir,
                strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl < 5 || strcmp(de->d_name + nl - 4, ".key") != 0 || de->d_name[0] == '.')
            continue;
        prov_keyinfo_t *ki = prov_keylist_add(l);
        if (ki == NULL) {
            closedir(d);
            fprintf(stderr, "ddns-provision keys: out of memory\n");
            return -1;
        }
        cmn_master_key_t key;
        if ((size_t)snprintf(ki->file, sizeof ki->file, "%s/%s", dir, de->d_name) >=
            sizeof ki->file) {
            closedir(d);
            fprintf(stderr, "ddns-provision keys: %s: path too long\n", dir);
            return -1;
        }
        ki->retired = retired;
        if (cmn_keyfile_read(ki->file, &key, ki->problem, sizeof ki->problem) == 0) {
            snprintf(ki->kid, sizeof ki->kid, "%s", key.kid);
            snprintf(ki->created, sizeof ki->created, "%s", key.created);
            prov_key_fingerprint(&key, ki->fp);
            ki->problem[0] = '\0';
        } else if (ki->problem[0] == '\0') {
            snprintf(ki->problem, sizeof ki->problem, "unreadable");
        }
        cmn_wipe(&key, sizeof key);
    }
    closedir(d);
    return 0;
}

static int prov_keyinfo_cmp(const void *a, const void *b)
{
    const prov_keyinfo_t *x = a, *y = b;
    if (x->retired != y->retired)
        return x->retired - y->retired;
    int c = strcmp(x->kid, y->kid);
    return c ? c : strcmp(x->file, y->file);
}

/* The master keys of the token of uri: every secret key labelled with a
 * key id, with the reason when it cannot be one. */
static int prov_keylist_load_p11(prov_keylist_t *l, const char *uri)
{
    cmn_p11_uri_t u;
    cmn_p11_token_t *t = NULL;
    cmn_p11_key_t *keys = NULL;
    size_t n = 0;
    char err[1024];
    int rc = -1;

    if (cmn_p11_uri_parse(uri, &u, err, sizeof err) != 0 ||
        (t = cmn_p11_open(&u, 0, err, sizeof err)) == NULL ||
        cmn_p11_list(t, u.object[0] ? u.object : NULL, &keys, &n, err, sizeof err) != 0) {
        fprintf(stderr, "ddns-provision keys: --pkcs11: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const cmn_p11_key_t *k = &keys[i];
        if (k->label_too_long || !cmn_kid_valid(k->label, strlen(k->label)))
            continue;   /* not a master key: someone else's object */
        prov_keyinfo_t *ki = prov_keylist_add(l);
        if (ki == NULL) {
            fprintf(stderr, "ddns-provision keys: out of memory\n");
            goto out;
        }
        snprintf(ki->kid, sizeof ki->kid, "%.16s", k->label);
        snprintf(ki->created, sizeof ki->created, "%s", k->created);
        snprintf(ki->file, sizeof ki->file, "token '%s', %s", cmn_p11_token_label(t),
                 k->local == 1 ? "generated in the token" : "imported");
        if (cmn_key_p11_usable(k, cmn_p11_token_label(t), 1, ki->problem,
                               sizeof ki->problem) == 1) {
            cmn_master_key_t key = {.token = t, .handle = k->handle};
            ki->problem[0] = '\0';
            prov_key_fingerprint(&key, ki->fp);
        }
    }
    if (l->n > 1)
        qsort(l->k, l->n, sizeof *l->k, prov_keyinfo_cmp);
    rc = 0;
out:
    free(keys);
    cmn_p11_close(t);
    cmn_p11_uri_clear(&u);
    return rc;
}

static int prov_keylist_load(prov_keylist_t *l, const char *dir)
{
    char rdir[4096];
    snprintf(rdir, sizeof rdir, "%s/%s", dir, PROV_RETIRED_DIR);
    if (prov_keylist_scan(l, dir, 0) != 0 || prov_keylist_scan(l, rdir, 1) != 0)
        return -1;
    if (l->n > 1)
        qsort(l->k, l->n, sizeof *l->k, prov_keyinfo_cmp);
    return 0;
}

/* The key that new devices get: latest created time, ties to the greatest
 * key id (the rule of cmn_keyset_newest), among usable, non-retired keys. */
static const prov_keyinfo_t *prov_keylist_newest(const prov_keylist_t *l)
{
    const prov_keyinfo_t *best = NULL;
    for (size_t i = 0; i < l->n; i++) {
        const prov_keyinfo_t *k = &l->k[i];
        if (k->retired || k->problem[0] != '\0')
            continue;
        if (best == NULL || strcmp(k->created, best->created) > 0 ||
            (strcmp(k->created, best->created) == 0 && strcmp(k->kid, best->kid) > 0))
            best = k;
    }
    return best;
}

typedef struct prov_count_ctx {
    prov_keylist_t *l;
    int failed;
} prov_count_ctx_t;

static void prov_on_kid_count(void *ctx, const char *kid, long long total, long long active)
{
    prov_count_ctx_t *cx = ctx;
    int found = 0;
    for (size_t i = 0; i < cx->l->n; i++) {
        if (strcmp(cx->l->k[i].kid, kid) == 0) {
            cx->l->k[i].total = total;
            cx->l->k[i].active = active;
            found = 1;
        }
    }
    if (!found) {
        prov_keyinfo_t *ki = prov_keylist_add(cx->l);
        if (ki == NULL) {
            cx->failed = 1;
            return;
        }
        snprintf(ki->kid, sizeof ki->kid, "%s", kid);
        snprintf(ki->problem, sizeof ki->problem, "missing");
        ki->total = total;
        ki->active = active;
        ki->retired = 2; /* listed last */
    }
}

static int prov_keylist_count(prov_keylist_t *l, const char *db_info)
{
    char err[1024];
    prov_count_ctx_t cx = {l, 0};
    prov_db_t *db = prov_db_connect(db_info, err, sizeof err);
    int rc = -1;
    if (db == NULL) {
        fprintf(stderr, "ddns-provision keys: %s\n", err);
        return -1;
    }
    for (size_t i = 0; i < l->n; i++)
        if (l->k[i].problem[0] == '\0')
            l->k[i].total = l->k[i].active = 0;
    if (prov_db_kid_counts(db, prov_on_kid_count, &cx, err, sizeof err) != 0) {
        fprintf(stderr, "ddns-provision keys: %s\n", err);
        goto out;
    }
    if (cx.failed) {
        fprintf(stderr, "ddns-provision keys: out of memory\n");
        goto out;
    }
    rc = 0;
out:
    prov_db_close(db);
    return rc;
}

static int prov_keys_list(const prov_keysrc_t *src, const char *db_info)
{
    prov_keylist_t l = {NULL, 0};
    int rc = PROV_EXIT_REFUSED;
    const char *dir = src->dir;

    if (src->uri != NULL ? prov_keylist_load_p11(&l, src->uri) != 0
                         : prov_keylist_load(&l, dir) != 0)
        goto out;
    if (db_info != NULL && prov_keylist_count(&l, db_info) != 0)
        goto out;
    const prov_keyinfo_t *newest = prov_keylist_newest(&l);
    printf("%-16s  %-20s  %-16s  %-8s  %8s  %8s  %s\n", "KID", "CREATED", "FINGERPRINT", "STATE",
           "DEVICES", "ACTIVE", "FILE");
    for (size_t i = 0; i < l.n; i++) {
        const prov_keyinfo_t *k = &l.k[i];
        const char *state = k->retired == 2 ? "missing"
                            : k->problem[0] != '\0' ? "unusable"
                            : k->retired ? "retired"
                            : k == newest ? "newest" : "active";
        char total[24] = "-", active[24] = "-";
        if (k->total >= 0) {
            snprintf(total, sizeof total, "%lld", k->total);
            snprintf(active, sizeof active, "%lld", k->active);
        }
        printf("%-16s  %-20s  %-16s  %-8s  %8s  %8s  %s\n", k->kid[0] ? k->kid : "-",
               k->created[0] ? k->created : "-", k->fp[0] ? k->fp : "-", state, total, active,
               k->file[0] ? k->file : "(no key file)");
        if (k->problem[0] != '\0' && k->retired != 2)
            printf("    %s\n", k->problem);
    }
    if (l.n == 0 && src->uri != NULL)
        printf("(no master keys in the token; create one with 'ddns-provision keygen "
               "--pkcs11 URI')\n");
    else if (l.n == 0)
        printf("(no key files in %s; create one with 'ddns-provision keygen')\n", dir);
    rc = fflush(stdout) == 0 ? PROV_EXIT_OK : PROV_EXIT_REFUSED;
out:
    free(l.k);
    return rc;
}

static int prov_keys_move(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    if (link(from, to) != 0)
        return -1;
    return unlink(from);
}

static int prov_keys_retire(const char *dir, const char *kid, const char *db_info, int force,
                            int unretire)
{
    prov_keylist_t l = {NULL, 0};
    int rc = PROV_EXIT_REFUSED;
    const prov_keyinfo_t *k = NULL;
    size_t usable = 0;
    char rdir[4096], to[sizeof rdir + sizeof l.k->file + 2];

    snprintf(rdir, sizeof rdir, "%s/%s", dir, PROV_RETIRED_DIR);
    if (prov_keylist_load(&l, dir) != 0)
        goto out;
    for (size_t i = 0; i < l.n; i++) {
        if (l.k[i].problem[0] == '\0' && !l.k[i].retired)
            usable++;
        if (strcmp(l.k[i].kid, kid) == 0 && l.k[i].retired == unretire && l.k[i].problem[0] == '\0')
            k = &l.k[i];
    }
    if (k == NULL) {
        fprintf(stderr, "ddns-provision keys: no %skey with id '%s' in %s\n",
                unretire ? "retired " : "", kid, unretire ? rdir : dir);
        goto out;
    }
    const char *base = strrchr(k->file, '/');
    base = base ? base + 1 : k->file;
    if (unretire) {
        snprintf(to, sizeof to, "%s/%s", dir, base);
        if (prov_keys_move(k->file, to) != 0) {
            fprintf(stderr, "ddns-provision keys: cannot move %s to %s: %s\n", k->file, to,
                    strerror(errno));
            goto out;
        }
        printf("key id '%s' is active again (%s); restart the gateways so that they load it\n",
               kid, to);
        rc = PROV_EXIT_OK;
        goto out;
    }
    if (prov_keylist_count(&l, db_info) != 0) {
        fprintf(stderr, "ddns-provision keys: retiring needs the database to count the devices "
                "that still use key id '%s'\n", kid);
        goto out;
    }
    /* prov_keylist_count may have grown the list: find the key again. */
    for (size_t i = 0; i < l.n; i++)
        if (strcmp(l.k[i].kid, kid) == 0 && !l.k[i].retired && l.k[i].problem[0] == '\0')
            k = &l.k[i];
    printf("key id '%s': %lld devices registered under it, %lld of them active\n", kid,
           k->total, k->active);
    if (usable <= 1) {
        fprintf(stderr, "ddns-provision keys: '%s' is the last key in %s; the gateway does not "
                "start without a key: create a new one with 'ddns-provision keygen' first\n",
                kid, dir);
        goto out;
    }
    if (k->active > 0 && !force) {
        fprintf(stderr, "ddns-provision keys: not retired: %lld active devices still use key id "
                "'%s'. Once it is retired and the gateways restarted, their updates are "
                "refused (badauth) until they are reissued under another key. Reissue them "
                "first ('ddns-provision reissue'), or pass --force.\n", k->active, kid);
        goto out;
    }
    if (mkdir(rdir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "ddns-provision keys: cannot create %s: %s\n", rdir, strerror(errno));
        goto out;
    }
    snprintf(to, sizeof to, "%s/%s", rdir, base);
    if (prov_keys_move(k->file, to) != 0) {
        fprintf(stderr, "ddns-provision keys: cannot move %s to %s: %s\n", k->file, to,
                strerror(errno));
        goto out;
    }
    printf("retired key id '%s': moved to %s. Restart the gateways: from then on the %lld "
           "devices registered under it (%lld active) are refused (badauth). "
           "'keys unretire %s' undoes this.\n", kid, to, k->total, k->active, kid);
    rc = PROV_EXIT_OK;
out:
    free(l.k);
    return rc;
}

int prov_cmd_keys(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key-dir", required_argument, NULL, 'k'},
        {"pkcs11", required_argument, NULL, 'T'},
        {"db", required_argument, NULL, 'd'},
        {"force", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db_info = prov_env("DDNS_DB", NULL);
    prov_keysrc_t src;
    int c, force = 0;

    prov_keysrc_init(&src);
    while ((c = getopt_long(argc, argv, "k:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k': prov_keysrc_opt_dir(&src, optarg); break;
        case 'T': prov_keysrc_opt_uri(&src, optarg); break;
        case 'd': db_info = optarg; break;
        case 'F': force = 1; break;
        case 'h': fputs(prov_usage_keys, stdout); return PROV_EXIT_OK;
        default: fputs(prov_usage_keys, stderr); return PROV_EXIT_USAGE;
        }
    }
    if (prov_keysrc_resolve("keys", &src) != 0)
        return PROV_EXIT_USAGE;
    const char *dir = src.dir;
    const char *verb = optind < argc ? argv[optind] : NULL;
    if (verb == NULL) {
        fputs(prov_usage_keys, stderr);
        return PROV_EXIT_USAGE;
    }
    if (strcmp(verb, "list") == 0) {
        if (optind + 1 != argc) {
            fprintf(stderr, "ddns-provision keys list: unexpected argument '%s'\n",
                    argv[optind + 1]);
            return PROV_EXIT_USAGE;
        }
        return prov_keys_list(&src, db_info);
    }
    if (strcmp(verb, "retire") == 0 || strcmp(verb, "unretire") == 0) {
        if (optind + 2 != argc) {
            fprintf(stderr, "ddns-provision keys %s: exactly one key id expected\n", verb);
            return PROV_EXIT_USAGE;
        }
        const char *kid = argv[optind + 1];
        if (src.uri != NULL) {
            fprintf(stderr, "ddns-provision keys %s: works on key files only: a token's keys "
                    "are retired with the token's own tools (relabel the object, for example "
                    "to retired-%s, or destroy it); the gateway loads only objects labelled "
                    "with a key id\n", verb, kid);
            return PROV_EXIT_USAGE;
        }
        if (!cmn_kid_valid(kid, strlen(kid))) {
            fprintf(stderr, "ddns-provision keys %s: '%s' is not a key id (1 to %d characters "
                    "of [a-z0-9])\n", verb, kid, CMN_KID_MAX);
            return PROV_EXIT_USAGE;
        }
        return prov_keys_retire(dir, kid, db_info, force, verb[0] == 'u');
    }
    fprintf(stderr, "ddns-provision keys: unknown verb '%s' (list, retire, unretire; see "
            "--help)\n", verb);
    return PROV_EXIT_USAGE;
}
