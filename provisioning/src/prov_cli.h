/* prov_cli: what the commands of ddns-provision share.
 *
 * Owns the exit codes, option defaults from the environment, the checks of
 * options several commands take (operator, key id, MAC), where the master
 * keys come from (a key directory or a PKCS#11 token) and picking the master
 * key a command uses, the audit input of single-device commands, printing
 * one device's credentials, printing text from the input safely
 * (control bytes escaped), progress lines on standard error, and the
 * interrupt flag set by SIGINT/SIGTERM/SIGHUP so that a command can stop at
 * a point where nothing is half-written. */
#ifndef PROV_CLI_H
#define PROV_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "cmn_key.h"
#include "cmn_mac.h"
#include "prov_cred.h"

#define PROV_VERSION "0.2.0"

enum prov_exit {
    PROV_EXIT_OK = 0,
    PROV_EXIT_REFUSED = 1,  /* bad input, conflict, database error: nothing written */
    PROV_EXIT_USAGE = 2,    /* bad command line, key file problem */
    PROV_EXIT_PARTIAL = 3,  /* batch --reject-file: good lines written, some rejected */
    PROV_EXIT_INTERRUPTED = 130,
};

/* getenv(name) when set and not empty, else def. */
const char *prov_env(const char *name, const char *def);

/* 1 when s is 1 to 64 printable ASCII characters; otherwise prints why
 * ("ddns-provision CMD: WHAT ...") and returns 0. */
int prov_text_ok(const char *cmd, const char *what, const char *s);

/* The operator of a command that writes to the database: --operator NAME
 * (opt, may be NULL) or DDNS_OPERATOR; required, 1 to 64 printable ASCII.
 * Returns it, or NULL after printing why ("ddns-provision CMD: ..."). */
const char *prov_operator(const char *cmd, const char *opt);

/* 1 when kid is NULL or a valid key id; otherwise prints why
 * ("ddns-provision CMD: --kid 'KID': ...") and returns 0. */
int prov_kid_ok(const char *cmd, const char *kid);

/* Canonicalises mac into id and returns 1; otherwise prints why
 * ("ddns-provision CMD: MAC '...': reason") and returns 0. */
int prov_mac_ok(const char *cmd, const char *mac, char id[CMN_DEVICE_ID_LEN + 1]);

/* Where a command's master keys are: a key directory (--key-dir, else
 * DDNS_KEY_DIR, else ./keys) or a PKCS#11 token (--pkcs11 URI, else
 * DDNS_PKCS11 unless --key-dir is given). After prov_keysrc_resolve
 * exactly one of dir and uri is set. */
typedef struct prov_keysrc {
    const char *dir, *uri;
    int dir_given, uri_given;   /* on the command line */
} prov_keysrc_t;

/* The defaults from the environment. */
void prov_keysrc_init(prov_keysrc_t *s);
/* The option values (either may be NULL: not given). */
void prov_keysrc_opt_dir(prov_keysrc_t *s, const char *dir);
void prov_keysrc_opt_uri(prov_keysrc_t *s, const char *uri);
/* Settles the source; 0, or PROV_EXIT_USAGE after printing why (both
 * options given). */
int prov_keysrc_resolve(const char *cmd, prov_keysrc_t *s);
/* Loads the key set of the source, or NULL after printing why. */
cmn_keyset_t *prov_keysrc_load(const char *cmd, const prov_keysrc_t *s);
/* "DIR" or "token 'LABEL'" for messages (buf of 96 bytes at least). */
const char *prov_keysrc_name(const prov_keysrc_t *s, const cmn_keyset_t *ks, char *buf,
                             size_t len);
/* The --pkcs11 line of the commands' usage texts. */
#define PROV_USAGE_PKCS11 \
"      --pkcs11 URI        master keys in a PKCS#11 token instead of a key\n" \
"                          directory [env DDNS_PKCS11]; see 'ddns-provision --help'\n"

/* Loads the keys of src and picks the key with id kid, or the newest when
 * kid is NULL, into *key. Returns the key set (the caller frees it), or
 * NULL after printing why ("ddns-provision CMD: ..."). */
cmn_keyset_t *prov_key_pick(const char *cmd, const prov_keysrc_t *src, const char *kid,
                            const cmn_master_key_t **key);

/* Prints c as one JSON line on standard output (prov_cred_json) and wipes
 * the text. Returns 0, -1 when out of memory (nothing printed), or -2 when
 * standard output failed. */
int prov_print_cred(const prov_cred_t *c, const char *serial, const char *model);

/* The audit input of a single-device command (issue, reissue): the name
 * "--mac DEVICE_ID" and the SHA-256 (hex) of the line "DEVICE_ID\n", whose
 * length PROV_SINGLE_INPUT_BYTES is recorded as the input size. */
#define PROV_SINGLE_INPUT_BYTES 13
void prov_single_input(const char *device_id, char name[32], char sha256_hex[65]);

/* Writes s to f with bytes outside printable ASCII as \xHH. */
void prov_print_safe(FILE *f, const char *s, size_t len);

/* Progress on standard error: at most one line every two seconds, none
 * when quiet. */
typedef struct prov_progress {
    const char *cmd;
    int quiet;
    double started;
    double last;
} prov_progress_t;

void prov_progress_init(prov_progress_t *p, const char *cmd, int quiet);
/* A prov_progress_fn (prov_batch.h): "CMD: WHAT DONE of TOTAL lines". */
void prov_progress_cb(void *ctx, const char *what, size_t done, size_t total);
/* Seconds since prov_progress_init. */
double prov_progress_elapsed(const prov_progress_t *p);
/* Prints a phase line ("CMD: MESSAGE (N.N s)") unless quiet or the command
 * has run for less than two seconds. */
void prov_progress_say(prov_progress_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Installs the SIGINT/SIGTERM/SIGHUP handler that sets the flag. */
void prov_interrupt_install(void);
int prov_interrupted(void);

#endif
