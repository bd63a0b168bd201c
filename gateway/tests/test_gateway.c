/* Unit tests of the gateway: request verification (gw_auth) against every
 * verify and sign record of docs/vectors/protocol-vectors.txt, the
 * configuration parser (gw_config), the dyndns2 parsers (gw_dynparse),
 * the firmware policy (gw_policy), the peer address text (gw_checkip), the
 * PROXY header parser (gw_proxy) and the limits (gw_limit). Run from the
 * repository root. */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "../../tests/unit/vectors.h"
#include "cmn_key.h"
#include "gw_auth.h"
#include "gw_addr.h"
#include "gw_checkip.h"
#include "gw_config.h"
#include "gw_console.h"
#include "gw_dynparse.h"
#include "gw_err.h"
#include "gw_policy.h"
#include "gw_quiet.h"
#include "gw_seen.h"
#include "gw_route.h"
#include "gw_limit.h"
#include "gw_proxy.h"

static vectors_t *vec;

/* A one-key lookup: the master key of the vectors. */
struct test_key {
    cmn_master_key_t mk;
};

static const cmn_master_key_t *test_lookup(void *ctx, const char *kid, size_t kidlen)
{
    const struct test_key *k = ctx;
    if (strlen(k->mk.kid) != kidlen || memcmp(k->mk.kid, kid, kidlen) != 0)
        return NULL;
    return &k->mk;
}

static void test_key_from(const vectors_rec_t *r, struct test_key *k)
{
    size_t len;
    unsigned char *mk = vectors_hex(r, "master_key_hex", &len);
    assert_int_equal(len, CMN_KEY_LEN);
    memset(k, 0, sizeof *k);
    memcpy(k->mk.key, mk, CMN_KEY_LEN);
    free(mk);
    /* a sign record's kid is the key reference sent; key_id the key id */
    const char *kid = vectors_get(r, "key_id");
    snprintf(k->mk.kid, sizeof k->mk.kid, "%s", kid ? kid : vectors_need(r, "kid"));
}

/* The derive record of key id k1, device 3c5ab4f09a21 and generation gen. */
static const vectors_rec_t *find_derive(const char *gen)
{
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "derive"); r; r = vectors_next(vec, r, "derive"))
        if (strcmp(vectors_need(r, "kid"), "k1") == 0 &&
            strcmp(vectors_need(r, "device_id"), "3c5ab4f09a21") == 0 &&
            strcmp(vectors_need(r, "generation"), gen) == 0)
            return r;
    fail_msg("no derive record with kid k1, generation %s", gen);
    return NULL;
}

static const vectors_rec_t *find_derive_k1(void)
{
    return find_derive("0");
}

/* gw_auth_derive: the vectors' secret for a known key id; for an unknown
 * one, nobody's secret (the derivation under a zero key), and 0. */
static void test_derive_known_and_unknown_kid(void **state)
{
    (void)state;
    const cmn_master_key_t zero = {0};
    for (int g = 0; g <= 2; g += 2) {
        const vectors_rec_t *r = find_derive(g ? "2" : "0");
        struct test_key k;
        size_t len;
        uint8_t secret[CMN_SECRET_LEN], other[CMN_SECRET_LEN];
        test_key_from(r, &k);
        unsigned char *want = vectors_hex(r, "secret_hex", &len);
        const char *dev = vectors_need(r, "device_id");
        assert_int_equal(gw_auth_derive(test_lookup, &k, "k1", 2, (uint32_t)g, dev, secret), 1);
        assert_memory_equal(secret, want, CMN_SECRET_LEN);
        assert_int_equal(gw_auth_derive(test_lookup, &k, "k1", 2, (uint32_t)g + 1, dev, secret), 1);
        assert_memory_not_equal(secret, want, CMN_SECRET_LEN);
        assert_int_equal(gw_auth_derive(test_lookup, &k, "k9", 2, (uint32_t)g, dev, secret), 0);
        assert_memory_not_equal(secret, want, CMN_SECRET_LEN);
        assert_int_equal(cmn_derive_secret(&zero, "k9", 2, dev, CMN_DEVICE_ID_LEN, (uint32_t)g,
                                           other), 0);
        assert_memory_equal(secret, other, CMN_SECRET_LEN);
        free(want);
    }
}

static void test_verify_vectors(void **state)
{
    (void)state;
    struct test_key k1;
    size_t n = 0;
    test_key_from(find_derive_k1(), &k1);
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "verify"); r; r = vectors_next(vec, r, "verify")) {
        const char *name = vectors_need(r, "name");
        const char *body = vectors_need(r, "body");
        int64_t now = strtoll(vectors_need(r, "server_time"), NULL, 10);
        int64_t skew = strtoll(vectors_need(r, "skew"), NULL, 10);
        const char *expect = vectors_need(r, "expect");
        gw_auth_result_t ar;

        gw_auth_verify(vectors_need(r, "authorization"), (const uint8_t *)body, strlen(body), now,
                       skew, test_lookup, &k1, &ar);
        if (strcmp(gw_verdict_name(ar.verdict), expect) != 0)
            fail_msg("verify record '%s': got %s (field '%s'), expected %s", name,
                     gw_verdict_name(ar.verdict), ar.field, expect);
        const char *field = vectors_get(r, "field");
        if (field != NULL)
            assert_string_equal(ar.field, field);
        if (ar.verdict == GW_AUTH_OK) {
            const char *v4 = vectors_get(r, "ipv4"), *v6 = vectors_get(r, "ipv6"),
                       *peer = vectors_get(r, "peer");
            assert_string_equal(ar.ipv4, v4 ? v4 : "");
            assert_string_equal(ar.ipv6, v6 ? v6 : "");
            assert_string_equal(ar.peer, peer ? peer : "");
            assert_string_equal(ar.device_id, vectors_need(r, "device_id"));
            assert_string_equal(ar.kid, vectors_need(r, "kid"));
            assert_int_equal(ar.generation, strtoul(vectors_need(r, "generation"), NULL, 10));
        }
        n++;
    }
    assert_true(n >= 40);
}

static void test_sign_vectors_verify(void **state)
{
    (void)state;
    size_t n = 0;
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "sign"); r; r = vectors_next(vec, r, "sign")) {
        struct test_key k;
        gw_auth_result_t ar;
        const char *body = vectors_need(r, "body");
        int64_t ts = strtoll(vectors_need(r, "ts"), NULL, 10);

        test_key_from(r, &k);
        gw_auth_verify(vectors_need(r, "authorization"), (const uint8_t *)body, strlen(body), ts,
                       300, test_lookup, &k, &ar);
        assert_int_equal(ar.verdict, GW_AUTH_OK);
        assert_string_equal(ar.device_id, vectors_need(r, "device_id"));
        assert_string_equal(ar.kid, vectors_need(r, "key_id"));
        assert_int_equal(ar.generation, strtoul(vectors_need(r, "generation"), NULL, 10));
        assert_string_equal(ar.nonce, vectors_need(r, "nonce"));
        assert_int_equal(ar.ts, ts);
        /* a one-byte change of the body breaks the signature */
        if (body[0] != '\0') {
            char *tampered = strdup(body);
            tampered[strlen(tampered) - 1] ^= 1;
            gw_auth_verify(vectors_need(r, "authorization"), (const uint8_t *)tampered,
                           strlen(tampered), ts, 300, test_lookup, &k, &ar);
            assert_int_not_equal(ar.verdict, GW_AUTH_OK);
            free(tampered);
        }
        n++;
    }
    assert_true(n >= 6);
}

/* The dyndns2 records: the Basic credentials parsed (gw_dyn_parse_basic)
 * and checked (gw_auth_check_password) under the master key k1. */
static void test_dyndns2_vectors(void **state)
{
    (void)state;
    struct test_key k1;
    size_t n = 0;
    test_key_from(find_derive_k1(), &k1);
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "dyndns2"); r; r = vectors_next(vec, r, "dyndns2")) {
        const char *name = vectors_need(r, "name"), *expect = vectors_need(r, "expect");
        gw_dyn_cred_t c;
        int ok = gw_dyn_parse_basic(vectors_need(r, "authorization"), &c) == 0 &&
                 gw_auth_check_password(test_lookup, &k1, c.device_id, c.kid, strlen(c.kid),
                                        c.generation, c.password);
        if (strcmp(ok ? "ok" : "badauth", expect) != 0)
            fail_msg("dyndns2 record '%s': got %s, expected %s", name, ok ? "ok" : "badauth",
                     expect);
        if (ok) {
            assert_string_equal(c.device_id, vectors_need(r, "device_id"));
            assert_string_equal(c.kid, vectors_need(r, "kid"));
            assert_int_equal(c.generation, strtoul(vectors_need(r, "generation"), NULL, 10));
        }
        n++;
    }
    assert_true(n >= 10);
}

/* gw_auth_check_password against every derive record of the master key:
 * the password's bytes are right for their own (kid, generation) only. */
static void test_password_check_derive_vectors(void **state)
{
    (void)state;
    size_t n = 0;
    for (const vectors_rec_t *r = vectors_next(vec, NULL, "derive"); r; r = vectors_next(vec, r, "derive")) {
        struct test_key k;
        uint8_t pw[CMN_SECRET_LEN];
        const char *password = vectors_need(r, "password"), *dot = strchr(password, '.');
        const char *kid = vectors_need(r, "kid"), *dev = vectors_need(r, "device_id");
        uint32_t g = (uint32_t)strtoul(vectors_need(r, "generation"), NULL, 10);
        test_key_from(r, &k);
        assert_non_null(dot);
        assert_int_equal(cmn_b64url_decode(dot + 1, strlen(dot + 1), pw, sizeof pw), CMN_SECRET_LEN);
        assert_true(gw_auth_check_password(test_lookup, &k, dev, kid, strlen(kid), g, pw));
        assert_false(gw_auth_check_password(test_lookup, &k, dev, kid, strlen(kid), g + 1, pw));
        if (g > 0)
            assert_false(gw_auth_check_password(test_lookup, &k, dev, kid, strlen(kid), g - 1, pw));
        pw[31] ^= 1;
        assert_false(gw_auth_check_password(test_lookup, &k, dev, kid, strlen(kid), g, pw));
        n++;
    }
    assert_true(n >= 8);
}

