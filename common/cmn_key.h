/* cmn_key: master keys and per-device secrets (docs/PROTOCOL.md sections 2-3).
 *
 * Owns the master key file format (and its permission rule), the set of
 * master keys a process loads from a key directory, the per-device secret
 * derivation, and the text encodings of secrets (base64url, "kid.secret").
 * Key material is wiped when freed. Used by the gateway and the provisioning
 * tool; nothing here logs. */
#ifndef CMN_KEY_H
#define CMN_KEY_H

#include <stddef.h>
#include <stdint.h>

#define CMN_KEY_LEN 32          /* master key bytes */
#define CMN_SECRET_LEN 32       /* device secret bytes */
#define CMN_KID_MAX 16          /* key id characters */
#define CMN_SECRET_B64_LEN 43   /* base64url text of a secret, no padding */
#define CMN_PASSWORD_MAX (CMN_KID_MAX + 1 + CMN_SECRET_B64_LEN)

typedef struct cmn_master_key {
    char kid[CMN_KID_MAX + 1];
    char created[32];           /* ISO 8601 UTC as written in the file */
    uint8_t key[CMN_KEY_LEN];
} cmn_master_key_t;

typedef struct cmn_keyset cmn_keyset_t;

/* 1 when s[0..len) is a valid key id ([a-z0-9]{1,16}). */
int cmn_kid_valid(const char *s, size_t len);

/* Reads one key file. Refuses files with any group/other permission bits.
 * On error returns -1 and writes a message naming the file and the line into
 * err (never any key material). */
int cmn_keyfile_read(const char *path, cmn_master_key_t *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Creates path (which must not exist) with mode 0600 holding key. */
int cmn_keyfile_write(const char *path, const cmn_master_key_t *key, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Loads every "*.key" file of dir. Duplicate key ids, unreadable or unsafe
 * files are errors. An empty directory gives an empty set. */
cmn_keyset_t *cmn_keyset_load_dir(const char *dir, char *err, size_t errlen);
void cmn_keyset_free(cmn_keyset_t *ks);
size_t cmn_keyset_count(const cmn_keyset_t *ks);
/* i-th key in key id order. */
const cmn_master_key_t *cmn_keyset_at(const cmn_keyset_t *ks, size_t i);
/* Key by id, or NULL. */
const cmn_master_key_t *cmn_keyset_find(const cmn_keyset_t *ks, const char *kid, size_t kidlen);
/* The key with the latest creation time (ties: greatest key id), or NULL. */
const cmn_master_key_t *cmn_keyset_newest(const cmn_keyset_t *ks);

/* out = HMAC-SHA256(key, msg): the one place where a master key is used. */
int cmn_key_hmac(const cmn_master_key_t *key, const void *msg, size_t len,
                 uint8_t out[CMN_SECRET_LEN]) __attribute__((warn_unused_result));

/* secret = HMAC-SHA256(master, "ddns-device-secret-v1" 0 kid 0 device_id). */
int cmn_derive_secret(const cmn_master_key_t *key, const char *kid, size_t kidlen,
                      const char *device_id, size_t idlen, uint8_t out[CMN_SECRET_LEN])
    __attribute__((warn_unused_result));

/* base64url without padding. encode writes NUL-terminated text and returns
 * its length, or 0 if outlen is too small. decode returns the byte count or
 * -1 on any invalid character, padding or impossible length. */
size_t cmn_b64url_encode(const uint8_t *in, size_t len, char *out, size_t outlen);
int cmn_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outlen);

/* "kid.secret" password of section 3 (out holds CMN_PASSWORD_MAX + 1). */
int cmn_password_format(const char *kid, const uint8_t secret[CMN_SECRET_LEN],
                        char *out, size_t outlen);

/* Lowercase hex of in (out holds 2*len + 1). */
void cmn_hex(const uint8_t *in, size_t len, char *out);

/* Wipes memory in a way the compiler keeps. */
void cmn_wipe(void *p, size_t len);

#endif
