/* ddns_sdk.h: firmware SDK for the DDNS device protocol, version 1
 * (docs/PROTOCOL.md). The core API: the request, the answer, what to do
 * next and the clock.
 *
 * The SDK builds the signed update request a device sends (whole, or its
 * Authorization value and body for firmware with its own HTTP client),
 * parses the gateway's answer, tells the firmware what to do next and
 * keeps the clock offset learnt from the gateway. It is C99, uses no heap,
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
 *  - The result types (ddns_err_t, ddns_result_t, ddns_next_t) are int32_t
 *    with the values as enumeration constants, not enum types: their size
 *    does not depend on -fshort-enums (the default of arm-none-eabi-gcc,
 *    not of most hosted compilers), so the ABI is the same for code built
 *    either way.
 *
 * Modules: each is one source file, and each module beyond the core has a
 * header of the same name. A firmware build takes the pairs it uses, so
 * that calling a module left out fails at compile time (no declaration),
 * not at link time:
 *  - core, always: ddns_request.c, ddns_response.c, ddns_next.c and this
 *    header (ddns_internal.h is the core's private header);
 *  - ddns_sha256.c / ddns_sha256.h: the built-in SHA-256 / HMAC-SHA256,
 *    ddns_request_build(), ddns_request_authorization() and ddns_wipe().
 *    Leave it out when the platform signs (a crypto library, a hardware
 *    engine or a secure element) over ddns_request_string_to_sign();
 *  - ddns_check.c / ddns_check.h: full syntax of every request field, of
 *    device id, key id and addresses, and of the options of ddns_next();
 *  - ddns_http.c / ddns_http.h: HTTP/1.1 response framing, for firmware
 *    without an HTTP client;
 *  - ddns_credentials.c / ddns_credentials.h: the secret's text forms, the
 *    device id of a MAC;
 *  - ddns_error.c / ddns_error.h: names of errors and results for logs.
 */
#ifndef DDNS_SDK_H
#define DDNS_SDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DDNS_SDK_VERSION "3.3.0"

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
#define DDNS_KID_MAX          24  /* kid field (key reference: key id and
                                     "/generation") characters, at most */
#define DDNS_HOST_MAX         255 /* Host header value bytes, at most */
#define DDNS_USER_AGENT_MAX   128 /* User-Agent header value bytes, at most */
#define DDNS_IPV4_MAX         15  /* "255.255.255.255" */
#define DDNS_IPV6_MAX         45  /* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" */
#define DDNS_TS_MAX           999999999999ULL /* 12 decimal digits */
#define DDNS_RESPONSE_BODY_MAX 128 /* answer body bytes, at most */
/* Upper bound of a complete request (all inputs at their maximum). */
#define DDNS_REQUEST_MAX      768
/* Upper bound of the string to sign (24-character kid, both addresses). */
#define DDNS_STRING_TO_SIGN_MAX 172
/* Upper bound of the Authorization header value (24-character kid). */
#define DDNS_AUTHORIZATION_MAX 169
/* Upper bound of the body (both addresses at their longest). */
#define DDNS_BODY_MAX         71

/* ---- Common types --------------------------------------------------------- */

/* Read-only byte range. */
typedef struct ddns_span {
    const uint8_t *ptr;
    size_t len;
} ddns_span_t;

/**
 * Span of len bytes at ptr.
 * @param[in] ptr  first byte (may be NULL when len is 0)
 * @param[in] len  number of bytes
 * @return the span
 */
static inline ddns_span_t ddns_span(const void *ptr, size_t len)
{
    ddns_span_t s;
    s.ptr = (const uint8_t *)ptr;
    s.len = len;
    return s;
}

/* Span of a string literal, without its NUL. */
#define DDNS_SPAN_LITERAL(lit) ddns_span((lit), sizeof(lit) - 1u)

/* Result of the functions that can fail. A fixed-width integer rather than
 * an enum type, so that its size is the same whatever the compiler's enum
 * size (arm-none-eabi-gcc uses -fshort-enums by default, most hosted
 * compilers do not): the ABI of every function and structure of the SDK is
 * the same for firmware and libraries built either way. The values are the
 * constants of the enum below (enumeration constants have type int in C,
 * whatever the enum size); new codes are only ever added at the end. */
