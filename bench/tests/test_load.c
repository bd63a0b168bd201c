/* Unit tests of ddns-load's pure parts: the latency histogram against
 * exact quantiles, the credentials file checks, the request bytes of each
 * workload (signatures recomputed here with OpenSSL from PROTOCOL.md 4.3,
 * Basic credentials decoded) and the classification of answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ld_devices.h"
#include "ld_hist.h"
#include "ld_work.h"

/* The "derive" vector's device: master k1 = 00..1f, device 3c5ab4f09a21. */
#define DEV_ID "3c5ab4f09a21"
#define DEV_SECRET "Z-UZrYwVk5W6E474Gl59fPUPryfJH8nAM34PVPPb120"

static int starts_with(const void *s, const char *prefix)
{
    return strncmp((const char *)s, prefix, strlen(prefix)) == 0;
}

/* ---- histogram -------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_hist_exact_small_values(void **state)
{
    (void)state;
    ld_hist_t *h = malloc(sizeof *h);
    assert_non_null(h);
    ld_hist_init(h);
    for (uint64_t v = 1; v <= 100; v++)
        ld_hist_add(h, v);
    assert_int_equal(h->count, 100);
    assert_true(ld_hist_quantile(h, 0.5) == 50.0);
    assert_true(ld_hist_quantile(h, 0.9) == 90.0);
    assert_true(ld_hist_quantile(h, 0.99) == 99.0);
    assert_true(ld_hist_quantile(h, 1.0) == 100.0);
    assert_int_equal(h->min_us, 1);
    free(h);
}

static void test_hist_buckets_cover_every_value_once(void **state)
{
    (void)state;
    /* Consecutive buckets tile the value range without gaps or overlaps,
     * and each is at most 1/128 of its lowest value wide. */
    for (uint32_t i = 0; i + 1 < LD_HIST_BUCKETS; i++) {
        uint64_t low = ld_hist_bucket_low(i), w = ld_hist_bucket_width(i);
        assert_int_equal(low + w, ld_hist_bucket_low(i + 1));
        assert_int_equal(ld_hist_index(low), i);
        assert_int_equal(ld_hist_index(low + w - 1), i);
        if (low >= 256)
            assert_true(w * 128 <= low);
    }
    assert_int_equal(ld_hist_index(LD_HIST_MAX_US * 4), LD_HIST_BUCKETS - 1);
}

static void test_hist_quantiles_within_half_percent(void **state)
{
    (void)state;
    enum { N = 100000 };
    uint64_t *v = malloc(N * sizeof *v);
    ld_hist_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(v);
    assert_non_null(a);
    assert_non_null(b);
    ld_hist_init(a);
    ld_hist_init(b);
    srand(42);
    for (int i = 0; i < N; i++) {
        /* long-tailed: 100 us to about 10 s */
        double x = 100.0 * exp((double)rand() / RAND_MAX * 11.5);
        v[i] = (uint64_t)x;
        ld_hist_add(i % 2 ? a : b, v[i]);
    }
    ld_hist_merge(a, b);
    assert_int_equal(a->count, N);
    qsort(v, N, sizeof *v, cmp_u64);
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        size_t rank = (size_t)ceil(qs[i] * N);
        double exact = (double)v[rank - 1];
        double got = ld_hist_quantile(a, qs[i]);
        assert_true(fabs(got - exact) <= exact * 0.005);
    }
    assert_true(ld_hist_quantile(a, 1.0) == (double)v[N - 1]);
    assert_int_equal(a->min_us, v[0]);
    free(v);
    free(a);
    free(b);
}

/* ---- credentials file --------------------------------------------------------- */

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/test_load_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static int load(const char *text, int need_fqdn, ld_device_t **d, size_t *n, char *err)
{
    char *path = write_tmp(text);
    int rc = ld_devices_load(path, need_fqdn, d, n, err, 300);
    unlink(path);
    return rc;
}