static void test_auth_edge_cases(void **state)
{
    (void)state;
    struct test_key k1;
    gw_auth_result_t ar;
    char big[GW_AUTH_BODY_MAX + 2];
    const char *auth = "DDNS-HMAC-SHA256 id=3c5ab4f09a21,kid=k1,ts=1700000000,"
                       "nonce=0123456789abcdef,sig=814c23cf8e837f564b31a9b0b0a20eb46806ab70c7831052b50a8069d412635c";
    test_key_from(find_derive_k1(), &k1);

    gw_auth_verify(NULL, (const uint8_t *)"", 0, 1700000000, 300, test_lookup, &k1, &ar);
    assert_int_equal(ar.verdict, GW_AUTH_BADREQUEST);
    assert_string_equal(ar.field, "authorization");

    memset(big, 'a', sizeof big);
    memcpy(big, "fw=", 3);
    gw_auth_verify(auth, (const uint8_t *)big, GW_AUTH_BODY_MAX + 1, 1700000000, 300,
                   test_lookup, &k1, &ar);
    assert_int_equal(ar.verdict, GW_AUTH_BADREQUEST);
    assert_string_equal(ar.field, "body");

    struct { const char *body, *field; } bad[] = {
        {"ipv4=192.0.2.10&", "body"},
        {"&ipv4=192.0.2.10", "body"},
        {"=1", "body"},
        {"ipv6=::ffff:192.0.2.1", "ipv6"},
        {"ipv4=192.0.2.010", "ipv4"},
        {"fw=1.0&fw=1.1", "fw"},
        {"fw=1-0", "fw"},
        {"ipv4=192.0.2.1\n", "ipv4"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gw_auth_verify(auth, (const uint8_t *)bad[i].body, strlen(bad[i].body), 1700000000, 300,
                       test_lookup, &k1, &ar);
        if (ar.verdict != GW_AUTH_BADREQUEST || strcmp(ar.field, bad[i].field) != 0)
            fail_msg("body '%s': got %s '%s', expected badrequest %s", bad[i].body,
                     gw_verdict_name(ar.verdict), ar.field, bad[i].field);
    }

    /* syntax is judged before the clock, the clock before the signature */
    gw_auth_verify(auth, (const uint8_t *)"ipv4=1", 6, 1, 300, test_lookup, &k1, &ar);
    assert_int_equal(ar.verdict, GW_AUTH_BADREQUEST);
    gw_auth_verify(auth, (const uint8_t *)"ipv4=192.0.2.66", 15, 1, 300, test_lookup, &k1, &ar);
    assert_int_equal(ar.verdict, GW_AUTH_BADTIME);
    assert_string_equal(ar.device_id, "3c5ab4f09a21");

    /* an extra field, a blank, a trailing comma */
    const char *malformed[] = {
        "DDNS-HMAC-SHA256  id=3c5ab4f09a21,kid=k1,ts=1700000000,nonce=0123456789abcdef,sig=814c23cf8e837f564b31a9b0b0a20eb46806ab70c7831052b50a8069d412635c",
        "DDNS-HMAC-SHA256 id=3c5ab4f09a21,kid=k1,ts=1700000000,nonce=0123456789abcdef,sig=814c23cf8e837f564b31a9b0b0a20eb46806ab70c7831052b50a8069d412635c,",
        "DDNS-HMAC-SHA256 id=3c5ab4f09a21,kid=k1,ts=1700000000,nonce=0123456789abcdef,sig=814c23cf8e837f564b31a9b0b0a20eb46806ab70c7831052b50a8069d412635c,x=1",
        "DDNS-HMAC-SHA256 id=3c5ab4f09a21, kid=k1,ts=1700000000,nonce=0123456789abcdef,sig=814c23cf8e837f564b31a9b0b0a20eb46806ab70c7831052b50a8069d412635c",
        "DDNS-HMAC-SHA256 id=3c5ab4f09a21,kid=,ts=1700000000,nonce=0123456789abcdef,sig=814c23cf8e837f564b31a9b0b0a20eb46806ab70c7831052b50a8069d412635c",
        "DDNS-HMAC-SHA256 id=3c5ab4f09a21,kid=k1,ts=1234567890123,nonce=0123456789abcdef,sig=814c23cf8e837f564b31a9b0b0a20eb46806ab70c7831052b50a8069d412635c",
        "DDNS-HMAC-SHA256 id=ffffffffffff,kid=k1,ts=1700000000,nonce=0123456789abcdef,sig=814c23cf8e837f564b31a9b0b0a20eb46806ab70c7831052b50a8069d412635c",
        "",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        gw_auth_verify(malformed[i], (const uint8_t *)"ipv4=192.0.2.10", 15, 1700000000, 300,
                       test_lookup, &k1, &ar);
        assert_int_equal(ar.verdict, GW_AUTH_BADREQUEST);
        assert_string_equal(ar.field, "authorization");
        assert_string_equal(ar.device_id, "");
    }
}

/* ---- configuration --------------------------------------------------------- */

static char tmpdir[] = "/tmp/ddns-gw-test-XXXXXX";

static void write_file(const char *name, const char *text, mode_t mode)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static int load(const char *name, gw_config_t **cfg, gw_config_msgs_t *msgs)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return gw_config_load(path, cfg, msgs);
}

static void assert_error_has(const gw_config_msgs_t *m, const char *needle)
{
    if (m->errors == NULL || strstr(m->errors, needle) == NULL)
        fail_msg("expected an error containing '%s', got:\n%s", needle,
                 m->errors ? m->errors : "(none)");
}

static const char good_conf[] =
    "# gateway test configuration\n"
    "[gateway]\n"
    "listen = 127.0.0.1:8443, [::1]:0   ; two listeners\n"
    "clock_skew = 120\n"
    "log_level = debug\n"
    "\n"
    "[tls]\n"
    "certificate = server.crt\n"
    "private_key = /etc/ssl/server.key\n"
    "[database]\n"
    "conninfo = host=127.0.0.1 port=5432 dbname=ddns user=ddns\n"
    "[keys]\n"
    "directory = keys\n"
    "[zone DDNS.Example.Test.]\n"
    "  primary = 127.0.0.1:5353\n"
    "  tsig_key_name = ddns-update\n"
    "  tsig_secret_file = tsig.secret\n"
    "[zone other.example.test]\n"
    "primary = [2001:db8::53]\n"
    "tsig_key_name = other\n"
    "tsig_algorithm = hmac-sha512\n"
    "tsig_secret_file = tsig.secret\n"
    "default_ttl = 300\n";

static void test_config_good(void **state)
{
    (void)state;
    gw_config_t *cfg = NULL;
    gw_config_msgs_t m;
    char want[600];

    write_file("good.conf", good_conf, 0644);
    if (load("good.conf", &cfg, &m) != 0)
        fail_msg("good.conf refused:\n%s", m.errors);
    assert_null(m.errors);
    assert_int_equal(cfg->listen.n, 2);
    assert_string_equal(cfg->listen.addr[0].text, "127.0.0.1:8443");
    assert_string_equal(cfg->listen.addr[1].text, "[::1]:0");
    assert_int_equal(cfg->clock_skew, 120);
    assert_int_equal(cfg->log_level, 0);
    assert_int_equal(cfg->request_timeout, 10);      /* default */
    assert_int_equal(cfg->db_pool_size, 4);          /* default */
    snprintf(want, sizeof want, "%s/server.crt", tmpdir);
    assert_string_equal(cfg->tls_certificate, want); /* relative to the file */
    assert_string_equal(cfg->tls_private_key, "/etc/ssl/server.key");
    assert_string_equal(cfg->db_conninfo, "host=127.0.0.1 port=5432 dbname=ddns user=ddns");
    snprintf(want, sizeof want, "%s/keys", tmpdir);
    assert_string_equal(cfg->keys_directory, want);
    assert_int_equal(cfg->nzones, 2);
    assert_string_equal(cfg->zones[0].name, "ddns.example.test");
    assert_string_equal(cfg->zones[0].primary.text, "127.0.0.1:5353");
    assert_string_equal(cfg->zones[0].tsig_key_name, "ddns-update");
    assert_string_equal(cfg->zones[0].tsig_algorithm, "hmac-sha256");
    assert_string_equal(cfg->zones[0].tsig_secret, "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0");
    assert_int_equal(cfg->zones[0].default_ttl, 60);
    assert_int_equal(cfg->zones[0].line, 14);
    assert_string_equal(cfg->zones[1].primary.text, "[2001:db8::53]:53");
    assert_string_equal(cfg->zones[1].tsig_algorithm, "hmac-sha512");
    assert_int_equal(cfg->zones[1].default_ttl, 300);
    gw_config_free(cfg);
    gw_config_msgs_clear(&m);
}

static const char *conf_with(const char *gateway_lines, const char *zone_lines)
{
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "[gateway]\n%s"
             "[tls]\ncertificate = a.crt\nprivate_key = a.key\n"
             "[database]\nconninfo = dbname=ddns\n"
             "[keys]\ndirectory = keys\n"
             "[zone example.test]\n%s",
             gateway_lines, zone_lines);
    return buf;
}

static const char zone_ok[] = "primary = 127.0.0.1\ntsig_key_name = k\ntsig_secret_file = tsig.secret\n";

/* SIGHUP: the changed keys that need a restart are named, the others move
 * into the running configuration (a zone's TSIG key among them). */
static void test_config_reload(void **state)
{
    (void)state;
    gw_config_t *cur = NULL, *nc = NULL;
    gw_config_msgs_t m1, m2;
    char out[600];

    write_file("tsig2.secret", "bmV3c2VjcmV0bmV3c2VjcmV0bmV3c2VjcmV0\n", 0600);
    write_file("run.conf", conf_with("listen = 127.0.0.1:8443\nclock_skew = 300\n", zone_ok),
               0644);
    assert_int_equal(load("run.conf", &cur, &m1), 0);
    write_file("new.conf",
               conf_with("listen = 127.0.0.1:9443\nclock_skew = 120\nworkers = 4\n",
                         "primary = 127.0.0.1:5300\ntsig_key_name = k2\n"
                         "tsig_algorithm = hmac-sha512\ntsig_secret_file = tsig2.secret\n"
                         "allow_addresses = 10.0.0.0/8, fd00::/8\n"),
               0644);
    assert_int_equal(load("new.conf", &nc, &m2), 0);
    assert_int_equal(gw_config_same_zones(cur, nc), 1);
    assert_int_equal(gw_config_restart_keys(cur, nc, out, sizeof out), 2);
    assert_string_equal(out, "[gateway] listen, [gateway] workers");
    gw_config_apply_reload(cur, nc);
    assert_int_equal(cur->clock_skew, 120);
    assert_string_equal(cur->listen.addr[0].text, "127.0.0.1:8443");  /* a restart's */
    assert_int_equal(cur->workers, 0);
    assert_string_equal(cur->zones[0].primary.text, "127.0.0.1:5300");
    assert_string_equal(cur->zones[0].tsig_key_name, "k2");
    assert_string_equal(cur->zones[0].tsig_algorithm, "hmac-sha512");
    assert_string_equal(cur->zones[0].tsig_secret, "bmV3c2VjcmV0bmV3c2VjcmV0bmV3c2VjcmV0");
    assert_int_equal(cur->zones[0].allow_addresses.n, 2);   /* at once, no restart */
    assert_int_equal(cur->zones[0].allow_addresses.net[1].prefix, 8);
    assert_int_equal(nc->zones[0].allow_addresses.n, 0);
    /* nc holds the previous values now, and frees them */
    assert_int_equal(nc->clock_skew, 300);
    assert_string_equal(nc->zones[0].tsig_key_name, "k");
    /* the same file again: nothing to name */
    assert_int_equal(gw_config_restart_keys(cur, cur, out, sizeof out), 0);
    assert_string_equal(out, "");
    gw_config_free(nc);
    gw_config_msgs_clear(&m2);

    /* another set of zones needs a restart, and zones are then left alone */
    write_file("zones.conf",
               "[gateway]\nlisten = 127.0.0.1:8443\n"
               "[tls]\ncertificate = a.crt\nprivate_key = a.key\n"
               "[database]\nconninfo = dbname=ddns\n[keys]\ndirectory = keys\n"
               "[zone other.test]\nprimary = 127.0.0.1:5301\ntsig_key_name = z\n"
               "tsig_secret_file = tsig.secret\n",
               0644);
    assert_int_equal(load("zones.conf", &nc, &m2), 0);
    assert_int_equal(gw_config_same_zones(cur, nc), 0);
    assert_int_equal(gw_config_restart_keys(cur, nc, out, sizeof out), 1);
    assert_string_equal(out, "[zone] sections (added, removed or reordered)");
    gw_config_apply_reload(cur, nc);
    assert_string_equal(cur->zones[0].name, "example.test");
    assert_string_equal(cur->zones[0].primary.text, "127.0.0.1:5300");

    /* a zone's settings copied deep (the publisher's own copy) */
    gw_zone_conf_t z;
    assert_int_equal(gw_zone_conf_copy(&z, &cur->zones[0]), GW_OK);
    assert_ptr_not_equal(z.tsig_secret, cur->zones[0].tsig_secret);
    assert_string_equal(z.tsig_secret, cur->zones[0].tsig_secret);
    gw_zone_conf_clear(&z);
    assert_null(z.tsig_secret);

    gw_config_free(nc);
    gw_config_free(cur);
    gw_config_msgs_clear(&m1);
    gw_config_msgs_clear(&m2);
}

