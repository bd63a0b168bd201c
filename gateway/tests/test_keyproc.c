/* Unit tests of the key process (gw_keyproc) and of a worker's client of it
 * (gw_keycli): a real forked key process over real socketpairs, asked the
 * questions of docs/vectors; the same answers as the checks made in this
 * process; a key process that dies fails the questions waiting for it. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "cmn_key.h"
#include "gw_auth.h"
#include "gw_dynparse.h"
#include "gw_err.h"
#include "gw_keycli.h"
#include "gw_keyproc.h"
#include "../../tests/unit/vectors.h"

static vectors_t *vec;
static char keydir[] = "/tmp/ddns-test-keyproc-XXXXXX";
static char keypath[300];

/* The answers of one run, in the order asked. */
#define TEST_MAX_Q 256
struct test_answers {
    int got[TEST_MAX_Q];
    size_t n;
};

static void test_answer_cb(void *arg, int answer)
{
    struct test_answers *a = arg;
    assert_true(a->n < TEST_MAX_Q);
    a->got[a->n++] = answer;
}

/* One answer slot per question (its own callback argument). */
struct test_slot {
    struct test_answers *all;
    int *where;
};

static void test_slot_cb(void *arg, int answer)
{
    struct test_slot *s = arg;
    *s->where = answer;
    test_answer_cb(s->all, answer);
}

static const vectors_rec_t *test_derive_k1(void)
{
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "derive"); r;
         r = vectors_next(vec, r, "derive"))
        if (strcmp(vectors_need(r, "kid"), "k1") == 0)
            return r;
    fail_msg("no derive record with kid k1");
    return NULL;
}

static void test_run_until(struct event_base *base, const struct test_answers *a, size_t want)
{
    for (int i = 0; i < 1000 && a->n < want; i++)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(a->n, want);
}

/* Every signed request of the vectors that passes the syntax and the clock:
 * the key process answers yes exactly for those the vectors call ok, and
 * so does a client that decides in this process. All questions are asked
 * before the loop runs: they leave in one write and come back in order. */
static void test_key_process_answers_the_vectors(void **state)
{
    (void)state;
    gw_keyproc_t kp;
    char text[256];
    assert_int_equal(gw_keyproc_start(&kp, 2, NULL, NULL), GW_OK);
    assert_int_equal(gw_keyproc_ask(&kp, GW_KP_KIDS, NULL, text, sizeof text), 0);
    assert_int_equal(gw_keyproc_ask(&kp, GW_KP_LOAD, keydir, text, sizeof text), 1);
    assert_string_equal(text, "k1");
    assert_int_equal(gw_keyproc_ask(&kp, GW_KP_KIDS, NULL, text, sizeof text), 1);
    assert_string_equal(text, "k1");

    char err[256];
    cmn_keyset_t *ks = cmn_keyset_load_dir(keydir, err, sizeof err);
    assert_non_null(ks);
    struct event_base *base = event_base_new();
    gw_keycli_t *cli = gw_keycli_new(base, kp.worker_fd[1]);
    gw_keycli_t *here = gw_keycli_new_inline(ks);
    assert_non_null(cli);
    assert_non_null(here);

    struct test_answers procs = {0}, inl = {0};
    int want[TEST_MAX_Q];
    size_t asked = 0;
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "verify"); r;
         r = vectors_next(vec, r, "verify")) {
        const char *body = vectors_need(r, "body");
        gw_auth_result_t ar;
        gw_auth_signed_t s;
        if (gw_auth_prepare(vectors_need(r, "authorization"), (const uint8_t *)body, strlen(body),
                            strtoll(vectors_need(r, "server_time"), NULL, 10),
                            strtoll(vectors_need(r, "skew"), NULL, 10), &ar, &s) != 0)
            continue;
        assert_true(asked < TEST_MAX_Q);
        want[asked++] = strcmp(vectors_need(r, "expect"), "ok") == 0;
        assert_int_equal(gw_keycli_signature(cli, ar.kid, strlen(ar.kid), ar.generation,
                                             ar.device_id, s.sts, s.sts_len, s.sig,
                                             test_answer_cb, &procs), GW_OK);
        assert_int_equal(gw_keycli_signature(here, ar.kid, strlen(ar.kid), ar.generation,
                                             ar.device_id, s.sts, s.sts_len, s.sig,
                                             test_answer_cb, &inl), GW_OK);
    }
    assert_true(asked >= 5);
    assert_int_equal(inl.n, asked);             /* inline: answered at once */
    assert_int_equal(procs.n, 0);               /* nothing before the loop runs */
    assert_int_equal(gw_keycli_waiting(cli), asked);
    test_run_until(base, &procs, asked);
    size_t yes = 0;
    for (size_t i = 0; i < asked; i++) {
        assert_int_equal(procs.got[i], want[i]);
        assert_int_equal(inl.got[i], want[i]);
        yes += (size_t)want[i];
    }
    assert_true(yes > 0 && yes < asked);
    gw_keycli_free(here);
    gw_keycli_free(cli);
    event_base_free(base);
    cmn_keyset_free(ks);
    gw_keyproc_stop(&kp);
    assert_int_equal(kp.pid, -1);
}