static void test_devices_both_forms(void **state)
{
    (void)state;
    ld_device_t *d = NULL;
    size_t n = 0;
    char err[300];
    int rc = load("{\"device_id\":\"" DEV_ID "\",\"kid\":\"k1\",\"secret\":\"" DEV_SECRET
                  "\",\"fqdn\":\"cam.example.test\"}\n\n"
                  "{\"device_id\":\"020000000002\",\"password\":\"k7." DEV_SECRET "\"}\n",
                  0, &d, &n, err);
    assert_int_equal(rc, 0);
    assert_int_equal(n, 2);
    assert_string_equal(d[0].device_id, DEV_ID);
    assert_string_equal(d[0].kid, "k1");
    assert_string_equal(d[0].fqdn, "cam.example.test");
    assert_int_equal(d[0].index, 0);
    assert_string_equal(d[1].kid, "k7");
    assert_null(d[1].fqdn);
    assert_int_equal(d[1].index, 1);
    assert_memory_equal(d[0].secret, d[1].secret, DDNS_SECRET_LEN);
    ld_devices_free(d, n);

    /* generation 1 on: the kid is the key reference, the password is sent
     * as it is (it is not the secret) */
    rc = load("{\"device_id\":\"" DEV_ID "\",\"kid\":\"k1/2\",\"secret\":\"" DEV_SECRET
              "\",\"password\":\"k1/2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
              "\"fqdn\":\"cam.example.test\"}\n"
              "{\"device_id\":\"020000000002\",\"kid\":\"k1/3\",\"secret\":\"" DEV_SECRET
              "\",\"fqdn\":\"cam2.example.test\"}\n", 0, &d, &n, err);
    assert_int_equal(rc, 0);
    assert_string_equal(d[0].kid, "k1/2");
    unsigned char plain[200];
    int pl = EVP_DecodeBlock(plain, (unsigned char *)d[0].basic + 6, (int)strlen(d[0].basic + 6));
    assert_true(pl > 0);
    plain[pl] = '\0';
    assert_string_equal((char *)plain, DEV_ID ":k1/2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_null(d[1].basic);     /* signed updates only */
    ld_devices_free(d, n);
}

static void expect_error(const char *text, int need_fqdn, const char *where, const char *what)
{
    ld_device_t *d = NULL;
    size_t n = 0;
    char err[300] = "";
    assert_int_equal(load(text, need_fqdn, &d, &n, err), -1);
    assert_null(d);
    if (strstr(err, where) == NULL || strstr(err, what) == NULL)
        fail_msg("error '%s' lacks '%s' or '%s'", err, where, what);
    assert_null(strstr(err, DEV_SECRET));
}

static void test_devices_errors_name_line_and_field(void **state)
{
    (void)state;
    const char *good = "{\"device_id\":\"" DEV_ID "\",\"kid\":\"k1\",\"secret\":\"" DEV_SECRET "\"}\n";
    char text[1024];

    snprintf(text, sizeof text, "%s{\"device_id\":\"3C5AB4F09A22\",\"kid\":\"k1\",\"secret\":\"" DEV_SECRET "\"}\n", good);
    expect_error(text, 0, ":2:", "device_id");
    snprintf(text, sizeof text, "%s{\"device_id\":\"010000000001\",\"kid\":\"k1\",\"secret\":\"" DEV_SECRET "\"}\n", good);
    expect_error(text, 0, ":2:", "device_id");
    expect_error("{\"device_id\":\"" DEV_ID "\",\"kid\":\"k1\"}\n", 0, ":1:", "secret");
    expect_error("{\"device_id\":\"" DEV_ID "\"}\n", 0, ":1:", "password");
    expect_error("{\"device_id\":\"" DEV_ID "\",\"kid\":\"K1\",\"secret\":\"" DEV_SECRET "\"}\n", 0,
                 ":1:", "kid");
    expect_error("{\"device_id\":\"" DEV_ID "\",\"kid\":\"k1\",\"secret\":\"abc\"}\n", 0, ":1:",
                 "secret");
    expect_error("{\"device_id\":\"" DEV_ID "\",\"kid\":\"k1\",\"secret\":\"" DEV_SECRET
                 "\",\"password\":\"k2." DEV_SECRET "\"}\n", 0, ":1:", "does not match");
    expect_error(good, 1, ":1:", "fqdn");
    expect_error("{\"device_id\":\"" DEV_ID "\",\"kid\":\"k1/2\",\"secret\":\"" DEV_SECRET
                 "\",\"fqdn\":\"a.b\"}\n", 1, ":1:", "password: missing");
    expect_error("{\"device_id\":\"" DEV_ID "\",\"kid\":\"k1/2\",\"secret\":\"" DEV_SECRET
                 "\",\"password\":\"k1/3." DEV_SECRET "\"}\n", 0, ":1:", "password");
    expect_error("{\"device_id\":\"" DEV_ID "\",\"password\":\"k1/2." DEV_SECRET "\"}\n", 0,
                 ":1:", "generation 1");
    expect_error("{\"device_id\":\"" DEV_ID "\",\"kid\":\"k1\",\"secret\":\"" DEV_SECRET
                 "\",\"fqdn\":\"a b\"}\n", 0, ":1:", "fqdn");
    expect_error("not json\n", 0, ":1:", "not JSON");
    expect_error("[1]\n", 0, ":1:", "object");
    expect_error("\n\n", 0, "test_load_", "no device");
    snprintf(text, sizeof text, "%s%s", good, good);
    expect_error(text, 0, DEV_ID, "twice");
}

/* ---- requests ----------------------------------------------------------------- */

static ld_device_t *one_device(size_t *n, const char *fqdn)
{
    ld_device_t *d = NULL;
    char err[300], text[512];
    snprintf(text, sizeof text, "{\"device_id\":\"" DEV_ID "\",\"kid\":\"k1\",\"secret\":\""
             DEV_SECRET "\",\"fqdn\":\"%s\"}\n", fqdn);
    assert_int_equal(load(text, 0, &d, n, err), 0);
    return d;
}

/* Value of header name in the request, into out. */
static void header(const char *req, const char *name, char *out, size_t size)
{
    const char *p = strstr(req, name);
    assert_non_null(p);
    p += strlen(name);
    size_t l = strcspn(p, "\r");
    assert_true(l < size);
    memcpy(out, p, l);
    out[l] = '\0';
}

static void test_signed_request_verifies(void **state)
{
    (void)state;
    size_t n, len;
    ld_device_t *d = one_device(&n, "cam.example.test");
    uint8_t out[LD_REQUEST_MAX + 1], nonce[DDNS_NONCE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
    ld_work_t w = {.wl = LD_WL_NOCHG, .host = "gw.example.test", .path = "/"};

    d->index = 5;
    assert_int_equal(ld_work_build(&w, d, 1700000000, nonce, out, &len), 0);
    out[len] = '\0';
    const char *req = (const char *)out;
    assert_true(starts_with(req, "POST /v1/update HTTP/1.1\r\nHost: gw.example.test\r\n"));
    const char *body = strstr(req, "\r\n\r\n") + 4;
    assert_string_equal(body, "ipv4=198.18.0.5");

    /* Recompute the signature from the protocol's string to sign. */
    char auth[300], sts[400], want[65];
    header(req, "Authorization: ", auth, sizeof auth);
    assert_non_null(strstr(auth, "id=" DEV_ID ",kid=k1,ts=1700000000,nonce=0102030405060708,sig="));
    snprintf(sts, sizeof sts, "DDNS-HMAC-SHA256\nPOST\n/v1/update\n" DEV_ID "\nk1\n1700000000\n"
             "0102030405060708\n%s", body);
    unsigned char mac[32];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), d->secret, DDNS_SECRET_LEN, (const unsigned char *)sts, strlen(sts),
         mac, &maclen);
    for (unsigned i = 0; i < 32; i++)
        snprintf(want + 2 * i, 3, "%02x", mac[i]);
    assert_string_equal(strstr(auth, "sig=") + 4, want);

    /* nochg keeps the address, change moves it every time. */
    char a1[16], a2[16], a3[16];
    ld_addr_nochg(5, a1);
    ld_addr_nochg(5, a2);
    assert_string_equal(a1, a2);
    ld_addr_nochg(131072 + 7, a3);
    assert_string_equal(a3, "10.0.0.7");
    w.wl = LD_WL_CHANGE;
    assert_int_equal(ld_work_build(&w, d, 1700000001, nonce, out, &len), 0);
    out[len] = '\0';
    strcpy(a1, strstr((char *)out, "ipv4=") + 5);
    assert_int_equal(ld_work_build(&w, d, 1700000002, nonce, out, &len), 0);
    out[len] = '\0';
    strcpy(a2, strstr((char *)out, "ipv4=") + 5);
    assert_string_not_equal(a1, a2);
    assert_true(starts_with(a1, "100."));
    assert_int_equal(d->changes, 2);
    ld_devices_free(d, n);
}