static void test_config_unknown_key(void **state)
{
    (void)state;
    gw_config_t *cfg = NULL;
    gw_config_msgs_t m;
    char want[600];

    write_file("unknown.conf", conf_with("listen = 127.0.0.1:8443\nbogus = 1\n", zone_ok), 0644);
    assert_int_not_equal(load("unknown.conf", &cfg, &m), 0);
    gw_config_free(cfg);
    snprintf(want, sizeof want, "%s/unknown.conf:3: [gateway] bogus: unknown key", tmpdir);
    assert_error_has(&m, want);
    assert_int_equal(m.nerrors, 1);
    gw_config_msgs_clear(&m);

    write_file("unknown2.conf", conf_with("listen = 127.0.0.1:8443\n",
                                          "primary = 127.0.0.1\nttl = 5\ntsig_key_name = k\n"
                                          "tsig_secret_file = tsig.secret\n[extra]\n"), 0644);
    assert_int_not_equal(load("unknown2.conf", &cfg, &m), 0);
    gw_config_free(cfg);
    assert_error_has(&m, "unknown2.conf:12: [zone example.test] ttl: unknown key");
    assert_error_has(&m, "unknown2.conf:15: unknown section [extra]");
    gw_config_msgs_clear(&m);

    write_file("dup.conf", conf_with("listen = 127.0.0.1:8443\nlisten = 127.0.0.1:8444\n", zone_ok), 0644);
    assert_int_not_equal(load("dup.conf", &cfg, &m), 0);
    gw_config_free(cfg);
    assert_error_has(&m, "dup.conf:3: [gateway] listen: key given twice (first at line 2)");
    gw_config_msgs_clear(&m);

    write_file("syntax.conf", conf_with("listen = 127.0.0.1:8443\njust words\n", zone_ok), 0644);
    assert_int_not_equal(load("syntax.conf", &cfg, &m), 0);
    gw_config_free(cfg);
    assert_error_has(&m, "syntax.conf:3: syntax error");
    gw_config_msgs_clear(&m);
}

static void test_config_bad_values(void **state)
{
    (void)state;
    gw_config_t *cfg = NULL;
    gw_config_msgs_t m;
    struct { const char *gw, *zone, *needle; } cases[] = {
        {"listen = 127.0.0.1\n", zone_ok, ":2: [gateway] listen: '127.0.0.1' is not addr:port"},
        {"listen = ::1:8443\n", zone_ok, ":2: [gateway] listen: '::1:8443' is not addr:port"},
        {"listen = localhost:8443\n", zone_ok, ":2: [gateway] listen: 'localhost:8443'"},
        {"listen = 127.0.0.1:70000\n", zone_ok, ":2: [gateway] listen:"},
        {"listen = 127.0.0.1:1, 127.0.0.1:1\n", zone_ok, "listed twice"},
        {"listen = 127.0.0.1:1\nclock_skew = 0\n", zone_ok, ":3: [gateway] clock_skew: 0 is out of range (1 to 86400)"},
        {"listen = 127.0.0.1:1\nrequest_timeout = ten\n", zone_ok, ":3: [gateway] request_timeout: 'ten' is not a whole number"},
        {"listen = 127.0.0.1:1\nlog_level = loud\n", zone_ok, ":3: [gateway] log_level:"},
        {"listen = 127.0.0.1:1\n", "primary = 127.0.0.1\ntsig_key_name = k\ntsig_algorithm = hmac-md5\ntsig_secret_file = tsig.secret\n",
         "[zone example.test] tsig_algorithm: 'hmac-md5' is not hmac-sha256 or hmac-sha512"},
        {"listen = 127.0.0.1:1\n", "primary = 127.0.0.1\ntsig_key_name = k\ntsig_secret_file = missing.secret\n",
         "missing.secret: cannot open TSIG secret file"},
        {"listen = 127.0.0.1:1\n", "primary = 127.0.0.1\ntsig_key_name = k\ntsig_secret_file = notb64.secret\n",
         "does not hold a base64 secret"},
        {"listen = 127.0.0.1:1\n", "primary = 127.0.0.1\ntsig_key_name = k\ntsig_secret_file = tsig.secret\n"
         "allow_addresses = 10.0.0.1/8\n",
         "[zone example.test] allow_addresses: '10.0.0.1/8' is not an address or network"},
        {"listen = 127.0.0.1:1\n", "primary = 127.0.0.1\ntsig_key_name = k\ntsig_secret_file = group.secret\n",
         "group.secret: TSIG secret file is accessible by group or others (mode 0640)"},
        {"listen = 127.0.0.1:1\n", "primary = 127.0.0.1\ntsig_key_name = k\ntsig_secret_file = others.secret\n",
         "others.secret: TSIG secret file is accessible by group or others (mode 0604)"},
        {"listen = 127.0.0.1:1\nlog_level = info\n[admin]\nreserved_labels = ok, Not-Ok\n", zone_ok,
         "[admin] reserved_labels: pattern 'Not-Ok': 'N' is not allowed"},
    };
    write_file("notb64.secret", "not-base64!\n", 0600);
    write_file("group.secret", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\n", 0640);
    write_file("others.secret", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\n", 0604);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file("bad.conf", conf_with(cases[i].gw, cases[i].zone), 0644);
        assert_int_not_equal(load("bad.conf", &cfg, &m), 0);
        gw_config_free(cfg);
        assert_error_has(&m, cases[i].needle);
        assert_int_equal(m.nerrors, 1);
        gw_config_msgs_clear(&m);
    }
}

static void test_config_missing_required(void **state)
{
    (void)state;
    gw_config_t *cfg = NULL;
    gw_config_msgs_t m;

    write_file("missing.conf",
               "[gateway]\nlisten = 127.0.0.1:8443\n"
               "[tls]\nprivate_key = a.key\n"
               "[keys]\ndirectory = keys\n"
               "[zone example.test]\nprimary = 127.0.0.1\n", 0644);
    assert_int_not_equal(load("missing.conf", &cfg, &m), 0);
    gw_config_free(cfg);
    assert_error_has(&m, "missing.conf:3: [tls] certificate: missing required key");
    assert_error_has(&m, "[database] conninfo: missing required key (no [database] section)");
    assert_error_has(&m, "missing.conf:7: [zone example.test] tsig_key_name: missing required key");
    assert_error_has(&m, "missing.conf:7: [zone example.test] tsig_secret_file: missing required key");
    assert_int_equal(m.nerrors, 4);
    gw_config_msgs_clear(&m);

    assert_int_not_equal(load("does-not-exist.conf", &cfg, &m), 0);
    assert_null(cfg);
    assert_error_has(&m, "cannot open configuration file");
    gw_config_msgs_clear(&m);
}

static const char *conf_plus(const char *sections)
{
    static char buf[3072];
    snprintf(buf, sizeof buf,
             "[gateway]\nlisten = 127.0.0.1:8443, [::1]:8443\n"
             "[tls]\ncertificate = a.crt\nprivate_key = a.key\n"
             "[database]\nconninfo = dbname=ddns\n"
             "[keys]\ndirectory = keys\n"
             "[zone example.test]\nprimary = 127.0.0.1\ntsig_key_name = k\n"
             "tsig_secret_file = tsig.secret\n%s", sections);
    return buf;
}

/* [keys]: a key directory or a token's URI, one of them. */
static void test_config_keys_directory_or_pkcs11(void **state)
{
    (void)state;
    gw_config_t *cfg = NULL;
    gw_config_msgs_t m;
    static const char base[] =
        "[gateway]\nlisten = 127.0.0.1:8443\n"
        "[tls]\ncertificate = a.crt\nprivate_key = a.key\n"
        "[database]\nconninfo = dbname=ddns\n";
    char buf[1024];

    snprintf(buf, sizeof buf, "%s[keys]\npkcs11 = pkcs11:token=ddns?module-path=/m.so"
             "&pin-source=/etc/ddns/token.pin\n", base);
    write_file("p11.conf", buf, 0644);
    assert_int_equal(load("p11.conf", &cfg, &m), 0);
    assert_null(cfg->keys_directory);
    assert_string_equal(cfg->keys_pkcs11,
                        "pkcs11:token=ddns?module-path=/m.so&pin-source=/etc/ddns/token.pin");
    gw_config_free(cfg);
    gw_config_msgs_clear(&m);

    snprintf(buf, sizeof buf, "%s[keys]\ndirectory = keys\npkcs11 = pkcs11:token=ddns?"
             "module-path=/m.so&pin-value=7777\n", base);
    write_file("both.conf", buf, 0644);
    assert_int_not_equal(load("both.conf", &cfg, &m), 0);
    gw_config_free(cfg);
    assert_error_has(&m, "[keys] pkcs11: directory and pkcs11 exclude each other");
    assert_null(strstr(m.errors, "7777"));
    gw_config_msgs_clear(&m);

    snprintf(buf, sizeof buf, "%s[keys]\n", base);
    write_file("none.conf", buf, 0644);
    assert_int_not_equal(load("none.conf", &cfg, &m), 0);
    gw_config_free(cfg);
    assert_error_has(&m, "[keys]: missing: directory (key files) or pkcs11");
    gw_config_msgs_clear(&m);
}

static void test_config_limits_proxy_admin(void **state)
{
    (void)state;
    gw_config_t *cfg = NULL;
    gw_config_msgs_t m;

    /* defaults */
    write_file("plain.conf", conf_plus(""), 0644);
    assert_int_equal(load("plain.conf", &cfg, &m), 0);
    assert_int_equal(cfg->limits.max_header_size, 8192);
    assert_int_equal(cfg->limits.max_body_size, 4096);
    assert_int_equal(cfg->limits.header_timeout, 10);
    assert_int_equal(cfg->limits.auth_fail_limit, 10);
    assert_int_equal(cfg->log_format, GW_LOGFMT_TEXT);
    assert_int_equal(cfg->proxy_listeners.n, 0);
    assert_int_equal(cfg->admin_listen.n, 0);
    assert_null(cfg->tls_certificate2);
    gw_config_free(cfg);
    gw_config_msgs_clear(&m);

    write_file("full.conf", conf_plus(
        "[limits]\nmax_header_size = 4096\nmax_connections_per_source = 3\n"
        "auth_fail_limit = 5\nheader_timeout = 4\n"
        "[proxy]\nlisteners = [::1]:8443\ntrusted = 10.0.0.0/8, 192.0.2.7, 2001:db8::/32\n"
        "[admin]\nlisten = 127.0.0.1:9100\n"), 0644);
    if (load("full.conf", &cfg, &m) != 0)
        fail_msg("full.conf refused:\n%s", m.errors);
    assert_int_equal(cfg->limits.max_header_size, 4096);
    assert_int_equal(cfg->limits.max_connections_per_source, 3);
    assert_int_equal(cfg->limits.auth_fail_limit, 5);
    assert_int_equal(cfg->limits.header_timeout, 4);
    assert_int_equal(cfg->proxy_listeners.n, 1);
    assert_true(gw_config_is_proxy_listener(cfg, &cfg->listen.addr[1]));
    assert_false(gw_config_is_proxy_listener(cfg, &cfg->listen.addr[0]));
    assert_int_equal(cfg->proxy_trusted.n, 3);
    assert_string_equal(cfg->admin_listen.addr[0].text, "127.0.0.1:9100");

    struct sockaddr_in a4 = {.sin_family = AF_INET};
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "10.200.3.4", &a4.sin_addr);
    assert_true(gw_addr_cidr_match(&cfg->proxy_trusted, (struct sockaddr *)&a4));
    inet_pton(AF_INET, "11.0.0.1", &a4.sin_addr);
    assert_false(gw_addr_cidr_match(&cfg->proxy_trusted, (struct sockaddr *)&a4));
    inet_pton(AF_INET, "192.0.2.7", &a4.sin_addr);
    assert_true(gw_addr_cidr_match(&cfg->proxy_trusted, (struct sockaddr *)&a4));
    inet_pton(AF_INET, "192.0.2.8", &a4.sin_addr);
    assert_false(gw_addr_cidr_match(&cfg->proxy_trusted, (struct sockaddr *)&a4));
    inet_pton(AF_INET6, "::ffff:10.1.1.1", &a6.sin6_addr);   /* mapped counts as IPv4 */
    assert_true(gw_addr_cidr_match(&cfg->proxy_trusted, (struct sockaddr *)&a6));
    inet_pton(AF_INET6, "2001:db8:ffff::1", &a6.sin6_addr);
    assert_true(gw_addr_cidr_match(&cfg->proxy_trusted, (struct sockaddr *)&a6));
    inet_pton(AF_INET6, "2001:db9::1", &a6.sin6_addr);
    assert_false(gw_addr_cidr_match(&cfg->proxy_trusted, (struct sockaddr *)&a6));
    gw_config_free(cfg);
    gw_config_msgs_clear(&m);

    write_file("bad.conf", conf_plus(
        "[gateway2]\n"
        "[limits]\nmax_header_size = 10\nheader_timeout = x\n"
        "[proxy]\nlisteners = 127.0.0.1:9999\ntrusted = 10.0.0.1/8\n"
        "[admin]\nlisten = 127.0.0.1:8443\n"), 0644);
    assert_int_not_equal(load("bad.conf", &cfg, &m), 0);
    assert_error_has(&m, "unknown section [gateway2]");
    assert_error_has(&m, "[limits] max_header_size: 10 is out of range (1024 to 65536)");
    assert_error_has(&m, "[limits] header_timeout: 'x' is not a whole number");
    assert_error_has(&m, "[proxy] listeners: 127.0.0.1:9999 is not one of [gateway] listen");
    assert_error_has(&m, "[proxy] trusted: '10.0.0.1/8' is not an address or network");
    assert_error_has(&m, "[admin] listen: 127.0.0.1:8443 is also an HTTPS listener");
    gw_config_free(cfg);
    gw_config_msgs_clear(&m);

    write_file("notrust.conf", conf_plus("[proxy]\nlisteners = 127.0.0.1:8443\n"), 0644);
    assert_int_not_equal(load("notrust.conf", &cfg, &m), 0);
    assert_error_has(&m, "[proxy] trusted: missing");
    gw_config_free(cfg);
    gw_config_msgs_clear(&m);
}

