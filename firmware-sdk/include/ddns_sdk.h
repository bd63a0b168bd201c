/* ddns_sdk.h: firmware SDK for the DDNS device protocol, version 1
 * (docs/PROTOCOL.md). This is the only public header of the SDK.
 *
 * The SDK builds the signed update request a device sends, parses the
 * gateway's answer, tells the firmware what to do next, keeps the clock
 * offset learnt from the gateway, decodes the per-device secret from its
 * text forms and provides SHA-256 / HMAC-SHA256. It is C99, uses no heap,
 * no static data and no library calls beyond <string.h>; every function is
 * re-entrant. The caller supplies all buffers, the clock and randomness.
 *
 * Conventions:
 *  - Inputs travel as pointer + length (ddns_span_t); nothing is assumed to
 *    be NUL-terminated. A span with len 0 may have ptr NULL.
 *  - Functions that can fail return ddns_err_t; DDNS_OK (0) is success.
 *  - Functions writing into a caller buffer take (out, out_size, out_len).
 *    On DDNS_OK *out_len is the number of bytes written; on DDNS_E_BUFFER it
 *    is the number of bytes needed; out is never written past out_size and
 *    is not modified at all when the function fails. out may be NULL when
 *    out_size is 0 (a size query).
 *
 * Modules (one file each; link the ones the firmware uses):
 *  - core, always: ddns_request.c (the request), ddns_response.c (the
 *    answer), ddns_next.c (what to do next, the clock);
 *  - ddns_sha256.c: the built-in SHA-256 / HMAC-SHA256,
 *    ddns_request_build() and ddns_wipe(). Leave it out when the platform
 *    signs (a crypto library, a hardware engine or a secure element) with
 *    ddns_request_string_to_sign() and ddns_request_build_presigned();
 *  - optional: ddns_check.c (full syntax of every request field, of device
 *    id, key id and addresses), ddns_http.c (HTTP/1.1 framing, for firmware
 *    without an HTTP client), ddns_credentials.c (secret text forms, device
 *    id of a MAC), ddns_error.c (names of errors and results for logs).
 */
#ifndef DDNS_SDK_H
#define DDNS_SDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DDNS_SDK_VERSION "2.0.0"

#if defined(__GNUC__) || defined(__clang__)
#define DDNS_MUST_CHECK __attribute__((warn_unused_result))
#else
#define DDNS_MUST_CHECK
#endif

/* ---- Sizes ---------------------------------------------------------------- */

#define DDNS_SHA256_LEN       32  /* digest / MAC bytes */
#define DDNS_SHA256_BLOCK     64  /* block bytes */
#define DDNS_SECRET_LEN       32  /* device secret bytes */
#define DDNS_SECRET_TEXT_LEN  43  /* base64url text form of the secret */
#define DDNS_NONCE_LEN        8   /* random bytes per request */
#define DDNS_DEVICE_ID_LEN    12  /* canonical device id characters */
#define DDNS_MAC_LEN          6   /* MAC address octets */
#define DDNS_KID_MAX          16  /* key id characters, at most */
#define DDNS_HOST_MAX         255 /* Host header value bytes, at most */
#define DDNS_USER_AGENT_MAX   128 /* User-Agent header value bytes, at most */
#define DDNS_IPV4_MAX         15  /* "255.255.255.255" */
#define DDNS_IPV6_MAX         45  /* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" */
#define DDNS_TS_MAX           999999999999ULL /* 12 decimal digits */
#define DDNS_RESPONSE_BODY_MAX 128 /* answer body bytes, at most */
/* Upper bound of a complete request (all inputs at their maximum). */
#define DDNS_REQUEST_MAX      768
/* Upper bound of the string to sign (16-character kid, both addresses). */
#define DDNS_STRING_TO_SIGN_MAX 164

/* ---- Common types --------------------------------------------------------- */

/* Read-only byte range. */
typedef struct ddns_span {
    const uint8_t *ptr;
    size_t len;
} ddns_span_t;

static inline ddns_span_t ddns_span(const void *ptr, size_t len)
{
    ddns_span_t s;
    s.ptr = (const uint8_t *)ptr;
    s.len = len;
    return s;
}

/* Span of a string literal, without its NUL. */
#define DDNS_SPAN_LITERAL(lit) ddns_span((lit), sizeof(lit) - 1u)

