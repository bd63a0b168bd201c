/* Unit tests of the admin API's pure parts: the device search's statement
 * (gw_devquery: every filter lands in the WHERE clause with its value as a
 * parameter, bad values name their field, a search too large fails as a
 * whole), the statement builder under it (gw_sql: nothing truncated) and
 * the input forms (gw_apiin). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw_apiin.h"
#include "gw_devquery.h"
#include "gw_err.h"
#include "gw_sql.h"

/* A query string as key/value pairs. */
typedef struct kv {
    const char *k[32];
    const char *v[32];
    size_t n;
} kv_t;

static const char *kv_get(void *arg, const char *key)
{
    kv_t *q = arg;
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->k[i], key) == 0)
            return q->v[i][0] ? q->v[i] : NULL;
    return NULL;
}

static void kv_add(kv_t *q, const char *k, const char *v)
{
    q->k[q->n] = k;
    q->v[q->n] = v;
    q->n++;
}

static gw_sql_t sql;

/* The number of the parameter holding value, or 0. */
static int param_of(const char *value)
{
    for (int i = 0; i < sql.np; i++)
        if (sql.pv[i] != NULL && strcmp(sql.pv[i], value) == 0)
            return i + 1;
    return 0;
}

static void test_devquery_default_page(void **state)
{
    (void)state;
    kv_t q = {.n = 0};
    gw_devquery_fail_t f;
    assert_int_equal(gw_devquery_build(kv_get, &q, &sql, &f), GW_OK);
    /* limit 50, offset 0, sorted by device id, no filter */
    assert_int_equal(sql.np, 2);
    assert_string_equal(sql.pv[0], "50");
    assert_string_equal(sql.pv[1], "0");
    assert_non_null(strstr(sql.text, "FROM devices d WHERE true ORDER BY d.device_id ASC"));
    assert_null(strstr(sql.text, "NULLS LAST"));
}

static void test_devquery_every_filter_is_applied(void **state)
{
    (void)state;
    kv_t q = {.n = 0};
    kv_add(&q, "serial", "SN_1");
    kv_add(&q, "model", "Cam-X");
    kv_add(&q, "firmware", "2.1.0");
    kv_add(&q, "addr", "2001:db8::7");
    kv_add(&q, "kid", "k2");
    kv_add(&q, "batch", "17");
    kv_add(&q, "status", "revoked");
    kv_add(&q, "seen_after", "2026-11-21");
    kv_add(&q, "seen_before", "2026-11-22T10:00:00Z");
    kv_add(&q, "hostname", "cam-");
    kv_add(&q, "sort", "last_seen");
    kv_add(&q, "order", "desc");
    gw_devquery_fail_t f;
    char want[200];
    assert_int_equal(gw_devquery_build(kv_get, &q, &sql, &f), GW_OK);
    /* each value is a parameter, never in the text; LIKE specials escaped */
    assert_true(param_of("SN\\_1%") > 0);
    snprintf(want, sizeof want, "d.serial LIKE $%d", param_of("SN\\_1%"));
    assert_non_null(strstr(sql.text, want));
    snprintf(want, sizeof want, "lower(d.model) = lower($%d)", param_of("Cam-X"));
    assert_non_null(strstr(sql.text, want));
    snprintf(want, sizeof want, "d.firmware = $%d", param_of("2.1.0"));
    assert_non_null(strstr(sql.text, want));
    snprintf(want, sizeof want, "ipv6 = $%d::inet", param_of("2001:db8::7"));
    assert_non_null(strstr(sql.text, want));
    snprintf(want, sizeof want, "d.kid = $%d", param_of("k2"));
    assert_non_null(strstr(sql.text, want));
    snprintf(want, sizeof want, "d.batch_id = $%d::bigint", param_of("17"));
    assert_non_null(strstr(sql.text, want));
    snprintf(want, sizeof want, "d.status = $%d", param_of("revoked"));
    assert_non_null(strstr(sql.text, want));
    snprintf(want, sizeof want, "d.last_seen >= $%d::timestamptz", param_of("2026-11-21"));
    assert_non_null(strstr(sql.text, want));
    snprintf(want, sizeof want, "d.last_seen < $%d::timestamptz",
             param_of("2026-11-22T10:00:00Z"));
    assert_non_null(strstr(sql.text, want));
    snprintf(want, sizeof want, "label LIKE $%d", param_of("cam-%"));
    assert_non_null(strstr(sql.text, want));
    assert_non_null(strstr(sql.text, "ORDER BY d.last_seen DESC NULLS LAST"));
    assert_null(strstr(sql.text, "Cam-X"));
    assert_null(strstr(sql.text, "2001:db8"));
}