/* ---- PROXY protocol parser -------------------------------------------------- */

static void test_proxy_parse(void **state)
{
    (void)state;
    gw_proxy_hdr_t h;
    size_t used;
    char ip[INET6_ADDRSTRLEN];
    static const unsigned char sig[12] = {13, 10, 13, 10, 0, 13, 10, 'Q', 'U', 'I', 'T', 10};

    const char v1[] = "PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n\x16\x03";
    assert_int_equal(gw_proxy_parse((const unsigned char *)v1, sizeof v1 - 1, &used, &h),
                     GW_PROXY_OK);
    assert_int_equal(used, sizeof v1 - 3);
    assert_int_equal(h.version, 1);
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&h.src;
    assert_int_equal(s4->sin_family, AF_INET);
    assert_int_equal(ntohs(s4->sin_port), 5555);
    assert_string_equal(inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip), "203.0.113.7");
    /* every prefix asks for more */
    for (size_t k = 1; k < used; k++)
        assert_int_equal(gw_proxy_parse((const unsigned char *)v1, k, &used, &h), GW_PROXY_MORE);

    const char v1u[] = "PROXY UNKNOWN\r\n";
    assert_int_equal(gw_proxy_parse((const unsigned char *)v1u, sizeof v1u - 1, &used, &h),
                     GW_PROXY_OK);
    assert_true(h.local);

    static const char *const bad_v1[] = {
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 ::1 ::1 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "PROXY \r\n",
    };
    for (size_t i = 0; i < sizeof bad_v1 / sizeof bad_v1[0]; i++) {
        int rc = gw_proxy_parse((const unsigned char *)bad_v1[i], strlen(bad_v1[i]), &used, &h);
        if (rc != GW_PROXY_BAD)
            fail_msg("'%s' gave %d", bad_v1[i], rc);
        assert_non_null(h.why);
    }

    unsigned char v2[16 + 36];
    memcpy(v2, sig, 12);
    v2[12] = 0x21;
    v2[13] = 0x21;
    v2[14] = 0;
    v2[15] = 36;
    inet_pton(AF_INET6, "2001:db8::7", v2 + 16);
    inet_pton(AF_INET6, "2001:db8::1", v2 + 32);
    v2[48] = 0x17;
    v2[49] = 0x70;      /* 6000 */
    v2[50] = 1;
    v2[51] = 0xbb;
    assert_int_equal(gw_proxy_parse(v2, sizeof v2, &used, &h), GW_PROXY_OK);
    assert_int_equal(used, sizeof v2);
    assert_int_equal(h.version, 2);
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&h.src;
    assert_int_equal(s6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(s6->sin6_port), 6000);
    assert_string_equal(inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip), "2001:db8::7");
    assert_int_equal(gw_proxy_parse(v2, 20, &used, &h), GW_PROXY_MORE);
    v2[13] = 0x22;      /* INET6 over DGRAM */
    assert_int_equal(gw_proxy_parse(v2, sizeof v2, &used, &h), GW_PROXY_BAD);
    v2[13] = 0x21;
    v2[12] = 0x22;      /* command 2 */
    assert_int_equal(gw_proxy_parse(v2, sizeof v2, &used, &h), GW_PROXY_BAD);
    v2[12] = 0x20;      /* LOCAL */
    assert_int_equal(gw_proxy_parse(v2, sizeof v2, &used, &h), GW_PROXY_OK);
    assert_true(h.local);

    static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x00};
    assert_int_equal(gw_proxy_parse(hello, sizeof hello, &used, &h), GW_PROXY_NONE);
    assert_int_equal(gw_proxy_parse((const unsigned char *)"PRO", 3, &used, &h), GW_PROXY_MORE);
    assert_int_equal(gw_proxy_parse((const unsigned char *)"GET /", 5, &used, &h), GW_PROXY_NONE);
    assert_int_equal(gw_proxy_parse((const unsigned char *)"PROXY\r\n", 7, &used, &h),
                     GW_PROXY_NONE);
}

/* ---- per-source limits ----------------------------------------------------- */

static void test_limits(void **state)
{
    (void)state;
    gw_limit_conf_t c = {.max_connections = 5, .max_connections_per_source = 2,
                         .auth_fail_limit = 3, .auth_fail_window = 60, .auth_block_time = 30};
    assert_int_equal(gw_limit_init(&c), 0);
    struct sockaddr_in a = {.sin_family = AF_INET}, b = {.sin_family = AF_INET};
    struct sockaddr_in6 x = {.sin6_family = AF_INET6}, y = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "192.0.2.1", &a.sin_addr);
    inet_pton(AF_INET, "192.0.2.2", &b.sin_addr);
    inet_pton(AF_INET6, "2001:db8:1:2::1", &x.sin6_addr);
    inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &y.sin6_addr);   /* same /64 */
    const struct sockaddr *A = (void *)&a, *B = (void *)&b, *X = (void *)&x, *Y = (void *)&y;

    assert_int_equal(gw_limit_conn_open(A), GW_LIMIT_OK);
    assert_int_equal(gw_limit_conn_open(A), GW_LIMIT_OK);
    assert_int_equal(gw_limit_conn_open(A), GW_LIMIT_SOURCE);
    assert_int_equal(gw_limit_conn_open(X), GW_LIMIT_OK);
    assert_int_equal(gw_limit_conn_open(Y), GW_LIMIT_OK);
    assert_int_equal(gw_limit_conn_open(Y), GW_LIMIT_SOURCE);  /* the /64 is one source */
    assert_int_equal(gw_limit_conn_open(B), GW_LIMIT_OK);
    assert_int_equal(gw_limit_connections(), 5);
    assert_int_equal(gw_limit_conn_open(B), GW_LIMIT_TOTAL);
    gw_limit_conn_close(A);
    assert_int_equal(gw_limit_conn_open(B), GW_LIMIT_OK);
    char text[64];
    gw_limit_source_text(Y, text, sizeof text);
    assert_string_equal(text, "2001:db8:1:2::/64");

    assert_int_equal(gw_limit_auth_blocked(A), 0);
    gw_limit_auth_failed(A);
    gw_limit_auth_failed(A);
    assert_int_equal(gw_limit_auth_blocked(A), 0);
    gw_limit_auth_failed(A);
    int left = gw_limit_auth_blocked(A);
    assert_true(left >= 29 && left <= 30);
    assert_int_equal(gw_limit_auth_blocked(B), 0);     /* other sources unaffected */
    gw_limit_auth_failed(X);
    gw_limit_auth_failed(X);
    gw_limit_auth_failed(Y);                           /* same /64 as X */
    assert_true(gw_limit_auth_blocked(X) > 0);
    gw_limit_shutdown();
    assert_int_equal(gw_limit_auth_blocked(A), 0);      /* no table: nothing blocked */
}

/* A full table evicts the least recently seen source without an open
 * connection: the newest source is still limited, connection counts stay
 * exact, and a source that keeps failing is not the one forgotten. */
