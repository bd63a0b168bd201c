/* prov_cli: shared command-line helpers (see prov_cli.h). */
#include "prov_cli.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>


static volatile sig_atomic_t prov_stop;

const char *prov_env(const char *name, const char *def)
{
    const char *v = getenv(name);
    return (v != NULL && v[0] != '\0') ? v : def;
}

int prov_text_ok(const char *cmd, const char *what, const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) {
        fprintf(stderr, "ddns-provision %s: %s must be 1 to 64 characters\n", cmd, what);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            fprintf(stderr, "ddns-provision %s: %s may contain only printable ASCII\n", cmd, what);
            return 0;
        }
    }
    return 1;
}

const char *prov_operator(const char *cmd, const char *opt)
{
    const char *op = opt != NULL ? opt : prov_env("DDNS_OPERATOR", NULL);
    if (op == NULL) {
        fprintf(stderr, "ddns-provision %s: --operator (or DDNS_OPERATOR) is required: every "
                "change is recorded with who made it\n", cmd);
        return NULL;
    }
    return prov_text_ok(cmd, "--operator", op) ? op : NULL;
}

int prov_kid_ok(const char *cmd, const char *kid)
{
    if (kid == NULL || cmn_kid_valid(kid, strlen(kid)))
        return 1;
    fprintf(stderr, "ddns-provision %s: --kid '%s': 1 to %d characters of [a-z0-9]\n", cmd, kid,
            CMN_KID_MAX);
    return 0;
}

int prov_mac_ok(const char *cmd, const char *mac, char id[CMN_DEVICE_ID_LEN + 1])
{
    int mrc = cmn_mac_canon(mac, strlen(mac), id);
    if (mrc == CMN_MAC_OK)
        return 1;
    fprintf(stderr, "ddns-provision %s: MAC '%.40s': %s\n", cmd, mac, cmn_mac_explain(mrc));
    return 0;
}

void prov_keysrc_init(prov_keysrc_t *s)
{
    memset(s, 0, sizeof *s);
    s->dir = prov_env("DDNS_KEY_DIR", "keys");
    s->uri = prov_env("DDNS_PKCS11", NULL);
}

void prov_keysrc_opt_dir(prov_keysrc_t *s, const char *dir)
{
    s->dir = dir;
    s->dir_given = 1;
}

void prov_keysrc_opt_uri(prov_keysrc_t *s, const char *uri)
{
    s->uri = uri;
    s->uri_given = 1;
}

int prov_keysrc_resolve(const char *cmd, prov_keysrc_t *s)
{
    if (s->dir_given && s->uri_given) {
        fprintf(stderr, "ddns-provision %s: --key-dir and --pkcs11 exclude each other: the "
                "master keys are either files or in a token\n", cmd);
        return PROV_EXIT_USAGE;
    }
    if (s->dir_given)
        s->uri = NULL;
    else if (s->uri != NULL)
        s->dir = NULL;
    return 0;
}

cmn_keyset_t *prov_keysrc_load(const char *cmd, const prov_keysrc_t *s)
{
    char err[1024];
    cmn_keyset_t *ks = s->uri != NULL ? cmn_keyset_load_p11(s->uri, err, sizeof err)
                                      : cmn_keyset_load_dir(s->dir, err, sizeof err);
    if (ks == NULL)
        fprintf(stderr, "ddns-provision %s: %s\n", cmd, err);
    return ks;
}

const char *prov_keysrc_name(const prov_keysrc_t *s, const cmn_keyset_t *ks, char *buf,
                             size_t len)
{
    const char *label = ks != NULL ? cmn_keyset_token_label(ks) : NULL;
    if (s->uri == NULL)
        return s->dir;
    snprintf(buf, len, "token '%s'", label != NULL ? label : "?");
    return buf;
}

cmn_keyset_t *prov_key_pick(const char *cmd, const prov_keysrc_t *src, const char *kid,
                            const cmn_master_key_t **key)
{
    char where[128];
    cmn_keyset_t *ks = prov_keysrc_load(cmd, src);
    if (ks == NULL)
        return NULL;
    *key = kid ? cmn_keyset_find(ks, kid, strlen(kid)) : cmn_keyset_newest(ks);
    if (*key != NULL)
        return ks;
    prov_keysrc_name(src, ks, where, sizeof where);
    if (kid)
        fprintf(stderr, "ddns-provision %s: no key with id '%s' in %s\n", cmd, kid, where);
    else
        fprintf(stderr, "ddns-provision %s: no master key in %s (run 'ddns-provision keygen%s')\n",
                cmd, where, src->uri ? " --pkcs11 URI" : "");
    cmn_keyset_free(ks);
    return NULL;
}

int prov_print_cred(const prov_cred_t *c, const char *serial, const char *model)
{
    char *json = prov_cred_json(c, serial, model);
    if (json == NULL)
        return -1;
    int rc = printf("%s\n", json) < 0 ? -2 : 0;
    if (fflush(stdout) != 0)
        rc = -2;
    cmn_wipe(json, strlen(json));
    free(json);
    return rc;
}

void prov_single_input(const char *device_id, char name[32], char sha256_hex[65])
{
    char line[PROV_SINGLE_INPUT_BYTES + 1];
    unsigned char md[SHA256_DIGEST_LENGTH];
    snprintf(line, sizeof line, "%.12s\n", device_id);
    snprintf(name, 32, "--mac %.12s", device_id);
    SHA256((const unsigned char *)line, PROV_SINGLE_INPUT_BYTES, md);
    cmn_hex(md, sizeof md, sha256_hex);
}

void prov_print_safe(FILE *f, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c <= 0x7e)
            fputc(c, f);
        else
            fprintf(f, "\\x%02x", c);
    }
}

static double prov_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void prov_progress_init(prov_progress_t *p, const char *cmd, int quiet)
{
    p->cmd = cmd;
    p->quiet = quiet;
    p->started = prov_now();
    p->last = p->started;
}

double prov_progress_elapsed(const prov_progress_t *p)
{
    return prov_now() - p->started;
}

void prov_progress_cb(void *ctx, const char *what, size_t done, size_t total)
{
    prov_progress_t *p = ctx;
    double now = prov_now();
    if (p->quiet || now - p->last < 2.0)
        return;
    p->last = now;
    fprintf(stderr, "ddns-provision %s: %s %zu of %zu lines (%.0f%%, %.1f s)\n", p->cmd, what,
            done, total, total ? 100.0 * (double)done / (double)total : 100.0, now - p->started);
}

void prov_progress_say(prov_progress_t *p, const char *fmt, ...)
{
    va_list ap;
    /* Short runs stay silent; long ones report each phase. */
    if (p->quiet || prov_progress_elapsed(p) < 2.0)
        return;
    fprintf(stderr, "ddns-provision %s: ", p->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (%.1f s)\n", prov_progress_elapsed(p));
    p->last = prov_now();
}

static void prov_on_signal(int signo)
{
    (void)signo;
    prov_stop = 1;
}

void prov_interrupt_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = prov_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int prov_interrupted(void)
{
    return prov_stop != 0;
}
