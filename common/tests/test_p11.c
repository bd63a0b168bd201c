/* Unit tests of master keys in a PKCS#11 token (cmn_p11, cmn_keyset_load_p11)
 * against SoftHSM2 from Debian's packages, with a token of its own in a
 * temporary directory (SOFTHSM2_CONF): token URIs, good and bad, and their
 * messages; the derivation vectors of docs/vectors/protocol-vectors.txt
 * computed by the token with the vectors' master keys imported into it;
 * keys generated in the token, which cannot be read out; which token keys
 * a key set takes or refuses; wrong PIN, missing token, missing object,
 * unsafe PIN file; many threads at once; a forked child. Where SoftHSM2 is
 * missing every test is skipped and the reason left for test-unit's
 * summary. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <p11-kit/pkcs11.h>

#include "cmn_key.h"
#include "cmn_p11.h"
#include "../../tests/unit/vectors.h"

#define PIN "3141-5926"
#define TOKEN "ddns-unit"

static const char *const module_paths[] = {
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
};

static vectors_t *vec;
static char skip_reason[256];
static char dir[64] = "/tmp/ddns-test-p11-XXXXXX";
static char pinfile[128];
static const char *module;

/* The URI of the test token with more attributes (may be empty). */
static const char *uri_with(const char *path_extra, const char *query_extra)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "pkcs11:token=" TOKEN "%s?module-path=%s&pin-source=%s%s",
             path_extra, module, pinfile, query_extra);
    return buf;
}

/* A token of its own in a temporary directory. */
static int setup(void **state)
{
    (void)state;
    char conf[128], cmd[512];
    for (size_t i = 0; i < sizeof module_paths / sizeof module_paths[0] && module == NULL; i++)
        if (access(module_paths[i], R_OK) == 0)
            module = module_paths[i];
    if (module == NULL) {
        snprintf(skip_reason, sizeof skip_reason, "SoftHSM2's PKCS#11 module (libsofthsm2.so, "
                 "Debian package softhsm2) is not installed");
        return 0;
    }
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(conf, sizeof conf, "%s/softhsm2.conf", dir);
    snprintf(pinfile, sizeof pinfile, "%s/token.pin", dir);
    snprintf(cmd, sizeof cmd, "%s/tokens", dir);
    FILE *f = fopen(conf, "w");
    if (f == NULL || mkdir(cmd, 0700) != 0)
        return -1;
    fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = "
            "ERROR\nslots.removable = false\n", dir);
    fclose(f);
    setenv("SOFTHSM2_CONF", conf, 1);
    snprintf(cmd, sizeof cmd, "softhsm2-util --init-token --free --label " TOKEN " --pin " PIN
             " --so-pin 2718-2818 >/dev/null");
    if (system(cmd) != 0) {
        snprintf(skip_reason, sizeof skip_reason, "softhsm2-util --init-token failed");
        return 0;
    }
    int fd = open(pinfile, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, PIN "\n", strlen(PIN) + 1) != (ssize_t)strlen(PIN) + 1)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    if (strchr(dir, 'X') == NULL) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

#define NEED_TOKEN() do { if (module == NULL || skip_reason[0]) skip(); } while (0)

static cmn_p11_token_t *open_token(int rw)
{
    cmn_p11_uri_t u;
    char err[512];
    assert_int_equal(cmn_p11_uri_parse(uri_with("", ""), &u, err, sizeof err), 0);
    cmn_p11_token_t *t = cmn_p11_open(&u, rw, err, sizeof err);
    if (t == NULL)
        fail_msg("%s", err);
    cmn_p11_uri_clear(&u);
    return t;
}