static void test_limit_evicts(void **state)
{
    (void)state;
    gw_limit_conf_t c = {.max_connections_per_source = 1, .auth_fail_limit = 2,
                         .auth_fail_window = 60, .auth_block_time = 30};
    gw_limit_t *l = gw_limit_new(&c, 8, "test");
    assert_non_null(l);
    struct sockaddr_in s = {.sin_family = AF_INET};
    const struct sockaddr *S = (void *)&s;
    inet_pton(AF_INET, "198.51.100.1", &s.sin_addr);
    assert_int_equal(gw_limit_open_in(l, S), GW_LIMIT_OK);     /* .1 holds a connection */
    inet_pton(AF_INET, "198.51.100.2", &s.sin_addr);
    gw_limit_failed_in(l, S);
    gw_limit_failed_in(l, S);                                   /* .2 blocked */
    for (int i = 10; i < 40; i++) {                             /* far past 8 sources */
        char ip[32];
        snprintf(ip, sizeof ip, "203.0.113.%d", i);
        inet_pton(AF_INET, ip, &s.sin_addr);
        gw_limit_failed_in(l, S);
        inet_pton(AF_INET, "198.51.100.2", &s.sin_addr);
        assert_true(gw_limit_blocked_in(l, S) > 0);             /* seen again: kept */
    }
    assert_true(gw_limit_sources_in(l) <= 8);
    /* the newest source is tracked and blocked like any other */
    inet_pton(AF_INET, "203.0.113.200", &s.sin_addr);
    gw_limit_failed_in(l, S);
    gw_limit_failed_in(l, S);
    assert_true(gw_limit_blocked_in(l, S) > 0);
    /* the source with a connection was never evicted: its cap holds, its
     * close is counted */
    inet_pton(AF_INET, "198.51.100.1", &s.sin_addr);
    assert_int_equal(gw_limit_open_in(l, S), GW_LIMIT_SOURCE);
    assert_int_equal(gw_limit_connections_in(l), 1);
    gw_limit_close_in(l, S);
    assert_int_equal(gw_limit_connections_in(l), 0);
    assert_int_equal(gw_limit_open_in(l, S), GW_LIMIT_OK);
    gw_limit_close_in(l, S);
    gw_limit_free(l);
}

/* Separate tables do not share blocks; gw_limit_abuse blocks like a failed
 * authentication without being listed among the failing sources. */
static void test_limit_tables_apart(void **state)
{
    (void)state;
    gw_limit_conf_t c = {.auth_fail_limit = 2, .auth_fail_window = 60, .auth_block_time = 30};
    assert_int_equal(gw_limit_init(&c), 0);
    gw_limit_t *admin = gw_limit_new(&c, 0, "admin API");
    assert_non_null(admin);
    struct sockaddr_in a = {.sin_family = AF_INET};
    const struct sockaddr *A = (void *)&a;
    inet_pton(AF_INET, "192.0.2.9", &a.sin_addr);
    gw_limit_fail_t f[4];
    (void)gw_limit_take_failures(f, 4);
    gw_limit_abuse(A);
    gw_limit_abuse(A);
    assert_true(gw_limit_auth_blocked(A) > 0);
    assert_int_equal(gw_limit_blocked_in(admin, A), 0);
    assert_int_equal(gw_limit_take_failures(f, 4), 0);
    gw_limit_failed_in(admin, A);
    gw_limit_failed_in(admin, A);
    assert_true(gw_limit_blocked_in(admin, A) > 0);
    /* listed among the failing sources, without blocking a device */
    struct sockaddr_in b = {.sin_family = AF_INET};
    const struct sockaddr *B = (void *)&b;
    inet_pton(AF_INET, "192.0.2.10", &b.sin_addr);
    gw_limit_failure_listed(B);
    gw_limit_failure_listed(B);
    assert_int_equal(gw_limit_auth_blocked(B), 0);
    assert_int_equal(gw_limit_take_failures(f, 4), 1);
    assert_string_equal(f[0].source, "192.0.2.10");
    assert_int_equal(f[0].failures, 2);
    gw_limit_free(admin);
    gw_limit_shutdown();
}

/* Failed authentications per source, for the admin API: counted from the
 * first take on, also with the limiter off, and taken once. */
static void test_limit_failures_taken(void **state)
{
    (void)state;
    gw_limit_conf_t c = {.auth_fail_limit = 0};
    assert_int_equal(gw_limit_init(&c), 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    struct sockaddr_in6 x = {.sin6_family = AF_INET6}, y = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "192.0.2.7", &a.sin_addr);
    inet_pton(AF_INET6, "2001:db8:5:6::1", &x.sin6_addr);
    inet_pton(AF_INET6, "2001:db8:5:6::2", &y.sin6_addr);
    const struct sockaddr *A = (void *)&a, *X = (void *)&x, *Y = (void *)&y;
    gw_limit_fail_t f[4];

    gw_limit_auth_failed(A);                            /* before the first take: not kept */
    assert_int_equal(gw_limit_take_failures(f, 4), 0);
    gw_limit_auth_failed(A);
    gw_limit_auth_failed(A);
    gw_limit_auth_failed(X);
    gw_limit_auth_failed(Y);                            /* the same /64 */
    assert_int_equal(gw_limit_take_failures(f, 4), 2);
    int ia = strcmp(f[0].source, "192.0.2.7") == 0 ? 0 : 1;
    assert_string_equal(f[ia].source, "192.0.2.7");
    assert_int_equal(f[ia].failures, 2);
    assert_string_equal(f[1 - ia].source, "2001:db8:5:6::/64");
    assert_int_equal(f[1 - ia].failures, 2);
    assert_int_equal(gw_limit_auth_blocked(A), 0);      /* the limiter stays off */
    assert_int_equal(gw_limit_take_failures(f, 4), 0);  /* taken once */
    gw_limit_auth_failed(X);
    assert_int_equal(gw_limit_take_failures(f, 1), 1);
    assert_int_equal(f[0].failures, 1);
    gw_limit_shutdown();
    assert_int_equal(gw_limit_take_failures(f, 4), 0);
}

static void test_parse_addrport(void **state)
{
    (void)state;
    gw_sockaddr_t a;
    assert_int_equal(gw_addr_parse("192.0.2.1:53", -1, &a), 0);
    assert_string_equal(a.text, "192.0.2.1:53");
    assert_int_equal(gw_addr_parse("[2001:DB8::1]:8443", -1, &a), 0);
    assert_string_equal(a.text, "[2001:db8::1]:8443");
    assert_int_equal(gw_addr_parse("192.0.2.1", 53, &a), 0);
    assert_string_equal(a.text, "192.0.2.1:53");
    assert_int_equal(gw_addr_parse("192.0.2.1", -1, &a), -1);
    assert_int_equal(gw_addr_parse("[192.0.2.1]:53", -1, &a), -1);
    assert_int_equal(gw_addr_parse("2001:db8::1", 53, &a), -1);
    assert_int_equal(gw_addr_parse("192.0.2.1:", -1, &a), -1);
    assert_int_equal(gw_addr_parse("192.0.2.1:+53", -1, &a), -1);
    assert_int_equal(gw_addr_parse("[::1]x", 53, &a), -1);
}

