/* test_sdk: unit tests of the firmware SDK (cmocka).
 *
 * Known-answer tests for SHA-256 (FIPS 180-4 examples) and HMAC-SHA256
 * (RFC 4231), the protocol vectors of docs/vectors/protocol-vectors.txt
 * (sign, derive and response records), negative tests (short buffers with
 * a canary, invalid inputs for the builders and the full check, truncated
 * and random answers, HTTP framing) and the decisions of ddns_next() and
 * the clock correction for every answer. Buffers
 * handed to the parsers are heap copies of the exact length so that the
 * address sanitizer catches any read past the end. Run from the repository
 * root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ddns_check.h"
#include "ddns_credentials.h"
#include "ddns_error.h"
#include "ddns_http.h"
#include "ddns_sdk.h"
#include "ddns_sha256.h"
#include "vectors.h"

/* The documented defaults of ddns_options_t (test_options_default checks
 * ddns_options_default() against them), and the options the ddns_next()
 * tests use: the defaults. */
#define MIN_INTERVAL 60u
#define KEEPALIVE 86400u
#define BACKOFF_FIRST 300u
#define BACKOFF_MAX 3600u
#define RETRY_AFTER_MAX 1048576u
static const ddns_options_t dflt = { MIN_INTERVAL, KEEPALIVE, BACKOFF_FIRST, BACKOFF_MAX,
                                     RETRY_AFTER_MAX, 4 };

/* ---- Helpers -------------------------------------------------------------- */

static ddns_span_t S(const char *s)
{
    return ddns_span(s, strlen(s));
}

static void to_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void assert_hex(const uint8_t *p, size_t n, const char *expect)
{
    char buf[2 * 256 + 1];
    assert_true(n <= 256);
    to_hex(p, n, buf);
    assert_string_equal(buf, expect);
}

