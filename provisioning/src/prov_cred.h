/* prov_cred: one device's credentials as the factory flashes them.
 *
 * Owns turning (MAC, master key, generation) into the device id, the key
 * reference the device sends as its kid, the per-device secret and its
 * encodings, the dyndns2 password derived from it, the hostname label
 * rules (explicit or random), and the one-line JSON record printed for
 * flashing. The secret lives only in a prov_cred_t and in that output;
 * prov_cred_wipe() clears it. */
#ifndef PROV_CRED_H
#define PROV_CRED_H

#include <stddef.h>
#include <stdint.h>

#include "cmn_key.h"
#include "cmn_label.h"
#include "cmn_mac.h"

#define PROV_LABEL_MAX 63
#define PROV_ZONE_MAX 253

/* The generation of devices registered from now on (a reissue adds one;
 * devices registered before generations are 0). */
#define PROV_GENERATION_NEW 1u

typedef struct prov_cred {
    char device_id[CMN_DEVICE_ID_LEN + 1];
    char kid[CMN_KID_MAX + 1];              /* the key id */
    uint32_t generation;
    char keyref[CMN_KEYREF_MAX + 1];        /* what the device sends as kid */
    uint8_t secret[CMN_SECRET_LEN];
    char secret_b64[CMN_SECRET_B64_LEN + 1];
    char password[CMN_PASSWORD_MAX + 1];    /* the dyndns2 password */
    char label[PROV_LABEL_MAX + 1];
    char zone[PROV_ZONE_MAX + 1];
} prov_cred_t;

/* Fills device_id, kid, generation, the key reference, the secret forms and
 * the dyndns2 password from a MAC in any accepted input form. Returns 0, or
 * -1 with a message naming the MAC problem in err. */
int prov_cred_derive(prov_cred_t *c, const char *mac, const cmn_master_key_t *key,
                     uint32_t generation, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Derives c's credentials again for another generation (same device, key
 * id key). Returns 0 or -1 with err. */
int prov_cred_regenerate(prov_cred_t *c, const cmn_master_key_t *key, uint32_t generation,
                         char *err, size_t errlen) __attribute__((warn_unused_result));

/* The reserved-label patterns (cmn_label): the environment variable
 * DDNS_RESERVED_LABELS when set (empty: none reserved), else
 * CMN_LABEL_RESERVED_DEFAULT, the gateway's [admin] reserved_labels
 * default. */
#define PROV_RESERVED_ENV "DDNS_RESERVED_LABELS"
const char *prov_reserved_labels(void);

/* Validates and lowercases an explicit hostname label into out; a label
 * the reserved patterns match is refused. Returns 0 or -1 with the reason
 * in err. */
int prov_label_check(const char *in, char out[PROV_LABEL_MAX + 1], char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Validates and lowercases a zone name (no trailing dot). */
int prov_zone_check(const char *in, char out[PROV_ZONE_MAX + 1], char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A serial number: 1 to 64 characters of [A-Za-z0-9._:/+#-], starting with
 * a letter or digit. Returns 0 or -1 with the reason in err. */
#define PROV_SERIAL_MAX 64
int prov_serial_check(const char *in, char *err, size_t errlen) __attribute__((warn_unused_result));

/* A model name: 1 to 64 printable ASCII characters other than '"' and '\\',
 * no blank at either end. Returns 0 or -1 with the reason in err. */
#define PROV_MODEL_MAX 64
int prov_model_check(const char *in, char *err, size_t errlen) __attribute__((warn_unused_result));

/* A random label: prefix followed by 13 characters of [a-z2-7] (65 bits from
 * the OpenSSL CSPRNG), unrelated to the MAC or serial; one the reserved
 * patterns match is drawn again (-1 after PROV_LABEL_DRAWS draws: the
 * prefix itself is reserved). */
#define PROV_LABEL_DRAWS 64
int prov_label_random(const char *prefix, char out[PROV_LABEL_MAX + 1])
    __attribute__((warn_unused_result));

/* The JSON line for flashing (no trailing newline; "fqdn" only when a label
 * is set): device_id, kid (the key reference), generation, secret,
 * password, fqdn, serial, model. Caller frees. */
char *prov_cred_json(const prov_cred_t *c, const char *serial, const char *model);

void prov_cred_wipe(prov_cred_t *c);

#endif