static void test_config_new_sections(void **state)
{
    (void)state;
    gw_config_t *cfg = NULL;
    gw_config_msgs_t m;
    char text[2600];

    /* defaults */
    write_file("new.conf", conf_with("listen = 127.0.0.1:1\n", zone_ok), 0644);
    assert_int_equal(load("new.conf", &cfg, &m), 0);
    assert_int_equal(cfg->min_change_interval, 60);
    assert_int_equal(cfg->dyn_max_hosts, 20);
    assert_int_equal(cfg->dyn_not_yours, 0);
    assert_string_equal(cfg->fw_blocked_models, "");
    assert_string_equal(cfg->fw_minimum_versions, "");
    gw_config_free(cfg);
    gw_config_msgs_clear(&m);

    snprintf(text, sizeof text, "%s[limits]\nmin_change_interval = 0\n[dyndns2]\nmax_hosts = 5\n"
             "not_yours = Yes\n[firmware]\nblocked_models = A-B, C-D\n"
             "minimum_versions = E-F/1.2\n", conf_with("listen = 127.0.0.1:1\n", zone_ok));
    write_file("new.conf", text, 0644);
    assert_int_equal(load("new.conf", &cfg, &m), 0);
    assert_int_equal(cfg->min_change_interval, 0);
    assert_int_equal(cfg->dyn_max_hosts, 5);
    assert_int_equal(cfg->dyn_not_yours, 1);
    assert_string_equal(cfg->fw_blocked_models, "A-B, C-D");
    assert_string_equal(cfg->fw_minimum_versions, "E-F/1.2");
    gw_config_free(cfg);
    gw_config_msgs_clear(&m);

    struct { const char *tail, *needle; } bad[] = {
        {"[limits]\nmin_change_interval = -1\n", "[limits] min_change_interval: -1 is out of range (0 to 86400)"},
        {"[dyndns2]\nmax_hosts = 101\n", "[dyndns2] max_hosts: 101 is out of range (1 to 100)"},
        {"[dyndns2]\nnot_yours = perhaps\n", "[dyndns2] not_yours: 'perhaps' is not yes or no"},
        {"[firmware]\ncolour = red\n", "[firmware] colour: unknown key"},
        {"[limit]\n", "unknown section [limit]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "%s%s", conf_with("listen = 127.0.0.1:1\n", zone_ok), bad[i].tail);
        write_file("new.conf", text, 0644);
        assert_int_not_equal(load("new.conf", &cfg, &m), 0);
        gw_config_free(cfg);
        assert_error_has(&m, bad[i].needle);
        gw_config_msgs_clear(&m);
    }
}

/* Paths under $CREDENTIALS_DIRECTORY (systemd LoadCredential=) and the
 * publisher's own connection string. */
static void test_config_credentials_directory(void **state)
{
    (void)state;
    gw_config_t *cfg = NULL;
    gw_config_msgs_t m;
    char text[2600], want[600];
    static const char tail[] =
        "[zone example.test]\nprimary = 127.0.0.1\ntsig_key_name = k\n"
        "tsig_secret_file = $CREDENTIALS_DIRECTORY/tsig.secret\n";

    snprintf(text, sizeof text,
             "[gateway]\nlisten = 127.0.0.1:1\n"
             "[tls]\ncertificate = $CREDENTIALS_DIRECTORY/tls.crt\nprivate_key = a.key\n"
             "[database]\nconninfo = dbname=ddns\n"
             "publisher_conninfo = host=/run/postgresql dbname=ddns\n"
             "[keys]\ndirectory = $CREDENTIALS_DIRECTORY\n%s", tail);
    write_file("cred.conf", text, 0644);
    assert_int_equal(setenv("CREDENTIALS_DIRECTORY", tmpdir, 1), 0);
    if (load("cred.conf", &cfg, &m) != 0)
        fail_msg("cred.conf refused:\n%s", m.errors);
    assert_string_equal(cfg->keys_directory, tmpdir);
    snprintf(want, sizeof want, "%s/tls.crt", tmpdir);
    assert_string_equal(cfg->tls_certificate, want);
    snprintf(want, sizeof want, "%s/tsig.secret", tmpdir);
    assert_string_equal(cfg->zones[0].tsig_secret_file, want);
    assert_string_equal(gw_config_publisher_conninfo(cfg), "host=/run/postgresql dbname=ddns");
    gw_config_free(cfg);
    gw_config_msgs_clear(&m);

    /* without the variable: a clear error for each such key */
    assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
    assert_int_not_equal(load("cred.conf", &cfg, &m), 0);
    gw_config_free(cfg);
    assert_error_has(&m, "[keys] directory: $CREDENTIALS_DIRECTORY is not set");
    assert_error_has(&m, "tsig_secret_file: $CREDENTIALS_DIRECTORY is not set");
    gw_config_msgs_clear(&m);

    /* a name that only begins like the variable is a relative path; no
     * publisher_conninfo: the publisher uses conninfo */
    write_file("cred2.conf", conf_with("listen = 127.0.0.1:1\n", zone_ok), 0644);
    assert_int_equal(load("cred2.conf", &cfg, &m), 0);
    assert_string_equal(gw_config_publisher_conninfo(cfg), "dbname=ddns");
    gw_config_free(cfg);
    gw_config_msgs_clear(&m);
    snprintf(text, sizeof text, "%s", conf_with("listen = 127.0.0.1:1\n", zone_ok));
    char *d = strstr(text, "directory = keys");
    assert_non_null(d);
    memmove(d + 35, d + 16, strlen(d + 16) + 1);
    memcpy(d, "directory = $CREDENTIALS_DIRECTORYX", 35);
    write_file("cred3.conf", text, 0644);
    assert_int_equal(load("cred3.conf", &cfg, &m), 0);
    snprintf(want, sizeof want, "%s/$CREDENTIALS_DIRECTORYX", tmpdir);
    assert_string_equal(cfg->keys_directory, want);
    gw_config_free(cfg);
    gw_config_msgs_clear(&m);
}

static void test_route_framing(void **state)
{
    (void)state;
    struct { size_t cl, te; int status; } cases[] = {
        {0, 0, 0}, {1, 0, 0}, {0, 1, 0},
        {2, 0, 400}, {0, 2, 400}, {1, 1, 400}, {3, 2, 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gw_route_verdict_t v;
        memset(&v, 0, sizeof v);
        gw_route_framing(cases[i].cl, cases[i].te, &v);
        assert_int_equal(v.status, cases[i].status);
        if (v.status)
            assert_string_equal(v.line, "badrequest content-length");
    }
}

static void test_policy_agent_and_versions(void **state)
{
    (void)state;
    gw_agent_t a;
    assert_int_equal(gw_agent_parse("AcmeCam-X3/2.1.0 (build 17; arm)", &a), 0);
    assert_string_equal(a.model, "AcmeCam-X3");
    assert_string_equal(a.version, "2.1.0");
    assert_int_equal(gw_agent_parse("Acme Corp - Cam X3 - 2.1", &a), 0);
    assert_string_equal(a.model, "Acme Corp-Cam X3");
    assert_string_equal(a.version, "2.1");
    assert_int_equal(gw_agent_parse("inadyn/2.10.0 https://github.com/troglobit/inadyn/issues", &a), 0);
    assert_string_equal(a.model, "inadyn");
    assert_int_equal(gw_agent_parse(NULL, &a), -1);
    assert_string_equal(a.model, "");
    assert_int_equal(gw_agent_parse("", &a), -1);
    assert_int_equal(gw_agent_parse("Mozilla", &a), -1);
    assert_int_equal(gw_agent_parse("/1.0", &a), -1);
    assert_int_equal(gw_agent_parse("x/", &a), -1);
    assert_int_equal(gw_agent_parse("a - b", &a), -1);
    assert_int_equal(gw_agent_parse("a -  - 1", &a), -1);
    assert_int_equal(gw_agent_parse("bad\x01/1", &a), -1);

    assert_true(gw_version_valid("1"));
    assert_true(gw_version_valid("2.10.3-beta+7"));
    assert_false(gw_version_valid("v2"));
    assert_false(gw_version_valid(""));
    assert_false(gw_version_valid("1 2"));
    assert_true(gw_version_compare("1.10", "1.9") > 0);
    assert_true(gw_version_compare("2.1", "2.1.0") == 0);
    assert_true(gw_version_compare("2.0.99", "2.1.0") < 0);
    assert_true(gw_version_compare("3-rc1", "3.0") == 0);
    assert_true(gw_version_compare("99999999999999999999", "1") > 0);
}

static void test_policy_rules(void **state)
{
    (void)state;
    char err[256];
    gw_policy_t *p = gw_policy_new();
    assert_non_null(p);
    assert_int_equal(gw_policy_check(p, "AcmeCam-X1/1.0", NULL), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_load_blocked(p, " AcmeCam-X1 ,AcmeCam-X2", err, sizeof err), GW_OK);
    assert_int_equal(gw_policy_load_minimums(p, "AcmeCam-X3/2.1.0, Acme Corp-Cam X4/3", err, sizeof err), GW_OK);
    assert_int_equal(gw_policy_count(p), 4);
    assert_int_equal(gw_policy_check(p, "acmecam-x1/9.9", NULL), GW_POLICY_BLOCKED);
    assert_int_equal(gw_policy_check(p, "AcmeCam-X2/1 (x)", NULL), GW_POLICY_BLOCKED);
    assert_int_equal(gw_policy_check(p, "AcmeCam-X3/2.0.9", NULL), GW_POLICY_TOO_OLD);
    assert_int_equal(gw_policy_check(p, "AcmeCam-X3/beta", NULL), GW_POLICY_TOO_OLD);
    assert_int_equal(gw_policy_check(p, "AcmeCam-X3/2.1.0", NULL), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_check(p, "AcmeCam-X3/10", NULL), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_check(p, "Acme Corp - Cam X4 - 2.9", NULL), GW_POLICY_TOO_OLD);
    assert_int_equal(gw_policy_check(p, "Acme Corp - Cam X4 - 3.0", NULL), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_check(p, "AcmeCam-X5/0.1", NULL), GW_POLICY_ALLOW);
    /* a version too long to read does not take the model out of the rules */
    const char *long_v = "9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9.9";
    char ua[128];
    snprintf(ua, sizeof ua, "AcmeCam-X1/%s", long_v);
    assert_int_equal(gw_policy_check(p, ua, NULL), GW_POLICY_BLOCKED);
    snprintf(ua, sizeof ua, "AcmeCam-X3/%s (x)", long_v);
    assert_int_equal(gw_policy_check(p, ua, NULL), GW_POLICY_TOO_OLD);
    assert_int_equal(gw_policy_check(p, "AcmeCam-X3/%27%3B%20DROP%20TABLE%20names%3B--", NULL),
                     GW_POLICY_TOO_OLD);
    snprintf(ua, sizeof ua, "Acme Corp - Cam X4 - %s", long_v);
    assert_int_equal(gw_policy_check(p, ua, NULL), GW_POLICY_TOO_OLD);
    snprintf(ua, sizeof ua, "AcmeCam - X1 - %s", long_v);
    assert_int_equal(gw_policy_check(p, ua, NULL), GW_POLICY_BLOCKED);
    assert_int_equal(gw_policy_check(p, NULL, NULL), GW_POLICY_ALLOW);
    /* a later rule for the same model replaces the earlier one */
    assert_int_equal(gw_policy_set_minimum(p, "acmecam-x3", "2.0"), GW_OK);
    assert_int_equal(gw_policy_check(p, "AcmeCam-X3/2.0.9", NULL), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_set_minimum(p, "X", "v1"), GW_EINVAL);
    assert_int_equal(gw_policy_block(p, "a/b"), GW_EINVAL);
    assert_int_equal(gw_policy_load_blocked(p, "A,,B", err, sizeof err), GW_EINVAL);
    assert_string_equal(err, "empty item in the list");
    assert_int_equal(gw_policy_load_blocked(p, "A,", err, sizeof err), GW_EINVAL);
    assert_int_equal(gw_policy_load_minimums(p, "AcmeCam-X3", err, sizeof err), GW_EINVAL);
    assert_non_null(strstr(err, "'AcmeCam-X3' is not MODEL/VERSION"));
    assert_int_equal(gw_policy_load_minimums(p, "AcmeCam-X3/x1", err, sizeof err), GW_EINVAL);
    assert_int_equal(gw_policy_load_blocked(p, NULL, err, sizeof err), GW_OK);
    assert_int_equal(gw_policy_load_blocked(p, "", err, sizeof err), GW_OK);
    /* signed-only models: refused on /nic/update only */
    size_t before = gw_policy_count(p);
    assert_int_equal(gw_policy_load_signed_only(p, "AcmeCam-S1, acmecam-x3", err, sizeof err),
                     GW_OK);
    assert_int_equal(gw_policy_count(p), before + 2);
    assert_int_equal(gw_policy_check(p, "AcmeCam-S1/1.0", NULL), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_check_dyndns2(p, "AcmeCam-S1/1.0", NULL), GW_POLICY_SIGNED_ONLY);
    assert_int_equal(gw_policy_check_dyndns2(p, "Acme - Cam S1 - 1.0", NULL), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_check_dyndns2(p, "AcmeCam - S1 - 1.0", NULL),
                     GW_POLICY_SIGNED_ONLY);
    assert_int_equal(gw_policy_check_dyndns2(p, "ACMECAM-X3/2.1.0", NULL), GW_POLICY_SIGNED_ONLY);
    /* blocked and too old come first */
    assert_int_equal(gw_policy_check_dyndns2(p, "AcmeCam-X3/1.0", NULL), GW_POLICY_TOO_OLD);
    assert_int_equal(gw_policy_check_dyndns2(p, "AcmeCam-X1/1.0", NULL), GW_POLICY_BLOCKED);
    assert_int_equal(gw_policy_check_dyndns2(p, "AcmeCam-X5/1.0", NULL), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_check_dyndns2(p, "curl/8.0", NULL), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_check_dyndns2(p, NULL, NULL), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_signed_only(p, "a/b"), GW_EINVAL);
    assert_int_equal(gw_policy_load_signed_only(p, "A,,B", err, sizeof err), GW_EINVAL);
    assert_string_equal(gw_policy_verdict_name(GW_POLICY_SIGNED_ONLY), "signed-only");
    gw_policy_free(p);
}

static void *test_seen_thread(void *arg)
{
    int part = (int)(intptr_t)arg;
    char dev[16];
    for (int round = 0; round < 2; round++)
        for (int i = part; i < 10000; i += 4) {
            snprintf(dev, sizeof dev, "02%010x", (unsigned)i);
            gw_seen_note(dev, round ? "192.0.2.2" : "192.0.2.1", 1700000000.0 + round);
        }
    return NULL;
}

/* gw_seen's table: one entry per device however often it is noted, from
 * any thread (the writer itself needs the database: test_quiet_poll.py). */
static void test_seen_table(void **state)
{
    (void)state;
    pthread_t t[4];
    assert_int_equal(gw_seen_pending(), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, test_seen_thread, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(gw_seen_pending(), 10000);
    gw_seen_note("020000000000", "192.0.2.3", 1600000000.0);   /* older: kept as it was */
    assert_int_equal(gw_seen_pending(), 10000);
    gw_seen_free();
    assert_int_equal(gw_seen_pending(), 0);
}

static gw_quiet_key_t test_quiet_key(const char *device, const char *shape, int64_t ts)
{
    return (gw_quiet_key_t){.device = device, .shape = (const unsigned char *)shape,
                            .shape_len = strlen(shape), .ts = ts, .dyn = 0};
}

/* gw_quiet's table and the barrier answers that drop its entries (the
 * barriers themselves and the answers from memory need the database:
 * test_quiet_poll.py). An answer is kept only once a barrier gave the
 * stamp; a reported change drops it when its transaction id is not below
 * the stamp; an answer on its way when such a change was reported is not
 * kept; 'f', '*' and an answer of another form drop everything. */
static void test_quiet_table(void **state)
{
    (void)state;
    const char *d = "0a0000000001", *e = "0a0000000002";
    gw_quiet_key_t k = test_quiet_key(d, "k1|0|192.0.2.1", 100);
    gw_quiet_ticket_t t;

    assert_int_equal(gw_quiet_init(100), GW_OK);
    assert_int_equal(gw_quiet_init(100), GW_EINVAL);
    /* no barrier yet: nothing can be stamped, nothing kept */
    gw_quiet_ticket(&k, &t);
    assert_false(t.ok);
    gw_quiet_learn(&t, &k, 1);
    assert_false(gw_quiet_candidate(&k));
    assert_int_equal(gw_quiet_changes("100:105:101 1700000000 f"), GW_OK);
    gw_quiet_ticket(&k, &t);
    assert_true(t.ok);
    gw_quiet_learn(&t, &k, 2);
    assert_true(gw_quiet_candidate(&k));
    assert_int_equal(gw_quiet_entries(), 1);
    /* another shape, an older timestamp, another device: not from memory */
    gw_quiet_key_t other = test_quiet_key(d, "k1|0|192.0.2.2", 100);
    assert_false(gw_quiet_candidate(&other));
    other = test_quiet_key(d, "k1|0|192.0.2.1", 99);
    assert_false(gw_quiet_candidate(&other));
    other = test_quiet_key(d, "k1|0|192.0.2.1", 101);
    assert_true(gw_quiet_candidate(&other));
    other = test_quiet_key(e, "k1|0|192.0.2.1", 100);
    assert_false(gw_quiet_candidate(&other));
    other.dyn = 1;
    assert_false(gw_quiet_candidate(&other));

    /* a change below the stamp was in the answer; one at or above it drops it */
    assert_int_equal(gw_quiet_changes("110:110: 1700000001 t 0a0000000001 99"), GW_OK);
    assert_true(gw_quiet_candidate(&k));
    assert_int_equal(gw_quiet_changes("111:111: 1700000002 t 0a0000000002 5 0a0000000001 100"),
                     GW_OK);
    assert_false(gw_quiet_candidate(&k));
    assert_int_equal(gw_quiet_entries(), 0);

    /* an answer on its way while a change it may not have seen is reported */
    gw_quiet_ticket(&k, &t);
    assert_true(t.ok);
    assert_int_equal(gw_quiet_changes("120:121:120 1700000003 t 0a0000000001 115"), GW_OK);
    gw_quiet_learn(&t, &k, 1);
    assert_false(gw_quiet_candidate(&k));
    gw_quiet_ticket(&k, &t);       /* stamped 120 now: 115 is in the answer */
    gw_quiet_learn(&t, &k, 1);
    assert_true(gw_quiet_candidate(&k));

    /* a provisioning batch, an incomplete barrier: everything goes, and an
     * answer on its way is not kept */
    gw_quiet_ticket(&k, &t);
    assert_int_equal(gw_quiet_changes("130:130: 1700000004 t *"), GW_EDB);  /* no xid */
    assert_false(gw_quiet_candidate(&k));
    gw_quiet_learn(&t, &k, 1);
    assert_false(gw_quiet_candidate(&k));
    gw_quiet_ticket(&k, &t);
    gw_quiet_learn(&t, &k, 1);
    assert_true(gw_quiet_candidate(&k));
    assert_int_equal(gw_quiet_changes("131:131: 1700000005 t * 130"), GW_OK);
    assert_false(gw_quiet_candidate(&k));
    gw_quiet_ticket(&k, &t);
    gw_quiet_learn(&t, &k, 1);
    assert_true(gw_quiet_candidate(&k));
    assert_int_equal(gw_quiet_changes("132:132: 1700000006 f"), GW_OK);
    assert_false(gw_quiet_candidate(&k));

    /* answers of another form: refused, and nothing kept survives them */
    static const char *const bad[] = {
        "", "garbage", "132:132:", "132:132: 1700000007", "132:132: 1700000007 x",
        "132 1700000007 t", "132:132: 17x t", "132:132: 1700000007 t 0a0000000001",
        "132:132: 1700000007 t 0A0000000001 140", "132:132: 1700000007 t 0a00000001 140",
        "132:132: 1700000007 t 0a0000000001 -1", "132:132: 1700000007 t 0a0000000001 1x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gw_quiet_ticket(&k, &t);
        gw_quiet_learn(&t, &k, 1);
        assert_true(gw_quiet_candidate(&k));
        assert_int_equal(gw_quiet_changes(bad[i]), GW_EDB);
        assert_false(gw_quiet_candidate(&k));
    }
    gw_quiet_shutdown();
    assert_int_equal(gw_quiet_entries(), 0);
    assert_false(gw_quiet_candidate(&k));
    /* off: nothing is ever kept */
    assert_int_equal(gw_quiet_init(0), GW_OK);
    gw_quiet_ticket(&k, &t);
    assert_false(t.ok);
    assert_null(gw_quiet_new(NULL, NULL, 1));
}

/* peer= in the body (docs/PROTOCOL.md section 4.2): either family, in
 * canonical form, alone. */
static void test_auth_body_peer(void **state)
{
    (void)state;
    gw_auth_result_t ar;
    struct { const char *body, *peer, *field; } cases[] = {
        {"peer=203.0.113.7", "203.0.113.7", NULL},
        {"peer=2001:DB8:0:0::7", "2001:db8::7", NULL},
        {"fw=1&peer=198.51.100.1", "198.51.100.1", NULL},
        {"peer=203.0.113.7&ipv4=203.0.113.7", NULL, "peer"},
        {"ipv6=2001:db8::1&peer=203.0.113.7", NULL, "peer"},
        {"peer=203.0.113", NULL, "peer"},
        {"peer=::ffff:203.0.113.7", NULL, "peer"},
        {"peer=0203.0.113.7", NULL, "peer"},
        {"peer=2001:db8::1:2:3:4:5:6:7:8", NULL, "peer"},
        {"peer=203.0.113.7&peer=203.0.113.7", NULL, "peer"},
        {"peer=", NULL, "peer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&ar, 0, sizeof ar);
        int rc = gw_auth_parse_body((const uint8_t *)cases[i].body, strlen(cases[i].body), &ar);
        if (cases[i].field == NULL) {
            assert_int_equal(rc, 0);
            assert_string_equal(ar.peer, cases[i].peer);
            assert_string_equal(ar.ipv4, "");
            assert_string_equal(ar.ipv6, "");
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(ar.field, cases[i].field);
        }
    }
    /* without peer it stays empty */
    memset(&ar, 0, sizeof ar);
    assert_int_equal(gw_auth_parse_body((const uint8_t *)"ipv4=192.0.2.1", 14, &ar), 0);
    assert_string_equal(ar.peer, "");
}

/* address_required_models: an address-less signed request of the model is
 * answered "moved" (gw_update asks gw_policy_needs_address). */
static void test_policy_address_required(void **state)
{
    (void)state;
    char err[200];
    gw_agent_t a;
    gw_policy_t *p = gw_policy_new();
    assert_non_null(p);
    assert_int_equal(gw_policy_load_address_required(p, "AcmeCam-P1, acmecam-p2", err,
                                                     sizeof err), GW_OK);
    assert_int_equal(gw_policy_count(p), 2);
    assert_int_equal(gw_policy_check(p, "ACMECAM-P1/3.3.0", &a), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_needs_address(p, &a), 1);
    /* the dyndns2 form names the model "Vendor-Model" */
    assert_int_equal(gw_policy_check(p, "AcmeCam - P2 - 1.0", &a), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_needs_address(p, &a), 1);
    assert_int_equal(gw_policy_check(p, "Acme - Cam-P2 - 1.0", &a), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_needs_address(p, &a), 0);
    assert_int_equal(gw_policy_check(p, "AcmeCam-P3/1.0", &a), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_needs_address(p, &a), 0);
    assert_int_equal(gw_policy_check(p, NULL, &a), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_needs_address(p, &a), 0);
    assert_int_equal(gw_policy_needs_address(NULL, &a), 0);
    /* the flag is its own: neither blocked nor signed-only */
    assert_int_equal(gw_policy_check_dyndns2(p, "AcmeCam-P1/3.3.0", NULL), GW_POLICY_ALLOW);
    assert_int_equal(gw_policy_load_address_required(p, "A,,B", err, sizeof err), GW_EINVAL);
    assert_string_equal(err, "empty item in the list");
    assert_int_equal(gw_policy_address_required(p, "a/b"), GW_EINVAL);
    gw_policy_free(p);
}

static void test_dyn_query(void **state)
{
    (void)state;
    static gw_dyn_query_t q;
    assert_int_equal(gw_dyn_parse_query("hostname=A.Example.Test.,b.example.test,nodot,,x_y.z"
                                        "&myip=192.0.2.1&wildcard=ON&mx=m.example&backmx=NO"
                                        "&system=dyndns&unknown", &q), 0);
    assert_int_equal(q.have_hostname, 1);
    assert_int_equal(q.nhosts, 5);
    assert_string_equal(q.host[0], "a.example.test");
    assert_string_equal(q.host[1], "b.example.test");
    assert_string_equal(q.host[2], "");
    assert_string_equal(q.host[3], "");
    assert_string_equal(q.host[4], "");
    assert_string_equal(q.ipv4, "192.0.2.1");
    assert_string_equal(q.ipv6, "");
    assert_int_equal(q.offline, 0);

    assert_int_equal(gw_dyn_parse_query("myip=2001:DB8:0::1%2C198.51.100.7&offline=yes", &q), 0);
    assert_int_equal(q.have_hostname, 0);
    assert_string_equal(q.ipv4, "198.51.100.7");
    assert_string_equal(q.ipv6, "2001:db8::1");
    assert_int_equal(q.offline, 1);
    assert_int_equal(gw_dyn_parse_query("hostname=a%2eb+&myip=", &q), 0);
    assert_string_equal(q.host[0], "a.b");
    assert_string_equal(q.ipv4, "");
    assert_int_equal(gw_dyn_parse_query(NULL, &q), 0);
    assert_int_equal(q.have_hostname, 0);
    assert_int_equal(gw_dyn_parse_query("myip=::ffff:192.0.2.9", &q), 0);
    assert_string_equal(q.ipv4, "192.0.2.9");

    struct { const char *q, *field; } bad[] = {
        {"myip=192.0.2.256", "myip"}, {"myip=192.0.2.1,192.0.2.2", "myip"},
        {"myip=1.2.3.4,::1,::2", "myip"}, {"myip=1.2.3.4,", "myip"},
        {"hostname=a.b&hostname=c.d", "hostname"}, {"offline=1", "offline"},
        {"hostname=%zz", "query"}, {"hostname=%4", "query"}, {"hostname=a%00.b", "query"},
        {"myip=1&myip=2", "myip"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(gw_dyn_parse_query(bad[i].q, &q), -1);
        assert_string_equal(q.field, bad[i].field);
    }
    /* more hosts than can be held: counted, and the first ones kept */
    char many[4000];
    size_t n = 0;
    for (int i = 0; i < 150; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%sh%d.x.y", i ? "," : "hostname=", i);
    assert_int_equal(gw_dyn_parse_query(many, &q), 0);
    assert_int_equal(q.nhosts, 150);
    assert_string_equal(q.host[99], "h99.x.y");

    char out[GW_DYN_FQDN_MAX + 1], label[80], longname[300];
    memset(label, 'a', 63);
    label[63] = '\0';
    snprintf(longname, sizeof longname, "%s.b", label);
    assert_true(gw_dyn_fqdn(longname, strlen(longname), out));
    label[63] = 'a';
    label[64] = '\0';
    snprintf(longname, sizeof longname, "%s.b", label);
    assert_false(gw_dyn_fqdn(longname, strlen(longname), out));
    assert_false(gw_dyn_fqdn("a-.b", 4, out));
    assert_false(gw_dyn_fqdn(".a.b", 4, out));
    assert_false(gw_dyn_fqdn("a.b..", 5, out));
    assert_true(gw_dyn_fqdn("1.2", 3, out));
}

static void test_dyn_basic(void **state)
{
    (void)state;
    gw_dyn_cred_t c;
    uint8_t secret[CMN_SECRET_LEN], want[CMN_SECRET_LEN];
    char pw[CMN_PASSWORD_MAX + 1], auth[320], text[200], b64[300];
    for (size_t i = 0; i < sizeof secret; i++)
        secret[i] = (uint8_t)(i * 7 + 1);
    for (uint32_t g = 0; g <= CMN_GENERATION_MAX; g = g ? g * 10 + 9 : 1) {
        char ref[CMN_KEYREF_MAX + 1];
        assert_int_equal(cmn_password_format("k1", g, secret, pw, sizeof pw), 0);
        assert_int_equal(cmn_dyndns2_password(secret, g, want), 0);
        assert_true(cmn_keyref_format("k1", g, ref, sizeof ref) > 0);
        assert_memory_equal(pw, ref, strlen(ref));
        const char *users[] = {"3c5ab4f09a21", "3C-5A-B4-F0-9A-21", "3c5a.b4f0.9a21",
                               "3C5AB4F09A21"};
        for (size_t i = 0; i < 4; i++) {
            snprintf(text, sizeof text, "%s:%s", users[i], pw);
            EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)text, (int)strlen(text));
            snprintf(auth, sizeof auth, "%s %s", i % 2 ? "basic" : "Basic", b64);
            assert_int_equal(gw_dyn_parse_basic(auth, &c), 0);
            assert_string_equal(c.device_id, "3c5ab4f09a21");
            assert_string_equal(c.kid, "k1");
            assert_int_equal(c.generation, g);
            assert_memory_equal(c.password, want, sizeof want);
        }
    }
    assert_int_equal(cmn_password_format("k1", 0, secret, pw, sizeof pw), 0);
    const char *pw43 = pw + 3;
    const char *bad_texts[] = {
        "3c5ab4f09a21", "3c5ab4f09a21:", ":k1.x", "010000000001:%s", "camera:%s",
        "3c5ab4f09a21:K1.AAAA", "3c5ab4f09a21:k1", "3c5ab4f09a21:.%s",
        /* key references that are not canonical */
        "3c5ab4f09a21:k1/0.%s", "3c5ab4f09a21:k1/01.%s", "3c5ab4f09a21:k1/.%s",
        "3c5ab4f09a21:/3.%s", "3c5ab4f09a21:abcdefghijklmnopq.%s",
        "3c5ab4f09a21:abcdefghijklmnopq/1.%s", "3c5ab4f09a21:k1/10000000.%s",
        "3c5ab4f09a21:k1/1/1.%s", "3c5ab4f09a21:k1/-1.%s",
    };
    for (size_t i = 0; i < sizeof bad_texts / sizeof bad_texts[0]; i++) {
        snprintf(text, sizeof text, bad_texts[i], i < 8 ? pw : pw43);
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)text, (int)strlen(text));
        snprintf(auth, sizeof auth, "Basic %s", b64);
        if (gw_dyn_parse_basic(auth, &c) != -1)
            fail_msg("Basic credentials '%s' accepted", text);
        assert_string_equal(c.device_id, "");
    }
    snprintf(text, sizeof text, "3c5ab4f09a21:k1/9999999.%s", pw43);   /* the largest */
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)text, (int)strlen(text));
    snprintf(auth, sizeof auth, "Basic %s", b64);
    assert_int_equal(gw_dyn_parse_basic(auth, &c), 0);
    assert_int_equal(c.generation, CMN_GENERATION_MAX);
    snprintf(text, sizeof text, "3c5ab4f09a21:%sA", pw);       /* secret one too long */
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)text, (int)strlen(text));
    snprintf(auth, sizeof auth, "Basic %s", b64);
    assert_int_equal(gw_dyn_parse_basic(auth, &c), -1);
    assert_int_equal(gw_dyn_parse_basic(NULL, &c), -1);
    assert_int_equal(gw_dyn_parse_basic("Basic", &c), -1);
    assert_int_equal(gw_dyn_parse_basic("Basic =AAA", &c), -1);
    assert_int_equal(gw_dyn_parse_basic("Basic AAA", &c), -1);
    assert_int_equal(gw_dyn_parse_basic("Digest abc", &c), -1);
}

