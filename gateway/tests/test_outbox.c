/* Unit tests of the outbox's pure functions (gw_outbox: coalescing rows
 * into changes, which published change supersedes which row, the id list)
 * and of the publisher's send window (gw_pubwin). No database: rows are
 * made here as the publisher reads them, in id order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw_err.h"
#include "gw_outbox.h"
#include "gw_pubwin.h"

#define ROW(id, fqdn, type, addr) {id, fqdn, type, addr, 0}

static void test_coalesce_newest_row_per_name_and_type(void **state)
{
    (void)state;
    const gw_outbox_row_t row[] = {
        ROW(1, "a.z", "A", "192.0.2.1"),
        ROW(2, "b.z", "A", "192.0.2.2"),
        ROW(3, "a.z", "A", "192.0.2.3"),
        ROW(4, "a.z", "AAAA", "2001:db8::4"),
        ROW(5, "b.z", "A", NULL),
        ROW(6, "c.z", "A", "192.0.2.6"),
    };
    size_t ord[6], grp[6];
    size_t k = gw_outbox_coalesce(row, 6, ord, grp);
    assert_int_equal(k, 4);
    /* the newest row of each (name, type), in id order */
    assert_int_equal(ord[0], 2);    /* a.z A: id 3 */
    assert_int_equal(ord[1], 3);    /* a.z AAAA: id 4 */
    assert_int_equal(ord[2], 4);    /* b.z A: id 5, a deletion */
    assert_int_equal(ord[3], 5);    /* c.z A: id 6 */
    /* each row's change */
    const size_t want[6] = {0, 2, 0, 1, 2, 3};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(grp[i], want[i]);
}

static void test_coalesce_empty_and_single(void **state)
{
    (void)state;
    size_t ord[1] = {99}, grp[1] = {99};
    assert_int_equal(gw_outbox_coalesce(NULL, 0, ord, grp), 0);
    const gw_outbox_row_t one[] = {ROW(7, "a.z", "A", "192.0.2.1")};
    assert_int_equal(gw_outbox_coalesce(one, 1, ord, grp), 1);
    assert_int_equal(ord[0], 0);
    assert_int_equal(grp[0], 0);
}

/* Random batches against the definition: every change is the newest row of
 * its (name, type), the changes are in id order, one per (name, type), and
 * each row points at its own (name, type)'s change. */
static void test_coalesce_random_against_definition(void **state)
{
    (void)state;
    static const char *const names[] = {"a.z", "b.z", "c.z", "d.z", "e.z"};
    static const char *const types[] = {"A", "AAAA"};
    enum { N = 200 };
    gw_outbox_row_t row[N];
    size_t ord[N], grp[N];
    unsigned seed = 12345;

    for (int round = 0; round < 500; round++) {
        size_t n = (size_t)(rand_r(&seed) % N) + 1;
        long long id = 1;
        for (size_t i = 0; i < n; i++) {
            id += 1 + rand_r(&seed) % 3;
            row[i] = (gw_outbox_row_t)ROW(id, names[rand_r(&seed) % 5], types[rand_r(&seed) % 2],
                                          (rand_r(&seed) % 4) ? "192.0.2.1" : NULL);
        }
        size_t k = gw_outbox_coalesce(row, n, ord, grp);
        size_t keys = 0;
        for (size_t i = 0; i < n; i++) {
            size_t newest = i;
            int first = 1;
            for (size_t j = 0; j < n; j++)
                if (strcmp(row[j].fqdn, row[i].fqdn) == 0 &&
                    strcmp(row[j].rrtype, row[i].rrtype) == 0) {
                    if (j < i)
                        first = 0;
                    if (row[j].id > row[newest].id)
                        newest = j;
                }
            keys += first;
            assert_true(grp[i] < k);
            assert_int_equal(ord[grp[i]], newest);
        }
        assert_int_equal(k, keys);
        for (size_t c = 1; c < k; c++)
            assert_true(row[ord[c - 1]].id < row[ord[c]].id);
    }
}

static void test_supersedes(void **state)
{
    (void)state;
    const gw_outbox_row_t row[] = {
        ROW(10, "a.z", "A", "192.0.2.1"),
        ROW(11, "a.z", "AAAA", "2001:db8::1"),
        ROW(12, "b.z", "A", "192.0.2.2"),
    };
    size_t ord[3], grp[3];
    assert_int_equal(gw_outbox_coalesce(row, 3, ord, grp), 3);
    /* an older row of a name and type a sent change carries */
    assert_true(gw_outbox_supersedes(row, ord, 3, 9, "a.z", "A"));
    assert_true(gw_outbox_supersedes(row, ord, 3, 5, "b.z", "A"));
    /* not the row itself, nor a newer one */
    assert_false(gw_outbox_supersedes(row, ord, 3, 10, "a.z", "A"));
    assert_false(gw_outbox_supersedes(row, ord, 3, 13, "a.z", "A"));
    /* another type or name */
    assert_false(gw_outbox_supersedes(row, ord, 3, 9, "a.z", "TXT"));
    assert_false(gw_outbox_supersedes(row, ord, 3, 9, "c.z", "A"));
    /* only the changes that were sent count */
    assert_false(gw_outbox_supersedes(row, ord, 2, 5, "b.z", "A"));
    assert_true(gw_outbox_supersedes(row, ord, 2, 5, "a.z", "AAAA"));
}