/* dyndns2: every Basic password of the vectors that parses is right
 * exactly when the vectors say ok (both generations, the signing secret of
 * a generation >= 1 refused); the legacy password (the generation 0
 * secret) with one changed bit, an unknown key id or another device is
 * not. */
static void test_key_process_checks_secrets(void **state)
{
    (void)state;
    const vectors_rec_t *r = test_derive_k1();
    size_t len;
    unsigned char *secret = vectors_hex(r, "secret_hex", &len);
    const char *dev = vectors_need(r, "device_id");
    char other[CMN_DEVICE_ID_LEN + 1], text[256];
    snprintf(other, sizeof other, "%s", dev);
    other[11] = other[11] == '2' ? '4' : '2';
    gw_keyproc_t kp;
    assert_int_equal(gw_keyproc_start(&kp, 1, NULL, NULL), GW_OK);
    assert_int_equal(gw_keyproc_ask(&kp, GW_KP_LOAD, keydir, text, sizeof text), 1);
    struct event_base *base = event_base_new();
    gw_keycli_t *cli = gw_keycli_new(base, kp.worker_fd[0]);
    struct test_answers a = {0};
    int got[4];
    struct test_slot slot[4];
    for (int i = 0; i < 4; i++)
        slot[i] = (struct test_slot){&a, &got[i]};
    assert_int_equal(gw_keycli_password(cli, "k1", 2, 0, dev, secret, test_slot_cb, &slot[0]), GW_OK);
    secret[5] ^= 0x10;
    assert_int_equal(gw_keycli_password(cli, "k1", 2, 0, dev, secret, test_slot_cb, &slot[1]), GW_OK);
    secret[5] ^= 0x10;
    assert_int_equal(gw_keycli_password(cli, "k9", 2, 0, dev, secret, test_slot_cb, &slot[2]), GW_OK);
    assert_int_equal(gw_keycli_password(cli, "k1", 2, 0, other, secret, test_slot_cb, &slot[3]),
                     GW_OK);
    test_run_until(base, &a, 4);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 0);
    assert_int_equal(got[2], 0);
    assert_int_equal(got[3], 0);

    struct test_answers v = {0};
    int want[TEST_MAX_Q];
    size_t asked = 0, yes = 0;
    for (const vectors_rec_t *d = vectors_next(vec, NULL, "dyndns2"); d;
         d = vectors_next(vec, d, "dyndns2")) {
        gw_dyn_cred_t cred;
        if (gw_dyn_parse_basic(vectors_need(d, "authorization"), &cred) != 0)
            continue;
        want[asked] = strcmp(vectors_need(d, "expect"), "ok") == 0;
        yes += (size_t)want[asked++];
        assert_int_equal(gw_keycli_password(cli, cred.kid, strlen(cred.kid), cred.generation,
                                            cred.device_id, cred.password, test_answer_cb, &v),
                         GW_OK);
    }
    assert_true(yes >= 2 && yes < asked);
    test_run_until(base, &v, asked);
    for (size_t i = 0; i < asked; i++)
        assert_int_equal(v.got[i], want[i]);
    gw_keycli_free(cli);
    event_base_free(base);
    gw_keyproc_stop(&kp);
    free(secret);
}