static void test_addr_text(void **state)
{
    (void)state;
    struct sockaddr_in s4;
    struct sockaddr_in6 s6;
    char out[INET6_ADDRSTRLEN];
    memset(&s4, 0, sizeof s4);
    s4.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.7", &s4.sin_addr);
    assert_int_equal(gw_addr_text((struct sockaddr *)&s4, out, sizeof out), AF_INET);
    assert_string_equal(out, "192.0.2.7");
    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:198.51.100.9", &s6.sin6_addr);
    assert_int_equal(gw_addr_text((struct sockaddr *)&s6, out, sizeof out), AF_INET);
    assert_string_equal(out, "198.51.100.9");
    inet_pton(AF_INET6, "2001:DB8::9", &s6.sin6_addr);
    assert_int_equal(gw_addr_text((struct sockaddr *)&s6, out, sizeof out), AF_INET6);
    assert_string_equal(out, "2001:db8::9");
    s6.sin6_family = AF_UNIX;
    assert_int_equal(gw_addr_text((struct sockaddr *)&s6, out, sizeof out), 0);
    assert_string_equal(out, "");
}

/* gw_console_map: which request paths name a console file, and its type. */
static void test_console_map(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        const char *rel;        /* NULL: refused */
        const char *ctype;
    } cases[] = {
        {"/console/", "index.html", "text/html; charset=utf-8"},
        {"/console/app.js", "app.js", "text/javascript; charset=utf-8"},
        {"/console/style.CSS", "style.CSS", "text/css; charset=utf-8"},
        {"/console/img/a-b_c.1.svg", "img/a-b_c.1.svg", "image/svg+xml"},
        {"/console/../etc/passwd.txt", NULL, NULL},
        {"/console/a/../../x.js", NULL, NULL},
        {"/console/.env.js", NULL, NULL},
        {"/console/a//b.js", NULL, NULL},
        {"/console/app.js/", NULL, NULL},
        {"/console/%2e%2e/x.js", NULL, NULL},
        {"/console/a b.js", NULL, NULL},
        {"/console/README", NULL, NULL},
        {"/console/gateway.conf", NULL, NULL},
        {"/console/a/b/c/d/e.js", NULL, NULL},
        {"/console", NULL, NULL},
        {"/consolex/app.js", NULL, NULL},
        {"/console/app.", NULL, NULL},
    };
    char rel[GW_CONSOLE_REL_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *ctype = NULL;
        int rc = gw_console_map(cases[i].path, strlen(cases[i].path), rel, sizeof rel, &ctype);
        if (cases[i].rel == NULL) {
            assert_int_equal(rc, GW_EINVAL);
            continue;
        }
        assert_int_equal(rc, GW_OK);
        assert_string_equal(rel, cases[i].rel);
        assert_string_equal(ctype, cases[i].ctype);
    }
    /* only the path before the query counts; the prefix alone is the console's */
    assert_int_equal(gw_console_path("/console?x", 8), 1);
    assert_int_equal(gw_console_path("/consoles", 9), 0);
    assert_int_equal(gw_console_path("/metrics", 8), 0);
    char longpath[400] = "/console/";
    memset(longpath + 9, 'a', 300);
    memcpy(longpath + 309, ".js", 4);
    const char *ct = NULL;
    assert_int_equal(gw_console_map(longpath, strlen(longpath), rel, sizeof rel, &ct), GW_EINVAL);
    /* a name that does not fit the caller's buffer is refused, not cut */
    assert_int_equal(gw_console_map("/console/app.js", 15, rel, 6, &ct), GW_EINVAL);
}