typedef enum ddns_err {
    DDNS_OK = 0,
    DDNS_E_NULL,                /* a required pointer argument is NULL */
    DDNS_E_BUFFER,              /* output buffer too small (see *out_len) */
    DDNS_E_HOST,                /* host empty, too long, or not printable ASCII without blanks */
    DDNS_E_USER_AGENT,          /* user agent too long, control/non-ASCII bytes, edge blanks */
    DDNS_E_DEVICE_ID,           /* device id not 12 lowercase hexadecimal digits */
    DDNS_E_DEVICE_ID_ZERO,      /* device id is the all-zero address */
    DDNS_E_DEVICE_ID_MULTICAST, /* device id is a multicast (or broadcast) address */
    DDNS_E_KID,                 /* key id not 1 to 16 characters of [a-z0-9] */
    DDNS_E_TS,                  /* ts above 999999999999 */
    DDNS_E_IPV4,                /* ipv4 not a dotted-quad address */
    DDNS_E_IPV6,                /* ipv6 not IPv6 address text */
    DDNS_E_SECRET,              /* secret text not 43 canonical base64url characters */
    DDNS_E_PASSWORD,            /* password not of the form kid "." secret */
    DDNS_E_RESP_FORMAT,         /* answer body not one printable line ended by LF, <= 128 bytes */
    DDNS_E_RESP_TOKEN,          /* unknown result token */
    DDNS_E_RESP_STATUS,         /* HTTP status does not match the result token */
    DDNS_E_RESP_DATA,           /* data words missing, extra or malformed */
    DDNS_E_HTTP_INCOMPLETE,     /* HTTP response not complete yet: read more */
    DDNS_E_HTTP_SYNTAX,         /* malformed HTTP status line or header */
    DDNS_E_HTTP_LENGTH          /* Content-Length missing, invalid or unsupported framing */
} ddns_err_t;

/* Wipes n bytes at p in a way the compiler does not remove (ddns_sha256.c;
 * the core holds no secret). */
void ddns_wipe(void *p, size_t n);

/* ---- Names for logs (ddns_error.c, optional) ------------------------------ */

/* Name of err ("host", "resp-data", ...; "?" for a value outside the enum).
 * Never NULL. */
const char *ddns_strerror(ddns_err_t err);

/* ---- Full syntax checks (ddns_check.c, optional) --------------------------- */

/* Checks a canonical device id: 12 lowercase hex digits, not all-zero, not
 * multicast/broadcast. */
DDNS_MUST_CHECK ddns_err_t ddns_device_id_check(ddns_span_t device_id);

/* Checks a key id: 1 to 16 characters of [a-z0-9]. */
DDNS_MUST_CHECK ddns_err_t ddns_kid_check(ddns_span_t kid);

/* Checks IPv4 text: a dotted quad as inet_pton(AF_INET) accepts it (four
 * decimal parts 0 to 255, no leading zeros). */
DDNS_MUST_CHECK ddns_err_t ddns_ipv4_check(ddns_span_t text);

/* Checks IPv6 text in any RFC 4291 form as inet_pton(AF_INET6) accepts it
 * (hex groups, at most one "::", optional trailing dotted quad). */
DDNS_MUST_CHECK ddns_err_t ddns_ipv6_check(ddns_span_t text);

/* ---- Credentials in text form (ddns_credentials.c, optional) ------------- */

/* Formats the 6 octets of a MAC address as the canonical device id: 12
 * lowercase hex digits and a NUL in out. Refuses zero and multicast. */
DDNS_MUST_CHECK ddns_err_t ddns_device_id_from_mac(const uint8_t mac[DDNS_MAC_LEN],
                                                   char out[DDNS_DEVICE_ID_LEN + 1]);

/* Decodes the text form of the secret (base64url, no padding, exactly 43
 * characters, canonical last character) into 32 bytes, without branches or
 * table lookups on the secret characters. Nothing is written on error. */
DDNS_MUST_CHECK ddns_err_t ddns_secret_decode(ddns_span_t text,
                                              uint8_t secret[DDNS_SECRET_LEN]);

/* Decodes the password form kid "." secret. kid receives the key id and a
 * NUL, *kid_len its length (may be NULL). Errors: DDNS_E_PASSWORD (no "."),
 * DDNS_E_KID, DDNS_E_SECRET. Nothing is written on error. */
