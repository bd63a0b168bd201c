/* Unit tests of gw_budget: the per-device token bucket, the replay marker
 * and the revocation remembered before the database, the eviction of the
 * least recently seen device, and the announcements that make a restore
 * take effect. Time is passed in, so nothing here sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw_budget.h"
#include "gw_err.h"

#define DEV_A "aaaaaaaaaaaa"
#define DEV_B "bbbbbbbbbbbb"

static int setup(void **state, int rate, int burst, size_t entries)
{
    (void)state;
    gw_budget_conf_t c = {.rate = rate, .burst = burst, .entries = entries};
    return gw_budget_init(&c) == GW_OK ? 0 : -1;
}

static int setup_default(void **state) { return setup(state, 6, 3, 1024); }

static int teardown(void **state)
{
    (void)state;
    gw_budget_shutdown();
    return 0;
}

static void test_bucket_burst_then_rate(void **state)
{
    (void)state;
    int retry;
    int64_t t = 1000000;
    /* burst 3, then ratelimit with the seconds until one more (6/min: 10 s) */
    for (int i = 0; i < 3; i++)
        assert_int_equal(gw_budget_check(DEV_A, 1, 100 + i, t, &retry), GW_BUDGET_ASK);
    assert_int_equal(gw_budget_check(DEV_A, 1, 200, t, &retry), GW_BUDGET_RATELIMIT);
    assert_int_equal(retry, 10);
    /* another device has its own bucket */
    assert_int_equal(gw_budget_check(DEV_B, 1, 100, t, &retry), GW_BUDGET_ASK);
    /* 4 s later: 6 s to go */
    assert_int_equal(gw_budget_check(DEV_A, 1, 201, t + 4000, &retry), GW_BUDGET_RATELIMIT);
    assert_int_equal(retry, 6);
    /* 10 s after the burst: exactly one more, not two */
    assert_int_equal(gw_budget_check(DEV_A, 1, 202, t + 10000, &retry), GW_BUDGET_ASK);
    assert_int_equal(gw_budget_check(DEV_A, 1, 203, t + 10000, &retry), GW_BUDGET_RATELIMIT);
    /* an hour later the bucket holds the burst, no more */
    int64_t later = t + 3600 * 1000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(gw_budget_check(DEV_A, 1, 300 + i, later, &retry), GW_BUDGET_ASK);
    assert_int_equal(gw_budget_check(DEV_A, 1, 400, later, &retry), GW_BUDGET_RATELIMIT);
    assert_true(gw_budget_answers(GW_BUDGET_RATELIMIT) >= 4);
}

static void test_no_bucket_with_rate_zero(void **state)
{
    (void)state;
    int retry;
    gw_budget_conf_t c = {.rate = 0, .burst = 1, .entries = 1024};
    assert_int_equal(gw_budget_init(&c), GW_OK);   /* a reload */
    for (int i = 0; i < 100; i++)
        assert_int_equal(gw_budget_check(DEV_A, 1, 1000 + i, 5000, &retry), GW_BUDGET_ASK);
}

static void test_replay_from_memory(void **state)
{
    (void)state;
    int retry;
    int64_t t = 50000;
    assert_int_equal(gw_budget_check(DEV_A, 7, 1700000000, t, &retry), GW_BUDGET_ASK);
    gw_budget_accepted(DEV_A, 7, 1700000000, t);
    /* the same timestamp and an older one: replay, without a token */
    assert_int_equal(gw_budget_check(DEV_A, 7, 1700000000, t, &retry), GW_BUDGET_REPLAY);
    assert_int_equal(gw_budget_check(DEV_A, 7, 1699999999, t, &retry), GW_BUDGET_REPLAY);
    for (int i = 0; i < 10; i++)
        assert_int_equal(gw_budget_check(DEV_A, 7, 1700000000, t, &retry), GW_BUDGET_REPLAY);
    /* newer: asked (2 tokens left of 3) */
    assert_int_equal(gw_budget_check(DEV_A, 7, 1700000001, t, &retry), GW_BUDGET_ASK);
    /* the marker never goes back */
    gw_budget_accepted(DEV_A, 7, 1600000000, t);
    assert_int_equal(gw_budget_check(DEV_A, 7, 1700000000, t, &retry), GW_BUDGET_REPLAY);
    /* another generation (a reissue): what was known is not used */
    assert_int_equal(gw_budget_check(DEV_A, 8, 1700000000, t, &retry), GW_BUDGET_ASK);
    gw_budget_accepted(DEV_A, 8, 1650000000, t);
    assert_int_equal(gw_budget_check(DEV_A, 8, 1660000000, t + 60000, &retry), GW_BUDGET_ASK);
    /* dyndns2 (no timestamp) is never a replay */
    assert_int_equal(gw_budget_check(DEV_A, 8, -1, t + 120000, &retry), GW_BUDGET_ASK);
    assert_true(gw_budget_answers(GW_BUDGET_REPLAY) >= 13);
}

