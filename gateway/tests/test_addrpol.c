/* Unit tests of the address policy (gw_addrpol): every block of the IANA
 * special-purpose registries that a name must not point at, at its first
 * and last address and just outside, against a table of this file's own;
 * the globally reachable exceptions inside them; the zones' allow lists
 * and which zone a name is in; the request-level decision (explicit
 * addresses, the connection's address). */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "gw_addr.h"
#include "gw_addrpol.h"
#include "gw_config.h"

/* The refused blocks as the registries list them (the module's table is
 * checked against this one, not against itself). */
static const char *const refused[] = {
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
    "100:0:0:1::/64", "2001::/23", "2001::/32", "2001:2::/48", "2001:10::/28",
    "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10",
    "ff00::/8",
};

/* Globally reachable blocks inside a refused one. */
static const char *const reachable[] = {
    "192.0.0.9/32", "192.0.0.10/32", "2001:1::1/128", "2001:1::2/128", "2001:1::3/128",
    "2001:3::/32", "2001:4:112::/48", "2001:20::/28", "2001:30::/28",
};

static int in_list(const char *const *list, size_t n, int family, const unsigned char *a,
                   const char **which)
{
    for (size_t i = 0; i < n; i++) {
        gw_cidr_t c;
        assert_int_equal(gw_addr_parse_cidr(list[i], &c), 0);
        if (gw_addr_in_cidr(&c, family, a)) {
            if (which != NULL)
                *which = list[i];
            return 1;
        }
    }
    return 0;
}

/* The reference decision: refused when in a refused block and in no
 * exception, or IPv6 outside 2000::/3. */
static int ref_refused(int family, const unsigned char *a)
{
    if (in_list(reachable, sizeof reachable / sizeof *reachable, family, a, NULL))
        return 0;
    if (in_list(refused, sizeof refused / sizeof *refused, family, a, NULL))
        return 1;
    return family == AF_INET6 && (a[0] & 0xe0) != 0x20;
}

/* a +1 (dir 1) or -1 (dir -1) as a big-endian number of len bytes; 0 when
 * it wrapped around. */
static int step(unsigned char *a, size_t len, int dir)
{
    for (size_t i = len; i-- > 0;) {
        if (dir > 0 ? a[i]++ != 0xff : a[i]-- != 0x00)
            return 1;
    }
    return 0;
}

static void check_addr(int family, const unsigned char *a, int want_refused, const char *ctx)
{
    char text[INET6_ADDRSTRLEN];
    inet_ntop(family, a, text, sizeof text);
    const char *got = gw_addrpol_block(family, a);
    if ((got != NULL) != want_refused)
        fail_msg("%s: %s: expected %s, got %s", ctx, text, want_refused ? "refused" : "allowed",
                 got ? got : "allowed");
}

/* Each refused block: its first and last address refused and named by a
 * block that holds them; the addresses just outside as the reference says. */
static void test_blocks_edges(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        gw_cidr_t c;
        assert_int_equal(gw_addr_parse_cidr(refused[i], &c), 0);
        size_t len = c.family == AF_INET ? 4 : 16;
        unsigned char first[16], last[16], out[16];
        memcpy(first, c.addr, len);
        memcpy(last, c.addr, len);
        for (int bit = c.prefix; bit < (int)len * 8; bit++)
            last[bit / 8] |= (unsigned char)(0x80 >> (bit % 8));
        for (int k = 0; k < 2; k++) {
            const unsigned char *a = k == 0 ? first : last;
            check_addr(c.family, a, ref_refused(c.family, a), refused[i]);
            /* the name is the address's block's, with its range first */
            const char *name = gw_addrpol_block(c.family, a), *which = NULL;
            if (name != NULL && in_list(refused, sizeof refused / sizeof *refused, c.family, a,
                                        &which)) {
                gw_cidr_t named;
                char net[64];
                snprintf(net, sizeof net, "%.*s", (int)strcspn(name, " "), name);
                assert_int_equal(gw_addr_parse_cidr(net, &named), 0);
                assert_true(gw_addr_in_cidr(&named, c.family, a));
            }
        }
        memcpy(out, first, len);
        if (step(out, len, -1))
            check_addr(c.family, out, ref_refused(c.family, out), refused[i]);
        memcpy(out, last, len);
        if (step(out, len, 1))
            check_addr(c.family, out, ref_refused(c.family, out), refused[i]);
        /* one address in the middle */
        memcpy(out, first, len);
        if (c.prefix < (int)len * 8)
            out[len - 1] ^= 0x01;
        check_addr(c.family, out, ref_refused(c.family, out), refused[i]);
    }
}