static void from_hex(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* A span equal to the text (len 0 for ""). */
static void assert_span(ddns_span_t sp, const char *text)
{
    assert_int_equal(sp.len, strlen(text));
    if (sp.len > 0)
        assert_memory_equal(sp.ptr, text, sp.len);
}

/* Heap copy of exactly n bytes (at least 1 allocated, never readable past n
 * under ASan when n > 0). */
static uint8_t *exact_copy(const void *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    assert_non_null(q);
    if (n)
        memcpy(q, p, n);
    return q;
}

static const uint8_t test_secret[32] = {
    0x67, 0xe5, 0x19, 0xad, 0x8c, 0x15, 0x93, 0x95, 0xba, 0x13, 0x8e, 0xf8, 0x1a, 0x5e, 0x7d, 0x7c,
    0xf5, 0x0f, 0xaf, 0x27, 0xc9, 0x1f, 0xc9, 0xc0, 0x33, 0x7e, 0x0f, 0x54, 0xf3, 0xdb, 0xd7, 0x6d,
};

static ddns_request_t base_request(void)
{
    ddns_request_t r;
    memset(&r, 0, sizeof r);
    r.host = S("ddns.example.test");
    r.device_id = S("3c5ab4f09a21");
    r.kid = S("k1");
    r.ts = 1700000000;
    memcpy(r.nonce, "\x01\x23\x45\x67\x89\xab\xcd\xef", 8);
    r.ipv4 = S("192.0.2.10");
    return r;
}

/* ---- SHA-256 -------------------------------------------------------------- */

static void ddns_sha256(const void *data, size_t len, uint8_t digest[32])
{
    ddns_sha256_t ctx;
    ddns_sha256_init(&ctx);
    ddns_sha256_update(&ctx, data, len);
    ddns_sha256_final(&ctx, digest);
}

static void sha_hex(const void *data, size_t len, const char *expect)
{
    uint8_t d[32];
    ddns_sha256(data, len, d);
    assert_hex(d, 32, expect);
}

static void test_sha256_fips(void **state)
{
    (void)state;
    sha_hex("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha_hex("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_hex(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha_hex(m448, strlen(m448),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    sha_hex(m896, strlen(m896),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

    /* One million 'a', fed in uneven pieces. */
    uint8_t chunk[997];
    memset(chunk, 'a', sizeof chunk);
    ddns_sha256_t ctx;
    ddns_sha256_init(&ctx);
    size_t left = 1000000;
    while (left > 0) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        ddns_sha256_update(&ctx, chunk, n);
        left -= n;
    }
    uint8_t d[32];
    ddns_sha256_final(&ctx, d);
    assert_hex(d, 32, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_sha256_incremental(void **state)
{
    (void)state;
    uint8_t msg[300];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)i;

    /* Chain over the digests of every prefix length 0..300 (covers the
     * padding cases 55, 56, 63, 64, 119, 120, ...); the expected value comes
     * from Python's hashlib. */
    ddns_sha256_t chain;
    ddns_sha256_init(&chain);
    for (size_t n = 0; n <= sizeof msg; n++) {
        uint8_t d[32];
        ddns_sha256(msg, n, d);
        ddns_sha256_update(&chain, d, sizeof d);
    }
    uint8_t c[32];
    ddns_sha256_final(&chain, c);
    assert_hex(c, 32, "ddbdb189f5834c274dbe603d6d2874adf7234fd8a075c3d1bfbadc2107a75676");

    /* Every split point across the block boundaries gives the one-shot
     * digest, as does byte-at-a-time feeding. */
    uint8_t whole[32];
    ddns_sha256(msg, 200, whole);
    for (size_t cut = 0; cut <= 200; cut++) {
        for (size_t cut2 = cut; cut2 <= 200; cut2 += 37) {
            ddns_sha256_t ctx;
            uint8_t d[32];
            ddns_sha256_init(&ctx);
            ddns_sha256_update(&ctx, msg, cut);
            ddns_sha256_update(&ctx, msg + cut, cut2 - cut);
            ddns_sha256_update(&ctx, NULL, 0);
            ddns_sha256_update(&ctx, msg + cut2, 200 - cut2);
            ddns_sha256_final(&ctx, d);
            assert_memory_equal(d, whole, 32);
        }
    }
    ddns_sha256_t ctx;
    uint8_t d[32];
    ddns_sha256_init(&ctx);
    for (size_t i = 0; i < 200; i++)
        ddns_sha256_update(&ctx, msg + i, 1);
    ddns_sha256_final(&ctx, d);
    assert_memory_equal(d, whole, 32);
}

/* ---- HMAC-SHA256 (RFC 4231) ----------------------------------------------- */

static void hmac_case(const uint8_t *key, size_t klen, const void *data, size_t dlen,
                      const char *expect)
{
    uint8_t mac[32];
    size_t n = strlen(expect) / 2;
    ddns_hmac_sha256(key, klen, data, dlen, mac);
    assert_hex(mac, n, expect);

    /* The MAC may overwrite the data it covers. */
    uint8_t buf[200];
    assert_true(dlen <= sizeof buf);
    memcpy(buf, data, dlen);
    ddns_hmac_sha256(key, klen, buf, dlen, buf);
    assert_memory_equal(buf, mac, n);
}

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    uint8_t k[131], d[50];

    memset(k, 0x0b, 20);
    hmac_case(k, 20, "Hi There", 8,
              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    hmac_case((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28,
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(k, 0xaa, 20);
    memset(d, 0xdd, 50);
    hmac_case(k, 20, d, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    for (int i = 0; i < 25; i++)
        k[i] = (uint8_t)(i + 1);
    memset(d, 0xcd, 50);
    hmac_case(k, 25, d, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
    memset(k, 0x0c, 20);
    hmac_case(k, 20, "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b");
    memset(k, 0xaa, 131);
    const char *t6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    hmac_case(k, 131, t6, strlen(t6),
              "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    const char *t7 = "This is a test using a larger than block-size key and a larger than "
                     "block-size data. The key needs to be hashed before being used by the "
                     "HMAC algorithm.";
    hmac_case(k, 131, t7, strlen(t7),
              "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

/* ---- Protocol vectors ----------------------------------------------------- */

static int setup_vectors(void **state)
{
    *state = vectors_load(NULL);
    return *state == NULL ? -1 : 0;
}

/* The copy parse_text() keeps (freed here, so that valgrind sees nothing). */
static uint8_t *parse_text_copy;

static int teardown_vectors(void **state)
{
    vectors_free(*state);
    free(parse_text_copy);
    parse_text_copy = NULL;
    return 0;
}

/* Fills req from a sign record; body parameters come from the record's
 * body field, peer as the address learnt in a state (which stays until the
 * next call). */
static void request_from_record(const vectors_rec_t *rec, ddns_request_t *req, uint8_t secret[32])
{
    static ddns_state_t st;

    memset(req, 0, sizeof *req);
    memset(&st, 0, sizeof st);
    req->host = S(vectors_need(rec, "host"));
    req->device_id = S(vectors_need(rec, "device_id"));
    req->kid = S(vectors_need(rec, "kid"));
    req->ts = strtoull(vectors_need(rec, "ts"), NULL, 10);
    from_hex(vectors_need(rec, "nonce"), req->nonce, 8);
    from_hex(vectors_need(rec, "secret_hex"), secret, 32);

    const char *body = vectors_need(rec, "body");
    while (*body != '\0') {
        const char *amp = strchr(body, '&');
        size_t n = amp ? (size_t)(amp - body) : strlen(body);
        if (n > 5 && strncmp(body, "ipv4=", 5) == 0)
            req->ipv4 = ddns_span(body + 5, n - 5);
        else if (n > 5 && strncmp(body, "ipv6=", 5) == 0)
            req->ipv6 = ddns_span(body + 5, n - 5);
        else if (n > 5 && n - 5 <= sizeof st.peer && strncmp(body, "peer=", 5) == 0) {
            memcpy(st.peer, body + 5, n - 5);
            st.peer_len = (uint8_t)(n - 5);
            req->state = &st;
        } else
            fail_msg("unexpected body parameter in sign record: %s", body);
        body += n + (amp ? 1 : 0);
    }
}

/* ---- Authorization value and body ----------------------------------------- */

/* The value of the Authorization header line and the body of a complete
 * request. */
static void request_parts(const uint8_t *req, size_t len, ddns_span_t *auth, ddns_span_t *body)
{
    static const char name[] = "\r\nAuthorization: ";
    const uint8_t *a = memmem(req, len, name, sizeof name - 1);
    const uint8_t *end = memmem(req, len, "\r\n\r\n", 4);
    assert_non_null(a);
    assert_non_null(end);
    a += sizeof name - 1;
    const uint8_t *eol = memmem(a, len - (size_t)(a - req), "\r\n", 2);
    assert_non_null(eol);
    *auth = ddns_span(a, (size_t)(eol - a));
    *body = ddns_span(end + 4, len - (size_t)(end + 4 - req));
}

/* The Authorization value and the body of a sign record's request,
 * signed and presigned (mac), are the record's and the very bytes of the
 * complete request full; a size query needs no MAC; every buffer one byte
 * short is refused and left untouched. */
static void check_vector_parts(const vectors_rec_t *rec, const ddns_request_t *req,
                               const uint8_t secret[32], const uint8_t mac[32],
                               const uint8_t *full, size_t full_len)
{
    uint8_t buf[DDNS_AUTHORIZATION_MAX + 1];
    size_t len, needed;
    ddns_span_t auth, body;

    request_parts(full, full_len, &auth, &body);
    assert_span(auth, vectors_need(rec, "authorization"));
    assert_span(body, vectors_need(rec, "body"));

    /* with the built-in crypto */
    assert_int_equal(ddns_request_authorization(req, secret, NULL, 0, &needed), DDNS_E_BUFFER);
    assert_int_equal(needed, auth.len);
    assert_true(needed <= DDNS_AUTHORIZATION_MAX);
    assert_int_equal(ddns_request_authorization(req, secret, buf, needed, &len), DDNS_OK);
    assert_int_equal(len, auth.len);
    assert_memory_equal(buf, auth.ptr, len);
    memset(buf, 0xa5, sizeof buf);
    assert_int_equal(ddns_request_authorization(req, secret, buf, needed - 1, &len),
                     DDNS_E_BUFFER);
    assert_int_equal(len, needed);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0xa5);

    /* with the platform's MAC */
    assert_int_equal(ddns_request_authorization_presigned(req, NULL, NULL, 0, &len),
                     DDNS_E_BUFFER);
    assert_int_equal(len, auth.len);
    assert_int_equal(ddns_request_authorization_presigned(req, NULL, buf, sizeof buf, &len),
                     DDNS_E_NULL);
    assert_int_equal(len, 0);
    assert_int_equal(ddns_request_authorization_presigned(req, mac, buf, sizeof buf, &len),
                     DDNS_OK);
    assert_int_equal(len, auth.len);
    assert_memory_equal(buf, auth.ptr, len);

    /* the body */
    assert_int_equal(ddns_request_body(req, NULL, 0, &needed),
                     body.len > 0 ? DDNS_E_BUFFER : DDNS_OK);
    assert_int_equal(needed, body.len);
    memset(buf, 0xa5, sizeof buf);
    assert_int_equal(ddns_request_body(req, buf, sizeof buf, &len), DDNS_OK);
    assert_int_equal(len, body.len);
    if (len > 0) {
        assert_memory_equal(buf, body.ptr, len);
        assert_int_equal(ddns_request_body(req, buf, len - 1, &len), DDNS_E_BUFFER);
        assert_int_equal(len, body.len);
    }
    assert_int_equal(buf[body.len], 0xa5);

    /* the size query of the complete request needs no MAC */
    assert_int_equal(ddns_request_build_presigned(req, NULL, NULL, 0, &needed), DDNS_E_BUFFER);
    assert_int_equal(needed, full_len);
}

static void test_vectors_sign(void **state)
{
    const vectors_t *v = *state;
    size_t count = 0;

    for (const vectors_rec_t *rec = vectors_next(v, NULL, "sign"); rec;
         rec = vectors_next(v, rec, "sign")) {
        ddns_request_t req;
        uint8_t secret[32], mac[32], buf[DDNS_REQUEST_MAX];
        size_t len, xlen, needed;

        request_from_record(rec, &req, secret);
        assert_int_equal(ddns_request_check(&req), DDNS_OK);

        /* String to sign. */
        uint8_t *sts = vectors_hex(rec, "string_to_sign_hex", &xlen);
        assert_int_equal(ddns_request_string_to_sign(&req, buf, sizeof buf, &len), DDNS_OK);
        assert_int_equal(len, xlen);
        assert_memory_equal(buf, sts, len);

        /* Signature as a platform signer computes it. */
        ddns_hmac_sha256(secret, 32, sts, xlen, mac);
        assert_hex(mac, 32, vectors_need(rec, "sig"));
        free(sts);

        /* Complete request. */
        uint8_t *expect = vectors_hex(rec, "request_hex", &xlen);
        assert_int_equal(ddns_request_size(&req, &needed), DDNS_OK);
        assert_int_equal(needed, xlen);
        assert_int_equal(ddns_request_build(&req, secret, buf, sizeof buf, &len), DDNS_OK);
        assert_int_equal(len, xlen);
        assert_memory_equal(buf, expect, len);

        /* Authorization header line inside it. */
        const char *auth = vectors_need(rec, "authorization");
        char line[512];
        snprintf(line, sizeof line, "\r\nAuthorization: %s\r\n", auth);
        assert_non_null(memmem(buf, len, line, strlen(line)));

        /* Presigned path gives the same bytes. */
        memset(buf, 0, sizeof buf);
        assert_int_equal(ddns_request_build_presigned(&req, mac, buf, sizeof buf, &len), DDNS_OK);
        assert_int_equal(len, xlen);
        assert_memory_equal(buf, expect, len);

        /* The Authorization value and the body on their own. */
        check_vector_parts(rec, &req, secret, mac, expect, xlen);
        free(expect);
        count++;
    }
    assert_int_equal(count, vectors_count(v, "sign"));
    assert_true(count >= 10);
}

static void test_vectors_derive(void **state)
{
    const vectors_t *v = *state;
    size_t count = 0, generations = 0;

    for (const vectors_rec_t *rec = vectors_next(v, NULL, "derive"); rec;
         rec = vectors_next(v, rec, "derive")) {
        uint8_t secret[32], expect[32];
        char kid[DDNS_KID_MAX + 1];
        size_t kid_len = 99;
        const char *ref = vectors_need(rec, "key_ref");

        from_hex(vectors_need(rec, "secret_hex"), expect, 32);
        /* what the device stores as its kid */
        assert_int_equal(ddns_kid_check(S(ref)), DDNS_OK);
        assert_true(strlen(ref) <= DDNS_KID_MAX);
        if (strcmp(vectors_need(rec, "generation"), "0") == 0) {
            /* the legacy password carries the secret */
            assert_int_equal(ddns_password_decode(S(vectors_need(rec, "password")), kid,
                                                  &kid_len, secret), DDNS_OK);
            assert_string_equal(kid, vectors_need(rec, "kid"));
            assert_string_equal(kid, ref);
            assert_int_equal(kid_len, strlen(kid));
            assert_memory_equal(secret, expect, 32);
        } else {
            /* a later generation's password does not */
            assert_int_equal(ddns_password_decode(S(vectors_need(rec, "password")), kid,
                                                  &kid_len, secret), DDNS_E_PASSWORD);
            generations++;
        }

        memset(secret, 0, sizeof secret);
        assert_int_equal(ddns_secret_decode(S(vectors_need(rec, "secret_b64u")), secret), DDNS_OK);
        assert_memory_equal(secret, expect, 32);
        count++;
    }
    assert_true(count >= 12 && generations >= 6);
}

/* The kid field's syntax against the keyref records (ddns_check.c). */
static void test_vectors_keyref(void **state)
{
    const vectors_t *v = *state;
    size_t count = 0;

    for (const vectors_rec_t *rec = vectors_next(v, NULL, "keyref"); rec;
         rec = vectors_next(v, rec, "keyref")) {
        const char *in = vectors_need(rec, "input");
        ddns_err_t want = vectors_get(rec, "error") != NULL ? DDNS_E_KID : DDNS_OK;
        if (ddns_kid_check(S(in)) != want)
            fail_msg("key reference '%s': expected %s", in, want ? "DDNS_E_KID" : "DDNS_OK");
        count++;
    }
    assert_true(count >= 20);
}

static void test_vectors_response(void **state)
{
    const vectors_t *v = *state;
    size_t count = 0, errors = 0;

    for (const vectors_rec_t *rec = vectors_next(v, NULL, "response"); rec;
         rec = vectors_next(v, rec, "response")) {
        size_t blen;
        uint8_t *body = vectors_hex(rec, "body_hex", &blen);
        uint8_t *exact = exact_copy(body, blen);
        unsigned status = (unsigned)strtoul(vectors_need(rec, "status"), NULL, 10);
        const char *result = vectors_need(rec, "result");
        ddns_response_t r;
        ddns_err_t err = ddns_response_parse(status, ddns_span(exact, blen), &r);

        if (strcmp(result, "error") == 0) {
            assert_int_not_equal(err, DDNS_OK);
            assert_int_equal(r.result, DDNS_RESULT_NONE);
            errors++;
        } else {
            const char *a1 = vectors_get(rec, "addr1"), *a2 = vectors_get(rec, "addr2");
            const char *st = vectors_get(rec, "server_time");
            const char *ra = vectors_get(rec, "retry_after");
            const char *detail = vectors_get(rec, "detail");

            assert_int_equal(err, DDNS_OK);
            assert_string_equal(ddns_result_token(r.result), result);
            assert_int_equal(r.naddrs, a2 ? 2 : a1 ? 1 : 0);
            assert_span(r.addr[0], a1 ? a1 : "");
            assert_span(r.addr[1], a2 ? a2 : "");
            assert_true(r.server_time == (st ? strtoull(st, NULL, 10) : 0));
            assert_int_equal(r.retry_after, ra ? strtoul(ra, NULL, 10) : 0);
            assert_span(r.detail, detail ? detail : "");
            /* Spans point into the body. */
            if (r.addr[0].len > 0)
                assert_true(r.addr[0].ptr > exact && r.addr[0].ptr < exact + blen);
        }
        free(exact);
        free(body);
        count++;
    }
    assert_true(count >= 28);
    assert_true(errors >= 13);
}

/* ---- Request: buffers ----------------------------------------------------- */

#define CANARY 0xa5

static void check_short_buffers(const ddns_request_t *req, int which)
{
    static const uint8_t mac[32] = { 1, 2, 3 };
    uint8_t big[DDNS_REQUEST_MAX + 64];
    size_t needed = 0, len;
    ddns_err_t err;

    /* Size query with no buffer at all. */
    switch (which) {
    case 0: err = ddns_request_build(req, test_secret, NULL, 0, &needed); break;
    case 1: err = ddns_request_build_presigned(req, mac, NULL, 0, &needed); break;
    default: err = ddns_request_string_to_sign(req, NULL, 0, &needed); break;
    }
    assert_int_equal(err, DDNS_E_BUFFER);
    assert_true(needed > 0 && needed <= DDNS_REQUEST_MAX);

    for (size_t size = 0; size <= needed; size++) {
        memset(big, CANARY, sizeof big);
        len = 12345;
        switch (which) {
        case 0: err = ddns_request_build(req, test_secret, big, size, &len); break;
        case 1: err = ddns_request_build_presigned(req, mac, big, size, &len); break;
        default: err = ddns_request_string_to_sign(req, big, size, &len); break;
        }
        assert_int_equal(len, needed);
        if (size < needed) {
            assert_int_equal(err, DDNS_E_BUFFER);
            for (size_t i = 0; i < sizeof big; i++)
                assert_int_equal(big[i], CANARY); /* nothing written at all */
        } else {
            assert_int_equal(err, DDNS_OK);
            for (size_t i = needed; i < sizeof big; i++)
                assert_int_equal(big[i], CANARY);
        }
    }
}

static void test_request_short_buffers(void **state)
{
    (void)state;
    ddns_request_t req = base_request();
    for (int which = 0; which < 3; which++)
        check_short_buffers(&req, which);

    req.ipv6 = S("2001:db8::10");
    req.user_agent = S("camfw/4.1.0 (model X2)");
    for (int which = 0; which < 3; which++)
        check_short_buffers(&req, which);
}

static void test_request_user_agent_and_empty_body(void **state)
{
    (void)state;
    ddns_request_t req = base_request();
    uint8_t buf[DDNS_REQUEST_MAX];
    size_t len;

    req.user_agent = S("camfw/4.1");
    req.ipv4 = ddns_span(NULL, 0);
    assert_int_equal(ddns_request_build(&req, test_secret, buf, sizeof buf, &len), DDNS_OK);
    const char *head = "POST /v1/update HTTP/1.1\r\nHost: ddns.example.test\r\n"
                       "User-Agent: camfw/4.1\r\nAuthorization: DDNS-HMAC-SHA256 id=3c5ab4f09a21,"
                       "kid=k1,ts=1700000000,nonce=0123456789abcdef,sig=";
    assert_true(len > strlen(head));
    assert_memory_equal(buf, head, strlen(head));
    const char *tail = "\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                       "Content-Length: 0\r\n\r\n";
    assert_memory_equal(buf + len - strlen(tail), tail, strlen(tail));
    assert_int_equal(len, strlen(head) + 64 + strlen(tail));

    /* The signature does not cover the User-Agent. */
    uint8_t buf2[DDNS_REQUEST_MAX];
    size_t len2;
    req.user_agent = ddns_span(NULL, 0);
    assert_int_equal(ddns_request_build(&req, test_secret, buf2, sizeof buf2, &len2), DDNS_OK);
    assert_int_equal(len2, len - strlen("User-Agent: camfw/4.1\r\n"));
    assert_memory_equal(buf + len - 64 - strlen(tail), buf2 + len2 - 64 - strlen(tail), 64);
}

static void test_request_maximum_size(void **state)
{
    (void)state;
    char host[DDNS_HOST_MAX], ua[DDNS_USER_AGENT_MAX];
    memset(host, 'h', sizeof host);
    memset(ua, 'u', sizeof ua);
    ddns_request_t req = base_request();
    req.host = ddns_span(host, sizeof host);
    req.user_agent = ddns_span(ua, sizeof ua);
    req.kid = S("abcdefghij012345/9999999");
    req.ts = DDNS_TS_MAX;
    req.ipv4 = S("255.255.255.255");
    req.ipv6 = S("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
    size_t needed;
    assert_int_equal(ddns_request_size(&req, &needed), DDNS_OK);
    assert_true(needed <= DDNS_REQUEST_MAX);
    uint8_t buf[DDNS_REQUEST_MAX];
    size_t len;
    assert_int_equal(ddns_request_build(&req, test_secret, buf, sizeof buf, &len), DDNS_OK);
    assert_int_equal(len, needed);
    assert_non_null(memmem(buf, len, ",ts=999999999999,", 17));
    assert_int_equal(ddns_request_string_to_sign(&req, NULL, 0, &len), DDNS_E_BUFFER);
    assert_int_equal(len, 33 + 13 + 25 + 13 + 17 + 71);
    assert_int_equal(len, DDNS_STRING_TO_SIGN_MAX);
    assert_int_equal(ddns_request_authorization(&req, test_secret, NULL, 0, &len), DDNS_E_BUFFER);
    assert_int_equal(len, DDNS_AUTHORIZATION_MAX);
    assert_int_equal(ddns_request_authorization(&req, test_secret, buf, len, &len), DDNS_OK);
    assert_int_equal(len, DDNS_AUTHORIZATION_MAX);
    assert_int_equal(ddns_request_body(&req, NULL, 0, &len), DDNS_E_BUFFER);
    assert_int_equal(len, DDNS_BODY_MAX);
    req.ts = 0;
    assert_int_equal(ddns_request_build(&req, test_secret, buf, sizeof buf, &len), DDNS_OK);
    assert_non_null(memmem(buf, len, ",ts=0,", 6));
}

/* ---- Request: invalid inputs ---------------------------------------------- */

/* Applies edit to a valid request. Every builder reports the same error
 * (and then no size and no byte written), but the string to sign, which
 * neither contains nor checks the host and the user agent; returns it.
 * *strict receives the error of the full check, ddns_request_check(). */
static ddns_err_t build_with(void (*edit)(ddns_request_t *, const char *), const char *value,
                             ddns_err_t *strict)
{
    ddns_request_t req = base_request();
    uint8_t buf[DDNS_REQUEST_MAX + 1];
    size_t len = 77, needed = 77;

    edit(&req, value);
    *strict = ddns_request_check(&req);
    memset(buf, CANARY, sizeof buf);
    ddns_err_t err = ddns_request_build(&req, test_secret, buf, sizeof buf, &len);
    assert_int_equal(ddns_request_size(&req, &needed), err);
    if (err != DDNS_OK) {
        /* what the builders refuse, the full check refuses the same way */
        assert_int_equal(*strict, err);
        assert_int_equal(len, 0);
        assert_int_equal(needed, 0);
        assert_int_equal(buf[0], CANARY);
        assert_int_equal(ddns_request_build_presigned(&req, test_secret, buf, sizeof buf, &len),
                         err);
        assert_int_equal(buf[0], CANARY);
        ddns_err_t sts = err == DDNS_E_HOST || err == DDNS_E_USER_AGENT ? DDNS_OK : err;
        assert_int_equal(ddns_request_string_to_sign(&req, buf, sizeof buf, &len), sts);
        if (sts != DDNS_OK)
            assert_int_equal(buf[0], CANARY);
    } else {
        assert_int_equal(len, needed);
    }
    return err;
}

/* Both the builders and the full check give the same answer. */
static ddns_err_t check_with(void (*edit)(ddns_request_t *, const char *), const char *value)
{
    ddns_err_t strict, err = build_with(edit, value, &strict);
    assert_int_equal(err, strict);
    return err;
}

/* The builders accept what only the full check refuses, with strict. */
static void strict_only(void (*edit)(ddns_request_t *, const char *), const char *value,
                        ddns_err_t strict_err)
{
    ddns_err_t strict;
    assert_int_equal(build_with(edit, value, &strict), DDNS_OK);
    assert_int_equal(strict, strict_err);
}

static void set_host(ddns_request_t *r, const char *v) { r->host = S(v); }
static void set_ua(ddns_request_t *r, const char *v) { r->user_agent = S(v); }
static void set_id(ddns_request_t *r, const char *v) { r->device_id = S(v); }
static void set_kid(ddns_request_t *r, const char *v) { r->kid = S(v); }
static void set_ipv4(ddns_request_t *r, const char *v) { r->ipv4 = S(v); }
static void set_ipv6(ddns_request_t *r, const char *v) { r->ipv6 = S(v); }

static void test_request_bad_inputs(void **state)
{
    (void)state;
    char longtext[300];

    assert_int_equal(check_with(set_host, "ddns.example.test:8443"), DDNS_OK);
    assert_int_equal(check_with(set_host, ""), DDNS_E_HOST);
    assert_int_equal(check_with(set_host, "a b"), DDNS_E_HOST);
    assert_int_equal(check_with(set_host, "evil\r\nX-Injected: 1"), DDNS_E_HOST);
    assert_int_equal(check_with(set_host, "evil\n"), DDNS_E_HOST);
    assert_int_equal(check_with(set_host, "h\tx"), DDNS_E_HOST);
    assert_int_equal(check_with(set_host, "caf\xc3\xa9"), DDNS_E_HOST);
    memset(longtext, 'a', sizeof longtext);
    longtext[DDNS_HOST_MAX] = '\0';
    assert_int_equal(check_with(set_host, longtext), DDNS_OK);
    longtext[DDNS_HOST_MAX] = 'a';
    longtext[DDNS_HOST_MAX + 1] = '\0';
    assert_int_equal(check_with(set_host, longtext), DDNS_E_HOST);

    assert_int_equal(check_with(set_ua, ""), DDNS_OK);
    assert_int_equal(check_with(set_ua, "cam fw/1 (x)"), DDNS_OK);
    assert_int_equal(check_with(set_ua, "x\r\nEvil: 1"), DDNS_E_USER_AGENT);
    /* An edge blank breaks no line; only the full check refuses it. */
    strict_only(set_ua, " x", DDNS_E_USER_AGENT);
    strict_only(set_ua, "x ", DDNS_E_USER_AGENT);
    assert_int_equal(check_with(set_ua, "x\x7f"), DDNS_E_USER_AGENT);
    longtext[DDNS_USER_AGENT_MAX] = '\0';
    assert_int_equal(check_with(set_ua, longtext), DDNS_OK);
    longtext[DDNS_USER_AGENT_MAX] = 'a';
    longtext[DDNS_USER_AGENT_MAX + 1] = '\0';
    assert_int_equal(check_with(set_ua, longtext), DDNS_E_USER_AGENT);

    assert_int_equal(check_with(set_id, "020000000001"), DDNS_OK);
    assert_int_equal(check_with(set_id, "3c5ab4f09a2"), DDNS_E_DEVICE_ID);
    assert_int_equal(check_with(set_id, "3c5ab4f09a210"), DDNS_E_DEVICE_ID);
    assert_int_equal(check_with(set_id, "3c:5a:b4:f0:9a:21"), DDNS_E_DEVICE_ID);
    assert_int_equal(check_with(set_id, ""), DDNS_E_DEVICE_ID);
    assert_int_equal(check_with(set_id, "3c5ab4f09a2\n"), DDNS_E_DEVICE_ID);
    assert_int_equal(check_with(set_id, "3c5ab4f09a2,"), DDNS_E_DEVICE_ID);
    assert_int_equal(check_with(set_id, "3c5ab4 09a21"), DDNS_E_DEVICE_ID);
    /* Syntax that breaks nothing in the message: the full check only. */
    strict_only(set_id, "3C5AB4F09A21", DDNS_E_DEVICE_ID);
    strict_only(set_id, "3g5ab4f09a21", DDNS_E_DEVICE_ID);
    strict_only(set_id, "000000000000", DDNS_E_DEVICE_ID_ZERO);
    strict_only(set_id, "3d5ab4f09a21", DDNS_E_DEVICE_ID_MULTICAST);
    strict_only(set_id, "01005e000001", DDNS_E_DEVICE_ID_MULTICAST);
    strict_only(set_id, "ffffffffffff", DDNS_E_DEVICE_ID_MULTICAST);
    strict_only(set_id, "0b0000000000", DDNS_E_DEVICE_ID_MULTICAST);
    assert_int_equal(check_with(set_id, "0a0000000000"), DDNS_OK);

    assert_int_equal(check_with(set_kid, "k2026b"), DDNS_OK);
    assert_int_equal(check_with(set_kid, "abcdefghij012345"), DDNS_OK);
    /* key references: the key id, "/" and a generation */
    assert_int_equal(check_with(set_kid, "k1/1"), DDNS_OK);
    assert_int_equal(check_with(set_kid, "k1/3"), DDNS_OK);
    assert_int_equal(check_with(set_kid, "abcdefghij012345/9999999"), DDNS_OK);
    assert_int_equal(check_with(set_kid, "abcdefghij012345/99999990"), DDNS_E_KID);
    strict_only(set_kid, "abcdefghij0123456", DDNS_E_KID);
    strict_only(set_kid, "k1/0", DDNS_E_KID);
    strict_only(set_kid, "k1/01", DDNS_E_KID);
    strict_only(set_kid, "k1/", DDNS_E_KID);
    strict_only(set_kid, "/3", DDNS_E_KID);
    strict_only(set_kid, "k1/10000000", DDNS_E_KID);
    strict_only(set_kid, "abcdefghij0123456/1", DDNS_E_KID);
    strict_only(set_kid, "k1/1/2", DDNS_E_KID);
    strict_only(set_kid, "k1//1", DDNS_E_KID);
    strict_only(set_kid, "k1/1a", DDNS_E_KID);
    assert_int_equal(check_with(set_kid, "k1/-1"), DDNS_E_KID);   /* "-" is below "." */
    strict_only(set_kid, "K1/1", DDNS_E_KID);
    assert_int_equal(check_with(set_kid, ""), DDNS_E_KID);
    assert_int_equal(check_with(set_kid, "k-1"), DDNS_E_KID);
    assert_int_equal(check_with(set_kid, "k1,sig=0"), DDNS_E_KID);
    assert_int_equal(check_with(set_kid, "k1&x"), DDNS_E_KID);
    strict_only(set_kid, "K1", DDNS_E_KID);
    strict_only(set_kid, "k.1", DDNS_E_KID);

    static const char *good4[] = { "0.0.0.0", "192.0.2.10", "255.255.255.255", "10.0.0.1" };
    static const char *bad4[] = { "192.0.2.300", "192.0.2", "192.0.2.1.5", "01.2.3.4",
                                  "1.2.3.04", "2001:db8::1", "1.2.3.4 ", " 1.2.3.4", "1..2.3",
                                  "1.2.3.", ".1.2.3", "1.2.3.4\n", "a.b.c.d", "1234.1.1.1",
                                  "192.0.2.1%30" };
    for (size_t i = 0; i < sizeof good4 / sizeof *good4; i++)
        assert_int_equal(check_with(set_ipv4, good4[i]), DDNS_OK);
    for (size_t i = 0; i < sizeof bad4 / sizeof *bad4; i++) {
        ddns_err_t strict, err = build_with(set_ipv4, bad4[i], &strict);
        assert_int_equal(strict, DDNS_E_IPV4);
        assert_true(err == DDNS_OK || err == DDNS_E_IPV4);
    }
    /* Characters that could break the message, or a text too long, are
     * refused by the builders. */
    static const char *broken4[] = { "1.2.3.4 ", "1.2.3.4\n", "192.0.2.1%30", "1.2.3.4&x=1",
                                     "1234567890123456", "1.2.3.4,5", "-1.2.3.4" };
    for (size_t i = 0; i < sizeof broken4 / sizeof *broken4; i++)
        assert_int_equal(check_with(set_ipv4, broken4[i]), DDNS_E_IPV4);
    strict_only(set_ipv4, "192.0.2.300", DDNS_E_IPV4);
    strict_only(set_ipv4, "2001:db8::1", DDNS_E_IPV4);
    strict_only(set_ipv4, "a.b.c.d", DDNS_E_IPV4);
    strict_only(set_ipv4, "1/2.3.4", DDNS_E_IPV4);

    static const char *good6[] = { "::", "::1", "1::", "2001:db8::10", "2001:DB8:0:0::10",
                                   "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
                                   "::ffff:192.0.2.1", "1:2:3:4:5:6:1.2.3.4", "fe80::1:2",
                                   "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" };
    static const char *bad6[] = { "192.0.2.10", "2001:db8::g", ":1", "1:", ":", "1::2::3",
                                  "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:1.2.3.4",
                                  "1:2:3:4:5:6:7", ":::", "1:::2", "::1.2.3", "::1.2.3.256",
                                  "fe80::1%eth0", "[::1]", "1:2:3:4:5:6:7:8::",
                                  "::1.2.3.4:1" };
    for (size_t i = 0; i < sizeof good6 / sizeof *good6; i++)
        assert_int_equal(check_with(set_ipv6, good6[i]), DDNS_OK);
    for (size_t i = 0; i < sizeof bad6 / sizeof *bad6; i++) {
        ddns_err_t strict, err = build_with(set_ipv6, bad6[i], &strict);
        assert_int_equal(strict, DDNS_E_IPV6);
        assert_true(err == DDNS_OK || err == DDNS_E_IPV6);
    }
    static const char *broken6[] = { "fe80::1%eth0", "::1 ", "::1&ipv4=1.2.3.4", "::1\r\n",
                                     "::1,", "1111:2222:3333:4444:5555:6666:7777:8888:999999" };
    for (size_t i = 0; i < sizeof broken6 / sizeof *broken6; i++)
        assert_int_equal(check_with(set_ipv6, broken6[i]), DDNS_E_IPV6);
    strict_only(set_ipv6, "1::2::3", DDNS_E_IPV6);
    strict_only(set_ipv6, "192.0.2.10", DDNS_E_IPV6);
    strict_only(set_ipv6, "2001:db8::g", DDNS_E_IPV6);
    strict_only(set_ipv6, "[::1]", DDNS_E_IPV6);
    strict_only(set_ipv6, "x::1", DDNS_E_IPV6);

    /* The full check gives the first field's error, whichever level of
     * checking finds it. */
    ddns_request_t req = base_request();
    req.user_agent = S(" x");
    req.kid = S("abcdefghij0123456");
    assert_int_equal(ddns_request_check(&req), DDNS_E_USER_AGENT);
    req.user_agent = S("x");
    req.device_id = S("3C5AB4F09A21");
    assert_int_equal(ddns_request_check(&req), DDNS_E_DEVICE_ID);
    req.device_id = S("3c5ab4f09a21");
    req.kid = S("K1");
    req.ipv4 = S("1.2.3.4 ");
    assert_int_equal(ddns_request_check(&req), DDNS_E_KID);
    req.kid = S("k1");
    req.ts = DDNS_TS_MAX + 1;
    req.ipv6 = S("::1::");
    assert_int_equal(ddns_request_check(&req), DDNS_E_TS);
}

static void test_request_null_and_ts(void **state)
{
    (void)state;
    ddns_request_t req = base_request();
    uint8_t buf[DDNS_REQUEST_MAX];
    size_t len;

    assert_int_equal(ddns_request_check(NULL), DDNS_E_NULL);
    assert_int_equal(ddns_request_size(NULL, &len), DDNS_E_NULL);
    assert_int_equal(ddns_request_build(NULL, test_secret, buf, sizeof buf, &len), DDNS_E_NULL);
    assert_int_equal(ddns_request_build(&req, NULL, buf, sizeof buf, &len), DDNS_E_NULL);
    assert_int_equal(ddns_request_build(&req, test_secret, buf, sizeof buf, NULL), DDNS_E_NULL);
    assert_int_equal(ddns_request_build(&req, test_secret, NULL, 10, &len), DDNS_E_NULL);
    assert_int_equal(ddns_request_build_presigned(&req, NULL, buf, sizeof buf, &len), DDNS_E_NULL);
    assert_int_equal(ddns_request_size(&req, NULL), DDNS_E_NULL);
    assert_int_equal(ddns_request_string_to_sign(&req, NULL, 5, &len), DDNS_E_NULL);

    /* Spans with a length but no pointer. */
    req.ipv4 = ddns_span(NULL, 4);
    assert_int_equal(ddns_request_check(&req), DDNS_E_IPV4);
    req = base_request();
    req.ipv6 = ddns_span(NULL, 4);
    assert_int_equal(ddns_request_check(&req), DDNS_E_IPV6);
    req = base_request();
    req.host = ddns_span(NULL, 4);
    assert_int_equal(ddns_request_check(&req), DDNS_E_HOST);
    req = base_request();
    req.user_agent = ddns_span(NULL, 4);
    assert_int_equal(ddns_request_check(&req), DDNS_E_USER_AGENT);
    req = base_request();
    req.kid = ddns_span(NULL, 2);
    assert_int_equal(ddns_request_check(&req), DDNS_E_KID);
    req = base_request();
    req.device_id = ddns_span(NULL, 12);
    assert_int_equal(ddns_request_check(&req), DDNS_E_DEVICE_ID);

    req = base_request();
    req.ts = DDNS_TS_MAX + 1;
    assert_int_equal(ddns_request_check(&req), DDNS_E_TS);
    assert_int_equal(ddns_request_build(&req, test_secret, buf, sizeof buf, &len), DDNS_E_TS);
    req.ts = UINT64_MAX;
    assert_int_equal(ddns_request_check(&req), DDNS_E_TS);

    /* Inputs are taken by length only: bytes after the span are ignored. */
    req = base_request();
    const char *text = "3c5ab4f09a21XYZ";
    req.device_id = ddns_span(text, 12);
    req.kid = ddns_span("k1k1", 2);
    req.ipv4 = ddns_span("192.0.2.10.99", 10);
    uint8_t buf2[DDNS_REQUEST_MAX];
    size_t len2;
    ddns_request_t ref = base_request();
    assert_int_equal(ddns_request_build(&req, test_secret, buf, sizeof buf, &len), DDNS_OK);
    assert_int_equal(ddns_request_build(&ref, test_secret, buf2, sizeof buf2, &len2), DDNS_OK);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
}

/* ---- Credentials ---------------------------------------------------------- */

static void test_credentials(void **state)
{
    (void)state;
    uint8_t secret[32], keep[32];
    char kid[DDNS_KID_MAX + 1];
    size_t kid_len;
    const char *good = "Z-UZrYwVk5W6E474Gl59fPUPryfJH8nAM34PVPPb120";

    assert_int_equal(ddns_secret_decode(S(good), secret), DDNS_OK);
    assert_hex(secret, 32, "67e519ad8c159395ba138ef81a5e7d7cf50faf27c91fc9c0337e0f54f3dbd76d");

    /* Rejected forms leave the output untouched. */
    static const char *bad[] = {
        "Z-UZrYwVk5W6E474Gl59fPUPryfJH8nAM34PVPPb12",   /* 42 */
        "Z-UZrYwVk5W6E474Gl59fPUPryfJH8nAM34PVPPb120=", /* padding */
        "Z-UZrYwVk5W6E474Gl59fPUPryfJH8nAM34PVPPb1200", /* 44 */
        "Z+UZrYwVk5W6E474Gl59fPUPryfJH8nAM34PVPPb120",  /* standard alphabet */
        "Z/UZrYwVk5W6E474Gl59fPUPryfJH8nAM34PVPPb120",
        "Z-UZrYwVk5W6E474Gl59fPUPryfJH8nAM34PVPPb121",  /* non-canonical tail */
        "Z-UZrYwVk5W6E474Gl59fPUPryfJH8nAM34PVPPb12B",
        "Z-UZrYwVk5W6E474Gl59fPUPryfJH8nAM34PVPPb12 ",
        " Z-UZrYwVk5W6E474Gl59fPUPryfJH8nAM34PVPPb12",
        "",
    };
    memset(keep, 0x5a, sizeof keep);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memcpy(secret, keep, 32);
        assert_int_equal(ddns_secret_decode(S(bad[i]), secret), DDNS_E_SECRET);
        assert_memory_equal(secret, keep, 32);
    }
    char nul[43];
    memcpy(nul, good, 43);
    nul[20] = '\0';
    assert_int_equal(ddns_secret_decode(ddns_span(nul, 43), secret), DDNS_E_SECRET);
    assert_int_equal(ddns_secret_decode(ddns_span(NULL, 43), secret), DDNS_E_SECRET);
    assert_int_equal(ddns_secret_decode(S(good), NULL), DDNS_E_NULL);

    /* Every alphabet character decodes (expected values from Python). */
    assert_int_equal(ddns_secret_decode(S("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopA"), secret),
                     DDNS_OK);
    assert_hex(secret, 32, "00108310518720928b30d38f41149351559761969b71d79f8218a39259a7a290");
    assert_int_equal(ddns_secret_decode(S("pqrstuvwxyz0123456789-_AAAAAAAAAAAAAAAAAAAA"), secret),
                     DDNS_OK);
    assert_hex(secret, 32, "a6aaecb6ebf0c72cf4d76df8e7aefcf7efc00000000000000000000000000000");

    /* Password form. */
    char pw[80];
    snprintf(pw, sizeof pw, "k1.%s", good);
    memset(kid, 0x5a, sizeof kid);
    assert_int_equal(ddns_password_decode(S(pw), kid, &kid_len, secret), DDNS_OK);
    assert_string_equal(kid, "k1");
    assert_int_equal(kid_len, 2);
    assert_int_equal(ddns_password_decode(S(pw), kid, NULL, secret), DDNS_OK);
    assert_int_equal(ddns_password_decode(S(good), kid, &kid_len, secret), DDNS_E_PASSWORD);
    snprintf(pw, sizeof pw, ".%s", good);
    assert_int_equal(ddns_password_decode(S(pw), kid, &kid_len, secret), DDNS_E_KID);
    snprintf(pw, sizeof pw, "K1.%s", good);
    assert_int_equal(ddns_password_decode(S(pw), kid, &kid_len, secret), DDNS_E_KID);
    snprintf(pw, sizeof pw, "abcdefghij0123456.%s", good);
    assert_int_equal(ddns_password_decode(S(pw), kid, &kid_len, secret), DDNS_E_KID);
    snprintf(pw, sizeof pw, "k1.%s.", good);
    assert_int_equal(ddns_password_decode(S(pw), kid, &kid_len, secret), DDNS_E_SECRET);
    /* a password of generation 1 or later does not carry the secret */
    memcpy(secret, keep, 32);
    memset(kid, 0x5a, sizeof kid);
    snprintf(pw, sizeof pw, "k1/3.%s", good);
    assert_int_equal(ddns_password_decode(S(pw), kid, &kid_len, secret), DDNS_E_PASSWORD);
    assert_memory_equal(secret, keep, 32);
    assert_int_equal((unsigned char)kid[0], 0x5a);
    snprintf(pw, sizeof pw, "k1/.%s", good);
    assert_int_equal(ddns_password_decode(S(pw), kid, &kid_len, secret), DDNS_E_PASSWORD);
    assert_int_equal(ddns_password_decode(S("k1."), kid, &kid_len, secret), DDNS_E_SECRET);
    assert_int_equal(ddns_password_decode(S(""), kid, &kid_len, secret), DDNS_E_PASSWORD);
    assert_int_equal(ddns_password_decode(S(pw), NULL, &kid_len, secret), DDNS_E_NULL);

    /* Device ids. */
    char id[13];
    static const uint8_t mac_ok[6] = { 0x3c, 0x5a, 0xb4, 0xf0, 0x9a, 0x21 };
    static const uint8_t mac_la[6] = { 0x02, 0, 0, 0, 0, 1 };
    static const uint8_t mac_zero[6] = { 0 };
    static const uint8_t mac_mc[6] = { 0x01, 0x00, 0x5e, 0, 0, 1 };
    static const uint8_t mac_bc[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    assert_int_equal(ddns_device_id_from_mac(mac_ok, id), DDNS_OK);
    assert_string_equal(id, "3c5ab4f09a21");
    assert_int_equal(ddns_device_id_check(ddns_span(id, 12)), DDNS_OK);
    assert_int_equal(ddns_device_id_from_mac(mac_la, id), DDNS_OK);
    assert_string_equal(id, "020000000001");
    assert_int_equal(ddns_device_id_from_mac(mac_zero, id), DDNS_E_DEVICE_ID_ZERO);
    assert_int_equal(ddns_device_id_from_mac(mac_mc, id), DDNS_E_DEVICE_ID_MULTICAST);
    assert_int_equal(ddns_device_id_from_mac(mac_bc, id), DDNS_E_DEVICE_ID_MULTICAST);
    assert_int_equal(ddns_device_id_from_mac(NULL, id), DDNS_E_NULL);
}

/* ---- Answers -------------------------------------------------------------- */

/* Parses an exact heap copy of body; the copy stays until the next call,
 * since the answer's spans point into it. */
static ddns_err_t parse_text(unsigned status, const char *body, ddns_response_t *r)
{
    size_t n = strlen(body);
    free(parse_text_copy);
    uint8_t *exact = parse_text_copy = exact_copy(body, n);
    ddns_err_t err = ddns_response_parse(status, ddns_span(exact, n), r);
    if (err != DDNS_OK)
        assert_int_equal(r->result, DDNS_RESULT_NONE);
    return err;
}

static void test_response_cases(void **state)
{
    (void)state;
    ddns_response_t r;

    assert_int_equal(parse_text(404, "notfound\n", &r), DDNS_OK);
    assert_int_equal(r.result, DDNS_RESULT_NOTFOUND);
    assert_int_equal(parse_text(503, "911\n", &r), DDNS_OK);
    assert_int_equal(r.result, DDNS_RESULT_SERVERERROR);
    assert_string_equal(ddns_result_token(r.result), "911");
    assert_int_equal(parse_text(200, "nochg 192.0.2.10 2001:db8::10\n", &r), DDNS_OK);
    assert_int_equal(r.result, DDNS_RESULT_NOCHG);
    assert_int_equal(r.naddrs, 2);
    assert_int_equal(parse_text(200, "good ::ffff:192.0.2.1\n", &r), DDNS_OK);
    assert_int_equal(parse_text(401, "badtime 9999999999999999999\n", &r), DDNS_OK);
    assert_true(r.server_time == 9999999999999999999ULL);
    assert_int_equal(parse_text(401, "badtime 0000000000000000001\n", &r), DDNS_OK);
    assert_true(r.server_time == 1);
    assert_int_equal(parse_text(401, "badtime 10000000000000000000\n", &r), DDNS_E_RESP_DATA);
    assert_int_equal(parse_text(401, "badtime 18446744073709551616\n", &r), DDNS_E_RESP_DATA);
    assert_int_equal(parse_text(429, "ratelimit 4294967295\n", &r), DDNS_OK);
    assert_int_equal(r.retry_after, UINT32_MAX);
    assert_int_equal(parse_text(429, "ratelimit 4294967296\n", &r), DDNS_E_RESP_DATA);
    assert_int_equal(parse_text(429, "ratelimit -1\n", &r), DDNS_E_RESP_DATA);
    assert_int_equal(parse_text(429, "ratelimit\n", &r), DDNS_E_RESP_DATA);
    assert_int_equal(parse_text(400, "badrequest content-length\n", &r), DDNS_OK);
    assert_span(r.detail, "content-length");

    /* Format errors. */
    assert_int_equal(parse_text(401, "", &r), DDNS_E_RESP_FORMAT);
    assert_int_equal(parse_text(401, "\n", &r), DDNS_E_RESP_FORMAT);
    assert_int_equal(parse_text(401, "badauth", &r), DDNS_E_RESP_FORMAT);
    assert_int_equal(parse_text(401, "badauth\r\n", &r), DDNS_E_RESP_FORMAT);
    assert_int_equal(parse_text(401, " badauth\n", &r), DDNS_E_RESP_FORMAT);
    assert_int_equal(parse_text(401, "badauth \n", &r), DDNS_E_RESP_FORMAT);
    assert_int_equal(parse_text(200, "good  192.0.2.10\n", &r), DDNS_E_RESP_FORMAT);
    assert_int_equal(parse_text(200, "good\t192.0.2.10\n", &r), DDNS_E_RESP_FORMAT);
    assert_int_equal(parse_text(401, "badauth\n\n", &r), DDNS_E_RESP_FORMAT);
    assert_int_equal(parse_text(401, "badauth\nbadauth\n", &r), DDNS_E_RESP_FORMAT);
    assert_int_equal(parse_text(200, "good 192.0.2.10\xff\n", &r), DDNS_E_RESP_FORMAT);
    uint8_t nulbody[] = { 'b', 'a', 'd', 'a', 'u', 't', 'h', 0, '\n' };
    assert_int_equal(ddns_response_parse(401, ddns_span(nulbody, sizeof nulbody), &r),
                     DDNS_E_RESP_FORMAT);
    uint8_t nulbody2[] = { 'b', 'a', 'd', 'a', 'u', 't', 'h', '\n', 0 };
    assert_int_equal(ddns_response_parse(401, ddns_span(nulbody2, sizeof nulbody2), &r),
                     DDNS_E_RESP_FORMAT);

    /* Body length limit: 128 bytes accepted, 129 refused. */
    char body[200];
    memset(body, 0, sizeof body);
    strcpy(body, "badrequest ");
    memset(body + 11, 'x', 116);
    body[127] = '\n';
    assert_int_equal(parse_text(400, body, &r), DDNS_OK);
    assert_int_equal(r.detail.len, 116);
    body[127] = 'x';
    body[128] = '\n';
    assert_int_equal(parse_text(400, body, &r), DDNS_E_RESP_FORMAT);

    /* Token, status and data errors. */
    assert_int_equal(parse_text(200, "GOOD 192.0.2.10\n", &r), DDNS_E_RESP_TOKEN);
    assert_int_equal(parse_text(200, "goodx 192.0.2.10\n", &r), DDNS_E_RESP_TOKEN);
    assert_int_equal(parse_text(200, "goo 192.0.2.10\n", &r), DDNS_E_RESP_TOKEN);
    assert_int_equal(parse_text(200, "badauth\n", &r), DDNS_E_RESP_STATUS);
    assert_int_equal(parse_text(401, "disabled\n", &r), DDNS_E_RESP_STATUS);
    assert_int_equal(parse_text(0, "good 192.0.2.10\n", &r), DDNS_E_RESP_STATUS);
    assert_int_equal(parse_text(401, "badauth extra\n", &r), DDNS_E_RESP_DATA);
    assert_int_equal(parse_text(200, "good 192.0.2.10 2001:db8::1 x\n", &r), DDNS_E_RESP_DATA);
    assert_int_equal(parse_text(200, "good 1 2 3 4 5\n", &r), DDNS_E_RESP_DATA);
    assert_int_equal(parse_text(200, "good 192.0.2.1\t\n", &r), DDNS_E_RESP_FORMAT);
    /* Addresses are taken as the words they are; ddns_ipv4_check() and
     * ddns_ipv6_check() check their syntax. */
    assert_int_equal(parse_text(200, "good 192.0.2.300\n", &r), DDNS_OK);
    assert_int_not_equal(ddns_ipv4_check(r.addr[0]), DDNS_OK);
    assert_int_equal(parse_text(200, "good 192.0.2.1&\n", &r), DDNS_OK);
    assert_int_not_equal(ddns_ipv4_check(r.addr[0]), DDNS_OK);
    assert_int_equal(parse_text(200, "good 2001:db8::1 hello\n", &r), DDNS_OK);
    assert_int_equal(r.naddrs, 2);
    assert_int_equal(ddns_ipv4_check(r.addr[0]), DDNS_E_IPV4);
    assert_int_equal(ddns_ipv6_check(r.addr[0]), DDNS_OK);
    assert_int_equal(ddns_ipv6_check(r.addr[1]), DDNS_E_IPV6);
    assert_span(r.addr[1], "hello");
    assert_int_equal(parse_text(400, "badrequest\n", &r), DDNS_E_RESP_DATA);
    assert_int_equal(parse_text(400, "badrequest a b\n", &r), DDNS_E_RESP_DATA);
    assert_int_equal(parse_text(401, "badtime +5\n", &r), DDNS_E_RESP_DATA);
    assert_int_equal(ddns_response_parse(200, ddns_span(NULL, 3), &r), DDNS_E_NULL);
    assert_int_equal(ddns_response_parse(200, S("good 192.0.2.1\n"), NULL), DDNS_E_NULL);

    /* A failed parse clears earlier data. */
    assert_int_equal(parse_text(200, "good 192.0.2.10\n", &r), DDNS_OK);
    assert_int_equal(parse_text(200, "good 192.0.2.10 x y\n", &r), DDNS_E_RESP_DATA);
    assert_span(r.addr[0], "");
    assert_int_equal(r.naddrs, 0);

    assert_string_equal(ddns_result_token(DDNS_RESULT_NONE), "");
    assert_string_equal(ddns_result_token((ddns_result_t)99), "");
}

static void test_response_truncated(void **state)
{
    (void)state;
    static const char *full[] = { "good 192.0.2.10 2001:db8::10\n", "badtime 1700000123\n",
                                  "ratelimit 60\n", "badrequest ipv4\n", "911\n" };
    static const unsigned status[] = { 200, 401, 429, 400, 503 };
    ddns_response_t r;

    for (size_t k = 0; k < sizeof full / sizeof *full; k++) {
        size_t n = strlen(full[k]);
        for (size_t cut = 0; cut < n; cut++) {
            uint8_t *exact = exact_copy(full[k], cut);
            assert_int_not_equal(ddns_response_parse(status[k], ddns_span(exact, cut), &r),
                                 DDNS_OK);
            assert_int_equal(r.result, DDNS_RESULT_NONE);
            free(exact);
        }
        assert_int_equal(parse_text(status[k], full[k], &r), DDNS_OK);
    }
}

/* Deterministic pseudo-random bytes. */
static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void test_response_random(void **state)
{
    (void)state;
    static const char alphabet[] = "goodnchbatimesrqul0123456789.: \n\r\0x";
    uint32_t seed = 12345;
    ddns_response_t r;
    ddns_http_response_t h;

    for (int iter = 0; iter < 20000; iter++) {
        size_t n = lcg(&seed) % 160;
        uint8_t *buf = malloc(n ? n : 1);
        assert_non_null(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (iter & 1) ? (uint8_t)lcg(&seed)
                                : (uint8_t)alphabet[lcg(&seed) % (sizeof alphabet - 1)];
        ddns_err_t err = ddns_response_parse(200 + lcg(&seed) % 400, ddns_span(buf, n), &r);
        if (err == DDNS_OK)
            assert_int_not_equal(r.result, DDNS_RESULT_NONE);
        err = ddns_http_response_parse(ddns_span(buf, n), &h);
        if (err == DDNS_OK)
            assert_true(h.total_len <= n);
        free(buf);
    }
}

/* ---- HTTP framing --------------------------------------------------------- */

static ddns_err_t http_text(const char *text, size_t n, ddns_http_response_t *h)
{
    uint8_t *exact = exact_copy(text, n);
    ddns_err_t err = ddns_http_response_parse(ddns_span(exact, n), h);
    if (err == DDNS_OK) {
        /* The body span lies inside the input. */
        assert_true(h->body.ptr == exact + h->header_len);
        assert_true(h->total_len <= n);
    }
    free(exact);
    return err;
}

#define HTTP(text, h) http_text((text), strlen(text), (h))

static void test_http_parse(void **state)
{
    (void)state;
    ddns_http_response_t h;
    const char *ok = "HTTP/1.1 200 OK\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: 16\r\n"
                     "Connection: keep-alive\r\n"
                     "\r\n"
                     "good 192.0.2.10\n";
    size_t n = strlen(ok);

    uint8_t *exact = exact_copy(ok, n);
    assert_int_equal(ddns_http_response_parse(ddns_span(exact, n), &h), DDNS_OK);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.content_length, 16);
    assert_int_equal(h.total_len, n);
    assert_int_equal(h.header_len, n - 16);
    assert_memory_equal(h.body.ptr, "good 192.0.2.10\n", 16);
    ddns_response_t r;
    assert_int_equal(ddns_response_parse(h.status, h.body, &r), DDNS_OK);
    assert_int_equal(r.result, DDNS_RESULT_GOOD);
    free(exact);

    /* Every proper prefix is incomplete, never an error or a read past it. */
    for (size_t cut = 0; cut < n; cut++) {
        assert_int_equal(http_text(ok, cut, &h), DDNS_E_HTTP_INCOMPLETE);
        if (cut >= n - 16) {
            assert_int_equal(h.header_len, n - 16);
            assert_int_equal(h.content_length, 16);
        }
    }

    /* Extra bytes after the body (a pipelined answer) are not consumed. */
    char more[512];
    snprintf(more, sizeof more, "%sHTTP/1.1 200 OK\r\n", ok);
    assert_int_equal(HTTP(more, &h), DDNS_OK);
    assert_int_equal(h.total_len, n);

    assert_int_equal(HTTP("HTTP/1.1 429 Too Many Requests\nRetry-After: 60\n"
                          "content-length:13\n\nratelimit 60\n", &h), DDNS_OK);
    assert_int_equal(h.status, 429);
    assert_int_equal(h.content_length, 13);
    assert_int_equal(HTTP("HTTP/1.0 401\r\nContent-Length: 0\r\n\r\n", &h), DDNS_OK);
    assert_int_equal(h.body.len, 0);
    assert_int_equal(HTTP("HTTP/1.1 503 \r\nCONTENT-LENGTH:  4 \r\nContent-Length: 4\r\n\r\n911\n",
                          &h), DDNS_OK);

    /* Malformed. */
    assert_int_equal(HTTP("XTTP", &h), DDNS_E_HTTP_SYNTAX);
    assert_int_equal(HTTP("garbage without newline", &h), DDNS_E_HTTP_SYNTAX);
    assert_int_equal(HTTP("HTTP/2 200 OK\r\n", &h), DDNS_E_HTTP_SYNTAX);
    assert_int_equal(HTTP("HTTP/1.1 20 OK\r\n", &h), DDNS_E_HTTP_SYNTAX);
    assert_int_equal(HTTP("HTTP/1.1 2000 OK\r\n", &h), DDNS_E_HTTP_SYNTAX);
    assert_int_equal(HTTP("HTTP/1.1 100 Continue\r\n\r\n", &h), DDNS_E_HTTP_SYNTAX);
    assert_int_equal(HTTP("HTTP/1.1 600 X\r\n\r\n", &h), DDNS_E_HTTP_SYNTAX);
    /* Header lines other than Content-Length and Transfer-Encoding are
     * skipped unread, whatever they hold. */
    static const char junk[] = "HTTP/1.1 200 OK\r\nNoColon\r\nName : x\r\n: x\r\n folded\r\n"
                               "A: b\rc\r\nB: \0\x7f\xff\r\nContent-Length: 4\r\n"
                               "X-Content-Length: 7\r\nContent-Lengthy: 9\r\n\r\n911\n";
    assert_int_equal(http_text(junk, sizeof junk - 1, &h), DDNS_OK);
    assert_int_equal(h.content_length, 4);
    assert_int_equal(h.status, 200);
    assert_int_equal(HTTP("HTTP/1.1 200 OK\r\nContent-Length : 4\r\n\r\n911\n", &h),
                     DDNS_E_HTTP_LENGTH);
    assert_int_equal(HTTP("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-encoding: x\r\n\r\n",
                          &h), DDNS_E_HTTP_LENGTH);
    assert_int_equal(HTTP("HTTP/1.1 200 OK\r\ncontent-length:\t4\t\r\n\r\n911\n", &h), DDNS_OK);
    assert_int_equal(HTTP("HTTP/1.1 200 OK\r\n\r\ngood 192.0.2.10\n", &h), DDNS_E_HTTP_LENGTH);
    assert_int_equal(HTTP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &h),
                     DDNS_E_HTTP_LENGTH);
    assert_int_equal(HTTP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          &h), DDNS_E_HTTP_LENGTH);
    assert_int_equal(HTTP("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", &h),
                     DDNS_E_HTTP_LENGTH);
    assert_int_equal(HTTP("HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n", &h),
                     DDNS_E_HTTP_LENGTH);
    assert_int_equal(HTTP("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", &h), DDNS_E_HTTP_LENGTH);
    assert_int_equal(HTTP("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", &h),
                     DDNS_E_HTTP_LENGTH);
    /* A large but valid length stays incomplete instead of overflowing; a
     * length that does not fit size_t is refused. */
    assert_int_equal(HTTP("HTTP/1.1 200 OK\r\nContent-Length: 999999999999999999\r\n\r\n", &h),
                     SIZE_MAX > 999999999999999999ULL ? DDNS_E_HTTP_INCOMPLETE
                                                      : DDNS_E_HTTP_LENGTH);
    assert_int_equal(HTTP("HTTP/1.1 200 OK\r\nContent-Length: 4294967296\r\n\r\n", &h),
                     SIZE_MAX > 4294967296ULL ? DDNS_E_HTTP_INCOMPLETE : DDNS_E_HTTP_LENGTH);
    assert_int_equal(ddns_http_response_parse(ddns_span(NULL, 5), &h), DDNS_E_NULL);
    assert_int_equal(ddns_http_response_parse(ddns_span(NULL, 0), &h), DDNS_E_HTTP_INCOMPLETE);
    assert_int_equal(ddns_http_response_parse(S(ok), NULL), DDNS_E_NULL);
}

/* ---- What to do next, and the clock -------------------------------------- */

static ddns_response_t answer(ddns_result_t result)
{
    ddns_response_t r;
    memset(&r, 0, sizeof r);
    r.result = result;
    return r;
}

static void test_next_success_and_keepalive(void **state)
{
    (void)state;
    ddns_state_t st;
    ddns_response_t good = answer(DDNS_RESULT_GOOD), nochg = answer(DDNS_RESULT_NOCHG);
    uint32_t delay = 1;

    memset(&st, 0, sizeof st);
    st.failures = 7;
    assert_int_equal(ddns_next(&st, &dflt, &good, 0, 0, &delay), DDNS_NEXT_IDLE);
    assert_int_equal(delay, KEEPALIVE);
    assert_int_equal(st.failures, 0);
    /* The random part spreads the keep-alive over up to half of it. */
    assert_int_equal(ddns_next(&st, &dflt, &nochg, 0, 0xffffffffu, &delay), DDNS_NEXT_IDLE);
    assert_true(delay > KEEPALIVE && delay < KEEPALIVE + KEEPALIVE / 2);
    assert_int_equal(ddns_next(&st, &dflt, &nochg, 0, 0x800u, &delay), DDNS_NEXT_IDLE);
    assert_int_equal(delay, KEEPALIVE + KEEPALIVE / 4);
    /* Only the low 12 bits of the random value count. */
    uint32_t d2;
    assert_int_equal(ddns_next(&st, &dflt, &nochg, 0, 0xabcd1800u, &d2), DDNS_NEXT_IDLE);
    assert_int_equal(ddns_next(&st, &dflt, &nochg, 0, 0x800u, &delay), DDNS_NEXT_IDLE);
    assert_int_equal(d2, delay);
    assert_int_equal(ddns_next(&st, &dflt, &nochg, 0, 0x5u << 12, &delay), DDNS_NEXT_IDLE);
    assert_int_equal(delay, KEEPALIVE);
    /* badaddr: the address is refused, sending it again cannot help; the
     * device waits for another one or the keep-alive, as after good. */
    ddns_response_t badaddr = answer(DDNS_RESULT_BADADDR);
    st.failures = 3;
    st.stopped = 1;
    assert_int_equal(ddns_next(&st, &dflt, &badaddr, 0, 0x800u, &delay), DDNS_NEXT_IDLE);
    assert_int_equal(delay, KEEPALIVE + KEEPALIVE / 4);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.stopped, 0);
    assert_string_equal(ddns_result_token(DDNS_RESULT_BADADDR), "badaddr");
}

static void test_next_backoff(void **state)
{
    (void)state;
    static const uint32_t bases[] = { 300, 600, 1200, 2400, 3600, 3600, 3600 };
    ddns_response_t r911 = answer(DDNS_RESULT_SERVERERROR), replay = answer(DDNS_RESULT_REPLAY);
    ddns_response_t none = answer(DDNS_RESULT_NONE);
    const ddns_response_t *kinds[] = { &r911, &replay, &none, NULL };
    ddns_state_t st;
    uint32_t delay;

    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        memset(&st, 0, sizeof st);
        for (size_t i = 0; i < sizeof bases / sizeof *bases; i++) {
            assert_int_equal(ddns_next(&st, &dflt, kinds[k], 0, 0, &delay), DDNS_NEXT_RETRY);
            assert_int_equal(delay, bases[i]);
            assert_int_equal(st.failures, i + 1);
        }
        /* A success resets the backoff. */
        ddns_response_t good = answer(DDNS_RESULT_GOOD);
        assert_int_equal(ddns_next(&st, &dflt, &good, 0, 0, &delay), DDNS_NEXT_IDLE);
        assert_int_equal(ddns_next(&st, &dflt, kinds[k], 0, 0xfffu, &delay), DDNS_NEXT_RETRY);
        assert_int_equal(delay, 300 + ((0xfffu * 300u) >> 13));
    }
    /* Even a count that wrapped around keeps the longest delay. */
    st.failures = UINT32_MAX;
    assert_int_equal(ddns_next(&st, &dflt, &r911, 0, 0, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(st.failures, 0);
    assert_int_equal(delay, BACKOFF_MAX);
}

static void test_next_ratelimit(void **state)
{
    (void)state;
    ddns_response_t r = answer(DDNS_RESULT_RATELIMIT);
    ddns_state_t st;
    uint32_t delay;

    memset(&st, 0, sizeof st);
    r.retry_after = 7200;
    assert_int_equal(ddns_next(&st, &dflt, &r, 0, 0, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(delay, 7200);
    assert_int_equal(ddns_next(&st, &dflt, &r, 0, 0xfffu, &delay), DDNS_NEXT_RETRY);
    assert_true(delay > 7200 && delay < 7200 + 3600);
    /* Never sooner than a minute, however short the server's delay. */
    r.retry_after = 0;
    assert_int_equal(ddns_next(&st, &dflt, &r, 0, 0, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(delay, MIN_INTERVAL);
    r.retry_after = 59;
    assert_int_equal(ddns_next(&st, &dflt, &r, 0, 0, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(delay, MIN_INTERVAL);
    /* An absurd delay is limited instead of overflowing. */
    r.retry_after = UINT32_MAX;
    assert_int_equal(ddns_next(&st, &dflt, &r, 0, 0xffffffffu, &delay), DDNS_NEXT_RETRY);
    assert_true(delay >= RETRY_AFTER_MAX && delay < RETRY_AFTER_MAX / 2 * 3);
}

static void test_next_badtime_and_clock(void **state)
{
    (void)state;
    ddns_response_t r = answer(DDNS_RESULT_BADTIME);
    ddns_state_t st;
    uint32_t delay;

    memset(&st, 0, sizeof st);
    /* A device whose clock restarted at the epoch. */
    r.server_time = 1700000000;
    assert_int_equal(ddns_next(&st, &dflt, &r, 100, 0, &delay), DDNS_NEXT_RETRY);
    assert_true(st.clock_offset == 1699999900);
    assert_int_equal(delay, 4);
    assert_int_equal(ddns_next(&st, &dflt, NULL, 100, 0xfffu, &delay), DDNS_NEXT_RETRY);
    assert_true(st.clock_offset == 1699999900);
    assert_true(ddns_clock(&st, 160) == 1700000060);

    /* A clock ahead: a negative offset. */
    memset(&st, 0, sizeof st);
    r.server_time = 1700000000;
    assert_int_equal(ddns_next(&st, &dflt, &r, 1700003600, 0xfffu, &delay), DDNS_NEXT_RETRY);
    assert_true(st.clock_offset == -3600);
    assert_true(delay >= 4 && delay <= 5);
    assert_true(ddns_clock(&st, 1700003700) == 1700000100);
    /* A second badtime in a row backs off like an error. */
    assert_int_equal(ddns_next(&st, &dflt, &r, 1700003600, 0, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(delay, 600);

    /* A server time beyond the protocol's range is not learnt. */
    memset(&st, 0, sizeof st);
    r.server_time = DDNS_TS_MAX + 1;
    assert_int_equal(ddns_next(&st, &dflt, &r, 5, 0, &delay), DDNS_NEXT_RETRY);
    assert_true(st.clock_offset == 0);
    assert_int_equal(delay, BACKOFF_FIRST);

    /* ddns_clock_correct() on its own. */
    memset(&st, 0, sizeof st);
    r.server_time = 1700000000;
    assert_int_equal(ddns_clock_correct(&st, &r, 1700000010), DDNS_OK);
    assert_true(st.clock_offset == -10);
    assert_int_equal(ddns_clock_correct(&st, &r, DDNS_TS_MAX + 1), DDNS_E_RESP_DATA);
    ddns_response_t good = answer(DDNS_RESULT_GOOD);
    assert_int_equal(ddns_clock_correct(&st, &good, 1), DDNS_E_RESP_DATA);
    assert_true(st.clock_offset == -10);
    assert_int_equal(ddns_clock_correct(NULL, &r, 1), DDNS_E_NULL);
    assert_int_equal(ddns_clock_correct(&st, NULL, 1), DDNS_E_NULL);

    /* A corrected time before 1970 or after the protocol's range makes
     * the request fail instead of being signed with it. */
    ddns_request_t req = base_request();
    size_t n;
    st.clock_offset = -1000;
    req.ts = ddns_clock(&st, 999);
    assert_int_equal(ddns_request_size(&req, &n), DDNS_E_TS);
    req.ts = ddns_clock(&st, 1000);
    assert_int_equal(ddns_request_size(&req, &n), DDNS_OK);
    st.clock_offset = 1;
    req.ts = ddns_clock(&st, DDNS_TS_MAX);
    assert_int_equal(ddns_request_size(&req, &n), DDNS_E_TS);
}

static void test_next_stop(void **state)
{
    (void)state;
    static const ddns_result_t stops[] = { DDNS_RESULT_BADAUTH, DDNS_RESULT_DISABLED,
                                           DDNS_RESULT_BADREQUEST, DDNS_RESULT_NOTFOUND,
                                           DDNS_RESULT_BADAGENT };
    ddns_state_t st;
    uint32_t delay;

    for (size_t k = 0; k < sizeof stops / sizeof *stops; k++) {
        ddns_response_t r = answer(stops[k]), r911 = answer(DDNS_RESULT_SERVERERROR);
        ddns_response_t good = answer(DDNS_RESULT_GOOD);
        memset(&st, 0, sizeof st);
        delay = 99;
        assert_int_equal(ddns_next(&st, &dflt, &r, 0, 0xffffffffu, &delay), DDNS_NEXT_STOP);
        assert_int_equal(delay, 0);
        assert_int_equal(st.stopped, 1);
        /* Whatever comes next, it stays stopped... */
        assert_int_equal(ddns_next(&st, &dflt, &r911, 0, 0, &delay), DDNS_NEXT_STOP);
        assert_int_equal(ddns_next(&st, &dflt, NULL, 0, 0, &delay), DDNS_NEXT_STOP);
        assert_int_equal(delay, 0);
        /* ...until an update succeeds (a person fixed it) or the state is
         * zeroed. */
        assert_int_equal(ddns_next(&st, &dflt, &good, 0, 0, &delay), DDNS_NEXT_IDLE);
        assert_int_equal(st.stopped, 0);
        assert_int_equal(ddns_next(&st, &dflt, &r911, 0, 0, &delay), DDNS_NEXT_RETRY);
    }
    ddns_response_t good = answer(DDNS_RESULT_GOOD);
    assert_int_equal(ddns_next(NULL, &dflt, &good, 0, 0, &delay), DDNS_NEXT_STOP);
    assert_int_equal(ddns_next(&st, &dflt, &good, 0, 0, NULL), DDNS_NEXT_STOP);
}

/* Never hammer: over every result and many random values, a retry waits at
 * least a minute (the badtime correction and the moved answer excepted,
 * once in a row), a success waits
 * for the keep-alive, and no delay overflows. */
static void test_next_never_hammers(void **state)
{
    (void)state;
    uint32_t seed = 99;

    for (int iter = 0; iter < 20000; iter++) {
        ddns_state_t st;
        ddns_response_t r;
        uint32_t delay;
        memset(&st, 0, sizeof st);
        st.failures = lcg(&seed) % 8;
        r = answer((ddns_result_t)(lcg(&seed) % 14));
        if (r.result == DDNS_RESULT_MOVED && lcg(&seed) % 2 == 0) {
            r.naddrs = 1;   /* the address fits, or not */
            r.addr[0] = ddns_span("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555",
                                  DDNS_IPV6_MAX + lcg(&seed) % 2);
        }
        r.retry_after = lcg(&seed) << 8;
        r.server_time = lcg(&seed);
        uint32_t rnd = lcg(&seed) ^ (lcg(&seed) << 24);
        uint32_t before = st.failures;
        ddns_next_t next = ddns_next(&st, &dflt, &r, lcg(&seed), rnd, &delay);
        switch (next) {
        case DDNS_NEXT_IDLE:
            assert_true(r.result == DDNS_RESULT_GOOD || r.result == DDNS_RESULT_NOCHG ||
                        r.result == DDNS_RESULT_BADADDR);
            assert_true(delay >= KEEPALIVE && delay < KEEPALIVE / 2 * 3);
            break;
        case DDNS_NEXT_RETRY:
            if (r.result == DDNS_RESULT_BADTIME && before == 0 && r.server_time <= DDNS_TS_MAX)
                assert_true(delay >= 4 && delay <= 5);
            else if (r.result == DDNS_RESULT_MOVED && before == 0 && r.naddrs == 1 &&
                     r.addr[0].len <= DDNS_IPV6_MAX)
                assert_int_equal(delay, 0);   /* sign again at once, once */
            else
                assert_true(delay >= MIN_INTERVAL);
            assert_true(delay < RETRY_AFTER_MAX / 2 * 3);
            break;
        default:
            assert_int_equal(delay, 0);
            break;
        }
    }
}

/* Direct calls of the full syntax checks and the text-form decoders on
 * edge inputs. */
static void test_checks_direct(void **state)
{
    (void)state;
    static const char *good6[] = { "1::1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4",
                                   "1:2:3:4:5::1.2.3.4", "abcd:EF01::" };
    static const char *bad6[] = { "1:2:3:4:5:6::1.2.3.4", "1x", "1:2:3:4:5:6:7:8x", "12345",
                                  "1", ":", "1:2:3:4:5:6:7:1.2.3.4",
                                  "1:2:3:4:5:6:7:8:1:2:3:4:5:6:7:8:1:2:3:4:5:6:7" };
    for (size_t i = 0; i < sizeof good6 / sizeof *good6; i++)
        assert_int_equal(ddns_ipv6_check(S(good6[i])), DDNS_OK);
    for (size_t i = 0; i < sizeof bad6 / sizeof *bad6; i++)
        assert_int_equal(ddns_ipv6_check(S(bad6[i])), DDNS_E_IPV6);
    assert_int_equal(ddns_ipv6_check(ddns_span(NULL, 3)), DDNS_E_IPV6);
    assert_int_equal(ddns_ipv4_check(ddns_span(NULL, 7)), DDNS_E_IPV4);
    assert_int_equal(ddns_ipv4_check(S("1.2.3.4")), DDNS_OK);
    assert_int_equal(ddns_ipv4_check(S("1.2.3.4.")), DDNS_E_IPV4);
    assert_int_equal(ddns_device_id_check(ddns_span(NULL, 12)), DDNS_E_DEVICE_ID);
    assert_int_equal(ddns_device_id_check(S("3c5ab4f09a2g")), DDNS_E_DEVICE_ID);
    assert_int_equal(ddns_kid_check(ddns_span(NULL, 2)), DDNS_E_KID);
    assert_int_equal(ddns_kid_check(ddns_span(NULL, 0)), DDNS_E_KID);
    assert_int_equal(ddns_kid_check(S("k1")), DDNS_OK);
    assert_int_equal(ddns_kid_check(S("k1/7")), DDNS_OK);

    char id[13];
    static const uint8_t mac_ok[6] = { 0x3c, 0x5a, 0xb4, 0xf0, 0x9a, 0x21 };
    assert_int_equal(ddns_device_id_from_mac(mac_ok, NULL), DDNS_E_NULL);
    assert_int_equal(ddns_device_id_from_mac(mac_ok, id), DDNS_OK);
    uint8_t secret[32];
    char kid[DDNS_KID_MAX + 1];
    assert_int_equal(ddns_password_decode(S("k1.x"), kid, NULL, NULL), DDNS_E_NULL);
    assert_int_equal(ddns_password_decode(ddns_span(NULL, 4), kid, NULL, secret),
                     DDNS_E_PASSWORD);

    /* Strict request check: the builder checks come first. */
    ddns_request_t req = base_request();
    req.host = S("");
    req.device_id = S("000000000000");
    assert_int_equal(ddns_request_check(&req), DDNS_E_HOST);
    req = base_request();
    req.ipv4 = S("1.2.3.400");
    req.ipv6 = S("1::2::3");
    assert_int_equal(ddns_request_check(&req), DDNS_E_IPV4);
    req.ipv4 = S("1.2.3.4");
    assert_int_equal(ddns_request_check(&req), DDNS_E_IPV6);
    req.ipv6 = S("1::3");
    assert_int_equal(ddns_request_check(&req), DDNS_OK);
    req.ipv4 = ddns_span(NULL, 0);
    assert_int_equal(ddns_request_check(&req), DDNS_OK);
}

static void test_http_status_line(void **state)
{
    (void)state;
    ddns_http_response_t h;
    static const char *bad[] = { "HTTP/1.x 200 OK\r\n", "HTTP/1.1x200 OK\r\n",
                                 "HTTP/1.1 2x0 OK\r\n", "HTTP/1.1 200x\r\n",
                                 "HTTP/1.1 199 X\r\n", "HTTP/1.\r\n", "HTTP/1.1 200\x01\r\n" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(HTTP(bad[i], &h), DDNS_E_HTTP_SYNTAX);
    assert_int_equal(HTTP("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", &h), DDNS_OK);
    assert_int_equal(HTTP("HTTP/1.1 599 Z\nCon\nContent-Length: 0\n\n", &h), DDNS_OK);
    assert_int_equal(h.status, 599);
    assert_int_equal(HTTP("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
                          &h), DDNS_OK);
    assert_int_equal(h.body.len, 3);
    ddns_response_t r;
    assert_int_equal(ddns_response_parse(200, ddns_span(NULL, 0), &r), DDNS_E_RESP_FORMAT);
}

/* The Authorization value checks the body's fields too (its MAC covers
 * them), in the order of the string to sign, and writes nothing then; the
 * presigned value checks only its own fields; the body only the
 * addresses. */
static void test_request_parts_checks(void **state)
{
    (void)state;
    uint8_t buf[DDNS_REQUEST_MAX], mac[32] = { 0 };
    size_t len = 99;
    ddns_request_t req = base_request();

    req.ipv4 = S("192.0.2.1&x=1");
    memset(buf, 0xa5, sizeof buf);
    assert_int_equal(ddns_request_authorization(&req, test_secret, buf, sizeof buf, &len),
                     DDNS_E_IPV4);
    assert_int_equal(len, 0);
    assert_int_equal(buf[0], 0xa5);
    assert_int_equal(ddns_request_authorization_presigned(&req, mac, buf, sizeof buf, &len),
                     DDNS_OK);
    assert_int_equal(ddns_request_body(&req, buf, sizeof buf, &len), DDNS_E_IPV4);
    req.kid = S("a b");
    assert_int_equal(ddns_request_authorization(&req, test_secret, buf, sizeof buf, &len),
                     DDNS_E_KID);
    req = base_request();
    req.ipv6 = S("2001:db8::1 x");
    assert_int_equal(ddns_request_authorization(&req, test_secret, buf, sizeof buf, &len),
                     DDNS_E_IPV6);

    /* host and user agent are not in the value or the body */
    req = base_request();
    req.host = S("bad host");
    req.user_agent = S("ua\r\nX: 1");
    assert_int_equal(ddns_request_authorization(&req, test_secret, buf, sizeof buf, &len),
                     DDNS_OK);
    assert_int_equal(ddns_request_body(&req, buf, sizeof buf, &len), DDNS_OK);
    assert_int_equal(ddns_request_build(&req, test_secret, buf, sizeof buf, &len), DDNS_E_HOST);

    /* no address: an empty body, an empty Content-Length */
    req = base_request();
    req.ipv4 = ddns_span(NULL, 0);
    assert_int_equal(ddns_request_body(&req, NULL, 0, &len), DDNS_OK);
    assert_int_equal(len, 0);
    assert_int_equal(ddns_request_authorization(&req, test_secret, buf, sizeof buf, &len),
                     DDNS_OK);

    assert_int_equal(ddns_request_authorization(NULL, test_secret, buf, sizeof buf, &len),
                     DDNS_E_NULL);
    assert_int_equal(ddns_request_authorization(&req, NULL, buf, sizeof buf, &len), DDNS_E_NULL);
    assert_int_equal(ddns_request_authorization(&req, test_secret, NULL, 5, &len), DDNS_E_NULL);
    assert_int_equal(ddns_request_body(&req, buf, sizeof buf, NULL), DDNS_E_NULL);
    assert_int_equal(ddns_request_body(NULL, buf, sizeof buf, &len), DDNS_E_NULL);
}

/* ---- Options of ddns_next() ------------------------------------------------ */

static void test_options_default(void **state)
{
    (void)state;
    ddns_options_t o = ddns_options_default();
    assert_int_equal(o.min_interval, MIN_INTERVAL);
    assert_int_equal(o.keepalive, KEEPALIVE);
    assert_int_equal(o.backoff_first, BACKOFF_FIRST);
    assert_int_equal(o.backoff_max, BACKOFF_MAX);
    assert_int_equal(o.retry_after_max, RETRY_AFTER_MAX);
    assert_int_equal(o.retry_after_max, DDNS_DELAY_MAX);
    assert_int_equal(o.badtime_retry, 4);
    assert_int_equal(ddns_options_check(&o), DDNS_OK);
    assert_int_equal(ddns_options_check(NULL), DDNS_E_NULL);

    /* each range refused */
    ddns_options_t bad[9];
    for (int i = 0; i < 9; i++)
        bad[i] = o;
    bad[0].min_interval = 0;
    bad[1].min_interval = o.backoff_first + 1;
    bad[2].backoff_max = o.backoff_first - 1;
    bad[3].backoff_max = DDNS_DELAY_MAX + 1;
    bad[4].keepalive = o.min_interval - 1;
    bad[5].keepalive = DDNS_DELAY_MAX + 1;
    bad[6].retry_after_max = o.min_interval - 1;
    bad[7].retry_after_max = DDNS_DELAY_MAX + 1;
    bad[8].badtime_retry = DDNS_DELAY_MAX + 1;
    for (int i = 0; i < 9; i++)
        assert_int_equal(ddns_options_check(&bad[i]), DDNS_E_OPTIONS);
    ddns_options_t edge = { 1, 1, 1, DDNS_DELAY_MAX, DDNS_DELAY_MAX, 0 };
    assert_int_equal(ddns_options_check(&edge), DDNS_OK);
}

/* ddns_next() follows the options it is given. */
static void test_next_options(void **state)
{
    (void)state;
    ddns_options_t o = { 30, 6 * 3600, 45, 200, 1000, 2 };
    ddns_state_t st;
    ddns_response_t good = { .result = DDNS_RESULT_GOOD, .naddrs = 1 };
    ddns_response_t r911 = { .result = DDNS_RESULT_SERVERERROR };
    ddns_response_t rl = { .result = DDNS_RESULT_RATELIMIT };
    ddns_response_t bt = { .result = DDNS_RESULT_BADTIME, .server_time = 1000 };
    uint32_t delay;

    assert_int_equal(ddns_options_check(&o), DDNS_OK);
    memset(&st, 0, sizeof st);
    assert_int_equal(ddns_next(&st, &o, &good, 0, 0, &delay), DDNS_NEXT_IDLE);
    assert_int_equal(delay, 6 * 3600);
    /* 45, 90, 180, then backoff_max */
    static const uint32_t backoff[] = { 45, 90, 180, 200, 200 };
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ddns_next(&st, &o, &r911, 0, 0, &delay), DDNS_NEXT_RETRY);
        assert_int_equal(delay, backoff[i]);
    }
    rl.retry_after = 5;
    assert_int_equal(ddns_next(&st, &o, &rl, 0, 0, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(delay, 30);
    rl.retry_after = 5000;
    assert_int_equal(ddns_next(&st, &o, &rl, 0, 0, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(delay, 1000);
    assert_int_equal(ddns_next(&st, &o, &good, 0, 0, &delay), DDNS_NEXT_IDLE);
    assert_int_equal(ddns_next(&st, &o, &bt, 900, 0, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(delay, 2);
    assert_int_equal(st.clock_offset, 100);
    /* the random part: up to half of the base */
    assert_int_equal(ddns_next(&st, &o, &good, 0, 0xfffu, &delay), DDNS_NEXT_IDLE);
    assert_int_equal(delay, 6 * 3600 + ((0xfffu * 6 * 3600) >> 13));
    assert_int_equal(ddns_next(&st, NULL, &good, 0, 0, &delay), DDNS_NEXT_STOP);

    /* options out of range: no undefined behaviour, bounded work */
    ddns_options_t wild = { 0, UINT32_MAX, 0, UINT32_MAX, UINT32_MAX, UINT32_MAX };
    memset(&st, 0, sizeof st);
    for (int i = 0; i < 40; i++)
        assert_int_equal(ddns_next(&st, &wild, &r911, 0, 0xfffu, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(ddns_next(&st, &wild, &good, 0, 0xfffu, &delay), DDNS_NEXT_IDLE);
}

/* ---- The learnt address (peer) and the moved answer ------------------------ */

/* A state that has learnt addr. */
static ddns_state_t state_with_peer(const char *addr)
{
    ddns_state_t st;
    memset(&st, 0, sizeof st);
    memcpy(st.peer, addr, strlen(addr));
    st.peer_len = (uint8_t)strlen(addr);
    return st;
}

/* The body of req as text ("" when empty). */
static const char *body_text(const ddns_request_t *req)
{
    static char text[DDNS_BODY_MAX + 1];
    size_t len = 99;

    assert_int_equal(ddns_request_body(req, (uint8_t *)text, DDNS_BODY_MAX, &len), DDNS_OK);
    text[len] = '\0';
    return text;
}

static void test_request_peer(void **state)
{
    (void)state;
    static const char sts_expect[] =
        "DDNS-HMAC-SHA256\nPOST\n/v1/update\n3c5ab4f09a21\nk1\n1700000000\n0123456789abcdef\n"
        "peer=192.0.2.10";
    ddns_request_t req = base_request();
    ddns_state_t st = state_with_peer("192.0.2.10");
    uint8_t buf[DDNS_REQUEST_MAX];
    size_t len;

    /* No address: the learnt one, as peer. */
    req.ipv4 = ddns_span(NULL, 0);
    assert_string_equal(body_text(&req), "");
    req.state = &st;
    assert_string_equal(body_text(&req), "peer=192.0.2.10");
    assert_int_equal(ddns_request_string_to_sign(&req, buf, sizeof buf, &len), DDNS_OK);
    assert_int_equal(len, sizeof sts_expect - 1);
    assert_memory_equal(buf, sts_expect, len);
    assert_int_equal(ddns_request_build(&req, test_secret, buf, sizeof buf, &len), DDNS_OK);
    assert_non_null(memmem(buf, len, "\r\nContent-Length: 15\r\n\r\npeer=192.0.2.10", 39));
    assert_memory_equal(buf + len - 15, "peer=192.0.2.10", 15);
    assert_int_equal(ddns_request_check(&req), DDNS_OK);
    for (int which = 0; which < 3; which++)
        check_short_buffers(&req, which);

    /* An IPv6 address, the longest text. */
    st = state_with_peer("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
    assert_string_equal(body_text(&req), "peer=ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
    assert_int_equal(ddns_request_check(&req), DDNS_OK);

    /* An address given by the firmware wins: peer is sent alone. */
    st = state_with_peer("192.0.2.10");
    req.ipv4 = S("198.51.100.7");
    assert_string_equal(body_text(&req), "ipv4=198.51.100.7");
    req.ipv4 = ddns_span(NULL, 0);
    req.ipv6 = S("2001:db8::7");
    assert_string_equal(body_text(&req), "ipv6=2001:db8::7");
    req.ipv6 = ddns_span(NULL, 0);

    /* Nothing learnt: no body, as without the state. */
    st.peer_len = 0;
    assert_string_equal(body_text(&req), "");
    assert_int_equal(ddns_request_check(&req), DDNS_OK);

    /* A learnt address the body cannot carry is left out, never an
     * error: over 45 bytes, a byte below '.' (',' '&' blank) or above
     * '~'. ddns_request_check() reports it, and any learnt text that is
     * not an address. */
    static const char *const unsendable[] = { "1.2.3.4&ipv4=5.6.7.8", "1.2.3.4,", "1 2",
                                              "1.2.3.4\x7f" };
    for (size_t i = 0; i < sizeof unsendable / sizeof *unsendable; i++) {
        st = state_with_peer(unsendable[i]);
        assert_string_equal(body_text(&req), "");
        assert_int_equal(ddns_request_size(&req, &len), DDNS_OK);
        assert_int_equal(ddns_request_check(&req), DDNS_E_PEER);
    }
    st = state_with_peer("192.0.2.10");
    st.peer_len = DDNS_IPV6_MAX + 1;
    assert_string_equal(body_text(&req), "");
    assert_int_equal(ddns_request_check(&req), DDNS_E_PEER);
    st.peer_len = 255;
    assert_string_equal(body_text(&req), "");
    assert_int_equal(ddns_request_check(&req), DDNS_E_PEER);
    st = state_with_peer("1.2.3");   /* sendable, but not an address */
    assert_string_equal(body_text(&req), "peer=1.2.3");
    assert_int_equal(ddns_request_check(&req), DDNS_E_PEER);
    /* ...which does not matter when the request names an address. */
    req.ipv4 = S("192.0.2.10");
    assert_int_equal(ddns_request_check(&req), DDNS_OK);
}

static void test_response_moved(void **state)
{
    (void)state;
    ddns_response_t r;

    assert_int_equal(DDNS_RESULT_MOVED, DDNS_RESULT_BADAGENT + 1);
    assert_int_equal(DDNS_E_PEER, DDNS_E_OPTIONS + 1);
    assert_int_equal(parse_text(409, "moved 198.51.100.7\n", &r), DDNS_OK);
    assert_int_equal(r.result, DDNS_RESULT_MOVED);
    assert_int_equal(r.naddrs, 1);
    assert_span(r.addr[0], "198.51.100.7");
    assert_span(r.addr[1], "");
    assert_string_equal(ddns_result_token(r.result), "moved");
    assert_int_equal(parse_text(409, "moved 2001:db8::7\n", &r), DDNS_OK);
    assert_int_equal(r.result, DDNS_RESULT_MOVED);
    assert_span(r.addr[0], "2001:db8::7");
    /* exactly one data word, and status 409 */
    assert_int_equal(parse_text(409, "moved\n", &r), DDNS_E_RESP_DATA);
    assert_int_equal(parse_text(409, "moved 198.51.100.7 2001:db8::7\n", &r), DDNS_E_RESP_DATA);
    assert_int_equal(parse_text(200, "moved 198.51.100.7\n", &r), DDNS_E_RESP_STATUS);
    assert_int_equal(parse_text(400, "moved 198.51.100.7\n", &r), DDNS_E_RESP_STATUS);
    assert_int_equal(parse_text(409, "moved  198.51.100.7\n", &r), DDNS_E_RESP_FORMAT);
    assert_int_equal(parse_text(409, "move 198.51.100.7\n", &r), DDNS_E_RESP_TOKEN);
    assert_int_equal(parse_text(409, "movedx 198.51.100.7\n", &r), DDNS_E_RESP_TOKEN);
    /* the other 409 still takes no data */
    assert_int_equal(parse_text(409, "replay 198.51.100.7\n", &r), DDNS_E_RESP_DATA);
}

/* A parsed moved, good or nochg answer naming addr (a string literal). */
static ddns_response_t answer_addr(ddns_result_t result, const char *addr)
{
    ddns_response_t r;
    memset(&r, 0, sizeof r);
    r.result = result;
    r.naddrs = 1;
    r.addr[0] = S(addr);
    return r;
}

static void assert_peer(const ddns_state_t *st, const char *addr)
{
    assert_int_equal(st->peer_len, strlen(addr));
    assert_memory_equal(st->peer, addr, strlen(addr));
}

static void test_next_learns_and_moved(void **state)
{
    (void)state;
    ddns_state_t st;
    ddns_request_t req = base_request();
    uint32_t delay;

    memset(&st, 0, sizeof st);
    req.ipv4 = ddns_span(NULL, 0);
    req.state = &st;

    /* The first request has no address; good names the connection's,
     * which the next poll sends as peer. */
    assert_string_equal(body_text(&req), "");
    ddns_response_t good = answer_addr(DDNS_RESULT_GOOD, "192.0.2.10");
    assert_int_equal(ddns_next(&st, &dflt, &good, 0, 0, &delay), DDNS_NEXT_IDLE);
    assert_int_equal(delay, KEEPALIVE);
    assert_peer(&st, "192.0.2.10");
    assert_string_equal(body_text(&req), "peer=192.0.2.10");

    /* The connection now comes from elsewhere: moved is learnt and
     * answered at once, whatever the random value... */
    ddns_response_t moved = answer_addr(DDNS_RESULT_MOVED, "2001:db8::7");
    assert_int_equal(ddns_next(&st, &dflt, &moved, 0, 0xffffffffu, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(delay, 0);
    assert_int_equal(st.failures, 1);
    assert_peer(&st, "2001:db8::7");
    assert_string_equal(body_text(&req), "peer=2001:db8::7");
    /* ...once in a row: a gateway answering moved forever gets the error
     * backoff, never STOP. */
    static const uint32_t bases[] = { 600, 1200, 2400, 3600, 3600 };
    for (size_t i = 0; i < sizeof bases / sizeof *bases; i++) {
        assert_int_equal(ddns_next(&st, &dflt, &moved, 0, 0, &delay), DDNS_NEXT_RETRY);
        assert_int_equal(delay, bases[i]);
    }
    assert_int_equal(st.stopped, 0);
    /* nochg resets the count; a later moved is answered at once again. */
    ddns_response_t nochg = answer_addr(DDNS_RESULT_NOCHG, "2001:db8::7");
    assert_int_equal(ddns_next(&st, &dflt, &nochg, 0, 0, &delay), DDNS_NEXT_IDLE);
    assert_int_equal(st.failures, 0);
    moved = answer_addr(DDNS_RESULT_MOVED, "198.51.100.7");
    assert_int_equal(ddns_next(&st, &dflt, &moved, 0, 0, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(delay, 0);
    assert_peer(&st, "198.51.100.7");
    /* Another failure first: moved is then the second in a row. */
    ddns_response_t r911 = answer(DDNS_RESULT_SERVERERROR);
    st.failures = 0;
    assert_int_equal(ddns_next(&st, &dflt, &r911, 0, 0, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(ddns_next(&st, &dflt, &moved, 0, 0, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(delay, 600);

    /* An address that does not fit is no valid answer: nothing learnt,
     * the error backoff. */
    static const char long_addr[] = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555";
    assert_int_equal(strlen(long_addr), DDNS_IPV6_MAX + 1);
    ddns_response_t too_long = answer_addr(DDNS_RESULT_MOVED, long_addr);
    st.failures = 0;
    assert_int_equal(ddns_next(&st, &dflt, &too_long, 0, 0, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(delay, BACKOFF_FIRST);
    assert_peer(&st, "198.51.100.7");
    /* The longest address fits. */
    ddns_response_t longest =
        answer_addr(DDNS_RESULT_MOVED, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
    st.failures = 0;
    assert_int_equal(ddns_next(&st, &dflt, &longest, 0, 0, &delay), DDNS_NEXT_RETRY);
    assert_int_equal(delay, 0);
    assert_peer(&st, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");

    /* Only an answer with one recorded address is learnt: not two, not
     * badaddr's refused ones, not good or nochg with a long word. */
    st = state_with_peer("192.0.2.10");
    ddns_response_t two = answer_addr(DDNS_RESULT_GOOD, "198.51.100.7");
    two.naddrs = 2;
    two.addr[1] = S("2001:db8::7");
    assert_int_equal(ddns_next(&st, &dflt, &two, 0, 0, &delay), DDNS_NEXT_IDLE);
    assert_peer(&st, "192.0.2.10");
    ddns_response_t badaddr = answer_addr(DDNS_RESULT_BADADDR, "10.0.0.1");
    assert_int_equal(ddns_next(&st, &dflt, &badaddr, 0, 0, &delay), DDNS_NEXT_IDLE);
    assert_peer(&st, "192.0.2.10");
    good = answer_addr(DDNS_RESULT_GOOD, long_addr);
    assert_int_equal(ddns_next(&st, &dflt, &good, 0, 0, &delay), DDNS_NEXT_IDLE);
    assert_peer(&st, "192.0.2.10");
    nochg = answer_addr(DDNS_RESULT_NOCHG, "198.51.100.7");
    assert_int_equal(ddns_next(&st, &dflt, &nochg, 0, 0, &delay), DDNS_NEXT_IDLE);
    assert_peer(&st, "198.51.100.7");

    /* A stopped device stays stopped. */
    st.stopped = 1;
    assert_int_equal(ddns_next(&st, &dflt, &moved, 0, 0, &delay), DDNS_NEXT_STOP);
    assert_int_equal(delay, 0);
}

/* The time to sign strictly increases within a state; a badtime answer
 * lets it go back to the gateway's. */
static void test_clock_monotonic(void **state)
{
    (void)state;
    ddns_state_t st;
    ddns_response_t r = answer(DDNS_RESULT_BADTIME);
    uint32_t delay;

    memset(&st, 0, sizeof st);
    assert_true(ddns_clock(&st, 1700000000) == 1700000000);
    assert_true(st.last_ts == 1700000000);
    /* the same second, and a clock that stepped back */
    assert_true(ddns_clock(&st, 1700000000) == 1700000001);
    assert_true(ddns_clock(&st, 1699999000) == 1700000002);
    assert_true(ddns_clock(&st, 1700000100) == 1700000100);
    /* with the offset */
    st.clock_offset = -100;
    assert_true(ddns_clock(&st, 1700000150) == 1700000101);
    assert_true(ddns_clock(&st, 1700000300) == 1700000200);
    /* A time the request refuses is not remembered. */
    st.clock_offset = 0;
    assert_true(ddns_clock(&st, DDNS_TS_MAX + 1) == DDNS_TS_MAX + 1);
    assert_true(st.last_ts == 1700000200);
    assert_true(ddns_clock(&st, DDNS_TS_MAX) == DDNS_TS_MAX);
    assert_true(ddns_clock(&st, 5) == DDNS_TS_MAX + 1);
    assert_true(st.last_ts == DDNS_TS_MAX);

    /* A device clock an hour ahead signed at 1700003600; the gateway
     * answers badtime with its time: the next time to sign is the
     * gateway's, earlier than the last one signed. */
    memset(&st, 0, sizeof st);
    assert_true(ddns_clock(&st, 1700003600) == 1700003600);
    r.server_time = 1700000000;
    assert_int_equal(ddns_next(&st, &dflt, &r, 1700003600, 0, &delay), DDNS_NEXT_RETRY);
    assert_true(st.last_ts == 0);
    assert_true(ddns_clock(&st, 1700003604) == 1700000004);
    /* ddns_clock_correct() on its own too; on error it changes nothing. */
    assert_true(ddns_clock(&st, 1700003700) == 1700000100);
    ddns_response_t good = answer(DDNS_RESULT_GOOD);
    assert_int_equal(ddns_clock_correct(&st, &good, 1700003700), DDNS_E_RESP_DATA);
    assert_true(st.last_ts == 1700000100);
    assert_int_equal(ddns_clock_correct(&st, &r, 1700003700), DDNS_OK);
    assert_true(st.last_ts == 0);
    assert_true(ddns_clock(&st, 1700003700) == 1700000000);
}

static void test_strerror(void **state)
{
    (void)state;
    for (int e = DDNS_OK; e <= DDNS_E_PEER; e++) {
        const char *s = ddns_strerror((ddns_err_t)e);
        assert_non_null(s);
        assert_true(strlen(s) > 1);
        for (int f = DDNS_OK; f < e; f++)
            assert_string_not_equal(s, ddns_strerror((ddns_err_t)f));
    }
    assert_string_equal(ddns_strerror((ddns_err_t)1000), "?");
    assert_string_equal(ddns_strerror(DDNS_E_HOST), "host");
    assert_string_equal(ddns_strerror(DDNS_E_HTTP_LENGTH), "http-length");
    assert_string_equal(ddns_strerror(DDNS_E_OPTIONS), "options");
    assert_string_equal(ddns_strerror(DDNS_E_PEER), "peer");
    assert_string_equal(ddns_strerror((ddns_err_t)(DDNS_E_PEER + 1)), "?");
    assert_string_equal(ddns_result_token(DDNS_RESULT_MOVED), "moved");
    assert_string_equal(ddns_result_token((ddns_result_t)(DDNS_RESULT_MOVED + 1)), "");
}

/* The result types have the same size whatever the compiler's enum size. */
static void test_result_types_fixed(void **state)
{
    (void)state;
    assert_int_equal(sizeof(ddns_err_t), 4);
    assert_int_equal(sizeof(ddns_result_t), 4);
    assert_int_equal(sizeof(ddns_next_t), 4);
    assert_int_equal(sizeof(((ddns_response_t *)0)->result), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_fips),
        cmocka_unit_test(test_sha256_incremental),
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_vectors_sign),
        cmocka_unit_test(test_vectors_derive),
        cmocka_unit_test(test_vectors_keyref),
        cmocka_unit_test(test_vectors_response),
        cmocka_unit_test(test_request_short_buffers),
        cmocka_unit_test(test_request_user_agent_and_empty_body),
        cmocka_unit_test(test_request_maximum_size),
        cmocka_unit_test(test_request_bad_inputs),
        cmocka_unit_test(test_request_null_and_ts),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_response_cases),
        cmocka_unit_test(test_response_truncated),
        cmocka_unit_test(test_response_random),
        cmocka_unit_test(test_http_parse),
        cmocka_unit_test(test_next_success_and_keepalive),
        cmocka_unit_test(test_next_backoff),
        cmocka_unit_test(test_next_ratelimit),
        cmocka_unit_test(test_next_badtime_and_clock),
        cmocka_unit_test(test_next_stop),
        cmocka_unit_test(test_next_never_hammers),
        cmocka_unit_test(test_checks_direct),
        cmocka_unit_test(test_http_status_line),
        cmocka_unit_test(test_request_peer),
        cmocka_unit_test(test_response_moved),
        cmocka_unit_test(test_next_learns_and_moved),
        cmocka_unit_test(test_clock_monotonic),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_result_types_fixed),
        cmocka_unit_test(test_request_parts_checks),
        cmocka_unit_test(test_options_default),
        cmocka_unit_test(test_next_options),
    };
    return cmocka_run_group_tests_name("firmware-sdk", tests, setup_vectors, teardown_vectors);
}
