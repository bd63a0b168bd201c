/* ddns_internal.h: helpers shared by the SDK modules; not installed.
 *
 * Internal names use the prefix ddns__ (double underscore) so that they can
 * never clash with the public ddns_ API. */
#ifndef DDNS_INTERNAL_H
#define DDNS_INTERNAL_H

#include "ddns_sdk.h"

/* Lowercase hexadecimal digit of the nibble v (0 to 15). */
static inline uint8_t ddns__hex_digit(unsigned v)
{
    return (uint8_t)(v < 10u ? '0' + v : 'a' - 10u + v);
}

/* True when c - lo <= hi - lo, i.e. lo <= c <= hi. */
#define DDNS__IN(c, lo, hi) ((unsigned)((unsigned)(c) - (unsigned)(lo)) <= (unsigned)((hi) - (lo)))

/* The builders' check of one text (lengths and character sets): code 1 to
 * 6 as in the request templates (5: IPv4 characters, 6: IPv6 characters). */
bool ddns__text_ok(ddns_span_t s, unsigned code);

/* Result tokens in the order of ddns_result_t from DDNS_RESULT_GOOD, each
 * ended by NUL (ddns_response.c). */
extern const char ddns__tokens[];

/* Decimal number of 1 to 19 digits at p (n bytes, n may be 0); false for
 * anything else. */
bool ddns__parse_dec(const uint8_t *p, size_t n, uint64_t *value);

/* Request layouts (ddns_request.c). */
extern const char ddns__tpl_request[];
extern const char ddns__tpl_sign[];
/* Writes the layout tpl for req into out and returns its length; when out
 * is NULL only counts, and checks each field on the way: a field that
 * fails gives DDNS__EMIT_ERROR(its error) instead of a length. */
size_t ddns__emit(const ddns_request_t *req, const char *tpl, const uint8_t *mac, uint8_t *out);
#define DDNS__EMIT_ERROR(err) ((size_t)0 - (size_t)(err))
/* Checks req, out and out_len and the size of layout tpl against out_size
 * (setting *out_len as the buffer convention says), then writes the layout
 * into out, except the request layout without a MAC (a check only). */
ddns_err_t ddns__write(const ddns_request_t *req, const char *tpl, const uint8_t *mac,
                       uint8_t *out, size_t out_size, size_t *out_len);

#endif /* DDNS_INTERNAL_H */