DDNS_MUST_CHECK ddns_err_t ddns_password_decode(ddns_span_t password,
                                                char kid[DDNS_KID_MAX + 1], size_t *kid_len,
                                                uint8_t secret[DDNS_SECRET_LEN]);

/* ---- Signed update request (PROTOCOL.md section 4) ----------------------- */

typedef struct ddns_request {
    ddns_span_t host;        /* Host header value, e.g. "ddns.example.com" */
    ddns_span_t user_agent;  /* User-Agent value, or len 0 for no header */
    ddns_span_t device_id;   /* canonical device id */
    ddns_span_t kid;         /* key id of the secret */
    ddns_span_t ipv4;        /* dotted quad, or len 0 for none */
    ddns_span_t ipv6;        /* IPv6 text, or len 0 for none (neither: the
                                connection's address is recorded) */
    uint64_t ts;             /* seconds since the epoch: ddns_clock() */
    uint8_t nonce[DDNS_NONCE_LEN]; /* fresh random bytes for every request */
} ddns_request_t;

/* The builders check the fields of req they write, in this order, for
 * what keeps the message well formed: host 1 to 255 bytes of '!' to '~'
 * (DDNS_E_HOST); user agent at most 128 bytes of ' ' to '~'
 * (DDNS_E_USER_AGENT); device id 12 (DDNS_E_DEVICE_ID), kid 1 to 16
 * (DDNS_E_KID), ipv4 at most 15 (DDNS_E_IPV4) and ipv6 at most 45
 * (DDNS_E_IPV6) bytes of '.' to '~'; ts at most DDNS_TS_MAX (DDNS_E_TS,
 * after the kid). So no input can end a header line or add a field or a
 * body parameter (no CR, LF, blank, ',' or '&' where they would). The
 * string to sign has no host and no user agent and does not check them.
 * The builders trust the caller for the rest of the syntax (lowercase hex
 * device id, the kid's characters, address syntax): the gateway answers
 * badrequest or badauth when it is wrong; ddns_request_check() checks it. */

/* Checks every field of req with the full syntax (ddns_check.c, optional):
 * the builders' checks above, then the user agent (no blank at either
 * end), the device id (12 of [0-9a-f], DDNS_E_DEVICE_ID_ZERO,
 * DDNS_E_DEVICE_ID_MULTICAST), the kid ([a-z0-9]) and the address syntax
 * (DDNS_E_IPV4, DDNS_E_IPV6), so that the gateway does not answer
 * badrequest for them. Returns the first error in the order of the fields. */
DDNS_MUST_CHECK ddns_err_t ddns_request_check(const ddns_request_t *req);

/* Exact bytes of the string to sign (PROTOCOL.md 4.3), for a platform
 * signer: a crypto library, a hardware engine or a secure element that
 * holds the secret. At most DDNS_STRING_TO_SIGN_MAX bytes. */
DDNS_MUST_CHECK ddns_err_t ddns_request_string_to_sign(const ddns_request_t *req, uint8_t *out,
                                                       size_t out_size, size_t *out_len);

/* Complete HTTP/1.1 request carrying mac, the HMAC-SHA256 computed by the
 * platform over the bytes of ddns_request_string_to_sign() for the same
 * req. */
DDNS_MUST_CHECK ddns_err_t ddns_request_build_presigned(const ddns_request_t *req,
                                                        const uint8_t mac[DDNS_SHA256_LEN],
                                                        uint8_t *out, size_t out_size,
                                                        size_t *out_len);

/* Size in bytes of the complete request for req: the size query of
 * ddns_request_build_presigned() (no buffer; counting reads no MAC, so any
 * non-NULL pointer serves as one). */
static inline DDNS_MUST_CHECK ddns_err_t ddns_request_size(const ddns_request_t *req,
                                                           size_t *needed)
{
    ddns_err_t err = ddns_request_build_presigned(req, (const uint8_t *)req, NULL, 0, needed);
    return err == DDNS_E_BUFFER ? DDNS_OK : err;
}

/* Complete HTTP/1.1 request signed with the 32-byte device secret by the
 * built-in HMAC-SHA256 (ddns_sha256.c). */