typedef int32_t ddns_err_t;
enum {
    DDNS_OK = 0,
    DDNS_E_NULL,                /* a required pointer argument is NULL */
    DDNS_E_BUFFER,              /* output buffer too small (see *out_len) */
    DDNS_E_HOST,                /* host empty, too long, or not printable ASCII without blanks */
    DDNS_E_USER_AGENT,          /* user agent too long, control/non-ASCII bytes, edge blanks */
    DDNS_E_DEVICE_ID,           /* device id not 12 lowercase hexadecimal digits */
    DDNS_E_DEVICE_ID_ZERO,      /* device id is the all-zero address */
    DDNS_E_DEVICE_ID_MULTICAST, /* device id is a multicast (or broadcast) address */
    DDNS_E_KID,                 /* kid not a key reference: a key id of 1 to 16
                                   characters of [a-z0-9], optionally "/" and a
                                   generation of 1 to 9999999 */
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
    DDNS_E_HTTP_LENGTH,         /* Content-Length missing, invalid or unsupported framing */
    DDNS_E_OPTIONS,             /* options of ddns_next() out of their ranges */
    DDNS_E_PEER                 /* the address learnt in the state (ddns_state_t peer) is not
                                   an IPv4 or IPv6 address (ddns_request_check()) */
};

/* ---- Signed update request (PROTOCOL.md section 4) ----------------------- */

struct ddns_state;

typedef struct ddns_request {
    ddns_span_t host;        /* Host header value, e.g. "ddns.example.com" */
    ddns_span_t user_agent;  /* User-Agent value, or len 0 for no header */
    ddns_span_t device_id;   /* canonical device id */
    ddns_span_t kid;         /* key reference of the secret as provisioned:
                                "k1", "k1/3" (PROTOCOL.md section 3) */
    ddns_span_t ipv4;        /* dotted quad, or len 0 for none */
    ddns_span_t ipv6;        /* IPv6 text, or len 0 for none (neither: the
                                connection's address is recorded) */
    uint64_t ts;             /* seconds since the epoch: ddns_clock() */
    uint8_t nonce[DDNS_NONCE_LEN]; /* fresh random bytes for every request */
    const struct ddns_state *state; /* the state of ddns_next(), or NULL. With
                                neither ipv4 nor ipv6, and an address the
                                state has learnt from the gateway's answers,
                                the body is "peer=<that address>": record the
                                connection's address on condition that it is
                                still that one (PROTOCOL.md). NULL, or
                                nothing learnt: no body, as before 3.3 */
} ddns_request_t;

/* The layouts check the fields of req they write, in this order, for
 * what keeps the message well formed: host 1 to 255 bytes of '!' to '~'
 * (DDNS_E_HOST); user agent at most 128 bytes of ' ' to '~'
 * (DDNS_E_USER_AGENT); device id 12 (DDNS_E_DEVICE_ID), kid 1 to 24
 * (DDNS_E_KID), ipv4 at most 15 (DDNS_E_IPV4) and ipv6 at most 45
 * (DDNS_E_IPV6) bytes of '.' to '~'; ts at most DDNS_TS_MAX (DDNS_E_TS,
 * after the kid). The address learnt in the state is sent as peer when
 * it is 1 to 45 of those bytes, and left out otherwise (no error: the
 * request is then one without an address, as the device did not give it;
 * ddns_request_check() reports it). So no input can end a header line or
 * add a field or a body parameter (no CR, LF, blank, ',' or '&' where
 * they would). The string to sign has no host and no user agent and does
 * not check them. The builders trust the caller for the rest of the
 * syntax (lowercase hex device id, the kid's characters, address syntax):
 * the gateway answers badrequest or badauth when it is wrong;
 * ddns_request_check() (ddns_check.h) checks it. */

/* Internal: the one layout function of the request. The functions below
 * name its parts; call them, not this. mac is read only when writing a
 * part that carries it (the request, the Authorization value). */
#define DDNS__PART_REQUEST 0u
#define DDNS__PART_AUTHORIZATION 1u
#define DDNS__PART_BODY 2u
#define DDNS__PART_STRING_TO_SIGN 3u
DDNS_MUST_CHECK ddns_err_t ddns__request_layout(const ddns_request_t *req, uint32_t part,
                                                const uint8_t mac[DDNS_SHA256_LEN],
                                                uint8_t *out, size_t out_size,
                                                size_t *out_len);

