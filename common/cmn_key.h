/* cmn_key: master keys and per-device secrets (docs/PROTOCOL.md sections 2-3).
 *
 * Owns the master key file format (and its permission rule), the set of
 * master keys a process loads from a key directory or from a PKCS#11 token
 * (through cmn_p11, which owns everything PKCS#11), the rule of which token
 * keys are usable master keys, the one function that uses a master key
 * (cmn_key_hmac: in memory for a key file, in the token for a token key),
 * the per-device secret derivation (by key id and generation), the key
 * reference a device sends as its kid ("k1", "k1/3"), the dyndns2 password
 * derived from a secret, and the text encodings of secrets (base64url, the
 * Basic password). Key material is wiped when freed. Used by the gateway
 * and the provisioning tool; nothing here logs. */
#ifndef CMN_KEY_H
#define CMN_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "cmn_p11.h"

#define CMN_KEY_LEN 32          /* master key bytes */
#define CMN_SECRET_LEN 32       /* device secret bytes */
#define CMN_KID_MAX 16          /* key id characters */
#define CMN_SECRET_B64_LEN 43   /* base64url text of a secret, no padding */
#define CMN_GENERATION_MAX 9999999u /* a device's secret generation: 0 to this */
#define CMN_KEYREF_MAX (CMN_KID_MAX + 1 + 7) /* "kid/generation" characters */
#define CMN_PASSWORD_MAX (CMN_KEYREF_MAX + 1 + CMN_SECRET_B64_LEN)

struct cmn_p11_token;

/* A master key: its bytes (token NULL), or a key object of a PKCS#11
 * token, which never leaves it (key all zero, handle the object). */
typedef struct cmn_master_key {
    char kid[CMN_KID_MAX + 1];
    char created[32];           /* ISO 8601 UTC as written in the file */
    uint8_t key[CMN_KEY_LEN];
    struct cmn_p11_token *token;
    unsigned long handle;
} cmn_master_key_t;

typedef struct cmn_keyset cmn_keyset_t;

/* 1 when s[0..len) is a valid key id ([a-z0-9]{1,16}). */
int cmn_kid_valid(const char *s, size_t len);

/* Reads one key file. Refuses files with any group/other permission bits.
 * On error returns -1 and writes a message naming the file and the line into
 * err (never any key material). */
