/* Unit tests of common/: MAC canonicalisation and secret derivation against
 * docs/vectors/protocol-vectors.txt, key files and their permission rule,
 * memory for keys, base64url, admin tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmn_key.h"
#include "cmn_label.h"
#include "cmn_mac.h"
#include "cmn_secmem.h"
#include "cmn_text.h"
#include "cmn_token.h"
#include "../../tests/unit/vectors.h"

/* AddressSanitizer makes mlock a no-op that reports success. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static vectors_t *vec;

static void test_mac_vectors(void **state)
{
    (void)state;
    size_t n = 0;
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "mac"); r; r = vectors_next(vec, r, "mac")) {
        const char *in = vectors_need(r, "input");
        const char *want = vectors_get(r, "device_id");
        char out[CMN_DEVICE_ID_LEN + 1];
        int rc = cmn_mac_canon(in, strlen(in), out);
        if (want != NULL) {
            assert_int_equal(rc, CMN_MAC_OK);
            assert_string_equal(out, want);
            assert_int_equal(cmn_device_id_check(out, strlen(out)), CMN_MAC_OK);
        } else {
            assert_int_not_equal(rc, CMN_MAC_OK);
            assert_string_equal(cmn_mac_reason(rc), vectors_need(r, "error"));
        }
        n++;
    }
    assert_true(n >= 10);
}

static void test_device_id_check(void **state)
{
    (void)state;
    assert_int_equal(cmn_device_id_check("3c5ab4f09a21", 12), CMN_MAC_OK);
    assert_int_equal(cmn_device_id_check("3C5AB4F09A21", 12), CMN_MAC_SYNTAX);
    assert_int_equal(cmn_device_id_check("3d5ab4f09a21", 12), CMN_MAC_MULTICAST);
    assert_int_equal(cmn_device_id_check("000000000000", 12), CMN_MAC_ZERO);
    assert_int_equal(cmn_device_id_check("3c5ab4f09a2", 11), CMN_MAC_SYNTAX);
}

static void test_derive_vectors(void **state)
{
    (void)state;
    size_t n = 0, generations = 0;
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "derive"); r; r = vectors_next(vec, r, "derive")) {
        size_t klen, slen;
        unsigned char *mk = vectors_hex(r, "master_key_hex", &klen);
        unsigned char *want = vectors_hex(r, "secret_hex", &slen);
        const char *kid = vectors_need(r, "kid"), *dev = vectors_need(r, "device_id");
        uint32_t gen = (uint32_t)strtoul(vectors_need(r, "generation"), NULL, 10);
        uint8_t secret[CMN_SECRET_LEN];
        char b64[64], pw[CMN_PASSWORD_MAX + 1], ref[CMN_KEYREF_MAX + 1];
        cmn_master_key_t key = {0};
        assert_int_equal(klen, CMN_KEY_LEN);
        memcpy(key.key, mk, CMN_KEY_LEN);
        assert_int_equal(cmn_derive_secret(&key, kid, strlen(kid), dev, strlen(dev), gen, secret), 0);
        assert_memory_equal(secret, want, CMN_SECRET_LEN);
        assert_int_equal(cmn_b64url_encode(secret, sizeof secret, b64, sizeof b64), CMN_SECRET_B64_LEN);
        assert_string_equal(b64, vectors_need(r, "secret_b64u"));
        assert_int_equal(cmn_keyref_format(kid, gen, ref, sizeof ref),
                         (int)strlen(vectors_need(r, "key_ref")));
        assert_string_equal(ref, vectors_need(r, "key_ref"));
        assert_int_equal(cmn_password_format(kid, gen, secret, pw, sizeof pw), 0);
        assert_string_equal(pw, vectors_need(r, "password"));
        uint8_t back[CMN_SECRET_LEN], pwbytes[CMN_SECRET_LEN];
        assert_int_equal(cmn_b64url_decode(b64, strlen(b64), back, sizeof back), CMN_SECRET_LEN);
        assert_memory_equal(back, secret, CMN_SECRET_LEN);
        /* the password carries the secret in generation 0 only */
        assert_int_equal(cmn_dyndns2_password(secret, gen, pwbytes), 0);
        if (gen == 0)
            assert_memory_equal(pwbytes, secret, CMN_SECRET_LEN);
        else
            assert_memory_not_equal(pwbytes, secret, CMN_SECRET_LEN);
        generations += gen > 0;
        free(mk);
        free(want);
        n++;
    }
    assert_true(n >= 8 && generations >= 4);
}

