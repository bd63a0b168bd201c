/* ddns_sdk.h: firmware SDK for the DDNS device protocol, version 1
 * (docs/PROTOCOL.md). This is the only public header of the SDK.
 *
 * The SDK builds the signed update request a device sends, parses the
 * gateway's answer, decodes the per-device secret from its text forms and
 * provides SHA-256 / HMAC-SHA256. It is C99, uses no heap, no mutable static
 * data and no library calls beyond <string.h>; every function is re-entrant.
 * The caller supplies all buffers, the clock (ts) and randomness (nonce).
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
 */
#ifndef DDNS_SDK_H
#define DDNS_SDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DDNS_SDK_VERSION "1.0.0"

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
#define DDNS_ADDR_TEXT_MAX    46  /* address text in an answer, incl. NUL */
#define DDNS_DETAIL_MAX       117 /* badrequest detail word, incl. NUL */
/* Upper bound of a complete request (all inputs at their maximum). */
#define DDNS_REQUEST_MAX      768

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

/* Short English description of err; never NULL. */
const char *ddns_strerror(ddns_err_t err);

/* ---- SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104) ---------------------- */
/* These cannot fail; pointers must be valid (data may be NULL when len is 0).
 * The final functions wipe the context. */

typedef struct ddns_sha256 {
    uint32_t h[8];
    uint64_t total;                  /* bytes hashed so far */
    uint8_t block[DDNS_SHA256_BLOCK];
    size_t used;                     /* bytes pending in block */
} ddns_sha256_t;

void ddns_sha256_init(ddns_sha256_t *ctx);
void ddns_sha256_update(ddns_sha256_t *ctx, const void *data, size_t len);
void ddns_sha256_final(ddns_sha256_t *ctx, uint8_t digest[DDNS_SHA256_LEN]);
void ddns_sha256(const void *data, size_t len, uint8_t digest[DDNS_SHA256_LEN]);

typedef struct ddns_hmac_sha256 {
    ddns_sha256_t inner;
    ddns_sha256_t outer;
} ddns_hmac_sha256_t;

void ddns_hmac_sha256_init(ddns_hmac_sha256_t *ctx, const void *key, size_t key_len);
void ddns_hmac_sha256_update(ddns_hmac_sha256_t *ctx, const void *data, size_t len);
void ddns_hmac_sha256_final(ddns_hmac_sha256_t *ctx, uint8_t mac[DDNS_SHA256_LEN]);
void ddns_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                      uint8_t mac[DDNS_SHA256_LEN]);

/* Wipes n bytes at p in a way the compiler does not remove. */
void ddns_wipe(void *p, size_t n);

/* ---- Identity and credentials (PROTOCOL.md sections 1 to 3) -------------- */

/* Checks a canonical device id: 12 lowercase hex digits, not all-zero, not
 * multicast/broadcast. */
DDNS_MUST_CHECK ddns_err_t ddns_device_id_check(ddns_span_t device_id);

/* Formats the 6 octets of a MAC address as the canonical device id: 12
 * lowercase hex digits and a NUL in out. Refuses zero and multicast. */
DDNS_MUST_CHECK ddns_err_t ddns_device_id_from_mac(const uint8_t mac[DDNS_MAC_LEN],
                                                   char out[DDNS_DEVICE_ID_LEN + 1]);

/* Checks a key id: 1 to 16 characters of [a-z0-9]. */
DDNS_MUST_CHECK ddns_err_t ddns_kid_check(ddns_span_t kid);

/* Decodes the text form of the secret (base64url, no padding, exactly 43
 * characters, canonical last character) into 32 bytes. */
DDNS_MUST_CHECK ddns_err_t ddns_secret_decode(ddns_span_t text,
                                              uint8_t secret[DDNS_SECRET_LEN]);

/* Decodes the password form kid "." secret. kid receives the key id and a
 * NUL, *kid_len its length (may be NULL). Errors: DDNS_E_PASSWORD (no "."),
 * DDNS_E_KID, DDNS_E_SECRET. Nothing is written on error. */
DDNS_MUST_CHECK ddns_err_t ddns_password_decode(ddns_span_t password,
                                                char kid[DDNS_KID_MAX + 1], size_t *kid_len,
                                                uint8_t secret[DDNS_SECRET_LEN]);

/* Checks IPv4 text: a dotted quad as inet_pton(AF_INET) accepts it (four
 * decimal parts 0 to 255, no leading zeros). */
DDNS_MUST_CHECK ddns_err_t ddns_ipv4_check(ddns_span_t text);