static void test_ids_text(void **state)
{
    (void)state;
    gw_outbox_ids_t ids = {0};
    assert_string_equal(gw_outbox_ids_text(&ids), "{}");
    gw_outbox_ids_free(&ids);
    for (long long id = 1; id <= 3; id++)
        assert_int_equal(gw_outbox_ids_add(&ids, id), GW_OK);
    assert_int_equal(gw_outbox_ids_add(&ids, 9223372036854775807LL), GW_OK);
    assert_string_equal(gw_outbox_ids_text(&ids), "{1,2,3,9223372036854775807}");
    assert_int_equal(ids.n, 4);
    gw_outbox_ids_free(&ids);
    /* many: the buffer grows */
    char want[16];
    for (long long id = 0; id < 5000; id++)
        assert_int_equal(gw_outbox_ids_add(&ids, id * 1000003), GW_OK);
    const char *t = gw_outbox_ids_text(&ids);
    snprintf(want, sizeof want, ",%lld}", 4999LL * 1000003);
    assert_true(strncmp(t, "{0,1000003,", 11) == 0);
    assert_string_equal(t + strlen(t) - strlen(want), want);
    gw_outbox_ids_free(&ids);
}

static void test_window_seeks_a_refused_change(void **state)
{
    (void)state;
    gw_pubwin_t w;
    int aside[2] = {-1, -1};
    gw_pubwin_init(&w, 1000);
    assert_int_equal(w.limit, 1000);
    assert_int_equal(gw_pubwin_window(&w), GW_PUBWIN_MAX);

    /* a message of 12 changes refused: 6 per message, one in flight, at once */
    gw_pubwin_failure_t f1 = {12, 1};
    assert_int_equal(gw_pubwin_failed(&w, &f1, 1, aside), 1);
    assert_int_equal(aside[0], 0);
    assert_int_equal(w.limit, 6);
    assert_int_equal(gw_pubwin_window(&w), 1);
    /* halving on to the change alone (6, 3, 1) */
    gw_pubwin_failure_t f2 = {6, 1}, f3 = {3, 1};
    assert_int_equal(gw_pubwin_failed(&w, &f2, 1, aside), 1);
    assert_int_equal(gw_pubwin_failed(&w, &f3, 1, aside), 1);
    assert_int_equal(w.limit, 1);
    /* refused alone: set aside, and the zone waits */
    gw_pubwin_failure_t f4 = {1, 1};
    assert_int_equal(gw_pubwin_failed(&w, &f4, 1, aside), 0);
    assert_int_equal(aside[0], 1);
    assert_int_equal(w.limit, 1);
    /* confirmations double the rows back to the batch, and the window opens */
    size_t want[] = {2, 4, 8, 16, 32, 64, 128, 256, 512, 1000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(gw_pubwin_window(&w), 1);
        gw_pubwin_confirmed(&w);
        assert_int_equal(w.limit, want[i]);
    }
    assert_int_equal(gw_pubwin_window(&w), GW_PUBWIN_MAX);
    gw_pubwin_confirmed(&w);
    assert_int_equal(w.limit, 1000);
    /* rows set aside come due: one row at a time */
    gw_pubwin_retry_alone(&w);
    assert_int_equal(w.limit, 1);
    assert_int_equal(gw_pubwin_window(&w), 1);
}

static void test_window_other_failures_wait(void **state)
{
    (void)state;
    gw_pubwin_t w;
    int aside[2];
    gw_pubwin_init(&w, 1000);
    /* no answer (not refused): wait, nothing set aside, the rows stay */
    gw_pubwin_failure_t lost[2] = {{500, 0}, {20, 0}};
    assert_int_equal(gw_pubwin_failed(&w, lost, 2, aside), 0);
    assert_int_equal(aside[0] + aside[1], 0);
    assert_int_equal(w.limit, 1000);
    /* a refused message of several and a lost one: fewer rows, but wait */
    gw_pubwin_failure_t mixed[2] = {{8, 1}, {3, 0}};
    assert_int_equal(gw_pubwin_failed(&w, mixed, 2, aside), 0);
    assert_int_equal(w.limit, 4);
    assert_int_equal(aside[0] + aside[1], 0);
    /* two refused messages of several: the smaller half */
    gw_pubwin_init(&w, 1000);
    gw_pubwin_failure_t two[2] = {{10, 1}, {6, 1}};
    assert_int_equal(gw_pubwin_failed(&w, two, 2, aside), 1);
    assert_int_equal(w.limit, 3);
    /* one refused alone beside one refused of several: set aside, wait */
    gw_pubwin_failure_t alone[2] = {{1, 1}, {4, 1}};
    assert_int_equal(gw_pubwin_failed(&w, alone, 2, aside), 0);
    assert_int_equal(aside[0], 1);
    assert_int_equal(aside[1], 0);
    assert_int_equal(w.limit, 2);
    /* a batch of 0 is one row */
    gw_pubwin_init(&w, 0);
    assert_int_equal(w.limit, 1);
    assert_int_equal(gw_pubwin_window(&w), GW_PUBWIN_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coalesce_newest_row_per_name_and_type),
        cmocka_unit_test(test_coalesce_empty_and_single),
        cmocka_unit_test(test_coalesce_random_against_definition),
        cmocka_unit_test(test_supersedes),
        cmocka_unit_test(test_ids_text),
        cmocka_unit_test(test_window_seeks_a_refused_change),
        cmocka_unit_test(test_window_other_failures_wait),
    };
    return cmocka_run_group_tests_name("outbox", tests, NULL, NULL);
}