/* The addresses the issue names, the exceptions and their neighbours, and
 * ordinary public addresses: refused or not, and the block named (NULL:
 * not checked). */
static const struct {
    const char *text;
    int refused;
    const char *block;
} named_cases[] = {
    {"169.254.169.254", 1, "169.254.0.0/16 link-local"},
    {"127.0.0.1", 1, "127.0.0.0/8 loopback"},
    {"0.0.0.0", 1, "0.0.0.0/8 this network"},
    {"10.1.2.3", 1, "10.0.0.0/8 private-use"},
    {"172.31.255.255", 1, "172.16.0.0/12 private-use"},
    {"192.168.1.1", 1, "192.168.0.0/16 private-use"},
    {"100.100.100.100", 1, "100.64.0.0/10 shared address space"},
    {"239.255.255.250", 1, "224.0.0.0/4 multicast"},
    {"255.255.255.255", 1, "255.255.255.255/32 limited broadcast"},
    {"255.255.255.254", 1, "240.0.0.0/4 reserved"},
    {"192.0.0.8", 1, "192.0.0.0/24 IETF protocol assignments"},
    {"192.0.0.9", 0, NULL},
    {"192.0.0.10", 0, NULL},
    {"192.0.0.11", 1, NULL},
    {"192.0.0.170", 1, NULL},
    {"192.0.2.10", 1, "192.0.2.0/24 documentation (TEST-NET-1)"},
    {"198.51.100.1", 1, NULL},
    {"203.0.113.255", 1, NULL},
    {"198.19.255.255", 1, "198.18.0.0/15 benchmarking"},
    {"192.88.99.1", 1, NULL},
    {"::", 1, "::/128 unspecified address"},
    {"::1", 1, "::1/128 loopback"},
    {"::2", 1, "outside the IPv6 global unicast space 2000::/3"},
    {"::ffff:169.254.169.254", 1, "::ffff:0:0/96 IPv4-mapped"},
    {"::a9fe:a9fe", 1, NULL}, /* IPv4-compatible (deprecated) */
    {"64:ff9b::a9fe:a9fe", 1, "64:ff9b::/96 IPv4/IPv6 translation"},
    {"64:ff9b:1::1", 1, "64:ff9b:1::/48 local-use IPv4/IPv6 translation"},
    {"100::1", 1, "100::/64 discard-only"},
    {"2001::1", 1, "2001::/32 Teredo"},
    {"2001:1::1", 0, NULL},
    {"2001:1::3", 0, NULL},
    {"2001:1::4", 1, "2001::/23 IETF protocol assignments"},
    {"2001:2::1", 1, "2001:2::/48 benchmarking"},
    {"2001:3::1", 0, NULL},
    {"2001:4:112::1", 0, NULL},
    {"2001:4:113::1", 1, "2001::/23 IETF protocol assignments"},
    {"2001:10::1", 1, "2001:10::/28 ORCHID (deprecated)"},
    {"2001:20::1", 0, NULL},
    {"2001:1ff:ffff::1", 1, "2001::/23 IETF protocol assignments"},
    {"2001:200::1", 0, NULL},
    {"2001:db8::1", 1, "2001:db8::/32 documentation"},
    {"2002:a00:1::1", 1, "2002::/16 6to4"},
    {"3fff:fff::1", 1, "3fff::/20 documentation"},
    {"3fff:1000::1", 0, NULL},
    {"5f00::1", 1, NULL},
    {"fd00::1", 1, "fc00::/7 unique-local"},
    {"fe80::1", 1, "fe80::/10 link-local"},
    {"fec0::1", 1, NULL},
    {"ff02::1", 1, "ff00::/8 multicast"},
    /* globally reachable */
    {"8.8.8.8", 0, NULL},
    {"1.1.1.1", 0, NULL},
    {"192.31.196.1", 0, NULL},
    {"192.52.193.1", 0, NULL},
    {"192.175.48.1", 0, NULL},
    {"223.255.255.255", 0, NULL},
    {"2a00:1450:4001::1", 0, NULL},
    {"2620:4f:8000::1", 0, NULL},
    {"3ffe:ffff::1", 0, NULL},
};