DDNS_MUST_CHECK ddns_err_t ddns_request_build(const ddns_request_t *req,
                                              const uint8_t secret[DDNS_SECRET_LEN],
                                              uint8_t *out, size_t out_size, size_t *out_len);

/* ---- Answer (PROTOCOL.md section 6) -------------------------------------- */

typedef enum ddns_result {
    DDNS_RESULT_NONE = 0,     /* no valid answer */
    DDNS_RESULT_GOOD,         /* 200 good <addr> [<addr>] */
    DDNS_RESULT_NOCHG,        /* 200 nochg <addr> [<addr>] */
    DDNS_RESULT_BADREQUEST,   /* 400 badrequest <field> */
    DDNS_RESULT_BADAUTH,      /* 401 badauth */
    DDNS_RESULT_BADTIME,      /* 401 badtime <server_time> */
    DDNS_RESULT_DISABLED,     /* 403 disabled */
    DDNS_RESULT_NOTFOUND,     /* 404 notfound */
    DDNS_RESULT_REPLAY,       /* 409 replay */
    DDNS_RESULT_RATELIMIT,    /* 429 ratelimit <seconds> */
    DDNS_RESULT_SERVERERROR,  /* 503 911 */
    DDNS_RESULT_BADAGENT      /* 403 badagent: this model or firmware version is refused */
} ddns_result_t;

/* Protocol token of r ("good", ..., "911"); "" for DDNS_RESULT_NONE and
 * values outside the enum. In ddns_error.c (optional). */
const char *ddns_result_token(ddns_result_t r);

/* A parsed answer. The spans point into the body given to
 * ddns_response_parse(), which must stay in place while they are used. */
typedef struct ddns_response {
    ddns_result_t result;
    unsigned naddrs;          /* good/nochg: 1 or 2 */
    ddns_span_t addr[2];      /* good/nochg: recorded addresses, IPv4 first */
    ddns_span_t detail;       /* badrequest: the field named */
    uint64_t server_time;     /* badtime: the gateway clock */
    uint32_t retry_after;     /* ratelimit: seconds to wait */
} ddns_response_t;

/* Parses an answer from its HTTP status and body: one line of printable
 * ASCII ended by LF, at most 128 bytes, single spaces between words, a
 * known token whose HTTP status matches, and exactly the data words the
 * token takes. The addresses of good and nochg are taken as the words they
 * are (the gateway sends IPv4 first); ddns_ipv4_check() and
 * ddns_ipv6_check() (ddns_check.c) check their syntax. Numbers have 1 to
 * 19 digits (retry_after at most 4294967295). *out is cleared first and
 * filled on DDNS_OK; on error out->result is DDNS_RESULT_NONE. */
DDNS_MUST_CHECK ddns_err_t ddns_response_parse(unsigned status, ddns_span_t body,
                                               ddns_response_t *out);

/* HTTP/1.1 response framing (ddns_http.c, optional). */
typedef struct ddns_http_response {
    unsigned status;          /* 200 to 599 */
    size_t header_len;        /* status line + headers + blank line */
    size_t content_length;
    size_t total_len;         /* header_len + content_length */
    ddns_span_t body;         /* points into raw */
} ddns_http_response_t;

/* Parses the status line, headers and body of a raw HTTP/1.1 response held
 * in raw. Returns DDNS_E_HTTP_INCOMPLETE while the header section or the
 * body is not complete (once the headers are complete, status, header_len
 * and content_length are already set so the caller knows how much
 * remains). Only the status line ("HTTP/1.x NNN", status 200 to 599),
 * Content-Length (required, at most 18 digits, equal when repeated) and
 * Transfer-Encoding (refused) are interpreted; other header lines are
 * skipped. Bytes after total_len are ignored. */
DDNS_MUST_CHECK ddns_err_t ddns_http_response_parse(ddns_span_t raw, ddns_http_response_t *out);

/* ---- What to do next, and the clock -------------------------------------- */

/* Timing rules of ddns_next(), in seconds. */
#define DDNS_MIN_INTERVAL  60     /* never two updates closer than this */
#define DDNS_KEEPALIVE     86400  /* re-send unchanged addresses once a day */
#define DDNS_BACKOFF_FIRST 300    /* first retry after an error */
#define DDNS_BACKOFF_MAX   3600   /* backoff doubles up to this */
#define DDNS_RETRY_AFTER_MAX 1048576 /* longest ratelimit delay obeyed (12 days) */

