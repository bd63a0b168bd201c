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

/* Keeps a helper out of line, so that its caller needs fewer registers. */
#if defined(__GNUC__) || defined(__clang__)
#define DDNS__NOINLINE __attribute__((noinline))
#else
#define DDNS__NOINLINE
#endif

/* True when c - lo <= hi - lo, i.e. lo <= c <= hi. */
#define DDNS__IN(c, lo, hi) ((unsigned)((unsigned)(c) - (unsigned)(lo)) <= (unsigned)((hi) - (lo)))

/* The string to sign without its body (ddns__request_layout()), so that
 * the built-in signer can hash it in two pieces, each shorter than the
 * part it signs. */
#define DDNS__PART_SIGN_HEAD 4u

/* Decimal number of 1 to 19 digits at p (n bytes, n may be 0); false for
 * anything else. */
bool ddns__parse_dec(const uint8_t *p, size_t n, uint64_t *value);

/* Wipes n bytes at p in a way the compiler does not remove (ddns_wipe()
 * for the modules that must not depend on ddns_sha256.c). */
static inline void ddns__wipe(void *p, size_t n)
{
    volatile uint8_t *v = (volatile uint8_t *)p;
    while (n-- > 0)
        *v++ = 0;
}

#endif /* DDNS_INTERNAL_H */
