/* Unit tests of the provisioning tool's credential code: the derive and mac
 * records of docs/vectors/protocol-vectors.txt, the JSON record for
 * flashing, hostname label and zone rules, random labels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "prov_cred.h"
#include "prov_out.h"
#include "../../tests/unit/vectors.h"

static vectors_t *vec;

static void test_derive_vectors_json(void **state)
{
    (void)state;
    size_t n = 0;
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "derive"); r; r = vectors_next(vec, r, "derive")) {
        size_t klen;
        unsigned char *mk = vectors_hex(r, "master_key_hex", &klen);
        cmn_master_key_t key = {0};
        snprintf(key.kid, sizeof key.kid, "%s", vectors_need(r, "kid"));
        memcpy(key.key, mk, CMN_KEY_LEN);
        prov_cred_t c;
        memset(&c, 0, sizeof c);
        char err[256];
        /* enter the MAC in the colon form a person would type */
        const char *d = vectors_need(r, "device_id");
        char mac[18];
        uint32_t gen = (uint32_t)strtoul(vectors_need(r, "generation"), NULL, 10);
        snprintf(mac, sizeof mac, "%.2s:%.2s:%.2s:%.2s:%.2s:%.2s", d, d + 2, d + 4, d + 6, d + 8, d + 10);
        assert_int_equal(prov_cred_derive(&c, mac, &key, gen, err, sizeof err), 0);
        assert_string_equal(c.kid, vectors_need(r, "kid"));
        assert_string_equal(c.keyref, vectors_need(r, "key_ref"));
        strcpy(c.label, "cam1");
        strcpy(c.zone, "ddns.example.test");
        char *json = prov_cred_json(&c, "SN1", NULL);
        assert_non_null(json);
        json_error_t jerr;
        json_t *o = json_loads(json, 0, &jerr);
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "device_id")), d);
        /* what the device stores as its kid: the key reference */
        assert_string_equal(json_string_value(json_object_get(o, "kid")), vectors_need(r, "key_ref"));
        assert_int_equal(json_integer_value(json_object_get(o, "generation")), gen);
        assert_string_equal(json_string_value(json_object_get(o, "secret")), vectors_need(r, "secret_b64u"));
        assert_string_equal(json_string_value(json_object_get(o, "password")), vectors_need(r, "password"));
        assert_string_equal(json_string_value(json_object_get(o, "fqdn")), "cam1.ddns.example.test");
        assert_string_equal(json_string_value(json_object_get(o, "serial")), "SN1");
        assert_null(json_object_get(o, "model"));
        json_decref(o);
        free(json);
        /* the JSON lines output of a batch is the same object */
        char line[PROV_OUT_MAX];
        size_t len = 0;
        assert_int_equal(prov_out_format(PROV_FMT_JSONL, &c, "SN1", NULL, line, &len, err,
                                         sizeof err), 0);
        json = prov_cred_json(&c, "SN1", NULL);
        assert_int_equal(len, strlen(json) + 1);
        assert_memory_equal(line, json, strlen(json));
        free(json);
        /* the CSV output carries the key reference and both secrets */
        assert_int_equal(prov_out_format(PROV_FMT_CSV, &c, "SN1", NULL, line, &len, err,
                                         sizeof err), 0);
        char want[512];
        snprintf(want, sizeof want, "%s,%s,%s,%s,cam1.ddns.example.test,SN1,\n", d,
                 vectors_need(r, "key_ref"), vectors_need(r, "secret_b64u"),
                 vectors_need(r, "password"));
        assert_int_equal(len, strlen(want));
        assert_memory_equal(line, want, len);
        prov_cred_wipe(&c);
        free(mk);
        n++;
    }
    assert_true(n >= 12);
}