static void test_blocks_named(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof named_cases / sizeof *named_cases; i++) {
        const char *text = named_cases[i].text, *want = named_cases[i].block;
        unsigned char a[16];
        int family = strchr(text, ':') ? AF_INET6 : AF_INET;
        assert_int_equal(inet_pton(family, text, a), 1);
        const char *got = gw_addrpol_block(family, a);
        if ((got != NULL) != named_cases[i].refused)
            fail_msg("%s: expected %s, got %s", text,
                     named_cases[i].refused ? "refused" : "allowed", got ? got : "allowed");
        if (want != NULL && strcmp(got, want) != 0)
            fail_msg("%s: expected block '%s', got '%s'", text, want, got);
    }
}

/* Three zones: example.test allows 10/8 and fd00::/8, sub.example.test
 * 192.168/16, other.test nothing. */
static gw_zone_conf_t zones[3];
static gw_config_t cfg;

static void set_zone(gw_zone_conf_t *z, const char *name, const char *allow)
{
    memset(z, 0, sizeof *z);
    z->name = (char *)name;
    char copy[128];
    snprintf(copy, sizeof copy, "%s", allow);
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save))
        assert_int_equal(gw_addr_parse_cidr(t, &z->allow_addresses.net[z->allow_addresses.n++]),
                         0);
}

static int setup_zones(void **state)
{
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    set_zone(&zones[0], "example.test", "10.0.0.0/8,fd00::/8");
    set_zone(&zones[1], "sub.example.test", "192.168.0.0/16");
    set_zone(&zones[2], "other.test", "");
    cfg.zones = zones;
    cfg.nzones = 3;
    return 0;
}

static void test_zone_of_name(void **state)
{
    (void)state;
    assert_ptr_equal(gw_addrpol_zone(&cfg, "cam.example.test"), &zones[0]);
    assert_ptr_equal(gw_addrpol_zone(&cfg, "example.test"), &zones[0]);
    assert_ptr_equal(gw_addrpol_zone(&cfg, "cam.sub.example.test"), &zones[1]);
    assert_ptr_equal(gw_addrpol_zone(&cfg, "a.b.other.test"), &zones[2]);
    assert_null(gw_addrpol_zone(&cfg, "cam.xexample.test"));
    assert_null(gw_addrpol_zone(&cfg, "xample.test"));
    assert_null(gw_addrpol_zone(&cfg, "cam.example.org"));
}

static int check_req(const char *ipv4, const char *ipv6, const char *source,
                     const char (*hosts)[32], size_t nhosts, gw_addrpol_refusal_t *r)
{
    const gw_addrpol_req_t rq = {.ipv4 = ipv4, .ipv6 = ipv6, .source = source,
                                 .hosts = hosts ? hosts[0] : NULL, .nhosts = nhosts,
                                 .stride = sizeof hosts[0]};
    memset(r, 0, sizeof *r);
    return gw_addrpol_check(&cfg, &rq, r);
}

