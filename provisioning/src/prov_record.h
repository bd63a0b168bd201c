/* prov_record: the fixed-size per-device record written into flash.
 *
 * Owns the binary layout (docs/PROVISIONING.md, "The flash record"): 512
 * bytes with a magic, a version byte, the MAC, key id, raw secret, FQDN,
 * serial and model, the secret's generation and the dyndns2 password's
 * bytes, and a CRC-32 over everything before it. Encoding is for the
 * factory (version 2); decoding checks every rule of the layout, reads
 * version 1 records too (generation 0, written before generations) and
 * serves tests and tools that inspect a written record. */
#ifndef PROV_RECORD_H
#define PROV_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "prov_cred.h"

#define PROV_RECORD_SIZE 512
#define PROV_RECORD_VERSION 2     /* written; 1 (generation 0) is still read */
#define PROV_RECORD_MAGIC "DDNS"

/* Field offsets and sizes (bytes). Multi-byte integers are big-endian. */
#define PROV_REC_OFF_MAGIC 0     /* 4: "DDNS" */
#define PROV_REC_OFF_VERSION 4   /* 1: PROV_RECORD_VERSION */
#define PROV_REC_OFF_FLAGS 5     /* 1: 0 */
#define PROV_REC_OFF_SIZE 6      /* 2: PROV_RECORD_SIZE */
#define PROV_REC_OFF_MAC 8       /* 6: the MAC octets */
#define PROV_REC_OFF_PAD1 14     /* 2: 0 */
#define PROV_REC_OFF_KID 16      /* 16: key id, ASCII, NUL-padded */
#define PROV_REC_KID_SIZE 16
#define PROV_REC_OFF_SECRET 32   /* 32: device secret, raw bytes */
#define PROV_REC_OFF_FQDN 64     /* 256: label.zone, ASCII, NUL-padded */
#define PROV_REC_FQDN_SIZE 256
#define PROV_REC_OFF_SERIAL 320  /* 64: serial, ASCII, NUL-padded */
#define PROV_REC_SERIAL_SIZE 64
#define PROV_REC_OFF_MODEL 384   /* 64: model, ASCII, NUL-padded */
#define PROV_REC_MODEL_SIZE 64
#define PROV_REC_OFF_GENERATION 448 /* 4: the secret's generation (version 2) */
#define PROV_REC_OFF_PASSWORD 452 /* 32: the dyndns2 password's bytes after "keyref."
                                     (version 2; generation 0: the secret) */
#define PROV_REC_OFF_RESERVED 484 /* 24: 0 (version 1: 60 bytes from 448) */
#define PROV_REC_OFF_CRC 508     /* 4: CRC-32 of bytes 0..507 */

#define PROV_FQDN_MAX 253

/* A decoded record. */
typedef struct prov_record {
    uint8_t version;
    uint8_t mac[6];
    char device_id[CMN_DEVICE_ID_LEN + 1];
    char kid[CMN_KID_MAX + 1];
    uint32_t generation;
    uint8_t secret[CMN_SECRET_LEN];
    uint8_t password[CMN_SECRET_LEN];   /* the dyndns2 password's bytes */
    char fqdn[PROV_REC_FQDN_SIZE + 1];
    char serial[PROV_REC_SERIAL_SIZE + 1];
    char model[PROV_REC_MODEL_SIZE + 1];
} prov_record_t;

/* CRC-32 as in IEEE 802.3 and zlib's crc32() (reflected polynomial
 * 0xEDB88320, initial value and final XOR 0xFFFFFFFF); "123456789" gives
 * 0xCBF43926. */
uint32_t prov_crc32(const void *data, size_t len);

/* Encodes c (device id, kid, generation, secret, label.zone) with serial
 * and model (NULL: empty) as a version 2 record. Returns 0, or -1 with the
 * reason in err when a field does not fit its slot. */
int prov_record_encode(const prov_cred_t *c, const char *serial, const char *model,
                       uint8_t out[PROV_RECORD_SIZE], char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Decodes and checks a record: magic, version (1 or 2), size, CRC, zero
 * reserved bytes, NUL padding, the syntax of each text field and the
 * generation's range. A version 1 record is generation 0, its password
 * bytes the secret. Returns 0, or -1 with a static reason in *why. */
int prov_record_decode(const uint8_t in[PROV_RECORD_SIZE], prov_record_t *out, const char **why)
    __attribute__((warn_unused_result));

#endif