/* URIs: what is understood, and what is refused with which message. */
static void test_uri_parse(void **state)
{
    (void)state;
    cmn_p11_uri_t u;
    char err[512];
    assert_int_equal(cmn_p11_uri_parse("pkcs11:token=dd%20ns;object=k1;type=secret-key;"
                                       "serial=0a1b;slot-id=7?module-path=/usr/lib/x.so"
                                       "&pin-source=file:///etc/ddns/pin", &u, err,
                                       sizeof err), 0);
    assert_string_equal(u.token, "dd ns");
    assert_string_equal(u.object, "k1");
    assert_string_equal(u.serial, "0a1b");
    assert_int_equal(u.slot_id, 7);
    assert_string_equal(u.module_path, "/usr/lib/x.so");
    assert_string_equal(u.pin_source, "/etc/ddns/pin");
    assert_int_equal(u.has_pin_value, 0);
    assert_int_equal(cmn_p11_uri_parse("PKCS11:?module-path=/m.so&pin-value=12%2634", &u, err,
                                       sizeof err), 0);
    assert_string_equal(u.token, "");
    assert_int_equal(u.slot_id, -1);
    assert_int_equal(u.has_pin_value, 1);
    assert_string_equal(u.pin_value, "12&34");
    cmn_p11_uri_clear(&u);

    static const struct { const char *uri, *says; } bad[] = {
        {"http://x", "must start with 'pkcs11:'"},
        {"pkcs11:token=ddns", "no module-path"},
        {"pkcs11:tokn=ddns?module-path=/m.so", "unknown attribute 'tokn'"},
        {"pkcs11:token=ddns?module-path=/m.so&pin-sorce=/p", "unknown attribute 'pin-sorce'"},
        {"pkcs11:token=a;token=b?module-path=/m.so", "'token' is given twice"},
        {"pkcs11:token=a%2?module-path=/m.so", "'token': bad %-escape"},
        {"pkcs11:token=a%0a?module-path=/m.so", "'token': bad %-escape"},
        {"pkcs11:token=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?module-path=/m.so", "'token': longer than 32"},
        {"pkcs11:type=private?module-path=/m.so", "type=secret-key"},
        {"pkcs11:slot-id=x1?module-path=/m.so", "'slot-id': 'x1' is not a slot number"},
        {"pkcs11:token=?module-path=/m.so", "'token' is empty"},
        {"pkcs11:token=a;;object=b?module-path=/m.so", "an empty attribute in the path"},
        {"pkcs11:token?module-path=/m.so", "'token' has no '=value'"},
        {"pkcs11:module-path=/m.so", "'module-path' belongs in the query"},
        {"pkcs11:token=a?object=k1&module-path=/m.so", "'object' belongs in the path"},
        {"pkcs11:token=a?module-path=m.so", "not an absolute path"},
        {"pkcs11:token=a?module-name=softhsm2", "module-name is not supported"},
        {"pkcs11:token=a?module-path=/m.so&pin-source=|/bin/pin", "not supported: name a file"},
        {"pkcs11:token=a?module-path=/m.so&pin-source=/p&pin-value=secret99", "exclude each other"},
        {"pkcs11:token=a?module-path=/m.so&pin-value=secret99&pin-value=secret99", "given twice"},
        {"pkcs11:token=a#frag?module-path=/m.so", "no '#' fragment"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (cmn_p11_uri_parse(bad[i].uri, &u, err, sizeof err) != -1)
            fail_msg("accepted: %s", bad[i].uri);
        if (strstr(err, bad[i].says) == NULL)
            fail_msg("%s: message '%s' does not say '%s'", bad[i].uri, err, bad[i].says);
        assert_null(strstr(err, "secret99"));
    }
}

/* The derivation vectors, computed by the token: each vector's master key
 * imported (sensitive, not extractable) under its key id. */
static void test_vectors_through_the_token(void **state)
{
    (void)state;
    NEED_TOKEN();
    char err[512];
    cmn_p11_token_t *t = open_token(1);
    size_t n = 0;
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "derive"); r;
         r = vectors_next(vec, r, "derive")) {
        size_t klen;
        const char *kid = vectors_need(r, "kid");
        cmn_p11_key_t *have = NULL;
        size_t nhave = 0;
        assert_int_equal(cmn_p11_list(t, kid, &have, &nhave, err, sizeof err), 0);
        free(have);
        if (nhave > 0)
            continue;
        unsigned char *mk = vectors_hex(r, "master_key_hex", &klen);
        unsigned long h;
        if (cmn_p11_keygen(t, kid, "2026-01-02T03:04:05Z", mk, klen, &h, err, sizeof err) != 0)
            fail_msg("%s", err);
        free(mk);
    }
    cmn_p11_close(t);

    cmn_keyset_t *ks = cmn_keyset_load_p11(uri_with("", ""), err, sizeof err);
    if (ks == NULL)
        fail_msg("%s", err);
    assert_string_equal(cmn_keyset_token_label(ks), TOKEN);
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "derive"); r;
         r = vectors_next(vec, r, "derive")) {
        size_t slen;
        const char *kid = vectors_need(r, "kid"), *dev = vectors_need(r, "device_id");
        unsigned char *want = vectors_hex(r, "secret_hex", &slen);
        uint8_t secret[CMN_SECRET_LEN];
        const cmn_master_key_t *key = cmn_keyset_find(ks, kid, strlen(kid));
        assert_non_null(key);
        assert_true(cmn_key_in_token(key));
        assert_string_equal(key->created, "2026-01-02T03:04:05Z");
        for (size_t i = 0; i < CMN_KEY_LEN; i++)
            assert_int_equal(key->key[i], 0);   /* the bytes stay in the token */
        uint32_t gen = (uint32_t)strtoul(vectors_need(r, "generation"), NULL, 10);
        assert_int_equal(cmn_derive_secret(key, kid, strlen(kid), dev, strlen(dev), gen, secret),
                         0);
        assert_memory_equal(secret, want, CMN_SECRET_LEN);
        free(want);
        n++;
    }
    assert_true(n >= 2);
    /* the stand-in for an unknown key id is computed by the token too */
    const cmn_master_key_t *standin = cmn_keyset_standin(ks);
    assert_true(cmn_key_in_token(standin));
    uint8_t a[CMN_SECRET_LEN], b[CMN_SECRET_LEN];
    assert_int_equal(cmn_derive_secret(standin, "k9", 2, "3c5ab4f09a21", 12, 0, a), 0);
    assert_int_equal(cmn_derive_secret(cmn_keyset_find(ks, "k1", 2), "k9", 2, "3c5ab4f09a21",
                                       12, 0, b), 0);
    assert_memory_not_equal(a, b, CMN_SECRET_LEN);
    cmn_keyset_free(ks);

    /* object= selects one key */
    ks = cmn_keyset_load_p11(uri_with(";object=k2026b", ""), err, sizeof err);
    assert_non_null(ks);
    assert_int_equal(cmn_keyset_count(ks), 1);
    assert_string_equal(cmn_keyset_at(ks, 0)->kid, "k2026b");
    cmn_keyset_free(ks);
}

