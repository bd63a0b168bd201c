/* cmn_p11: master keys in a PKCS#11 token (docs/SECURITY.md, "Master keys
 * in a PKCS#11 token").
 *
 * Owns everything that speaks PKCS#11: the token URI (RFC 7512) and its
 * checks; the PIN (a pin-source file, mode 0600 or stricter, or a
 * pin-value); loading the module named by module-path (dlopen) and its
 * C_Initialize / C_Finalize, shared by every token opened on that module
 * in the process and done again in a forked child; finding the token and
 * logging in; the sessions (a pool: each thread takes one session for one
 * operation, so workers sign in parallel); listing the secret key objects
 * and their attributes; generating a master key inside the token
 * (C_GenerateKey, CKM_GENERIC_SECRET_KEY_GEN, 32 bytes, sensitive and not
 * extractable); importing one (tests, moving a key file into a token); and
 * HMAC-SHA256 with C_SignInit / C_Sign (CKM_SHA256_HMAC). No key value
 * ever comes out of the token through this module.
 *
 * A token opened here belongs to the process that opened it: a forked
 * child must open it again (cmn_p11_open after the fork re-initialises the
 * module in the child) and never use the parent's sessions. Nothing here
 * logs, and no error message holds the PIN. Linux (dlopen, pthreads). */
#ifndef CMN_P11_H
#define CMN_P11_H

#include <stddef.h>
#include <stdint.h>

#define CMN_P11_LABEL_MAX 64      /* object labels this module handles */
#define CMN_P11_PIN_MAX 256

/* A parsed token URI. Empty strings and slot_id -1 match anything. */
typedef struct cmn_p11_uri {
    char token[33];               /* token label (CK_TOKEN_INFO.label) */
    char manufacturer[33];
    char model[17];
    char serial[17];
    char slot_description[65];
    long long slot_id;            /* -1: any slot */
    char object[CMN_P11_LABEL_MAX + 1];   /* key label; "": every key */
    char module_path[4096];
    char pin_source[4096];        /* "": none */
    char pin_value[CMN_P11_PIN_MAX + 1];
    int has_pin_value;
} cmn_p11_uri_t;

/* Parses text ("pkcs11:token=ddns;object=k1?module-path=/usr/lib/...&
 * pin-source=/etc/ddns/token.pin") into u. The path attributes token,
 * manufacturer, model, serial, slot-id, slot-description, object and type
 * (which must be secret-key) and the query attributes module-path
 * (required, absolute), pin-source (a file, or a file: URI) and pin-value
 * are understood; any other attribute, one given twice, a bad %-escape or
 * a value too long for its field is an error naming the attribute. On
 * error returns -1 with err (never the PIN). */
int cmn_p11_uri_parse(const char *text, cmn_p11_uri_t *u, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Wipes u (it may hold a PIN). */
void cmn_p11_uri_clear(cmn_p11_uri_t *u);

typedef struct cmn_p11_token cmn_p11_token_t;

/* Loads the module (once per process and module), finds the one token the
 * URI selects, opens a session (read-write when rw) and logs in with the
 * URI's PIN when the token needs one. Returns NULL with err naming what is
 * wrong: the module, no matching token (the tokens present are named),
 * several matching tokens, a missing, unsafe or refused PIN. */
cmn_p11_token_t *cmn_p11_open(const cmn_p11_uri_t *u, int rw, char *err, size_t errlen);
/* Closes the sessions and releases the module (C_Finalize with its last
 * user). In a forked child it only frees memory: the parent's sessions are
 * the parent's. NULL is ignored. */
void cmn_p11_close(cmn_p11_token_t *t);
/* The token's label without its padding. */
const char *cmn_p11_token_label(const cmn_p11_token_t *t);
/* The URI the token was opened with. */
const cmn_p11_uri_t *cmn_p11_token_uri(const cmn_p11_token_t *t);

/* One secret key object as found in the token. -1: attribute unknown. */
typedef struct cmn_p11_key {
    unsigned long handle;
    char label[CMN_P11_LABEL_MAX + 1];
    int label_too_long;
    char created[32];             /* "YYYY-MM-DDTHH:MM:SSZ", "" when unknown */
    int generic;                  /* CKK_GENERIC_SECRET */
    long value_len;               /* CKA_VALUE_LEN */
    int sensitive, extractable, sign, local;
} cmn_p11_key_t;

/* Lists the token's secret key objects (only those labelled label when
 * label is not NULL) into a malloc'd array *out of *n. 0 or -1 with err. */
int cmn_p11_list(cmn_p11_token_t *t, const char *label, cmn_p11_key_t **out, size_t *n,
                 char *err, size_t errlen) __attribute__((warn_unused_result));

/* Makes a master key in the token (a token object: CKK_GENERIC_SECRET,
 * private, sensitive, not extractable, sign only) labelled label, its
 * creation time created ("YYYY-MM-DDTHH:MM:SSZ") in CKA_ID and its date in
 * CKA_START_DATE: generated inside the token (key NULL; C_GenerateKey,
 * CKM_GENERIC_SECRET_KEY_GEN, 32 bytes), or with the value key of keylen
 * bytes imported (C_CreateObject: tests, moving a key file into a token).
 * Needs a token opened rw. 0 or -1 with err. */
int cmn_p11_keygen(cmn_p11_token_t *t, const char *label, const char *created,
                   const uint8_t *key, size_t keylen, unsigned long *handle, char *err,
                   size_t errlen) __attribute__((warn_unused_result));
/* Generates a session key of the same kind (gone when the token is
 * closed): the stand-in a key set derives under for an unknown key id, so
 * that it costs what a known one does. */
int cmn_p11_standin(cmn_p11_token_t *t, unsigned long *handle, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* out = HMAC-SHA256 under the key object handle, computed by the token
 * (CKM_SHA256_HMAC). Safe from any number of threads at once. 0 or -1. */
int cmn_p11_hmac(cmn_p11_token_t *t, unsigned long handle, const void *msg, size_t len,
                 uint8_t out[32]) __attribute__((warn_unused_result));

/* The PKCS#11 name of a return value ("CKR_PIN_INCORRECT"), or a hex
 * number. */
const char *cmn_p11_rv_name(unsigned long rv, char buf[24]);

#endif