static int setup(void **state)
{
    (void)state;
    vec = vectors_load(NULL);
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    write_file("tsig.secret", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\n", 0600);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    vectors_free(vec);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_vectors),
        cmocka_unit_test(test_dyndns2_vectors),
        cmocka_unit_test(test_password_check_derive_vectors),
        cmocka_unit_test(test_derive_known_and_unknown_kid),
        cmocka_unit_test(test_sign_vectors_verify),
        cmocka_unit_test(test_auth_edge_cases),
        cmocka_unit_test(test_config_good),
        cmocka_unit_test(test_config_unknown_key),
        cmocka_unit_test(test_config_reload),
        cmocka_unit_test(test_config_bad_values),
        cmocka_unit_test(test_config_missing_required),
        cmocka_unit_test(test_limit_failures_taken),
        cmocka_unit_test(test_parse_addrport),
        cmocka_unit_test(test_config_new_sections),
        cmocka_unit_test(test_config_credentials_directory),
        cmocka_unit_test(test_route_framing),
        cmocka_unit_test(test_policy_agent_and_versions),
        cmocka_unit_test(test_policy_rules),
        cmocka_unit_test(test_policy_address_required),
        cmocka_unit_test(test_auth_body_peer),
        cmocka_unit_test(test_seen_table),
        cmocka_unit_test(test_quiet_table),
        cmocka_unit_test(test_dyn_query),
        cmocka_unit_test(test_dyn_basic),
        cmocka_unit_test(test_addr_text),
        cmocka_unit_test(test_config_limits_proxy_admin),
        cmocka_unit_test(test_config_keys_directory_or_pkcs11),
        cmocka_unit_test(test_proxy_parse),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_limit_evicts),
        cmocka_unit_test(test_limit_tables_apart),
        cmocka_unit_test(test_console_map),
    };
    return cmocka_run_group_tests_name("gateway", tests, setup, teardown);
}