static void test_devquery_q_forms(void **state)
{
    (void)state;
    gw_devquery_fail_t f;
    kv_t q = {.n = 0};
    kv_add(&q, "q", "00:11:22:AA:BB:CC");
    assert_int_equal(gw_devquery_build(kv_get, &q, &sql, &f), GW_OK);
    assert_true(param_of("001122aabbcc") > 0);   /* a full MAC: its device id */
    q.n = 0;
    kv_add(&q, "q", "Cam-7.ddns.example");
    assert_int_equal(gw_devquery_build(kv_get, &q, &sql, &f), GW_OK);
    assert_true(param_of("cam-7.ddns.example") > 0);   /* a full name, lowercased */
    assert_non_null(strstr(sql.text, "split_part("));
    q.n = 0;
    kv_add(&q, "q", "aa:bb");
    assert_int_equal(gw_devquery_build(kv_get, &q, &sql, &f), GW_OK);
    assert_true(param_of("aabb%") > 0);     /* part of a MAC: its beginning */
    assert_non_null(strstr(sql.text, "admin_mac_suffix("));
}

static void test_devquery_bad_values_name_their_field(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"limit", "0"}, {"limit", "1001"}, {"offset", "-1"}, {"mac", "xyz"},
        {"addr", "not-an-address"}, {"kid", "K!"}, {"batch", "0"}, {"status", "gone"},
        {"seen_after", "2026-13-01"}, {"seen_before", "yesterday"}, {"sort", "secret"},
        {"order", "up"}, {"model", "a\tb"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kv_t q = {.n = 0};
        gw_devquery_fail_t f;
        kv_add(&q, bad[i][0], bad[i][1]);
        assert_int_equal(gw_devquery_build(kv_get, &q, &sql, &f), GW_EINVAL);
        assert_non_null(f.field);
        assert_string_equal(f.field, bad[i][0]);
        assert_true(strlen(f.msg) > 0);
    }
}

/* The largest search the parameters allow (every filter, every text at
 * its 200-character maximum, LIKE specials that double when escaped) fits
 * in one statement with every filter in it; the limits that would make a
 * search fail loudly instead (GW_ENOSPC) are gw_sql's, tested below. */
static void test_devquery_largest_search_fits(void **state)
{
    (void)state;
    char big[201], host[201];
    memset(big, '%', 200);
    big[200] = '\0';
    memset(host, 'a', 200);
    host[1] = '.';
    host[200] = '\0';
    kv_t q = {.n = 0};
    gw_devquery_fail_t f;
    kv_add(&q, "q", "aa:bb:cc:dd:ee.f");     /* name, serial, full-name and MAC arms */
    kv_add(&q, "mac", "aabbcc");
    kv_add(&q, "serial", big);
    kv_add(&q, "hostname", host);
    kv_add(&q, "model", big);
    kv_add(&q, "firmware", big);
    kv_add(&q, "addr", "192.0.2.1");
    kv_add(&q, "kid", "k1");
    kv_add(&q, "batch", "2147483647");
    kv_add(&q, "status", "active");
    kv_add(&q, "seen_after", "2026-11-21T14:05:00.123456+01:00");
    kv_add(&q, "seen_before", "2026-11-22T14:05:00.123456+01:00");
    kv_add(&q, "sort", "last_result");
    kv_add(&q, "order", "desc");
    assert_int_equal(gw_devquery_build(kv_get, &q, &sql, &f), GW_OK);
    static const char *const conds[] = {
        "admin_mac_suffix(", "d.serial LIKE", "split_part(", "lower(d.model)", "d.firmware =",
        "last_source =", "d.kid =", "d.batch_id =", "d.status =", "d.last_seen >=",
        "d.last_seen <", "ORDER BY d.last_result DESC NULLS LAST",
    };
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++)
        assert_non_null(strstr(sql.text, conds[i]));
    assert_true(sql.np <= GW_SQL_NPARAMS);
}