/* The request is laid out by one function, ddns__request_layout(), from one
 * template: the complete request contains the Authorization value and the
 * body exactly as they are laid out on their own, and the string to sign
 * ends with the same body. The functions below are that function for each
 * part (inline: they add no code to the library). */

/**
 * Exact bytes of the string to sign (PROTOCOL.md 4.3), for a platform
 * signer: a crypto library, a hardware engine or a secure element that
 * holds the secret. At most DDNS_STRING_TO_SIGN_MAX bytes. Has no host
 * and no user agent and does not check them.
 * @param[in]  req       the request
 * @param[out] out       buffer, or NULL with out_size 0 for a size query
 * @param[in]  out_size  bytes available at out
 * @param[out] out_len   bytes written, or needed on DDNS_E_BUFFER
 * @return DDNS_OK, DDNS_E_NULL, DDNS_E_BUFFER or the first field error
 */
static inline DDNS_MUST_CHECK ddns_err_t ddns_request_string_to_sign(const ddns_request_t *req,
                                                                     uint8_t *out,
                                                                     size_t out_size,
                                                                     size_t *out_len)
{
    return ddns__request_layout(req, DDNS__PART_STRING_TO_SIGN, NULL, out, out_size, out_len);
}

/**
 * Complete HTTP/1.1 request carrying mac, the HMAC-SHA256 computed by the
 * platform over the bytes of ddns_request_string_to_sign() for the same
 * req. At most DDNS_REQUEST_MAX bytes.
 * @param[in]  req       the request (unchanged since the string to sign)
 * @param[in]  mac       the 32-byte HMAC; may be NULL for a size query
 * @param[out] out       buffer, or NULL with out_size 0 for a size query
 * @param[in]  out_size  bytes available at out
 * @param[out] out_len   bytes written, or needed on DDNS_E_BUFFER
 * @return DDNS_OK, DDNS_E_NULL, DDNS_E_BUFFER or the first field error
 */
static inline DDNS_MUST_CHECK ddns_err_t ddns_request_build_presigned(
    const ddns_request_t *req, const uint8_t mac[DDNS_SHA256_LEN], uint8_t *out,
    size_t out_size, size_t *out_len)
{
    return ddns__request_layout(req, DDNS__PART_REQUEST, mac, out, out_size, out_len);
}

/**
 * Value of the Authorization header carrying mac (computed as for
 * ddns_request_build_presigned()), for firmware whose own HTTP client
 * sends the request: "DDNS-HMAC-SHA256 id=...,kid=...,ts=...,nonce=...,
 * sig=...", at most DDNS_AUTHORIZATION_MAX bytes, not NUL-terminated. It
 * checks the device id, kid and ts; the body's fields are checked by the
 * string to sign and by ddns_request_body().
 * @param[in]  req       the request (unchanged since the string to sign)
 * @param[in]  mac       the 32-byte HMAC; may be NULL for a size query
 * @param[out] out       buffer, or NULL with out_size 0 for a size query
 * @param[in]  out_size  bytes available at out
 * @param[out] out_len   bytes written, or needed on DDNS_E_BUFFER
 * @return DDNS_OK, DDNS_E_NULL, DDNS_E_BUFFER or the first field error
 */
static inline DDNS_MUST_CHECK ddns_err_t ddns_request_authorization_presigned(
    const ddns_request_t *req, const uint8_t mac[DDNS_SHA256_LEN], uint8_t *out,
    size_t out_size, size_t *out_len)
{
    return ddns__request_layout(req, DDNS__PART_AUTHORIZATION, mac, out, out_size, out_len);
}

/**
 * The body, for firmware whose own HTTP client sends the request with
 * Content-Type application/x-www-form-urlencoded: "ipv4=...", "ipv6=..."
 * or both joined by "&", at most DDNS_BODY_MAX bytes; without either,
 * "peer=..." when req->state holds a learnt address, else empty (DDNS_OK,
 * *out_len 0).
 * @param[in]  req       the request
 * @param[out] out       buffer, or NULL with out_size 0 for a size query
 * @param[in]  out_size  bytes available at out
 * @param[out] out_len   bytes written, or needed on DDNS_E_BUFFER
 * @return DDNS_OK, DDNS_E_NULL, DDNS_E_BUFFER, DDNS_E_IPV4 or DDNS_E_IPV6
 */