static void test_dyndns2_and_hello_requests(void **state)
{
    (void)state;
    size_t n, len;
    ld_device_t *d = one_device(&n, "cam.example.test");
    uint8_t out[LD_REQUEST_MAX + 1], nonce[DDNS_NONCE_LEN] = {0};
    ld_work_t w = {.wl = LD_WL_DYNDNS2, .host = "gw.example.test", .path = "/"};

    assert_int_equal(ld_work_build(&w, d, 1, nonce, out, &len), 0);
    out[len] = '\0';
    assert_true(starts_with(out, "GET /nic/update?hostname=cam.example.test&myip=198.18.0.0 "
                                 "HTTP/1.1\r\nHost: gw.example.test\r\n"));
    char auth[200];
    unsigned char plain[200];
    header((char *)out, "Authorization: Basic ", auth, sizeof auth);
    int pl = EVP_DecodeBlock(plain, (unsigned char *)auth, (int)strlen(auth));
    assert_true(pl > 0);
    plain[pl] = '\0';
    /* EVP_DecodeBlock keeps the zero bytes of the padding */
    assert_string_equal((char *)plain, DEV_ID ":k1." DEV_SECRET);

    w.wl = LD_WL_HELLO;
    w.path = "/x";
    assert_int_equal(ld_work_build(&w, NULL, 1, nonce, out, &len), 0);
    out[len] = '\0';
    assert_true(starts_with(out, "GET /x HTTP/1.1\r\nHost: gw.example.test\r\n"));
    assert_true(len > 4 && memcmp(out + len - 4, "\r\n\r\n", 4) == 0);
    ld_devices_free(d, n);
}