/* Checks IPv6 text in any RFC 4291 form as inet_pton(AF_INET6) accepts it
 * (hex groups, at most one "::", optional trailing dotted quad). */
DDNS_MUST_CHECK ddns_err_t ddns_ipv6_check(ddns_span_t text);

/* ---- Signed update request (PROTOCOL.md section 4) ----------------------- */

typedef struct ddns_request {
    ddns_span_t host;        /* Host header value, e.g. "ddns.example.com" */
    ddns_span_t device_id;   /* canonical device id */
    ddns_span_t kid;         /* key id of the secret */
    uint64_t ts;             /* device clock, seconds since the epoch */
    uint8_t nonce[DDNS_NONCE_LEN]; /* fresh random bytes for every request */
    ddns_span_t ipv4;        /* dotted quad, or len 0 for none */
    ddns_span_t ipv6;        /* IPv6 text, or len 0 for none */
    ddns_span_t user_agent;  /* User-Agent value, or len 0 for no header */
} ddns_request_t;

/* Validates every field of req. */
DDNS_MUST_CHECK ddns_err_t ddns_request_check(const ddns_request_t *req);

/* Exact bytes of the string to sign (PROTOCOL.md 4.3), for an external
 * signer such as a secure element. Buffer convention as above. */
DDNS_MUST_CHECK ddns_err_t ddns_request_string_to_sign(const ddns_request_t *req, uint8_t *out,
                                                       size_t out_size, size_t *out_len);

/* HMAC-SHA256 of the string to sign under the 32-byte secret, without
 * materialising the string. */
DDNS_MUST_CHECK ddns_err_t ddns_request_sign(const ddns_request_t *req,
                                             const uint8_t secret[DDNS_SECRET_LEN],
                                             uint8_t mac[DDNS_SHA256_LEN]);

/* Size in bytes of the complete request for req. */
DDNS_MUST_CHECK ddns_err_t ddns_request_size(const ddns_request_t *req, size_t *needed);

/* Complete HTTP/1.1 request signed with the 32-byte device secret. */
DDNS_MUST_CHECK ddns_err_t ddns_request_build(const ddns_request_t *req,
                                              const uint8_t secret[DDNS_SECRET_LEN],
                                              uint8_t *out, size_t out_size, size_t *out_len);

/* Complete HTTP/1.1 request carrying a MAC computed elsewhere over the bytes
 * of ddns_request_string_to_sign() for the same req. */
DDNS_MUST_CHECK ddns_err_t ddns_request_build_presigned(const ddns_request_t *req,
                                                        const uint8_t mac[DDNS_SHA256_LEN],
                                                        uint8_t *out, size_t out_size,
                                                        size_t *out_len);

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
    DDNS_RESULT_SERVERERROR   /* 503 911 */
} ddns_result_t;

/* Protocol token of r ("good", ..., "911"); "" for DDNS_RESULT_NONE. */
const char *ddns_result_token(ddns_result_t r);

typedef struct ddns_response {
    ddns_result_t result;
    unsigned naddrs;                           /* good/nochg: 1 or 2 */
    char addr[2][DDNS_ADDR_TEXT_MAX];          /* good/nochg, NUL-terminated */
    uint64_t server_time;                      /* badtime */
    uint32_t retry_after;                      /* ratelimit, seconds */
    char detail[DDNS_DETAIL_MAX];              /* badrequest, NUL-terminated */
} ddns_response_t;

/* Parses an answer from its HTTP status and body. *out is cleared first and
 * filled on DDNS_OK; on error out->result is DDNS_RESULT_NONE. */
DDNS_MUST_CHECK ddns_err_t ddns_response_parse(unsigned status, ddns_span_t body,
                                               ddns_response_t *out);

/* HTTP/1.1 response framing. */
typedef struct ddns_http_response {
    unsigned status;          /* 200 to 599 */
    size_t header_len;        /* status line + headers + blank line */
    size_t content_length;
    size_t total_len;         /* header_len + content_length */
    ddns_span_t body;         /* points into raw */
} ddns_http_response_t;

/* Parses the status line, headers and body of a raw HTTP/1.1 response held
 * in raw. Returns DDNS_E_HTTP_INCOMPLETE while the header section or the
 * body is not complete (once the headers are complete, header_len and
 * content_length are already set so the caller knows how much remains).
 * Requires Content-Length; Transfer-Encoding is refused. Bytes after
 * total_len are ignored. */
DDNS_MUST_CHECK ddns_err_t ddns_http_response_parse(ddns_span_t raw, ddns_http_response_t *out);

#ifdef __cplusplus
}
#endif

#endif /* DDNS_SDK_H */