int cmn_keyfile_read(const char *path, cmn_master_key_t *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Reads a small secret file (a key file, a token's PIN file, named what
 * in messages) whole into buf (cap bytes, NUL-terminated) with read(2), so
 * that no stdio buffer keeps a copy, after checking that it is a regular
 * file that neither group nor others may access. 0, or -1 with err naming
 * the file (never its content); buf is wiped then. */
int cmn_secret_file_read(const char *path, const char *what, char *buf, size_t cap, char *err,
                         size_t errlen) __attribute__((warn_unused_result));

/* Creates path (which must not exist) with mode 0600 holding key. */
int cmn_keyfile_write(const char *path, const cmn_master_key_t *key, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Loads every "*.key" file of dir. Duplicate key ids, unreadable or unsafe
 * files are errors. An empty directory gives an empty set. */
cmn_keyset_t *cmn_keyset_load_dir(const char *dir, char *err, size_t errlen);
/* Loads the master keys of the PKCS#11 token that uri (RFC 7512, see
 * cmn_p11.h) selects: every secret key object labelled with a key id, or
 * only the one named by object=. Secret keys whose label is not a key id,
 * or that are not HMAC keys (CKK_GENERIC_SECRET with CKA_SIGN), belong to
 * someone else and are left alone, unless object= names them. A key that
 * can be read out (CKA_SENSITIVE false or CKA_EXTRACTABLE true), that is
 * not 32 bytes, or whose key id two objects carry, is an error. The
 * creation time is the key's CKA_ID when keygen wrote it there
 * ("2026-11-21T10:00:00Z"), else its CKA_START_DATE at midnight. The set
 * belongs to this process: after fork(), the child calls
 * cmn_keyset_after_fork before using it. */
cmn_keyset_t *cmn_keyset_load_p11(const char *uri, char *err, size_t errlen);
/* In a forked child: opens the token again (C_Initialize in the child, new
 * sessions, login, the keys found again by their labels) so that the
 * child can use the set; the parent's sessions are never touched. The
 * keys of the set are new objects afterwards (pointers taken before are
 * stale). A set loaded from a directory has nothing to do (its pages are
 * wiped in a child, MADV_WIPEONFORK: load the directory in the child).
 * 0 or -1 with err. */
int cmn_keyset_after_fork(cmn_keyset_t *ks, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The rule of cmn_keyset_load_p11 for one key object k of the token
 * labelled token: 1 a master key; 0 someone else's (not labelled with a key
 * id, not an HMAC key), or with named (object= names it) -1 with the
 * reason in err; -1 with err when it breaks the rule (readable, not 32
 * bytes). */
int cmn_key_p11_usable(const cmn_p11_key_t *k, const char *token, int named, char *err,
                       size_t errlen);
/* The label of the token the keys live in, or NULL for a key directory. */
const char *cmn_keyset_token_label(const cmn_keyset_t *ks);
/* The key to derive under for an unknown key id, so that an unknown key id
 * costs what a known one does: a zero key for a directory's keys, a session
 * key generated in the token for a token's (ks NULL: the zero key). */
const cmn_master_key_t *cmn_keyset_standin(const cmn_keyset_t *ks);
void cmn_keyset_free(cmn_keyset_t *ks);
size_t cmn_keyset_count(const cmn_keyset_t *ks);
/* i-th key in key id order. */
const cmn_master_key_t *cmn_keyset_at(const cmn_keyset_t *ks, size_t i);
/* The key ids of ks (NULL: none) in key id order, one blank between them,
 * into out (outlen > 0; ids that do not fit whole are left out). Returns
 * the number of keys. */
size_t cmn_keyset_ids(const cmn_keyset_t *ks, char *out, size_t outlen);
/* Key by id, or NULL. */
const cmn_master_key_t *cmn_keyset_find(const cmn_keyset_t *ks, const char *kid, size_t kidlen);
/* The key with the latest creation time (ties: greatest key id), or NULL. */
const cmn_master_key_t *cmn_keyset_newest(const cmn_keyset_t *ks);

/* 1 when key is a key object of a PKCS#11 token. */
int cmn_key_in_token(const cmn_master_key_t *key);

/* out = HMAC-SHA256(key, msg): the one place where a master key is used;
 * a token key's HMAC is computed by the token (CKM_SHA256_HMAC). Safe from
 * several threads at once. */
int cmn_key_hmac(const cmn_master_key_t *key, const void *msg, size_t len,
                 uint8_t out[CMN_SECRET_LEN]) __attribute__((warn_unused_result));

/* The device secret of one generation (docs/PROTOCOL.md section 3):
 *   generation 0:  HMAC-SHA256(master, "ddns-device-secret-v1" 0 kid 0 device_id)
 *   generation g:  HMAC-SHA256(master, "ddns-device-secret-v2" 0 kid 0 device_id 0 g)
 * with g in decimal. Returns 0, or -1 for a generation above
 * CMN_GENERATION_MAX or an overlong key id or device id. */
int cmn_derive_secret(const cmn_master_key_t *key, const char *kid, size_t kidlen,
                      const char *device_id, size_t idlen, uint32_t generation,
                      uint8_t out[CMN_SECRET_LEN]) __attribute__((warn_unused_result));

/* The key reference s[0..len) (the kid field a device sends): a key id,
 * optionally followed by "/" and a generation of 1 to CMN_GENERATION_MAX
 * in decimal without a leading zero ("k1", "k1/3"; generation 0 is the key
 * id alone). Returns 0 with *kidlen (the key id is s[0..*kidlen)) and
 * *generation, or -1 for anything else ("k1/0", "k1/01", "k1/", "/3"). */
int cmn_keyref_parse(const char *s, size_t len, size_t *kidlen, uint32_t *generation)
    __attribute__((warn_unused_result));

/* Writes the key reference of (kid, generation), NUL-terminated, into out
 * (CMN_KEYREF_MAX + 1 bytes suffice). Returns its length, or -1 for an
 * invalid key id or generation, or a short buffer. */
int cmn_keyref_format(const char *kid, uint32_t generation, char *out, size_t outlen);

/* The bytes of the dyndns2 password (the 32 bytes whose base64url follows
 * the key reference and "." in the Basic password) of a device secret:
 * for generation 0 the secret itself (the legacy "kid.secret"), from
 * generation 1 on HMAC-SHA256(key = secret, "ddns-dyndns2-password-v1"),
 * from which the secret cannot be recovered. Returns 0 or -1. */
int cmn_dyndns2_password(const uint8_t secret[CMN_SECRET_LEN], uint32_t generation,
                         uint8_t out[CMN_SECRET_LEN]) __attribute__((warn_unused_result));

/* base64url without padding. encode writes NUL-terminated text and returns
 * its length, or 0 if outlen is too small. decode returns the byte count or
 * -1 on any invalid character, padding or impossible length. */
size_t cmn_b64url_encode(const uint8_t *in, size_t len, char *out, size_t outlen);
int cmn_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outlen);

/* The HTTP Basic password of section 3 for the device secret of
 * (kid, generation): key reference "." base64url(cmn_dyndns2_password());
 * "kid.secret" for generation 0. out holds CMN_PASSWORD_MAX + 1. Returns 0
 * or -1. */
int cmn_password_format(const char *kid, uint32_t generation,
                        const uint8_t secret[CMN_SECRET_LEN], char *out, size_t outlen);

/* Lowercase hex of in (out holds 2*len + 1). */
void cmn_hex(const uint8_t *in, size_t len, char *out);

/* Wipes memory in a way the compiler keeps. */
void cmn_wipe(void *p, size_t len);

#endif