/* replay: the recorded bytes, exactly, every time; and none longer than a
 * request may be */
static void test_replay_sends_the_recorded_bytes(void **state)
{
    (void)state;
    static const uint8_t rec[] = "POST /v1/update HTTP/1.1\r\nHost: x\r\n\r\nipv4=192.0.2.1";
    uint8_t out[LD_REQUEST_MAX], nonce[DDNS_NONCE_LEN] = {0};
    size_t len = 0;
    ld_work_t w = {.wl = LD_WL_REPLAY, .host = "gw.example.test", .path = "/",
                   .replay = rec, .replay_len = sizeof rec - 1};
    for (uint64_t ts = 1; ts < 3; ts++) {
        assert_int_equal(ld_work_build(&w, NULL, ts, nonce, out, &len), 0);
        assert_int_equal(len, sizeof rec - 1);
        assert_memory_equal(out, rec, len);
    }
    w.replay_len = LD_REQUEST_MAX + 1;
    assert_int_equal(ld_work_build(&w, NULL, 1, nonce, out, &len), -1);
}

/* ---- answers -------------------------------------------------------------------- */

static ld_answer_t parse(ld_workload_t wl, const char *raw)
{
    ld_answer_t a;
    ld_work_parse(wl, (const uint8_t *)raw, strlen(raw), &a);
    return a;
}

#define HTTP(status, body) "HTTP/1.1 " status "\r\nContent-Length: " body

