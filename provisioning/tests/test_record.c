/* Unit tests of the flash record (prov_record): CRC-32 check values, the
 * layout of docs/PROVISIONING.md byte for byte against the vectors of the
 * independent Python encoder (provisioning/tests/record-vectors.txt), and
 * the decoder's refusal of damaged or foreign records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "prov_record.h"
#include "../../tests/unit/vectors.h"

#define RECORD_VECTORS "provisioning/tests/record-vectors.txt"

static vectors_t *vec;

static void test_crc32_check_values(void **state)
{
    (void)state;
    /* CRC-32/ISO-HDLC check value, and zlib.crc32 of a few inputs */
    assert_int_equal(prov_crc32("123456789", 9), 0xCBF43926u);
    assert_int_equal(prov_crc32("", 0), 0x00000000u);
    assert_int_equal(prov_crc32("a", 1), 0xE8B7BE43u);
    assert_int_equal(prov_crc32("The quick brown fox jumps over the lazy dog", 43), 0x414FA339u);
}

/* Builds the credentials of a vector record with the C code. */
static void cred_of(const vectors_rec_t *r, prov_cred_t *c)
{
    size_t klen;
    char err[256];
    unsigned char *mk = vectors_hex(r, "master_key_hex", &klen);
    cmn_master_key_t key = {0};
    assert_int_equal(klen, CMN_KEY_LEN);
    snprintf(key.kid, sizeof key.kid, "%s", vectors_need(r, "kid"));
    memcpy(key.key, mk, CMN_KEY_LEN);
    free(mk);
    memset(c, 0, sizeof *c);
    uint32_t gen = (uint32_t)strtoul(vectors_need(r, "generation"), NULL, 10);
    assert_int_equal(prov_cred_derive(c, vectors_need(r, "mac"), &key, gen, err, sizeof err), 0);
    assert_string_equal(c->device_id, vectors_need(r, "device_id"));
    assert_string_equal(c->secret_b64, vectors_need(r, "secret_b64u"));
    snprintf(c->label, sizeof c->label, "%s", vectors_need(r, "label"));
    snprintf(c->zone, sizeof c->zone, "%s", vectors_need(r, "zone"));
    cmn_wipe(&key, sizeof key);
}

static void test_record_vectors(void **state)
{
    (void)state;
    size_t n = 0;
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "record"); r;
         r = vectors_next(vec, r, "record")) {
        prov_cred_t c;
        uint8_t rec[PROV_RECORD_SIZE];
        char err[256];
        size_t len, plen;
        int version = atoi(vectors_need(r, "version"));
        cred_of(r, &c);
        unsigned char *want = vectors_hex(r, "record_hex", &len);
        unsigned char *pw = vectors_hex(r, "password_hex", &plen);
        assert_int_equal(len, PROV_RECORD_SIZE);
        assert_int_equal(plen, CMN_SECRET_LEN);
        if (version == PROV_RECORD_VERSION) {
            assert_int_equal(prov_record_encode(&c, vectors_need(r, "serial"),
                                                vectors_need(r, "model"), rec, err, sizeof err), 0);
            assert_memory_equal(rec, want, PROV_RECORD_SIZE);
        } else {
            memcpy(rec, want, PROV_RECORD_SIZE);   /* a record of an earlier version: read */
        }
        free(want);

        /* the documented offsets */
        assert_memory_equal(rec + PROV_REC_OFF_MAGIC, "DDNS", 4);
        assert_int_equal(rec[PROV_REC_OFF_VERSION], version);
        assert_int_equal(rec[PROV_REC_OFF_SIZE] << 8 | rec[PROV_REC_OFF_SIZE + 1], 512);
        assert_memory_equal(rec + PROV_REC_OFF_SECRET, c.secret, CMN_SECRET_LEN);
        if (version == 2) {
            assert_int_equal((uint32_t)rec[448] << 24 | (uint32_t)rec[449] << 16 |
                             (uint32_t)rec[450] << 8 | rec[451], c.generation);
            assert_memory_equal(rec + PROV_REC_OFF_PASSWORD, pw, CMN_SECRET_LEN);
        }
        char crc[9];
        uint32_t v = (uint32_t)rec[508] << 24 | (uint32_t)rec[509] << 16 |
                     (uint32_t)rec[510] << 8 | rec[511];
        snprintf(crc, sizeof crc, "%08x", v);
        assert_string_equal(crc, vectors_need(r, "crc"));
        assert_int_equal(v, prov_crc32(rec, 508));

        prov_record_t d;
        const char *why = NULL;
        assert_int_equal(prov_record_decode(rec, &d, &why), 0);
        assert_string_equal(d.device_id, c.device_id);
        assert_string_equal(d.kid, c.kid);
        assert_int_equal(d.generation, c.generation);
        assert_memory_equal(d.secret, c.secret, CMN_SECRET_LEN);
        assert_memory_equal(d.password, pw, CMN_SECRET_LEN);
        /* the password text of the credentials is the key reference and these bytes */
        char b64[CMN_SECRET_B64_LEN + 1], text[CMN_PASSWORD_MAX + 1];
        assert_int_equal(cmn_b64url_encode(d.password, CMN_SECRET_LEN, b64, sizeof b64),
                         CMN_SECRET_B64_LEN);
        snprintf(text, sizeof text, "%s.%s", c.keyref, b64);
        assert_string_equal(text, c.password);
        free(pw);
        char fqdn[320];
        snprintf(fqdn, sizeof fqdn, "%s.%s", c.label, c.zone);
        assert_string_equal(d.fqdn, fqdn);
        assert_string_equal(d.serial, vectors_need(r, "serial"));
        assert_string_equal(d.model, vectors_need(r, "model"));
        prov_cred_wipe(&c);
        n++;
    }
    assert_int_equal(n, 4);
}