static inline DDNS_MUST_CHECK ddns_err_t ddns_request_body(const ddns_request_t *req,
                                                           uint8_t *out, size_t out_size,
                                                           size_t *out_len)
{
    return ddns__request_layout(req, DDNS__PART_BODY, NULL, out, out_size, out_len);
}

/**
 * Size in bytes of the complete request for req; needs no MAC.
 * @param[in]  req     the request
 * @param[out] needed  the size (0 on error)
 * @return DDNS_OK, DDNS_E_NULL or the first field error
 */
static inline DDNS_MUST_CHECK ddns_err_t ddns_request_size(const ddns_request_t *req,
                                                           size_t *needed)
{
    ddns_err_t err = ddns__request_layout(req, DDNS__PART_REQUEST, NULL, NULL, 0, needed);
    return err == DDNS_E_BUFFER ? DDNS_OK : err;
}

/* ---- Answer (PROTOCOL.md section 6) -------------------------------------- */

/* Result token of an answer: int32_t with enum constants, as ddns_err_t. */
typedef int32_t ddns_result_t;
enum {
    DDNS_RESULT_NONE = 0,     /* no valid answer */
    DDNS_RESULT_GOOD,         /* 200 good <addr> [<addr>] */
    DDNS_RESULT_NOCHG,        /* 200 nochg <addr> [<addr>] */
    DDNS_RESULT_BADADDR,      /* 403 badaddr <addr> [<addr>]: the gateway does not point
                                 names at these addresses; nothing was recorded */
    DDNS_RESULT_BADREQUEST,   /* 400 badrequest <field> */
    DDNS_RESULT_BADAUTH,      /* 401 badauth */
    DDNS_RESULT_BADTIME,      /* 401 badtime <server_time> */
    DDNS_RESULT_DISABLED,     /* 403 disabled */
    DDNS_RESULT_NOTFOUND,     /* 404 notfound */
    DDNS_RESULT_REPLAY,       /* 409 replay */
    DDNS_RESULT_RATELIMIT,    /* 429 ratelimit <seconds> */
    DDNS_RESULT_SERVERERROR,  /* 503 911 */
    DDNS_RESULT_BADAGENT,     /* 403 badagent: this model or firmware version is refused */
    DDNS_RESULT_MOVED         /* 409 moved <addr>: the connection comes from <addr>, not
                                 from the peer address sent; nothing was recorded */
};

/* A parsed answer. The spans point into the body given to
 * ddns_response_parse(), which must stay in place while they are used. */
typedef struct ddns_response {
    ddns_result_t result;
    unsigned naddrs;          /* good/nochg/badaddr: 1 or 2; moved: 1 */
    ddns_span_t addr[2];      /* good/nochg: recorded addresses, IPv4 first;
                                 badaddr: the addresses refused; moved: the
                                 connection's address */
    ddns_span_t detail;       /* badrequest: the field named */
    uint64_t server_time;     /* badtime: the gateway clock */
    uint32_t retry_after;     /* ratelimit: seconds to wait */
} ddns_response_t;

/**
 * Parses an answer from its HTTP status and body: one line of printable
 * ASCII ended by LF, at most 128 bytes, single spaces between words, a
 * known token whose HTTP status matches, and exactly the data words the
 * token takes. The addresses of good, nochg, badaddr and moved are taken
 * as the words they are (the gateway sends IPv4 first); ddns_ipv4_check() and
 * ddns_ipv6_check() (ddns_check.h) check their syntax. Numbers have 1 to
 * 19 digits (retry_after at most 4294967295).
 * @param[in]  status  the HTTP status code
 * @param[in]  body    the response body
 * @param[out] out     cleared first, filled on DDNS_OK (result
 *                     DDNS_RESULT_NONE on error); its spans point into body
 * @return DDNS_OK, DDNS_E_NULL or DDNS_E_RESP_FORMAT, _TOKEN, _STATUS, _DATA
 */