static void test_answers_classified(void **state)
{
    (void)state;
    ld_answer_t a = parse(LD_WL_NOCHG, HTTP("200 OK", "15\r\n\r\ngood 192.0.2.1\nHTTP/1.1"));
    assert_int_equal(a.kind, LD_ANS_VALID);
    assert_int_equal(a.result, LD_R_GOOD);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.total_len, strlen(HTTP("200 OK", "15\r\n\r\ngood 192.0.2.1\n")));
    a = parse(LD_WL_CHANGE, HTTP("401 Unauthorized", "8\r\n\r\nbadauth\n"));
    assert_int_equal(a.result, LD_R_BADAUTH);
    assert_false(ld_result_ok(a.result));
    a = parse(LD_WL_CHANGE, HTTP("409 Conflict", "7\r\n\r\nreplay\n"));
    assert_int_equal(a.result, LD_R_REPLAY);
    a = parse(LD_WL_REPLAY, HTTP("429 Too Many Requests", "14\r\n\r\nratelimit 300\n"));
    assert_int_equal(a.result, LD_R_RATELIMIT);
    a = parse(LD_WL_CHANGE, HTTP("503 x", "4\r\n\r\n911\n"));
    assert_int_equal(a.result, LD_R_911);
    a = parse(LD_WL_CHANGE, HTTP("403 Forbidden", "17\r\n\r\nbadaddr 10.0.0.1\n"));
    assert_int_equal(a.result, LD_R_BADADDR);
    assert_false(ld_result_ok(a.result));
    assert_string_equal(ld_result_name(LD_R_BADADDR), "badaddr");
    /* an answer, but not one of the workload: counted as its own result */
    a = parse(LD_WL_NOCHG, HTTP("409 Conflict", "16\r\n\r\nmoved 192.0.2.9\n"));
    assert_int_equal(a.kind, LD_ANS_VALID);
    assert_int_equal(a.result, LD_R_MOVED);
    assert_false(ld_result_ok(a.result));
    assert_string_equal(ld_result_name(LD_R_MOVED), "moved");
    /* token and status disagree: not a valid answer */
    a = parse(LD_WL_NOCHG, HTTP("500 x", "15\r\n\r\ngood 192.0.2.1\n"));
    assert_int_equal(a.kind, LD_ANS_INVALID);
    assert_int_equal(a.status, 500);
    a = parse(LD_WL_NOCHG, HTTP("200 OK", "6\r\n\r\nhello\n"));
    assert_int_equal(a.kind, LD_ANS_INVALID);
    a = parse(LD_WL_NOCHG, HTTP("200 OK", "15\r\n\r\ngood"));
    assert_int_equal(a.kind, LD_ANS_INCOMPLETE);
    a = parse(LD_WL_NOCHG, "HTTP/1.1 200 OK\r\nContent-Len");
    assert_int_equal(a.kind, LD_ANS_INCOMPLETE);
    a = parse(LD_WL_NOCHG, "SSH-2.0-OpenSSH\r\n\r\n");
    assert_int_equal(a.kind, LD_ANS_GARBAGE);
    a = parse(LD_WL_HELLO, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(a.kind, LD_ANS_GARBAGE);

    a = parse(LD_WL_DYNDNS2, HTTP("200 OK", "16\r\n\r\nnochg 192.0.2.1\n"));
    assert_int_equal(a.result, LD_R_NOCHG);
    a = parse(LD_WL_DYNDNS2_CHANGE, HTTP("200 OK", "6\r\n\r\nnohost"));
    assert_int_equal(a.result, LD_R_NOHOST);
    a = parse(LD_WL_DYNDNS2, HTTP("200 OK", "5\r\n\r\nhello"));
    assert_int_equal(a.kind, LD_ANS_INVALID);

    a = parse(LD_WL_HELLO, HTTP("200 OK", "6\r\n\r\nhello\n"));
    assert_int_equal(a.result, LD_R_HELLO);
    assert_true(ld_result_ok(a.result));
    a = parse(LD_WL_HELLO, HTTP("404 Not Found", "9\r\n\r\nnotfound\n"));
    assert_int_equal(a.kind, LD_ANS_INVALID);
    assert_string_equal(ld_result_name(LD_R_911), "911");
    assert_string_equal(ld_result_name(LD_R_HELLO), "hello");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_exact_small_values),
        cmocka_unit_test(test_hist_buckets_cover_every_value_once),
        cmocka_unit_test(test_hist_quantiles_within_half_percent),
        cmocka_unit_test(test_devices_both_forms),
        cmocka_unit_test(test_devices_errors_name_line_and_field),
        cmocka_unit_test(test_signed_request_verifies),
        cmocka_unit_test(test_dyndns2_and_hello_requests),
        cmocka_unit_test(test_replay_sends_the_recorded_bytes),
        cmocka_unit_test(test_answers_classified),
    };
    return cmocka_run_group_tests_name("load", tests, NULL, NULL);
}