/* Caller-owned state kept across attempts; zero it once at start-up (and
 * again after a person has acted on DDNS_NEXT_STOP). */
typedef struct ddns_state {
    int64_t clock_offset;     /* seconds added to the device clock */
    uint32_t failures;        /* consecutive attempts without good/nochg */
    uint8_t stopped;          /* 1 once ddns_next() said DDNS_NEXT_STOP */
} ddns_state_t;

typedef enum ddns_next {
    /* Recorded. Send again when an address changes, but not sooner than
     * DDNS_MIN_INTERVAL s after this attempt, and at the latest after the
     * delay (the keep-alive). */
    DDNS_NEXT_IDLE = 0,
    /* Send a new request (new ts and nonce) after the delay. */
    DDNS_NEXT_RETRY,
    /* Do not send again until a person acts (credentials replaced, device
     * re-enabled, firmware or server address fixed); then zero the state. */
    DDNS_NEXT_STOP
} ddns_next_t;

/* Decides what to do after an attempt. r is the parsed answer, or NULL (or
 * result DDNS_RESULT_NONE) when there was none: network or TLS failure,
 * time-out, invalid answer. device_now is the device's own clock when the
 * answer arrived (only used to correct the clock after badtime). random is
 * 32 bits from the platform's random source: it spreads the delays so that
 * devices do not act in step. *delay receives the seconds to wait (0 with
 * DDNS_NEXT_STOP). Every delay is a base plus a random part of up to half
 * of the base:
 *
 *   good, nochg          IDLE   base DDNS_KEEPALIVE (24 to 36 hours)
 *   badtime              RETRY  clock corrected (ddns_clock_correct()); the
 *                               first failure in a row: base 4 s, later
 *                               ones as an error
 *   ratelimit <s>        RETRY  base s, at least DDNS_MIN_INTERVAL, at most
 *                               DDNS_RETRY_AFTER_MAX
 *   replay, 911, none    RETRY  error backoff: base DDNS_BACKOFF_FIRST,
 *                               doubled per consecutive failure up to
 *                               DDNS_BACKOFF_MAX
 *   badauth, disabled,   STOP   a person must act (badagent: a firmware
 *   badrequest, notfound,       update); repeating cannot help. STOP again
 *   badagent                    on every call until good/nochg or a zeroed
 *                               state.
 */
ddns_next_t ddns_next(ddns_state_t *st, const ddns_response_t *r, uint64_t device_now,
                      uint32_t random, uint32_t *delay);

/* Learns the clock offset from a badtime answer: the gateway's time minus
 * device_now, the device's own clock when the answer arrived. Returns
 * DDNS_E_RESP_DATA (and changes nothing) for any other answer, or when
 * either time is above DDNS_TS_MAX. */
DDNS_MUST_CHECK ddns_err_t ddns_clock_correct(ddns_state_t *st, const ddns_response_t *r,
                                              uint64_t device_now);

/* The time to sign with (ddns_request_t.ts): device_now plus the learnt
 * offset, modulo 2^64; a time that makes no sense (before 1970, after
 * DDNS_TS_MAX) then fails the request check with DDNS_E_TS. */
static inline uint64_t ddns_clock(const ddns_state_t *st, uint64_t device_now)
{
    return device_now + (uint64_t)st->clock_offset;
}

/* ---- SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104; ddns_sha256.c) ------- */
/* These cannot fail; pointers must be valid (data may be NULL when len is 0).
 * A message is at most 2^32 - 1 bytes. The final functions wipe the
 * context. */

typedef struct ddns_sha256 {
    uint32_t h[8];
    uint32_t w[16];                  /* the block being filled, as words */
    uint32_t total;                  /* bytes hashed so far */
} ddns_sha256_t;

void ddns_sha256_init(ddns_sha256_t *ctx);
void ddns_sha256_update(ddns_sha256_t *ctx, const void *data, size_t len);
void ddns_sha256_final(ddns_sha256_t *ctx, uint8_t digest[DDNS_SHA256_LEN]);
void ddns_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                      uint8_t mac[DDNS_SHA256_LEN]);

#ifdef __cplusplus
}
#endif

#endif /* DDNS_SDK_H */