DDNS_MUST_CHECK ddns_err_t ddns_response_parse(unsigned status, ddns_span_t body,
                                               ddns_response_t *out);

/* ---- What to do next, and the clock -------------------------------------- */

/* The longest delay ddns_next() can give without overflow: 2^20 s, about
 * 12 days. */
#define DDNS_DELAY_MAX 1048576u

/* Timing rules of ddns_next(), in seconds, set at run time. Start from
 * ddns_options_default() and change what the product needs:
 *
 *   ddns_options_t opt = ddns_options_default();
 *   opt.keepalive = 6 * 3600;
 *
 * ddns_next() trusts the options as the layouts trust the fields: it
 * gives the delays described there for options within these ranges,
 * which ddns_options_check() (ddns_check.h) checks:
 *   1 <= min_interval <= backoff_first <= backoff_max <= DDNS_DELAY_MAX,
 *   min_interval <= keepalive <= DDNS_DELAY_MAX,
 *   min_interval <= retry_after_max <= DDNS_DELAY_MAX,
 *   badtime_retry <= DDNS_DELAY_MAX.
 * Outside them the delays are unspecified (but computed without undefined
 * behaviour and in at most as many steps as failures in a row). */
typedef struct ddns_options {
    uint32_t min_interval;    /* no two updates closer than this (60) */
    uint32_t keepalive;       /* re-send unchanged addresses after this (86400, a day) */
    uint32_t backoff_first;   /* first retry after an error (300) */
    uint32_t backoff_max;     /* the backoff doubles up to this (3600) */
    uint32_t retry_after_max; /* longest ratelimit delay obeyed (DDNS_DELAY_MAX) */
    uint32_t badtime_retry;   /* first retry after the clock was corrected (4) */
} ddns_options_t;

/**
 * The options ddns_next() was designed with (the values above).
 * @return the default options
 */
static inline ddns_options_t ddns_options_default(void)
{
    ddns_options_t opt;
    opt.min_interval = 60;
    opt.keepalive = 86400;
    opt.backoff_first = 300;
    opt.backoff_max = 3600;
    opt.retry_after_max = DDNS_DELAY_MAX;
    opt.badtime_retry = 4;
    return opt;
}

/* Caller-owned state kept across attempts; zero it once at start-up (and
 * again after a person has acted on DDNS_NEXT_STOP). Give it to the
 * request too (ddns_request_t state) so that a poll names the address
 * learnt here. */
typedef struct ddns_state {
    int64_t clock_offset;     /* seconds added to the device clock */
    uint64_t last_ts;         /* the last time ddns_clock() gave */
    uint32_t failures;        /* consecutive attempts without good/nochg/badaddr */
    uint8_t stopped;          /* 1 once ddns_next() said DDNS_NEXT_STOP */
    uint8_t peer_len;         /* bytes of peer; 0: no address learnt */
    char peer[DDNS_IPV6_MAX + 1]; /* the address learnt from good, nochg or
                                 moved (not NUL-terminated) */
} ddns_state_t;

/* Decision of ddns_next(): int32_t with enum constants, as ddns_err_t. */
typedef int32_t ddns_next_t;
enum {
    /* Recorded. Send again when an address changes, but not sooner than
     * min_interval (ddns_options_t) after this attempt, and at the latest
     * after the delay (the keep-alive). */
    DDNS_NEXT_IDLE = 0,
    /* Send a new request (new ts and nonce) after the delay. */
    DDNS_NEXT_RETRY,
    /* Do not send again until a person acts (credentials replaced, device
     * re-enabled, firmware or server address fixed); then zero the state. */
    DDNS_NEXT_STOP
};