static void test_disabled_until_announced_or_expired(void **state)
{
    (void)state;
    int retry;
    int64_t t = 90000;
    gw_budget_disabled(DEV_B, 2, t);
    assert_int_equal(gw_budget_check(DEV_B, 2, 10, t, &retry), GW_BUDGET_DISABLED);
    assert_int_equal(gw_budget_check(DEV_B, 2, -1, t + 1000, &retry), GW_BUDGET_DISABLED);
    /* not for another generation */
    assert_int_equal(gw_budget_check(DEV_B, 3, 11, t + 1000, &retry), GW_BUDGET_ASK);
    gw_budget_disabled(DEV_B, 2, t);
    /* a status change announced: asked again */
    gw_budget_forget_disabled();
    assert_int_equal(gw_budget_check(DEV_B, 2, 12, t + 2000, &retry), GW_BUDGET_ASK);
    /* and the memory expires by itself */
    gw_budget_disabled(DEV_B, 2, t + 3000);
    assert_int_equal(gw_budget_check(DEV_B, 2, 13, t + 3000 + GW_BUDGET_DISABLED_TTL * 1000 - 1,
                                     &retry), GW_BUDGET_DISABLED);
    assert_int_equal(gw_budget_check(DEV_B, 2, 14, t + 3000 + GW_BUDGET_DISABLED_TTL * 1000,
                                     &retry), GW_BUDGET_ASK);
}

static void device_name(char out[13], unsigned i)
{
    snprintf(out, 13, "d%011u", i);
}

/* A table of 1,024: filling it with 20,000 devices forgets the least
 * recently seen ones, never the one that keeps coming back. */
static void test_eviction_keeps_the_busy_device(void **state)
{
    (void)state;
    int retry;
    char dev[13];
    int64_t t = 10;
    gw_budget_accepted(DEV_A, 1, 5000, t);
    for (unsigned i = 0; i < 20000; i++) {
        device_name(dev, i);
        gw_budget_accepted(dev, 1, 100, ++t);
        if (i % 64 == 0)     /* the attacker's device stays in use */
            assert_int_equal(gw_budget_check(DEV_A, 1, 5000, ++t, &retry), GW_BUDGET_REPLAY);
    }
    assert_int_equal(gw_budget_check(DEV_A, 1, 5000, ++t, &retry), GW_BUDGET_REPLAY);
    /* the newest devices are remembered, the first ones are forgotten */
    device_name(dev, 19999);
    assert_int_equal(gw_budget_check(dev, 1, 100, ++t, &retry), GW_BUDGET_REPLAY);
    unsigned forgotten = 0;
    for (unsigned i = 0; i < 100; i++) {
        device_name(dev, i);
        forgotten += gw_budget_check(dev, 1, 100, ++t, &retry) == GW_BUDGET_ASK;
    }
    assert_int_equal(forgotten, 100);
}

static void test_ids_of_another_length_are_not_remembered(void **state)
{
    (void)state;
    int retry;
    gw_budget_accepted("short", 1, 100, 1);
    assert_int_equal(gw_budget_check("short", 1, 100, 1, &retry), GW_BUDGET_ASK);
    assert_int_equal(gw_budget_check(NULL, 1, 100, 1, &retry), GW_BUDGET_ASK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bucket_burst_then_rate, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_no_bucket_with_rate_zero, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_replay_from_memory, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_until_announced_or_expired, setup_default,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_eviction_keeps_the_busy_device, setup_default,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ids_of_another_length_are_not_remembered,
                                        setup_default, teardown),
    };
    return cmocka_run_group_tests_name("budget", tests, NULL, NULL);
}