/* The raw module, for what the tests check behind cmn_p11's back. */
static CK_FUNCTION_LIST_PTR raw_module(void)
{
    void *dl = dlopen(module, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    CK_C_GetFunctionList get;
    CK_FUNCTION_LIST_PTR f = NULL;
    assert_non_null(dl);
    *(void **)&get = dlsym(dl, "C_GetFunctionList");
    assert_non_null(get);
    assert_int_equal(get(&f), CKR_OK);
    dlclose(dl);
    return f;
}

/* A key generated in the token: found by the key set, newest, and its
 * value cannot be read (CKR_ATTRIBUTE_SENSITIVE); an extractable key in
 * the same token is refused by name. */
static void test_keygen_and_the_rules(void **state)
{
    (void)state;
    NEED_TOKEN();
    char err[512];
    unsigned long h, hx;
    cmn_p11_token_t *t = open_token(1);
    assert_int_equal(cmn_p11_keygen(t, "kgen", "2030-05-06T07:08:09Z", NULL, 0, &h, err, sizeof err), 0);
    /* someone else's secret key with a label that is no key id is left alone */
    assert_int_equal(cmn_p11_keygen(t, "Other App", NULL, NULL, 0, &hx, err, sizeof err), 0);
    cmn_p11_key_t *keys;
    size_t n;
    assert_int_equal(cmn_p11_list(t, "kgen", &keys, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(keys[0].sensitive, 1);
    assert_int_equal(keys[0].extractable, 0);
    assert_int_equal(keys[0].sign, 1);
    assert_int_equal(keys[0].local, 1);
    assert_int_equal(keys[0].generic, 1);
    assert_int_equal(keys[0].value_len, 32);
    assert_string_equal(keys[0].created, "2030-05-06T07:08:09Z");
    free(keys);

    CK_FUNCTION_LIST_PTR f = raw_module();
    CK_SESSION_HANDLE s;
    CK_SLOT_ID slots[8];
    CK_ULONG ns = 8;
    assert_int_equal(f->C_GetSlotList(CK_TRUE, slots, &ns), CKR_OK);
    assert_int_equal(f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                      &s), CKR_OK);
    uint8_t value[32];
    CK_ATTRIBUTE va = {CKA_VALUE, value, sizeof value};
    assert_int_equal(f->C_GetAttributeValue(s, h, &va, 1), CKR_ATTRIBUTE_SENSITIVE);

    cmn_keyset_t *ks = cmn_keyset_load_p11(uri_with("", ""), err, sizeof err);
    assert_non_null(ks);
    assert_string_equal(cmn_keyset_newest(ks)->kid, "kgen");
    assert_null(cmn_keyset_find(ks, "Other App", 9));
    cmn_keyset_free(ks);
    /* object= naming someone else's key: refused with the reason */
    assert_null(cmn_keyset_load_p11(uri_with(";object=Other%20App", ""), err, sizeof err));
    assert_non_null(strstr(err, "its label is not a key id"));

    /* an extractable key with a key id label */
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_TOKEN, &yes, sizeof yes}, {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SIGN, &yes, sizeof yes}, {CKA_EXTRACTABLE, &yes, sizeof yes},
        {CKA_LABEL, "kleak", 5}, {CKA_VALUE, value, sizeof value},
    };
    CK_OBJECT_HANDLE hl;
    memset(value, 7, sizeof value);
    assert_int_equal(f->C_CreateObject(s, tmpl, sizeof tmpl / sizeof tmpl[0], &hl), CKR_OK);
    assert_null(cmn_keyset_load_p11(uri_with("", ""), err, sizeof err));
    assert_non_null(strstr(err, "key 'kleak' can be read out of the token"));
    assert_int_equal(f->C_DestroyObject(s, hl), CKR_OK);
    assert_int_equal(f->C_CloseSession(s), CKR_OK);
    cmn_p11_close(t);
}

