/* prov_keys: the 'keys' command of ddns-provision, key fingerprints and
 * keygen in a PKCS#11 token.
 *
 * Owns listing the master keys of a key directory or a token (ids, creation
 * times, fingerprints, state, and device counts from the database; never
 * the key itself), retiring a key id of a directory: moving its file into
 * the retired/ subdirectory, which the gateway does not load, after saying
 * how many devices still use it, and generating a master key inside a
 * token. */
#ifndef PROV_KEYS_H
#define PROV_KEYS_H

#include <stddef.h>

#include "cmn_key.h"

/* A name of the key that does not reveal it, 16 hex digits (out holds
 * 17): the first 8 bytes of SHA-256(key) for a key file's key; for a
 * token key, whose bytes this program never sees, the first 8 bytes of
 * HMAC-SHA256(key, "ddns-key-fingerprint-v1") computed by the token.
 * 0, or -1 with "-" in out. */
int prov_key_fingerprint(const cmn_master_key_t *key, char out[17]);

/* keygen --pkcs11: generates master key kid (NULL: the URI's object=, else
 * k + today's date) created at created inside the token of uri. Returns a
 * prov_exit code after printing the outcome. */
int prov_keygen_token(const char *uri, const char *kid, const char *created);

/* argv[0] is "keys". Returns a prov_exit code. */
int prov_cmd_keys(int argc, char **argv);

#endif