static void good_record(uint8_t rec[PROV_RECORD_SIZE])
{
    const vectors_rec_t *r = vectors_next(vec, NULL, "record");
    prov_cred_t c;
    char err[256];
    cred_of(r, &c);
    assert_int_equal(prov_record_encode(&c, "SN1", "M", rec, err, sizeof err), 0);
    prov_cred_wipe(&c);
}

/* Recomputes the CRC after a deliberate change. */
static void reseal(uint8_t rec[PROV_RECORD_SIZE])
{
    uint32_t v = prov_crc32(rec, PROV_REC_OFF_CRC);
    rec[508] = (uint8_t)(v >> 24);
    rec[509] = (uint8_t)(v >> 16);
    rec[510] = (uint8_t)(v >> 8);
    rec[511] = (uint8_t)v;
}

static void expect_refused(const uint8_t rec[PROV_RECORD_SIZE], const char *reason)
{
    prov_record_t d;
    const char *why = NULL;
    assert_int_equal(prov_record_decode(rec, &d, &why), -1);
    assert_non_null(why);
    assert_non_null(strstr(why, reason));
}

static void test_record_damage_refused(void **state)
{
    (void)state;
    uint8_t rec[PROV_RECORD_SIZE];

    /* any single flipped bit is caught by the CRC */
    for (size_t bit = 0; bit < 8 * PROV_REC_OFF_CRC; bit += 7) {
        good_record(rec);
        rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        prov_record_t d;
        const char *why = NULL;
        assert_int_equal(prov_record_decode(rec, &d, &why), -1);
    }
    good_record(rec);
    rec[PROV_REC_OFF_SECRET] ^= 1;
    expect_refused(rec, "CRC mismatch");

    good_record(rec);
    memset(rec, 0xff, PROV_RECORD_SIZE); /* erased flash */
    expect_refused(rec, "magic");

    good_record(rec);
    rec[PROV_REC_OFF_VERSION] = 3;
    reseal(rec);
    expect_refused(rec, "unknown record version");

    /* version 1 has no generation: its bytes must be zero */
    good_record(rec);
    rec[PROV_REC_OFF_VERSION] = 1;
    reseal(rec);
    expect_refused(rec, "reserved bytes");

    good_record(rec);
    rec[PROV_REC_OFF_GENERATION] = 0x01;    /* 16777216 + ... */
    reseal(rec);
    expect_refused(rec, "generation out of range");

    good_record(rec);
    rec[PROV_REC_OFF_SIZE] = 1; /* 256 */
    reseal(rec);
    expect_refused(rec, "wrong record size");

    good_record(rec);
    rec[PROV_REC_OFF_RESERVED + 10] = 1;
    reseal(rec);
    expect_refused(rec, "reserved bytes");

    good_record(rec);
    rec[PROV_REC_OFF_FLAGS] = 1;
    reseal(rec);
    expect_refused(rec, "reserved bytes");

    good_record(rec);
    rec[PROV_REC_OFF_KID + 10] = 'x'; /* text after the NUL padding */
    reseal(rec);
    expect_refused(rec, "invalid key id");

    good_record(rec);
    rec[PROV_REC_OFF_SERIAL + 1] = '\t';
    reseal(rec);
    expect_refused(rec, "serial or model");

    good_record(rec);
    rec[PROV_REC_OFF_MAC] = 0x01; /* multicast */
    reseal(rec);
    expect_refused(rec, "multicast");
}

static void test_record_encode_limits(void **state)
{
    (void)state;
    const vectors_rec_t *r = vectors_next(vec, NULL, "record");
    prov_cred_t c;
    uint8_t rec[PROV_RECORD_SIZE];
    char err[256], s65[66];
    cred_of(r, &c);
    memset(s65, 'S', 65);
    s65[65] = '\0';
    assert_int_equal(prov_record_encode(&c, s65, "M", rec, err, sizeof err), -1);
    assert_non_null(strstr(err, "serial or model"));
    assert_int_equal(prov_record_encode(&c, "S", s65, rec, err, sizeof err), -1);
    /* a name of 254 characters does not fit */
    memset(c.label, 'a', 63);
    c.label[63] = '\0';
    memset(c.zone, 'b', 190);
    c.zone[190] = '\0';
    c.zone[60] = c.zone[121] = c.zone[182] = '.';
    assert_int_equal(prov_record_encode(&c, "S", "M", rec, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than 253"));
    /* NULL serial and model are empty fields */
    c.zone[189] = '\0';
    assert_int_equal(prov_record_encode(&c, NULL, NULL, rec, err, sizeof err), 0);
    prov_record_t d;
    const char *why;
    assert_int_equal(prov_record_decode(rec, &d, &why), 0);
    assert_string_equal(d.serial, "");
    assert_string_equal(d.model, "");
    assert_int_equal(strlen(d.fqdn), 253);
    prov_cred_wipe(&c);
}

int main(void)
{
    vec = vectors_load(RECORD_VECTORS);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_check_values),
        cmocka_unit_test(test_record_vectors),
        cmocka_unit_test(test_record_damage_refused),
        cmocka_unit_test(test_record_encode_limits),
    };
    int rc = cmocka_run_group_tests_name("provisioning record", tests, NULL, NULL);
    vectors_free(vec);
    return rc;
}