static void test_request(void **state)
{
    (void)state;
    gw_addrpol_refusal_t r;
    static const char in_ex[][32] = {"cam.example.test"};
    static const char in_other[][32] = {"cam.other.test"};
    static const char in_sub[][32] = {"cam.sub.example.test"};
    static const char in_both[][32] = {"cam.example.test", "", "cam.other.test"};
    static const char in_none[][32] = {"cam.example.org"};
    static const char only_empty[][32] = {""};

    /* globally reachable: everywhere, also for a name in no zone */
    assert_int_equal(check_req("8.8.8.8", "2a00:1450::1", NULL, in_none, 1, &r), 1);
    assert_int_equal(check_req("8.8.8.8", NULL, NULL, NULL, 0, &r), 1);
    /* the allow list of the name's zone, and only of its zone */
    assert_int_equal(check_req("10.1.2.3", NULL, NULL, in_ex, 1, &r), 1);
    assert_int_equal(check_req(NULL, "fd12::1", NULL, in_ex, 1, &r), 1);
    assert_int_equal(check_req("10.1.2.3", NULL, NULL, in_other, 1, &r), 0);
    assert_string_equal(r.addr, "10.1.2.3");
    assert_string_equal(r.block, "10.0.0.0/8 private-use");
    assert_int_equal(check_req("10.1.2.3", NULL, NULL, in_sub, 1, &r), 0);
    assert_int_equal(check_req("192.168.1.1", NULL, NULL, in_sub, 1, &r), 1);
    assert_int_equal(check_req("10.1.2.3", NULL, NULL, in_both, 3, &r), 0);
    assert_int_equal(check_req("10.1.2.3", NULL, NULL, in_none, 1, &r), 0);
    assert_int_equal(check_req("10.1.2.3", NULL, NULL, only_empty, 1, &r), 0);
    /* the list lifts the refusal of what it holds only */
    assert_int_equal(check_req("127.0.0.1", NULL, NULL, in_ex, 1, &r), 0);
    assert_string_equal(r.block, "127.0.0.0/8 loopback");
    /* an IPv4-mapped AAAA is refused although 10/8 is allowed */
    assert_int_equal(check_req(NULL, "::ffff:10.1.2.3", NULL, in_ex, 1, &r), 0);
    assert_string_equal(r.block, "::ffff:0:0/96 IPv4-mapped");
    /* every name of the device: every zone's list */
    assert_int_equal(check_req("10.1.2.3", NULL, NULL, NULL, 0, &r), 0);
    cfg.nzones = 1;
    assert_int_equal(check_req("10.1.2.3", NULL, NULL, NULL, 0, &r), 1);
    cfg.nzones = 0;
    assert_int_equal(check_req("10.1.2.3", NULL, NULL, NULL, 0, &r), 0);
    cfg.nzones = 3;
    /* one refused address of two refuses the request, and is named */
    assert_int_equal(check_req("8.8.8.8", "fe80::1", NULL, NULL, 0, &r), 0);
    assert_string_equal(r.addr, "fe80::1");
    assert_int_equal(check_req("169.254.169.254", "2a00:1450::1", NULL, NULL, 0, &r), 0);
    assert_string_equal(r.addr, "169.254.169.254");
    /* both refused: both named, IPv4 first, the block of the first */
    assert_int_equal(check_req("10.1.2.3", "fe80::1", NULL, NULL, 0, &r), 0);
    assert_string_equal(r.addr, "10.1.2.3 fe80::1");
    assert_string_equal(r.block, "10.0.0.0/8 private-use");
    /* no address named: the connection's */
    assert_int_equal(check_req(NULL, NULL, "127.0.0.1", NULL, 0, &r), 0);
    assert_string_equal(r.addr, "127.0.0.1");
    assert_int_equal(check_req("", "", "::1", in_ex, 1, &r), 0);
    assert_string_equal(r.addr, "::1");
    assert_int_equal(check_req(NULL, NULL, "8.8.8.8", NULL, 0, &r), 1);
    assert_int_equal(check_req(NULL, NULL, "10.9.9.9", in_ex, 1, &r), 1);
    /* an address named: the connection's does not matter */
    assert_int_equal(check_req("8.8.8.8", NULL, "127.0.0.1", NULL, 0, &r), 1);
    /* no address at all (offline): nothing to refuse */
    assert_int_equal(check_req(NULL, NULL, NULL, NULL, 0, &r), 1);
    /* what is not an address */
    assert_int_equal(check_req("1.2.3", NULL, NULL, NULL, 0, &r), 0);
    assert_string_equal(r.block, "not an IP address");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_edges),
        cmocka_unit_test(test_blocks_named),
        cmocka_unit_test(test_zone_of_name),
        cmocka_unit_test(test_request),
    };
    return cmocka_run_group_tests_name("addrpol", tests, setup_zones, NULL);
}