static void test_sql_nothing_truncated(void **state)
{
    (void)state;
    char big[GW_SQL_PARAM_LEN + 1];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    gw_sql_reset(&sql);
    assert_int_equal(gw_sql_param(&sql, big), 0);       /* 512 bytes + NUL: no room */
    assert_int_equal(gw_sql_err(&sql), GW_ENOSPC);
    gw_sql_reset(&sql);
    assert_int_equal(gw_sql_param(&sql, NULL), 1);
    assert_null(sql.pv[0]);
    assert_int_equal(gw_sql_paramf(&sql, "%d", 42), 2);
    assert_string_equal(sql.pv[1], "42");
    assert_int_equal(gw_sql_addf(&sql, "SELECT $%d", 2), GW_OK);
    for (int i = 0; i < 2000 && gw_sql_err(&sql) == GW_OK; i++)
        gw_sql_addf(&sql, " AND true");
    assert_int_equal(gw_sql_err(&sql), GW_ENOSPC);
    assert_true(strlen(sql.text) < GW_SQL_TEXT_LEN);
    /* the text holds whole fragments only */
    size_t n = strlen(sql.text);
    assert_string_equal(sql.text + n - 9, " AND true");
    /* more parameters than a statement holds */
    gw_sql_reset(&sql);
    for (int i = 0; i < GW_SQL_NPARAMS; i++)
        assert_int_equal(gw_sql_param(&sql, "x"), i + 1);
    assert_int_equal(gw_sql_err(&sql), GW_OK);
    assert_int_equal(gw_sql_param(&sql, "one too many"), 0);
    assert_int_equal(gw_sql_err(&sql), GW_ENOSPC);
}

static void test_apiin_forms(void **state)
{
    (void)state;
    assert_true(gw_apiin_time_ok("2026-11-21"));
    assert_true(gw_apiin_time_ok("2026-11-21T14:05"));
    assert_true(gw_apiin_time_ok("2026-11-21 14:05:00.123+01:00"));
    assert_true(gw_apiin_time_ok("2026-11-21t14:05:00z"));
    assert_false(gw_apiin_time_ok("2026-11-21T24:00"));
    assert_false(gw_apiin_time_ok("2026-11-21T14:05:0"));
    assert_false(gw_apiin_time_ok("1969-12-31"));
    assert_false(gw_apiin_time_ok("2026-11-21T14:05+1"));
    assert_int_equal(gw_apiin_duration("90m"), 5400);
    assert_int_equal(gw_apiin_duration("30d"), 30 * 86400);
    assert_int_equal(gw_apiin_duration("3600"), 3600);
    assert_int_equal(gw_apiin_duration("0"), -1);
    assert_int_equal(gw_apiin_duration("3651d"), -1);
    assert_int_equal(gw_apiin_duration("5w"), -1);
    assert_true(gw_apiin_label_ok("cam-01", 6));
    assert_false(gw_apiin_label_ok("-cam", 4));
    assert_false(gw_apiin_label_ok("Cam", 3));
    assert_true(gw_apiin_text_ok("a b", 3));
    assert_false(gw_apiin_text_ok("abcd", 3));
    assert_false(gw_apiin_text_ok("a\x7f", 3));
    char part[16], esc[10];
    assert_int_equal(gw_apiin_mac_part("AA:bb-c.C", part), 0);
    assert_string_equal(part, "aabbcc");
    assert_int_equal(gw_apiin_mac_part("a", part), -1);
    assert_int_equal(gw_apiin_mac_part("0011223344556", part), -1);
    assert_int_equal(gw_apiin_like("a%_\\", esc, sizeof esc), 0);
    assert_string_equal(esc, "a\\%\\_\\\\");
    assert_int_equal(gw_apiin_like("a%_\\x", esc, 8), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_devquery_default_page),
        cmocka_unit_test(test_devquery_every_filter_is_applied),
        cmocka_unit_test(test_devquery_q_forms),
        cmocka_unit_test(test_devquery_bad_values_name_their_field),
        cmocka_unit_test(test_devquery_largest_search_fits),
        cmocka_unit_test(test_sql_nothing_truncated),
        cmocka_unit_test(test_apiin_forms),
    };
    return cmocka_run_group_tests_name("admin API (gw_devquery, gw_sql, gw_apiin)", tests, NULL,
                                       NULL);
}