/* What goes wrong names what is wrong, and never the PIN. */
static void test_errors_name_the_problem(void **state)
{
    (void)state;
    NEED_TOKEN();
    char err[512], uri[1024], wrong[160];

    snprintf(uri, sizeof uri, "pkcs11:token=no-such-token?module-path=%s&pin-source=%s",
             module, pinfile);
    assert_null(cmn_keyset_load_p11(uri, err, sizeof err));
    assert_non_null(strstr(err, "no token labelled 'no-such-token'"));
    assert_non_null(strstr(err, "'" TOKEN "'"));   /* the tokens present */

    assert_null(cmn_keyset_load_p11(uri_with(";object=k404", ""), err, sizeof err));
    assert_non_null(strstr(err, "holds no key labelled 'k404'"));

    snprintf(wrong, sizeof wrong, "%s/wrong.pin", dir);
    int fd = open(wrong, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0 && write(fd, "9999-9999\n", 10) == 10);
    close(fd);
    snprintf(uri, sizeof uri, "pkcs11:token=" TOKEN "?module-path=%s&pin-source=%s", module,
             wrong);
    assert_null(cmn_keyset_load_p11(uri, err, sizeof err));
    assert_non_null(strstr(err, "refused the PIN"));
    assert_non_null(strstr(err, "CKR_PIN_INCORRECT"));
    assert_null(strstr(err, "9999"));
    snprintf(uri, sizeof uri, "pkcs11:token=" TOKEN "?module-path=%s&pin-value=8888-7777", module);
    assert_null(cmn_keyset_load_p11(uri, err, sizeof err));
    assert_non_null(strstr(err, "refused the PIN from pin-value"));
    assert_null(strstr(err, "8888"));
    /* while the process is logged in, the token does not look at a PIN
     * given again: the one that logged in is compared instead */
    cmn_keyset_t *in = cmn_keyset_load_p11(uri_with("", ""), err, sizeof err);
    assert_non_null(in);
    assert_null(cmn_keyset_load_p11(uri, err, sizeof err));
    assert_non_null(strstr(err, "differs from the one this process logged in with"));
    assert_null(strstr(err, "8888"));
    cmn_keyset_t *again = cmn_keyset_load_p11(uri_with("", ""), err, sizeof err);
    assert_non_null(again);
    cmn_keyset_free(again);
    cmn_keyset_free(in);

    assert_int_equal(chmod(wrong, 0640), 0);
    snprintf(uri, sizeof uri, "pkcs11:token=" TOKEN "?module-path=%s&pin-source=%s", module,
             wrong);
    assert_null(cmn_keyset_load_p11(uri, err, sizeof err));
    assert_non_null(strstr(err, "accessible by group or others (mode 0640)"));
    unlink(wrong);
    assert_null(cmn_keyset_load_p11(uri, err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));

    snprintf(uri, sizeof uri, "pkcs11:token=" TOKEN "?module-path=%s", module);
    assert_null(cmn_keyset_load_p11(uri, err, sizeof err));
    assert_non_null(strstr(err, "needs a PIN"));

    snprintf(uri, sizeof uri, "pkcs11:token=" TOKEN "?module-path=%s/none.so", dir);
    assert_null(cmn_keyset_load_p11(uri, err, sizeof err));
    assert_non_null(strstr(err, "cannot load the PKCS#11 module"));
}

