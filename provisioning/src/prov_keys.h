/* prov_keys: the 'keys' command of ddns-provision and key fingerprints.
 *
 * Owns listing the master keys of a key directory (ids, creation times,
 * fingerprints, state, and device counts from the database; never the key
 * itself) and retiring a key id: moving its file into the retired/
 * subdirectory, which the gateway does not load, after saying how many
 * devices still use it. */
#ifndef PROV_KEYS_H
#define PROV_KEYS_H

#include <stddef.h>

#include "cmn_key.h"

/* First 8 bytes of SHA-256(key) as 16 hex digits (out holds 17). It names
 * a key without revealing it. */
void prov_key_fingerprint(const cmn_master_key_t *key, char out[17]);

/* argv[0] is "keys". Returns a prov_exit code. */
int prov_cmd_keys(int argc, char **argv);

#endif