/**
 * Decides what to do after an attempt. Every delay is a base plus a random
 * part of up to half of the base (opt: the ddns_options_t fields):
 *
 *   good, nochg,         IDLE   base keepalive (24 to 36 hours by default);
 *   badaddr                     badaddr: the gateway refuses the address
 *                               (nothing was recorded); update when it
 *                               changes, sending it again cannot help.
 *                               good and nochg with one address: that
 *                               address is learnt (st->peer)
 *   moved <addr>         RETRY  <addr> is learnt; the first failure in a
 *                               row: delay 0 (sign again at once), later
 *                               ones as an error; an address that does
 *                               not fit (over 45 bytes) is not learnt:
 *                               as no answer
 *   badtime              RETRY  clock corrected (ddns_clock_correct()); the
 *                               first failure in a row: base badtime_retry,
 *                               later ones as an error
 *   ratelimit <s>        RETRY  base s, at least min_interval, at most
 *                               retry_after_max
 *   replay, 911, none    RETRY  error backoff: base backoff_first, doubled
 *                               per consecutive failure up to backoff_max
 *   badauth, disabled,   STOP   a person must act (badagent: a firmware
 *   badrequest, notfound,       update); repeating cannot help. STOP again
 *   badagent                    on every call until good/nochg or a zeroed
 *                               state.
 *
 * The learnt address is the one the gateway recorded, or (moved) the one
 * it sees the connection come from; for a request without ipv4 and ipv6
 * it is the connection's address. A request that names neither ipv4 nor
 * ipv6 and carries the state (ddns_request_t state) then sends it as
 * "peer=<addr>": a poll from the same address is answered nochg without
 * the gateway writing anything, and one from another address is answered
 * "409 moved <new address>", which this function learns and answers with
 * RETRY after 0 s, once in a row: a gateway that answered moved forever
 * gets the error backoff, never a loop.
 *
 * @param[in,out] st          the state kept across attempts
 * @param[in]     opt         the timing rules (ddns_options_default())
 * @param[in]     r           the parsed answer, or NULL (or result
 *                            DDNS_RESULT_NONE) when there was none: network
 *                            or TLS failure, time-out, invalid answer
 * @param[in]     device_now  the device's own clock when the answer arrived
 *                            (only used to correct the clock after badtime)
 * @param[in]     random      32 bits from the platform's random source: it
 *                            spreads the delays so that devices do not act
 *                            in step
 * @param[out]    delay       seconds to wait (0 with DDNS_NEXT_STOP)
 * @return DDNS_NEXT_IDLE, DDNS_NEXT_RETRY or DDNS_NEXT_STOP (also when st,
 *         opt or delay is NULL)
 */
ddns_next_t ddns_next(ddns_state_t *st, const ddns_options_t *opt, const ddns_response_t *r,
                      uint64_t device_now, uint32_t random, uint32_t *delay);

/**
 * Learns the clock offset from a badtime answer: the gateway's time minus
 * device_now, and lets ddns_clock() go back to the gateway's time (last_ts
 * is cleared: a device clock that was ahead must not keep signing ahead).
 * Changes nothing on error.
 * @param[in,out] st          the state; clock_offset is set, last_ts 0
 * @param[in]     r           the parsed answer
 * @param[in]     device_now  the device's own clock when the answer arrived
 * @return DDNS_OK, DDNS_E_NULL, or DDNS_E_RESP_DATA for any other answer
 *         or when either time is above DDNS_TS_MAX
 */
DDNS_MUST_CHECK ddns_err_t ddns_clock_correct(ddns_state_t *st, const ddns_response_t *r,
                                              uint64_t device_now);

/**
 * The time to sign with (ddns_request_t.ts): device_now plus the learnt
 * offset, modulo 2^64, but later than the time it gave last for this state
 * (then that time plus 1): within one state the signed times strictly
 * increase, even when the device clock steps back or two requests are
 * signed within a second (a moved answer is answered at once). The
 * gateway relies on it: a nochg that writes nothing does not record the
 * time it was signed with, and a device never signing a later request
 * with an older time is what keeps a captured older request from being
 * replayed after it. After a badtime answer ddns_clock_correct() lets the
 * time go back to the gateway's. A time that makes no sense (before 1970,
 * after DDNS_TS_MAX) fails the request check with DDNS_E_TS and is not
 * remembered.
 * @param[in,out] st          the state (last_ts is updated)
 * @param[in]     device_now  the device's own clock
 * @return the time to sign with
 */
static inline uint64_t ddns_clock(ddns_state_t *st, uint64_t device_now)
{
    uint64_t t = device_now + (uint64_t)st->clock_offset;
    if (t <= st->last_ts)
        t = st->last_ts + 1u;
    if (t <= DDNS_TS_MAX)
        st->last_ts = t;
    return t;
}

#ifdef __cplusplus
}
#endif

#endif /* DDNS_SDK_H */