typedef struct worker {
    const cmn_keyset_t *ks;
    int rounds, bad;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    const cmn_master_key_t *k = cmn_keyset_find(w->ks, "k1", 2);
    static const uint8_t raw[CMN_KEY_LEN] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                             15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
                                             27, 28, 29, 30, 31};
    for (int i = 0; i < w->rounds; i++) {
        char dev[13];
        uint8_t got[CMN_SECRET_LEN], want[CMN_SECRET_LEN], msg[64];
        unsigned int wl = 0;
        snprintf(dev, sizeof dev, "02%010x", (unsigned)i);
        if (cmn_derive_secret(k, "k1", 2, dev, 12, 0, got) != 0) {
            w->bad++;
            continue;
        }
        size_t ml = (size_t)snprintf((char *)msg, sizeof msg, "ddns-device-secret-v1%ck1%c%s",
                                     0, 0, dev);
        HMAC(EVP_sha256(), raw, sizeof raw, msg, ml, want, &wl);
        w->bad += memcmp(got, want, sizeof got) != 0;
    }
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Threads derive at once through the key set's session pool; every result
 * equals the HMAC of the same message under the raw key. */
static void test_threads(void **state)
{
    (void)state;
    NEED_TOKEN();
    char err[512];
    cmn_keyset_t *ks = cmn_keyset_load_p11(uri_with(";object=k1", ""), err, sizeof err);
    if (ks == NULL)
        fail_msg("%s (test_vectors_through_the_token imports k1)", err);
    enum { NT = 4, ROUNDS = 2000 };
    pthread_t th[NT];
    worker_t w[NT];
    double t0 = now();
    for (int i = 0; i < NT; i++) {
        w[i] = (worker_t){ks, ROUNDS, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < NT; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].bad, 0);
    }
    print_message("%d threads x %d derivations through the token: %.1f us each\n", NT, ROUNDS,
                  (now() - t0) * 1e6 / (NT * ROUNDS));
    cmn_keyset_free(ks);
}

/* A forked child opens the token again and derives; the parent's key set
 * keeps working. */
static void test_fork(void **state)
{
    (void)state;
    NEED_TOKEN();
    /* Under valgrind the child would answer for the whole heap it inherits
     * (make test-valgrind): that run leaves the fork to make test-unit. */
    const char *preload = getenv("LD_PRELOAD");
    if (preload != NULL && strstr(preload, "vgpreload") != NULL) {
        print_message("test_fork: not under valgrind (the child inherits the test's heap)\n");
        skip();
    }
    char err[512];
    uint8_t before[CMN_SECRET_LEN], after[CMN_SECRET_LEN];
    cmn_keyset_t *ks = cmn_keyset_load_p11(uri_with("", ""), err, sizeof err);
    assert_non_null(ks);
    assert_int_equal(cmn_derive_secret(cmn_keyset_find(ks, "k1", 2), "k1", 2, "3c5ab4f09a21",
                                       12, 0, before), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t child[CMN_SECRET_LEN];
        int ok = cmn_keyset_after_fork(ks, err, sizeof err) == 0 &&
                 cmn_derive_secret(cmn_keyset_find(ks, "k1", 2), "k1", 2, "3c5ab4f09a21", 12, 0,
                                   child) == 0 &&
                 memcmp(child, before, sizeof child) == 0;
        if (!ok)
            fprintf(stderr, "child: %s\n", err);
        cmn_keyset_free(ks);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(cmn_derive_secret(cmn_keyset_find(ks, "k1", 2), "k1", 2, "3c5ab4f09a21",
                                       12, 0, after), 0);
    assert_memory_equal(before, after, CMN_SECRET_LEN);
    cmn_keyset_free(ks);
}

/* test-unit's summary counts a check this machine cannot run: its reason
 * goes to the skips folder beside the test's own (BUILD/skips). */
static void leave_skip_reason(const char *argv0)
{
    char path[1024], self[1024];
    snprintf(self, sizeof self, "%s", argv0);
    snprintf(path, sizeof path, "%s/../skips", dirname(self));
    strncat(path, "/test_p11", sizeof path - strlen(path) - 1);
    if (skip_reason[0] == '\0') {
        unlink(path);
        return;
    }
    *strrchr(path, '/') = '\0';
    mkdir(path, 0755);
    strncat(path, "/test_p11", sizeof path - strlen(path) - 1);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "%s\n", skip_reason);
        fclose(f);
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    vec = vectors_load(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_parse),
        cmocka_unit_test(test_vectors_through_the_token),
        cmocka_unit_test(test_keygen_and_the_rules),
        cmocka_unit_test(test_errors_name_the_problem),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_fork),
    };
    int rc = cmocka_run_group_tests_name("p11", tests, setup, teardown);
    if (skip_reason[0] != '\0')
        printf("SKIPPED the PKCS#11 token tests: %s\n", skip_reason);
    leave_skip_reason(argv[0]);
    vectors_free(vec);
    return rc;
}