/* Every generation gives another secret; the generation is refused past
 * its maximum, and so is a short buffer for the key reference. */
static void test_derive_generations(void **state)
{
    (void)state;
    cmn_master_key_t key = {0};
    uint8_t a[CMN_SECRET_LEN], b[CMN_SECRET_LEN];
    char ref[CMN_KEYREF_MAX + 1];
    assert_int_equal(cmn_derive_secret(&key, "k1", 2, "3c5ab4f09a21", 12, 0, a), 0);
    for (uint32_t g = 1; g < 40; g++) {
        assert_int_equal(cmn_derive_secret(&key, "k1", 2, "3c5ab4f09a21", 12, g, b), 0);
        assert_memory_not_equal(a, b, CMN_SECRET_LEN);
        memcpy(a, b, sizeof a);
    }
    assert_int_equal(cmn_derive_secret(&key, "k1", 2, "3c5ab4f09a21", 12, CMN_GENERATION_MAX, b), 0);
    assert_int_equal(cmn_derive_secret(&key, "k1", 2, "3c5ab4f09a21", 12, CMN_GENERATION_MAX + 1,
                                       b), -1);
    assert_int_equal(cmn_keyref_format("k1", CMN_GENERATION_MAX + 1, ref, sizeof ref), -1);
    assert_int_equal(cmn_keyref_format("K1", 1, ref, sizeof ref), -1);
    assert_int_equal(cmn_keyref_format("k1", 12, ref, 5), -1);
    assert_int_equal(cmn_keyref_format("k1", 12, ref, 6), 5);
    assert_string_equal(ref, "k1/12");
    assert_int_equal(cmn_keyref_format("abcdefghijklmnop", CMN_GENERATION_MAX, ref, sizeof ref),
                     CMN_KEYREF_MAX);
    assert_int_equal(cmn_dyndns2_password(a, CMN_GENERATION_MAX + 1, b), -1);
}

/* The kid field's syntax, against the keyref records. */
static void test_keyref_vectors(void **state)
{
    (void)state;
    size_t n = 0, bad = 0;
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "keyref"); r; r = vectors_next(vec, r, "keyref")) {
        const char *in = vectors_need(r, "input");
        size_t kl = 99;
        uint32_t g = 99;
        int rc = cmn_keyref_parse(in, strlen(in), &kl, &g);
        if (vectors_get(r, "error") != NULL) {
            if (rc != -1)
                fail_msg("key reference '%s' accepted", in);
            bad++;
        } else {
            if (rc != 0)
                fail_msg("key reference '%s' refused", in);
            assert_int_equal(kl, strlen(vectors_need(r, "kid")));
            assert_memory_equal(in, vectors_need(r, "kid"), kl);
            assert_int_equal(g, strtoul(vectors_need(r, "generation"), NULL, 10));
        }
        n++;
    }
    assert_true(n >= 20 && bad >= 12);
}

static void test_b64url_rejects(void **state)
{
    (void)state;
    uint8_t out[40];
    assert_int_equal(cmn_b64url_decode("ab=c", 4, out, sizeof out), -1);
    assert_int_equal(cmn_b64url_decode("ab+c", 4, out, sizeof out), -1);
    assert_int_equal(cmn_b64url_decode("a", 1, out, sizeof out), -1);
    assert_int_equal(cmn_b64url_decode("AB", 2, out, sizeof out), -1); /* non-zero leftover bits */
    assert_int_equal(cmn_b64url_decode("AA", 2, out, sizeof out), 1);
    assert_int_equal(cmn_b64url_decode("AAAAAA", 6, out, 3), -1);  /* too long for out */
    assert_false(cmn_kid_valid("", 0));
    assert_false(cmn_kid_valid("K1", 2));
    assert_false(cmn_kid_valid("k.1", 3));
    assert_false(cmn_kid_valid("abcdefghijklmnopq", 17));
    assert_true(cmn_kid_valid("abcdefghijklmnop", 16));
}