/* Another generation of the same device is another secret and password. */
static void test_regenerate(void **state)
{
    (void)state;
    cmn_master_key_t key = {0};
    prov_cred_t a, b;
    char err[256];
    strcpy(key.kid, "k1");
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    assert_int_equal(prov_cred_derive(&a, "3c:5a:b4:f0:9a:21", &key, 1, err, sizeof err), 0);
    assert_int_equal(prov_cred_derive(&b, "3c:5a:b4:f0:9a:21", &key, 1, err, sizeof err), 0);
    assert_int_equal(prov_cred_regenerate(&b, &key, 2, err, sizeof err), 0);
    assert_string_equal(b.keyref, "k1/2");
    assert_int_equal(b.generation, 2);
    assert_string_not_equal(a.secret_b64, b.secret_b64);
    assert_string_not_equal(a.password + 5, b.password + 5);
    assert_int_equal(prov_cred_regenerate(&b, &key, 1, err, sizeof err), 0);
    assert_string_equal(a.secret_b64, b.secret_b64);
    assert_string_equal(a.password, b.password);
    assert_int_equal(prov_cred_regenerate(&b, &key, CMN_GENERATION_MAX + 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "generation"));
    prov_cred_wipe(&a);
    prov_cred_wipe(&b);
}

static void test_mac_vectors_refused(void **state)
{
    (void)state;
    cmn_master_key_t key = {0};
    strcpy(key.kid, "k1");
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "mac"); r; r = vectors_next(vec, r, "mac")) {
        const char *in = vectors_need(r, "input");
        prov_cred_t c;
        char err[256] = "";
        memset(&c, 0, sizeof c);
        int rc = prov_cred_derive(&c, in, &key, PROV_GENERATION_NEW, err, sizeof err);
        if (vectors_get(r, "device_id") != NULL) {
            assert_int_equal(rc, 0);
            assert_string_equal(c.device_id, vectors_get(r, "device_id"));
        } else {
            assert_int_equal(rc, -1);
            /* the message names the MAC and says why */
            assert_non_null(strstr(err, "MAC '"));
            const char *why = vectors_need(r, "error");
            if (strcmp(why, "syntax") == 0)
                assert_non_null(strstr(err, "not a MAC address"));
            else
                assert_non_null(strstr(err, why));
        }
    }
}

static void test_labels_and_zones(void **state)
{
    (void)state;
    char out[PROV_ZONE_MAX + 1], err[256];
    assert_int_equal(prov_label_check("Cam-Front1", out, err, sizeof err), 0);
    assert_string_equal(out, "cam-front1");
    assert_int_equal(prov_label_check("-cam", out, err, sizeof err), -1);
    assert_non_null(strstr(err, "'-cam'"));
    assert_int_equal(prov_label_check("cam_1", out, err, sizeof err), -1);
    assert_int_equal(prov_label_check("cam.1", out, err, sizeof err), -1);
    assert_int_equal(prov_label_check("", out, err, sizeof err), -1);
    char long_label[80];
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    assert_int_equal(prov_label_check(long_label, out, err, sizeof err), -1);
    long_label[63] = '\0';
    assert_int_equal(prov_label_check(long_label, out, err, sizeof err), 0);

    assert_int_equal(prov_zone_check("DDNS.Example.TEST.", out, err, sizeof err), 0);
    assert_string_equal(out, "ddns.example.test");
    assert_int_equal(prov_zone_check("ddns..example", out, err, sizeof err), -1);
    assert_int_equal(prov_zone_check(".", out, err, sizeof err), -1);
    assert_int_equal(prov_zone_check("bad_zone.test", out, err, sizeof err), -1);
}

static void test_random_labels(void **state)
{
    (void)state;
    char a[PROV_LABEL_MAX + 1], b[PROV_LABEL_MAX + 1], chk[PROV_LABEL_MAX + 1], err[128];
    assert_int_equal(prov_label_random("d", a), 0);
    assert_int_equal(prov_label_random("d", b), 0);
    assert_int_equal(strlen(a), 14);
    assert_int_equal(a[0], 'd');
    assert_string_not_equal(a, b);
    assert_int_equal(prov_label_check(a, chk, err, sizeof err), 0);
    assert_string_equal(chk, a);
    for (const char *p = a + 1; *p; p++)
        assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", *p));
}

int main(void)
{
    vec = vectors_load(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derive_vectors_json),
        cmocka_unit_test(test_regenerate),
        cmocka_unit_test(test_mac_vectors_refused),
        cmocka_unit_test(test_labels_and_zones),
        cmocka_unit_test(test_random_labels),
    };
    int rc = cmocka_run_group_tests_name("provisioning", tests, NULL, NULL);
    vectors_free(vec);
    return rc;
}