/* A key directory the key process cannot load: -1 and its reason; the keys
 * it holds stay. */
static void test_key_process_refuses_a_bad_directory(void **state)
{
    (void)state;
    gw_keyproc_t kp;
    char text[512];
    assert_int_equal(gw_keyproc_start(&kp, 1, NULL, NULL), GW_OK);
    assert_int_equal(gw_keyproc_ask(&kp, GW_KP_LOAD, keydir, text, sizeof text), 1);
    assert_int_equal(gw_keyproc_ask(&kp, GW_KP_LOAD, "/nonexistent/keys", text, sizeof text),
                     -1);
    assert_non_null(strstr(text, "/nonexistent/keys"));
    assert_int_equal(gw_keyproc_ask(&kp, GW_KP_KIDS, NULL, text, sizeof text), 1);
    assert_string_equal(text, "k1");
    gw_keyproc_stop(&kp);
}

/* The key process dies with questions waiting: each gets -1, and later
 * questions are refused at once. */
static void test_questions_fail_when_the_key_process_dies(void **state)
{
    (void)state;
    const vectors_rec_t *r = test_derive_k1();
    size_t len;
    unsigned char *secret = vectors_hex(r, "secret_hex", &len);
    gw_keyproc_t kp;
    char text[256];
    assert_int_equal(gw_keyproc_start(&kp, 1, NULL, NULL), GW_OK);
    assert_int_equal(gw_keyproc_ask(&kp, GW_KP_LOAD, keydir, text, sizeof text), 1);
    struct event_base *base = event_base_new();
    gw_keycli_t *cli = gw_keycli_new(base, kp.worker_fd[0]);
    struct test_answers a = {0};
    assert_int_equal(kill(kp.pid, SIGKILL), 0);
    assert_int_equal(gw_keycli_password(cli, "k1", 2, 0, vectors_need(r, "device_id"), secret,
                                      test_answer_cb, &a), GW_OK);
    test_run_until(base, &a, 1);
    assert_int_equal(a.got[0], -1);
    assert_int_equal(gw_keycli_password(cli, "k1", 2, 0, vectors_need(r, "device_id"), secret,
                                      test_answer_cb, &a), GW_EIO);
    gw_keycli_free(cli);
    event_base_free(base);
    gw_keyproc_stop(&kp);
    free(secret);
}

static int test_setup(void **state)
{
    (void)state;
    char err[512];
    size_t len;
    vec = vectors_load(NULL);
    if (vec == NULL || mkdtemp(keydir) == NULL)
        return -1;
    const vectors_rec_t *r = test_derive_k1();
    unsigned char *mk = vectors_hex(r, "master_key_hex", &len);
    cmn_master_key_t k = {0};
    strcpy(k.kid, "k1");
    strcpy(k.created, "2026-11-21T10:00:00Z");
    memcpy(k.key, mk, CMN_KEY_LEN);
    free(mk);
    snprintf(keypath, sizeof keypath, "%s/k1.key", keydir);
    int rc = cmn_keyfile_write(keypath, &k, err, sizeof err);
    cmn_wipe(&k, sizeof k);
    return rc;
}

static int test_teardown(void **state)
{
    (void)state;
    unlink(keypath);
    rmdir(keydir);
    vectors_free(vec);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_process_answers_the_vectors),
        cmocka_unit_test(test_key_process_checks_secrets),
        cmocka_unit_test(test_key_process_refuses_a_bad_directory),
        cmocka_unit_test(test_questions_fail_when_the_key_process_dies),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("gw_keyproc", tests, test_setup, test_teardown);
}