static void test_keyfile_roundtrip_and_permissions(void **state)
{
    (void)state;
    char dir[] = "/tmp/ddns-test-keys-XXXXXX";
    char path[256], path2[256], err[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/k1.key", dir);
    snprintf(path2, sizeof path2, "%s/k2.key", dir);

    cmn_master_key_t k = {0}, r;
    strcpy(k.kid, "k1");
    strcpy(k.created, "2026-11-21T10:00:00Z");
    for (int i = 0; i < CMN_KEY_LEN; i++)
        k.key[i] = (uint8_t)i;
    assert_int_equal(cmn_keyfile_write(path, &k, err, sizeof err), 0);
    /* never overwrites */
    assert_int_equal(cmn_keyfile_write(path, &k, err, sizeof err), -1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(cmn_keyfile_read(path, &r, err, sizeof err), 0);
    assert_string_equal(r.kid, "k1");
    assert_string_equal(r.created, k.created);
    assert_memory_equal(r.key, k.key, CMN_KEY_LEN);

    /* group-readable: refused, and the message names the file and no key */
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(cmn_keyfile_read(path, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "group or others"));
    assert_null(strstr(err, "000102"));
    assert_null(cmn_keyset_load_dir(dir, err, sizeof err));
    assert_int_equal(chmod(path, 0600), 0);

    /* a second key; the newest by creation time wins */
    cmn_master_key_t k2 = k;
    strcpy(k2.kid, "k2");
    strcpy(k2.created, "2026-11-22T10:00:00Z");
    assert_int_equal(cmn_keyfile_write(path2, &k2, err, sizeof err), 0);
    cmn_keyset_t *ks = cmn_keyset_load_dir(dir, err, sizeof err);
    assert_non_null(ks);
    assert_int_equal(cmn_keyset_count(ks), 2);
    assert_string_equal(cmn_keyset_newest(ks)->kid, "k2");
    assert_non_null(cmn_keyset_find(ks, "k1", 2));
    assert_null(cmn_keyset_find(ks, "k3", 2));
    cmn_keyset_free(ks);

    /* a duplicate key id in another file is an error */
    char path3[256];
    snprintf(path3, sizeof path3, "%s/copy.key", dir);
    assert_int_equal(cmn_keyfile_write(path3, &k2, err, sizeof err), 0);
    assert_null(cmn_keyset_load_dir(dir, err, sizeof err));
    assert_non_null(strstr(err, "k2"));

    /* malformed files name the line */
    FILE *f = fopen(path3, "w");
    fputs("kid = k3\nkey = 12zz\n", f);
    fclose(f);
    assert_int_equal(cmn_keyfile_read(path3, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, ":2:"));

    unlink(path);
    unlink(path2);
    unlink(path3);
    rmdir(dir);
}

/* The VmFlags of the mapping of /proc/self/smaps that holds addr into
 * flags; 0, or -1 when no mapping holds it. */
static int vmflags_of(const void *addr, char *flags, size_t flen)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int inside = 0, found = -1;
    uintptr_t a = (uintptr_t)addr;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = a >= lo && a < hi;
        else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(flags, flen, "%.250s", line + 8);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

static int has_flag(const char *flags, const char *flag)
{
    char want[8];
    snprintf(want, sizeof want, " %s", flag);
    return strstr(flags, want) != NULL;
}

/* Memory for secrets: its own pages, out of core dumps, locked when the
 * limit allows it, wiped and unmapped when freed; a key set's keys live
 * there; a process can make itself non-dumpable. */
static void test_secmem(void **state)
{
    (void)state;
    char flags[256];
    int locked = -1;
    uint8_t *p = cmn_secmem_alloc(100, &locked);
    assert_non_null(p);
    for (int i = 0; i < 100; i++)
        assert_int_equal(p[i], 0);
    memset(p, 0xa5, 100);
    assert_int_equal(vmflags_of(p, flags, sizeof flags), 0);
    assert_true(has_flag(flags, "dd"));             /* MADV_DONTDUMP */
#if !SANITIZED
    assert_int_equal(has_flag(flags, "lo"), locked); /* mlock, as reported */
#endif
    cmn_secmem_free(p, 100);
    assert_int_equal(vmflags_of(p, flags, sizeof flags), -1);
    assert_null(cmn_secmem_alloc(0, NULL));

    /* a key set's keys */
    char dir[] = "/tmp/ddns-test-secmem-XXXXXX", path[256], err[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/k1.key", dir);
    cmn_master_key_t k = {0};
    strcpy(k.kid, "k1");
    strcpy(k.created, "2026-11-21T10:00:00Z");
    assert_int_equal(cmn_keyfile_write(path, &k, err, sizeof err), 0);
    cmn_keyset_t *ks = cmn_keyset_load_dir(dir, err, sizeof err);
    assert_non_null(ks);
    assert_int_equal(vmflags_of(cmn_keyset_at(ks, 0)->key, flags, sizeof flags), 0);
    assert_true(has_flag(flags, "dd"));
    cmn_keyset_free(ks);
    unlink(path);
    rmdir(dir);

    /* non-dumpable, no core file; the runner is put back as it was (a
     * forked child would be leak-checked by valgrind at its exit) */
    struct rlimit before, rl;
    assert_int_equal(getrlimit(RLIMIT_CORE, &before), 0);
    int was = prctl(PR_GET_DUMPABLE);
    assert_int_equal(cmn_secmem_protect_process(), 0);
    assert_int_equal(prctl(PR_GET_DUMPABLE), 0);
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    assert_int_equal(rl.rlim_cur, 0);
    assert_int_equal(prctl(PR_SET_DUMPABLE, was), 0);
    (void)setrlimit(RLIMIT_CORE, &before);
}

/* Admin tokens: the form, fresh randomness each time, and the record
 * (SHA-256 of the text; the vector was computed with Python's hashlib). */
static void test_tokens(void **state)
{
    (void)state;
    char a[CMN_TOKEN_LEN + 1], b[CMN_TOKEN_LEN + 1];
    char sha_a[CMN_TOKEN_SHA_LEN + 1], sha_b[CMN_TOKEN_SHA_LEN + 1], sha[CMN_TOKEN_SHA_LEN + 1];
    assert_int_equal(cmn_token_new(a, sha_a), 0);
    assert_int_equal(cmn_token_new(b, sha_b), 0);
    assert_int_equal(strlen(a), CMN_TOKEN_LEN);
    assert_memory_equal(a, "ddnsadm_", 8);
    for (size_t i = 8; i < CMN_TOKEN_LEN; i++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                               a[i]));
    assert_string_not_equal(a, b);
    assert_string_not_equal(sha_a, sha_b);
    assert_int_equal(cmn_token_hash(a, strlen(a), sha), 0);
    assert_string_equal(sha, sha_a);
    const char *t = "ddnsadm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_int_equal(cmn_token_hash(t, strlen(t), sha), 0);
    assert_string_equal(sha, "041e32a7954593de823002a6cb296cebec7b4126508a961ed4a96bf433a5b525");
}

static void test_rtrim(void **state)
{
    (void)state;
    char a[] = "message\n\n", b[] = "x \n \n", c[] = "\n", d[] = "keep\t";
    assert_int_equal(cmn_rtrim(a, "\n"), 7);
    assert_string_equal(a, "message");
    assert_int_equal(cmn_rtrim(b, "\n "), 1);
    assert_string_equal(b, "x");
    assert_int_equal(cmn_rtrim(c, "\n"), 0);
    assert_string_equal(c, "");
    assert_int_equal(cmn_rtrim(d, "\n "), 5);
    assert_string_equal(d, "keep\t");
}

/* The reserved-label rule: the default list refuses the zone's
 * infrastructure and leaves device labels alone; lists are checked. */
static void test_reserved_labels(void **state)
{
    (void)state;
    char pat[CMN_LABEL_PATTERN_MAX + 1], err[200];
    const char *def = CMN_LABEL_RESERVED_DEFAULT;
    static const char *const refused[][2] = {
        {"ns1", "ns*"}, {"ns", "ns*"}, {"dns2", "dns*"}, {"www", "www"}, {"www2", "www[0-9]*"},
        {"mail", "mail*"}, {"mx10", "mx*"}, {"smtp", "smtp*"}, {"imap", "imap*"},
        {"autodiscover", "autodiscover"}, {"wpad", "wpad"}, {"localhost", "localhost"},
        {"_dmarc", "_*"}, {"ftp", "ftp"},
    };
    assert_int_equal(cmn_label_list_check(def, err, sizeof err), 0);
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(cmn_label_reserved(def, refused[i][0], pat, sizeof pat), 1);
        assert_string_equal(pat, refused[i][1]);
    }
    static const char *const allowed[] = {"demo-camera", "d4k5akk4xh5xsu", "cam-ns1", "wwwx",
                                          "front-door", "xmail"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        assert_int_equal(cmn_label_reserved(def, allowed[i], pat, sizeof pat), 0);
    assert_int_equal(cmn_label_reserved("", "ns1", NULL, 0), 0);
    assert_int_equal(cmn_label_reserved(" lab-*  ,x ", "lab-7", pat, sizeof pat), 1);
    assert_string_equal(pat, "lab-*");
    assert_int_equal(cmn_label_list_check("ok, Bad", err, sizeof err), -1);
    assert_non_null(strstr(err, "'Bad'"));
    assert_int_equal(cmn_label_list_check("a[b", err, sizeof err), -1);
    assert_non_null(strstr(err, "unbalanced"));
}

/* The zone question's message and the reading of its answer. */
static void test_label_query(void **state)
{
    (void)state;
    uint8_t q[512], a[64];
    char err[200];
    size_t n = cmn_label_query(0x1234, "cam.ddns.example", q, sizeof q);
    static const uint8_t want[] = {0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'c', 'a', 'm',
                                   4, 'd', 'd', 'n', 's', 7, 'e', 'x', 'a', 'm', 'p', 'l',
                                   'e', 0, 0, 1, 0, 1};
    assert_int_equal(n, sizeof want);
    assert_memory_equal(q, want, sizeof want);
    assert_int_equal(cmn_label_query(1, "a..b", q, sizeof q), 0);
    assert_int_equal(cmn_label_query(1, "", q, sizeof q), 0);
    memcpy(a, want, sizeof want);
    a[2] = 0x84;                                /* QR, AA */
    a[3] = 3;                                   /* NXDOMAIN */
    assert_int_equal(cmn_label_answer(0x1234, a, sizeof want, err, sizeof err), CMN_LABEL_FREE);
    a[3] = 0;
    assert_int_equal(cmn_label_answer(0x1234, a, sizeof want, err, sizeof err),
                     CMN_LABEL_IN_ZONE);
    a[3] = 5;
    assert_int_equal(cmn_label_answer(0x1234, a, sizeof want, err, sizeof err),
                     CMN_LABEL_NO_ANSWER);
    assert_non_null(strstr(err, "REFUSED"));
    assert_int_equal(cmn_label_answer(0x1235, a, sizeof want, err, sizeof err),
                     CMN_LABEL_NO_ANSWER);
    a[2] = 0x04;                                /* a query, not an answer */
    assert_int_equal(cmn_label_answer(0x1234, a, sizeof want, err, sizeof err),
                     CMN_LABEL_NO_ANSWER);
}

int main(void)
{
    vec = vectors_load(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mac_vectors),
        cmocka_unit_test(test_device_id_check),
        cmocka_unit_test(test_derive_vectors),
        cmocka_unit_test(test_derive_generations),
        cmocka_unit_test(test_keyref_vectors),
        cmocka_unit_test(test_b64url_rejects),
        cmocka_unit_test(test_keyfile_roundtrip_and_permissions),
        cmocka_unit_test(test_secmem),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_rtrim),
        cmocka_unit_test(test_reserved_labels),
        cmocka_unit_test(test_label_query),
    };
    int rc = cmocka_run_group_tests_name("common", tests, NULL, NULL);
    vectors_free(vec);
    return rc;
}
